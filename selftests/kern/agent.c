// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

int kt_build_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = 0;
	if (snprintf(buf, len, "%s/../..", dirname(exe)) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int kt_build_path(const char *name, char *buf, size_t len)
{
	char dir[PATH_MAX];
	int err = kt_build_dir(dir, sizeof(dir));

	if (err)
		return err;
	if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

pid_t kt_spawn(struct kt_env *e, char *const argv[], const char *log_path)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		kt_child_init(0);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	kt_track_child(e, pid);
	return pid;
}

pid_t kt_spawn_in_netns(struct kt_env *e, char *const argv[], const char *log_path)
{
	char netarg[160];
	char *nsargv[16] = { "/usr/bin/nsenter", netarg };
	int i;

	snprintf(netarg, sizeof(netarg), "--net=%s", e->netns_path);
	for (i = 0; argv[i] && i < 13; i++)
		nsargv[2 + i] = argv[i];
	nsargv[2 + i] = NULL;
	return kt_spawn(e, nsargv, log_path);
}

int kt_stop(struct kt_env *e, pid_t pid, int sig, long timeout_ms)
{
	kill(pid, sig);
	return kt_reap(e, pid, timeout_ms);
}

int kt_count_in_file(const char *path, const char *needle)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

int kt_wait_in_file(const char *path, const char *needle, int min_count, long timeout_ms)
{
	int64_t end = kt_now_ns() + timeout_ms * kt_slow() * 1000000LL;
	int n;

	while ((n = kt_count_in_file(path, needle)) < min_count) {
		if (kt_now_ns() > end)
			return -ETIMEDOUT;
		kt_sleep_ms(10);
	}
	return n;
}
