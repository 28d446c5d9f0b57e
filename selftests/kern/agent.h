/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Processes the tests exec (the real `ksplit` agent, ks_server): started as
 * tracked children of the env, so teardown kills them, with their output in
 * a log file the tests wait on.
 */
#ifndef KSPLIT_KT_AGENT_H
#define KSPLIT_KT_AGENT_H

#include <sys/types.h>

#include "env.h"

/* A process (the agent) with stdout+stderr appended to log_path; tracked for teardown. */
pid_t kt_spawn(struct kt_env *e, char *const argv[], const char *log_path);
/* Send sig, reap within timeout_ms (else SIGKILL); the wait status or -1. */
int kt_stop(struct kt_env *e, pid_t pid, int sig, long timeout_ms);
int kt_count_in_file(const char *path, const char *needle);
/* Wait until needle occurs at least min_count times; the count or -ETIMEDOUT. */
int kt_wait_in_file(const char *path, const char *needle, int min_count, long timeout_ms);

#endif
