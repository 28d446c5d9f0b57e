/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Crafted Ethernet frames for the per-packet programs, run with
 * BPF_PROG_TEST_RUN: IPv4 (with options, fragments) and IPv6 (with
 * extension headers, fragments), TCP and UDP, every checksum computed here
 * from scratch, so a frame the program rewrote can be compared byte for
 * byte with the frame built directly with the translated fields.
 */
#ifndef KSPLIT_KT_PACKETS_H
#define KSPLIT_KT_PACKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KT_PKT_MAX	512

enum kt_frag { KT_FRAG_NONE, KT_FRAG_FIRST, KT_FRAG_LATER };

struct kt_pkt_spec {
	int family;			/* 4 or 6 */
	int proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	const char *src, *dst;		/* addresses */
	uint16_t sport, dport;		/* host order */
	uint8_t tcp_flags;		/* TH_SYN, TH_ACK, ... */
	uint32_t seq;			/* TCP sequence number; 0: 0x12340000 */
	bool ip_options;		/* IPv4: 4 bytes of NOP options (ihl 6) */
	bool ext_headers;		/* IPv6: hop-by-hop and destination options before L4 */
	bool no_udp_csum;		/* IPv4 UDP sent without checksum (0) */
	enum kt_frag frag;		/* UDP only: the first or the later fragment of a 48-byte datagram */
	uint32_t frag_id;
	size_t payload;			/* bytes of payload (pattern); fragments ignore it */
};

struct kt_pkt {
	uint8_t b[KT_PKT_MAX];
	size_t len;
	size_t l3, l4;			/* offsets of the IP and L4 headers (fragment data) */
	int proto;
};

/* Build the frame s describes into p; aborts on a spec it cannot build. */
void kt_pkt_build(const struct kt_pkt_spec *s, struct kt_pkt *p);
/*
 * An ICMP error from src to dst about inner (fragmentation needed / packet
 * too big, MTU 1400) quoting its IP header and the first 8 bytes after it.
 */
void kt_pkt_icmp_error(const struct kt_pkt *inner, const char *src, const char *dst,
		       struct kt_pkt *out);
/* The ICMP (ICMPv6: with its pseudo header) checksum of p verifies. */
bool kt_pkt_icmp_csum_ok(const struct kt_pkt *p);
/* The IPv4 header checksum of p verifies (always true for IPv6). */
bool kt_pkt_ip_csum_ok(const struct kt_pkt *p);
/*
 * The L4 checksum verifies over the pseudo header of p's addresses. For a
 * first fragment, later (its later fragment) supplies the rest of the
 * datagram. A UDP checksum of 0 (none) is reported as not ok.
 */
bool kt_pkt_l4_csum_ok(const struct kt_pkt *p, const struct kt_pkt *later);
/* Print both frames where they differ (for a failing comparison). */
void kt_pkt_diff(const char *what, const struct kt_pkt *got, const struct kt_pkt *want);
/*
 * Run prog_fd once on p (BPF_PROG_TEST_RUN); out gets the frame as the
 * program left it, *ret the program's verdict. 0 or -errno.
 */
int kt_pkt_run(int prog_fd, const struct kt_pkt *p, struct kt_pkt *out, uint32_t *ret);

#endif
