// SPDX-License-Identifier: BSD-2-Clause
/* Crafted frames for BPF_PROG_TEST_RUN: see packets.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "packets.h"

#define FRAG_DGRAM	48	/* UDP header + 40 bytes: two fragments of 24 */
#define FRAG_PART	24

static uint32_t sum16(const uint8_t *b, size_t n, uint32_t s)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Sum of the pseudo header for an L4 segment of len bytes. */
static uint32_t pseudo(int family, const uint8_t *src, const uint8_t *dst, int proto, size_t len)
{
	size_t alen = family == 4 ? 4 : 16;
	uint32_t s = sum16(src, alen, 0);

	s = sum16(dst, alen, s);
	return s + (uint32_t)proto + (uint32_t)len;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void addr_parse(int family, const char *s, uint8_t *out)
{
	if (inet_pton(family == 4 ? AF_INET : AF_INET6, s, out) != 1)
		abort();
}

/* The L4 bytes of the whole segment (or datagram, for fragments) with its checksum. */
static size_t l4_build(const struct kt_pkt_spec *s, const uint8_t *src, const uint8_t *dst,
		       uint8_t *l4)
{
	size_t hl = s->proto == IPPROTO_TCP ? 20 : 8;
	size_t plen = s->frag != KT_FRAG_NONE ? FRAG_DGRAM - 8 : s->payload, len = hl + plen, i;
	uint16_t c;

	memset(l4, 0, hl);
	put16(l4, s->sport);
	put16(l4 + 2, s->dport);
	for (i = 0; i < plen; i++)
		l4[hl + i] = (uint8_t)(i * 7 + 1);
	if (s->proto == IPPROTO_TCP) {
		uint32_t seq = s->seq ? s->seq : 0x12340000;

		put16(l4 + 4, seq >> 16);
		put16(l4 + 6, seq & 0xffff);
		l4[12] = 5 << 4;
		l4[13] = s->tcp_flags;
		put16(l4 + 14, 64240);
	} else {
		put16(l4 + 4, (uint16_t)len);
	}
	if (s->proto == IPPROTO_UDP && s->no_udp_csum)
		return len;
	c = (uint16_t)~fold(sum16(l4, len, pseudo(s->family, src, dst, s->proto, len)));
	if (s->proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	put16(l4 + (s->proto == IPPROTO_TCP ? 16 : 6), c);
	return len;
}

void kt_pkt_build(const struct kt_pkt_spec *s, struct kt_pkt *p)
{
	uint8_t src[16], dst[16], l4[KT_PKT_MAX], *b = p->b;
	size_t l4len, off, part_off = 0, part_len;

	memset(p, 0, sizeof(*p));
	if (s->frag != KT_FRAG_NONE && s->proto != IPPROTO_UDP)
		abort();
	addr_parse(s->family, s->src, src);
	addr_parse(s->family, s->dst, dst);
	l4len = l4_build(s, src, dst, l4);
	part_len = l4len;
	if (s->frag == KT_FRAG_FIRST)
		part_len = FRAG_PART;
	else if (s->frag == KT_FRAG_LATER)
		part_off = FRAG_PART, part_len = FRAG_DGRAM - FRAG_PART;
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(b + 12, s->family == 4 ? 0x0800 : 0x86dd);
	p->l3 = off = 14;
	if (s->family == 4) {
		size_t hl = s->ip_options ? 24 : 20;

		b[off] = 0x40 | (uint8_t)(hl / 4);
		put16(b + off + 2, (uint16_t)(hl + part_len));
		put16(b + off + 4, (uint16_t)s->frag_id);
		if (s->frag == KT_FRAG_FIRST)
			put16(b + off + 6, 0x2000);
		else if (s->frag == KT_FRAG_LATER)
			put16(b + off + 6, (uint16_t)(part_off / 8));
		b[off + 8] = 64;
		b[off + 9] = (uint8_t)s->proto;
		memcpy(b + off + 12, src, 4);
		memcpy(b + off + 16, dst, 4);
		if (s->ip_options)
			memset(b + off + 20, 1, 4);	/* NOPs */
		put16(b + off + 10, (uint16_t)~fold(sum16(b + off, hl, 0)));
		off += hl;
	} else {
		uint8_t *nh = b + off + 6;
		size_t ext = 0;

		b[off] = 0x60;
		b[off + 7] = 64;
		memcpy(b + off + 8, src, 16);
		memcpy(b + off + 24, dst, 16);
		off += 40;
		if (s->ext_headers) {
			/* Hop-by-hop, then destination options: 8 bytes each, a PadN option inside. */
			*nh = 0;
			memcpy(b + off, "\x3c\x00\x01\x04\x00\x00\x00\x00", 8);
			nh = b + off;
			off += 8;
			memcpy(b + off, "\x00\x00\x01\x04\x00\x00\x00\x00", 8);
			nh = b + off;
			off += 8;
			ext += 16;
		}
		if (s->frag != KT_FRAG_NONE) {
			*nh = 44;
			b[off] = 0;
			put16(b + off + 2, (uint16_t)(part_off | (s->frag == KT_FRAG_FIRST)));
			b[off + 4] = s->frag_id >> 24;
			b[off + 5] = s->frag_id >> 16;
			b[off + 6] = s->frag_id >> 8;
			b[off + 7] = s->frag_id;
			nh = b + off;
			off += 8;
			ext += 8;
		}
		*nh = (uint8_t)s->proto;
		put16(b + p->l3 + 4, (uint16_t)(ext + part_len));
	}
	p->l4 = off;
	p->proto = s->proto;
	memcpy(b + off, l4 + part_off, part_len);
	p->len = off + part_len;
}

void kt_pkt_icmp_error(const struct kt_pkt *inner, const char *src, const char *dst,
		       struct kt_pkt *out)
{
	int family = inner->b[inner->l3] >> 4;
	size_t quote = (inner->l4 - inner->l3) + 8, hl = family == 4 ? 20 : 40, off;
	uint8_t *b = out->b, *icmp;
	uint8_t s[16], d[16];

	memset(out, 0, sizeof(*out));
	addr_parse(family, src, s);
	addr_parse(family, dst, d);
	memcpy(b, inner->b, 14);
	out->l3 = 14;
	off = 14 + hl;
	out->l4 = off;
	icmp = b + off;
	icmp[0] = family == 4 ? 3 : 2;		/* unreachable / packet too big */
	icmp[1] = family == 4 ? 4 : 0;		/* fragmentation needed */
	put16(icmp + 6, 1400);			/* next-hop MTU (v6: low half of 32 bits) */
	memcpy(icmp + 8, inner->b + inner->l3, quote);
	out->len = off + 8 + quote;
	out->proto = family == 4 ? 1 : 58;
	if (family == 4) {
		b[14] = 0x45;
		put16(b + 16, (uint16_t)(hl + 8 + quote));
		b[22] = 64;
		b[23] = 1;
		memcpy(b + 26, s, 4);
		memcpy(b + 30, d, 4);
		put16(b + 24, (uint16_t)~fold(sum16(b + 14, 20, 0)));
		put16(icmp + 2, (uint16_t)~fold(sum16(icmp, 8 + quote, 0)));
	} else {
		b[14] = 0x60;
		put16(b + 18, (uint16_t)(8 + quote));
		b[20] = 58;
		b[21] = 64;
		memcpy(b + 22, s, 16);
		memcpy(b + 38, d, 16);
		put16(icmp + 2, (uint16_t)~fold(sum16(icmp, 8 + quote,
						     pseudo(6, s, d, 58, 8 + quote))));
	}
}

bool kt_pkt_icmp_csum_ok(const struct kt_pkt *p)
{
	size_t len = p->len - p->l4;
	uint32_t s = 0;

	if ((p->b[p->l3] >> 4) == 6)
		s = pseudo(6, p->b + p->l3 + 8, p->b + p->l3 + 24, 58, len);
	return fold(sum16(p->b + p->l4, len, s)) == 0xffff;
}

bool kt_pkt_ip_csum_ok(const struct kt_pkt *p)
{
	if ((p->b[p->l3] >> 4) != 4)
		return true;
	return fold(sum16(p->b + p->l3, (p->b[p->l3] & 15) * 4u, 0)) == 0xffff;
}

bool kt_pkt_l4_csum_ok(const struct kt_pkt *p, const struct kt_pkt *later)
{
	int family = p->b[p->l3] >> 4;
	const uint8_t *src = p->b + p->l3 + (family == 4 ? 12 : 8);
	const uint8_t *dst = p->b + p->l3 + (family == 4 ? 16 : 24);
	uint8_t seg[KT_PKT_MAX * 2];
	size_t len = p->len - p->l4;
	int proto = p->proto;

	memcpy(seg, p->b + p->l4, len);
	if (later) {
		memcpy(seg + len, later->b + later->l4, later->len - later->l4);
		len += later->len - later->l4;
	}
	if (proto == IPPROTO_UDP && seg[6] == 0 && seg[7] == 0)
		return false;
	return fold(sum16(seg, len, pseudo(family, src, dst, proto, len))) == 0xffff;
}

void kt_pkt_diff(const char *what, const struct kt_pkt *got, const struct kt_pkt *want)
{
	size_t i, n = got->len > want->len ? got->len : want->len;

	fprintf(stderr, "  %s: got %zu bytes, want %zu\n", what, got->len, want->len);
	for (i = 0; i < n; i++)
		if (i >= got->len || i >= want->len || got->b[i] != want->b[i])
			fprintf(stderr, "    byte %zu: got %02x want %02x\n", i,
				i < got->len ? got->b[i] : 0, i < want->len ? want->b[i] : 0);
}

int kt_pkt_run(int prog_fd, const struct kt_pkt *p, struct kt_pkt *out, uint32_t *ret)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (uint32_t)p->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);

	memset(out->b, 0, sizeof(out->b));
	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	out->len = o.data_size_out;
	out->l3 = p->l3;
	out->l4 = p->l4;
	out->proto = p->proto;
	*ret = o.retval;
	return 0;
}
