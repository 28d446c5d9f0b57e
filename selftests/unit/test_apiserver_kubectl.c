// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks-apiserver checked with kubectl, a real client that knows nothing of
 * ksplit, over HTTPS with its own CA and a bearer token: discovery, get,
 * create, apply, delete, get -w, paging, and Unauthorized after a token
 * rotation. kubectl is not a Debian 12 package: without it these are skipped.
 * Background kubectl processes are killed by pid in the test teardown; the
 * server and the temp dir (kubeconfig, kubectl's cache) in the group teardown.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "apiserver/harness.h"

#define MAXBG 4

static struct kas_env env;
static struct kas_srv tls;
static char kubeconfig[128], cachedir[128];
static pid_t bg[MAXBG];		/* background kubectl, killed by the test teardown */
static bool have_kubectl;

#define KUBECTL_ARGS(...)                                                                     \
	(char *[]){ "timeout", "30", "kubectl", "--kubeconfig", kubeconfig, "--cache-dir",      \
		    cachedir, __VA_ARGS__, NULL }
/* Under timeout(1): a hung kubectl fails the test, not the run. */
#define kubectl(r, ...) kas_runv(r, env.dir, KUBECTL_ARGS(__VA_ARGS__))

static int group_setup(void **state)
{
	struct kas_run r;

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	kas_env_init(&env);
	snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", env.dir);
	snprintf(cachedir, sizeof(cachedir), "%s/kube-cache", env.dir);
	kas_start(&tls, &env, true, NULL);
	kas_write(&env, "kubeconfig", "apiVersion: v1\nkind: Config\nclusters:\n- name: ks\n"
		  "  cluster:\n    server: %s\n    certificate-authority: %s\ncontexts:\n"
		  "- name: ks\n  context: {cluster: ks, user: ks}\ncurrent-context: ks\nusers:\n"
		  "- name: ks\n  user: {token: token-one}\n", tls.base, env.ca);
	kas_runv(&r, env.dir, (char *[]){ "kubectl", "version", "--client", NULL });
	have_kubectl = r.status == 0;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	kas_stop(&tls.pid);
	kas_env_fini(&env);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < MAXBG; i++)
		kas_stop(&bg[i]);
	return 0;
}

static void need_kubectl(void)
{
	if (!have_kubectl) {
		print_message("kubectl not found: skipped (it is not a Debian 12 package)\n");
		skip();
	}
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
	struct kas_run r;
	char svc[192], route[192], msg[512];

	(void)state;
	need_kubectl();
	snprintf(svc, sizeof(svc), "%s/svc.yaml", env.dir);
	snprintf(route, sizeof(route), "%s/route.yaml", env.dir);
	kas_write(&env, "svc.yaml", SVC_YAML, 8080);
	kas_write(&env, "route.yaml", ROUTE_YAML, 25, 75);

	kubectl(&r, "get", "services", "-A");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "No resources found\n");
	kubectl(&r, "create", "-f", svc);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/web created\n");
	kubectl(&r, "create", "-f", svc);
	assert_int_equal(r.status, 1);
	snprintf(msg, sizeof(msg), "Error from server (AlreadyExists): error when creating \"%s\": "
		 "services \"web\" already exists\n", svc);
	assert_string_equal(r.err, msg);
	kubectl(&r, "create", "-f", route);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io/r1 created\n");

	kubectl(&r, "get", "services", "-A");
	assert_int_equal(r.status, 0);
	assert_true(!strncmp(r.out, "NAMESPACE   NAME   AGE\ndefault     web    ", 41));
	kubectl(&r, "get", "httproutes", "-A");
	assert_int_equal(r.status, 0);
	assert_true(!strncmp(r.out, "NAMESPACE   NAME   AGE\ndefault     r1     ", 41));
	kubectl(&r, "get", "httproutes", "-A", "-o", "name");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "httproute.gateway.networking.k8s.io/r1\n");
	kubectl(&r, "get", "svc", "web", "-o",
		"jsonpath={.kind} {.apiVersion} {.metadata.resourceVersion} {.metadata.generation}");
	assert_string_equal(r.out, "Service v1 1 1");

	/* apply: a strategic merge patch for a Service, a JSON merge patch for a CRD. */
	kas_write(&env, "svc.yaml", SVC_YAML, 9090);
	kubectl(&r, "apply", "-f", svc);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/web configured\n");
	kubectl(&r, "apply", "-f", svc);
	assert_string_equal(r.out, "service/web unchanged\n");
	kubectl(&r, "get", "svc", "web", "-o",
		"jsonpath={.spec.ports[*].name} {.spec.ports[*].targetPort} {.metadata.generation}");
	assert_string_equal(r.out, "http admin 9090 81 2");
	kas_write(&env, "route.yaml", ROUTE_YAML, 30, 70);
	kubectl(&r, "apply", "-f", route);
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
	struct kas_resp r;
	long long watches = kas_stat(&tls, "requests.watch.services");
	char *line;
	int n = 0;

	(void)state;
	need_kubectl();
	snprintf(out, sizeof(out), "%s/watch.out", env.dir);
	bg[0] = kas_spawn(KUBECTL_ARGS("get", "services", "-A", "-w", "--output-watch-events"), out,
		      NULL, -1);
	kas_wait_stat(&tls, "requests.watch.services", watches);
	kas_req(&r, &tls, "token-one", "POST", "/api/v1/namespaces/shop/services", NULL,
	    "{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"ports\":[{\"port\":80}]}}", 0);
	assert_int_equal(r.code, 201);
	kas_resp_free(&r);
	kas_req(&r, &tls, "token-one", "PATCH", "/api/v1/namespaces/shop/services/w1",
	    "application/merge-patch+json", "{\"metadata\":{\"labels\":{\"v\":\"2\"}}}", 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
	kas_req(&r, &tls, "token-one", "DELETE", "/api/v1/namespaces/shop/services/w1", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
	for (int i = 0; i < 200; i++) {
		kas_slurp(out, buf, sizeof(buf));
		if (strstr(buf, "DELETED"))
			break;
		usleep(50000);
	}
	kas_stop(&bg[0]);
	kas_slurp(out, buf, sizeof(buf));
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

/* kubectl pages too (--chunk-size), through the HTTPS server. */
static void test_kubectl_paging(void **state)
{
	struct kas_run r;

	(void)state;
	need_kubectl();
	for (int i = 0; i < 5; i++) {
		char name[8], body[128];
		struct kas_resp p;

		snprintf(name, sizeof(name), "k%d", i);
		snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"}}", name);
		kas_req(&p, &tls, "token-one", "POST", "/api/v1/namespaces/kp/services", NULL, body, 0);
		assert_int_equal(p.code, 201);
		kas_resp_free(&p);
	}
	kubectl(&r, "get", "services", "-n", "kp", "--chunk-size=2", "-o", "name");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "service/k0\nservice/k1\nservice/k2\nservice/k3\nservice/k4\n");
}

/* (f) with kubectl: after the token file changes, the kubeconfig's token gets Unauthorized. */
static void test_kubectl_token_rotation(void **state)
{
	struct kas_run k;

	(void)state;
	need_kubectl();
	kubectl(&k, "get", "services", "-n", "kp", "-o", "name");
	assert_int_equal(k.status, 0);
	kas_write(&env, "token", "token-two\n");
	kubectl(&k, "get", "services", "-n", "kp", "-o", "name");
	assert_int_equal(k.status, 1);
	/* Above it, client-go logs each refused discovery request: match the last line. */
	assert_non_null(strstr(k.err, "error: You must be logged in to the server (Unauthorized)\n"));
	kubectl(&k, "--token", "token-two", "get", "services", "-n", "kp", "-o", "name");
	assert_int_equal(k.status, 0);
	assert_string_equal(k.out, "service/k0\nservice/k1\nservice/k2\nservice/k3\nservice/k4\n");
	kas_write(&env, "token", "token-one\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kubectl_crud, test_teardown),
		cmocka_unit_test_teardown(test_kubectl_watch, test_teardown),
		cmocka_unit_test(test_kubectl_paging),
		cmocka_unit_test(test_kubectl_token_rotation),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
