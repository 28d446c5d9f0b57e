// SPDX-License-Identifier: BSD-2-Clause
/*
 * The loader's entry points (config.h): files, buffers or the API source's
 * objects in, through the kinds' parsers (manifest.c) and, for a long-running
 * caller, the last load's objects (carry.c: reuse and last good versions),
 * then resolve.c's km_resolve, to a model.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"
#include "common/log.h"
#include "config/config.h"
#include "config/resolve.h"

struct ks_objects {
	struct km_set s;
};

void ks_objects_free(struct ks_objects *o)
{
	if (o) {
		km_set_free(&o->s);
		free(o);
	}
}

/*
 * Shared tail of every entry point: last good versions, duplicates,
 * resolution. strict: any error fails the load (validate's exit code, the
 * tests) instead of refusing the objects alone.
 */
static int finish_load(struct km_set *s, const struct ks_load_opts *o, struct ks_objects **keep,
		       bool strict, int io_err, size_t errors_before, struct ks_model *out,
		       struct ks_diags *d)
{
	static const struct ks_load_opts defaults;
	struct ks_model m = { 0 };
	struct ks_objects *next = NULL;
	int err;

	if (keep && *keep && km_set_carry(s, &(*keep)->s, d))
		return -ENOMEM;
	err = km_check_duplicates(s, d);
	if (err == -ENOMEM)
		return err;
	err = km_resolve(s, o ? o : &defaults, &m, d);
	if (err)
		return err;
	if (strict && (io_err || d->n_errors > errors_before)) {
		ks_model_free(&m);
		return io_err ? io_err : -EINVAL;
	}
	if (keep) {
		if (!(next = calloc(1, sizeof(*next)))) {
			ks_model_free(&m);
			return -ENOMEM;
		}
		next->s = *s;
		memset(s, 0, sizeof(*s));
		ks_objects_free(*keep);
		*keep = next;
	}
	pr_debug("model resolved", "services=%zu health=%zu routes=%zu", m.n_svcs, m.n_health,
		 m.n_routes);
	*out = m;
	return 0;
}

static int load_paths(const struct ks_load_opts *o, const char *const *paths, size_t n_paths,
		      struct ks_objects **keep, bool strict, struct ks_model *out,
		      struct ks_diags *diags)
{
	struct km_set s = { 0 };
	size_t before = diags->n_errors, i;
	int err, io_err = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n_paths; i++) {
		err = km_load_path(&s, paths[i], diags);
		if (err == -ENOMEM) {
			io_err = err;
			goto out;
		}
		if (err && err != -EINVAL && !io_err)
			io_err = err;
	}
	err = finish_load(&s, o, keep, strict, io_err, before, out, diags);
out:
	km_set_free(&s);
	return io_err == -ENOMEM ? io_err : err;
}

int ks_model_load_opts(const struct ks_load_opts *o, const char *const *paths, size_t n_paths,
		       struct ks_objects **keep, struct ks_model *out, struct ks_diags *diags)
{
	return load_paths(o, paths, n_paths, keep, false, out, diags);
}

int ks_model_load(const char *const *paths, size_t n_paths, struct ks_model *out,
		  struct ks_diags *diags)
{
	return load_paths(NULL, paths, n_paths, NULL, true, out, diags);
}

static int load_buffers(const struct ks_load_opts *o, const char *const *names,
			const char *const *bufs, const size_t *lens, const bool *reuse, size_t n,
			struct ks_objects **keep, bool strict, bool *held, struct ks_model *out,
			struct ks_diags *diags)
{
	struct km_set s = { 0 };
	size_t before = diags->n_errors, i, seq;
	bool *done = NULL;
	int err = 0;

	memset(out, 0, sizeof(*out));
	/* Objects unchanged since the kept load are moved over, not parsed again. */
	if (reuse && keep && *keep && n) {
		done = calloc(n, sizeof(*done));
		if (!done || km_set_reuse(&s, &(*keep)->s, names, reuse, done, n)) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (held)
			held[i] = done && done[i];
		if (done && done[i])
			continue;
		/* The source dropped this text for the parsed objects a failed load lost. */
		if (!bufs[i]) {
			err = -ESTALE;
			goto out;
		}
		seq = s.seq;
		/* Objects of the API source (they come with keep) may be JSON: the fast parser. */
		err = keep ? km_load_object(&s, names[i], bufs[i], lens[i], diags)
			   : km_load_buffer(&s, names[i], bufs[i], lens[i], diags);
		if (err == -ENOMEM)
			goto out;
		/* Each object stored (refused ones too) takes a seq. */
		if (held)
			held[i] = s.seq > seq;
	}
	err = finish_load(&s, o, keep, strict, 0, before, out, diags);
out:
	free(done);
	km_set_free(&s);
	return err;
}

int ks_model_load_buffers(const char *const *names, const char *const *bufs,
			  const size_t *lens, size_t n, struct ks_model *out,
			  struct ks_diags *diags)
{
	return load_buffers(NULL, names, bufs, lens, NULL, n, NULL, true, NULL, out, diags);
}

int ks_model_load_buffers_opts(const struct ks_load_opts *o, const char *const *names,
			       const char *const *bufs, const size_t *lens, size_t n,
			       struct ks_model *out, struct ks_diags *diags)
{
	return load_buffers(o, names, bufs, lens, NULL, n, NULL, false, NULL, out, diags);
}

int ks_model_load_objects(const struct ks_load_opts *o, const char *const *names,
			  const char *const *bufs, const size_t *lens, const bool *reuse, size_t n,
			  struct ks_objects **keep, bool *held, struct ks_model *out,
			  struct ks_diags *diags)
{
	return load_buffers(o, names, bufs, lens, reuse, n, keep, false, held, out, diags);
}
