// SPDX-License-Identifier: BSD-2-Clause
/* Model -> map image: eligibility, ordering, families, refused shares. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "image/image.h"

static struct ksm_addr a4(const char *s)
{
	struct ksm_addr a = { .family = KS_FAMILY_V4 };

	assert_int_equal(inet_pton(AF_INET, s, a.bytes), 1);
	return a;
}

static struct ksm_addr a6(const char *s)
{
	struct ksm_addr a = { .family = KS_FAMILY_V6 };

	assert_int_equal(inet_pton(AF_INET6, s, a.bytes), 1);
	return a;
}

static struct ksm_endpoint ep(struct ksm_addr a, uint16_t port, bool ready, bool term)
{
	struct ksm_endpoint e = { .addr = a, .port = port, .ready = ready, .serving = ready,
				  .terminating = term };
	return e;
}

static void test_eligible_first_and_flags(void **state)
{
	struct ksm_endpoint eps[] = {
		ep(a4("10.0.0.3"), 8080, false, false),
		ep(a4("10.0.0.2"), 8080, true, true),
		ep(a4("10.0.0.9"), 8080, true, false),
		ep(a4("10.0.0.1"), 8080, true, false),
	};
	struct ksm_group g1[1] = {};
	struct ksm_service ms = { .vip = a4("10.96.0.1"), .port = 80, .proto = IPPROTO_TCP,
				  .route = "HTTPRoute ns/r", .n_groups = 1, .groups = g1 };
	struct ks_model m = { .n_svcs = 1, .svcs = &ms };
	struct ks_image img;
	struct ks_svc_meta meta;
	const struct ksi_group *g;
	char buf[64];

	(void)state;
	ms.groups[0] = (struct ksm_group){ .svc_ns = "ns", .svc_name = "v1", .svc_port = 80,
					   .weight = 5, .n_eps = 4, .eps = eps };
	assert_int_equal(ks_image_build(&m, &img), 0);
	assert_int_equal(img.n, 1);
	assert_int_equal(img.n_backends, 4);
	g = &img.svcs[0].groups[0];
	assert_int_equal(g->n_elig, 2);
	assert_int_equal(g->n_total, 4);
	/* Eligible ones first, each part in address order. */
	ks_fmt_addrport(buf, sizeof(buf), 4, g->be[0].addr, g->be[0].port);
	assert_string_equal(buf, "10.0.0.1:8080");
	ks_fmt_addrport(buf, sizeof(buf), 4, g->be[1].addr, g->be[1].port);
	assert_string_equal(buf, "10.0.0.9:8080");
	assert_int_equal(g->be[0].flags, 0);
	assert_int_equal(g->be[2].flags, KS_BE_F_TERMINATING);
	assert_int_equal(g->be[3].flags, KS_BE_F_NOT_READY);
	assert_int_equal(img.svcs[0].key.port, htons(80));
	assert_int_equal(img.svcs[0].total_weight, 5);
	ksi_meta_unpack(img.svcs[0].meta, &meta);
	assert_string_equal(meta.route, "HTTPRoute ns/r");
	assert_string_equal(meta.backend[0], "ns/v1:80");
	ks_image_free(&img);
}

static void test_family_and_invalid(void **state)
{
	struct ksm_endpoint eps[] = {
		ep(a6("fd00::1"), 8080, true, false),
		ep(a4("10.0.0.1"), 8080, true, false),
	};
	struct ksm_group g0[2] = {}, g1[1] = {};
	struct ksm_service ms[2] = {
		{ .vip = a6("fd00::a"), .port = 80, .proto = IPPROTO_TCP, .n_groups = 2, .groups = g0 },
		{ .vip = a4("10.96.0.1"), .port = 53, .proto = IPPROTO_UDP, .n_groups = 1,
		  .groups = g1 },
	};
	struct ks_model m = { .n_svcs = 2, .svcs = ms };
	struct ks_image img;
	char buf[64];

	(void)state;
	ms[0].groups[0] = (struct ksm_group){ .svc_ns = "a", .svc_name = "b", .svc_port = 80,
					      .weight = 25, .n_eps = 2, .eps = eps };
	ms[0].groups[1] = (struct ksm_group){ .svc_ns = "a", .svc_name = "gone", .svc_port = 80,
					      .weight = 75, .invalid = KSM_REF_NOT_FOUND };
	ms[1].groups[0] = (struct ksm_group){ .svc_ns = "a", .svc_name = "dns", .svc_port = 53,
					      .weight = 1 };
	assert_int_equal(ks_image_build(&m, &img), 0);
	/* Sorted by key: v4 (family 4) before v6. */
	assert_int_equal(img.svcs[0].key.family, KS_FAMILY_V4);
	assert_int_equal(img.svcs[0].key.proto, IPPROTO_UDP);
	assert_int_equal(img.svcs[0].groups[0].n_total, 0);
	assert_int_equal(img.svcs[1].key.family, KS_FAMILY_V6);
	/* A v6 VIP only takes v6 endpoints. */
	assert_int_equal(img.svcs[1].groups[0].n_total, 1);
	ks_fmt_addrport(buf, sizeof(buf), 6, img.svcs[1].groups[0].be[0].addr,
			img.svcs[1].groups[0].be[0].port);
	assert_string_equal(buf, "[fd00::1]:8080");
	/* The invalid ref keeps its weight and holds no endpoint: its share is refused. */
	assert_int_equal(img.svcs[1].groups[1].weight, 75);
	assert_int_equal(img.svcs[1].groups[1].n_total, 0);
	assert_int_equal(img.svcs[1].total_weight, 100);
	ks_image_free(&img);
}

static void test_equality(void **state)
{
	struct ksm_endpoint eps[] = { ep(a4("10.0.0.1"), 8080, true, false),
				      ep(a4("10.0.0.2"), 8080, true, false) };
	struct ksm_group g1[1] = {};
	struct ksm_service ms = { .vip = a4("10.96.0.1"), .port = 80, .proto = IPPROTO_TCP,
				  .n_groups = 1, .groups = g1 };
	struct ks_model m = { .n_svcs = 1, .svcs = &ms };
	struct ks_image a, b;

	(void)state;
	ms.groups[0] = (struct ksm_group){ .svc_ns = "n", .svc_name = "s", .svc_port = 80,
					   .weight = 1, .n_eps = 2, .eps = eps };
	assert_int_equal(ks_image_build(&m, &a), 0);
	assert_int_equal(ks_image_build(&m, &b), 0);
	assert_true(ksi_service_equal(&a.svcs[0], &b.svcs[0]));
	/* ep_id is the applier's, not part of the content. */
	b.svcs[0].groups[0].be[0].ep_id = 77;
	assert_true(ksi_service_equal(&a.svcs[0], &b.svcs[0]));
	ks_image_free(&b);
	eps[1].ready = false;
	assert_int_equal(ks_image_build(&m, &b), 0);
	assert_false(ksi_service_equal(&a.svcs[0], &b.svcs[0]));
	ks_image_free(&b);
	ms.groups[0].weight = 2;
	eps[1].ready = true;
	assert_int_equal(ks_image_build(&m, &b), 0);
	assert_false(ksi_service_equal(&a.svcs[0], &b.svcs[0]));
	ks_image_free(&b);
	ks_image_free(&a);
}

static void test_duplicate_keys_refused(void **state)
{
	struct ksm_service ms[2] = {
		{ .vip = a4("10.96.0.1"), .port = 80, .proto = IPPROTO_TCP },
		{ .vip = a4("10.96.0.1"), .port = 80, .proto = IPPROTO_TCP },
	};
	struct ks_model m = { .n_svcs = 2, .svcs = ms };
	struct ks_image img = {};

	(void)state;
	assert_int_equal(ks_image_build(&m, &img), -EEXIST);
	assert_int_equal(img.n, 0);
}

/* Health verdicts by address for the policy tests: "unhealthy" ends in .66. */
static uint8_t fake_health(void *ctx, const struct ksm_group *g, const struct ksm_endpoint *e)
{
	(void)ctx;
	(void)g;
	return e->addr.bytes[3] == 66 ? KS_BE_F_UNHEALTHY : e->addr.bytes[3] == 77 ? KS_BE_F_UNCHECKED : 0;
}

/* The packed names give back the map value byte for byte, full-length names included. */
static void test_meta_pack_roundtrip(void **state)
{
	struct ks_svc_meta m, back, zero = {};
	struct ksi_meta *p, *q;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(m.route, 'r', sizeof(m.route));		/* no NUL: fills its array */
	snprintf(m.backend[0], sizeof(m.backend[0]), "ns/v1:80");
	memset(m.backend[KS_MAX_GROUPS - 1], 'b', sizeof(m.backend[0]));
	m.weight[0] = 1;
	m.weight[KS_MAX_GROUPS - 1] = 1000000;
	p = ksi_meta_pack(&m);
	assert_non_null(p);
	ksi_meta_unpack(p, &back);
	assert_memory_equal(&back, &m, sizeof(m));
	assert_int_equal(ksi_meta_route(p)[sizeof(m.route)], '\0');
	q = ksi_meta_pack(&zero);
	assert_false(ksi_meta_equal(p, q));
	ksi_meta_unpack(q, &back);
	assert_memory_equal(&back, &zero, sizeof(zero));
	free(q);
	q = ksi_meta_dup(p);
	assert_true(ksi_meta_equal(p, q));
	/* 128 + 16 names and NULs + 64 bytes of weights instead of 1,216. */
	assert_int_equal(p->len, 129 + 9 + 14 + 65 + 64);
	ksi_meta_unpack(NULL, &back);
	assert_memory_equal(&back, &zero, sizeof(zero));
	free(p);
	free(q);
}

static void build_ab(const char *mode, struct ksm_endpoint *v1, size_t n1, struct ksm_endpoint *v2,
		     size_t n2, struct ks_image *img)
{
	static struct ksm_service ms;
	static struct ksm_group g[2];
	struct ks_model m = { .n_svcs = 1, .svcs = &ms };
	struct ks_health_view hv = { fake_health, NULL };

	memset(&ms, 0, sizeof(ms));
	ms.vip = a4("10.96.0.1");
	ms.port = 80;
	ms.proto = IPPROTO_TCP;
	ms.n_groups = 2;
	ms.groups = g;
	ms.ann_empty_group = (char *)mode;
	ms.groups[0] = (struct ksm_group){ .svc_ns = "a", .svc_name = "v1", .svc_port = 80,
					   .weight = 25, .n_eps = n1, .eps = v1 };
	ms.groups[1] = (struct ksm_group){ .svc_ns = "b", .svc_name = "v2", .svc_port = 80,
					   .weight = 75, .n_eps = n2, .eps = v2 };
	assert_int_equal(ks_image_build_health(&m, &hv, img), 0);
}

static void test_shift_moves_weight(void **state)
{
	struct ksm_endpoint v1[] = { ep(a4("10.0.1.1"), 80, true, false) };
	struct ksm_endpoint v2[] = { ep(a4("10.0.2.66"), 80, true, false),
				     ep(a4("10.0.2.77"), 80, true, false) };
	struct ks_image img;
	struct ks_svc_meta meta;

	(void)state;
	build_ab(NULL, v1, 1, v2, 2, &img);
	/* v2 has endpoints but none eligible: its 75 goes to v1, which now takes 100%. */
	assert_int_equal(img.svcs[0].groups[1].weight, 0);
	assert_int_equal(img.svcs[0].groups[1].n_elig, 0);
	assert_int_equal(img.svcs[0].groups[1].n_total, 2);
	assert_int_equal(img.svcs[0].total_weight, 25);
	assert_int_equal(img.svcs[0].flags, KS_SVC_F_DEGRADED);
	ksi_meta_unpack(img.svcs[0].meta, &meta);
	assert_int_equal(meta.weight[1], 75);
	ks_image_free(&img);
}

static void test_reject_keeps_weight(void **state)
{
	struct ksm_endpoint v1[] = { ep(a4("10.0.1.1"), 80, true, false) };
	struct ksm_endpoint v2[] = { ep(a4("10.0.2.66"), 80, true, false) };
	struct ks_image img;

	(void)state;
	build_ab("reject", v1, 1, v2, 1, &img);
	assert_int_equal(img.svcs[0].groups[1].weight, 75);
	assert_int_equal(img.svcs[0].groups[1].n_elig, 0);
	assert_int_equal(img.svcs[0].total_weight, 100);
	assert_int_equal(img.svcs[0].flags, 0);
	ks_image_free(&img);
}

static void test_panic_uses_ready_endpoints(void **state)
{
	struct ksm_endpoint v1[] = { ep(a4("10.0.1.66"), 80, true, false),
				     ep(a4("10.0.1.9"), 80, false, false) };
	struct ksm_endpoint v2[] = { ep(a4("10.0.2.66"), 80, true, false),
				     ep(a4("10.0.2.77"), 80, true, true) };
	struct ks_image img;

	(void)state;
	build_ab(NULL, v1, 2, v2, 2, &img);
	/* Nothing eligible anywhere: health is ignored, readiness and draining are not. */
	assert_true(img.svcs[0].flags & KS_SVC_F_PANIC);
	assert_false(img.svcs[0].flags & KS_SVC_F_DEGRADED);
	assert_int_equal(img.svcs[0].groups[0].n_elig, 1);
	assert_int_equal(img.svcs[0].groups[0].be[0].flags, KS_BE_F_PANIC);
	assert_int_equal(img.svcs[0].groups[1].n_elig, 1);
	assert_int_equal(img.svcs[0].groups[1].be[1].flags, KS_BE_F_TERMINATING | KS_BE_F_UNCHECKED);
	assert_int_equal(img.svcs[0].total_weight, 100);
	ks_image_free(&img);
}

static void test_no_endpoints_is_not_shifted(void **state)
{
	struct ksm_endpoint v1[] = { ep(a4("10.0.1.1"), 80, true, false) };
	struct ks_image img;

	(void)state;
	/* A backend Service with no endpoints at all is an invalid ref: refused, not shifted. */
	build_ab(NULL, v1, 1, NULL, 0, &img);
	assert_int_equal(img.svcs[0].groups[1].weight, 75);
	assert_int_equal(img.svcs[0].total_weight, 100);
	assert_int_equal(img.svcs[0].flags, 0);
	ks_image_free(&img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eligible_first_and_flags),
		cmocka_unit_test(test_family_and_invalid),
		cmocka_unit_test(test_equality),
		cmocka_unit_test(test_meta_pack_roundtrip),
		cmocka_unit_test(test_duplicate_keys_refused),
		cmocka_unit_test(test_shift_moves_weight),
		cmocka_unit_test(test_reject_keeps_weight),
		cmocka_unit_test(test_panic_uses_ready_endpoints),
		cmocka_unit_test(test_no_endpoints_is_not_shifted),
	};

	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
