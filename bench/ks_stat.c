// SPDX-License-Identifier: BSD-2-Clause
/*
 * ks_stat: small helpers for bench/run.sh that want C rather than awk.
 *
 *   ks_stat chi2 W:C [W:C ...]
 *       Pearson chi-square goodness of fit of observed counts C against
 *       weights W. Prints "chi2 DF P" (P = upper tail probability).
 *   ks_stat cdf --target ADDR:PORT[,ADDR:PORT...] -n COUNT [--cpu N] [--points K]
 *       The ks_load operation (socket, SO_LINGER {1,0}, connect, send "x\n",
 *       read to EOF, close), COUNT times; prints K+1 lines "LAT_US FRACTION"
 *       of the exact empirical CDF (every sample kept and sorted), for plots.
 *       With several targets the operations rotate over them.
 *   ks_stat flip --target ADDR:PORT --want PREFIX [--timeout-ms T]
 *       Repeats that operation until a reply starts with PREFIX. Prints
 *       "T_NS OPS": CLOCK_REALTIME ns at the start of the first such
 *       operation, and how many operations that took. Exit 1 on timeout.
 *   ks_stat mapw --pin-dir DIR --vip A.B.C.D --port P --weights WA,WB
 *       Rewrites the two group weights of one ksplit service entry in the
 *       pinned ks_services map with one bpf_map_update_elem() and prints the
 *       ns that syscall took (the raw kernel cost of a weight change).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ksplit/abi.h>

static uint64_t clk_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---- chi-square upper tail: Q(df/2, x/2), the regularized upper incomplete gamma ---- */

static double gamma_q(double a, double x)
{
	double gln = lgamma(a);

	if (x <= 0)
		return 1.0;
	if (x < a + 1) {	/* series for P, Q = 1 - P */
		double ap = a, sum = 1.0 / a, del = sum;

		for (int n = 0; n < 10000; n++) {
			ap += 1;
			del *= x / ap;
			sum += del;
			if (fabs(del) < fabs(sum) * 1e-15)
				break;
		}
		return 1.0 - sum * exp(-x + a * log(x) - gln);
	}
	/* Lentz continued fraction for Q */
	double b = x + 1 - a, c = 1.0 / 1e-300, d = 1.0 / b, h = d;

	for (int i = 1; i < 10000; i++) {
		double an = -i * (i - a), del;

		b += 2;
		d = an * d + b;
		if (fabs(d) < 1e-300)
			d = 1e-300;
		c = b + an / c;
		if (fabs(c) < 1e-300)
			c = 1e-300;
		d = 1.0 / d;
		del = d * c;
		h *= del;
		if (fabs(del - 1) < 1e-15)
			break;
	}
	return exp(-x + a * log(x) - gln) * h;
}

static int cmd_chi2(int argc, char **argv)
{
	double w[256], c[256], sw = 0, sc = 0, chi = 0;
	int k = 0;

	for (int i = 1; i < argc && k < 256; i++) {
		if (sscanf(argv[i], "%lf:%lf", &w[k], &c[k]) != 2 || w[k] < 0 || c[k] < 0) {
			fprintf(stderr, "ks_stat chi2: want WEIGHT:COUNT, got '%s'\n", argv[i]);
			return 2;
		}
		sw += w[k];
		sc += c[k];
		k++;
	}
	if (k < 2 || sw <= 0 || sc <= 0) {
		fprintf(stderr, "ks_stat chi2: need at least two WEIGHT:COUNT with counts\n");
		return 2;
	}
	int df = -1;
	for (int i = 0; i < k; i++) {
		double e = sc * w[i] / sw;

		if (e <= 0) {
			if (c[i] > 0) {	/* mass where none is expected: impossible under H0 */
				printf("inf %d 0\n", k - 1);
				return 0;
			}
			continue;
		}
		chi += (c[i] - e) * (c[i] - e) / e;
		df++;
	}
	printf("%.3f %d %.4g\n", chi, df, df > 0 ? gamma_q(df / 2.0, chi / 2.0) : 1.0);
	return 0;
}

/* ---- the connect operation ---- */

#define MAX_TARGETS 64
static struct sockaddr_in targets[MAX_TARGETS], target;
static int n_targets, next_target;
static int timeout_ms = 2000;

static int parse_one(const char *s)
{
	char buf[64], *colon;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = 0;
	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	target.sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, buf, &target.sin_addr) == 1 ? 0 : -1;
}

/* ADDR:PORT[,ADDR:PORT...]: operations rotate over the list. */
static int parse_target(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n_targets == MAX_TARGETS || parse_one(tok)) {
			free(copy);
			return -1;
		}
		targets[n_targets++] = target;
	}
	free(copy);
	return n_targets ? 0 : -1;
}

/* One op; reply (NUL-terminated, first line) in buf. Returns 0 or -errno. */
static int one_op(char *buf, size_t len)
{
	struct linger lg = { 1, 0 };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	size_t got = 0;
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&targets[next_target++ % n_targets], sizeof(target)) ||
	    send(fd, "x\n", 2, MSG_NOSIGNAL) != 2) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t r = recv(fd, buf + got, len - 1 - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0 || got + r >= len - 1) {
			got += r;
			break;
		}
		got += r;
	}
	buf[got] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (!got)
		err = -ENODATA;
out:
	close(fd);
	return err;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return -1;
	}
	return 0;
}

static int cmd_cdf_flip(int argc, char **argv, bool flip)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "points", required_argument, NULL, 'p' },
		{ "want", required_argument, NULL, 'w' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ 0 }
	};
	long n = 0, points = 200, flip_timeout = 30000;
	const char *want = NULL;
	int cpu = -1, opt;
	char buf[512];

	while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_target(optarg)) {
				fprintf(stderr, "ks_stat: bad --target '%s' (IPv4 ADDR:PORT)\n", optarg);
				return 2;
			}
			break;
		case 'n': n = atol(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 'p': points = atol(optarg); break;
		case 'w': want = optarg; break;
		case 'T': flip_timeout = atol(optarg); break;
		default: return 2;
		}
	}
	if (!target.sin_port || (flip ? !want : n <= 0) || points < 1) {
		fprintf(stderr, "ks_stat: missing --target, %s\n", flip ? "--want" : "-n or --points");
		return 2;
	}
	if (pin_cpu(cpu))
		return 1;
	if (flip) {
		uint64_t deadline = clk_ns(CLOCK_MONOTONIC) + flip_timeout * 1000000ull;
		size_t wl = strlen(want);

		timeout_ms = 200;
		for (uint64_t ops = 1;; ops++) {
			uint64_t t = clk_ns(CLOCK_REALTIME);

			if (!one_op(buf, sizeof(buf)) && !strncmp(buf, want, wl)) {
				printf("%llu %llu\n", (unsigned long long)t, (unsigned long long)ops);
				return 0;
			}
			if (clk_ns(CLOCK_MONOTONIC) > deadline) {
				fprintf(stderr, "ks_stat flip: no reply starting with '%s' in %ld ms\n",
					want, flip_timeout);
				return 1;
			}
		}
	}
	uint64_t *lat = malloc(n * sizeof(*lat));
	long ok = 0, errs = 0;

	if (!lat)
		return 1;
	for (long i = 0; i < n; i++) {
		uint64_t t0 = clk_ns(CLOCK_MONOTONIC);

		if (one_op(buf, sizeof(buf))) {
			errs++;
			continue;
		}
		lat[ok++] = clk_ns(CLOCK_MONOTONIC) - t0;
	}
	if (!ok) {
		fprintf(stderr, "ks_stat cdf: every operation failed\n");
		return 1;
	}
	qsort(lat, ok, sizeof(*lat), u64cmp);
	printf("# ok %ld errors %ld\n", ok, errs);
	for (long k = 0; k <= points; k++) {
		long idx = (long)((double)k / points * (ok - 1) + 0.5);

		printf("%.3f %.5f\n", lat[idx] / 1e3, (idx + 1.0) / ok);
	}
	free(lat);
	return 0;
}

/* ---- one weight change straight into the map ---- */

static int cmd_mapw(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "vip", required_argument, NULL, 'v' },
		{ "port", required_argument, NULL, 'p' },
		{ "weights", required_argument, NULL, 'w' },
		{ 0 }
	};
	const char *dir = NULL, *vip = NULL;
	unsigned int wa = 0, wb = 0, port = 0;
	bool have_w = false;
	char path[4096];
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'v': vip = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'w': have_w = sscanf(optarg, "%u,%u", &wa, &wb) == 2; break;
		default: return 2;
		}
	}
	if (!dir || !vip || !port || !have_w) {
		fprintf(stderr, "ks_stat mapw: need --pin-dir --vip --port --weights WA,WB\n");
		return 2;
	}
	struct ks_svc_key key;
	struct ks_svc svc;

	memset(&key, 0, sizeof(key));
	if (inet_pton(AF_INET, vip, &key.addr[0]) != 1)
		return 2;
	key.port = htons(port);
	key.proto = IPPROTO_TCP;
	key.family = KS_FAMILY_V4;
	snprintf(path, sizeof(path), "%s/ks_services", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "ks_stat mapw: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (bpf_map_lookup_elem(fd, &key, &svc)) {
		fprintf(stderr, "ks_stat mapw: %s:%u not in the map: %s\n", vip, port, strerror(errno));
		return 1;
	}
	if (svc.n_groups != 2) {
		fprintf(stderr, "ks_stat mapw: service has %u groups, want 2\n", svc.n_groups);
		return 1;
	}
	svc.groups[0].weight_end = wa;
	svc.groups[1].weight_end = wa + wb;
	svc.total_weight = wa + wb;
	svc.rev++;
	uint64_t t0 = clk_ns(CLOCK_MONOTONIC);
	int err = bpf_map_update_elem(fd, &key, &svc, BPF_EXIST);
	uint64_t t1 = clk_ns(CLOCK_MONOTONIC);

	if (err) {
		fprintf(stderr, "ks_stat mapw: update: %s\n", strerror(errno));
		return 1;
	}
	printf("%llu\n", (unsigned long long)(t1 - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: ks_stat chi2 W:C [W:C ...]\n"
			"       ks_stat cdf --target ADDR:PORT -n COUNT [--cpu N] [--points K]\n"
			"       ks_stat flip --target ADDR:PORT --want PREFIX [--timeout-ms T]\n"
			"       ks_stat mapw --pin-dir DIR --vip A.B.C.D --port P --weights WA,WB\n");
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "chi2"))
		return cmd_chi2(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cdf"))
		return cmd_cdf_flip(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "flip"))
		return cmd_cdf_flip(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "mapw"))
		return cmd_mapw(argc - 1, argv + 1);
	fprintf(stderr, "ks_stat: unknown command '%s'\n", argv[1]);
	return 2;
}
