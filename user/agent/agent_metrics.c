// SPDX-License-Identifier: BSD-2-Clause
/*
 * What the agent counts itself for /metrics (metrics/format.h), and the
 * server's start: the loop in agent.c calls these at its applies and loads.
 */
#include <string.h>
#include <time.h>

#include "agent/agent_int.h"
#include "common/log.h"
#include "health/checks.h"

void agent_metrics_applied(struct agent *a, uint64_t t0_us)
{
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	ks_agent_metrics_observe_apply(&a->mx, (now_us() - t0_us) / 1e6);
	a->mx.last_apply_success = wall.tv_sec + wall.tv_nsec / 1e9;
	a->mx.ready = true;
}

/* A load with an error or a route not accepted is not valid; each one counts. */
void agent_metrics_loaded(struct agent *a, bool ok)
{
	ok = ok && !a->last_load.errors && !a->last_load.not_accepted;
	a->mx.config_valid = ok;
	if (!ok)
		a->mx.config_errors++;
}

static void metrics_fill(void *ctx, struct ks_agent_metrics *out)
{
	struct agent *a = ctx;
	struct ks_checks_counts hc;

	*out = a->mx;
	ks_checks_counts(a->checks, &hc);
	out->health_to_healthy = hc.to_healthy;
	out->health_to_unhealthy = hc.to_unhealthy;
	out->health_checks = hc.checks;
	out->health_check_failures = hc.failures;
	out->health_targets = ks_checks_targets(a->checks);
}

/*
 * The loop wakes at least every TICK_MS; three ticks without a finished
 * round means it is stuck or starved. A round, not the tick itself: a long
 * apply ends with a round, so the probe after it is not failed for it.
 */
static bool metrics_alive(void *ctx)
{
	return now_ms() - ((struct agent *)ctx)->last_turn_ms < 3 * TICK_MS + 500;
}

/*
 * After the pin dir lock: the agent it waits for may hold the same port. An
 * address given with --metrics-addr must be served (else exit); the default
 * one, when taken, costs only a warning, as several agents on one host (tests,
 * other pin dirs) would otherwise stop each other from starting.
 */
int agent_metrics_start(struct agent *a)
{
	const char *addr = a->o->metrics_addr ? a->o->metrics_addr : KS_METRICS_DEFAULT_ADDR;
	struct ks_metrics_opts mo = { .addr = addr, .pin_dir = a->o->dp.pin_dir,
				      .endpoints = a->o->metrics_endpoints, .fill = metrics_fill,
				      .alive = metrics_alive, .ctx = a };
	int err;

	if (!strcmp(addr, "none"))
		return 0;
	a->last_turn_ms = now_ms();
	err = ks_metrics_start(&mo, &a->metrics);
	if (!err) {
		pr_info("serving /metrics, /healthz and /readyz", "metrics_addr=%s",
			ks_metrics_addr(a->metrics));
		return 0;
	}
	if (a->o->metrics_addr) {
		pr_error("cannot serve metrics on --metrics-addr (in use? pass another ADDR:PORT or none)",
			 "metrics_addr=%s err=%d", addr, err);
		return err;
	}
	pr_warn("cannot serve metrics on the default address; pass --metrics-addr ADDR:PORT (or none)",
		"metrics_addr=%s err=%d", addr, err);
	return 0;
}
