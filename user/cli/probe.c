// SPDX-License-Identifier: BSD-2-Clause
/* `ksplit probe`: what this kernel supports of what ksplit uses, and the verdict. */
#include <sys/utsname.h>
#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "datapath/features.h"

int do_probe(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct ks_features f = {};
	struct json_object *o;
	struct utsname u;
	char msg[512];
	int rc;

	if (cli_opts(cmd, argc, argv, NULL, NULL, &rc))
		return rc;
	if (uname(&u))
		u.release[0] = '\0';
	ks_features_probe(&f);
	o = ks_features_json(&f, u.release);
	rc = 0;
	if (ks_features_verdict(&f, msg, sizeof(msg)))
		rc = p_err_result(o, ks_features_text, "%s", msg);
	else
		cli_emit(o, ks_features_text);
	json_object_put(o);
	return rc;
}
