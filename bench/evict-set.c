/*
 * bench-evict-set: the cost of a set into a full arena, where every set
 * evicts (the path mlc-bench's cases avoid: their arenas never fill).
 *
 *   build-bench/bench/bench-evict-set [SETS] [KEY_BYTES]
 *
 * A 16 MiB anonymous arena (an interrupted run leaves nothing in
 * /dev/shm) with its default page, max_items 200,000 (the index never
 * limits it), a handle without L1; SETS (default 1,000,000) distinct keys
 * of KEY_BYTES (default 16, at most 255) with 16-byte values.  The last
 * two thirds are timed: prints ns per set and the arena's items and
 * evictions.  To compare two builds, run the same binary against each
 * library (LD_LIBRARY_PATH), alternating (bench/results/compare-2d5a7f7.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mlc.h>

#include "bench.h"

int
main(int argc, char **argv)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	unsigned long klen = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
	unsigned long from = n / 3;
	char key[256], val[16] = { 0 };
	struct mlc_arena *a;
	struct mlc_cache *c;
	uint64_t t0 = 0;
	int rc;

	if (n < 3 || klen < 8 || klen >= sizeof(key)) {
		fprintf(stderr, "usage: bench-evict-set [SETS >= 3] "
			"[KEY_BYTES 8..255]\n");
		return 2;
	}
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_ANON;
	ao.bytes = 16u << 20;
	ao.max_items = 200000;
	if ((rc = mlc_arena_open(&a, NULL, &ao)) < 0) {
		fprintf(stderr, "mlc_arena_open: %s\n", mlc_strerror(rc));
		return 1;
	}
	co.flags = MLC_CACHE_NO_L1;
	co.ttl_ms = MLC_TTL_NEVER;
	if ((rc = mlc_cache_open(&c, a, "evict", &co)) < 0)
		goto out;
	memset(key, 'k', sizeof(key));
	for (unsigned long i = 0; i < n && rc == 0; i++) {
		char num[24];
		int l = snprintf(num, sizeof(num), "%lu", i);

		if (i == from)
			t0 = bench_now_ns();
		memcpy(key + klen - (unsigned long)l, num, (size_t)l);
		rc = mlc_set(c, key, klen, val, sizeof(val), NULL);
	}
	if (rc == 0) {
		double per = (double)(bench_now_ns() - t0) /
			     (double)(n - from);

		mlc_arena_info(a, &in);
		printf("%.1f ns/set  items %llu evictions %llu "
		       "index_evictions %llu\n", per,
		       (unsigned long long)in.items,
		       (unsigned long long)in.evictions,
		       (unsigned long long)in.index_evictions);
	}
	mlc_cache_close(c);
out:
	mlc_arena_close(a);
	if (rc < 0)
		fprintf(stderr, "bench-evict-set: %s\n", mlc_strerror(rc));
	return rc < 0;
}
