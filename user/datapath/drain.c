// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "datapath/drain.h"
#include "common/log.h"

struct idset {
	size_t n, alloc;
	uint64_t *v;
};

static int idset_add(struct idset *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return 0;
	if (s->n == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 16;
		uint64_t *nv = realloc(s->v, na * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->alloc = na;
	}
	s->v[s->n++] = id;
	return 0;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return true;
	return false;
}

/* Cgroup ids of the subtree, and one pid per distinct network namespace. */
static int walk_cgroup(const char *dir, int depth, struct idset *cgids, struct idset *netns,
		       struct idset *pids)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	FILE *f;
	DIR *d;
	int pid, err = 0;

	if (depth > 32 || stat(dir, &st))
		return 0;
	err = idset_add(cgids, st.st_ino);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f) {
		while (!err && fscanf(f, "%d", &pid) == 1) {
			char ns[64];
			struct stat nst;

			snprintf(ns, sizeof(ns), "/proc/%d/ns/net", pid);
			if (stat(ns, &nst) || idset_has(netns, nst.st_ino))
				continue;
			err = idset_add(netns, nst.st_ino);
			if (!err)
				err = idset_add(pids, pid);
		}
		fclose(f);
	}
	d = opendir(dir);
	if (!d)
		return err;
	while (!err && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		err = walk_cgroup(path, depth + 1, cgids, netns, pids);
	}
	closedir(d);
	return err;
}

struct dump_ctx {
	const struct ks_drain_target *t;
	size_t n;
	const struct idset *cgids;
	uint8_t family;
	size_t n_found, alloc;
	struct inet_diag_sockid *found;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, INET_DIAG_MAX) > 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *c = data;
	struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[INET_DIAG_MAX + 1] = {};
	size_t i;

	mnl_attr_parse(nlh, sizeof(*m), attr_cb, tb);
	/* Without the cgroup id we cannot tell whose socket it is: leave it alone. */
	if (!tb[INET_DIAG_CGROUP_ID] || !idset_has(c->cgids, mnl_attr_get_u64(tb[INET_DIAG_CGROUP_ID])))
		return MNL_CB_OK;
	for (i = 0; i < c->n; i++) {
		const struct ks_drain_target *t = &c->t[i];
		uint32_t want[4] = { t->addr[0], t->addr[1], t->addr[2], t->addr[3] };

		if (t->port != m->id.idiag_dport)
			continue;
		if (c->family == AF_INET6 && t->family == KS_FAMILY_V4) {
			/* A dual-stack socket reaches a v4 pod as ::ffff:a.b.c.d. */
			want[0] = want[1] = 0;
			want[2] = htonl(0xffff);
			want[3] = t->addr[0];
		} else if ((c->family == AF_INET) != (t->family == KS_FAMILY_V4)) {
			continue;
		}
		if (memcmp(m->id.idiag_dst, want, c->family == AF_INET ? 4 : 16))
			continue;
		if (c->n_found == c->alloc) {
			size_t na = c->alloc ? c->alloc * 2 : 16;
			struct inet_diag_sockid *nv = realloc(c->found, na * sizeof(*nv));

			if (!nv)
				return MNL_CB_ERROR;
			c->found = nv;
			c->alloc = na;
		}
		c->found[c->n_found++] = m->id;
		break;
	}
	return MNL_CB_OK;
}

static int diag_request(struct mnl_socket *nl, uint16_t type, uint16_t flags, uint8_t family,
			const struct inet_diag_sockid *id, struct dump_ctx *c)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	unsigned int seq = time(NULL), portid = mnl_socket_get_portid(nl);
	int ret;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_TCP;
	/* Everything that can hold a peer: not LISTEN, not TIME_WAIT. */
	req->idiag_states = ~((1U << TCP_LISTEN) | (1U << TCP_TIME_WAIT) | (1U << TCP_CLOSE));
	if (id)
		req->id = *id;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, ret, seq, portid, c ? dump_cb : NULL, c);
		if (ret <= MNL_CB_STOP)
			break;
	}
	return ret < 0 ? -errno : 0;
}

static int drain_netns(struct dump_ctx *c, unsigned int *destroyed)
{
	static const uint8_t fams[] = { AF_INET, AF_INET6 };
	struct mnl_socket *nl;
	size_t f, i;
	int err = 0;

	/* The socket belongs to the netns it is created in: create it after setns. */
	nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	for (f = 0; f < sizeof(fams); f++) {
		c->family = fams[f];
		c->n_found = 0;
		err = diag_request(nl, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, fams[f], NULL, c);
		if (err)
			goto out;
		for (i = 0; i < c->n_found; i++) {
			int e = diag_request(nl, SOCK_DESTROY, NLM_F_ACK, fams[f], &c->found[i], NULL);

			/* ENOENT: it closed by itself meanwhile. */
			if (!e)
				(*destroyed)++;
			else if (e != -ENOENT)
				pr_warn("SOCK_DESTROY failed", "err=%d", e);
		}
	}
out:
	mnl_socket_close(nl);
	return err;
}

int ks_drain(const char *cgroup, const struct ks_drain_target *t, size_t n, unsigned int *destroyed)
{
	struct idset cgids = {}, netns = {}, pids = {};
	struct dump_ctx c = { .t = t, .n = n, .cgids = &cgids };
	int self = -1, err;
	size_t i;

	*destroyed = 0;
	if (!n)
		return 0;
	err = walk_cgroup(cgroup, 0, &cgids, &netns, &pids);
	if (err)
		goto out;
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		err = -errno;
		goto out;
	}
	for (i = 0; i < pids.n; i++) {
		char ns[64];
		int fd, e;

		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)pids.v[i]);
		fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;	/* the process exited meanwhile */
		if (setns(fd, CLONE_NEWNET)) {
			err = -errno;
			close(fd);
			goto out;
		}
		close(fd);
		e = drain_netns(&c, destroyed);
		if (setns(self, CLONE_NEWNET)) {
			/* Staying in a pod's netns would break every later netlink call. */
			err = -errno;
			pr_warn("cannot return to the agent's network namespace", "err=%d", err);
			goto out;
		}
		if (e)
			pr_warn("drain failed in a network namespace", "pid=%d err=%d", (int)pids.v[i], e);
	}
out:
	if (self >= 0)
		close(self);
	free(cgids.v);
	free(netns.v);
	free(pids.v);
	free(c.found);
	return err;
}
