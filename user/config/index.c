// SPDX-License-Identifier: BSD-2-Clause
/*
 * Objects sorted by (namespace, key, definition order): lookups for
 * resolution and the duplicate check, in O(log n) per reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/manifest.h"

static const char *key_name(const struct km_meta *m)
{
	return m->name;
}

static const char *key_slice_svc(const struct km_meta *m)
{
	return km_container(m, struct km_slice)->svc_name;
}

static int cmp_str0(const char *a, const char *b)
{
	if (!a || !b)
		return !a - !b ? (a ? 1 : -1) : 0;
	return strcmp(a, b);
}

/* qsort has no context argument: the key function of the index being sorted. */
static const char *(*sort_key)(const struct km_meta *m);

static int cmp_meta(const void *pa, const void *pb)
{
	const struct km_meta *a = *(const struct km_meta *const *)pa;
	const struct km_meta *b = *(const struct km_meta *const *)pb;
	int c = cmp_str0(a->ns, b->ns);

	if (!c)
		c = cmp_str0(sort_key(a), sort_key(b));
	if (!c)
		c = a->seq < b->seq ? -1 : a->seq > b->seq;
	return c;
}

static int index_build(struct km_index *ix, const void *arr, size_t n, size_t stride,
		       const char *(*key)(const struct km_meta *m), enum km_ix_filter f)
{
	size_t i;

	free(ix->v);
	ix->n = 0;
	ix->key = key;
	ix->v = calloc(n ? n : 1, sizeof(*ix->v));
	if (!ix->v)
		return -ENOMEM;
	/*
	 * Every kind's struct starts with its km_meta, so the array stride finds
	 * them. Refused objects are in no lookup index (nothing resolves to
	 * them), only in the duplicate check (a copy of a refused object is
	 * still a copy) and in the index that explains a failed lookup.
	 */
	for (i = 0; i < n; i++) {
		const struct km_meta *m = (const struct km_meta *)((const char *)arr + i * stride);

		/* A refused copy whose last good version was carried in is not a definition. */
		if (m->refused && m->kept)
			continue;
		if (f == KM_IX_ALL || (f == KM_IX_REFUSED) == m->refused)
			ix->v[ix->n++] = m;
	}
	sort_key = key;
	qsort(ix->v, ix->n, sizeof(*ix->v), cmp_meta);
	return 0;
}

void km_index_range(const struct km_index *ix, const char *ns, const char *key, size_t *lo,
		    size_t *hi)
{
	size_t l = 0, h = ix->n, m;

	/* Lower bound of (ns, key). */
	while (l < h) {
		const struct km_meta *x;
		int c;

		m = (l + h) / 2;
		x = ix->v[m];
		c = cmp_str0(x->ns, ns);
		if (!c)
			c = cmp_str0(ix->key(x), key);
		if (c < 0)
			l = m + 1;
		else
			h = m;
	}
	*lo = l;
	for (h = l; h < ix->n && !cmp_str0(ix->v[h]->ns, ns) && !cmp_str0(ix->key(ix->v[h]), key);
	     h++)
		;
	*hi = h;
}

const struct km_meta *km_index_find(const struct km_index *ix, const char *ns, const char *key)
{
	size_t lo, hi;

	if (!ns || !key)
		return NULL;
	km_index_range(ix, ns, key, &lo, &hi);
	return lo < hi ? ix->v[lo] : NULL;
}

int km_set_index(struct km_set *s)
{
	_Static_assert(offsetof(struct km_gateway, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_service, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_slice, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_route, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_grant, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_policy, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_namespace, m) == 0, "km_meta first");

	if (index_build(&s->ix_gateways, s->gateways, s->n_gateways, sizeof(*s->gateways),
			key_name, KM_IX_GOOD) ||
	    index_build(&s->ix_services, s->services, s->n_services, sizeof(*s->services),
			key_name, KM_IX_GOOD) ||
	    index_build(&s->ix_slices, s->slices, s->n_slices, sizeof(*s->slices), key_slice_svc,
			KM_IX_GOOD) ||
	    index_build(&s->ix_gw_refused, s->gateways, s->n_gateways, sizeof(*s->gateways),
			key_name, KM_IX_REFUSED) ||
	    index_build(&s->ix_svc_refused, s->services, s->n_services, sizeof(*s->services),
			key_name, KM_IX_REFUSED) ||
	    index_build(&s->ix_namespaces, s->namespaces, s->n_namespaces, sizeof(*s->namespaces),
			key_name, KM_IX_GOOD))
		return -ENOMEM;
	return 0;
}

const struct km_gateway *km_find_gateway(const struct km_set *s, const char *ns, const char *name)
{
	const struct km_meta *m = km_index_find(&s->ix_gateways, ns, name);

	return m ? km_container(m, struct km_gateway) : NULL;
}

const struct km_meta *km_find_refused(const struct km_set *s, const char *kind, const char *ns,
				      const char *name)
{
	if (!strcmp(kind, "Gateway"))
		return km_index_find(&s->ix_gw_refused, ns, name);
	if (!strcmp(kind, "Service"))
		return km_index_find(&s->ix_svc_refused, ns, name);
	return NULL;
}

const struct km_service *km_find_service(const struct km_set *s, const char *ns, const char *name)
{
	const struct km_meta *m = km_index_find(&s->ix_services, ns, name);

	return m ? km_container(m, struct km_service) : NULL;
}

/* Namespaces are cluster-scoped: their km_meta.ns is "". */
const struct km_namespace *km_find_namespace(const struct km_set *s, const char *name)
{
	const struct km_meta *m = km_index_find(&s->ix_namespaces, "", name);

	return m ? km_container(m, struct km_namespace) : NULL;
}

const char *km_label_get(const struct km_label *v, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].key, key))
			return v[i].value;
	return NULL;
}

/*
 * Same kind, same ns/name: every later definition is reported against the
 * first one of its kind. Sorted, the copies sit in one run of equal ns/name
 * (routes of different kinds may share a name, hence the scan in the run).
 */
static int dups_sorted(struct ks_diags *d, const struct km_index *ix)
{
	size_t i, j, run = 0;
	int ret = 0;

	for (i = 1; i < ix->n; i++) {
		const struct km_meta *b = ix->v[i], *a = NULL;
		char why[2 * PATH_MAX];
		struct km_meta *m;

		if (!b->name || !ix->v[run]->name || cmp_str0(ix->v[run]->ns, b->ns) ||
		    strcmp(ix->v[run]->name, b->name)) {
			run = i;
			continue;
		}
		for (j = run; j < i && !a; j++)
			if (!strcmp(ix->v[j]->kind, b->kind))
				a = ix->v[j];
		if (!a)
			continue;
		/* The first definition stands; the copy is refused alone, and its verdict says why. */
		snprintf(why, sizeof(why), "defined twice: also at %s:%u:%u; this copy is refused",
			 a->file, a->pos.line, a->pos.col);
		if (ks_diag_obj(d, false, b->file, b->pos.line, b->pos.col, b->kind, b->ns, b->name,
				NULL, "%s", why))
			return -ENOMEM;
		m = (struct km_meta *)b;
		m->refused = true;
		m->dup = true;
		if (!m->why && !(m->why = strdup(why)))
			return -ENOMEM;
		ret = -EINVAL;
	}
	return ret;
}

int km_index_dups(struct km_index *scratch, const void *arr, size_t n, size_t stride,
		  struct ks_diags *d)
{
	if (index_build(scratch, arr, n, stride, key_name, KM_IX_ALL))
		return -ENOMEM;
	return dups_sorted(d, scratch);
}
