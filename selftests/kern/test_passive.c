// SPDX-License-Identifier: BSD-2-Clause
/*
 * Passive health (bpf/health.bpf.c): a killed backend answers the SYN with a
 * RST; sockops counts SYN_SENT -> CLOSE as a failure and, after
 * ksplit.io/passive-failures consecutive ones (default 3), ejects the
 * endpoint in the kernel. The client here is sequential, so the number of
 * failed connects per killed endpoint must be exactly the threshold.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "harness.h"

#define N kt_scaled(3000L)

/* Start one server child per address so that each can be killed alone. */
static pid_t server(struct kt_env *e, const char *addr)
{
	const char *a[] = { addr };
	pid_t before[KT_MAX_CHILDREN];
	int i;

	memcpy(before, e->children, sizeof(before));
	assert_int_equal(kt_servers_start(e, a, 1), 0);
	for (i = 0; i < KT_MAX_CHILDREN; i++)
		if (e->children[i] && e->children[i] != before[i])
			return e->children[i];
	fail_msg("server child not tracked");
	return -1;
}

static void setup_svc(struct kt_env *e, const char *eps, const char *annotation)
{
	struct kt_buf b = {};

	kt_yaml_gateway(&b, "gw", "127.10.0.1", "http:HTTP:80");
	kt_yaml_service(&b, "web", 80, NULL);
	kt_yaml_slice(&b, "web", "IPv4", eps);
	kt_yaml_route_ann(&b, "HTTPRoute", "r", "gw/http", "web=1", annotation);
	assert_int_equal(kt_apply_yaml(e, b.s), 0);
	kt_buf_free(&b);
}

static void run(struct kt_env *e, long n, struct kt_result *r)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = n };

	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print("client", r);
	assert_int_equal(r->attempts, n);
	assert_int_equal(r->failed, r->err[ECONNREFUSED]);
}

/* The status object of endpoint addr, in any group of svc; NULL when absent. */
static struct json_object *ep_obj(struct json_object *svc, const char *addr)
{
	struct json_object *groups, *eps, *ep, *v;
	size_t i, j;

	json_object_object_get_ex(svc, "groups", &groups);
	for (i = 0; i < json_object_array_length(groups); i++) {
		json_object_object_get_ex(json_object_array_get_idx(groups, i), "endpoints", &eps);
		for (j = 0; j < json_object_array_length(eps); j++) {
			ep = json_object_array_get_idx(eps, j);
			if (json_object_object_get_ex(ep, "address", &v) &&
			    !strcmp(json_object_get_string(v), addr))
				return ep;
		}
	}
	return NULL;
}

static const char *ep_state(struct json_object *svc, const char *addr)
{
	struct json_object *ep = ep_obj(svc, addr), *v;

	return ep && json_object_object_get_ex(ep, "state", &v) ? json_object_get_string(v)
								 : "absent";
}

static long ep_field(struct json_object *svc, const char *addr, const char *field)
{
	struct json_object *ep = ep_obj(svc, addr), *v;

	return ep && json_object_object_get_ex(ep, field, &v) ? json_object_get_int64(v) : -1;
}

static void test_threshold_then_none(void **state)
{
	struct kt_env *e = *state;
	struct kt_result r;
	struct json_object *st, *svc;
	pid_t p2, p3;
	struct timespec t0, t1;
	int64_t t_kill, t_status;

	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	server(e, "127.1.0.1:8080");
	p2 = server(e, "127.1.0.2:8080");
	p3 = server(e, "127.1.0.3:8080");
	server(e, "127.1.0.4:8080");
	setup_svc(e, "127.1.0.1 127.1.0.2 127.1.0.3 127.1.0.4", NULL);
	run(e, kt_scaled(2000), &r);
	assert_int_equal(r.failed, 0);

	kt_stop(e, p2, SIGKILL, 2000);
	kt_stop(e, p3, SIGKILL, 2000);
	t_kill = kt_now_ns();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(e, N, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Default threshold 3, two dead endpoints: exactly 6 failed connects, then none. */
	assert_int_equal(r.failed, 6);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.2:8080"), 0);
	assert_int_equal(kt_tally_get(&r.ids, "127.1.0.3:8080"), 0);
	kt_assert_share("live 127.1.0.1 after ejection", kt_tally_get(&r.ids, "127.1.0.1:8080"),
			r.ok, 50, 4);

	st = kt_status(e);
	t_status = kt_now_ns();
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	assert_non_null(svc);
	assert_string_equal(ep_state(svc, "127.1.0.2"), "ejected");
	assert_string_equal(ep_state(svc, "127.1.0.3"), "ejected");
	assert_string_equal(ep_state(svc, "127.1.0.1"), "active");
	assert_int_equal(ep_field(svc, "127.1.0.2", "failed"), 3);
	assert_int_equal(ep_field(svc, "127.1.0.2", "ejections"), 1);
	/* Ejection time is 30 s x ejections, less what has passed since the kill at most. */
	assert_in_range(ep_field(svc, "127.1.0.2", "ejected_for_ms"), 30000 - (t_status - t_kill) / 1000000 - 1,
			30000);
	/* The backendRef counts both ejections, and every connect, the 6 failed ones too. */
	{
		struct ks_group_stats g;

		assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 0, &g), 0);
		assert_int_equal(g.ejections, 2);
		assert_int_equal(g.connects, kt_scaled(2000) + N);
		assert_int_equal(g.refused, 0);
	}
	/* The deadline is ejection time + 30 s: that dates the ejection to the millisecond. */
	printf("  [passive] %ld connects in %.1f ms after the kill, 6 failed; ejected %.1f ms and %.1f ms after the kill (incl. client start)\n",
	       N, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (t_status - t_kill) / 1e6 - (30000 - ep_field(svc, "127.1.0.2", "ejected_for_ms")),
	       (t_status - t_kill) / 1e6 - (30000 - ep_field(svc, "127.1.0.3", "ejected_for_ms")));
	json_object_put(st);

	/* Half the group ejected: no connect may fall back to a dead endpoint. */
	run(e, kt_scaled(20000), &r);
	assert_int_equal(r.failed, 0);
}

/* Never more than half of a group ejected by passive checks alone. */
static void test_cap_half(void **state)
{
	struct kt_env *e = *state;
	struct json_object *st, *svc;
	struct kt_result r;
	pid_t p1, p2;
	int ejected;

	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	p1 = server(e, "127.1.0.1:8080");
	p2 = server(e, "127.1.0.2:8080");
	setup_svc(e, "127.1.0.1 127.1.0.2", NULL);
	kt_stop(e, p1, SIGKILL, 2000);
	kt_stop(e, p2, SIGKILL, 2000);
	run(e, kt_scaled(1000), &r);
	/* One ejected, the other keeps taking (and failing) connects. */
	assert_int_equal(r.failed, kt_scaled(1000));
	st = kt_status(e);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	ejected = !strcmp(ep_state(svc, "127.1.0.1"), "ejected") +
		  !strcmp(ep_state(svc, "127.1.0.2"), "ejected");
	assert_int_equal(ejected, 1);
	printf("  [passive] both endpoints dead: %d of 2 ejected (cap 50%%)\n", ejected);
	json_object_put(st);
}

static void test_annotation_off_and_one(void **state)
{
	struct kt_env *e = *state;
	struct kt_result r;
	pid_t p2;

	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	server(e, "127.1.0.1:8080");
	p2 = server(e, "127.1.0.2:8080");
	setup_svc(e, "127.1.0.1 127.1.0.2", "ksplit.io/passive-failures: \"0\"");
	kt_stop(e, p2, SIGKILL, 2000);
	run(e, kt_scaled(2000), &r);
	/* Off: the dead endpoint keeps its share of failures (~50%). */
	kt_assert_share("failures with passive checks off", r.failed, kt_scaled(2000), 50, 5);

	setup_svc(e, "127.1.0.1 127.1.0.2", "ksplit.io/passive-failures: \"1\"");
	run(e, kt_scaled(2000), &r);
	assert_int_equal(r.failed, 1);
}

/* Back from ejection, on probation: a single failure ejects again, for twice as long. */
static void test_probation(void **state)
{
	struct kt_env *e = *state;
	struct ks_ep_health h;
	struct json_object *st, *svc;
	struct kt_result r;
	char path[PATH_MAX];
	__u32 key, next, *prev = NULL;
	int fd, expired = 0;
	int64_t t0, t1;
	pid_t p2;

	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	server(e, "127.1.0.1:8080");
	p2 = server(e, "127.1.0.2:8080");
	setup_svc(e, "127.1.0.1 127.1.0.2", NULL);
	kt_stop(e, p2, SIGKILL, 2000);
	run(e, kt_scaled(500), &r);
	assert_int_equal(r.failed, 3);

	/* Let the ejection time run out without waiting 30 s: move the deadline into the past. */
	snprintf(path, sizeof(path), "%s/ks_ep_health", e->pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &h) || !h.ejected_until)
			continue;
		h.ejected_until = 1;
		assert_int_equal(bpf_map_update_elem(fd, &key, &h, BPF_EXIST), 0);
		expired++;
	}
	close(fd);
	assert_int_equal(expired, 1);

	t0 = kt_now_ns();
	run(e, kt_scaled(500), &r);
	assert_int_equal(r.failed, 1);
	st = kt_status(e);
	t1 = kt_now_ns();
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	assert_string_equal(ep_state(svc, "127.1.0.2"), "ejected");
	assert_int_equal(ep_field(svc, "127.1.0.2", "ejections"), 2);
	assert_in_range(ep_field(svc, "127.1.0.2", "ejected_for_ms"), 60000 - (t1 - t0) / 1000000 - 1, 60000);
	{
		struct ks_group_stats g;

		assert_int_equal(kt_group_stats(e, "127.10.0.1", 80, 0, &g), 0);
		assert_int_equal(g.ejections, 2);
	}
	json_object_put(st);
}

/*
 * With passive checks off sockops does not ask for state callbacks (they
 * cost a run per state change): a failure is then not seen at all, while
 * ESTABLISHED, which needs none, is still counted.
 */
static void test_off_no_state_callbacks(void **state)
{
	struct kt_env *e = *state;
	struct json_object *st, *svc;
	struct kt_result r;
	pid_t p2;

	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	server(e, "127.1.0.1:8080");
	p2 = server(e, "127.1.0.2:8080");
	setup_svc(e, "127.1.0.1 127.1.0.2", "ksplit.io/passive-failures: \"0\"");
	kt_stop(e, p2, SIGKILL, 2000);
	run(e, kt_scaled(1000), &r);
	st = kt_status(e);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	printf("  [passive off] %ld failed connects; status: 127.1.0.2 failed %ld, 127.1.0.1 established %ld of %ld ok\n",
	       r.failed, ep_field(svc, "127.1.0.2", "failed"), ep_field(svc, "127.1.0.1", "established"),
	       r.ok);
	assert_true(r.failed > 0);
	assert_int_equal(ep_field(svc, "127.1.0.2", "failed"), 0);
	assert_int_equal(ep_field(svc, "127.1.0.1", "established"), r.ok);
	json_object_put(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threshold_then_none, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_cap_half, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_annotation_off_and_one, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_probation, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_off_no_state_callbacks, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests_name("passive", tests, NULL, NULL);
}
