// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unconnected UDP with many VIPs on one socket: every reply's source must
 * be the VIP the datagram was sent to, never a pod address and never
 * another VIP. What the datapath cannot tell apart (two VIPs of one socket
 * on the same backend, when one of them has no other) is counted in the
 * socket's ks_udp_sock record and must stay within the bound of
 * docs/design.md, "Unconnected UDP": the reply is shown as the VIP sent
 * to most recently.
 *
 * Every exchange runs in one client child (test cgroup and netns), which
 * reads its own sockets' records from the pinned ks_udp_sock map.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "sockets.h"

#define N_VIPS		KS_UDP_ENTRIES	/* the most one socket keeps apart */
#define SOCKS		20		/* fresh sockets per scenario: picks are random */
#define ROUNDS		10		/* ping-pong rounds over the 16 VIPs per socket */

static const char *const pods[N_VIPS] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.1.0.3:8080", "127.1.0.4:8080",
	"127.1.0.5:8080", "127.1.0.6:8080", "127.1.0.7:8080", "127.1.0.8:8080",
	"127.1.0.9:8080", "127.1.0.10:8080", "127.1.0.11:8080", "127.1.0.12:8080",
	"127.1.0.13:8080", "127.1.0.14:8080", "127.1.0.15:8080", "127.1.0.16:8080",
};

/* What the client child saw, in shared memory. */
struct udp_res {
	long sent, replies;
	long misattributed;	/* reply source not the VIP the answered datagram went to */
	long not_sticky;	/* a VIP's datagrams answered by another pod than its first */
	long shared;		/* sockets where two VIPs were given the same pod */
	long b_on_p1;		/* scenario "prefer": sockets whose VIP B got pod 1 */
	long ambiguous, evicted;	/* summed over the sockets' ks_udp_sock records */
	long rec_missing;	/* sockets without a record: the test cannot count */
};

typedef void (*scenario_fn)(const struct kt_env *e, int map_fd, struct udp_res *r);

static struct sockaddr_in vip(int net, int i)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };

	a.sin_addr.s_addr = htonl((127u << 24) | (10u << 16) | ((unsigned)net << 8) | (unsigned)i);
	return a;
}

static int udp_socket(void)
{
	const struct timeval tmo = { 2, 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		_exit(20);
	/* A lost datagram must cost a bounded wait, never a hang. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	return fd;
}

static void send_to(int fd, const struct sockaddr_in *to, struct udp_res *r)
{
	if (sendto(fd, "q", 1, 0, (const struct sockaddr *)to, sizeof(*to)) != 1)
		_exit(21);
	r->sent++;
}

/* One reply: the answering pod's id into id, its source (as the application sees it) into *from. */
static void recv_one(int fd, char *id, size_t len, struct sockaddr_in *from, struct udp_res *r)
{
	socklen_t fl = sizeof(*from);
	ssize_t k = recvfrom(fd, id, len - 1, 0, (struct sockaddr *)from, &fl);

	if (k < 0)
		_exit(22);
	id[k] = 0;
	r->replies++;
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* Send to `to`, read the reply, count it misattributed unless it shows `to`. */
static void exchange(int fd, const struct sockaddr_in *to, char *id, size_t len, struct udp_res *r)
{
	struct sockaddr_in from;

	send_to(fd, to, r);
	recv_one(fd, id, len, &from, r);
	if (!same_addr(&from, to))
		r->misattributed++;
}

/* Add the socket's ks_udp_sock counters to r. */
static void record(int map_fd, int fd, struct udp_res *r)
{
	struct ks_udp_sock u;

	if (bpf_map_lookup_elem(map_fd, &fd, &u)) {
		r->rec_missing++;
		return;
	}
	r->ambiguous += u.ambiguous;
	r->evicted += u.evicted;
}

/*
 * 16 VIPs, each a Service routed to the same 16 pods: the pick gives every
 * VIP of a socket its own pod, so even a burst of 16 datagrams in flight
 * (replies read in any order) is attributed right.
 */
static void sixteen(const struct kt_env *e, int map_fd, struct udp_res *r)
{
	char got[N_VIPS][KT_KEY_LEN], id[KT_KEY_LEN];
	int s, i, j, round;

	(void)e;
	for (s = 0; s < SOCKS; s++) {
		int fd = udp_socket();

		for (round = 0; round < ROUNDS; round++) {
			for (i = 0; i < N_VIPS; i++) {
				struct sockaddr_in to = vip(0, i + 1);

				exchange(fd, &to, id, sizeof(id), r);
				if (!round)
					snprintf(got[i], sizeof(got[i]), "%s", id);
				else if (strcmp(got[i], id))
					r->not_sticky++;
			}
		}
		for (i = 0; i < N_VIPS; i++)
			for (j = 0; j < i; j++)
				if (!strcmp(got[i], got[j]))
					r->shared++;
		/* All 16 in flight at once: the reply's pod says which VIP it answers. */
		for (i = 0; i < N_VIPS; i++) {
			struct sockaddr_in to = vip(0, i + 1);

			send_to(fd, &to, r);
		}
		for (i = 0; i < N_VIPS; i++) {
			struct sockaddr_in from, want;

			recv_one(fd, id, sizeof(id), &from, r);
			for (j = 0; j < N_VIPS && strcmp(got[j], id); j++)
				;
			want = vip(0, j + 1);
			if (j == N_VIPS || !same_addr(&from, &want))
				r->misattributed++;
		}
		record(map_fd, fd, r);
		close(fd);
	}
}

#define PAIRS	500

/*
 * VIPs A and C whose only pod is the same: nothing can keep them apart.
 * Ping-pong (one datagram in flight) is attributed right: the VIP sent to
 * last wins. Then PAIRS bursts "A, C, read, read": both replies show C, so
 * the reply to A is misattributed, one per pair, which is the bound.
 */
static void no_alternative(const struct kt_env *e, int map_fd, struct udp_res *r)
{
	struct sockaddr_in a = vip(1, 1), c = vip(1, 2), from;
	char id[KT_KEY_LEN];
	int fd = udp_socket(), i;

	(void)e;
	for (i = 0; i < 2 * PAIRS; i++)
		exchange(fd, i % 2 ? &c : &a, id, sizeof(id), r);
	for (i = 0; i < PAIRS; i++) {
		send_to(fd, &a, r);
		send_to(fd, &c, r);
		recv_one(fd, id, sizeof(id), &from, r);
		if (!same_addr(&from, &a))
			r->misattributed++;
		recv_one(fd, id, sizeof(id), &from, r);
		if (!same_addr(&from, &c))
			r->misattributed++;
	}
	record(map_fd, fd, r);
	close(fd);
}

/*
 * VIP A has pod 1 only, VIP B pods 1 and 2. A then B: B is given pod 2 on
 * every socket. B then A: B's earlier pick is not moved, so where B got
 * pod 1 (about half the sockets) A must share it: those replies are
 * ambiguous, yet ping-pong still attributes them right.
 */
static void prefer_other(const struct kt_env *e, int map_fd, struct udp_res *r)
{
	struct sockaddr_in a = vip(2, 1), b = vip(2, 2);
	char id[KT_KEY_LEN];
	int s, round;

	(void)e;
	for (s = 0; s < 2 * SOCKS * 5; s++) {
		bool a_first = s % 2 == 0;
		int fd = udp_socket();

		for (round = 0; round < 2; round++) {
			exchange(fd, a_first ? &a : &b, id, sizeof(id), r);
			if (!a_first && !round && !strcmp(id, "127.1.0.1:8080"))
				r->b_on_p1++;
			exchange(fd, a_first ? &b : &a, id, sizeof(id), r);
			if (a_first && strcmp(id, "127.1.0.2:8080"))
				r->shared++;
		}
		record(map_fd, fd, r);
		close(fd);
	}
}

/* Run fn in a client child (test cgroup and netns) and return what it saw. */
static void run(struct kt_env *e, scenario_fn fn, const char *what, struct udp_res *out)
{
	struct udp_res *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[PATH_MAX];
	int st, map_fd;
	pid_t pid;

	assert_true(r != MAP_FAILED);
	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/ks_udp_sock", e->pin_dir);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		if (kt_hold_child_init(e, 120))
			_exit(10);
		map_fd = bpf_obj_get(path);
		if (map_fd < 0)
			_exit(11);
		fn(e, map_fd, r);
		_exit(0);
	}
	kt_track_child(e, pid);
	st = kt_reap(e, pid, 150000);
	*out = *r;
	munmap(r, sizeof(*r));
	printf("  [%s] sent %ld replies %ld misattributed %ld not_sticky %ld shared %ld b_on_p1 %ld ambiguous %ld evicted %ld no_record %ld\n",
	       what, out->sent, out->replies, out->misattributed, out->not_sticky, out->shared,
	       out->b_on_p1, out->ambiguous, out->evicted, out->rec_missing);
	assert_true(st != -1 && WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(out->replies, out->sent);
	assert_int_equal(out->rec_missing, 0);
}

static struct kt_env *start(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	assert_int_equal(kt_servers_start(e, pods, N_VIPS), 0);
	return e;
}

static void test_sixteen_vips(void **state)
{
	struct kt_env *e = start(state);
	struct kt_buf b = {};
	struct udp_res r;
	char eps[512] = "", name[16], ip[32], parent[24];
	int i;

	for (i = 0; i < N_VIPS; i++)
		snprintf(eps + strlen(eps), sizeof(eps) - strlen(eps), "%s127.1.0.%d", i ? " " : "",
			 i + 1);
	kt_yaml_service(&b, "pods", 80, NULL);
	kt_yaml_slice(&b, "pods", "IPv4", eps);
	for (i = 0; i < N_VIPS; i++) {
		snprintf(name, sizeof(name), "f%d", i + 1);
		snprintf(ip, sizeof(ip), "127.10.0.%d", i + 1);
		snprintf(parent, sizeof(parent), "svc:%s", name);
		kt_yaml_service(&b, name, 80, ip);
		kt_yaml_route(&b, "UDPRoute", name, parent, "pods=1");
	}
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	run(e, sixteen, "16 VIPs, one socket each", &r);
	assert_int_equal(r.sent, SOCKS * N_VIPS * (ROUNDS + 1));
	assert_int_equal(r.misattributed, 0);
	assert_int_equal(r.not_sticky, 0);
	assert_int_equal(r.shared, 0);
	assert_int_equal(r.ambiguous, 0);
	assert_int_equal(r.evicted, 0);
}

static void test_shared_backend(void **state)
{
	struct kt_env *e = start(state);
	struct kt_buf b = {};
	struct udp_res r;

	kt_yaml_service(&b, "p1", 80, NULL);
	kt_yaml_slice(&b, "p1", "IPv4", "127.1.0.1");
	kt_yaml_service(&b, "p12", 80, NULL);
	kt_yaml_slice(&b, "p12", "IPv4", "127.1.0.1 127.1.0.2");
	/* A and C: pod 1 only, no way apart. */
	kt_yaml_service(&b, "a", 80, "127.10.1.1");
	kt_yaml_route(&b, "UDPRoute", "a", "svc:a", "p1=1");
	kt_yaml_service(&b, "c", 80, "127.10.1.2");
	kt_yaml_route(&b, "UDPRoute", "c", "svc:c", "p1=1");
	/* A2 on pod 1, B2 on pods 1 and 2. */
	kt_yaml_service(&b, "a2", 80, "127.10.2.1");
	kt_yaml_route(&b, "UDPRoute", "a2", "svc:a2", "p1=1");
	kt_yaml_service(&b, "b2", 80, "127.10.2.2");
	kt_yaml_route(&b, "UDPRoute", "b2", "svc:b2", "p12=1");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	run(e, no_alternative, "A and C on one pod", &r);
	assert_int_equal(r.sent, 4 * PAIRS);
	/* Ping-pong: every reply right; each burst: the reply to A shows C. */
	assert_int_equal(r.misattributed, PAIRS);
	/* Every reply but the very first (C had no entry yet) matched two VIPs. */
	assert_int_equal(r.ambiguous, 4 * PAIRS - 1);

	run(e, prefer_other, "A on pod 1, B on pods 1 and 2", &r);
	assert_int_equal(r.misattributed, 0);
	/* A first: B always given pod 2. */
	assert_int_equal(r.shared, 0);
	/*
	 * B first and given pod 1: A's three replies after both have sent are
	 * ambiguous (B's first reply came before A had an entry).
	 */
	assert_int_equal(r.ambiguous, 3 * r.b_on_p1);
	kt_assert_share("B first, given pod 1", r.b_on_p1, SOCKS * 5, 50, 20);	/* 4 sigma */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sixteen_vips, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_shared_backend, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
