// SPDX-License-Identifier: BSD-2-Clause
/*
 * statusMatch (common/codes.c): the parser on its own, then every row of one
 * table through both of its users, `ksplit validate` (the manifest loader)
 * and the prober's spec builder, which must agree row by row.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/codes.h"
#include "config/config.h"
#include "health/health.h"

/* A list of n codes 200, 201, ...: at and around the item cap. */
static const char *codes_list(char *buf, size_t len, int n)
{
	size_t used = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? "," : "", 200 + i);
	return buf;
}

static void test_codes_valid(void **state)
{
	struct ks_codes m;
	char err[160];

	(void)state;
	assert_int_equal(ks_codes_parse("200", &m, err, sizeof(err)), 0);
	assert_int_equal(m.n, 1);
	assert_true(ks_codes_has(&m, 200));
	assert_false(ks_codes_has(&m, 201));
	assert_false(ks_codes_has(&m, 0));

	assert_int_equal(ks_codes_parse("200-299", &m, err, sizeof(err)), 0);
	assert_true(ks_codes_has(&m, 200));
	assert_true(ks_codes_has(&m, 250));
	assert_true(ks_codes_has(&m, 299));
	assert_false(ks_codes_has(&m, 199));
	assert_false(ks_codes_has(&m, 300));

	assert_int_equal(ks_codes_parse("200,204,301-302", &m, err, sizeof(err)), 0);
	assert_int_equal(m.n, 3);
	assert_true(ks_codes_has(&m, 200));
	assert_false(ks_codes_has(&m, 201));
	assert_true(ks_codes_has(&m, 204));
	assert_true(ks_codes_has(&m, 301));
	assert_true(ks_codes_has(&m, 302));
	assert_false(ks_codes_has(&m, 303));
	assert_false(ks_codes_has(&m, 500));

	assert_int_equal(ks_codes_parse(" 200 , 204 - 206 ", &m, err, sizeof(err)), 0);
	assert_true(ks_codes_has(&m, 205));
	assert_int_equal(ks_codes_parse("100", &m, err, sizeof(err)), 0);
	assert_int_equal(ks_codes_parse("599", &m, err, sizeof(err)), 0);
	assert_int_equal(ks_codes_parse("100-599", &m, err, sizeof(err)), 0);
	assert_int_equal(ks_codes_parse("200-200", &m, err, sizeof(err)), 0);
	assert_true(ks_codes_has(&m, 200));
	assert_int_equal(ks_codes_parse("0200", &m, err, sizeof(err)), 0);
	/* Validation only (no out): the manifest parser's use. */
	assert_int_equal(ks_codes_parse("200,204,301-302", NULL, err, sizeof(err)), 0);
}

static void expect_bad_rc(const char *s, int rc, const char *needle)
{
	struct ks_codes m;
	char err[512] = "", buf[512] = "";

	if (ks_codes_parse(s, &m, err, sizeof(err)) != rc)
		fail_msg("statusMatch \"%s\" not refused with %d", s ? s : "(null)", rc);
	if (!strstr(err, needle))
		fail_msg("statusMatch \"%s\": error \"%s\" lacks \"%s\"", s ? s : "(null)", err, needle);
	/* Validation only (no out, or no text wanted): the same verdict and text. */
	assert_int_equal(ks_codes_parse(s, NULL, buf, sizeof(buf)), rc);
	assert_string_equal(buf, err);
	assert_int_equal(ks_codes_parse(s, NULL, NULL, 0), rc);
}

static void expect_bad(const char *s, const char *needle)
{
	expect_bad_rc(s, -EINVAL, needle);
}

static void test_codes_invalid(void **state)
{
	char many[256];

	(void)state;
	expect_bad(NULL, "empty");
	expect_bad("", "empty");
	expect_bad("   ", "empty");
	expect_bad("99", "code 99 outside 100..599");
	expect_bad("600", "code 600 outside 100..599");
	expect_bad("200-600", "code 600 outside");
	expect_bad("0", "outside");
	expect_bad("99999999999999999999", "outside");
	expect_bad("299-200", "range 299-200 is reversed");
	expect_bad("abc", "expected a status code");
	expect_bad("2OO", "unexpected 'O'");
	expect_bad("+200", "expected a status code");
	expect_bad("-200", "expected a status code");
	expect_bad("200-", "expected the end of a range");
	expect_bad("200,", "expected a status code");
	expect_bad(",200", "expected a status code");
	expect_bad("200,,204", "expected a status code");
	expect_bad("200 204", "unexpected '2'");
	expect_bad("200;204", "unexpected ';'");
	expect_bad("200-299-300", "unexpected '-'");
	expect_bad("200.0", "unexpected '.'");
	expect_bad_rc(codes_list(many, sizeof(many), KS_CODES_MAX + 1), -E2BIG,
		      "more than 32 items");
	assert_int_equal(ks_codes_parse(codes_list(many, sizeof(many), KS_CODES_MAX), NULL, NULL, 0),
			 0);
}

#define NOT_A_LIST "' is not a list of HTTP codes or ranges like \"200\", \"200-299\" or " \
		   "\"200,204,301-302\""
#define TOO_MANY "': at most 32 codes or ranges are allowed"

struct codes_row {
	const char *in;		/* NULL: the list of n_items codes */
	int n_items;
	const char *tail;	/* validate's message after "...statusMatch: '<in>", NULL = accepted */
};

static const struct codes_row codes_rows[] = {
	{ "200", 0, NULL },
	{ "200-299", 0, NULL },
	{ "200,204,301-302", 0, NULL },
	{ "200, 204", 0, NULL },	/* blanks around items are trimmed */
	{ " 200 - 299 ,\t404", 0, NULL },
	{ "100-599", 0, NULL },
	{ NULL, 32, NULL },
	{ NULL, 33, TOO_MANY },
	{ NULL, 34, TOO_MANY },
	{ "", 0, NOT_A_LIST },
	{ " ", 0, NOT_A_LIST },
	{ "abc", 0, NOT_A_LIST },
	{ "299-200", 0, NOT_A_LIST },
	{ "99", 0, NOT_A_LIST },
	{ "600", 0, NOT_A_LIST },
	{ "200-", 0, NOT_A_LIST },
	{ ",200", 0, NOT_A_LIST },
	{ "200,", 0, NOT_A_LIST },
	{ "200,,204", 0, NOT_A_LIST },
	{ "200 204", 0, NOT_A_LIST },
	{ "+200", 0, NOT_A_LIST },
};

/* The validate path: a TargetGroupPolicy carrying statusMatch, loaded like `ksplit validate`. */
static bool validate_accepts(const char *sm, const char *tail, struct ks_model *m)
{
	const char *names[] = { "t.yaml" };
	char yaml[1024], want[1024];
	const char *bufs[] = { yaml };
	struct ks_diags d = { 0 };
	size_t lens[1], i;
	bool found = false;
	int rc;

	snprintf(yaml, sizeof(yaml),
		 "apiVersion: application-networking.k8s.aws/v1alpha1\nkind: TargetGroupPolicy\n"
		 "metadata: {name: p}\nspec:\n  targetRef: {kind: Service, name: s}\n"
		 "  healthCheck: {statusMatch: '%s'}\n", sm);
	lens[0] = strlen(yaml);
	rc = ks_model_load_buffers(names, bufs, lens, 1, m, &d);
	if (!rc) {
		assert_int_equal(d.n_errors, 0);
		ks_diags_free(&d);
		return true;
	}
	assert_int_equal(rc, -EINVAL);
	snprintf(want, sizeof(want),
		 "t.yaml:6:30: TargetGroupPolicy default/p: spec.healthCheck.statusMatch: '%s%s",
		 sm, tail ? tail : "");
	for (i = 0; i < d.n; i++) {
		if (d.v[i].warning)
			continue;
		if (!strcmp(d.v[i].msg, want))
			found = true;
		else
			fprintf(stderr, "  other error: %s\n", d.v[i].msg);
	}
	if (!found)
		fail_msg("statusMatch \"%s\": missing error: %s", sm, want);
	ks_diags_free(&d);
	return false;
}

/* The prober path: the spec builder, then the sanity check of the spec it built. */
static bool probe_accepts(const struct ksm_health *h)
{
	struct ks_probe_spec s;
	char err[512] = "";

	if (ks_probe_spec_from_health(h, false, &s, err, sizeof(err))) {
		assert_non_null(strstr(err, "statusMatch"));
		return false;
	}
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), 0);
	return true;
}

static void test_codes_both_paths_agree(void **state)
{
	char many[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes_rows) / sizeof(codes_rows[0]); i++) {
		const struct codes_row *row = &codes_rows[i];
		const char *sm = row->in ? row->in : codes_list(many, sizeof(many), row->n_items);
		struct ksm_health h = {
			.enabled = true, .interval_s = 30, .timeout_s = 5, .healthy_threshold = 5,
			.unhealthy_threshold = 2, .status_match = (char *)sm, .path = "/",
			.protocol = "HTTP", .protocol_version = "HTTP1",
		};
		struct ks_model m = { 0 };
		bool v, p;

		v = validate_accepts(sm, row->tail, &m);
		p = probe_accepts(&h);
		if (v != p || v != !row->tail)
			fail_msg("statusMatch \"%s\": validate %s, prober %s, expected %s", sm,
				 v ? "accepts" : "refuses", p ? "accepts" : "refuses",
				 row->tail ? "refused" : "accepted");
		if (v) {
			/* What validate kept is what the prober is given. */
			assert_int_equal(m.n_health, 1);
			assert_string_equal(m.health[0].status_match, sm);
			assert_true(probe_accepts(&m.health[0]));
			ks_model_free(&m);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_valid),
		cmocka_unit_test(test_codes_invalid),
		cmocka_unit_test(test_codes_both_paths_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
