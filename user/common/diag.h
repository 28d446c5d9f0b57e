/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Diagnostics collection shared by the YAML, manifest and model layers. Every
 * message about an object has the shape
 *   file:line:col: Kind ns/name: field.path: message
 * so that editors and CI annotate the exact line.
 */
#ifndef KSPLIT_DIAG_H
#define KSPLIT_DIAG_H

#include <stdarg.h>
#include <stdbool.h>

#include <stddef.h>

/* One diagnostic, already formatted "file:line:col: Kind ns/name: field.path: message". */
struct ks_diag {
	char *msg;
	bool warning;		/* warnings (e.g. invalid backendRef) do not fail validation */
};

struct ks_diags {
	size_t n;
	size_t n_errors;
	struct ks_diag *v;
};

void ks_diags_free(struct ks_diags *d);
/* Appends from's diagnostics to to and empties from. 0, or -ENOMEM (both untouched). */
int ks_diags_move(struct ks_diags *to, struct ks_diags *from);

/* Appends a preformatted diagnostic. Returns 0 or -ENOMEM. */
int ks_diag_add(struct ks_diags *d, bool warning, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ks_diag_vadd(struct ks_diags *d, bool warning, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* "file:line:col: Kind ns/name: path: msg" (path may be NULL or ""; ns "": "Kind name"). */
int ks_diag_vobj(struct ks_diags *d, bool warning, const char *file, unsigned line,
		 unsigned col, const char *kind, const char *ns, const char *name,
		 const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 10, 0)));
int ks_diag_obj(struct ks_diags *d, bool warning, const char *file, unsigned line,
		unsigned col, const char *kind, const char *ns, const char *name,
		const char *path, const char *fmt, ...)
	__attribute__((format(printf, 10, 11)));

/* Formats into a caller's error buffer; err may be NULL or errlen 0 (no text wanted). */
void ks_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* KSPLIT_DIAG_H */
