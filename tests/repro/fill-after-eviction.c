/*
 * A loader's store brings back an older value when the key was set while
 * the loader ran and that newer value was evicted before the store.
 *
 * The fence (put->if_before, src/table.c put_linked) compares the
 * version read when the load began with the version of the item now in
 * the index and with the last *delete* recorded on the key's stripes;
 * an eviction (CLOCK sweep, page move, index victim) records nothing, so
 * after it the late store succeeds.  Every reader that saw "new" can then
 * see "old": a key's value goes back in time.
 *
 * Expected with the bug: "L2 holds: old".  Fixed: the store is fenced
 * (MLC_NOT_CACHED) and L2 holds nothing or "new".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mlc.h"

static struct mlc_cache *other, *probe;

static int
loader(void *arg, const void *key, size_t klen, struct mlc_load *out)
{
	struct mlc_value v = { 0 };
	char k[32];
	int rc;

	(void)arg;
	/* The backend answered "old"; meanwhile another process writes
	 * "new"... */
	rc = mlc_set(other, key, klen, "new", 3, NULL);
	printf("another handle set \"new\": %s\n", mlc_strerror(rc));
	/* ...and memory pressure evicts it (small items: same class). */
	for (int i = 0; i < 200000; i++) {
		snprintf(k, sizeof(k), "filler-%d", i);
		mlc_set(other, k, strlen(k), "12345678", 8, NULL);
	}
	rc = mlc_peek(probe, key, klen, 0, &v);
	printf("before the loader returns, L2: %s\n",
	       rc == 0 ? "new (not evicted: try more fillers)" :
	       "evicted");
	mlc_value_release(&v);
	out->data = "old";
	out->len = 3;
	return MLC_LOAD_VALUE;
}

int
main(void)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options no_l1 = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct mlc_value v = { 0 };
	int rc;

	ao.flags = MLC_ARENA_ANON;
	ao.bytes = 4 << 20;
	ao.page_size = 64 << 10;
	no_l1.flags = MLC_CACHE_NO_L1;
	if (mlc_arena_open(&a, NULL, &ao) != 0 ||
	    mlc_cache_open(&c, a, "ns", NULL) != 0 ||
	    mlc_cache_open(&other, a, "ns", &no_l1) != 0 ||
	    mlc_cache_open(&probe, a, "ns", &no_l1) != 0)
		return 2;
	rc = mlc_get(c, "k", 1, loader, NULL, &v);
	printf("mlc_get: %s, \"%.*s\"%s\n", mlc_strerror(rc), (int)v.len,
	       (const char *)v.data,
	       v.flags & MLC_NOT_CACHED ? " (not cached: fenced)" : "");
	mlc_value_release(&v);
	rc = mlc_peek(probe, "k", 1, 0, &v);
	printf("L2 holds: %.*s\n", rc == 0 ? (int)v.len : 7,
	       rc == 0 ? (const char *)v.data : "nothing");
	rc = rc == 0 && v.len == 3 && memcmp(v.data, "old", 3) == 0;
	mlc_value_release(&v);
	return rc;		/* 1: the bug */
}
