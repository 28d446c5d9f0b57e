// SPDX-License-Identifier: BSD-2-Clause
/*
 * The HTTP/2 check client (user/h2.c) against an nghttp2 server session in
 * memory: reuse of one connection, interim and final statuses, bodies up to
 * and past the cap, resets, GOAWAY, PING between requests, short writes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "health/h2.h"

/* What the server does with the next request. */
struct srv {
	nghttp2_session *s;
	int status;
	int interim;		/* a 1xx HEADERS first, if set */
	size_t body, body_left;
	bool rst, goaway_after;
	bool refuse;		/* GOAWAY naming the previous stream, no answer */
	int requests, ping_acks;
	char path[64], authority[64], scheme[8];
};

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct srv *v = ud;
	size_t n = v->body_left < len ? v->body_left : len;

	(void)s;
	(void)id;
	(void)src;
	memset(buf, 'x', n);
	v->body_left -= n;
	if (!v->body_left)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int srv_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		      const uint8_t *val, size_t vlen, uint8_t flags, void *ud)
{
	struct srv *v = ud;
	char *dst = NULL;

	(void)s;
	(void)f;
	(void)flags;
	if (nlen == 5 && !memcmp(name, ":path", 5))
		dst = v->path;
	else if (nlen == 10 && !memcmp(name, ":authority", 10))
		dst = v->authority;
	else if (nlen == 7 && !memcmp(name, ":scheme", 7))
		dst = v->scheme;
	if (dst && vlen < 63) {
		memcpy(dst, val, vlen);
		dst[vlen] = '\0';
	}
	return 0;
}

static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct srv *v = ud;
	char st[4];

	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		v->ping_acks++;
	if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	v->requests++;
	if (v->refuse)
		return nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, f->hd.stream_id - 2,
					     NGHTTP2_NO_ERROR, NULL, 0);
	if (v->rst)
		return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						 NGHTTP2_INTERNAL_ERROR);
	if (v->interim) {
		snprintf(st, sizeof(st), "%d", v->interim);
		nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)st, 7, 3, 0 };

		nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NULL, &nv, 1, NULL);
	}
	snprintf(st, sizeof(st), "%d", v->status);
	{
		nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)st, 7, 3, 0 };
		nghttp2_data_provider dp = { .read_callback = body_read };

		v->body_left = v->body;
		nghttp2_submit_response(s, f->hd.stream_id, &nv, 1, v->body ? &dp : NULL);
	}
	if (v->goaway_after)
		nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR,
				      NULL, 0);
	return 0;
}

static void srv_init(struct srv *v)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 };

	memset(v, 0, sizeof(*v));
	v->status = 200;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	assert_int_equal(nghttp2_session_server_new(&v->s, cb, v), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(v->s, NGHTTP2_FLAG_NONE, &iv, 1), 0);
}

/*
 * Move bytes both ways until nothing moves; client output goes over in
 * pieces of at most step bytes (short writes). Returns the last result
 * the client reported (MORE if it was never fed).
 */
static enum ks_h1_result pump(struct ks_h2 *c, struct srv *v, size_t step)
{
	enum ks_h1_result res = KS_H1_MORE;
	bool moved = true;

	while (moved && res == KS_H1_MORE) {
		const uint8_t *d;
		size_t n;
		ssize_t m;

		moved = false;
		while ((n = ks_h2_out(c, &d))) {
			if (n > step)
				n = step;
			assert_int_equal(nghttp2_session_mem_recv(v->s, d, n), (ssize_t)n);
			ks_h2_sent(c, n);
			moved = true;
		}
		while ((m = nghttp2_session_mem_send(v->s, &d)) > 0) {
			res = ks_h2_feed(c, d, (size_t)m);
			moved = true;
			if (res != KS_H1_MORE)
				break;
		}
	}
	return res;
}

static void test_reuse_and_statuses(void **state)
{
	static const int want[] = { 200, 503, 204, 301 };
	struct ks_h2 *c;
	struct srv v;
	size_t i;

	(void)state;
	srv_init(&v);
	assert_int_equal(ks_h2_new(&c), 0);
	for (i = 0; i < 4; i++) {
		v.status = want[i];
		assert_int_equal(ks_h2_request(c, "10.0.0.7", 8080, "/health", false), 0);
		assert_int_equal(ks_h2_request(c, "10.0.0.7", 8080, "/health", false), -EBUSY);
		assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
		assert_int_equal(ks_h2_status(c), want[i]);
		assert_true(ks_h2_reusable(c));
	}
	/* One connection, four streams. */
	assert_int_equal(v.requests, 4);
	assert_string_equal(v.path, "/health");
	assert_string_equal(v.authority, "10.0.0.7:8080");
	assert_string_equal(v.scheme, "http");
	/* The scheme's default port is left out, as curl does. */
	assert_int_equal(ks_h2_request(c, "[fd00::7]", 443, "/", true), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_string_equal(v.authority, "[fd00::7]");
	assert_string_equal(v.scheme, "https");
	ks_h2_free(c);
	nghttp2_session_del(v.s);
}

static void test_interim_and_body(void **state)
{
	struct ks_h2 *c;
	struct srv v;

	(void)state;
	srv_init(&v);
	assert_int_equal(ks_h2_new(&c), 0);
	v.interim = 103;
	v.status = 200;
	v.body = 1000;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 7), KS_H1_DONE);	/* short writes all along */
	assert_int_equal(ks_h2_status(c), 200);
	assert_true(ks_h2_reusable(c));
	/* Exactly the cap: read whole, reusable (needs window updates past 64 KiB - 1). */
	v.interim = 0;
	v.body = KS_H1_BODY_CAP;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_true(ks_h2_reusable(c));
	/* Past the cap: answered from the status, stream cancelled, connection not reused. */
	v.status = 503;
	v.body = KS_H1_BODY_CAP + 5000;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_int_equal(ks_h2_status(c), 503);
	assert_false(ks_h2_reusable(c));
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), -EPIPE);
	ks_h2_free(c);
	nghttp2_session_del(v.s);
}

static void test_reset_goaway_ping(void **state)
{
	uint8_t opaque[8] = "ksplit!";
	struct ks_h2 *c;
	struct srv v;

	(void)state;
	/* A reset stream is a failed check and ends the connection's use. */
	srv_init(&v);
	assert_int_equal(ks_h2_new(&c), 0);
	v.rst = true;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_BAD);
	assert_string_equal(ks_h2_error(c), "http2 stream reset: INTERNAL_ERROR");
	assert_false(ks_h2_reusable(c));
	ks_h2_free(c);
	nghttp2_session_del(v.s);

	/* PING between requests is answered; GOAWAY after an answer: the answer stands. */
	srv_init(&v);
	assert_int_equal(ks_h2_new(&c), 0);
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_int_equal(nghttp2_submit_ping(v.s, NGHTTP2_FLAG_NONE, opaque), 0);
	pump(c, &v, 1 << 20);
	pump(c, &v, 1 << 20);	/* the ack goes back */
	assert_int_equal(v.ping_acks, 1);
	assert_true(ks_h2_reusable(c));
	v.goaway_after = true;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_int_equal(ks_h2_status(c), 200);
	pump(c, &v, 1 << 20);
	assert_false(ks_h2_reusable(c));
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), -EPIPE);
	ks_h2_free(c);
	nghttp2_session_del(v.s);
}

/* Its keep-alive timeout made the server say GOAWAY as our request went out: safe to retry. */
static void test_refused_by_goaway(void **state)
{
	struct ks_h2 *c;
	struct srv v;

	(void)state;
	srv_init(&v);
	assert_int_equal(ks_h2_new(&c), 0);
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_DONE);
	assert_false(ks_h2_refused(c));
	v.refuse = true;
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(pump(c, &v, 1 << 20), KS_H1_BAD);
	assert_true(ks_h2_refused(c));
	assert_int_equal(ks_h2_status(c), 0);
	assert_false(ks_h2_reusable(c));
	ks_h2_free(c);
	nghttp2_session_del(v.s);
}

/* A write that could not go: the same bytes come back for the retry. */
static void test_blocked_write_kept(void **state)
{
	const uint8_t *d;
	uint8_t first[256];
	size_t n, m;
	struct ks_h2 *c;

	(void)state;
	assert_int_equal(ks_h2_new(&c), 0);
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	n = ks_h2_out(c, &d);
	assert_true(n > 0 && n <= sizeof(first));
	memcpy(first, d, n);
	ks_h2_sent(c, 0);	/* EAGAIN */
	m = ks_h2_out(c, &d);
	assert_int_equal(m, n);
	assert_memory_equal(d, first, n);
	ks_h2_sent(c, 3);	/* then a short write */
	m = ks_h2_out(c, &d);
	assert_int_equal(m, n - 3);
	assert_memory_equal(d, first + 3, n - 3);
	ks_h2_sent(c, m);
	ks_h2_free(c);
}

static void test_not_http2_and_eof(void **state)
{
	static const char h1[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	struct ks_h2 *c;

	(void)state;
	assert_int_equal(ks_h2_new(&c), 0);
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(ks_h2_feed(c, (const uint8_t *)h1, sizeof(h1) - 1), KS_H1_BAD);
	assert_non_null(strstr(ks_h2_error(c), "http2"));
	assert_false(ks_h2_reusable(c));
	ks_h2_free(c);

	assert_int_equal(ks_h2_new(&c), 0);
	assert_int_equal(ks_h2_request(c, "10.0.0.7", 80, "/", false), 0);
	assert_int_equal(ks_h2_feed(c, NULL, 0), KS_H1_BAD);
	assert_string_equal(ks_h2_error(c), "connection closed without a response");
	ks_h2_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse_and_statuses),
		cmocka_unit_test(test_interim_and_body),
		cmocka_unit_test(test_reset_goaway_ping),
		cmocka_unit_test(test_refused_by_goaway),
		cmocka_unit_test(test_blocked_write_kept),
		cmocka_unit_test(test_not_http2_and_eof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
