/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drain: a socket that ksplit steered to an endpoint which has since left
 * that VIP's service is destroyed with sock_diag SOCK_DESTROY, so its client
 * sees ECONNABORTED at once and reconnects through the VIP to a live backend
 * instead of hanging. Nothing else is touched: not a connection through
 * another VIP that still lists the endpoint, not one made to the pod IP
 * directly. Which VIP and backend a socket was given is read from its own
 * record (the ks_sock socket storage), dumped with the socket by sock_diag.
 *
 * It is a reconciliation against what the maps list now, not a list of what
 * one apply removed: a run after a crash between an apply and its drain
 * finds the sockets that drain missed.
 */
#ifndef KSPLIT_DRAIN_H
#define KSPLIT_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <ksplit/abi.h>

struct ks_drain_target {
	__u32 addr[4];		/* network order, v4 in addr[0] */
	__u16 port;		/* network order */
	__u8 family;		/* KS_FAMILY_V4 / KS_FAMILY_V6 */
};

/* The (VIP:port:proto, endpoint) pairs the maps list, eligible or not: a hash set. */
struct ks_drain_live;

int ks_drain_live_new(struct ks_drain_live **out);
/* Room for n more pairs at once: 500,000 added one by one rehashed the set 14 times. */
int ks_drain_live_reserve(struct ks_drain_live *l, size_t n);
int ks_drain_live_add(struct ks_drain_live *l, const struct ks_svc_key *k,
		      const struct ks_backend *be);
void ks_drain_live_free(struct ks_drain_live *l);

enum ks_drain_verdict {
	KS_DRAIN_NOT_STEERED,	/* no record of ksplit sending it to its peer: not ours */
	KS_DRAIN_KEEP,		/* its VIP still lists its backend */
	KS_DRAIN_DESTROY,	/* its backend left the VIP it was chosen for */
};

/*
 * The verdict for one connected socket of protocol proto (IPPROTO_TCP/UDP)
 * and address family sock_family (AF_INET/AF_INET6) whose peer is
 * dst:dport (network order, as sock_diag gives them), given its record e
 * (the one entry of a connected socket, ks_sock).
 */
enum ks_drain_verdict ks_drain_judge(const struct ks_drain_live *l, const struct ks_sock_ent *e,
				     int sock_family, int proto, const __u32 dst[4], __u16 dport);

struct ks_drain_stats {
	unsigned int netns;	/* network namespaces looked at */
	unsigned int ns_denied;	/* processes whose /proc/<pid>/ns/net was refused: no CAP_SYS_PTRACE */
	unsigned int steered;	/* sockets with a record of ksplit sending them to their peer */
	unsigned int orphaned;	/* of those, whose backend left their VIP */
	unsigned int destroyed;
	unsigned int denied;	/* SOCK_DESTROY refused with EPERM: no CAP_NET_ADMIN */
	unsigned int failed;	/* SOCK_DESTROY failed otherwise */
	int fail_err;		/* the first such error */
};

/*
 * Destroy every TCP socket that holds a peer, in every network
 * namespace that a process of the cgroup subtree lives in, whose record in
 * the socket storage map sock_map_fd (ks_sock) says ksplit sent it to a
 * backend that its VIP no longer lists in live. Sockets without a record
 * are never touched. A refused or failed SOCK_DESTROY is logged at warn
 * level and counted in *st; it is not an error of the call.
 */
int ks_drain_reconcile(const char *cgroup, int sock_map_fd, const struct ks_drain_live *live,
		       struct ks_drain_stats *st);

#endif
