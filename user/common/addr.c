// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

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
