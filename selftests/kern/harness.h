/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Real-kernel test harness: the one header the tests include. Every test
 * gets its own network namespace, child cgroup (never the cgroup2 root: a
 * hook there would catch every process on the machine) and pin dir, all
 * with a random suffix so that parallel runs cannot collide, and all
 * removed again by kt_env_teardown, by the atexit handler, or by the
 * SIGINT/SIGTERM handler.
 *
 * Servers and clients are forked children of the test process: the test
 * process itself stays outside the test cgroup and the test netns, so a
 * failing assertion can never leave it hooked or stranded.
 *
 *   env.h             the per-test environment, teardown, children, bpffs
 *   cgroup_helpers.h  the test cgroup
 *   net_helpers.h     netns, addresses, lo, /proc/net/tcp, the server child
 *   clients.h         client children
 *   shares.h          what clients measured, share assertions
 *   manifest.h        manifests and their apply
 *   status.h          status JSON of the pinned maps
 *   agent.h           processes the tests exec (the agent), their logs
 */
#ifndef KSPLIT_KT_HARNESS_H
#define KSPLIT_KT_HARNESS_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "env.h"
#include "cgroup_helpers.h"
#include "net_helpers.h"
#include "clients.h"
#include "shares.h"
#include "manifest.h"
#include "status.h"
#include "agent.h"
#include "agent_fixture.h"

#endif
