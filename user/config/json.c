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
 */
#include <errno.h>
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

int ky_parse_json(const char *name, const char *buf, size_t len, struct ky_stream *out,
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
	while (end < len && strchr(" \t\r\n", buf[end]))
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
