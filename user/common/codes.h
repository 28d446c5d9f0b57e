/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * HTTP status code lists: a TargetGroupPolicy healthCheck.statusMatch such as
 * "200", "200-299" or "200,204,301-302". The one parser and the one rule for
 * both `ksplit validate` (config/) and the prober (health/), so that what one
 * accepts the other runs. Pure code: no I/O.
 */
#ifndef KSPLIT_CODES_H
#define KSPLIT_CODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_CODES_MAX	32	/* items (codes or ranges) in one list */
#define KS_CODE_MIN	100
#define KS_CODE_MAX	599

struct ks_codes {
	uint32_t n;
	struct { uint16_t lo, hi; } r[KS_CODES_MAX];
};

/*
 * The rule: items separated by ','; an item is a code or "lo-hi" with
 * lo <= hi; codes are decimal digits only (no sign), within
 * KS_CODE_MIN..KS_CODE_MAX; blanks (space, tab) around items and around
 * the '-' are ignored; at most KS_CODES_MAX items; empty lists and empty
 * items are refused.
 * Returns 0 (*out filled when out is not NULL), -EINVAL for a syntax or
 * range error, -E2BIG for more than KS_CODES_MAX items; on error err (may
 * be NULL) gets a human text that quotes s.
 */
int ks_codes_parse(const char *s, struct ks_codes *out, char *err, size_t errlen);
bool ks_codes_has(const struct ks_codes *c, long code);

#endif /* KSPLIT_CODES_H */
