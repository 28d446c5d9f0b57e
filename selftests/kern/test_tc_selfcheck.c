// SPDX-License-Identifier: BSD-2-Clause
/*
 * The self-check of the TC path: a program taken away behind the agent's
 * back (its tcx links detached, its clsact qdisc deleted) is put back
 * within a self-check round, said once per direction at warn, and the
 * VIP splits again; and its sweep of idle flows. Topology: tc_topo.h; the
 * agent runs with `--cgroup none --tc-iface kspod+`.
 *
 * Shares: n = 2,000 per round, sigma of a 75% share 0.97 points; the
 * 4-point tolerance is 4.1 sigma.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "tc_topo.h"

#define N	2000
#define TOL	4
#define VIP4	"198.19.0.10"
#define RELINK	"msg=\"TC program was taken away; re-attached it\" iface=kspod0"

static const char *const servers[] = { "198.18.1.1:8080", "198.18.1.3:8080" };

/* VIP4:80 TCP: v1 (198.18.1.1) 25, v2 (198.18.1.3) 75. */
static void put_config(struct kt_agent *t)
{
	struct kt_buf b = {};

	kt_yaml_gateway(&b, "gw", VIP4, "tcp:TCP:80");
	kt_yaml_service(&b, "v1", 80, NULL);
	kt_yaml_slice(&b, "v1", "IPv4", "198.18.1.1");
	kt_yaml_service(&b, "v2", 80, NULL);
	kt_yaml_slice(&b, "v2", "IPv4", "198.18.1.3");
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=25 v2=75");
	kt_agent_put(t, "routes.yaml", b.s);
	kt_buf_free(&b);
}

static void start(struct kt_agent *t, struct kt_topo *tp, const char *const *extra)
{
	kt_topo_ns(&t->env, tp);
	put_config(t);
	kt_topo_links(&t->env, tp);
	kt_agent_in_node(t, tp, extra, 1, true);
	assert_int_equal(KT_IN_NS(&t->env, tp->be, kt_servers_start(&t->env, servers, 2)), 0);
}

/* N connects from the pod to the VIP: all through, split 25/75, the pod sees the VIP. */
static void assert_splits(struct kt_env *e)
{
	struct kt_client_opts o = { .target = VIP4 ":80", .mode = KT_TCP, .count = N,
				    .outside_cgroup = true };
	struct kt_result r;

	assert_int_equal(kt_client_run(e, &o, &r), 0);
	kt_result_print(o.target, &r);
	assert_int_equal(r.attempts, N);
	assert_int_equal(r.failed, 0);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), N);
	kt_assert_share("198.18.1.3 (v2, weight 75)", kt_tally_get(&r.ids, "198.18.1.3:8080"), N,
			75, TOL);
}

/* Both directions' re-attach lines, once each, within two self-check rounds. */
static void wait_relinked(struct kt_agent *t, int total)
{
	assert_true(kt_wait_in_file(t->log, RELINK, total, 12000) >= total);
}

static int count_in_log(struct kt_agent *t, const char *needle)
{
	return kt_count_in_file(t->log, needle);
}

/* `bpftool link detach` on both pinned tcx links: the program is back within a round. */
static void test_tcx_detached(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	static const char *const args[] = { "--cgroup", "none", "--tc-iface", "kspod+", NULL };
	char path[PATH_MAX];
	struct dirent *de;
	struct kt_topo tp;
	int n = 0, fd;
	DIR *d;

	start(t, &tp, args);
	assert_splits(e);
	d = opendir(e->pin_dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "link_tc_", 8))
			continue;
		snprintf(path, sizeof(path), "%s/%s", e->pin_dir, de->d_name);
		fd = bpf_obj_get(path);
		assert_true(fd >= 0);
		assert_int_equal(bpf_link_detach(fd), 0);
		close(fd);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 2);
	wait_relinked(t, 2);
	assert_int_equal(count_in_log(t, RELINK " ifindex="), 2);
	assert_int_equal(count_in_log(t, RELINK), 2);
	assert_splits(e);
	assert_int_equal(KT_TC_STAT(e, new_flows), 2 * N);
	/* Put right once: the next rounds find nothing to do. */
	kt_sleep_ms(6000);
	assert_int_equal(count_in_log(t, RELINK), 2);
	{
		char a[PATH_MAX + 32], *out;
		struct json_object *st, *dp;
		int rc;

		snprintf(a, sizeof(a), "status --json --pin-dir %s", e->pin_dir);
		out = kt_ksplit_out(t, a, &rc);
		assert_int_equal(rc, 0);
		st = json_tokener_parse(out);
		assert_true(json_object_object_get_ex(st, "datapath", &dp));
		assert_int_equal(json_object_get_int(json_object_object_get(dp, "tc_links")), 2);
		json_object_put(st);
		free(out);
	}
}

/* The clsact fallback: `tc qdisc del dev kspod0 clsact` takes both filters; both come back. */
static void test_clsact_deleted(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	static const char *const args[] = { "--cgroup", "none", "--tc-iface", "kspod+",
					    "--tc-clsact", NULL };
	struct kt_topo tp;

	start(t, &tp, args);
	assert_splits(e);
	kt_sh_in(tp.node, "tc qdisc del dev kspod0 clsact");
	wait_relinked(t, 2);
	assert_int_equal(count_in_log(t, RELINK " ifindex="), 2);
	assert_int_equal(count_in_log(t, "attach=clsact old_link_id=0"), 2);
	assert_splits(e);
	/* A filter deleted alone (the qdisc stays): the same. */
	kt_sh_in(tp.node, "tc filter del dev kspod0 ingress");
	wait_relinked(t, 3);
	assert_splits(e);
	assert_int_equal(count_in_log(t, RELINK), 3);
}

/*
 * The agent sweeps idle flows: with one-second timeouts (--tc-tcp-timeout,
 * --tc-close-timeout) every flow of N closed connections is gone from
 * ks_ct within a few self-check rounds, though the LRU has room for all.
 */
static void test_sweep(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	static const char *const args[] = { "--cgroup", "none", "--tc-iface", "kspod+",
					    "--tc-tcp-timeout", "1", "--tc-close-timeout", "1",
					    NULL };
	struct kt_topo tp;
	int i;

	start(t, &tp, args);
	assert_splits(e);
	assert_int_equal(KT_TC_STAT(e, new_flows), N);
	for (i = 0; i < 300 * kt_slow() && kt_ct_count(e); i++)
		kt_sleep_ms(100);
	assert_int_equal(kt_ct_count(e), 0);
	/* The next flows are new ones, and split as before. */
	assert_splits(e);
	assert_int_equal(KT_TC_STAT(e, new_flows), 2 * N);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tcx_detached, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_clsact_deleted, kt_agent_setup,
						kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_sweep, kt_agent_setup, kt_agent_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
