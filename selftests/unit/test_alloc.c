// SPDX-License-Identifier: BSD-2-Clause
/* Id and slot-range allocators behind the update protocol. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "datapath/alloc.h"

static void test_ids_dense_and_reused(void **state)
{
	struct ks_idalloc a;
	uint32_t id, i;

	(void)state;
	assert_int_equal(ks_idalloc_init(&a, 130), 0);
	for (i = 0; i < 130; i++) {
		assert_int_equal(ks_idalloc_get(&a, &id), 0);
		assert_int_equal(id, i);
	}
	assert_int_equal(ks_idalloc_get(&a, &id), -ENOSPC);
	ks_idalloc_put(&a, 64);
	ks_idalloc_put(&a, 64);	/* a double put is harmless */
	assert_int_equal(a.used, 129);
	assert_int_equal(ks_idalloc_get(&a, &id), 0);
	assert_int_equal(id, 64);
	assert_int_equal(ks_idalloc_mark(&a, 3), -EEXIST);
	assert_int_equal(ks_idalloc_mark(&a, 130), -ERANGE);
	ks_idalloc_fini(&a);
}

static void test_ids_mark_for_adoption(void **state)
{
	struct ks_idalloc a;
	uint32_t id;

	(void)state;
	assert_int_equal(ks_idalloc_init(&a, 4), 0);
	assert_int_equal(ks_idalloc_mark(&a, 0), 0);
	assert_int_equal(ks_idalloc_mark(&a, 2), 0);
	assert_true(ks_idalloc_test(&a, 2));
	assert_false(ks_idalloc_test(&a, 1));
	assert_int_equal(ks_idalloc_get(&a, &id), 0);
	assert_true(id == 1 || id == 3);
	ks_idalloc_fini(&a);
}

static void test_ranges_first_fit_and_coalesce(void **state)
{
	struct ks_rangealloc r;
	uint32_t a, b, c, d;

	(void)state;
	assert_int_equal(ks_rangealloc_init(&r, 100), 0);
	assert_int_equal(ks_rangealloc_get(&r, 10, &a), 0);
	assert_int_equal(ks_rangealloc_get(&r, 20, &b), 0);
	assert_int_equal(ks_rangealloc_get(&r, 30, &c), 0);
	assert_int_equal(a, 0);
	assert_int_equal(b, 10);
	assert_int_equal(c, 30);
	assert_int_equal(r.free_total, 40);
	/* Free the middle, then its neighbours: the list must fold back to one extent. */
	assert_int_equal(ks_rangealloc_put(&r, b, 20), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(ks_rangealloc_put(&r, a, 10), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(ks_rangealloc_put(&r, c, 30), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0].base, 0);
	assert_int_equal(r.v[0].len, 100);
	/* Zero-length requests hold nothing. */
	assert_int_equal(ks_rangealloc_get(&r, 0, &d), 0);
	assert_int_equal(r.free_total, 100);
	ks_rangealloc_fini(&r);
}

static void test_ranges_errors(void **state)
{
	struct ks_rangealloc r;
	uint32_t a, b, c;

	(void)state;
	assert_int_equal(ks_rangealloc_init(&r, 10), 0);
	assert_int_equal(ks_rangealloc_get(&r, 11, &a), -ENOSPC);
	assert_int_equal(ks_rangealloc_get(&r, 4, &a), 0);
	assert_int_equal(ks_rangealloc_get(&r, 2, &b), 0);
	assert_int_equal(ks_rangealloc_get(&r, 4, &c), 0);
	assert_int_equal(ks_rangealloc_put(&r, a, 4), 0);
	assert_int_equal(ks_rangealloc_put(&r, c, 4), 0);
	/* 8 free in two pieces of 4: enough in total, not contiguous. */
	assert_int_equal(ks_rangealloc_get(&r, 6, &a), -EFBIG);
	assert_int_equal(ks_rangealloc_put(&r, 0, 2), -EINVAL);	/* double free */
	assert_int_equal(ks_rangealloc_put(&r, 8, 4), -ERANGE);
	ks_rangealloc_fini(&r);
}

static void test_ranges_mark_splits(void **state)
{
	struct ks_rangealloc r;
	uint32_t a;

	(void)state;
	assert_int_equal(ks_rangealloc_init(&r, 100), 0);
	assert_int_equal(ks_rangealloc_mark(&r, 40, 10), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(ks_rangealloc_mark(&r, 45, 1), -EEXIST);
	assert_int_equal(ks_rangealloc_mark(&r, 0, 40), 0);
	assert_int_equal(ks_rangealloc_get(&r, 5, &a), 0);
	assert_int_equal(a, 50);
	assert_int_equal(r.free_total, 45);
	ks_rangealloc_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_dense_and_reused),
		cmocka_unit_test(test_ids_mark_for_adoption),
		cmocka_unit_test(test_ranges_first_fit_and_coalesce),
		cmocka_unit_test(test_ranges_errors),
		cmocka_unit_test(test_ranges_mark_splits),
	};

	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
