// SPDX-License-Identifier: BSD-2-Clause
/* What every command shares: its usage lines and its option parsing. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/sys.h"

/* s with every line after the first indented under the command name. */
static void put_indented(FILE *f, const char *s)
{
	for (; *s; s++) {
		fputc(*s, f);
		if (*s == '\n')
			fputs("      ", f);
	}
}

void cli_cmd_print(FILE *f, const struct cli_cmd *cmd)
{
	fprintf(f, "  %s%s", cmd->name, *cmd->args ? " " : "");
	put_indented(f, cmd->args);
	fputs("\n      ", f);
	put_indented(f, cmd->help);
	fputc('\n', f);
}

void cli_usage_footer(FILE *f)
{
	fprintf(f,
		"\n"
		"exit status: 0 success, 1 any error (bad manifests, bad options, failures)\n"
		"with --json, an error is one JSON object on stdout: {\"error\": \"...\"}\n"
		"\n"
		"default pin dir: " KS_DEFAULT_PIN_DIR "\n");
}

int cli_cmd_help(const struct cli_cmd *cmd)
{
	printf("usage:\n");
	cli_cmd_print(stdout, cmd);
	cli_usage_footer(stdout);
	return 0;
}

int cli_getopt(int argc, char **argv, const char *optstring, const struct option *opts)
{
	int c;

	/* getopt's own messages would be text even under --json. */
	opterr = 0;
	c = getopt_long(argc, argv, optstring, opts, NULL);
	if (c == ':') {
		p_err("option '%s' requires an argument", argv[optind - 1]);
		c = '?';
	} else if (c == '?') {
		if (optopt)
			p_err("invalid option -- '%c'", optopt);
		else
			p_err("unrecognized option '%s'", argv[optind - 1]);
	}
	return c;
}

int cli_opts(const struct cli_cmd *cmd, int argc, char **argv, const char **pin_dir, bool *force,
	     bool *allow_loopback, int *rc)
{
	struct option opts[6] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
	};
	char optstring[8] = ":jh";
	size_t n = 2;
	int c;

	/* Only the options this command takes: the others are reported as unknown. */
	if (pin_dir) {
		*pin_dir = KS_DEFAULT_PIN_DIR;
		opts[n++] = (struct option){ "pin-dir", required_argument, NULL, 'p' };
		strcat(optstring, "p:");
	}
	if (force) {
		*force = false;
		opts[n++] = (struct option){ "force", no_argument, NULL, 'f' };
	}
	if (allow_loopback) {
		*allow_loopback = false;
		opts[n++] = (struct option){ "allow-loopback-vips", no_argument, NULL, 'L' };
	}
	while ((c = cli_getopt(argc, argv, optstring, opts)) != -1) {
		switch (c) {
		case 'j': json_output = true; break;
		case 'p': *pin_dir = optarg; break;
		case 'f': *force = true; break;
		case 'L': *allow_loopback = true; break;
		case 'h': *rc = cli_cmd_help(cmd); return 1;
		default: *rc = 1; return 1;
		}
	}
	return 0;
}
