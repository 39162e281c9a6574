/*
 * Get-only stress of a few keys from several processes, with loaders that
 * sleep 1-5 ms and return ttl_ms 1..5.  Counts loads of one key that ran at
 * the same time (single flight allows none here: no lock timeout, no full
 * flight table, no oversize value, no lease expiry) and the handles'
 * duplicate_loads.  Exits 1 if any overlap or duplicate load was seen.
 *
 *   cc -D_GNU_SOURCE -Iinclude -Isrc tests/repro/flight-expired.c \
 *      build/libmlc-internal.a -lck -lpthread -o flight-expired
 *   ./flight-expired [procs] [keys] [seconds]
 *
 * With -DPATHS and a library built with the temporary path counters
 * (mlc__dbg_path, not committed), each load says which path ran it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlc.h"

#define MAXKEYS 16
#define NPATHS 16

#ifdef PATHS
extern __thread int mlc__dbg_path;
extern uint64_t mlc__dbg_again[8];
#endif

struct shared {
	uint32_t inside[MAXKEYS];	/* loaders of the key running now */
	uint64_t overlaps;		/* loads that began beside another */
	uint64_t loads, gets, dups;
	uint64_t path_loads[NPATHS], path_overlaps[NPATHS];
	uint64_t again[8];		/* why a waiter's round ended (PATHS) */
};

static struct shared *sh;
static unsigned seed;

static void
nap_us(long us)
{
	struct timespec d = { 0, us * 1000 };

	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	int k = *(const char *)key - 'a';
	int path = 0;
	uint32_t before;

	(void)arg;
	(void)key_len;
#ifdef PATHS
	path = mlc__dbg_path;
#endif
	before = __atomic_fetch_add(&sh->inside[k], 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&sh->loads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->path_loads[path], 1, __ATOMIC_RELAXED);
	if (before > 0) {
		__atomic_add_fetch(&sh->overlaps, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sh->path_overlaps[path], 1,
				   __ATOMIC_RELAXED);
	}
	nap_us(1000 + rand_r(&seed) % 4000);
	__atomic_sub_fetch(&sh->inside[k], 1, __ATOMIC_ACQ_REL);
	out->data = "v";
	out->len = 1;
	out->ttl_ms = 1 + rand_r(&seed) % 5;
	return MLC_LOAD_VALUE;
}

static int
child(const char *name, int keys, int seconds, int id)
{
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct mlc_stats st = MLC_STATS_INIT;
	time_t end = time(NULL) + seconds;
	uint64_t gets = 0;

	seed = (unsigned)getpid() * 2654435761u;
	if (mlc_arena_open(&a, name, NULL) != 0 ||
	    mlc_cache_open(&c, a, "ns", NULL) != 0)
		return 2;
	while (time(NULL) < end) {
		char key = (char)('a' + rand_r(&seed) % keys);
		struct mlc_value v;
		int rc = mlc_get(c, &key, 1, loader, NULL, &v);

		if (rc != 0) {
			fprintf(stderr, "child %d: get: %s\n", id,
				mlc_strerror(rc));
			return 3;
		}
		mlc_value_release(&v);
		gets++;
	}
	mlc_stats(c, &st);
	__atomic_add_fetch(&sh->gets, gets, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->dups, st.duplicate_loads, __ATOMIC_RELAXED);
#ifdef PATHS
	for (int i = 0; i < 8; i++)
		__atomic_add_fetch(&sh->again[i], mlc__dbg_again[i],
				   __ATOMIC_RELAXED);
#endif
	mlc_cache_close(c);
	mlc_arena_close(a);
	return 0;
}

int
main(int argc, char **argv)
{
	int procs = argc > 1 ? atoi(argv[1]) : 6;
	int keys = argc > 2 ? atoi(argv[2]) : 3;
	int seconds = argc > 3 ? atoi(argv[3]) : 10;
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a;
	char name[64];
	int bad = 0;

	if (keys < 1 || keys > MAXKEYS)
		return 2;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	snprintf(name, sizeof(name), "/trA-fe-%ld", (long)getpid());
	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = 8u << 20;
	if (mlc_arena_open(&a, name, &o) != 0)
		return 2;
	for (int p = 0; p < procs; p++)
		if (fork() == 0)
			_exit(child(name, keys, seconds, p));
	for (int p = 0; p < procs; p++) {
		int st;

		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	}
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
	printf("procs %d keys %d seconds %d: gets %" PRIu64 " loads %"
	       PRIu64 " overlapping loads %" PRIu64 " duplicate_loads %"
	       PRIu64 "\n", procs, keys, seconds, sh->gets, sh->loads,
	       sh->overlaps, sh->dups);
	for (int i = 0; i < NPATHS; i++)
		if (sh->path_loads[i])
			printf("  path %d: loads %" PRIu64 " overlapping %"
			       PRIu64 "\n", i, sh->path_loads[i],
			       sh->path_overlaps[i]);
	for (int i = 0; i < 8; i++)
		if (sh->again[i])
			printf("  round without result, reason %d: %" PRIu64
			       "\n", i, sh->again[i]);
	return bad ? 2 : sh->overlaps || sh->dups ? 1 : 0;
}
