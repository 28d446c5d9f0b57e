// SPDX-License-Identifier: BSD-2-Clause
/*
 * The control API under /_ksplit/ (no auth): fault injection for tests and
 * request counters, so a test can say "the agent relisted once".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "apiserver.h"

/* Guarded by store.lock; hung requests wait on store.cond for release_gen to move. */
static int fail_next, fail_code, hang_next, hanging;
static unsigned release_gen;
static int64_t pause_until; /* CLOCK_MONOTONIC ms */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_mutex_t stat_lock = PTHREAD_MUTEX_INITIALIZER;
static json_object *stats; /* {"verb": {"resource": n}} */
static json_object *obj_stats; /* writes per object: {"verb": {"R/NS/NAME[/SUB]": n}} */
static int64_t total;
/* fault interpose: the next write to this object first gets this merge patch (store.lock). */
static char *interpose_key;
static json_object *interpose_patch;

static void count(json_object **root, const char *verb, const char *what)
{
	json_object *v, *n;

	if (!*root)
		*root = json_object_new_object();
	if (!json_object_object_get_ex(*root, verb, &v)) {
		v = json_object_new_object();
		json_object_object_add(*root, verb, v);
	}
	json_object_object_add(v, what,
			       json_object_new_int64(json_object_object_get_ex(v, what, &n) ?
							     json_object_get_int64(n) + 1 : 1));
}

void stat_count(const char *verb, const char *what)
{
	pthread_mutex_lock(&stat_lock);
	count(&stats, verb, what);
	total++;
	pthread_mutex_unlock(&stat_lock);
}

void stat_object(const char *verb, const char *key)
{
	pthread_mutex_lock(&stat_lock);
	count(&obj_stats, verb, key);
	pthread_mutex_unlock(&stat_lock);
}

json_object *control_interpose_take(const char *key)
{
	json_object *p = NULL;

	if (interpose_key && !strcmp(interpose_key, key)) {
		p = interpose_patch;
		interpose_patch = NULL;
		free(interpose_key);
		interpose_key = NULL;
	}
	return p;
}

static const char *reason_of(int code)
{
	switch (code) {
	case 429: return "TooManyRequests";
	case 503: return "ServiceUnavailable";
	case 504: return "Timeout";
	default: return "InternalError";
	}
}

bool fault_gate(struct MHD_Connection *c, enum MHD_Result *ret)
{
	bool done = false;

	pthread_mutex_lock(&store.lock);
	if (now_ms() < pause_until) {
		pthread_mutex_unlock(&store.lock);
		*ret = reply_status(c, 503, "ServiceUnavailable", "ks-apiserver is paused (fault "
				    "pause_s)");
		return true;
	}
	if (fail_next > 0) {
		int code = fail_code;

		fail_next--;
		pthread_mutex_unlock(&store.lock);
		*ret = reply_status(c, code, reason_of(code), "injected failure (fault fail_next)");
		return true;
	}
	if (hang_next > 0) {
		unsigned gen = release_gen;

		/* Accepted, read, and not answered until {"release": true}; then answered. */
		hang_next--;
		hanging++;
		while (release_gen == gen)
			while (pthread_cond_wait(&store.cond, &store.lock) == EINTR)
				;
		hanging--;
	}
	pthread_mutex_unlock(&store.lock);
	return done;
}

static json_object *stats_json(void)
{
	json_object *o = json_object_new_object(), *copy = NULL;

	pthread_mutex_lock(&stat_lock);
	if (stats)
		json_object_deep_copy(stats, &copy, NULL);
	json_object_object_add(o, "requests", copy ? copy : json_object_new_object());
	copy = NULL;
	if (obj_stats)
		json_object_deep_copy(obj_stats, &copy, NULL);
	json_object_object_add(o, "objects", copy ? copy : json_object_new_object());
	json_object_object_add(o, "total", json_object_new_int64(total));
	pthread_mutex_unlock(&stat_lock);
	pthread_mutex_lock(&store.lock);
	json_object_object_add(o, "hanging", json_object_new_int(hanging));
	json_object_object_add(o, "resourceVersion", json_object_new_int64(store.rv));
	json_object_object_add(o, "compacted", json_object_new_int64(store.compacted));
	json_object_object_add(o, "history", json_object_new_int64(store.nhist));
	pthread_mutex_unlock(&store.lock);
	return o;
}

/* One fault key; store.lock held. 0, or an HTTP code with msg filled. */
static int fault_key(const char *k, json_object *v, json_object *body, char *msg, size_t len)
{
	struct resdef *r;

	if (!strcmp(k, "cut_watches")) {
		if (json_object_get_boolean(v))
			store.cut_gen++;
	} else if (!strcmp(k, "compact")) {
		if (json_object_get_boolean(v))
			hist_compact();
	} else if (!strcmp(k, "fail_next")) {
		json_object *code;

		fail_next = json_object_get_int(v);
		fail_code = json_object_object_get_ex(body, "code", &code) ? json_object_get_int(code) :
									      500;
	} else if (!strcmp(k, "code")) {
		/* read with fail_next */
	} else if (!strcmp(k, "hang_next")) {
		hang_next = json_object_get_int(v);
	} else if (!strcmp(k, "release")) {
		if (json_object_get_boolean(v)) {
			hang_next = 0;
			release_gen++;
		}
	} else if (!strcmp(k, "pause_s")) {
		/* A stopped server drops its streams too. */
		pause_until = now_ms() + (int64_t)(json_object_get_double(v) * 1000);
		store.cut_gen++;
	} else if (!strcmp(k, "disable") || !strcmp(k, "enable")) {
		if (!(r = res_find_gvr(json_object_get_string(v)))) {
			snprintf(msg, len, "%s: no resource %s: write group/version/resource, e.g. "
				 "gateway.networking.k8s.io/v1/httproutes or core/v1/services", k,
				 json_object_get_string(v));
			return 400;
		}
		r->disabled = !strcmp(k, "disable");
	} else if (!strcmp(k, "interpose")) {
		const char *key = obj_str(v, "object");
		json_object *patch;

		if (!key || !json_object_object_get_ex(v, "patch", &patch) ||
		    !json_object_is_type(patch, json_type_object)) {
			snprintf(msg, len, "interpose: write {\"object\": \"R/NS/NAME[/status]\", "
				 "\"patch\": {merge patch}}");
			return 400;
		}
		free(interpose_key);
		json_object_put(interpose_patch);
		interpose_key = strdup(key);
		interpose_patch = json_object_get(patch);
	} else if (!strcmp(k, "reset_stats")) {
		pthread_mutex_lock(&stat_lock);
		json_object_put(stats);
		stats = NULL;
		json_object_put(obj_stats);
		obj_stats = NULL;
		total = 0;
		pthread_mutex_unlock(&stat_lock);
	} else {
		snprintf(msg, len, "unknown fault key %s: use cut_watches, compact, fail_next (+code), "
			 "hang_next, release, pause_s, disable, enable, interpose or reset_stats", k);
		return 400;
	}
	return 0;
}

enum MHD_Result handle_control(struct MHD_Connection *c, const char *method, const char *url,
			       const char *body, size_t len)
{
	json_object *o;
	char msg[256];
	int code = 0;

	if (!strcmp(url, "/_ksplit/stats") && !strcmp(method, "GET"))
		return reply_json(c, 200, stats_json());
	if (!strcmp(url, "/_ksplit/load") && !strcmp(method, "POST"))
		return handle_load(c, body, len);
	if (strcmp(url, "/_ksplit/fault") || strcmp(method, "POST"))
		return reply_status(c, 404, "NotFound", "control API: GET /_ksplit/stats, POST "
				    "/_ksplit/fault or POST /_ksplit/load");
	o = len ? json_tokener_parse(body) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return reply_status(c, 400, "BadRequest", "fault: the body must be a JSON object, "
				    "e.g. {\"compact\":true}");
	}
	pthread_mutex_lock(&store.lock);
	json_object_object_foreach(o, k, v) {
		if ((code = fault_key(k, v, o, msg, sizeof(msg))))
			break;
	}
	pthread_cond_broadcast(&store.cond);
	pthread_mutex_unlock(&store.lock);
	json_object_put(o);
	if (code)
		return reply_status(c, code, "BadRequest", "%s", msg);
	return reply_json(c, 200, stats_json());
}

/* At exit: end every watch and answer every hung request, so the daemon can stop. */
void control_release_all(void)
{
	pthread_mutex_lock(&store.lock);
	store.cut_gen++;
	hang_next = 0;
	release_gen++;
	pthread_cond_broadcast(&store.cond);
	pthread_mutex_unlock(&store.lock);
}

bool control_paused(void)
{
	bool paused;

	pthread_mutex_lock(&store.lock);
	paused = now_ms() < pause_until;
	pthread_mutex_unlock(&store.lock);
	return paused;
}
