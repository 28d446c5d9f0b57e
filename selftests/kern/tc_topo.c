// SPDX-License-Identifier: BSD-2-Clause
/* The TC path's real-traffic topology (tc_topo.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "tc_topo.h"

void kt_sh_in(const char *ns, const char *cmd)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "nsenter --net=%s %s", ns, cmd);
	assert_int_equal(kt_run(buf), 0);
}

void kt_topo_ns(struct kt_env *e, struct kt_topo *t)
{
	assert_int_equal(kt_netns_extra(e, "node", t->node, sizeof(t->node)), 0);
	assert_int_equal(kt_netns_extra(e, "be", t->be, sizeof(t->be)), 0);
}

void kt_topo_links(struct kt_env *e, struct kt_topo *t)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip link add kspod0 type veth peer name eth0 netns %s", e->netns);
	kt_sh_in(t->node, cmd);
	snprintf(cmd, sizeof(cmd), "ip link add ksbe0 type veth peer name eth0 netns %s",
		 strrchr(t->be, '/') + 1);
	kt_sh_in(t->node, cmd);
	kt_sh_in(t->node, "ip addr add 198.18.0.1/24 dev kspod0");
	kt_sh_in(t->node, "ip -6 addr add fd00:18::1/64 dev kspod0 nodad");
	kt_sh_in(t->node, "ip addr add 198.18.1.254/24 dev ksbe0");
	kt_sh_in(t->node, "ip -6 addr add fd00:18:1::fe/64 dev ksbe0 nodad");
	kt_sh_in(t->node, "ip link set kspod0 up");
	kt_sh_in(t->node, "ip link set ksbe0 up");
	/* /proc/sys/net is the opener's netns; no sysctl binary (procps) needed. */
	kt_sh_in(t->node, "sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && "
		    "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'");
	kt_sh_in(e->netns_path, "ip addr add 198.18.0.2/24 dev eth0");
	kt_sh_in(e->netns_path, "ip -6 addr add fd00:18::2/64 dev eth0 nodad");
	kt_sh_in(e->netns_path, "ip link set eth0 up");
	kt_sh_in(e->netns_path, "ip route add default via 198.18.0.1");
	kt_sh_in(e->netns_path, "ip -6 route add default via fd00:18::1");
	kt_sh_in(t->be, "ip addr add 198.18.1.1/24 dev eth0");
	kt_sh_in(t->be, "ip addr add 198.18.1.2/24 dev eth0");
	kt_sh_in(t->be, "ip addr add 198.18.1.3/24 dev eth0");
	kt_sh_in(t->be, "ip -6 addr add fd00:18:1::1/64 dev eth0 nodad");
	kt_sh_in(t->be, "ip -6 addr add fd00:18:1::3/64 dev eth0 nodad");
	kt_sh_in(t->be, "ip link set eth0 up");
	kt_sh_in(t->be, "ip route add default via 198.18.1.254");
	kt_sh_in(t->be, "ip -6 route add default via fd00:18:1::fe");
}

uint64_t kt_tc_stat(struct kt_env *e, size_t field)
{
	int ncpus = libbpf_num_possible_cpus(), fd, i;
	struct ks_tc_stats *v = calloc((size_t)ncpus, sizeof(*v));
	char path[PATH_MAX];
	uint32_t zero = 0;
	uint64_t sum = 0;

	assert_non_null(v);
	snprintf(path, sizeof(path), "%s/ks_tc_stats", e->pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, v), 0);
	for (i = 0; i < ncpus; i++)
		sum += *(uint64_t *)((char *)&v[i] + field);
	free(v);
	close(fd);
	return sum;
}


void kt_agent_in_node(struct kt_agent *t, const struct kt_topo *tp, const char *const *extra,
		      int nth, bool wait_attach)
{
	char wrap_net[128];
	const char *wrap[] = { "/usr/bin/nsenter", wrap_net, NULL };

	snprintf(wrap_net, sizeof(wrap_net), "--net=%s", tp->node);
	kt_agent_start(t, wrap, extra, nth);
	if (wait_attach)
		assert_true(kt_wait_in_file(t->log, "msg=\"TC programs attached\" iface=kspod0",
					    nth, 10000) >= nth);
}

unsigned int kt_pin_count(struct kt_env *e, const char *map)
{
	char k[256], prev[256], path[PATH_MAX];	/* any of ksplit's keys fits */
	unsigned int n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", e->pin_dir, map);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, n ? prev : NULL, k)) {
		memcpy(prev, k, sizeof(prev));
		n++;
	}
	close(fd);
	return n;
}

unsigned int kt_ct_count(struct kt_env *e)
{
	return kt_pin_count(e, "ks_ct");
}
