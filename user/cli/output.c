// SPDX-License-Identifier: BSD-2-Clause
#include <stdarg.h>
#include <stdio.h>

#include "cli/output.h"

bool json_output;
static const char *cur_cmd;

void cli_set_cmd(const char *name)
{
	cur_cmd = name;
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, CLI_JSON_FLAGS));
}

void cli_emit(struct json_object *o, cli_text_fn text)
{
	if (json_output)
		print_json(o);
	else
		text(stdout, o);
}

/* The one error path: the message is formatted once for either form. */
static int verr(struct json_object *o, cli_text_fn text, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (json_output) {
		struct json_object *e = o ? json_object_get(o) : json_object_new_object();

		json_object_object_add(e, "error", json_object_new_string(msg));
		print_json(e);
		json_object_put(e);
	} else {
		if (o)
			text(stdout, o);
		/* Result first, then the error, also when both go to one file. */
		fflush(stdout);
		fprintf(stderr, "ksplit%s%s: %s\n", cur_cmd ? " " : "", cur_cmd ? cur_cmd : "",
			msg);
	}
	return 1;
}

int p_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(NULL, NULL, fmt, ap);
	va_end(ap);
	return 1;
}

int p_err_result(struct json_object *o, cli_text_fn text, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(o, text, fmt, ap);
	va_end(ap);
	return 1;
}
