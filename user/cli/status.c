// SPDX-License-Identifier: BSD-2-Clause
/*
 * `ksplit status`: the snapshot datapath/counters.c reads from the pins,
 * formatted. Shares and states are derived here, once, into the JSON
 * report; the text form is rendered from that same object, an endpoint's
 * from the same ep_view. The command prints one service at a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/status.h"
#include "common/sys.h"
#include "datapath/counters.h"
#include "datapath/dp.h"

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

/* One endpoint as the report shows it; the JSON object and both printers are made from it. */
struct ep_view {
	char addr[INET6_ADDRSTRLEN];
	int port;
	const char *state;
	int64_t connections, established, failed, consecutive_failures, ejections, ejected_for_ms;
};

static void ep_view(const struct ks_ep_counters *ep, uint64_t now, struct ep_view *v)
{
	const struct ks_ep_health *h = &ep->health;
	bool ej = h->ejected_until > now;

	snprintf(v->addr, sizeof(v->addr), "?");
	if (ep->found)
		inet_ntop(ep->be.family == KS_FAMILY_V4 ? AF_INET : AF_INET6, ep->be.addr, v->addr,
			  sizeof(v->addr));
	v->port = ntohs(ep->be.port);
	v->state = ej && !ep->be.flags ? "ejected" : be_state(ep->be.flags);
	v->connections = ep->stats.connects;
	v->established = ep->stats.established;
	v->failed = ep->stats.failed;
	v->consecutive_failures = h->consec_fail;
	v->ejections = h->ejections;
	v->ejected_for_ms = ej ? (int64_t)((h->ejected_until - now) / 1000000) : 0;
}

static struct json_object *ep_json(const struct ks_ep_counters *ep, uint64_t now)
{
	struct json_object *e = json_object_new_object();
	struct ep_view v;

	ep_view(ep, now, &v);
	json_object_object_add(e, "address", json_object_new_string(v.addr));
	json_object_object_add(e, "port", json_object_new_int(v.port));
	json_object_object_add(e, "state", json_object_new_string(v.state));
	json_object_object_add(e, "connections", json_object_new_int64(v.connections));
	json_object_object_add(e, "established", json_object_new_int64(v.established));
	json_object_object_add(e, "failed", json_object_new_int64(v.failed));
	json_object_object_add(e, "consecutive_failures",
			       json_object_new_int64(v.consecutive_failures));
	json_object_object_add(e, "ejections", json_object_new_int64(v.ejections));
	json_object_object_add(e, "ejected_for_ms", json_object_new_int64(v.ejected_for_ms));
	return e;
}

/* A group's endpoints, behind a lazy "endpoints" array (eps_to_json). */
struct ep_list {
	const struct ks_ep_counters *eps;
	uint32_t n;
	uint64_t now;
};

/*
 * The serializer of a lazy "endpoints" array: prints what ep_json objects
 * would print under CLI_JSON_FLAGS (json-c's pretty layout, two spaces a
 * level), without making 500,000 json-c objects at 50,000 services. Addresses
 * and states need no escaping.
 */
static int eps_to_json(struct json_object *jso, struct printbuf *pb, int level, int flags)
{
	const struct ep_list *l = json_object_get_userdata(jso);
	int i1 = 2 * (level + 1), i2 = 2 * (level + 2), n;
	char buf[1024];
	struct ep_view v;
	uint32_t k;

	(void)flags;
	printbuf_strappend(pb, "[\n");
	for (k = 0; k < l->n; k++) {
		ep_view(&l->eps[k], l->now, &v);
		n = snprintf(buf, sizeof(buf),
			     "%s%*s{\n%*s\"address\":\"%s\",\n%*s\"port\":%d,\n%*s\"state\":\"%s\",\n"
			     "%*s\"connections\":%" PRId64 ",\n%*s\"established\":%" PRId64 ",\n"
			     "%*s\"failed\":%" PRId64 ",\n%*s\"consecutive_failures\":%" PRId64 ",\n"
			     "%*s\"ejections\":%" PRId64 ",\n%*s\"ejected_for_ms\":%" PRId64 "\n%*s}",
			     k ? ",\n" : "", i1, "", i2, "", v.addr, i2, "", v.port, i2, "", v.state,
			     i2, "", v.connections, i2, "", v.established, i2, "", v.failed, i2, "",
			     v.consecutive_failures, i2, "", v.ejections, i2, "", v.ejected_for_ms,
			     i1, "");
		printbuf_memappend(pb, buf, n);
	}
	if (l->n)
		printbuf_strappend(pb, "\n");
	n = snprintf(buf, sizeof(buf), "%*s]", 2 * level, "");
	return printbuf_memappend(pb, buf, n);
}

/*
 * lazy: the "endpoints" array prints itself from s (eps_to_json) and holds
 * no objects (unless out of memory); only for printing the report, not for
 * reading it back.
 */
static struct json_object *group_json(const struct ks_svc_counters *s, uint32_t j, uint64_t now,
				      bool lazy, uint64_t *observed)
{
	const struct ks_svc *v = &s->svc;
	const struct ks_group *g = &v->groups[j];
	uint32_t prev = j ? v->groups[j - 1].weight_end : 0, k;
	uint32_t weight = g->weight_end - prev;
	struct json_object *o = json_object_new_object(), *eps = json_object_new_array();
	struct ep_list *l = lazy ? malloc(sizeof(*l)) : NULL;

	*observed = 0;
	json_object_object_add(o, "backend", json_object_new_string(s->meta.backend[j]));
	/* weight: as configured; effective_weight: after empty-group shifting. */
	json_object_object_add(o, "weight", json_object_new_int64(s->meta.weight[j]));
	json_object_object_add(o, "effective_weight", json_object_new_int64(weight));
	json_object_object_add(o, "share",
			       json_object_new_double(v->total_weight ? (double)weight / v->total_weight : 0));
	json_object_object_add(o, "eligible", json_object_new_int64(g->be_count));
	json_object_object_add(o, "state", json_object_new_string(g->be_count ? "serving"
							     : weight ? "refusing" : "shifted"));
	for (k = 0; k < g->be_total; k++) {
		if (!l)
			json_object_array_add(eps, ep_json(&s->eps[j][k], now));
		*observed += s->eps[j][k].stats.connects;
	}
	if (l) {
		*l = (struct ep_list){ s->eps[j], g->be_total, now };
		json_object_set_serializer(eps, eps_to_json, l, json_object_free_userdata);
	}
	json_object_object_add(o, "endpoints", eps);
	return o;
}

static struct json_object *service_json(const struct ks_svc_counters *s, uint64_t now, bool lazy)
{
	struct json_object *o = json_object_new_object(), *groups = json_object_new_array();
	const struct ks_svc_key *key = &s->key;
	const struct ks_svc *v = &s->svc;
	uint64_t observed[KS_MAX_GROUPS] = {}, total;
	char addr[INET6_ADDRSTRLEN] = "?";
	uint32_t j, n_refusing = 0, refusing_idx = 0;

	inet_ntop(key->family == KS_FAMILY_V4 ? AF_INET : AF_INET6, key->addr, addr, sizeof(addr));
	json_object_object_add(o, "vip", json_object_new_string(addr));
	json_object_object_add(o, "port", json_object_new_int(ntohs(key->port)));
	json_object_object_add(o, "protocol",
			       json_object_new_string(key->proto == IPPROTO_UDP ? "UDP" : "TCP"));
	json_object_object_add(o, "family",
			       json_object_new_string(key->family == KS_FAMILY_V4 ? "IPv4" : "IPv6"));
	json_object_object_add(o, "route", json_object_new_string(s->meta.route));
	json_object_object_add(o, "rev", json_object_new_int64(v->rev));
	json_object_object_add(o, "mode", json_object_new_string(v->flags & KS_SVC_F_PANIC ? "panic"
								: v->flags & KS_SVC_F_DEGRADED ? "degraded" : "normal"));
	json_object_object_add(o, "passive_failures", json_object_new_int(v->passive_failures));
	json_object_object_add(o, "connections", json_object_new_int64(s->stats.connects));
	json_object_object_add(o, "refused", json_object_new_int64(s->stats.refused));
	total = s->stats.connects + s->stats.refused;
	for (j = 0; j < v->n_groups && j < KS_MAX_GROUPS; j++) {
		uint32_t prev = j ? v->groups[j - 1].weight_end : 0;

		json_object_array_add(groups, group_json(s, j, now, lazy, &observed[j]));
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
		observed[refusing_idx] = s->stats.refused;
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

int ks_status_collect(const char *pin_dir, struct json_object **out)
{
	struct ks_counters c;
	struct json_object *root, *svcs;
	size_t i;
	int err;

	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	err = ks_counters_read(pin_dir, &c);
	if (err)
		return err;
	root = json_object_new_object();
	svcs = json_object_new_array();
	json_object_object_add(root, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(root, "services", svcs);
	for (i = 0; i < c.n_svcs; i++)
		json_object_array_add(svcs, service_json(&c.svcs[i], c.now, false));
	ks_counters_free(&c);
	*out = root;
	return 0;
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

/* Service s as text: from its report object o, endpoints straight from s (o's are lazy). */
static void service_text(FILE *f, struct json_object *o, const struct ks_svc_counters *s,
			 uint64_t now)
{
	struct json_object *groups;
	const char *vip = jstr(o, "vip");
	bool v6 = strchr(vip, ':');
	size_t j, k;

	fprintf(f, "%s%s%s:%lld/%s  %s  rev %lld  mode %s  connections %lld  refused %lld\n",
		v6 ? "[" : "", vip, v6 ? "]" : "", (long long)jint(o, "port"),
		jstr(o, "protocol"), jstr(o, "route"), (long long)jint(o, "rev"),
		jstr(o, "mode"), (long long)jint(o, "connections"), (long long)jint(o, "refused"));
	fprintf(f, "  %-40s %8s %8s %9s %12s  %s\n", "BACKEND", "WEIGHT", "SHARE", "OBSERVED",
		"CONNECTIONS", "STATE / ESTABLISHED FAILED");
	json_object_object_get_ex(o, "groups", &groups);
	for (j = 0; j < json_object_array_length(groups); j++) {
		struct json_object *g = json_object_array_get_idx(groups, j);
		char share[16], obs[16];

		fmt_share(share, sizeof(share), g, "share");
		fmt_share(obs, sizeof(obs), g, "observed_share");
		fprintf(f, "  %-40s %8lld %8s %9s %12lld  %s (%lld eligible)\n",
			jstr(g, "backend"), (long long)jint(g, "weight"), share, obs,
			(long long)jint(g, "connections"), jstr(g, "state"),
			(long long)jint(g, "eligible"));
		for (k = 0; k < s->svc.groups[j].be_total; k++) {
			struct ep_view v;
			char ap[80];

			ep_view(&s->eps[j][k], now, &v);
			snprintf(ap, sizeof(ap), "%s%s%s:%d", strchr(v.addr, ':') ? "[" : "", v.addr,
				 strchr(v.addr, ':') ? "]" : "", v.port);
			fprintf(f, "    %-38s %8s %8s %9s %12lld  %s / %lld %lld\n", ap, "", "", "",
				(long long)v.connections, v.state, (long long)v.established,
				(long long)v.failed);
		}
	}
}

/* The JSON text of o, every line after the first indented by indent more spaces. */
static void put_indented(FILE *f, struct json_object *o, int indent)
{
	static const char spaces[] = "        ";
	const char *p = json_object_to_json_string_ext(o, CLI_JSON_FLAGS), *nl;

	while ((nl = strchr(p, '\n'))) {
		fwrite(p, 1, nl + 1 - p, f);
		fwrite(spaces, 1, indent, f);
		p = nl + 1;
	}
	fputs(p, f);
}

/*
 * Print the report one service at a time, as text or as the JSON that
 * cli_emit would print for the whole object, byte for byte: the whole
 * object at 50,000 services was 1.3 GB of json-c objects. dps: the
 * "datapath" member, printed last.
 */
static void status_stream(FILE *f, const char *pin_dir, const struct ks_counters *c,
			  struct json_object *dps)
{
	struct json_object *pd = json_object_new_string(pin_dir);
	size_t i;

	if (json_output) {
		fputs("{\n  \"pin_dir\":", f);
		put_indented(f, pd, 2);
		fputs(",\n  \"services\":[\n", f);
	} else if (!c->n_svcs) {
		fprintf(f, "no services (pin dir %s)\n", pin_dir);
	}
	for (i = 0; i < c->n_svcs; i++) {
		struct json_object *s = service_json(&c->svcs[i], c->now, true);

		if (json_output) {
			fprintf(f, "%s    ", i ? ",\n" : "");
			put_indented(f, s, 4);
		} else {
			service_text(f, s, &c->svcs[i], c->now);
		}
		json_object_put(s);
	}
	if (json_output) {
		fprintf(f, "%s  ],\n  \"datapath\":", c->n_svcs ? "\n" : "");
		put_indented(f, dps, 2);
		fputs("\n}\n", f);
	} else {
		ks_dp_status_text(f, dps);
	}
	json_object_put(pd);
}

int do_status(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct json_object *dps = NULL;
	struct ks_counters c;
	const char *pin_dir;
	bool dp_ok = false;
	int err, rc;

	if (cli_opts(cmd, argc, argv, &pin_dir, NULL, &rc))
		return rc;
	if (!pin_dir)
		pin_dir = KS_DEFAULT_PIN_DIR;
	err = ks_counters_read(pin_dir, &c);
	if (err == -EPROTO)
		return p_err("pinned maps in %s have another key or value size than this ksplit binary (another build made them): use the ksplit binary of the running agent",
			     pin_dir);
	if (err)
		return p_err("cannot read pinned maps in %s: %s", pin_dir, strerror(-err));
	/* The maps, then the hooks: maps that look fine serve nothing once a hook is detached. */
	ks_dp_status(pin_dir, &dps, &dp_ok);
	status_stream(stdout, pin_dir, &c, dps);
	json_object_put(dps);
	ks_counters_free(&c);
	return dp_ok ? 0 : 1;
}
