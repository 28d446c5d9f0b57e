// SPDX-License-Identifier: BSD-2-Clause
/* EndpointSlice: the endpoints behind a Service port. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ksplit/abi.h"

#include "common/log.h"
#include "config/kinds.h"

#define SVC_NAME_LABEL	"kubernetes.io/service-name"

/* An EndpointSlice has no spec: its fields sit at the top, next to metadata. */
void km_slice_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	static const char *const ep_keys[] = { "addresses", "conditions", "hostname", "nodeName",
		"zone", "targetRef", "hints", "deprecatedTopology", NULL };
	static const char *const port_keys[] = { "name", "port", "protocol", "appProtocol", NULL };
	static const char *const cond_keys[] = { "ready", "serving", "terminating", NULL };
	static const char *const ref_keys[] = { "apiVersion", "fieldPath", "kind", "name",
		"namespace", "resourceVersion", "uid", NULL };
	static const char *const hint_keys[] = { "forZones", "forNodes", NULL };
	static const char *const atypes[] = { "IPv4", "IPv6", "FQDN", NULL };
	const struct ky_node *root = doc->root, *labels = km_field(doc->meta, "labels"), *svc;
	const struct ky_node *ports, *eps;
	struct km_slice *s = obj;
	const char *str = NULL;
	int at = -1;
	size_t i, j, m, m2;

	svc = labels && labels->type == KY_MAP ? km_field(labels, SVC_NAME_LABEL) : NULL;
	if (svc && svc->type == KY_SCALAR)
		s->svc_name = km_strdup(c, svc->str);
	else
		pr_debug("EndpointSlice has no " SVC_NAME_LABEL " label; ignored",
			 "file=%s line=%u name=%s/%s", c->file, root->line, s->m.ns, s->m.name);

	if (!km_get_enum(c, root, "addressType", true, atypes, &at) && at >= 0)
		s->family = at == 0 ? KS_FAMILY_V4 : at == 1 ? KS_FAMILY_V6 : 0;
	ports = km_get_seq(c, root, "ports", false);
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
		bool ok = true;

		m = km_push(c, "ports[%zu]", i);
		if (!km_item_map(c, p)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, p, port_keys);
		ok &= !km_dup_str(c, p, "name", false, "", &sp->name);
		ok &= !km_get_port(c, p, "port", false, &sp->port, &sp->has_port);
		ok &= !km_get_l4proto(c, p, "protocol", &sp->proto);
		km_get_str(c, p, "appProtocol", false, &str);
		if (ok)
			s->n_ports++;
		else {
			free(sp->name);
			sp->name = NULL;
		}
		km_pop(c, m);
	}
	eps = km_get_seq(c, root, "endpoints", false);
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

		m = km_push(c, "endpoints[%zu]", i);
		if (!km_item_map(c, e)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, e, ep_keys);
		addrs = km_get_seq(c, e, "addresses", true);
		if (addrs && (!addrs->n || addrs->n > 100)) {
			km_err_field(c, addrs, "addresses", "1 to 100 addresses are required, got %zu",
				     addrs->n);
			addrs = NULL;
		}
		ok = addrs != NULL;
		for (j = 0; addrs && j < addrs->n; j++) {
			const struct ky_node *v = addrs->kids[j];
			struct ksm_addr a;

			m2 = km_push(c, "addresses[%zu]", j);
			if (v->type != KY_SCALAR) {
				km_err(c, v, "expected a string, got %s", ky_type_name(v));
				ok = false;
			} else if (s->family) {
				if (km_parse_addr(c, v, &a)) {
					ok = false;
				} else if (a.family != s->family) {
					km_err(c, v, "'%s' is not an %s address (addressType)", v->str,
					       s->family == KS_FAMILY_V4 ? "IPv4" : "IPv6");
					ok = false;
				} else if (j == 0) {
					se->addr = a;
				}
			}
			km_pop(c, m2);
		}
		se->ready = true;
		cond = km_get_map(c, e, "conditions", false);
		if (cond) {
			m2 = km_push(c, "conditions");
			km_check_keys(c, cond, cond_keys);
			km_get_bool(c, cond, "ready", &se->ready, NULL);
			se->serving = se->ready;
			km_get_bool(c, cond, "serving", &se->serving, &present);
			km_get_bool(c, cond, "terminating", &se->terminating, NULL);
			km_pop(c, m2);
		} else {
			se->serving = true;
		}
		km_get_str(c, e, "nodeName", false, &str);
		km_get_str(c, e, "zone", false, &str);
		km_check_str_map(c, e, "deprecatedTopology");
		hints = km_get_map(c, e, "hints", false);
		if (hints) {
			static const char *const zn_keys[] = { "name", NULL };
			const char *hk[] = { "forZones", "forNodes" };
			size_t h, k;

			m2 = km_push(c, "hints");
			km_check_keys(c, hints, hint_keys);
			for (h = 0; h < 2; h++) {
				const struct ky_node *z = km_get_seq(c, hints, hk[h], false);

				for (k = 0; z && k < z->n; k++) {
					size_t m3 = km_push(c, "%s[%zu]", hk[h], k);

					if (km_item_map(c, z->kids[k])) {
						km_check_keys(c, z->kids[k], zn_keys);
						km_get_str(c, z->kids[k], "name", true, &str);
					}
					km_pop(c, m3);
				}
			}
			km_pop(c, m2);
		}
		ref = km_get_map(c, e, "targetRef", false);
		str = NULL;
		if (ref) {
			const char *dummy;

			m2 = km_push(c, "targetRef");
			km_check_keys(c, ref, ref_keys);
			for (j = 0; ref_keys[j]; j++)
				if (strcmp(ref_keys[j], "name"))
					km_get_str(c, ref, ref_keys[j], false, &dummy);
			km_get_str(c, ref, "name", false, &str);
			km_pop(c, m2);
		}
		if (!str)
			km_get_str(c, e, "hostname", false, &str);
		else
			km_get_str(c, e, "hostname", false, &(const char *){ NULL });
		if (str) {
			se->name = km_strdup(c, str);
			if (!se->name)
				ok = false;
		}
		if (ok && s->family)
			s->n_eps++;
		else {
			free(se->name);
			memset(se, 0, sizeof(*se));
		}
		km_pop(c, m);
	}
}


void km_slice_free(void *obj)
{
	struct km_slice *s = obj;
	size_t i;

	free(s->svc_name);
	for (i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	for (i = 0; i < s->n_eps; i++)
		free(s->eps[i].name);
	free(s->eps);
}
