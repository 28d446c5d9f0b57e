/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Held connections for the drain tests: ks_server pods that keep a
 * connection open, and a holder child (in the test cgroup and netns) that
 * keeps TCP and connected UDP sockets open and, on request, tells for each
 * one whether it is still open (a round trip works), was aborted
 * (ECONNABORTED or a reset) or broke otherwise.
 */
#ifndef KSPLIT_KT_SOCKETS_H
#define KSPLIT_KT_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

#define KT_HOLD_MAX	96

enum kt_hold_state {
	KT_HOLD_OPEN = 1,	/* a round trip still reaches the same server */
	KT_HOLD_ABORTED,	/* recv said ECONNABORTED or ECONNRESET */
	KT_HOLD_BROKEN,		/* anything else: EOF, another error, no answer */
};

struct kt_hold_spec {
	const char *addr;	/* IPv4 destination, a VIP or a pod IP */
	int port;
	bool udp;		/* connected UDP instead of TCP */
	int count;
};

struct kt_held {
	char target[40];	/* "127.10.0.1:80/tcp" */
	char id[32];		/* the server that answered when it was opened */
	int state;		/* enum kt_hold_state, after the last probe */
	int err;		/* the errno behind ABORTED or BROKEN (-1: EOF or no answer) */
};

struct kt_holds {
	int n;
	struct kt_held s[KT_HOLD_MAX];
};

struct kt_holder {
	pid_t pid;
	int cmd, ack;		/* pipes to and from the child */
	struct kt_holds *h;	/* shared with the child */
};

/*
 * build/ks_server in the test netns, TCP and UDP on addr ("127.1.0.1:8080"),
 * id = addr; returns once it listens.
 */
void kt_server_spawn(struct kt_env *e, const char *addr);
/*
 * In a forked child that will hold connections: die with the test, never
 * run its clean-up, then join the test cgroup and netns. 0 or -1.
 */
int kt_hold_child_init(const struct kt_env *e, int timeout_s);

/* Open every spec's sockets from a child in the cgroup and netns; 0 once all are open. */
int kt_holder_start(struct kt_env *e, const struct kt_hold_spec *spec, size_t n,
		    struct kt_holder *hd);
/* Each socket's state now (an aborted socket stays aborted); 0 or -1. */
int kt_holder_probe(struct kt_holder *hd);
/* Sockets opened to target ("addr:port/tcp", NULL: any) answered by id (NULL: any) in state. */
int kt_holder_count(const struct kt_holder *hd, const char *target, const char *id, int state);
void kt_holder_print(const struct kt_holder *hd, const char *what);
/* Close the child's sockets and reap it. */
void kt_holder_stop(struct kt_env *e, struct kt_holder *hd);

/* kt_apply_yaml, then the drain reconciliation, as the agent does after an apply. */
int kt_apply_drain(struct kt_env *e, const char *yaml, struct ks_drain_stats *st);

#endif
