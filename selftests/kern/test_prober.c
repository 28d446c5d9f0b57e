// SPDX-License-Identifier: BSD-2-Clause
/*
 * Active health checks against real servers in a private network
 * namespace: HTTP/1.1 (status switched at run time), a server that accepts
 * and never answers, h2c with prior knowledge (a minimal HTTP/2 responder
 * written below), HTTPS against `openssl s_server` with a self-signed
 * certificate made at test time, HTTP/2 over TLS negotiated by ALPN against
 * `nghttpd` (Debian package nghttp2-server, see scripts/deps.sh) with the
 * same certificate, and TCP connects to an open and a closed port.
 *
 * The test process enters the namespace with setns(2) (never `ip netns
 * exec`), so the prober's sockets live there; the servers are forked
 * children. Teardown (also from atexit and SIGINT/SIGTERM/SIGALRM) kills the
 * children by pid, returns to the original namespace, deletes the namespace
 * and the temp dir.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "common/log.h"
#include "health/prober.h"

/* Listeners of the test server (all on 127.0.0.1 unless noted). */
enum { L_HTTP, L_HANG, L_H2C, L_TCP, L_HTTP6, L_KEEP, L_NR };
static const int l_port[L_NR] = { 8080, 8081, 8082, 8083, 8085, 8086 };

/* What the keep-alive listener does with a request. */
enum {
	KEEP_ANSWER,		/* answer (chunked body) and keep the connection */
	KEEP_DROP_REUSED,	/* answer a connection's first request, close on any later one */
	KEEP_ANSWER_CLOSE,	/* answer "keep-alive", then close the idle connection at once */
	KEEP_RESET,		/* reset the connection instead of answering */
};
#define PORT_CLOSED 8084
#define PORT_TLS 8443
#define PORT_H2TLS 8444		/* nghttpd: HTTP/2 over TLS only */
#define PORT_TLSKEEP 8445	/* our HTTPS keep-alive server */

struct srv_shared {
	int status[L_NR];	/* what HTTP and h2c answer now */
	long served[L_NR];	/* responses sent */
	long streak[L_NR];	/* responses in a row with the current status */
	int last[L_NR];
	long accepted[L_NR];
	long bad_preface;	/* h2c listener got something that is not HTTP/2 */
	int keep_mode;		/* KEEP_* */
	long dropped;		/* keep-alive listener: requests closed or reset, not answered */
	long tls_accepted, tls_served;	/* HTTPS keep-alive server */
	char tls_host[64];
	char host[L_NR][64];	/* last Host header (HTTP/1.1) */
	char reqline[L_NR][128];
	char ua[L_NR][64];
};

static struct {
	char netns[64];
	char tmpdir[64];
	int orig_ns;
	bool made;
	pid_t srv, tls, h2, tlskeep;
	struct srv_shared *sh;
} env = { .orig_ns = -1 };

static void kill_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void cleanup(void)
{
	char cmd[256];

	kill_child(&env.srv);
	kill_child(&env.tls);
	kill_child(&env.h2);
	kill_child(&env.tlskeep);
	if (env.orig_ns >= 0) {
		setns(env.orig_ns, CLONE_NEWNET);
		close(env.orig_ns);
		env.orig_ns = -1;
	}
	if (env.made) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s", env.netns);
		if (system(cmd))
			fprintf(stderr, "cleanup: %s failed\n", cmd);
		env.made = false;
	}
	if (env.tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", env.tmpdir);
		if (system(cmd))
			fprintf(stderr, "cleanup: %s failed\n", cmd);
		env.tmpdir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---------------- the server child ---------------- */

#define MAX_CONN 64

struct conn {
	int fd, l;
	size_t len;
	bool h2;		/* preface seen, settings sent */
	bool done;		/* HTTP/1.1 answered */
	int reqs;		/* requests seen on this connection */
	unsigned char buf[8192];
};

static int listen_on(int family, const char *addr, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, addr, &in->sin_addr);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		len = sizeof(*in6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void count_response(struct srv_shared *sh, int l, int status)
{
	if (status != sh->last[l]) {
		sh->last[l] = status;
		__atomic_store_n(&sh->streak[l], 0, __ATOMIC_SEQ_CST);
	}
	__atomic_add_fetch(&sh->streak[l], 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->served[l], 1, __ATOMIC_SEQ_CST);
}

static void copy_header(const char *req, const char *name, char *dst, size_t len)
{
	const char *h = strcasestr(req, name), *e;

	if (!h)
		return;
	h += strlen(name);
	while (*h == ' ')
		h++;
	e = strstr(h, "\r\n");
	if (e && (size_t)(e - h) < len) {
		memcpy(dst, h, e - h);
		dst[e - h] = '\0';
	}
}

/* HTTP/1.1: answer once the request head is in, then close. */
static bool serve_h1(struct srv_shared *sh, struct conn *c)
{
	char resp[256], *eol;
	int st, n;

	c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
	if (!strstr((char *)c->buf, "\r\n\r\n"))
		return false;
	eol = strstr((char *)c->buf, "\r\n");
	if (eol && (size_t)(eol - (char *)c->buf) < sizeof(sh->reqline[0])) {
		memcpy(sh->reqline[c->l], c->buf, eol - (char *)c->buf);
		sh->reqline[c->l][eol - (char *)c->buf] = '\0';
	}
	copy_header((char *)c->buf, "\r\nHost:", sh->host[c->l], sizeof(sh->host[0]));
	copy_header((char *)c->buf, "\r\nUser-Agent:", sh->ua[c->l], sizeof(sh->ua[0]));
	st = __atomic_load_n(&sh->status[c->l], __ATOMIC_SEQ_CST);
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 %d X\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\nok", st,
		     st / 100 == 3 ? "Location: /moved\r\n" : "");
	count_response(sh, c->l, st);
	if (write(c->fd, resp, n) < 0)
		return true;
	return true;
}

/* The keep-alive listener: one request head at a time, per keep_mode. */
static bool serve_keep(struct srv_shared *sh, struct conn *c)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	char resp[160], *end;
	int st, n, mode;

	c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
	while ((end = strstr((char *)c->buf, "\r\n\r\n"))) {
		size_t used = (size_t)(end + 4 - (char *)c->buf);

		memmove(c->buf, c->buf + used, c->len - used + 1);
		c->len -= used;
		c->reqs++;
		mode = __atomic_load_n(&sh->keep_mode, __ATOMIC_SEQ_CST);
		if (mode == KEEP_RESET || (mode == KEEP_DROP_REUSED && c->reqs > 1)) {
			__atomic_add_fetch(&sh->dropped, 1, __ATOMIC_SEQ_CST);
			if (mode == KEEP_RESET)
				setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
			return true;
		}
		st = __atomic_load_n(&sh->status[c->l], __ATOMIC_SEQ_CST);
		n = snprintf(resp, sizeof(resp),
			     "HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "2\r\nok\r\n0\r\n\r\n", st);
		count_response(sh, c->l, st);
		if (write(c->fd, resp, n) < 0 || mode == KEEP_ANSWER_CLOSE)
			return true;
	}
	return false;
}

static void h2_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *p,
		     size_t len)
{
	unsigned char f[9 + 64];

	f[0] = len >> 16;
	f[1] = len >> 8;
	f[2] = len;
	f[3] = type;
	f[4] = flags;
	f[5] = (stream >> 24) & 0x7f;
	f[6] = stream >> 16;
	f[7] = stream >> 8;
	f[8] = stream;
	if (len)
		memcpy(f + 9, p, len);
	if (write(fd, f, 9 + len) < 0)
		return;
}

/*
 * Just enough HTTP/2 (RFC 9113) for a GET: check the client preface, send
 * an empty SETTINGS, ACK the client's SETTINGS, answer every HEADERS frame
 * with a HEADERS frame carrying only :status (HPACK literal, indexed name 8).
 */
static bool serve_h2(struct srv_shared *sh, struct conn *c)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	size_t off = 0;

	if (!c->h2) {
		if (c->len < 24 && !memcmp(c->buf, preface, c->len))
			return false;
		if (memcmp(c->buf, preface, 24)) {
			__atomic_add_fetch(&sh->bad_preface, 1, __ATOMIC_SEQ_CST);
			return true;
		}
		c->h2 = true;
		h2_frame(c->fd, 4, 0, 0, NULL, 0);
		off = 24;
	}
	while (c->len - off >= 9) {
		unsigned char *f = c->buf + off;
		size_t flen = (size_t)f[0] << 16 | f[1] << 8 | f[2];
		uint32_t stream = (uint32_t)(f[5] & 0x7f) << 24 | f[6] << 16 | f[7] << 8 | f[8];

		if (c->len - off < 9 + flen)
			break;
		if (f[3] == 4 && !(f[4] & 1)) {
			h2_frame(c->fd, 4, 1, 0, NULL, 0);
		} else if (f[3] == 1) {
			int st = __atomic_load_n(&sh->status[c->l], __ATOMIC_SEQ_CST);
			unsigned char hb[5] = { 0x08, 3, '0' + st / 100, '0' + st / 10 % 10,
						'0' + st % 10 };

			count_response(sh, c->l, st);
			h2_frame(c->fd, 1, 0x5, stream, hb, sizeof(hb));
		}
		off += 9 + flen;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return false;
}

static void server_main(struct srv_shared *sh)
{
	struct pollfd pfd[L_NR + MAX_CONN];
	struct conn *conns = calloc(MAX_CONN, sizeof(*conns));
	int lfd[L_NR], i;

	alarm(300);
	for (i = 0; i < L_NR; i++)
		lfd[i] = i == L_HTTP6 ? listen_on(AF_INET6, "::1", l_port[i]) :
					listen_on(AF_INET, "127.0.0.1", l_port[i]);
	if (lfd[L_HTTP] < 0 || lfd[L_HANG] < 0 || lfd[L_H2C] < 0 || lfd[L_TCP] < 0 ||
	    lfd[L_KEEP] < 0 || !conns)
		_exit(2);
	for (i = 0; i < MAX_CONN; i++)
		conns[i].fd = -1;
	for (;;) {
		int n = 0, k;

		for (i = 0; i < L_NR; i++) {
			pfd[n].fd = lfd[i];
			pfd[n++].events = POLLIN;
		}
		for (i = 0; i < MAX_CONN; i++) {
			pfd[n].fd = conns[i].fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, n, -1) < 0)
			continue;
		for (i = 0; i < L_NR; i++) {
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			__atomic_add_fetch(&sh->accepted[i], 1, __ATOMIC_SEQ_CST);
			if (i == L_TCP) {
				close(fd);
				continue;
			}
			for (k = 0; k < MAX_CONN && conns[k].fd >= 0; k++)
				;
			if (k == MAX_CONN) {
				close(fd);
				continue;
			}
			memset(&conns[k], 0, sizeof(conns[k]));
			conns[k].fd = fd;
			conns[k].l = i;
		}
		for (k = 0; k < MAX_CONN; k++) {
			struct conn *c = &conns[k];
			ssize_t r;
			bool close_it;

			if (c->fd < 0 || !(pfd[L_NR + k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
			if (r <= 0) {
				close(c->fd);
				c->fd = -1;
				continue;
			}
			c->len += r;
			if (c->l == L_HANG) {
				c->len = 0;	/* read and never answer */
				continue;
			}
			close_it = c->l == L_H2C ? serve_h2(sh, c) :
				   c->l == L_KEEP ? serve_keep(sh, c) : serve_h1(sh, c);
			if (close_it || c->len >= sizeof(c->buf) - 1) {
				close(c->fd);
				c->fd = -1;
			}
		}
	}
}

static int wait_port(int family, const char *addr, int port)
{
	int64_t end = kt_now_ms() + 10000;

	while (kt_now_ms() < end) {
		struct sockaddr_storage ss = { 0 };
		socklen_t len;
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		if (family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			in->sin_family = AF_INET;
			in->sin_port = htons(port);
			inet_pton(AF_INET, addr, &in->sin_addr);
			len = sizeof(*in);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			inet_pton(AF_INET6, addr, &in6->sin6_addr);
			len = sizeof(*in6);
		}
		ok = fd >= 0 && !connect(fd, (struct sockaddr *)&ss, len);
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

/* Fork and exec argv in the temp dir (stdio on /dev/null); wait until 127.0.0.1:port accepts. */
static int start_server(pid_t *pid, int port, char *const argv[])
{
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (!*pid) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (chdir(env.tmpdir))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	return wait_port(AF_INET, "127.0.0.1", port);
}

static int start_tls_server(void)
{
	char acc[32];
	char *const argv[] = { "openssl", "s_server", "-quiet", "-WWW", "-accept", acc,
			       "-cert", "cert.pem", "-key", "key.pem", NULL };

	snprintf(acc, sizeof(acc), "127.0.0.1:%d", PORT_TLS);
	return start_server(&env.tls, PORT_TLS, argv);
}

/*
 * nghttpd serves the files under h2root (just `health`) over TLS with the
 * test certificate; without -v it prints nothing.
 */
static int start_h2_server(void)
{
	char port[16];
	char *const argv[] = { "nghttpd", "-a", "127.0.0.1", "-d", "h2root", port, "key.pem",
			       "cert.pem", NULL };

	snprintf(port, sizeof(port), "%d", PORT_H2TLS);
	return start_server(&env.h2, PORT_H2TLS, argv);
}

/*
 * HTTPS with keep-alive, which neither s_server nor nghttpd offers: one
 * process per connection (blocking OpenSSL), answering every request head
 * with 200 on the same connection until the client closes. OpenSSL sends
 * TLS 1.3 session tickets after the handshake, so the client also meets
 * records that carry no response.
 */
static void tls_conn_main(SSL_CTX *ctx, int fd)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	SSL *ssl = SSL_new(ctx);
	char buf[4096];
	size_t len = 0;
	int n;

	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1)
		_exit(0);
	while ((n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len))) > 0) {
		char *end;

		len += (size_t)n;
		buf[len] = '\0';
		while ((end = strstr(buf, "\r\n\r\n"))) {
			size_t used = (size_t)(end + 4 - buf);

			copy_header(buf, "\r\nHost:", env.sh->tls_host, sizeof(env.sh->tls_host));
			/* Counted first: the client may have the answer before write returns here. */
			__atomic_add_fetch(&env.sh->tls_served, 1, __ATOMIC_SEQ_CST);
			if (SSL_write(ssl, resp, sizeof(resp) - 1) <= 0)
				_exit(0);
			memmove(buf, buf + used, len - used + 1);
			len -= used;
		}
		if (len == sizeof(buf) - 1)
			_exit(0);
	}
	_exit(0);
}

static void tls_keep_main(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int lfd = listen_on(AF_INET, "127.0.0.1", PORT_TLSKEEP), fd;

	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	signal(SIGINT, SIG_DFL);	/* the parent's handlers would tear down its netns */
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!ctx || lfd < 0 || chdir(env.tmpdir) ||
	    SSL_CTX_use_certificate_file(ctx, "cert.pem", SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, "key.pem", SSL_FILETYPE_PEM) != 1)
		_exit(2);
	fcntl(lfd, F_SETFL, 0);	/* blocking accept */
	for (;;) {
		pid_t c;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		__atomic_add_fetch(&env.sh->tls_accepted, 1, __ATOMIC_SEQ_CST);
		c = fork();
		if (!c) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(lfd);
			tls_conn_main(ctx, fd);
		}
		close(fd);
	}
}

static int start_tls_keep_server(void)
{
	env.tlskeep = fork();
	if (env.tlskeep < 0)
		return -errno;
	if (!env.tlskeep)
		tls_keep_main();
	return wait_port(AF_INET, "127.0.0.1", PORT_TLSKEEP);
}

static int group_setup(void **state)
{
	char path[128], cmd[512];
	uint32_t rnd;
	int fd;

	(void)state;
	alarm(240);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGALRM, on_signal);
	if (getentropy(&rnd, sizeof(rnd)))
		rnd = (uint32_t)getpid();
	snprintf(env.netns, sizeof(env.netns), "kstest-prober-%d-%08x", (int)getpid(), rnd);
	snprintf(env.tmpdir, sizeof(env.tmpdir), "/tmp/kstest-prober-XXXXXX");
	if (!mkdtemp(env.tmpdir)) {
		env.tmpdir[0] = '\0';
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && echo ok > health && mkdir h2root && echo ok > h2root/health && "
		 "openssl req -x509 -newkey ec "
		 "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem "
		 "-days 1 -subj /CN=ksplit-test >/dev/null 2>&1", env.tmpdir);
	if (system(cmd)) {
		fprintf(stderr, "setup: openssl req failed\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "ip netns add %s", env.netns);
	if (system(cmd))
		return -1;
	env.made = true;
	env.orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", env.netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (env.orig_ns < 0 || fd < 0 || setns(fd, CLONE_NEWNET)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (kt_lo_up())
		return -1;
	env.sh = mmap(NULL, sizeof(*env.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (env.sh == MAP_FAILED)
		return -1;
	memset(env.sh, 0, sizeof(*env.sh));
	for (fd = 0; fd < L_NR; fd++)
		env.sh->status[fd] = 200;
	env.srv = fork();
	if (env.srv < 0)
		return -1;
	if (!env.srv) {
		server_main(env.sh);
		_exit(0);
	}
	if (wait_port(AF_INET, "127.0.0.1", l_port[L_HTTP]) ||
	    wait_port(AF_INET, "127.0.0.1", l_port[L_H2C]))
		return -1;
	return start_tls_server();
}

static int group_teardown(void **state)
{
	(void)state;
	cleanup();
	return 0;
}

/* ---------------- prober driving ---------------- */

#define MAX_EV 64

struct ev {
	uint16_t port;
	enum ks_hstate old, now;
	char reason[256];
	long streak, served, accepted;	/* snapshot of the matching listener */
	uint64_t passes, failures;	/* prober stats at the event (if rec.p is set) */
	int64_t at_ms;
	bool used;		/* returned by run_until already */
};

struct rec {
	int n;
	struct ev ev[MAX_EV];
	int64_t t0;
	struct ks_prober *p;	/* optional: snapshot its stats into each event */
};

static int listener_of(uint16_t port)
{
	int i;

	for (i = 0; i < L_NR; i++)
		if (l_port[i] == port)
			return i;
	return -1;
}

static void on_change(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
		      enum ks_hstate now, const char *reason)
{
	struct rec *r = ctx;
	struct ev *e;
	int l = listener_of(t->spec.port ? t->spec.port : t->port);

	if (r->n == MAX_EV)
		return;
	e = &r->ev[r->n++];
	e->port = t->port;
	e->old = old;
	e->now = now;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	e->at_ms = kt_now_ms() - r->t0;
	if (l >= 0) {
		e->streak = __atomic_load_n(&env.sh->streak[l], __ATOMIC_SEQ_CST);
		e->served = __atomic_load_n(&env.sh->served[l], __ATOMIC_SEQ_CST);
		e->accepted = __atomic_load_n(&env.sh->accepted[l], __ATOMIC_SEQ_CST);
	}
	if (r->p) {
		struct ks_prober_stats st;

		ks_prober_get_stats(r->p, &st);
		e->passes = st.passes;
		e->failures = st.failures;
	}
}

/* Run the loop until port reaches state (the first such event not returned before) or timeout_ms passes. */
static const struct ev *run_until(struct ks_prober *p, struct rec *r, uint16_t port,
				  enum ks_hstate want, int timeout_ms)
{
	int64_t end = kt_now_ms() + timeout_ms;
	int i;

	for (;;) {
		struct pollfd pfd = { .fd = ks_prober_fd(p), .events = POLLIN };
		int64_t left = end - kt_now_ms();

		for (i = 0; i < r->n; i++) {
			if (!r->ev[i].used && r->ev[i].port == port && r->ev[i].now == want) {
				r->ev[i].used = true;
				return &r->ev[i];
			}
		}
		if (left <= 0)
			return NULL;
		if (poll(&pfd, 1, (int)left) > 0)
			assert_int_equal(ks_prober_dispatch(p), 0);
	}
}

/* Keep the loop running for ms (events are recorded). */
static void run_for(struct ks_prober *p, int ms)
{
	int64_t end = kt_now_ms() + ms;

	while (kt_now_ms() < end) {
		struct pollfd pfd = { .fd = ks_prober_fd(p), .events = POLLIN };

		if (poll(&pfd, 1, (int)(end - kt_now_ms())) > 0)
			assert_int_equal(ks_prober_dispatch(p), 0);
	}
}

static struct ks_probe_target mk(const char *addr, uint16_t port, enum ks_probe_kind kind,
				 uint32_t iv, uint32_t to, uint32_t h, uint32_t u)
{
	struct ks_probe_target t;

	memset(&t, 0, sizeof(t));
	if (inet_pton(AF_INET, addr, t.addr.bytes) == 1) {
		t.addr.family = 4;
	} else {
		inet_pton(AF_INET6, addr, t.addr.bytes);
		t.addr.family = 6;
	}
	t.port = port;
	t.spec.kind = kind;
	t.spec.interval_ms = iv;
	t.spec.timeout_ms = to;
	t.spec.healthy_thr = h;
	t.spec.unhealthy_thr = u;
	strcpy(t.spec.path, "/health");
	ks_codes_parse("200", &t.spec.match, NULL, 0);
	return t;
}

static void set_status(int l, int st)
{
	__atomic_store_n(&env.sh->status[l], st, __ATOMIC_SEQ_CST);
}

static void print_ev(const char *what, const struct ev *e)
{
	printf("  %-28s port=%u %s->%s at=%lldms streak=%ld served=%ld accepted=%ld reason=\"%s\"\n",
	       what, e->port, ks_hstate_name(e->old), ks_hstate_name(e->now),
	       (long long)e->at_ms, e->streak, e->served, e->accepted, e->reason);
}

/* HTTP/1.1: 200 -> healthy after one check; 500 -> unhealthy after exactly u; 200 -> healthy after exactly h. */
static void test_http_thresholds(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t = mk("127.0.0.1", l_port[L_HTTP], KS_PROBE_HTTP, 150, 1000, 3, 2);
	const struct ev *e;
	struct ks_prober_stats st;
	long served0 = env.sh->served[L_HTTP];

	(void)state;
	set_status(L_HTTP, 200);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	print_ev("first check", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	/* Checked at once: the very first response made it healthy. */
	assert_int_equal(e->served - served0, 1);
	assert_string_equal(env.sh->reqline[L_HTTP], "GET /health HTTP/1.1");
	assert_string_equal(env.sh->host[L_HTTP], "127.0.0.1:8080");
	assert_string_equal(env.sh->ua[L_HTTP], "ksplit-healthcheck/1");

	set_status(L_HTTP, 500);
	e = run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	print_ev("500 -> unhealthy", e);
	assert_int_equal(e->streak, 2);
	assert_non_null(strstr(e->reason, "2 consecutive failures, last: http status 500"));

	set_status(L_HTTP, 200);
	e = run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	print_ev("200 -> healthy", e);
	assert_int_equal(e->streak, 3);
	assert_non_null(strstr(e->reason, "3 consecutive passes"));

	ks_prober_get_stats(p, &st);
	printf("  stats: checks=%llu passes=%llu failures=%llu\n", (unsigned long long)st.checks,
	       (unsigned long long)st.passes, (unsigned long long)st.failures);
	assert_int_equal(r.n, 3);
	ks_prober_free(p);
}

/* Not following redirects: a 302 is the answer (served once, never a second request). */
static void test_redirect_not_followed(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t = mk("127.0.0.1", l_port[L_HTTP], KS_PROBE_HTTP, 2000, 1000, 2, 2);
	struct ks_prober_stats st;
	const struct ev *e;
	long served0;

	(void)state;
	ks_codes_parse("301-302", &t.spec.match, NULL, 0);
	set_status(L_HTTP, 302);
	served0 = env.sh->served[L_HTTP];
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = run_until(p, &r, t.port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	print_ev("302 matched", e);
	run_for(p, 200);
	/* One request per check (the second check may come within the 200 ms): none to /moved. */
	ks_prober_get_stats(p, &st);
	assert_int_equal(env.sh->served[L_HTTP] - served0, (long)st.checks);
	assert_string_equal(env.sh->reqline[L_HTTP], "GET /health HTTP/1.1");
	ks_prober_free(p);
	set_status(L_HTTP, 200);
}

/* A server that accepts and never answers: each check times out and counts as a failure. */
static void test_timeout_is_failure(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t = mk("127.0.0.1", l_port[L_HANG], KS_PROBE_HTTP, 300, 200, 2, 3);
	struct ks_prober_stats st;
	const struct ev *e;
	long acc0 = env.sh->accepted[L_HANG];

	(void)state;
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	print_ev("hang -> unhealthy", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_int_equal(e->accepted - acc0, 3);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: timeout after 200 ms"));
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.timeouts, 3);
	assert_int_equal(st.passes, 0);
	/* A TCP check of the same server passes: connect-only cannot see a hung app. */
	t.spec.kind = KS_PROBE_TCP;
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	print_ev("same server, tcp check", e);
	assert_non_null(strstr(e->reason, "2 consecutive passes: connected"));
	ks_prober_free(p);
}

/* h2c with prior knowledge against the minimal HTTP/2 server. */
static void test_h2c(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[2];
	const struct ev *e;
	long bad0 = env.sh->bad_preface, served0 = env.sh->served[L_H2C];
	int i;

	(void)state;
	t[0] = mk("127.0.0.1", l_port[L_H2C], KS_PROBE_HTTP, 150, 1000, 2, 3);
	t[0].spec.http2 = true;
	/* Control: the same server checked with HTTP/1.1 must fail (proves h2 was spoken above). */
	t[1] = t[0];
	t[1].port = 1;
	t[1].spec.port = l_port[L_H2C];
	t[1].spec.http2 = false;
	t[1].spec.unhealthy_thr = 2;
	set_status(L_H2C, 200);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	e = run_until(p, &r, t[0].port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	print_ev("h2c first check", e);
	assert_int_equal(e->served - served0, 1);
	e = run_until(p, &r, 1, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	print_ev("http1 vs h2-only server", e);
	assert_true(env.sh->bad_preface - bad0 >= 2);

	set_status(L_H2C, 503);
	e = run_until(p, &r, t[0].port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	print_ev("h2c 503 -> unhealthy", e);
	assert_int_equal(e->streak, 3);
	assert_non_null(strstr(e->reason, "http status 503"));
	set_status(L_H2C, 204);
	ks_codes_parse("200-299", &t[0].spec.match, NULL, 0);
	/* A spec change keeps the state and restarts the count with the new statusMatch. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	e = run_until(p, &r, t[0].port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	print_ev("h2c 204 -> healthy", e);
	assert_int_equal(e->old, KS_H_UNHEALTHY);
	assert_int_equal(e->streak, 2);
	/* h2c keeps its connection: 5 more checks, the same single client socket. */
	served0 = env.sh->served[L_H2C];
	i = kt_count_tcp(false, l_port[L_H2C], 0x06);
	run_for(p, 800);
	printf("  h2c reuse: served=%ld client TIME_WAIT +%d established=%d\n",
	       env.sh->served[L_H2C] - served0, kt_count_tcp(false, l_port[L_H2C], 0x06) - i,
	       kt_count_tcp(false, l_port[L_H2C], 0x01));
	assert_true(env.sh->served[L_H2C] - served0 >= 4);
	assert_int_equal(kt_count_tcp(false, l_port[L_H2C], 0x06) - i, 0);
	assert_int_equal(kt_count_tcp(false, l_port[L_H2C], 0x01), 1);
	ks_prober_free(p);
}

/* Run the loop until the prober has completed n more checks (or 10 s pass). */
static void run_checks(struct ks_prober *p, uint64_t n)
{
	struct ks_prober_stats st;
	int64_t end = kt_now_ms() + 10000;
	uint64_t want;

	ks_prober_get_stats(p, &st);
	want = st.checks + n;
	while (st.checks < want && kt_now_ms() < end) {
		struct pollfd pfd = { .fd = ks_prober_fd(p), .events = POLLIN };

		if (poll(&pfd, 1, 100) > 0)
			assert_int_equal(ks_prober_dispatch(p), 0);
		ks_prober_get_stats(p, &st);
	}
	assert_true(st.checks >= want);
}

struct keep_snap {
	long accepted, served, dropped;
	uint64_t passes, failures;
};

static void keep_snap(struct ks_prober *p, struct keep_snap *k)
{
	struct ks_prober_stats st;

	ks_prober_get_stats(p, &st);
	k->accepted = __atomic_load_n(&env.sh->accepted[L_KEEP], __ATOMIC_SEQ_CST);
	k->served = __atomic_load_n(&env.sh->served[L_KEEP], __ATOMIC_SEQ_CST);
	k->dropped = __atomic_load_n(&env.sh->dropped, __ATOMIC_SEQ_CST);
	k->passes = st.passes;
	k->failures = st.failures;
}

/*
 * Plain HTTP/1.1 checks keep their connection: 10 checks, 1 connection. A
 * kept connection that the server closes when the request arrives (its
 * keep-alive timeout racing us) is retried once on a fresh one and passes;
 * one that the server closes while idle is replaced; a server that resets
 * every connection fails each check after exactly one retry.
 */
/*
 * Put the keep-alive server in mode, let `skip` checks pass unmeasured, then
 * measure 10: what the server and the prober saw, as differences.
 */
static void keep_phase(struct ks_prober *p, int mode, uint64_t skip, const char *label,
		       struct keep_snap *d)
{
	struct keep_snap a, b;

	__atomic_store_n(&env.sh->keep_mode, mode, __ATOMIC_SEQ_CST);
	if (skip)
		run_checks(p, skip);
	keep_snap(p, &a);
	run_checks(p, 10);
	keep_snap(p, &b);
	d->accepted = b.accepted - a.accepted;
	d->served = b.served - a.served;
	d->dropped = b.dropped - a.dropped;
	d->passes = b.passes - a.passes;
	d->failures = b.failures - a.failures;
	printf("  %-26s passes=%" PRIu64 " failures=%" PRIu64 " served=%ld dropped=%ld connections=%ld\n",
	       label, d->passes, d->failures, d->served, d->dropped, d->accepted);
	assert_int_equal(d->failures, 0);
	assert_true(d->passes >= 10);
}

static void test_http_keepalive(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct keep_snap a, b, d;
	const struct ev *e;

	(void)state;
	/*
	 * 200 ms: from the third check on, checks are 180-200 ms apart, more
	 * than the prober's 100 ms start batching, so when a check completes
	 * the next one has not started, and snapshots taken between checks
	 * compare exactly.
	 */
	t = mk("127.0.0.1", l_port[L_KEEP], KS_PROBE_HTTP, 200, 1000, 2, 2);
	set_status(L_KEEP, 200);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	r.p = p;
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	/* The second check may come within the start batching of the first: skip both. */
	keep_phase(p, KEEP_ANSWER, 2, "keep-alive:", &d);
	/* One connection since before the first measured check. */
	assert_int_equal(d.accepted, 0);
	assert_int_equal(d.served, (long)d.passes);

	/* Every reuse is closed by the server: each check retries on a fresh connection and passes. */
	keep_phase(p, KEEP_DROP_REUSED, 0, "reuse dropped by server:", &d);
	assert_int_equal(d.dropped, (long)d.passes);
	assert_int_equal(d.accepted, (long)d.passes);

	/* Closed while idle: replaced before the next check, no failure, no retry needed. */
	keep_phase(p, KEEP_ANSWER_CLOSE, 1, "closed while idle:", &d);
	assert_int_equal(d.dropped, 0);
	assert_int_equal(d.accepted, (long)d.passes);
	assert_int_equal(r.n, 1);	/* only "unknown -> healthy" so far */

	/* Back to keep-alive for a kept connection, then reset everything. */
	__atomic_store_n(&env.sh->keep_mode, KEEP_ANSWER, __ATOMIC_SEQ_CST);
	run_checks(p, 3);
	__atomic_store_n(&env.sh->keep_mode, KEEP_RESET, __ATOMIC_SEQ_CST);
	keep_snap(p, &a);
	e = run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	keep_snap(p, &b);
	print_ev("reset -> unhealthy", e);
	assert_string_equal(e->reason, "2 consecutive failures, last: recv: Connection reset by peer");
	assert_int_equal(e->failures - a.failures, 2);
	/* First failing check: the kept connection, then one retry; the second: one fresh try. */
	assert_int_equal(e->accepted - a.accepted, 2);
	assert_true(b.dropped - a.dropped >= 3);
	ks_prober_free(p);
}

/*
 * HTTPS (HTTP/1.1 over TLS, our own OpenSSL client) keeps its connection:
 * 10 checks, 1 TLS connection, with the server's session tickets arriving
 * in between; Host leaves out nothing but the https default port.
 */
static void test_https_keepalive(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct ks_prober_stats st;
	long acc0, srv0;
	int i;

	(void)state;
	assert_int_equal(start_tls_keep_server(), 0);
	/* wait_port's own connection is counted by the server in its own time. */
	for (i = 0; i < 200 && !__atomic_load_n(&env.sh->tls_accepted, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(env.sh->tls_accepted, 1);
	t = mk("127.0.0.1", 1, KS_PROBE_HTTPS, 200, 1000, 2, 2);
	t.spec.port = PORT_TLSKEEP;
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	acc0 = env.sh->tls_accepted;
	srv0 = env.sh->tls_served;
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	run_checks(p, 10);
	ks_prober_get_stats(p, &st);
	printf("  https keep-alive: checks=%" PRIu64 " passes=%" PRIu64 " tls connections=%ld served=%ld host=%s\n",
	       st.checks, st.passes, env.sh->tls_accepted - acc0, env.sh->tls_served - srv0,
	       env.sh->tls_host);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.passes, 10);
	assert_int_equal(env.sh->tls_accepted - acc0, 1);
	assert_int_equal(env.sh->tls_served - srv0, 10);
	assert_string_equal(env.sh->tls_host, "127.0.0.1:8445");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ev[0].reason, "first check passed: http status 200");

	/* The server goes away: the kept connection fails, exactly 2 checks later unhealthy. */
	kill_child(&env.tlskeep);
	assert_non_null(run_until(p, &r, 1, KS_H_UNHEALTHY, 5000));
	ks_prober_get_stats(p, &st);
	print_ev("https server gone", &r.ev[1]);
	assert_int_equal(st.failures, 2);
	assert_string_equal(r.ev[1].reason, "2 consecutive failures, last: connect: Connection refused");
	ks_prober_free(p);
}

/*
 * Connects that do not finish at once. Checks to a pod on this node usually
 * find the handshake done when connect() returns; a remote pod's does not.
 * A listener whose accept queue is full drops the SYN, so the prober's
 * connect stays pending until the retransmit ~1 s later finds room.
 */
static int listen_full(int port, int *filler)
{
	int fd = listen_on(AF_INET, "127.0.0.1", port), c;
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(port) };

	assert_true(fd >= 0);
	assert_int_equal(listen(fd, 0), 0);	/* room for one */
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&in, sizeof(in)), 0);
	*filler = c;
	return fd;
}

static void test_async_connect(void **state)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	const struct ev *e;
	char req[512];
	int lfd, filler, a;
	ssize_t n;

	(void)state;
	/* TCP: pending at first, connected after the SYN retransmit. */
	lfd = listen_full(8090, &filler);
	t = mk("127.0.0.1", 8090, KS_PROBE_TCP, 5000, 3000, 2, 2);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	run_for(p, 300);
	assert_int_equal(r.n, 0);	/* still connecting */
	close(accept(lfd, NULL, NULL));	/* the filler goes: room for the retransmitted SYN */
	e = run_until(p, &r, 8090, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	print_ev("tcp, slow handshake", e);
	assert_string_equal(e->reason, "first check passed: connected");
	assert_true(e->at_ms >= 800);
	ks_prober_free(p);
	close(filler);
	close(lfd);

	/* HTTP: the same, then the request goes out on the late connection and is answered. */
	memset(&r, 0, sizeof(r));
	lfd = listen_full(8091, &filler);
	t = mk("127.0.0.1", 8091, KS_PROBE_HTTP, 5000, 3000, 2, 2);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	run_for(p, 300);
	close(accept(lfd, NULL, NULL));
	run_for(p, 1500);	/* connected by now, request sent */
	assert_int_equal(r.n, 0);
	a = accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	n = read(a, req, sizeof(req) - 1);
	assert_true(n > 0);
	req[n] = '\0';
	assert_non_null(strstr(req, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:8091\r\n"));
	assert_int_equal(write(a, resp, sizeof(resp) - 1), (ssize_t)sizeof(resp) - 1);
	e = run_until(p, &r, 8091, KS_H_HEALTHY, 2000);
	assert_non_null(e);
	print_ev("http, slow handshake", e);
	assert_string_equal(e->reason, "first check passed: http status 200");
	ks_prober_free(p);
	close(a);
	close(filler);
	close(lfd);
}

/*
 * A check that completes inside connect() (local pod) with an interval under
 * the start-batching window: still one check per interval, not back to back.
 */
static void test_short_interval(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct ks_prober_stats st;

	(void)state;
	t = mk("127.0.0.1", l_port[L_TCP], KS_PROBE_TCP, 100, 1000, 2, 2);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	run_for(p, 1000);
	ks_prober_get_stats(p, &st);
	printf("  100 ms interval, 1 s: %" PRIu64 " checks\n", st.checks);
	/* First at once, second within 100 ms, then every 90-100 ms. */
	assert_in_range(st.checks, 10, 13);
	ks_prober_free(p);
}

/* HTTPS against openssl s_server with a self-signed certificate. */
static void test_https(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	const struct ev *e;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		t[i] = mk("127.0.0.1", (uint16_t)(1 + i), KS_PROBE_HTTPS, 200, 2000, 2, 2);
		t[i].spec.port = PORT_TLS;
	}
	ks_codes_parse("204", &t[1].spec.match, NULL, 0);	/* s_server says 200 */
	t[2].spec.tls_verify = true;
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	e = run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	print_ev("https self-signed", e);
	assert_non_null(strstr(e->reason, "http status 200"));
	e = run_until(p, &r, 2, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("https statusMatch 204", e);
	assert_non_null(strstr(e->reason, "http status 200"));
	e = run_until(p, &r, 3, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("https tls_verify on", e);
	assert_non_null(strstr(e->reason, "certificate"));

	/* Server down: unhealthy after 2; back: healthy after 2. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	kill_child(&env.tls);
	e = run_until(p, &r, 1, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("https server down", e);
	assert_int_equal(start_tls_server(), 0);
	e = run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	print_ev("https server back", e);
	assert_non_null(strstr(e->reason, "2 consecutive passes: http status 200"));
	ks_prober_free(p);
}

/*
 * HTTPS with HTTP/2 negotiated by ALPN (h2,http/1.1 offered) against
 * nghttpd, a real HTTP/2 server: 200 for a file in its docroot, 404 for a
 * missing one.
 *
 * Proof that h2 was spoken: nghttpd with TLS accepts only connections whose
 * ALPN selected h2 ("Client did not advertise HTTP/2 protocol" and it closes
 * the connection right after the handshake, before any HTTP/1.1 response).
 * So the same check with http2=false (ALPN offers only http/1.1) must fail
 * with a transport error, never with an http status; the h2 check passing
 * against the same port can only have been HTTP/2.
 */
static void test_https_h2(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	struct ks_prober_stats st;
	const struct ev *e;
	uint64_t f0, p0, down;
	int i, n;

	(void)state;
	if (start_h2_server()) {
		kill_child(&env.h2);
		fail_msg("nghttpd did not start on 127.0.0.1:%d (apt-get install nghttp2-server, "
			 "see scripts/deps.sh)", PORT_H2TLS);
	}
	for (i = 0; i < 3; i++) {
		t[i] = mk("127.0.0.1", (uint16_t)(1 + i), KS_PROBE_HTTPS, 200, 2000, 2, 3);
		t[i].spec.port = PORT_H2TLS;
		t[i].spec.http2 = true;
	}
	strcpy(t[1].spec.path, "/missing");
	t[2].spec.http2 = false;	/* control: HTTP/1.1 over TLS */
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.p = p;
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	e = run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	print_ev("h2 over tls /health", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_string_equal(e->reason, "first check passed: http status 200");
	/* Nothing else passes: this was the very first check of /health. */
	assert_int_equal(e->passes, 1);
	e = run_until(p, &r, 2, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("h2 over tls /missing", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_string_equal(e->reason, "3 consecutive failures, last: http status 404");
	e = run_until(p, &r, 3, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("http/1.1 vs h2-only nghttpd", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: "));
	assert_null(strstr(e->reason, "http status"));
	/* One change per target so far: /health never failed (no flapping back). */
	run_for(p, 300);
	for (i = 0, n = 0; i < r.n; i++)
		n += r.ev[i].port == 1;
	assert_int_equal(n, 1);
	assert_int_equal(r.n, 3);

	/* Server down: unhealthy after exactly 3 failed checks; back: healthy after exactly 2. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	ks_prober_get_stats(p, &st);
	f0 = st.failures;
	kill_child(&env.h2);
	e = run_until(p, &r, 1, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	print_ev("h2 server down", e);
	assert_int_equal(e->old, KS_H_HEALTHY);
	down = e->failures - f0;
	assert_int_equal(down, 3);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: "));
	assert_null(strstr(e->reason, "http status"));
	p0 = e->passes;
	assert_int_equal(start_h2_server(), 0);
	e = run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	print_ev("h2 server back", e);
	assert_int_equal(e->old, KS_H_UNHEALTHY);
	assert_int_equal(e->passes - p0, 2);
	assert_string_equal(e->reason, "2 consecutive passes: http status 200");
	printf("  checks while down/back: failures=%llu passes=%llu\n",
	       (unsigned long long)down, (unsigned long long)(e->passes - p0));
	assert_int_equal(r.n, 5);

	/* HTTP/2 over TLS keeps its connection: 5 more checks, no new client socket closed. */
	ks_prober_get_stats(p, &st);
	p0 = st.passes;
	i = kt_count_tcp(false, PORT_H2TLS, 0x06);
	run_for(p, 1000);
	ks_prober_get_stats(p, &st);
	printf("  h2 reuse: passes=%llu client TIME_WAIT +%d established=%d\n",
	       (unsigned long long)(st.passes - p0), kt_count_tcp(false, PORT_H2TLS, 0x06) - i,
	       kt_count_tcp(false, PORT_H2TLS, 0x01));
	assert_true(st.passes - p0 >= 4);
	assert_int_equal(kt_count_tcp(false, PORT_H2TLS, 0x06) - i, 0);
	assert_int_equal(kt_count_tcp(false, PORT_H2TLS, 0x01), 1);
	ks_prober_free(p);
	kill_child(&env.h2);
}

/* TCP connect checks: open port healthy after one check, closed port unhealthy after u. */
static void test_tcp(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[2];
	const struct ev *e;
	long acc0 = env.sh->accepted[L_TCP];

	(void)state;
	t[0] = mk("127.0.0.1", l_port[L_TCP], KS_PROBE_TCP, 150, 500, 2, 2);
	t[1] = mk("127.0.0.1", PORT_CLOSED, KS_PROBE_TCP, 150, 500, 2, 4);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	e = run_until(p, &r, t[0].port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	print_ev("tcp open", e);
	e = run_until(p, &r, t[1].port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	print_ev("tcp closed", e);
	assert_non_null(strstr(e->reason, "4 consecutive failures, last: connect: Connection refused"));
	assert_true(env.sh->accepted[L_TCP] - acc0 >= 1);
	ks_prober_free(p);
}

/* IPv6: URL and Host header carry the address in brackets. */
static void test_http_ipv6(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t = mk("::1", l_port[L_HTTP6], KS_PROBE_HTTP, 500, 1000, 2, 2);
	const struct ev *e;

	(void)state;
	if (wait_port(AF_INET6, "::1", l_port[L_HTTP6])) {
		print_message("no IPv6 on lo in this netns; skipped\n");
		skip();
	}
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = run_until(p, &r, t.port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	print_ev("ipv6", e);
	assert_string_equal(env.sh->host[L_HTTP6], "[::1]:8085");
	ks_prober_free(p);
}

/* set_targets keeps state of unchanged targets, checks new ones at once, cancels removed ones. */
static void test_target_updates(void **state)
{
	struct rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	struct ks_prober_stats st;
	enum ks_hstate hs;
	const struct ev *e;
	long served0;

	(void)state;
	set_status(L_HTTP, 200);
	t[0] = mk("127.0.0.1", l_port[L_HTTP], KS_PROBE_HTTP, 10000, 1000, 2, 2);
	t[1] = mk("127.0.0.1", l_port[L_HANG], KS_PROBE_HTTP, 10000, 5000, 2, 2);
	t[2] = mk("127.0.0.1", l_port[L_TCP], KS_PROBE_TCP, 10000, 1000, 2, 2);
	assert_int_equal(ks_prober_new(&p, on_change, &r), 0);
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	assert_non_null(run_until(p, &r, t[0].port, KS_H_HEALTHY, 3000));
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.in_flight, 1);	/* the hang check */
	served0 = env.sh->served[L_HTTP];
	/* Same t[0], hang target dropped mid-check, TCP target new. */
	t[1] = t[2];
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.targets, 2);
	assert_int_equal(ks_prober_state(p, &t[0].addr, t[0].port, &hs), 0);
	assert_int_equal(hs, KS_H_HEALTHY);
	assert_int_equal(ks_prober_state(p, &t[1].addr, t[1].port, &hs), 0);
	assert_int_equal(hs, KS_H_UNKNOWN);
	e = run_until(p, &r, t[1].port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	print_ev("added later, checked at once", e);
	assert_true(e->at_ms < 10000);
	/* The unchanged target was not re-checked (its interval is 10 s). */
	assert_int_equal(env.sh->served[L_HTTP], served0);
	assert_int_equal(r.n, 2);
	ks_prober_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_thresholds),
		cmocka_unit_test(test_redirect_not_followed),
		cmocka_unit_test(test_timeout_is_failure),
		cmocka_unit_test(test_h2c),
		cmocka_unit_test(test_http_keepalive),
		cmocka_unit_test(test_https),
		cmocka_unit_test(test_https_keepalive),
		cmocka_unit_test(test_https_h2),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_async_connect),
		cmocka_unit_test(test_short_interval),
		cmocka_unit_test(test_http_ipv6),
		cmocka_unit_test(test_target_updates),
	};

	if (geteuid()) {
		printf("test_prober: needs root (network namespace); skipped\n");
		return 0;
	}
	ks_log_set_level(getenv("KS_DEBUG") ? KS_LOG_DEBUG : KS_LOG_INFO);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
