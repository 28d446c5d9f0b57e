/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `ksplit status`: a report built only from the pinned maps, so it works
 * while the agent is stopped. The report is a json-c object; the text form
 * is rendered from that same object.
 */
#ifndef KSPLIT_STATUS_H
#define KSPLIT_STATUS_H

#include <json-c/json.h>
#include <stdio.h>

int ks_status_collect(const char *pin_dir, struct json_object **out);
void ks_status_print_text(FILE *f, struct json_object *st);

#endif
