/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Processes the tests exec (the real `ksplit` agent, ks_server): started as
 * tracked children of the env, so teardown kills them, with their output in
 * a log file the tests wait on.
 */
#ifndef KSPLIT_KT_AGENT_H
#define KSPLIT_KT_AGENT_H

#include <stddef.h>
#include <sys/types.h>

#include "env.h"

/* The tests' VIPs are in 127.0.0.0/8, which `ksplit run` refuses without it. */
#define KT_LOOPBACK "--allow-loopback-vips"

/*
 * Where the programs under test were built: the test binary is
 * <build>/selftests/kern/test_X (also for build-san/). kt_build_dir gives
 * <build>, kt_build_path <build>/name. 0 or -errno.
 */
int kt_build_dir(char *buf, size_t len);
int kt_build_path(const char *name, char *buf, size_t len);

/* A process (the agent) with stdout+stderr appended to log_path; tracked for teardown. */
pid_t kt_spawn(struct kt_env *e, char *const argv[], const char *log_path);
/*
 * The same inside the test netns (through nsenter, as a hostNetwork agent
 * or a pod runs); argv has at most 13 entries.
 */
pid_t kt_spawn_in_netns(struct kt_env *e, char *const argv[], const char *log_path);
/* Send sig, reap within timeout_ms (else SIGKILL); the wait status or -1. */
int kt_stop(struct kt_env *e, pid_t pid, int sig, long timeout_ms);
int kt_count_in_file(const char *path, const char *needle);
/* Wait until needle occurs at least min_count times; the count or -ETIMEDOUT. */
int kt_wait_in_file(const char *path, const char *needle, int min_count, long timeout_ms);

#endif
