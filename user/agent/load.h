/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's config load, from files or the Kubernetes API, and its logs. */
#ifndef KSPLIT_AGENT_LOAD_H
#define KSPLIT_AGENT_LOAD_H

#include "agent/agent.h"
#include "config/model.h"

struct ks_kube;
struct ks_objects;

/* What one load found, for metrics and for the first apply of a restarted agent. */
struct ks_load_counts {
	size_t errors, warnings;	/* diagnostics */
	size_t routes, not_accepted;	/* route verdicts */
};

/*
 * One load: from kube when not NULL, else o's config paths; diagnostics and
 * verdicts logged and counted in *c; *objects keeps the last good versions
 * across loads. NULL when no model could be built (logged).
 */
struct ks_model *ks_agent_load(const struct ks_agent_opts *o, struct ks_kube *kube,
			       struct ks_objects **objects, struct ks_load_counts *c);

/*
 * The incremental load: when only EndpointSlices changed since the last
 * load, p gets the patch of model m (config.h, ks_model_patch_slices) and
 * objects the new slices; 0. -EAGAIN (or -ENOMEM): load in full.
 */
struct ks_model_patch;
int ks_agent_patch(struct ks_kube *kube, struct ks_objects *objects, struct ks_model *m,
		   struct ks_model_patch *p);

/* A load and its apply hold two configs at once: give the freed pages back. */
void ks_agent_trim_heap(const char *why);
/* Warns about every service of img in panic or degraded. */
struct ks_image;
void ks_agent_log_flags(const struct ks_image *img);

/* Frees a model ks_agent_load returned (NULL is fine). */
void ks_agent_model_release(struct ks_model *m);

#endif
