// SPDX-License-Identifier: BSD-2-Clause
/* `ksplit run`: the agent in the foreground. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "common/log.h"
#include "metrics/metrics.h"

#define MAX_TABLE_SIZE	(1UL << 26)
#define MAX_TC_TIMEOUT_S	(30UL * 86400)	/* a flow idle for a month */

int do_run(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "max-services", required_argument, NULL, 'S' },
		{ "max-endpoints", required_argument, NULL, 'E' },
		{ "no-destroy", no_argument, NULL, 'D' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ "allow-loopback-vips", no_argument, NULL, 'L' },
		{ "kubeconfig", required_argument, NULL, 'K' },
		{ "gateway-class", required_argument, NULL, 'G' },
		{ "namespace", required_argument, NULL, 'N' },
		{ "identity", required_argument, NULL, 'I' },
		{ "lease-duration", required_argument, NULL, 'U' },
		{ "lease-renew", required_argument, NULL, 'R' },
		{ "metrics-addr", required_argument, NULL, 'M' },
		{ "metrics-endpoints", no_argument, NULL, 'e' },
		{ "tc-iface", required_argument, NULL, 'T' },
		{ "tc-clsact", no_argument, NULL, 'A' },
		{ "tc-tcp-timeout", required_argument, NULL, 1000 },
		{ "tc-close-timeout", required_argument, NULL, 1001 },
		{ "tc-udp-timeout", required_argument, NULL, 1002 },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ks_agent_opts ao = {};
	const char **configs = calloc(argc + 1, sizeof(*configs));
	const char **classes = calloc(argc + 1, sizeof(*classes));
	const char **tc_ifaces = calloc(argc + 1, sizeof(*tc_ifaces));
	unsigned long v;
	char *end;
	int c, rc = 1;

	if (!configs || !classes || !tc_ifaces) {
		free(configs);
		free(classes);
		free(tc_ifaces);
		return p_err("out of memory");
	}
	ao.configs = configs;
	while ((c = cli_getopt(argc, argv, ":c:g:p:vh", opts)) != -1) {
		switch (c) {
		case 'c': configs[ao.n_configs++] = optarg; break;
		case 'g': ao.dp.cgroup = optarg; break;
		case 'p': ao.dp.pin_dir = optarg; break;
		case 'S':
		case 'E':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !v || v > MAX_TABLE_SIZE) {
				p_err("--%s: not a number in 1..%lu: %s",
				      c == 'S' ? "max-services" : "max-endpoints", MAX_TABLE_SIZE,
				      optarg);
				goto out;
			}
			if (c == 'S')
				ao.dp.max_services = v;
			else
				ao.dp.max_endpoints = v;
			break;
		case 'D': ao.no_destroy = true; break;
		case 'W': ao.no_wait = true; break;
		case 'L': ao.allow_loopback_vips = true; break;
		case 'K': ao.kubeconfig = optarg; break;
		case 'G': classes[ao.n_gateway_classes++] = optarg; break;
		case 'N': ao.status_namespace = optarg; break;
		case 'I': ao.identity = optarg; break;
		case 'U':
		case 'R':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !v || v > 3600) {
				p_err("--%s: not a number of seconds in 1..3600: %s",
				      c == 'U' ? "lease-duration" : "lease-renew", optarg);
				goto out;
			}
			if (c == 'U')
				ao.lease_duration_s = v;
			else
				ao.lease_renew_s = v;
			break;
		case 'M': {
			struct sockaddr_storage ss;
			socklen_t len;

			if (strcmp(optarg, "none") && ks_metrics_parse_addr(optarg, &ss, &len)) {
				p_err("--metrics-addr: not ADDR:PORT (127.0.0.1:9965, [::1]:9965) or none: %s",
				      optarg);
				goto out;
			}
			ao.metrics_addr = optarg;
			break;
		}
		case 'e': ao.metrics_endpoints = true; break;
		case 'T': tc_ifaces[ao.n_tc_ifaces++] = optarg; break;
		case 'A': ao.tc_clsact = true; break;
		case 1000:
		case 1001:
		case 1002: {
			static const char *const names[] = { "tc-tcp-timeout", "tc-close-timeout",
							     "tc-udp-timeout" };
			uint32_t *dst[] = { &ao.dp.tc_tcp_timeout_s, &ao.dp.tc_close_timeout_s,
					    &ao.dp.tc_udp_timeout_s };

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !v || v > MAX_TC_TIMEOUT_S) {
				p_err("--%s: not a number of seconds in 1..%lu: %s", names[c - 1000],
				      MAX_TC_TIMEOUT_S, optarg);
				goto out;
			}
			*dst[c - 1000] = (uint32_t)v;
			break;
		}
		/* JSON log lines; errors before the agent starts are JSON too. */
		case 'j': ks_log_set_json(true); json_output = true; break;
		case 'v': ks_log_set_level(KS_LOG_DEBUG); break;
		case 'h': rc = cli_cmd_help(cmd); goto out;
		default: goto out;
		}
	}
	/* One source per run: files, a kubeconfig, or (by default in a pod) the service account. */
	if (ao.n_configs && ao.kubeconfig) {
		p_err("--config and --kubeconfig exclude each other: a run has one source");
		goto out;
	}
	if (!ao.n_configs && !ao.kubeconfig) {
		const char *host = getenv("KUBERNETES_SERVICE_HOST");

		if (!host || !*host) {
			p_err("at least one --config PATH, or --kubeconfig FILE, is required (in a pod, "
			      "the service account is used when neither is given)");
			goto out;
		}
		ao.in_cluster = true;
	}
	if (ao.n_gateway_classes && ao.n_configs) {
		p_err("--gateway-class applies to the Kubernetes API source, not to --config files "
		      "(every Gateway in the files is ksplit's)");
		goto out;
	}
	if (ao.n_configs && (ao.status_namespace || ao.identity || ao.lease_duration_s ||
			     ao.lease_renew_s)) {
		p_err("--namespace, --identity, --lease-duration and --lease-renew apply to the "
		      "Kubernetes API source (status writing), not to --config files");
		goto out;
	}
	if ((ao.lease_duration_s ? ao.lease_duration_s : 15) <=
	    (ao.lease_renew_s ? ao.lease_renew_s : 2)) {
		p_err("--lease-renew must be shorter than --lease-duration (defaults 2 and 15 s): "
		      "the holder renews several times per duration");
		goto out;
	}
	ao.gateway_classes = classes;
	ao.tc_ifaces = tc_ifaces;
	if (ao.tc_clsact && !ao.n_tc_ifaces) {
		p_err("--tc-clsact: no --tc-iface to attach to");
		goto out;
	}
	if ((ao.dp.tc_tcp_timeout_s || ao.dp.tc_close_timeout_s || ao.dp.tc_udp_timeout_s) &&
	    !ao.n_tc_ifaces) {
		p_err("--tc-tcp-timeout, --tc-close-timeout and --tc-udp-timeout: no --tc-iface "
		      "(they time out the TC path's flows)");
		goto out;
	}
	/* The agent logs its own errors, in the format --json chose. */
	rc = ks_agent_run(&ao) ? 1 : 0;
out:
	free(configs);
	free(classes);
	free(tc_ifaces);
	return rc;
}
