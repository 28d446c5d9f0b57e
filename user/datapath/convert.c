// SPDX-License-Identifier: BSD-2-Clause
/*
 * One walk over two BTF types, the old build's and ours, side by side:
 * with no source value it only checks that the kinds agree (once per map,
 * before any entry is copied), with one it also moves the bytes. Members go
 * by name because that is what survives a reorder, the case that made the
 * layout check necessary in the first place (abi.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>

#include "datapath/convert.h"

#define MAX_DEPTH	16	/* the ABI nests three levels; more is a loop */

struct walk {
	const struct btf *ob, *nb;
	char path[160];		/* where the walk is: "groups[3].be_base" */
	size_t plen;
	char *why;
	size_t why_len;
	bool add;		/* add each integer into dst instead of storing it */
};

static int fail(struct walk *w, int err, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!w->why || !w->why_len)
		return err;
	if (w->plen)
		n = snprintf(w->why, w->why_len, "%s: ", w->path);
	if (n < 0 || (size_t)n >= w->why_len)
		return err;
	va_start(ap, fmt);
	vsnprintf(w->why + n, w->why_len - n, fmt, ap);
	va_end(ap);
	return err;
}

/* Append to the path; returns the length to cut back to. */
static size_t path_push(struct walk *w, const char *fmt, ...)
{
	size_t old = w->plen;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(w->path + old, sizeof(w->path) - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->plen = old + (size_t)n < sizeof(w->path) ? old + (size_t)n : sizeof(w->path) - 1;
	return old;
}

static void path_pop(struct walk *w, size_t len)
{
	w->plen = len;
	w->path[len] = '\0';
}

static const struct btf_type *resolve(const struct btf *b, uint32_t id)
{
	int r = btf__resolve_type(b, id);

	return r < 0 ? NULL : btf__type_by_id(b, (uint32_t)r);
}

static const char *kind_name(const struct btf_type *t)
{
	switch (t ? btf_kind(t) : BTF_KIND_UNKN) {
	case BTF_KIND_INT:	return "int";
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:	return "enum";
	case BTF_KIND_STRUCT:	return "struct";
	case BTF_KIND_UNION:	return "union";
	case BTF_KIND_ARRAY:	return "array";
	case BTF_KIND_PTR:	return "pointer";
	default:		return "unknown type";
	}
}

static bool is_int(const struct btf_type *t)
{
	return btf_is_int(t) || btf_is_enum(t) || btf_is_enum64(t);
}

/* Size and signedness of an integer-like type; false when it is not a plain one. */
static bool int_shape(const struct btf_type *t, uint32_t *size, bool *sign)
{
	*size = t->size;
	if (btf_is_int(t)) {
		*sign = btf_int_encoding(t) & BTF_INT_SIGNED;
		return !btf_int_offset(t) && btf_int_bits(t) <= t->size * 8;
	}
	*sign = btf_kflag(t);
	return true;
}

static bool sized(uint32_t n)
{
	return n == 1 || n == 2 || n == 4 || n == 8;
}

static int64_t load_int(const void *p, uint32_t size, bool sign)
{
	uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64 = 0;

	switch (size) {
	case 1: memcpy(&u8, p, 1); return sign ? (int8_t)u8 : (int64_t)u8;
	case 2: memcpy(&u16, p, 2); return sign ? (int16_t)u16 : (int64_t)u16;
	case 4: memcpy(&u32, p, 4); return sign ? (int32_t)u32 : (int64_t)u32;
	default: memcpy(&u64, p, 8); return (int64_t)u64;
	}
}

/* v, read from a signed type when vsign, fits an integer of size bytes, signed when sign. */
static bool fits(int64_t v, bool vsign, uint32_t size, bool sign)
{
	uint64_t u = (uint64_t)v;

	if (vsign && v < 0)
		return sign && (size == 8 || v >= -(INT64_C(1) << (size * 8 - 1)));
	if (size == 8)
		return !sign || u <= INT64_MAX;
	return u < (UINT64_C(1) << (size * 8 - (sign ? 1 : 0)));
}

static void store_int(void *p, uint32_t size, int64_t v)
{
	uint8_t u8 = (uint8_t)v; uint16_t u16 = (uint16_t)v; uint32_t u32 = (uint32_t)v;
	uint64_t u64 = (uint64_t)v;

	switch (size) {
	case 1: memcpy(p, &u8, 1); break;
	case 2: memcpy(p, &u16, 2); break;
	case 4: memcpy(p, &u32, 4); break;
	default: memcpy(p, &u64, 8); break;
	}
}

static int walk(struct walk *w, uint32_t oid, const uint8_t *src, uint32_t nid, uint8_t *dst,
		int depth);

static int walk_int(struct walk *w, const struct btf_type *ot, const uint8_t *src,
		    const struct btf_type *nt, uint8_t *dst)
{
	uint32_t osz, nsz;
	bool osign, nsign;
	int64_t v;

	if (!int_shape(ot, &osz, &osign) || !int_shape(nt, &nsz, &nsign) || !sized(osz) ||
	    !sized(nsz))
		return fail(w, -EPROTO, "an integer of %u or %u bytes with bit offsets cannot be moved",
			    ot->size, nt->size);
	if (!src)
		return 0;
	v = load_int(src, osz, osign);
	if (!fits(v, osign, nsz, nsign))
		return fail(w, -ERANGE, osign ? "%lld does not fit the new %u-byte %s type"
					      : "%llu does not fit the new %u-byte %s type",
			    (long long)v, nsz, nsign ? "signed" : "unsigned");
	if (w->add) {
		/* Counters wrap as they do in the kernel; a narrower sum must still fit. */
		v = (int64_t)((uint64_t)v + (uint64_t)load_int(dst, nsz, nsign));
		if (nsz < 8 && !fits(v, nsign, nsz, nsign))
			return fail(w, -ERANGE, "the sum over CPUs does not fit the new %u-byte type",
				    nsz);
	}
	store_int(dst, nsz, v);
	return 0;
}

bool ks_all_zero(const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n--)
		if (*c++)
			return false;
	return true;
}

static int walk_array(struct walk *w, const struct btf_type *ot, const uint8_t *src,
		      const struct btf_type *nt, uint8_t *dst, int depth)
{
	const struct btf_array *oa = btf_array(ot), *na = btf_array(nt);
	long osz = btf__resolve_size(w->ob, oa->type), nsz = btf__resolve_size(w->nb, na->type);
	uint32_t i, n = oa->nelems < na->nelems ? oa->nelems : na->nelems;
	size_t cut;
	int err;

	if (osz <= 0 || nsz <= 0)
		return fail(w, -EPROTO, "array element without a size");
	/* The kinds once, even for an empty array or a check without data. */
	cut = path_push(w, "[]");
	err = walk(w, oa->type, NULL, na->type, NULL, depth + 1);
	path_pop(w, cut);
	if (err || !src)
		return err;
	for (i = 0; i < n; i++) {
		cut = path_push(w, "[%u]", i);
		err = walk(w, oa->type, src + (size_t)i * osz, na->type, dst + (size_t)i * nsz,
			   depth + 1);
		path_pop(w, cut);
		if (err)
			return err;
	}
	for (; i < oa->nelems; i++)
		if (!ks_all_zero(src + (size_t)i * osz, osz))
			return fail(w, -ERANGE, "element %u is in use and the new array has %u",
				    i, na->nelems);
	return 0;
}

static const struct btf_member *member_named(const struct btf *b, const struct btf_type *t,
					     const char *name, uint16_t *idx)
{
	uint16_t i;

	for (i = 0; i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(b, btf_members(t)[i].name_off), name)) {
			*idx = i;
			return btf_members(t) + i;
		}
	return NULL;
}

static int walk_struct(struct walk *w, const struct btf_type *ot, const uint8_t *src,
		       const struct btf_type *nt, uint8_t *dst, int depth)
{
	uint16_t i, oi;

	for (i = 0; i < btf_vlen(nt); i++) {
		const struct btf_member *nm = btf_members(nt) + i, *om;
		const char *name = btf__name_by_offset(w->nb, nm->name_off);
		size_t cut;
		int err;

		if (!name || !*name)
			return fail(w, -EPROTO, "member %u has no name, so it cannot be matched", i);
		om = member_named(w->ob, ot, name, &oi);
		if (!om)
			continue;	/* new in this build: stays zero */
		cut = path_push(w, w->plen ? ".%s" : "%s", name);
		if (btf_member_bitfield_size(nt, i) || btf_member_bitfield_size(ot, oi)) {
			err = fail(w, -EPROTO, "bitfields cannot be moved");
		} else {
			uint32_t ooff = btf_member_bit_offset(ot, oi) / 8;
			uint32_t noff = btf_member_bit_offset(nt, i) / 8;

			err = walk(w, om->type, src ? src + ooff : NULL, nm->type,
				   dst ? dst + noff : NULL, depth + 1);
		}
		path_pop(w, cut);
		if (err)
			return err;
	}
	return 0;
}

static int walk(struct walk *w, uint32_t oid, const uint8_t *src, uint32_t nid, uint8_t *dst,
		int depth)
{
	const struct btf_type *ot = resolve(w->ob, oid), *nt = resolve(w->nb, nid);

	if (depth > MAX_DEPTH)
		return fail(w, -ELOOP, "types nest deeper than %d", MAX_DEPTH);
	if (!ot || !nt)
		return fail(w, -EPROTO, "type id without a type");
	if (is_int(ot) && is_int(nt))
		return walk_int(w, ot, src, nt, dst);
	if (btf_is_array(ot) && btf_is_array(nt))
		return walk_array(w, ot, src, nt, dst, depth);
	if (btf_is_struct(ot) && btf_is_struct(nt))
		return walk_struct(w, ot, src, nt, dst, depth);
	if (btf_kind(ot) == btf_kind(nt))
		return fail(w, -EPROTO, "a %s cannot be moved (the ABI has none)", kind_name(ot));
	return fail(w, -EPROTO, "%s becomes %s", kind_name(ot), kind_name(nt));
}

int ks_btf_convertible(const struct btf *ob, uint32_t oid, const struct btf *nb, uint32_t nid,
		       char *why, size_t why_len)
{
	struct walk w = { .ob = ob, .nb = nb, .why = why, .why_len = why_len };

	if (why && why_len)
		why[0] = '\0';
	return walk(&w, oid, NULL, nid, NULL, 0);
}

int ks_btf_convert(const struct btf *ob, uint32_t oid, const void *src, const struct btf *nb,
		   uint32_t nid, void *dst, char *why, size_t why_len)
{
	struct walk w = { .ob = ob, .nb = nb, .why = why, .why_len = why_len };
	long nsz = btf__resolve_size(nb, nid);

	if (why && why_len)
		why[0] = '\0';
	if (nsz <= 0)
		return fail(&w, -EPROTO, "the new type has no size");
	memset(dst, 0, (size_t)nsz);
	return walk(&w, oid, src, nid, dst, 0);
}

int ks_btf_convert_add(const struct btf *ob, uint32_t oid, const void *src, const struct btf *nb,
		       uint32_t nid, void *dst, char *why, size_t why_len)
{
	struct walk w = { .ob = ob, .nb = nb, .why = why, .why_len = why_len, .add = true };

	if (why && why_len)
		why[0] = '\0';
	return walk(&w, oid, src, nid, dst, 0);
}
