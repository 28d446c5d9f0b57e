/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's inotify watches on its config paths. */
#ifndef KSPLIT_AGENT_WATCH_H
#define KSPLIT_AGENT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/inotify.h>

#include "agent/agent.h"

/*
 * One inotify watch. A config directory is watched for its entries, and its
 * parent for the directory itself, so that `mv dir away; mkdir dir` is seen
 * and the watch moves to the new directory.
 */
struct ks_watch {
	int wd;
	bool parent;			/* watches the parent for entry `base` */
	char base[256];
};

struct ks_watches {
	int ifd;			/* the inotify fd */
	struct ks_watch *v;
	size_t n;
};

/*
 * (Re)establish every watch for o's config paths. At start a missing config
 * path is an error; on a re-watch it is logged and the parent watch waits
 * for it to come back. 0 or -errno.
 */
int ks_watches_add(struct ks_watches *w, const struct ks_agent_opts *o, bool at_start);
/* What one inotify event means: 1 = re-watch and reload, 2 = reload, 0 = nothing. */
int ks_watches_classify(const struct ks_watches *w, const struct ks_agent_opts *o,
			const struct inotify_event *ie);

#endif
