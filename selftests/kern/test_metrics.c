// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent's /metrics, /healthz and /readyz through the real binary:
 *  - scrape: /readyz says 503 while an adopting agent keeps the pinned state
 *    because its config is invalid, 200 once the fixed config is applied;
 *    the exposition passes `promtool check metrics`, and the connects per
 *    backendRef are exactly what the client counted per server;
 *  - prometheus: Debian's prometheus server scrapes the agent every second
 *    and the observed split is read back with PromQL through its HTTP API;
 *  - group identity: the per-backendRef counters behind the metrics follow
 *    the backendRef, not the group index.
 *
 * Everything prometheus writes lives in /tmp/<tag>-prometheus and the
 * process is a tracked child of the env: kt_env_teardown kills it (by pid)
 * and removes /tmp/<tag>-* on every exit path, a failed assertion or a
 * signal included. A missing promtool or prometheus fails the test
 * (scripts/deps.sh installs them), it does not skip.
 *
 * PromQL tolerance: n = 20,000 connects at 25/75, sigma = sqrt(.25*.75/n)
 * = 0.31 points; the share must be within 1.5 points (almost 5 sigma).
 * increase() extrapolates both backends' series by the same factor (same
 * scrapes), so the ratio is unaffected by it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define N	20000
#define TOL	1.5

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080",
};

static const char *const metrics_port0[] = { "--metrics-addr", "127.0.0.1:0", NULL };

/* The config: Gateway t/gw on 127.10.0.1:80, v1 and v2 with two endpoints each, route r. */
static void put_config(struct kt_agent *t)
{
	struct kt_buf b = {};

	kt_yaml_ab(&b, "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2");
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", "v1=25 v2=75");
	kt_agent_put(t, "00-ab.yaml", b.s);
	kt_buf_free(&b);
}

/* The address the agent logged it serves on (port 0 picked a free one). */
static void metrics_addr(struct kt_agent *t, int nth, char *out, size_t len)
{
	const char *key = "metrics_addr=";
	char line[4096], *p;
	int seen = 0;
	FILE *f;

	assert_true(kt_wait_in_file(t->log, "serving /metrics", nth, 20000) >= nth);
	f = fopen(t->log, "r");
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "serving /metrics") && ++seen == nth && (p = strstr(line, key)))
			snprintf(out, len, "%.*s", (int)strcspn(p + strlen(key), " \n"),
				 p + strlen(key));
	fclose(f);
	printf("  [metrics] agent serves on %s\n", out);
	assert_true(out[0] != '\0');
}

/* GET http://addr/path with HTTP/1.0 over a plain socket; the body (free it), *code the status. */
static char *http_get(const char *addr, const char *path, int *code)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(addr, ':');
	struct kt_buf b = {};
	char host[64], req[4096], buf[65536], *body;
	ssize_t n;
	int fd;

	assert_non_null(colon);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	sa.sin_port = htons(atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		fail_msg("connect %s: %s", addr, strerror(errno));
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	kt_buf_printf(&b, "%s", "");
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		kt_buf_printf(&b, "%s", buf);
	}
	close(fd);
	*code = 0;
	sscanf(b.s, "HTTP/1.%*d %d", code);
	body = strstr(b.s, "\r\n\r\n");
	body = strdup(body ? body + 4 : "");
	kt_buf_free(&b);
	return body;
}

static void expect_code(const char *addr, const char *path, int want)
{
	int code;
	char *body = http_get(addr, path, &code);

	printf("  [metrics] GET %s: %d %s", path, code, body);
	free(body);
	assert_int_equal(code, want);
}

/* The value of the one sample of name whose labels contain every needle. */
static double sample(const char *text, const char *name, const char *n1, const char *n2)
{
	const char *line = text;
	size_t nl = strlen(name);

	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *end = strchr(line, '\n'), *sp;
		char l[8192];

		snprintf(l, sizeof(l), "%.*s", end ? (int)(end - line) : (int)strlen(line), line);
		if (strncmp(l, name, nl) || (l[nl] != '{' && l[nl] != ' '))
			continue;
		if ((n1 && !strstr(l, n1)) || (n2 && !strstr(l, n2)))
			continue;
		sp = strrchr(l, ' ');
		return sp ? atof(sp + 1) : -1;
	}
	fail_msg("no sample %s{%s,%s}", name, n1 ? n1 : "", n2 ? n2 : "");
	return -1;
}

/* `promtool check metrics` on text: exit 0 and nothing said. */
static void promtool_check(struct kt_agent *t, const char *text)
{
	char path[PATH_MAX], cmd[PATH_MAX + 64], *out;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "/tmp/%s-scrape.txt", t->env.tag);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	out = kt_sh_out(cmd, &rc);
	printf("  [promtool] check metrics: exit %d%s%s", rc, *out ? ": " : "\n", out);
	free(out);
	assert_int_equal(rc, 0);
}

static long group_count(const struct kt_result *r, const char *prefix)
{
	long n = 0;
	int i;

	for (i = 0; i < r->ids.n; i++)
		if (!strncmp(r->ids.key[i], prefix, strlen(prefix)))
			n += r->ids.count[i];
	return n;
}

static void run_clients(struct kt_agent *t, long n, struct kt_result *r)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = n };

	assert_int_equal(kt_client_run(&t->env, &o, r), 0);
	kt_result_print("client", r);
	assert_int_equal(r->ok, n);
	assert_int_equal(r->ids.overflow, 0);
}

static void test_metrics_scrape(void **state)
{
	struct kt_agent *t = *state;
	char addr[64], bad[PATH_MAX + 32], *body;
	struct kt_result r;
	int code, applied;

	assert_non_null(t);
	assert_int_equal(kt_servers_start(&t->env, servers, 4), 0);
	put_config(t);
	/* A first agent makes the pins; it serves no traffic, so the counters stay 0. */
	kt_agent_start(t, NULL, metrics_port0, 1);
	kt_agent_stop(t);

	/* Adopting with an invalid config: the pinned state stays in force, not ready. */
	kt_agent_put(t, "50-bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: broken\n");
	kt_agent_start(t, NULL, metrics_port0, 0);
	metrics_addr(t, 2, addr, sizeof(addr));
	assert_true(kt_wait_in_file(t->log, "keeping the pinned datapath state in force", 1, 20000) >= 1);
	expect_code(addr, "/readyz", 503);
	expect_code(addr, "/healthz", 200);
	expect_code(addr, "/nope", 404);
	body = http_get(addr, "/metrics", &code);
	assert_int_equal(code, 200);
	assert_true(sample(body, "ksplit_ready", NULL, NULL) == 0);
	assert_true(sample(body, "ksplit_config_valid", NULL, NULL) == 0);
	assert_true(sample(body, "ksplit_config_errors_total", NULL, NULL) == 1);
	assert_true(sample(body, "ksplit_datapath_up", NULL, NULL) == 1);
	free(body);

	/* The fix is applied: ready. */
	applied = kt_count_in_file(t->log, KT_APPLIED);
	snprintf(bad, sizeof(bad), "%s/50-bad.yaml", t->cfg);
	assert_int_equal(unlink(bad), 0);
	assert_true(kt_wait_in_file(t->log, KT_APPLIED, applied + 1, 20000) > applied);
	expect_code(addr, "/readyz", 200);

	run_clients(t, N, &r);
	body = http_get(addr, "/metrics", &code);
	assert_int_equal(code, 200);
	promtool_check(t, body);
	printf("  [metrics] backend v1 %.0f v2 %.0f service %.0f refused %.0f; client v1 %ld v2 %ld ok %ld\n",
	       sample(body, "ksplit_backend_connects_total", "service=\"v1\"", NULL),
	       sample(body, "ksplit_backend_connects_total", "service=\"v2\"", NULL),
	       sample(body, "ksplit_service_connects_total", "route=\"r\"", NULL),
	       sample(body, "ksplit_service_refused_total", "route=\"r\"", NULL),
	       group_count(&r, "127.1."), group_count(&r, "127.2."), r.ok);
	/* Exact: every connect the client made is counted once, on its backendRef. */
	assert_true(sample(body, "ksplit_backend_connects_total", "service=\"v1\"",
			   "vip=\"127.10.0.1\",port=\"80\",protocol=\"TCP\"") == group_count(&r, "127.1."));
	assert_true(sample(body, "ksplit_backend_connects_total", "service=\"v2\"",
			   "backend_namespace=\"t\",backend=\"t/v2:80\"") == group_count(&r, "127.2."));
	assert_true(sample(body, "ksplit_service_connects_total", "namespace=\"t\",route=\"r\"", NULL) == N);
	assert_true(sample(body, "ksplit_service_refused_total", "route=\"r\"", NULL) == 0);
	assert_true(sample(body, "ksplit_backend_refused_total", "service=\"v1\"", NULL) == 0);
	assert_true(sample(body, "ksplit_backend_passive_ejections_total", "service=\"v2\"", NULL) == 0);
	assert_true(sample(body, "ksplit_backend_weight", "service=\"v1\"", NULL) == 25);
	assert_true(sample(body, "ksplit_backend_weight", "service=\"v2\"", NULL) == 75);
	assert_true(sample(body, "ksplit_backend_endpoints_eligible", "service=\"v1\"", NULL) == 2);
	assert_true(sample(body, "ksplit_backend_endpoints_listed", "service=\"v2\"", NULL) == 2);
	assert_true(sample(body, "ksplit_ready", NULL, NULL) == 1);
	assert_true(sample(body, "ksplit_config_valid", NULL, NULL) == 1);
	assert_true(sample(body, "ksplit_apply_duration_seconds_count", NULL, NULL) == 1);
	assert_true(sample(body, "ksplit_build_info", "version=\"", NULL) == 1);
	free(body);
	kt_agent_stop(t);
}

/* A free TCP port on 127.0.0.1 for prometheus (closed again; the race is the test's to lose). */
static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Percent-encode a PromQL expression for a query string. */
static void urlenc(char *out, size_t len, const char *s)
{
	size_t at = 0;

	for (; *s && at + 4 < len; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    *s == '_' || *s == '.' || *s == '-')
			out[at++] = *s;
		else
			at += snprintf(out + at, len - at, "%%%02X", (unsigned char)*s);
	}
	out[at] = '\0';
}

/*
 * An instant query; the value of the result whose label `by` is `want`
 * (by NULL: the first result), or -1 when there is none yet.
 */
static double promql(const char *prom, const char *q, const char *by, const char *want)
{
	struct json_object *o, *data, *res, *v;
	char path[4096], enc[3072];
	double val = -1;
	char *body;
	size_t i;
	int code;

	urlenc(enc, sizeof(enc), q);
	snprintf(path, sizeof(path), "/api/v1/query?query=%s", enc);
	body = http_get(prom, path, &code);
	o = json_tokener_parse(body);
	if (code != 200 || !o)
		fail_msg("prometheus query %s: HTTP %d: %s", q, code, body);
	free(body);
	if (json_object_object_get_ex(o, "data", &data) &&
	    json_object_object_get_ex(data, "result", &res)) {
		for (i = 0; i < json_object_array_length(res); i++) {
			struct json_object *r = json_object_array_get_idx(res, i), *m, *l;

			if (by && (!json_object_object_get_ex(r, "metric", &m) ||
				   !json_object_object_get_ex(m, by, &l) ||
				   strcmp(json_object_get_string(l), want)))
				continue;
			if (json_object_object_get_ex(r, "value", &v))
				val = atof(json_object_get_string(json_object_array_get_idx(v, 1)));
			break;
		}
	}
	json_object_put(o);
	return val;
}

/* Poll q until its value reaches at least min (or, with min < 0, exists). */
static double promql_wait(const char *prom, const char *q, double min, long timeout_ms)
{
	int64_t end = kt_now_ms() + timeout_ms;
	double v;

	while ((v = promql(prom, q, NULL, NULL)) < (min < 0 ? 0 : min) && kt_now_ms() < end)
		kt_sleep_ms(250);
	return v;
}

static void test_metrics_prometheus(void **state)
{
	struct kt_agent *t = *state;
	char addr[64], prom[64], dir[256], cfg[512], data[512], plog[512];
	char a_cfg[600], a_data[600], a_listen[96];
	const char *q = "sum by (service) (increase(ksplit_backend_connects_total{route=\"r\"}[5m]))";
	/* README's example, verbatim but for the route: the share of each backendRef. */
	const char *share = "sum by (service) (rate(ksplit_backend_connects_total{namespace=\"t\", route=\"r\"}[5m]))\n"
			    "  / ignoring (service) group_left\n"
			    "sum (rate(ksplit_backend_connects_total{namespace=\"t\", route=\"r\"}[5m]))";
	char *argv[] = { "/usr/bin/prometheus", a_cfg, a_data, a_listen, "--log.level=warn", NULL };
	struct kt_result r;
	double v1, v2, seen;
	pid_t pid;
	FILE *f;
	int code;

	assert_non_null(t);
	if (access(argv[0], X_OK))
		fail_msg("%s is missing: run scripts/deps.sh (Debian package prometheus)", argv[0]);
	assert_int_equal(kt_servers_start(&t->env, servers, 4), 0);
	put_config(t);
	kt_agent_start(t, NULL, metrics_port0, 1);
	metrics_addr(t, 1, addr, sizeof(addr));

	/* /tmp/<tag>-prometheus: kt_env_teardown removes it on every exit path. */
	snprintf(dir, sizeof(dir), "/tmp/%s-prometheus", t->env.tag);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(plog, sizeof(plog), "%s/prometheus.log", dir);
	f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(f, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
		   "scrape_configs:\n  - job_name: ksplit\n    static_configs:\n"
		   "      - targets: ['%s']\n", addr);
	assert_int_equal(fclose(f), 0);
	snprintf(prom, sizeof(prom), "127.0.0.1:%d", free_port());
	snprintf(a_cfg, sizeof(a_cfg), "--config.file=%s", cfg);
	snprintf(a_data, sizeof(a_data), "--storage.tsdb.path=%s", data);
	snprintf(a_listen, sizeof(a_listen), "--web.listen-address=%s", prom);
	pid = kt_spawn(&t->env, argv, plog);
	assert_true(pid > 0);
	printf("  [prometheus] pid %d on %s, scraping %s every 1 s\n", pid, prom, addr);

	/* Wait for prometheus to answer and to have scraped the zero counters once. */
	{
		int64_t end = kt_now_ms() + 60000;
		char *body = NULL;

		do {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_in sa = { .sin_family = AF_INET,
						  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
						  .sin_port = htons(atoi(strrchr(prom, ':') + 1)) };
			bool up = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));

			close(fd);
			if (up) {
				body = http_get(prom, "/-/ready", &code);
				free(body);
				if (code == 200)
					break;
			}
			kt_sleep_ms(250);
		} while (kt_now_ms() < end);
		assert_int_equal(code, 200);
	}
	seen = promql_wait(prom, "count(ksplit_backend_connects_total{route=\"r\"})", 2, 30000);
	printf("  [prometheus] series of ksplit_backend_connects_total: %.0f\n", seen);
	assert_true(seen == 2);

	run_clients(t, N, &r);
	/* Until a scrape has seen every connect. */
	seen = promql_wait(prom, "sum(ksplit_backend_connects_total{route=\"r\"})", N, 30000);
	assert_true(seen == N);
	v1 = promql(prom, q, "service", "v1");
	v2 = promql(prom, q, "service", "v2");
	printf("  [promql] %s: v1 %.1f v2 %.1f (client: v1 %ld v2 %ld)\n", q, v1, v2,
	       group_count(&r, "127.1."), group_count(&r, "127.2."));
	assert_true(v1 > 0 && v2 > 0);
	kt_assert_share("PromQL v1 (weight 25)", lround(v1), lround(v1 + v2), 25, TOL);
	kt_assert_share("PromQL v2 (weight 75)", lround(v2), lround(v1 + v2), 75, TOL);
	v1 = promql(prom, share, "service", "v1");
	printf("  [promql] README share query: v1 %.4f\n", v1);
	assert_true(v1 > 0);
	kt_assert_share("README share query, v1", lround(v1 * N), N, 25, TOL);

	assert_true(kt_stop(&t->env, pid, SIGTERM, 10000) != -1);
	kt_agent_stop(t);
}

static void apply_route(struct kt_env *e, const char *backends)
{
	struct kt_buf b = {};

	kt_yaml_ab(&b, "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2");
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", backends);
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
}

static void assert_group_connects(struct kt_env *e, const char *when, long g0, long g1)
{
	struct ks_group_stats s0, s1;

	assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 0, &s0), 0);
	assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 1, &s1), 0);
	printf("  [groups] %s: group 0 %llu, group 1 %llu\n", when,
	       (unsigned long long)s0.connects, (unsigned long long)s1.connects);
	assert_int_equal(s0.connects, g0);
	assert_int_equal(s1.connects, g1);
}

/*
 * A backendRef's counters stay with it: a weight change keeps them, and a
 * group index that starts naming another backendRef starts again at zero
 * (else v2's connects would be reported as v1's).
 */
static void test_group_identity(void **state)
{
	struct kt_env *e = *state;
	struct kt_result r;
	long v1, v2;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	assert_int_equal(kt_servers_start(e, servers, 4), 0);
	apply_route(e, "v1=25 v2=75");
	{
		struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = 2000 };

		assert_int_equal(kt_client_run(e, &o, &r), 0);
		assert_int_equal(r.ok, 2000);
	}
	v1 = group_count(&r, "127.1.");
	v2 = group_count(&r, "127.2.");
	assert_group_connects(e, "after 2000 connects", v1, v2);
	apply_route(e, "v1=50 v2=50");
	assert_group_connects(e, "weights changed", v1, v2);
	apply_route(e, "v2=50 v1=50");
	assert_group_connects(e, "backendRefs swapped", 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_scrape, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_prometheus, kt_agent_setup,
						kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_group_identity, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
