/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The `ksplit status` report, built only from the pinned maps so it works
 * while the agent is stopped: a json-c object (the --json output), from
 * which the text form is rendered.
 */
#ifndef KSPLIT_STATUS_H
#define KSPLIT_STATUS_H

#include <json-c/json.h>

/* pin_dir NULL: KS_DEFAULT_PIN_DIR. 0 or -errno; *out is the caller's. */
int ks_status_collect(const char *pin_dir, struct json_object **out);

#endif
