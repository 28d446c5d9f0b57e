// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE	/* strcasestr, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "prober_servers.h"
#include "env.h"

const int kp_port[L_NR] = { 8080, 8081, 8082, 8083, 8085, 8086 };

#define MAX_CONN 64

struct conn {
	int fd, l;
	size_t len;
	bool h2;		/* preface seen, settings sent */
	bool done;		/* HTTP/1.1 answered */
	int reqs;		/* requests seen on this connection */
	unsigned char buf[8192];
};

/* addr:port of family into *ss; the address length. */
static socklen_t sockaddr_of(int family, const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, addr, &in->sin_addr);
		return sizeof(*in);
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	inet_pton(AF_INET6, addr, &in6->sin6_addr);
	return sizeof(*in6);
}

int kp_listen_on(int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(family, addr, port, &ss);
	int fd, one = 1;

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

static void count_response(struct kp_shared *sh, int l, int status)
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
static bool serve_h1(struct kp_shared *sh, struct conn *c)
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
static bool serve_keep(struct kp_shared *sh, struct conn *c)
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
static bool serve_h2(struct kp_shared *sh, struct conn *c)
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

void kp_server_main(struct kp_shared *sh)
{
	struct pollfd pfd[L_NR + MAX_CONN];
	struct conn *conns = calloc(MAX_CONN, sizeof(*conns));
	int lfd[L_NR], i;

	alarm(300);
	for (i = 0; i < L_NR; i++)
		lfd[i] = i == L_HTTP6 ? kp_listen_on(AF_INET6, "::1", kp_port[i]) :
					kp_listen_on(AF_INET, "127.0.0.1", kp_port[i]);
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

int kp_wait_port(int family, const char *addr, int port)
{
	int64_t end = kt_now_ms() + 10000;

	while (kt_now_ms() < end) {
		struct sockaddr_storage ss;
		socklen_t len = sockaddr_of(family, addr, port, &ss);
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		ok = fd >= 0 && !connect(fd, (struct sockaddr *)&ss, len);
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

/* Fork and exec argv in dir (stdio on /dev/null); wait until 127.0.0.1:port accepts. */
static int start_exec(pid_t *pid, const char *dir, int port, char *const argv[])
{
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (!*pid) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (chdir(dir))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	return kp_wait_port(AF_INET, "127.0.0.1", port);
}

int kp_start_tls_server(pid_t *pid, const char *dir)
{
	char acc[32];
	char *const argv[] = { "openssl", "s_server", "-quiet", "-WWW", "-accept", acc,
			       "-cert", "cert.pem", "-key", "key.pem", NULL };

	snprintf(acc, sizeof(acc), "127.0.0.1:%d", PORT_TLS);
	return start_exec(pid, dir, PORT_TLS, argv);
}

/*
 * nghttpd serves the files under h2root (just `health`) over TLS with the
 * test certificate; without -v it prints nothing.
 */
int kp_start_h2_server(pid_t *pid, const char *dir)
{
	char port[16];
	char *const argv[] = { "nghttpd", "-a", "127.0.0.1", "-d", "h2root", port, "key.pem",
			       "cert.pem", NULL };

	snprintf(port, sizeof(port), "%d", PORT_H2TLS);
	return start_exec(pid, dir, PORT_H2TLS, argv);
}

/*
 * HTTPS with keep-alive, which neither s_server nor nghttpd offers: one
 * process per connection (blocking OpenSSL), answering every request head
 * with 200 on the same connection until the client closes. OpenSSL sends
 * TLS 1.3 session tickets after the handshake, so the client also meets
 * records that carry no response.
 */
static void tls_conn_main(SSL_CTX *ctx, int fd, struct kp_shared *sh)
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

			copy_header(buf, "\r\nHost:", sh->tls_host, sizeof(sh->tls_host));
			/* Counted first: the client may have the answer before write returns here. */
			__atomic_add_fetch(&sh->tls_served, 1, __ATOMIC_SEQ_CST);
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

static void tls_keep_main(const char *dir, struct kp_shared *sh)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int lfd = kp_listen_on(AF_INET, "127.0.0.1", PORT_TLSKEEP), fd;

	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	signal(SIGINT, SIG_DFL);	/* the parent's handlers would tear down its netns */
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!ctx || lfd < 0 || chdir(dir) ||
	    SSL_CTX_use_certificate_file(ctx, "cert.pem", SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, "key.pem", SSL_FILETYPE_PEM) != 1)
		_exit(2);
	fcntl(lfd, F_SETFL, 0);	/* blocking accept */
	for (;;) {
		pid_t c;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		__atomic_add_fetch(&sh->tls_accepted, 1, __ATOMIC_SEQ_CST);
		c = fork();
		if (!c) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(lfd);
			tls_conn_main(ctx, fd, sh);
		}
		close(fd);
	}
}

int kp_start_tls_keep_server(pid_t *pid, const char *dir, struct kp_shared *sh)
{
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (!*pid)
		tls_keep_main(dir, sh);
	return kp_wait_port(AF_INET, "127.0.0.1", PORT_TLSKEEP);
}
