// SPDX-License-Identifier: BSD-2-Clause
/* `ksplit down`: detach every pinned link and remove what ksplit pinned. */
#include <string.h>
#include <json-c/json.h>

#include "agent/lock.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "datapath/dp.h"

static void down_text(FILE *f, struct json_object *o)
{
	struct json_object *v;

	json_object_object_get_ex(o, "removed", &v);
	fprintf(f, "removed %d pinned objects from %s\n", json_object_get_int(v),
		json_object_get_string(json_object_object_get(o, "pin_dir")));
}

int do_down(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct json_object *o;
	unsigned int removed = 0;
	const char *pin_dir;
	bool force;
	pid_t holder = 0;
	int err, rc;

	if (cli_opts(cmd, argc, argv, &pin_dir, &force, NULL, &rc))
		return rc;
	/* An agent would keep serving from maps that are gone: every VIP refused. */
	if (ks_lock_held(pin_dir, &holder) == 1 && !force)
		return p_err("an agent (pid %d) is running on %s; stop it first, or use --force",
			     (int)holder, pin_dir);
	err = ks_dp_down(pin_dir, &removed);
	o = json_object_new_object();
	json_object_object_add(o, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(o, "removed", json_object_new_int(removed));
	json_object_object_add(o, "ok", json_object_new_boolean(!err));
	/* What was removed is reported either way: down may fail half-way. */
	if (err) {
		rc = p_err_result(o, down_text, "%s", strerror(-err));
	} else {
		cli_emit(o, down_text);
		rc = 0;
	}
	json_object_put(o);
	return rc;
}
