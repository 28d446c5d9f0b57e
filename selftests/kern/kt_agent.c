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

#include "kt_agent.h"

int kt_agent_init(struct kt_agent *a, struct kt_env *e)
{
	char exe[PATH_MAX];
	ssize_t n;

	memset(a, 0, sizeof(*a));
	a->env = e;
	/* build/selftests/kern/test_X -> build/ksplit (also for build-san/). */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = 0;
	snprintf(a->ksplit, sizeof(a->ksplit), "%s/../../ksplit", dirname(exe));
	if (access(a->ksplit, X_OK)) {
		fprintf(stderr, "kern test: %s not found: run `make` first\n", a->ksplit);
		return -ENOENT;
	}
	snprintf(a->cfg, sizeof(a->cfg), "/tmp/%s-config", e->tag);
	snprintf(a->log, sizeof(a->log), "/tmp/%s-agent.log", e->tag);
	if (mkdir(a->cfg, 0700))
		return -errno;
	return 0;
}

int kt_agent_put(struct kt_agent *a, const char *name, const char *text)
{
	char tmp[PATH_MAX + 16], path[PATH_MAX * 2];
	FILE *f;

	/* Staging file on the same filesystem: the agent never reads half a file. */
	snprintf(tmp, sizeof(tmp), "%s-staging", a->cfg);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0 || fclose(f))
		return -EIO;
	snprintf(path, sizeof(path), "%s/%s", a->cfg, name);
	return rename(tmp, path) ? -errno : 0;
}

pid_t kt_agent_spawn(struct kt_agent *a, const char *const *wrap)
{
	const char *run[] = { a->ksplit, "run", "--config", a->cfg, "--cgroup", a->env->cgroup,
			      "--pin-dir", a->env->pin_dir, NULL };
	char *argv[32];
	size_t n = 0, i;

	for (i = 0; wrap && wrap[i] && n < 16; i++)
		argv[n++] = (char *)wrap[i];
	for (i = 0; run[i]; i++)
		argv[n++] = (char *)run[i];
	argv[n] = NULL;
	a->env->pins_made = true;
	a->pid = kt_spawn(a->env, argv, a->log);
	return a->pid;
}

int kt_agent_stop(struct kt_agent *a)
{
	int st = kt_stop(a->env, a->pid, SIGTERM, 10000);

	a->pid = 0;
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *kt_sh_out(const char *cmd, int *rc)
{
	char full[PATH_MAX * 4], line[4096];
	struct kt_buf b = {};
	FILE *p;
	int st;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	kt_buf_printf(&b, "%s", "");
	p = popen(full, "r");
	if (!p) {
		*rc = -1;
		return b.s;
	}
	while (fgets(line, sizeof(line), p))
		kt_buf_printf(&b, "%s", line);
	st = pclose(p);
	*rc = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return b.s;
}

char *kt_ksplit_run(struct kt_agent *a, const char *args, int *rc)
{
	char cmd[PATH_MAX * 3];

	snprintf(cmd, sizeof(cmd), "%s %s", a->ksplit, args);
	return kt_sh_out(cmd, rc);
}

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
