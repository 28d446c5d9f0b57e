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
 *
 * A run of repeat 1 starts cold: the syscall and the kernel's copy of the
 * frame come between two runs, and the program's code, the VIP's entry and
 * the counters are no longer in the caches (an established packet costs
 * several times its repeat figure that way). New flows in a batch, the
 * way a node sees them back to back: a chain program (raw instructions
 * below) gives the frame a random source address and port, puts the VIP
 * back as destination (the previous run translated it) and tail-calls
 * ksplit_tc_ingress, in one run of repeat N on a fresh datapath
 *
 *   new_flow_batch_quarter  N = 8,192 flows from an empty table
 *   new_flow_batch_full     then N = R more (the LRU evicts for each flow)
 *
 * and the same chain tail-calling the empty program, the same N, is their
 * baseline (chain_empty_*): the difference is what ksplit_tc_ingress costs
 * a new flow with warm code and cold conntrack buckets.
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

/* Raw instructions for the chain program (no helper header of the kernel's is uapi). */
#define I_MOV_REG(d, s)	{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = d, .src_reg = s }
#define I_MOV_IMM(d, i)	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = d, .imm = i }
#define I_ADD_IMM(d, i)	{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = d, .imm = i }
#define I_STX_W(s, o)	{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .src_reg = s, .off = o }
#define I_ST_W(o, i)	{ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .off = o, .imm = i }
#define I_CALL(f)	{ .code = BPF_JMP | BPF_CALL, .imm = f }
#define I_EXIT		{ .code = BPF_JMP | BPF_EXIT }
#define I_MAP_FD(d, fd)	{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = d, \
			  .src_reg = BPF_PSEUDO_MAP_FD, .imm = fd }, { 0 }
/* bpf_skb_store_bytes(skb (r6), off, fp - 8, len, 0) */
#define I_STORE(off, len) \
	I_MOV_REG(BPF_REG_1, BPF_REG_6), I_MOV_IMM(BPF_REG_2, off), \
	I_MOV_REG(BPF_REG_3, BPF_REG_10), I_ADD_IMM(BPF_REG_3, -8), \
	I_MOV_IMM(BPF_REG_4, len), I_MOV_IMM(BPF_REG_5, 0), I_CALL(BPF_FUNC_skb_store_bytes)

/* Offsets in the IPv4 TCP frame of packets.c: Ethernet 14, IP header 20. */
#define F_SADDR	26
#define F_DADDR	30
#define F_SPORT	34
#define F_DPORT	36

/*
 * Frame := a new flow's SYN to vip:port (network order), then tail call slot
 * 0 of prog array pa. Random source address and port: over a million flows
 * a 5-tuple repeats with probability below 1%, and then that run follows the
 * entry (a retransmit) instead of making one.
 */
static int chain_prog(int pa, uint32_t vip, uint16_t port)
{
	const struct bpf_insn insns[] = {
		I_MOV_REG(BPF_REG_6, BPF_REG_1),
		I_CALL(BPF_FUNC_get_prandom_u32), I_STX_W(BPF_REG_0, -8), I_STORE(F_SADDR, 4),
		I_CALL(BPF_FUNC_get_prandom_u32), I_STX_W(BPF_REG_0, -8), I_STORE(F_SPORT, 2),
		I_ST_W(-8, (int32_t)vip), I_STORE(F_DADDR, 4),
		I_ST_W(-8, port), I_STORE(F_DPORT, 2),
		I_MOV_REG(BPF_REG_1, BPF_REG_6), I_MAP_FD(BPF_REG_2, pa), I_MOV_IMM(BPF_REG_3, 0),
		I_CALL(BPF_FUNC_tail_call),
		I_MOV_IMM(BPF_REG_0, 0), I_EXIT,
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ks_tc_chain", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), NULL);
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

/* A fresh datapath with the VIP applied, in o->pin_dir. */
static int dp_up(struct ks_dp_opts *o, struct ks_dp **dp)
{
	int err = ks_dp_open(o, dp);

	if (!err)
		err = apply(*dp);
	if (err)
		fprintf(stderr, "tc_cost: datapath: %s\n", strerror(-err));
	return err;
}

/*
 * The batch figures on a fresh datapath (see the top): out[0..1] the chain
 * into the empty program efd (NEW_EMPTY runs, then repeat), out[2..3] into
 * ksplit_tc_ingress.
 */
static int batch(struct ks_dp_opts *o, unsigned int repeat, const struct kt_pkt *syn, int efd,
		 double out[4])
{
	struct ks_dp *dp = NULL;
	int pa, chain = -1, i, fd, err;
	uint32_t vip, zero = 0;

	pa = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "ks_tc_chain", 4, 4, 1, NULL);
	if (pa < 0)
		return -errno;
	memcpy(&vip, syn->b + F_DADDR, 4);
	chain = chain_prog(pa, vip, htons(80));
	if (chain < 0) {
		err = -errno;
		fprintf(stderr, "tc_cost: cannot load the chain program: %s\n", strerror(errno));
		goto out;
	}
	err = dp_up(o, &dp);
	for (i = 0; !err && i < 2; i++) {
		fd = i ? ks_dp_tc_prog_fd(dp, true) : efd;
		if (bpf_map_update_elem(pa, &zero, &fd, BPF_ANY)) {
			err = -errno;
			break;
		}
		out[2 * i] = run(chain, syn, NEW_EMPTY, 0);
		out[2 * i + 1] = run(chain, syn, repeat, 0);
	}
out:
	ks_dp_close(dp);
	if (dp)
		ks_dp_down(o->pin_dir, NULL);
	if (chain >= 0)
		close(chain);
	close(pa);
	return err;
}

int main(int argc, char **argv)
{
	struct ks_dp_opts o = { .cgroup = KS_CGROUP_NONE };
	struct kt_pkt_spec s = { .family = 4, .proto = IPPROTO_TCP, .src = "10.1.0.1",
				 .dst = "10.96.0.10", .sport = 40000, .dport = 80,
				 .tcp_flags = TH_SYN };
	unsigned int repeat = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 10) : 1000000;
	double nonvip, est, est1, new0, new1, base, base1, b[4] = { -1, -1, -1, -1 };
	struct ks_dp *dp = NULL;
	struct kt_pkt syn, ack, other;
	int fd, efd, err;

	if (argc < 2 || repeat < 1000000) {
		fprintf(stderr, "usage: tc_cost PIN_DIR [REPEAT >= 1000000]\n");
		return 2;
	}
	o.pin_dir = argv[1];
	err = dp_up(&o, &dp);
	if (err)
		goto out;
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
	nonvip = run(fd, &other, repeat, 0);
	/* The SYN makes the flow's entry; its ACKs follow it. */
	est = run(fd, &syn, 1, 0) < 0 ? -1 : run(fd, &ack, repeat, 0);
	est1 = per_call(fd, 0, repeat, &ack);
	/* 8,192 flows fill a quarter of the table; the next million keep it full (LRU evicts). */
	new0 = per_call(fd, 0, NEW_EMPTY, NULL);
	new1 = per_call(fd, NEW_EMPTY, repeat, NULL);
	ks_dp_close(dp);
	dp = NULL;
	ks_dp_down(o.pin_dir, NULL);
	err = batch(&o, repeat, &syn, efd, b);
	close(efd);
	if (err)
		goto out;
	if (b[0] < 0 || b[1] < 0 || b[2] < 0 || b[3] < 0 ||
	    base < 0 || base1 < 0 || nonvip < 0 || est < 0 || est1 < 0 || new0 < 0 || new1 < 0) {
		fprintf(stderr, "tc_cost: BPF_PROG_TEST_RUN failed or gave another verdict\n");
		err = -EIO;
		goto out;
	}
	printf("empty_repeat %.1f\nempty_single %.1f\n", base, base1);
	printf("nonvip_repeat %.1f\nestablished_repeat %.1f\nestablished_single %.1f\n"
	       "new_flow_single_table_quarter %.1f\nnew_flow_single_table_full %.1f\n", nonvip, est,
	       est1, new0, new1);
	printf("chain_empty_quarter %.1f\nchain_empty_full %.1f\n"
	       "new_flow_batch_quarter %.1f\nnew_flow_batch_full %.1f\n", b[0], b[1], b[2], b[3]);
out:
	ks_dp_close(dp);
	ks_dp_down(o.pin_dir, NULL);
	return err ? 1 : 0;
}
