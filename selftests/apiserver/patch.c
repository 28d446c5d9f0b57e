// SPDX-License-Identifier: BSD-2-Clause
/* JSON merge patch (RFC 7386) and the part of strategic merge patch kubectl apply needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apiserver.h"

/* The string at a dotted path ("metadata.name"), or NULL. */
const char *obj_str(json_object *o, const char *path)
{
	char key[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (path[n] == '.');
	}
	return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	json_object_deep_copy(o, &c, NULL);
	return c;
}

/* A patch value that lands where nothing was: merge it into {} so its nulls vanish. */
static json_object *fresh(json_object *v, bool strategic)
{
	json_object *t;

	if (!json_object_is_type(v, json_type_object))
		return copy(v);
	t = json_object_new_object();
	merge_patch(t, v, strategic);
	return t;
}

static json_object *find_by(json_object *list, const char *mk, json_object *val)
{
	size_t n = list ? json_object_array_length(list) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i), *v;

		if (json_object_object_get_ex(e, mk, &v) && json_object_equal(v, val))
			return e;
	}
	return NULL;
}

static bool is_delete(json_object *e)
{
	const char *p = obj_str(e, "$patch");

	return p && !strcmp(p, "delete");
}

/*
 * The list part of a strategic merge patch, as kubectl apply sends it: the
 * "$setElementOrder/K" list names each element by its merge key (the one key
 * its entries have), K holds the changed elements, "$patch": "delete" drops one.
 * Elements the patch does not mention are kept, after the ordered ones.
 */
static json_object *merge_list(json_object *target, json_object *plist, json_object *order)
{
	json_object *out = json_object_new_array(), *first = json_object_array_get_idx(order, 0);
	size_t n = json_object_array_length(order), nt, np;
	const char *mk = NULL;

	if (!first || !json_object_is_type(first, json_type_object)) {
		json_object_put(out);
		return copy(order);
	}
	json_object_object_foreach(first, k, v0) {
		(void)v0;
		mk = k;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *key, *p, *t;

		if (!json_object_object_get_ex(json_object_array_get_idx(order, i), mk, &key))
			continue;
		p = find_by(plist, mk, key);
		t = json_object_is_type(target, json_type_array) ? find_by(target, mk, key) : NULL;
		if (p && is_delete(p))
			continue;
		if (t) {
			t = copy(t);
			if (p)
				merge_patch(t, p, true);
			json_object_array_add(out, t);
		} else if (p) {
			json_object_array_add(out, fresh(p, true));
		}
	}
	nt = json_object_is_type(target, json_type_array) ? json_object_array_length(target) : 0;
	for (size_t i = 0; i < nt; i++) {
		json_object *t = json_object_array_get_idx(target, i), *key, *p;

		if (!json_object_object_get_ex(t, mk, &key) || find_by(order, mk, key))
			continue;
		p = find_by(plist, mk, key);
		if (!p || !is_delete(p))
			json_object_array_add(out, copy(t));
	}
	np = plist ? json_object_array_length(plist) : 0;
	for (size_t i = 0; i < np; i++) {
		json_object *p = json_object_array_get_idx(plist, i), *key;

		if (!is_delete(p) && json_object_object_get_ex(p, mk, &key) && !find_by(out, mk, key))
			json_object_array_add(out, fresh(p, true));
	}
	return out;
}

/*
 * RFC 7386 JSON merge patch of target (an object) in place. strategic adds
 * what kubectl apply's strategic merge patches need (see merge_list); other
 * "$" directives are dropped, so lists without an element order are replaced.
 */
void merge_patch(json_object *target, json_object *patch, bool strategic)
{
	json_object_object_foreach(patch, k, v) {
		json_object *t = NULL, *order = NULL;
		char okey[256];

		if (strategic && k[0] == '$')
			continue;
		json_object_object_get_ex(target, k, &t);
		snprintf(okey, sizeof(okey), "$setElementOrder/%s", k);
		if (!v) {
			json_object_object_del(target, k);
		} else if (json_object_is_type(v, json_type_object) && t &&
			   json_object_is_type(t, json_type_object)) {
			merge_patch(t, v, strategic);
		} else if (strategic && json_object_object_get_ex(patch, okey, &order)) {
			json_object_object_add(target, k, merge_list(t, v, order));
		} else {
			json_object_object_add(target, k, fresh(v, strategic));
		}
	}
	if (!strategic)
		return;
	/* An element order with no list beside it: only the order (or deletions) changed. */
	json_object_object_foreach(patch, k2, v2) {
		json_object *t = NULL;

		if (strncmp(k2, "$setElementOrder/", 17) ||
		    json_object_object_get_ex(patch, k2 + 17, NULL))
			continue;
		json_object_object_get_ex(target, k2 + 17, &t);
		json_object_object_add(target, k2 + 17, merge_list(t, NULL, v2));
	}
}
