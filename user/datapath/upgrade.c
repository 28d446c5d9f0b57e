// SPDX-License-Identifier: BSD-2-Clause
/*
 * Upgrading pins made by another build without an outage (docs/design.md,
 * "Upgrades"). The running datapath is never touched until the new one is
 * complete:
 *
 *   1. every map whose pin has another layout, size or capacity is created
 *      by load in PIN/staging/ instead (plan); maps that match are reused;
 *   2. the entries of each old map are moved into the new one, converted
 *      member by member through the BTF both builds pinned (convert.c);
 *      a per-CPU map that became shared gets the sum over CPUs, a shared
 *      one that became per-CPU puts its value on the first CPU;
 *   3. PIN/staging is renamed PIN/staged: the commit point;
 *   4. each staged pin is renamed over the old one; old programs keep their
 *      own references, so the old maps serve until
 *   5. the pinned links take the new programs (dp_hooks_attach), hook by
 *      hook, and the last reference to each old map goes with them.
 *
 * A killed agent leaves either staging/ (not committed: thrown away, the
 * old datapath is whole) or staged/ (committed: the next agent finishes
 * step 4). bpffs renames atomically and refuses names with a dot, hence
 * plain names.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath/convert.h"
#include "datapath/dp_int.h"
#include "common/log.h"

#define STAGING		"staging"
#define STAGED		"staged"
#define BATCH		4096	/* entries per lookup/update batch */

static int sub_path(char *buf, size_t len, const char *pin_dir, const char *sub, const char *name)
{
	int n = name ? snprintf(buf, len, "%s/%s/%s", pin_dir, sub, name)
		     : snprintf(buf, len, "%s/%s", pin_dir, sub);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Call fn on every pin of PIN/sub (path: its full name), counting in *n
 * those it took care of; then remove the emptied dir. Stops at the first
 * error when stop_on_error (a move must not half-happen silently), else
 * goes on and returns the first error.
 */
static int each_pin(const char *pin_dir, const char *sub, bool stop_on_error,
		    int (*fn)(const char *pin_dir, const char *path, const char *name),
		    unsigned int *n)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 1];
	struct dirent *de;
	int err = 0, r;
	DIR *d;

	if (sub_path(dir, sizeof(dir), pin_dir, sub, NULL))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		r = fn(pin_dir, path, de->d_name);
		if (!r && n)
			(*n)++;
		if (r && !err)
			err = r;
		if (r && stop_on_error)
			break;
	}
	closedir(d);
	if (!err && rmdir(dir))
		err = -errno;
	return err;
}

static int unpin(const char *pin_dir, const char *path, const char *name)
{
	(void)pin_dir;
	(void)name;
	return unlink(path) ? -errno : 0;
}

/* Step 4 for one pin: over its namesake in PIN, in one rename. */
static int move_up(const char *pin_dir, const char *path, const char *name)
{
	char to[PATH_MAX + NAME_MAX + 1];
	int err;

	snprintf(to, sizeof(to), "%s/%s", pin_dir, name);
	if (!rename(path, to))
		return 0;
	err = -errno;
	pr_error("cannot move an upgraded map's pin over the old one", "from=%s to=%s err=%d", path,
		 to, err);
	return err;
}

static int clear_dir(const char *pin_dir, const char *sub, unsigned int *n)
{
	return each_pin(pin_dir, sub, false, unpin, n);
}

static int move_staged(const char *pin_dir, unsigned int *n)
{
	return each_pin(pin_dir, STAGED, true, move_up, n);
}

int dp_upgrade_recover(const char *pin_dir)
{
	unsigned int n = 0;
	int err;

	err = clear_dir(pin_dir, STAGING, &n);
	if (err) {
		pr_error("cannot remove a half-built upgrade", "pin_dir=%s/" STAGING " err=%d", pin_dir,
			 err);
		return err;
	}
	if (n)
		pr_warn("an agent was stopped while it built an upgrade; the running datapath was never touched, and its half-built maps are removed",
			"pin_dir=%s maps=%u", pin_dir, n);
	n = 0;
	err = move_staged(pin_dir, &n);
	if (err)
		pr_error("cannot finish an upgrade a stopped agent committed", "pin_dir=%s maps=%u err=%d",
			 pin_dir, n, err);
	else if (n)
		pr_warn("an agent was stopped after it committed an upgrade; its maps are now pinned in place",
			"pin_dir=%s maps=%u", pin_dir, n);
	return err;
}

void dp_upgrade_abandon(const char *pin_dir)
{
	clear_dir(pin_dir, STAGING, NULL);
}

void dp_upgrade_down(const char *pin_dir, unsigned int *removed)
{
	clear_dir(pin_dir, STAGING, removed);
	clear_dir(pin_dir, STAGED, removed);
}

int dp_upgrade_plan(struct ks_dp *dp)
{
	const struct btf *ours = bpf_object__btf(dp->skel->obj);
	char path[PATH_MAX];
	struct bpf_map *m;
	int err;

	if (!ours)
		return -ENODATA;	/* the Makefile always builds with BTF */
	bpf_object__for_each_map(m, dp->skel->obj) {
		/* Maps that are not pinned by name (.rodata, the sync maps) belong to no pin. */
		if (!bpf_map__pin_path(m))
			continue;
		err = dp_abi_judge(m, ours);
		if (err <= 0) {
			if (err)
				return err;
			continue;
		}
		if (dp->n_staged == KS_DP_MAX_MAPS)
			return -E2BIG;
		err = sub_path(path, sizeof(path), dp->pin_dir, STAGING, bpf_map__name(m));
		if (!err)
			err = bpf_map__set_pin_path(m, path);
		if (err)
			return err;
		dp->staged[dp->n_staged++] = m;
	}
	return 0;
}

/* One map being moved: the old pin and the map load made in its place. */
struct move {
	const char *name;
	int ofd, nfd;
	struct bpf_map_info oi;
	struct btf *obtf;
	const struct btf *nbtf;
	uint32_t ntype, nkey_id, nval_id, nkey_size, nval_size, nmax;
	size_t ostride, nstride;	/* bytes per entry's value, all CPUs */
	int ncpus;
	unsigned long moved;
};

static bool is_array(uint32_t type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* Entry i of a batch into slot j of the new batch; 1 when there is nothing to write. */
static int move_one(struct move *mv, const char *okey, const char *oval, char *nkey, char *nval)
{
	size_t ov = (mv->oi.value_size + 7) & ~7UL, nv = (mv->nval_size + 7) & ~7UL;
	int ocpus = dp_percpu(mv->oi.type) ? mv->ncpus : 1;
	bool sum = ocpus > 1 && !dp_percpu(mv->ntype);
	int c, err;
	char why[256];

	/* An array is born zeroed: an unused slot needs no write, and may lie beyond the new size. */
	if (is_array(mv->oi.type) && ks_all_zero(oval, mv->ostride))
		return 1;
	err = ks_btf_convert(mv->obtf, mv->oi.btf_key_type_id, okey, mv->nbtf, mv->nkey_id, nkey,
			     why, sizeof(why));
	if (!err && is_array(mv->ntype) && *(uint32_t *)nkey >= mv->nmax) {
		pr_error("pinned map has an entry in use beyond this agent's capacity; start it with a capacity (--max-services, --max-endpoints) that holds it",
			"map=%s index=%u agent_max_entries=%u", mv->name, *(uint32_t *)nkey,
			mv->nmax);
		return -ERANGE;
	}
	/* Shared to per-CPU: the value on the first CPU, zero on the others. */
	if (!err)
		memset(nval, 0, mv->nstride);
	for (c = 0; !err && c < ocpus; c++) {
		const char *src = oval + c * ov;

		if (sum)
			err = ks_btf_convert_add(mv->obtf, mv->oi.btf_value_type_id, src, mv->nbtf,
						 mv->nval_id, nval, why, sizeof(why));
		else
			err = ks_btf_convert(mv->obtf, mv->oi.btf_value_type_id, src, mv->nbtf,
					     mv->nval_id, nval + c * nv, why, sizeof(why));
	}
	if (err)
		pr_error("a pinned map entry cannot be moved to this build's layout; the running datapath is untouched",
			"map=%s why=\"%s\"", mv->name, why);
	return err;
}

/* Step 2 for one map, in batches both ways: a million-slot array would be a million syscalls. */
static int move_entries(struct move *mv)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	size_t kmax = mv->oi.key_size > 8 ? mv->oi.key_size : 8;
	char *ok, *ov, *nk, *nv, in[64], out[64];
	uint32_t count, i, n;
	bool first = true, last = false;
	int err = 0, r;

	if (kmax > sizeof(in))
		return -E2BIG;
	ok = malloc((size_t)BATCH * mv->oi.key_size);
	ov = malloc((size_t)BATCH * mv->ostride);
	nk = malloc((size_t)BATCH * mv->nkey_size);
	nv = malloc((size_t)BATCH * mv->nstride);
	if (!ok || !ov || !nk || !nv) {
		err = -ENOMEM;
		goto out;
	}
	while (!last) {
		count = BATCH;
		if (bpf_map_lookup_batch(mv->ofd, first ? NULL : in, out, ok, ov, &count, &bo)) {
			if (errno != ENOENT) {
				err = -errno;
				pr_error("cannot read a pinned map to upgrade it", "map=%s err=%d",
					 mv->name, err);
				goto out;
			}
			last = true;
		}
		first = false;
		memcpy(in, out, kmax);
		for (i = n = 0; i < count; i++) {
			r = move_one(mv, ok + (size_t)i * mv->oi.key_size, ov + (size_t)i * mv->ostride,
				     nk + (size_t)n * mv->nkey_size, nv + (size_t)n * mv->nstride);
			if (r < 0) {
				err = r;
				goto out;
			}
			n += !r;
		}
		if (n && bpf_map_update_batch(mv->nfd, nk, nv, &n, &bo)) {
			err = -errno;
			pr_error(err == -E2BIG || err == -ENOMEM
					 ? "the upgraded map is full before every entry moved; start the agent with a capacity (--max-services, --max-endpoints) that holds them"
					 : "cannot write the upgraded map",
				 "map=%s moved=%lu err=%d", mv->name, mv->moved, err);
			goto out;
		}
		mv->moved += n;
	}
out:
	free(ok);
	free(ov);
	free(nk);
	free(nv);
	return err;
}

static int move_map(struct ks_dp *dp, struct bpf_map *m)
{
	char path[PATH_MAX];
	struct move mv = {
		.name = bpf_map__name(m), .nfd = bpf_map__fd(m), .ofd = -1,
		.nbtf = bpf_object__btf(dp->skel->obj),
		.nkey_id = bpf_map__btf_key_type_id(m), .nval_id = bpf_map__btf_value_type_id(m),
		.ntype = bpf_map__type(m), .nkey_size = bpf_map__key_size(m),
		.nval_size = bpf_map__value_size(m), .nmax = bpf_map__max_entries(m),
		.nstride = dp_value_stride(dp, m), .ncpus = dp->ncpus,
	};
	uint32_t len = sizeof(mv.oi);
	int err = 0;

	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, mv.name);
	mv.ofd = bpf_obj_get(path);
	if (mv.ofd < 0 || bpf_obj_get_info_by_fd(mv.ofd, &mv.oi, &len)) {
		err = -errno;
		pr_error("cannot open a pinned map to upgrade it", "map=%s err=%d", path, err);
		goto out;
	}
	/* Socket storage cannot be read from userspace: see docs/design.md, "Upgrades". */
	if (mv.oi.type == BPF_MAP_TYPE_SK_STORAGE) {
		pr_warn("socket storage has another layout in this build: sockets steered before the upgrade lose their VIP translation (getpeername and UDP replies show the endpoint; drain no longer finds them)",
			"map=%s", path);
		goto out;
	}
	mv.obtf = btf__load_from_kernel_by_id(mv.oi.btf_id);
	if (!mv.obtf) {
		err = -errno;
		goto out;
	}
	/* Batches pack plain values by their size, per-CPU ones 8-byte aligned, one per CPU. */
	mv.ostride = dp_percpu(mv.oi.type) ? ((mv.oi.value_size + 7) & ~7UL) * dp->ncpus
					   : mv.oi.value_size;
	err = move_entries(&mv);
	if (!err)
		pr_info("upgraded map filled", "map=%s entries=%lu", mv.name, mv.moved);
out:
	btf__free(mv.obtf);
	if (mv.ofd >= 0)
		close(mv.ofd);
	return err;
}

/*
 * Fault injection for selftests/kern/test_upgrade: the agent dies at the
 * named step as a kill -9 would, leaving the pins exactly as they are.
 */
static void test_abort_at(const char *step)
{
	const char *at = getenv("KSPLIT_TEST_UPGRADE_ABORT");

	if (at && !strcmp(at, step))
		raise(SIGKILL);
}

int dp_upgrade_finish(struct ks_dp *dp)
{
	char staging[PATH_MAX], staged[PATH_MAX], path[PATH_MAX];
	unsigned int n = 0;
	size_t i;
	int err = 0;

	if (!dp->n_staged)
		return 0;
	for (i = 0; !err && i < dp->n_staged; i++)
		err = move_map(dp, dp->staged[i]);
	if (!err)
		err = sub_path(staging, sizeof(staging), dp->pin_dir, STAGING, NULL);
	if (!err)
		err = sub_path(staged, sizeof(staged), dp->pin_dir, STAGED, NULL);
	if (!err)
		test_abort_at(STAGING);		/* before the commit */
	if (!err && rename(staging, staged))
		err = -errno;
	if (err) {
		clear_dir(dp->pin_dir, STAGING, NULL);
		pr_error("upgrade abandoned; the running datapath is untouched", "pin_dir=%s err=%d",
			 dp->pin_dir, err);
		return err;
	}
	test_abort_at(STAGED);			/* after it */
	err = move_staged(dp->pin_dir, &n);
	if (err)
		return err;
	for (i = 0; i < dp->n_staged; i++) {
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, bpf_map__name(dp->staged[i]));
		err = bpf_map__set_pin_path(dp->staged[i], path);
		if (err)
			return err;
	}
	pr_info("upgraded the pinned maps to this build; the programs switch to them as the links are updated",
		"pin_dir=%s maps=%u", dp->pin_dir, n);
	return 0;
}
