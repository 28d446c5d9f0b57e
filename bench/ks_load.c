// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks_load: load generator and test client for ksplit.
 *
 * Runs COUNT operations against one target and reports where they landed:
 * the pod id in each reply (ks_server answers with its --id), the peer
 * address the socket saw, the source of UDP replies, errno names of failures
 * and exact latency percentiles (every sample is kept and sorted).
 *
 * One operation:
 *   TCP              socket, connect, send request, read reply until EOF, close
 *   TCP --persistent send request, read one reply, on a connection per worker
 *   UDP              socket, sendto (or connect+send), recvfrom, close
 *   UDP --persistent the same on one socket per worker
 * Latency of a TCP/UDP op spans socket() to close(); in persistent mode it
 * spans send to reply (connection setup is not part of any op).
 *
 * Blocking sockets, one thread per --concurrency slot: with concurrency 1
 * this is the shortest syscall path and measures the datapath, not an event
 * loop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX	65536
#define MAX_KEYS	1024	/* distinct keys per table; the rest go to "(other)" */
#define MAX_CONC	4096

/* --- small string -> count table (few distinct keys, linear search) --- */

struct counter {
	char *key;
	uint64_t n;
};

struct ctab {
	struct counter *v;
	size_t n, cap;
};

static void oom(void)
{
	fprintf(stderr, "ks_load: out of memory\n");
	exit(1);
}

static void ctab_add(struct ctab *t, const char *key, uint64_t n)
{
	for (size_t i = 0; i < t->n; i++) {
		if (!strcmp(t->v[i].key, key)) {
			t->v[i].n += n;
			return;
		}
	}
	if (t->n >= MAX_KEYS && strcmp(key, "(other)")) {
		ctab_add(t, "(other)", n);
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		if (!t->v)
			oom();
	}
	t->v[t->n].key = strdup(key);
	if (!t->v[t->n].key)
		oom();
	t->v[t->n++].n = n;
}

static void ctab_merge(struct ctab *dst, const struct ctab *src)
{
	for (size_t i = 0; i < src->n; i++)
		ctab_add(dst, src->v[i].key, src->v[i].n);
}

static void ctab_free(struct ctab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int counter_cmp(const void *a, const void *b)
{
	return strcmp(((const struct counter *)a)->key, ((const struct counter *)b)->key);
}

static void ctab_sort(struct ctab *t)
{
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), counter_cmp);
}

/* --- options and shared state --- */

static struct {
	const char *target_spec;
	struct sockaddr_storage target;
	socklen_t target_len;
	uint64_t count;
	bool udp, udp_connected, persistent, http, json;
	int linger0;		/* -1: default (on for non-persistent TCP) */
	int cpu;
	int concurrency;
	int timeout_ms;
	const char *req;
	size_t req_len;
} o = { .linger0 = -1, .cpu = -1, .concurrency = 1, .timeout_ms = 2000 };

static atomic_uint_fast64_t next_op;
static atomic_uint_fast64_t nlat;
static uint64_t *lat;		/* latencies of successful ops, ns */

struct worker {
	pthread_t th;
	uint64_t ok;
	struct ctab ids, errors, peers, udp_from;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: ks_load --target ADDR:PORT -n COUNT [options]\n"
"\n"
"  --target ADDR:PORT  10.100.50.10:80 or [fd00::10]:80\n"
"  -n, --count COUNT   number of operations\n"
"  --http              send \"GET / HTTP/1.0\" (HTTP/1.1 keep-alive with\n"
"                      --persistent); the id is the reply body; non-200 replies\n"
"                      count as errors \"HTTP_<code>\"\n"
"  --udp               UDP: unconnected socket, sendto + recvfrom per op; the\n"
"                      reply source is reported as udp_reply_from\n"
"  --udp-connected     UDP with connect() (implies --udp)\n"
"  --persistent        reuse one connection/socket per worker; TCP line mode\n"
"                      sends \"+x\\n\" (ks_server keeps '+' lines open)\n"
"  --linger0           SO_LINGER {1,0}: close with RST, no TIME_WAIT.\n"
"                      DEFAULT ON for non-persistent TCP (so connect loops do\n"
"                      not exhaust ephemeral ports); --no-linger0 turns it off\n"
"  --no-linger0        plain close() (FIN, TIME_WAIT on the client)\n"
"  --cpu N             pin all workers to CPU N\n"
"  --concurrency C     parallel workers (threads), default 1\n"
"  --timeout-ms T      per connect/send/recv timeout, default 2000, 0 = none\n"
"  --json              print one JSON object instead of the text summary:\n"
"                      {ops, ok, errors{ENAME:n}, ids{id:n}, peers{addr:n},\n"
"                       udp_reply_from{addr:n}, lat_ns{p50,p90,p99,p999,max,...},\n"
"                       elapsed_s, rate}\n"
"  -h, --help          this text\n"
"\n"
"Latency percentiles are exact, over successful ops. Errors are counted by\n"
"errno name (ECONNREFUSED, ETIMEDOUT, ...) or EMPTY_REPLY / BAD_REPLY /\n"
"HTTP_<code>. Exit status: 0 when the run completed (even with errors),\n"
"2 on usage errors, 1 on setup failures.\n");
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	const char *p, *port;
	bool v6 = s[0] == '[';

	memset(ss, 0, sizeof(*ss));
	if (v6) {
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
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 1 || pn > 65535)
		return -1;
	if (v6) {
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

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", ss->ss_family);
	}
}

/* Errors are keyed by errno name so JSON consumers can match them. */
static void count_errno(struct worker *w, int err)
{
	char buf[32];
	const char *name;

	/* SO_SNDTIMEO/SO_RCVTIMEO expiry surfaces as EINPROGRESS/EAGAIN. */
	if (err == EAGAIN || err == EINPROGRESS)
		err = ETIMEDOUT;
	name = strerrorname_np(err);
	if (!name) {
		snprintf(buf, sizeof(buf), "E%d", err);
		name = buf;
	}
	ctab_add(&w->errors, name, 1);
}

static void count_peer(struct worker *w, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char buf[80];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return;
	fmt_addr(&ss, buf, sizeof(buf));
	ctab_add(&w->peers, buf, 1);
}

static int new_socket(int type)
{
	int fd = socket(o.target.ss_family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (type == SOCK_STREAM && o.linger0 > 0) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	if (o.timeout_ms > 0) {
		struct timeval tv = { o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

/* Copy the first line of [p, p+n) (without \r\n) into id. */
static void first_line(const char *p, size_t n, char *id, size_t idlen)
{
	size_t k = 0;

	while (k < n && p[k] != '\n' && k + 1 < idlen)
		k++;
	memcpy(id, p, k);
	if (k && id[k - 1] == '\r')
		k--;
	id[k] = '\0';
}

/*
 * Interpret a complete reply. Returns NULL and fills id on success, or the
 * error key.
 */
static const char *parse_reply(const char *buf, size_t n, char *id, size_t idlen)
{
	if (!n)
		return "EMPTY_REPLY";
	if (!o.http) {
		first_line(buf, n, id, idlen);
		return NULL;
	}
	const char *hend = memmem(buf, n, "\r\n\r\n", 4);
	int code;
	if (!hend || sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		return "BAD_REPLY";
	if (code != 200) {
		static __thread char key[24];
		snprintf(key, sizeof(key), "HTTP_%d", code);
		return key;
	}
	first_line(hend + 4, n - (hend + 4 - buf), id, idlen);
	return NULL;
}

static void record_ok(struct worker *w, const char *id, uint64_t t0)
{
	uint64_t dt = now_ns() - t0;

	lat[atomic_fetch_add(&nlat, 1)] = dt;
	w->ok++;
	ctab_add(&w->ids, id, 1);
}

/* One non-persistent TCP op: connect, request, read until EOF, close. */
static void tcp_once(struct worker *w, char *buf)
{
	uint64_t t0 = now_ns();
	size_t len = 0;
	char id[256];
	const char *bad;
	int fd = new_socket(SOCK_STREAM);

	if (fd < 0) {
		count_errno(w, errno);
		return;
	}
	if (connect(fd, (struct sockaddr *)&o.target, o.target_len))
		goto err;
	count_peer(w, fd);
	if (send_all(fd, o.req, o.req_len))
		goto err;
	for (;;) {
		ssize_t r = recv(fd, buf + len, REPLY_MAX - len, 0);
		if (r == 0 || (r > 0 && (len += r) == REPLY_MAX))
			break;
		if (r < 0 && errno != EINTR)
			goto err;
	}
	close(fd);
	bad = parse_reply(buf, len, id, sizeof(id));
	if (bad) {
		ctab_add(&w->errors, bad, 1);
		return;
	}
	record_ok(w, id, t0);
	return;
err:
	count_errno(w, errno);
	close(fd);
}

/*
 * Read exactly one reply on a persistent connection: a line, or an HTTP
 * header block plus Content-Length bytes. Returns its length, 0 on EOF,
 * -1 on error (errno set).
 */
static ssize_t read_one_reply(int fd, char *buf)
{
	size_t len = 0;

	for (;;) {
		if (len == REPLY_MAX) {
			errno = EMSGSIZE;
			return -1;
		}
		ssize_t r = recv(fd, buf + len, REPLY_MAX - len, 0);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		len += r;
		if (!o.http) {
			if (memchr(buf, '\n', len))
				return len;
			continue;
		}
		const char *hend = memmem(buf, len, "\r\n\r\n", 4);
		if (!hend)
			continue;
		size_t hlen = hend - buf + 4, clen = 0;
		for (const char *p = buf; p && p < hend; p = memchr(p, '\n', hend - p)) {
			if (*p == '\n')
				p++;
			if (!strncasecmp(p, "Content-Length:", 15)) {
				clen = strtoul(p + 15, NULL, 10);
				break;
			}
		}
		if (len >= hlen + clen)
			return len;
	}
}

static void tcp_persistent(struct worker *w, int *fdp, char *buf)
{
	char id[256];
	const char *bad;
	ssize_t n;

	if (*fdp < 0) {
		int fd = new_socket(SOCK_STREAM);
		if (fd < 0) {
			count_errno(w, errno);
			return;
		}
		if (connect(fd, (struct sockaddr *)&o.target, o.target_len)) {
			count_errno(w, errno);
			close(fd);
			return;
		}
		count_peer(w, fd);
		*fdp = fd;
	}
	uint64_t t0 = now_ns();
	if (send_all(*fdp, o.req, o.req_len) || (n = read_one_reply(*fdp, buf)) < 0) {
		count_errno(w, errno);
		goto drop;
	}
	if (n == 0) {
		ctab_add(&w->errors, "EOF", 1);	/* server closed between requests */
		goto drop;
	}
	bad = parse_reply(buf, n, id, sizeof(id));
	if (bad) {
		ctab_add(&w->errors, bad, 1);
		goto drop;
	}
	record_ok(w, id, t0);
	return;
drop:
	close(*fdp);
	*fdp = -1;
}

static void udp_op(struct worker *w, int *fdp, char *buf)
{
	uint64_t t0 = now_ns();
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char id[256], addr[80];
	int fd = *fdp;
	ssize_t n;

	if (fd < 0) {
		fd = new_socket(SOCK_DGRAM);
		if (fd < 0) {
			count_errno(w, errno);
			return;
		}
		if (o.udp_connected) {
			if (connect(fd, (struct sockaddr *)&o.target, o.target_len))
				goto err;
			count_peer(w, fd);
		}
	}
	if (o.udp_connected)
		n = send(fd, o.req, o.req_len, MSG_NOSIGNAL);
	else
		n = sendto(fd, o.req, o.req_len, MSG_NOSIGNAL,
			   (struct sockaddr *)&o.target, o.target_len);
	if (n < 0)
		goto err;
	do
		n = recvfrom(fd, buf, REPLY_MAX, 0, (struct sockaddr *)&from, &fl);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		goto err;
	fmt_addr(&from, addr, sizeof(addr));
	ctab_add(&w->udp_from, addr, 1);
	if (!o.persistent)
		close(fd);
	else
		*fdp = fd;
	if (!n) {
		ctab_add(&w->errors, "EMPTY_REPLY", 1);
		return;
	}
	first_line(buf, n, id, sizeof(id));
	record_ok(w, id, t0);
	return;
err:
	count_errno(w, errno);
	close(fd);
	*fdp = -1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char *buf = malloc(REPLY_MAX);
	int fd = -1;	/* persistent connection / socket */

	if (!buf)
		oom();
	while (atomic_fetch_add(&next_op, 1) < o.count) {
		if (o.udp)
			udp_op(w, &fd, buf);
		else if (o.persistent)
			tcp_persistent(w, &fd, buf);
		else
			tcp_once(w, buf);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples. */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)(p * n + 0.999999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static struct json_object *ctab_json(const struct ctab *t)
{
	struct json_object *o = json_object_new_object();

	for (size_t i = 0; i < t->n; i++)
		json_object_object_add(o, t->v[i].key, json_object_new_int64(t->v[i].n));
	return o;
}

static void ctab_text(const char *title, const struct ctab *t, uint64_t total)
{
	if (!t->n)
		return;
	printf("%s:\n", title);
	for (size_t i = 0; i < t->n; i++) {
		if (total)
			printf("  %10llu  %6.2f%%  %s\n", (unsigned long long)t->v[i].n,
			       100.0 * t->v[i].n / total, t->v[i].key);
		else
			printf("  %10llu  %s\n", (unsigned long long)t->v[i].n, t->v[i].key);
	}
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max) {
		fprintf(stderr, "ks_load: %s wants an integer in %ld..%ld, got '%s'\n",
			opt, min, max, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	enum { O_TARGET = 256, O_UDP, O_UDPC, O_PERS, O_L0, O_NOL0, O_CPU, O_CONC,
	       O_JSON, O_TMO, O_HTTP };
	static const struct option opts[] = {
		{ "target", required_argument, NULL, O_TARGET },
		{ "count", required_argument, NULL, 'n' },
		{ "udp", no_argument, NULL, O_UDP },
		{ "udp-connected", no_argument, NULL, O_UDPC },
		{ "persistent", no_argument, NULL, O_PERS },
		{ "linger0", no_argument, NULL, O_L0 },
		{ "no-linger0", no_argument, NULL, O_NOL0 },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "json", no_argument, NULL, O_JSON },
		{ "timeout-ms", required_argument, NULL, O_TMO },
		{ "http", no_argument, NULL, O_HTTP },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool have_n = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_TARGET: o.target_spec = optarg; break;
		case 'n':
			o.count = parse_long("-n", optarg, 1, 1000000000L);
			have_n = true;
			break;
		case O_UDP: o.udp = true; break;
		case O_UDPC: o.udp = o.udp_connected = true; break;
		case O_PERS: o.persistent = true; break;
		case O_L0: o.linger0 = 1; break;
		case O_NOL0: o.linger0 = 0; break;
		case O_CPU: o.cpu = parse_long("--cpu", optarg, 0, CPU_SETSIZE - 1); break;
		case O_CONC: o.concurrency = parse_long("--concurrency", optarg, 1, MAX_CONC); break;
		case O_JSON: o.json = true; break;
		case O_TMO: o.timeout_ms = parse_long("--timeout-ms", optarg, 0, 3600000); break;
		case O_HTTP: o.http = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ks_load: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.target_spec || !have_n) {
		fprintf(stderr, "ks_load: --target and -n are required (see --help)\n");
		return 2;
	}
	if (parse_addr(o.target_spec, &o.target, &o.target_len)) {
		fprintf(stderr, "ks_load: bad --target '%s' (want ADDR:PORT or [V6]:PORT)\n",
			o.target_spec);
		return 2;
	}
	if (o.udp && o.http) {
		fprintf(stderr, "ks_load: --http is TCP only\n");
		return 2;
	}
	if (o.linger0 < 0)
		o.linger0 = !o.persistent;
	if (o.http)
		o.req = o.persistent ? "GET / HTTP/1.1\r\nHost: ks\r\n\r\n" : "GET / HTTP/1.0\r\n\r\n";
	else
		o.req = (o.persistent && !o.udp) ? "+x\n" : "x\n";
	o.req_len = strlen(o.req);

	if (o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "ks_load: --cpu %d: %s\n", o.cpu, strerror(errno));
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	lat = malloc(o.count * sizeof(*lat));
	struct worker *ws = calloc(o.concurrency, sizeof(*ws));
	if (!lat || !ws)
		oom();

	uint64_t t0 = now_ns();
	/* Workers inherit the affinity and the cgroup of this thread. */
	for (int i = 0; i < o.concurrency; i++) {
		int err = pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
		if (err) {
			fprintf(stderr, "ks_load: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}
	struct worker tot = { 0 };
	for (int i = 0; i < o.concurrency; i++) {
		pthread_join(ws[i].th, NULL);
		tot.ok += ws[i].ok;
		ctab_merge(&tot.ids, &ws[i].ids);
		ctab_merge(&tot.errors, &ws[i].errors);
		ctab_merge(&tot.peers, &ws[i].peers);
		ctab_merge(&tot.udp_from, &ws[i].udp_from);
		ctab_free(&ws[i].ids);
		ctab_free(&ws[i].errors);
		ctab_free(&ws[i].peers);
		ctab_free(&ws[i].udp_from);
	}
	free(ws);
	double elapsed = (now_ns() - t0) / 1e9;

	size_t n = atomic_load(&nlat);
	qsort(lat, n, sizeof(*lat), u64_cmp);
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += lat[i];
	ctab_sort(&tot.ids);
	ctab_sort(&tot.errors);
	ctab_sort(&tot.peers);
	ctab_sort(&tot.udp_from);
	double rate = elapsed > 0 ? o.count / elapsed : 0;

	if (o.json) {
		/* Default %.17g prints 0.0028462219999999998; microseconds suffice. */
		json_c_set_serialization_double_format("%.6f", JSON_C_OPTION_THREAD);
		struct json_object *j = json_object_new_object(), *l = json_object_new_object();

		json_object_object_add(j, "target", json_object_new_string(o.target_spec));
		json_object_object_add(j, "proto", json_object_new_string(
			o.udp ? (o.udp_connected ? "udp-connected" : "udp") : o.http ? "http" : "tcp"));
		json_object_object_add(j, "persistent", json_object_new_boolean(o.persistent));
		json_object_object_add(j, "concurrency", json_object_new_int(o.concurrency));
		json_object_object_add(j, "ops", json_object_new_int64(o.count));
		json_object_object_add(j, "ok", json_object_new_int64(tot.ok));
		json_object_object_add(j, "errors", ctab_json(&tot.errors));
		json_object_object_add(j, "ids", ctab_json(&tot.ids));
		json_object_object_add(j, "peers", ctab_json(&tot.peers));
		json_object_object_add(j, "udp_reply_from", ctab_json(&tot.udp_from));
		json_object_object_add(l, "n", json_object_new_int64(n));
		json_object_object_add(l, "min", json_object_new_int64(n ? lat[0] : 0));
		json_object_object_add(l, "mean", json_object_new_int64(n ? sum / n : 0));
		json_object_object_add(l, "p50", json_object_new_int64(pct(lat, n, 0.50)));
		json_object_object_add(l, "p90", json_object_new_int64(pct(lat, n, 0.90)));
		json_object_object_add(l, "p99", json_object_new_int64(pct(lat, n, 0.99)));
		json_object_object_add(l, "p999", json_object_new_int64(pct(lat, n, 0.999)));
		json_object_object_add(l, "max", json_object_new_int64(n ? lat[n - 1] : 0));
		json_object_object_add(j, "lat_ns", l);
		json_object_object_add(j, "elapsed_s", json_object_new_double(elapsed));
		json_object_object_add(j, "rate", json_object_new_double(rate));
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	} else {
		printf("target %s %s%s, %llu ops, %llu ok, %llu errors, %.3f s, %.0f ops/s\n",
		       o.target_spec,
		       o.udp ? (o.udp_connected ? "udp-connected" : "udp") : o.http ? "http" : "tcp",
		       o.persistent ? " persistent" : "", (unsigned long long)o.count,
		       (unsigned long long)tot.ok, (unsigned long long)(o.count - tot.ok),
		       elapsed, rate);
		printf("latency us (%zu ok ops): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		       n, pct(lat, n, 0.50) / 1e3, pct(lat, n, 0.90) / 1e3,
		       pct(lat, n, 0.99) / 1e3, pct(lat, n, 0.999) / 1e3,
		       n ? lat[n - 1] / 1e3 : 0.0);
		ctab_text("ids (% of ok)", &tot.ids, tot.ok);
		ctab_text("errors (% of ops)", &tot.errors, o.count);
		ctab_text("peers", &tot.peers, 0);
		ctab_text("udp_reply_from", &tot.udp_from, 0);
	}
	/* Free everything so sanitizer builds report real leaks only. */
	ctab_free(&tot.ids);
	ctab_free(&tot.errors);
	ctab_free(&tot.peers);
	ctab_free(&tot.udp_from);
	free(lat);
	return fflush(stdout) ? 1 : 0;
}
