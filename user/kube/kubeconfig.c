// SPDX-License-Identifier: BSD-2-Clause
/*
 * Where the API server is: a kubeconfig's current context (server, CA,
 * token or client certificate, as data or files), or in-cluster from the
 * service account the pod runs as. The kubeconfig is YAML; it is read with
 * config/yaml.h, so its errors point at a line like the manifests' do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/diag.h"
#include "config/yaml.h"
#include "kube/kube.h"

#define KUBECONFIG_MAX	(1u << 20)

void kube_conn_free(struct kube_conn *c)
{
	free(c->server);
	free(c->namespace);
	free(c->token);
	free(c->token_file);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	memset(c, 0, sizeof(*c));
}

/* A whole small file; -errno. */
static int slurp(const char *path, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(KUBECONFIG_MAX + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (n < KUBECONFIG_MAX && (r = read(fd, buf + n, KUBECONFIG_MAX - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* The scalar at key of map, or NULL. */
static const char *str_at(const struct ky_node *map, const char *key)
{
	const struct ky_node *v = map && map->type == KY_MAP ? ky_map_get(map, key) : NULL;

	return v && v->type == KY_SCALAR && !ky_is_null(v) ? v->str : NULL;
}

/* The entry of list (clusters, users, contexts) named name: its inner map under field. */
static const struct ky_node *named(const struct ky_node *root, const char *list, const char *name,
				   const char *field)
{
	const struct ky_node *l = ky_map_get(root, list);
	size_t i;

	if (!l || l->type != KY_SEQ || !name)
		return NULL;
	for (i = 0; i < l->n; i++) {
		const char *n = str_at(l->kids[i], "name");

		if (n && !strcmp(n, name)) {
			const struct ky_node *v = ky_map_get(l->kids[i], field);

			return v && v->type == KY_MAP ? v : NULL;
		}
	}
	return NULL;
}

/* base64 text -> bytes (with a NUL after them, for PEM); -EINVAL when not base64. */
static int b64(const char *in, char **out, size_t *len)
{
	size_t n = strlen(in), i, j;
	char *clean = malloc(n + 1);
	unsigned char *buf;
	int got;

	if (!clean)
		return -ENOMEM;
	/* YAML may fold long values: drop whitespace before decoding. */
	for (i = j = 0; i < n; i++)
		if (in[i] != '\n' && in[i] != ' ' && in[i] != '\r' && in[i] != '\t')
			clean[j++] = in[i];
	clean[j] = 0;
	buf = malloc(j / 4 * 3 + 4);
	if (!buf) {
		free(clean);
		return -ENOMEM;
	}
	got = j % 4 ? -1 : EVP_DecodeBlock(buf, (unsigned char *)clean, (int)j);
	if (got < 0) {
		free(clean);
		free(buf);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as bytes. */
	while (j && clean[--j] == '=')
		got--;
	buf[got] = 0;
	free(clean);
	*out = (char *)buf;
	*len = (size_t)got;
	return 0;
}

/* Paths in a kubeconfig are relative to its directory. */
static char *resolve_path(const char *dir, const char *p)
{
	char *r = NULL;

	if (p[0] == '/')
		return strdup(p);
	return asprintf(&r, "%s/%s", dir, p) < 0 ? NULL : r;
}

int kube_conn_from_kubeconfig(const char *path, struct kube_conn *c, char *err, size_t errlen)
{
	const struct ky_node *root, *ctx, *cluster, *user;
	struct ks_diags d = {};
	struct ky_stream st = {};
	char *buf = NULL, *copy = NULL, *dir;
	const char *cur, *s, *what = NULL;
	size_t len;
	int ret;

	memset(c, 0, sizeof(*c));
	ret = slurp(path, &buf, &len);
	if (ret) {
		ks_set_err(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = ky_parse(path, buf, len, &st, &d);
	if (ret || !st.n || !st.docs[0].root || st.docs[0].root->type != KY_MAP) {
		ks_set_err(err, errlen, "%s", d.n ? d.v[0].msg : "not a kubeconfig (a YAML mapping)");
		ret = ret ? ret : -EINVAL;
		goto out;
	}
	root = st.docs[0].root;
	ret = -EINVAL;
	cur = str_at(root, "current-context");
	if (!cur) {
		ks_set_err(err, errlen, "%s: no current-context", path);
		goto out;
	}
	ctx = named(root, "contexts", cur, "context");
	if (!ctx) {
		ks_set_err(err, errlen, "%s: current-context '%s' is not in contexts", path, cur);
		goto out;
	}
	cluster = named(root, "clusters", str_at(ctx, "cluster"), "cluster");
	user = named(root, "users", str_at(ctx, "user"), "user");
	if (!cluster || !str_at(cluster, "server")) {
		ks_set_err(err, errlen, "%s: context '%s': no cluster with a server", path, cur);
		goto out;
	}
	s = str_at(cluster, "server");
	if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7)) {
		ks_set_err(err, errlen, "%s: cluster server '%s' is not an http:// or https:// URL",
			   path, s);
		goto out;
	}
	copy = strdup(path);
	if (!copy) {
		ret = -ENOMEM;
		goto out;
	}
	dir = dirname(copy);
	ret = -ENOMEM;
	if (!(c->server = strndup(s, strlen(s) - (s[strlen(s) - 1] == '/'))))
		goto out;
	if ((s = str_at(ctx, "namespace")) && !(c->namespace = strdup(s)))
		goto out;
	s = str_at(cluster, "insecure-skip-tls-verify");
	c->insecure = s && !strcmp(s, "true");
	if ((s = str_at(cluster, "certificate-authority")) && !(c->ca_file = resolve_path(dir, s)))
		goto out;
	if ((s = str_at(cluster, "certificate-authority-data")) &&
	    (ret = b64(s, &c->ca_data, &c->ca_len))) {
		what = "certificate-authority-data";
		goto bad;
	}
	ret = -ENOMEM;
	if (user) {
		if ((s = str_at(user, "token")) && !(c->token = strdup(s)))
			goto out;
		if ((s = str_at(user, "tokenFile")) && !(c->token_file = resolve_path(dir, s)))
			goto out;
		if ((s = str_at(user, "client-certificate")) &&
		    !(c->cert_file = resolve_path(dir, s)))
			goto out;
		if ((s = str_at(user, "client-key")) && !(c->key_file = resolve_path(dir, s)))
			goto out;
		if ((s = str_at(user, "client-certificate-data")) &&
		    (ret = b64(s, &c->cert_data, &c->cert_len))) {
			what = "client-certificate-data";
			goto bad;
		}
		if ((s = str_at(user, "client-key-data")) &&
		    (ret = b64(s, &c->key_data, &c->key_len))) {
			what = "client-key-data";
			goto bad;
		}
		if (str_at(user, "exec") || ky_map_get(user, "exec") ||
		    ky_map_get(user, "auth-provider")) {
			ks_set_err(err, errlen, "%s: user '%s': exec and auth-provider credentials are "
				   "not supported; use a token, tokenFile or a client certificate",
				   path, str_at(ctx, "user"));
			ret = -EINVAL;
			goto out;
		}
	}
	ret = 0;
	goto out;
bad:
	if (ret == -EINVAL)
		ks_set_err(err, errlen, "%s: %s is not base64", path, what);
out:
	if (ret)
		kube_conn_free(c);
	free(copy);
	free(buf);
	ky_stream_free(&st);
	ks_diags_free(&d);
	return ret;
}

int kube_conn_in_cluster(const char *sa_dir, struct kube_conn *c, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char path[PATH_MAX], *ns = NULL;
	size_t len;
	int ret;

	memset(c, 0, sizeof(*c));
	if (!host || !*host) {
		ks_set_err(err, errlen, "not in a cluster: KUBERNETES_SERVICE_HOST is not set");
		return -ENOENT;
	}
	/* An IPv6 host goes in brackets. */
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port && *port ? port : "443") < 0) {
		c->server = NULL;
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	c->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	c->ca_file = strdup(path);
	if (!c->token_file || !c->ca_file) {
		kube_conn_free(c);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	ret = slurp(path, &ns, &len);
	if (!ret) {
		ns[strcspn(ns, "\n")] = 0;
		c->namespace = ns;
	}
	if (access(c->token_file, R_OK)) {
		ret = -errno;
		ks_set_err(err, errlen, "%s: %s", c->token_file, strerror(-ret));
		kube_conn_free(c);
		return ret;
	}
	return 0;
}
