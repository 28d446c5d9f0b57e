// SPDX-License-Identifier: BSD-2-Clause
/*
 * Status written by the real agent through ks-apiserver: route
 * status.parents[] entries (Accepted, ResolvedRefs, observedGeneration)
 * for ksplit's parents only, Gateway and GatewayClass conditions, another
 * controller's entry left alone, a 409 between read and write retried, no
 * status write for a flapping endpoint, kubectl reading what was written,
 * and two agents sharing the status Lease: one writes, the other takes over
 * when the first is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kube_fixture.h"

#define CTRL		"ksplit.io/gateway-controller"
#define LATTICE		"application-networking.k8s.aws/gateway-api-controller"
#define WRITTEN		"msg=\"status: written\""
#define LEADING		"holding the status Lease"
#define WAIT_MS		20000

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080", "127.2.0.3:8080",
};

/* Short Lease timing, so that a takeover takes seconds. */
#define AGENT_ARGS(id)                                                                  \
	(const char *const[]){ "--namespace", "t", "--identity", id, "--lease-duration", "3", \
			       "--lease-renew", "1", "--metrics-addr", "none", NULL }

/* GET path; the parsed object (put it), asserting 200. */
static json_object *get(struct kt_kube *k, const char *path)
{
	struct kas_resp r;
	json_object *o;

	kas_req(&r, &k->srv, k->token, "GET", path, NULL, NULL, 0);
	if (r.code != 200)
		fail_msg("GET %s: %ld: %s", path, r.code, r.body ? r.body : "");
	o = json_object_get(r.json);
	kas_resp_free(&r);
	return o;
}

/* The parents[] entry of controller ctrl in route o, or NULL. */
static json_object *parent_of(json_object *o, const char *ctrl)
{
	json_object *st, *ps, *e, *cn;
	size_t i;

	if (!json_object_object_get_ex(o, "status", &st) ||
	    !json_object_object_get_ex(st, "parents", &ps))
		return NULL;
	for (i = 0; i < json_object_array_length(ps); i++) {
		e = json_object_array_get_idx(ps, i);
		if (json_object_object_get_ex(e, "controllerName", &cn) &&
		    !strcmp(json_object_get_string(cn), ctrl))
			return e;
	}
	return NULL;
}

/* Condition type's field in conds (an object's status, or a parents[] entry), or "". */
static const char *cond_of(json_object *holder, const char *type, const char *field)
{
	json_object *cs, *c, *t, *v;
	size_t i;

	if (!holder || !json_object_object_get_ex(holder, "conditions", &cs))
		return "";
	for (i = 0; i < json_object_array_length(cs); i++) {
		c = json_object_array_get_idx(cs, i);
		if (json_object_object_get_ex(c, "type", &t) &&
		    !strcmp(json_object_get_string(t), type))
			return json_object_object_get_ex(c, field, &v) ? json_object_get_string(v) :
									  "";
	}
	return "";
}

/* "STATUS REASON GENERATION" of ksplit's condition type on route name (or "none"). */
static void route_cond(struct kt_kube *k, const char *name, const char *type, char *buf,
		       size_t len)
{
	char path[256];
	json_object *o, *p;

	snprintf(path, sizeof(path), KT_ROUTES "/%s", name);
	o = get(k, path);
	p = parent_of(o, CTRL);
	if (p)
		snprintf(buf, len, "%s %s %s", cond_of(p, type, "status"), cond_of(p, type, "reason"),
			 cond_of(p, type, "observedGeneration"));
	else
		snprintf(buf, len, "none");
	json_object_put(o);
}

/* The agents' logs, whose status lines a failed wait prints. */
static const char *logs[2];

static void print_status_lines(void)
{
	char cmd[PATH_MAX + 64], *out;
	int i, rc;

	for (i = 0; i < 2; i++) {
		if (!logs[i])
			continue;
		snprintf(cmd, sizeof(cmd), "grep -h 'status\\|kube:\\|route' %s | tail -40", logs[i]);
		out = kt_sh_out(cmd, &rc);
		printf("  [status] %s:\n%s", logs[i], out);
		free(out);
	}
}

/* Waits until route name's ksplit condition type reads want ("True Accepted 1"). */
static void wait_cond(struct kt_kube *k, const char *name, const char *type, const char *want)
{
	char got[256] = "";
	int i;

	for (i = 0; i < WAIT_MS / 100; i++) {
		route_cond(k, name, type, got, sizeof(got));
		if (!strcmp(got, want))
			break;
		usleep(100000);
	}
	printf("  [status] HTTPRoute t/%s %s: %s\n", name, type, got);
	if (strcmp(got, want))
		print_status_lines();
	assert_string_equal(got, want);
}

/* Status writes (PUT or PATCH to .../status) the server took, of every object. */
static long long status_writes(struct kt_kube *k, const char *only)
{
	struct kas_resp r;
	json_object *objs, *verb;
	long long n = 0;

	kas_req(&r, &k->srv, NULL, "GET", "/_ksplit/stats", NULL, NULL, 0);
	assert_int_equal(r.code, 200);
	if (json_object_object_get_ex(r.json, "objects", &objs)) {
		json_object_object_foreach(objs, vk, vv) {
			(void)vk;
			verb = vv;
			json_object_object_foreach(verb, key, cnt)
				if (strstr(key, "/status") && (!only || !strcmp(key, only)))
					n += json_object_get_int64(cnt);
		}
	}
	kas_resp_free(&r);
	return n;
}

static void start_agent(struct kt_agent *a, const char *id)
{
	char cmd[PATH_MAX + 32], *out;
	int rc;

	kt_agent_start(a, NULL, AGENT_ARGS(id), 0);
	if (kt_wait_in_file(a->log, KT_APPLIED, 1, WAIT_MS) >= 1)
		return;
	snprintf(cmd, sizeof(cmd), "tail -30 %s", a->log);
	out = kt_sh_out(cmd, &rc);
	fail_msg("%s did not apply its config within %d ms; its log:\n%s", id, WAIT_MS, out);
}

/* The second agent of the Lease test: torn down with the test, also when it fails. */
static struct kt_agent *second;

static int teardown(void **state)
{
	if (second) {
		kt_agent_fini(second);
		free(second);
		second = NULL;
	}
	return kt_kube_teardown(state);
}

static int setup(void **state)
{
	int err = kt_kube_setup(state);
	struct kt_kube *k = *state;

	if (!err)
		err = kt_servers_start(&k->a.env, servers, 5);
	return err;
}

/* Route r with a method match: refused as an object (UnsupportedValue), its last good kept. */
#define R_METHOD                                                                             \
	"{\"spec\":{\"rules\":[{\"matches\":[{\"method\":\"GET\"}],"                            \
	"\"backendRefs\":[{\"name\":\"v1\",\"port\":80}]}]}}"
/* Route r with one backendRef to a Service that does not exist (BackendNotFound). */
#define R_MISSING_BACKEND                                                                    \
	"{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"v1\",\"port\":80,\"weight\":1},"  \
	"{\"name\":\"nope\",\"port\":80,\"weight\":1}]}]}}"
#define LATTICE_ENTRY(msg)                                                                   \
	"{\"parentRef\":{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\","        \
	"\"namespace\":\"t\",\"name\":\"lattice-gw\"},\"controllerName\":\"" LATTICE "\","     \
	"\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\","   \
	"\"message\":\"" msg "\",\"observedGeneration\":1,"                                     \
	"\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}"

static void test_status_writes(void **state)
{
	struct kt_kube *k = *state;
	json_object *o, *lat, *want;
	char cmd[PATH_MAX * 3], *out, ltt[64];
	long long before;
	int rc, i, applied;

	assert_non_null(k);
	logs[0] = k->a.log;
	logs[1] = NULL;
	kt_kube_seed(k);
	start_agent(&k->a, "agent-a");
	assert_true(kt_wait_in_file(k->a.log, LEADING, 1, WAIT_MS) >= 1);

	/* The seed's A/B route: both conditions True, at generation 1. */
	wait_cond(k, "r", "Accepted", "True Accepted 1");
	wait_cond(k, "r", "ResolvedRefs", "True ResolvedRefs 1");
	o = get(k, KT_ROUTES "/r");
	assert_string_equal(kas_jget(o, "status.parents[0].parentRef.name"), "gw");
	assert_string_equal(kas_jget(o, "status.parents[0].parentRef.sectionName"), "http");
	assert_int_equal(json_object_array_length(kas_jarr(json_object_object_get(o, "status"),
							   "parents")), 1);
	snprintf(ltt, sizeof(ltt), "%s", cond_of(parent_of(o, CTRL), "Accepted",
						 "lastTransitionTime"));
	json_object_put(o);
	/* The foreign class's route gets nothing from ksplit. */
	o = get(k, KT_ROUTES "/theirs");
	assert_null(parent_of(o, CTRL));
	json_object_put(o);
	/* The Gateway of ksplit's class: Accepted, Programmed, its VIP as address. */
	for (i = 0; i < WAIT_MS / 100; i++) {
		o = get(k, "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways/gw");
		json_object *st = json_object_object_get(o, "status");

		if (!strcmp(cond_of(st, "Programmed", "status"), "True"))
			break;
		json_object_put(o);
		o = NULL;
		usleep(100000);
	}
	assert_non_null(o);
	{
		json_object *st = json_object_object_get(o, "status");

		assert_string_equal(cond_of(st, "Accepted", "reason"), "Accepted");
		assert_string_equal(cond_of(st, "Programmed", "reason"), "Programmed");
		assert_string_equal(cond_of(st, "Programmed", "observedGeneration"), "1");
		assert_string_equal(kas_jget(o, "status.addresses[0].type"), "IPAddress");
		assert_string_equal(kas_jget(o, "status.addresses[0].value"), "127.10.0.1");
		assert_null(kas_jget(o, "status.addresses[1]"));
	}
	json_object_put(o);
	o = get(k, "/apis/gateway.networking.k8s.io/v1/gatewayclasses/ksplit");
	assert_string_equal(cond_of(json_object_object_get(o, "status"), "Accepted", "status"),
			    "True");
	json_object_put(o);
	/* Not ksplit's class, not ksplit's Gateway: untouched. */
	o = get(k, "/apis/gateway.networking.k8s.io/v1/gatewayclasses/other");
	assert_null(json_object_object_get(o, "status"));
	json_object_put(o);
	o = get(k, "/apis/gateway.networking.k8s.io/v1/namespaces/t/gateways/foreign");
	assert_null(json_object_object_get(o, "status"));
	json_object_put(o);
	o = get(k, "/apis/coordination.k8s.io/v1/namespaces/t/leases/ksplit-status");
	assert_string_equal(kas_jget(o, "spec.holderIdentity"), "agent-a");
	assert_string_equal(kas_jget(o, "spec.leaseDurationSeconds"), "3");
	json_object_put(o);

	/* kubectl reads what was written. */
	snprintf(cmd, sizeof(cmd), "timeout 30 kubectl --kubeconfig %s --cache-dir %s/kc get "
		 "httproute r -n t -o jsonpath='{.status.parents[?(@.controllerName==\"" CTRL
		 "\")].conditions[?(@.type==\"Accepted\")].status}' 2>&1", k->kubeconfig, k->env.dir);
	out = kt_sh_out(cmd, &rc);
	printf("  [status] kubectl: rc=%d out=%s\n", rc, out);
	if (!access("/usr/bin/kubectl", X_OK)) {
		assert_int_equal(rc, 0);
		assert_string_equal(out, "True");
	}
	free(out);

	/* Another controller's entry on the same route. */
	o = get(k, KT_ROUTES "/r");
	json_object_array_add(kas_jarr(json_object_object_get(o, "status"), "parents"),
			      json_tokener_parse(LATTICE_ENTRY("lattice says yes")));
	kt_kube_api(k, "PUT", KT_ROUTES "/r/status", NULL, json_object_to_json_string(o), 200);
	json_object_put(o);
	want = json_tokener_parse(LATTICE_ENTRY("lattice says yes"));

	/* r made invalid: ResolvedRefs False with the verdict's reason; Accepted stays True. */
	kt_kube_api(k, "PATCH", KT_ROUTES "/r", "application/merge-patch+json", R_MISSING_BACKEND,
		    200);
	wait_cond(k, "r", "ResolvedRefs", "False BackendNotFound 2");
	wait_cond(k, "r", "Accepted", "True Accepted 2");
	o = get(k, KT_ROUTES "/r");
	lat = parent_of(o, LATTICE);
	assert_non_null(lat);
	assert_true(json_object_equal(lat, want));
	assert_string_equal(cond_of(parent_of(o, CTRL), "ResolvedRefs", "message"),
			    "Service t/nope not found");
	/* Accepted did not change: its lastTransitionTime is kept. */
	assert_string_equal(cond_of(parent_of(o, CTRL), "Accepted", "lastTransitionTime"), ltt);
	json_object_put(o);
	/* Fixed: True again. */
	kt_kube_route_weights(k, 25, 75, false);
	wait_cond(k, "r", "ResolvedRefs", "True ResolvedRefs 3");

	/* r refused as an object: Accepted False, UnsupportedValue, the last good kept; fixed, True. */
	kt_kube_api(k, "PATCH", KT_ROUTES "/r", "application/merge-patch+json", R_METHOD, 200);
	wait_cond(k, "r", "Accepted", "False UnsupportedValue 4");
	o = get(k, KT_ROUTES "/r");
	printf("  [status] Accepted message: %s\n", cond_of(parent_of(o, CTRL), "Accepted",
							   "message"));
	assert_string_equal(cond_of(parent_of(o, CTRL), "Accepted", "message"),
			    "spec.rules[0].matches[0].method: method matching cannot be honoured: "
			    "ksplit picks a backend at connect(), before any byte of the request "
			    "exists; its last good version stays in force");
	json_object_put(o);
	kt_kube_route_weights(k, 25, 75, false);
	wait_cond(k, "r", "Accepted", "True Accepted 5");

	/*
	 * A 409: another controller writes its entry between ksplit's read and
	 * its write (the interpose fault); ksplit reads again, and both changes
	 * are there in the end.
	 */
	before = status_writes(k, "httproutes/t/r/status");
	kas_fault(&k->srv, "{\"interpose\":{\"object\":\"httproutes/t/r/status\",\"patch\":"
		  "{\"status\":{\"parents\":[" LATTICE_ENTRY("lattice changed its mind") "]}}}}");
	kt_kube_route_weights(k, 50, 50, false);
	wait_cond(k, "r", "Accepted", "True Accepted 6");
	assert_true(kt_wait_in_file(k->a.log, "status: conflict (409)", 1, WAIT_MS) == 1);
	o = get(k, KT_ROUTES "/r");
	json_object_put(want);
	want = json_tokener_parse(LATTICE_ENTRY("lattice changed its mind"));
	assert_true(json_object_equal(parent_of(o, LATTICE), want));
	assert_string_equal(cond_of(parent_of(o, CTRL), "ResolvedRefs", "status"), "True");
	json_object_put(o);
	json_object_put(want);
	/* The PUT that got 409, and the one after it. */
	assert_int_equal(status_writes(k, "httproutes/t/r/status") - before, 2);

	/* An endpoint flapping 50 times changes no verdict: no status write at all. */
	before = status_writes(k, NULL);
	for (i = 0; i < 50; i++) {
		applied = kt_count_in_file(k->a.log, KT_APPLIED);
		kt_kube_slice(k, "PUT", "v2", "127.2.0.1", i % 2 ? "127.2.0.2" : "127.2.0.3");
		assert_true(kt_wait_in_file(k->a.log, KT_APPLIED, applied + 1, WAIT_MS) > applied);
	}
	/* Past the per-object min interval (1 s) and a Lease renewal or two. */
	sleep(3);
	printf("  [status] status writes during 50 endpoint flaps: %lld\n",
	       status_writes(k, NULL) - before);
	assert_int_equal(status_writes(k, NULL) - before, 0);
	kt_agent_stop(&k->a);
}

/* Two agents, one Lease: exactly one writes; killed, the other takes over and writes. */
static void test_status_lease(void **state)
{
	struct kt_kube *k = *state;
	struct kt_agent *b;
	int64_t t0;
	int wa;
	json_object *o;

	assert_non_null(k);
	assert_non_null(second = b = calloc(1, sizeof(*b)));
	assert_int_equal(kt_agent_init(b), 0);
	b->kubeconfig = k->kubeconfig;
	logs[0] = k->a.log;
	logs[1] = b->log;
	kt_kube_seed(k);
	start_agent(&k->a, "agent-a");
	assert_true(kt_wait_in_file(k->a.log, LEADING, 1, WAIT_MS) >= 1);
	wait_cond(k, "r", "Accepted", "True Accepted 1");
	start_agent(b, "agent-b");
	assert_true(kt_wait_in_file(b->log, "another agent holds the status Lease", 1, WAIT_MS) >= 1);

	/* A verdict changes: agent-a writes it, agent-b writes nothing. */
	wa = kt_count_in_file(k->a.log, WRITTEN);
	kt_kube_api(k, "PATCH", KT_ROUTES "/r", "application/merge-patch+json", R_MISSING_BACKEND,
		    200);
	wait_cond(k, "r", "ResolvedRefs", "False BackendNotFound 2");
	/* Both have loaded it; a few renewals go by. */
	assert_true(kt_wait_in_file(b->log, KT_APPLIED, 2, WAIT_MS) >= 2);
	sleep(3);
	printf("  [status] writes: agent-a %d, agent-b %d\n",
	       kt_count_in_file(k->a.log, WRITTEN) - wa, kt_count_in_file(b->log, WRITTEN));
	assert_true(kt_count_in_file(k->a.log, WRITTEN) - wa >= 1);
	assert_int_equal(kt_count_in_file(b->log, WRITTEN), 0);
	assert_int_equal(kt_count_in_file(b->log, LEADING), 0);

	/* agent-a killed: agent-b takes the Lease once it has gone unrenewed for its duration. */
	t0 = kt_now_ms();
	kill(k->a.pid, SIGKILL);
	waitpid(k->a.pid, NULL, 0);
	k->a.pid = 0;
	assert_true(kt_wait_in_file(b->log, LEADING, 1, WAIT_MS) >= 1);
	printf("  [status] agent-b took the Lease %lld ms after agent-a was killed "
	       "(lease duration 3 s, renew 1 s)\n", (long long)(kt_now_ms() - t0));
	o = get(k, "/apis/coordination.k8s.io/v1/namespaces/t/leases/ksplit-status");
	assert_string_equal(kas_jget(o, "spec.holderIdentity"), "agent-b");
	assert_string_equal(kas_jget(o, "spec.leaseTransitions"), "1");
	json_object_put(o);
	/* The fix is written by agent-b. */
	kt_kube_route_weights(k, 25, 75, false);
	wait_cond(k, "r", "ResolvedRefs", "True ResolvedRefs 3");
	assert_true(kt_count_in_file(b->log, WRITTEN) >= 1);
	/* Stopped cleanly, the holder gives the Lease up: no holder, for the next to take at once. */
	kt_agent_stop(b);
	assert_int_equal(kt_count_in_file(b->log, "status: released the status Lease"), 1);
	o = get(k, "/apis/coordination.k8s.io/v1/namespaces/t/leases/ksplit-status");
	assert_string_equal(kas_jget(o, "spec.holderIdentity"), "");
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_lease, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
