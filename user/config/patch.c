// SPDX-License-Identifier: BSD-2-Clause
/*
 * The incremental load (config.h, ks_model_patch_slices): a change of
 * EndpointSlices re-resolves only the endpoints of the groups whose
 * backend is one of their Services, found through an index of the model
 * (Service -> VIP entries and groups), instead of parsing, resolving and
 * judging every object again.
 *
 * Why that is the same as a full load: a slice only ever feeds the
 * endpoints of the groups whose backendRef names its Service (resolve.c,
 * km_fill_eps). No verdict, VIP, weight or conflict depends on endpoints,
 * so everything else a full load would build from the same objects is what
 * the model already holds. What this path does not take is the full
 * load's: a new or deleted slice, a slice that moves to another Service or
 * family, one that has errors (refused alone, with its last good version:
 * only the full load knows how), a slice of a refused object, or any
 * other kind. Those return -EAGAIN.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/kinds.h"
#include "config/resolve.h"

/* The kept objects (resolve.c defines the same: the set a load leaves behind). */
struct ks_objects {
	struct km_set s;
};

/* One group of the model: its backend Service and where it is. */
struct ksm_dep {
	const char *ns, *name;	/* the model's strings */
	size_t svc, group;
};

struct ksm_deps {
	size_t n;
	struct ksm_dep *v;	/* sorted by (ns, name) */
};

void ksm_deps_free(struct ksm_deps *d)
{
	if (d) {
		free(d->v);
		free(d);
	}
}

static int dep_key_cmp(const char *ns, const char *name, const struct ksm_dep *d)
{
	int c = strcmp(ns, d->ns);

	return c ? c : strcmp(name, d->name);
}

static int dep_cmp(const void *pa, const void *pb)
{
	const struct ksm_dep *a = pa, *b = pb;
	int c = dep_key_cmp(a->ns, a->name, b);

	if (c)
		return c;
	return a->svc != b->svc ? (a->svc < b->svc ? -1 : 1) : (a->group < b->group ? -1 : 1);
}

/* The index: built once per model, at load or by the first patch that needs it. */
int ks_model_index_deps(struct ks_model *m)
{
	struct ksm_deps *d;
	size_t i, j, n = 0;

	if (m->deps)
		return 0;
	for (i = 0; i < m->n_svcs; i++)
		n += m->svcs[i].n_groups;
	d = calloc(1, sizeof(*d));
	if (!d || (n && !(d->v = calloc(n, sizeof(*d->v))))) {
		free(d);
		return -ENOMEM;
	}
	for (i = 0; i < m->n_svcs; i++)
		for (j = 0; j < m->svcs[i].n_groups; j++) {
			const struct ksm_group *g = &m->svcs[i].groups[j];

			if (!g->svc_ns || !g->svc_name)
				continue;
			d->v[d->n++] = (struct ksm_dep){ g->svc_ns, g->svc_name, i, j };
		}
	qsort(d->v, d->n, sizeof(*d->v), dep_cmp);
	m->deps = d;
	return 0;
}

/* [*lo, *hi): the groups whose backend is Service ns/name. */
static void deps_range(const struct ksm_deps *d, const char *ns, const char *name, size_t *lo,
		       size_t *hi)
{
	size_t a = 0, b = d->n, mid;

	while (a < b) {
		mid = (a + b) / 2;
		if (dep_key_cmp(ns, name, &d->v[mid]) > 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	while (a < d->n && !dep_key_cmp(ns, name, &d->v[a]))
		a++;
	*hi = a;
}

void ks_model_patch_free(struct ks_model_patch *p)
{
	size_t i, k;

	for (i = 0; i < p->n; i++) {
		for (k = 0; k < p->v[i].n_eps; k++)
			free(p->v[i].eps[k].name);
		free(p->v[i].eps);
	}
	free(p->v);
	for (i = 0; i < p->view.n_svcs; i++)
		free(p->view.svcs[i].groups);
	free(p->view.svcs);
	memset(p, 0, sizeof(*p));
}

/* The slice of the kept set that new slice nw replaces, or NULL. */
static struct km_slice *kept_slice(struct km_set *s, const struct km_slice *nw)
{
	size_t lo, hi, i;

	if (!nw->svc_name)
		return NULL;
	km_index_range(&s->ix_slices, nw->m.ns, nw->svc_name, &lo, &hi);
	for (i = lo; i < hi; i++) {
		const struct km_meta *m = s->ix_slices.v[i];

		if (!strcmp(m->name, nw->m.name))
			return (struct km_slice *)km_container(m, struct km_slice);
	}
	return NULL;
}

/* The route that VIP entry ms comes from ("HTTPRoute ns/name"), for a warning. */
static const struct km_route *route_of(const struct km_set *s, const struct ksm_service *ms)
{
	size_t i;
	int n;

	for (i = 0; i < s->n_routes; i++) {
		const struct km_route *r = &s->routes[i];

		n = (int)strlen(r->m.kind);
		if (!r->m.refused && !strncmp(ms->route, r->m.kind, n) && ms->route[n] == ' ' &&
		    !strncmp(ms->route + n + 1, r->m.ns, strlen(r->m.ns)) &&
		    ms->route[n + 1 + strlen(r->m.ns)] == '/' &&
		    !strcmp(ms->route + n + 2 + strlen(r->m.ns), r->m.name))
			return r;
	}
	return NULL;
}

/* The Service port name the group's backendRef resolved to; NULL when it is gone. */
static const char *port_name(const struct km_set *s, const struct ksm_service *ms,
			     const struct ksm_group *g)
{
	const struct km_service *svc = km_find_service(s, g->svc_ns, g->svc_name);
	size_t i;

	for (i = 0; svc && i < svc->n_ports; i++)
		if (svc->ports[i].port == g->svc_port && svc->ports[i].proto == ms->proto)
			return svc->ports[i].name;
	return NULL;
}

/* Queues group (svc, group) of m for new endpoints; -EAGAIN when its port is gone. */
static int patch_add(struct ks_model_patch *p, size_t *cap, const struct km_set *s,
		     const struct ks_model *m, size_t svc, size_t group)
{
	const struct ksm_service *ms = &m->svcs[svc];
	const struct ksm_group *g = &ms->groups[group];
	struct ksm_group_patch *gp;
	size_t i;

	if (g->invalid)
		return 0;
	for (i = 0; i < p->n; i++)
		if (p->v[i].svc == svc && p->v[i].group == group)
			return 0;
	if (!port_name(s, ms, g))
		return -EAGAIN;
	if (p->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct ksm_group_patch *v = realloc(p->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		*cap = nc;
	}
	gp = &p->v[p->n++];
	memset(gp, 0, sizeof(*gp));
	gp->svc = svc;
	gp->group = group;
	return 0;
}

/* p->view: the VIP entries p changes, as they will be (shallow: m's strings, p's endpoints). */
static int build_view(struct ks_model_patch *p, const struct ks_model *m)
{
	size_t i, k, n = 0;

	if (p->n && !(p->view.svcs = calloc(p->n, sizeof(*p->view.svcs))))
		return -ENOMEM;
	for (i = 0; i < p->n; i++) {
		const struct ksm_service *ms = &m->svcs[p->v[i].svc];
		struct ksm_service *vs = NULL;

		/* Each entry has its own route string: it names the entry. */
		for (k = 0; k < n && !vs; k++)
			if (p->view.svcs[k].route == ms->route)
				vs = &p->view.svcs[k];
		if (!vs) {
			vs = &p->view.svcs[n];
			*vs = *ms;
			vs->groups = malloc(ms->n_groups * sizeof(*vs->groups));
			if (!vs->groups)
				return -ENOMEM;
			memcpy(vs->groups, ms->groups, ms->n_groups * sizeof(*vs->groups));
			p->view.n_svcs = ++n;
		}
		vs->groups[p->v[i].group].eps = p->v[i].eps;
		vs->groups[p->v[i].group].n_eps = p->v[i].n_eps;
	}
	return 0;
}

/*
 * Moves new slice nw's content into kept slice old, which keeps its
 * identity (name, file, definition order): the index stays valid.
 */
static void swap_in(struct km_slice *old, struct km_slice *nw)
{
	struct km_meta m = old->m;

	km_slice_free(old);
	*old = *nw;
	old->m = m;
	nw->svc_name = NULL;
	nw->n_ports = 0;
	nw->ports = NULL;
	nw->n_eps = 0;
	nw->eps = NULL;
}

int ks_model_patch_slices(struct ks_objects *keep, struct ks_model *m, const char *const *names,
			  const char *const *bufs, const size_t *lens, size_t n,
			  struct ks_model_patch *p, struct ks_diags *d)
{
	struct km_build b = { .d = d };
	struct ks_diags pd = { 0 };
	struct km_set t = { 0 };
	struct km_slice **olds = NULL;
	size_t i, j, lo, hi, cap = 0;
	int err = 0;

	memset(p, 0, sizeof(*p));
	if (!keep || !n)
		return -EAGAIN;
	for (i = 0; i < n && !err; i++)
		err = km_load_object(&t, names[i], bufs[i], lens[i], &pd);
	if (err == -ENOMEM)
		goto out;
	/* Exactly one good slice per object, nothing else: anything more is the full load's. */
	if (err || pd.n_errors || t.n_slices != n || t.n_failed || t.n_gateways || t.n_services ||
	    t.n_routes || t.n_grants || t.n_policies || t.n_namespaces) {
		err = -EAGAIN;
		goto out;
	}
	err = ks_model_index_deps(m);
	if (!err && !(olds = calloc(n, sizeof(*olds))))
		err = -ENOMEM;
	/* Every check before the first change to the kept set. */
	for (i = 0; i < n && !err; i++) {
		const struct km_slice *nw = &t.slices[i];

		olds[i] = kept_slice(&keep->s, nw);
		for (j = 0; j < i && olds[i]; j++)
			if (olds[j] == olds[i])
				olds[i] = NULL;
		if (!olds[i] || nw->m.refused || olds[i]->m.refused || olds[i]->m.kept ||
		    olds[i]->family != nw->family) {
			err = -EAGAIN;
			break;
		}
		deps_range(m->deps, nw->m.ns, nw->svc_name, &lo, &hi);
		for (j = lo; j < hi && !err; j++)
			err = patch_add(p, &cap, &keep->s, m, m->deps->v[j].svc, m->deps->v[j].group);
	}
	if (err)
		goto out;
	for (i = 0; i < n; i++)
		swap_in(olds[i], &t.slices[i]);
	b.s = &keep->s;
	for (i = 0; i < p->n && !err; i++) {
		const struct ksm_service *ms = &m->svcs[p->v[i].svc];
		const struct ksm_group *g = &ms->groups[p->v[i].group];
		struct ksm_group ng = { 0 };
		const struct km_route *r;

		err = km_fill_eps(&keep->s, g->svc_ns, g->svc_name, port_name(&keep->s, ms, g),
				  ms->proto, ms->vip.family, &ng);
		p->v[i].eps = ng.eps;
		p->v[i].n_eps = ng.n_eps;
		if (!err && !ng.n_eps && (r = route_of(&keep->s, ms)))
			err = km_warn_no_eps(&b, r, p->v[i].group, ms->vip.family);
	}
	if (!err)
		err = build_view(p, m);
	if (!err)
		err = ks_diags_move(d, &pd);
out:
	if (err)
		ks_model_patch_free(p);
	free(olds);
	km_set_free(&t);
	ks_diags_free(&pd);
	return err;
}

void ks_model_patch_commit(struct ks_model *m, struct ks_model_patch *p)
{
	size_t i, k;

	for (i = 0; i < p->n; i++) {
		struct ksm_group *g = &m->svcs[p->v[i].svc].groups[p->v[i].group];

		for (k = 0; k < g->n_eps; k++)
			free(g->eps[k].name);
		free(g->eps);
		g->eps = p->v[i].eps;
		g->n_eps = p->v[i].n_eps;
		p->v[i].eps = NULL;
		p->v[i].n_eps = 0;
	}
	ks_model_patch_free(p);
}
