/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The TC path's real-traffic topology, shared by test_tc and
 * test_tc_selfcheck. All namespaces are the test's own:
 *
 *   pod (the env's netns)         node (<tag>-node)                 backends (<tag>-be)
 *   eth0 198.18.0.2  <-veth->  kspod0 198.18.0.1      ksbe0 198.18.1.254  <-veth->  eth0 198.18.1.1-3
 *        fd00:18::2                   fd00:18::1             fd00:18:1::fe             fd00:18:1::1,3
 *
 * The agent runs in "node" with --tc-iface on kspod0; the clients run in
 * "pod" outside any hooked cgroup; the servers in "backends".
 */
#ifndef KSPLIT_KT_TC_TOPO_H
#define KSPLIT_KT_TC_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent_fixture.h"

struct kt_topo {
	char node[96], be[96];	/* netns paths */
};

/* `nsenter --net=ns cmd`, which must exit 0. */
void kt_sh_in(const char *ns, const char *cmd);
/* The namespaces; the veths only with kt_topo_links (the agent may have to see them made). */
void kt_topo_ns(struct kt_env *e, struct kt_topo *t);
void kt_topo_links(struct kt_env *e, struct kt_topo *t);
/* The agent in "node"; its nth start waits for its nth apply and, with wait_attach, attach. */
void kt_agent_in_node(struct kt_agent *t, const struct kt_topo *tp, const char *const *extra,
		      int nth, bool wait_attach);
/* The sum over CPUs of one ks_tc_stats counter of e's pin dir (the member's offset). */
uint64_t kt_tc_stat(struct kt_env *e, size_t field);
#define KT_TC_STAT(e, f) kt_tc_stat(e, offsetof(struct ks_tc_stats, f))
/* Entries of the map pinned as e's pin_dir/map. */
unsigned int kt_pin_count(struct kt_env *e, const char *map);
/* The entries of e's ks_ct (one per flow; two for a flow ks_ct_vips cannot list). */
unsigned int kt_ct_count(struct kt_env *e);

/* kt_servers_start, kt_spawn_in_netns... in another of the test's namespaces. */
#define KT_IN_NS(e, ns, call)                                                     \
	({                                                                        \
		char __saved[sizeof((e)->netns_path)];                            \
		__typeof__(call) __r;                                             \
		memcpy(__saved, (e)->netns_path, sizeof(__saved));               \
		snprintf((e)->netns_path, sizeof((e)->netns_path), "%s", ns);     \
		__r = (call);                                                     \
		memcpy((e)->netns_path, __saved, sizeof(__saved));                \
		__r;                                                              \
	})

#endif
