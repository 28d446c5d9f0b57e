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
#include <string.h>

#include "datapath/alloc.h"
#include "datapath/dp.h"
#include "ksplit.skel.h"

/* Room for one link per hook; hooks.c fails to build if its table outgrows it. */
#define KS_DP_MAX_HOOKS	16
#define KS_LINK_PREFIX	"link_"
/* Room for every pinned map; upgrade.c fails cleanly if the object outgrows it. */
#define KS_DP_MAX_MAPS	16

enum ks_hook_kind {
	KS_HOOK_CGROUP,		/* bpf_link on the datapath's cgroup */
	KS_HOOK_TC,		/* per-packet program, attached per interface (tc.c) */
};

/*
 * enum bpf_attach_type values of kernel 6.6's uapi linux/bpf.h: Debian 12's
 * headers (6.1) lack them. tc.c checks them against the running kernel's
 * BTF before it uses them.
 */
#define KS_TCX_INGRESS	((enum bpf_attach_type)46)
#define KS_TCX_EGRESS	((enum bpf_attach_type)47)

struct ks_hook {
	const char *prog;		/* program name in the object */
	enum ks_hook_kind kind;
	enum bpf_attach_type type;	/* must match the program's SEC() */
	const char *pin;		/* link pin name under the pin dir */
};

struct dp_svc {
	struct ksi_service s;	/* groups[].be carry the ep_ids in use */
	struct ks_svc val;	/* as written to ks_services */
	bool moved;		/* ownership passed on during apply */
};

/*
 * What the last self-check found wrong and has said so: a problem that stays
 * is logged once, not every round, and its end is logged too.
 */
struct dp_check_memo {
	bool cgroup_gone;
	bool hook_bad[KS_DP_MAX_HOOKS];
	bool pins_bad;
	uint64_t foreign_sum;		/* of the foreign programs last reported */
};

struct ks_dp {
	struct ksplit_bpf *skel;
	char cgroup[PATH_MAX];
	char pin_dir[PATH_MAX - 64];	/* room left for the names pinned below it */
	int cg_fd;
	uint64_t cg_id;			/* of the cgroup cg_fd is open on */
	int sync_outer, sync_inner;
	int ncpus;
	bool adopted;
	bool bpffs_mounted;		/* ks_dp_open mounted /sys/fs/bpf itself */
	uint32_t max_services, max_endpoints;
	uint32_t next_rev;
	struct ks_idalloc svc_ids, ep_ids;
	struct ks_rangealloc slots;
	size_t n;
	struct dp_svc *svcs;		/* sorted by key */
	size_t n_links;
	struct bpf_link *links[KS_DP_MAX_HOOKS];	/* links[i] serves dp_hook(i) */
	struct dp_check_memo memo;	/* what the self-check reported last (selfcheck.c) */
	size_t n_staged;		/* maps created in the staging dir by an upgrade */
	struct bpf_map *staged[KS_DP_MAX_MAPS];
	struct dp_tc *tc;		/* the TC programs' interfaces (tc.c); NULL: none */
	uint64_t ct_timeout_ns[3];	/* TCP established, TCP closing, UDP (ct_gc.c) */
};

enum { DP_CT_TCP, DP_CT_CLOSE, DP_CT_UDP };

/* --cgroup none: the datapath has no cgroup and no socket hooks, only the TC programs. */
static inline bool dp_no_cgroup(const struct ks_dp *dp)
{
	return !strcmp(dp->cgroup, KS_CGROUP_NONE);
}

/* Maps whose values the kernel keeps once per CPU. */
static inline bool dp_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/*
 * Bytes per entry of m's values in a lookup, update or batch: a per-CPU
 * value comes 8-byte aligned, once per possible CPU.
 */
static inline size_t dp_value_stride(const struct ks_dp *dp, const struct bpf_map *m)
{
	size_t v = bpf_map__value_size(m);

	return dp_percpu(bpf_map__type(m)) ? ((v + 7) & ~7UL) * dp->ncpus : v;
}

/*
 * batch.c: entries for one map, written BATCH at a time. value NULL adds a
 * zero value (vsz: the per-CPU size for per-CPU maps). flush writes what is
 * queued; on error, written counts what went in before it.
 */
struct dp_batch {
	int fd;
	uint32_t ksz, vsz, n, cap;
	uint64_t written;
	char *k, *v;
};
int dp_batch_init(struct dp_batch *b, int fd, uint32_t key_size, uint32_t value_size,
		  uint32_t cap);
int dp_batch_add(struct dp_batch *b, const void *key, const void *value);
int dp_batch_flush(struct dp_batch *b);
void dp_batch_fini(struct dp_batch *b);

/* load.c: the userspace view of the services. */
void dp_svc_free(struct dp_svc *d);
void dp_state_free(struct dp_svc *v, size_t n);
/* 0 when path is on a bpffs; else logs which filesystem it is on. */
int dp_check_pin_dir(const char *path);

/* hooks.c */
/* The cgroup hooks, each with a link pinned as link_<hook>; dp_hook(i) for i below it. */
size_t dp_n_hooks(void);
const struct ks_hook *dp_hook(size_t i);
/* The TC hook table row of each direction (the node side's ingress or egress). */
const struct ks_hook *dp_tc_hook(bool ingress);
/* Hook name without the program prefix: "connect4". */
const char *dp_hook_name(const struct ks_hook *h);
/*
 * Attach a new link for hook i to dp->cg_fd and pin it over whatever
 * link_<hook> held (one rename: the pin never goes missing); dp->links[i]
 * becomes the new link and the old one is released.
 */
int dp_hook_relink(struct ks_dp *dp, size_t i);
/* Every program of the opened object has a row in the hook table and agrees with it. */
int dp_hooks_check(const struct ks_dp *dp);
/*
 * abi.c, before load: the pin of m (if any) can be reused as it is (0), must
 * be upgraded to our layout or capacity because its entries can be moved
 * (1, said at info level), or neither (-EPROTO etc., said at error level).
 */
int dp_abi_judge(const struct bpf_map *m, const struct btf *ours);

/*
 * upgrade.c: a datapath pinned by another build (another ABI or capacity)
 * taken over without an outage. Before anything is loaded, recover() ends
 * an upgrade a killed agent left: one it committed is finished, one it did
 * not is thrown away. plan() judges every pin and points each map to
 * upgrade at the staging dir, so load creates it there; after load,
 * finish() fills those maps from the old pins, commits and moves the new
 * pins over the old ones. The programs switch to the new maps when the
 * links take the new programs (dp_hooks_attach).
 */
int dp_upgrade_recover(const char *pin_dir);
int dp_upgrade_plan(struct ks_dp *dp);
int dp_upgrade_finish(struct ks_dp *dp);
/* A load that failed: remove what it made in the staging dir, nothing else. */
void dp_upgrade_abandon(const char *pin_dir);
/* `ksplit down`: remove what an upgrade left in the staging dirs. */
void dp_upgrade_down(const char *pin_dir, unsigned int *removed);
/* Attach each hook to dp->cg_fd (cgroup id dp->cg_id), adopting pinned links. */
int dp_hooks_attach(struct ks_dp *dp);
/* Drop our link fds; pinned links stay attached. */
void dp_hooks_close(struct ks_dp *dp);
/*
 * Pin the object behind fd at path over whatever is pinned there, in one
 * rename (the pin never goes missing).
 */
int dp_pin_replace(int fd, const char *path);

/*
 * tc.c, for the self-check: put back the TC programs of every interface
 * they were attached to that has lost them (a detached tcx link, a deleted
 * clsact qdisc or filter); counted in res->repaired and res->tc_relinked.
 */
void dp_tc_check(struct ks_dp *dp, struct ks_dp_check *res);
/* tc.c: drop our fds of the TC links (they stay pinned and attached). */
void dp_tc_close(struct ks_dp *dp);
/* tc.c, for status: the tcx links pinned in pin_dir that are attached to an interface. */
int dp_tc_links_attached(const char *pin_dir);
/* tc.c, for ks_dp_down: detach the clsact filters whose program uses pin_dir's ks_ct. */
int dp_tc_down(const char *pin_dir, unsigned int *removed);

/* inspect.c: what a pinned link is, for the self-check and `ksplit status`. */
enum dp_link_state {
	DP_LINK_ATTACHED,	/* to the cgroup it should be on */
	DP_LINK_ELSEWHERE,	/* attached, to another cgroup */
	DP_LINK_DETACHED,	/* BPF_LINK_DETACH'ed, or its cgroup was removed */
	DP_LINK_MISSING,	/* no pin, or the pin is not a link */
};

struct dp_link_view {
	enum dp_link_state state;
	uint32_t link_id, prog_id;
	uint64_t cg_id;		/* 0 when detached */
};

/* The link behind fd, judged against cgroup cg_id (0: any cgroup counts as attached). */
int dp_link_view_fd(int fd, uint64_t cg_id, struct dp_link_view *v);
/* The same for the link pinned at path; a missing pin is state MISSING, not an error. */
void dp_link_view_pin(const char *path, uint64_t cg_id, struct dp_link_view *v);
const char *dp_link_state_name(enum dp_link_state s);

#define DP_MAX_FOREIGN 8
struct dp_foreign {
	uint32_t id;
	char name[16];		/* BPF_OBJ_NAME_LEN */
	int order;		/* -1 runs before ksplit's program, 1 after, 0 ours does not run */
};
/* "before", "after", "without" for f->order. */
const char *dp_foreign_order(const struct dp_foreign *f);

/*
 * Programs other than ours (prog id ours) that run on attach type type for
 * the cgroup behind cg_fd: those of the cgroup and its ancestors, in the
 * order the kernel runs them (BPF_F_QUERY_EFFECTIVE). Returns how many.
 */
int dp_foreign_progs(int cg_fd, enum bpf_attach_type type, uint32_t ours,
		     struct dp_foreign *out, size_t max);

#endif
