// SPDX-License-Identifier: BSD-2-Clause
/* The status writers' Lease (see lease.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "common/log.h"
#include "kube/lease.h"

void kube_time_now(char *buf, size_t len, bool micro)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(buf, len, "%s.%06ldZ", s, ts.tv_nsec / 1000);
	else
		snprintf(buf, len, "%sZ", s);
}

static void path(const struct kube_lease *l, char *buf, size_t len, bool item)
{
	snprintf(buf, len, "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s%s", l->ns,
		 item ? "/" : "", item ? l->name : "");
}

static void owner_done(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms);

int kube_lease_init(struct kube_lease *l, const struct kube_conn *conn, CURLM *multi,
		    const char *ns, const char *name, const char *identity, unsigned duration_s,
		    unsigned renew_ms)
{
	memset(l, 0, sizeof(*l));
	l->call.own.done = owner_done;
	l->call.ctx = l;
	l->conn = conn;
	l->multi = multi;
	l->duration_s = duration_s;
	l->renew_ms = renew_ms;
	l->ns = strdup(ns);
	l->name = strdup(name);
	l->identity = strdup(identity);
	return l->ns && l->name && l->identity ? 0 : -ENOMEM;
}

static void start(struct kube_lease *l, enum lease_state st, const char *method, bool item,
		  const char *body, uint64_t now_ms)
{
	char p[512];
	int err;

	path(l, p, sizeof(p), item);
	l->state = st;
	err = kube_call_start(&l->call, l->multi, l->conn, method, p, body);
	if (err) {
		pr_warn("status: cannot start a Lease request", "lease=%s/%s err=%d", l->ns, l->name,
			err);
		l->state = L_IDLE;
		l->next_ms = now_ms + l->renew_ms;
	}
}

/* The spec we write: us as holder, renewed now; acquired now when taking over. */
static void set_spec(struct kube_lease *l, struct json_object *spec, bool take)
{
	struct json_object *v;
	char now[40];
	int transitions = 0;

	kube_time_now(now, sizeof(now), true);
	if (take) {
		if (json_object_object_get_ex(spec, "leaseTransitions", &v))
			transitions = json_object_get_int(v) + 1;
		json_object_object_add(spec, "leaseTransitions", json_object_new_int(transitions));
		json_object_object_add(spec, "acquireTime", json_object_new_string(now));
	}
	json_object_object_add(spec, "holderIdentity", json_object_new_string(l->identity));
	json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int(l->duration_s));
	json_object_object_add(spec, "renewTime", json_object_new_string(now));
}

static void create(struct kube_lease *l, uint64_t now_ms)
{
	struct json_object *o = json_object_new_object(), *md = json_object_new_object(),
			   *spec = json_object_new_object();

	json_object_object_add(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
	json_object_object_add(o, "kind", json_object_new_string("Lease"));
	json_object_object_add(md, "name", json_object_new_string(l->name));
	json_object_object_add(md, "namespace", json_object_new_string(l->ns));
	json_object_object_add(o, "metadata", md);
	set_spec(l, spec, true);
	json_object_object_add(o, "spec", spec);
	start(l, L_CREATE, "POST", false, json_object_to_json_string(o), now_ms);
	json_object_put(o);
}

static const char *str_at(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : "";
}

/* Logs each change of who holds the Lease once. */
static void tell_holder(struct kube_lease *l, const char *holder)
{
	if (!strcmp(l->told, holder) || !strcmp(holder, l->identity))
		return;
	snprintf(l->told, sizeof(l->told), "%s", holder);
	pr_info("status: another agent holds the status Lease; this one does not write status",
		"lease=%s/%s holder=%s identity=%s", l->ns, l->name, holder, l->identity);
}

/* A Lease read: renew it, take it over, or leave it to its holder. */
static void judge(struct kube_lease *l, uint64_t now_ms)
{
	struct json_object *o = json_tokener_parse(l->call.body ? l->call.body : ""), *spec, *v;
	const char *holder, *renew;
	char rec[512];
	bool take;

	if (!o || !json_object_object_get_ex(o, "spec", &spec) ||
	    !json_object_is_type(spec, json_type_object)) {
		pr_warn("status: the Lease read is not a Lease", "lease=%s/%s", l->ns, l->name);
		json_object_put(o);
		l->state = L_IDLE;
		l->next_ms = now_ms + l->renew_ms;
		return;
	}
	holder = str_at(spec, "holderIdentity");
	renew = str_at(spec, "renewTime");
	snprintf(rec, sizeof(rec), "%s\n%s", holder, renew);
	/* The record's age is measured on our clock, from when we first saw it so. */
	if (strcmp(rec, l->seen)) {
		snprintf(l->seen, sizeof(l->seen), "%s", rec);
		l->seen_ms = now_ms;
		l->seen_duration_s = json_object_object_get_ex(spec, "leaseDurationSeconds", &v) ?
					     (unsigned)json_object_get_int(v) : l->duration_s;
	}
	take = !*holder || now_ms >= l->seen_ms + l->seen_duration_s * 1000ULL;
	if (strcmp(holder, l->identity) && !take) {
		if (l->leading)
			pr_warn("status: lost the status Lease; no longer writing status",
				"lease=%s/%s holder=%s", l->ns, l->name, holder);
		l->leading = false;
		tell_holder(l, holder);
		json_object_put(o);
		l->state = L_IDLE;
		l->next_ms = now_ms + l->renew_ms;
		return;
	}
	if (strcmp(holder, l->identity) && *holder)
		pr_info("status: the status Lease expired; taking it over", "lease=%s/%s holder=%s "
			"unrenewed_ms=%llu", l->ns, l->name, holder,
			(unsigned long long)(now_ms - l->seen_ms));
	set_spec(l, spec, strcmp(holder, l->identity));
	/* PUT with the resourceVersion read: a write in between makes it a 409. */
	start(l, L_UPDATE, "PUT", true, json_object_to_json_string(o), now_ms);
	json_object_put(o);
}

static void owner_done(struct kube_owner *o, CURL *h, CURLcode result, uint64_t now_ms)
{
	struct kube_lease *l = ((struct kube_call *)o)->ctx;
	enum lease_state st = l->state;
	long code = kube_call_code(&l->call, result);

	(void)h;
	pr_debug("status: Lease request done", "lease=%s/%s state=%d http=%ld", l->ns, l->name, st,
		 code);
	l->state = L_IDLE;
	l->next_ms = now_ms + l->renew_ms;
	if (st == L_GET && code == 200) {
		judge(l, now_ms);
	} else if (st == L_GET && code == 404) {
		create(l, now_ms);
	} else if ((st == L_CREATE && code == 201) || (st == L_UPDATE && code == 200)) {
		l->writes++;
		l->renewed_ms = now_ms;
		if (!l->leading) {
			l->acquisitions++;
			l->told[0] = 0;
			pr_info("status: holding the status Lease; this agent writes status",
				"lease=%s/%s identity=%s duration_s=%u renew_ms=%u", l->ns, l->name,
				l->identity, l->duration_s, l->renew_ms);
		}
		l->leading = true;
	} else if (code == 409) {
		/* Someone else wrote the Lease between our read and our write: read again. */
		l->next_ms = now_ms;
	} else {
		pr_warn("status: Lease request failed", "lease=%s/%s state=%d http=%ld curl=%s "
			"detail=%.200s", l->ns, l->name, st, code, curl_easy_strerror(result),
			l->call.body ? l->call.body : "");
	}
	if (l->state == L_IDLE)
		kube_call_end(&l->call, l->multi);
}

void kube_lease_tick(struct kube_lease *l, uint64_t now_ms)
{
	/* Could not renew for 2/3 of the duration: stop before another may take over. */
	if (l->leading && now_ms > l->renewed_ms + l->duration_s * 2000ULL / 3) {
		pr_warn("status: could not renew the status Lease in time; no longer writing status",
			"lease=%s/%s", l->ns, l->name);
		l->leading = false;
	}
	if (l->state == L_IDLE && now_ms >= l->next_ms)
		start(l, L_GET, "GET", true, NULL, now_ms);
}

uint64_t kube_lease_next_ms(const struct kube_lease *l, uint64_t now_ms)
{
	uint64_t due = l->state == L_IDLE ? l->next_ms : UINT64_MAX;

	if (l->leading && l->renewed_ms + l->duration_s * 2000ULL / 3 < due)
		due = l->renewed_ms + l->duration_s * 2000ULL / 3 + 1;
	return due == UINT64_MAX ? due : due > now_ms ? due - now_ms : 0;
}

void kube_lease_release(struct kube_lease *l)
{
	struct json_object *o = NULL, *spec;
	char p[512];
	long code;

	if (!l->leading)
		return;
	l->leading = false;
	kube_call_end(&l->call, l->multi);
	path(l, p, sizeof(p), true);
	code = kube_call_sync(&l->call, l->conn, "GET", p, NULL, 1000);
	if (code == 200)
		o = json_tokener_parse(l->call.body ? l->call.body : "");
	if (o && json_object_object_get_ex(o, "spec", &spec) &&
	    !strcmp(str_at(spec, "holderIdentity"), l->identity)) {
		/* As client-go releases: no holder, so the next look of another takes it. */
		json_object_object_add(spec, "holderIdentity", json_object_new_string(""));
		json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int(1));
		code = kube_call_sync(&l->call, l->conn, "PUT", p, json_object_to_json_string(o),
				      1000);
	}
	if (code == 200)
		pr_info("status: released the status Lease", "lease=%s/%s identity=%s", l->ns,
			l->name, l->identity);
	else
		pr_warn("status: could not release the status Lease; it expires after its duration",
			"lease=%s/%s http=%ld", l->ns, l->name, code);
	json_object_put(o);
	kube_call_end(&l->call, NULL);
}

void kube_lease_free(struct kube_lease *l)
{
	kube_call_end(&l->call, l->multi);
	free(l->ns);
	free(l->name);
	free(l->identity);
	memset(l, 0, sizeof(*l));
}
