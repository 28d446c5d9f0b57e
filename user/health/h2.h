/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The HTTP/2 side of a health check, without I/O: one client connection
 * (libnghttp2 in memory mode) that carries one GET at a time and is kept
 * between checks. http.c moves the bytes (plain h2c with prior knowledge,
 * or TLS with ALPN h2); selftests/unit/test_h2.c talks to an nghttp2 server
 * session in memory.
 *
 * Why not libcurl: Debian 12's curl 7.88 cannot reuse an h2c connection
 * (curl issue 10634), so each h2c check paid a new connection, and its
 * per-transfer work cost 13-20 % of a core at 5,000 endpoints / 5 s.
 */
#ifndef KSPLIT_H2_H
#define KSPLIT_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "health/h1.h"		/* enum ks_h1_result, KS_H1_BODY_CAP */

struct ks_h2;

/* A client connection; its preface and SETTINGS are queued for output. 0 or -ENOMEM. */
int ks_h2_new(struct ks_h2 **out);
void ks_h2_free(struct ks_h2 *h);

/*
 * Queue "GET path" on a new stream, :authority host (plus ":port" unless
 * it is the scheme's default, as curl does). Only one request at a time:
 * -EBUSY while one runs; -EPIPE once the connection may not be used again.
 */
int ks_h2_request(struct ks_h2 *h, const char *host, uint16_t port, const char *path, bool https);

/*
 * Output: *data and its length (0: nothing to send). After writing n of
 * them, call ks_h2_sent(h, n); the rest stays until then.
 */
size_t ks_h2_out(struct ks_h2 *h, const uint8_t **data);
void ks_h2_sent(struct ks_h2 *h, size_t n);

/*
 * Input; len 0 means the peer closed. DONE: the request's final answer is
 * in (status). BAD: the connection failed (error says why). Frames that
 * arrive between requests (PING, SETTINGS) are taken and answered through
 * ks_h2_out(); MORE is returned for them.
 */
enum ks_h1_result ks_h2_feed(struct ks_h2 *h, const uint8_t *buf, size_t len);

int ks_h2_status(const struct ks_h2 *h);
const char *ks_h2_error(const struct ks_h2 *h);
/*
 * The request failed without being handled (REFUSED_STREAM, or above a
 * GOAWAY's last stream): safe to send again on a new connection.
 */
bool ks_h2_refused(const struct ks_h2 *h);
/* The connection may carry the next request (no GOAWAY, no error, no body cut). */
bool ks_h2_reusable(const struct ks_h2 *h);

#endif /* KSPLIT_H2_H */
