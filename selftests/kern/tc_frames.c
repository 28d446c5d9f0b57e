// SPDX-License-Identifier: BSD-2-Clause
/* The per-packet tests' frames and configuration (tc_frames.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tc_frames.h"
#include "datapath/dp.h"

void kt_tc_config(struct kt_env *e, const char *v1_eps4, int v1w, int v2w)
{
	struct kt_buf b = {};
	char backends[64];

	kt_yaml_gateway(&b, "gw", VIP4 " " VIP6, "tcp:TCP:80 udp:UDP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", v1_eps4);
	kt_yaml_slice(&b, "v1", "IPv6", BE6);
	kt_yaml_service(&b, "v2", 80, NULL);
	kt_yaml_slice(&b, "v2", "IPv4", BE4_V2);
	snprintf(backends, sizeof(backends), "v1=%d v2=%d", v1w, v2w);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", backends);
	kt_yaml_route(&b, "UDPRoute", "u", "gw/udp", backends);
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
}

struct kt_env *kt_tc_start(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	kt_tc_config(e, BE4, 1, 0);
	return e;
}

/* Run one direction's program on in; the verdict must be ret. */
void kt_tc_run(struct kt_env *e, bool ingress, const struct kt_pkt *in, struct kt_pkt *out,
	       uint32_t want_ret)
{
	uint32_t ret = 99;

	if (getenv("KT_VERBOSE"))
		printf("  [run] %zu bytes, ethertype %02x%02x\n", in->len, in->b[12], in->b[13]);
	assert_int_equal(kt_pkt_run(ks_dp_tc_prog_fd(e->dp, ingress), in, out, &ret), 0);
	assert_int_equal(ret, want_ret);
}

void kt_tc_assert_same(const char *what, const struct kt_pkt *got, const struct kt_pkt *want)
{
	if (got->len != want->len || memcmp(got->b, want->b, want->len)) {
		kt_pkt_diff(what, got, want);
		fail_msg("%s: frame differs", what);
	}
}

/*
 * Run in through the program; the result must be the frame `want` describes,
 * with checksums that verify (unless want has no UDP checksum).
 */
void kt_tc_xlate(struct kt_env *e, bool ingress, const struct kt_pkt_spec *in,
		 const struct kt_pkt_spec *want)
{
	struct kt_pkt pin, pout, pwant;

	kt_pkt_build(in, &pin);
	kt_pkt_build(want, &pwant);
	kt_tc_run(e, ingress, &pin, &pout, ACT_OK);
	kt_tc_assert_same(want->dst, &pout, &pwant);
	assert_true(kt_pkt_ip_csum_ok(&pout));
	if (want->frag == KT_FRAG_NONE)
		assert_true(kt_pkt_l4_csum_ok(&pout, NULL) == !want->no_udp_csum);
}

/* in must come out bit for bit unchanged, with verdict ret. */
void kt_tc_untouched(struct kt_env *e, bool ingress, const struct kt_pkt *in, uint32_t ret,
		     const char *what)
{
	struct kt_pkt out;

	kt_tc_run(e, ingress, in, &out, ret);
	kt_tc_assert_same(what, &out, in);
}

void kt_tc_untouched_spec(struct kt_env *e, bool ingress, const struct kt_pkt_spec *s)
{
	struct kt_pkt p;

	kt_pkt_build(s, &p);
	kt_tc_untouched(e, ingress, &p, ACT_OK, s->dst);
}
