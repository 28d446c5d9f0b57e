// SPDX-License-Identifier: BSD-2-Clause
/*
 * The object store and the event history that watches replay. Objects are
 * kept serialized (struct blob), not as json-c trees: at 100,000 objects a
 * tree costs ~15 times the bytes, and lists and watches send the bytes as
 * they are. Writes parse, change and serialize again. Each resource has an
 * array of objects with a hash index on (namespace, name), and a sorted order
 * for lists built when a list needs it. Callers hold store.lock.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apiserver.h"

struct store store = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

#define TOMB UINT32_MAX	/* a deleted hash slot; 0 is an empty one, else index + 1 */

static void *xrealloc(void *p, size_t n)
{
	if (!(p = realloc(p, n)))
		abort();
	return p;
}

struct blob *blob_new(json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	struct blob *b = xrealloc(NULL, sizeof(*b) + len + 1);

	b->ref = 1;
	b->len = len;
	memcpy(b->s, s, len + 1);
	return b;
}

/* Atomic: watch snapshots are released by MHD outside store.lock. */
struct blob *blob_get(struct blob *b)
{
	__atomic_add_fetch(&b->ref, 1, __ATOMIC_RELAXED);
	return b;
}

void blob_put(struct blob *b)
{
	if (b && !__atomic_sub_fetch(&b->ref, 1, __ATOMIC_ACQ_REL))
		free(b);
}

json_object *blob_parse(const struct blob *b)
{
	return json_tokener_parse(b->s);
}

/* Only parse when a selector needs more than the key. */
bool blob_match(const char *ns, const struct blob *b, const char *want_ns, const char *ls,
		const char *fs)
{
	json_object *o;
	bool ok;

	if (want_ns && strcmp(ns, want_ns))
		return false;
	if (!ls && !fs)
		return true;
	o = blob_parse(b);
	ok = o && selector_match(o, NULL, ls, fs);
	json_object_put(o);
	return ok;
}

static uint64_t key_hash(const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = ns; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

/* The slot holding (ns, name), or the slot it would go to (*found false). */
static size_t slot(const struct storage *st, const char *ns, const char *name, bool *found)
{
	size_t mask = st->hcap - 1, i = key_hash(ns, name) & mask, free_slot = SIZE_MAX;

	for (;; i = (i + 1) & mask) {
		uint32_t v = st->hash[i];

		if (!v) {
			*found = false;
			return free_slot != SIZE_MAX ? free_slot : i;
		}
		if (v == TOMB) {
			if (free_slot == SIZE_MAX)
				free_slot = i;
		} else if (!strcmp(st->v[v - 1].name, name) && !strcmp(st->v[v - 1].ns, ns)) {
			*found = true;
			return i;
		}
	}
}

/* Keep the table at most half full, tombstones included. */
static void rehash(struct storage *st)
{
	size_t cap = 64;

	if (st->hcap && (st->n + 1 + st->tombs) * 2 < st->hcap)
		return;
	while (cap < (st->n + 1) * 4)
		cap *= 2;
	free(st->hash);
	st->hash = xrealloc(NULL, cap * sizeof(*st->hash));
	memset(st->hash, 0, cap * sizeof(*st->hash));
	st->hcap = cap;
	st->tombs = 0;
	for (size_t i = 0; i < st->n; i++) {
		bool found;

		st->hash[slot(st, st->v[i].ns, st->v[i].name, &found)] = i + 1;
	}
}

ssize_t st_find(const struct storage *st, const char *ns, const char *name)
{
	bool found;
	size_t s;

	if (!st->hcap)
		return -1;
	s = slot(st, ns, name, &found);
	return found ? (ssize_t)st->hash[s] - 1 : -1;
}

static int key_cmp(const void *a, const void *b, void *arg)
{
	const struct storage *st = arg;
	const struct obj *x = &st->v[*(const size_t *)a], *y = &st->v[*(const size_t *)b];
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* Indices in (namespace, name) order: lists page in it. Rebuilt after an add or delete. */
const size_t *st_sorted(struct storage *st)
{
	if (!st->sorted) {
		st->order = xrealloc(st->order, (st->n + 1) * sizeof(*st->order));
		for (size_t i = 0; i < st->n; i++)
			st->order[i] = i;
		qsort_r(st->order, st->n, sizeof(*st->order), key_cmp, st);
		st->sorted = true;
	}
	return st->order;
}

/* Where a list resumes: the first position in st_sorted() after (ns, name). */
size_t st_after(struct storage *st, const char *ns, const char *name)
{
	const size_t *order = st_sorted(st);
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct obj *o = &st->v[order[mid]];
		int c = strcmp(o->ns, ns);

		if ((c ? c : strcmp(o->name, name)) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t next_rv(void)
{
	return ++store.rv;
}

static void ev_free(struct event *e)
{
	blob_put(e->b);
	free(e->ns);
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
		ev_free(&store.hist[i]);
	memmove(store.hist, store.hist + drop, (store.nhist - drop) * sizeof(*store.hist));
	store.nhist -= drop;
}

static void hist_add(struct storage *st, const char *ns, struct blob *b, enum ev_type t)
{
	if (store.nhist == store.caphist) {
		store.caphist = store.caphist ? store.caphist * 2 : 1024;
		store.hist = xrealloc(store.hist, store.caphist * sizeof(*store.hist));
	}
	store.hist[store.nhist++] = (struct event){ store.rv, t, st, strdup(ns), blob_get(b) };
	hist_trim();
	pthread_cond_broadcast(&store.cond);
}

void hist_compact(void)
{
	for (size_t i = 0; i < store.nhist; i++)
		ev_free(&store.hist[i]);
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

/* Store o (serialized) under (ns, name) at store.rv and record the event; returns the blob. */
struct blob *st_put(struct storage *st, const char *ns, const char *name, json_object *o,
		    enum ev_type t)
{
	struct blob *b = blob_new(o);
	bool found;
	size_t s;

	rehash(st);
	s = slot(st, ns, name, &found);
	if (found) {
		struct obj *e = &st->v[st->hash[s] - 1];

		blob_put(e->b);
		e->b = b;
	} else {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 64;
			st->v = xrealloc(st->v, st->cap * sizeof(*st->v));
		}
		st->tombs -= st->hash[s] == TOMB;
		st->v[st->n] = (struct obj){ strdup(ns), strdup(name), b };
		st->hash[s] = ++st->n;
		st->sorted = false;
	}
	hist_add(st, ns, b, t);
	return b;
}

/*
 * Remove entry i; the last entry takes its place. The DELETED event carries
 * the object at the deletion's resourceVersion, as the real server's does;
 * that blob is returned (the caller's reference).
 */
struct blob *st_del(struct storage *st, size_t i)
{
	json_object *o = blob_parse(st->v[i].b), *md;
	struct obj *e = &st->v[i];
	struct blob *b;
	char rv[24];
	bool found;

	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)next_rv());
	if (json_object_object_get_ex(o, "metadata", &md))
		json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	b = blob_new(o);
	json_object_put(o);
	hist_add(st, e->ns, b, EV_DELETED);
	st->hash[slot(st, e->ns, e->name, &found)] = TOMB;
	st->tombs++;
	blob_put(e->b);
	free(e->ns);
	free(e->name);
	if (i != --st->n) {
		*e = st->v[st->n];
		st->hash[slot(st, e->ns, e->name, &found)] = i + 1;
	}
	st->sorted = false;
	return b;
}

void sb_add(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->len + n + 1 > sb->cap) {
		sb->cap = (sb->len + n + 1) * 2;
		sb->s = xrealloc(sb->s, sb->cap);
	}
	memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = 0;
}

void sb_str(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_json(struct sbuf *sb, json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	sb_add(sb, s, len);
}

/* The object with kind and apiVersion first: stored objects leave them out (lists omit them). */
void sb_typed(struct sbuf *sb, const struct resdef *r, const struct blob *b)
{
	char av[256];

	sb_str(sb, "{\"kind\":\"");
	sb_str(sb, r->kind);
	sb_str(sb, "\",\"apiVersion\":\"");
	sb_str(sb, res_api_version(r, av, sizeof(av)));
	sb_str(sb, b->len > 2 ? "\"," : "\"");
	sb_add(sb, b->s + 1, b->len - 1);
}
