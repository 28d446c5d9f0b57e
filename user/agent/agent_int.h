/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's state, shared by the files of user/agent/ that make up `ksplit
 * run` (agent.c: the loop; agent_metrics.c: what it counts for /metrics).
 * Not for other folders: they see agent/agent.h.
 */
#ifndef KSPLIT_AGENT_INT_H
#define KSPLIT_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/load.h"
#include "agent/watch.h"
#include "metrics/metrics.h"

#define TICK_MS 1000

/* The running agent: the last good model stays in memory so that a health
 * verdict can re-image it without re-reading the manifests. */
struct agent {
	const struct ks_agent_opts *o;
	struct ks_dp *dp;
	struct ks_checks *checks;
	struct ks_model *model;		/* last good; NULL before the first */
	struct ks_objects *objects;	/* the last load's objects, for refused ones' last good */
	struct ks_kube *kube;		/* the API source, or NULL: files */
	struct ks_load_counts last_load;	/* what the last load found */
	/*
	 * Adopted pins and no apply yet: the pins are the last good state, and
	 * this process has no last good versions of refused objects to stand
	 * in for them, so only a load without errors replaces them.
	 */
	bool need_clean;
	/*
	 * The kept objects are newer than the model in force (a load whose
	 * apply failed, or none yet): the incremental path, which patches the
	 * model from them, waits for a full load that is in force.
	 */
	bool objects_ahead;
	struct ks_watches watches;	/* files mode: inotify on the config paths */
	uint64_t burst_first_ms;	/* first config event not yet applied, 0 = none */
	uint64_t event_us;		/* the same in us, kept for the apply it starts; 0 = none */
	bool dirty;			/* a verdict changed since the last apply */
	bool hold;			/* first apply waits for the first verdicts */
	bool reconciled;		/* drain has looked at every socket once since start */
	uint64_t hold_until_ms;
	int fatal;			/* set when the agent must stop (-errno) */
	uint64_t next_check_ms;		/* next datapath self-check */
	/* Metrics: served from this loop (metrics/metrics.h), so read without locks. */
	struct ks_metrics *metrics;
	struct ks_agent_metrics mx;
	uint64_t last_turn_ms;		/* /healthz: end of the loop's last round (1 s tick at least) */
};

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static inline uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* agent_metrics.c: an apply that started at t0_us (now_us()) is in force. */
void agent_metrics_applied(struct agent *a, uint64_t t0_us);
/* A load ended; ok: without errors (the load's counts decide the rest). */
void agent_metrics_loaded(struct agent *a, bool ok);
/* Serve /metrics, /healthz and /readyz (after the pin dir lock); 0 or -errno. */
int agent_metrics_start(struct agent *a);

#endif
