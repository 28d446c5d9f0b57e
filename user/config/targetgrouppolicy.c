// SPDX-License-Identifier: BSD-2-Clause
/* TargetGroupPolicy: the health check of a Service (AWS VPC Lattice defaults). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/codes.h"
#include "config/kinds.h"

/* The prober's own parser and rule (common/codes.h), so both accept the same lists. */
static void check_status_match(struct km_ctx *c, const struct ky_node *hc, const char **sm)
{
	const struct ky_node *v = ky_map_get(hc, "statusMatch");
	int err = ks_codes_parse(*sm, NULL, NULL, 0);

	if (!err)
		return;
	if (err == -E2BIG)
		km_err_field(c, v, "statusMatch", "'%s': at most %d codes or ranges are allowed",
			     *sm, KS_CODES_MAX);
	else
		km_err_field(c, v, "statusMatch",
			     "'%s' is not a list of HTTP codes or ranges like \"200\", "
			     "\"200-299\" or \"200,204,301-302\"", *sm);
	*sm = "200";
}

void km_policy_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	static const char *const spec_keys[] = { "targetRef", "protocol", "protocolVersion",
		"healthCheck", NULL };
	static const char *const ref_keys[] = { "group", "kind", "name", "namespace", NULL };
	static const char *const hc_keys[] = { "enabled", "intervalSeconds", "timeoutSeconds",
		"healthyThresholdCount", "unhealthyThresholdCount", "statusMatch", "path", "port",
		"protocol", "protocolVersion", NULL };
	static const char *const protos[] = { "HTTP", "HTTPS", NULL };
	/* "TCP" (connect only) is a ksplit extension, for the check alone: same indices first. */
	static const char *const hc_protos[] = { "HTTP", "HTTPS", "TCP", NULL };
	static const char *const versions[] = { "HTTP1", "HTTP2", NULL };
	const struct ky_node *spec = doc->spec, *ref, *hc;
	struct km_policy *p = obj;
	struct ksm_health *h = &p->h;
	const char *group = "", *kind = NULL, *sm = "200", *path = "/";
	int proto = 0, ver = 0;
	long long x;
	size_t m;

	km_push(c, "spec");
	km_check_keys(c, spec, spec_keys);
	ref = km_get_map(c, spec, "targetRef", true);
	if (ref) {
		m = km_push(c, "targetRef");
		km_check_keys(c, ref, ref_keys);
		km_get_str(c, ref, "group", false, &group);
		if (*group && strcmp(group, "core"))
			km_err_field(c, ky_map_get(ref, "group"), "group",
				     "'%s': only Services (group \"\") can be targeted", group);
		if (!km_get_str(c, ref, "kind", true, &kind) && kind && strcmp(kind, "Service"))
			km_err_field(c, ky_map_get(ref, "kind"), "kind",
				     "'%s': only kind Service can be targeted", kind);
		km_dup_str(c, ref, "name", true, NULL, &h->svc_name);
		km_dup_str(c, ref, "namespace", false, p->m.ns, &h->svc_ns);
		p->target_pos.line = ref->line;
		p->target_pos.col = ref->col;
		km_pop(c, m);
	}
	km_get_enum(c, spec, "protocol", false, protos, &proto);
	km_get_enum(c, spec, "protocolVersion", false, versions, &ver);
	h->enabled = true;
	h->interval_s = 30;
	h->timeout_s = 5;
	h->healthy_threshold = 5;
	h->unhealthy_threshold = 2;
	hc = km_get_map(c, spec, "healthCheck", false);
	if (hc) {
		m = km_push(c, "healthCheck");
		km_check_keys(c, hc, hc_keys);
		km_get_bool(c, hc, "enabled", &h->enabled, NULL);
		if (!km_get_int(c, hc, "intervalSeconds", false, 5, 300, &x, NULL) &&
		    km_field(hc, "intervalSeconds"))
			h->interval_s = (uint32_t)x;
		if (!km_get_int(c, hc, "timeoutSeconds", false, 1, 120, &x, NULL) &&
		    km_field(hc, "timeoutSeconds"))
			h->timeout_s = (uint32_t)x;
		if (!km_get_int(c, hc, "healthyThresholdCount", false, 2, 10, &x, NULL) &&
		    km_field(hc, "healthyThresholdCount"))
			h->healthy_threshold = (uint32_t)x;
		if (!km_get_int(c, hc, "unhealthyThresholdCount", false, 2, 10, &x, NULL) &&
		    km_field(hc, "unhealthyThresholdCount"))
			h->unhealthy_threshold = (uint32_t)x;
		if (!km_get_str(c, hc, "statusMatch", false, &sm))
			check_status_match(c, hc, &sm);
		if (!km_get_str(c, hc, "path", false, &path) && path[0] != '/') {
			km_err_field(c, ky_map_get(hc, "path"), "path", "'%s' must start with '/'", path);
			path = "/";
		}
		km_get_port(c, hc, "port", false, &h->port, NULL);
		km_get_enum(c, hc, "protocol", false, hc_protos, &proto);
		km_get_enum(c, hc, "protocolVersion", false, versions, &ver);
		km_pop(c, m);
	}
	h->status_match = km_strdup(c, sm);
	h->path = km_strdup(c, path);
	h->protocol = km_strdup(c, hc_protos[proto]);
	h->protocol_version = km_strdup(c, versions[ver]);
}


void km_policy_free(void *obj)
{
	ksm_health_free(&((struct km_policy *)obj)->h);
}
