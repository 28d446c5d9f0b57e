/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The commands of `ksplit`, one file each (run.c, validate.c, status.c,
 * down.c, probe.c, version.c), dispatched from the table in main.c, and the option
 * handling they share.
 */
#ifndef KSPLIT_CLI_H
#define KSPLIT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

struct cli_cmd {
	const char *name;
	/* argv[0] is the command name; returns the exit status, 0 or 1. */
	int (*fn)(const struct cli_cmd *cmd, int argc, char **argv);
	const char *args;	/* synopsis after the name; each '\n' starts an indented line */
	const char *help;	/* what it does; each '\n' starts an indented line */
};

int do_run(const struct cli_cmd *cmd, int argc, char **argv);
int do_validate(const struct cli_cmd *cmd, int argc, char **argv);
int do_status(const struct cli_cmd *cmd, int argc, char **argv);
int do_down(const struct cli_cmd *cmd, int argc, char **argv);
int do_probe(const struct cli_cmd *cmd, int argc, char **argv);
int do_version(const struct cli_cmd *cmd, int argc, char **argv);

/* One entry of the command list: "  name args" and the help below it. */
void cli_cmd_print(FILE *f, const struct cli_cmd *cmd);
/* Exit status, --json errors and the default pin dir: the end of every usage. */
void cli_usage_footer(FILE *f);
/* `ksplit <cmd> --help`: that command's usage on stdout; returns 0. */
int cli_cmd_help(const struct cli_cmd *cmd);
/*
 * getopt_long() with the errors reported through p_err(): optstring must
 * start with ':'. Returns the option, -1 at the end, or '?' once reported.
 */
int cli_getopt(int argc, char **argv, const char *optstring, const struct option *opts);
/*
 * The options of every command but run: --json, --help, --pin-dir DIR when
 * pin_dir is not NULL, --force when force is not NULL. 0: go on, operands
 * start at optind; 1: done (help or error), exit with *rc.
 */
int cli_opts(const struct cli_cmd *cmd, int argc, char **argv, const char **pin_dir, bool *force,
	     int *rc);

#endif
