/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The servers test_prober checks, all in the caller's network namespace:
 * one child with an HTTP/1.1 listener whose status is switched at run time,
 * one that accepts and never answers, a minimal h2c responder, a plain TCP
 * listener, HTTP/1.1 on ::1 and a keep-alive listener with selectable
 * misbehaviour (kp_server_main); `openssl s_server` and `nghttpd` for HTTPS
 * and HTTP/2 over TLS; and an HTTPS keep-alive server of our own (neither of
 * those keeps HTTP/1.1 connections). What they see is counted in a
 * struct kp_shared in shared memory.
 */
#ifndef KSPLIT_KT_PROBER_SERVERS_H
#define KSPLIT_KT_PROBER_SERVERS_H

#include <sys/types.h>

/* Listeners of the test server (all on 127.0.0.1 unless noted). */
enum { L_HTTP, L_HANG, L_H2C, L_TCP, L_HTTP6, L_KEEP, L_NR };
extern const int kp_port[L_NR];

/* What the keep-alive listener does with a request. */
enum {
	KEEP_ANSWER,		/* answer (chunked body) and keep the connection */
	KEEP_DROP_REUSED,	/* answer a connection's first request, close on any later one */
	KEEP_ANSWER_CLOSE,	/* answer "keep-alive", then close the idle connection at once */
	KEEP_RESET,		/* reset the connection instead of answering */
};
#define PORT_CLOSED 8084
#define PORT_TLS 8443
#define PORT_H2TLS 8444		/* nghttpd: HTTP/2 over TLS only */
#define PORT_TLSKEEP 8445	/* our HTTPS keep-alive server */

struct kp_shared {
	int status[L_NR];	/* what HTTP and h2c answer now */
	long served[L_NR];	/* responses sent */
	long streak[L_NR];	/* responses in a row with the current status */
	int last[L_NR];
	long accepted[L_NR];
	long bad_preface;	/* h2c listener got something that is not HTTP/2 */
	int keep_mode;		/* KEEP_* */
	long dropped;		/* keep-alive listener: requests closed or reset, not answered */
	long tls_accepted, tls_served;	/* HTTPS keep-alive server */
	char tls_host[64];
	char host[L_NR][64];	/* last Host header (HTTP/1.1) */
	char reqline[L_NR][128];
	char ua[L_NR][64];
};

/* Non-blocking TCP listener on addr:port (family AF_INET or AF_INET6); the fd or -1. */
int kp_listen_on(int family, const char *addr, int port);
/* Until addr:port accepts a connection: 0, or -ETIMEDOUT after 10 s. */
int kp_wait_port(int family, const char *addr, int port);
/* The child serving every L_* listener; never returns. */
void kp_server_main(struct kp_shared *sh);
/*
 * Fork a server with the certificate in dir (cert.pem, key.pem; nghttpd also
 * serves dir/h2root), its pid into *pid; 0 once it accepts connections.
 */
int kp_start_tls_server(pid_t *pid, const char *dir);
int kp_start_h2_server(pid_t *pid, const char *dir);
int kp_start_tls_keep_server(pid_t *pid, const char *dir, struct kp_shared *sh);

#endif
