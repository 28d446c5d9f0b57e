/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Real-kernel test harness. Every test gets its own network namespace,
 * child cgroup (never the cgroup2 root: a hook there would catch every
 * process on the machine) and pin dir, all with a random suffix so that
 * parallel runs cannot collide, and all removed again by kt_env_teardown,
 * by the atexit handler, or by the SIGINT/SIGTERM handler.
 *
 * Servers and clients are forked children of the test process: the test
 * process itself stays outside the test cgroup and the test netns, so a
 * failing assertion can never leave it hooked or stranded.
 */
#ifndef KSPLIT_KT_HARNESS_H
#define KSPLIT_KT_HARNESS_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "datapath/dp.h"

#define KT_MAX_KEYS	32
#define KT_KEY_LEN	64
#define KT_MAX_ERRNO	160
#define KT_MAX_REMOVED	8
#define KT_MAX_CHILDREN	16

/* Counts per string key (server id, getpeername result, reply source). */
struct kt_tally {
	int n;
	char key[KT_MAX_KEYS][KT_KEY_LEN];
	long count[KT_MAX_KEYS];
	long overflow;		/* hits on keys beyond KT_MAX_KEYS: a test bug */
};

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

/*
 * Written by the client child into shared memory, read by the parent after
 * the child has exited (or live, for the removed-endpoint markers).
 */
struct kt_result {
	long attempts, ok, failed;
	long err[KT_MAX_ERRNO];		/* failures by errno; EAGAIN = no UDP reply */
	struct kt_tally ids;		/* which server answered */
	struct kt_tally peers;		/* getpeername() of connected sockets */
	struct kt_tally srcs;		/* recvfrom() source of UDP replies */
	/* Live update: replies from removed[i] to connects started at or after after_ns[i]. */
	char removed[KT_MAX_REMOVED][KT_KEY_LEN];
	int64_t after_ns[KT_MAX_REMOVED];
	long removed_hits[KT_MAX_REMOVED];
	int n_removed;
	int stop;
	int done;
};

struct kt_client {
	pid_t pid;
	struct kt_result *res;		/* MAP_SHARED */
};

struct kt_env {
	char tag[32];			/* "kstest-<pid>-<random>" */
	char netns[64];
	char netns_path[96];
	char cgroup[512];
	char pin_dir[256];
	bool netns_made, cgroup_made, pins_made;
	struct ks_dp *dp;
	pid_t children[KT_MAX_CHILDREN];
	int64_t last_apply_ns;		/* CLOCK_MONOTONIC when the last apply returned */
	struct kt_env *next;		/* registry for the exit/signal cleanup */
};

/* Growable string for manifests. */
struct kt_buf {
	char *s;
	size_t len, cap;
};

int64_t kt_now_ns(void);
int64_t kt_now_ms(void);

/* For tests that make a bare network namespace of their own (the prober tests). */
/* Bring lo up in the caller's network namespace. 0 or -errno. */
int kt_lo_up(void);
/*
 * IPv4 TCP sockets in the caller's network namespace in state st (1
 * ESTABLISHED, 6 TIME_WAIT) whose local port (local) or remote port is
 * port. -1 if /proc/self/net/tcp cannot be read.
 */
int kt_count_tcp(bool local, unsigned int port, unsigned int st);

/* netns with lo up, cgroup, pin dir path (the dp is opened by kt_dp_open). */
int kt_env_setup(struct kt_env *e);
void kt_env_teardown(struct kt_env *e);
/* cmocka group/test fixtures around the two above; *state is a struct kt_env. */
int kt_setup(void **state);
int kt_teardown(void **state);

int kt_dp_open(struct kt_env *e, uint32_t max_services, uint32_t max_endpoints);
/* Run a command inside the test netns (nsenter --net=...). */
int kt_netns_sh(struct kt_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add an IPv6 address to lo inside the netns ("fd00:10::1"). */
int kt_addr6_add(struct kt_env *e, const char *addr);

/*
 * One child in the netns serving every "addr:port" (IPv6 as "[addr]:port") on
 * TCP and UDP. Each reply is the listener's own "addr:port" string.
 */
int kt_servers_start(struct kt_env *e, const char *const *addrs, size_t n);

int kt_client_start(struct kt_env *e, const struct kt_client_opts *o, struct kt_client *c);
/* Wait for a counted client (or stop a looping one) and reap it; 0 when it finished cleanly. */
int kt_client_wait(struct kt_env *e, struct kt_client *c);
int kt_client_stop(struct kt_env *e, struct kt_client *c);
void kt_client_free(struct kt_client *c);
/* Start + wait; the result is copied into *r. */
int kt_client_run(struct kt_env *e, const struct kt_client_opts *o, struct kt_result *r);
/* From now on a reply from id to a connect started later is a violation. */
void kt_client_mark_removed(struct kt_client *c, const char *id, int64_t after_ns);

long kt_tally_get(const struct kt_tally *t, const char *key);
void kt_result_print(const char *what, const struct kt_result *r);

/* Manifest helpers. Endpoint lists are space-separated addresses, each
 * optionally suffixed "=notready" or "=terminating". */
void kt_buf_printf(struct kt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kt_buf_free(struct kt_buf *b);
/* Gateway t/name; addrs "127.10.0.1 fd00:10::a", listeners "http:HTTP:80 udp:UDP:80". */
void kt_yaml_gateway(struct kt_buf *b, const char *name, const char *addrs, const char *listeners);
/* Service t/name with ports tcp+udp `port` -> 8080, no ClusterIP unless cluster_ips. */
void kt_yaml_service(struct kt_buf *b, const char *name, int port, const char *cluster_ips);
/* EndpointSlice for t/svc of family "IPv4"/"IPv6" with ports tcp+udp 8080. */
void kt_yaml_slice(struct kt_buf *b, const char *svc, const char *family, const char *eps);
/* A route in t: kind TCPRoute/UDPRoute/HTTPRoute, parent "gw/tcp" (Gateway/section) or "svc:NAME",
 * backends "v1=25 v2=75" (port 80). */
void kt_yaml_route(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		   const char *backends);
/* Same with one metadata annotation line, e.g. "ksplit.io/empty-group: reject". */
void kt_yaml_route_ann(struct kt_buf *b, const char *kind, const char *name, const char *parent,
		       const char *backends, const char *annotation);

/* ks_model_load_buffers -> ks_image_build -> ks_dp_apply, as the agent does. */
int kt_apply_yaml(struct kt_env *e, const char *yaml);

/* Status from the pinned maps; NULL on failure. */
struct json_object *kt_status(struct kt_env *e);
/* services[] entry for vip/port/proto ("TCP"/"UDP"), or NULL. */
struct json_object *kt_status_svc(struct json_object *st, const char *vip, int port,
				  const char *proto);
long kt_status_field(struct json_object *svc, const char *field);
/* Connections of endpoint addr:port across all groups of svc; -1 when absent. */
long kt_status_ep(struct json_object *svc, const char *addr, int port);

/* A process (the agent) with stdout+stderr appended to log_path; tracked for teardown. */
pid_t kt_spawn(struct kt_env *e, char *const argv[], const char *log_path);
/* Send sig, reap within timeout_ms (else SIGKILL); the wait status or -1. */
int kt_stop(struct kt_env *e, pid_t pid, int sig, long timeout_ms);
int kt_count_in_file(const char *path, const char *needle);
/* Wait until needle occurs at least min_count times; the count or -ETIMEDOUT. */
int kt_wait_in_file(const char *path, const char *needle, int min_count, long timeout_ms);

/*
 * Share check: prints the measured value (the report needs the numbers) and
 * fails the test when |100*count/n - expect_pct| > tol_pct.
 */
#define kt_assert_share(what, count, n, expect_pct, tol_pct) \
	kt_check_share(what, count, n, expect_pct, tol_pct, __FILE__, __LINE__)
void kt_check_share(const char *what, long count, long n, double expect_pct, double tol_pct,
		    const char *file, int line);

#endif
