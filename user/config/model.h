/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The resolved config model: what the manifests mean once every reference is
 * followed. It is pure data (no BPF, no root) so that unit tests reach it.
 *
 *   manifests (files) --config/manifest--> objects --config/resolve--> ks_model
 *   ks_model --image/--> map entries --datapath/--> pinned maps
 */
#ifndef KSPLIT_MODEL_H
#define KSPLIT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

#define KSM_MAX_GROUPS 16


struct ksm_endpoint {
	struct ksm_addr addr;
	uint16_t port;		/* host order: the EndpointSlice port resolved by name */
	bool ready;		/* conditions.ready, nil counts as true */
	bool serving;		/* conditions.serving, nil counts as ready's value */
	bool terminating;	/* conditions.terminating, nil counts as false */
	char *name;		/* targetRef.name, else hostname, else NULL */
};

/* Why a backendRef cannot be used (Gateway API ResolvedRefs reasons). */
enum ksm_invalid {
	KSM_REF_OK = 0,
	KSM_REF_NOT_FOUND,	/* BackendNotFound: no such Service, or no such Service port */
	KSM_REF_INVALID_KIND,	/* InvalidKind */
	KSM_REF_NOT_PERMITTED,	/* RefNotPermitted: cross-namespace without ReferenceGrant */
	KSM_REF_UNSUPPORTED_PROTOCOL,	/* UnsupportedProtocol: the Service port is another L4 protocol */
};

/*
 * The reasons of a route's Accepted and ResolvedRefs conditions, spelled as
 * Gateway API spells them (ksm_reason_name). A route is judged per parentRef;
 * docs/config.md lists when ksplit gives each.
 */
enum ksm_reason {
	KSM_R_ACCEPTED = 0,		/* Accepted=True */
	KSM_R_NOT_ALLOWED_BY_LISTENERS,	/* allowedRoutes (namespaces, kinds) */
	KSM_R_NO_MATCHING_PARENT,	/* no such parent, listener, port; or a listener ksplit refuses */
	KSM_R_NO_MATCHING_LISTENER_HOSTNAME,
	KSM_R_UNSUPPORTED_VALUE,	/* a field ksplit cannot honour at connect() */
	KSM_R_RESOLVED_REFS,		/* ResolvedRefs=True */
	KSM_R_REF_NOT_PERMITTED,
	KSM_R_INVALID_KIND,
	KSM_R_BACKEND_NOT_FOUND,
	KSM_R_UNSUPPORTED_PROTOCOL,
	KSM_R_N,
};

const char *ksm_reason_name(enum ksm_reason r);
/* The ResolvedRefs reason for an invalid backendRef (KSM_R_RESOLVED_REFS for KSM_REF_OK). */
enum ksm_reason ksm_invalid_reason(enum ksm_invalid inv);

/* One parentRef of a route and what became of it: a status.parents[] entry. */
struct ksm_parent_status {
	char *group, *kind, *ns, *name, *section;	/* the parentRef, defaults applied */
	uint16_t port;					/* 0 = unset */
	enum ksm_reason accepted;	/* KSM_R_ACCEPTED or why not */
	char *accepted_msg;		/* NULL when accepted */
	enum ksm_reason resolved;	/* KSM_R_RESOLVED_REFS or the first invalid backendRef's */
	char *resolved_msg;		/* NULL when resolved */
	size_t n_programmed;		/* (VIP, port, proto) entries programmed through it */
};

/* The verdict on one route object. */
struct ksm_route_status {
	char *kind, *ns, *name;
	char *source;			/* "file:line" */
	/* Refused as an object (a field ksplit cannot read or honour); NULL otherwise. */
	char *refused;
	bool kept;			/* refused, and its last good version stays in force */
	uint32_t weight_total, weight_refused;	/* rule weights; those of invalid backendRefs */
	size_t n_parents;
	struct ksm_parent_status *parents;
};

/*
 * The verdict on one Gateway object: what its status says (Accepted,
 * Programmed, addresses) when the API source writes it.
 */
struct ksm_gateway_status {
	char *ns, *name;
	/* Refused as an object (its first error); NULL when accepted. */
	char *refused;
	bool kept;			/* refused, and its last good version stays in force */
	size_t n_addrs;
	struct ksm_addr *addrs;		/* the VIPs in force for it (the last good ones when kept) */
};

/* Every parentRef accepted the route, and the object itself was not refused. */
bool ksm_route_accepted(const struct ksm_route_status *r);

struct ksm_group {
	char *svc_ns;		/* backend Service namespace */
	char *svc_name;		/* backend Service name */
	uint16_t svc_port;	/* backendRef port (the Service port) */
	uint32_t weight;	/* 0..1,000,000 */
	enum ksm_invalid invalid;
	char *reason;		/* human text when invalid, else NULL */
	size_t n_eps;		/* endpoints of this VIP's family, ALL of them (eligibility is image.c's) */
	struct ksm_endpoint *eps;
};

struct ksm_service {
	struct ksm_addr vip;
	uint16_t port;		/* host order */
	uint8_t proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	char *route;		/* "HTTPRoute checkout/checkoutroute" */
	char *parent;		/* "Gateway checkout/eks-workshop:http" or "Service ns/name:80" */
	char *source;		/* "file:line" of the route, for logs */
	/* Route annotations interpreted by later features (health); NULL when absent. */
	char *ann_passive_failures;	/* ksplit.io/passive-failures */
	char *ann_empty_group;		/* ksplit.io/empty-group */
	size_t n_groups;
	/*
	 * n_groups of them (at most KSM_MAX_GROUPS). Not an array of the
	 * maximum: most routes have one or two backends, and 16 groups made
	 * each service 968 bytes, two models' worth held during a reload.
	 */
	struct ksm_group *groups;
};

/* A TargetGroupPolicy health check, validated, defaults filled in (AWS defaults). */
struct ksm_health {
	char *svc_ns, *svc_name;	/* targetRef */
	bool enabled;
	uint32_t interval_s, timeout_s, healthy_threshold, unhealthy_threshold;
	char *status_match;		/* "200", "200-299", "200,204,301-302" */
	char *path;
	uint16_t port;			/* 0 = traffic port */
	char *protocol;			/* "HTTP" | "HTTPS" */
	char *protocol_version;		/* "HTTP1" | "HTTP2" */
	char *source;			/* "file:line" */
};

struct ks_model {
	size_t n_svcs;
	struct ksm_service *svcs;	/* sorted by (family, vip, port, proto); keys unique */
	size_t n_health;
	struct ksm_health *health;
	size_t n_routes;
	struct ksm_route_status *routes;	/* every route object, in definition order */
	size_t n_gateways;
	struct ksm_gateway_status *gateways;	/* every Gateway object, in definition order */
	/* Backend Service -> groups, for the incremental load (config/patch.c); built on demand. */
	struct ksm_deps *deps;
};

void ks_model_free(struct ks_model *m);
struct ksm_deps;
void ksm_deps_free(struct ksm_deps *d);
/* Frees what h owns and zeroes it. */
void ksm_health_free(struct ksm_health *h);

#endif /* KSPLIT_MODEL_H */
