// SPDX-License-Identifier: BSD-2-Clause
/*
 * The HTTP/1.1 check's request and response reader (user/h1.c). Every
 * response is fed whole, byte by byte and in two pieces split at every
 * offset: a check must not depend on how the kernel cuts the stream.
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

#include "health/h1.h"

struct want {
	enum ks_h1_result res;
	int status;
	bool keep_alive;
	bool cut;
};

/* Feed s in pieces of at most step bytes (0: split once at split), then EOF if eof. */
static enum ks_h1_result feed(struct ks_h1_resp *r, const char *s, size_t len, size_t step,
			     size_t split, bool eof)
{
	enum ks_h1_result res = KS_H1_MORE;
	size_t off = 0;

	ks_h1_resp_init(r);
	if (!step) {
		res = ks_h1_resp_feed(r, s, split);
		if (res == KS_H1_MORE && len > split)
			res = ks_h1_resp_feed(r, s + split, len - split);
		off = len;
	}
	while (off < len && res == KS_H1_MORE) {
		size_t n = len - off < step ? len - off : step;

		res = ks_h1_resp_feed(r, s + off, n);
		off += n;
	}
	if (eof && res == KS_H1_MORE)
		res = ks_h1_resp_feed(r, NULL, 0);
	return res;
}

static void expect_all_ways(const char *s, size_t len, bool eof, const struct want *w)
{
	struct ks_h1_resp r;
	size_t i;

	for (i = 0; i <= len + 1; i++) {
		/* i == 0: whole; 1..len: split at i; len+1: byte by byte */
		enum ks_h1_result res = i == len + 1 ? feed(&r, s, len, 1, 0, eof)
						     : feed(&r, s, len, i ? 0 : len, i, eof);

		if (res != w->res)
			fail_msg("way %zu: result %d, want %d (error: %s)", i, res, w->res,
				 r.error ? r.error : "-");
		if (w->res == KS_H1_DONE) {
			assert_int_equal(r.status, w->status);
			assert_int_equal(r.keep_alive, w->keep_alive);
			assert_int_equal(r.cut, w->cut);
		} else if (w->res == KS_H1_BAD) {
			assert_non_null(r.error);
		}
	}
}

#define EXPECT(s, eof, ...)                                                                \
	do {                                                                               \
		const struct want w_ = __VA_ARGS__;                                        \
		expect_all_ways(s, sizeof(s) - 1, eof, &w_);                               \
	} while (0)

static void test_request(void **state)
{
	char buf[1024];
	char big[600];
	int n;

	(void)state;
	n = ks_h1_request(buf, sizeof(buf), "10.0.0.1", 8080, "/health", false);
	assert_string_equal(buf, "GET /health HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"
				 "User-Agent: ksplit-healthcheck/1\r\nAccept: */*\r\n\r\n");
	assert_int_equal(n, (int)strlen(buf));
	ks_h1_request(buf, sizeof(buf), "[fd00::1]", 80, "/", false);
	assert_non_null(strstr(buf, "\r\nHost: [fd00::1]\r\n"));
	ks_h1_request(buf, sizeof(buf), "10.0.0.1", 443, "/", true);
	assert_non_null(strstr(buf, "\r\nHost: 10.0.0.1\r\n"));
	ks_h1_request(buf, sizeof(buf), "10.0.0.1", 443, "/", false);
	assert_non_null(strstr(buf, "\r\nHost: 10.0.0.1:443\r\n"));
	ks_h1_request(buf, sizeof(buf), "10.0.0.1", 80, "/", true);
	assert_non_null(strstr(buf, "\r\nHost: 10.0.0.1:80\r\n"));
	ks_h1_request(buf, sizeof(buf), "[fd00::1]", 65535, "/a?b=c", false);
	assert_true(!strncmp(buf, "GET /a?b=c HTTP/1.1\r\nHost: [fd00::1]:65535\r\n", 44));
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ks_h1_request(buf, 200, "10.0.0.1", 80, big, false), -ENAMETOOLONG);
}

static void test_content_length(void **state)
{
	(void)state;
	EXPECT("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false,
	       { KS_H1_DONE, 200, true, false });
	EXPECT("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false,
	       { KS_H1_DONE, 500, true, false });
	/* Header names are case-insensitive. */
	EXPECT("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n", false,
	       { KS_H1_DONE, 204, true, false });
}

static void test_no_body_statuses(void **state)
{
	(void)state;
	/* 204 and 304 never have a body: done at the end of the headers. */
	EXPECT("HTTP/1.1 204 No Content\r\n\r\n", false, { KS_H1_DONE, 204, true, false });
	EXPECT("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", false,
	       { KS_H1_DONE, 304, true, false });
}

static void test_chunked(void **state)
{
	(void)state;
	EXPECT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	       "2\r\nok\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", false,
	       { KS_H1_DONE, 200, true, false });
}

static void test_connection_close(void **state)
{
	(void)state;
	EXPECT("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false,
	       { KS_H1_DONE, 200, false, false });
	/* HTTP/1.0 closes unless it says keep-alive. */
	EXPECT("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false,
	       { KS_H1_DONE, 200, false, false });
	EXPECT("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false,
	       { KS_H1_DONE, 200, true, false });
}

static void test_body_until_eof(void **state)
{
	(void)state;
	/* No length, not chunked: the body ends when the server closes. */
	EXPECT("HTTP/1.1 200 OK\r\n\r\nsome body", true, { KS_H1_DONE, 200, false, false });
	EXPECT("HTTP/1.1 200 OK\r\n\r\nsome body", false, { KS_H1_MORE, 0, false, false });
}

static void test_interim_responses(void **state)
{
	(void)state;
	EXPECT("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
	       "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1\r\n\r\nx", false,
	       { KS_H1_DONE, 503, true, false });
	/* An interim response alone is not an answer. */
	EXPECT("HTTP/1.1 100 Continue\r\n\r\n", false, { KS_H1_MORE, 0, false, false });
}

static void test_upgrade_no_reuse(void **state)
{
	(void)state;
	/* A 101 nobody asked for: the status is the answer, the connection is not HTTP/1.1 any more. */
	EXPECT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
	       false, { KS_H1_DONE, 101, false, false });
	EXPECT("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, { KS_H1_DONE, 101, false, false });
}

static void test_trailing_bytes_no_reuse(void **state)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
	const size_t resp = sizeof("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") - 1;
	struct ks_h1_resp r;
	size_t i;

	(void)state;
	/* Whatever way the extra bytes come, in the same read or later, the answer stands. */
	for (i = 1; i < sizeof(s) - 1; i++) {
		ks_h1_resp_init(&r);
		if (ks_h1_resp_feed(&r, s, i) == KS_H1_MORE) {
			assert_true(i < resp);
			assert_int_equal(ks_h1_resp_feed(&r, s + i, sizeof(s) - 1 - i), KS_H1_DONE);
		} else {
			assert_true(i >= resp);
			assert_int_equal(r.keep_alive, i == resp);
			assert_int_equal(ks_h1_resp_feed(&r, s + i, sizeof(s) - 1 - i), KS_H1_DONE);
		}
		assert_int_equal(r.status, 200);
		assert_false(r.keep_alive);
	}
}

static void test_body_cap(void **state)
{
	size_t hlen, len = 0, cap = 100 + KS_H1_BODY_CAP + 10;
	char *s = malloc(cap + 64);
	struct ks_h1_resp r;
	enum ks_h1_result res;

	(void)state;
	assert_non_null(s);
	hlen = (size_t)sprintf(s, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", cap);
	memset(s + hlen, 'x', cap);
	len = hlen + cap;
	res = feed(&r, s, len, 4096, 0, false);
	assert_int_equal(res, KS_H1_DONE);
	assert_int_equal(r.status, 200);
	assert_true(r.cut);
	assert_false(r.keep_alive);
	assert_true(r.body > KS_H1_BODY_CAP && r.body <= KS_H1_BODY_CAP + 4096);
	/* Exactly the cap is still read whole and reusable. */
	hlen = (size_t)sprintf(s, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", KS_H1_BODY_CAP);
	memset(s + hlen, 'x', KS_H1_BODY_CAP);
	res = feed(&r, s, hlen + KS_H1_BODY_CAP, 4096, 0, false);
	assert_int_equal(res, KS_H1_DONE);
	assert_false(r.cut);
	assert_true(r.keep_alive);
	free(s);
}

static void test_bad_and_eof(void **state)
{
	struct ks_h1_resp r;

	(void)state;
	EXPECT("SSH-2.0-OpenSSH_9.2\r\n", false, { KS_H1_BAD, 0, false, false });
	EXPECT("HTTP/1.1 abc OK\r\n\r\n", false, { KS_H1_BAD, 0, false, false });
	EXPECT("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false,
	       { KS_H1_BAD, 0, false, false });
	/* An h2 server's SETTINGS frame is not HTTP/1. */
	EXPECT("\x00\x00\x12\x04\x00\x00\x00\x00\x00", false, { KS_H1_BAD, 0, false, false });
	/* Closed before anything / mid-headers / mid-body. */
	ks_h1_resp_init(&r);
	assert_int_equal(ks_h1_resp_feed(&r, NULL, 0), KS_H1_BAD);
	assert_string_equal(r.error, "connection closed without a response");
	EXPECT("HTTP/1.1 200 OK\r\nContent-Le", true, { KS_H1_BAD, 0, false, false });
	EXPECT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", true,
	       { KS_H1_BAD, 0, false, false });
	/* Sticky: after BAD, more bytes do not revive it. */
	ks_h1_resp_init(&r);
	assert_int_equal(ks_h1_resp_feed(&r, "XYZ", 3), KS_H1_BAD);
	assert_int_equal(ks_h1_resp_feed(&r, "HTTP/1.1 200 OK\r\n\r\n", 19), KS_H1_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_no_body_statuses),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_connection_close),
		cmocka_unit_test(test_body_until_eof),
		cmocka_unit_test(test_interim_responses),
		cmocka_unit_test(test_upgrade_no_reuse),
		cmocka_unit_test(test_trailing_bytes_no_reuse),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_bad_and_eof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
