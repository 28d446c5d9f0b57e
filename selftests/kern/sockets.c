// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE	/* setns */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sockets.h"

void kt_server_spawn(struct kt_env *e, const char *addr)
{
	char srv[PATH_MAX], log[160];
	char *argv[] = { srv, "--listen", (char *)addr, "--id", (char *)addr, "--udp", NULL };
	int ready;

	assert_int_equal(kt_build_path("ks_server", srv, sizeof(srv)), 0);
	snprintf(log, sizeof(log), "/tmp/%s-server-%s.log", e->tag, addr);
	assert_true(kt_spawn_in_netns(e, argv, log) > 0);
	/*
	 * Listening before the test connects: ks_server prints "ready" once
	 * bound. A fixed 300 ms was too short for an emulated arm64 guest
	 * (make vm-test ARCH=arm64), where the holder's connect was refused.
	 */
	ready = kt_wait_in_file(log, "ready", 1, 5000);
	unlink(log);
	if (ready < 0)
		fail_msg("ks_server on %s: no \"ready\" within %ld s", addr, 5 * kt_slow());
}

int kt_hold_child_init(const struct kt_env *e, int timeout_s)
{
	kt_child_init(timeout_s);
	if (kt_cgroup_join(e->cgroup) || kt_netns_join(e->netns_path))
		return -1;
	return 0;
}

/* One request and its one-line answer: "+x\n" keeps a ks_server TCP connection open. */
static int round_trip(int fd, bool udp, char *id, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	const char *req = udp ? "x\n" : "+x\n";
	ssize_t r;

	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return errno;
	if (poll(&p, 1, 2000) != 1)
		return -1;
	r = recv(fd, id, len - 1, 0);
	if (r < 0)
		return errno;
	if (r == 0)
		return -1;
	id[r] = 0;
	id[strcspn(id, "\n")] = 0;
	return 0;
}

static void probe_one(int *fd, bool udp, struct kt_held *s)
{
	char buf[64];
	ssize_t r;
	int err;

	if (*fd < 0)
		return;		/* aborted or broken before: stays so */
	/* A destroyed socket reports its error to the first call that looks. */
	r = recv(*fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0 && errno != EAGAIN) {
		s->err = errno;
		s->state = errno == ECONNABORTED || errno == ECONNRESET ? KT_HOLD_ABORTED
									: KT_HOLD_BROKEN;
	} else if (r >= 0) {
		s->err = -1;
		s->state = KT_HOLD_BROKEN;
	} else {
		err = round_trip(*fd, udp, buf, sizeof(buf));
		s->err = err;
		if (!err && !strcmp(buf, s->id))
			s->state = KT_HOLD_OPEN;
		else if (err == ECONNABORTED || err == ECONNRESET)
			s->state = KT_HOLD_ABORTED;
		else
			s->state = KT_HOLD_BROKEN;
	}
	if (s->state != KT_HOLD_OPEN) {
		close(*fd);
		*fd = -1;
	}
}

static void holder_main(const struct kt_env *e, const struct kt_hold_spec *spec, size_t n,
			struct kt_holds *h, int cmd, int ack)
{
	int fds[KT_HOLD_MAX];
	bool udp[KT_HOLD_MAX];
	char c;
	size_t i;
	int j;

	if (kt_hold_child_init(e, 300))
		_exit(10);
	for (i = 0; i < n; i++) {
		for (j = 0; j < spec[i].count; j++) {
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(spec[i].port) };
			struct kt_held *s = &h->s[h->n];
			int fd;

			if (h->n == KT_HOLD_MAX || inet_pton(AF_INET, spec[i].addr, &a.sin_addr) != 1)
				_exit(11);
			fd = socket(AF_INET, spec[i].udp ? SOCK_DGRAM : SOCK_STREAM, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
			    round_trip(fd, spec[i].udp, s->id, sizeof(s->id)))
				_exit(12);
			snprintf(s->target, sizeof(s->target), "%s:%d/%s", spec[i].addr, spec[i].port,
				 spec[i].udp ? "udp" : "tcp");
			s->state = KT_HOLD_OPEN;
			udp[h->n] = spec[i].udp;
			fds[h->n++] = fd;
		}
	}
	if (write(ack, "R", 1) != 1)
		_exit(13);
	/* 'P': probe every socket; EOF (the test ended): exit, closing them all. */
	while (read(cmd, &c, 1) == 1 && c == 'P') {
		for (j = 0; j < h->n; j++)
			probe_one(&fds[j], udp[j], &h->s[j]);
		if (write(ack, "D", 1) != 1)
			_exit(14);
	}
	_exit(0);
}

int kt_holder_start(struct kt_env *e, const struct kt_hold_spec *spec, size_t n,
		    struct kt_holder *hd)
{
	int cmd[2], ack[2];
	char c;

	memset(hd, 0, sizeof(*hd));
	hd->h = mmap(NULL, sizeof(*hd->h), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (hd->h == MAP_FAILED || pipe2(cmd, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
		return -1;
	fflush(NULL);
	hd->pid = fork();
	if (hd->pid < 0)
		return -1;
	if (!hd->pid) {
		close(cmd[1]);
		close(ack[0]);
		holder_main(e, spec, n, hd->h, cmd[0], ack[1]);
	}
	close(cmd[0]);
	close(ack[1]);
	hd->cmd = cmd[1];
	hd->ack = ack[0];
	/* Tracked, so a failed assertion cannot strand it in the cgroup. */
	kt_track_child(e, hd->pid);
	if (read(hd->ack, &c, 1) != 1) {
		int st = kt_stop(e, hd->pid, SIGKILL, 1000);

		fprintf(stderr, "kern test: holder failed before holding: exit %d\n",
			st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -1;
	}
	return 0;
}

int kt_holder_probe(struct kt_holder *hd)
{
	char c;

	if (write(hd->cmd, "P", 1) != 1 || read(hd->ack, &c, 1) != 1)
		return -1;
	return 0;
}

int kt_holder_count(const struct kt_holder *hd, const char *target, const char *id, int state)
{
	int i, n = 0;

	for (i = 0; i < hd->h->n; i++) {
		const struct kt_held *s = &hd->h->s[i];

		if ((!target || !strcmp(s->target, target)) && (!id || !strcmp(s->id, id)) &&
		    s->state == state)
			n++;
	}
	return n;
}

void kt_holder_print(const struct kt_holder *hd, const char *what)
{
	static const char *const names[] = { "?", "open", "aborted", "broken" };
	int i;

	for (i = 0; i < hd->h->n; i++) {
		const struct kt_held *s = &hd->h->s[i];

		if (s->state != KT_HOLD_OPEN || getenv("KT_VERBOSE"))
			printf("  [%s] %-20s via %-16s %s (errno %d)\n", what, s->target, s->id,
			       names[s->state >= 1 && s->state <= 3 ? s->state : 0], s->err);
	}
}

void kt_holder_stop(struct kt_env *e, struct kt_holder *hd)
{
	if (hd->pid > 0) {
		close(hd->cmd);
		close(hd->ack);
		kt_stop(e, hd->pid, 0, 5000);
		hd->pid = 0;
	}
	if (hd->h && hd->h != MAP_FAILED)
		munmap(hd->h, sizeof(*hd->h));
	hd->h = NULL;
}

int kt_apply_drain(struct kt_env *e, const char *yaml, struct ks_drain_stats *st)
{
	int err = kt_apply_yaml(e, yaml);

	/* The agent's order: the apply first, so nothing new reaches them, then drain. */
	if (!err)
		err = ks_dp_reconcile(e->dp, st);
	return err;
}
