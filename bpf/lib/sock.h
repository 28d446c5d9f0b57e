/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-socket record (ks_sock socket storage): which backend the socket
 * was given for each VIP it talked to. Forward hooks find an entry by VIP;
 * reverse translation and passive health find it by backend. The hooks
 * bring the addresses out of their own context type, in ksplit's form
 * (lib/addr.h), so every lookup here is the same for all of them.
 */
#ifndef KSPLIT_BPF_SOCK_H
#define KSPLIT_BPF_SOCK_H

#include "lib/addr.h"
#include "lib/maps.h"

/* The socket's record; with create, made on first use (freed with the socket). */
static __always_inline struct ks_sock *ks_sock_get(struct bpf_sock *sk, bool create)
{
	return bpf_sk_storage_get(&ks_sock, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

static __always_inline bool ks_sock_ent_is_vip(const struct ks_sock_ent *e,
					       const struct ks_svc_key *k)
{
	return e->used && e->family == k->family && e->vip_port == k->port &&
	       ks_addr_eq(e->vip, k->addr);
}

/* Entry for this VIP (*found), or a free/victim entry to overwrite. */
static __always_inline struct ks_sock_ent *ks_sock_slot(struct ks_sock *s,
							const struct ks_svc_key *k, bool *found)
{
	__u32 i, v;

	*found = false;
#pragma unroll
	for (i = 0; i < KS_SOCK_ENTRIES; i++) {
		if (ks_sock_ent_is_vip(&s->ent[i], k)) {
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

/* Record that this socket's traffic to k goes to be (group gi of service revision rev). */
static __always_inline void ks_sock_remember(struct ks_sock_ent *e, const struct ks_svc_key *k,
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

/* The entry whose backend is addr:port (port in network order), or NULL. */
static __always_inline struct ks_sock_ent *ks_sock_by_backend(struct ks_sock *s, __u8 family,
							      const __u32 *addr, __u16 port)
{
	__u32 i;

#pragma unroll
	for (i = 0; i < KS_SOCK_ENTRIES; i++) {
		struct ks_sock_ent *e = &s->ent[i];

		if (e->used && e->family == family && e->be_port == port && ks_addr_eq(e->be, addr))
			return e;
	}
	return NULL;
}

#endif /* KSPLIT_BPF_SOCK_H */
