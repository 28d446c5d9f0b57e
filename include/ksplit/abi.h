/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of ksplit: every map key and value that both the BPF
 * programs and the agent touch. Both sides include this file; a size change
 * here is a change of the pinned-map format, hence the static asserts.
 *
 * Changing a layout needs no `ksplit down`: an agent of the new build moves
 * the pinned entries into maps of its own layout, member by member, by name
 * (user/datapath/upgrade.c). So: a member whose meaning changes gets a new
 * name, a new member's zero must mean "as before", and no bitfields.
 *
 * KS_ABI_SKEW (test builds only: `make skew`) moves members and grows
 * ks_backend, so that selftests/kern/test_upgrade has another real build
 * to upgrade from and to.
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
#define KS_UDP_ENTRIES		16	/* VIPs remembered per unconnected UDP socket */

#define KS_FAMILY_V4		4
#define KS_FAMILY_V6		6

/* ks_svc.flags: for status only; the datapath does not read them. */
#define KS_SVC_F_DEGRADED	(1 << 0)	/* a group's weight was shifted away (empty-group: shift) */
#define KS_SVC_F_PANIC		(1 << 1)	/* no group had an eligible endpoint: health ignored */

/* Passive ejection (sockops): Envoy's outlier-detection shape. */
#define KS_PASSIVE_DEFAULT	3		/* consecutive failed connects that eject */
#define KS_EJECT_BASE_NS	(30ULL * 1000000000ULL)	/* ejection time x number of ejections */
#define KS_EJECT_MAX_NS		(300ULL * 1000000000ULL)
#define KS_EJECT_SCAN_MAX	1024		/* endpoints of a group the max-ejection cap looks at */

/*
 * ks_backend.flags: why an endpoint is not eligible. Eligible endpoints of a
 * group come first in its range (be_count of them); the rest (up to be_total)
 * are kept only so that status can show them. The health work adds its
 * states here.
 */
#define KS_BE_F_NOT_READY	(1 << 0)	/* EndpointSlice conditions.ready == false */
#define KS_BE_F_TERMINATING	(1 << 1)	/* conditions.terminating == true: drains */
#define KS_BE_F_UNHEALTHY	(1 << 2)	/* active checks failed (TargetGroupPolicy) */
#define KS_BE_F_UNCHECKED	(1 << 3)	/* checked Service, no passing check yet */
#define KS_BE_F_PANIC		(1 << 4)	/* eligible only because the route is in panic */
/* Flags that keep an endpoint from new connections. */
#define KS_BE_F_INELIGIBLE	(KS_BE_F_NOT_READY | KS_BE_F_TERMINATING | KS_BE_F_UNHEALTHY | \
				 KS_BE_F_UNCHECKED)
/* The subset that panic mode ignores: health verdicts, never readiness. */
#define KS_BE_F_HEALTH		(KS_BE_F_UNHEALTHY | KS_BE_F_UNCHECKED)

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
#ifndef KS_ABI_SKEW
	__u32 svc_id;		/* index into svc_stats, stable across applies */
	__u32 rev;		/* bumped by the agent on every rewrite of this entry */
#else
	__u32 rev;
	__u32 svc_id;
#endif
	__u16 n_groups;
	__u16 flags;		/* KS_SVC_F_* */
	__u32 total_weight;	/* == groups[n_groups-1].weight_end; 0 refuses all */
	__u16 passive_failures;	/* consecutive failed connects that eject; 0 = off */
	__u16 _pad;
	__u32 _pad2;
	struct ks_group groups[KS_MAX_GROUPS];
};

struct ks_backend {
	__u32 addr[4];		/* endpoint address, network order */
	__u16 port;		/* endpoint port, network order */
	__u8 family;
	__u8 flags;
	__u32 ep_id;		/* index into ep_stats, stable across applies */
#ifdef KS_ABI_SKEW
	__u64 skew_only;	/* a member the other build lacks: dropped, or born zero */
#endif
};

struct ks_ep_stats {
	__u64 connects;		/* connects (and first UDP sends) steered here */
	__u64 established;	/* TCP active opens that reached ESTABLISHED (sockops) */
	__u64 failed;		/* TCP active opens that went SYN_SENT -> CLOSE (RST, timeout) */
};

/*
 * Passive health per endpoint, indexed by ep_id. Shared by all CPUs (not
 * per-CPU) because the consecutive-failure count must be node-wide; updated
 * with atomics by sockops and read by every connect.
 */
struct ks_ep_health {
	__u32 consec_fail;	/* consecutive failed active opens */
	__u32 ejections;	/* how often ejected; scales the ejection time */
	__u64 ejected_until;	/* bpf_ktime_get_ns() deadline; 0 = not ejected */
	__u32 probation;	/* back from ejection: the next failure ejects again */
	__u32 _pad;
};

struct ks_svc_stats {
	__u64 connects;		/* connects that matched this VIP and were steered */
	__u64 refused;		/* connects refused: empty or invalid group, or no weight */
};

/*
 * Counters per backendRef, keyed by KS_GROUP_KEY(svc_id, group
 * index): what the metrics report per backendRef without reading every
 * endpoint, and monotonic while endpoints come and go. The agent zeroes a
 * key whenever its group starts naming another backendRef.
 */
struct ks_group_stats {
	__u64 connects;		/* connects steered to an endpoint of this group */
	__u64 refused;		/* connects refused because this group's share had no endpoint */
	__u64 ejections;	/* passive ejections of this group's endpoints */
};

#define KS_GROUP_KEY(svc_id, gi)	((svc_id) * KS_MAX_GROUPS + (gi))

/*
 * Names for status, written by the agent only: the datapath never reads it,
 * but it lives in a pinned map so that `ksplit status` works while the agent
 * is stopped and `bpftool map dump` shows which route owns a VIP.
 */
struct ks_svc_meta {
	char route[128];			/* "HTTPRoute checkout/checkoutroute" */
	char backend[KS_MAX_GROUPS][64];	/* "checkout/checkout:80" */
	__u32 weight[KS_MAX_GROUPS];		/* configured; groups[] hold the effective ones */
};

/*
 * What a socket needs to translate replies and getpeername() back to the
 * VIP. A connected socket (TCP, connected UDP) has one peer, hence one entry:
 * the whole value of its ks_sock storage. 48 bytes keep that storage element
 * at 120 bytes, in a 128-byte allocation (it is made on every connect).
 */
struct ks_sock_ent {
	__u32 vip[4];
	__u32 be[4];
	__u16 vip_port;
	__u16 be_port;
	__u8 family;
	__u8 used;
	__u8 group;		/* group index the backend came from */
	__u8 flags;		/* KS_SOCK_F_* */
	__u32 rev;		/* svc rev when the backend was chosen (UDP stickiness) */
	__u32 ep_id;		/* for sockops: whose passive health this socket reports */
};

/* ks_sock_ent.flags */
#define KS_SOCK_F_PASSIVE	(1 << 0)	/* the service had passive checks on at connect */

/*
 * Unconnected UDP (sendmsg with a destination): one socket may talk to many
 * VIPs, and a reply is matched to one by its source, the backend. Only such
 * sockets carry this record (ks_udp_sock storage).
 */
struct ks_udp_sock {
	struct ks_sock_ent ent[KS_UDP_ENTRIES];
	__u32 last_send[KS_UDP_ENTRIES];	/* seq of each entry's newest datagram */
	__u32 seq;		/* datagrams sent through ksplit on this socket */
	__u32 ambiguous;	/* replies whose source was the backend of more than one VIP */
	__u32 evicted;		/* entries overwritten: all KS_UDP_ENTRIES were in use */
	__u32 _pad;
};

/*
 * The per-packet path (bpf/tc.bpf.c): connection tracking of the flows it
 * translated. One flow has one entry, made by its first packet: the
 * forward one, keyed by the client's packet (dst = VIP), holds the backend.
 * A reply (backend -> client) finds it through ks_ct_vips, the VIP:ports
 * each backend addr:port was picked for: each candidate turned into a
 * forward key (client -> VIP) is looked up, and the entry that holds this
 * backend is the flow's. Only a flow ks_ct_vips cannot list (its backend
 * already serves KS_CT_VIPS other VIP:ports, or the index is full) gets
 * a reverse entry as well, keyed by the backend's reply, holding the VIP,
 * as every flow did before. LRU maps: the oldest flows make room when full.
 * Besides, a flow idle for longer than its timeout (TCP established, TCP
 * after FIN/RST, UDP; defaults below, `ksplit run --tc-*-timeout`) is
 * expired: the datapath treats its forward entry as absent, and the agent's
 * sweep deletes its entries.
 */
#define KS_CT_ENTRIES		65536	/* 1 per flow (2 for a flow ks_ct_vips cannot list) */
#define KS_CT_VIPS		4	/* VIP:ports listed per backend addr:port */
#define KS_CT_VIPS_ENTRIES	16384	/* (backend addr:port, slot) pairs in ks_ct_vips */
#define KS_CT_FRAG_ENTRIES	4096	/* fragmented datagrams in flight */

/* Idle timeouts of a flow, seconds (docs/design.md, "Flow timeouts"). */
#define KS_CT_TCP_TIMEOUT_S	21600	/* TCP established: 6 h */
#define KS_CT_CLOSE_TIMEOUT_S	10	/* TCP after a FIN or RST in either direction */
#define KS_CT_UDP_TIMEOUT_S	120	/* UDP: conntrack's stream timeout */

#define KS_CT_FWD		0	/* ks_ct_key.dir: client -> VIP */
#define KS_CT_REV		1	/* ks_ct_key.dir: backend -> client */

struct ks_ct_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;		/* network order */
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir;		/* KS_CT_FWD / KS_CT_REV */
	__u8 _pad;
};

struct ks_ct_ent {
	__u32 addr[4];		/* forward: the backend (new dst); reverse: the VIP (new src) */
	__u16 port;		/* likewise, network order */
	__u8 group;		/* group index the backend came from */
	__u8 closing;		/* TCP: a FIN or RST went either way (reverse: the reply's way): short timeout */
	__u32 rev;		/* forward: svc rev the backend was last found listed in */
	__u32 ep_id;
	__u32 syn_seq;		/* forward, TCP: the SYN's sequence number (a retransmit repeats it) */
	__u64 last_seen;	/* CLOCK_MONOTONIC_COARSE ns of the flow's (reverse: its replies') last
				 * packet; 0: not yet stamped */
};

/*
 * ks_ct_vips: slot idx (0 .. KS_CT_VIPS - 1) of backend addr:port lists a
 * VIP:port a flow to it was picked for. Slots fill in order and the
 * datapath never deletes one (a slot of a VIP that no longer uses the
 * backend only costs a lookup that misses), so the first absent slot ends
 * the list; the agent's sweep deletes all of a backend's slots once no
 * service lists it (user/datapath/ct_gc.c); one key per
 * slot, so that two CPUs adding VIPs at once cannot lose one (each insert
 * is BPF_NOEXIST).
 */
struct ks_ct_be_key {
	__u32 addr[4];		/* the backend */
	__u16 port;		/* network order */
	__u8 proto;
	__u8 family;
	__u8 idx;		/* slot */
	__u8 _pad[3];
};

struct ks_ct_vip {
	__u32 addr[4];		/* the VIP */
	__u16 port;		/* network order */
	__u16 _pad;
};

/*
 * Later fragments carry no ports: the first fragment's translation is
 * remembered by the datagram's identification (IPv4 16 bits, IPv6 32).
 */
struct ks_frag_key {
	__u32 src[4];
	__u32 dst[4];
	__u32 id;
	__u8 proto;
	__u8 family;
	__u8 dir;		/* KS_CT_FWD: rewrite dst; KS_CT_REV: rewrite src */
	__u8 _pad;
};

struct ks_frag_ent {
	__u32 addr[4];		/* the address that replaces dst (forward) or src (reverse) */
};

/* Per-CPU counters of the per-packet path (one entry, key 0). */
struct ks_tc_stats {
	__u64 new_flows;	/* first packets that picked a backend */
	__u64 fwd;		/* packets translated client -> backend (new flows included) */
	__u64 rev;		/* replies translated backend -> VIP */
	__u64 frags;		/* later fragments translated through ks_ct_frag */
	__u64 first_frags;	/* first fragments whose translation was remembered for the rest */
	__u64 refused;		/* new flows whose share had no backend: dropped */
	__u64 stale;		/* packets of a flow whose endpoint left the service: dropped */
	__u64 no_syn;		/* TCP to a VIP without SYN and without entry: passed untouched */
	__u64 icmp;		/* ICMP errors about a translated flow, translated toward the client */
	__u64 expired;		/* packets that found their flow's entry past its idle timeout */
};

_Static_assert(sizeof(struct ks_svc_key) == 20, "ks_svc_key ABI");
_Static_assert(sizeof(struct ks_group) == 16, "ks_group ABI");
_Static_assert(sizeof(struct ks_svc) == 24 + 16 * KS_MAX_GROUPS, "ks_svc ABI");
_Static_assert(sizeof(struct ks_ep_health) == 24, "ks_ep_health ABI");
_Static_assert(sizeof(struct ks_svc_meta) == 128 + 68 * KS_MAX_GROUPS, "ks_svc_meta ABI");
#ifndef KS_ABI_SKEW
_Static_assert(sizeof(struct ks_backend) == 24, "ks_backend ABI");
#else
_Static_assert(sizeof(struct ks_backend) == 32, "ks_backend ABI (skew test build)");
#endif
_Static_assert(sizeof(struct ks_ep_stats) == 24, "ks_ep_stats ABI");
_Static_assert(sizeof(struct ks_svc_stats) == 16, "ks_svc_stats ABI");
_Static_assert(sizeof(struct ks_group_stats) == 24, "ks_group_stats ABI");
_Static_assert(sizeof(struct ks_sock_ent) == 48, "ks_sock_ent ABI");
_Static_assert(sizeof(struct ks_udp_sock) == 16 + 52 * KS_UDP_ENTRIES, "ks_udp_sock ABI");
_Static_assert(sizeof(struct ks_ct_key) == 40, "ks_ct_key ABI");
_Static_assert(sizeof(struct ks_ct_ent) == 40, "ks_ct_ent ABI");
_Static_assert(sizeof(struct ks_ct_be_key) == 24, "ks_ct_be_key ABI");
_Static_assert(sizeof(struct ks_ct_vip) == 20, "ks_ct_vip ABI");
_Static_assert(sizeof(struct ks_frag_key) == 40, "ks_frag_key ABI");
_Static_assert(sizeof(struct ks_frag_ent) == 16, "ks_frag_ent ABI");
_Static_assert(sizeof(struct ks_tc_stats) == 80, "ks_tc_stats ABI");

#endif /* KSPLIT_ABI_H */
