/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Addresses as every layer holds them, and their text forms. IPv6 is always
 * printed in brackets when a port follows, so "fd00::1:80" is never ambiguous.
 */
#ifndef KSPLIT_ADDR_H
#define KSPLIT_ADDR_H

#include <stddef.h>
#include <stdint.h>

/* family is KS_FAMILY_V4 (4) or KS_FAMILY_V6 (6); bytes in network order, v4 in bytes[0..3]. */
struct ksm_addr {
	uint8_t family;
	uint8_t bytes[16];
};

/*
 * Addresses a node-wide connect() hook must not take as VIPs: redirecting them
 * would capture local traffic of every process on the node. KSM_VIP_OK last.
 */
enum ksm_vip_class {
	KSM_VIP_UNSPECIFIED,	/* 0.0.0.0, :: */
	KSM_VIP_BROADCAST,	/* 255.255.255.255 */
	KSM_VIP_MULTICAST,	/* 224.0.0.0/4, ff00::/8 */
	KSM_VIP_LINK_LOCAL,	/* 169.254.0.0/16, fe80::/10 */
	KSM_VIP_LOOPBACK,	/* 127.0.0.0/8, ::1 (refused unless allowed) */
	KSM_VIP_OK,
};

/* The class of a; IPv4-mapped IPv6 (::ffff:a.b.c.d) is classed as the IPv4 address. */
enum ksm_vip_class ksm_addr_vip_class(const struct ksm_addr *a);
/* "loopback" etc., and why such a VIP is refused; NULL for KSM_VIP_OK. */
const char *ksm_vip_class_name(enum ksm_vip_class c);
const char *ksm_vip_class_why(enum ksm_vip_class c);

int ksm_addr_fmt(const struct ksm_addr *a, char *buf, size_t len);
int ksm_addr_parse(const char *s, struct ksm_addr *out);	/* 0 or -EINVAL */
/* "10.0.0.1:80" / "[fd00::1]:80" from map-format fields (addr as in the maps, port in network order). */
int ks_fmt_addrport(char *buf, size_t len, uint8_t family, const uint32_t *addr, uint16_t port_be);

#endif /* KSPLIT_ADDR_H */
