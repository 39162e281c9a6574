/*
 * bench-l1-order: what an L1 hit costs, over more keys than the caches
 * hold, depending on the order the L1's entries were allocated in.
 *
 *   bench-l1-order [KEYS [PASSES]]   (100000 20)
 *
 * One arena holds KEYS keys (16 B keys, 16 B values).  A fresh cache
 * handle fills its L1 by getting every key once, in one order, and then
 * gets them all again PASSES times, in one order, every get an L1 hit:
 *   filled in key order, read shuffled    the entries are scattered over
 *                                         the walk: what a server sees
 *   filled shuffled, read in that order   each entry follows the last in
 *                                         memory: the hardware prefetcher
 *                                         hides the misses
 *   filled shuffled, read in another      scattered again
 * Until d3958ef the l1_hit_cold case measured the second: its fill lapped
 * the log, the first get emptied the L1, and the warm-up walk (the same
 * shuffle as the timed one) filled it again in that order.
 * bench/results/latest/profile.md, "L1 hit, 100k keys", reads the numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mlc.h>

#include "bench.h"	/* BENCH_KEY, shuffle_keys(), bench_now_ns() */

static uint32_t n;

/* Get every key of @p keys (n of them, in that order) once; a negative
 * code on an error. */
static int
walk(struct mlc_cache *c, const char *keys, uint32_t *l1)
{
	for (uint32_t i = 0; i < n; i++) {
		struct mlc_value v;
		int rc = mlc_get(c, keys + (size_t)i * BENCH_KEY, BENCH_KEY,
				 NULL, NULL, &v);

		if (rc < 0)
			return rc;
		*l1 += v.level == MLC_L1;
		mlc_value_release(&v);
	}
	return 0;
}

static int
one(struct mlc_arena *a, const char *what, const char *fill,
    const char *read, int passes)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	uint32_t l1 = 0;
	uint64_t t0, t1;
	int rc;

	co.ttl_ms = MLC_TTL_NEVER;
	co.lru_size = n + 1024;
	if ((rc = mlc_cache_open(&c, a, "b", &co)) < 0)
		return rc;
	if ((rc = walk(c, fill, &l1)) < 0)
		goto out;
	l1 = 0;
	t0 = bench_now_ns();
	for (int p = 0; p < passes && rc == 0; p++)
		rc = walk(c, read, &l1);
	t1 = bench_now_ns();
	if (rc == 0)
		printf("%-40s %7.1f ns/get (%u of %llu from L1)\n", what,
		       (double)(t1 - t0) / ((double)n * passes), l1,
		       (unsigned long long)n * (unsigned long long)passes);
out:
	mlc_cache_close(c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w;
	struct mlc_arena *a;
	char *keys, *p, *q;	/* key order, one shuffle, another */
	size_t bytes;
	char name[64];
	int passes, rc;

	n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
	passes = argc > 2 ? atoi(argv[2]) : 20;
	if (n < 2 || passes < 1) {
		fprintf(stderr, "usage: bench-l1-order [KEYS [PASSES]]\n");
		return 2;
	}
	bytes = (size_t)n * BENCH_KEY;
	keys = malloc(bytes);
	p = malloc(bytes);
	q = malloc(bytes);
	if (keys == NULL || p == NULL || q == NULL)
		return 1;
	for (uint32_t i = 0; i < n; i++) {
		char k[BENCH_KEY + 1];

		snprintf(k, sizeof(k), "k%015u", i);
		memcpy(keys + (size_t)i * BENCH_KEY, k, BENCH_KEY);
	}
	memcpy(p, keys, bytes);
	shuffle_keys(p, n, 42);
	memcpy(q, keys, bytes);
	shuffle_keys(q, n, 4242);

	snprintf(name, sizeof(name), "bench-l1-order-%ld", (long)getpid());
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	ao.bytes = ((uint64_t)n * 256 + (64u << 20));
	ao.max_items = 2 * n + 1024;
	if ((rc = mlc_arena_open(&a, name, &ao)) < 0) {
		fprintf(stderr, "mlc_arena_open: %s\n", mlc_strerror(rc));
		return 1;
	}
	co.flags = MLC_CACHE_NO_L1;
	co.ttl_ms = MLC_TTL_NEVER;
	rc = mlc_cache_open(&w, a, "b", &co);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = mlc_set(w, keys + (size_t)i * BENCH_KEY, BENCH_KEY,
			     "0123456789abcdef", 16, NULL);
	if (rc == 0)
		mlc_cache_close(w);
	printf("%u keys, %d passes\n", n, passes);
	if (rc == 0)
		rc = one(a, "filled in key order, read shuffled", keys, p,
			 passes);
	if (rc == 0)
		rc = one(a, "filled shuffled, read in that order", p, p,
			 passes);
	if (rc == 0)
		rc = one(a, "filled shuffled, read in another", p, q, passes);
	if (rc < 0)
		fprintf(stderr, "bench-l1-order: %s\n", mlc_strerror(rc));
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
	free(keys);
	free(p);
	free(q);
	return rc < 0;
}
