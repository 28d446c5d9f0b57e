// SPDX-License-Identifier: BSD-2-Clause
/*
 * Weighted split on a real kernel: HTTPRoute manifests through the parser,
 * image builder and applier, then TCP connects from a process in the
 * test cgroup, counted per backend server.
 *
 * Tolerance: a share measured over n connects has standard deviation
 * sqrt(p(1-p)/n). With n = 40,000 that is at most 0.25 points (p = 0.5), so
 * the required 1-point tolerance is >= 4 sigma: a correct datapath fails
 * one assertion with probability < 1e-4, while a 2-point skew fails it
 * almost surely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N	kt_scaled(40000)
#define TOL	1.0

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.1.0.3:8080",
	"127.2.0.1:8080", "127.2.0.2:8080",
	"127.3.0.1:8080", "127.3.0.2:8080",
};

/* Gateway 127.10.0.1 (HTTP :80) and Services v1, v2, v3 with the given endpoints. */
static void base_yaml(struct kt_buf *b, const char *v1, const char *v2, const char *v3)
{
	kt_yaml_gateway(b, "gw", "127.10.0.1", "http:HTTP:80");
	kt_yaml_service(b, "v1", 80, NULL);
	kt_yaml_slice(b, "v1", "IPv4", v1);
	kt_yaml_service(b, "v2", 80, NULL);
	kt_yaml_slice(b, "v2", "IPv4", v2);
	kt_yaml_service(b, "v3", 80, NULL);
	kt_yaml_slice(b, "v3", "IPv4", v3);
}

static struct kt_env *start(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	assert_int_equal(kt_servers_start(e, servers, sizeof(servers) / sizeof(servers[0])), 0);
	return e;
}

static void apply(struct kt_env *e, const char *v1, const char *v2, const char *v3,
		  const char *backends)
{
	struct kt_buf b = {};

	base_yaml(&b, v1, v2, v3);
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", backends);
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
}

static void connect_n(struct kt_env *e, long n, struct kt_result *r)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = n };

	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print("client", r);
	assert_int_equal(r->attempts, n);
	assert_int_equal(r->ids.overflow, 0);
}

/* Sum of the replies from the servers whose id starts with prefix ("127.1."). */
static long group_count(const struct kt_result *r, const char *prefix)
{
	long n = 0;
	int i;

	for (i = 0; i < r->ids.n; i++)
		if (!strncmp(r->ids.key[i], prefix, strlen(prefix)))
			n += r->ids.count[i];
	return n;
}

/*
 * Every connect the client saw succeed must be in status, on the endpoint
 * that answered, and nothing else: the counters are exact, not sampled.
 */
static void assert_status_matches(struct kt_env *e, const struct kt_result *r)
{
	struct json_object *st = kt_status(e), *svc;
	size_t i;

	assert_non_null(st);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	assert_non_null(svc);
	printf("  [status] connections %ld refused %ld (client ok %ld failed %ld)\n",
	       kt_status_field(svc, "connections"), kt_status_field(svc, "refused"), r->ok,
	       r->failed);
	assert_int_equal(kt_status_field(svc, "connections"), r->ok);
	assert_int_equal(kt_status_field(svc, "refused"), r->err[ECONNREFUSED]);
	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
		char addr[32];
		long got = kt_tally_get(&r->ids, servers[i]), ep;

		snprintf(addr, sizeof(addr), "%.*s", (int)(strchr(servers[i], ':') - servers[i]),
			 servers[i]);
		ep = kt_status_ep(svc, addr, 8080);
		/* An endpoint absent from status must not have answered either. */
		if (ep < 0)
			ep = 0;
		if (ep != got)
			fail_msg("status says %s had %ld connections, the client counted %ld",
				 servers[i], ep, got);
	}
	json_object_put(st);
}

/* getpeername() must show the VIP, never the backend, on every connected socket. */
static void assert_peer_is_vip(const struct kt_result *r, const char *vip)
{
	assert_int_equal(kt_tally_get(&r->peers, vip), r->ok);
	assert_int_equal(r->peers.n, r->ok ? 1 : 0);
}

static void test_split_25_75(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	apply(e, "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2", "127.3.0.1", "v1=25 v2=75");
	connect_n(e, N, &r);
	assert_int_equal(r.failed, 0);
	kt_assert_share("v1 (weight 25)", group_count(&r, "127.1."), N, 25, TOL);
	kt_assert_share("v2 (weight 75)", group_count(&r, "127.2."), N, 75, TOL);
	/* Within a group the endpoints share evenly. */
	kt_assert_share("127.1.0.1 (12.5)", kt_tally_get(&r.ids, "127.1.0.1:8080"), N, 12.5, TOL);
	kt_assert_share("127.2.0.2 (37.5)", kt_tally_get(&r.ids, "127.2.0.2:8080"), N, 37.5, TOL);
	assert_int_equal(group_count(&r, "127.3."), 0);
	assert_peer_is_vip(&r, "127.10.0.1:80");
	assert_status_matches(e, &r);
}

static void test_split_3way(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	apply(e, "127.1.0.1", "127.2.0.1", "127.3.0.1", "v1=20 v2=30 v3=50");
	connect_n(e, N, &r);
	assert_int_equal(r.failed, 0);
	kt_assert_share("v1 (weight 20)", group_count(&r, "127.1."), N, 20, TOL);
	kt_assert_share("v2 (weight 30)", group_count(&r, "127.2."), N, 30, TOL);
	kt_assert_share("v3 (weight 50)", group_count(&r, "127.3."), N, 50, TOL);
	assert_peer_is_vip(&r, "127.10.0.1:80");
	assert_status_matches(e, &r);
}

static void test_weight_zero(void **state)
{
	struct kt_env *e = start(state);
	struct kt_result r;

	/* Weight 0 is "no traffic", not "refuse": nothing fails, nothing reaches v1. */
	apply(e, "127.1.0.1 127.1.0.2", "127.2.0.1", "127.3.0.1", "v1=0 v2=60 v3=40");
	connect_n(e, N, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(group_count(&r, "127.1."), 0);
	kt_assert_share("v2 (weight 60)", group_count(&r, "127.2."), N, 60, TOL);
	kt_assert_share("v3 (weight 40)", group_count(&r, "127.3."), N, 40, TOL);
	assert_status_matches(e, &r);
}

/* Only the two eligible endpoints of the one group answer, half each. */
static void check_ineligible(void **state, const char *flag, const char *state_name)
{
	struct kt_env *e = start(state);
	struct json_object *st, *svc, *groups, *eps;
	char v1[128];
	struct kt_result r;
	size_t i;
	bool seen = false;

	snprintf(v1, sizeof(v1), "127.1.0.1 127.1.0.2=%s 127.1.0.3", flag);
	apply(e, v1, "127.2.0.1", "127.3.0.1", "v1=1");
	connect_n(e, N, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.2:8080"), 0);
	kt_assert_share("127.1.0.1 (eligible)", kt_tally_get(&r.ids, "127.1.0.1:8080"), N, 50, TOL);
	kt_assert_share("127.1.0.3 (eligible)", kt_tally_get(&r.ids, "127.1.0.3:8080"), N, 50, TOL);
	assert_status_matches(e, &r);

	/* Status still lists the ineligible endpoint, with its state and no connections. */
	st = kt_status(e);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	assert_non_null(svc);
	assert_true(json_object_object_get_ex(svc, "groups", &groups));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(groups, 0), "endpoints",
					      &eps));
	assert_int_equal(json_object_array_length(eps), 3);
	for (i = 0; i < json_object_array_length(eps); i++) {
		struct json_object *ep = json_object_array_get_idx(eps, i), *a, *s;

		json_object_object_get_ex(ep, "address", &a);
		json_object_object_get_ex(ep, "state", &s);
		if (strcmp(json_object_get_string(a), "127.1.0.2"))
			continue;
		assert_string_equal(json_object_get_string(s), state_name);
		assert_int_equal(kt_status_field(ep, "connections"), 0);
		seen = true;
	}
	assert_true(seen);
	json_object_put(st);
}

static void test_not_ready(void **state)
{
	check_ineligible(state, "notready", "not-ready");
}

static void test_terminating(void **state)
{
	check_ineligible(state, "terminating", "terminating");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split_25_75, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_split_3way, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_weight_zero, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_not_ready, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_terminating, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
