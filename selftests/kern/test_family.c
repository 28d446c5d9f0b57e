// SPDX-License-Identifier: BSD-2-Clause
/*
 * Address families and UDP: IPv6 VIPs, dual-stack Services, v4-mapped
 * destinations on IPv6 sockets, connected and unconnected UDP. What the
 * application sees (getpeername, recvfrom source) must always be the VIP.
 *
 * Shares: n = 40,000, sigma <= 0.25 points, tolerance 1 point (4 sigma);
 * where n = 10,000, tolerance 2 points (4 sigma).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N	kt_scaled(40000)
#define TOL	1.0

static const char *const servers[] = {
	"127.1.0.1:8080", "127.2.0.1:8080", "[fd00:1::1]:8080", "[fd00:2::1]:8080",
};

static struct kt_env *start(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	/* These exist only inside the test netns. */
	assert_int_equal(kt_addr6_add(e, "fd00:1::1"), 0);
	assert_int_equal(kt_addr6_add(e, "fd00:2::1"), 0);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	assert_int_equal(kt_servers_start(e, servers, sizeof(servers) / sizeof(servers[0])), 0);
	return e;
}

/* Services v1 and v2, each with one IPv4 and one IPv6 endpoint. */
static void backends(struct kt_buf *b)
{
	kt_yaml_service(b, "v1", 80, NULL);
	kt_yaml_slice(b, "v1", "IPv4", "127.1.0.1");
	kt_yaml_slice(b, "v1", "IPv6", "fd00:1::1");
	kt_yaml_service(b, "v2", 80, NULL);
	kt_yaml_slice(b, "v2", "IPv4", "127.2.0.1");
	kt_yaml_slice(b, "v2", "IPv6", "fd00:2::1");
}

static void run_client(struct kt_env *e, const char *target, enum kt_mode mode, long n,
		       bool one_socket, struct kt_result *r)
{
	struct kt_client_opts o = { .target = target, .mode = mode, .count = n,
				    .one_socket = one_socket };
	char what[96];

	snprintf(what, sizeof(what), "%s %s%s", target,
		 mode == KT_TCP ? "TCP" : mode == KT_UDP_CONNECTED ? "UDP connected" :
		 "UDP unconnected", one_socket ? " (one socket)" : "");
	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print(what, r);
	assert_int_equal(r->attempts, n);
	assert_int_equal(r->failed, 0);
}

static void test_v6_vip(void **state)
{
	struct kt_env *e = start(state);
	struct json_object *st;
	struct kt_buf b = {};
	struct kt_result r;

	kt_yaml_gateway(&b, "gw", "fd00:10::a", "tcp:TCP:80");
	backends(&b);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=25 v2=75");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	run_client(e, "[fd00:10::a]:80", KT_TCP, N, false, &r);
	kt_assert_share("[fd00:1::1] (weight 25)", kt_tally_get(&r.ids, "[fd00:1::1]:8080"), N, 25,
			TOL);
	kt_assert_share("[fd00:2::1] (weight 75)", kt_tally_get(&r.ids, "[fd00:2::1]:8080"), N, 75,
			TOL);
	assert_int_equal(kt_tally_get(&r.peers, "[fd00:10::a]:80"), N);

	st = kt_status(e);
	assert_int_equal(kt_status_field(kt_status_svc(st, "fd00:10::a", 80, "TCP"), "connections"),
			 N);
	assert_int_equal(kt_status_ep(kt_status_svc(st, "fd00:10::a", 80, "TCP"), "fd00:1::1", 8080),
			 kt_tally_get(&r.ids, "[fd00:1::1]:8080"));
	json_object_put(st);
}

/* One Service with a v4 and a v6 ClusterIP: each family stays in its family. */
static void test_dual_stack(void **state)
{
	struct kt_env *e = start(state);
	struct kt_buf b = {};
	struct kt_result r4, r6;
	const long n = 10000;

	kt_yaml_service(&b, "front", 80, "127.10.0.2 fd00:10::b");
	backends(&b);
	kt_yaml_route(&b, "TCPRoute", "r", "svc:front", "v1=50 v2=50");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	run_client(e, "127.10.0.2:80", KT_TCP, n, false, &r4);
	run_client(e, "[fd00:10::b]:80", KT_TCP, n, false, &r6);
	assert_int_equal(kt_tally_get(&r4.ids, "127.1.0.1:8080") +
			 kt_tally_get(&r4.ids, "127.2.0.1:8080"), n);
	assert_int_equal(kt_tally_get(&r6.ids, "[fd00:1::1]:8080") +
			 kt_tally_get(&r6.ids, "[fd00:2::1]:8080"), n);
	kt_assert_share("v4 VIP -> v1 (127.1.0.1)", kt_tally_get(&r4.ids, "127.1.0.1:8080"), n, 50,
			2.0);
	kt_assert_share("v6 VIP -> v1 (fd00:1::1)", kt_tally_get(&r6.ids, "[fd00:1::1]:8080"), n, 50,
			2.0);
	assert_int_equal(kt_tally_get(&r4.peers, "127.10.0.2:80"), n);
	assert_int_equal(kt_tally_get(&r6.peers, "[fd00:10::b]:80"), n);
}

/* An AF_INET6 socket connecting to ::ffff:VIP means the IPv4 service. */
static void test_v4_mapped(void **state)
{
	struct kt_env *e = start(state);
	struct kt_buf b = {};
	struct kt_result r;
	const long n = 10000;

	kt_yaml_gateway(&b, "gw", "127.10.0.1", "tcp:TCP:80 udp:UDP:80");
	backends(&b);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=50 v2=50");
	kt_yaml_route(&b, "UDPRoute", "u", "gw/udp", "v1=50 v2=50");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	run_client(e, "[::ffff:127.10.0.1]:80", KT_TCP, n, false, &r);
	/* The server sees an IPv4 peer; the client sees the mapped VIP. */
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.1:8080") +
			 kt_tally_get(&r.ids, "127.2.0.1:8080"), n);
	kt_assert_share("mapped -> 127.1.0.1", kt_tally_get(&r.ids, "127.1.0.1:8080"), n, 50, 2.0);
	assert_int_equal(kt_tally_get(&r.peers, "[::ffff:127.10.0.1]:80"), n);

	run_client(e, "[::ffff:127.10.0.1]:80", KT_UDP_UNCONNECTED, 2000, false, &r);
	assert_int_equal(kt_tally_get(&r.srcs, "[::ffff:127.10.0.1]:80"), 2000);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.1:8080") +
			 kt_tally_get(&r.ids, "127.2.0.1:8080"), 2000);
}

static void test_udp(void **state)
{
	struct kt_env *e = start(state);
	struct json_object *st;
	struct kt_buf b = {};
	struct kt_result r;
	long steered = 0;

	kt_yaml_gateway(&b, "gw", "127.10.0.1 fd00:10::a", "udp:UDP:80");
	backends(&b);
	kt_yaml_route(&b, "UDPRoute", "u", "gw/udp", "v1=25 v2=75");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	/* Connected: one pick per connect, replies and getpeername show the VIP. */
	run_client(e, "127.10.0.1:80", KT_UDP_CONNECTED, N, false, &r);
	kt_assert_share("UDP connected -> v1 (25)", kt_tally_get(&r.ids, "127.1.0.1:8080"), N, 25,
			TOL);
	assert_int_equal(kt_tally_get(&r.srcs, "127.10.0.1:80"), N);
	assert_int_equal(kt_tally_get(&r.peers, "127.10.0.1:80"), N);
	steered += N;

	/* Unconnected, a fresh socket per datagram: one pick per socket. */
	run_client(e, "127.10.0.1:80", KT_UDP_UNCONNECTED, N, false, &r);
	kt_assert_share("UDP sendto -> v1 (25)", kt_tally_get(&r.ids, "127.1.0.1:8080"), N, 25, TOL);
	assert_int_equal(kt_tally_get(&r.srcs, "127.10.0.1:80"), N);
	steered += N;

	/* One unconnected socket: every datagram to the VIP goes to the same backend. */
	run_client(e, "127.10.0.1:80", KT_UDP_UNCONNECTED, 2000, true, &r);
	assert_int_equal(r.ids.n, 1);
	assert_int_equal(r.ids.count[0], 2000);
	assert_int_equal(kt_tally_get(&r.srcs, "127.10.0.1:80"), 2000);
	printf("  [udp] one socket: all 2000 datagrams answered by %s\n", r.ids.key[0]);
	steered += 1;

	st = kt_status(e);
	printf("  [status] UDP 127.10.0.1:80 connections %ld (expected %ld)\n",
	       kt_status_field(kt_status_svc(st, "127.10.0.1", 80, "UDP"), "connections"), steered);
	assert_int_equal(kt_status_field(kt_status_svc(st, "127.10.0.1", 80, "UDP"), "connections"),
			 steered);
	json_object_put(st);

	/* IPv6, unconnected. */
	run_client(e, "[fd00:10::a]:80", KT_UDP_UNCONNECTED, 10000, false, &r);
	assert_int_equal(kt_tally_get(&r.srcs, "[fd00:10::a]:80"), 10000);
	kt_assert_share("UDP6 sendto -> fd00:1::1 (25)", kt_tally_get(&r.ids, "[fd00:1::1]:8080"),
			10000, 25, 2.0);
	run_client(e, "[fd00:10::a]:80", KT_UDP_CONNECTED, 2000, false, &r);
	assert_int_equal(kt_tally_get(&r.srcs, "[fd00:10::a]:80"), 2000);
	assert_int_equal(kt_tally_get(&r.peers, "[fd00:10::a]:80"), 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v6_vip, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_dual_stack, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_v4_mapped, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_udp, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
