// SPDX-License-Identifier: BSD-2-Clause
/*
 * What a load takes over from the last one (manifest.h: km_set_reuse,
 * km_set_carry): objects whose text did not change are moved over parsed,
 * and a refused object's last good version stays in force in its place.
 * Both move objects between two sets' stores (manifest.c owns the kinds and
 * their stores and does the move).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"
#include "config/kinds.h"

/* The failed path that file is, or is in; NULL when none. */
static const char *failed_path(const struct km_set *s, const char *file)
{
	size_t i, n;

	for (i = 0; i < s->n_failed; i++) {
		n = strlen(s->failed[i]);
		if (!strncmp(file, s->failed[i], n) && (!file[n] || file[n] == '/'))
			return s->failed[i];
	}
	return NULL;
}

static int cmp_ident(const struct km_meta *a, const struct km_meta *b)
{
	int c = strcmp(a->ns, b->ns);

	if (!c)
		c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->kind, b->kind);
}

static int cmp_ident_p(const void *pa, const void *pb)
{
	return cmp_ident(*(const struct km_meta *const *)pa, *(const struct km_meta *const *)pb);
}

/*
 * Whether old (a good object of the last load) stands in for a refused
 * object of s: s has its kind and ns/name only refused. by: s's objects of
 * that store sorted by identity.
 */
static const struct km_meta *refused_twin(const struct km_meta *const *by, size_t n,
					  const struct km_meta *old)
{
	const struct km_meta *twin = NULL;
	size_t lo = 0, hi = n, m;

	while (lo < hi) {
		m = (lo + hi) / 2;
		if (cmp_ident(by[m], old) < 0)
			lo = m + 1;
		else
			hi = m;
	}
	for (; lo < n && !cmp_ident(by[lo], old); lo++) {
		if (!by[lo]->refused)
			return NULL;
		twin = twin ? twin : by[lo];
	}
	return twin;
}

/* Moves old (of last) to the end of s's store i, as carried over. */
static int carry_one(struct km_set *s, size_t i, struct km_meta *old, const char *why,
		     struct ks_diags *d)
{
	struct km_meta *nm = km_store_move_in(s, i, old);

	if (!nm)
		return -ENOMEM;
	nm->kept = true;
	free(nm->why);
	if (!(nm->why = strdup(why)))
		return -ENOMEM;
	return ks_diag_obj(d, true, nm->file, nm->pos.line, nm->pos.col, nm->kind, nm->ns,
			   nm->name, NULL, "the last good version of this object stays in force "
			   "(this load refused it: %s)", why) ? -ENOMEM : 0;
}

/* An object of last, by the buffer (file) it came from. */
struct km_ref {
	const char *file;
	size_t store;		/* km_store_at() index */
	struct km_meta *m;
};

static int cmp_ref(const void *a, const void *b)
{
	return strcmp(((const struct km_ref *)a)->file, ((const struct km_ref *)b)->file);
}

int km_set_reuse(struct km_set *s, struct km_set *last, const char *const *names,
		 const bool *reuse, bool *done, size_t n)
{
	struct km_ref *refs = NULL, key;
	size_t i, j, nr = 0, total = 0, ns = km_n_stores();
	struct km_store st;
	int err = 0;

	for (i = 0; i < ns; i++) {
		km_store_at(last, i, &st);
		total += *st.n;
	}
	if (total && !(refs = malloc(total * sizeof(*refs))))
		return -ENOMEM;
	for (i = 0; i < ns; i++) {
		km_store_at(last, i, &st);
		for (j = 0; j < *st.n; j++) {
			struct km_meta *m = (struct km_meta *)(*st.arr + j * st.size);

			if (m->name && m->file)
				refs[nr++] = (struct km_ref){ m->file, i, m };
		}
	}
	if (nr)
		qsort(refs, nr, sizeof(*refs), cmp_ref);
	for (i = 0; i < n && !err; i++) {
		struct km_ref *r;

		done[i] = false;
		if (!reuse[i] || !nr)
			continue;
		key.file = names[i];
		r = bsearch(&key, refs, nr, sizeof(*refs), cmp_ref);
		if (!r)
			continue;
		/* bsearch lands anywhere in a run of equal files: back to its start. */
		while (r > refs && !strcmp(r[-1].file, names[i]))
			r--;
		for (; r < refs + nr && !strcmp(r->file, names[i]) && !err; r++) {
			struct km_meta *nm = km_store_move_in(s, r->store, r->m);

			if (!nm) {
				err = -ENOMEM;
				break;
			}
			/* A duplicate is judged anew: the first copy may be gone. */
			if (nm->dup) {
				nm->dup = nm->refused = false;
				free(nm->why);
				nm->why = NULL;
			}
			done[i] = true;
		}
	}
	free(refs);
	return err;
}

/* A carry decided on: entry j of last's store, and why (owned). */
struct pending {
	size_t j;
	char *why;
};

int km_set_carry(struct km_set *s, struct km_set *last, struct ks_diags *d)
{
	const struct km_meta **by = NULL;
	struct pending *pend = NULL;
	size_t i, j, k, n, np, cap = 0, ns = km_n_stores();
	struct km_store st, lt;
	int err = 0;

	for (i = 0; i < ns && !err; i++) {
		char *arr, *old;
		size_t n_old;

		km_store_at(s, i, &st);
		km_store_at(last, i, &lt);
		/* Sorted before anything moves in: carried objects never match each other. */
		arr = *st.arr;
		n = *st.n;
		old = *lt.arr;
		n_old = *lt.n;
		if (n > cap || n_old > cap) {
			size_t nc = n > n_old ? n : n_old;
			const struct km_meta **v = realloc(by, nc * sizeof(*v));
			struct pending *p = v ? realloc(pend, nc * sizeof(*p)) : NULL;

			if (v)
				by = v;
			if (!p) {
				err = -ENOMEM;
				break;
			}
			pend = p;
			cap = nc;
		}
		for (j = 0; j < n; j++)
			by[j] = (const struct km_meta *)(arr + j * st.size);
		if (n)
			qsort(by, n, sizeof(*by), cmp_ident_p);
		/*
		 * Decide every carry first, then move: a move grows s's store, which
		 * may move it, and by[] points into it.
		 */
		for (j = np = 0; j < n_old && !err; j++) {
			struct km_meta *om = (struct km_meta *)(old + j * lt.size);
			const struct km_meta *twin;
			const char *fp;
			char *why = NULL;

			if (!om->name || om->refused)
				continue;
			fp = failed_path(s, om->file);
			twin = fp ? NULL : refused_twin(by, n, om);
			if (!fp && !twin)
				continue;
			if (fp ? asprintf(&why, "%s could not be read or parsed", fp) < 0
			       : !(why = strdup(twin->why ? twin->why : "refused"))) {
				err = -ENOMEM;
				break;
			}
			/* The refused copy's verdict is the carried one's: it says kept. */
			if (twin)
				((struct km_meta *)twin)->kept = true;
			pend[np++] = (struct pending){ j, why };
		}
		for (k = 0; k < np; k++) {
			if (!err)
				err = carry_one(s, i, (struct km_meta *)(old + pend[k].j * lt.size),
						pend[k].why, d);
			free(pend[k].why);
		}
	}
	free(by);
	free(pend);
	return err;
}
