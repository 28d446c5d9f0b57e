// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#include "health/h2.h"

struct ks_h2 {
	nghttp2_session *s;
	int32_t stream;		/* the running request; 0: none */
	int status;		/* last :status of that stream (a 1xx is replaced by the final one) */
	uint64_t body;
	bool done;		/* the running request has its answer */
	bool cut;		/* body over the cap: connection not reused */
	bool goaway;
	bool refused;		/* the request was refused unprocessed (GOAWAY, REFUSED_STREAM) */
	bool failed;
	const char *error;
	char errbuf[160];
	/* Output that a short write left over; mem_send's own buffer does not outlive the next call. */
	uint8_t *pend;
	size_t pend_len, pend_off;
	const uint8_t *last;	/* what ks_h2_out() handed out from mem_send */
	size_t last_len;
};

static void fail(struct ks_h2 *h, const char *fmt, const char *arg)
{
	if (h->failed)
		return;
	h->failed = true;
	snprintf(h->errbuf, sizeof(h->errbuf), fmt, arg);
	h->error = h->errbuf;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *val, size_t vlen, uint8_t flags, void *ud)
{
	struct ks_h2 *h = ud;
	int st = 0;
	size_t i;

	(void)s;
	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != h->stream || nlen != 7 ||
	    memcmp(name, ":status", 7))
		return 0;
	/* nghttp2 has checked it is three digits. */
	for (i = 0; i < vlen; i++)
		st = st * 10 + (val[i] - '0');
	h->status = st;
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct ks_h2 *h = ud;

	(void)flags;
	(void)data;
	if (id != h->stream || h->done)
		return 0;
	h->body += len;
	if (h->body > KS_H1_BODY_CAP) {
		/* The status is all a check needs: stop the stream, answer now. */
		h->cut = true;
		h->done = true;
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct ks_h2 *h = ud;

	(void)s;
	if (id != h->stream || h->done)
		return 0;
	/* nghttp2 closes streams above a GOAWAY's last id with REFUSED_STREAM too. */
	if (code == NGHTTP2_REFUSED_STREAM && !h->status)
		h->refused = true;
	if (code != NGHTTP2_NO_ERROR)
		fail(h, "http2 stream reset: %s", nghttp2_http2_strerror(code));
	else if (h->status < 200)
		fail(h, "%s", "http2 stream closed without a response");
	else
		h->done = true;
	return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct ks_h2 *h = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY)
		h->goaway = true;
	return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
	struct ks_h2 *h = ud;
	char m[128];

	(void)s;
	(void)code;
	snprintf(m, sizeof(m), "%.*s", (int)(len < sizeof(m) ? len : sizeof(m) - 1), msg);
	fail(h, "http2: %s", m);
	return 0;
}

int ks_h2_new(struct ks_h2 **out)
{
	/* Checks never want pushed responses. */
	static const nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };
	nghttp2_session_callbacks *cb = NULL;
	struct ks_h2 *h;
	int ret = -ENOMEM;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h || nghttp2_session_callbacks_new(&cb))
		goto out;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_callbacks_set_error_callback2(cb, on_error);
	if (nghttp2_session_client_new(&h->s, cb, h))
		goto out;
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 1))
		goto out;
	*out = h;
	h = NULL;
	ret = 0;
out:
	nghttp2_session_callbacks_del(cb);
	ks_h2_free(h);
	return ret;
}

void ks_h2_free(struct ks_h2 *h)
{
	if (!h)
		return;
	nghttp2_session_del(h->s);
	free(h->pend);
	free(h);
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

int ks_h2_request(struct ks_h2 *h, const char *host, uint16_t port, const char *path, bool https)
{
	char auth[80];
	int32_t id;

	if (!ks_h2_reusable(h))
		return -EPIPE;
	if (h->stream && !h->done)
		return -EBUSY;
	if (port == (https ? 443 : 80))
		snprintf(auth, sizeof(auth), "%s", host);
	else
		snprintf(auth, sizeof(auth), "%s:%u", host, port);
	{
		const nghttp2_nv nva[] = {
			NV(":method", "GET"),
			NV(":scheme", https ? "https" : "http"),
			NV(":authority", auth),
			NV(":path", path),
			NV("user-agent", "ksplit-healthcheck/1"),
			NV("accept", "*/*"),
		};

		id = nghttp2_submit_request(h->s, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL,
					    NULL);
	}
	if (id < 0)
		return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPIPE;
	h->stream = id;
	h->status = 0;
	h->body = 0;
	h->done = false;
	return 0;
}

size_t ks_h2_out(struct ks_h2 *h, const uint8_t **data)
{
	ssize_t n;

	if (h->pend_off < h->pend_len) {
		*data = h->pend + h->pend_off;
		return h->pend_len - h->pend_off;
	}
	n = nghttp2_session_mem_send(h->s, data);
	if (n < 0) {
		fail(h, "http2: %s", nghttp2_strerror((int)n));
		n = 0;
	}
	h->last = n ? *data : NULL;
	h->last_len = (size_t)n;
	return (size_t)n;
}

void ks_h2_sent(struct ks_h2 *h, size_t n)
{
	uint8_t *p;

	if (h->pend_off < h->pend_len) {
		h->pend_off += n;
		return;
	}
	if (!h->last || n >= h->last_len) {
		h->last = NULL;
		return;
	}
	/* A short write: keep the rest, mem_send's buffer is reused by its next call. */
	p = realloc(h->pend, h->last_len - n);
	if (!p) {
		fail(h, "%s", "http2: out of memory");
		return;
	}
	memcpy(p, h->last + n, h->last_len - n);
	h->pend = p;
	h->pend_len = h->last_len - n;
	h->pend_off = 0;
	h->last = NULL;
}

enum ks_h1_result ks_h2_feed(struct ks_h2 *h, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (h->failed)
		return KS_H1_BAD;
	if (!len) {
		fail(h, "%s", h->stream && !h->done && h->status ?
			 "connection closed in the middle of the response" :
			 "connection closed without a response");
		return KS_H1_BAD;
	}
	n = nghttp2_session_mem_recv(h->s, buf, len);
	if (n < 0)
		fail(h, "http2: %s", nghttp2_strerror((int)n));
	if (h->stream && h->done)
		return KS_H1_DONE;
	if (h->failed)
		return KS_H1_BAD;
	if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) {
		fail(h, "%s", h->goaway ? "http2: connection closed by the server (GOAWAY)" :
					  "http2: connection ended");
		return KS_H1_BAD;
	}
	return KS_H1_MORE;
}

int ks_h2_status(const struct ks_h2 *h)
{
	return h->status;
}

const char *ks_h2_error(const struct ks_h2 *h)
{
	return h->error ? h->error : "http2: no error";
}

bool ks_h2_refused(const struct ks_h2 *h)
{
	return h->refused;
}

bool ks_h2_reusable(const struct ks_h2 *h)
{
	return !h->failed && !h->goaway && !h->cut && nghttp2_session_want_read(h->s);
}
