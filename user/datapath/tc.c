// SPDX-License-Identifier: BSD-2-Clause
/*
 * The per-packet TC programs (bpf/tc.bpf.c): their fds, for the packet
 * tests and the bench, which run them with BPF_PROG_TEST_RUN.
 */
#include <errno.h>
#include <bpf/libbpf.h>

#include "datapath/dp_int.h"

int ks_dp_tc_prog_fd(const struct ks_dp *dp, bool ingress)
{
	const struct ks_hook *h = dp_tc_hook(ingress);
	struct bpf_program *p = bpf_object__find_program_by_name(dp->skel->obj, h->prog);

	return p ? bpf_program__fd(p) : -ENOENT;
}
