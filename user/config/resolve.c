// SPDX-License-Identifier: BSD-2-Clause
/*
 * Resolution: follow every reference between the checked objects (route ->
 * parent -> VIPs in parents.c, backendRef -> Service port -> EndpointSlice
 * port -> endpoints here) and produce the ks_model the datapath image is
 * built from.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksplit/abi.h"

#include "common/diag.h"
#include "common/log.h"
#include "config/config.h"
#include "config/resolve.h"

static void free_group(struct ksm_group *g)
{
	size_t i;

	free(g->svc_ns);
	free(g->svc_name);
	free(g->reason);
	for (i = 0; i < g->n_eps; i++)
		free(g->eps[i].name);
	free(g->eps);
	memset(g, 0, sizeof(*g));
}

void km_svc_free(struct ksm_service *s)
{
	size_t i;

	free(s->route);
	free(s->parent);
	free(s->source);
	free(s->ann_passive_failures);
	free(s->ann_empty_group);
	for (i = 0; i < s->n_groups; i++)
		free_group(&s->groups[i]);
	free(s->groups);
	memset(s, 0, sizeof(*s));
}

void ksm_health_free(struct ksm_health *h)
{
	free(h->svc_ns);
	free(h->svc_name);
	free(h->status_match);
	free(h->path);
	free(h->protocol);
	free(h->protocol_version);
	free(h->source);
	memset(h, 0, sizeof(*h));
}

void ks_model_free(struct ks_model *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n_svcs; i++)
		km_svc_free(&m->svcs[i]);
	free(m->svcs);
	for (i = 0; i < m->n_health; i++)
		ksm_health_free(&m->health[i]);
	free(m->health);
	for (i = 0; i < m->n_routes; i++)
		ksm_route_status_free(&m->routes[i]);
	free(m->routes);
	for (i = 0; i < m->n_gateways; i++)
		ksm_gateway_status_free(&m->gateways[i]);
	free(m->gateways);
	ksm_deps_free(m->deps);
	memset(m, 0, sizeof(*m));
}

/* ---- resolution ---- */

int km_route_diag(struct km_build *b, bool warning, const struct km_route *r,
		  const struct km_pos *pos, const char *path, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = ks_diag_vobj(b->d, warning, r->m.file, pos->line, pos->col, r->m.kind, r->m.ns,
			   r->m.name, path, fmt, ap);
	va_end(ap);
	if (err)
		b->err = -ENOMEM;
	return err ? -ENOMEM : 0;
}

static bool grant_allows(const struct km_set *s, const struct km_route *r,
			 const struct km_backend_ref *br)
{
	size_t i, j, k;

	for (i = 0; i < s->n_grants; i++) {
		const struct km_grant *g = &s->grants[i];
		bool from = false;

		if (!g->m.name || strcmp(g->m.ns, br->ns))
			continue;
		for (j = 0; j < g->n_from && !from; j++)
			from = !strcmp(g->from[j].group, KM_GW_GROUP) &&
			       !strcmp(g->from[j].kind, r->m.kind) &&
			       !strcmp(g->from[j].ns, r->m.ns);
		if (!from)
			continue;
		for (k = 0; k < g->n_to; k++)
			if (!*g->to[k].group && !strcmp(g->to[k].kind, "Service") &&
			    (!g->to[k].name || !strcmp(g->to[k].name, br->name)))
				return true;
	}
	return false;
}

static const char *fam_name(uint8_t f)
{
	return f == KS_FAMILY_V4 ? "IPv4" : "IPv6";
}

/* By port and address: 0 for the same endpoint. */
static int cmp_ep(const struct ksm_endpoint *a, const struct ksm_endpoint *b)
{
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

/* Indices into arg's endpoints; ties by position, so the first of equals sorts first. */
static int cmp_ep_ix(const void *pa, const void *pb, void *arg)
{
	const struct ksm_endpoint *eps = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = cmp_ep(&eps[a], &eps[b]);

	if (c)
		return c;
	return a < b ? -1 : a > b;
}

/*
 * An endpoint listed twice (in two slices, or twice in one) keeps its first
 * listing, in place. Sorted, not compared with every earlier one: that was
 * O(n^2), half a minute for 200,000 endpoints.
 */
static int drop_dup_eps(struct ksm_group *g)
{
	size_t *ix, i, keep = 0;
	bool *drop;

	if (g->n_eps < 2)
		return 0;
	ix = malloc(g->n_eps * sizeof(*ix));
	drop = calloc(g->n_eps, sizeof(*drop));
	if (!ix || !drop) {
		free(ix);
		free(drop);
		return -ENOMEM;
	}
	for (i = 0; i < g->n_eps; i++)
		ix[i] = i;
	qsort_r(ix, g->n_eps, sizeof(*ix), cmp_ep_ix, g->eps);
	for (i = 1; i < g->n_eps; i++)
		drop[ix[i]] = !cmp_ep(&g->eps[ix[i]], &g->eps[ix[i - 1]]);
	for (i = 0; i < g->n_eps; i++) {
		if (drop[i])
			free(g->eps[i].name);
		else
			g->eps[keep++] = g->eps[i];
	}
	g->n_eps = keep;
	free(ix);
	free(drop);
	return 0;
}

const char *km_missing_note(const struct km_set *s, const char *kind, const char *ns,
			    const char *name, char *buf, size_t len)
{
	const struct km_meta *m = km_find_refused(s, kind, ns, name);

	if (!m)
		return "";
	snprintf(buf, len, ": it is defined at %s:%u but refused, see its errors", m->file,
		 m->pos.line);
	return buf;
}

/*
 * Whether r's backendRefs[bi] can be used: KSM_REF_OK and its Service port,
 * or why not (*reason allocated). Judged once per route: the answer is the
 * same for every VIP the route claims.
 */
static int backend_check(struct km_build *b, const struct km_route *r, size_t bi,
			 enum ksm_invalid *inv, char **reason, const struct km_svc_port **port)
{
	const struct km_backend_ref *br = &r->backends[bi];
	uint8_t proto = r->kind->proto;
	const struct km_svc_port *sp = NULL, *other = NULL;
	const struct km_service *svc;
	int n = 0;
	size_t i;

	*reason = NULL;
	*port = NULL;
	*inv = KSM_REF_OK;
	if (*br->group || strcmp(br->kind, "Service")) {
		*inv = KSM_REF_INVALID_KIND;
		n = asprintf(reason, "kind %s%s%s is not supported, only Service", br->kind,
			     *br->group ? " of group " : "", br->group);
	} else if (strcmp(br->ns, r->m.ns) && !grant_allows(b->s, r, br)) {
		*inv = KSM_REF_NOT_PERMITTED;
		n = asprintf(reason, "no ReferenceGrant in namespace %s allows %s from namespace %s "
			     "to Service %s", br->ns, r->m.kind, r->m.ns, br->name);
	} else if (!(svc = km_find_service(b->s, br->ns, br->name))) {
		*inv = KSM_REF_NOT_FOUND;
		char note[PATH_MAX + 64];

		n = asprintf(reason, "Service %s/%s not found%s", br->ns, br->name,
			     km_missing_note(b->s, "Service", br->ns, br->name, note, sizeof(note)));
	} else {
		for (i = 0; i < svc->n_ports; i++) {
			if (svc->ports[i].port != br->port)
				continue;
			if (svc->ports[i].proto == proto)
				sp = &svc->ports[i];
			else
				other = &svc->ports[i];
		}
		if (other && !sp) {
			*inv = KSM_REF_UNSUPPORTED_PROTOCOL;
			n = asprintf(reason, "port %u of Service %s/%s is %s, the route carries %s",
				     br->port, br->ns, br->name, km_proto_name(other->proto),
				     km_proto_name(proto));
		} else if (!sp) {
			*inv = KSM_REF_NOT_FOUND;
			n = asprintf(reason, "Service %s/%s has no port %u", br->ns, br->name, br->port);
		}
	}
	if (n < 0) {
		*reason = NULL;
		b->err = -ENOMEM;
		return -ENOMEM;
	}
	*port = sp;
	return 0;
}

/* A backendRef judged by backend_check. */
struct km_verdict {
	enum ksm_invalid inv;
	char *reason;
	const struct km_svc_port *sp;
};

/*
 * g->eps: every endpoint of family fam that the EndpointSlices of Service
 * ns/name list for its port named port_name carrying proto, each once.
 * 0 or -ENOMEM. The incremental load (patch.c) calls it too.
 */
int km_fill_eps(const struct km_set *s, const char *ns, const char *name, const char *port_name,
		uint8_t proto, uint8_t fam, struct ksm_group *g)
{
	size_t i, j, lo, hi, cap;

	g->n_eps = 0;
	g->eps = NULL;
	km_index_range(&s->ix_slices, ns, name, &lo, &hi);
	/* Room for every endpoint of the family at once: growing by one was quadratic too. */
	for (i = lo, cap = 0; i < hi; i++) {
		const struct km_slice *sl = km_container(s->ix_slices.v[i], struct km_slice);

		if (sl->svc_name && sl->family == fam)
			cap += sl->n_eps;
	}
	if (cap && !(g->eps = calloc(cap, sizeof(*g->eps))))
		return -ENOMEM;
	for (i = lo; i < hi; i++) {
		const struct km_slice *sl = km_container(s->ix_slices.v[i], struct km_slice);
		const struct km_slice_port *slp = NULL;

		if (!sl->svc_name || sl->family != fam)
			continue;
		for (j = 0; j < sl->n_ports && !slp; j++)
			if (!strcmp(sl->ports[j].name, port_name) && sl->ports[j].has_port &&
			    sl->ports[j].proto == proto)
				slp = &sl->ports[j];
		if (!slp)
			continue;
		for (j = 0; j < sl->n_eps; j++) {
			const struct km_slice_ep *e = &sl->eps[j];
			struct ksm_endpoint *ne = &g->eps[g->n_eps];

			ne->addr = e->addr;
			ne->port = slp->port;
			ne->ready = e->ready;
			ne->serving = e->serving;
			ne->terminating = e->terminating;
			if (e->name && !(ne->name = strdup(e->name)))
				return -ENOMEM;
			g->n_eps++;
		}
	}
	return drop_dup_eps(g);
}

int km_warn_no_eps(struct km_build *b, const struct km_route *r, size_t bi, uint8_t fam)
{
	const struct km_backend_ref *br = &r->backends[bi];
	char path[64];

	snprintf(path, sizeof(path), "spec.rules[0].backendRefs[%zu]", bi);
	return km_route_diag(b, true, r, &br->pos, path,
			     "Service %s/%s port %u has no %s endpoints: its share (weight %u) "
			     "will be refused", br->ns, br->name, br->port, fam_name(fam), br->weight);
}

/* Sets g from r's backendRefs[bi] (judged in v) with the endpoints of family fam. */
static int resolve_group(struct km_build *b, const struct km_route *r, size_t bi,
			 const struct km_verdict *v, uint8_t fam, bool warn_fam, struct ksm_group *g)
{
	const struct km_backend_ref *br = &r->backends[bi];

	g->svc_ns = strdup(br->ns);
	g->svc_name = strdup(br->name);
	if (!g->svc_ns || !g->svc_name)
		goto nomem;
	g->svc_port = br->port;
	g->weight = br->weight;
	g->invalid = v->inv;
	if (v->inv) {
		if (!(g->reason = strdup(v->reason)))
			goto nomem;
		return 0;
	}
	if (km_fill_eps(b->s, br->ns, br->name, v->sp->name, r->kind->proto, fam, g))
		goto nomem;
	if (!g->n_eps && warn_fam)
		km_warn_no_eps(b, r, bi, fam);
	return b->err;
nomem:
	b->err = -ENOMEM;
	return -ENOMEM;
}

static int new_pending(struct km_build *b, struct km_pending **out)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 8;
		struct km_pending *v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->err = -ENOMEM;
			return -ENOMEM;
		}
		b->v = v;
		b->cap = cap;
	}
	*out = &b->v[b->n++];
	memset(*out, 0, sizeof(**out));
	(*out)->seq = b->n - 1;
	return 0;
}

/* Judges r's backendRefs into v, with one warning each, and r's ResolvedRefs into st. */
static int judge_backends(struct km_build *b, const struct km_route *r, struct km_verdict *v,
			  struct ksm_route_status *st)
{
	size_t i, j;
	char path[64];

	for (i = 0; i < r->n_backends; i++) {
		const struct km_backend_ref *br = &r->backends[i];

		if (backend_check(b, r, i, &v[i].inv, &v[i].reason, &v[i].sp))
			return -ENOMEM;
		if (!v[i].inv)
			continue;
		st->weight_refused += br->weight;
		snprintf(path, sizeof(path), "spec.rules[0].backendRefs[%zu]", i);
		if (km_route_diag(b, true, r, &br->pos, path, "%s (%s): its share (weight %u) will be "
				  "refused", v[i].reason, ksm_reason_name(ksm_invalid_reason(v[i].inv)),
				  br->weight))
			return -ENOMEM;
		/* ResolvedRefs names the first backendRef that fails, on every parent. */
		for (j = 0; j < st->n_parents; j++) {
			struct ksm_parent_status *ps = &st->parents[j];

			if (ps->resolved != KSM_R_RESOLVED_REFS)
				continue;
			ps->resolved = ksm_invalid_reason(v[i].inv);
			if (!(ps->resolved_msg = strdup(v[i].reason))) {
				b->err = -ENOMEM;
				return -ENOMEM;
			}
		}
	}
	return 0;
}

/* One (VIP, port) a parentRef of r claims, as a pending service. */
static int claim(struct km_build *b, const struct km_route *r, size_t pi, struct km_target *t,
		 const struct km_verdict *v, bool warned_fam[2])
{
	int fi = t->vip.family == KS_FAMILY_V4 ? 0 : 1;
	struct km_pending *pd;
	struct ksm_service *s;
	size_t k;

	if (new_pending(b, &pd))
		return -ENOMEM;
	pd->r = r;
	pd->parent = pi;
	s = &pd->svc;
	s->vip = t->vip;
	s->port = t->port;
	s->proto = r->kind->proto;
	s->parent = t->parent;
	t->parent = NULL;
	if (asprintf(&s->route, "%s %s/%s", r->m.kind, r->m.ns, r->m.name) < 0) {
		s->route = NULL;
		goto nomem;
	}
	if (asprintf(&s->source, "%s:%u", r->m.file, r->m.pos.line) < 0) {
		s->source = NULL;
		goto nomem;
	}
	if ((r->ann_passive_failures &&
	     !(s->ann_passive_failures = strdup(r->ann_passive_failures))) ||
	    (r->ann_empty_group && !(s->ann_empty_group = strdup(r->ann_empty_group))))
		goto nomem;
	if (!(s->groups = calloc(r->n_backends ? r->n_backends : 1, sizeof(*s->groups))))
		goto nomem;
	for (k = 0; k < r->n_backends; k++) {
		s->n_groups++;
		if (resolve_group(b, r, k, &v[k], s->vip.family, !warned_fam[fi], &s->groups[k]))
			return -ENOMEM;
	}
	warned_fam[fi] = true;
	return 0;
nomem:
	b->err = -ENOMEM;
	return -ENOMEM;
}

static void resolve_route(struct km_build *b, const struct km_route *r)
{
	struct ksm_route_status *st = &b->rs[r - b->s->routes];
	struct km_verdict v[KSM_MAX_GROUPS] = {};
	struct km_target *t = NULL;
	size_t n = 0, i, j, first;
	bool warned_fam[2] = { false, false };

	if (km_status_init(r, st)) {
		b->err = -ENOMEM;
		return;
	}
	/* Refused as an object: its verdict says why, nothing of it is programmed. */
	if (r->m.refused || r->n_rules != 1 || !r->n_backends)
		return;
	if (!r->n_parents) {
		km_route_diag(b, true, r, &r->m.pos, "spec.parentRefs",
			      "no parentRefs: the route applies to no traffic");
		return;
	}
	if (judge_backends(b, r, v, st))
		goto out;
	for (i = 0; i < r->n_parents && !b->err; i++) {
		first = n;
		km_parent_targets(b, r, i, &t, &n);
		for (j = first; j < n && !b->err; j++)
			if (claim(b, r, i, &t[j], v, warned_fam))
				break;
	}
out:
	for (i = 0; i < r->n_backends; i++)
		free(v[i].reason);
	for (i = 0; i < n; i++)
		free(t[i].parent);
	free(t);
}

static int cmp_pending(const void *pa, const void *pb)
{
	const struct km_pending *a = pa, *b = pb;
	int c = km_svc_key_cmp(&a->svc, &b->svc);

	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts the claims left after km_resolve_conflicts (keys unique) and moves them into m. */
static void finish_services(struct km_build *b, struct ks_model *m)
{
	size_t i;

	if (!b->n)
		return;
	qsort(b->v, b->n, sizeof(*b->v), cmp_pending);
	m->svcs = calloc(b->n, sizeof(*m->svcs));
	if (!m->svcs) {
		b->err = -ENOMEM;
		return;
	}
	for (i = 0; i < b->n; i++) {
		b->rs[b->v[i].r - b->s->routes].parents[b->v[i].parent].n_programmed++;
		m->svcs[i] = b->v[i].svc;
		memset(&b->v[i].svc, 0, sizeof(b->v[i].svc));
	}
	m->n_svcs = b->n;
	b->n = 0;
}

static bool policy_complete(const struct km_policy *p)
{
	return p->h.svc_name && p->h.svc_ns && p->m.name && p->h.path && p->h.status_match &&
	       p->h.protocol && p->h.protocol_version;
}

static int health_dup(const struct ksm_health *h, struct ksm_health *o)
{
	*o = *h;
	o->svc_ns = strdup(h->svc_ns);
	o->svc_name = strdup(h->svc_name);
	o->status_match = strdup(h->status_match);
	o->path = strdup(h->path);
	o->protocol = strdup(h->protocol);
	o->protocol_version = strdup(h->protocol_version);
	o->source = NULL;
	if (!o->svc_ns || !o->svc_name || !o->status_match || !o->path || !o->protocol ||
	    !o->protocol_version) {
		ksm_health_free(o);
		return -ENOMEM;
	}
	return 0;
}

static void build_health(struct km_build *b, struct ks_model *m)
{
	struct km_set *s = b->s;
	bool *skip;
	size_t i, j;

	if (!s->n_policies)
		return;
	skip = calloc(s->n_policies, sizeof(*skip));
	m->health = calloc(s->n_policies, sizeof(*m->health));
	if (!skip || !m->health)
		goto nomem;
	/* Find conflicts before moving anything out of the set. */
	for (i = 0; i < s->n_policies; i++) {
		struct km_policy *p = &s->policies[i];

		skip[i] = p->m.refused || !policy_complete(p);	/* already reported */
		for (j = 0; j < i && !skip[i]; j++) {
			struct km_policy *q = &s->policies[j];

			if (skip[j] || strcmp(q->h.svc_ns, p->h.svc_ns) ||
			    strcmp(q->h.svc_name, p->h.svc_name))
				continue;
			skip[i] = true;
			if (ks_diag_obj(b->d, false, p->m.file, p->target_pos.line,
					p->target_pos.col, "TargetGroupPolicy", p->m.ns, p->m.name,
					"spec.targetRef",
					"Service %s/%s is already targeted by TargetGroupPolicy %s/%s "
					"(%s:%u:%u)", p->h.svc_ns, p->h.svc_name, q->m.ns, q->m.name,
					q->m.file, q->m.pos.line, q->m.pos.col))
				goto nomem;
		}
	}
	for (i = 0; i < s->n_policies; i++) {
		struct km_policy *p = &s->policies[i];

		if (skip[i])
			continue;
		if (!km_find_service(s, p->h.svc_ns, p->h.svc_name) &&
		    ks_diag_obj(b->d, true, p->m.file, p->target_pos.line, p->target_pos.col,
				"TargetGroupPolicy", p->m.ns, p->m.name, "spec.targetRef",
				"Service %s/%s not found: the policy governs nothing", p->h.svc_ns,
				p->h.svc_name))
			goto nomem;
		/* A copy: the agent keeps the set, for the next load's last good versions. */
		if (health_dup(&p->h, &m->health[m->n_health]))
			goto nomem;
		if (asprintf(&m->health[m->n_health++].source, "%s:%u", p->m.file,
			     p->m.pos.line) < 0) {
			m->health[m->n_health - 1].source = NULL;
			goto nomem;
		}
	}
	free(skip);
	return;
nomem:
	free(skip);
	b->err = -ENOMEM;
}

int km_resolve(struct km_set *s, const struct ks_load_opts *o, struct ks_model *out,
	       struct ks_diags *d)
{
	struct km_build b = { .s = s, .o = o, .d = d };
	struct ks_model m = { 0 };
	size_t i;

	if (s->n_routes && !(b.rs = calloc(s->n_routes, sizeof(*b.rs))))
		return -ENOMEM;
	km_gateway_vip_warnings(&b);
	for (i = 0; i < s->n_routes && !b.err; i++)
		/* A refused copy whose last good version was carried in has no verdict of its own. */
		if (!(s->routes[i].m.refused && s->routes[i].m.kept))
			resolve_route(&b, &s->routes[i]);
	if (!b.err)
		km_resolve_conflicts(&b);
	if (!b.err)
		finish_services(&b, &m);
	if (!b.err)
		build_health(&b, &m);
	if (!b.err)
		b.err = km_gateway_statuses(s, &m);
	for (i = 0; i < b.n; i++)
		km_svc_free(&b.v[i].svc);
	free(b.v);
	/* Verdicts in definition order, without the holes of superseded copies. */
	for (i = 0; i < s->n_routes; i++) {
		if (!b.rs[i].kind)
			continue;
		if (b.err)
			ksm_route_status_free(&b.rs[i]);
		else
			b.rs[m.n_routes++] = b.rs[i];
	}
	m.routes = b.rs;
	if (!m.n_routes) {
		free(b.rs);
		m.routes = NULL;
	}
	if (b.err) {
		ks_model_free(&m);
		return b.err;
	}
	*out = m;
	return 0;
}
