// SPDX-License-Identifier: BSD-2-Clause
/* ksplit: the command-line entry point. One subcommand per concern. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "common/log.h"
#include "cli/status.h"
#include "common/sys.h"

#define KSPLIT_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ksplit <command> [options]\n"
		"\n"
		"commands:\n"
		"  run --config PATH [--config PATH ...] [--cgroup DIR] [--pin-dir DIR]\n"
		"      [--max-services N] [--max-endpoints N] [--no-destroy] [--json] [-v]\n"
		"                      attach to DIR (default: the cgroup2 root) and apply the\n"
		"                      manifests; re-apply on change and SIGHUP; sockets to\n"
		"                      removed endpoints are destroyed unless --no-destroy;\n"
		"                      logs are logfmt lines on stderr, JSON lines with --json\n"
		"  validate [--json] PATH...   check manifests; exit 1 on any error\n"
		"  status [--json] [--pin-dir DIR]   show VIPs, weights, shares, endpoints and\n"
		"                      the hooks; exit 1 when a hook is detached or missing\n"
		"  down [--json] [--pin-dir DIR]     detach and remove everything pinned\n"
		"  version [--json]\n"
		"\n"
		"exit status: 0 success, 1 any error (bad manifests, bad options, failures)\n"
		"\n"
		"default pin dir: " KS_DEFAULT_PIN_DIR "\n");
}

/* One printer for both forms: --json prints the object, else the text renderer. */
static int emit(struct json_object *o, bool json, void (*text)(FILE *, struct json_object *))
{
	if (json)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		text(stdout, o);
	return 0;
}

static void version_text(FILE *f, struct json_object *o)
{
	fprintf(f, "ksplit %s\n", json_object_get_string(json_object_object_get(o, "version")));
}

/* Options of the commands that read or remove the pinned state: 0 go on, 1 done/error. */
static int pin_opts(int argc, char **argv, const char **pin_dir, bool *json, int *rc)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	*pin_dir = KS_DEFAULT_PIN_DIR;
	*json = false;
	while ((c = getopt_long(argc, argv, "jp:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': *json = true; break;
		case 'p': *pin_dir = optarg; break;
		case 'h': usage(stdout); *rc = 0; return 1;
		default: *rc = 1; return 1;
		}
	}
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	struct json_object *st = NULL, *dps;
	bool dp_ok;
	const char *pin_dir;
	bool json;
	int err, rc;

	if (pin_opts(argc, argv, &pin_dir, &json, &rc))
		return rc;
	err = ks_status_collect(pin_dir, &st);
	if (err) {
		fprintf(stderr, "ksplit status: cannot read pinned maps in %s: %s\n", pin_dir,
			strerror(-err));
		return 1;
	}
	/* The hooks too: maps that look fine serve nothing once a hook is detached. */
	ks_dp_status(pin_dir, &dps, &dp_ok);
	json_object_object_add(st, "datapath", dps);
	emit(st, json, ks_status_print_text);
	if (!json)
		ks_dp_status_text(stdout, dps);
	json_object_put(st);
	return dp_ok ? 0 : 1;
}

static void down_text(FILE *f, struct json_object *o)
{
	struct json_object *v;

	json_object_object_get_ex(o, "removed", &v);
	fprintf(f, "removed %d pinned objects from %s\n", json_object_get_int(v),
		json_object_get_string(json_object_object_get(o, "pin_dir")));
}

static int cmd_down(int argc, char **argv)
{
	struct json_object *o;
	unsigned int removed = 0;
	const char *pin_dir;
	bool json;
	int err, rc;

	if (pin_opts(argc, argv, &pin_dir, &json, &rc))
		return rc;
	err = ks_dp_down(pin_dir, &removed);
	o = json_object_new_object();
	json_object_object_add(o, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(o, "removed", json_object_new_int(removed));
	json_object_object_add(o, "ok", json_object_new_boolean(!err));
	emit(o, json, down_text);
	json_object_put(o);
	if (err)
		fprintf(stderr, "ksplit down: %s\n", strerror(-err));
	return err ? 1 : 0;
}

static int cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct json_object *o = NULL;
	bool json = false;
	int c, err;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ksplit validate: no PATH given\n");
		return 1;
	}
	err = ks_cli_validate((const char *const *)&argv[optind], argc - optind, &o);
	emit(o, json, ks_cli_validate_text);
	json_object_put(o);
	return err ? 1 : 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "max-services", required_argument, NULL, 'S' },
		{ "max-endpoints", required_argument, NULL, 'E' },
		{ "no-destroy", no_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ks_agent_opts ao = {};
	const char **configs = calloc(argc + 1, sizeof(*configs));
	unsigned long v;
	char *end;
	int c, err;

	if (!configs)
		return 1;
	ao.configs = configs;
	while ((c = getopt_long(argc, argv, "c:g:p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': configs[ao.n_configs++] = optarg; break;
		case 'g': ao.dp.cgroup = optarg; break;
		case 'p': ao.dp.pin_dir = optarg; break;
		case 'S':
		case 'E':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !v || v > (1UL << 26)) {
				fprintf(stderr, "ksplit run: --%s: not a number in 1..%lu: %s\n",
					c == 'S' ? "max-services" : "max-endpoints", 1UL << 26, optarg);
				free(configs);
				return 1;
			}
			if (c == 'S')
				ao.dp.max_services = v;
			else
				ao.dp.max_endpoints = v;
			break;
		case 'D': ao.no_destroy = true; break;
		case 'j': ks_log_set_json(true); break;
		case 'v': ks_log_set_level(KS_LOG_DEBUG); break;
		case 'h': usage(stdout); free(configs); return 0;
		default: free(configs); return 1;
		}
	}
	if (!ao.n_configs) {
		fprintf(stderr, "ksplit run: at least one --config PATH is required\n");
		free(configs);
		return 1;
	}
	err = ks_agent_run(&ao);
	free(configs);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	ks_log_hook_libbpf();
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "run"))
		return cmd_run(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "down"))
		return cmd_down(argc, argv);
	if (!strcmp(cmd, "validate"))
		return cmd_validate(argc, argv);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "version", json_object_new_string(KSPLIT_VERSION));
		emit(o, argc > 1 && !strcmp(argv[1], "--json"), version_text);
		json_object_put(o);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ksplit: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
