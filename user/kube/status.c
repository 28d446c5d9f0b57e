// SPDX-License-Identifier: BSD-2-Clause
/* The status writer (see status.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "common/log.h"
#include "config/model.h"
#include "kube/lease.h"
#include "kube/reflector.h"
#include "kube/source.h"
#include "kube/status.h"

#define GW_GROUP	"gateway.networking.k8s.io"
#define CONFLICTS_MAX	5
#define ERROR_BACKOFF_MS 5000

enum st_kind { ST_ROUTE, ST_GATEWAY, ST_CLASS };

struct st_entry {
	char *path;		/* the object: "/apis/G/V/namespaces/NS/R/NAME" */
	enum st_kind kind;
	char *desired;		/* ksplit's part (JSON) while not yet written, else NULL */
	uint64_t want, wrote;	/* hashes of the desired part and of the last written; 0: none */
	uint64_t not_before;	/* CLOCK_MONOTONIC ms: the min interval, or an error's backoff */
	bool seen, queued, busy;
	struct st_entry *next;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

static void slot_done(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms);

void kube_status_init(struct kube_status *st, struct ks_kube *k, const struct kube_conn *conn,
		      CURLM *multi, unsigned min_interval_ms, unsigned rate, unsigned burst)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	st->k = k;
	st->conn = conn;
	st->multi = multi;
	st->min_interval_ms = min_interval_ms;
	st->rate = rate;
	st->burst = burst;
	st->tokens = burst;
	for (i = 0; i < STATUS_SLOTS; i++) {
		st->slots[i].call.own.done = slot_done;
		st->slots[i].call.ctx = &st->slots[i];
		st->slots[i].st = st;
	}
}

/* ---- the objects, by path ---- */

static struct st_entry **probe(const struct kube_status *st, const char *path)
{
	size_t mask = st->cap - 1, i = hash(path) & mask;

	while (st->tab[i] && strcmp(st->tab[i]->path, path))
		i = (i + 1) & mask;
	return &st->tab[i];
}

static struct st_entry *entry(struct kube_status *st, const char *path, enum st_kind kind)
{
	struct st_entry **p, *e, **old = st->tab;
	size_t i, ocap = st->cap;

	if ((st->n + 1) * 4 >= st->cap * 3) {
		st->cap = st->cap ? st->cap * 2 : 64;
		if (!(st->tab = calloc(st->cap, sizeof(*st->tab)))) {
			st->tab = old;
			st->cap = ocap;
			return NULL;
		}
		for (i = 0; i < ocap; i++)
			if (old[i])
				*probe(st, old[i]->path) = old[i];
		free(old);
	}
	p = probe(st, path);
	if (*p)
		return *p;
	if (!(e = calloc(1, sizeof(*e))) || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	e->kind = kind;
	st->n++;
	return *p = e;
}

static void enqueue(struct kube_status *st, struct st_entry *e)
{
	if (e->queued || e->busy)
		return;
	e->queued = true;
	e->next = NULL;
	if (st->tail)
		st->tail->next = e;
	else
		st->head = e;
	st->tail = e;
	st->queued++;
}

static struct st_entry *dequeue(struct kube_status *st)
{
	struct st_entry *e = st->head;

	if (!e)
		return NULL;
	st->head = e->next;
	if (!st->head)
		st->tail = NULL;
	e->queued = false;
	st->queued--;
	return e;
}

/* desired (owned, may be NULL: nothing to write) is what e should say now. */
static void want(struct kube_status *st, struct st_entry *e, char *desired)
{
	uint64_t h = desired ? hash(desired) : 0;

	e->seen = true;
	if (!desired || h == e->wrote) {
		free(e->desired);
		e->desired = NULL;
		e->want = h;
		free(desired);
		return;
	}
	free(e->desired);
	e->desired = desired;
	e->want = h;
	enqueue(st, e);
}

/* ---- what ksplit says ---- */

static struct json_object *cond(const char *type, bool ok, const char *reason, const char *msg,
				int64_t gen)
{
	struct json_object *c = json_object_new_object();

	json_object_object_add(c, "type", json_object_new_string(type));
	json_object_object_add(c, "status", json_object_new_string(ok ? "True" : "False"));
	json_object_object_add(c, "reason", json_object_new_string(reason));
	json_object_object_add(c, "message", json_object_new_string(msg));
	json_object_object_add(c, "observedGeneration", json_object_new_int64(gen));
	return c;
}

static char *json_take(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

/* The object's path at the served version; false when its kind is not served. */
static bool obj_path(struct kube_status *st, const char *kind, const char *ns, const char *name,
		     char *buf, size_t len, int64_t *gen)
{
	struct reflector *r = kube_refl_kind(st->k, kind);
	const struct kube_obj *o;
	char key[512], pre[256];

	if (!r || !r->served || !r->version)
		return false;
	snprintf(key, sizeof(key), "%s%s%s", ns ? ns : "", ns ? "/" : "", name);
	if (!(o = kube_store_get(&r->store, key)))
		return false;
	*gen = o->generation;
	if (*r->res->group)
		snprintf(pre, sizeof(pre), "/apis/%s/%s", r->res->group, r->version);
	else
		snprintf(pre, sizeof(pre), "/api/%s", r->version);
	if (ns)
		snprintf(buf, len, "%s/namespaces/%s/%s/%s", pre, ns, r->res->resource, name);
	else
		snprintf(buf, len, "%s/%s/%s", pre, r->res->resource, name);
	return true;
}

static bool parent_ours(struct kube_status *st, const struct ksm_parent_status *p)
{
	char key[512];

	if (!strcmp(p->kind, "Service") && (!*p->group || !strcmp(p->group, "core")))
		return true;
	if (strcmp(p->kind, "Gateway") || strcmp(p->group, GW_GROUP))
		return false;
	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	return kube_gateway_ours(st->k, key, false);
}

static struct json_object *parent_ref(const struct ksm_parent_status *p)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "group", json_object_new_string(p->group));
	json_object_object_add(r, "kind", json_object_new_string(p->kind));
	json_object_object_add(r, "namespace", json_object_new_string(p->ns));
	json_object_object_add(r, "name", json_object_new_string(p->name));
	if (p->section && *p->section)
		json_object_object_add(r, "sectionName", json_object_new_string(p->section));
	if (p->port)
		json_object_object_add(r, "port", json_object_new_int(p->port));
	return r;
}

/* A route's parents[] entries of ksplit's parents (an empty array when none is). */
static char *route_part(struct kube_status *st, const struct ksm_route_status *rs, int64_t gen)
{
	struct json_object *arr = json_object_new_array(), *e, *conds;
	char kept[4096];
	size_t i;

	for (i = 0; i < rs->n_parents; i++) {
		const struct ksm_parent_status *p = &rs->parents[i];
		bool acc = p->accepted == KSM_R_ACCEPTED, res = p->resolved == KSM_R_RESOLVED_REFS;
		const char *amsg = acc ? "Accepted by ksplit" : p->accepted_msg ? p->accepted_msg : "";

		if (!parent_ours(st, p))
			continue;
		/* Refused, its last good version in force: the live object is still not accepted. */
		if (rs->refused && rs->kept) {
			snprintf(kept, sizeof(kept), "%s; its last good version stays in force",
				 rs->refused);
			acc = false;
			amsg = kept;
		}
		e = json_object_new_object();
		json_object_object_add(e, "parentRef", parent_ref(p));
		json_object_object_add(e, "controllerName",
				       json_object_new_string(KS_GATEWAY_CONTROLLER));
		conds = json_object_new_array();
		json_object_array_add(conds, cond("Accepted", acc, ksm_reason_name(acc ? KSM_R_ACCEPTED :
			rs->refused && rs->kept ? KSM_R_UNSUPPORTED_VALUE : p->accepted), amsg, gen));
		json_object_array_add(conds, cond("ResolvedRefs", res, ksm_reason_name(p->resolved),
			res ? "All references resolved" : p->resolved_msg ? p->resolved_msg : "", gen));
		json_object_object_add(e, "conditions", conds);
		json_object_array_add(arr, e);
	}
	return json_take(arr);
}

static char *gateway_part(const struct ksm_gateway_status *g, int64_t gen)
{
	struct json_object *o = json_object_new_object(), *conds = json_object_new_array(),
			   *addrs = json_object_new_array(), *a;
	char msg[4200], ip[64];
	size_t i;

	snprintf(msg, sizeof(msg), "%s%s", g->refused ? g->refused : "Accepted by ksplit",
		 g->kept ? "; its last good version stays in force" : "");
	json_object_array_add(conds, cond("Accepted", !g->refused,
					  g->refused ? "Invalid" : "Accepted", msg, gen));
	snprintf(msg, sizeof(msg), "%zu address(es) intercepted at connect()", g->n_addrs);
	json_object_array_add(conds, cond("Programmed", g->n_addrs > 0,
					  g->n_addrs ? "Programmed" : "Invalid",
					  g->n_addrs ? msg : "not programmed: the Gateway is refused",
					  gen));
	for (i = 0; i < g->n_addrs; i++) {
		ksm_addr_fmt(&g->addrs[i], ip, sizeof(ip));
		a = json_object_new_object();
		json_object_object_add(a, "type", json_object_new_string("IPAddress"));
		json_object_object_add(a, "value", json_object_new_string(ip));
		json_object_array_add(addrs, a);
	}
	json_object_object_add(o, "conditions", conds);
	json_object_object_add(o, "addresses", addrs);
	return json_take(o);
}

struct class_ctx {
	struct kube_status *st;
	int err;
};

static void class_one(const struct kube_obj *o, void *arg)
{
	struct class_ctx *c = arg;
	struct json_object *w, *conds;
	struct st_entry *e;
	char path[1024];
	int64_t gen;

	if (c->err || !o->class || strcmp(o->class, KS_GATEWAY_CONTROLLER) ||
	    !obj_path(c->st, "GatewayClass", NULL, o->key, path, sizeof(path), &gen))
		return;
	if (!(e = entry(c->st, path, ST_CLASS))) {
		c->err = -ENOMEM;
		return;
	}
	w = json_object_new_object();
	conds = json_object_new_array();
	json_object_array_add(conds, cond("Accepted", true, "Accepted",
					  "ksplit.io/gateway-controller takes this class", gen));
	json_object_object_add(w, "conditions", conds);
	want(c->st, e, json_take(w));
}

int kube_status_set(struct kube_status *st, const struct ks_model *m)
{
	struct class_ctx cc = { .st = st };
	struct reflector *classes;
	struct st_entry *e;
	char path[1024];
	int64_t gen;
	size_t i;

	if (!st->leading)
		return 0;
	for (i = 0; i < st->cap; i++)
		if (st->tab[i])
			st->tab[i]->seen = false;
	for (i = 0; i < m->n_routes; i++) {
		const struct ksm_route_status *rs = &m->routes[i];

		if (!obj_path(st, rs->kind, rs->ns, rs->name, path, sizeof(path), &gen))
			continue;
		if (!(e = entry(st, path, ST_ROUTE)))
			return -ENOMEM;
		want(st, e, route_part(st, rs, gen));
	}
	for (i = 0; i < m->n_gateways; i++) {
		const struct ksm_gateway_status *g = &m->gateways[i];
		char key[512];

		snprintf(key, sizeof(key), "%s/%s", g->ns, g->name);
		if (!kube_gateway_ours(st->k, key, true) ||
		    !obj_path(st, "Gateway", g->ns, g->name, path, sizeof(path), &gen))
			continue;
		if (!(e = entry(st, path, ST_GATEWAY)))
			return -ENOMEM;
		want(st, e, gateway_part(g, gen));
	}
	if ((classes = kube_refl_kind(st->k, "GatewayClass")))
		kube_store_each(&classes->store, class_one, &cc);
	/* A route that is no longer judged (gone, or off ksplit's parents): take ksplit's entries out. */
	for (i = 0; i < st->cap; i++) {
		e = st->tab[i];
		if (e && !e->seen && e->kind == ST_ROUTE && e->want && e->want != hash("[]"))
			want(st, e, strdup("[]"));
	}
	return cc.err;
}

/* ---- the read-modify-write ---- */

/* new's conditions, each keeping old's lastTransitionTime when its status did not change. */
static void stamp(struct json_object *conds, struct json_object *old, const char *now)
{
	size_t i, j;

	for (i = 0; i < json_object_array_length(conds); i++) {
		struct json_object *c = json_object_array_get_idx(conds, i), *t, *s, *ot, *os, *lt;
		const char *ltt = now;

		json_object_object_get_ex(c, "type", &t);
		json_object_object_get_ex(c, "status", &s);
		for (j = 0; old && j < json_object_array_length(old); j++) {
			struct json_object *o = json_object_array_get_idx(old, j);

			if (json_object_object_get_ex(o, "type", &ot) && json_object_equal(ot, t) &&
			    json_object_object_get_ex(o, "status", &os) && json_object_equal(os, s) &&
			    json_object_object_get_ex(o, "lastTransitionTime", &lt))
				ltt = json_object_get_string(lt);
		}
		json_object_object_add(c, "lastTransitionTime", json_object_new_string(ltt));
	}
}

static bool is_ours(struct json_object *entry)
{
	struct json_object *cn;

	return json_object_object_get_ex(entry, "controllerName", &cn) &&
	       !strcmp(json_object_get_string(cn), KS_GATEWAY_CONTROLLER);
}

/* Route: other controllers' parents[] entries as they are, then ksplit's. */
static void merge_route(struct json_object *status, struct json_object *part, const char *now)
{
	struct json_object *old = NULL, *next = json_object_new_array(), *oc, *pr, *opr;
	size_t i, j;

	json_object_object_get_ex(status, "parents", &old);
	for (i = 0; old && i < json_object_array_length(old); i++)
		if (!is_ours(json_object_array_get_idx(old, i)))
			json_object_array_add(next, json_object_get(json_object_array_get_idx(old, i)));
	for (i = 0; i < json_object_array_length(part); i++) {
		struct json_object *e = json_object_array_get_idx(part, i), *conds;

		oc = NULL;
		json_object_object_get_ex(e, "parentRef", &pr);
		for (j = 0; old && j < json_object_array_length(old); j++) {
			struct json_object *o = json_object_array_get_idx(old, j);

			if (is_ours(o) && json_object_object_get_ex(o, "parentRef", &opr) &&
			    json_object_equal(opr, pr))
				json_object_object_get_ex(o, "conditions", &oc);
		}
		json_object_object_get_ex(e, "conditions", &conds);
		stamp(conds, oc, now);
		json_object_array_add(next, json_object_get(e));
	}
	json_object_object_add(status, "parents", next);
}

/* Gateway, GatewayClass: ksplit's condition types replaced, others kept; addresses set. */
static void merge_object(struct json_object *status, struct json_object *part, const char *now)
{
	struct json_object *old = NULL, *next = json_object_new_array(), *conds, *addrs, *t, *nt;
	size_t i, j;
	bool mine;

	json_object_object_get_ex(status, "conditions", &old);
	json_object_object_get_ex(part, "conditions", &conds);
	stamp(conds, old, now);
	for (i = 0; old && i < json_object_array_length(old); i++) {
		struct json_object *o = json_object_array_get_idx(old, i);

		mine = false;
		for (j = 0; j < json_object_array_length(conds); j++)
			mine |= json_object_object_get_ex(o, "type", &t) &&
				json_object_object_get_ex(json_object_array_get_idx(conds, j),
							  "type", &nt) &&
				json_object_equal(t, nt);
		if (!mine)
			json_object_array_add(next, json_object_get(o));
	}
	for (j = 0; j < json_object_array_length(conds); j++)
		json_object_array_add(next, json_object_get(json_object_array_get_idx(conds, j)));
	json_object_object_add(status, "conditions", next);
	if (json_object_object_get_ex(part, "addresses", &addrs))
		json_object_object_add(status, "addresses", json_object_get(addrs));
}

static void slot_free(struct st_slot *s)
{
	kube_call_end(&s->call, s->st->multi);
	free(s->sent);
	s->sent = NULL;
	s->e = NULL;
}

enum outcome { WRITTEN, FAILED, GONE };

/* The slot's object is done: written, to be tried again later, or gone. */
static void finish(struct st_slot *s, enum outcome how, uint64_t now_ms)
{
	struct kube_status *st = s->st;
	struct st_entry *e = s->e;
	bool ok = how == WRITTEN;

	e->busy = false;
	e->not_before = now_ms + (how == FAILED ? ERROR_BACKOFF_MS : st->min_interval_ms);
	if (how == GONE) {
		/* Nothing written: an object of that name made again is judged and written afresh. */
		e->wrote = e->want = 0;
		free(e->desired);
		e->desired = NULL;
	} else if (ok) {
		e->wrote = s->sent_hash;
		if (e->want == e->wrote) {
			free(e->desired);
			e->desired = NULL;
		}
	} else {
		st->errors++;
	}
	if (e->desired)
		enqueue(st, e);
	slot_free(s);
}

static void start_get(struct st_slot *s, uint64_t now_ms)
{
	if (kube_call_start(&s->call, s->st->multi, s->st->conn, "GET", s->e->path, NULL))
		finish(s, FAILED, now_ms);
}

/* The object as read: ksplit's part put in, then PUT to /status unless it already says so. */
static void modify(struct st_slot *s, uint64_t now_ms)
{
	struct json_object *o = json_tokener_parse(s->call.body ? s->call.body : ""), *status;
	struct json_object *old = NULL;
	struct json_object *part = json_tokener_parse(s->sent);
	char now[40], path[1100];
	bool same;

	if (!o || !part || !json_object_is_type(o, json_type_object)) {
		pr_warn("status: the object read is not JSON", "object=%s", s->e->path);
		json_object_put(o);
		json_object_put(part);
		finish(s, FAILED, now_ms);
		return;
	}
	if (!json_object_object_get_ex(o, "status", &status) ||
	    !json_object_is_type(status, json_type_object)) {
		status = json_object_new_object();
		json_object_object_add(o, "status", status);
	}
	json_object_deep_copy(status, &old, NULL);
	kube_time_now(now, sizeof(now), false);
	if (s->e->kind == ST_ROUTE)
		merge_route(status, part, now);
	else
		merge_object(status, part, now);
	same = json_object_equal(old, status);
	json_object_put(old);
	json_object_put(part);
	if (same) {
		/* Already so (an earlier holder wrote it): nothing to write. */
		s->st->skipped++;
		json_object_put(o);
		finish(s, WRITTEN, now_ms);
		return;
	}
	snprintf(path, sizeof(path), "%s/status", s->e->path);
	s->put = true;
	if (kube_call_start(&s->call, s->st->multi, s->st->conn, "PUT", path,
			    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)))
		finish(s, FAILED, now_ms);
	json_object_put(o);
}

static void slot_done(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms)
{
	struct st_slot *s = ((struct kube_call *)o)->ctx;
	long code = kube_call_code(&s->call, result);

	(void)h;
	if (!s->put && code == 200) {
		modify(s, now_ms);
	} else if (code == 404) {
		/* The object is gone: nothing to say about it. */
		finish(s, GONE, now_ms);
	} else if (s->put && code == 200) {
		s->st->puts++;
		pr_info("status: written", "object=%s puts=%u", s->e->path, s->st->puts);
		finish(s, WRITTEN, now_ms);
	} else if (s->put && code == 409 && ++s->conflicts <= CONFLICTS_MAX) {
		/* Written by someone else since our read: read it again, write again. */
		s->st->conflicts++;
		pr_info("status: conflict (409); reading the object again", "object=%s conflicts=%u",
			s->e->path, s->conflicts);
		s->put = false;
		start_get(s, now_ms);
	} else {
		pr_warn("status: write failed; trying again later", "object=%s step=%s http=%ld "
			"curl=%s detail=%.200s", s->e->path, s->put ? "put" : "get", code,
			curl_easy_strerror(result), s->call.body ? s->call.body : "");
		finish(s, FAILED, now_ms);
	}
}

bool kube_status_tick(struct kube_status *st, bool leading, uint64_t now_ms)
{
	bool resync = leading && !st->leading;
	size_t i, n;
	struct st_entry *e;

	/*
	 * A new holder knows nothing of what the last one wrote: everything is
	 * checked again, from the next set of verdicts (what was written is
	 * kept only as a hash).
	 */
	for (i = 0; resync && i < st->cap; i++)
		if ((e = st->tab[i]))
			e->wrote = 0;
	st->leading = leading;
	if (!leading)
		return false;
	st->tokens += (now_ms - st->tokens_ms) * (double)st->rate / 1000.0;
	if (st->tokens > st->burst)
		st->tokens = st->burst;
	st->tokens_ms = now_ms;
	for (n = st->queued; n && st->tokens >= 1; n--) {
		struct st_slot *s = NULL;

		for (i = 0; i < STATUS_SLOTS && !s; i++)
			if (!st->slots[i].e)
				s = &st->slots[i];
		if (!s)
			break;
		e = dequeue(st);
		if (!e->desired)
			continue;
		if (now_ms < e->not_before) {
			enqueue(st, e);
			continue;
		}
		/*
		 * The part being written is the desired one now; a later change
		 * while this is in flight writes again when it ends.
		 */
		if (!(s->sent = strdup(e->desired))) {
			enqueue(st, e);
			break;
		}
		s->sent_hash = e->want;
		s->e = e;
		s->put = false;
		s->conflicts = 0;
		e->busy = true;
		st->tokens -= 1;
		start_get(s, now_ms);
	}
	return resync;
}

uint64_t kube_status_next_ms(const struct kube_status *st, uint64_t now_ms)
{
	(void)now_ms;
	/* Waiting on a token, a min interval or a free slot (whose end wakes us anyway). */
	return st->leading && st->queued ? 100 : UINT64_MAX;
}

void kube_status_free(struct kube_status *st)
{
	size_t i;

	for (i = 0; i < STATUS_SLOTS; i++)
		slot_free(&st->slots[i]);
	for (i = 0; i < st->cap; i++)
		if (st->tab[i]) {
			free(st->tab[i]->path);
			free(st->tab[i]->desired);
			free(st->tab[i]);
		}
	free(st->tab);
	memset(st, 0, sizeof(*st));
}
