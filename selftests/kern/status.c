// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "status.h"
#include "cli/status.h"
#include "datapath/counters.h"

struct json_object *kt_status(struct kt_env *e)
{
	struct json_object *st = NULL;

	if (ks_status_collect(e->pin_dir, &st))
		return NULL;
	return st;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

long kt_status_field(struct json_object *o, const char *field)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, field, &v) ? (long)json_object_get_int64(v) : -1;
}

struct json_object *kt_status_svc(struct json_object *st, const char *vip, int port,
				  const char *proto)
{
	struct json_object *svcs;
	size_t i;

	if (!st || !json_object_object_get_ex(st, "services", &svcs))
		return NULL;
	for (i = 0; i < json_object_array_length(svcs); i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i);

		if (!strcmp(jstr(s, "vip"), vip) && kt_status_field(s, "port") == port &&
		    !strcmp(jstr(s, "protocol"), proto))
			return s;
	}
	return NULL;
}

long kt_status_ep(struct json_object *svc, const char *addr, int port)
{
	struct json_object *groups, *eps;
	size_t i, j;

	if (!svc || !json_object_object_get_ex(svc, "groups", &groups))
		return -1;
	for (i = 0; i < json_object_array_length(groups); i++) {
		struct json_object *g = json_object_array_get_idx(groups, i);

		if (!json_object_object_get_ex(g, "endpoints", &eps))
			continue;
		for (j = 0; j < json_object_array_length(eps); j++) {
			struct json_object *ep = json_object_array_get_idx(eps, j);

			if (!strcmp(jstr(ep, "address"), addr) &&
			    kt_status_field(ep, "port") == port)
				return kt_status_field(ep, "connections");
		}
	}
	return -1;
}

int kt_group_stats(struct kt_env *e, const char *vip, int port, uint32_t j,
		   struct ks_group_stats *out)
{
	struct ks_counters c;
	uint32_t addr;
	size_t i;
	int err = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, vip, &addr) != 1 || ks_counters_read_ex(e->pin_dir, 0, &c))
		return -EINVAL;
	for (i = 0; i < c.n_svcs; i++) {
		const struct ks_svc_counters *s = &c.svcs[i];

		if (s->key.family == KS_FAMILY_V4 && s->key.addr[0] == addr &&
		    s->key.port == htons(port) && s->key.proto == IPPROTO_TCP &&
		    j < s->svc.n_groups) {
			*out = s->gstats[j];
			err = 0;
		}
	}
	ks_counters_free(&c);
	return err;
}
