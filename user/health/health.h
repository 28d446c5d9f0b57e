/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Active health checks, the pure part: the per-endpoint state machine,
 * the check schedule, and the translation
 * of a TargetGroupPolicy healthCheck (struct ksm_health) into a probe spec.
 * No I/O here, so every rule is unit-testable without root; prober.c is the
 * engine that runs the checks. See docs/health.md, "Active checks".
 */
#ifndef KSPLIT_HEALTH_H
#define KSPLIT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/codes.h"
#include "config/model.h"

enum ks_hstate {
	KS_H_UNKNOWN = 0,	/* never passed and not yet failed enough: no traffic */
	KS_H_HEALTHY,
	KS_H_UNHEALTHY,
};

const char *ks_hstate_name(enum ks_hstate s);	/* "unknown", "healthy", "unhealthy" */
/* Only HEALTHY takes new connections; UNKNOWN waits for its first pass (as Lattice). */
static inline bool ks_hstate_takes_traffic(enum ks_hstate s) { return s == KS_H_HEALTHY; }

/*
 * Per-endpoint state machine.
 *   UNKNOWN   --1 pass------------------------> HEALTHY
 *   UNKNOWN   --unhealthy_thr failures in a row-> UNHEALTHY
 *   HEALTHY   --unhealthy_thr failures in a row-> UNHEALTHY
 *   UNHEALTHY --healthy_thr passes in a row----> HEALTHY
 * A result against the streak resets it. Streaks restart on every transition.
 */
struct ks_hsm {
	enum ks_hstate state;
	uint32_t passes;	/* consecutive passes */
	uint32_t fails;		/* consecutive failures */
};

void ks_hsm_init(struct ks_hsm *m);
/* Feed one check result; returns true when the state changed. Thresholds < 1 count as 1. */
bool ks_hsm_feed(struct ks_hsm *m, bool pass, uint32_t healthy_thr, uint32_t unhealthy_thr);

/* What to check. Built by ks_probe_spec_from_health or by hand (TCPRoute backends, tests). */
enum ks_probe_kind { KS_PROBE_HTTP = 0, KS_PROBE_HTTPS, KS_PROBE_TCP };

#define KS_PROBE_PATH_MAX 512

struct ks_probe_spec {
	enum ks_probe_kind kind;
	bool http2;		/* HTTP: h2c prior knowledge; HTTPS: h2 via ALPN */
	bool tls_verify;	/* HTTPS: verify the certificate (default off: pods are self-signed) */
	bool fresh_conn;	/* HTTP(S): new connection per check (default: keep-alive) */
	uint16_t port;		/* 0 = the endpoint's traffic port */
	uint32_t interval_ms, timeout_ms;
	uint32_t healthy_thr, unhealthy_thr;
	struct ks_codes match;		/* statusMatch, HTTP(S) only */
	char path[KS_PROBE_PATH_MAX];	/* HTTP(S) only, starts with '/' */
};

/*
 * From a TargetGroupPolicy healthCheck. Checks the AWS ranges again
 * (interval 5..300 s, timeout 1..120 s, thresholds 2..10), protocol
 * HTTP|HTTPS (and "TCP", a ksplit extension: connect only),
 * protocolVersion HTTP1|HTTP2, path, statusMatch (ks_codes_parse, the
 * rule `ksplit validate` applies too). l4_only forces a TCP
 * connect check (TCPRoute backends: there is no HTTP to speak).
 * Returns 0, -ENODATA when the check is disabled (enabled: false; the
 * caller tracks no target), or -EINVAL with a text in err.
 * The spec is zeroed first so that memcmp() compares specs.
 */
int ks_probe_spec_from_health(const struct ksm_health *h, bool l4_only,
			      struct ks_probe_spec *out, char *err, size_t errlen);
/* Sanity for specs built by hand: intervals > 0, thresholds >= 1, path, kind. */
int ks_probe_spec_check(const struct ks_probe_spec *s, char *err, size_t errlen);
bool ks_probe_spec_equal(const struct ks_probe_spec *a, const struct ks_probe_spec *b);

/*
 * Schedule. The n-th check of a target (n = 0 for its first) starts this
 * many ms after the start of the previous one:
 *   n == 0: 0 (new endpoints and every endpoint at agent start: at once)
 *   n == 1: interval - rnd % (interval/2 + 1), uniform in [0.5, 1] x
 *           interval, which spreads targets that all started together
 *           over half an interval
 *   n >= 2: interval - rnd % (interval/10 + 1), uniform in [0.9, 1] x
 *           interval, so phases keep drifting apart instead of locking
 *           into step
 * Never more than the interval: a pod that dies is out within interval x
 * unhealthyThresholdCount (plus the last check's own time), as promised,
 * also right after agent start.
 * rnd is any uniformly random 32-bit value (the caller owns the generator).
 */
uint64_t ks_health_next_delay_ms(uint32_t interval_ms, uint64_t nth, uint32_t rnd);

#endif /* KSPLIT_HEALTH_H */
