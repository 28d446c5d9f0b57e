// SPDX-License-Identifier: BSD-2-Clause
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "env.h"
#include "shares.h"

void kt_tally_add(struct kt_tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++) {
		if (!strcmp(t->key[i], key)) {
			t->count[i]++;
			return;
		}
	}
	if (t->n == KT_MAX_KEYS) {
		t->overflow++;
		return;
	}
	snprintf(t->key[t->n], KT_KEY_LEN, "%s", key);
	t->count[t->n++] = 1;
}

long kt_tally_get(const struct kt_tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->key[i], key))
			return t->count[i];
	return 0;
}

void kt_result_print(const char *what, const struct kt_result *r)
{
	int i;

	printf("  [%s] attempts %ld ok %ld failed %ld\n", what, r->attempts, r->ok, r->failed);
	for (i = 0; i < KT_MAX_ERRNO; i++)
		if (r->err[i])
			printf("    errno %d (%s): %ld\n", i, i ? strerror(i) : "no reply", r->err[i]);
	for (i = 0; i < r->ids.n; i++)
		printf("    server %-28s %7ld (%.2f%%)\n", r->ids.key[i], r->ids.count[i],
		       r->attempts ? 100.0 * r->ids.count[i] / r->attempts : 0);
	for (i = 0; i < r->peers.n; i++)
		printf("    peer   %-28s %7ld\n", r->peers.key[i], r->peers.count[i]);
	for (i = 0; i < r->srcs.n; i++)
		printf("    src    %-28s %7ld\n", r->srcs.key[i], r->srcs.count[i]);
	fflush(stdout);
}

void kt_check_share(const char *what, long count, long n, double expect_pct, double tol_pct,
		    const char *file, int line)
{
	double pct = n ? 100.0 * count / n : 0;
	double sigma = n ? 100.0 * sqrt(expect_pct / 100 * (1 - expect_pct / 100) / n) : 0;

	/* Fewer connects (KT_SLOW): the same tolerance in sigmas. */
	tol_pct *= sqrt((double)kt_slow());

	printf("  [share] %-36s %6ld/%ld = %6.2f%% (want %.2f +- %.2f, sigma %.2f)\n", what, count,
	       n, pct, expect_pct, tol_pct, sigma);
	fflush(stdout);
	if (!n || fabs(pct - expect_pct) > tol_pct) {
		print_error("share of %s is %.2f%%, want %.2f%% +- %.2f\n", what, pct, expect_pct,
			    tol_pct);
		_fail(file, line);
	}
}
