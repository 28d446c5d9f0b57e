/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the config tests share: load one buffer as "t.yaml" the whole-config
 * way, and find or print its diagnostics. Static inline, so a test that
 * uses only some of them still builds with -Werror.
 */
#ifndef KSPLIT_TEST_DIAG_HELPERS_H
#define KSPLIT_TEST_DIAG_HELPERS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

static inline int load1(const char *yaml, struct ks_model *m, struct ks_diags *d)
{
	const char *names[] = { "t.yaml" };
	const char *bufs[] = { yaml };
	size_t lens[] = { strlen(yaml) };

	memset(d, 0, sizeof(*d));
	return ks_model_load_buffers(names, bufs, lens, 1, m, d);
}

static inline void dump(const struct ks_diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		fprintf(stderr, "  diag[%zu] %s: %s\n", i, d->v[i].warning ? "warning" : "error",
			d->v[i].msg);
}

/* A diagnostic with exactly this text and severity. */
static inline bool has_diag(const struct ks_diags *d, bool warning, const char *msg)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (!strcmp(d->v[i].msg, msg) && d->v[i].warning == warning)
			return true;
	return false;
}

/* Asserts a diagnostic with exactly this text exists, with that severity (cmocka). */
#define expect_diag(d, warning, msg)                                                  \
	do {                                                                          \
		if (!has_diag(d, warning, msg)) {                                     \
			dump(d);                                                      \
			fail_msg("missing %s: %s", (warning) ? "warning" : "error", msg); \
		}                                                                     \
	} while (0)

#endif
