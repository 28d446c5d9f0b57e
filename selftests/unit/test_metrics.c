// SPDX-License-Identifier: BSD-2-Clause
/* The Prometheus text the agent serves, rendered from plain data: exact lines. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics/format.h"

#define V1 "namespace=\"shop\",route=\"checkout\",vip=\"127.10.0.1\",port=\"80\",protocol=\"TCP\""
#define G1 V1 ",service=\"v1\",backend_namespace=\"shop\",backend=\"shop/v1:80\""
#define G2 V1 ",service=\"v2\",backend_namespace=\"shop\",backend=\"shop/v2:8080\""

/*
 * One VIP, backendRefs v1 (2 endpoints, one ejected) and v2 (1 not-ready
 * endpoint, its share refused). The endpoint slots are there as
 * KS_COUNTERS_ENDPOINTS reads them; the per-backendRef counters are the
 * datapath's own (gstats), not sums over the slots.
 */
struct fixture {
	struct ks_ep_counters e0[2], e1[1];
	struct ks_svc_counters s;
	struct ks_counters c;
	struct ks_agent_metrics a;
	struct ks_metrics_input in;
	struct ks_mbuf b;
};

static void ep(struct ks_ep_counters *e, uint32_t ip, uint64_t connects, uint64_t failed)
{
	e->found = true;
	e->be.family = KS_FAMILY_V4;
	e->be.addr[0] = htonl(ip);
	e->be.port = htons(8080);
	e->stats.connects = connects;
	e->stats.failed = failed;
}

static struct fixture *fixture(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ks_svc_counters *s = &f->s;

	assert_non_null(f);
	s->key.addr[0] = htonl(0x7f0a0001);
	s->key.port = htons(80);
	s->key.proto = 6;
	s->key.family = KS_FAMILY_V4;
	s->svc.n_groups = 2;
	s->svc.groups[0] = (struct ks_group){ .weight_end = 25, .be_base = 0, .be_count = 2, .be_total = 2 };
	s->svc.groups[1] = (struct ks_group){ .weight_end = 25, .be_base = 2, .be_count = 0, .be_total = 1 };
	strcpy(s->meta.route, "HTTPRoute shop/checkout");
	strcpy(s->meta.backend[0], "shop/v1:80");
	strcpy(s->meta.backend[1], "shop/v2:8080");
	s->meta.weight[0] = 25;
	s->meta.weight[1] = 75;
	s->stats.connects = 7;
	s->stats.refused = 3;
	s->gstats[0] = (struct ks_group_stats){ .connects = 7, .ejections = 2 };
	s->gstats[1] = (struct ks_group_stats){ .refused = 3 };
	ep(&f->e0[0], 0x7f010001, 4, 0);
	ep(&f->e0[1], 0x7f010002, 3, 2);
	f->e0[1].health.ejected_until = 2000;
	f->e0[1].health.ejections = 1;
	ep(&f->e1[0], 0x7f020001, 0, 0);
	f->e1[0].be.flags = KS_BE_F_NOT_READY;
	s->eps[0] = f->e0;
	s->eps[1] = f->e1;
	f->c = (struct ks_counters){ .now = 1000, .n_svcs = 1, .svcs = s,
				     .tc = { .new_flows = 9, .fwd = 20, .expired = 4 } };
	f->a = (struct ks_agent_metrics){ .ready = true, .config_valid = true, .config_errors = 2,
					  .apply_errors = 1, .last_apply_success = 1764612000.5,
					  .health_to_healthy = 5, .health_to_unhealthy = 1,
					  .health_checks = 40, .health_check_failures = 3,
					  .health_targets = 4, .tc_ct_swept = 6, .tc_relinked = 2 };
	f->in = (struct ks_metrics_input){ .version = "0.1.0", .agent = &f->a, .dp = &f->c };
	return f;
}

static void render(struct fixture *f)
{
	assert_int_equal(ks_metrics_render(&f->b, &f->in), 0);
	assert_non_null(f->b.s);
	f->b.s[f->b.len] = '\0';	/* vsnprintf left it terminated; say so */
}

static void done(struct fixture *f)
{
	ks_mbuf_free(&f->b);
	free(f);
}

/* line must be a whole line of text. */
static void assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
		p += n;
	}
	fail_msg("line not in the output: %s\n--- output ---\n%s", line, text);
}

static void test_agent_families(void **state)
{
	static const char *const lines[] = {
		"# HELP ksplit_build_info Always 1; the version label says which ksplit runs.",
		"# TYPE ksplit_build_info gauge",
		"ksplit_build_info{version=\"0.1.0\"} 1",
		"ksplit_ready 1",
		"ksplit_config_valid 1",
		"# TYPE ksplit_config_errors_total counter",
		"ksplit_config_errors_total 2",
		"ksplit_config_last_apply_success_timestamp_seconds 1764612000.500",
		"ksplit_apply_errors_total 1",
		"# TYPE ksplit_apply_duration_seconds histogram",
		"ksplit_apply_duration_seconds_bucket{le=\"0.001\"} 1",
		"ksplit_apply_duration_seconds_bucket{le=\"0.005\"} 1",
		"ksplit_apply_duration_seconds_bucket{le=\"0.01\"} 2",
		"ksplit_apply_duration_seconds_bucket{le=\"10\"} 2",
		"ksplit_apply_duration_seconds_bucket{le=\"+Inf\"} 3",
		"ksplit_apply_duration_seconds_sum 20.011000",
		"ksplit_apply_duration_seconds_count 3",
		"ksplit_health_targets 4",
		"ksplit_health_checks_total 40",
		"ksplit_health_check_failures_total 3",
		"ksplit_health_transitions_total{to=\"healthy\"} 5",
		"ksplit_health_transitions_total{to=\"unhealthy\"} 1",
		"ksplit_datapath_up 1",
		"ksplit_services 1",
		"ksplit_tc_flows_swept_total 6",
		"ksplit_tc_relinks_total 2",
		"# TYPE ksplit_tc_packets_total counter",
		"ksplit_tc_packets_total{kind=\"new_flows\"} 9",
		"ksplit_tc_packets_total{kind=\"fwd\"} 20",
		"ksplit_tc_packets_total{kind=\"rev\"} 0",
		"ksplit_tc_packets_total{kind=\"expired\"} 4",
	};
	struct fixture *f = fixture();
	size_t i;

	(void)state;
	/* A bound is inclusive: 1 ms lands in le="0.001"; 20 s only in +Inf. */
	ks_agent_metrics_observe_apply(&f->a, 0.001);
	ks_agent_metrics_observe_apply(&f->a, 0.01);
	ks_agent_metrics_observe_apply(&f->a, 20);
	render(f);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_line(f->b.s, lines[i]);
	done(f);
}

static void test_service_and_backend_families(void **state)
{
	static const char *const lines[] = {
		"# HELP ksplit_service_connects_total Connects to the VIP that were sent to an endpoint.",
		"# TYPE ksplit_service_connects_total counter",
		"ksplit_service_connects_total{" V1 "} 7",
		"ksplit_service_refused_total{" V1 "} 3",
		"# TYPE ksplit_backend_connects_total counter",
		"ksplit_backend_connects_total{" G1 "} 7",
		"ksplit_backend_connects_total{" G2 "} 0",
		"# TYPE ksplit_backend_refused_total counter",
		"ksplit_backend_refused_total{" G1 "} 0",
		"ksplit_backend_refused_total{" G2 "} 3",
		"# TYPE ksplit_backend_passive_ejections_total counter",
		"ksplit_backend_passive_ejections_total{" G1 "} 2",
		"ksplit_backend_passive_ejections_total{" G2 "} 0",
		"# TYPE ksplit_backend_weight gauge",
		"ksplit_backend_weight{" G1 "} 25",
		"ksplit_backend_weight{" G2 "} 75",
		/* v2 has no eligible endpoint: its weight was shifted to v1. */
		"ksplit_backend_effective_weight{" G1 "} 25",
		"ksplit_backend_effective_weight{" G2 "} 0",
		"ksplit_backend_endpoints_eligible{" G1 "} 2",
		"ksplit_backend_endpoints_eligible{" G2 "} 0",
		"ksplit_backend_endpoints_listed{" G1 "} 2",
		"ksplit_backend_endpoints_listed{" G2 "} 1",
	};
	struct fixture *f = fixture();
	size_t i;

	(void)state;
	render(f);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_line(f->b.s, lines[i]);
	/* Per-endpoint series, and what is summed from them, are opt-in. */
	assert_null(strstr(f->b.s, "ksplit_endpoint_"));
	assert_null(strstr(f->b.s, "ksplit_backend_endpoints_ejected"));
	assert_null(strstr(f->b.s, "ksplit_backend_failed_connects_total"));
	done(f);
}

static void test_endpoint_families(void **state)
{
	static const char *const lines[] = {
		"ksplit_backend_endpoints_ejected{" G1 "} 1",
		"ksplit_backend_endpoints_ejected{" G2 "} 0",
		"ksplit_backend_failed_connects_total{" G1 "} 2",
		"ksplit_backend_failed_connects_total{" G2 "} 0",
		"# TYPE ksplit_endpoint_connects_total counter",
		"ksplit_endpoint_connects_total{" G1 ",endpoint=\"127.1.0.1:8080\"} 4",
		"ksplit_endpoint_connects_total{" G1 ",endpoint=\"127.1.0.2:8080\"} 3",
		"ksplit_endpoint_connects_total{" G2 ",endpoint=\"127.2.0.1:8080\"} 0",
		"ksplit_endpoint_failed_connects_total{" G1 ",endpoint=\"127.1.0.2:8080\"} 2",
		"ksplit_endpoint_eligible{" G1 ",endpoint=\"127.1.0.1:8080\"} 1",
		"ksplit_endpoint_eligible{" G2 ",endpoint=\"127.2.0.1:8080\"} 0",
		"ksplit_endpoint_ejected{" G1 ",endpoint=\"127.1.0.1:8080\"} 0",
		"ksplit_endpoint_ejected{" G1 ",endpoint=\"127.1.0.2:8080\"} 1",
		"ksplit_endpoint_passive_ejections{" G1 ",endpoint=\"127.1.0.2:8080\"} 1",
	};
	struct fixture *f = fixture();
	size_t i;

	(void)state;
	f->in.endpoints = true;
	render(f);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_line(f->b.s, lines[i]);
	done(f);
}

/* Label values escape \, " and newline; an IPv6 UDP VIP keeps its address unbracketed. */
static void test_escaping_and_ipv6(void **state)
{
	struct fixture *f = fixture();

	(void)state;
	strcpy(f->s.meta.route, "HTTPRoute sh\"op/check\\out\nx");
	f->s.key.family = KS_FAMILY_V6;
	f->s.key.proto = 17;
	inet_pton(AF_INET6, "fd00:10::a", f->s.key.addr);
	f->s.key.port = htons(53);
	render(f);
	assert_line(f->b.s, "ksplit_service_connects_total{namespace=\"sh\\\"op\",route=\"check\\\\out\\nx\","
			    "vip=\"fd00:10::a\",port=\"53\",protocol=\"UDP\"} 7");
	done(f);
}

/* Pins that cannot be read: the agent's families and ksplit_datapath_up 0, nothing else. */
static void test_no_datapath(void **state)
{
	struct fixture *f = fixture();
	const char *tail = "# HELP ksplit_datapath_up 1 when the pinned maps could be read for this scrape.\n"
			   "# TYPE ksplit_datapath_up gauge\n"
			   "ksplit_datapath_up 0\n";

	(void)state;
	f->in.dp = NULL;
	render(f);
	assert_true(f->b.len > strlen(tail));
	assert_string_equal(f->b.s + f->b.len - strlen(tail), tail);
	done(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_families),
		cmocka_unit_test(test_service_and_backend_families),
		cmocka_unit_test(test_endpoint_families),
		cmocka_unit_test(test_escaping_and_ipv6),
		cmocka_unit_test(test_no_datapath),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
