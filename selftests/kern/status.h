/* SPDX-License-Identifier: BSD-2-Clause */
/* `ksplit status` of the test's pin dir, and look-ups in its JSON. */
#ifndef KSPLIT_KT_STATUS_H
#define KSPLIT_KT_STATUS_H

#include <json-c/json.h>

#include "env.h"

/* Status from the pinned maps; NULL on failure. */
struct json_object *kt_status(struct kt_env *e);
/* services[] entry for vip/port/proto ("TCP"/"UDP"), or NULL. */
struct json_object *kt_status_svc(struct json_object *st, const char *vip, int port,
				  const char *proto);
long kt_status_field(struct json_object *svc, const char *field);
/* Connections of endpoint addr:port across all groups of svc; -1 when absent. */
long kt_status_ep(struct json_object *svc, const char *addr, int port);
/*
 * The datapath's per-backendRef counters (ks_group_stats) of group j of the
 * TCP service at IPv4 vip:port, as the metrics read them. 0 or -ENOENT.
 */
int kt_group_stats(struct kt_env *e, const char *vip, int port, uint32_t j,
		   struct ks_group_stats *out);

#endif
