/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The checking context every kind's parser reads its object through: a
 * path into the object ("spec.rules[0].backendRefs[1]") kept as fields are
 * entered and left, diagnostics "file:line:col: Kind ns/name: path: message"
 * at the node that is wrong, and typed field readers that report a missing
 * field, a wrong type or an out-of-range value themselves. A kind's parser
 * then only says which fields exist and what they mean.
 * Internal to config/.
 */
#ifndef KSPLIT_CONFIG_READER_H
#define KSPLIT_CONFIG_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "config/manifest.h"
#include "config/yaml.h"

/* One object being checked. */
struct km_ctx {
	struct ks_diags *d;
	const char *file;
	const char *kind;
	const char *ns, *name;
	char path[512];
	size_t plen;
	int err;		/* sticky -ENOMEM */
	bool bad;		/* at least one error for this object */
	char *first_err;	/* its first error, "field.path: message" (the loader frees it) */
};

/* Enter a path element ("spec", "[2]", "ports[0]"); returns the mark km_pop() goes back to. */
size_t km_push(struct km_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void km_pop(struct km_ctx *c, size_t mark);

/* Error at node at (line 1 col 1 when NULL), about the current path. */
void km_err(struct km_ctx *c, const struct ky_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A warning at node at: the object is kept (ignored parts, defaults that differ). */
void km_warn(struct km_ctx *c, const struct ky_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Error about a sub-field key of a map (missing field etc.): the path gets ".key". */
void km_err_field(struct km_ctx *c, const struct ky_node *at, const char *key,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same as a warning. */
void km_warn_field(struct km_ctx *c, const struct ky_node *at, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* strdup that records -ENOMEM in c; NULL s copies "". */
char *km_strdup(struct km_ctx *c, const char *s);

/* Reports keys of map that are not in known (NULL-terminated), with a "did you mean". */
void km_check_keys(struct km_ctx *c, const struct ky_node *map, const char *const *known);
/* Duplicate keys and non-string keys anywhere under n (metadata and status too). */
void km_check_tree(struct km_ctx *c, const struct ky_node *n);

/* Where key's value is in map, or def when absent. */
void km_field_pos(const struct ky_node *map, const char *key, const struct km_pos *def,
		  struct km_pos *out);
/* The value of key in map, NULL when absent or null. */
const struct ky_node *km_field(const struct ky_node *map, const char *key);
/* A YAML integer written plainly (quoted "80" is a string in Kubernetes): 0 or -EINVAL. */
int km_parse_int(const struct ky_node *v, long long *out);

/*
 * Typed readers: 0 and *out set (left alone when the field is absent and
 * optional), or -EINVAL after reporting. present (may be NULL) says whether
 * the field was there and valid.
 */
int km_get_str(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       const char **out);
/* A copy of the string, or of def when absent (NULL def: *out NULL). */
int km_dup_str(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       const char *def, char **out);
/* An API group: "core" is the core group "" (Linkerd's docs write it so); defaults as km_dup_str. */
int km_dup_group(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		 const char *def, char **out);
int km_get_int(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
	       long long lo, long long hi, long long *out, bool *present);
int km_get_port(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		uint16_t *out, bool *present);
int km_get_bool(struct km_ctx *c, const struct ky_node *map, const char *key, bool *out,
		bool *present);
/* String restricted to a set; *idx = index in allowed (NULL-terminated; unchanged when absent). */
int km_get_enum(struct km_ctx *c, const struct ky_node *map, const char *key, bool required,
		const char *const *allowed, int *idx);
/* "protocol": TCP (default), UDP or SCTP, as IPPROTO_*. */
int km_get_l4proto(struct km_ctx *c, const struct ky_node *map, const char *key,
		   uint8_t *proto);

/* Container fields: NULL when absent (or after a type error). */
const struct ky_node *km_get_coll(struct km_ctx *c, const struct ky_node *map, const char *key,
				  enum ky_type t, bool required);
#define km_get_map(c, m, k, r) km_get_coll(c, m, k, KY_MAP, r)
#define km_get_seq(c, m, k, r) km_get_coll(c, m, k, KY_SEQ, r)

/* A list item that must be a mapping. */
bool km_item_map(struct km_ctx *c, const struct ky_node *v);
/* A map of string to string (labels, selector), and a list of strings. */
void km_check_str_map(struct km_ctx *c, const struct ky_node *parent, const char *key);
void km_check_str_list(struct km_ctx *c, const struct ky_node *parent, const char *key);
/*
 * The string pairs of a map (labels), unchecked: non-string values are
 * skipped (km_check_str_map reports them). 0 or -ENOMEM (in c too).
 */
int km_get_labels(struct km_ctx *c, const struct ky_node *map, size_t *n, struct km_label **out);
void km_labels_free(struct km_label *v, size_t n);
/* A LabelSelector (matchLabels, matchExpressions), checked as the API server does. */
void km_get_selector(struct km_ctx *c, const struct ky_node *map, struct km_selector *sel);
void km_selector_free(struct km_selector *sel);
/* A scalar holding an IP address. */
int km_parse_addr(struct km_ctx *c, const struct ky_node *v, struct ksm_addr *a);

#endif /* KSPLIT_CONFIG_READER_H */
