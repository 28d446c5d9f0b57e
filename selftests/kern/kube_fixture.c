// SPDX-License-Identifier: BSD-2-Clause
/* The kube tests' fixture (see kube_fixture.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kube_fixture.h"

/* A write through the API; code is the expected HTTP status. */
void kt_kube_api(struct kt_kube *k, const char *method, const char *path, const char *ctype,
		 const char *body, long code)
{
	struct kas_resp r;

	kas_req(&r, &k->srv, k->token, method, path, ctype, body, 0);
	if (r.code != code)
		fail_msg("%s %s: %ld, want %ld: %s", method, path, r.code, code,
			 r.body ? r.body : "");
	kas_resp_free(&r);
}

void kt_kube_slice(struct kt_kube *k, const char *method, const char *svc, const char *a,
		   const char *b)
{
	char body[1024], path[256];

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		 "\"metadata\":{\"name\":\"%s-1\",\"namespace\":\"t\",\"labels\":"
		 "{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
		 "\"ports\":[{\"name\":\"tcp\",\"port\":8080,\"protocol\":\"TCP\"}],"
		 "\"endpoints\":[{\"addresses\":[\"%s\"]},{\"addresses\":[\"%s\"]}]}",
		 svc, svc, a, b);
	if (!strcmp(method, "POST"))
		snprintf(path, sizeof(path), "/apis/discovery.k8s.io/v1/namespaces/t/endpointslices");
	else
		snprintf(path, sizeof(path),
			 "/apis/discovery.k8s.io/v1/namespaces/t/endpointslices/%s-1", svc);
	kt_kube_api(k, method, path, NULL, body, !strcmp(method, "POST") ? 201 : 200);
}

void kt_kube_route_weights(struct kt_kube *k, int w1, int w2, bool create)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
		 "\"metadata\":{\"name\":\"r\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
		 "[{\"name\":\"gw\",\"sectionName\":\"http\"}],\"rules\":[{\"backendRefs\":["
		 "{\"name\":\"v1\",\"port\":80,\"weight\":%d},{\"name\":\"v2\",\"port\":80,"
		 "\"weight\":%d}]}]}}", w1, w2);
	if (create)
		kt_kube_api(k, "POST", KT_ROUTES, NULL, body, 201);
	else
		kt_kube_api(k, "PATCH", KT_ROUTES "/r", "application/merge-patch+json", body, 200);
}

void kt_kube_seed(struct kt_kube *k)
{
	kt_kube_api(k, "POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", NULL,
		    "{\"metadata\":{\"name\":\"ksplit\"},\"spec\":{\"controllerName\":"
		    "\"ksplit.io/gateway-controller\"}}", 201);
	/* A class ksplit does not own: its Gateway and routes are none of ksplit's business. */
	kt_kube_api(k, "POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", NULL,
		    "{\"metadata\":{\"name\":\"other\"},\"spec\":{\"controllerName\":\"example.com/x\"}}",
		    201);
	kt_kube_api(k, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways", NULL,
		    "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"t\"},\"spec\":{\"gatewayClassName\":"
		    "\"ksplit\",\"addresses\":[{\"value\":\"127.10.0.1\"}],\"listeners\":[{\"name\":"
		    "\"http\",\"port\":80,\"protocol\":\"HTTP\"},{\"name\":\"tcp\",\"port\":9000,"
		    "\"protocol\":\"TCP\"}]}}", 201);
	kt_kube_api(k, "POST", "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways", NULL,
		    "{\"metadata\":{\"name\":\"foreign\",\"namespace\":\"t\"},\"spec\":{\"gatewayClassName\":"
		    "\"other\",\"addresses\":[{\"value\":\"127.10.0.9\"}],\"listeners\":[{\"name\":"
		    "\"http\",\"port\":80,\"protocol\":\"HTTP\"}]}}", 201);
	kt_kube_api(k, "POST", KT_ROUTES, NULL,
		    "{\"metadata\":{\"name\":\"theirs\",\"namespace\":\"t\"},\"spec\":{\"parentRefs\":"
		    "[{\"name\":\"foreign\"}],\"rules\":[{\"matches\":[{\"headers\":[{\"name\":\"x\","
		    "\"value\":\"y\"}]}],\"backendRefs\":[{\"name\":\"v1\",\"port\":80}]}]}}", 201);
	kt_kube_api(k, "POST", "/api/v1/namespaces/t/services", NULL,
		    "{\"metadata\":{\"name\":\"v1\",\"namespace\":\"t\"},\"spec\":{\"clusterIP\":"
		    "\"10.96.0.1\",\"ports\":[{\"name\":\"tcp\",\"port\":80,\"targetPort\":8080}]}}", 201);
	kt_kube_api(k, "POST", "/api/v1/namespaces/t/services", NULL,
		    "{\"metadata\":{\"name\":\"v2\",\"namespace\":\"t\"},\"spec\":{\"clusterIP\":"
		    "\"10.96.0.2\",\"ports\":[{\"name\":\"tcp\",\"port\":80,\"targetPort\":8080}]}}", 201);
	kt_kube_slice(k, "POST", "v1", "127.1.0.1", "127.1.0.2");
	kt_kube_slice(k, "POST", "v2", "127.2.0.1", "127.2.0.2");
	kt_kube_route_weights(k, 25, 75, true);
}

int kt_kube_setup(void **state)
{
	struct kt_kube *k = calloc(1, sizeof(*k));

	if (!k || kt_agent_init(&k->a)) {
		*state = k;
		return -1;
	}
	kas_env_init(&k->env);
	kas_start(&k->srv, &k->env, true, NULL);
	snprintf(k->token, sizeof(k->token), "token-one");
	snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", k->env.dir);
	kas_write(&k->env, "kubeconfig",
		  "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
		  "contexts: [{name: t, context: {cluster: c, user: u, namespace: t}}]\n"
		  "clusters: [{name: c, cluster: {server: '%s', certificate-authority: ca.crt}}]\n"
		  "users: [{name: u, user: {tokenFile: token}}]\n", k->srv.base);
	k->a.kubeconfig = k->kubeconfig;
	*state = k;
	return 0;
}

int kt_kube_teardown(void **state)
{
	struct kt_kube *k = *state;

	if (!k)
		return 0;
	kt_agent_fini(&k->a);
	kas_stop(&k->srv.pid);
	kas_env_fini(&k->env);
	free(k);
	return 0;
}
