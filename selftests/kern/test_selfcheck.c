// SPDX-License-Identifier: BSD-2-Clause
/*
 * The datapath taken away behind the running agent's back, as an SRE saw
 * it happen: a link detached by bpftool, `ksplit down` run by hand, the
 * cgroup removed and made again, bpffs mounted privately by the agent. The
 * agent must notice, put it back (the maps still hold the applied state, so
 * the share returns at once) or say at error level what it cannot; status
 * must show a detached hook and exit 1; each cause of a failed start gets
 * its own message.
 *
 * Shares: n = 20,000, sigma 0.31 points at 25/75, tolerance 1.5 points.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link_helpers.h"

#define N		20000
#define TOL		1.5
#define REATTACHED	"level=warn msg=\"datapath hook was taken away; re-attached it\""
/* The agent checks every 5 s on its 1 s tick: a repair takes at most ~6 s; the bound leaves room for a loaded machine. */
#define REPAIR_MAX_MS	12000

static const char *const servers[] = {
	"127.1.0.1:8080", "127.1.0.2:8080", "127.2.0.1:8080", "127.2.0.2:8080",
};

struct sc_test {
	struct kt_agent ag;		/* first: its env is the test's */
	char tmpfs[PATH_MAX];		/* mounted by a test; unmounted at teardown */
	int foreign[2];			/* link fds of foreign programs, or -1 */
};

static int sc_teardown(void **state)
{
	struct sc_test *t = *state;

	if (!t)
		return 0;
	if (t->foreign[0] >= 0)
		close(t->foreign[0]);
	if (t->foreign[1] >= 0)
		close(t->foreign[1]);
	if (t->tmpfs[0])
		umount2(t->tmpfs, MNT_DETACH);
	if (getenv("KT_KEEP_LOG") && t->ag.log[0]) {
		char keep[PATH_MAX + 8];

		/* The env teardown removes /tmp/<tag>-*: keep a copy under another name. */
		snprintf(keep, sizeof(keep), "%s.kept", t->ag.log);
		keep[5] = 'K';	/* /tmp/Kstest-...: outside the glob */
		rename(t->ag.log, keep);
		fprintf(stderr, "agent log kept: %s\n", keep);
	}
	kt_agent_fini(&t->ag);
	free(t);
	*state = NULL;
	return 0;
}

static int sc_setup(void **state)
{
	struct sc_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->foreign[0] = t->foreign[1] = -1;
	*state = t;
	if (kt_agent_init(&t->ag)) {
		/* cmocka skips the teardown when setup fails. */
		sc_teardown(state);
		return -1;
	}
	return 0;
}

/* Manifests for 127.10.0.1:80 -> v1 (127.1.0.x) 25 / v2 (127.2.0.x) 75. */
static void put_manifests(struct sc_test *t)
{
	struct kt_buf b = {};

	kt_yaml_ab(&b, "127.1.0.1 127.1.0.2", "127.2.0.1 127.2.0.2");
	kt_yaml_route(&b, "HTTPRoute", "r", "gw/http", "v1=25 v2=75");
	kt_agent_put(&t->ag, "all.yaml", b.s);
	kt_buf_free(&b);
}

static void agent_start(struct sc_test *t, const char *const *wrap, int expect_applied)
{
	kt_agent_start(&t->ag, wrap, NULL, expect_applied);
}

/* Servers, manifests and a running agent that has applied them. */
static void start_all(struct sc_test *t)
{
	assert_int_equal(kt_servers_start(&t->ag.env, servers, 4), 0);
	put_manifests(t);
	agent_start(t, NULL, 1);
}

static void measure(struct sc_test *t, const char *what)
{
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = N };
	struct kt_result r;
	long v1 = 0;
	int i;

	assert_int_equal(kt_client_run(&t->ag.env, &o, &r), 0);
	kt_result_print(what, &r);
	assert_int_equal(r.failed, 0);
	for (i = 0; i < r.ids.n; i++)
		if (!strncmp(r.ids.key[i], "127.1.", 6))
			v1 += r.ids.count[i];
	kt_assert_share(what, v1, N, 25, TOL);
}

static void live_start(struct sc_test *t, struct kt_client *c)
{
	struct kt_client_opts lo = { .target = "127.10.0.1:80", .mode = KT_TCP, .loop = true,
				     .timeout_s = 240 };
	int64_t end = kt_now_ms() + 10000;

	assert_int_equal(kt_client_start(&t->ag.env, &lo, c), 0);
	while (__atomic_load_n(&c->res->ok, __ATOMIC_RELAXED) < 1000 && kt_now_ms() < end)
		usleep(10000);
	assert_true(c->res->ok >= 1000);
	assert_int_equal(c->res->failed, 0);
}

/*
 * The datapath was broken at t0_ms, when the live client had failed0
 * failures: wait for it to fail (broken) and then to succeed again
 * (repaired). Returns the ms from t0 to the recovery, 0 when 2,000 connects
 * succeeded without one failure (repaired before the client noticed), -1 on
 * timeout.
 */
static long recovery_ms(struct kt_client *c, long failed0, int64_t t0_ms, long timeout_ms)
{
	long ok0 = __atomic_load_n(&c->res->ok, __ATOMIC_RELAXED), ok_mark = -1;

	while (kt_now_ms() - t0_ms < timeout_ms) {
		long failed = __atomic_load_n(&c->res->failed, __ATOMIC_RELAXED);
		long ok = __atomic_load_n(&c->res->ok, __ATOMIC_RELAXED);

		if (ok_mark < 0 && failed > failed0)
			ok_mark = ok;
		else if (ok_mark >= 0 && ok > ok_mark + 20)
			return (long)(kt_now_ms() - t0_ms);
		/* Repaired (SIGHUP) before the client's next connect: never seen broken. */
		else if (ok_mark < 0 && ok > ok0 + 2000)
			return 0;
		usleep(5000);
	}
	return -1;
}

static void live_stop(struct sc_test *t, struct kt_client *c, const char *what)
{
	struct kt_result fin;

	assert_int_equal(kt_client_stop(&t->ag.env, c), 0);
	fin = *c->res;
	kt_client_free(c);
	kt_result_print(what, &fin);
	printf("    refused while broken: %ld\n", fin.err[ECONNREFUSED]);
}

static struct json_object *status_json(struct sc_test *t, int *rc)
{
	struct json_object *st;
	char args[512], *out;

	snprintf(args, sizeof(args), "status --json --pin-dir %s", t->ag.env.pin_dir);
	out = kt_ksplit_run(&t->ag, args, rc);
	st = json_tokener_parse(strchr(out, '{') ? strchr(out, '{') : out);
	free(out);
	assert_non_null(st);
	return st;
}

static struct json_object *hook_json(struct json_object *st, const char *hook)
{
	struct json_object *dp = json_object_object_get(st, "datapath");
	struct json_object *hooks = json_object_object_get(dp, "hooks");
	size_t i;

	for (i = 0; i < json_object_array_length(hooks); i++) {
		struct json_object *h = json_object_array_get_idx(hooks, i);

		if (!strcmp(json_object_get_string(json_object_object_get(h, "hook")), hook))
			return h;
	}
	return NULL;
}

static const char *jget(struct json_object *o, const char *k)
{
	return json_object_get_string(json_object_object_get(o, k));
}

static void assert_status_ok(struct sc_test *t, const char *when)
{
	struct json_object *st;
	int rc;

	st = status_json(t, &rc);
	printf("  [status] %s: exit %d, datapath ok %s, cgroup %s\n", when, rc,
	       jget(json_object_object_get(st, "datapath"), "ok"),
	       jget(json_object_object_get(st, "datapath"), "cgroup"));
	assert_int_equal(rc, 0);
	assert_string_equal(jget(json_object_object_get(st, "datapath"), "cgroup"), t->ag.env.cgroup);
	json_object_put(st);
}

/* rmdir that waits for an exiting client to leave the cgroup. */
static void cgroup_rmdir(const char *cg)
{
	int i;

	for (i = 0; i < 300 && rmdir(cg) && errno == EBUSY; i++)
		usleep(10000);
	assert_int_equal(access(cg, F_OK), -1);
}

static void test_detached_by_bpftool(void **state)
{
	struct sc_test *t = *state;
	struct kt_client live;
	char cmd[128];
	uint32_t id;
	long failed0, ms;
	int64_t t0;
	int round;

	start_all(t);
	live_start(t, &live);
	/*
	 * Round 1 detaches at a random point of the agent's 5 s check period;
	 * round 2 right after the repair of round 1, i.e. just after a check:
	 * the worst case, a whole period. Round 3 sends SIGHUP, which checks
	 * at once.
	 */
	for (round = 1; round <= 3; round++) {
		id = kt_link_id(t->ag.env.pin_dir, "connect4");
		assert_true(id > 0);
		failed0 = live.res->failed;
		t0 = kt_now_ms();
		snprintf(cmd, sizeof(cmd), "bpftool link detach id %u", id);
		assert_int_equal(system(cmd), 0);
		if (round == 3)
			assert_int_equal(kill(t->ag.pid, SIGHUP), 0);
		ms = recovery_ms(&live, failed0, t0, 15000);
		printf("  [repair] round %d: connect4 link %u detached by bpftool%s: connects back after %ld ms\n",
		       round, id, round == 3 ? ", then SIGHUP" : "", ms);
		/*
		 * Functional bounds, not speed (speed is noted above): the period
		 * repairs at all; SIGHUP repairs well before the next periodic
		 * check could (round 3 starts just after one, like round 2).
		 */
		assert_true(round == 3 ? ms >= 0 && ms <= 3000 : ms > 0 && ms <= REPAIR_MAX_MS);
		assert_true(kt_wait_in_file(t->ag.log, REATTACHED " hook=connect4", round, 2000) >= round);
		assert_true(kt_link_id(t->ag.env.pin_dir, "connect4") != id);
	}
	live_stop(t, &live, "live client across the detaches");

	measure(t, "after re-attach, 25/75");
	assert_status_ok(t, "after re-attach");
	kt_agent_stop(&t->ag);
	assert_int_equal(kt_count_in_file(t->ag.log, "stays pinned and working"), 1);
}

static void test_down_while_running(void **state)
{
	struct sc_test *t = *state;
	struct json_object *st, *svc;
	struct kt_client live;
	unsigned int removed = 0;
	long failed0, ms;
	int64_t t0;
	int rc;

	start_all(t);
	live_start(t, &live);
	/* What `ksplit down` does (ks_dp_down), with no flag in the way. */
	failed0 = live.res->failed;
	t0 = kt_now_ms();
	assert_int_equal(ks_dp_down(t->ag.env.pin_dir, &removed), 0);
	printf("  [down] removed %u pinned objects while the agent runs\n", removed);
	assert_true(removed >= 16);
	ms = recovery_ms(&live, failed0, t0, 15000);
	printf("  [repair] after down: connects back after %ld ms\n", ms);
	assert_true(ms > 0 && ms <= REPAIR_MAX_MS);
	assert_true(kt_wait_in_file(t->ag.log, "the pin dir was removed; made it again", 1, 2000) >= 1);
	assert_true(kt_count_in_file(t->ag.log, "pinned maps were removed; pinned them again") >= 1);
	/* connect4 may be back (and the client with it) before the other hooks are logged. */
	assert_true(kt_wait_in_file(t->ag.log, REATTACHED, 9, 5000) >= 9);
	assert_int_equal(kt_count_in_file(t->ag.log, "level=error"), 0);
	live_stop(t, &live, "live client across down");

	/* The re-pinned maps are the agent's own: they still hold the applied service. */
	st = status_json(t, &rc);
	assert_int_equal(rc, 0);
	svc = kt_status_svc(st, "127.10.0.1", 80, "TCP");
	assert_non_null(svc);
	printf("  [status] after repair: rev %ld connections %ld\n", kt_status_field(svc, "rev"),
	       kt_status_field(svc, "connections"));
	assert_true(kt_status_field(svc, "rev") >= 1);
	assert_true(kt_status_field(svc, "connections") > 1000);
	json_object_put(st);
	measure(t, "after down and repair, 25/75");
}

static void test_cgroup_recreated(void **state)
{
	struct sc_test *t = *state;
	struct kt_client live;
	int64_t t0;
	int n;

	start_all(t);
	live_start(t, &live);
	/* Move the client out (it exits), remove the cgroup, make it again. */
	live_stop(t, &live, "live client before the cgroup goes");
	cgroup_rmdir(t->ag.env.cgroup);
	t0 = kt_now_ms();
	n = kt_wait_in_file(t->ag.log, "level=error msg=\"the datapath's cgroup is gone", 1, 8000);
	printf("  [cgroup] removed: the agent said so at error level after %lld ms\n",
	       (long long)(kt_now_ms() - t0));
	assert_true(n >= 1);
	assert_int_equal(mkdir(t->ag.env.cgroup, 0755), 0);
	t0 = kt_now_ms();
	n = kt_wait_in_file(t->ag.log, "the cgroup was removed and made again", 1, 8000);
	assert_true(n >= 1);
	assert_true(kt_wait_in_file(t->ag.log, "msg=\"datapath repaired\" repaired=9", 1, 2000) >= 1);
	printf("  [cgroup] made again: hooks re-attached after %lld ms\n",
	       (long long)(kt_now_ms() - t0));
	measure(t, "re-made cgroup, running agent, 25/75");
	assert_status_ok(t, "re-made cgroup");

	/* A stopped agent's links die with the cgroup; a new agent attaches to the new one. */
	kt_agent_stop(&t->ag);
	cgroup_rmdir(t->ag.env.cgroup);
	assert_int_equal(mkdir(t->ag.env.cgroup, 0755), 0);
	agent_start(t, NULL, 2);
	n = kt_count_in_file(t->ag.log, "msg=\"pinned link is detached") +
	    kt_count_in_file(t->ag.log, "msg=\"pinned link is attached to another cgroup");
	printf("  [restart] on the re-made cgroup: %d hook(s) attached anew, refusals %d\n", n,
	       kt_count_in_file(t->ag.log, "run `ksplit down` first"));
	assert_int_equal(n, 9);
	measure(t, "re-made cgroup, restarted agent, 25/75");
	assert_status_ok(t, "restarted agent");
}

static void test_status_shows_hooks(void **state)
{
	struct sc_test *t = *state;
	struct json_object *st, *h, *f;
	char args[512], path[PATH_MAX], *out;
	int rc, fd;

	start_all(t);
	kt_agent_stop(&t->ag);
	snprintf(args, sizeof(args), "status --pin-dir %s", t->ag.env.pin_dir);
	out = kt_ksplit_run(&t->ag, args, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "datapath: ok, 9/9 hooks attached"));
	free(out);

	/* BPF_LINK_DETACH on the pinned link, the agent stopped: nobody repairs it. */
	snprintf(path, sizeof(path), "%s/link_connect4", t->ag.env.pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_link_detach(fd), 0);
	close(fd);
	/*
	 * Programs of someone else's on the same hooks: on connect6 attached
	 * after ksplit's; on connect4 too, but ksplit's link there is gone and
	 * the new one will come after it.
	 */
	t->foreign[0] = kt_foreign_attach(t->ag.env.cgroup, BPF_CGROUP_INET6_CONNECT, "kt_foreign6");
	assert_true(t->foreign[0] >= 0);
	t->foreign[1] = kt_foreign_attach(t->ag.env.cgroup, BPF_CGROUP_INET4_CONNECT, "kt_foreign4");
	assert_true(t->foreign[1] >= 0);

	out = kt_ksplit_run(&t->ag, args, &rc);
	printf("  [status] connect4 detached: exit %d\n%s", rc, out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "datapath: BROKEN, 8/9 hooks attached"));
	assert_non_null(strstr(out, "  connect4       detached"));
	assert_non_null(strstr(out, "foreign program on connect6"));
	free(out);
	st = status_json(t, &rc);
	assert_int_equal(rc, 1);
	assert_false(json_object_get_boolean(
		json_object_object_get(json_object_object_get(st, "datapath"), "ok")));
	assert_string_equal(jget(hook_json(st, "connect4"), "state"), "detached");
	assert_string_equal(jget(hook_json(st, "connect6"), "state"), "attached");
	h = hook_json(st, "connect6");
	f = json_object_array_get_idx(json_object_object_get(h, "foreign"), 0);
	assert_non_null(f);
	assert_string_equal(jget(f, "name"), "kt_foreign6");
	assert_string_equal(jget(f, "runs"), "after");
	json_object_put(st);

	/* Restarted, the agent attaches connect4 again and reports the foreign programs. */
	agent_start(t, NULL, 2);
	assert_true(kt_count_in_file(t->ag.log, "msg=\"pinned link is detached") == 1);
	assert_true(kt_wait_in_file(t->ag.log, "hook=connect6 prog_id=", 1, 4000) >= 1);
	assert_true(kt_count_in_file(t->ag.log, "prog=kt_foreign6 runs=after") == 1);
	assert_true(kt_count_in_file(t->ag.log, "hook=connect4 prog_id=") == 1);
	assert_true(kt_count_in_file(t->ag.log, "prog=kt_foreign4 runs=before") == 1);
	assert_status_ok(t, "agent restarted");
	out = kt_ksplit_run(&t->ag, args, &rc);
	printf("%s", out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\"kt_foreign4\" runs before ksplit"));
	free(out);
	/* They allow every connect and rewrite nothing: the split is untouched. */
	measure(t, "foreign programs on connect4/6, 25/75");
}

/* Each cause of a refused start has its own message, none blames a pinned map. */
static void expect_refusal(struct sc_test *t, const char *what, const char *cmd,
			   const char *needle)
{
	char full[PATH_MAX * 4], *out;
	int rc;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	out = kt_sh_out(full, &rc);
	printf("  [refused] %s: exit %d\n%s", what, rc, out);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "level=error"));
	assert_non_null(strstr(out, needle));
	assert_null(strstr(out, "another size"));
	free(out);
	(void)t;
}

static void test_refusal_messages(void **state)
{
	struct sc_test *t = *state;
	char cmd[PATH_MAX * 4], dir[PATH_MAX];

	put_manifests(t);
	snprintf(cmd, sizeof(cmd), "%s run " KT_LOOPBACK " --config %s --cgroup %s-nope --pin-dir %s",
		 t->ag.ksplit, t->ag.cfg, t->ag.env.cgroup, t->ag.env.pin_dir);
	expect_refusal(t, "no such cgroup", cmd, "msg=\"cgroup does not exist\"");

	snprintf(dir, sizeof(dir), "/tmp/%s-plain", t->ag.env.tag);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(cmd, sizeof(cmd), "%s run " KT_LOOPBACK " --config %s --cgroup %s --pin-dir %s",
		 t->ag.ksplit, t->ag.cfg, dir, t->ag.env.pin_dir);
	expect_refusal(t, "plain directory as cgroup", cmd, "msg=\"not a cgroup2 directory");

	snprintf(t->tmpfs, sizeof(t->tmpfs), "/tmp/%s-tmpfs", t->ag.env.tag);
	assert_int_equal(mkdir(t->tmpfs, 0700), 0);
	assert_int_equal(mount("kstest", t->tmpfs, "tmpfs", 0, "size=1m"), 0);
	snprintf(cmd, sizeof(cmd), "%s run " KT_LOOPBACK " --config %s --cgroup %s --pin-dir %s/pins",
		 t->ag.ksplit, t->ag.cfg, t->ag.env.cgroup, t->tmpfs);
	expect_refusal(t, "pin dir on tmpfs", cmd, "msg=\"pin dir is not on a bpffs");
	assert_int_equal(umount2(t->tmpfs, MNT_DETACH), 0);
	t->tmpfs[0] = 0;

	snprintf(cmd, sizeof(cmd),
		 "setpriv --bounding-set -sys_admin,-bpf -- %s run " KT_LOOPBACK
		 " --config %s --cgroup %s --pin-dir %s",
		 t->ag.ksplit, t->ag.cfg, t->ag.env.cgroup, t->ag.env.pin_dir);
	expect_refusal(t, "no CAP_SYS_ADMIN nor CAP_BPF", cmd, "missing=CAP_BPF");
	/* None of them got as far as pinning anything. */
	assert_int_equal(access(t->ag.env.pin_dir, F_OK), -1);
	assert_int_equal(kt_cgroup_progs(t->ag.env.cgroup, BPF_CGROUP_INET4_CONNECT), 0);
}

static void test_private_bpffs(void **state)
{
	struct sc_test *t = *state;
	/* A mount namespace of its own where /sys/fs/bpf is not mounted: the agent mounts it. */
	const char *const wrap[] = { "/usr/bin/unshare", "-m", "--propagation", "private",
				     "/bin/sh", "-c", "umount /sys/fs/bpf 2>/dev/null; exec \"$0\" \"$@\"",
				     NULL };
	struct kt_client_opts o = { .target = "127.10.0.1:80", .mode = KT_TCP, .count = 200 };
	struct kt_result r;
	int64_t end;
	int progs;

	assert_int_equal(kt_servers_start(&t->ag.env, servers, 4), 0);
	put_manifests(t);
	agent_start(t, wrap, 1);
	assert_true(kt_count_in_file(t->ag.log, "msg=\"mounting bpffs\"") == 1);
	assert_true(kt_count_in_file(t->ag.log, "the pin dir is on a bpffs private to this agent's mount namespace") == 1);
	/* It works while the agent lives, and the host sees no pins. */
	assert_int_equal(kt_client_run(&t->ag.env, &o, &r), 0);
	assert_int_equal(r.failed, 0);
	assert_int_equal(access(t->ag.env.pin_dir, F_OK), -1);

	kt_agent_stop(&t->ag);
	assert_int_equal(kt_count_in_file(t->ag.log, "stays pinned"), 0);
	assert_int_equal(kt_count_in_file(t->ag.log,
		"level=error msg=\"stopping; the datapath goes away with this agent"), 1);
	/* And it did go away: the links went with the namespace's bpffs. */
	end = kt_now_ms() + 5000;
	while ((progs = kt_cgroup_progs(t->ag.env.cgroup, BPF_CGROUP_INET4_CONNECT)) > 0 &&
	       kt_now_ms() < end)
		usleep(20000);
	printf("  [private bpffs] after the agent exited: %d connect4 program(s) on the cgroup\n",
	       progs);
	assert_int_equal(progs, 0);
	o.count = 100;
	assert_int_equal(kt_client_run(&t->ag.env, &o, &r), 0);
	assert_int_equal(r.err[ECONNREFUSED], 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_detached_by_bpftool, sc_setup, sc_teardown),
		cmocka_unit_test_setup_teardown(test_down_while_running, sc_setup, sc_teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_recreated, sc_setup, sc_teardown),
		cmocka_unit_test_setup_teardown(test_status_shows_hooks, sc_setup, sc_teardown),
		cmocka_unit_test_setup_teardown(test_refusal_messages, sc_setup, sc_teardown),
		cmocka_unit_test_setup_teardown(test_private_bpffs, sc_setup, sc_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
