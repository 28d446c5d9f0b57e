// SPDX-License-Identifier: BSD-2-Clause
/*
 * What is really attached: the state of each hook's pinned link, the cgroup
 * it is on, and the other programs that run on the same hooks. The agent's
 * self-check (selfcheck.c) and `ksplit status` both read it from here, so
 * they cannot disagree about what "attached" means.
 */
#define _GNU_SOURCE	/* open_by_handle_at */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "datapath/counters.h"
#include "datapath/dp_int.h"
#include "common/sys.h"

/* exportfs' FILEID_KERNFS: a cgroup2 file handle is its 64-bit cgroup id. */
#define KS_FILEID_KERNFS 0xfe

const char *dp_link_state_name(enum dp_link_state s)
{
	switch (s) {
	case DP_LINK_ATTACHED: return "attached";
	case DP_LINK_ELSEWHERE: return "elsewhere";
	case DP_LINK_DETACHED: return "detached";
	case DP_LINK_MISSING: break;
	}
	return "missing";
}

int dp_link_view_fd(int fd, uint64_t cg_id, struct dp_link_view *v)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	memset(v, 0, sizeof(*v));
	v->state = DP_LINK_MISSING;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_CGROUP)
		return 0;
	v->link_id = info.id;
	v->prog_id = info.prog_id;
	/* A detached cgroup link (BPF_LINK_DETACH, or its cgroup went away) reports cgroup id 0. */
	v->cg_id = info.cgroup.cgroup_id;
	if (!v->cg_id)
		v->state = DP_LINK_DETACHED;
	else if (cg_id && v->cg_id != cg_id)
		v->state = DP_LINK_ELSEWHERE;
	else
		v->state = DP_LINK_ATTACHED;
	return 0;
}

void dp_link_view_pin(const char *path, uint64_t cg_id, struct dp_link_view *v)
{
	int fd = bpf_obj_get(path);

	memset(v, 0, sizeof(*v));
	v->state = DP_LINK_MISSING;
	if (fd < 0)
		return;
	dp_link_view_fd(fd, cg_id, v);
	close(fd);
}

int dp_foreign_progs(int cg_fd, enum bpf_attach_type type, uint32_t ours,
		     struct dp_foreign *out, size_t max)
{
	__u32 ids[64], cnt = sizeof(ids) / sizeof(ids[0]), i;
	size_t n = 0, j;
	int ours_at = -1;

	/* ENOSPC: more than fit; the first ones are still filled in. */
	if (bpf_prog_query(cg_fd, type, BPF_F_QUERY_EFFECTIVE, NULL, ids, &cnt) &&
	    errno != ENOSPC)
		return -errno;
	if (cnt > sizeof(ids) / sizeof(ids[0]))
		cnt = sizeof(ids) / sizeof(ids[0]);
	for (i = 0; i < cnt; i++)
		if (ids[i] == ours)
			ours_at = (int)i;
	for (i = 0; i < cnt && n < max; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd;

		if (ids[i] == ours)
			continue;
		out[n].id = ids[i];
		out[n].order = ours_at < 0 ? 0 : (int)i < ours_at ? -1 : 1;
		snprintf(out[n].name, sizeof(out[n].name), "?");
		fd = bpf_prog_get_fd_by_id(ids[i]);
		if (fd >= 0) {
			if (!bpf_obj_get_info_by_fd(fd, &info, &len))
				snprintf(out[n].name, sizeof(out[n].name), "%s", info.name);
			close(fd);
		}
		n++;
	}
	for (j = n; j < max; j++)
		memset(&out[j], 0, sizeof(out[j]));
	return (int)n;
}

const char *dp_foreign_order(const struct dp_foreign *f)
{
	return f->order < 0 ? "before" : f->order > 0 ? "after" : "without";
}

/*
 * Open the cgroup with id id and find its path, without walking the
 * hierarchy: a cgroup2 file handle is its id. -ESTALE when it is gone.
 */
static int cgroup_by_id(uint64_t id, char *path, size_t len)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = KS_FILEID_KERNFS } };
	char root[PATH_MAX], proc[64];
	int mfd, fd, err;
	ssize_t n;

	err = ks_cgroup2_root(root, sizeof(root));
	if (err)
		return err;
	mfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = fd < 0 ? -errno : 0;
	close(mfd);
	if (err)
		return err;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, path, len - 1);
	path[n > 0 ? n : 0] = '\0';
	return fd;
}

static struct json_object *foreign_json(const struct dp_foreign *f, int n)
{
	struct json_object *a = json_object_new_array();
	int i;

	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "id", json_object_new_int64(f[i].id));
		json_object_object_add(o, "name", json_object_new_string(f[i].name));
		json_object_object_add(o, "runs", json_object_new_string(dp_foreign_order(&f[i])));
		json_object_array_add(a, o);
	}
	return a;
}

/* The TC path's counters by their abi.h names; null when the pin cannot be read. */
static struct json_object *tc_json(const char *pin_dir)
{
	struct ks_tc_counter k[KS_TC_N_COUNTERS];
	struct json_object *o;
	struct ks_tc_stats t;
	size_t i;

	if (ks_counters_read_tc(pin_dir, &t))
		return NULL;
	ks_tc_counters(&t, k);
	o = json_object_new_object();
	for (i = 0; i < KS_TC_N_COUNTERS; i++)
		json_object_object_add(o, k[i].name, json_object_new_int64((int64_t)k[i].value));
	return o;
}

static void tc_text(FILE *f, struct json_object *o)
{
	const char *sep = "";

	if (!o)
		return;
	fputs("  TC packets:", f);
	json_object_object_foreach(o, name, v) {
		fprintf(f, "%s %s %lld", sep, name, (long long)json_object_get_int64(v));
		sep = ",";
	}
	fputc('\n', f);
}

int ks_dp_status(const char *pin_dir, struct json_object **out, bool *ok)
{
	struct dp_link_view v[KS_DP_MAX_HOOKS];
	struct json_object *root, *hooks;
	char path[PATH_MAX], cg[PATH_MAX] = "";
	uint64_t cg_id = 0;
	size_t i, n_ok = 0, n_missing;
	int cg_fd = -1, n_tc;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	/* The datapath's cgroup is the one its first attached link is on. */
	for (i = 0; i < dp_n_hooks(); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, dp_hook(i)->pin);
		dp_link_view_pin(path, 0, &v[i]);
		if (!cg_id && v[i].state == DP_LINK_ATTACHED)
			cg_id = v[i].cg_id;
	}
	if (cg_id)
		cg_fd = cgroup_by_id(cg_id, cg, sizeof(cg));
	root = json_object_new_object();
	hooks = json_object_new_array();
	for (i = 0; i < dp_n_hooks(); i++) {
		const struct ks_hook *h = dp_hook(i);
		struct json_object *o = json_object_new_object();
		struct dp_foreign f[DP_MAX_FOREIGN];
		int nf = 0;

		if (v[i].state == DP_LINK_ATTACHED && v[i].cg_id != cg_id)
			v[i].state = DP_LINK_ELSEWHERE;
		n_ok += v[i].state == DP_LINK_ATTACHED;
		if (cg_fd >= 0 && v[i].state == DP_LINK_ATTACHED)
			nf = dp_foreign_progs(cg_fd, h->type, v[i].prog_id, f, DP_MAX_FOREIGN);
		json_object_object_add(o, "hook", json_object_new_string(dp_hook_name(h)));
		json_object_object_add(o, "state", json_object_new_string(dp_link_state_name(v[i].state)));
		json_object_object_add(o, "link_id", json_object_new_int64(v[i].link_id));
		json_object_object_add(o, "prog_id", json_object_new_int64(v[i].prog_id));
		json_object_object_add(o, "cgroup_id", json_object_new_int64((int64_t)v[i].cg_id));
		json_object_object_add(o, "foreign", foreign_json(f, nf > 0 ? nf : 0));
		json_object_array_add(hooks, o);
	}
	if (cg_fd >= 0)
		close(cg_fd);
	n_tc = dp_tc_links_attached(pin_dir);
	/* --cgroup none: no cgroup link was ever pinned; the TC links are the datapath. */
	for (i = 0, n_missing = 0; i < dp_n_hooks(); i++)
		n_missing += v[i].state == DP_LINK_MISSING;
	*ok = n_ok == dp_n_hooks() || (n_missing == dp_n_hooks() && n_tc > 0);
	json_object_object_add(root, "ok", json_object_new_boolean(*ok));
	json_object_object_add(root, "tc_links", json_object_new_int(n_tc));
	json_object_object_add(root, "tc_packets", tc_json(pin_dir));
	json_object_object_add(root, "cgroup", cg[0] ? json_object_new_string(cg) : NULL);
	json_object_object_add(root, "cgroup_id", json_object_new_int64((int64_t)cg_id));
	json_object_object_add(root, "hooks", hooks);
	*out = root;
	return 0;
}

/* Every key below is always present (ks_dp_status writes them); only "cgroup" may be null. */
#define JS(o, k) json_object_get_string(json_object_object_get(o, k))
#define JI(o, k) ((long long)json_object_get_int64(json_object_object_get(o, k)))

void ks_dp_status_text(FILE *f, struct json_object *dps)
{
	struct json_object *hooks = json_object_object_get(dps, "hooks");
	size_t i, j, n = json_object_array_length(hooks), n_ok = 0;
	const char *cg = JS(dps, "cgroup");

	for (i = 0; i < n; i++)
		n_ok += !strcmp(JS(json_object_array_get_idx(hooks, i), "state"), "attached");
	fprintf(f, "datapath: %s, %zu/%zu hooks attached to cgroup %s (id %lld)\n",
		json_object_get_boolean(json_object_object_get(dps, "ok")) ? "ok" : "BROKEN",
		n_ok, n, cg ? cg : "?", JI(dps, "cgroup_id"));
	fprintf(f, "  TC links attached (tcx, --tc-iface): %lld\n", JI(dps, "tc_links"));
	tc_text(f, json_object_object_get(dps, "tc_packets"));
	fprintf(f, "  %-14s %-10s %8s %8s %10s\n", "HOOK", "STATE", "LINK", "PROG", "CGROUP_ID");
	for (i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(hooks, i);

		fprintf(f, "  %-14s %-10s %8lld %8lld %10lld\n", JS(h, "hook"), JS(h, "state"),
			JI(h, "link_id"), JI(h, "prog_id"), JI(h, "cgroup_id"));
	}
	for (i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(hooks, i);
		struct json_object *fo = json_object_object_get(h, "foreign");

		for (j = 0; j < json_object_array_length(fo); j++) {
			struct json_object *p = json_object_array_get_idx(fo, j);
			const char *runs = JS(p, "runs");

			fprintf(f, "  foreign program on %s: id %lld \"%s\" runs %s%s\n", JS(h, "hook"),
				JI(p, "id"), JS(p, "name"), runs,
				strcmp(runs, "without") ? " ksplit" : " ksplit's program (it is not effective)");
		}
	}
}
