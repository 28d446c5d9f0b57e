/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The prober's connection layer (conn.c): a non-blocking socket to a
 * target's check port, TLS on it through OpenSSL (one client context per
 * verification mode, ALPN, the certificate checked against the address),
 * and raw reads and writes that wait through the prober's epoll set. The TCP
 * checks in prober.c use the socket alone; http.c runs HTTP/1.1 and HTTP/2
 * checks on top. Private to the prober (see prober_int.h).
 */
#ifndef KSPLIT_PROBER_CONN_H
#define KSPLIT_PROBER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/types.h>

#include "health/h1.h"
#include "health/h2.h"
#include "health/prober_int.h"

enum hc_phase { PH_CONNECT, PH_TLS, PH_SEND, PH_RECV };

/*
 * HTTP check state. The connection (with its TLS and HTTP/2 sessions) stays
 * open between checks, like Envoy's reuse_connection: a keep-alive check is
 * one send() and one recv().
 */
struct hconn {
	struct ks_h1_resp resp;	/* HTTP/1.1 answer */
	struct ks_h2 *h2;	/* HTTP/2 session, when the connection speaks it */
	SSL *ssl;		/* HTTPS: the connection's TLS state */
	uint32_t mask;		/* epoll events the socket is registered for; 0: not registered */
	uint32_t req_len, sent;
	enum hc_phase phase;
	bool reused;		/* this check went out on a kept connection */
	bool retried;
	char req[];		/* the HTTP/1.1 request, built once per spec */
};

/*
 * A non-blocking socket connecting to t's check port, in *fd (-1 if none
 * was made). 0: connected at once; -EINPROGRESS: wait for EPOLLOUT; other
 * -errno: socket() failed (*fd < 0, our problem) or connect() did (the
 * endpoint's).
 */
int kp_sock_open(const struct target *t, int *fd);
/* The outcome of a non-blocking connect: 0 or the errno it failed with. */
int kp_sock_error(int fd);
/* Close t's socket, if any, with its TLS and HTTP/2 sessions; the HTTP state stays. */
void kp_sock_close(struct ks_prober *p, struct target *t);

/* Wait for mask on t's connection; if epoll fails, kp_hc_abort() (t->fd is then -1). */
void kp_hc_wait(struct ks_prober *p, struct target *t, uint32_t mask);
/* Our side failed (fd limit, memory, epoll): no verdict, the endpoint is not to blame. */
void kp_hc_abort(struct ks_prober *p, struct target *t, const char *what, int err);

/*
 * Raw I/O on the connection, TLS or not. Returns > 0 bytes, 0 at EOF
 * (reads only), -1 to wait (the epoll mask is set), -2 broken (why set).
 */
ssize_t kp_hc_read(struct ks_prober *p, struct target *t, char *buf, size_t len, char *why,
		   size_t wlen);
ssize_t kp_hc_write(struct ks_prober *p, struct target *t, const void *buf, size_t len,
		    char *why, size_t wlen);
/* Bytes already decrypted and not yet read: a short read does not mean the socket is drained. */
bool kp_hc_pending(const struct hconn *h);

/* TLS client state on t's fresh connection (HTTPS): 0, or -ENOMEM / -EINVAL. */
int kp_tls_start(struct ks_prober *p, struct target *t);
/*
 * Drive the TLS handshake on: 0 done (*h2: the server chose HTTP/2 by ALPN),
 * -1 wait (the epoll mask is set), -2 failed (why set).
 */
int kp_tls_handshake(struct ks_prober *p, struct target *t, bool *h2, char *why, size_t wlen);
/* The client contexts (at ks_prober_free). */
void kp_tls_free(struct ks_prober *p);

#endif /* KSPLIT_PROBER_CONN_H */
