/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The active health checker: one event loop, no threads. Each HTTP target
 * keeps one connection between checks (plain or TLS with OpenSSL; HTTP/1.1
 * through h1.c and libhttp-parser, HTTP/2 through h2.c and libnghttp2); TCP
 * checks are non-blocking connects. Everything the prober waits on (those
 * sockets and one timerfd) sits in a private epoll instance whose fd the
 * agent adds to its own loop; when that fd is readable the agent calls
 * ks_prober_dispatch().
 *
 * Not thread-safe: call everything from the agent's loop thread.
 */
#ifndef KSPLIT_PROBER_H
#define KSPLIT_PROBER_H

#include <stddef.h>
#include <stdint.h>

#include "health/health.h"
#include "config/model.h"

/* One endpoint to check. (addr, port) is its identity. */
struct ks_probe_target {
	struct ksm_addr addr;
	uint16_t port;			/* traffic port, host order; checked unless spec.port */
	struct ks_probe_spec spec;
};

/*
 * Called from ks_prober_dispatch() on every state change (the change is
 * also logged). reason is e.g. "2 consecutive failures, last: http status 500".
 * Must not call ks_prober_set_targets() or ks_prober_free().
 */
typedef void (*ks_prober_cb)(void *ctx, const struct ks_probe_target *t, enum ks_hstate old,
			     enum ks_hstate now, const char *reason);

struct ks_prober;

struct ks_prober_stats {
	uint64_t checks;		/* completed */
	uint64_t passes, failures, timeouts;	/* timeouts are also failures */
	uint32_t targets, in_flight, max_in_flight;
};

/* Also sets SIGPIPE to SIG_IGN if it was SIG_DFL: TLS writes to a reset connection raise it. */
int ks_prober_new(struct ks_prober **out, ks_prober_cb on_change, void *ctx);
void ks_prober_free(struct ks_prober *p);

/*
 * Replace the target set. A target already known with the same (addr, port)
 * keeps its state; if its spec changed, its streaks restart and it is checked
 * at once with the new spec (state kept, so a harmless edit does not pull a
 * healthy endpoint out of traffic). New targets start UNKNOWN and are
 * checked at once. Targets not in t are dropped (checks in flight cancelled,
 * no callback). Duplicate (addr, port) or a bad spec: -EINVAL, nothing changed.
 */
int ks_prober_set_targets(struct ks_prober *p, const struct ks_probe_target *t, size_t n);

/* 0 and *out, or -ENOENT when (addr, port) is not a target. */
int ks_prober_state(struct ks_prober *p, const struct ksm_addr *a, uint16_t port,
		    enum ks_hstate *out);

int ks_prober_fd(struct ks_prober *p);
/* Run whatever is ready or due. Never blocks. 0 or -errno (fatal epoll/timerfd errors). */
int ks_prober_dispatch(struct ks_prober *p);

/*
 * Checks running at once; more due checks wait for a free slot. Default
 * min(512, RLIMIT_NOFILE / 4): each check holds one socket.
 */
void ks_prober_set_max_in_flight(struct ks_prober *p, uint32_t n);
void ks_prober_get_stats(struct ks_prober *p, struct ks_prober_stats *st);

#endif /* KSPLIT_PROBER_H */
