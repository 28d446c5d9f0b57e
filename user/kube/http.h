/* SPDX-License-Identifier: BSD-2-Clause */
/* libcurl requests to the API server. Internal to kube/. */
#ifndef KSPLIT_KUBE_HTTP_H
#define KSPLIT_KUBE_HTTP_H

#include <stdbool.h>
#include <curl/curl.h>

#include "kube/kube.h"

/*
 * Points h at c->server + path with c's TLS settings and a fresh bearer
 * token; stream: a watch (no overall timeout). *hdrs is for the caller to
 * free after the transfer. 0 or -errno.
 */
int kube_http_setup(CURL *h, const struct kube_conn *c, const char *path, bool stream,
		    struct curl_slist **hdrs);

#endif
