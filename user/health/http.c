// SPDX-License-Identifier: BSD-2-Clause
/*
 * HTTP and HTTPS checks: the state machine of one check on a connection that
 * is kept between checks (connect, TLS, send, receive; a kept connection
 * that died idle is retried once on a fresh one). HTTP/1.1 through h1.c,
 * HTTP/2 through h2.c; the bytes move through conn.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "health/conn.h"

/* Room for the request line, Host, User-Agent and Accept around the longest path. */
#define H1_REQ_MAX (KS_PROBE_PATH_MAX + 256)

void kp_http_free(struct ks_prober *p, struct target *t)
{
	kp_sock_close(p, t);
	free(t->hc);
	t->hc = NULL;
}

/* The check has a verdict. keep: the connection may carry the next check. */
static void hc_end(struct ks_prober *p, struct target *t, bool pass, bool timeout, bool keep,
		   const char *why)
{
	kp_heap_del(&p->heap[H_DL], t);
	if (!keep || t->t.spec.fresh_conn)
		kp_sock_close(p, t);
	kp_finish(p, t, pass, timeout, why);
}

static void hc_fail(struct ks_prober *p, struct target *t, const char *why)
{
	hc_end(p, t, false, false, false, why);
}

/* Write what the HTTP/2 session has queued: 0 all out, -1 wait (mask set), -2 broken. */
static int h2_push(struct ks_prober *p, struct target *t, char *why, size_t wlen)
{
	const uint8_t *d;
	size_t len;
	ssize_t n;

	while ((len = ks_h2_out(t->hc->h2, &d))) {
		n = kp_hc_write(p, t, d, len, why, wlen);
		if (n == -1 && t->fd >= 0) {
			/*
			 * Nothing went: h2.c keeps its own copy for the retry
			 * (nghttp2 counts the chunk as sent and reuses its
			 * buffer). HTTP/2 reads on while its output waits.
			 */
			ks_h2_sent(t->hc->h2, 0);
			kp_hc_wait(p, t, t->hc->mask | EPOLLIN | EPOLLRDHUP);
		}
		if (n < 0)
			return (int)n;
		ks_h2_sent(t->hc->h2, (size_t)n);
	}
	return 0;
}

static void hc_connect(struct ks_prober *p, struct target *t);

/* An answer of this check has begun to arrive: a retry would be wrong. */
static bool hc_answered(const struct hconn *h)
{
	return h->h2 ? ks_h2_status(h->h2) != 0 : h->resp.got_bytes;
}

/*
 * A kept connection that died before any response byte: the server closed
 * it while idle (its keep-alive timeout) just as the request went out. Try
 * once more on a fresh connection, within the same deadline, as curl does.
 */
static bool hc_retry(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;

	if (!h->reused || h->retried || hc_answered(h))
		return false;
	h->retried = true;
	h->reused = false;
	kp_sock_close(p, t);
	pr_debug("health check reconnect", "addr=%s port=%u why=\"kept connection closed\"",
		 t->host, check_port(t));
	hc_connect(p, t);
	return true;
}

/* The connection broke: retried if it was a kept one, else a failure. */
static void hc_broken(struct ks_prober *p, struct target *t, const char *why)
{
	if (!hc_retry(p, t))
		hc_fail(p, t, why);
}

/* Send this check's request (or the rest of it); then wait for the answer. */
static void hc_send(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char why[200];
	ssize_t n;

	h->phase = PH_SEND;
	if (h->h2) {
		/* HTTP/2 reads while its output waits: PH_RECV flushes before it reads. */
		h->phase = PH_RECV;
		n = h2_push(p, t, why, sizeof(why));
	} else {
		n = 0;
		while (!n && h->sent < h->req_len) {
			n = kp_hc_write(p, t, h->req + h->sent, h->req_len - h->sent, why, sizeof(why));
			if (n > 0) {
				h->sent += (uint32_t)n;
				n = 0;
			}
		}
	}
	if (n == -1)
		return;
	if (n == -2) {
		hc_broken(p, t, why);
		return;
	}
	h->phase = PH_RECV;
	/* A kept connection is already registered for input: no syscall here. */
	kp_hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
}

/* The connection is ready for this check's request: fresh, or kept from the last check. */
static void hc_ready(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	int err;

	if (!h->h2) {
		ks_h1_resp_init(&h->resp);
		h->sent = 0;
		hc_send(p, t);
		return;
	}
	err = ks_h2_request(h->h2, t->host, check_port(t), t->t.spec.path,
			    t->t.spec.kind == KS_PROBE_HTTPS);
	if (err == -ENOMEM) {
		kp_hc_abort(p, t, "memory", ENOMEM);
		return;
	}
	if (err) {
		/* A kept session that may not take another stream: start over on a new one. */
		kp_sock_close(p, t);
		h->reused = false;
		hc_connect(p, t);
		return;
	}
	hc_send(p, t);
}

/* The protocol is known (after TLS, from ALPN): set up HTTP/2 if that is what it speaks. */
static void hc_proto(struct ks_prober *p, struct target *t, bool h2)
{
	struct hconn *h = t->hc;

	if (h2 && ks_h2_new(&h->h2)) {
		kp_hc_abort(p, t, "memory", ENOMEM);
		return;
	}
	hc_ready(p, t);
}

static void hc_handshake(struct ks_prober *p, struct target *t)
{
	char why[200];
	bool h2;
	int r;

	r = kp_tls_handshake(p, t, &h2, why, sizeof(why));
	if (!r)
		hc_proto(p, t, h2);
	else if (r == -2)
		hc_fail(p, t, why);
}

/* TCP is up: start TLS (HTTPS), or speak HTTP/1.1 or h2c (prior knowledge) at once. */
static void hc_connected(struct ks_prober *p, struct target *t)
{
	const struct ks_probe_spec *s = &t->t.spec;
	int err;

	if (s->kind != KS_PROBE_HTTPS) {
		hc_proto(p, t, s->http2);
		return;
	}
	err = kp_tls_start(p, t);
	if (err) {
		kp_hc_abort(p, t, "tls setup", -err);
		return;
	}
	t->hc->phase = PH_TLS;
	hc_handshake(p, t);
}

static void hc_connect(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char why[128];
	int fd, err;

	err = kp_sock_open(t, &fd);
	if (fd < 0) {
		kp_hc_abort(p, t, "socket", -err);
		return;
	}
	t->fd = fd;
	h->mask = 0;
	h->phase = PH_CONNECT;
	if (!err) {
		hc_connected(p, t);
		return;
	}
	if (err != -EINPROGRESS) {
		snprintf(why, sizeof(why), "connect: %s", strerror(-err));
		hc_fail(p, t, why);
		return;
	}
	kp_hc_wait(p, t, EPOLLOUT);
}

/* Feed what arrived to the protocol. */
static enum ks_h1_result hc_feed(struct hconn *h, const char *buf, size_t n)
{
	if (h->h2)
		return ks_h2_feed(h->h2, (const uint8_t *)buf, n);
	return ks_h1_resp_feed(&h->resp, buf, n);
}

static void hc_recv(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char buf[4096], why[200];
	enum ks_h1_result res;
	int status, w;
	bool keep;
	ssize_t n;

	for (;;) {
		n = kp_hc_read(p, t, buf, sizeof(buf), why, sizeof(why));
		if (n == -1)
			return;
		if (n == -2) {
			hc_broken(p, t, why);
			return;
		}
		res = hc_feed(h, buf, (size_t)n);
		/* HTTP/2 answers as it reads (SETTINGS ack, window updates); a wait is fine. */
		w = h->h2 && res != KS_H1_BAD ? h2_push(p, t, why, sizeof(why)) : 0;
		if (t->fd < 0)
			return;		/* our side gave up (epoll), kp_start_failed() has run */
		if (w == -2 && res != KS_H1_DONE) {
			hc_broken(p, t, why);
			return;
		}
		if (res == KS_H1_DONE) {
			status = h->h2 ? ks_h2_status(h->h2) : h->resp.status;
			keep = n > 0 && w != -2 &&
			       (h->h2 ? ks_h2_reusable(h->h2) : h->resp.keep_alive) &&
			       /* unasked-for bytes already decrypted would pose as the next answer */
			       (h->h2 || !kp_hc_pending(h));
			snprintf(why, sizeof(why), "http status %d", status);
			hc_end(p, t, ks_codes_has(&t->t.spec.match, status), false, keep, why);
			return;
		}
		if (res == KS_H1_BAD) {
			/* Closed, or refused by a GOAWAY, before this request was handled: retry once. */
			if ((!n || (h->h2 && ks_h2_refused(h->h2))) && hc_retry(p, t))
				return;
			if (h->h2)
				snprintf(why, sizeof(why), "%s", ks_h2_error(h->h2));
			else
				snprintf(why, sizeof(why), "%s%s", n ? "bad response: " : "",
					 h->resp.error);
			hc_fail(p, t, why);
			return;
		}
		/* Level-triggered: if more is queued in the socket, epoll says so again. */
		if ((size_t)n < sizeof(buf) && !kp_hc_pending(h))
			return;
	}
}

/*
 * Input (or room to write) on an idle kept connection. Plain HTTP/1.1: the
 * server closed it or sent what nobody asked for; drop it. TLS: it may be
 * just session tickets (TLS 1.3 sends them after the handshake). HTTP/2:
 * PING and SETTINGS come any time and are answered; GOAWAY or a close ends
 * the connection.
 */
static void hc_idle(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char buf[4096], why[200];
	ssize_t n;
	int w;

	if (!h->ssl && !h->h2) {
		kp_sock_close(p, t);
		return;
	}
	for (;;) {
		n = kp_hc_read(p, t, buf, sizeof(buf), why, sizeof(why));
		if (n == -1)
			break;
		if (n <= 0 || !h->h2 || hc_feed(h, buf, (size_t)n) == KS_H1_BAD ||
		    !ks_h2_reusable(h->h2)) {
			kp_sock_close(p, t);
			return;
		}
		if ((size_t)n < sizeof(buf) && !kp_hc_pending(h))
			break;
	}
	if (t->fd < 0)
		return;		/* kp_hc_read gave up on epoll */
	w = h->h2 ? h2_push(p, t, why, sizeof(why)) : 0;
	if (w == -2)
		kp_sock_close(p, t);
	else if (!w)
		kp_hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
}

void kp_http_event(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char why[200];
	int err;

	if (t->fd < 0)
		return;
	if (!t->in_flight) {
		hc_idle(p, t);
		return;
	}
	switch (h->phase) {
	case PH_CONNECT:
		err = kp_sock_error(t->fd);
		if (err) {
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			hc_fail(p, t, why);
			return;
		}
		hc_connected(p, t);
		break;
	case PH_TLS:
		hc_handshake(p, t);
		break;
	case PH_SEND:
		hc_send(p, t);
		break;
	case PH_RECV:
		/* HTTP/2 may have output left from the last read (then the mask has OUT). */
		if (h->h2) {
			err = h2_push(p, t, why, sizeof(why));
			if (err == -2) {
				hc_broken(p, t, why);
				return;
			}
			if (!err)
				kp_hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
			if (t->fd < 0)
				return;
		}
		hc_recv(p, t);
		break;
	}
}

void kp_http_start(struct ks_prober *p, struct target *t, uint64_t now)
{
	struct hconn *h = t->hc;
	int n;

	if (!h) {
		h = calloc(1, sizeof(*h) + H1_REQ_MAX);
		if (!h) {
			kp_start_failed(p, t, "memory", ENOMEM);
			return;
		}
		n = ks_h1_request(h->req, H1_REQ_MAX, t->host, check_port(t), t->t.spec.path,
				  t->t.spec.kind == KS_PROBE_HTTPS);
		if (n < 0) {
			free(h);
			kp_start_failed(p, t, "request", -n);
			return;
		}
		h->req_len = (uint32_t)n;
		t->hc = h;
	}
	h->retried = false;
	h->reused = t->fd >= 0;
	kp_heap_push(&p->heap[H_DL], t, now + t->t.spec.timeout_ms * NS_PER_MS);
	if (h->reused)
		hc_ready(p, t);
	else
		hc_connect(p, t);
}


void kp_http_timeout(struct ks_prober *p, struct target *t)
{
	char why[64];

	snprintf(why, sizeof(why), "timeout after %u ms", t->t.spec.timeout_ms);
	hc_end(p, t, false, true, false, why);
}
