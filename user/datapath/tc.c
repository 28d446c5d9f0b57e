// SPDX-License-Identifier: BSD-2-Clause
/*
 * The per-packet programs (bpf/tc.bpf.c) on the interfaces --tc-iface
 * names: ksplit_tc_ingress on each one's ingress, ksplit_tc_egress on its
 * egress. Meant for the node side of a pod's veth: what the pod sends
 * enters there, the replies to it leave there.
 *
 * Attach: a tcx link (kernel 6.6+) through bpf_link_create, which libbpf
 * 1.1 passes through for an attach type it does not know (it has no tcx
 * API). The link is pinned as link_tc_<ifindex>_<dir> beside the cgroup
 * links, for the same reason: the programs stay when the agent exits or is
 * upgraded (a restarted agent swaps its programs into the pinned links with
 * BPF_LINK_UPDATE), and `ksplit down` detaches every link_* pin, these
 * included. A kernel without tcx refuses the attach type with EINVAL: then,
 * said at warn, clsact + cls_bpf through libbpf's bpf_tc_* (in 1.1), a
 * filter of our handle and priority that `ksplit down` finds again by the
 * conntrack map its program uses (dp_tc_down). --tc-clsact asks for that
 * path where tcx exists too.
 *
 * "PREFIX+" matches every interface whose name starts with PREFIX, also
 * those made later: RTM_NEWLINK on a netlink socket (libmnl) that the
 * agent's loop polls (ks_dp_tc_fd, ks_dp_tc_process). A deleted interface
 * takes its tcx links with it; its pins are removed on RTM_DELLINK.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "common/log.h"

#define KS_TC_HANDLE	0x6b73	/* "ks": our cls_bpf filter's handle on the clsact fallback */
#define KS_TC_PRIO	0x6b73
#define BPF_LINK_TYPE_TCX_	11	/* enum bpf_link_type of 6.6, like KS_TCX_INGRESS */

struct dp_tc_if {
	int ifindex;
	char name[IF_NAMESIZE];
	int fd[2];		/* tcx link per direction (ingress, egress); -1 on clsact */
	bool clsact;
};

struct dp_tc {
	const char *const *pats;	/* the --tc-iface values, owned by the caller */
	size_t n_pats;
	bool clsact_only;		/* --tc-clsact */
	bool said_fallback;
	struct mnl_socket *nl;		/* only when a pattern is PREFIX+ */
	struct dp_tc_if *ifs;
	size_t n, cap;
};

int ks_dp_tc_prog_fd(const struct ks_dp *dp, bool ingress)
{
	const struct ks_hook *h = dp_tc_hook(ingress);
	struct bpf_program *p = bpf_object__find_program_by_name(dp->skel->obj, h->prog);

	return p ? bpf_program__fd(p) : -ENOENT;
}

static bool pat_match(const char *pat, const char *name)
{
	size_t n = strlen(pat);

	if (n && pat[n - 1] == '+')
		return !strncmp(pat, name, n - 1);
	return !strcmp(pat, name);
}

static bool wanted(const struct dp_tc *tc, const char *name)
{
	size_t i;

	for (i = 0; i < tc->n_pats; i++)
		if (pat_match(tc->pats[i], name))
			return true;
	return false;
}

static struct dp_tc_if *find_if(struct dp_tc *tc, int ifindex)
{
	size_t i;

	for (i = 0; i < tc->n; i++)
		if (tc->ifs[i].ifindex == ifindex)
			return &tc->ifs[i];
	return NULL;
}

static int pin_path(const struct ks_dp *dp, int ifindex, bool ingress, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%stc_%d_%s", dp->pin_dir, KS_LINK_PREFIX, ifindex,
		     ingress ? "ingress" : "egress") >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * A pinned link of a previous agent on this interface and direction: take
 * it over with our program. -ENOENT when there is none or it is not a live
 * tcx link of this ifindex (the interface was deleted and its index reused).
 */
static int tcx_adopt(const char *path, int ifindex, int prog_fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path), err;

	if (fd < 0)
		return -ENOENT;
	/* tcx's {ifindex, attach_type} sits where netns's {netns_ino, attach_type} does. */
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_TCX_ ||
	    (int)info.netns.netns_ino != ifindex) {
		close(fd);
		return -ENOENT;
	}
	if (bpf_link_update(fd, prog_fd, NULL)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int tcx_attach(struct ks_dp *dp, int ifindex, bool ingress, bool *adopted)
{
	char path[PATH_MAX];
	int prog = ks_dp_tc_prog_fd(dp, ingress), fd, err;

	err = pin_path(dp, ifindex, ingress, path, sizeof(path));
	if (err)
		return err;
	fd = tcx_adopt(path, ifindex, prog);
	*adopted = fd >= 0;
	if (fd != -ENOENT)
		return fd;
	fd = bpf_link_create(prog, ifindex, dp_tc_hook(ingress)->type, NULL);
	if (fd < 0)
		return -errno;
	err = dp_pin_replace(fd, path);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static int clsact_attach(struct ks_dp *dp, int ifindex, bool ingress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = KS_TC_HANDLE, .priority = KS_TC_PRIO,
		    .flags = BPF_TC_F_REPLACE, .prog_fd = ks_dp_tc_prog_fd(dp, ingress));
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &o);
}

static void if_release(struct dp_tc_if *t)
{
	int d;

	for (d = 0; d < 2; d++)
		if (t->fd[d] >= 0)
			close(t->fd[d]);
	t->fd[0] = t->fd[1] = -1;
}

/* Attach both programs to ifindex (once: a known interface is left alone). */
static int attach_if(struct ks_dp *dp, int ifindex, const char *name)
{
	struct dp_tc *tc = dp->tc;
	struct dp_tc_if *t;
	bool adopted = false, all_adopted = true;
	int d, fd, err = 0;

	if (find_if(tc, ifindex))
		return 0;
	if (tc->n == tc->cap) {
		size_t nc = tc->cap ? tc->cap * 2 : 8;
		struct dp_tc_if *nv = realloc(tc->ifs, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		tc->ifs = nv;
		tc->cap = nc;
	}
	t = &tc->ifs[tc->n];
	memset(t, 0, sizeof(*t));
	t->ifindex = ifindex;
	t->fd[0] = t->fd[1] = -1;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->clsact = tc->clsact_only;
	/*
	 * Egress first: when a previous agent's links are adopted, a reply then
	 * never meets an older egress program while this build's ingress makes
	 * flows (one ks_ct entry, found through ks_ct_vips) that it cannot find.
	 * The other way round works: this egress also finds reverse entries.
	 */
	for (d = 0; d < 2 && !t->clsact; d++) {
		fd = tcx_attach(dp, ifindex, d == 1, &adopted);
		all_adopted &= adopted;
		if (fd == -EINVAL && d == 0) {
			/* Before 6.6 the kernel does not know the tcx attach types. */
			if (!tc->said_fallback)
				pr_warn("kernel has no tcx links: attaching the TC programs with clsact + cls_bpf",
					"iface=%s", name);
			tc->said_fallback = true;
			t->clsact = true;
			break;
		}
		if (fd < 0) {
			err = fd;
			goto fail;
		}
		t->fd[d == 0] = fd;	/* fd[0] is ingress */
	}
	for (d = 0; d < 2 && t->clsact; d++) {
		err = clsact_attach(dp, ifindex, d == 1);
		if (err)
			goto fail;
	}
	tc->n++;
	/* adopted: a previous agent's pinned links now run our programs. */
	pr_info("TC programs attached", "iface=%s ifindex=%d attach=%s adopted=%s", name, ifindex,
		t->clsact ? "clsact" : "tcx", !t->clsact && all_adopted ? "yes" : "no");
	return 0;
fail:
	pr_warn("cannot attach the TC programs", "iface=%s ifindex=%d err=%d", name, ifindex, err);
	if_release(t);
	return err;
}

/* The interface is gone: its tcx links went with it; drop our fds and its pins. */
static void forget_if(struct ks_dp *dp, int ifindex)
{
	struct dp_tc *tc = dp->tc;
	struct dp_tc_if *t = find_if(tc, ifindex);
	char path[PATH_MAX];
	int d;

	if (!t)
		return;
	for (d = 0; d < 2; d++)
		if (!pin_path(dp, ifindex, d == 0, path, sizeof(path)))
			unlink(path);
	pr_info("TC interface gone", "iface=%s ifindex=%d", t->name, ifindex);
	if_release(t);
	*t = tc->ifs[--tc->n];
}

static bool any_prefix(const struct dp_tc *tc)
{
	size_t i, n;

	for (i = 0; i < tc->n_pats; i++) {
		n = strlen(tc->pats[i]);
		if (n && tc->pats[i][n - 1] == '+')
			return true;
	}
	return false;
}

/* Every --tc-iface value is a name or PREFIX+, of a length an interface name can have. */
static int check_pats(const char *const *pats, size_t n)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		len = strlen(pats[i]);
		if (!len || len - (pats[i][len - 1] == '+') >= IF_NAMESIZE ||
		    strchr(pats[i], '/') || (len == 1 && pats[i][0] == '+')) {
			pr_error("--tc-iface: not an interface name or PREFIX+", "value=\"%s\"",
				 pats[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int ks_dp_tc_start(struct ks_dp *dp, const char *const *ifaces, size_t n, bool clsact)
{
	struct if_nameindex *all = NULL, *p;
	size_t i;
	int err;

	if (!n)
		return 0;
	err = check_pats(ifaces, n);
	if (err)
		return err;
	dp->tc = calloc(1, sizeof(*dp->tc));
	if (!dp->tc)
		return -ENOMEM;
	dp->tc->pats = ifaces;
	dp->tc->n_pats = n;
	dp->tc->clsact_only = clsact;
	/* Listen before listing, so an interface made in between is not missed. */
	if (any_prefix(dp->tc)) {
		dp->tc->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (!dp->tc->nl || mnl_socket_bind(dp->tc->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID)) {
			err = -errno;
			pr_error("cannot watch for new interfaces (netlink)", "err=%d", err);
			return err;
		}
	}
	all = if_nameindex();
	if (!all)
		return -errno;
	for (p = all; p->if_index; p++) {
		if (!wanted(dp->tc, p->if_name))
			continue;
		err = attach_if(dp, (int)p->if_index, p->if_name);
		if (err)
			goto out;
	}
	/* A plain name is one interface that must exist now; PREFIX+ may match none yet. */
	for (i = 0; i < n; i++) {
		if (ifaces[i][strlen(ifaces[i]) - 1] == '+' || if_nametoindex(ifaces[i]))
			continue;
		pr_error("--tc-iface: no such interface (PREFIX+ also takes interfaces made later)",
			 "iface=%s", ifaces[i]);
		err = -ENODEV;
		goto out;
	}
out:
	if_freenameindex(all);
	return err;
}

int ks_dp_tc_fd(const struct ks_dp *dp)
{
	return dp->tc && dp->tc->nl ? mnl_socket_get_fd(dp->tc->nl) : -1;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ks_dp *dp = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	const char *name = NULL;

	if (nlh->nlmsg_type == RTM_DELLINK) {
		forget_if(dp, ifi->ifi_index);
		return MNL_CB_OK;
	}
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*ifi))
		if (mnl_attr_get_type(a) == IFLA_IFNAME && !mnl_attr_validate(a, MNL_TYPE_STRING))
			name = mnl_attr_get_str(a);
	/* A failure is logged by attach_if; the other interfaces carry on. */
	if (name && wanted(dp->tc, name))
		attach_if(dp, ifi->ifi_index, name);
	return MNL_CB_OK;
}

void ks_dp_tc_process(struct ks_dp *dp)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t len;

	if (!dp->tc || !dp->tc->nl)
		return;
	while ((len = mnl_socket_recvfrom(dp->tc->nl, buf, sizeof(buf))) > 0)
		mnl_cb_run(buf, (size_t)len, 0, 0, link_cb, dp);
	if (len < 0 && errno == ENOBUFS)
		pr_warn("netlink overrun: interfaces made meanwhile may lack the TC programs until the next restart");
}

/* Our tcx link fd is still attached to its interface (a detached one reads ifindex 0). */
static bool tcx_live(int fd, __u32 *link_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	*link_id = info.id;
	return info.type == BPF_LINK_TYPE_TCX_ && info.netns.netns_ino;
}

/* Our cls_bpf filter is on the interface's clsact with our program (the qdisc may be gone). */
static bool clsact_live(struct ks_dp *dp, int ifindex, bool ingress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = KS_TC_HANDLE, .priority = KS_TC_PRIO);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	libbpf_print_fn_t old;
	int err;

	/* A missing qdisc or filter is what we look for: not worth libbpf's error line. */
	old = libbpf_set_print(NULL);
	err = bpf_tc_query(&hook, &o);
	libbpf_set_print(old);
	if (err || bpf_obj_get_info_by_fd(ks_dp_tc_prog_fd(dp, ingress), &info, &len))
		return false;
	return o.prog_id == info.id;
}

/*
 * One direction of one interface: put the program back when it was taken
 * away behind the agent's back (`bpftool link detach`, `tc qdisc del dev X
 * clsact`, `tc filter del`), like check_hook does for the cgroup hooks.
 */
static void check_dir(struct ks_dp *dp, struct dp_tc_if *t, int d, struct ks_dp_check *res)
{
	const char *dir = d == 0 ? "ingress" : "egress";
	bool adopted;
	__u32 old_id = 0;
	int fd, err;

	if (t->clsact ? clsact_live(dp, t->ifindex, d == 0) : tcx_live(t->fd[d], &old_id))
		return;
	if (t->clsact) {
		err = clsact_attach(dp, t->ifindex, d == 0);
	} else {
		/* The pin holds the detached link: tcx_attach makes a new one and pins it over. */
		fd = tcx_attach(dp, t->ifindex, d == 0, &adopted);
		err = fd < 0 ? fd : 0;
		if (fd >= 0) {
			close(t->fd[d]);
			t->fd[d] = fd;
		}
	}
	if (err) {
		pr_error("TC program cannot be put back: the interface's traffic bypasses ksplit",
			 "iface=%s ifindex=%d dir=%s err=%d", t->name, t->ifindex, dir, err);
		res->broken++;
		return;
	}
	pr_warn("TC program was taken away; re-attached it", "iface=%s ifindex=%d dir=%s attach=%s old_link_id=%u",
		t->name, t->ifindex, dir, t->clsact ? "clsact" : "tcx", old_id);
	res->repaired++;
	res->tc_relinked++;
}

void dp_tc_check(struct ks_dp *dp, struct ks_dp_check *res)
{
	char name[IF_NAMESIZE];
	size_t i;
	int d;

	if (!dp->tc)
		return;
	for (i = 0; i < dp->tc->n; i++) {
		/* A deleted interface took its programs along; RTM_DELLINK forgets it. */
		if (!if_indextoname((unsigned int)dp->tc->ifs[i].ifindex, name))
			continue;
		for (d = 0; d < 2; d++)
			check_dir(dp, &dp->tc->ifs[i], d, res);
	}
}

void dp_tc_close(struct ks_dp *dp)
{
	size_t i;

	if (!dp->tc)
		return;
	/* Our fds only: the pinned links and the clsact filters stay, like the cgroup links. */
	for (i = 0; i < dp->tc->n; i++)
		if_release(&dp->tc->ifs[i]);
	if (dp->tc->nl)
		mnl_socket_close(dp->tc->nl);
	free(dp->tc->ifs);
	free(dp->tc);
	dp->tc = NULL;
}

int dp_tc_links_attached(const char *pin_dir)
{
	size_t plen = strlen(KS_LINK_PREFIX "tc_");
	struct bpf_link_info info;
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0, fd;
	__u32 len;
	DIR *d;

	d = opendir(pin_dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, KS_LINK_PREFIX "tc_", plen))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		/* A tcx link whose interface is gone reads ifindex 0. */
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_TCX_ &&
		    info.netns.netns_ino)
			n++;
		close(fd);
	}
	if (d)
		closedir(d);
	return n;
}

/* Does prog_id use the map with id map_id? */
static bool prog_uses_map(__u32 prog_id, __u32 map_id)
{
	struct bpf_prog_info info = {};
	__u32 ids[64], len = sizeof(info), i;
	int fd = bpf_prog_get_fd_by_id(prog_id);
	bool yes = false;

	if (fd < 0)
		return false;
	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		for (i = 0; i < info.nr_map_ids && i < 64; i++)
			yes |= ids[i] == map_id;
	close(fd);
	return yes;
}

/*
 * `ksplit down`: the clsact filters are no pins; find ours on every
 * interface of this network namespace (the caller's: run down where the
 * agent ran) by handle, priority and the conntrack map of pin_dir
 * (another agent's filters use another map).
 */
int dp_tc_down(const char *pin_dir, unsigned int *removed)
{
	struct bpf_map_info mi = {};
	struct if_nameindex *all, *p;
	libbpf_print_fn_t old;
	char path[PATH_MAX];
	__u32 len = sizeof(mi);
	int fd, d;

	snprintf(path, sizeof(path), "%s/ks_ct", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &mi, &len)) {
		close(fd);
		return -errno;
	}
	close(fd);
	all = if_nameindex();
	/* Most interfaces have no clsact: libbpf would print the kernel's refusal for each. */
	old = libbpf_set_print(NULL);
	for (p = all; p && p->if_index; p++)
		for (d = 0; d < 2; d++) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)p->if_index,
				    .attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS);
			LIBBPF_OPTS(bpf_tc_opts, o, .handle = KS_TC_HANDLE, .priority = KS_TC_PRIO);

			if (bpf_tc_query(&hook, &o) || !prog_uses_map(o.prog_id, mi.id))
				continue;
			o.prog_id = 0;
			o.flags = 0;
			o.prog_fd = 0;
			if (!bpf_tc_detach(&hook, &o) && removed)
				(*removed)++;
		}
	libbpf_set_print(old);
	if (all)
		if_freenameindex(all);
	return 0;
}
