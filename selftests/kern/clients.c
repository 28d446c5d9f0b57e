// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "cgroup_helpers.h"
#include "net_helpers.h"

static void fail_errno(struct kt_result *r, int err)
{
	r->failed++;
	r->err[err > 0 && err < KT_MAX_ERRNO ? err : 0]++;
}

static void check_removed(struct kt_result *r, const char *id, int64_t start)
{
	int n = __atomic_load_n(&r->n_removed, __ATOMIC_ACQUIRE), i;

	for (i = 0; i < n; i++)
		if (start >= r->after_ns[i] && !strcmp(id, r->removed[i]))
			r->removed_hits[i]++;
}

static const struct timeval rcv_timeout = { 2, 0 };

/* One TCP connect; the reply (server id) goes into id. 0 or errno. */
static int tcp_once(const struct sockaddr_storage *dst, socklen_t dlen, struct kt_result *r,
		    char *id, size_t idlen)
{
	const struct linger lg = { 1, 0 };
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	char p[KT_KEY_LEN];
	size_t got = 0;
	ssize_t k;
	int fd, err = 0;

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv_timeout, sizeof(rcv_timeout));
	if (connect(fd, (const struct sockaddr *)dst, dlen)) {
		err = errno;
		goto out;
	}
	if (!getpeername(fd, (struct sockaddr *)&peer, &plen)) {
		kt_fmt_addr(&peer, p, sizeof(p));
		kt_tally_add(&r->peers, p);
	}
	while (got < idlen - 1 && (k = read(fd, id + got, idlen - 1 - got)) > 0)
		got += k;
	id[got] = 0;
	if (!got)
		err = k < 0 ? errno : EPIPE;
out:
	/* RST instead of FIN: thousands of connects must not fill TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return err;
}

static int udp_once(int fd, bool connected, const struct sockaddr_storage *dst, socklen_t dlen,
		    struct kt_result *r, char *id, size_t idlen)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char src[KT_KEY_LEN];
	ssize_t k;

	if (connected) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		if (connect(fd, (const struct sockaddr *)dst, dlen))
			return errno;
		if (!getpeername(fd, (struct sockaddr *)&peer, &plen)) {
			kt_fmt_addr(&peer, src, sizeof(src));
			kt_tally_add(&r->peers, src);
		}
		k = send(fd, "q", 1, 0);
	} else {
		k = sendto(fd, "q", 1, 0, (const struct sockaddr *)dst, dlen);
	}
	if (k < 0)
		return errno;
	k = recvfrom(fd, id, idlen - 1, 0, (struct sockaddr *)&from, &fl);
	if (k < 0)
		return errno;
	id[k] = 0;
	kt_fmt_addr(&from, src, sizeof(src));
	kt_tally_add(&r->srcs, src);
	return 0;
}

static void client_main(const struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r)
{
	struct sockaddr_storage dst;
	socklen_t dlen;
	int ufd = -1, fd;
	long i;

	/* Join before the first socket: a socket belongs to its creator's cgroup. */
	if (!o->outside_cgroup && kt_cgroup_join(e->cgroup))
		_exit(3);
	if (kt_netns_join(e->netns_path) || kt_parse_addr(o->target, &dst, &dlen))
		_exit(4);
	for (i = 0; o->loop ? !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) : i < o->count; i++) {
		int64_t start = kt_now_ns();
		char id[KT_KEY_LEN];
		int err;

		r->attempts++;
		if (o->mode == KT_TCP) {
			err = tcp_once(&dst, dlen, r, id, sizeof(id));
		} else {
			if (ufd < 0) {
				ufd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
				if (ufd < 0)
					_exit(5);
				/* A lost datagram must cost a bounded wait, never a hang. */
				setsockopt(ufd, SOL_SOCKET, SO_RCVTIMEO, &rcv_timeout,
					   sizeof(rcv_timeout));
			}
			err = udp_once(ufd, o->mode == KT_UDP_CONNECTED, &dst, dlen, r, id,
				       sizeof(id));
			if (!o->one_socket || o->mode == KT_UDP_CONNECTED) {
				fd = ufd;
				ufd = -1;
				close(fd);
			}
		}
		if (err) {
			fail_errno(r, err);
			continue;
		}
		r->ok++;
		kt_tally_add(&r->ids, id);
		check_removed(r, id, start);
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	_exit(0);
}

int kt_client_start(struct kt_env *e, const struct kt_client_opts *o, struct kt_client *c)
{
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->res = mmap(NULL, sizeof(*c->res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (c->res == MAP_FAILED) {
		c->res = NULL;
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		kt_child_init(o->timeout_s ? o->timeout_s : 120);
		client_main(e, o, c->res);
	}
	c->pid = pid;
	kt_track_child(e, pid);
	return 0;
}

static int client_reap(struct kt_env *e, struct kt_client *c, long timeout_ms)
{
	int st;

	if (c->pid <= 0)
		return -ECHILD;
	st = kt_reap(e, c->pid, timeout_ms);
	c->pid = 0;
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "kern test: client failed (status 0x%x)\n", st);
		return -EIO;
	}
	return 0;
}

int kt_client_wait(struct kt_env *e, struct kt_client *c)
{
	return client_reap(e, c, 180000);
}

int kt_client_stop(struct kt_env *e, struct kt_client *c)
{
	if (c->res)
		__atomic_store_n(&c->res->stop, 1, __ATOMIC_RELEASE);
	return client_reap(e, c, 10000);
}

void kt_client_free(struct kt_client *c)
{
	if (c->res)
		munmap(c->res, sizeof(*c->res));
	c->res = NULL;
}

void kt_client_mark_removed(struct kt_client *c, const char *id, int64_t after_ns)
{
	int n = c->res->n_removed;

	if (n >= KT_MAX_REMOVED)
		return;
	snprintf(c->res->removed[n], KT_KEY_LEN, "%s", id);
	c->res->after_ns[n] = after_ns;
	/* Publish the entry only once it is complete. */
	__atomic_store_n(&c->res->n_removed, n + 1, __ATOMIC_RELEASE);
}

int kt_client_run(struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r)
{
	struct kt_client c;
	int err;

	err = kt_client_start(e, o, &c);
	if (!err)
		err = kt_client_wait(e, &c);
	if (c.res)
		memcpy(r, c.res, sizeof(*r));
	kt_client_free(&c);
	return err;
}
