// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/diag.h"
#include "config/yaml.h"

void ky_node_free(struct ky_node *n)
{
	size_t i;

	if (!n)
		return;
	/* Depth is capped at KY_MAX_DEPTH, so recursion is bounded. */
	for (i = 0; i < n->nkids; i++)
		ky_node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

void ky_stream_free(struct ky_stream *s)
{
	size_t i;

	if (!s)
		return;
	/* An arena's nodes are freed with it, not one by one. */
	for (i = 0; i < s->n && !s->arena; i++)
		ky_node_free(s->docs[i].root);
	ky_arena_free(s->arena);
	s->arena = NULL;
	free(s->docs);
	s->docs = NULL;
	s->n = 0;
}

bool ky_is_null(const struct ky_node *n)
{
	if (!n)
		return true;
	if (n->type != KY_SCALAR || n->quoted)
		return false;
	return !strcmp(n->str, "") || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
	       !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

struct ky_node *ky_map_get(const struct ky_node *map, const char *key)
{
	size_t i;

	if (!map || map->type != KY_MAP)
		return NULL;
	for (i = 0; i < map->n; i++) {
		const struct ky_node *k = ky_map_key(map, i);

		if (k->type == KY_SCALAR && !strcmp(k->str, key))
			return ky_map_val(map, i);
	}
	return NULL;
}

const char *ky_type_name(const struct ky_node *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case KY_MAP:
		return "a mapping";
	case KY_SEQ:
		return "a list";
	default:
		return ky_is_null(n) ? "null" : "a scalar";
	}
}

/* Appends child to parent (a map's kids alternate key, value). */
static int add_kid(struct ky_node *parent, struct ky_node *kid, bool *pending_key)
{
	size_t used = parent->type == KY_MAP ? 2 * parent->n + (*pending_key ? 1 : 0) : parent->n;

	if (used == parent->cap) {
		size_t cap = parent->cap ? 2 * parent->cap : 4;
		struct ky_node **k = realloc(parent->kids, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[used] = kid;
	parent->nkids = used + 1;
	if (parent->type == KY_MAP) {
		if (*pending_key)
			parent->n++;
		*pending_key = !*pending_key;
	} else {
		parent->n++;
	}
	return 0;
}

struct builder {
	const char *name;
	struct ks_diags *d;
	struct ky_stream *out;
	struct ky_node *stack[KY_MAX_DEPTH + 1];
	bool pending[KY_MAX_DEPTH + 1];	/* map at this level has a key waiting for its value */
	int depth;
	struct ky_node *root;
	size_t nodes;
};

static struct ky_node *new_node(struct builder *b, enum ky_type t, const yaml_mark_t *m)
{
	struct ky_node *n;

	if (++b->nodes > KY_MAX_NODES)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = t;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

/* Hooks a fresh node under the innermost open collection (or as the root). */
static int attach(struct builder *b, struct ky_node *n)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	return add_kid(b->stack[b->depth - 1], n, &b->pending[b->depth - 1]);
}

static void discard_open(struct builder *b)
{
	/* Everything open hangs under root (or is root), so freeing root frees all. */
	ky_node_free(b->root);
	b->root = NULL;
	b->depth = 0;
}

static int finish_doc(struct builder *b, const yaml_mark_t *m)
{
	struct ky_doc *docs = realloc(b->out->docs, (b->out->n + 1) * sizeof(*docs));

	if (!docs)
		return -ENOMEM;
	b->out->docs = docs;
	/* libyaml reports an empty document as one empty plain scalar. */
	if (ky_is_null(b->root)) {
		ky_node_free(b->root);
		b->root = NULL;
	}
	docs[b->out->n].root = b->root;
	docs[b->out->n].line = (unsigned)m->line + 1;
	docs[b->out->n].col = (unsigned)m->column + 1;
	b->out->n++;
	b->root = NULL;
	return 0;
}

static int on_event(struct builder *b, yaml_event_t *ev, yaml_mark_t *doc_mark)
{
	const yaml_mark_t *m = &ev->start_mark;
	struct ky_node *n;
	int err;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		*doc_mark = *m;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		return finish_doc(b, doc_mark);
	case YAML_ALIAS_EVENT:
		ks_diag_add(b->d, false,
			    "%s:%u:%u: yaml: aliases (*%s) are not supported: ksplit refuses them "
			    "rather than expand them (alias bombs); write the value out",
			    b->name, (unsigned)m->line + 1, (unsigned)m->column + 1,
			    (const char *)ev->data.alias.anchor);
		return -EINVAL;
	case YAML_SCALAR_EVENT:
		n = new_node(b, KY_SCALAR, m);
		if (!n)
			goto nomem;
		if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
			free(n);
			ks_diag_add(b->d, false, "%s:%u:%u: yaml: NUL character in a scalar",
				    b->name, (unsigned)m->line + 1, (unsigned)m->column + 1);
			return -EINVAL;
		}
		n->str = strdup((const char *)ev->data.scalar.value);
		if (!n->str) {
			free(n);
			goto nomem;
		}
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
			    (ev->data.scalar.tag &&
			     !strcmp((const char *)ev->data.scalar.tag, YAML_STR_TAG));
		err = attach(b, n);
		if (err) {
			ky_node_free(n);
			return err;
		}
		return 0;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (b->depth >= KY_MAX_DEPTH) {
			ks_diag_add(b->d, false, "%s:%u:%u: yaml: nesting deeper than %d levels",
				    b->name, (unsigned)m->line + 1, (unsigned)m->column + 1,
				    KY_MAX_DEPTH);
			return -EINVAL;
		}
		n = new_node(b, ev->type == YAML_MAPPING_START_EVENT ? KY_MAP : KY_SEQ, m);
		if (!n)
			goto nomem;
		err = attach(b, n);
		if (err) {
			ky_node_free(n);
			return err;
		}
		b->stack[b->depth] = n;
		b->pending[b->depth] = false;
		b->depth++;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	default:
		return 0;
	}
nomem:
	if (b->nodes > KY_MAX_NODES) {
		ks_diag_add(b->d, false, "%s:%u:%u: yaml: more than %d nodes in one file",
			    b->name, (unsigned)m->line + 1, (unsigned)m->column + 1, KY_MAX_NODES);
		return -EINVAL;
	}
	return -ENOMEM;
}

int ky_parse(const char *name, const char *buf, size_t len, struct ky_stream *out,
	     struct ks_diags *d)
{
	struct builder b = { .name = name, .d = d, .out = out };
	yaml_mark_t doc_mark = { 0 };
	yaml_parser_t p;
	yaml_event_t ev;
	bool done = false;
	int err = 0;

	if (len > KY_MAX_BYTES) {
		ks_diag_add(d, false, "%s: file is larger than %u bytes", name, KY_MAX_BYTES);
		return -EINVAL;
	}
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				err = -ENOMEM;
				goto out;
			}
			ks_diag_add(d, false, "%s:%u:%u: yaml: %s%s%s", name,
				    (unsigned)p.problem_mark.line + 1,
				    (unsigned)p.problem_mark.column + 1,
				    p.problem ? p.problem : "syntax error",
				    p.context ? " " : "", p.context ? p.context : "");
			err = -EINVAL;
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		err = on_event(&b, &ev, &doc_mark);
		yaml_event_delete(&ev);
		if (err)
			goto out;
	}
out:
	discard_open(&b);
	yaml_parser_delete(&p);
	return err;
}
