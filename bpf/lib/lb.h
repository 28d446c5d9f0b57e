/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The whole backend selection for one connection of a service: a group by
 * weight and an eligible endpoint of it (lib/select.h, the pure maths),
 * skipping passively ejected endpoints (lib/health.h). Every hook that
 * steers (cgroup sock_addr, the per-packet TC program) calls ks_pick and
 * nothing else, so they cannot choose differently.
 */
#ifndef KSPLIT_BPF_LB_H
#define KSPLIT_BPF_LB_H

#include "lib/health.h"
#include "lib/maps.h"
#include "lib/select.h"
#include "lib/sock.h"

#define KS_PICK_TRIES	16	/* random draws before the scan */
#define KS_UNSHARED_SCAN_MAX	1024	/* endpoints of a group ks_pick_unshared looks at */

struct ks_live_scan {
	__u32 base, count, start;	/* the group's range and where to start */
	__u64 now;
	__u32 slot;			/* out: first live slot */
	bool found;
};

/* bpf_loop callback: stop at the first endpoint that is not ejected. */
static long ks_scan_live(__u32 i, struct ks_live_scan *c)
{
	__u32 slot = c->base + (c->start + i) % c->count;
	struct ks_backend *be = bpf_map_lookup_elem(&ks_backends, &slot);

	if (!be || ks_ep_ejected(be->ep_id, &c->now))
		return 0;
	c->slot = slot;
	c->found = true;
	return 1;
}

/*
 * Returns the chosen backend, or NULL when this connection's share is
 * refused (invalid backendRef, group without eligible endpoints, or a
 * service whose weights are all 0). *gi_out is the group index.
 *
 * Passively ejected endpoints are skipped by drawing again, which keeps the
 * pick uniform over the live ones. With the cap (at most half a group
 * ejected) all KS_PICK_TRIES draws miss with probability 2^-16, which at
 * 15k connects/s is a failed connect every few seconds: then a bpf_loop
 * scan takes the next live endpoint. Only if none is live is the draw used
 * (fail open). Services with passive checks off never look at health.
 */
static __always_inline const struct ks_backend *ks_pick(const struct ks_svc *svc, __u32 *gi_out)
{
	const struct ks_backend *be = NULL;
	const struct ks_group *g;
	__u32 gi, slot, i;
	__u64 now = 0;

	gi = ks_pick_group(svc, bpf_get_prandom_u32());
	if (gi >= KS_MAX_GROUPS)
		return NULL;
	*gi_out = gi;
	g = &svc->groups[gi];
	if (!g->be_count)
		return NULL;
	for (i = 0; i < KS_PICK_TRIES; i++) {
		slot = ks_pick_slot(g, bpf_get_prandom_u32());
		be = bpf_map_lookup_elem(&ks_backends, &slot);
		if (!be || !svc->passive_failures)
			return be;
		if (!ks_ep_ejected(be->ep_id, &now))
			return be;
	}
	{
		struct ks_live_scan c = { .base = g->be_base, .count = g->be_count,
					  .start = slot - g->be_base, .now = now };
		const struct ks_backend *live;

		bpf_loop(g->be_count, ks_scan_live, &c, 0);
		if (c.found && (live = bpf_map_lookup_elem(&ks_backends, &c.slot)))
			return live;
	}
	return be;
}

struct ks_unshared_scan {
	const struct ks_udp_sock *u;	/* the socket's other VIPs */
	const struct ks_svc_key *k;	/* the VIP being picked for */
	__u32 base, count, start;
	__u64 now;			/* clock, read when first needed (0: not yet) */
	bool health;			/* passive checks on: skip ejected endpoints */
	__u32 slot;			/* out: first slot no other VIP of the socket uses */
	bool found;
};

/* bpf_loop callback: stop at the first live endpoint the socket's other VIPs do not use. */
static long ks_scan_unshared(__u32 i, struct ks_unshared_scan *c)
{
	__u32 slot = c->base + (c->start + i) % c->count;
	struct ks_backend *be = bpf_map_lookup_elem(&ks_backends, &slot);

	if (!be || (c->health && ks_ep_ejected(be->ep_id, &c->now)))
		return 0;
	if (ks_udp_backend_taken(c->u, c->k, be))
		return 0;
	c->slot = slot;
	c->found = true;
	return 1;
}

/*
 * For an unconnected UDP socket (record u) that already sends to be through
 * another VIP: a reply from be could then not tell which VIP it answers.
 * Returns another endpoint of the same group gi (the weighted split between
 * groups is kept) that the socket's other VIPs do not use, from a random
 * start; be itself when the group has none (the reply stays ambiguous,
 * lib/sock.h ks_udp_by_backend). Only a socket's first datagram to a VIP
 * comes here, and only be's group is scanned.
 */
static __always_inline const struct ks_backend *
ks_pick_unshared(const struct ks_svc *svc, __u32 gi, const struct ks_backend *be,
		 const struct ks_udp_sock *u, const struct ks_svc_key *k)
{
	struct ks_unshared_scan c = { .u = u, .k = k };
	const struct ks_backend *other;
	const struct ks_group *g;

	if (!ks_udp_backend_taken(u, k, be) || gi >= KS_MAX_GROUPS)
		return be;
	g = &svc->groups[gi];
	if (g->be_count < 2)
		return be;
	c.base = g->be_base;
	c.count = g->be_count;
	c.start = ks_scale(bpf_get_prandom_u32(), g->be_count);
	c.health = svc->passive_failures != 0;
	bpf_loop(g->be_count < KS_UNSHARED_SCAN_MAX ? g->be_count : KS_UNSHARED_SCAN_MAX,
		 ks_scan_unshared, &c, 0);
	if (c.found && (other = bpf_map_lookup_elem(&ks_backends, &c.slot)))
		return other;
	return be;
}

struct ks_listed_scan {
	const __u32 *addr;
	__u32 base;
	__u16 port;
	bool found;
};

/* bpf_loop callback: stop at the endpoint with this address:port. */
static long ks_scan_listed(__u32 i, struct ks_listed_scan *c)
{
	__u32 slot = c->base + i;
	struct ks_backend *be = bpf_map_lookup_elem(&ks_backends, &slot);

	if (!be || be->port != c->port || !ks_addr_eq(be->addr, c->addr))
		return 0;
	c->found = true;
	return 1;
}

/*
 * Does svc still list the endpoint addr:port, eligible or not (a
 * terminating endpoint's flows may finish)? For a flow picked under an
 * older rev of svc: an endpoint that left the service must not get more
 * of its packets. Scans every group's range, once per flow and rev.
 */
static __always_inline bool ks_backend_listed(const struct ks_svc *svc, const __u32 *addr,
					      __u16 port)
{
	struct ks_listed_scan c = { .addr = addr, .port = port };
	__u32 gi;

KS_UNROLL
	for (gi = 0; gi < KS_MAX_GROUPS; gi++) {
		if (gi >= svc->n_groups)
			break;
		c.base = svc->groups[gi].be_base;
		bpf_loop(svc->groups[gi].be_total, ks_scan_listed, &c, 0);
		if (c.found)
			return true;
	}
	return false;
}

#endif /* KSPLIT_BPF_LB_H */
