// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The maps of ksplit, defined once here and nowhere else: every program
 * object sees them extern through lib/maps.h. Kept apart from the programs
 * so that no hook owns the maps and the Makefile can put this object first
 * on the `bpftool gen object` line (see lib/maps.h for why it must).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define KS_DEFINE_MAPS
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
