// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel feature table (datapath/features.c) without a kernel: a probe
 * result in, the verdict, its message and `ksplit probe`'s JSON and text
 * out, for the kernels EKS nodes run (5.10, 6.1, 6.12) and a few broken ones.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "datapath/features.h"

/* Every feature whose "since" is <= major.minor present, the others missing. */
static void kernel(struct ks_features *f, int major, int minor)
{
	int i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < KS_FEAT_N; i++) {
		const char *s = ks_feat_info(i)->since;
		char *end;
		long ma = strtol(s, &end, 10), mi = strtol(end + 1, NULL, 10);

		f->state[i] = ma < major || (ma == major && mi <= minor) ? KS_FEAT_PRESENT : KS_FEAT_MISSING;
	}
}

static void test_table(void **state)
{
	(void)state;
	assert_string_equal(ks_feat_info(KS_FEAT_BPF_LOOP)->since, "5.17");
	assert_string_equal(ks_feat_info(KS_FEAT_SET_RETVAL)->since, "5.18");
	assert_string_equal(ks_feat_info(KS_FEAT_ATOMIC_FETCH)->since, "5.12");
	assert_string_equal(ks_feat_info(KS_FEAT_TCX)->since, "6.6");
	assert_string_equal(ks_feat_info(KS_FEAT_SOCK_DESTROY)->since, "6.5");
	assert_int_equal(ks_feat_info(KS_FEAT_SET_RETVAL)->use, KS_USE_FALLBACK);
	assert_int_equal(ks_feat_info(KS_FEAT_TCX)->use, KS_USE_FALLBACK);
	assert_int_equal(ks_feat_info(KS_FEAT_BPF_LOOP)->use, KS_USE_REQUIRED);
	assert_null(ks_feat_info(KS_FEAT_N));
}

static void test_new_kernels_ok(void **state)
{
	struct ks_features f;
	char msg[512];

	(void)state;
	kernel(&f, 6, 18);
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	kernel(&f, 6, 1);	/* AL2023: no tcx (clsact instead), no bpf_sock_destroy (unused) */
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), 0);
	kernel(&f, 5, 18);
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), 0);
}

/* 5.17: only the fallback is missing, and that is not a refusal. */
static void test_fallback_only(void **state)
{
	struct ks_features f;
	char msg[512];

	(void)state;
	kernel(&f, 5, 17);
	assert_int_equal(f.state[KS_FEAT_SET_RETVAL], KS_FEAT_MISSING);
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), 0);
}

/* AL2's 5.10: both missing required features named, and the version to run. */
static void test_5_10_refused(void **state)
{
	struct ks_features f;
	char msg[512];

	(void)state;
	kernel(&f, 5, 10);
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "this kernel lacks BPF atomics with fetch (Linux 5.12), bpf_loop (Linux 5.17); "
				 "ksplit needs Linux 5.17 or later (`ksplit probe` lists each feature)");
}

/* "5.8" < "5.17" < "6.1": the needed version is compared as numbers, not text. */
static void test_version_order(void **state)
{
	struct ks_features f;
	char msg[512];

	(void)state;
	kernel(&f, 6, 18);
	f.state[KS_FEAT_SOCK_ADDR] = KS_FEAT_MISSING;	/* 5.8 */
	f.state[KS_FEAT_BPF_LOOP] = KS_FEAT_MISSING;	/* 5.17 */
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "this kernel lacks cgroup sock_addr hooks (Linux 5.8), bpf_loop (Linux 5.17); "
				 "ksplit needs Linux 5.17 or later (`ksplit probe` lists each feature)");
	kernel(&f, 6, 18);
	f.state[KS_FEAT_BTF] = KS_FEAT_MISSING;
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "this kernel lacks kernel BTF (Linux 5.4); "
				 "ksplit needs Linux 5.4 or later (`ksplit probe` lists each feature)");
}

/* A required probe that could not tell (no privilege) is not a pass. */
static void test_unknown(void **state)
{
	struct ks_features f;
	char msg[512];

	(void)state;
	kernel(&f, 6, 18);
	f.state[KS_FEAT_TCX] = KS_FEAT_UNKNOWN;	/* has a fallback: no effect */
	f.err[KS_FEAT_TCX] = -EPERM;
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), 0);
	f.state[KS_FEAT_ATOMIC_FETCH] = KS_FEAT_UNKNOWN;
	f.err[KS_FEAT_ATOMIC_FETCH] = -EPERM;
	assert_int_equal(ks_features_verdict(&f, msg, sizeof(msg)), -EPERM);
	assert_string_equal(msg, "cannot probe the kernel for BPF atomics with fetch: Operation not permitted "
				 "(ksplit probe needs root or CAP_BPF)");
}

/* The JSON and the text of `ksplit probe` for 5.10 (the text is made from the JSON). */
static void test_json_and_text(void **state)
{
	struct json_object *o, *a, *e, *p;
	struct ks_features f;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	(void)state;
	kernel(&f, 5, 10);
	f.state[KS_FEAT_TCX] = KS_FEAT_UNKNOWN;
	f.err[KS_FEAT_TCX] = -EPERM;
	o = ks_features_json(&f, "5.10.0-30-cloud-amd64");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "kernel")), "5.10.0-30-cloud-amd64");
	assert_false(json_object_get_boolean(json_object_object_get(o, "ok")));
	assert_non_null(strstr(json_object_get_string(json_object_object_get(o, "verdict")),
			       "ksplit needs Linux 5.17 or later"));
	a = json_object_object_get(o, "features");
	assert_int_equal(json_object_array_length(a), KS_FEAT_N);
	e = json_object_array_get_idx(a, KS_FEAT_SET_RETVAL);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "name")), "bpf_set_retval");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "use")), "fallback");
	assert_true(json_object_object_get_ex(e, "present", &p));
	assert_false(json_object_get_boolean(p));
	e = json_object_array_get_idx(a, KS_FEAT_TCX);
	assert_true(json_object_object_get_ex(e, "present", &p));
	assert_null(p);	/* JSON null: not known */
	assert_string_equal(json_object_get_string(json_object_object_get(e, "probe_error")),
			    "Operation not permitted");

	m = open_memstream(&buf, &len);
	assert_non_null(m);
	ks_features_text(m, o);
	fclose(m);
	assert_string_equal(buf,
		"kernel 5.10.0-30-cloud-amd64\n"
		"  yes  kernel BTF                         5.4   required\n"
		"  yes  cgroup sock_addr hooks             5.8   required\n"
		"  yes  sk_storage in sock_addr programs   5.10  required\n"
		"  no   BPF atomics with fetch             5.12  required\n"
		"  no   bpf_loop                           5.17  required\n"
		"  no   bpf_set_retval                     5.18  fallback  connect() to a refused share fails with EPERM instead\n"
		"  no   bpf_sock_destroy                   6.5   unused    not needed: drain destroys sockets with sock_diag SOCK_DESTROY from the agent (CONFIG_INET_DIAG_DESTROY)\n"
		"  ?    tcx links                          6.6   fallback  cannot probe: Operation not permitted\n");
	free(buf);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_new_kernels_ok),
		cmocka_unit_test(test_fallback_only),
		cmocka_unit_test(test_5_10_refused),
		cmocka_unit_test(test_version_order),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_json_and_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
