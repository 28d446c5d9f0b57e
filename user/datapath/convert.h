/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Moving a map entry from one build's layout to another's, described by the
 * BTF both builds pinned with their maps. Used by the pin upgrade
 * (upgrade.c) so that a build with another ABI takes over a running
 * datapath instead of needing `ksplit down`. Pure: no map, no kernel; the
 * unit tests build both layouts with btf__add_*.
 *
 * The rule a field change must follow (include/ksplit/abi.h says it too):
 * members are matched by name, so a member whose meaning changes gets a new
 * name, and a new member's zero must mean "as before".
 */
#ifndef KSPLIT_DP_CONVERT_H
#define KSPLIT_DP_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct btf;

/*
 * Whether a value of type oid (in ob) can become one of type nid (in nb) at
 * all: the same kinds all the way down (struct to struct, int or enum to
 * int or enum, array to array), no bitfields, no pointers. 0, or -EPROTO
 * with the first path that cannot be moved written to why
 * ("groups[].weight_end: int becomes struct").
 */
int ks_btf_convertible(const struct btf *ob, uint32_t oid, const struct btf *nb, uint32_t nid,
		       char *why, size_t why_len);

/*
 * Write into dst (the size of nid, zeroed first) the value src holds as oid:
 * members by name, old members the new type lacks are dropped, new ones stay
 * zero; integers are widened or narrowed (a value that does not fit fails),
 * arrays element by element (a non-zero element beyond the new length
 * fails). 0, or -EPROTO / -ERANGE with why, and dst is then undefined.
 */
int ks_btf_convert(const struct btf *ob, uint32_t oid, const void *src, const struct btf *nb,
		   uint32_t nid, void *dst, char *why, size_t why_len);

/*
 * The same, except that every integer is added to what dst (already the
 * new type) holds: how one CPU's copy of a per-CPU value joins the value of
 * a map shared by all CPUs. Per-CPU maps hold counters only, and counters
 * sum; they wrap at 64 bits as in the kernel.
 */
int ks_btf_convert_add(const struct btf *ob, uint32_t oid, const void *src, const struct btf *nb,
		       uint32_t nid, void *dst, char *why, size_t why_len);

/* Every byte of p[0..n) is zero: an unused array slot, or an element nobody set. */
bool ks_all_zero(const void *p, size_t n);

#endif
