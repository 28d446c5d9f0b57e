// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "health/checks.h"
#include "common/log.h"

struct ks_checks {
	struct ks_prober *prober;
	const struct ks_model *m;
	size_t n_targets;
	size_t n_rec, alloc_rec;
	struct ks_probe_target *rec;	/* recovered since the last clear */
	void (*on_change)(void *ctx);
	void *ctx;
	uint64_t to_healthy, to_unhealthy;
};

static void changed(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
		    enum ks_hstate now, const char *reason)
{
	struct ks_checks *c = ctx;

	(void)reason;
	if (now == KS_H_HEALTHY)
		c->to_healthy++;
	else if (now == KS_H_UNHEALTHY)
		c->to_unhealthy++;
	if (old == KS_H_UNHEALTHY && now == KS_H_HEALTHY) {
		if (c->n_rec == c->alloc_rec) {
			size_t na = c->alloc_rec ? c->alloc_rec * 2 : 16;
			struct ks_probe_target *nv = realloc(c->rec, na * sizeof(*nv));

			/* Losing one only delays its return to the end of the ejection time. */
			if (!nv)
				goto out;
			c->rec = nv;
			c->alloc_rec = na;
		}
		c->rec[c->n_rec++] = *t;
	}
out:
	/* The prober logs the change itself; here it means "re-image". */
	c->on_change(c->ctx);
}

int ks_checks_new(struct ks_checks **out, void (*on_change)(void *ctx), void *ctx)
{
	struct ks_checks *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->on_change = on_change;
	c->ctx = ctx;
	err = ks_prober_new(&c->prober, changed, c);
	if (err) {
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

void ks_checks_free(struct ks_checks *c)
{
	if (!c)
		return;
	ks_prober_free(c->prober);
	free(c->rec);
	free(c);
}

static const struct ksm_health *policy_for(const struct ks_model *m, const char *ns,
					   const char *name)
{
	size_t i;

	for (i = 0; m && i < m->n_health; i++)
		if (!strcmp(m->health[i].svc_ns, ns) && !strcmp(m->health[i].svc_name, name))
			return &m->health[i];
	return NULL;
}

static bool same_target(const struct ks_probe_target *t, const struct ksm_endpoint *ep)
{
	return t->port == ep->port && t->addr.family == ep->addr.family &&
	       !memcmp(t->addr.bytes, ep->addr.bytes, 16);
}

/*
 * A Service reached through a TCPRoute, or a TLSRoute (the clients' TLS
 * passes through to it), has no plain HTTP to speak: connect-only checks.
 */
static bool via_l4_route(const struct ksm_service *s)
{
	return s->route && (!strncmp(s->route, "TCPRoute", 8) || !strncmp(s->route, "TLSRoute", 8));
}

int ks_checks_set_model(struct ks_checks *c, const struct ks_model *m)
{
	struct ks_probe_target *t = NULL;
	size_t n = 0, alloc = 0, i, j, k, x;
	int err = 0;

	for (i = 0; i < m->n_svcs; i++) {
		const struct ksm_service *s = &m->svcs[i];

		for (j = 0; j < s->n_groups; j++) {
			const struct ksm_group *g = &s->groups[j];
			const struct ksm_health *h;
			struct ks_probe_spec spec;
			char msg[256];

			if (g->invalid || !(h = policy_for(m, g->svc_ns, g->svc_name)))
				continue;
			err = ks_probe_spec_from_health(h, via_l4_route(s), &spec, msg, sizeof(msg));
			if (err == -ENODATA) {
				err = 0;
				continue;
			}
			if (err) {
				pr_warn("invalid healthCheck", "policy=\"%s\" detail=\"%s\"",
					h->source ? h->source : "", msg);
				goto out;
			}
			for (k = 0; k < g->n_eps; k++) {
				const struct ksm_endpoint *ep = &g->eps[k];

				/* One pod behind two VIPs (v4 and v6 routes) is one target. */
				for (x = 0; x < n && !same_target(&t[x], ep); x++)
					;
				if (x < n)
					continue;
				if (n == alloc) {
					struct ks_probe_target *nt;

					alloc = alloc ? alloc * 2 : 64;
					nt = realloc(t, alloc * sizeof(*t));
					if (!nt) {
						err = -ENOMEM;
						goto out;
					}
					t = nt;
				}
				t[n].addr = ep->addr;
				t[n].port = ep->port;
				t[n].spec = spec;
				n++;
			}
		}
	}
	err = ks_prober_set_targets(c->prober, t, n);
	if (err) {
		pr_warn("cannot set health check targets", "err=%d", err);
		goto out;
	}
	c->m = m;
	c->n_targets = n;
	pr_info("active checks", "targets=%zu", n);
out:
	free(t);
	return err;
}

static uint8_t view_flags(void *ctx, const struct ksm_group *g, const struct ksm_endpoint *ep)
{
	struct ks_checks *c = ctx;
	enum ks_hstate st;

	if (!policy_for(c->m, g->svc_ns, g->svc_name))
		return 0;
	/* A disabled policy has no target: the endpoint follows readiness alone. */
	if (ks_prober_state(c->prober, &ep->addr, ep->port, &st))
		return 0;
	if (st == KS_H_UNHEALTHY)
		return KS_BE_F_UNHEALTHY;
	return st == KS_H_HEALTHY ? 0 : KS_BE_F_UNCHECKED;
}

void ks_checks_view(struct ks_checks *c, struct ks_health_view *hv)
{
	hv->flags = view_flags;
	hv->ctx = c;
}

size_t ks_checks_targets(const struct ks_checks *c)
{
	return c->n_targets;
}

bool ks_checks_settled(struct ks_checks *c)
{
	size_t i, j, k;

	for (i = 0; c->m && i < c->m->n_svcs; i++)
		for (j = 0; j < c->m->svcs[i].n_groups; j++)
			for (k = 0; k < c->m->svcs[i].groups[j].n_eps; k++) {
				const struct ksm_endpoint *ep = &c->m->svcs[i].groups[j].eps[k];
				enum ks_hstate st;

				if (!ks_prober_state(c->prober, &ep->addr, ep->port, &st) &&
				    st == KS_H_UNKNOWN)
					return false;
			}
	return true;
}

bool ks_checks_recovered(struct ks_checks *c, const struct ksm_addr *a, uint16_t port)
{
	size_t i;

	for (i = 0; i < c->n_rec; i++)
		if (c->rec[i].port == port && c->rec[i].addr.family == a->family &&
		    !memcmp(c->rec[i].addr.bytes, a->bytes, 16))
			return true;
	return false;
}

size_t ks_checks_n_recovered(const struct ks_checks *c)
{
	return c->n_rec;
}

void ks_checks_clear_recovered(struct ks_checks *c)
{
	c->n_rec = 0;
}

void ks_checks_counts(struct ks_checks *c, struct ks_checks_counts *out)
{
	struct ks_prober_stats st;

	ks_prober_get_stats(c->prober, &st);
	out->to_healthy = c->to_healthy;
	out->to_unhealthy = c->to_unhealthy;
	out->checks = st.checks;
	out->failures = st.failures;
}

int ks_checks_fd(struct ks_checks *c)
{
	return ks_prober_fd(c->prober);
}

int ks_checks_dispatch(struct ks_checks *c)
{
	return ks_prober_dispatch(c->prober);
}
