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
 * Sum the per-CPU copies of one entry, a value of vsz bytes of u64
 * counters, into sums. On error sums stay zero.
 */
static int percpu_sum(const struct pinned *p, int fd, uint32_t id, void *sums, size_t vsz)
{
	size_t stride = (vsz + 7) & ~7UL, c, f, nfields = vsz / sizeof(uint64_t);
	uint8_t *buf = calloc(p->ncpus, stride);
	uint64_t *out = sums;
	int err = 0;

	memset(sums, 0, vsz);
	if (!buf)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &id, buf)) {
		err = -errno;
		goto out;
	}
	for (c = 0; c < (size_t)p->ncpus; c++)
		for (f = 0; f < nfields; f++)
			out[f] += ((uint64_t *)(buf + c * stride))[f];
out:
	free(buf);
	return err;
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
		percpu_sum(p, p->ep_stats, e->be.ep_id, &e->stats, sizeof(e->stats));
		bpf_map_lookup_elem(p->ep_health, &e->be.ep_id, &e->health);
	}
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return ks_svc_key_cmp(a, b);
}

/* Keys of every service, sorted; *keys is malloc'ed. */
static int read_keys(int fd, struct ks_svc_key **keys, size_t *n)
{
	struct ks_svc_key k, next;
	size_t alloc = 0;
	void *prev = NULL;

	*keys = NULL;
	*n = 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (*n == alloc) {
			struct ks_svc_key *nk;

			alloc = alloc ? alloc * 2 : 64;
			nk = realloc(*keys, alloc * sizeof(*nk));
			if (!nk)
				return -ENOMEM;
			*keys = nk;
		}
		(*keys)[(*n)++] = next;
		k = next;
		prev = &k;
	}
	qsort(*keys, *n, sizeof(**keys), cmp_key);
	return 0;
}

int ks_counters_read(const char *pin_dir, struct ks_counters *out)
{
	struct pinned p = { -1, -1, -1, -1, -1, -1, 0 };
	struct ks_counters c = {};
	struct ks_svc_key *keys = NULL;
	struct timespec ts;
	size_t n = 0, i;
	uint32_t j;
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
	err = read_keys(p.svc, &keys, &n);
	if (err)
		goto out;
	c.svcs = calloc(n ? n : 1, sizeof(*c.svcs));
	if (!c.svcs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct ks_svc_counters *s = &c.svcs[c.n_svcs];

		s->key = keys[i];
		/* An entry deleted since the key walk is simply no longer there. */
		if (bpf_map_lookup_elem(p.svc, &s->key, &s->svc))
			continue;
		c.n_svcs++;
		/* Missing names or counters only make the report poorer. */
		bpf_map_lookup_elem(p.meta, &s->svc.svc_id, &s->meta);
		percpu_sum(&p, p.svc_stats, s->svc.svc_id, &s->stats, sizeof(s->stats));
		for (j = 0; j < s->svc.n_groups && j < KS_MAX_GROUPS; j++) {
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
	free(keys);
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
