// SPDX-License-Identifier: BSD-2-Clause
/*
 * Opening the datapath: load the BPF object with its maps pinned under the
 * pin dir, or adopt the maps a previous agent pinned there and rebuild the
 * userspace view of the services from them, so a restart changes nothing
 * for running connections. Then the hooks are attached (hooks.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "datapath/features.h"
#include "common/hostcheck.h"
#include "common/log.h"
#include "common/sys.h"

void dp_svc_free(struct dp_svc *d)
{
	uint32_t j;

	for (j = 0; j < d->s.n_groups; j++) {
		free(d->s.groups[j].be);
		d->s.groups[j].be = NULL;
	}
	free(d->s.meta);
	d->s.meta = NULL;
}

void dp_state_free(struct dp_svc *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!v[i].moved)
			dp_svc_free(&v[i]);
	free(v);
}

bool ks_dp_adopted(const struct ks_dp *dp)
{
	return dp->adopted;
}

const char *ks_dp_cgroup(const struct ks_dp *dp)
{
	return dp->cgroup;
}

enum ks_pin_fate ks_dp_pin_fate(const struct ks_dp *dp, char *why, size_t len)
{
	/* ks_ensure_bpffs mounts only there. */
	return ks_pin_fate(dp->bpffs_mounted ? "/sys/fs/bpf" : NULL, why, len);
}

static int sync_maps_create(struct ks_dp *dp)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);

	dp->sync_inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ks_sync_inner", 4, 4, 1, NULL);
	if (dp->sync_inner < 0)
		return -errno;
	o.inner_map_fd = dp->sync_inner;
	dp->sync_outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "ks_rcu_sync", 4, 4, 1, &o);
	if (dp->sync_outer < 0)
		return -errno;
	return 0;
}

/* Rebuild the userspace view (ids, ranges, services) from adopted pinned maps. */
static int rebuild_state(struct ks_dp *dp)
{
	int fsvc = bpf_map__fd(dp->skel->maps.ks_services);
	int fbe = bpf_map__fd(dp->skel->maps.ks_backends);
	int fmeta = bpf_map__fd(dp->skel->maps.ks_svc_meta);
	struct ks_svc_key key, next;
	struct ks_svc_meta meta;
	void *prev = NULL;
	size_t alloc = 0;
	int err = 0;

	while (!bpf_map_get_next_key(fsvc, prev, &next)) {
		struct dp_svc *d;
		uint32_t j, k;

		key = next;
		prev = &key;
		if (dp->n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			struct dp_svc *nv = realloc(dp->svcs, na * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			dp->svcs = nv;
			alloc = na;
		}
		d = &dp->svcs[dp->n];
		memset(d, 0, sizeof(*d));
		if (bpf_map_lookup_elem(fsvc, &key, &d->val)) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		dp->n++;
		d->s.key = key;
		d->s.n_groups = d->val.n_groups;
		d->s.total_weight = d->val.total_weight;
		d->s.passive_failures = d->val.passive_failures;
		d->s.flags = d->val.flags;
		if (d->val.n_groups > KS_MAX_GROUPS)
			goto inconsistent;
		/* Missing names only make status poorer; the datapath does not need them. */
		memset(&meta, 0, sizeof(meta));
		bpf_map_lookup_elem(fmeta, &d->val.svc_id, &meta);
		if (!(d->s.meta = ksi_meta_pack(&meta)))
			return -ENOMEM;
		if (ks_idalloc_mark(&dp->svc_ids, d->val.svc_id))
			goto inconsistent;
		if (d->val.rev >= dp->next_rev)
			dp->next_rev = d->val.rev + 1;
		for (j = 0; j < d->val.n_groups; j++) {
			const struct ks_group *g = &d->val.groups[j];
			struct ksi_group *sg = &d->s.groups[j];
			uint32_t prev_end = j ? d->val.groups[j - 1].weight_end : 0;

			sg->weight = g->weight_end - prev_end;
			sg->n_elig = g->be_count;
			sg->n_total = g->be_total;
			if (!g->be_total)
				continue;
			if (ks_rangealloc_mark(&dp->slots, g->be_base, g->be_total))
				goto inconsistent;
			sg->be = calloc(g->be_total, sizeof(*sg->be));
			if (!sg->be)
				return -ENOMEM;
			for (k = 0; k < g->be_total; k++) {
				__u32 slot = g->be_base + k;

				if (bpf_map_lookup_elem(fbe, &slot, &sg->be[k]))
					return -errno;
				if (ks_idalloc_mark(&dp->ep_ids, sg->be[k].ep_id))
					goto inconsistent;
			}
		}
	}
	if (errno != ENOENT && prev)
		err = -errno;
	qsort(dp->svcs, dp->n, sizeof(*dp->svcs),
	      (int (*)(const void *, const void *))ks_svc_key_cmp);
	return err;
inconsistent:
	pr_warn("pinned state is inconsistent (overlapping slots or ids); run `ksplit down` and start again",
		"pin_dir=%s", dp->pin_dir);
	return -EUCLEAN;
}

/*
 * Each reason the kernel would refuse gets its own message here, before it
 * can surface as a libbpf error that names something else.
 */
static int check_cgroup(const char *path, uint64_t *id)
{
	char name[32];
	long magic;
	int err;

	err = ks_fs_magic(path, &magic);
	if (err) {
		pr_error(err == -ENOENT ? "cgroup does not exist" : "cannot reach the cgroup",
			"cgroup=%s err=%d", path, err);
		return err;
	}
	if (magic != CGROUP2_SUPER_MAGIC) {
		pr_error("not a cgroup2 directory: --cgroup must name a directory of the cgroup2 mount",
			"cgroup=%s fs=\"%s\"", path, ks_fs_name(magic, name, sizeof(name)));
		return -ENOTDIR;
	}
	return ks_cgroup_id(path, id);
}

static int check_caps(void)
{
	char missing[64];
	int n = ks_caps_missing(missing, sizeof(missing));

	if (n <= 0)
		return 0;
	pr_error("missing capabilities: loading BPF programs needs CAP_BPF and attaching them CAP_NET_ADMIN (CAP_SYS_ADMIN stands for both)",
		"missing=%s", missing);
	return -EPERM;
}

int dp_check_pin_dir(const char *path)
{
	char name[32];
	long magic;
	int err;

	err = ks_fs_magic(path, &magic);
	if (err)
		return err;
	if (magic != BPF_FS_MAGIC) {
		pr_error("pin dir is not on a bpffs: nothing can be pinned there; use a dir under a bpf mount (mount -t bpf bpf DIR)",
			"pin_dir=%s fs=\"%s\"", path, ks_fs_name(magic, name, sizeof(name)));
		return -ENOTSUP;
	}
	return 0;
}

int ks_dp_open(const struct ks_dp_opts *opts, struct ks_dp **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	char cgroot[PATH_MAX], path[PATH_MAX], why[512];
	const char *cgpath = opts->cgroup;
	struct ks_features feats = {};
	struct utsname uts = {};
	struct ks_dp *dp;
	int err;

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cg_fd = dp->sync_inner = dp->sync_outer = -1;
	dp->next_rev = 1;
	dp->max_services = opts->max_services ? opts->max_services : KS_MAX_SERVICES;
	dp->max_endpoints = opts->max_endpoints ? opts->max_endpoints : KS_MAX_ENDPOINTS;
#define TIMEOUT_NS(v, def) ((uint64_t)((v) ? (v) : (def)) * 1000000000ULL)
	dp->ct_timeout_ns[DP_CT_TCP] = TIMEOUT_NS(opts->tc_tcp_timeout_s, KS_CT_TCP_TIMEOUT_S);
	dp->ct_timeout_ns[DP_CT_CLOSE] = TIMEOUT_NS(opts->tc_close_timeout_s, KS_CT_CLOSE_TIMEOUT_S);
	dp->ct_timeout_ns[DP_CT_UDP] = TIMEOUT_NS(opts->tc_udp_timeout_s, KS_CT_UDP_TIMEOUT_S);
#undef TIMEOUT_NS
	if (snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s",
		     opts->pin_dir ? opts->pin_dir : KS_DEFAULT_PIN_DIR) >= (int)sizeof(dp->pin_dir)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus < 0) {
		err = dp->ncpus;
		goto fail;
	}
	if (!cgpath) {
		err = ks_cgroup2_root(cgroot, sizeof(cgroot));
		if (err) {
			pr_warn("no cgroup2 mount in /proc/mounts", "err=%d", err);
			goto fail;
		}
		cgpath = cgroot;
	}
	/* --cgroup none: no socket hooks, the per-packet path only (tc.c); no cg_fd. */
	err = strcmp(cgpath, KS_CGROUP_NONE) ? check_cgroup(cgpath, &dp->cg_id) : 0;
	if (!err)
		err = check_caps();
	if (err)
		goto fail;
	/*
	 * Before anything is made or opened: on a kernel without a required feature
	 * the verifier's refusal names an instruction, not the kernel version
	 * (5.10: "BPF_STX uses reserved fields").
	 */
	ks_features_probe(&feats);
	err = ks_features_verdict(&feats, why, sizeof(why));
	if (err) {
		uname(&uts);
		ks_log_quote(path, sizeof(path), why);
		pr_error("kernel not supported", "kernel=%s err=%s", uts.release, path);
		goto fail;
	}
	snprintf(dp->cgroup, sizeof(dp->cgroup), "%s", cgpath);
	dp->cg_fd = dp_no_cgroup(dp) ? -1 : open(cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->cg_fd < 0 && !dp_no_cgroup(dp)) {
		err = -errno;
		pr_warn("cannot open cgroup", "cgroup=%s err=%d", cgpath, err);
		goto fail;
	}
	err = ks_ensure_bpffs(dp->pin_dir, &dp->bpffs_mounted);
	if (!err)
		err = ks_mkdir_p(dp->pin_dir);
	if (err) {
		pr_warn("cannot prepare pin dir", "pin_dir=%s err=%d", dp->pin_dir, err);
		goto fail;
	}
	err = dp_check_pin_dir(dp->pin_dir);
	if (!err)
		err = dp_upgrade_recover(dp->pin_dir);
	if (err)
		goto fail;
	snprintf(path, sizeof(path), "%s/ks_services", dp->pin_dir);
	dp->adopted = !access(path, F_OK);

	oo.pin_root_path = dp->pin_dir;
	dp->skel = ksplit_bpf__open_opts(&oo);
	if (!dp->skel) {
		err = -errno;
		goto fail;
	}
	/* Before load, so an object the hook table does not describe creates no map. */
	err = dp_hooks_check(dp);
	if (err)
		goto fail;
	/*
	 * Before 5.18 there is no bpf_set_retval: refused connects then fail
	 * with EPERM. The flag is read-only data, so the verifier prunes the
	 * call on such kernels instead of rejecting the program.
	 */
	dp->skel->rodata->have_set_retval = feats.state[KS_FEAT_SET_RETVAL] == KS_FEAT_PRESENT;
	if (!dp->skel->rodata->have_set_retval)
		pr_warn("kernel has no bpf_set_retval: refused shares fail with EPERM, not ECONNREFUSED");
	dp->skel->rodata->ct_tcp_timeout_ns = dp->ct_timeout_ns[DP_CT_TCP];
	dp->skel->rodata->ct_close_timeout_ns = dp->ct_timeout_ns[DP_CT_CLOSE];
	dp->skel->rodata->ct_udp_timeout_ns = dp->ct_timeout_ns[DP_CT_UDP];
	bpf_map__set_max_entries(dp->skel->maps.ks_services, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_svc_stats, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_svc_meta, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_group_stats, dp->max_services * KS_MAX_GROUPS);
	bpf_map__set_max_entries(dp->skel->maps.ks_backends, 2 * dp->max_endpoints);
	bpf_map__set_max_entries(dp->skel->maps.ks_ep_stats, dp->max_endpoints);
	bpf_map__set_max_entries(dp->skel->maps.ks_ep_health, dp->max_endpoints);
	/* After the capacities are set: a pin of another capacity is upgraded too. */
	err = dp_upgrade_plan(dp);
	if (err)
		goto fail;
	err = ksplit_bpf__load(dp->skel);
	if (err) {
		if (err == -EPERM)
			pr_error("the kernel refused to load the BPF programs: a capability is missing, or a security policy forbids BPF (seccomp, an LSM, kernel.unprivileged_bpf_disabled)",
				"err=%d", err);
		else if (err == -EACCES)
			/* check_caps passed and the probes found every feature: the verifier said no. */
			pr_error("the kernel's verifier refused a BPF program (the libbpf lines above name it and the instruction); `ksplit probe` shows what this kernel supports",
				"kernel=%s err=%d", uname(&uts) ? "?" : uts.release, err);
		else
			pr_warn("cannot load BPF programs (see the libbpf lines above)",
				"pin_dir=%s err=%d", dp->pin_dir, err);
		goto fail;
	}
	/* The new maps are whole and pinned in place before anything reads them. */
	err = dp_upgrade_finish(dp);
	if (err)
		goto fail;
	err = ks_idalloc_init(&dp->svc_ids, dp->max_services);
	if (!err)
		err = ks_idalloc_init(&dp->ep_ids, dp->max_endpoints);
	if (!err)
		err = ks_rangealloc_init(&dp->slots, 2 * dp->max_endpoints);
	if (!err)
		err = sync_maps_create(dp);
	if (!err && dp->adopted)
		err = rebuild_state(dp);
	if (err)
		goto fail;
	err = dp_hooks_attach(dp);
	if (err)
		goto fail;
	pr_info(!dp->adopted ? "attached datapath" : dp->n_staged ? "adopted pinned datapath, upgraded to this build"
						    : "adopted pinned datapath",
		"pin_dir=%s cgroup=%s services=%zu upgraded_maps=%zu", dp->pin_dir, cgpath, dp->n,
		dp->n_staged);
	*out = dp;
	return 0;
fail:
	if (dp->skel && !dp->adopted) {
		/* Nothing of a half-made fresh datapath may stay behind. */
		ks_dp_close(dp);
		ks_dp_down(opts->pin_dir ? opts->pin_dir : KS_DEFAULT_PIN_DIR, NULL);
	} else {
		/* Adopted: the pinned datapath keeps serving; only a half-built upgrade goes. */
		if (dp->n_staged)
			dp_upgrade_abandon(dp->pin_dir);
		ks_dp_close(dp);
	}
	return err;
}

void ks_dp_close(struct ks_dp *dp)
{
	if (!dp)
		return;
	dp_hooks_close(dp);
	ksplit_bpf__destroy(dp->skel);
	if (dp->cg_fd >= 0)
		close(dp->cg_fd);
	if (dp->sync_inner >= 0)
		close(dp->sync_inner);
	if (dp->sync_outer >= 0)
		close(dp->sync_outer);
	dp_state_free(dp->svcs, dp->n);
	ks_idalloc_fini(&dp->svc_ids);
	ks_idalloc_fini(&dp->ep_ids);
	ks_rangealloc_fini(&dp->slots);
	free(dp);
}
