// SPDX-License-Identifier: BSD-2-Clause
/*
 * Prober at scale: 5,000 endpoints (127.1.x.y:8080 inside a private network
 * namespace, where all of 127/8 is local) served by one wildcard listener in
 * a child process, checked every 5 s for KS_SCALE_SECONDS (default 20; the
 * bench script bench/prober_cpu.sh runs 60). Prints the prober's own CPU time
 * (getrusage and /proc/self/stat; the server is another process and is not
 * counted) and how evenly check starts spread over time.
 *
 * Asserts only functional results (every endpoint healthy, no failure, every
 * endpoint checked at least twice), never a time: CPU on a shared machine is
 * a measurement, not a pass/fail criterion.
 *
 * KS_SCALE_KIND=http (default) | tcp | h2c | https | https2 selects the
 * check; KS_SCALE_N the number of endpoints; KS_SCALE_INTERVAL_MS the interval.
 *
 * https (HTTP/1.1 over TLS) and https2 (h2 via ALPN) are served by haproxy
 * (scripts/deps.sh --bench) on 0.0.0.0:8443 in the same namespace, with a
 * throwaway self-signed certificate in a temporary directory (the prober does
 * not verify certificates by default). connections_accepted then comes from
 * haproxy's CumSslConns (stats socket), and established_at_end counts the
 * server side of ESTABLISHED connections on 8443: both near the number of
 * endpoints means the kept connections were reused between checks.
 * KS_HAPROXY=/path/to/haproxy picks another binary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "common/log.h"
#include "health/prober.h"

#define PORT 8080
#define TLS_PORT 8443
#define BUCKET_MS 100
#define MAX_BUCKETS 12000	/* 20 minutes */

struct shared {
	int64_t t0_ms;
	long accepted;
	long bucket[MAX_BUCKETS];	/* connections accepted per 100 ms */
};

static struct {
	struct kt_own_netns ns;
	pid_t srv;
	struct shared *sh;
	bool tls;		/* https/https2: haproxy serves TLS_PORT */
	char dir[64];		/* temporary dir: certificate, haproxy.cfg, stats socket */
} env;

static const char *const tmp_files[] = { "cert.pem", "key.pem", "server.pem", "haproxy.cfg",
					 "stats.sock" };

static const char *scale_kind(void)
{
	const char *k = getenv("KS_SCALE_KIND");

	return k && *k ? k : "http";
}

static bool kind_is_tls(const char *k)
{
	return !strcmp(k, "https") || !strcmp(k, "https2");
}

static void cleanup(void)
{
	char cmd[160];

	kt_kill_child(&env.srv);
	kt_netns_leave(&env.ns);
	if (env.dir[0]) {
		size_t i;

		for (i = 0; i < sizeof(tmp_files) / sizeof(tmp_files[0]); i++) {
			snprintf(cmd, sizeof(cmd), "%s/%s", env.dir, tmp_files[i]);
			unlink(cmd);
		}
		if (rmdir(env.dir))
			fprintf(stderr, "cleanup: rmdir %s: %s\n", env.dir, strerror(errno));
		env.dir[0] = 0;
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

#define MAX_FD 65536

struct cstate {
	unsigned char buf[2048];
	size_t len;
	bool responded;
};

/*
 * Minimal HTTP/2 (RFC 9113) server side: after the client preface send an
 * empty SETTINGS, ACK the client's SETTINGS, answer each HEADERS frame with
 * HEADERS(:status 200, END_STREAM). Consumes whole frames from c->buf.
 */
static int serve_h2(int fd, struct cstate *c)
{
	static const unsigned char settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	static const unsigned char ack[9] = { 0, 0, 0, 4, 1, 0, 0, 0, 0 };
	unsigned char out[512];
	size_t off = 0, o = 0;

	if (!c->responded) {
		if (c->len < 24)
			return 0;
		if (memcmp(c->buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24))
			return -1;
		c->responded = true;	/* here: preface seen */
		memcpy(out, settings, 9);
		o = 9;
		off = 24;
	}
	while (c->len - off >= 9) {
		unsigned char *f = c->buf + off;
		size_t flen = (size_t)f[0] << 16 | f[1] << 8 | f[2];

		if (c->len - off < 9 + flen)
			break;
		if (o + 10 > sizeof(out))
			break;
		if (f[3] == 4 && !(f[4] & 1)) {
			memcpy(out + o, ack, 9);
			o += 9;
		} else if (f[3] == 1) {
			unsigned char h[10] = { 0, 0, 1, 1, 5, f[5] & 0x7f, f[6], f[7], f[8], 0x88 };

			memcpy(out + o, h, 10);
			o += 10;
		}
		off += 9 + flen;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	if (o && write(fd, out, o) < 0)
		return -1;
	return 0;
}

/*
 * One epoll loop on 0.0.0.0:PORT. HTTP/1.1 gets a 200 on a kept connection; h2c gets
 * the preface-SETTINGS-HEADERS(:status 200) minimum; TCP checks just connect
 * (the first read returns 0 and the socket is closed).
 */
static void server_main(struct shared *sh, bool h2)
{
	/* Keep-alive, as most pod servers do. */
	static const char h1[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	struct epoll_event ev, evs[256];
	int lfd, ep, one = 1, i, n;
	static struct cstate *cs[MAX_FD];
	struct cstate *c;

	alarm(1500);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096))
		_exit(2);
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				int a;

				while ((a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					int64_t b = (kt_now_ms() - sh->t0_ms) / BUCKET_MS;

					if (a >= MAX_FD || !(cs[a] = calloc(1, sizeof(*cs[a])))) {
						close(a);
						continue;
					}
					__atomic_add_fetch(&sh->accepted, 1, __ATOMIC_RELAXED);
					if (sh->t0_ms && b >= 0 && b < MAX_BUCKETS)
						__atomic_add_fetch(&sh->bucket[b], 1, __ATOMIC_RELAXED);
					ev.events = EPOLLIN;
					ev.data.fd = a;
					epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
				}
				continue;
			}
			c = fd < MAX_FD ? cs[fd] : NULL;
			if (!c) {
				close(fd);
				continue;
			}
			r = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0) {
				char *e;

				c->len += r;
				if (h2) {
					if (!serve_h2(fd, c) && c->len < sizeof(c->buf))
						continue;
				} else {
					/* One response per request head; pipelining is not expected. */
					while ((e = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
						size_t used = (size_t)(e + 4 - (char *)c->buf);

						if (write(fd, h1, sizeof(h1) - 1) < 0)
							break;
						memmove(c->buf, c->buf + used, c->len - used);
						c->len -= used;
					}
					if (c->len < sizeof(c->buf))
						continue;
				}
			}
			free(c);
			cs[fd] = NULL;
			close(fd);
		}
	}
}

static long ticks_now(void)
{
	char buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	int i;

	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* fields after ")": 3 state ... 14 utime 15 stime */
	for (i = 3; i <= 14 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static double cpu_user_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * haproxy's "show info" over its stats socket: CumSslConns (TLS connections
 * accepted so far; CumConns would count the stats socket's own too), or -1.
 */
static long haproxy_cumconns(void)
{
	static const char key[] = "\nCumSslConns: ";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192], *p;
	size_t len = 0;
	ssize_t r;
	long v = -1;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stats.sock", env.dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, "show info\n", 10) != 10) {
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = 0;
	if ((p = strstr(buf, key)))
		v = strtol(p + sizeof(key) - 1, NULL, 10);
	return v;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static struct {
	long healthy, unhealthy;
} chg;

static void on_change(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
		      enum ks_hstate now, const char *reason)
{
	(void)ctx;
	(void)t;
	(void)old;
	(void)reason;
	if (now == KS_H_HEALTHY)
		chg.healthy++;
	else
		chg.unhealthy++;
}

static void run(struct ks_prober *p, int64_t until)
{
	while (kt_now_ms() < until) {
		struct pollfd pfd = { .fd = ks_prober_fd(p), .events = POLLIN };

		if (poll(&pfd, 1, (int)(until - kt_now_ms())) > 0)
			assert_int_equal(ks_prober_dispatch(p), 0);
	}
}

static void test_scale(void **state)
{
	long n = env_long("KS_SCALE_N", 5000), secs = env_long("KS_SCALE_SECONDS", 20);
	long iv = env_long("KS_SCALE_INTERVAL_MS", 5000);
	const char *kind = scale_kind();
	struct ks_probe_target *t;
	struct ks_prober *p;
	struct ks_prober_stats st;
	double c0, c1, c_warm, pct, steady_pct, u0, u1;
	long tk0, tk1, i, healthy = 0, b, nb, maxb = 0, minb = -1, sumb = 0;
	long cum0 = -1, cum1 = -1, estab = -1, accepted;
	int64_t t0, t_warm, t_end;
	long hz = sysconf(_SC_CLK_TCK);

	(void)state;
	assert_true(n > 0 && n <= 60000 && secs >= 2 && iv >= 100);
	t = calloc(n, sizeof(*t));
	assert_non_null(t);
	for (i = 0; i < n; i++) {
		t[i].addr.family = 4;
		t[i].addr.bytes[0] = 127;
		t[i].addr.bytes[1] = 1;
		t[i].addr.bytes[2] = (uint8_t)(i / 250);
		t[i].addr.bytes[3] = (uint8_t)(i % 250 + 1);
		t[i].port = env.tls ? TLS_PORT : PORT;
		t[i].spec.kind = !strcmp(kind, "tcp") ? KS_PROBE_TCP :
				 env.tls ? KS_PROBE_HTTPS : KS_PROBE_HTTP;
		t[i].spec.http2 = !strcmp(kind, "h2c") || !strcmp(kind, "https2");
		t[i].spec.interval_ms = (uint32_t)iv;
		t[i].spec.timeout_ms = 2000;
		t[i].spec.healthy_thr = 5;
		t[i].spec.unhealthy_thr = 2;
		strcpy(t[i].spec.path, "/health");
		ks_codes_parse("200", &t[i].spec.match, NULL, 0);
	}
	assert_int_equal(ks_prober_new(&p, on_change, NULL), 0);
	if (env.tls)
		cum0 = haproxy_cumconns();
	t0 = kt_now_ms();
	env.sh->t0_ms = t0;
	c0 = cpu_s();
	u0 = cpu_user_s();
	tk0 = ticks_now();
	assert_int_equal(ks_prober_set_targets(p, t, n), 0);
	/* Warm-up: the first round (everything at once) plus the spreading second check. */
	t_warm = t0 + 2 * iv;
	if (t_warm > t0 + secs * 1000)
		t_warm = t0 + secs * 1000;
	run(p, t_warm);
	c_warm = cpu_s();
	t_end = t0 + secs * 1000;
	run(p, t_end);
	c1 = cpu_s();
	u1 = cpu_user_s();
	tk1 = ticks_now();
	ks_prober_get_stats(p, &st);
	if (env.tls) {
		estab = kt_count_tcp(true, TLS_PORT, 1);
		cum1 = haproxy_cumconns();
	}
	accepted = !env.tls ? env.sh->accepted : cum0 >= 0 && cum1 >= 0 ? cum1 - cum0 : -1;
	for (i = 0; i < n; i++) {
		enum ks_hstate hs;

		assert_int_equal(ks_prober_state(p, &t[i].addr, t[i].port, &hs), 0);
		healthy += hs == KS_H_HEALTHY;
	}
	/* Spread of check starts after warm-up, per 100 ms bucket. */
	nb = 0;
	for (b = (t_warm - t0) / BUCKET_MS; b < (t_end - t0) / BUCKET_MS && b < MAX_BUCKETS; b++) {
		long v = env.sh->bucket[b];

		sumb += v;
		maxb = v > maxb ? v : maxb;
		minb = minb < 0 || v < minb ? v : minb;
		nb++;
	}
	pct = 100.0 * (c1 - c0) / (secs);
	steady_pct = t_end > t_warm ? 100.0 * (c1 - c_warm) / ((t_end - t_warm) / 1000.0) : 0;
	printf("prober scale: kind=%s targets=%ld interval_ms=%ld duration_s=%ld\n", kind, n, iv,
	       secs);
	printf("  checks=%llu passes=%llu failures=%llu timeouts=%llu max_in_flight=%u checks_per_s=%.0f\n",
	       (unsigned long long)st.checks, (unsigned long long)st.passes,
	       (unsigned long long)st.failures, (unsigned long long)st.timeouts, st.max_in_flight,
	       st.checks / (double)secs);
	printf("  healthy=%ld/%ld became_healthy=%ld became_unhealthy=%ld rss_kb=%ld connections_accepted=%ld",
	       healthy, n, chg.healthy, chg.unhealthy, rss_kb(), accepted);
	if (env.tls)
		printf(" (haproxy CumSslConns delta) established_at_end=%ld", estab);
	printf("\n");
	printf("  cpu_s(getrusage)=%.3f (user %.3f sys %.3f) cpu_s(/proc/self/stat)=%.2f over %ld s => %.2f%% of one core (%.3f%% per 1000 endpoints), %.1f us per check\n",
	       c1 - c0, u1 - u0, (c1 - c0) - (u1 - u0), (double)(tk1 - tk0) / hz, secs, pct,
	       pct * 1000.0 / n, st.checks ? 1e6 * (c1 - c0) / st.checks : 0.0);
	printf("  warm-up (first %.1f s, incl. everything-at-once round): cpu_s=%.3f; steady state: %.2f%% of one core (%.3f%% per 1000)\n",
	       (t_warm - t0) / 1000.0, c_warm - c0, steady_pct, steady_pct * 1000.0 / n);
	if (nb && sumb)
		printf("  spread after warm-up: connects per %d ms bucket mean=%.1f min=%ld max=%ld (max/mean %.2f)\n",
		       BUCKET_MS, (double)sumb / nb, minb, maxb, maxb * nb / (double)sumb);
	assert_int_equal(healthy, n);
	assert_int_equal(st.failures, 0);
	assert_true(st.checks >= (uint64_t)(2 * n) || secs * 1000 < 2 * iv);
	ks_prober_free(p);
	free(t);
}

/*
 * $KS_HAPROXY if set, else haproxy on PATH or in /usr/sbin (not on a plain
 * user's PATH): its path, or NULL.
 */
static const char *haproxy_path(void)
{
	static char buf[512];
	const char *path = getenv("PATH"), *force = getenv("KS_HAPROXY");
	char dirs[1024];
	char *d, *save = NULL;

	if (force && *force)
		return access(force, X_OK) ? NULL : force;
	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin", path ? path : "");
	for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/haproxy", d);
		if (*d && !access(buf, X_OK))
			return buf;
	}
	return NULL;
}

/*
 * haproxy's maxconn: 20000, or what the hard RLIMIT_NOFILE allows (haproxy
 * wants ~2 fds per connection and refuses to start otherwise; a container
 * may not let even root raise the hard limit).
 */
static long haproxy_maxconn(void)
{
	struct rlimit rl;
	long m = 20000;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max != RLIM_INFINITY &&
	    ((long)rl.rlim_max - 200) / 2 < m)
		m = ((long)rl.rlim_max - 200) / 2;
	return m;
}

/*
 * Temporary dir with a self-signed certificate (cert and key in one PEM,
 * as haproxy wants) and haproxy.cfg: one thread, mode http, every GET
 * answered 200 by haproxy itself, idle connections kept 120 s (> interval).
 */
static int tls_prepare(long n)
{
	long maxconn = haproxy_maxconn();
	char cmd[512], path[128];
	FILE *f;

	if (maxconn < n + 600) {
		printf("prober scale: haproxy could have only %ld connections (RLIMIT_NOFILE hard limit), %ld endpoints need %ld\n",
		       maxconn, n, n + 600);
		return -1;
	}
	strcpy(env.dir, "/tmp/kstest-pscale-XXXXXX");
	if (!mkdtemp(env.dir)) {
		env.dir[0] = 0;
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=x -days 1 "
		 "-keyout key.pem -out cert.pem >/dev/null 2>&1 && cat cert.pem key.pem > server.pem",
		 env.dir);
	if (system(cmd)) {
		printf("prober scale: openssl could not make a self-signed certificate\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/haproxy.cfg", env.dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
		"global\n"
		"    maxconn %ld\n"
		"    nbthread 1\n"
		"    stats socket %s/stats.sock mode 600 level admin\n"
		"defaults\n"
		"    mode http\n"
		"    maxconn %ld\n"
		"    timeout connect 5s\n"
		"    timeout client 120s\n"
		"    timeout server 5s\n"
		"    timeout http-request 10s\n"
		"    timeout http-keep-alive 120s\n"
		"frontend fe\n"
		"    bind 0.0.0.0:%d ssl crt %s/server.pem alpn h2,http/1.1\n"
		"    http-request return status 200\n",
		maxconn, env.dir, maxconn, TLS_PORT, env.dir);
	return fclose(f) ? -1 : 0;
}

/* Child, already in the test namespace: exec haproxy in the foreground. */
static void haproxy_exec(const char *bin)
{
	char cfg[128];
	struct rlimit rl;
	int fd;

	/* ~2 fds per connection: up to the hard limit (haproxy_maxconn() fits maxconn to it). */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Both survive execve: haproxy goes when the test does, however it ends. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(1500);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	fd = open("/dev/null", O_WRONLY);
	if (fd >= 0)
		dup2(fd, STDOUT_FILENO);
	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", env.dir);
	execl(bin, "haproxy", "-db", "-q", "-f", cfg, (char *)NULL);
	_exit(127);
}

/* Up when its stats socket answers; 0, or -1 if it exited or is not up in 10 s. */
static int haproxy_wait(void)
{
	int i, ws;

	for (i = 0; i < 200; i++) {
		if (waitpid(env.srv, &ws, WNOHANG) == env.srv) {
			env.srv = 0;
			printf("prober scale: haproxy exited at start (wait status 0x%x); its messages are on stderr\n",
			       ws);
			return -1;
		}
		if (haproxy_cumconns() >= 0)
			return 0;
		usleep(50000);
	}
	printf("prober scale: haproxy did not come up in 10 s\n");
	return -1;
}

static int setup(void **state)
{
	const char *kind = scale_kind(), *haproxy = NULL;
	struct rlimit rl;

	(void)state;
	env.tls = kind_is_tls(kind);
	if (env.tls && !(haproxy = haproxy_path())) {
		printf("prober scale: kind=%s needs haproxy as the TLS server, not found; install the bench dependencies with scripts/deps.sh --bench\n",
		       kind);
		return -1;
	}
	alarm(1800);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGALRM, on_signal);
	/* Room for 512 checks in flight on both ends. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
		rl.rlim_cur = 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (kt_netns_enter_new(&env.ns, "kstest-pscale"))
		return -1;
	env.sh = mmap(NULL, sizeof(*env.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (env.sh == MAP_FAILED)
		return -1;
	if (env.tls && tls_prepare(env_long("KS_SCALE_N", 5000)))
		return -1;
	env.srv = fork();
	if (env.srv < 0)
		return -1;
	if (!env.srv) {
		if (env.tls)
			haproxy_exec(haproxy);
		server_main(env.sh, !strcmp(kind, "h2c"));
		_exit(0);
	}
	if (env.tls)
		return haproxy_wait();
	usleep(200000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scale),
	};

	if (geteuid()) {
		printf("test_prober_scale: needs root (network namespace); skipped\n");
		return 0;
	}
	if (getenv("KS_DEBUG"))
		ks_log_set_level(KS_LOG_DEBUG);
	return cmocka_run_group_tests(tests, setup, teardown);
}
