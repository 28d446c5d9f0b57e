// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks-apiserver (selftests/apiserver) checked over the wire with libcurl:
 * discovery, paging, 410 Expired, the status subresource, Lease conflicts,
 * token rotation, faults and bulk load. test_apiserver_kubectl does the same
 * with kubectl. Two servers run for the whole group: HTTPS with its own CA
 * and a token file, and plain HTTP without auth; both are killed by pid and
 * the temp dir is removed in the group teardown.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>
#include "apiserver/harness.h"

static struct kas_env env;
static struct kas_srv plain, tls;

static int group_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	kas_env_init(&env);
	kas_start(&tls, &env, true, NULL);
	kas_start(&plain, &env, false, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	kas_stop(&tls.pid);
	kas_stop(&plain.pid);
	kas_env_fini(&env);
	return 0;
}

static void test_discovery(void **state)
{
	struct kas_resp r;
	json_object *groups, *res;
	const char *want[] = { "discovery.k8s.io", "coordination.k8s.io", "gateway.networking.k8s.io",
			       "application-networking.k8s.aws" };

	(void)state;
	kas_req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "kind"), "APIGroupList");
	groups = kas_jarr(r.json, "groups");
	assert_int_equal(json_object_array_length(groups), 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(kas_jget(json_object_array_get_idx(groups, i), "name"), want[i]);
	assert_string_equal(kas_jget(r.json, "groups[2].preferredVersion.groupVersion"),
			    "gateway.networking.k8s.io/v1");
	assert_string_equal(kas_jget(r.json, "groups[2].versions[2].version"), "v1alpha2");
	kas_resp_free(&r);

	kas_req(&r, &plain, NULL, "GET", "/apis/gateway.networking.k8s.io/v1", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "groupVersion"), "gateway.networking.k8s.io/v1");
	res = kas_jarr(r.json, "resources");
	assert_int_equal(json_object_array_length(res), 8);
	assert_string_equal(kas_jget(res, "[4].name"), "httproutes");
	assert_string_equal(kas_jget(res, "[4].singularName"), "httproute");
	assert_string_equal(kas_jget(res, "[4].kind"), "HTTPRoute");
	assert_string_equal(kas_jget(res, "[4].namespaced"), "true");
	assert_string_equal(kas_jget(res, "[4].verbs[7]"), "watch");
	assert_string_equal(kas_jget(res, "[5].name"), "httproutes/status");
	assert_string_equal(kas_jget(res, "[5].verbs[2]"), "update");
	kas_resp_free(&r);

	/* What kubectl --validate=strict reads: each kind's PATCH takes fieldValidation. */
	kas_req(&r, &plain, NULL, "GET", "/openapi/v3", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	/* Keys with dots: looked up whole, not through kas_jget's paths. */
	res = json_object_object_get(kas_jarr(r.json, "paths"),
				     "apis/gateway.networking.k8s.io/v1alpha2");
	assert_string_equal(kas_jget(res, "serverRelativeURL"),
			    "/openapi/v3/apis/gateway.networking.k8s.io/v1alpha2");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET", "/openapi/v3/api/v1", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	res = json_object_object_get(kas_jarr(r.json, "paths"),
				     "/api/v1/namespaces/{namespace}/services/{name}");
	assert_string_equal(kas_jget(res, "patch.x-kubernetes-group-version-kind.kind"), "Service");
	assert_string_equal(kas_jget(res, "patch.parameters[0].name"), "fieldValidation");
	kas_resp_free(&r);

	/* A CRD absent, then installed. */
	kas_fault(&plain, "{\"disable\":\"application-networking.k8s.aws/v1alpha1/targetgrouppolicies\","
		      "\"enable\":\"gateway.networking.k8s.io/v1/gateways\"}");
	kas_req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(json_object_array_length(kas_jarr(r.json, "groups")), 3);
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET", "/apis/application-networking.k8s.aws/v1alpha1", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET",
	    "/apis/application-networking.k8s.aws/v1alpha1/targetgrouppolicies", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	assert_string_equal(kas_jget(r.json, "reason"), "NotFound");
	kas_resp_free(&r);
	kas_fault(&plain, "{\"enable\":\"application-networking.k8s.aws/v1alpha1/targetgrouppolicies\"}");
	kas_req(&r, &plain, NULL, "GET",
	    "/apis/application-networking.k8s.aws/v1alpha1/targetgrouppolicies", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "kind"), "TargetGroupPolicyList");
	kas_resp_free(&r);

	kas_req(&r, &plain, NULL, "POST", "/_ksplit/fault", NULL, "{\"disable\":\"x/v1/nope\"}", 0);
	assert_int_equal(r.code, 400);
	assert_string_equal(kas_jget(r.json, "message"), "disable: no resource x/v1/nope: write "
			    "group/version/resource, e.g. gateway.networking.k8s.io/v1/httproutes or "
			    "core/v1/services");
	kas_resp_free(&r);
}

static void create_svc(const struct kas_srv *s, const char *ns, const char *name)
{
	char path[256], body[256];
	struct kas_resp r;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", ns);
	snprintf(body, sizeof(body), "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"
		 "{\"name\":\"%s\"},\"spec\":{\"ports\":[{\"port\":80}]}}", name);
	kas_req(&r, s, NULL, "POST", path, NULL, body, 0);
	assert_int_equal(r.code, 201);
	kas_resp_free(&r);
}

/* (c) limit/continue: three pages of 2, 2 and 1, in name order, at one resourceVersion. */
static void test_paging(void **state)
{
	const char *want[] = { "s0", "s1", "s2", "s3", "s4" };
	char path[1024], rv[24] = "";
	long long lists;
	int seen = 0;

	(void)state;
	for (int i = 4; i >= 0; i--)
		create_svc(&plain, "pg", want[i]);
	create_svc(&plain, "other", "s9");
	lists = kas_stat(&plain, "requests.list.services");
	snprintf(path, sizeof(path), "/api/v1/namespaces/pg/services?limit=2");
	for (int page = 0; page < 3; page++) {
		const char *cont, *left;
		json_object *items;
		struct kas_resp r;

		kas_req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
		assert_int_equal(r.code, 200);
		assert_string_equal(kas_jget(r.json, "kind"), "ServiceList");
		assert_string_equal(kas_jget(r.json, "apiVersion"), "v1");
		if (!page)
			snprintf(rv, sizeof(rv), "%lld", kas_stat(&plain, "resourceVersion"));
		assert_string_equal(kas_jget(r.json, "metadata.resourceVersion"), rv);
		items = kas_jarr(r.json, "items");
		assert_int_equal(json_object_array_length(items), page < 2 ? 2 : 1);
		for (size_t i = 0; i < json_object_array_length(items); i++) {
			json_object *it = json_object_array_get_idx(items, i);

			assert_string_equal(kas_jget(it, "metadata.name"), want[seen++]);
			assert_string_equal(kas_jget(it, "metadata.namespace"), "pg");
			assert_null(kas_jget(it, "kind"));
			assert_null(kas_jget(it, "apiVersion"));
		}
		cont = kas_jget(r.json, "metadata.continue");
		left = kas_jget(r.json, "metadata.remainingItemCount");
		if (page < 2) {
			assert_non_null(cont);
			assert_string_equal(left, page ? "1" : "3");
			snprintf(path, sizeof(path), "/api/v1/namespaces/pg/services?limit=2&continue=%s",
				 cont);
		} else {
			assert_null(cont);
			assert_null(left);
		}
		kas_resp_free(&r);
	}
	assert_int_equal(seen, 5);
	assert_int_equal(kas_stat(&plain, "requests.list.services"), lists + 3);
}

/* (d) after compaction: a watch from an older RV gets one ERROR 410 Expired event. */
static void test_expired(void **state)
{
	char path[1024], msg[128], cont[512];
	long long before, compacted;
	struct kas_resp r;
	json_object *ev;

	(void)state;
	create_svc(&plain, "ex", "a");
	create_svc(&plain, "ex", "b");
	kas_req(&r, &plain, NULL, "GET", "/api/v1/namespaces/ex/services?limit=1", NULL, NULL, 0);
	snprintf(cont, sizeof(cont), "%s", kas_jget(r.json, "metadata.continue"));
	kas_resp_free(&r);
	create_svc(&plain, "ex2", "c");	/* the continue token's RV is now older too */
	before = kas_stat(&plain, "resourceVersion") - 1;
	kas_fault(&plain, "{\"compact\":true}");
	compacted = kas_stat(&plain, "compacted");
	assert_int_equal(compacted, before + 1);

	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?watch=1&resourceVersion=%lld",
		 before);
	kas_req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.code, 200);
	assert_non_null(r.json);
	assert_string_equal(strchr(r.body, '\n'), "\n");	/* one line, then the end */
	snprintf(msg, sizeof(msg), "too old resource version: %lld (%lld)", before, compacted);
	assert_string_equal(kas_jget(r.json, "type"), "ERROR");
	assert_string_equal(kas_jget(r.json, "object.kind"), "Status");
	assert_string_equal(kas_jget(r.json, "object.code"), "410");
	assert_string_equal(kas_jget(r.json, "object.reason"), "Expired");
	assert_string_equal(kas_jget(r.json, "object.message"), msg);
	kas_resp_free(&r);

	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?limit=1&continue=%s", cont);
	kas_req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.code, 410);
	assert_string_equal(kas_jget(r.json, "reason"), "Expired");
	kas_resp_free(&r);

	/* From the compaction point on, history is whole again. */
	kas_req(&r, &plain, NULL, "DELETE", "/api/v1/namespaces/ex/services/a", NULL, NULL, 0);
	kas_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?watch=true&resourceVersion=%lld"
		 "&timeoutSeconds=1&allowWatchBookmarks=true", compacted);
	kas_req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.rc, CURLE_OK);
	ev = json_tokener_parse(r.body);
	assert_string_equal(kas_jget(ev, "type"), "DELETED");
	assert_string_equal(kas_jget(ev, "object.kind"), "Service");
	assert_string_equal(kas_jget(ev, "object.apiVersion"), "v1");
	assert_string_equal(kas_jget(ev, "object.metadata.name"), "a");
	assert_int_equal(atoll(kas_jget(ev, "object.metadata.resourceVersion")), compacted + 1);
	json_object_put(ev);
	ev = json_tokener_parse(strchr(r.body, '\n') + 1);
	assert_string_equal(kas_jget(ev, "type"), "BOOKMARK");
	assert_int_equal(atoll(kas_jget(ev, "object.metadata.resourceVersion")), compacted + 1);
	assert_null(kas_jget(ev, "object.metadata.name"));
	json_object_put(ev);
	kas_resp_free(&r);

	/* resourceVersion 0: the current objects as ADDED first. */
	kas_req(&r, &plain, NULL, "GET", "/api/v1/namespaces/ex/services?watch=1&resourceVersion=0"
	    "&timeoutSeconds=1", NULL, NULL, 0);
	ev = json_tokener_parse(r.body);
	assert_string_equal(kas_jget(ev, "type"), "ADDED");
	assert_string_equal(kas_jget(ev, "object.metadata.name"), "b");
	assert_string_equal(strchr(r.body, '\n'), "\n");
	json_object_put(ev);
	kas_resp_free(&r);
}

#define CONFLICT(what, name)                                                                  \
	"Operation cannot be fulfilled on " what " \"" name "\": the object has been modified; " \
	"please apply your changes to the latest version and try again"
#define ROUTES "/apis/gateway.networking.k8s.io/v1/namespaces/st/httproutes"

/* (e) the status subresource: only .status changes; a stale resourceVersion gets 409. */
static void test_status_conflict(void **state)
{
	char body[512], rv[24];
	struct kas_resp r;

	(void)state;
	kas_req(&r, &plain, NULL, "POST", ROUTES, NULL, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\","
	    "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\"},\"spec\":{\"parentRefs\":"
	    "[{\"name\":\"gw\"}]}}", 0);
	assert_int_equal(r.code, 201);
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "1");
	assert_string_equal(kas_jget(r.json, "metadata.namespace"), "st");
	assert_int_equal(strlen(kas_jget(r.json, "metadata.uid")), 36);
	assert_int_equal(strlen(kas_jget(r.json, "metadata.creationTimestamp")), 20);
	snprintf(rv, sizeof(rv), "%s", kas_jget(r.json, "metadata.resourceVersion"));
	kas_resp_free(&r);

	snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"r\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"parentRefs\":[]},\"status\":{\"parents\":[{\"controllerName\":"
		 "\"ksplit.io/agent\"}]}}", rv);
	kas_req(&r, &plain, NULL, "PUT", ROUTES "/r/status", NULL, body, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "status.parents[0].controllerName"), "ksplit.io/agent");
	assert_string_equal(kas_jget(r.json, "spec.parentRefs[0].name"), "gw");	/* spec kept */
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "1");
	assert_int_equal(atoll(kas_jget(r.json, "metadata.resourceVersion")), atoll(rv) + 1);
	kas_resp_free(&r);

	/* The same PUT again: its resourceVersion is now stale. */
	kas_req(&r, &plain, NULL, "PUT", ROUTES "/r/status", NULL, body, 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(kas_jget(r.json, "kind"), "Status");
	assert_string_equal(kas_jget(r.json, "status"), "Failure");
	assert_string_equal(kas_jget(r.json, "reason"), "Conflict");
	assert_string_equal(kas_jget(r.json, "code"), "409");
	assert_string_equal(kas_jget(r.json, "message"),
			    CONFLICT("httproutes.gateway.networking.k8s.io", "r"));
	kas_resp_free(&r);

	/* Merge patch of status: null removes a key, spec in the patch is ignored. */
	kas_req(&r, &plain, NULL, "PATCH", ROUTES "/r/status", "application/merge-patch+json",
	    "{\"spec\":{\"parentRefs\":null},\"status\":{\"parents\":null,\"x\":1}}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(json_object_to_json_string_ext(json_object_object_get(r.json, "status"),
							   JSON_C_TO_STRING_PLAIN), "{\"x\":1}");
	assert_string_equal(kas_jget(r.json, "spec.parentRefs[0].name"), "gw");
	kas_resp_free(&r);

	/* The object itself: spec changes bump generation, .status stays as it was. */
	kas_req(&r, &plain, NULL, "PATCH", ROUTES "/r", "application/merge-patch+json",
	    "{\"spec\":{\"hostnames\":[\"a.example\"]},\"status\":null}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "2");
	assert_string_equal(kas_jget(r.json, "status.x"), "1");
	assert_string_equal(kas_jget(r.json, "spec.hostnames[0]"), "a.example");
	kas_resp_free(&r);

	kas_req(&r, &plain, NULL, "PATCH", ROUTES "/r", "application/json-patch+json", "[]", 0);
	assert_int_equal(r.code, 415);
	assert_string_equal(kas_jget(r.json, "reason"), "UnsupportedMediaType");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET", ROUTES "/nope", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	assert_string_equal(kas_jget(r.json, "message"),
			    "httproutes.gateway.networking.k8s.io \"nope\" not found");
	kas_resp_free(&r);
}

#define SLICES "/apis/discovery.k8s.io/v1/namespaces/st/endpointslices"

/* generation follows everything but metadata and status: an EndpointSlice's endpoints. */
/*
 * The interpose fault: another writer's merge patch lands just before the
 * next write to that object, which then gets 409 for the resourceVersion it
 * read; each write is counted per object.
 */
static void test_interpose(void **state)
{
	const char *key = "objects.update.httproutes/st/ip/status";
	char body[512], rv[24];
	struct kas_resp r;
	long long before;

	(void)state;
	kas_req(&r, &plain, NULL, "POST", ROUTES, NULL, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\","
	    "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"ip\"},\"spec\":{}}", 0);
	assert_int_equal(r.code, 201);
	snprintf(rv, sizeof(rv), "%s", kas_jget(r.json, "metadata.resourceVersion"));
	kas_resp_free(&r);
	before = kas_stat(&plain, key);
	kas_fault(&plain, "{\"interpose\":{\"object\":\"httproutes/st/ip/status\",\"patch\":"
		  "{\"status\":{\"parents\":[{\"controllerName\":\"other\"}]}}}}");
	snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"ip\",\"resourceVersion\":\"%s\"},"
		 "\"status\":{\"parents\":[{\"controllerName\":\"mine\"}]}}", rv);
	kas_req(&r, &plain, NULL, "PUT", ROUTES "/ip/status", NULL, body, 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(kas_jget(r.json, "reason"), "Conflict");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET", ROUTES "/ip", NULL, NULL, 0);
	assert_string_equal(kas_jget(r.json, "status.parents[0].controllerName"), "other");
	assert_null(kas_jget(r.json, "status.parents[1]"));
	assert_int_equal(atoll(kas_jget(r.json, "metadata.resourceVersion")), atoll(rv) + 1);
	kas_resp_free(&r);
	/* Used up: the same PUT again is only stale, and nothing else lands. */
	kas_req(&r, &plain, NULL, "PUT", ROUTES "/ip/status", NULL, body, 0);
	assert_int_equal(r.code, 409);
	kas_resp_free(&r);
	assert_int_equal(kas_stat(&plain, key) - before, 2);
	kas_req(&r, &plain, NULL, "POST", "/_ksplit/fault", NULL, "{\"interpose\":{\"object\":1}}", 0);
	assert_int_equal(r.code, 400);
	kas_resp_free(&r);
}

static void test_generation(void **state)
{
	struct kas_resp r;

	(void)state;
	kas_req(&r, &plain, NULL, "POST", SLICES, NULL, "{\"metadata\":{\"name\":\"e\"},"
		"\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", 0);
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "1");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "PATCH", SLICES "/e", "application/merge-patch+json",
		"{\"endpoints\":[{\"addresses\":[\"10.0.0.2\"]}]}", 0);
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "2");
	assert_string_equal(kas_jget(r.json, "endpoints[0].addresses[0]"), "10.0.0.2");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "PATCH", SLICES "/e", "application/merge-patch+json",
		"{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", 0);
	assert_string_equal(kas_jget(r.json, "metadata.generation"), "2");
	assert_string_equal(kas_jget(r.json, "metadata.labels.a"), "b");
	kas_resp_free(&r);
}

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"

/* Two holders race for one Lease with the resourceVersion both read: one wins, one gets 409. */
static void test_lease_conflict(void **state)
{
	char a[512], b[512];
	struct kas_resp r;
	const char *rv;

	(void)state;
	kas_req(&r, &plain, NULL, "POST", LEASES, NULL, "{\"metadata\":{\"name\":\"ksplit\"},\"spec\":"
	    "{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15}}", 0);
	assert_int_equal(r.code, 201);
	rv = kas_jget(r.json, "metadata.resourceVersion");
	snprintf(a, sizeof(a), "{\"metadata\":{\"name\":\"ksplit\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,\"renewTime\":"
		 "\"2026-01-01T00:00:01.000000Z\"}}", rv);
	snprintf(b, sizeof(b), "{\"metadata\":{\"name\":\"ksplit\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":15}}", rv);
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "PUT", LEASES "/ksplit", NULL, a, 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "PUT", LEASES "/ksplit", NULL, b, 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(kas_jget(r.json, "message"), CONFLICT("leases.coordination.k8s.io", "ksplit"));
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "POST", LEASES, NULL, "{\"metadata\":{\"name\":\"ksplit\"}}", 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(kas_jget(r.json, "reason"), "AlreadyExists");
	assert_string_equal(kas_jget(r.json, "message"),
			    "leases.coordination.k8s.io \"ksplit\" already exists");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "GET", LEASES "/ksplit", NULL, NULL, 0);
	assert_string_equal(kas_jget(r.json, "kind"), "Lease");
	assert_string_equal(kas_jget(r.json, "apiVersion"), "coordination.k8s.io/v1");
	assert_string_equal(kas_jget(r.json, "spec.holderIdentity"), "a");
	kas_resp_free(&r);
}

/* (f) the token file is read per request: after rotation the old token gets 401. */
static void test_token_rotation(void **state)
{
	struct kas_resp r;

	(void)state;
	kas_req(&r, &tls, NULL, "GET", "/api", NULL, NULL, 0);
	assert_int_equal(r.code, 401);
	kas_resp_free(&r);
	kas_req(&r, &tls, "token-one", "GET", "/api", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "kind"), "APIVersions");
	assert_string_equal(kas_jget(r.json, "versions[0]"), "v1");
	kas_resp_free(&r);

	kas_write(&env, "token", "token-two\n");
	kas_req(&r, &tls, "token-one", "GET", "/api/v1/services", NULL, NULL, 0);
	assert_int_equal(r.code, 401);
	assert_string_equal(kas_jget(r.json, "kind"), "Status");
	assert_string_equal(kas_jget(r.json, "reason"), "Unauthorized");
	assert_string_equal(kas_jget(r.json, "message"), "Unauthorized");
	kas_resp_free(&r);
	kas_req(&r, &tls, "token-two", "GET", "/api/v1/services", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
	kas_write(&env, "token", "token-one\n");
}

struct bgwatch {
	pthread_t t;
	struct kas_resp r;
	double secs;
};

static void *watch_thread(void *arg)
{
	struct bgwatch *w = arg;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	kas_req(&w->r, &plain, NULL, "GET", "/api/v1/services?watch=1&resourceVersion=0&timeoutSeconds=30",
	    NULL, NULL, 20000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	w->secs = b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9;
	return NULL;
}

/* Faults: injected errors, a hung request, cut streams, a pause. */
static void test_faults(void **state)
{
	struct bgwatch w = { 0 };
	long long watches;
	struct kas_resp r;

	(void)state;
	kas_fault(&plain, "{\"fail_next\":2,\"code\":503}");
	for (int i = 0; i < 3; i++) {
		kas_req(&r, &plain, NULL, "GET", "/api/v1/services", NULL, NULL, 0);
		assert_int_equal(r.code, i < 2 ? 503 : 200);
		if (i < 2)
			assert_string_equal(kas_jget(r.json, "reason"), "ServiceUnavailable");
		kas_resp_free(&r);
	}

	kas_fault(&plain, "{\"hang_next\":1}");
	kas_req(&r, &plain, NULL, "GET", "/api/v1/services", NULL, NULL, 500);
	assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
	kas_resp_free(&r);
	assert_int_equal(kas_stat(&plain, "hanging"), 1);
	kas_fault(&plain, "{\"release\":true}");
	for (int i = 0; i < 100 && kas_stat(&plain, "hanging"); i++)
		usleep(20000);
	assert_int_equal(kas_stat(&plain, "hanging"), 0);

	watches = kas_stat(&plain, "requests.watch.services");
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	kas_wait_stat(&plain, "requests.watch.services", watches);
	usleep(200000);
	kas_fault(&plain, "{\"cut_watches\":true}");
	pthread_join(w.t, NULL);
	/* Cut mid-stream: the chunked body never ends properly. */
	assert_int_not_equal(w.r.rc, CURLE_OK);
	assert_int_not_equal(w.r.rc, CURLE_OPERATION_TIMEDOUT);
	assert_true(w.secs < 5);
	assert_non_null(strstr(w.r.body, "{\"type\":\"ADDED\""));
	kas_resp_free(&w.r);

	/* A pause: the port refuses connections, then listens again. */
	kas_fault(&plain, "{\"pause_s\":1.5}");
	for (int i = 0; i < 50; i++) {
		kas_req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
		kas_resp_free(&r);
		if (r.rc == CURLE_COULDNT_CONNECT)
			break;
		/*
		 * In the 100 ms before the listener closes: answered 503, or, for
		 * a request that meets the close, cut without an answer.
		 */
		if (r.rc == CURLE_OK)
			assert_int_equal(r.code, 503);
		usleep(20000);
	}
	assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
	for (int i = 0; i < 100; i++) {
		kas_req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
		kas_resp_free(&r);
		if (r.rc == CURLE_OK)
			break;
		usleep(50000);
	}
	assert_int_equal(r.code, 200);
}

/* /_ksplit/load: many objects of any kinds in one request. */
static void test_load(void **state)
{
	long long rv = kas_stat(&plain, "resourceVersion");
	struct kas_resp r;

	(void)state;
	kas_req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL, "{\"items\":["
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"l1\","
	    "\"namespace\":\"ld\"}},{\"apiVersion\":\"gateway.networking.k8s.io/v1beta1\","
	    "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"l2\",\"namespace\":\"ld\"}}]}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "created"), "2");
	assert_int_equal(atoll(kas_jget(r.json, "resourceVersion")), rv + 2);
	kas_resp_free(&r);
	/* Stored once, served at every version of the resource. */
	kas_req(&r, &plain, NULL, "GET", "/apis/gateway.networking.k8s.io/v1/namespaces/ld/httproutes/l2",
	    NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(kas_jget(r.json, "apiVersion"), "gateway.networking.k8s.io/v1");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL, "{\"items\":[{\"apiVersion\":\"v1\","
	    "\"kind\":\"Service\",\"metadata\":{\"name\":\"l3\",\"namespace\":\"ld\"}},"
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"l1\","
	    "\"namespace\":\"ld\"}}]}", 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(kas_jget(r.json, "message"), "items[1]: services \"l1\" already exists");
	kas_resp_free(&r);
	kas_req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL,
	    "{\"items\":[{\"apiVersion\":\"v2\",\"kind\":\"Service\"}]}", 0);
	assert_int_equal(r.code, 400);
	assert_string_equal(kas_jget(r.json, "message"),
			    "items[0]: no resource is served for apiVersion v2 kind Service");
	kas_resp_free(&r);
}

/* A watch body is exactly these events, of one type, for these names (NULL-terminated). */
static void assert_events(char *body, const char *type, const char **names)
{
	char *line, *save = NULL;
	int n = 0;

	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *ev = json_tokener_parse(line);

		assert_non_null(names[n]);
		assert_string_equal(kas_jget(ev, "type"), type);
		assert_string_equal(kas_jget(ev, "object.metadata.name"), names[n++]);
		json_object_put(ev);
	}
	assert_null(names[n]);
}

/* --page-max caps every page; --history-max compacts the oldest half past it. */
static void test_limits(void **state)
{
	struct kas_srv small = { 0 };
	struct kas_resp r;

	(void)state;
	kas_start(&small, &env, false, (char *[]){ "--page-max", "2", "--history-max", "4", NULL });
	for (int i = 0; i < 5; i++) {
		char body[64];

		snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"m%d\"}}", i);
		kas_req(&r, &small, NULL, "POST", "/api/v1/namespaces/lim/services", NULL, body, 0);
		assert_int_equal(r.code, 201);
		kas_resp_free(&r);
	}
	kas_req(&r, &small, NULL, "GET", "/api/v1/services", NULL, NULL, 0);
	assert_int_equal(json_object_array_length(kas_jarr(r.json, "items")), 2);
	assert_string_equal(kas_jget(r.json, "metadata.remainingItemCount"), "3");
	kas_resp_free(&r);
	kas_req(&r, &small, NULL, "GET", "/api/v1/services?limit=100", NULL, NULL, 0);
	assert_int_equal(json_object_array_length(kas_jarr(r.json, "items")), 2);
	kas_resp_free(&r);
	/* Five events, at most four kept: the oldest two (RVs 1 and 2) went. */
	assert_int_equal(kas_stat(&small, "history"), 3);
	assert_int_equal(kas_stat(&small, "compacted"), 2);
	kas_req(&r, &small, NULL, "GET", "/api/v1/services?watch=1&resourceVersion=1", NULL, NULL, 0);
	assert_string_equal(kas_jget(r.json, "object.message"), "too old resource version: 1 (2)");
	kas_resp_free(&r);
	kas_req(&r, &small, NULL, "GET", "/api/v1/services?watch=1&resourceVersion=2&timeoutSeconds=1",
		NULL, NULL, 0);
	assert_int_equal(r.rc, CURLE_OK);
	assert_events(r.body, "ADDED", (const char *[]){ "m2", "m3", "m4", NULL });
	kas_resp_free(&r);
	kas_stop(&small.pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_status_conflict),
		cmocka_unit_test(test_interpose),
		cmocka_unit_test(test_generation),
		cmocka_unit_test(test_lease_conflict),
		cmocka_unit_test(test_token_rotation),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
