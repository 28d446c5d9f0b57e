// SPDX-License-Identifier: BSD-2-Clause
/*
 * Update protocol (docs/design.md): a changed service gets fresh slot ranges
 * in ks_backends, written while nothing points at them; then its ks_services
 * entry is replaced in one map update, which is atomic for readers (the map
 * has no prealloc, so the old value is freed after RCU, not recycled). After
 * all services are written, one RCU grace period passes (an update of an
 * ARRAY_OF_MAPS makes the kernel call synchronize_rcu()) and only then are
 * the old ranges and ids freed. So a connect() sees the old service or the
 * new one, never a mix, and none sees old state once apply has returned.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/alloc.h"
#include "datapath/dp.h"
#include "common/log.h"
#include "common/sys.h"
#include "ksplit.skel.h"

#define LINK_PREFIX "link_"
#define PROG_PREFIX "ksplit_"

struct dp_svc {
	struct ksi_service s;	/* groups[].be carry the ep_ids in use */
	struct ks_svc val;	/* as written to ks_services */
	bool moved;		/* ownership passed on during apply */
};

struct ks_dp {
	struct ksplit_bpf *skel;
	char cgroup[PATH_MAX];
	char pin_dir[PATH_MAX - 64];	/* room left for the names pinned below it */
	int cg_fd;
	int sync_outer, sync_inner;
	int ncpus;
	bool adopted;
	uint32_t max_services, max_endpoints;
	uint32_t next_rev;
	struct ks_idalloc svc_ids, ep_ids;
	struct ks_rangealloc slots;
	size_t n;
	struct dp_svc *svcs;		/* sorted by key */
	size_t n_links;
	struct bpf_link *links[16];
};

/* Names of everything ksplit pins; `down` removes these and nothing else. */
static const char *const pinned_maps[] = {
	"ks_services", "ks_backends", "ks_ep_stats", "ks_ep_health", "ks_svc_stats", "ks_svc_meta",
	"ks_sock",
};

static void dp_svc_free(struct dp_svc *d)
{
	uint32_t j;

	for (j = 0; j < d->s.n_groups; j++) {
		free(d->s.groups[j].be);
		d->s.groups[j].be = NULL;
	}
}

static void free_state(struct dp_svc *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!v[i].moved)
			dp_svc_free(&v[i]);
	free(v);
}

bool ks_dp_adopted(const struct ks_dp *dp)
{
	return dp->adopted;
}

static int rcu_sync(struct ks_dp *dp)
{
	__u32 k = 0;

	/* The kernel waits for an RCU grace period after any map-in-map update. */
	if (bpf_map_update_elem(dp->sync_outer, &k, &dp->sync_inner, BPF_ANY))
		return -errno;
	return 0;
}

static int sync_maps_create(struct ks_dp *dp)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);

	dp->sync_inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ks_sync_inner", 4, 4, 1, NULL);
	if (dp->sync_inner < 0)
		return -errno;
	o.inner_map_fd = dp->sync_inner;
	dp->sync_outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "ks_rcu_sync", 4, 4, 1, &o);
	if (dp->sync_outer < 0)
		return -errno;
	return 0;
}

static int zero_percpu(struct ks_dp *dp, int fd, uint32_t id, size_t vsz)
{
	size_t sz = ((vsz + 7) & ~7UL) * dp->ncpus;
	void *zero = calloc(1, sz);
	int err = 0;

	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, &id, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

/* Rebuild the userspace view (ids, ranges, services) from adopted pinned maps. */
static int rebuild_state(struct ks_dp *dp)
{
	int fsvc = bpf_map__fd(dp->skel->maps.ks_services);
	int fbe = bpf_map__fd(dp->skel->maps.ks_backends);
	int fmeta = bpf_map__fd(dp->skel->maps.ks_svc_meta);
	struct ks_svc_key key, next;
	void *prev = NULL;
	size_t alloc = 0;
	int err = 0;

	while (!bpf_map_get_next_key(fsvc, prev, &next)) {
		struct dp_svc *d;
		uint32_t j, k;

		key = next;
		prev = &key;
		if (dp->n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			struct dp_svc *nv = realloc(dp->svcs, na * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			dp->svcs = nv;
			alloc = na;
		}
		d = &dp->svcs[dp->n];
		memset(d, 0, sizeof(*d));
		if (bpf_map_lookup_elem(fsvc, &key, &d->val)) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		dp->n++;
		d->s.key = key;
		d->s.n_groups = d->val.n_groups;
		d->s.total_weight = d->val.total_weight;
		d->s.passive_failures = d->val.passive_failures;
		d->s.flags = d->val.flags;
		if (d->val.n_groups > KS_MAX_GROUPS)
			goto inconsistent;
		/* Missing names only make status poorer; the datapath does not need them. */
		bpf_map_lookup_elem(fmeta, &d->val.svc_id, &d->s.meta);
		if (ks_idalloc_mark(&dp->svc_ids, d->val.svc_id))
			goto inconsistent;
		if (d->val.rev >= dp->next_rev)
			dp->next_rev = d->val.rev + 1;
		for (j = 0; j < d->val.n_groups; j++) {
			const struct ks_group *g = &d->val.groups[j];
			struct ksi_group *sg = &d->s.groups[j];
			uint32_t prev_end = j ? d->val.groups[j - 1].weight_end : 0;

			sg->weight = g->weight_end - prev_end;
			sg->n_elig = g->be_count;
			sg->n_total = g->be_total;
			if (!g->be_total)
				continue;
			if (ks_rangealloc_mark(&dp->slots, g->be_base, g->be_total))
				goto inconsistent;
			sg->be = calloc(g->be_total, sizeof(*sg->be));
			if (!sg->be)
				return -ENOMEM;
			for (k = 0; k < g->be_total; k++) {
				__u32 slot = g->be_base + k;

				if (bpf_map_lookup_elem(fbe, &slot, &sg->be[k]))
					return -errno;
				if (ks_idalloc_mark(&dp->ep_ids, sg->be[k].ep_id))
					goto inconsistent;
			}
		}
	}
	if (errno != ENOENT && prev)
		err = -errno;
	qsort(dp->svcs, dp->n, sizeof(*dp->svcs),
	      (int (*)(const void *, const void *))ks_svc_key_cmp);
	return err;
inconsistent:
	pr_warn("pinned state is inconsistent (overlapping slots or ids); run `ksplit down` and start again",
		"pin_dir=%s", dp->pin_dir);
	return -EUCLEAN;
}

static int link_pin_path(char *buf, size_t len, const char *pin_dir, const struct bpf_program *p)
{
	const char *name = bpf_program__name(p);

	if (!strncmp(name, PROG_PREFIX, strlen(PROG_PREFIX)))
		name += strlen(PROG_PREFIX);
	if (snprintf(buf, len, "%s/" LINK_PREFIX "%s", pin_dir, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Adopt a pinned link (swapping in the new program) or attach and pin a new one. */
static int attach_one(struct ks_dp *dp, struct bpf_program *p, uint64_t cg_id)
{
	struct bpf_link_info info = {};
	__u32 ilen = sizeof(info);
	struct bpf_link *l;
	char path[PATH_MAX];
	int err;

	err = link_pin_path(path, sizeof(path), dp->pin_dir, p);
	if (err)
		return err;
	if (!access(path, F_OK)) {
		l = bpf_link__open(path);
		if (!l)
			return -errno;
		if (bpf_obj_get_info_by_fd(bpf_link__fd(l), &info, &ilen)) {
			err = -errno;
			goto fail;
		}
		if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != cg_id) {
			pr_warn("pinned link is attached to another cgroup; run `ksplit down` first",
				"link=%s", path);
			err = -EEXIST;
			goto fail;
		}
		/* Swap the program in place: the hook never goes missing during an upgrade. */
		err = bpf_link__update_program(l, p);
		if (err)
			goto fail;
	} else {
		l = bpf_program__attach_cgroup(p, dp->cg_fd);
		if (!l)
			return -errno;
		err = bpf_link__pin(l, path);
		if (err)
			goto fail;
	}
	dp->links[dp->n_links++] = l;
	return 0;
fail:
	bpf_link__destroy(l);
	return err;
}

int ks_dp_open(const struct ks_dp_opts *opts, struct ks_dp **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	char cgroot[PATH_MAX], path[PATH_MAX];
	const char *cgpath = opts->cgroup;
	struct bpf_program *p;
	struct ks_dp *dp;
	uint64_t cg_id;
	int err;

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cg_fd = dp->sync_inner = dp->sync_outer = -1;
	dp->next_rev = 1;
	dp->max_services = opts->max_services ? opts->max_services : KS_MAX_SERVICES;
	dp->max_endpoints = opts->max_endpoints ? opts->max_endpoints : KS_MAX_ENDPOINTS;
	if (snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s",
		     opts->pin_dir ? opts->pin_dir : KS_DEFAULT_PIN_DIR) >= (int)sizeof(dp->pin_dir)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus < 0) {
		err = dp->ncpus;
		goto fail;
	}
	if (!cgpath) {
		err = ks_cgroup2_root(cgroot, sizeof(cgroot));
		if (err) {
			pr_warn("no cgroup2 mount in /proc/mounts", "err=%d", err);
			goto fail;
		}
		cgpath = cgroot;
	}
	err = ks_cgroup_id(cgpath, &cg_id);
	if (err)
		goto fail;
	snprintf(dp->cgroup, sizeof(dp->cgroup), "%s", cgpath);
	dp->cg_fd = open(cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->cg_fd < 0) {
		err = -errno;
		pr_warn("cannot open cgroup", "cgroup=%s err=%d", cgpath, err);
		goto fail;
	}
	err = ks_ensure_bpffs(dp->pin_dir);
	if (!err)
		err = ks_mkdir_p(dp->pin_dir);
	if (err) {
		pr_warn("cannot prepare pin dir", "pin_dir=%s err=%d", dp->pin_dir, err);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/ks_services", dp->pin_dir);
	dp->adopted = !access(path, F_OK);

	oo.pin_root_path = dp->pin_dir;
	dp->skel = ksplit_bpf__open_opts(&oo);
	if (!dp->skel) {
		err = -errno;
		goto fail;
	}
	/*
	 * Before 5.18 there is no bpf_set_retval: refused connects then fail
	 * with EPERM. The flag is read-only data, so the verifier prunes the
	 * call on such kernels instead of rejecting the program.
	 */
	dp->skel->rodata->have_set_retval =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval, NULL) > 0;
	if (!dp->skel->rodata->have_set_retval)
		pr_warn("kernel has no bpf_set_retval: refused shares fail with EPERM, not ECONNREFUSED");
	bpf_map__set_max_entries(dp->skel->maps.ks_services, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_svc_stats, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_svc_meta, dp->max_services);
	bpf_map__set_max_entries(dp->skel->maps.ks_backends, 2 * dp->max_endpoints);
	bpf_map__set_max_entries(dp->skel->maps.ks_ep_stats, dp->max_endpoints);
	bpf_map__set_max_entries(dp->skel->maps.ks_ep_health, dp->max_endpoints);
	err = ksplit_bpf__load(dp->skel);
	if (err) {
		pr_warn("cannot load BPF programs (a pinned map of another size or version makes libbpf refuse to reuse it; see the libbpf lines above)",
			"pin_dir=%s err=%d", dp->pin_dir, err);
		goto fail;
	}
	err = ks_idalloc_init(&dp->svc_ids, dp->max_services);
	if (!err)
		err = ks_idalloc_init(&dp->ep_ids, dp->max_endpoints);
	if (!err)
		err = ks_rangealloc_init(&dp->slots, 2 * dp->max_endpoints);
	if (!err)
		err = sync_maps_create(dp);
	if (!err && dp->adopted)
		err = rebuild_state(dp);
	if (err)
		goto fail;
	bpf_object__for_each_program(p, dp->skel->obj) {
		err = attach_one(dp, p, cg_id);
		if (err) {
			pr_warn("cannot attach program", "prog=%s cgroup=%s err=%d",
				bpf_program__name(p), cgpath, err);
			goto fail;
		}
	}
	pr_info(dp->adopted ? "adopted pinned datapath" : "attached datapath",
		"pin_dir=%s cgroup=%s services=%zu", dp->pin_dir, cgpath, dp->n);
	*out = dp;
	return 0;
fail:
	if (dp->skel && !dp->adopted) {
		/* Nothing of a half-made fresh datapath may stay behind. */
		ks_dp_close(dp);
		ks_dp_down(opts->pin_dir ? opts->pin_dir : KS_DEFAULT_PIN_DIR, NULL);
	} else {
		ks_dp_close(dp);
	}
	return err;
}

void ks_dp_close(struct ks_dp *dp)
{
	size_t i;

	if (!dp)
		return;
	/* bpf_link__destroy only drops our fd: the pinned links stay attached. */
	for (i = 0; i < dp->n_links; i++)
		bpf_link__destroy(dp->links[i]);
	ksplit_bpf__destroy(dp->skel);
	if (dp->cg_fd >= 0)
		close(dp->cg_fd);
	if (dp->sync_inner >= 0)
		close(dp->sync_inner);
	if (dp->sync_outer >= 0)
		close(dp->sync_outer);
	free_state(dp->svcs, dp->n);
	ks_idalloc_fini(&dp->svc_ids);
	ks_idalloc_fini(&dp->ep_ids);
	ks_rangealloc_fini(&dp->slots);
	free(dp);
}

static struct dp_svc *find_old(struct ks_dp *dp, const struct ks_svc_key *k)
{
	size_t lo = 0, hi = dp->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = ks_svc_key_cmp(&dp->svcs[mid].s.key, k);

		if (!c)
			return &dp->svcs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct ksi_service *image_find(const struct ks_image *img, const struct ks_svc_key *k)
{
	size_t lo = 0, hi = img->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = ks_svc_key_cmp(&img->svcs[mid].key, k);

		if (!c)
			return &img->svcs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool image_has(const struct ks_image *img, const struct ks_svc_key *k)
{
	return image_find(img, k) != NULL;
}

static bool service_lists(const struct ksi_service *s, const struct ks_backend *be)
{
	uint32_t j, k;

	for (j = 0; s && j < s->n_groups; j++)
		for (k = 0; k < s->groups[j].n_total; k++)
			if (s->groups[j].be[k].family == be->family &&
			    s->groups[j].be[k].port == be->port &&
			    !memcmp(s->groups[j].be[k].addr, be->addr, 16))
				return true;
	return false;
}

/* Endpoints of a rewritten or removed service that the new image no longer lists. */
static int collect_gone(const struct dp_svc *o, const struct ks_image *img,
			struct ks_drain_target **v, size_t *n, size_t *alloc)
{
	const struct ksi_service *ns = image_find(img, &o->s.key);
	uint32_t j, k;

	for (j = 0; j < o->s.n_groups; j++) {
		for (k = 0; k < o->s.groups[j].n_total; k++) {
			const struct ks_backend *be = &o->s.groups[j].be[k];
			struct ks_drain_target *t;

			if (service_lists(ns, be))
				continue;
			if (*n == *alloc) {
				size_t na = *alloc ? *alloc * 2 : 16;
				struct ks_drain_target *nv = realloc(*v, na * sizeof(*nv));

				if (!nv)
					return -ENOMEM;
				*v = nv;
				*alloc = na;
			}
			t = &(*v)[(*n)++];
			memcpy(t->addr, be->addr, sizeof(t->addr));
			t->port = be->port;
			t->family = be->family;
		}
	}
	return 0;
}

int ks_dp_uneject(struct ks_dp *dp, bool (*pick)(void *ctx, const struct ks_backend *be),
		  void *ctx, unsigned int *n)
{
	int feh = bpf_map__fd(dp->skel->maps.ks_ep_health);
	struct ks_ep_health h, clean = {};
	struct timespec ts;
	uint64_t now;
	uint32_t j, k;
	size_t i;

	*n = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	for (i = 0; i < dp->n; i++) {
		const struct dp_svc *d = &dp->svcs[i];

		for (j = 0; j < d->s.n_groups; j++) {
			for (k = 0; k < d->s.groups[j].n_total; k++) {
				const struct ks_backend *be = &d->s.groups[j].be[k];

				if (bpf_map_lookup_elem(feh, &be->ep_id, &h) || h.ejected_until <= now ||
				    !pick(ctx, be))
					continue;
				/* Active checks vouch for it: the ejection history starts over. */
				if (bpf_map_update_elem(feh, &be->ep_id, &clean, BPF_EXIST))
					return -errno;
				(*n)++;
			}
		}
	}
	return 0;
}

const char *ks_dp_cgroup(const struct ks_dp *dp)
{
	return dp->cgroup;
}

static bool same_endpoint(const struct ks_backend *a, const struct ks_backend *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

/*
 * Plan one added or changed service: ids (kept where the endpoint was already
 * there, so counters survive weight changes) and fresh slot ranges.
 */
static int plan_service(struct ks_dp *dp, const struct ksi_service *src, const struct dp_svc *old,
			struct dp_svc *d)
{
	uint32_t j, k, m, weight_end = 0;
	int err;

	d->s = *src;
	memset(&d->val, 0, sizeof(d->val));
	for (j = 0; j < src->n_groups; j++)
		d->s.groups[j].be = NULL;
	if (old) {
		d->val.svc_id = old->val.svc_id;
	} else {
		err = ks_idalloc_get(&dp->svc_ids, &d->val.svc_id);
		if (err)
			return err;
	}
	d->val.rev = dp->next_rev++;
	d->val.n_groups = src->n_groups;
	d->val.total_weight = src->total_weight;
	d->val.passive_failures = src->passive_failures;
	d->val.flags = src->flags;
	for (j = 0; j < src->n_groups; j++) {
		const struct ksi_group *sg = &src->groups[j];
		struct ksi_group *dg = &d->s.groups[j];
		const struct ksi_group *og = old && j < old->s.n_groups ? &old->s.groups[j] : NULL;
		struct ks_group *vg = &d->val.groups[j];

		weight_end += sg->weight;
		vg->weight_end = weight_end;
		vg->be_count = sg->n_elig;
		if (!sg->n_total)
			continue;
		dg->be = calloc(sg->n_total, sizeof(*dg->be));
		if (!dg->be)
			return -ENOMEM;
		memcpy(dg->be, sg->be, sg->n_total * sizeof(*dg->be));
		/* An out-of-range id is "not assigned yet": unplan gives back only real ones. */
		for (k = 0; k < sg->n_total; k++)
			dg->be[k].ep_id = UINT32_MAX;
		for (k = 0; k < sg->n_total; k++) {
			bool reused = false;

			for (m = 0; og && m < og->n_total; m++) {
				if (same_endpoint(&og->be[m], &dg->be[k])) {
					dg->be[k].ep_id = og->be[m].ep_id;
					reused = true;
					break;
				}
			}
			if (!reused) {
				err = ks_idalloc_get(&dp->ep_ids, &dg->be[k].ep_id);
				if (err)
					return err;
			}
		}
		err = ks_rangealloc_get(&dp->slots, sg->n_total, &vg->be_base);
		if (err)
			return err;
		/* be_total doubles as "this group holds a range" for unplan. */
		vg->be_total = sg->n_total;
	}
	return 0;
}

/* Give back what a planned service took that its predecessor did not hold. */
static void unplan_service(struct ks_dp *dp, struct dp_svc *d, const struct dp_svc *old,
			   const struct ks_idalloc *old_eps)
{
	uint32_t j, k;

	if (!old && ks_idalloc_test(&dp->svc_ids, d->val.svc_id))
		ks_idalloc_put(&dp->svc_ids, d->val.svc_id);
	for (j = 0; j < d->s.n_groups; j++) {
		struct ksi_group *g = &d->s.groups[j];

		if (!g->be)
			continue;
		for (k = 0; k < g->n_total; k++)
			if (!ks_idalloc_test(old_eps, g->be[k].ep_id))
				ks_idalloc_put(&dp->ep_ids, g->be[k].ep_id);
		if (d->val.groups[j].be_total)
			ks_rangealloc_put(&dp->slots, d->val.groups[j].be_base,
					  d->val.groups[j].be_total);
	}
}

static int write_service(struct ks_dp *dp, const struct dp_svc *d, bool fresh_svc,
			 const struct ks_idalloc *old_eps, struct ks_apply_stats *st)
{
	int fsvc = bpf_map__fd(dp->skel->maps.ks_services);
	int fbe = bpf_map__fd(dp->skel->maps.ks_backends);
	int fmeta = bpf_map__fd(dp->skel->maps.ks_svc_meta);
	int fes = bpf_map__fd(dp->skel->maps.ks_ep_stats);
	int fss = bpf_map__fd(dp->skel->maps.ks_svc_stats);
	int feh = bpf_map__fd(dp->skel->maps.ks_ep_health);
	struct ks_ep_health fresh = {};
	uint32_t j, k;
	int err;

	for (j = 0; j < d->s.n_groups; j++) {
		const struct ksi_group *g = &d->s.groups[j];

		for (k = 0; k < g->n_total; k++) {
			__u32 slot = d->val.groups[j].be_base + k;

			/* A fresh id starts with zero counters and a clean health record. */
			if (!ks_idalloc_test(old_eps, g->be[k].ep_id)) {
				err = zero_percpu(dp, fes, g->be[k].ep_id, sizeof(struct ks_ep_stats));
				if (err)
					return err;
				if (bpf_map_update_elem(feh, &g->be[k].ep_id, &fresh, BPF_ANY))
					return -errno;
			}
			if (bpf_map_update_elem(fbe, &slot, &g->be[k], BPF_ANY))
				return -errno;
			st->backends_written++;
		}
	}
	if (fresh_svc) {
		err = zero_percpu(dp, fss, d->val.svc_id, sizeof(struct ks_svc_stats));
		if (err)
			return err;
	}
	if (bpf_map_update_elem(fmeta, &d->val.svc_id, &d->s.meta, BPF_ANY))
		return -errno;
	/* The publishing write: from here on new connects use the new groups. */
	if (bpf_map_update_elem(fsvc, &d->s.key, &d->val, BPF_ANY))
		return -errno;
	return 0;
}

int ks_dp_apply(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st)
{
	return ks_dp_apply_gone(dp, img, st, NULL, NULL);
}

int ks_dp_apply_gone(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st,
		     struct ks_drain_target **gone, size_t *n_gone)
{
	size_t gone_alloc = 0;
	int fsvc = bpf_map__fd(dp->skel->maps.ks_services);
	int fmeta = bpf_map__fd(dp->skel->maps.ks_svc_meta);
	struct ks_idalloc old_eps = {}, new_eps = {};
	struct dp_svc **olds = NULL;
	struct dp_svc *nv = NULL;
	bool *written = NULL, *planned = NULL, *kept_old = NULL;
	uint32_t g, k;
	size_t i;
	int err;

	memset(st, 0, sizeof(*st));
	if (gone) {
		*gone = NULL;
		*n_gone = 0;
	}
	if (img->n > dp->max_services) {
		pr_warn("config does not fit: too many VIP:port:proto entries",
			"services=%zu max_services=%u", img->n, dp->max_services);
		return -E2BIG;
	}
	if (img->n_backends > dp->max_endpoints) {
		pr_warn("config does not fit: too many endpoint slots",
			"endpoints=%llu max_endpoints=%u", (unsigned long long)img->n_backends,
			dp->max_endpoints);
		return -E2BIG;
	}
	err = ks_idalloc_init(&old_eps, dp->max_endpoints);
	if (!err)
		err = ks_idalloc_init(&new_eps, dp->max_endpoints);
	if (err)
		goto out;
	for (i = 0; i < dp->n; i++)
		for (g = 0; g < dp->svcs[i].s.n_groups; g++)
			for (k = 0; k < dp->svcs[i].s.groups[g].n_total; k++)
				ks_idalloc_mark(&old_eps, dp->svcs[i].s.groups[g].be[k].ep_id);

	nv = calloc(img->n + 1, sizeof(*nv));
	olds = calloc(img->n + 1, sizeof(*olds));
	written = calloc(img->n + 1, sizeof(*written));
	planned = calloc(img->n + 1, sizeof(*planned));
	kept_old = calloc(dp->n + 1, sizeof(*kept_old));
	if (!nv || !olds || !written || !planned || !kept_old) {
		err = -ENOMEM;
		goto out;
	}

	/* Plan: every allocation happens before the first map write. */
	for (i = 0; i < img->n; i++) {
		const struct ksi_service *s = &img->svcs[i];
		struct dp_svc *o = find_old(dp, &s->key);

		olds[i] = o;
		if (o && ksi_service_equal(&o->s, s)) {
			nv[i] = *o;
			kept_old[o - dp->svcs] = true;
			st->unchanged++;
			continue;
		}
		planned[i] = true;
		err = plan_service(dp, s, o, &nv[i]);
		if (err) {
			pr_warn(err == -EFBIG ? "config does not fit: backend slots are fragmented"
					      : "config does not fit",
				"err=%d", err);
			goto unplan;
		}
		if (o)
			st->changed++;
		else
			st->added++;
	}

	/* Write: each service is published by one ks_services update. */
	for (i = 0; i < img->n; i++) {
		if (!planned[i])
			continue;
		err = write_service(dp, &nv[i], !olds[i], &old_eps, st);
		if (err) {
			pr_warn("map update failed; restoring the previous state", "err=%d", err);
			goto rollback;
		}
		written[i] = true;
	}
	for (i = 0; i < dp->n; i++) {
		const struct dp_svc *o = &dp->svcs[i];

		/* A key still present in the new image was rewritten, not removed. */
		if (image_has(img, &o->s.key))
			continue;
		if (bpf_map_delete_elem(fsvc, &o->s.key) && errno != ENOENT)
			pr_warn("cannot delete service entry", "err=%d", -errno);
		bpf_map_delete_elem(fmeta, &o->val.svc_id);
		st->removed++;
	}

	err = rcu_sync(dp);
	if (err)
		pr_warn("RCU sync failed; old slots are leaked rather than reused", "err=%d", err);

	/* Free what only the old state used; kept services hand over their memory. */
	for (i = 0; i < img->n; i++)
		for (g = 0; g < nv[i].s.n_groups; g++)
			for (k = 0; k < nv[i].s.groups[g].n_total; k++)
				ks_idalloc_mark(&new_eps, nv[i].s.groups[g].be[k].ep_id);
	for (i = 0; i < dp->n; i++) {
		struct dp_svc *o = &dp->svcs[i];

		if (kept_old[i]) {
			o->moved = true;
			continue;
		}
		if (gone && collect_gone(o, img, gone, n_gone, &gone_alloc))
			pr_warn("out of memory listing endpoints to drain; their sockets stay");
		for (g = 0; g < o->s.n_groups; g++) {
			if (!err && o->val.groups[g].be_total)
				ks_rangealloc_put(&dp->slots, o->val.groups[g].be_base,
						  o->val.groups[g].be_total);
			for (k = 0; k < o->s.groups[g].n_total; k++)
				if (!ks_idalloc_test(&new_eps, o->s.groups[g].be[k].ep_id))
					ks_idalloc_put(&dp->ep_ids, o->s.groups[g].be[k].ep_id);
		}
		if (!image_has(img, &o->s.key))
			ks_idalloc_put(&dp->svc_ids, o->val.svc_id);
	}
	free_state(dp->svcs, dp->n);
	dp->svcs = nv;
	dp->n = img->n;
	nv = NULL;
	err = 0;
	goto out;

rollback:
	for (i = 0; i < img->n; i++) {
		if (!written[i])
			continue;
		if (olds[i]) {
			bpf_map_update_elem(fmeta, &olds[i]->val.svc_id, &olds[i]->s.meta, BPF_ANY);
			bpf_map_update_elem(fsvc, &olds[i]->s.key, &olds[i]->val, BPF_ANY);
		} else {
			bpf_map_delete_elem(fsvc, &nv[i].s.key);
			bpf_map_delete_elem(fmeta, &nv[i].val.svc_id);
		}
	}
	rcu_sync(dp);
unplan:
	for (i = 0; i < img->n; i++) {
		if (!planned[i])
			continue;
		unplan_service(dp, &nv[i], olds[i], &old_eps);
		dp_svc_free(&nv[i]);
	}
	free(nv);
	nv = NULL;
out:
	if (nv) {
		for (i = 0; i < img->n; i++)
			if (planned[i])
				dp_svc_free(&nv[i]);
		free(nv);
	}
	free(olds);
	free(written);
	free(planned);
	free(kept_old);
	ks_idalloc_fini(&old_eps);
	ks_idalloc_fini(&new_eps);
	return err;
}

int ks_dp_down(const char *pin_dir, unsigned int *removed)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned int n = 0;
	size_t i;
	int fd, err = 0;
	DIR *d;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	/* Every link ksplit pins is named link_<hook>: no list to keep in step with bpf/. */
	d = opendir(pin_dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/* Detach even while a running agent still holds the link open. */
		if (bpf_link_detach(fd) && errno != ENOLINK) {
			err = -errno;
			pr_warn("cannot detach link", "link=%s err=%d", path, err);
		}
		close(fd);
		if (unlink(path) == 0)
			n++;
	}
	if (d)
		closedir(d);
	for (i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned_maps[i]);
		if (unlink(path) == 0)
			n++;
		else if (errno != ENOENT)
			err = -errno;
	}
	if (rmdir(pin_dir) && errno != ENOENT) {
		pr_warn("pin dir not removed: it holds files ksplit did not pin", "pin_dir=%s",
			pin_dir);
		if (!err)
			err = -errno;
	}
	if (removed)
		*removed = n;
	return err;
}
