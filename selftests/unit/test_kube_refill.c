// SPDX-License-Identifier: BSD-2-Clause
/*
 * The API source drops an object's JSON text once a load holds the object
 * parsed, and the next load takes it from there. A load that finds neither
 * (the kept objects were lost, as a failed load loses them) says -ESTALE;
 * the source then lists every kind again with the texts kept, and the load
 * after it is whole. Against the stand-in API server, over plain HTTP.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>
#include "apiserver/harness.h"
#include "config/config.h"
#include "kube/source.h"

static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* How many of the snapshot's objects have their text (a snapshot takes the changes). */
static size_t texts(struct ks_kube *k, size_t *n)
{
	struct ks_kube_snap s;
	size_t i, t = 0;

	assert_int_equal(ks_kube_snapshot(k, &s), 0);
	for (i = 0; i < s.n; i++)
		t += s.bufs[i] != NULL;
	*n = s.n;
	ks_kube_snap_free(&s);
	return t;
}

/* Drives k for up to 10 s until every kind is synced and, with all, every text is there. */
static bool drive(struct ks_kube *k, bool all)
{
	uint64_t end = ms() + 10000;
	bool changed = false;
	size_t n;

	while (ms() < end) {
		struct pollfd p = { .fd = ks_kube_fd(k), .events = POLLIN };

		poll(&p, 1, 20);
		changed |= ks_kube_process(k);
		if (ks_kube_synced(k) && (!all || (changed && texts(k, &n) == n && n == 3)))
			return changed;
	}
	fail_msg("the API source did not get there in 10 s");
	return false;
}

/* One load of a snapshot; held and the model's endpoints checked by the caller. */
static int load(struct ks_kube *k, struct ks_objects **keep, bool *held, size_t *eps)
{
	struct ks_kube_snap s;
	struct ks_diags d = { 0 };
	struct ks_model m;
	int err;

	assert_int_equal(ks_kube_snapshot(k, &s), 0);
	assert_int_equal(s.n, 3);
	err = ks_model_load_objects(NULL, (const char *const *)s.names, s.bufs, s.lens, s.reuse,
				    s.n, keep, held, &m, &d);
	if (!err) {
		ks_kube_loaded(k, &s, held);
		assert_int_equal(m.n_svcs, 1);
		*eps = m.svcs[0].groups[0].n_eps;
		ks_model_free(&m);
	}
	assert_int_equal(d.n_errors, 0);
	ks_diags_free(&d);
	ks_kube_snap_free(&s);
	return err;
}

static void test_dropped_texts_come_back(void **state)
{
	struct kas_env env = { 0 };
	struct kas_srv srv;
	struct kas_resp r;
	struct ks_kube *k = NULL;
	struct ks_objects *keep = NULL;
	char kc[] = "/tmp/ks-refill-kubeconfig-XXXXXX", err[256];
	bool held[3];
	size_t eps = 0, n;
	FILE *f;
	int fd;

	(void)state;
	kas_start(&srv, &env, false, NULL);
	kas_req(&r, &srv, NULL, "POST", "/_ksplit/load", NULL, "{\"items\":["
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\","
		"\"namespace\":\"app\"},\"spec\":{\"clusterIP\":\"10.96.0.10\",\"ports\":"
		"[{\"name\":\"http\",\"port\":80}]}},"
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
		"{\"name\":\"s-1\",\"namespace\":\"app\",\"labels\":{\"kubernetes.io/service-name\":"
		"\"s\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080}],"
		"\"endpoints\":[{\"addresses\":[\"10.1.0.1\"]},{\"addresses\":[\"10.1.0.2\"]}]},"
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":"
		"{\"name\":\"r\",\"namespace\":\"app\"},\"spec\":{\"parentRefs\":[{\"group\":\"\","
		"\"kind\":\"Service\",\"name\":\"s\",\"port\":80}],\"rules\":[{\"backendRefs\":"
		"[{\"name\":\"s\",\"port\":80}]}]}}]}", 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
	fd = mkstemp(kc);
	assert_true(fd >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		"contexts: [{name: c, context: {cluster: c, user: u}}]\n"
		"clusters: [{name: c, cluster: {server: '%s'}}]\nusers: [{name: u, user: {}}]\n",
		srv.base);
	fclose(f);
	assert_int_equal(ks_kube_new(&(struct ks_kube_opts){ .kubeconfig = kc }, &k, err,
				     sizeof(err)), 0);
	drive(k, false);

	/* The first load parses the three texts and holds them: the source drops them. */
	assert_int_equal(load(k, &keep, held, &eps), 0);
	assert_true(held[0] && held[1] && held[2]);
	assert_int_equal(eps, 2);
	assert_int_equal(texts(k, &n), 0);
	assert_int_equal(n, 3);
	/* The next load takes all three from the kept objects. */
	assert_int_equal(load(k, &keep, held, &eps), 0);
	assert_int_equal(eps, 2);

	/* Kept objects lost: the texts are wanted again, and come back with a relist. */
	ks_objects_free(keep);
	keep = NULL;
	assert_int_equal(load(k, &keep, held, &eps), -ESTALE);
	assert_null(keep);
	ks_kube_refill(k);
	/* Loads wait while it lists; a second refill goes on with the first. */
	assert_false(ks_kube_synced(k));
	ks_kube_refill(k);
	assert_false(ks_kube_synced(k));
	assert_true(drive(k, true));
	eps = 0;
	assert_int_equal(load(k, &keep, held, &eps), 0);
	assert_int_equal(eps, 2);
	assert_int_equal(texts(k, &n), 0);

	ks_objects_free(keep);
	ks_kube_free(k);
	unlink(kc);
	kas_stop(&srv.pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dropped_texts_come_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
