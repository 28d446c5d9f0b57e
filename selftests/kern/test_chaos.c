// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent under the faults an operator's node produces: a second agent on
 * the same pin dir (a DaemonSet surge, a debug run), `ksplit down` while one
 * runs, a config file rewritten without pause, and a config directory
 * replaced underneath the agent.
 *
 * Shares: n = 20,000, sigma <= 0.36 points, tolerance 1.5 points: over 4 sigma.
 * At 10,000 (3.5 sigma) chance alone failed a CI run: `make test` makes some
 * 90 share checks, so each needs a tolerance of about 4 sigma or more.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define N	20000
#define TOL	1.5

static const char *const servers[] = { "127.1.0.1:8080", "127.2.0.1:8080" };

/* The whole config (gateway, v1, v2, route w1/w2) into dir/routes.yaml via rename. */
static void write_config(struct kt_agent *t, const char *dir, int w1, int w2)
{
	char path[PATH_MAX * 2], be[64];
	struct kt_buf b = {};
	FILE *f;

	snprintf(be, sizeof(be), "v1=%d v2=%d", w1, w2);
	kt_yaml_ab(&b, "127.1.0.1", "127.2.0.1");
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", be);
	f = fopen(t->tmp, "w");
	assert_non_null(f);
	assert_true(fputs(b.s, f) >= 0);
	assert_int_equal(fclose(f), 0);
	snprintf(path, sizeof(path), "%s/routes.yaml", dir);
	assert_int_equal(rename(t->tmp, path), 0);
	kt_buf_free(&b);
}

static void measure(struct kt_agent *t, const char *what, double w1)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };
	struct kt_result r;

	assert_int_equal(kt_client_run(&t->env, &o, &r), 0);
	assert_int_equal(r.failed, 0);
	kt_assert_share(what, kt_tally_get(&r.ids, servers[0]), N, w1, TOL);
}

static int chaos_setup(void **state)
{
	struct kt_agent *t;

	if (kt_agent_setup(state))
		return -1;
	t = *state;
	return kt_servers_start(&t->env, servers, 2);
}

/* "holder_pid=<pid>" as the waiting agent logs it. */
static void holder_field(char *buf, size_t len, pid_t pid)
{
	snprintf(buf, len, "holder_pid=%d", (int)pid);
}

static void test_one_agent_per_pin_dir(void **state)
{
	struct kt_agent *t = *state;
	char dir_b[PATH_MAX + 8], log_b[PATH_MAX + 8], args[PATH_MAX * 3], field[64], *out;
	char *argv_b[] = { t->ksplit, "run", KT_LOOPBACK, "--config", dir_b, "--cgroup",
			   t->env.cgroup, "--pin-dir", t->env.pin_dir, NULL };
	pid_t b;
	int rc, st;

	write_config(t, t->cfg, 25, 75);
	kt_agent_start(t, NULL, NULL, 1);
	measure(t, "agent A, 25/75", 25);

	/* Agent B, another config on the same pin dir: it must wait, touching nothing. */
	snprintf(dir_b, sizeof(dir_b), "%s.b", t->cfg);
	snprintf(log_b, sizeof(log_b), "%s.b.log", t->cfg);
	assert_int_equal(mkdir(dir_b, 0700), 0);
	write_config(t, dir_b, 90, 10);
	b = kt_spawn(&t->env, argv_b, log_b);
	assert_true(b > 0);
	assert_int_equal(kt_wait_in_file(log_b, "another agent holds the pin dir; waiting", 1,
					 10000), 1);
	holder_field(field, sizeof(field), t->pid);
	assert_int_equal(kt_count_in_file(log_b, field), 1);
	printf("  [lock] agent B waits, naming agent A (%s)\n", field);
	kt_sleep_ms(1000);
	assert_int_equal(kt_count_in_file(log_b, KT_APPLIED), 0);
	measure(t, "agent B waiting, A's 25/75 in force", 25);

	/* Agent C with --no-wait: exits 1 at once. */
	snprintf(args, sizeof(args), "run " KT_LOOPBACK " --config %s --cgroup %s --pin-dir %s --no-wait",
		 dir_b, t->env.cgroup, t->env.pin_dir);
	out = kt_ksplit_out(t, args, &rc);
	free(out);
	printf("  [lock] agent C --no-wait: exit %d\n", rc);
	assert_int_equal(rc, 1);
	assert_int_equal(kt_count_in_file(t->log, "exiting (--no-wait)"), 1);

	/* down while an agent runs: refused, everything stays pinned. */
	snprintf(args, sizeof(args), "down --pin-dir %s", t->env.pin_dir);
	out = kt_ksplit_out(t, args, &rc);
	free(out);
	printf("  [lock] down while agent A runs: exit %d\n", rc);
	assert_int_equal(rc, 1);
	assert_int_equal(kt_count_in_file(t->log, "stop it first, or use --force"), 1);
	snprintf(args, sizeof(args), "%s/ks_services", t->env.pin_dir);
	assert_int_equal(access(args, F_OK), 0);
	measure(t, "after refused down, 25/75", 25);

	/* A exits (a rolling update): B takes over and applies its own config. */
	kt_agent_stop(t);
	assert_int_equal(kt_wait_in_file(log_b, "took over the pin dir", 1, 5000), 1);
	assert_int_equal(kt_wait_in_file(log_b, KT_APPLIED, 1, 20000), 1);
	measure(t, "agent B took over, 90/10", 90);

	st = kt_stop(&t->env, b, SIGTERM, 10000);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Rewrite a manifest every 50 ms for storm_ms. */
static pid_t storm(struct kt_agent *t, long storm_ms)
{
	char tmp[PATH_MAX + 16], path[PATH_MAX + 16];
	pid_t pid = fork();
	int64_t end;

	if (pid)
		return pid;
	kt_child_init(30);
	snprintf(tmp, sizeof(tmp), "%s.noise", t->cfg);
	snprintf(path, sizeof(path), "%s/noise.yaml", t->cfg);
	end = kt_now_ms() + storm_ms;
	while (kt_now_ms() < end) {
		FILE *f = fopen(tmp, "w");

		if (!f || fprintf(f, "# %lld\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: "
				  "noise}\n", (long long)kt_now_ms()) < 0 || fclose(f) ||
		    rename(tmp, path))
			_exit(1);
		usleep(50000);
	}
	_exit(0);
}

static void test_debounce_capped(void **state)
{
	struct kt_agent *t = *state;
	const long storm_ms = 4000;
	int64_t t0, t1;
	pid_t s;
	int st;

	write_config(t, t->cfg, 25, 75);
	kt_agent_start(t, NULL, NULL, 1);
	s = storm(t, storm_ms);
	assert_true(s > 0);
	kt_track_child(&t->env, s);
	kt_sleep_ms(500);
	/* The weight edit lands in the middle of a 20 Hz storm of rewrites. */
	t0 = kt_now_ms();
	write_config(t, t->cfg, 90, 10);
	assert_int_equal(kt_wait_in_file(t->log, " changed=1 removed", 1, 10000), 1);
	t1 = kt_now_ms();
	st = kt_reap(&t->env, s, storm_ms + 5000);
	printf("  [debounce] weight edit applied %lld ms after the write, during a %ld ms storm "
	       "at 20 Hz\n", (long long)(t1 - t0), storm_ms);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Without the cap the edit waits for the storm to end (3.5 s after it). */
	assert_true(t1 - t0 < storm_ms - 500);
	measure(t, "after the storm, 90/10", 90);
	kt_agent_stop(t);
}

static void test_replaced_dir(void **state)
{
	struct kt_agent *t = *state;
	char old[PATH_MAX + 8], fresh[PATH_MAX + 8];
	int applied;

	write_config(t, t->cfg, 25, 75);
	kt_agent_start(t, NULL, NULL, 1);
	measure(t, "before the dir is replaced, 25/75", 25);

	/* mv dir away; a new dir in its place (renamed in whole, as a deploy tool does). */
	snprintf(old, sizeof(old), "%s.old", t->cfg);
	snprintf(fresh, sizeof(fresh), "%s.new", t->cfg);
	assert_int_equal(rename(t->cfg, old), 0);
	assert_int_equal(mkdir(fresh, 0700), 0);
	write_config(t, fresh, 90, 10);
	kt_sleep_ms(300);
	applied = kt_count_in_file(t->log, KT_APPLIED);
	assert_int_equal(rename(fresh, t->cfg), 0);
	assert_true(kt_wait_in_file(t->log, " changed=1 removed", 1, 10000) == 1);
	measure(t, "new dir, 90/10", 90);

	/* Edits in the new dir are seen: the watch moved with the name. */
	applied = kt_count_in_file(t->log, KT_APPLIED);
	write_config(t, t->cfg, 50, 50);
	assert_true(kt_wait_in_file(t->log, " changed=1 removed", 2, 10000) == 2);
	assert_true(kt_count_in_file(t->log, KT_APPLIED) > applied);
	measure(t, "edit in the new dir, 50/50", 50);
	kt_agent_stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_agent_per_pin_dir, chaos_setup,
						kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_debounce_capped, chaos_setup,
						kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_replaced_dir, chaos_setup, kt_agent_teardown),
	};

	return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
