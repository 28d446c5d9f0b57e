/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocators for the datapath's index spaces, kept pure for unit tests:
 *  - ks_idalloc: single ids (svc_id, ep_id) for the per-CPU stats arrays;
 *  - ks_rangealloc: contiguous slot ranges in the backends array, one per
 *    group generation. A range is only freed after the RCU sync that makes
 *    sure no connect() still reads it.
 */
#ifndef KSPLIT_ALLOC_H
#define KSPLIT_ALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct ks_idalloc {
	uint32_t cap;
	uint32_t used;
	uint32_t hint;		/* where the next search starts */
	uint64_t *bits;
};

int ks_idalloc_init(struct ks_idalloc *a, uint32_t cap);
void ks_idalloc_fini(struct ks_idalloc *a);
int ks_idalloc_get(struct ks_idalloc *a, uint32_t *id);	/* 0 or -ENOSPC */
int ks_idalloc_mark(struct ks_idalloc *a, uint32_t id);	/* 0, -EEXIST or -ERANGE */
void ks_idalloc_put(struct ks_idalloc *a, uint32_t id);
bool ks_idalloc_test(const struct ks_idalloc *a, uint32_t id);

struct ks_extent {
	uint32_t base, len;
};

/* Free extents, sorted by base, never adjacent (coalesced). */
struct ks_rangealloc {
	uint32_t cap;
	uint32_t free_total;
	size_t n, alloc;
	struct ks_extent *v;
};

int ks_rangealloc_init(struct ks_rangealloc *r, uint32_t cap);
void ks_rangealloc_fini(struct ks_rangealloc *r);
/* First fit. 0, -ENOSPC (not enough free) or -EFBIG (enough free, but fragmented). */
int ks_rangealloc_get(struct ks_rangealloc *r, uint32_t len, uint32_t *base);
/* Take a specific range out of the free list (adopting pinned state): 0 or -EEXIST. */
int ks_rangealloc_mark(struct ks_rangealloc *r, uint32_t base, uint32_t len);
int ks_rangealloc_put(struct ks_rangealloc *r, uint32_t base, uint32_t len);

#endif
