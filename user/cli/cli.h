/* SPDX-License-Identifier: BSD-2-Clause */
/* Report builders for CLI commands that are not a concern of their own file. */
#ifndef KSPLIT_CLI_H
#define KSPLIT_CLI_H

#include <json-c/json.h>
#include <stdio.h>
#include <stddef.h>

/* Builds {"valid", "errors"[], "warnings"[], "services"[]}; -EINVAL when invalid. */
int ks_cli_validate(const char *const *paths, size_t n, struct json_object **out);
void ks_cli_validate_text(FILE *f, struct json_object *o);

#endif
