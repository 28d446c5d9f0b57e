// SPDX-License-Identifier: BSD-2-Clause
/* ReferenceGrant: which routes may use Services of another namespace. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"

/* Also after a partial parse: what the parser drops and what km_grant_free frees. */
static void free_from(struct km_grant_from *f)
{
	free(f->group);
	free(f->kind);
	free(f->ns);
	memset(f, 0, sizeof(*f));
}

static void free_to(struct km_grant_to *t)
{
	free(t->group);
	free(t->kind);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

void km_grant_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	static const char *const spec_keys[] = { "from", "to", NULL };
	static const char *const from_keys[] = { "group", "kind", "namespace", NULL };
	static const char *const to_keys[] = { "group", "kind", "name", NULL };
	const struct ky_node *spec = doc->spec, *from, *to;
	struct km_grant *g = obj;
	size_t i, m;

	km_push(c, "spec");
	km_check_keys(c, spec, spec_keys);
	from = km_get_seq(c, spec, "from", true);
	to = km_get_seq(c, spec, "to", true);
	if (from && from->n) {
		g->from = calloc(from->n, sizeof(*g->from));
		if (!g->from)
			goto nomem;
	}
	if (to && to->n) {
		g->to = calloc(to->n, sizeof(*g->to));
		if (!g->to)
			goto nomem;
	}
	for (i = 0; from && i < from->n; i++) {
		struct km_grant_from *f = &g->from[g->n_from];
		bool ok = true;

		m = km_push(c, "from[%zu]", i);
		if (km_item_map(c, from->kids[i])) {
			km_check_keys(c, from->kids[i], from_keys);
			ok &= !km_dup_group(c, from->kids[i], "group", true, NULL, &f->group);
			ok &= !km_dup_str(c, from->kids[i], "kind", true, NULL, &f->kind);
			ok &= !km_dup_str(c, from->kids[i], "namespace", true, NULL, &f->ns);
			if (ok && f->group && f->kind && f->ns)
				g->n_from++;
			else
				free_from(f);
		}
		km_pop(c, m);
	}
	for (i = 0; to && i < to->n; i++) {
		struct km_grant_to *t = &g->to[g->n_to];
		bool ok = true;

		m = km_push(c, "to[%zu]", i);
		if (km_item_map(c, to->kids[i])) {
			km_check_keys(c, to->kids[i], to_keys);
			ok &= !km_get_str(c, to->kids[i], "group", true, &(const char *){ NULL });
			ok &= !km_dup_group(c, to->kids[i], "group", false, "", &t->group);
			ok &= !km_dup_str(c, to->kids[i], "kind", true, NULL, &t->kind);
			ok &= !km_get_str(c, to->kids[i], "name", false, &(const char *){ NULL });
			if (km_field(to->kids[i], "name"))
				t->name = km_strdup(c, km_field(to->kids[i], "name")->str);
			if (ok && t->group && t->kind)
				g->n_to++;
			else
				free_to(t);
		}
		km_pop(c, m);
	}
	return;
nomem:
	c->err = -ENOMEM;
}

void km_grant_free(void *obj)
{
	struct km_grant *g = obj;
	size_t i;

	for (i = 0; i < g->n_from; i++)
		free_from(&g->from[i]);
	for (i = 0; i < g->n_to; i++)
		free_to(&g->to[i]);
	free(g->from);
	free(g->to);
}
