// SPDX-License-Identifier: BSD-2-Clause
/*
 * Objects from the API server are JSON texts (kube/: the reflector keeps the
 * fields ksplit reads of each object as JSON). JSON is YAML, and ky_parse
 * reads it, but libyaml was half of the load of 150,000 objects; json-c
 * reads the same text several times faster, and this file builds from it the
 * tree ky_parse would, so that every kind's parser stays as it is. An API
 * object has no line:col worth showing (a diagnostic names the object and
 * the field path), so every node is at 1:1.
 *
 * The tokener is strict (no comments, trailing commas or leading zeros;
 * true, false and null in lower case) and checks UTF-8, as libyaml does. What json-c cannot tell apart: a key given twice keeps its
 * last value (libyaml keeps both, and the first is read), and a key with a
 * NUL in it is cut there. The reflector writes these texts from json-c
 * objects, which hold neither.
 *
 * json-c and the conversion still cost one allocation per value twice over
 * (json-c's objects, then the nodes), most of the load of 150,000 objects.
 * So the texts the reflector writes (ASCII, integers, the plain escapes)
 * are read here by a reader of our own straight into nodes in an arena, a
 * few blocks freed at once; it gives up on anything else (a \u escape, a
 * byte outside printable ASCII, a fraction, a key twice, any error), and
 * json-c reads that text as before, so what is refused and how its error
 * is worded stay json-c's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "common/diag.h"
#include "config/yaml.h"

struct conv {
	const char *name;
	struct ks_diags *d;
	size_t nodes;
};

static struct ky_node *node(struct conv *c, enum ky_type t, size_t nkids)
{
	struct ky_node *n;

	if (++c->nodes > KY_MAX_NODES)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = t;
	n->line = n->col = 1;
	if (nkids && !(n->kids = calloc(nkids, sizeof(*n->kids)))) {
		free(n);
		return NULL;
	}
	n->cap = nkids;
	return n;
}

/* A scalar as libyaml gives it for the same JSON: strings quoted, the rest plain text. */
static struct ky_node *scalar(struct conv *c, const char *s, size_t len, bool quoted)
{
	struct ky_node *n = node(c, KY_SCALAR, 0);

	if (!n)
		return NULL;
	n->quoted = quoted;
	n->str = strndup(s, len);
	if (!n->str) {
		free(n);
		return NULL;
	}
	return n;
}

/* 0, -EINVAL (reported: an embedded NUL, too many nodes) or -ENOMEM. */
static int conv(struct conv *c, struct json_object *o, struct ky_node **out)
{
	struct ky_node *n = NULL;
	const char *s;
	size_t i, len;
	int err = 0;

	*out = NULL;
	switch (json_object_get_type(o)) {
	case json_type_object:
		n = node(c, KY_MAP, 2 * (size_t)json_object_object_length(o));
		if (!n)
			break;
		json_object_object_foreach(o, key, val) {
			struct ky_node *k = scalar(c, key, strlen(key), true), *v = NULL;

			if (!k)
				goto nomem;
			n->kids[n->nkids++] = k;
			err = conv(c, val, &v);
			if (err)
				goto fail;
			n->kids[n->nkids++] = v;
			n->n++;
		}
		break;
	case json_type_array:
		len = json_object_array_length(o);
		n = node(c, KY_SEQ, len);
		if (!n)
			break;
		for (i = 0; i < len; i++) {
			err = conv(c, json_object_array_get_idx(o, i), &n->kids[i]);
			if (err)
				goto fail;
			n->nkids = n->n = i + 1;
		}
		break;
	case json_type_string:
		s = json_object_get_string(o);
		len = (size_t)json_object_get_string_len(o);
		if (memchr(s, 0, len)) {
			ks_diag_add(c->d, false, "%s: json: a string holds a NUL character", c->name);
			return -EINVAL;
		}
		n = scalar(c, s, len, true);
		break;
	default:
		/* null, booleans and numbers as written: "80", "true", "null", "1.5". */
		s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "null";
		n = scalar(c, s, strlen(s), false);
		break;
	}
	if (!n)
		goto nomem;
	*out = n;
	return 0;
nomem:
	if (c->nodes > KY_MAX_NODES) {
		ks_diag_add(c->d, false, "%s: json: more than %u nodes", c->name, KY_MAX_NODES);
		err = -EINVAL;
	} else {
		err = -ENOMEM;
	}
fail:
	ky_node_free(n);
	return err;
}

int ky_parse_json_c(const char *name, const char *buf, size_t len, struct ky_stream *out,
		    struct ks_diags *d)
{
	struct conv c = { .name = name, .d = d };
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;
	int err = 0;

	if (len > KY_MAX_BYTES) {
		ks_diag_add(d, false, "%s: file is larger than %u bytes", name, KY_MAX_BYTES);
		return -EINVAL;
	}
	/* The same nesting cap as the YAML tree's; json-c counts the outermost level too. */
	tok = json_tokener_new_ex(KY_MAX_DEPTH + 1);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* memchr, not strchr: a NUL after the value is not white space. */
	while (end < len && memchr(" \t\r\n", buf[end], 4))
		end++;
	if (json_tokener_get_error(tok) != json_tokener_success || end < len) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		ks_diag_add(d, false, "%s:1:%zu: json: %s", name, end + 1,
			    je == json_tokener_success ? "text after the value"
			    : je == json_tokener_continue ? "the text ends inside a value"
			    : json_tokener_error_desc(je));
		err = -EINVAL;
		goto out;
	}
	out->docs = calloc(1, sizeof(*out->docs));
	if (!out->docs) {
		err = -ENOMEM;
		goto out;
	}
	out->docs[0].line = out->docs[0].col = 1;
	err = conv(&c, o, &out->docs[0].root);
	if (err) {
		free(out->docs);
		out->docs = NULL;
		goto out;
	}
	out->n = 1;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return err;
}

/* The fast path's memory: bump allocation in blocks, all freed at once. */
struct ky_arena {
	struct ky_arena *next;
	size_t used, cap;
	max_align_t mem[];
};

#define ARENA_MIN	4096
#define ARENA_MAX	(1u << 20)
/* Nesting the fast path takes; deeper texts go to json-c, which has the real cap. */
#define FAST_DEPTH	(KY_MAX_DEPTH - 4)
/* Keys of one object checked pairwise for a repeat; more go to json-c. */
#define FAST_KEYS	256

void ky_arena_free(struct ky_arena *a)
{
	while (a) {
		struct ky_arena *next = a->next;

		free(a);
		a = next;
	}
}

static void *arena_alloc(struct ky_arena **a, size_t sz, size_t hint)
{
	struct ky_arena *b = *a;
	void *p;

	sz = (sz + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!b || b->cap - b->used < sz) {
		size_t cap = hint < ARENA_MIN ? ARENA_MIN : hint > ARENA_MAX ? ARENA_MAX : hint;

		if (cap < sz)
			cap = sz;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = *a;
		b->used = 0;
		b->cap = cap;
		*a = b;
	}
	p = (char *)b->mem + b->used;
	b->used += sz;
	return p;
}

struct fast {
	const char *p, *end;
	size_t len;			/* of the whole text: sizes the arena's blocks */
	struct ky_arena *a;
	struct ky_node **stk;		/* kids of the open containers, innermost last */
	size_t nstk, cap;
	size_t nodes;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct fast *f)
{
	while (f->p < f->end && is_ws(*f->p))
		f->p++;
}

static struct ky_node *fnode(struct fast *f, enum ky_type t, const char *str, bool quoted)
{
	struct ky_node *n;

	if (++f->nodes > KY_MAX_NODES || !(n = arena_alloc(&f->a, sizeof(*n), 8 * f->len)))
		return NULL;
	memset(n, 0, sizeof(*n));
	n->type = t;
	n->line = n->col = 1;
	n->quoted = quoted;
	n->str = (char *)str;
	return n;
}

static bool push(struct fast *f, struct ky_node *n)
{
	if (f->nstk == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct ky_node **v = realloc(f->stk, cap * sizeof(*v));

		if (!v)
			return false;
		f->stk = v;
		f->cap = cap;
	}
	f->stk[f->nstk++] = n;
	return true;
}

/* A string at f->p (its opening quote): printable ASCII and the plain escapes only. */
static struct ky_node *fstring(struct fast *f)
{
	const char *s = ++f->p, *q;
	size_t esc = 0, i;
	char *str, *o;

	for (q = s; q < f->end && *q != '"'; q++) {
		if (*q < 0x20 || *q >= 0x7f)
			return NULL;
		if (*q == '\\') {
			if (++q == f->end || !*q || !strchr("\"\\/bfnrt", *q))
				return NULL;
			esc++;
		}
	}
	if (q == f->end)
		return NULL;
	str = arena_alloc(&f->a, (size_t)(q - s) - esc + 1, 8 * f->len);
	if (!str)
		return NULL;
	for (i = 0, o = str; s + i < q; i++) {
		char c = s[i];

		if (c == '\\') {
			c = s[++i];
			c = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
			  : c == 't' ? '\t' : c;
		}
		*o++ = c;
	}
	*o = 0;
	f->p = q + 1;
	return fnode(f, KY_SCALAR, str, true);
}

static bool delim(const struct fast *f)
{
	return f->p == f->end || is_ws(*f->p) || *f->p == ',' || *f->p == ']' || *f->p == '}';
}

/*
 * An integer that json-c prints back as written (no leading zero, no -0,
 * within int64), or true, false, null: a plain scalar.
 */
static struct ky_node *fplain(struct fast *f)
{
	static const char *const words[] = { "true", "false", "null" };
	const char *s = f->p, *q = s;
	size_t i, n;
	char *str;

	if (*q == '-')
		q++;
	if (q < f->end && *q >= '0' && *q <= '9') {
		for (n = 0; q + n < f->end && q[n] >= '0' && q[n] <= '9'; n++)
			;
		if (n > 18 || (*q == '0' && (n > 1 || q > s)))
			return NULL;
		f->p = q + n;
	} else {
		for (i = 0; i < 3; i++) {
			n = strlen(words[i]);
			if ((size_t)(f->end - s) >= n && !memcmp(s, words[i], n))
				break;
		}
		if (i == 3)
			return NULL;
		f->p = s + n;
	}
	if (!delim(f) || !(str = arena_alloc(&f->a, (size_t)(f->p - s) + 1, 8 * f->len)))
		return NULL;
	memcpy(str, s, (size_t)(f->p - s));
	str[f->p - s] = 0;
	return fnode(f, KY_SCALAR, str, false);
}

/* The kids pushed since base, as n's array. */
static bool close_kids(struct fast *f, struct ky_node *n, size_t base)
{
	size_t k = f->nstk - base;

	if (k) {
		n->kids = arena_alloc(&f->a, k * sizeof(*n->kids), 8 * f->len);
		if (!n->kids)
			return false;
		memcpy(n->kids, f->stk + base, k * sizeof(*n->kids));
	}
	n->nkids = n->cap = k;
	n->n = n->type == KY_MAP ? k / 2 : k;
	f->nstk = base;
	return true;
}

static struct ky_node *fvalue(struct fast *f, unsigned depth);

static struct ky_node *fcontainer(struct fast *f, unsigned depth)
{
	bool map = *f->p == '{';
	struct ky_node *n = fnode(f, map ? KY_MAP : KY_SEQ, NULL, false), *k, *v;
	size_t base = f->nstk, i;

	if (!n || depth > FAST_DEPTH)
		return NULL;
	f->p++;
	skip_ws(f);
	if (f->p < f->end && *f->p == (map ? '}' : ']')) {
		f->p++;
		return close_kids(f, n, base) ? n : NULL;
	}
	for (;;) {
		if (map) {
			if (f->p == f->end || *f->p != '"' || !(k = fstring(f)))
				return NULL;
			/* json-c keeps a repeated key's last value: its reading, not ours. */
			if ((f->nstk - base) / 2 >= FAST_KEYS)
				return NULL;
			for (i = base; i < f->nstk; i += 2)
				if (!strcmp(f->stk[i]->str, k->str))
					return NULL;
			skip_ws(f);
			if (f->p == f->end || *f->p != ':')
				return NULL;
			f->p++;
			skip_ws(f);
			if (!push(f, k))
				return NULL;
		}
		if (!(v = fvalue(f, depth + 1)) || !push(f, v))
			return NULL;
		skip_ws(f);
		if (f->p == f->end)
			return NULL;
		if (*f->p == ',') {
			f->p++;
			skip_ws(f);
			continue;
		}
		if (*f->p != (map ? '}' : ']'))
			return NULL;
		f->p++;
		return close_kids(f, n, base) ? n : NULL;
	}
}

static struct ky_node *fvalue(struct fast *f, unsigned depth)
{
	if (f->p == f->end)
		return NULL;
	if (*f->p == '{' || *f->p == '[')
		return fcontainer(f, depth);
	if (*f->p == '"')
		return fstring(f);
	return fplain(f);
}

int ky_parse_json(const char *name, const char *buf, size_t len, struct ky_stream *out,
		  struct ks_diags *d)
{
	struct fast f = { .p = buf, .end = buf + len, .len = len };
	struct ky_node *root = NULL;

	if (len <= KY_MAX_BYTES) {
		skip_ws(&f);
		root = fvalue(&f, 1);
		skip_ws(&f);
	}
	free(f.stk);
	if (!root || f.p != f.end || !(out->docs = calloc(1, sizeof(*out->docs)))) {
		ky_arena_free(f.a);
		return ky_parse_json_c(name, buf, len, out, d);
	}
	out->docs[0].line = out->docs[0].col = 1;
	out->docs[0].root = root;
	out->n = 1;
	out->arena = f.a;
	return 0;
}
