/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the datapath's own files share, and nobody else: the handle behind
 * struct ks_dp and the calls between load.c (open, adopt, close), hooks.c
 * (the hook table, links, down) and apply.c (plan, write, publish). It
 * includes the generated skeleton, so only user/datapath/ may include it.
 */
#ifndef KSPLIT_DP_INT_H
#define KSPLIT_DP_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath/alloc.h"
#include "datapath/dp.h"
#include "ksplit.skel.h"

/* Room for one link per hook; hooks.c fails to build if its table outgrows it. */
#define KS_DP_MAX_HOOKS	16

struct dp_svc {
	struct ksi_service s;	/* groups[].be carry the ep_ids in use */
	struct ks_svc val;	/* as written to ks_services */
	bool moved;		/* ownership passed on during apply */
};

struct ks_dp {
	struct ksplit_bpf *skel;
	char cgroup[PATH_MAX];
	char pin_dir[PATH_MAX - 64];	/* room left for the names pinned below it */
	int cg_fd;
	int sync_outer, sync_inner;
	int ncpus;
	bool adopted;
	uint32_t max_services, max_endpoints;
	uint32_t next_rev;
	struct ks_idalloc svc_ids, ep_ids;
	struct ks_rangealloc slots;
	size_t n;
	struct dp_svc *svcs;		/* sorted by key */
	size_t n_links;
	struct bpf_link *links[KS_DP_MAX_HOOKS];
};

/* load.c: the userspace view of the services. */
void dp_svc_free(struct dp_svc *d);
void dp_state_free(struct dp_svc *v, size_t n);

/* hooks.c */
/* Every program of the opened object has a row in the hook table and agrees with it. */
int dp_hooks_check(const struct ks_dp *dp);
/* Attach each hook to dp->cg_fd (cgroup id cg_id), adopting pinned links. */
int dp_hooks_attach(struct ks_dp *dp, uint64_t cg_id);
/* Drop our link fds; pinned links stay attached. */
void dp_hooks_close(struct ks_dp *dp);

#endif
