// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks_features_probe: each row of the feature table (features.c) asked of
 * the running kernel, with a program or map the size of a few instructions
 * that is loaded and closed at once; nothing is attached. libbpf's own
 * probes where it has one, a hand-made program where it has not.
 */
#include <errno.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath/features.h"

/* libbpf_probe_*: 1 yes, 0 no, <0 could not tell. */
static void set_state(struct ks_features *f, enum ks_feat id, int rc)
{
	f->state[id] = rc > 0 ? KS_FEAT_PRESENT : rc == 0 ? KS_FEAT_MISSING : KS_FEAT_UNKNOWN;
	f->err[id] = rc < 0 ? rc : 0;
}

/*
 * libbpf 1.1 calls a helper present when its probe program fails without
 * "unknown func" in the log, as it does when loading is not allowed at all:
 * so a helper is asked only once a plain load (sock_addr's) went through.
 */
static int helper(int can_load, enum bpf_prog_type type, enum bpf_func_id id)
{
	return can_load < 0 ? can_load : libbpf_probe_bpf_helper(type, id, NULL);
}

/* Load insns; 1 when the kernel takes them, 0 when it refuses them as such. */
static int try_load(enum bpf_prog_type type, enum bpf_attach_type attach, const struct bpf_insn *insns,
		    size_t n)
{
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach);
	int fd = bpf_prog_load(type, NULL, "GPL", insns, n, &o);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	/* EPERM: not allowed to ask. EINVAL/EACCES: the kernel said no. */
	return errno == EPERM ? -EPERM : 0;
}

/* getpeername4 is the newest sock_addr attach type ksplit uses (5.8). */
static int probe_sock_addr(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return try_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME, insns, 2);
}

/* *(u64 *)(r10 - 8) = 0; r1 = 1; r1 = atomic_fetch_add(r10 - 8, r1): what -mcpu=v3 emits. */
static int probe_atomic_fetch(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = 1 },
		{ .code = BPF_STX | BPF_ATOMIC | BPF_DW, .dst_reg = BPF_REG_10, .src_reg = BPF_REG_1,
		  .off = -8, .imm = BPF_ADD | BPF_FETCH },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return try_load(BPF_PROG_TYPE_SOCKET_FILTER, 0, insns, 5);
}

/*
 * tcx (6.6): linking a tc program as BPF_TCX_INGRESS (46; Debian 12's uapi
 * headers are 6.1's) to ifindex 0 fails with ENODEV where the kernel knows
 * the attach type, EINVAL where it does not. Nothing is attached either way.
 */
static int probe_tcx(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o);
	int fd, link, rc;

	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, NULL, "GPL", insns, 2, &o);
	if (fd < 0)
		return -errno;
	link = bpf_link_create(fd, 0, (enum bpf_attach_type)46, NULL);
	rc = link >= 0 || errno == ENODEV;
	if (link >= 0)
		close(link);
	close(fd);
	return rc;
}

/* A kfunc is a FUNC in the kernel's BTF. */
static int probe_kfunc(const char *name)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int rc;

	if (!vmlinux)
		return -errno;
	rc = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);
	return rc;
}

void ks_features_probe(struct ks_features *f)
{
	int sa = probe_sock_addr(), rc;

	set_state(f, KS_FEAT_BTF, !access("/sys/kernel/btf/vmlinux", R_OK));
	set_state(f, KS_FEAT_SOCK_ADDR, sa);
	rc = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL);
	if (rc > 0)
		rc = helper(sa, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get);
	set_state(f, KS_FEAT_SK_STORAGE, rc);
	set_state(f, KS_FEAT_ATOMIC_FETCH, probe_atomic_fetch());
	set_state(f, KS_FEAT_BPF_LOOP, helper(sa, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_loop));
	set_state(f, KS_FEAT_SET_RETVAL, helper(sa, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval));
	set_state(f, KS_FEAT_SOCK_DESTROY,
		  f->state[KS_FEAT_BTF] == KS_FEAT_PRESENT ? probe_kfunc("bpf_sock_destroy") : 0);
	set_state(f, KS_FEAT_TCX, probe_tcx());
}
