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
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"
#include "common/log.h"

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

static int rcu_sync(struct ks_dp *dp)
{
	__u32 k = 0;

	/* The kernel waits for an RCU grace period after any map-in-map update. */
	if (bpf_map_update_elem(dp->sync_outer, &k, &dp->sync_inner, BPF_ANY))
		return -errno;
	return 0;
}

/*
 * Before d is published, its groups' counters: a group keeps them when old
 * names the same backendRef at the same index; otherwise (and for every
 * group of a new service, perhaps on a recycled svc_id) they start at zero,
 * queued in b.
 */
static int group_stats_fill(const struct dp_svc *d, const struct dp_svc *old, struct dp_batch *b)
{
	uint32_t j, key;
	int err;

	for (j = 0; j < d->s.n_groups && j < KS_MAX_GROUPS; j++) {
		bool same = old && j < old->s.n_groups &&
			    !strcmp(ksi_meta_backend(old->s.meta, j), ksi_meta_backend(d->s.meta, j));

		if (same)
			continue;
		key = KS_GROUP_KEY(d->val.svc_id, j);
		err = dp_batch_add(b, &key, NULL);
		if (err)
			return err;
	}
	return 0;
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

/*
 * Endpoints of some groups, sorted, so that each lookup is O(log n): a scan
 * per endpoint made one change to a 100,000-endpoint service take seconds.
 */
struct ep_ref {
	const struct ks_backend *be;
	size_t pos;		/* listing order: the first of equal endpoints wins */
};

struct ep_index {
	struct ep_ref *v;
	size_t n;
};

static int cmp_endpoint(const struct ks_backend *a, const struct ks_backend *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int cmp_ep_ref(const void *pa, const void *pb)
{
	const struct ep_ref *a = pa, *b = pb;
	int c = cmp_endpoint(a->be, b->be);

	if (c)
		return c;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Indexes groups g[0..n_groups); no groups gives an empty index. */
static int ep_index_build(struct ep_index *ix, const struct ksi_group *g, uint32_t n_groups)
{
	size_t total = 0;
	uint32_t j, k;

	ix->v = NULL;
	ix->n = 0;
	for (j = 0; j < n_groups; j++)
		total += g[j].n_total;
	if (!total)
		return 0;
	ix->v = malloc(total * sizeof(*ix->v));
	if (!ix->v)
		return -ENOMEM;
	for (j = 0; j < n_groups; j++)
		for (k = 0; k < g[j].n_total; k++, ix->n++)
			ix->v[ix->n] = (struct ep_ref){ &g[j].be[k], ix->n };
	qsort(ix->v, ix->n, sizeof(*ix->v), cmp_ep_ref);
	return 0;
}

/* The first listed endpoint equal to be (family, port, address), or NULL. */
static const struct ks_backend *ep_index_find(const struct ep_index *ix, const struct ks_backend *be)
{
	size_t lo = 0, hi = ix->n;

	/* Lower bound: equal keys sort by position, so lo lands on the first. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cmp_endpoint(ix->v[mid].be, be) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ix->n && !cmp_endpoint(ix->v[lo].be, be) ? ix->v[lo].be : NULL;
}

/* Endpoints of a rewritten or removed service that the new image no longer lists. */
static int collect_gone(const struct dp_svc *o, const struct ks_image *img,
			struct ks_drain_target **v, size_t *n, size_t *alloc)
{
	const struct ksi_service *ns = image_find(img, &o->s.key);
	struct ep_index listed;
	uint32_t j, k;
	int err;

	err = ep_index_build(&listed, ns ? ns->groups : NULL, ns ? ns->n_groups : 0);
	if (err)
		return err;
	for (j = 0; j < o->s.n_groups; j++) {
		for (k = 0; k < o->s.groups[j].n_total; k++) {
			const struct ks_backend *be = &o->s.groups[j].be[k];
			struct ks_drain_target *t;

			if (ep_index_find(&listed, be))
				continue;
			if (*n == *alloc) {
				size_t na = *alloc ? *alloc * 2 : 16;
				struct ks_drain_target *nv = realloc(*v, na * sizeof(*nv));

				if (!nv) {
					err = -ENOMEM;
					goto out;
				}
				*v = nv;
				*alloc = na;
			}
			t = &(*v)[(*n)++];
			memcpy(t->addr, be->addr, sizeof(t->addr));
			t->port = be->port;
			t->family = be->family;
		}
	}
out:
	free(listed.v);
	return err;
}

/*
 * Plan one added or changed service: ids (kept where the endpoint was already
 * there, so counters survive weight changes) and fresh slot ranges.
 */
static int plan_service(struct ks_dp *dp, const struct ksi_service *src, const struct dp_svc *old,
			struct dp_svc *d)
{
	uint32_t j, k, weight_end = 0;
	struct ep_index had;
	int err;

	d->s = *src;
	memset(&d->val, 0, sizeof(d->val));
	for (j = 0; j < src->n_groups; j++)
		d->s.groups[j].be = NULL;
	d->s.meta = NULL;	/* the image's; a copy is made last */
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
		err = ep_index_build(&had, og, og ? 1 : 0);
		for (k = 0; !err && k < sg->n_total; k++) {
			const struct ks_backend *ob = ep_index_find(&had, &dg->be[k]);

			if (ob)
				dg->be[k].ep_id = ob->ep_id;
			else
				err = ks_idalloc_get(&dp->ep_ids, &dg->be[k].ep_id);
		}
		free(had.v);
		if (err)
			return err;
		err = ks_rangealloc_get(&dp->slots, sg->n_total, &vg->be_base);
		if (err)
			return err;
		/* be_total doubles as "this group holds a range" for unplan. */
		vg->be_total = sg->n_total;
	}
	d->s.meta = ksi_meta_dup(src->meta);
	return d->s.meta ? 0 : -ENOMEM;
}

static int plan_logged(struct ks_dp *dp, const struct ksi_service *src, const struct dp_svc *old,
		       struct dp_svc *d)
{
	int err = plan_service(dp, src, old, d);

	if (err)
		pr_warn(err == -EFBIG ? "config does not fit: backend slots are fragmented"
				      : "config does not fit",
			"err=%d", err);
	return err;
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

/*
 * The maps one apply writes, in batches. Everything a service points at
 * (slots, counters, health, names) is flushed before the first ks_services
 * entry: the publishing writes come last, in their own batch.
 */
struct writer {
	struct dp_batch be, eps, eph, svs, grp, meta;	/* backing, in flush order */
	struct dp_batch svc;				/* publishing */
};

#define W_BATCH		4096	/* entries per batch */
#define W_BATCH_PCPU	256	/* per-CPU values: 256 x 8 bytes x CPUs per entry */

/* A writer for map m, whose values may be per-CPU (a pin of an earlier build). */
static int batch_for(const struct ks_dp *dp, struct dp_batch *b, const struct bpf_map *m)
{
	bool pc = dp_percpu(bpf_map__type(m));

	return dp_batch_init(b, bpf_map__fd(m), bpf_map__key_size(m), dp_value_stride(dp, m),
			     pc ? W_BATCH_PCPU : W_BATCH);
}

static void writer_fini(struct writer *w)
{
	dp_batch_fini(&w->be);
	dp_batch_fini(&w->eps);
	dp_batch_fini(&w->eph);
	dp_batch_fini(&w->svs);
	dp_batch_fini(&w->grp);
	dp_batch_fini(&w->meta);
	dp_batch_fini(&w->svc);
}

static int writer_init(struct ks_dp *dp, struct writer *w)
{
	typeof(dp->skel->maps) *m = &dp->skel->maps;
	int err;

	memset(w, 0, sizeof(*w));
	err = dp_batch_init(&w->be, bpf_map__fd(m->ks_backends), 4, sizeof(struct ks_backend),
			    W_BATCH);
	if (!err)
		err = batch_for(dp, &w->eps, m->ks_ep_stats);
	if (!err)
		err = dp_batch_init(&w->eph, bpf_map__fd(m->ks_ep_health), 4,
				    sizeof(struct ks_ep_health), W_BATCH);
	if (!err)
		err = batch_for(dp, &w->svs, m->ks_svc_stats);
	if (!err)
		err = batch_for(dp, &w->grp, m->ks_group_stats);
	if (!err)
		err = dp_batch_init(&w->meta, bpf_map__fd(m->ks_svc_meta), 4,
				    sizeof(struct ks_svc_meta), W_BATCH / 4);
	if (!err)
		err = dp_batch_init(&w->svc, bpf_map__fd(m->ks_services), sizeof(struct ks_svc_key),
				    sizeof(struct ks_svc), W_BATCH);
	if (err)
		writer_fini(w);
	return err;
}

/* Queue what service d points at; nothing is published yet. */
static int stage_service(struct writer *w, const struct dp_svc *d, const struct dp_svc *old,
			 const struct ks_idalloc *old_eps, struct ks_apply_stats *st)
{
	const struct ks_ep_health fresh = {};
	struct ks_svc_meta meta;
	uint32_t j, k;
	int err;

	for (j = 0; j < d->s.n_groups; j++) {
		const struct ksi_group *g = &d->s.groups[j];

		for (k = 0; k < g->n_total; k++) {
			__u32 slot = d->val.groups[j].be_base + k;

			/* A fresh id starts with zero counters and a clean health record. */
			if (!ks_idalloc_test(old_eps, g->be[k].ep_id)) {
				err = dp_batch_add(&w->eps, &g->be[k].ep_id, NULL);
				if (!err)
					err = dp_batch_add(&w->eph, &g->be[k].ep_id, &fresh);
				if (err)
					return err;
			}
			err = dp_batch_add(&w->be, &slot, &g->be[k]);
			if (err)
				return err;
			st->backends_written++;
		}
	}
	if (!old) {
		err = dp_batch_add(&w->svs, &d->val.svc_id, NULL);
		if (err)
			return err;
	}
	err = group_stats_fill(d, old, &w->grp);
	if (err)
		return err;
	ksi_meta_unpack(d->s.meta, &meta);
	return dp_batch_add(&w->meta, &d->val.svc_id, &meta);
}

static int flush_backing(struct writer *w)
{
	struct dp_batch *order[] = { &w->be, &w->eps, &w->eph, &w->svs, &w->grp, &w->meta };
	size_t i;
	int err;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		err = dp_batch_flush(order[i]);
		if (err)
			return err;
	}
	return 0;
}

static void mark_ids(struct ks_idalloc *a, const struct dp_svc *d)
{
	uint32_t g, k;

	for (g = 0; g < d->s.n_groups; g++)
		for (k = 0; k < d->s.groups[g].n_total; k++)
			ks_idalloc_mark(a, d->s.groups[g].be[k].ep_id);
}

/*
 * After the grace period: the slots and ids that only old service o held go
 * back (its slots only when the grace period passed: rcu_ok), and the
 * endpoints img no longer lists for its key join *gone.
 */
static void release_old(struct ks_dp *dp, const struct dp_svc *o, const struct ks_image *img,
			const struct ks_idalloc *new_eps, bool rcu_ok,
			struct ks_drain_target **gone, size_t *n_gone, size_t *gone_alloc)
{
	uint32_t g, k;

	if (gone && collect_gone(o, img, gone, n_gone, gone_alloc))
		pr_warn("out of memory listing endpoints to drain; their sockets stay");
	for (g = 0; g < o->s.n_groups; g++) {
		if (rcu_ok && o->val.groups[g].be_total)
			ks_rangealloc_put(&dp->slots, o->val.groups[g].be_base,
					  o->val.groups[g].be_total);
		for (k = 0; k < o->s.groups[g].n_total; k++)
			if (!ks_idalloc_test(new_eps, o->s.groups[g].be[k].ep_id))
				ks_idalloc_put(&dp->ep_ids, o->s.groups[g].be[k].ep_id);
	}
}

/* A failed write: put back the ks_services entries of the services published (written). */
static void restore(struct ks_dp *dp, struct dp_svc *const *olds, const struct dp_svc *nv,
		    const bool *written, size_t n)
{
	int fsvc = bpf_map__fd(dp->skel->maps.ks_services);
	int fmeta = bpf_map__fd(dp->skel->maps.ks_svc_meta);
	size_t i;

	for (i = 0; i < n; i++) {
		if (!written[i])
			continue;
		if (olds[i]) {
			struct ks_svc_meta meta;

			ksi_meta_unpack(olds[i]->s.meta, &meta);
			bpf_map_update_elem(fmeta, &olds[i]->val.svc_id, &meta, BPF_ANY);
			bpf_map_update_elem(fsvc, &olds[i]->s.key, &olds[i]->val, BPF_ANY);
		} else {
			bpf_map_delete_elem(fsvc, &nv[i].s.key);
			bpf_map_delete_elem(fmeta, &nv[i].val.svc_id);
		}
	}
	rcu_sync(dp);
}

static void unplan_all(struct ks_dp *dp, struct dp_svc *const *olds, struct dp_svc *nv,
		       const bool *planned, size_t n, const struct ks_idalloc *old_eps)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!planned[i])
			continue;
		unplan_service(dp, &nv[i], olds[i], old_eps);
		dp_svc_free(&nv[i]);
	}
}

/*
 * Stage and publish the planned services of nv (their predecessors in olds):
 * backing first, then each ks_services entry in one update. written tells
 * which entries were published, for restore().
 */
static int write_planned(struct ks_dp *dp, const struct dp_svc *nv, struct dp_svc *const *olds,
			 const bool *planned, bool *written, size_t n,
			 const struct ks_idalloc *old_eps, struct ks_apply_stats *st)
{
	uint64_t published;
	struct writer w;
	size_t i;
	int err;

	err = writer_init(dp, &w);
	if (err)
		return err;
	for (i = 0; !err && i < n; i++)
		if (planned[i])
			err = stage_service(&w, &nv[i], olds[i], old_eps, st);
	if (!err)
		err = flush_backing(&w);
	for (i = 0; !err && i < n; i++)
		if (planned[i])
			err = dp_batch_add(&w.svc, &nv[i].s.key, &nv[i].val);
	if (!err)
		err = dp_batch_flush(&w.svc);
	/* Whatever went into ks_services, in planning order, is what rollback restores. */
	for (i = 0, published = w.svc.written; i < n && published; i++)
		if (planned[i]) {
			written[i] = true;
			published--;
		}
	writer_fini(&w);
	return err;
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
	uint64_t t0 = mono_us();
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
		mark_ids(&old_eps, &dp->svcs[i]);

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
		err = plan_logged(dp, s, o, &nv[i]);
		if (err)
			goto unplan;
		if (o)
			st->changed++;
		else
			st->added++;
	}

	/*
	 * Write: first what the changed services point at, then the
	 * ks_services entries that publish them, each one update (atomic for
	 * readers), in batches.
	 */
	err = write_planned(dp, nv, olds, planned, written, img->n, &old_eps, st);
	if (err) {
		pr_warn("map update failed; restoring the previous state", "err=%d", err);
		goto rollback;
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

	st->publish_us = mono_us() - t0;
	err = rcu_sync(dp);
	if (err)
		pr_warn("RCU sync failed; old slots are leaked rather than reused", "err=%d", err);

	/* Free what only the old state used; kept services hand over their memory. */
	for (i = 0; i < img->n; i++)
		mark_ids(&new_eps, &nv[i]);
	for (i = 0; i < dp->n; i++) {
		struct dp_svc *o = &dp->svcs[i];

		if (kept_old[i]) {
			o->moved = true;
			continue;
		}
		release_old(dp, o, img, &new_eps, !err, gone, n_gone, &gone_alloc);
		if (!image_has(img, &o->s.key))
			ks_idalloc_put(&dp->svc_ids, o->val.svc_id);
	}
	dp_state_free(dp->svcs, dp->n);
	dp->svcs = nv;
	dp->n = img->n;
	nv = NULL;
	err = 0;
	goto out;

rollback:
	restore(dp, olds, nv, written, img->n);
unplan:
	unplan_all(dp, olds, nv, planned, img->n, &old_eps);
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

/*
 * The incremental apply: only img's services, each already in force, are
 * planned and written; every other service stays as it is and is not even
 * looked at, so the cost follows the change, not the config. The protocol
 * is the full apply's: backing first, each ks_services entry in one update,
 * one RCU grace period before the old slots and ids go back. Ids only move
 * within a service, so the ids of the rewritten services' old versions are
 * all "old" there is to know.
 */
int ks_dp_apply_some(struct ks_dp *dp, const struct ks_image *img, struct ks_apply_stats *st,
		     struct ks_drain_target **gone, size_t *n_gone)
{
	struct ks_idalloc old_eps = {}, new_eps = {};
	struct dp_svc **olds = NULL, *nv = NULL;
	bool *written = NULL, *planned = NULL;
	uint64_t t0 = mono_us();
	size_t gone_alloc = 0, i;
	int err;

	memset(st, 0, sizeof(*st));
	*gone = NULL;
	*n_gone = 0;
	nv = calloc(img->n + 1, sizeof(*nv));
	olds = calloc(img->n + 1, sizeof(*olds));
	written = calloc(img->n + 1, sizeof(*written));
	planned = calloc(img->n + 1, sizeof(*planned));
	err = nv && olds && written && planned ? 0 : -ENOMEM;
	if (!err)
		err = ks_idalloc_init(&old_eps, dp->max_endpoints);
	if (!err)
		err = ks_idalloc_init(&new_eps, dp->max_endpoints);
	for (i = 0; !err && i < img->n; i++) {
		olds[i] = find_old(dp, &img->svcs[i].key);
		if (!olds[i])
			err = -ENOENT;
		else
			mark_ids(&old_eps, olds[i]);
	}
	if (err)
		goto out;
	for (i = 0; i < img->n; i++) {
		if (ksi_service_equal(&olds[i]->s, &img->svcs[i])) {
			st->unchanged++;
			continue;
		}
		planned[i] = true;
		err = plan_logged(dp, &img->svcs[i], olds[i], &nv[i]);
		if (err)
			goto unplan;
		st->changed++;
	}
	/* Nothing to write: nothing for readers to finish either. */
	if (!st->changed)
		goto out;
	err = write_planned(dp, nv, olds, planned, written, img->n, &old_eps, st);
	if (err) {
		pr_warn("map update failed; restoring the previous state", "err=%d", err);
		restore(dp, olds, nv, written, img->n);
		goto unplan;
	}
	st->publish_us = mono_us() - t0;
	err = rcu_sync(dp);
	if (err)
		pr_warn("RCU sync failed; old slots are leaked rather than reused", "err=%d", err);
	for (i = 0; i < img->n; i++)
		if (planned[i])
			mark_ids(&new_eps, &nv[i]);
	for (i = 0; i < img->n; i++) {
		if (!planned[i])
			continue;
		release_old(dp, olds[i], img, &new_eps, !err, gone, n_gone, &gone_alloc);
		dp_svc_free(olds[i]);
		*olds[i] = nv[i];
	}
	err = 0;
	goto out;
unplan:
	unplan_all(dp, olds, nv, planned, img->n, &old_eps);
out:
	free(nv);
	free(olds);
	free(written);
	free(planned);
	ks_idalloc_fini(&old_eps);
	ks_idalloc_fini(&new_eps);
	return err;
}
