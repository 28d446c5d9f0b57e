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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "apiserver/harness.h"

#define N	20000
#define TOL	1.5
#define TOKEN_TWO "token-two"

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080", "127.2.0.3:8080",
};

struct kube_test {
	struct kt_agent a;		/* first: the cmocka state is also a struct kt_agent */
	struct kas_env env;
	struct kas_srv srv;
	char kubeconfig[PATH_MAX];
	char token[64];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* A write through the API; code is the expected HTTP status. */
static void api(struct kube_test *k, const char *method, const char *path, const char *ctype,
		const char *body, long code)
{
	struct kas_resp r;

	kas_req(&r, &k->srv, k->token, method, path, ctype, body, 0);
	if (r.code != code)
		fail_msg("%s %s: %ld, want %ld: %s", method, path, r.code, code,
			 r.body ? r.body : "");
	kas_resp_free(&r);
}

static void slice(struct kube_test *k, const char *method, const char *svc, const char *a,
		  const char *b)
{
	char body[1024], path[256];

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		 "\"metadata\":{\"name\":\"%s-1\",\"namespace\":\"t\",\"labels\":"
		 "{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
		 "\"ports\":[{\"name\":\"tcp\",\"port\":8080,\"protocol\":\"TCP\"}],"
		 "\"endpoints\":[{\"addresses\":[\"%s\"]},{\"addresses\":[\"%s\"]}]}",
		 svc, svc, a, b);
	if (!strcmp(method, "POST"))
		snprintf(path, sizeof(path), "/apis/discovery.k8s.io/v1/namespaces/t/endpointslices");
	else
		snprintf(path, sizeof(path),
			 "/apis/discovery.k8s.io/v1/namespaces/t/endpointslices/%s-1", svc);
	api(k, method, path, NULL, body, !strcmp(method, "POST") ? 201 : 200);
}

#define ROUTES "/apis/gateway.networking.k8s.io/v1/namespaces/t/httproutes"

static void route_weights(struct kube_test *k, int w1, int w2, bool create)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
		 "\"metadata\":{\"name\":\"r\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
		 "[{\"name\":\"gw\",\"sectionName\":\"http\"}],\"rules\":[{\"backendRefs\":["
		 "{\"name\":\"v1\",\"port\":80,\"weight\":%d},{\"name\":\"v2\",\"port\":80,"
		 "\"weight\":%d}]}]}}", w1, w2);
	if (create)
		api(k, "POST", ROUTES, NULL, body, 201);
	else
		api(k, "PATCH", ROUTES "/r", "application/merge-patch+json", body, 200);
}

static void seed(struct kube_test *k)
{
	api(k, "POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", NULL,
	    "{\"metadata\":{\"name\":\"ksplit\"},\"spec\":{\"controllerName\":"
	    "\"ksplit.io/gateway-controller\"}}", 201);
	/* A class ksplit does not own: its Gateway and routes are none of ksplit's business. */
	api(k, "POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", NULL,
	    "{\"metadata\":{\"name\":\"other\"},\"spec\":{\"controllerName\":\"example.com/x\"}}",
	    201);
	api(k, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways", NULL,
	    "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"t\"},\"spec\":{\"gatewayClassName\":"
	    "\"ksplit\",\"addresses\":[{\"value\":\"127.10.0.1\"}],\"listeners\":[{\"name\":"
	    "\"http\",\"port\":80,\"protocol\":\"HTTP\"},{\"name\":\"tcp\",\"port\":9000,"
	    "\"protocol\":\"TCP\"}]}}", 201);
	api(k, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways", NULL,
	    "{\"metadata\":{\"name\":\"foreign\",\"namespace\":\"t\"},\"spec\":{\"gatewayClassName\":"
	    "\"other\",\"addresses\":[{\"value\":\"127.10.0.9\"}],\"listeners\":[{\"name\":"
	    "\"http\",\"port\":80,\"protocol\":\"HTTP\"}]}}", 201);
	api(k, "POST", ROUTES, NULL,
	    "{\"metadata\":{\"name\":\"theirs\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
	    "[{\"name\":\"foreign\"}],\"rules\":[{\"matches\":[{\"headers\":[{\"name\":\"x\","
	    "\"value\":\"y\"}]}],\"backendRefs\":[{\"name\":\"v1\",\"port\":80}]}]}}", 201);
	api(k, "POST", "/api/v1/namespaces/t/services", NULL,
	    "{\"metadata\":{\"name\":\"v1\",\"namespace\":\"t\"},\"spec\":{\"clusterIP\":"
	    "\"10.96.0.1\",\"ports\":[{\"name\":\"tcp\",\"port\":80,\"targetPort\":8080}]}}", 201);
	api(k, "POST", "/api/v1/namespaces/t/services", NULL,
	    "{\"metadata\":{\"name\":\"v2\",\"namespace\":\"t\"},\"spec\":{\"clusterIP\":"
	    "\"10.96.0.2\",\"ports\":[{\"name\":\"tcp\",\"port\":80,\"targetPort\":8080}]}}", 201);
	slice(k, "POST", "v1", "127.1.0.1", "127.1.0.2");
	slice(k, "POST", "v2", "127.2.0.1", "127.2.0.2");
	route_weights(k, 25, 75, true);
}

/* How many lists of HTTPRoutes the server answered (its stats key has dots: read it directly). */
static long long route_lists(struct kube_test *k)
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
static long measure(struct kube_test *k, const char *what, double w1, struct kt_result *out)
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
static uint64_t wait_applied(struct kube_test *k, int before)
{
	uint64_t t0 = mono_ms();

	assert_true(kt_wait_in_file(k->a.log, KT_APPLIED, before + 1, 20000) > before);
	return mono_ms() - t0;
}

static int setup(void **state)
{
	struct kube_test *k = calloc(1, sizeof(*k));

	if (!k || kt_agent_init(&k->a)) {
		*state = k;
		return -1;
	}
	kas_env_init(&k->env);
	kas_start(&k->srv, &k->env, true, NULL);
	snprintf(k->token, sizeof(k->token), "token-one");
	snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", k->env.dir);
	kas_write(&k->env, "kubeconfig",
		  "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
		  "contexts: [{name: t, context: {cluster: c, user: u, namespace: t}}]\n"
		  "clusters: [{name: c, cluster: {server: '%s', certificate-authority: ca.crt}}]\n"
		  "users: [{name: u, user: {tokenFile: token}}]\n", k->srv.base);
	k->a.kubeconfig = k->kubeconfig;
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct kube_test *k = *state;

	if (!k)
		return 0;
	kt_agent_fini(&k->a);
	kas_stop(&k->srv.pid);
	kas_env_fini(&k->env);
	free(k);
	return 0;
}

static void test_kube_source(void **state)
{
	struct kube_test *k = *state;
	struct kt_client_opts lo = { .target = "127.10.0.1:80", .mode = KT_TCP, .loop = true,
				     .timeout_s = 240 };
	struct kt_client live;
	struct kt_result r, fin;
	uint64_t ms;
	int applied, i;
	long long relists;

	assert_non_null(k);
	assert_int_equal(kt_servers_start(&k->a.env, servers, 5), 0);
	seed(k);

	/* The seed's A/B, from the API. */
	kt_agent_start(&k->a, NULL, NULL, 1);
	assert_true(kt_count_in_file(k->a.log, "kube: first lists received") == 1);
	/* The foreign class's route is not judged: no verdict, no error. */
	assert_int_equal(kt_count_in_file(k->a.log, "HTTPRoute t/theirs"), 0);
	assert_int_equal(kt_client_start(&k->a.env, &lo, &live), 0);
	measure(k, "from the API, 25/75", 25, NULL);

	/* A weight edit is in force within a second. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	route_weights(k, 75, 25, false);
	ms = wait_applied(k, applied);
	printf("  [kube] weight edit applied %llu ms after the PATCH returned\n",
	       (unsigned long long)ms);
	assert_true(ms < 1000);
	measure(k, "after the weight edit, 75/25", 75, NULL);

	/* A rolling update of v2: 127.2.0.2 replaced by 127.2.0.3, then nothing reaches it. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	slice(k, "PUT", "v2", "127.2.0.1", "127.2.0.3");
	wait_applied(k, applied);
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
	route_weights(k, 25, 75, false);
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
	route_weights(k, 50, 50, false);
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
	route_weights(k, 25, 75, false);
	wait_applied(k, applied);
	measure(k, "token rotated, 25/75", 25, NULL);

	/* A second route made invalid is refused alone; the working one does not move. */
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	api(k, "POST", ROUTES, NULL,
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
	struct kube_test *k = *state;
	struct kt_result r;
	int applied;

	assert_non_null(k);
	assert_int_equal(kt_servers_start(&k->a.env, servers, 5), 0);
	kas_fault(&k->srv, "{\"disable\":\"gateway.networking.k8s.io/v1alpha2/tcproutes\"}");
	seed(k);
	kt_agent_start(&k->a, NULL, NULL, 1);
	assert_true(kt_count_in_file(k->a.log, "resource=tcproutes") >= 1);
	kas_fault(&k->srv, "{\"enable\":\"gateway.networking.k8s.io/v1alpha2/tcproutes\"}");
	applied = kt_count_in_file(k->a.log, KT_APPLIED);
	api(k, "POST", "/apis/gateway.networking.k8s.io/v1alpha2/namespaces/t/tcproutes", NULL,
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
		cmocka_unit_test_setup_teardown(test_kube_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kube_crd_later, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
