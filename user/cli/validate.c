// SPDX-License-Identifier: BSD-2-Clause
/* `ksplit validate`: load manifests as the agent would and report, apply nothing. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "config/config.h"

/* Builds {"valid", "errors"[], "warnings"[], "services"[]}; -EINVAL when invalid. */
static int validate_json(const struct ks_load_opts *lo, const char *const *paths, size_t n,
			 struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *errs = json_object_new_array(),
			   *warns = json_object_new_array(), *svcs = json_object_new_array();
	struct ks_diags diags = {};
	struct ks_model m = {};
	size_t i, j;
	int err;

	err = ks_model_load_opts(lo, paths, n, NULL, &m, &diags);
	for (i = 0; i < diags.n; i++)
		json_object_array_add(diags.v[i].warning ? warns : errs,
				      json_object_new_string(diags.v[i].msg));
	for (i = 0; !err && i < m.n_svcs; i++) {
		const struct ksm_service *s = &m.svcs[i];
		struct json_object *so = json_object_new_object(), *groups = json_object_new_array();
		char vip[64];

		ksm_addr_fmt(&s->vip, vip, sizeof(vip));
		json_object_object_add(so, "vip", json_object_new_string(vip));
		json_object_object_add(so, "port", json_object_new_int(s->port));
		json_object_object_add(so, "protocol",
				       json_object_new_string(s->proto == IPPROTO_UDP ? "UDP" : "TCP"));
		json_object_object_add(so, "route", json_object_new_string(s->route ? s->route : ""));
		for (j = 0; j < s->n_groups; j++) {
			const struct ksm_group *g = &s->groups[j];
			struct json_object *go = json_object_new_object();
			char name[300];

			snprintf(name, sizeof(name), "%s/%s:%u", g->svc_ns, g->svc_name, g->svc_port);
			json_object_object_add(go, "backend", json_object_new_string(name));
			json_object_object_add(go, "weight", json_object_new_int64(g->weight));
			json_object_object_add(go, "endpoints", json_object_new_int64(g->n_eps));
			json_object_object_add(go, "valid", json_object_new_boolean(!g->invalid));
			json_object_array_add(groups, go);
		}
		json_object_object_add(so, "groups", groups);
		json_object_array_add(svcs, so);
	}
	json_object_object_add(o, "valid", json_object_new_boolean(!err));
	json_object_object_add(o, "errors", errs);
	json_object_object_add(o, "warnings", warns);
	json_object_object_add(o, "services", svcs);
	ks_model_free(&m);
	ks_diags_free(&diags);
	*out = o;
	return err ? -EINVAL : 0;
}

static void validate_text(FILE *f, struct json_object *o)
{
	struct json_object *errs, *warns, *svcs, *valid;
	size_t i, j;

	json_object_object_get_ex(o, "errors", &errs);
	json_object_object_get_ex(o, "warnings", &warns);
	json_object_object_get_ex(o, "services", &svcs);
	json_object_object_get_ex(o, "valid", &valid);
	for (i = 0; i < json_object_array_length(errs); i++)
		fprintf(f, "error: %s\n", json_object_get_string(json_object_array_get_idx(errs, i)));
	for (i = 0; i < json_object_array_length(warns); i++)
		fprintf(f, "warning: %s\n",
			json_object_get_string(json_object_array_get_idx(warns, i)));
	for (i = 0; i < json_object_array_length(svcs); i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i), *groups;
		const char *vip = json_object_get_string(json_object_object_get(s, "vip"));

		fprintf(f, "%s:%d/%s <- %s\n", vip,
			json_object_get_int(json_object_object_get(s, "port")),
			json_object_get_string(json_object_object_get(s, "protocol")),
			json_object_get_string(json_object_object_get(s, "route")));
		json_object_object_get_ex(s, "groups", &groups);
		for (j = 0; j < json_object_array_length(groups); j++) {
			struct json_object *g = json_object_array_get_idx(groups, j);

			fprintf(f, "  %-40s weight %-8lld endpoints %lld%s\n",
				json_object_get_string(json_object_object_get(g, "backend")),
				(long long)json_object_get_int64(json_object_object_get(g, "weight")),
				(long long)json_object_get_int64(json_object_object_get(g, "endpoints")),
				json_object_get_boolean(json_object_object_get(g, "valid")) ? ""
											   : " (invalid: share refused)");
		}
	}
	fprintf(f, "%s: %zu error(s), %zu warning(s), %zu service(s)\n",
		json_object_get_boolean(valid) ? "valid" : "invalid", json_object_array_length(errs),
		json_object_array_length(warns), json_object_array_length(svcs));
}

int do_validate(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct ks_load_opts lo = {};
	struct json_object *o = NULL;
	int err, rc;

	if (cli_opts(cmd, argc, argv, NULL, NULL, &lo.allow_loopback_vips, &rc))
		return rc;
	if (optind >= argc)
		return p_err("no PATH given");
	/* Invalid manifests are the report itself ("valid": false), not a CLI error. */
	err = validate_json(&lo, (const char *const *)&argv[optind], argc - optind, &o);
	cli_emit(o, validate_text);
	json_object_put(o);
	return err ? 1 : 0;
}
