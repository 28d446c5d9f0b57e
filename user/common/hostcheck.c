// SPDX-License-Identifier: BSD-2-Clause
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/magic.h>

#include "common/hostcheck.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

int ks_fs_magic(const char *path, long *magic)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	*magic = (long)st.f_type;
	return 0;
}

const char *ks_fs_name(long magic, char *buf, size_t len)
{
	static const struct { long magic; const char *name; } names[] = {
		{ BPF_FS_MAGIC, "bpf" },		{ TMPFS_MAGIC, "tmpfs" },
		{ CGROUP2_SUPER_MAGIC, "cgroup2" },	{ CGROUP_SUPER_MAGIC, "cgroup (v1)" },
		{ EXT4_SUPER_MAGIC, "ext4" },		{ XFS_SUPER_MAGIC, "xfs" },
		{ BTRFS_SUPER_MAGIC, "btrfs" },		{ OVERLAYFS_SUPER_MAGIC, "overlayfs" },
		{ SYSFS_MAGIC, "sysfs" },		{ PROC_SUPER_MAGIC, "proc" },
		{ RAMFS_MAGIC, "ramfs" },		{ NFS_SUPER_MAGIC, "nfs" },
		{ FUSE_SUPER_MAGIC, "fuse" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].magic == magic)
			return names[i].name;
	snprintf(buf, len, "filesystem 0x%lx", (unsigned long)magic);
	return buf;
}

int ks_caps_missing(char *buf, size_t len)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
	static const struct { int cap; const char *name; } need[] = {
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_NET_ADMIN, "CAP_NET_ADMIN" },
	};
	size_t i, o = 0;
	int n = 0;

#define HAVE(c) (d[(c) / 32].effective & (1U << ((c) % 32)))
	if (syscall(SYS_capget, &h, d))
		return -errno;
	if (len)
		buf[0] = '\0';
	if (HAVE(CAP_SYS_ADMIN))
		return 0;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (HAVE(need[i].cap))
			continue;
		n++;
		if (o < len)
			o += snprintf(buf + o, len - o, "%s%s", o ? "," : "", need[i].name);
	}
#undef HAVE
	return n;
}

static int ns_of(const char *pid, char *buf, size_t len)
{
	char path[300];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/ns/mnt", pid);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Other processes in the mount namespace ns ("mnt:[4026531841]"). */
static int ns_sharers(const char *ns)
{
	char self[16], other[64];
	struct dirent *de;
	DIR *d = opendir("/proc");
	int n = 0;

	if (!d)
		return -errno;
	snprintf(self, sizeof(self), "%d", (int)getpid());
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]) || !strcmp(de->d_name, self))
			continue;
		if (!ns_of(de->d_name, other, sizeof(other)) && !strcmp(other, ns))
			n++;
	}
	closedir(d);
	return n;
}

enum ks_pin_fate ks_pin_fate(const char *path, char *why, size_t len)
{
	char abs[PATH_MAX], host[PATH_MAX + 16], self_ns[64], init_ns[64];
	struct stat ours, theirs;
	int n;

	if (!realpath(path, abs) || stat(abs, &ours)) {
		snprintf(why, len, "the pin dir is gone");
		return KS_PINS_VANISH;
	}
	if (ns_of("self", self_ns, sizeof(self_ns)) || ns_of("1", init_ns, sizeof(init_ns)) ||
	    !strcmp(self_ns, init_ns)) {
		snprintf(why, len, "the pin dir is in the host's mount namespace");
		return KS_PINS_OUTLIVE;
	}
	/* PID 1's view of the same path: the same bpffs there means the host holds it too. */
	snprintf(host, sizeof(host), "/proc/1/root%s", abs);
	if (!stat(host, &theirs) && theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
		snprintf(why, len, "the host's mount namespace sees the same bpffs");
		return KS_PINS_OUTLIVE;
	}
	n = ns_sharers(self_ns);
	if (n > 0) {
		snprintf(why, len,
			 "the bpffs is private to mount namespace %s (not the host's); %d other process(es) keep it alive",
			 self_ns, n);
		return KS_PINS_NS_BOUND;
	}
	snprintf(why, len,
		 "the bpffs is private to mount namespace %s (not the host's) and this agent is its last process",
		 self_ns);
	return KS_PINS_VANISH;
}
