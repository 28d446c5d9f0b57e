// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <microhttpd.h>

#include "common/log.h"
#include "common/version.h"
#include "metrics/metrics.h"

/* A scraper or a probe needs a handful; more only cost the loop time. */
#define MAX_CONNS	32
#define CONN_TIMEOUT_S	10

struct ks_metrics {
	struct ks_metrics_opts o;
	struct MHD_Daemon *d;
	int lfd;		/* listening socket until MHD owns it (it closes it on stop) */
	int efd;		/* our epoll: MHD's epoll fd and tfd */
	int tfd;		/* fires when MHD wants to run without fd activity (timeouts) */
	char addr[64];
};

int ks_metrics_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!colon || colon == s)
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || !colon[1] || *end || port > 65535)
		return -EINVAL;
	hl = colon - s;
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return -EINVAL;
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1 &&
	    s[-1] != '[') {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1 &&
	    s[-1] == '[') {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -EINVAL;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *type,
			     char *body, size_t len, bool owned)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (owned)
		r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	else
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned int code, const char *msg)
{
	return reply(conn, code, "text/plain; charset=utf-8", (char *)msg, strlen(msg), false);
}

/*
 * One scrape: read the pins, render, hand the text to MHD, which frees it
 * once sent. Nothing of it stays behind.
 */
static enum MHD_Result scrape(struct ks_metrics *m, struct MHD_Connection *conn)
{
	struct ks_agent_metrics am = {};
	struct ks_counters c = {};
	struct ks_mbuf b = {};
	struct ks_metrics_input in = { .version = KSPLIT_VERSION, .agent = &am,
				       .endpoints = m->o.endpoints };
	int err;

	m->o.fill(m->o.ctx, &am);
	err = ks_counters_read_ex(m->o.pin_dir, m->o.endpoints ? KS_COUNTERS_ENDPOINTS : 0, &c);
	in.dp = err ? NULL : &c;
	err = ks_metrics_render(&b, &in);
	ks_counters_free(&c);
	if (err) {
		ks_mbuf_free(&b);
		return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len, true);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct ks_metrics *m = cls;
	struct ks_agent_metrics am = {};

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics"))
		return scrape(m, conn);
	if (!strcmp(url, "/healthz"))
		return m->o.alive(m->o.ctx) ? text(conn, MHD_HTTP_OK, "ok\n")
					    : text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
						   "event loop stalled\n");
	if (!strcmp(url, "/readyz")) {
		m->o.fill(m->o.ctx, &am);
		return am.ready ? text(conn, MHD_HTTP_OK, "ok\n")
				: text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no config applied yet\n");
	}
	return text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n");
}

static int listen_on(struct ks_metrics *m)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, err;
	char host[INET6_ADDRSTRLEN];

	err = ks_metrics_parse_addr(m->o.addr, &ss, &len);
	if (err)
		return err;
	m->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0)
		return -errno;
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->lfd, (struct sockaddr *)&ss, len) || listen(m->lfd, 16))
		return -errno;
	len = sizeof(ss);
	if (getsockname(m->lfd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		snprintf(m->addr, sizeof(m->addr), "%s:%u", host,
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		snprintf(m->addr, sizeof(m->addr), "[%s]:%u", host,
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	}
	return 0;
}

int ks_metrics_start(const struct ks_metrics_opts *o, struct ks_metrics **out)
{
	struct ks_metrics *m = calloc(1, sizeof(*m));
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (!m)
		return -ENOMEM;
	m->o = *o;
	m->lfd = m->efd = m->tfd = -1;
	err = listen_on(m);
	if (err)
		goto fail;
	m->efd = epoll_create1(EPOLL_CLOEXEC);
	m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (m->efd < 0 || m->tfd < 0) {
		err = -errno;
		goto fail;
	}
	/* No internal thread: MHD runs only when the agent's loop calls dispatch. */
	m->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, m,
				MHD_OPTION_LISTEN_SOCKET, m->lfd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT_S,
				MHD_OPTION_END);
	if (m->d)
		m->lfd = -1;
	info = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		err = -EIO;
		goto fail;
	}
	ev.data.fd = info->epoll_fd;
	if (epoll_ctl(m->efd, EPOLL_CTL_ADD, info->epoll_fd, &ev)) {
		err = -errno;
		goto fail;
	}
	ev.data.fd = m->tfd;
	if (epoll_ctl(m->efd, EPOLL_CTL_ADD, m->tfd, &ev)) {
		err = -errno;
		goto fail;
	}
	*out = m;
	return 0;
fail:
	ks_metrics_free(m);
	return err;
}

const char *ks_metrics_addr(const struct ks_metrics *m)
{
	return m->addr;
}

int ks_metrics_fd(const struct ks_metrics *m)
{
	return m->efd;
}

void ks_metrics_dispatch(struct ks_metrics *m)
{
	struct itimerspec its = {};
	MHD_UNSIGNED_LONG_LONG ms;
	struct epoll_event evs[4];
	uint64_t exp;

	/* Only to clear readiness: MHD_run looks at its own fds itself. */
	epoll_wait(m->efd, evs, 4, 0);
	if (read(m->tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		pr_debug("metrics timer read failed", "err=%d", -errno);
	MHD_run(m->d);
	/* Work MHD has without fd activity (a connection to time out): wake for it. */
	if (MHD_get_timeout(m->d, &ms) == MHD_YES) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000 + 1;
	}
	timerfd_settime(m->tfd, 0, &its, NULL);
}

void ks_metrics_free(struct ks_metrics *m)
{
	if (!m)
		return;
	if (m->d)
		MHD_stop_daemon(m->d);
	if (m->efd >= 0)
		close(m->efd);
	if (m->tfd >= 0)
		close(m->tfd);
	if (m->lfd >= 0)
		close(m->lfd);
	free(m);
}
