// SPDX-License-Identifier: BSD-2-Clause
/*
 * The source: one reflector per kind ksplit reads, all on one libcurl multi
 * handle whose sockets and timer live in an epoll fd of their own, which the
 * agent's event loop polls like any other fd. A snapshot hands the config
 * loader ksplit's objects: Gateways of ksplit's classes, the routes that
 * name one of them or a Service, and everything they reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/log.h"
#include "kube/lease.h"
#include "kube/reflector.h"
#include "kube/source.h"
#include "kube/status.h"

#define GW	"gateway.networking.k8s.io"
#define LEASE_NAME		"ksplit-status"
#define LEASE_DURATION_S	15
#define LEASE_RENEW_S		2
/* Status writes: per object at most one a second; 20 a second overall, bursts of 100. */
#define STATUS_MIN_INTERVAL_MS	1000
#define STATUS_RATE		20
#define STATUS_BURST		100

/* What ksplit reads; the config loader's kind table knows each of these kinds. */
static const struct kube_res resources[] = {
	{ "", { "v1" }, "services", "Service" },
	{ "", { "v1" }, "namespaces", "Namespace" },
	{ "discovery.k8s.io", { "v1" }, "endpointslices", "EndpointSlice" },
	{ GW, { "v1", "v1beta1" }, "gatewayclasses", "GatewayClass" },
	{ GW, { "v1", "v1beta1" }, "gateways", "Gateway" },
	{ GW, { "v1", "v1beta1" }, "httproutes", "HTTPRoute" },
	{ GW, { "v1", "v1alpha2" }, "grpcroutes", "GRPCRoute" },
	{ GW, { "v1alpha2" }, "tcproutes", "TCPRoute" },
	{ GW, { "v1alpha2" }, "udproutes", "UDPRoute" },
	{ GW, { "v1alpha2", "v1alpha3" }, "tlsroutes", "TLSRoute" },
	{ GW, { "v1beta1", "v1" }, "referencegrants", "ReferenceGrant" },
	{ "application-networking.k8s.aws", { "v1alpha1" }, "targetgrouppolicies",
	  "TargetGroupPolicy" },
};

#define N_RES (sizeof(resources) / sizeof(resources[0]))

struct ks_kube {
	struct kube_conn conn;
	CURLM *multi;
	int epfd, tfd;
	struct reflector refl[N_RES];
	char **classes;			/* --gateway-class */
	size_t n_classes;
	uint64_t curl_due_ms;		/* curl's own timer, UINT64_MAX when none */
	uint64_t loaded_ver;		/* the newest change the last loaded snapshot had */
	bool status_on;			/* a namespace for the Lease is known */
	bool resync;			/* just took the Lease: the verdicts are wanted again */
	struct kube_lease lease;
	struct kube_status status;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* libcurl: watch s for what it wants, in our epoll fd. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct ks_kube *k = arg;
	struct epoll_event ev = { .data.fd = s };

	(void)e;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(k->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(k->epfd, EPOLL_CTL_MOD, s, &ev) && errno == ENOENT)
		epoll_ctl(k->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

/* Arms the timerfd for the earlier of curl's timer and the reflectors' next wake. */
static void arm(struct ks_kube *k)
{
	uint64_t now = mono_ms(), due = k->curl_due_ms, w;
	struct itimerspec its = {};
	size_t i;

	for (i = 0; i <= N_RES + 1; i++) {
		if (i < N_RES)
			w = refl_next_ms(&k->refl[i], now);
		else if (!k->status_on)
			break;
		else if (i == N_RES)
			w = kube_lease_next_ms(&k->lease, now);
		else
			w = kube_status_next_ms(&k->status, now);
		if (w != UINT64_MAX && now + w < due)
			due = now + w;
	}
	if (due != UINT64_MAX) {
		w = due > now ? due - now : 0;
		/* 0 would disarm: the smallest real timeout instead. */
		its.it_value.tv_sec = w / 1000;
		its.it_value.tv_nsec = (long)(w % 1000) * 1000000 + (w ? 0 : 1);
	}
	timerfd_settime(k->tfd, 0, &its, NULL);
}

static int on_timer(CURLM *m, long timeout_ms, void *arg)
{
	struct ks_kube *k = arg;

	(void)m;
	k->curl_due_ms = timeout_ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)timeout_ms;
	return 0;
}

/* The Lease and the status writer, when a namespace for the Lease is known. */
static int status_init(struct ks_kube *k, const struct ks_kube_opts *o)
{
	const char *ns = o->namespace ? o->namespace : o->kubeconfig ? NULL : k->conn.namespace;
	const char *node = getenv("NODE_NAME");
	char id[320], host[256] = "";
	int err;

	if (!ns || !*ns) {
		pr_info("status: status writing is off: no namespace is known for the status Lease "
			"(pass --namespace NS; in a pod the service account's namespace is used)");
		return 0;
	}
	if (!node || !*node) {
		gethostname(host, sizeof(host) - 1);
		node = host;
	}
	if (o->identity)
		snprintf(id, sizeof(id), "%s", o->identity);
	else
		snprintf(id, sizeof(id), "%s_%d", node, (int)getpid());
	err = kube_lease_init(&k->lease, &k->conn, k->multi, ns, LEASE_NAME, id,
			      o->lease_duration_s ? o->lease_duration_s : LEASE_DURATION_S,
			      (o->lease_renew_s ? o->lease_renew_s : LEASE_RENEW_S) * 1000);
	if (err) {
		kube_lease_free(&k->lease);
		return err;
	}
	kube_status_init(&k->status, k, &k->conn, k->multi, STATUS_MIN_INTERVAL_MS, STATUS_RATE,
			 STATUS_BURST);
	k->status_on = true;
	pr_info("status: status is written by the holder of the status Lease",
		"lease=%s/%s identity=%s duration_s=%u renew_ms=%u", ns, LEASE_NAME, id,
		k->lease.duration_s, k->lease.renew_ms);
	return 0;
}

int ks_kube_new(const struct ks_kube_opts *o, struct ks_kube **out, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ks_kube *k = calloc(1, sizeof(*k));
	size_t i;
	int ret;

	if (!k)
		return -ENOMEM;
	k->epfd = k->tfd = -1;
	k->curl_due_ms = UINT64_MAX;
	ret = o->kubeconfig ? kube_conn_from_kubeconfig(o->kubeconfig, &k->conn, err, errlen)
			    : kube_conn_in_cluster(o->sa_dir ? o->sa_dir : KUBE_SA_DIR, &k->conn,
						   err, errlen);
	if (ret)
		goto fail;
	ret = -ENOMEM;
	if (o->n_classes && !(k->classes = calloc(o->n_classes, sizeof(*k->classes))))
		goto fail;
	for (i = 0; i < o->n_classes; i++, k->n_classes++)
		if (!(k->classes[i] = strdup(o->classes[i])))
			goto fail;
	k->epfd = epoll_create1(EPOLL_CLOEXEC);
	k->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (k->epfd < 0 || k->tfd < 0) {
		ret = -errno;
		ks_set_err(err, errlen, "cannot create the API source's fds: %s", strerror(-ret));
		goto fail;
	}
	ev.data.fd = k->tfd;
	epoll_ctl(k->epfd, EPOLL_CTL_ADD, k->tfd, &ev);
	k->multi = curl_multi_init();
	if (!k->multi)
		goto fail;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	for (i = 0; i < N_RES; i++)
		refl_init(&k->refl[i], &resources[i], &k->conn, k->multi);
	ret = status_init(k, o);
	if (ret)
		goto fail;
	pr_info("kube: API source", "server=%s namespace=%s gateway_classes=%zu",
		k->conn.server, k->conn.namespace ? k->conn.namespace : "", k->n_classes);
	ks_kube_process(k);
	*out = k;
	return 0;
fail:
	ks_kube_free(k);
	return ret;
}

int ks_kube_fd(const struct ks_kube *k)
{
	return k->epfd;
}

static void reap(struct ks_kube *k)
{
	uint64_t now = mono_ms();
	struct kube_owner *o;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(k->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		o = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&o);
		if (o)
			o->done(o, msg->easy_handle, msg->data.result, now);
	}
}

bool ks_kube_process(struct ks_kube *k)
{
	struct epoll_event evs[16];
	int n, i, running;
	uint64_t exp, now;
	bool changed = false;
	size_t j;

	n = epoll_wait(k->epfd, evs, 16, 0);
	for (i = 0; i < n; i++) {
		if (evs[i].data.fd == k->tfd) {
			if (read(k->tfd, &exp, sizeof(exp)) < 0)
				continue;
			if (k->curl_due_ms <= mono_ms() + 1) {
				k->curl_due_ms = UINT64_MAX;
				curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
			}
			continue;
		}
		curl_multi_socket_action(k->multi, evs[i].data.fd,
					 (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
					 (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
					 (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0),
					 &running);
	}
	reap(k);
	now = mono_ms();
	for (j = 0; j < N_RES; j++)
		refl_tick(&k->refl[j], now);
	if (k->status_on) {
		kube_lease_tick(&k->lease, now);
		k->resync |= kube_status_tick(&k->status, k->lease.leading, now);
	}
	/* A new request wants curl to act now (it set a 0 ms timer). */
	if (k->curl_due_ms <= mono_ms()) {
		k->curl_due_ms = UINT64_MAX;
		curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		reap(k);
	}
	for (j = 0; j < N_RES; j++)
		changed |= k->refl[j].changed;
	arm(k);
	return changed || k->resync;
}

bool ks_kube_synced(const struct ks_kube *k)
{
	size_t i;

	/*
	 * Nor while a refill relists: a load between its pages would miss the
	 * texts of the pages to come and start it over (-ESTALE).
	 */
	for (i = 0; i < N_RES; i++)
		if (!k->refl[i].synced || k->refl[i].store.refill)
			return false;
	return true;
}

static struct reflector *refl_of(struct ks_kube *k, const char *resource)
{
	size_t i;

	for (i = 0; i < N_RES; i++)
		if (!strcmp(resources[i].resource, resource))
			return &k->refl[i];
	return NULL;
}

struct reflector *kube_refl_kind(struct ks_kube *k, const char *kind)
{
	size_t i;

	for (i = 0; i < N_RES; i++)
		if (!strcmp(resources[i].kind, kind))
			return &k->refl[i];
	return NULL;
}

/*
 * Whether the Gateway ns/name exists and is of one of ksplit's classes;
 * own_class: of a class whose controller is ksplit's (not --gateway-class).
 */
bool kube_gateway_ours(struct ks_kube *k, const char *key, bool own_class)
{
	const struct kube_obj *g = kube_store_get(&refl_of(k, "gateways")->store, key), *c;
	size_t i;

	if (!g || !g->class)
		return false;
	for (i = 0; !own_class && i < k->n_classes; i++)
		if (!strcmp(k->classes[i], g->class))
			return true;
	c = kube_store_get(&refl_of(k, "gatewayclasses")->store, g->class);
	return c && c->class && !strcmp(c->class, KS_GATEWAY_CONTROLLER);
}

struct snap_ctx {
	struct ks_kube *k;
	struct ks_kube_snap *s;
	const struct kube_res *res;
	int err;
};

static int grow_arr(void **p, size_t cap, size_t size)
{
	void *n = realloc(*p, cap * size);

	if (!n)
		return -ENOMEM;
	*p = n;
	return 0;
}

static void add(const struct kube_obj *o, void *arg)
{
	struct snap_ctx *c = arg;
	struct ks_kube_snap *s = c->s;
	size_t i;
	bool keep;

	if (c->err)
		return;
	if (!strcmp(c->res->kind, "GatewayClass"))
		return;
	if (!strcmp(c->res->kind, "Gateway")) {
		keep = kube_gateway_ours(c->k, o->key, false);
	} else if (strstr(c->res->kind, "Route")) {
		/* Routes of other implementations' Gateways are theirs: no verdict from ksplit. */
		keep = o->svc_parent;
		for (i = 0; !keep && o->gw_parents && o->gw_parents[i]; i++)
			keep = kube_gateway_ours(c->k, o->gw_parents[i], false);
	} else {
		keep = true;
	}
	if (!keep)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;

		if (grow_arr((void **)&s->names, cap, sizeof(*s->names)) ||
		    grow_arr((void **)&s->bufs, cap, sizeof(*s->bufs)) ||
		    grow_arr((void **)&s->lens, cap, sizeof(*s->lens)) ||
		    grow_arr((void **)&s->reuse, cap, sizeof(*s->reuse)) ||
		    grow_arr((void **)&s->objs, cap, sizeof(*s->objs))) {
			c->err = -ENOMEM;
			return;
		}
		s->cap = cap;
	}
	/* "resource/key" without asprintf: a snapshot names 150,000 objects. */
	{
		size_t rl = strlen(c->res->resource), kl = strlen(o->key);
		char *nm = malloc(rl + kl + 2);

		if (!nm) {
			c->err = -ENOMEM;
			return;
		}
		memcpy(nm, c->res->resource, rl);
		nm[rl] = '/';
		memcpy(nm + rl + 1, o->key, kl + 1);
		s->names[s->n] = nm;
	}
	s->bufs[s->n] = o->json;
	s->lens[s->n] = o->len;
	s->reuse[s->n] = o->ver <= c->k->loaded_ver;
	s->objs[s->n] = (struct kube_obj *)o;
	if (o->ver > s->ver)
		s->ver = o->ver;
	s->n++;
}

int ks_kube_snapshot(struct ks_kube *k, struct ks_kube_snap *s)
{
	struct snap_ctx c = { .k = k, .s = s };
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < N_RES && !c.err; i++) {
		c.res = &resources[i];
		kube_store_each(&k->refl[i].store, add, &c);
		refl_forget_changes(&k->refl[i]);
	}
	k->resync = false;
	if (c.err)
		ks_kube_snap_free(s);
	return c.err;
}

int ks_kube_delta(struct ks_kube *k, struct ks_kube_snap *s)
{
	struct snap_ctx c = { .k = k, .s = s };
	size_t i, j, x;

	memset(s, 0, sizeof(*s));
	if (k->resync)
		return -EAGAIN;
	for (i = 0; i < N_RES; i++) {
		const struct reflector *r = &k->refl[i];

		if (r->changed && (r->wide || strcmp(resources[i].kind, "EndpointSlice")))
			return -EAGAIN;
	}
	for (i = 0; i < N_RES && !c.err; i++) {
		struct reflector *r = &k->refl[i];

		c.res = &resources[i];
		for (j = 0; j < r->n_touched && !c.err; j++) {
			const struct kube_obj *o;

			/* A key put twice is one object. */
			for (x = 0; x < j && strcmp(r->touched[x], r->touched[j]); x++)
				;
			if (x < j)
				continue;
			if ((o = kube_store_get(&r->store, r->touched[j])))
				add(o, &c);
		}
	}
	if (c.err) {
		ks_kube_snap_free(s);
		return c.err;
	}
	for (i = 0; i < N_RES; i++)
		refl_forget_changes(&k->refl[i]);
	return 0;
}

void ks_kube_snap_free(struct ks_kube_snap *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->bufs);
	free(s->lens);
	free(s->reuse);
	free(s->objs);
	memset(s, 0, sizeof(*s));
}

void ks_kube_loaded(struct ks_kube *k, const struct ks_kube_snap *s, const bool *held)
{
	size_t i;

	k->loaded_ver = s->ver;
	for (i = 0; i < s->n; i++)
		if ((!held || held[i]) && !s->objs[i]->keep_text)
			kube_obj_drop_text(s->objs[i]);
}

void ks_kube_refill(struct ks_kube *k)
{
	size_t i;

	pr_warn("kube: a load needed objects whose text was dropped; listing every kind again");
	for (i = 0; i < N_RES; i++)
		refl_refill(&k->refl[i]);
	arm(k);
}

void ks_kube_stats(const struct ks_kube *k, struct ks_kube_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < N_RES; i++) {
		st->objects += k->refl[i].store.n;
		st->relists += k->refl[i].relists;
		st->watches += k->refl[i].watches;
		st->errors += k->refl[i].errors;
		st->served += k->refl[i].served;
	}
}

void ks_kube_status(struct ks_kube *k, const struct ks_model *m)
{
	uint64_t now = mono_ms();
	int err;

	if (!k || !m || !k->status_on)
		return;
	/*
	 * Only the holder works the status out (at 50,000 routes that is not
	 * free, and every node loads); one that takes the Lease later asks for
	 * the verdicts again (resync).
	 */
	k->resync |= kube_status_tick(&k->status, k->lease.leading, now);
	if (!k->status.leading)
		return;
	err = kube_status_set(&k->status, m);
	if (err)
		pr_warn("status: cannot work out the status to write", "err=%d", err);
	k->resync = false;
	kube_status_tick(&k->status, k->lease.leading, now);
	arm(k);
}

void ks_kube_free(struct ks_kube *k)
{
	size_t i;

	if (!k)
		return;
	if (k->status_on) {
		kube_status_free(&k->status);
		kube_lease_release(&k->lease);
		kube_lease_free(&k->lease);
	}
	for (i = 0; i < N_RES; i++)
		if (k->refl[i].res)
			refl_free(&k->refl[i]);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	if (k->epfd >= 0)
		close(k->epfd);
	if (k->tfd >= 0)
		close(k->tfd);
	for (i = 0; i < k->n_classes; i++)
		free(k->classes[i]);
	free(k->classes);
	kube_conn_free(&k->conn);
	free(k);
}
