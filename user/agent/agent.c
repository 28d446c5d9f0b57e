// SPDX-License-Identifier: BSD-2-Clause
/*
 * `ksplit run`: one single-threaded event loop (epoll) over signals, config
 * changes (inotify, debounced), the prober's fd and a 1 s tick.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_int.h"
#include "agent/load.h"
#include "agent/lock.h"
#include "agent/watch.h"
#include "health/checks.h"
#include "common/log.h"
#include "common/sys.h"
#include "config/config.h"
#include "kube/source.h"
#include "metrics/metrics.h"

/*
 * Editors and kubelet write in several steps; apply once the burst is over,
 * but never later than BURST_MAX_MS after its first event: a file rewritten
 * at 10 Hz for ever must not hold every apply off for ever.
 */
#define DEBOUNCE_MS 100
#define BURST_MAX_MS 200
#define KUBE_DEBOUNCE_MS 2
/* How long a start waits for the API's first lists before it goes on without them. */
#define KUBE_SYNC_MS 30000
/* While another agent holds the pin dir, look again this often. */
#define LOCK_POLL_MS 200

/* How long an adopting agent waits for first verdicts before it applies anyway. */
#define HOLD_MAX_MS 10000
/* How often the datapath is checked for hooks or pins taken away behind the agent's back. */
#define SELFCHECK_MS 5000

/*
 * Destroy the sockets ksplit steered to endpoints their VIP no longer lists.
 * At start this also finds those that a crash between an apply and its
 * drain left behind.
 */
static void drain(struct agent *a, const char *why)
{
	struct ks_drain_stats st;
	int err;

	if (a->o->no_destroy)
		return;
	err = ks_dp_reconcile(a->dp, &st);
	a->reconciled = true;
	if (err)
		pr_warn("drain incomplete", "reason=%s err=%d", why, err);
	pr_info("drained sockets of endpoints that left their VIP",
		"reason=%s netns=%u steered=%u sockets_destroyed=%u refused=%u failed=%u", why,
		st.netns, st.steered, st.destroyed, st.denied, st.failed);
}

/* Whether m may replace the adopted pins now (see need_clean). Releases m when not. */
static bool clean_enough(struct agent *a, struct ks_model *m)
{
	if (!a->need_clean || !a->last_load.errors)
		return true;
	pr_warn("keeping the pinned datapath state in force until the config loads without errors: "
		"a restarted agent has no last good versions of the objects it refuses",
		"errors=%zu", a->last_load.errors);
	ks_agent_model_release(m);
	return false;
}


/*
 * Image model m with the current verdicts and apply it; drain what left.
 * some: m holds only VIP entries that changed (an incremental load's
 * view), each already in force; the others stay as they are.
 */
static int apply_model(struct agent *a, const struct ks_model *m, bool some, const char *why)
{
	struct ks_drain_target *gone = NULL;
	struct ks_health_view hv;
	struct ks_apply_stats st;
	struct ks_image img = {};
	uint64_t t0 = now_ms(), t0_us = now_us(), t_img, t_dp;
	char since[96] = "";
	size_t n_gone = 0;
	int err;

	/* Only a whole image takes every verdict in. */
	if (!some)
		a->dirty = false;
	ks_checks_view(a->checks, &hv);
	err = ks_image_build_health(m, &hv, &img);
	if (err) {
		pr_warn("cannot build map image", "err=%d", err);
		return err;
	}
	t_img = now_us();
	err = some ? ks_dp_apply_some(a->dp, &img, &st, &gone, &n_gone)
		   : ks_dp_apply_gone(a->dp, &img, &st, &gone, &n_gone);
	t_dp = now_us();
	pr_debug("apply timing", "incremental=%d image_us=%llu maps_us=%llu", some,
		 (unsigned long long)(t_img - t0_us), (unsigned long long)(t_dp - t_img));
	if (err) {
		a->mx.apply_errors++;
		pr_warn("config not applied; the last good config stays in force", "err=%d", err);
		goto out;
	}
	ks_agent_log_flags(&img);
	/* After the apply no new connect reaches them; now cut the old ones. */
	if (n_gone || !a->reconciled)
		drain(a, a->reconciled ? "apply" : "start");
	agent_metrics_applied(a, t0_us);
	a->need_clean = false;
	/*
	 * publish_ms: until the last ks_services write (new connects see the
	 * new state); ms: until apply returned (old readers done, drained).
	 * A change event's apply also says how long after the event each was.
	 */
	if (a->event_us)
		snprintf(since, sizeof(since), " event_publish_ms=%.3f event_ms=%.3f",
			 (t0_us + st.publish_us - a->event_us) / 1e3, (now_us() - a->event_us) / 1e3);
	pr_info("config applied",
		"reason=%s services=%zu added=%u changed=%u removed=%u unchanged=%u backends_written=%u ms=%llu publish_ms=%.3f%s",
		why, img.n, st.added, st.changed, st.removed, st.unchanged, st.backends_written,
		(unsigned long long)(now_ms() - t0), st.publish_us / 1e3, since);
out:
	free(gone);
	ks_image_free(&img);
	return err;
}

static int apply_image(struct agent *a, const char *why)
{
	return apply_model(a, a->model, false, why);
}

/*
 * Read and judge the config (files or the API), and point the prober at it.
 * A bad object is refused alone (logged, its last good version kept in
 * a->objects); NULL only when no model can be built at all.
 */
static struct ks_model *load_config(struct agent *a)
{
	struct ks_model *m = ks_agent_load(a->o, a->kube, &a->objects, &a->last_load);
	int err;

	if (!m)
		return NULL;
	err = ks_checks_set_model(a->checks, m);
	if (err) {
		pr_warn("config not loaded; the last good config stays in force", "err=%d", err);
		ks_agent_model_release(m);
		m = NULL;
	}
	return m;
}

/*
 * A new model becomes the one in force only once it is in the maps: if the
 * apply fails (it does not fit), the old model, its maps and its health
 * targets all stay.
 */
/*
 * The incremental path (issue 11): when only EndpointSlices changed, only
 * the VIP entries whose groups use them are re-resolved, imaged and
 * written; "config applied" says reason=endpointslices. false: not such a
 * change, or its apply failed: load in full (the kept objects already hold
 * the new slices, so that load has them).
 */
static bool reload_slices(struct agent *a)
{
	struct ks_model_patch p;

	if (!a->kube || !a->model || a->hold || a->need_clean || a->objects_ahead ||
	    ks_agent_patch(a->kube, a->objects, a->model, &p))
		return false;
	if (apply_model(a, &p.view, true, "endpointslices")) {
		ks_model_patch_free(&p);
		a->objects_ahead = true;
		return false;
	}
	ks_model_patch_commit(a->model, &p);
	agent_metrics_loaded(a, true);
	/* Health targets are endpoints: the prober follows them. */
	if (a->model->n_health)
		ks_checks_set_model(a->checks, a->model);
	return true;
}

/* changed: a change event (not SIGHUP, which loads in full), may take the incremental path. */
static void reload(struct agent *a, bool changed, const char *why)
{
	struct ks_model *m;

	if (changed && reload_slices(a))
		return;
	m = load_config(a);
	a->objects_ahead = true;
	agent_metrics_loaded(a, m != NULL);
	if (!m || !clean_enough(a, m))
		return;
	if (!a->hold && apply_model(a, m, false, why)) {
		if (a->model)
			ks_checks_set_model(a->checks, a->model);
		ks_agent_model_release(m);
		ks_agent_trim_heap(why);
		return;
	}
	/* While holding, the first apply (at the end of the hold) uses this model. */
	ks_agent_model_release(a->model);
	a->model = m;
	a->objects_ahead = false;
	ks_kube_status(a->kube, m);
	ks_agent_trim_heap(why);
}

static void verdict_changed(void *ctx)
{
	((struct agent *)ctx)->dirty = true;
}

static bool recovered_backend(void *ctx, const struct ks_backend *be)
{
	struct agent *a = ctx;
	struct ksm_addr addr = { .family = be->family };

	memcpy(addr.bytes, be->addr, be->family == KS_FAMILY_V4 ? 4 : 16);
	return ks_checks_recovered(a->checks, &addr, ntohs(be->port));
}

/* Endpoints whose active checks recovered get their passive ejection lifted. */
static void uneject_recovered(struct agent *a)
{
	unsigned int n = 0;

	if (!ks_checks_n_recovered(a->checks))
		return;
	if (!ks_dp_uneject(a->dp, recovered_backend, a, &n) && n)
		pr_info("passive ejection ended: active checks recovered", "endpoints=%u", n);
	ks_checks_clear_recovered(a->checks);
}

/* A fresh datapath that never served: detach and unpin it on the way out. */
static void abandon(struct agent *a)
{
	ks_dp_close(a->dp);
	ks_dp_down(a->o->dp.pin_dir, NULL);
	a->dp = NULL;
}

/*
 * The first apply of the agent's life. If it fails (the config does not fit)
 * a fresh agent has nothing in force and stops; an adopting one keeps the
 * pinned state and drops the refused model.
 */
static void first_apply(struct agent *a, const char *why)
{
	static const struct ks_model none;

	if (!a->model || !apply_image(a, why)) {
		ks_agent_trim_heap(why);
		return;
	}
	if (!ks_dp_adopted(a->dp)) {
		pr_warn("the config cannot be applied and there is no pinned state to keep; exiting");
		a->fatal = -E2BIG;
		return;
	}
	ks_checks_set_model(a->checks, &none);
	ks_agent_model_release(a->model);
	a->model = NULL;
	pr_warn("keeping the pinned datapath state in force until the config is fixed");
}

/* ---- datapath self-check: put back what was taken away (datapath/selfcheck.c) ---- */

static void selfcheck(struct agent *a)
{
	struct ks_dp_check c = {};

	a->next_check_ms = now_ms() + SELFCHECK_MS;
	ks_dp_selfcheck(a->dp, &c);
	a->mx.tc_relinked += c.tc_relinked;
	a->mx.tc_ct_swept += c.tc_swept;
}

/*
 * Whether the pins outlive this process: a bpffs that the agent mounted in
 * a mount namespace of its own dies with the namespace. Said at start (a
 * warning: it works until then) and at stop, where "stays pinned" would
 * otherwise be a lie.
 */
static enum ks_pin_fate pin_fate(const struct agent *a, char *why, size_t len)
{
	char raw[256];
	enum ks_pin_fate f;

	f = ks_dp_pin_fate(a->dp, raw, sizeof(raw));
	ks_log_quote(why, len, raw);
	return f;
}

static void say_stopping(struct agent *a, unsigned int signo)
{
	struct ks_dp_check c = {};
	char why[300];

	/* A last look, so that "working" is checked, not assumed. */
	ks_dp_selfcheck(a->dp, &c);
	switch (pin_fate(a, why, sizeof(why))) {
	case KS_PINS_OUTLIVE:
		if (c.broken)
			pr_error("stopping; the datapath stays pinned but is broken (see above)",
				 "signal=%u still_broken=%u", signo, c.broken);
		else
			pr_info("stopping; the datapath stays pinned and working", "signal=%u", signo);
		break;
	case KS_PINS_NS_BOUND:
		pr_warn("stopping; the datapath stays pinned only as long as this mount namespace",
			"signal=%u detail=%s", signo, why);
		break;
	case KS_PINS_VANISH:
		pr_error("stopping; the datapath goes away with this agent: every VIP stops being served",
			 "signal=%u detail=%s", signo, why);
		break;
	}
}
/* ---- end of the datapath self-check ---- */

/* Periodic work: end the start-up hold once verdicts are in, or at its deadline. */
static void tick(struct agent *a)
{
	if (now_ms() >= a->next_check_ms)
		selfcheck(a);
	if (a->hold && (ks_checks_settled(a->checks) || now_ms() >= a->hold_until_ms)) {
		a->hold = false;
		first_apply(a, "first-verdicts");
	}
}

static void arm(int tfd, long ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000 } };

	timerfd_settime(tfd, 0, &its, NULL);
}

/*
 * A config event: apply debounce ms after the last one, at most
 * BURST_MAX_MS after the first. Files wait DEBOUNCE_MS for an editor's
 * steps; API events only KUBE_DEBOUNCE_MS, to coalesce a rollout's burst
 * into one apply without adding latency. 2 ms is enough: the events of one
 * read are taken together anyway, and those that arrive while an apply
 * runs are taken by the next one, so a burst costs few applies.
 */
static void config_event(struct agent *a, int tfd, long debounce)
{
	uint64_t now = now_ms(), cap;
	long delay = debounce;

	if (!a->burst_first_ms) {
		a->burst_first_ms = now;
		a->event_us = now_us();
	}
	cap = a->burst_first_ms + BURST_MAX_MS;
	if (now + (uint64_t)debounce > cap)
		delay = cap > now ? (long)(cap - now) : 1;
	arm(tfd, delay);
}

/*
 * Open (or adopt) the datapath and its tc hooks. Adopted, the pinned state
 * is in force from now on: the sockets are reconciled with it, and only a
 * load without errors replaces it (need_clean).
 */
static int open_datapath(struct agent *a)
{
	char why[300];
	int err;

	err = ks_dp_open(&a->o->dp, &a->dp);
	if (err)
		return err;
	err = ks_dp_tc_start(a->dp, a->o->tc_ifaces, a->o->n_tc_ifaces, a->o->tc_clsact);
	if (err) {
		if (!ks_dp_adopted(a->dp))
			abandon(a);
		return err;
	}
	if (ks_dp_adopted(a->dp)) {
		drain(a, "start");
		a->need_clean = true;
	}
	if (pin_fate(a, why, sizeof(why)) != KS_PINS_OUTLIVE)
		pr_warn("the pin dir is on a bpffs private to this agent's mount namespace: the datapath will not outlive it",
			"detail=%s", why);
	return 0;
}

/*
 * Connect the API source and wait for its first lists (every kind listed, or
 * found not served), at most KUBE_SYNC_MS, still honouring SIGTERM. An API
 * that does not answer is no reason to stop: the pinned state stays in force
 * and the loop applies once the lists arrive.
 */
static int kube_start(struct agent *a, int sfd)
{
	struct ks_kube_opts ko = { .kubeconfig = a->o->kubeconfig,
				   .classes = a->o->gateway_classes,
				   .n_classes = a->o->n_gateway_classes,
				   .namespace = a->o->status_namespace, .identity = a->o->identity,
				   .lease_duration_s = a->o->lease_duration_s,
				   .lease_renew_s = a->o->lease_renew_s };
	uint64_t until = now_ms() + KUBE_SYNC_MS;
	char why[512] = "";
	int err;

	err = ks_kube_new(&ko, &a->kube, why, sizeof(why));
	if (err) {
		pr_error("cannot use the Kubernetes API", "err=%d detail=%s", err, why);
		return err;
	}
	while (!ks_kube_synced(a->kube) && now_ms() < until) {
		struct pollfd p[2] = { { .fd = ks_kube_fd(a->kube), .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };

		if (poll(p, 2, 100) > 0 && (p[1].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
				pr_info("stopping while waiting for the API's first lists",
					"signal=%u", si.ssi_signo);
				return -EINTR;
			}
		}
		ks_kube_process(a->kube);
	}
	if (ks_kube_synced(a->kube)) {
		struct ks_kube_stats st;

		ks_kube_stats(a->kube, &st);
		pr_info("kube: first lists received", "objects=%zu kinds_served=%zu", st.objects,
			st.served);
	} else {
		pr_warn("kube: the API's first lists did not arrive in time; going on without them",
			"waited_ms=%d", KUBE_SYNC_MS);
	}
	return 0;
}

/*
 * Take the pin dir's lock before touching anything pinned. With wait, poll
 * until the holder exits (a DaemonSet rolling update), still honouring
 * SIGTERM; without, fail at once. Returns the lock fd or -errno.
 */
static int take_lock(const struct ks_agent_opts *o, int sfd)
{
	const char *pin_dir = o->dp.pin_dir ? o->dp.pin_dir : KS_DEFAULT_PIN_DIR;
	pid_t holder = 0, told = -1;
	struct pollfd pfd = { .fd = sfd, .events = POLLIN };
	int fd;

	for (;;) {
		fd = ks_lock_try(pin_dir, &holder);
		if (fd != -EBUSY)
			break;
		if (o->no_wait) {
			pr_error("another agent holds the pin dir; exiting (--no-wait)",
				 "pin_dir=%s holder_pid=%d", pin_dir, (int)holder);
			return -EBUSY;
		}
		if (holder != told) {
			pr_warn("another agent holds the pin dir; waiting for it to exit",
				"pin_dir=%s holder_pid=%d", pin_dir, (int)holder);
			told = holder;
		}
		if (poll(&pfd, 1, LOCK_POLL_MS) > 0) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
				pr_info("stopping while waiting for the pin dir lock",
					"signal=%u", si.ssi_signo);
				return -EINTR;
			}
		}
	}
	if (fd < 0)
		pr_error("cannot take the pin dir lock", "pin_dir=%s err=%d", pin_dir, fd);
	else if (told != -1)
		pr_info("took over the pin dir", "pin_dir=%s", pin_dir);
	return fd;
}

int ks_agent_run(const struct ks_agent_opts *o)
{
	int sfd = -1, ifd = -1, tfd = -1, kfd = -1, efd = -1, lfd = -1, pfd, err;
	struct itimerspec every = { { TICK_MS / 1000, 0 }, { TICK_MS / 1000, 0 } };
	struct agent a = { .o = o };
	struct epoll_event ev, evs[8];
	sigset_t mask;

	/* A peer that went away must cost an EPIPE, never the agent (OpenSSL writes with write(2)). */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	kfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ifd < 0 || tfd < 0 || kfd < 0 || efd < 0) {
		err = -errno;
		goto out;
	}
	a.watches.ifd = ifd;
	lfd = take_lock(o, sfd);
	if (lfd < 0) {
		err = lfd;
		goto out;
	}
	err = ks_checks_new(&a.checks, verdict_changed, &a);
	if (!err)
		err = agent_metrics_start(&a);
	if (err)
		goto out;
	/* Watch before the first load so that no edit between load and watch is lost. */
	err = ks_watches_add(&a.watches, o, true);
	if (err)
		goto out;

	/*
	 * From the API, the datapath (programs verified, maps made: seconds)
	 * is opened while the first lists download, not after them.
	 */
	if (o->kubeconfig || o->in_cluster) {
		err = open_datapath(&a);
		if (!err)
			err = kube_start(&a, sfd);
		if (err) {
			if (a.dp && !ks_dp_adopted(a.dp))
				abandon(&a);
			goto out;
		}
	}
	/* A partial list is no config: without the first lists, the pinned state stays. */
	if (!a.kube || ks_kube_synced(a.kube))
		a.model = load_config(&a);
	agent_metrics_loaded(&a, a.model != NULL);
	if (!a.dp) {
		err = open_datapath(&a);
		if (err)
			goto out;
	}
	if (a.model && !clean_enough(&a, a.model))
		a.model = NULL;
	if (!a.model && !ks_dp_adopted(a.dp) && !a.kube) {
		/* Nothing good to keep in force: refuse to run an empty datapath silently. */
		pr_warn("no valid config and no pinned state to keep; exiting");
		abandon(&a);
		err = -EINVAL;
		goto out;
	}
	if (!a.model) {
		pr_warn("keeping the pinned datapath state in force until the config is fixed");
	} else if (ks_checks_targets(a.checks)) {
		/*
		 * Every endpoint is checked at once at start. Imaging before the
		 * first verdicts would mark every checked endpoint unchecked: a
		 * restart would move traffic around (the pinned state keeps
		 * serving meanwhile), a fresh start would panic for nothing.
		 */
		a.hold = true;
		a.hold_until_ms = now_ms() + HOLD_MAX_MS;
		pr_info("first apply waits for the first health verdicts",
			"targets=%zu max_ms=%d", ks_checks_targets(a.checks), HOLD_MAX_MS);
	} else {
		first_apply(&a, "start");
	}

	if (a.fatal) {
		abandon(&a);
		err = a.fatal;
		goto out;
	}
	ks_kube_status(a.kube, a.model);
	pfd = ks_checks_fd(a.checks);
	{
		/* Every input of the loop; -1 for those this run has none of. */
		int fds[] = { sfd, ifd, tfd, kfd, pfd, lfd, a.kube ? ks_kube_fd(a.kube) : -1,
			      a.metrics ? ks_metrics_fd(a.metrics) : -1, ks_dp_tc_fd(a.dp) };
		size_t i;

		for (ev.events = EPOLLIN, i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if ((ev.data.fd = fds[i]) >= 0)
				epoll_ctl(efd, EPOLL_CTL_ADD, fds[i], &ev);
	}
	timerfd_settime(kfd, 0, &every, NULL);
	pr_info("agent running", "configs=%zu", o->n_configs);

	for (;;) {
		int n = epoll_wait(efd, evs, 8, -1), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t exp;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					pr_info("SIGHUP: re-applying config");
					selfcheck(&a);
					ks_watches_add(&a.watches, o, false);
					reload(&a, false, "sighup");
					continue;
				}
				say_stopping(&a, si.ssi_signo);
				err = 0;
				goto out;
			} else if (fd == ifd) {
				char buf[8192] __attribute__((aligned(8)));
				int what = 0;
				ssize_t len;

				while ((len = read(ifd, buf, sizeof(buf))) > 0) {
					char *p = buf;

					while (p < buf + len) {
						struct inotify_event *ie = (struct inotify_event *)p;
						int w = ks_watches_classify(&a.watches, o, ie);

						if (w && (!what || w < what))
							what = w;
						p += sizeof(*ie) + ie->len;
					}
				}
				if (what == 1)
					ks_watches_add(&a.watches, o, false);
				if (what)
					config_event(&a, tfd, DEBOUNCE_MS);
			} else if (fd == tfd) {
				a.burst_first_ms = 0;
				if (read(tfd, &exp, sizeof(exp)) == sizeof(exp))
					reload(&a, true, "config-change");
				a.event_us = 0;
			} else if (fd == lfd) {
				ks_lock_drain(lfd);
			} else if (fd == kfd) {
				if (read(kfd, &exp, sizeof(exp)) == sizeof(exp))
					tick(&a);
			} else if (a.kube && fd == ks_kube_fd(a.kube)) {
				if (ks_kube_process(a.kube) && ks_kube_synced(a.kube))
					config_event(&a, tfd, KUBE_DEBOUNCE_MS);
			} else if (fd == ks_dp_tc_fd(a.dp)) {
				ks_dp_tc_process(a.dp);
			} else if (a.metrics && fd == ks_metrics_fd(a.metrics)) {
				ks_metrics_dispatch(a.metrics);
			} else if (fd == pfd) {
				err = ks_checks_dispatch(a.checks);
				if (err) {
					pr_warn("health checker failed", "err=%d", err);
					goto out;
				}
			}
		}
		/* Verdicts that changed in this round reach the datapath in one apply. */
		if (a.dirty && !a.hold && a.model)
			apply_image(&a, "health");
		uneject_recovered(&a);
		if (a.fatal) {
			/* Fresh and never applied: leave nothing attached behind. */
			abandon(&a);
			err = a.fatal;
			goto out;
		}
		if (a.hold && ks_checks_settled(a.checks))
			tick(&a);
		a.last_turn_ms = now_ms();
	}
out:
	ks_metrics_free(a.metrics);
	ks_dp_close(a.dp);
	ks_checks_free(a.checks);
	ks_agent_model_release(a.model);
	ks_objects_free(a.objects);
	ks_kube_free(a.kube);
	if (sfd >= 0)
		close(sfd);
	if (ifd >= 0)
		close(ifd);
	if (tfd >= 0)
		close(tfd);
	if (kfd >= 0)
		close(kfd);
	if (efd >= 0)
		close(efd);
	free(a.watches.v);
	/* Last: the next agent may take over only once this one has let go of everything. */
	if (lfd >= 0)
		close(lfd);
	return err;
}
