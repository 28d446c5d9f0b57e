/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test cgroups: always a child of the cgroup2 root, never the root itself
 * (a hook there would catch every process on the machine).
 */
#ifndef KSPLIT_KT_CGROUP_HELPERS_H
#define KSPLIT_KT_CGROUP_HELPERS_H

#include <stddef.h>

/* mkdir <cgroup2 root>/name; its path into path. 0 or -errno (logged). */
int kt_cgroup_create(const char *name, char *path, size_t len);
/* Move the calling process into the cgroup at path. 0 or -errno. */
int kt_cgroup_join(const char *path);
/*
 * Report any ksplit program still attached to it (loudly: a datapath down
 * must have detached them), then rmdir it. 0 or -errno (logged).
 */
int kt_cgroup_remove(const char *path);

#endif
