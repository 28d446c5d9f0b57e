// SPDX-License-Identifier: BSD-2-Clause
/* Active health checks, pure logic: state machine, schedule, spec. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/diag.h"
#include "health/health.h"

const char *ks_hstate_name(enum ks_hstate s)
{
	switch (s) {
	case KS_H_UNKNOWN:
		return "unknown";
	case KS_H_HEALTHY:
		return "healthy";
	case KS_H_UNHEALTHY:
		return "unhealthy";
	}
	return "?";
}

void ks_hsm_init(struct ks_hsm *m)
{
	memset(m, 0, sizeof(*m));
	m->state = KS_H_UNKNOWN;
}

static void hsm_move(struct ks_hsm *m, enum ks_hstate to)
{
	m->state = to;
	m->passes = 0;
	m->fails = 0;
}

bool ks_hsm_feed(struct ks_hsm *m, bool pass, uint32_t healthy_thr, uint32_t unhealthy_thr)
{
	enum ks_hstate old = m->state;

	if (healthy_thr < 1)
		healthy_thr = 1;
	if (unhealthy_thr < 1)
		unhealthy_thr = 1;
	if (pass) {
		m->fails = 0;
		if (m->passes < UINT32_MAX)
			m->passes++;
	} else {
		m->passes = 0;
		if (m->fails < UINT32_MAX)
			m->fails++;
	}
	switch (m->state) {
	case KS_H_UNKNOWN:
		/* Lattice: a new target is healthy once it passes one check. */
		if (pass)
			hsm_move(m, KS_H_HEALTHY);
		else if (m->fails >= unhealthy_thr)
			hsm_move(m, KS_H_UNHEALTHY);
		break;
	case KS_H_HEALTHY:
		if (!pass && m->fails >= unhealthy_thr)
			hsm_move(m, KS_H_UNHEALTHY);
		break;
	case KS_H_UNHEALTHY:
		if (pass && m->passes >= healthy_thr)
			hsm_move(m, KS_H_HEALTHY);
		break;
	}
	return m->state != old;
}

/* A path goes verbatim into the request line: no blanks, no controls, no fragment. */
static int check_path(const char *path, char *err, size_t errlen)
{
	const unsigned char *c;

	if (!path || path[0] != '/') {
		ks_set_err(err, errlen, "healthCheck.path \"%s\" must start with '/'",
			   path ? path : "");
		return -EINVAL;
	}
	if (strlen(path) >= KS_PROBE_PATH_MAX) {
		ks_set_err(err, errlen, "healthCheck.path is longer than %d bytes",
			   KS_PROBE_PATH_MAX - 1);
		return -EINVAL;
	}
	for (c = (const unsigned char *)path; *c; c++) {
		if (*c <= 0x20 || *c >= 0x7f || *c == '#') {
			ks_set_err(err, errlen, "healthCheck.path \"%s\": character 0x%02x not allowed",
				   path, *c);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_range(const char *what, uint32_t v, uint32_t lo, uint32_t hi, char *err,
		       size_t errlen)
{
	if (v >= lo && v <= hi)
		return 0;
	ks_set_err(err, errlen, "healthCheck.%s %u outside %u..%u", what, v, lo, hi);
	return -EINVAL;
}

int ks_probe_spec_from_health(const struct ksm_health *h, bool l4_only,
			      struct ks_probe_spec *out, char *err, size_t errlen)
{
	struct ks_probe_spec s;
	const char *proto, *ver;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	if (!h->enabled) {
		ks_set_err(err, errlen, "health check disabled");
		return -ENODATA;
	}
	ret = check_range("intervalSeconds", h->interval_s, 5, 300, err, errlen);
	if (!ret)
		ret = check_range("timeoutSeconds", h->timeout_s, 1, 120, err, errlen);
	if (!ret)
		ret = check_range("healthyThresholdCount", h->healthy_threshold, 2, 10, err, errlen);
	if (!ret)
		ret = check_range("unhealthyThresholdCount", h->unhealthy_threshold, 2, 10, err,
				  errlen);
	if (ret)
		return ret;
	s.interval_ms = h->interval_s * 1000;
	s.timeout_ms = h->timeout_s * 1000;
	s.healthy_thr = h->healthy_threshold;
	s.unhealthy_thr = h->unhealthy_threshold;
	s.port = h->port;

	proto = h->protocol ? h->protocol : "HTTP";
	ver = h->protocol_version ? h->protocol_version : "HTTP1";
	if (!strcmp(proto, "HTTP")) {
		s.kind = KS_PROBE_HTTP;
	} else if (!strcmp(proto, "HTTPS")) {
		s.kind = KS_PROBE_HTTPS;
	} else if (!strcmp(proto, "TCP")) {
		s.kind = KS_PROBE_TCP;
	} else {
		ks_set_err(err, errlen, "healthCheck.protocol \"%s\" is not HTTP or HTTPS", proto);
		return -EINVAL;
	}
	if (!strcmp(ver, "HTTP2")) {
		s.http2 = true;
	} else if (strcmp(ver, "HTTP1")) {
		ks_set_err(err, errlen, "healthCheck.protocolVersion \"%s\" is not HTTP1 or HTTP2",
			   ver);
		return -EINVAL;
	}
	/* Validate the HTTP fields even for TCP checks: the manifest is wrong either way. */
	ret = check_path(h->path ? h->path : "/", err, errlen);
	if (ret)
		return ret;
	/* -E2BIG (too many items) is one more way of being invalid here. */
	if (ks_codes_parse(h->status_match ? h->status_match : "200", &s.match, err, errlen))
		return -EINVAL;
	if (l4_only)
		s.kind = KS_PROBE_TCP;
	if (s.kind == KS_PROBE_TCP) {
		/* Zeroed so that a TCP spec compares equal whatever the HTTP fields said. */
		s.http2 = false;
		memset(&s.match, 0, sizeof(s.match));
	} else {
		strcpy(s.path, h->path ? h->path : "/");
	}
	*out = s;
	return 0;
}

int ks_probe_spec_check(const struct ks_probe_spec *s, char *err, size_t errlen)
{
	if (s->kind != KS_PROBE_HTTP && s->kind != KS_PROBE_HTTPS && s->kind != KS_PROBE_TCP) {
		ks_set_err(err, errlen, "unknown probe kind %d", (int)s->kind);
		return -EINVAL;
	}
	if (!s->interval_ms || !s->timeout_ms || !s->healthy_thr || !s->unhealthy_thr) {
		ks_set_err(err, errlen, "interval, timeout and thresholds must be > 0");
		return -EINVAL;
	}
	if (s->kind == KS_PROBE_TCP)
		return 0;
	if (!memchr(s->path, '\0', sizeof(s->path))) {
		ks_set_err(err, errlen, "path not terminated");
		return -EINVAL;
	}
	if (check_path(s->path, err, errlen))
		return -EINVAL;
	if (!s->match.n || s->match.n > KS_CODES_MAX) {
		ks_set_err(err, errlen, "empty statusMatch");
		return -EINVAL;
	}
	return 0;
}

bool ks_probe_spec_equal(const struct ks_probe_spec *a, const struct ks_probe_spec *b)
{
	if (a->kind != b->kind || a->http2 != b->http2 || a->tls_verify != b->tls_verify ||
	    a->port != b->port || a->interval_ms != b->interval_ms ||
	    a->timeout_ms != b->timeout_ms || a->healthy_thr != b->healthy_thr ||
	    a->unhealthy_thr != b->unhealthy_thr)
		return false;
	if (a->kind == KS_PROBE_TCP)
		return true;
	if (a->fresh_conn != b->fresh_conn || a->match.n != b->match.n ||
	    memcmp(a->match.r, b->match.r, a->match.n * sizeof(a->match.r[0])))
		return false;
	return !strcmp(a->path, b->path);
}

uint64_t ks_health_next_delay_ms(uint32_t interval_ms, uint64_t nth, uint32_t rnd)
{
	uint64_t iv = interval_ms, j;

	if (nth == 0)
		return 0;
	if (!iv)
		return 0;
	if (nth == 1)
		return iv - rnd % (iv / 2 + 1);
	j = iv / 10;
	return iv - rnd % (j + 1);
}
