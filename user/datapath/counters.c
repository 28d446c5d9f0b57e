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
#include "datapath/dp_int.h"
#include "image/image.h"

struct pinned {
	int svc, be, ep_stats, ep_health, svc_stats, group_stats, meta;
	int ncpus;
	uint32_t pc;		/* bit per counter map (COUNTER_*) whose pin is per-CPU */
	uint8_t *buf;		/* one value of any counter map, all CPUs */
};

/* The counter maps are shared arrays; pins of earlier builds have per-CPU hashes. */
enum { COUNTER_EP = 1, COUNTER_SVC = 2, COUNTER_GROUP = 4 };

/*
 * Open one pin and check its key and value sizes against the structs this
 * binary reads them into, before any lookup: the kernel copies value_size
 * bytes, so a pin from another build would write past a smaller struct.
 */
static int open_pin(const char *dir, const char *name, uint32_t ksz, uint32_t vsz, int *fd,
		    uint32_t *type)
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
	*type = info.type;
	return 0;
}

/* Sum n per-CPU copies (stride bytes apart) of a value of vsz bytes of u64 counters into sums. */
static void percpu_add(const uint8_t *v, int ncpus, void *sums, size_t vsz)
{
	size_t stride = (vsz + 7) & ~7UL, nfields = vsz / sizeof(uint64_t), f;
	uint64_t *out = sums;
	int c;

	memset(sums, 0, vsz);
	for (c = 0; c < ncpus; c++)
		for (f = 0; f < nfields; f++)
			out[f] += ((const uint64_t *)(v + c * stride))[f];
}

/*
 * The counters of id in one counter map (bit which of p->pc: per-CPU, summed
 * here); zero when the id has none. vsz: a struct of u64 counters.
 */
static void read_counters(const struct pinned *p, int fd, uint32_t which, uint32_t id, void *out,
			  size_t vsz)
{
	memset(out, 0, vsz);
	if (bpf_map_lookup_elem(fd, &id, p->buf))
		return;
	if (p->pc & which)
		percpu_add(p->buf, p->ncpus, out, vsz);
	else
		memcpy(out, p->buf, vsz);
}

/* The slots of group j; an empty slot or a failed lookup stays zero. */
static int read_group(const struct pinned *p, struct ks_svc_counters *s, uint32_t j)
{
	const struct ks_group *g = &s->svc.groups[j];
	uint32_t k;

	if (!g->be_total)
		return 0;
	s->eps[j] = calloc(g->be_total, sizeof(*s->eps[j]));
	if (!s->eps[j])
		return -ENOMEM;
	for (k = 0; k < g->be_total; k++) {
		struct ks_ep_counters *e = &s->eps[j][k];
		__u32 slot = g->be_base + k;

		if (bpf_map_lookup_elem(p->be, &slot, &e->be)) {
			memset(&e->be, 0, sizeof(e->be));
			continue;
		}
		e->found = true;
		read_counters(p, p->ep_stats, COUNTER_EP, e->be.ep_id, &e->stats, sizeof(e->stats));
		bpf_map_lookup_elem(p->ep_health, &e->be.ep_id, &e->health);
	}
	return 0;
}

int ks_counters_read_tc(const char *pin_dir, struct ks_tc_stats *out)
{
	size_t vsz = (sizeof(*out) + 7) & ~7UL;
	int ncpus = libbpf_num_possible_cpus(), fd = -1, err;
	uint32_t zero = 0, type;
	uint8_t *buf;

	if (ncpus < 0)
		return ncpus;
	memset(out, 0, sizeof(*out));
	buf = malloc(vsz * (size_t)ncpus);
	if (!buf)
		return -ENOMEM;
	err = open_pin(pin_dir, "ks_tc_stats", sizeof(zero), sizeof(*out), &fd, &type);
	if (!err && bpf_map_lookup_elem(fd, &zero, buf))
		err = -errno;
	if (!err)
		percpu_add(buf, ncpus, out, sizeof(*out));
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

void ks_tc_counters(const struct ks_tc_stats *t, struct ks_tc_counter out[KS_TC_N_COUNTERS])
{
	const struct ks_tc_counter c[KS_TC_N_COUNTERS] = {
		{ "new_flows", t->new_flows }, { "fwd", t->fwd }, { "rev", t->rev },
		{ "frags", t->frags }, { "first_frags", t->first_frags }, { "refused", t->refused },
		{ "stale", t->stale }, { "no_syn", t->no_syn }, { "icmp", t->icmp },
		{ "expired", t->expired },
	};

	_Static_assert(sizeof(*t) == KS_TC_N_COUNTERS * sizeof(__u64),
		       "a ks_tc_stats member without a name here");
	memcpy(out, c, sizeof(c));
}

/* Every entry of a hash map: keys (ksz each) and values (vsz each, per-CPU ones ncpus-wide). */
struct batch {
	uint8_t *keys, *vals;
	size_t ksz, vsz, n, alloc;
};

#define BATCH_CHUNK	4096

static int read_batch(int fd, size_t ksz, size_t vsz, struct batch *b)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	uint64_t in = 0, out = 0;	/* hash maps' batch token: a bucket index */
	bool first = true;

	b->ksz = ksz;
	b->vsz = vsz;
	for (;;) {
		__u32 count = BATCH_CHUNK;
		int err;

		if (b->alloc - b->n < BATCH_CHUNK) {
			size_t na = b->alloc ? b->alloc * 2 : BATCH_CHUNK;
			uint8_t *nk = realloc(b->keys, na * ksz), *nv;

			if (!nk)
				return -ENOMEM;
			b->keys = nk;
			nv = realloc(b->vals, na * vsz);
			if (!nv)
				return -ENOMEM;
			b->vals = nv;
			b->alloc = na;
		}
		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, b->keys + b->n * ksz,
					   b->vals + b->n * vsz, &count, &o);
		b->n += count;
		if (err && errno == ENOENT)
			return 0;	/* the last batch */
		if (err)
			return -errno;
		in = out;
		first = false;
	}
}

static void batch_free(struct batch *b)
{
	free(b->keys);
	free(b->vals);
}

/* Positions of a batch with u32 keys, sorted by key, to find an id in O(log n). */
struct pos {
	uint32_t key, at;
};

static int cmp_pos(const void *a, const void *b)
{
	uint32_t x = ((const struct pos *)a)->key, y = ((const struct pos *)b)->key;

	return x < y ? -1 : x > y;
}

static int index_batch(const struct batch *b, struct pos **out)
{
	size_t i;

	*out = malloc((b->n ? b->n : 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < b->n; i++) {
		memcpy(&(*out)[i].key, b->keys + i * b->ksz, sizeof(uint32_t));
		(*out)[i].at = i;
	}
	qsort(*out, b->n, sizeof(**out), cmp_pos);
	return 0;
}

/* The value for key, or NULL. */
static const uint8_t *find(const struct batch *b, const struct pos *ix, uint32_t key)
{
	struct pos k = { .key = key };
	const struct pos *p = bsearch(&k, ix, b->n, sizeof(*ix), cmp_pos);

	return p ? b->vals + (size_t)p->at * b->vsz : NULL;
}

struct svc_ref {
	struct ks_svc_key key;
	uint32_t at;
};

static int cmp_svc_ref(const void *a, const void *b)
{
	return ks_svc_key_cmp(&((const struct svc_ref *)a)->key, &((const struct svc_ref *)b)->key);
}

int ks_counters_read_ex(const char *pin_dir, unsigned int flags, struct ks_counters *out)
{
	struct pinned p = { -1, -1, -1, -1, -1, -1, -1, 0, 0, NULL };
	struct batch svcs = {}, meta = {};
	struct pos *ix_meta = NULL;
	struct svc_ref *refs = NULL;
	struct ks_counters c = {};
	uint32_t t_ep, t_svc, t_grp, t;
	struct timespec ts;
	size_t i;
	uint32_t j;
	int err;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	p.ncpus = libbpf_num_possible_cpus();
	if (p.ncpus < 0)
		return p.ncpus;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c.now = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
#define OPEN(name, k, v, fd, t) open_pin(pin_dir, name, sizeof(k), sizeof(v), fd, t)
	if ((err = OPEN("ks_services", struct ks_svc_key, struct ks_svc, &p.svc, &t)) ||
	    (err = OPEN("ks_backends", __u32, struct ks_backend, &p.be, &t)) ||
	    (err = OPEN("ks_ep_stats", __u32, struct ks_ep_stats, &p.ep_stats, &t_ep)) ||
	    (err = OPEN("ks_ep_health", __u32, struct ks_ep_health, &p.ep_health, &t)) ||
	    (err = OPEN("ks_svc_stats", __u32, struct ks_svc_stats, &p.svc_stats, &t_svc)) ||
	    (err = OPEN("ks_group_stats", __u32, struct ks_group_stats, &p.group_stats, &t_grp)) ||
	    (err = OPEN("ks_svc_meta", __u32, struct ks_svc_meta, &p.meta, &t)))
		goto out;
#undef OPEN
	p.pc = (dp_percpu(t_ep) ? COUNTER_EP : 0) | (dp_percpu(t_svc) ? COUNTER_SVC : 0) |
	       (dp_percpu(t_grp) ? COUNTER_GROUP : 0);
	/* Room for the largest counter value on every CPU. */
	p.buf = malloc(((sizeof(struct ks_ep_stats) + sizeof(struct ks_group_stats) + 7) & ~7UL) *
		       p.ncpus);
	if (!p.buf) {
		err = -ENOMEM;
		goto out;
	}
	/* Entries that change between two reads are read as they are then: counters are monotonic. */
	if ((err = read_batch(p.svc, sizeof(struct ks_svc_key), sizeof(struct ks_svc), &svcs)) ||
	    (err = read_batch(p.meta, sizeof(__u32), sizeof(struct ks_svc_meta), &meta)) ||
	    (err = index_batch(&meta, &ix_meta)))
		goto out;
	/*
	 * The TC counters only add to the report: pins of another build's
	 * ks_tc_stats (it grew) must not cost the services' counters.
	 */
	if (ks_counters_read_tc(pin_dir, &c.tc))
		memset(&c.tc, 0, sizeof(c.tc));
	refs = malloc((svcs.n ? svcs.n : 1) * sizeof(*refs));
	c.svcs = calloc(svcs.n ? svcs.n : 1, sizeof(*c.svcs));
	if (!refs || !c.svcs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < svcs.n; i++) {
		memcpy(&refs[i].key, svcs.keys + i * svcs.ksz, sizeof(refs[i].key));
		refs[i].at = i;
	}
	qsort(refs, svcs.n, sizeof(*refs), cmp_svc_ref);
	for (i = 0; i < svcs.n; i++) {
		struct ks_svc_counters *s = &c.svcs[c.n_svcs++];
		const uint8_t *v;

		s->key = refs[i].key;
		memcpy(&s->svc, svcs.vals + (size_t)refs[i].at * svcs.vsz, sizeof(s->svc));
		/* Missing names or counters only make the report poorer. */
		if ((v = find(&meta, ix_meta, s->svc.svc_id)))
			memcpy(&s->meta, v, sizeof(s->meta));
		read_counters(&p, p.svc_stats, COUNTER_SVC, s->svc.svc_id, &s->stats,
			      sizeof(s->stats));
		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++) {
			read_counters(&p, p.group_stats, COUNTER_GROUP,
				      KS_GROUP_KEY(s->svc.svc_id, j), &s->gstats[j],
				      sizeof(s->gstats[j]));
			if (!(flags & KS_COUNTERS_ENDPOINTS))
				continue;
			err = read_group(&p, s, j);
			if (err)
				goto out;
		}
	}
	*out = c;
	c = (struct ks_counters){};
	err = 0;
out:
	ks_counters_free(&c);
	free(refs);
	free(ix_meta);
	free(p.buf);
	batch_free(&svcs);
	batch_free(&meta);
	if (p.svc >= 0)
		close(p.svc);
	if (p.be >= 0)
		close(p.be);
	if (p.ep_stats >= 0)
		close(p.ep_stats);
	if (p.svc_stats >= 0)
		close(p.svc_stats);
	if (p.group_stats >= 0)
		close(p.group_stats);
	if (p.ep_health >= 0)
		close(p.ep_health);
	if (p.meta >= 0)
		close(p.meta);
	return err;
}

int ks_counters_read(const char *pin_dir, struct ks_counters *out)
{
	return ks_counters_read_ex(pin_dir, KS_COUNTERS_ENDPOINTS, out);
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
