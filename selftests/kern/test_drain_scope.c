// SPDX-License-Identifier: BSD-2-Clause
/*
 * What drain touches: only sockets that ksplit steered, for a VIP that no
 * longer lists the endpoint it gave them. Two VIPs share the same pods;
 * connections through the other VIP, and connections made to the pod IP
 * directly from the same cgroup, must stay open. And drain is a
 * reconciliation: an agent that starts on maps whose apply was never
 * followed by its drain (a crash in between) destroys those orphans.
 *
 * Every held socket is checked by itself: a recv that reports ECONNABORTED
 * (or a reset) is "aborted", a round trip to the same server is "open".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "harness.h"
#include "sockets.h"

#define POD1	"127.1.0.1:8080"
#define POD2	"127.1.0.2:8080"
#define A_TCP	"127.10.0.1:80/tcp"
#define A_UDP	"127.10.0.1:80/udp"
#define B_TCP	"127.10.0.2:80/tcp"
#define B_UDP	"127.10.0.2:80/udp"
#define DRAINED	"msg=\"drained sockets of endpoints that left their VIP\""

/*
 * VIP A (127.10.0.1) and VIP B (127.10.0.2), each a Gateway with HTTP and
 * UDP listeners on port 80. With route_a, A's two routes send to Service
 * "one"; B's go to "two" when eps_two is set, else to "one" as well.
 */
static char *manifest(bool route_a, const char *eps_one, const char *eps_two)
{
	const char *b_svc = eps_two ? "two=1" : "one=1";
	struct kt_buf b = {};

	kt_yaml_gateway(&b, "gwa", "127.10.0.1", "http:HTTP:80 udp:UDP:80");
	kt_yaml_gateway(&b, "gwb", "127.10.0.2", "http:HTTP:80 udp:UDP:80");
	kt_yaml_service(&b, "one", 80, NULL);
	kt_yaml_slice(&b, "one", "IPv4", eps_one);
	if (eps_two) {
		kt_yaml_service(&b, "two", 80, NULL);
		kt_yaml_slice(&b, "two", "IPv4", eps_two);
	}
	if (route_a) {
		kt_yaml_route(&b, "HTTPRoute", "ra", "gwa/http", "one=1");
		kt_yaml_route(&b, "UDPRoute", "ua", "gwa/udp", "one=1");
	}
	kt_yaml_route(&b, "HTTPRoute", "rb", "gwb/http", b_svc);
	kt_yaml_route(&b, "UDPRoute", "ub", "gwb/udp", b_svc);
	return b.s;
}

static void pods_up(struct kt_env *e)
{
	assert_int_equal(kt_dp_open(e, 1024, 4096), 0);
	kt_server_spawn(e, POD1);
	kt_server_spawn(e, POD2);
}

static void apply(struct kt_env *e, bool route_a, const char *eps_one, const char *eps_two)
{
	char *y = manifest(route_a, eps_one, eps_two);

	assert_int_equal(kt_apply_yaml(e, y), 0);
	free(y);
}

static void drain(struct kt_env *e, bool route_a, const char *eps_one, const char *eps_two,
		  struct ks_drain_stats *ds)
{
	char *y = manifest(route_a, eps_one, eps_two);

	assert_int_equal(kt_apply_drain(e, y, ds), 0);
	free(y);
	printf("  [drain] netns %u steered %u orphaned %u destroyed %u refused %u failed %u\n",
	       ds->netns, ds->steered, ds->orphaned, ds->destroyed, ds->denied, ds->failed);
}

#define N_A	12	/* TCP through VIP A */
#define M_B	12	/* TCP through VIP B */
#define K_POD	4	/* TCP to each pod IP, never through ksplit */
#define U_VIP	4	/* connected UDP through each VIP */

static const struct kt_hold_spec shared_spec[] = {
	{ "127.10.0.1", 80, false, N_A },
	{ "127.10.0.2", 80, false, M_B },
	{ "127.1.0.1", 8080, false, K_POD },
	{ "127.1.0.2", 8080, false, K_POD },
	{ "127.10.0.1", 80, true, U_VIP },
	{ "127.10.0.2", 80, true, U_VIP },
	{ "127.1.0.1", 8080, true, 2 },
};

static void test_shared_pods_route_deleted(void **state)
{
	struct kt_env *e = *state;
	struct ks_drain_stats ds;
	struct kt_holder hd;
	int a, a_udp, kept, total;

	pods_up(e);
	apply(e, true, "127.1.0.1 127.1.0.2", NULL);
	assert_int_equal(kt_holder_start(e, shared_spec, 7, &hd), 0);
	total = hd.h->n;

	/* VIP A's routes are deleted; B still sends to the same two pods. */
	drain(e, false, "127.1.0.1 127.1.0.2", NULL, &ds);
	assert_int_equal(kt_holder_probe(&hd), 0);
	kt_holder_print(&hd, "shared");
	a = kt_holder_count(&hd, A_TCP, NULL, KT_HOLD_ABORTED);
	a_udp = kt_holder_count(&hd, A_UDP, NULL, KT_HOLD_ABORTED);
	kept = kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN);
	printf("  [shared] VIP A: %d of %d TCP and %d of %d connected UDP aborted; "
	       "open: %d (VIP B %d TCP + %d UDP, pod IP %d TCP + %d UDP) of %d others\n",
	       a, N_A, a_udp, U_VIP, kept, kt_holder_count(&hd, B_TCP, NULL, KT_HOLD_OPEN),
	       kt_holder_count(&hd, B_UDP, NULL, KT_HOLD_OPEN),
	       kt_holder_count(&hd, "127.1.0.1:8080/tcp", NULL, KT_HOLD_OPEN) +
		       kt_holder_count(&hd, "127.1.0.2:8080/tcp", NULL, KT_HOLD_OPEN),
	       kt_holder_count(&hd, "127.1.0.1:8080/udp", NULL, KT_HOLD_OPEN), total - N_A);
	assert_int_equal(a, N_A);
	/*
	 * Connected UDP is not drained: sock_diag carries no socket storage
	 * for UDP, so nothing tells it from a socket ksplit never steered.
	 */
	assert_int_equal(a_udp, 0);
	assert_int_equal(kept, total - N_A);
	assert_int_equal(ds.destroyed, N_A);
	assert_int_equal(ds.orphaned, N_A);
	/* Steered: every TCP socket through a VIP; the pod-IP ones have no record. */
	assert_int_equal(ds.steered, N_A + M_B);
	assert_int_equal(ds.denied + ds.failed, 0);

	/* Nothing left to do: a second pass destroys nothing and everything else stays open. */
	drain(e, false, "127.1.0.1 127.1.0.2", NULL, &ds);
	assert_int_equal(ds.destroyed, 0);
	assert_int_equal(kt_holder_probe(&hd), 0);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), kept);
	kt_holder_stop(e, &hd);
}

static const struct kt_hold_spec two_svc_spec[] = {
	{ "127.10.0.1", 80, false, 16 },
	{ "127.10.0.2", 80, false, 16 },
};

static void test_endpoint_left_one_service(void **state)
{
	struct kt_env *e = *state;
	struct ks_drain_stats ds;
	struct kt_holder hd;
	int a2, a1, b1, b2;

	pods_up(e);
	/* Services "one" (VIP A) and "two" (VIP B) list the same two pods. */
	apply(e, true, "127.1.0.1 127.1.0.2", "127.1.0.1 127.1.0.2");
	assert_int_equal(kt_holder_start(e, two_svc_spec, 2, &hd), 0);
	a2 = kt_holder_count(&hd, A_TCP, POD2, KT_HOLD_OPEN);
	a1 = kt_holder_count(&hd, A_TCP, POD1, KT_HOLD_OPEN);
	b1 = kt_holder_count(&hd, B_TCP, POD1, KT_HOLD_OPEN);
	b2 = kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_OPEN);
	printf("  [one-service] held: A->pod1 %d A->pod2 %d B->pod1 %d B->pod2 %d\n", a1, a2, b1, b2);
	/* 16 connections over 2 pods per VIP: P(none to pod2) = 2^-16. */
	assert_true(a2 > 0 && b2 > 0);

	/* pod2 leaves "one" only: it is still an endpoint of "two". */
	drain(e, true, "127.1.0.1", "127.1.0.1 127.1.0.2", &ds);
	assert_int_equal(kt_holder_probe(&hd), 0);
	kt_holder_print(&hd, "one-service");
	printf("  [one-service] aborted: A->pod2 %d of %d, A->pod1 %d, B->pod2 %d, B->pod1 %d\n",
	       kt_holder_count(&hd, A_TCP, POD2, KT_HOLD_ABORTED), a2,
	       kt_holder_count(&hd, A_TCP, POD1, KT_HOLD_ABORTED),
	       kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_ABORTED),
	       kt_holder_count(&hd, B_TCP, POD1, KT_HOLD_ABORTED));
	assert_int_equal(kt_holder_count(&hd, A_TCP, POD2, KT_HOLD_ABORTED), a2);
	assert_int_equal(kt_holder_count(&hd, A_TCP, POD1, KT_HOLD_OPEN), a1);
	assert_int_equal(kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_OPEN), b2);
	assert_int_equal(kt_holder_count(&hd, B_TCP, POD1, KT_HOLD_OPEN), b1);
	assert_int_equal(ds.destroyed, a2);
	kt_holder_stop(e, &hd);
}

/* The sockets_destroyed= of the last line with needle in the log, -1 if none. */
static long log_destroyed(const char *log, const char *needle)
{
	char line[4096];
	long v = -1;
	FILE *f = fopen(log, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "sockets_destroyed=");

		if (strstr(line, DRAINED) && strstr(line, needle) && p)
			v = strtol(p + strlen("sockets_destroyed="), NULL, 10);
	}
	fclose(f);
	return v;
}

static void write_config(const char *dir, bool route_a, const char *eps_one)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *y = manifest(route_a, eps_one, NULL);
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.staging", dir);
	snprintf(path, sizeof(path), "%s/config.yaml", dir);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(y, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
	free(y);
}

static pid_t agent_start(struct kt_env *e, const char *cfg, const char *log, bool no_destroy)
{
	char exe[PATH_MAX], ksplit[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *argv[] = { ksplit, "run", KT_LOOPBACK, "--config", (char *)cfg, "--cgroup", e->cgroup,
			 "--pin-dir", e->pin_dir, "--max-services", "1024", "--max-endpoints",
			 "4096", no_destroy ? "--no-destroy" : NULL, NULL };
	pid_t pid;

	assert_true(n > 0);
	exe[n] = 0;
	snprintf(ksplit, sizeof(ksplit), "%s/../../ksplit", dirname(exe));
	pid = kt_spawn(e, argv, log);
	assert_true(pid > 0);
	return pid;
}

static void agent_stop(struct kt_env *e, pid_t pid)
{
	int st = kt_stop(e, pid, SIGTERM, 10000);

	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static const struct kt_hold_spec crash_spec[] = {
	{ "127.10.0.1", 80, false, 15 },
	{ "127.10.0.2", 80, false, 8 },
	{ "127.1.0.1", 8080, false, 3 },
	{ "127.1.0.2", 8080, false, 3 },
};

static void test_crash_between_publish_and_drain(void **state)
{
	struct kt_env *e = *state;
	char cfg[PATH_MAX], log[PATH_MAX];
	struct kt_holder hd;
	int total, b2, applied;
	long d;
	pid_t agent;

	snprintf(cfg, sizeof(cfg), "/tmp/%s-config", e->tag);
	snprintf(log, sizeof(log), "/tmp/%s-agent.log", e->tag);
	assert_int_equal(mkdir(cfg, 0700), 0);
	pods_up(e);
	apply(e, true, "127.1.0.1 127.1.0.2", NULL);
	assert_int_equal(kt_holder_start(e, crash_spec, 4, &hd), 0);
	total = hd.h->n;

	/*
	 * The agent's apply without its drain, as a kill -9 right after the
	 * publish leaves it: VIP A is gone from the maps, its sockets are not.
	 */
	apply(e, false, "127.1.0.1 127.1.0.2", NULL);
	ks_dp_close(e->dp);
	e->dp = NULL;
	assert_int_equal(kt_holder_probe(&hd), 0);
	printf("  [crash] after the apply without drain: %d of %d sockets open\n",
	       kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total);

	/* --no-destroy: the restarted agent leaves them alone. */
	write_config(cfg, false, "127.1.0.1 127.1.0.2");
	agent = agent_start(e, cfg, log, true);
	assert_true(kt_wait_in_file(log, "msg=\"config applied\"", 1, 20000) >= 1);
	agent_stop(e, agent);
	assert_int_equal(kt_count_in_file(log, DRAINED), 0);
	assert_int_equal(kt_holder_probe(&hd), 0);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total);
	printf("  [crash] agent --no-destroy: no drain logged, %d of %d open\n", total, total);

	/* The real restart: its start-up reconciliation finds the 15 orphans. */
	agent = agent_start(e, cfg, log, false);
	assert_true(kt_wait_in_file(log, DRAINED, 1, 20000) >= 1);
	assert_true(kt_wait_in_file(log, "msg=\"config applied\"", 2, 20000) >= 2);
	d = log_destroyed(log, "reason=start");
	assert_int_equal(kt_holder_probe(&hd), 0);
	kt_holder_print(&hd, "crash");
	printf("  [crash] restarted agent: log sockets_destroyed=%ld (reason=start); VIP A aborted %d of 15, open %d of %d others\n",
	       d, kt_holder_count(&hd, A_TCP, NULL, KT_HOLD_ABORTED),
	       kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total - 15);
	assert_int_equal(d, 15);
	assert_int_equal(kt_holder_count(&hd, A_TCP, NULL, KT_HOLD_ABORTED), 15);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total - 15);
	/* The first apply of the same config removed nothing: no second drain. */
	assert_int_equal(kt_count_in_file(log, DRAINED), 1);

	/* And after an apply that removes pod2 from B's service, only B->pod2 goes. */
	b2 = kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_OPEN);
	applied = kt_count_in_file(log, "msg=\"config applied\"");
	write_config(cfg, false, "127.1.0.1");
	assert_true(kt_wait_in_file(log, "msg=\"config applied\"", applied + 1, 20000) > applied);
	assert_true(kt_wait_in_file(log, "reason=apply", 1, 20000) >= 1);
	d = log_destroyed(log, "reason=apply");
	assert_int_equal(kt_holder_probe(&hd), 0);
	printf("  [crash] pod2 removed: log sockets_destroyed=%ld (reason=apply), B->pod2 aborted %d of %d, open %d\n",
	       d, kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_ABORTED), b2,
	       kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN));
	assert_int_equal(d, b2);
	assert_int_equal(kt_holder_count(&hd, B_TCP, POD2, KT_HOLD_ABORTED), b2);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), total - 15 - b2);
	agent_stop(e, agent);
	kt_holder_stop(e, &hd);
}

/* Drop CAP_NET_ADMIN from this process (SOCK_DESTROY needs it; the dump and setns do not). */
static int drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
	d[CAP_NET_ADMIN / 32].permitted &= ~(1U << (CAP_NET_ADMIN % 32));
	return syscall(SYS_capset, &h, d) ? -1 : 0;
}

static const struct kt_hold_spec eperm_spec[] = {
	{ "127.10.0.1", 80, false, 6 },
	{ "127.10.0.2", 80, false, 2 },
};

static void test_destroy_refused_is_warned(void **state)
{
	struct kt_env *e = *state;
	struct ks_drain_stats *cs = mmap(NULL, sizeof(*cs), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct ks_drain_stats ds;
	struct kt_holder hd;
	char log[PATH_MAX];
	int status;
	pid_t pid;

	assert_true(cs != MAP_FAILED);
	snprintf(log, sizeof(log), "/tmp/%s-eperm.log", e->tag);
	pods_up(e);
	apply(e, true, "127.1.0.1 127.1.0.2", NULL);
	assert_int_equal(kt_holder_start(e, eperm_spec, 2, &hd), 0);
	apply(e, false, "127.1.0.1 127.1.0.2", NULL);

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		FILE *f = freopen(log, "w", stderr);

		if (!f || drop_net_admin())
			_exit(10);
		status = ks_dp_reconcile(e->dp, cs);
		fflush(stderr);
		_exit(status ? 11 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(kt_holder_probe(&hd), 0);
	printf("  [eperm] without CAP_NET_ADMIN: orphaned %u destroyed %u refused %u; "
	       "warn lines naming CAP_NET_ADMIN: %d; open %d of %d\n",
	       cs->orphaned, cs->destroyed, cs->denied,
	       kt_count_in_file(log, "level=warn msg=\"SOCK_DESTROY refused (EPERM): the agent lacks CAP_NET_ADMIN"),
	       kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), hd.h->n);
	assert_int_equal(cs->orphaned, 6);
	assert_int_equal(cs->denied, 6);
	assert_int_equal(cs->destroyed, 0);
	assert_int_equal(kt_count_in_file(log, "level=warn msg=\"SOCK_DESTROY refused (EPERM): the agent lacks CAP_NET_ADMIN"), 1);
	assert_int_equal(kt_holder_count(&hd, NULL, NULL, KT_HOLD_OPEN), 8);

	/* With the capability the next reconciliation finishes the job. */
	assert_int_equal(ks_dp_reconcile(e->dp, &ds), 0);
	assert_int_equal(kt_holder_probe(&hd), 0);
	printf("  [eperm] with it: destroyed %u, VIP A aborted %d, VIP B open %d\n", ds.destroyed,
	       kt_holder_count(&hd, A_TCP, NULL, KT_HOLD_ABORTED),
	       kt_holder_count(&hd, B_TCP, NULL, KT_HOLD_OPEN));
	assert_int_equal(ds.destroyed, 6);
	assert_int_equal(kt_holder_count(&hd, A_TCP, NULL, KT_HOLD_ABORTED), 6);
	assert_int_equal(kt_holder_count(&hd, B_TCP, NULL, KT_HOLD_OPEN), 2);
	kt_holder_stop(e, &hd);
	munmap(cs, sizeof(*cs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shared_pods_route_deleted, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_left_one_service, kt_setup, kt_teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_publish_and_drain, kt_setup,
						kt_teardown),
		cmocka_unit_test_setup_teardown(test_destroy_refused_is_warned, kt_setup, kt_teardown),
	};

	return cmocka_run_group_tests_name("drain scope", tests, NULL, NULL);
}
