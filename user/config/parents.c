// SPDX-License-Identifier: BSD-2-Clause
/*
 * A route's parents: the (VIP, port) pairs a parentRef claims, from a
 * Gateway's addresses and fitting listeners, or (mesh) from a Service's
 * ClusterIPs and ports; or the reason it claims none.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "config/listeners.h"
#include "config/resolve.h"

static int add_target(struct km_build *b, struct km_target **t, size_t *n,
		      const struct ksm_addr *vip, uint16_t port, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int add_target(struct km_build *b, struct km_target **t, size_t *n,
		      const struct ksm_addr *vip, uint16_t port, const char *fmt, ...)
{
	struct km_target *nt = realloc(*t, (*n + 1) * sizeof(**t));
	va_list ap;
	int err;

	if (!nt)
		goto nomem;
	*t = nt;
	nt[*n].vip = *vip;
	nt[*n].port = port;
	va_start(ap, fmt);
	err = vasprintf(&nt[*n].parent, fmt, ap);
	va_end(ap);
	if (err < 0)
		goto nomem;
	(*n)++;
	return 0;
nomem:
	b->err = -ENOMEM;
	return -ENOMEM;
}

/*
 * Whether every address a parentRef would claim is safe to intercept on a
 * node; if not, the parentRef refuses the route (nothing is half-claimed).
 */
static bool vips_safe(struct km_build *b, const struct km_route *r, size_t pi,
		      const struct ksm_addr *addrs, size_t n, const char *what)
{
	const struct km_parent_ref *p = &r->parents[pi];
	char path[64], ip[INET6_ADDRSTRLEN];
	enum ksm_vip_class c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = ksm_addr_vip_class(&addrs[i]);
		if (c == KSM_VIP_OK || (c == KSM_VIP_LOOPBACK && b->o->allow_loopback_vips))
			continue;
		ksm_addr_fmt(&addrs[i], ip, sizeof(ip));
		snprintf(path, sizeof(path), "spec.parentRefs[%zu]", pi);
		km_parent_refuse(b, r, pi, KSM_R_UNSUPPORTED_VALUE, &p->pos, path,
				 "%s %s/%s has the %s address %s, which ksplit will not intercept: %s",
				 what, p->ns, p->name, ksm_vip_class_name(c), ip, ksm_vip_class_why(c));
		return false;
	}
	return true;
}

int km_gateway_vip_warnings(struct km_build *b)
{
	char ip[INET6_ADDRSTRLEN];
	enum ksm_vip_class c;
	size_t i, j;

	for (i = 0; i < b->s->n_gateways; i++) {
		const struct km_gateway *g = &b->s->gateways[i];

		if (g->m.refused)
			continue;
		for (j = 0; j < g->n_addrs; j++) {
			c = ksm_addr_vip_class(&g->addrs[j]);
			if (c == KSM_VIP_OK || (c == KSM_VIP_LOOPBACK && b->o->allow_loopback_vips))
				continue;
			ksm_addr_fmt(&g->addrs[j], ip, sizeof(ip));
			/* Once per Gateway, even with no route: why it will carry nothing. */
			if (ks_diag_obj(b->d, true, g->m.file, g->m.pos.line, g->m.pos.col, g->m.kind,
					g->m.ns, g->m.name, "spec.addresses",
					"%s address %s will not be intercepted: %s; no route is "
					"accepted on this Gateway", ksm_vip_class_name(c), ip,
					ksm_vip_class_why(c))) {
				b->err = -ENOMEM;
				return -ENOMEM;
			}
			break;
		}
	}
	return 0;
}

static void gateway_targets(struct km_build *b, const struct km_route *r, size_t pi,
			    struct km_target **t, size_t *n)
{
	const struct km_parent_ref *p = &r->parents[pi];
	const struct km_gateway *g = km_find_gateway(b->s, p->ns, p->name);
	char path[64], note[PATH_MAX + 64], msg[1024], first_msg[1024];
	enum ksm_reason first = KSM_R_ACCEPTED;
	size_t i, j, hits = 0, skipped[64], n_skipped = 0;

	snprintf(path, sizeof(path), "spec.parentRefs[%zu]", pi);
	if (!g) {
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Gateway %s/%s not found%s", p->ns, p->name,
				 km_missing_note(b->s, "Gateway", p->ns, p->name, note, sizeof(note)));
		return;
	}
	if (!vips_safe(b, r, pi, g->addrs, g->n_addrs, "Gateway"))
		return;
	for (i = 0; i < g->n_listeners; i++) {
		const struct km_listener *l = &g->listeners[i];
		enum ksm_reason why;

		if (*p->section && strcmp(l->name, p->section))
			continue;
		if (p->port && p->port != l->port) {
			if (!*p->section)
				continue;
			snprintf(path, sizeof(path), "spec.parentRefs[%zu].port", pi);
			km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->port_pos, path,
					 "port %u does not match listener '%s' of Gateway %s/%s "
					 "(port %u)", p->port, l->name, p->ns, p->name, l->port);
			return;
		}
		why = km_listener_admits(b->s, g, l, r, msg, sizeof(msg));
		if (why != KSM_R_ACCEPTED && *p->section) {
			snprintf(path, sizeof(path), "spec.parentRefs[%zu].sectionName", pi);
			km_parent_refuse(b, r, pi, why, &p->section_pos, path, "%s", msg);
			return;
		}
		if (why != KSM_R_ACCEPTED) {
			/* The first refusal explains a parentRef no listener takes. */
			if (first == KSM_R_ACCEPTED) {
				first = why;
				snprintf(first_msg, sizeof(first_msg), "%s", msg);
			}
			/* Said once per route: a listener it would have had, left out. */
			if (why == KSM_R_UNSUPPORTED_VALUE)
				skipped[n_skipped < 64 ? n_skipped++ : 63] = i;
			continue;
		}
		hits++;
		for (j = 0; j < g->n_addrs; j++)
			if (add_target(b, t, n, &g->addrs[j], l->port, "Gateway %s/%s:%s", p->ns,
				       p->name, l->name))
				return;
	}
	if (hits) {
		for (j = 0; j < n_skipped; j++) {
			km_listener_admits(b->s, g, &g->listeners[skipped[j]], r, msg, sizeof(msg));
			km_route_diag(b, true, r, &p->pos, path, "not programmed on %s", msg);
		}
		return;
	}
	if (*p->section) {
		snprintf(path, sizeof(path), "spec.parentRefs[%zu].sectionName", pi);
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->section_pos, path,
				 "Gateway %s/%s has no listener named '%s'", p->ns, p->name,
				 p->section);
	} else if (first != KSM_R_ACCEPTED) {
		snprintf(msg, sizeof(msg), " on port %u", p->port);
		km_parent_refuse(b, r, pi, first, &p->pos, path, "no listener of Gateway %s/%s%s "
				 "takes it: %s", p->ns, p->name, p->port ? msg : "", first_msg);
	} else if (p->port) {
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Gateway %s/%s has no listener on port %u", p->ns, p->name,
				 p->port);
	} else {
		km_parent_refuse(b, r, pi, KSM_R_NOT_ALLOWED_BY_LISTENERS, &p->pos, path,
				 "Gateway %s/%s has no listener", p->ns, p->name);
	}
}

static void service_targets(struct km_build *b, const struct km_route *r, size_t pi,
			    struct km_target **t, size_t *n)
{
	const struct km_parent_ref *p = &r->parents[pi];
	const struct km_service *s;
	uint8_t proto = r->kind->proto;
	char path[64], note[PATH_MAX + 64];
	size_t i, j, hits = 0;

	snprintf(path, sizeof(path), "spec.parentRefs[%zu]", pi);
	if (strcmp(p->ns, r->m.ns)) {
		km_parent_refuse(b, r, pi, KSM_R_UNSUPPORTED_VALUE, &p->pos, path,
				 "consumer route (route namespace %s, Service namespace %s) cannot be "
				 "honoured: it must apply only to clients in namespace %s, and ksplit "
				 "cannot tell client namespaces apart at connect(); put the route in "
				 "namespace %s (a producer route)", r->m.ns, p->ns, r->m.ns, p->ns);
		return;
	}
	s = km_find_service(b->s, p->ns, p->name);
	if (!s) {
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Service %s/%s not found%s", p->ns, p->name,
				 km_missing_note(b->s, "Service", p->ns, p->name, note, sizeof(note)));
		return;
	}
	if (s->headless || s->external_name) {
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Service %s/%s is %s and has no ClusterIP to intercept; it cannot be a "
				 "parent", p->ns, p->name,
				 s->headless ? "headless" : "ExternalName");
		return;
	}
	if (!s->n_ips) {
		km_parent_refuse(b, r, pi, KSM_R_UNSUPPORTED_VALUE, &p->pos, path,
				 "Service %s/%s has no spec.clusterIP: ksplit needs the ClusterIP the "
				 "API server assigned (use the live object, kubectl get -o yaml)",
				 p->ns, p->name);
		return;
	}
	if (!vips_safe(b, r, pi, s->ips, s->n_ips, "Service"))
		return;
	for (i = 0; i < s->n_ports; i++) {
		const struct km_svc_port *sp = &s->ports[i];

		if (p->port && sp->port != p->port)
			continue;
		if (*p->section && strcmp(sp->name, p->section))
			continue;
		if (sp->proto != proto) {
			if (p->port || *p->section) {
				km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
						 "port %u of Service %s/%s is %s, a %s needs %s",
						 sp->port, p->ns, p->name, km_proto_name(sp->proto),
						 r->m.kind, km_proto_name(proto));
				return;
			}
			continue;
		}
		hits++;
		for (j = 0; j < s->n_ips; j++)
			if (add_target(b, t, n, &s->ips[j], sp->port, "Service %s/%s:%u", p->ns,
				       p->name, sp->port))
				return;
	}
	if (hits)
		return;
	if (*p->section)
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Service %s/%s has no port named '%s'%s", p->ns, p->name,
				 p->section, p->port ? " with that port number" : "");
	else if (p->port)
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Service %s/%s has no port %u", p->ns, p->name, p->port);
	else
		km_parent_refuse(b, r, pi, KSM_R_NO_MATCHING_PARENT, &p->pos, path,
				 "Service %s/%s has no %s port", p->ns, p->name,
				 km_proto_name(proto));
}

void km_parent_targets(struct km_build *b, const struct km_route *r, size_t pi,
		       struct km_target **t, size_t *n)
{
	const struct km_parent_ref *p = &r->parents[pi];
	char path[64];

	if (!strcmp(p->group, KM_GW_GROUP) && !strcmp(p->kind, "Gateway")) {
		gateway_targets(b, r, pi, t, n);
	} else if (!*p->group && !strcmp(p->kind, "Service")) {
		service_targets(b, r, pi, t, n);
	} else if (!strcmp(p->kind, "Gateway") || !strcmp(p->kind, "Service")) {
		/* The right kind in the wrong group: say which group, not "unsupported kind". */
		snprintf(path, sizeof(path), "spec.parentRefs[%zu].group", pi);
		km_parent_refuse(b, r, pi, KSM_R_UNSUPPORTED_VALUE, &p->pos, path,
				 "a %s parent is of group %s, not '%s': %s", p->kind,
				 *p->kind == 'G' ? KM_GW_GROUP : "\"\" (core)", p->group,
				 *p->kind == 'G' ? "omit group" : "write group: \"\" or core");
	} else {
		snprintf(path, sizeof(path), "spec.parentRefs[%zu]", pi);
		km_parent_refuse(b, r, pi, KSM_R_UNSUPPORTED_VALUE, &p->pos, path,
				 "parent kind %s%s%s is not supported: use a Gateway or (mesh) "
				 "a Service", p->kind, *p->group ? " of group " : "", p->group);
	}
}
