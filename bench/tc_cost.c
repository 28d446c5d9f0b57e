// SPDX-License-Identifier: BSD-2-Clause
/*
 * Per-packet cost of the TC programs with BPF_PROG_TEST_RUN (root, no
 * topology): the datapath is opened in-process with --cgroup none and a
 * scratch pin dir, one Gateway VIP applied, and crafted frames
 * (selftests/kern/packets.c) run through ksplit_tc_ingress:
 *
 *   non-VIP      a TCP ACK to an address no VIP has, repeat R
 *   established  an ACK of a flow whose entry exists, repeat R
 *   new flow     R runs of repeat 1, each a SYN of a new 5-tuple (a repeated
 *                frame would find the entry its first run made); the same
 *                per-call method is shown for established as its reference
 *
 * and, as the same-run baseline, a program that only returns TC_ACT_OK, by
 * both methods. Prints one "name ns" line each: the kernel's average
 * duration per run (repeat R), the median of the per-call durations (the
 * runs of repeat 1).
 * Usage: tc_cost PIN_DIR [REPEAT] (REPEAT >= 1,000,000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "config/config.h"
#include "datapath/dp.h"
#include "image/image.h"
#include "packets.h"

#define YAML \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n" \
	"metadata: {name: gw, namespace: b}\nspec:\n  gatewayClassName: ksplit\n" \
	"  addresses:\n  - {type: IPAddress, value: \"10.96.0.10\"}\n" \
	"  listeners:\n  - {name: tcp, port: 80, protocol: TCP}\n" \
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: v1, namespace: b}\n" \
	"spec:\n  type: ClusterIP\n  ports:\n  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}\n" \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" \
	"metadata:\n  name: v1\n  namespace: b\n  labels: {kubernetes.io/service-name: v1}\n" \
	"addressType: IPv4\nports:\n- {name: tcp, port: 8080, protocol: TCP}\nendpoints:\n" \
	"- addresses: [\"10.244.1.1\"]\n- addresses: [\"10.244.1.2\"]\n- addresses: [\"10.244.1.3\"]\n" \
	"---\napiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\n" \
	"metadata: {name: r, namespace: b}\nspec:\n  parentRefs:\n  - {name: gw, sectionName: tcp}\n" \
	"  rules:\n  - backendRefs:\n    - {name: v1, port: 80, weight: 1}\n"

#define NEW_EMPTY	8192

/* The same-run baseline: a TC program that only returns TC_ACT_OK. */
static int empty_prog(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ks_tc_empty", "GPL", insns, 2, NULL);
}

static int apply(struct ks_dp *dp)
{
	const char *names[] = { "bench.yaml" }, *bufs[] = { YAML };
	size_t lens[] = { strlen(YAML) };
	struct ks_load_opts lo = {};
	struct ks_apply_stats st;
	struct ks_diags d = {};
	struct ks_model m = {};
	struct ks_image img = {};
	int err;

	err = ks_model_load_buffers_opts(&lo, names, bufs, lens, 1, &m, &d);
	if (!err && d.n_errors)
		err = -EINVAL;
	if (!err)
		err = ks_image_build(&m, &img);
	if (!err)
		err = ks_dp_apply(dp, &img, &st);
	ks_image_free(&img);
	ks_model_free(&m);
	ks_diags_free(&d);
	return err;
}

/* The kernel's average ns per run of p, repeat times; < 0 on error. */
static double run(int fd, const struct kt_pkt *p, unsigned int repeat, uint32_t want_ret)
{
	struct kt_pkt out;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (uint32_t)p->len,
		    .data_out = out.b, .data_size_out = sizeof(out.b), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o) || o.retval != want_ret)
		return -1;
	return o.duration;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Median of n single runs: of fixed, or (NULL) of SYNs of n distinct
 * 5-tuples. The median, not the mean: on a shared machine a run that is
 * preempted or interrupted counts once, not by how long it waited.
 */
static double per_call(int fd, unsigned int first, unsigned int n, const struct kt_pkt *fixed)
{
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .dst = "10.96.0.10",
				 .dport = 80, .tcp_flags = TH_SYN };
	double *d = malloc(n * sizeof(*d)), med = -1;
	struct kt_pkt p;
	unsigned int i;
	char src[32];

	if (!d)
		return -1;
	for (i = first; i < first + n; i++) {
		if (!fixed) {
			/* 65,000 ports per source address: every SYN is a flow never seen. */
			s.sport = (uint16_t)(1 + i % 65000);
			snprintf(src, sizeof(src), "10.1.%u.%u", (i / 65000) / 250,
				 1 + (i / 65000) % 250);
			s.src = src;
			kt_pkt_build(&s, &p);
		}
		d[i - first] = run(fd, fixed ? fixed : &p, 1, 0);
		if (d[i - first] < 0)
			goto out;
	}
	qsort(d, n, sizeof(*d), cmp_double);
	med = n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
out:
	free(d);
	return med;
}

int main(int argc, char **argv)
{
	struct ks_dp_opts o = { .cgroup = KS_CGROUP_NONE };
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = "10.1.0.1",
				 .dst = "10.96.0.10", .sport = 40000, .dport = 80,
				 .tcp_flags = TH_SYN };
	unsigned int repeat = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 10) : 1000000;
	double nonvip, est, est1, new0, new1, base, base1;
	struct ks_dp *dp = NULL;
	struct kt_pkt syn, ack, other;
	int fd, efd, err;

	if (argc < 2 || repeat < 1000000) {
		fprintf(stderr, "usage: tc_cost PIN_DIR [REPEAT >= 1000000]\n");
		return 2;
	}
	o.pin_dir = argv[1];
	err = ks_dp_open(&o, &dp);
	if (!err)
		err = apply(dp);
	if (err) {
		fprintf(stderr, "tc_cost: datapath: %s\n", strerror(-err));
		goto out;
	}
	fd = ks_dp_tc_prog_fd(dp, true);
	kt_pkt_build(&s, &syn);
	s.tcp_flags = TH_ACK;
	kt_pkt_build(&s, &ack);
	s.dst = "10.244.9.9";
	kt_pkt_build(&s, &other);
	efd = empty_prog();
	if (efd < 0) {
		err = -errno;
		fprintf(stderr, "tc_cost: cannot load the empty baseline program: %s\n", strerror(errno));
		goto out;
	}
	base = run(efd, &other, repeat, 0);
	base1 = per_call(efd, 0, repeat, &other);
	close(efd);
	nonvip = run(fd, &other, repeat, 0);
	/* The SYN makes the flow's entry; its ACKs follow it. */
	est = run(fd, &syn, 1, 0) < 0 ? -1 : run(fd, &ack, repeat, 0);
	est1 = per_call(fd, 0, repeat, &ack);
	/* 8,192 flows fill a quarter of the table; the next million keep it full (LRU evicts). */
	new0 = per_call(fd, 0, NEW_EMPTY, NULL);
	new1 = per_call(fd, NEW_EMPTY, repeat, NULL);
	if (base < 0 || base1 < 0 || nonvip < 0 || est < 0 || est1 < 0 || new0 < 0 || new1 < 0) {
		fprintf(stderr, "tc_cost: BPF_PROG_TEST_RUN failed or gave another verdict\n");
		err = -EIO;
		goto out;
	}
	printf("empty_repeat %.1f\nempty_single %.1f\n", base, base1);
	printf("nonvip_repeat %.1f\nestablished_repeat %.1f\nestablished_single %.1f\n"
	       "new_flow_single_table_quarter %.1f\nnew_flow_single_table_full %.1f\n", nonvip, est,
	       est1, new0, new1);
out:
	ks_dp_close(dp);
	ks_dp_down(o.pin_dir, NULL);
	return err ? 1 : 0;
}
