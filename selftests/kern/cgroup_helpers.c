// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "cgroup_helpers.h"
#include "env.h"
#include "common/sys.h"

int kt_cgroup_create(const char *name, char *path, size_t len)
{
	char root[PATH_MAX];
	int err;

	if (ks_cgroup2_root(root, sizeof(root))) {
		fprintf(stderr, "kern test: no cgroup2 mount\n");
		return -ENOENT;
	}
	if (snprintf(path, len, "%s/%s", root, name) >= (int)len)
		return -ENAMETOOLONG;
	if (mkdir(path, 0755)) {
		err = -errno;
		fprintf(stderr, "kern test: mkdir %s: %s\n", path, strerror(-err));
		return err;
	}
	return 0;
}

int kt_cgroup_join(const char *path)
{
	char procs[PATH_MAX];
	int fd, err = 0;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* After down, no ksplit program may stay attached to the test cgroup. */
static void check_clean(const char *path)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
		BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG,
		BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG,
		BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
		BPF_CGROUP_SOCK_OPS,
	};
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		__u32 cnt = 0;

		if (!bpf_prog_query(fd, types[i], 0, NULL, NULL, &cnt) && cnt)
			fprintf(stderr, "kern test: LEFT BEHIND: %u program(s) of attach type %d on %s\n",
				cnt, types[i], path);
	}
	close(fd);
}

int kt_cgroup_remove(const char *path)
{
	int i, err;

	check_clean(path);
	/* A killed child leaves the cgroup a moment after waitpid(). */
	for (i = 0; i < 200 && rmdir(path) && errno == EBUSY; i++)
		kt_sleep_ms(10);
	err = errno;	/* of the last rmdir, if it failed */
	if (!access(path, F_OK)) {
		fprintf(stderr, "kern test: cannot remove cgroup %s: %s\n", path, strerror(err));
		return -err;
	}
	return 0;
}
