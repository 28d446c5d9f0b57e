// SPDX-License-Identifier: BSD-2-Clause
/*
 * libcurl handles for the API server: TLS from the kubeconfig (CA, client
 * certificate, as files or in-memory blobs), the bearer token re-read from
 * its file before every request (projected service-account tokens rotate),
 * and JSON accepted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/http.h"

/* The token to send now: the file's current content, else the inline one. */
static int current_token(const struct kube_conn *c, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	*buf = 0;
	if (c->token_file) {
		fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = read(fd, buf, len - 1);
		close(fd);
		if (n < 0)
			return -errno;
		buf[n] = 0;
		buf[strcspn(buf, "\r\n")] = 0;
		return 0;
	}
	if (c->token)
		snprintf(buf, len, "%s", c->token);
	return 0;
}

int kube_http_setup(CURL *h, const struct kube_conn *c, const char *path, bool stream,
		    struct curl_slist **hdrs)
{
	char url[2048], tok[8192], auth[8300];
	struct curl_blob blob;
	int err;

	*hdrs = NULL;
	if (snprintf(url, sizeof(url), "%s%s", c->server, path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	err = current_token(c, tok, sizeof(tok));
	if (err)
		return err;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	/* A list must finish; a watch is ended by the server (timeoutSeconds) or a stall. */
	if (!stream)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
	/* A watch that carries nothing (not even a bookmark) for this long is dead. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stream ? 90L : 30L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_data) {
		blob = (struct curl_blob){ c->ca_data, c->ca_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	if (c->cert_data) {
		blob = (struct curl_blob){ c->cert_data, c->cert_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (c->key_data) {
		blob = (struct curl_blob){ c->key_data, c->key_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	*hdrs = curl_slist_append(*hdrs, "Accept: application/json");
	if (*tok) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
		*hdrs = curl_slist_append(*hdrs, auth);
	}
	if (!*hdrs)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	return 0;
}

static size_t call_body(char *p, size_t sz, size_t n, void *arg)
{
	struct kube_call *c = arg;
	size_t len = sz * n;
	char *nb;

	/* Leases and single objects: a response past this is not one of them. */
	if (c->len + len > (4u << 20) || !(nb = realloc(c->body, c->len + len + 1)))
		return 0;
	memcpy(nb + c->len, p, len);
	c->body = nb;
	c->len += len;
	c->body[c->len] = 0;
	return len;
}

/* A fresh handle in c for method path (body: JSON or NULL). 0 or -errno (c->h may be set). */
static int call_setup(struct kube_call *c, const struct kube_conn *conn, const char *method,
		      const char *path, const char *body, long timeout_ms)
{
	struct curl_slist *h;
	int err;

	c->h = curl_easy_init();
	if (!c->h)
		return -ENOMEM;
	err = kube_http_setup(c->h, conn, path, false, &c->hdrs);
	if (err)
		return err;
	if (body) {
		if (!(h = curl_slist_append(c->hdrs, "Content-Type: application/json")))
			return -ENOMEM;
		c->hdrs = h;
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
		curl_easy_setopt(c->h, CURLOPT_COPYPOSTFIELDS, body);
	}
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, call_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_PRIVATE, &c->own);
	return 0;
}

int kube_call_start(struct kube_call *c, CURLM *multi, const struct kube_conn *conn,
		    const char *method, const char *path, const char *body)
{
	int err;

	kube_call_end(c, multi);
	err = call_setup(c, conn, method, path, body, 10000L);
	if (!err && curl_multi_add_handle(multi, c->h) != CURLM_OK)
		err = -ENOMEM;
	if (err)
		kube_call_end(c, multi);
	return err;
}

long kube_call_sync(struct kube_call *c, const struct kube_conn *conn, const char *method,
		    const char *path, const char *body, long timeout_ms)
{
	CURLcode res = CURLE_FAILED_INIT;

	kube_call_end(c, NULL);
	if (!call_setup(c, conn, method, path, body, timeout_ms))
		res = curl_easy_perform(c->h);
	return kube_call_code(c, res);
}

long kube_call_code(struct kube_call *c, CURLcode result)
{
	c->code = 0;
	if (result == CURLE_OK && c->h)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->code);
	return c->code;
}

void kube_call_end(struct kube_call *c, CURLM *multi)
{
	if (c->h) {
		if (multi)
			curl_multi_remove_handle(multi, c->h);
		curl_easy_cleanup(c->h);
		c->h = NULL;
	}
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	free(c->body);
	c->body = NULL;
	c->len = 0;
}
