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

#define LINK_PREFIX "link_"
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum ks_hook_kind {
	KS_HOOK_CGROUP,		/* bpf_link on the datapath's cgroup */
	KS_HOOK_TC,		/* reserved for the per-packet TC program; no attach yet */
};

struct ks_hook {
	const char *prog;		/* program name in the object */
	enum ks_hook_kind kind;
	enum bpf_attach_type type;	/* must match the program's SEC() */
	const char *pin;		/* link pin name under the pin dir */
};

/* Program ksplit_<hook>, link pinned as link_<hook>: tests and `ksplit down` know these names. */
#define HOOK(hook, kind, type) { "ksplit_" #hook, kind, type, LINK_PREFIX #hook }

/* In attach order: sockops first, so it sees every connect the others steer. */
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
};

_Static_assert(N_ELEMS(hooks) <= KS_DP_MAX_HOOKS, "ks_dp.links has no room for every hook");

/* Names of the maps ksplit pins; `down` removes these and nothing else. */
static const char *const pinned_maps[] = {
	"ks_services", "ks_backends", "ks_ep_stats", "ks_ep_health", "ks_svc_stats", "ks_svc_meta",
	"ks_sock",
};

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

	bpf_object__for_each_program(p, dp->skel->obj) {
		const struct ks_hook *h = hook_of(p);

		if (!h) {
			pr_warn("BPF program has no row in the hook table (user/datapath/hooks.c)",
				"prog=%s", bpf_program__name(p));
			return -ENOENT;
		}
		if (bpf_program__expected_attach_type(p) != h->type) {
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

/* Adopt a pinned link (swapping in the new program) or attach and pin a new one. */
static int attach_cgroup(struct ks_dp *dp, struct bpf_program *p, const char *path,
			 uint64_t cg_id, struct bpf_link **out)
{
	struct bpf_link_info info = {};
	__u32 ilen = sizeof(info);
	struct bpf_link *l;
	int err;

	if (!access(path, F_OK)) {
		l = bpf_link__open(path);
		if (!l)
			return -errno;
		if (bpf_obj_get_info_by_fd(bpf_link__fd(l), &info, &ilen)) {
			err = -errno;
			goto fail;
		}
		if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != cg_id) {
			pr_warn("pinned link is attached to another cgroup; run `ksplit down` first",
				"link=%s", path);
			err = -EEXIST;
			goto fail;
		}
		/* Swap the program in place: the hook never goes missing during an upgrade. */
		err = bpf_link__update_program(l, p);
		if (err)
			goto fail;
	} else {
		l = bpf_program__attach_cgroup(p, dp->cg_fd);
		if (!l)
			return -errno;
		err = bpf_link__pin(l, path);
		if (err)
			goto fail;
	}
	*out = l;
	return 0;
fail:
	bpf_link__destroy(l);
	return err;
}

static int attach_one(struct ks_dp *dp, const struct ks_hook *h, uint64_t cg_id)
{
	struct bpf_program *p = bpf_object__find_program_by_name(dp->skel->obj, h->prog);
	char path[PATH_MAX];

	if (!p)
		return -ENOENT;
	if (snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, h->pin) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	switch (h->kind) {
	case KS_HOOK_CGROUP:
		return attach_cgroup(dp, p, path, cg_id, &dp->links[dp->n_links]);
	case KS_HOOK_TC:
		break;
	}
	return -EOPNOTSUPP;
}

int dp_hooks_attach(struct ks_dp *dp, uint64_t cg_id)
{
	size_t i;
	int err;

	for (i = 0; i < N_ELEMS(hooks); i++) {
		err = attach_one(dp, &hooks[i], cg_id);
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
	/* Every link ksplit pins is named link_<hook>: no list to keep in step with bpf/. */
	d = opendir(pin_dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
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
