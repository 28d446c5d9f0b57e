/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The counters every hook keeps, read by `ksplit status` and the metrics.
 * The maps are arrays shared by all CPUs (lib/maps.h), so every increment
 * is an atomic add. The agent zeroes an id's entry before it publishes the
 * id, so a reused id starts from zero.
 */
#ifndef KSPLIT_BPF_STATS_H
#define KSPLIT_BPF_STATS_H

#include "lib/maps.h"

/* Group gi's counters of svc; NULL for KS_NO_GROUP (no weight at all) or an id beyond the map. */
static __always_inline struct ks_group_stats *ks_group_stats_of(const struct ks_svc *svc, __u32 gi)
{
	__u32 key;

	if (gi >= KS_MAX_GROUPS)
		return NULL;
	key = KS_GROUP_KEY(svc->svc_id, gi);
	return bpf_map_lookup_elem(&ks_group_stats, &key);
}

/* A connection of svc refused: its share (group gi) has no backend (see ks_pick). */
static __always_inline void ks_count_refused(const struct ks_svc *svc, __u32 gi)
{
	struct ks_svc_stats *st = bpf_map_lookup_elem(&ks_svc_stats, &svc->svc_id);
	struct ks_group_stats *gs = ks_group_stats_of(svc, gi);

	if (st)
		__sync_fetch_and_add(&st->refused, 1);
	if (gs)
		__sync_fetch_and_add(&gs->refused, 1);
}

/* A connection of svc sent to be, of group gi. */
static __always_inline void ks_count_steered(const struct ks_svc *svc, const struct ks_backend *be,
					     __u32 gi)
{
	struct ks_svc_stats *st = bpf_map_lookup_elem(&ks_svc_stats, &svc->svc_id);
	struct ks_ep_stats *es = bpf_map_lookup_elem(&ks_ep_stats, &be->ep_id);
	struct ks_group_stats *gs = ks_group_stats_of(svc, gi);

	if (st)
		__sync_fetch_and_add(&st->connects, 1);
	if (es)
		__sync_fetch_and_add(&es->connects, 1);
	if (gs)
		__sync_fetch_and_add(&gs->connects, 1);
}

/* How a steered TCP connect to ep_id ended: established or failed. */
static __always_inline void ks_count_outcome(__u32 ep_id, bool ok)
{
	struct ks_ep_stats *st = bpf_map_lookup_elem(&ks_ep_stats, &ep_id);

	if (!st)
		return;
	if (ok)
		__sync_fetch_and_add(&st->established, 1);
	else
		__sync_fetch_and_add(&st->failed, 1);
}

#endif /* KSPLIT_BPF_STATS_H */
