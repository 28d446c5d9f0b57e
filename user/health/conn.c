// SPDX-License-Identifier: BSD-2-Clause
/*
 * The prober's connection layer: non-blocking sockets, TLS with OpenSSL,
 * and raw reads and writes that wait through the prober's epoll set (see
 * conn.h). What goes over the connection is http.c's business.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ksplit/abi.h"
#include "health/conn.h"

/* ---- sockets ---- */

static void sockaddr_of(const struct target *t, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (t->t.addr.family == KS_FAMILY_V4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(check_port(t));
		memcpy(&in->sin_addr, t->t.addr.bytes, 4);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(check_port(t));
		memcpy(&in6->sin6_addr, t->t.addr.bytes, 16);
		*len = sizeof(*in6);
	}
}

void kp_sock_close(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;

	if (t->fd < 0)
		return;
	/* Explicit DEL: a forked child may share the socket, and then close() would not remove it. */
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	if (h) {
		/* No close_notify or GOAWAY: the check is over either way, and they cost a write. */
		SSL_free(h->ssl);
		h->ssl = NULL;
		ks_h2_free(h->h2);
		h->h2 = NULL;
		h->mask = 0;
	}
	close(t->fd);
	t->fd = -1;
}

int kp_sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

int kp_sock_open(const struct target *t, int *fd)
{
	struct sockaddr_storage ss;
	struct tcp_info ti;
	socklen_t len, tl = sizeof(ti);
	int err;

	*fd = socket(t->t.addr.family == KS_FAMILY_V4 ? AF_INET : AF_INET6,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	sockaddr_of(t, &ss, &len);
	if (!connect(*fd, (struct sockaddr *)&ss, len))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	/*
	 * To a pod on this node (veth) or loopback the handshake has usually
	 * finished by the time connect() returns: then skip the epoll round
	 * trip (two epoll_ctl calls and a wakeup per check).
	 */
	if (getsockopt(*fd, IPPROTO_TCP, TCP_INFO, &ti, &tl))
		return -EINPROGRESS;
	if (ti.tcpi_state == TCP_ESTABLISHED)
		return 0;
	if (ti.tcpi_state == TCP_CLOSE && (err = kp_sock_error(*fd)))
		return -err;
	return -EINPROGRESS;
}

/* ---- waiting ---- */

static int hc_watch(struct ks_prober *p, struct target *t, uint32_t mask)
{
	struct epoll_event ev = { .events = mask, .data.ptr = t };
	struct hconn *h = t->hc;

	if (h->mask == mask)
		return 0;
	if (epoll_ctl(p->epfd, h->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd, &ev))
		return -errno;
	h->mask = mask;
	return 0;
}

void kp_hc_abort(struct ks_prober *p, struct target *t, const char *what, int err)
{
	kp_heap_del(&p->heap[H_DL], t);
	kp_sock_close(p, t);
	if (t->in_flight)
		kp_start_failed(p, t, what, err);
}

void kp_hc_wait(struct ks_prober *p, struct target *t, uint32_t mask)
{
	int err = hc_watch(p, t, mask);

	if (err)
		kp_hc_abort(p, t, "epoll_ctl", -err);
}

/* ---- TLS outcomes ---- */

/* Which way a TLS operation that wants more must wait; 0 when it failed for good. */
static uint32_t tls_wants(int ssl_err)
{
	if (ssl_err == SSL_ERROR_WANT_READ)
		return EPOLLIN | EPOLLRDHUP;
	if (ssl_err == SSL_ERROR_WANT_WRITE)
		return EPOLLOUT;
	return 0;
}

/* The peer closed: a clean close_notify, or (as most servers do) just the TCP connection. */
static bool tls_eof(int ssl_err)
{
	unsigned long e = ERR_peek_error();

	return ssl_err == SSL_ERROR_ZERO_RETURN ||
	       (ssl_err == SSL_ERROR_SYSCALL && !e && !errno) ||
	       (ssl_err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
		ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

static void tls_why(const struct hconn *h, int ssl_err, const char *op, char *buf, size_t len)
{
	long vr = h->ssl ? SSL_get_verify_result(h->ssl) : X509_V_OK;
	unsigned long e = ERR_peek_error();

	/* Same words as curl for the case people grep for. */
	if (vr != X509_V_OK)
		snprintf(buf, len, "SSL certificate problem: %s", X509_verify_cert_error_string(vr));
	else if (e)
		snprintf(buf, len, "tls %s: %s", op, ERR_reason_error_string(e) ?
			 ERR_reason_error_string(e) : "error");
	else if (ssl_err == SSL_ERROR_SYSCALL && errno)
		snprintf(buf, len, "tls %s: %s", op, strerror(errno));
	else
		snprintf(buf, len, "tls %s: connection closed", op);
}

/* ---- I/O ---- */

ssize_t kp_hc_read(struct ks_prober *p, struct target *t, char *buf, size_t len, char *why,
		   size_t wlen)
{
	struct hconn *h = t->hc;
	ssize_t n;
	int se;

	if (!h->ssl) {
		n = recv(t->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return -1;
		snprintf(why, wlen, "recv: %s", strerror(errno));
		return -2;
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_read(h->ssl, buf, (int)len);
	if (n > 0)
		return n;
	se = SSL_get_error(h->ssl, (int)n);
	if (tls_wants(se)) {
		/* Usually WANT_READ; a TLS read may need a write (key update). HTTP/2 output may wait too. */
		kp_hc_wait(p, t, tls_wants(se) | (h->h2 ? h->mask & EPOLLOUT : 0));
		return -1;
	}
	if (tls_eof(se))
		return 0;
	tls_why(h, se, "recv", why, wlen);
	return -2;
}

ssize_t kp_hc_write(struct ks_prober *p, struct target *t, const void *buf, size_t len,
		    char *why, size_t wlen)
{
	struct hconn *h = t->hc;
	ssize_t n;
	int se;

	if (!h->ssl) {
		n = send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			return n;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(why, wlen, "send: %s", strerror(errno));
			return -2;
		}
		kp_hc_wait(p, t, EPOLLOUT);
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	/* Retried after WANT_*: same bytes, as OpenSSL requires (callers resend from the same offset). */
	n = SSL_write(h->ssl, buf, (int)len);
	if (n > 0)
		return n;
	se = SSL_get_error(h->ssl, (int)n);
	if (tls_wants(se)) {
		kp_hc_wait(p, t, tls_wants(se));
		return -1;
	}
	tls_why(h, se, "send", why, wlen);
	return -2;
}

bool kp_hc_pending(const struct hconn *h)
{
	return h->ssl && SSL_pending(h->ssl);
}

/* ---- TLS sessions ---- */

/* One client context per verification mode, made on first use. */
static SSL_CTX *tls_ctx(struct ks_prober *p, bool verify)
{
	SSL_CTX *c = p->tls[verify];

	if (c)
		return c;
	c = SSL_CTX_new(TLS_client_method());
	if (!c)
		return NULL;
	/*
	 * Idle kept connections give their ~34 KiB of record buffers back. A
	 * waiting HTTP/2 write is retried from h2.c's copy, not nghttp2's buffer.
	 */
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(c, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (verify && !SSL_CTX_set_default_verify_paths(c)) {
		SSL_CTX_free(c);
		return NULL;
	}
	/* Connections are kept, so sessions are never resumed: no cache to fill. */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	p->tls[verify] = c;
	return c;
}

int kp_tls_start(struct ks_prober *p, struct target *t)
{
	/* ALPN as curl offers it: "h2,http/1.1" for an HTTP/2 check, else "http/1.1". */
	static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
	static const unsigned char alpn_h1[] = "\x08http/1.1";
	const struct ks_probe_spec *s = &t->t.spec;
	struct hconn *h = t->hc;
	SSL_CTX *ctx;
	char a[INET6_ADDRSTRLEN];

	ctx = tls_ctx(p, s->tls_verify);
	h->ssl = ctx ? SSL_new(ctx) : NULL;
	if (!h->ssl || !SSL_set_fd(h->ssl, t->fd) ||
	    (s->http2 ? SSL_set_alpn_protos(h->ssl, alpn_h2, sizeof(alpn_h2) - 1) :
			SSL_set_alpn_protos(h->ssl, alpn_h1, sizeof(alpn_h1) - 1)))
		return -ENOMEM;
	/* No SNI: the name is an IP address (RFC 6066). With verification, the address must match. */
	if (s->tls_verify) {
		inet_ntop(t->t.addr.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, t->t.addr.bytes, a,
			  sizeof(a));
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), a))
			return -EINVAL;
	}
	SSL_set_connect_state(h->ssl);
	return 0;
}

int kp_tls_handshake(struct ks_prober *p, struct target *t, bool *h2, char *why, size_t wlen)
{
	struct hconn *h = t->hc;
	const unsigned char *proto;
	unsigned int plen;
	int r, se;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(h->ssl);
	if (r == 1) {
		/* ALPN h2 -> HTTP/2; a pod that does not offer it gets HTTP/1.1, as curl falls back. */
		SSL_get0_alpn_selected(h->ssl, &proto, &plen);
		*h2 = plen == 2 && !memcmp(proto, "h2", 2);
		return 0;
	}
	se = SSL_get_error(h->ssl, r);
	if (tls_wants(se)) {
		kp_hc_wait(p, t, tls_wants(se));
		return -1;
	}
	tls_why(h, se, "handshake", why, wlen);
	return -2;
}

void kp_tls_free(struct ks_prober *p)
{
	SSL_CTX_free(p->tls[0]);
	SSL_CTX_free(p->tls[1]);
}
