/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A test that drives the real `ksplit` binary as an operator would: a
 * manifest directory written by atomic renames, the agent started and
 * stopped as a tracked child, and `ksplit <command>` run for its output.
 * The struct is the cmocka state; its env comes first so that the env's
 * teardown registry sees it.
 */
#ifndef KSPLIT_KT_AGENT_FIXTURE_H
#define KSPLIT_KT_AGENT_FIXTURE_H

#include <limits.h>
#include <sys/types.h>

#include "env.h"

#define KT_APPLIED "msg=\"config applied\""

struct kt_agent {
	struct kt_env env;		/* first */
	char ksplit[PATH_MAX];
	char cfg[PATH_MAX];		/* manifest dir the agent watches */
	char log[PATH_MAX];
	char tmp[PATH_MAX];		/* staging file for atomic renames, same filesystem */
	pid_t pid;			/* the running agent, 0 when none */
	const char *kubeconfig;		/* set: the agent reads the API (--kubeconfig), not cfg */
};

/* Set up t->env, find the binary, make the empty config dir; 0 or -1 (then call kt_agent_fini). */
int kt_agent_init(struct kt_agent *t);
/* Tear down the env (agent included) and remove the config dir, staging file and log. */
void kt_agent_fini(struct kt_agent *t);
/* cmocka fixtures around the two, for a state that is just a struct kt_agent. */
int kt_agent_setup(void **state);
int kt_agent_teardown(void **state);
/* Write cfg/name via the staging file and rename(2): the agent never reads half a file. */
void kt_agent_put(struct kt_agent *t, const char *name, const char *text);
/*
 * `[wrap...] ksplit run KT_LOOPBACK --config cfg --cgroup CG --pin-dir PIN [extra...]`
 * (wrap, e.g. a setpriv prefix, and extra each end with NULL and may be
 * NULL), logging to t->log; waits until the log holds expect_applied
 * "config applied" lines (0: does not wait). Returns the pid.
 */
pid_t kt_agent_start(struct kt_agent *t, const char *const *wrap, const char *const *extra,
		     int expect_applied);
/* SIGTERM the agent and reap it; asserts a clean exit 0. */
void kt_agent_stop(struct kt_agent *t);
/* Run `ksplit ARGS`, stderr appended to the agent log; stdout returned (free it), *rc its exit code. */
char *kt_ksplit_out(struct kt_agent *t, const char *args, int *rc);
/* The same with stderr captured too. */
char *kt_ksplit_run(struct kt_agent *t, const char *args, int *rc);
/* Run cmd through the shell, capturing stdout (and what cmd redirects to it); *rc its exit code (-1 if killed). */
char *kt_sh_out(const char *cmd, int *rc);

#endif
