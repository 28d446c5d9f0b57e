// SPDX-License-Identifier: BSD-2-Clause
/*
 * The drain verdict per socket: a socket is destroyed only when its own
 * record says ksplit sent it to its peer for a VIP that no longer lists
 * that peer; everything else is kept.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "datapath/drain.h"

static struct ks_svc_key key4(const char *vip, int port, int proto)
{
	struct ks_svc_key k = { .port = htons(port), .proto = proto, .family = KS_FAMILY_V4 };

	inet_pton(AF_INET, vip, k.addr);
	return k;
}

static struct ks_backend be4(const char *addr, int port)
{
	struct ks_backend b = { .port = htons(port), .family = KS_FAMILY_V4 };

	inet_pton(AF_INET, addr, b.addr);
	return b;
}

/* Record that the socket went to be for VIP k. */
static void remember(struct ks_sock_ent *e, const struct ks_svc_key *k, const struct ks_backend *be)
{
	memcpy(e->vip, k->addr, sizeof(e->vip));
	memcpy(e->be, be->addr, sizeof(e->be));
	e->vip_port = k->port;
	e->be_port = be->port;
	e->family = k->family;
	e->used = 1;
}

static enum ks_drain_verdict judge4(const struct ks_drain_live *l, const struct ks_sock_ent *s,
				    const struct ks_backend *peer, int proto)
{
	__u32 dst[4] = { peer->addr[0] };

	return ks_drain_judge(l, s, AF_INET, proto, dst, peer->port);
}

static void test_only_the_vip_that_dropped_it(void **state)
{
	struct ks_svc_key a = key4("10.96.0.1", 80, IPPROTO_TCP), b = key4("10.96.0.2", 80, IPPROTO_TCP);
	struct ks_backend pod1 = be4("10.1.0.1", 8080), pod2 = be4("10.1.0.2", 8080);
	struct ks_drain_live *l;
	struct ks_sock_ent via_a = {}, via_b = {}, direct = {}, stale = {};

	(void)state;
	assert_int_equal(ks_drain_live_new(&l), 0);
	/* Room made first (as a reconcile does) or not, the set is the same. */
	assert_int_equal(ks_drain_live_reserve(l, 3), 0);
	/* A lists pod1 only now; B lists both. */
	assert_int_equal(ks_drain_live_add(l, &a, &pod1), 0);
	assert_int_equal(ks_drain_live_add(l, &b, &pod1), 0);
	assert_int_equal(ks_drain_live_add(l, &b, &pod2), 0);
	assert_int_equal(ks_drain_live_add(l, &b, &pod2), 0);	/* listed twice: one entry */

	remember(&via_a, &a, &pod2);
	remember(&via_b, &b, &pod2);
	assert_int_equal(judge4(l, &via_a, &pod2, IPPROTO_TCP), KS_DRAIN_DESTROY);
	assert_int_equal(judge4(l, &via_b, &pod2, IPPROTO_TCP), KS_DRAIN_KEEP);
	/* No record: a connection made to the pod IP itself. */
	assert_int_equal(judge4(l, &direct, &pod2, IPPROTO_TCP), KS_DRAIN_NOT_STEERED);
	/* A record for another peer than the socket's own says nothing about it. */
	remember(&stale, &a, &pod2);
	assert_int_equal(judge4(l, &stale, &pod1, IPPROTO_TCP), KS_DRAIN_NOT_STEERED);
	/* The service key includes the protocol: UDP on the same VIP is another service. */
	assert_int_equal(judge4(l, &via_b, &pod2, IPPROTO_UDP), KS_DRAIN_DESTROY);
	/* Another port of the same pod is another endpoint. */
	{
		struct ks_backend other = be4("10.1.0.2", 9090);

		assert_int_equal(judge4(l, &via_a, &other, IPPROTO_TCP), KS_DRAIN_NOT_STEERED);
	}
	ks_drain_live_free(l);
}

/*
 * A connected socket's record is the one entry its connect made: a UDP
 * socket that sent to VIP a unconnected and then connected to b through
 * the same pod is judged by b alone (the unconnected sends are in another
 * map, which drain does not read). Storage that was never filled says
 * nothing.
 */
static void test_the_connect_entry_decides(void **state)
{
	struct ks_svc_key a = key4("10.96.0.1", 80, IPPROTO_UDP);
	struct ks_svc_key b = key4("10.96.0.2", 80, IPPROTO_UDP);
	struct ks_backend pod = be4("10.1.0.1", 8080);
	struct ks_drain_live *l;
	struct ks_sock_ent s = {};

	(void)state;
	assert_int_equal(ks_drain_live_new(&l), 0);
	assert_int_equal(ks_drain_live_add(l, &b, &pod), 0);
	remember(&s, &b, &pod);
	assert_int_equal(judge4(l, &s, &pod, IPPROTO_UDP), KS_DRAIN_KEEP);
	remember(&s, &a, &pod);
	assert_int_equal(judge4(l, &s, &pod, IPPROTO_UDP), KS_DRAIN_DESTROY);
	s.used = 0;
	assert_int_equal(judge4(l, &s, &pod, IPPROTO_UDP), KS_DRAIN_NOT_STEERED);
	ks_drain_live_free(l);
}

static void test_mapped_and_v6_peers(void **state)
{
	struct ks_svc_key a = key4("10.96.0.1", 80, IPPROTO_TCP), a6 = { .port = htons(80),
		.proto = IPPROTO_TCP, .family = KS_FAMILY_V6 };
	struct ks_backend pod = be4("10.1.0.1", 8080), pod6 = { .port = htons(8080),
		.family = KS_FAMILY_V6 };
	struct ks_drain_live *l;
	struct ks_sock_ent s = {}, s6 = {};
	__u32 mapped[4] = { 0, 0, htonl(0xffff), pod.addr[0] };

	(void)state;
	inet_pton(AF_INET6, "fd00:10::a", a6.addr);
	inet_pton(AF_INET6, "fd00:1::1", pod6.addr);
	assert_int_equal(ks_drain_live_new(&l), 0);
	/* A dual-stack socket reached the v4 pod as ::ffff:10.1.0.1. */
	remember(&s, &a, &pod);
	assert_int_equal(ks_drain_judge(l, &s, AF_INET6, IPPROTO_TCP, mapped, pod.port),
			 KS_DRAIN_DESTROY);
	assert_int_equal(ks_drain_live_add(l, &a, &pod), 0);
	assert_int_equal(ks_drain_judge(l, &s, AF_INET6, IPPROTO_TCP, mapped, pod.port),
			 KS_DRAIN_KEEP);
	remember(&s6, &a6, &pod6);
	assert_int_equal(ks_drain_judge(l, &s6, AF_INET6, IPPROTO_TCP, pod6.addr, pod6.port),
			 KS_DRAIN_DESTROY);
	assert_int_equal(ks_drain_live_add(l, &a6, &pod6), 0);
	assert_int_equal(ks_drain_judge(l, &s6, AF_INET6, IPPROTO_TCP, pod6.addr, pod6.port),
			 KS_DRAIN_KEEP);
	ks_drain_live_free(l);
}

/* The set grows past its first size without losing a member. */
static void test_live_set_grows(void **state)
{
	struct ks_svc_key k = key4("10.96.0.1", 80, IPPROTO_TCP);
	struct ks_drain_live *l;
	struct ks_sock_ent s = {};
	uint32_t i;

	(void)state;
	assert_int_equal(ks_drain_live_new(&l), 0);
	for (i = 0; i < 5000; i++) {
		struct ks_backend b = { .addr = { htonl(0x0a010000 + i) }, .port = htons(8080),
					.family = KS_FAMILY_V4 };

		assert_int_equal(ks_drain_live_add(l, &k, &b), 0);
	}
	for (i = 0; i < 5001; i++) {
		struct ks_backend b = { .addr = { htonl(0x0a010000 + i) }, .port = htons(8080),
					.family = KS_FAMILY_V4 };

		remember(&s, &k, &b);
		assert_int_equal(judge4(l, &s, &b, IPPROTO_TCP),
				 i < 5000 ? KS_DRAIN_KEEP : KS_DRAIN_DESTROY);
	}
	ks_drain_live_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_the_vip_that_dropped_it),
		cmocka_unit_test(test_the_connect_entry_decides),
		cmocka_unit_test(test_mapped_and_v6_peers),
		cmocka_unit_test(test_live_set_grows),
	};

	return cmocka_run_group_tests_name("drain verdict", tests, NULL, NULL);
}
