// SPDX-License-Identifier: BSD-2-Clause
/* The per-object checking context and the typed field readers (reader.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/reader.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

unsigned km_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	unsigned row[65], prev, tmp;

	/* Field names are short; anything long is not a typo of one. */
	if (la > 64 || lb > 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = prev + cost;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/*
 * Paths without vsnprintf: the walk over every field of 150,000 objects
 * pushes each one.
 */
static size_t push_str(struct km_ctx *c, const char *s, size_t len, bool dot)
{
	size_t mark = c->plen, room;

	if (c->plen >= sizeof(c->path) - 1)
		return mark;
	if (c->plen && dot)
		c->path[c->plen++] = '.';
	room = sizeof(c->path) - 1 - c->plen;
	if (len > room)
		len = room;
	memcpy(c->path + c->plen, s, len);
	c->plen += len;
	c->path[c->plen] = '\0';
	return mark;
}

static size_t push_key(struct km_ctx *c, const char *key)
{
	return push_str(c, key, strlen(key), true);
}

static size_t push_idx(struct km_ctx *c, size_t i)
{
	char b[24], *p = b + sizeof(b);

	*--p = ']';
	do
		*--p = (char)('0' + i % 10);
	while ((i /= 10));
	*--p = '[';
	return push_str(c, p, (size_t)(b + sizeof(b) - p), false);
}

size_t km_push(struct km_ctx *c, const char *fmt, ...)
{
	const char *pct = strchr(fmt, '%');
	size_t mark = c->plen;
	va_list ap;
	int n;

	/* The forms nearly every push has: "name", "%s", "name[%zu]". */
	if (!pct)
		return push_str(c, fmt, strlen(fmt), fmt[0] != '[');
	if (!strcmp(fmt, "%s") || (pct > fmt && pct[-1] == '[' && !strcmp(pct, "%zu]"))) {
		va_start(ap, fmt);
		if (pct[1] == 's') {
			mark = push_key(c, va_arg(ap, const char *));
		} else {
			mark = push_str(c, fmt, (size_t)(pct - 1 - fmt), fmt[0] != '[');
			push_idx(c, va_arg(ap, size_t));
		}
		va_end(ap);
		return mark;
	}
	if (c->plen >= sizeof(c->path) - 1)
		return mark;
	if (c->plen && fmt[0] != '[')
		c->path[c->plen++] = '.';
	va_start(ap, fmt);
	n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->plen += (size_t)n;
	if (c->plen >= sizeof(c->path))
		c->plen = sizeof(c->path) - 1;
	c->path[c->plen] = '\0';
	return mark;
}

void km_pop(struct km_ctx *c, size_t mark)
{
	c->plen = mark;
	c->path[mark] = '\0';
}

static void vreport(struct km_ctx *c, bool warning, unsigned line, unsigned col,
		    const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0) {
		c->err = -ENOMEM;
		return;
	}
	if (ks_diag_obj(c->d, warning, c->file, line, col, c->kind, c->ns, c->name,
			c->path, "%s", msg))
		c->err = -ENOMEM;
	if (!warning) {
		c->bad = true;
		/* The object's first error is its verdict's text: "field.path: message". */
		if (!c->first_err && asprintf(&c->first_err, "%s%s%s", c->path, *c->path ? ": " : "",
					      msg) < 0) {
			c->first_err = NULL;
			c->err = -ENOMEM;
		}
	}
	free(msg);
}

/* An error or warning about a sub-field key of a map: the path gets ".key". */
static void vreport_field(struct km_ctx *c, bool warning, const struct ky_node *at,
			  const char *key, const char *fmt, va_list ap)
{
	size_t m = push_key(c, key);

	vreport(c, warning, at ? at->line : 1, at ? at->col : 1, fmt, ap);
	km_pop(c, m);
}

void km_err(struct km_ctx *c, const struct ky_node *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, false, at ? at->line : 1, at ? at->col : 1, fmt, ap);
	va_end(ap);
}

void km_warn(struct km_ctx *c, const struct ky_node *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, true, at ? at->line : 1, at ? at->col : 1, fmt, ap);
	va_end(ap);
}

void km_err_field(struct km_ctx *c, const struct ky_node *at, const char *key,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_field(c, false, at, key, fmt, ap);
	va_end(ap);
}

void km_warn_field(struct km_ctx *c, const struct ky_node *at, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_field(c, true, at, key, fmt, ap);
	va_end(ap);
}

char *km_strdup(struct km_ctx *c, const char *s)
{
	char *r = strdup(s ? s : "");

	if (!r)
		c->err = -ENOMEM;
	return r;
}

void km_check_keys(struct km_ctx *c, const struct ky_node *map, const char *const *known)
{
	size_t i, j;

	for (i = 0; i < map->n; i++) {
		const struct ky_node *k = ky_map_key(map, i);
		const char *best = NULL;
		unsigned bestd = 3;
		bool found = false;

		if (k->type != KY_SCALAR)
			continue;	/* reported by check_tree */
		for (j = 0; known[j] && !found; j++)
			found = !strcmp(k->str, known[j]);
		/* Distances only for a key that is unknown: they are the costly part. */
		for (j = 0; !found && known[j]; j++) {
			unsigned dist = km_edit_distance(k->str, known[j]);

			if (dist < bestd || (dist == bestd && !best && dist <= 2)) {
				bestd = dist;
				best = known[j];
			}
		}
		if (found)
			continue;
		if (best && bestd <= 2)
			km_err_field(c, k, k->str, "unknown field '%s', did you mean '%s'?", k->str, best);
		else
			km_err_field(c, k, k->str, "unknown field '%s'", k->str);
	}
}

struct key_ref {
	const char *str;
	size_t i;
};

static int cmp_key_ref(const void *pa, const void *pb)
{
	const struct key_ref *a = pa, *b = pb;
	int c = strcmp(a->str, b->str);

	if (c)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

/*
 * first[i]: the index of the first key of map equal to key i (i itself for a
 * first occurrence and for a key that is not a string). Sorting a copy
 * makes this O(n log n): comparing each key with all earlier ones took
 * seconds at 40,000 keys and minutes at 500,000, with the agent stuck.
 */
#define FEW_KEYS 16

static size_t *first_keys(const struct ky_node *map, size_t *few)
{
	struct key_ref *refs;
	size_t *first, i, j, n = 0;

	/* Most maps are small: pairs, on the caller's stack, without a sort. */
	if (map->n <= FEW_KEYS) {
		for (i = 0; i < map->n; i++) {
			const struct ky_node *k = ky_map_key(map, i);

			few[i] = i;
			for (j = 0; k->type == KY_SCALAR && j < i; j++) {
				const struct ky_node *p = ky_map_key(map, j);

				if (p->type == KY_SCALAR && !strcmp(p->str, k->str)) {
					few[i] = few[j];
					break;
				}
			}
		}
		return few;
	}
	refs = malloc(map->n * sizeof(*refs));
	first = malloc(map->n * sizeof(*first));
	if (!refs || !first) {
		free(refs);
		free(first);
		return NULL;
	}
	for (i = 0; i < map->n; i++) {
		const struct ky_node *k = ky_map_key(map, i);

		first[i] = i;
		if (k->type == KY_SCALAR)
			refs[n++] = (struct key_ref){ k->str, i };
	}
	qsort(refs, n, sizeof(*refs), cmp_key_ref);
	/* Ties sort by index, so a run of equal keys starts with the first one. */
	for (i = 1; i < n; i++)
		if (!strcmp(refs[i].str, refs[i - 1].str))
			first[refs[i].i] = first[refs[i - 1].i];
	free(refs);
	return first;
}

void km_check_tree(struct km_ctx *c, const struct ky_node *n)
{
	size_t i, m, *first, few[FEW_KEYS];

	if (n->type == KY_SEQ) {
		for (i = 0; i < n->n; i++) {
			m = push_idx(c, i);
			km_check_tree(c, n->kids[i]);
			km_pop(c, m);
		}
		return;
	}
	if (n->type != KY_MAP || !n->n)
		return;
	first = first_keys(n, few);
	if (!first) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < n->n; i++) {
		const struct ky_node *k = ky_map_key(n, i);

		if (k->type != KY_SCALAR) {
			km_err(c, k, "mapping keys must be strings, got %s", ky_type_name(k));
			continue;
		}
		if (first[i] != i) {
			const struct ky_node *p = ky_map_key(n, first[i]);

			km_err_field(c, k, k->str, "duplicate key '%s' (first at %u:%u)",
				     k->str, p->line, p->col);
		}
		m = push_key(c, k->str);
		km_check_tree(c, ky_map_val(n, i));
		km_pop(c, m);
	}
	if (first != few)
		free(first);
}

void km_field_pos(const struct ky_node *map, const char *key, const struct km_pos *def,
		  struct km_pos *out)
{
	const struct ky_node *v = km_field(map, key);

	if (v) {
		out->line = v->line;
		out->col = v->col;
	} else {
		*out = *def;
	}
}

const struct ky_node *km_field(const struct ky_node *map, const char *key)
{
	const struct ky_node *v = ky_map_get(map, key);

	return ky_is_null(v) ? NULL : v;
}

int km_get_str(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       const char **out)
{
	const struct ky_node *v = km_field(map, key);

	if (!v) {
		if (required) {
			km_err_field(c, map, key, "missing required field");
			return -EINVAL;
		}
		return 0;
	}
	if (v->type != KY_SCALAR) {
		km_err_field(c, v, key, "expected a string, got %s", ky_type_name(v));
		return -EINVAL;
	}
	*out = v->str;
	return 0;
}

int km_dup_str(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       const char *def, char **out)
{
	const char *s = def;
	int err = km_get_str(c, map, key, required, &s);

	*out = s ? km_strdup(c, s) : NULL;
	return err;
}

int km_dup_group(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		 const char *def, char **out)
{
	int err = km_dup_str(c, map, key, required, def, out);

	if (*out && !strcmp(*out, "core"))
		**out = '\0';
	return err;
}

int km_parse_int(const struct ky_node *v, long long *out)
{
	const char *s = v->str;
	char *end;

	if (v->type != KY_SCALAR || v->quoted || !*s)
		return -EINVAL;
	if (*s == '+' || *s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoll(v->str, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int km_get_int(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       long long lo, long long hi, long long *out, bool *present)
{
	const struct ky_node *v = km_field(map, key);
	long long x;

	if (present)
		*present = false;
	if (!v) {
		if (required) {
			km_err_field(c, map, key, "missing required field");
			return -EINVAL;
		}
		return 0;
	}
	if (km_parse_int(v, &x)) {
		if (v->type != KY_SCALAR)
			km_err_field(c, v, key, "expected an integer, got %s", ky_type_name(v));
		else if (v->quoted)
			km_err_field(c, v, key, "expected an integer, got the string \"%s\"", v->str);
		else
			km_err_field(c, v, key, "expected an integer, got '%s'", v->str);
		return -EINVAL;
	}
	if (x < lo || x > hi) {
		km_err_field(c, v, key, "%lld is out of range %lld..%lld", x, lo, hi);
		return -EINVAL;
	}
	*out = x;
	if (present)
		*present = true;
	return 0;
}

int km_get_port(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		uint16_t *out, bool *present)
{
	long long x = 0;
	int err = km_get_int(c, map, key, required, 1, 65535, &x, present);

	if (!err && x)
		*out = (uint16_t)x;
	return err;
}

int km_get_bool(struct km_ctx *c, const struct ky_node *map, const char *key, bool *out,
		bool *present)
{
	const struct ky_node *v = km_field(map, key);

	if (present)
		*present = false;
	if (!v)
		return 0;
	if (v->type == KY_SCALAR && !v->quoted) {
		if (!strcmp(v->str, "true") || !strcmp(v->str, "True") || !strcmp(v->str, "TRUE")) {
			*out = true;
			goto ok;
		}
		if (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
		    !strcmp(v->str, "FALSE")) {
			*out = false;
			goto ok;
		}
	}
	if (v->type == KY_SCALAR)
		km_err_field(c, v, key, "expected true or false, got '%s'", v->str);
	else
		km_err_field(c, v, key, "expected true or false, got %s", ky_type_name(v));
	return -EINVAL;
ok:
	if (present)
		*present = true;
	return 0;
}

int km_get_enum(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		const char *const *allowed, int *idx)
{
	const char *s = NULL;
	char list[256] = "";
	size_t used = 0;
	int i, err;

	err = km_get_str(c, map, key, required, &s);
	if (err || !s)
		return err;
	for (i = 0; allowed[i]; i++) {
		if (!strcmp(s, allowed[i])) {
			*idx = i;
			return 0;
		}
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 allowed[i]);
		if (used >= sizeof(list))
			used = sizeof(list) - 1;
	}
	km_err_field(c, ky_map_get(map, key), key, "'%s' is not one of %s", s, list);
	return -EINVAL;
}

int km_get_l4proto(struct km_ctx *c, const struct ky_node *map, const char *key,
		   uint8_t *proto)
{
	static const char *const names[] = { "TCP", "UDP", "SCTP", NULL };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	int idx = 0;
	int err = km_get_enum(c, map, key, false, names, &idx);

	*proto = protos[idx];
	return err;
}

const struct ky_node *km_get_coll(struct km_ctx *c, const struct ky_node *map, const char *key,
				  enum ky_type t, bool required)
{
	const struct ky_node *v = km_field(map, key);

	if (!v) {
		if (required)
			km_err_field(c, map, key, "missing required field");
		return NULL;
	}
	if (v->type != t) {
		km_err_field(c, v, key, "expected %s, got %s", t == KY_MAP ? "a mapping" : "a list",
			     ky_type_name(v));
		return NULL;
	}
	return v;
}

bool km_item_map(struct km_ctx *c, const struct ky_node *v)
{
	if (v->type == KY_MAP)
		return true;
	km_err(c, v, "expected a mapping, got %s", ky_type_name(v));
	return false;
}

void km_check_str_map(struct km_ctx *c, const struct ky_node *parent, const char *key)
{
	const struct ky_node *m = km_get_map(c, parent, key, false);
	size_t i, mk;

	if (!m)
		return;
	mk = km_push(c, "%s", key);
	for (i = 0; i < m->n; i++) {
		const struct ky_node *v = ky_map_val(m, i);

		if (v->type != KY_SCALAR && ky_map_key(m, i)->type == KY_SCALAR)
			km_err_field(c, v, ky_map_key(m, i)->str, "expected a string, got %s",
				     ky_type_name(v));
	}
	km_pop(c, mk);
}

void km_check_str_list(struct km_ctx *c, const struct ky_node *parent, const char *key)
{
	const struct ky_node *s = km_get_seq(c, parent, key, false);
	size_t i, m;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		if (s->kids[i]->type == KY_SCALAR)
			continue;
		m = km_push(c, "%s[%zu]", key, i);
		km_err(c, s->kids[i], "expected a string, got %s", ky_type_name(s->kids[i]));
		km_pop(c, m);
	}
}

/* Indexed by enum km_sel_op. */
const char *const km_sel_op_names[] = { "In", "NotIn", "Exists", "DoesNotExist", NULL };

int km_get_labels(struct km_ctx *c, const struct ky_node *map, size_t *n, struct km_label **out)
{
	size_t i;

	*n = 0;
	*out = NULL;
	if (!map || map->type != KY_MAP || !map->n)
		return 0;
	*out = calloc(map->n, sizeof(**out));
	if (!*out)
		goto nomem;
	for (i = 0; i < map->n; i++) {
		const struct ky_node *k = ky_map_key(map, i), *v = ky_map_val(map, i);
		struct km_label *l = &(*out)[*n];

		if (k->type != KY_SCALAR || v->type != KY_SCALAR)
			continue;
		(*n)++;
		l->key = strdup(k->str);
		l->value = strdup(v->str);
		if (!l->key || !l->value)
			goto nomem;
	}
	return 0;
nomem:
	c->err = -ENOMEM;
	return -ENOMEM;
}

void km_labels_free(struct km_label *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static void free_expr(struct km_sel_expr *x)
{
	size_t i;

	free(x->key);
	for (i = 0; i < x->n_values; i++)
		free(x->values[i]);
	free(x->values);
	memset(x, 0, sizeof(*x));
}

/* One matchExpressions item into x: false when it is unusable (reported). */
static bool get_expr(struct km_ctx *c, const struct ky_node *e, struct km_sel_expr *x)
{
	static const char *const keys[] = { "key", "operator", "values", NULL };
	const struct ky_node *vals;
	bool ok = true, listed;
	int op = -1;
	size_t i;

	km_check_keys(c, e, keys);
	ok &= !km_dup_str(c, e, "key", true, NULL, &x->key);
	ok &= !km_get_enum(c, e, "operator", true, km_sel_op_names, &op);
	km_check_str_list(c, e, "values");
	vals = km_field(e, "values");
	if (vals && vals->type != KY_SEQ)
		return false;
	if (op < 0)
		return false;
	x->op = (enum km_sel_op)op;
	listed = x->op == KM_SEL_IN || x->op == KM_SEL_NOT_IN;
	if (listed && (!vals || !vals->n)) {
		km_err_field(c, vals ? vals : e, "values", "at least one value is required when "
			     "operator is %s", km_sel_op_names[op]);
		return false;
	}
	if (!listed && vals && vals->n) {
		km_err_field(c, vals, "values", "must be empty when operator is %s",
			     km_sel_op_names[op]);
		return false;
	}
	if (!vals || !vals->n)
		return ok;
	x->values = calloc(vals->n, sizeof(*x->values));
	if (!x->values)
		goto nomem;
	for (i = 0; i < vals->n; i++) {
		if (vals->kids[i]->type != KY_SCALAR)
			return false;
		x->values[x->n_values] = strdup(vals->kids[i]->str);
		if (!x->values[x->n_values])
			goto nomem;
		x->n_values++;
	}
	return ok;
nomem:
	c->err = -ENOMEM;
	return false;
}

void km_get_selector(struct km_ctx *c, const struct ky_node *map, struct km_selector *sel)
{
	static const char *const keys[] = { "matchLabels", "matchExpressions", NULL };
	const struct ky_node *exprs;
	size_t i, m;

	km_check_keys(c, map, keys);
	km_check_str_map(c, map, "matchLabels");
	if (km_get_labels(c, km_field(map, "matchLabels"), &sel->n_labels, &sel->labels))
		return;
	exprs = km_get_seq(c, map, "matchExpressions", false);
	if (!exprs || !exprs->n)
		return;
	sel->exprs = calloc(exprs->n, sizeof(*sel->exprs));
	if (!sel->exprs) {
		c->err = -ENOMEM;
		return;
	}
	for (i = 0; i < exprs->n; i++) {
		struct km_sel_expr *x = &sel->exprs[sel->n_exprs];

		m = km_push(c, "matchExpressions[%zu]", i);
		if (km_item_map(c, exprs->kids[i]) && get_expr(c, exprs->kids[i], x))
			sel->n_exprs++;
		else
			free_expr(x);
		km_pop(c, m);
	}
}

void km_selector_free(struct km_selector *sel)
{
	size_t i;

	km_labels_free(sel->labels, sel->n_labels);
	for (i = 0; i < sel->n_exprs; i++)
		free_expr(&sel->exprs[i]);
	free(sel->exprs);
	memset(sel, 0, sizeof(*sel));
}

int km_parse_addr(struct km_ctx *c, const struct ky_node *v, struct ksm_addr *a)
{
	if (ksm_addr_parse(v->str, a)) {
		km_err(c, v, "'%s' is not an IP address", v->str);
		return -EINVAL;
	}
	return 0;
}

