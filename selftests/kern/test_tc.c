// SPDX-License-Identifier: BSD-2-Clause
/*
 * The per-packet path with real traffic. Topology, all namespaces ours:
 *
 *   pod (the env's netns)         node (<tag>-node)                 backends (<tag>-be)
 *   eth0 198.18.0.2  <-veth->  kspod0 198.18.0.1      ksbe0 198.18.1.254  <-veth->  eth0 198.18.1.1-3
 *        fd00:18::2                   fd00:18::1             fd00:18:1::fe             fd00:18:1::1,3
 *
 * The agent runs in "node" (`ksplit run --cgroup none --tc-iface kspod+`,
 * started before the veth exists, so the attach comes from RTM_NEWLINK),
 * the clients in "pod" outside any hooked cgroup, the servers in
 * "backends". The VIPs 198.19.0.10 and fd00:19::10 exist nowhere: only the
 * program on kspod0 makes them answer.
 *
 * Shares: n = 10,000, sigma of a 25% share 0.43 points; the 1.5-point
 * tolerance is 3.5 sigma.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "tc_topo.h"

#define N		10000
#define TOL		1.5
#define VIP4		"198.19.0.10"
#define VIP6		"fd00:19::10"
#define STREAM_PORT	9000
#define N_LONG		50
#define BULK		(10 * 1024 * 1024)

static const char *const servers[] = {
	"198.18.1.1:8080", "198.18.1.2:8080", "198.18.1.3:8080", "[fd00:18:1::1]:8080",
	"[fd00:18:1::3]:8080",
};
static const char *const stream_addrs[] = { "198.18.1.1", "198.18.1.3" };

/* Service name with one slice per family, port 80 -> target. */
static void service(struct kt_buf *b, const char *name, int target, const char *v4, const char *v6)
{
	kt_buf_printf(b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: t}\n"
		      "spec:\n  type: ClusterIP\n  ports:\n"
		      "  - {name: tcp, port: 80, protocol: TCP, targetPort: %d}\n"
		      "  - {name: udp, port: 80, protocol: UDP, targetPort: %d}\n", name, target,
		      target);
	if (target == 8080) {
		kt_yaml_slice(b, name, "IPv4", v4);
		if (v6)
			kt_yaml_slice(b, name, "IPv6", v6);
		return;
	}
	kt_buf_printf(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		      "metadata:\n  name: %s-v4\n  namespace: t\n"
		      "  labels: {kubernetes.io/service-name: %s}\n"
		      "addressType: IPv4\nports:\n- {name: tcp, port: %d, protocol: TCP}\n"
		      "endpoints:\n", name, name, target);
	if (!*v4)
		kt_buf_printf(b, "  []\n");
	else
		kt_buf_printf(b, "- addresses: [\"%s\"]\n  conditions: {ready: true, serving: true, "
			      "terminating: false}\n", v4);
}

/*
 * VIP port 80 (TCP, UDP): v1 (198.18.1.1, .2) 25, v2 (198.18.1.3) 75. VIP
 * port 81 (TCP): s1 (198.18.1.1:9000) s1w, s2 (s2_ep:9000) s2w.
 */
static void put_config(struct kt_agent *t, int s1w, int s2w, const char *s2_ep)
{
	struct kt_buf b = {};
	char be[64];

	kt_yaml_gateway(&b, "gw", VIP4 " " VIP6, "tcp:TCP:80 udp:UDP:80 stream:TCP:81");
	service(&b, "v1", 8080, "198.18.1.1 198.18.1.2", "fd00:18:1::1");
	service(&b, "v2", 8080, "198.18.1.3", "fd00:18:1::3");
	service(&b, "s1", STREAM_PORT, "198.18.1.1", NULL);
	service(&b, "s2", STREAM_PORT, s2_ep, NULL);
	kt_yaml_route(&b, "TCPRoute", "r", "gw/tcp", "v1=25 v2=75");
	kt_yaml_route(&b, "UDPRoute", "u", "gw/udp", "v1=25 v2=75");
	snprintf(be, sizeof(be), "s1=%d s2=%d", s1w, s2w);
	kt_yaml_route(&b, "TCPRoute", "s", "gw/stream", be);
	kt_agent_put(t, "routes.yaml", b.s);
	kt_buf_free(&b);
}

/* ------------------------------------------------------------ stream server */

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 1099511628211ULL;
	return h;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 31 + (i >> 12));
}

static bool full_io(int fd, void *buf, size_t n, bool wr)
{
	size_t done = 0;
	ssize_t k;

	while (done < n) {
		k = wr ? write(fd, (char *)buf + done, n - done) : read(fd, (char *)buf + done, n - done);
		if (k <= 0)
			return false;
		done += (size_t)k;
	}
	return true;
}

/*
 * One connection: 'E' then each byte read is answered with the server's
 * id and '\n' (long-lived connections); 'B', a length and that many bytes
 * are answered with their FNV-1a hash and then length bytes of pattern().
 */
static void stream_conn(int fd, const char *id)
{
	unsigned char buf[65536];
	uint64_t len, h = 1469598103934665603ULL, got = 0;
	char mode, line[80];
	size_t i, n;

	if (read(fd, &mode, 1) != 1)
		_exit(0);
	if (mode == 'E') {
		n = (size_t)snprintf(line, sizeof(line), "%s\n", id);
		while (read(fd, buf, 1) == 1)
			if (!full_io(fd, line, n, true))
				break;
		_exit(0);
	}
	if (!full_io(fd, &len, sizeof(len), false))
		_exit(1);
	while (got < len) {
		ssize_t k = read(fd, buf, len - got < sizeof(buf) ? len - got : sizeof(buf));

		if (k <= 0)
			_exit(1);
		h = fnv(h, buf, (size_t)k);
		got += (uint64_t)k;
	}
	if (!full_io(fd, &h, sizeof(h), true))
		_exit(1);
	for (got = 0; got < len; got += n) {
		n = len - got < sizeof(buf) ? len - got : sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = pattern(got + i);
		if (!full_io(fd, buf, n, true))
			_exit(1);
	}
	_exit(0);
}

static void stream_server(struct kt_env *e, const char *ns)
{
	struct pollfd pf[2];
	int p[2], i;
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		kt_child_init(900);
		signal(SIGCHLD, SIG_IGN);	/* connection children reap themselves */
		if (kt_netns_join(ns))
			_exit(2);
		for (i = 0; i < 2; i++) {
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(STREAM_PORT) };
			int one = 1;

			inet_pton(AF_INET, stream_addrs[i], &a.sin_addr);
			pf[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			pf[i].events = POLLIN;
			setsockopt(pf[i].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(pf[i].fd, (struct sockaddr *)&a, sizeof(a)) || listen(pf[i].fd, 128))
				_exit(3);
		}
		if (write(p[1], "R", 1) != 1)
			_exit(4);
		for (;;) {
			if (poll(pf, 2, -1) <= 0)
				continue;
			for (i = 0; i < 2; i++) {
				char id[64];
				int fd;

				if (!(pf[i].revents & POLLIN) || (fd = accept(pf[i].fd, NULL, NULL)) < 0)
					continue;
				snprintf(id, sizeof(id), "%s:%d", stream_addrs[i], STREAM_PORT);
				if (!fork()) {
					/* Not inherited across fork: die with the server too. */
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					stream_conn(fd, id);
				}
				close(fd);
			}
		}
	}
	close(p[1]);
	kt_track_child(e, pid);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'R');
	close(p[0]);
}

/* ------------------------------------------------------------ pod clients */

static int connect_vip(int port, int timeout_s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { timeout_s, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, VIP4, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* What the long-lived connections saw; shared with the child. */
struct longlived {
	int rounds;			/* completed by the child */
	int stop_at;			/* the child stops after this round (0: not yet known) */
	char id[N_LONG][64];		/* each connection's first server */
	long replies[N_LONG], changed[N_LONG], errors[N_LONG];
	int connected;
};

static bool ask(int fd, char *id, size_t len)
{
	size_t got = 0;

	if (write(fd, "x", 1) != 1)
		return false;
	while (got < len - 1) {
		if (read(fd, id + got, 1) != 1)
			return false;
		if (id[got] == '\n')
			break;
		got++;
	}
	id[got] = 0;
	return true;
}

/* N_LONG connections to VIP:81, a request every 100 ms on each, until stop_at. */
static pid_t longlived_start(struct kt_env *e, struct longlived *ll)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid) {
		kt_track_child(e, pid);
		return pid;
	}
	kt_child_init(120);
	if (kt_netns_join(e->netns_path))
		_exit(2);
	{
		int fds[N_LONG], i, r;
		char id[64];

		for (i = 0; i < N_LONG; i++) {
			fds[i] = connect_vip(81, 1);
			if (fds[i] < 0 || write(fds[i], "E", 1) != 1)
				_exit(3);
		}
		__atomic_store_n(&ll->connected, 1, __ATOMIC_RELEASE);
		for (r = 1; !ll->stop_at || r <= __atomic_load_n(&ll->stop_at, __ATOMIC_ACQUIRE); r++) {
			for (i = 0; i < N_LONG; i++) {
				/* A connection that lost a reply is not asked again: one timeout each. */
				if (ll->errors[i])
					continue;
				if (!ask(fds[i], id, sizeof(id))) {
					ll->errors[i]++;
					continue;
				}
				if (!ll->id[i][0])
					snprintf(ll->id[i], sizeof(ll->id[i]), "%s", id);
				else if (strcmp(ll->id[i], id))
					ll->changed[i]++;
				ll->replies[i]++;
			}
			__atomic_store_n(&ll->rounds, r, __ATOMIC_RELEASE);
			kt_sleep_ms(100);
		}
	}
	_exit(0);
}

static void wait_rounds(struct longlived *ll, int n)
{
	int i;

	for (i = 0; i < 600 && __atomic_load_n(&ll->rounds, __ATOMIC_ACQUIRE) < n; i++)
		kt_sleep_ms(50);
	assert_true(__atomic_load_n(&ll->rounds, __ATOMIC_ACQUIRE) >= n);
}

/* ------------------------------------------------------------ fixtures */

/*
 * The topology with the agent in "node": extra are more agent arguments;
 * with later, the agent starts before the veths exist.
 */
static void start(struct kt_agent *t, struct kt_topo *tp, const char *const *extra, bool later)
{
	kt_topo_ns(&t->env, tp);
	put_config(t, 1, 1, "198.18.1.3");
	if (!later)
		kt_topo_links(&t->env, tp);
	kt_agent_in_node(t, tp, extra, 1, !later);
	if (later) {
		kt_topo_links(&t->env, tp);
		assert_true(kt_wait_in_file(t->log, "msg=\"TC programs attached\" iface=kspod0", 1,
					    10000) >= 1);
	}
	assert_int_equal(KT_IN_NS(&t->env, tp->be, kt_servers_start(&t->env, servers, 5)), 0);
	stream_server(&t->env, tp->be);
}

static const char *const tc_only[] = { "--cgroup", "none", "--tc-iface", "kspod+", NULL };

static void run_clients(struct kt_env *e, const char *target, enum kt_mode mode, long n,
			bool in_cgroup, struct kt_result *r)
{
	struct kt_client_opts o = { .target = target, .mode = mode, .count = n,
				    .outside_cgroup = !in_cgroup };

	assert_int_equal(kt_client_run(e, &o, r), 0);
	kt_result_print(target, r);
	assert_int_equal(r->attempts, n);
	assert_int_equal(r->failed, 0);
}

static void assert_split(const struct kt_result *r, long n)
{
	kt_assert_share("198.18.1.1+.2 (v1, weight 25)",
			kt_tally_get(&r->ids, "198.18.1.1:8080") + kt_tally_get(&r->ids, "198.18.1.2:8080"),
			n, 25, TOL);
	kt_assert_share("198.18.1.3 (v2, weight 75)", kt_tally_get(&r->ids, "198.18.1.3:8080"), n,
			75, TOL);
}

/*
 * TCP and UDP split, IPv4 and IPv6; the pod sees only the VIP; a backend
 * address connected directly is left alone.
 */
static void test_split(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct kt_result r;
	struct kt_topo tp;

	start(t, &tp, tc_only, true);
	/* No socket hook, two tcx links: the datapath is whole. */
	{
		char args[PATH_MAX + 32], *out;
		int rc;

		snprintf(args, sizeof(args), "status --json --pin-dir %s", e->pin_dir);
		struct json_object *st, *dp;

		out = kt_ksplit_out(t, args, &rc);
		assert_int_equal(rc, 0);
		st = json_tokener_parse(out);
		assert_true(json_object_object_get_ex(st, "datapath", &dp));
		assert_int_equal(json_object_get_int(json_object_object_get(dp, "tc_links")), 2);
		assert_true(json_object_get_boolean(json_object_object_get(dp, "ok")));
		json_object_put(st);
		free(out);
	}
	run_clients(e, VIP4 ":80", KT_TCP, N, false, &r);
	assert_split(&r, N);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), N);
	assert_int_equal(KT_TC_STAT(e, new_flows), N);

	run_clients(e, VIP4 ":80", KT_UDP_UNCONNECTED, N, false, &r);
	assert_split(&r, N);
	assert_int_equal(kt_tally_get(&r.srcs, VIP4 ":80"), N);

	run_clients(e, "[" VIP6 "]:80", KT_TCP, 2000, false, &r);
	kt_assert_share("[fd00:18:1::3] (v2, weight 75)",
			kt_tally_get(&r.ids, "[fd00:18:1::3]:8080"), 2000, 75, 4);
	assert_int_equal(kt_tally_get(&r.peers, "[" VIP6 "]:80"), 2000);

	/* Not a VIP: untouched, and not counted. */
	{
		uint64_t before = KT_TC_STAT(e, new_flows);

		run_clients(e, "198.18.1.3:8080", KT_TCP, 200, false, &r);
		assert_int_equal(kt_tally_get(&r.ids, "198.18.1.3:8080"), 200);
		assert_int_equal(kt_tally_get(&r.peers, "198.18.1.3:8080"), 200);
		assert_int_equal(KT_TC_STAT(e, new_flows), before);
	}
}

/* 10 MB each way through the VIP, intact: the checksums are right on every segment. */
static void test_transfer(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct kt_topo tp;
	pid_t pid;
	int st;

	start(t, &tp, tc_only, true);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		unsigned char *buf = malloc(BULK);
		uint64_t len = BULK, h = 1469598103934665603ULL, got_h;
		size_t i;
		int fd;

		kt_child_init(120);
		if (!buf || kt_netns_join(e->netns_path))
			_exit(2);
		for (i = 0; i < BULK; i++)
			buf[i] = (unsigned char)(i * 7 + 3);
		h = fnv(h, buf, BULK);
		fd = connect_vip(81, 10);
		if (fd < 0 || write(fd, "B", 1) != 1 || !full_io(fd, &len, sizeof(len), true) ||
		    !full_io(fd, buf, BULK, true))
			_exit(3);
		if (!full_io(fd, &got_h, sizeof(got_h), false) || got_h != h)
			_exit(4);
		if (!full_io(fd, buf, BULK, false))
			_exit(5);
		for (i = 0; i < BULK; i++)
			if (buf[i] != pattern(i))
				_exit(6);
		if (read(fd, buf, 1) != 0)
			_exit(7);
		_exit(0);
	}
	kt_track_child(e, pid);
	st = kt_reap(e, pid, 120000);
	printf("  [transfer] 10 MB up and 10 MB down through the VIP: exit status %d\n",
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static struct longlived *ll_new(void)
{
	struct longlived *ll = mmap(NULL, sizeof(*ll), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(ll != MAP_FAILED);
	memset(ll, 0, sizeof(*ll));
	return ll;
}

/*
 * 50 long-lived connections keep their backend across a weight change
 * (s2 weighted 0: its endpoint stays listed), while new connections follow
 * the new weights.
 */
static void test_sticky(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct longlived *ll = ll_new();
	long on_s2 = 0, i;
	struct kt_topo tp;
	pid_t pid;

	start(t, &tp, tc_only, true);
	pid = longlived_start(e, ll);
	wait_rounds(ll, 5);
	put_config(t, 1, 0, "198.18.1.3");
	assert_true(kt_wait_in_file(t->log, KT_APPLIED, 2, 20000) >= 2);
	ll->stop_at = ll->rounds + 10;
	assert_int_equal(kt_reap(e, pid, 30000), 0);
	for (i = 0; i < N_LONG; i++) {
		assert_int_equal(ll->errors[i], 0);
		assert_int_equal(ll->changed[i], 0);
		on_s2 += !strcmp(ll->id[i], "198.18.1.3:9000");
	}
	printf("  [sticky] %d rounds of %d connections, %ld of them on s2; none changed backend\n",
	       ll->rounds, N_LONG, on_s2);
	assert_true(on_s2 > 0 && on_s2 < N_LONG);
	/* New connections: all to s1 now. */
	{
		struct longlived *nl = ll_new();

		pid = longlived_start(e, nl);
		nl->stop_at = 1;
		assert_int_equal(kt_reap(e, pid, 30000), 0);
		for (i = 0; i < N_LONG; i++)
			assert_string_equal(nl->id[i], "198.18.1.1:9000");
		munmap(nl, sizeof(*nl));
	}
	munmap(ll, sizeof(*ll));
}

/*
 * An endpoint leaves the service: its flows are dropped (and counted in
 * stale), the others carry on.
 */
static void test_removed(void **state)
{
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct longlived *ll = ll_new();
	long on_s2 = 0, i;
	struct kt_topo tp;
	pid_t pid;

	start(t, &tp, tc_only, true);
	pid = longlived_start(e, ll);
	wait_rounds(ll, 3);
	put_config(t, 1, 1, "");
	assert_true(kt_wait_in_file(t->log, KT_APPLIED, 2, 20000) >= 2);
	ll->stop_at = ll->rounds + 3;
	assert_int_equal(kt_reap(e, pid, 60000), 0);
	for (i = 0; i < N_LONG; i++) {
		if (!strcmp(ll->id[i], "198.18.1.3:9000")) {
			on_s2++;
			assert_true(ll->errors[i] >= 1);
		} else {
			assert_int_equal(ll->errors[i], 0);
		}
		assert_int_equal(ll->changed[i], 0);
	}
	printf("  [removed] %ld connections were on the removed endpoint; stale packets dropped: %llu\n",
	       on_s2, (unsigned long long)KT_TC_STAT(e, stale));
	assert_true(on_s2 > 0);
	assert_true(KT_TC_STAT(e, stale) >= (uint64_t)on_s2);
	munmap(ll, sizeof(*ll));
}

/* Programs of attach type type on ifname in netns ns (BPF_PROG_QUERY), or -1. */
static int progs_on(const char *ns, const char *ifname, int type)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (!pid) {
		__u32 ids[8], cnt = 8;
		int ifindex;

		if (kt_netns_join(ns) || !(ifindex = (int)if_nametoindex(ifname)))
			_exit(100);
		if (bpf_prog_query(ifindex, type, 0, NULL, ids, &cnt))
			_exit(errno == ENOENT ? 0 : 101);
		_exit((int)cnt);
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) < 100 ? WEXITSTATUS(st) : -1;
}

/*
 * Both paths at once: a pod process in the hooked cgroup is steered at
 * connect() and its packets carry the backend, so TC never translates them
 * again; one outside is steered by TC. The tcx links outlive the agent and
 * a restarted one takes them over; `ksplit down` removes them.
 */
static void test_both_paths(void **state)
{
	static const char *const both[] = { "--tc-iface", "kspod0", NULL };
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct kt_result r;
	struct kt_topo tp;
	char *out;
	int rc;

	start(t, &tp, both, false);
	assert_int_equal(progs_on(tp.node, "kspod0", 46), 1);
	assert_int_equal(progs_on(tp.node, "kspod0", 47), 1);
	run_clients(e, VIP4 ":80", KT_TCP, 2000, true, &r);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), 2000);
	assert_int_equal(KT_TC_STAT(e, new_flows), 0);
	assert_int_equal(KT_TC_STAT(e, fwd), 0);
	run_clients(e, VIP4 ":80", KT_TCP, 2000, false, &r);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), 2000);
	assert_int_equal(KT_TC_STAT(e, new_flows), 2000);

	kt_agent_stop(t);
	/* The links stay after the agent (pinned, like the cgroup links) until down. */
	assert_int_equal(progs_on(tp.node, "kspod0", 46), 1);
	/* A restarted agent takes them over (BPF_LINK_UPDATE): still one program each way. */
	kt_agent_in_node(t, &tp, both, 2, true);
	assert_int_equal(kt_count_in_file(t->log, "iface=kspod0 ifindex="), 2);
	assert_int_equal(kt_count_in_file(t->log, "attach=tcx adopted=yes"), 1);
	assert_int_equal(progs_on(tp.node, "kspod0", 46), 1);
	assert_int_equal(progs_on(tp.node, "kspod0", 47), 1);
	run_clients(e, VIP4 ":80", KT_TCP, 500, false, &r);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), 500);
	assert_int_equal(KT_TC_STAT(e, new_flows), 2500);
	kt_agent_stop(t);
	{
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd), "down --pin-dir %s", e->pin_dir);
		out = kt_ksplit_out(t, cmd, &rc);
		assert_int_equal(rc, 0);
		free(out);
	}
	assert_int_equal(progs_on(tp.node, "kspod0", 46), 0);
	assert_int_equal(progs_on(tp.node, "kspod0", 47), 0);
}

/* --tc-clsact: the fallback of kernels before 6.6, here by request; down removes the filters. */
static void test_clsact(void **state)
{
	static const char *const clsact[] = { "--cgroup", "none", "--tc-iface", "kspod0",
					      "--tc-clsact", NULL };
	struct kt_agent *t = *state;
	struct kt_env *e = &t->env;
	struct kt_result r;
	struct kt_topo tp;
	char cmd[3 * PATH_MAX], *out;
	int rc;

	start(t, &tp, clsact, false);
	assert_int_equal(kt_count_in_file(t->log, "attach=clsact"), 1);
	run_clients(e, VIP4 ":80", KT_TCP, 2000, false, &r);
	assert_int_equal(kt_tally_get(&r.peers, VIP4 ":80"), 2000);
	assert_int_equal(KT_TC_STAT(e, new_flows), 2000);
	kt_agent_stop(t);
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s tc filter show dev kspod0 ingress", tp.node);
	out = kt_sh_out(cmd, &rc);
	assert_non_null(strstr(out, "ksplit_tc_ingre"));
	free(out);
	/* Down where the agent ran: the filters are found per network namespace. */
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s %s down --pin-dir %s", tp.node, t->ksplit,
		 e->pin_dir);
	free(kt_sh_out(cmd, &rc));
	assert_int_equal(rc, 0);
	snprintf(cmd, sizeof(cmd), "nsenter --net=%s tc filter show dev kspod0 ingress", tp.node);
	out = kt_sh_out(cmd, &rc);
	assert_null(strstr(out, "ksplit"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_transfer, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_sticky, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_removed, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_both_paths, kt_agent_setup, kt_agent_teardown),
		cmocka_unit_test_setup_teardown(test_clsact, kt_agent_setup, kt_agent_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
