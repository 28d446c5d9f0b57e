// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ABI check before adoption: a pinned map is reused only if its key and
 * value types have the layout this build's object declares, and upgraded
 * (upgrade.c) when they can be moved to it.
 *
 * Why compare the BTF of the pins with ours rather than stamp a version in
 * a pinned map: every map libbpf pins carries the BTF of its key and value
 * types, so the pins already describe themselves, including those made by
 * builds older than this check; a stamp would have to be bumped by hand
 * (forgotten exactly when a field is reordered, the case that hit us:
 * same size, other offsets, adopted silently) and says nothing about pins
 * that have none. The layout hash covers member names, bit offsets, sizes,
 * int encodings and array lengths, recursively; typedef and struct names
 * are left out because renaming them changes nothing in memory.
 *
 * It runs before load, so libbpf never gets to refuse a pin with its own
 * message, which names the wrong cause (a "size" for any mismatch). A pin
 * whose layout, sizes or capacity differ from ours is not refused when its
 * entries can be moved: upgrade.c builds our map beside it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath/convert.h"
#include "datapath/dp_int.h"
#include "common/log.h"

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL
#define MAX_DEPTH	16	/* the ABI nests two levels; more is a loop */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * FNV_PRIME;
	return h;
}

static uint64_t fnv_u32(uint64_t h, uint32_t v)
{
	return fnv(h, &v, sizeof(v));
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* Layout hash of type id of btf into h; typedefs and qualifiers are see-through. */
static uint64_t layout_hash(const struct btf *btf, uint32_t id, uint64_t h, int depth)
{
	int resolved = btf__resolve_type(btf, id);
	const struct btf_type *t;
	uint16_t i;

	if (depth > MAX_DEPTH)
		return fnv_u32(h, UINT32_MAX);
	t = btf__type_by_id(btf, resolved < 0 ? id : (uint32_t)resolved);
	if (!t)
		return fnv_u32(h, UINT32_MAX - 1);
	h = fnv_u32(h, btf_kind(t));
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		h = fnv_u32(h, t->size);
		return fnv_u32(h, *(const uint32_t *)(t + 1));	/* encoding, offset, bits */
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		return fnv_u32(h, t->size);
	case BTF_KIND_ARRAY:
		h = fnv_u32(h, btf_array(t)->nelems);
		return layout_hash(btf, btf_array(t)->type, h, depth + 1);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		h = fnv_u32(h, t->size);
		h = fnv_u32(h, btf_vlen(t));
		for (i = 0; i < btf_vlen(t); i++) {
			const struct btf_member *m = btf_members(t) + i;

			h = fnv_str(h, btf__name_by_offset(btf, m->name_off));
			h = fnv_u32(h, btf_member_bit_offset(t, i));
			h = fnv_u32(h, btf_member_bitfield_size(t, i));
			h = layout_hash(btf, m->type, h, depth + 1);
		}
		return h;
	default:
		/* Pointers and the rest: the kind alone (the ABI has none). */
		return h;
	}
}

/* Key and value layouts together: the "ABI" of one map. */
static uint64_t map_abi(const struct btf *btf, uint32_t key_id, uint32_t value_id)
{
	return layout_hash(btf, value_id, layout_hash(btf, key_id, FNV_OFFSET, 0), 0);
}

static const char *type_name(const struct btf *btf, uint32_t id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	const char *n = t ? btf__name_by_offset(btf, t->name_off) : NULL;

	return n && *n ? n : "?";
}

/*
 * Map types whose entries upgrade.c moves into one another: hashes and
 * arrays (u32 keys both ways; an array's unused slots are all zero), each
 * per-CPU or shared (the counter maps became shared arrays).
 */
static bool kinds_movable(uint32_t from, uint32_t to)
{
	static const uint32_t kinds[] = { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY,
					  BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY };
	bool f = false, t = false;
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		f |= from == kinds[i];
		t |= to == kinds[i];
	}
	return f && t;
}

#define ABI_HINT "the pins were made by another ksplit build and cannot be moved to this one's layout. " \
	"Run the agent of the build that made them, or `ksplit down` (an outage: connects are not split until this agent runs) and start this one"

/*
 * Whether the entries of their map can be moved into ours at all: the key
 * and the value, kind by kind (convert.c). A socket storage map holds
 * nothing userspace can read, so there is nothing to move.
 */
static int movable(const struct bpf_map *m, const struct btf *ours, const struct btf *theirs,
		   const struct bpf_map_info *info, const char *path)
{
	char why[256];
	int err;

	if (info->type == BPF_MAP_TYPE_SK_STORAGE)
		return 0;
	err = ks_btf_convertible(theirs, info->btf_key_type_id, ours, bpf_map__btf_key_type_id(m),
				 why, sizeof(why));
	if (!err)
		err = ks_btf_convertible(theirs, info->btf_value_type_id, ours,
					 bpf_map__btf_value_type_id(m), why, sizeof(why));
	if (err)
		pr_error("pinned map's entries cannot be moved to this build's layout: " ABI_HINT,
			"map=%s value=%s why=\"%s\"", path,
			type_name(ours, bpf_map__btf_value_type_id(m)), why);
	return err;
}

int dp_abi_judge(const struct bpf_map *m, const struct btf *ours)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	const char *path = bpf_map__pin_path(m);
	struct btf *theirs = NULL;
	uint64_t want, got;
	int fd, err = 0;

	if (access(path, F_OK))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		pr_error("cannot open pinned map to check its ABI", "path=%s err=%d", path, err);
		return err;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		pr_error("cannot read pinned map info to check its ABI", "path=%s err=%d", path, err);
		goto out;
	}
	want = map_abi(ours, bpf_map__btf_key_type_id(m), bpf_map__btf_value_type_id(m));
	if (info.type != bpf_map__type(m) && !kinds_movable(info.type, bpf_map__type(m))) {
		pr_error("pinned map is of another map type than this build's: " ABI_HINT,
			"map=%s pinned_type=%u agent_type=%u", path, info.type, bpf_map__type(m));
		err = -EPROTO;
		goto out;
	}
	if (!info.btf_id || !info.btf_value_type_id) {
		pr_error("pinned datapath has no ABI identity (map without BTF types), this agent has one: " ABI_HINT,
			"map=%s pinned_abi=none agent_abi=%016llx", path, (unsigned long long)want);
		err = -EPROTO;
		goto out;
	}
	theirs = btf__load_from_kernel_by_id(info.btf_id);
	if (!theirs) {
		err = -errno;
		pr_error("cannot read the BTF of a pinned map to check its ABI", "map=%s btf_id=%u err=%d",
			 path, info.btf_id, err);
		goto out;
	}
	got = map_abi(theirs, info.btf_key_type_id, info.btf_value_type_id);
	/* libbpf reuses a pin only when all of these agree; anything else is a new map. */
	if (got == want && info.type == bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
	    info.value_size == bpf_map__value_size(m) &&
	    info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m))
		goto out;
	err = movable(m, ours, theirs, &info, path);
	if (err)
		goto out;
	pr_info(got != want ? "pinned map has another layout than this build's: it will be upgraded beside the running one"
		: info.type != bpf_map__type(m) ? "pinned map is of another map type than this build's: it will be upgraded beside the running one"
			    : "pinned map has another capacity or flags than this agent's: it will be upgraded beside the running one",
		"map=%s pinned_type=%u agent_type=%u pinned_abi=%016llx agent_abi=%016llx pinned_value_size=%u agent_value_size=%u pinned_max_entries=%u agent_max_entries=%u",
		path, info.type, bpf_map__type(m), (unsigned long long)got, (unsigned long long)want,
		info.value_size, bpf_map__value_size(m), info.max_entries, bpf_map__max_entries(m));
	err = 1;
out:
	btf__free(theirs);
	close(fd);
	return err;
}
