// SPDX-License-Identifier: BSD-2-Clause
/*
 * The host checks behind the start-up messages and the stop message: which
 * filesystem a path is on, and what ks_pin_fate says for a bpffs that this
 * process did not mount. No root needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <linux/magic.h>

#include "common/hostcheck.h"

static void test_fs_magic_and_names(void **state)
{
	char buf[32];
	long magic = 0;

	(void)state;
	assert_int_equal(ks_fs_magic("/proc", &magic), 0);
	assert_int_equal(magic, PROC_SUPER_MAGIC);
	assert_string_equal(ks_fs_name(magic, buf, sizeof(buf)), "proc");
	assert_string_equal(ks_fs_name(TMPFS_MAGIC, buf, sizeof(buf)), "tmpfs");
	assert_string_equal(ks_fs_name(BPF_FS_MAGIC, buf, sizeof(buf)), "bpf");
	assert_string_equal(ks_fs_name(0x1234, buf, sizeof(buf)), "filesystem 0x1234");
	assert_int_equal(ks_fs_magic("/nonexistent-ksplit-path", &magic), -2);
}

static void test_caps_missing_lists_names(void **state)
{
	char buf[64] = "x";
	int n = ks_caps_missing(buf, sizeof(buf));

	(void)state;
	/* As root nothing is missing; otherwise each missing one is named. */
	assert_true(n >= 0 && n <= 2);
	if (!n)
		assert_string_equal(buf, "");
	else
		assert_non_null(strstr(buf, "CAP_"));
}

static void test_pin_fate(void **state)
{
	char why[256];

	(void)state;
	/* Someone else's bpffs outlives us. */
	assert_int_equal(ks_pin_fate(NULL, why, sizeof(why)), KS_PINS_OUTLIVE);
	assert_non_null(strstr(why, "someone else"));
	/* A mount point with no bpffs on it: whatever we mounted there is gone. */
	assert_int_equal(ks_pin_fate("/nonexistent-ksplit-path", why, sizeof(why)), KS_PINS_VANISH);
	assert_non_null(strstr(why, "is gone"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs_magic_and_names),
		cmocka_unit_test(test_caps_missing_lists_names),
		cmocka_unit_test(test_pin_fate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
