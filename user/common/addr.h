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

int ksm_addr_fmt(const struct ksm_addr *a, char *buf, size_t len);
int ksm_addr_parse(const char *s, struct ksm_addr *out);	/* 0 or -EINVAL */
/* "10.0.0.1:80" / "[fd00::1]:80" from map-format fields (addr as in the maps, port in network order). */
int ks_fmt_addrport(char *buf, size_t len, uint8_t family, const uint32_t *addr, uint16_t port_be);

#endif /* KSPLIT_ADDR_H */
