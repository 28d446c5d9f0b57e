// SPDX-License-Identifier: BSD-2-Clause
/* Parsing and per-object validation: every error path, exact messages and positions. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/manifest.h"
#include "config/config.h"
#include "config/yaml.h"
#include "unit/diag_helpers.h"

static bool has(const struct ks_diags *d, const char *msg)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (!strcmp(d->v[i].msg, msg) && !d->v[i].warning)
			return true;
	return false;
}

/* The input must fail with (at least) this exact error. */
static void expect_error(const char *yaml, const char *msg)
{
	struct ks_model m;
	struct ks_diags d;

	assert_int_equal(load1(yaml, &m, &d), -EINVAL);
	assert_int_equal(m.n_svcs, 0);
	assert_null(m.svcs);
	if (!has(&d, msg)) {
		dump(&d);
		fail_msg("missing error: %s", msg);
	}
	ks_diags_free(&d);
}

static void expect_ok(const char *yaml)
{
	struct ks_model m;
	struct ks_diags d;

	if (load1(yaml, &m, &d)) {
		dump(&d);
		fail_msg("expected success");
	}
	assert_int_equal(d.n_errors, 0);
	ks_model_free(&m);
	ks_diags_free(&d);
}

#define GW_HDR "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
#define SVC_HDR "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
#define EPS_HDR "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n"
#define RT_HDR "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
#define TGP_HDR "apiVersion: application-networking.k8s.aws/v1alpha1\nkind: TargetGroupPolicy\n" \
		"metadata: {name: p}\nspec:\n  targetRef: {kind: Service, name: s}\n"
/* A rule with a valid backendRef, prefixed by whatever rule fields a test adds. */
#define RULE(extra) "  rules:\n  - backendRefs: [{name: s, port: 80}]\n" extra

struct err_case {
	const char *yaml;
	const char *msg;
};

static const struct err_case yaml_cases[] = {
	{ "a: [1\n", "t.yaml:2:1: yaml: did not find expected ',' or ']' while parsing a flow sequence" },
	{ "a: &x [1]\nb: *x\n", "t.yaml:2:4: yaml: aliases (*x) are not supported: ksplit refuses "
	  "them rather than expand them (alias bombs); write the value out" },
	{ "- [1, 2]\n", "t.yaml:1:1: expected a Kubernetes object (a mapping), got a list" },
	{ "kind: Service\nmetadata: {name: s}\n", "t.yaml:1:1: Service default/s: apiVersion: missing required field" },
	{ "apiVersion: v1\nmetadata: {name: s}\n", "t.yaml:1:1: document default/s: kind: missing required field" },
	{ "apiVersion: v1\nkind: Service\n", "t.yaml:1:1: Service default/<unnamed>: metadata: missing required field" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
	  "t.yaml:3:11: Service x/<unnamed>: metadata.name: missing required field" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: ''}\n",
	  "t.yaml:3:11: Service default/: metadata.name: must not be empty" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: [a]}\n",
	  "t.yaml:3:18: Service default/<unnamed>: metadata.name: expected a string, got a list" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s, name: t}\nspec: {}\n",
	  "t.yaml:3:21: Service default/s: metadata.name: duplicate key 'name' (first at 3:12)" },
	{ "apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\nstatus: {a: 1, a: 2}\n",
	  "t.yaml:4:16: Deployment default/d: status.a: duplicate key 'a' (first at 4:10)" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n? [k]\n: v\nspec: {}\n",
	  "t.yaml:4:3: Service default/s: mapping keys must be strings, got a list" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {a: [1]}}\nspec: {}\n",
	  "t.yaml:3:33: Service default/s: metadata.labels.a: expected a string, got a list" },
	{ "apiVersion: gateway.networking.k8s.io/v9\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n",
	  "t.yaml:1:13: HTTPRoute default/r: apiVersion: unsupported version "
	  "'gateway.networking.k8s.io/v9' of HTTPRoute (supported: v1, v1beta1, v1alpha2)" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "t.yaml:1:1: Service default/s: spec: missing required field" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: []\n",
	  "t.yaml:4:7: Service default/s: spec: expected a mapping, got a list" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {}\nspce: {}\n",
	  "t.yaml:5:1: Service default/s: spce: unknown field 'spce', did you mean 'spec'?" },
};

static const struct err_case gw_cases[] = {
	{ GW_HDR "  gatewayClassName: c\n  listeners: [{name: h, port: 80, protocol: HTTP}]\n",
	  "t.yaml:5:3: Gateway default/g: spec.addresses: a Gateway needs at least one IPAddress "
	  "and neither spec.addresses nor status.addresses has one: ksplit intercepts connect() "
	  "to the Gateway's addresses. Write spec.addresses: [{type: IPAddress, value: <ClusterIP "
	  "of the Gateway's Service>}], or attach the route to the Service instead (GAMMA: "
	  "parentRefs: [{group: \"\", kind: Service, name: <Service>, port: <port>}])" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{type: Hostname, value: a.example}]\n"
	  "  listeners: [{name: h, port: 80, protocol: HTTP}]\n",
	  "t.yaml:6:22: Gateway default/g: spec.addresses[0].type: address type 'Hostname' cannot "
	  "be intercepted: ksplit needs IPAddress addresses" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{value: 10.0.0.999}]\n"
	  "  listeners: [{name: h, port: 80, protocol: HTTP}]\n",
	  "t.yaml:6:23: Gateway default/g: spec.addresses[0]: '10.0.0.999' is not an IP address" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{value: 10.0.0.1}]\n"
	  "  listeners: [{name: h, port: 80, protocol: GRPC}]\n",
	  "t.yaml:7:45: Gateway default/g: spec.listeners[0].protocol: 'GRPC' is not one of "
	  "HTTP, HTTPS, TCP, UDP, TLS" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{value: 10.0.0.1}]\n"
	  "  listeners: [{name: h, port: 0, protocol: HTTP}]\n",
	  "t.yaml:7:31: Gateway default/g: spec.listeners[0].port: 0 is out of range 1..65535" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{value: 10.0.0.1}]\n"
	  "  listeners: [{name: h, port: 80, protocol: HTTP}, {name: h, port: 81, protocol: HTTP}]\n",
	  "t.yaml:7:59: Gateway default/g: spec.listeners[1].name: duplicate listener name 'h'" },
	{ GW_HDR "  addresses: [{value: 10.0.0.1}]\n  listeners: []\n",
	  "t.yaml:5:3: Gateway default/g: spec.gatewayClassName: missing required field" },
	{ GW_HDR "  gatewayClassName: c\n  addresses: [{value: 10.0.0.1}]\n  listeners: []\n",
	  "t.yaml:7:14: Gateway default/g: spec.listeners: 1 to 64 listeners are required, got 0" },
	{ GW_HDR "  gatewayClassName: c\n  adresses: []\n  listeners: [{name: h, port: 80, protocol: HTTP}]\n",
	  "t.yaml:6:3: Gateway default/g: spec.adresses: unknown field 'adresses', did you mean 'addresses'?" },
};

static const struct err_case svc_cases[] = {
	{ SVC_HDR "  clusterIP: 10.0.0.300\n",
	  "t.yaml:5:14: Service default/s: spec.clusterIP: '10.0.0.300' is not an IP address" },
	{ SVC_HDR "  clusterIPs: [10.0.0.1, {a: b}]\n",
	  "t.yaml:5:26: Service default/s: spec.clusterIPs[1]: expected a string, got a mapping" },
	{ SVC_HDR "  clusterIP: None\n  clusterIPs: [10.0.0.1]\n",
	  "t.yaml:5:3: Service default/s: spec.clusterIP: 'None' (headless) cannot be combined with IPs" },
	{ SVC_HDR "  type: Balancer\n",
	  "t.yaml:5:9: Service default/s: spec.type: 'Balancer' is not one of ClusterIP, NodePort, "
	  "LoadBalancer, ExternalName" },
	{ SVC_HDR "  ports: [{port: 80, protocol: ICMP}]\n",
	  "t.yaml:5:32: Service default/s: spec.ports[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP" },
	{ SVC_HDR "  ports: [{port: 65536}]\n",
	  "t.yaml:5:18: Service default/s: spec.ports[0].port: 65536 is out of range 1..65535" },
	{ SVC_HDR "  ports: [{name: a}]\n",
	  "t.yaml:5:11: Service default/s: spec.ports[0].port: missing required field" },
	{ SVC_HDR "  ports: [{name: a, port: 80}, {port: 81}]\n",
	  "t.yaml:5:32: Service default/s: spec.ports[1].name: required when a Service has more "
	  "than one port" },
	{ SVC_HDR "  ports: [{name: a, port: 80}, {name: a, port: 81}]\n",
	  "t.yaml:5:39: Service default/s: spec.ports[1].name: duplicate port name 'a'" },
	{ SVC_HDR "  ports: [{port: 80, targetPort: 99999}]\n",
	  "t.yaml:5:34: Service default/s: spec.ports[0].targetPort: 99999 is out of range 1..65535" },
	{ SVC_HDR "  ports: [{port: 80, targetPort: [1]}]\n",
	  "t.yaml:5:34: Service default/s: spec.ports[0].targetPort: expected a port number or "
	  "name, got a list" },
	{ SVC_HDR "  ports: [{port: 80, tragetPort: 8080}]\n",
	  "t.yaml:5:22: Service default/s: spec.ports[0].tragetPort: unknown field 'tragetPort', "
	  "did you mean 'targetPort'?" },
	{ SVC_HDR "  ipFamilies: [IPv5]\n",
	  "t.yaml:5:16: Service default/s: spec.ipFamilies[0]: expected IPv4 or IPv6" },
	{ SVC_HDR "  publishNotReadyAddresses: maybe\n",
	  "t.yaml:5:29: Service default/s: spec.publishNotReadyAddresses: expected true or false, got 'maybe'" },
	{ SVC_HDR "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n",
	  "t.yaml:5:54: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: "
	  "0 is out of range 1..86400" },
	{ SVC_HDR "  externalIPs: [nope]\n",
	  "t.yaml:5:17: Service default/s: spec.externalIPs[0]: 'nope' is not an IP address" },
	{ SVC_HDR "  selector: {app: {x: 1}}\n",
	  "t.yaml:5:19: Service default/s: spec.selector.app: expected a string, got a mapping" },
};

static const struct err_case eps_cases[] = {
	{ EPS_HDR "endpoints: []\n", "t.yaml:1:1: EndpointSlice default/e: addressType: missing required field" },
	{ EPS_HDR "addressType: IPv5\n",
	  "t.yaml:4:14: EndpointSlice default/e: addressType: 'IPv5' is not one of IPv4, IPv6, FQDN" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: ['fd00::1']}]\n",
	  "t.yaml:5:26: EndpointSlice default/e: endpoints[0].addresses[0]: 'fd00::1' is not an "
	  "IPv4 address (addressType)" },
	{ EPS_HDR "addressType: IPv6\nendpoints: [{addresses: [x]}]\n",
	  "t.yaml:5:26: EndpointSlice default/e: endpoints[0].addresses[0]: 'x' is not an IP address" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: []}]\n",
	  "t.yaml:5:25: EndpointSlice default/e: endpoints[0].addresses: 1 to 100 addresses are "
	  "required, got 0" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{conditions: {}}]\n",
	  "t.yaml:5:13: EndpointSlice default/e: endpoints[0].addresses: missing required field" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: yes}}]\n",
	  "t.yaml:5:57: EndpointSlice default/e: endpoints[0].conditions.ready: expected true or "
	  "false, got 'yes'" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {redy: true}}]\n",
	  "t.yaml:5:50: EndpointSlice default/e: endpoints[0].conditions.redy: unknown field "
	  "'redy', did you mean 'ready'?" },
	{ EPS_HDR "addressType: IPv4\nports: [{port: 0}]\n",
	  "t.yaml:5:16: EndpointSlice default/e: ports[0].port: 0 is out of range 1..65535" },
	{ EPS_HDR "addressType: IPv4\nspec: {}\n",
	  "t.yaml:5:1: EndpointSlice default/e: spec: unknown field 'spec'" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], targetRef: {nam: x}}]\n",
	  "t.yaml:5:49: EndpointSlice default/e: endpoints[0].targetRef.nam: unknown field 'nam', "
	  "did you mean 'name'?" },
	{ EPS_HDR "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hints: {forZones: [{}]}}]\n",
	  "t.yaml:5:56: EndpointSlice default/e: endpoints[0].hints.forZones[0].name: missing required field" },
};

#define L4 "ksplit picks a backend at connect(), before any byte of the request exists"
static const struct err_case route_cases[] = {
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: \"5\"}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: expected an "
	  "integer, got the string \"5\"" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: -1}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: -1 is out of range 0..1000000" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: 1000001}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: 1000001 is out of range 0..1000000" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: 2.5}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: expected an integer, got '2.5'" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: lots}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: expected an integer, got 'lots'" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: 99999999999999999999}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: expected an "
	  "integer, got '99999999999999999999'" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weight: {a: 1}}]\n",
	  "t.yaml:6:47: HTTPRoute default/r: spec.rules[0].backendRefs[0].weight: expected an integer, got a mapping" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s}]\n",
	  "t.yaml:6:19: HTTPRoute default/r: spec.rules[0].backendRefs[0].port: required for a "
	  "Service backendRef (the Service port)" },
	{ RT_HDR "  rules:\n  - backendRefs: [{port: 80}]\n",
	  "t.yaml:6:19: HTTPRoute default/r: spec.rules[0].backendRefs[0].name: missing required field" },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, weigth: 1}]\n",
	  "t.yaml:6:39: HTTPRoute default/r: spec.rules[0].backendRefs[0].weigth: unknown field "
	  "'weigth', did you mean 'weight'?" },
	{ RT_HDR "  rules:\n  - backendRefs: [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]\n",
	  "t.yaml:6:18: HTTPRoute default/r: spec.rules[0].backendRefs: at most 16 backendRefs are allowed, got 17" },
	{ RT_HDR "  rules:\n  - backendRefs: [a]\n",
	  "t.yaml:6:19: HTTPRoute default/r: spec.rules[0].backendRefs[0]: expected a mapping, got a scalar" },
	{ RT_HDR "  rules:\n  - matches: []\n",
	  "t.yaml:6:5: HTTPRoute default/r: spec.rules[0].backendRefs: at least one backendRef is "
	  "required: ksplit has nothing to split traffic to" },
	{ RT_HDR "  rules: []\n",
	  "t.yaml:5:10: HTTPRoute default/r: spec.rules: exactly one rule with backendRefs is required" },
	{ RT_HDR "  parentRefs: [{name: g}]\n",
	  "t.yaml:5:3: HTTPRoute default/r: spec.rules: exactly one rule with backendRefs is required" },
	{ RT_HDR RULE("  - backendRefs: [{name: s, port: 80}]\n"),
	  "t.yaml:7:5: HTTPRoute default/r: spec.rules: 2 rules: ksplit supports exactly one rule "
	  "per route, because at connect() every rule would match every connection" },
	{ RT_HDR "  hostnames: [a.example.com]\n" RULE(""),
	  "t.yaml:5:14: HTTPRoute default/r: spec.hostnames: hostnames cannot be enforced: " L4
	  " (no Host header or SNI yet), so the route would silently apply to every hostname; remove them" },
	{ RT_HDR RULE("    matches: [{path: {type: Exact, value: /}}]\n"),
	  "t.yaml:7:29: HTTPRoute default/r: spec.rules[0].matches[0].path.type: Exact path "
	  "matching cannot be honoured: " L4 "; only PathPrefix / (every request) can" },
	{ RT_HDR RULE("    matches: [{path: {type: RegularExpression, value: /.*}}]\n"),
	  "t.yaml:7:29: HTTPRoute default/r: spec.rules[0].matches[0].path.type: RegularExpression "
	  "path matching cannot be honoured: " L4 "; only PathPrefix / (every request) can" },
	{ RT_HDR RULE("    matches: [{path: {value: /api}}]\n"),
	  "t.yaml:7:30: HTTPRoute default/r: spec.rules[0].matches[0].path.value: path prefix "
	  "'/api' cannot be honoured: " L4 "; only PathPrefix / (every request) can" },
	{ RT_HDR RULE("    matches: [{path: {type: Prefix}}]\n"),
	  "t.yaml:7:29: HTTPRoute default/r: spec.rules[0].matches[0].path.type: 'Prefix' is not "
	  "one of PathPrefix, Exact, RegularExpression" },
	{ RT_HDR RULE("    matches: [{headers: [{name: x, value: y}]}]\n"),
	  "t.yaml:7:25: HTTPRoute default/r: spec.rules[0].matches[0].headers: header matching "
	  "cannot be honoured: " L4 },
	{ RT_HDR RULE("    matches: [{queryParams: [{name: x, value: y}]}]\n"),
	  "t.yaml:7:29: HTTPRoute default/r: spec.rules[0].matches[0].queryParams: query parameter "
	  "matching cannot be honoured: " L4 },
	{ RT_HDR RULE("    matches: [{method: GET}]\n"),
	  "t.yaml:7:24: HTTPRoute default/r: spec.rules[0].matches[0].method: method matching "
	  "cannot be honoured: " L4 },
	{ RT_HDR RULE("    matches: [{}, {}]\n"),
	  "t.yaml:7:14: HTTPRoute default/r: spec.rules[0].matches: 2 matches: only none or a "
	  "single PathPrefix / match can be honoured, because " L4 },
	{ RT_HDR RULE("    filters: [{type: RequestRedirect}]\n"),
	  "t.yaml:7:14: HTTPRoute default/r: spec.rules[0].filters: rule filters cannot be "
	  "honoured: " L4 },
	{ RT_HDR "  rules:\n  - backendRefs: [{name: s, port: 80, filters: [{type: X}]}]\n",
	  "t.yaml:6:48: HTTPRoute default/r: spec.rules[0].backendRefs[0].filters: backendRef "
	  "filters cannot be honoured: " L4 },
	{ RT_HDR RULE("    timeouts: {request: 1s}\n"),
	  "t.yaml:7:15: HTTPRoute default/r: spec.rules[0].timeouts: request timeouts cannot be "
	  "honoured: ksplit only places connections and never sees requests or responses" },
	{ RT_HDR RULE("    retry: {attempts: 3}\n"),
	  "t.yaml:7:12: HTTPRoute default/r: spec.rules[0].retry: retries cannot be honoured: "
	  "ksplit only places connections and never sees requests or responses" },
	{ RT_HDR RULE("    sessionPersistence: {type: Cookie}\n"),
	  "t.yaml:7:25: HTTPRoute default/r: spec.rules[0].sessionPersistence: session persistence "
	  "cannot be honoured: " L4 " (no cookie or header to key on)" },
	{ RT_HDR RULE("    matchs: []\n"),
	  "t.yaml:7:5: HTTPRoute default/r: spec.rules[0].matchs: unknown field 'matchs', did you "
	  "mean 'matches'?" },
	{ RT_HDR "  parentRefs: [{name: g, port: 0}]\n" RULE(""),
	  "t.yaml:5:32: HTTPRoute default/r: spec.parentRefs[0].port: 0 is out of range 1..65535" },
	{ RT_HDR "  parentRefs: [{sectionName: x}]\n" RULE(""),
	  "t.yaml:5:16: HTTPRoute default/r: spec.parentRefs[0].name: missing required field" },
	{ "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: r}\nspec:\n"
	  "  rules:\n  - backendRefs: [{name: s, port: 80}]\n    matches: []\n",
	  "t.yaml:7:5: TCPRoute default/r: spec.rules[0].matches: unknown field 'matches'" },
	{ "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: UDPRoute\nmetadata: {name: r}\nspec:\n"
	  "  hostnames: []\n" RULE(""),
	  "t.yaml:5:3: UDPRoute default/r: spec.hostnames: unknown field 'hostnames'" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
	  "  annotations: {ksplit.io/passive-failures: '1001'}\nspec:\n" RULE(""),
	  "t.yaml:5:45: HTTPRoute default/r: metadata.annotations.ksplit.io/passive-failures: "
	  "'1001' is not an integer between 0 and 1000" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
	  "  annotations: {ksplit.io/passive-failures: '-1'}\nspec:\n" RULE(""),
	  "t.yaml:5:45: HTTPRoute default/r: metadata.annotations.ksplit.io/passive-failures: "
	  "'-1' is not an integer between 0 and 1000" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
	  "  annotations: {ksplit.io/empty-group: drop}\nspec:\n" RULE(""),
	  "t.yaml:5:40: HTTPRoute default/r: metadata.annotations.ksplit.io/empty-group: 'drop' "
	  "is not one of shift, reject" },
};

static const struct err_case misc_cases[] = {
	{ TGP_HDR "  healthCheck: {intervalSeconds: 4}\n",
	  "t.yaml:6:34: TargetGroupPolicy default/p: spec.healthCheck.intervalSeconds: 4 is out of range 5..300" },
	{ TGP_HDR "  healthCheck: {intervalSeconds: 301}\n",
	  "t.yaml:6:34: TargetGroupPolicy default/p: spec.healthCheck.intervalSeconds: 301 is out of range 5..300" },
	{ TGP_HDR "  healthCheck: {timeoutSeconds: 121}\n",
	  "t.yaml:6:33: TargetGroupPolicy default/p: spec.healthCheck.timeoutSeconds: 121 is out of range 1..120" },
	{ TGP_HDR "  healthCheck: {timeoutSeconds: 0}\n",
	  "t.yaml:6:33: TargetGroupPolicy default/p: spec.healthCheck.timeoutSeconds: 0 is out of range 1..120" },
	{ TGP_HDR "  healthCheck: {healthyThresholdCount: 1}\n",
	  "t.yaml:6:40: TargetGroupPolicy default/p: spec.healthCheck.healthyThresholdCount: 1 is out of range 2..10" },
	{ TGP_HDR "  healthCheck: {unhealthyThresholdCount: 11}\n",
	  "t.yaml:6:42: TargetGroupPolicy default/p: spec.healthCheck.unhealthyThresholdCount: 11 is out of range 2..10" },
	{ TGP_HDR "  healthCheck: {port: 70000}\n",
	  "t.yaml:6:23: TargetGroupPolicy default/p: spec.healthCheck.port: 70000 is out of range 1..65535" },
	{ TGP_HDR "  healthCheck: {statusMatch: '299-200'}\n",
	  "t.yaml:6:30: TargetGroupPolicy default/p: spec.healthCheck.statusMatch: '299-200' is not "
	  "a list of HTTP codes or ranges like \"200\", \"200-299\" or \"200,204,301-302\"" },
	{ TGP_HDR "  healthCheck: {statusMatch: '200,'}\n",
	  "t.yaml:6:30: TargetGroupPolicy default/p: spec.healthCheck.statusMatch: '200,' is not "
	  "a list of HTTP codes or ranges like \"200\", \"200-299\" or \"200,204,301-302\"" },
	{ TGP_HDR "  healthCheck: {path: health}\n",
	  "t.yaml:6:23: TargetGroupPolicy default/p: spec.healthCheck.path: 'health' must start with '/'" },
	{ TGP_HDR "  healthCheck: {protocol: UDP}\n",
	  "t.yaml:6:27: TargetGroupPolicy default/p: spec.healthCheck.protocol: 'UDP' is not one of HTTP, HTTPS, TCP" },
	{ TGP_HDR "  protocol: UDP\n",
	  "t.yaml:6:13: TargetGroupPolicy default/p: spec.protocol: 'UDP' is not one of HTTP, HTTPS, TCP" },
	{ TGP_HDR "  protocolVersion: HTTP3\n",
	  "t.yaml:6:20: TargetGroupPolicy default/p: spec.protocolVersion: 'HTTP3' is not one of "
	  "HTTP1, HTTP2, GRPC" },
	{ TGP_HDR "  healthCheck: {protocolVersion: GRPC}\n",
	  "t.yaml:6:34: TargetGroupPolicy default/p: spec.healthCheck.protocolVersion: 'GRPC' is not "
	  "one of HTTP1, HTTP2" },
	{ TGP_HDR "  healthCheck: {enabled: 1}\n",
	  "t.yaml:6:26: TargetGroupPolicy default/p: spec.healthCheck.enabled: expected true or false, got '1'" },
	{ TGP_HDR "  healthCheck: {intervalSecond: 10}\n",
	  "t.yaml:6:17: TargetGroupPolicy default/p: spec.healthCheck.intervalSecond: unknown field "
	  "'intervalSecond', did you mean 'intervalSeconds'?" },
	{ "apiVersion: application-networking.k8s.aws/v1alpha1\nkind: TargetGroupPolicy\n"
	  "metadata: {name: p}\nspec:\n  targetRef: {kind: Deployment, name: s}\n",
	  "t.yaml:5:21: TargetGroupPolicy default/p: spec.targetRef.kind: 'Deployment': only kind "
	  "Service can be targeted" },
	{ "apiVersion: application-networking.k8s.aws/v1alpha1\nkind: TargetGroupPolicy\n"
	  "metadata: {name: p}\nspec:\n  targetRef: {group: apps, kind: Service, name: s}\n",
	  "t.yaml:5:22: TargetGroupPolicy default/p: spec.targetRef.group: 'apps': only Services "
	  "(group \"\") can be targeted" },
	{ "apiVersion: application-networking.k8s.aws/v1alpha1\nkind: TargetGroupPolicy\n"
	  "metadata: {name: p}\nspec: {}\n",
	  "t.yaml:4:7: TargetGroupPolicy default/p: spec.targetRef: missing required field" },
	{ "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
	  "spec: {from: [{group: x, kind: HTTPRoute}], to: [{kind: Service}]}\n",
	  "t.yaml:4:15: ReferenceGrant default/g: spec.from[0].namespace: missing required field" },
	{ "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
	  "spec: {from: [{group: x, kind: HTTPRoute, namespace: n}], to: [{kind: Service}]}\n",
	  "t.yaml:4:64: ReferenceGrant default/g: spec.to[0].group: missing required field" },
	{ "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\n"
	  "spec: {to: []}\n",
	  "t.yaml:4:7: ReferenceGrant default/g: spec.from: missing required field" },
	{ SVC_HDR "  clusterIP: 10.0.0.1\n---\n" SVC_HDR "  clusterIP: 10.0.0.2\n",
	  "t.yaml:7:1: Service default/s: defined twice: also at t.yaml:1:1; this copy is refused" },
};

static void run_cases(const struct err_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		print_message("case %zu\n", i);
		expect_error(c[i].yaml, c[i].msg);
	}
}

#define RUN(arr) run_cases(arr, sizeof(arr) / sizeof(arr[0]))

static void test_yaml_errors(void **state) { (void)state; RUN(yaml_cases); }
static void test_gateway_errors(void **state) { (void)state; RUN(gw_cases); }
static void test_service_errors(void **state) { (void)state; RUN(svc_cases); }
static void test_slice_errors(void **state) { (void)state; RUN(eps_cases); }
static void test_route_errors(void **state) { (void)state; RUN(route_cases); }
static void test_misc_errors(void **state) { (void)state; RUN(misc_cases); }

/* All errors are collected, in every document and every file, not just the first. */
static void test_collects_all(void **state)
{
	const char *names[] = { "a.yaml", "b.yaml" };
	const char *bufs[] = { "a: [\n",
			       SVC_HDR "  clusterIP: x\n---\n" RT_HDR "  rules: []\n" };
	size_t lens[] = { strlen(bufs[0]), strlen(bufs[1]) };
	struct ks_model m;
	struct ks_diags d = { 0 };

	(void)state;
	assert_int_equal(ks_model_load_buffers(names, bufs, lens, 2, &m, &d), -EINVAL);
	assert_int_equal(d.n_errors, 3);
	assert_string_equal(d.v[0].msg, "a.yaml:2:1: yaml: did not find expected node content "
			    "while parsing a flow node");
	assert_string_equal(d.v[1].msg, "b.yaml:5:14: Service default/s: spec.clusterIP: 'x' is "
			    "not an IP address");
	assert_string_equal(d.v[2].msg, "b.yaml:11:10: HTTPRoute default/r: spec.rules: exactly "
			    "one rule with backendRefs is required");
	ks_diags_free(&d);
}

static void test_accepted_forms(void **state)
{
	(void)state;
	/* matches [{}] and [{path: {}}] mean PathPrefix /; skipped kinds; free-form status. */
	expect_ok(RT_HDR RULE("    matches: [{}]\n"));
	expect_ok(RT_HDR RULE("    matches: [{path: {}}]\n"));
	expect_ok(RT_HDR RULE("    matches: [{path: {type: PathPrefix, value: /}}]\n    filters: []\n"));
	expect_ok(RT_HDR "  hostnames: []\n" RULE(""));
	expect_ok("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {whatever: 1}\n"
		  "---\n---\n# only a comment\n---\n"
		  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"
		  "---\napiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: k}\n"
		  "spec: {template: {}}\n");
	expect_ok(SVC_HDR "  clusterIP: 10.0.0.1\n  type: NodePort\n  externalTrafficPolicy: Local\n"
		  "  internalTrafficPolicy: Cluster\n  sessionAffinity: ClientIP\n"
		  "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}\n"
		  "  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080, appProtocol: http}]\n"
		  "  selector: {app: x}\n  allocateLoadBalancerNodePorts: true\n"
		  "  trafficDistribution: PreferClose\n"
		  "status: {loadBalancer: {}, anything: [1, 2]}\n");
	expect_ok("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  uid: abc\n"
		  "  managedFields: [{manager: kubectl}]\n  annotations: {a: '1'}\nspec: {}\n");
}

/* "Billion laughs": refused at the first alias, long before any expansion. */
static void test_billion_laughs(void **state)
{
	static const char bomb[] =
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	struct timespec t0, t1;
	double ms;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_error(bomb, "t.yaml:2:8: yaml: aliases (*a) are not supported: ksplit refuses them "
		     "rather than expand them (alias bombs); write the value out");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms < 50.0);
}

static void test_depth_limit(void **state)
{
	char buf[512];
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < 70; i++)
		buf[n++] = '[';
	for (i = 0; i < 70; i++)
		buf[n++] = ']';
	buf[n++] = '\n';
	buf[n] = '\0';
	expect_error(buf, "t.yaml:1:65: yaml: nesting deeper than 64 levels");
}

static void test_nul_in_scalar(void **state)
{
	(void)state;
	expect_error("a: \"x\\0y\"\n", "t.yaml:1:4: yaml: NUL character in a scalar");
}

static char tmpdir[64];

static void write_file(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#define GOOD_SVC(n) "apiVersion: v1\nkind: Service\nmetadata: {name: " n "}\nspec: {clusterIP: 10.0.0.1}\n"

/* A ConfigMap volume layout: visible symlinks through ..data, hidden timestamp dir. */
static void test_directory(void **state)
{
	char path[128], target[512];
	const char *paths[1];
	struct ks_model m;
	struct ks_diags d = { 0 };

	(void)state;
	strcpy(tmpdir, "/tmp/ksplit-test-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/..2026_01_01", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	write_file("..2026_01_01/b.yaml", GOOD_SVC("b") "---\n" SVC_HDR "  clusterIP: bad-b\n");
	write_file("..2026_01_01/a.yml", SVC_HDR "  clusterIP: bad-a\n");
	snprintf(path, sizeof(path), "%s/..data", tmpdir);
	assert_int_equal(symlink("..2026_01_01", path), 0);
	snprintf(path, sizeof(path), "%s/b.yaml", tmpdir);
	assert_int_equal(symlink("..data/b.yaml", path), 0);
	snprintf(path, sizeof(path), "%s/a.yml", tmpdir);
	assert_int_equal(symlink("..data/a.yml", path), 0);
	write_file(".hidden.yaml", "this: [is not parsed\n");
	write_file("notes.txt", "this: [is not parsed\n");
	snprintf(path, sizeof(path), "%s/sub.yaml", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	paths[0] = tmpdir;
	assert_int_equal(ks_model_load(paths, 1, &m, &d), -EINVAL);
	assert_int_equal(d.n, 3);
	/* sorted by name: a.yml before b.yaml; duplicates found across files */
	snprintf(target, sizeof(target), "%s/a.yml:5:14: Service default/s: spec.clusterIP: "
		 "'bad-a' is not an IP address", tmpdir);
	assert_string_equal(d.v[0].msg, target);
	snprintf(target, sizeof(target), "%s/b.yaml:10:14: Service default/s: spec.clusterIP: "
		 "'bad-b' is not an IP address", tmpdir);
	assert_string_equal(d.v[1].msg, target);
	snprintf(target, sizeof(target), "%s/b.yaml:6:1: Service default/s: defined twice: also "
		 "at %s/a.yml:1:1; this copy is refused", tmpdir, tmpdir);
	assert_string_equal(d.v[2].msg, target);
	ks_diags_free(&d);

	/* missing path: -ENOENT, reported */
	snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
	paths[0] = path;
	assert_int_equal(ks_model_load(paths, 1, &m, &d), -ENOENT);
	snprintf(target, sizeof(target), "%s: No such file or directory", path);
	assert_string_equal(d.v[0].msg, target);
	ks_diags_free(&d);

	/* a file over the size cap is refused without being read */
	snprintf(path, sizeof(path), "%s/huge.yaml", tmpdir);
	{
		int fd = open(path, O_CREAT | O_WRONLY, 0600);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)KM_MAX_FILE_BYTES + 1), 0);
		close(fd);
	}
	assert_int_equal(ks_model_load(paths, 1, &m, &d), -EFBIG);
	snprintf(target, sizeof(target), "%s: file is larger than 16777216 bytes", path);
	assert_string_equal(d.v[0].msg, target);
	ks_diags_free(&d);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(km_edit_distance("weight", "weight"), 0);
	assert_int_equal(km_edit_distance("weigth", "weight"), 2);
	assert_int_equal(km_edit_distance("", "abc"), 3);
	assert_int_equal(km_edit_distance("port", "ports"), 1);
}

/* Whether two trees hold the same values, kinds and quoting (positions aside). */
static bool same_tree(const struct ky_node *a, const struct ky_node *b)
{
	size_t i;

	if (!a || !b)
		return a == b;
	if (a->type != b->type || a->n != b->n || a->nkids != b->nkids)
		return false;
	if (a->type == KY_SCALAR)
		return a->quoted == b->quoted && !strcmp(a->str, b->str);
	for (i = 0; i < a->nkids; i++)
		if (!same_tree(a->kids[i], b->kids[i]))
			return false;
	return true;
}

/*
 * The API source's JSON goes through json-c (ky_parse_json), everything else
 * through libyaml: the kinds' parsers must get the same tree from both.
 */
static void test_json_same_tree(void **state)
{
	static const char *const texts[] = {
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
		"\"labels\":{}},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":80,"
		"\"targetPort\":\"http\"}],\"x\":[],\"t\":true,\"f\":false,\"n\":null,"
		"\"d\":1.5,\"neg\":-3}}",
		"  {\"s\":\"caf\\u00e9 \\\"q\\\" \\n\",\"deep\":[[[{\"k\":[1,2,3]}]]],\"e\":\"\"}\n",
	};
	struct ks_diags d = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ky_stream y = { 0 }, j = { 0 };

		assert_int_equal(ky_parse("y", texts[i], strlen(texts[i]), &y, &d), 0);
		assert_int_equal(ky_parse_json("j", texts[i], strlen(texts[i]), &j, &d), 0);
		assert_int_equal(y.n, 1);
		assert_int_equal(j.n, 1);
		assert_true(same_tree(y.docs[0].root, j.docs[0].root));
		ky_stream_free(&y);
		ky_stream_free(&j);
	}
	assert_int_equal(d.n, 0);
	/* Bad JSON is an error that names the object, as a YAML error names the file. */
	{
		/* Strict JSON: no trailing comma, no bad UTF-8. */
		static const char *const bad[] = { "{\"a\":1} x", "{\"a\":", "{\"a\":\"\\u0000\"}",
						   "{\"a\":1,}", "{\"a\":\"\xff\"}" };
		struct ky_stream j = { 0 };

		for (i = 0; i < 5; i++)
			assert_int_equal(ky_parse_json("services/ns/a", bad[i], strlen(bad[i]), &j, &d),
					 -EINVAL);
		/* A NUL after the value is no white space (strchr took it for one). */
		assert_int_equal(ky_parse_json("services/ns/a", "{\"a\":1}\0\0", 9, &j, &d), -EINVAL);
		assert_int_equal(j.n, 0);
	}
	assert_int_equal(d.n, 6);
	assert_string_equal(d.v[0].msg, "services/ns/a:1:9: json: unexpected character");
	assert_string_equal(d.v[1].msg, "services/ns/a:1:6: json: the text ends inside a value");
	assert_string_equal(d.v[2].msg, "services/ns/a: json: a string holds a NUL character");
	ks_diags_free(&d);
}

/*
 * ky_parse_json reads plain texts with its own reader (into an arena) and
 * hands the rest to json-c: both must give json-c's tree, and the errors
 * stay json-c's.
 */
static void test_json_fast_path(void **state)
{
	static const struct {
		const char *text;
		bool fast;	/* read without json-c */
	} cases[] = {
		{ "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
		  "{\"name\":\"s1-x\",\"namespace\":\"bench\",\"labels\":{\"kubernetes.io/service-"
		  "name\":\"s1\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":"
		  "8080}],\"endpoints\":[{\"addresses\":[\"10.128.0.11\"]},{\"addresses\":"
		  "[\"10.128.0.12\"],\"conditions\":{\"ready\":false,\"serving\":true}}]}", true },
		{ " {\"a\" : [ 1 , -2 , 0 , 123456789012345678 , true , false , null , { } , [ ] ,"
		  " \"\" ] }\r\n\t", true },
		{ "{\"s\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\",\"k\\\"\":{\"x\":{\"y\":[[[]]]}}}", true },
		{ "{\"a\":\"caf\\u00e9\"}", false },
		{ "{\"a\":\"caf\xc3\xa9\"}", false },
		{ "{\"a\":1,\"b\":2,\"a\":3}", false },
		{ "{\"a\":1.5,\"b\":1e3}", false },
		{ "{\"a\":-0}", false },
		{ "{\"a\":1234567890123456789}", false },
		{ "{\"a\":\"\x7f\"}", false },
		{ "{\"a\":\"x\\u0041\"}", false },
	};
	struct ks_diags d = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ky_stream f = { 0 }, c = { 0 };
		const char *t = cases[i].text;

		assert_int_equal(ky_parse_json("f", t, strlen(t), &f, &d), 0);
		assert_int_equal(ky_parse_json_c("c", t, strlen(t), &c, &d), 0);
		assert_int_equal(f.n, 1);
		assert_int_equal(c.n, 1);
		assert_true(same_tree(f.docs[0].root, c.docs[0].root));
		assert_int_equal(f.arena != NULL, cases[i].fast);
		ky_stream_free(&f);
		ky_stream_free(&c);
	}
	assert_int_equal(d.n, 0);
	/* Texts the fast path gives up on part way: json-c's errors, nothing of the arena left. */
	{
		static const char *const bad[] = { "{\"a\":1} x", "{\"a\":[1,2", "{\"a\":tru}",
						   "{\"a\":01}", "{\"a\" 1}", "{\"a\":\"b\"\"c\":1}" };
		struct ky_stream j = { 0 };
		struct ks_diags dc = { 0 };

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(ky_parse_json("b", bad[i], strlen(bad[i]), &j, &d), -EINVAL);
			assert_int_equal(j.n, 0);
			assert_null(j.arena);
			assert_int_equal(ky_parse_json_c("b", bad[i], strlen(bad[i]), &j, &dc), -EINVAL);
			assert_string_equal(d.v[i].msg, dc.v[i].msg);
		}
		assert_string_equal(d.v[0].msg, "b:1:9: json: unexpected character");
		assert_string_equal(d.v[1].msg, "b:1:10: json: the text ends inside a value");
		assert_string_equal(d.v[2].msg, "b:1:9: json: boolean expected");
		ks_diags_free(&dc);
	}
	ks_diags_free(&d);
}

static void test_tree(void **state)
{
	static const char y[] = "a:\n  - 1\n  - 'two'\n---\n---\nb: {c: d}\n";
	struct ky_stream st = { 0 };
	struct ks_diags d = { 0 };
	struct ky_node *a;

	(void)state;
	assert_int_equal(ky_parse("x", y, strlen(y), &st, &d), 0);
	assert_int_equal(st.n, 3);
	assert_null(st.docs[1].root);
	a = ky_map_get(st.docs[0].root, "a");
	assert_non_null(a);
	assert_int_equal(a->type, KY_SEQ);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->kids[1]->line, 3);
	assert_int_equal(a->kids[1]->col, 5);
	assert_false(a->kids[0]->quoted);
	assert_true(a->kids[1]->quoted);
	assert_string_equal(ky_map_get(ky_map_get(st.docs[2].root, "b"), "c")->str, "d");
	assert_null(ky_map_get(st.docs[2].root, "zz"));
	ky_stream_free(&st);
	assert_int_equal(d.n, 0);
	assert_int_equal(ky_parse("x", "a", (size_t)KY_MAX_BYTES + 1, &st, &d), -EINVAL);
	assert_string_equal(d.v[0].msg, "x: file is larger than 16777216 bytes");
	ks_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_gateway_errors),
		cmocka_unit_test(test_service_errors),
		cmocka_unit_test(test_slice_errors),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_misc_errors),
		cmocka_unit_test(test_collects_all),
		cmocka_unit_test(test_accepted_forms),
		cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_nul_in_scalar),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_edit_distance),
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_json_same_tree),
		cmocka_unit_test(test_json_fast_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
