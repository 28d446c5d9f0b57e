/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One agent per pin dir. The lock is a listening abstract unix socket whose
 * name is derived from the pin dir, bound in the agent's network namespace:
 *  - the kernel releases it when the holder dies, kill -9 included, so a
 *    crashed agent never leaves a stale lock behind;
 *  - it needs no file: bpffs holds no regular files, and a DaemonSet's old and
 *    new pods share no /run unless it is a hostPath, but both run in the
 *    host network namespace (hostNetwork: true), where the name is unique;
 *  - a waiter connects to it and reads the holder's pid (SO_PEERCRED) to say
 *    whom it waits for.
 * flock(2) on a hostPath file would work too, but it needs that extra mount
 * in every pod and a directory nobody may delete.
 */
#ifndef KSPLIT_AGENT_LOCK_H
#define KSPLIT_AGENT_LOCK_H

#include <stdbool.h>
#include <sys/types.h>

/* The abstract socket name for pin_dir (without the leading NUL), e.g. "ksplit:/sys/fs/bpf/ksplit". */
int ks_lock_name(const char *pin_dir, char *buf, size_t len);

/*
 * Take the lock: returns a socket fd (>= 0) that holds it until closed, or
 * -EBUSY when another process holds it (*holder set to its pid, 0 if
 * unknown), or another -errno.
 */
int ks_lock_try(const char *pin_dir, pid_t *holder);

/* Whether some process holds the lock for pin_dir; *holder as above. 0 = free, 1 = held, or -errno. */
int ks_lock_held(const char *pin_dir, pid_t *holder);

/* Accept and close the connections waiters made to learn our pid (the fd is non-blocking). */
void ks_lock_drain(int fd);

#endif
