// SPDX-License-Identifier: BSD-2-Clause
/*
 * Health through the real agent (build/ksplit run, inside the test netns as
 * a hostNetwork agent would be, so its checks reach the pods): active checks
 * take a killed backend out within interval x threshold; a dead version's
 * share shifts (default) or is refused (empty-group: reject); when nothing is
 * left the route panics. Backends are build/ks_server, which answers
 * GET /health.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define INTERVAL_S 5
#define UNHEALTHY 2

struct hctx {
	char dir[64];		/* config dir */
	char log[96];
	char bin[PATH_MAX];	/* build/ */
	pid_t agent;
	pid_t pods[4];		/* v1a v1b v2a v2b */
};

static const char *const pod_addr[] = { "127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080",
					"127.2.0.2:8080" };

static void write_config(struct hctx *h, const char *route_ann, bool v1_checked)
{
	struct kt_buf b = {};
	char path[128], tmp[140];
	FILE *f;

	kt_yaml_ab(&b, "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2");
	kt_yaml_route_ann(&b, "HTTPRoute", "r", "gw/http", "v1=25 v2=75", route_ann);
	for (int i = 0; i < 2; i++) {
		if (i == 0 && !v1_checked)
			continue;
		kt_buf_printf(&b, "---\napiVersion: application-networking.k8s.aws/v1alpha1\n"
			      "kind: TargetGroupPolicy\nmetadata: {name: p%d, namespace: t}\n"
			      "spec:\n  targetRef: {group: \"\", kind: Service, name: v%d}\n"
			      "  healthCheck: {enabled: true, path: /health, intervalSeconds: %d,\n"
			      "    timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: %d}\n",
			      i + 1, i + 1, INTERVAL_S, UNHEALTHY);
	}
	snprintf(path, sizeof(path), "%s/m.yaml", h->dir);
	snprintf(tmp, sizeof(tmp), "%s/.m.tmp", h->dir);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(b.s, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
	kt_buf_free(&b);
}

static void start(struct kt_env *e, struct hctx *h, const char *route_ann, bool v1_checked)
{
	char srv[PATH_MAX + 16], ks[PATH_MAX + 16];
	int i;

	assert_int_equal(kt_build_dir(h->bin, sizeof(h->bin)), 0);
	snprintf(srv, sizeof(srv), "%s/ks_server", h->bin);
	snprintf(ks, sizeof(ks), "%s/ksplit", h->bin);
	snprintf(h->dir, sizeof(h->dir), "/tmp/%s-cfg", e->tag);
	snprintf(h->log, sizeof(h->log), "/tmp/%s-agent.log", e->tag);
	assert_int_equal(mkdir(h->dir, 0700), 0);
	for (i = 0; i < 4; i++) {
		char *args[] = { srv, "--listen", (char *)pod_addr[i], "--id", (char *)pod_addr[i], NULL };

		h->pods[i] = kt_spawn_in_netns(e, args, "/dev/null");
		assert_true(h->pods[i] > 0);
	}
	write_config(h, route_ann, v1_checked);
	{
		char *args[] = { ks, "run", KT_LOOPBACK, "--config", h->dir, "--cgroup", e->cgroup,
				 "--pin-dir", e->pin_dir, NULL };

		e->pins_made = true;
		h->agent = kt_spawn_in_netns(e, args, h->log);
	}
	assert_true(kt_wait_in_file(h->log, "msg=\"config applied\"", 1, 20000) >= 1);
}

static void stop(struct kt_env *e, struct hctx *h)
{
	char path[160];

	kt_stop(e, h->agent, SIGTERM, 5000);
	snprintf(path, sizeof(path), "%s/m.yaml", h->dir);
	unlink(path);
	rmdir(h->dir);
	if (getenv("KT_VERBOSE")) {
		snprintf(path, sizeof(path), "cat %s >&2", h->log);
		if (system(path) != 0)
			fprintf(stderr, "cannot show %s\n", h->log);
	}
	unlink(h->log);
}

/*
 * The client is build/ks_load (it sends a request line, which ks_server
 * waits for), joined to the test cgroup and netns like the harness client.
 */
struct lres {
	long ok, failed, refused;
	long ids[4];
};

static void run(struct kt_env *e, struct hctx *h, long n, struct lres *r)
{
	char cmd[PATH_MAX * 2 + 1024], out[8192];
	struct json_object *j, *v, *ids;
	size_t len;
	FILE *p;
	int i;

	snprintf(cmd, sizeof(cmd),
		 "sh -c 'echo $$ > %s/cgroup.procs && exec nsenter --net=%s timeout 60 %s/ks_load "
		 "--target 127.10.0.1:80 -n %ld --timeout-ms 500 --json'",
		 e->cgroup, e->netns_path, h->bin, n);
	p = popen(cmd, "r");
	assert_non_null(p);
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = 0;
	assert_int_equal(pclose(p), 0);
	j = json_tokener_parse(out);
	assert_non_null(j);
	memset(r, 0, sizeof(*r));
	json_object_object_get_ex(j, "ok", &v);
	r->ok = json_object_get_int64(v);
	r->failed = n - r->ok;
	if (json_object_object_get_ex(j, "errors", &v) &&
	    json_object_object_get_ex(v, "ECONNREFUSED", &v))
		r->refused = json_object_get_int64(v);
	json_object_object_get_ex(j, "ids", &ids);
	for (i = 0; i < 4; i++)
		if (json_object_object_get_ex(ids, pod_addr[i], &v))
			r->ids[i] = json_object_get_int64(v);
	printf("  [client] %ld connects: ok %ld failed %ld (refused %ld); v1a %ld v1b %ld v2a %ld v2b %ld\n",
	       n, r->ok, r->failed, r->refused, r->ids[0], r->ids[1], r->ids[2], r->ids[3]);
	json_object_put(j);
}

static const char *svc_mode(struct kt_env *e)
{
	static char mode[32];
	struct json_object *st = kt_status(e), *svc = kt_status_svc(st, "127.10.0.1", 80, "TCP"), *v;

	mode[0] = 0;
	if (svc && json_object_object_get_ex(svc, "mode", &v))
		snprintf(mode, sizeof(mode), "%s", json_object_get_string(v));
	json_object_put(st);
	return mode;
}

/* Active checks only (passive off): a killed pod is out within interval x threshold + 1 s. */
static void test_active_kill_under_load(void **state)
{
	struct kt_env *e = *state;
	struct hctx h = {};
	struct lres r;
	int64_t t_kill, t_out;
	int before;

	start(e, &h, "ksplit.io/passive-failures: \"0\"", false);
	run(e, &h, 4000, &r);
	assert_int_equal(r.failed, 0);
	kt_assert_share("v2a before the kill", r.ids[2], r.ok, 37.5, 3);

	before = kt_count_in_file(h.log, "to=unhealthy");
	kt_stop(e, h.pods[2], SIGKILL, 2000);
	t_kill = kt_now_ns();
	assert_true(kt_wait_in_file(h.log, "to=unhealthy", before + 1,
				    (INTERVAL_S * UNHEALTHY + 2) * 1000) > before);
	assert_true(kt_wait_in_file(h.log, "reason=health", 1, 2000) >= 1);
	t_out = kt_now_ns();
	printf("  [active] killed pod marked unhealthy and out of rotation %.2f s after the kill (bound %d s)\n",
	       (t_out - t_kill) / 1e9, INTERVAL_S * UNHEALTHY + 1);
	assert_true(t_out - t_kill <= (int64_t)(INTERVAL_S * UNHEALTHY + 1) * 1000000000LL);
	run(e, &h, 4000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.ids[2], 0);
	kt_assert_share("v2b takes v2's share", r.ids[3], r.ok, 75, 3);
	stop(e, &h);
}

static void kill_v2_and_wait(struct kt_env *e, struct hctx *h, const char *needle)
{
	int before = kt_count_in_file(h->log, needle);

	kt_stop(e, h->pods[2], SIGKILL, 2000);
	kt_stop(e, h->pods[3], SIGKILL, 2000);
	assert_true(kt_wait_in_file(h->log, needle, before + 1, (INTERVAL_S * UNHEALTHY + 3) * 1000) >
		    before);
}

static void test_all_v2_killed_shift(void **state)
{
	struct kt_env *e = *state;
	struct hctx h = {};
	struct lres r;

	start(e, &h, NULL, false);
	kill_v2_and_wait(e, &h, "msg=\"degraded");
	run(e, &h, 4000, &r);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.ids[0] + r.ids[1], 4000);
	assert_string_equal(svc_mode(e), "degraded");
	stop(e, &h);
}

static void test_all_v2_killed_reject(void **state)
{
	struct kt_env *e = *state;
	struct hctx h = {};
	struct lres r;
	int before;

	start(e, &h, "ksplit.io/empty-group: reject", false);
	before = kt_count_in_file(h.log, "to=unhealthy");
	kt_stop(e, h.pods[2], SIGKILL, 2000);
	kt_stop(e, h.pods[3], SIGKILL, 2000);
	assert_true(kt_wait_in_file(h.log, "to=unhealthy", before + 2,
				    (INTERVAL_S * UNHEALTHY + 3) * 1000) >= before + 2);
	assert_true(kt_wait_in_file(h.log, "reason=health", 1, 2000) >= 1);
	usleep(200000);
	run(e, &h, 20000, &r);
	assert_int_equal(r.failed, r.refused);
	kt_assert_share("refused share of dead v2 (reject)", r.failed, 20000, 75, 1.5);
	assert_string_equal(svc_mode(e), "normal");
	stop(e, &h);
}

static void test_everything_killed_panic(void **state)
{
	struct kt_env *e = *state;
	struct hctx h = {};
	struct lres r;
	int before;

	start(e, &h, NULL, true);
	before = kt_count_in_file(h.log, "msg=\"panic");
	for (int i = 0; i < 4; i++)
		kt_stop(e, h.pods[i], SIGKILL, 2000);
	assert_true(kt_wait_in_file(h.log, "msg=\"panic", before + 1,
				    (INTERVAL_S * UNHEALTHY + 3) * 1000) > before);
	assert_string_equal(svc_mode(e), "panic");
	/* Fail open: every ready endpoint is used again; the connects reach the dead pods. */
	run(e, &h, 400, &r);
	assert_int_equal(r.failed, 400);
	assert_int_equal(r.refused, 400);	/* the dead pods' kernels answer RST */
	stop(e, &h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_active_kill_under_load, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_all_v2_killed_shift, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_all_v2_killed_reject, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_everything_killed_panic, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
