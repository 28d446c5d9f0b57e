// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel feature table and what follows from a probe of it: the
 * verdict, the JSON and the text of `ksplit probe`. No syscalls here (the
 * probes are in probe.c), so the unit tests feed it any kernel they like.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath/features.h"

/*
 * Newest first among the required ones, so a refusal names the feature
 * that sets the minimum version first. "since" is the mainline release;
 * the README's table says on which kernel each row was checked.
 */
static const struct ks_feat_info feats[KS_FEAT_N] = {
	[KS_FEAT_BTF] = { "kernel BTF", "5.4", KS_USE_REQUIRED,
		"CO-RE: the programs' reads of struct bpf_sock_addr and bpf_sock_ops are relocated against /sys/kernel/btf/vmlinux",
		"libbpf cannot relocate the programs (a kernel built without CONFIG_DEBUG_INFO_BTF)" },
	[KS_FEAT_SOCK_ADDR] = { "cgroup sock_addr hooks", "5.8", KS_USE_REQUIRED,
		"the split: connect4/6 and sendmsg4/6 rewrite the VIP, recvmsg4/6 and getpeername4/6 (5.8) show it back",
		"no hook to steer connections at" },
	[KS_FEAT_SK_STORAGE] = { "sk_storage in sock_addr programs", "5.10", KS_USE_REQUIRED,
		"the per-socket record of the VIP (getpeername, UDP replies, drain, passive health)",
		"no place to remember which VIP a socket was steered from" },
	[KS_FEAT_ATOMIC_FETCH] = { "BPF atomics with fetch", "5.12", KS_USE_REQUIRED,
		"passive health: fetch_add counts consecutive failures, cmpxchg lets one CPU win an ejection",
		"the verifier refuses the programs (\"BPF_STX uses reserved fields\"); there is no build without them" },
	[KS_FEAT_BPF_LOOP] = { "bpf_loop", "5.17", KS_USE_REQUIRED,
		"the endpoint scans of the pick and the search of a UDP socket's 16 VIPs, verified once instead of unrolled",
		"no unrolled build: sendmsg's unrolled search exceeds the verifier's budget" },
	[KS_FEAT_SET_RETVAL] = { "bpf_set_retval", "5.18", KS_USE_FALLBACK,
		"connect() to a refused share fails with ECONNREFUSED",
		"connect() to a refused share fails with EPERM instead" },
	[KS_FEAT_SOCK_DESTROY] = { "bpf_sock_destroy", "6.5", KS_USE_NONE,
		"nothing",
		"not needed: drain destroys sockets with sock_diag SOCK_DESTROY from the agent (CONFIG_INET_DIAG_DESTROY)" },
	[KS_FEAT_TCX] = { "tcx links", "6.6", KS_USE_FALLBACK,
		"--tc-iface attaches the per-packet programs through pinned tcx links",
		"--tc-iface attaches them as clsact + cls_bpf filters (not pinned: `ksplit down` removes them in the agent's network namespace)" },
};

static const char *const use_names[] = {
	[KS_USE_REQUIRED] = "required",
	[KS_USE_FALLBACK] = "fallback",
	[KS_USE_NONE] = "unused",
};

const struct ks_feat_info *ks_feat_info(enum ks_feat f)
{
	return (unsigned)f < KS_FEAT_N ? &feats[f] : NULL;
}

/* "5.17" > "5.8": compared as numbers, major then minor. */
static int version_cmp(const char *a, const char *b)
{
	char *end;
	long ma = strtol(a, &end, 10), mi = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
	long mb = strtol(b, &end, 10), ni = *end == '.' ? strtol(end + 1, NULL, 10) : 0;

	if (ma != mb)
		return ma < mb ? -1 : 1;
	return mi < ni ? -1 : mi > ni;
}

int ks_features_verdict(const struct ks_features *f, char *msg, size_t len)
{
	const char *need = NULL;
	size_t used = 0;
	int i, n = 0;

	msg[0] = '\0';
	for (i = 0; i < KS_FEAT_N; i++) {
		if (feats[i].use != KS_USE_REQUIRED || f->state[i] != KS_FEAT_UNKNOWN)
			continue;
		snprintf(msg, len, "cannot probe the kernel for %s: %s (ksplit probe needs root or CAP_BPF)",
			 feats[i].name, strerror(-f->err[i]));
		return -EPERM;
	}
	for (i = 0; i < KS_FEAT_N; i++) {
		if (feats[i].use != KS_USE_REQUIRED || f->state[i] == KS_FEAT_PRESENT)
			continue;
		if (used < len)
			used += snprintf(msg + used, len - used, "%s%s (Linux %s)", n++ ? ", " : "this kernel lacks ",
					 feats[i].name, feats[i].since);
		if (!need || version_cmp(feats[i].since, need) > 0)
			need = feats[i].since;
	}
	if (!n)
		return 0;
	if (used < len)
		snprintf(msg + used, len - used, "; ksplit needs Linux %s or later (`ksplit probe` lists each feature)",
			 need);
	return -EOPNOTSUPP;
}

struct json_object *ks_features_json(const struct ks_features *f, const char *kernel)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	char msg[512];
	int i, err = ks_features_verdict(f, msg, sizeof(msg));

	json_object_object_add(o, "kernel", json_object_new_string(kernel));
	json_object_object_add(o, "ok", json_object_new_boolean(!err));
	if (err)
		json_object_object_add(o, "verdict", json_object_new_string(msg));
	for (i = 0; i < KS_FEAT_N; i++) {
		struct json_object *e = json_object_new_object();
		const struct ks_feat_info *fi = &feats[i];

		json_object_object_add(e, "name", json_object_new_string(fi->name));
		json_object_object_add(e, "since", json_object_new_string(fi->since));
		json_object_object_add(e, "use", json_object_new_string(use_names[fi->use]));
		json_object_object_add(e, "present", f->state[i] == KS_FEAT_UNKNOWN ? NULL :
				       json_object_new_boolean(f->state[i] == KS_FEAT_PRESENT));
		if (f->state[i] == KS_FEAT_UNKNOWN)
			json_object_object_add(e, "probe_error", json_object_new_string(strerror(-f->err[i])));
		json_object_object_add(e, "used_for", json_object_new_string(fi->used_for));
		json_object_object_add(e, "without", json_object_new_string(fi->without));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "features", a);
	return o;
}

static const char *str_of(struct json_object *o, const char *key)
{
	return json_object_get_string(json_object_object_get(o, key));
}

void ks_features_text(FILE *out, struct json_object *o)
{
	struct json_object *a = json_object_object_get(o, "features"), *e, *p;
	size_t i;

	fprintf(out, "kernel %s\n", str_of(o, "kernel"));
	for (i = 0; i < json_object_array_length(a); i++) {
		const char *use, *have;

		e = json_object_array_get_idx(a, i);
		use = str_of(e, "use");
		p = json_object_object_get(e, "present");
		have = !p ? "?" : json_object_get_boolean(p) ? "yes" : "no";
		fprintf(out, "  %-4s %-34s %-5s %s", have, str_of(e, "name"), str_of(e, "since"), use);
		if (!p)
			fprintf(out, "%*s cannot probe: %s", 9 - (int)strlen(use), "", str_of(e, "probe_error"));
		else if (!json_object_get_boolean(p) && strcmp(use, "required"))
			fprintf(out, "%*s %s", 9 - (int)strlen(use), "", str_of(e, "without"));
		fputc('\n', out);
	}
	if (json_object_get_boolean(json_object_object_get(o, "ok")))
		fprintf(out, "ksplit can run on this kernel\n");
}
