/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The status writer: what ksplit says about the objects it judges, written
 * only while this agent holds the status Lease (lease.h).
 *
 *   routes          status.parents[] entries for ksplit's parents only
 *                   (controllerName ksplit.io/gateway-controller): Accepted
 *                   and ResolvedRefs with the verdict's reasons
 *   Gateways        of classes whose controller is ksplit's: Accepted,
 *                   Programmed, status.addresses (the VIPs)
 *   GatewayClasses  whose controller is ksplit's: Accepted
 *
 * Each object's desired part is kept as a hash of its JSON; an object is
 * written only when that differs from what was last written, at most once
 * per min interval per object, and within a global token bucket. A write is
 * a read-modify-write: GET, replace only ksplit's part (other controllers'
 * parents[] entries and conditions stay as they are), PUT .../status with
 * the resourceVersion read, and on 409 read again. Internal to kube/.
 */
#ifndef KSPLIT_KUBE_STATUS_H
#define KSPLIT_KUBE_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>

#include "kube/http.h"

struct ks_kube;
struct ks_model;
struct reflector;

/* kube.c, for the writer: the reflector of a kind ("HTTPRoute"), or NULL. */
struct reflector *kube_refl_kind(struct ks_kube *k, const char *kind);
/* kube.c: the Gateway "ns/name" is ksplit's (own_class: its class's controller is ksplit's). */
bool kube_gateway_ours(struct ks_kube *k, const char *key, bool own_class);

#define STATUS_SLOTS 4

struct st_entry;

struct kube_status {
	struct ks_kube *k;
	const struct kube_conn *conn;
	CURLM *multi;
	unsigned min_interval_ms, rate, burst;
	struct st_entry **tab;		/* open addressing on path */
	size_t n, cap;
	struct st_entry *head, *tail;	/* objects to write, in order */
	size_t queued;
	struct st_slot {
		struct kube_call call;
		struct kube_status *st;
		struct st_entry *e;
		bool put;		/* the PUT is in flight (else the GET) */
		char *sent;		/* the desired part being written */
		uint64_t sent_hash;
		unsigned conflicts;
	} slots[STATUS_SLOTS];
	double tokens;
	uint64_t tokens_ms;
	bool leading;
	unsigned puts, skipped, conflicts, errors;	/* counters, for logs */
};

void kube_status_init(struct kube_status *st, struct ks_kube *k, const struct kube_conn *conn,
		      CURLM *multi, unsigned min_interval_ms, unsigned rate, unsigned burst);
/*
 * The verdicts of model m are the ones in force: queue the objects whose
 * status changed. Only while leading; else nothing is worked out.
 */
int kube_status_set(struct kube_status *st, const struct ks_model *m);
/*
 * Starts the writes that are due, while leading. True when it has just
 * become the leader: everything is to be checked, so the verdicts are
 * wanted again (kube_status_set).
 */
bool kube_status_tick(struct kube_status *st, bool leading, uint64_t now_ms);
uint64_t kube_status_next_ms(const struct kube_status *st, uint64_t now_ms);
void kube_status_free(struct kube_status *st);

#endif
