/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps of ksplit. Every map is pinned by name under the agent's pin dir
 * so that a restarted agent adopts them and `bpftool map dump pinned` works.
 * Sizes are the defaults; the agent sets the real ones before load.
 */
#ifndef KSPLIT_BPF_MAPS_H
#define KSPLIT_BPF_MAPS_H

#include <ksplit/abi.h>

/*
 * bpf/maps.bpf.c alone defines the maps (KS_DEFINE_MAPS); every program
 * object includes this header without it and sees them extern, and
 * `bpftool gen object` resolves them into one set of maps. With libbpf 1.1
 * the defining object must come first on the link line, otherwise
 * relocations of programs in an earlier object are lost: the Makefile names
 * maps.bpf.o first on purpose, so adding a program object cannot break it.
 */
#ifdef KS_DEFINE_MAPS
#define KS_MAP
#else
#define KS_MAP extern
#endif

/* VIP:port:proto -> the service's groups; replaced whole, one entry per apply. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* No prealloc: a replaced value is freed after RCU, never recycled under a reader. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KS_MAX_SERVICES);
	__type(key, struct ks_svc_key);
	__type(value, struct ks_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_services SEC(".maps");

/* Endpoint slots; each group owns a contiguous range written before it is published. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_BACKEND_SLOTS);
	__type(key, __u32);
	__type(value, struct ks_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_backends SEC(".maps");

/*
 * Counters per endpoint, indexed by ks_backend.ep_id; per service (svc_id)
 * and per backendRef (KS_GROUP_KEY). Plain arrays shared by all CPUs, added
 * to with atomics: their lookups are inlined into the programs, where a
 * per-CPU hash costs a hashed lookup on every connect, 27 us per element the
 * agent creates, and memory per CPU (a million endpoints x 96 CPUs). The
 * price is a shared cache line per hot counter (docs/design.md, "Counters").
 */
#ifndef KS_ABI_SKEW
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct ks_ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ep_stats SEC(".maps");
#else
/* The test build keeps the per-CPU hash of earlier builds: the upgrade must move it (test_upgrade). */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KS_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct ks_ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ep_stats SEC(".maps");
#endif

/* Steered/refused counters per service, indexed by ks_svc.svc_id. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct ks_svc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_svc_stats SEC(".maps");

/* Counters per backendRef, indexed by KS_GROUP_KEY(svc_id, gi). */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_MAX_SERVICES * KS_MAX_GROUPS);
	__type(key, __u32);
	__type(value, struct ks_group_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_group_stats SEC(".maps");

/* Passive health per ep_id: consecutive failures and ejection deadline, node-wide. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct ks_ep_health);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ep_health SEC(".maps");

/* Route and backend names per svc_id, for status and bpftool; agent-written only. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct ks_svc_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_svc_meta SEC(".maps");

/*
 * Per-socket VIP <-> backend translation of connected sockets (TCP,
 * connected UDP): one entry each; freed with the socket, so it cannot overflow.
 */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ks_sock_ent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_sock SEC(".maps");

/* The same for unconnected UDP sendmsg: up to KS_UDP_ENTRIES VIPs per socket. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ks_udp_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_udp_sock SEC(".maps");

/* Per-packet path: the flows it translated, one entry each (abi.h, ks_ct_key). */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	/* Per-CPU LRU lists: a new flow's insert takes no node-wide lock. */
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, KS_CT_ENTRIES);
	__type(key, struct ks_ct_key);
	__type(value, struct ks_ct_ent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ct SEC(".maps");

/*
 * Per-packet path: the VIP:ports of each backend, for its replies to find
 * their flow's forward entry (abi.h, ks_ct_be_key). Written by the
 * datapath at a flow's first packet, a plain hash: never evicted, since a
 * slot that went would hide the slots after it (the agent deletes a gone
 * backend's slots all at once).
 */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_CT_VIPS_ENTRIES);
	__type(key, struct ks_ct_be_key);
	__type(value, struct ks_ct_vip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ct_vips SEC(".maps");

/* Per-packet path: the translation of a fragmented datagram, for its later fragments. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KS_CT_FRAG_ENTRIES);
	__type(key, struct ks_frag_key);
	__type(value, struct ks_frag_ent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_ct_frag SEC(".maps");

/* Per-packet path: its own counters; steered/refused also go to the maps above. */
KS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_tc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ks_tc_stats SEC(".maps");

#endif /* KSPLIT_BPF_MAPS_H */
