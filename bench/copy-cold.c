/*
 * bench-copy-cold: what reading a large value costs a caller who gets a
 * copy (mlc, the shm floor) against one who reads it in place (LMDB), with
 * no cache in between: plain memory, one of N cold buffers per read.
 *
 *   bench-copy-cold [BYTES [BUFFERS [READS]]]   (300000 1000 2000)
 *
 * Each way is timed twice, in ns per read:
 *   in place        the caller sums the cold buffer (LMDB's reader)
 *   copy            memcpy into a reused buffer, nothing else
 *   sum of copy     the caller sums the warm copy, nothing else
 *   copy + sum      both (mlc's and the floor's reader)
 *   prefetch 4k     copy + sum, the source prefetched 4 KiB ahead
 *   prefetch 16k    copy + sum, the source prefetched 16 KiB ahead
 * bench/results/latest/profile.md, "Large values", reads the numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"	/* chk_bytes(), the bench's reader; bench_now_ns() */

static void
copy_ahead(char *dst, const char *src, size_t len, size_t ahead)
{
	size_t i = 0;

	for (size_t j = 0; j < ahead && j < len; j += 64)
		__builtin_prefetch(src + j);
	for (; i + 4096 <= len; i += 4096) {
		for (size_t j = 0; j < 4096; j += 64)
			if (i + ahead + j < len)
				__builtin_prefetch(src + i + ahead + j);
		memcpy(dst + i, src + i, 4096);
	}
	memcpy(dst + i, src + i, len - i);
}

enum way { IN_PLACE, COPY, SUM_COPY, COPY_SUM, AHEAD_4K, AHEAD_16K, WAYS };

static const char *const names[WAYS] = {
	"in place", "copy", "sum of copy", "copy + sum", "prefetch 4k",
	"prefetch 16k",
};

int
main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoull(argv[1], NULL, 0) : 300000;
	size_t nbuf = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000;
	long reads = argc > 3 ? strtol(argv[3], NULL, 0) : 2000;
	size_t stride = (len + 4095) & ~(size_t)4095;
	uint64_t chk = 0;
	uint32_t r = 1;
	char *pool, *buf;

	if (len == 0 || nbuf == 0 || reads <= 0) {
		fprintf(stderr, "usage: bench-copy-cold [BYTES [BUFFERS "
			"[READS]]]\n");
		return 2;
	}
	pool = mmap(NULL, stride * nbuf, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	buf = malloc(len);
	if (pool == MAP_FAILED || buf == NULL) {
		perror("bench-copy-cold");
		return 1;
	}
	memset(pool, 1, stride * nbuf);
	memset(buf, 0, len);
	printf("%zu bytes, one of %zu cold buffers (%zu MiB) per read, "
	       "%ld reads\n", len, nbuf, stride * nbuf >> 20, reads);
	for (int w = 0; w < WAYS; w++) {
		for (int rep = 0; rep < 2; rep++) {
			uint64_t t0 = bench_now_ns();

			for (long i = 0; i < reads; i++) {
				const char *src;

				r = r * 1103515245u + 12345u;
				src = pool + (size_t)(r >> 8) % nbuf * stride;
				switch ((enum way)w) {
				case IN_PLACE:
					chk += chk_bytes(src, len);
					break;
				case COPY:
					memcpy(buf, src, len);
					chk += (unsigned char)buf[len / 2];
					break;
				case SUM_COPY:
					chk += chk_bytes(buf, len);
					break;
				case COPY_SUM:
					memcpy(buf, src, len);
					chk += chk_bytes(buf, len);
					break;
				case AHEAD_4K:
				case AHEAD_16K:
					copy_ahead(buf, src, len,
						   w == AHEAD_4K ? 4096 : 16384);
					chk += chk_bytes(buf, len);
					break;
				case WAYS:
					break;
				}
			}
			printf("%-14s %10.0f ns\n", names[w],
			       (double)(bench_now_ns() - t0) / (double)reads);
		}
	}
	fprintf(stderr, "(checksum %llu)\n", (unsigned long long)chk);
	free(buf);
	munmap(pool, stride * nbuf);
	return 0;
}
