// SPDX-License-Identifier: BSD-2-Clause
/*
 * Inputs that used to stop the agent's one event loop: a FIFO in the config
 * dir (open() blocked for ever), a huge mapping (duplicate keys compared
 * pairwise) and a huge Service (endpoints de-duplicated pairwise). The
 * results are asserted, never the times: bench/scale_config.sh measures those.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"

#define N_KEYS		200000
#define N_EPS		200000
#define EPS_PER_SLICE	1000

static void dump(const struct ks_diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		fprintf(stderr, "  diag[%zu] %s: %s\n", i, d->v[i].warning ? "warning" : "error",
			d->v[i].msg);
}

static int load_one(const char *name, const char *buf, struct ks_model *m, struct ks_diags *d)
{
	const char *names[] = { name };
	const char *bufs[] = { buf };
	size_t lens[] = { strlen(buf) };

	memset(d, 0, sizeof(*d));
	return ks_model_load_buffers(names, bufs, lens, 1, m, d);
}

/* One mapping of N_KEYS keys k0..k199999, one per line from line 5, then a second k123. */
static void test_many_keys_one_duplicate(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	fputs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n", f);
	for (i = 0; i < N_KEYS; i++)
		fprintf(f, "  k%zu: v\n", i);
	fputs("  k123: again\n", f);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(load_one("t.yaml", buf, &m, &d), -EINVAL);
	if (d.n != 1)
		dump(&d);
	assert_int_equal(d.n, 1);
	/* line 5 + N_KEYS; k123 is on line 5 + 123 */
	assert_string_equal(d.v[0].msg, "t.yaml:200005:3: ConfigMap default/c: data.k123: "
			    "duplicate key 'k123' (first at 128:3)");
	ks_diags_free(&d);
	free(buf);
}

/* Every later copy names the first one, in key order, nested maps included. */
static void test_duplicate_order(void **state)
{
	static const char y[] =
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
		"data: {b: 1, a: 2, b: 3, [x]: 4, a: 5, b: {z: 1, y: 2, z: 3}}\n";
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load_one("t.yaml", y, &m, &d), -EINVAL);
	if (d.n != 5)
		dump(&d);
	assert_int_equal(d.n, 5);
	assert_string_equal(d.v[0].msg, "t.yaml:4:20: ConfigMap default/c: data.b: "
			    "duplicate key 'b' (first at 4:8)");
	assert_string_equal(d.v[1].msg, "t.yaml:4:26: ConfigMap default/c: data: "
			    "mapping keys must be strings, got a list");
	assert_string_equal(d.v[2].msg, "t.yaml:4:34: ConfigMap default/c: data.a: "
			    "duplicate key 'a' (first at 4:14)");
	assert_string_equal(d.v[3].msg, "t.yaml:4:40: ConfigMap default/c: data.b: "
			    "duplicate key 'b' (first at 4:8)");
	assert_string_equal(d.v[4].msg, "t.yaml:4:56: ConfigMap default/c: data.b.z: "
			    "duplicate key 'z' (first at 4:44)");
	ks_diags_free(&d);
}

/* Gateway 10.0.0.1:80 -> Service a port 80 -> slices of port web (8080). */
static void put_route(FILE *f)
{
	fputs("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
	      "metadata: {name: gw, namespace: app}\n"
	      "spec:\n  gatewayClassName: ksplit\n  addresses: [{value: 10.0.0.1}]\n"
	      "  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\n"
	      "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: app}\n"
	      "spec:\n  clusterIP: 10.96.0.10\n  ports: [{name: web, port: 80}]\n---\n"
	      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
	      "metadata: {name: r, namespace: app}\n"
	      "spec:\n  parentRefs: [{name: gw}]\n  rules:\n"
	      "    - backendRefs: [{name: a, port: 80}]\n", f);
}

static void put_slice_head(FILE *f, size_t n)
{
	fprintf(f, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: a-%zu, namespace: app, labels: {kubernetes.io/service-name: a}}\n"
		"addressType: IPv4\nports: [{name: web, port: 8080}]\nendpoints:\n", n);
}

static void put_ep(FILE *f, size_t i, const char *host)
{
	i++;	/* from 10.0.0.1 */
	fprintf(f, "  - addresses: [10.%zu.%zu.%zu]\n", i >> 16, (i >> 8) & 255, i & 255);
	if (host)
		fprintf(f, "    hostname: %s\n", host);
}

/*
 * N_EPS endpoints in slices of EPS_PER_SLICE, plus two copies: one of the
 * first endpoint in the last slice, one of the second in its own slice.
 * Both copies go, the first listing (and its name) stays, order is kept.
 */
static void test_many_endpoints_one_service(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	struct ksm_group *g;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	put_route(f);
	for (i = 0; i < N_EPS; i++) {
		if (i % EPS_PER_SLICE == 0)
			put_slice_head(f, i / EPS_PER_SLICE);
		put_ep(f, i, i == 0 ? "first" : NULL);
		if (i == 1)
			put_ep(f, 1, "copy-in-slice");
	}
	put_ep(f, 0, "copy-across-slices");
	assert_int_equal(fclose(f), 0);

	assert_int_equal(load_one("t.yaml", buf, &m, &d), 0);
	if (d.n)
		dump(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].n_groups, 1);
	g = &m.svcs[0].groups[0];
	assert_int_equal(g->n_eps, N_EPS);
	assert_string_equal(g->eps[0].name, "first");
	for (i = 0; i < N_EPS; i++) {
		size_t a = i + 1;
		uint8_t want[4] = { 10, (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a };

		if (memcmp(g->eps[i].addr.bytes, want, 4) || g->eps[i].port != 8080)
			fail_msg("endpoint %zu out of place", i);
		if (i && g->eps[i].name)
			fail_msg("endpoint %zu has name %s", i, g->eps[i].name);
	}
	ks_model_free(&m);
	ks_diags_free(&d);
	free(buf);
}

/* A FIFO beside a manifest: reported by name and skipped, and it does not block. */
static void test_fifo_in_config_dir(void **state)
{
	char dir[] = "/tmp/ksplit-fifo-XXXXXX", file[64], fifo[64], want[128], cmd[96];
	const char *paths[1] = { dir };
	struct ks_model m;
	struct ks_diags d = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/a.yaml", dir);
	snprintf(fifo, sizeof(fifo), "%s/b.yaml", dir);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	put_route(f);
	put_slice_head(f, 0);
	put_ep(f, 0, NULL);
	assert_int_equal(fclose(f), 0);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs(buf, f);
	assert_int_equal(fclose(f), 0);
	free(buf);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want), "%s: not a regular file; skipped", fifo);

	assert_int_equal(ks_model_load(paths, 1, &m, &d), 0);
	if (d.n != 1)
		dump(&d);
	assert_int_equal(d.n, 1);
	assert_true(d.v[0].warning);
	assert_string_equal(d.v[0].msg, want);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	ks_model_free(&m);
	ks_diags_free(&d);

	/* Named directly, too. */
	paths[0] = fifo;
	assert_int_equal(ks_model_load(paths, 1, &m, &d), 0);
	assert_int_equal(d.n, 1);
	assert_true(d.v[0].warning);
	assert_string_equal(d.v[0].msg, want);
	assert_int_equal(m.n_svcs, 0);
	ks_model_free(&m);
	ks_diags_free(&d);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_keys_one_duplicate),
		cmocka_unit_test(test_duplicate_order),
		cmocka_unit_test(test_many_endpoints_one_service),
		cmocka_unit_test(test_fifo_in_config_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
