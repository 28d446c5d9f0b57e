/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the pieces of the prober share; not an API (prober.h is). The pieces:
 *   prober.c  the engine: targets, schedule, batching, timer, dispatch,
 *             verdicts and state callbacks, and the TCP connect checks
 *   conn.c    the connection layer (conn.h): sockets, TLS, raw reads and writes
 *   http.c    HTTP/1.1 and HTTP/2 checks on a kept connection
 * Functions one piece exports to another are named kp_*: the library is one
 * archive, so they must not clash with anything else linked with it.
 */
#ifndef KSPLIT_PROBER_INT_H
#define KSPLIT_PROBER_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#include "health/prober.h"

#define NS_PER_MS 1000000ULL

enum { H_DUE, H_DL, H_NR };

struct target {
	struct ks_probe_target t;
	struct ks_hsm hsm;
	uint64_t started;	/* checks started: the schedule's n */
	uint64_t last_start_ns;
	uint64_t key[H_NR];	/* H_DUE: next check; H_DL: deadline of the check in flight */
	size_t idx[H_NR];
	bool in_flight;
	int fd;			/* TCP check in flight, or HTTP connection (kept alive) */
	struct hconn *hc;	/* HTTP check state, kept between checks (conn.h) */
	uint64_t gen;		/* set_targets generation that kept it */
	char host[INET6_ADDRSTRLEN + 2];	/* "10.0.0.1" or "[fd00::1]" */
};

struct heap {
	struct target **v;
	size_t n, cap;
	int which;
};

struct ks_prober {
	int epfd, tfd;
	ks_prober_cb cb;
	void *ctx;
	struct target **tv;	/* all targets */
	size_t n;
	struct target **hash;	/* open addressing on (addr, port) */
	size_t hcap;		/* power of two, or 0 */
	struct heap heap[H_NR];
	uint64_t armed_ns;	/* timerfd expiry, 0 = not armed */
	uint32_t max_in_flight;
	uint64_t gen;
	uint64_t rng;
	bool in_dispatch;
	SSL_CTX *tls[2];	/* HTTPS checks: [0] no verification, [1] verify (conn.c) */
	struct ks_prober_stats st;
};

/* The port a check goes to: the spec's, else the traffic port. */
static inline uint16_t check_port(const struct target *t)
{
	return t->t.spec.port ? t->t.spec.port : t->t.port;
}

/* ---- prober.c ---- */

/* Capacity is reserved for every target up front, so a push cannot fail. */
void kp_heap_push(struct heap *h, struct target *t, uint64_t key);
void kp_heap_del(struct heap *h, struct target *t);
/* The check in flight has a verdict: count it, feed the state machine, schedule the next. */
void kp_finish(struct ks_prober *p, struct target *t, bool pass, bool timeout, const char *why);
/* A check that could not even start (fd limit, no memory): retry later, the endpoint is not to blame. */
void kp_start_failed(struct ks_prober *p, struct target *t, const char *what, int err);

/* ---- http.c: HTTP and HTTPS checks (t->hc is set once one has started) ---- */

void kp_http_start(struct ks_prober *p, struct target *t, uint64_t now);
/* Something happened on t's connection: an HTTP check in flight, or an idle kept connection. */
void kp_http_event(struct ks_prober *p, struct target *t);
void kp_http_timeout(struct ks_prober *p, struct target *t);
/* Close t's connection and drop its HTTP state, the request built from its spec included. */
void kp_http_free(struct ks_prober *p, struct target *t);

#endif /* KSPLIT_PROBER_INT_H */
