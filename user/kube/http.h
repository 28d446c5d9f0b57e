/* SPDX-License-Identifier: BSD-2-Clause */
/* libcurl requests to the API server. Internal to kube/. */
#ifndef KSPLIT_KUBE_HTTP_H
#define KSPLIT_KUBE_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>

#include "kube/kube.h"

/*
 * Points h at c->server + path with c's TLS settings and a fresh bearer
 * token; stream: a watch (no overall timeout). *hdrs is for the caller to
 * free after the transfer. 0 or -errno.
 */
int kube_http_setup(CURL *h, const struct kube_conn *c, const char *path, bool stream,
		    struct curl_slist **hdrs);

/*
 * CURLINFO_PRIVATE of every handle on the source's multi: whom to tell when
 * the transfer is done (a reflector, or a kube_call of the lease or status
 * writers). Each owner struct has this as its first member.
 */
struct kube_owner {
	void (*done)(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms);
};

/* One request with a small JSON body each way (the lease and the status writers). */
struct kube_call {
	struct kube_owner own;		/* first: own.done is the caller's */
	CURL *h;			/* in flight, or NULL */
	struct curl_slist *hdrs;
	char *body;			/* the response so far */
	size_t len;
	long code;			/* HTTP status, set by kube_call_code */
	void *ctx;			/* the caller's */
};

/*
 * Starts method path (body: JSON, or NULL) on multi; c->own.done is told
 * when it ends. 0 or -errno (nothing in flight then).
 */
int kube_call_start(struct kube_call *c, CURLM *multi, const struct kube_conn *conn,
		    const char *method, const char *path, const char *body);
/*
 * The same request, blocking up to timeout_ms (only for the way out, when
 * the event loop has ended): the HTTP status, 0 when none came.
 */
long kube_call_sync(struct kube_call *c, const struct kube_conn *conn, const char *method,
		    const char *path, const char *body, long timeout_ms);
/* In own.done: the response's HTTP status (0 when none came), kept in c->code. */
long kube_call_code(struct kube_call *c, CURLcode result);
/* Ends the transfer (if any; multi NULL: a kube_call_sync one) and frees the response. */
void kube_call_end(struct kube_call *c, CURLM *multi);

#endif
