// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
/*
 * libFuzzer entry point for the manifest pipeline: YAML tree, object checks,
 * resolution. Inputs split at "\n#FILE\n" become separate buffers so that
 * cross-file references and duplicate detection are reached too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"

#define MAX_BUFS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char names[MAX_BUFS][8] = { "a.yaml", "b.yaml", "c.yaml", "d.yaml" };
	static const char sep[] = "\n#FILE\n";
	const char *bufs[MAX_BUFS], *nv[MAX_BUFS];
	size_t lens[MAX_BUFS], n = 0;
	const char *p = (const char *)data, *end = p + size;
	struct ks_model m;
	struct ks_diags d = { 0 };

	ks_log_set_level(KS_LOG_WARN);
	while (n < MAX_BUFS) {
		const char *cut = n + 1 < MAX_BUFS ? memmem(p, (size_t)(end - p), sep, sizeof(sep) - 1) : NULL;

		bufs[n] = p;
		nv[n] = names[n];
		lens[n] = cut ? (size_t)(cut - p) : (size_t)(end - p);
		n++;
		if (!cut)
			break;
		p = cut + sizeof(sep) - 1;
	}
	if (!ks_model_load_buffers(nv, bufs, lens, n, &m, &d))
		ks_model_free(&m);
	ks_diags_free(&d);
	return 0;
}
