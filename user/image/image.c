// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

int ks_svc_key_cmp(const struct ks_svc_key *a, const struct ks_svc_key *b)
{
	return memcmp(a, b, sizeof(*a));
}

uint8_t ksi_endpoint_flags(const struct ksm_endpoint *ep)
{
	uint8_t f = 0;

	if (!ep->ready)
		f |= KS_BE_F_NOT_READY;
	if (ep->terminating)
		f |= KS_BE_F_TERMINATING;
	return f;
}

static void set_addr(uint32_t *dst, const struct ksm_addr *a)
{
	memset(dst, 0, 16);
	memcpy(dst, a->bytes, a->family == KS_FAMILY_V4 ? 4 : 16);
}

static int be_cmp(const void *pa, const void *pb)
{
	const struct ks_backend *a = pa, *b = pb;
	bool ea = ksi_eligible(a->flags), eb = ksi_eligible(b->flags);

	/* Eligible first, then by address: a stable order makes diffs cheap. */
	if (ea != eb)
		return ea ? -1 : 1;
	return memcmp(a, b, offsetof(struct ks_backend, flags));
}

static void count_eligible(struct ksi_group *g)
{
	uint32_t i;

	if (!g->n_total) {
		g->n_elig = 0;
		return;
	}
	qsort(g->be, g->n_total, sizeof(*g->be), be_cmp);
	for (i = 0; i < g->n_total && ksi_eligible(g->be[i].flags); i++)
		;
	g->n_elig = i;
}

static int build_group(const struct ksm_group *mg, uint8_t family,
		       const struct ks_health_view *hv, struct ksi_group *g)
{
	size_t i, n = 0;

	g->weight = mg->weight;
	/* An invalid backendRef keeps its weight and no endpoints: its share is refused. */
	if (mg->invalid != KSM_REF_OK || !mg->n_eps)
		return 0;
	g->be = calloc(mg->n_eps, sizeof(*g->be));
	if (!g->be)
		return -ENOMEM;
	for (i = 0; i < mg->n_eps; i++) {
		const struct ksm_endpoint *ep = &mg->eps[i];
		struct ks_backend *be = &g->be[n];

		if (ep->addr.family != family)
			continue;
		set_addr(be->addr, &ep->addr);
		be->port = htons(ep->port);
		be->family = family;
		be->flags = ksi_endpoint_flags(ep);
		if (hv)
			be->flags |= hv->flags(hv->ctx, mg, ep);
		n++;
	}
	g->n_total = n;
	count_eligible(g);
	return 0;
}

/* Panic and empty-group handling, once every group of a service is built. */
static void apply_group_policy(const struct ksm_service *ms, struct ksi_service *s)
{
	bool reject = ms->ann_empty_group && !strcmp(ms->ann_empty_group, "reject");
	uint32_t j, k, elig = 0, total = 0;

	for (j = 0; j < s->n_groups; j++)
		elig += s->groups[j].n_elig;
	if (!elig) {
		bool any = false;

		/* Fail open like Envoy and ELB: health verdicts are dropped, readiness is not. */
		for (j = 0; j < s->n_groups; j++) {
			struct ksi_group *g = &s->groups[j];

			for (k = 0; k < g->n_total; k++) {
				if (!(g->be[k].flags & KS_BE_F_HEALTH) ||
				    (g->be[k].flags & (KS_BE_F_NOT_READY | KS_BE_F_TERMINATING)))
					continue;
				g->be[k].flags = (g->be[k].flags & ~KS_BE_F_HEALTH) | KS_BE_F_PANIC;
				any = true;
			}
			count_eligible(g);
		}
		if (any)
			s->flags |= KS_SVC_F_PANIC;
	}
	for (j = 0; j < s->n_groups; j++) {
		struct ksi_group *g = &s->groups[j];

		/* Only a group with endpoints, none of them eligible, is "empty". */
		if (!reject && g->n_total && !g->n_elig && g->weight &&
		    ms->groups[j].invalid == KSM_REF_OK) {
			g->weight = 0;
			s->flags |= KS_SVC_F_DEGRADED;
		}
		total += g->weight;
	}
	s->total_weight = total;
}

static int svc_cmp(const void *pa, const void *pb)
{
	return ks_svc_key_cmp(&((const struct ksi_service *)pa)->key,
			      &((const struct ksi_service *)pb)->key);
}

int ks_image_build(const struct ks_model *m, struct ks_image *out)
{
	return ks_image_build_health(m, NULL, out);
}

int ks_image_build_health(const struct ks_model *m, const struct ks_health_view *hv,
			  struct ks_image *out)
{
	struct ks_image img = {};
	struct ks_svc_meta meta;
	size_t i, j;
	int err = 0;

	if (m->n_svcs) {
		img.svcs = calloc(m->n_svcs, sizeof(*img.svcs));
		if (!img.svcs)
			return -ENOMEM;
	}
	for (i = 0; i < m->n_svcs; i++) {
		const struct ksm_service *ms = &m->svcs[i];
		struct ksi_service *s = &img.svcs[i];

		img.n = i + 1;
		if (ms->n_groups > KS_MAX_GROUPS) {
			err = -E2BIG;
			goto out;
		}
		set_addr(s->key.addr, &ms->vip);
		s->key.port = htons(ms->port);
		s->key.proto = ms->proto;
		s->key.family = ms->vip.family;
		s->n_groups = ms->n_groups;
		memset(&meta, 0, sizeof(meta));
		snprintf(meta.route, sizeof(meta.route), "%s", ms->route ? ms->route : "");
		/* The parser has validated the annotation's range. */
		s->passive_failures = ms->ann_passive_failures ? atoi(ms->ann_passive_failures)
							       : KS_PASSIVE_DEFAULT;
		for (j = 0; j < ms->n_groups; j++) {
			const struct ksm_group *mg = &ms->groups[j];

			err = build_group(mg, ms->vip.family, hv, &s->groups[j]);
			if (err)
				goto out;
			img.n_backends += s->groups[j].n_total;
			meta.weight[j] = mg->weight;
			snprintf(meta.backend[j], sizeof(meta.backend[j]), "%s/%s:%u",
				 mg->svc_ns ? mg->svc_ns : "", mg->svc_name ? mg->svc_name : "",
				 mg->svc_port);
		}
		if (!(s->meta = ksi_meta_pack(&meta))) {
			err = -ENOMEM;
			goto out;
		}
		apply_group_policy(ms, s);
	}
	qsort(img.svcs, img.n, sizeof(*img.svcs), svc_cmp);
	for (i = 1; i < img.n; i++) {
		if (!ks_svc_key_cmp(&img.svcs[i - 1].key, &img.svcs[i].key)) {
			/* The model promises unique keys; a duplicate is a model bug. */
			err = -EEXIST;
			goto out;
		}
	}
out:
	if (err)
		ks_image_free(&img);
	else
		*out = img;
	return err;
}

void ks_image_free(struct ks_image *img)
{
	size_t i, j;

	for (i = 0; i < img->n; i++) {
		for (j = 0; j < img->svcs[i].n_groups; j++)
			free(img->svcs[i].groups[j].be);
		free(img->svcs[i].meta);
	}
	free(img->svcs);
	memset(img, 0, sizeof(*img));
}

bool ksi_service_equal(const struct ksi_service *a, const struct ksi_service *b)
{
	uint32_t j, k;

	if (ks_svc_key_cmp(&a->key, &b->key) || a->n_groups != b->n_groups ||
	    a->total_weight != b->total_weight || a->passive_failures != b->passive_failures ||
	    a->flags != b->flags || !ksi_meta_equal(a->meta, b->meta))
		return false;
	for (j = 0; j < a->n_groups; j++) {
		const struct ksi_group *ga = &a->groups[j], *gb = &b->groups[j];

		if (ga->weight != gb->weight || ga->n_elig != gb->n_elig || ga->n_total != gb->n_total)
			return false;
		for (k = 0; k < ga->n_total; k++)
			if (memcmp(&ga->be[k], &gb->be[k], offsetof(struct ks_backend, ep_id)))
				return false;
	}
	return true;
}

/* Appends the name in s[0..max) and a NUL; a name that fills its array has none there. */
static char *put_name(char *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	memcpy(w, s, n);
	w[n] = '\0';
	return w + n + 1;
}

struct ksi_meta *ksi_meta_pack(const struct ks_svc_meta *m)
{
	size_t n = strnlen(m->route, sizeof(m->route)) + 1 + sizeof(m->weight), j;
	struct ksi_meta *p;
	char *w;

	for (j = 0; j < KS_MAX_GROUPS; j++)
		n += strnlen(m->backend[j], sizeof(m->backend[j])) + 1;
	if (!(p = malloc(sizeof(*p) + n)))
		return NULL;
	p->len = n;
	w = put_name(p->b, m->route, sizeof(m->route));
	for (j = 0; j < KS_MAX_GROUPS; j++)
		w = put_name(w, m->backend[j], sizeof(m->backend[j]));
	memcpy(w, m->weight, sizeof(m->weight));
	return p;
}

struct ksi_meta *ksi_meta_dup(const struct ksi_meta *p)
{
	struct ksi_meta *d = p ? malloc(sizeof(*p) + p->len) : NULL;

	if (d)
		memcpy(d, p, sizeof(*p) + p->len);
	return d;
}

void ksi_meta_unpack(const struct ksi_meta *p, struct ks_svc_meta *m)
{
	const char *r;
	size_t j, n;

	memset(m, 0, sizeof(*m));
	if (!p)
		return;
	r = p->b;
	n = strlen(r);
	memcpy(m->route, r, n);
	r += n + 1;
	for (j = 0; j < KS_MAX_GROUPS; j++) {
		n = strlen(r);
		memcpy(m->backend[j], r, n);
		r += n + 1;
	}
	memcpy(m->weight, r, sizeof(m->weight));
}

bool ksi_meta_equal(const struct ksi_meta *a, const struct ksi_meta *b)
{
	if (!a || !b)
		return a == b;
	return a->len == b->len && !memcmp(a->b, b->b, a->len);
}

const char *ksi_meta_route(const struct ksi_meta *p)
{
	return p ? p->b : "";
}

const char *ksi_meta_backend(const struct ksi_meta *p, uint32_t j)
{
	const char *c;

	if (!p || j >= KS_MAX_GROUPS)
		return "";
	/* The route, then the backends, each NUL-terminated (ksi_meta_pack). */
	for (c = p->b + strlen(p->b) + 1; j; j--)
		c += strlen(c) + 1;
	return c;
}
