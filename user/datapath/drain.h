/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drain: when an endpoint leaves its EndpointSlice (or its Service goes),
 * the established TCP sockets that processes of the attached cgroup hold to
 * it are destroyed with sock_diag SOCK_DESTROY, so clients see a reset at
 * once and reconnect through the VIP to a live backend instead of hanging.
 */
#ifndef KSPLIT_DRAIN_H
#define KSPLIT_DRAIN_H

#include <stddef.h>
#include <ksplit/abi.h>

struct ks_drain_target {
	__u32 addr[4];		/* network order, v4 in addr[0] */
	__u16 port;		/* network order */
	__u8 family;		/* KS_FAMILY_V4 / KS_FAMILY_V6 */
};

/*
 * Destroy every TCP socket, in every network namespace that a process of
 * the cgroup subtree lives in, whose cgroup is in that subtree and whose
 * peer is one of the targets. *destroyed counts them.
 */
int ks_drain(const char *cgroup, const struct ks_drain_target *t, size_t n, unsigned int *destroyed);

#endif
