/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Host checks that turn a refusal from the kernel into a message that names
 * its cause: which filesystem a path is on, which capabilities the agent
 * lacks, and whether pins under a path outlive the agent's mount namespace.
 */
#ifndef KSPLIT_HOSTCHECK_H
#define KSPLIT_HOSTCHECK_H

#include <stddef.h>

/* statfs(2) f_type of path into *magic: 0 or -errno. */
int ks_fs_magic(const char *path, long *magic);
/* "tmpfs", "bpf", "cgroup2", ... for a statfs magic; a hex number for others. */
const char *ks_fs_name(long magic, char *buf, size_t len);

/*
 * Capabilities the datapath needs and the process lacks in its effective
 * set, as a comma list in buf ("CAP_BPF,CAP_NET_ADMIN"). Loading needs
 * CAP_BPF, attaching cgroup programs CAP_NET_ADMIN; CAP_SYS_ADMIN stands for
 * both. Returns how many are missing, or -errno when capget(2) fails.
 */
int ks_caps_missing(char *buf, size_t len);

enum ks_pin_fate {
	KS_PINS_OUTLIVE,	/* the host (PID 1's mount namespace) sees the same bpffs */
	KS_PINS_NS_BOUND,	/* private to this mount namespace; other processes keep it alive */
	KS_PINS_VANISH,		/* private to this mount namespace and nobody else is in it */
};

/*
 * Whether objects pinned under path survive this process. A bpffs mounted
 * in a private mount namespace (`unshare -m`, `ip netns exec`, a container
 * that mounted its own) lives as long as the namespace: when the agent was
 * its last process, every pin goes with it. why says which case it is.
 */
enum ks_pin_fate ks_pin_fate(const char *path, char *why, size_t len);

#endif
