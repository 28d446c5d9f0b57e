/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The config source API: manifests in, a resolved ks_model (config/model.h)
 * and diagnostics out. Everything behind it lives in config/.
 */
#ifndef KSPLIT_CONFIG_H
#define KSPLIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/diag.h"
#include "config/model.h"

/* How a load judges what it reads. */
struct ks_load_opts {
	/* Loopback VIPs (127.0.0.0/8, ::1) redirect node-local traffic: only tests, demo, bench. */
	bool allow_loopback_vips;
};

/*
 * The objects of the last load, kept by a long-running caller (the agent) so
 * that an object refused on its own, or a file that cannot be read or parsed,
 * keeps its last good version in force instead of vanishing.
 */
struct ks_objects;
void ks_objects_free(struct ks_objects *o);

/*
 * Load every *.yaml and *.yml file under the given paths (files or directories,
 * directories are read non-recursively in name order, "..data"-style hidden
 * entries skipped), validate, and resolve. Returns 0 and fills *out when there
 * are no errors; returns -EINVAL when diags holds at least one error (out is
 * left empty); -errno on I/O failure (also reported in diags).
 */
int ks_model_load(const char *const *paths, size_t n_paths,
		  struct ks_model *out, struct ks_diags *diags);

/* Same, from in-memory buffers (name is used in diagnostics). For tests and the fuzzer. */
/*
 * The agent's load. A bad object is refused alone (an error in diags, a
 * verdict in out->routes) and the rest is resolved; a file that cannot be
 * read or parsed loses only its own objects. With keep, a refused object or
 * file takes its version from *keep, and *keep becomes this load's objects.
 * 0 with out filled (even with errors in diags), or -ENOMEM.
 */
int ks_model_load_opts(const struct ks_load_opts *o, const char *const *paths, size_t n_paths,
		       struct ks_objects **keep, struct ks_model *out, struct ks_diags *diags);

/* ks_model_load_opts from in-memory buffers, without last good versions. */
int ks_model_load_buffers_opts(const struct ks_load_opts *o, const char *const *names,
			       const char *const *bufs, const size_t *lens, size_t n,
			       struct ks_model *out, struct ks_diags *diags);

/*
 * The API source's load: one buffer per object (a JSON object's text is
 * read with json-c, any other as YAML: config/manifest.h), named
 * "resource/ns/name", judged like ks_model_load_opts, with last good
 * versions kept in *keep. reuse (may be NULL): reuse[i] says buffer i is
 * unchanged since *keep was loaded, so its parsed objects are taken from
 * there instead of parsing it again; bufs[i] may then be NULL (the source
 * dropped the text), and -ESTALE says *keep did not have them (a failed
 * load lost them): the source must hand the text again. held (may be
 * NULL): held[i] says *keep now holds buffer i's objects parsed, so the
 * next load can take them from there.
 */
int ks_model_load_objects(const struct ks_load_opts *o, const char *const *names,
			  const char *const *bufs, const size_t *lens, const bool *reuse, size_t n,
			  struct ks_objects **keep, bool *held, struct ks_model *out,
			  struct ks_diags *diags);

int ks_model_load_buffers(const char *const *names, const char *const *bufs,
			  const size_t *lens, size_t n, struct ks_model *out,
			  struct ks_diags *diags);

/*
 * The incremental load: EndpointSlices changed (names, bufs, lens: the new
 * versions, n of them), and nothing else since keep and m were loaded. p
 * gets the new endpoints of every group of m whose backend is one of their
 * Services, and p->view those VIP entries as they will be, for
 * ks_image_build; keep takes the new slices. Commit p into m once the
 * datapath has them. A full load of the same objects gives the same model
 * (config/patch.c says why). -EAGAIN: not a change this path takes (a new
 * or deleted slice, a bad one, another kind): load in full; keep and m are
 * untouched then. -ENOMEM.
 */
struct ksm_group_patch {
	size_t svc, group;		/* m->svcs[svc].groups[group] */
	size_t n_eps;
	struct ksm_endpoint *eps;
};

struct ks_model_patch {
	size_t n;
	struct ksm_group_patch *v;
	struct ks_model view;		/* shallow: m's strings, v's endpoints */
};

int ks_model_patch_slices(struct ks_objects *keep, struct ks_model *m, const char *const *names,
			  const char *const *bufs, const size_t *lens, size_t n,
			  struct ks_model_patch *p, struct ks_diags *d);
void ks_model_patch_commit(struct ks_model *m, struct ks_model_patch *p);
/*
 * Builds m's backend Service -> group index now (the first patch would
 * otherwise: 50,000 groups are sorted once, off the event's path). 0 or -ENOMEM.
 */
int ks_model_index_deps(struct ks_model *m);
void ks_model_patch_free(struct ks_model_patch *p);

#endif /* KSPLIT_CONFIG_H */
