// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Passive health: the kernel's own view of the connects ksplit steered.
 * sockops sees every active open of the cgroup's sockets; for those that
 * carry ksplit socket storage it records ESTABLISHED as a success and
 * SYN_SENT -> CLOSE (RST, or the SYN given up) as a failure. After
 * passive_failures consecutive failures the endpoint is ejected right here,
 * so the next connect on any CPU skips it: no round trip to the agent.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/addr.h"

#define AF_INET_	2
#define AF_INET6_	10
#define IPPROTO_TCP_	6

/*
 * Envoy's max-ejection-percent, at 50%: a fault on the client side (or a
 * partition) must not empty a group through passive checks alone. This runs
 * only on a failed connect, so scanning the group is affordable.
 */
static __always_inline bool cap_allows(const struct ks_group *g, __u64 now)
{
	__u32 i, ejected = 0;

	for (i = 0; i < KS_EJECT_SCAN_MAX; i++) {
		struct ks_ep_health *h;
		struct ks_backend *be;
		__u32 slot;

		if (i >= g->be_count)
			break;
		slot = g->be_base + i;
		be = bpf_map_lookup_elem(&ks_backends, &slot);
		if (!be)
			break;
		h = bpf_map_lookup_elem(&ks_ep_health, &be->ep_id);
		if (h && h->ejected_until > now)
			ejected++;
	}
	return (ejected + 1) * 2 <= g->be_count;
}

static __always_inline void eject(struct ks_ep_health *h, const struct ks_svc *svc, __u32 gi)
{
	__u64 now = bpf_ktime_get_ns(), old = h->ejected_until, dur;
	__u32 n;

	if (old > now || gi >= KS_MAX_GROUPS)
		return;
	if (!cap_allows(&svc->groups[gi], now))
		return;
	n = h->ejections + 1;
	dur = KS_EJECT_BASE_NS * n;
	if (dur > KS_EJECT_MAX_NS)
		dur = KS_EJECT_MAX_NS;
	/* One CPU wins the ejection; the others see it already done. */
	if (__sync_val_compare_and_swap(&h->ejected_until, old, now + dur) != old)
		return;
	h->ejections = n;
	h->probation = 1;
	h->consec_fail = 0;
}

static __always_inline struct ks_sock_ent *find_ent(struct bpf_sock_ops *skops, struct ks_sock *s)
{
	__u32 a[4] = {}, i;
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
		return NULL;
	}
	for (i = 0; i < KS_SOCK_ENTRIES; i++) {
		struct ks_sock_ent *e = &s->ent[i];

		if (e->used && e->family == family && e->be_port == port && ks_addr_eq(e->be, a))
			return e;
	}
	return NULL;
}

static __always_inline void outcome(struct bpf_sock_ops *skops, bool ok)
{
	struct ks_svc_key k = {};
	struct ks_ep_health *h;
	struct ks_ep_stats *st;
	struct ks_sock_ent *e;
	struct bpf_sock *sk = skops->sk;
	const struct ks_svc *svc;
	struct ks_sock *s;
	__u32 n;

	if (!sk)
		return;
	s = bpf_sk_storage_get(&ks_sock, sk, 0, 0);
	if (!s)
		return;
	e = find_ent(skops, s);
	if (!e)
		return;
	st = bpf_map_lookup_elem(&ks_ep_stats, &e->ep_id);
	if (st) {
		if (ok)
			st->established++;
		else
			st->failed++;
	}
	h = bpf_map_lookup_elem(&ks_ep_health, &e->ep_id);
	if (!h)
		return;
	if (ok) {
		/* Plain stores: a lost race only delays a reset by one connect. */
		if (h->consec_fail)
			h->consec_fail = 0;
		if (h->probation)
			h->probation = 0;
		return;
	}
	__builtin_memcpy(k.addr, e->vip, sizeof(k.addr));
	k.port = e->vip_port;
	k.proto = IPPROTO_TCP_;
	k.family = e->family;
	svc = bpf_map_lookup_elem(&ks_services, &k);
	if (!svc || !svc->passive_failures)
		return;
	n = __sync_fetch_and_add(&h->consec_fail, 1) + 1;
	if (h->probation || n >= svc->passive_failures)
		eject(h, svc, e->group);
}

SEC("sockops")
int ksplit_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* Ask for state changes only on sockets ksplit steered. */
		sk = skops->sk;
		if (sk && bpf_sk_storage_get(&ks_sock, sk, 0, 0))
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
