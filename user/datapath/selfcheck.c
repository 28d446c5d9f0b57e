// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent's self-check: the datapath can be taken away behind its back
 * (`ksplit down` run by hand, `bpftool link detach`, the cgroup removed and
 * made again, the pins deleted), and every VIP is then refused while the
 * maps still say all is well. Each round compares what is attached and
 * pinned with what ks_dp_open made and puts it back. The maps themselves
 * live on while the agent holds them, so they still hold the last applied
 * state and traffic recovers as soon as the hooks are back. The TC
 * programs of --tc-iface are checked the same way (tc.c, dp_tc_check).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "common/log.h"
#include "common/sys.h"

/*
 * Follow the cgroup path: gone is an error nobody here can fix; a new id
 * means it was removed and made again, and the hooks must move to the new
 * one (the old links were detached with the old cgroup). false: no hook can
 * be attached this round.
 */
static bool check_cgroup(struct ks_dp *dp, struct ks_dp_check *res)
{
	uint64_t id;
	int err, fd;

	err = ks_cgroup_id(dp->cgroup, &id);
	if (!err && id != dp->cg_id) {
		fd = open(dp->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
		} else {
			pr_warn("the cgroup was removed and made again (a new id); re-attaching every hook to it",
				"cgroup=%s old_cgroup_id=%llu cgroup_id=%llu", dp->cgroup,
				(unsigned long long)dp->cg_id, (unsigned long long)id);
			close(dp->cg_fd);
			dp->cg_fd = fd;
			dp->cg_id = id;
		}
	}
	if (err) {
		if (!dp->memo.cgroup_gone)
			pr_error("the datapath's cgroup is gone: no VIP is served until it is made again",
				 "cgroup=%s err=%d", dp->cgroup, err);
		dp->memo.cgroup_gone = true;
		res->broken++;
		return false;
	}
	dp->memo.cgroup_gone = false;
	return true;
}

static uint32_t obj_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Append name to the comma list in buf; a list too long for buf is cut. */
static void list_add(char *buf, size_t len, const char *name, const char *note)
{
	size_t o = strlen(buf);

	snprintf(buf + o, len - o, "%s%s%s", o ? "," : "", name, note);
}

/* The pin dir and every map pinned in it; a missing pin is pinned again from our fd. */
static void check_maps(struct ks_dp *dp, struct ks_dp_check *res)
{
	char repinned[256] = "", failed[256] = "";
	struct bpf_map *m;
	int err = 0;

	if (access(dp->pin_dir, F_OK)) {
		err = ks_mkdir_p(dp->pin_dir);
		if (!err)
			err = dp_check_pin_dir(dp->pin_dir);
		if (!err)
			pr_warn("the pin dir was removed; made it again", "pin_dir=%s", dp->pin_dir);
	}
	bpf_object__for_each_map(m, dp->skel->obj) {
		const char *path = bpf_map__pin_path(m);
		int fd;

		if (!path)
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			/* Another object under our name: not ours to remove; status would read it. */
			if (obj_id(fd) != obj_id(bpf_map__fd(m)))
				list_add(failed, sizeof(failed), bpf_map__name(m), "(not ours)");
			close(fd);
			continue;
		}
		if (!err && !bpf_obj_pin(bpf_map__fd(m), path)) {
			list_add(repinned, sizeof(repinned), bpf_map__name(m), "");
			res->repaired++;
			continue;
		}
		list_add(failed, sizeof(failed), bpf_map__name(m), "");
	}
	if (repinned[0])
		pr_warn("pinned maps were removed; pinned them again (they hold the state in force)",
			"pin_dir=%s maps=%s", dp->pin_dir, repinned);
	if (failed[0]) {
		if (!dp->memo.pins_bad)
			pr_error("cannot pin the datapath's maps again: `ksplit status` cannot read them",
				 "pin_dir=%s maps=%s err=%d", dp->pin_dir, failed, err);
		res->broken++;
	} else if (dp->memo.pins_bad) {
		pr_info("the datapath's maps are pinned again", "pin_dir=%s", dp->pin_dir);
	}
	dp->memo.pins_bad = failed[0];
}

/* Report a hook that stays broken once, and its recovery once. */
static void hook_bad(struct ks_dp *dp, size_t i, bool bad, const char *why, int err)
{
	const char *hook = dp_hook_name(dp_hook(i));

	if (bad && !dp->memo.hook_bad[i])
		pr_error("datapath hook cannot be put back: connects through it bypass ksplit",
			 "hook=%s problem=\"%s\" cgroup=%s err=%d", hook, why, dp->cgroup, err);
	dp->memo.hook_bad[i] = bad;
}

static void check_hook(struct ks_dp *dp, size_t i, bool cgroup_ok, struct ks_dp_check *res)
{
	const struct ks_hook *h = dp_hook(i);
	struct dp_link_view ours, pinned;
	char path[PATH_MAX];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, h->pin);
	err = dp_link_view_fd(bpf_link__fd(dp->links[i]), dp->cg_id, &ours);
	if (err || ours.state != DP_LINK_ATTACHED) {
		if (!cgroup_ok) {
			/* check_cgroup said so already: one line, not one per hook. */
			dp->memo.hook_bad[i] = true;
			res->broken++;
			return;
		}
		err = dp_hook_relink(dp, i);
		if (err) {
			hook_bad(dp, i, true, dp_link_state_name(ours.state), err);
			res->broken++;
			return;
		}
		pr_warn("datapath hook was taken away; re-attached it",
			"hook=%s was=%s old_link_id=%u cgroup=%s cgroup_id=%llu", dp_hook_name(h),
			dp_link_state_name(ours.state), ours.link_id, dp->cgroup,
			(unsigned long long)dp->cg_id);
		res->repaired++;
		hook_bad(dp, i, false, NULL, 0);
		return;
	}
	/* Attached and working: the pin only matters to a restarted agent and to status. */
	if (access(path, F_OK)) {
		if (bpf_obj_pin(bpf_link__fd(dp->links[i]), path)) {
			hook_bad(dp, i, true, "its link pin is gone and cannot be made again", -errno);
			res->broken++;
			return;
		}
		pr_warn("datapath link pin was removed; pinned it again", "hook=%s link=%s",
			dp_hook_name(h), path);
		res->repaired++;
	} else {
		dp_link_view_pin(path, dp->cg_id, &pinned);
		if (pinned.link_id != ours.link_id) {
			hook_bad(dp, i, true, "its pin holds another link or object", -EEXIST);
			res->broken++;
			return;
		}
	}
	if (dp->memo.hook_bad[i])
		pr_info("datapath hook is attached again", "hook=%s", dp_hook_name(h));
	hook_bad(dp, i, false, NULL, 0);
}

/*
 * Other programs on the same hooks can rewrite the same connects: one that
 * runs before ksplit can send a VIP elsewhere, one after can overwrite the
 * backend ksplit chose. Logged when the set changes.
 */
static void check_foreign(struct ks_dp *dp, struct ks_dp_check *res)
{
	struct dp_foreign f[KS_DP_MAX_HOOKS][DP_MAX_FOREIGN];
	int n[KS_DP_MAX_HOOKS] = {};
	uint64_t sum = 0;
	size_t i;
	int j;

	for (i = 0; i < dp->n_links; i++) {
		struct dp_link_view v;

		if (dp_link_view_fd(bpf_link__fd(dp->links[i]), dp->cg_id, &v) ||
		    v.state != DP_LINK_ATTACHED)
			continue;
		n[i] = dp_foreign_progs(dp->cg_fd, dp_hook(i)->type, v.prog_id, f[i], DP_MAX_FOREIGN);
		for (j = 0; j < n[i]; j++)
			sum = sum * 1000003 + f[i][j].id * 31 + i * 7 + (uint64_t)(f[i][j].order + 1);
		if (n[i] > 0)
			res->foreign += n[i];
	}
	if (sum == dp->memo.foreign_sum)
		return;
	dp->memo.foreign_sum = sum;
	if (!res->foreign)
		pr_info("no other BPF program runs on ksplit's hooks any more", "cgroup=%s",
			dp->cgroup);
	for (i = 0; i < dp->n_links; i++)
		for (j = 0; j < n[i]; j++)
			pr_warn("another BPF program runs on a ksplit hook of this cgroup (or an ancestor) and may rewrite the same connects",
				"hook=%s prog_id=%u prog=%s runs=%s cgroup=%s",
				dp_hook_name(dp_hook(i)), f[i][j].id, f[i][j].name,
				dp_foreign_order(&f[i][j]), dp->cgroup);
}

int ks_dp_selfcheck(struct ks_dp *dp, struct ks_dp_check *res)
{
	struct ks_dp_check r = {};
	bool cgroup_ok;
	size_t i;

	/* --cgroup none: no cgroup to check, no socket hook on it. */
	cgroup_ok = !dp_no_cgroup(dp) && check_cgroup(dp, &r);
	check_maps(dp, &r);
	for (i = 0; i < dp->n_links; i++)
		check_hook(dp, i, cgroup_ok, &r);
	if (cgroup_ok)
		check_foreign(dp, &r);
	dp_tc_check(dp, &r);
	/* The TC path's idle flows go on the same beat (ct_gc.c). */
	if (dp->tc && ks_dp_ct_gc(dp, &r.tc_swept))
		pr_warn("cannot sweep the TC path's idle flows", "pin_dir=%s", dp->pin_dir);
	if (r.repaired)
		pr_warn("datapath repaired", "repaired=%u still_broken=%u", r.repaired, r.broken);
	if (res)
		*res = r;
	return r.broken ? -EIO : 0;
}
