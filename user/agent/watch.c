// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent's inotify watches on its config paths (files mode): what to
 * watch, and what an event means.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agent/watch.h"
#include "common/log.h"

static bool relevant(const struct ks_agent_opts *o, const char *name);

static int watch_add(struct ks_watches *a, const char *path, uint32_t mask, bool parent,
		     const char *base)
{
	struct ks_watch *w;
	int wd;

	/* IN_MASK_ADD: one inode may be both a config dir and another's parent. */
	wd = inotify_add_watch(a->ifd, path, mask | IN_MASK_ADD);
	if (wd < 0)
		return -errno;
	w = realloc(a->v, (a->n + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	a->v = w;
	w = &w[a->n++];
	w->wd = wd;
	w->parent = parent;
	snprintf(w->base, sizeof(w->base), "%s", base ? base : "");
	return 0;
}

/*
 * (Re)establish every watch. At start a missing config path is an error; on
 * a re-watch it is logged and the parent watch waits for it to come back.
 */
int ks_watches_add(struct ks_watches *a, const struct ks_agent_opts *o, bool at_start)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	const uint32_t pmask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM;
	char dir[PATH_MAX], up[PATH_MAX], base[PATH_MAX];
	struct stat st;
	size_t i;
	int err;

	for (i = 0; i < a->n; i++)
		inotify_rm_watch(a->ifd, a->v[i].wd);	/* EINVAL for a shared or gone wd */
	a->n = 0;
	for (i = 0; i < o->n_configs; i++) {
		snprintf(dir, sizeof(dir), "%s", o->configs[i]);
		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(up, sizeof(up), "%s", o->configs[i]);
			snprintf(dir, sizeof(dir), "%s", dirname(up));
		}
		snprintf(up, sizeof(up), "%s", dir);
		snprintf(base, sizeof(base), "%s", basename(up));
		snprintf(up, sizeof(up), "%s", dir);
		if (strcmp(dir, "/") && strcmp(base, ".") && strcmp(base, "..")) {
			err = watch_add(a, dirname(up), pmask, true, base);
			if (err == -ENOMEM)
				return err;
		}
		err = watch_add(a, dir, mask, false, NULL);
		if (err == -ENOMEM)
			return err;
		if (err) {
			pr_warn(at_start ? "cannot watch config path"
					 : "config path is gone; waiting for it to come back",
				"path=%s err=%d", dir, err);
			if (at_start)
				return err;
		}
	}
	return 0;
}

/* What one inotify event means: 1 = re-watch and reload, 2 = reload, 0 = nothing. */
int ks_watches_classify(const struct ks_watches *a, const struct ks_agent_opts *o,
			const struct inotify_event *ie)
{
	const char *name = ie->len ? ie->name : NULL;
	int what = 0;
	size_t i;

	if (ie->mask & IN_Q_OVERFLOW)
		return 1;
	for (i = 0; i < a->n; i++) {
		const struct ks_watch *w = &a->v[i];

		if (w->wd != ie->wd)
			continue;
		if (w->parent) {
			if (name && !strcmp(name, w->base))
				return 1;
			continue;
		}
		if (ie->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
			return 1;
		if (relevant(o, name))
			what = 2;
	}
	return what;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * Only manifests matter: YAML files, the ConfigMap "..data" swap, and files
 * named on the command line. Anything else in the directory (a log file, an
 * editor's swap file) must not trigger re-applies.
 */
static bool relevant(const struct ks_agent_opts *o, const char *name)
{
	size_t i;

	if (!name || !*name)
		return true;
	if (!strncmp(name, "..", 2) || ends_with(name, ".yaml") || ends_with(name, ".yml"))
		return true;
	for (i = 0; i < o->n_configs; i++) {
		const char *base = strrchr(o->configs[i], '/');

		if (!strcmp(base ? base + 1 : o->configs[i], name))
			return true;
	}
	return false;
}

