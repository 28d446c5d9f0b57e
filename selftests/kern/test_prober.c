// SPDX-License-Identifier: BSD-2-Clause
/*
 * Active health checks against real servers in a private network
 * namespace: HTTP/1.1 (status switched at run time), a server that accepts
 * and never answers, h2c with prior knowledge (a minimal HTTP/2 responder),
 * HTTPS against `openssl s_server` with a self-signed certificate made at
 * test time, HTTP/2 over TLS negotiated by ALPN against `nghttpd` (Debian
 * package nghttp2-server, see scripts/deps.sh) with the same certificate,
 * and TCP connects to an open and a closed port. The servers are in
 * prober_servers.c, the namespace and the event recorder in
 * prober_fixture.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "prober_fixture.h"
#include "common/log.h"
#include "health/prober.h"

/* HTTP/1.1: 200 -> healthy after one check; 500 -> unhealthy after exactly u; 200 -> healthy after exactly h. */
static void test_http_thresholds(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t =
		kp_target("127.0.0.1", kp_port[L_HTTP], KS_PROBE_HTTP, 150, 1000, 3, 2);
	const struct kp_ev *e;
	struct ks_prober_stats st;
	long served0 = kp_env.sh->served[L_HTTP];

	(void)state;
	kp_set_status(L_HTTP, 200);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = kp_run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("first check", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	/* Checked at once: the very first response made it healthy. */
	assert_int_equal(e->served - served0, 1);
	assert_string_equal(kp_env.sh->reqline[L_HTTP], "GET /health HTTP/1.1");
	assert_string_equal(kp_env.sh->host[L_HTTP], "127.0.0.1:8080");
	assert_string_equal(kp_env.sh->ua[L_HTTP], "ksplit-healthcheck/1");

	kp_set_status(L_HTTP, 500);
	e = kp_run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("500 -> unhealthy", e);
	assert_int_equal(e->streak, 2);
	assert_non_null(strstr(e->reason, "2 consecutive failures, last: http status 500"));

	kp_set_status(L_HTTP, 200);
	e = kp_run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("200 -> healthy", e);
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t =
		kp_target("127.0.0.1", kp_port[L_HTTP], KS_PROBE_HTTP, 2000, 1000, 2, 2);
	struct ks_prober_stats st;
	const struct kp_ev *e;
	long served0;

	(void)state;
	ks_codes_parse("301-302", &t.spec.match, NULL, 0);
	kp_set_status(L_HTTP, 302);
	served0 = kp_env.sh->served[L_HTTP];
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = kp_run_until(p, &r, t.port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	kp_print_ev("302 matched", e);
	kp_run_for(p, 200);
	/* One request per check (the second check may come within the 200 ms): none to /moved. */
	ks_prober_get_stats(p, &st);
	assert_int_equal(kp_env.sh->served[L_HTTP] - served0, (long)st.checks);
	assert_string_equal(kp_env.sh->reqline[L_HTTP], "GET /health HTTP/1.1");
	ks_prober_free(p);
	kp_set_status(L_HTTP, 200);
}

/* A server that accepts and never answers: each check times out and counts as a failure. */
static void test_timeout_is_failure(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t =
		kp_target("127.0.0.1", kp_port[L_HANG], KS_PROBE_HTTP, 300, 200, 2, 3);
	struct ks_prober_stats st;
	const struct kp_ev *e;
	long acc0 = kp_env.sh->accepted[L_HANG];

	(void)state;
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = kp_run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("hang -> unhealthy", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_int_equal(e->accepted - acc0, 3);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: timeout after 200 ms"));
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.timeouts, 3);
	assert_int_equal(st.passes, 0);
	/* A TCP check of the same server passes: connect-only cannot see a hung app. */
	t.spec.kind = KS_PROBE_TCP;
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = kp_run_until(p, &r, t.port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("same server, tcp check", e);
	assert_non_null(strstr(e->reason, "2 consecutive passes: connected"));
	ks_prober_free(p);
}

/* h2c with prior knowledge against the minimal HTTP/2 server. */
static void test_h2c(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[2];
	const struct kp_ev *e;
	long bad0 = kp_env.sh->bad_preface, served0 = kp_env.sh->served[L_H2C];
	int i;

	(void)state;
	t[0] = kp_target("127.0.0.1", kp_port[L_H2C], KS_PROBE_HTTP, 150, 1000, 2, 3);
	t[0].spec.http2 = true;
	/* Control: the same server checked with HTTP/1.1 must fail (proves h2 was spoken above). */
	t[1] = t[0];
	t[1].port = 1;
	t[1].spec.port = kp_port[L_H2C];
	t[1].spec.http2 = false;
	t[1].spec.unhealthy_thr = 2;
	kp_set_status(L_H2C, 200);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	e = kp_run_until(p, &r, t[0].port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("h2c first check", e);
	assert_int_equal(e->served - served0, 1);
	e = kp_run_until(p, &r, 1, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("http1 vs h2-only server", e);
	assert_true(kp_env.sh->bad_preface - bad0 >= 2);

	kp_set_status(L_H2C, 503);
	e = kp_run_until(p, &r, t[0].port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("h2c 503 -> unhealthy", e);
	assert_int_equal(e->streak, 3);
	assert_non_null(strstr(e->reason, "http status 503"));
	kp_set_status(L_H2C, 204);
	ks_codes_parse("200-299", &t[0].spec.match, NULL, 0);
	/* A spec change keeps the state and restarts the count with the new statusMatch. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	e = kp_run_until(p, &r, t[0].port, KS_H_HEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("h2c 204 -> healthy", e);
	assert_int_equal(e->old, KS_H_UNHEALTHY);
	assert_int_equal(e->streak, 2);
	/* h2c keeps its connection: 5 more checks, the same single client socket. */
	served0 = kp_env.sh->served[L_H2C];
	i = kt_count_tcp(false, kp_port[L_H2C], 0x06);
	kp_run_for(p, 800);
	printf("  h2c reuse: served=%ld client TIME_WAIT +%d established=%d\n",
	       kp_env.sh->served[L_H2C] - served0, kt_count_tcp(false, kp_port[L_H2C], 0x06) - i,
	       kt_count_tcp(false, kp_port[L_H2C], 0x01));
	assert_true(kp_env.sh->served[L_H2C] - served0 >= 4);
	assert_int_equal(kt_count_tcp(false, kp_port[L_H2C], 0x06) - i, 0);
	assert_int_equal(kt_count_tcp(false, kp_port[L_H2C], 0x01), 1);
	ks_prober_free(p);
}

struct keep_snap {
	long accepted, served, dropped;
	uint64_t passes, failures;
};

static void keep_snap(struct ks_prober *p, struct keep_snap *k)
{
	struct ks_prober_stats st;

	ks_prober_get_stats(p, &st);
	k->accepted = __atomic_load_n(&kp_env.sh->accepted[L_KEEP], __ATOMIC_SEQ_CST);
	k->served = __atomic_load_n(&kp_env.sh->served[L_KEEP], __ATOMIC_SEQ_CST);
	k->dropped = __atomic_load_n(&kp_env.sh->dropped, __ATOMIC_SEQ_CST);
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

	__atomic_store_n(&kp_env.sh->keep_mode, mode, __ATOMIC_SEQ_CST);
	if (skip)
		kp_run_checks(p, skip);
	keep_snap(p, &a);
	kp_run_checks(p, 10);
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct keep_snap a, b, d;
	const struct kp_ev *e;

	(void)state;
	/*
	 * 200 ms: from the third check on, checks are 180-200 ms apart, more
	 * than the prober's 100 ms start batching, so when a check completes
	 * the next one has not started, and snapshots taken between checks
	 * compare exactly.
	 */
	t = kp_target("127.0.0.1", kp_port[L_KEEP], KS_PROBE_HTTP, 200, 1000, 2, 2);
	kp_set_status(L_KEEP, 200);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
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
	__atomic_store_n(&kp_env.sh->keep_mode, KEEP_ANSWER, __ATOMIC_SEQ_CST);
	kp_run_checks(p, 3);
	__atomic_store_n(&kp_env.sh->keep_mode, KEEP_RESET, __ATOMIC_SEQ_CST);
	keep_snap(p, &a);
	e = kp_run_until(p, &r, t.port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	keep_snap(p, &b);
	kp_print_ev("reset -> unhealthy", e);
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct ks_prober_stats st;
	long acc0, srv0;
	int i;

	(void)state;
	assert_int_equal(kp_start_tls_keep_server(&kp_env.tlskeep, kp_env.tmpdir, kp_env.sh), 0);
	/* wait_port's own connection is counted by the server in its own time. */
	for (i = 0; i < 200 && !__atomic_load_n(&kp_env.sh->tls_accepted, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(kp_env.sh->tls_accepted, 1);
	t = kp_target("127.0.0.1", 1, KS_PROBE_HTTPS, 200, 1000, 2, 2);
	t.spec.port = PORT_TLSKEEP;
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	acc0 = kp_env.sh->tls_accepted;
	srv0 = kp_env.sh->tls_served;
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	kp_run_checks(p, 10);
	ks_prober_get_stats(p, &st);
	printf("  https keep-alive: checks=%" PRIu64 " passes=%" PRIu64 " tls connections=%ld served=%ld host=%s\n",
	       st.checks, st.passes, kp_env.sh->tls_accepted - acc0, kp_env.sh->tls_served - srv0,
	       kp_env.sh->tls_host);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.passes, 10);
	assert_int_equal(kp_env.sh->tls_accepted - acc0, 1);
	assert_int_equal(kp_env.sh->tls_served - srv0, 10);
	assert_string_equal(kp_env.sh->tls_host, "127.0.0.1:8445");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ev[0].reason, "first check passed: http status 200");

	/* The server goes away: the kept connection fails, exactly 2 checks later unhealthy. */
	kt_kill_child(&kp_env.tlskeep);
	assert_non_null(kp_run_until(p, &r, 1, KS_H_UNHEALTHY, 5000));
	ks_prober_get_stats(p, &st);
	kp_print_ev("https server gone", &r.ev[1]);
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
	int fd = kp_listen_on(AF_INET, "127.0.0.1", port), c;
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	const struct kp_ev *e;
	char req[512];
	int lfd, filler, a;
	ssize_t n;

	(void)state;
	/* TCP: pending at first, connected after the SYN retransmit. */
	lfd = listen_full(8090, &filler);
	t = kp_target("127.0.0.1", 8090, KS_PROBE_TCP, 5000, 3000, 2, 2);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	kp_run_for(p, 300);
	assert_int_equal(r.n, 0);	/* still connecting */
	close(accept(lfd, NULL, NULL));	/* the filler goes: room for the retransmitted SYN */
	e = kp_run_until(p, &r, 8090, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	kp_print_ev("tcp, slow handshake", e);
	assert_string_equal(e->reason, "first check passed: connected");
	assert_true(e->at_ms >= 800);
	ks_prober_free(p);
	close(filler);
	close(lfd);

	/* HTTP: the same, then the request goes out on the late connection and is answered. */
	memset(&r, 0, sizeof(r));
	lfd = listen_full(8091, &filler);
	t = kp_target("127.0.0.1", 8091, KS_PROBE_HTTP, 5000, 3000, 2, 2);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	kp_run_for(p, 300);
	close(accept(lfd, NULL, NULL));
	kp_run_for(p, 1500);	/* connected by now, request sent */
	assert_int_equal(r.n, 0);
	a = accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	n = read(a, req, sizeof(req) - 1);
	assert_true(n > 0);
	req[n] = '\0';
	assert_non_null(strstr(req, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:8091\r\n"));
	assert_int_equal(write(a, resp, sizeof(resp) - 1), (ssize_t)sizeof(resp) - 1);
	e = kp_run_until(p, &r, 8091, KS_H_HEALTHY, 2000);
	assert_non_null(e);
	kp_print_ev("http, slow handshake", e);
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t;
	struct ks_prober_stats st;

	(void)state;
	t = kp_target("127.0.0.1", kp_port[L_TCP], KS_PROBE_TCP, 100, 1000, 2, 2);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	kp_run_for(p, 1000);
	ks_prober_get_stats(p, &st);
	printf("  100 ms interval, 1 s: %" PRIu64 " checks\n", st.checks);
	/* First at once, second within 100 ms, then every 90-100 ms. */
	assert_in_range(st.checks, 10, 13);
	ks_prober_free(p);
}

/* HTTPS against openssl s_server with a self-signed certificate. */
static void test_https(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	const struct kp_ev *e;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		t[i] = kp_target("127.0.0.1", (uint16_t)(1 + i), KS_PROBE_HTTPS, 200, 2000, 2, 2);
		t[i].spec.port = PORT_TLS;
	}
	ks_codes_parse("204", &t[1].spec.match, NULL, 0);	/* s_server says 200 */
	t[2].spec.tls_verify = true;
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	e = kp_run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("https self-signed", e);
	assert_non_null(strstr(e->reason, "http status 200"));
	e = kp_run_until(p, &r, 2, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("https statusMatch 204", e);
	assert_non_null(strstr(e->reason, "http status 200"));
	e = kp_run_until(p, &r, 3, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("https tls_verify on", e);
	assert_non_null(strstr(e->reason, "certificate"));

	/* Server down: unhealthy after 2; back: healthy after 2. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	kt_kill_child(&kp_env.tls);
	e = kp_run_until(p, &r, 1, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("https server down", e);
	assert_int_equal(kp_start_tls_server(&kp_env.tls, kp_env.tmpdir), 0);
	e = kp_run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("https server back", e);
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
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	struct ks_prober_stats st;
	const struct kp_ev *e;
	uint64_t f0, p0, down;
	int i, n;

	(void)state;
	if (kp_start_h2_server(&kp_env.h2, kp_env.tmpdir)) {
		kt_kill_child(&kp_env.h2);
		fail_msg("nghttpd did not start on 127.0.0.1:%d (apt-get install nghttp2-server, "
			 "see scripts/deps.sh)", PORT_H2TLS);
	}
	for (i = 0; i < 3; i++) {
		t[i] = kp_target("127.0.0.1", (uint16_t)(1 + i), KS_PROBE_HTTPS, 200, 2000, 2, 3);
		t[i].spec.port = PORT_H2TLS;
		t[i].spec.http2 = true;
	}
	strcpy(t[1].spec.path, "/missing");
	t[2].spec.http2 = false;	/* control: HTTP/1.1 over TLS */
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.p = p;
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	e = kp_run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("h2 over tls /health", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_string_equal(e->reason, "first check passed: http status 200");
	/* Nothing else passes: this was the very first check of /health. */
	assert_int_equal(e->passes, 1);
	e = kp_run_until(p, &r, 2, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("h2 over tls /missing", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_string_equal(e->reason, "3 consecutive failures, last: http status 404");
	e = kp_run_until(p, &r, 3, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("http/1.1 vs h2-only nghttpd", e);
	assert_int_equal(e->old, KS_H_UNKNOWN);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: "));
	assert_null(strstr(e->reason, "http status"));
	/* One change per target so far: /health never failed (no flapping back). */
	kp_run_for(p, 300);
	for (i = 0, n = 0; i < r.n; i++)
		n += r.ev[i].port == 1;
	assert_int_equal(n, 1);
	assert_int_equal(r.n, 3);

	/* Server down: unhealthy after exactly 3 failed checks; back: healthy after exactly 2. */
	assert_int_equal(ks_prober_set_targets(p, t, 1), 0);
	ks_prober_get_stats(p, &st);
	f0 = st.failures;
	kt_kill_child(&kp_env.h2);
	e = kp_run_until(p, &r, 1, KS_H_UNHEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("h2 server down", e);
	assert_int_equal(e->old, KS_H_HEALTHY);
	down = e->failures - f0;
	assert_int_equal(down, 3);
	assert_non_null(strstr(e->reason, "3 consecutive failures, last: "));
	assert_null(strstr(e->reason, "http status"));
	p0 = e->passes;
	assert_int_equal(kp_start_h2_server(&kp_env.h2, kp_env.tmpdir), 0);
	e = kp_run_until(p, &r, 1, KS_H_HEALTHY, 8000);
	assert_non_null(e);
	kp_print_ev("h2 server back", e);
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
	kp_run_for(p, 1000);
	ks_prober_get_stats(p, &st);
	printf("  h2 reuse: passes=%llu client TIME_WAIT +%d established=%d\n",
	       (unsigned long long)(st.passes - p0), kt_count_tcp(false, PORT_H2TLS, 0x06) - i,
	       kt_count_tcp(false, PORT_H2TLS, 0x01));
	assert_true(st.passes - p0 >= 4);
	assert_int_equal(kt_count_tcp(false, PORT_H2TLS, 0x06) - i, 0);
	assert_int_equal(kt_count_tcp(false, PORT_H2TLS, 0x01), 1);
	ks_prober_free(p);
	kt_kill_child(&kp_env.h2);
}

/* TCP connect checks: open port healthy after one check, closed port unhealthy after u. */
static void test_tcp(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[2];
	const struct kp_ev *e;
	long acc0 = kp_env.sh->accepted[L_TCP];

	(void)state;
	t[0] = kp_target("127.0.0.1", kp_port[L_TCP], KS_PROBE_TCP, 150, 500, 2, 2);
	t[1] = kp_target("127.0.0.1", PORT_CLOSED, KS_PROBE_TCP, 150, 500, 2, 4);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	e = kp_run_until(p, &r, t[0].port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	kp_print_ev("tcp open", e);
	e = kp_run_until(p, &r, t[1].port, KS_H_UNHEALTHY, 5000);
	assert_non_null(e);
	kp_print_ev("tcp closed", e);
	assert_non_null(strstr(e->reason, "4 consecutive failures, last: connect: Connection refused"));
	assert_true(kp_env.sh->accepted[L_TCP] - acc0 >= 1);
	ks_prober_free(p);
}

/* IPv6: URL and Host header carry the address in brackets. */
static void test_http_ipv6(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t =
		kp_target("::1", kp_port[L_HTTP6], KS_PROBE_HTTP, 500, 1000, 2, 2);
	const struct kp_ev *e;

	(void)state;
	if (kp_wait_port(AF_INET6, "::1", kp_port[L_HTTP6])) {
		print_message("no IPv6 on lo in this netns; skipped\n");
		skip();
	}
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	r.t0 = kt_now_ms();
	assert_int_equal(ks_prober_set_targets(p, &t, 1), 0);
	e = kp_run_until(p, &r, t.port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	kp_print_ev("ipv6", e);
	assert_string_equal(kp_env.sh->host[L_HTTP6], "[::1]:8085");
	ks_prober_free(p);
}

/* set_targets keeps state of unchanged targets, checks new ones at once, cancels removed ones. */
static void test_target_updates(void **state)
{
	struct kp_rec r = { 0 };
	struct ks_prober *p;
	struct ks_probe_target t[3];
	struct ks_prober_stats st;
	enum ks_hstate hs;
	const struct kp_ev *e;
	long served0;

	(void)state;
	kp_set_status(L_HTTP, 200);
	t[0] = kp_target("127.0.0.1", kp_port[L_HTTP], KS_PROBE_HTTP, 10000, 1000, 2, 2);
	t[1] = kp_target("127.0.0.1", kp_port[L_HANG], KS_PROBE_HTTP, 10000, 5000, 2, 2);
	t[2] = kp_target("127.0.0.1", kp_port[L_TCP], KS_PROBE_TCP, 10000, 1000, 2, 2);
	assert_int_equal(ks_prober_new(&p, kp_on_change, &r), 0);
	assert_int_equal(ks_prober_set_targets(p, t, 2), 0);
	assert_non_null(kp_run_until(p, &r, t[0].port, KS_H_HEALTHY, 3000));
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.in_flight, 1);	/* the hang check */
	served0 = kp_env.sh->served[L_HTTP];
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
	e = kp_run_until(p, &r, t[1].port, KS_H_HEALTHY, 3000);
	assert_non_null(e);
	kp_print_ev("added later, checked at once", e);
	assert_true(e->at_ms < 10000);
	/* The unchanged target was not re-checked (its interval is 10 s). */
	assert_int_equal(kp_env.sh->served[L_HTTP], served0);
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
	return cmocka_run_group_tests(tests, kp_group_setup, kp_group_teardown);
}
