// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ksplit/abi.h"

#include "common/addr.h"

int ksm_addr_parse(const char *s, struct ksm_addr *out)
{
	struct ksm_addr a = { 0 };

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = KS_FAMILY_V4;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = KS_FAMILY_V6;
	else
		return -EINVAL;
	*out = a;
	return 0;
}

int ksm_addr_fmt(const struct ksm_addr *a, char *buf, size_t len)
{
	int af;

	if (!a || !buf)
		return -EINVAL;
	if (a->family == KS_FAMILY_V4)
		af = AF_INET;
	else if (a->family == KS_FAMILY_V6)
		af = AF_INET6;
	else
		return -EINVAL;
	if (len > (size_t)~0u >> 1)
		len = (size_t)~0u >> 1;
	if (!inet_ntop(af, a->bytes, buf, (socklen_t)len))
		return -ENOSPC;
	return 0;
}

int ks_fmt_addrport(char *buf, size_t len, uint8_t family, const uint32_t *addr, uint16_t port_be)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(family == KS_FAMILY_V4 ? AF_INET : AF_INET6, addr, a, sizeof(a)))
		return -errno;
	if (family == KS_FAMILY_V4)
		n = snprintf(buf, len, "%s:%u", a, ntohs(port_be));
	else
		n = snprintf(buf, len, "[%s]:%u", a, ntohs(port_be));
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static enum ksm_vip_class v4_class(const uint8_t *b)
{
	if (!b[0] && !b[1] && !b[2] && !b[3])
		return KSM_VIP_UNSPECIFIED;
	if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
		return KSM_VIP_BROADCAST;
	if ((b[0] & 0xf0) == 224)
		return KSM_VIP_MULTICAST;
	if (b[0] == 169 && b[1] == 254)
		return KSM_VIP_LINK_LOCAL;
	if (b[0] == 127)
		return KSM_VIP_LOOPBACK;
	return KSM_VIP_OK;
}

enum ksm_vip_class ksm_addr_vip_class(const struct ksm_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[15];
	const uint8_t *b = a->bytes;

	if (a->family == KS_FAMILY_V4)
		return v4_class(b);
	/* A v4-mapped address reaches the IPv4 address it carries. */
	if (!memcmp(b, mapped, sizeof(mapped)))
		return v4_class(b + 12);
	if (!memcmp(b, zero, sizeof(zero)) && b[15] <= 1)
		return b[15] ? KSM_VIP_LOOPBACK : KSM_VIP_UNSPECIFIED;
	if (b[0] == 0xff)
		return KSM_VIP_MULTICAST;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return KSM_VIP_LINK_LOCAL;
	return KSM_VIP_OK;
}

static const struct {
	const char *name, *why;
} vip_classes[] = {
	[KSM_VIP_UNSPECIFIED] = { "unspecified",
		"it is no destination of its own: connect() to it reaches the local host, so "
		"every process's local connections would be captured" },
	[KSM_VIP_BROADCAST] = { "broadcast",
		"it is every host on the local network, not one service" },
	[KSM_VIP_MULTICAST] = { "multicast",
		"it is a group of receivers, not one service" },
	[KSM_VIP_LINK_LOCAL] = { "link-local",
		"link-local addresses belong to the node's own links (169.254.169.254 is the "
		"cloud metadata service), so every process's traffic to them would be captured" },
	[KSM_VIP_LOOPBACK] = { "loopback",
		"the node-wide connect() hook would capture every process's local traffic to "
		"it; pass --allow-loopback-vips for tests and demos" },
};

const char *ksm_vip_class_name(enum ksm_vip_class c)
{
	return c < KSM_VIP_OK ? vip_classes[c].name : NULL;
}

const char *ksm_vip_class_why(enum ksm_vip_class c)
{
	return c < KSM_VIP_OK ? vip_classes[c].why : NULL;
}
