// SPDX-License-Identifier: BSD-2-Clause
/*
 * The per-packet programs (bpf/tc.bpf.c) on crafted frames, run with
 * BPF_PROG_TEST_RUN: no topology, only the datapath of the test's pin dir
 * with a configuration applied as the agent applies it. Every rewritten
 * frame is compared byte for byte with the frame built directly with the
 * translated fields (packets.c computes all checksums from scratch), and
 * its checksums are verified again by recomputation. Frames that are not
 * the program's business must come out bit for bit unchanged.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "packets.h"
#include "tc_topo.h"
#include "datapath/dp.h"

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

/* Gateway gw on both VIPs, TCP and UDP on port 80, to v1 (and v2, weight v2w) */
static void config(struct kt_env *e, const char *v1_eps4, int v1w, int v2w)
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

static struct kt_env *start(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	config(e, BE4, 1, 0);
	return e;
}

#define TC_STAT(e, f) KT_TC_STAT(e, f)

/* Run one direction's program on in; the verdict must be ret. */
static void run(struct kt_env *e, bool ingress, const struct kt_pkt *in, struct kt_pkt *out,
		uint32_t want_ret)
{
	uint32_t ret = 99;

	if (getenv("KT_VERBOSE"))
		printf("  [run] %zu bytes, ethertype %02x%02x\n", in->len, in->b[12], in->b[13]);
	assert_int_equal(kt_pkt_run(ks_dp_tc_prog_fd(e->dp, ingress), in, out, &ret), 0);
	assert_int_equal(ret, want_ret);
}

static void assert_same(const char *what, const struct kt_pkt *got, const struct kt_pkt *want)
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
static void xlate(struct kt_env *e, bool ingress, const struct kt_pkt_spec *in,
		  const struct kt_pkt_spec *want)
{
	struct kt_pkt pin, pout, pwant;

	kt_pkt_build(in, &pin);
	kt_pkt_build(want, &pwant);
	run(e, ingress, &pin, &pout, ACT_OK);
	assert_same(want->dst, &pout, &pwant);
	assert_true(kt_pkt_ip_csum_ok(&pout));
	if (want->frag == KT_FRAG_NONE)
		assert_true(kt_pkt_l4_csum_ok(&pout, NULL) == !want->no_udp_csum);
}

/* in must come out bit for bit unchanged, with verdict ret. */
static void untouched(struct kt_env *e, bool ingress, const struct kt_pkt *in, uint32_t ret,
		      const char *what)
{
	struct kt_pkt out;

	run(e, ingress, in, &out, ret);
	assert_same(what, &out, in);
}

static void untouched_spec(struct kt_env *e, bool ingress, const struct kt_pkt_spec *s)
{
	struct kt_pkt p;

	kt_pkt_build(s, &p);
	untouched(e, ingress, &p, ACT_OK, s->dst);
}

/* A flow's life in one family and protocol: first packet, a later one, a reply. */
static void flow(struct kt_env *e, int family, int proto, bool opts)
{
	const char *cl = family == 4 ? CL4 : CL6, *vip = family == 4 ? VIP4 : VIP6;
	const char *be = family == 4 ? BE4 : BE6;
	struct kt_pkt_spec in = { .family = family, .proto = proto, .src = cl, .dst = vip,
				  .sport = 40000, .dport = 80, .tcp_flags = TH_SYN, .payload = 0,
				  .ip_options = opts && family == 4, .ext_headers = opts && family == 6 };
	struct kt_pkt_spec want = in, reply, reply_want;
	uint64_t new0 = TC_STAT(e, new_flows), fwd0 = TC_STAT(e, fwd), rev0 = TC_STAT(e, rev);

	if (proto == IPPROTO_UDP)
		in.payload = want.payload = 13;
	want.dst = be;
	want.dport = 8080;
	xlate(e, true, &in, &want);
	/* The flow's next packet follows its entry. */
	in.tcp_flags = want.tcp_flags = TH_ACK;
	in.payload = want.payload = 100;
	xlate(e, true, &in, &want);
	/* The reply comes back from the VIP. */
	reply = (struct kt_pkt_spec){ .family = family, .proto = proto, .src = be, .dst = cl,
				      .sport = 8080, .dport = 40000, .tcp_flags = TH_SYN | TH_ACK,
				      .payload = 7 };
	reply_want = reply;
	reply_want.src = vip;
	reply_want.sport = 80;
	xlate(e, false, &reply, &reply_want);
	assert_int_equal(TC_STAT(e, new_flows) - new0, 1);
	assert_int_equal(TC_STAT(e, fwd) - fwd0, 2);
	assert_int_equal(TC_STAT(e, rev) - rev0, 1);
}

static void test_tcp_v4(void **state)
{
	struct kt_env *e = start(state);
	struct json_object *st;

	flow(e, 4, IPPROTO_TCP, false);
	/* The socket path's counters count the TC path's flows too. */
	st = kt_status(e);
	assert_int_equal(kt_status_ep(kt_status_svc(st, VIP4, 80, "TCP"), BE4, 8080), 1);
	assert_int_equal(kt_status_field(kt_status_svc(st, VIP4, 80, "TCP"), "connections"), 1);
	json_object_put(st);
}

static void test_tcp_v6(void **state) { flow(start(state), 6, IPPROTO_TCP, false); }
static void test_udp_v4(void **state) { flow(start(state), 4, IPPROTO_UDP, false); }
static void test_udp_v6(void **state) { flow(start(state), 6, IPPROTO_UDP, false); }
/* IPv4 options and IPv6 extension headers move the L4 header. */
static void test_tcp_v4_options(void **state) { flow(start(state), 4, IPPROTO_TCP, true); }
static void test_udp_v6_ext_headers(void **state) { flow(start(state), 6, IPPROTO_UDP, true); }

/* An IPv4 UDP datagram without checksum keeps none (0), however its addresses change. */
static void test_udp_no_csum(void **state)
{
	struct kt_env *e = start(state);
	struct kt_pkt_spec in = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				  .sport = 40001, .dport = 80, .payload = 20, .no_udp_csum = true };
	struct kt_pkt_spec want = in;

	want.dst = BE4;
	want.dport = 8080;
	xlate(e, true, &in, &want);
}

/* What is not a VIP flow comes out bit for bit unchanged, malformed or not. */
static void test_untouched(void **state)
{
	struct kt_env *e = start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = BE4,
				 .sport = 40002, .dport = 8080, .tcp_flags = TH_SYN };
	struct kt_pkt p;

	/* To a backend address directly, to the VIP on a port it does not serve. */
	untouched_spec(e, true, &s);
	s.dst = VIP4;
	s.dport = 81;
	untouched_spec(e, true, &s);
	s.family = 6, s.src = CL6, s.dst = VIP6;
	untouched_spec(e, true, &s);
	/* A TCP segment without SYN and without entry is not ours. */
	s.family = 4, s.src = CL4, s.dst = VIP4, s.dport = 80, s.tcp_flags = TH_ACK;
	untouched_spec(e, true, &s);
	assert_int_equal(TC_STAT(e, no_syn), 1);
	/* A reply with no flow behind it. */
	s.src = BE4, s.dst = CL4, s.sport = 8080, s.dport = 40002;
	untouched_spec(e, false, &s);

	/* Malformed: each would be a VIP SYN if it were whole. */
	s = (struct kt_pkt_spec){ .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				  .sport = 40003, .dport = 80, .tcp_flags = TH_SYN };
	kt_pkt_build(&s, &p);
	p.len = 14 + 20 + 10;		/* TCP header cut short (and tot_len beyond the frame) */
	untouched(e, true, &p, ACT_OK, "truncated TCP header");
	kt_pkt_build(&s, &p);
	p.b[14 + 2] = 0x01;		/* tot_len 296 + 14 > frame */
	untouched(e, true, &p, ACT_OK, "tot_len beyond the frame");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x44;			/* ihl 4: below the minimum */
	untouched(e, true, &p, ACT_OK, "ihl 4");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x4f;			/* ihl 15: options beyond tot_len */
	untouched(e, true, &p, ACT_OK, "ihl 15");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x55;			/* version 5 */
	untouched(e, true, &p, ACT_OK, "version 5");
	kt_pkt_build(&s, &p);
	p.len = 14 + 20 + 10;		/* tot_len agrees, but 10 bytes cannot hold a TCP header */
	p.b[14 + 3] = 30;
	untouched(e, true, &p, ACT_OK, "10-byte TCP segment");
	/* (A frame cut inside the IPv4 header: BPF_PROG_TEST_RUN itself refuses to run it.) */
	kt_pkt_build(&s, &p);
	p.b[12] = 0x08, p.b[13] = 0x06;	/* ARP ethertype */
	untouched(e, true, &p, ACT_OK, "ARP");
	s.family = 6, s.src = CL6, s.dst = VIP6;
	kt_pkt_build(&s, &p);
	p.b[14 + 4] = 0x10;		/* payload_len 4096 + 20 */
	untouched(e, true, &p, ACT_OK, "IPv6 payload_len beyond the frame");
	s.ext_headers = true;
	kt_pkt_build(&s, &p);
	p.len = 14 + 40 + 8 + 4;	/* cut inside the destination options */
	p.b[14 + 5] = 12;
	untouched(e, true, &p, ACT_OK, "IPv6 extension header cut short");
	kt_pkt_build(&s, &p);
	p.b[14 + 40] = 51;		/* hop-by-hop says AH follows: not parsed */
	untouched(e, true, &p, ACT_OK, "IPv6 AH");
	assert_int_equal(TC_STAT(e, new_flows), 0);
}

/*
 * Fragments: the first carries the ports and is translated like any
 * datagram; the later one, without ports, gets the same address through
 * ks_ct_frag. The reassembled datagram's checksum verifies over the new
 * addresses. A later fragment whose first was not seen passes unchanged.
 */
static void fragments(struct kt_env *e, int family)
{
	const char *cl = family == 4 ? CL4 : CL6, *vip = family == 4 ? VIP4 : VIP6;
	const char *be = family == 4 ? BE4 : BE6;
	struct kt_pkt_spec s = { .family = family, .proto = IPPROTO_UDP, .src = cl, .dst = vip,
				 .sport = 40010, .dport = 80, .frag = KT_FRAG_FIRST,
				 .frag_id = 0x4242 };
	struct kt_pkt_spec want = s;
	struct kt_pkt first, later, wfirst, wlater, out1, out2;

	want.dst = be;
	want.dport = 8080;
	kt_pkt_build(&s, &first);
	kt_pkt_build(&want, &wfirst);
	s.frag = want.frag = KT_FRAG_LATER;
	kt_pkt_build(&s, &later);
	kt_pkt_build(&want, &wlater);
	run(e, true, &first, &out1, ACT_OK);
	assert_same("first fragment", &out1, &wfirst);
	run(e, true, &later, &out2, ACT_OK);
	assert_same("later fragment", &out2, &wlater);
	assert_true(kt_pkt_ip_csum_ok(&out1) && kt_pkt_ip_csum_ok(&out2));
	assert_true(kt_pkt_l4_csum_ok(&out1, &out2));
	assert_int_equal(TC_STAT(e, first_frags), 1);
	assert_int_equal(TC_STAT(e, frags), 1);

	/* The reply, fragmented too, comes back from the VIP. */
	s = (struct kt_pkt_spec){ .family = family, .proto = IPPROTO_UDP, .src = be, .dst = cl,
				  .sport = 8080, .dport = 40010, .frag = KT_FRAG_FIRST,
				  .frag_id = 0x777 };
	want = s;
	want.src = vip;
	want.sport = 80;
	kt_pkt_build(&s, &first);
	kt_pkt_build(&want, &wfirst);
	s.frag = want.frag = KT_FRAG_LATER;
	kt_pkt_build(&s, &later);
	kt_pkt_build(&want, &wlater);
	run(e, false, &first, &out1, ACT_OK);
	assert_same("first reply fragment", &out1, &wfirst);
	run(e, false, &later, &out2, ACT_OK);
	assert_same("later reply fragment", &out2, &wlater);
	assert_true(kt_pkt_l4_csum_ok(&out1, &out2));

	/* A later fragment of a datagram whose first fragment was not seen. */
	s = (struct kt_pkt_spec){ .family = family, .proto = IPPROTO_UDP, .src = cl, .dst = vip,
				  .sport = 40011, .dport = 80, .frag = KT_FRAG_LATER,
				  .frag_id = 0x4343 };
	untouched_spec(e, true, &s);
	assert_int_equal(TC_STAT(e, frags), 2);
}

static void test_fragments_v4(void **state) { fragments(start(state), 4); }
static void test_fragments_v6(void **state) { fragments(start(state), 6); }

/*
 * A weight change moves new flows only: the flow keeps its backend while
 * the service still lists it, a retransmitted SYN too; a new connection on
 * the same 5-tuple (another initial sequence number) picks again. An endpoint that leaves: its TCP flow is
 * dropped and counted, a new SYN on the same 5-tuple and a UDP datagram
 * pick again.
 */
static void test_apply(void **state)
{
	struct kt_env *e = start(state);
	struct kt_pkt_spec tcp = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				   .sport = 40020, .dport = 80, .tcp_flags = TH_SYN };
	struct kt_pkt_spec udp = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				   .sport = 40021, .dport = 80, .payload = 10 };
	struct kt_pkt_spec want = tcp, uwant = udp;
	struct kt_pkt p, out;

	want.dst = uwant.dst = BE4;
	want.dport = uwant.dport = 8080;
	xlate(e, true, &tcp, &want);
	xlate(e, true, &udp, &uwant);
	tcp.sport = want.sport = 40023;
	xlate(e, true, &tcp, &want);

	/* All new flows to v2 now: the running ones stay on v1. */
	config(e, BE4, 0, 1);
	tcp.sport = want.sport = 40020;
	tcp.tcp_flags = want.tcp_flags = TH_ACK;
	xlate(e, true, &tcp, &want);
	xlate(e, true, &udp, &uwant);
	/* A retransmitted SYN (same sequence number) keeps the flow's backend... */
	tcp.tcp_flags = want.tcp_flags = TH_SYN;
	xlate(e, true, &tcp, &want);
	/* ...a new connection on a used 5-tuple (another sequence number) picks afresh. */
	tcp.sport = want.sport = 40023;
	tcp.seq = want.seq = 0x55550000;
	want.dst = BE4_V2;
	xlate(e, true, &tcp, &want);
	tcp.seq = want.seq = 0;
	tcp.sport = want.sport = 40022;
	xlate(e, true, &tcp, &want);

	/* v1's endpoint is replaced; weight back to v1. */
	config(e, BE4_NEW, 1, 0);
	tcp.sport = 40020;
	tcp.tcp_flags = TH_ACK;
	kt_pkt_build(&tcp, &p);
	run(e, true, &p, &out, ACT_SHOT);
	assert_int_equal(TC_STAT(e, stale), 1);
	/* The same 5-tuple's new SYN, and the UDP flow, pick again. */
	tcp.tcp_flags = want.tcp_flags = TH_SYN;
	want.sport = 40020;
	want.dst = BE4_NEW;
	xlate(e, true, &tcp, &want);
	uwant.dst = BE4_NEW;
	xlate(e, true, &udp, &uwant);
	assert_int_equal(TC_STAT(e, stale), 1);
	assert_int_equal(TC_STAT(e, new_flows), 7);
}

/*
 * A connection straight to a backend from a client port that an old VIP
 * flow to the same backend used: its replies are not the VIP flow's.
 */
static void test_direct_after_vip(void **state)
{
	struct kt_env *e = start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .sport = 40040, .dport = 80, .tcp_flags = TH_SYN };
	struct kt_pkt_spec want = s, reply = { .family = 4, .proto = IPPROTO_TCP, .src = BE4,
					       .dst = CL4, .sport = 8080, .dport = 40040,
					       .tcp_flags = TH_SYN | TH_ACK };

	want.dst = BE4;
	want.dport = 8080;
	xlate(e, true, &s, &want);
	/* The same client port, straight to the backend: untouched, and so is its reply. */
	s.dst = BE4;
	s.dport = 8080;
	untouched_spec(e, true, &s);
	untouched_spec(e, false, &reply);
	assert_int_equal(TC_STAT(e, rev), 0);
}

/*
 * ICMP errors about a translated flow reach the client as about the VIP:
 * from a router on the way (fragmentation needed / packet too big: PMTU
 * discovery) the quote changes, from the backend itself its source too.
 * An error about a flow that was never translated is left alone.
 */
static void icmp_errors(struct kt_env *e, int family)
{
	const char *cl = family == 4 ? CL4 : CL6, *vip = family == 4 ? VIP4 : VIP6;
	const char *be = family == 4 ? BE4 : BE6, *router = family == 4 ? "198.18.1.254" : "fd00:18:1::fe";
	struct kt_pkt_spec s = { .family = family, .proto = IPPROTO_TCP, .src = cl, .dst = vip,
				 .sport = 40050, .dport = 80, .tcp_flags = TH_SYN, .payload = 0 };
	struct kt_pkt_spec as_sent = s;
	struct kt_pkt q_sent, q_vip, in, want, out;

	as_sent.dst = be;
	as_sent.dport = 8080;
	xlate(e, true, &s, &as_sent);
	kt_pkt_build(&as_sent, &q_sent);
	kt_pkt_build(&s, &q_vip);

	kt_pkt_icmp_error(&q_sent, router, cl, &in);
	kt_pkt_icmp_error(&q_vip, router, cl, &want);
	run(e, false, &in, &out, ACT_OK);
	assert_same("ICMP error from a router", &out, &want);
	assert_true(kt_pkt_ip_csum_ok(&out) && kt_pkt_icmp_csum_ok(&out));

	kt_pkt_icmp_error(&q_sent, be, cl, &in);
	kt_pkt_icmp_error(&q_vip, vip, cl, &want);
	run(e, false, &in, &out, ACT_OK);
	assert_same("ICMP error from the backend", &out, &want);
	assert_true(kt_pkt_ip_csum_ok(&out) && kt_pkt_icmp_csum_ok(&out));
	assert_int_equal(TC_STAT(e, icmp), 2);

	/* The client's error about a reply (VIP -> client as it got it) goes to the backend. */
	s = (struct kt_pkt_spec){ .family = family, .proto = IPPROTO_TCP, .src = vip, .dst = cl,
				  .sport = 80, .dport = 40050, .tcp_flags = TH_SYN | TH_ACK };
	kt_pkt_build(&s, &q_vip);
	s.src = be;
	s.sport = 8080;
	kt_pkt_build(&s, &q_sent);
	kt_pkt_icmp_error(&q_vip, cl, vip, &in);
	kt_pkt_icmp_error(&q_sent, cl, be, &want);
	run(e, true, &in, &out, ACT_OK);
	assert_same("ICMP error from the client", &out, &want);
	assert_true(kt_pkt_ip_csum_ok(&out) && kt_pkt_icmp_csum_ok(&out));
	assert_int_equal(TC_STAT(e, icmp), 3);

	/* About another client port: no flow, no change, either way. */
	as_sent.sport = 40051;
	kt_pkt_build(&as_sent, &q_sent);
	kt_pkt_icmp_error(&q_sent, router, cl, &in);
	untouched(e, false, &in, ACT_OK, "ICMP error about no flow");
	s.dport = 40051;
	s.src = vip;
	s.sport = 80;
	kt_pkt_build(&s, &q_vip);
	kt_pkt_icmp_error(&q_vip, cl, vip, &in);
	untouched(e, true, &in, ACT_OK, "client's ICMP error about no flow");
	assert_int_equal(TC_STAT(e, icmp), 3);
}

static void test_icmp_v4(void **state) { icmp_errors(start(state), 4); }
static void test_icmp_v6(void **state) { icmp_errors(start(state), 6); }

/* A share with no endpoint: the new flow's packet is dropped and counted as refused. */
static void test_refused(void **state)
{
	struct kt_env *e = start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .sport = 40030, .dport = 80, .tcp_flags = TH_SYN };
	struct json_object *st;
	struct kt_pkt p, out;

	config(e, "", 1, 0);
	kt_pkt_build(&s, &p);
	run(e, true, &p, &out, ACT_SHOT);
	assert_int_equal(TC_STAT(e, refused), 1);
	st = kt_status(e);
	assert_int_equal(kt_status_field(kt_status_svc(st, VIP4, 80, "TCP"), "refused"), 1);
	json_object_put(st);
}

/* ---- flow timeouts (bpf/tc.bpf.c ct_expired, user/datapath/ct_gc.c) ---- */

#define T_TCP	1000	/* the timeouts these tests run with, seconds */
#define T_CLOSE	100
#define T_UDP	300

static struct kt_env *start_timeouts(void **state)
{
	struct kt_env *e = *state;

	assert_non_null(e);
	e->tc_tcp_timeout_s = T_TCP;
	e->tc_close_timeout_s = T_CLOSE;
	e->tc_udp_timeout_s = T_UDP;
	return start(state);
}

static int ct_fd(struct kt_env *e)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ks_ct", e->pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	return fd;
}

/* The ks_ct key of a packet src:sport -> dst:dport (IPv4) in direction dir. */
static struct ks_ct_key ct_key(int proto, const char *src, const char *dst, uint16_t sport,
			       uint16_t dport, uint8_t dir)
{
	struct ks_ct_key k = { .sport = htons(sport), .dport = htons(dport), .proto = proto,
			       .family = 4, .dir = dir };

	assert_int_equal(inet_pton(AF_INET, src, k.src), 1);
	assert_int_equal(inet_pton(AF_INET, dst, k.dst), 1);
	return k;
}

static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Make entry k look idle for secs seconds (its last packet that long ago)
 * or, with secs < 0, as an older build left it: never stamped (0).
 */
static void age(struct kt_env *e, const struct ks_ct_key *k, int secs)
{
	struct ks_ct_ent v;
	int fd = ct_fd(e);

	assert_true(coarse_ns() > 2ULL * T_TCP * 1000000000ULL);	/* booted long enough ago */
	assert_int_equal(bpf_map_lookup_elem(fd, k, &v), 0);
	v.last_seen = secs < 0 ? 0 : coarse_ns() - (uint64_t)secs * 1000000000ULL;
	assert_int_equal(bpf_map_update_elem(fd, k, &v, BPF_EXIST), 0);
	close(fd);
}

/* The flow client:sport <-> VIP4:80, its entry (replies stamp it too) aged secs. */
static void age_flow(struct kt_env *e, int proto, uint16_t sport, int secs)
{
	struct ks_ct_key f = ct_key(proto, CL4, VIP4, sport, 80, KS_CT_FWD);

	age(e, &f, secs);
}

/* A reply of the flow client:sport <-> VIP4:80 from backend be:8080: comes from the VIP. */
static void reply_of(struct kt_env *e, int proto, uint16_t sport, const char *be,
		     uint8_t tcp_flags)
{
	struct kt_pkt_spec r = { .family = 4, .proto = proto, .src = be, .dst = CL4, .sport = 8080,
				 .dport = sport, .tcp_flags = tcp_flags,
				 .payload = proto == IPPROTO_UDP ? 10 : 0 };
	struct kt_pkt_spec rw = r;

	rw.src = VIP4;
	rw.sport = 80;
	xlate(e, false, &r, &rw);
}

static bool ct_has(struct kt_env *e, const struct ks_ct_key *k)
{
	struct ks_ct_ent v;
	int fd = ct_fd(e);
	bool yes = !bpf_map_lookup_elem(fd, k, &v);

	close(fd);
	return yes;
}

/*
 * UDP: a flow idle for less than --tc-udp-timeout keeps its backend across
 * a weight change; replies keep it alive too (they stamp the flow's one
 * entry); idle for longer, its next
 * datagram is a new flow and picks with the weights in force.
 */
static void test_expiry_udp(void **state)
{
	struct kt_env *e = start_timeouts(state);
	struct kt_pkt_spec in = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				  .sport = 40040, .dport = 80, .payload = 10 };
	struct kt_pkt_spec want = in;
	struct ks_ct_key f = ct_key(IPPROTO_UDP, CL4, VIP4, 40040, 80, KS_CT_FWD);

	want.dst = BE4;
	want.dport = 8080;
	xlate(e, true, &in, &want);
	config(e, BE4, 0, 1);
	age_flow(e, IPPROTO_UDP, 40040, T_UDP - 1);
	xlate(e, true, &in, &want);
	/* The client was quiet for longer than the timeout, the backend was not. */
	age(e, &f, T_UDP + 1);
	reply_of(e, IPPROTO_UDP, 40040, BE4, 0);
	xlate(e, true, &in, &want);
	assert_int_equal(TC_STAT(e, expired), 0);
	/* Both quiet: the flow is over; the next datagram picks v2. */
	age_flow(e, IPPROTO_UDP, 40040, T_UDP + 1);
	want.dst = BE4_V2;
	xlate(e, true, &in, &want);
	assert_int_equal(TC_STAT(e, expired), 1);
	assert_int_equal(TC_STAT(e, new_flows), 2);
}

/*
 * TCP: an established flow idle for longer than --tc-tcp-timeout is no
 * flow any more: its segments pass untouched, counted once in expired and
 * then as segments without entry. After a FIN the short timeout applies.
 * An entry from a build without timestamps (last_seen 0) never counts as idle.
 */
static void test_expiry_tcp(void **state)
{
	struct kt_env *e = start_timeouts(state);
	struct kt_pkt_spec in = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				  .sport = 40041, .dport = 80, .tcp_flags = TH_SYN };
	struct kt_pkt_spec want = in;
	struct ks_ct_key f = ct_key(IPPROTO_TCP, CL4, VIP4, 40041, 80, KS_CT_FWD);

	want.dst = BE4;
	want.dport = 8080;
	xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40041, T_TCP - 1);
	xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40041, -1);
	xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40041, T_TCP + 1);
	untouched_spec(e, true, &in);
	assert_false(ct_has(e, &f));
	untouched_spec(e, true, &in);
	assert_int_equal(TC_STAT(e, expired), 1);
	assert_int_equal(TC_STAT(e, no_syn), 2);

	/* A FIN: idle for more than --tc-close-timeout is enough now. */
	in.sport = want.sport = 40042;
	in.tcp_flags = want.tcp_flags = TH_SYN;
	xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_FIN | TH_ACK;
	xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE - 1);
	xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE + 1);
	untouched_spec(e, true, &in);
	assert_int_equal(TC_STAT(e, expired), 2);
	/* A new connection on the 5-tuple is a new flow, with the long timeout again. */
	in.tcp_flags = want.tcp_flags = TH_SYN;
	in.seq = want.seq = 0x77770000;
	xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE + 1);
	xlate(e, true, &in, &want);
	assert_int_equal(TC_STAT(e, expired), 2);
	assert_int_equal(TC_STAT(e, new_flows), 3);
}

/*
 * The agent's sweep deletes the flows nobody sends on once they are idle,
 * by the datapath's rule, and no other: a live flow, one whose replies
 * keep it alive, one within its timeout stay; a reverse entry left alone
 * (as a flow of an older build leaves it once its forward entry is gone)
 * goes when idle; an entry an older build made without timestamp is
 * stamped, not deleted.
 */
static void test_sweep(void **state)
{
	struct kt_env *e = start_timeouts(state);
	struct kt_pkt_spec u = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				 .dport = 80, .payload = 10 };
	struct kt_pkt_spec t = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .dport = 80, .tcp_flags = TH_SYN };
	struct ks_ct_ent rev = { .port = htons(80), .last_seen = coarse_ns() };
	struct kt_pkt_spec uw, tw;
	struct ks_ct_key k;
	struct ks_ct_ent v;
	unsigned int deleted = 99;
	uint16_t port;
	int fd;

	/* UDP 40050 fresh, 40051 idle, 40052 idle with a fresh reply, 40053 reverse alone, 40054 old. */
	for (port = 40050; port <= 40054; port++) {
		u.sport = port;
		uw = u;
		uw.dst = BE4;
		uw.dport = 8080;
		xlate(e, true, &u, &uw);
	}
	age_flow(e, IPPROTO_UDP, 40051, T_UDP + 1);
	age_flow(e, IPPROTO_UDP, 40052, T_UDP + 1);
	reply_of(e, IPPROTO_UDP, 40052, BE4, 0);
	k = ct_key(IPPROTO_UDP, CL4, VIP4, 40053, 80, KS_CT_FWD);
	fd = ct_fd(e);
	assert_int_equal(bpf_map_delete_elem(fd, &k), 0);
	k = ct_key(IPPROTO_UDP, BE4, CL4, 8080, 40053, KS_CT_REV);
	assert_int_equal(inet_pton(AF_INET, VIP4, rev.addr), 1);
	assert_int_equal(bpf_map_update_elem(fd, &k, &rev, BPF_NOEXIST), 0);
	close(fd);
	age(e, &k, T_UDP + 1);
	age_flow(e, IPPROTO_UDP, 40054, -1);
	/* TCP 40055 within its timeout; 40056 closed by the backend's FIN, idle past the short one. */
	for (port = 40055; port <= 40056; port++) {
		t.sport = port;
		tw = t;
		tw.dst = BE4;
		tw.dport = 8080;
		xlate(e, true, &t, &tw);
	}
	reply_of(e, IPPROTO_TCP, 40056, BE4, TH_FIN | TH_ACK);
	age_flow(e, IPPROTO_TCP, 40055, T_TCP - 1);
	age_flow(e, IPPROTO_TCP, 40056, T_CLOSE + 1);
	assert_int_equal(kt_ct_count(e), 7);

	assert_int_equal(ks_dp_ct_gc(e->dp, &deleted), 0);
	assert_int_equal(deleted, 3);
	assert_int_equal(kt_ct_count(e), 4);
	k = ct_key(IPPROTO_UDP, CL4, VIP4, 40051, 80, KS_CT_FWD);
	assert_false(ct_has(e, &k));
	k = ct_key(IPPROTO_UDP, BE4, CL4, 8080, 40053, KS_CT_REV);
	assert_false(ct_has(e, &k));
	k = ct_key(IPPROTO_TCP, CL4, VIP4, 40056, 80, KS_CT_FWD);
	assert_false(ct_has(e, &k));
	k = ct_key(IPPROTO_UDP, CL4, VIP4, 40052, 80, KS_CT_FWD);
	assert_true(ct_has(e, &k));
	/* The old entry got a time: it is idle from now on. */
	k = ct_key(IPPROTO_UDP, CL4, VIP4, 40054, 80, KS_CT_FWD);
	fd = ct_fd(e);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
	close(fd);
	assert_true(v.last_seen > 0);
	/* Nothing more to do a second time. */
	assert_int_equal(ks_dp_ct_gc(e->dp, &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(TC_STAT(e, expired), 0);
}

/* VIP4 and five more addresses of gw, all split to v1 (BE4). */
#define N_SHARED	6

static void shared_vip(char *buf, size_t len, int i)
{
	snprintf(buf, len, "198.19.0.%d", 10 + i);
}

/*
 * One backend behind more VIPs than ks_ct_vips lists per backend
 * (KS_CT_VIPS, 4): the replies of every flow come from its own VIP; the
 * flows beyond the list have a reverse entry besides. A client port used
 * again through another VIP to the same backend (the first connection is
 * over: both live, the backend would see one) gets the replies from the
 * new VIP, and the old flow's entry is gone.
 */
static void test_shared_backend(void **state)
{
	struct kt_env *e = *state;
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dport = 80,
				 .tcp_flags = TH_SYN };
	struct kt_pkt_spec want, r = { .family = 4, .proto = IPPROTO_TCP, .src = BE4, .dst = CL4,
				       .sport = 8080, .tcp_flags = TH_SYN | TH_ACK };
	char vips[N_SHARED][32], addrs[256] = VIP6;
	struct kt_buf b = {};
	struct ks_ct_key k;
	int i;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	for (i = 0; i < N_SHARED; i++) {
		shared_vip(vips[i], sizeof(vips[i]), i);
		snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), " %s", vips[i]);
	}
	kt_yaml_gateway(&b, "gw", addrs, "tcp:TCP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", BE4);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=1");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);

	for (i = 0; i < N_SHARED; i++) {
		s.dst = vips[i];
		s.sport = (uint16_t)(41000 + i);
		want = s;
		want.dst = BE4;
		want.dport = 8080;
		xlate(e, true, &s, &want);
	}
	/* Four flows with one entry, two with a reverse entry as well. */
	assert_int_equal(kt_ct_count(e), N_SHARED + 2);
	for (i = N_SHARED - 1; i >= 0; i--) {
		r.dport = (uint16_t)(41000 + i);
		want = r;
		want.src = vips[i];
		want.sport = 80;
		xlate(e, false, &r, &want);
	}
	/* Port 41000 again, through VIP 1 (listed), then 41001 through VIP 5 (not listed). */
	for (i = 0; i < 2; i++) {
		s.dst = vips[i ? 5 : 1];
		s.sport = r.dport = (uint16_t)(41000 + i);
		s.seq = 0x51510000;
		want = s;
		want.dst = BE4;
		want.dport = 8080;
		xlate(e, true, &s, &want);
		want = r;
		want.src = s.dst;
		want.sport = 80;
		xlate(e, false, &r, &want);
		k = ct_key(IPPROTO_TCP, CL4, vips[i], 41000 + i, 80, KS_CT_FWD);
		assert_false(ct_has(e, &k));
	}
	assert_int_equal(TC_STAT(e, new_flows), N_SHARED + 2);
	assert_int_equal(TC_STAT(e, rev), N_SHARED + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tcp_v4, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_v6, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_udp_v4, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_udp_v6, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_v4_options, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_udp_v6_ext_headers, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_udp_no_csum, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_untouched, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_fragments_v4, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_fragments_v6, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_apply, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_direct_after_vip, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_icmp_v4, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_icmp_v6, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_refused, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_udp, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_tcp, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_sweep, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_shared_backend, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
