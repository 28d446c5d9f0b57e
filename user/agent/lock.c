// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/lock.h"

#define PREFIX "ksplit:"

/*
 * The same pin dir must give the same name however it was spelled, and it
 * may not exist yet (the first agent creates it), so realpath(3) cannot be
 * used: make it absolute and fold "//", "/./" and a trailing "/".
 */
static int normalize(const char *in, char *out, size_t len)
{
	char cwd[4096] = "";
	size_t n = 0;
	const char *p;
	int i;

	if (!in || !*in)
		return -EINVAL;
	if (*in != '/' && !getcwd(cwd, sizeof(cwd)))
		return -errno;
	for (i = 0; i < 2; i++) {
		for (p = i ? in : cwd; *p; p++) {
			if (*p == '/' && (n == 0 || out[n - 1] != '/')) {
				if (n + 1 >= len)
					return -ENAMETOOLONG;
				out[n++] = '/';
			} else if (*p == '.' && n && out[n - 1] == '/' && (p[1] == '/' || !p[1])) {
				continue;
			} else if (*p != '/') {
				if (n + 1 >= len)
					return -ENAMETOOLONG;
				if (!n)
					out[n++] = '/';
				out[n++] = *p;
			}
		}
		if (!i && n && out[n - 1] != '/')
			out[n++] = '/';
	}
	while (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	return 0;
}

int ks_lock_name(const char *pin_dir, char *buf, size_t len)
{
	char path[4096];
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */
	const char *p;
	int n, err;

	err = normalize(pin_dir, path, sizeof(path));
	if (err)
		return err;
	/* An abstract name has room for 107 bytes; a long path is named by its hash. */
	if (strlen(PREFIX) + strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path) - 1) {
		n = snprintf(buf, len, PREFIX "%s", path);
	} else {
		for (p = path; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ULL;
		n = snprintf(buf, len, PREFIX "fnv64:%016" PRIx64, h);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int lock_addr(const char *pin_dir, struct sockaddr_un *sa, socklen_t *salen)
{
	char name[sizeof(sa->sun_path)];
	int err;

	err = ks_lock_name(pin_dir, name, sizeof(name));
	if (err)
		return err;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name, strlen(name));
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	return 0;
}

/* The holder's pid, read from the credentials of a connection to its socket; 0 if unknown. */
static pid_t holder_pid(const struct sockaddr_un *sa, socklen_t salen)
{
	struct ucred cr = { 0 };
	socklen_t crlen = sizeof(cr);
	pid_t pid = 0;
	int fd;

	/* Non-blocking: a holder that has not drained its accept queue must not stall us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	if (!connect(fd, (const struct sockaddr *)sa, salen) &&
	    !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen))
		pid = cr.pid;
	close(fd);
	return pid;
}

int ks_lock_try(const char *pin_dir, pid_t *holder)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd, err;

	if (holder)
		*holder = 0;
	err = lock_addr(pin_dir, &sa, &salen);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, salen)) {
		err = -errno;
		goto fail;
	}
	/* Listening lets a waiter learn our pid; the holder accepts and closes (ks_lock_drain). */
	if (listen(fd, 8)) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	if (err == -EADDRINUSE) {
		if (holder)
			*holder = holder_pid(&sa, salen);
		return -EBUSY;
	}
	return err;
}

int ks_lock_held(const char *pin_dir, pid_t *holder)
{
	int fd = ks_lock_try(pin_dir, holder);

	if (fd == -EBUSY)
		return 1;
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

void ks_lock_drain(int fd)
{
	int c;

	while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(c);
}
