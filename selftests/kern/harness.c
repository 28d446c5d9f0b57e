// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE	/* setns, accept4, pipe2 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "image/image.h"
#include "common/log.h"
#include "config/config.h"
#include "cli/status.h"
#include "common/sys.h"

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

int kt_lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!ret && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int kt_count_tcp(bool local, unsigned int port, unsigned int st)
{
	FILE *f = fopen("/proc/self/net/tcp", "r");
	unsigned int lport, rport, state;
	char line[256];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %*u: %*x:%x %*x:%x %x", &lport, &rport, &state) == 3 &&
		    (local ? lport : rport) == port && state == st)
			n++;
	fclose(f);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
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

/* In every forked child: die with the test, never run the parent's cleanup. */
static void child_init(int timeout_s)
{
	g_is_child = true;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(timeout_s);
}

static void track_child(struct kt_env *e, pid_t pid)
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

static void untrack_child(struct kt_env *e, pid_t pid)
{
	int i;

	for (i = 0; i < KT_MAX_CHILDREN; i++)
		if (e->children[i] == pid)
			e->children[i] = 0;
}

/* Reap pid within timeout_ms, else SIGKILL it. Returns the wait status, -1 if killed. */
static int reap(struct kt_env *e, pid_t pid, long timeout_ms)
{
	int64_t end = kt_now_ns() + timeout_ms * 1000000LL;
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
		sleep_ms(5);
	}
	untrack_child(e, pid);
	return status;
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc)) {
		fprintf(stderr, "kern test: command failed (%d): %s\n", rc, cmd);
		return -1;
	}
	return 0;
}

int kt_netns_sh(struct kt_env *e, const char *fmt, ...)
{
	char cmd[1024], sub[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sub, sizeof(sub), fmt, ap);
	va_end(ap);
	/* nsenter only switches the net namespace; `ip netns exec` would remount /sys. */
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s %s", e->netns_path, sub);
	return run(cmd);
}

int kt_addr6_add(struct kt_env *e, const char *addr)
{
	return kt_netns_sh(e, "ip -6 addr add %s/128 dev lo nodad", addr);
}

int kt_env_setup(struct kt_env *e)
{
	char root[PATH_MAX], cmd[256];
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
	snprintf(cmd, sizeof(cmd), "ip netns add %s", e->netns);
	if (run(cmd))
		return -1;
	e->netns_made = true;
	if (kt_netns_sh(e, "ip link set lo up"))
		return -1;

	if (ks_cgroup2_root(root, sizeof(root))) {
		fprintf(stderr, "kern test: no cgroup2 mount\n");
		return -1;
	}
	if (snprintf(e->cgroup, sizeof(e->cgroup), "%s/%s", root, e->tag) >= (int)sizeof(e->cgroup))
		return -1;
	if (mkdir(e->cgroup, 0755)) {
		fprintf(stderr, "kern test: mkdir %s: %s\n", e->cgroup, strerror(errno));
		return -1;
	}
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

/* After down, no ksplit program may stay attached to the test cgroup. */
static void check_cgroup_clean(const char *cg)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
		BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG,
		BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG,
		BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
		BPF_CGROUP_SOCK_OPS,
	};
	int fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		__u32 cnt = 0;

		if (!bpf_prog_query(fd, types[i], 0, NULL, NULL, &cnt) && cnt)
			fprintf(stderr, "kern test: LEFT BEHIND: %u program(s) of attach type %d on %s\n",
				cnt, types[i], cg);
	}
	close(fd);
}

void kt_env_teardown(struct kt_env *e)
{
	struct kt_env **pp;
	char cmd[256];
	int i;

	for (i = 0; i < KT_MAX_CHILDREN; i++) {
		if (e->children[i] > 0) {
			kill(e->children[i], SIGKILL);
			waitpid(e->children[i], NULL, 0);
			e->children[i] = 0;
		}
	}
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
		check_cgroup_clean(e->cgroup);
		/* A killed child leaves the cgroup a moment after waitpid(). */
		for (i = 0; i < 200 && rmdir(e->cgroup) && errno == EBUSY; i++)
			sleep_ms(10);
		if (!access(e->cgroup, F_OK))
			fprintf(stderr, "kern test: cannot remove cgroup %s: %s\n", e->cgroup,
				strerror(errno));
		e->cgroup_made = false;
	}
	if (e->netns_made) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s", e->netns);
		run(cmd);
		e->netns_made = false;
	}
	/*
	 * Files the tests name /tmp/<tag>-* (agent logs, config dirs): a failed
	 * assertion skips the test's own clean-up, this does not. The tag is
	 * ours ("kstest-<pid>-<hex>"), so the glob cannot reach anything else.
	 */
	if (e->tag[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- /tmp/%s-*", e->tag);
		run(cmd);
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

int kt_dp_open(struct kt_env *e, uint32_t max_services, uint32_t max_endpoints)
{
	struct ks_dp_opts o = {
		.pin_dir = e->pin_dir,
		.cgroup = e->cgroup,
		.max_services = max_services,
		.max_endpoints = max_endpoints,
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

/* "1.2.3.4:80" or "[::1]:80". */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hl;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hl = end - s - 1;
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = colon - s;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	}
	return 0;
}

/* Same text form as the server ids, so tallies compare directly. */
static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		snprintf(buf, len, "%s:%u", h, ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
		snprintf(buf, len, "[%s]:%u", h, ntohs(a->sin6_port));
	} else {
		snprintf(buf, len, "family-%d", ss->ss_family);
	}
}

static int join_netns(const struct kt_env *e)
{
	int fd = open(e->netns_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (setns(fd, CLONE_NEWNET)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* ---------------------------------------------------------------- servers */

struct srv {
	int tcp, udp;
	char id[KT_KEY_LEN];
};

static void server_main(const struct kt_env *e, const char *const *addrs, size_t n, int ready_fd)
{
	struct pollfd pfd[2 * KT_MAX_KEYS];
	struct srv s[KT_MAX_KEYS];
	const int one = 1;
	size_t i;
	char ok = 'E';

	if (n > KT_MAX_KEYS || join_netns(e))
		goto fail;
	for (i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (parse_addr(addrs[i], &ss, &len))
			goto fail;
		fmt_addr(&ss, s[i].id, sizeof(s[i].id));
		s[i].tcp = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		s[i].udp = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (s[i].tcp < 0 || s[i].udp < 0)
			goto fail;
		setsockopt(s[i].tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6) {
			setsockopt(s[i].tcp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			setsockopt(s[i].udp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		}
		if (bind(s[i].tcp, (struct sockaddr *)&ss, len) || listen(s[i].tcp, 4096) ||
		    bind(s[i].udp, (struct sockaddr *)&ss, len)) {
			fprintf(stderr, "server %s: %s\n", s[i].id, strerror(errno));
			goto fail;
		}
		pfd[2 * i] = (struct pollfd){ .fd = s[i].tcp, .events = POLLIN };
		pfd[2 * i + 1] = (struct pollfd){ .fd = s[i].udp, .events = POLLIN };
	}
	ok = 'R';
	if (write(ready_fd, &ok, 1) != 1)
		_exit(1);
	close(ready_fd);
	for (;;) {
		if (poll(pfd, 2 * n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = 0; i < n; i++) {
			size_t idlen = strlen(s[i].id);
			int c;

			if (pfd[2 * i].revents & POLLIN) {
				/* Bounded: never starve the other sockets. */
				int k;

				for (k = 0; k < 256; k++) {
					c = accept4(s[i].tcp, NULL, NULL, SOCK_CLOEXEC);
					if (c < 0)
						break;
					/* A fresh socket's send buffer always takes a few bytes. */
					ssize_t w = write(c, s[i].id, idlen);

					(void)w;
					close(c);
				}
			}
			if (pfd[2 * i + 1].revents & POLLIN) {
				struct sockaddr_storage from;
				socklen_t fl;
				char buf[256];
				int k;

				for (k = 0; k < 256; k++) {
					fl = sizeof(from);
					if (recvfrom(s[i].udp, buf, sizeof(buf), 0,
						     (struct sockaddr *)&from, &fl) < 0)
						break;
					sendto(s[i].udp, s[i].id, idlen, 0, (struct sockaddr *)&from, fl);
				}
			}
		}
	}
fail:
	if (write(ready_fd, &ok, 1) < 0)
		_exit(1);
	_exit(1);
}

int kt_servers_start(struct kt_env *e, const char *const *addrs, size_t n)
{
	int p[2];
	char c = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (!pid) {
		child_init(900);
		close(p[0]);
		server_main(e, addrs, n, p[1]);
	}
	close(p[1]);
	track_child(e, pid);
	{
		struct pollfd pf = { .fd = p[0], .events = POLLIN };

		if (poll(&pf, 1, 10000) != 1 || read(p[0], &c, 1) != 1)
			c = 0;
	}
	close(p[0]);
	if (c != 'R') {
		fprintf(stderr, "kern test: servers did not start\n");
		return -EIO;
	}
	return 0;
}

/* ---------------------------------------------------------------- clients */

static void tally_add(struct kt_tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++) {
		if (!strcmp(t->key[i], key)) {
			t->count[i]++;
			return;
		}
	}
	if (t->n == KT_MAX_KEYS) {
		t->overflow++;
		return;
	}
	snprintf(t->key[t->n], KT_KEY_LEN, "%s", key);
	t->count[t->n++] = 1;
}

long kt_tally_get(const struct kt_tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->key[i], key))
			return t->count[i];
	return 0;
}

static void fail_errno(struct kt_result *r, int err)
{
	r->failed++;
	r->err[err > 0 && err < KT_MAX_ERRNO ? err : 0]++;
}

static void check_removed(struct kt_result *r, const char *id, int64_t start)
{
	int n = __atomic_load_n(&r->n_removed, __ATOMIC_ACQUIRE), i;

	for (i = 0; i < n; i++)
		if (start >= r->after_ns[i] && !strcmp(id, r->removed[i]))
			r->removed_hits[i]++;
}

static const struct timeval rcv_timeout = { 2, 0 };

/* One TCP connect; the reply (server id) goes into id. 0 or errno. */
static int tcp_once(const struct sockaddr_storage *dst, socklen_t dlen, struct kt_result *r,
		    char *id, size_t idlen)
{
	const struct linger lg = { 1, 0 };
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	char p[KT_KEY_LEN];
	size_t got = 0;
	ssize_t k;
	int fd, err = 0;

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv_timeout, sizeof(rcv_timeout));
	if (connect(fd, (const struct sockaddr *)dst, dlen)) {
		err = errno;
		goto out;
	}
	if (!getpeername(fd, (struct sockaddr *)&peer, &plen)) {
		fmt_addr(&peer, p, sizeof(p));
		tally_add(&r->peers, p);
	}
	while (got < idlen - 1 && (k = read(fd, id + got, idlen - 1 - got)) > 0)
		got += k;
	id[got] = 0;
	if (!got)
		err = k < 0 ? errno : EPIPE;
out:
	/* RST instead of FIN: thousands of connects must not fill TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return err;
}

static int udp_once(int fd, bool connected, const struct sockaddr_storage *dst, socklen_t dlen,
		    struct kt_result *r, char *id, size_t idlen)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char src[KT_KEY_LEN];
	ssize_t k;

	if (connected) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		if (connect(fd, (const struct sockaddr *)dst, dlen))
			return errno;
		if (!getpeername(fd, (struct sockaddr *)&peer, &plen)) {
			fmt_addr(&peer, src, sizeof(src));
			tally_add(&r->peers, src);
		}
		k = send(fd, "q", 1, 0);
	} else {
		k = sendto(fd, "q", 1, 0, (const struct sockaddr *)dst, dlen);
	}
	if (k < 0)
		return errno;
	k = recvfrom(fd, id, idlen - 1, 0, (struct sockaddr *)&from, &fl);
	if (k < 0)
		return errno;
	id[k] = 0;
	fmt_addr(&from, src, sizeof(src));
	tally_add(&r->srcs, src);
	return 0;
}

static void client_main(const struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r)
{
	struct sockaddr_storage dst;
	socklen_t dlen;
	int ufd = -1, fd;
	long i;

	if (!o->outside_cgroup) {
		char path[PATH_MAX];
		int cfd;

		/* Join before the first socket: a socket belongs to its creator's cgroup. */
		snprintf(path, sizeof(path), "%s/cgroup.procs", e->cgroup);
		cfd = open(path, O_WRONLY | O_CLOEXEC);
		if (cfd < 0 || write(cfd, "0", 1) != 1)
			_exit(3);
		close(cfd);
	}
	if (join_netns(e) || parse_addr(o->target, &dst, &dlen))
		_exit(4);
	for (i = 0; o->loop ? !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) : i < o->count; i++) {
		int64_t start = kt_now_ns();
		char id[KT_KEY_LEN];
		int err;

		r->attempts++;
		if (o->mode == KT_TCP) {
			err = tcp_once(&dst, dlen, r, id, sizeof(id));
		} else {
			if (ufd < 0) {
				ufd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
				if (ufd < 0)
					_exit(5);
				/* A lost datagram must cost a bounded wait, never a hang. */
				setsockopt(ufd, SOL_SOCKET, SO_RCVTIMEO, &rcv_timeout,
					   sizeof(rcv_timeout));
			}
			err = udp_once(ufd, o->mode == KT_UDP_CONNECTED, &dst, dlen, r, id,
				       sizeof(id));
			if (!o->one_socket || o->mode == KT_UDP_CONNECTED) {
				fd = ufd;
				ufd = -1;
				close(fd);
			}
		}
		if (err) {
			fail_errno(r, err);
			continue;
		}
		r->ok++;
		tally_add(&r->ids, id);
		check_removed(r, id, start);
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	_exit(0);
}

int kt_client_start(struct kt_env *e, const struct kt_client_opts *o, struct kt_client *c)
{
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->res = mmap(NULL, sizeof(*c->res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (c->res == MAP_FAILED) {
		c->res = NULL;
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		child_init(o->timeout_s ? o->timeout_s : 120);
		client_main(e, o, c->res);
	}
	c->pid = pid;
	track_child(e, pid);
	return 0;
}

static int client_reap(struct kt_env *e, struct kt_client *c, long timeout_ms)
{
	int st;

	if (c->pid <= 0)
		return -ECHILD;
	st = reap(e, c->pid, timeout_ms);
	c->pid = 0;
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "kern test: client failed (status 0x%x)\n", st);
		return -EIO;
	}
	return 0;
}

int kt_client_wait(struct kt_env *e, struct kt_client *c)
{
	return client_reap(e, c, 180000);
}

int kt_client_stop(struct kt_env *e, struct kt_client *c)
{
	if (c->res)
		__atomic_store_n(&c->res->stop, 1, __ATOMIC_RELEASE);
	return client_reap(e, c, 10000);
}

void kt_client_free(struct kt_client *c)
{
	if (c->res)
		munmap(c->res, sizeof(*c->res));
	c->res = NULL;
}

void kt_client_mark_removed(struct kt_client *c, const char *id, int64_t after_ns)
{
	int n = c->res->n_removed;

	if (n >= KT_MAX_REMOVED)
		return;
	snprintf(c->res->removed[n], KT_KEY_LEN, "%s", id);
	c->res->after_ns[n] = after_ns;
	/* Publish the entry only once it is complete. */
	__atomic_store_n(&c->res->n_removed, n + 1, __ATOMIC_RELEASE);
}

int kt_client_run(struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r)
{
	struct kt_client c;
	int err;

	err = kt_client_start(e, o, &c);
	if (!err)
		err = kt_client_wait(e, &c);
	if (c.res)
		memcpy(r, c.res, sizeof(*r));
	kt_client_free(&c);
	return err;
}

void kt_result_print(const char *what, const struct kt_result *r)
{
	int i;

	printf("  [%s] attempts %ld ok %ld failed %ld\n", what, r->attempts, r->ok, r->failed);
	for (i = 0; i < KT_MAX_ERRNO; i++)
		if (r->err[i])
			printf("    errno %d (%s): %ld\n", i, i ? strerror(i) : "no reply", r->err[i]);
	for (i = 0; i < r->ids.n; i++)
		printf("    server %-28s %7ld (%.2f%%)\n", r->ids.key[i], r->ids.count[i],
		       r->attempts ? 100.0 * r->ids.count[i] / r->attempts : 0);
	for (i = 0; i < r->peers.n; i++)
		printf("    peer   %-28s %7ld\n", r->peers.key[i], r->peers.count[i]);
	for (i = 0; i < r->srcs.n; i++)
		printf("    src    %-28s %7ld\n", r->srcs.key[i], r->srcs.count[i]);
	fflush(stdout);
}

void kt_check_share(const char *what, long count, long n, double expect_pct, double tol_pct,
		    const char *file, int line)
{
	double pct = n ? 100.0 * count / n : 0;
	double sigma = n ? 100.0 * sqrt(expect_pct / 100 * (1 - expect_pct / 100) / n) : 0;

	printf("  [share] %-36s %6ld/%ld = %6.2f%% (want %.2f +- %.2f, sigma %.2f)\n", what, count,
	       n, pct, expect_pct, tol_pct, sigma);
	fflush(stdout);
	if (!n || fabs(pct - expect_pct) > tol_pct) {
		print_error("share of %s is %.2f%%, want %.2f%% +- %.2f\n", what, pct, expect_pct,
			    tol_pct);
		_fail(file, line);
	}
}

/* ---------------------------------------------------------------- manifests */

void kt_buf_printf(struct kt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->s && b->len + n < b->cap) {
			b->len += n;
			return;
		}
		b->cap = (b->cap + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
}

void kt_buf_free(struct kt_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* Split a space-separated list into a static array of words (test input only). */
static int words(const char *s, char w[][KT_KEY_LEN], int max)
{
	int n = 0;

	while (s && *s && n < max) {
		size_t l;

		while (*s == ' ')
			s++;
		l = strcspn(s, " ");
		if (!l)
			break;
		snprintf(w[n++], KT_KEY_LEN, "%.*s", (int)l, s);
		s += l;
	}
	return n;
}

void kt_yaml_gateway(struct kt_buf *b, const char *name, const char *addrs, const char *listeners)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
		      "metadata: {name: %s, namespace: t}\nspec:\n  gatewayClassName: ksplit\n"
		      "  addresses:\n", name);
	n = words(addrs, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++)
		kt_buf_printf(b, "  - {type: IPAddress, value: \"%s\"}\n", w[i]);
	kt_buf_printf(b, "  listeners:\n");
	n = words(listeners, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++) {
		char lname[KT_KEY_LEN], proto[KT_KEY_LEN];
		int port;

		if (sscanf(w[i], "%63[^:]:%63[^:]:%d", lname, proto, &port) != 3)
			abort();
		kt_buf_printf(b, "  - {name: %s, port: %d, protocol: %s}\n", lname, port, proto);
	}
}

void kt_yaml_service(struct kt_buf *b, const char *name, int port, const char *cluster_ips)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: t}\n"
		      "spec:\n  type: ClusterIP\n", name);
	n = words(cluster_ips, w, KT_MAX_KEYS);
	if (n) {
		kt_buf_printf(b, "  clusterIP: \"%s\"\n  clusterIPs:\n", w[0]);
		for (i = 0; i < n; i++)
			kt_buf_printf(b, "  - \"%s\"\n", w[i]);
	}
	kt_buf_printf(b, "  ports:\n"
		      "  - {name: tcp, port: %d, protocol: TCP, targetPort: 8080}\n"
		      "  - {name: udp, port: %d, protocol: UDP, targetPort: 8080}\n", port, port);
}

void kt_yaml_slice(struct kt_buf *b, const char *svc, const char *family, const char *eps)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		      "metadata:\n  name: %s-%s\n  namespace: t\n"
		      "  labels: {kubernetes.io/service-name: %s}\n"
		      "addressType: %s\nports:\n"
		      "- {name: tcp, port: 8080, protocol: TCP}\n"
		      "- {name: udp, port: 8080, protocol: UDP}\nendpoints:\n",
		      svc, strcmp(family, "IPv6") ? "v4" : "v6", svc, family);
	n = words(eps, w, KT_MAX_KEYS);
	if (!n)
		kt_buf_printf(b, "  []\n");
	for (i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');
		const char *cond = "{ready: true, serving: true, terminating: false}";

		if (eq) {
			*eq++ = 0;
			if (!strcmp(eq, "notready"))
				cond = "{ready: false, serving: false, terminating: false}";
			else if (!strcmp(eq, "terminating"))
				/* What kubelet publishes for a pod draining after SIGTERM. */
				cond = "{ready: false, serving: true, terminating: true}";
			else
				abort();
		}
		kt_buf_printf(b, "- addresses: [\"%s\"]\n  conditions: %s\n", w[i], cond);
	}
}

void kt_yaml_route(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		   const char *backends)
{
	kt_yaml_route_ann(b, kind, name, parent, backends, NULL);
}

void kt_yaml_route_ann(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		       const char *backends, const char *annotation)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: gateway.networking.k8s.io/%s\nkind: %s\n"
		      "metadata:\n  name: %s\n  namespace: t\n",
		      strcmp(kind, "HTTPRoute") ? "v1alpha2" : "v1", kind, name);
	if (annotation)
		kt_buf_printf(b, "  annotations:\n    %s\n", annotation);
	kt_buf_printf(b, "spec:\n  parentRefs:\n");
	if (!strncmp(parent, "svc:", 4)) {
		kt_buf_printf(b, "  - {group: \"\", kind: Service, name: %s}\n", parent + 4);
	} else {
		char gw[KT_KEY_LEN], section[KT_KEY_LEN];

		if (sscanf(parent, "%63[^/]/%63s", gw, section) != 2)
			abort();
		kt_buf_printf(b, "  - {name: %s, sectionName: %s}\n", gw, section);
	}
	kt_buf_printf(b, "  rules:\n  - backendRefs:\n");
	n = words(backends, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');

		if (!eq)
			abort();
		*eq++ = 0;
		kt_buf_printf(b, "    - {name: %s, port: 80, weight: %s}\n", w[i], eq);
	}
}

int kt_apply_yaml(struct kt_env *e, const char *yaml)
{
	const char *names[] = { "kt.yaml" }, *bufs[] = { yaml };
	size_t lens[] = { strlen(yaml) }, i;
	struct ks_apply_stats st;
	struct ks_diags d = {};
	struct ks_model m = {};
	struct ks_image img = {};
	int err;

	err = ks_model_load_buffers(names, bufs, lens, 1, &m, &d);
	for (i = 0; i < d.n; i++)
		if (!d.v[i].warning || getenv("KT_VERBOSE"))
			fprintf(stderr, "  %s: %s\n", d.v[i].warning ? "warning" : "error", d.v[i].msg);
	if (err) {
		fprintf(stderr, "kern test: manifests rejected (%d):\n%s\n", err, yaml);
		goto out;
	}
	err = ks_image_build(&m, &img);
	if (err)
		goto out;
	err = ks_dp_apply(e->dp, &img, &st);
	e->last_apply_ns = kt_now_ns();
out:
	ks_image_free(&img);
	ks_model_free(&m);
	ks_diags_free(&d);
	return err;
}

/* ---------------------------------------------------------------- status */

struct json_object *kt_status(struct kt_env *e)
{
	struct json_object *st = NULL;

	if (ks_status_collect(e->pin_dir, &st))
		return NULL;
	return st;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

long kt_status_field(struct json_object *o, const char *field)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, field, &v) ? (long)json_object_get_int64(v) : -1;
}

struct json_object *kt_status_svc(struct json_object *st, const char *vip, int port,
				  const char *proto)
{
	struct json_object *svcs;
	size_t i;

	if (!st || !json_object_object_get_ex(st, "services", &svcs))
		return NULL;
	for (i = 0; i < json_object_array_length(svcs); i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i);

		if (!strcmp(jstr(s, "vip"), vip) && kt_status_field(s, "port") == port &&
		    !strcmp(jstr(s, "protocol"), proto))
			return s;
	}
	return NULL;
}

long kt_status_ep(struct json_object *svc, const char *addr, int port)
{
	struct json_object *groups, *eps;
	size_t i, j;

	if (!svc || !json_object_object_get_ex(svc, "groups", &groups))
		return -1;
	for (i = 0; i < json_object_array_length(groups); i++) {
		struct json_object *g = json_object_array_get_idx(groups, i);

		if (!json_object_object_get_ex(g, "endpoints", &eps))
			continue;
		for (j = 0; j < json_object_array_length(eps); j++) {
			struct json_object *ep = json_object_array_get_idx(eps, j);

			if (!strcmp(jstr(ep, "address"), addr) &&
			    kt_status_field(ep, "port") == port)
				return kt_status_field(ep, "connections");
		}
	}
	return -1;
}

/* ---------------------------------------------------------------- processes */

pid_t kt_spawn(struct kt_env *e, char *const argv[], const char *log_path)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		child_init(0);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	track_child(e, pid);
	return pid;
}

int kt_stop(struct kt_env *e, pid_t pid, int sig, long timeout_ms)
{
	kill(pid, sig);
	return reap(e, pid, timeout_ms);
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
	int64_t end = kt_now_ns() + timeout_ms * 1000000LL;
	int n;

	while ((n = kt_count_in_file(path, needle)) < min_count) {
		if (kt_now_ns() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return n;
}
