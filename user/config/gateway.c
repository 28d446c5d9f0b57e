// SPDX-License-Identifier: BSD-2-Clause
/* Gateway: addresses (the VIPs ksplit intercepts) and listeners. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"

/* Indexed by enum km_lproto. */
const char *const km_lproto_names[] = { "HTTP", "HTTPS", "TCP", "UDP", "TLS", NULL };

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
		bool ok = true;

		m = km_push(c, "listeners[%zu]", i);
		if (!km_item_map(c, l)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, l, lis_keys);
		ok &= !km_dup_str(c, l, "name", true, NULL, &kl->name);
		ok &= !km_get_port(c, l, "port", true, &kl->port, NULL);
		ok &= !km_get_enum(c, l, "protocol", true, km_lproto_names, &proto);
		kl->pos.line = l->line;
		kl->pos.col = l->col;
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
			g->n_listeners++;
		} else {
			free(kl->name);
			kl->name = NULL;
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
		free(g->listeners[i].name);
	free(g->listeners);
}
