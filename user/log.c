// SPDX-License-Identifier: BSD-2-Clause
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "log.h"

static enum ks_log_level cur_level = KS_LOG_INFO;

void ks_log_set_level(enum ks_log_level lvl) { cur_level = lvl; }
enum ks_log_level ks_log_get_level(void) { return cur_level; }

static const char *const level_names[] = { "warn", "info", "debug" };

/* Quote a value for logfmt: wrap in "", escape " and \, fold newlines. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
	fputc('"', f);
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
	fprintf(f, "ts=%s.%03ldZ level=%s msg=", ts, now.tv_nsec / 1000000, level_names[lvl]);
	put_quoted(f, msg);
	if (kvfmt && *kvfmt) {
		vsnprintf(line, sizeof(line), kvfmt, ap);
		fputc(' ', f);
		fputs(line, f);
	}
	fputc('\n', f);
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
