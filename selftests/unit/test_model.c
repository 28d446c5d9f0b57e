// SPDX-License-Identifier: BSD-2-Clause
/* Resolution tests: references followed into struct ks_model. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ksplit/abi.h"
#include "config/config.h"
#include "unit/diag_helpers.h"

#ifndef KS_TEST_DATA
#define KS_TEST_DATA "selftests/data"
#endif

/* Gateway with a v4 and a v6 address, two Services (one dual-stack) and their slices. */
static const char base_yaml[] =
	"apiVersion: gateway.networking.k8s.io/v1\n"
	"kind: Gateway\n"
	"metadata: {name: gw, namespace: app}\n"
	"spec:\n"
	"  gatewayClassName: ksplit\n"
	"  addresses: [{value: 10.0.0.1}, {type: IPAddress, value: 'fd00::1'}]\n"
	"  listeners:\n"
	"    - {name: http, port: 80, protocol: HTTP}\n"
	"    - {name: alt, port: 8080, protocol: HTTP}\n"
	"    - {name: tcp, port: 9000, protocol: TCP}\n"
	"    - {name: dns, port: 53, protocol: UDP}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: a, namespace: app}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.10\n"
	"  clusterIPs: [10.96.0.10, 'fd00::10']\n"
	"  ipFamilies: [IPv4, IPv6]\n"
	"  ipFamilyPolicy: RequireDualStack\n"
	"  ports:\n"
	"    - {name: web, port: 80, targetPort: web}\n"
	"    - {name: dns, port: 53, protocol: UDP, targetPort: 5353}\n"
	"    - {name: dnstcp, port: 53, protocol: TCP, targetPort: 5353}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: b, namespace: app}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.11\n"
	"  ports: [{port: 80, targetPort: 8081}]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: a-1, namespace: app, labels: {kubernetes.io/service-name: a}}\n"
	"addressType: IPv4\n"
	"ports: [{name: web, port: 8080}, {name: dns, port: 5353, protocol: UDP}, {name: dnstcp, port: 5354}]\n"
	"endpoints:\n"
	"  - addresses: [10.1.0.1]\n"
	"    targetRef: {kind: Pod, name: pod-1}\n"
	"  - addresses: [10.1.0.2]\n"
	"    conditions: {ready: false}\n"
	"    hostname: host-2\n"
	"  - addresses: [10.1.0.3]\n"
	"    conditions: {ready: false, serving: true, terminating: true}\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: a-2, namespace: app, labels: {kubernetes.io/service-name: a}}\n"
	"addressType: IPv4\n"
	"ports: [{name: web, port: 8080}]\n"
	"endpoints:\n"
	"  - addresses: [10.1.0.1]\n"
	"  - addresses: [10.1.0.4]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: a-6, namespace: app, labels: {kubernetes.io/service-name: a}}\n"
	"addressType: IPv6\n"
	"ports: [{name: web, port: 8443}]\n"
	"endpoints:\n"
	"  - addresses: ['fd01::1']\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: b-1, namespace: app, labels: {kubernetes.io/service-name: b}}\n"
	"addressType: IPv4\n"
	"ports: [{port: 8081}]\n"
	"endpoints:\n"
	"  - addresses: [10.2.0.1]\n";

static int load2(const char *route, struct ks_model *m, struct ks_diags *d)
{
	const char *names[] = { "base.yaml", "t.yaml" };
	const char *bufs[] = { base_yaml, route };
	size_t lens[] = { strlen(base_yaml), strlen(route) };

	memset(d, 0, sizeof(*d));
	return ks_model_load_buffers(names, bufs, lens, 2, m, d);
}

static void expect_sub(const struct ks_diags *d, const char *sub)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, sub))
			return;
	dump(d);
	fail_msg("no diagnostic contains: %s", sub);
}

static void fmt_vip(const struct ksm_service *s, char *buf, size_t len)
{
	assert_int_equal(ksm_addr_fmt(&s->vip, buf, len), 0);
}

#define HTTP_ROUTE(parent, refs)                                   \
	"apiVersion: gateway.networking.k8s.io/v1\n"               \
	"kind: HTTPRoute\n"                                        \
	"metadata: {name: r, namespace: app}\n"                    \
	"spec:\n"                                                  \
	"  parentRefs: [" parent "]\n"                             \
	"  rules:\n"                                               \
	"    - backendRefs: [" refs "]\n"

static void test_seed(void **state)
{
	const char *paths[] = { KS_TEST_DATA "/good/seed" };
	struct ks_model m;
	struct ks_diags d = { 0 };
	struct ksm_service *s;
	char buf[64];
	size_t i;

	(void)state;
	assert_int_equal(ks_model_load(paths, 1, &m, &d), 0);
	assert_int_equal(d.n, 1);
	expect_diag(&d, true, KS_TEST_DATA "/good/seed/00-gateway.yaml:3:1: GatewayClass "
		    "amazon-vpc-lattice: ignored: ksplit reads no GatewayClass parameters");
	assert_int_equal(m.n_svcs, 1);
	s = &m.svcs[0];
	fmt_vip(s, buf, sizeof(buf));
	assert_string_equal(buf, "10.96.100.10");
	assert_int_equal(s->vip.family, KS_FAMILY_V4);
	assert_int_equal(s->port, 80);
	assert_int_equal(s->proto, IPPROTO_TCP);
	assert_string_equal(s->route, "HTTPRoute checkout/checkoutroute");
	assert_string_equal(s->parent, "Gateway checkout/eks-workshop:http");
	assert_string_equal(s->source, KS_TEST_DATA "/good/seed/40-route.yaml:3");
	assert_null(s->ann_passive_failures);
	assert_null(s->ann_empty_group);
	assert_int_equal(s->n_groups, 2);
	assert_string_equal(s->groups[0].svc_ns, "checkout");
	assert_string_equal(s->groups[0].svc_name, "checkout");
	assert_int_equal(s->groups[0].svc_port, 80);
	assert_int_equal(s->groups[0].weight, 25);
	assert_string_equal(s->groups[1].svc_ns, "checkoutv2");
	assert_int_equal(s->groups[1].weight, 75);
	for (i = 0; i < 2; i++) {
		assert_int_equal(s->groups[i].invalid, KSM_REF_OK);
		assert_null(s->groups[i].reason);
		assert_int_equal(s->groups[i].n_eps, 2);
		assert_int_equal(s->groups[i].eps[0].port, 8080);
		assert_int_equal(s->groups[i].eps[1].port, 8080);
		assert_true(s->groups[i].eps[0].ready);
		assert_true(s->groups[i].eps[0].serving);
		assert_false(s->groups[i].eps[0].terminating);
	}
	assert_int_equal(ksm_addr_fmt(&s->groups[1].eps[1].addr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.244.3.21");
	assert_string_equal(s->groups[0].eps[0].name, "checkout-7d9f-aaaaa");
	assert_int_equal(m.n_health, 1);
	assert_string_equal(m.health[0].svc_ns, "checkout");
	assert_string_equal(m.health[0].svc_name, "checkout");
	assert_true(m.health[0].enabled);
	assert_string_equal(m.health[0].path, "/health");
	assert_int_equal(m.health[0].interval_s, 30);
	assert_int_equal(m.health[0].timeout_s, 5);
	assert_int_equal(m.health[0].healthy_threshold, 5);
	assert_int_equal(m.health[0].unhealthy_threshold, 2);
	assert_string_equal(m.health[0].status_match, "200");
	assert_int_equal(m.health[0].port, 0);
	assert_string_equal(m.health[0].protocol, "HTTP");
	assert_string_equal(m.health[0].protocol_version, "HTTP1");
	assert_string_equal(m.health[0].source, KS_TEST_DATA "/good/seed/40-route.yaml:27");
	ks_model_free(&m);
	ks_diags_free(&d);
}

/* Without the ReferenceGrant the seed's second share is RefNotPermitted (a warning). */
static void test_seed_without_grant(void **state)
{
	const char *paths[] = { KS_TEST_DATA "/good/seed/00-gateway.yaml",
				KS_TEST_DATA "/good/seed/10-services.yaml",
				KS_TEST_DATA "/good/seed/20-endpointslices.yaml",
				KS_TEST_DATA "/good/seed/40-route.yaml" };
	struct ks_model m;
	struct ks_diags d = { 0 };

	(void)state;
	assert_int_equal(ks_model_load(paths, 4, &m, &d), 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].invalid, KSM_REF_OK);
	assert_int_equal(m.svcs[0].groups[1].invalid, KSM_REF_NOT_PERMITTED);
	assert_int_equal(m.svcs[0].groups[1].weight, 75);
	assert_int_equal(m.svcs[0].groups[1].n_eps, 0);
	assert_string_equal(m.svcs[0].groups[1].reason,
			    "no ReferenceGrant in namespace checkoutv2 allows HTTPRoute from "
			    "namespace checkout to Service checkout");
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_errors, 0);
	expect_diag(&d, true,
		    KS_TEST_DATA "/good/seed/40-route.yaml:18:11: HTTPRoute checkout/checkoutroute: "
		    "spec.rules[0].backendRefs[1]: no ReferenceGrant in namespace checkoutv2 "
		    "allows HTTPRoute from namespace checkout to Service checkout (RefNotPermitted): its share "
		    "(weight 75) will be refused");
	ks_model_free(&m);
	ks_diags_free(&d);
}

/* Dual stack: each family's VIP gets only that family's endpoints; sorted v4 first. */
static void test_families_and_flags(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	struct ksm_group *g;
	char buf[64];

	(void)state;
	assert_int_equal(load2(HTTP_ROUTE("{name: gw, sectionName: http}",
					  "{name: a, port: 80, weight: 3}, {name: b, port: 80}"),
			       &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	fmt_vip(&m.svcs[0], buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1");
	fmt_vip(&m.svcs[1], buf, sizeof(buf));
	assert_string_equal(buf, "fd00::1");
	assert_int_equal(m.svcs[1].vip.family, KS_FAMILY_V6);
	/* v4: slices a-1 and a-2 merged, 10.1.0.1 once; port by name web -> 8080 */
	g = &m.svcs[0].groups[0];
	assert_int_equal(g->weight, 3);
	assert_int_equal(g->n_eps, 4);
	assert_int_equal(ksm_addr_fmt(&g->eps[3].addr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.1.0.4");
	assert_int_equal(g->eps[0].port, 8080);
	assert_string_equal(g->eps[0].name, "pod-1");
	assert_true(g->eps[0].ready && g->eps[0].serving && !g->eps[0].terminating);
	/* ready false, serving nil -> serving takes ready's value */
	assert_false(g->eps[1].ready);
	assert_false(g->eps[1].serving);
	assert_false(g->eps[1].terminating);
	assert_string_equal(g->eps[1].name, "host-2");
	assert_false(g->eps[2].ready);
	assert_true(g->eps[2].serving);
	assert_true(g->eps[2].terminating);
	assert_null(g->eps[2].name);
	assert_null(g->eps[3].name);
	/* unnamed Service port matches the unnamed slice port; weight defaults to 1 */
	g = &m.svcs[0].groups[1];
	assert_int_equal(g->weight, 1);
	assert_int_equal(g->n_eps, 1);
	assert_int_equal(g->eps[0].port, 8081);
	/* v6 */
	g = &m.svcs[1].groups[0];
	assert_int_equal(g->n_eps, 1);
	assert_int_equal(g->eps[0].port, 8443);
	assert_int_equal(g->eps[0].addr.family, KS_FAMILY_V6);
	assert_int_equal(m.svcs[1].groups[1].n_eps, 0);
	assert_int_equal(m.svcs[1].groups[1].invalid, KSM_REF_OK);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n, 1);
	expect_diag(&d, true, "t.yaml:7:53: HTTPRoute app/r: spec.rules[0].backendRefs[1]: "
		    "Service app/b port 80 has no IPv6 endpoints: its share (weight 1) will be refused");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_all_listeners_and_sorting(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	size_t i;

	(void)state;
	/* No sectionName: every HTTP listener (80, 8080) on every address; TCP/UDP ones skipped. */
	assert_int_equal(load2(HTTP_ROUTE("{name: gw}", "{name: b, port: 80}"), &m, &d), 0);
	assert_int_equal(m.n_svcs, 4);
	assert_int_equal(m.svcs[0].port, 80);
	assert_int_equal(m.svcs[1].port, 8080);
	assert_int_equal(m.svcs[2].port, 80);
	assert_int_equal(m.svcs[3].port, 8080);
	assert_int_equal(m.svcs[2].vip.family, KS_FAMILY_V6);
	assert_string_equal(m.svcs[1].parent, "Gateway app/gw:alt");
	for (i = 0; i < 4; i++)
		assert_int_equal(m.svcs[i].n_groups, 1);
	ks_model_free(&m);
	ks_diags_free(&d);
	/* port picks the listener */
	assert_int_equal(load2(HTTP_ROUTE("{name: gw, port: 8080}", "{name: b, port: 80}"), &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	assert_int_equal(m.svcs[0].port, 8080);
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_invalid_refs(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	struct ksm_group *g;

	(void)state;
	assert_int_equal(load2(HTTP_ROUTE("{name: gw, sectionName: http}",
					  "{name: nosuch, port: 80, weight: 10}, "
					  "{name: a, port: 81, weight: 20}, "
					  "{name: a, port: 53, weight: 30}, "
					  "{group: example.com, kind: Bucket, name: x, weight: 40}, "
					  "{name: b, namespace: other, port: 80, weight: 50}, "
					  "{name: b, port: 80, weight: 0}"),
			       &m, &d), 0);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(m.n_svcs, 2);
	g = m.svcs[0].groups;
	assert_int_equal(m.svcs[0].n_groups, 6);
	assert_int_equal(g[0].invalid, KSM_REF_NOT_FOUND);
	assert_string_equal(g[0].reason, "Service app/nosuch not found");
	assert_int_equal(g[0].weight, 10);
	assert_int_equal(g[1].invalid, KSM_REF_NOT_FOUND);
	assert_string_equal(g[1].reason, "Service app/a has no port 81");
	assert_int_equal(g[2].invalid, KSM_REF_OK);	/* TCP port 53 (dnstcp) exists */
	assert_int_equal(g[2].n_eps, 3);
	assert_int_equal(g[2].eps[0].port, 5354);
	assert_int_equal(g[3].invalid, KSM_REF_INVALID_KIND);
	assert_string_equal(g[3].reason, "kind Bucket of group example.com is not supported, only Service");
	assert_int_equal(g[3].weight, 40);
	assert_int_equal(g[4].invalid, KSM_REF_NOT_PERMITTED);
	assert_int_equal(g[5].invalid, KSM_REF_OK);
	assert_int_equal(g[5].weight, 0);
	expect_diag(&d, true, "t.yaml:7:21: HTTPRoute app/r: spec.rules[0].backendRefs[0]: "
		    "Service app/nosuch not found (BackendNotFound): its share (weight 10) will be refused");
	expect_sub(&d, "spec.rules[0].backendRefs[1]: Service app/a has no port 81 (BackendNotFound): its share (weight 20)");
	expect_sub(&d, "spec.rules[0].backendRefs[3]: kind Bucket of group example.com is not supported");
	expect_sub(&d, "spec.rules[0].backendRefs[4]: no ReferenceGrant in namespace other");
	/* warnings once per ref, not once per VIP */
	assert_int_equal(d.n, 4 + 1 /* b has no IPv6 endpoints */ + 1 /* a:53 no v6 */);
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_udp_port_mismatch_ref(void **state)
{
	static const char route[] =
		"apiVersion: gateway.networking.k8s.io/v1alpha2\n"
		"kind: UDPRoute\n"
		"metadata: {name: u, namespace: app}\n"
		"spec:\n"
		"  parentRefs: [{name: gw, sectionName: dns}]\n"
		"  rules: [{backendRefs: [{name: a, port: 53}, {name: b, port: 80}]}]\n";
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2(route, &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	assert_int_equal(m.svcs[0].proto, IPPROTO_UDP);
	assert_int_equal(m.svcs[0].port, 53);
	assert_string_equal(m.svcs[0].route, "UDPRoute app/u");
	assert_int_equal(m.svcs[0].groups[0].n_eps, 3);
	assert_int_equal(m.svcs[0].groups[0].eps[0].port, 5353);
	assert_int_equal(m.svcs[0].groups[1].invalid, KSM_REF_UNSUPPORTED_PROTOCOL);
	assert_string_equal(m.svcs[0].groups[1].reason,
			    "port 80 of Service app/b is TCP, the route carries UDP");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_reference_grants(void **state)
{
	static const char grant_all[] =
		"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: other}\n"
		"spec: {clusterIP: 10.96.1.1, ports: [{port: 80}]}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: s2, namespace: other}\n"
		"spec: {clusterIP: 10.96.1.2, ports: [{port: 80}]}\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
		"metadata: {name: g, namespace: other}\n"
		"spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: app}]\n"
		"  to: [{group: '', kind: Service, name: s}]\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
		"metadata: {name: tcp-only, namespace: other}\n"
		"spec:\n  from: [{group: gateway.networking.k8s.io, kind: TCPRoute, namespace: app}]\n"
		"  to: [{group: '', kind: Service}]\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
		"metadata: {name: wrong-ns, namespace: app}\n"
		"spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: app}]\n"
		"  to: [{group: '', kind: Service}]\n---\n"
		HTTP_ROUTE("{name: gw, sectionName: http}",
			   "{name: s, namespace: other, port: 80}, {name: s2, namespace: other, port: 80}, "
			   "{name: nosuch, namespace: other, port: 80}");
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2(grant_all, &m, &d), 0);
	assert_int_equal(m.svcs[0].groups[0].invalid, KSM_REF_OK);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 0);
	/* the grant names only s; the TCPRoute grant does not cover HTTPRoute */
	assert_int_equal(m.svcs[0].groups[1].invalid, KSM_REF_NOT_PERMITTED);
	/* not permitted is decided before existence (no information leak) */
	assert_int_equal(m.svcs[0].groups[2].invalid, KSM_REF_NOT_PERMITTED);
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_mesh_parent(void **state)
{
	struct ks_model m;
	struct ks_diags d;
	char buf[64];

	(void)state;
	/* port unset: all TCP ports (80 and 53/TCP) on both clusterIPs */
	assert_int_equal(load2(HTTP_ROUTE("{group: '', kind: Service, name: a}", "{name: b, port: 80}"),
			       &m, &d), 0);
	assert_int_equal(m.n_svcs, 4);
	fmt_vip(&m.svcs[0], buf, sizeof(buf));
	assert_string_equal(buf, "10.96.0.10");
	assert_int_equal(m.svcs[0].port, 53);
	assert_int_equal(m.svcs[1].port, 80);
	assert_string_equal(m.svcs[1].parent, "Service app/a:80");
	fmt_vip(&m.svcs[3], buf, sizeof(buf));
	assert_string_equal(buf, "fd00::10");
	ks_model_free(&m);
	ks_diags_free(&d);
	/* port set */
	assert_int_equal(load2(HTTP_ROUTE("{group: '', kind: Service, name: a, port: 80}", "{name: b, port: 80}"),
			       &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	assert_int_equal(m.svcs[0].port, 80);
	ks_model_free(&m);
	ks_diags_free(&d);
	/* sectionName = port name */
	assert_int_equal(load2(HTTP_ROUTE("{group: '', kind: Service, name: a, sectionName: dnstcp}",
					  "{name: b, port: 80}"), &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	assert_int_equal(m.svcs[0].port, 53);
	assert_int_equal(m.svcs[0].proto, IPPROTO_TCP);
	ks_model_free(&m);
	ks_diags_free(&d);
}

/*
 * route's only parentRef refuses it with reason and msg: an error when the
 * whole config is judged, and the route's verdict when it is refused alone.
 */
static void expect_route_error(const char *route, enum ksm_reason reason, const char *msg)
{
	const char *names[] = { "base.yaml", "t.yaml" };
	const char *bufs[] = { base_yaml, route };
	size_t lens[] = { strlen(base_yaml), strlen(route) };
	const struct ksm_parent_status *ps;
	struct ks_model m;
	struct ks_diags d;
	char full[1024];

	snprintf(full, sizeof(full), "%s (%s)", msg, ksm_reason_name(reason));
	assert_int_equal(load2(route, &m, &d), -EINVAL);
	assert_int_equal(m.n_svcs, 0);
	assert_null(m.svcs);
	expect_diag(&d, false, full);
	ks_model_free(&m);
	ks_diags_free(&d);
	memset(&d, 0, sizeof(d));
	assert_int_equal(ks_model_load_buffers_opts(NULL, names, bufs, lens, 2, &m, &d), 0);
	assert_int_equal(m.n_svcs, 0);
	assert_int_equal(m.n_routes, 1);
	assert_false(ksm_route_accepted(&m.routes[0]));
	ps = &m.routes[0].parents[0];
	assert_int_equal(ps->accepted, reason);
	assert_int_equal(ps->n_programmed, 0);
	/* The verdict's message is the diagnostic's, without file, object and field. */
	assert_true(strlen(msg) > strlen(ps->accepted_msg));
	assert_string_equal(msg + strlen(msg) - strlen(ps->accepted_msg), ps->accepted_msg);
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_parent_errors(void **state)
{
	(void)state;
	expect_route_error(HTTP_ROUTE("{name: nogw}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: Gateway app/nogw not found");
	expect_route_error(HTTP_ROUTE("{name: gw, namespace: elsewhere}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: Gateway elsewhere/gw not found");
	expect_route_error(HTTP_ROUTE("{name: gw, sectionName: https}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:40: HTTPRoute app/r: spec.parentRefs[0].sectionName: Gateway "
			   "app/gw has no listener named 'https'");
	expect_route_error(HTTP_ROUTE("{name: gw, sectionName: dns}", "{name: b, port: 80}"),
			   KSM_R_NOT_ALLOWED_BY_LISTENERS,
			   "t.yaml:5:40: HTTPRoute app/r: spec.parentRefs[0].sectionName: listener "
			   "'dns' of Gateway app/gw has protocol UDP, which cannot carry a HTTPRoute "
			   "(needs HTTP or HTTPS)");
	expect_route_error(HTTP_ROUTE("{name: gw, sectionName: http, port: 81}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:52: HTTPRoute app/r: spec.parentRefs[0].port: port 81 does not "
			   "match listener 'http' of Gateway app/gw (port 80)");
	expect_route_error(HTTP_ROUTE("{name: gw, port: 9000}", "{name: b, port: 80}"),
			   KSM_R_NOT_ALLOWED_BY_LISTENERS,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: no listener of Gateway "
			   "app/gw on port 9000 takes it: listener 'tcp' of Gateway app/gw has "
			   "protocol TCP, which cannot carry a HTTPRoute (needs HTTP or HTTPS)");
	expect_route_error(HTTP_ROUTE("{group: example.com, kind: Mesh, name: m}", "{name: b, port: 80}"),
			   KSM_R_UNSUPPORTED_VALUE,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: parent kind Mesh of "
			   "group example.com is not supported: use a Gateway or (mesh) a Service");
	expect_route_error(HTTP_ROUTE("{kind: Service, group: '', name: a, namespace: other}",
				      "{name: b, port: 80}"),
			   KSM_R_UNSUPPORTED_VALUE,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: consumer route (route "
			   "namespace app, Service namespace other) cannot be honoured: it must apply "
			   "only to clients in namespace app, and ksplit cannot tell client namespaces "
			   "apart at connect(); put the route in namespace other (a producer route)");
	expect_route_error(HTTP_ROUTE("{kind: Service, group: '', name: zz}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: Service app/zz not found");
	expect_route_error(HTTP_ROUTE("{kind: Service, group: '', name: a, port: 81}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: Service app/a has no port 81");
	expect_route_error(HTTP_ROUTE("{kind: Service, group: '', name: a, sectionName: dns}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: port 53 of Service "
			   "app/a is UDP, a HTTPRoute needs TCP");
	expect_route_error(HTTP_ROUTE("{kind: Service, group: '', name: a, sectionName: xx}", "{name: b, port: 80}"),
			   KSM_R_NO_MATCHING_PARENT,
			   "t.yaml:5:16: HTTPRoute app/r: spec.parentRefs[0]: Service app/a has no port named 'xx'");
}

static void test_mesh_parent_kinds(void **state)
{
	static const char headless[] =
		"apiVersion: v1\nkind: Service\nmetadata: {name: h, namespace: app}\n"
		"spec: {clusterIP: None, ports: [{port: 80}]}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: app}\n"
		"spec: {type: ExternalName, externalName: example.com}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: noip, namespace: app}\n"
		"spec: {ports: [{port: 80}]}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: u, namespace: app}\n"
		"spec: {clusterIP: 10.96.9.9, ports: [{port: 53, protocol: UDP}]}\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: r, namespace: app}\n"
		"spec:\n"
		"  parentRefs:\n"
		"    - {kind: Service, group: '', name: h}\n"
		"    - {kind: Service, group: '', name: x}\n"
		"    - {kind: Service, group: '', name: noip}\n"
		"    - {kind: Service, group: '', name: u}\n"
		"  rules: [{backendRefs: [{name: b, port: 80}]}]\n";
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2(headless, &m, &d), -EINVAL);
	assert_int_equal(d.n_errors, 4);
	expect_diag(&d, false, "t.yaml:26:7: HTTPRoute app/r: spec.parentRefs[0]: Service app/h is "
		    "headless and has no ClusterIP to intercept; it cannot be a parent (NoMatchingParent)");
	expect_diag(&d, false, "t.yaml:27:7: HTTPRoute app/r: spec.parentRefs[1]: Service app/x is "
		    "ExternalName and has no ClusterIP to intercept; it cannot be a parent (NoMatchingParent)");
	expect_sub(&d, "t.yaml:28:7: HTTPRoute app/r: spec.parentRefs[2]: Service app/noip has no spec.clusterIP");
	expect_diag(&d, false, "t.yaml:29:7: HTTPRoute app/r: spec.parentRefs[3]: Service app/u has no TCP port (NoMatchingParent)");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_conflicts(void **state)
{
	static const char two[] =
		HTTP_ROUTE("{name: gw, sectionName: http}", "{name: b, port: 80}")
		"---\n"
		"apiVersion: gateway.networking.k8s.io/v1\n"
		"kind: HTTPRoute\n"
		"metadata: {name: r2, namespace: app}\n"
		"spec:\n"
		"  parentRefs: [{name: gw}]\n"
		"  rules: [{backendRefs: [{name: a, port: 80}]}]\n";
	static const char same_route_twice[] =
		HTTP_ROUTE("{name: gw, sectionName: http}, {name: gw, port: 80}", "{name: b, port: 80}");
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2(two, &m, &d), -EINVAL);
	expect_diag(&d, false, "t.yaml:13:16: HTTPRoute app/r2: spec.parentRefs[0]: 10.0.0.1:80/TCP "
		    "is also claimed by HTTPRoute app/r (t.yaml:1, via Gateway app/gw:http), which "
		    "is older (creationTimestamp, then namespace/name) and keeps it: an L4 "
		    "splitter cannot merge two routes on one address and port "
		    "(NotAllowedByListeners)");
	/* The parentRef lost as a whole: its IPv6 key is not reported again, nor programmed. */
	assert_int_equal(d.n_errors, 1);
	ks_model_free(&m);
	ks_diags_free(&d);
	assert_int_equal(load2(same_route_twice, &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_tcp_route_and_annotations(void **state)
{
	static const char route[] =
		"apiVersion: gateway.networking.k8s.io/v1alpha2\n"
		"kind: TCPRoute\n"
		"metadata:\n"
		"  name: t\n"
		"  namespace: app\n"
		"  annotations: {ksplit.io/passive-failures: '5', ksplit.io/empty-group: reject}\n"
		"spec:\n"
		"  parentRefs: [{name: gw, sectionName: tcp}]\n"
		"  rules: [{backendRefs: [{name: b, port: 80, weight: 1000000}]}]\n";
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2(route, &m, &d), 0);
	assert_int_equal(m.n_svcs, 2);
	assert_int_equal(m.svcs[0].port, 9000);
	assert_string_equal(m.svcs[0].route, "TCPRoute app/t");
	assert_string_equal(m.svcs[0].ann_passive_failures, "5");
	assert_string_equal(m.svcs[0].ann_empty_group, "reject");
	assert_int_equal(m.svcs[0].groups[0].weight, 1000000);
	ks_model_free(&m);
	ks_diags_free(&d);
	expect_route_error(
		"apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\n"
		"metadata: {name: t, namespace: app}\n"
		"spec:\n  parentRefs: [{name: gw, sectionName: http}]\n"
		"  rules: [{backendRefs: [{name: b, port: 80}]}]\n",
		KSM_R_NOT_ALLOWED_BY_LISTENERS,
		"t.yaml:5:40: TCPRoute app/t: spec.parentRefs[0].sectionName: listener 'http' "
		"of Gateway app/gw has protocol HTTP, which cannot carry a TCPRoute (needs TCP or TLS)");
}

static void test_no_parents_warning(void **state)
{
	struct ks_model m;
	struct ks_diags d;

	(void)state;
	assert_int_equal(load2("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
			       "metadata: {name: r, namespace: app}\n"
			       "spec: {rules: [{backendRefs: [{name: b, port: 80}]}]}\n", &m, &d), 0);
	assert_int_equal(m.n_svcs, 0);
	expect_diag(&d, true, "t.yaml:1:1: HTTPRoute app/r: spec.parentRefs: no parentRefs: the "
		    "route applies to no traffic");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_health(void **state)
{
	static const char pol[] =
		"apiVersion: application-networking.k8s.aws/v1alpha1\n"
		"kind: TargetGroupPolicy\n"
		"metadata: {name: p, namespace: app}\n"
		"spec:\n"
		"  targetRef: {group: '', kind: Service, name: a}\n"
		"  protocol: HTTPS\n"
		"  protocolVersion: HTTP2\n"
		"  healthCheck:\n"
		"    enabled: false\n"
		"    intervalSeconds: 300\n"
		"    timeoutSeconds: 120\n"
		"    healthyThresholdCount: 10\n"
		"    unhealthyThresholdCount: 10\n"
		"    statusMatch: '200,204,301-302'\n"
		"    path: /healthz\n"
		"    port: 9090\n"
		"---\n"
		"apiVersion: application-networking.k8s.aws/v1alpha1\n"
		"kind: TargetGroupPolicy\n"
		"metadata: {name: p2, namespace: app}\n"
		"spec:\n"
		"  targetRef: {kind: Service, name: a, namespace: app}\n"
		"---\n"
		"apiVersion: application-networking.k8s.aws/v1alpha1\n"
		"kind: TargetGroupPolicy\n"
		"metadata: {name: p3, namespace: app}\n"
		"spec:\n"
		"  targetRef: {kind: Service, name: ghost}\n"
		"  protocol: HTTPS\n"
		"  healthCheck: {protocol: HTTP, protocolVersion: HTTP2}\n";
	struct ks_model m;
	struct ks_diags d;
	struct ksm_health *h;

	(void)state;
	assert_int_equal(load2(pol, &m, &d), -EINVAL);
	expect_diag(&d, false, "t.yaml:22:14: TargetGroupPolicy app/p2: spec.targetRef: Service "
		    "app/a is already targeted by TargetGroupPolicy app/p (t.yaml:1:1)");
	expect_diag(&d, true, "t.yaml:28:14: TargetGroupPolicy app/p3: spec.targetRef: Service "
		    "app/ghost not found: the policy governs nothing");
	ks_diags_free(&d);
	/* Load the good one alone to check every field. */
	{
		char one[1024];

		memcpy(one, pol, strstr(pol, "---\n") - pol);
		one[strstr(pol, "---\n") - pol] = '\0';
		if (load2(one, &m, &d))
			dump(&d);
		assert_int_equal(m.n_health, 1);
	}
	assert_int_equal(m.n_health, 1);
	h = &m.health[0];
	assert_string_equal(h->svc_ns, "app");
	assert_string_equal(h->svc_name, "a");
	assert_false(h->enabled);
	assert_int_equal(h->interval_s, 300);
	assert_int_equal(h->timeout_s, 120);
	assert_int_equal(h->healthy_threshold, 10);
	assert_int_equal(h->unhealthy_threshold, 10);
	assert_string_equal(h->status_match, "200,204,301-302");
	assert_string_equal(h->path, "/healthz");
	assert_int_equal(h->port, 9090);
	/* Lattice's defaults: plain HTTP/1.1, whatever the target group speaks. */
	assert_string_equal(h->protocol, "HTTP");
	assert_string_equal(h->protocol_version, "HTTP1");
	assert_string_equal(h->source, "t.yaml:1");
	ks_model_free(&m);
	ks_diags_free(&d);
}

static void test_addr_helpers(void **state)
{
	struct ksm_addr a;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(ksm_addr_parse("192.0.2.7", &a), 0);
	assert_int_equal(a.family, KS_FAMILY_V4);
	assert_int_equal(a.bytes[0], 192);
	assert_int_equal(a.bytes[3], 7);
	assert_int_equal(a.bytes[4], 0);
	assert_int_equal(ksm_addr_fmt(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.7");
	assert_int_equal(ksm_addr_parse("2001:db8::1", &a), 0);
	assert_int_equal(a.family, KS_FAMILY_V6);
	assert_int_equal(a.bytes[0], 0x20);
	assert_int_equal(a.bytes[15], 1);
	assert_int_equal(ksm_addr_fmt(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8::1");
	assert_int_equal(ksm_addr_fmt(&a, buf, 4), -ENOSPC);
	assert_int_equal(ksm_addr_parse("10.0.0.256", &a), -EINVAL);
	assert_int_equal(ksm_addr_parse("10.0.0.1/24", &a), -EINVAL);
	assert_int_equal(ksm_addr_parse("", &a), -EINVAL);
	assert_int_equal(ksm_addr_parse(NULL, &a), -EINVAL);
	a.family = 5;
	assert_int_equal(ksm_addr_fmt(&a, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_seed_without_grant),
		cmocka_unit_test(test_families_and_flags),
		cmocka_unit_test(test_all_listeners_and_sorting),
		cmocka_unit_test(test_invalid_refs),
		cmocka_unit_test(test_udp_port_mismatch_ref),
		cmocka_unit_test(test_reference_grants),
		cmocka_unit_test(test_mesh_parent),
		cmocka_unit_test(test_parent_errors),
		cmocka_unit_test(test_mesh_parent_kinds),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_tcp_route_and_annotations),
		cmocka_unit_test(test_no_parents_warning),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_addr_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
