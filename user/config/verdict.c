// SPDX-License-Identifier: BSD-2-Clause
/*
 * Route verdicts: each route is judged on its own, per parentRef, with the
 * condition reasons Gateway API defines (Accepted, ResolvedRefs), so that
 * one bad route is refused alone and the API source can write the verdict
 * into route status. Also the one rule that judges routes against each
 * other: two routes on one (VIP, port, protocol), where the oldest wins.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "config/resolve.h"
#include "ksplit/abi.h"

static const char *const reason_names[KSM_R_N] = {
	[KSM_R_ACCEPTED] = "Accepted",
	[KSM_R_NOT_ALLOWED_BY_LISTENERS] = "NotAllowedByListeners",
	[KSM_R_NO_MATCHING_PARENT] = "NoMatchingParent",
	[KSM_R_NO_MATCHING_LISTENER_HOSTNAME] = "NoMatchingListenerHostname",
	[KSM_R_UNSUPPORTED_VALUE] = "UnsupportedValue",
	[KSM_R_RESOLVED_REFS] = "ResolvedRefs",
	[KSM_R_REF_NOT_PERMITTED] = "RefNotPermitted",
	[KSM_R_INVALID_KIND] = "InvalidKind",
	[KSM_R_BACKEND_NOT_FOUND] = "BackendNotFound",
	[KSM_R_UNSUPPORTED_PROTOCOL] = "UnsupportedProtocol",
};

const char *ksm_reason_name(enum ksm_reason r)
{
	return (unsigned)r < KSM_R_N ? reason_names[r] : "Unknown";
}

enum ksm_reason ksm_invalid_reason(enum ksm_invalid inv)
{
	switch (inv) {
	case KSM_REF_OK: return KSM_R_RESOLVED_REFS;
	case KSM_REF_NOT_FOUND: return KSM_R_BACKEND_NOT_FOUND;
	case KSM_REF_INVALID_KIND: return KSM_R_INVALID_KIND;
	case KSM_REF_NOT_PERMITTED: return KSM_R_REF_NOT_PERMITTED;
	case KSM_REF_UNSUPPORTED_PROTOCOL: return KSM_R_UNSUPPORTED_PROTOCOL;
	}
	return KSM_R_BACKEND_NOT_FOUND;
}

bool ksm_route_accepted(const struct ksm_route_status *r)
{
	size_t i;

	if (r->refused)
		return false;
	for (i = 0; i < r->n_parents; i++)
		if (r->parents[i].accepted != KSM_R_ACCEPTED)
			return false;
	return true;
}

void ksm_route_status_free(struct ksm_route_status *st)
{
	size_t i;

	for (i = 0; i < st->n_parents; i++) {
		struct ksm_parent_status *p = &st->parents[i];

		free(p->group);
		free(p->kind);
		free(p->ns);
		free(p->name);
		free(p->section);
		free(p->accepted_msg);
		free(p->resolved_msg);
	}
	free(st->parents);
	free(st->kind);
	free(st->ns);
	free(st->name);
	free(st->source);
	free(st->refused);
	memset(st, 0, sizeof(*st));
}

int km_status_init(const struct km_route *r, struct ksm_route_status *st)
{
	size_t i;

	st->kind = strdup(r->m.kind);
	st->ns = strdup(r->m.ns);
	st->name = strdup(r->m.name);
	if (!st->kind || !st->ns || !st->name ||
	    asprintf(&st->source, "%s:%u", r->m.file, r->m.pos.line) < 0)
		goto nomem;
	if (r->m.why && !(st->refused = strdup(r->m.why)))
		goto nomem;
	st->kept = r->m.kept;
	for (i = 0; i < r->n_backends; i++)
		st->weight_total += r->backends[i].weight;
	if (r->n_parents && !(st->parents = calloc(r->n_parents, sizeof(*st->parents))))
		goto nomem;
	for (i = 0; i < r->n_parents; i++) {
		const struct km_parent_ref *p = &r->parents[i];
		struct ksm_parent_status *ps = &st->parents[i];

		st->n_parents++;
		ps->port = p->port;
		ps->resolved = KSM_R_RESOLVED_REFS;
		if (!(ps->group = strdup(p->group)) || !(ps->kind = strdup(p->kind)) ||
		    !(ps->ns = strdup(p->ns)) || !(ps->name = strdup(p->name)) ||
		    !(ps->section = strdup(p->section)))
			goto nomem;
		/* A route refused as an object is accepted by none of its parents. */
		if (r->m.refused) {
			ps->accepted = KSM_R_UNSUPPORTED_VALUE;
			if (!(ps->accepted_msg = strdup(r->m.why ? r->m.why : "refused")))
				goto nomem;
		}
	}
	return 0;
nomem:
	return -ENOMEM;
}

int km_parent_refuse(struct km_build *b, const struct km_route *r, size_t pi,
		     enum ksm_reason reason, const struct km_pos *pos, const char *path,
		     const char *fmt, ...)
{
	struct ksm_parent_status *ps = &b->rs[r - b->s->routes].parents[pi];
	char *msg = NULL;
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (err < 0) {
		b->err = -ENOMEM;
		return -ENOMEM;
	}
	/* The first reason found is the one reported: later ones follow from it. */
	if (ps->accepted == KSM_R_ACCEPTED) {
		ps->accepted = reason;
		ps->accepted_msg = msg;
		msg = NULL;
	}
	err = km_route_diag(b, false, r, pos, path, "%s (%s)",
			    ps->accepted_msg ? ps->accepted_msg : msg, ksm_reason_name(reason));
	free(msg);
	return err;
}

/* ---- conflicts ---- */

int km_route_age_cmp(const struct km_route *a, const struct km_route *b)
{
	int c;

	/* RFC 3339 in UTC as the API server writes it: text order is time order. */
	if (!a->m.created != !b->m.created)
		return a->m.created ? -1 : 1;
	if (a->m.created && (c = strcmp(a->m.created, b->m.created)))
		return c;
	if ((c = strcmp(a->m.ns, b->m.ns)) || (c = strcmp(a->m.name, b->m.name)))
		return c;
	return a->m.seq < b->m.seq ? -1 : a->m.seq > b->m.seq;
}

int km_svc_key_cmp(const struct ksm_service *a, const struct ksm_service *b)
{
	int c;

	if (a->vip.family != b->vip.family)
		return a->vip.family < b->vip.family ? -1 : 1;
	c = memcmp(a->vip.bytes, b->vip.bytes, sizeof(a->vip.bytes));
	if (c)
		return c < 0 ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return 0;
}

/* Pendings by key, then by their route's age, then parent: the oldest claim first. */
static int cmp_claim(const void *pa, const void *pb, void *arg)
{
	const struct km_pending *v = arg, *a = &v[*(const size_t *)pa], *b = &v[*(const size_t *)pb];
	int c = km_svc_key_cmp(&a->svc, &b->svc);

	if (!c && a->r != b->r)
		c = km_route_age_cmp(a->r, b->r);
	if (!c)
		c = a->parent < b->parent ? -1 : a->parent > b->parent;
	return c;
}

/* Pairs (route, parentRef) in age order; a pair's pendings are contiguous in b->v. */
static int cmp_pair(const void *pa, const void *pb, void *arg)
{
	const struct km_pending *v = arg, *a = &v[*(const size_t *)pa], *b = &v[*(const size_t *)pb];
	int c = a->r != b->r ? km_route_age_cmp(a->r, b->r) : 0;

	return c ? c : a->parent < b->parent ? -1 : a->parent > b->parent;
}

static int refuse_lost(struct km_build *b, const struct km_pending *lost,
		       const struct km_pending *win)
{
	char vip[INET6_ADDRSTRLEN] = "?", path[64];
	bool v6 = lost->svc.vip.family == KS_FAMILY_V6;

	ksm_addr_fmt(&lost->svc.vip, vip, sizeof(vip));
	snprintf(path, sizeof(path), "spec.parentRefs[%zu]", lost->parent);
	return km_parent_refuse(b, lost->r, lost->parent, KSM_R_NOT_ALLOWED_BY_LISTENERS,
				&lost->r->parents[lost->parent].pos, path,
				"%s%s%s:%u/%s is also claimed by %s (%s, via %s), which is older "
				"(creationTimestamp, then namespace/name) and keeps it: an L4 "
				"splitter cannot merge two routes on one address and port",
				v6 ? "[" : "", vip, v6 ? "]" : "", lost->svc.port,
				km_proto_name(lost->svc.proto), win->svc.route, win->svc.source,
				win->svc.parent);
}

void km_resolve_conflicts(struct km_build *b)
{
	size_t *claim = NULL, *where = NULL, *pair = NULL, *first = NULL;
	size_t n = b->n, i, j, k, keep = 0;
	bool *lost = NULL, *drop = NULL;

	if (n < 2)
		return;
	claim = malloc(n * sizeof(*claim));
	where = malloc(n * sizeof(*where));
	pair = malloc(n * sizeof(*pair));
	first = malloc(n * sizeof(*first));
	lost = calloc(n, sizeof(*lost));
	drop = calloc(n, sizeof(*drop));
	if (!claim || !where || !pair || !first || !lost || !drop)
		goto nomem;
	for (i = 0; i < n; i++) {
		claim[i] = i;
		/* first[i]: the first pending of i's pair; pairs start where route or parent changes. */
		first[i] = i && b->v[i - 1].r == b->v[i].r && b->v[i - 1].parent == b->v[i].parent ?
			   first[i - 1] : i;
	}
	qsort_r(claim, n, sizeof(*claim), cmp_claim, b->v);
	for (i = 0; i < n; i++)
		where[claim[i]] = i;
	/* The same route reaching a key twice (two parentRefs) keeps one copy, harmlessly. */
	for (i = 1; i < n; i++)
		if (!km_svc_key_cmp(&b->v[claim[i]].svc, &b->v[claim[i - 1]].svc) &&
		    b->v[claim[i]].r == b->v[claim[i - 1]].r)
			drop[claim[i]] = true;
	/*
	 * Judge pairs oldest first: a pair loses when an older pair that has not
	 * lost claims any of its keys. Older pairs are final by then, so a route
	 * that lost frees its keys for the next one (no cascade of losers).
	 */
	k = 0;
	for (i = 0; i < n; i++)
		if (first[i] == i)
			pair[k++] = i;
	qsort_r(pair, k, sizeof(*pair), cmp_pair, b->v);
	for (i = 0; i < k && !b->err; i++) {
		size_t p = pair[i];

		for (j = p; j < n && first[j] == p && !lost[p]; j++) {
			size_t w = where[j];

			while (w-- > 0 && !km_svc_key_cmp(&b->v[claim[w]].svc, &b->v[j].svc)) {
				const struct km_pending *o = &b->v[claim[w]];

				if (o->r == b->v[j].r || lost[first[claim[w]]] || drop[claim[w]])
					continue;
				lost[p] = true;
				refuse_lost(b, &b->v[j], o);
				break;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (lost[first[i]] || drop[i]) {
			km_svc_free(&b->v[i].svc);
			continue;
		}
		b->v[keep++] = b->v[i];
	}
	b->n = keep;
	goto out;
nomem:
	b->err = -ENOMEM;
out:
	free(claim);
	free(where);
	free(pair);
	free(first);
	free(lost);
	free(drop);
}

/* ---- Gateway verdicts: one per Gateway object, for its status ---- */

void ksm_gateway_status_free(struct ksm_gateway_status *g)
{
	free(g->ns);
	free(g->name);
	free(g->refused);
	free(g->addrs);
	memset(g, 0, sizeof(*g));
}

int km_gateway_statuses(const struct km_set *s, struct ks_model *m)
{
	size_t i;

	if (!s->n_gateways)
		return 0;
	m->gateways = calloc(s->n_gateways, sizeof(*m->gateways));
	if (!m->gateways)
		return -ENOMEM;
	for (i = 0; i < s->n_gateways; i++) {
		const struct km_gateway *g = &s->gateways[i];
		struct ksm_gateway_status *gs = &m->gateways[m->n_gateways];

		/* A refused copy whose last good version was carried in: the carried one speaks. */
		if (!g->m.name || (g->m.refused && g->m.kept))
			continue;
		m->n_gateways++;
		gs->kept = g->m.kept;
		if (!(gs->ns = strdup(g->m.ns)) || !(gs->name = strdup(g->m.name)) ||
		    ((g->m.refused || g->m.kept) &&
		     !(gs->refused = strdup(g->m.why ? g->m.why : "refused"))))
			return -ENOMEM;
		if (g->m.refused || !g->n_addrs)
			continue;
		if (!(gs->addrs = calloc(g->n_addrs, sizeof(*gs->addrs))))
			return -ENOMEM;
		memcpy(gs->addrs, g->addrs, g->n_addrs * sizeof(*gs->addrs));
		gs->n_addrs = g->n_addrs;
	}
	return 0;
}
