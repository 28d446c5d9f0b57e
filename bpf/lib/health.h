/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Passive health, node-wide per ep_id (ks_ep_health): the pick skips an
 * ejected endpoint (ks_ep_ejected), and the outcome of each steered TCP
 * connect feeds the count of consecutive failures (ks_passive_outcome).
 * After passive_failures of them the endpoint is ejected right here, so the
 * next connect on any CPU skips it: no round trip to the agent.
 */
#ifndef KSPLIT_BPF_HEALTH_H
#define KSPLIT_BPF_HEALTH_H

#include "lib/addr.h"
#include "lib/bound.h"
#include "lib/maps.h"
#include "lib/stats.h"

/*
 * The endpoint's ejection deadline (0: never ejected). The agent lifts an
 * ejection by rewriting the record: read it afresh.
 */
static __always_inline __u64 ks_ep_deadline(__u32 ep_id)
{
	struct ks_ep_health *h = bpf_map_lookup_elem(&ks_ep_health, &ep_id);

	return h ? *(volatile __u64 *)&h->ejected_until : 0;
}

/*
 * An endpoint never ejected (the common case) needs no clock: *now is read
 * only when there is a deadline to compare, once per caller (0: not yet).
 */
static __always_inline bool ks_ep_ejected(__u32 ep_id, __u64 *now)
{
	__u64 until = ks_ep_deadline(ep_id);

	if (!until)
		return false;
	if (!*now)
		*now = bpf_ktime_get_ns();
	return until > *now;
}

/*
 * Envoy's max-ejection-percent, at 50%: a fault on the client side (or a
 * partition) must not empty a group through passive checks alone. This runs
 * only on a failed connect, so scanning the group is affordable.
 */
static __always_inline bool ks_eject_cap_allows(const struct ks_group *g, __u64 now)
{
	__u32 i, ejected = 0;

	for (i = 0; i < KS_EJECT_SCAN_MAX; i++) {
		struct ks_backend *be;
		__u32 slot;

		if (i >= g->be_count)
			break;
		slot = g->be_base + i;
		be = bpf_map_lookup_elem(&ks_backends, &slot);
		if (!be)
			break;
		if (ks_ep_deadline(be->ep_id) > now)
			ejected++;
	}
	return (ejected + 1) * 2 <= g->be_count;
}

static __always_inline void ks_eject(struct ks_ep_health *h, const struct ks_svc *svc, __u32 gi)
{
	__u64 now = bpf_ktime_get_ns(), old = h->ejected_until, dur;
	__u32 n;

	if (old > now || gi >= KS_MAX_GROUPS)
		return;
	/* clang may index groups[] with a copy of gi spilled before that test. */
	gi = ks_bound(gi, KS_MAX_GROUPS);
	if (!ks_eject_cap_allows(&svc->groups[gi], now))
		return;
	n = h->ejections + 1;
	dur = KS_EJECT_BASE_NS * n;
	if (dur > KS_EJECT_MAX_NS)
		dur = KS_EJECT_MAX_NS;
	/* One CPU wins the ejection; the others see it already done. */
	if (__sync_val_compare_and_swap(&h->ejected_until, old, now + dur) != old)
		return;
	h->ejections = n;
	h->probation = 1;
	h->consec_fail = 0;
	{
		struct ks_group_stats *gs = ks_group_stats_of(svc, gi);

		if (gs)
			__sync_fetch_and_add(&gs->ejections, 1);
	}
}

/* A steered TCP connect (the socket's entry e) was established (ok) or failed. */
static __always_inline void ks_passive_outcome(const struct ks_sock_ent *e, bool ok)
{
	struct ks_svc_key k = {};
	struct ks_ep_health *h;
	const struct ks_svc *svc;
	__u32 n;

	h = bpf_map_lookup_elem(&ks_ep_health, &e->ep_id);
	if (!h)
		return;
	if (ok) {
		/* Plain stores: a lost race only delays a reset by one connect. */
		if (h->consec_fail)
			h->consec_fail = 0;
		if (h->probation)
			h->probation = 0;
		return;
	}
	__builtin_memcpy(k.addr, e->vip, sizeof(k.addr));
	k.port = e->vip_port;
	k.proto = IPPROTO_TCP_;
	k.family = e->family;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc || !svc->passive_failures)
		return;
	n = __sync_fetch_and_add(&h->consec_fail, 1) + 1;
	if (h->probation || n >= svc->passive_failures)
		ks_eject(h, svc, e->group);
}

#endif /* KSPLIT_BPF_HEALTH_H */
