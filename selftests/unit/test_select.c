// SPDX-License-Identifier: BSD-2-Clause
/*
 * The datapath's selection maths, compiled on the host from the same header
 * the BPF programs use. Sweeping the random input evenly over 2^32 gives the
 * exact distribution, so shares are checked exactly, not statistically.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../bpf/lib/select.h"

#define SWEEP_SHIFT 12		/* 2^20 evenly spaced random values */
#define SWEEP_N (1u << (32 - SWEEP_SHIFT))

static void make_svc(struct ks_svc *s, const uint32_t *w, unsigned int n)
{
	uint32_t end = 0;
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->n_groups = n;
	for (i = 0; i < n; i++) {
		end += w[i];
		s->groups[i].weight_end = end;
		s->groups[i].be_count = 1;
	}
	s->total_weight = end;
}

static void sweep(const struct ks_svc *s, uint64_t *counts)
{
	uint64_t r;

	for (r = 0; r < (1ULL << 32); r += 1u << SWEEP_SHIFT) {
		uint32_t g = ks_pick_group(s, (uint32_t)r);

		assert_true(g < s->n_groups);
		counts[g]++;
	}
}

static void test_25_75_exact(void **state)
{
	const uint32_t w[] = { 25, 75 };
	uint64_t c[KS_MAX_GROUPS] = {};
	struct ks_svc s;

	(void)state;
	make_svc(&s, w, 2);
	sweep(&s, c);
	/* Multiply-shift maps an even sweep onto exact proportions (+-1). */
	assert_in_range(c[0], SWEEP_N / 4 - 1, SWEEP_N / 4 + 1);
	assert_int_equal(c[0] + c[1], SWEEP_N);
}

static void test_weight_zero_gets_nothing(void **state)
{
	const uint32_t w[] = { 70, 30, 0 };
	uint64_t c[KS_MAX_GROUPS] = {};
	struct ks_svc s;

	(void)state;
	make_svc(&s, w, 3);
	sweep(&s, c);
	assert_int_equal(c[2], 0);
	assert_in_range(c[0], SWEEP_N * 7 / 10 - 1, SWEEP_N * 7 / 10 + 1);
	/* A zero weight in the middle is skipped too. */
	{
		const uint32_t w2[] = { 1, 0, 1 };
		uint64_t c2[KS_MAX_GROUPS] = {};

		make_svc(&s, w2, 3);
		sweep(&s, c2);
		assert_int_equal(c2[1], 0);
		assert_int_equal(c2[0], SWEEP_N / 2);
		assert_int_equal(c2[2], SWEEP_N / 2);
	}
}

static void test_no_weight_refuses(void **state)
{
	const uint32_t w[] = { 0, 0 };
	struct ks_svc s;

	(void)state;
	make_svc(&s, w, 2);
	assert_int_equal(ks_pick_group(&s, 0), KS_NO_GROUP);
	assert_int_equal(ks_pick_group(&s, UINT32_MAX), KS_NO_GROUP);
	make_svc(&s, w, 0);
	assert_int_equal(ks_pick_group(&s, 12345), KS_NO_GROUP);
}

static void test_sixteen_max_weights(void **state)
{
	uint32_t w[KS_MAX_GROUPS];
	uint64_t c[KS_MAX_GROUPS] = {};
	struct ks_svc s;
	unsigned int i;

	(void)state;
	for (i = 0; i < KS_MAX_GROUPS; i++)
		w[i] = KS_MAX_WEIGHT;
	make_svc(&s, w, KS_MAX_GROUPS);
	assert_int_equal(s.total_weight, 16 * KS_MAX_WEIGHT);
	sweep(&s, c);
	for (i = 0; i < KS_MAX_GROUPS; i++)
		assert_in_range(c[i], SWEEP_N / 16 - 1, SWEEP_N / 16 + 1);
	/* The extremes of the random range stay inside the table. */
	assert_int_equal(ks_pick_group(&s, 0), 0);
	assert_int_equal(ks_pick_group(&s, UINT32_MAX), KS_MAX_GROUPS - 1);
}

static void test_uneven_bias_bound(void **state)
{
	const uint32_t w[] = { 1, 1, 1 };
	uint64_t c[KS_MAX_GROUPS] = {};
	struct ks_svc s;

	(void)state;
	make_svc(&s, w, 3);
	sweep(&s, c);
	/* 2^20 is not divisible by 3: outcomes may differ by one, no more. */
	assert_in_range(c[0], SWEEP_N / 3, SWEEP_N / 3 + 1);
	assert_in_range(c[1], SWEEP_N / 3, SWEEP_N / 3 + 1);
	assert_in_range(c[2], SWEEP_N / 3, SWEEP_N / 3 + 1);
}

static void test_pick_slot_uniform_in_range(void **state)
{
	struct ks_group g = { .weight_end = 1, .be_base = 1000, .be_count = 7 };
	uint64_t c[7] = {}, r;
	unsigned int i;

	(void)state;
	for (r = 0; r < (1ULL << 32); r += 1u << SWEEP_SHIFT) {
		uint32_t slot = ks_pick_slot(&g, (uint32_t)r);

		assert_in_range(slot, 1000, 1006);
		c[slot - 1000]++;
	}
	for (i = 0; i < 7; i++)
		assert_in_range(c[i], SWEEP_N / 7, SWEEP_N / 7 + 1);
	g.be_count = 1;
	assert_int_equal(ks_pick_slot(&g, UINT32_MAX), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_25_75_exact),
		cmocka_unit_test(test_weight_zero_gets_nothing),
		cmocka_unit_test(test_no_weight_refuses),
		cmocka_unit_test(test_sixteen_max_weights),
		cmocka_unit_test(test_uneven_bias_bound),
		cmocka_unit_test(test_pick_slot_uniform_in_range),
	};

	return cmocka_run_group_tests_name("select", tests, NULL, NULL);
}
