// SPDX-License-Identifier: BSD-2-Clause
/*
 * The per-packet path's conntrack (bpf/tc.bpf.c, user/datapath/ct_gc.c) on
 * crafted frames, run with BPF_PROG_TEST_RUN as in test_tc_packets: flow
 * timeouts in the datapath and in the agent's sweep, and replies of flows
 * to a backend that several VIPs share.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "tc_frames.h"
#include "datapath/dp.h"

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
	return kt_tc_start(state);
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
	kt_tc_xlate(e, false, &r, &rw);
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
	kt_tc_xlate(e, true, &in, &want);
	kt_tc_config(e, BE4, 0, 1);
	age_flow(e, IPPROTO_UDP, 40040, T_UDP - 1);
	kt_tc_xlate(e, true, &in, &want);
	/* The client was quiet for longer than the timeout, the backend was not. */
	age(e, &f, T_UDP + 1);
	reply_of(e, IPPROTO_UDP, 40040, BE4, 0);
	kt_tc_xlate(e, true, &in, &want);
	assert_int_equal(TC_STAT(e, expired), 0);
	/* Both quiet: the flow is over; the next datagram picks v2. */
	age_flow(e, IPPROTO_UDP, 40040, T_UDP + 1);
	want.dst = BE4_V2;
	kt_tc_xlate(e, true, &in, &want);
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
	kt_tc_xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40041, T_TCP - 1);
	kt_tc_xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40041, -1);
	kt_tc_xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40041, T_TCP + 1);
	kt_tc_untouched_spec(e, true, &in);
	assert_false(ct_has(e, &f));
	kt_tc_untouched_spec(e, true, &in);
	assert_int_equal(TC_STAT(e, expired), 1);
	assert_int_equal(TC_STAT(e, no_syn), 2);

	/* A FIN: idle for more than --tc-close-timeout is enough now. */
	in.sport = want.sport = 40042;
	in.tcp_flags = want.tcp_flags = TH_SYN;
	kt_tc_xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_FIN | TH_ACK;
	kt_tc_xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE - 1);
	kt_tc_xlate(e, true, &in, &want);
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE + 1);
	kt_tc_untouched_spec(e, true, &in);
	assert_int_equal(TC_STAT(e, expired), 2);
	/* A new connection on the 5-tuple is a new flow, with the long timeout again. */
	in.tcp_flags = want.tcp_flags = TH_SYN;
	in.seq = want.seq = 0x77770000;
	kt_tc_xlate(e, true, &in, &want);
	in.tcp_flags = want.tcp_flags = TH_ACK;
	age_flow(e, IPPROTO_TCP, 40042, T_CLOSE + 1);
	kt_tc_xlate(e, true, &in, &want);
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
		kt_tc_xlate(e, true, &u, &uw);
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
		kt_tc_xlate(e, true, &t, &tw);
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
		kt_tc_xlate(e, true, &s, &want);
	}
	/* Four flows with one entry, two with a reverse entry as well. */
	assert_int_equal(kt_ct_count(e), N_SHARED + 2);
	for (i = N_SHARED - 1; i >= 0; i--) {
		r.dport = (uint16_t)(41000 + i);
		want = r;
		want.src = vips[i];
		want.sport = 80;
		kt_tc_xlate(e, false, &r, &want);
	}
	/* Port 41000 again, through VIP 1 (listed), then 41001 through VIP 5 (not listed). */
	for (i = 0; i < 2; i++) {
		s.dst = vips[i ? 5 : 1];
		s.sport = r.dport = (uint16_t)(41000 + i);
		s.seq = 0x51510000;
		want = s;
		want.dst = BE4;
		want.dport = 8080;
		kt_tc_xlate(e, true, &s, &want);
		want = r;
		want.src = s.dst;
		want.sport = 80;
		kt_tc_xlate(e, false, &r, &want);
		k = ct_key(IPPROTO_TCP, CL4, vips[i], 41000 + i, 80, KS_CT_FWD);
		assert_false(ct_has(e, &k));
	}
	assert_int_equal(TC_STAT(e, new_flows), N_SHARED + 2);
	assert_int_equal(TC_STAT(e, rev), N_SHARED + 2);
}

static void apply_v1(struct kt_env *e, const char *be)
{
	struct kt_buf b = {};

	kt_yaml_gateway(&b, "gw", VIP4, "tcp:TCP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", be);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=1");
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
}

/*
 * A pod replaced, as at every rollout: the sweep takes the gone backend's
 * slots out of the replies' index once no flow holds it (else the index
 * fills with pods that are gone and every new flow needs a reverse entry),
 * and keeps a listed one's.
 */
static void test_backend_gone(void **state)
{
	struct kt_env *e = *state;
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = CL4, .dst = VIP4,
				 .dport = 80, .sport = 42000, .tcp_flags = TH_SYN };
	struct kt_pkt_spec want = s;
	unsigned int deleted = 99;
	struct ks_ct_key k;
	int fd;

	assert_non_null(e);
	assert_int_equal(kt_dp_open(e, 4096, 65536), 0);
	apply_v1(e, BE4);
	want.dst = BE4;
	want.dport = 8080;
	kt_tc_xlate(e, true, &s, &want);
	assert_int_equal(kt_pin_count(e, "ks_ct_vips"), 1);
	/* Still listed: kept. */
	assert_int_equal(ks_dp_ct_gc(e->dp, &deleted), 0);
	assert_int_equal(kt_pin_count(e, "ks_ct_vips"), 1);

	apply_v1(e, BE4_NEW);
	s.sport = 42001;
	want = s;
	want.dst = BE4_NEW;
	want.dport = 8080;
	kt_tc_xlate(e, true, &s, &want);
	assert_int_equal(kt_pin_count(e, "ks_ct_vips"), 2);
	/* BE4's flow is still there: its replies may still come, so its slot stays. */
	assert_int_equal(ks_dp_ct_gc(e->dp, &deleted), 0);
	assert_int_equal(deleted, 0);	/* no flow was idle */
	assert_int_equal(kt_pin_count(e, "ks_ct_vips"), 2);
	/* Once it is gone (expired, or ended by its next packet), so is the slot. */
	k = ct_key(IPPROTO_TCP, CL4, VIP4, 42000, 80, KS_CT_FWD);
	fd = ct_fd(e);
	assert_int_equal(bpf_map_delete_elem(fd, &k), 0);
	close(fd);
	assert_int_equal(ks_dp_ct_gc(e->dp, &deleted), 0);
	assert_int_equal(kt_pin_count(e, "ks_ct_vips"), 1);
	/* A reply of the new flow still finds it through what is left. */
	s = (struct kt_pkt_spec){ .family = 4, .proto = IPPROTO_TCP, .src = BE4_NEW, .dst = CL4,
				  .sport = 8080, .dport = 42001, .tcp_flags = TH_SYN | TH_ACK };
	want = s;
	want.src = VIP4;
	want.sport = 80;
	kt_tc_xlate(e, false, &s, &want);
	assert_int_equal(TC_STAT(e, rev), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expiry_udp, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_tcp, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_sweep, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_shared_backend, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_backend_gone, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
