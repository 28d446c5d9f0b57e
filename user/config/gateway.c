// SPDX-License-Identifier: BSD-2-Clause
/*
 * Gateway: addresses (the VIPs ksplit intercepts) and listeners (port,
 * protocol, tls, hostname, allowedRoutes). Whether a listener takes a route
 * is listeners.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"
#include "config/listeners.h"

/* Indexed by enum km_lproto. */
const char *const km_lproto_names[] = { "HTTP", "HTTPS", "TCP", "UDP", "TLS", NULL };
/* Indexed by enum km_from. */
static const char *const from_names[] = { "Same", "All", "Selector", NULL };

static void free_listener(struct km_listener *l)
{
	size_t i;

	free(l->name);
	free(l->hostname);
	km_selector_free(&l->sel);
	for (i = 0; i < l->n_kinds; i++) {
		free(l->kinds[i].group);
		free(l->kinds[i].kind);
	}
	free(l->kinds);
	memset(l, 0, sizeof(*l));
}

static void set_pos(struct km_pos *p, const struct ky_node *n)
{
	p->line = n->line;
	p->col = n->col;
}

/*
 * tls: mode (Terminate by default) for HTTPS and TLS; refused on the others,
 * as by the API. False when the mode is wrong: kl->tls then means nothing.
 */
static bool parse_tls(struct km_ctx *c, const struct ky_node *l, struct km_listener *kl)
{
	static const char *const keys[] = { "mode", "certificateRefs", "options",
		"frontendValidation", NULL };
	static const char *const ref_keys[] = { "group", "kind", "name", "namespace", NULL };
	static const char *const modes[] = { "Terminate", "Passthrough", NULL };
	const struct ky_node *tls = km_get_map(c, l, "tls", false), *refs;
	const char *str;
	bool ok = true;
	int mode = 0;
	size_t i, m, m2;

	set_pos(&kl->tls_pos, tls ? tls : ky_map_get(l, "protocol"));
	if (kl->proto != KM_L_HTTPS && kl->proto != KM_L_TLS) {
		if (tls)
			km_err_field(c, tls, "tls", "must not be set for protocol %s: only HTTPS and "
				     "TLS listeners have TLS", km_lproto_names[kl->proto]);
		return true;
	}
	kl->tls = KM_TLS_TERMINATE;
	if (!tls)
		return true;
	m = km_push(c, "tls");
	km_check_keys(c, tls, keys);
	if (km_get_enum(c, tls, "mode", false, modes, &mode)) {
		ok = false;
	} else if (mode == 1 && kl->proto == KM_L_HTTPS) {
		km_err_field(c, ky_map_get(tls, "mode"), "mode",
			     "Passthrough is invalid for protocol HTTPS, which terminates TLS; for "
			     "TLS passthrough use protocol TLS");
		ok = false;
	} else if (mode == 1) {
		kl->tls = KM_TLS_PASSTHROUGH;
	}
	refs = km_get_seq(c, tls, "certificateRefs", false);
	for (i = 0; refs && i < refs->n; i++) {
		m2 = km_push(c, "certificateRefs[%zu]", i);
		if (km_item_map(c, refs->kids[i])) {
			km_check_keys(c, refs->kids[i], ref_keys);
			km_get_str(c, refs->kids[i], "name", true, &str);
		}
		km_pop(c, m2);
	}
	km_check_str_map(c, tls, "options");
	km_get_map(c, tls, "frontendValidation", false);
	km_pop(c, m);
	return ok;
}

/* hostname: refused on TCP and UDP, as by the API. */
static void parse_hostname(struct km_ctx *c, const struct ky_node *l, struct km_listener *kl)
{
	const char *hn = NULL;

	if (km_get_str(c, l, "hostname", false, &hn) || !hn || !*hn)
		return;
	if (kl->proto == KM_L_TCP || kl->proto == KM_L_UDP) {
		km_err_field(c, ky_map_get(l, "hostname"), "hostname",
			     "must not be set for protocol %s, which has no hostnames",
			     km_lproto_names[kl->proto]);
		return;
	}
	kl->hostname = km_strdup(c, hn);
	set_pos(&kl->hostname_pos, ky_map_get(l, "hostname"));
}

static void parse_kinds(struct km_ctx *c, const struct ky_node *ar, struct km_listener *kl)
{
	static const char *const keys[] = { "group", "kind", NULL };
	const struct ky_node *kinds = km_get_seq(c, ar, "kinds", false);
	size_t i, m;

	if (!kinds || !kinds->n)
		return;
	if (kinds->n > 8) {
		km_err_field(c, kinds, "kinds", "at most 8 kinds are allowed, got %zu", kinds->n);
		return;
	}
	kl->kinds = calloc(kinds->n, sizeof(*kl->kinds));
	if (!kl->kinds) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < kinds->n; i++) {
		struct km_group_kind *k = &kl->kinds[kl->n_kinds];
		bool ok = true;

		m = km_push(c, "kinds[%zu]", i);
		if (km_item_map(c, kinds->kids[i])) {
			km_check_keys(c, kinds->kids[i], keys);
			ok &= !km_dup_str(c, kinds->kids[i], "group", false, KM_GW_GROUP, &k->group);
			ok &= !km_dup_str(c, kinds->kids[i], "kind", true, NULL, &k->kind);
			if (ok && k->group && k->kind) {
				kl->n_kinds++;
			} else {
				free(k->group);
				free(k->kind);
				k->group = k->kind = NULL;
			}
		}
		km_pop(c, m);
	}
}

/* allowedRoutes: namespaces {from, selector} and kinds. */
static void parse_allowed(struct km_ctx *c, const struct ky_node *l, struct km_listener *kl)
{
	static const char *const keys[] = { "namespaces", "kinds", NULL };
	static const char *const ns_keys[] = { "from", "selector", NULL };
	const struct ky_node *ar = km_get_map(c, l, "allowedRoutes", false), *ns, *sel;
	int from = KM_FROM_SAME;
	size_t m, m2, m3;

	if (!ar)
		return;
	m = km_push(c, "allowedRoutes");
	km_check_keys(c, ar, keys);
	ns = km_get_map(c, ar, "namespaces", false);
	if (ns) {
		m2 = km_push(c, "namespaces");
		km_check_keys(c, ns, ns_keys);
		if (!km_get_enum(c, ns, "from", false, from_names, &from))
			kl->from = (enum km_from)from;
		sel = km_get_map(c, ns, "selector", false);
		if (sel) {
			m3 = km_push(c, "selector");
			km_get_selector(c, sel, &kl->sel);
			km_pop(c, m3);
		} else if (kl->from == KM_FROM_SELECTOR && !km_field(ns, "selector")) {
			km_err_field(c, ns, "selector", "required when from is Selector: the labels "
				     "of the namespaces whose routes the listener takes");
		}
		km_pop(c, m2);
	}
	parse_kinds(c, ar, kl);
	km_pop(c, m);
}

/*
 * What ksplit cannot honour on a listener, shown even when no route attaches
 * (tls_ok false: its mode is wrong and already reported).
 */
static void warn_unsupported(struct km_ctx *c, const struct ky_node *l,
			     const struct km_listener *kl, bool tls_ok)
{
	char why[512];
	size_t m;

	if (tls_ok && km_listener_tls_why(kl, why, sizeof(why))) {
		m = km_push(c, "%s", km_field(l, "tls") ? "tls" : "protocol");
		km_warn(c, km_field(l, "tls") ? km_field(l, "tls") : km_field(l, "protocol"),
			"%s; until then no route is accepted on this listener", why);
		km_pop(c, m);
	}
	if (km_listener_hostname_why(kl, why, sizeof(why))) {
		m = km_push(c, "hostname");
		km_warn(c, km_field(l, "hostname"),
			"%s; until then no route is accepted on this listener", why);
		km_pop(c, m);
	}
}

/*
 * The entries of spec.addresses or (live objects) status.addresses. An entry
 * the implementation reported in status is not the user's to fix: one that is
 * not an IP address is skipped with a warning there, not refused.
 */
static void parse_addrs(struct km_ctx *c, const struct ky_node *addrs, bool status,
			struct km_gateway *g)
{
	static const char *const addr_keys[] = { "type", "value", NULL };
	size_t i, m;

	if (addrs && addrs->n > 16) {
		km_err_field(c, addrs, "addresses", "at most 16 addresses are allowed, got %zu",
			     addrs->n);
		return;
	}
	if (!addrs || !addrs->n)
		return;
	g->addrs = calloc(addrs->n, sizeof(*g->addrs));
	if (!g->addrs) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < addrs->n; i++) {
		const struct ky_node *a = addrs->kids[i];
		const char *type = "IPAddress", *val = NULL;

		m = km_push(c, "addresses[%zu]", i);
		if (km_item_map(c, a)) {
			if (!status)
				km_check_keys(c, a, addr_keys);
			km_get_str(c, a, "type", false, &type);
			if (!km_get_str(c, a, "value", true, &val)) {
				if (strcmp(type, "IPAddress") && status)
					km_warn_field(c, ky_map_get(a, "type"), "type",
						      "address type '%s' cannot be intercepted: "
						      "skipped", type);
				else if (strcmp(type, "IPAddress"))
					km_err_field(c, ky_map_get(a, "type"), "type",
						     "address type '%s' cannot be intercepted: ksplit "
						     "needs IPAddress addresses", type);
				else if (!km_parse_addr(c, ky_map_get(a, "value"), &g->addrs[g->n_addrs]))
					g->n_addrs++;
			}
		}
		km_pop(c, m);
	}
}

void km_gateway_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	static const char *const spec_keys[] = { "gatewayClassName", "addresses", "listeners",
		"infrastructure", "backendTLS", "allowedListeners", NULL };
	static const char *const lis_keys[] = { "name", "hostname", "port", "protocol", "tls",
		"allowedRoutes", NULL };
	const struct ky_node *spec = doc->spec, *addrs, *lis, *status;
	struct km_gateway *g = obj;
	const char *cls = NULL;
	size_t i, j, m, m2, top;

	top = km_push(c, "spec");
	km_check_keys(c, spec, spec_keys);
	km_get_str(c, spec, "gatewayClassName", true, &cls);
	addrs = km_get_seq(c, spec, "addresses", false);
	parse_addrs(c, addrs, false, g);
	/* None asked for: a live Gateway (kubectl get -o yaml) reports the ones it got. */
	status = km_field(doc->root, "status");
	if ((!addrs || !addrs->n) && status && status->type == KY_MAP) {
		km_pop(c, top);
		km_push(c, "status");
		parse_addrs(c, km_get_seq(c, status, "addresses", false), true, g);
		km_pop(c, top);
		km_push(c, "spec");
	}
	if ((!addrs || !addrs->n) && !g->n_addrs)
		km_err_field(c, spec, "addresses",
			     "a Gateway needs at least one IPAddress and neither spec.addresses nor "
			     "status.addresses has one: ksplit intercepts connect() to the Gateway's "
			     "addresses. Write spec.addresses: [{type: IPAddress, value: <ClusterIP "
			     "of the Gateway's Service>}], or attach the route to the Service "
			     "instead (GAMMA: parentRefs: [{group: \"\", kind: Service, name: "
			     "<Service>, port: <port>}])");
	lis = km_get_seq(c, spec, "listeners", true);
	if (lis && (!lis->n || lis->n > 64)) {
		km_err_field(c, lis, "listeners", "1 to 64 listeners are required, got %zu", lis->n);
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
		bool ok = true, tls_ok;

		m = km_push(c, "listeners[%zu]", i);
		if (!km_item_map(c, l)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, l, lis_keys);
		ok &= !km_dup_str(c, l, "name", true, NULL, &kl->name);
		ok &= !km_get_port(c, l, "port", true, &kl->port, NULL);
		ok &= !km_get_enum(c, l, "protocol", true, km_lproto_names, &proto);
		set_pos(&kl->pos, l);
		for (j = 0; ok && kl->name && j < g->n_listeners; j++) {
			if (!strcmp(g->listeners[j].name, kl->name)) {
				m2 = km_push(c, "name");
				km_err(c, ky_map_get(l, "name"), "duplicate listener name '%s'", kl->name);
				km_pop(c, m2);
				ok = false;
			}
		}
		if (ok && proto >= 0) {
			kl->proto = (enum km_lproto)proto;
			tls_ok = parse_tls(c, l, kl);
			parse_hostname(c, l, kl);
			parse_allowed(c, l, kl);
			warn_unsupported(c, l, kl, tls_ok);
			g->n_listeners++;
		} else {
			free_listener(kl);
		}
		km_pop(c, m);
	}
}


void km_gateway_free(void *obj)
{
	struct km_gateway *g = obj;
	size_t i;

	free(g->addrs);
	for (i = 0; i < g->n_listeners; i++)
		free_listener(&g->listeners[i]);
	free(g->listeners);
}
