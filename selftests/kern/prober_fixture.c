// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "prober_fixture.h"
#include "env.h"

struct kp_env kp_env;

static void cleanup(void)
{
	char cmd[256];

	kt_kill_child(&kp_env.srv);
	kt_kill_child(&kp_env.tls);
	kt_kill_child(&kp_env.h2);
	kt_kill_child(&kp_env.tlskeep);
	kt_netns_leave(&kp_env.ns);
	if (kp_env.tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", kp_env.tmpdir);
		if (system(cmd))
			fprintf(stderr, "cleanup: %s failed\n", cmd);
		kp_env.tmpdir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

int kp_group_setup(void **state)
{
	char cmd[512];
	int i;

	(void)state;
	alarm(240);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGALRM, on_signal);
	snprintf(kp_env.tmpdir, sizeof(kp_env.tmpdir), "/tmp/kstest-prober-XXXXXX");
	if (!mkdtemp(kp_env.tmpdir)) {
		kp_env.tmpdir[0] = '\0';
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && echo ok > health && mkdir h2root && echo ok > h2root/health && "
		 "openssl req -x509 -newkey ec "
		 "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem "
		 "-days 1 -subj /CN=ksplit-test >/dev/null 2>&1", kp_env.tmpdir);
	if (system(cmd)) {
		fprintf(stderr, "setup: openssl req failed\n");
		return -1;
	}
	if (kt_netns_enter_new(&kp_env.ns, "kstest-prober"))
		return -1;
	kp_env.sh = mmap(NULL, sizeof(*kp_env.sh), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (kp_env.sh == MAP_FAILED)
		return -1;
	memset(kp_env.sh, 0, sizeof(*kp_env.sh));
	for (i = 0; i < L_NR; i++)
		kp_env.sh->status[i] = 200;
	kp_env.srv = fork();
	if (kp_env.srv < 0)
		return -1;
	if (!kp_env.srv) {
		kp_server_main(kp_env.sh);
		_exit(0);
	}
	if (kp_wait_port(AF_INET, "127.0.0.1", kp_port[L_HTTP]) ||
	    kp_wait_port(AF_INET, "127.0.0.1", kp_port[L_H2C]))
		return -1;
	return kp_start_tls_server(&kp_env.tls, kp_env.tmpdir);
}

int kp_group_teardown(void **state)
{
	(void)state;
	cleanup();
	return 0;
}

/* Which L_* listener serves port; -1 for none. */
static int listener_of(uint16_t port)
{
	int i;

	for (i = 0; i < L_NR; i++)
		if (kp_port[i] == port)
			return i;
	return -1;
}

void kp_on_change(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
		  enum ks_hstate now, const char *reason)
{
	struct kp_rec *r = ctx;
	struct kp_ev *e;
	int l = listener_of(t->spec.port ? t->spec.port : t->port);

	if (r->n == KP_MAX_EV)
		return;
	e = &r->ev[r->n++];
	e->port = t->port;
	e->old = old;
	e->now = now;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	e->at_ms = kt_now_ms() - r->t0;
	if (l >= 0) {
		e->streak = __atomic_load_n(&kp_env.sh->streak[l], __ATOMIC_SEQ_CST);
		e->served = __atomic_load_n(&kp_env.sh->served[l], __ATOMIC_SEQ_CST);
		e->accepted = __atomic_load_n(&kp_env.sh->accepted[l], __ATOMIC_SEQ_CST);
	}
	if (r->p) {
		struct ks_prober_stats st;

		ks_prober_get_stats(r->p, &st);
		e->passes = st.passes;
		e->failures = st.failures;
	}
}

const struct kp_ev *kp_run_until(struct ks_prober *p, struct kp_rec *r, uint16_t port,
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

void kp_run_for(struct ks_prober *p, int ms)
{
	int64_t end = kt_now_ms() + ms;

	while (kt_now_ms() < end) {
		struct pollfd pfd = { .fd = ks_prober_fd(p), .events = POLLIN };

		if (poll(&pfd, 1, (int)(end - kt_now_ms())) > 0)
			assert_int_equal(ks_prober_dispatch(p), 0);
	}
}

struct ks_probe_target kp_target(const char *addr, uint16_t port, enum ks_probe_kind kind,
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

void kp_set_status(int l, int st)
{
	__atomic_store_n(&kp_env.sh->status[l], st, __ATOMIC_SEQ_CST);
}

void kp_print_ev(const char *what, const struct kp_ev *e)
{
	printf("  %-28s port=%u %s->%s at=%lldms streak=%ld served=%ld accepted=%ld reason=\"%s\"\n",
	       what, e->port, ks_hstate_name(e->old), ks_hstate_name(e->now),
	       (long long)e->at_ms, e->streak, e->served, e->accepted, e->reason);
}

void kp_run_checks(struct ks_prober *p, uint64_t n)
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
