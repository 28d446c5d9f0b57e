// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"

int ks_diag_vadd(struct ks_diags *d, bool warning, const char *fmt, va_list ap)
{
	struct ks_diag *v;
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		return -ENOMEM;
	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	if (!v) {
		free(msg);
		return -ENOMEM;
	}
	d->v = v;
	d->v[d->n].msg = msg;
	d->v[d->n].warning = warning;
	d->n++;
	if (!warning)
		d->n_errors++;
	return 0;
}

int ks_diags_move(struct ks_diags *to, struct ks_diags *from)
{
	struct ks_diag *v;

	if (!from->n)
		return 0;
	v = realloc(to->v, (to->n + from->n) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v + to->n, from->v, from->n * sizeof(*v));
	to->v = v;
	to->n += from->n;
	to->n_errors += from->n_errors;
	free(from->v);
	memset(from, 0, sizeof(*from));
	return 0;
}

int ks_diag_add(struct ks_diags *d, bool warning, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = ks_diag_vadd(d, warning, fmt, ap);
	va_end(ap);
	return err;
}

int ks_diag_vobj(struct ks_diags *d, bool warning, const char *file, unsigned line,
		 unsigned col, const char *kind, const char *ns, const char *name,
		 const char *path, const char *fmt, va_list ap)
{
	char *msg = NULL;
	int err;

	if (vasprintf(&msg, fmt, ap) < 0)
		return -ENOMEM;
	/* A cluster-scoped object (Namespace) has ns "": "Namespace team-a". */
	err = ks_diag_add(d, warning, "%s:%u:%u: %s %s%s%s: %s%s%s", file, line, col,
			  kind ? kind : "object", ns ? ns : "default", ns && !*ns ? "" : "/",
			  name ? name : "<unnamed>", path && *path ? path : "",
			  path && *path ? ": " : "", msg);
	free(msg);
	return err;
}

int ks_diag_obj(struct ks_diags *d, bool warning, const char *file, unsigned line,
		unsigned col, const char *kind, const char *ns, const char *name,
		const char *path, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = ks_diag_vobj(d, warning, file, line, col, kind, ns, name, path, fmt, ap);
	va_end(ap);
	return err;
}

void ks_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void ks_diags_free(struct ks_diags *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	d->v = NULL;
	d->n = 0;
	d->n_errors = 0;
}
