// SPDX-License-Identifier: BSD-2-Clause
/*
 * The objects of one resource. A small open-addressing table: a rollout
 * changes one EndpointSlice at a time among tens of thousands, and each
 * event must cost O(1), not a scan.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <openssl/evp.h>

#include "kube/store.h"

#define TOMB ((struct kube_obj *)1)

/* Stamps each change, so a load knows which objects it can take from the last one. */
static uint64_t versions;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * The texts live apart from everything else, in chunks mapped for them:
 * once a load holds the objects parsed their texts go, and 50,000 texts
 * freed between the objects and keys they were allocated beside left the
 * heap's pages in use (RSS fell by half of what was freed). A chunk is
 * unmapped when its last text goes.
 */
#define TEXT_CHUNK	(256u << 10)

struct kube_text_chunk {
	size_t used, cap, live;
	bool current;		/* its store's s->texts: new texts go here */
	char data[];
};

static void chunk_unmap(struct kube_text_chunk *c)
{
	munmap(c, sizeof(*c) + c->cap);
}

static int text_put(struct kube_store *s, struct kube_obj *o, const char *text, size_t len)
{
	struct kube_text_chunk *c = s->texts;
	bool own = len + 1 > TEXT_CHUNK / 4;	/* a large text gets a chunk of its own */

	if (own || !c || c->cap - c->used < len + 1) {
		size_t cap = own ? len + 1 : TEXT_CHUNK - sizeof(*c);

		c = mmap(NULL, sizeof(*c) + cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (c == MAP_FAILED)
			return -ENOMEM;
		c->used = c->live = 0;
		c->cap = cap;
		c->current = !own;
		if (!own) {
			if (s->texts && !s->texts->live)
				chunk_unmap(s->texts);
			else if (s->texts)
				s->texts->current = false;
			s->texts = c;
		}
	}
	o->json = c->data + c->used;
	memcpy(o->json, text, len);
	o->json[len] = 0;
	o->len = len;
	o->chunk = c;
	c->used += len + 1;
	c->live++;
	return 0;
}

void kube_obj_drop_text(struct kube_obj *o)
{
	struct kube_text_chunk *c = o->chunk;

	if (!o->json)
		return;
	o->json = NULL;
	o->len = 0;
	o->chunk = NULL;
	if (--c->live)
		return;
	/* The chunk in use starts over; any other is gone. */
	if (c->current)
		c->used = 0;
	else
		chunk_unmap(c);
}

static void obj_free(struct kube_obj *o)
{
	size_t i;

	if (!o || o == TOMB)
		return;
	free(o->key);
	kube_obj_drop_text(o);
	free(o->class);
	for (i = 0; o->gw_parents && o->gw_parents[i]; i++)
		free(o->gw_parents[i]);
	free(o->gw_parents);
	free(o);
}

/* The slot of key, or of the first free one on its probe path (*found says which). */
static size_t probe(const struct kube_store *s, const char *key, bool *found)
{
	size_t mask = s->cap - 1, i = hash(key) & mask, first_tomb = SIZE_MAX;

	for (;; i = (i + 1) & mask) {
		struct kube_obj *o = s->slots[i];

		if (!o) {
			*found = false;
			return first_tomb != SIZE_MAX ? first_tomb : i;
		}
		if (o == TOMB) {
			if (first_tomb == SIZE_MAX)
				first_tomb = i;
			continue;
		}
		if (!strcmp(o->key, key)) {
			*found = true;
			return i;
		}
	}
}

static int grow(struct kube_store *s)
{
	struct kube_obj **old = s->slots;
	size_t ocap = s->cap, i, j;
	bool found;

	if (s->cap && (s->n + s->tombs + 1) * 4 < s->cap * 3)
		return 0;
	s->cap = s->cap ? (s->n * 4 >= s->cap ? s->cap * 2 : s->cap) : 64;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	if (!s->slots) {
		s->slots = old;
		s->cap = ocap;
		return -ENOMEM;
	}
	s->tombs = 0;
	for (i = 0; i < ocap; i++) {
		if (!old[i] || old[i] == TOMB)
			continue;
		j = probe(s, old[i]->key, &found);
		s->slots[j] = old[i];
	}
	free(old);
	return 0;
}

/* "ns/name" or "name" from metadata; NULL when the object has no name. */
char *kube_obj_key(struct json_object *obj)
{
	struct json_object *meta, *v;
	const char *ns = NULL, *name;
	char *k = NULL;

	if (!json_object_object_get_ex(obj, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, "name", &v) || !(name = json_object_get_string(v)))
		return NULL;
	if (json_object_object_get_ex(meta, "namespace", &v))
		ns = json_object_get_string(v);
	if (asprintf(&k, "%s%s%s", ns ? ns : "", ns ? "/" : "", name) < 0)
		return NULL;
	return k;
}

static const char *path_str(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)))
		return NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/*
 * Drops what ksplit never reads, so that 50,000 objects do not cost their
 * managedFields: client-go's transform functions do the same.
 */
static void trim(struct json_object *obj, const char *kind)
{
	struct json_object *meta, *ann, *st, *addrs;

	if (json_object_object_get_ex(obj, "metadata", &meta)) {
		json_object_object_del(meta, "managedFields");
		/*
		 * These change on every write, status writes included: kept, they
		 * would make each status update look like a change to apply.
		 */
		json_object_object_del(meta, "resourceVersion");
		json_object_object_del(meta, "generation");
		json_object_object_del(meta, "uid");
		json_object_object_del(meta, "selfLink");
		json_object_object_del(meta, "ownerReferences");
		json_object_object_del(meta, "finalizers");
		if (json_object_object_get_ex(meta, "annotations", &ann)) {
			json_object_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
			if (!json_object_object_length(ann))
				json_object_object_del(meta, "annotations");
		}
	}
	if (!json_object_object_get_ex(obj, "status", &st))
		return;
	/* A Gateway's assigned addresses are its VIPs when spec has none. */
	if (!strcmp(kind, "Gateway") && json_object_object_get_ex(st, "addresses", &addrs)) {
		json_object_get(addrs);
		json_object_object_del(obj, "status");
		st = json_object_new_object();
		json_object_object_add(st, "addresses", addrs);
		json_object_object_add(obj, "status", st);
		return;
	}
	json_object_object_del(obj, "status");
}

/* A route's Gateway parents and whether it has a Service parent. */
static int route_parents(struct kube_obj *o, struct json_object *obj, const char *ns)
{
	struct json_object *spec, *refs;
	size_t i, n, k = 0;

	if (!json_object_object_get_ex(obj, "spec", &spec) ||
	    !json_object_object_get_ex(spec, "parentRefs", &refs) ||
	    !json_object_is_type(refs, json_type_array))
		return 0;
	n = json_object_array_length(refs);
	o->gw_parents = calloc(n + 1, sizeof(*o->gw_parents));
	if (!o->gw_parents)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(refs, i), *v;
		const char *kind = "Gateway", *pns = ns, *name = NULL;

		if (json_object_object_get_ex(p, "kind", &v))
			kind = json_object_get_string(v);
		if (json_object_object_get_ex(p, "namespace", &v))
			pns = json_object_get_string(v);
		if (json_object_object_get_ex(p, "name", &v))
			name = json_object_get_string(v);
		if (!kind || !name)
			continue;
		if (!strcmp(kind, "Service")) {
			o->svc_parent = true;
		} else if (!strcmp(kind, "Gateway")) {
			if (asprintf(&o->gw_parents[k], "%s/%s", pns ? pns : "default", name) < 0)
				return -ENOMEM;
			k++;
		}
	}
	return 0;
}

/*
 * What tells a changed text from the same one once the text is dropped: a
 * cryptographic digest, so that no edit can pass for unchanged.
 */
static int digest(const char *text, size_t len, unsigned char out[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (!EVP_Digest(text, len, md, &n, EVP_sha256(), NULL))
		return -ENOMEM;
	memcpy(out, md, 16);
	return 0;
}

int kube_store_put(struct kube_store *s, struct json_object *obj, const char *kind,
		   const char *api_version, uint64_t gen)
{
	unsigned char dg[16];
	struct kube_obj *o = NULL;
	const char *text, *c;
	char *key = kube_obj_key(obj);
	struct json_object *meta, *g;
	int64_t generation = 0;
	size_t i, len;
	bool found;
	int err = -ENOMEM;

	if (!key)
		return -EINVAL;
	if (json_object_object_get_ex(obj, "metadata", &meta) &&
	    json_object_object_get_ex(meta, "generation", &g))
		generation = json_object_get_int64(g);
	if (!json_object_object_get_ex(obj, "kind", NULL))
		json_object_object_add(obj, "kind", json_object_new_string(kind));
	if (!json_object_object_get_ex(obj, "apiVersion", NULL))
		json_object_object_add(obj, "apiVersion", json_object_new_string(api_version));
	trim(obj, kind);
	/* No "\/": YAML (the loader reads JSON as YAML) knows no such escape. */
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
						   JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	if (digest(text, len, dg) || grow(s))
		goto fail;
	i = probe(s, key, &found);
	if (found && !memcmp(s->slots[i]->digest, dg, sizeof(dg))) {
		struct kube_obj *same = s->slots[i];
		bool back = s->refill && !same->json;

		same->gen = gen;
		same->generation = generation;
		free(key);
		if (back && text_put(s, same, text, len))
			return -ENOMEM;
		return back;
	}
	o = calloc(1, sizeof(*o));
	if (!o || text_put(s, o, text, len))
		goto fail;
	memcpy(o->digest, dg, sizeof(dg));
	o->key = key;
	key = NULL;
	o->len = len;
	o->gen = gen;
	o->generation = generation;
	o->ver = ++versions;
	c = !strcmp(kind, "Gateway") ? path_str(obj, "spec", "gatewayClassName") :
	    !strcmp(kind, "GatewayClass") ? path_str(obj, "spec", "controllerName") : NULL;
	if (c && !(o->class = strdup(c)))
		goto fail;
	if (strstr(kind, "Route")) {
		const char *ns = path_str(obj, "metadata", "namespace");

		if ((err = route_parents(o, obj, ns)))
			goto fail;
	}
	o->keep_text = !strcmp(kind, "Gateway") || (strstr(kind, "Route") && !o->svc_parent);
	if (found) {
		obj_free(s->slots[i]);
	} else {
		if (s->slots[i] == TOMB)
			s->tombs--;
		s->n++;
	}
	s->slots[i] = o;
	return 1;
fail:
	free(key);
	obj_free(o);
	return err;
}

int kube_store_del(struct kube_store *s, struct json_object *obj)
{
	char *key = kube_obj_key(obj);
	bool found = false;
	size_t i;

	if (!key)
		return 0;
	if (s->cap) {
		i = probe(s, key, &found);
		if (found) {
			obj_free(s->slots[i]);
			s->slots[i] = TOMB;
			s->tombs++;
			s->n--;
		}
	}
	free(key);
	return found;
}

size_t kube_store_sweep(struct kube_store *s, uint64_t gen)
{
	size_t i, n = 0;

	for (i = 0; i < s->cap; i++) {
		struct kube_obj *o = s->slots[i];

		if (!o || o == TOMB || o->gen >= gen)
			continue;
		obj_free(o);
		s->slots[i] = TOMB;
		s->tombs++;
		s->n--;
		n++;
	}
	return n;
}

void kube_store_each(const struct kube_store *s, void (*fn)(const struct kube_obj *o, void *arg),
		     void *arg)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		if (s->slots[i] && s->slots[i] != TOMB)
			fn(s->slots[i], arg);
}

const struct kube_obj *kube_store_get(const struct kube_store *s, const char *key)
{
	bool found;
	size_t i;

	if (!s->cap)
		return NULL;
	i = probe(s, key, &found);
	return found ? s->slots[i] : NULL;
}

void kube_store_free(struct kube_store *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		obj_free(s->slots[i]);
	if (s->texts)
		chunk_unmap(s->texts);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}
