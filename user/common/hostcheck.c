// SPDX-License-Identifier: BSD-2-Clause
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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

/* Whether the last bpf mount at mnt in our mountinfo is in a shared peer group. -ENOENT if none. */
static int mount_shared(const char *mnt)
{
	char line[4096], *sep, *tok, *save;
	int shared = -ENOENT, i;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	/* "36 35 0:40 / /sys/fs/bpf rw,relatime shared:7 - bpf bpf rw,mode=700" */
	while (fgets(line, sizeof(line), f)) {
		bool match = false, sh = false;

		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "bpf ", 4))
			continue;
		*sep = '\0';
		for (i = 0, tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
			if (i == 4)
				match = !strcmp(tok, mnt);
			else if (i >= 6 && !strncmp(tok, "shared:", 7))
				sh = true;
		}
		if (match)
			shared = sh;
	}
	fclose(f);
	return shared;
}

enum ks_pin_fate ks_pin_fate(const char *mnt, char *why, size_t len)
{
	char self_ns[64];
	int n, shared;

	if (!mnt) {
		snprintf(why, len, "the bpffs was mounted by someone else and lives in their mount");
		return KS_PINS_OUTLIVE;
	}
	shared = mount_shared(mnt);
	if (shared > 0) {
		snprintf(why, len, "the bpffs this agent mounted at %s propagates to its peer mounts", mnt);
		return KS_PINS_OUTLIVE;
	}
	if (shared < 0) {
		snprintf(why, len, "the bpffs this agent mounted at %s is gone", mnt);
		return KS_PINS_VANISH;
	}
	/* A private mount of a bpffs this process made: it lives as long as this mount namespace. */
	if (ns_of("self", self_ns, sizeof(self_ns)))
		snprintf(self_ns, sizeof(self_ns), "?");
	n = ns_sharers(self_ns);
	if (n > 0) {
		snprintf(why, len,
			 "this agent mounted the bpffs at %s privately in mount namespace %s; %d other process(es) keep that namespace alive",
			 mnt, self_ns, n);
		return KS_PINS_NS_BOUND;
	}
	snprintf(why, len,
		 "this agent mounted the bpffs at %s privately in mount namespace %s and is its last process",
		 mnt, self_ns);
	return KS_PINS_VANISH;
}
