// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks-apiserver: a stand-in Kubernetes API server for tests and the bench.
 * See selftests/apiserver/README.md for what it implements.
 *
 *   ks-apiserver --listen 127.0.0.1:PORT [--cert FILE --key FILE]
 *                [--token-file FILE] [--page-max N] [--history-max N]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "apiserver.h"

int page_max;
static const char *token_file;
static char addr[64];

struct req {
	char *body;
	size_t len, cap;
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, 0, f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

/* The token file is read on every request, so a test can rotate it under us. */
static bool authorized(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	char *tok;
	size_t n;
	bool ok;

	if (!token_file)
		return true;
	if (!(tok = slurp(token_file))) {
		fprintf(stderr, "ks-apiserver: %s: %s\n", token_file, strerror(errno));
		return false;
	}
	n = strlen(tok);
	while (n && isspace((unsigned char)tok[n - 1]))
		tok[--n] = 0;
	ok = n && h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, tok);
	free(tok);
	return ok;
}

static enum MHD_Result version(struct MHD_Connection *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "major", json_object_new_string("1"));
	json_object_object_add(o, "minor", json_object_new_string("32"));
	json_object_object_add(o, "gitVersion", json_object_new_string("v1.32.0-ks-apiserver"));
	json_object_object_add(o, "platform", json_object_new_string("linux/amd64"));
	return reply_json(c, 200, o);
}

static enum MHD_Result not_found(struct MHD_Connection *c)
{
	return reply_status(c, 404, "NotFound", "the server could not find the requested resource");
}

/* Discovery documents; NULL from a builder (a disabled or unknown group) is a 404. */
static enum MHD_Result discovery(struct MHD_Connection *c, const char *url, char **seg, int n)
{
	json_object *o = NULL;

	stat_count("discovery", url + 1);
	pthread_mutex_lock(&store.lock);
	if (!strcmp(seg[0], "api"))
		o = n == 1 ? disc_api_versions(addr) : disc_resource_list("", seg[1]);
	else if (n == 1)
		o = disc_group_list();
	else if (n == 2)
		o = disc_group(seg[1]);
	else
		o = disc_resource_list(seg[1], seg[2]);
	pthread_mutex_unlock(&store.lock);
	return o ? reply_json(c, 200, o) : not_found(c);
}

/*
 * /api/v1/[namespaces/NS/]R[/NAME[/SUB]] and /apis/G/V/... ; a namespace's
 * own status is /api/v1/namespaces/NAME/status, not a namespaced resource.
 */
static enum MHD_Result resource(struct MHD_Connection *c, const char *method, char **seg, int n,
				const char *body, size_t len)
{
	int gv = !strcmp(seg[0], "api") ? 2 : 3;
	const char *group = gv == 2 ? "" : seg[1], *ver = seg[gv - 1];
	char **rest = seg + gv;
	int nrest = n - gv;
	struct route rt = { 0 };
	bool disabled;

	if (nrest >= 3 && !strcmp(rest[0], "namespaces") &&
	    !(nrest == 3 && (!strcmp(rest[2], "status") || !strcmp(rest[2], "finalize")))) {
		rt.ns = rest[1];
		rest += 2;
		nrest -= 2;
	}
	if (nrest < 1 || nrest > 3)
		return not_found(c);
	rt.r = res_find(group, ver, rest[0]);
	pthread_mutex_lock(&store.lock);
	disabled = rt.r && rt.r->disabled;
	pthread_mutex_unlock(&store.lock);
	if (!rt.r || disabled || (rt.ns && !rt.r->namespaced))
		return not_found(c);
	rt.name = nrest > 1 ? rest[1] : NULL;
	rt.sub = nrest > 2 ? rest[2] : NULL;
	if (!rt.name && !strcmp(method, "GET"))
		return qbool(c, "watch") ? handle_watch(c, &rt) : handle_list(c, &rt);
	return handle_object(c, method, &rt, body, len);
}

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url, const char *method,
				const char *body, size_t len)
{
	char path[2048], *seg[16], *save = NULL, *s;
	enum MHD_Result ret;
	int n = 0;

	if (!strncmp(url, "/_ksplit/", 9))
		return handle_control(c, method, url, body, len);
	if (!authorized(c)) {
		stat_count("unauthorized", "all");
		return reply_status(c, 401, "Unauthorized", "Unauthorized");
	}
	if (fault_gate(c, &ret))
		return ret;
	if (!strcmp(url, "/version"))
		return version(c);
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/livez"))
		return reply_json(c, 200, json_object_new_string("ok"));
	if (!strcmp(url, "/openapi/v3") || !strncmp(url, "/openapi/v3/", 12)) {
		json_object *o;

		stat_count("openapi", url + 1);
		pthread_mutex_lock(&store.lock);
		o = url[11] ? openapi_gv(url + 12) : openapi_root();
		pthread_mutex_unlock(&store.lock);
		return o ? reply_json(c, 200, o) : not_found(c);
	}
	snprintf(path, sizeof(path), "%s", url);
	for (s = strtok_r(path, "/", &save); s && n < 16; s = strtok_r(NULL, "/", &save))
		seg[n++] = s;
	if (!n || (strcmp(seg[0], "api") && strcmp(seg[0], "apis")))
		return not_found(c);
	if ((!strcmp(seg[0], "api") && n <= 2) || (!strcmp(seg[0], "apis") && n <= 3)) {
		if (strcmp(method, "GET"))
			return reply_status(c, 405, "MethodNotAllowed", "discovery is read-only");
		return discovery(c, url, seg, n);
	}
	return resource(c, method, seg, n, body, len);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *ver, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)ver;
	if (!rq) {
		/* First call: headers only. The body, if any, comes in later calls. */
		*con_cls = calloc(1, sizeof(struct req));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		if (rq->len + *upload_size + 1 > rq->cap) {
			rq->cap = (rq->len + *upload_size + 1) * 2;
			if (!(rq->body = realloc(rq->body, rq->cap)))
				return MHD_NO;
		}
		memcpy(rq->body + rq->len, upload, *upload_size);
		rq->len += *upload_size;
		rq->body[rq->len] = 0;
		*upload_size = 0;
		return MHD_YES;
	}
	return dispatch(c, url, method, rq->body ? rq->body : "", rq->len);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq)
		free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: ks-apiserver --listen 127.0.0.1:PORT [--cert FILE --key FILE] "
			"[--token-file FILE] [--page-max N] [--history-max N]\n");
	exit(2);
}

/*
 * The listening daemons. A pause (fault pause_s) closes the listening socket,
 * so new connections are refused as by a stopped server; the quiesced daemon
 * keeps serving (503) the connections it has, and a new daemon listens on the
 * same port when the pause is over.
 */
struct server {
	unsigned flags;
	char *cert, *key;
	struct sockaddr_in sin;
	struct MHD_Daemon *live, **old;
	size_t nold;
};

static struct MHD_Daemon *serve(struct server *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	socklen_t len = sizeof(s->sin);
	struct MHD_Daemon *d;

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&s->sin, sizeof(s->sin)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&s->sin, &len)) {
		close(fd);
		return NULL;
	}
	d = MHD_start_daemon(s->flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->cert,
			     MHD_OPTION_HTTPS_MEM_KEY, s->key, MHD_OPTION_END);
	if (!d)
		close(fd);
	return d;
}

/* Called every 100 ms: follow the pause state. */
static void follow_pause(struct server *s)
{
	bool paused = control_paused();

	if (paused && s->live) {
		MHD_socket fd = MHD_quiesce_daemon(s->live);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		s->old = realloc(s->old, (s->nold + 1) * sizeof(*s->old));
		if (!s->old)
			abort();
		s->old[s->nold++] = s->live;
		s->live = NULL;
	} else if (!paused && !s->live && !(s->live = serve(s))) {
		fprintf(stderr, "ks-apiserver: cannot listen again on port %u: %s\n",
			ntohs(s->sin.sin_port), strerror(errno));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "token-file", required_argument, NULL, 't' },
		{ "page-max", required_argument, NULL, 'p' },
		{ "history-max", required_argument, NULL, 'H' },
		{ 0 },
	};
	struct server s = {
		.flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		.sin = { .sin_family = AF_INET },
	};
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	const char *listen = NULL, *certf = NULL, *keyf = NULL;
	char host[48];
	unsigned port;
	sigset_t set;
	int opt, sig;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen = optarg; break;
		case 'c': certf = optarg; break;
		case 'k': keyf = optarg; break;
		case 't': token_file = optarg; break;
		case 'p': page_max = atoi(optarg); break;
		case 'H': store.hist_max = strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (!listen || optind != argc || !certf != !keyf ||
	    sscanf(listen, "%47[^:]:%u", host, &port) != 2 || port > 65535 ||
	    inet_pton(AF_INET, host, &s.sin.sin_addr) != 1)
		usage();
	s.sin.sin_port = htons(port);
	if (certf) {
		if (!(s.cert = slurp(certf)) || !(s.key = slurp(keyf))) {
			fprintf(stderr, "ks-apiserver: %s: %s\n", s.cert ? keyf : certf,
				strerror(errno));
			return 1;
		}
		s.flags |= MHD_USE_TLS;
	}
	/* Threads MHD starts inherit this mask: only sigtimedwait() below sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!(s.live = serve(&s))) {
		fprintf(stderr, "ks-apiserver: cannot listen on %s: %s\n", listen, strerror(errno));
		return 1;
	}
	snprintf(addr, sizeof(addr), "%s:%u", host, ntohs(s.sin.sin_port));
	printf("listening %s://%s\n", s.cert ? "https" : "http", addr);
	fflush(stdout);
	do {
		follow_pause(&s);
		sig = sigtimedwait(&set, NULL, &tick);
	} while (sig != SIGINT && sig != SIGTERM);
	/* Hung requests and watches would hold MHD_stop_daemon: let them all go. */
	control_release_all();
	if (s.live)
		MHD_stop_daemon(s.live);
	for (size_t i = 0; i < s.nold; i++)
		MHD_stop_daemon(s.old[i]);
	free(s.old);
	free(s.cert);
	free(s.key);
	return 0;
}
