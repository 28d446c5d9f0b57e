// SPDX-License-Identifier: BSD-2-Clause
/*
 * The real agent on the Kubernetes API source, against ks-apiserver (the
 * stand-in, over HTTPS with its own CA and a bearer token file): the seed's
 * A/B from the API, a weight edit in force within a second, a rolling
 * replacement of a v2 pod, the API server gone for a while and back, the
 * token rotated, and an invalid route withdrawn alone. A client connects the
 * whole time and must never see a failed connect.
 *
 * Shares: n = 20,000, sigma <= 0.31 points at 25/75, tolerance 1.5 points.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kube_fixture.h"

#define N	20000
#define TOL	1.5
#define TOKEN_TWO "token-two"

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080", "127.2.0.3:8080",
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* How many lists of HTTPRoutes the server answered (its stats key has dots: read it directly). */
static long long route_lists(struct kt_kube *k)
{
	struct json_object *req, *list, *v;
	struct kas_resp r;
	long long n = 0;

	kas_req(&r, &k->srv, NULL, "GET", "/_ksplit/stats", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	if (json_object_object_get_ex(r.json, "requests", &req) &&
	    json_object_object_get_ex(req, "list", &list) &&
	    json_object_object_get_ex(list, "httproutes.gateway.networking.k8s.io", &v))
		n = json_object_get_int64(v);
	kas_resp_free(&r);
	return n;
}

static long total_ok;

/* n connects; returns how many reached v1 (127.1.x); asserts none failed. */
static long measure(struct kt_kube *k, const char *what, double w1, struct kt_result *out)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };
	struct kt_result r;
	long v1 = 0;
	int i;

	assert_int_equal(kt_client_run(&k->a.env, &o, &r), 0);
	kt_result_print(what, &r);
	assert_int_equal(r.failed, 0);
	for (i = 0; i < r.ids.n; i++)
		if (!strncmp(r.ids.key[i], "127.1.", 6))
			v1 += r.ids.count[i];
	kt_assert_share(what, v1, N, w1, TOL);
	total_ok += r.ok;
	if (out)
		*out = r;
	return v1;
}

/* Waits for one more "config applied" than before; returns the ms it took. */
static uint64_t wait_applied(struct kt_kube *k, int before)
{
	uint64_t t0 = mono_ms();

	assert_true(kt_wait_in_file(k->a.log, KT_APPLIED, before + 1, 20000) > before);
	return mono_ms() - t0;
}

static void test_kube_source(void **state)
{
	struct kt_kube *k = *state;
	struct kt_client_opts lo = { .target = "127.10.0.1:80", .mode = KT_TCP, .loop = true,
				     .timeout_s = 240 };
	struct kt_client live;
	struct kt_result r, fin;
	uint64_t ms;
	int applied, i;
	long long relists;

	assert_non_null(k);
	assert_int_equal(kt_servers_start(&k->a.env, servers, 5), 0);
	kt_kube_seed(k);

	/* The seed's A/B, from the API. */
	kt_agent_start(&k->a, NULL, NULL, 1);
	assert_true(kt_count_in_file(k->a.log, "kube: first lists received") == 1);
	/* No --namespace (and not in a pod): no status Lease, no status written, and it says so. */
	assert_int_equal(kt_count_in_file(k->a.log, "status writing is off"), 1);
	assert_int_equal(kt_count_in_file(k->a.log, "status: written"), 0);
	/* The foreign class's route is not judged: no verdict, no error. */
	assert_int_equal(kt_count_in_file(k->a.log, "HTTPRoute t/theirs"), 0);
	assert_int_equal(kt_client_start(&k->a.env, &lo, &live), 0);
	measure(k, "from the API, 25/75", 25, NULL);

	/* A weight edit is in force within a second. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_route_weights(k, 75, 25, false);
	ms = wait_applied(k, applied);
	printf("  [kube] weight edit applied %llu ms after the PATCH returned\n",
	       (unsigned long long)ms);
	assert_true(ms < 1000);
	measure(k, "after the weight edit, 75/25", 75, NULL);

	/* A rolling update of v2: 127.2.0.2 replaced by 127.2.0.3, then nothing reaches it. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_slice(k, "PUT", "v2", "127.2.0.1", "127.2.0.3");
	wait_applied(k, applied);
	/* Only the slice changed: the incremental path re-imaged and wrote only its VIP entry. */
	assert_int_equal(kt_count_in_file(k->a.log, "reason=endpointslices services=1 added=0 "
					  "changed=1 removed=0 unchanged=0"), 1);
	/*
	 * A full load of the same objects (SIGHUP) finds the maps as the
	 * incremental apply left them: the apply's diff has nothing to write.
	 */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kill(k->a.pid, SIGHUP);
	wait_applied(k, applied);
	assert_int_equal(kt_count_in_file(k->a.log, "reason=sighup"), 1);
	assert_int_equal(kt_count_in_file(k->a.log, "added=0 changed=0 removed=0"), 1);
	assert_int_equal(kt_count_in_file(k->a.log, "backends_written=0 ms="), 1);
	measure(k, "v2 pod replaced, 75/25", 75, &r);
	for (i = 0; i < r.ids.n; i++)
		if (!strcmp(r.ids.key[i], "127.2.0.2:8080"))
			fail_msg("%ld connects reached the replaced pod", r.ids.count[i]);
	assert_true(kt_tally_get(&r.ids, "127.2.0.3:8080") > 0);

	/* The API server away for 5 s: nothing changes on the node; then it resyncs. */
	kas_fault(&k->srv, "{\"pause_s\":5}");
	measure(k, "API paused, still 75/25", 75, NULL);
	sleep(5);
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_route_weights(k, 25, 75, false);
	wait_applied(k, applied);
	measure(k, "API back, edit applied, 25/75", 25, NULL);

	/* History compacted while the watches are cut: a relist, no flush, the new weight. */
	/*
	 * The agent's 12 watches are cut and their re-watches held; meanwhile the
	 * weight changes and the history is compacted; released, the re-watches
	 * name a resourceVersion that is gone.
	 */
	relists = route_lists(k);
	kas_fault(&k->srv, "{\"hang_next\":12}");
	kas_fault(&k->srv, "{\"cut_watches\":true}");
	kas_wait_stat(&k->srv, "hanging", 11);
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_route_weights(k, 50, 50, false);
	kas_fault(&k->srv, "{\"compact\":true}");
	kas_fault(&k->srv, "{\"release\":true}");
	wait_applied(k, applied);
	measure(k, "after compaction, 50/50", 50, NULL);
	printf("  [kube] httproutes lists: %lld before, %lld after\n", (long long)relists,
	       route_lists(k));
	/* The watch from a compacted resourceVersion got 410: the agent relisted (once). */
	assert_int_equal(route_lists(k), relists + 1);
	assert_true(kt_count_in_file(k->a.log, "kube: watch expired; relisting") >= 1);

	/* The token rotated: the server takes only the new one, the agent reads the file again. */
	kas_write(&k->env, "token", TOKEN_TWO "\n");
	snprintf(k->token, sizeof(k->token), TOKEN_TWO);
	kas_fault(&k->srv, "{\"cut_watches\":true}");
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_route_weights(k, 25, 75, false);
	wait_applied(k, applied);
	measure(k, "token rotated, 25/75", 25, NULL);

	/* A second route made invalid is refused alone; the working one does not move. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_api(k, "POST", KT_ROUTES, NULL,
		    "{\"metadata\":{\"name\":\"bad\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
		    "[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"method\":\"GET\"}],"
		    "\"backendRefs\":[{\"name\":\"v1\",\"port\":80}]}]}}", 201);
	assert_true(kt_wait_in_file(k->a.log, "route=\"HTTPRoute t/bad\"", 1, 20000) >= 1);
	assert_true(kt_count_in_file(k->a.log, "route refused; not programmed") >= 1);
	measure(k, "invalid route beside it, 25/75", 25, NULL);

	assert_int_equal(kt_client_stop(&k->a.env, &live), 0);
	fin = *live.res;
	kt_client_free(&live);
	kt_result_print("live client, whole run", &fin);
	assert_true(fin.ok > 1000);
	assert_int_equal(fin.failed, 0);
	kt_agent_stop(&k->a);
}

/* A CRD absent at start and installed later is picked up without a restart (every 30 s). */
static void test_kube_crd_later(void **state)
{
	struct kt_kube *k = *state;
	struct kt_result r;
	int applied;

	assert_non_null(k);
	assert_int_equal(kt_servers_start(&k->a.env, servers, 5), 0);
	kas_fault(&k->srv, "{\"disable\":\"gateway.networking.k8s.io/v1alpha2/tcproutes\"}");
	kt_kube_seed(k);
	kt_agent_start(&k->a, NULL, NULL, 1);
	assert_true(kt_count_in_file(k->a.log, "resource=tcproutes") >= 1);
	kas_fault(&k->srv, "{\"enable\":\"gateway.networking.k8s.io/v1alpha2/tcproutes\"}");
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	kt_kube_api(k, "POST", "/apis/gateway.networking.k8s.io/v1alpha2/namespaces/t/tcproutes",
		    NULL,
		    "{\"metadata\":{\"name\":\"raw\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
		    "[{\"name\":\"gw\",\"sectionName\":\"tcp\"}],\"rules\":[{\"backendRefs\":"
		    "[{\"name\":\"v1\",\"port\":80}]}]}}", 201);
	assert_true(kt_wait_in_file(k->a.log, KT_APPLIED, applied + 1, 45000) > applied);
	{
		struct kt_client_opts o = { .target = "127.10.0.1:9000", .mode = KT_TCP,
					    .count = 2000 };

		assert_int_equal(kt_client_run(&k->a.env, &o, &r), 0);
		kt_result_print("TCPRoute after its CRD came", &r);
		assert_int_equal(r.failed, 0);
		assert_int_equal(kt_tally_get(&r.ids, "127.1.0.1:8080") +
				 kt_tally_get(&r.ids, "127.1.0.2:8080"), 2000);
	}

	kt_agent_stop(&k->a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kube_source, kt_kube_setup, kt_kube_teardown),
		cmocka_unit_test_setup_teardown(test_kube_crd_later, kt_kube_setup, kt_kube_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
