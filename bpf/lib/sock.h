/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-socket records: which backend a socket was given for a VIP.
 *
 * - ks_sock: connected sockets (TCP, connected UDP). One peer, one entry,
 *   made by connect and read by getpeername, recvmsg and sockops. It is
 *   made on every connect, so it is kept small (see abi.h).
 * - ks_udp_sock: unconnected UDP sendmsg, which may talk to many VIPs
 *   from one socket: up to KS_UDP_ENTRIES entries, the least recently
 *   sent to is overwritten when they are all in use.
 *
 * Forward hooks find an entry by VIP; reverse translation and passive
 * health find it by backend. The hooks bring the addresses out of their
 * own context type, in ksplit's form (lib/addr.h), so every lookup here is
 * the same for all of them.
 */
#ifndef KSPLIT_BPF_SOCK_H
#define KSPLIT_BPF_SOCK_H

#include "lib/addr.h"
#include "lib/bound.h"
#include "lib/maps.h"

/* The connected socket's entry; with create, made on first use (freed with the socket). */
static __always_inline struct ks_sock_ent *ks_sock_get(struct bpf_sock *sk, bool create)
{
	return bpf_sk_storage_get(&ks_sock, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/* The unconnected UDP socket's record, likewise. */
static __always_inline struct ks_udp_sock *ks_udp_get(struct bpf_sock *sk, bool create)
{
	return bpf_sk_storage_get(&ks_udp_sock, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

static __always_inline bool ks_sock_ent_is_vip(const struct ks_sock_ent *e,
					       const struct ks_svc_key *k)
{
	return e->used && e->family == k->family && e->vip_port == k->port &&
	       ks_addr_eq(e->vip, k->addr);
}

/* Is e's backend addr:port (port in network order)? */
static __always_inline bool ks_sock_ent_is_backend(const struct ks_sock_ent *e, __u8 family,
						   const __u32 *addr, __u16 port)
{
	return e->used && e->family == family && e->be_port == port && ks_addr_eq(e->be, addr);
}

/* Record that this socket's traffic to k goes to be (group gi of svc). */
static __always_inline void ks_sock_remember(struct ks_sock_ent *e, const struct ks_svc_key *k,
					     const struct ks_backend *be, const struct ks_svc *svc,
					     __u32 gi)
{
	e->ep_id = be->ep_id;
	e->group = gi;
	__builtin_memcpy(e->vip, k->addr, sizeof(e->vip));
	__builtin_memcpy(e->be, be->addr, sizeof(e->be));
	e->vip_port = k->port;
	e->be_port = be->port;
	e->family = k->family;
	e->rev = svc->rev;
	e->flags = svc->passive_failures ? KS_SOCK_F_PASSIVE : 0;
	e->used = 1;
}

/*
 * The UDP record is searched in bpf_loop callbacks rather than unrolled
 * loops: a callback is verified once and its answer is one unknown index,
 * where an unrolled search hands the rest of the program a separate path
 * for every entry it can return (sendmsg did not fit the verifier's budget).
 */
struct ks_udp_find {
	struct ks_udp_sock *u;
	const struct ks_svc_key *k;
	__u32 found, free, oldest;	/* entry indexes; KS_UDP_ENTRIES: none */
	__u32 oldest_seq;
};

static long ks_udp_find_cb(__u32 i, struct ks_udp_find *c)
{
	struct ks_udp_sock *u = c->u;
	struct ks_sock_ent *e;

	if (i >= KS_UDP_ENTRIES)
		return 1;
	e = &u->ent[i];
	if (ks_sock_ent_is_vip(e, c->k)) {
		c->found = i;
		return 1;
	}
	if (!e->used) {
		if (c->free >= KS_UDP_ENTRIES)
			c->free = i;
		return 0;
	}
	/* Sequence numbers wrap: compare by difference. */
	if (c->oldest >= KS_UDP_ENTRIES || (__s32)(u->last_send[i] - c->oldest_seq) < 0) {
		c->oldest = i;
		c->oldest_seq = u->last_send[i];
	}
	return 0;
}

/*
 * Index of the entry for this VIP (*found), or of a free entry, or of the
 * least recently sent to (counted in evicted), to overwrite.
 */
static __always_inline __u32 ks_udp_slot(struct ks_udp_sock *u, const struct ks_svc_key *k,
					 bool *found)
{
	struct ks_udp_find c = { .u = u, .k = k, .found = KS_UDP_ENTRIES,
				 .free = KS_UDP_ENTRIES, .oldest = KS_UDP_ENTRIES };

	bpf_loop(KS_UDP_ENTRIES, ks_udp_find_cb, &c, 0);
	*found = c.found < KS_UDP_ENTRIES;
	/* The callback's indexes, bounded again for 6.1 (lib/bound.h). */
	if (*found)
		return ks_bound(c.found, KS_UDP_ENTRIES);
	if (c.free < KS_UDP_ENTRIES)
		return ks_bound(c.free, KS_UDP_ENTRIES);
	u->evicted++;
	return ks_bound(c.oldest, KS_UDP_ENTRIES);
}

/* A datagram to entry i leaves now: its backend is the newest user of that source. */
static __always_inline void ks_udp_sent(struct ks_udp_sock *u, __u32 i)
{
	u->last_send[i & (KS_UDP_ENTRIES - 1)] = ++u->seq;
}

/* Does a VIP other than k already send this socket's datagrams to be? */
static __always_inline bool ks_udp_backend_taken(const struct ks_udp_sock *u,
						 const struct ks_svc_key *k,
						 const struct ks_backend *be)
{
	__u32 i;

#pragma unroll
	for (i = 0; i < KS_UDP_ENTRIES; i++) {
		const struct ks_sock_ent *e = &u->ent[i];

		if (ks_sock_ent_is_backend(e, be->family, be->addr, be->port) &&
		    !ks_sock_ent_is_vip(e, k))
			return true;
	}
	return false;
}

struct ks_udp_match {
	struct ks_udp_sock *u;
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u32 best, newest, n;	/* best: entry index, KS_UDP_ENTRIES while none */
};

static long ks_udp_match_cb(__u32 i, struct ks_udp_match *c)
{
	struct ks_udp_sock *u = c->u;

	if (i >= KS_UDP_ENTRIES)
		return 1;
	if (!ks_sock_ent_is_backend(&u->ent[i], c->family, c->addr, c->port))
		return 0;
	c->n++;
	if (c->best >= KS_UDP_ENTRIES || (__s32)(u->last_send[i] - c->newest) > 0) {
		c->best = i;
		c->newest = u->last_send[i];
	}
	return 0;
}

/*
 * The entry whose backend is the reply's source addr:port, or NULL. When
 * several VIPs of the socket share that backend (the pick avoids it, but a
 * VIP may have no other), the reply cannot tell which one it answers: the
 * VIP sent to most recently wins, and the reply is counted in ambiguous
 * (docs/design.md, "Unconnected UDP").
 */
static __always_inline struct ks_sock_ent *ks_udp_by_backend(struct ks_udp_sock *u, __u8 family,
							     const __u32 *addr, __u16 port)
{
	struct ks_udp_match c = { .u = u, .port = port, .family = family,
				  .best = KS_UDP_ENTRIES };

	__builtin_memcpy(c.addr, addr, sizeof(c.addr));
	bpf_loop(KS_UDP_ENTRIES, ks_udp_match_cb, &c, 0);
	if (c.best >= KS_UDP_ENTRIES)
		return NULL;
	if (c.n > 1)
		__sync_fetch_and_add(&u->ambiguous, 1);
	return &u->ent[ks_bound(c.best, KS_UDP_ENTRIES)];
}

#endif /* KSPLIT_BPF_SOCK_H */
