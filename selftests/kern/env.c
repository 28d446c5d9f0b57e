// SPDX-License-Identifier: BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "env.h"
#include "cgroup_helpers.h"
#include "net_helpers.h"

/* Live environments, for the exit and signal cleanup. */
static struct kt_env *g_envs;
static bool g_is_child;
static bool g_handlers;
static bool g_bpffs_ours;	/* /sys/fs/bpf was not mounted when the first env was made */

#define BPFFS "/sys/fs/bpf"

static bool bpffs_mounted(void)
{
	struct statfs st;

	return !statfs(BPFFS, &st) && st.f_type == BPF_FS_MAGIC;
}

/*
 * The datapath mounts bpffs when it is missing (as the agent must). A test
 * run that found it unmounted leaves it so, unless someone else pinned
 * something there meanwhile: then it stays, their pins with it.
 */
static void bpffs_release(void)
{
	struct dirent *de;
	bool busy = false;
	DIR *d;

	if (!g_bpffs_ours || !bpffs_mounted())
		return;
	d = opendir(BPFFS);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "maps.debug") && strcmp(de->d_name, "progs.debug"))
			busy = true;
	closedir(d);
	if (!busy && umount(BPFFS))
		fprintf(stderr, "kern test: umount %s: %s\n", BPFFS, strerror(errno));
}

int64_t kt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t kt_now_ms(void)
{
	return kt_now_ns() / 1000000;
}

void kt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

long kt_slow(void)
{
	const char *v = getenv("KT_SLOW");
	char *end;
	long k;

	if (!v || !*v)
		return 1;
	k = strtol(v, &end, 10);
	if (*end || k < 1) {
		fprintf(stderr, "kern test: KT_SLOW=%s is not a positive integer\n", v);
		exit(2);
	}
	return k;
}

long kt_scaled(long n)
{
	long k = n / kt_slow(), floor = n < 200 ? n : 200;

	return k > floor ? k : floor;
}

int kt_run(const char *cmd)
{
	int rc = system(cmd);

	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc)) {
		fprintf(stderr, "kern test: command failed (%d): %s\n", rc, cmd);
		return -EIO;
	}
	return 0;
}

static void cleanup_all(void)
{
	if (g_is_child)
		return;
	while (g_envs)
		kt_env_teardown(g_envs);
	bpffs_release();
}

/*
 * Not async-signal-safe (system(), free()), but the process is about to die
 * anyway and leaving a netns, cgroup or attached program behind is worse.
 */
static void on_signal(int sig)
{
	if (!g_is_child) {
		fprintf(stderr, "kern test: signal %d, cleaning up\n", sig);
		cleanup_all();
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	if (g_handlers)
		return;
	g_handlers = true;
	g_bpffs_ours = !bpffs_mounted();
	/* Results and cmocka's own lines interleave with stderr in the right order. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	atexit(cleanup_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGALRM, on_signal);
	signal(SIGPIPE, SIG_IGN);
}

void kt_child_init(int timeout_s)
{
	g_is_child = true;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(timeout_s * kt_slow());
}

void kt_track_child(struct kt_env *e, pid_t pid)
{
	int i;

	for (i = 0; i < KT_MAX_CHILDREN; i++) {
		if (!e->children[i]) {
			e->children[i] = pid;
			return;
		}
	}
	/* No slot: better to kill it now than to lose track of it. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void kt_kill_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void untrack_child(struct kt_env *e, pid_t pid)
{
	int i;

	for (i = 0; i < KT_MAX_CHILDREN; i++)
		if (e->children[i] == pid)
			e->children[i] = 0;
}

int kt_reap(struct kt_env *e, pid_t pid, long timeout_ms)
{
	int64_t end = kt_now_ns() + timeout_ms * kt_slow() * 1000000LL;
	int status = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if (kt_now_ns() > end) {
			fprintf(stderr, "kern test: child %d did not finish, killing it\n", pid);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			status = -1;
			break;
		}
		kt_sleep_ms(5);
	}
	untrack_child(e, pid);
	return status;
}

int kt_env_setup(struct kt_env *e)
{
	uint32_t rnd = 0;

	install_handlers();
	memset(e, 0, sizeof(*e));
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)kt_now_ns();
	snprintf(e->tag, sizeof(e->tag), "kstest-%d-%06x", getpid(), rnd & 0xffffff);
	e->next = g_envs;
	g_envs = e;

	snprintf(e->netns, sizeof(e->netns), "%s", e->tag);
	snprintf(e->netns_path, sizeof(e->netns_path), "/run/netns/%s", e->netns);
	if (kt_netns_add(e->netns))
		return -1;
	e->netns_made = true;
	if (kt_netns_sh(e, "ip link set lo up"))
		return -1;

	if (kt_cgroup_create(e->tag, e->cgroup, sizeof(e->cgroup)))
		return -1;
	e->cgroup_made = true;
	snprintf(e->pin_dir, sizeof(e->pin_dir), "/sys/fs/bpf/%s", e->tag);
	/* run-tests.sh looks for leftovers by this name. */
	printf("  [env] %s: netns %s, cgroup %s, pin dir %s\n", e->tag, e->netns, e->cgroup,
	       e->pin_dir);
	return 0;
}

/*
 * ks_dp_down removes only the names it knows. The pin dir is ours alone
 * (random name), so whatever is left in it (a map or link added to the BPF
 * object but not to datapath/hooks.c's list) is detached and removed here, loudly:
 * the machine must end clean even when `down` has a gap.
 */
static void sweep_pin_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fprintf(stderr, "kern test: LEFT BEHIND by ks_dp_down: %s (removing it)\n", path);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			/* Fails harmlessly (EINVAL) when the pin is a map. */
			bpf_link_detach(fd);
			close(fd);
		}
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void kt_env_teardown(struct kt_env *e)
{
	struct kt_env **pp;
	char cmd[256];
	int i;

	for (i = 0; i < KT_MAX_CHILDREN; i++)
		kt_kill_child(&e->children[i]);
	if (e->dp) {
		ks_dp_close(e->dp);
		e->dp = NULL;
	}
	if (e->pin_dir[0] && (e->pins_made || !access(e->pin_dir, F_OK))) {
		if (ks_dp_down(e->pin_dir, NULL))
			fprintf(stderr, "kern test: ks_dp_down %s failed\n", e->pin_dir);
		sweep_pin_dir(e->pin_dir);
		e->pins_made = false;
	}
	if (e->cgroup_made) {
		kt_cgroup_remove(e->cgroup);
		e->cgroup_made = false;
	}
	if (e->netns_made) {
		kt_netns_del(e->netns);
		e->netns_made = false;
	}
	for (i = 0; i < KT_MAX_EXTRA_NETNS; i++)
		if (e->extra_netns[i][0]) {
			kt_netns_del(e->extra_netns[i]);
			e->extra_netns[i][0] = 0;
		}
	/*
	 * Files the tests name /tmp/<tag>-* (agent logs, config dirs): a failed
	 * assertion skips the test's own clean-up, this does not. The tag is
	 * ours ("kstest-<pid>-<hex>"), so the glob cannot reach anything else.
	 */
	if (e->tag[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- /tmp/%s-*", e->tag);
		kt_run(cmd);
	}
	for (pp = &g_envs; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
}

int kt_setup(void **state)
{
	struct kt_env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	*state = e;
	if (kt_env_setup(e)) {
		kt_env_teardown(e);
		free(e);
		*state = NULL;
		return -1;
	}
	return 0;
}

int kt_teardown(void **state)
{
	struct kt_env *e = *state;

	if (e) {
		kt_env_teardown(e);
		free(e);
	}
	*state = NULL;
	return 0;
}

int kt_netns_extra(struct kt_env *e, const char *suffix, char *path, size_t len)
{
	char cmd[256];
	int i;

	for (i = 0; i < KT_MAX_EXTRA_NETNS && e->extra_netns[i][0]; i++)
		;
	if (i == KT_MAX_EXTRA_NETNS)
		return -ENOSPC;
	if (snprintf(cmd, sizeof(e->extra_netns[i]), "%s-%s", e->tag, suffix) >=
	    (int)sizeof(e->extra_netns[i]))
		return -ENAMETOOLONG;
	memcpy(e->extra_netns[i], cmd, sizeof(e->extra_netns[i]));
	if (kt_netns_add(e->extra_netns[i])) {
		e->extra_netns[i][0] = 0;
		return -EIO;
	}
	snprintf(path, len, "/run/netns/%s", e->extra_netns[i]);
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s ip link set lo up", path);
	return kt_run(cmd);
}

int kt_dp_open(struct kt_env *e, uint32_t max_services, uint32_t max_endpoints)
{
	struct ks_dp_opts o = {
		.pin_dir = e->pin_dir,
		.cgroup = e->cgroup,
		.max_services = max_services,
		.max_endpoints = max_endpoints,
		.tc_tcp_timeout_s = e->tc_tcp_timeout_s,
		.tc_close_timeout_s = e->tc_close_timeout_s,
		.tc_udp_timeout_s = e->tc_udp_timeout_s,
	};
	int err;

	/* Never the root: opts.cgroup == NULL would mean the cgroup2 root. */
	if (!e->cgroup_made)
		return -EINVAL;
	e->pins_made = true;
	err = ks_dp_open(&o, &e->dp);
	if (err) {
		fprintf(stderr, "kern test: ks_dp_open: %s\n", strerror(-err));
		e->dp = NULL;
	}
	return err;
}
