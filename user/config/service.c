// SPDX-License-Identifier: BSD-2-Clause
/* Service: ClusterIPs (mesh parents) and ports (what backendRefs name). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"

static void add_ip(struct km_service *s, const struct ksm_addr *a)
{
	size_t i;

	for (i = 0; i < s->n_ips; i++)
		if (!memcmp(&s->ips[i], a, sizeof(*a)))
			return;
	s->ips[s->n_ips++] = *a;
}

void km_service_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
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
	const struct ky_node *spec = doc->spec, *ips, *ports, *seq, *sac;
	struct km_service *s = obj;
	const char *cip = NULL;
	struct ksm_addr a;
	int idx = 0;
	long long x;
	bool b;
	size_t i, j, m;

	km_push(c, "spec");
	km_check_keys(c, spec, spec_keys);
	if (!km_get_enum(c, spec, "type", false, types, &idx) && idx == 3)
		s->external_name = true;
	ips = km_get_seq(c, spec, "clusterIPs", false);
	s->ips = calloc(1 + (ips ? ips->n : 0), sizeof(*s->ips));
	if (!s->ips) {
		c->err = -ENOMEM;
		return;
	}
	if (!km_get_str(c, spec, "clusterIP", false, &cip) && cip && *cip) {
		m = km_push(c, "clusterIP");
		if (!strcmp(cip, "None"))
			s->headless = true;
		else if (!km_parse_addr(c, ky_map_get(spec, "clusterIP"), &a))
			add_ip(s, &a);
		km_pop(c, m);
	}
	for (i = 0; ips && i < ips->n; i++) {
		const struct ky_node *v = ips->kids[i];

		m = km_push(c, "clusterIPs[%zu]", i);
		if (v->type != KY_SCALAR)
			km_err(c, v, "expected a string, got %s", ky_type_name(v));
		else if (!strcmp(v->str, "None"))
			s->headless = true;
		else if (!km_parse_addr(c, v, &a))
			add_ip(s, &a);
		km_pop(c, m);
	}
	if (s->headless && s->n_ips)
		km_err_field(c, spec, "clusterIP", "'None' (headless) cannot be combined with IPs");
	seq = km_get_seq(c, spec, "externalIPs", false);
	for (i = 0; seq && i < seq->n; i++) {
		m = km_push(c, "externalIPs[%zu]", i);
		if (seq->kids[i]->type != KY_SCALAR)
			km_err(c, seq->kids[i], "expected a string, got %s", ky_type_name(seq->kids[i]));
		else
			km_parse_addr(c, seq->kids[i], &a);
		km_pop(c, m);
	}
	seq = km_get_seq(c, spec, "ipFamilies", false);
	for (i = 0; seq && i < seq->n; i++) {
		const struct ky_node *v = seq->kids[i];

		m = km_push(c, "ipFamilies[%zu]", i);
		if (v->type != KY_SCALAR || (strcmp(v->str, families[0]) && strcmp(v->str, families[1])))
			km_err(c, v, "expected IPv4 or IPv6");
		km_pop(c, m);
	}
	km_get_enum(c, spec, "ipFamilyPolicy", false, fam_policies, &idx);
	km_get_enum(c, spec, "sessionAffinity", false, affinities, &idx);
	km_get_enum(c, spec, "externalTrafficPolicy", false, traffic_pol, &idx);
	km_get_enum(c, spec, "internalTrafficPolicy", false, traffic_pol, &idx);
	km_get_bool(c, spec, "allocateLoadBalancerNodePorts", &b, NULL);
	km_get_bool(c, spec, "publishNotReadyAddresses", &b, NULL);
	km_get_port(c, spec, "healthCheckNodePort", false, &(uint16_t){ 0 }, NULL);
	km_get_str(c, spec, "externalName", false, &cip);
	km_get_str(c, spec, "loadBalancerClass", false, &cip);
	km_get_str(c, spec, "loadBalancerIP", false, &cip);
	km_get_str(c, spec, "trafficDistribution", false, &cip);
	km_check_str_list(c, spec, "loadBalancerSourceRanges");
	km_check_str_map(c, spec, "selector");
	sac = km_get_map(c, spec, "sessionAffinityConfig", false);
	if (sac) {
		static const char *const sac_keys[] = { "clientIP", NULL };
		static const char *const cip_keys[] = { "timeoutSeconds", NULL };
		const struct ky_node *ci;

		m = km_push(c, "sessionAffinityConfig");
		km_check_keys(c, sac, sac_keys);
		ci = km_get_map(c, sac, "clientIP", false);
		if (ci) {
			size_t m2 = km_push(c, "clientIP");

			km_check_keys(c, ci, cip_keys);
			km_get_int(c, ci, "timeoutSeconds", false, 1, 86400, &x, NULL);
			km_pop(c, m2);
		}
		km_pop(c, m);
	}

	ports = km_get_seq(c, spec, "ports", false);
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
		bool ok = true;

		m = km_push(c, "ports[%zu]", i);
		if (!km_item_map(c, p)) {
			km_pop(c, m);
			continue;
		}
		km_check_keys(c, p, port_keys);
		ok &= !km_dup_str(c, p, "name", false, "", &sp->name);
		ok &= !km_get_port(c, p, "port", true, &sp->port, NULL);
		ok &= !km_get_l4proto(c, p, "protocol", &sp->proto);
		km_get_str(c, p, "appProtocol", false, &cip);
		km_get_port(c, p, "nodePort", false, &(uint16_t){ 0 }, NULL);
		tp = km_field(p, "targetPort");
		if (tp && tp->type == KY_SCALAR && !tp->quoted && !km_parse_int(tp, &x))
			km_get_port(c, p, "targetPort", false, &(uint16_t){ 0 }, NULL);
		else if (tp && tp->type != KY_SCALAR)
			km_err_field(c, tp, "targetPort", "expected a port number or name, got %s",
				     ky_type_name(tp));
		if (ok && sp->name) {
			if (ports->n > 1 && !*sp->name) {
				km_err_field(c, p, "name",
					     "required when a Service has more than one port");
				ok = false;
			}
			for (j = 0; ok && j < s->n_ports; j++) {
				if (*sp->name && !strcmp(s->ports[j].name, sp->name)) {
					km_err_field(c, ky_map_get(p, "name"), "name",
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
		km_pop(c, m);
	}
}


void km_service_free(void *obj)
{
	struct km_service *s = obj;
	size_t i;

	free(s->ips);
	for (i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
}
