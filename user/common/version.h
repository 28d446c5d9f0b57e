/* SPDX-License-Identifier: BSD-2-Clause */
/* The one place the version is written: `ksplit version` and ksplit_build_info read it. */
#ifndef KSPLIT_VERSION_H
#define KSPLIT_VERSION_H

#define KSPLIT_VERSION "0.1.0"

#endif
