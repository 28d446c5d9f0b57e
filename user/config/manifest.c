// SPDX-License-Identifier: BSD-2-Clause
/*
 * Documents: which kinds ksplit reads (the kind table: apiVersion group and
 * versions, kind name, parser, storage), the checks every object gets
 * (apiVersion, kind, metadata, top-level fields), the dispatch to the kind's
 * parser, and loading files and directories. The kinds' own fields are read
 * in their files (kinds.h lists them).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/log.h"
#include "config/kinds.h"

#define KM_MAX_VERSIONS	4
#define XGW_GROUP	"gateway.networking.x-k8s.io"

struct km_kind {
	const char *name;		/* the kind */
	const char *group;		/* of apiVersion; "" is the core group */
	const char *versions[KM_MAX_VERSIONS];	/* that we understand; NULL ends a shorter list */
	const char *const *top_keys;	/* a kind without a required spec: its top-level fields */
	bool cluster;			/* cluster-scoped: no namespace (km_meta.ns "") */
	km_parse_fn *parse;
	km_free_fn *free;		/* rows that share a store share this too */
	const void *arg;		/* for parse (struct km_doc.arg) */
	size_t arr, count, size;	/* the store: offsets in km_set of the array and its count */
};

/* The array of km_set that holds a kind's objects (several route kinds share one). */
#define STORE(f) offsetof(struct km_set, f), offsetof(struct km_set, n_##f), \
		 sizeof(*((struct km_set *)0)->f)

static const char *const slice_top[] = { "apiVersion", "kind", "metadata", "addressType",
	"endpoints", "ports", NULL };
static const char *const ns_top[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };

/*
 * What ksplit interprets; any other (group, kind) is skipped, with a warning
 * when it is route-shaped or of a Gateway API group (warn_skipped). Stores in
 * first-appearance order are the order duplicates are reported in.
 */
static const struct km_kind kinds[] = {
	/* name, group, versions, top_keys, cluster, parse, free, arg, store */
	{ "Gateway", KM_GW_GROUP, { "v1", "v1beta1" }, NULL, false,
	  km_gateway_parse, km_gateway_free, NULL, STORE(gateways) },
	{ "Service", "", { "v1" }, NULL, false,
	  km_service_parse, km_service_free, NULL, STORE(services) },
	{ "EndpointSlice", "discovery.k8s.io", { "v1" }, slice_top, false,
	  km_slice_parse, km_slice_free, NULL, STORE(slices) },
	{ "ReferenceGrant", KM_GW_GROUP, { "v1beta1", "v1alpha2", "v1" }, NULL, false,
	  km_grant_parse, km_grant_free, NULL, STORE(grants) },
	{ "TargetGroupPolicy", KM_TGP_GROUP, { "v1alpha1" }, NULL, false,
	  km_policy_parse, km_policy_free, NULL, STORE(policies) },
	{ "Namespace", "", { "v1" }, ns_top, true,
	  km_namespace_parse, km_namespace_free, NULL, STORE(namespaces) },
	/* v1alpha2 has the same schema for every field ksplit reads. */
	{ "HTTPRoute", KM_GW_GROUP, { "v1", "v1beta1", "v1alpha2" }, NULL, false,
	  km_route_parse, km_route_free, &km_route_http, STORE(routes) },
	{ "GRPCRoute", KM_GW_GROUP, { "v1", "v1alpha2" }, NULL, false,
	  km_route_parse, km_route_free, &km_route_grpc, STORE(routes) },
	{ "TCPRoute", KM_GW_GROUP, { "v1alpha2", "v1" }, NULL, false,
	  km_route_parse, km_route_free, &km_route_tcp, STORE(routes) },
	{ "TLSRoute", KM_GW_GROUP, { "v1alpha2", "v1alpha3", "v1" }, NULL, false,
	  km_route_parse, km_route_free, &km_route_tls, STORE(routes) },
	{ "UDPRoute", KM_GW_GROUP, { "v1alpha2", "v1" }, NULL, false,
	  km_route_parse, km_route_free, &km_route_udp, STORE(routes) },
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void **store_arr(struct km_set *s, const struct km_kind *k)
{
	return (void **)((char *)s + k->arr);
}

static size_t *store_n(struct km_set *s, const struct km_kind *k)
{
	return (size_t *)((char *)s + k->count);
}

/* Whether row i is the first with its store: walk stores, not rows. */
static bool store_first(size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (kinds[j].arr == kinds[i].arr)
			return false;
	return true;
}

/*
 * Append one zeroed element. Capacity doubles whenever n reaches a power of
 * two, so it is implied by n and needs no field; growing by one element per
 * call made loading 50,000 objects quadratic.
 */
static void *grow(void **arr, size_t n, size_t sz)
{
	void *p = *arr;

	if (n == 0 || !(n & (n - 1))) {
		p = realloc(*arr, (n ? 2 * n : 1) * sz);
		if (!p)
			return NULL;
		*arr = p;
	}
	memset((char *)p + n * sz, 0, sz);
	return (char *)p + n * sz;
}

/* Appends item to the comma-separated list in buf (truncated to len). */
static void list_add(char *buf, size_t len, const char *item)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", item);
}

/* Whether row k is kind of the group of apiVersion api ("v1" is the core group's). */
static bool row_is(const struct km_kind *k, const char *api, const char *kind)
{
	const char *slash = strchr(api, '/');
	size_t glen = slash ? (size_t)(slash - api) : 0;

	return !strcmp(kind, k->name) && strlen(k->group) == glen && !strncmp(api, k->group, glen);
}

/*
 * Room for one more file name in s->files (capacity doubling, as grow()):
 * the API source loads one buffer per object, and growing by one each time
 * made 15,000 objects take seconds.
 */
static char **add_file_slot(struct km_set *s)
{
	size_t n = s->n_files;
	char **f = s->files;

	if (n == 0 || !(n & (n - 1))) {
		f = realloc(s->files, (n ? 2 * n : 1) * sizeof(*f));
		if (!f)
			return NULL;
		s->files = f;
	}
	return f;
}

/* The row for apiVersion api and kind; -ENOENT for kinds we skip, -EINVAL (reported). */
static int find_kind(struct km_ctx *c, const struct ky_node *root, const char *api,
		     const char *kind, const struct km_kind **out)
{
	const char *slash = strchr(api, '/');
	const char *version = slash ? slash + 1 : api;
	const struct km_kind *k;
	char list[64] = "";
	size_t v;

	for (k = kinds; k < kinds + N_KINDS; k++) {
		if (!row_is(k, api, kind))
			continue;
		for (v = 0; v < KM_MAX_VERSIONS && k->versions[v]; v++) {
			if (!strcmp(version, k->versions[v])) {
				*out = k;
				return 0;
			}
			list_add(list, sizeof(list), k->versions[v]);
		}
		km_err_field(c, ky_map_get(root, "apiVersion"), "apiVersion",
			     "unsupported version '%s' of %s (supported: %s)", api, kind, list);
		return -EINVAL;
	}
	return -ENOENT;
}

/* Whether apiVersion and kind (read leniently: NULL when unusable) name a cluster-scoped kind. */
static bool cluster_scoped(const struct ky_node *an, const struct ky_node *kn)
{
	const struct km_kind *k;

	if (!an || !kn || an->type != KY_SCALAR || kn->type != KY_SCALAR)
		return false;
	for (k = kinds; k < kinds + N_KINDS; k++)
		if (k->cluster && row_is(k, an->str, kn->str))
			return true;
	return false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * An object of a kind ksplit skips. Route-shaped objects (any group) and
 * objects of the Gateway API and Lattice groups get a warning saying what
 * ksplit does instead, so that nothing a user meant for it vanishes in
 * silence; the rest of a cluster's kinds (Deployment, ConfigMap, ...) do not.
 */
static void warn_skipped(struct km_ctx *c, const struct ky_node *root, const char *api,
			 const char *kind)
{
	static const char *const watched[] = { KM_GW_GROUP, XGW_GROUP, KM_TGP_GROUP, NULL };
	const char *slash = strchr(api, '/');
	char group[128] = "", list[256] = "";
	const struct km_kind *k;
	size_t i;

	if (slash)
		snprintf(group, sizeof(group), "%.*s", (int)(slash - api), api);
	if (ends_with(kind, "Route")) {
		for (k = kinds; k < kinds + N_KINDS; k++)
			if (k->parse == km_route_parse)
				list_add(list, sizeof(list), k->name);
		if (!strcmp(group, KM_GW_GROUP))
			km_warn(c, root, "ignored: ksplit programs only the routes of %s (%s)",
				KM_GW_GROUP, list);
		else
			km_warn(c, root, "ignored: ksplit programs only the routes of %s (%s), and "
				"this one is %s", KM_GW_GROUP, list, api);
		return;
	}
	for (i = 0; watched[i] && strcmp(group, watched[i]); i++)
		;
	if (!watched[i]) {
		pr_debug("skipping object of a kind ksplit does not interpret",
			 "file=%s line=%u kind=%s apiVersion=%s name=%s/%s", c->file, root->line,
			 kind, api, c->ns, c->name);
		return;
	}
	if (!strcmp(group, KM_GW_GROUP) && !strcmp(kind, "GatewayClass")) {
		c->ns = "";	/* cluster-scoped */
		km_warn(c, root, "ignored: ksplit reads no GatewayClass parameters");
		return;
	}
	for (k = kinds; k < kinds + N_KINDS; k++)
		if (!strcmp(k->group, group))
			list_add(list, sizeof(list), k->name);
	if (*list)
		km_warn(c, root, "ignored: ksplit reads only %s of %s", list, group);
	else
		km_warn(c, root, "ignored: ksplit reads no kind of %s", group);
}

static int load_doc_in(struct km_set *s, const char *file, const struct ky_node *root,
		       struct ks_diags *d, struct km_ctx *cp)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec",
		"status", NULL };
	const struct ky_node *meta, *kn, *nn, *nsn;
	const char *api = NULL, *kind = NULL, *name = NULL, *ns = "default", *created = NULL;
	const struct km_kind *k = NULL;
	struct km_doc kd = { .root = root };
	struct km_meta *mm;
	int err;

	if (root->type != KY_MAP) {
		ks_diag_add(d, false, "%s:%u:%u: expected a Kubernetes object (a mapping), got %s",
			    file, root->line, root->col, ky_type_name(root));
		return -EINVAL;
	}
	/* Identify the object first, leniently, so every later message can name it. */
	kn = km_field(root, "kind");
	meta = km_field(root, "metadata");
	nn = meta && meta->type == KY_MAP ? km_field(meta, "name") : NULL;
	nsn = meta && meta->type == KY_MAP ? km_field(meta, "namespace") : NULL;
	if (kn && kn->type == KY_SCALAR)
		cp->kind = kn->str;
	if (nn && nn->type == KY_SCALAR)
		cp->name = nn->str;
	if (nsn && nsn->type == KY_SCALAR && *nsn->str)
		ns = nsn->str;
	/* A cluster-scoped object's messages name no namespace ("Namespace team-a"). */
	if (cluster_scoped(km_field(root, "apiVersion"), kn))
		ns = "";
	cp->ns = ns;
	km_check_tree(cp, root);
	km_get_str(cp, root, "apiVersion", true, &api);
	km_get_str(cp, root, "kind", true, &kind);
	meta = km_get_map(cp, root, "metadata", true);
	if (meta) {
		size_t m = km_push(cp, "metadata");

		km_get_str(cp, meta, "name", true, &name);
		if (name && !*name)
			km_err_field(cp, meta, "name", "must not be empty");
		km_get_str(cp, meta, "namespace", false, &ns);
		km_check_str_map(cp, meta, "labels");
		km_check_str_map(cp, meta, "annotations");
		km_pop(cp, m);
	}
	if (!api || !kind || !name || !*name)
		return cp->err ? cp->err : -EINVAL;
	km_get_str(cp, meta, "creationTimestamp", false, &created);
	err = find_kind(cp, root, api, kind, &k);
	if (err == -ENOENT) {
		warn_skipped(cp, root, api, kind);
		return cp->err;
	}
	if (err)
		return cp->err ? cp->err : -EINVAL;
	if (k->cluster)
		ns = "";	/* metadata.namespace means nothing on it */
	km_check_keys(cp, root, k->top_keys ? k->top_keys : top_keys);
	if (!k->top_keys)
		kd.spec = km_get_map(cp, root, "spec", true);
	kd.meta = meta;
	kd.arg = k->arg;
	/* Stored even when refused: its verdict names it, and its last good version may stand in. */
	mm = grow(store_arr(s, k), *store_n(s, k), k->size);
	if (!mm)
		return -ENOMEM;
	(*store_n(s, k))++;
	/* Every kind's struct starts with its km_meta. */
	mm->kind = k->name;
	mm->file = file;
	mm->pos.line = root->line;
	mm->pos.col = root->col;
	mm->seq = s->seq++;
	mm->ns = km_strdup(cp, ns);
	mm->name = km_strdup(cp, name);
	if (created)
		mm->created = km_strdup(cp, created);
	if (cp->err)
		return cp->err;
	if (kd.spec || k->top_keys)
		k->parse(cp, &kd, mm);
	if (cp->err)
		return cp->err;
	if (!cp->bad)
		return 0;
	mm->refused = true;
	mm->why = cp->first_err;
	cp->first_err = NULL;
	return -EINVAL;
}

/* One document: its checking context (and the first error it keeps) lives only here. */
static int load_doc(struct km_set *s, const char *file, const struct ky_node *root,
		    struct ks_diags *d)
{
	struct km_ctx c = { .d = d, .file = file, .kind = "document", .ns = "", .name = NULL };
	int err = load_doc_in(s, file, root, d, &c);

	free(c.first_err);
	return err;
}

/* Remembers a file or directory whose objects are all refused this load. */
static int fail_path(struct km_set *s, const char *path)
{
	char **v = realloc(s->failed, (s->n_failed + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->failed = v;
	if (!(v[s->n_failed] = strdup(path)))
		return -ENOMEM;
	s->n_failed++;
	return 0;
}

/*
 * A List: what `kubectl get -o yaml` prints for more than one object, as kind
 * List or a typed <Kind>List (ServiceList, HTTPRouteList), and what ksplit's
 * own advice to run that command produces. A typed list counts as one only
 * with items, so a kind of some other project that ends in "List" is still
 * just skipped.
 */
static const char *list_kind(const struct ky_node *root)
{
	const struct ky_node *kn = root->type == KY_MAP ? km_field(root, "kind") : NULL;
	size_t n = kn && kn->type == KY_SCALAR ? strlen(kn->str) : 0;

	if (n < 4 || strcmp(kn->str + n - 4, "List"))
		return NULL;
	return n == 4 || km_field(root, "items") ? kn->str : NULL;
}

/* Each item is loaded as its own document, at its own position. */
static int load_list(struct km_set *s, const char *file, const struct ky_node *root,
		     const char *kind, struct ks_diags *d)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "items", NULL };
	struct km_ctx c = { .d = d, .file = file, .kind = kind, .ns = "default" };
	const struct ky_node *items;
	const char *api = NULL;
	int err, ret = 0;
	size_t i, j, m;

	/*
	 * Duplicates of the List's own fields (an unknown one is reported as
	 * such): one pass per field, never pairs of keys, which would be
	 * quadratic in a hostile file. Each item checks its own tree when loaded.
	 */
	for (j = 0; top_keys[j]; j++) {
		const struct ky_node *first = NULL;

		for (i = 0; i < root->n; i++) {
			const struct ky_node *k = ky_map_key(root, i);

			if (k->type != KY_SCALAR || strcmp(k->str, top_keys[j]))
				continue;
			if (first)
				km_err_field(&c, k, k->str, "duplicate key '%s' (first at %u:%u)",
					     k->str, first->line, first->col);
			else
				first = k;
		}
	}
	for (i = 0; i < root->n; i++)
		if (ky_map_key(root, i)->type != KY_SCALAR)
			km_err(&c, ky_map_key(root, i), "mapping keys must be strings, got %s",
			       ky_type_name(ky_map_key(root, i)));
	km_check_keys(&c, root, top_keys);
	if (km_field(root, "metadata")) {
		m = km_push(&c, "metadata");
		km_check_tree(&c, km_field(root, "metadata"));
		km_pop(&c, m);
	}
	if (!km_get_str(&c, root, "apiVersion", true, &api) && !strcmp(kind, "List") &&
	    strcmp(api, "v1"))
		km_err_field(&c, ky_map_get(root, "apiVersion"), "apiVersion",
			     "unsupported version '%s' of List (supported: v1)", api);
	items = km_get_seq(&c, root, "items", true);
	for (i = 0; items && i < items->n; i++) {
		const struct ky_node *it = items->kids[i];

		if (list_kind(it)) {
			m = km_push(&c, "items[%zu]", i);
			km_err(&c, it, "a List inside a List is not supported: move its items into "
			       "the outer List's items, or write them as separate documents");
			km_pop(&c, m);
			continue;
		}
		err = load_doc(s, file, it, d);
		if (err == -ENOMEM) {
			ret = err;
			goto out;
		}
		if (err && !ret)
			ret = err;
	}
	if (c.err)
		ret = c.err;
	else if (c.bad)
		ret = -EINVAL;
out:
	/* The List itself is no object: its first error names no verdict. */
	free(c.first_err);
	return ret;
}

/* Whether buf is a JSON object's text: what the API source hands over. */
static bool json_object_text(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && strchr(" \t\r\n", buf[i]); i++)
		;
	return i < len && buf[i] == '{';
}

static int load_text(struct km_set *s, const char *name, const char *buf, size_t len, bool json,
		     struct ks_diags *d)
{
	struct ky_stream st = { 0 };
	char **files, *file;
	int err, ret = 0;
	size_t i;

	files = add_file_slot(s);
	if (!files)
		return -ENOMEM;
	file = strdup(name);
	if (!file)
		return -ENOMEM;
	s->files[s->n_files++] = file;
	ret = json ? ky_parse_json(file, buf, len, &st, d) : ky_parse(file, buf, len, &st, d);
	if (ret == -ENOMEM)
		goto out;
	/* The documents before a syntax error may be half of what was meant: refuse the file. */
	if (ret) {
		if (fail_path(s, file))
			ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < st.n; i++) {
		const struct ky_node *root = st.docs[i].root;
		const char *lk;

		if (!root)
			continue;
		lk = list_kind(root);
		err = lk ? load_list(s, file, root, lk, d) : load_doc(s, file, root, d);
		if (err == -ENOMEM) {
			ret = err;
			goto out;
		}
		if (err && !ret)
			ret = err;
	}
out:
	ky_stream_free(&st);
	return ret;
}

int km_load_buffer(struct km_set *s, const char *name, const char *buf, size_t len,
		   struct ks_diags *d)
{
	return load_text(s, name, buf, len, false, d);
}

int km_load_object(struct km_set *s, const char *name, const char *buf, size_t len,
		   struct ks_diags *d)
{
	return load_text(s, name, buf, len, json_object_text(buf, len), d);
}

static int load_file(struct km_set *s, const char *path, struct ks_diags *d)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, err = 0;

	/*
	 * O_NONBLOCK: a FIFO put where a file was (or swapped in after the
	 * caller's stat) would block open() until a writer came, and the agent
	 * is one event loop. Regular files ignore the flag.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot open: %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot stat: %s", path, strerror(-err));
		goto out;
	}
	/* Only a regular file has an end to read to; a FIFO or device may never give one. */
	if (!S_ISREG(st.st_mode)) {
		if (ks_diag_add(d, true, "%s: not a regular file; skipped", path))
			err = -ENOMEM;
		goto out;
	}
	if (st.st_size > KM_MAX_FILE_BYTES) {
		ks_diag_add(d, false, "%s: file is larger than %u bytes", path, KM_MAX_FILE_BYTES);
		err = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			ks_diag_add(d, false, "%s: cannot read: %s", path, strerror(-err));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	err = km_load_buffer(s, path, buf, got, d);
out:
	free(buf);
	close(fd);
	return err;
}

static int yaml_entry(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	/* Hidden entries include ConfigMap volumes' ..data and ..<timestamp> internals. */
	if (e->d_name[0] == '.')
		return 0;
	return (n > 5 && !strcmp(e->d_name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(e->d_name + n - 4, ".yml"));
}

int km_load_path(struct km_set *s, const char *path, struct ks_diags *d)
{
	struct dirent **ents = NULL;
	struct stat st;
	int n, i, err = 0, ret = 0;

	if (stat(path, &st)) {
		err = -errno;
		ks_diag_add(d, false, "%s: %s", path, strerror(-err));
		return fail_path(s, path) ?: err;
	}
	if (!S_ISDIR(st.st_mode)) {
		err = load_file(s, path, d);
		goto io;
	}
	n = scandir(path, &ents, yaml_entry, alphasort);
	if (n < 0) {
		err = -errno;
		ks_diag_add(d, false, "%s: cannot read directory: %s", path, strerror(-err));
		return fail_path(s, path) ?: err;
	}
	for (i = 0; i < n; i++) {
		char *full = NULL;

		if (asprintf(&full, "%s/%s", path, ents[i]->d_name) < 0) {
			ret = -ENOMEM;
			break;
		}
		/* stat, not lstat: ConfigMap files are symlinks through ..data. */
		if (stat(full, &st)) {
			err = -errno;
			ks_diag_add(d, false, "%s: %s", full, strerror(-err));
		} else if (S_ISDIR(st.st_mode)) {
			pr_debug("skipping a directory", "path=%s", full);
			err = 0;
		} else {
			/* Anything else that is not a regular file is reported there. */
			err = load_file(s, full, d);
		}
		/* A file that cannot be read keeps its last good objects, as a broken one does. */
		if (err && err != -EINVAL && err != -ENOMEM && fail_path(s, full))
			err = -ENOMEM;
		free(full);
		if (err == -ENOMEM) {
			ret = err;
			break;
		}
		/* An I/O error outranks a validation error in the return value. */
		if (err && (!ret || (ret == -EINVAL && err != -EINVAL)))
			ret = err;
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return ret;
io:
	if (err && err != -EINVAL && err != -ENOMEM && fail_path(s, path))
		err = -ENOMEM;
	return err;
}


size_t km_n_stores(void)
{
	size_t i, n = 0;

	for (i = 0; i < N_KINDS; i++)
		n += store_first(i);
	return n;
}

/* Row of kinds[] that owns store i. */
static const struct km_kind *store_row(size_t i)
{
	size_t r;

	for (r = 0; r < N_KINDS; r++)
		if (store_first(r) && !i--)
			return &kinds[r];
	return NULL;
}

void km_store_at(struct km_set *s, size_t i, struct km_store *st)
{
	const struct km_kind *k = store_row(i);

	st->arr = (char **)store_arr(s, k);
	st->n = store_n(s, k);
	st->size = k->size;
}

struct km_meta *km_store_move_in(struct km_set *s, size_t i, struct km_meta *old)
{
	const struct km_kind *k = store_row(i);
	char **files = add_file_slot(s);
	struct km_meta *nm;

	if (!files || !(files[s->n_files] = strdup(old->file)))
		return NULL;
	s->n_files++;
	if (!(nm = grow(store_arr(s, k), *store_n(s, k), k->size)))
		return NULL;
	(*store_n(s, k))++;
	memcpy(nm, old, k->size);
	memset(old, 0, k->size);
	nm->file = files[s->n_files - 1];
	nm->seq = s->seq++;
	return nm;
}

/* Duplicates per store: a later definition of the same kind and ns/name is an error. */
int km_check_duplicates(struct km_set *s, struct ks_diags *d)
{
	struct km_index by_name = {};
	size_t i;
	int err, ret = 0;

	for (i = 0; i < N_KINDS; i++) {
		if (!store_first(i))
			continue;
		err = km_index_dups(&by_name, *store_arr(s, &kinds[i]), *store_n(s, &kinds[i]),
				    kinds[i].size, d);
		if (err == -ENOMEM) {
			ret = err;
			break;
		}
		if (err)
			ret = err;
	}
	free(by_name.v);
	if (ret != -ENOMEM) {
		err = km_set_index(s);
		if (err)
			ret = err;
	}
	return ret;
}

void km_set_free(struct km_set *s)
{
	size_t i, j;

	if (!s)
		return;
	free(s->ix_gateways.v);
	free(s->ix_services.v);
	free(s->ix_slices.v);
	free(s->ix_gw_refused.v);
	free(s->ix_svc_refused.v);
	free(s->ix_namespaces.v);
	for (i = 0; i < N_KINDS; i++) {
		const struct km_kind *k = &kinds[i];
		char *arr = *store_arr(s, k);

		if (!store_first(i))
			continue;
		for (j = 0; j < *store_n(s, k); j++) {
			struct km_meta *m = (struct km_meta *)(arr + j * k->size);

			free(m->ns);
			free(m->name);
			free(m->created);
			free(m->why);
			k->free(m);
		}
		free(arr);
	}
	for (i = 0; i < s->n_files; i++)
		free(s->files[i]);
	free(s->files);
	for (i = 0; i < s->n_failed; i++)
		free(s->failed[i]);
	free(s->failed);
	memset(s, 0, sizeof(*s));
}
