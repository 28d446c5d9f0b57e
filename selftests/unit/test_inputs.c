// SPDX-License-Identifier: BSD-2-Clause
/*
 * Inputs people have: kubectl Lists, live Gateways (status.addresses),
 * group "core", HTTPRoute v1alpha2, Lattice TargetGroupPolicies (ServiceExport
 * targets, protocol defaults), and the VIP classes a node-wide hook must not
 * take. Exact messages and positions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/addr.h"
#include "config/config.h"
#include "unit/diag_helpers.h"

/* Loads yaml; 0 and no error expected, the model is the caller's to free. */
static void load_ok(const char *yaml, struct ks_model *m, struct ks_diags *d)
{
	if (load1(yaml, m, d)) {
		dump(d);
		fail_msg("expected success");
	}
	assert_int_equal(d->n_errors, 0);
}

struct diag_case {
	const char *yaml;
	bool warning;		/* the expected diagnostic is a warning */
	const char *msg;
};

static void run_cases(const struct diag_case *cases, size_t n)
{
	struct ks_model m;
	struct ks_diags d;
	size_t i;

	for (i = 0; i < n; i++) {
		int rc = load1(cases[i].yaml, &m, &d);

		fprintf(stderr, "case %zu\n", i);
		/* A warning case may carry errors of its own (then the load fails). */
		assert_int_equal(rc, d.n_errors ? -EINVAL : 0);
		if (!cases[i].warning)
			assert_int_equal(rc, -EINVAL);
		expect_diag(&d, cases[i].warning, cases[i].msg);
		ks_model_free(&m);
		ks_diags_free(&d);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One Service s (ClusterIP 10.96.0.1, port 80 "http") with one endpoint, as List items or documents. */
#define SVC_ITEM(pfx)									\
	pfx "- apiVersion: v1\n"							\
	pfx "  kind: Service\n"								\
	pfx "  metadata: {name: s}\n"							\
	pfx "  spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}\n"		\
	pfx "- apiVersion: discovery.k8s.io/v1\n"					\
	pfx "  kind: EndpointSlice\n"							\
	pfx "  metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}\n"	\
	pfx "  addressType: IPv4\n"							\
	pfx "  ports: [{name: http, port: 8080}]\n"					\
	pfx "  endpoints: [{addresses: [10.1.0.1]}]\n"
#define SVC_DOCS									\
	"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"				\
	"spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}\n"		\
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"			\
	"metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}\n"		\
	"addressType: IPv4\nports: [{name: http, port: 8080}]\n"			\
	"endpoints: [{addresses: [10.1.0.1]}]\n---\n"
#define GW_LISTENERS "  gatewayClassName: c\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n"
#define ROUTE_G(api)									\
	"apiVersion: gateway.networking.k8s.io/" api "\nkind: HTTPRoute\n"		\
	"metadata: {name: r}\nspec:\n  parentRefs: [{name: g}]\n"			\
	"  rules: [{backendRefs: [{name: s, port: 80}]}]\n"

/* ---- 1. kind: List and <Kind>List ---- */

static const struct diag_case list_cases[] = {
	/* An item's own errors are at the item, naming the item. */
	{ "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n"
	  "- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n", false,
	  "t.yaml:5:3: Service default/s: spec: missing required field" },
	{ "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  metadata: {name: x}\n", false,
	  "t.yaml:4:3: document default/x: kind: missing required field" },
	{ "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n",
	  false, "t.yaml:4:3: List default/<unnamed>: items[0]: a List inside a List is not "
	  "supported: move its items into the outer List's items, or write them as separate "
	  "documents" },
	{ "apiVersion: v1\nkind: List\nitems:\n- kind: ServiceList\n  apiVersion: v1\n  items: []\n",
	  false, "t.yaml:4:3: List default/<unnamed>: items[0]: a List inside a List is not "
	  "supported: move its items into the outer List's items, or write them as separate "
	  "documents" },
	{ "apiVersion: v1\nkind: List\n", false,
	  "t.yaml:1:1: List default/<unnamed>: items: missing required field" },
	{ "apiVersion: v2\nkind: List\nitems: []\n", false,
	  "t.yaml:1:13: List default/<unnamed>: apiVersion: unsupported version 'v2' of List "
	  "(supported: v1)" },
	{ "kind: List\nitems: []\n", false,
	  "t.yaml:1:1: List default/<unnamed>: apiVersion: missing required field" },
	{ "apiVersion: v1\nkind: List\nitems: {}\n", false,
	  "t.yaml:3:8: List default/<unnamed>: items: expected a list, got a mapping" },
	{ "apiVersion: v1\nkind: List\nitems: []\nitem: []\n", false,
	  "t.yaml:4:1: List default/<unnamed>: item: unknown field 'item', did you mean 'items'?" },
	{ "apiVersion: v1\nkind: List\nitems: []\nitems: []\n", false,
	  "t.yaml:4:1: List default/<unnamed>: items: duplicate key 'items' (first at 3:1)" },
	{ "apiVersion: v1\nkind: List\nitems: []\n? [k]\n: v\n", false,
	  "t.yaml:4:3: List default/<unnamed>: mapping keys must be strings, got a list" },
	{ "apiVersion: v1\nkind: List\nmetadata: {a: 1, a: 2}\nitems: []\n", false,
	  "t.yaml:3:18: List default/<unnamed>: metadata.a: duplicate key 'a' (first at 3:12)" },
	{ "apiVersion: v1\nkind: List\nitems: [7]\n", false,
	  "t.yaml:3:9: expected a Kubernetes object (a mapping), got a scalar" },
	/* The other items still load: the error is the bad item's alone. */
	{ "apiVersion: v1\nkind: ServiceList\nitems:\n" SVC_ITEM("")
	  "- apiVersion: v1\n  kind: Service\n  metadata: {name: t}\n  spec: {ports: 80}\n", false,
	  "t.yaml:17:17: Service default/t: spec.ports: expected a list, got a scalar" },
};

static void test_list_errors(void **state)
{
	(void)state;
	run_cases(list_cases, N(list_cases));
}

static void test_list_loads(void **state)
{
	static const char list[] =
		"apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n"
		SVC_ITEM("")
		"- apiVersion: gateway.networking.k8s.io/v1\n  kind: Gateway\n"
		"  metadata: {name: g}\n  spec:\n    gatewayClassName: c\n"
		"    addresses: [{value: 10.0.0.9}]\n"
		"    listeners: [{name: http, port: 80, protocol: HTTP}]\n";
	/* Typed lists as kubectl prints one kind; a route's parent in another document. */
	static const char typed[] =
		"apiVersion: v1\nkind: ServiceList\nitems:\n" SVC_ITEM("")
		"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRouteList\nitems:\n"
		"- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
		"  metadata: {name: r}\n  spec:\n    parentRefs: [{name: g}]\n"
		"    rules: [{backendRefs: [{name: s, port: 80}]}]\n"
		"---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
		"spec:\n  addresses: [{value: 10.0.0.9}]\n" GW_LISTENERS;
	/* Some other project's kind ending in "List", without items: skipped like any kind. */
	static const char other[] = "apiVersion: example.com/v1\nkind: AccessList\n"
				    "metadata: {name: a}\nspec: {entries: []}\n";
	struct ks_model m;
	struct ks_diags d;
	char vip[64];
	char buf[2048];

	(void)state;
	snprintf(buf, sizeof(buf), "%s- %s", list,
		 "apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
		 "  metadata: {name: r}\n  spec:\n    parentRefs: [{name: g}]\n"
		 "    rules: [{backendRefs: [{name: s, port: 80}]}]\n");
	load_ok(buf, &m, &d);
	assert_int_equal(d.n, 0);
	assert_int_equal(m.n_svcs, 1);
	ksm_addr_fmt(&m.svcs[0].vip, vip, sizeof(vip));
	assert_string_equal(vip, "10.0.0.9");
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	/* The route's source is the item's line, not the List's. */
	assert_string_equal(m.svcs[0].source, "t.yaml:22");
	ks_model_free(&m);
	ks_diags_free(&d);

	load_ok(typed, &m, &d);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	ks_model_free(&m);
	ks_diags_free(&d);

	load_ok(other, &m, &d);
	assert_int_equal(d.n, 0);
	ks_model_free(&m);
	ks_diags_free(&d);
}

/* ---- 2. Gateway status.addresses ---- */

static const struct diag_case gw_cases[] = {
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
	  GW_LISTENERS "status:\n  addresses: [{type: Hostname, value: gw.example}]\n", false,
	  "t.yaml:5:3: Gateway default/g: spec.addresses: a Gateway needs at least one IPAddress "
	  "and neither spec.addresses nor status.addresses has one: ksplit intercepts connect() "
	  "to the Gateway's addresses. Write spec.addresses: [{type: IPAddress, value: <ClusterIP "
	  "of the Gateway's Service>}], or attach the route to the Service instead (GAMMA: "
	  "parentRefs: [{group: \"\", kind: Service, name: <Service>, port: <port>}])" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
	  GW_LISTENERS "status:\n  addresses: [{type: Hostname, value: gw.example}]\n", true,
	  "t.yaml:8:22: Gateway default/g: status.addresses[0].type: address type 'Hostname' cannot "
	  "be intercepted: skipped" },
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
	  GW_LISTENERS "status:\n  addresses: [{value: 10.0.0.999}]\n", false,
	  "t.yaml:8:23: Gateway default/g: status.addresses[0]: '10.0.0.999' is not an IP address" },
	/* Only when spec.addresses is empty: a bad spec entry is not papered over by status. */
	{ "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
	  GW_LISTENERS "  addresses: [{type: Hostname, value: a.example}]\n"
	  "status:\n  addresses: [{value: 10.0.0.5}]\n", false,
	  "t.yaml:7:22: Gateway default/g: spec.addresses[0].type: address type 'Hostname' cannot "
	  "be intercepted: ksplit needs IPAddress addresses" },
};

static void test_gateway_status(void **state)
{
	static const char *const gws[] = {
		/* kubectl get -o yaml of a live Gateway: status only */
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
		GW_LISTENERS "status:\n  addresses: [{type: IPAddress, value: 10.0.0.5}]\n"
		"  conditions: [{type: Programmed, status: \"True\"}]\n---\n",
		/* addresses: [] is the same as none */
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
		GW_LISTENERS "  addresses: []\nstatus:\n  addresses: [{value: 10.0.0.5}, "
		"{type: Hostname, value: gw.example}]\n---\n",
	};
	struct ks_model m;
	struct ks_diags d;
	char buf[2048], vip[64];
	size_t i;

	(void)state;
	for (i = 0; i < N(gws); i++) {
		snprintf(buf, sizeof(buf), "%s%s%s", gws[i], SVC_DOCS, ROUTE_G("v1"));
		load_ok(buf, &m, &d);
		assert_int_equal(m.n_svcs, 1);
		ksm_addr_fmt(&m.svcs[0].vip, vip, sizeof(vip));
		assert_string_equal(vip, "10.0.0.5");
		ks_model_free(&m);
		ks_diags_free(&d);
	}
	/* spec.addresses wins over status. */
	snprintf(buf, sizeof(buf), "%s%s%s",
		 "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
		 "spec:\n" GW_LISTENERS "  addresses: [{value: 10.0.0.6}]\n"
		 "status:\n  addresses: [{value: 10.0.0.5}]\n---\n", SVC_DOCS, ROUTE_G("v1"));
	load_ok(buf, &m, &d);
	assert_int_equal(m.n_svcs, 1);
	ksm_addr_fmt(&m.svcs[0].vip, vip, sizeof(vip));
	assert_string_equal(vip, "10.0.0.6");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_gateway_errors(void **state)
{
	(void)state;
	run_cases(gw_cases, N(gw_cases));
}

/* ---- 3. group core; 4. HTTPRoute v1alpha2 ---- */

static void test_group_core_and_v1alpha2(void **state)
{
	/* GAMMA parent and backend written with group core. */
	static const char gamma[] = SVC_DOCS
		"apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: HTTPRoute\n"
		"metadata: {name: r}\nspec:\n"
		"  parentRefs: [{group: core, kind: Service, name: s, port: 80}]\n"
		"  rules: [{backendRefs: [{group: core, kind: Service, name: s, port: 80}]}]\n";
	/* A cross-namespace backend granted by a ReferenceGrant that says core. */
	static const char grant[] = SVC_DOCS
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, "
		"namespace: o}\nspec:\n  addresses: [{value: 10.0.0.9}]\n" GW_LISTENERS "---\n"
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: r, namespace: o}\nspec:\n  parentRefs: [{name: g}]\n"
		"  rules: [{backendRefs: [{name: s, namespace: default, port: 80}]}]\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
		"metadata: {name: rg}\nspec:\n"
		"  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: o}]\n"
		"  to: [{group: core, kind: Service}]\n";
	struct ks_model m;
	struct ks_diags d;
	char vip[64];

	(void)state;
	load_ok(gamma, &m, &d);
	assert_int_equal(d.n, 0);
	assert_int_equal(m.n_svcs, 1);
	ksm_addr_fmt(&m.svcs[0].vip, vip, sizeof(vip));
	assert_string_equal(vip, "10.96.0.1");
	assert_int_equal(m.svcs[0].groups[0].invalid, 0);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	ks_model_free(&m);
	ks_diags_free(&d);

	load_ok(grant, &m, &d);
	assert_int_equal(d.n, 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].invalid, 0);
	ks_model_free(&m);
	ks_diags_free(&d);
}

/* ---- 5. VIP classes ---- */

static void test_vip_class(void **state)
{
	static const struct {
		const char *addr;
		enum ksm_vip_class c;
	} cases[] = {
		{ "0.0.0.0", KSM_VIP_UNSPECIFIED },
		{ "::", KSM_VIP_UNSPECIFIED },
		{ "::ffff:0.0.0.0", KSM_VIP_UNSPECIFIED },
		{ "255.255.255.255", KSM_VIP_BROADCAST },
		{ "::ffff:255.255.255.255", KSM_VIP_BROADCAST },
		{ "224.0.0.1", KSM_VIP_MULTICAST },
		{ "239.255.255.255", KSM_VIP_MULTICAST },
		{ "ff02::1", KSM_VIP_MULTICAST },
		{ "ff00::", KSM_VIP_MULTICAST },
		{ "169.254.169.254", KSM_VIP_LINK_LOCAL },
		{ "169.254.0.0", KSM_VIP_LINK_LOCAL },
		{ "fe80::1", KSM_VIP_LINK_LOCAL },
		{ "febf:ffff::1", KSM_VIP_LINK_LOCAL },
		{ "::ffff:169.254.1.1", KSM_VIP_LINK_LOCAL },
		{ "127.0.0.1", KSM_VIP_LOOPBACK },
		{ "127.10.0.1", KSM_VIP_LOOPBACK },
		{ "127.255.255.255", KSM_VIP_LOOPBACK },
		{ "::1", KSM_VIP_LOOPBACK },
		{ "::ffff:127.0.0.1", KSM_VIP_LOOPBACK },
		{ "10.0.0.1", KSM_VIP_OK },
		{ "126.255.255.255", KSM_VIP_OK },
		{ "128.0.0.1", KSM_VIP_OK },
		{ "169.253.255.255", KSM_VIP_OK },
		{ "169.255.0.1", KSM_VIP_OK },
		{ "223.255.255.255", KSM_VIP_OK },
		{ "240.0.0.1", KSM_VIP_OK },
		{ "255.255.255.254", KSM_VIP_OK },
		{ "1.0.0.0", KSM_VIP_OK },
		{ "::2", KSM_VIP_OK },
		{ "::ffff:10.0.0.1", KSM_VIP_OK },
		{ "fd00::1", KSM_VIP_OK },
		{ "fec0::1", KSM_VIP_OK },
		{ "fe7f::1", KSM_VIP_OK },
		{ "feff::1", KSM_VIP_OK },	/* fe80::/10 ends at febf */
		{ "2001:db8::1", KSM_VIP_OK },
	};
	static const char *const names[] = { "unspecified", "broadcast", "multicast", "link-local",
					     "loopback" };
	struct ksm_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		assert_int_equal(ksm_addr_parse(cases[i].addr, &a), 0);
		if (ksm_addr_vip_class(&a) != cases[i].c)
			fail_msg("%s: class %d, want %d", cases[i].addr, ksm_addr_vip_class(&a),
				 cases[i].c);
	}
	for (i = 0; i < N(names); i++) {
		assert_string_equal(ksm_vip_class_name((enum ksm_vip_class)i), names[i]);
		assert_non_null(ksm_vip_class_why((enum ksm_vip_class)i));
	}
	assert_null(ksm_vip_class_name(KSM_VIP_OK));
	assert_null(ksm_vip_class_why(KSM_VIP_OK));
	assert_non_null(strstr(ksm_vip_class_why(KSM_VIP_LOOPBACK), "--allow-loopback-vips"));
}

/* ---- 6. TargetGroupPolicy ---- */

#define TGP(spec)									\
	SVC_DOCS "apiVersion: application-networking.k8s.aws/v1alpha1\n"		\
	"kind: TargetGroupPolicy\nmetadata: {name: p}\nspec:\n" spec

static const struct diag_case tgp_cases[] = {
	{ TGP("  targetRef: {group: application-networking.k8s.aws, kind: ServiceExport, name: s}\n"),
	  true, "t.yaml:17:60: TargetGroupPolicy default/p: spec.targetRef.kind: ServiceExport: the "
	  "policy is ignored: a Lattice multi-cluster export; a node splitter has no target group "
	  "for it" },
	/* Ignored, but still checked. */
	{ TGP("  targetRef: {group: application-networking.k8s.aws, kind: ServiceExport, name: s}\n"
	      "  healthCheck: {intervalSeconds: 1}\n"), false,
	  "t.yaml:18:34: TargetGroupPolicy default/p: spec.healthCheck.intervalSeconds: 1 is out "
	  "of range 5..300" },
	/* ServiceExport of another group (MCS) is not Lattice's: the usual error. */
	{ TGP("  targetRef: {group: multicluster.x-k8s.io, kind: ServiceExport, name: s}\n"), false,
	  "t.yaml:17:22: TargetGroupPolicy default/p: spec.targetRef.group: "
	  "'multicluster.x-k8s.io': only Services (group \"\") can be targeted" },
	{ TGP("  targetRef: {kind: Service, name: s}\n  protocol: HTTPS\n"), true,
	  "t.yaml:18:13: TargetGroupPolicy default/p: spec.protocol: HTTPS: ksplit originates no TLS to the "
	  "targets as Lattice does; connections reach them as the client sent them, so clients "
	  "must speak TLS themselves" },
	{ TGP("  targetRef: {kind: Service, name: s}\n  protocolVersion: GRPC\n"), true,
	  "t.yaml:18:20: TargetGroupPolicy default/p: spec.protocolVersion: GRPC: ksplit translates no protocol as "
	  "Lattice does; the targets get the client's own HTTP version" },
	{ TGP("  targetRef: {kind: Service, name: s}\n  protocolVersion: HTTP2\n"), true,
	  "t.yaml:18:20: TargetGroupPolicy default/p: spec.protocolVersion: HTTP2: ksplit translates no protocol as "
	  "Lattice does; the targets get the client's own HTTP version" },
};

static void test_tgp_diags(void **state)
{
	(void)state;
	run_cases(tgp_cases, N(tgp_cases));
}

static void test_tgp_defaults(void **state)
{
	static const struct {
		const char *yaml;
		size_t n_warnings;
		bool enabled;
		const char *proto, *ver;
	} cases[] = {
		{ TGP("  targetRef: {kind: Service, name: s}\n"), 0, true, "HTTP", "HTTP1" },
		/* Lattice checks plain HTTP even for an HTTPS target group. */
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocol: HTTPS\n"), 1, true, "HTTP",
		  "HTTP1" },
		/* No check by default for HTTP2 and GRPC target groups, nor for TCP ones. */
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocolVersion: HTTP2\n"), 1, false,
		  "HTTP", "HTTP1" },
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocolVersion: GRPC\n"), 1, false,
		  "HTTP", "HTTP1" },
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocol: TCP\n"), 0, false, "HTTP",
		  "HTTP1" },
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocol: TCP\n  healthCheck: {}\n"),
		  0, false, "HTTP", "HTTP1" },
		/* Turned on: the unset fields take Lattice's defaults. */
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocol: TCP\n"
		      "  healthCheck: {enabled: true}\n"), 0, true, "HTTP", "HTTP1" },
		{ TGP("  targetRef: {kind: Service, name: s}\n  protocolVersion: HTTP2\n"
		      "  healthCheck: {enabled: true}\n"), 1, true, "HTTP", "HTTP1" },
		{ TGP("  targetRef: {group: core, kind: Service, name: s}\n  protocol: HTTPS\n"
		      "  protocolVersion: HTTP2\n"
		      "  healthCheck: {enabled: true, protocol: HTTPS, protocolVersion: HTTP2}\n"),
		  2, true, "HTTPS", "HTTP2" },
		{ TGP("  targetRef: {kind: Service, name: s}\n  healthCheck: {protocol: TCP}\n"), 0,
		  true, "TCP", "HTTP1" },
	};
	struct ks_model m;
	struct ks_diags d;
	struct ksm_health *h;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		fprintf(stderr, "case %zu\n", i);
		load_ok(cases[i].yaml, &m, &d);
		if (d.n != cases[i].n_warnings) {
			dump(&d);
			fail_msg("%zu diagnostics, want %zu", d.n, cases[i].n_warnings);
		}
		assert_int_equal(m.n_health, 1);
		h = &m.health[0];
		assert_string_equal(h->svc_name, "s");
		assert_int_equal(h->enabled, cases[i].enabled);
		assert_string_equal(h->protocol, cases[i].proto);
		assert_string_equal(h->protocol_version, cases[i].ver);
		assert_int_equal(h->interval_s, 30);
		assert_int_equal(h->timeout_s, 5);
		assert_int_equal(h->healthy_threshold, 5);
		assert_int_equal(h->unhealthy_threshold, 2);
		assert_string_equal(h->status_match, "200");
		assert_string_equal(h->path, "/");
		assert_int_equal(h->port, 0);
		ks_model_free(&m);
		ks_diags_free(&d);
	}
	/* A ServiceExport policy never reaches the prober, and is no duplicate of a Service one. */
	load_ok(TGP("  targetRef: {group: application-networking.k8s.aws, kind: ServiceExport, "
		    "name: s}\n---\napiVersion: application-networking.k8s.aws/v1alpha1\n"
		    "kind: TargetGroupPolicy\nmetadata: {name: p2}\nspec:\n"
		    "  targetRef: {kind: Service, name: s}\n"), &m, &d);
	assert_int_equal(d.n, 1);
	assert_true(d.v[0].warning);
	assert_int_equal(m.n_health, 1);
	assert_string_equal(m.health[0].source, "t.yaml:19");
	ks_model_free(&m);
	ks_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_errors),
		cmocka_unit_test(test_list_loads),
		cmocka_unit_test(test_gateway_status),
		cmocka_unit_test(test_gateway_errors),
		cmocka_unit_test(test_group_core_and_v1alpha2),
		cmocka_unit_test(test_vip_class),
		cmocka_unit_test(test_tgp_diags),
		cmocka_unit_test(test_tgp_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
