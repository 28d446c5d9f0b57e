/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Harness helpers for tests that run the real `ksplit` binary against a
 * kt_env and then break its datapath from outside: the agent process with
 * its manifest dir and log, ksplit subcommands with their output, the
 * pinned links' ids, and a foreign program on the test cgroup.
 */
#ifndef KSPLIT_KT_AGENT_H
#define KSPLIT_KT_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <bpf/bpf.h>

#include "harness.h"

struct kt_agent {
	struct kt_env *env;
	char ksplit[PATH_MAX];		/* build/ksplit beside build/selftests/kern/ */
	char cfg[PATH_MAX];		/* /tmp/<tag>-config: the manifest dir */
	char log[PATH_MAX];		/* /tmp/<tag>-agent.log: stdout+stderr of every run */
	pid_t pid;
};

/* Find the binary and make the manifest dir; env teardown removes /tmp/<tag>-*. */
int kt_agent_init(struct kt_agent *a, struct kt_env *e);
/* Write name into the manifest dir in one rename. 0 or -errno. */
int kt_agent_put(struct kt_agent *a, const char *name, const char *text);
/*
 * `[wrap...] ksplit run --config CFG --cgroup CG --pin-dir PIN` (wrap: NULL
 * or a NULL-terminated prefix such as {"setpriv", ..., NULL}), logging to
 * a->log. Returns the pid (tracked by the env) or -1.
 */
pid_t kt_agent_spawn(struct kt_agent *a, const char *const *wrap);
/* SIGTERM and reap; the exit code, or -1 if it had to be killed. */
int kt_agent_stop(struct kt_agent *a);
/* Run `ksplit ARGS` with stdout and stderr captured; *rc is its exit code. Caller frees. */
char *kt_ksplit_run(struct kt_agent *a, const char *args, int *rc);
/* Run `cmd` through the shell with stdout and stderr captured. Caller frees. */
char *kt_sh_out(const char *cmd, int *rc);

/* The id of the link pinned as link_<hook> in pin_dir; 0 if none. */
uint32_t kt_link_id(const char *pin_dir, const char *hook);
/* Programs of attach type type effective on cgroup (the cgroup's and its ancestors'). */
int kt_cgroup_progs(const char *cgroup, enum bpf_attach_type type);
/*
 * Attach a do-nothing program named name ("return 1": allow, no rewrite)
 * of attach type type to cgroup through a bpf_link. Returns the link fd:
 * closing it detaches the program.
 */
int kt_foreign_attach(const char *cgroup, enum bpf_attach_type type, const char *name);

#endif
