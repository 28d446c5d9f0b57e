// SPDX-License-Identifier: BSD-2-Clause
/* Active health checks, pure rules: state machine, schedule, spec (statusMatch: test_codes.c). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "health/health.h"
#include "health/prober.h"

#define P true
#define F false

/* Feed a pattern ("PPF...") and return the state after each step as "UUHH..". */
static void run(struct ks_hsm *m, const char *pat, uint32_t h, uint32_t u, char *states)
{
	static const char code[] = { 'U', 'H', 'X' };	/* unknown, healthy, unhealthy */

	for (; *pat; pat++, states++) {
		ks_hsm_feed(m, *pat == 'P', h, u);
		*states = code[m->state];
	}
	*states = '\0';
}

static void test_unknown_to_healthy_after_first_pass(void **state)
{
	struct ks_hsm m;
	uint32_t h, u;

	(void)state;
	for (h = 2; h <= 10; h++) {
		for (u = 2; u <= 10; u++) {
			ks_hsm_init(&m);
			assert_int_equal(m.state, KS_H_UNKNOWN);
			assert_false(ks_hstate_takes_traffic(m.state));
			assert_true(ks_hsm_feed(&m, P, h, u));
			assert_int_equal(m.state, KS_H_HEALTHY);
			assert_true(ks_hstate_takes_traffic(m.state));
		}
	}
}

static void test_unknown_to_unhealthy_after_exactly_u_failures(void **state)
{
	struct ks_hsm m;
	uint32_t u, i;

	(void)state;
	for (u = 2; u <= 10; u++) {
		ks_hsm_init(&m);
		for (i = 1; i < u; i++) {
			assert_false(ks_hsm_feed(&m, F, 5, u));
			assert_int_equal(m.state, KS_H_UNKNOWN);
		}
		assert_true(ks_hsm_feed(&m, F, 5, u));
		assert_int_equal(m.state, KS_H_UNHEALTHY);
	}
	/* Fewer failures than the threshold, then one pass: healthy (first pass rule). */
	ks_hsm_init(&m);
	ks_hsm_feed(&m, F, 5, 3);
	ks_hsm_feed(&m, F, 5, 3);
	assert_true(ks_hsm_feed(&m, P, 5, 3));
	assert_int_equal(m.state, KS_H_HEALTHY);
}

static void test_healthy_to_unhealthy_exact_threshold(void **state)
{
	struct ks_hsm m;
	uint32_t u, i;

	(void)state;
	for (u = 2; u <= 10; u++) {
		ks_hsm_init(&m);
		ks_hsm_feed(&m, P, 5, u);
		for (i = 1; i < u; i++) {
			assert_false(ks_hsm_feed(&m, F, 5, u));
			assert_int_equal(m.state, KS_H_HEALTHY);
		}
		assert_true(ks_hsm_feed(&m, F, 5, u));
		assert_int_equal(m.state, KS_H_UNHEALTHY);
	}
}

static void test_unhealthy_to_healthy_exact_threshold(void **state)
{
	struct ks_hsm m;
	uint32_t h, i;

	(void)state;
	for (h = 2; h <= 10; h++) {
		ks_hsm_init(&m);
		ks_hsm_feed(&m, F, h, 2);
		ks_hsm_feed(&m, F, h, 2);
		assert_int_equal(m.state, KS_H_UNHEALTHY);
		for (i = 1; i < h; i++) {
			assert_false(ks_hsm_feed(&m, P, h, 2));
			assert_int_equal(m.state, KS_H_UNHEALTHY);
		}
		assert_true(ks_hsm_feed(&m, P, h, 2));
		assert_int_equal(m.state, KS_H_HEALTHY);
	}
}

/* Streaks broken one short of the threshold never change the state, for every threshold pair. */
static void test_flapping_just_under_thresholds(void **state)
{
	struct ks_hsm m;
	uint32_t h, u, k, i;

	(void)state;
	for (h = 2; h <= 10; h++) {
		for (u = 2; u <= 10; u++) {
			ks_hsm_init(&m);
			ks_hsm_feed(&m, P, h, u);
			for (k = 0; k < 20; k++) {
				for (i = 0; i + 1 < u; i++)
					assert_false(ks_hsm_feed(&m, F, h, u));
				assert_false(ks_hsm_feed(&m, P, h, u));
			}
			assert_int_equal(m.state, KS_H_HEALTHY);
			for (i = 0; i < u; i++)
				ks_hsm_feed(&m, F, h, u);
			assert_int_equal(m.state, KS_H_UNHEALTHY);
			for (k = 0; k < 20; k++) {
				for (i = 0; i + 1 < h; i++)
					assert_false(ks_hsm_feed(&m, P, h, u));
				assert_false(ks_hsm_feed(&m, F, h, u));
			}
			assert_int_equal(m.state, KS_H_UNHEALTHY);
		}
	}
}

static void test_flapping_sequences(void **state)
{
	struct ks_hsm m;
	char got[64];

	(void)state;
	/* healthy 3, unhealthy 2 */
	ks_hsm_init(&m);
	run(&m, "FPFFPPFPPPFFF", 3, 2, got);
	assert_string_equal(got, "UHHXXXXXXHHXX");
	/* healthy 2, unhealthy 3: alternating never moves a settled state */
	ks_hsm_init(&m);
	run(&m, "PFPFPFFFPFPFPP", 2, 3, got);
	assert_string_equal(got, "HHHHHHHXXXXXXH");
	/* AWS defaults (healthy 5, unhealthy 2) */
	ks_hsm_init(&m);
	run(&m, "FFPPPPFPPPPPFF", 5, 2, got);
	assert_string_equal(got, "UXXXXXXXXXXHHX");
	/* Thresholds below 1 are treated as 1 */
	ks_hsm_init(&m);
	run(&m, "FPF", 0, 0, got);
	assert_string_equal(got, "XHX");
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(ks_hstate_name(KS_H_UNKNOWN), "unknown");
	assert_string_equal(ks_hstate_name(KS_H_HEALTHY), "healthy");
	assert_string_equal(ks_hstate_name(KS_H_UNHEALTHY), "unhealthy");
}

static struct ksm_health aws_default(void)
{
	struct ksm_health h = {
		.enabled = true, .interval_s = 30, .timeout_s = 5, .healthy_threshold = 5,
		.unhealthy_threshold = 2, .status_match = "200", .path = "/",
		.protocol = "HTTP", .protocol_version = "HTTP1",
	};

	return h;
}

static void test_spec_from_health_defaults(void **state)
{
	struct ksm_health h = aws_default();
	struct ks_probe_spec s;
	char err[160];

	(void)state;
	assert_int_equal(ks_probe_spec_from_health(&h, false, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, KS_PROBE_HTTP);
	assert_false(s.http2);
	assert_false(s.tls_verify);
	assert_int_equal(s.interval_ms, 30000);
	assert_int_equal(s.timeout_ms, 5000);
	assert_int_equal(s.healthy_thr, 5);
	assert_int_equal(s.unhealthy_thr, 2);
	assert_int_equal(s.port, 0);
	assert_string_equal(s.path, "/");
	assert_true(ks_codes_has(&s.match, 200));
	assert_false(ks_codes_has(&s.match, 204));
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), 0);

	/* NULL strings mean the AWS defaults too. */
	h.status_match = h.path = h.protocol = h.protocol_version = NULL;
	{
		struct ks_probe_spec s2;

		assert_int_equal(ks_probe_spec_from_health(&h, false, &s2, err, sizeof(err)), 0);
		assert_true(ks_probe_spec_equal(&s, &s2));
	}

	h = aws_default();
	h.protocol = "HTTPS";
	h.protocol_version = "HTTP2";
	h.path = "/healthz?deep=1";
	h.port = 8443;
	h.status_match = "200-299";
	assert_int_equal(ks_probe_spec_from_health(&h, false, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, KS_PROBE_HTTPS);
	assert_true(s.http2);
	assert_int_equal(s.port, 8443);
	assert_string_equal(s.path, "/healthz?deep=1");
	assert_true(ks_codes_has(&s.match, 204));

	h.protocol = "HTTP";
	assert_int_equal(ks_probe_spec_from_health(&h, false, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, KS_PROBE_HTTP);
	assert_true(s.http2);
}

static void test_spec_from_health_tcp(void **state)
{
	struct ksm_health h = aws_default();
	struct ks_probe_spec a, b;
	char err[160];

	(void)state;
	assert_int_equal(ks_probe_spec_from_health(&h, true, &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, KS_PROBE_TCP);
	h.path = "/other";
	h.status_match = "204";
	h.protocol_version = "HTTP2";
	assert_int_equal(ks_probe_spec_from_health(&h, true, &b, err, sizeof(err)), 0);
	/* HTTP-only fields do not make two TCP checks differ. */
	assert_true(ks_probe_spec_equal(&a, &b));
	h = aws_default();
	h.protocol = "TCP";
	assert_int_equal(ks_probe_spec_from_health(&h, false, &b, err, sizeof(err)), 0);
	assert_int_equal(b.kind, KS_PROBE_TCP);
	assert_true(ks_probe_spec_equal(&a, &b));
	b.interval_ms++;
	assert_false(ks_probe_spec_equal(&a, &b));
}

#define BAD_HEALTH(field, value, rc, needle) do {					\
		struct ksm_health h_ = aws_default();					\
		struct ks_probe_spec s_;						\
		char e_[160] = "";							\
		h_.field = value;							\
		assert_int_equal(ks_probe_spec_from_health(&h_, false, &s_, e_, sizeof(e_)), rc); \
		if (!strstr(e_, needle))						\
			fail_msg("%s: \"%s\" lacks \"%s\"", #field, e_, needle);	\
	} while (0)

static void test_spec_from_health_errors(void **state)
{
	(void)state;
	BAD_HEALTH(enabled, false, -ENODATA, "disabled");
	BAD_HEALTH(interval_s, 4, -EINVAL, "intervalSeconds 4 outside 5..300");
	BAD_HEALTH(interval_s, 301, -EINVAL, "intervalSeconds 301");
	BAD_HEALTH(timeout_s, 0, -EINVAL, "timeoutSeconds 0 outside 1..120");
	BAD_HEALTH(timeout_s, 121, -EINVAL, "timeoutSeconds 121");
	BAD_HEALTH(healthy_threshold, 1, -EINVAL, "healthyThresholdCount 1 outside 2..10");
	BAD_HEALTH(healthy_threshold, 11, -EINVAL, "healthyThresholdCount 11");
	BAD_HEALTH(unhealthy_threshold, 1, -EINVAL, "unhealthyThresholdCount 1 outside 2..10");
	BAD_HEALTH(unhealthy_threshold, 11, -EINVAL, "unhealthyThresholdCount 11");
	BAD_HEALTH(protocol, "GRPC", -EINVAL, "protocol \"GRPC\"");
	BAD_HEALTH(protocol, "http", -EINVAL, "protocol \"http\"");
	BAD_HEALTH(protocol_version, "HTTP3", -EINVAL, "protocolVersion \"HTTP3\"");
	BAD_HEALTH(path, "health", -EINVAL, "must start with '/'");
	BAD_HEALTH(path, "", -EINVAL, "must start with '/'");
	BAD_HEALTH(path, "/a b", -EINVAL, "character 0x20");
	BAD_HEALTH(path, "/a\r\nX: y", -EINVAL, "character 0x0d");
	BAD_HEALTH(path, "/a#frag", -EINVAL, "character 0x23");
	BAD_HEALTH(status_match, "200-", -EINVAL, "statusMatch");
	BAD_HEALTH(status_match, "700", -EINVAL, "outside 100..599");
	{
		static char longpath[KS_PROBE_PATH_MAX + 1];

		memset(longpath, 'a', KS_PROBE_PATH_MAX);
		longpath[0] = '/';
		BAD_HEALTH(path, longpath, -EINVAL, "longer than");
	}
	/* The limits themselves are fine. */
	{
		struct ksm_health h = aws_default();
		struct ks_probe_spec s;

		h.interval_s = 5;
		h.timeout_s = 120;
		h.healthy_threshold = 10;
		h.unhealthy_threshold = 10;
		assert_int_equal(ks_probe_spec_from_health(&h, false, &s, NULL, 0), 0);
		h.interval_s = 300;
		h.timeout_s = 1;
		h.healthy_threshold = 2;
		h.unhealthy_threshold = 2;
		assert_int_equal(ks_probe_spec_from_health(&h, false, &s, NULL, 0), 0);
	}
}

static void test_spec_check(void **state)
{
	struct ks_probe_spec s = { .kind = KS_PROBE_TCP, .interval_ms = 100, .timeout_ms = 50,
				   .healthy_thr = 1, .unhealthy_thr = 1 };
	char err[160];

	(void)state;
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), 0);
	s.kind = KS_PROBE_HTTP;
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), -EINVAL);	/* no path */
	strcpy(s.path, "/");
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), -EINVAL);	/* no match */
	ks_codes_parse("200", &s.match, NULL, 0);
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), 0);
	s.interval_ms = 0;
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), -EINVAL);
	s.interval_ms = 100;
	s.kind = (enum ks_probe_kind)7;
	assert_int_equal(ks_probe_spec_check(&s, err, sizeof(err)), -EINVAL);
}

static uint32_t lcg(uint32_t *x)
{
	*x = *x * 1664525u + 1013904223u;
	return *x ^ (*x >> 16);
}

static void test_schedule(void **state)
{
	uint32_t x = 1, r, iv = 5000;
	uint64_t d, sum = 0, lo = UINT64_MAX, hi = 0;
	unsigned bucket[10] = { 0 };
	int i;

	(void)state;
	/* First check: at once, whatever the random value. */
	assert_int_equal(ks_health_next_delay_ms(iv, 0, 0), 0);
	assert_int_equal(ks_health_next_delay_ms(iv, 0, UINT32_MAX), 0);
	/* Second: uniform in [iv/2, iv], never later than one interval. */
	assert_int_equal(ks_health_next_delay_ms(iv, 1, 0), iv);
	assert_int_equal(ks_health_next_delay_ms(iv, 1, iv / 2), iv / 2);
	for (i = 0; i < 5000; i++) {
		d = ks_health_next_delay_ms(iv, 1, lcg(&x));
		assert_true(d >= iv / 2 && d <= iv);
		bucket[(d - iv / 2) * 10 / (iv / 2 + 1)]++;
	}
	/* 5,000 targets started together land spread over half the interval: every tenth ~500. */
	for (i = 0; i < 10; i++)
		assert_true(bucket[i] > 400 && bucket[i] < 600);
	/* Later: uniform in [0.9, 1] x interval, never more than the interval. */
	for (i = 0; i < 10000; i++) {
		r = lcg(&x);
		d = ks_health_next_delay_ms(iv, 2 + (uint64_t)i, r);
		assert_true(d >= 4500 && d <= 5000);
		sum += d;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(sum / 10000 > 4725 && sum / 10000 < 4775);
	assert_true(lo < 4525 && hi > 4975);
	assert_int_equal(ks_health_next_delay_ms(iv, 2, 0), 5000);
	assert_int_equal(ks_health_next_delay_ms(iv, 2, 500), 4500);
	assert_int_equal(ks_health_next_delay_ms(0, 5, 123), 0);
	assert_int_equal(ks_health_next_delay_ms(1, 5, 123), 1);
}

/* The engine's bookkeeping, without dispatching (so no packet is ever sent). */
static void test_prober_targets_api(void **state)
{
	struct ks_probe_target t[3] = { 0 };
	struct ks_prober *p;
	struct ks_prober_stats st;
	enum ks_hstate hs;
	struct ksm_addr other = { .family = 4 };
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		t[i].spec.kind = KS_PROBE_TCP;
		t[i].spec.interval_ms = 1000;
		t[i].spec.timeout_ms = 500;
		t[i].spec.healthy_thr = 2;
		t[i].spec.unhealthy_thr = 2;
		t[i].port = 8080;
	}
	t[0].addr.family = 4;
	inet_pton(AF_INET, "127.0.0.1", t[0].addr.bytes);
	t[1].addr.family = 6;
	inet_pton(AF_INET6, "::1", t[1].addr.bytes);
	t[2] = t[0];
	t[2].port = 8081;
	assert_int_equal(ks_prober_new(&p, NULL, NULL), 0);
	assert_true(ks_prober_fd(p) >= 0);
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ks_prober_state(p, &t[i].addr, t[i].port, &hs), 0);
		assert_int_equal(hs, KS_H_UNKNOWN);
	}
	inet_pton(AF_INET, "127.0.0.2", other.bytes);
	assert_int_equal(ks_prober_state(p, &other, 8080, &hs), -ENOENT);
	assert_int_equal(ks_prober_state(p, &t[0].addr, 9, &hs), -ENOENT);
	ks_prober_get_stats(p, &st);
	assert_int_equal(st.targets, 3);
	assert_int_equal(st.checks, 0);

	/* Duplicates and bad specs are refused and leave the set as it was. */
	t[2].port = 8080;
	assert_int_equal(ks_prober_set_targets(p, t, 3), -EINVAL);
	t[2].port = 8081;
	t[2].spec.interval_ms = 0;
	assert_int_equal(ks_prober_set_targets(p, t, 3), -EINVAL);
	t[2].spec.interval_ms = 1000;
	t[2].addr.family = 5;
	assert_int_equal(ks_prober_set_targets(p, t, 3), -EINVAL);
	t[2].addr.family = 4;
	assert_int_equal(ks_prober_state(p, &t[2].addr, 8081, &hs), 0);

	/* Shrink, grow, empty. */
	assert_int_equal(ks_prober_set_targets(p, t + 1, 1), 0);
	assert_int_equal(ks_prober_state(p, &t[0].addr, 8080, &hs), -ENOENT);
	assert_int_equal(ks_prober_state(p, &t[1].addr, 8080, &hs), 0);
	assert_int_equal(ks_prober_set_targets(p, t, 3), 0);
	assert_int_equal(ks_prober_set_targets(p, NULL, 0), 0);
	assert_int_equal(ks_prober_state(p, &t[1].addr, 8080, &hs), -ENOENT);
	ks_prober_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_to_healthy_after_first_pass),
		cmocka_unit_test(test_unknown_to_unhealthy_after_exactly_u_failures),
		cmocka_unit_test(test_healthy_to_unhealthy_exact_threshold),
		cmocka_unit_test(test_unhealthy_to_healthy_exact_threshold),
		cmocka_unit_test(test_flapping_just_under_thresholds),
		cmocka_unit_test(test_flapping_sequences),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_spec_from_health_defaults),
		cmocka_unit_test(test_spec_from_health_tcp),
		cmocka_unit_test(test_spec_from_health_errors),
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_prober_targets_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
