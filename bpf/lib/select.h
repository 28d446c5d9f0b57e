/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maths of backend selection, compiled on the host by the unit tests
 * (selftests/unit/test_select.c). It only reads a struct ks_svc and random
 * numbers: no maps, no helpers. Hooks do not call it directly but through
 * ks_pick (lib/lb.h), which adds the map reads and the ejection skip.
 *
 * Step 1: a group with probability weight/total. Step 2: an endpoint of
 * that group, uniformly among its eligible ones.
 *
 * Random numbers are scaled with a multiply-shift, (rnd * n) >> 32, rather
 * than rnd % n: it needs no division (the verifier-friendly choice on every
 * arch) and its bias is at most n / 2^32 per outcome, below 0.4% relative
 * even at the Gateway API maximum total weight of 16 x 1,000,000.
 */
#ifndef KSPLIT_BPF_SELECT_H
#define KSPLIT_BPF_SELECT_H

#include <ksplit/abi.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define KS_NO_GROUP	((__u32)-1)

/* clang unrolls for the verifier; gcc (host unit tests) has no such pragma. */
#if defined(__clang__)
#define KS_UNROLL _Pragma("unroll")
#else
#define KS_UNROLL
#endif

static __always_inline __u32 ks_scale(__u32 rnd, __u32 n)
{
	return (__u32)(((__u64)rnd * n) >> 32);
}

/*
 * Index of the chosen group, or KS_NO_GROUP when the service has no weight
 * (every backendRef weighted 0: Gateway API says no traffic then).
 * A weight-0 group has weight_end equal to its predecessor's, so no r falls
 * into it.
 */
static __always_inline __u32 ks_pick_group(const struct ks_svc *svc, __u32 rnd)
{
	__u32 r, i;

	if (!svc->total_weight)
		return KS_NO_GROUP;
	r = ks_scale(rnd, svc->total_weight);
KS_UNROLL
	for (i = 0; i < KS_MAX_GROUPS; i++) {
		if (i >= svc->n_groups)
			break;
		if (r < svc->groups[i].weight_end)
			return i;
	}
	return KS_NO_GROUP;
}

/* Slot in the backends map; the caller has checked be_count > 0. */
static __always_inline __u32 ks_pick_slot(const struct ks_group *g, __u32 rnd)
{
	return g->be_base + ks_scale(rnd, g->be_count);
}

#endif /* KSPLIT_BPF_SELECT_H */
