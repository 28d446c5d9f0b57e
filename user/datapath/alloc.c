// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datapath/alloc.h"

int ks_idalloc_init(struct ks_idalloc *a, uint32_t cap)
{
	memset(a, 0, sizeof(*a));
	a->bits = calloc((cap + 63) / 64, sizeof(uint64_t));
	if (!a->bits)
		return -ENOMEM;
	a->cap = cap;
	return 0;
}

void ks_idalloc_fini(struct ks_idalloc *a)
{
	free(a->bits);
	memset(a, 0, sizeof(*a));
}

bool ks_idalloc_test(const struct ks_idalloc *a, uint32_t id)
{
	return id < a->cap && (a->bits[id / 64] >> (id % 64)) & 1;
}

int ks_idalloc_mark(struct ks_idalloc *a, uint32_t id)
{
	if (id >= a->cap)
		return -ERANGE;
	if (ks_idalloc_test(a, id))
		return -EEXIST;
	a->bits[id / 64] |= 1ULL << (id % 64);
	a->used++;
	return 0;
}

int ks_idalloc_get(struct ks_idalloc *a, uint32_t *id)
{
	uint32_t words = (a->cap + 63) / 64, w, i;

	if (a->used >= a->cap)
		return -ENOSPC;
	/* Scan whole words from the hint: ids are handed out densely in practice. */
	for (i = 0; i < words; i++) {
		uint64_t free_bits;
		uint32_t bit;

		w = (a->hint / 64 + i) % words;
		free_bits = ~a->bits[w];
		if (!free_bits)
			continue;
		bit = __builtin_ctzll(free_bits);
		if (w * 64 + bit >= a->cap)
			continue;
		*id = w * 64 + bit;
		a->bits[w] |= 1ULL << bit;
		a->used++;
		a->hint = *id;
		return 0;
	}
	return -ENOSPC;
}

void ks_idalloc_put(struct ks_idalloc *a, uint32_t id)
{
	if (!ks_idalloc_test(a, id))
		return;
	a->bits[id / 64] &= ~(1ULL << (id % 64));
	a->used--;
}

static int ext_insert(struct ks_rangealloc *r, size_t at, uint32_t base, uint32_t len)
{
	if (r->n == r->alloc) {
		size_t na = r->alloc ? r->alloc * 2 : 16;
		struct ks_extent *nv = realloc(r->v, na * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->alloc = na;
	}
	memmove(&r->v[at + 1], &r->v[at], (r->n - at) * sizeof(*r->v));
	r->v[at].base = base;
	r->v[at].len = len;
	r->n++;
	return 0;
}

static void ext_remove(struct ks_rangealloc *r, size_t at)
{
	memmove(&r->v[at], &r->v[at + 1], (r->n - at - 1) * sizeof(*r->v));
	r->n--;
}

int ks_rangealloc_init(struct ks_rangealloc *r, uint32_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->free_total = cap;
	return cap ? ext_insert(r, 0, 0, cap) : 0;
}

void ks_rangealloc_fini(struct ks_rangealloc *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

int ks_rangealloc_get(struct ks_rangealloc *r, uint32_t len, uint32_t *base)
{
	size_t i;

	if (!len) {
		*base = 0;
		return 0;
	}
	if (len > r->free_total)
		return -ENOSPC;
	for (i = 0; i < r->n; i++) {
		if (r->v[i].len < len)
			continue;
		*base = r->v[i].base;
		r->v[i].base += len;
		r->v[i].len -= len;
		if (!r->v[i].len)
			ext_remove(r, i);
		r->free_total -= len;
		return 0;
	}
	return -EFBIG;
}

int ks_rangealloc_mark(struct ks_rangealloc *r, uint32_t base, uint32_t len)
{
	size_t i;

	if (!len)
		return 0;
	for (i = 0; i < r->n; i++) {
		struct ks_extent *e = &r->v[i];
		uint32_t end = base + len, eend = e->base + e->len;

		if (base < e->base || end > eend)
			continue;
		/* Split the free extent around [base, end). */
		if (base == e->base && end == eend) {
			ext_remove(r, i);
		} else if (base == e->base) {
			e->base = end;
			e->len = eend - end;
		} else if (end == eend) {
			e->len = base - e->base;
		} else {
			e->len = base - e->base;
			if (ext_insert(r, i + 1, end, eend - end))
				return -ENOMEM;
		}
		r->free_total -= len;
		return 0;
	}
	return -EEXIST;
}

int ks_rangealloc_put(struct ks_rangealloc *r, uint32_t base, uint32_t len)
{
	size_t i = 0;
	int err;

	if (!len)
		return 0;
	if (base + len > r->cap || base + len < base)
		return -ERANGE;
	while (i < r->n && r->v[i].base < base)
		i++;
	/* Refuse a double free: the range must not overlap a free neighbour. */
	if ((i > 0 && r->v[i - 1].base + r->v[i - 1].len > base) ||
	    (i < r->n && base + len > r->v[i].base))
		return -EINVAL;
	r->free_total += len;
	if (i > 0 && r->v[i - 1].base + r->v[i - 1].len == base) {
		r->v[i - 1].len += len;
		if (i < r->n && r->v[i - 1].base + r->v[i - 1].len == r->v[i].base) {
			r->v[i - 1].len += r->v[i].len;
			ext_remove(r, i);
		}
		return 0;
	}
	if (i < r->n && base + len == r->v[i].base) {
		r->v[i].base = base;
		r->v[i].len += len;
		return 0;
	}
	err = ext_insert(r, i, base, len);
	if (err)
		r->free_total -= len;
	return err;
}
