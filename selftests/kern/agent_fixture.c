// SPDX-License-Identifier: BSD-2-Clause
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.h"
#include "agent_fixture.h"
#include "manifest.h"

int kt_agent_init(struct kt_agent *t)
{
	if (kt_env_setup(&t->env))
		return -1;
	if (kt_build_path("ksplit", t->ksplit, sizeof(t->ksplit)))
		return -1;
	if (access(t->ksplit, X_OK)) {
		fprintf(stderr, "%s not found: run `make` first\n", t->ksplit);
		return -1;
	}
	snprintf(t->cfg, sizeof(t->cfg), "/tmp/%s-config", t->env.tag);
	snprintf(t->log, sizeof(t->log), "/tmp/%s-agent.log", t->env.tag);
	snprintf(t->tmp, sizeof(t->tmp), "/tmp/%s-staging.yaml", t->env.tag);
	return mkdir(t->cfg, 0700) ? -1 : 0;
}

void kt_agent_fini(struct kt_agent *t)
{
	char cmd[2 * PATH_MAX + 16];

	/* kt_env_teardown kills the agent (tracked child) and runs ks_dp_down. */
	kt_env_teardown(&t->env);
	if (t->cfg[0]) {
		/* The tests may have moved or replaced the dir: remove whatever is there now. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'.*", t->cfg, t->cfg);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", t->cfg);
	}
	if (t->tmp[0])
		unlink(t->tmp);
	if (t->log[0]) {
		if (getenv("KT_KEEP_LOG"))
			fprintf(stderr, "agent log kept: %s\n", t->log);
		else
			unlink(t->log);
	}
}

int kt_agent_setup(void **state)
{
	struct kt_agent *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	*state = t;
	if (kt_agent_init(t)) {
		/* cmocka skips the teardown when setup fails: clean up here. */
		kt_agent_teardown(state);
		return -1;
	}
	return 0;
}

int kt_agent_teardown(void **state)
{
	struct kt_agent *t = *state;

	if (!t)
		return 0;
	kt_agent_fini(t);
	free(t);
	*state = NULL;
	return 0;
}

void kt_agent_put(struct kt_agent *t, const char *name, const char *text)
{
	char path[PATH_MAX * 2];
	FILE *f = fopen(t->tmp, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	snprintf(path, sizeof(path), "%s/%s", t->cfg, name);
	assert_int_equal(rename(t->tmp, path), 0);
}

pid_t kt_agent_start(struct kt_agent *t, const char *const *wrap, const char *const *extra,
		     int expect_applied)
{
	const char *run[] = { t->ksplit, "run", KT_LOOPBACK,
			      t->kubeconfig ? "--kubeconfig" : "--config",
			      t->kubeconfig ? t->kubeconfig : t->cfg, "--cgroup",
			      t->env.cgroup, "--pin-dir", t->env.pin_dir, NULL };
	char *argv[40];
	size_t n = 0, i;
	int got;

	for (i = 0; wrap && wrap[i] && n < 12; i++)
		argv[n++] = (char *)wrap[i];
	for (i = 0; run[i]; i++)
		argv[n++] = (char *)run[i];
	for (i = 0; extra && extra[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	t->pid = kt_spawn(&t->env, argv, t->log);
	assert_true(t->pid > 0);
	t->env.pins_made = true;
	if (expect_applied) {
		got = kt_wait_in_file(t->log, KT_APPLIED, expect_applied, 20000);
		printf("  [agent] pid %d running, \"config applied\" lines: %d\n", t->pid, got);
		assert_true(got >= expect_applied);
	}
	return t->pid;
}

void kt_agent_stop(struct kt_agent *t)
{
	int st = kt_stop(&t->env, t->pid, SIGTERM, 10000);

	printf("  [agent] pid %d stopped by SIGTERM: exit status %d\n", t->pid,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	t->pid = 0;
}

char *kt_sh_out(const char *cmd, int *rc)
{
	struct kt_buf b = {};
	char line[4096];
	FILE *p;
	int st;

	kt_buf_printf(&b, "%s", "");
	p = popen(cmd, "r");
	if (!p) {
		*rc = -1;
		return b.s;
	}
	while (fgets(line, sizeof(line), p))
		kt_buf_printf(&b, "%s", line);
	st = pclose(p);
	*rc = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return b.s;
}

char *kt_ksplit_out(struct kt_agent *t, const char *args, int *rc)
{
	char cmd[PATH_MAX * 3 + 16];

	snprintf(cmd, sizeof(cmd), "%s %s 2>>%s", t->ksplit, args, t->log);
	return kt_sh_out(cmd, rc);
}

char *kt_ksplit_run(struct kt_agent *t, const char *args, int *rc)
{
	char cmd[PATH_MAX * 3 + 16];

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", t->ksplit, args);
	return kt_sh_out(cmd, rc);
}
