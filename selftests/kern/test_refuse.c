// SPDX-License-Identifier: BSD-2-Clause
/*
 * Refused shares: Gateway API says the share of an invalid backendRef is
 * rejected, not redistributed. ksplit fails those connects with
 * ECONNREFUSED. n = 20,000: sigma of a 25% share is 0.31 points, so the
 * 1.5-point tolerance is ~4.9 sigma.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N	20000

static const char *const servers[] = { "127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080" };

static struct kt_env *start_ann(void **state, const char *v2_eps, const char *route,
				const char *annotation)
{
	struct kt_env *e = *state;
	struct kt_buf b = {};

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	assert_int_equal(kt_servers_start(e, servers, 3), 0);
	kt_yaml_ab(&b, "127.1.0.1 127.1.0.2", v2_eps);
	kt_yaml_route_ann(&b, "HTTPRoute", "r", "gw/http", route, annotation);
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
	return e;
}

static struct kt_env *start(void **state, const char *v2_eps, const char *route)
{
	return start_ann(state, v2_eps, route, NULL);
}

static void run(struct kt_env *e, long n, struct kt_result *r)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = n };

	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print("client", r);
	assert_int_equal(r->attempts, n);
	/* The only failure allowed is the refusal itself. */
	assert_int_equal(r->failed, r->err[ECONNREFUSED]);
}

static void assert_status(struct kt_env *e, const struct kt_result *r)
{
	struct json_object *st = kt_status(e), *svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");

	assert_non_null(svc);
	printf("  [status] connections %ld refused %ld (client ok %ld ECONNREFUSED %ld)\n",
	       kt_status_field(svc, "connections"), kt_status_field(svc, "refused"), r->ok,
	       r->err[ECONNREFUSED]);
	assert_int_equal(kt_status_field(svc, "refused"), r->err[ECONNREFUSED]);
	assert_int_equal(kt_status_field(svc, "connections"), r->ok);
	json_object_put(st);
}

/* The per-backendRef counters: connects and refusals land on the group that drew them. */
static void assert_groups(struct kt_env *e, long conn0, long ref0, long conn1, long ref1)
{
	struct ks_group_stats g0, g1;

	assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 0, &g0), 0);
	assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 1, &g1), 0);
	printf("  [groups] v1 connects %llu refused %llu; second connects %llu refused %llu\n",
	       (unsigned long long)g0.connects, (unsigned long long)g0.refused,
	       (unsigned long long)g1.connects, (unsigned long long)g1.refused);
	assert_int_equal(g0.connects, conn0);
	assert_int_equal(g0.refused, ref0);
	assert_int_equal(g1.connects, conn1);
	assert_int_equal(g1.refused, ref1);
}

static void test_invalid_backend_ref(void **state)
{
	struct kt_env *e = start(state, "127.2.0.1", "v1=75 missing=25");
	struct kt_result r;

	run(e, N, &r);
	kt_assert_share("ECONNREFUSED (missing Service, 25)", r.err[ECONNREFUSED], N, 25, 1.5);
	kt_assert_share("v1 (75)", r.ok, N, 75, 1.5);
	assert_int_equal(kt_tally_get(&r.ids, "127.2.0.1:8080"), 0);
	assert_status(e, &r);
	assert_groups(e, r.ok, 0, 0, r.err[ECONNREFUSED]);
}

/*
 * A valid Service whose endpoints are all not ready. By default
 * (ksplit.io/empty-group: shift) its weight goes to the other groups and
 * nothing is refused; with "reject" its share is refused like an invalid ref.
 */
static void test_empty_group_shift(void **state)
{
	struct kt_env *e = start(state, "127.2.0.1=notready", "v1=50 v2=50");
	struct kt_result r;

	run(e, N, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.2.0.1:8080"), 0);
	kt_assert_share("v1 takes v2's share (100)", kt_tally_get(&r.ids, "127.1.0.1:8080") +
			kt_tally_get(&r.ids, "127.1.0.2:8080"), N, 100, 0);
	assert_status(e, &r);
	assert_groups(e, N, 0, 0, 0);
}

static void test_empty_group_reject(void **state)
{
	struct kt_env *e = start_ann(state, "127.2.0.1=notready", "v1=50 v2=50",
				     "ksplit.io/empty-group: reject");
	struct kt_result r;

	run(e, N, &r);
	kt_assert_share("ECONNREFUSED (v2 empty, reject, 50)", r.err[ECONNREFUSED], N, 50, 1.5);
	assert_int_equal(kt_tally_get(&r.ids, "127.2.0.1:8080"), 0);
	assert_status(e, &r);
	assert_groups(e, r.ok, 0, 0, r.err[ECONNREFUSED]);
}

static void test_all_weights_zero(void **state)
{
	struct kt_env *e = start(state, "127.2.0.1", "v1=0 v2=0");
	struct kt_result r;

	run(e, 2000, &r);
	assert_int_equal(r.err[ECONNREFUSED], 2000);
	assert_int_equal(r.ok, 0);
	assert_status(e, &r);
	/* No weight at all: no group was drawn, the refusal is the service's alone. */
	assert_groups(e, 0, 0, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_invalid_backend_ref, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_empty_group_shift, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_empty_group_reject, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_all_weights_zero, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
