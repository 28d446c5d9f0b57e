/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Network side of the kernel tests: namespaces, addresses, the loopback
 * device, /proc/net/tcp, and the server child that answers every test
 * address with its own name.
 */
#ifndef KSPLIT_KT_NET_HELPERS_H
#define KSPLIT_KT_NET_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "env.h"

/* Bring lo up in the caller's network namespace. 0 or -errno. */
int kt_lo_up(void);
/*
 * IPv4 TCP sockets in the caller's network namespace in state st (1
 * ESTABLISHED, 6 TIME_WAIT) whose local port (local) or remote port is
 * port. -1 if /proc/self/net/tcp cannot be read.
 */
int kt_count_tcp(bool local, unsigned int port, unsigned int st);

/* "1.2.3.4:80" or "[::1]:80" into *ss. 0 or -EINVAL. */
int kt_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* The same text form back ("1.2.3.4:80", "[::1]:80"). */
void kt_fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len);

/* ip netns add / del name. 0 or -errno. */
int kt_netns_add(const char *name);
int kt_netns_del(const char *name);
/* Move the calling process into the netns at path (/run/netns/NAME). 0 or -errno. */
int kt_netns_join(const char *path);
/* Run a command inside the test netns (nsenter --net=...). */
int kt_netns_sh(struct kt_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add an IPv6 address to lo inside the netns ("fd00:10::1"). */
int kt_addr6_add(struct kt_env *e, const char *addr);

/*
 * A network namespace that the calling process itself enters, for tests
 * that drive the library in-process (the prober tests: its sockets must
 * live there). Named "<prefix>-<pid>-<random>", lo up. Zero-initialised
 * until kt_netns_enter_new; kt_netns_leave returns to the original
 * namespace and deletes this one, and may be called again (atexit, signal).
 */
struct kt_own_netns {
	char name[64];
	int orig_fd;		/* the namespace to return to, when has_orig */
	bool has_orig, made;
};

int kt_netns_enter_new(struct kt_own_netns *n, const char *prefix);
void kt_netns_leave(struct kt_own_netns *n);

/*
 * One child in the netns serving every "addr:port" (IPv6 as "[addr]:port") on
 * TCP and UDP. Each reply is the listener's own "addr:port" string.
 */
int kt_servers_start(struct kt_env *e, const char *const *addrs, size_t n);

#endif
