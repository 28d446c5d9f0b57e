// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent reads a Kubernetes ConfigMap volume: kubelet writes a new
 * timestamped directory, points a temporary symlink at it and renames that
 * over "..data"; the visible files are symlinks through "..data". The agent
 * must see the swap (inotify on the directory) and apply the new routes,
 * and SIGHUP must re-apply without changing anything.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define N 20000L

static const char *const servers[] = { "127.1.0.1:8080", "127.2.0.1:8080" };

static void write_version(const char *dir, const char *ver, const char *weights)
{
	char path[PATH_MAX];
	struct kt_buf b = {};
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, ver);
	assert_int_equal(mkdir(path, 0755), 0);
	kt_yaml_ab(&b, "127.1.0.1", "127.2.0.1");
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", weights);
	snprintf(path, sizeof(path), "%s/%s/routes.yaml", dir, ver);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(b.s, f);
	assert_int_equal(fclose(f), 0);
	kt_buf_free(&b);
}

/* What kubelet's atomic writer does: new ..data_tmp symlink renamed over ..data. */
static void point_data(const char *dir, const char *ver)
{
	char tmp[PATH_MAX], data[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s/..data_tmp", dir);
	snprintf(data, sizeof(data), "%s/..data", dir);
	assert_int_equal(symlink(ver, tmp), 0);
	assert_int_equal(rename(tmp, data), 0);
}

static long v1_hits(struct kt_env *e)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };
	struct kt_result r;

	assert_int_equal(kt_client_run(e, &o, &r), 0);
	assert_int_equal(r.failed, 0);
	return kt_tally_get(&r.ids, servers[0]);
}

static void test_data_swap_and_sighup(void **state)
{
	struct kt_env *e = *state;
	char dir[128], log[160], ksplit[PATH_MAX], path[PATH_MAX];
	pid_t agent;

	assert_int_equal(kt_build_path("ksplit", ksplit, sizeof(ksplit)), 0);
	snprintf(dir, sizeof(dir), "/tmp/%s-cm", e->tag);
	snprintf(log, sizeof(log), "/tmp/%s-agent.log", e->tag);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(kt_servers_start(e, servers, 2), 0);

	write_version(dir, "..2026_11_26_01", "v1=25 v2=75");
	point_data(dir, "..2026_11_26_01");
	snprintf(path, sizeof(path), "%s/routes.yaml", dir);
	assert_int_equal(symlink("..data/routes.yaml", path), 0);
	{
		char *argv[] = { ksplit, "run", KT_LOOPBACK, "--config", dir, "--cgroup", e->cgroup,
				 "--pin-dir", e->pin_dir, NULL };

		e->pins_made = true;
		agent = kt_spawn(e, argv, log);
		assert_true(agent > 0);
	}
	assert_int_equal(kt_wait_in_file(log, "msg=\"config applied\"", 1, 20000), 1);
	kt_assert_share("v1 before the swap", v1_hits(e), N, 25, 1.5);

	write_version(dir, "..2026_11_26_02", "v1=90 v2=10");
	point_data(dir, "..2026_11_26_02");
	assert_int_equal(kt_wait_in_file(log, "msg=\"config applied\"", 2, 10000), 2);
	assert_int_equal(kt_count_in_file(log, "changed=1"), 1);
	kt_assert_share("v1 after the ..data swap", v1_hits(e), N, 90, 1.5);

	kill(agent, SIGHUP);
	assert_int_equal(kt_wait_in_file(log, "msg=\"config applied\"", 3, 10000), 3);
	/* A re-apply of the same manifests touches nothing. */
	assert_int_equal(kt_count_in_file(log, "reason=sighup"), 1);
	assert_int_equal(kt_count_in_file(log, "unchanged=1 backends_written=0"), 1);
	kt_assert_share("v1 after SIGHUP", v1_hits(e), N, 90, 1.5);

	kt_stop(e, agent, SIGTERM, 5000);
	snprintf(path, sizeof(path), "rm -rf '%s' '%s'", dir, log);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_data_swap_and_sighup, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests_name("configmap", tests, NULL, NULL);
}
