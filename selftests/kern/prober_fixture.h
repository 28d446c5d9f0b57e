/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_prober's fixture: the test process enters a network namespace of its
 * own with setns(2) (never `ip netns exec`), so the prober's sockets live
 * there; the servers of prober_servers.h are forked children, the
 * certificate lives in a temp dir. Teardown (also from atexit and
 * SIGINT/SIGTERM/SIGALRM) kills the children by pid, returns to the
 * original namespace, deletes the namespace and the temp dir.
 *
 * And the prober driven from the test: state changes recorded with a
 * snapshot of the matching listener's counters, and loops that run the
 * prober until an event, for a time or for a number of checks.
 */
#ifndef KSPLIT_KT_PROBER_FIXTURE_H
#define KSPLIT_KT_PROBER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net_helpers.h"
#include "prober_servers.h"
#include "health/prober.h"

struct kp_env {
	struct kt_own_netns ns;
	char tmpdir[64];	/* cert.pem, key.pem, health, h2root/health */
	pid_t srv, tls, h2, tlskeep;
	struct kp_shared *sh;
};

extern struct kp_env kp_env;

/* cmocka group fixtures: namespace, temp dir, kp_server_main and s_server up. */
int kp_group_setup(void **state);
int kp_group_teardown(void **state);

#define KP_MAX_EV 64

struct kp_ev {
	uint16_t port;
	enum ks_hstate old, now;
	char reason[256];
	long streak, served, accepted;	/* snapshot of the matching listener */
	uint64_t passes, failures;	/* prober stats at the event (if rec.p is set) */
	int64_t at_ms;
	bool used;		/* returned by kp_run_until already */
};

/* The ctx of kp_on_change. */
struct kp_rec {
	int n;
	struct kp_ev ev[KP_MAX_EV];
	int64_t t0;
	struct ks_prober *p;	/* optional: snapshot its stats into each event */
};

void kp_on_change(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
		  enum ks_hstate now, const char *reason);
/*
 * Run the loop until port reaches state (the first such event not returned
 * before) or timeout_ms passes; NULL on timeout.
 */
const struct kp_ev *kp_run_until(struct ks_prober *p, struct kp_rec *r, uint16_t port,
				 enum ks_hstate want, int timeout_ms);
/* Keep the loop running for ms (events are recorded). */
void kp_run_for(struct ks_prober *p, int ms);
/* Run the loop until the prober has completed n more checks (or 10 s pass). */
void kp_run_checks(struct ks_prober *p, uint64_t n);

/* A target for addr:port checking /health, statusMatch 200. */
struct ks_probe_target kp_target(const char *addr, uint16_t port, enum ks_probe_kind kind,
				 uint32_t iv, uint32_t to, uint32_t h, uint32_t u);
/* What listener l (HTTP, h2c, keep-alive) answers from now on. */
void kp_set_status(int l, int st);
void kp_print_ev(const char *what, const struct kp_ev *e);

#endif
