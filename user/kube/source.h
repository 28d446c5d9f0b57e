/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Kubernetes API source as the agent sees it: an fd to poll, a call to
 * drive it, and a snapshot of ksplit's objects for the config loader (see
 * kube/kube.h for how it works inside).
 */
#ifndef KSPLIT_KUBE_SOURCE_H
#define KSPLIT_KUBE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#define KS_GATEWAY_CONTROLLER "ksplit.io/gateway-controller"

struct ks_kube_opts {
	const char *kubeconfig;		/* NULL: in-cluster */
	const char *sa_dir;		/* in-cluster service account dir; NULL: the standard one */
	const char *const *classes;	/* --gateway-class: Gateways of these classes are ksplit's too */
	size_t n_classes;
	/*
	 * Status writing (kube/status.h), elected through the Lease
	 * "ksplit-status" in namespace: --namespace, else in-cluster the
	 * service account's; NULL (and not in-cluster): no status is written.
	 */
	const char *namespace;
	const char *identity;		/* the Lease holder; NULL: NODE_NAME or hostname, "_", pid */
	unsigned lease_duration_s;	/* 0: 15 */
	unsigned lease_renew_s;		/* 0: 2 */
};

struct kube_obj;

/* Objects for ks_model_load_objects(): names "httproutes/ns/name", JSON texts. */
struct ks_kube_snap {
	size_t n, cap;
	char **names;
	/*
	 * Point into the source's store: valid until the next process. NULL
	 * (len 0) when the text was dropped: then reuse is set, and the last
	 * load holds the object parsed.
	 */
	const char **bufs;
	size_t *lens;
	bool *reuse;		/* unchanged since the last loaded snapshot (ks_kube_loaded) */
	struct kube_obj **objs;	/* the store's objects, for ks_kube_loaded */
	uint64_t ver;		/* the newest change in it */
};

struct ks_kube_stats {
	size_t objects, relists, watches, errors, served;
};

struct ks_kube;

/* 0, or -errno with the reason in err (a bad kubeconfig, no in-cluster environment). */
int ks_kube_new(const struct ks_kube_opts *o, struct ks_kube **out, char *err, size_t errlen);
/* Readable when there is work: call ks_kube_process(). */
int ks_kube_fd(const struct ks_kube *k);
/*
 * Drives every transfer and timer that is due; true when objects changed
 * since the last snapshot, or this agent just took the status Lease.
 */
bool ks_kube_process(struct ks_kube *k);
/* Every kind has been listed (or found not served) at least once, and no refill relist runs. */
bool ks_kube_synced(const struct ks_kube *k);
int ks_kube_snapshot(struct ks_kube *k, struct ks_kube_snap *s);
/*
 * The incremental load's snapshot: when all that changed since the last
 * snapshot is EndpointSlices that watch events put, s holds just those
 * (reuse all false) and the changes count as taken; -EAGAIN otherwise (a
 * delete, a relist, another kind, the Lease wanting the verdicts): take a
 * full ks_kube_snapshot(), which still sees every change.
 */
int ks_kube_delta(struct ks_kube *k, struct ks_kube_snap *s);
/*
 * s was loaded: the next snapshot marks what has not changed since as
 * reusable. held (NULL: every one): held[i] says the load holds s's object
 * i parsed, so its text is dropped when every snapshot takes it while it is
 * unchanged: 150,000 objects' texts were a quarter of the agent's memory.
 */
void ks_kube_loaded(struct ks_kube *k, const struct ks_kube_snap *s, const bool *held);
/*
 * A load needed a dropped text (a failed load lost the parsed objects that
 * stood for it): every kind is listed again, and the objects whose text was
 * dropped keep it this time (and count as changed; their ver stays).
 */
void ks_kube_refill(struct ks_kube *k);
void ks_kube_snap_free(struct ks_kube_snap *s);
void ks_kube_stats(const struct ks_kube *k, struct ks_kube_stats *st);
/*
 * The verdicts of model m (loaded from this source's last snapshot) are in
 * force: their status is written, while this agent holds the status Lease.
 * ks_kube_process() also returns true when this agent has just taken the
 * Lease, so that the next load hands the verdicts over again. k or m NULL:
 * nothing to do.
 */
struct ks_model;
void ks_kube_status(struct ks_kube *k, const struct ks_model *m);
void ks_kube_free(struct ks_kube *k);

#endif
