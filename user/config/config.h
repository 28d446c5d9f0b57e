/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The config source API: manifests in, a resolved ks_model (config/model.h)
 * and diagnostics out. Everything behind it lives in config/.
 */
#ifndef KSPLIT_CONFIG_H
#define KSPLIT_CONFIG_H

#include <stddef.h>

#include "common/diag.h"
#include "config/model.h"

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
int ks_model_load_buffers(const char *const *names, const char *const *bufs,
			  const size_t *lens, size_t n, struct ks_model *out,
			  struct ks_diags *diags);

#endif /* KSPLIT_CONFIG_H */
