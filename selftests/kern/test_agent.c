// SPDX-License-Identifier: BSD-2-Clause
/*
 * The real binary, as an operator runs it: `ksplit run` on a manifest
 * directory, restarts that adopt the pinned state, a route edit by atomic
 * rename, an invalid manifest, `ksplit status --json`, `ksplit down`.
 * A client connects the whole time and must never see a failed connect.
 *
 * Shares: n = 40,000, sigma <= 0.22 points at 25/75, tolerance 1 point.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define N	kt_scaled(40000)
#define TOL	1.0

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080",
};

static void put_route(struct kt_agent *t, int w1, int w2)
{
	struct kt_buf b = {};
	char be[64];

	snprintf(be, sizeof(be), "v1=%d v2=%d", w1, w2);
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", be);
	kt_agent_put(t, "40-route.yaml", b.s);
	kt_buf_free(&b);
}

static const char *const limits[] = { "--max-services", "4096", "--max-endpoints", "65536",
				      NULL };

static long total_ok;	/* every successful connect of this test, for the status check */

static void measure(struct kt_agent *t, const char *what, double w1)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };
	struct kt_result r;
	long v1 = 0;
	int i;

	assert_int_equal(kt_client_run(&t->env, &o, &r), 0);
	kt_result_print(what, &r);
	assert_int_equal(r.failed, 0);
	for (i = 0; i < r.ids.n; i++)
		if (!strncmp(r.ids.key[i], "127.1.", 6))
			v1 += r.ids.count[i];
	kt_assert_share(what, v1, N, w1, TOL);
	total_ok += r.ok;
}

static void test_agent_lifecycle(void **state)
{
	struct kt_agent *t = *state;
	struct kt_client_opts lo = { .target = "127.10.0.1:80", .mode = KT_TCP, .loop = true,
				     .timeout_s = 240 };
	struct json_object *st, *svc;
	struct kt_client live;
	struct kt_result fin;
	struct kt_buf b = {};
	char args[1024], *out;
	int rc, applied;

	assert_non_null(t);
	assert_int_equal(kt_servers_start(&t->env, servers, 4), 0);
	kt_yaml_gateway(&b, "gw", "127.10.0.1", "http:HTTP:80");
	kt_agent_put(t, "00-gateway.yaml", b.s);
	kt_buf_free(&b);
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", "127.1.0.1 127.1.0.2");
	kt_yaml_service(&b, "v2", 80, NULL);
	kt_yaml_slice(&b, "v2", "IPv4", "127.2.0.1 127.2.0.2");
	kt_agent_put(t, "10-backends.yaml", b.s);
	kt_buf_free(&b);
	put_route(t, 25, 75);

	kt_agent_start(t, NULL, limits, 1);
	assert_int_equal(kt_client_start(&t->env, &lo, &live), 0);
	measure(t, "agent 1, 25/75", 25);

	/* Stopped agent: the pinned datapath keeps serving. */
	kt_agent_stop(t);
	measure(t, "agent stopped, 25/75", 25);

	/* Restart: adopts the pinned state, re-applies the same config. */
	kt_agent_start(t, NULL, limits, 2);
	assert_true(kt_count_in_file(t->log, "adopted pinned datapath") >= 1);
	measure(t, "agent 2 (adopted), 25/75", 25);
	kt_agent_stop(t);

	kt_agent_start(t, NULL, limits, 3);
	/* Route edit: weights flip once the agent has applied it. */
	applied = kt_count_in_file(t->log, KT_APPLIED);
	put_route(t, 75, 25);
	assert_true(kt_wait_in_file(t->log, KT_APPLIED, applied + 1, 20000) > applied);
	measure(t, "route edited to 75/25", 75);

	/* A file with a YAML syntax error loses only its own objects; the rest keeps working. */
	kt_agent_put(t, "50-bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: broken\n");
	assert_true(kt_wait_in_file(t->log, "50-bad.yaml:", 1, 20000) >= 1);
	printf("  [agent] invalid manifest: its error logged\n");
	measure(t, "after a broken file, 75/25", 75);

	/*
	 * Invalid routes next to the working one are refused alone, each logged
	 * with its Gateway API reason; the working split does not move.
	 */
	applied = kt_count_in_file(t->log, KT_APPLIED);
	kt_agent_put(t, "60-others.yaml",
		     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		     "metadata: {name: lost, namespace: t}\n"
		     "spec: {parentRefs: [{name: nogw}], rules: [{backendRefs: [{name: v1, port: 80}]}]}\n"
		     "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		     "metadata: {name: l7, namespace: t}\n"
		     "spec: {parentRefs: [{name: gw}], rules: [{matches: [{headers: [{name: x, "
		     "value: y}]}], backendRefs: [{name: v1, port: 80}]}]}\n");
	assert_true(kt_wait_in_file(t->log, "reason=NoMatchingParent", 1, 20000) >= 1);
	assert_true(kt_wait_in_file(t->log, "route refused; not programmed", 1, 20000) >= 1);
	assert_true(kt_wait_in_file(t->log, KT_APPLIED, applied + 1, 20000) > applied);
	assert_true(kt_count_in_file(t->log, "route=\"HTTPRoute t/lost\"") >= 1);
	assert_true(kt_count_in_file(t->log, "route=\"HTTPRoute t/l7\"") >= 1);
	printf("  [agent] two invalid routes refused alone, with reasons\n");
	measure(t, "invalid routes beside it, 75/25", 75);

	/* The working route edited into one ksplit refuses: its last good version stays. */
	kt_agent_put(t, "40-route.yaml",
		     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		     "metadata: {name: r, namespace: t}\n"
		     "spec: {parentRefs: [{name: gw, sectionName: http}], rules: [{matches: [{path: "
		     "{type: Exact, value: /x}}], backendRefs: [{name: v1, port: 80, weight: 50}, "
		     "{name: v2, port: 80, weight: 50}]}]}\n");
	assert_true(kt_wait_in_file(t->log, "its last good version stays in force", 1, 20000) >= 1);
	printf("  [agent] route edited into a refused one: last good version kept\n");
	measure(t, "refused edit, last good 75/25", 75);

	assert_int_equal(kt_client_stop(&t->env, &live), 0);
	fin = *live.res;
	kt_client_free(&live);
	kt_result_print("live client, whole run", &fin);
	assert_true(fin.ok > 1000);
	assert_int_equal(fin.failed, 0);
	total_ok += fin.ok;

	/* status --json: counters survived both restarts and count every connect exactly. */
	snprintf(args, sizeof(args), "status --json --pin-dir %s", t->env.pin_dir);
	out = kt_ksplit_out(t, args, &rc);
	assert_int_equal(rc, 0);
	st = json_tokener_parse(out);
	free(out);
	assert_non_null(st);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	printf("  [status] connections %ld refused %ld, clients counted %ld\n",
	       kt_status_field(svc, "connections"), kt_status_field(svc, "refused"), total_ok);
	assert_int_equal(kt_status_field(svc, "connections"), total_ok);
	assert_int_equal(kt_status_field(svc, "refused"), 0);
	json_object_put(st);

	kt_agent_stop(t);
	snprintf(args, sizeof(args), "down --pin-dir %s", t->env.pin_dir);
	out = kt_ksplit_out(t, args, &rc);
	printf("  [down] %s", out);
	free(out);
	assert_int_equal(rc, 0);
	assert_int_equal(access(t->env.pin_dir, F_OK), -1);
	t->env.pins_made = false;

	/* bpftool's view of the cgroup: not one program left. */
	snprintf(args, sizeof(args), "bpftool cgroup show %s", t->env.cgroup);
	{
		char *line;
		int progs = 0;

		out = kt_sh_out(args, &rc);
		for (line = out; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
			if (*line >= '0' && *line <= '9')
				progs++;
		free(out);
		printf("  [down] bpftool cgroup show: %d program(s), exit %d\n", progs, rc);
		assert_int_equal(progs, 0);
		assert_int_equal(rc, 0);
	}

	/* And with the datapath gone, the VIP is plain 127.10.0.1 again: refused. */
	{
		struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = 100 };
		struct kt_result r;

		assert_int_equal(kt_client_run(&t->env, &o, &r), 0);
		assert_int_equal(r.err[ECONNREFUSED], 100);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_lifecycle, kt_agent_setup, kt_agent_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
