/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The datapath handle: loads (or adopts) the BPF programs and pinned maps,
 * attaches them to one cgroup through pinned bpf_links, and applies map
 * images with the per-service atomic update protocol of docs/design.md.
 */
#ifndef KSPLIT_DP_H
#define KSPLIT_DP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/hostcheck.h"
#include "datapath/drain.h"
#include "image/image.h"

struct ks_dp;

#define KS_CGROUP_NONE	"none"	/* --cgroup none: attach no socket hooks */

struct ks_dp_opts {
	const char *pin_dir;		/* NULL: KS_DEFAULT_PIN_DIR */
	const char *cgroup;		/* NULL: the cgroup2 root (production only); "none": no socket hooks */
	uint32_t max_services;		/* 0: KS_MAX_SERVICES */
	uint32_t max_endpoints;		/* 0: KS_MAX_ENDPOINTS */
	/* Idle timeouts of the TC path's flows, seconds; 0: KS_CT_*_TIMEOUT_S (abi.h). */
	uint32_t tc_tcp_timeout_s, tc_close_timeout_s, tc_udp_timeout_s;
};

struct ks_apply_stats {
	uint32_t added, changed, removed, unchanged;
	uint32_t backends_written;
	/* From the apply's start to its last ks_services write: in force for new connects. */
	uint64_t publish_us;
};

int ks_dp_open(const struct ks_dp_opts *opts, struct ks_dp **out);
/* True when ks_dp_open found pinned state and took it over. */
bool ks_dp_adopted(const struct ks_dp *dp);
/*
 * Make the maps hold img. Each service is replaced atomically; when this
 * returns 0 no running or future connect() uses the old state. On error
 * nothing has changed.
 */
int ks_dp_apply(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st);
/*
 * The same, and *gone (malloc'ed, caller frees) lists the endpoints that left
 * a service entirely: when there are none, the apply gave drain nothing to
 * do. An endpoint that is still listed, e.g. terminating, is not gone: its
 * connections may finish.
 */
int ks_dp_apply_gone(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st,
		     struct ks_drain_target **gone, size_t *n_gone);
/*
 * Incremental: img lists only services that changed, each of them already
 * in force (its key in the last apply); every other service stays as it
 * is. Same protocol and *gone as ks_dp_apply_gone. -ENOENT when a key is
 * not in force: the caller applies in full.
 */
int ks_dp_apply_some(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st,
		     struct ks_drain_target **gone, size_t *n_gone);
/*
 * Drain as a reconciliation: destroy every socket in the cgroup's network
 * namespaces that ksplit steered to an endpoint which its VIP no longer
 * lists in the maps (docs/design.md, "What drain touches"). Cheap enough
 * for every apply that removed an endpoint, and right for a start after a
 * crash between an apply and its drain.
 */
int ks_dp_reconcile(struct ks_dp *dp, struct ks_drain_stats *st);
/*
 * Clear the passive ejection of every ejected endpoint for which pick() says
 * yes (its active checks recovered). *n counts them.
 */
int ks_dp_uneject(struct ks_dp *dp, bool (*pick)(void *ctx, const struct ks_backend *be),
		  void *ctx, unsigned int *n);
/* The cgroup the datapath is attached to. */
const char *ks_dp_cgroup(const struct ks_dp *dp);
/*
 * Whether the pins outlive this process: not when ks_dp_open mounted the
 * bpffs itself in a private mount namespace that this process is the last
 * one in (common/hostcheck.h).
 */
enum ks_pin_fate ks_dp_pin_fate(const struct ks_dp *dp, char *why, size_t len);
/*
 * Attach the per-packet programs (both directions) to every interface that
 * ifaces names: a name, or PREFIX+ for every interface whose name starts
 * with PREFIX, now and later (watch ks_dp_tc_fd, then call
 * ks_dp_tc_process). tcx links where the kernel has them, else (or with
 * clsact) clsact + cls_bpf. ifaces must outlive dp. A plain name that does
 * not exist is an error.
 */
int ks_dp_tc_start(struct ks_dp *dp, const char *const *ifaces, size_t n, bool clsact);
/* The netlink socket that reports new interfaces; -1 when no PREFIX+ is watched. */
int ks_dp_tc_fd(const struct ks_dp *dp);
/* Attach to the interfaces made since the last call that a PREFIX+ matches. */
void ks_dp_tc_process(struct ks_dp *dp);
/* The per-packet program for the node side's ingress (client -> VIP) or egress (replies). */
int ks_dp_tc_prog_fd(const struct ks_dp *dp, bool ingress);
/*
 * The TC path's sweep: delete the ks_ct entries of flows idle for longer
 * than their timeout (the rule bpf/tc.bpf.c applies to a flow's next
 * packet), both entries of a flow at once, and stamp entries an older build
 * left without a time so that they expire too. *deleted counts entries.
 */
int ks_dp_ct_gc(struct ks_dp *dp, unsigned int *deleted);
/* Close the handle; links and maps stay pinned and keep working (see ks_dp_pin_fate). */
void ks_dp_close(struct ks_dp *dp);
/* Detach every link pinned in pin_dir and remove ksplit's pins. */
int ks_dp_down(const char *pin_dir, unsigned int *removed);

struct ks_dp_check {
	unsigned int repaired;		/* found broken in this round and put right */
	unsigned int broken;		/* still broken (logged at error when first seen) */
	unsigned int foreign;		/* other programs running on ksplit's hooks */
	unsigned int tc_relinked;	/* TC programs put back on an interface (also in repaired) */
	unsigned int tc_swept;		/* ks_ct entries of idle TC flows deleted (ks_dp_ct_gc) */
};

/*
 * Verify that the datapath is still what ks_dp_open made: the cgroup is the
 * same (a removed and re-made cgroup has a new id), every hook's link is
 * attached to it and pinned, every map is pinned. Put right what can be:
 * re-attach a detached or missing hook, follow a re-made cgroup, pin again,
 * put the TC programs back on an interface that lost them. With --tc-iface,
 * the same round sweeps the TC path's idle flows (ks_dp_ct_gc).
 * The maps keep the last applied state meanwhile, so traffic recovers as
 * soon as the hook is back. Repairs are logged at warn, what stays broken
 * at error (once, until it changes).
 */
int ks_dp_selfcheck(struct ks_dp *dp, struct ks_dp_check *res);

struct json_object;
/*
 * The datapath pinned in pin_dir as `ksplit status` shows it: each hook's
 * link (attached, detached, missing, or attached elsewhere), the cgroup,
 * and the other programs on the same hooks (the cgroup's and its
 * ancestors', in the order they run). *ok is false unless every hook is
 * attached to that cgroup.
 */
int ks_dp_status(const char *pin_dir, struct json_object **out, bool *ok);
void ks_dp_status_text(FILE *f, struct json_object *dps);

#endif
