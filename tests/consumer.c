/*
 * A program outside the tree, built against an installed mlc with nothing
 * but `pkg-config --cflags --libs mlc` (tests/test-install.sh): an
 * anonymous arena, one namespace, a set and a get.
 */
#include <stdio.h>
#include <string.h>

#include <mlc.h>

int
main(void)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *arena;
	struct mlc_cache *cache;
	struct mlc_value v;
	int rc;

	ao.flags = MLC_ARENA_ANON;
	ao.bytes = 16 << 20;
	if ((rc = mlc_arena_open(&arena, NULL, &ao)) != 0) {
		fprintf(stderr, "arena: %s\n", mlc_strerror(rc));
		return 1;
	}
	if ((rc = mlc_cache_open(&cache, arena, "consumer", NULL)) != 0 ||
	    (rc = mlc_set(cache, "k", 1, "installed", 9, NULL)) != 0 ||
	    (rc = mlc_get(cache, "k", 1, NULL, NULL, &v)) != 0) {
		fprintf(stderr, "cache: %s\n", mlc_strerror(rc));
		return 1;
	}
	if (v.len != 9 || memcmp(v.data, "installed", 9) != 0) {
		fprintf(stderr, "wrong value\n");
		return 1;
	}
	printf("consumer: mlc %s, got \"%.*s\" from L%u\n",
	       mlc_version_string(), (int)v.len, (const char *)v.data,
	       (unsigned)v.level);
	mlc_value_release(&v);
	mlc_cache_close(cache);
	mlc_arena_close(arena);
	return 0;
}
