// SPDX-License-Identifier: BSD-2-Clause
/*
 * Drain: an endpoint that leaves its EndpointSlice loses its established
 * sockets at once (sock_diag SOCK_DESTROY: the client sees ECONNABORTED, not
 * a hang); a terminating endpoint keeps them so they can finish.
 * Persistent connections need a server that keeps them open: build/ks_server.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"
#include "sockets.h"

#define HELD 40

struct held {
	char id[HELD][32];
	int err[HELD];		/* errno seen by recv, 0 = still open after the wait */
	long ms[HELD];
};

/* Child: join the cgroup and netns, hold HELD connections, report, then wait on them. */
static void holder(struct kt_env *e, int ready_fd, struct held *out)
{
	int fds[HELD], i;

	if (kt_hold_child_init(e, 30))
		_exit(10);
	for (i = 0; i < HELD; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
		char buf[64] = {};
		ssize_t r;

		inet_pton(AF_INET, "127.10.0.1", &a.sin_addr);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) ||
		    write(fds[i], "+x\n", 3) != 3)
			_exit(12);
		r = read(fds[i], buf, sizeof(buf) - 1);
		if (r <= 0)
			_exit(13);
		buf[strcspn(buf, "\n")] = 0;
		snprintf(out->id[i], sizeof(out->id[i]), "%s", buf);
	}
	if (write(ready_fd, "R", 1) != 1)
		_exit(14);
	{
		/* All sockets at once: each one's time is its own, not its predecessors'. */
		int64_t t0 = kt_now_ns(), left;
		struct pollfd p[HELD];
		int pending = HELD;

		for (i = 0; i < HELD; i++) {
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
			out->err[i] = 0;
			out->ms[i] = -1;
		}
		while (pending && (left = 1500 - (kt_now_ns() - t0) / 1000000) > 0) {
			if (poll(p, HELD, left) <= 0)
				break;
			for (i = 0; i < HELD; i++) {
				char c;

				if (p[i].fd < 0 || !p[i].revents)
					continue;
				out->err[i] = recv(fds[i], &c, 1, 0) < 0 ? errno : -1;
				out->ms[i] = (kt_now_ns() - t0) / 1000000;
				p[i].fd = -1;
				pending--;
			}
		}
	}
	_exit(0);
}

static char *manifest(const char *eps)
{
	struct kt_buf b = {};

	kt_yaml_gateway(&b, "gw", "127.10.0.1", "http:HTTP:80");
	kt_yaml_service(&b, "web", 80, NULL);
	kt_yaml_slice(&b, "web", "IPv4", eps);
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", "web=1");
	return b.s;
}

static void test_removed_reset_terminating_kept(void **state)
{
	struct kt_env *e = *state;
	struct held *h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct ks_drain_stats ds;
	int p[2], i, status, to2 = 0, aborted2 = 0, open_other = 0, others = 0;
	char c, *y;
	pid_t pid;

	assert_true(h != MAP_FAILED);
	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	kt_server_spawn(e, "127.1.0.1:8080");
	kt_server_spawn(e, "127.1.0.2:8080");
	kt_server_spawn(e, "127.1.0.3:8080");
	y = manifest("127.1.0.1 127.1.0.2 127.1.0.3");
	assert_int_equal(kt_apply_yaml(e, y), 0);
	free(y);

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		holder(e, p[1], h);
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		fail_msg("holder failed before holding: exit %d", WEXITSTATUS(status));
	}
	close(p[0]);

	/* .2 leaves the slice; .3 turns terminating: only .2's sockets may be cut. */
	y = manifest("127.1.0.1 127.1.0.3=terminating");
	assert_int_equal(kt_apply_drain(e, y, &ds), 0);
	free(y);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	for (i = 0; i < HELD; i++) {
		printf("  [drain] %-16s errno %-3d after %ld ms\n", h->id[i], h->err[i], h->ms[i]);
		if (!strcmp(h->id[i], "127.1.0.2:8080")) {
			to2++;
			/*
			 * Within the holder's window (its clock starts before the
			 * apply and drain are even issued): nothing but the drain
			 * aborts a held socket. How fast is make bench's business;
			 * a 100 ms bound here failed under a loaded CI run (127 ms).
			 */
			if (h->err[i] == ECONNABORTED && h->ms[i] >= 0 && h->ms[i] < 1500)
				aborted2++;
		} else {
			others++;
			if (h->err[i] == 0)
				open_other++;
		}
	}
	printf("  [drain] destroyed %u sockets; %d of %d to the removed endpoint aborted at once, %d of %d others still open\n",
	       ds.destroyed, aborted2, to2, open_other, others);
	/* 40 connections over 3 endpoints: P(none to .2) = (2/3)^40, about 1e-7. */
	assert_true(to2 > 0);
	assert_int_equal(ds.destroyed, to2);
	assert_int_equal(aborted2, to2);
	assert_int_equal(open_other, others);
	munmap(h, sizeof(*h));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_removed_reset_terminating_kept, kt_setup,
						kt_teardown),
	};

	return cmocka_run_group_tests_name("drain", tests, NULL, NULL);
}
