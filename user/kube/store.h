/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The objects held for one resource, by namespace/name, each trimmed to
 * what ksplit reads (no managedFields, no last-applied annotation, no
 * status but a Gateway's addresses) and kept as compact JSON: the config
 * loader reads JSON as YAML. Once a load holds an object parsed (and will
 * take it from there while it is unchanged), its text is dropped: a digest
 * of it still tells a change from a repeat. Internal to kube/.
 */
#ifndef KSPLIT_KUBE_STORE_H
#define KSPLIT_KUBE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

struct kube_obj {
	char *key;		/* "ns/name" ("name" when cluster-scoped) */
	char *json;		/* the trimmed object, kind and apiVersion included; NULL once dropped */
	size_t len;
	struct kube_text_chunk *chunk;	/* where json is */
	unsigned char digest[16];	/* of json (SHA-256, cut): what a put compares */
	uint64_t gen;		/* the list generation that last saw it */
	/* Gateways: gatewayClassName; GatewayClasses: controllerName. */
	char *class;
	/* Routes: the Gateways named by parentRefs ("ns/name", NULL-terminated), a Service parent. */
	char **gw_parents;
	bool svc_parent;
	/*
	 * Whether a snapshot may leave it out while it is unchanged (a Gateway,
	 * a route without a Service parent: whether they are ksplit's depends
	 * on other objects): such a text is kept.
	 */
	bool keep_text;
	uint64_t ver;		/* when it last changed (a process-wide counter) */
	/* metadata.generation (trimmed off json: status writes must not look like changes). */
	int64_t generation;
};

struct kube_text_chunk;

struct kube_store {
	size_t n, cap;		/* cap: a power of two, or 0 */
	struct kube_text_chunk *texts;	/* the chunk new texts go to */
	struct kube_obj **slots;	/* open addressing; NULL empty, TOMB deleted */
	size_t tombs;
	/* A put of an unchanged object whose text was dropped keeps its text again. */
	bool refill;
};

/*
 * Puts obj (an API object: kind and apiVersion are set from kind and
 * api_version when missing, as list items lack them) under its key.
 * Returns 1 when the stored object changed (or, with refill, got its text
 * back: its ver stays), 0 when it is the same, -errno.
 */
int kube_store_put(struct kube_store *s, struct json_object *obj, const char *kind,
		   const char *api_version, uint64_t gen);
/* "ns/name" ("name" when cluster-scoped) of an API object, malloc'ed; NULL when it has no name. */
char *kube_obj_key(struct json_object *obj);
/* 1 when removed, 0 when it was not there. */
int kube_store_del(struct kube_store *s, struct json_object *obj);
/* Frees o's text (a load holds it parsed); the digest stays. */
void kube_obj_drop_text(struct kube_obj *o);
/* Drops every object whose gen is older than gen (after a relist). Returns how many. */
size_t kube_store_sweep(struct kube_store *s, uint64_t gen);
/* Calls fn for every object. */
void kube_store_each(const struct kube_store *s, void (*fn)(const struct kube_obj *o, void *arg),
		     void *arg);
const struct kube_obj *kube_store_get(const struct kube_store *s, const char *key);
void kube_store_free(struct kube_store *s);

#endif
