// SPDX-License-Identifier: BSD-2-Clause
/*
 * The object store (one sorted array per resource), the event history that
 * watches replay, and JSON merge patch. Callers hold store.lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apiserver.h"

struct store store = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static int key_cmp(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
	int c = strcmp(ns1, ns2);

	return c ? c : strcmp(n1, n2);
}

/* Index of (ns, name), or where it would be inserted; *found says which. */
ssize_t st_find(const struct storage *st, const char *ns, const char *name, bool *found)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = key_cmp(st->v[mid].ns, st->v[mid].name, ns, name);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

uint64_t next_rv(void)
{
	return ++store.rv;
}

/* Keep at most hist_max events (when set): the oldest half goes, as etcd compacts. */
static void hist_trim(void)
{
	size_t drop;

	if (!store.hist_max || store.nhist <= store.hist_max)
		return;
	drop = store.nhist / 2;
	store.compacted = store.hist[drop - 1].rv;
	for (size_t i = 0; i < drop; i++)
		json_object_put(store.hist[i].o);
	memmove(store.hist, store.hist + drop, (store.nhist - drop) * sizeof(*store.hist));
	store.nhist -= drop;
}

static void hist_add(struct storage *st, json_object *o, enum ev_type t)
{
	if (store.nhist == store.caphist) {
		store.caphist = store.caphist ? store.caphist * 2 : 1024;
		store.hist = realloc(store.hist, store.caphist * sizeof(*store.hist));
		if (!store.hist)
			abort();
	}
	store.hist[store.nhist++] = (struct event){ store.rv, t, st, json_object_get(o) };
	hist_trim();
	pthread_cond_broadcast(&store.cond);
}

void hist_compact(void)
{
	for (size_t i = 0; i < store.nhist; i++)
		json_object_put(store.hist[i].o);
	store.nhist = 0;
	store.compacted = store.rv;
}

size_t hist_first_after(uint64_t rv)
{
	size_t lo = 0, hi = store.nhist;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (store.hist[mid].rv <= rv)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Store o (the caller's reference) under (ns, name) at store.rv and record the event. */
void st_put(struct storage *st, const char *ns, const char *name, json_object *o, enum ev_type t)
{
	bool found;
	ssize_t i = st_find(st, ns, name, &found);

	if (found) {
		json_object_put(st->v[i].o);
		st->v[i].o = o;
	} else {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 64;
			st->v = realloc(st->v, st->cap * sizeof(*st->v));
			if (!st->v)
				abort();
		}
		memmove(st->v + i + 1, st->v + i, (st->n - i) * sizeof(*st->v));
		st->v[i] = (struct obj){ strdup(ns), strdup(name), o };
		st->n++;
	}
	hist_add(st, o, t);
}

/*
 * Remove entry i. The DELETED event carries the object at the deletion's
 * resourceVersion, as the real server's does; that copy is returned.
 */
json_object *st_del(struct storage *st, size_t i)
{
	json_object *o = NULL, *md;
	char rv[24];

	json_object_deep_copy(st->v[i].o, &o, NULL);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)next_rv());
	if (json_object_object_get_ex(o, "metadata", &md))
		json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	json_object_put(st->v[i].o);
	free(st->v[i].ns);
	free(st->v[i].name);
	memmove(st->v + i, st->v + i + 1, (st->n - i - 1) * sizeof(*st->v));
	st->n--;
	hist_add(st, o, EV_DELETED);
	return o;
}

/* A new object {kind, apiVersion, ...o}: stored objects leave the type out (lists omit it). */
json_object *with_type(const struct resdef *r, json_object *o)
{
	json_object *d = json_object_new_object();
	char av[256];

	json_object_object_add(d, "kind", json_object_new_string(r->kind));
	json_object_object_add(d, "apiVersion",
			       json_object_new_string(res_api_version(r, av, sizeof(av))));
	json_object_object_foreach(o, k, v)
		if (strcmp(k, "kind") && strcmp(k, "apiVersion"))
			json_object_object_add(d, k, json_object_get(v));
	return d;
}

/* The string at a dotted path ("metadata.name"), or NULL. */
const char *obj_str(json_object *o, const char *path)
{
	char key[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (path[n] == '.');
	}
	return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	json_object_deep_copy(o, &c, NULL);
	return c;
}

/* A patch value that lands where nothing was: merge it into {} so its nulls vanish. */
static json_object *fresh(json_object *v, bool strategic)
{
	json_object *t;

	if (!json_object_is_type(v, json_type_object))
		return copy(v);
	t = json_object_new_object();
	merge_patch(t, v, strategic);
	return t;
}

static json_object *find_by(json_object *list, const char *mk, json_object *val)
{
	size_t n = list ? json_object_array_length(list) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i), *v;

		if (json_object_object_get_ex(e, mk, &v) && json_object_equal(v, val))
			return e;
	}
	return NULL;
}

static bool is_delete(json_object *e)
{
	const char *p = obj_str(e, "$patch");

	return p && !strcmp(p, "delete");
}

/*
 * The list part of a strategic merge patch, as kubectl apply sends it: the
 * "$setElementOrder/K" list names each element by its merge key (the one key
 * its entries have), K holds the changed elements, "$patch": "delete" drops one.
 * Elements the patch does not mention are kept, after the ordered ones.
 */
static json_object *merge_list(json_object *target, json_object *plist, json_object *order)
{
	json_object *out = json_object_new_array(), *first = json_object_array_get_idx(order, 0);
	size_t n = json_object_array_length(order), nt, np;
	const char *mk = NULL;

	if (!first || !json_object_is_type(first, json_type_object)) {
		json_object_put(out);
		return copy(order);
	}
	json_object_object_foreach(first, k, v0) {
		(void)v0;
		mk = k;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *key, *p, *t;

		if (!json_object_object_get_ex(json_object_array_get_idx(order, i), mk, &key))
			continue;
		p = find_by(plist, mk, key);
		t = json_object_is_type(target, json_type_array) ? find_by(target, mk, key) : NULL;
		if (p && is_delete(p))
			continue;
		if (t) {
			t = copy(t);
			if (p)
				merge_patch(t, p, true);
			json_object_array_add(out, t);
		} else if (p) {
			json_object_array_add(out, fresh(p, true));
		}
	}
	nt = json_object_is_type(target, json_type_array) ? json_object_array_length(target) : 0;
	for (size_t i = 0; i < nt; i++) {
		json_object *t = json_object_array_get_idx(target, i), *key, *p;

		if (!json_object_object_get_ex(t, mk, &key) || find_by(order, mk, key))
			continue;
		p = find_by(plist, mk, key);
		if (!p || !is_delete(p))
			json_object_array_add(out, copy(t));
	}
	np = plist ? json_object_array_length(plist) : 0;
	for (size_t i = 0; i < np; i++) {
		json_object *p = json_object_array_get_idx(plist, i), *key;

		if (!is_delete(p) && json_object_object_get_ex(p, mk, &key) && !find_by(out, mk, key))
			json_object_array_add(out, fresh(p, true));
	}
	return out;
}

/*
 * RFC 7386 JSON merge patch of target (an object) in place. strategic adds
 * what kubectl apply's strategic merge patches need (see merge_list); other
 * "$" directives are dropped, so lists without an element order are replaced.
 */
void merge_patch(json_object *target, json_object *patch, bool strategic)
{
	json_object_object_foreach(patch, k, v) {
		json_object *t = NULL, *order = NULL;
		char okey[256];

		if (strategic && k[0] == '$')
			continue;
		json_object_object_get_ex(target, k, &t);
		snprintf(okey, sizeof(okey), "$setElementOrder/%s", k);
		if (!v) {
			json_object_object_del(target, k);
		} else if (json_object_is_type(v, json_type_object) && t &&
			   json_object_is_type(t, json_type_object)) {
			merge_patch(t, v, strategic);
		} else if (strategic && json_object_object_get_ex(patch, okey, &order)) {
			json_object_object_add(target, k, merge_list(t, v, order));
		} else {
			json_object_object_add(target, k, fresh(v, strategic));
		}
	}
	if (!strategic)
		return;
	/* An element order with no list beside it: only the order (or deletions) changed. */
	json_object_object_foreach(patch, k2, v2) {
		json_object *t = NULL;

		if (strncmp(k2, "$setElementOrder/", 17) ||
		    json_object_object_get_ex(patch, k2 + 17, NULL))
			continue;
		json_object_object_get_ex(target, k2 + 17, &t);
		json_object_object_add(target, k2 + 17, merge_list(t, NULL, v2));
	}
}
