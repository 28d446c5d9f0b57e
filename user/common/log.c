// SPDX-License-Identifier: BSD-2-Clause
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "common/log.h"

static enum ks_log_level cur_level = KS_LOG_INFO;
static bool json_lines;

void ks_log_set_json(bool on) { json_lines = on; }

void ks_log_set_level(enum ks_log_level lvl) { cur_level = lvl; }
enum ks_log_level ks_log_get_level(void) { return cur_level; }

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* A logfmt value as JSON: integers stay numbers, quoted strings are unescaped. */
static struct json_object *kv_value(const char **pp)
{
	const char *p = *pp;
	char buf[2048];
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < sizeof(buf))
				buf[n++] = *p == 'n' && p[-1] == '\\' ? '\n' : *p;
		}
		if (*p == '"')
			p++;
		buf[n] = 0;
		*pp = p;
		return json_object_new_string(buf);
	}
	while (*p && *p != ' ' && n + 1 < sizeof(buf))
		buf[n++] = *p++;
	buf[n] = 0;
	*pp = p;
	{
		char *end;
		long long v = strtoll(buf, &end, 10);

		if (n && !*end)
			return json_object_new_int64(v);
	}
	return json_object_new_string(buf);
}

static void put_json(FILE *f, const char *ts, const char *level, const char *msg, const char *kv)
{
	struct json_object *o = json_object_new_object();
	const char *p = kv;

	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level", json_object_new_string(level));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	while (p && *p) {
		char key[64];
		size_t k = 0;

		while (*p == ' ')
			p++;
		while (*p && *p != '=' && *p != ' ' && k + 1 < sizeof(key))
			key[k++] = *p++;
		key[k] = 0;
		if (*p != '=') {
			while (*p && *p != ' ')
				p++;
			continue;
		}
		p++;
		json_object_object_add(o, key, kv_value(&p));
	}
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), f);
	fputc('\n', f);
	json_object_put(o);
}

static void vlog(enum ks_log_level lvl, const char *msg, const char *kvfmt, va_list ap)
{
	char line[4096], ts[40];
	struct timespec now;
	struct tm tm;
	FILE *f;
	size_t len = 0;
	char *buf = NULL;

	if (lvl > cur_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* Build the line in memory so concurrent writers never interleave. */
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	line[0] = 0;
	if (kvfmt && *kvfmt)
		vsnprintf(line, sizeof(line), kvfmt, ap);
	if (json_lines) {
		char tsz[64];

		snprintf(tsz, sizeof(tsz), "%s.%03ldZ", ts, now.tv_nsec / 1000000);
		put_json(f, tsz, level_names[lvl], msg, line);
	} else {
		char q[1024];

		ks_log_quote(q, sizeof(q), msg);
		fprintf(f, "ts=%s.%03ldZ level=%s msg=%s", ts, now.tv_nsec / 1000000, level_names[lvl], q);
		if (line[0]) {
			fputc(' ', f);
			fputs(line, f);
		}
		fputc('\n', f);
	}
	fclose(f);
	fwrite(buf, 1, len, stderr);
	free(buf);
}

void ks_log(enum ks_log_level lvl, const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	vlog(lvl, msg, kvfmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum ks_log_level lvl = level == LIBBPF_WARN ? KS_LOG_WARN : KS_LOG_DEBUG;
	char text[2048];
	size_t n;

	if (lvl > cur_level)
		return 0;
	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	{
		char q[2200];

		ks_log_quote(q, sizeof(q), text);
		ks_log(lvl, "libbpf", "detail=%s", q);
	}
	return 0;
}

void ks_log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}

void ks_log_quote(char *dst, size_t len, const char *src)
{
	size_t o = 0;

	if (len < 3) {
		if (len)
			dst[0] = '\0';
		return;
	}
	dst[o++] = '"';
	for (; *src && o + 3 < len; src++) {
		if (*src == '"' || *src == '\\') {
			dst[o++] = '\\';
			dst[o++] = *src;
		} else if (*src == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
		} else {
			dst[o++] = *src;
		}
	}
	dst[o++] = '"';
	dst[o] = '\0';
}
