// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Passive health: the kernel's own view of the connects ksplit steered.
 * sockops sees every active open of the cgroup's sockets; for those that
 * carry ksplit socket storage it records ESTABLISHED as a success and, for
 * services with passive checks on, SYN_SENT -> CLOSE (RST, or the SYN given
 * up) as a failure, in the counters (lib/stats.h) and in the endpoint's
 * passive health, which may eject it (lib/health.h). Only reading struct
 * bpf_sock_ops lives here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/addr.h"
#include "lib/health.h"
#include "lib/maps.h"
#include "lib/sock.h"
#include "lib/stats.h"

#define AF_INET_	2
#define AF_INET6_	10

/* Is the socket's peer the backend of its entry e? */
static __always_inline bool is_peer(struct bpf_sock_ops *skops, const struct ks_sock_ent *e)
{
	__u32 a[4] = {};
	__u8 family;
	__u16 port = skops->remote_port >> 16;	/* sock_ops keeps the port in the high half */

	if (skops->family == AF_INET_) {
		a[0] = skops->remote_ip4;
		family = KS_FAMILY_V4;
	} else if (skops->family == AF_INET6_) {
		a[0] = skops->remote_ip6[0];
		a[1] = skops->remote_ip6[1];
		a[2] = skops->remote_ip6[2];
		a[3] = skops->remote_ip6[3];
		family = ks_addr_unmap(a);
	} else {
		return false;
	}
	return ks_sock_ent_is_backend(e, family, a, port);
}

/*
 * The active open ended: count it and feed passive health. No state change
 * after this one is of use, so the socket's state callbacks stop here: they
 * would otherwise run on every transition until the socket is gone.
 */
static __always_inline void outcome(struct bpf_sock_ops *skops, bool ok)
{
	struct bpf_sock *sk = skops->sk;
	struct ks_sock_ent *e;

	if (skops->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_STATE_CB_FLAG)
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
						 ~BPF_SOCK_OPS_STATE_CB_FLAG);
	if (!sk)
		return;
	e = ks_sock_get(sk, false);
	if (!e || !is_peer(skops, e))
		return;
	ks_count_outcome(e->ep_id, ok);
	ks_passive_outcome(e, ok);
}

/*
 * Per steered connection this runs on: TCP_CONNECT, ACTIVE_ESTABLISHED and,
 * with passive checks on, the SYN_SENT -> ESTABLISHED (or -> CLOSE) state
 * change; plus the callbacks every sockops program gets (timeout, rwnd and
 * ECN init, ...), which return at once.
 */
SEC("sockops")
int ksplit_sockops(struct bpf_sock_ops *skops)
{
	struct ks_sock_ent *e;
	struct bpf_sock *sk;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/*
		 * Failures are seen only as a state change, so ask for state
		 * changes, but only on sockets ksplit steered to a service with
		 * passive checks on: the others need ACTIVE_ESTABLISHED alone,
		 * which runs without asking.
		 */
		sk = skops->sk;
		if (!sk)
			break;
		e = ks_sock_get(sk, false);
		if (e && (e->flags & KS_SOCK_F_PASSIVE))
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		outcome(skops, true);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[0] == BPF_TCP_SYN_SENT && skops->args[1] == BPF_TCP_CLOSE)
			outcome(skops, false);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
