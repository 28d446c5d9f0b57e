// SPDX-License-Identifier: BSD-2-Clause
/*
 * map_insert: what one new element costs in each map kind the agent writes
 * at an initial sync, in this run, as a ratio to a preallocated array. It
 * explains where a 50,000-service start spends its seconds: the per-CPU
 * counters (ks_ep_stats, ks_svc_stats, ks_group_stats) are hashes without
 * prealloc, and every new element takes a per-CPU allocation.
 *
 *   build/map_insert [N]      (root; N new elements per map, default 200,000)
 *
 * Each map is made fresh with room for N + 1024, filled with zero values in
 * batches of 4,096 (BPF_MAP_UPDATE_BATCH), then closed. ENOMEM (a per-CPU
 * cache not refilled yet) is retried and counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define BATCH	4096
#define VSZ	24	/* ks_ep_stats, ks_group_stats */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Seconds to insert n zero elements; -1 on error. */
static double fill(enum bpf_map_type type, unsigned int flags, unsigned int n, int ncpus,
		   unsigned long *retries)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	bool pcpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY;
	size_t stride = pcpu ? (size_t)((VSZ + 7) & ~7) * ncpus : VSZ;
	unsigned int *keys = malloc(sizeof(*keys) * n), i, c, done;
	char *vals = calloc(n, stride);
	double t0, t = -1;
	int fd = bpf_map_create(type, "ks_insert", 4, VSZ, n + 1024, &o);

	if (fd < 0 || !keys || !vals)
		goto out;
	for (i = 0; i < n; i++)
		keys[i] = i;
	t0 = now_s();
	for (i = 0; i < n; i += c) {
		c = n - i < BATCH ? n - i : BATCH;
		for (done = 0; done < c;) {
			unsigned int cnt = c - done;

			if (bpf_map_update_batch(fd, keys + i + done, vals + (size_t)(i + done) * stride,
						 &cnt, &bo)) {
				if (errno != ENOMEM)
					goto out;
				(*retries)++;
				usleep(1000);
			}
			done += cnt;
		}
	}
	t = now_s() - t0;
out:
	if (fd >= 0)
		close(fd);
	free(keys);
	free(vals);
	return t;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum bpf_map_type type;
		unsigned int flags;
	} kinds[] = {
		{ "array (baseline)", BPF_MAP_TYPE_ARRAY, 0 },
		{ "hash, prealloc", BPF_MAP_TYPE_HASH, 0 },
		{ "hash, no prealloc", BPF_MAP_TYPE_HASH, BPF_F_NO_PREALLOC },
		{ "percpu hash, prealloc", BPF_MAP_TYPE_PERCPU_HASH, 0 },
		{ "percpu hash, no prealloc", BPF_MAP_TYPE_PERCPU_HASH, BPF_F_NO_PREALLOC },
	};
	unsigned int n = argc > 1 ? (unsigned int)atoi(argv[1]) : 200000, i;
	int ncpus = libbpf_num_possible_cpus();
	double base = 0;

	printf("map_insert: %u new elements per map, %d possible CPUs\n", n, ncpus);
	printf("%-26s %10s %10s %8s %8s\n", "map", "seconds", "us/elem", "x array", "ENOMEM");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		unsigned long retries = 0;
		double t = fill(kinds[i].type, kinds[i].flags, n, ncpus, &retries);

		if (t < 0) {
			fprintf(stderr, "map_insert: %s: %s\n", kinds[i].name, strerror(errno));
			return 1;
		}
		if (!i)
			base = t;
		printf("%-26s %10.3f %10.2f %8.1f %8lu\n", kinds[i].name, t, t / n * 1e6, t / base,
		       retries);
	}
	return 0;
}
