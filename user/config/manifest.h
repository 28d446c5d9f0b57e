/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Typed Kubernetes objects read from manifests. This layer checks each object
 * on its own (field names, types, ranges, duplicates); following references
 * between objects is resolve.c's job.
 *
 *   manifest.c    documents: the kind table (apiVersion, kind -> parser), files, freeing
 *   reader.c      the checking context and typed field readers every parser uses
 *   gateway.c service.c endpointslice.c route.c referencegrant.c targetgrouppolicy.c
 *   namespace.c   one parser per kind (route.c: HTTPRoute, GRPCRoute, TCPRoute, TLSRoute,
 *                 UDPRoute)
 *   index.c       lookups by (namespace, name) and duplicate definitions
 *   listeners.c   whether a Gateway listener takes a route (listeners.h)
 */
#ifndef KSPLIT_MANIFEST_H
#define KSPLIT_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "config/model.h"

#define KM_MAX_FILE_BYTES	(16u << 20)
#define KM_GW_GROUP		"gateway.networking.k8s.io"
#define KM_TGP_GROUP		"application-networking.k8s.aws"

/* Where an object (or one of its fields) came from. */
struct km_pos {
	unsigned line, col;
};

struct km_meta {
	const char *kind;	/* "Gateway", "HTTPRoute", ...: static */
	const char *file;	/* owned by the km_set's file list */
	struct km_pos pos;	/* the document's top mapping */
	char *ns, *name;
	char *created;		/* metadata.creationTimestamp as written, NULL when absent */
	size_t seq;		/* definition order across all files */
	/*
	 * Refused on its own: an error in the object itself, or a later copy of
	 * one already defined. Refused objects are left out of every lookup;
	 * why is the first error's text, for the route verdict.
	 */
	bool refused;
	bool kept;		/* carried over from the last load: its new version is refused */
	bool dup;		/* refused as a later copy (judged anew on every load) */
	char *why;
};

/*
 * Objects of one kind sorted by (namespace, key, seq): lookups and duplicate
 * checks in O(log n) instead of a scan per reference, which made 50,000
 * services take minutes. The key is the name, or for EndpointSlices the
 * Service they belong to.
 */
struct km_index {
	size_t n;
	const struct km_meta **v;
	const char *(*key)(const struct km_meta *m);
};

enum km_lproto { KM_L_HTTP, KM_L_HTTPS, KM_L_TCP, KM_L_UDP, KM_L_TLS };
extern const char *const km_lproto_names[];	/* indexed by it, NULL-terminated */

/* A listener's tls.mode; NONE for protocols without TLS (HTTP, TCP, UDP). */
enum km_tls_mode { KM_TLS_NONE, KM_TLS_TERMINATE, KM_TLS_PASSTHROUGH };
/* allowedRoutes.namespaces.from */
enum km_from { KM_FROM_SAME, KM_FROM_ALL, KM_FROM_SELECTOR };

struct km_label {
	char *key, *value;
};

enum km_sel_op { KM_SEL_IN, KM_SEL_NOT_IN, KM_SEL_EXISTS, KM_SEL_DOES_NOT_EXIST };
extern const char *const km_sel_op_names[];	/* indexed by it, NULL-terminated */

struct km_sel_expr {
	char *key;
	enum km_sel_op op;
	size_t n_values;
	char **values;
};

/* A Kubernetes LabelSelector: every matchLabels pair and every expression must hold. */
struct km_selector {
	size_t n_labels;
	struct km_label *labels;	/* matchLabels */
	size_t n_exprs;
	struct km_sel_expr *exprs;	/* matchExpressions */
};

struct km_group_kind {
	char *group, *kind;		/* group default applied */
};

struct km_listener {
	char *name;
	uint16_t port;
	enum km_lproto proto;
	struct km_pos pos;
	char *hostname;			/* NULL when absent (every hostname) */
	struct km_pos hostname_pos;
	enum km_tls_mode tls;		/* Terminate by default for HTTPS and TLS */
	struct km_pos tls_pos;		/* tls, or protocol when tls is absent */
	enum km_from from;		/* allowedRoutes.namespaces.from, default Same */
	struct km_selector sel;		/* allowedRoutes.namespaces.selector (from Selector) */
	size_t n_kinds;			/* allowedRoutes.kinds; 0: the kinds the protocol carries */
	struct km_group_kind *kinds;
};

struct km_gateway {
	struct km_meta m;
	size_t n_addrs;
	struct ksm_addr *addrs;
	size_t n_listeners;
	struct km_listener *listeners;
};

/* A Namespace: only its labels matter (allowedRoutes.namespaces.selector). */
struct km_namespace {
	struct km_meta m;	/* cluster-scoped: m.ns is "" */
	size_t n_labels;	/* with kubernetes.io/metadata.name, as the API server sets it */
	struct km_label *labels;
};

struct km_svc_port {
	char *name;		/* "" when absent */
	uint16_t port;
	uint8_t proto;		/* IPPROTO_TCP / UDP / SCTP */
};

struct km_service {
	struct km_meta m;
	bool headless;		/* clusterIP: None */
	bool external_name;	/* type: ExternalName */
	size_t n_ips;		/* clusterIP + clusterIPs, deduplicated */
	struct ksm_addr *ips;
	size_t n_ports;
	struct km_svc_port *ports;
};

struct km_slice_port {
	char *name;		/* "" when absent */
	bool has_port;
	uint16_t port;
	uint8_t proto;
};

struct km_slice_ep {
	struct ksm_addr addr;	/* the first address: no semantics exist for the others */
	bool ready, serving, terminating;
	char *name;
};

struct km_slice {
	struct km_meta m;
	char *svc_name;		/* label kubernetes.io/service-name, NULL when absent */
	uint8_t family;		/* KS_FAMILY_V4 / V6, 0 for FQDN */
	size_t n_ports;
	struct km_slice_port *ports;
	size_t n_eps;
	struct km_slice_ep *eps;
};

struct km_parent_ref {
	char *group, *kind, *ns, *name, *section;	/* defaults applied; section "" = none */
	uint16_t port;		/* 0 = unset */
	struct km_pos pos;
	struct km_pos section_pos, port_pos;	/* of those fields (pos when absent) */
};

struct km_backend_ref {
	char *group, *kind, *ns, *name;	/* defaults applied */
	bool has_port;
	uint16_t port;
	uint32_t weight;
	struct km_pos pos;
};

struct km_ctx;
struct ky_node;

/*
 * What differs between route kinds. HTTPRoute, GRPCRoute, TCPRoute, TLSRoute
 * and UDPRoute share one parser and one resolver (route.c, resolve.c) driven
 * by this; each is one row of the kind table in manifest.c.
 */
struct km_route_kind {
	uint8_t proto;			/* IPPROTO_TCP / IPPROTO_UDP: what the route carries */
	unsigned listeners;		/* 1u << enum km_lproto: Gateway listeners that carry it */
	const char *listeners_text;	/* the same for messages: "HTTP or HTTPS" */
	bool proto_tls_terminated;	/* on a TLS listener only when it terminates (TCPRoute) */
	/* The fields the kind has: spec, spec.rules[], spec.rules[].backendRefs[]. */
	const char *const *spec_keys, *const *rule_keys, *const *backend_keys;
	/* Its own checks of those (NULL: none), after the shared ones. */
	void (*check_spec)(struct km_ctx *c, const struct ky_node *spec);
	void (*check_rule)(struct km_ctx *c, const struct ky_node *rule);
	void (*check_backend)(struct km_ctx *c, const struct ky_node *backend);
};

struct km_route {
	struct km_meta m;
	const struct km_route_kind *kind;
	size_t n_parents;
	struct km_parent_ref *parents;
	size_t n_rules;
	struct km_pos rules_pos;
	size_t n_backends;	/* of rules[0] */
	struct km_backend_ref *backends;
	char *ann_passive_failures, *ann_empty_group;
};

struct km_grant_from {
	char *group, *kind, *ns;
};

struct km_grant_to {
	char *group, *kind, *name;	/* name NULL = every object of that kind */
};

struct km_grant {
	struct km_meta m;
	size_t n_from, n_to;
	struct km_grant_from *from;
	struct km_grant_to *to;
};

struct km_policy {
	struct km_meta m;
	struct ksm_health h;	/* defaults applied; source unset (resolve.c fills it) */
	struct km_pos target_pos;
	bool ignored;		/* targets a Lattice ServiceExport: warned, h.svc_name NULL */
};

struct km_set {
	size_t n_files;
	char **files;
	size_t n_gateways, n_services, n_slices, n_routes, n_grants, n_policies, n_namespaces;
	struct km_gateway *gateways;
	struct km_service *services;
	struct km_slice *slices;
	struct km_route *routes;
	struct km_grant *grants;
	struct km_policy *policies;
	struct km_namespace *namespaces;
	size_t seq;		/* next km_meta.seq */
	/* Files that could not be read or parsed: their objects are all refused. */
	size_t n_failed;
	char **failed;
	/* Built by km_set_index() once loading is done. */
	struct km_index ix_gateways, ix_services, ix_slices, ix_namespaces;
	struct km_index ix_gw_refused, ix_svc_refused;	/* why a lookup found nothing */
};

enum km_ix_filter { KM_IX_GOOD, KM_IX_REFUSED, KM_IX_ALL };

/* Sort the objects for lookup; 0 or -ENOMEM. */
int km_set_index(struct km_set *s);
/* First-defined object with (ns, key), or NULL. */
const struct km_meta *km_index_find(const struct km_index *ix, const char *ns, const char *key);
/* Range [*lo, *hi) of objects with (ns, key). */
void km_index_range(const struct km_index *ix, const char *ns, const char *key, size_t *lo,
		    size_t *hi);
#define km_container(ptr, type) ((const type *)((const char *)(ptr) - offsetof(type, m)))
/* A refused Gateway or Service named ns/name (kind "Gateway" / "Service"), or NULL. */
const struct km_meta *km_find_refused(const struct km_set *s, const char *kind, const char *ns,
				      const char *name);
/* First-defined Gateway / Service named ns/name once indexed, or NULL. */
const struct km_gateway *km_find_gateway(const struct km_set *s, const char *ns, const char *name);
const struct km_service *km_find_service(const struct km_set *s, const char *ns, const char *name);
const struct km_namespace *km_find_namespace(const struct km_set *s, const char *name);
/* The value of label key, or NULL. */
const char *km_label_get(const struct km_label *v, size_t n, const char *key);

/* Parses and checks one buffer, appending its objects. 0, -EINVAL (diags) or -ENOMEM. */
int km_load_buffer(struct km_set *s, const char *name, const char *buf, size_t len,
		   struct ks_diags *d);
/*
 * The same for one object of the API source: a JSON object's text goes
 * through json-c (yaml.h, ky_parse_json), which reads it into the same tree
 * several times faster than libyaml; any other text is read as YAML.
 */
int km_load_object(struct km_set *s, const char *name, const char *buf, size_t len,
		   struct ks_diags *d);
/* Files or directories (non-recursive, sorted, hidden entries skipped, symlinks followed). */
int km_load_path(struct km_set *s, const char *path, struct ks_diags *d);
/* Refuses (and reports) later definitions of the same kind and ns/name; builds the indexes. */
int km_check_duplicates(struct km_set *s, struct ks_diags *d);
/*
 * Moves into s, from last, the last good version of every object s refused
 * and every object of a file s failed to read, each with a warning. 0 or -ENOMEM.
 */
int km_set_carry(struct km_set *s, struct km_set *last, struct ks_diags *d);
/*
 * Moves into s, from last, the objects of every buffer names[i] with
 * reuse[i] set (unchanged since last was loaded), instead of parsing it
 * again; done[i] says whether any was found (else the caller parses it).
 * 0 or -ENOMEM.
 */
int km_set_reuse(struct km_set *s, struct km_set *last, const char *const *names,
		 const bool *reuse, bool *done, size_t n);
/* The same for one array of objects (km_meta first, stride apart), sorted into scratch. */
int km_index_dups(struct km_index *scratch, const void *arr, size_t n, size_t stride,
		  struct ks_diags *d);
void km_set_free(struct km_set *s);

/* Levenshtein distance, capped: used for "did you mean". */
unsigned km_edit_distance(const char *a, const char *b);

#endif /* KSPLIT_MANIFEST_H */
