// SPDX-License-Identifier: BSD-2-Clause
/*
 * Walks of the services in force (dp->svcs, what the maps hold) that are not
 * an apply: lifting passive ejections that active checks overrule, and
 * draining the sockets of endpoints no VIP lists any more.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "datapath/drain.h"

int ks_dp_uneject(struct ks_dp *dp, bool (*pick)(void *ctx, const struct ks_backend *be),
		  void *ctx, unsigned int *n)
{
	int feh = bpf_map__fd(dp->skel->maps.ks_ep_health);
	struct ks_ep_health h, clean = {};
	struct timespec ts;
	uint64_t now;
	uint32_t j, k;
	size_t i;

	*n = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	for (i = 0; i < dp->n; i++) {
		const struct dp_svc *d = &dp->svcs[i];

		for (j = 0; j < d->s.n_groups; j++) {
			for (k = 0; k < d->s.groups[j].n_total; k++) {
				const struct ks_backend *be = &d->s.groups[j].be[k];

				if (bpf_map_lookup_elem(feh, &be->ep_id, &h) || h.ejected_until <= now ||
				    !pick(ctx, be))
					continue;
				/* Active checks vouch for it: the ejection history starts over. */
				if (bpf_map_update_elem(feh, &be->ep_id, &clean, BPF_EXIST))
					return -errno;
				(*n)++;
			}
		}
	}
	return 0;
}

int ks_dp_reconcile(struct ks_dp *dp, struct ks_drain_stats *st)
{
	struct ks_drain_live *live = NULL;
	uint32_t j, k;
	size_t i, n;
	int err;

	memset(st, 0, sizeof(*st));
	/* No cgroup: no steered socket to drain (TC flows end in tc.bpf.c, counted in stale). */
	if (dp_no_cgroup(dp))
		return 0;
	/* dp->svcs is what the maps hold: written by apply, rebuilt from them on adoption. */
	err = ks_drain_live_new(&live);
	for (i = 0, n = 0; !err && i < dp->n; i++)
		for (j = 0; j < dp->svcs[i].s.n_groups; j++)
			n += dp->svcs[i].s.groups[j].n_total;
	if (!err)
		err = ks_drain_live_reserve(live, n);
	for (i = 0; !err && i < dp->n; i++) {
		const struct ksi_service *s = &dp->svcs[i].s;

		/* Listed up to be_total: a terminating endpoint keeps its connections. */
		for (j = 0; !err && j < s->n_groups; j++)
			for (k = 0; !err && k < s->groups[j].n_total; k++)
				err = ks_drain_live_add(live, &s->key, &s->groups[j].be[k]);
	}
	if (!err)
		err = ks_drain_reconcile(dp->cgroup, bpf_map__fd(dp->skel->maps.ks_sock), live, st);
	ks_drain_live_free(live);
	return err;
}
