// SPDX-License-Identifier: BSD-2-Clause
/*
 * Active health checker engine. One private epoll set holds a timerfd and
 * one socket per target: a TCP connect check's, or an HTTP connection that
 * is kept between checks (http.c, over conn.c). The agent polls that set's
 * fd. Two min-heaps drive time: idle targets by their next check, checks in
 * flight by deadline. The TCP connect checks are here too: a socket
 * (conn.c) and a verdict, no protocol.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
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

#include "ksplit/abi.h"
#include "common/log.h"
#include "health/conn.h"
#include "health/prober.h"

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

void kp_heap_push(struct heap *h, struct target *t, uint64_t key)
{
	t->key[h->which] = key;
	t->idx[h->which] = h->n;
	h->v[h->n++] = t;
	heap_up(h, h->n - 1);
}

void kp_heap_del(struct heap *h, struct target *t)
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
	kp_heap_push(&p->heap[H_DUE], t, due);
}

void kp_finish(struct ks_prober *p, struct target *t, bool pass, bool timeout, const char *why)
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

void kp_start_failed(struct ks_prober *p, struct target *t, const char *what, int err)
{
	t->in_flight = false;
	p->st.in_flight--;
	pr_warn("health check not started", "addr=%s port=%u what=%s err=\"%s\"", t->host,
		check_port(t), what, strerror(err));
	kp_heap_push(&p->heap[H_DUE], t, now_ns() + t->t.spec.interval_ms * NS_PER_MS);
}

/* ---- TCP connect checks ---- */

static void tcp_close(struct ks_prober *p, struct target *t)
{
	kp_sock_close(p, t);
	kp_heap_del(&p->heap[H_DL], t);
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
	kp_finish(p, t, !err && !timeout, timeout, why);
}

static void start_tcp(struct ks_prober *p, struct target *t, uint64_t now)
{
	/* RST on close: a connect-only check has nothing to flush, and no TIME_WAIT piles up here. */
	static const struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev = { .events = EPOLLOUT };
	int fd, err;

	err = kp_sock_open(t, &fd);
	if (fd < 0) {
		kp_start_failed(p, t, "socket", -err);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	t->fd = fd;
	kp_heap_push(&p->heap[H_DL], t, now + t->t.spec.timeout_ms * NS_PER_MS);
	if (err != -EINPROGRESS) {
		tcp_done(p, t, -err, false);
		return;
	}
	ev.data.ptr = t;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = errno;
		tcp_close(p, t);
		kp_start_failed(p, t, "epoll_ctl", err);
	}
}

static void tcp_event(struct ks_prober *p, struct target *t)
{
	if (t->fd >= 0)
		tcp_done(p, t, kp_sock_error(t->fd), false);
}

/* ---- dispatch by check kind ---- */

/* A check of ours ran out of time. */
static void deadline_hit(struct ks_prober *p, struct target *t)
{
	if (t->hc)
		kp_http_timeout(p, t);
	else
		tcp_done(p, t, 0, true);
}

static void target_event(struct ks_prober *p, struct target *t)
{
	if (t->hc)
		kp_http_event(p, t);
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
		kp_http_start(p, t, now);
}

/* Stop whatever runs for t (no result is fed). */
static void cancel(struct ks_prober *p, struct target *t)
{
	kp_heap_del(&p->heap[H_DUE], t);
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
			kp_heap_del(&p->heap[H_DUE], t);
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
	kp_http_free(p, t);
	free(t);
}

void ks_prober_free(struct ks_prober *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		target_free(p, p->tv[i]);
	kp_tls_free(p);
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
				kp_http_free(p, t);		/* its request came from the old spec */
				t->t.spec = in[i].spec;
				t->hsm.passes = t->hsm.fails = 0;
				t->started = 0;
				kp_heap_push(&p->heap[H_DUE], t, now);
			}
		} else {
			tv[i]->gen = p->gen;
			kp_heap_push(&p->heap[H_DUE], tv[i], now);
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
