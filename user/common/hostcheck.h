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
	KS_PINS_OUTLIVE,	/* someone else's bpffs, or ours propagated to peer mounts */
	KS_PINS_NS_BOUND,	/* ours, private to this mount namespace; other processes keep it */
	KS_PINS_VANISH,		/* ours, private, and this process is the namespace's last */
};

/*
 * Whether objects pinned on the bpffs that this process mounted at mnt (NULL:
 * it mounted none) survive it. Each `mount -t bpf` makes a new bpffs, alive
 * while a mount of it is: one mounted privately in a mount namespace of its
 * own (`unshare -m`, `ip netns exec`, a container) goes when the namespace
 * does, every pin with it. Another's bpffs is taken to outlive us (it was
 * there before we came). why says which case it is.
 */
enum ks_pin_fate ks_pin_fate(const char *mnt, char *why, size_t len);

#endif
