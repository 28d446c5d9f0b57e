// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "common/log.h"
#include "common/sys.h"

int ks_cgroup2_root(char *buf, size_t len)
{
	struct mntent *m;
	int err = -ENOENT;
	FILE *f;

	f = setmntent("/proc/mounts", "r");
	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		if (snprintf(buf, len, "%s", m->mnt_dir) >= (int)len)
			err = -ENAMETOOLONG;
		else
			err = 0;
		break;
	}
	endmntent(f);
	return err;
}

int ks_mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int ks_ensure_bpffs(const char *pin_dir, bool *mounted)
{
	struct statfs st;

	if (mounted)
		*mounted = false;
	if (strncmp(pin_dir, "/sys/fs/bpf/", 12))
		return 0;
	if (statfs("/sys/fs/bpf", &st))
		return -errno;
	if (st.f_type == BPF_FS_MAGIC)
		return 0;
	pr_info("mounting bpffs", "path=/sys/fs/bpf");
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return -errno;
	if (mounted)
		*mounted = true;
	return 0;
}

int ks_cgroup_id(const char *path, uint64_t *id)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}
