// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level load balancing: the VIP is rewritten to a backend when the
 * application connects (or sends its first datagram), so established
 * connections carry no per-packet cost. Replies and getpeername() are
 * translated back so the application only ever sees the VIP.
 *
 * Only what is particular to struct bpf_sock_addr lives here: reading and
 * writing the context's address. The selection is lib/lb.h, the socket
 * record lib/sock.h, the counters lib/stats.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/addr.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/sock.h"
#include "lib/stats.h"

#define ECONNREFUSED	111

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent before load; lets an old kernel fall back to EPERM on refusal. */
const volatile bool have_set_retval = true;

static __always_inline int refuse(struct bpf_sock_addr *ctx, const struct ks_svc *svc, __u32 gi)
{
	ks_count_refused(svc, gi);
	/* Fail fast with the errno an L4 route's rejected share calls for. */
	if (have_set_retval)
		bpf_set_retval(-ECONNREFUSED);
	return 0;
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

/*
 * The context's address into a (zeroed by the caller) in ksplit's form;
 * returns its family. *mapped: a dual-stack socket used ::ffff:a.b.c.d,
 * which means the IPv4 service, and is written back the same way.
 */
static __always_inline __u8 read_addr(struct bpf_sock_addr *ctx, bool v6ctx, __u32 *a,
				      bool *mapped)
{
	__u8 family;

	*mapped = false;
	if (!v6ctx) {
		a[0] = ctx->user_ip4;
		return KS_FAMILY_V4;
	}
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	family = ks_addr_unmap(a);
	*mapped = family == KS_FAMILY_V4;
	return family;
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
	k->family = read_addr(ctx, v6ctx, k->addr, mapped);
	return true;
}

/*
 * connect(): TCP and connected UDP. The socket has one peer from now on, so
 * its record is one entry (lib/sock.h): the storage made here is the
 * largest part of what a connection costs in BPF.
 */
static __always_inline int do_connect(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_svc_key k = {};
	const struct ks_backend *be;
	const struct ks_svc *svc;
	struct ks_sock_ent *e;
	bool mapped;
	__u32 gi = KS_NO_GROUP;	/* ks_pick sets it once it has drawn a group */

	if (!dest_key(ctx, v6ctx, &k, &mapped))
		return 1;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc)
		return 1;
	be = ks_pick(svc, &gi);
	if (!be)
		return refuse(ctx, svc, gi);
	e = ks_sock_get(ctx->sk, true);
	if (e)
		ks_sock_remember(e, &k, be, svc, gi);
	write_addr(ctx, be->addr, be->port, v6ctx, mapped);
	ks_count_steered(svc, be, gi);
	return 1;
}

/*
 * sendmsg() with a destination: unconnected UDP. The socket keeps the backend
 * it got for a VIP until that service is rewritten (its rev changes), so one
 * socket's datagrams to a VIP stay on one backend. A new pick avoids the
 * backends the socket's other VIPs use, so that replies can be told apart.
 */
static __always_inline int do_sendmsg(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_svc_key k = {};
	const struct ks_backend *be;
	const struct ks_svc *svc;
	struct ks_sock_ent *e = NULL;
	struct ks_udp_sock *u;
	bool mapped, found;
	__u32 gi = KS_NO_GROUP, i = 0;	/* ks_pick sets gi once it has drawn a group */

	if (!dest_key(ctx, v6ctx, &k, &mapped))
		return 1;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc)
		return 1;
	u = ks_udp_get(ctx->sk, true);
	if (u) {
		i = ks_udp_slot(u, &k, &found) & (KS_UDP_ENTRIES - 1);
		e = &u->ent[i];
		if (found && e->rev == svc->rev) {
			ks_udp_sent(u, i);
			write_addr(ctx, e->be, e->be_port, v6ctx, mapped);
			return 1;
		}
	}
	be = ks_pick(svc, &gi);
	if (!be)
		return refuse(ctx, svc, gi);
	if (u) {
		be = ks_pick_unshared(svc, gi, be, u, &k);
		ks_sock_remember(e, &k, be, svc, gi);
		ks_udp_sent(u, i);
	}
	write_addr(ctx, be->addr, be->port, v6ctx, mapped);
	ks_count_steered(svc, be, gi);
	return 1;
}

/* getpeername(): only a connected socket has a peer to show as the VIP. */
static __always_inline int do_getpeername(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_sock_ent *e;
	__u32 a[4] = {};
	bool mapped;
	__u8 family;

	e = ks_sock_get(ctx->sk, false);
	if (!e)
		return 1;
	family = read_addr(ctx, v6ctx, a, &mapped);
	if (ks_sock_ent_is_backend(e, family, a, (__u16)ctx->user_port))
		write_addr(ctx, e->vip, e->vip_port, v6ctx, mapped);
	return 1;
}

/*
 * recvmsg(): the reply's source back to the VIP. A UDP socket may have
 * been connected (ks_sock) and may have sent unconnected (ks_udp_sock): the
 * connected peer is looked at first.
 */
static __always_inline int do_recvmsg(struct bpf_sock_addr *ctx, bool v6ctx)
{
	struct ks_sock_ent *e;
	struct ks_udp_sock *u;
	__u32 a[4] = {};
	bool mapped;
	__u8 family;

	family = read_addr(ctx, v6ctx, a, &mapped);
	e = ks_sock_get(ctx->sk, false);
	if (!e || !ks_sock_ent_is_backend(e, family, a, (__u16)ctx->user_port)) {
		u = ks_udp_get(ctx->sk, false);
		e = u ? ks_udp_by_backend(u, family, a, (__u16)ctx->user_port) : NULL;
	}
	if (e)
		write_addr(ctx, e->vip, e->vip_port, v6ctx, mapped);
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
int ksplit_recvmsg4(struct bpf_sock_addr *ctx) { return do_recvmsg(ctx, false); }

SEC("cgroup/recvmsg6")
int ksplit_recvmsg6(struct bpf_sock_addr *ctx) { return do_recvmsg(ctx, true); }

SEC("cgroup/getpeername4")
int ksplit_getpeername4(struct bpf_sock_addr *ctx) { return do_getpeername(ctx, false); }

SEC("cgroup/getpeername6")
int ksplit_getpeername6(struct bpf_sock_addr *ctx) { return do_getpeername(ctx, true); }
