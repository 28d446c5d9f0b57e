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
#include "tc_frames.h"
#include "datapath/dp.h"

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
	kt_tc_xlate(e, true, &in, &want);
	/* The flow's next packet follows its entry. */
	in.tcp_flags = want.tcp_flags = TH_ACK;
	in.payload = want.payload = 100;
	kt_tc_xlate(e, true, &in, &want);
	/* The reply comes back from the VIP. */
	reply = (struct kt_pkt_spec){ .family = family, .proto = proto, .src = be, .dst = cl,
				      .sport = 8080, .dport = 40000, .tcp_flags = TH_SYN | TH_ACK,
				      .payload = 7 };
	reply_want = reply;
	reply_want.src = vip;
	reply_want.sport = 80;
	kt_tc_xlate(e, false, &reply, &reply_want);
	assert_int_equal(TC_STAT(e, new_flows) - new0, 1);
	assert_int_equal(TC_STAT(e, fwd) - fwd0, 2);
	assert_int_equal(TC_STAT(e, rev) - rev0, 1);
}

static void test_tcp_v4(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct json_object *st;

	flow(e, 4, IPPROTO_TCP, false);
	/* The socket path's counters count the TC path's flows too. */
	st = kt_status(e);
	assert_int_equal(kt_status_ep(kt_status_svc(st, VIP4, 80, "TCP"), BE4, 8080), 1);
	assert_int_equal(kt_status_field(kt_status_svc(st, VIP4, 80, "TCP"), "connections"), 1);
	json_object_put(st);
}

static void test_tcp_v6(void **state) { flow(kt_tc_start(state), 6, IPPROTO_TCP, false); }
static void test_udp_v4(void **state) { flow(kt_tc_start(state), 4, IPPROTO_UDP, false); }
static void test_udp_v6(void **state) { flow(kt_tc_start(state), 6, IPPROTO_UDP, false); }
/* IPv4 options and IPv6 extension headers move the L4 header. */
static void test_tcp_v4_options(void **state) { flow(kt_tc_start(state), 4, IPPROTO_TCP, true); }
static void test_udp_v6_ext_headers(void **state) { flow(kt_tc_start(state), 6, IPPROTO_UDP, true); }

/* An IPv4 UDP datagram without checksum keeps none (0), however its addresses change. */
static void test_udp_no_csum(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct kt_pkt_spec in = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				  .sport = 40001, .dport = 80, .payload = 20, .no_udp_csum = true };
	struct kt_pkt_spec want = in;

	want.dst = BE4;
	want.dport = 8080;
	kt_tc_xlate(e, true, &in, &want);
}

/* What is not a VIP flow comes out bit for bit unchanged, malformed or not. */
static void test_untouched(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = BE4,
				 .sport = 40002, .dport = 8080, .tcp_flags = TH_SYN };
	struct kt_pkt p;

	/* To a backend address directly, to the VIP on a port it does not serve. */
	kt_tc_untouched_spec(e, true, &s);
	s.dst = VIP4;
	s.dport = 81;
	kt_tc_untouched_spec(e, true, &s);
	s.family = 6, s.src = CL6, s.dst = VIP6;
	kt_tc_untouched_spec(e, true, &s);
	/* A TCP segment without SYN and without entry is not ours. */
	s.family = 4, s.src = CL4, s.dst = VIP4, s.dport = 80, s.tcp_flags = TH_ACK;
	kt_tc_untouched_spec(e, true, &s);
	assert_int_equal(TC_STAT(e, no_syn), 1);
	/* A reply with no flow behind it. */
	s.src = BE4, s.dst = CL4, s.sport = 8080, s.dport = 40002;
	kt_tc_untouched_spec(e, false, &s);

	/* Malformed: each would be a VIP SYN if it were whole. */
	s = (struct kt_pkt_spec){ .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				  .sport = 40003, .dport = 80, .tcp_flags = TH_SYN };
	kt_pkt_build(&s, &p);
	p.len = 14 + 20 + 10;		/* TCP header cut short (and tot_len beyond the frame) */
	kt_tc_untouched(e, true, &p, ACT_OK, "truncated TCP header");
	kt_pkt_build(&s, &p);
	p.b[14 + 2] = 0x01;		/* tot_len 296 + 14 > frame */
	kt_tc_untouched(e, true, &p, ACT_OK, "tot_len beyond the frame");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x44;			/* ihl 4: below the minimum */
	kt_tc_untouched(e, true, &p, ACT_OK, "ihl 4");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x4f;			/* ihl 15: options beyond tot_len */
	kt_tc_untouched(e, true, &p, ACT_OK, "ihl 15");
	kt_pkt_build(&s, &p);
	p.b[14] = 0x55;			/* version 5 */
	kt_tc_untouched(e, true, &p, ACT_OK, "version 5");
	kt_pkt_build(&s, &p);
	p.len = 14 + 20 + 10;		/* tot_len agrees, but 10 bytes cannot hold a TCP header */
	p.b[14 + 3] = 30;
	kt_tc_untouched(e, true, &p, ACT_OK, "10-byte TCP segment");
	/* (A frame cut inside the IPv4 header: BPF_PROG_TEST_RUN itself refuses to run it.) */
	kt_pkt_build(&s, &p);
	p.b[12] = 0x08, p.b[13] = 0x06;	/* ARP ethertype */
	kt_tc_untouched(e, true, &p, ACT_OK, "ARP");
	s.family = 6, s.src = CL6, s.dst = VIP6;
	kt_pkt_build(&s, &p);
	p.b[14 + 4] = 0x10;		/* payload_len 4096 + 20 */
	kt_tc_untouched(e, true, &p, ACT_OK, "IPv6 payload_len beyond the frame");
	s.ext_headers = true;
	kt_pkt_build(&s, &p);
	p.len = 14 + 40 + 8 + 4;	/* cut inside the destination options */
	p.b[14 + 5] = 12;
	kt_tc_untouched(e, true, &p, ACT_OK, "IPv6 extension header cut short");
	kt_pkt_build(&s, &p);
	p.b[14 + 40] = 51;		/* hop-by-hop says AH follows: not parsed */
	kt_tc_untouched(e, true, &p, ACT_OK, "IPv6 AH");
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
	kt_tc_run(e, true, &first, &out1, ACT_OK);
	kt_tc_assert_same("first fragment", &out1, &wfirst);
	kt_tc_run(e, true, &later, &out2, ACT_OK);
	kt_tc_assert_same("later fragment", &out2, &wlater);
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
	kt_tc_run(e, false, &first, &out1, ACT_OK);
	kt_tc_assert_same("first reply fragment", &out1, &wfirst);
	kt_tc_run(e, false, &later, &out2, ACT_OK);
	kt_tc_assert_same("later reply fragment", &out2, &wlater);
	assert_true(kt_pkt_l4_csum_ok(&out1, &out2));

	/* A later fragment of a datagram whose first fragment was not seen. */
	s = (struct kt_pkt_spec){ .family = family, .proto = IPPROTO_UDP, .src = cl, .dst = vip,
				  .sport = 40011, .dport = 80, .frag = KT_FRAG_LATER,
				  .frag_id = 0x4343 };
	kt_tc_untouched_spec(e, true, &s);
	assert_int_equal(TC_STAT(e, frags), 2);
}

static void test_fragments_v4(void **state) { fragments(kt_tc_start(state), 4); }
static void test_fragments_v6(void **state) { fragments(kt_tc_start(state), 6); }

/*
 * A weight change moves new flows only: the flow keeps its backend while
 * the service still lists it, a retransmitted SYN too; a new connection on
 * the same 5-tuple (another initial sequence number) picks again. An endpoint that leaves: its TCP flow is
 * dropped and counted, a new SYN on the same 5-tuple and a UDP datagram
 * pick again.
 */
static void test_apply(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct kt_pkt_spec tcp = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				   .sport = 40020, .dport = 80, .tcp_flags = TH_SYN };
	struct kt_pkt_spec udp = { .family = 4, .proto = IPPROTO_UDP, .src = CL4, .dst = VIP4,
				   .sport = 40021, .dport = 80, .payload = 10 };
	struct kt_pkt_spec want = tcp, uwant = udp;
	struct kt_pkt p, out;

	want.dst = uwant.dst = BE4;
	want.dport = uwant.dport = 8080;
	kt_tc_xlate(e, true, &tcp, &want);
	kt_tc_xlate(e, true, &udp, &uwant);
	tcp.sport = want.sport = 40023;
	kt_tc_xlate(e, true, &tcp, &want);

	/* All new flows to v2 now: the running ones stay on v1. */
	kt_tc_config(e, BE4, 0, 1);
	tcp.sport = want.sport = 40020;
	tcp.tcp_flags = want.tcp_flags = TH_ACK;
	kt_tc_xlate(e, true, &tcp, &want);
	kt_tc_xlate(e, true, &udp, &uwant);
	/* A retransmitted SYN (same sequence number) keeps the flow's backend... */
	tcp.tcp_flags = want.tcp_flags = TH_SYN;
	kt_tc_xlate(e, true, &tcp, &want);
	/* ...a new connection on a used 5-tuple (another sequence number) picks afresh. */
	tcp.sport = want.sport = 40023;
	tcp.seq = want.seq = 0x55550000;
	want.dst = BE4_V2;
	kt_tc_xlate(e, true, &tcp, &want);
	tcp.seq = want.seq = 0;
	tcp.sport = want.sport = 40022;
	kt_tc_xlate(e, true, &tcp, &want);

	/* v1's endpoint is replaced; weight back to v1. */
	kt_tc_config(e, BE4_NEW, 1, 0);
	tcp.sport = 40020;
	tcp.tcp_flags = TH_ACK;
	kt_pkt_build(&tcp, &p);
	kt_tc_run(e, true, &p, &out, ACT_SHOT);
	assert_int_equal(TC_STAT(e, stale), 1);
	/* The same 5-tuple's new SYN, and the UDP flow, pick again. */
	tcp.tcp_flags = want.tcp_flags = TH_SYN;
	want.sport = 40020;
	want.dst = BE4_NEW;
	kt_tc_xlate(e, true, &tcp, &want);
	uwant.dst = BE4_NEW;
	kt_tc_xlate(e, true, &udp, &uwant);
	assert_int_equal(TC_STAT(e, stale), 1);
	assert_int_equal(TC_STAT(e, new_flows), 7);
}

/*
 * A connection straight to a backend from a client port that an old VIP
 * flow to the same backend used: its replies are not the VIP flow's.
 */
static void test_direct_after_vip(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .sport = 40040, .dport = 80, .tcp_flags = TH_SYN };
	struct kt_pkt_spec want = s, reply = { .family = 4, .proto = IPPROTO_TCP, .src = BE4,
					       .dst = CL4, .sport = 8080, .dport = 40040,
					       .tcp_flags = TH_SYN | TH_ACK };

	want.dst = BE4;
	want.dport = 8080;
	kt_tc_xlate(e, true, &s, &want);
	/* The same client port, straight to the backend: untouched, and so is its reply. */
	s.dst = BE4;
	s.dport = 8080;
	kt_tc_untouched_spec(e, true, &s);
	kt_tc_untouched_spec(e, false, &reply);
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
	kt_tc_xlate(e, true, &s, &as_sent);
	kt_pkt_build(&as_sent, &q_sent);
	kt_pkt_build(&s, &q_vip);

	kt_pkt_icmp_error(&q_sent, router, cl, &in);
	kt_pkt_icmp_error(&q_vip, router, cl, &want);
	kt_tc_run(e, false, &in, &out, ACT_OK);
	kt_tc_assert_same("ICMP error from a router", &out, &want);
	assert_true(kt_pkt_ip_csum_ok(&out) && kt_pkt_icmp_csum_ok(&out));

	kt_pkt_icmp_error(&q_sent, be, cl, &in);
	kt_pkt_icmp_error(&q_vip, vip, cl, &want);
	kt_tc_run(e, false, &in, &out, ACT_OK);
	kt_tc_assert_same("ICMP error from the backend", &out, &want);
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
	kt_tc_run(e, true, &in, &out, ACT_OK);
	kt_tc_assert_same("ICMP error from the client", &out, &want);
	assert_true(kt_pkt_ip_csum_ok(&out) && kt_pkt_icmp_csum_ok(&out));
	assert_int_equal(TC_STAT(e, icmp), 3);

	/* About another client port: no flow, no change, either way. */
	as_sent.sport = 40051;
	kt_pkt_build(&as_sent, &q_sent);
	kt_pkt_icmp_error(&q_sent, router, cl, &in);
	kt_tc_untouched(e, false, &in, ACT_OK, "ICMP error about no flow");
	s.dport = 40051;
	s.src = vip;
	s.sport = 80;
	kt_pkt_build(&s, &q_vip);
	kt_pkt_icmp_error(&q_vip, cl, vip, &in);
	kt_tc_untouched(e, true, &in, ACT_OK, "client's ICMP error about no flow");
	assert_int_equal(TC_STAT(e, icmp), 3);
}

static void test_icmp_v4(void **state) { icmp_errors(kt_tc_start(state), 4); }
static void test_icmp_v6(void **state) { icmp_errors(kt_tc_start(state), 6); }

/* A share with no endpoint: the new flow's packet is dropped and counted as refused. */
static void test_refused(void **state)
{
	struct kt_env *e = kt_tc_start(state);
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .sport = 40030, .dport = 80, .tcp_flags = TH_SYN };
	struct json_object *st;
	struct kt_pkt p, out;

	kt_tc_config(e, "", 1, 0);
	kt_pkt_build(&s, &p);
	kt_tc_run(e, true, &p, &out, ACT_SHOT);
	assert_int_equal(TC_STAT(e, refused), 1);
	st = kt_status(e);
	assert_int_equal(kt_status_field(kt_status_svc(st, VIP4, 80, "TCP"), "refused"), 1);
	json_object_put(st);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
