// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "model.h"

/* Editors and kubelet write in several steps; apply once the burst is over. */
#define DEBOUNCE_MS 100

int ks_agent_load_image(const char *const *paths, size_t n, struct ks_image *img)
{
	struct ks_diags diags = {};
	struct ks_model m = {};
	char q[4096];
	size_t i;
	int err;

	err = ks_model_load(paths, n, &m, &diags);
	for (i = 0; i < diags.n; i++) {
		ks_log_quote(q, sizeof(q), diags.v[i].msg);
		if (diags.v[i].warning)
			pr_warn("config warning", "detail=%s", q);
		else
			pr_warn("config error", "detail=%s", q);
	}
	if (err) {
		pr_warn("config rejected; the last good config stays in force", "errors=%zu",
			diags.n_errors);
		goto out;
	}
	err = ks_image_build(&m, img);
	if (err)
		pr_warn("cannot build map image", "err=%d", err);
out:
	ks_model_free(&m);
	ks_diags_free(&diags);
	return err;
}

static int apply_config(struct ks_dp *dp, const struct ks_agent_opts *o)
{
	struct ks_drain_target *gone = NULL;
	struct ks_apply_stats st;
	struct ks_image img = {};
	struct timespec t0, t1;
	unsigned int destroyed = 0;
	size_t n_gone = 0;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = ks_agent_load_image(o->configs, o->n_configs, &img);
	if (err)
		return err;
	err = ks_dp_apply_gone(dp, &img, &st, &gone, &n_gone);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* After the apply no new connect reaches them; now cut the old ones. */
	if (!err && n_gone && !o->no_destroy) {
		int e = ks_drain(ks_dp_cgroup(dp), gone, n_gone, &destroyed);

		if (e)
			pr_warn("drain incomplete", "endpoints=%zu err=%d", n_gone, e);
		else
			pr_info("drained removed endpoints", "endpoints=%zu sockets_destroyed=%u",
				n_gone, destroyed);
	}
	free(gone);
	if (err) {
		pr_warn("config not applied; the last good config stays in force", "err=%d", err);
	} else {
		pr_info("config applied",
			"services=%zu added=%u changed=%u removed=%u unchanged=%u backends_written=%u ms=%.3f",
			img.n, st.added, st.changed, st.removed, st.unchanged, st.backends_written,
			(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
	ks_image_free(&img);
	return err;
}

/* Watch the directory that holds each path: renames (ConfigMap ..data swaps) show there. */
static int add_watches(int ifd, const struct ks_agent_opts *o)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	char buf[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < o->n_configs; i++) {
		const char *dir = o->configs[i];

		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(buf, sizeof(buf), "%s", o->configs[i]);
			dir = dirname(buf);
		}
		if (inotify_add_watch(ifd, dir, mask) < 0) {
			int err = -errno;

			pr_warn("cannot watch config path", "path=%s err=%d", dir, err);
			return err;
		}
	}
	return 0;
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

static void arm(int tfd, long ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000 } };

	timerfd_settime(tfd, 0, &its, NULL);
}

int ks_agent_run(const struct ks_agent_opts *o)
{
	int sfd = -1, ifd = -1, tfd = -1, efd = -1, err;
	struct epoll_event ev, evs[4];
	struct ks_image img = {};
	struct ks_dp *dp = NULL;
	bool have_image;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ifd < 0 || tfd < 0 || efd < 0) {
		err = -errno;
		goto out;
	}
	/* Watch before the first load so that no edit between load and watch is lost. */
	err = add_watches(ifd, o);
	if (err)
		goto out;

	have_image = !ks_agent_load_image(o->configs, o->n_configs, &img);
	ks_image_free(&img);
	err = ks_dp_open(&o->dp, &dp);
	if (err)
		goto out;
	if (!have_image && !ks_dp_adopted(dp)) {
		/* Nothing good to keep in force: refuse to run an empty datapath silently. */
		pr_warn("no valid config and no pinned state to keep; exiting");
		ks_dp_close(dp);
		ks_dp_down(o->dp.pin_dir, NULL);
		dp = NULL;
		err = -EINVAL;
		goto out;
	}
	if (have_image)
		apply_config(dp, o);
	else
		pr_warn("keeping the pinned datapath state in force until the config is fixed");

	ev.events = EPOLLIN;
	ev.data.fd = sfd;
	epoll_ctl(efd, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = ifd;
	epoll_ctl(efd, EPOLL_CTL_ADD, ifd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(efd, EPOLL_CTL_ADD, tfd, &ev);
	pr_info("agent running", "configs=%zu", o->n_configs);

	for (;;) {
		int n = epoll_wait(efd, evs, 4, -1), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					pr_info("SIGHUP: re-applying config");
					apply_config(dp, o);
					continue;
				}
				pr_info("stopping; the datapath stays pinned and working",
					"signal=%u", si.ssi_signo);
				err = 0;
				goto out;
			} else if (fd == ifd) {
				char buf[8192] __attribute__((aligned(8)));
				bool rewatch = false, changed = false;
				ssize_t len;

				while ((len = read(ifd, buf, sizeof(buf))) > 0) {
					char *p = buf;

					while (p < buf + len) {
						struct inotify_event *ie = (struct inotify_event *)p;

						if (ie->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
							rewatch = true;
						if (rewatch || relevant(o, ie->len ? ie->name : NULL))
							changed = true;
						p += sizeof(*ie) + ie->len;
					}
				}
				if (rewatch)
					add_watches(ifd, o);
				if (changed)
					arm(tfd, DEBOUNCE_MS);
			} else if (fd == tfd) {
				uint64_t exp;

				if (read(tfd, &exp, sizeof(exp)) == sizeof(exp))
					apply_config(dp, o);
			}
		}
	}
out:
	ks_dp_close(dp);
	if (sfd >= 0)
		close(sfd);
	if (ifd >= 0)
		close(ifd);
	if (tfd >= 0)
		close(tfd);
	if (efd >= 0)
		close(efd);
	return err;
}
