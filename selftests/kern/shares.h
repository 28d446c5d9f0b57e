/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a client measured (struct kt_result, filled by clients.c) and the
 * share assertions on it: counts per server id, peer and reply source,
 * printed for the report before they are checked.
 */
#ifndef KSPLIT_KT_SHARES_H
#define KSPLIT_KT_SHARES_H

#include <stdint.h>

#define KT_MAX_KEYS	32
#define KT_KEY_LEN	64
#define KT_MAX_ERRNO	160
#define KT_MAX_REMOVED	8

/* Counts per string key (server id, getpeername result, reply source). */
struct kt_tally {
	int n;
	char key[KT_MAX_KEYS][KT_KEY_LEN];
	long count[KT_MAX_KEYS];
	long overflow;		/* hits on keys beyond KT_MAX_KEYS: a test bug */
};

/*
 * Written by the client child into shared memory, read by the parent after
 * the child has exited (or live, for the removed-endpoint markers).
 */
struct kt_result {
	long attempts, ok, failed;
	long err[KT_MAX_ERRNO];		/* failures by errno; EAGAIN = no UDP reply */
	struct kt_tally ids;		/* which server answered */
	struct kt_tally peers;		/* getpeername() of connected sockets */
	struct kt_tally srcs;		/* recvfrom() source of UDP replies */
	/* Live update: replies from removed[i] to connects started at or after after_ns[i]. */
	char removed[KT_MAX_REMOVED][KT_KEY_LEN];
	int64_t after_ns[KT_MAX_REMOVED];
	long removed_hits[KT_MAX_REMOVED];
	int n_removed;
	int stop;
	int done;
};

void kt_tally_add(struct kt_tally *t, const char *key);
long kt_tally_get(const struct kt_tally *t, const char *key);
void kt_result_print(const char *what, const struct kt_result *r);

/*
 * Share check: prints the measured value (the report needs the numbers) and
 * fails the test when |100*count/n - expect_pct| > tol_pct.
 */
#define kt_assert_share(what, count, n, expect_pct, tol_pct) \
	kt_check_share(what, count, n, expect_pct, tol_pct, __FILE__, __LINE__)
void kt_check_share(const char *what, long count, long n, double expect_pct, double tol_pct,
		    const char *file, int line);

#endif
