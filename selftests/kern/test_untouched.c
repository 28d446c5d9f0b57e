// SPDX-License-Identifier: BSD-2-Clause
/*
 * What ksplit must NOT touch: a connect to a backend address, a connect to
 * the VIP from a process outside the attached cgroup, a connect to the VIP
 * on another port or with another protocol. A decoy server bound on the VIP
 * address itself proves where such connects really went.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const servers[] = { "127.1.0.1:8080", "127.2.0.1:8080" };
/* Listens on the VIP itself: whatever reaches it was not rewritten. */
static const char *const decoys[] = { "127.10.0.1:80", "127.10.0.1:81" };

static struct kt_env *start(void **state)
{
	struct kt_env *e = *state;
	struct kt_buf b = {};

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	assert_int_equal(kt_servers_start(e, servers, 2), 0);
	kt_yaml_gateway(&b, "gw", "127.10.0.1", "tcp:TCP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", "127.1.0.1");
	kt_yaml_service(&b, "v2", 80, NULL);
	kt_yaml_slice(&b, "v2", "IPv4", "127.2.0.1");
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=50 v2=50");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
	return e;
}

static void client(struct kt_env *e, const char *target, enum kt_mode mode, bool outside, long n,
		   struct kt_result *r)
{
	struct kt_client_opts o = { .target = target, .mode = mode, .count = n,
				    .outside_cgroup = outside };
	char what[96];

	snprintf(what, sizeof(what), "%s %s from %s the cgroup", mode == KT_TCP ? "TCP" : "UDP",
		 target, outside ? "outside" : "inside");
	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print(what, r);
	assert_int_equal(r->attempts, n);
}

static long svc_connections(struct kt_env *e)
{
	struct json_object *st = kt_status(e);
	long n = kt_status_field(kt_status_svc(st, "127.10.0.1", 80, "TCP"), "connections");

	json_object_put(st);
	return n;
}

static void test_direct_backend(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	client(e, "127.1.0.1:8080", KT_TCP, false, 2000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.1:8080"), 2000);
	assert_int_equal(kt_tally_get(&r.peers, "127.1.0.1:8080"), 2000);
	assert_int_equal(svc_connections(e), 0);
}

static void test_outside_cgroup(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	/* Nothing listens on the VIP yet: a connect that is not rewritten is refused. */
	client(e, "127.10.0.1:80", KT_TCP, true, 500, &r);
	assert_int_equal(r.err[ECONNREFUSED], 500);
	assert_int_equal(svc_connections(e), 0);

	assert_int_equal(kt_servers_start(e, decoys, 2), 0);
	client(e, "127.10.0.1:80", KT_TCP, true, 2000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.10.0.1:80"), 2000);
	assert_int_equal(svc_connections(e), 0);

	/* Control: from inside, the same target never reaches the decoy. */
	client(e, "127.10.0.1:80", KT_TCP, false, 2000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.10.0.1:80"), 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.1:8080") +
			 kt_tally_get(&r.ids, "127.2.0.1:8080"), 2000);
	assert_int_equal(svc_connections(e), 2000);
}

static void test_other_port_and_proto(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	assert_int_equal(kt_servers_start(e, decoys, 2), 0);
	/* Same VIP, port 81: no route there. */
	client(e, "127.10.0.1:81", KT_TCP, false, 2000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.10.0.1:81"), 2000);
	/* Same VIP and port, UDP: the route is a TCPRoute. */
	client(e, "127.10.0.1:80", KT_UDP_UNCONNECTED, false, 1000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.10.0.1:80"), 1000);
	client(e, "127.10.0.1:80", KT_UDP_CONNECTED, false, 1000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.10.0.1:80"), 1000);
	assert_int_equal(svc_connections(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_backend, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_outside_cgroup, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_other_port_and_proto, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
