// SPDX-License-Identifier: BSD-2-Clause
/*
 * The manifest corpus (selftests/data/corpus): hand-written files shaped like
 * what Gateway API, GAMMA, Istio, Linkerd and AWS Lattice users have. Every
 * route-shaped object (a kind ending in "Route", any group) carries its
 * expected verdict in the annotation ksplit.io/expect:
 *
 *   "Accepted"                      every parentRef accepts, every backendRef resolves
 *   "Accepted ResolvedRefs=X"       every parentRef accepts, ResolvedRefs has reason X
 *   "NoMatchingParent"              every parentRef gives that Accepted reason
 *   "Accepted,NoMatchingParent"     one Accepted reason per parentRef, in order
 *   "warning"                       a kind ksplit does not handle: no verdict, a warning naming it
 *
 * Other objects may say "valid", "warning" or "error" (refused alone) the same way.
 *
 * Each file is loaded on its own (files are independent), as the agent loads:
 * a bad object is refused alone. A file whose first comment lines say
 * "corpus-options: allow-loopback-vips" is loaded with loopback VIPs allowed.
 *
 * The test prints one line for the closing note,
 *   corpus: N route objects: A accepted, R refused with a reason,
 *           W ignored with a warning, S silent   (on one line)
 * and fails when any route is silent or any expectation is not met (each
 * unmet one is printed with what ksplit said instead).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/yaml.h"

#ifndef KS_TEST_DATA
#define KS_TEST_DATA "selftests/data"
#endif

#define CORPUS_DIR	KS_TEST_DATA "/corpus"
#define EXPECT_ANN	"ksplit.io/expect"
#define OPT_LOOPBACK	"corpus-options: allow-loopback-vips"

/* The issue asks for "at least each numbered case" and 60 route objects. */
#define MIN_FILES	10
#define MIN_ROUTES	60

/* What became of one route object, as the closing note counts it. */
enum outcome { OUT_ACCEPTED, OUT_REFUSED, OUT_WARNED, OUT_SILENT, OUT_N };

struct tally {
	size_t files, routes, objects;	/* objects: others that carry an expectation */
	size_t out[OUT_N];
	size_t unmet;		/* expectations not met */
	/* Per parentRef: Accepted (and resolved), else its ResolvedRefs or Accepted reason. */
	size_t reasons[KSM_R_N];
};

/* One file, loaded: its text, its YAML tree, the model and diags of its load. */
struct corpus_file {
	const char *path;
	char *buf;
	size_t len;
	struct ky_stream ys;
	struct ks_model m;
	struct ks_diags d;
};

static const char *scalar(const struct ky_node *map, const char *key)
{
	const struct ky_node *v = map && map->type == KY_MAP ? ky_map_get(map, key) : NULL;

	return v && v->type == KY_SCALAR ? v->str : NULL;
}

static const struct ky_node *ann(const struct ky_node *obj)
{
	const struct ky_node *meta = ky_map_get(obj, "metadata");

	return meta && meta->type == KY_MAP ? ky_map_get(meta, "annotations") : NULL;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

/* The leading comment block names the file's load options. */
static bool wants_loopback(const char *buf)
{
	const char *p = buf;

	while (*p == '#') {
		const char *eol = strchrnul(p, '\n');

		if (memmem(p, (size_t)(eol - p), OPT_LOOPBACK, strlen(OPT_LOOPBACK)))
			return true;
		p = *eol ? eol + 1 : eol;
	}
	return false;
}

static void load_file(struct corpus_file *cf, const char *path)
{
	struct ks_load_opts o = { 0 };
	struct ks_diags parse_diags = { 0 };
	const char *bufs[1], *names[1] = { path };
	size_t lens[1];

	memset(cf, 0, sizeof(*cf));
	cf->path = path;
	cf->buf = slurp(path, &cf->len);
	assert_non_null(cf->buf);
	o.allow_loopback_vips = wants_loopback(cf->buf);
	bufs[0] = cf->buf;
	lens[0] = cf->len;
	assert_int_equal(ks_model_load_buffers_opts(&o, names, bufs, lens, 1, &cf->m, &cf->d), 0);
	/* The corpus is valid YAML: only the objects in it may be refused. */
	assert_int_equal(ky_parse(path, cf->buf, cf->len, &cf->ys, &parse_diags), 0);
	ks_diags_free(&parse_diags);
}

static void unload_file(struct corpus_file *cf)
{
	ky_stream_free(&cf->ys);
	ks_model_free(&cf->m);
	ks_diags_free(&cf->d);
	free(cf->buf);
}

static const struct ksm_route_status *find_verdict(const struct ks_model *m, const char *kind,
						   const char *ns, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_routes; i++) {
		const struct ksm_route_status *r = &m->routes[i];

		if (!strcmp(r->kind, kind) && !strcmp(r->ns, ns) && !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

/* The first diag about the object itself ("...: Kind ns/name: ...") of that severity. */
static const char *find_diag(const struct ks_diags *d, bool warning, const char *kind,
			     const char *ns, const char *name)
{
	char *needle = NULL;
	const char *hit = NULL;
	size_t i;

	assert_true(asprintf(&needle, ": %s %s/%s: ", kind, ns, name) > 0);
	for (i = 0; i < d->n && !hit; i++)
		if (d->v[i].warning == warning && strstr(d->v[i].msg, needle))
			hit = d->v[i].msg;
	free(needle);
	return hit;
}

/* What ksplit said, spelled like an expectation: "Accepted,NoMatchingParent ResolvedRefs=X". */
static void describe(const struct ksm_route_status *r, char *out, size_t len)
{
	enum ksm_reason resolved = KSM_R_RESOLVED_REFS;
	size_t i, n = 0;

	out[0] = '\0';
	if (!r->n_parents) {
		snprintf(out, len, "%s (no parentRefs)",
			 r->refused ? "UnsupportedValue" : "Accepted");
		return;
	}
	for (i = 0; i < r->n_parents; i++) {
		const struct ksm_parent_status *ps = &r->parents[i];

		n += snprintf(out + n, n < len ? len - n : 0, "%s%s", i ? "," : "",
			      ksm_reason_name(ps->accepted));
		if (ps->accepted == KSM_R_ACCEPTED && ps->resolved != KSM_R_RESOLVED_REFS)
			resolved = ps->resolved;
	}
	if (resolved != KSM_R_RESOLVED_REFS && n < len)
		snprintf(out + n, len - n, " ResolvedRefs=%s", ksm_reason_name(resolved));
}

/*
 * Whether the verdict meets the expectation: the Accepted reason of every
 * parentRef (one token for all, or one per parentRef), and for accepted ones
 * the ResolvedRefs reason (ResolvedRefs unless the expectation names one).
 */
static bool verdict_meets(const struct ksm_route_status *r, const char *want)
{
	char *copy = strdup(want), *accepted, *resolved, *tok, *save = NULL;
	const char *want_resolved = "ResolvedRefs";
	size_t i, n_tok = 0;
	bool ok = true;
	char *toks[64];

	assert_non_null(copy);
	accepted = strtok_r(copy, " ", &save);
	resolved = strtok_r(NULL, " ", &save);
	if (resolved) {
		assert_int_equal(strncmp(resolved, "ResolvedRefs=", 13), 0);
		want_resolved = resolved + 13;
	}
	assert_null(strtok_r(NULL, " ", &save));
	for (tok = strtok_r(accepted, ",", &save); tok && n_tok < 64;
	     tok = strtok_r(NULL, ",", &save))
		toks[n_tok++] = tok;
	assert_true(n_tok >= 1);
	if (!r->n_parents) {
		/* Refused before its parentRefs were read: the object's own refusal. */
		ok = n_tok == 1 && !strcmp(toks[0], r->refused ? "UnsupportedValue" : "Accepted");
		goto out;
	}
	if (n_tok != 1 && n_tok != r->n_parents) {
		ok = false;
		goto out;
	}
	for (i = 0; i < r->n_parents && ok; i++) {
		const struct ksm_parent_status *ps = &r->parents[i];
		const char *t = toks[n_tok == 1 ? 0 : i];

		ok = !strcmp(ksm_reason_name(ps->accepted), t) &&
		     (ps->accepted != KSM_R_ACCEPTED ||
		      !strcmp(ksm_reason_name(ps->resolved), want_resolved));
	}
out:
	free(copy);
	return ok;
}

static void count_reasons(const struct ksm_route_status *r, struct tally *t)
{
	size_t i;

	for (i = 0; i < r->n_parents; i++) {
		const struct ksm_parent_status *ps = &r->parents[i];

		if (ps->accepted != KSM_R_ACCEPTED)
			t->reasons[ps->accepted]++;
		else if (ps->resolved != KSM_R_RESOLVED_REFS)
			t->reasons[ps->resolved]++;
		else
			t->reasons[KSM_R_ACCEPTED]++;
	}
}

/* A corpus object: who it is, what it expects, what its file's load said about it. */
struct subject {
	const char *kind, *ns, *name, *want;
	unsigned line;
	const char *warn, *err;		/* the first warning and error naming it, or NULL */
};

static void identify(const struct corpus_file *cf, const struct ky_node *obj, struct subject *s)
{
	const struct ky_node *meta = ky_map_get(obj, "metadata");

	s->kind = scalar(obj, "kind");
	s->ns = scalar(meta, "namespace") ? scalar(meta, "namespace") : "default";
	s->name = scalar(meta, "name") ? scalar(meta, "name") : "?";
	s->want = scalar(ann(obj), EXPECT_ANN);
	s->line = obj->line;
	s->warn = find_diag(&cf->d, true, s->kind, s->ns, s->name);
	s->err = find_diag(&cf->d, false, s->kind, s->ns, s->name);
}

static void unmet(const struct corpus_file *cf, const struct subject *s, const char *got,
		  struct tally *t)
{
	printf("%s:%u: %s %s/%s: expected \"%s\", got %s\n", cf->path, s->line, s->kind, s->ns,
	       s->name, s->want, got);
	t->unmet++;
}

/* One route-shaped object: its outcome, and whether it is what the file expects. */
static void judge_route(const struct corpus_file *cf, const struct subject *s, struct tally *t)
{
	const struct ksm_route_status *r = find_verdict(&cf->m, s->kind, s->ns, s->name);
	char got[1024];
	bool ok;

	t->routes++;
	if (r) {
		t->out[ksm_route_accepted(r) ? OUT_ACCEPTED : OUT_REFUSED]++;
		count_reasons(r, t);
		describe(r, got, sizeof(got));
		ok = s->want && strcmp(s->want, "warning") && verdict_meets(r, s->want);
	} else if (s->warn) {
		t->out[OUT_WARNED]++;
		snprintf(got, sizeof(got), "no verdict, a warning: %s", s->warn);
		ok = s->want && !strcmp(s->want, "warning");
	} else if (s->err) {
		/* Refused with a reason, but not as a route verdict: never what is expected. */
		t->out[OUT_REFUSED]++;
		snprintf(got, sizeof(got), "no verdict, an error: %s", s->err);
		ok = false;
	} else {
		t->out[OUT_SILENT]++;
		snprintf(got, sizeof(got), "nothing at all (silently ignored)");
		ok = false;
	}
	if (!s->want) {
		/* Every route-shaped object in the corpus says what it expects. */
		struct subject named = *s;

		named.want = "a " EXPECT_ANN " annotation";
		unmet(cf, &named, got, t);
	} else if (!ok) {
		unmet(cf, s, got, t);
	}
}

/*
 * Another object that says what it expects (a Gateway, a policy): "valid"
 * is no error naming it, "warning" a warning and no error, "error" an error
 * naming it (the object is refused alone).
 */
static void judge_object(const struct corpus_file *cf, const struct subject *s, struct tally *t)
{
	char got[1024];
	bool ok;

	if (!strcmp(s->want, "error"))
		ok = s->err;
	else if (!strcmp(s->want, "warning"))
		ok = s->warn && !s->err;
	else
		ok = !strcmp(s->want, "valid") && !s->err;
	t->objects++;
	if (!ok) {
		snprintf(got, sizeof(got), "%s%s", s->err ? "an error: " : s->warn ? "a warning: " :
			 "no diagnostic", s->err ? s->err : s->warn ? s->warn : "");
		unmet(cf, s, got, t);
	}
}

static bool route_shaped(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;

	return n >= 5 && !strcmp(kind + n - 5, "Route");
}

/* A document, or the items of a kind: List (what kubectl get -o yaml prints). */
static void walk(const struct corpus_file *cf, const struct ky_node *obj, struct tally *t)
{
	const char *kind = scalar(obj, "kind");
	const struct ky_node *items;
	struct subject s;
	size_t i;

	if (!obj || obj->type != KY_MAP)
		return;
	if (kind && !strcmp(kind, "List") && (items = ky_map_get(obj, "items")) &&
	    items->type == KY_SEQ) {
		for (i = 0; i < items->n; i++)
			walk(cf, items->kids[i], t);
		return;
	}
	identify(cf, obj, &s);
	if (route_shaped(kind))
		judge_route(cf, &s, t);
	else if (s.want)
		judge_object(cf, &s, t);
}

static int yaml_file(const struct dirent *e)
{
	return !fnmatch("*.yaml", e->d_name, 0);
}

static void test_corpus(void **state)
{
	struct dirent **ents = NULL;
	struct tally t = { 0 };
	int n, i;
	size_t j, r;

	(void)state;
	n = scandir(CORPUS_DIR, &ents, yaml_file, alphasort);
	assert_true(n >= MIN_FILES);
	for (i = 0; i < n; i++) {
		struct corpus_file cf;
		char *path = NULL;

		assert_true(asprintf(&path, "%s/%s", CORPUS_DIR, ents[i]->d_name) > 0);
		load_file(&cf, path);
		for (j = 0; j < cf.ys.n; j++)
			walk(&cf, cf.ys.docs[j].root, &t);
		unload_file(&cf);
		free(path);
		free(ents[i]);
		t.files++;
	}
	free(ents);

	printf("corpus: %zu route objects: %zu accepted, %zu refused with a reason, "
	       "%zu ignored with a warning, %zu silent\n", t.routes, t.out[OUT_ACCEPTED],
	       t.out[OUT_REFUSED], t.out[OUT_WARNED], t.out[OUT_SILENT]);
	printf("corpus: %zu files, %zu other objects with an expectation; parentRef reasons:",
	       t.files, t.objects);
	for (r = 0; r < KSM_R_N; r++)
		if (t.reasons[r])
			printf(" %s %zu", ksm_reason_name((enum ksm_reason)r), t.reasons[r]);
	printf("; %zu expectation(s) not met\n", t.unmet);
	fflush(stdout);	/* before cmocka's verdict, which goes to stderr */

	assert_true(t.routes >= MIN_ROUTES);
	assert_int_equal(t.out[OUT_SILENT], 0);
	assert_int_equal(t.unmet, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
