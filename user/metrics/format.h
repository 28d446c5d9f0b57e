/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Prometheus text format (version 0.0.4) of ksplit's metrics, rendered
 * from plain data: a counters snapshot of the pins (datapath/counters.h)
 * and the agent's own numbers. No I/O, so a unit test checks the exact
 * lines without root. metrics.c serves what this renders.
 */
#ifndef KSPLIT_METRICS_FORMAT_H
#define KSPLIT_METRICS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath/counters.h"

/* Upper bounds (seconds) of ksplit_apply_duration_seconds; +Inf is implied. */
#define KS_APPLY_BUCKETS { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
#define KS_N_APPLY_BUCKETS 12

/* What the agent knows that the pins do not. */
struct ks_agent_metrics {
	bool ready;			/* a config has been applied since start */
	bool config_valid;		/* the last read of the manifests was accepted */
	uint64_t config_errors;		/* reads of the manifests that were rejected */
	uint64_t apply_errors;		/* applies that failed (the last good state stayed) */
	double last_apply_success;	/* unix time of the last successful apply, 0 = none */
	uint64_t apply_buckets[KS_N_APPLY_BUCKETS];	/* not cumulative: one bucket per apply */
	uint64_t apply_count;
	double apply_sum;		/* seconds */
	/* Active health checks (health/checks.h). */
	uint64_t health_to_healthy, health_to_unhealthy;
	uint64_t health_checks, health_check_failures;
	uint64_t health_targets;
	/* The TC path's flow sweep (datapath/dp.h, ks_dp_ct_gc). */
	uint64_t tc_ct_swept;		/* ks_ct entries of idle flows deleted */
	uint64_t tc_relinked;		/* TC links/filters put back by the self-check */
};

/* Record one apply of `seconds` in the histogram. */
void ks_agent_metrics_observe_apply(struct ks_agent_metrics *a, double seconds);

/* A growing text buffer; err sticks at the first failure (-ENOMEM). */
struct ks_mbuf {
	char *s;
	size_t len, cap;
	int err;
};

void ks_mbuf_printf(struct ks_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ks_mbuf_free(struct ks_mbuf *b);

struct ks_metrics_input {
	const char *version;
	const struct ks_agent_metrics *agent;
	const struct ks_counters *dp;	/* NULL: the pins could not be read */
	bool endpoints;			/* --metrics-endpoints: one series per endpoint slot */
};

/* Append the whole exposition to b. 0 or b->err. */
int ks_metrics_render(struct ks_mbuf *b, const struct ks_metrics_input *in);

#endif
