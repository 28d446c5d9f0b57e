// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "health/h1.h"

int ks_h1_request(char *buf, size_t size, const char *host, uint16_t port, const char *path,
		  bool https)
{
	char hp[8] = "";
	int n;

	/* curl leaves the scheme's default port out of Host; keep checks byte-compatible with it. */
	if (port != (https ? 443 : 80))
		snprintf(hp, sizeof(hp), ":%u", port);
	n = snprintf(buf, size,
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s%s\r\n"
		     "User-Agent: ksplit-healthcheck/1\r\n"
		     "Accept: */*\r\n"
		     "\r\n", path, host, hp);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

static int on_headers_complete(http_parser *hp)
{
	struct ks_h1_resp *r = hp->data;

	r->status = hp->status_code;
	r->body = 0;
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct ks_h1_resp *r = hp->data;

	(void)at;
	r->body += len;
	if (r->body > KS_H1_BODY_CAP) {
		r->cut = true;
		return 1;	/* stops the parser: the status is all a check needs */
	}
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	struct ks_h1_resp *r = hp->data;

	/* An interim response (100 Continue, 103 Early Hints): the final one follows. */
	if (r->status >= 100 && r->status < 200 && r->status != 101) {
		r->status = 0;
		return 0;
	}
	r->done = true;
	/* A 101 nobody asked for switched the protocol: the connection is not HTTP/1.1 any more. */
	r->keep_alive = r->status != 101 && !hp->upgrade && http_should_keep_alive(hp);
	/* Stop here; whatever follows was not asked for. */
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void ks_h1_resp_init(struct ks_h1_resp *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->hp, HTTP_RESPONSE);
	r->hp.data = r;
}

enum ks_h1_result ks_h1_resp_feed(struct ks_h1_resp *r, const char *buf, size_t len)
{
	enum http_errno e;
	size_t used;

	if (r->done) {
		if (len)
			r->keep_alive = false;
		return KS_H1_DONE;
	}
	if (r->error)
		return KS_H1_BAD;
	if (len)
		r->got_bytes = true;
	used = http_parser_execute(&r->hp, &settings, buf, len);
	e = HTTP_PARSER_ERRNO(&r->hp);
	if (r->done) {
		/* Extra bytes after the response: answer kept, connection not reused. */
		if (used < len)
			r->keep_alive = false;
		return KS_H1_DONE;
	}
	if (r->cut) {
		r->done = true;
		r->keep_alive = false;
		return KS_H1_DONE;
	}
	if (e != HPE_OK) {
		r->error = http_errno_description(e);
		return KS_H1_BAD;
	}
	if (!len) {
		r->error = r->got_bytes ? "connection closed in the middle of the response"
					: "connection closed without a response";
		return KS_H1_BAD;
	}
	return KS_H1_MORE;
}
