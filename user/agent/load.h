/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's config load, from files or the Kubernetes API, and its logs. */
#ifndef KSPLIT_AGENT_LOAD_H
#define KSPLIT_AGENT_LOAD_H

#include "agent/agent.h"
#include "config/model.h"

struct ks_kube;
struct ks_objects;

/*
 * One load: from kube when not NULL, else o's config paths; diagnostics and
 * verdicts logged; *objects keeps the last good versions across loads.
 * NULL when no model could be built (logged).
 */
struct ks_model *ks_agent_load(const struct ks_agent_opts *o, struct ks_kube *kube,
			       struct ks_objects **objects);

#endif
