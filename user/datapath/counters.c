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

/* A value wanted from an array map: the entry at key, copied to dst (found set). */
struct want {
	uint32_t key;
	void *dst;
	bool *found;
};

static int cmp_want(const void *a, const void *b)
{
	uint32_t x = ((const struct want *)a)->key, y = ((const struct want *)b)->key;

	return x < y ? -1 : x > y;
}

/*
 * Fill every want from array map fd (values of vsz bytes): sorted by key,
 * one batch call reads the window [key, key + BATCH) of the lowest key
 * left. Keys past the end of the array stay not found (the kernel would
 * start over at 0 after such a key).
 */
static int read_array(int fd, size_t vsz, struct want *w, size_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	uint8_t *vals = malloc(BATCH * vsz);
	uint32_t *keys = malloc(BATCH * sizeof(*keys));
	size_t i = 0, j;
	int err = 0;

	if (!vals || !keys) {
		err = -ENOMEM;
		goto out;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	qsort(w, n, sizeof(*w), cmp_want);
	while (n && w[n - 1].key >= info.max_entries)
		n--;
	while (i < n) {
		/* The batch starts after in_batch: the key before the window, none for 0. */
		__u32 start = w[i].key, prev = start - 1, next, count = BATCH;

		for (j = i; j < n && w[j].key - start < BATCH; j++)
			;
		count = w[j - 1].key - start + 1;
		err = bpf_map_lookup_batch(fd, start ? &prev : NULL, &next, keys, vals, &count,
					   &opts);
		if (err && err != -ENOENT)
			goto out;
		err = 0;
		for (; i < j; i++) {
			if (w[i].key - start >= count)
				continue;
			memcpy(w[i].dst, vals + (w[i].key - start) * vsz, vsz);
			if (w[i].found)
				*w[i].found = true;
		}
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

/* Services by id, and endpoints by ep_id, for the maps keyed by those. */
struct by_id {
	uint32_t id;
	void *obj;
};

static int cmp_by_id(const void *a, const void *b)
{
	uint32_t x = ((const struct by_id *)a)->id, y = ((const struct by_id *)b)->id;

	return x < y ? -1 : x > y;
}

/* Everything with id, in v sorted by id: [*lo, end). */
static size_t by_id_first(const struct by_id *v, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct id_dump {
	const struct pinned *p;
	const struct by_id *v;
	size_t n;
	enum { ID_META, ID_SVC_STATS, ID_EP_STATS } what;
};

/* One entry of ks_svc_meta, ks_svc_stats or ks_ep_stats, given to whatever has its id. */
static int add_by_id(void *ctx, const void *key, const void *val)
{
	const struct id_dump *d = ctx;
	uint32_t id;
	size_t i;

	memcpy(&id, key, sizeof(id));
	for (i = by_id_first(d->v, d->n, id); i < d->n && d->v[i].id == id; i++) {
		struct ks_svc_counters *s = d->v[i].obj;
		struct ks_ep_counters *e = d->v[i].obj;

		if (d->what == ID_META)
			memcpy(&s->meta, val, sizeof(s->meta));
		else if (d->what == ID_SVC_STATS)
			add_cpus(d->p, val, &s->stats, sizeof(s->stats));
		else
			add_cpus(d->p, val, &e->stats, sizeof(e->stats));
	}
	return 0;
}

static int dump_ids(const struct pinned *p, int fd, size_t vsz, bool percpu, struct by_id *v,
		    size_t n, int what)
{
	struct id_dump d = { .p = p, .v = v, .n = n, .what = what };

	qsort(v, n, sizeof(*v), cmp_by_id);
	return dump_hash(fd, sizeof(uint32_t), value_bytes(p, vsz, percpu), add_by_id, &d);
}

/* Names and counters of every service: one dump of each map keyed by svc_id. */
static int read_svc_extras(const struct pinned *p, struct ks_counters *c)
{
	struct by_id *v = malloc((c->n_svcs ? c->n_svcs : 1) * sizeof(*v));
	size_t i;
	int err;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < c->n_svcs; i++)
		v[i] = (struct by_id){ c->svcs[i].svc.svc_id, &c->svcs[i] };
	/* Missing names or counters only make the report poorer. */
	err = dump_ids(p, p->meta, sizeof(struct ks_svc_meta), false, v, c->n_svcs, ID_META);
	if (!err)
		err = dump_ids(p, p->svc_stats, sizeof(struct ks_svc_stats), true, v, c->n_svcs,
			       ID_SVC_STATS);
	free(v);
	return err;
}

/*
 * The slots of every group (an empty slot or one past the array stays
 * zero), then, for the slots found, their endpoints' counters and health.
 */
static int read_endpoints(const struct pinned *p, struct ks_counters *c)
{
	struct want *w = NULL;
	struct by_id *ids = NULL;
	size_t i, n = 0, n_found = 0;
	uint32_t j, k;
	int err = -ENOMEM;

	for (i = 0; i < c->n_svcs; i++) {
		struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++) {
			n += s->svc.groups[j].be_total;
			if (s->svc.groups[j].be_total &&
			    !(s->eps[j] = calloc(s->svc.groups[j].be_total, sizeof(*s->eps[j]))))
				goto out;
		}
	}
	if (!(w = malloc((n ? n : 1) * sizeof(*w))))
		goto out;
	n = 0;
	for (i = 0; i < c->n_svcs; i++) {
		struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++)
			for (k = 0; k < s->svc.groups[j].be_total; k++)
				w[n++] = (struct want){ s->svc.groups[j].be_base + k, &s->eps[j][k].be,
							&s->eps[j][k].found };
	}
	err = read_array(p->be, sizeof(struct ks_backend), w, n);
	if (err)
		goto out;
	for (i = 0; i < n; i++) {
		struct ks_ep_counters *e = (struct ks_ep_counters *)((uint8_t *)w[i].dst -
								     offsetof(struct ks_ep_counters, be));

		if (e->found)
			w[n_found++] = (struct want){ e->be.ep_id, &e->health, NULL };
	}
	err = read_array(p->ep_health, sizeof(struct ks_ep_health), w, n_found);
	if (err)
		goto out;
	err = -ENOMEM;
	if (!(ids = malloc((n_found ? n_found : 1) * sizeof(*ids))))
		goto out;
	for (i = 0; i < n_found; i++)
		ids[i] = (struct by_id){ w[i].key, (uint8_t *)w[i].dst -
						   offsetof(struct ks_ep_counters, health) };
	err = dump_ids(p, p->ep_stats, sizeof(struct ks_ep_stats), true, ids, n_found, ID_EP_STATS);
out:
	free(w);
	free(ids);
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
