/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packets for the per-packet path (bpf/tc.bpf.c): parse an Ethernet frame
 * into the addresses, ports and offsets NAT needs, and rewrite one
 * address:port with the checksum updates. A frame that is not what it
 * claims to be (short, a bad header length, an IP total length beyond the
 * frame) parses as "not ours" and passes untouched: the stack drops it.
 *
 * The common headers (Ethernet, IPv4 with options, IPv6, TCP, UDP) are read
 * with direct packet access, which costs no helper call; IPv6 extension
 * headers, rare, with bpf_skb_load_bytes.
 */
#ifndef KSPLIT_BPF_PKT_H
#define KSPLIT_BPF_PKT_H

#include <bpf/bpf_endian.h>
#include "lib/addr.h"

/* uapi macros that vmlinux.h does not carry. */
#define TC_ACT_OK_	0
#define TC_ACT_SHOT_	2
#define ETH_HLEN_	14
#define ETH_P_IP_	0x0800
#define ETH_P_IPV6_	0x86DD
#define IP_MF_		0x2000
#define IP_OFFSET_	0x1fff
#define NEXTHDR_HOP_	0
#define NEXTHDR_ROUTING_ 43
#define NEXTHDR_FRAG_	44
#define NEXTHDR_DEST_	60
#define IPPROTO_ICMP_	1
#define IPPROTO_ICMPV6_	58
#define TCP_FL_FIN_	0x01
#define TCP_FL_SYN_	0x02
#define TCP_FL_RST_	0x04
#define TCP_FL_ACK_	0x10
#define KS_IP6_EXT_MAX	4	/* extension headers walked before giving up (passes untouched) */

#define KS_FRAG_NONE	0
#define KS_FRAG_FIRST	1	/* offset 0, more fragments follow: has the L4 header */
#define KS_FRAG_LATER	2	/* offset > 0: no L4 header */

struct ks_pkt {
	__u32 src[4], dst[4];	/* ksplit's form (lib/addr.h) */
	__u16 sport, dport;	/* network order; 0 for a later fragment */
	__u8 proto, family;
	__u8 frag;		/* KS_FRAG_* */
	__u8 tcp_flags;
	__u32 frag_id;		/* IPv4 id or IPv6 fragment identification */
	__u32 tcp_seq;		/* network order */
	__u32 l4_off;		/* offset of the L4 header in the frame */
	__u32 csum_off;		/* offset of the L4 checksum */
};

/* Offsets of the addresses in the frame, per family. */
#define KS_V4_CSUM_OFF	(ETH_HLEN_ + 10)
#define KS_V4_SRC_OFF	(ETH_HLEN_ + 12)
#define KS_V4_DST_OFF	(ETH_HLEN_ + 16)
#define KS_V6_SRC_OFF	(ETH_HLEN_ + 8)
#define KS_V6_DST_OFF	(ETH_HLEN_ + 24)

/* The ports and TCP flags at l4_off; false when the frame is too short for the header. */
static __always_inline bool ks_parse_l4(void *data, void *data_end, struct ks_pkt *p)
{
	__u32 off = p->l4_off;
	__u16 *ports;

	if (off > 1024)
		return false;
	ports = data + off;
	if (p->proto == IPPROTO_TCP_) {
		if ((void *)ports + 20 > data_end)
			return false;
		p->tcp_flags = ((__u8 *)ports)[13];
		p->tcp_seq = *(__u32 *)&ports[2];
		p->csum_off = off + 16;
	} else {
		if ((void *)ports + 8 > data_end)
			return false;
		p->csum_off = off + 6;
	}
	p->sport = ports[0];
	p->dport = ports[1];
	return true;
}

static __always_inline bool ks_parse_v4(struct __sk_buff *skb, void *data, void *data_end,
					struct ks_pkt *p)
{
	struct iphdr *ip = data + ETH_HLEN_;
	__u32 hlen, tot;
	__u16 frag;

	if ((void *)(ip + 1) > data_end)
		return false;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || hlen < 20 || tot < hlen || ETH_HLEN_ + tot > skb->len)
		return false;
	p->proto = ip->protocol;
	if (p->proto != IPPROTO_TCP_ && p->proto != IPPROTO_UDP_)
		return false;
	p->family = KS_FAMILY_V4;
	p->src[0] = ip->saddr;
	p->dst[0] = ip->daddr;
	p->l4_off = ETH_HLEN_ + hlen;
	frag = bpf_ntohs(ip->frag_off);
	p->frag_id = bpf_ntohs(ip->id);
	if (frag & IP_OFFSET_) {
		p->frag = KS_FRAG_LATER;
		return true;
	}
	p->frag = frag & IP_MF_ ? KS_FRAG_FIRST : KS_FRAG_NONE;
	return ks_parse_l4(data, data_end, p);
}

/*
 * Walk hop-by-hop, routing, destination options and fragment headers to
 * the L4 header. Anything else (AH, ESP, no next header) is not ours.
 */
static __always_inline bool ks_parse_v6_ext(struct __sk_buff *skb, struct ks_pkt *p, __u8 nh)
{
	__u32 off = ETH_HLEN_ + 40;
	__u8 hdr[8];
	int i;

#pragma unroll
	for (i = 0; i < KS_IP6_EXT_MAX; i++) {
		if (nh == IPPROTO_TCP_ || nh == IPPROTO_UDP_)
			break;
		if (nh != NEXTHDR_HOP_ && nh != NEXTHDR_ROUTING_ && nh != NEXTHDR_DEST_ &&
		    nh != NEXTHDR_FRAG_)
			return false;
		if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
			return false;
		if (nh == NEXTHDR_FRAG_) {
			__u16 fo = bpf_ntohs(*(__u16 *)&hdr[2]);

			p->frag_id = *(__u32 *)&hdr[4];
			if (fo & 0xfff8)
				p->frag = KS_FRAG_LATER;
			else if (fo & 1)
				p->frag = KS_FRAG_FIRST;
			off += 8;
		} else {
			off += (hdr[1] + 1) * 8;
		}
		nh = hdr[0];
	}
	if (nh != IPPROTO_TCP_ && nh != IPPROTO_UDP_)
		return false;
	p->proto = nh;
	p->l4_off = off;
	return true;
}

static __always_inline bool ks_parse_v6(struct __sk_buff *skb, void *data, void *data_end,
					struct ks_pkt *p)
{
	struct ipv6hdr *ip = data + ETH_HLEN_;

	if ((void *)(ip + 1) > data_end)
		return false;
	if (ip->version != 6 || ETH_HLEN_ + 40 + (__u32)bpf_ntohs(ip->payload_len) > skb->len)
		return false;
	p->family = KS_FAMILY_V6;
	__builtin_memcpy(p->src, &ip->saddr, 16);
	__builtin_memcpy(p->dst, &ip->daddr, 16);
	if (ip->nexthdr == IPPROTO_TCP_ || ip->nexthdr == IPPROTO_UDP_) {
		p->proto = ip->nexthdr;
		p->l4_off = ETH_HLEN_ + 40;
	} else if (!ks_parse_v6_ext(skb, p, ip->nexthdr)) {
		return false;
	}
	if (p->frag == KS_FRAG_LATER)
		return true;
	/* bpf_skb_load_bytes does not move the packet: data and data_end still hold. */
	return ks_parse_l4(data, data_end, p);
}

/* p (zeroed by the caller) from the frame; false: not a TCP/UDP packet ksplit could translate. */
static __always_inline bool ks_parse(struct __sk_buff *skb, struct ks_pkt *p)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP_))
		return ks_parse_v4(skb, data, data_end, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6_))
		return ks_parse_v6(skb, data, data_end, p);
	return false;
}

/*
 * Replace the destination (dst true) or source address:port of p's packet
 * with addr:port, fixing the IPv4 header checksum and the L4 checksum over
 * the pseudo header and the port. A UDP checksum of 0 (none, IPv4) stays 0
 * and a computed 0 is sent as 0xffff: BPF_F_MARK_MANGLED_0. A later
 * fragment has no L4 header: only the address changes.
 */
static __always_inline int ks_nat(struct __sk_buff *skb, const struct ks_pkt *p, bool dst,
				  const __u32 *addr, __u16 port)
{
	__u64 mm = p->proto == IPPROTO_UDP_ ? BPF_F_MARK_MANGLED_0 : 0;
	const __u32 *old = dst ? p->dst : p->src;
	__u16 old_port = dst ? p->dport : p->sport;
	__u32 alen, aoff;
	__s64 diff;

	if (p->family == KS_FAMILY_V4) {
		alen = 4;
		aoff = dst ? KS_V4_DST_OFF : KS_V4_SRC_OFF;
		diff = bpf_csum_diff((__be32 *)old, 4, (__be32 *)addr, 4, 0);
	} else {
		alen = 16;
		aoff = dst ? KS_V6_DST_OFF : KS_V6_SRC_OFF;
		diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)addr, 16, 0);
	}
	if (diff < 0)
		return (int)diff;
	if (p->frag != KS_FRAG_LATER) {
		if (bpf_l4_csum_replace(skb, p->csum_off, 0, diff, BPF_F_PSEUDO_HDR | mm))
			return -1;
		if (port != old_port &&
		    bpf_l4_csum_replace(skb, p->csum_off, old_port, port, 2 | mm))
			return -1;
		if (bpf_skb_store_bytes(skb, p->l4_off + (dst ? 2 : 0), &port, 2, 0))
			return -1;
	}
	if (p->family == KS_FAMILY_V4 && bpf_l3_csum_replace(skb, KS_V4_CSUM_OFF, 0, diff, 0))
		return -1;
	return bpf_skb_store_bytes(skb, aoff, addr, alen, 0) ? -1 : 0;
}

/*
 * An ICMP error (IPv4 destination unreachable or time exceeded; ICMPv6
 * destination unreachable, packet too big or time exceeded) quotes the
 * packet it is about: that packet's IP header, plain (no options, no
 * extension headers), and at least its ports.
 */
struct ks_icmp_err {
	struct ks_pkt outer;	/* src, dst, family, l4_off (the ICMP header) */
	struct ks_pkt inner;	/* the quoted packet: src, dst, ports, proto */
	__u32 inner_ip_off;	/* offset of the quoted IP header */
};

static __always_inline bool ks_parse_icmp_err(struct __sk_buff *skb, struct ks_icmp_err *c)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 *icmp;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP_)) {
		struct iphdr *ip = data + ETH_HLEN_, *in;
		__u32 hlen;

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl != 5 ||
		    ip->protocol != IPPROTO_ICMP_ || (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_)))
			return false;
		icmp = (void *)(ip + 1);
		in = (void *)(icmp + 8);
		if ((void *)(in + 1) + 8 > data_end || (icmp[0] != 3 && icmp[0] != 11) ||
		    in->version != 4 || in->ihl != 5)
			return false;
		hlen = 20;
		c->outer.family = c->inner.family = KS_FAMILY_V4;
		c->outer.src[0] = ip->saddr;
		c->outer.dst[0] = ip->daddr;
		c->inner.src[0] = in->saddr;
		c->inner.dst[0] = in->daddr;
		c->inner.proto = in->protocol;
		c->outer.l4_off = ETH_HLEN_ + 20;
		c->inner_ip_off = ETH_HLEN_ + 28;
		c->inner.l4_off = ETH_HLEN_ + 28 + hlen;
		c->inner.sport = *(__u16 *)((void *)(in + 1));
		c->inner.dport = *(__u16 *)((void *)(in + 1) + 2);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr *ip = data + ETH_HLEN_, *in;

		if ((void *)(ip + 1) > data_end || ip->version != 6 || ip->nexthdr != IPPROTO_ICMPV6_)
			return false;
		icmp = (void *)(ip + 1);
		in = (void *)(icmp + 8);
		if ((void *)(in + 1) + 8 > data_end || icmp[0] < 1 || icmp[0] > 3 || in->version != 6)
			return false;
		c->outer.family = c->inner.family = KS_FAMILY_V6;
		__builtin_memcpy(c->outer.src, &ip->saddr, 16);
		__builtin_memcpy(c->outer.dst, &ip->daddr, 16);
		__builtin_memcpy(c->inner.src, &in->saddr, 16);
		__builtin_memcpy(c->inner.dst, &in->daddr, 16);
		c->inner.proto = in->nexthdr;
		c->outer.l4_off = ETH_HLEN_ + 40;
		c->inner_ip_off = ETH_HLEN_ + 48;
		c->inner.l4_off = ETH_HLEN_ + 88;
		c->inner.sport = *(__u16 *)((void *)(in + 1));
		c->inner.dport = *(__u16 *)((void *)(in + 1) + 2);
	} else {
		return false;
	}
	return c->inner.proto == IPPROTO_TCP_ || c->inner.proto == IPPROTO_UDP_;
}

/*
 * Replace the quoted packet's destination with addr:port, and, with
 * outer, the error's own source too (the backend itself reported it). With
 * fwd, the mirror image for an error the client sends about a reply: the
 * quote's source, and with outer the error's destination. The ICMP
 * checksum covers the quote (and, for ICMPv6, the pseudo header); the
 * quoted IPv4 header has its own. The quoted L4 checksum, if quoted at
 * all, is left: nobody verifies it in an error.
 */
static __always_inline int ks_nat_icmp_err(struct __sk_buff *skb, const struct ks_icmp_err *c,
					   const __u32 *addr, __u16 port, bool outer, bool fwd)
{
	__u32 alen = c->outer.family == KS_FAMILY_V4 ? 4 : 16, csum = c->outer.l4_off + 2;
	__u32 addr_off = c->inner_ip_off + (alen == 4 ? (fwd ? 12 : 16) : (fwd ? 8 : 24));
	const __u32 *old = fwd ? c->inner.src : c->inner.dst;
	const __u32 *old_outer = fwd ? c->outer.dst : c->outer.src;
	__u16 old_port = fwd ? c->inner.sport : c->inner.dport;
	__u32 outer_off = alen == 4 ? (fwd ? KS_V4_DST_OFF : KS_V4_SRC_OFF)
				    : (fwd ? KS_V6_DST_OFF : KS_V6_SRC_OFF);
	__s64 diff;

	diff = alen == 4 ? bpf_csum_diff((__be32 *)old, 4, (__be32 *)addr, 4, 0)
			 : bpf_csum_diff((__be32 *)old, 16, (__be32 *)addr, 16, 0);
	if (diff < 0)
		return -1;
	if (alen == 4) {
		__u16 old_ck, new_ck;

		/* The quoted header's checksum changes with its address: the ICMP sum sees both. */
		if (bpf_skb_load_bytes(skb, c->inner_ip_off + 10, &old_ck, 2) ||
		    bpf_l3_csum_replace(skb, c->inner_ip_off + 10, 0, diff, 0) ||
		    bpf_skb_load_bytes(skb, c->inner_ip_off + 10, &new_ck, 2) ||
		    bpf_l4_csum_replace(skb, csum, old_ck, new_ck, 2))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, csum, 0, diff, 0) ||
	    bpf_l4_csum_replace(skb, csum, old_port, port, 2) ||
	    bpf_skb_store_bytes(skb, addr_off, addr, alen, 0) ||
	    bpf_skb_store_bytes(skb, c->inner.l4_off + (fwd ? 0 : 2), &port, 2, 0))
		return -1;
	if (!outer)
		return 0;
	diff = alen == 4 ? bpf_csum_diff((__be32 *)old_outer, 4, (__be32 *)addr, 4, 0)
			 : bpf_csum_diff((__be32 *)old_outer, 16, (__be32 *)addr, 16, 0);
	if (diff < 0)
		return -1;
	if (alen == 4) {
		if (bpf_l3_csum_replace(skb, KS_V4_CSUM_OFF, 0, diff, 0))
			return -1;
	} else if (bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR)) {
		return -1;
	}
	return bpf_skb_store_bytes(skb, outer_off, addr, alen, 0) ? -1 : 0;
}

#endif /* KSPLIT_BPF_PKT_H */
