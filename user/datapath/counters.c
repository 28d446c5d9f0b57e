// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "common/sys.h"
#include "datapath/counters.h"
#include "image/image.h"

struct pinned {
	int svc, be, ep_stats, ep_health, svc_stats, meta;
	int ncpus;
};

/*
 * Open one pin and check its key and value sizes against the structs this
 * binary reads them into, before any lookup: the kernel copies value_size
 * bytes, so a pin from another build would write past a smaller struct.
 */
static int open_pin(const char *dir, const char *name, uint32_t ksz, uint32_t vsz, int *fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	char path[PATH_MAX];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		err = -errno;
		pr_warn("cannot open pinned map (is ksplit running or was it started with another --pin-dir?)",
			"path=%s err=%d", path, err);
		return err;
	}
	if (bpf_obj_get_info_by_fd(*fd, &info, &len)) {
		err = -errno;
		pr_warn("cannot read pinned map info", "path=%s err=%d", path, err);
		return err;
	}
	if (info.key_size != ksz || info.value_size != vsz) {
		pr_error("pinned map has another key or value size than this ksplit binary: the pins were made by another build; use the ksplit binary of the running agent",
			 "path=%s key_size=%u value_size=%u expected_key_size=%u expected_value_size=%u",
			 path, info.key_size, info.value_size, ksz, vsz);
		return -EPROTO;
	}
	return 0;
}

/*
 * Entries per BPF_MAP_LOOKUP_BATCH call. One lookup per entry (and a
 * get_next_key per service) made 50,000 services 1.7 million syscalls and
 * seconds of `ksplit status`; batches make it a few hundred.
 */
#define BATCH 4096

/* Bytes the kernel copies per value: per-CPU maps give every CPU's copy, 8-byte aligned. */
static size_t value_bytes(const struct pinned *p, size_t vsz, bool percpu)
{
	return percpu ? ((vsz + 7) & ~7UL) * p->ncpus : vsz;
}

/* Add the per-CPU copies in buf (as value_bytes() lays them out) to sums, vsz bytes of u64s. */
static void add_cpus(const struct pinned *p, const void *buf, void *sums, size_t vsz)
{
	size_t stride = (vsz + 7) & ~7UL, c, f;
	uint64_t *out = sums;

	for (c = 0; c < (size_t)p->ncpus; c++)
		for (f = 0; f < vsz / sizeof(uint64_t); f++)
			out[f] += ((const uint64_t *)((const uint8_t *)buf + c * stride))[f];
}

/* One entry a hash dump hands to its consumer. */
typedef int (*entry_fn)(void *ctx, const void *key, const void *val);

/* Every entry of a hash map, BATCH at a time; stops at the first error of fn. */
static int dump_hash(int fd, size_t ksz, size_t vbytes, entry_fn fn, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = malloc(BATCH * ksz), *vals = malloc(BATCH * vbytes);
	__u32 token, count, i;
	bool first = true, done = false;
	int err = 0;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!done && !err) {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &count,
					   &opts);
		/* ENOENT: the last batch, count entries still filled in. */
		if (err == -ENOENT) {
			err = 0;
			done = true;
		}
		if (err)
			break;
		first = false;
		for (i = 0; i < count && !err; i++)
			err = fn(ctx, (uint8_t *)keys + i * ksz, (uint8_t *)vals + i * vbytes);
	}
out:
	free(keys);
	free(vals);
	return err;
}

/*
 * What is wanted from a map keyed by a small integer (a slot, an svc_id, an
 * ep_id): wants by key, as chains through head[key] and next[]. Ids and
 * slots are below the map's max_entries, so this is a table, not a sort.
 */
#define NONE UINT32_MAX

struct want {
	void *obj;
	bool *found;		/* set when read; may be NULL */
};

struct wants {
	uint32_t max;			/* the map's max_entries: keys at or past it are never found */
	uint32_t *head, *next;		/* head[key], next[want]: NONE ends a chain */
	struct want *v;
	size_t n, alloc;
};

static uint32_t map_max(int fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

static int wants_init(struct wants *w, int fd, size_t n)
{
	memset(w, 0, sizeof(*w));
	w->max = map_max(fd);
	w->head = malloc((w->max ? w->max : 1) * sizeof(*w->head));
	w->next = malloc((n ? n : 1) * sizeof(*w->next));
	w->v = malloc((n ? n : 1) * sizeof(*w->v));
	if (!w->head || !w->next || !w->v)
		return -ENOMEM;
	memset(w->head, 0xff, w->max * sizeof(*w->head));
	w->alloc = n;
	return 0;
}

static void wants_add(struct wants *w, uint32_t key, void *obj, bool *found)
{
	if (key >= w->max || w->n == w->alloc)
		return;
	w->v[w->n] = (struct want){ obj, found };
	w->next[w->n] = w->head[key];
	w->head[key] = w->n++;
}

static void wants_fini(struct wants *w)
{
	free(w->head);
	free(w->next);
	free(w->v);
}

/*
 * Copy the values of array map fd (vsz bytes) to off bytes into every
 * want's obj: one batch call per window of up to BATCH keys, from the
 * lowest key still wanted to the last wanted one in the window.
 */
static int read_array(int fd, size_t vsz, const struct wants *w, size_t off)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint8_t *vals = malloc(BATCH * vsz);
	uint32_t *keys = malloc(BATCH * sizeof(*keys));
	uint32_t k = 0, x, i;
	int err = 0;

	if (!vals || !keys) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		/* The batch starts after in_batch: the key before the window, none for 0. */
		__u32 start, end, prev, next, count;

		while (k < w->max && w->head[k] == NONE)
			k++;
		if (k >= w->max)
			break;
		start = end = k;
		for (x = start; x < w->max && x - start < BATCH; x++)
			if (w->head[x] != NONE)
				end = x;
		prev = start - 1;
		count = end - start + 1;
		err = bpf_map_lookup_batch(fd, start ? &prev : NULL, &next, keys, vals, &count,
					   &opts);
		if (err && err != -ENOENT)
			goto out;
		err = 0;
		for (x = start; x <= end && x - start < count; x++)
			for (i = w->head[x]; i != NONE; i = w->next[i]) {
				memcpy((uint8_t *)w->v[i].obj + off, vals + (x - start) * vsz, vsz);
				if (w->v[i].found)
					*w->v[i].found = true;
			}
		k = end + 1;
	}
out:
	free(vals);
	free(keys);
	return err;
}

static int cmp_key(const void *a, const void *b)
{
	return ks_svc_key_cmp(a, b);
}

struct svc_dump {
	struct ks_counters *c;
	size_t alloc;
};

static int add_service(void *ctx, const void *key, const void *val)
{
	struct svc_dump *d = ctx;
	struct ks_svc_counters *s;

	if (d->c->n_svcs == d->alloc) {
		size_t na = d->alloc ? d->alloc * 2 : 64;

		s = realloc(d->c->svcs, na * sizeof(*s));
		if (!s)
			return -ENOMEM;
		d->c->svcs = s;
		d->alloc = na;
	}
	s = &d->c->svcs[d->c->n_svcs++];
	memset(s, 0, sizeof(*s));
	memcpy(&s->key, key, sizeof(s->key));
	memcpy(&s->svc, val, sizeof(s->svc));
	return 0;
}

struct id_dump {
	const struct pinned *p;
	const struct wants *w;
	enum { ID_META, ID_SVC_STATS, ID_EP_STATS } what;
};

/* One entry of ks_svc_meta, ks_svc_stats or ks_ep_stats, given to whatever has its id. */
static int add_by_id(void *ctx, const void *key, const void *val)
{
	const struct id_dump *d = ctx;
	uint32_t id, i;

	memcpy(&id, key, sizeof(id));
	for (i = id < d->w->max ? d->w->head[id] : NONE; i != NONE; i = d->w->next[i]) {
		struct ks_svc_counters *s = d->w->v[i].obj;
		struct ks_ep_counters *e = d->w->v[i].obj;

		if (d->what == ID_META)
			memcpy(&s->meta, val, sizeof(s->meta));
		else if (d->what == ID_SVC_STATS)
			add_cpus(d->p, val, &s->stats, sizeof(s->stats));
		else
			add_cpus(d->p, val, &e->stats, sizeof(e->stats));
	}
	return 0;
}

static int dump_ids(const struct pinned *p, int fd, size_t vsz, bool percpu,
		    const struct wants *w, int what)
{
	struct id_dump d = { .p = p, .w = w, .what = what };

	return dump_hash(fd, sizeof(uint32_t), value_bytes(p, vsz, percpu), add_by_id, &d);
}

/*
 * Names and counters of every service, by svc_id (missing ones only make
 * the report poorer): one dump of each map keyed by it.
 */
static int read_svc_extras(const struct pinned *p, struct ks_counters *c)
{
	struct wants w;
	size_t i;
	int err;

	/* Both maps are sized --max-services. */
	err = wants_init(&w, p->meta, c->n_svcs);
	for (i = 0; !err && i < c->n_svcs; i++)
		wants_add(&w, c->svcs[i].svc.svc_id, &c->svcs[i], NULL);
	if (!err)
		err = dump_ids(p, p->meta, sizeof(struct ks_svc_meta), false, &w, ID_META);
	if (!err)
		err = dump_ids(p, p->svc_stats, sizeof(struct ks_svc_stats), true, &w,
			       ID_SVC_STATS);
	wants_fini(&w);
	return err;
}

/*
 * The slots of every group (an empty slot or one past the array stays
 * zero), then, for the slots found, their endpoints' health and counters.
 */
static int read_endpoints(const struct pinned *p, struct ks_counters *c)
{
	struct wants slots = {}, ids = {};
	size_t i, n = 0;
	uint32_t j, k;
	int err;

	for (i = 0; i < c->n_svcs; i++) {
		struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++) {
			n += s->svc.groups[j].be_total;
			if (s->svc.groups[j].be_total &&
			    !(s->eps[j] = calloc(s->svc.groups[j].be_total, sizeof(*s->eps[j])))) {
				err = -ENOMEM;
				goto out;
			}
		}
	}
	err = wants_init(&slots, p->be, n);
	if (err)
		goto out;
	for (i = 0; i < c->n_svcs; i++) {
		struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++)
			for (k = 0; k < s->svc.groups[j].be_total; k++)
				wants_add(&slots, s->svc.groups[j].be_base + k, &s->eps[j][k],
					  &s->eps[j][k].found);
	}
	err = read_array(p->be, sizeof(struct ks_backend), &slots,
			 offsetof(struct ks_ep_counters, be));
	if (err)
		goto out;
	/* ks_ep_health and ks_ep_stats are both sized --max-endpoints. */
	err = wants_init(&ids, p->ep_health, n);
	if (err)
		goto out;
	for (i = 0; i < c->n_svcs; i++) {
		struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++)
			for (k = 0; k < s->svc.groups[j].be_total; k++)
				if (s->eps[j][k].found)
					wants_add(&ids, s->eps[j][k].be.ep_id, &s->eps[j][k], NULL);
	}
	err = read_array(p->ep_health, sizeof(struct ks_ep_health), &ids,
			 offsetof(struct ks_ep_counters, health));
	if (!err)
		err = dump_ids(p, p->ep_stats, sizeof(struct ks_ep_stats), true, &ids, ID_EP_STATS);
out:
	wants_fini(&slots);
	wants_fini(&ids);
	return err;
}

int ks_counters_read(const char *pin_dir, struct ks_counters *out)
{
	struct pinned p = { -1, -1, -1, -1, -1, -1, 0 };
	struct ks_counters c = {};
	struct svc_dump d = { .c = &c };
	struct timespec ts;
	int err;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	p.ncpus = libbpf_num_possible_cpus();
	if (p.ncpus < 0)
		return p.ncpus;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c.now = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
#define OPEN(name, k, v, fd) open_pin(pin_dir, name, sizeof(k), sizeof(v), fd)
	if ((err = OPEN("ks_services", struct ks_svc_key, struct ks_svc, &p.svc)) ||
	    (err = OPEN("ks_backends", __u32, struct ks_backend, &p.be)) ||
	    (err = OPEN("ks_ep_stats", __u32, struct ks_ep_stats, &p.ep_stats)) ||
	    (err = OPEN("ks_ep_health", __u32, struct ks_ep_health, &p.ep_health)) ||
	    (err = OPEN("ks_svc_stats", __u32, struct ks_svc_stats, &p.svc_stats)) ||
	    (err = OPEN("ks_svc_meta", __u32, struct ks_svc_meta, &p.meta)))
		goto out;
#undef OPEN
	err = dump_hash(p.svc, sizeof(struct ks_svc_key), sizeof(struct ks_svc), add_service, &d);
	if (err)
		goto out;
	if (!c.svcs && !(c.svcs = calloc(1, sizeof(*c.svcs)))) {
		err = -ENOMEM;
		goto out;
	}
	qsort(c.svcs, c.n_svcs, sizeof(*c.svcs), cmp_key);
	err = read_svc_extras(&p, &c);
	if (!err)
		err = read_endpoints(&p, &c);
	if (err)
		goto out;
	*out = c;
	c = (struct ks_counters){};
out:
	ks_counters_free(&c);
	if (p.svc >= 0)
		close(p.svc);
	if (p.be >= 0)
		close(p.be);
	if (p.ep_stats >= 0)
		close(p.ep_stats);
	if (p.svc_stats >= 0)
		close(p.svc_stats);
	if (p.ep_health >= 0)
		close(p.ep_health);
	if (p.meta >= 0)
		close(p.meta);
	return err;
}

void ks_counters_free(struct ks_counters *c)
{
	size_t i, j;

	for (i = 0; i < c->n_svcs; i++)
		for (j = 0; j < KS_MAX_GROUPS; j++)
			free(c->svcs[i].eps[j]);
	free(c->svcs);
	memset(c, 0, sizeof(*c));
}
