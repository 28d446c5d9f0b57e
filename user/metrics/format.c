// SPDX-License-Identifier: BSD-2-Clause
/*
 * Rendering only: every number comes from the caller. A family's samples
 * must be contiguous in the text format, so each family walks all services
 * once; the labels are rebuilt per walk into stack buffers rather than
 * kept, so a scrape holds no memory but the text it returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "metrics/format.h"

/* Labels of one backendRef (and one endpoint): 8 values of <= 128 bytes, each escaped at most 2x. */
#define LABELS_MAX 4096

void ks_mbuf_printf(struct ks_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->len += n;
			return;
		}
		{
			size_t nc = b->cap ? b->cap * 2 : 65536;
			char *ns;

			while (nc < b->len + n + 1)
				nc *= 2;
			ns = realloc(b->s, nc);
			if (!ns) {
				b->err = -ENOMEM;
				return;
			}
			b->s = ns;
			b->cap = nc;
		}
	}
}

void ks_mbuf_free(struct ks_mbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

void ks_agent_metrics_observe_apply(struct ks_agent_metrics *a, double seconds)
{
	static const double le[KS_N_APPLY_BUCKETS] = KS_APPLY_BUCKETS;
	size_t i;

	a->apply_count++;
	a->apply_sum += seconds;
	for (i = 0; i < KS_N_APPLY_BUCKETS; i++) {
		if (seconds <= le[i]) {
			a->apply_buckets[i]++;
			break;
		}
	}
}

/* `name="value"` with \, " and newline escaped as the text format requires. */
static size_t label(char *out, size_t len, size_t at, const char *name, const char *v, size_t vlen)
{
	size_t i, nlen = strlen(name);

	if (at + nlen + 4 >= len)
		return at;
	if (at)
		out[at++] = ',';
	memcpy(out + at, name, nlen);
	at += nlen;
	out[at++] = '=';
	out[at++] = '"';
	for (i = 0; i < vlen && v[i] && at + 3 < len; i++) {
		if (v[i] == '\\' || v[i] == '"') {
			out[at++] = '\\';
			out[at++] = v[i];
		} else if (v[i] == '\n') {
			out[at++] = '\\';
			out[at++] = 'n';
		} else {
			out[at++] = v[i];
		}
	}
	if (at + 1 < len)
		out[at++] = '"';
	out[at < len ? at : len - 1] = '\0';
	return at;
}

static size_t label_str(char *out, size_t len, size_t at, const char *name, const char *v)
{
	return label(out, len, at, name, v, strlen(v));
}

/*
 * The VIP's labels: the route ("HTTPRoute ns/name" in the pins) split into
 * namespace and route, then vip, port, protocol.
 */
static size_t svc_labels(char *out, size_t len, const struct ks_svc_counters *s)
{
	const char *r = s->meta.route, *sp, *sl;
	char vip[INET6_ADDRSTRLEN] = "?", port[8];
	size_t at = 0, rlen = strnlen(r, sizeof(s->meta.route));

	sp = memchr(r, ' ', rlen);
	sp = sp ? sp + 1 : r;
	sl = memchr(sp, '/', rlen - (sp - r));
	at = label(out, len, at, "namespace", sp, sl ? (size_t)(sl - sp) : 0);
	at = label(out, len, at, "route", sl ? sl + 1 : sp, rlen - ((sl ? sl + 1 : sp) - r));
	inet_ntop(s->key.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, s->key.addr, vip, sizeof(vip));
	at = label_str(out, len, at, "vip", vip);
	snprintf(port, sizeof(port), "%u", ntohs(s->key.port));
	at = label_str(out, len, at, "port", port);
	return label_str(out, len, at, "protocol", s->key.proto == IPPROTO_UDP ? "UDP" : "TCP");
}

/* The VIP's labels plus the backendRef ("ns/name:port" in the pins): service, backend_namespace, backend. */
static size_t group_labels(char *out, size_t len, const struct ks_svc_counters *s, uint32_t j)
{
	const char *b = s->meta.backend[j], *sl, *co;
	size_t blen = strnlen(b, sizeof(s->meta.backend[j])), at;

	at = svc_labels(out, len, s);
	sl = memchr(b, '/', blen);
	for (co = b + blen; co > b && co[-1] != ':'; co--)
		;
	co = co > b ? co - 1 : NULL;
	if (!sl || !co || co < sl)
		sl = co = NULL;
	at = label(out, len, at, "service", sl ? sl + 1 : b, sl ? (size_t)(co - sl - 1) : blen);
	at = label(out, len, at, "backend_namespace", b, sl ? (size_t)(sl - b) : 0);
	return label(out, len, at, "backend", b, blen);
}

static void head(struct ks_mbuf *b, const char *name, const char *type, const char *help)
{
	ks_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint32_t n_groups(const struct ks_svc_counters *s)
{
	return s->svc.n_groups < KS_MAX_GROUPS ? s->svc.n_groups : KS_MAX_GROUPS;
}

/* Room for len more bytes (and a NUL); false once b->err is set. */
static bool reserve(struct ks_mbuf *b, size_t len)
{
	size_t nc;
	char *ns;

	if (b->err)
		return false;
	if (b->len + len < b->cap)
		return true;
	for (nc = b->cap ? b->cap * 2 : 65536; nc <= b->len + len; nc *= 2)
		;
	ns = realloc(b->s, nc);
	if (!ns) {
		b->err = -ENOMEM;
		return false;
	}
	b->s = ns;
	b->cap = nc;
	return true;
}

static void put(struct ks_mbuf *b, const char *p, size_t len)
{
	if (!reserve(b, len))
		return;
	memcpy(b->s + b->len, p, len);
	b->len += len;
	b->s[b->len] = '\0';
}

/* `name{labels} value\n` without printf: at 10,000 services a scrape writes 100,000+ of them. */
static void sample(struct ks_mbuf *b, const char *name, size_t nlen, const char *labels, size_t llen,
		   uint64_t v)
{
	char num[24];
	size_t n = sizeof(num);

	do {
		num[--n] = '0' + v % 10;
		v /= 10;
	} while (v);
	if (!reserve(b, nlen + llen + sizeof(num) + 4))
		return;
	memcpy(b->s + b->len, name, nlen);
	b->len += nlen;
	b->s[b->len++] = '{';
	memcpy(b->s + b->len, labels, llen);
	b->len += llen;
	b->s[b->len++] = '}';
	b->s[b->len++] = ' ';
	memcpy(b->s + b->len, num + n, sizeof(num) - n);
	b->len += sizeof(num) - n;
	b->s[b->len++] = '\n';
	b->s[b->len] = '\0';
}

/*
 * Every service's and backendRef's label set, escaped once per scrape
 * rather than once per family: svc[i] and grp[first[i] + j] are offsets
 * into text (NUL-terminated). Freed at the end of the scrape.
 */
struct labels {
	struct ks_mbuf text;
	size_t *svc, *grp, *first;
	uint32_t *svc_len, *grp_len;
};

static int labels_build(struct labels *l, const struct ks_counters *c)
{
	char buf[LABELS_MAX];
	size_t i, total = 0;
	uint32_t j;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < c->n_svcs; i++)
		total += n_groups(&c->svcs[i]);
	l->svc = malloc((c->n_svcs + 1) * sizeof(*l->svc));
	l->first = malloc((c->n_svcs + 1) * sizeof(*l->first));
	l->grp = malloc((total + 1) * sizeof(*l->grp));
	l->svc_len = malloc((c->n_svcs + 1) * sizeof(*l->svc_len));
	l->grp_len = malloc((total + 1) * sizeof(*l->grp_len));
	if (!l->svc || !l->first || !l->grp || !l->svc_len || !l->grp_len)
		return -ENOMEM;
	total = 0;
	for (i = 0; i < c->n_svcs; i++) {
		const struct ks_svc_counters *s = &c->svcs[i];

		l->svc[i] = l->text.len;
		l->svc_len[i] = svc_labels(buf, sizeof(buf), s);
		put(&l->text, buf, l->svc_len[i] + 1);
		l->first[i] = total;
		for (j = 0; j < n_groups(s); j++, total++) {
			l->grp[total] = l->text.len;
			l->grp_len[total] = group_labels(buf, sizeof(buf), s, j);
			put(&l->text, buf, l->grp_len[total] + 1);
		}
	}
	return l->text.err;
}

static void labels_free(struct labels *l)
{
	ks_mbuf_free(&l->text);
	free(l->svc);
	free(l->grp);
	free(l->first);
	free(l->svc_len);
	free(l->grp_len);
}

enum svc_field { SVC_CONNECTS, SVC_REFUSED };

static void svc_family(struct ks_mbuf *b, const struct ks_counters *c, const struct labels *l,
		       const char *name, const char *help, enum svc_field f)
{
	size_t i, nlen = strlen(name);

	head(b, name, "counter", help);
	for (i = 0; i < c->n_svcs; i++) {
		const struct ks_svc_counters *s = &c->svcs[i];

		sample(b, name, nlen, l->text.s + l->svc[i], l->svc_len[i],
		       f == SVC_CONNECTS ? s->stats.connects : s->stats.refused);
	}
}

enum group_field {
	G_CONNECTS, G_REFUSED, G_EJECTIONS, G_WEIGHT, G_EFFECTIVE, G_ELIGIBLE, G_LISTED,
	G_FAILED, G_EJECTED,	/* from the endpoint slots: --metrics-endpoints only */
};

static uint64_t group_value(const struct ks_counters *c, const struct ks_svc_counters *s,
			    uint32_t j, enum group_field f)
{
	const struct ks_group *g = &s->svc.groups[j];
	uint64_t v = 0;
	uint32_t k;

	switch (f) {
	case G_CONNECTS:
		return s->gstats[j].connects;
	case G_REFUSED:
		return s->gstats[j].refused;
	case G_EJECTIONS:
		return s->gstats[j].ejections;
	case G_WEIGHT:
		return s->meta.weight[j];
	case G_EFFECTIVE:
		return g->weight_end - (j ? s->svc.groups[j - 1].weight_end : 0);
	case G_ELIGIBLE:
		return g->be_count;
	case G_LISTED:
		return g->be_total;
	default:
		break;
	}
	for (k = 0; s->eps[j] && k < g->be_total; k++) {
		const struct ks_ep_counters *e = &s->eps[j][k];

		if (f == G_FAILED)
			v += e->stats.failed;
		else if (e->found && e->health.ejected_until > c->now)
			v++;
	}
	return v;
}

static void group_family(struct ks_mbuf *b, const struct ks_counters *c, const struct labels *l,
			 const char *name, const char *type, const char *help, enum group_field f)
{
	size_t i, nlen = strlen(name);
	uint32_t j;

	head(b, name, type, help);
	for (i = 0; i < c->n_svcs; i++) {
		const struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < n_groups(s); j++) {
			size_t g = l->first[i] + j;

			sample(b, name, nlen, l->text.s + l->grp[g], l->grp_len[g],
			       group_value(c, s, j, f));
		}
	}
}

enum ep_field { EP_CONNECTS, EP_ESTABLISHED, EP_FAILED, EP_ELIGIBLE, EP_EJECTED, EP_EJECTIONS };

static void ep_family(struct ks_mbuf *b, const struct ks_counters *c, const struct labels *l,
		      const char *name, const char *type, const char *help, enum ep_field f)
{
	char lab[LABELS_MAX], ep[64];
	size_t i, at, nlen = strlen(name);
	uint32_t j, k;

	head(b, name, type, help);
	for (i = 0; i < c->n_svcs; i++) {
		const struct ks_svc_counters *s = &c->svcs[i];

		for (j = 0; j < n_groups(s); j++) {
			if (!s->eps[j])
				continue;
			at = snprintf(lab, sizeof(lab), "%s", l->text.s + l->grp[l->first[i] + j]);
			for (k = 0; k < s->svc.groups[j].be_total; k++) {
				const struct ks_ep_counters *e = &s->eps[j][k];
				uint64_t v = 0;

				if (!e->found)
					continue;
				ks_fmt_addrport(ep, sizeof(ep), e->be.family, e->be.addr, e->be.port);
				switch (f) {
				case EP_CONNECTS: v = e->stats.connects; break;
				case EP_ESTABLISHED: v = e->stats.established; break;
				case EP_FAILED: v = e->stats.failed; break;
				case EP_ELIGIBLE: v = k < s->svc.groups[j].be_count; break;
				case EP_EJECTED: v = e->health.ejected_until > c->now; break;
				case EP_EJECTIONS: v = e->health.ejections; break;
				}
				sample(b, name, nlen, lab, label_str(lab, sizeof(lab), at, "endpoint", ep), v);
			}
		}
	}
}

static void agent_families(struct ks_mbuf *b, const struct ks_metrics_input *in)
{
	static const double le[KS_N_APPLY_BUCKETS] = KS_APPLY_BUCKETS;
	const struct ks_agent_metrics *a = in->agent;
	char l[256];
	uint64_t cum = 0;
	size_t i;

	head(b, "ksplit_build_info", "gauge", "Always 1; the version label says which ksplit runs.");
	label_str(l, sizeof(l), 0, "version", in->version);
	ks_mbuf_printf(b, "ksplit_build_info{%s} 1\n", l);
	head(b, "ksplit_ready", "gauge", "1 once a config has been applied since the agent started.");
	ks_mbuf_printf(b, "ksplit_ready %d\n", a->ready);
	head(b, "ksplit_config_valid", "gauge",
	     "1 when the last read of the manifests was accepted; 0 while the last good config stays in force.");
	ks_mbuf_printf(b, "ksplit_config_valid %d\n", a->config_valid);
	head(b, "ksplit_config_errors_total", "counter", "Reads of the manifests that were rejected.");
	ks_mbuf_printf(b, "ksplit_config_errors_total %llu\n", (unsigned long long)a->config_errors);
	head(b, "ksplit_config_last_apply_success_timestamp_seconds", "gauge",
	     "Unix time of the last successful apply; 0 before the first.");
	ks_mbuf_printf(b, "ksplit_config_last_apply_success_timestamp_seconds %.3f\n",
		       a->last_apply_success);
	head(b, "ksplit_apply_errors_total", "counter",
	     "Applies that failed; the state in force before them stayed.");
	ks_mbuf_printf(b, "ksplit_apply_errors_total %llu\n", (unsigned long long)a->apply_errors);
	head(b, "ksplit_apply_duration_seconds", "histogram",
	     "Time to build and write one map image, drain included.");
	for (i = 0; i < KS_N_APPLY_BUCKETS; i++) {
		cum += a->apply_buckets[i];
		ks_mbuf_printf(b, "ksplit_apply_duration_seconds_bucket{le=\"%g\"} %llu\n", le[i],
			       (unsigned long long)cum);
	}
	ks_mbuf_printf(b, "ksplit_apply_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		       (unsigned long long)a->apply_count);
	ks_mbuf_printf(b, "ksplit_apply_duration_seconds_sum %.6f\n", a->apply_sum);
	ks_mbuf_printf(b, "ksplit_apply_duration_seconds_count %llu\n",
		       (unsigned long long)a->apply_count);
	head(b, "ksplit_health_targets", "gauge", "Endpoints under active health checks.");
	ks_mbuf_printf(b, "ksplit_health_targets %llu\n", (unsigned long long)a->health_targets);
	head(b, "ksplit_health_checks_total", "counter", "Active health checks completed.");
	ks_mbuf_printf(b, "ksplit_health_checks_total %llu\n", (unsigned long long)a->health_checks);
	head(b, "ksplit_health_check_failures_total", "counter",
	     "Active health checks that failed (timeouts included).");
	ks_mbuf_printf(b, "ksplit_health_check_failures_total %llu\n",
		       (unsigned long long)a->health_check_failures);
	head(b, "ksplit_health_transitions_total", "counter",
	     "Active health state changes of an endpoint, by the state entered.");
	ks_mbuf_printf(b, "ksplit_health_transitions_total{to=\"healthy\"} %llu\n",
		       (unsigned long long)a->health_to_healthy);
	ks_mbuf_printf(b, "ksplit_health_transitions_total{to=\"unhealthy\"} %llu\n",
		       (unsigned long long)a->health_to_unhealthy);
	head(b, "ksplit_tc_flows_swept_total", "counter",
	     "Connection-tracking entries of idle TC-path flows that the agent's sweep deleted.");
	ks_mbuf_printf(b, "ksplit_tc_flows_swept_total %llu\n", (unsigned long long)a->tc_ct_swept);
	head(b, "ksplit_tc_relinks_total", "counter",
	     "TC programs put back on an interface after they were detached behind the agent's back.");
	ks_mbuf_printf(b, "ksplit_tc_relinks_total %llu\n", (unsigned long long)a->tc_relinked);
}

/* The per-packet path's counters (abi.h, struct ks_tc_stats), one series per member. */
static void tc_family(struct ks_mbuf *b, const struct ks_tc_stats *t)
{
	struct ks_tc_counter k[KS_TC_N_COUNTERS];
	size_t i;

	ks_tc_counters(t, k);
	head(b, "ksplit_tc_packets_total", "counter",
	     "Packets of the TC path by what happened to them (docs/design.md, \"The TC path\").");
	for (i = 0; i < KS_TC_N_COUNTERS; i++)
		ks_mbuf_printf(b, "ksplit_tc_packets_total{kind=\"%s\"} %llu\n", k[i].name,
			       (unsigned long long)k[i].value);
}

int ks_metrics_render(struct ks_mbuf *b, const struct ks_metrics_input *in)
{
	const struct ks_counters *c = in->dp;
	struct labels l;
	int err;

	agent_families(b, in);
	head(b, "ksplit_datapath_up", "gauge", "1 when the pinned maps could be read for this scrape.");
	ks_mbuf_printf(b, "ksplit_datapath_up %d\n", c != NULL);
	if (!c)
		return b->err;
	head(b, "ksplit_services", "gauge", "VIP:port:protocol entries in the datapath.");
	ks_mbuf_printf(b, "ksplit_services %zu\n", c->n_svcs);
	tc_family(b, &c->tc);
	err = labels_build(&l, c);
	if (err)
		goto out;
	/* One allocation for the default families (2 per VIP, 7 per backendRef), not 10 doublings. */
	reserve(b, 8 * l.text.len + (c->n_svcs + 1) * 1024);
	svc_family(b, c, &l, "ksplit_service_connects_total",
		   "Connects to the VIP that were sent to an endpoint.", SVC_CONNECTS);
	svc_family(b, c, &l, "ksplit_service_refused_total",
		   "Connects to the VIP that were refused: the share drawn had no endpoint.", SVC_REFUSED);
	group_family(b, c, &l, "ksplit_backend_connects_total", "counter",
		     "Connects sent to an endpoint of the backendRef.", G_CONNECTS);
	group_family(b, c, &l, "ksplit_backend_refused_total", "counter",
		     "Connects refused because the backendRef drawn had no eligible endpoint.", G_REFUSED);
	group_family(b, c, &l, "ksplit_backend_passive_ejections_total", "counter",
		     "Endpoints of the backendRef ejected by passive health (failed connects).",
		     G_EJECTIONS);
	group_family(b, c, &l, "ksplit_backend_weight", "gauge",
		     "Configured weight of the backendRef.", G_WEIGHT);
	group_family(b, c, &l, "ksplit_backend_effective_weight", "gauge",
		     "Weight in force after empty groups were shifted.", G_EFFECTIVE);
	group_family(b, c, &l, "ksplit_backend_endpoints_eligible", "gauge",
		     "Endpoints of the backendRef that take new connects.", G_ELIGIBLE);
	group_family(b, c, &l, "ksplit_backend_endpoints_listed", "gauge",
		     "Endpoints the backendRef lists, eligible or not.", G_LISTED);
	if (!in->endpoints)
		goto out;
	group_family(b, c, &l, "ksplit_backend_endpoints_ejected", "gauge",
		     "Endpoints of the backendRef passively ejected right now.", G_EJECTED);
	group_family(b, c, &l, "ksplit_backend_failed_connects_total", "counter",
		     "TCP connects to the endpoints the backendRef lists now that failed.", G_FAILED);
	ep_family(b, c, &l, "ksplit_endpoint_connects_total", "counter",
		  "Connects sent to the endpoint.", EP_CONNECTS);
	ep_family(b, c, &l, "ksplit_endpoint_established_total", "counter",
		  "TCP connects to the endpoint that were established.", EP_ESTABLISHED);
	ep_family(b, c, &l, "ksplit_endpoint_failed_connects_total", "counter",
		  "TCP connects to the endpoint that failed.", EP_FAILED);
	ep_family(b, c, &l, "ksplit_endpoint_eligible", "gauge",
		  "1 when the endpoint takes new connects.", EP_ELIGIBLE);
	ep_family(b, c, &l, "ksplit_endpoint_ejected", "gauge",
		  "1 while the endpoint is passively ejected.", EP_EJECTED);
	ep_family(b, c, &l, "ksplit_endpoint_passive_ejections", "gauge",
		  "Passive ejections of the endpoint since its active checks last vouched for it.",
		  EP_EJECTIONS);
out:
	labels_free(&l);
	return err ? err : b->err;
}
