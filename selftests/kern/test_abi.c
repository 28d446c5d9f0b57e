// SPDX-License-Identifier: BSD-2-Clause
/*
 * Pins from another build: the agent must never adopt them as they are and
 * never leave it to libbpf's "size" message. A pin whose entries can be
 * moved to this build's layout is upgraded (another value size, two fields
 * swapped: the layout change that was once adopted silently); one that
 * cannot (no BTF at all, a member whose kind changed) is refused at error
 * level, naming why. `ksplit status` must check the sizes before it reads
 * a value into its structs. The pins are made by hand with bpf_map_create;
 * the control, the same layout built independently, must be adopted.
 * test_upgrade does the same between two real builds, under traffic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "link_helpers.h"

#define REFUSED_BY_LIBBPF	"another size"	/* load.c's fallback for a libbpf refusal */

/* The pin dir the agent will be given, made here so the hand-made pin can go first. */
static void pin_dir_make(struct kt_agent *t)
{
	t->env.pins_made = true;	/* teardown removes the pins and the dir */
	assert_int_equal(mkdir(t->env.pin_dir, 0700), 0);
}

/*
 * ks_services as the real object declares it (HASH, no prealloc, default
 * capacity), with the given value size and, when btf_fd >= 0, those types.
 */
static void pin_services(struct kt_agent *t, uint32_t value_size, int btf_fd, uint32_t key_id,
			 uint32_t value_id)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	char path[PATH_MAX];
	int fd;

	if (btf_fd >= 0) {
		o.btf_fd = btf_fd;
		o.btf_key_type_id = key_id;
		o.btf_value_type_id = value_id;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ks_services", sizeof(struct ks_svc_key), value_size,
			    KS_MAX_SERVICES, &o);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/ks_services", t->env.pin_dir);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
}

enum layout {
	SAME,		/* this build's */
	SWAPPED,	/* svc_id and rev trade places: same size, other layout */
	GROWN,		/* a u64 member more at the end: 288 bytes */
	CLASHING,	/* total_weight is a struct: nothing can move it into an int */
};

/*
 * The BTF of ks_svc_key and ks_svc written out by hand, without the __u*
 * typedefs: the layout is what counts, not how the source spells it.
 */
static struct btf *abi_btf(enum layout l, uint32_t *key_id, uint32_t *value_id)
{
	struct btf *b = btf__new_empty();
	bool swap = l == SWAPPED;
	int u32, u16, u8, a4, key, grp, ga, val, u64, wrap;

	assert_non_null(b);
	u32 = btf__add_int(b, "unsigned int", 4, 0);
	u16 = btf__add_int(b, "unsigned short", 2, 0);
	u8 = btf__add_int(b, "unsigned char", 1, 0);
	a4 = btf__add_array(b, u32, u32, 4);
	key = btf__add_struct(b, "ks_svc_key", sizeof(struct ks_svc_key));
	assert_true(u32 > 0 && u16 > 0 && u8 > 0 && a4 > 0 && key > 0);
	assert_int_equal(btf__add_field(b, "addr", a4, 0, 0), 0);
	assert_int_equal(btf__add_field(b, "port", u16, 128, 0), 0);
	assert_int_equal(btf__add_field(b, "proto", u8, 144, 0), 0);
	assert_int_equal(btf__add_field(b, "family", u8, 152, 0), 0);
	grp = btf__add_struct(b, "ks_group", sizeof(struct ks_group));
	assert_true(grp > 0);
	assert_int_equal(btf__add_field(b, "weight_end", u32, 0, 0), 0);
	assert_int_equal(btf__add_field(b, "be_base", u32, 32, 0), 0);
	assert_int_equal(btf__add_field(b, "be_count", u32, 64, 0), 0);
	assert_int_equal(btf__add_field(b, "be_total", u32, 96, 0), 0);
	ga = btf__add_array(b, u32, grp, KS_MAX_GROUPS);
	u64 = btf__add_int(b, "unsigned long long", 8, 0);
	wrap = btf__add_struct(b, "weight_box", 4);
	assert_true(u64 > 0 && wrap > 0);
	assert_int_equal(btf__add_field(b, "w", u32, 0, 0), 0);
	val = btf__add_struct(b, "ks_svc", sizeof(struct ks_svc) + (l == GROWN ? 8 : 0));
	assert_true(ga > 0 && val > 0);
	assert_int_equal(btf__add_field(b, swap ? "rev" : "svc_id", u32, 0, 0), 0);
	assert_int_equal(btf__add_field(b, swap ? "svc_id" : "rev", u32, 32, 0), 0);
	assert_int_equal(btf__add_field(b, "n_groups", u16, 64, 0), 0);
	assert_int_equal(btf__add_field(b, "flags", u16, 80, 0), 0);
	assert_int_equal(btf__add_field(b, "total_weight", l == CLASHING ? wrap : u32, 96, 0), 0);
	assert_int_equal(btf__add_field(b, "passive_failures", u16, 128, 0), 0);
	assert_int_equal(btf__add_field(b, "_pad", u16, 144, 0), 0);
	assert_int_equal(btf__add_field(b, "_pad2", u32, 160, 0), 0);
	assert_int_equal(btf__add_field(b, "groups", ga, 192, 0), 0);
	if (l == GROWN)
		assert_int_equal(btf__add_field(b, "extra", u64, sizeof(struct ks_svc) * 8, 0), 0);
	assert_int_equal(btf__load_into_kernel(b), 0);
	*key_id = key;
	*value_id = val;
	return b;
}

/* `ksplit run` on the pin dir, to its exit (bounded): 1, at error level, with both needles. */
static void expect_agent_refused(struct kt_agent *t, const char *what, const char *needle,
				 const char *needle2)
{
	char cmd[PATH_MAX * 4], path[PATH_MAX], *out;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "timeout 60 %s run " KT_LOOPBACK " --config %s --cgroup %s --pin-dir %s 2>&1",
		 t->ksplit, t->cfg, t->env.cgroup, t->env.pin_dir);
	out = kt_sh_out(cmd, &rc);
	printf("  [refused] %s: exit %d\n%s", what, rc, out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "level=error msg=\"pinned "));
	assert_non_null(strstr(out, needle));
	assert_non_null(strstr(out, needle2));
	assert_null(strstr(out, REFUSED_BY_LIBBPF));
	assert_null(strstr(out, "adopted pinned datapath"));
	free(out);
	/* Nothing attached, and the foreign pin left as it was for the operator to decide. */
	assert_int_equal(kt_cgroup_progs(t->env.cgroup, BPF_CGROUP_INET4_CONNECT), 0);
	snprintf(path, sizeof(path), "%s/ks_services", t->env.pin_dir);
	assert_int_equal(access(path, F_OK), 0);
}

/* `ksplit status [--json]` on the pin dir: exit 1 with the size message, no crash. */
static void expect_status_refused(struct kt_agent *t, bool json)
{
	char args[PATH_MAX], *out;
	struct json_object *o, *e;
	int rc;

	snprintf(args, sizeof(args), "status%s --pin-dir %s", json ? " --json" : "",
		 t->env.pin_dir);
	out = kt_ksplit_run(t, args, &rc);
	printf("  [status%s] exit %d\n%s", json ? " --json" : "", rc, out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "another key or value size than this ksplit binary"));
	free(out);
	if (!json)
		return;
	/* stdout alone is one JSON object carrying the error. */
	out = kt_ksplit_out(t, args, &rc);
	assert_int_equal(rc, 1);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_non_null(strstr(json_object_get_string(e), "another key or value size"));
	json_object_put(o);
	free(out);
}

/* The agent takes the pins over by an upgrade; the hand-made ks_services goes, ours replaces it. */
static void expect_upgraded(struct kt_agent *t, const char *why)
{
	int errors = kt_count_in_file(t->log, "level=error");	/* the refused status' */

	kt_agent_start(t, NULL, NULL, 0);
	assert_true(kt_wait_in_file(t->log, "msg=\"adopted pinned datapath, upgraded to this build\"", 1,
				    20000) >= 1);
	assert_int_equal(kt_count_in_file(t->log, why), 1);
	assert_int_equal(kt_count_in_file(t->log, "upgraded_maps=1"), 1);
	assert_int_equal(kt_count_in_file(t->log, "level=error"), errors);
	kt_agent_stop(t);
}

static void test_other_value_size(void **state)
{
	struct kt_agent *t = *state;
	uint32_t kid, vid;
	struct btf *b = abi_btf(GROWN, &kid, &vid);

	pin_dir_make(t);
	/* 288 bytes: the status reader once took them into a 280-byte struct on its stack. */
	pin_services(t, sizeof(struct ks_svc) + 8, btf__fd(b), kid, vid);
	btf__free(b);
	expect_status_refused(t, false);
	expect_status_refused(t, true);
	/* A member more is moved away by the upgrade: nothing to refuse. */
	expect_upgraded(t, "pinned_value_size=288 agent_value_size=280");
}

static void test_no_btf(void **state)
{
	struct kt_agent *t = *state;

	pin_dir_make(t);
	pin_services(t, sizeof(struct ks_svc), -1, 0, 0);
	expect_agent_refused(t, "ks_services without BTF", "has no ABI identity",
			     "pinned_abi=none agent_abi=");
}

/* The layout change that was once adopted silently is now upgraded, never adopted as it is. */
static void test_fields_reordered(void **state)
{
	struct kt_agent *t = *state;
	uint32_t kid, vid;
	struct btf *b = abi_btf(SWAPPED, &kid, &vid);

	pin_dir_make(t);
	pin_services(t, sizeof(struct ks_svc), btf__fd(b), kid, vid);
	btf__free(b);
	expect_upgraded(t, "msg=\"pinned map has another layout than this build's");
	assert_int_equal(kt_count_in_file(t->log, "msg=\"adopted pinned datapath\""), 0);
}

/* A member whose kind changed cannot be moved: refused, naming it, the pin left alone. */
static void test_not_movable(void **state)
{
	struct kt_agent *t = *state;
	uint32_t kid, vid;
	struct btf *b = abi_btf(CLASHING, &kid, &vid);

	pin_dir_make(t);
	pin_services(t, sizeof(struct ks_svc), btf__fd(b), kid, vid);
	btf__free(b);
	expect_agent_refused(t, "ks_services with total_weight a struct",
			     "entries cannot be moved to this build's layout",
			     "why=\"total_weight: struct becomes int\"");
}

/* The control: the same layout from another BTF (no typedefs) is the same ABI. */
static void test_same_layout_adopted(void **state)
{
	struct kt_agent *t = *state;
	uint32_t kid, vid;
	struct btf *b = abi_btf(SAME, &kid, &vid);

	pin_dir_make(t);
	pin_services(t, sizeof(struct ks_svc), btf__fd(b), kid, vid);
	btf__free(b);
	kt_agent_start(t, NULL, NULL, 0);
	assert_true(kt_wait_in_file(t->log, "msg=\"adopted pinned datapath\"", 1, 20000) >= 1);
	kt_agent_stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_other_value_size, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_no_btf, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_fields_reordered, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_not_movable, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_same_layout_adopted, kt_agent_setup,
						kt_agent_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
