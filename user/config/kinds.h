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

/* Why L4 cannot honour what needs the request: routes' and listeners' refusals say it. */
#define KM_L4_WHY "ksplit picks a backend at connect(), before any byte of the request exists"

#endif /* KSPLIT_CONFIG_KINDS_H */
