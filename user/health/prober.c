// SPDX-License-Identifier: BSD-2-Clause
/*
 * Active health checker engine. One private epoll set holds a timerfd and
 * one socket per target: a TCP connect check's, or an HTTP connection that
 * is kept between checks (plain or TLS with OpenSSL; HTTP/1.1 through h1.c,
 * HTTP/2 through h2.c). The agent polls that set's fd. Two min-heaps drive
 * time: idle targets by their next check, checks in flight by deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ksplit/abi.h"
#include "health/h1.h"
#include "health/h2.h"
#include "common/log.h"
#include "health/prober.h"

#define NS_PER_MS 1000000ULL
#define DEFAULT_MAX_IN_FLIGHT 512
#define NO_IDX ((size_t)-1)
/*
 * Checks due within this window start together, up to this much early: at
 * 1,000 checks/s one wakeup then serves ~100 checks instead of one (measured:
 * 8.1% -> 7.2% of a core at 5,000 targets / 5 s). 2% of the shortest interval.
 */
#define BATCH_NS (100 * NS_PER_MS)

/* epoll_event.data.u64 tags. Targets are malloc'ed (8-aligned), so tag 0 is a pointer. */
#define TAG_TARGET 0
#define TAG_TIMER 2

enum { H_DUE, H_DL, H_NR };

struct ks_prober;

struct target {
	struct ks_probe_target t;
	struct ks_hsm hsm;
	uint64_t started;	/* checks started: the schedule's n */
	uint64_t last_start_ns;
	uint64_t key[H_NR];	/* H_DUE: next check; H_DL: deadline of the check in flight */
	size_t idx[H_NR];
	bool in_flight;
	int fd;			/* TCP check in flight, or HTTP connection (kept alive) */
	struct hconn *hc;	/* HTTP check state, kept between checks */
	uint64_t gen;		/* set_targets generation that kept it */
	char host[INET6_ADDRSTRLEN + 2];	/* "10.0.0.1" or "[fd00::1]" */
};

struct heap {
	struct target **v;
	size_t n, cap;
	int which;
};

struct ks_prober {
	int epfd, tfd;
	ks_prober_cb cb;
	void *ctx;
	struct target **tv;	/* all targets */
	size_t n;
	struct target **hash;	/* open addressing on (addr, port) */
	size_t hcap;		/* power of two, or 0 */
	struct heap heap[H_NR];
	uint64_t armed_ns;	/* timerfd expiry, 0 = not armed */
	uint32_t max_in_flight;
	uint64_t gen;
	uint64_t rng;
	bool in_dispatch;
	SSL_CTX *tls[2];	/* HTTPS checks: [0] no verification, [1] verify */
	struct ks_prober_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd32(struct ks_prober *p)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return (uint32_t)((p->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- heaps ---- */

static bool heap_less(const struct heap *h, size_t a, size_t b)
{
	return h->v[a]->key[h->which] < h->v[b]->key[h->which];
}

static void heap_swap(struct heap *h, size_t a, size_t b)
{
	struct target *t = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = t;
	h->v[a]->idx[h->which] = a;
	h->v[b]->idx[h->which] = b;
}

static void heap_up(struct heap *h, size_t i)
{
	while (i && heap_less(h, i, (i - 1) / 2)) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && heap_less(h, l, m))
			m = l;
		if (r < h->n && heap_less(h, r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static int heap_reserve(struct heap *h, size_t cap)
{
	struct target **v;

	if (cap <= h->cap)
		return 0;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

/* Capacity is reserved for every target up front, so a push cannot fail. */
static void heap_push(struct heap *h, struct target *t, uint64_t key)
{
	t->key[h->which] = key;
	t->idx[h->which] = h->n;
	h->v[h->n++] = t;
	heap_up(h, h->n - 1);
}

static void heap_del(struct heap *h, struct target *t)
{
	size_t i = t->idx[h->which];

	if (i == NO_IDX)
		return;
	t->idx[h->which] = NO_IDX;
	h->n--;
	if (i == h->n)
		return;
	h->v[i] = h->v[h->n];
	h->v[i]->idx[h->which] = i;
	heap_up(h, i);
	heap_down(h, h->v[i]->idx[h->which]);
}

static struct target *heap_top(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}

/* ---- target lookup ---- */

static size_t addr_len(const struct ksm_addr *a)
{
	return a->family == KS_FAMILY_V4 ? 4 : 16;
}

static uint64_t key_hash(const struct ksm_addr *a, uint16_t port)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	h = (h ^ a->family) * 1099511628211ULL;
	for (i = 0; i < addr_len(a); i++)
		h = (h ^ a->bytes[i]) * 1099511628211ULL;
	h = (h ^ (port & 0xff)) * 1099511628211ULL;
	h = (h ^ (port >> 8)) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static bool key_eq(const struct ks_probe_target *t, const struct ksm_addr *a, uint16_t port)
{
	return t->port == port && t->addr.family == a->family &&
	       !memcmp(t->addr.bytes, a->bytes, addr_len(a));
}

/* Slot holding (a, port), or the empty slot where it would go. */
static size_t hash_slot(void **tab, size_t cap, const struct ks_probe_target *(*get)(void *),
			const struct ksm_addr *a, uint16_t port)
{
	size_t i = key_hash(a, port) & (cap - 1);

	while (tab[i] && !key_eq(get(tab[i]), a, port))
		i = (i + 1) & (cap - 1);
	return i;
}

static const struct ks_probe_target *get_target(void *v)
{
	return &((struct target *)v)->t;
}

static const struct ks_probe_target *get_input(void *v)
{
	return v;
}

static struct target *find(struct ks_prober *p, const struct ksm_addr *a, uint16_t port)
{
	if (!p->hcap)
		return NULL;
	return p->hash[hash_slot((void **)p->hash, p->hcap, get_target, a, port)];
}

static size_t pow2_for(size_t n)
{
	size_t c = 16;

	while (c < 2 * n)
		c *= 2;
	return c;
}

/* ---- scheduling and results ---- */

static uint16_t check_port(const struct target *t)
{
	return t->t.spec.port ? t->t.spec.port : t->t.port;
}

static const char *kind_name(const struct ks_probe_spec *s)
{
	if (s->kind == KS_PROBE_TCP)
		return "tcp";
	if (s->kind == KS_PROBE_HTTPS)
		return s->http2 ? "https2" : "https";
	return s->http2 ? "h2c" : "http";
}

static void schedule_next(struct ks_prober *p, struct target *t, uint64_t now)
{
	uint64_t due = t->last_start_ns +
		       ks_health_next_delay_ms(t->t.spec.interval_ms, t->started, rnd32(p)) * NS_PER_MS;

	/* Never overlap two checks of one target, even when timeout > interval. */
	if (due < now)
		due = now;
	heap_push(&p->heap[H_DUE], t, due);
}

static void finish(struct ks_prober *p, struct target *t, bool pass, bool timeout,
		   const char *why)
{
	const struct ks_probe_spec *s = &t->t.spec;
	enum ks_hstate old = t->hsm.state;
	char reason[384], q[512];

	t->in_flight = false;
	p->st.in_flight--;
	p->st.checks++;
	if (pass)
		p->st.passes++;
	else
		p->st.failures++;
	if (timeout)
		p->st.timeouts++;
	pr_debug("health check", "addr=%s port=%u check=%s pass=%d why=\"%s\"", t->host,
		 check_port(t), kind_name(s), pass, why);
	if (ks_hsm_feed(&t->hsm, pass, s->healthy_thr, s->unhealthy_thr)) {
		if (t->hsm.state == KS_H_UNHEALTHY)
			snprintf(reason, sizeof(reason), "%u consecutive failures, last: %s",
				 s->unhealthy_thr, why);
		else if (old == KS_H_UNKNOWN)
			snprintf(reason, sizeof(reason), "first check passed: %s", why);
		else
			snprintf(reason, sizeof(reason), "%u consecutive passes: %s",
				 s->healthy_thr, why);
		ks_log_quote(q, sizeof(q), reason);
		pr_info("endpoint health changed", "addr=%s port=%u check=%s check_port=%u from=%s to=%s reason=%s",
			t->host, t->t.port, kind_name(s), check_port(t), ks_hstate_name(old),
			ks_hstate_name(t->hsm.state), q);
		if (p->cb)
			p->cb(p->ctx, &t->t, old, t->hsm.state, reason);
	}
	schedule_next(p, t, now_ns());
}

/* A check that could not even start (fd limit, no memory): retry later, the endpoint is not to blame. */
static void start_failed(struct ks_prober *p, struct target *t, const char *what, int err)
{
	t->in_flight = false;
	p->st.in_flight--;
	pr_warn("health check not started", "addr=%s port=%u what=%s err=\"%s\"", t->host,
		check_port(t), what, strerror(err));
	heap_push(&p->heap[H_DUE], t, now_ns() + t->t.spec.interval_ms * NS_PER_MS);
}

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

/* ---- sockets: TCP connect checks and HTTP connections ---- */

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

/* Room for the request line, Host, User-Agent and Accept around the longest path. */
#define H1_REQ_MAX (KS_PROBE_PATH_MAX + 256)

static void sock_close(struct ks_prober *p, struct target *t)
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

/* The outcome of a non-blocking connect: 0 or the errno it failed with. */
static int sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

/*
 * A non-blocking socket connecting to t's check port, in *fd (-1 if none
 * was made). 0: connected at once; -EINPROGRESS: wait for EPOLLOUT; other
 * -errno: socket() failed (*fd < 0, our problem) or connect() did (the
 * endpoint's).
 */
static int sock_open(const struct target *t, int *fd)
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
	if (ti.tcpi_state == TCP_CLOSE && (err = sock_error(*fd)))
		return -err;
	return -EINPROGRESS;
}

static void tcp_close(struct ks_prober *p, struct target *t)
{
	sock_close(p, t);
	heap_del(&p->heap[H_DL], t);
}

static void tcp_done(struct ks_prober *p, struct target *t, int err, bool timeout)
{
	char why[128];

	tcp_close(p, t);
	if (timeout)
		snprintf(why, sizeof(why), "connect timeout after %u ms", t->t.spec.timeout_ms);
	else if (err)
		snprintf(why, sizeof(why), "connect: %s", strerror(err));
	else
		snprintf(why, sizeof(why), "connected");
	finish(p, t, !err && !timeout, timeout, why);
}

static void start_tcp(struct ks_prober *p, struct target *t, uint64_t now)
{
	/* RST on close: a connect-only check has nothing to flush, and no TIME_WAIT piles up here. */
	static const struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev = { .events = EPOLLOUT };
	int fd, err;

	err = sock_open(t, &fd);
	if (fd < 0) {
		start_failed(p, t, "socket", -err);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	t->fd = fd;
	heap_push(&p->heap[H_DL], t, now + t->t.spec.timeout_ms * NS_PER_MS);
	if (err != -EINPROGRESS) {
		tcp_done(p, t, -err, false);
		return;
	}
	ev.data.ptr = t;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = errno;
		tcp_close(p, t);
		start_failed(p, t, "epoll_ctl", err);
	}
}

static void tcp_event(struct ks_prober *p, struct target *t)
{
	if (t->fd >= 0)
		tcp_done(p, t, sock_error(t->fd), false);
}

static void hc_free(struct ks_prober *p, struct target *t)
{
	sock_close(p, t);
	free(t->hc);
	t->hc = NULL;
}

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

/* The check has a verdict. keep: the connection may carry the next check. */
static void hc_end(struct ks_prober *p, struct target *t, bool pass, bool timeout, bool keep,
		   const char *why)
{
	heap_del(&p->heap[H_DL], t);
	if (!keep || t->t.spec.fresh_conn)
		sock_close(p, t);
	finish(p, t, pass, timeout, why);
}

static void hc_fail(struct ks_prober *p, struct target *t, const char *why)
{
	hc_end(p, t, false, false, false, why);
}

/* Our side failed (fd limit, memory, epoll): no verdict, the endpoint is not to blame. */
static void hc_abort(struct ks_prober *p, struct target *t, const char *what, int err)
{
	heap_del(&p->heap[H_DL], t);
	sock_close(p, t);
	if (t->in_flight)
		start_failed(p, t, what, err);
}

static void hc_wait(struct ks_prober *p, struct target *t, uint32_t mask)
{
	int err = hc_watch(p, t, mask);

	if (err)
		hc_abort(p, t, "epoll_ctl", -err);
}

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

/*
 * Raw I/O on the connection, TLS or not. Returns > 0 bytes, 0 at EOF
 * (reads only), -1 to wait (the epoll mask is set), -2 broken (why set).
 */
static ssize_t hc_read(struct ks_prober *p, struct target *t, char *buf, size_t len,
		       char *why, size_t wlen)
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
		hc_wait(p, t, tls_wants(se) | (h->h2 ? h->mask & EPOLLOUT : 0));
		return -1;
	}
	if (tls_eof(se))
		return 0;
	tls_why(h, se, "recv", why, wlen);
	return -2;
}

static ssize_t hc_write(struct ks_prober *p, struct target *t, const void *buf, size_t len,
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
		hc_wait(p, t, EPOLLOUT);
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
		hc_wait(p, t, tls_wants(se));
		return -1;
	}
	tls_why(h, se, "send", why, wlen);
	return -2;
}

/* Write what the HTTP/2 session has queued: 0 all out, -1 wait (mask set), -2 broken. */
static int h2_push(struct ks_prober *p, struct target *t, char *why, size_t wlen)
{
	const uint8_t *d;
	size_t len;
	ssize_t n;

	while ((len = ks_h2_out(t->hc->h2, &d))) {
		n = hc_write(p, t, d, len, why, wlen);
		if (n == -1 && t->fd >= 0) {
			/*
			 * Nothing went: h2.c keeps its own copy for the retry
			 * (nghttp2 counts the chunk as sent and reuses its
			 * buffer). HTTP/2 reads on while its output waits.
			 */
			ks_h2_sent(t->hc->h2, 0);
			hc_wait(p, t, t->hc->mask | EPOLLIN | EPOLLRDHUP);
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
	sock_close(p, t);
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
			n = hc_write(p, t, h->req + h->sent, h->req_len - h->sent, why, sizeof(why));
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
	hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
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
		hc_abort(p, t, "memory", ENOMEM);
		return;
	}
	if (err) {
		/* A kept session that may not take another stream: start over on a new one. */
		sock_close(p, t);
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
		hc_abort(p, t, "memory", ENOMEM);
		return;
	}
	hc_ready(p, t);
}

static void hc_handshake(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	const unsigned char *proto;
	unsigned int plen;
	char why[200];
	int r, se;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(h->ssl);
	if (r == 1) {
		/* ALPN h2 -> HTTP/2; a pod that does not offer it gets HTTP/1.1, as curl falls back. */
		SSL_get0_alpn_selected(h->ssl, &proto, &plen);
		hc_proto(p, t, plen == 2 && !memcmp(proto, "h2", 2));
		return;
	}
	se = SSL_get_error(h->ssl, r);
	if (tls_wants(se)) {
		hc_wait(p, t, tls_wants(se));
		return;
	}
	tls_why(h, se, "handshake", why, sizeof(why));
	hc_fail(p, t, why);
}

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

/* TCP is up: start TLS (HTTPS), or speak HTTP/1.1 or h2c (prior knowledge) at once. */
static void hc_connected(struct ks_prober *p, struct target *t)
{
	/* ALPN as curl offers it: "h2,http/1.1" for an HTTP/2 check, else "http/1.1". */
	static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
	static const unsigned char alpn_h1[] = "\x08http/1.1";
	const struct ks_probe_spec *s = &t->t.spec;
	struct hconn *h = t->hc;
	SSL_CTX *ctx;
	char a[INET6_ADDRSTRLEN];

	if (s->kind != KS_PROBE_HTTPS) {
		hc_proto(p, t, s->http2);
		return;
	}
	ctx = tls_ctx(p, s->tls_verify);
	h->ssl = ctx ? SSL_new(ctx) : NULL;
	if (!h->ssl || !SSL_set_fd(h->ssl, t->fd) ||
	    (s->http2 ? SSL_set_alpn_protos(h->ssl, alpn_h2, sizeof(alpn_h2) - 1) :
			SSL_set_alpn_protos(h->ssl, alpn_h1, sizeof(alpn_h1) - 1))) {
		hc_abort(p, t, "tls setup", ENOMEM);
		return;
	}
	/* No SNI: the name is an IP address (RFC 6066). With verification, the address must match. */
	if (s->tls_verify) {
		inet_ntop(t->t.addr.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, t->t.addr.bytes, a,
			  sizeof(a));
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), a)) {
			hc_abort(p, t, "tls setup", EINVAL);
			return;
		}
	}
	SSL_set_connect_state(h->ssl);
	h->phase = PH_TLS;
	hc_handshake(p, t);
}

static void hc_connect(struct ks_prober *p, struct target *t)
{
	struct hconn *h = t->hc;
	char why[128];
	int fd, err;

	err = sock_open(t, &fd);
	if (fd < 0) {
		hc_abort(p, t, "socket", -err);
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
	hc_wait(p, t, EPOLLOUT);
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
		n = hc_read(p, t, buf, sizeof(buf), why, sizeof(why));
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
			return;		/* our side gave up (epoll), start_failed() has run */
		if (w == -2 && res != KS_H1_DONE) {
			hc_broken(p, t, why);
			return;
		}
		if (res == KS_H1_DONE) {
			status = h->h2 ? ks_h2_status(h->h2) : h->resp.status;
			keep = n > 0 && w != -2 &&
			       (h->h2 ? ks_h2_reusable(h->h2) : h->resp.keep_alive) &&
			       /* unasked-for bytes already decrypted would pose as the next answer */
			       !(h->ssl && !h->h2 && SSL_pending(h->ssl));
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
		if ((size_t)n < sizeof(buf) && !(h->ssl && SSL_pending(h->ssl)))
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
		sock_close(p, t);
		return;
	}
	for (;;) {
		n = hc_read(p, t, buf, sizeof(buf), why, sizeof(why));
		if (n == -1)
			break;
		if (n <= 0 || !h->h2 || hc_feed(h, buf, (size_t)n) == KS_H1_BAD ||
		    !ks_h2_reusable(h->h2)) {
			sock_close(p, t);
			return;
		}
		if ((size_t)n < sizeof(buf) && !(h->ssl && SSL_pending(h->ssl)))
			break;
	}
	if (t->fd < 0)
		return;		/* hc_read gave up on epoll */
	w = h->h2 ? h2_push(p, t, why, sizeof(why)) : 0;
	if (w == -2)
		sock_close(p, t);
	else if (!w)
		hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
}

static void hc_event(struct ks_prober *p, struct target *t)
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
		err = sock_error(t->fd);
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
				hc_wait(p, t, EPOLLIN | EPOLLRDHUP);
			if (t->fd < 0)
				return;
		}
		hc_recv(p, t);
		break;
	}
}

static void start_http(struct ks_prober *p, struct target *t, uint64_t now)
{
	struct hconn *h = t->hc;
	int n;

	if (!h) {
		h = calloc(1, sizeof(*h) + H1_REQ_MAX);
		if (!h) {
			start_failed(p, t, "memory", ENOMEM);
			return;
		}
		n = ks_h1_request(h->req, H1_REQ_MAX, t->host, check_port(t), t->t.spec.path,
				  t->t.spec.kind == KS_PROBE_HTTPS);
		if (n < 0) {
			free(h);
			start_failed(p, t, "request", -n);
			return;
		}
		h->req_len = (uint32_t)n;
		t->hc = h;
	}
	h->retried = false;
	h->reused = t->fd >= 0;
	heap_push(&p->heap[H_DL], t, now + t->t.spec.timeout_ms * NS_PER_MS);
	if (h->reused)
		hc_ready(p, t);
	else
		hc_connect(p, t);
}

/* A check of ours ran out of time. */
static void deadline_hit(struct ks_prober *p, struct target *t)
{
	char why[64];

	if (!t->hc) {
		tcp_done(p, t, 0, true);
		return;
	}
	snprintf(why, sizeof(why), "timeout after %u ms", t->t.spec.timeout_ms);
	hc_end(p, t, false, true, false, why);
}

static void target_event(struct ks_prober *p, struct target *t)
{
	if (t->hc)
		hc_event(p, t);
	else
		tcp_event(p, t);
}

static void start_check(struct ks_prober *p, struct target *t, uint64_t now)
{
	t->in_flight = true;
	t->last_start_ns = now;
	t->started++;
	p->st.in_flight++;
	if (p->st.in_flight > p->st.max_in_flight)
		p->st.max_in_flight = p->st.in_flight;
	if (t->t.spec.kind == KS_PROBE_TCP)
		start_tcp(p, t, now);
	else
		start_http(p, t, now);
}

/* Stop whatever runs for t (no result is fed). */
static void cancel(struct ks_prober *p, struct target *t)
{
	heap_del(&p->heap[H_DUE], t);
	if (!t->in_flight)
		return;
	if (t->fd >= 0)
		tcp_close(p, t);	/* also an HTTP connection: it is mid-request */
	t->in_flight = false;
	p->st.in_flight--;
}

/* ---- timer ---- */

static int arm(struct ks_prober *p)
{
	struct itimerspec its = { 0 };
	struct target *t;
	uint64_t next = UINT64_MAX;

	t = heap_top(&p->heap[H_DUE]);
	if (t && p->st.in_flight < p->max_in_flight)
		next = t->key[H_DUE];
	t = heap_top(&p->heap[H_DL]);
	if (t && t->key[H_DL] < next)
		next = t->key[H_DL];
	if (next == UINT64_MAX)
		next = 0;	/* disarm */
	if (next == p->armed_ns)
		return 0;
	if (next) {
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL))
		return -errno;
	p->armed_ns = next;
	return 0;
}

/*
 * How early t's check may start to share a wakeup: BATCH_NS, but at most a
 * twentieth of its interval, so a short interval is not shortened further.
 * The next check is due at least half an interval after a start, so a check
 * that ends inside connect() is never started twice in one round.
 */
static uint64_t batch_ns(const struct target *t)
{
	uint64_t w = t->t.spec.interval_ms * NS_PER_MS / 20;

	return w < BATCH_NS ? w : BATCH_NS;
}

/* Everything due now. Bounded: what remains keeps the timer expired, so the fd stays readable. */
static void run_due(struct ks_prober *p)
{
	int round;

	for (round = 0; round < 8; round++) {
		uint64_t now = now_ns();
		bool progress = false;
		struct target *t;

		while ((t = heap_top(&p->heap[H_DL])) && t->key[H_DL] <= now) {
			deadline_hit(p, t);
			progress = true;
		}
		while (p->st.in_flight < p->max_in_flight && (t = heap_top(&p->heap[H_DUE])) &&
		       t->key[H_DUE] <= now + batch_ns(t)) {
			heap_del(&p->heap[H_DUE], t);
			start_check(p, t, now);
			progress = true;
		}
		if (!progress)
			break;
	}
}

int ks_prober_dispatch(struct ks_prober *p)
{
	struct epoll_event ev[128];
	int i, n, ret = 0;
	uint64_t buf;

	p->in_dispatch = true;
	n = epoll_wait(p->epfd, ev, 128, 0);
	if (n < 0 && errno != EINTR) {
		ret = -errno;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint64_t u = ev[i].data.u64;

		switch (u & 3) {
		case TAG_TIMER:
			if (read(p->tfd, &buf, sizeof(buf)) == sizeof(buf))
				p->armed_ns = 0;
			break;
		default:
			target_event(p, ev[i].data.ptr);
			break;
		}
	}
	run_due(p);
	ret = arm(p);
out:
	p->in_dispatch = false;
	return ret;
}

/* ---- lifecycle ---- */

int ks_prober_new(struct ks_prober **out, ks_prober_cb on_change, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_TIMER };
	struct ks_prober *p;
	struct sigaction sa;
	struct rlimit rl;
	int i, ret;

	*out = NULL;
	/*
	 * OpenSSL writes to the socket with write(2), which raises SIGPIPE when
	 * the pod reset the connection. A process that kept the default
	 * (terminate) would die of a failing health check.
	 */
	if (!sigaction(SIGPIPE, NULL, &sa) && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->epfd = p->tfd = -1;
	p->cb = on_change;
	p->ctx = ctx;
	for (i = 0; i < H_NR; i++)
		p->heap[i].which = i;
	p->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < p->max_in_flight)
		p->max_in_flight = rl.rlim_cur / 4 ? (uint32_t)(rl.rlim_cur / 4) : 1;
	if (getrandom(&p->rng, sizeof(p->rng), GRND_NONBLOCK) != sizeof(p->rng))
		p->rng = now_ns();
	p->rng |= 1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->epfd < 0 || p->tfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev)) {
		ret = -errno;
		goto err;
	}
	*out = p;
	return 0;
err:
	ks_prober_free(p);
	return ret;
}

static void target_free(struct ks_prober *p, struct target *t)
{
	cancel(p, t);
	hc_free(p, t);
	free(t);
}

void ks_prober_free(struct ks_prober *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		target_free(p, p->tv[i]);
	SSL_CTX_free(p->tls[0]);
	SSL_CTX_free(p->tls[1]);
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->epfd >= 0)
		close(p->epfd);
	for (i = 0; i < H_NR; i++)
		free(p->heap[i].v);
	free(p->tv);
	free(p->hash);
	free(p);
}

static struct target *target_new(const struct ks_probe_target *in)
{
	struct target *t = calloc(1, sizeof(*t));
	char a[INET6_ADDRSTRLEN];

	if (!t)
		return NULL;
	t->t = *in;
	ks_hsm_init(&t->hsm);
	t->fd = -1;
	t->idx[H_DUE] = t->idx[H_DL] = NO_IDX;
	inet_ntop(in->addr.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, in->addr.bytes, a,
		  sizeof(a));
	snprintf(t->host, sizeof(t->host), in->addr.family == KS_FAMILY_V4 ? "%s" : "[%s]", a);
	return t;
}

int ks_prober_set_targets(struct ks_prober *p, const struct ks_probe_target *in, size_t n)
{
	struct target **tv = NULL, **hash = NULL, *t;
	const struct ks_probe_target **seen = NULL;
	size_t i, hcap = pow2_for(n), s;
	uint64_t now = now_ns();
	char err[160];
	int ret = 0;

	if (p->in_dispatch)
		return -EBUSY;
	/* Pass 1: validate without touching anything. */
	seen = calloc(hcap, sizeof(*seen));
	tv = calloc(n ? n : 1, sizeof(*tv));
	hash = calloc(hcap, sizeof(*hash));
	if (!seen || !tv || !hash) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (in[i].addr.family != KS_FAMILY_V4 && in[i].addr.family != KS_FAMILY_V6) {
			pr_warn("health target rejected", "index=%zu err=\"bad address family\"", i);
			ret = -EINVAL;
			goto out;
		}
		if (ks_probe_spec_check(&in[i].spec, err, sizeof(err))) {
			pr_warn("health target rejected", "index=%zu err=\"%s\"", i, err);
			ret = -EINVAL;
			goto out;
		}
		s = hash_slot((void **)seen, hcap, get_input, &in[i].addr, in[i].port);
		if (seen[s]) {
			pr_warn("health target rejected", "index=%zu err=\"duplicate address and port\"", i);
			ret = -EINVAL;
			goto out;
		}
		seen[s] = &in[i];
	}
	/* Pass 2: every allocation, so that the commit below cannot fail half way. */
	for (i = 0; i < H_NR; i++) {
		/* Old targets leave only after the new ones are pushed. */
		ret = heap_reserve(&p->heap[i], n + p->n);
		if (ret)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (find(p, &in[i].addr, in[i].port))
			continue;
		tv[i] = target_new(&in[i]);
		if (!tv[i]) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* Pass 3: commit. */
	p->gen++;
	for (i = 0; i < n; i++) {
		if (!tv[i]) {
			t = find(p, &in[i].addr, in[i].port);
			t->gen = p->gen;
			tv[i] = t;
			if (!ks_probe_spec_equal(&t->t.spec, &in[i].spec)) {
				cancel(p, t);
				hc_free(p, t);		/* its request came from the old spec */
				t->t.spec = in[i].spec;
				t->hsm.passes = t->hsm.fails = 0;
				t->started = 0;
				heap_push(&p->heap[H_DUE], t, now);
			}
		} else {
			tv[i]->gen = p->gen;
			heap_push(&p->heap[H_DUE], tv[i], now);
		}
		hash[hash_slot((void **)hash, hcap, get_target, &in[i].addr, in[i].port)] = tv[i];
	}
	for (i = 0; i < p->n; i++)
		if (p->tv[i]->gen != p->gen)
			target_free(p, p->tv[i]);
	free(p->tv);
	free(p->hash);
	p->tv = tv;
	p->hash = hash;
	p->hcap = hcap;
	p->n = n;
	p->st.targets = (uint32_t)n;

	tv = NULL;
	hash = NULL;
	ret = arm(p);
out:
	if (tv)
		for (i = 0; i < n; i++)
			if (tv[i] && !find(p, &in[i].addr, in[i].port))
				free(tv[i]);
	free(tv);
	free(hash);
	free(seen);
	return ret;
}

int ks_prober_state(struct ks_prober *p, const struct ksm_addr *a, uint16_t port,
		    enum ks_hstate *out)
{
	struct target *t = find(p, a, port);

	if (!t)
		return -ENOENT;
	*out = t->hsm.state;
	return 0;
}

int ks_prober_fd(struct ks_prober *p)
{
	return p->epfd;
}

void ks_prober_set_max_in_flight(struct ks_prober *p, uint32_t n)
{
	p->max_in_flight = n ? n : 1;
	arm(p);
}

void ks_prober_get_stats(struct ks_prober *p, struct ks_prober_stats *st)
{
	*st = p->st;
}
