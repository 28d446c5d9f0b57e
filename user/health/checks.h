/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Active checks as the agent sees them: which endpoints a TargetGroupPolicy
 * covers (the prober's targets), and the verdicts the map image needs.
 * The prober itself (user/prober.c) knows nothing of Services or routes.
 */
#ifndef KSPLIT_CHECKS_H
#define KSPLIT_CHECKS_H

#include <stdbool.h>
#include "image/image.h"
#include "config/model.h"
#include "health/prober.h"

struct ks_checks;

/* on_change runs (from dispatch) whenever a verdict changes: the image must be rebuilt. */
int ks_checks_new(struct ks_checks **out, void (*on_change)(void *ctx), void *ctx);
void ks_checks_free(struct ks_checks *c);
/*
 * Derive the targets from m (which must outlive its use here: the view reads
 * it). A bad healthCheck is an error (-EINVAL, logged) and nothing changes.
 */
int ks_checks_set_model(struct ks_checks *c, const struct ks_model *m);
/* Health view over the model last set, for ks_image_build_health. */
void ks_checks_view(struct ks_checks *c, struct ks_health_view *hv);
size_t ks_checks_targets(const struct ks_checks *c);
/* Every target has had at least one verdict (or has none to wait for). */
bool ks_checks_settled(struct ks_checks *c);
/*
 * Target (addr, port) went from unhealthy back to healthy since the last
 * ks_checks_clear_recovered(): its active checks passed after failing, which
 * is what ends a passive ejection. A healthy verdict that never changed says
 * nothing about the failures sockops saw since.
 */
bool ks_checks_recovered(struct ks_checks *c, const struct ksm_addr *a, uint16_t port);
size_t ks_checks_n_recovered(const struct ks_checks *c);
void ks_checks_clear_recovered(struct ks_checks *c);
/* For the metrics: state changes since start, by the state entered, and the prober's totals. */
struct ks_checks_counts {
	uint64_t to_healthy, to_unhealthy;
	uint64_t checks, failures;
};
void ks_checks_counts(struct ks_checks *c, struct ks_checks_counts *out);
int ks_checks_fd(struct ks_checks *c);
int ks_checks_dispatch(struct ks_checks *c);

#endif
