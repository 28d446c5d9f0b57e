// SPDX-License-Identifier: BSD-2-Clause
/*
 * The resources ks-apiserver serves and their discovery documents
 * (APIVersions, APIGroupList, APIGroup, APIResourceList), in the shapes
 * kubectl's and client-go's discovery clients decode.
 */
#include <stdio.h>
#include <string.h>
#include "apiserver.h"

static struct storage st_services, st_namespaces, st_endpoints, st_slices, st_gateways,
	st_gwclasses, st_httproutes, st_grpcroutes, st_refgrants, st_tcproutes, st_udproutes,
	st_tlsroutes, st_tgp, st_leases;

#define GW "gateway.networking.k8s.io"

/* Group order is discovery order; a group's first version is its preferred one. */
static struct resdef res[] = {
	{ "", "v1", "services", "service", "Service", "svc", true, true, false, &st_services },
	{ "", "v1", "namespaces", "namespace", "Namespace", "ns", false, true, false, &st_namespaces },
	{ "", "v1", "endpoints", "endpoints", "Endpoints", "ep", true, false, false, &st_endpoints },
	{ "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", NULL, true,
	  false, false, &st_slices },
	{ "coordination.k8s.io", "v1", "leases", "lease", "Lease", NULL, true, false, false, &st_leases },
	{ GW, "v1", "gateways", "gateway", "Gateway", "gtw", true, true, false, &st_gateways },
	{ GW, "v1", "gatewayclasses", "gatewayclass", "GatewayClass", "gc", false, true, false,
	  &st_gwclasses },
	{ GW, "v1", "httproutes", "httproute", "HTTPRoute", NULL, true, true, false, &st_httproutes },
	{ GW, "v1", "grpcroutes", "grpcroute", "GRPCRoute", NULL, true, true, false, &st_grpcroutes },
	{ GW, "v1beta1", "referencegrants", "referencegrant", "ReferenceGrant", "refgrant", true, false,
	  false, &st_refgrants },
	{ GW, "v1beta1", "httproutes", "httproute", "HTTPRoute", NULL, true, true, false,
	  &st_httproutes },
	{ GW, "v1alpha2", "tcproutes", "tcproute", "TCPRoute", NULL, true, true, false, &st_tcproutes },
	{ GW, "v1alpha2", "udproutes", "udproute", "UDPRoute", NULL, true, true, false, &st_udproutes },
	{ GW, "v1alpha2", "tlsroutes", "tlsroute", "TLSRoute", NULL, true, true, false, &st_tlsroutes },
	{ "application-networking.k8s.aws", "v1alpha1", "targetgrouppolicies", "targetgrouppolicy",
	  "TargetGroupPolicy", NULL, true, true, false, &st_tgp },
};
#define NRES (sizeof(res) / sizeof(res[0]))

struct resdef *res_find(const char *group, const char *version, const char *resource)
{
	for (size_t i = 0; i < NRES; i++)
		if (!strcmp(res[i].group, group) && !strcmp(res[i].version, version) &&
		    !strcmp(res[i].resource, resource))
			return &res[i];
	return NULL;
}

/* By an object's apiVersion ("v1", "G/V") and kind. */
struct resdef *res_find_kind(const char *api_version, const char *kind)
{
	const char *slash = strchr(api_version, '/');

	for (size_t i = 0; i < NRES; i++) {
		size_t glen = slash ? (size_t)(slash - api_version) : 0;

		if (strcmp(res[i].kind, kind) || strlen(res[i].group) != glen ||
		    strncmp(res[i].group, api_version, glen) ||
		    strcmp(res[i].version, slash ? slash + 1 : api_version))
			continue;
		return &res[i];
	}
	return NULL;
}

/* "G/V/R" from the control API; the core group may be written "core" or "". */
struct resdef *res_find_gvr(const char *gvr)
{
	char g[128], v[64], r[128];

	if (sscanf(gvr, "%127[^/]/%63[^/]/%127s", g, v, r) == 3)
		return res_find(strcmp(g, "core") ? g : "", v, r);
	if (sscanf(gvr, "/%63[^/]/%127s", v, r) == 2)
		return res_find("", v, r);
	return NULL;
}

const char *res_api_version(const struct resdef *r, char *buf, size_t len)
{
	if (!*r->group)
		return r->version;
	snprintf(buf, len, "%s/%s", r->group, r->version);
	return buf;
}

/* kubectl's spelling: "services", "httproutes.gateway.networking.k8s.io/status". */
void res_stat_name(const struct resdef *r, const char *sub, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", r->resource, *r->group ? "." : "", r->group, sub ? "/" : "",
		 sub ? sub : "");
}

json_object *disc_api_versions(const char *addr)
{
	json_object *o = json_object_new_object(), *v = json_object_new_array(),
		    *cidrs = json_object_new_array(), *c = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("APIVersions"));
	json_object_array_add(v, json_object_new_string("v1"));
	json_object_object_add(o, "versions", v);
	json_object_object_add(c, "clientCIDR", json_object_new_string("0.0.0.0/0"));
	json_object_object_add(c, "serverAddress", json_object_new_string(addr));
	json_object_array_add(cidrs, c);
	json_object_object_add(o, "serverAddressByClientCIDRs", cidrs);
	return o;
}

static bool version_enabled(const char *group, const char *version)
{
	for (size_t i = 0; i < NRES; i++)
		if (!strcmp(res[i].group, group) && !strcmp(res[i].version, version) &&
		    !res[i].disabled)
			return true;
	return false;
}

static json_object *gv_obj(const char *group, const char *version)
{
	json_object *o = json_object_new_object();
	char gv[256];

	snprintf(gv, sizeof(gv), "%s/%s", group, version);
	json_object_object_add(o, "groupVersion", json_object_new_string(gv));
	json_object_object_add(o, "version", json_object_new_string(version));
	return o;
}

/* A group with its enabled versions, or NULL when every version is disabled. */
static json_object *group_obj(const char *group)
{
	json_object *o, *versions = json_object_new_array(), *pref = NULL;

	for (size_t i = 0; i < NRES; i++) {
		bool seen = false;

		if (strcmp(res[i].group, group) || !version_enabled(group, res[i].version))
			continue;
		for (size_t j = 0; j < i; j++)
			seen |= !strcmp(res[j].group, group) && !strcmp(res[j].version, res[i].version);
		if (seen)
			continue;
		json_object_array_add(versions, gv_obj(group, res[i].version));
		if (!pref)
			pref = gv_obj(group, res[i].version);
	}
	if (!pref) {
		json_object_put(versions);
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(group));
	json_object_object_add(o, "versions", versions);
	json_object_object_add(o, "preferredVersion", pref);
	return o;
}

json_object *disc_group(const char *group)
{
	json_object *o = *group ? group_obj(group) : NULL;

	if (o) {
		/* An APIGroup document carries kind/apiVersion first, as the server sends it. */
		json_object *d = json_object_new_object();

		json_object_object_add(d, "kind", json_object_new_string("APIGroup"));
		json_object_object_add(d, "apiVersion", json_object_new_string("v1"));
		json_object_object_foreach(o, k, v)
			json_object_object_add(d, k, json_object_get(v));
		json_object_put(o);
		o = d;
	}
	return o;
}

json_object *disc_group_list(void)
{
	json_object *o = json_object_new_object(), *groups = json_object_new_array();

	json_object_object_add(o, "kind", json_object_new_string("APIGroupList"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	for (size_t i = 0; i < NRES; i++) {
		bool seen = false;
		json_object *g;

		if (!*res[i].group)
			continue;
		for (size_t j = 0; j < i; j++)
			seen |= !strcmp(res[j].group, res[i].group);
		if (!seen && (g = group_obj(res[i].group)))
			json_object_array_add(groups, g);
	}
	json_object_object_add(o, "groups", groups);
	return o;
}

static json_object *verbs(bool sub)
{
	static const char *const all[] = { "create", "delete", "deletecollection", "get", "list",
					   "patch", "update", "watch" };
	static const char *const status[] = { "get", "patch", "update" };
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < (sub ? 3 : sizeof(all) / sizeof(all[0])); i++)
		json_object_array_add(a, json_object_new_string(sub ? status[i] : all[i]));
	return a;
}

static json_object *resource_obj(const struct resdef *r, bool sub)
{
	json_object *o = json_object_new_object();
	char name[160];

	snprintf(name, sizeof(name), "%s%s", r->resource, sub ? "/status" : "");
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "singularName", json_object_new_string(sub ? "" : r->singular));
	json_object_object_add(o, "namespaced", json_object_new_boolean(r->namespaced));
	json_object_object_add(o, "kind", json_object_new_string(r->kind));
	json_object_object_add(o, "verbs", verbs(sub));
	if (r->shortname && !sub) {
		json_object *s = json_object_new_array();

		json_object_array_add(s, json_object_new_string(r->shortname));
		json_object_object_add(o, "shortNames", s);
	}
	return o;
}

/* NULL when no enabled resource has this group/version: the caller answers 404. */
json_object *disc_resource_list(const char *group, const char *version)
{
	json_object *o, *list;
	char gv[256];

	if (!version_enabled(group, version))
		return NULL;
	o = json_object_new_object();
	list = json_object_new_array();
	json_object_object_add(o, "kind", json_object_new_string("APIResourceList"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
	json_object_object_add(o, "groupVersion", json_object_new_string(gv));
	for (size_t i = 0; i < NRES; i++) {
		if (strcmp(res[i].group, group) || strcmp(res[i].version, version) || res[i].disabled)
			continue;
		json_object_array_add(list, resource_obj(&res[i], false));
		if (res[i].status)
			json_object_array_add(list, resource_obj(&res[i], true));
	}
	json_object_object_add(o, "resources", list);
	return o;
}

static void gv_key(const char *group, const char *version, char *buf, size_t len)
{
	if (*group)
		snprintf(buf, len, "apis/%s/%s", group, version);
	else
		snprintf(buf, len, "api/%s", version);
}

/*
 * OpenAPI v3, only as far as kubectl looks before it sends a write: a PATCH
 * operation per kind that takes fieldValidation. With it, kubectl's default
 * --validate=strict leaves validation to the server (which does none)
 * instead of downloading schemas that are not here. No schemas: kubectl
 * apply then builds strategic merge patches from its compiled-in types.
 */
json_object *openapi_root(void)
{
	json_object *o = json_object_new_object(), *paths = json_object_new_object();

	for (size_t i = 0; i < NRES; i++) {
		char key[256], url[300];
		json_object *p;

		gv_key(res[i].group, res[i].version, key, sizeof(key));
		if (res[i].disabled || json_object_object_get_ex(paths, key, NULL))
			continue;
		p = json_object_new_object();
		snprintf(url, sizeof(url), "/openapi/v3/%s", key);
		json_object_object_add(p, "serverRelativeURL", json_object_new_string(url));
		json_object_object_add(paths, key, p);
	}
	json_object_object_add(o, "paths", paths);
	return o;
}

static json_object *patch_op(const struct resdef *r)
{
	json_object *op = json_object_new_object(), *gvk = json_object_new_object(),
		    *params = json_object_new_array(), *fv = json_object_new_object(),
		    *schema = json_object_new_object(), *rsp = json_object_new_object(),
		    *ok = json_object_new_object();

	json_object_object_add(gvk, "group", json_object_new_string(r->group));
	json_object_object_add(gvk, "version", json_object_new_string(r->version));
	json_object_object_add(gvk, "kind", json_object_new_string(r->kind));
	json_object_object_add(op, "x-kubernetes-group-version-kind", gvk);
	json_object_object_add(fv, "name", json_object_new_string("fieldValidation"));
	json_object_object_add(fv, "in", json_object_new_string("query"));
	json_object_object_add(schema, "type", json_object_new_string("string"));
	json_object_object_add(fv, "schema", schema);
	json_object_array_add(params, fv);
	json_object_object_add(op, "parameters", params);
	json_object_object_add(ok, "description", json_object_new_string("OK"));
	json_object_object_add(rsp, "200", ok);
	json_object_object_add(op, "responses", rsp);
	return op;
}

/* The document for one group/version ("api/v1", "apis/G/V"), or NULL. */
json_object *openapi_gv(const char *key)
{
	json_object *o = NULL, *paths = NULL;

	for (size_t i = 0; i < NRES; i++) {
		char k[256], path[512];
		json_object *item;

		gv_key(res[i].group, res[i].version, k, sizeof(k));
		if (res[i].disabled || strcmp(k, key))
			continue;
		if (!o) {
			json_object *info = json_object_new_object();

			o = json_object_new_object();
			paths = json_object_new_object();
			json_object_object_add(o, "openapi", json_object_new_string("3.0.0"));
			json_object_object_add(info, "title", json_object_new_string("ks-apiserver"));
			json_object_object_add(info, "version", json_object_new_string("v1.32.0"));
			json_object_object_add(o, "info", info);
			json_object_object_add(o, "paths", paths);
		}
		snprintf(path, sizeof(path), "/%s/%s%s/{name}", k,
			 res[i].namespaced ? "namespaces/{namespace}/" : "", res[i].resource);
		item = json_object_new_object();
		json_object_object_add(item, "patch", patch_op(&res[i]));
		json_object_object_add(paths, path, item);
	}
	return o;
}
