// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ksplit binary's error contract, run as a user runs it (posix_spawn,
 * no shell): every error exits 1; under --json it is one JSON object with
 * an "error" key on stdout, otherwise "ksplit <cmd>: ..." on stderr. None
 * of these touch a BPF object, so no root is needed.
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "test_exec.h"

extern char **environ;

struct run {
	int status;		/* exit status */
	char out[16384];	/* stdout */
	char err[16384];	/* stderr */
};

static void slurp(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
}

/* build/selftests/unit/test_cli -> build/ksplit (also for build-san/). */
static void ksplit(struct run *r, ...)
{
	char exe[PATH_MAX], bin[PATH_MAX + 16], *argv[16] = { bin };
	posix_spawn_file_actions_t fa;
	FILE *out = tmpfile(), *err = tmpfile();
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t i = 1;
	va_list ap;
	pid_t pid;

	assert_true(n > 0);
	exe[n] = 0;
	snprintf(bin, sizeof(bin), "%s/../../ksplit", dirname(exe));
	if (access(bin, X_OK))
		fail_msg("%s not found: run `make` first", bin);
	va_start(ap, r);
	while (i < 15 && (argv[i] = va_arg(ap, char *)))
		i++;
	va_end(ap);
	argv[i] = NULL;
	assert_int_equal(ks_test_exec_wrap(argv, 16), 0);
	assert_non_null(out);
	assert_non_null(err);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_adddup2(&fa, fileno(out), STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fileno(err), STDERR_FILENO);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
	assert_true(WIFEXITED(r->status));
	r->status = WEXITSTATUS(r->status);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
}

/* stdout is exactly one JSON object (whitespace around it aside) with "error". */
static struct json_object *json_error(const struct run *r)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(r->out);
	struct json_object *o, *e;
	size_t end;

	assert_non_null(tok);
	o = json_tokener_parse_ex(tok, r->out, len);
	assert_non_null(o);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	assert_int_equal(strspn(r->out + end, " \n"), len - end);
	assert_true(json_object_is_type(o, json_type_object));
	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_true(json_object_is_type(e, json_type_string));
	assert_true(json_object_get_string_len(e) > 0);
	return o;
}

static void test_status_json_missing_pin_dir(void **state)
{
	struct run r;
	struct json_object *o;

	(void)state;
	ksplit(&r, "status", "--json", "--pin-dir", "/nonexistent", NULL);
	assert_int_equal(r.status, 1);
	o = json_error(&r);
	assert_non_null(strstr(json_object_get_string(json_object_object_get(o, "error")),
			       "cannot read pinned maps in /nonexistent"));
	json_object_put(o);
}

static void test_status_text_missing_pin_dir(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "status", "--pin-dir", "/nonexistent", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "ksplit status: cannot read pinned maps in /nonexistent: "));
}

/* down fails half-way on a pin dir that is a file: one object, result and error. */
static void test_down_json_error_keeps_result(void **state)
{
	char path[] = "/tmp/ksplit-test-cli-XXXXXX";
	struct json_object *o, *v;
	struct run r;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	ksplit(&r, "down", "--json", "--pin-dir", path, NULL);
	unlink(path);
	assert_int_equal(r.status, 1);
	o = json_error(&r);
	assert_true(json_object_object_get_ex(o, "ok", &v));
	assert_false(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "removed", &v));
	assert_int_equal(json_object_get_int(v), 0);
	json_object_put(o);
}

static void test_option_errors_json(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "validate", "--json", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "status", "--json", "--bogus", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "down", "--json", "--pin-dir", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "run", "--json", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
}

/* --allow-loopback-vips is an option of run and validate only. */
static void test_allow_loopback_vips(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "validate", "--allow-loopback-vips", "/nonexistent.yaml", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "error: /nonexistent.yaml: No such file or directory"));
	ksplit(&r, "run", "--allow-loopback-vips", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "at least one --config PATH, or --kubeconfig FILE, is "
				      "required"));
	ksplit(&r, "status", "--allow-loopback-vips", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "allow-loopback-vips"));
	ksplit(&r, "validate", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "validate [--json] [--strict] [--allow-loopback-vips] PATH..."));
}

static void test_unknown_command_and_help(void **state)
{
	static const char *const names[] = { "run", "validate", "status", "down", "probe", "version",
					     "help" };
	char line[32];
	struct run r;
	size_t i;

	(void)state;
	ksplit(&r, "bogus", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "ksplit: unknown command 'bogus'"));
	ksplit(&r, "help", NULL);
	assert_int_equal(r.status, 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(line, sizeof(line), "\n  %s", names[i]);
		assert_non_null(strstr(r.out, line));
	}
	ksplit(&r, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\n  status [--json] [--pin-dir DIR]\n"));
}

/* One manifest file in a fresh directory; returns the directory. */
static char *manifest_dir(char *dir, const char *yaml)
{
	char path[PATH_MAX];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/all.yaml", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(yaml, f);
	assert_int_equal(fclose(f), 0);
	return dir;
}

static void manifest_rm(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/all.yaml", dir);
	unlink(path);
	rmdir(dir);
}

#define YGW(name, addr)                                                             \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"                 \
	"metadata: {name: " name ", namespace: app}\n"                              \
	"spec: {gatewayClassName: ksplit, addresses: [{value: '" addr "'}], "       \
	"listeners: [{name: http, port: 80, protocol: HTTP}]}\n---\n"
#define YSVC(ns, name, fam, ep, cond)                                               \
	"apiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: " ns "}\n" \
	"spec: {clusterIP: 10.96.0.9, ports: [{name: http, port: 80}]}\n---\n"      \
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"                    \
	"metadata: {name: " name "-" fam ", namespace: " ns ", labels: "            \
	"{kubernetes.io/service-name: " name "}}\n"                                 \
	"addressType: " fam "\nports: [{name: http, port: 8080}]\n"                 \
	"endpoints: [{addresses: ['" ep "'], conditions: " cond "}]\n---\n"
#define YROUTE(name, parent, refs)                                                  \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"               \
	"metadata: {name: " name ", namespace: app}\n"                              \
	"spec: {parentRefs: [{name: " parent "}], rules: [{backendRefs: [" refs "]}]}\n---\n"

/*
 * validate's report: each route's verdict, each service's refused share,
 * endpoints eligible of listed, IPv6 in brackets; exit 1 for a route not
 * accepted, and with --strict for a refused share.
 */
static void test_validate_report(void **state)
{
	static const char good[] =
		YGW("gw", "10.0.0.1") YGW("gw6", "fd00::1")
		YSVC("app", "a", "IPv4", "192.0.2.1", "{}")
		YSVC("app", "a6", "IPv6", "fd00:2::1", "{}")
		YSVC("app", "t", "IPv4", "192.0.2.3", "{ready: false, terminating: true}")
		YSVC("other", "c", "IPv4", "192.0.2.2", "{}")
		YROUTE("r1", "gw", "{name: a, port: 80, weight: 1}, "
		       "{name: c, namespace: other, port: 80, weight: 3}, "
		       "{name: t, port: 80, weight: 0}")
		YROUTE("r6", "gw6", "{name: a6, port: 80}");
	char dir[] = "/tmp/ks-validate-XXXXXX", *yaml;
	struct json_object *o, *routes, *svc;
	struct run r;

	(void)state;
	manifest_dir(dir, good);
	ksplit(&r, "validate", dir, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\nHTTPRoute app/r1 ("));
	assert_non_null(strstr(r.out, "all.yaml:59): accepted\n"
				      "  parent Gateway app/gw: 1 programmed\n"
				      "    Accepted=True Accepted\n"
				      "    ResolvedRefs=False RefNotPermitted: no ReferenceGrant in "
				      "namespace other allows HTTPRoute from namespace app to "
				      "Service c\n"));
	assert_non_null(strstr(r.out, "10.0.0.1:80/TCP <- HTTPRoute app/r1\n"
				      "  !! 75% of connects will be refused: RefNotPermitted\n"));
	assert_non_null(strstr(r.out, "  app/t:80                                 weight 0 "
				      "         0.0%  endpoints 0 of 1 eligible\n"));
	assert_non_null(strstr(r.out, "[fd00::1]:80/TCP <- HTTPRoute app/r6\n"
				      "  app/a6:80                                weight 1 "
				      "       100.0%  endpoints 1 of 1 eligible\n"));
	assert_non_null(strstr(r.out, "valid: 0 error(s), 1 warning(s), 2 route(s) of which 0 "
				      "not accepted, 2 service(s) of which 1 with a refused share\n"));
	ksplit(&r, "validate", "--strict", dir, NULL);
	assert_int_equal(r.status, 1);
	ksplit(&r, "validate", "--json", dir, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(o = json_tokener_parse(r.out));
	assert_true(json_object_get_boolean(json_object_object_get(o, "valid")));
	routes = json_object_object_get(o, "routes");
	assert_int_equal(json_object_array_length(routes), 2);
	svc = json_object_array_get_idx(json_object_object_get(o, "services"), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(svc, "address")),
			    "10.0.0.1:80");
	assert_true(json_object_get_double(json_object_object_get(svc, "refusedPercent")) == 75.0);
	json_object_put(o);
	manifest_rm(dir);

	/* One route not accepted: exit 1, the other still reported as programmed. */
	assert_true(asprintf(&yaml, "%s%s", good, YROUTE("lost", "nogw", "{name: a, port: 80}")) > 0);
	strcpy(dir, "/tmp/ks-validate-XXXXXX");
	manifest_dir(dir, yaml);
	free(yaml);
	ksplit(&r, "validate", dir, NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "\nHTTPRoute app/lost ("));
	assert_non_null(strstr(r.out, "): NOT accepted\n  parent Gateway app/nogw: 0 programmed\n"
				      "    Accepted=False NoMatchingParent: Gateway app/nogw not "
				      "found\n"));
	assert_non_null(strstr(r.out, "invalid: 1 error(s), 1 warning(s), 3 route(s) of which 1 "
				      "not accepted, 2 service(s) of which 1 with a refused share\n"));
	manifest_rm(dir);
}

/* One source per run, said before anything starts. */
static void test_run_sources(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "run", "--config", "/nonexistent", "--kubeconfig", "/nonexistent", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--config and --kubeconfig exclude each other"));
	ksplit(&r, "run", "--config", "/nonexistent", "--gateway-class", "x", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--gateway-class applies to the Kubernetes API source"));
	ksplit(&r, "run", "--config", "/nonexistent", "--namespace", "t", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--namespace, --identity, --lease-duration and --lease-renew "
				      "apply to the Kubernetes API source"));
	ksplit(&r, "run", "--kubeconfig", "/nonexistent", "--lease-duration", "2", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--lease-renew must be shorter than --lease-duration"));
	ksplit(&r, "run", "--kubeconfig", "/nonexistent", "--lease-renew", "0", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--lease-renew: not a number of seconds in 1..3600: 0"));
	ksplit(&r, "run", "--config", "/nonexistent", "--tc-udp-timeout", "30", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--tc-tcp-timeout, --tc-close-timeout and --tc-udp-timeout: "
				      "no --tc-iface"));
	ksplit(&r, "run", "--config", "/nonexistent", "--tc-iface", "x", "--tc-tcp-timeout", "0s",
	       NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--tc-tcp-timeout: not a number of seconds in 1..2592000: 0s"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_json_missing_pin_dir),
		cmocka_unit_test(test_status_text_missing_pin_dir),
		cmocka_unit_test(test_down_json_error_keeps_result),
		cmocka_unit_test(test_option_errors_json),
		cmocka_unit_test(test_unknown_command_and_help),
		cmocka_unit_test(test_validate_report),
		cmocka_unit_test(test_allow_loopback_vips),
		cmocka_unit_test(test_run_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
