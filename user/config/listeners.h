/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Whether a Gateway listener takes a route: what its protocol carries, its
 * allowedRoutes (kinds, namespaces), and what ksplit cannot honour on it
 * (TLS termination, a hostname). Pure: the caller (parents.c) turns the
 * answer into the route's Accepted condition. Internal to config/.
 */
#ifndef KSPLIT_CONFIG_LISTENERS_H
#define KSPLIT_CONFIG_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/manifest.h"
#include "config/model.h"

/*
 * KSM_R_ACCEPTED (msg ""), or why not with the reason in msg:
 * KSM_R_NOT_ALLOWED_BY_LISTENERS (protocol, allowedRoutes.kinds or
 * .namespaces exclude r) or KSM_R_UNSUPPORTED_VALUE (TLS Terminate, a
 * hostname). s must be indexed (Namespaces are looked up in it).
 */
enum ksm_reason km_listener_admits(const struct km_set *s, const struct km_gateway *g,
				   const struct km_listener *l, const struct km_route *r,
				   char *msg, size_t len);

/* Why ksplit cannot honour l's TLS mode / its hostname: true and the text in msg, or false. */
bool km_listener_tls_why(const struct km_listener *l, char *msg, size_t len);
bool km_listener_hostname_why(const struct km_listener *l, char *msg, size_t len);

#endif /* KSPLIT_CONFIG_LISTENERS_H */
