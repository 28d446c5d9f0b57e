// SPDX-License-Identifier: BSD-2-Clause
/*
 * The API source's object store: objects trimmed to what ksplit reads,
 * replaced only when they changed, removed by a relist that no longer names
 * them (never flushed first), and thousands of them without a scan.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "kube/store.h"

static struct json_object *obj(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static int put(struct kube_store *s, const char *text, const char *kind, uint64_t gen)
{
	struct json_object *o = obj(text);
	int ret = kube_store_put(s, o, kind, "gateway.networking.k8s.io/v1", gen);

	json_object_put(o);
	return ret;
}

static void test_trim_and_change(void **state)
{
	struct kube_store s = {};
	const struct kube_obj *o;

	(void)state;
	/* A list item: no kind or apiVersion; managedFields and status to drop. */
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"app\","
			     "\"resourceVersion\":\"5\",\"managedFields\":[{\"manager\":\"x\"}],"
			     "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
			     "\"{}\"}},\"spec\":{\"gatewayClassName\":\"ksplit\"},"
			     "\"status\":{\"conditions\":[],\"addresses\":[{\"value\":\"10.0.0.1\"}]}}",
			     "Gateway", 1), 1);
	o = kube_store_get(&s, "app/gw");
	assert_non_null(o);
	assert_string_equal(o->class, "ksplit");
	assert_string_equal(o->json, "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"app\"},"
			    "\"spec\":{\"gatewayClassName\":\"ksplit\"},"
			    "\"kind\":\"Gateway\",\"apiVersion\":\"gateway.networking.k8s.io/v1\","
			    "\"status\":{\"addresses\":[{\"value\":\"10.0.0.1\"}]}}");
	/* Again after a status write: only resourceVersion and managedFields differ, no change. */
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"app\","
			     "\"resourceVersion\":\"9\",\"managedFields\":[]},"
			     "\"spec\":{\"gatewayClassName\":\"ksplit\"},"
			     "\"status\":{\"addresses\":[{\"value\":\"10.0.0.1\"}]}}", "Gateway", 2), 0);
	/* No "\/" in the text: the loader reads it as YAML. */
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"r\",\"namespace\":\"app\"},"
			     "\"spec\":{\"parentRefs\":[{\"name\":\"gw\"},{\"kind\":\"Service\","
			     "\"name\":\"s\",\"namespace\":\"other\"}],\"hostnames\":[\"a/b\"]}}",
			     "HTTPRoute", 2), 1);
	o = kube_store_get(&s, "app/r");
	assert_null(strstr(o->json, "\\/"));
	assert_string_equal(o->gw_parents[0], "app/gw");
	assert_null(o->gw_parents[1]);
	assert_true(o->svc_parent);
	kube_store_free(&s);
}

/* A relist (generation 2) names only some objects: the rest go after it, not before. */
static void test_relist_sweep(void **state)
{
	struct kube_store s = {};
	char text[256];
	int i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(text, sizeof(text), "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"n\"},"
			 "\"spec\":{\"clusterIP\":\"10.96.%d.%d\"}}", i, i / 256, i % 256);
		assert_int_equal(put(&s, text, "Service", 1), 1);
	}
	assert_int_equal(s.n, 5000);
	for (i = 0; i < 5000; i += 2) {
		snprintf(text, sizeof(text), "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"n\"},"
			 "\"spec\":{\"clusterIP\":\"10.96.%d.%d\"}}", i, i / 256, i % 256);
		assert_int_equal(put(&s, text, "Service", 2), 0);
	}
	/* Until the relist is complete every object is still held. */
	assert_int_equal(s.n, 5000);
	assert_int_equal(kube_store_sweep(&s, 2), 2500);
	assert_int_equal(s.n, 2500);
	assert_null(kube_store_get(&s, "n/s1"));
	assert_non_null(kube_store_get(&s, "n/s2"));
	{
		struct json_object *o = obj("{\"metadata\":{\"name\":\"s2\",\"namespace\":\"n\"}}");

		assert_int_equal(kube_store_del(&s, o), 1);
		assert_int_equal(kube_store_del(&s, o), 0);
		json_object_put(o);
	}
	assert_int_equal(s.n, 2499);
	kube_store_free(&s);
}

/*
 * A text a load holds parsed is dropped; its digest still tells a repeat
 * (no change, no text) from an edit (a change, with its text), and a refill
 * brings an unchanged object's text back without making it newer.
 */
static void test_dropped_text(void **state)
{
	static const char a[] = "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
				"\"spec\":{\"clusterIP\":\"10.96.0.1\"}}";
	static const char b[] = "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
				"\"spec\":{\"clusterIP\":\"10.96.0.2\"}}";
	struct kube_store s = {};
	struct kube_obj *o;
	uint64_t ver;

	(void)state;
	assert_int_equal(put(&s, a, "Service", 1), 1);
	o = (struct kube_obj *)kube_store_get(&s, "n/s");
	assert_false(o->keep_text);
	ver = o->ver;
	kube_obj_drop_text(o);
	assert_null(o->json);
	assert_int_equal(put(&s, a, "Service", 2), 0);
	assert_null(kube_store_get(&s, "n/s")->json);
	assert_int_equal(kube_store_get(&s, "n/s")->gen, 2);
	s.refill = true;
	assert_int_equal(put(&s, a, "Service", 3), 1);
	o = (struct kube_obj *)kube_store_get(&s, "n/s");
	assert_non_null(o->json);
	assert_int_equal(o->len, strlen(o->json));
	assert_int_equal(o->ver, ver);
	assert_int_equal(put(&s, a, "Service", 3), 0);
	s.refill = false;
	kube_obj_drop_text(o);
	assert_int_equal(put(&s, b, "Service", 4), 1);
	o = (struct kube_obj *)kube_store_get(&s, "n/s");
	assert_non_null(strstr(o->json, "10.96.0.2"));
	assert_true(o->ver > ver);
	/* Whether a snapshot takes these depends on other objects: their texts stay. */
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"g\",\"namespace\":\"n\"}}",
			     "Gateway", 4), 1);
	assert_true(kube_store_get(&s, "n/g")->keep_text);
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"r\",\"namespace\":\"n\"},"
			     "\"spec\":{\"parentRefs\":[{\"name\":\"g\"}]}}", "HTTPRoute", 4), 1);
	assert_true(kube_store_get(&s, "n/r")->keep_text);
	assert_int_equal(put(&s, "{\"metadata\":{\"name\":\"m\",\"namespace\":\"n\"},"
			     "\"spec\":{\"parentRefs\":[{\"kind\":\"Service\",\"name\":\"s\"}]}}",
			     "HTTPRoute", 4), 1);
	assert_false(kube_store_get(&s, "n/m")->keep_text);
	kube_store_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim_and_change),
		cmocka_unit_test(test_relist_sweep),
		cmocka_unit_test(test_dropped_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
