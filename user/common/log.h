/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Logging: one logfmt line per event on stderr,
 *   ts=2026-11-26T06:40:00.123Z level=info msg="applied config" services=3
 * The message is quoted; extra key=value pairs are passed preformatted by the
 * caller through the format string after the message, e.g.
 *   pr_info("applied config", "services=%zu", n);
 * libbpf's own output is routed through the same sink at level debug/warn.
 */
#ifndef KSPLIT_LOG_H
#define KSPLIT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * error: the datapath does not do what it should (a hook is gone and cannot
 * be repaired, pins will vanish); warn: something is off but traffic flows.
 * Each level prints itself and every level before it.
 */
enum ks_log_level { KS_LOG_ERROR = 0, KS_LOG_WARN = 1, KS_LOG_INFO = 2, KS_LOG_DEBUG = 3 };

void ks_log_set_level(enum ks_log_level lvl);
/* JSON lines instead of logfmt: the same events and keys, one object per line. */
void ks_log_set_json(bool on);
enum ks_log_level ks_log_get_level(void);
/* msg is quoted as the msg= field; kvfmt (may be NULL) formats the rest. */
void ks_log(enum ks_log_level lvl, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * pr_*("msg") passes a NULL kvfmt; pr_*("msg", "k=%d", v) passes the
 * caller's. __VA_OPT__ picks the form, so printf checking never sees an
 * empty format string (-Wformat-zero-length) and needs no pragma.
 */
#define KS_LOG_(lvl, msg, ...) KS_LOG_MSG##__VA_OPT__(_KV)(lvl, msg __VA_OPT__(,) __VA_ARGS__)
#define KS_LOG_MSG(lvl, msg)	  ks_log(lvl, msg, NULL)
#define KS_LOG_MSG_KV(lvl, msg, ...) ks_log(lvl, msg, __VA_ARGS__)

#define pr_error(msg, ...) KS_LOG_(KS_LOG_ERROR, msg, __VA_ARGS__)
#define pr_warn(msg, ...)  KS_LOG_(KS_LOG_WARN, msg, __VA_ARGS__)
#define pr_info(msg, ...)  KS_LOG_(KS_LOG_INFO, msg, __VA_ARGS__)
#define pr_debug(msg, ...) KS_LOG_(KS_LOG_DEBUG, msg, __VA_ARGS__)

/* Route libbpf's print callback into ks_log. */
void ks_log_hook_libbpf(void);

/* Escape src as a logfmt quoted value (with the quotes) into dst. */
void ks_log_quote(char *dst, size_t len, const char *src);

#endif
