// SPDX-License-Identifier: BSD-2-Clause
/*
 * Gateway listeners: tls, hostname and allowedRoutes as parsed (exact
 * messages and positions), and km_listener_admits on every rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/listeners.h"
#include "config/manifest.h"
#include "unit/diag_helpers.h"

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

#define GW_HDR "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n" \
	       "spec:\n  gatewayClassName: c\n  addresses: [{value: 10.0.0.1}]\n  listeners:\n"

struct diag_case {
	const char *listener;	/* after GW_HDR */
	bool warning;
	const char *msg;
};

#define TERM_HTTPS "TLS mode Terminate (the default for HTTPS) cannot be honoured: ksplit " \
	"terminates no TLS, so the clients' TLS would reach a backend that speaks plain HTTP; " \
	"use a TLS listener with tls.mode Passthrough (the backend terminates TLS), or an HTTP " \
	"listener"
#define TERM_TLS "TLS mode Terminate (the default for TLS) cannot be honoured: ksplit " \
	"terminates no TLS, so the clients' TLS would reach a backend that speaks plain TCP; " \
	"set tls.mode Passthrough (the backend terminates TLS), or use a TCP listener"
#define HOST_WHY(h) "hostname '" h "' cannot be enforced: ksplit picks a backend at " \
	"connect(), before any byte of the request exists (no Host header or SNI yet), so the " \
	"listener would take connections for every hostname; remove it"
#define NOT_ACCEPTED "; until then no route is accepted on this listener"
#define SEL "  - name: l\n    port: 80\n    protocol: HTTP\n    allowedRoutes:\n" \
	    "      namespaces:\n        from: Selector\n        selector:\n"

static const struct diag_case listener_cases[] = {
	{ "  - {name: l, port: 80, protocol: HTTP, tls: {mode: Terminate}}\n", false,
	  "t.yaml:8:46: Gateway default/g: spec.listeners[0].tls: must not be set for protocol "
	  "HTTP: only HTTPS and TLS listeners have TLS" },
	{ "  - {name: l, port: 80, protocol: TCP, tls: {}}\n", false,
	  "t.yaml:8:45: Gateway default/g: spec.listeners[0].tls: must not be set for protocol "
	  "TCP: only HTTPS and TLS listeners have TLS" },
	{ "  - {name: l, port: 443, protocol: HTTPS, tls: {mode: Passthrough}}\n", false,
	  "t.yaml:8:55: Gateway default/g: spec.listeners[0].tls.mode: Passthrough is invalid for "
	  "protocol HTTPS, which terminates TLS; for TLS passthrough use protocol TLS" },
	{ "  - {name: l, port: 443, protocol: TLS, tls: {mode: Pass}}\n", false,
	  "t.yaml:8:53: Gateway default/g: spec.listeners[0].tls.mode: 'Pass' is not one of "
	  "Terminate, Passthrough" },
	{ "  - {name: l, port: 443, protocol: TLS, tls: {mode: Passthrough, certs: []}}\n", false,
	  "t.yaml:8:66: Gateway default/g: spec.listeners[0].tls.certs: unknown field 'certs'" },
	{ "  - {name: l, port: 443, protocol: HTTPS, tls: {certificateRefs: [{kind: Secret}]}}\n",
	  false, "t.yaml:8:67: Gateway default/g: spec.listeners[0].tls.certificateRefs[0].name: "
	  "missing required field" },
	{ "  - {name: l, port: 443, protocol: HTTPS, tls: {options: {a: [1]}}}\n", false,
	  "t.yaml:8:62: Gateway default/g: spec.listeners[0].tls.options.a: expected a string, "
	  "got a list" },
	{ "  - {name: l, port: 53, protocol: UDP, hostname: a.example.com}\n", false,
	  "t.yaml:8:50: Gateway default/g: spec.listeners[0].hostname: must not be set for "
	  "protocol UDP, which has no hostnames" },
	{ "  - {name: l, port: 80, protocol: HTTP, hostname: [a]}\n", false,
	  "t.yaml:8:51: Gateway default/g: spec.listeners[0].hostname: expected a string, got a "
	  "list" },
	{ "  - {name: l, port: 80, protocol: HTTP, allowedRoutes: {namespace: {}}}\n", false,
	  "t.yaml:8:57: Gateway default/g: spec.listeners[0].allowedRoutes.namespace: unknown "
	  "field 'namespace', did you mean 'namespaces'?" },
	{ "  - {name: l, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Mine}}}\n",
	  false, "t.yaml:8:76: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.from: "
	  "'Mine' is not one of Same, All, Selector" },
	{ "  - {name: l, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}\n",
	  false, "t.yaml:8:69: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces."
	  "selector: required when from is Selector: the labels of the namespaces whose routes "
	  "the listener takes" },
	{ SEL "          matchLabels: {env: [prod]}\n", false,
	  "t.yaml:15:30: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchLabels.env: expected a string, got a list" },
	{ SEL "          matchLabel: {env: prod}\n", false,
	  "t.yaml:15:11: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchLabel: unknown field 'matchLabel', did you mean 'matchLabels'?" },
	{ SEL "          matchExpressions: [{key: env, operator: Is, values: [a]}]\n", false,
	  "t.yaml:15:51: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].operator: 'Is' is not one of In, NotIn, Exists, DoesNotExist" },
	{ SEL "          matchExpressions: [{operator: Exists}]\n", false,
	  "t.yaml:15:30: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].key: missing required field" },
	{ SEL "          matchExpressions: [{key: env, operator: In}]\n", false,
	  "t.yaml:15:30: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].values: at least one value is required when operator is In" },
	{ SEL "          matchExpressions: [{key: env, operator: NotIn, values: []}]\n", false,
	  "t.yaml:15:66: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].values: at least one value is required when operator is NotIn" },
	{ SEL "          matchExpressions: [{key: env, operator: Exists, values: [a]}]\n", false,
	  "t.yaml:15:67: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].values: must be empty when operator is Exists" },
	{ SEL "          matchExpressions: [{key: env, operator: In, values: [{a: b}]}]\n", false,
	  "t.yaml:15:64: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.selector."
	  "matchExpressions[0].values[0]: expected a string, got a mapping" },
	{ "  - {name: l, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{group: x}]}}\n", false,
	  "t.yaml:8:65: Gateway default/g: spec.listeners[0].allowedRoutes.kinds[0].kind: missing "
	  "required field" },
	{ "  - {name: l, port: 80, protocol: HTTP, allowedRoutes: {kinds: [a,b,c,d,e,f,g,h,i]}}\n",
	  false, "t.yaml:8:64: Gateway default/g: spec.listeners[0].allowedRoutes.kinds: at most "
	  "8 kinds are allowed, got 9" },
	/* Warnings: what ksplit cannot honour, shown whether or not a route attaches. */
	{ "  - {name: l, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}}\n", true,
	  "t.yaml:8:48: Gateway default/g: spec.listeners[0].tls: " TERM_HTTPS NOT_ACCEPTED },
	{ "  - {name: l, port: 443, protocol: HTTPS}\n", true,
	  "t.yaml:8:36: Gateway default/g: spec.listeners[0].protocol: " TERM_HTTPS NOT_ACCEPTED },
	{ "  - {name: l, port: 443, protocol: TLS}\n", true,
	  "t.yaml:8:36: Gateway default/g: spec.listeners[0].protocol: " TERM_TLS NOT_ACCEPTED },
	{ "  - {name: l, port: 443, protocol: TLS, tls: {mode: Terminate, options: {a: b}}}\n", true,
	  "t.yaml:8:46: Gateway default/g: spec.listeners[0].tls: " TERM_TLS NOT_ACCEPTED },
	{ "  - {name: l, port: 80, protocol: HTTP, hostname: '*.example.com'}\n", true,
	  "t.yaml:8:51: Gateway default/g: spec.listeners[0].hostname: " HOST_WHY("*.example.com")
	  NOT_ACCEPTED },
	{ "  - {name: l, port: 443, protocol: TLS, tls: {mode: Passthrough}, hostname: a.io}\n",
	  true, "t.yaml:8:77: Gateway default/g: spec.listeners[0].hostname: " HOST_WHY("a.io")
	  NOT_ACCEPTED },
};

static void test_listener_diags(void **state)
{
	struct ks_diags d;
	struct km_set s;
	char yaml[1024];
	size_t i;
	int err;

	(void)state;
	for (i = 0; i < sizeof(listener_cases) / sizeof(listener_cases[0]); i++) {
		const struct diag_case *c = &listener_cases[i];

		print_message("case %zu\n", i);
		snprintf(yaml, sizeof(yaml), GW_HDR "%s", c->listener);
		err = load_set(&s, &d, yaml);
		if (err != (c->warning ? 0 : -EINVAL) || !has_diag(&d, c->warning, c->msg)) {
			dump(&d);
			fail_msg("expected %s (load %d): %s", c->warning ? "warning" : "error", err,
				 c->msg);
		}
		km_set_free(&s);
		ks_diags_free(&d);
	}
}

/* What the parser keeps: defaults applied. */
static void test_listener_fields(void **state)
{
	static const char yaml[] = GW_HDR
		"  - {name: http, port: 80, protocol: HTTP}\n"
		"  - name: tls\n"
		"    port: 443\n"
		"    protocol: TLS\n"
		"    hostname: a.example.com\n"
		"    tls: {mode: Passthrough}\n"
		"    allowedRoutes:\n"
		"      namespaces:\n"
		"        from: Selector\n"
		"        selector:\n"
		"          matchLabels: {env: prod}\n"
		"          matchExpressions:\n"
		"          - {key: tier, operator: NotIn, values: [db, cache]}\n"
		"          - {key: team, operator: Exists}\n"
		"      kinds: [{kind: TLSRoute}, {group: policy.linkerd.io, kind: HTTPRoute}]\n"
		"  - {name: https, port: 8443, protocol: HTTPS, allowedRoutes: {namespaces: {from: All}}}\n";
	const struct km_listener *l;
	struct ks_diags d;
	struct km_set s;

	(void)state;
	assert_int_equal(load_set(&s, &d, yaml), 0);
	assert_int_equal(s.n_gateways, 1);
	assert_int_equal(s.gateways[0].n_listeners, 3);
	l = &s.gateways[0].listeners[0];
	assert_int_equal(l->tls, KM_TLS_NONE);
	assert_null(l->hostname);
	assert_int_equal(l->from, KM_FROM_SAME);
	assert_int_equal(l->n_kinds, 0);
	assert_int_equal(l->sel.n_labels + l->sel.n_exprs, 0);
	l = &s.gateways[0].listeners[1];
	assert_int_equal(l->tls, KM_TLS_PASSTHROUGH);
	assert_string_equal(l->hostname, "a.example.com");
	assert_int_equal(l->hostname_pos.line, 12);
	assert_int_equal(l->hostname_pos.col, 15);
	assert_int_equal(l->from, KM_FROM_SELECTOR);
	assert_int_equal(l->sel.n_labels, 1);
	assert_string_equal(l->sel.labels[0].key, "env");
	assert_string_equal(l->sel.labels[0].value, "prod");
	assert_int_equal(l->sel.n_exprs, 2);
	assert_string_equal(l->sel.exprs[0].key, "tier");
	assert_int_equal(l->sel.exprs[0].op, KM_SEL_NOT_IN);
	assert_int_equal(l->sel.exprs[0].n_values, 2);
	assert_string_equal(l->sel.exprs[0].values[1], "cache");
	assert_int_equal(l->sel.exprs[1].op, KM_SEL_EXISTS);
	assert_int_equal(l->sel.exprs[1].n_values, 0);
	assert_int_equal(l->n_kinds, 2);
	assert_string_equal(l->kinds[0].group, "gateway.networking.k8s.io");
	assert_string_equal(l->kinds[0].kind, "TLSRoute");
	assert_string_equal(l->kinds[1].group, "policy.linkerd.io");
	l = &s.gateways[0].listeners[2];
	assert_int_equal(l->tls, KM_TLS_TERMINATE);
	assert_int_equal(l->from, KM_FROM_ALL);
	/* the hostname and Terminate warnings */
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_errors, 0);
	km_set_free(&s);
	ks_diags_free(&d);

	/* A wrong mode is the one message: no Terminate warning besides. */
	assert_int_equal(load_set(&s, &d, GW_HDR "  - {name: l, port: 443, protocol: HTTPS, "
				  "tls: {mode: Passthrough}}\n"), -EINVAL);
	assert_int_equal(d.n, 1);
	km_set_free(&s);
	ks_diags_free(&d);
	assert_int_equal(load_set(&s, &d, GW_HDR "  - {name: l, port: 443, protocol: TLS, "
				  "tls: {mode: Pass}}\n"), -EINVAL);
	assert_int_equal(d.n, 1);
	km_set_free(&s);
	ks_diags_free(&d);
}

/* ---- km_listener_admits ---- */

#define NS(name, labels) "apiVersion: v1\nkind: Namespace\nmetadata: {name: " name \
	", labels: " labels "}\n---\n"
#define ROUTE(api, kind, ns) "apiVersion: gateway.networking.k8s.io/" api "\nkind: " kind \
	"\nmetadata: {name: r, namespace: " ns "}\n" \
	"spec: {rules: [{backendRefs: [{name: s, port: 80}]}]}\n---\n"
#define ALL "allowedRoutes: {namespaces: {from: All}}"
#define BY(sel) "allowedRoutes: {namespaces: {from: Selector, selector: " sel "}}"

static const char admits_yaml[] =
	NS("app", "{env: prod, tier: web}")
	NS("other", "{env: dev}")
	NS("third", "{tier: web, env: dev}")
	NS("teamed", "{tier: api, team: x}")
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: Gateway\n"
	"metadata: {name: gw, namespace: infra}\n"
	"spec:\n"
	"  gatewayClassName: c\n"
	"  addresses: [{value: 10.0.0.1}]\n"
	"  listeners:\n"
	"  - {name: same, port: 80, protocol: HTTP}\n"
	"  - {name: all, port: 81, protocol: HTTP, " ALL "}\n"
	"  - {name: sel, port: 82, protocol: HTTP, " BY("{matchLabels: {env: prod}}") "}\n"
	"  - {name: expr, port: 83, protocol: HTTP, " BY("{matchExpressions: ["
	"{key: tier, operator: In, values: [web, api]}, {key: env, operator: NotIn, values: [dev]}, "
	"{key: team, operator: DoesNotExist}]}") "}\n"
	"  - {name: exists, port: 84, protocol: HTTP, "
	BY("{matchExpressions: [{key: team, operator: Exists}]}") "}\n"
	"  - {name: empty, port: 85, protocol: HTTP, " BY("{}") "}\n"
	"  - {name: byname, port: 86, protocol: HTTP, "
	BY("{matchLabels: {kubernetes.io/metadata.name: app}}") "}\n"
	"  - {name: kinds, port: 87, protocol: HTTP, allowedRoutes: {namespaces: {from: All}, "
	"kinds: [{kind: GRPCRoute}, {group: policy.linkerd.io, kind: HTTPRoute}]}}\n"
	"  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}, " ALL "}\n"
	"  - {name: https-same, port: 444, protocol: HTTPS}\n"
	"  - {name: pass, port: 8443, protocol: TLS, tls: {mode: Passthrough}, " ALL "}\n"
	"  - {name: term, port: 8444, protocol: TLS, " ALL "}\n"
	"  - {name: host, port: 88, protocol: HTTP, hostname: a.example.com, " ALL "}\n"
	"  - {name: tcp, port: 9000, protocol: TCP, " ALL "}\n"
	"  - {name: udp, port: 53, protocol: UDP, " ALL "}\n"
	"---\n"
	ROUTE("v1", "HTTPRoute", "infra")
	ROUTE("v1", "HTTPRoute", "app")
	ROUTE("v1", "HTTPRoute", "other")
	ROUTE("v1", "HTTPRoute", "third")
	ROUTE("v1", "HTTPRoute", "teamed")
	ROUTE("v1", "HTTPRoute", "ghost")
	ROUTE("v1", "GRPCRoute", "app")
	ROUTE("v1alpha2", "TLSRoute", "app")
	ROUTE("v1alpha2", "TCPRoute", "app")
	ROUTE("v1alpha2", "UDPRoute", "app");

struct admit_case {
	const char *route;	/* "Kind ns" (every route is named r) */
	const char *listener;
	enum ksm_reason reason;
	const char *msg;	/* after "listener 'x' of Gateway infra/gw" */
};

#define SAME_NS(ns) " takes routes of its own namespace infra only " \
	"(allowedRoutes.namespaces.from: Same, the default), and this route is in namespace " ns \
	": set from: All, or from: Selector with a selector that matches namespace " ns
#define NO_MATCH(ns) " takes routes of the namespaces its allowedRoutes.namespaces.selector " \
	"matches, and Namespace " ns " does not match: "

static const struct admit_case admit_cases[] = {
	{ "HTTPRoute infra", "same", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute app", "same", KSM_R_NOT_ALLOWED_BY_LISTENERS, SAME_NS("app") },
	{ "HTTPRoute app", "all", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute ghost", "all", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute app", "sel", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute other", "sel", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("other") "matchLabels wants env=prod, and it has env=dev" },
	{ "HTTPRoute teamed", "sel", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("teamed") "matchLabels wants env=prod, and it has no label env" },
	{ "HTTPRoute ghost", "sel", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " takes routes of the namespaces its allowedRoutes.namespaces.selector matches, and "
	  "Namespace ghost is not among the manifests, so its labels are unknown: add it (kubectl "
	  "get namespace ghost -o yaml)" },
	{ "HTTPRoute app", "expr", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute other", "expr", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("other") "matchExpressions[0] wants tier In (web, api), and it has no label tier" },
	{ "HTTPRoute third", "expr", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("third") "matchExpressions[1] wants env NotIn (dev), and it has env=dev" },
	{ "HTTPRoute teamed", "expr", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("teamed") "matchExpressions[2] wants team DoesNotExist, and it has team=x" },
	{ "HTTPRoute teamed", "exists", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute app", "exists", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("app") "matchExpressions[0] wants team Exists, and it has no label team" },
	{ "HTTPRoute ghost", "empty", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute app", "byname", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute other", "byname", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  NO_MATCH("other") "matchLabels wants kubernetes.io/metadata.name=app, and it has "
	  "kubernetes.io/metadata.name=other" },
	{ "GRPCRoute app", "kinds", KSM_R_ACCEPTED, "" },
	{ "HTTPRoute app", "kinds", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " allows only GRPCRoute, policy.linkerd.io/HTTPRoute (allowedRoutes.kinds), not "
	  "HTTPRoute: add {kind: HTTPRoute} there" },
	{ "TCPRoute app", "all", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol HTTP, which cannot carry a TCPRoute (needs TCP or TLS)" },
	{ "TLSRoute app", "kinds", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol HTTP, which cannot carry a TLSRoute (needs TLS)" },
	{ "HTTPRoute app", "https", KSM_R_UNSUPPORTED_VALUE, ": " TERM_HTTPS },
	{ "GRPCRoute app", "https", KSM_R_UNSUPPORTED_VALUE, ": " TERM_HTTPS },
	/* allowedRoutes first: a route the listener does not allow is not judged further */
	{ "HTTPRoute app", "https-same", KSM_R_NOT_ALLOWED_BY_LISTENERS, SAME_NS("app") },
	{ "HTTPRoute infra", "https-same", KSM_R_UNSUPPORTED_VALUE, ": " TERM_HTTPS },
	{ "TLSRoute app", "pass", KSM_R_ACCEPTED, "" },
	/* Gateway API: Passthrough carries TLSRoutes only. */
	{ "TCPRoute app", "pass", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " is TLS Passthrough, which carries TLSRoutes only; a TCPRoute needs a TCP listener "
	  "(or TLS Terminate, which ksplit cannot do)" },
	{ "HTTPRoute app", "pass", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol TLS, which cannot carry a HTTPRoute (needs HTTP or HTTPS)" },
	{ "TLSRoute app", "term", KSM_R_UNSUPPORTED_VALUE, ": " TERM_TLS },
	{ "TCPRoute app", "term", KSM_R_UNSUPPORTED_VALUE, ": " TERM_TLS },
	{ "HTTPRoute app", "host", KSM_R_UNSUPPORTED_VALUE, ": " HOST_WHY("a.example.com") },
	{ "TCPRoute app", "tcp", KSM_R_ACCEPTED, "" },
	{ "TLSRoute app", "tcp", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol TCP, which cannot carry a TLSRoute (needs TLS)" },
	{ "UDPRoute app", "udp", KSM_R_ACCEPTED, "" },
	{ "UDPRoute app", "tcp", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol TCP, which cannot carry a UDPRoute (needs UDP)" },
	{ "TCPRoute app", "udp", KSM_R_NOT_ALLOWED_BY_LISTENERS,
	  " has protocol UDP, which cannot carry a TCPRoute (needs TCP or TLS)" },
};

static const struct km_route *find_route(const struct km_set *s, const char *kind_ns)
{
	size_t i;
	char buf[128];

	for (i = 0; i < s->n_routes; i++) {
		snprintf(buf, sizeof(buf), "%s %s", s->routes[i].m.kind, s->routes[i].m.ns);
		if (!strcmp(buf, kind_ns))
			return &s->routes[i];
	}
	fail_msg("no route %s", kind_ns);
	return NULL;
}

static const struct km_listener *find_listener(const struct km_gateway *g, const char *name)
{
	size_t i;

	for (i = 0; i < g->n_listeners; i++)
		if (!strcmp(g->listeners[i].name, name))
			return &g->listeners[i];
	fail_msg("no listener %s", name);
	return NULL;
}

static void test_admits(void **state)
{
	const struct km_gateway *g;
	const struct km_listener *l;
	const struct km_route *r;
	struct ks_diags d;
	struct km_set s;
	char msg[1024], want[1024];
	enum ksm_reason got;
	size_t i;

	(void)state;
	if (load_set(&s, &d, admits_yaml)) {
		dump(&d);
		fail_msg("admits_yaml does not load");
	}
	assert_int_equal(d.n_errors, 0);
	g = km_find_gateway(&s, "infra", "gw");
	assert_non_null(g);
	for (i = 0; i < sizeof(admit_cases) / sizeof(admit_cases[0]); i++) {
		const struct admit_case *c = &admit_cases[i];

		print_message("case %zu: %s on %s\n", i, c->route, c->listener);
		r = find_route(&s, c->route);
		l = find_listener(g, c->listener);
		memset(msg, 'x', sizeof(msg));
		got = km_listener_admits(&s, g, l, r, msg, sizeof(msg));
		if (*c->msg)
			snprintf(want, sizeof(want), "listener '%s' of Gateway infra/gw%s", c->listener,
				 c->msg);
		else
			want[0] = '\0';
		assert_string_equal(msg, want);
		assert_int_equal(got, c->reason);
		/* No message wanted: the same answer. */
		assert_int_equal(km_listener_admits(&s, g, l, r, NULL, 0), c->reason);
	}
	/* A message cut to the buffer, still terminated. */
	r = find_route(&s, "HTTPRoute app");
	l = find_listener(g, "same");
	assert_int_equal(km_listener_admits(&s, g, l, r, msg, 20), KSM_R_NOT_ALLOWED_BY_LISTENERS);
	assert_string_equal(msg, "listener 'same' of ");
	km_set_free(&s);
	ks_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_diags),
		cmocka_unit_test(test_listener_fields),
		cmocka_unit_test(test_admits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
