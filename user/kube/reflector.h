/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One resource kept in step with the API server the way client-go's
 * reflector does it: a paged list that gives the collection's
 * resourceVersion, then a watch from it with bookmarks; when the stream
 * ends, a watch from the last resourceVersion seen; on 410 Expired a relist
 * that is diffed against what is held (never a flush); on errors an
 * exponential backoff with jitter from 1 s to 30 s. A resource the server
 * does not serve (its CRD is not installed) is empty and looked for again
 * every 30 s. Internal to kube/.
 */
#ifndef KSPLIT_KUBE_REFLECTOR_H
#define KSPLIT_KUBE_REFLECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "kube/http.h"
#include "kube/kube.h"
#include "kube/store.h"

struct kube_res {
	const char *group;		/* "" for the core group */
	const char *versions[3];	/* preferred first (HTTPRoute: v1, then v1beta1) */
	const char *resource;		/* "httproutes" */
	const char *kind;		/* "HTTPRoute" */
};

enum refl_state { R_START, R_DISCOVER, R_LIST, R_WATCH, R_WAIT };

struct reflector {
	struct kube_owner own;		/* first: the multi handle's CURLINFO_PRIVATE */
	const struct kube_res *res;
	const struct kube_conn *conn;
	CURLM *multi;
	struct kube_store store;
	enum refl_state state;
	const char *version;		/* the served version, once discovered */
	bool served;			/* discovery found it */
	bool synced;			/* listed (or found absent) at least once */
	bool changed;			/* the store changed since kube_take_changes */
	/*
	 * What changed since the last snapshot, for the incremental load: the
	 * keys that watch events put (at most REFL_TOUCHED_MAX), or wide when
	 * anything else happened (a delete, a relist, more keys than that).
	 */
	bool wide;
	size_t n_touched;
	char *touched[32];
	uint64_t gen;			/* list generation, for the relist diff */
	char rv[64];			/* last resourceVersion seen */
	char *cont;			/* list continue token */
	CURL *h;			/* the request in flight */
	struct curl_slist *hdrs;
	char *body;			/* discovery/list response so far; watch: a partial line */
	size_t body_len;
	long code;			/* HTTP status, once known */
	uint64_t wake_ms;		/* R_WAIT: when to start again */
	unsigned backoff_ms;
	unsigned relists, watches, errors;	/* counters, for logs and tests */
	struct json_tokener *tok;
};

void refl_init(struct reflector *r, const struct kube_res *res, const struct kube_conn *c,
	       CURLM *multi);
/* Starts the next request when due. now_ms: CLOCK_MONOTONIC ms. */
void refl_tick(struct reflector *r, uint64_t now_ms);
/* h (one of r's) finished with result. */
void refl_done(struct reflector *r, CURL *h, CURLcode result, uint64_t now_ms);
/* Ms until refl_tick wants to run, or UINT64_MAX. */
uint64_t refl_next_ms(const struct reflector *r, uint64_t now_ms);
/* Forget what changed (a snapshot has taken it). */
void refl_forget_changes(struct reflector *r);
/* Lists again now, and unchanged objects whose text was dropped get it back (ks_kube_refill). */
void refl_refill(struct reflector *r);
void refl_free(struct reflector *r);

#endif
