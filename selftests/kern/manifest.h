/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Manifests for the tests (everything in namespace t) and their apply
 * through the library, as the agent does it.
 */
#ifndef KSPLIT_KT_MANIFEST_H
#define KSPLIT_KT_MANIFEST_H

#include <stddef.h>

#include "env.h"

/* Growable string for manifests. */
struct kt_buf {
	char *s;
	size_t len, cap;
};

/* Endpoint lists are space-separated addresses, each optionally suffixed
 * "=notready" or "=terminating". */
void kt_buf_printf(struct kt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kt_buf_free(struct kt_buf *b);
/* Gateway t/name; addrs "127.10.0.1 fd00:10::a", listeners "http:HTTP:80 udp:UDP:80". */
void kt_yaml_gateway(struct kt_buf *b, const char *name, const char *addrs, const char *listeners);
/* Service t/name with ports tcp+udp `port` -> 8080, no ClusterIP unless cluster_ips. */
void kt_yaml_service(struct kt_buf *b, const char *name, int port, const char *cluster_ips);
/* EndpointSlice for t/svc of family "IPv4"/"IPv6" with ports tcp+udp 8080. */
void kt_yaml_slice(struct kt_buf *b, const char *svc, const char *family, const char *eps);
/* A route in t: kind TCPRoute/UDPRoute/HTTPRoute, parent "gw/tcp" (Gateway/section) or "svc:NAME",
 * backends "v1=25 v2=75" (port 80). */
void kt_yaml_route(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		   const char *backends);
/* Same with one metadata annotation line, e.g. "ksplit.io/empty-group: reject". */
void kt_yaml_route_ann(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		       const char *backends, const char *annotation);

/* The A/B shape most tests use: Gateway t/gw on 127.10.0.1 (listener http:HTTP:80) and
 * Services v1 and v2 with their IPv4 slices; the caller adds the route. */
void kt_yaml_ab(struct kt_buf *b, const char *v1_eps, const char *v2_eps);

/* ks_model_load_buffers -> ks_image_build -> ks_dp_apply, as the agent does. */
int kt_apply_yaml(struct kt_env *e, const char *yaml);

#endif
