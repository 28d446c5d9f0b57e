// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks_server: a tiny, fast TCP/UDP "pod" for ksplit tests, benchmarks and the
 * demo. Every reply names the pod (--id), so a client can count where the
 * datapath sent each connection.
 *
 * Protocol, per TCP connection (all requests are answered in order):
 *   "GET <path> HTTP/1.x" + headers + blank line
 *       -> HTTP/1.1 response whose body is "<id>\n". GET /health answers the
 *          health status (--health-status, or the integer in --health-file,
 *          re-read per request). HTTP/1.1 without "Connection: close", or
 *          HTTP/1.0 with "Connection: keep-alive", keeps the connection open.
 *   any other line "...\n"
 *       -> "<id>\n", then close. A line starting with '+' asks to keep the
 *          connection open (persistent line mode: answer every line until the
 *          client closes). A final line without '\n' before EOF is answered.
 * UDP (--udp): every datagram is answered with "<id>\n", sent from the
 * address the datagram was sent to (IP_PKTINFO), so wildcard binds work too.
 *
 * Single-threaded epoll loop; connections that already carry their request
 * when accepted are answered without ever entering the epoll set.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTEN	64
#define CONN_BUF	8192	/* longest request line / header block accepted */
#define BACKLOG		4096
#define MAX_EVENTS	256
#define UDP_BATCH	64	/* datagrams per wakeup, so TCP is not starved */

enum kind { K_TCP_LISTEN, K_UDP, K_CONN, K_SIGNAL };

struct item {
	enum kind kind;
	int fd;
};

struct conn {
	struct item it;
	bool in_epoll;
	bool want_out;		/* EPOLLOUT armed: reply did not fit the socket */
	bool close_after;	/* close once out[] is flushed */
	size_t len;		/* bytes in buf */
	size_t outlen, outoff;
	char *out;
	size_t outcap;
	char buf[CONN_BUF];
};

static struct {
	const char *id;
	int health_status;
	const char *health_file;
	const char *pidfile;
	int ready_fd;
	bool udp;
	bool freebind;
	int epfd;
	/* Pre-rendered replies: the common case is a memcpy. */
	char *line_reply;
	size_t line_reply_len;
	char *http_close;
	size_t http_close_len;
	char *http_keep;
	size_t http_keep_len;
} g = { .health_status = 200, .ready_fd = -1, .epfd = -1 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: ks_server --listen ADDR:PORT [--listen ...] --id STRING [options]\n"
"\n"
"  --listen ADDR:PORT   address to serve (repeatable): 10.0.0.1:8080,\n"
"                       [fd00::1]:8080, 0.0.0.0:8080, [::]:8080 (v6-only)\n"
"  --id STRING          reply body, names the pod (e.g. \"v1 checkout-v1-a\")\n"
"  --udp                also serve UDP on the same addresses\n"
"  --health-status CODE status for GET /health (default 200)\n"
"  --health-file PATH   GET /health answers the integer in PATH, re-read per\n"
"                       request; missing/unparsable file -> 503\n"
"  --pidfile PATH       write the pid there (removed on exit)\n"
"  --ready-fd N         write \"ready\\n\" to fd N once listening, then close it\n"
"                       (default: print \"ready\" on stdout)\n"
"  --freebind           bind even if the address is not (yet) configured\n"
"                       (IPv6 addresses under DAD are 'tentative')\n"
"  -h, --help           this text\n"
"\n"
"Protocol: \"GET ...\" -> HTTP/1.1 reply with body \"<id>\\n\" (keep-alive per\n"
"HTTP rules); any other line -> \"<id>\\n\" then close, unless the line starts\n"
"with '+' (persistent: every line is answered until the client closes).\n"
"UDP: each datagram -> \"<id>\\n\" from the address it was sent to.\n"
"SIGTERM/SIGINT: close everything and exit 0.\n");
}

static void die(const char *what)
{
	fprintf(stderr, "ks_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* "[v6]:port", "v4:port", "*:port" or ":port" (IPv4 any). */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	const char *p, *port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		p = strchr(s, ']');
		if (!p || p[1] != ':' || (size_t)(p - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, p - s - 1);
		host[p - s - 1] = '\0';
		port = p + 2;
	} else {
		p = strrchr(s, ':');
		if (!p || (size_t)(p - s) >= sizeof(host))
			return -1;
		memcpy(host, s, p - s);
		host[p - s] = '\0';
		port = p + 1;
		if (!host[0] || !strcmp(host, "*"))
			strcpy(host, "0.0.0.0");
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 1 || pn > 65535)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(pn);
		*sl = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons(pn);
		*sl = sizeof(*a4);
	}
	return 0;
}

static void ep_add(struct item *it, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = it };

	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, it->fd, &ev))
		die("epoll_ctl(ADD)");
}

static int open_socket(const char *spec, int type)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	if (parse_addr(spec, &ss, &sl)) {
		fprintf(stderr, "ks_server: bad --listen '%s' (want ADDR:PORT or [V6]:PORT)\n", spec);
		exit(2);
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6) {
		/* Keep [::] from also claiming IPv4, so both can be listed. */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (type == SOCK_DGRAM)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		if (g.freebind)
			setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	} else {
		if (type == SOCK_DGRAM)
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		if (g.freebind)
			setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl)) {
		fprintf(stderr, "ks_server: bind %s (%s): %s\n", spec,
			type == SOCK_DGRAM ? "udp" : "tcp", strerror(errno));
		exit(1);
	}
	if (type == SOCK_STREAM && listen(fd, BACKLOG))
		die("listen");
	return fd;
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Status";
	}
}

static char *render_http(int code, bool keep, size_t *lenp)
{
	/* 1xx/204/304 must not carry a body (RFC 9110). */
	bool body = code >= 200 && code != 204 && code != 304;
	char *s;
	int n = asprintf(&s, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s%s",
			 code, reason(code), body ? strlen(g.id) + 1 : 0,
			 keep ? "keep-alive" : "close", body ? g.id : "", body ? "\n" : "");
	if (n < 0)
		die("asprintf");
	*lenp = n;
	return s;
}

static int health_code(void)
{
	char buf[32];
	ssize_t n;
	int fd, code;

	if (!g.health_file)
		return g.health_status;
	/* Re-read each time so a test can flip health by rewriting the file. */
	fd = open(g.health_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 503;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 503;
	buf[n] = '\0';
	code = atoi(buf);
	return (code >= 100 && code <= 999) ? code : 503;
}

static void out_append(struct conn *c, const char *p, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 512;
		while (cap < c->outlen + n)
			cap *= 2;
		c->out = realloc(c->out, cap);
		if (!c->out)
			die("realloc");
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* Case-insensitive search for a header token inside [p, end). */
static const char *find_ci(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; p + n <= end; p++)
		if (!strncasecmp(p, needle, n))
			return p;
	return NULL;
}

/* Decide HTTP persistence from the version and the Connection header. */
static bool http_keepalive(const char *req, const char *line_end, const char *hdr_end)
{
	bool v11 = find_ci(req, line_end, "HTTP/1.1") != NULL;
	const char *h = find_ci(line_end, hdr_end, "\nConnection:");

	if (h) {
		const char *eol = memchr(h + 1, '\n', hdr_end - h - 1);
		if (!eol)
			eol = hdr_end;
		if (find_ci(h, eol, "close"))
			return false;
		if (find_ci(h, eol, "keep-alive"))
			return true;
	}
	return v11;
}

/*
 * Answer every complete request in c->buf. Returns false if the request is
 * malformed/too long (caller closes).
 */
static bool process(struct conn *c, bool eof)
{
	size_t off = 0;

	while (off < c->len && !c->close_after) {
		char *p = c->buf + off;
		size_t avail = c->len - off;
		char *nl = memchr(p, '\n', avail);

		if (avail >= 4 && !memcmp(p, "GET ", 4)) {
			char *hend;
			size_t hlen;

			if (!nl)
				break;
			/* Header block ends with an empty line (CRLF or bare LF). */
			hend = memmem(p, avail, "\r\n\r\n", 4);
			hlen = hend ? (size_t)(hend - p) + 4 : 0;
			if (!hend) {
				hend = memmem(p, avail, "\n\n", 2);
				hlen = hend ? (size_t)(hend - p) + 2 : 0;
			}
			if (!hend)
				break;
			bool keep = http_keepalive(p, nl, p + hlen);
			bool health = avail >= 12 && !memcmp(p + 4, "/health", 7) &&
				      (p[11] == ' ' || p[11] == '?');
			if (health) {
				size_t n;
				char *r = render_http(health_code(), keep, &n);
				out_append(c, r, n);
				free(r);
			} else if (keep) {
				out_append(c, g.http_keep, g.http_keep_len);
			} else {
				out_append(c, g.http_close, g.http_close_len);
			}
			c->close_after = !keep;
			off += hlen;
			continue;
		}
		if (!nl) {
			/* A last line without '\n' is still a request. */
			if (!eof)
				break;
			nl = p + avail - 1;
		}
		out_append(c, g.line_reply, g.line_reply_len);
		c->close_after = p[0] != '+';
		off = nl - c->buf + 1;
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	return !(c->len == sizeof(c->buf) && !c->close_after);
}

static void conn_close(struct conn *c)
{
	close(c->it.fd);	/* also drops it from the epoll set */
	free(c->out);
	free(c);
}

/* Flush c->out; returns false when the connection is finished. */
static bool flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->it.fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out) {
					struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
								  .data.ptr = c };
					if (!c->in_epoll) {
						ep_add(&c->it, ev.events);
						c->in_epoll = true;
					} else {
						epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->it.fd, &ev);
					}
					c->want_out = true;
				}
				return true;
			}
			return false;
		}
		c->outoff += n;
	}
	c->outoff = c->outlen = 0;
	if (c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->it.fd, &ev);
		c->want_out = false;
	}
	return !c->close_after;
}

/* Read what is there, answer it. Returns false when c was closed. */
static bool conn_io(struct conn *c)
{
	bool eof = false;

	for (;;) {
		if (c->close_after)
			break;	/* already answered the last request; ignore the rest */
		ssize_t n = recv(c->it.fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n > 0) {
			c->len += n;
			/* false: buffer full without a complete request */
			if (!process(c, false))
				goto drop;
			continue;
		}
		if (n == 0) {
			eof = true;
			if (c->len)
				process(c, true);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		goto drop;
	}
	if (c->outlen && !flush(c) && !c->want_out)
		goto drop;
	if (c->want_out)
		return true;	/* rest of the reply goes out on EPOLLOUT */
	if (eof || c->close_after)
		goto drop;
	if (!c->in_epoll) {
		ep_add(&c->it, EPOLLIN);
		c->in_epoll = true;
	}
	return true;
drop:
	conn_close(c);
	return false;
}

static void on_accept(struct item *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				fprintf(stderr, "ks_server: accept: %s\n", strerror(errno));
			return;		/* EAGAIN: backlog drained */
		}
		struct conn *c = malloc(sizeof(*c));
		if (!c)
			die("malloc");
		c->it.kind = K_CONN;
		c->it.fd = fd;
		c->in_epoll = c->want_out = c->close_after = false;
		c->len = c->outlen = c->outoff = c->outcap = 0;
		c->out = NULL;
		/*
		 * The client usually sent its line right after connect(), so try
		 * to answer now and skip the epoll_ctl round trip.
		 */
		conn_io(c);
	}
}

static void on_udp(struct item *u)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		char buf[2048];
		union {
			char v4[CMSG_SPACE(sizeof(struct in_pktinfo))];
			char v6[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		} cbuf;
		struct sockaddr_storage peer;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = {
			.msg_name = &peer, .msg_namelen = sizeof(peer),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = &cbuf, .msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(u->fd, &mh, 0);
		if (n < 0)
			return;

		/* Reply from the address the datagram was sent to. */
		union {
			char v4[CMSG_SPACE(sizeof(struct in_pktinfo))];
			char v6[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		} obuf;
		struct iovec oiov = { g.line_reply, g.line_reply_len };
		struct msghdr om = {
			.msg_name = &peer, .msg_namelen = mh.msg_namelen,
			.msg_iov = &oiov, .msg_iovlen = 1,
		};
		memset(&obuf, 0, sizeof(obuf));
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				om.msg_control = &obuf;
				om.msg_controllen = CMSG_SPACE(sizeof(pi));
				struct cmsghdr *oc = CMSG_FIRSTHDR(&om);
				oc->cmsg_level = IPPROTO_IP;
				oc->cmsg_type = IP_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(pi));
				pi.ipi_spec_dst = pi.ipi_addr;
				pi.ipi_ifindex = 0;
				memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
			} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				om.msg_control = &obuf;
				om.msg_controllen = CMSG_SPACE(sizeof(pi));
				struct cmsghdr *oc = CMSG_FIRSTHDR(&om);
				oc->cmsg_level = IPPROTO_IPV6;
				oc->cmsg_type = IPV6_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(pi));
				/* keep ifindex: needed for link-local sources */
				memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
			}
		}
		sendmsg(u->fd, &om, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "id", required_argument, NULL, 'i' },
		{ "udp", no_argument, NULL, 'u' },
		{ "health-status", required_argument, NULL, 's' },
		{ "health-file", required_argument, NULL, 'f' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "freebind", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *listen_spec[MAX_LISTEN];
	int nlisten = 0, opt;
	char *end;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (nlisten == MAX_LISTEN) {
				fprintf(stderr, "ks_server: at most %d --listen\n", MAX_LISTEN);
				return 2;
			}
			listen_spec[nlisten++] = optarg;
			break;
		case 'i': g.id = optarg; break;
		case 'u': g.udp = true; break;
		case 's':
			g.health_status = strtol(optarg, &end, 10);
			if (*end || g.health_status < 100 || g.health_status > 999) {
				fprintf(stderr, "ks_server: --health-status wants 100..999\n");
				return 2;
			}
			break;
		case 'f': g.health_file = optarg; break;
		case 'p': g.pidfile = optarg; break;
		case 'r':
			g.ready_fd = strtol(optarg, &end, 10);
			if (*end || g.ready_fd < 0) {
				fprintf(stderr, "ks_server: --ready-fd wants a file descriptor\n");
				return 2;
			}
			break;
		case 'F': g.freebind = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !nlisten || !g.id) {
		if (optind < argc)
			fprintf(stderr, "ks_server: unexpected argument '%s'\n", argv[optind]);
		else
			fprintf(stderr, "ks_server: --listen and --id are required\n");
		usage(stderr);
		return 2;
	}
	if (strchr(g.id, '\n')) {
		fprintf(stderr, "ks_server: --id must be one line\n");
		return 2;
	}

	if (asprintf(&g.line_reply, "%s\n", g.id) < 0)
		die("asprintf");
	g.line_reply_len = strlen(g.line_reply);
	g.http_close = render_http(200, false, &g.http_close_len);
	g.http_keep = render_http(200, true, &g.http_keep_len);

	/* Signals arrive as epoll events: no async-signal-safety puzzles. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0)
		die("epoll_create1");
	struct item sig = { K_SIGNAL, signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC) };
	if (sig.fd < 0)
		die("signalfd");
	ep_add(&sig, EPOLLIN);

	struct item items[2 * MAX_LISTEN];
	int nitems = 0;
	for (int i = 0; i < nlisten; i++) {
		items[nitems] = (struct item){ K_TCP_LISTEN, open_socket(listen_spec[i], SOCK_STREAM) };
		ep_add(&items[nitems], EPOLLIN);
		nitems++;
		if (g.udp) {
			items[nitems] = (struct item){ K_UDP, open_socket(listen_spec[i], SOCK_DGRAM) };
			ep_add(&items[nitems], EPOLLIN);
			nitems++;
		}
	}

	if (g.pidfile) {
		FILE *f = fopen(g.pidfile, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
			fprintf(stderr, "ks_server: pidfile %s: %s\n", g.pidfile, strerror(errno));
			return 1;
		}
	}
	if (g.ready_fd >= 0) {
		if (write(g.ready_fd, "ready\n", 6) != 6) {
			fprintf(stderr, "ks_server: --ready-fd %d: %s\n", g.ready_fd, strerror(errno));
			return 1;
		}
		close(g.ready_fd);
	} else {
		printf("ready\n");
		fflush(stdout);
	}

	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(g.epfd, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct item *it = evs[i].data.ptr;

			switch (it->kind) {
			case K_TCP_LISTEN:
				on_accept(it);
				break;
			case K_UDP:
				on_udp(it);
				break;
			case K_CONN: {
				struct conn *c = (struct conn *)it;
				if (c->want_out && (evs[i].events & EPOLLOUT)) {
					if (!flush(c) && !c->want_out) {
						conn_close(c);
						break;
					}
					if (c->want_out)
						break;
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_io(c);
				break;
			}
			case K_SIGNAL:
				goto out;
			}
		}
	}
out:
	/* Open connections are simply closed by exit(). */
	for (int i = 0; i < nitems; i++)
		close(items[i].fd);
	if (g.pidfile)
		unlink(g.pidfile);
	return 0;
}
