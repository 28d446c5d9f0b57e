/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a command prints, in one place so both forms stay in step. Under
 * --json a result is one JSON object on stdout and so is an error,
 * {"error": "..."} as bpftool prints it, so a script reads stdout alone;
 * otherwise results are text on stdout and errors "ksplit <cmd>: ..." on
 * stderr.
 */
#ifndef KSPLIT_CLI_OUTPUT_H
#define KSPLIT_CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

/* How --json output is printed (json_object_to_json_string_ext flags). */
#define CLI_JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Set by a command's --json option. */
extern bool json_output;

/* Renders a result object as text. */
typedef void (*cli_text_fn)(FILE *f, struct json_object *o);

/* The command errors name: "ksplit <cmd>: ..."; NULL: "ksplit: ...". */
void cli_set_cmd(const char *name);
/* Print a result: o as JSON under --json, else text(stdout, o). */
void cli_emit(struct json_object *o, cli_text_fn text);
/* Report an error and return 1, the exit status. */
int p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A result that carries an error: under --json o gains "error" and is the
 * one object printed; otherwise text(stdout, o), then the error on stderr.
 * Returns 1.
 */
int p_err_result(struct json_object *o, cli_text_fn text, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
