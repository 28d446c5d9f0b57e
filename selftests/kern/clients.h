/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Client children: connect (or send) to a target from inside the test
 * cgroup and netns, count, and report into shared memory (struct
 * kt_result, shares.h).
 */
#ifndef KSPLIT_KT_CLIENTS_H
#define KSPLIT_KT_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "env.h"
#include "shares.h"

enum kt_mode {
	KT_TCP,			/* connect, read the server id until EOF */
	KT_UDP_CONNECTED,	/* connect, send, recvfrom */
	KT_UDP_UNCONNECTED,	/* sendto, recvfrom */
};

struct kt_client_opts {
	const char *target;	/* "127.10.0.1:80", "[fd00:10::a]:80", "[::ffff:127.10.0.1]:80" */
	enum kt_mode mode;
	long count;		/* iterations; 0 with loop: until kt_client_stop */
	bool loop;		/* run until stopped (live-update tests) */
	bool outside_cgroup;	/* do not join the test cgroup (untouched tests) */
	bool one_socket;	/* UDP unconnected: every datagram from one socket */
	int timeout_s;		/* alarm() in the child; 0: 120 s */
};

struct kt_client {
	pid_t pid;
	struct kt_result *res;		/* MAP_SHARED */
};

int kt_client_start(struct kt_env *e, const struct kt_client_opts *o, struct kt_client *c);
/* Wait for a counted client (or stop a looping one) and reap it; 0 when it finished cleanly. */
int kt_client_wait(struct kt_env *e, struct kt_client *c);
int kt_client_stop(struct kt_env *e, struct kt_client *c);
void kt_client_free(struct kt_client *c);
/* Start + wait; the result is copied into *r. */
int kt_client_run(struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r);
/* From now on a reply from id to a connect started later is a violation. */
void kt_client_mark_removed(struct kt_client *c, const char *id, int64_t after_ns);

#endif
