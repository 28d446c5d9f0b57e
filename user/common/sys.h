/* SPDX-License-Identifier: BSD-2-Clause */
/* Host facts ksplit needs: where cgroup2 and bpffs are, and cgroup ids. */
#ifndef KSPLIT_SYS_H
#define KSPLIT_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_DEFAULT_PIN_DIR "/sys/fs/bpf/ksplit"

/* Mount point of the cgroup2 hierarchy, from /proc/mounts. 0 or -ENOENT. */
int ks_cgroup2_root(char *buf, size_t len);
/*
 * Mount bpffs on /sys/fs/bpf when pin_dir lies there and it is not bpffs
 * yet; *mounted (may be NULL) says whether this call mounted it.
 */
int ks_ensure_bpffs(const char *pin_dir, bool *mounted);
/* mkdir -p with mode 0700. */
int ks_mkdir_p(const char *path);
/* The cgroup id (kernfs inode) of a cgroup2 directory. */
int ks_cgroup_id(const char *path, uint64_t *id);

#endif
