// SPDX-License-Identifier: BSD-2-Clause
/*
 * Namespace: its labels, which listeners' allowedRoutes.namespaces.selector
 * match. Nothing else of it matters to ksplit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/kinds.h"

/* The API server sets this label on every Namespace (and overwrites a user's value). */
#define NAME_LABEL "kubernetes.io/metadata.name"

void km_namespace_parse(struct km_ctx *c, const struct km_doc *doc, void *obj)
{
	struct km_namespace *n = obj;
	struct km_label *l;
	size_t i;

	/* metadata.labels was checked with the rest of metadata. */
	if (km_get_labels(c, km_field(doc->meta, "labels"), &n->n_labels, &n->labels))
		return;
	for (i = 0; i < n->n_labels; i++) {
		if (strcmp(n->labels[i].key, NAME_LABEL))
			continue;
		l = &n->labels[i];
		goto set;
	}
	l = realloc(n->labels, (n->n_labels + 1) * sizeof(*n->labels));
	if (!l)
		goto nomem;
	n->labels = l;
	l = &n->labels[n->n_labels++];
	l->key = strdup(NAME_LABEL);
	l->value = NULL;
	if (!l->key)
		goto nomem;
set:
	free(l->value);
	l->value = strdup(n->m.name);
	if (!l->value)
		goto nomem;
	return;
nomem:
	c->err = -ENOMEM;
}

void km_namespace_free(void *obj)
{
	struct km_namespace *n = obj;

	km_labels_free(n->labels, n->n_labels);
}
