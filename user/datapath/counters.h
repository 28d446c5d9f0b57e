/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A snapshot of the pinned maps for `ksplit status`: services, their groups'
 * endpoint slots, names and the per-CPU counters summed. It reads only the
 * pins, never the programs, so it works while the agent is stopped. What the
 * numbers mean (shares, states) is the reader's business.
 */
#ifndef KSPLIT_COUNTERS_H
#define KSPLIT_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ksplit/abi.h>

/* One endpoint slot of a group; all zero when the slot was empty. */
struct ks_ep_counters {
	bool found;			/* the ks_backends slot held an entry */
	struct ks_backend be;
	struct ks_ep_health health;
	struct ks_ep_stats stats;	/* summed over CPUs */
};

struct ks_svc_counters {
	struct ks_svc_key key;
	struct ks_svc svc;
	struct ks_svc_meta meta;	/* zero when the agent wrote no names */
	struct ks_svc_stats stats;	/* summed over CPUs */
	struct ks_group_stats gstats[KS_MAX_GROUPS];	/* per group j < n_groups, summed over CPUs */
	/* eps[j] (NULL without KS_COUNTERS_ENDPOINTS): svc.groups[j].be_total slots, for j < min(n_groups, KS_MAX_GROUPS). */
	struct ks_ep_counters *eps[KS_MAX_GROUPS];
};

struct ks_counters {
	uint64_t now;			/* CLOCK_MONOTONIC ns at the read: ejected_until's clock */
	size_t n_svcs;
	struct ks_svc_counters *svcs;	/* sorted by key */
	struct ks_tc_stats tc;		/* the per-packet path's counters, summed over CPUs */
};

/* Also read every endpoint slot: one lookup per slot, the slow part at scale. */
#define KS_COUNTERS_ENDPOINTS	(1U << 0)

/*
 * Read every service in pin_dir (NULL: KS_DEFAULT_PIN_DIR). 0 or -errno;
 * -EPROTO when a pin's key or value size is not this binary's (nothing read).
 * Services, their counters and names are read with batch lookups, a few
 * syscalls per map rather than several per service.
 */
int ks_counters_read_ex(const char *pin_dir, unsigned int flags, struct ks_counters *out);
/* The same with KS_COUNTERS_ENDPOINTS, as `ksplit status` shows them. */
int ks_counters_read(const char *pin_dir, struct ks_counters *out);
void ks_counters_free(struct ks_counters *c);

/* The per-packet path's counters of pin_dir's ks_tc_stats, summed over CPUs. */
int ks_counters_read_tc(const char *pin_dir, struct ks_tc_stats *out);

/* Each ks_tc_stats member by its name in abi.h, for status and metrics. */
struct ks_tc_counter {
	const char *name;
	uint64_t value;
};
#define KS_TC_N_COUNTERS	10
void ks_tc_counters(const struct ks_tc_stats *t, struct ks_tc_counter out[KS_TC_N_COUNTERS]);

#endif
