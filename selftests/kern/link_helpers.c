// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "link_helpers.h"

uint32_t kt_link_id(const char *pin_dir, const char *hook)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/link_%s", pin_dir, hook);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

int kt_cgroup_progs(const char *cgroup, enum bpf_attach_type type)
{
	int fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	__u32 cnt = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_prog_query(fd, type, BPF_F_QUERY_EFFECTIVE, NULL, NULL, &cnt))
		err = -errno;
	close(fd);
	return err ? err : (int)cnt;
}

int kt_foreign_attach(const char *cgroup, enum bpf_attach_type type, const char *name)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = type);
	enum bpf_prog_type pt = type == BPF_CGROUP_SOCK_OPS ? BPF_PROG_TYPE_SOCK_OPS
							    : BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
	int prog, cg, link;

	prog = bpf_prog_load(pt, name, "GPL", insns, 2, &po);
	if (prog < 0)
		return -errno;
	cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		link = -errno;
	} else {
		link = bpf_link_create(prog, cg, type, NULL);
		if (link < 0)
			link = -errno;
		close(cg);
	}
	/* The link holds the program. */
	close(prog);
	return link;
}
