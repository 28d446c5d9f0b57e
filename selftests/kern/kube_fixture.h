/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The real agent on the Kubernetes API source, against ks-apiserver (the
 * stand-in, over HTTPS with its own CA and a bearer token file): the
 * fixture the kube tests share, and the seed's objects (a Gateway of
 * ksplit's class with VIP 127.10.0.1, a foreign class's Gateway and route,
 * Services v1 and v2 with two endpoints each, and the A/B HTTPRoute t/r).
 */
#ifndef KSPLIT_KT_KUBE_FIXTURE_H
#define KSPLIT_KT_KUBE_FIXTURE_H

#include <limits.h>
#include <stdbool.h>

#include "agent_fixture.h"
#include "apiserver/harness.h"

#define KT_ROUTES "/apis/gateway.networking.k8s.io/v1/namespaces/t/httproutes"

struct kt_kube {
	struct kt_agent a;		/* first: the cmocka state is also a struct kt_agent */
	struct kas_env env;
	struct kas_srv srv;
	char kubeconfig[PATH_MAX];
	char token[64];
};

/* cmocka fixtures: the agent fixture, a server over HTTPS, a kubeconfig (namespace t). */
int kt_kube_setup(void **state);
int kt_kube_teardown(void **state);
/* A request through the API; code is the expected HTTP status. */
void kt_kube_api(struct kt_kube *k, const char *method, const char *path, const char *ctype,
		 const char *body, long code);
/* EndpointSlice SVC-1 of Service t/SVC with endpoints a and b (port 8080), POST or PUT. */
void kt_kube_slice(struct kt_kube *k, const char *method, const char *svc, const char *a,
		   const char *b);
/* HTTPRoute t/r on gw:http, v1 and v2 weighted w1/w2: created, or merge-patched. */
void kt_kube_route_weights(struct kt_kube *k, int w1, int w2, bool create);
void kt_kube_seed(struct kt_kube *k);

#endif
