/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Leader election through a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: the holder renews spec.renewTime every renew
 * period; another candidate takes over once the record it sees has not
 * changed for leaseDurationSeconds (measured on its own clock, so clocks
 * need not agree); a 409 means someone else wrote first: read again. The
 * holder stops counting itself the leader when it could not renew for 2/3
 * of the duration, before anyone may take over. Requests run on the source's
 * libcurl multi handle: nothing blocks. Internal to kube/.
 */
#ifndef KSPLIT_KUBE_LEASE_H
#define KSPLIT_KUBE_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>

#include "kube/http.h"

enum lease_state { L_IDLE, L_GET, L_CREATE, L_UPDATE };

struct kube_lease {
	struct kube_call call;
	const struct kube_conn *conn;
	CURLM *multi;
	char *ns, *name, *identity;
	unsigned duration_s, renew_ms;
	enum lease_state state;
	uint64_t next_ms;		/* L_IDLE: when to look again */
	bool leading;
	uint64_t renewed_ms;		/* our last successful write of the record */
	/* The record as last seen, and since when (CLOCK_MONOTONIC ms). */
	char seen[512];
	uint64_t seen_ms;
	unsigned seen_duration_s;
	char told[256];			/* the holder last logged, so each change is logged once */
	unsigned writes, acquisitions;	/* counters, for logs and tests */
};

/* Names are copied; 0 or -ENOMEM. */
int kube_lease_init(struct kube_lease *l, const struct kube_conn *conn, CURLM *multi,
		    const char *ns, const char *name, const char *identity, unsigned duration_s,
		    unsigned renew_ms);
/* Starts the next look or renewal when due; drops the lead when renewals failed too long. */
void kube_lease_tick(struct kube_lease *l, uint64_t now_ms);
/* Ms until kube_lease_tick wants to run, or UINT64_MAX. */
uint64_t kube_lease_next_ms(const struct kube_lease *l, uint64_t now_ms);
/*
 * On the way out, when this agent holds the Lease: give it up (no holder),
 * so that another takes it at its next look instead of after the duration.
 * Blocks for at most 2 s: the event loop has ended.
 */
void kube_lease_release(struct kube_lease *l);
void kube_lease_free(struct kube_lease *l);

/* "2026-12-01T22:45:00.123456Z" (metav1.MicroTime) for now, or without micro "...:00Z". */
void kube_time_now(char *buf, size_t len, bool micro);

#endif
