// SPDX-License-Identifier: BSD-2-Clause
/* Replies, metav1.Status errors, timestamps, uids, selectors and query arguments. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "apiserver.h"

enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code, json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	struct MHD_Response *rsp = MHD_create_response_from_buffer(len, (void *)s,
								   MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	json_object_put(o);
	if (!rsp)
		return MHD_NO;
	MHD_add_response_header(rsp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, code, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

/* Takes sb's buffer. */
enum MHD_Result reply_sb(struct MHD_Connection *c, unsigned code, struct sbuf *sb)
{
	struct MHD_Response *rsp = MHD_create_response_from_buffer(sb->len, sb->s ? sb->s : "",
								   sb->s ? MHD_RESPMEM_MUST_FREE :
									   MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!rsp) {
		free(sb->s);
		return MHD_NO;
	}
	MHD_add_response_header(rsp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, code, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

enum MHD_Result reply_typed(struct MHD_Connection *c, unsigned code, const struct resdef *r,
			    const struct blob *b)
{
	struct sbuf sb = { 0 };

	sb_typed(&sb, r, b);
	return reply_sb(c, code, &sb);
}

json_object *status_obj(unsigned code, const char *reason, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("Status"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(o, "metadata", json_object_new_object());
	json_object_object_add(o, "status", json_object_new_string(code < 300 ? "Success" : "Failure"));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "code", json_object_new_int(code));
	return o;
}

enum MHD_Result reply_status(struct MHD_Connection *c, unsigned code, const char *reason,
			     const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_json(c, code, status_obj(code, reason, msg));
}

void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A random (version 4) UUID, as the real server gives every object. */
void new_uid(char *buf, size_t len)
{
	unsigned char b[16] = { 0 };

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = rand();
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* One "k=v", "k==v", "k!=v" or "k" (label exists) requirement against get(k). */
static bool req_match(const char *req, size_t n, json_object *o, bool fields)
{
	char buf[512], *op, *val;
	const char *have;
	bool neg = false;

	if (!n)
		return true;
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, req, n);
	buf[n] = 0;
	if ((op = strstr(buf, "!="))) {
		neg = true;
		val = op + 2;
	} else if ((op = strchr(buf, '='))) {
		val = op + 1 + (op[1] == '=');
	} else {
		val = NULL;
	}
	if (op)
		*op = 0;
	if (fields) {
		have = obj_str(o, buf);
	} else {
		json_object *labels = NULL, *v = NULL;

		json_object_object_get_ex(json_object_object_get(o, "metadata"), "labels", &labels);
		have = labels && json_object_object_get_ex(labels, buf, &v) ?
			       json_object_get_string(v) : NULL;
	}
	if (!val)
		return have != NULL;
	return neg ? !have || strcmp(have, val) : have && !strcmp(have, val);
}

static bool sel_match(json_object *o, const char *sel, bool fields)
{
	while (sel && *sel) {
		size_t n = strcspn(sel, ",");

		if (!req_match(sel, n, o, fields))
			return false;
		sel += n + (sel[n] == ',');
	}
	return true;
}

/* labelSelector and fieldSelector (metadata.name, metadata.namespace and any string path). */
bool selector_match(json_object *o, const char *ns, const char *labels, const char *fields)
{
	const char *ons = obj_str(o, "metadata.namespace");

	if (ns && (!ons || strcmp(ns, ons)))
		return false;
	return sel_match(o, labels, false) && sel_match(o, fields, true);
}

char *hex_encode(const char *s)
{
	size_t n = strlen(s);
	char *h = malloc(2 * n + 1);

	for (size_t i = 0; h && i < n; i++)
		sprintf(h + 2 * i, "%02x", (unsigned char)s[i]);
	if (h)
		h[2 * n] = 0;
	return h;
}

/* NULL when s is not an even run of hex digits. */
char *hex_decode(const char *s)
{
	size_t n = strlen(s);
	char *d;

	if (n % 2 || strspn(s, "0123456789abcdef") != n || !(d = malloc(n / 2 + 1)))
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		d[i] = v;
	}
	d[n / 2] = 0;
	if (strlen(d) != n / 2) {
		free(d);
		return NULL;
	}
	return d;
}

const char *qarg(struct MHD_Connection *c, const char *key)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

bool qbool(struct MHD_Connection *c, const char *key)
{
	const char *v = qarg(c, key);

	return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}
