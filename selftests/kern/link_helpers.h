/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * For tests that break the datapath from outside: the pinned links' ids,
 * the programs effective on a cgroup, and a foreign program on it.
 */
#ifndef KSPLIT_KT_LINK_HELPERS_H
#define KSPLIT_KT_LINK_HELPERS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <bpf/bpf.h>

#include "harness.h"

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
