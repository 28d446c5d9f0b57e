/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The counters every hook keeps, read by `ksplit status` and the metrics.
 * The maps are per-CPU, so plain increments do. An id the agent has not
 * filled in yet has no entry and is not counted: the agent creates the
 * entry (zeroed) before it publishes the id.
 */
#ifndef KSPLIT_BPF_STATS_H
#define KSPLIT_BPF_STATS_H

#include "lib/maps.h"

/* Group gi's counters of svc; NULL for KS_NO_GROUP (no weight at all) or an unfilled key. */
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
		st->refused++;
	if (gs)
		gs->refused++;
}

/* A connection of svc sent to be, of group gi. */
static __always_inline void ks_count_steered(const struct ks_svc *svc, const struct ks_backend *be,
					     __u32 gi)
{
	struct ks_svc_stats *st = bpf_map_lookup_elem(&ks_svc_stats, &svc->svc_id);
	struct ks_ep_stats *es = bpf_map_lookup_elem(&ks_ep_stats, &be->ep_id);
	struct ks_group_stats *gs = ks_group_stats_of(svc, gi);

	if (st)
		st->connects++;
	if (es)
		es->connects++;
	if (gs)
		gs->connects++;
}

/* How a steered TCP connect to ep_id ended: established or failed. */
static __always_inline void ks_count_outcome(__u32 ep_id, bool ok)
{
	struct ks_ep_stats *st = bpf_map_lookup_elem(&ks_ep_stats, &ep_id);

	if (!st)
		return;
	if (ok)
		st->established++;
	else
		st->failed++;
}

#endif /* KSPLIT_BPF_STATS_H */
