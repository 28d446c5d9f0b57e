// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE	/* setns, accept4, pipe2 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net_helpers.h"
#include "shares.h"

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

int kt_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
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
void kt_fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
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

int kt_netns_add(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip netns add %s", name);
	return kt_run(cmd);
}

int kt_netns_del(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip netns del %s", name);
	return kt_run(cmd);
}

int kt_netns_join(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
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
	return kt_run(cmd);
}

int kt_addr6_add(struct kt_env *e, const char *addr)
{
	return kt_netns_sh(e, "ip -6 addr add %s/128 dev lo nodad", addr);
}

int kt_netns_enter_new(struct kt_own_netns *n, const char *prefix)
{
	char path[128];
	uint32_t rnd;
	int err;

	if (getentropy(&rnd, sizeof(rnd)))
		rnd = (uint32_t)getpid();
	snprintf(n->name, sizeof(n->name), "%s-%d-%08x", prefix, (int)getpid(), rnd);
	err = kt_netns_add(n->name);
	if (err)
		return err;
	n->made = true;
	n->orig_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (n->orig_fd < 0)
		return -errno;
	n->has_orig = true;
	snprintf(path, sizeof(path), "/run/netns/%s", n->name);
	err = kt_netns_join(path);
	if (err)
		return err;
	return kt_lo_up();
}

void kt_netns_leave(struct kt_own_netns *n)
{
	if (n->has_orig) {
		setns(n->orig_fd, CLONE_NEWNET);
		close(n->orig_fd);
		n->has_orig = false;
	}
	if (n->made) {
		kt_netns_del(n->name);
		n->made = false;
	}
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

	if (n > KT_MAX_KEYS || kt_netns_join(e->netns_path))
		goto fail;
	for (i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (kt_parse_addr(addrs[i], &ss, &len))
			goto fail;
		kt_fmt_addr(&ss, s[i].id, sizeof(s[i].id));
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
		kt_child_init(900);
		close(p[0]);
		server_main(e, addrs, n, p[1]);
	}
	close(p[1]);
	kt_track_child(e, pid);
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
