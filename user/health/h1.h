/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The HTTP/1.1 side of an HTTP or HTTPS health check, without I/O: the request
 * bytes and an incremental response reader (http_parser from Debian's
 * libhttp-parser does the parsing). http.c drives the connection; this part
 * is unit-tested byte by byte in selftests/unit/test_h1.c.
 *
 * Why not libcurl here: at 5,000 endpoints every 5 s, curl's per-transfer
 * work (handle re-add, header building, connection-cache walk, liveness
 * poll) cost ~50 us of user time per check, more than the send and recv
 * themselves. The prober runs TLS with OpenSSL directly (conn.c) for the
 * same reason, and HTTP/2 with libnghttp2 (h2.c).
 */
#ifndef KSPLIT_H1_H
#define KSPLIT_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

/*
 * "GET path HTTP/1.1" with Host, User-Agent and Accept, as curl sends it:
 * Host is host (an address, IPv6 in brackets) plus ":port" unless port is
 * the scheme's default (80, or 443 for https). Returns the length written
 * (no NUL counted) or -ENAMETOOLONG.
 */
int ks_h1_request(char *buf, size_t size, const char *host, uint16_t port, const char *path,
		  bool https);

/* Past this many body bytes the verdict is taken from the status alone. */
#define KS_H1_BODY_CAP (64 * 1024)

enum ks_h1_result {
	KS_H1_MORE = 0,		/* need more bytes */
	KS_H1_DONE,		/* a final response: status is set */
	KS_H1_BAD,		/* not a valid HTTP/1.x response: error says why */
};

struct ks_h1_resp {
	http_parser hp;
	uint64_t body;		/* body bytes of the final response */
	int status;		/* of the final response, 0 before its headers */
	bool got_bytes;		/* anything at all arrived */
	bool done;
	bool cut;		/* body over KS_H1_BODY_CAP: stopped reading */
	bool keep_alive;	/* the connection may carry the next request */
	const char *error;
};

void ks_h1_resp_init(struct ks_h1_resp *r);
/*
 * Feed what recv() returned; len 0 means the peer closed (EOF), which ends
 * a body that has no length. Bytes after the final response were not
 * asked for: the answer stands, but keep_alive turns false. Once DONE or
 * BAD, further calls return the same result.
 */
enum ks_h1_result ks_h1_resp_feed(struct ks_h1_resp *r, const char *buf, size_t len);

#endif /* KSPLIT_H1_H */
