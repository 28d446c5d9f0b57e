/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Resolution internals shared by resolve.c (routes, backends, health, the
 * result) and parents.c (a route's parentRefs -> the VIPs it claims).
 * Internal to config/.
 */
#ifndef KSPLIT_CONFIG_RESOLVE_H
#define KSPLIT_CONFIG_RESOLVE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "config/config.h"
#include "config/manifest.h"
#include "config/model.h"

/* A service being built, with what is needed to name its origin in a conflict. */
struct km_pending {
	struct ksm_service svc;
	size_t seq;
	const struct km_route *r;
	size_t parent;
};

struct km_build {
	struct km_set *s;
	const struct ks_load_opts *o;
	struct ks_diags *d;
	struct km_pending *v;
	size_t n, cap;
	struct ksm_route_status *rs;	/* one per s->routes[], same order */
	int err;		/* -ENOMEM */
};

/* A (VIP, port) a route's parentRef claims. */
struct km_target {
	struct ksm_addr vip;
	uint16_t port;
	char *parent;		/* "Gateway ns/name:listener" or "Service ns/name:port" */
};

/* A diagnostic about route r at pos, path like "spec.parentRefs[0]"; 0 or -ENOMEM (in b too). */
int km_route_diag(struct km_build *b, bool warning, const struct km_route *r,
		  const struct km_pos *pos, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/*
 * parentRefs[pi] of r does not take it (Accepted=False, reason): an error
 * diagnostic, and the message in r's verdict. 0 or -ENOMEM (in b too).
 */
int km_parent_refuse(struct km_build *b, const struct km_route *r, size_t pi,
		     enum ksm_reason reason, const struct km_pos *pos, const char *path,
		     const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* ": it is defined at file:line but refused, ..." for a refused Gateway/Service, else "". */
const char *km_missing_note(const struct km_set *s, const char *kind, const char *ns,
			    const char *name, char *buf, size_t len);
/* Order of (family, VIP, port, proto): the model's service order. */
int km_svc_key_cmp(const struct ksm_service *a, const struct ksm_service *b);
/* Frees what a resolved service owns (resolve.c). */
void km_svc_free(struct ksm_service *s);

/* verdict.c: r's verdict skeleton (identity, parentRefs all Accepted, weights). */
int km_status_init(const struct km_route *r, struct ksm_route_status *st);
void ksm_route_status_free(struct ksm_route_status *st);
/* m->gateways from s's Gateways; 0 or -ENOMEM. */
int km_gateway_statuses(const struct km_set *s, struct ks_model *m);
void ksm_gateway_status_free(struct ksm_gateway_status *g);
/* Order of age for conflicts: creationTimestamp (absent = newest), then namespace/name. */
int km_route_age_cmp(const struct km_route *a, const struct km_route *b);
/* Two routes on one (VIP, port, proto): the oldest keeps every key it claims. */
void km_resolve_conflicts(struct km_build *b);

/* A warning on each Gateway with an address ksplit will not intercept. 0 or -ENOMEM. */
int km_gateway_vip_warnings(struct km_build *b);

/* Appends to *t (*n of them) the targets of r's parentRefs[pi], or reports why none. */
void km_parent_targets(struct km_build *b, const struct km_route *r, size_t pi,
		       struct km_target **t, size_t *n);

static inline const char *km_proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "TCP" : p == IPPROTO_UDP ? "UDP" : "SCTP";
}

/* Endpoints of a group (resolve.c): g->eps and g->n_eps. 0 or -ENOMEM. */
int km_fill_eps(const struct km_set *s, const char *ns, const char *name, const char *port_name,
		uint8_t proto, uint8_t fam, struct ksm_group *g);
/* The warning for backendRefs[bi] of r having no endpoints of family fam. 0 or -ENOMEM. */
int km_warn_no_eps(struct km_build *b, const struct km_route *r, size_t bi, uint8_t fam);

/*
 * Resolves the objects of s (indexed, duplicates judged) into *out: routes,
 * services, health, verdicts (load.c's loads end here). 0 or -ENOMEM.
 */
int km_resolve(struct km_set *s, const struct ks_load_opts *o, struct ks_model *out,
	       struct ks_diags *d);

#endif /* KSPLIT_CONFIG_RESOLVE_H */
