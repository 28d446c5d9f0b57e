// SPDX-License-Identifier: BSD-2-Clause
/*
 * Reads and writes of single objects (get, create, update, merge/strategic
 * patch, delete, the status subresource) and paged lists, with the errors
 * and messages the real server gives.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apiserver.h"

#define CONFLICT_MSG                                                                      \
	"Operation cannot be fulfilled on %s \"%s\": the object has been modified; please " \
	"apply your changes to the latest version and try again"

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	json_object_deep_copy(o, &c, NULL);
	return c;
}

static json_object *meta(json_object *o)
{
	json_object *md;

	if (json_object_object_get_ex(o, "metadata", &md) && json_object_is_type(md, json_type_object))
		return md;
	md = json_object_new_object();
	json_object_object_add(o, "metadata", md);
	return md;
}

static void set_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* dst.key = a copy of src.key, or no key when src has none. */
static void take(json_object *dst, json_object *src, const char *key)
{
	json_object *v;

	if (src && json_object_object_get_ex(src, key, &v))
		json_object_object_add(dst, key, copy(v));
	else
		json_object_object_del(dst, key);
}

static void strip_type(json_object *o)
{
	json_object_object_del(o, "kind");
	json_object_object_del(o, "apiVersion");
}

static int64_t generation(json_object *o)
{
	json_object *g;

	return json_object_object_get_ex(meta(o), "generation", &g) ? json_object_get_int64(g) : 0;
}

/*
 * A field of a other than metadata and status differs in b: what bumps
 * generation (spec, or the whole body of kinds without one, such as
 * EndpointSlices).
 */
static bool body_changed(json_object *a, json_object *b)
{
	json_object_object_foreach(a, k, v) {
		json_object *w = NULL;

		if (strcmp(k, "metadata") && strcmp(k, "status") &&
		    (!json_object_object_get_ex(b, k, &w) || !json_object_equal(v, w)))
			return true;
	}
	return false;
}

/* The caller's expected resourceVersion (NULL: unconditional) differs from the stored one. */
static bool rv_conflict(json_object *have, const char *want)
{
	const char *rv = obj_str(have, "metadata.resourceVersion");

	return want && *want && (!rv || strcmp(rv, want));
}

/*
 * Store next as the new version of old (entry i): identity fields stay, a spec
 * change bumps generation, and a write that changes nothing keeps the
 * resourceVersion and makes no event, as on the real server.
 */
static struct blob *store_update(struct resdef *r, size_t i, json_object *next, json_object *old)
{
	struct obj *cur = &r->st->v[i];
	json_object *md = meta(next), *omd = meta(old);
	struct blob *b;
	char rv[24];

	strip_type(next);
	for (const char *const *k = (const char *const[]){ "name", "namespace", "uid",
							    "creationTimestamp", "resourceVersion",
							    "generation", NULL };
	     *k; k++)
		take(md, omd, *k);
	if (json_object_equal(next, old)) {
		json_object_put(next);
		return cur->b;
	}
	if (body_changed(old, next) || body_changed(next, old))
		json_object_object_add(md, "generation", json_object_new_int64(generation(old) + 1));
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)next_rv());
	set_str(md, "resourceVersion", rv);
	b = st_put(r->st, cur->ns, cur->name, next, EV_MODIFIED);
	json_object_put(next);
	return b;
}

/* "R/NS/NAME[/SUB]" ("R/NAME" cluster-scoped): an object's key in stats and faults. */
static void write_key(const struct route *rt, char *buf, size_t len)
{
	const char *ns = rt->r->namespaced && rt->ns ? rt->ns : "";

	snprintf(buf, len, "%s/%s%s%s%s%s", rt->r->resource, ns, *ns ? "/" : "", rt->name,
		 rt->sub ? "/" : "", rt->sub ? rt->sub : "");
}

/* next (taken) as the new version of old, on the object or (sub) only its status. */
static struct blob *apply_next(struct resdef *r, size_t i, const char *sub, json_object *next,
			       json_object *old)
{
	if (sub) {
		/* The status subresource changes .status and nothing else. */
		json_object *only = copy(old);

		take(only, next, "status");
		json_object_put(next);
		next = only;
	} else if (r->status) {
		take(next, old, "status");
	}
	return store_update(r, i, next, old);
}

/*
 * The interpose fault: another writer's merge patch lands on the object just
 * before this write is looked at, as if it had come between the client's
 * read and its write.
 */
static void interpose(struct resdef *r, struct route *rt, size_t i)
{
	char key[512];
	json_object *patch, *old, *next;

	write_key(rt, key, sizeof(key));
	if (!(patch = control_interpose_take(key)))
		return;
	old = blob_parse(r->st->v[i].b);
	next = copy(old);
	merge_patch(next, patch, false);
	apply_next(r, i, rt->sub, next, old);
	json_object_put(old);
	json_object_put(patch);
}

enum patch_type { PATCH_MERGE, PATCH_STRATEGIC, PATCH_UNSUPPORTED };

static enum patch_type patch_type(struct MHD_Connection *c)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");

	if (ct && !strncmp(ct, "application/merge-patch+json", 28))
		return PATCH_MERGE;
	if (ct && !strncmp(ct, "application/strategic-merge-patch+json", 38))
		return PATCH_STRATEGIC;
	return PATCH_UNSUPPORTED;
}

struct err {
	unsigned code;
	const char *reason;
	char msg[512];
};

static void *fail(struct err *e, unsigned code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void *fail(struct err *e, unsigned code, const char *reason, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return NULL;
}

/*
 * Check and store a new object (POST, or one item of /_ksplit/load): the stored
 * object (the store's reference), or NULL with e filled in. pns is the path's
 * namespace or NULL.
 */
static struct blob *create_obj(struct resdef *r, const char *pns, json_object *body,
			       struct err *e)
{
	const char *name = obj_str(body, "metadata.name"), *gen = obj_str(body, "metadata.generateName");
	const char *kind = obj_str(body, "kind"), *bns = obj_str(body, "metadata.namespace");
	const char *ns = r->namespaced ? (pns ? pns : bns ? bns : "default") : "";
	char stat[256], buf[256], uid[40], ts[32], rv[24];
	struct blob *b;
	json_object *md;

	res_stat_name(r, NULL, stat, sizeof(stat));
	if (kind && strcmp(kind, r->kind))
		return fail(e, 400, "BadRequest", "the kind of the provided object (%s) does not match "
			    "the resource %s: send kind %s", kind, stat, r->kind);
	if (r->namespaced && pns && bns && strcmp(bns, pns))
		return fail(e, 400, "BadRequest", "the namespace of the provided object does not "
			    "match the namespace sent on the request");
	if (!name && gen) {
		new_uid(uid, sizeof(uid));
		snprintf(buf, sizeof(buf), "%s%.5s", gen, uid);
		name = buf;
	}
	if (!name || !*name)
		return fail(e, 422, "Invalid", "%s is invalid: metadata.name: Required value: name or "
			    "generateName is required", r->kind);
	if (st_find(r->st, ns, name) >= 0)
		return fail(e, 409, "AlreadyExists", "%s \"%s\" already exists", stat, name);
	body = copy(body);
	md = meta(body);
	strip_type(body);
	set_str(md, "name", name);
	if (r->namespaced)
		set_str(md, "namespace", ns);
	new_uid(uid, sizeof(uid));
	set_str(md, "uid", uid);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)next_rv());
	set_str(md, "resourceVersion", rv);
	now_rfc3339(ts, sizeof(ts));
	set_str(md, "creationTimestamp", ts);
	json_object_object_add(md, "generation", json_object_new_int64(1));
	b = st_put(r->st, ns, name, body, EV_ADDED);
	json_object_put(body);
	return b;
}

static enum MHD_Result create(struct MHD_Connection *c, struct route *rt, json_object *body)
{
	struct err e;
	struct blob *b = create_obj(rt->r, rt->ns, body, &e);

	return b ? reply_typed(c, 201, rt->r, b) :
		   reply_status(c, e.code, e.reason, "%s", e.msg);
}

/*
 * POST /_ksplit/load {"items": [...]}: create many objects of any kinds in one
 * request (each with apiVersion and kind), so the bench fills the store fast.
 * Items before a failing one stay created.
 */
enum MHD_Result handle_load(struct MHD_Connection *c, const char *body, size_t len)
{
	json_object *o = len ? json_tokener_parse(body) : NULL, *items = NULL;
	struct err e = { 0 };
	size_t i = 0, n;
	uint64_t rv;

	if (!o || !json_object_object_get_ex(o, "items", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		json_object_put(o);
		return reply_status(c, 400, "BadRequest", "load: the body must be {\"items\": [objects "
				    "with apiVersion and kind]}");
	}
	n = json_object_array_length(items);
	pthread_mutex_lock(&store.lock);
	for (; i < n && !e.code; i++) {
		json_object *it = json_object_array_get_idx(items, i);
		const char *av = obj_str(it, "apiVersion"), *kind = obj_str(it, "kind");
		struct resdef *r = av && kind ? res_find_kind(av, kind) : NULL;

		if (!r)
			fail(&e, 400, "BadRequest", "no resource is served for apiVersion %s kind %s",
			     av ? av : "(none)", kind ? kind : "(none)");
		else if (r->disabled)
			fail(&e, 404, "NotFound", "%s is disabled (fault disable)", r->resource);
		else
			create_obj(r, NULL, it, &e);
	}
	rv = store.rv;
	pthread_mutex_unlock(&store.lock);
	json_object_put(o);
	/* The parsed request was ~25 times its size: give that back (RSS is measured in the bench). */
	malloc_trim(0);
	if (e.code)
		return reply_status(c, e.code, e.reason, "items[%zu]: %s", i - 1, e.msg);
	o = json_object_new_object();
	json_object_object_add(o, "created", json_object_new_int64(n));
	json_object_object_add(o, "resourceVersion", json_object_new_int64(rv));
	return reply_json(c, 200, o);
}

/* PUT and PATCH, on the object or on its status. */
static enum MHD_Result update(struct MHD_Connection *c, const char *method, struct route *rt,
			      size_t i, json_object *body)
{
	struct resdef *r = rt->r;
	json_object *old, *next;
	const char *bname = obj_str(body, "metadata.name");
	enum MHD_Result ret;
	char stat[256];

	res_stat_name(r, NULL, stat, sizeof(stat));
	if (bname && strcmp(bname, rt->name))
		return reply_status(c, 400, "BadRequest", "the name of the object (%s) does not match "
				    "the name on the URL (%s)", bname, rt->name);
	interpose(r, rt, i);
	old = blob_parse(r->st->v[i].b);
	if (rv_conflict(old, obj_str(body, "metadata.resourceVersion"))) {
		json_object_put(old);
		return reply_status(c, 409, "Conflict", CONFLICT_MSG, stat, rt->name);
	}
	if (!strcmp(method, "PATCH")) {
		next = copy(old);
		merge_patch(next, body, patch_type(c) == PATCH_STRATEGIC);
	} else {
		next = copy(body);
	}
	ret = reply_typed(c, 200, r, apply_next(r, i, rt->sub, next, old));
	json_object_put(old);
	return ret;
}

static enum MHD_Result delete(struct MHD_Connection *c, struct route *rt, size_t i,
			      json_object *opts)
{
	const char *want = opts ? obj_str(opts, "preconditions.resourceVersion") : NULL;
	struct resdef *r = rt->r;
	enum MHD_Result ret;
	struct blob *b;
	char stat[256];

	res_stat_name(r, NULL, stat, sizeof(stat));
	if (want) {
		json_object *old = blob_parse(r->st->v[i].b);
		bool conflict = rv_conflict(old, want);

		json_object_put(old);
		if (conflict)
			return reply_status(c, 409, "Conflict", CONFLICT_MSG, stat, rt->name);
	}
	b = st_del(r->st, i);
	ret = reply_typed(c, 200, r, b);
	blob_put(b);
	return ret;
}

static enum MHD_Result object_locked(struct MHD_Connection *c, const char *method,
				     struct route *rt, json_object *body)
{
	struct resdef *r = rt->r;
	const char *ns = r->namespaced ? (rt->ns ? rt->ns : "") : "";
	char stat[256];
	ssize_t i;

	res_stat_name(r, NULL, stat, sizeof(stat));
	if (!rt->name) {
		if (strcmp(method, "POST"))
			return reply_status(c, 405, "MethodNotAllowed", "%s on the collection %s is not "
					    "supported by ks-apiserver", method, stat);
		return create(c, rt, body);
	}
	if (!strcmp(method, "POST"))
		return reply_status(c, 405, "MethodNotAllowed", "POST goes to the collection, not to "
				    "%s \"%s\"", stat, rt->name);
	if (r->namespaced && !rt->ns)
		return reply_status(c, 404, "NotFound", "the server could not find the requested "
				    "resource: %s is namespaced: use /namespaces/NS/...", stat);
	if (rt->sub && (strcmp(rt->sub, "status") || !r->status))
		return reply_status(c, 404, "NotFound", "the server could not find the requested "
				    "resource: %s has no subresource %s", stat, rt->sub);
	i = st_find(r->st, ns, rt->name);
	if (i < 0)
		return reply_status(c, 404, "NotFound", "%s \"%s\" not found", stat, rt->name);
	if (!strcmp(method, "GET"))
		return reply_typed(c, 200, r, r->st->v[i].b);
	if (!strcmp(method, "DELETE"))
		return delete(c, rt, i, body);
	if (!body)
		return reply_status(c, 400, "BadRequest", "%s needs a JSON object body", method);
	write_key(rt, stat, sizeof(stat));
	stat_object(!strcmp(method, "PUT") ? "update" : "patch", stat);
	return update(c, method, rt, i, body);
}

enum MHD_Result handle_object(struct MHD_Connection *c, const char *method, struct route *rt,
			      const char *body, size_t len)
{
	json_object *o = NULL;
	enum MHD_Result ret;
	char what[256];

	res_stat_name(rt->r, rt->sub, what, sizeof(what));
	stat_count(!strcmp(method, "GET") ? "get" : !strcmp(method, "POST") ? "create" :
		   !strcmp(method, "PUT") ? "update" : !strcmp(method, "PATCH") ? "patch" :
		   !strcmp(method, "DELETE") ? "delete" : method, what);
	if (!strcmp(method, "PATCH") && patch_type(c) == PATCH_UNSUPPORTED)
		return reply_status(c, 415, "UnsupportedMediaType", "the body of the request was in "
				    "an unknown format - accepted media types include: "
				    "application/merge-patch+json, "
				    "application/strategic-merge-patch+json");
	if (len) {
		struct json_tokener *tok = json_tokener_new();

		o = json_tokener_parse_ex(tok, body, len);
		if (!o || json_tokener_get_error(tok) != json_tokener_success ||
		    !json_object_is_type(o, json_type_object)) {
			json_tokener_free(tok);
			json_object_put(o);
			return reply_status(c, 400, "BadRequest", "the request body is not a JSON "
					    "object (ks-apiserver takes JSON, not YAML or protobuf)");
		}
		json_tokener_free(tok);
	}
	if (!o && !strcmp(method, "POST"))
		return reply_status(c, 400, "BadRequest", "POST needs a JSON object body");
	pthread_mutex_lock(&store.lock);
	ret = object_locked(c, method, rt, o);
	pthread_mutex_unlock(&store.lock);
	json_object_put(o);
	return ret;
}

/* Continue tokens are hex of "RV\nNS\nNAME": the list's RV and the last key sent. */
static char *cont_token(uint64_t rv, const struct obj *last)
{
	char buf[1024], *h;

	snprintf(buf, sizeof(buf), "%llu\n%s\n%s", (unsigned long long)rv, last->ns, last->name);
	h = hex_encode(buf);
	return h;
}

static enum MHD_Result list_locked(struct MHD_Connection *c, struct route *rt)
{
	struct resdef *r = rt->r;
	struct storage *st = r->st;
	const char *lim = qarg(c, "limit"), *cont = qarg(c, "continue");
	const char *ls = qarg(c, "labelSelector"), *fs = qarg(c, "fieldSelector");
	long long limit = lim ? atoll(lim) : 0;
	uint64_t rv = store.rv;
	size_t i = 0, sent = 0, remaining = 0;
	const size_t *order;
	const struct obj *last = NULL;
	struct sbuf sb = { 0 }, it = { 0 };
	json_object *md;
	char av[256], buf[32];

	if (page_max > 0 && (limit <= 0 || limit > page_max))
		limit = page_max;
	if (cont && *cont) {
		char *d = hex_decode(cont), ns[256], name[256];
		unsigned long long crv;

		if (!d || sscanf(d, "%llu\n%255[^\n]\n%255[^\n]", &crv, ns, name) != 3) {
			/* A cluster-scoped key has an empty namespace line. */
			if (!d || sscanf(d, "%llu\n\n%255[^\n]", &crv, name) != 2) {
				free(d);
				return reply_status(c, 400, "BadRequest", "continue key is not valid: "
						    "pass the continue value of the previous page");
			}
			ns[0] = 0;
		}
		free(d);
		if (crv < store.compacted)
			return reply_status(c, 410, "Expired", "The provided continue parameter is too "
					    "old to display a consistent list result. You can start a "
					    "new list without the continue parameter, or use the "
					    "continue value from the response to get a consistent "
					    "list of items.");
		/* Later pages keep the first page's RV: a watch from it sees what paging missed. */
		rv = crv;
		i = st_after(st, ns, name);
	}
	/* Assembled from the stored bytes: metadata, then the items, as the real server orders them. */
	order = st_sorted(st);
	for (; i < st->n; i++) {
		const struct obj *e = &st->v[order[i]];

		if (!blob_match(e->ns, e->b, rt->ns, ls, fs))
			continue;
		if (limit > 0 && sent == (size_t)limit) {
			remaining++;
			continue;
		}
		if (sent++)
			sb_str(&it, ",");
		sb_add(&it, e->b->s, e->b->len);
		last = e;
	}
	md = json_object_new_object();
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
	json_object_object_add(md, "resourceVersion", json_object_new_string(buf));
	if (remaining) {
		char *tok = cont_token(rv, last);

		json_object_object_add(md, "continue", json_object_new_string(tok ? tok : ""));
		json_object_object_add(md, "remainingItemCount", json_object_new_int64(remaining));
		free(tok);
	}
	sb_str(&sb, "{\"kind\":\"");
	sb_str(&sb, r->kind);
	sb_str(&sb, "List\",\"apiVersion\":\"");
	sb_str(&sb, res_api_version(r, av, sizeof(av)));
	sb_str(&sb, "\",\"metadata\":");
	sb_json(&sb, md);
	sb_str(&sb, ",\"items\":[");
	sb_add(&sb, it.s ? it.s : "", it.len);
	sb_str(&sb, "]}");
	json_object_put(md);
	free(it.s);
	return reply_sb(c, 200, &sb);
}

enum MHD_Result handle_list(struct MHD_Connection *c, struct route *rt)
{
	enum MHD_Result ret;
	char what[256];

	res_stat_name(rt->r, NULL, what, sizeof(what));
	stat_count("list", what);
	pthread_mutex_lock(&store.lock);
	ret = list_locked(c, rt);
	pthread_mutex_unlock(&store.lock);
	return ret;
}
