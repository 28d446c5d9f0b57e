/* SPDX-License-Identifier: BSD-2-Clause */
/* `ksplit run`: load, attach, apply, then watch the config and re-apply. */
#ifndef KSPLIT_AGENT_H
#define KSPLIT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include "datapath/dp.h"

struct ks_agent_opts {
	const char *const *configs;
	size_t n_configs;
	struct ks_dp_opts dp;
	bool no_destroy;	/* --no-destroy: leave sockets to removed endpoints alone */
	bool no_wait;		/* --no-wait: exit 1 if another agent holds the pin dir */
	bool allow_loopback_vips;	/* --allow-loopback-vips: tests, demo, bench only */
	/* The source: configs (files), or the Kubernetes API (one of these two). */
	const char *kubeconfig;		/* --kubeconfig */
	bool in_cluster;		/* the pod's service account (KUBERNETES_SERVICE_HOST) */
	const char *const *gateway_classes;	/* --gateway-class: also ksplit's */
	size_t n_gateway_classes;
	/* Status writing: the Lease's namespace (--namespace) and holder (--identity), its timing. */
	const char *status_namespace;
	const char *identity;
	unsigned lease_duration_s, lease_renew_s;	/* 0: the defaults (15 s, 2 s) */
	/* --metrics-addr: NULL serves on KS_METRICS_DEFAULT_ADDR if free, "none" not at all. */
	const char *metrics_addr;
	bool metrics_endpoints;	/* --metrics-endpoints: per-endpoint series */
	const char *const *tc_ifaces;	/* --tc-iface: NAME or PREFIX+ (datapath/dp.h) */
	size_t n_tc_ifaces;
	bool tc_clsact;		/* --tc-clsact: clsact + cls_bpf even where tcx exists */
};

/* Runs until SIGTERM/SIGINT. 0 on a clean stop, -errno otherwise. */
int ks_agent_run(const struct ks_agent_opts *o);

#endif
