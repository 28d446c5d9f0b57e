/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel features ksplit's datapath relies on: one table (features.c)
 * says, per feature, the first Linux version that has it and what ksplit
 * does without it (a fallback, a refusal, or nothing because it is not
 * used). ks_features_probe (probe.c) asks the running kernel; the verdict,
 * the JSON and the text are pure functions of what it found, so they are
 * unit-tested without root. `ksplit probe` prints them and the agent
 * refuses at start with the verdict's message instead of a verifier error.
 */
#ifndef KSPLIT_DP_FEATURES_H
#define KSPLIT_DP_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <json-c/json.h>

enum ks_feat {
	KS_FEAT_BTF,
	KS_FEAT_SOCK_ADDR,
	KS_FEAT_SK_STORAGE,
	KS_FEAT_ATOMIC_FETCH,
	KS_FEAT_BPF_LOOP,
	KS_FEAT_SET_RETVAL,
	KS_FEAT_SOCK_DESTROY,
	KS_FEAT_TCX,
	KS_FEAT_N
};

/* What ksplit does on a kernel without the feature. */
enum ks_feat_use {
	KS_USE_REQUIRED,	/* refuse to start */
	KS_USE_FALLBACK,	/* start, and do `without` instead */
	KS_USE_NONE,		/* not used; shown for the kernels EKS runs */
};

struct ks_feat_info {
	const char *name;	/* "bpf_loop" */
	const char *since;	/* first Linux version: "5.17" */
	enum ks_feat_use use;
	const char *used_for;	/* what ksplit needs it for */
	const char *without;	/* the fallback, or why a refusal */
};

enum ks_feat_state { KS_FEAT_MISSING, KS_FEAT_PRESENT, KS_FEAT_UNKNOWN };

struct ks_features {
	enum ks_feat_state state[KS_FEAT_N];
	int err[KS_FEAT_N];	/* -errno of a probe that could not tell (KS_FEAT_UNKNOWN) */
};

const struct ks_feat_info *ks_feat_info(enum ks_feat f);

/* Ask the running kernel (needs CAP_BPF or root; a probe refused is UNKNOWN). */
void ks_features_probe(struct ks_features *out);

/*
 * 0 when ksplit can run here. -EOPNOTSUPP when a required feature is
 * missing: msg names each one with its Linux version, and the version to
 * run. -EPERM when a required feature could not be probed.
 */
int ks_features_verdict(const struct ks_features *f, char *msg, size_t len);

/* {"ok": ..., "verdict": "...", "features": [{name, since, use, present, ...}]} */
struct json_object *ks_features_json(const struct ks_features *f, const char *kernel);
/* The text of `ksplit probe`, from that JSON. */
void ks_features_text(FILE *out, struct json_object *o);

#endif
