// SPDX-License-Identifier: BSD-2-Clause
/*
 * `ksplit validate`: load manifests as the agent would and report, apply
 * nothing. Each route gets its verdict (Gateway API's Accepted and
 * ResolvedRefs per parentRef), each service the share of connects that
 * will be refused; the text is rendered from the same JSON --json prints.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "config/config.h"
#include "image/image.h"

static struct json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *condition(const char *type, enum ksm_reason ok, enum ksm_reason r,
				     const char *msg)
{
	struct json_object *c = json_object_new_object();

	json_object_object_add(c, "type", json_object_new_string(type));
	json_object_object_add(c, "status", json_object_new_string(r == ok ? "True" : "False"));
	json_object_object_add(c, "reason", json_object_new_string(ksm_reason_name(r)));
	json_object_object_add(c, "message", json_object_new_string(msg ? msg : ""));
	return c;
}

/* One route's verdict, shaped like a route's status.parents[]. */
static struct json_object *route_json(const struct ksm_route_status *rs)
{
	struct json_object *o = json_object_new_object(), *parents = json_object_new_array();
	size_t i;

	json_object_object_add(o, "kind", json_object_new_string(rs->kind));
	json_object_object_add(o, "namespace", json_object_new_string(rs->ns));
	json_object_object_add(o, "name", json_object_new_string(rs->name));
	json_object_object_add(o, "source", json_object_new_string(rs->source));
	json_object_object_add(o, "accepted", json_object_new_boolean(ksm_route_accepted(rs)));
	json_object_object_add(o, "refused", jstr(rs->refused));
	json_object_object_add(o, "lastGoodKept", json_object_new_boolean(rs->kept));
	json_object_object_add(o, "weightTotal", json_object_new_int64(rs->weight_total));
	json_object_object_add(o, "weightRefused", json_object_new_int64(rs->weight_refused));
	for (i = 0; i < rs->n_parents; i++) {
		const struct ksm_parent_status *p = &rs->parents[i];
		struct json_object *po = json_object_new_object(), *ref = json_object_new_object(),
				   *conds = json_object_new_array();

		json_object_object_add(ref, "group", json_object_new_string(p->group));
		json_object_object_add(ref, "kind", json_object_new_string(p->kind));
		json_object_object_add(ref, "namespace", json_object_new_string(p->ns));
		json_object_object_add(ref, "name", json_object_new_string(p->name));
		if (*p->section)
			json_object_object_add(ref, "sectionName", json_object_new_string(p->section));
		if (p->port)
			json_object_object_add(ref, "port", json_object_new_int(p->port));
		json_object_object_add(po, "parentRef", ref);
		json_object_array_add(conds, condition("Accepted", KSM_R_ACCEPTED, p->accepted,
						       p->accepted_msg));
		/* A route refused as an object had no backendRef judged. */
		if (!rs->refused)
			json_object_array_add(conds, condition("ResolvedRefs", KSM_R_RESOLVED_REFS,
							       p->resolved, p->resolved_msg));
		json_object_object_add(po, "conditions", conds);
		json_object_object_add(po, "programmed", json_object_new_int64(p->n_programmed));
		json_object_array_add(parents, po);
	}
	json_object_object_add(o, "parents", parents);
	return o;
}

/* "10.0.0.1:80", "[fd00::1]:80". */
static void fmt_vip_port(const struct ksm_service *s, char *buf, size_t len)
{
	char vip[64];

	ksm_addr_fmt(&s->vip, vip, sizeof(vip));
	snprintf(buf, len, s->vip.family == KS_FAMILY_V6 ? "[%s]:%u" : "%s:%u", vip, s->port);
}

/*
 * One service: its groups with listed and eligible endpoints, and the share
 * of connects refused (invalid backendRefs, and groups without an eligible
 * endpoint unless the route shifts their weight). *refused: whether any is.
 */
static struct json_object *service_json(const struct ksm_service *s, bool *refused)
{
	struct json_object *so = json_object_new_object(), *groups = json_object_new_array(),
			   *reasons = json_object_new_array();
	bool shift = s->ann_empty_group && !strcmp(s->ann_empty_group, "shift");
	uint64_t total = 0, bad = 0;
	char addr[80];
	size_t j, k;

	fmt_vip_port(s, addr, sizeof(addr));
	json_object_object_add(so, "address", json_object_new_string(addr));
	ksm_addr_fmt(&s->vip, addr, sizeof(addr));
	json_object_object_add(so, "vip", json_object_new_string(addr));
	json_object_object_add(so, "port", json_object_new_int(s->port));
	json_object_object_add(so, "protocol",
			       json_object_new_string(s->proto == IPPROTO_UDP ? "UDP" : "TCP"));
	json_object_object_add(so, "route", json_object_new_string(s->route ? s->route : ""));
	json_object_object_add(so, "parent", json_object_new_string(s->parent ? s->parent : ""));
	for (j = 0; j < s->n_groups; j++)
		total += s->groups[j].weight;
	for (j = 0; j < s->n_groups; j++) {
		const struct ksm_group *g = &s->groups[j];
		struct json_object *go = json_object_new_object();
		const char *why = NULL;
		size_t elig = 0;
		char name[300];

		for (k = 0; k < g->n_eps; k++)
			elig += ksi_eligible(ksi_endpoint_flags(&g->eps[k]));
		snprintf(name, sizeof(name), "%s/%s:%u", g->svc_ns, g->svc_name, g->svc_port);
		/* A weight-0 group has no share to refuse. */
		if (g->invalid && g->weight)
			why = ksm_reason_name(ksm_invalid_reason(g->invalid));
		else if (!elig && !shift && g->weight)
			why = "NoEligibleEndpoints";
		if (why) {
			bad += g->weight;
			json_object_array_add(reasons, json_object_new_string(why));
		}
		json_object_object_add(go, "backend", json_object_new_string(name));
		json_object_object_add(go, "weight", json_object_new_int64(g->weight));
		json_object_object_add(go, "sharePercent",
				       json_object_new_double(total ? 100.0 * g->weight / total : 0));
		json_object_object_add(go, "endpointsListed", json_object_new_int64(g->n_eps));
		json_object_object_add(go, "endpointsEligible", json_object_new_int64(elig));
		json_object_object_add(go, "valid", json_object_new_boolean(!g->invalid));
		json_object_object_add(go, "refused", jstr(why));
		json_object_object_add(go, "reason", jstr(g->reason));
		json_object_array_add(groups, go);
	}
	json_object_object_add(so, "refusedPercent",
			       json_object_new_double(total ? 100.0 * bad / total : 100));
	json_object_object_add(so, "refusedReasons", reasons);
	json_object_object_add(so, "groups", groups);
	*refused = bad || !total;
	return so;
}

/*
 * Builds {"valid", "accepted", "errors"[], "warnings"[], "routes"[],
 * "services"[]}. 1 when validation fails: an error, a route not accepted,
 * or (strict) a refused share; 0 when it passes; -errno when loading failed.
 */
static int validate_json(const struct ks_load_opts *lo, bool strict, const char *const *paths,
			 size_t n, struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *errs = json_object_new_array(),
			   *warns = json_object_new_array(), *svcs = json_object_new_array(),
			   *routes = json_object_new_array();
	struct ks_diags diags = {};
	struct ks_model m = {};
	size_t i, not_accepted = 0, refused = 0;
	bool r;
	int err;

	err = ks_model_load_opts(lo, paths, n, NULL, &m, &diags);
	for (i = 0; i < diags.n; i++)
		json_object_array_add(diags.v[i].warning ? warns : errs,
				      json_object_new_string(diags.v[i].msg));
	for (i = 0; i < m.n_routes; i++) {
		not_accepted += !ksm_route_accepted(&m.routes[i]);
		json_object_array_add(routes, route_json(&m.routes[i]));
	}
	for (i = 0; i < m.n_svcs; i++) {
		json_object_array_add(svcs, service_json(&m.svcs[i], &r));
		refused += r;
	}
	if (err) {
		json_object_array_add(errs, json_object_new_string(strerror(-err)));
	}
	r = !err && !diags.n_errors && !not_accepted;
	json_object_object_add(o, "valid", json_object_new_boolean(r));
	json_object_object_add(o, "strict", json_object_new_boolean(strict));
	json_object_object_add(o, "routesNotAccepted", json_object_new_int64(not_accepted));
	json_object_object_add(o, "servicesWithRefusedShare", json_object_new_int64(refused));
	json_object_object_add(o, "errors", errs);
	json_object_object_add(o, "warnings", warns);
	json_object_object_add(o, "routes", routes);
	json_object_object_add(o, "services", svcs);
	ks_model_free(&m);
	ks_diags_free(&diags);
	*out = o;
	if (err)
		return err;
	return !r || (strict && refused) ? 1 : 0;
}

static const char *sget(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static long long iget(struct json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static void route_text(FILE *f, struct json_object *r)
{
	struct json_object *parents = json_object_object_get(r, "parents");
	size_t i, j;

	fprintf(f, "%s %s/%s (%s): %s%s\n", sget(r, "kind"), sget(r, "namespace"), sget(r, "name"),
		sget(r, "source"),
		json_object_get_boolean(json_object_object_get(r, "accepted")) ? "accepted"
									      : "NOT accepted",
		json_object_get_boolean(json_object_object_get(r, "lastGoodKept")) ?
		"; its last good version stays in force" : "");
	if (sget(r, "refused"))
		fprintf(f, "  refused: %s\n", sget(r, "refused"));
	for (i = 0; i < json_object_array_length(parents); i++) {
		struct json_object *p = json_object_array_get_idx(parents, i);
		struct json_object *ref = json_object_object_get(p, "parentRef");
		struct json_object *conds = json_object_object_get(p, "conditions");

		fprintf(f, "  parent %s %s/%s%s%s: %lld programmed\n", sget(ref, "kind"),
			sget(ref, "namespace"), sget(ref, "name"), sget(ref, "sectionName") ? ":" : "",
			sget(ref, "sectionName") ? sget(ref, "sectionName") : "", iget(p, "programmed"));
		for (j = 0; j < json_object_array_length(conds); j++) {
			struct json_object *c = json_object_array_get_idx(conds, j);

			fprintf(f, "    %s=%s %s%s%s\n", sget(c, "type"), sget(c, "status"),
				sget(c, "reason"), *sget(c, "message") ? ": " : "", sget(c, "message"));
		}
	}
}

static void service_text(FILE *f, struct json_object *s)
{
	struct json_object *groups = json_object_object_get(s, "groups");
	struct json_object *reasons = json_object_object_get(s, "refusedReasons");
	double pct = json_object_get_double(json_object_object_get(s, "refusedPercent"));
	size_t j;

	fprintf(f, "%s/%s <- %s\n", sget(s, "address"), sget(s, "protocol"), sget(s, "route"));
	if (pct > 0) {
		fprintf(f, "  !! %.4g%% of connects will be refused:", pct);
		for (j = 0; j < json_object_array_length(reasons); j++)
			fprintf(f, "%s %s", j ? "," : "",
				json_object_get_string(json_object_array_get_idx(reasons, j)));
		fputc('\n', f);
	}
	for (j = 0; j < json_object_array_length(groups); j++) {
		struct json_object *g = json_object_array_get_idx(groups, j);

		fprintf(f, "  %-40s weight %-8lld %5.1f%%  endpoints %lld of %lld eligible%s%s\n",
			sget(g, "backend"), iget(g, "weight"),
			json_object_get_double(json_object_object_get(g, "sharePercent")),
			iget(g, "endpointsEligible"), iget(g, "endpointsListed"),
			sget(g, "refused") ? "  refused: " : "",
			sget(g, "refused") ? sget(g, "refused") : "");
	}
}

static void validate_text(FILE *f, struct json_object *o)
{
	struct json_object *errs, *warns, *svcs, *routes;
	size_t i;

	json_object_object_get_ex(o, "errors", &errs);
	json_object_object_get_ex(o, "warnings", &warns);
	json_object_object_get_ex(o, "services", &svcs);
	json_object_object_get_ex(o, "routes", &routes);
	for (i = 0; i < json_object_array_length(errs); i++)
		fprintf(f, "error: %s\n", json_object_get_string(json_object_array_get_idx(errs, i)));
	for (i = 0; i < json_object_array_length(warns); i++)
		fprintf(f, "warning: %s\n",
			json_object_get_string(json_object_array_get_idx(warns, i)));
	for (i = 0; i < json_object_array_length(routes); i++)
		route_text(f, json_object_array_get_idx(routes, i));
	for (i = 0; i < json_object_array_length(svcs); i++)
		service_text(f, json_object_array_get_idx(svcs, i));
	fprintf(f, "%s: %zu error(s), %zu warning(s), %zu route(s) of which %lld not accepted, "
		"%zu service(s) of which %lld with a refused share\n",
		json_object_get_boolean(json_object_object_get(o, "valid")) ? "valid" : "invalid",
		json_object_array_length(errs), json_object_array_length(warns),
		json_object_array_length(routes), iget(o, "routesNotAccepted"),
		json_object_array_length(svcs), iget(o, "servicesWithRefusedShare"));
}

int do_validate(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "strict", no_argument, NULL, 's' },
		{ "allow-loopback-vips", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ks_load_opts lo = {};
	struct json_object *o = NULL;
	bool strict = false;
	int c, rc;

	while ((c = cli_getopt(argc, argv, ":jh", opts)) != -1) {
		switch (c) {
		case 'j': json_output = true; break;
		case 's': strict = true; break;
		case 'L': lo.allow_loopback_vips = true; break;
		case 'h': return cli_cmd_help(cmd);
		default: return 1;
		}
	}
	if (optind >= argc)
		return p_err("no PATH given");
	/* Invalid manifests are the report itself ("valid": false), not a CLI error. */
	rc = validate_json(&lo, strict, (const char *const *)&argv[optind], argc - optind, &o);
	cli_emit(o, validate_text);
	json_object_put(o);
	return rc ? 1 : 0;
}
