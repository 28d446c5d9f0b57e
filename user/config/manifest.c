// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ksplit/abi.h"

#include "common/diag.h"
#include "common/log.h"
#include "config/manifest.h"
#include "config/yaml.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define GW_GROUP	"gateway.networking.k8s.io"
#define TGP_GROUP	"application-networking.k8s.aws"
#define SVC_NAME_LABEL	"kubernetes.io/service-name"
#define ANN_PASSIVE	"ksplit.io/passive-failures"
#define ANN_EMPTY	"ksplit.io/empty-group"

static const char *const kind_names[KM_NKINDS] = {
	[KM_GATEWAY] = "Gateway",
	[KM_SERVICE] = "Service",
	[KM_ENDPOINTSLICE] = "EndpointSlice",
	[KM_HTTPROUTE] = "HTTPRoute",
	[KM_TCPROUTE] = "TCPRoute",
	[KM_UDPROUTE] = "UDPRoute",
	[KM_REFERENCEGRANT] = "ReferenceGrant",
	[KM_TARGETGROUPPOLICY] = "TargetGroupPolicy",
};

const char *km_kind_name(enum km_kind k)
{
	return k < KM_NKINDS ? kind_names[k] : "object";
}

/* The (group, kind) pairs we interpret and the versions we understand. */
static const struct {
	const char *group;
	enum km_kind kind;
	const char *versions[3];
} kind_table[] = {
	{ GW_GROUP, KM_GATEWAY, { "v1", "v1beta1" } },
	{ "", KM_SERVICE, { "v1" } },
	{ "discovery.k8s.io", KM_ENDPOINTSLICE, { "v1" } },
	{ GW_GROUP, KM_HTTPROUTE, { "v1", "v1beta1" } },
	{ GW_GROUP, KM_TCPROUTE, { "v1alpha2", "v1" } },
	{ GW_GROUP, KM_UDPROUTE, { "v1alpha2", "v1" } },
	{ GW_GROUP, KM_REFERENCEGRANT, { "v1beta1", "v1alpha2", "v1" } },
	{ TGP_GROUP, KM_TARGETGROUPPOLICY, { "v1alpha1" } },
};

unsigned km_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	unsigned row[65], prev, tmp;

	/* Field names are short; anything long is not a typo of one. */
	if (la > 64 || lb > 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = prev + cost;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/* ---- per-object checking context ---- */

struct ctx {
	struct ks_diags *d;
	const char *file;
	const char *kind;
	const char *ns, *name;
	char path[512];
	size_t plen;
	int err;		/* sticky -ENOMEM */
	bool bad;		/* at least one error for this object */
};

static size_t push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(struct ctx *c, const char *fmt, ...)
{
	size_t mark = c->plen;
	va_list ap;
	int n;

	if (c->plen >= sizeof(c->path) - 1)
		return mark;
	if (c->plen && fmt[0] != '[')
		c->path[c->plen++] = '.';
	va_start(ap, fmt);
	n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->plen += (size_t)n;
	if (c->plen >= sizeof(c->path))
		c->plen = sizeof(c->path) - 1;
	c->path[c->plen] = '\0';
	return mark;
}

static void pop(struct ctx *c, size_t mark)
{
	c->plen = mark;
	c->path[mark] = '\0';
}

static void vreport(struct ctx *c, bool warning, unsigned line, unsigned col,
		    const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0) {
		c->err = -ENOMEM;
		return;
	}
	if (ks_diag_obj(c->d, warning, c->file, line, col, c->kind, c->ns, c->name,
			c->path, "%s", msg))
		c->err = -ENOMEM;
	if (!warning)
		c->bad = true;
	free(msg);
}

static void kerr(struct ctx *c, const struct ky_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void kerr(struct ctx *c, const struct ky_node *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, false, at ? at->line : 1, at ? at->col : 1, fmt, ap);
	va_end(ap);
}

/* Error about a sub-field key of map (missing field etc.): path gets ".key". */
static void kerr_field(struct ctx *c, const struct ky_node *at, const char *key,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void kerr_field(struct ctx *c, const struct ky_node *at, const char *key,
		       const char *fmt, ...)
{
	size_t m = push(c, "%s", key);
	va_list ap;

	va_start(ap, fmt);
	vreport(c, false, at ? at->line : 1, at ? at->col : 1, fmt, ap);
	va_end(ap);
	pop(c, m);
}

static char *xstrdup(struct ctx *c, const char *s)
{
	char *r = strdup(s ? s : "");

	if (!r)
		c->err = -ENOMEM;
	return r;
}

/* Reports keys of map that are not in known (NULL-terminated). */
static void check_keys(struct ctx *c, const struct ky_node *map, const char *const *known)
{
	size_t i, j;

	for (i = 0; i < map->n; i++) {
		const struct ky_node *k = ky_map_key(map, i);
		const char *best = NULL;
		unsigned bestd = 3;
		bool found = false;

		if (k->type != KY_SCALAR)
			continue;	/* reported by check_tree */
		for (j = 0; known[j] && !found; j++)
			found = !strcmp(k->str, known[j]);
		/* Distances only for a key that is unknown: they are the costly part. */
		for (j = 0; !found && known[j]; j++) {
			unsigned dist = km_edit_distance(k->str, known[j]);

			if (dist < bestd || (dist == bestd && !best && dist <= 2)) {
				bestd = dist;
				best = known[j];
			}
		}
		if (found)
			continue;
		if (best && bestd <= 2)
			kerr_field(c, k, k->str, "unknown field '%s', did you mean '%s'?", k->str, best);
		else
			kerr_field(c, k, k->str, "unknown field '%s'", k->str);
	}
}

/* Duplicate keys and non-string keys anywhere (metadata and status too). */
static void check_tree(struct ctx *c, const struct ky_node *n)
{
	size_t i, j, m;

	if (n->type == KY_SEQ) {
		for (i = 0; i < n->n; i++) {
			m = push(c, "[%zu]", i);
			check_tree(c, n->kids[i]);
			pop(c, m);
		}
		return;
	}
	if (n->type != KY_MAP)
		return;
	for (i = 0; i < n->n; i++) {
		const struct ky_node *k = ky_map_key(n, i);

		if (k->type != KY_SCALAR) {
			kerr(c, k, "mapping keys must be strings, got %s", ky_type_name(k));
			continue;
		}
		for (j = 0; j < i; j++) {
			const struct ky_node *p = ky_map_key(n, j);

			if (p->type == KY_SCALAR && !strcmp(p->str, k->str)) {
				kerr_field(c, k, k->str, "duplicate key '%s' (first at %u:%u)",
					   k->str, p->line, p->col);
				break;
			}
		}
		m = push(c, "%s", k->str);
		check_tree(c, ky_map_val(n, i));
		pop(c, m);
	}
}

/* The value of key in map, NULL when absent or null. */
static const struct ky_node *field(const struct ky_node *map, const char *key)
{
	const struct ky_node *v = ky_map_get(map, key);

	return ky_is_null(v) ? NULL : v;
}

/* 0 and *out set (or left alone when absent and optional); -EINVAL after an error. */
static int get_str(struct ctx *c, const struct ky_node *map, const char *key, bool required,
		   const char **out)
{
	const struct ky_node *v = field(map, key);

	if (!v) {
		if (required) {
			kerr_field(c, map, key, "missing required field");
			return -EINVAL;
		}
		return 0;
	}
	if (v->type != KY_SCALAR) {
		kerr_field(c, v, key, "expected a string, got %s", ky_type_name(v));
		return -EINVAL;
	}
	*out = v->str;
	return 0;
}

static int dup_str(struct ctx *c, const struct ky_node *map, const char *key, bool required,
		   const char *def, char **out)
{
	const char *s = def;
	int err = get_str(c, map, key, required, &s);

	*out = s ? xstrdup(c, s) : NULL;
	return err;
}

/* Parses a YAML integer written plainly (quoted "80" is a string in Kubernetes). */
static int parse_int(const struct ky_node *v, long long *out)
{
	const char *s = v->str;
	char *end;

	if (v->type != KY_SCALAR || v->quoted || !*s)
		return -EINVAL;
	if (*s == '+' || *s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoll(v->str, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

static int get_int(struct ctx *c, const struct ky_node *map, const char *key, bool required,
		   long long lo, long long hi, long long *out, bool *present)
{
	const struct ky_node *v = field(map, key);
	long long x;

	if (present)
		*present = false;
	if (!v) {
		if (required) {
			kerr_field(c, map, key, "missing required field");
			return -EINVAL;
		}
		return 0;
	}
	if (parse_int(v, &x)) {
		if (v->type != KY_SCALAR)
			kerr_field(c, v, key, "expected an integer, got %s", ky_type_name(v));
		else if (v->quoted)
			kerr_field(c, v, key, "expected an integer, got the string \"%s\"", v->str);
		else
			kerr_field(c, v, key, "expected an integer, got '%s'", v->str);
		return -EINVAL;
	}
	if (x < lo || x > hi) {
		kerr_field(c, v, key, "%lld is out of range %lld..%lld", x, lo, hi);
		return -EINVAL;
	}
	*out = x;
	if (present)
		*present = true;
	return 0;
}

static int get_port(struct ctx *c, const struct ky_node *map, const char *key, bool required,
		    uint16_t *out, bool *present)
{
	long long x = 0;
	int err = get_int(c, map, key, required, 1, 65535, &x, present);

	if (!err && x)
		*out = (uint16_t)x;
	return err;
}

static int get_bool(struct ctx *c, const struct ky_node *map, const char *key, bool *out,
		    bool *present)
{
	const struct ky_node *v = field(map, key);

	if (present)
		*present = false;
	if (!v)
		return 0;
	if (v->type == KY_SCALAR && !v->quoted) {
		if (!strcmp(v->str, "true") || !strcmp(v->str, "True") || !strcmp(v->str, "TRUE")) {
			*out = true;
			goto ok;
		}
		if (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
		    !strcmp(v->str, "FALSE")) {
			*out = false;
			goto ok;
		}
	}
	if (v->type == KY_SCALAR)
		kerr_field(c, v, key, "expected true or false, got '%s'", v->str);
	else
		kerr_field(c, v, key, "expected true or false, got %s", ky_type_name(v));
	return -EINVAL;
ok:
	if (present)
		*present = true;
	return 0;
}

/* String restricted to a set; *idx = index in allowed (unchanged when absent). */
static int get_enum(struct ctx *c, const struct ky_node *map, const char *key, bool required,
		    const char *const *allowed, int *idx)
{
	const char *s = NULL;
	char list[256] = "";
	size_t used = 0;
	int i, err;

	err = get_str(c, map, key, required, &s);
	if (err || !s)
		return err;
	for (i = 0; allowed[i]; i++) {
		if (!strcmp(s, allowed[i])) {
			*idx = i;
			return 0;
		}
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 allowed[i]);
		if (used >= sizeof(list))
			used = sizeof(list) - 1;
	}
	kerr_field(c, ky_map_get(map, key), key, "'%s' is not one of %s", s, list);
	return -EINVAL;
}

/* Container fields: NULL when absent (or after a type error). */
static const struct ky_node *get_coll(struct ctx *c, const struct ky_node *map, const char *key,
				      enum ky_type t, bool required)
{
	const struct ky_node *v = field(map, key);

	if (!v) {
		if (required)
			kerr_field(c, map, key, "missing required field");
		return NULL;
	}
	if (v->type != t) {
		kerr_field(c, v, key, "expected %s, got %s", t == KY_MAP ? "a mapping" : "a list",
			   ky_type_name(v));
		return NULL;
	}
	return v;
}

#define get_map(c, m, k, r) get_coll(c, m, k, KY_MAP, r)
#define get_seq(c, m, k, r) get_coll(c, m, k, KY_SEQ, r)

/* A list item that must be a mapping. */
static bool item_map(struct ctx *c, const struct ky_node *v)
{
	if (v->type == KY_MAP)
		return true;
	kerr(c, v, "expected a mapping, got %s", ky_type_name(v));
	return false;
}

/* A map of string to string (labels, selector). */
static void check_str_map(struct ctx *c, const struct ky_node *parent, const char *key)
{
	const struct ky_node *m = get_map(c, parent, key, false);
	size_t i, mk;

	if (!m)
		return;
	mk = push(c, "%s", key);
	for (i = 0; i < m->n; i++) {
		const struct ky_node *v = ky_map_val(m, i);

		if (v->type != KY_SCALAR && ky_map_key(m, i)->type == KY_SCALAR)
			kerr_field(c, v, ky_map_key(m, i)->str, "expected a string, got %s",
				   ky_type_name(v));
	}
	pop(c, mk);
}

static void check_str_list(struct ctx *c, const struct ky_node *parent, const char *key)
{
	const struct ky_node *s = get_seq(c, parent, key, false);
	size_t i, m;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		if (s->kids[i]->type == KY_SCALAR)
			continue;
		m = push(c, "%s[%zu]", key, i);
		kerr(c, s->kids[i], "expected a string, got %s", ky_type_name(s->kids[i]));
		pop(c, m);
	}
}

static int parse_addr(struct ctx *c, const struct ky_node *v, struct ksm_addr *a)
{
	if (ksm_addr_parse(v->str, a)) {
		kerr(c, v, "'%s' is not an IP address", v->str);
		return -EINVAL;
	}
	return 0;
}

/* ---- Gateway ---- */

static const char *const lproto_names[] = { "HTTP", "HTTPS", "TCP", "UDP", "TLS", NULL };

static void parse_gateway(struct ctx *c, const struct ky_node *spec, struct km_gateway *g)
{
	static const char *const spec_keys[] = { "gatewayClassName", "addresses", "listeners",
		"infrastructure", "backendTLS", "allowedListeners", NULL };
	static const char *const addr_keys[] = { "type", "value", NULL };
	static const char *const lis_keys[] = { "name", "hostname", "port", "protocol", "tls",
		"allowedRoutes", NULL };
	const struct ky_node *addrs, *lis;
	const char *cls = NULL;
	size_t i, j, m, m2;

	check_keys(c, spec, spec_keys);
	get_str(c, spec, "gatewayClassName", true, &cls);
	addrs = get_seq(c, spec, "addresses", false);
	if (addrs && addrs->n > 16) {
		kerr_field(c, addrs, "addresses", "at most 16 addresses are allowed, got %zu",
			   addrs->n);
		addrs = NULL;
	}
	if (addrs) {
		g->addrs = calloc(addrs->n, sizeof(*g->addrs));
		if (!g->addrs) {
			c->err = -ENOMEM;
			return;
		}
	}
	for (i = 0; addrs && i < addrs->n; i++) {
		const struct ky_node *a = addrs->kids[i];
		const char *type = "IPAddress", *val = NULL;

		m = push(c, "addresses[%zu]", i);
		if (item_map(c, a)) {
			check_keys(c, a, addr_keys);
			get_str(c, a, "type", false, &type);
			if (!get_str(c, a, "value", true, &val)) {
				if (strcmp(type, "IPAddress"))
					kerr_field(c, ky_map_get(a, "type"), "type",
						   "address type '%s' cannot be intercepted: ksplit "
						   "needs IPAddress addresses", type);
				else if (!parse_addr(c, ky_map_get(a, "value"), &g->addrs[g->n_addrs]))
					g->n_addrs++;
			}
		}
		pop(c, m);
	}
	if (!addrs || !addrs->n)
		kerr_field(c, spec, "addresses",
			   "a Gateway needs at least one IPAddress: ksplit intercepts connect() to "
			   "the Gateway's addresses and has nothing to intercept without one");
	lis = get_seq(c, spec, "listeners", true);
	if (lis && (!lis->n || lis->n > 64)) {
		kerr_field(c, lis, "listeners", "1 to 64 listeners are required, got %zu", lis->n);
		lis = NULL;
	}
	if (!lis)
		return;
	g->listeners = calloc(lis->n, sizeof(*g->listeners));
	if (!g->listeners) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < lis->n; i++) {
		const struct ky_node *l = lis->kids[i];
		struct km_listener *kl = &g->listeners[g->n_listeners];
		int proto = -1;
		bool ok = true;

		m = push(c, "listeners[%zu]", i);
		if (!item_map(c, l)) {
			pop(c, m);
			continue;
		}
		check_keys(c, l, lis_keys);
		ok &= !dup_str(c, l, "name", true, NULL, &kl->name);
		ok &= !get_port(c, l, "port", true, &kl->port, NULL);
		ok &= !get_enum(c, l, "protocol", true, lproto_names, &proto);
		kl->pos.line = l->line;
		kl->pos.col = l->col;
		for (j = 0; ok && kl->name && j < g->n_listeners; j++) {
			if (!strcmp(g->listeners[j].name, kl->name)) {
				m2 = push(c, "name");
				kerr(c, ky_map_get(l, "name"), "duplicate listener name '%s'", kl->name);
				pop(c, m2);
				ok = false;
			}
		}
		if (ok && proto >= 0) {
			kl->proto = (enum km_lproto)proto;
			g->n_listeners++;
		} else {
			free(kl->name);
			kl->name = NULL;
		}
		pop(c, m);
	}
}

/* ---- Service ---- */

static const char *const l4_names[] = { "TCP", "UDP", "SCTP", NULL };
static const uint8_t l4_protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };

static void add_ip(struct km_service *s, const struct ksm_addr *a)
{
	size_t i;

	for (i = 0; i < s->n_ips; i++)
		if (!memcmp(&s->ips[i], a, sizeof(*a)))
			return;
	s->ips[s->n_ips++] = *a;
}

static void parse_service(struct ctx *c, const struct ky_node *spec, struct km_service *s)
{
	static const char *const spec_keys[] = { "allocateLoadBalancerNodePorts", "clusterIP",
		"clusterIPs", "externalIPs", "externalName", "externalTrafficPolicy",
		"healthCheckNodePort", "internalTrafficPolicy", "ipFamilies", "ipFamilyPolicy",
		"loadBalancerClass", "loadBalancerIP", "loadBalancerSourceRanges", "ports",
		"publishNotReadyAddresses", "selector", "sessionAffinity", "sessionAffinityConfig",
		"trafficDistribution", "type", NULL };
	static const char *const port_keys[] = { "name", "port", "protocol", "targetPort",
		"appProtocol", "nodePort", NULL };
	static const char *const types[] = { "ClusterIP", "NodePort", "LoadBalancer",
		"ExternalName", NULL };
	static const char *const families[] = { "IPv4", "IPv6", NULL };
	static const char *const fam_policies[] = { "SingleStack", "PreferDualStack",
		"RequireDualStack", NULL };
	static const char *const affinities[] = { "None", "ClientIP", NULL };
	static const char *const traffic_pol[] = { "Cluster", "Local", NULL };
	const struct ky_node *ips, *ports, *seq, *sac;
	const char *cip = NULL;
	struct ksm_addr a;
	int idx = 0;
	long long x;
	bool b;
	size_t i, j, m;

	check_keys(c, spec, spec_keys);
	if (!get_enum(c, spec, "type", false, types, &idx) && idx == 3)
		s->external_name = true;
	ips = get_seq(c, spec, "clusterIPs", false);
	s->ips = calloc(1 + (ips ? ips->n : 0), sizeof(*s->ips));
	if (!s->ips) {
		c->err = -ENOMEM;
		return;
	}
	if (!get_str(c, spec, "clusterIP", false, &cip) && cip && *cip) {
		m = push(c, "clusterIP");
		if (!strcmp(cip, "None"))
			s->headless = true;
		else if (!parse_addr(c, ky_map_get(spec, "clusterIP"), &a))
			add_ip(s, &a);
		pop(c, m);
	}
	for (i = 0; ips && i < ips->n; i++) {
		const struct ky_node *v = ips->kids[i];

		m = push(c, "clusterIPs[%zu]", i);
		if (v->type != KY_SCALAR)
			kerr(c, v, "expected a string, got %s", ky_type_name(v));
		else if (!strcmp(v->str, "None"))
			s->headless = true;
		else if (!parse_addr(c, v, &a))
			add_ip(s, &a);
		pop(c, m);
	}
	if (s->headless && s->n_ips)
		kerr_field(c, spec, "clusterIP", "'None' (headless) cannot be combined with IPs");
	seq = get_seq(c, spec, "externalIPs", false);
	for (i = 0; seq && i < seq->n; i++) {
		m = push(c, "externalIPs[%zu]", i);
		if (seq->kids[i]->type != KY_SCALAR)
			kerr(c, seq->kids[i], "expected a string, got %s", ky_type_name(seq->kids[i]));
		else
			parse_addr(c, seq->kids[i], &a);
		pop(c, m);
	}
	seq = get_seq(c, spec, "ipFamilies", false);
	for (i = 0; seq && i < seq->n; i++) {
		const struct ky_node *v = seq->kids[i];

		m = push(c, "ipFamilies[%zu]", i);
		if (v->type != KY_SCALAR || (strcmp(v->str, families[0]) && strcmp(v->str, families[1])))
			kerr(c, v, "expected IPv4 or IPv6");
		pop(c, m);
	}
	get_enum(c, spec, "ipFamilyPolicy", false, fam_policies, &idx);
	get_enum(c, spec, "sessionAffinity", false, affinities, &idx);
	get_enum(c, spec, "externalTrafficPolicy", false, traffic_pol, &idx);
	get_enum(c, spec, "internalTrafficPolicy", false, traffic_pol, &idx);
	get_bool(c, spec, "allocateLoadBalancerNodePorts", &b, NULL);
	get_bool(c, spec, "publishNotReadyAddresses", &b, NULL);
	get_port(c, spec, "healthCheckNodePort", false, &(uint16_t){ 0 }, NULL);
	get_str(c, spec, "externalName", false, &cip);
	get_str(c, spec, "loadBalancerClass", false, &cip);
	get_str(c, spec, "loadBalancerIP", false, &cip);
	get_str(c, spec, "trafficDistribution", false, &cip);
	check_str_list(c, spec, "loadBalancerSourceRanges");
	check_str_map(c, spec, "selector");
	sac = get_map(c, spec, "sessionAffinityConfig", false);
	if (sac) {
		static const char *const sac_keys[] = { "clientIP", NULL };
		static const char *const cip_keys[] = { "timeoutSeconds", NULL };
		const struct ky_node *ci;

		m = push(c, "sessionAffinityConfig");
		check_keys(c, sac, sac_keys);
		ci = get_map(c, sac, "clientIP", false);
		if (ci) {
			size_t m2 = push(c, "clientIP");

			check_keys(c, ci, cip_keys);
			get_int(c, ci, "timeoutSeconds", false, 1, 86400, &x, NULL);
			pop(c, m2);
		}
		pop(c, m);
	}

	ports = get_seq(c, spec, "ports", false);
	if (!ports)
		return;
	s->ports = calloc(ports->n ? ports->n : 1, sizeof(*s->ports));
	if (!s->ports) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < ports->n; i++) {
		const struct ky_node *p = ports->kids[i], *tp;
		struct km_svc_port *sp = &s->ports[s->n_ports];
		int proto = 0;
		bool ok = true;

		m = push(c, "ports[%zu]", i);
		if (!item_map(c, p)) {
			pop(c, m);
			continue;
		}
		check_keys(c, p, port_keys);
		ok &= !dup_str(c, p, "name", false, "", &sp->name);
		ok &= !get_port(c, p, "port", true, &sp->port, NULL);
		ok &= !get_enum(c, p, "protocol", false, l4_names, &proto);
		get_str(c, p, "appProtocol", false, &cip);
		get_port(c, p, "nodePort", false, &(uint16_t){ 0 }, NULL);
		tp = field(p, "targetPort");
		if (tp && tp->type == KY_SCALAR && !tp->quoted && !parse_int(tp, &x))
			get_port(c, p, "targetPort", false, &(uint16_t){ 0 }, NULL);
		else if (tp && tp->type != KY_SCALAR)
			kerr_field(c, tp, "targetPort", "expected a port number or name, got %s",
				   ky_type_name(tp));
		sp->proto = l4_protos[proto];
		if (ok && sp->name) {
			if (ports->n > 1 && !*sp->name) {
				kerr_field(c, p, "name",
					   "required when a Service has more than one port");
				ok = false;
			}
			for (j = 0; ok && j < s->n_ports; j++) {
				if (*sp->name && !strcmp(s->ports[j].name, sp->name)) {
					kerr_field(c, ky_map_get(p, "name"), "name",
						   "duplicate port name '%s'", sp->name);
					ok = false;
				}
			}
		}
		if (ok)
			s->n_ports++;
		else {
			free(sp->name);
			sp->name = NULL;
		}
		pop(c, m);
	}
}

/* ---- EndpointSlice ---- */

static void parse_slice(struct ctx *c, const struct ky_node *root, struct km_slice *s)
{
	static const char *const ep_keys[] = { "addresses", "conditions", "hostname", "nodeName",
		"zone", "targetRef", "hints", "deprecatedTopology", NULL };
	static const char *const port_keys[] = { "name", "port", "protocol", "appProtocol", NULL };
	static const char *const cond_keys[] = { "ready", "serving", "terminating", NULL };
	static const char *const ref_keys[] = { "apiVersion", "fieldPath", "kind", "name",
		"namespace", "resourceVersion", "uid", NULL };
	static const char *const hint_keys[] = { "forZones", "forNodes", NULL };
	static const char *const atypes[] = { "IPv4", "IPv6", "FQDN", NULL };
	const struct ky_node *ports, *eps;
	const char *str = NULL;
	int at = -1;
	size_t i, j, m, m2;

	if (!get_enum(c, root, "addressType", true, atypes, &at) && at >= 0)
		s->family = at == 0 ? KS_FAMILY_V4 : at == 1 ? KS_FAMILY_V6 : 0;
	ports = get_seq(c, root, "ports", false);
	if (ports && ports->n) {
		s->ports = calloc(ports->n, sizeof(*s->ports));
		if (!s->ports) {
			c->err = -ENOMEM;
			return;
		}
	}
	for (i = 0; ports && i < ports->n; i++) {
		const struct ky_node *p = ports->kids[i];
		struct km_slice_port *sp = &s->ports[s->n_ports];
		int proto = 0;
		bool ok = true;

		m = push(c, "ports[%zu]", i);
		if (!item_map(c, p)) {
			pop(c, m);
			continue;
		}
		check_keys(c, p, port_keys);
		ok &= !dup_str(c, p, "name", false, "", &sp->name);
		ok &= !get_port(c, p, "port", false, &sp->port, &sp->has_port);
		ok &= !get_enum(c, p, "protocol", false, l4_names, &proto);
		get_str(c, p, "appProtocol", false, &str);
		sp->proto = l4_protos[proto];
		if (ok)
			s->n_ports++;
		else {
			free(sp->name);
			sp->name = NULL;
		}
		pop(c, m);
	}
	eps = get_seq(c, root, "endpoints", false);
	if (!eps || !eps->n)
		return;
	s->eps = calloc(eps->n, sizeof(*s->eps));
	if (!s->eps) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < eps->n; i++) {
		const struct ky_node *e = eps->kids[i], *addrs, *cond, *ref, *hints;
		struct km_slice_ep *se = &s->eps[s->n_eps];
		bool ok = true, present;

		m = push(c, "endpoints[%zu]", i);
		if (!item_map(c, e)) {
			pop(c, m);
			continue;
		}
		check_keys(c, e, ep_keys);
		addrs = get_seq(c, e, "addresses", true);
		if (addrs && (!addrs->n || addrs->n > 100)) {
			kerr_field(c, addrs, "addresses", "1 to 100 addresses are required, got %zu",
				   addrs->n);
			addrs = NULL;
		}
		ok = addrs != NULL;
		for (j = 0; addrs && j < addrs->n; j++) {
			const struct ky_node *v = addrs->kids[j];
			struct ksm_addr a;

			m2 = push(c, "addresses[%zu]", j);
			if (v->type != KY_SCALAR) {
				kerr(c, v, "expected a string, got %s", ky_type_name(v));
				ok = false;
			} else if (s->family) {
				if (parse_addr(c, v, &a)) {
					ok = false;
				} else if (a.family != s->family) {
					kerr(c, v, "'%s' is not an %s address (addressType)", v->str,
					     s->family == KS_FAMILY_V4 ? "IPv4" : "IPv6");
					ok = false;
				} else if (j == 0) {
					se->addr = a;
				}
			}
			pop(c, m2);
		}
		se->ready = true;
		cond = get_map(c, e, "conditions", false);
		if (cond) {
			m2 = push(c, "conditions");
			check_keys(c, cond, cond_keys);
			get_bool(c, cond, "ready", &se->ready, NULL);
			se->serving = se->ready;
			get_bool(c, cond, "serving", &se->serving, &present);
			get_bool(c, cond, "terminating", &se->terminating, NULL);
			pop(c, m2);
		} else {
			se->serving = true;
		}
		get_str(c, e, "nodeName", false, &str);
		get_str(c, e, "zone", false, &str);
		check_str_map(c, e, "deprecatedTopology");
		hints = get_map(c, e, "hints", false);
		if (hints) {
			static const char *const zn_keys[] = { "name", NULL };
			const char *hk[] = { "forZones", "forNodes" };
			size_t h, k;

			m2 = push(c, "hints");
			check_keys(c, hints, hint_keys);
			for (h = 0; h < 2; h++) {
				const struct ky_node *z = get_seq(c, hints, hk[h], false);

				for (k = 0; z && k < z->n; k++) {
					size_t m3 = push(c, "%s[%zu]", hk[h], k);

					if (item_map(c, z->kids[k])) {
						check_keys(c, z->kids[k], zn_keys);
						get_str(c, z->kids[k], "name", true, &str);
					}
					pop(c, m3);
				}
			}
			pop(c, m2);
		}
		ref = get_map(c, e, "targetRef", false);
		str = NULL;
		if (ref) {
			const char *dummy;

			m2 = push(c, "targetRef");
			check_keys(c, ref, ref_keys);
			for (j = 0; ref_keys[j]; j++)
				if (strcmp(ref_keys[j], "name"))
					get_str(c, ref, ref_keys[j], false, &dummy);
			get_str(c, ref, "name", false, &str);
			pop(c, m2);
		}
		if (!str)
			get_str(c, e, "hostname", false, &str);
		else
			get_str(c, e, "hostname", false, &(const char *){ NULL });
		if (str) {
			se->name = xstrdup(c, str);
			if (!se->name)
				ok = false;
		}
		if (ok && s->family)
			s->n_eps++;
		else {
			free(se->name);
			memset(se, 0, sizeof(*se));
		}
		pop(c, m);
	}
}

/* ---- routes ---- */

static void parse_parent_refs(struct ctx *c, const struct ky_node *spec, struct km_route *r)
{
	static const char *const keys[] = { "group", "kind", "namespace", "name", "sectionName",
		"port", NULL };
	const struct ky_node *refs = get_seq(c, spec, "parentRefs", false);
	size_t i, m;

	if (!refs || !refs->n)
		return;
	if (refs->n > 32) {
		kerr_field(c, refs, "parentRefs", "at most 32 parentRefs are allowed, got %zu",
			   refs->n);
		return;
	}
	r->parents = calloc(refs->n, sizeof(*r->parents));
	if (!r->parents) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < refs->n; i++) {
		const struct ky_node *p = refs->kids[i];
		struct km_parent_ref *pr = &r->parents[r->n_parents];
		bool ok = true;

		m = push(c, "parentRefs[%zu]", i);
		if (!item_map(c, p)) {
			pop(c, m);
			continue;
		}
		check_keys(c, p, keys);
		ok &= !dup_str(c, p, "group", false, GW_GROUP, &pr->group);
		ok &= !dup_str(c, p, "kind", false, "Gateway", &pr->kind);
		ok &= !dup_str(c, p, "namespace", false, r->m.ns, &pr->ns);
		ok &= !dup_str(c, p, "name", true, NULL, &pr->name);
		ok &= !dup_str(c, p, "sectionName", false, "", &pr->section);
		ok &= !get_port(c, p, "port", false, &pr->port, NULL);
		pr->pos.line = p->line;
		pr->pos.col = p->col;
		if (ok && pr->group && pr->kind && pr->ns && pr->name && pr->section) {
			r->n_parents++;
		} else {
			free(pr->group);
			free(pr->kind);
			free(pr->ns);
			free(pr->name);
			free(pr->section);
			memset(pr, 0, sizeof(*pr));
		}
		pop(c, m);
	}
}

/* L4 cannot see any of these: it picks a backend at connect(), before the request exists. */
#define L4_WHY "ksplit picks a backend at connect(), before any byte of the request exists"

static void refuse_present(struct ctx *c, const struct ky_node *map, const char *key,
			   const char *what)
{
	const struct ky_node *v = field(map, key);

	if (!v || ((v->type == KY_SEQ || v->type == KY_MAP) && !v->n))
		return;
	kerr_field(c, v, key, "%s cannot be honoured: %s", what, L4_WHY);
}

static void check_match(struct ctx *c, const struct ky_node *mt)
{
	static const char *const keys[] = { "path", "headers", "queryParams", "method", NULL };
	static const char *const path_keys[] = { "type", "value", NULL };
	static const char *const ptypes[] = { "PathPrefix", "Exact", "RegularExpression", NULL };
	const struct ky_node *path;
	const char *val = "/";
	int t = 0;
	size_t m;

	check_keys(c, mt, keys);
	refuse_present(c, mt, "headers", "header matching");
	refuse_present(c, mt, "queryParams", "query parameter matching");
	refuse_present(c, mt, "method", "method matching");
	path = get_map(c, mt, "path", false);
	if (!path)
		return;
	m = push(c, "path");
	check_keys(c, path, path_keys);
	if (!get_enum(c, path, "type", false, ptypes, &t) && t != 0)
		kerr_field(c, ky_map_get(path, "type"), "type",
			   "%s path matching cannot be honoured: %s; only PathPrefix / "
			   "(every request) can", ptypes[t], L4_WHY);
	else if (!get_str(c, path, "value", false, &val) && strcmp(val, "/"))
		kerr_field(c, ky_map_get(path, "value"), "value",
			   "path prefix '%s' cannot be honoured: %s; only PathPrefix / "
			   "(every request) can", val, L4_WHY);
	pop(c, m);
}

static void parse_backend_refs(struct ctx *c, const struct ky_node *rule, struct km_route *r,
			       bool keep)
{
	static const char *const http_keys[] = { "group", "kind", "name", "namespace", "port",
		"weight", "filters", NULL };
	static const char *const l4_keys[] = { "group", "kind", "name", "namespace", "port",
		"weight", NULL };
	const struct ky_node *refs = get_seq(c, rule, "backendRefs", false);
	size_t i, m;

	if (!refs || !refs->n) {
		if (!c->bad || !refs)
			kerr_field(c, rule, "backendRefs",
				   "at least one backendRef is required: ksplit has nothing to split "
				   "traffic to");
		return;
	}
	if (refs->n > KSM_MAX_GROUPS) {
		kerr_field(c, refs, "backendRefs", "at most %d backendRefs are allowed, got %zu",
			   KSM_MAX_GROUPS, refs->n);
		return;
	}
	if (keep) {
		r->backends = calloc(refs->n, sizeof(*r->backends));
		if (!r->backends) {
			c->err = -ENOMEM;
			return;
		}
	}
	for (i = 0; i < refs->n; i++) {
		const struct ky_node *b = refs->kids[i];
		struct km_backend_ref br = { 0 };
		long long w = 1;
		bool ok = true;

		m = push(c, "backendRefs[%zu]", i);
		if (!item_map(c, b)) {
			pop(c, m);
			continue;
		}
		check_keys(c, b, r->kind == KM_HTTPROUTE ? http_keys : l4_keys);
		if (r->kind == KM_HTTPROUTE)
			refuse_present(c, b, "filters", "backendRef filters");
		ok &= !dup_str(c, b, "group", false, "", &br.group);
		ok &= !dup_str(c, b, "kind", false, "Service", &br.kind);
		ok &= !dup_str(c, b, "name", true, NULL, &br.name);
		ok &= !dup_str(c, b, "namespace", false, r->m.ns, &br.ns);
		ok &= !get_port(c, b, "port", false, &br.port, &br.has_port);
		ok &= !get_int(c, b, "weight", false, 0, 1000000, &w, NULL);
		br.weight = (uint32_t)w;
		br.pos.line = b->line;
		br.pos.col = b->col;
		if (br.group && br.kind && !*br.group && !strcmp(br.kind, "Service") &&
		    !br.has_port && !field(b, "port")) {
			kerr_field(c, b, "port", "required for a Service backendRef (the Service port)");
			ok = false;
		}
		if (ok && keep && br.group && br.kind && br.name && br.ns) {
			r->backends[r->n_backends++] = br;
		} else {
			free(br.group);
			free(br.kind);
			free(br.name);
			free(br.ns);
		}
		pop(c, m);
	}
}

static void parse_route(struct ctx *c, const struct ky_node *spec, struct km_route *r)
{
	static const char *const http_spec[] = { "parentRefs", "hostnames", "rules", NULL };
	static const char *const l4_spec[] = { "parentRefs", "rules", NULL };
	static const char *const http_rule[] = { "name", "matches", "filters", "backendRefs",
		"timeouts", "retry", "sessionPersistence", NULL };
	static const char *const l4_rule[] = { "name", "backendRefs", NULL };
	bool http = r->kind == KM_HTTPROUTE;
	const struct ky_node *rules, *hn;
	const char *str;
	size_t i, m, m2;

	check_keys(c, spec, http ? http_spec : l4_spec);
	parse_parent_refs(c, spec, r);
	if (http) {
		check_str_list(c, spec, "hostnames");
		hn = get_seq(c, spec, "hostnames", false);
		if (hn && hn->n)
			kerr_field(c, hn, "hostnames",
				   "hostnames cannot be enforced: %s (no Host header or SNI yet), so "
				   "the route would silently apply to every hostname; remove them",
				   L4_WHY);
	}
	rules = get_seq(c, spec, "rules", false);
	r->rules_pos.line = rules ? rules->line : spec->line;
	r->rules_pos.col = rules ? rules->col : spec->col;
	if (!rules || !rules->n) {
		kerr_field(c, rules ? rules : spec, "rules",
			   "exactly one rule with backendRefs is required");
		return;
	}
	r->n_rules = rules->n;
	if (rules->n > 1)
		kerr_field(c, rules->kids[1], "rules",
			   "%zu rules: ksplit supports exactly one rule per route, because at "
			   "connect() every rule would match every connection", rules->n);
	for (i = 0; i < rules->n; i++) {
		const struct ky_node *rule = rules->kids[i], *matches;

		m = push(c, "rules[%zu]", i);
		if (!item_map(c, rule)) {
			pop(c, m);
			continue;
		}
		check_keys(c, rule, http ? http_rule : l4_rule);
		get_str(c, rule, "name", false, &str);
		if (http) {
			refuse_present(c, rule, "filters", "rule filters");
			if (field(rule, "timeouts"))
				kerr_field(c, field(rule, "timeouts"), "timeouts",
					   "request timeouts cannot be honoured: ksplit only places "
					   "connections and never sees requests or responses");
			if (field(rule, "retry"))
				kerr_field(c, field(rule, "retry"), "retry",
					   "retries cannot be honoured: ksplit only places connections "
					   "and never sees requests or responses");
			if (field(rule, "sessionPersistence"))
				kerr_field(c, field(rule, "sessionPersistence"), "sessionPersistence",
					   "session persistence cannot be honoured: %s (no cookie or "
					   "header to key on)", L4_WHY);
			matches = get_seq(c, rule, "matches", false);
			if (matches && matches->n > 1)
				kerr_field(c, matches, "matches",
					   "%zu matches: only none or a single PathPrefix / match can be "
					   "honoured, because %s", matches->n, L4_WHY);
			else if (matches && matches->n == 1) {
				m2 = push(c, "matches[0]");
				if (item_map(c, matches->kids[0]))
					check_match(c, matches->kids[0]);
				pop(c, m2);
			}
		}
		parse_backend_refs(c, rule, r, i == 0);
		pop(c, m);
	}
}

static void parse_annotations(struct ctx *c, const struct ky_node *meta, struct km_route *r)
{
	const struct ky_node *ann = field(meta, "annotations"), *v;
	size_t m;
	long long x;

	if (!ann || ann->type != KY_MAP)
		return;
	m = push(c, "metadata.annotations");
	v = field(ann, ANN_PASSIVE);
	if (v && v->type == KY_SCALAR) {
		struct ky_node tmp = *v;

		tmp.quoted = false;	/* annotation values are strings by definition */
		if (parse_int(&tmp, &x) || x < 0 || x > 1000)
			kerr_field(c, v, ANN_PASSIVE, "'%s' is not an integer between 0 and 1000",
				   v->str);
		else
			r->ann_passive_failures = xstrdup(c, v->str);
	}
	v = field(ann, ANN_EMPTY);
	if (v && v->type == KY_SCALAR) {
		if (strcmp(v->str, "shift") && strcmp(v->str, "reject"))
			kerr_field(c, v, ANN_EMPTY, "'%s' is not one of shift, reject", v->str);
		else
			r->ann_empty_group = xstrdup(c, v->str);
	}
	pop(c, m);
}

/* ---- ReferenceGrant ---- */

static void parse_grant(struct ctx *c, const struct ky_node *spec, struct km_grant *g)
{
	static const char *const spec_keys[] = { "from", "to", NULL };
	static const char *const from_keys[] = { "group", "kind", "namespace", NULL };
	static const char *const to_keys[] = { "group", "kind", "name", NULL };
	const struct ky_node *from, *to;
	size_t i, m;

	check_keys(c, spec, spec_keys);
	from = get_seq(c, spec, "from", true);
	to = get_seq(c, spec, "to", true);
	if (from && from->n) {
		g->from = calloc(from->n, sizeof(*g->from));
		if (!g->from)
			goto nomem;
	}
	if (to && to->n) {
		g->to = calloc(to->n, sizeof(*g->to));
		if (!g->to)
			goto nomem;
	}
	for (i = 0; from && i < from->n; i++) {
		struct km_grant_from *f = &g->from[g->n_from];
		bool ok = true;

		m = push(c, "from[%zu]", i);
		if (item_map(c, from->kids[i])) {
			check_keys(c, from->kids[i], from_keys);
			ok &= !dup_str(c, from->kids[i], "group", true, NULL, &f->group);
			ok &= !dup_str(c, from->kids[i], "kind", true, NULL, &f->kind);
			ok &= !dup_str(c, from->kids[i], "namespace", true, NULL, &f->ns);
			if (ok && f->group && f->kind && f->ns) {
				g->n_from++;
			} else {
				free(f->group);
				free(f->kind);
				free(f->ns);
				memset(f, 0, sizeof(*f));
			}
		}
		pop(c, m);
	}
	for (i = 0; to && i < to->n; i++) {
		struct km_grant_to *t = &g->to[g->n_to];
		bool ok = true;

		m = push(c, "to[%zu]", i);
		if (item_map(c, to->kids[i])) {
			check_keys(c, to->kids[i], to_keys);
			ok &= !get_str(c, to->kids[i], "group", true, &(const char *){ NULL });
			ok &= !dup_str(c, to->kids[i], "group", false, "", &t->group);
			ok &= !dup_str(c, to->kids[i], "kind", true, NULL, &t->kind);
			ok &= !get_str(c, to->kids[i], "name", false, &(const char *){ NULL });
			if (field(to->kids[i], "name"))
				t->name = xstrdup(c, field(to->kids[i], "name")->str);
			if (ok && t->group && t->kind) {
				g->n_to++;
			} else {
				free(t->group);
				free(t->kind);
				free(t->name);
				memset(t, 0, sizeof(*t));
			}
		}
		pop(c, m);
	}
	return;
nomem:
	c->err = -ENOMEM;
}

/* ---- TargetGroupPolicy ---- */

/* "200", "200-299", "200,204,301-302" with HTTP codes 100..599. */
static bool valid_status_match(const char *s)
{
	while (*s) {
		char *end;
		long lo = strtol(s, &end, 10), hi;

		if (end == s || *s == '-' || *s == '+' || *s == ' ' || lo < 100 || lo > 599)
			return false;
		hi = lo;
		s = end;
		if (*s == '-') {
			s++;
			if (*s < '0' || *s > '9')
				return false;
			hi = strtol(s, &end, 10);
			if (hi < lo || hi > 599)
				return false;
			s = end;
		}
		if (*s == ',') {
			s++;
			if (!*s)
				return false;
		} else if (*s) {
			return false;
		}
	}
	return true;
}

static void parse_policy(struct ctx *c, const struct ky_node *spec, struct km_policy *p)
{
	static const char *const spec_keys[] = { "targetRef", "protocol", "protocolVersion",
		"healthCheck", NULL };
	static const char *const ref_keys[] = { "group", "kind", "name", "namespace", NULL };
	static const char *const hc_keys[] = { "enabled", "intervalSeconds", "timeoutSeconds",
		"healthyThresholdCount", "unhealthyThresholdCount", "statusMatch", "path", "port",
		"protocol", "protocolVersion", NULL };
	static const char *const protos[] = { "HTTP", "HTTPS", NULL };
	/* "TCP" (connect only) is a ksplit extension, for the check alone: same indices first. */
	static const char *const hc_protos[] = { "HTTP", "HTTPS", "TCP", NULL };
	static const char *const versions[] = { "HTTP1", "HTTP2", NULL };
	struct ksm_health *h = &p->h;
	const struct ky_node *ref, *hc;
	const char *group = "", *kind = NULL, *sm = "200", *path = "/";
	int proto = 0, ver = 0;
	long long x;
	size_t m;

	check_keys(c, spec, spec_keys);
	ref = get_map(c, spec, "targetRef", true);
	if (ref) {
		m = push(c, "targetRef");
		check_keys(c, ref, ref_keys);
		get_str(c, ref, "group", false, &group);
		if (*group && strcmp(group, "core"))
			kerr_field(c, ky_map_get(ref, "group"), "group",
				   "'%s': only Services (group \"\") can be targeted", group);
		if (!get_str(c, ref, "kind", true, &kind) && kind && strcmp(kind, "Service"))
			kerr_field(c, ky_map_get(ref, "kind"), "kind",
				   "'%s': only kind Service can be targeted", kind);
		dup_str(c, ref, "name", true, NULL, &h->svc_name);
		dup_str(c, ref, "namespace", false, p->m.ns, &h->svc_ns);
		p->target_pos.line = ref->line;
		p->target_pos.col = ref->col;
		pop(c, m);
	}
	get_enum(c, spec, "protocol", false, protos, &proto);
	get_enum(c, spec, "protocolVersion", false, versions, &ver);
	h->enabled = true;
	h->interval_s = 30;
	h->timeout_s = 5;
	h->healthy_threshold = 5;
	h->unhealthy_threshold = 2;
	hc = get_map(c, spec, "healthCheck", false);
	if (hc) {
		m = push(c, "healthCheck");
		check_keys(c, hc, hc_keys);
		get_bool(c, hc, "enabled", &h->enabled, NULL);
		if (!get_int(c, hc, "intervalSeconds", false, 5, 300, &x, NULL) && field(hc, "intervalSeconds"))
			h->interval_s = (uint32_t)x;
		if (!get_int(c, hc, "timeoutSeconds", false, 1, 120, &x, NULL) && field(hc, "timeoutSeconds"))
			h->timeout_s = (uint32_t)x;
		if (!get_int(c, hc, "healthyThresholdCount", false, 2, 10, &x, NULL) &&
		    field(hc, "healthyThresholdCount"))
			h->healthy_threshold = (uint32_t)x;
		if (!get_int(c, hc, "unhealthyThresholdCount", false, 2, 10, &x, NULL) &&
		    field(hc, "unhealthyThresholdCount"))
			h->unhealthy_threshold = (uint32_t)x;
		if (!get_str(c, hc, "statusMatch", false, &sm) && !valid_status_match(sm)) {
			kerr_field(c, ky_map_get(hc, "statusMatch"), "statusMatch",
				   "'%s' is not a list of HTTP codes or ranges like \"200\", "
				   "\"200-299\" or \"200,204,301-302\"", sm);
			sm = "200";
		}
		if (!get_str(c, hc, "path", false, &path) && path[0] != '/') {
			kerr_field(c, ky_map_get(hc, "path"), "path", "'%s' must start with '/'", path);
			path = "/";
		}
		get_port(c, hc, "port", false, &h->port, NULL);
		get_enum(c, hc, "protocol", false, hc_protos, &proto);
		get_enum(c, hc, "protocolVersion", false, versions, &ver);
		pop(c, m);
	}
	h->status_match = xstrdup(c, sm);
	h->path = xstrdup(c, path);
	h->protocol = xstrdup(c, hc_protos[proto]);
	h->protocol_version = xstrdup(c, versions[ver]);
}

/* ---- documents ---- */

/*
 * Append one zeroed element. Capacity doubles whenever n reaches a power of
 * two, so it is implied by n and needs no field; growing by one element per
 * call made loading 50,000 objects quadratic.
 */
static void *grow(void **arr, size_t n, size_t sz)
{
	void *p = *arr;

	if (n == 0 || !(n & (n - 1))) {
		p = realloc(*arr, (n ? 2 * n : 1) * sz);
		if (!p)
			return NULL;
		*arr = p;
	}
	memset((char *)p + n * sz, 0, sz);
	return (char *)p + n * sz;
}

static int find_kind(struct ctx *c, const struct ky_node *root, const char *api,
		     const char *kind)
{
	const char *slash = strchr(api, '/');
	size_t glen = slash ? (size_t)(slash - api) : 0;
	const char *version = slash ? slash + 1 : api;
	size_t i, v;

	for (i = 0; i < sizeof(kind_table) / sizeof(kind_table[0]); i++) {
		if (strcmp(kind, kind_names[kind_table[i].kind]) ||
		    strlen(kind_table[i].group) != glen ||
		    strncmp(api, kind_table[i].group, glen))
			continue;
		for (v = 0; v < 3 && kind_table[i].versions[v]; v++)
			if (!strcmp(version, kind_table[i].versions[v]))
				return (int)kind_table[i].kind;
		kerr_field(c, ky_map_get(root, "apiVersion"), "apiVersion",
			   "unsupported version '%s' of %s (supported: %s%s%s)", api, kind,
			   kind_table[i].versions[0], kind_table[i].versions[1] ? ", " : "",
			   kind_table[i].versions[1] ? kind_table[i].versions[1] : "");
		return -EINVAL;
	}
	return -ENOENT;
}

static int load_doc(struct km_set *s, const char *file, const struct ky_doc *doc,
		    struct ks_diags *d)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec",
		"status", NULL };
	static const char *const slice_top[] = { "apiVersion", "kind", "metadata", "addressType",
		"endpoints", "ports", NULL };
	const struct ky_node *root = doc->root, *meta, *spec = NULL, *kn, *nn, *nsn;
	struct ctx c = { .d = d, .file = file, .kind = "document", .ns = "", .name = NULL };
	const char *api = NULL, *kind = NULL, *name = NULL, *ns = "default";
	struct km_meta *mm = NULL;
	int k;

	if (root->type != KY_MAP) {
		ks_diag_add(d, false, "%s:%u:%u: expected a Kubernetes object (a mapping), got %s",
			    file, root->line, root->col, ky_type_name(root));
		return -EINVAL;
	}
	/* Identify the object first, leniently, so every later message can name it. */
	kn = field(root, "kind");
	meta = field(root, "metadata");
	nn = meta && meta->type == KY_MAP ? field(meta, "name") : NULL;
	nsn = meta && meta->type == KY_MAP ? field(meta, "namespace") : NULL;
	if (kn && kn->type == KY_SCALAR)
		c.kind = kn->str;
	if (nn && nn->type == KY_SCALAR)
		c.name = nn->str;
	if (nsn && nsn->type == KY_SCALAR && *nsn->str)
		ns = nsn->str;
	c.ns = ns;
	check_tree(&c, root);
	get_str(&c, root, "apiVersion", true, &api);
	get_str(&c, root, "kind", true, &kind);
	meta = get_map(&c, root, "metadata", true);
	if (meta) {
		size_t m = push(&c, "metadata");

		get_str(&c, meta, "name", true, &name);
		if (name && !*name)
			kerr_field(&c, meta, "name", "must not be empty");
		get_str(&c, meta, "namespace", false, &ns);
		check_str_map(&c, meta, "labels");
		check_str_map(&c, meta, "annotations");
		pop(&c, m);
	}
	if (!api || !kind || !name || !*name)
		return c.err ? c.err : -EINVAL;
	k = find_kind(&c, root, api, kind);
	if (k == -ENOENT) {
		pr_debug("skipping object of a kind ksplit does not interpret",
			 "file=%s line=%u kind=%s apiVersion=%s name=%s/%s", file, root->line, kind,
			 api, ns, name);
		return c.err;
	}
	if (k < 0)
		return c.err ? c.err : -EINVAL;
	check_keys(&c, root, k == KM_ENDPOINTSLICE ? slice_top : top_keys);
	if (k != KM_ENDPOINTSLICE) {
		spec = get_map(&c, root, "spec", true);
		if (!spec)
			return c.err ? c.err : -EINVAL;
	}
	switch (k) {
	case KM_GATEWAY: {
		struct km_gateway *g = grow((void **)&s->gateways, s->n_gateways, sizeof(*g));

		if (!g)
			return -ENOMEM;
		s->n_gateways++;
		mm = &g->m;
		push(&c, "spec");
		parse_gateway(&c, spec, g);
		break;
	}
	case KM_SERVICE: {
		struct km_service *sv = grow((void **)&s->services, s->n_services, sizeof(*sv));

		if (!sv)
			return -ENOMEM;
		s->n_services++;
		mm = &sv->m;
		push(&c, "spec");
		parse_service(&c, spec, sv);
		break;
	}
	case KM_ENDPOINTSLICE: {
		struct km_slice *sl = grow((void **)&s->slices, s->n_slices, sizeof(*sl));
		const struct ky_node *labels = field(meta, "labels"), *svc;

		if (!sl)
			return -ENOMEM;
		s->n_slices++;
		mm = &sl->m;
		svc = labels && labels->type == KY_MAP ? field(labels, SVC_NAME_LABEL) : NULL;
		if (svc && svc->type == KY_SCALAR)
			sl->svc_name = xstrdup(&c, svc->str);
		else
			pr_debug("EndpointSlice has no " SVC_NAME_LABEL " label; ignored",
				 "file=%s line=%u name=%s/%s", file, root->line, ns, name);
		parse_slice(&c, root, sl);
		break;
	}
	case KM_HTTPROUTE:
	case KM_TCPROUTE:
	case KM_UDPROUTE: {
		struct km_route *r = grow((void **)&s->routes, s->n_routes, sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->n_routes++;
		r->kind = (enum km_kind)k;
		r->m.ns = xstrdup(&c, ns);
		if (!r->m.ns)
			return -ENOMEM;
		parse_annotations(&c, meta, r);
		mm = &r->m;
		push(&c, "spec");
		parse_route(&c, spec, r);
		break;
	}
	case KM_REFERENCEGRANT: {
		struct km_grant *g = grow((void **)&s->grants, s->n_grants, sizeof(*g));

		if (!g)
			return -ENOMEM;
		s->n_grants++;
		mm = &g->m;
		push(&c, "spec");
		parse_grant(&c, spec, g);
		break;
	}
	case KM_TARGETGROUPPOLICY: {
		struct km_policy *p = grow((void **)&s->policies, s->n_policies, sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->n_policies++;
		p->m.ns = xstrdup(&c, ns);
		if (!p->m.ns)
			return -ENOMEM;
		mm = &p->m;
		push(&c, "spec");
		parse_policy(&c, spec, p);
		break;
	}
	}
	mm->file = file;
	mm->pos.line = root->line;
	mm->pos.col = root->col;
	mm->seq = s->seq++;
	if (!mm->ns)
		mm->ns = xstrdup(&c, ns);
	mm->name = xstrdup(&c, name);
	if (c.err)
		return c.err;
	return c.bad ? -EINVAL : 0;
}

int km_load_buffer(struct km_set *s, const char *name, const char *buf, size_t len,
		   struct ks_diags *d)
{
	struct ky_stream st = { 0 };
	char **files, *file;
	int err, ret = 0;
	size_t i;

	files = realloc(s->files, (s->n_files + 1) * sizeof(*files));
	if (!files)
		return -ENOMEM;
	s->files = files;
	file = strdup(name);
	if (!file)
		return -ENOMEM;
	s->files[s->n_files++] = file;
	ret = ky_parse(file, buf, len, &st, d);
	if (ret == -ENOMEM)
		goto out;
	for (i = 0; i < st.n; i++) {
		if (!st.docs[i].root)
			continue;
		err = load_doc(s, file, &st.docs[i], d);
		if (err == -ENOMEM) {
			ret = err;
			goto out;
		}
		if (err && !ret)
			ret = err;
	}
out:
	ky_stream_free(&st);
	return ret;
}

static int load_file(struct km_set *s, const char *path, struct ks_diags *d)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot open: %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot stat: %s", path, strerror(-err));
		goto out;
	}
	if (st.st_size > KM_MAX_FILE_BYTES) {
		ks_diag_add(d, false, "%s: file is larger than %u bytes", path, KM_MAX_FILE_BYTES);
		err = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			ks_diag_add(d, false, "%s: cannot read: %s", path, strerror(-err));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	err = km_load_buffer(s, path, buf, got, d);
out:
	free(buf);
	close(fd);
	return err;
}

static int yaml_entry(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	/* Hidden entries include ConfigMap volumes' ..data and ..<timestamp> internals. */
	if (e->d_name[0] == '.')
		return 0;
	return (n > 5 && !strcmp(e->d_name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(e->d_name + n - 4, ".yml"));
}

int km_load_path(struct km_set *s, const char *path, struct ks_diags *d)
{
	struct dirent **ents = NULL;
	struct stat st;
	int n, i, err = 0, ret = 0;

	if (stat(path, &st)) {
		err = -errno;
		ks_diag_add(d, false, "%s: %s", path, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(s, path, d);
	n = scandir(path, &ents, yaml_entry, alphasort);
	if (n < 0) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot read directory: %s", path, strerror(-err));
		return err;
	}
	for (i = 0; i < n; i++) {
		char *full = NULL;

		if (asprintf(&full, "%s/%s", path, ents[i]->d_name) < 0) {
			ret = -ENOMEM;
			break;
		}
		/* stat, not lstat: ConfigMap files are symlinks through ..data. */
		if (stat(full, &st)) {
			err = -errno;
			ks_diag_add(d, false, "%s: %s", full, strerror(-err));
		} else if (!S_ISREG(st.st_mode)) {
			pr_debug("skipping non-regular entry", "path=%s", full);
			err = 0;
		} else {
			err = load_file(s, full, d);
		}
		free(full);
		if (err == -ENOMEM) {
			ret = err;
			break;
		}
		/* An I/O error outranks a validation error in the return value. */
		if (err && (!ret || (ret == -EINVAL && err != -EINVAL)))
			ret = err;
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return ret;
}

/* ---- index and duplicates ---- */

static const char *key_name(const struct km_meta *m)
{
	return m->name;
}

static const char *key_slice_svc(const struct km_meta *m)
{
	return km_container(m, struct km_slice)->svc_name;
}

static int cmp_str0(const char *a, const char *b)
{
	if (!a || !b)
		return !a - !b ? (a ? 1 : -1) : 0;
	return strcmp(a, b);
}

/* qsort has no context argument: the key function of the index being sorted. */
static const char *(*sort_key)(const struct km_meta *m);

static int cmp_meta(const void *pa, const void *pb)
{
	const struct km_meta *a = *(const struct km_meta *const *)pa;
	const struct km_meta *b = *(const struct km_meta *const *)pb;
	int c = cmp_str0(a->ns, b->ns);

	if (!c)
		c = cmp_str0(sort_key(a), sort_key(b));
	if (!c)
		c = a->seq < b->seq ? -1 : a->seq > b->seq;
	return c;
}

static int index_build(struct km_index *ix, const void *arr, size_t n, size_t stride,
		       const char *(*key)(const struct km_meta *m))
{
	size_t i;

	free(ix->v);
	ix->n = 0;
	ix->key = key;
	ix->v = calloc(n ? n : 1, sizeof(*ix->v));
	if (!ix->v)
		return -ENOMEM;
	/* Every kind's struct starts with its km_meta, so the array stride finds them. */
	for (i = 0; i < n; i++)
		ix->v[i] = (const struct km_meta *)((const char *)arr + i * stride);
	ix->n = n;
	sort_key = key;
	qsort(ix->v, n, sizeof(*ix->v), cmp_meta);
	return 0;
}

void km_index_range(const struct km_index *ix, const char *ns, const char *key, size_t *lo,
		    size_t *hi)
{
	size_t l = 0, h = ix->n, m;

	/* Lower bound of (ns, key). */
	while (l < h) {
		const struct km_meta *x;
		int c;

		m = (l + h) / 2;
		x = ix->v[m];
		c = cmp_str0(x->ns, ns);
		if (!c)
			c = cmp_str0(ix->key(x), key);
		if (c < 0)
			l = m + 1;
		else
			h = m;
	}
	*lo = l;
	for (h = l; h < ix->n && !cmp_str0(ix->v[h]->ns, ns) && !cmp_str0(ix->key(ix->v[h]), key);
	     h++)
		;
	*hi = h;
}

const struct km_meta *km_index_find(const struct km_index *ix, const char *ns, const char *key)
{
	size_t lo, hi;

	if (!ns || !key)
		return NULL;
	km_index_range(ix, ns, key, &lo, &hi);
	return lo < hi ? ix->v[lo] : NULL;
}

int km_set_index(struct km_set *s)
{
	_Static_assert(offsetof(struct km_gateway, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_service, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_slice, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_route, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_grant, m) == 0, "km_meta first");
	_Static_assert(offsetof(struct km_policy, m) == 0, "km_meta first");

	if (index_build(&s->ix_gateways, s->gateways, s->n_gateways, sizeof(*s->gateways), key_name) ||
	    index_build(&s->ix_services, s->services, s->n_services, sizeof(*s->services), key_name) ||
	    index_build(&s->ix_slices, s->slices, s->n_slices, sizeof(*s->slices), key_slice_svc))
		return -ENOMEM;
	return 0;
}

/*
 * Same kind, same ns/name: every later definition is reported against the
 * first one of its kind. Sorted, the copies sit in one run of equal ns/name
 * (routes of different kinds may share a name, hence the scan in the run).
 */
static int dups_sorted(struct ks_diags *d, const char *(*kind)(const struct km_meta *m),
		       const struct km_index *ix)
{
	size_t i, j, run = 0;
	int ret = 0;

	for (i = 1; i < ix->n; i++) {
		const struct km_meta *b = ix->v[i], *a = NULL;

		if (!b->name || !ix->v[run]->name || cmp_str0(ix->v[run]->ns, b->ns) ||
		    strcmp(ix->v[run]->name, b->name)) {
			run = i;
			continue;
		}
		for (j = run; j < i && !a; j++)
			if (!strcmp(kind(ix->v[j]), kind(b)))
				a = ix->v[j];
		if (!a)
			continue;
		if (ks_diag_obj(d, false, b->file, b->pos.line, b->pos.col, kind(b), b->ns, b->name,
				NULL, "defined twice: also at %s:%u:%u", a->file, a->pos.line,
				a->pos.col))
			return -ENOMEM;
		ret = -EINVAL;
	}
	return ret;
}

#define KIND_FN(fn, text) \
	static const char *fn(const struct km_meta *m) { (void)m; return text; }
KIND_FN(kind_gateway, "Gateway")
KIND_FN(kind_service, "Service")
KIND_FN(kind_slice, "EndpointSlice")
KIND_FN(kind_grant, "ReferenceGrant")
KIND_FN(kind_policy, "TargetGroupPolicy")

static const char *kind_route(const struct km_meta *m)
{
	return km_kind_name(km_container(m, struct km_route)->kind);
}

int km_check_duplicates(struct km_set *s, struct ks_diags *d)
{
	struct km_index by_name = {};
	struct {
		const void *arr;
		size_t n, stride;
		const char *(*kind)(const struct km_meta *m);
	} kinds[] = {
		{ s->gateways, s->n_gateways, sizeof(*s->gateways), kind_gateway },
		{ s->services, s->n_services, sizeof(*s->services), kind_service },
		{ s->slices, s->n_slices, sizeof(*s->slices), kind_slice },
		{ s->grants, s->n_grants, sizeof(*s->grants), kind_grant },
		{ s->policies, s->n_policies, sizeof(*s->policies), kind_policy },
		/* Route kinds share the array; dups_sorted compares kinds too. */
		{ s->routes, s->n_routes, sizeof(*s->routes), kind_route },
	};
	size_t k;
	int err, ret = 0;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (index_build(&by_name, kinds[k].arr, kinds[k].n, kinds[k].stride, key_name)) {
			ret = -ENOMEM;
			break;
		}
		err = dups_sorted(d, kinds[k].kind, &by_name);
		if (err == -ENOMEM) {
			ret = err;
			break;
		}
		if (err)
			ret = err;
	}
	free(by_name.v);
	if (ret != -ENOMEM) {
		err = km_set_index(s);
		if (err)
			ret = err;
	}
	return ret;
}

/* ---- freeing ---- */

static void free_meta(struct km_meta *m)
{
	free(m->ns);
	free(m->name);
}

void km_set_free(struct km_set *s)
{
	size_t i, j;

	if (!s)
		return;
	free(s->ix_gateways.v);
	free(s->ix_services.v);
	free(s->ix_slices.v);
	for (i = 0; i < s->n_gateways; i++) {
		free_meta(&s->gateways[i].m);
		free(s->gateways[i].addrs);
		for (j = 0; j < s->gateways[i].n_listeners; j++)
			free(s->gateways[i].listeners[j].name);
		free(s->gateways[i].listeners);
	}
	for (i = 0; i < s->n_services; i++) {
		free_meta(&s->services[i].m);
		free(s->services[i].ips);
		for (j = 0; j < s->services[i].n_ports; j++)
			free(s->services[i].ports[j].name);
		free(s->services[i].ports);
	}
	for (i = 0; i < s->n_slices; i++) {
		free_meta(&s->slices[i].m);
		free(s->slices[i].svc_name);
		for (j = 0; j < s->slices[i].n_ports; j++)
			free(s->slices[i].ports[j].name);
		free(s->slices[i].ports);
		for (j = 0; j < s->slices[i].n_eps; j++)
			free(s->slices[i].eps[j].name);
		free(s->slices[i].eps);
	}
	for (i = 0; i < s->n_routes; i++) {
		struct km_route *r = &s->routes[i];

		free_meta(&r->m);
		for (j = 0; j < r->n_parents; j++) {
			free(r->parents[j].group);
			free(r->parents[j].kind);
			free(r->parents[j].ns);
			free(r->parents[j].name);
			free(r->parents[j].section);
		}
		free(r->parents);
		for (j = 0; j < r->n_backends; j++) {
			free(r->backends[j].group);
			free(r->backends[j].kind);
			free(r->backends[j].ns);
			free(r->backends[j].name);
		}
		free(r->backends);
		free(r->ann_passive_failures);
		free(r->ann_empty_group);
	}
	for (i = 0; i < s->n_grants; i++) {
		struct km_grant *g = &s->grants[i];

		free_meta(&g->m);
		for (j = 0; j < g->n_from; j++) {
			free(g->from[j].group);
			free(g->from[j].kind);
			free(g->from[j].ns);
		}
		for (j = 0; j < g->n_to; j++) {
			free(g->to[j].group);
			free(g->to[j].kind);
			free(g->to[j].name);
		}
		free(g->from);
		free(g->to);
	}
	for (i = 0; i < s->n_policies; i++) {
		struct ksm_health *h = &s->policies[i].h;

		free_meta(&s->policies[i].m);
		free(h->svc_ns);
		free(h->svc_name);
		free(h->status_match);
		free(h->path);
		free(h->protocol);
		free(h->protocol_version);
		free(h->source);
	}
	free(s->gateways);
	free(s->services);
	free(s->slices);
	free(s->routes);
	free(s->grants);
	free(s->policies);
	for (i = 0; i < s->n_files; i++)
		free(s->files[i]);
	free(s->files);
	memset(s, 0, sizeof(*s));
}
