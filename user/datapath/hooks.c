// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hooks: which program of the BPF object goes where. The table below is
 * the only list; every hook is attached through a bpf_link pinned as
 * link_<hook> under the pin dir, so the programs stay attached when the
 * agent exits and a restarted agent swaps new programs into the same links.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "common/log.h"
#include "common/sys.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Program ksplit_<hook>, link pinned as link_<hook>: tests and `ksplit down` know these names. */
#define PROG_PREFIX "ksplit_"
#define HOOK(hook, kind, type) { PROG_PREFIX #hook, kind, type, KS_LINK_PREFIX #hook }

/*
 * In attach order: sockops first, so it sees every connect the others steer.
 * The cgroup hooks come first and dp_n_hooks() counts only them (one pinned
 * link each); the TC rows after them are attached per interface (tc.c).
 */
static const struct ks_hook hooks[] = {
	HOOK(sockops, KS_HOOK_CGROUP, BPF_CGROUP_SOCK_OPS),
	HOOK(connect4, KS_HOOK_CGROUP, BPF_CGROUP_INET4_CONNECT),
	HOOK(connect6, KS_HOOK_CGROUP, BPF_CGROUP_INET6_CONNECT),
	HOOK(sendmsg4, KS_HOOK_CGROUP, BPF_CGROUP_UDP4_SENDMSG),
	HOOK(sendmsg6, KS_HOOK_CGROUP, BPF_CGROUP_UDP6_SENDMSG),
	HOOK(recvmsg4, KS_HOOK_CGROUP, BPF_CGROUP_UDP4_RECVMSG),
	HOOK(recvmsg6, KS_HOOK_CGROUP, BPF_CGROUP_UDP6_RECVMSG),
	HOOK(getpeername4, KS_HOOK_CGROUP, BPF_CGROUP_INET4_GETPEERNAME),
	HOOK(getpeername6, KS_HOOK_CGROUP, BPF_CGROUP_INET6_GETPEERNAME),
	HOOK(tc_ingress, KS_HOOK_TC, KS_TCX_INGRESS),
	HOOK(tc_egress, KS_HOOK_TC, KS_TCX_EGRESS),
};
#define N_CGROUP_HOOKS 9

_Static_assert(N_ELEMS(hooks) <= KS_DP_MAX_HOOKS, "ks_dp.links has no room for every hook");

/* Names of the maps ksplit pins; `down` removes these and nothing else. */
static const char *const pinned_maps[] = {
	"ks_services", "ks_backends", "ks_ep_stats", "ks_ep_health", "ks_svc_stats", "ks_svc_meta",
	"ks_group_stats", "ks_sock", "ks_udp_sock", "ks_ct", "ks_ct_vips", "ks_ct_frag",
	"ks_tc_stats",
};

size_t dp_n_hooks(void)
{
	return N_CGROUP_HOOKS;
}

const struct ks_hook *dp_hook(size_t i)
{
	return i < N_CGROUP_HOOKS ? &hooks[i] : NULL;
}

const struct ks_hook *dp_tc_hook(bool ingress)
{
	return &hooks[N_CGROUP_HOOKS + !ingress];
}

const char *dp_hook_name(const struct ks_hook *h)
{
	return h->prog + strlen(PROG_PREFIX);
}

static const struct ks_hook *hook_of(const struct bpf_program *p)
{
	size_t i;

	for (i = 0; i < N_ELEMS(hooks); i++)
		if (!strcmp(hooks[i].prog, bpf_program__name(p)))
			return &hooks[i];
	return NULL;
}

/*
 * A program the table does not name is an error, not skipped: it would be
 * loaded and verified and then never run, a hook silently missing (the
 * first kern test catches the error instead). Each row must also find its
 * program, with the attach type its SEC() gave it, since that is the type
 * libbpf attaches with.
 */
int dp_hooks_check(const struct ks_dp *dp)
{
	struct bpf_program *p;
	size_t i, named = 0;

	for (i = 0; i < N_ELEMS(hooks); i++)
		if ((hooks[i].kind == KS_HOOK_CGROUP) != (i < N_CGROUP_HOOKS)) {
			pr_warn("hook table: the cgroup rows must come first, N_CGROUP_HOOKS of them",
				"prog=%s", hooks[i].prog);
			return -EINVAL;
		}
	bpf_object__for_each_program(p, dp->skel->obj) {
		const struct ks_hook *h = hook_of(p);

		if (!h) {
			pr_warn("BPF program has no row in the hook table (user/datapath/hooks.c)",
				"prog=%s", bpf_program__name(p));
			return -ENOENT;
		}
		if (h->kind == KS_HOOK_TC) {
			/* SEC("tc"): libbpf 1.1 knows no tcx section; the type is what must agree. */
			if (bpf_program__type(p) != BPF_PROG_TYPE_SCHED_CLS) {
				pr_warn("BPF program's section disagrees with its hook table row",
					"prog=%s prog_type=%d table=tc", h->prog,
					bpf_program__type(p));
				return -EINVAL;
			}
		} else if (bpf_program__expected_attach_type(p) != h->type) {
			pr_warn("BPF program's section disagrees with its hook table row",
				"prog=%s attach_type=%d table=%d", h->prog,
				bpf_program__expected_attach_type(p), h->type);
			return -EINVAL;
		}
		named++;
	}
	if (named != N_ELEMS(hooks)) {
		for (i = 0; i < N_ELEMS(hooks); i++)
			if (!bpf_object__find_program_by_name(dp->skel->obj, hooks[i].prog))
				pr_warn("hook table names a program the BPF object lacks",
					"prog=%s", hooks[i].prog);
		return -ENOENT;
	}
	return 0;
}

/*
 * Pin the object behind fd at path, replacing whatever is pinned there in
 * one step: pinned under a temporary name, then renamed over (bpffs renames
 * atomically), so link_<hook> never goes missing. The temporary name starts
 * with link_ too (link_<hook>_new: bpffs refuses names with a dot), so
 * `ksplit down` removes one left by a killed agent.
 */
int dp_pin_replace(int fd, const char *path)
{
	char tmp[PATH_MAX];
	int err;

	if (snprintf(tmp, sizeof(tmp), "%s_new", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

int dp_hook_relink(struct ks_dp *dp, size_t i)
{
	const struct ks_hook *h = dp_hook(i);
	struct bpf_program *p;
	char path[PATH_MAX];
	struct bpf_link *l;
	int err;

	if (!h)
		return -EINVAL;
	if (h->kind != KS_HOOK_CGROUP)
		return -EOPNOTSUPP;
	p = bpf_object__find_program_by_name(dp->skel->obj, h->prog);
	if (!p)
		return -ENOENT;
	if (snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, h->pin) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	l = bpf_program__attach_cgroup(p, dp->cg_fd);
	if (!l)
		return -errno;
	err = dp_pin_replace(bpf_link__fd(l), path);
	if (err) {
		/* Our fd was its only reference: closing it detaches the new link again. */
		bpf_link__destroy(l);
		return err;
	}
	/* The old link lost its pin; dropping our fd releases it wherever it was. */
	bpf_link__destroy(dp->links[i]);
	dp->links[i] = l;
	return 0;
}

/*
 * Adopt the pinned link (swapping in the new program) or attach and pin a
 * new one. A pinned link that is detached (its cgroup was removed, or
 * someone detached it) or attached to another cgroup (the cgroup was
 * removed and made again: a new id) is replaced by a link on the cgroup this
 * agent was given: refusing would leave every VIP unserved.
 */
static int attach_cgroup(struct ks_dp *dp, size_t i, struct bpf_program *p, const char *path)
{
	struct dp_link_view v;
	struct bpf_link *l;
	int err;

	if (access(path, F_OK))
		return dp_hook_relink(dp, i);
	l = bpf_link__open(path);
	if (!l)
		return -errno;
	err = dp_link_view_fd(bpf_link__fd(l), dp->cg_id, &v);
	if (err)
		goto fail;
	if (v.state == DP_LINK_MISSING) {
		pr_warn("pinned object is not a cgroup link; run `ksplit down` first", "link=%s",
			path);
		err = -EEXIST;
		goto fail;
	}
	if (v.state != DP_LINK_ATTACHED) {
		pr_warn(v.state == DP_LINK_DETACHED
				? "pinned link is detached (its cgroup was removed, or someone detached it); attaching the hook again"
				: "pinned link is attached to another cgroup (removed and made again?); moving the hook to the given cgroup",
			"link=%s cgroup=%s cgroup_id=%llu old_cgroup_id=%llu", path, dp->cgroup,
			(unsigned long long)dp->cg_id, (unsigned long long)v.cg_id);
		bpf_link__destroy(l);
		return dp_hook_relink(dp, i);
	}
	/* Swap the program in place: the hook never goes missing during an upgrade. */
	err = bpf_link__update_program(l, p);
	if (err)
		goto fail;
	dp->links[i] = l;
	return 0;
fail:
	bpf_link__destroy(l);
	return err;
}

static int attach_one(struct ks_dp *dp, size_t i)
{
	const struct ks_hook *h = &hooks[i];
	struct bpf_program *p = bpf_object__find_program_by_name(dp->skel->obj, h->prog);
	char path[PATH_MAX];

	if (!p)
		return -ENOENT;
	if (snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, h->pin) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	switch (h->kind) {
	case KS_HOOK_CGROUP:
		return attach_cgroup(dp, i, p, path);
	case KS_HOOK_TC:
		break;		/* per interface, not per datapath: tc.c */
	}
	return -EOPNOTSUPP;
}

int dp_hooks_attach(struct ks_dp *dp)
{
	size_t i;
	int err;

	for (i = 0; i < N_CGROUP_HOOKS && dp->cg_fd >= 0; i++) {
		err = attach_one(dp, i);
		if (err) {
			pr_warn("cannot attach program", "prog=%s cgroup=%s err=%d", hooks[i].prog,
				dp->cgroup, err);
			return err;
		}
		dp->n_links++;
	}
	return 0;
}

void dp_hooks_close(struct ks_dp *dp)
{
	size_t i;

	/* bpf_link__destroy only drops our fd: the pinned links stay attached. */
	for (i = 0; i < dp->n_links; i++)
		bpf_link__destroy(dp->links[i]);
	dp->n_links = 0;
	dp_tc_close(dp);
}

int ks_dp_down(const char *pin_dir, unsigned int *removed)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned int n = 0;
	size_t i;
	int fd, err = 0;
	DIR *d;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	/* Before the maps go: the clsact filters are found by the conntrack map they use. */
	err = dp_tc_down(pin_dir, &n);
	/* Every link ksplit pins is named link_<hook>: no list to keep in step with bpf/. */
	d = opendir(pin_dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, KS_LINK_PREFIX, strlen(KS_LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/* Detach even while a running agent still holds the link open. */
		if (bpf_link_detach(fd) && errno != ENOLINK) {
			err = -errno;
			pr_warn("cannot detach link", "link=%s err=%d", path, err);
		}
		close(fd);
		if (unlink(path) == 0)
			n++;
	}
	if (d)
		closedir(d);
	for (i = 0; i < N_ELEMS(pinned_maps); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned_maps[i]);
		if (unlink(path) == 0)
			n++;
		else if (errno != ENOENT)
			err = -errno;
	}
	dp_upgrade_down(pin_dir, &n);
	if (rmdir(pin_dir) && errno != ENOENT) {
		pr_warn("pin dir not removed: it holds files ksplit did not pin", "pin_dir=%s",
			pin_dir);
		if (!err)
			err = -errno;
	}
	if (removed)
		*removed = n;
	return err;
}
