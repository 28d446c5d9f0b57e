/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-packet tests' frames (test_tc_packets, test_tc_ct): the
 * addresses, the configuration they apply, and one direction's program
 * run on a crafted frame with the result compared byte for byte.
 */
#ifndef KSPLIT_KT_TC_FRAMES_H
#define KSPLIT_KT_TC_FRAMES_H

#include <stdbool.h>
#include <stdint.h>

#include "packets.h"
#include "tc_topo.h"

#define VIP4	"198.19.0.10"
#define VIP6	"fd00:19::10"
#define BE4	"198.18.1.1"
#define BE6	"fd00:18::1:1"
#define BE4_NEW	"198.18.1.2"
#define BE4_V2	"198.18.2.1"
#define CL4	"198.18.0.2"
#define CL6	"fd00:18::2"

#define ACT_OK		0
#define ACT_SHOT	2

#define TC_STAT(e, f) KT_TC_STAT(e, f)

/* Gateway gw on both VIPs, TCP and UDP on port 80, to v1 (and v2, weight v2w). */
void kt_tc_config(struct kt_env *e, const char *v1_eps4, int v1w, int v2w);
/* The datapath in e's pin dir, configured with v1 = BE4 only. */
struct kt_env *kt_tc_start(void **state);
/* Run one direction's program on in; the verdict must be want_ret. */
void kt_tc_run(struct kt_env *e, bool ingress, const struct kt_pkt *in, struct kt_pkt *out,
	       uint32_t want_ret);
void kt_tc_assert_same(const char *what, const struct kt_pkt *got, const struct kt_pkt *want);
/* in through the program must give the frame want describes, with checksums that verify. */
void kt_tc_xlate(struct kt_env *e, bool ingress, const struct kt_pkt_spec *in,
		 const struct kt_pkt_spec *want);
/* in must come out bit for bit unchanged, with verdict ret. */
void kt_tc_untouched(struct kt_env *e, bool ingress, const struct kt_pkt *in, uint32_t ret,
		     const char *what);
void kt_tc_untouched_spec(struct kt_env *e, bool ingress, const struct kt_pkt_spec *s);

#endif
