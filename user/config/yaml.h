/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A small YAML node tree built from libyaml events. It keeps 1-based
 * line:col marks so that every later diagnostic points at the source. Aliases
 * are refused outright (no expansion, so no "billion laughs"), nesting depth
 * and input size are capped.
 */
#ifndef KSPLIT_YAML_TREE_H
#define KSPLIT_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/diag.h"

#define KY_MAX_DEPTH	64
#define KY_MAX_BYTES	(16u << 20)	/* per file */
#define KY_MAX_NODES	1000000		/* per file */

enum ky_type { KY_SCALAR, KY_SEQ, KY_MAP };

struct ky_node {
	enum ky_type type;
	unsigned line, col;
	bool quoted;		/* scalar written quoted/block or tagged !!str: always a string */
	char *str;		/* scalar value, NUL-terminated (embedded NULs are refused) */
	size_t n;		/* seq: items; map: pairs */
	size_t nkids;		/* pointers used in kids (a map's dangling key included) */
	size_t cap;
	struct ky_node **kids;	/* seq: item i = kids[i]; map: key i = kids[2i], value = kids[2i+1] */
};

struct ky_doc {
	struct ky_node *root;	/* NULL for an empty document */
	unsigned line, col;
};

struct ky_arena;

struct ky_stream {
	size_t n;
	struct ky_doc *docs;
	/* ky_parse_json's fast path: every node and string in a few blocks, freed at once. */
	struct ky_arena *arena;
};

/*
 * Parses every document of buf. Syntax errors, aliases, too deep nesting are
 * reported in d as "name:line:col: ..." and parsing of this buffer stops;
 * documents completed before the error are kept. Returns 0, -EINVAL when an
 * error was reported, or -ENOMEM.
 */
int ky_parse(const char *name, const char *buf, size_t len, struct ky_stream *out,
	     struct ks_diags *d);
/*
 * The same tree from a JSON text (json.c): one document, every node at 1:1,
 * strings quoted and other scalars plain, as libyaml reads the same text.
 * Errors as ky_parse's ("name:1:col: json: ..."). A plain text (ASCII, no
 * \u escape, integers only, no key twice in an object) is read by json.c's
 * own reader into an arena; any other through json-c, which also words
 * every error.
 */
int ky_parse_json(const char *name, const char *buf, size_t len, struct ky_stream *out,
		  struct ks_diags *d);
void ky_stream_free(struct ky_stream *s);
/* For tests: ky_parse_json without the fast path (json-c only). */
int ky_parse_json_c(const char *name, const char *buf, size_t len, struct ky_stream *out,
		    struct ks_diags *d);
/* Frees an arena's blocks (ky_stream_free does). */
void ky_arena_free(struct ky_arena *a);
void ky_node_free(struct ky_node *n);

/* A plain null scalar (null, ~, Null, NULL or empty). */
bool ky_is_null(const struct ky_node *n);
/* Value of the first key equal to key in a map, or NULL. */
struct ky_node *ky_map_get(const struct ky_node *map, const char *key);
static inline struct ky_node *ky_map_key(const struct ky_node *m, size_t i) { return m->kids[2 * i]; }
static inline struct ky_node *ky_map_val(const struct ky_node *m, size_t i) { return m->kids[2 * i + 1]; }
const char *ky_type_name(const struct ky_node *n);

#endif /* KSPLIT_YAML_TREE_H */
