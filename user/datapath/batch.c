// SPDX-License-Identifier: BSD-2-Clause
/*
 * Map writes in batches (BPF_MAP_UPDATE_BATCH): an initial sync writes a
 * few entries per endpoint into several maps, millions of single updates
 * at 50,000 services; a batch writer takes them a few thousand at a time
 * per syscall. Order between maps is the caller's: apply.c flushes the
 * backing maps before it writes the entries that publish them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "datapath/dp_int.h"

#define ENOMEM_TRIES	20

int dp_batch_init(struct dp_batch *b, int fd, uint32_t key_size, uint32_t value_size,
		  uint32_t cap)
{
	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->ksz = key_size;
	b->vsz = value_size;
	b->cap = cap;
	b->k = malloc((size_t)cap * key_size);
	b->v = malloc((size_t)cap * value_size);
	return b->k && b->v ? 0 : -ENOMEM;
}

void dp_batch_fini(struct dp_batch *b)
{
	free(b->k);
	free(b->v);
	b->k = b->v = NULL;
}

int dp_batch_flush(struct dp_batch *b)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
	uint32_t done = 0, count;
	int tries = 0;

	while (done < b->n) {
		count = b->n - done;
		if (!bpf_map_update_batch(b->fd, b->k + (size_t)done * b->ksz,
					  b->v + (size_t)done * b->vsz, &count, &o)) {
			done += count;
			continue;
		}
		/* count says how many went in before the one that failed. */
		done += count;
		/*
		 * A map without prealloc takes its elements from per-CPU caches
		 * that irq_work refills: thousands of inserts in a row on a busy
		 * machine can drain them and see a transient ENOMEM. Give the
		 * refill a moment, as often as it makes progress.
		 */
		if (errno != ENOMEM || (!count && ++tries > ENOMEM_TRIES)) {
			b->written += done;
			b->n = 0;
			return -errno;
		}
		if (count)
			tries = 0;
		usleep(1000);
	}
	b->written += done;
	b->n = 0;
	return 0;
}

int dp_batch_add(struct dp_batch *b, const void *key, const void *value)
{
	if (b->n == b->cap) {
		int err = dp_batch_flush(b);

		if (err)
			return err;
	}
	memcpy(b->k + (size_t)b->n * b->ksz, key, b->ksz);
	if (value)
		memcpy(b->v + (size_t)b->n * b->vsz, value, b->vsz);
	else
		memset(b->v + (size_t)b->n * b->vsz, 0, b->vsz);
	b->n++;
	return 0;
}
