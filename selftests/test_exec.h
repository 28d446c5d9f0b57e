/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * KS_TEST_EXEC: the program a test starts this build's binaries through
 * when this host cannot run them itself (`make unit-test ARCH=arm64` sets
 * it to qemu-aarch64; this host has no binfmt_misc handler for arm64).
 * ks_test_exec_wrap shifts a NULL-terminated argv of at most cap slots one
 * to the right and puts that program first; unset, argv stays as it is.
 * 0, or -E2BIG when argv has no slot left.
 */
#ifndef KS_SELFTESTS_TEST_EXEC_H
#define KS_SELFTESTS_TEST_EXEC_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline int ks_test_exec_wrap(char **argv, size_t cap)
{
	char *run = getenv("KS_TEST_EXEC");
	size_t n = 0;

	if (!run || !*run)
		return 0;
	while (argv[n])
		n++;
	if (n + 2 > cap)
		return -E2BIG;
	memmove(argv + 1, argv, (n + 1) * sizeof(*argv));
	argv[0] = run;
	return 0;
}

#endif
