// SPDX-License-Identifier: BSD-2-Clause
/* `ksplit version`. */
#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/version.h"

static void version_text(FILE *f, struct json_object *o)
{
	fprintf(f, "ksplit %s\n", json_object_get_string(json_object_object_get(o, "version")));
}

int do_version(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct json_object *o;
	int rc;

	if (cli_opts(cmd, argc, argv, NULL, NULL, &rc))
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(KSPLIT_VERSION));
	cli_emit(o, version_text);
	json_object_put(o);
	return 0;
}
