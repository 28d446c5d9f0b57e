// SPDX-License-Identifier: BSD-2-Clause
/*
 * Watches: a chunked stream of JSON lines {"type": ..., "object": ...}. The
 * daemon runs a thread per connection, so the content reader below may block
 * on store.cond until an event, a bookmark tick, the timeout or a cut.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "apiserver.h"

#define BATCH (256 * 1024)	/* bytes serialized per wake-up, at most (plus one event) */
#define DEFAULT_TIMEOUT 1800	/* seconds, the real server's --min-request-timeout */

struct watch {
	struct resdef *r;
	char *ns, *ls, *fs;
	uint64_t rv;		/* every event up to here has been considered */
	bool bookmarks, ending;
	unsigned cut_gen;
	time_t deadline, next_bookmark;
	struct blob **init;	/* resourceVersion 0: current objects, sent as ADDED first */
	size_t ninit, iinit;
	struct sbuf out;	/* serialized, not yet handed to MHD from off on */
	size_t off;
};

static void emit(struct watch *w, const char *type, json_object *obj)
{
	sb_str(&w->out, "{\"type\":\"");
	sb_str(&w->out, type);
	sb_str(&w->out, "\",\"object\":");
	sb_json(&w->out, obj);
	sb_str(&w->out, "}\n");
	json_object_put(obj);
}

static void emit_blob(struct watch *w, const char *type, const struct blob *b)
{
	sb_str(&w->out, "{\"type\":\"");
	sb_str(&w->out, type);
	sb_str(&w->out, "\",\"object\":");
	sb_typed(&w->out, w->r, b);
	sb_str(&w->out, "}\n");
}

/* The ERROR event a watch from a compacted resourceVersion gets, then the stream ends. */
static void expire(struct watch *w, uint64_t rv)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)", (unsigned long long)rv,
		 (unsigned long long)store.compacted);
	emit(w, "ERROR", status_obj(410, "Expired", msg));
	w->ending = true;
}

static void bookmark(struct watch *w)
{
	json_object *o = json_object_new_object(), *md = json_object_new_object();
	char av[256], rv[24];

	json_object_object_add(o, "kind", json_object_new_string(w->r->kind));
	json_object_object_add(o, "apiVersion",
			       json_object_new_string(res_api_version(w->r, av, sizeof(av))));
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)w->rv);
	json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	json_object_object_add(o, "metadata", md);
	emit(w, "BOOKMARK", o);
}

/* Serialize what is due: the initial objects first, then history after w->rv. */
static void fill(struct watch *w)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED" };

	while (w->iinit < w->ninit && w->out.len < BATCH)
		emit_blob(w, "ADDED", w->init[w->iinit++]);
	if (w->iinit < w->ninit)
		return;
	if (w->rv < store.compacted) {
		/* This watcher fell behind a compaction: it cannot be told what it missed. */
		expire(w, w->rv);
		return;
	}
	for (size_t i = hist_first_after(w->rv); i < store.nhist && w->out.len < BATCH; i++) {
		struct event *e = &store.hist[i];

		w->rv = e->rv;
		if (e->st == w->r->st && blob_match(e->ns, e->b, w->ns, w->ls, w->fs))
			emit_blob(w, names[e->type], e->b);
	}
	if (w->out.len < BATCH)
		w->rv = store.rv;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct watch *w = cls;
	ssize_t ret;

	(void)pos;
	pthread_mutex_lock(&store.lock);
	for (;;) {
		struct timespec until = { 0 };
		time_t now = time(NULL);

		if (store.cut_gen != w->cut_gen || w->r->disabled) {
			ret = MHD_CONTENT_READER_END_WITH_ERROR;
			break;
		}
		if (w->off < w->out.len) {
			ret = w->out.len - w->off < max ? w->out.len - w->off : max;
			memcpy(out, w->out.s + w->off, ret);
			w->off += ret;
			break;
		}
		w->out.len = w->off = 0;
		if (!w->ending && now >= w->deadline && w->bookmarks) {
			/* As the real server does: a last bookmark, so the client resumes from it. */
			fill(w);
			if (!w->ending)
				bookmark(w);
			w->ending = true;
			continue;
		}
		if (w->ending || now >= w->deadline) {
			ret = MHD_CONTENT_READER_END_OF_STREAM;
			break;
		}
		fill(w);
		if (w->out.len)
			continue;
		if (w->bookmarks && now >= w->next_bookmark) {
			bookmark(w);
			w->next_bookmark = now + 1;
			continue;
		}
		/* Wake at least every second for bookmarks and the deadline. A client that
		 * left is noticed at the next write (a bookmark, an event, or the end). */
		until.tv_sec = now + 1 < w->deadline ? now + 1 : w->deadline;
		while (pthread_cond_timedwait(&store.cond, &store.lock, &until) == EINTR)
			;
	}
	pthread_mutex_unlock(&store.lock);
	return ret;
}

static void watch_free(void *cls)
{
	struct watch *w = cls;

	for (size_t i = 0; i < w->ninit; i++)
		blob_put(w->init[i]);
	free(w->init);
	free(w->ns);
	free(w->ls);
	free(w->fs);
	free(w->out.s);
	free(w);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

enum MHD_Result handle_watch(struct MHD_Connection *c, struct route *rt)
{
	const char *rvs = qarg(c, "resourceVersion"), *to = qarg(c, "timeoutSeconds");
	struct watch *w = calloc(1, sizeof(*w));
	struct MHD_Response *rsp;
	enum MHD_Result ret;
	char what[256];

	if (!w)
		return MHD_NO;
	res_stat_name(rt->r, NULL, what, sizeof(what));
	stat_count("watch", what);
	w->r = rt->r;
	w->ns = dup_or_null(rt->ns);
	w->ls = dup_or_null(qarg(c, "labelSelector"));
	w->fs = dup_or_null(qarg(c, "fieldSelector"));
	w->bookmarks = qbool(c, "allowWatchBookmarks");
	w->deadline = time(NULL) + (to && atoi(to) > 0 ? atoi(to) : DEFAULT_TIMEOUT);
	w->next_bookmark = time(NULL) + 1;
	pthread_mutex_lock(&store.lock);
	w->cut_gen = store.cut_gen;
	if (!rvs || !*rvs || !strcmp(rvs, "0")) {
		struct storage *st = rt->r->st;
		const size_t *order = st_sorted(st);

		/* As the real server does: every current object as ADDED, then changes. */
		w->init = calloc(st->n + 1, sizeof(*w->init));
		for (size_t i = 0; w->init && i < st->n; i++) {
			const struct obj *e = &st->v[order[i]];

			if (blob_match(e->ns, e->b, w->ns, w->ls, w->fs))
				w->init[w->ninit++] = blob_get(e->b);
		}
		w->rv = store.rv;
	} else {
		w->rv = strtoull(rvs, NULL, 10);
		if (w->rv < store.compacted)
			expire(w, w->rv);
	}
	pthread_mutex_unlock(&store.lock);
	rsp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader, w, watch_free);
	if (!rsp) {
		watch_free(w);
		return MHD_NO;
	}
	MHD_add_response_header(rsp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, 200, rsp);
	MHD_destroy_response(rsp);
	return ret;
}
