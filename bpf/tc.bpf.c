// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-packet load balancing on TC, for traffic no hooked socket sends: the
 * pods behind a veth (sidecar meshes), forwarded traffic. Two programs for
 * the node side of an interface, so each knows its direction without
 * looking: ksplit_tc_ingress sees what the pod sends (client -> VIP: DNAT
 * to a backend), ksplit_tc_egress what goes to the pod (backend -> client:
 * the source back to the VIP).
 *
 * A flow's first packet (TCP SYN, any UDP datagram without entry) picks
 * with ks_pick, the socket path's selection, and makes one ks_ct entry,
 * keyed by the client's packet; every later packet follows it, so weight
 * changes move new flows only. Replies find it through ks_ct_vips, the
 * VIP:ports each backend was picked for (abi.h): one insert per new flow,
 * not two. A flow the index cannot list gets a reverse entry besides.
 * A SYN that finds an entry follows it only if it is a retransmit (same
 * sequence number): a new connection on a reused 5-tuple picks again.
 * A TCP segment without SYN and without entry is not ours (a flow from
 * before the program, or one whose entry the LRU dropped) and passes.
 *
 * Idle flows expire (abi.h, KS_CT_*_TIMEOUT_S; the agent sets the values
 * below before load): every packet stamps its entry's last_seen, a FIN or
 * RST marks it closing (the short timeout). A forward entry idle for longer
 * than its timeout, replies included, is deleted and treated as absent: a
 * SYN or a UDP datagram picks afresh, another TCP segment passes as one
 * without entry. The agent's sweep (user/datapath/ct_gc.c) deletes expired
 * flows nobody sends on, by the same rule.
 *
 * Fragments: the first carries the ports and is translated like any
 * packet; its translation is remembered by datagram id in ks_ct_frag so
 * the later ones, which carry no ports, get the same address. A later
 * fragment that arrives before its first finds no entry and passes
 * untouched (to the VIP address, where nothing answers): the datagram is
 * lost, as it would be without reassembly anywhere.
 *
 * A flow whose endpoint left the service (checked when the service's rev
 * differs from the one the entry last saw): TCP segments are dropped and
 * counted in stale, never sent on to a pod that is gone (docs/design.md
 * says why not reset); a UDP datagram or a new SYN on the same 5-tuple
 * picks again, as the socket path's unconnected UDP does on a new rev.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/addr.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/stats.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Idle timeouts in ns, set by the agent before load (ks_dp_opts). */
const volatile __u64 ct_tcp_timeout_ns = KS_CT_TCP_TIMEOUT_S * 1000000000ULL;
const volatile __u64 ct_close_timeout_ns = KS_CT_CLOSE_TIMEOUT_S * 1000000000ULL;
const volatile __u64 ct_udp_timeout_ns = KS_CT_UDP_TIMEOUT_S * 1000000000ULL;

/*
 * last_seen is rewritten only when it is this much older than now: a flow's
 * packets on several CPUs do not all write its entry's cache line, and the
 * timeouts are seconds.
 */
#define CT_STAMP_NS	(100ULL * 1000000ULL)
#define EEXIST_		17

static __always_inline struct ks_tc_stats *tc_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ks_tc_stats, &zero);
}

#define TC_COUNT(field)                                  \
	do {                                             \
		struct ks_tc_stats *__s = tc_stats();    \
		if (__s)                                 \
			__s->field++;                    \
	} while (0)

static __always_inline void frag_key(struct ks_frag_key *fk, const struct ks_pkt *p, __u8 dir)
{
	__builtin_memcpy(fk->src, p->src, sizeof(fk->src));
	__builtin_memcpy(fk->dst, p->dst, sizeof(fk->dst));
	fk->id = p->frag_id;
	fk->proto = p->proto;
	fk->family = p->family;
	fk->dir = dir;
}

/* A later fragment: the address its first fragment got, if that one was seen. */
static __always_inline int xlate_later_frag(struct __sk_buff *skb, const struct ks_pkt *p,
					    __u8 dir)
{
	struct ks_frag_key fk = {};
	struct ks_frag_ent *fe;

	frag_key(&fk, p, dir);
	fe = bpf_map_lookup_elem(&ks_ct_frag, &fk);
	if (!fe)
		return TC_ACT_OK_;
	if (ks_nat(skb, p, dir == KS_CT_FWD, fe->addr, 0))
		return TC_ACT_SHOT_;
	TC_COUNT(frags);
	return TC_ACT_OK_;
}

/* A first fragment was translated to addr: remember it for the rest of its datagram. */
static __always_inline void remember_frag(const struct ks_pkt *p, __u8 dir, const __u32 *addr)
{
	struct ks_frag_key fk = {};
	struct ks_frag_ent fe = {};

	if (p->frag != KS_FRAG_FIRST)
		return;
	frag_key(&fk, p, dir);
	__builtin_memcpy(fe.addr, addr, sizeof(fe.addr));
	bpf_map_update_elem(&ks_ct_frag, &fk, &fe, BPF_ANY);
	TC_COUNT(first_frags);
}

static __always_inline __u64 ct_timeout(__u8 proto, bool closing)
{
	if (proto != IPPROTO_TCP_)
		return ct_udp_timeout_ns;
	return closing ? ct_close_timeout_ns : ct_tcp_timeout_ns;
}

/* A packet of e's flow (a reverse entry's: a reply) went through at now: alive, maybe closing. */
static __always_inline void ct_touch(struct ks_ct_ent *e, const struct ks_pkt *p, __u64 now)
{
	if (p->proto == IPPROTO_TCP_ && (p->tcp_flags & (TCP_FL_FIN_ | TCP_FL_RST_)) &&
	    !e->closing)
		e->closing = 1;
	if ((__s64)(now - e->last_seen) > (__s64)CT_STAMP_NS)
		e->last_seen = now;
}

/* Idle for longer than its timeout at now? 0 (never stamped: an entry from before) is not. */
static __always_inline bool ct_idle(__u64 last, __u8 proto, bool closing, __u64 now)
{
	return last && (__s64)(now - last) > (__s64)ct_timeout(proto, closing);
}

/*
 * The flow of forward entry e (key fk) is expired. Looked at from e alone
 * first (the replies stamp it too); only then a reverse entry, which a
 * flow ks_ct_vips could not list has and whose replies may have kept the
 * flow alive (a UDP flow the backend streams on) or closed it, is read too.
 */
static __always_inline bool ct_expired(const struct ks_ct_ent *e, const struct ks_ct_key *fk,
				       __u64 now)
{
	struct ks_ct_key rk = { .sport = e->port, .dport = fk->sport, .proto = fk->proto,
				.family = fk->family, .dir = KS_CT_REV };
	const struct ks_ct_ent *r;
	__u64 last = e->last_seen;

	if (!ct_idle(last, fk->proto, e->closing, now))
		return false;
	__builtin_memcpy(rk.src, e->addr, sizeof(rk.src));
	__builtin_memcpy(rk.dst, fk->src, sizeof(rk.dst));
	r = bpf_map_lookup_elem(&ks_ct, &rk);
	if (!r || r->port != fk->dport || !ks_addr_eq(r->addr, fk->dst))
		return true;
	if (r->last_seen > last)
		last = r->last_seen;
	return ct_idle(last, fk->proto, e->closing | r->closing, now);
}

/*
 * The forward entry of the flow cl:cl_port <-> vip, if it holds backend
 * be:be_port: then it is the entry of a flow whose replies come from
 * be:be_port to cl:cl_port.
 */
static __always_inline struct ks_ct_ent *ct_fwd_of(const __u32 *cl, __u16 cl_port,
						   const struct ks_ct_vip *vip, const __u32 *be,
						   __u16 be_port, __u8 proto, __u8 family,
						   struct ks_ct_key *k)
{
	struct ks_ct_ent *e;

	*k = (struct ks_ct_key){ .sport = cl_port, .dport = vip->port, .proto = proto,
				 .family = family, .dir = KS_CT_FWD };
	__builtin_memcpy(k->src, cl, sizeof(k->src));
	__builtin_memcpy(k->dst, vip->addr, sizeof(k->dst));
	e = bpf_map_lookup_elem(&ks_ct, k);
	if (e && e->port == be_port && ks_addr_eq(e->addr, be))
		return e;
	return NULL;
}

/*
 * The flow a packet from be:be_port to cl:cl_port (a reply) belongs to:
 * its forward entry, found by trying the VIP:ports ks_ct_vips lists for
 * the backend, else its reverse entry (a flow the index could not list,
 * or one an older build made). *vip: the VIP:port the reply comes from.
 * NULL: no flow of ours.
 */
static __always_inline struct ks_ct_ent *ct_reply(const __u32 *be, __u16 be_port,
						  const __u32 *cl, __u16 cl_port, __u8 proto,
						  __u8 family, struct ks_ct_vip *vip)
{
	struct ks_ct_be_key bk = { .port = be_port, .proto = proto, .family = family };
	const struct ks_ct_vip *v;
	struct ks_ct_ent *e;
	struct ks_ct_key k;
	__u32 i;

	__builtin_memcpy(bk.addr, be, sizeof(bk.addr));
KS_UNROLL
	for (i = 0; i < KS_CT_VIPS; i++) {
		bk.idx = i;
		v = bpf_map_lookup_elem(&ks_ct_vips, &bk);
		if (!v)
			break;
		e = ct_fwd_of(cl, cl_port, v, be, be_port, proto, family, &k);
		if (e) {
			*vip = *v;
			return e;
		}
	}
	k = (struct ks_ct_key){ .sport = be_port, .dport = cl_port, .proto = proto,
				.family = family, .dir = KS_CT_REV };
	__builtin_memcpy(k.src, be, sizeof(k.src));
	__builtin_memcpy(k.dst, cl, sizeof(k.dst));
	e = bpf_map_lookup_elem(&ks_ct, &k);
	if (e) {
		__builtin_memcpy(vip->addr, e->addr, sizeof(vip->addr));
		vip->port = e->port;
	}
	return e;
}

/*
 * The client cl:cl_port starts a flow whose packets reach be:be_port
 * (through a VIP, or straight): forward entries of earlier flows from
 * cl:cl_port through other VIP:ports of be are over (both live, the
 * backend would see one connection), and a reply must not find them
 * first. Only a backend of several VIPs has any to look at. bk is be's
 * index key (its idx is overwritten), k scratch: the caller's, so that the
 * program's stack (512 bytes with the bpf_loop callbacks) holds one of each.
 */
static __always_inline void ct_forget_others(const __u32 *cl, __u16 cl_port,
					     const struct ks_ct_vip *mine, const __u32 *be,
					     __u16 be_port, __u8 proto, __u8 family,
					     struct ks_ct_be_key *bk, struct ks_ct_key *k)
{
	const struct ks_ct_vip *v;
	__u32 i;

KS_UNROLL
	for (i = 0; i < KS_CT_VIPS; i++) {
		bk->idx = i;
		v = bpf_map_lookup_elem(&ks_ct_vips, bk);
		if (!v)
			break;
		if (mine && v->port == mine->port && ks_addr_eq(v->addr, mine->addr))
			continue;
		if (ct_fwd_of(cl, cl_port, v, be, be_port, proto, family, k))
			bpf_map_delete_elem(&ks_ct, k);
	}
}

/*
 * List p's VIP:port under backend be in ks_ct_vips (the first free slot,
 * unless a slot has it already); false when it cannot (every slot holds
 * another VIP, or the map is full): the flow then needs a reverse entry.
 * k: scratch (ct_forget_others).
 */
static __always_inline bool ct_index(const struct ks_pkt *p, const struct ks_backend *be,
				     struct ks_ct_key *k)
{
	struct ks_ct_be_key bk = { .port = be->port, .proto = p->proto, .family = p->family };
	struct ks_ct_vip mine = { .port = p->dport };
	const struct ks_ct_vip *v;
	bool listed = false;
	__u32 i;

	__builtin_memcpy(bk.addr, be->addr, sizeof(bk.addr));
	__builtin_memcpy(mine.addr, p->dst, sizeof(mine.addr));
KS_UNROLL
	for (i = 0; i < KS_CT_VIPS; i++) {
		bk.idx = i;
		v = bpf_map_lookup_elem(&ks_ct_vips, &bk);
		/* Another CPU may fill the slot first (EEXIST): then it is read. */
		if (!v && !bpf_map_update_elem(&ks_ct_vips, &bk, &mine, BPF_NOEXIST)) {
			listed = true;
			break;
		}
		if (!v)
			v = bpf_map_lookup_elem(&ks_ct_vips, &bk);
		if (!v)
			break;	/* the map is full */
		if (v->port == mine.port && ks_addr_eq(v->addr, mine.addr)) {
			listed = true;
			break;
		}
	}
	/* Slots before ours hold other VIPs, and so may later ones. */
	ct_forget_others(p->src, p->sport, &mine, be->addr, be->port, p->proto, p->family, &bk,
			 k);
	return listed;
}

/*
 * The entries of a new flow from p (client -> VIP) to be: one, or two if
 * the index is short. flags: BPF_NOEXIST where the flow had no entry, so
 * that of two CPUs seeing its first packets at once (two threads sending
 * on one UDP socket) only one picks; BPF_ANY to replace a stale entry.
 * Returns -EEXIST_ when another CPU's entry won, else 0.
 */
static __always_inline int ct_create(const struct ks_pkt *p, const struct ks_ct_key *fwd,
				     const struct ks_backend *be, const struct ks_svc *svc,
				     __u32 gi, __u64 now, __u64 flags)
{
	struct ks_ct_ent e = { .port = be->port, .group = gi, .rev = svc->rev, .ep_id = be->ep_id,
			       .syn_seq = p->tcp_seq, .last_seen = now };
	struct ks_ct_key rk;

	__builtin_memcpy(e.addr, be->addr, sizeof(e.addr));
	if (bpf_map_update_elem(&ks_ct, fwd, &e, flags) == -EEXIST_)
		return -EEXIST_;
	if (ct_index(p, be, &rk))
		return 0;
	/* The same entry turned around: the VIP, for the replies. */
	__builtin_memcpy(e.addr, p->dst, sizeof(e.addr));
	e.port = p->dport;
	e.syn_seq = 0;
	rk = (struct ks_ct_key){ .sport = be->port, .dport = p->sport, .proto = p->proto,
				 .family = p->family, .dir = KS_CT_REV };
	__builtin_memcpy(rk.src, be->addr, sizeof(rk.src));
	__builtin_memcpy(rk.dst, p->src, sizeof(rk.dst));
	bpf_map_update_elem(&ks_ct, &rk, &e, BPF_ANY);
	return 0;
}

/* A packet of the flow of entry e (its key: client -> VIP) goes on to e's backend. */
static __always_inline int ct_follow(struct __sk_buff *skb, struct ks_pkt *p, struct ks_ct_ent *e,
				     __u64 now)
{
	ct_touch(e, p, now);
	if (ks_nat(skb, p, true, e->addr, e->port))
		return TC_ACT_SHOT_;
	remember_frag(p, KS_CT_FWD, e->addr);
	TC_COUNT(fwd);
	return TC_ACT_OK_;
}

/*
 * A SYN that is no VIP's, to addr:port of a backend, from a client port
 * an old VIP flow to that backend used: the replies of this connection
 * have the same 5-tuple as that flow's and must not be translated to the
 * VIP by its left-over entries (forward ones found through ks_ct_vips, or
 * a reverse one). Both cannot be live at once (the backend would see one
 * connection), so the old entries go. Only TCP SYNs pay for this; a UDP
 * flow straight to a backend can still meet such an entry until it
 * expires (docs/design.md).
 */
static __always_inline void forget_reverse(const struct ks_pkt *p)
{
	struct ks_ct_be_key bk = { .port = p->dport, .proto = p->proto, .family = p->family };
	struct ks_ct_key rk;

	__builtin_memcpy(bk.addr, p->dst, sizeof(bk.addr));
	ct_forget_others(p->src, p->sport, NULL, p->dst, p->dport, p->proto, p->family, &bk, &rk);
	rk = (struct ks_ct_key){ .sport = p->dport, .dport = p->sport, .proto = p->proto,
				 .family = p->family, .dir = KS_CT_REV };
	__builtin_memcpy(rk.src, p->dst, sizeof(rk.src));
	__builtin_memcpy(rk.dst, p->src, sizeof(rk.dst));
	bpf_map_delete_elem(&ks_ct, &rk);
}

/*
 * The flow's entry e is usable: the backend is still listed by svc. When
 * svc was rewritten since e last looked, the backend is searched for once
 * and e remembers the rev it was found in.
 */
static __always_inline bool ct_still_listed(struct ks_ct_ent *e, const struct ks_svc *svc)
{
	if (e->rev == svc->rev)
		return true;
	if (!ks_backend_listed(svc, e->addr, e->port))
		return false;
	e->rev = svc->rev;
	return true;
}

/*
 * ICMP errors about a translated flow, both ways. Both quote a packet of the
 * flow; the quote turned around is the flow's forward key (fwd), or a
 * reply of the flow, found as reverse() finds one.
 *
 * Toward the client (fwd false): an error about a packet the backend got
 * (fragmentation needed, port unreachable from the backend) quotes client ->
 * backend. The quote goes back to client -> VIP, and the error's source too
 * when it is the backend, so that the client's stack matches it to its
 * socket (PMTU discovery through a VIP).
 *
 * From the client (fwd true): an error about a reply it got (port
 * unreachable after its socket closed, fragmentation needed on its side)
 * quotes VIP -> client and is addressed to the VIP: both go back to the
 * backend, which sent the reply and must match the error to its socket.
 */
static __always_inline int nat_icmp(struct __sk_buff *skb, bool fwd)
{
	struct ks_ct_key ck = { .dir = KS_CT_FWD };
	struct ks_icmp_err c = {};
	struct ks_ct_vip to = {};	/* the backend (fwd) or the VIP */
	struct ks_ct_ent *e;
	bool outer;

	if (!ks_parse_icmp_err(skb, &c))
		return TC_ACT_OK_;
	if (fwd) {
		__builtin_memcpy(ck.src, c.inner.dst, sizeof(ck.src));
		__builtin_memcpy(ck.dst, c.inner.src, sizeof(ck.dst));
		ck.sport = c.inner.dport;
		ck.dport = c.inner.sport;
		ck.proto = c.inner.proto;
		ck.family = c.inner.family;
		e = bpf_map_lookup_elem(&ks_ct, &ck);
		if (e) {
			__builtin_memcpy(to.addr, e->addr, sizeof(to.addr));
			to.port = e->port;
		}
	} else {
		/* The quote is client -> backend: a reply of the flow is its mirror image. */
		e = ct_reply(c.inner.dst, c.inner.dport, c.inner.src, c.inner.sport, c.inner.proto,
			     c.inner.family, &to);
	}
	if (!e)
		return TC_ACT_OK_;
	/* Is the outer address on the translated side the one the quote names? */
	outer = fwd ? ks_addr_eq(c.outer.dst, c.inner.src) : ks_addr_eq(c.outer.src, c.inner.dst);
	if (ks_nat_icmp_err(skb, &c, to.addr, to.port, outer, fwd))
		return TC_ACT_SHOT_;
	TC_COUNT(icmp);
	return TC_ACT_OK_;
}

static __always_inline int forward(struct __sk_buff *skb)
{
	struct ks_ct_key ck = { .dir = KS_CT_FWD };
	struct ks_svc_key sk = {};
	const struct ks_backend *be;
	const struct ks_svc *svc;
	struct ks_pkt p = {};
	struct ks_ct_ent *e;
	__u32 gi = KS_NO_GROUP;
	bool syn;	/* may start a flow: a TCP SYN, or any UDP datagram */
	bool fresh;	/* the flow has no entry (none, or one that expired) */
	__u64 now;

	if (!ks_parse(skb, &p))
		return nat_icmp(skb, true);
	if (p.frag == KS_FRAG_LATER)
		return xlate_later_frag(skb, &p, KS_CT_FWD);
	__builtin_memcpy(sk.addr, p.dst, sizeof(sk.addr));
	sk.port = p.dport;
	sk.proto = p.proto;
	sk.family = p.family;
	svc = bpf_map_lookup_elem(&ks_services, &sk);
	syn = p.proto == IPPROTO_UDP_ ||
	      (p.tcp_flags & (TCP_FL_SYN_ | TCP_FL_ACK_)) == TCP_FL_SYN_;
	if (!svc) {
		if (syn && p.proto == IPPROTO_TCP_)
			forget_reverse(&p);
		return TC_ACT_OK_;
	}
	__builtin_memcpy(ck.src, p.src, sizeof(ck.src));
	__builtin_memcpy(ck.dst, p.dst, sizeof(ck.dst));
	ck.sport = p.sport;
	ck.dport = p.dport;
	ck.proto = p.proto;
	ck.family = p.family;
	e = bpf_map_lookup_elem(&ks_ct, &ck);
	now = bpf_ktime_get_coarse_ns();
	if (e && ct_expired(e, &ck, now)) {
		bpf_map_delete_elem(&ks_ct, &ck);
		TC_COUNT(expired);
		e = NULL;
	}
	fresh = !e;
	/*
	 * A SYN with another sequence number than the entry's is a new
	 * connection on a reused 5-tuple: it picks afresh. A retransmitted SYN
	 * repeats its number and keeps its backend, which may have answered.
	 */
	if (e && p.proto == IPPROTO_TCP_ && syn && e->syn_seq != p.tcp_seq)
		e = NULL;
	if (e && ct_still_listed(e, svc))
		return ct_follow(skb, &p, e, now);
	if (e && !syn) {
		/* A TCP flow whose endpoint is gone: not to a pod that is gone, not to the VIP either. */
		TC_COUNT(stale);
		return TC_ACT_SHOT_;
	}
	if (!syn) {
		TC_COUNT(no_syn);
		return TC_ACT_OK_;
	}
	be = ks_pick(svc, &gi);
	if (!be) {
		ks_count_refused(svc, gi);
		TC_COUNT(refused);
		return TC_ACT_SHOT_;
	}
	if (ct_create(&p, &ck, be, svc, gi, now, fresh ? BPF_NOEXIST : BPF_ANY) &&
	    (e = bpf_map_lookup_elem(&ks_ct, &ck)))
		return ct_follow(skb, &p, e, now);	/* another CPU's pick won */
	if (ks_nat(skb, &p, true, be->addr, be->port))
		return TC_ACT_SHOT_;
	remember_frag(&p, KS_CT_FWD, be->addr);
	ks_count_steered(svc, be, gi);
	TC_COUNT(new_flows);
	TC_COUNT(fwd);
	return TC_ACT_OK_;
}

static __always_inline int reverse(struct __sk_buff *skb)
{
	struct ks_ct_vip vip = {};
	struct ks_pkt p = {};
	struct ks_ct_ent *e;

	if (!ks_parse(skb, &p))
		return nat_icmp(skb, false);
	if (p.frag == KS_FRAG_LATER)
		return xlate_later_frag(skb, &p, KS_CT_REV);
	e = ct_reply(p.src, p.sport, p.dst, p.dport, p.proto, p.family, &vip);
	if (!e)
		return TC_ACT_OK_;
	/* The flow's forward entry, usually: the replies keep the flow alive, or close it. */
	ct_touch(e, &p, bpf_ktime_get_coarse_ns());
	if (ks_nat(skb, &p, false, vip.addr, vip.port))
		return TC_ACT_SHOT_;
	remember_frag(&p, KS_CT_REV, vip.addr);
	TC_COUNT(rev);
	return TC_ACT_OK_;
}

SEC("tc")
int ksplit_tc_ingress(struct __sk_buff *skb) { return forward(skb); }

SEC("tc")
int ksplit_tc_egress(struct __sk_buff *skb) { return reverse(skb); }
