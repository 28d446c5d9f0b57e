// SPDX-License-Identifier: BSD-2-Clause
/*
 * GRPCRoute, TLSRoute and Namespace, and the warnings for objects ksplit
 * skips: exact messages and positions.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/manifest.h"
#include "unit/diag_helpers.h"

struct diag_case {
	const char *yaml;
	const char *msg;
};

/* The input must fail with (at least) this exact error. */
static void run_errors(const struct diag_case *c, size_t n)
{
	struct ks_model m;
	struct ks_diags d;
	size_t i;

	for (i = 0; i < n; i++) {
		print_message("case %zu\n", i);
		assert_int_equal(load1(c[i].yaml, &m, &d), -EINVAL);
		if (!has_diag(&d, false, c[i].msg)) {
			dump(&d);
			fail_msg("missing error: %s", c[i].msg);
		}
		ks_diags_free(&d);
	}
}

/* The input loads, with exactly this one warning (NULL: none at all). */
static void run_warnings(const struct diag_case *c, size_t n)
{
	struct ks_model m;
	struct ks_diags d;
	size_t i;

	for (i = 0; i < n; i++) {
		print_message("case %zu\n", i);
		if (load1(c[i].yaml, &m, &d) || d.n != (c[i].msg ? 1u : 0u) ||
		    (c[i].msg && !has_diag(&d, true, c[i].msg))) {
			dump(&d);
			fail_msg("expected exactly the warning: %s", c[i].msg ? c[i].msg : "(none)");
		}
		ks_model_free(&m);
		ks_diags_free(&d);
	}
}

#define RUN(f, arr) f(arr, sizeof(arr) / sizeof(arr[0]))

#define L4 "ksplit picks a backend at connect(), before any byte of the request exists"
#define GRPC_HDR "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\nspec:\n"
#define TLS_HDR "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: r}\nspec:\n"
#define RULE(extra) "  rules:\n  - backendRefs: [{name: s, port: 80}]\n" extra

static const struct diag_case grpc_errors[] = {
	{ GRPC_HDR "  hostnames: [a.example.com]\n" RULE(""),
	  "t.yaml:5:14: GRPCRoute default/r: spec.hostnames: hostnames cannot be enforced: " L4
	  " (no Host header or SNI yet), so the route would silently apply to every hostname; "
	  "remove them" },
	{ GRPC_HDR RULE("    matches: [{method: {service: foo.Bar}}]\n"),
	  "t.yaml:7:24: GRPCRoute default/r: spec.rules[0].matches[0].method: method matching "
	  "cannot be honoured: " L4 },
	{ GRPC_HDR RULE("    matches: [{}, {headers: [{name: x, value: y}]}]\n"),
	  "t.yaml:7:29: GRPCRoute default/r: spec.rules[0].matches[1].headers: header matching "
	  "cannot be honoured: " L4 },
	{ GRPC_HDR RULE("    matches: [{path: {value: /}}]\n"),
	  "t.yaml:7:16: GRPCRoute default/r: spec.rules[0].matches[0].path: unknown field 'path'" },
	{ GRPC_HDR RULE("    matches: [a]\n"),
	  "t.yaml:7:15: GRPCRoute default/r: spec.rules[0].matches[0]: expected a mapping, got a "
	  "scalar" },
	{ GRPC_HDR RULE("    filters: [{type: RequestHeaderModifier}]\n"),
	  "t.yaml:7:14: GRPCRoute default/r: spec.rules[0].filters: rule filters cannot be "
	  "honoured: " L4 },
	{ GRPC_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, filters: [{type: X}]}]\n",
	  "t.yaml:6:48: GRPCRoute default/r: spec.rules[0].backendRefs[0].filters: backendRef "
	  "filters cannot be honoured: " L4 },
	{ GRPC_HDR RULE("    sessionPersistence: {type: Cookie}\n"),
	  "t.yaml:7:25: GRPCRoute default/r: spec.rules[0].sessionPersistence: session persistence "
	  "cannot be honoured: " L4 " (no cookie or header to key on)" },
	{ GRPC_HDR RULE("    timeouts: {request: 1s}\n"),
	  "t.yaml:7:5: GRPCRoute default/r: spec.rules[0].timeouts: unknown field 'timeouts'" },
	{ GRPC_HDR RULE("  - backendRefs: [{name: s, port: 80}]\n"),
	  "t.yaml:7:5: GRPCRoute default/r: spec.rules: 2 rules: ksplit supports exactly one rule "
	  "per route, because at connect() every rule would match every connection" },
	{ "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: GRPCRoute\nmetadata: {name: r}\n"
	  "spec: {}\n",
	  "t.yaml:1:13: GRPCRoute default/r: apiVersion: unsupported version "
	  "'gateway.networking.k8s.io/v1beta1' of GRPCRoute (supported: v1, v1alpha2)" },
};

static const struct diag_case tls_errors[] = {
	{ TLS_HDR "  hostnames: [a.example.com]\n" RULE(""),
	  "t.yaml:5:14: TLSRoute default/r: spec.hostnames: SNI hostnames cannot be enforced: " L4
	  " (the TLS ClientHello that carries SNI comes later), so the route would silently apply "
	  "to every hostname; remove them (TLSRoute v1alpha3 and v1 require hostnames: use "
	  "v1alpha2, or a TCPRoute on a TCP listener)" },
	{ TLS_HDR "  hostnames: [[a]]\n" RULE(""),
	  "t.yaml:5:15: TLSRoute default/r: spec.hostnames[0]: expected a string, got a list" },
	{ TLS_HDR RULE("    matches: []\n"),
	  "t.yaml:7:5: TLSRoute default/r: spec.rules[0].matches: unknown field 'matches'" },
	{ TLS_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, filters: []}]\n",
	  "t.yaml:6:39: TLSRoute default/r: spec.rules[0].backendRefs[0].filters: unknown field "
	  "'filters'" },
	{ "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: TLSRoute\nmetadata: {name: r}\n"
	  "spec: {}\n",
	  "t.yaml:1:13: TLSRoute default/r: apiVersion: unsupported version "
	  "'gateway.networking.k8s.io/v1beta1' of TLSRoute (supported: v1alpha2, v1alpha3, v1)" },
};

static void test_grpc_errors(void **state) { (void)state; RUN(run_errors, grpc_errors); }
static void test_tls_errors(void **state) { (void)state; RUN(run_errors, tls_errors); }

#define ROUTE_META "metadata: {name: r, namespace: app}\n"
#define OBJ(api, kind) "apiVersion: " api "\nkind: " kind "\nmetadata: {name: x, namespace: app}\n"

/* Objects of kinds ksplit skips: a warning when they look meant for it, silence otherwise. */
static const struct diag_case skipped[] = {
	{ OBJ("policy.linkerd.io/v1beta3", "HTTPRoute") "spec: {rules: [{matches: []}]}\n",
	  "t.yaml:1:1: HTTPRoute app/x: ignored: ksplit programs only the routes of "
	  "gateway.networking.k8s.io (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, UDPRoute), and "
	  "this one is policy.linkerd.io/v1beta3" },
	{ OBJ("route.openshift.io/v1", "Route") "spec: {to: {kind: Service, name: s}}\n",
	  "t.yaml:1:1: Route app/x: ignored: ksplit programs only the routes of "
	  "gateway.networking.k8s.io (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, UDPRoute), and "
	  "this one is route.openshift.io/v1" },
	{ OBJ("gateway.networking.k8s.io/v1", "QUICRoute") "spec: {}\n",
	  "t.yaml:1:1: QUICRoute app/x: ignored: ksplit programs only the routes of "
	  "gateway.networking.k8s.io (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, UDPRoute)" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
	  "spec: {controllerName: x.io/y}\n",
	  "t.yaml:1:1: GatewayClass c: ignored: ksplit reads no GatewayClass parameters" },
	{ OBJ("gateway.networking.k8s.io/v1", "BackendTLSPolicy") "spec: {}\n",
	  "t.yaml:1:1: BackendTLSPolicy app/x: ignored: ksplit reads only Gateway, ReferenceGrant, "
	  "HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, UDPRoute of gateway.networking.k8s.io" },
	{ OBJ("gateway.networking.x-k8s.io/v1alpha1", "XListenerSet") "spec: {}\n",
	  "t.yaml:1:1: XListenerSet app/x: ignored: ksplit reads no kind of "
	  "gateway.networking.x-k8s.io" },
	{ OBJ("application-networking.k8s.aws/v1alpha1", "ServiceImport") "spec: {}\n",
	  "t.yaml:1:1: ServiceImport app/x: ignored: ksplit reads only TargetGroupPolicy of "
	  "application-networking.k8s.aws" },
	{ OBJ("application-networking.k8s.aws/v1alpha1", "AccessLogPolicy") "spec: {}\n",
	  "t.yaml:1:1: AccessLogPolicy app/x: ignored: ksplit reads only TargetGroupPolicy of "
	  "application-networking.k8s.aws" },
	{ OBJ("apps/v1", "Deployment") "spec: {}\n", NULL },
	{ OBJ("v1", "ConfigMap") "data: {}\n", NULL },
	{ OBJ("serving.knative.dev/v1", "Service") "spec: {}\n", NULL },
	{ OBJ("networking.k8s.io/v1", "Ingress") "spec: {}\n", NULL },
};

static void test_skipped(void **state) { (void)state; RUN(run_warnings, skipped); }

static const char gw_yaml[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: Gateway\n"
	"metadata: {name: gw, namespace: app}\n"
	"spec:\n"
	"  gatewayClassName: c\n"
	"  addresses: [{value: 10.0.0.1}]\n"
	"  listeners:\n"
	"  - {name: http, port: 80, protocol: HTTP}\n"
	"  - {name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: s, namespace: app}\n"
	"spec: {clusterIP: 10.96.0.5, ports: [{name: a, port: 80}, {name: b, port: 443}]}\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: s-1, namespace: app, labels: {kubernetes.io/service-name: s}}\n"
	"addressType: IPv4\n"
	"ports: [{name: a, port: 8080}, {name: b, port: 8443}]\n"
	"endpoints: [{addresses: [10.1.0.1]}]\n"
	"---\n";

/* One route next to gw_yaml: exactly one service, on port, carrying route. */
static void expect_programmed(const char *route_yaml, uint16_t port, const char *route,
			      uint16_t ep_port)
{
	char buf[2048];
	struct ks_model m;
	struct ks_diags d;

	snprintf(buf, sizeof(buf), "%s%s", gw_yaml, route_yaml);
	if (load1(buf, &m, &d) || d.n) {
		dump(&d);
		fail_msg("expected a clean load");
	}
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].port, port);
	assert_int_equal(m.svcs[0].proto, IPPROTO_TCP);
	assert_string_equal(m.svcs[0].route, route);
	assert_int_equal(m.svcs[0].n_groups, 1);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	assert_int_equal(m.svcs[0].groups[0].eps[0].port, ep_port);
	ks_model_free(&m);
	ks_diags_free(&d);
}

/* Without matches or filters, a GRPCRoute and a TLSRoute are L4 splits like the others. */
static void test_programmed(void **state)
{
	(void)state;
	expect_programmed("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n" ROUTE_META
			  "spec:\n  parentRefs: [{name: gw}]\n  hostnames: []\n"
			  "  rules: [{matches: [{}, {}], filters: [],\n"
			  "           backendRefs: [{name: s, port: 80}]}]\n",
			  80, "GRPCRoute app/r", 8080);
	expect_programmed("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: GRPCRoute\n"
			  ROUTE_META "spec:\n  parentRefs: [{name: gw, sectionName: http}]\n"
			  "  rules: [{backendRefs: [{name: s, port: 80}]}]\n",
			  80, "GRPCRoute app/r", 8080);
	expect_programmed("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\n" ROUTE_META
			  "spec:\n  parentRefs: [{name: gw}]\n"
			  "  rules: [{name: all, backendRefs: [{name: s, port: 443}]}]\n",
			  443, "TLSRoute app/r", 8443);
	expect_programmed("apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\n" ROUTE_META
			  "spec:\n  parentRefs: [{name: gw, port: 443}]\n  hostnames: []\n"
			  "  rules: [{backendRefs: [{name: s, port: 443}]}]\n",
			  443, "TLSRoute app/r", 8443);
}

/* The listener protocol decides where each kind attaches. */
static void test_attach_errors(void **state)
{
	static const struct diag_case c[] = {
		{ "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n" ROUTE_META
		  "spec:\n  parentRefs: [{name: gw, sectionName: tls}]\n"
		  "  rules: [{backendRefs: [{name: s, port: 80}]}]\n",
		  "t.yaml:27:40: GRPCRoute app/r: spec.parentRefs[0].sectionName: listener 'tls' of "
		  "Gateway app/gw has protocol TLS, which cannot carry a GRPCRoute (needs HTTP or "
		  "HTTPS) (NotAllowedByListeners)" },
		{ "apiVersion: gateway.networking.k8s.io/v1alpha3\nkind: TLSRoute\n" ROUTE_META
		  "spec:\n  parentRefs: [{name: gw, sectionName: http}]\n"
		  "  rules: [{backendRefs: [{name: s, port: 443}]}]\n",
		  "t.yaml:27:40: TLSRoute app/r: spec.parentRefs[0].sectionName: listener 'http' of "
		  "Gateway app/gw has protocol HTTP, which cannot carry a TLSRoute (needs TLS) "
		  "(NotAllowedByListeners)" },
	};
	char buf[2048];
	struct ks_model m;
	struct ks_diags d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", gw_yaml, c[i].yaml);
		assert_int_equal(load1(buf, &m, &d), -EINVAL);
		if (!has_diag(&d, false, c[i].msg)) {
			dump(&d);
			fail_msg("missing error: %s", c[i].msg);
		}
		ks_diags_free(&d);
	}
}

static int load_set(struct km_set *s, struct ks_diags *d, const char *yaml)
{
	int err;

	memset(s, 0, sizeof(*s));
	memset(d, 0, sizeof(*d));
	err = km_load_buffer(s, "t.yaml", yaml, strlen(yaml), d);
	if (err == -ENOMEM)
		return err;
	return km_check_duplicates(s, d) ?: err;
}

/* Namespace: cluster-scoped, its labels with the one the API server adds. */
static void test_namespace(void **state)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: Namespace\n"
		"metadata: {name: team-a, namespace: x, labels: {env: prod}}\n"
		"---\n"
		"apiVersion: v1\nkind: Namespace\n"
		"metadata:\n  name: team-b\n  labels: {kubernetes.io/metadata.name: wrong, a: b}\n"
		"spec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
		"---\n"
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: team-c}\n";
	const struct km_namespace *n;
	struct km_set s;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load_set(&s, &d, yaml), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(s.n_namespaces, 3);
	n = km_find_namespace(&s, "team-a");
	assert_non_null(n);
	assert_string_equal(n->m.ns, "");
	assert_int_equal(n->n_labels, 2);
	assert_string_equal(km_label_get(n->labels, n->n_labels, "env"), "prod");
	assert_string_equal(km_label_get(n->labels, n->n_labels, "kubernetes.io/metadata.name"),
			    "team-a");
	n = km_find_namespace(&s, "team-b");
	assert_non_null(n);
	assert_int_equal(n->n_labels, 2);
	assert_string_equal(km_label_get(n->labels, n->n_labels, "kubernetes.io/metadata.name"),
			    "team-b");
	assert_string_equal(km_label_get(n->labels, n->n_labels, "a"), "b");
	n = km_find_namespace(&s, "team-c");
	assert_non_null(n);
	assert_int_equal(n->n_labels, 1);
	assert_null(km_label_get(n->labels, n->n_labels, "env"));
	assert_null(km_find_namespace(&s, "team-d"));
	km_set_free(&s);
	ks_diags_free(&d);

	/* Messages name a Namespace without a namespace. */
	assert_int_equal(load_set(&s, &d, "apiVersion: v1\nkind: Namespace\n"
				  "metadata: {name: t, labels: {a: [1]}}\n---\n"
				  "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n"
				  "spce: {}\n"), -EINVAL);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.v[0].msg, "t.yaml:3:33: Namespace t: metadata.labels.a: expected a "
			    "string, got a list");
	assert_string_equal(d.v[1].msg, "t.yaml:8:1: Namespace t: spce: unknown field 'spce', "
			    "did you mean 'spec'?");
	assert_string_equal(d.v[2].msg, "t.yaml:5:1: Namespace t: defined twice: also at t.yaml:1:1; this copy is refused");
	km_set_free(&s);
	ks_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grpc_errors),
		cmocka_unit_test(test_tls_errors),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_programmed),
		cmocka_unit_test(test_attach_errors),
		cmocka_unit_test(test_namespace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
