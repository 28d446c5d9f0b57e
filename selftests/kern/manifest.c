// SPDX-License-Identifier: BSD-2-Clause
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "shares.h"
#include "config/config.h"
#include "image/image.h"

void kt_buf_printf(struct kt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->s && b->len + n < b->cap) {
			b->len += n;
			return;
		}
		b->cap = (b->cap + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
}

void kt_buf_free(struct kt_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* Split a space-separated list into a static array of words (test input only). */
static int words(const char *s, char w[][KT_KEY_LEN], int max)
{
	int n = 0;

	while (s && *s && n < max) {
		size_t l;

		while (*s == ' ')
			s++;
		l = strcspn(s, " ");
		if (!l)
			break;
		snprintf(w[n++], KT_KEY_LEN, "%.*s", (int)l, s);
		s += l;
	}
	return n;
}

void kt_yaml_gateway(struct kt_buf *b, const char *name, const char *addrs, const char *listeners)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
		      "metadata: {name: %s, namespace: t}\nspec:\n  gatewayClassName: ksplit\n"
		      "  addresses:\n", name);
	n = words(addrs, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++)
		kt_buf_printf(b, "  - {type: IPAddress, value: \"%s\"}\n", w[i]);
	kt_buf_printf(b, "  listeners:\n");
	n = words(listeners, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++) {
		char lname[KT_KEY_LEN], proto[KT_KEY_LEN];
		int port;

		if (sscanf(w[i], "%63[^:]:%63[^:]:%d", lname, proto, &port) != 3)
			abort();
		kt_buf_printf(b, "  - {name: %s, port: %d, protocol: %s}\n", lname, port, proto);
	}
}

void kt_yaml_service(struct kt_buf *b, const char *name, int port, const char *cluster_ips)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: t}\n"
		      "spec:\n  type: ClusterIP\n", name);
	n = words(cluster_ips, w, KT_MAX_KEYS);
	if (n) {
		kt_buf_printf(b, "  clusterIP: \"%s\"\n  clusterIPs:\n", w[0]);
		for (i = 0; i < n; i++)
			kt_buf_printf(b, "  - \"%s\"\n", w[i]);
	}
	kt_buf_printf(b, "  ports:\n"
		      "  - {name: tcp, port: %d, protocol: TCP, targetPort: 8080}\n"
		      "  - {name: udp, port: %d, protocol: UDP, targetPort: 8080}\n", port, port);
}

void kt_yaml_slice(struct kt_buf *b, const char *svc, const char *family, const char *eps)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		      "metadata:\n  name: %s-%s\n  namespace: t\n"
		      "  labels: {kubernetes.io/service-name: %s}\n"
		      "addressType: %s\nports:\n"
		      "- {name: tcp, port: 8080, protocol: TCP}\n"
		      "- {name: udp, port: 8080, protocol: UDP}\nendpoints:\n",
		      svc, strcmp(family, "IPv6") ? "v4" : "v6", svc, family);
	n = words(eps, w, KT_MAX_KEYS);
	if (!n)
		kt_buf_printf(b, "  []\n");
	for (i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');
		const char *cond = "{ready: true, serving: true, terminating: false}";

		if (eq) {
			*eq++ = 0;
			if (!strcmp(eq, "notready"))
				cond = "{ready: false, serving: false, terminating: false}";
			else if (!strcmp(eq, "terminating"))
				/* What kubelet publishes for a pod draining after SIGTERM. */
				cond = "{ready: false, serving: true, terminating: true}";
			else
				abort();
		}
		kt_buf_printf(b, "- addresses: [\"%s\"]\n  conditions: %s\n", w[i], cond);
	}
}

void kt_yaml_route(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		   const char *backends)
{
	kt_yaml_route_ann(b, kind, name, parent, backends, NULL);
}

void kt_yaml_route_ann(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		       const char *backends, const char *annotation)
{
	char w[KT_MAX_KEYS][KT_KEY_LEN];
	int n, i;

	kt_buf_printf(b, "---\napiVersion: gateway.networking.k8s.io/%s\nkind: %s\n"
		      "metadata:\n  name: %s\n  namespace: t\n",
		      strcmp(kind, "HTTPRoute") ? "v1alpha2" : "v1", kind, name);
	if (annotation)
		kt_buf_printf(b, "  annotations:\n    %s\n", annotation);
	kt_buf_printf(b, "spec:\n  parentRefs:\n");
	if (!strncmp(parent, "svc:", 4)) {
		kt_buf_printf(b, "  - {group: \"\", kind: Service, name: %s}\n", parent + 4);
	} else {
		char gw[KT_KEY_LEN], section[KT_KEY_LEN];

		if (sscanf(parent, "%63[^/]/%63s", gw, section) != 2)
			abort();
		kt_buf_printf(b, "  - {name: %s, sectionName: %s}\n", gw, section);
	}
	kt_buf_printf(b, "  rules:\n  - backendRefs:\n");
	n = words(backends, w, KT_MAX_KEYS);
	for (i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');

		if (!eq)
			abort();
		*eq++ = 0;
		kt_buf_printf(b, "    - {name: %s, port: 80, weight: %s}\n", w[i], eq);
	}
}

void kt_yaml_ab(struct kt_buf *b, const char *v1_eps, const char *v2_eps)
{
	kt_yaml_gateway(b, "gw", "127.10.0.1", "http:HTTP:80");
	kt_yaml_service(b, "v1", 80, NULL);
	kt_yaml_slice(b, "v1", "IPv4", v1_eps);
	kt_yaml_service(b, "v2", 80, NULL);
	kt_yaml_slice(b, "v2", "IPv4", v2_eps);
}

int kt_apply_yaml(struct kt_env *e, const char *yaml)
{
	static const struct ks_load_opts lo = { .allow_loopback_vips = true };
	const char *names[] = { "kt.yaml" }, *bufs[] = { yaml };
	size_t lens[] = { strlen(yaml) }, i;
	struct ks_apply_stats st;
	struct ks_diags d = {};
	struct ks_model m = {};
	struct ks_image img = {};
	int err;

	/* Test VIPs are on loopback; any error fails the test's config as a whole. */
	err = ks_model_load_buffers_opts(&lo, names, bufs, lens, 1, &m, &d);
	for (i = 0; i < d.n; i++)
		if (!d.v[i].warning || getenv("KT_VERBOSE"))
			fprintf(stderr, "  %s: %s\n", d.v[i].warning ? "warning" : "error", d.v[i].msg);
	if (!err && d.n_errors)
		err = -EINVAL;
	if (err) {
		fprintf(stderr, "kern test: manifests rejected (%d):\n%s\n", err, yaml);
		goto out;
	}
	err = ks_image_build(&m, &img);
	if (err)
		goto out;
	err = ks_dp_apply(e->dp, &img, &st);
	e->last_apply_ns = kt_now_ns();
out:
	ks_image_free(&img);
	ks_model_free(&m);
	ks_diags_free(&d);
	return err;
}
