/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What each kind's file gives the document loader (manifest.c): a parser and
 * a free function for one object, and for route kinds their km_route_kind.
 * The loader's kind table ties them to an apiVersion group, its versions and
 * the kind name. Internal to config/.
 */
#ifndef KSPLIT_CONFIG_KINDS_H
#define KSPLIT_CONFIG_KINDS_H

#include "config/manifest.h"
#include "config/reader.h"
#include "config/yaml.h"

/* One document of a known kind. */
struct km_doc {
	const struct ky_node *root;
	const struct ky_node *meta;	/* metadata, a mapping */
	const struct ky_node *spec;	/* spec, a mapping; NULL for kinds without one */
	const void *arg;		/* the table row's arg (route kinds: their km_route_kind) */
};

/*
 * Fill obj (zeroed, its km_meta already set) from doc, reporting through c,
 * whose path is at the document's root. Objects with errors are kept: the
 * caller fails the load, and later checks still name them.
 */
typedef void km_parse_fn(struct km_ctx *c, const struct km_doc *doc, void *obj);
/* Free what the parser allocated (not the km_meta, not obj itself). */
typedef void km_free_fn(void *obj);

km_parse_fn km_gateway_parse, km_service_parse, km_slice_parse, km_route_parse,
	    km_grant_parse, km_policy_parse, km_namespace_parse;
km_free_fn km_gateway_free, km_service_free, km_slice_free, km_route_free, km_grant_free,
	   km_policy_free, km_namespace_free;

/* Route kinds (route.c): what differs between them, for the shared parser. */
extern const struct km_route_kind km_route_http, km_route_grpc, km_route_tcp, km_route_tls,
	km_route_udp;

/*
 * The object stores of a km_set, one per store of the kind table (the route
 * kinds share one): for carry.c, which moves objects between two sets.
 */
struct km_store {
	char **arr;		/* the objects, size bytes each, each starting with its km_meta */
	size_t *n;
	size_t size;
};
size_t km_n_stores(void);
void km_store_at(struct km_set *s, size_t i, struct km_store *st);
/*
 * Move old (an object of another set, of store i) to the end of s's store
 * i, with s's own copy of its file name and the next seq; old is zeroed.
 * The moved object, or NULL when out of memory.
 */
struct km_meta *km_store_move_in(struct km_set *s, size_t i, struct km_meta *old);

/* Why L4 cannot honour what needs the request: routes' and listeners' refusals say it. */
#define KM_L4_WHY "ksplit picks a backend at connect(), before any byte of the request exists"

#endif /* KSPLIT_CONFIG_KINDS_H */
