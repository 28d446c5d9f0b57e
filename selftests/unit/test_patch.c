// SPDX-License-Identifier: BSD-2-Clause
/*
 * The incremental load (config/patch.c): after any sequence of EndpointSlice
 * changes patched into a loaded model, its map image is the one a full load
 * of the same objects gives; changes the patch does not take are refused
 * with -EAGAIN and leave model and objects as they were.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "image/image.h"

#define N_SVC 6
#define N_OBJ (3 * N_SVC + 2)

/* Objects as the API source hands them over: names and JSON texts. */
struct objs {
	char *names[N_OBJ];
	char *bufs[N_OBJ];
	size_t lens[N_OBJ];
	size_t n;
};

static void put(struct objs *o, size_t i, const char *name, char *json)
{
	if (i == o->n) {
		o->names[i] = strdup(name);
		o->n++;
	}
	free(o->bufs[i]);
	o->bufs[i] = json;
	o->lens[i] = strlen(json);
}

static char *service(int i)
{
	char *s;

	assert_true(asprintf(&s, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
			     "\"s%d\",\"namespace\":\"t\"},\"spec\":{\"clusterIP\":\"10.96.0.%d\","
			     "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}}",
			     i, i + 1) > 0);
	return s;
}

/* Slice `name` of Service svc: n endpoints from 10.1.<svc>.<base>, flags from bits. */
static char *slice(const char *name, int svc, int n, int base, unsigned bits)
{
	char *s, *eps = strdup(""), *t;
	int k;

	for (k = 0; k < n; k++) {
		assert_true(asprintf(&t, "%s%s{\"addresses\":[\"10.1.%d.%d\"],\"conditions\":"
				     "{\"ready\":%s,\"terminating\":%s}}", eps, k ? "," : "", svc,
				     base + k, (bits >> k) & 1 ? "false" : "true",
				     (bits >> (k + 8)) & 1 ? "true" : "false") > 0);
		free(eps);
		eps = t;
	}
	assert_true(asprintf(&s, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			     "\"metadata\":{\"name\":\"%s\",\"namespace\":\"t\",\"labels\":{"
			     "\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"IPv4\","
			     "\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":[%s]}",
			     name, svc, eps) > 0);
	free(eps);
	return s;
}

/* Route r<i> on Service s<i>, splitting between s<i> and s<(i+1) % N_SVC>. */
static char *route(int i)
{
	char *s;

	assert_true(asprintf(&s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":"
			     "\"HTTPRoute\",\"metadata\":{\"name\":\"r%d\",\"namespace\":\"t\"},"
			     "\"spec\":{\"parentRefs\":[{\"group\":\"\",\"kind\":\"Service\","
			     "\"name\":\"s%d\",\"port\":80}],\"rules\":[{\"backendRefs\":["
			     "{\"name\":\"s%d\",\"port\":80,\"weight\":3},{\"name\":\"s%d\","
			     "\"port\":80,\"weight\":1}]}]}}", i, i, i, (i + 1) % N_SVC) > 0);
	return s;
}

static void objs_init(struct objs *o)
{
	char name[64], sl[16];
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < N_SVC; i++) {
		snprintf(name, sizeof(name), "services/t/s%d", i);
		put(o, o->n, name, service(i));
		snprintf(name, sizeof(name), "endpointslices/t/s%d-a", i);
		snprintf(sl, sizeof(sl), "s%d-a", i);
		put(o, o->n, name, slice(sl, i, 3, 1, 0));
		snprintf(name, sizeof(name), "httproutes/t/r%d", i);
		put(o, o->n, name, route(i));
	}
	/* Service s0 has a second slice. */
	put(o, o->n, "endpointslices/t/s0-b", slice("s0-b", 0, 2, 100, 0));
}

static void objs_free(struct objs *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		free(o->names[i]);
		free(o->bufs[i]);
	}
}

static void assert_images_equal(const struct ks_model *a, const struct ks_model *b)
{
	struct ks_image ia, ib;
	size_t i;

	assert_int_equal(ks_image_build(a, &ia), 0);
	assert_int_equal(ks_image_build(b, &ib), 0);
	assert_int_equal(ia.n, ib.n);
	assert_int_equal(ia.n_backends, ib.n_backends);
	for (i = 0; i < ia.n; i++)
		assert_true(ksi_service_equal(&ia.svcs[i], &ib.svcs[i]));
	ks_image_free(&ia);
	ks_image_free(&ib);
}

static void full_load(const struct objs *o, struct ks_model *m)
{
	struct ks_diags d = { 0 };

	assert_int_equal(ks_model_load_buffers_opts(NULL, (const char *const *)o->names,
						    (const char *const *)o->bufs, o->lens, o->n,
						    m, &d), 0);
	assert_int_equal(d.n_errors, 0);
	ks_diags_free(&d);
}

static void first_load(const struct objs *o, struct ks_objects **keep, struct ks_model *m)
{
	struct ks_diags d = { 0 };

	assert_int_equal(ks_model_load_objects(NULL, (const char *const *)o->names,
					       (const char *const *)o->bufs, o->lens, NULL, o->n,
					       keep, NULL, m, &d), 0);
	assert_int_equal(d.n_errors, 0);
	ks_diags_free(&d);
}

/* Patches object i's new text in; returns the patch's result (committed when 0). */
static int patch_one(struct ks_objects *keep, struct ks_model *m, const struct objs *o, size_t i,
		     struct ks_diags *d)
{
	struct ks_model_patch p;
	const char *name = o->names[i], *buf = o->bufs[i];
	int err = ks_model_patch_slices(keep, m, &name, &buf, &o->lens[i], 1, &p, d);

	if (!err)
		ks_model_patch_commit(m, &p);
	return err;
}

static void test_patched_equals_full(void **state)
{
	struct ks_objects *keep = NULL;
	struct ks_model m, full;
	struct objs o;
	unsigned seed = 11;
	int step;

	(void)state;
	objs_init(&o);
	first_load(&o, &keep, &m);
	for (step = 0; step < 200; step++) {
		struct ks_diags d = { 0 };
		int svc, n;
		size_t i;

		seed = seed * 1103515245 + 12345;
		svc = (int)(seed >> 8) % N_SVC;
		n = (int)(seed >> 16) % 6;
		/* The a slice of svc, or s0's second one. */
		i = (seed >> 20) % 5 ? 3 * (size_t)svc + 1 : 3 * N_SVC;
		if (i == 3 * N_SVC)
			svc = 0;
		put(&o, i, o.names[i], slice(i == 3 * N_SVC ? "s0-b" : strrchr(o.names[i], '/') + 1,
					      svc, n, 1 + (int)(seed >> 24) % 4, seed >> 3));
		assert_int_equal(patch_one(keep, &m, &o, i, &d), 0);
		ks_diags_free(&d);
		full_load(&o, &full);
		assert_images_equal(&m, &full);
		ks_model_free(&full);
	}
	ks_model_free(&m);
	ks_objects_free(keep);
	objs_free(&o);
}

/* A slice left with no endpoints: the full load's warning, word for word. */
static void test_empty_warns_like_full(void **state)
{
	struct ks_objects *keep = NULL, *fkeep = NULL;
	struct ks_diags d = { 0 }, fd = { 0 };
	struct ks_model m, full;
	struct objs o;
	size_t k;
	bool found = false;

	(void)state;
	objs_init(&o);
	first_load(&o, &keep, &m);
	put(&o, 3 * 2 + 1, o.names[3 * 2 + 1], slice("s2-a", 2, 0, 1, 0));
	assert_int_equal(patch_one(keep, &m, &o, 3 * 2 + 1, &d), 0);
	assert_int_equal(d.n_errors, 0);
	/* The API source's own full load: its objects are read as JSON, like the patch's. */
	assert_int_equal(ks_model_load_objects(NULL, (const char *const *)o.names,
					       (const char *const *)o.bufs, o.lens, NULL, o.n,
					       &fkeep, NULL, &full, &fd), 0);
	assert_int_equal(d.n, 2);	/* r2 (backend s2) and r1 (its second backend s2) */
	for (k = 0; k < fd.n; k++)
		found |= !strcmp(fd.v[k].msg, d.v[0].msg);
	assert_true(found);
	assert_non_null(strstr(d.v[0].msg, "Service t/s2 port 80 has no IPv4 endpoints"));
	assert_images_equal(&m, &full);
	ks_model_free(&full);
	ks_diags_free(&d);
	ks_diags_free(&fd);
	ks_model_free(&m);
	ks_objects_free(keep);
	ks_objects_free(fkeep);
	objs_free(&o);
}

/* What the patch does not take: -EAGAIN, and a full load still agrees with the model. */
static void test_refused_changes(void **state)
{
	struct ks_objects *keep = NULL;
	struct ks_model m, full;
	struct ks_diags d = { 0 };
	struct objs o, before;
	const char *name, *buf;
	struct ks_model_patch p;
	size_t len;

	(void)state;
	objs_init(&o);
	objs_init(&before);
	first_load(&o, &keep, &m);
	/* A new slice. */
	name = "endpointslices/t/s3-new";
	buf = slice("s3-new", 3, 1, 50, 0);
	len = strlen(buf);
	assert_int_equal(ks_model_patch_slices(keep, &m, &name, &buf, &len, 1, &p, &d), -EAGAIN);
	free((char *)buf);
	/* A slice that moves to another Service. */
	name = o.names[1];
	buf = slice("s0-a", 4, 1, 50, 0);
	len = strlen(buf);
	assert_int_equal(ks_model_patch_slices(keep, &m, &name, &buf, &len, 1, &p, &d), -EAGAIN);
	free((char *)buf);
	/* A bad one: refused alone is the full load's business. */
	name = o.names[4];
	buf = "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
	      "{\"name\":\"s1-a\",\"namespace\":\"t\",\"labels\":{\"kubernetes.io/service-name\":"
	      "\"s1\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080}],"
	      "\"endpoints\":[{\"addresses\":[\"not-an-ip\"]}]}";
	len = strlen(buf);
	assert_int_equal(ks_model_patch_slices(keep, &m, &name, &buf, &len, 1, &p, &d), -EAGAIN);
	/* Another kind. */
	name = o.names[0];
	buf = o.bufs[0];
	assert_int_equal(ks_model_patch_slices(keep, &m, &name, &buf, &o.lens[0], 1, &p, &d),
			 -EAGAIN);
	assert_int_equal(d.n, 0);
	/* Nothing of those reached the model or the kept objects. */
	full_load(&before, &full);
	assert_images_equal(&m, &full);
	ks_model_free(&full);
	put(&before, 1, before.names[1], slice("s0-a", 0, 4, 7, 0));
	assert_int_equal(patch_one(keep, &m, &before, 1, &d), 0);
	full_load(&before, &full);
	assert_images_equal(&m, &full);
	ks_model_free(&full);
	ks_diags_free(&d);
	ks_model_free(&m);
	ks_objects_free(keep);
	objs_free(&o);
	objs_free(&before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patched_equals_full),
		cmocka_unit_test(test_empty_warns_like_full),
		cmocka_unit_test(test_refused_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
