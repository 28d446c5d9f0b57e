// SPDX-License-Identifier: BSD-2-Clause
/*
 * Live updates: weights and endpoints change while a client keeps
 * connecting. The contract (user/dp.h): each service is replaced atomically,
 * and once ks_dp_apply has returned no connect uses the old state. So a
 * looping client must see no failed connect at all, and no connect that
 * started after the apply returned may reach an endpoint it removed.
 *
 * Shares: n = 40,000 per measurement, sigma <= 0.25 points, tolerance 1 point.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "harness.h"

#define N	40000
#define TOL	1.0

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080",
	"127.1.0.3:8080", "127.1.0.4:8080", "127.1.0.5:8080", "127.1.0.6:8080",
	"127.1.0.7:8080",
};

/* One VIP per Gateway address, HTTP :80, route v1/v2 with the given weights. */
static char *config(const char *addrs, const char *v1, const char *v2, int w1, int w2)
{
	struct kt_buf b = {};
	char be[64];

	kt_yaml_gateway(&b, "gw", addrs, "http:HTTP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", v1);
	kt_yaml_service(&b, "v2", 80, NULL);
	kt_yaml_slice(&b, "v2", "IPv4", v2);
	snprintf(be, sizeof(be), "v1=%d v2=%d", w1, w2);
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", be);
	return b.s;
}

static int apply(struct kt_env *e, const char *addrs, const char *v1, const char *v2, int w1,
		 int w2)
{
	char *y = config(addrs, v1, v2, w1, w2);
	int err = kt_apply_yaml(e, y);

	free(y);
	return err;
}

static long prefix_count(const struct kt_result *r, const char *prefix)
{
	long n = 0;
	int i;

	for (i = 0; i < r->ids.n; i++)
		if (!strncmp(r->ids.key[i], prefix, strlen(prefix)))
			n += r->ids.count[i];
	return n;
}

/* N connects now; v1's share must be w1 percent. */
static void measure(struct kt_env *e, const char *what, double w1, struct kt_result *r)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };

	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print(what, r);
	assert_int_equal(r->failed, 0);
	kt_assert_share(what, prefix_count(r, "127.1."), N, w1, TOL);
}

static struct kt_env *start(void **state, uint32_t max_svcs, uint32_t max_eps)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, max_svcs, max_eps), 0);
	assert_int_equal(kt_servers_start(e, servers, sizeof(servers) / sizeof(servers[0])), 0);
	return e;
}

static void test_live_weights_and_removal(void **state)
{
	struct kt_env *e = start(state, 4096, 65536);
	struct kt_client_opts lo = { .target = "127.10.0.1:80", .mode = KT_TCP, .loop = true,
				     .timeout_s = 240 };
	struct kt_client live;
	struct kt_result r, fin;
	long before;
	int i;

	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       25, 75), 0);
	assert_int_equal(kt_client_start(e, &lo, &live), 0);
	kt_sleep_ms(200);

	/* Weight changes under load: each measured on its own, the live client sees no gap. */
	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       50, 50), 0);
	measure(e, "after 25/75 -> 50/50", 50, &r);
	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       90, 10), 0);
	measure(e, "after 50/50 -> 90/10", 90, &r);

	/* Churn: 40 back-to-back applies flipping the weights. */
	for (i = 0; i < 40; i++)
		assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2",
				       "127.2.0.1 127.2.0.2", i & 1 ? 90 : 10, i & 1 ? 10 : 90), 0);

	/* Remove one endpoint of each group; the servers keep listening, so a stale pick would show. */
	before = kt_tally_get(&live.res->ids, "127.1.0.2:8080");
	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1", "127.2.0.1 127.2.0.2", 90, 10), 0);
	kt_client_mark_removed(&live, "127.1.0.2:8080", e->last_apply_ns);
	measure(e, "after removing 127.1.0.2", 90, &r);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.2:8080"), 0);
	kt_assert_share("127.1.0.1 now alone in v1", kt_tally_get(&r.ids, "127.1.0.1:8080"), N,
			90, TOL);

	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1", "127.2.0.2", 50, 50), 0);
	kt_client_mark_removed(&live, "127.2.0.1:8080", e->last_apply_ns);
	measure(e, "after removing 127.2.0.1", 50, &r);
	assert_int_equal(kt_tally_get(&r.ids, "127.2.0.1:8080"), 0);
	kt_sleep_ms(200);

	assert_int_equal(kt_client_stop(e, &live), 0);
	fin = *live.res;
	kt_client_free(&live);
	kt_result_print("live client, whole run", &fin);
	printf("  [live] removed endpoints hit after apply returned: %ld, %ld\n",
	       fin.removed_hits[0], fin.removed_hits[1]);
	/* The live client did run and did use the endpoint later removed. */
	assert_true(fin.ok > 5000);
	assert_true(before > 0);
	assert_int_equal(fin.failed, 0);
	assert_int_equal(fin.removed_hits[0], 0);
	assert_int_equal(fin.removed_hits[1], 0);
}

/* A config that does not fit is rejected whole; the old one keeps serving. */
static void test_no_fit(void **state)
{
	struct kt_env *e = start(state, 4, 8);
	struct json_object *st;
	struct kt_result r;
	int err;

	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       25, 75), 0);
	measure(e, "baseline 25/75", 25, &r);

	/* 5 Gateway addresses -> 5 VIP entries > max_services 4. */
	err = apply(e, "127.10.0.1 127.10.0.2 127.10.0.3 127.10.0.4 127.10.0.5",
		    "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2", 75, 25);
	printf("  [no-fit] 5 services into max_services 4: err %d (%s)\n", err, strerror(-err));
	assert_int_equal(err, -E2BIG);
	measure(e, "after rejected (services)", 25, &r);

	/* 9 endpoints > max_endpoints 8. */
	err = apply(e, "127.10.0.1",
		    "127.1.0.1 127.1.0.2 127.1.0.3 127.1.0.4 127.1.0.5 127.1.0.6 127.1.0.7",
		    "127.2.0.1 127.2.0.2", 75, 25);
	printf("  [no-fit] 9 endpoints into max_endpoints 8: err %d (%s)\n", err, strerror(-err));
	assert_int_equal(err, -E2BIG);
	measure(e, "after rejected (endpoints)", 25, &r);
	assert_int_equal(prefix_count(&r, "127.1.0.3"), 0);

	/* Status still shows exactly the old service. */
	st = kt_status(e);
	assert_non_null(st);
	assert_non_null(kt_status_svc(st, "127.10.0.1", 80, "TCP"));
	assert_null(kt_status_svc(st, "127.10.0.2", 80, "TCP"));
	json_object_put(st);

	/* And a config that fits is still accepted afterwards. */
	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       75, 25), 0);
	measure(e, "after 25/75 -> 75/25", 75, &r);
}

/*
 * A map write that fails after the new slots were written but before any
 * service was published: nothing changes for connects, the apply fails,
 * and the state in force is the old one. BPF_MAP_FREEZE makes the kernel
 * refuse every write from userspace to ks_svc_meta, the last map of the
 * backing writes (user/datapath/apply.c flush_backing).
 */
static void test_write_fails(void **state)
{
	struct kt_env *e = start(state, 4, 8);
	char path[PATH_MAX + 16];
	struct kt_result r;
	int fd, err;

	assert_int_equal(apply(e, "127.10.0.1", "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2",
			       25, 75), 0);
	measure(e, "baseline 25/75", 25, &r);
	snprintf(path, sizeof(path), "%s/ks_svc_meta", e->pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_freeze(fd), 0);
	close(fd);
	err = apply(e, "127.10.0.1", "127.1.0.1 127.1.0.3", "127.2.0.1 127.2.0.2", 75, 25);
	printf("  [write-fails] apply with ks_svc_meta frozen: err %d (%s)\n", err, strerror(-err));
	assert_int_equal(err, -EPERM);
	measure(e, "after the failed apply, still 25/75", 25, &r);
	assert_int_equal(prefix_count(&r, "127.1.0.3"), 0);
	assert_true(prefix_count(&r, "127.1.0.2") > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_live_weights_and_removal, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_no_fit, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_write_fails, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
