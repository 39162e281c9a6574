/*
 * A process killed while carving a page (page_carve, src/alloc.c) left
 * chunks whose old bytes (a previous class's values) read as ALLOC with a
 * stamp in the future: the page could never be drained, and because page
 * moves always picked the same victim class, every class without pages got
 * -ENOSPC for ever.  Found by tests/test-faults.c (allocator kills); fixed
 * in 3c61bfe (pages marked while carved, rebuilt; next victim class tried).
 *
 *   ./carve-kill setup NAME                 fill with 0x02 bytes
 *   gdb -batch -ex 'break alloc.c:LINE' -ex run -ex 'ignore 1 300' \
 *       -ex continue -ex kill --args ./carve-kill small NAME
 *                        (LINE: the FREE store in carve_chunks/page_carve)
 *   ./carve-kill check NAME                 20 sets of 1..20 KB: all fail
 *                                           with the bug, all succeed fixed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "mlc-int.h"
void mlc__clock_advance(int64_t ms);

static struct mlc_arena *open_it(const char *name, int create) {
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	o.flags = create ? MLC_ARENA_CREATE | MLC_ARENA_EXCL : 0;
	o.bytes = 1 << 20; o.page_size = 64 << 10; o.log_cells = 64; o.flight_slots = 16; o.max_items = 256;
	int rc = mlc_arena_open(&a, name, &o);
	if (rc) { printf("open: %s\n", mlc_strerror(rc)); exit(1); }
	return a;
}
int main(int argc, char **argv) {
	const char *name = argv[2];
	struct mlc_cache *c;
	char key[32];
	static char big[30000];
	if (strcmp(argv[1], "setup") == 0) {
		struct mlc_arena *a = open_it(name, 1);
		mlc_cache_open(&c, a, "ns", NULL);
		memset(big, 0x02, sizeof(big));	/* user bytes that look like ALLOC words */
		for (int i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "big-%d", i);
			mlc_set(c, key, strlen(key), big, sizeof(big), NULL);
		}
		struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
		mlc_arena_info(a, &in);
		printf("setup: %lu pages, %lu free, %lu items\n", in.pages, in.pages_free, in.items);
		return 0;
	}
	if (strcmp(argv[1], "small") == 0) {	/* run under gdb: killed in page_carve */
		struct mlc_arena *a = open_it(name, 0);
		mlc_cache_open(&c, a, "ns", NULL);
		int rc = mlc_set(c, "small", 5, "x", 1, NULL);
		printf("small set: %s (not killed?)\n", mlc_strerror(rc));
		return 0;
	}
	/* check */
	struct mlc_arena *a = open_it(name, 0);
	mlc__clock_advance(60000);	/* past every orphan age */
	mlc_cache_open(&c, a, "ns", NULL);
	for (uint32_t p = 0; p < a->npages; p++) {
		uint32_t ci = a->pages[p].pg_class, n = 0;
		if (!ci) continue;
		for (uint32_t k = 0; k < a->classes[ci-1].cl_per_page; k++) {
			struct mlc__item *it = (void *)(a->base + a->pages_off + ((uint64_t)p << a->page_shift) + (uint64_t)k * a->classes[ci-1].cl_size);
			if ((it->it_state & 0xff) == MLC__ALLOC) n++;
		}
		printf("page %u: class %u (chunk %u bytes), %u chunks read ALLOC\n", p, ci - 1, a->class_size[ci-1], n);
	}
	int fails = 0;
	for (size_t len = 1000; len <= 20000; len += 1000) {
		snprintf(key, sizeof(key), "v-%zu", len);
		int rc = mlc_set(c, key, strlen(key), big, len, NULL);
		if (rc) { fails++; printf("set %zu bytes: %s\n", len, mlc_strerror(rc)); }
	}
	printf("check: %d of 20 sets failed\n", fails);
	return fails != 0;
}
