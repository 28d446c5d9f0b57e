/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Kubernetes API source: the objects ksplit reads, listed and watched
 * from the API server (client-go's reflector protocol, over libcurl's multi
 * interface, driven by the agent's event loop), handed to the config loader
 * as one small buffer per object; and the status ksplit writes back.
 *
 *   kubeconfig.c  where the server is and how to authenticate (kubeconfig, in-cluster)
 *   http.c        libcurl handles for it (TLS, bearer token re-read per request)
 *   reflector.c   per resource: paged list, watch, bookmarks, 410 relist, backoff
 *   store.c       the objects held, trimmed to what ksplit reads; ksplit's Gateways
 *   lease.c       the status writers' leader election (a coordination.k8s.io Lease)
 *   status.c      route, Gateway and GatewayClass status, written by the Lease holder
 *   kube.c        the source: discovery, the reflectors, the event loop hooks
 */
#ifndef KSPLIT_KUBE_H
#define KSPLIT_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the API server is and how to talk to it. Strings are owned. */
struct kube_conn {
	char *server;		/* "https://host:port", no trailing slash */
	char *namespace;	/* the context's (or the service account's) namespace, may be NULL */
	char *token;		/* bearer token, or NULL */
	char *token_file;	/* re-read before every request (projected tokens rotate), or NULL */
	char *ca_file;		/* certificate-authority */
	char *ca_data;		/* certificate-authority-data, decoded (PEM) */
	size_t ca_len;
	char *cert_file, *key_file;	/* client-certificate, client-key */
	char *cert_data, *key_data;	/* ...-data, decoded */
	size_t cert_len, key_len;
	bool insecure;		/* insecure-skip-tls-verify */
};

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * The current context of the kubeconfig at path. 0, or -errno with the
 * reason ("file:line: field: ...") in err.
 */
int kube_conn_from_kubeconfig(const char *path, struct kube_conn *c, char *err, size_t errlen);
/* In-cluster: KUBERNETES_SERVICE_HOST/_PORT and the service account dir (sa_dir, for tests). */
int kube_conn_in_cluster(const char *sa_dir, struct kube_conn *c, char *err, size_t errlen);
void kube_conn_free(struct kube_conn *c);

#endif /* KSPLIT_KUBE_H */
