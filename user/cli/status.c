// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <ksplit/abi.h>
#include "image/image.h"
#include "common/log.h"
#include "cli/status.h"
#include "common/sys.h"

struct pinned {
	int svc, be, ep_stats, ep_health, svc_stats, meta;
	uint64_t now;	/* CLOCK_MONOTONIC ns, the clock of bpf_ktime_get_ns() */
	int ncpus;
};

static int open_pin(const char *dir, const char *name, int *fd)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		int err = -errno;

		pr_warn("cannot open pinned map (is ksplit running or was it started with another --pin-dir?)",
			"path=%s err=%d", path, err);
		return err;
	}
	return 0;
}

/* Sum one u64 field over the per-CPU copies of an entry. */
static int percpu_sum(const struct pinned *p, int fd, uint32_t id, size_t vsz, size_t nfields,
		      uint64_t *sums)
{
	size_t stride = (vsz + 7) & ~7UL, c, f;
	uint8_t *buf = calloc(p->ncpus, stride);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	memset(sums, 0, nfields * sizeof(*sums));
	if (bpf_map_lookup_elem(fd, &id, buf)) {
		err = -errno;
		goto out;
	}
	for (c = 0; c < (size_t)p->ncpus; c++)
		for (f = 0; f < nfields; f++)
			sums[f] += ((uint64_t *)(buf + c * stride))[f];
out:
	free(buf);
	return err;
}

static const char *be_state(uint8_t flags)
{
	if (flags & KS_BE_F_PANIC)
		return "panic";
	if (flags & KS_BE_F_UNHEALTHY)
		return "unhealthy";
	if (flags & KS_BE_F_UNCHECKED)
		return "unchecked";
	if (flags & KS_BE_F_TERMINATING)
		return "terminating";
	if (flags & KS_BE_F_NOT_READY)
		return "not-ready";
	return "active";
}

static struct json_object *group_json(const struct pinned *p, const struct ks_svc *v, uint32_t j,
				      const struct ks_svc_meta *meta, uint64_t *observed)
{
	const char *name = meta->backend[j];
	const struct ks_group *g = &v->groups[j];
	uint32_t prev = j ? v->groups[j - 1].weight_end : 0, k;
	uint32_t weight = g->weight_end - prev;
	struct json_object *o = json_object_new_object(), *eps = json_object_new_array();

	*observed = 0;
	json_object_object_add(o, "backend", json_object_new_string(name));
	/* weight: as configured; effective_weight: after empty-group shifting. */
	json_object_object_add(o, "weight", json_object_new_int64(meta->weight[j]));
	json_object_object_add(o, "effective_weight", json_object_new_int64(weight));
	json_object_object_add(o, "share",
			       json_object_new_double(v->total_weight ? (double)weight / v->total_weight : 0));
	json_object_object_add(o, "eligible", json_object_new_int64(g->be_count));
	json_object_object_add(o, "state", json_object_new_string(g->be_count ? "serving"
							     : weight ? "refusing" : "shifted"));
	for (k = 0; k < g->be_total; k++) {
		struct json_object *e = json_object_new_object();
		__u32 slot = g->be_base + k;
		struct ks_backend be = {};
		struct ks_ep_health h = {};
		char addr[INET6_ADDRSTRLEN] = "?";
		uint64_t c[3] = {};
		bool ej;

		if (!bpf_map_lookup_elem(p->be, &slot, &be)) {
			inet_ntop(be.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, be.addr, addr,
				  sizeof(addr));
			percpu_sum(p, p->ep_stats, be.ep_id, sizeof(struct ks_ep_stats), 3, c);
			bpf_map_lookup_elem(p->ep_health, &be.ep_id, &h);
		}
		ej = h.ejected_until > p->now;
		json_object_object_add(e, "address", json_object_new_string(addr));
		json_object_object_add(e, "port", json_object_new_int(ntohs(be.port)));
		json_object_object_add(e, "state", json_object_new_string(ej && !be.flags ? "ejected"
										   : be_state(be.flags)));
		json_object_object_add(e, "connections", json_object_new_int64(c[0]));
		json_object_object_add(e, "established", json_object_new_int64(c[1]));
		json_object_object_add(e, "failed", json_object_new_int64(c[2]));
		json_object_object_add(e, "consecutive_failures", json_object_new_int64(h.consec_fail));
		json_object_object_add(e, "ejections", json_object_new_int64(h.ejections));
		json_object_object_add(e, "ejected_for_ms",
				       json_object_new_int64(ej ? (int64_t)((h.ejected_until - p->now) / 1000000) : 0));
		json_object_array_add(eps, e);
		*observed += c[0];
	}
	json_object_object_add(o, "endpoints", eps);
	return o;
}

static struct json_object *service_json(const struct pinned *p, const struct ks_svc_key *key,
					const struct ks_svc *v)
{
	struct json_object *o = json_object_new_object(), *groups = json_object_new_array();
	struct ks_svc_meta meta = {};
	uint64_t st[2] = {}, observed[KS_MAX_GROUPS] = {}, total;
	char addr[INET6_ADDRSTRLEN] = "?";
	uint32_t j, n_refusing = 0, refusing_idx = 0;

	bpf_map_lookup_elem(p->meta, &v->svc_id, &meta);
	percpu_sum(p, p->svc_stats, v->svc_id, sizeof(struct ks_svc_stats), 2, st);
	inet_ntop(key->family == KS_FAMILY_V4 ? AF_INET : AF_INET6, key->addr, addr, sizeof(addr));
	json_object_object_add(o, "vip", json_object_new_string(addr));
	json_object_object_add(o, "port", json_object_new_int(ntohs(key->port)));
	json_object_object_add(o, "protocol",
			       json_object_new_string(key->proto == IPPROTO_UDP ? "UDP" : "TCP"));
	json_object_object_add(o, "family",
			       json_object_new_string(key->family == KS_FAMILY_V4 ? "IPv4" : "IPv6"));
	json_object_object_add(o, "route", json_object_new_string(meta.route));
	json_object_object_add(o, "rev", json_object_new_int64(v->rev));
	json_object_object_add(o, "mode", json_object_new_string(v->flags & KS_SVC_F_PANIC ? "panic"
								: v->flags & KS_SVC_F_DEGRADED ? "degraded" : "normal"));
	json_object_object_add(o, "passive_failures", json_object_new_int(v->passive_failures));
	json_object_object_add(o, "connections", json_object_new_int64(st[0]));
	json_object_object_add(o, "refused", json_object_new_int64(st[1]));
	total = st[0] + st[1];
	for (j = 0; j < v->n_groups && j < KS_MAX_GROUPS; j++) {
		uint32_t prev = j ? v->groups[j - 1].weight_end : 0;

		json_object_array_add(groups, group_json(p, v, j, &meta, &observed[j]));
		if (!v->groups[j].be_count && v->groups[j].weight_end > prev) {
			n_refusing++;
			refusing_idx = j;
		}
	}
	/*
	 * Refusals are counted per service, not per group: they can be put on a
	 * group only when a single group refuses. Otherwise the share stays null.
	 */
	if (n_refusing == 1)
		observed[refusing_idx] = st[1];
	for (j = 0; j < v->n_groups && j < KS_MAX_GROUPS; j++) {
		struct json_object *g = json_object_array_get_idx(groups, j);
		uint32_t prev = j ? v->groups[j - 1].weight_end : 0;
		/* A group that refuses nothing (serving, or weight 0/shifted) is fully counted. */
		bool known = v->groups[j].be_count || n_refusing == 1 ||
			     v->groups[j].weight_end == prev;

		json_object_object_add(g, "connections", json_object_new_int64(observed[j]));
		json_object_object_add(g, "observed_share",
				       known && total ? json_object_new_double((double)observed[j] / total)
						      : NULL);
	}
	json_object_object_add(o, "groups", groups);
	return o;
}

static int cmp_key(const void *a, const void *b)
{
	return ks_svc_key_cmp(a, b);
}

int ks_status_collect(const char *pin_dir, struct json_object **out)
{
	struct pinned p = { -1, -1, -1, -1, -1, -1, 0, 0 };
	struct timespec ts;
	struct ks_svc_key *keys = NULL, k, next;
	struct json_object *root = NULL, *svcs;
	size_t n = 0, alloc = 0, i;
	void *prev = NULL;
	int err;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	p.ncpus = libbpf_num_possible_cpus();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p.now = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	if ((err = open_pin(pin_dir, "ks_services", &p.svc)) ||
	    (err = open_pin(pin_dir, "ks_backends", &p.be)) ||
	    (err = open_pin(pin_dir, "ks_ep_stats", &p.ep_stats)) ||
	    (err = open_pin(pin_dir, "ks_ep_health", &p.ep_health)) ||
	    (err = open_pin(pin_dir, "ks_svc_stats", &p.svc_stats)) ||
	    (err = open_pin(pin_dir, "ks_svc_meta", &p.meta)))
		goto out;
	while (!bpf_map_get_next_key(p.svc, prev, &next)) {
		if (n == alloc) {
			struct ks_svc_key *nk;

			alloc = alloc ? alloc * 2 : 64;
			nk = realloc(keys, alloc * sizeof(*keys));
			if (!nk) {
				err = -ENOMEM;
				goto out;
			}
			keys = nk;
		}
		keys[n++] = next;
		k = next;
		prev = &k;
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	root = json_object_new_object();
	svcs = json_object_new_array();
	json_object_object_add(root, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(root, "services", svcs);
	for (i = 0; i < n; i++) {
		struct ks_svc v;

		/* An entry deleted since the key walk is simply no longer there. */
		if (bpf_map_lookup_elem(p.svc, &keys[i], &v))
			continue;
		json_object_array_add(svcs, service_json(&p, &keys[i], &v));
	}
	*out = root;
	root = NULL;
	err = 0;
out:
	json_object_put(root);
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

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static void fmt_share(char *buf, size_t len, struct json_object *o, const char *k)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, k, &v) && v)
		snprintf(buf, len, "%.1f%%", 100.0 * json_object_get_double(v));
	else
		snprintf(buf, len, "-");
}

void ks_status_print_text(FILE *f, struct json_object *st)
{
	struct json_object *svcs;
	size_t i, j, k;

	if (!json_object_object_get_ex(st, "services", &svcs) || !json_object_array_length(svcs)) {
		fprintf(f, "no services (pin dir %s)\n", jstr(st, "pin_dir"));
		return;
	}
	for (i = 0; i < json_object_array_length(svcs); i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i), *groups;
		const char *vip = jstr(s, "vip");
		bool v6 = strchr(vip, ':');

		fprintf(f, "%s%s%s:%lld/%s  %s  rev %lld  mode %s  connections %lld  refused %lld\n",
			v6 ? "[" : "", vip, v6 ? "]" : "", (long long)jint(s, "port"),
			jstr(s, "protocol"), jstr(s, "route"), (long long)jint(s, "rev"),
			jstr(s, "mode"), (long long)jint(s, "connections"), (long long)jint(s, "refused"));
		fprintf(f, "  %-40s %8s %8s %9s %12s  %s\n", "BACKEND", "WEIGHT", "SHARE", "OBSERVED",
			"CONNECTIONS", "STATE / ESTABLISHED FAILED");
		json_object_object_get_ex(s, "groups", &groups);
		for (j = 0; j < json_object_array_length(groups); j++) {
			struct json_object *g = json_object_array_get_idx(groups, j), *eps;
			char share[16], obs[16];

			fmt_share(share, sizeof(share), g, "share");
			fmt_share(obs, sizeof(obs), g, "observed_share");
			fprintf(f, "  %-40s %8lld %8s %9s %12lld  %s (%lld eligible)\n",
				jstr(g, "backend"), (long long)jint(g, "weight"), share, obs,
				(long long)jint(g, "connections"), jstr(g, "state"),
				(long long)jint(g, "eligible"));
			json_object_object_get_ex(g, "endpoints", &eps);
			for (k = 0; k < json_object_array_length(eps); k++) {
				struct json_object *e = json_object_array_get_idx(eps, k);
				const char *a = jstr(e, "address");
				char ap[80];

				snprintf(ap, sizeof(ap), "%s%s%s:%lld", strchr(a, ':') ? "[" : "", a,
					 strchr(a, ':') ? "]" : "", (long long)jint(e, "port"));
				fprintf(f, "    %-38s %8s %8s %9s %12lld  %s / %lld %lld\n", ap, "", "", "",
					(long long)jint(e, "connections"), jstr(e, "state"),
					(long long)jint(e, "established"), (long long)jint(e, "failed"));
			}
		}
	}
}
