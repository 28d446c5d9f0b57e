// SPDX-License-Identifier: BSD-2-Clause
/*
 * Moving map entries between two builds' layouts (user/datapath/convert.c):
 * both layouts are built here with btf__add_*, so every rule of the upgrade
 * is checked without a kernel: members by name, new ones zero, integers
 * resized only when the value fits, arrays shrunk only over unused
 * elements, and a refusal that names the member for anything else.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <bpf/btf.h>

#include "datapath/convert.h"

/* Types both sides use; ids are the same in every BTF built by base(). */
struct ids {
	int u8, u16, u32, s32, u64;
};

static struct btf *base(struct ids *t)
{
	struct btf *b = btf__new_empty();

	assert_non_null(b);
	t->u8 = btf__add_int(b, "unsigned char", 1, 0);
	t->u16 = btf__add_int(b, "unsigned short", 2, 0);
	t->u32 = btf__add_int(b, "unsigned int", 4, 0);
	t->s32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
	t->u64 = btf__add_int(b, "unsigned long long", 8, 0);
	assert_true(t->u8 > 0 && t->u16 > 0 && t->u32 > 0 && t->s32 > 0 && t->u64 > 0);
	return b;
}

static void field(struct btf *b, const char *name, int type, int bit_off)
{
	assert_int_equal(btf__add_field(b, name, type, bit_off, 0), 0);
}

/* The old entry: { u32 id; u32 rev; u16 port; u16 gone; grp g[4] {u32 w; u32 n;} } = 44 bytes. */
struct old_ent {
	uint32_t id, rev;
	uint16_t port, gone;
	struct { uint32_t w, n; } g[4];
};

static int old_type(struct btf *b, const struct ids *t)
{
	int grp = btf__add_struct(b, "grp", 8), arr, s;

	field(b, "w", t->u32, 0);
	field(b, "n", t->u32, 32);
	arr = btf__add_array(b, t->u32, grp, 4);
	s = btf__add_struct(b, "ent", sizeof(struct old_ent));
	field(b, "id", t->u32, 0);
	field(b, "rev", t->u32, 32);
	field(b, "port", t->u16, 64);
	field(b, "gone", t->u16, 80);
	field(b, "g", arr, 96);
	return s;
}

/*
 * The new entry: rev and id swapped, port widened to u32 (through a
 * typedef), n before w, g shrunk to 2, "gone" dropped, and a new member.
 */
struct new_ent {
	uint32_t rev, id, port;
	struct { uint32_t n, w; } g[2];
	uint64_t extra;
};

static int new_type(struct btf *b, const struct ids *t)
{
	int grp = btf__add_struct(b, "grp", 8), arr, s, td;

	field(b, "n", t->u32, 0);
	field(b, "w", t->u32, 32);
	arr = btf__add_array(b, t->u32, grp, 2);
	td = btf__add_typedef(b, "__port_t", t->u32);
	s = btf__add_struct(b, "ent", sizeof(struct new_ent));
	field(b, "rev", t->u32, 0);
	field(b, "id", t->u32, 32);
	field(b, "port", td, 64);
	field(b, "g", arr, 96);
	field(b, "extra", t->u64, 8 * offsetof(struct new_ent, extra));
	return s;
}

static void test_members_by_name(void **state)
{
	struct ids t;
	struct btf *ob = base(&t), *nb = base(&t);
	int oid = old_type(ob, &t), nid = new_type(nb, &t);
	struct old_ent o = { .id = 7, .rev = 9, .port = 8080, .gone = 5, .g = { { 100, 3 }, { 200, 0 } } };
	struct new_ent n;
	char why[128];

	(void)state;
	assert_int_equal(ks_btf_convertible(ob, oid, nb, nid, why, sizeof(why)), 0);
	memset(&n, 0xff, sizeof(n));
	assert_int_equal(ks_btf_convert(ob, oid, &o, nb, nid, &n, why, sizeof(why)), 0);
	assert_int_equal(n.id, 7);
	assert_int_equal(n.rev, 9);
	assert_int_equal(n.port, 8080);
	assert_int_equal(n.g[0].w, 100);
	assert_int_equal(n.g[0].n, 3);
	assert_int_equal(n.g[1].w, 200);
	assert_int_equal(n.g[1].n, 0);
	assert_int_equal(n.extra, 0);		/* new: zero, not what dst held */

	/* A used element beyond the new length: refused, naming it. */
	o.g[3].n = 1;
	assert_int_equal(ks_btf_convert(ob, oid, &o, nb, nid, &n, why, sizeof(why)), -ERANGE);
	assert_string_equal(why, "g: element 3 is in use and the new array has 2");
	btf__free(ob);
	btf__free(nb);
}

/* old { <from> v; } -> new { <to> v; } with value raw: rc and why. */
static int one_int(int from, int to, const void *raw, void *out, char *why)
{
	struct ids t;
	struct btf *ob = base(&t), *nb = base(&t);
	const int *tf = &t.u8;	/* the ids in declaration order: u8 u16 u32 s32 u64 */
	int os, ns, rc;

	os = btf__add_struct(ob, "s", 8);
	field(ob, "v", tf[from], 0);
	ns = btf__add_struct(nb, "s", 8);
	field(nb, "v", tf[to], 0);
	rc = ks_btf_convert(ob, os, raw, nb, ns, out, why, 128);
	btf__free(ob);
	btf__free(nb);
	return rc;
}

enum { U8, U16, U32, S32, U64 };

static void test_integers_resized_when_they_fit(void **state)
{
	uint64_t in, out;
	int32_t neg = -5;
	char why[128];

	(void)state;
	in = 65535;
	assert_int_equal(one_int(U32, U16, &in, &out, why), 0);
	assert_int_equal((uint16_t)out, 65535);
	in = 70000;
	assert_int_equal(one_int(U32, U16, &in, &out, why), -ERANGE);
	assert_string_equal(why, "v: 70000 does not fit the new 2-byte unsigned type");
	assert_int_equal(one_int(S32, U64, &neg, &out, why), -ERANGE);
	assert_string_equal(why, "v: -5 does not fit the new 8-byte unsigned type");
	in = 0x80000000u;
	assert_int_equal(one_int(U32, S32, &in, &out, why), -ERANGE);
	assert_string_equal(why, "v: 2147483648 does not fit the new 4-byte signed type");
	in = UINT64_MAX;
	assert_int_equal(one_int(U64, U8, &in, &out, why), -ERANGE);
	in = 200;
	out = 0;
	assert_int_equal(one_int(U8, U64, &in, &out, why), 0);
	assert_int_equal(out, 200);
}

/*
 * Per-CPU counters into a shared map: each CPU's copy is converted and
 * added. Old { u64 a; u32 b; } per CPU -> new { u32 b; u64 a; u64 c; }.
 */
static void test_per_cpu_copies_summed(void **state)
{
	struct ids t;
	struct btf *ob = base(&t), *nb = base(&t);
	struct { uint64_t a; uint32_t b, pad; } cpu[3] = { { 5, 1, 0 }, { 7, 2, 0 }, { 0, 40, 0 } };
	struct { uint32_t b, pad; uint64_t a, c; } out;
	uint32_t small = 0;
	char why[128];
	int os, ns, os2, ns2, c;

	(void)state;
	os = btf__add_struct(ob, "s", 16);
	field(ob, "a", t.u64, 0);
	field(ob, "b", t.u32, 64);
	ns = btf__add_struct(nb, "s", 24);
	field(nb, "b", t.u32, 0);
	field(nb, "a", t.u64, 64);
	field(nb, "c", t.u64, 128);
	memset(&out, 0, sizeof(out));
	for (c = 0; c < 3; c++)
		assert_int_equal(ks_btf_convert_add(ob, os, &cpu[c], nb, ns, &out, why, sizeof(why)), 0);
	assert_int_equal(out.a, 12);
	assert_int_equal(out.b, 43);
	assert_int_equal(out.c, 0);
	/* A 64-bit counter wraps as the kernel's does. */
	out.a = UINT64_MAX;
	assert_int_equal(ks_btf_convert_add(ob, os, &cpu[0], nb, ns, &out, why, sizeof(why)), 0);
	assert_int_equal(out.a, 4);
	/* A sum that a narrower new member cannot hold is refused, naming it. */
	os2 = btf__add_struct(ob, "w", 8);
	field(ob, "v", t.u64, 0);
	ns2 = btf__add_struct(nb, "w", 4);
	field(nb, "v", t.u16, 0);
	cpu[0].a = 40000;
	assert_int_equal(ks_btf_convert_add(ob, os2, &cpu[0].a, nb, ns2, &small, why, sizeof(why)), 0);
	assert_int_equal(small, 40000);
	assert_int_equal(ks_btf_convert_add(ob, os2, &cpu[0].a, nb, ns2, &small, why, sizeof(why)),
			 -ERANGE);
	assert_string_equal(why, "v: the sum over CPUs does not fit the new 2-byte type");
	btf__free(ob);
	btf__free(nb);
}

static void test_kind_changes_refused(void **state)
{
	struct ids t;
	struct btf *ob = base(&t), *nb = base(&t);
	int os, ns, box, bf;
	char why[128];

	(void)state;
	os = btf__add_struct(ob, "s", 8);
	field(ob, "a", t.u32, 0);
	field(ob, "total", t.u32, 32);
	box = btf__add_struct(nb, "box", 4);
	field(nb, "w", t.u32, 0);
	ns = btf__add_struct(nb, "s", 8);
	field(nb, "a", t.u32, 0);
	field(nb, "total", box, 32);
	assert_int_equal(ks_btf_convertible(ob, os, nb, ns, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "total: int becomes struct");

	/* Bitfields have no byte to move. */
	bf = btf__add_struct(nb, "b", 4);
	assert_int_equal(btf__add_field(nb, "a", t.u32, 0, 3), 0);
	assert_int_equal(ks_btf_convertible(ob, os, nb, bf, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "a: bitfields cannot be moved");
	btf__free(ob);
	btf__free(nb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_by_name),
		cmocka_unit_test(test_integers_resized_when_they_fit),
		cmocka_unit_test(test_per_cpu_copies_summed),
		cmocka_unit_test(test_kind_changes_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
