/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test-side helpers for ks-apiserver, for unit and kernel tests (cmocka):
 * a temp dir with a CA, a server certificate and a token file (kas_env_init),
 * servers started by pid (kas_start), libcurl requests (kas_req), the control
 * API (kas_fault, kas_stat), and a JSON path reader (kas_jget). Every child
 * is started with PR_SET_PDEATHSIG, so a crashed test leaves no server behind.
 * Static inline: each test is one .c file. Link with -lcurl -ljson-c.
 */
#ifndef KS_APISERVER_HARNESS_H
#define KS_APISERVER_HARNESS_H

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "test_exec.h"

/* One temp dir: ca.crt, srv.crt/srv.key (for 127.0.0.1), token ("token-one"). */
struct kas_env {
	char dir[64], ca[128], tokfile[128];
};

struct kas_srv {
	pid_t pid;
	char base[128];		/* http[s]://127.0.0.1:PORT */
	char ca[128];
};

struct kas_run {
	int status;		/* exit status, or 128 + signal */
	char out[16384], err[16384];
};

struct kas_resp {
	long code;
	CURLcode rc;
	char *body;
	size_t len;
	json_object *json;	/* the body when it is one JSON value */
};

/* fork + exec argv, stdout to out (or outfd), stderr to err (NULL: /dev/null). */
static inline pid_t kas_spawn(char *const argv[], const char *out, const char *err, int outfd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid) {
		int o = outfd >= 0 ? outfd :
				     open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static inline void kas_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static inline void kas_slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

/* Run argv to completion; its output goes through files in dir. */
static inline void kas_runv(struct kas_run *r, const char *dir, char **argv)
{
	char o[192], e[192];
	pid_t pid;

	snprintf(o, sizeof(o), "%s/run.out", dir);
	snprintf(e, sizeof(e), "%s/run.err", dir);
	pid = kas_spawn(argv, o, e, -1);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
	r->status = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
	kas_slurp(o, r->out, sizeof(r->out));
	kas_slurp(e, r->err, sizeof(r->err));
}

static inline void kas_write(const struct kas_env *e, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void kas_write(const struct kas_env *e, const char *name, const char *fmt, ...)
{
	char path[192];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	assert_non_null(f = fopen(path, "w"));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static inline void kas_env_init(struct kas_env *e)
{
	struct kas_run r;

	strcpy(e->dir, "/tmp/ks-apiserver-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->ca, sizeof(e->ca), "%s/ca.crt", e->dir);
	snprintf(e->tokfile, sizeof(e->tokfile), "%s/token", e->dir);
	kas_write(e, "san.ext", "subjectAltName = IP:127.0.0.1\n");
	kas_write(e, "token", "token-one\n");
	kas_runv(&r, e->dir, (char *[]){ "sh", "-c", "cd \"$0\" && "
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		"-keyout ca.key -out ca.crt -days 1 -subj /CN=ks-apiserver-test-ca && "
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		"-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
		"openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		"-out srv.crt -days 1 -extfile san.ext", e->dir, NULL });
	if (r.status)
		fail_msg("openssl: %s", r.err);
}

static inline void kas_env_fini(struct kas_env *e)
{
	struct kas_run r;

	if (e->dir[0])
		kas_runv(&r, "/tmp", (char *[]){ "rm", "-rf", e->dir, NULL });
	e->dir[0] = 0;
}

/*
 * Start build/selftests/apiserver/ks-apiserver (found next to this test's
 * folder) on a free port: HTTPS with e's certificate and token file, or
 * plain HTTP without auth. extra: more arguments, NULL-terminated, or NULL.
 */
static inline void kas_start(struct kas_srv *s, const struct kas_env *e, bool https,
			     char *const *extra)
{
	char exe[PATH_MAX], bin[PATH_MAX + 64], line[128], key[128], crt[128];
	char *argv[24] = { bin, "--listen", "127.0.0.1:0" };
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *want = https ? "listening https://127.0.0.1:" : "listening http://127.0.0.1:";
	int p[2], i = 3;
	FILE *f;

	assert_true(n > 0);
	exe[n] = 0;
	snprintf(bin, sizeof(bin), "%s/../apiserver/ks-apiserver", dirname(exe));
	if (access(bin, X_OK))
		fail_msg("%s not found: run `make` first", bin);
	if (https) {
		snprintf(crt, sizeof(crt), "%s/srv.crt", e->dir);
		snprintf(key, sizeof(key), "%s/srv.key", e->dir);
		argv[i++] = "--cert";
		argv[i++] = crt;
		argv[i++] = "--key";
		argv[i++] = key;
		argv[i++] = "--token-file";
		argv[i++] = (char *)e->tokfile;
	}
	while (extra && *extra && i < 23)
		argv[i++] = *extra++;
	assert_int_equal(ks_test_exec_wrap(argv, 24), 0);
	assert_int_equal(pipe(p), 0);
	s->pid = kas_spawn(argv, NULL, NULL, p[1]);
	close(p[1]);
	assert_non_null(f = fdopen(p[0], "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	assert_true(!strncmp(line, want, strlen(want)));
	snprintf(s->base, sizeof(s->base), "%s", line + 10);
	snprintf(s->ca, sizeof(s->ca), "%s", e->ca);
}

static inline size_t kas_sink(char *p, size_t sz, size_t n, void *u)
{
	struct kas_resp *r = u;
	char *b = realloc(r->body, r->len + sz * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, sz * n);
	r->body = b;
	r->len += sz * n;
	b[r->len] = 0;
	return sz * n;
}

/* One request; token NULL sends none; timeout_ms 0 is 10 s. */
static inline void kas_req(struct kas_resp *r, const struct kas_srv *s, const char *token,
			   const char *method, const char *path, const char *ctype,
			   const char *body, long timeout_ms)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char *url, hdr[256];

	memset(r, 0, sizeof(*r));
	assert_true(asprintf(&url, "%s%s", s->base, path) > 0);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_CAINFO, s->ca);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kas_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 10000L);
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, hdr);
	}
	if (body) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype ? ctype : "application/json");
		h = curl_slist_append(h, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	r->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(url);
	if (r->body)
		r->json = json_tokener_parse(r->body);
}

static inline void kas_resp_free(struct kas_resp *r)
{
	json_object_put(r->json);
	free(r->body);
}

/* A value at a dotted path ("items[0].metadata.name"), as a string; NULL if absent. */
static inline const char *kas_jget(json_object *o, const char *path)
{
	char key[128];

	while (o && *path) {
		size_t n = strcspn(path, ".[");

		if (*path == '[') {
			o = json_object_array_get_idx(o, atoi(path + 1));
			path = strchr(path, ']') + 1;
		} else {
			snprintf(key, sizeof(key), "%.*s", (int)n, path);
			if (!json_object_object_get_ex(o, key, &o))
				return NULL;
			path += n;
		}
		if (*path == '.')
			path++;
	}
	return o ? json_object_get_string(o) : NULL;
}

static inline json_object *kas_jarr(json_object *o, const char *key)
{
	json_object *a = NULL;

	json_object_object_get_ex(o, key, &a);
	return a;
}

/* POST /_ksplit/fault (or any control body), asserting 200. */
static inline void kas_fault(const struct kas_srv *s, const char *body)
{
	struct kas_resp r;

	kas_req(&r, s, NULL, "POST", "/_ksplit/fault", NULL, body, 0);
	assert_int_equal(r.code, 200);
	kas_resp_free(&r);
}

/* A number from GET /_ksplit/stats, e.g. "requests.list.services"; 0 when absent. */
static inline long long kas_stat(const struct kas_srv *s, const char *path)
{
	struct kas_resp r;
	const char *v;
	long long n;

	kas_req(&r, s, NULL, "GET", "/_ksplit/stats", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	v = kas_jget(r.json, path);
	n = v ? atoll(v) : 0;
	kas_resp_free(&r);
	return n;
}

/* Wait (up to 15 s) until a counter passes `above`: e.g. a client's watch has started. */
static inline void kas_wait_stat(const struct kas_srv *s, const char *path, long long above)
{
	for (int i = 0; i < 300 && kas_stat(s, path) <= above; i++)
		usleep(50000);
	assert_true(kas_stat(s, path) > above);
}

#endif
