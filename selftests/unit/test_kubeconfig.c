// SPDX-License-Identifier: BSD-2-Clause
/*
 * Where the API server is: kubeconfig contexts (server, token or tokenFile,
 * CA and client certificate as data or relative files, insecure), the
 * errors that name what is wrong, and in-cluster from the environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube/kube.h"

static char dir[] = "/tmp/ks-kubeconfig-XXXXXX";

static const char *put(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void rm(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

#define HEAD "apiVersion: v1\nkind: Config\ncurrent-context: b\n" \
	"contexts:\n- {name: a, context: {cluster: x, user: x}}\n" \
	"- {name: b, context: {cluster: c, user: u, namespace: team}}\n"

static void test_contexts(void **state)
{
	struct kube_conn c;
	char err[512] = "", path[PATH_MAX + 32];
	const char *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* "PEM\n" and "KEY" in base64; relative files are relative to the kubeconfig. */
	p = put("config", HEAD
		"clusters:\n- {name: c, cluster: {server: 'https://10.0.0.1:6443/', "
		"certificate-authority-data: UEVNCg==}}\n"
		"users:\n- {name: u, user: {tokenFile: tok, client-certificate: crt, "
		"client-key-data: S0VZ}}\n");
	assert_int_equal(kube_conn_from_kubeconfig(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://10.0.0.1:6443");
	assert_string_equal(c.namespace, "team");
	assert_int_equal(c.ca_len, 4);
	assert_memory_equal(c.ca_data, "PEM\n", 4);
	assert_int_equal(c.key_len, 3);
	assert_string_equal(c.key_data, "KEY");
	snprintf(path, sizeof(path), "%s/tok", dir);
	assert_string_equal(c.token_file, path);
	snprintf(path, sizeof(path), "%s/crt", dir);
	assert_string_equal(c.cert_file, path);
	assert_null(c.token);
	assert_false(c.insecure);
	kube_conn_free(&c);

	p = put("config", HEAD
		"clusters:\n- {name: c, cluster: {server: 'http://127.0.0.1:8080', "
		"insecure-skip-tls-verify: true, certificate-authority: /etc/ca.pem}}\n"
		"users:\n- {name: u, user: {token: abc}}\n");
	assert_int_equal(kube_conn_from_kubeconfig(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.token, "abc");
	assert_string_equal(c.ca_file, "/etc/ca.pem");
	assert_true(c.insecure);
	kube_conn_free(&c);
	rm("config");
}

static void test_errors(void **state)
{
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
		{ "apiVersion: v1\nkind: Config\n", "no current-context" },
		{ HEAD "clusters: []\n", "context 'b': no cluster with a server" },
		{ "current-context: z\ncontexts: []\n", "current-context 'z' is not in contexts" },
		{ HEAD "clusters:\n- {name: c, cluster: {server: 'ftp://x'}}\n",
		  "cluster server 'ftp://x' is not an http:// or https:// URL" },
		{ HEAD "clusters:\n- {name: c, cluster: {server: 'https://x', "
		  "certificate-authority-data: '%%%'}}\n", "certificate-authority-data is not base64" },
		{ HEAD "clusters:\n- {name: c, cluster: {server: 'https://x'}}\n"
		  "users:\n- {name: u, user: {exec: {command: aws}}}\n",
		  "user 'u': exec and auth-provider credentials are not supported" },
		{ "a: [\n", "config:2:1: " },
	};
	struct kube_conn c;
	char err[512];
	const char *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = put("config", cases[i].yaml);
		err[0] = 0;
		assert_int_not_equal(kube_conn_from_kubeconfig(p, &c, err, sizeof(err)), 0);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].msg);
	}
	assert_int_equal(kube_conn_from_kubeconfig("/nonexistent/kc", &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/kc: No such file or directory");
	rm("config");
}

static void test_in_cluster(void **state)
{
	struct kube_conn c;
	char err[512], path[PATH_MAX + 32];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_conn_in_cluster(dir, &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "not in a cluster: KUBERNETES_SERVICE_HOST is not set");
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(kube_conn_in_cluster(dir, &c, err, sizeof(err)), -ENOENT);
	put("token", "t0k\n");
	put("namespace", "ksplit-system\n");
	assert_int_equal(kube_conn_in_cluster(dir, &c, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://[fd00::1]:6443");
	assert_string_equal(c.namespace, "ksplit-system");
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	assert_string_equal(c.ca_file, path);
	kube_conn_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	rm("token");
	rm("namespace");
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contexts),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_in_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
