/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's HTTP endpoint: /metrics (Prometheus text, format.h), /healthz
 * and /readyz, served by libmicrohttpd without a thread of its own. Its
 * sockets and a timerfd sit in a private epoll instance whose fd the agent
 * adds to its loop, as it does the prober's; when that fd is readable the
 * agent calls ks_metrics_dispatch(). So every request runs on the loop's
 * thread and reads the agent's state directly: nothing is shared between
 * threads, nothing needs a lock.
 *
 * Not thread-safe: call everything from the agent's loop thread.
 */
#ifndef KSPLIT_METRICS_H
#define KSPLIT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "metrics/format.h"

#define KS_METRICS_DEFAULT_ADDR "127.0.0.1:9965"

struct ks_metrics_opts {
	const char *addr;	/* "127.0.0.1:9965", "[::1]:9965", "0.0.0.0:9965"; port 0: any free one */
	const char *pin_dir;	/* where /metrics reads the counters; NULL: KS_DEFAULT_PIN_DIR */
	bool endpoints;		/* --metrics-endpoints: per-endpoint series too */
	/* Called for each /metrics and /readyz: the agent's own numbers. */
	void (*fill)(void *ctx, struct ks_agent_metrics *out);
	/* /healthz answers 200 while this says the event loop is turning. */
	bool (*alive)(void *ctx);
	void *ctx;
};

struct ks_metrics;

/*
 * "ADDR:PORT" (IPv6 in brackets) into a socket address. 0 or -EINVAL; the
 * CLI checks --metrics-addr with it before anything starts.
 */
int ks_metrics_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Bind, listen and start serving. 0 or -errno (-EADDRINUSE: the port is taken). */
int ks_metrics_start(const struct ks_metrics_opts *o, struct ks_metrics **out);
/* The address actually bound ("127.0.0.1:40123" after port 0). */
const char *ks_metrics_addr(const struct ks_metrics *m);
int ks_metrics_fd(const struct ks_metrics *m);
/* Serve whatever is ready. Never blocks for long: a scrape renders and queues its text. */
void ks_metrics_dispatch(struct ks_metrics *m);
void ks_metrics_free(struct ks_metrics *m);

#endif
