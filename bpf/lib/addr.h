/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address helpers shared by the programs. A dual-stack AF_INET6 socket talks
 * to IPv4 peers as ::ffff:a.b.c.d; ksplit's maps hold those as IPv4.
 */
#ifndef KSPLIT_BPF_ADDR_H
#define KSPLIT_BPF_ADDR_H

#include <bpf/bpf_endian.h>
#include <ksplit/abi.h>

/* ks_svc_key.proto values (uapi macros, which vmlinux.h does not carry). */
#define IPPROTO_TCP_	6
#define IPPROTO_UDP_	17

/*
 * Turn a 4-word IPv6 address into ksplit's form in place: a v4-mapped one
 * becomes IPv4 in a[0]. Returns the family (KS_FAMILY_V4 or _V6).
 */
static __always_inline __u8 ks_addr_unmap(__u32 *a)
{
	if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff)) {
		a[0] = a[3];
		a[1] = a[2] = a[3] = 0;
		return KS_FAMILY_V4;
	}
	return KS_FAMILY_V6;
}

static __always_inline bool ks_addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

#endif /* KSPLIT_BPF_ADDR_H */
