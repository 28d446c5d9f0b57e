// SPDX-License-Identifier: BSD-2-Clause
/*
 * The reflector protocol for one resource (see reflector.h). Requests run on
 * the source's libcurl multi handle; this file only decides which request
 * comes next and what a response means.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/http.h"
#include "kube/reflector.h"

#define ABSENT_RETRY_MS	30000
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
#define PAGE_LIMIT	500
#define WATCH_TIMEOUT_S	300
#define BODY_MAX	(64u << 20)

static void owner_done(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms)
{
	refl_done((struct reflector *)o, h, result, now_ms);
}

void refl_init(struct reflector *r, const struct kube_res *res, const struct kube_conn *c,
	       CURLM *multi)
{
	memset(r, 0, sizeof(*r));
	r->own.done = owner_done;
	r->res = res;
	r->conn = c;
	r->multi = multi;
}

static void end_request(struct reflector *r)
{
	if (r->h) {
		curl_multi_remove_handle(r->multi, r->h);
		curl_easy_cleanup(r->h);
		r->h = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->code = 0;
}

/* Waits before starting over: exponential with jitter for errors, fixed for absence. */
static void wait_then(struct reflector *r, uint64_t now_ms, bool error)
{
	unsigned ms;

	end_request(r);
	if (error) {
		r->errors++;
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (r->backoff_ms > BACKOFF_MAX_MS)
			r->backoff_ms = BACKOFF_MAX_MS;
		/* Jitter: half to the whole of it, so agents on every node do not retry in step. */
		ms = r->backoff_ms / 2 + (unsigned)random() % (r->backoff_ms / 2 + 1);
	} else {
		ms = ABSENT_RETRY_MS;
	}
	r->state = R_WAIT;
	r->wake_ms = now_ms + ms;
}

static const char *prefix(const struct kube_res *res, const char *version, char *buf,
			  size_t len)
{
	if (*res->group)
		snprintf(buf, len, "/apis/%s/%s", res->group, version);
	else
		snprintf(buf, len, "/api/%s", version);
	return buf;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct reflector *r = arg;
	size_t len = sz * n;
	char *nb;

	if (r->body_len + len > BODY_MAX)
		return 0;	/* aborts the transfer: a response this large is not ours to hold */
	nb = realloc(r->body, r->body_len + len + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->body_len, p, len);
	r->body = nb;
	r->body_len += len;
	r->body[r->body_len] = 0;
	return len;
}

static void event(struct reflector *r, const char *line, size_t len);

/* A watch stream: one JSON event per line, handled as each line completes. */
static size_t on_stream(char *p, size_t sz, size_t n, void *arg)
{
	struct reflector *r = arg;
	size_t len = sz * n, i, from = 0;

	for (i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		/* A line split across reads was kept in body. */
		if (r->body_len) {
			if (on_body(p + from, 1, i - from, r) != i - from)
				return 0;
			event(r, r->body, r->body_len);
			free(r->body);
			r->body = NULL;
			r->body_len = 0;
		} else if (i > from) {
			event(r, p + from, i - from);
		}
		from = i + 1;
	}
	if (from < len && on_body(p + from, 1, len - from, r) != len - from)
		return 0;
	return len;
}

static bool start(struct reflector *r, const char *path, bool stream)
{
	r->h = curl_easy_init();
	if (!r->h || kube_http_setup(r->h, r->conn, path, stream, &r->hdrs))
		goto fail;
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, stream ? on_stream : on_body);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, &r->own);
	if (curl_multi_add_handle(r->multi, r->h) != CURLM_OK)
		goto fail;
	return true;
fail:
	pr_warn("kube: cannot start a request", "resource=%s path=%s", r->res->resource, path);
	end_request(r);
	return false;
}

static void begin_discover(struct reflector *r, uint64_t now_ms)
{
	char path[256];

	r->state = R_DISCOVER;
	r->version = r->res->versions[0];
	if (!start(r, prefix(r->res, r->version, path, sizeof(path)), false))
		wait_then(r, now_ms, true);
}

static void begin_list(struct reflector *r, uint64_t now_ms)
{
	char path[1024], pre[256];

	r->state = R_LIST;
	if (!r->cont)
		r->gen++;
	snprintf(path, sizeof(path), "%s/%s?limit=%d%s%s", prefix(r->res, r->version, pre,
		 sizeof(pre)), r->res->resource, PAGE_LIMIT, r->cont ? "&continue=" : "",
		 r->cont ? r->cont : "");
	if (!start(r, path, false))
		wait_then(r, now_ms, true);
}

static void begin_watch(struct reflector *r, uint64_t now_ms)
{
	char path[1024], pre[256];

	r->state = R_WATCH;
	r->watches++;
	snprintf(path, sizeof(path), "%s/%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s"
		 "&timeoutSeconds=%d", prefix(r->res, r->version, pre, sizeof(pre)),
		 r->res->resource, r->rv, WATCH_TIMEOUT_S);
	if (!start(r, path, true))
		wait_then(r, now_ms, true);
}

void refl_tick(struct reflector *r, uint64_t now_ms)
{
	if (r->state == R_START || (r->state == R_WAIT && now_ms >= r->wake_ms)) {
		/* Discovery again after an absence or an error: a CRD may have come or gone. */
		if (!r->served || r->state == R_START)
			begin_discover(r, now_ms);
		else if (*r->rv && r->synced)
			begin_watch(r, now_ms);
		else
			begin_list(r, now_ms);
	}
}

uint64_t refl_next_ms(const struct reflector *r, uint64_t now_ms)
{
	if (r->state == R_START)
		return 0;
	if (r->state == R_WAIT)
		return r->wake_ms > now_ms ? r->wake_ms - now_ms : 0;
	return UINT64_MAX;
}

static void set_rv(struct reflector *r, struct json_object *obj)
{
	struct json_object *meta, *v;

	if (json_object_object_get_ex(obj, "metadata", &meta) &&
	    json_object_object_get_ex(meta, "resourceVersion", &v) && json_object_get_string(v))
		snprintf(r->rv, sizeof(r->rv), "%s", json_object_get_string(v));
}

static char *api_version(const struct reflector *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", r->res->group, *r->res->group ? "/" : "", r->version);
	return buf;
}

#define REFL_TOUCHED_MAX (sizeof(((struct reflector *)0)->touched) / sizeof(char *))

/* A watch event changed obj; anything but that (a list, a delete) calls it with NULL. */
static void touch(struct reflector *r, struct json_object *obj)
{
	char *key;

	if (r->wide)
		return;
	if (!obj || r->state != R_WATCH || r->n_touched == REFL_TOUCHED_MAX ||
	    !(key = kube_obj_key(obj))) {
		r->wide = true;
		return;
	}
	r->touched[r->n_touched++] = key;
}

void refl_forget_changes(struct reflector *r)
{
	while (r->n_touched)
		free(r->touched[--r->n_touched]);
	r->changed = false;
	r->wide = false;
}

static void put(struct reflector *r, struct json_object *obj)
{
	char av[128];
	int ret = kube_store_put(&r->store, obj, r->res->kind, api_version(r, av, sizeof(av)),
				 r->gen);

	if (ret > 0) {
		r->changed = true;
		touch(r, obj);
	} else if (ret < 0 && ret != -EINVAL)
		pr_warn("kube: cannot hold an object", "resource=%s err=%d", r->res->resource, ret);
}

/* One watch event line. */
static void event(struct reflector *r, const char *line, size_t len)
{
	struct json_object *ev, *type, *obj;
	enum json_tokener_error jerr;
	const char *t;

	json_tokener_reset(r->tok);
	ev = json_tokener_parse_ex(r->tok, line, (int)len);
	jerr = json_tokener_get_error(r->tok);
	if (!ev || jerr != json_tokener_success) {
		pr_warn("kube: watch event is not JSON", "resource=%s", r->res->resource);
		json_object_put(ev);
		return;
	}
	if (!json_object_object_get_ex(ev, "type", &type) ||
	    !json_object_object_get_ex(ev, "object", &obj) || !(t = json_object_get_string(type)))
		goto out;
	if (!strcmp(t, "ERROR")) {
		struct json_object *code;

		/* 410: the resourceVersion is compacted away; relist (and diff, never flush). */
		if (json_object_object_get_ex(obj, "code", &code) && json_object_get_int(code) == 410) {
			pr_info("kube: watch expired; relisting", "resource=%s rv=%s",
				r->res->resource, r->rv);
			r->rv[0] = 0;
		} else {
			pr_warn("kube: watch error event", "resource=%s detail=%s", r->res->resource,
				json_object_to_json_string(obj));
		}
		goto out;
	}
	/* Before put: the store trims resourceVersion off the object. */
	set_rv(r, obj);
	if (!strcmp(t, "ADDED") || !strcmp(t, "MODIFIED"))
		put(r, obj);
	else if (!strcmp(t, "DELETED") && kube_store_del(&r->store, obj) > 0) {
		r->changed = true;
		touch(r, NULL);
	}
out:
	json_object_put(ev);
}

/* A discovery document: is the resource served at this version? */
static bool discovered(struct reflector *r)
{
	struct json_object *doc = json_tokener_parse(r->body ? r->body : ""), *list;
	size_t i;
	bool found = false;

	if (doc && json_object_object_get_ex(doc, "resources", &list))
		for (i = 0; i < json_object_array_length(list) && !found; i++) {
			struct json_object *name;

			found = json_object_object_get_ex(json_object_array_get_idx(list, i), "name",
							  &name) &&
				!strcmp(json_object_get_string(name), r->res->resource);
		}
	json_object_put(doc);
	return found;
}

/* A list page: hold its items, then the next page or the watch. */
static int list_page(struct reflector *r)
{
	struct json_object *doc, *items, *meta, *v;
	size_t i;

	json_tokener_reset(r->tok);
	doc = json_tokener_parse_ex(r->tok, r->body ? r->body : "", (int)r->body_len);
	if (!doc || !json_object_object_get_ex(doc, "items", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		json_object_put(doc);
		return -EBADMSG;
	}
	for (i = 0; i < json_object_array_length(items); i++)
		put(r, json_object_array_get_idx(items, i));
	free(r->cont);
	r->cont = NULL;
	if (json_object_object_get_ex(doc, "metadata", &meta)) {
		if (json_object_object_get_ex(meta, "continue", &v) && *json_object_get_string(v))
			r->cont = strdup(json_object_get_string(v));
		if (json_object_object_get_ex(meta, "resourceVersion", &v))
			snprintf(r->rv, sizeof(r->rv), "%s", json_object_get_string(v));
	}
	json_object_put(doc);
	return 0;
}

void refl_done(struct reflector *r, CURL *h, CURLcode result, uint64_t now_ms)
{
	size_t gone;

	if (h != r->h)
		return;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
	if (!r->tok)
		r->tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	switch (r->state) {
	case R_DISCOVER:
		if (result == CURLE_OK && r->code == 200 && discovered(r)) {
			r->served = true;
			r->backoff_ms = 0;
			end_request(r);
			begin_list(r, now_ms);
			return;
		}
		if (result == CURLE_OK && (r->code == 404 || r->code == 200)) {
			/* Not served at this version: the next one, else absent (empty) for now. */
			const char *const *v = r->res->versions;
			size_t i;

			for (i = 0; i < 2 && v[i] && strcmp(v[i], r->version); i++)
				;
			if (i < 2 && v[i + 1]) {
				char path[256];

				end_request(r);
				r->version = v[i + 1];
				if (!start(r, prefix(r->res, r->version, path, sizeof(path)), false))
					wait_then(r, now_ms, true);
				return;
			}
			if (r->served || !r->synced)
				pr_info("kube: resource not served; it counts as empty",
					"resource=%s group=%s", r->res->resource, r->res->group);
			r->served = false;
			/* What was held came from a CRD that is gone: nothing of it stays. */
			if (kube_store_sweep(&r->store, UINT64_MAX)) {
				r->changed = true;
				touch(r, NULL);
			}
			r->synced = true;
			r->rv[0] = 0;
			wait_then(r, now_ms, false);
			return;
		}
		break;
	case R_LIST:
		if (result == CURLE_OK && r->code == 200 && !list_page(r)) {
			r->backoff_ms = 0;
			end_request(r);
			if (r->cont) {
				begin_list(r, now_ms);
				return;
			}
			/* The relist is complete: what it did not list is gone. */
			gone = kube_store_sweep(&r->store, r->gen);
			r->store.refill = false;
			if (gone) {
				r->changed = true;
				touch(r, NULL);
			}
			if (r->synced)
				r->relists++;
			r->synced = true;
			begin_watch(r, now_ms);
			return;
		}
		free(r->cont);
		r->cont = NULL;
		if (r->code == 404) {
			r->served = false;
			wait_then(r, now_ms, false);
			return;
		}
		break;
	case R_WATCH:
		/*
		 * Ended by the server (timeoutSeconds) or cut: watch again from the
		 * last resourceVersion seen; after a 410 (an ERROR event, or the
		 * answer itself) relist at once.
		 */
		if ((result == CURLE_OK && r->code == 200) || r->code == 410 ||
		    (result == CURLE_PARTIAL_FILE && r->code == 200)) {
			if (r->code == 410)
				r->rv[0] = 0;
			end_request(r);
			r->backoff_ms = 0;
			if (*r->rv)
				begin_watch(r, now_ms);
			else
				begin_list(r, now_ms);
			return;
		}
		break;
	default:
		break;
	}
	pr_warn("kube: request failed; backing off", "resource=%s state=%d http=%ld curl=%s",
		r->res->resource, r->state, r->code, curl_easy_strerror(result));
	wait_then(r, now_ms, true);
}

void refl_refill(struct reflector *r)
{
	/*
	 * A refill already listing goes on: restarting it at page 1 for every
	 * load that comes too early would make the relist quadratic.
	 */
	if (!r->served || r->store.refill)
		return;
	end_request(r);
	free(r->cont);
	r->cont = NULL;
	r->rv[0] = 0;
	r->store.refill = true;
	r->state = R_WAIT;
	r->wake_ms = 0;
}

void refl_free(struct reflector *r)
{
	end_request(r);
	free(r->cont);
	refl_forget_changes(r);
	kube_store_free(&r->store);
	if (r->tok)
		json_tokener_free(r->tok);
	memset(r, 0, sizeof(*r));
}
