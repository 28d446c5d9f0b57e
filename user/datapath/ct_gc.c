// SPDX-License-Identifier: BSD-2-Clause
/*
 * The TC path's flow sweep. bpf/tc.bpf.c expires a flow only when its next
 * packet comes; a flow nobody sends on again would keep its ks_ct entry
 * (two, for a flow ks_ct_vips cannot list) until the LRU needs the room,
 * and the LRU then drops the oldest entries, live flows' included. The
 * agent sweeps every few seconds (its self-check tick) with the datapath's
 * rule: a flow is idle when the later of its entries' last_seen (a reverse
 * one's, if it has one) is older than its timeout (TCP: the short
 * one once either side sent a FIN or RST). A reverse entry whose forward
 * entry is gone or belongs to another pick (the datapath deleted or
 * replaced it) is judged alone.
 *
 * The keys are listed first and every entry is read again just before its
 * fate is decided: a flow that a packet revived since the listing stays.
 * The gap between that read and the delete is a few microseconds; a packet
 * in it loses its flow's entry (a TCP segment then passes untouched, as
 * for any flow without entry), which an idle timeout makes rare.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ksplit/abi.h>

#include "datapath/dp_int.h"
#include "common/log.h"

#define IPPROTO_TCP_	6

static uint64_t coarse_now(void)
{
	struct timespec ts;

	/* The datapath stamps with bpf_ktime_get_coarse_ns: the same clock. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool idle(const struct ks_dp *dp, uint64_t last, uint8_t proto, bool closing,
		 uint64_t now)
{
	uint64_t t;

	if (proto != IPPROTO_TCP_)
		t = dp->ct_timeout_ns[DP_CT_UDP];
	else
		t = dp->ct_timeout_ns[closing ? DP_CT_CLOSE : DP_CT_TCP];
	return (int64_t)(now - last) > (int64_t)t;
}

/*
 * The other entry of k's flow, if it is there and is k's partner: a
 * forward entry (client -> VIP, holds the backend) and the reverse entry
 * keyed by that backend's reply (holds the VIP) point at each other.
 */
static bool partner(int fd, const struct ks_ct_key *k, const struct ks_ct_ent *e,
		    struct ks_ct_key *pk, struct ks_ct_ent *pe)
{
	*pk = (struct ks_ct_key){ .sport = e->port, .dport = k->sport, .proto = k->proto,
				  .family = k->family, .dir = !k->dir };
	memcpy(pk->src, e->addr, sizeof(pk->src));
	memcpy(pk->dst, k->src, sizeof(pk->dst));
	if (k->dir == KS_CT_REV) {
		/* The forward key is client -> VIP: the reverse key's dst, the entry's VIP. */
		memcpy(pk->src, k->dst, sizeof(pk->src));
		memcpy(pk->dst, e->addr, sizeof(pk->dst));
		pk->sport = k->dport;
		pk->dport = e->port;
	}
	if (bpf_map_lookup_elem(fd, pk, pe))
		return false;
	if (k->dir == KS_CT_FWD)
		return pe->port == k->dport && !memcmp(pe->addr, k->dst, sizeof(pe->addr));
	return pe->port == k->sport && !memcmp(pe->addr, k->src, sizeof(pe->addr));
}

/* Decide the fate of entry k (and its partner): the entries deleted. */
static unsigned int sweep_one(struct ks_dp *dp, int fd, const struct ks_ct_key *k, uint64_t now)
{
	struct ks_ct_ent e, pe;
	struct ks_ct_key pk;
	uint64_t last;
	bool paired, closing;

	if (bpf_map_lookup_elem(fd, k, &e))
		return 0;	/* deleted with its partner, or by the datapath */
	paired = partner(fd, k, &e, &pk, &pe);
	/* A reverse entry with its forward one is judged when the forward one is. */
	if (paired && k->dir == KS_CT_REV)
		return 0;
	if (!e.last_seen) {
		/* Made by a build without timestamps: its idle time starts now. */
		e.last_seen = now;
		bpf_map_update_elem(fd, k, &e, BPF_EXIST);
		return 0;
	}
	last = e.last_seen;
	closing = e.closing;
	if (paired) {
		if (pe.last_seen > last)
			last = pe.last_seen;
		closing |= pe.closing;
	}
	if (!idle(dp, last, k->proto, closing, now))
		return 0;
	if (bpf_map_delete_elem(fd, k))
		return 0;
	return 1 + (paired && !bpf_map_delete_elem(fd, &pk));
}

/* ks_ct_vips keys by backend (addr, port, proto, family), then slot. */
static int be_key_cmp(const void *pa, const void *pb)
{
	const struct ks_ct_be_key *a = pa, *b = pb;
	int c = memcmp(a->addr, b->addr, sizeof(a->addr));

	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Mark the keys of backend k (any slot) in the sorted keys[0..n). */
static void mark_backend(const struct ks_ct_be_key *keys, bool *live, size_t n,
			 struct ks_ct_be_key k)
{
	size_t lo = 0, hi = n;

	k.idx = 0;	/* the lowest slot: the first key of the backend, if any */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (be_key_cmp(&keys[mid], &k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n; lo++) {
		k.idx = keys[lo].idx;
		if (be_key_cmp(&keys[lo], &k))
			break;
		live[lo] = true;
	}
}

/*
 * ks_ct_vips only grows: the datapath adds a backend's slots and never
 * takes them away (a gap would hide the slots after it). A backend that
 * left every service, as pods do at every rollout, would keep its slots,
 * and once the index is full every new flow would need a reverse entry
 * again. So every sweep deletes the slots of the backends that no service
 * of the applied state lists (terminating ones count as listed) and no
 * flow left in ks_ct holds: no new flow picks them once the apply that
 * removed them has returned, and a flow still there may get replies (a
 * UDP answer, a FIN in flight) that need the slot until it expires.
 * ct[0..n_ct) are the ks_ct keys the sweep listed. *deleted: keys deleted.
 */
static int vips_gc(struct ks_dp *dp, const struct ks_ct_key *ct, size_t n_ct,
		   unsigned int *deleted)
{
	int fd = bpf_map__fd(dp->skel->maps.ks_ct_vips), ctfd = bpf_map__fd(dp->skel->maps.ks_ct);
	size_t cap = bpf_map__max_entries(dp->skel->maps.ks_ct_vips), n = 0, i, g, j;
	struct ks_ct_be_key *keys = calloc(cap, sizeof(*keys));
	bool *live = calloc(cap, sizeof(*live)), dead = false;
	int err = 0;

	*deleted = 0;
	if (!keys || !live) {
		err = -ENOMEM;
		goto out;
	}
	/* Only the datapath adds keys and none is deleted meanwhile: the walk ends. */
	while (n < cap && !bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &keys[n]))
		n++;
	if (n < cap && errno != ENOENT) {
		err = -errno;
		goto out;
	}
	if (!n)
		goto out;
	qsort(keys, n, sizeof(*keys), be_key_cmp);
	for (i = 0; i < dp->n; i++) {
		const struct ksi_service *s = &dp->svcs[i].s;

		for (g = 0; g < s->n_groups && g < KS_MAX_GROUPS; g++)
			for (j = 0; j < s->groups[g].n_total; j++) {
				const struct ks_backend *be = &s->groups[g].be[j];
				struct ks_ct_be_key k = { .port = be->port, .proto = s->key.proto,
							  .family = be->family };

				memcpy(k.addr, be->addr, sizeof(k.addr));
				mark_backend(keys, live, n, k);
			}
	}
	for (i = 0; i < n && !dead; i++)
		dead = !live[i];
	/* Backends gone from every service (rare: after a rollout): do flows still hold them? */
	for (i = 0; dead && i < n_ct; i++) {
		struct ks_ct_be_key k = { .proto = ct[i].proto, .family = ct[i].family };
		struct ks_ct_ent e;

		if (ct[i].dir != KS_CT_FWD || bpf_map_lookup_elem(ctfd, &ct[i], &e))
			continue;
		memcpy(k.addr, e.addr, sizeof(k.addr));
		k.port = e.port;
		mark_backend(keys, live, n, k);
	}
	for (i = 0; dead && i < n; i++)
		if (!live[i] && !bpf_map_delete_elem(fd, &keys[i]))
			(*deleted)++;
out:
	free(keys);
	free(live);
	return err;
}

int ks_dp_ct_gc(struct ks_dp *dp, unsigned int *deleted)
{
	int fd = bpf_map__fd(dp->skel->maps.ks_ct), err = 0;
	struct ks_ct_key *keys = NULL, *nk;
	/* A walk whose last key the datapath deleted starts over: bound it. */
	size_t n = 0, cap = 0, i, max = 2 * (size_t)bpf_map__max_entries(dp->skel->maps.ks_ct);
	unsigned int del = 0, gone;
	uint64_t now;

	/* Listing only: deleting while walking would restart the walk at every delete. */
	while (n < max) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			nk = realloc(keys, cap * sizeof(*keys));
			if (!nk) {
				err = -ENOMEM;
				goto out;
			}
			keys = nk;
		}
		if (bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &keys[n])) {
			if (errno != ENOENT)
				err = -errno;
			break;
		}
		n++;
	}
	if (err)
		goto out;
	now = coarse_now();
	for (i = 0; i < n; i++)
		del += sweep_one(dp, fd, &keys[i], now);
	if (del)
		pr_debug("TC flows expired", "entries=%u of=%zu", del, n);
	err = vips_gc(dp, keys, n, &gone);
	if (gone)
		pr_debug("TC backends gone from the reply index", "keys=%u", gone);
out:
	free(keys);
	if (deleted)
		*deleted = del;
	return err;
}
