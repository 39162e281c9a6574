/*
 * bench-scale-mem: how many items an mlc arena of fixed size stores before
 * it first evicts, and how full its index is when it first evicts from the
 * index.  Part of the scale report (bench/scale.sh); mlc only, through its
 * public API.  Counts, not times: the machine's load does not matter.
 *
 *   bench-scale-mem [--bytes N] [--vlens 16,64,...] [--seeds K]
 *                   [--occ-items N,N,...] [--json FILE]
 *
 * fill: for each value size, an arena of --bytes (default 256 MiB) is
 * filled with distinct 16 B keys until the first eviction of any kind (a
 * live item evicted for room, or one evicted because both of its index
 * buckets were full), with three max_items: the default (0: an index of
 * at most 1/16 of the arena; 0.2.0 took bytes / 512);
 * "fit", what the bytes could hold at 40 B of header and slot word, 9 B of
 * index per slot, key and value; and "2x fit".  Fit and 2x fit are never
 * below bytes / 512.  It reports the items stored then, per arena byte and
 * per allocator byte, and which limit was hit first.
 *
 * occupancy: 16 B values in an arena whose bytes never run out, max_items
 * from --occ-items (default 65536, 524288 (the default of a 256 MiB
 * arena), 1048576), --seeds key sets each (default 5): items / index slots
 * at the first index eviction, and after inserting twice the slots.
 *
 * Arenas are anonymous (MLC_ARENA_ANON): nothing is left in /dev/shm.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc.h"

#include "bench.h"	/* splitmix() */

#define KEY_LEN 16
#define HDR_EST 40	/* item header + slot word (bench-sizes prints it);
			 * 56 before format 7 */
#define SLOT_EST 9	/* index bytes per slot (bench-sizes prints it) */
#define MAX_LIST 16
#define VLEN_MAX (16u << 20)	/* the largest page, so any value */

static FILE *json;

/* Key @p i of key set @p seed: 8 hashed bytes, then i itself, so the keys
 * of one set are distinct and spread over the index like real ones. */
static void
key_make(unsigned char *k, uint64_t seed, uint64_t i)
{
	uint64_t x = seed ^ (i * 0xd6e8feb86659fd93ull);
	uint64_t h = splitmix(&x);

	memcpy(k, &h, 8);
	memcpy(k + 8, &i, 8);
}

struct arena {
	struct mlc_arena *a;
	struct mlc_cache *c;
};

static int
arena_open(struct arena *ar, uint64_t bytes, uint32_t max_items)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	int rc;

	ao.flags = MLC_ARENA_ANON;
	ao.bytes = bytes;
	ao.max_items = max_items;
	rc = mlc_arena_open(&ar->a, NULL, &ao);
	if (rc < 0)
		return rc;
	co.flags = MLC_CACHE_NO_L1;	/* L2 only: no private copies */
	co.ttl_ms = MLC_TTL_NEVER;
	rc = mlc_cache_open(&ar->c, ar->a, "scale", &co);
	if (rc < 0)
		mlc_arena_close(ar->a);
	return rc;
}

static void
arena_close(struct arena *ar)
{
	mlc_cache_close(ar->c);
	mlc_arena_close(ar->a);
}

/* The chunk bytes per item (values of one size): the chunk size of the
 * one class in use, or for chained items (docs/internals.md) the head's
 * and its pieces' together. */
static uint32_t
chunk_in_use(struct mlc_arena *a, uint64_t items)
{
	struct mlc_class_info ci = MLC_CLASS_INFO_INIT;
	uint64_t bytes = 0;

	for (uint32_t i = 0; mlc_arena_class(a, i, &ci) == 0; i++)
		bytes += ci.chunks_used * ci.chunk_size;
	return items ? (uint32_t)((bytes + items / 2) / items) : 0;
}

/* Set distinct keys until @p stop says so (or @p most sets); the info at
 * that moment in *in.  Returns the sets done, or a negative code. */
enum stop { STOP_ANY_EVICTION, STOP_INDEX_EVICTION, STOP_NEVER };

static int64_t
fill(struct arena *ar, uint64_t seed, uint32_t vlen, enum stop stop,
     uint64_t most, struct mlc_arena_info *in)
{
	unsigned char key[KEY_LEN];
	static char val[VLEN_MAX];
	uint64_t i;
	int rc;

	if (vlen > sizeof(val))
		return -E2BIG;
	memset(val, 'v', vlen);
	for (i = 0; i < most; i++) {
		key_make(key, seed, i);
		rc = mlc_set(ar->c, key, KEY_LEN, val, vlen, NULL);
		if (rc < 0)
			return rc;
		*in = (struct mlc_arena_info)MLC_ARENA_INFO_INIT;
		if ((rc = mlc_arena_info(ar->a, in)) < 0)
			return rc;
		if (stop != STOP_NEVER && (in->index_evictions > 0 ||
		    (stop == STOP_ANY_EVICTION &&
		     (in->evictions > 0 || in->write_failures > 0))))
			return (int64_t)(i + 1);
	}
	return (int64_t)i;
}

static int
parse_list(const char *s, uint64_t *v, int cap)
{
	int n = 0;

	while (*s && n < cap) {
		char *end;

		v[n++] = (uint64_t)strtod(s, &end);	/* 1e6 or 1000000 */
		if (end == s || (*end != ',' && *end != '\0'))
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

enum index_size { IX_DEFAULT, IX_FIT, IX_2FIT };
static const char *const ix_name[] = { "default", "fit", "2x fit" };

static int
one_fill(uint64_t bytes, uint32_t vlen, enum index_size ix)
{
	struct mlc_arena_info in;
	struct arena ar;
	uint64_t want = 0, used;
	const char *first;
	int64_t sets;
	uint32_t chunk;
	int rc;

	if (ix != IX_DEFAULT) {
		want = bytes / (HDR_EST + SLOT_EST + KEY_LEN + vlen);
		if (ix == IX_2FIT)
			want *= 2;
		if (want < bytes / 512)
			want = bytes / 512;
		if (want > UINT32_MAX / 2)
			want = UINT32_MAX / 2;
	}
	if ((rc = arena_open(&ar, bytes, (uint32_t)want)) < 0) {
		fprintf(stderr, "scale-mem: arena of %llu B: %s\n",
			(unsigned long long)bytes, mlc_strerror(rc));
		return rc;
	}
	/* No more sets than the arena's bytes could ever hold: it must
	 * evict before. */
	sets = fill(&ar, 1, vlen, STOP_ANY_EVICTION,
		    bytes / (KEY_LEN + vlen) + 1, &in);
	if (sets < 0) {
		fprintf(stderr, "scale-mem: set: %s\n",
			mlc_strerror((int)sets));
		arena_close(&ar);
		return (int)sets;
	}
	chunk = chunk_in_use(ar.a, in.items);
	used = (in.pages - in.pages_free) * in.page_size;
	first = in.index_evictions ? "index" : in.evictions ? "bytes" :
		in.write_failures ? "write failure" : "none";
	printf("%-6u %-9s %10llu %10llu %9llu %7.1f%% %10.1f %10.1f %9.1f "
	       "%7u %6.0f%%  %s\n", vlen, ix_name[ix],
	       (unsigned long long)in.max_items, (unsigned long long)in.items,
	       (unsigned long long)(in.items * (1ull << 20) / bytes),
	       100.0 * (double)in.items / (double)in.max_items,
	       (double)bytes / (double)in.items,
	       (double)used / (double)in.items,
	       (double)(KEY_LEN + vlen) / ((double)bytes / (double)in.items) *
	       100, chunk, 100.0 * (KEY_LEN + vlen) / chunk, first);
	if (json)
		fprintf(json, "{\"part\":\"fill\",\"arena_bytes\":%llu,"
			"\"vlen\":%u,\"klen\":%d,\"index\":\"%s\","
			"\"max_items_asked\":%llu,\"slots\":%llu,"
			"\"items\":%llu,\"sets\":%lld,\"first\":\"%s\","
			"\"page_size\":%llu,\"pages\":%llu,"
			"\"pages_used\":%llu,\"chunk\":%u,"
			"\"page_moves\":%llu}\n",
			(unsigned long long)bytes, vlen, KEY_LEN,
			ix_name[ix],
			(unsigned long long)want,
			(unsigned long long)in.max_items,
			(unsigned long long)in.items, (long long)sets, first,
			(unsigned long long)in.page_size,
			(unsigned long long)in.pages,
			(unsigned long long)(in.pages - in.pages_free), chunk,
			(unsigned long long)in.page_moves);
	arena_close(&ar);
	return 0;
}

static int
one_occupancy(uint64_t max_items, uint64_t seed)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena_info in, end;
	struct arena ar;
	uint64_t bytes, first_items, slots;
	int64_t sets, more;
	int rc;

	/* Bytes for every slot the index can have (it rounds max_items up
	 * to at most about twice), so only the index can run out. */
	ao.max_items = (uint32_t)max_items;
	bytes = mlc_arena_min_bytes(&ao) + 2 * max_items * 160;
	bytes = (bytes + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	if ((rc = arena_open(&ar, bytes, (uint32_t)max_items)) < 0) {
		fprintf(stderr, "scale-mem: arena of %llu B: %s\n",
			(unsigned long long)bytes, mlc_strerror(rc));
		return rc;
	}
	sets = fill(&ar, seed, 16, STOP_INDEX_EVICTION, UINT64_MAX, &in);
	if (sets < 0) {
		arena_close(&ar);
		return (int)sets;
	}
	slots = in.max_items;
	first_items = in.items;
	/* Go on to twice the slots in sets: where the index settles. */
	more = fill(&ar, seed + 1000, 16, STOP_NEVER,
		    2 * slots > (uint64_t)sets ? 2 * slots - (uint64_t)sets :
		    0, &end);
	if (more < 0) {
		arena_close(&ar);
		return (int)more;
	}
	if (more == 0)
		end = in;
	printf("%10llu %10llu %4llu %10llu %7.1f%% %10llu %7.1f%%  "
	       "%llu L2 evictions\n",
	       (unsigned long long)max_items, (unsigned long long)slots,
	       (unsigned long long)seed, (unsigned long long)first_items,
	       100.0 * (double)first_items / (double)slots,
	       (unsigned long long)end.items,
	       100.0 * (double)end.items / (double)slots,
	       (unsigned long long)end.evictions);
	if (json)
		fprintf(json, "{\"part\":\"occupancy\",\"arena_bytes\":%llu,"
			"\"max_items_asked\":%llu,\"slots\":%llu,"
			"\"seed\":%llu,\"items_at_first\":%llu,"
			"\"sets_at_first\":%lld,\"items_after\":%llu,"
			"\"sets_after\":%lld,\"index_evictions_after\":%llu,"
			"\"evictions_after\":%llu}\n",
			(unsigned long long)bytes,
			(unsigned long long)max_items,
			(unsigned long long)slots, (unsigned long long)seed,
			(unsigned long long)first_items, (long long)sets,
			(unsigned long long)end.items,
			(long long)(sets + more),
			(unsigned long long)end.index_evictions,
			(unsigned long long)end.evictions);
	arena_close(&ar);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bench-scale-mem [--bytes N] [--vlens N,N,...] "
		"[--seeds K] [--occ-items N,N,...] [--json FILE]\n");
}

int
main(int argc, char **argv)
{
	uint64_t bytes = 256ull << 20, vlens[MAX_LIST], occ[MAX_LIST];
	uint64_t seeds = 5;
	int nv = parse_list("16,64,256,1024,4096,16384", vlens, MAX_LIST);
	int no = parse_list("65536,524288,1048576", occ, MAX_LIST);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL && strcmp(a, "-h") && strcmp(a, "--help")) {
			usage(stderr);
			return 2;
		}
		if (strcmp(a, "--bytes") == 0)
			bytes = (uint64_t)atof(v);
		else if (strcmp(a, "--vlens") == 0)
			nv = parse_list(v, vlens, MAX_LIST);
		else if (strcmp(a, "--occ-items") == 0)
			no = parse_list(v, occ, MAX_LIST);
		else if (strcmp(a, "--seeds") == 0)
			seeds = strtoull(v, NULL, 0);
		else if (strcmp(a, "--json") == 0) {
			if ((json = fopen(v, "a")) == NULL) {
				perror(v);
				return 1;
			}
		} else {
			usage(strcmp(a, "-h") && strcmp(a, "--help") ?
			      stderr : stdout);
			return strcmp(a, "-h") && strcmp(a, "--help") ? 2 : 0;
		}
		i++;
	}
	if (nv < 1 || no < 0 || bytes < (1u << 20)) {
		usage(stderr);
		return 2;
	}
	printf("== fill: %llu B arena, 16 B keys, until the first eviction\n",
	       (unsigned long long)bytes);
	printf("%-6s %-9s %10s %10s %9s %8s %10s %10s %9s %7s %7s  %s\n",
	       "value", "index", "slots", "items", "items/MiB", "of slots",
	       "arena B/it", "alloc B/it", "payload", "chunk", "k+v/ch",
	       "first eviction");
	for (int i = 0; i < nv; i++)
		for (int g = IX_DEFAULT; g <= IX_2FIT; g++)
			if (one_fill(bytes, (uint32_t)vlens[i],
				     (enum index_size)g) < 0)
				return 1;
	if (no > 0)
		printf("\n== occupancy: 16 B values, bytes never run out: "
		       "items / slots at the first index eviction\n"
		       "%10s %10s %4s %10s %8s %10s %8s\n", "max_items",
		       "slots", "seed", "items@1st", "occ@1st", "items@2x",
		       "occ@2x");
	for (int i = 0; i < no; i++)
		for (uint64_t s = 1; s <= seeds; s++)
			if (one_occupancy(occ[i], s) < 0)
				return 1;
	if (json)
		fclose(json);
	return 0;
}
