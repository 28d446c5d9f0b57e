// SPDX-License-Identifier: BSD-2-Clause
/* HTTP status code lists (statusMatch): the one parser; the rule is in codes.h. */
#include <errno.h>

#include "common/codes.h"
#include "common/diag.h"

/* One decimal code; *p advances past it. strtol would accept signs and blanks. */
static int parse_code(const char **p, long *code)
{
	const char *s = *p;
	long v = 0;
	int digits = 0;

	while (*s >= '0' && *s <= '9') {
		if (digits < 6)
			v = v * 10 + (*s - '0');
		digits++;
		s++;
	}
	if (!digits)
		return -EINVAL;
	*code = digits > 6 ? 1000000 : v;
	*p = s;
	return 0;
}

static const char *skip_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int ks_codes_parse(const char *s, struct ks_codes *out, char *err, size_t errlen)
{
	struct ks_codes c = { 0 };
	const char *p = s;
	long lo, hi;

	if (!s || !*skip_blank(s)) {
		ks_set_err(err, errlen, "statusMatch is empty");
		return -EINVAL;
	}
	for (;;) {
		p = skip_blank(p);
		if (parse_code(&p, &lo)) {
			ks_set_err(err, errlen, "statusMatch \"%s\": expected a status code at offset %zu",
				   s, (size_t)(p - s));
			return -EINVAL;
		}
		hi = lo;
		p = skip_blank(p);
		if (*p == '-') {
			p = skip_blank(p + 1);
			if (parse_code(&p, &hi)) {
				ks_set_err(err, errlen,
					   "statusMatch \"%s\": expected the end of a range at offset %zu",
					   s, (size_t)(p - s));
				return -EINVAL;
			}
			p = skip_blank(p);
		}
		/* Syntax first: "2OO" is a typo, not the code 2. */
		if (*p && *p != ',') {
			ks_set_err(err, errlen, "statusMatch \"%s\": unexpected '%c' at offset %zu", s,
				   *p, (size_t)(p - s));
			return -EINVAL;
		}
		if (lo < KS_CODE_MIN || lo > KS_CODE_MAX || hi < KS_CODE_MIN || hi > KS_CODE_MAX) {
			ks_set_err(err, errlen, "statusMatch \"%s\": code %ld outside %d..%d", s,
				   lo < KS_CODE_MIN || lo > KS_CODE_MAX ? lo : hi, KS_CODE_MIN,
				   KS_CODE_MAX);
			return -EINVAL;
		}
		if (lo > hi) {
			ks_set_err(err, errlen, "statusMatch \"%s\": range %ld-%ld is reversed", s, lo,
				   hi);
			return -EINVAL;
		}
		if (c.n == KS_CODES_MAX) {
			ks_set_err(err, errlen, "statusMatch \"%s\": more than %d items", s,
				   KS_CODES_MAX);
			return -E2BIG;
		}
		c.r[c.n].lo = (uint16_t)lo;
		c.r[c.n].hi = (uint16_t)hi;
		c.n++;
		if (!*p)
			break;
		p++;
	}
	if (out)
		*out = c;
	return 0;
}

bool ks_codes_has(const struct ks_codes *c, long code)
{
	uint32_t i;

	for (i = 0; i < c->n; i++)
		if (code >= c->r[i].lo && code <= c->r[i].hi)
			return true;
	return false;
}
