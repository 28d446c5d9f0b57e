// SPDX-License-Identifier: BSD-2-Clause
/*
 * Per-route verdicts: one bad object is refused alone and the rest is
 * resolved; routes on one address are judged by age; a refused object or a
 * broken file keeps its last good version when the caller keeps the last
 * load's objects (the agent does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define GW(name, addr, port)                                                        \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"                 \
	"metadata: {name: " name ", namespace: app}\n"                              \
	"spec: {gatewayClassName: ksplit, addresses: [{value: " addr "}], "         \
	"listeners: [{name: http, port: " port ", protocol: HTTP}, "                \
	"{name: tcp, port: 9000, protocol: TCP}]}\n---\n"

#define SVC(name, ip, ep)                                                           \
	"apiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: app}\n" \
	"spec: {clusterIP: " ip ", ports: [{name: http, port: 80}]}\n---\n"         \
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"                    \
	"metadata: {name: " name "-1, namespace: app, labels: "                     \
	"{kubernetes.io/service-name: " name "}}\n"                                 \
	"addressType: IPv4\nports: [{name: http, port: 8080}]\n"                    \
	"endpoints: [{addresses: [" ep "]}]\n---\n"

/* kind is "v1 HTTPRoute" or "v1alpha2 TCPRoute": its apiVersion and kind. */
#define ROUTE(kind, name, meta, parent, refs)                                      \
	"apiVersion: gateway.networking.k8s.io/" kind "\n"                           \
	"metadata: {name: " name ", namespace: app" meta "}\n"                      \
	"spec: {parentRefs: [" parent "], rules: [{backendRefs: [" refs "]}]}\n---\n"

static const char base[] = GW("gw", "10.0.0.1", "80") SVC("a", "10.96.0.1", "192.0.2.1")
	SVC("b", "10.96.0.2", "192.0.2.2");

struct load {
	struct ks_model m;
	struct ks_diags d;
};

static void load(struct load *l, const char *yaml)
{
	const char *names[] = { "base.yaml", "t.yaml" };
	const char *bufs[] = { base, yaml };
	size_t lens[] = { strlen(base), strlen(yaml) };

	memset(l, 0, sizeof(*l));
	assert_int_equal(ks_model_load_buffers_opts(NULL, names, bufs, lens, 2, &l->m, &l->d), 0);
}

static void unload(struct load *l)
{
	ks_model_free(&l->m);
	ks_diags_free(&l->d);
}

static const struct ksm_route_status *route(const struct ks_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_routes; i++)
		if (!strcmp(m->routes[i].name, name))
			return &m->routes[i];
	fail_msg("no verdict for route %s", name);
	return NULL;
}

static const struct ksm_service *svc(const struct ks_model *m, const char *route)
{
	size_t i;

	for (i = 0; i < m->n_svcs; i++)
		if (!strcmp(m->svcs[i].route, route))
			return &m->svcs[i];
	return NULL;
}

/* A valid route beside invalid ones of every kind of refusal is programmed as if alone. */
static void test_mixed(void **state)
{
	static const char yaml[] =
		ROUTE("v1\nkind: HTTPRoute", "good", "", "{name: gw}", "{name: a, port: 80, weight: 1}")
		/* Accepted=False: no such Gateway. */
		ROUTE("v1alpha2\nkind: TCPRoute", "lost", "", "{name: nogw}", "{name: a, port: 80}")
		/* Refused as an object: an L7 match. */
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: l7, namespace: app}\n"
		"spec: {parentRefs: [{name: gw}], rules: [{matches: [{method: GET}], "
		"backendRefs: [{name: a, port: 80}]}]}\n---\n"
		/* Accepted, but one backendRef unresolved: its share is refused. */
		ROUTE("v1alpha2\nkind: TCPRoute", "half", "", "{name: gw, sectionName: tcp}",
		      "{name: a, port: 80, weight: 1}, {name: nosuch, port: 80, weight: 3}")
		/* A Gateway refused on its own: its routes say so. */
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
		"metadata: {name: broken, namespace: app}\n"
		"spec: {gatewayClassName: x, addresses: [{value: nope}], listeners: "
		"[{name: http, port: 80, protocol: HTTP}]}\n---\n"
		ROUTE("v1\nkind: HTTPRoute", "orphan", "", "{name: broken}", "{name: b, port: 80}");
	const struct ksm_route_status *r;
	struct load l;

	(void)state;
	load(&l, yaml);
	assert_int_equal(l.m.n_routes, 5);
	assert_int_equal(l.m.n_svcs, 2);

	r = route(&l.m, "good");
	assert_true(ksm_route_accepted(r));
	assert_int_equal(r->parents[0].n_programmed, 1);
	assert_non_null(svc(&l.m, "HTTPRoute app/good"));

	r = route(&l.m, "lost");
	assert_false(ksm_route_accepted(r));
	assert_int_equal(r->parents[0].accepted, KSM_R_NO_MATCHING_PARENT);
	assert_string_equal(r->parents[0].accepted_msg, "Gateway app/nogw not found");

	r = route(&l.m, "l7");
	assert_false(ksm_route_accepted(r));
	assert_string_equal(r->refused, "spec.rules[0].matches[0].method: method matching cannot be "
			    "honoured: ksplit picks a backend at connect(), before any byte of the "
			    "request exists");
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_null(svc(&l.m, "HTTPRoute app/l7"));

	r = route(&l.m, "half");
	assert_true(ksm_route_accepted(r));
	assert_int_equal(r->parents[0].resolved, KSM_R_BACKEND_NOT_FOUND);
	assert_string_equal(r->parents[0].resolved_msg, "Service app/nosuch not found");
	assert_int_equal(r->weight_total, 4);
	assert_int_equal(r->weight_refused, 3);
	assert_int_equal(svc(&l.m, "TCPRoute app/half")->groups[1].invalid, KSM_REF_NOT_FOUND);

	r = route(&l.m, "orphan");
	assert_int_equal(r->parents[0].accepted, KSM_R_NO_MATCHING_PARENT);
	assert_string_equal(r->parents[0].accepted_msg,
			    "Gateway app/broken not found: it is defined at t.yaml:21 but refused, "
			    "see its errors");
	unload(&l);
}

/* Two routes on one address: the oldest by creationTimestamp keeps it, whatever the file order. */
static void test_oldest_wins(void **state)
{
	static const char yaml[] =
		ROUTE("v1\nkind: HTTPRoute", "young", ", creationTimestamp: '2026-05-01T00:00:00Z'",
		      "{name: gw}", "{name: a, port: 80}")
		ROUTE("v1\nkind: HTTPRoute", "old", ", creationTimestamp: '2025-01-01T00:00:00Z'",
		      "{name: gw}", "{name: b, port: 80}")
		/* No timestamp (a file, not the API): after every timestamped one. */
		ROUTE("v1\nkind: HTTPRoute", "aaa", "", "{name: gw}", "{name: b, port: 80}");
	const struct ksm_route_status *r;
	struct load l;

	(void)state;
	load(&l, yaml);
	assert_int_equal(l.m.n_svcs, 1);
	assert_string_equal(l.m.svcs[0].route, "HTTPRoute app/old");
	assert_true(ksm_route_accepted(route(&l.m, "old")));
	r = route(&l.m, "young");
	assert_int_equal(r->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	assert_int_equal(r->parents[0].n_programmed, 0);
	assert_string_equal(r->parents[0].accepted_msg,
			    "10.0.0.1:80/TCP is also claimed by HTTPRoute app/old (t.yaml:6, via "
			    "Gateway app/gw:http), which is older (creationTimestamp, then "
			    "namespace/name) and keeps it: an L4 splitter cannot merge two routes on "
			    "one address and port");
	assert_int_equal(route(&l.m, "aaa")->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	unload(&l);
}

/*
 * A route that loses one address loses its whole parentRef, so the next
 * route may take the address it freed: C is not refused because of B.
 */
static void test_loser_frees_its_keys(void **state)
{
	static const char yaml[] =
		GW("gw2", "10.0.0.2", "80")
		/* A on gw; B on gw and gw2 (one parentRef each); C on gw2. A older than B older than C. */
		ROUTE("v1\nkind: HTTPRoute", "a", ", creationTimestamp: '2025-01-01T00:00:00Z'",
		      "{name: gw}", "{name: a, port: 80}")
		ROUTE("v1\nkind: HTTPRoute", "b", ", creationTimestamp: '2025-02-01T00:00:00Z'",
		      "{name: gw}, {name: gw2}", "{name: a, port: 80}")
		ROUTE("v1\nkind: HTTPRoute", "c", ", creationTimestamp: '2025-03-01T00:00:00Z'",
		      "{name: gw2}", "{name: b, port: 80}");
	const struct ksm_route_status *b;
	struct load l;

	(void)state;
	load(&l, yaml);
	b = route(&l.m, "b");
	assert_int_equal(b->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	/* B's second parentRef is older than C's claim: B keeps gw2. */
	assert_int_equal(b->parents[1].accepted, KSM_R_ACCEPTED);
	assert_int_equal(b->parents[1].n_programmed, 1);
	assert_int_equal(route(&l.m, "c")->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	assert_int_equal(l.m.n_svcs, 2);
	unload(&l);
}

/* A YAML syntax error refuses its own file's objects only. */
static void test_syntax_error_one_file(void **state)
{
	const char *names[] = { "base.yaml", "broken.yaml", "t.yaml" };
	const char *bufs[] = { base, "kind: [unclosed\n",
			       ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: a, port: 80}") };
	size_t lens[] = { strlen(bufs[0]), strlen(bufs[1]), strlen(bufs[2]) };
	struct ks_model m;
	struct ks_diags d = {};

	(void)state;
	assert_int_equal(ks_model_load_buffers_opts(NULL, names, bufs, lens, 3, &m, &d), 0);
	assert_int_equal(d.n_errors, 1);
	assert_non_null(strstr(d.v[0].msg, "broken.yaml:"));
	assert_int_equal(m.n_svcs, 1);
	ks_model_free(&m);
	ks_diags_free(&d);
	/* The whole-config load (the tests' and the fuzzer's) still fails. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(ks_model_load_buffers(names, bufs, lens, 3, &m, &d), -EINVAL);
	ks_diags_free(&d);
}

static char dir[] = "/tmp/ks-verdicts-XXXXXX";

static void put(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void load_dir(struct ks_objects **keep, struct load *l)
{
	const char *paths[] = { dir };

	ks_model_free(&l->m);
	ks_diags_free(&l->d);
	memset(l, 0, sizeof(*l));
	assert_int_equal(ks_model_load_opts(NULL, paths, 1, keep, &l->m, &l->d), 0);
}

/* The agent's loads: a refused edit or a broken file keeps the last good version in force. */
static void test_last_good(void **state)
{
	struct ks_objects *keep = NULL;
	const struct ksm_route_status *r;
	struct load l = {};
	char path[PATH_MAX];

	(void)state;
	assert_non_null(mkdtemp(dir));
	put("base.yaml", base);
	put("r.yaml", ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}",
			    "{name: a, port: 80, weight: 1}, {name: b, port: 80, weight: 3}"));
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 1);
	assert_int_equal(l.m.svcs[0].groups[1].weight, 3);

	/* Edited into an L7 route: refused, the last good one stays programmed. */
	put("r.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		      "metadata: {name: r, namespace: app}\n"
		      "spec: {parentRefs: [{name: gw}], rules: [{timeouts: {request: 1s}, "
		      "backendRefs: [{name: a, port: 80}]}]}\n");
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 1);
	assert_int_equal(l.m.svcs[0].groups[1].weight, 3);
	assert_int_equal(l.m.n_routes, 1);
	r = &l.m.routes[0];
	assert_true(r->kept);
	assert_false(ksm_route_accepted(r));
	assert_non_null(strstr(r->refused, "timeouts: request timeouts cannot be honoured"));
	assert_int_equal(r->parents[0].n_programmed, 1);

	/* Still refused on the next load: still kept (carried again). */
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 1);
	assert_true(l.m.routes[0].kept);

	/* The Service file broken: its objects keep their last good versions. */
	put("base.yaml", "kind: [\n");
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 1);
	assert_int_equal(l.m.svcs[0].groups[0].n_eps, 1);

	/* Fixed: the new version replaces the kept one. */
	put("base.yaml", base);
	put("r.yaml", ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: b, port: 80}"));
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 1);
	assert_int_equal(l.m.svcs[0].n_groups, 1);
	assert_false(l.m.routes[0].kept);
	assert_true(ksm_route_accepted(&l.m.routes[0]));

	/* Deleted: gone, nothing kept. */
	snprintf(path, sizeof(path), "%s/r.yaml", dir);
	assert_int_equal(unlink(path), 0);
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_svcs, 0);
	assert_int_equal(l.m.n_routes, 0);

	unload(&l);
	ks_objects_free(keep);
	snprintf(path, sizeof(path), "%s/base.yaml", dir);
	unlink(path);
	rmdir(dir);
}

/*
 * Several refused objects of one kind in one load, each with a last good
 * version: all of them carried. Carrying grows the store the refused copies
 * are looked up in (two refused routes: the store reallocs from 2 to 4 on
 * the first carry), so the lookup must not hold pointers into it across the
 * moves (a use-after-free that ASan, make SANITIZE=1 unit-test, reports).
 */
static void test_last_good_many(void **state)
{
	static const char gw2[] = GW("gw2", "10.0.0.2", "80");
	static const char l7[] = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: %s, namespace: app}\n"
		"spec: {parentRefs: [{name: %s}], rules: [{timeouts: {request: 1s}, "
		"backendRefs: [{name: a, port: 80}]}]}\n---\n";
	struct ks_objects *keep = NULL;
	struct load l = {};
	char path[PATH_MAX], text[2048];
	int len;

	(void)state;
	strcpy(dir, "/tmp/ks-verdicts-XXXXXX");
	assert_non_null(mkdtemp(dir));
	put("base.yaml", base);
	put("r.yaml", GW("gw2", "10.0.0.2", "80")
		      ROUTE("v1\nkind: HTTPRoute", "r1", "", "{name: gw}", "{name: a, port: 80}")
		      ROUTE("v1\nkind: HTTPRoute", "r2", "", "{name: gw2}", "{name: b, port: 80}"));
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_routes, 2);
	assert_true(ksm_route_accepted(route(&l.m, "r1")));
	assert_true(ksm_route_accepted(route(&l.m, "r2")));
	/* Both refused at once: each one's last good version stays, twice in a row. */
	len = snprintf(text, sizeof(text), "%s", gw2);
	len += snprintf(text + len, sizeof(text) - (size_t)len, l7, "r1", "gw");
	len += snprintf(text + len, sizeof(text) - (size_t)len, l7, "r2", "gw2");
	assert_true(len > 0 && (size_t)len < sizeof(text));
	put("r.yaml", text);
	load_dir(&keep, &l);
	assert_int_equal(l.m.n_routes, 2);
	assert_true(route(&l.m, "r1")->kept);
	assert_true(route(&l.m, "r2")->kept);
	assert_int_equal(l.m.n_svcs, 2);
	load_dir(&keep, &l);
	assert_true(route(&l.m, "r1")->kept);
	assert_true(route(&l.m, "r2")->kept);
	assert_int_equal(l.m.n_svcs, 2);
	unload(&l);
	ks_objects_free(keep);
	snprintf(path, sizeof(path), "%s/base.yaml", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/r.yaml", dir);
	unlink(path);
	rmdir(dir);
}

/* A config with no base (it brings its own Gateway and Services). */
static void load_one_of(struct load *l, const struct ks_load_opts *o, const char *yaml)
{
	const char *names[] = { "t.yaml" };
	size_t lens[] = { strlen(yaml) };

	memset(l, 0, sizeof(*l));
	assert_int_equal(ks_model_load_buffers_opts(o, names, &yaml, lens, 1, &l->m, &l->d), 0);
}

/* The same, for a config of one route: its verdict. */
static const struct ksm_route_status *load_one(struct load *l, const struct ks_load_opts *o,
					       const char *yaml)
{
	load_one_of(l, o, yaml);
	assert_int_equal(l->m.n_routes, 1);
	return &l->m.routes[0];
}

/* Addresses a node-wide hook must not take: the parentRef refuses the route, with why. */
static void test_unsafe_vips(void **state)
{
	static const struct ks_load_opts allow = { .allow_loopback_vips = true };
	static const char lo[] = GW("gw", "127.0.0.1", "80") SVC("a", "10.96.0.1", "192.0.2.1")
		ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: a, port: 80}");
	static const char any[] = GW("gw", "'0.0.0.0'", "80") SVC("a", "10.96.0.1", "192.0.2.1")
		ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: a, port: 80}");
	static const char mesh[] = SVC("a", "'169.254.169.254'", "192.0.2.1")
		ROUTE("v1\nkind: HTTPRoute", "r", "", "{kind: Service, group: '', name: a}",
		      "{name: a, port: 80}");
	const struct ksm_route_status *r;
	struct load l;

	(void)state;
	r = load_one(&l, NULL, lo);
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_non_null(strstr(r->parents[0].accepted_msg,
			       "Gateway app/gw has the loopback address 127.0.0.1, which ksplit will "
			       "not intercept: "));
	assert_non_null(strstr(r->parents[0].accepted_msg, "pass --allow-loopback-vips for tests"));
	assert_int_equal(l.m.n_svcs, 0);
	unload(&l);
	r = load_one(&l, &allow, lo);
	assert_true(ksm_route_accepted(r));
	assert_int_equal(l.m.n_svcs, 1);
	unload(&l);
	/* The flag allows loopback only. */
	r = load_one(&l, &allow, any);
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_non_null(strstr(r->parents[0].accepted_msg, "the unspecified address 0.0.0.0"));
	unload(&l);
	r = load_one(&l, &allow, mesh);
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_non_null(strstr(r->parents[0].accepted_msg,
			       "Service app/a has the link-local address 169.254.169.254"));
	unload(&l);
}

/* The right parent kind in the wrong group is named as such. */
static void test_parent_group(void **state)
{
	static const char gw[] = GW("gw", "10.0.0.1", "80") SVC("a", "10.96.0.1", "192.0.2.1")
		ROUTE("v1\nkind: HTTPRoute", "r", "", "{group: '', kind: Gateway, name: gw}",
		      "{name: a, port: 80}");
	static const char svc[] = SVC("a", "10.96.0.1", "192.0.2.1")
		ROUTE("v1\nkind: HTTPRoute", "r", "", "{group: example.com, kind: Service, name: a}",
		      "{name: a, port: 80}");
	const struct ksm_route_status *r;
	struct load l;

	(void)state;
	r = load_one(&l, NULL, gw);
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_string_equal(r->parents[0].accepted_msg, "a Gateway parent is of group "
			    "gateway.networking.k8s.io, not '': omit group");
	unload(&l);
	r = load_one(&l, NULL, svc);
	assert_string_equal(r->parents[0].accepted_msg, "a Service parent is of group \"\" (core), "
			    "not 'example.com': write group: \"\" or core");
	unload(&l);
}

/* Listeners decide through km_listener_admits: allowedRoutes, TLS mode, hostnames. */
static void test_listeners_judge(void **state)
{
	static const char yaml[] =
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
		"metadata: {name: gw, namespace: app}\n"
		"spec: {gatewayClassName: ksplit, addresses: [{value: 10.0.0.1}], listeners: ["
		"{name: http, port: 80, protocol: HTTP},"
		"{name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}},"
		"{name: pass, port: 8443, protocol: TLS, tls: {mode: Passthrough}},"
		"{name: all, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}]}\n---\n"
		SVC("a", "10.96.0.1", "192.0.2.1")
		/* No sectionName: programmed on http only, with a warning about https. */
		ROUTE("v1\nkind: HTTPRoute", "web", "", "{name: gw}", "{name: a, port: 80}")
		ROUTE("v1\nkind: HTTPRoute", "tls", "", "{name: gw, sectionName: https}",
		      "{name: a, port: 80}")
		ROUTE("v1alpha2\nkind: TLSRoute", "pass", "", "{name: gw, sectionName: pass}",
		      "{name: a, port: 80}")
		ROUTE("v1\nkind: GRPCRoute", "grpc", ", creationTimestamp: '2020-01-01T00:00:00Z'",
		      "{name: gw, sectionName: http}", "{name: a, port: 80}")
		/* From another namespace: only the listener with from: All takes it. */
		"apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\n"
		"metadata: {name: other, namespace: team}\n"
		"spec: {parentRefs: [{name: gw, namespace: app}], rules: [{backendRefs: "
		"[{name: a, namespace: app, port: 80}]}]}\n---\n"
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		"metadata: {name: other-web, namespace: team}\n"
		"spec: {parentRefs: [{name: gw, namespace: app, sectionName: http}], rules: "
		"[{backendRefs: [{name: a, namespace: app, port: 80}]}]}\n---\n";
	const struct ksm_route_status *r;
	struct load l;
	size_t i;
	bool warned = false;

	(void)state;
	load_one_of(&l, NULL, yaml);
	r = route(&l.m, "web");
	/* Older GRPCRoute holds 10.0.0.1:80: web loses it by age, which says the listeners ran. */
	assert_int_equal(r->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	for (i = 0; i < l.d.n; i++)
		warned |= l.d.v[i].warning &&
			  strstr(l.d.v[i].msg, "HTTPRoute app/web: spec.parentRefs[0]: not programmed "
						"on listener 'https' of Gateway app/gw");
	assert_true(warned);
	r = route(&l.m, "tls");
	assert_int_equal(r->parents[0].accepted, KSM_R_UNSUPPORTED_VALUE);
	assert_non_null(strstr(r->parents[0].accepted_msg, "listener 'https' of Gateway app/gw"));
	assert_true(ksm_route_accepted(route(&l.m, "pass")));
	assert_true(ksm_route_accepted(route(&l.m, "grpc")));
	assert_true(ksm_route_accepted(route(&l.m, "other")));
	assert_int_equal(route(&l.m, "other")->parents[0].n_programmed, 1);
	r = route(&l.m, "other-web");
	assert_int_equal(r->parents[0].accepted, KSM_R_NOT_ALLOWED_BY_LISTENERS);
	unload(&l);
}

/*
 * The API source's loads: an object unchanged since the kept load is taken
 * from it, not parsed again (here told "unchanged" for a buffer whose text
 * did change, to see which version is used); a duplicate is judged anew.
 */
static void test_reuse_unchanged(void **state)
{
	const char *names[] = { "gateways/app/gw", "services/app/a", "endpointslices/app/a-1",
				"httproutes/app/r", "httproutes/app/r-copy" };
	const char *v1[] = { GW("gw", "10.0.0.1", "80"), SVC("a", "10.96.0.1", "192.0.2.1"), "",
			     ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: a, port: 80}"),
			     ROUTE("v1\nkind: HTTPRoute", "r", "", "{name: gw}", "{name: a, port: 80}") };
	const char *v2[5];
	size_t lens[5], i;
	bool reuse[5] = { true, true, true, true, true };
	struct ks_objects *keep = NULL;
	struct ks_model m;
	struct ks_diags d = {};

	(void)state;
	for (i = 0; i < 5; i++)
		lens[i] = strlen(v1[i]);
	assert_int_equal(ks_model_load_objects(NULL, names, v1, lens, NULL, 5, &keep, NULL, &m, &d), 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].n_eps, 1);
	/* The second r is a later copy: refused. */
	assert_int_equal(d.n_errors, 1);
	ks_model_free(&m);
	ks_diags_free(&d);

	/* The Service's text changed, but the caller says unchanged: the kept version is used. */
	memcpy(v2, v1, sizeof(v2));
	v2[1] = SVC("a", "10.96.0.1", "192.0.2.7");
	lens[1] = strlen(v2[1]);
	memset(&d, 0, sizeof(d));
	assert_int_equal(ks_model_load_objects(NULL, names, v2, lens, reuse, 5, &keep, NULL, &m, &d), 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].eps[0].addr.bytes[3], 1);
	/* Reused objects bring no parse diagnostics; the copy is still refused, judged anew. */
	assert_int_equal(d.n_errors, 1);
	ks_model_free(&m);
	ks_diags_free(&d);

	/* Told changed: parsed again. The first r deleted: its copy is no longer a copy. */
	reuse[1] = false;
	names[3] = names[4];
	v2[3] = v2[4];
	lens[3] = lens[4];
	memset(&d, 0, sizeof(d));
	assert_int_equal(ks_model_load_objects(NULL, names, v2, lens, reuse, 4, &keep, NULL, &m, &d), 0);
	assert_int_equal(m.n_svcs, 1);
	assert_int_equal(m.svcs[0].groups[0].eps[0].addr.bytes[3], 7);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(m.n_routes, 1);
	assert_true(ksm_route_accepted(&m.routes[0]));
	ks_model_free(&m);
	ks_diags_free(&d);

	/*
	 * Held: what the kept objects hold parsed, so the source may drop its
	 * text (reused or parsed; an empty text stores nothing). Then a reused
	 * buffer needs no text.
	 */
	{
		bool held[4];

		reuse[1] = true;
		memset(&d, 0, sizeof(d));
		assert_int_equal(ks_model_load_objects(NULL, names, v2, lens, reuse, 4, &keep, held,
						       &m, &d), 0);
		assert_true(held[0] && held[1] && held[3]);
		assert_false(held[2]);
		ks_model_free(&m);
		v2[1] = NULL;
		lens[1] = 0;
		assert_int_equal(ks_model_load_objects(NULL, names, v2, lens, reuse, 4, &keep, held,
						       &m, &d), 0);
		assert_true(held[1]);
		assert_int_equal(m.svcs[0].groups[0].eps[0].addr.bytes[3], 7);
		ks_model_free(&m);
		/* Without kept objects to take it from: the source must hand the text again. */
		ks_objects_free(keep);
		keep = NULL;
		assert_int_equal(ks_model_load_objects(NULL, names, v2, lens, reuse, 4, &keep, held,
						       &m, &d), -ESTALE);
		assert_null(keep);
		assert_int_equal(d.n_errors, 0);
		ks_diags_free(&d);
	}
	ks_objects_free(keep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_oldest_wins),
		cmocka_unit_test(test_loser_frees_its_keys),
		cmocka_unit_test(test_syntax_error_one_file),
		cmocka_unit_test(test_last_good),
		cmocka_unit_test(test_last_good_many),
		cmocka_unit_test(test_unsafe_vips),
		cmocka_unit_test(test_parent_group),
		cmocka_unit_test(test_listeners_judge),
		cmocka_unit_test(test_reuse_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
