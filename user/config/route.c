// SPDX-License-Identifier: BSD-2-Clause
/*
 * Routes. HTTPRoute, GRPCRoute, TCPRoute, TLSRoute and UDPRoute share this
 * parser: what differs between them (their fields, their own checks, what
 * they carry) is their struct km_route_kind, at the end of this file.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"

#define ANN_PASSIVE	"ksplit.io/passive-failures"
#define ANN_EMPTY	"ksplit.io/empty-group"

/* Also after a partial parse: what a parser drops and what km_route_free frees. */
static void free_parent(struct km_parent_ref *p)
{
	free(p->group);
	free(p->kind);
	free(p->ns);
	free(p->name);
	free(p->section);
	memset(p, 0, sizeof(*p));
}

static void free_backend(struct km_backend_ref *b)
{
	free(b->group);
	free(b->kind);
	free(b->ns);
	free(b->name);
	memset(b, 0, sizeof(*b));
}

static void parse_parent_refs(struct km_ctx *c, const struct ky_node *spec, struct km_route *r)
{
	static const char *const keys[] = { "group", "kind", "namespace", "name", "sectionName",
		"port", NULL };
	const struct ky_node *refs = km_get_seq(c, spec, "parentRefs", false);
	size_t i, m;

	if (!refs || !refs->n)
		return;
	if (refs->n > 32) {
		km_err_field(c, refs, "parentRefs", "at most 32 parentRefs are allowed, got %zu",
			     refs->n);
		return;
	}
	r->parents = calloc(refs->n, sizeof(*r->parents));
	if (!r->parents) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < refs->n; i++) {
		const struct ky_node *p = refs->kids[i];
		struct km_parent_ref *pr = &r->parents[r->n_parents];
		bool ok = true;

		m = km_push(c, "parentRefs[%zu]", i);
		if (!km_item_map(c, p)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, p, keys);
		ok &= !km_dup_group(c, p, "group", false, KM_GW_GROUP, &pr->group);
		ok &= !km_dup_str(c, p, "kind", false, "Gateway", &pr->kind);
		ok &= !km_dup_str(c, p, "namespace", false, r->m.ns, &pr->ns);
		ok &= !km_dup_str(c, p, "name", true, NULL, &pr->name);
		ok &= !km_dup_str(c, p, "sectionName", false, "", &pr->section);
		ok &= !km_get_port(c, p, "port", false, &pr->port, NULL);
		pr->pos.line = p->line;
		pr->pos.col = p->col;
		/* Errors about one field point at it; absent fields, at the parentRef. */
		km_field_pos(p, "sectionName", &pr->pos, &pr->section_pos);
		km_field_pos(p, "port", &pr->pos, &pr->port_pos);
		if (ok && pr->group && pr->kind && pr->ns && pr->name && pr->section)
			r->n_parents++;
		else
			free_parent(pr);
		km_pop(c, m);
	}
}

static void refuse_present(struct km_ctx *c, const struct ky_node *map, const char *key,
			   const char *what)
{
	const struct ky_node *v = km_field(map, key);

	if (!v || ((v->type == KY_SEQ || v->type == KY_MAP) && !v->n))
		return;
	km_err_field(c, v, key, "%s cannot be honoured: %s", what, KM_L4_WHY);
}

static void parse_backend_refs(struct km_ctx *c, const struct ky_node *rule, struct km_route *r,
			       bool keep)
{
	const struct ky_node *refs = km_get_seq(c, rule, "backendRefs", false);
	size_t i, m;

	if (!refs || !refs->n) {
		if (!c->bad || !refs)
			km_err_field(c, rule, "backendRefs",
				     "at least one backendRef is required: ksplit has nothing to split "
				     "traffic to");
		return;
	}
	if (refs->n > KSM_MAX_GROUPS) {
		km_err_field(c, refs, "backendRefs", "at most %d backendRefs are allowed, got %zu",
			     KSM_MAX_GROUPS, refs->n);
		return;
	}
	if (keep) {
		r->backends = calloc(refs->n, sizeof(*r->backends));
		if (!r->backends) {
			c->err = -ENOMEM;
			return;
		}
	}
	for (i = 0; i < refs->n; i++) {
		const struct ky_node *b = refs->kids[i];
		struct km_backend_ref br = { 0 };
		long long w = 1;
		bool ok = true;

		m = km_push(c, "backendRefs[%zu]", i);
		if (!km_item_map(c, b)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, b, r->kind->backend_keys);
		if (r->kind->check_backend)
			r->kind->check_backend(c, b);
		ok &= !km_dup_group(c, b, "group", false, "", &br.group);
		ok &= !km_dup_str(c, b, "kind", false, "Service", &br.kind);
		ok &= !km_dup_str(c, b, "name", true, NULL, &br.name);
		ok &= !km_dup_str(c, b, "namespace", false, r->m.ns, &br.ns);
		ok &= !km_get_port(c, b, "port", false, &br.port, &br.has_port);
		ok &= !km_get_int(c, b, "weight", false, 0, 1000000, &w, NULL);
		br.weight = (uint32_t)w;
		br.pos.line = b->line;
		br.pos.col = b->col;
		if (br.group && br.kind && !*br.group && !strcmp(br.kind, "Service") &&
		    !br.has_port && !km_field(b, "port")) {
			km_err_field(c, b, "port", "required for a Service backendRef (the Service port)");
			ok = false;
		}
		if (ok && keep && br.group && br.kind && br.name && br.ns)
			r->backends[r->n_backends++] = br;
		else
			free_backend(&br);
		km_pop(c, m);
	}
}

static void parse_annotations(struct km_ctx *c, const struct ky_node *meta, struct km_route *r)
{
	const struct ky_node *ann = km_field(meta, "annotations"), *v;
	size_t m;
	long long x;

	if (!ann || ann->type != KY_MAP)
		return;
	m = km_push(c, "metadata.annotations");
	v = km_field(ann, ANN_PASSIVE);
	if (v && v->type == KY_SCALAR) {
		struct ky_node tmp = *v;

		tmp.quoted = false;	/* annotation values are strings by definition */
		if (km_parse_int(&tmp, &x) || x < 0 || x > 1000)
			km_err_field(c, v, ANN_PASSIVE, "'%s' is not an integer between 0 and 1000",
				     v->str);
		else
			r->ann_passive_failures = km_strdup(c, v->str);
	}
	v = km_field(ann, ANN_EMPTY);
	if (v && v->type == KY_SCALAR) {
		if (strcmp(v->str, "shift") && strcmp(v->str, "reject"))
			km_err_field(c, v, ANN_EMPTY, "'%s' is not one of shift, reject", v->str);
		else
			r->ann_empty_group = km_strdup(c, v->str);
	}
	km_pop(c, m);
}

void km_route_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	const struct ky_node *spec = doc->spec, *rules;
	struct km_route *r = obj;
	const char *str;
	size_t i, m;

	r->kind = doc->arg;
	parse_annotations(c, doc->meta, r);
	km_push(c, "spec");
	km_check_keys(c, spec, r->kind->spec_keys);
	parse_parent_refs(c, spec, r);
	if (r->kind->check_spec)
		r->kind->check_spec(c, spec);
	rules = km_get_seq(c, spec, "rules", false);
	r->rules_pos.line = rules ? rules->line : spec->line;
	r->rules_pos.col = rules ? rules->col : spec->col;
	if (!rules || !rules->n) {
		km_err_field(c, rules ? rules : spec, "rules",
			     "exactly one rule with backendRefs is required");
		return;
	}
	r->n_rules = rules->n;
	if (rules->n > 1)
		km_err_field(c, rules->kids[1], "rules",
			     "%zu rules: ksplit supports exactly one rule per route, because at "
			     "connect() every rule would match every connection", rules->n);
	for (i = 0; i < rules->n; i++) {
		const struct ky_node *rule = rules->kids[i];

		m = km_push(c, "rules[%zu]", i);
		if (!km_item_map(c, rule)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, rule, r->kind->rule_keys);
		km_get_str(c, rule, "name", false, &str);
		if (r->kind->check_rule)
			r->kind->check_rule(c, rule);
		parse_backend_refs(c, rule, r, i == 0);
		km_pop(c, m);
	}
}

void km_route_free(void *obj)
{
	struct km_route *r = obj;
	size_t i;

	for (i = 0; i < r->n_parents; i++)
		free_parent(&r->parents[i]);
	free(r->parents);
	for (i = 0; i < r->n_backends; i++)
		free_backend(&r->backends[i]);
	free(r->backends);
	free(r->ann_passive_failures);
	free(r->ann_empty_group);
}

/* ---- HTTPRoute's own checks: what an L4 splitter cannot honour ---- */

static void check_match(struct km_ctx *c, const struct ky_node *mt)
{
	static const char *const keys[] = { "path", "headers", "queryParams", "method", NULL };
	static const char *const path_keys[] = { "type", "value", NULL };
	static const char *const ptypes[] = { "PathPrefix", "Exact", "RegularExpression", NULL };
	const struct ky_node *path;
	const char *val = "/";
	int t = 0;
	size_t m;

	km_check_keys(c, mt, keys);
	refuse_present(c, mt, "headers", "header matching");
	refuse_present(c, mt, "queryParams", "query parameter matching");
	refuse_present(c, mt, "method", "method matching");
	path = km_get_map(c, mt, "path", false);
	if (!path)
		return;
	m = km_push(c, "path");
	km_check_keys(c, path, path_keys);
	if (!km_get_enum(c, path, "type", false, ptypes, &t) && t != 0)
		km_err_field(c, ky_map_get(path, "type"), "type",
			     "%s path matching cannot be honoured: %s; only PathPrefix / "
			     "(every request) can", ptypes[t], KM_L4_WHY);
	else if (!km_get_str(c, path, "value", false, &val) && strcmp(val, "/"))
		km_err_field(c, ky_map_get(path, "value"), "value",
			     "path prefix '%s' cannot be honoured: %s; only PathPrefix / "
			     "(every request) can", val, KM_L4_WHY);
	km_pop(c, m);
}

static void http_spec(struct km_ctx *c, const struct ky_node *spec)
{
	const struct ky_node *hn;

	km_check_str_list(c, spec, "hostnames");
	hn = km_get_seq(c, spec, "hostnames", false);
	if (hn && hn->n)
		km_err_field(c, hn, "hostnames",
			     "hostnames cannot be enforced: %s (no Host header or SNI yet), so "
			     "the route would silently apply to every hostname; remove them",
			     KM_L4_WHY);
}

/* What HTTPRoute and GRPCRoute rules share: filters and session persistence. */
static void l7_rule(struct km_ctx *c, const struct ky_node *rule)
{
	refuse_present(c, rule, "filters", "rule filters");
	if (km_field(rule, "sessionPersistence"))
		km_err_field(c, km_field(rule, "sessionPersistence"), "sessionPersistence",
			     "session persistence cannot be honoured: %s (no cookie or "
			     "header to key on)", KM_L4_WHY);
}

static void http_rule(struct km_ctx *c, const struct ky_node *rule)
{
	const struct ky_node *matches;
	size_t m;

	l7_rule(c, rule);
	if (km_field(rule, "timeouts"))
		km_err_field(c, km_field(rule, "timeouts"), "timeouts",
			     "request timeouts cannot be honoured: ksplit only places "
			     "connections and never sees requests or responses");
	if (km_field(rule, "retry"))
		km_err_field(c, km_field(rule, "retry"), "retry",
			     "retries cannot be honoured: ksplit only places connections "
			     "and never sees requests or responses");
	matches = km_get_seq(c, rule, "matches", false);
	if (matches && matches->n > 1)
		km_err_field(c, matches, "matches",
			     "%zu matches: only none or a single PathPrefix / match can be "
			     "honoured, because %s", matches->n, KM_L4_WHY);
	else if (matches && matches->n == 1) {
		m = km_push(c, "matches[0]");
		if (km_item_map(c, matches->kids[0]))
			check_match(c, matches->kids[0]);
		km_pop(c, m);
	}
}

static void http_backend(struct km_ctx *c, const struct ky_node *backend)
{
	refuse_present(c, backend, "filters", "backendRef filters");
}

/*
 * ---- GRPCRoute's own checks ----
 * An empty match ({}) matches every call, as no matches do; a method or a
 * header is in the request, which does not exist yet at connect().
 */
static void grpc_rule(struct km_ctx *c, const struct ky_node *rule)
{
	static const char *const keys[] = { "method", "headers", NULL };
	const struct ky_node *matches;
	size_t i, m;

	l7_rule(c, rule);
	matches = km_get_seq(c, rule, "matches", false);
	for (i = 0; matches && i < matches->n; i++) {
		m = km_push(c, "matches[%zu]", i);
		if (km_item_map(c, matches->kids[i])) {
			km_check_keys(c, matches->kids[i], keys);
			refuse_present(c, matches->kids[i], "method", "method matching");
			refuse_present(c, matches->kids[i], "headers", "header matching");
		}
		km_pop(c, m);
	}
}

/* ---- TLSRoute's own checks ---- */

static void tls_spec(struct km_ctx *c, const struct ky_node *spec)
{
	const struct ky_node *hn;

	km_check_str_list(c, spec, "hostnames");
	hn = km_get_seq(c, spec, "hostnames", false);
	if (hn && hn->n)
		km_err_field(c, hn, "hostnames",
			     "SNI hostnames cannot be enforced: %s (the TLS ClientHello that "
			     "carries SNI comes later), so the route would silently apply to every "
			     "hostname; remove them (TLSRoute v1alpha3 and v1 require hostnames: use "
			     "v1alpha2, or a TCPRoute on a TCP listener)", KM_L4_WHY);
}

/* ---- the route kinds ---- */

static const char *const http_spec_keys[] = { "parentRefs", "hostnames", "rules", NULL };
static const char *const http_rule_keys[] = { "name", "matches", "filters", "backendRefs",
	"timeouts", "retry", "sessionPersistence", NULL };
static const char *const http_backend_keys[] = { "group", "kind", "name", "namespace", "port",
	"weight", "filters", NULL };
static const char *const grpc_rule_keys[] = { "name", "matches", "filters", "backendRefs",
	"sessionPersistence", NULL };
static const char *const tls_spec_keys[] = { "parentRefs", "hostnames", "rules", NULL };
static const char *const l4_spec_keys[] = { "parentRefs", "rules", NULL };
static const char *const l4_rule_keys[] = { "name", "backendRefs", NULL };
static const char *const l4_backend_keys[] = { "group", "kind", "name", "namespace", "port",
	"weight", NULL };

const struct km_route_kind km_route_http = {
	.proto = IPPROTO_TCP,
	.listeners = 1u << KM_L_HTTP | 1u << KM_L_HTTPS,
	.listeners_text = "HTTP or HTTPS",
	.spec_keys = http_spec_keys,
	.rule_keys = http_rule_keys,
	.backend_keys = http_backend_keys,
	.check_spec = http_spec,
	.check_rule = http_rule,
	.check_backend = http_backend,
};

/* A GRPCRoute is HTTP/2 on TCP, and attaches where HTTPRoute does. */
const struct km_route_kind km_route_grpc = {
	.proto = IPPROTO_TCP,
	.listeners = 1u << KM_L_HTTP | 1u << KM_L_HTTPS,
	.listeners_text = "HTTP or HTTPS",
	.spec_keys = http_spec_keys,
	.rule_keys = grpc_rule_keys,
	.backend_keys = http_backend_keys,
	.check_spec = http_spec,
	.check_rule = grpc_rule,
	.check_backend = http_backend,
};

/* TCPRoute also attaches to TLS listeners: with Passthrough that is a plain TCP split. */
const struct km_route_kind km_route_tcp = {
	.proto = IPPROTO_TCP,
	.listeners = 1u << KM_L_TCP | 1u << KM_L_TLS,
	.proto_tls_terminated = true,
	.listeners_text = "TCP or TLS",
	.spec_keys = l4_spec_keys,
	.rule_keys = l4_rule_keys,
	.backend_keys = l4_backend_keys,
};

const struct km_route_kind km_route_tls = {
	.proto = IPPROTO_TCP,
	.listeners = 1u << KM_L_TLS,
	.listeners_text = "TLS",
	.spec_keys = tls_spec_keys,
	.rule_keys = l4_rule_keys,
	.backend_keys = l4_backend_keys,
	.check_spec = tls_spec,
};

const struct km_route_kind km_route_udp = {
	.proto = IPPROTO_UDP,
	.listeners = 1u << KM_L_UDP,
	.listeners_text = "UDP",
	.spec_keys = l4_spec_keys,
	.rule_keys = l4_rule_keys,
	.backend_keys = l4_backend_keys,
};
