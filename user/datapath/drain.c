// SPDX-License-Identifier: BSD-2-Clause
/*
 * The drain reconciliation (drain.h). Per network namespace: one sock_diag
 * dump of the TCP sockets per address family, each socket with its ks_sock
 * record (INET_DIAG_REQ_SK_BPF_STORAGES, kernel 5.7+), a hash lookup per
 * steered socket, then SOCK_DESTROY for the orphans.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "datapath/drain.h"
#include "common/log.h"

/* Large enough for any dump skb the kernel builds for a reader of this size. */
#define DIAG_BUF_SIZE	32768

/* ------------------------------------------------------------ live set */

struct live_key {
	struct ks_svc_key svc;
	__u32 be[4];
	__u16 be_port;
	__u16 _pad;	/* zeroed: keys are hashed and compared as bytes */
};

struct ks_drain_live {
	size_t n, cap;		/* cap: a power of two, at least twice n */
	struct live_key *keys;
	bool *used;
};

static uint64_t key_hash(const struct live_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The slot holding k, or the empty slot where it belongs. */
static size_t live_slot(const struct ks_drain_live *l, const struct live_key *k)
{
	size_t i = key_hash(k) & (l->cap - 1);

	while (l->used[i] && memcmp(&l->keys[i], k, sizeof(*k)))
		i = (i + 1) & (l->cap - 1);
	return i;
}

static int live_resize(struct ks_drain_live *l, size_t cap)
{
	struct ks_drain_live n = { .cap = cap };
	size_t i;

	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.used = calloc(n.cap, sizeof(*n.used));
	if (!n.keys || !n.used) {
		free(n.keys);
		free(n.used);
		return -ENOMEM;
	}
	for (i = 0; i < l->cap; i++) {
		size_t s;

		if (!l->used[i])
			continue;
		s = live_slot(&n, &l->keys[i]);
		n.keys[s] = l->keys[i];
		n.used[s] = true;
		n.n++;
	}
	free(l->keys);
	free(l->used);
	*l = n;
	return 0;
}

static int live_grow(struct ks_drain_live *l)
{
	return live_resize(l, l->cap ? l->cap * 2 : 64);
}

int ks_drain_live_reserve(struct ks_drain_live *l, size_t n)
{
	size_t cap = l->cap;

	while (cap < 2 * (l->n + n))
		cap *= 2;
	return cap == l->cap ? 0 : live_resize(l, cap);
}

int ks_drain_live_new(struct ks_drain_live **out)
{
	struct ks_drain_live *l = calloc(1, sizeof(*l));
	int err;

	if (!l)
		return -ENOMEM;
	err = live_grow(l);
	if (err) {
		free(l);
		return err;
	}
	*out = l;
	return 0;
}

static void live_key_make(struct live_key *lk, const struct ks_svc_key *k, const __u32 be[4],
			  __u16 be_port)
{
	memset(lk, 0, sizeof(*lk));
	lk->svc = *k;
	memcpy(lk->be, be, sizeof(lk->be));
	lk->be_port = be_port;
}

int ks_drain_live_add(struct ks_drain_live *l, const struct ks_svc_key *k,
		      const struct ks_backend *be)
{
	struct live_key lk;
	size_t s;
	int err;

	if (2 * (l->n + 1) > l->cap) {
		err = live_grow(l);
		if (err)
			return err;
	}
	live_key_make(&lk, k, be->addr, be->port);
	s = live_slot(l, &lk);
	if (!l->used[s]) {
		l->keys[s] = lk;
		l->used[s] = true;
		l->n++;
	}
	return 0;
}

void ks_drain_live_free(struct ks_drain_live *l)
{
	if (!l)
		return;
	free(l->keys);
	free(l->used);
	free(l);
}

static bool live_has(const struct ks_drain_live *l, const struct live_key *k)
{
	return l->used[live_slot(l, k)];
}

enum ks_drain_verdict ks_drain_judge(const struct ks_drain_live *l, const struct ks_sock_ent *e,
				     int sock_family, int proto, const __u32 dst[4], __u16 dport)
{
	struct ks_svc_key k = { .port = e->vip_port, .proto = proto, .family = e->family };
	__u32 peer[4] = {};
	struct live_key lk;
	__u8 family;
	size_t alen;

	/* The peer in ksplit's form: a dual-stack socket reaches a v4 pod as ::ffff:a.b.c.d. */
	if (sock_family == AF_INET) {
		family = KS_FAMILY_V4;
		peer[0] = dst[0];
	} else if (!dst[0] && !dst[1] && dst[2] == htonl(0xffff)) {
		family = KS_FAMILY_V4;
		peer[0] = dst[3];
	} else {
		family = KS_FAMILY_V6;
		memcpy(peer, dst, sizeof(peer));
	}
	alen = family == KS_FAMILY_V4 ? 4 : 16;
	/* Only an entry whose backend is the socket's peer says ksplit made this connection. */
	if (!e->used || e->family != family || e->be_port != dport || memcmp(e->be, peer, alen))
		return KS_DRAIN_NOT_STEERED;
	memcpy(k.addr, e->vip, sizeof(k.addr));
	live_key_make(&lk, &k, e->be, e->be_port);
	return live_has(l, &lk) ? KS_DRAIN_KEEP : KS_DRAIN_DESTROY;
}

/* ------------------------------------------------------------ sock_diag */

/* One pid per distinct network namespace of the processes of the cgroup subtree. */
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

static int walk_cgroup(const char *dir, int depth, struct idset *netns, struct idset *pids,
		       struct ks_drain_stats *st)
{
	char path[PATH_MAX];
	struct dirent *de;
	FILE *f;
	DIR *d;
	int pid, err = 0;

	if (depth > 32)
		return 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f) {
		while (!err && fscanf(f, "%d", &pid) == 1) {
			char ns[64];
			struct stat nst;

			snprintf(ns, sizeof(ns), "/proc/%d/ns/net", pid);
			if (stat(ns, &nst)) {
				/* Another user's or a more capable process: ptrace access is needed. */
				if (errno == EACCES || errno == EPERM)
					st->ns_denied++;
				continue;	/* else the process exited meanwhile */
			}
			if (idset_has(netns, nst.st_ino))
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
		err = walk_cgroup(path, depth + 1, netns, pids, st);
	}
	closedir(d);
	return err;
}

struct dump_ctx {
	const struct ks_drain_live *live;
	int map_fd;
	uint32_t map_id;
	uint8_t family, proto;
	struct ks_drain_stats *st;
	size_t n_found, alloc;
	struct inet_diag_sockid *found;
	char *buf;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, INET_DIAG_MAX) > 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

/* The socket's ks_sock record out of INET_DIAG_SK_BPF_STORAGES; false when it has none. */
static bool sock_record(const struct dump_ctx *c, const struct nlattr *stgs,
			struct ks_sock_ent *out)
{
	const struct nlattr *stg, *a;

	mnl_attr_for_each_nested(stg, stgs) {
		const struct nlattr *value = NULL;
		uint32_t id = 0;

		if (mnl_attr_get_type(stg) != SK_DIAG_BPF_STORAGE)
			continue;
		mnl_attr_for_each_nested(a, stg) {
			if (mnl_attr_get_type(a) == SK_DIAG_BPF_STORAGE_MAP_ID &&
			    mnl_attr_get_payload_len(a) == sizeof(id))
				id = mnl_attr_get_u32(a);
			else if (mnl_attr_get_type(a) == SK_DIAG_BPF_STORAGE_MAP_VALUE)
				value = a;
		}
		if (id != c->map_id || !value || mnl_attr_get_payload_len(value) != sizeof(*out))
			continue;
		memcpy(out, mnl_attr_get_payload(value), sizeof(*out));
		return true;
	}
	return false;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *c = data;
	struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[INET_DIAG_MAX + 1] = {};
	struct ks_sock_ent rec;

	mnl_attr_parse(nlh, sizeof(*m), attr_cb, tb);
	if (!tb[INET_DIAG_SK_BPF_STORAGES] || !sock_record(c, tb[INET_DIAG_SK_BPF_STORAGES], &rec))
		return MNL_CB_OK;
	switch (ks_drain_judge(c->live, &rec, c->family, c->proto, m->id.idiag_dst,
			       m->id.idiag_dport)) {
	case KS_DRAIN_NOT_STEERED:
		return MNL_CB_OK;
	case KS_DRAIN_KEEP:
		c->st->steered++;
		return MNL_CB_OK;
	case KS_DRAIN_DESTROY:
		break;
	}
	c->st->steered++;
	c->st->orphaned++;
	if (c->n_found == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 16;
		struct inet_diag_sockid *nv = realloc(c->found, na * sizeof(*nv));

		if (!nv)
			return MNL_CB_ERROR;
		c->found = nv;
		c->alloc = na;
	}
	c->found[c->n_found++] = m->id;
	return MNL_CB_OK;
}

/* A dump (id NULL: with each socket's record) or a SOCK_DESTROY of id. */
static int diag_request(struct mnl_socket *nl, struct dump_ctx *c, uint16_t type,
			const struct inet_diag_sockid *id)
{
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	unsigned int seq = time(NULL), portid = mnl_socket_get_portid(nl);
	int ret;

	nlh = mnl_nlmsg_put_header(c->buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | (id ? NLM_F_ACK : NLM_F_DUMP);
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = c->family;
	req->sdiag_protocol = c->proto;
	/* Everything that can hold a peer: not LISTEN, not TIME_WAIT, not CLOSE. */
	req->idiag_states = ~((1U << TCP_LISTEN) | (1U << TCP_TIME_WAIT) | (1U << TCP_CLOSE));
	if (id) {
		req->id = *id;
	} else {
		struct nlattr *nest = mnl_attr_nest_start(nlh, INET_DIAG_REQ_SK_BPF_STORAGES);

		mnl_attr_put_u32(nlh, SK_DIAG_BPF_STORAGE_REQ_MAP_FD, c->map_fd);
		mnl_attr_nest_end(nlh, nest);
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while ((ret = mnl_socket_recvfrom(nl, c->buf, DIAG_BUF_SIZE)) > 0) {
		ret = mnl_cb_run(c->buf, ret, seq, portid, id ? NULL : dump_cb, c);
		if (ret <= MNL_CB_STOP)
			break;
	}
	return ret < 0 ? -errno : 0;
}

static int drain_netns(struct dump_ctx *c)
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
	/*
	 * TCP only. The kernel dumps socket storage only for connection
	 * sockets (inet_sk_diag_fill stops before it for UDP), so a connected
	 * UDP socket cannot be told apart from one ksplit never steered; and
	 * unconnected UDP has no peer to cut: its next datagram picks again.
	 */
	c->proto = IPPROTO_TCP;
	for (f = 0; f < sizeof(fams); f++) {
		c->family = fams[f];
		c->n_found = 0;
		err = diag_request(nl, c, SOCK_DIAG_BY_FAMILY, NULL);
		if (err)
			goto out;
		for (i = 0; i < c->n_found; i++) {
			int e = diag_request(nl, c, SOCK_DESTROY, &c->found[i]);

			/* ENOENT: it closed by itself meanwhile. */
			if (!e) {
				c->st->destroyed++;
			} else if (e == -EPERM) {
				c->st->denied++;
			} else if (e != -ENOENT) {
				if (!c->st->failed++)
					c->st->fail_err = e;
			}
		}
	}
out:
	mnl_socket_close(nl);
	return err;
}

static void report_refusals(const struct ks_drain_stats *st)
{
	if (st->ns_denied)
		pr_warn("cannot read /proc/<pid>/ns/net (EACCES): the agent lacks CAP_SYS_PTRACE (add it to its capabilities), so the network namespaces of these processes are not drained and their connections to endpoints that left their VIP stay up until they close",
			"processes=%u", st->ns_denied);
	if (st->denied)
		pr_warn("SOCK_DESTROY refused (EPERM): the agent lacks CAP_NET_ADMIN in the pods' network namespace, so connections to endpoints that left their VIP stay up until they close",
			"sockets=%u", st->denied);
	if (st->failed)
		pr_warn(st->fail_err == -EOPNOTSUPP
				? "SOCK_DESTROY unsupported: kernel built without CONFIG_INET_DIAG_DESTROY; connections to endpoints that left their VIP stay up until they close"
				: "SOCK_DESTROY failed; those connections stay up until they close",
			"sockets=%u err=%d", st->failed, st->fail_err);
}

int ks_drain_reconcile(const char *cgroup, int sock_map_fd, const struct ks_drain_live *live,
		       struct ks_drain_stats *st)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	struct idset netns = {}, pids = {};
	struct dump_ctx c = { .live = live, .map_fd = sock_map_fd, .st = st };
	int self = -1, err;
	size_t i;

	memset(st, 0, sizeof(*st));
	/* Records of other maps (another agent's pin dir) are not ours to judge. */
	if (bpf_obj_get_info_by_fd(sock_map_fd, &info, &ilen))
		return -errno;
	c.map_id = info.id;
	c.buf = malloc(DIAG_BUF_SIZE);
	if (!c.buf)
		return -ENOMEM;
	err = walk_cgroup(cgroup, 0, &netns, &pids, st);
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
			if (err == -EPERM)
				pr_warn("setns refused (EPERM): the agent lacks CAP_SYS_ADMIN (add it to its capabilities), so it cannot enter the pods' network namespaces to drain; connections to endpoints that left their VIP stay up until they close",
					"pid=%d", (int)pids.v[i]);
			goto out;
		}
		close(fd);
		st->netns++;
		e = drain_netns(&c);
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
	report_refusals(st);
	if (self >= 0)
		close(self);
	free(netns.v);
	free(pids.v);
	free(c.found);
	free(c.buf);
	return err;
}
