/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of ksplit: every map key and value that both the BPF
 * programs and the agent touch. Both sides include this file; a size change
 * here is a change of the pinned-map format, hence the static asserts.
 *
 * Addresses are stored in network byte order in a 16-byte field; an IPv4
 * address occupies addr[0] and addr[1..3] are zero. Ports are stored in
 * network byte order, exactly as the sock_addr context carries them.
 */
#ifndef KSPLIT_ABI_H
#define KSPLIT_ABI_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#else
#include <linux/types.h>
#endif

#define KS_MAX_GROUPS		16	/* Gateway API: at most 16 backendRefs per rule */
#define KS_MAX_WEIGHT		1000000	/* Gateway API weight range is 0..1,000,000 */

/* Default capacities; the agent may raise them when it creates the maps. */
#define KS_MAX_SERVICES		65536	/* VIP:port:proto entries */
#define KS_MAX_ENDPOINTS	1048576	/* endpoint slots a config may use */
/*
 * The backend table holds twice the configured endpoints so that a service
 * can be rewritten into fresh slots while its old slots are still readable
 * by connects in flight (see docs/design.md, "update protocol").
 */
#define KS_BACKEND_SLOTS	(2 * KS_MAX_ENDPOINTS)
#define KS_SOCK_ENTRIES		4	/* VIPs remembered per socket */

#define KS_FAMILY_V4		4
#define KS_FAMILY_V6		6

/* ks_svc.flags */
#define KS_SVC_F_NONE		0

/*
 * ks_backend.flags: why an endpoint is not eligible. Eligible endpoints of a
 * group come first in its range (be_count of them); the rest (up to be_total)
 * are kept only so that status can show them. The health work adds its
 * states here.
 */
#define KS_BE_F_NOT_READY	(1 << 0)	/* EndpointSlice conditions.ready == false */
#define KS_BE_F_TERMINATING	(1 << 1)	/* conditions.terminating == true: drains */

struct ks_svc_key {
	__u32 addr[4];		/* VIP, network order */
	__u16 port;		/* VIP port, network order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;		/* KS_FAMILY_V4 / KS_FAMILY_V6 */
};

/* One backendRef of a route rule, as the datapath sees it. */
struct ks_group {
	__u32 weight_end;	/* cumulative weight: group i owns [end(i-1), end(i)) */
	__u32 be_base;		/* first slot in backends map */
	__u32 be_count;		/* eligible endpoints; 0 means refuse this share */
	__u32 be_total;		/* eligible + listed-but-ineligible endpoints */
};

struct ks_svc {
	__u32 svc_id;		/* index into svc_stats, stable across applies */
	__u32 rev;		/* bumped by the agent on every rewrite of this entry */
	__u16 n_groups;
	__u16 flags;
	__u32 total_weight;	/* == groups[n_groups-1].weight_end; 0 refuses all */
	struct ks_group groups[KS_MAX_GROUPS];
};

struct ks_backend {
	__u32 addr[4];		/* endpoint address, network order */
	__u16 port;		/* endpoint port, network order */
	__u8 family;
	__u8 flags;
	__u32 ep_id;		/* index into ep_stats, stable across applies */
};

struct ks_ep_stats {
	__u64 connects;		/* connects (and first UDP sends) steered here */
};

struct ks_svc_stats {
	__u64 connects;		/* connects that matched this VIP and were steered */
	__u64 refused;		/* connects refused: empty or invalid group, or no weight */
};

/*
 * Names for status, written by the agent only: the datapath never reads it,
 * but it lives in a pinned map so that `ksplit status` works while the agent
 * is stopped and `bpftool map dump` shows which route owns a VIP.
 */
struct ks_svc_meta {
	char route[128];			/* "HTTPRoute checkout/checkoutroute" */
	char backend[KS_MAX_GROUPS][64];	/* "checkout/checkout:80" */
};

/* What a socket needs to translate replies and getpeername() back to the VIP. */
struct ks_sock_ent {
	__u32 vip[4];
	__u32 be[4];
	__u16 vip_port;
	__u16 be_port;
	__u8 family;
	__u8 used;
	__u16 _pad;
	__u32 rev;		/* svc rev when the backend was chosen (UDP stickiness) */
};

struct ks_sock {
	struct ks_sock_ent ent[KS_SOCK_ENTRIES];
	__u32 next;		/* round-robin victim when all entries are used */
};

_Static_assert(sizeof(struct ks_svc_key) == 20, "ks_svc_key ABI");
_Static_assert(sizeof(struct ks_group) == 16, "ks_group ABI");
_Static_assert(sizeof(struct ks_svc) == 16 + 16 * KS_MAX_GROUPS, "ks_svc ABI");
_Static_assert(sizeof(struct ks_svc_meta) == 128 + 64 * KS_MAX_GROUPS, "ks_svc_meta ABI");
_Static_assert(sizeof(struct ks_backend) == 24, "ks_backend ABI");
_Static_assert(sizeof(struct ks_ep_stats) == 8, "ks_ep_stats ABI");
_Static_assert(sizeof(struct ks_svc_stats) == 16, "ks_svc_stats ABI");
_Static_assert(sizeof(struct ks_sock_ent) == 44, "ks_sock_ent ABI");
_Static_assert(sizeof(struct ks_sock) == 4 + 44 * KS_SOCK_ENTRIES, "ks_sock ABI");

#endif /* KSPLIT_ABI_H */
