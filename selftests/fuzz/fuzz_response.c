// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target for what a pod answers a health check: the HTTP/1.1
 * reader (h1.c) and the HTTP/2 client session (h2.c) take arbitrary bytes,
 * cut into reads the way the input's first byte says, and must neither
 * crash nor leak, and must settle on one result. Run by `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "health/h1.h"
#include "health/h2.h"

static void drain(struct ks_h2 *h)
{
	const uint8_t *d;
	size_t n;

	/* Write out in halves, as a socket short of room would take it. */
	while ((n = ks_h2_out(h, &d)))
		ks_h2_sent(h, n > 1 ? n / 2 : n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_h1_resp r;
	struct ks_h2 *h;
	size_t step, off;
	bool http2;
	enum ks_h1_result res = KS_H1_MORE, first = KS_H1_MORE;

	if (!size)
		return 0;
	http2 = data[0] & 1;
	step = (data[0] >> 1) + 1;	/* reads of 1..128 bytes */
	data++;
	size--;
	if (!http2) {
		ks_h1_resp_init(&r);
		for (off = 0; off < size; off += step) {
			res = ks_h1_resp_feed(&r, (const char *)data + off,
					      size - off < step ? size - off : step);
			if (first == KS_H1_MORE)
				first = res;
			if (first != KS_H1_MORE && res != first)
				abort();	/* a settled result never changes */
		}
		res = ks_h1_resp_feed(&r, NULL, 0);
		if (first != KS_H1_MORE && res != first)
			abort();
		if (res == KS_H1_DONE && (r.status < 100 || r.status > 999))
			abort();
		return 0;
	}
	if (ks_h2_new(&h))
		return 0;
	ks_h2_request(h, "10.0.0.7", 8080, "/health", false);
	drain(h);
	for (off = 0; off < size; off += step) {
		res = ks_h2_feed(h, data + off, size - off < step ? size - off : step);
		drain(h);
		if (res == KS_H1_DONE && !ks_h2_request(h, "10.0.0.7", 8080, "/health", false))
			drain(h);
		if (res == KS_H1_BAD && ks_h2_reusable(h))
			abort();	/* a failed connection is never offered again */
	}
	ks_h2_feed(h, NULL, 0);
	ks_h2_free(h);
	return 0;
}
