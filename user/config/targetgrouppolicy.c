// SPDX-License-Identifier: BSD-2-Clause
/* TargetGroupPolicy: the health check of a Service (AWS VPC Lattice defaults). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/codes.h"
#include "config/kinds.h"

/* spec.protocol and spec.protocolVersion: the target group's, indices in their tables. */
enum { TG_HTTP, TG_HTTPS, TG_TCP };
enum { TG_HTTP1, TG_HTTP2, TG_GRPC };

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

/*
 * targetRef: a Service, or a Lattice ServiceExport, which is ignored with a
 * warning (p->ignored, no svc_name, so resolution never hands it to the
 * prober). The policy's other fields are still checked.
 */
static void parse_target(struct km_ctx *c, const struct ky_node *ref, struct km_policy *p)
{
	static const char *const ref_keys[] = { "group", "kind", "name", "namespace", NULL };
	const char *group = "", *kind = NULL, *name = NULL;
	struct ksm_health *h = &p->h;
	size_t m = km_push(c, "targetRef");

	km_check_keys(c, ref, ref_keys);
	km_get_str(c, ref, "group", false, &group);
	km_get_str(c, ref, "kind", true, &kind);
	p->target_pos.line = ref->line;
	p->target_pos.col = ref->col;
	if (kind && !strcmp(kind, "ServiceExport") && !strcmp(group, KM_TGP_GROUP)) {
		km_warn_field(c, ky_map_get(ref, "kind"), "kind",
			      "ServiceExport: the policy is ignored: a Lattice multi-cluster export; "
			      "a node splitter has no target group for it");
		p->ignored = true;
		km_get_str(c, ref, "name", true, &name);
		km_pop(c, m);
		return;
	}
	if (*group && strcmp(group, "core"))
		km_err_field(c, ky_map_get(ref, "group"), "group",
			     "'%s': only Services (group \"\") can be targeted", group);
	if (kind && strcmp(kind, "Service"))
		km_err_field(c, ky_map_get(ref, "kind"), "kind",
			     "'%s': only kind Service can be targeted", kind);
	km_dup_str(c, ref, "name", true, NULL, &h->svc_name);
	km_dup_str(c, ref, "namespace", false, p->m.ns, &h->svc_ns);
	km_pop(c, m);
}

/* What Lattice would do with the traffic and ksplit does not (it places connections only). */
static void warn_traffic(struct km_ctx *c, const struct ky_node *spec, int proto, int ver)
{
	if (proto == TG_HTTPS)
		km_warn_field(c, ky_map_get(spec, "protocol"), "protocol",
			      "HTTPS: ksplit originates no TLS to the targets as Lattice does; "
			      "connections reach them as the client sent them, so clients must "
			      "speak TLS themselves");
	if (ver != TG_HTTP1 && proto != TG_TCP)
		km_warn_field(c, ky_map_get(spec, "protocolVersion"), "protocolVersion",
			      "%s: ksplit translates no protocol as Lattice does; the targets get "
			      "the client's own HTTP version", ver == TG_HTTP2 ? "HTTP2" : "GRPC");
}

void km_policy_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	static const char *const spec_keys[] = { "targetRef", "protocol", "protocolVersion",
		"healthCheck", NULL };
	static const char *const hc_keys[] = { "enabled", "intervalSeconds", "timeoutSeconds",
		"healthyThresholdCount", "unhealthyThresholdCount", "statusMatch", "path", "port",
		"protocol", "protocolVersion", NULL };
	/* Indexed by TG_*: what the CRD takes for the target group. */
	static const char *const protos[] = { "HTTP", "HTTPS", "TCP", NULL };
	static const char *const versions[] = { "HTTP1", "HTTP2", "GRPC", NULL };
	/* "TCP" (connect only) is a ksplit extension for the check; HTTP and HTTPS as Lattice. */
	static const char *const hc_protos[] = { "HTTP", "HTTPS", "TCP", NULL };
	static const char *const hc_versions[] = { "HTTP1", "HTTP2", NULL };
	const struct ky_node *spec = doc->spec, *ref, *hc;
	struct km_policy *p = obj;
	struct ksm_health *h = &p->h;
	const char *sm = "200", *path = "/";
	int proto = TG_HTTP, ver = TG_HTTP1, hc_proto = 0, hc_ver = 0;
	long long x;
	size_t m;

	km_push(c, "spec");
	km_check_keys(c, spec, spec_keys);
	ref = km_get_map(c, spec, "targetRef", true);
	if (ref)
		parse_target(c, ref, p);
	km_get_enum(c, spec, "protocol", false, protos, &proto);
	km_get_enum(c, spec, "protocolVersion", false, versions, &ver);
	warn_traffic(c, spec, proto, ver);
	/*
	 * The Lattice controller's defaults (docs/config.md has the table): a
	 * check is on only for an HTTP1 target group, never for a TCP one, and
	 * it is plain HTTP/1.1 whatever the target group speaks. Fields a
	 * healthCheck leaves unset take Lattice's own defaults, the same values.
	 */
	h->enabled = proto != TG_TCP && ver == TG_HTTP1;
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
		km_get_enum(c, hc, "protocol", false, hc_protos, &hc_proto);
		km_get_enum(c, hc, "protocolVersion", false, hc_versions, &hc_ver);
		km_pop(c, m);
	}
	h->status_match = km_strdup(c, sm);
	h->path = km_strdup(c, path);
	h->protocol = km_strdup(c, hc_protos[hc_proto]);
	h->protocol_version = km_strdup(c, hc_versions[hc_ver]);
}


void km_policy_free(void *obj)
{
	ksm_health_free(&((struct km_policy *)obj)->h);
}
