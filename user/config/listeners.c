// SPDX-License-Identifier: BSD-2-Clause
/*
 * Whether a Gateway listener takes a route (listeners.h). Gateway API's
 * order: the listener must allow the route (its protocol and
 * allowedRoutes.kinds carry the kind, allowedRoutes.namespaces admits the
 * namespace: NotAllowedByListeners); then ksplit must be able to honour the
 * listener (UnsupportedValue otherwise).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/kinds.h"
#include "config/listeners.h"

/* "listener 'l' of Gateway ns/g" followed by fmt. */
static void say(char *msg, size_t len, const struct km_gateway *g, const struct km_listener *l,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void say(char *msg, size_t len, const struct km_gateway *g, const struct km_listener *l,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!msg || !len)
		return;
	n = snprintf(msg, len, "listener '%s' of Gateway %s/%s", l->name, g->m.ns, g->m.name);
	if (n < 0 || (size_t)n >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg + n, len - (size_t)n, fmt, ap);
	va_end(ap);
}

bool km_listener_tls_why(const struct km_listener *l, char *msg, size_t len)
{
	if (l->tls != KM_TLS_TERMINATE)
		return false;
	ks_set_err(msg, len, "TLS mode Terminate (the default for %s) cannot be honoured: ksplit "
		   "terminates no TLS, so the clients' TLS would reach a backend that speaks plain "
		   "%s; %s", km_lproto_names[l->proto], l->proto == KM_L_HTTPS ? "HTTP" : "TCP",
		   l->proto == KM_L_HTTPS ?
		   "use a TLS listener with tls.mode Passthrough (the backend terminates TLS), "
		   "or an HTTP listener" :
		   "set tls.mode Passthrough (the backend terminates TLS), or use a TCP listener");
	return true;
}

bool km_listener_hostname_why(const struct km_listener *l, char *msg, size_t len)
{
	if (!l->hostname)
		return false;
	ks_set_err(msg, len, "hostname '%s' cannot be enforced: %s (no Host header or SNI yet), "
		   "so the listener would take connections for every hostname; remove it",
		   l->hostname, KM_L4_WHY);
	return true;
}

static bool kind_listed(const struct km_listener *l, const struct km_route *r)
{
	size_t i;

	for (i = 0; i < l->n_kinds; i++)
		if (!strcmp(l->kinds[i].group, KM_GW_GROUP) && !strcmp(l->kinds[i].kind, r->m.kind))
			return true;
	return false;
}

/* "TCPRoute, policy.linkerd.io/HTTPRoute": the kinds of allowedRoutes.kinds. */
static void kinds_text(const struct km_listener *l, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < l->n_kinds && used < len; i++) {
		const struct km_group_kind *k = &l->kinds[i];
		bool gw = !strcmp(k->group, KM_GW_GROUP);

		n = snprintf(buf + used, len - used, "%s%s%s%s", i ? ", " : "", gw ? "" : k->group,
			     gw ? "" : "/", k->kind);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* "(a, b)": the values of a selector expression. */
static void values_text(const struct km_sel_expr *x, char *buf, size_t len)
{
	size_t i, used;

	snprintf(buf, len, "(");
	for (i = 0; i < x->n_values; i++) {
		used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", i ? ", " : "", x->values[i]);
	}
	used = strlen(buf);
	snprintf(buf + used, len - used, ")");
}

/* "and it has no label k" / "and it has k=v" */
static void has_text(const char *key, const char *val, char *buf, size_t len)
{
	if (val)
		snprintf(buf, len, "and it has %s=%s", key, val);
	else
		snprintf(buf, len, "and it has no label %s", key);
}

/*
 * Whether the labels of n match sel, with Kubernetes' semantics (NotIn and
 * DoesNotExist hold for a missing label); if not, which requirement fails.
 */
static bool selector_matches(const struct km_selector *sel, const struct km_namespace *n,
			     char *why, size_t len)
{
	char vals[256], has[256];
	const char *v;
	size_t i;

	for (i = 0; i < sel->n_labels; i++) {
		const struct km_label *want = &sel->labels[i];

		v = km_label_get(n->labels, n->n_labels, want->key);
		if (v && !strcmp(v, want->value))
			continue;
		has_text(want->key, v, has, sizeof(has));
		snprintf(why, len, "matchLabels wants %s=%s, %s", want->key, want->value, has);
		return false;
	}
	for (i = 0; i < sel->n_exprs; i++) {
		const struct km_sel_expr *x = &sel->exprs[i];
		bool in = false, ok;
		size_t j;

		v = km_label_get(n->labels, n->n_labels, x->key);
		for (j = 0; v && j < x->n_values; j++)
			in |= !strcmp(v, x->values[j]);
		switch (x->op) {
		case KM_SEL_IN:
			ok = in;
			break;
		case KM_SEL_NOT_IN:
			ok = !in;
			break;
		case KM_SEL_EXISTS:
			ok = v;
			break;
		default:
			ok = !v;
			break;
		}
		if (ok)
			continue;
		vals[0] = '\0';
		if (x->n_values)
			values_text(x, vals, sizeof(vals));
		has_text(x->key, v, has, sizeof(has));
		snprintf(why, len, "matchExpressions[%zu] wants %s %s%s%s, %s", i, x->key,
			 km_sel_op_names[x->op], *vals ? " " : "", vals, has);
		return false;
	}
	return true;
}

static enum ksm_reason namespace_admits(const struct km_set *s, const struct km_gateway *g,
					const struct km_listener *l, const struct km_route *r,
					char *msg, size_t len)
{
	const struct km_namespace *n;
	char why[512];

	switch (l->from) {
	case KM_FROM_ALL:
		return KSM_R_ACCEPTED;
	case KM_FROM_SAME:
		if (!strcmp(r->m.ns, g->m.ns))
			return KSM_R_ACCEPTED;
		say(msg, len, g, l, " takes routes of its own namespace %s only "
		    "(allowedRoutes.namespaces.from: Same, the default), and this route is in "
		    "namespace %s: set from: All, or from: Selector with a selector that matches "
		    "namespace %s", g->m.ns, r->m.ns, r->m.ns);
		return KSM_R_NOT_ALLOWED_BY_LISTENERS;
	case KM_FROM_SELECTOR:
		break;
	}
	/* An empty selector matches every namespace, known to ksplit or not. */
	if (!l->sel.n_labels && !l->sel.n_exprs)
		return KSM_R_ACCEPTED;
	n = km_find_namespace(s, r->m.ns);
	if (!n) {
		say(msg, len, g, l, " takes routes of the namespaces its "
		    "allowedRoutes.namespaces.selector matches, and Namespace %s is not among the "
		    "manifests, so its labels are unknown: add it (kubectl get namespace %s -o yaml)",
		    r->m.ns, r->m.ns);
		return KSM_R_NOT_ALLOWED_BY_LISTENERS;
	}
	if (selector_matches(&l->sel, n, why, sizeof(why)))
		return KSM_R_ACCEPTED;
	say(msg, len, g, l, " takes routes of the namespaces its allowedRoutes.namespaces.selector "
	    "matches, and Namespace %s does not match: %s", r->m.ns, why);
	return KSM_R_NOT_ALLOWED_BY_LISTENERS;
}

enum ksm_reason km_listener_admits(const struct km_set *s, const struct km_gateway *g,
				   const struct km_listener *l, const struct km_route *r,
				   char *msg, size_t len)
{
	enum ksm_reason why;
	char text[512];

	if (msg && len)
		msg[0] = '\0';
	if (!(r->kind->listeners & 1u << l->proto)) {
		say(msg, len, g, l, " has protocol %s, which cannot carry a %s (needs %s)",
		    km_lproto_names[l->proto], r->m.kind, r->kind->listeners_text);
		return KSM_R_NOT_ALLOWED_BY_LISTENERS;
	}
	/*
	 * Gateway API: a TLS listener in Passthrough carries TLSRoutes only; a
	 * TCPRoute rides on TLS only where the listener terminates it.
	 */
	if (l->proto == KM_L_TLS && l->tls == KM_TLS_PASSTHROUGH && r->kind->proto_tls_terminated) {
		say(msg, len, g, l, " is TLS Passthrough, which carries TLSRoutes only; a %s needs "
		    "a TCP listener (or TLS Terminate, which ksplit cannot do)", r->m.kind);
		return KSM_R_NOT_ALLOWED_BY_LISTENERS;
	}
	if (l->n_kinds && !kind_listed(l, r)) {
		kinds_text(l, text, sizeof(text));
		say(msg, len, g, l, " allows only %s (allowedRoutes.kinds), not %s: add {kind: %s} "
		    "there", text, r->m.kind, r->m.kind);
		return KSM_R_NOT_ALLOWED_BY_LISTENERS;
	}
	why = namespace_admits(s, g, l, r, msg, len);
	if (why != KSM_R_ACCEPTED)
		return why;
	if (km_listener_tls_why(l, text, sizeof(text)) ||
	    km_listener_hostname_why(l, text, sizeof(text))) {
		say(msg, len, g, l, ": %s", text);
		return KSM_R_UNSUPPORTED_VALUE;
	}
	return KSM_R_ACCEPTED;
}
