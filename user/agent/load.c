// SPDX-License-Identifier: BSD-2-Clause
/*
 * Loading the config for the agent, from whichever source it runs with
 * (files, or the Kubernetes API through kube/), and logging what the load
 * found: every diagnostic, and every route that is not accepted with its
 * Gateway API reason.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/load.h"
#include "common/addr.h"
#include "common/log.h"
#include "config/config.h"
#include "image/image.h"
#include "kube/source.h"

static void log_diags(const struct ks_diags *diags)
{
	char q[4096];
	size_t i;

	for (i = 0; i < diags->n; i++) {
		ks_log_quote(q, sizeof(q), diags->v[i].msg);
		if (diags->v[i].warning)
			pr_warn("config warning", "detail=%s", q);
		else
			pr_warn("config error", "detail=%s", q);
	}
}

/* Every route that is not (wholly) accepted, with each refusing parent's reason. */
static size_t log_verdicts(const struct ks_model *m)
{
	char route[300], q[4096];
	size_t i, j, n = 0;

	for (i = 0; i < m->n_routes; i++) {
		const struct ksm_route_status *rs = &m->routes[i];

		if (ksm_route_accepted(rs))
			continue;
		n++;
		snprintf(route, sizeof(route), "%s %s/%s", rs->kind, rs->ns, rs->name);
		ks_log_quote(q, sizeof(q), route);
		if (rs->refused) {
			char d[4096];

			ks_log_quote(d, sizeof(d), rs->refused);
			pr_warn(rs->kept ? "route refused; its last good version stays in force"
					 : "route refused; not programmed",
				"route=%s source=%s reason=UnsupportedValue detail=%s", q, rs->source, d);
			continue;
		}
		for (j = 0; j < rs->n_parents; j++) {
			const struct ksm_parent_status *p = &rs->parents[j];
			char d[4096];

			if (p->accepted == KSM_R_ACCEPTED)
				continue;
			ks_log_quote(d, sizeof(d), p->accepted_msg ? p->accepted_msg : "");
			pr_warn("route not accepted by a parent; not programmed through it",
				"route=%s source=%s parent=%s/%s/%s reason=%s detail=%s", q, rs->source,
				p->kind, p->ns, p->name, ksm_reason_name(p->accepted), d);
		}
	}
	pr_info("config loaded", "routes=%zu not_accepted=%zu services=%zu", m->n_routes, n,
		m->n_svcs);
	return n;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

int ks_agent_patch(struct ks_kube *kube, struct ks_objects *objects, struct ks_model *m,
		   struct ks_model_patch *p)
{
	struct ks_kube_snap snap = {};
	struct ks_diags diags = {};
	uint64_t t0 = mono_us();
	int err;

	err = ks_kube_delta(kube, &snap);
	if (err)
		return err;
	err = ks_model_patch_slices(objects, m, (const char *const *)snap.names, snap.bufs,
				    snap.lens, snap.n, p, &diags);
	/* The patch took every slice of snap into objects. */
	if (!err)
		ks_kube_loaded(kube, &snap, NULL);
	pr_debug("kube: incremental load", "objects=%zu groups=%zu err=%d us=%llu", snap.n,
		 err ? 0 : p->n, err, (unsigned long long)(mono_us() - t0));
	ks_kube_snap_free(&snap);
	log_diags(&diags);
	ks_diags_free(&diags);
	return err;
}

void ks_agent_model_release(struct ks_model *m)
{
	if (m) {
		ks_model_free(m);
		free(m);
	}
}

struct ks_model *ks_agent_load(const struct ks_agent_opts *o, struct ks_kube *kube,
			       struct ks_objects **objects, struct ks_load_counts *c)
{
	struct ks_load_opts lo = { .allow_loopback_vips = o->allow_loopback_vips };
	struct ks_kube_snap snap = {};
	struct ks_diags diags = {};
	struct ks_model *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return NULL;
	if (kube) {
		uint64_t t0 = mono_us(), t1;
		bool *held = NULL;

		err = ks_kube_snapshot(kube, &snap);
		t1 = mono_us();
		if (!err && snap.n && !(held = calloc(snap.n, sizeof(*held))))
			err = -ENOMEM;
		if (!err)
			err = ks_model_load_objects(&lo, (const char *const *)snap.names, snap.bufs,
						    snap.lens, snap.reuse, snap.n, objects, held, m,
						    &diags);
		if (!err)
			ks_kube_loaded(kube, &snap, held);
		if (err == -ESTALE)
			ks_kube_refill(kube);
		/* For the incremental loads to come; without it they build it themselves. */
		if (!err)
			ks_model_index_deps(m);
		pr_debug("kube: load", "objects=%zu snapshot_us=%llu load_us=%llu", snap.n,
			 (unsigned long long)(t1 - t0), (unsigned long long)(mono_us() - t1));
		free(held);
		ks_kube_snap_free(&snap);
	} else {
		err = ks_model_load_opts(&lo, o->configs, o->n_configs, objects, m, &diags);
	}
	log_diags(&diags);
	memset(c, 0, sizeof(*c));
	c->errors = diags.n_errors;
	c->warnings = diags.n - diags.n_errors;
	ks_diags_free(&diags);
	if (err) {
		pr_warn("config not loaded; the last good config stays in force", "err=%d", err);
		ks_agent_model_release(m);
		return NULL;
	}
	c->routes = m->n_routes;
	c->not_accepted = log_verdicts(m);
	return m;
}

/*
 * A load holds two configs' objects, models and map images at once (at
 * 50,000 services several hundred MB); once the old ones are freed, give
 * the pages back, or the agent keeps its reload peak for good.
 */
void ks_agent_trim_heap(const char *why)
{
	struct mallinfo2 mi = mallinfo2();

	malloc_trim(0);
	pr_debug("heap trimmed", "reason=%s in_use=%zu free=%zu mmapped=%zu", why, mi.uordblks,
		 mi.fordblks, mi.hblkhd);
}

void ks_agent_log_flags(const struct ks_image *img)
{
	size_t i;

	for (i = 0; i < img->n; i++) {
		const struct ksi_service *s = &img->svcs[i];
		char vip[64], route[160];

		if (!(s->flags & (KS_SVC_F_PANIC | KS_SVC_F_DEGRADED)))
			continue;
		ks_fmt_addrport(vip, sizeof(vip), s->key.family, s->key.addr, s->key.port);
		ks_log_quote(route, sizeof(route), ksi_meta_route(s->meta));
		if (s->flags & KS_SVC_F_PANIC)
			pr_warn("panic: no group has an eligible endpoint; health is ignored",
				"vip=%s route=%s", vip, route);
		else
			pr_warn("degraded: a group has no eligible endpoint; its weight is shifted",
				"vip=%s route=%s", vip, route);
	}
}
