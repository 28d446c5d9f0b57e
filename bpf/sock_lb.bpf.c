// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level load balancing: the VIP is rewritten to a backend when the
 * application connects (or sends its first datagram), so established
 * connections carry no per-packet cost. Replies and getpeername() are
 * translated back so the application only ever sees the VIP.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/addr.h"
#include "lib/select.h"
#include "lib/maps.h"

#define ECONNREFUSED	111
#define IPPROTO_TCP_	6
#define IPPROTO_UDP_	17

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent before load; lets an old kernel fall back to EPERM on refusal. */
const volatile bool have_set_retval = true;

static __always_inline void count_refused(const struct ks_svc *svc)
{
	struct ks_svc_stats *st = bpf_map_lookup_elem(&ks_svc_stats, &svc->svc_id);

	if (st)
		st->refused++;
}

static __always_inline void count_steered(const struct ks_svc *svc, const struct ks_backend *be)
{
	struct ks_svc_stats *st = bpf_map_lookup_elem(&ks_svc_stats, &svc->svc_id);
	struct ks_ep_stats *es = bpf_map_lookup_elem(&ks_ep_stats, &be->ep_id);

	if (st)
		st->connects++;
	if (es)
		es->connects++;
}

static __always_inline bool ejected(__u32 ep_id, __u64 now)
{
	struct ks_ep_health *h = bpf_map_lookup_elem(&ks_ep_health, &ep_id);

	return h && *(volatile __u64 *)&h->ejected_until > now;
}

#define PICK_TRIES	16	/* random draws before the scan */

struct live_scan {
	__u32 base, count, start;	/* the group's range and where to start */
	__u64 now;
	__u32 slot;			/* out: first live slot */
	bool found;
};

static long scan_live(__u32 i, struct live_scan *c)
{
	__u32 slot = c->base + (c->start + i) % c->count;
	struct ks_backend *be = bpf_map_lookup_elem(&ks_backends, &slot);

	if (!be || ejected(be->ep_id, c->now))
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
 * ejected) all PICK_TRIES draws miss with probability 2^-16, which at 15k
 * connects/s is a failed connect every few seconds: then a bpf_loop scan
 * takes the next live endpoint. Only if none is live is the draw used
 * (fail open). Services with passive checks off never look at health.
 */
static __always_inline const struct ks_backend *pick(const struct ks_svc *svc, __u32 *gi_out)
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
	for (i = 0; i < PICK_TRIES; i++) {
		slot = ks_pick_slot(g, bpf_get_prandom_u32());
		be = bpf_map_lookup_elem(&ks_backends, &slot);
		if (!be || !svc->passive_failures)
			return be;
		if (!now)
			now = bpf_ktime_get_ns();
		if (!ejected(be->ep_id, now))
			return be;
	}
	{
		struct live_scan c = { .base = g->be_base, .count = g->be_count,
				       .start = slot - g->be_base, .now = now };
		const struct ks_backend *live;

		bpf_loop(g->be_count, scan_live, &c, 0);
		if (c.found && (live = bpf_map_lookup_elem(&ks_backends, &c.slot)))
			return live;
	}
	return be;
}

static __always_inline int refuse(struct bpf_sock_addr *ctx, const struct ks_svc *svc)
{
	count_refused(svc);
	/* Fail fast with the errno an L4 route's rejected share calls for. */
	if (have_set_retval)
		bpf_set_retval(-ECONNREFUSED);
	return 0;
}

static __always_inline bool ent_is_vip(const struct ks_sock_ent *e, const struct ks_svc_key *k)
{
	return e->used && e->family == k->family && e->vip_port == k->port &&
	       ks_addr_eq(e->vip, k->addr);
}

/* Entry for this VIP, or a free/victim entry to overwrite. */
static __always_inline struct ks_sock_ent *sock_slot(struct ks_sock *s, const struct ks_svc_key *k,
						     bool *found)
{
	__u32 i, v;

	*found = false;
#pragma unroll
	for (i = 0; i < KS_SOCK_ENTRIES; i++) {
		if (ent_is_vip(&s->ent[i], k)) {
			*found = true;
			return &s->ent[i];
		}
	}
#pragma unroll
	for (i = 0; i < KS_SOCK_ENTRIES; i++)
		if (!s->ent[i].used)
			return &s->ent[i];
	v = s->next++ % KS_SOCK_ENTRIES;
	return &s->ent[v & (KS_SOCK_ENTRIES - 1)];
}

static __always_inline void remember(struct ks_sock_ent *e, const struct ks_svc_key *k,
				     const struct ks_backend *be, __u32 rev, __u32 gi)
{
	e->ep_id = be->ep_id;
	e->group = gi;
	__builtin_memcpy(e->vip, k->addr, sizeof(e->vip));
	__builtin_memcpy(e->be, be->addr, sizeof(e->be));
	e->vip_port = k->port;
	e->be_port = be->port;
	e->family = k->family;
	e->rev = rev;
	e->used = 1;
}

static __always_inline void write_addr(struct bpf_sock_addr *ctx, const __u32 *addr, __u16 port,
				       bool v6ctx, bool mapped)
{
	if (!v6ctx) {
		ctx->user_ip4 = addr[0];
	} else if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = addr[0];
	} else {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	}
	ctx->user_port = port;
}

/* Build the lookup key from the destination the application asked for. */
static __always_inline bool dest_key(struct bpf_sock_addr *ctx, bool v6ctx, struct ks_svc_key *k,
				     bool *mapped)
{
	__u32 proto = ctx->protocol;

	if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
		return false;
	k->proto = proto;
	k->port = (__u16)ctx->user_port;
	*mapped = false;
	if (!v6ctx) {
		k->family = KS_FAMILY_V4;
		k->addr[0] = ctx->user_ip4;
		return true;
	}
	k->addr[0] = ctx->user_ip6[0];
	k->addr[1] = ctx->user_ip6[1];
	k->addr[2] = ctx->user_ip6[2];
	k->addr[3] = ctx->user_ip6[3];
	/* A dual-stack socket connecting to ::ffff:VIP means the IPv4 service. */
	k->family = ks_addr_unmap(k->addr);
	*mapped = k->family == KS_FAMILY_V4;
	return true;
}

/* connect(): TCP and connected UDP. */
static __always_inline int do_connect(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_svc_key k = {};
	const struct ks_backend *be;
	const struct ks_svc *svc;
	struct ks_sock_ent *e;
	struct ks_sock *s;
	bool mapped, found;
	__u32 gi = 0;

	if (!dest_key(ctx, v6ctx, &k, &mapped))
		return 1;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc)
		return 1;
	be = pick(svc, &gi);
	if (!be)
		return refuse(ctx, svc);
	s = bpf_sk_storage_get(&ks_sock, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		e = sock_slot(s, &k, &found);
		remember(e, &k, be, svc->rev, gi);
	}
	write_addr(ctx, be->addr, be->port, v6ctx, mapped);
	count_steered(svc, be);
	return 1;
}

/*
 * sendmsg() with a destination: unconnected UDP. The socket keeps the backend
 * it got for a VIP until that service is rewritten (its rev changes), so one
 * socket's datagrams to a VIP stay on one backend.
 */
static __always_inline int do_sendmsg(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_svc_key k = {};
	const struct ks_backend *be;
	const struct ks_svc *svc;
	struct ks_sock_ent *e = NULL;
	struct ks_sock *s;
	bool mapped, found;
	__u32 gi = 0;

	if (!dest_key(ctx, v6ctx, &k, &mapped))
		return 1;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc)
		return 1;
	s = bpf_sk_storage_get(&ks_sock, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		e = sock_slot(s, &k, &found);
		if (found && e->rev == svc->rev) {
			write_addr(ctx, e->be, e->be_port, v6ctx, mapped);
			return 1;
		}
	}
	be = pick(svc, &gi);
	if (!be)
		return refuse(ctx, svc);
	if (e)
		remember(e, &k, be, svc->rev, gi);
	write_addr(ctx, be->addr, be->port, v6ctx, mapped);
	count_steered(svc, be);
	return 1;
}

/* recvmsg()/getpeername(): show the VIP, not the backend, to the application. */
static __always_inline int do_reverse(struct bpf_sock_addr *ctx, bool v6ctx)
{
	__u32 a[4] = {}, i;
	bool mapped = false;
	struct ks_sock *s;
	__u8 family;
	__u16 port;

	s = bpf_sk_storage_get(&ks_sock, ctx->sk, 0, 0);
	if (!s)
		return 1;
	port = (__u16)ctx->user_port;
	if (!v6ctx) {
		a[0] = ctx->user_ip4;
		family = KS_FAMILY_V4;
	} else {
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		family = ks_addr_unmap(a);
		mapped = family == KS_FAMILY_V4;
	}
#pragma unroll
	for (i = 0; i < KS_SOCK_ENTRIES; i++) {
		struct ks_sock_ent *e = &s->ent[i];

		if (!e->used || e->family != family || e->be_port != port || !ks_addr_eq(e->be, a))
			continue;
		write_addr(ctx, e->vip, e->vip_port, v6ctx, mapped);
		break;
	}
	return 1;
}

SEC("cgroup/connect4")
int ksplit_connect4(struct bpf_sock_addr *ctx) { return do_connect(ctx, false); }

SEC("cgroup/connect6")
int ksplit_connect6(struct bpf_sock_addr *ctx) { return do_connect(ctx, true); }

SEC("cgroup/sendmsg4")
int ksplit_sendmsg4(struct bpf_sock_addr *ctx) { return do_sendmsg(ctx, false); }

SEC("cgroup/sendmsg6")
int ksplit_sendmsg6(struct bpf_sock_addr *ctx) { return do_sendmsg(ctx, true); }

SEC("cgroup/recvmsg4")
int ksplit_recvmsg4(struct bpf_sock_addr *ctx) { return do_reverse(ctx, false); }

SEC("cgroup/recvmsg6")
int ksplit_recvmsg6(struct bpf_sock_addr *ctx) { return do_reverse(ctx, true); }

SEC("cgroup/getpeername4")
int ksplit_getpeername4(struct bpf_sock_addr *ctx) { return do_reverse(ctx, false); }

SEC("cgroup/getpeername6")
int ksplit_getpeername6(struct bpf_sock_addr *ctx) { return do_reverse(ctx, true); }
