// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks-apiserver (selftests/apiserver) checked from the outside: with kubectl,
 * a real client that knows nothing of ksplit, over HTTPS with its own CA and
 * a bearer token; and with libcurl for what kubectl does not show (paging,
 * 410 Expired, status conflicts, faults). Two servers run for the whole
 * group: HTTPS with a token file, and plain HTTP without auth. Every child
 * is killed by pid (and dies with us through PR_SET_PDEATHSIG); the temp dir
 * is removed in the group teardown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#define MAXBG 4

struct srv {
	pid_t pid;
	char base[128];		/* http[s]://127.0.0.1:PORT */
};

static struct srv plain, tls;
static char dir[64], ca[128], tokfile[128], kubeconfig[128], cachedir[128];
static pid_t bg[MAXBG];		/* background kubectl, killed by the test teardown */
static bool have_kubectl;

/* fork + exec argv with stdout/stderr to files (NULL: /dev/null); the child dies with us. */
static pid_t spawn(char *const argv[], const char *out, const char *err, int outfd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid) {
		int o = outfd >= 0 ? outfd : open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

struct run {
	int status;
	char out[16384], err[16384];
};

/* Run argv to completion (under timeout(1): a hung client fails the test, not the run). */
static void runv(struct run *r, char **argv)
{
	char o[192], e[192];
	pid_t pid;

	snprintf(o, sizeof(o), "%s/run.out", dir);
	snprintf(e, sizeof(e), "%s/run.err", dir);
	pid = spawn(argv, o, e, -1);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
	r->status = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
	slurp(o, r->out, sizeof(r->out));
	slurp(e, r->err, sizeof(r->err));
}

#define KUBECTL_ARGS(r, ...)                                                                  \
	(char *[]){ "timeout", "30", "kubectl", "--kubeconfig", kubeconfig, "--cache-dir",      \
		    cachedir, __VA_ARGS__, NULL }
#define kubectl(r, ...) runv(r, KUBECTL_ARGS(r, __VA_ARGS__))

static void write_file(const char *name, const char *fmt, ...)
{
	char path[192];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

struct resp {
	long code;
	CURLcode rc;
	char *body;
	size_t len;
	json_object *json;
};

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
	struct resp *r = u;
	char *b = realloc(r->body, r->len + sz * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, sz * n);
	r->body = b;
	r->len += sz * n;
	b[r->len] = 0;
	return sz * n;
}

/* One request; token NULL sends none. The body is parsed when it is one JSON value. */
static void req(struct resp *r, const struct srv *s, const char *token, const char *method,
		const char *path, const char *ctype, const char *body, long timeout_ms)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], hdr[256];

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", s->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 10000L);
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, hdr);
	}
	if (body) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype ? ctype : "application/json");
		h = curl_slist_append(h, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	r->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (r->body)
		r->json = json_tokener_parse(r->body);
}

static void resp_free(struct resp *r)
{
	json_object_put(r->json);
	free(r->body);
}

/* A string (or number, as text) at a dotted path; "[i]" indexes arrays. */
static const char *jget(json_object *o, const char *path)
{
	char key[128];

	while (o && *path) {
		size_t n = strcspn(path, ".[");

		if (*path == '[') {
			o = json_object_array_get_idx(o, atoi(path + 1));
			path = strchr(path, ']') + 1;
		} else {
			snprintf(key, sizeof(key), "%.*s", (int)n, path);
			if (!json_object_object_get_ex(o, key, &o))
				return NULL;
			path += n;
		}
		if (*path == '.')
			path++;
	}
	return o ? json_object_get_string(o) : NULL;
}

static json_object *jarr(json_object *o, const char *key)
{
	json_object *a = NULL;

	json_object_object_get_ex(o, key, &a);
	return a;
}

static void fault(const struct srv *s, const char *body)
{
	struct resp r;

	req(&r, s, NULL, "POST", "/_ksplit/fault", NULL, body, 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
}

static long long stat_of(const struct srv *s, const char *path)
{
	struct resp r;
	const char *v;
	long long n;

	req(&r, s, NULL, "GET", "/_ksplit/stats", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	v = jget(r.json, path);
	n = v ? atoll(v) : 0;
	resp_free(&r);
	return n;
}

/* Wait (up to 15 s) until a counter passes `above`: e.g. a client's watch has started. */
static void wait_stat(const struct srv *s, const char *path, long long above)
{
	for (int i = 0; i < 300 && stat_of(s, path) <= above; i++)
		usleep(50000);
	assert_true(stat_of(s, path) > above);
}

static void start_server(struct srv *s, bool https)
{
	char exe[PATH_MAX], bin[PATH_MAX + 64], line[128], key[128], crt[128];
	char *argv[12] = { bin, "--listen", "127.0.0.1:0" };
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int p[2], i = 3;
	FILE *f;

	assert_true(n > 0);
	exe[n] = 0;
	snprintf(bin, sizeof(bin), "%s/../apiserver/ks-apiserver", dirname(exe));
	if (access(bin, X_OK))
		fail_msg("%s not found: run `make` first", bin);
	if (https) {
		snprintf(crt, sizeof(crt), "%s/srv.crt", dir);
		snprintf(key, sizeof(key), "%s/srv.key", dir);
		argv[i++] = "--cert";
		argv[i++] = crt;
		argv[i++] = "--key";
		argv[i++] = key;
		argv[i++] = "--token-file";
		argv[i++] = tokfile;
	}
	assert_int_equal(pipe(p), 0);
	s->pid = spawn(argv, NULL, NULL, p[1]);
	close(p[1]);
	assert_non_null(f = fdopen(p[0], "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	assert_true(!strncmp(line, https ? "listening https://127.0.0.1:" :
					   "listening http://127.0.0.1:", https ? 28 : 27));
	snprintf(s->base, sizeof(s->base), "%s", line + 10);
}

static int group_setup(void **state)
{
	struct run r;

	(void)state;
	strcpy(dir, "/tmp/ks-apiserver-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(tokfile, sizeof(tokfile), "%s/token", dir);
	snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", dir);
	snprintf(cachedir, sizeof(cachedir), "%s/kube-cache", dir);
	write_file("san.ext", "subjectAltName = IP:127.0.0.1\n");
	write_file("token", "token-one\n");
	runv(&r, (char *[]){ "sh", "-c", "cd \"$0\" && "
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		"-keyout ca.key -out ca.crt -days 1 -subj /CN=ks-apiserver-test-ca && "
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		"-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
		"openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		"-out srv.crt -days 1 -extfile san.ext", dir, NULL });
	if (r.status)
		fail_msg("openssl: %s", r.err);
	start_server(&tls, true);
	start_server(&plain, false);
	write_file("kubeconfig", "apiVersion: v1\nkind: Config\nclusters:\n- name: ks\n  cluster:\n"
		   "    server: %s\n    certificate-authority: %s\ncontexts:\n- name: ks\n"
		   "  context: {cluster: ks, user: ks}\ncurrent-context: ks\nusers:\n- name: ks\n"
		   "  user: {token: token-one}\n", tls.base, ca);
	runv(&r, (char *[]){ "kubectl", "version", "--client", NULL });
	have_kubectl = r.status == 0;
	return 0;
}

static int group_teardown(void **state)
{
	struct run r;

	(void)state;
	stop(&tls.pid);
	stop(&plain.pid);
	if (dir[0])
		runv(&r, (char *[]){ "rm", "-rf", dir, NULL });
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < MAXBG; i++)
		stop(&bg[i]);
	return 0;
}

static void need_kubectl(void)
{
	if (!have_kubectl) {
		print_message("kubectl not found: skipped (it is not a Debian 12 package)\n");
		skip();
	}
}

static void test_discovery(void **state)
{
	struct resp r;
	json_object *groups, *res;
	const char *want[] = { "discovery.k8s.io", "coordination.k8s.io", "gateway.networking.k8s.io",
			       "application-networking.k8s.aws" };

	(void)state;
	req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "kind"), "APIGroupList");
	groups = jarr(r.json, "groups");
	assert_int_equal(json_object_array_length(groups), 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(jget(json_object_array_get_idx(groups, i), "name"), want[i]);
	assert_string_equal(jget(r.json, "groups[2].preferredVersion.groupVersion"),
			    "gateway.networking.k8s.io/v1");
	assert_string_equal(jget(r.json, "groups[2].versions[2].version"), "v1alpha2");
	resp_free(&r);

	req(&r, &plain, NULL, "GET", "/apis/gateway.networking.k8s.io/v1", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "groupVersion"), "gateway.networking.k8s.io/v1");
	res = jarr(r.json, "resources");
	assert_int_equal(json_object_array_length(res), 8);
	assert_string_equal(jget(res, "[4].name"), "httproutes");
	assert_string_equal(jget(res, "[4].singularName"), "httproute");
	assert_string_equal(jget(res, "[4].kind"), "HTTPRoute");
	assert_string_equal(jget(res, "[4].namespaced"), "true");
	assert_string_equal(jget(res, "[4].verbs[7]"), "watch");
	assert_string_equal(jget(res, "[5].name"), "httproutes/status");
	assert_string_equal(jget(res, "[5].verbs[2]"), "update");
	resp_free(&r);

	/* A CRD absent, then installed. */
	fault(&plain, "{\"disable\":\"application-networking.k8s.aws/v1alpha1/targetgrouppolicies\","
		      "\"enable\":\"gateway.networking.k8s.io/v1/gateways\"}");
	req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(json_object_array_length(jarr(r.json, "groups")), 3);
	resp_free(&r);
	req(&r, &plain, NULL, "GET", "/apis/application-networking.k8s.aws/v1alpha1", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	resp_free(&r);
	req(&r, &plain, NULL, "GET",
	    "/apis/application-networking.k8s.aws/v1alpha1/targetgrouppolicies", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	assert_string_equal(jget(r.json, "reason"), "NotFound");
	resp_free(&r);
	fault(&plain, "{\"enable\":\"application-networking.k8s.aws/v1alpha1/targetgrouppolicies\"}");
	req(&r, &plain, NULL, "GET",
	    "/apis/application-networking.k8s.aws/v1alpha1/targetgrouppolicies", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "kind"), "TargetGroupPolicyList");
	resp_free(&r);

	req(&r, &plain, NULL, "POST", "/_ksplit/fault", NULL, "{\"disable\":\"x/v1/nope\"}", 0);
	assert_int_equal(r.code, 400);
	assert_string_equal(jget(r.json, "message"), "disable: no resource x/v1/nope: write "
			    "group/version/resource, e.g. gateway.networking.k8s.io/v1/httproutes or "
			    "core/v1/services");
	resp_free(&r);
}

#define SVC_YAML                                                                       \
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"      \
	"spec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: %d}\n" \
	"  - {name: admin, port: 81, targetPort: 81}\n"
#define ROUTE_YAML                                                                      \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"                     \
	"metadata: {name: r1, namespace: default}\nspec:\n  parentRefs: [{name: gw}]\n"    \
	"  rules:\n  - backendRefs:\n    - {name: web, port: 80, weight: %d}\n"              \
	"    - {name: web2, port: 80, weight: %d}\n"

/* (a) discovery through kubectl, create/apply/delete with a bearer token over HTTPS. */
static void test_kubectl_crud(void **state)
{
	struct run r;
	char svc[192], route[192], msg[512];

	(void)state;
	need_kubectl();
	snprintf(svc, sizeof(svc), "%s/svc.yaml", dir);
	snprintf(route, sizeof(route), "%s/route.yaml", dir);
	write_file("svc.yaml", SVC_YAML, 8080);
	write_file("route.yaml", ROUTE_YAML, 25, 75);

	kubectl(&r, "get", "services", "-A");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "No resources found\n");
	kubectl(&r, "create", "--validate=false", "-f", svc);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/web created\n");
	kubectl(&r, "create", "--validate=false", "-f", svc);
	assert_int_equal(r.status, 1);
	snprintf(msg, sizeof(msg), "Error from server (AlreadyExists): error when creating \"%s\": "
		 "services \"web\" already exists\n", svc);
	assert_string_equal(r.err, msg);
	kubectl(&r, "create", "--validate=false", "-f", route);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io/r1 created\n");

	kubectl(&r, "get", "services", "-A");
	assert_int_equal(r.status, 0);
	assert_true(!strncmp(r.out, "NAMESPACE   NAME   AGE\ndefault     web    ", 41));
	kubectl(&r, "get", "httproutes", "-A", "-o", "name");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io/r1\n");
	kubectl(&r, "get", "svc", "web", "-o",
		"jsonpath={.kind} {.apiVersion} {.metadata.resourceVersion} {.metadata.generation}");
	assert_string_equal(r.out, "Service v1 1 1");

	/* apply: a strategic merge patch for a Service, a JSON merge patch for a CRD. */
	write_file("svc.yaml", SVC_YAML, 9090);
	kubectl(&r, "apply", "--validate=false", "-f", svc);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/web configured\n");
	kubectl(&r, "apply", "--validate=false", "-f", svc);
	assert_string_equal(r.out, "service/web unchanged\n");
	kubectl(&r, "get", "svc", "web", "-o",
		"jsonpath={.spec.ports[*].name} {.spec.ports[*].targetPort} {.metadata.generation}");
	assert_string_equal(r.out, "http admin 9090 81 2");
	write_file("route.yaml", ROUTE_YAML, 30, 70);
	kubectl(&r, "apply", "--validate=false", "-f", route);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io/r1 configured\n");
	kubectl(&r, "get", "httproute", "r1", "-o", "jsonpath={.spec.rules[0].backendRefs[*].weight}");
	assert_string_equal(r.out, "30 70");

	kubectl(&r, "delete", "svc", "web");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service \"web\" deleted\n");
	kubectl(&r, "delete", "-f", route);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io \"r1\" deleted\n");
	kubectl(&r, "get", "svc", "web");
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "Error from server (NotFound): services \"web\" not found\n");
}

/* (b) kubectl get -w sees the changes as they happen. */
static void test_kubectl_watch(void **state)
{
	char out[192], buf[4096], ev[4][16], ns[4][32], name[4][32];
	struct resp r;
	long long watches = stat_of(&tls, "requests.watch.services");
	char *line;
	int n = 0;

	(void)state;
	need_kubectl();
	snprintf(out, sizeof(out), "%s/watch.out", dir);
	bg[0] = spawn(KUBECTL_ARGS(r, "get", "services", "-A", "-w", "--output-watch-events"), out,
		      NULL, -1);
	wait_stat(&tls, "requests.watch.services", watches);
	req(&r, &tls, "token-one", "POST", "/api/v1/namespaces/shop/services", NULL,
	    "{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"ports\":[{\"port\":80}]}}", 0);
	assert_int_equal(r.code, 201);
	resp_free(&r);
	req(&r, &tls, "token-one", "PATCH", "/api/v1/namespaces/shop/services/w1",
	    "application/merge-patch+json", "{\"metadata\":{\"labels\":{\"v\":\"2\"}}}", 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
	req(&r, &tls, "token-one", "DELETE", "/api/v1/namespaces/shop/services/w1", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
	for (int i = 0; i < 200; i++) {
		slurp(out, buf, sizeof(buf));
		if (strstr(buf, "DELETED"))
			break;
		usleep(50000);
	}
	stop(&bg[0]);
	slurp(out, buf, sizeof(buf));
	/* The header, then w1's events (a service left by a failed test would come first). */
	for (line = strtok(buf, "\n"); line && n < 4; line = strtok(NULL, "\n")) {
		assert_int_equal(sscanf(line, "%15s %31s %31s", ev[n], ns[n], name[n]), 3);
		n += !n || !strcmp(name[n], "w1");
	}
	assert_int_equal(n, 4);
	assert_string_equal(ev[0], "EVENT");
	assert_string_equal(ns[0], "NAMESPACE");
	assert_string_equal(name[0], "NAME");
	assert_string_equal(ev[1], "ADDED");
	assert_string_equal(ev[2], "MODIFIED");
	assert_string_equal(ev[3], "DELETED");
	for (int i = 1; i < 4; i++) {
		assert_string_equal(ns[i], "shop");
		assert_string_equal(name[i], "w1");
	}
}

static void create_svc(const struct srv *s, const char *ns, const char *name)
{
	char path[256], body[256];
	struct resp r;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", ns);
	snprintf(body, sizeof(body), "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"
		 "{\"name\":\"%s\"},\"spec\":{\"ports\":[{\"port\":80}]}}", name);
	req(&r, s, NULL, "POST", path, NULL, body, 0);
	assert_int_equal(r.code, 201);
	resp_free(&r);
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
	lists = stat_of(&plain, "requests.list.services");
	snprintf(path, sizeof(path), "/api/v1/namespaces/pg/services?limit=2");
	for (int page = 0; page < 3; page++) {
		const char *cont, *left;
		json_object *items;
		struct resp r;

		req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
		assert_int_equal(r.code, 200);
		assert_string_equal(jget(r.json, "kind"), "ServiceList");
		assert_string_equal(jget(r.json, "apiVersion"), "v1");
		if (!page)
			snprintf(rv, sizeof(rv), "%lld", stat_of(&plain, "resourceVersion"));
		assert_string_equal(jget(r.json, "metadata.resourceVersion"), rv);
		items = jarr(r.json, "items");
		assert_int_equal(json_object_array_length(items), page < 2 ? 2 : 1);
		for (size_t i = 0; i < json_object_array_length(items); i++) {
			json_object *it = json_object_array_get_idx(items, i);

			assert_string_equal(jget(it, "metadata.name"), want[seen++]);
			assert_string_equal(jget(it, "metadata.namespace"), "pg");
			assert_null(jget(it, "kind"));
			assert_null(jget(it, "apiVersion"));
		}
		cont = jget(r.json, "metadata.continue");
		left = jget(r.json, "metadata.remainingItemCount");
		if (page < 2) {
			assert_non_null(cont);
			assert_string_equal(left, page ? "1" : "3");
			snprintf(path, sizeof(path), "/api/v1/namespaces/pg/services?limit=2&continue=%s",
				 cont);
		} else {
			assert_null(cont);
			assert_null(left);
		}
		resp_free(&r);
	}
	assert_int_equal(seen, 5);
	assert_int_equal(stat_of(&plain, "requests.list.services"), lists + 3);
}

/* kubectl pages too (--chunk-size), through the HTTPS server. */
static void test_kubectl_paging(void **state)
{
	struct run r;

	(void)state;
	need_kubectl();
	for (int i = 0; i < 5; i++) {
		char name[8], body[128];
		struct resp p;

		snprintf(name, sizeof(name), "k%d", i);
		snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"}}", name);
		req(&p, &tls, "token-one", "POST", "/api/v1/namespaces/kp/services", NULL, body, 0);
		assert_int_equal(p.code, 201);
		resp_free(&p);
	}
	kubectl(&r, "get", "services", "-n", "kp", "--chunk-size=2", "-o", "name");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/k0\nservice/k1\nservice/k2\nservice/k3\nservice/k4\n");
}

/* (d) after compaction: a watch from an older RV gets one ERROR 410 Expired event. */
static void test_expired(void **state)
{
	char path[1024], msg[128], cont[512];
	long long before, compacted;
	struct resp r;
	json_object *ev;

	(void)state;
	create_svc(&plain, "ex", "a");
	create_svc(&plain, "ex", "b");
	req(&r, &plain, NULL, "GET", "/api/v1/namespaces/ex/services?limit=1", NULL, NULL, 0);
	snprintf(cont, sizeof(cont), "%s", jget(r.json, "metadata.continue"));
	resp_free(&r);
	create_svc(&plain, "ex2", "c");	/* the continue token's RV is now older too */
	before = stat_of(&plain, "resourceVersion") - 1;
	fault(&plain, "{\"compact\":true}");
	compacted = stat_of(&plain, "compacted");
	assert_int_equal(compacted, before + 1);

	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?watch=1&resourceVersion=%lld",
		 before);
	req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.code, 200);
	assert_non_null(r.json);
	assert_string_equal(strchr(r.body, '\n'), "\n");	/* one line, then the end */
	snprintf(msg, sizeof(msg), "too old resource version: %lld (%lld)", before, compacted);
	assert_string_equal(jget(r.json, "type"), "ERROR");
	assert_string_equal(jget(r.json, "object.kind"), "Status");
	assert_string_equal(jget(r.json, "object.code"), "410");
	assert_string_equal(jget(r.json, "object.reason"), "Expired");
	assert_string_equal(jget(r.json, "object.message"), msg);
	resp_free(&r);

	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?limit=1&continue=%s", cont);
	req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.code, 410);
	assert_string_equal(jget(r.json, "reason"), "Expired");
	resp_free(&r);

	/* From the compaction point on, history is whole again. */
	req(&r, &plain, NULL, "DELETE", "/api/v1/namespaces/ex/services/a", NULL, NULL, 0);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/namespaces/ex/services?watch=true&resourceVersion=%lld"
		 "&timeoutSeconds=1&allowWatchBookmarks=true", compacted);
	req(&r, &plain, NULL, "GET", path, NULL, NULL, 0);
	assert_int_equal(r.rc, CURLE_OK);
	ev = json_tokener_parse(r.body);
	assert_string_equal(jget(ev, "type"), "DELETED");
	assert_string_equal(jget(ev, "object.kind"), "Service");
	assert_string_equal(jget(ev, "object.apiVersion"), "v1");
	assert_string_equal(jget(ev, "object.metadata.name"), "a");
	assert_int_equal(atoll(jget(ev, "object.metadata.resourceVersion")), compacted + 1);
	json_object_put(ev);
	ev = json_tokener_parse(strchr(r.body, '\n') + 1);
	assert_string_equal(jget(ev, "type"), "BOOKMARK");
	assert_int_equal(atoll(jget(ev, "object.metadata.resourceVersion")), compacted + 1);
	assert_null(jget(ev, "object.metadata.name"));
	json_object_put(ev);
	resp_free(&r);

	/* resourceVersion 0: the current objects as ADDED first. */
	req(&r, &plain, NULL, "GET", "/api/v1/namespaces/ex/services?watch=1&resourceVersion=0"
	    "&timeoutSeconds=1", NULL, NULL, 0);
	ev = json_tokener_parse(r.body);
	assert_string_equal(jget(ev, "type"), "ADDED");
	assert_string_equal(jget(ev, "object.metadata.name"), "b");
	assert_string_equal(strchr(r.body, '\n'), "\n");
	json_object_put(ev);
	resp_free(&r);
}

#define CONFLICT(what, name)                                                                  \
	"Operation cannot be fulfilled on " what " \"" name "\": the object has been modified; " \
	"please apply your changes to the latest version and try again"
#define ROUTES "/apis/gateway.networking.k8s.io/v1/namespaces/st/httproutes"

/* (e) the status subresource: only .status changes; a stale resourceVersion gets 409. */
static void test_status_conflict(void **state)
{
	char body[512], rv[24];
	struct resp r;

	(void)state;
	req(&r, &plain, NULL, "POST", ROUTES, NULL, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\","
	    "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\"},\"spec\":{\"parentRefs\":"
	    "[{\"name\":\"gw\"}]}}", 0);
	assert_int_equal(r.code, 201);
	assert_string_equal(jget(r.json, "metadata.generation"), "1");
	assert_string_equal(jget(r.json, "metadata.namespace"), "st");
	assert_int_equal(strlen(jget(r.json, "metadata.uid")), 36);
	assert_int_equal(strlen(jget(r.json, "metadata.creationTimestamp")), 20);
	snprintf(rv, sizeof(rv), "%s", jget(r.json, "metadata.resourceVersion"));
	resp_free(&r);

	snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"r\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"parentRefs\":[]},\"status\":{\"parents\":[{\"controllerName\":"
		 "\"ksplit.io/agent\"}]}}", rv);
	req(&r, &plain, NULL, "PUT", ROUTES "/r/status", NULL, body, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "status.parents[0].controllerName"), "ksplit.io/agent");
	assert_string_equal(jget(r.json, "spec.parentRefs[0].name"), "gw");	/* spec kept */
	assert_string_equal(jget(r.json, "metadata.generation"), "1");
	assert_int_equal(atoll(jget(r.json, "metadata.resourceVersion")), atoll(rv) + 1);
	resp_free(&r);

	/* The same PUT again: its resourceVersion is now stale. */
	req(&r, &plain, NULL, "PUT", ROUTES "/r/status", NULL, body, 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(jget(r.json, "kind"), "Status");
	assert_string_equal(jget(r.json, "status"), "Failure");
	assert_string_equal(jget(r.json, "reason"), "Conflict");
	assert_string_equal(jget(r.json, "code"), "409");
	assert_string_equal(jget(r.json, "message"),
			    CONFLICT("httproutes.gateway.networking.k8s.io", "r"));
	resp_free(&r);

	/* Merge patch of status: null removes a key, spec in the patch is ignored. */
	req(&r, &plain, NULL, "PATCH", ROUTES "/r/status", "application/merge-patch+json",
	    "{\"spec\":{\"parentRefs\":null},\"status\":{\"parents\":null,\"x\":1}}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(json_object_to_json_string_ext(json_object_object_get(r.json, "status"),
							   JSON_C_TO_STRING_PLAIN), "{\"x\":1}");
	assert_string_equal(jget(r.json, "spec.parentRefs[0].name"), "gw");
	resp_free(&r);

	/* The object itself: spec changes bump generation, .status stays as it was. */
	req(&r, &plain, NULL, "PATCH", ROUTES "/r", "application/merge-patch+json",
	    "{\"spec\":{\"hostnames\":[\"a.example\"]},\"status\":null}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "metadata.generation"), "2");
	assert_string_equal(jget(r.json, "status.x"), "1");
	assert_string_equal(jget(r.json, "spec.hostnames[0]"), "a.example");
	resp_free(&r);

	req(&r, &plain, NULL, "PATCH", ROUTES "/r", "application/json-patch+json", "[]", 0);
	assert_int_equal(r.code, 415);
	assert_string_equal(jget(r.json, "reason"), "UnsupportedMediaType");
	resp_free(&r);
	req(&r, &plain, NULL, "GET", ROUTES "/nope", NULL, NULL, 0);
	assert_int_equal(r.code, 404);
	assert_string_equal(jget(r.json, "message"),
			    "httproutes.gateway.networking.k8s.io \"nope\" not found");
	resp_free(&r);
}

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"

/* Two holders race for one Lease with the resourceVersion both read: one wins, one gets 409. */
static void test_lease_conflict(void **state)
{
	char a[512], b[512];
	struct resp r;
	const char *rv;

	(void)state;
	req(&r, &plain, NULL, "POST", LEASES, NULL, "{\"metadata\":{\"name\":\"ksplit\"},\"spec\":"
	    "{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15}}", 0);
	assert_int_equal(r.code, 201);
	rv = jget(r.json, "metadata.resourceVersion");
	snprintf(a, sizeof(a), "{\"metadata\":{\"name\":\"ksplit\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,\"renewTime\":"
		 "\"2026-01-01T00:00:01.000000Z\"}}", rv);
	snprintf(b, sizeof(b), "{\"metadata\":{\"name\":\"ksplit\",\"resourceVersion\":\"%s\"},"
		 "\"spec\":{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":15}}", rv);
	resp_free(&r);
	req(&r, &plain, NULL, "PUT", LEASES "/ksplit", NULL, a, 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
	req(&r, &plain, NULL, "PUT", LEASES "/ksplit", NULL, b, 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(jget(r.json, "message"), CONFLICT("leases.coordination.k8s.io", "ksplit"));
	resp_free(&r);
	req(&r, &plain, NULL, "POST", LEASES, NULL, "{\"metadata\":{\"name\":\"ksplit\"}}", 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(jget(r.json, "reason"), "AlreadyExists");
	assert_string_equal(jget(r.json, "message"),
			    "leases.coordination.k8s.io \"ksplit\" already exists");
	resp_free(&r);
	req(&r, &plain, NULL, "GET", LEASES "/ksplit", NULL, NULL, 0);
	assert_string_equal(jget(r.json, "kind"), "Lease");
	assert_string_equal(jget(r.json, "apiVersion"), "coordination.k8s.io/v1");
	assert_string_equal(jget(r.json, "spec.holderIdentity"), "a");
	resp_free(&r);
}

/* (f) the token file is read per request: after rotation the old token gets 401. */
static void test_token_rotation(void **state)
{
	struct resp r;
	struct run k;

	(void)state;
	req(&r, &tls, NULL, "GET", "/api", NULL, NULL, 0);
	assert_int_equal(r.code, 401);
	resp_free(&r);
	req(&r, &tls, "token-one", "GET", "/api", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "kind"), "APIVersions");
	assert_string_equal(jget(r.json, "versions[0]"), "v1");
	resp_free(&r);

	write_file("token", "token-two\n");
	req(&r, &tls, "token-one", "GET", "/api/v1/services", NULL, NULL, 0);
	assert_int_equal(r.code, 401);
	assert_string_equal(jget(r.json, "kind"), "Status");
	assert_string_equal(jget(r.json, "reason"), "Unauthorized");
	assert_string_equal(jget(r.json, "message"), "Unauthorized");
	resp_free(&r);
	req(&r, &tls, "token-two", "GET", "/api/v1/services", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
	if (have_kubectl) {
		kubectl(&k, "get", "services", "-n", "kp", "-o", "name");
		assert_int_equal(k.status, 1);
		assert_non_null(strstr(k.err, "error: You must be logged in to the server "
					      "(Unauthorized)\n"));
		kubectl(&k, "--token", "token-two", "get", "services", "-n", "kp", "-o", "name");
		assert_int_equal(k.status, 0);
		assert_string_equal(k.out, "service/k0\nservice/k1\nservice/k2\nservice/k3\nservice/k4\n");
	}
	write_file("token", "token-one\n");
}

struct bgwatch {
	pthread_t t;
	struct resp r;
	double secs;
};

static void *watch_thread(void *arg)
{
	struct bgwatch *w = arg;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	req(&w->r, &plain, NULL, "GET", "/api/v1/services?watch=1&resourceVersion=0&timeoutSeconds=30",
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
	struct resp r;

	(void)state;
	fault(&plain, "{\"fail_next\":2,\"code\":503}");
	for (int i = 0; i < 3; i++) {
		req(&r, &plain, NULL, "GET", "/api/v1/services", NULL, NULL, 0);
		assert_int_equal(r.code, i < 2 ? 503 : 200);
		if (i < 2)
			assert_string_equal(jget(r.json, "reason"), "ServiceUnavailable");
		resp_free(&r);
	}

	fault(&plain, "{\"hang_next\":1}");
	req(&r, &plain, NULL, "GET", "/api/v1/services", NULL, NULL, 500);
	assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
	resp_free(&r);
	assert_int_equal(stat_of(&plain, "hanging"), 1);
	fault(&plain, "{\"release\":true}");
	for (int i = 0; i < 100 && stat_of(&plain, "hanging"); i++)
		usleep(20000);
	assert_int_equal(stat_of(&plain, "hanging"), 0);

	watches = stat_of(&plain, "requests.watch.services");
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	wait_stat(&plain, "requests.watch.services", watches);
	usleep(200000);
	fault(&plain, "{\"cut_watches\":true}");
	pthread_join(w.t, NULL);
	/* Cut mid-stream: the chunked body never ends properly. */
	assert_int_not_equal(w.r.rc, CURLE_OK);
	assert_int_not_equal(w.r.rc, CURLE_OPERATION_TIMEDOUT);
	assert_true(w.secs < 5);
	assert_non_null(strstr(w.r.body, "{\"type\":\"ADDED\""));
	resp_free(&w.r);

	fault(&plain, "{\"pause_s\":1}");
	req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(r.code, 503);
	assert_string_equal(jget(r.json, "message"), "ks-apiserver is paused (fault pause_s)");
	resp_free(&r);
	usleep(2100000);
	req(&r, &plain, NULL, "GET", "/apis", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	resp_free(&r);
}

/* /_ksplit/load: many objects of any kinds in one request. */
static void test_load(void **state)
{
	long long rv = stat_of(&plain, "resourceVersion");
	struct resp r;

	(void)state;
	req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL, "{\"items\":["
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"l1\","
	    "\"namespace\":\"ld\"}},{\"apiVersion\":\"gateway.networking.k8s.io/v1beta1\","
	    "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"l2\",\"namespace\":\"ld\"}}]}", 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "created"), "2");
	assert_int_equal(atoll(jget(r.json, "resourceVersion")), rv + 2);
	resp_free(&r);
	/* Stored once, served at every version of the resource. */
	req(&r, &plain, NULL, "GET", "/apis/gateway.networking.k8s.io/v1/namespaces/ld/httproutes/l2",
	    NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	assert_string_equal(jget(r.json, "apiVersion"), "gateway.networking.k8s.io/v1");
	resp_free(&r);
	req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL, "{\"items\":[{\"apiVersion\":\"v1\","
	    "\"kind\":\"Service\",\"metadata\":{\"name\":\"l3\",\"namespace\":\"ld\"}},"
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"l1\","
	    "\"namespace\":\"ld\"}}]}", 0);
	assert_int_equal(r.code, 409);
	assert_string_equal(jget(r.json, "message"), "items[1]: services \"l1\" already exists");
	resp_free(&r);
	req(&r, &plain, NULL, "POST", "/_ksplit/load", NULL,
	    "{\"items\":[{\"apiVersion\":\"v2\",\"kind\":\"Service\"}]}", 0);
	assert_int_equal(r.code, 400);
	assert_string_equal(jget(r.json, "message"),
			    "items[0]: no resource is served for apiVersion v2 kind Service");
	resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery),
		cmocka_unit_test_teardown(test_kubectl_crud, test_teardown),
		cmocka_unit_test_teardown(test_kubectl_watch, test_teardown),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_kubectl_paging),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_status_conflict),
		cmocka_unit_test(test_lease_conflict),
		cmocka_unit_test(test_token_rotation),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_load),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
