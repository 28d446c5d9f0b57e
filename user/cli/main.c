// SPDX-License-Identifier: BSD-2-Clause
/*
 * ksplit: the command-line entry point. Commands are rows of cmds[], as in
 * bpftool: a name, the function in the command's own file (cli/<name>.c),
 * its synopsis and help. `ksplit help` lists the table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/log.h"

static int do_help(const struct cli_cmd *cmd, int argc, char **argv);

static const struct cli_cmd cmds[] = {
	{ "run", do_run,
	  "(--config PATH [--config PATH ...] | --kubeconfig FILE [--gateway-class NAME ...])\n"
	  "[--namespace NS] [--identity ID] [--lease-duration S] [--lease-renew S]\n"
	  "[--cgroup DIR|none] [--pin-dir DIR] [--tc-iface NAME|PREFIX+ ...] [--tc-clsact]\n"
	  "[--tc-tcp-timeout S] [--tc-close-timeout S] [--tc-udp-timeout S]\n"
	  "[--max-services N] [--max-endpoints N] [--no-destroy] [--no-wait]\n"
	  "[--allow-loopback-vips] [--metrics-addr ADDR:PORT|none] [--metrics-endpoints]\n"
	  "[--json] [-v]",
	  "attach to DIR (default: the cgroup2 root) and apply the manifests, or what\n"
	  "the Kubernetes API holds (in a pod, by default through its service account);\n"
	  "re-apply on change and SIGHUP; sockets to removed endpoints are\n"
	  "destroyed unless --no-destroy; while another agent runs on the pin\n"
	  "dir, wait for it to exit (exit 1 with --no-wait); logs are logfmt lines on stderr,\n"
	  "JSON lines with --json; VIPs in 127.0.0.0/8 or ::1 are refused unless\n"
	  "--allow-loopback-vips (they capture every process's local traffic);\n"
	  "/metrics, /healthz and /readyz are served on --metrics-addr\n"
	  "(default 127.0.0.1:9965; port 0: any free port, logged); from the API, route,\n"
	  "Gateway and GatewayClass status is written by the holder of the Lease\n"
	  "ksplit-status in --namespace (in a pod: the service account's);\n"
	  "--tc-iface puts the per-packet programs on an interface (the node side of\n"
	  "a pod's veth; PREFIX+: every interface named PREFIX..., also later ones),\n"
	  "with tcx links, or clsact + cls_bpf where the kernel has no tcx or with\n"
	  "--tc-clsact; a TC flow idle for --tc-tcp-timeout (TCP, default 21600 s),\n"
	  "--tc-close-timeout (TCP after FIN or RST, 10 s) or --tc-udp-timeout\n"
	  "(UDP, 120 s) is expired; --cgroup none attaches no socket hooks" },
	{ "validate", do_validate, "[--json] [--strict] [--allow-loopback-vips] PATH...",
	  "check manifests, print each route's verdict and each service's split;\n"
	  "exit 1 on any error or route not accepted (--strict: or any refused share)" },
	{ "status", do_status, "[--json] [--pin-dir DIR]",
	  "show VIPs, weights, shares, endpoints and the hooks;\n"
	  "exit 1 when a hook is detached or missing, or the pins are of\n"
	  "another ABI" },
	{ "down", do_down, "[--json] [--pin-dir DIR] [--force]",
	  "detach and remove everything pinned; refused while an agent runs on\n"
	  "the pin dir, unless --force" },
	{ "probe", do_probe, "[--json]",
	  "what this kernel supports of the BPF features ksplit uses, each with\n"
	  "the Linux version that has it and what ksplit does without it;\n"
	  "exit 1 when a required one is missing (the agent refuses to start)" },
	{ "version", do_version, "[--json]", "print the version" },
	{ "help", do_help, "", "list the commands" },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ksplit <command> [options]\n\ncommands:\n");
	for (i = 0; i < N_CMDS; i++)
		cli_cmd_print(f, &cmds[i]);
	cli_usage_footer(f);
}

static int do_help(const struct cli_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

static const struct cli_cmd *cmd_select(const char *name)
{
	size_t i;

	/* The spellings users try first. */
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		name = "help";
	else if (!strcmp(name, "--version"))
		name = "version";
	for (i = 0; i < N_CMDS; i++)
		if (!strcmp(name, cmds[i].name))
			return &cmds[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *cmd;

	ks_log_hook_libbpf();
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	cmd = cmd_select(argv[1]);
	if (!cmd) {
		p_err("unknown command '%s'", argv[1]);
		usage(stderr);
		return 1;
	}
	cli_set_cmd(cmd->name);
	return cmd->fn(cmd, argc - 1, argv + 1);
}
