/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The per-test environment: a tag, a network namespace, a child cgroup and a
 * pin dir, all named after the tag and removed again by kt_env_teardown, by
 * the atexit handler or by the signal handlers (every live env is kept in a
 * registry for them). Also the children registry: every child the harness
 * forks is tracked by its env so that teardown can kill it.
 */
#ifndef KSPLIT_KT_ENV_H
#define KSPLIT_KT_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "datapath/dp.h"

#define KT_MAX_CHILDREN	16
#define KT_MAX_EXTRA_NETNS 4

struct kt_env {
	char tag[32];			/* "kstest-<pid>-<random>" */
	char netns[64];
	char netns_path[96];
	char cgroup[512];
	char pin_dir[256];
	bool netns_made, cgroup_made, pins_made;
	/* More namespaces of a topology test, "<tag>-<suffix>", deleted with the env. */
	char extra_netns[KT_MAX_EXTRA_NETNS][64];
	struct ks_dp *dp;
	/* kt_dp_open's TC flow timeouts, seconds (0: the defaults of abi.h). */
	uint32_t tc_tcp_timeout_s, tc_close_timeout_s, tc_udp_timeout_s;
	pid_t children[KT_MAX_CHILDREN];
	int64_t last_apply_ns;		/* CLOCK_MONOTONIC when the last apply returned */
	struct kt_env *next;		/* registry for the exit/signal cleanup */
};

int64_t kt_now_ns(void);
int64_t kt_now_ms(void);
/*
 * KT_SLOW=K: the machine is about K times slower than the one the tests
 * were written on (make vm-test: qemu without KVM). The share tests make
 * 1/K of their connects (kt_scaled) and kt_check_share widens its
 * tolerance by sqrt(K), the same number of sigmas; the harness's bounded
 * waits (kt_reap, kt_wait_in_file, a child's alarm) last K times longer.
 * 1 when unset.
 */
long kt_slow(void);
/*
 * n / kt_slow(), but never below 200 (or n): the exact counts the tests
 * assert ("3 failed connects, then none") need enough connects to reach
 * every endpoint.
 */
long kt_scaled(long n);
void kt_sleep_ms(long ms);

/* netns with lo up, cgroup, pin dir path (the dp is opened by kt_dp_open). */
int kt_env_setup(struct kt_env *e);
void kt_env_teardown(struct kt_env *e);
/* cmocka group/test fixtures around the two above; *state is a struct kt_env. */
int kt_setup(void **state);
int kt_teardown(void **state);

int kt_dp_open(struct kt_env *e, uint32_t max_services, uint32_t max_endpoints);
/*
 * One more netns, "<tag>-<suffix>" (lo up), deleted by the env's teardown;
 * its /run/netns path in path. 0 or -errno.
 */
int kt_netns_extra(struct kt_env *e, const char *suffix, char *path, size_t len);

/* For the other harness files. */
/* system(cmd); 0, or -EIO (logged) unless it exited 0. */
int kt_run(const char *cmd);
/* In every forked child: die with the test (or after timeout_s; 0: never), never run the parent's cleanup. */
void kt_child_init(int timeout_s);
/* Teardown kills the children it knows of. */
void kt_track_child(struct kt_env *e, pid_t pid);
/* SIGKILL and reap *pid if it is a child (> 0), then zero it. */
void kt_kill_child(pid_t *pid);
/* Reap pid within timeout_ms, else SIGKILL it. Returns the wait status, -1 if killed. */
int kt_reap(struct kt_env *e, pid_t pid, long timeout_ms);

#endif
