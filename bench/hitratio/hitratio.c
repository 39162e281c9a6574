/*
 * mlc-hitratio: replay synthetic traces through the reference policies
 * (sim.c) and through a real mlc arena of the same page bytes, and report
 * miss ratios, page moves and size-class waste (see bench/README.md).
 *
 * mlc sees the trace as a cache user would: a lookup in L2 (a handle
 * without L1), and on a miss a set of the key's value.  The references get
 * exactly the arena's page bytes as their capacity, and count each object
 * as mlc's item bytes before size-class rounding (header + key + value), so
 * what mlc loses to rounding, page granularity or its eviction shows.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mlc.h>

#include "sim.h"
#include "trace.h"

#define MIB (UINT64_C(1) << 20)
#define MAX_FRACS 8
#define MAX_ROWS 512

static const struct hr_spec specs[] = {
	{ "zipf0.7", HR_ZIPF, 0.7, 64, 64 },
	{ "zipf0.9", HR_ZIPF, 0.9, 64, 64 },
	{ "zipf1.0", HR_ZIPF, 1.0, 64, 64 },
	{ "scan", HR_SCAN, 0.9, 64, 64 },
	{ "shift", HR_SHIFT, 0.9, 64, 64 },
	{ "mixed", HR_ZIPF, 0.9, 16, 1024 },
	{ "mixed-wide", HR_ZIPF, 0.9, 16, 16384 },
	{ "sizeshift", HR_SIZESHIFT, 0.9, 16, 4096 },
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* One result: a policy (or mlc) on a trace at a cache size. */
struct row {
	char trace[24];
	double frac;
	uint64_t footprint, requests, cache, arena;
	char policy[16];
	uint64_t misses;
	double moves_k, moves_steady_k;	/* page moves per 1000 gets */
	uint64_t failures;
};

static struct row rows[MAX_ROWS], base_rows[MAX_ROWS];
static int nrows, nbase;

static struct {
	uint64_t footprint;	/* bytes wanted per trace */
	double frac[MAX_FRACS];
	int nfrac;
	uint32_t page_size;	/* 0: mlc's default */
	double req_per_key;	/* requests per key of the key space */
	const char *traces;	/* comma-separated names, NULL: all */
	const char *out;
	const char *baseline;
	const char *from;	/* --from: report an earlier run's rows */
	uint64_t seed;
	bool no_mlc, classes;
	bool l1;		/* --l1: mlc's L1 against the references, by
				 * entries */
} cfg = {
	.footprint = 160 * MIB,
	.frac = { 0.10, 0.50 },
	.nfrac = 2,
	.req_per_key = 3,
	.seed = 42,
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool
wanted(const char *name)
{
	const char *p = cfg.traces;
	size_t n = strlen(name);

	if (p == NULL)
		return true;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == cfg.traces || p[-1] == ',') &&
		    (p[n] == ',' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

/* ---- mlc ----------------------------------------------------------- */

/* The arena being replayed into, removed if the run is interrupted (its
 * path under /dev/shm, where mlc keeps shm names: unlink() is safe in a
 * signal handler, mlc_arena_unlink() is not). */
static char arena_path[96];

static void
on_signal(int sig)
{
	if (arena_path[0])
		unlink(arena_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
key_of(uint32_t id, char key[HR_KEY])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t x = hr_mix(id);

	/* 8 bytes of a hash (spreads keys), then the id: never equal. */
	for (int i = 0; i < 8; i++)
		key[i] = hex[(x >> (4 * i)) & 15];
	for (int i = 0; i < 8; i++)
		key[8 + i] = hex[(id >> (4 * (7 - i))) & 15];
}

/* Create an arena whose pages hold about @p cache bytes.  With no --page,
 * the arena's default page depends on its size (mlc_arena_options): try
 * each page size from 1 MiB down until the arena sized for it is one the
 * library gives that page by default, so the run measures the default. */
static int
arena_make(struct mlc_arena **ap, const char *name, uint64_t cache,
	   uint32_t min_obj)
{
	uint64_t page = cfg.page_size ? cfg.page_size : MIB;
	/* An index that never limits the cache: evictions come from the
	 * allocator (the index's own sizing is another issue's). */
	uint64_t items = cache / min_obj + cache / min_obj / 4 + 1024;

	for (;; page /= 2) {
		struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
		struct mlc_arena_info info;
		uint64_t base, want;
		int rc;

		o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
		o.page_size = (uint32_t)page;
		o.max_items = (uint32_t)(items > (UINT32_C(1) << 30) ?
					 (UINT32_C(1) << 30) : items);
		base = mlc_arena_min_bytes(&o);
		if (base == 0)
			return -EINVAL;
		/* min_bytes has 4 pages; add the rest. */
		want = (cache + page - 1) / page;
		o.bytes = base + (want > 4 ? want - 4 : 0) * page;
		o.page_size = cfg.page_size;
		if ((rc = mlc_arena_open(ap, name, &o)) < 0)
			return rc;
		if (cfg.page_size || page <= 64 * 1024 ||
		    (mlc_arena_info(*ap, &info) == 0 &&
		     info.page_size == page))
			return 0;
		mlc_arena_close(*ap);
		mlc_arena_unlink(name, 0);
		*ap = NULL;
	}
}

/* --classes: the arena's classes after a run (stderr). */
static void
classes_print(struct mlc_arena *a)
{
	for (uint32_t i = 0;; i++) {
		struct mlc_class_info ci = MLC_CLASS_INFO_INIT;

		if (mlc_arena_class(a, i, &ci) < 0)
			break;
		if (ci.pages == 0 && ci.evictions == 0)
			continue;
		fprintf(stderr, "    class %2u %6u B: %3" PRIu64 " pages, %7"
			PRIu64 " used, %7" PRIu64 " evictions, in %" PRIu64
			" out %" PRIu64 "\n", i, ci.chunk_size, ci.pages,
			ci.chunks_used, ci.evictions, ci.pages_in,
			ci.pages_out);
	}
}

/* The arena a replay uses: its name, removed first if a killed run left
 * it, and recorded for the signal handler. */
static void
replay_name(char *name, size_t cap)
{
	snprintf(name, cap, "mlc-hitratio-%d", (int)getpid());
	mlc_arena_unlink(name, 0);
	snprintf(arena_path, sizeof(arena_path), "/dev/shm/%s", name);
}

static void
replay_drop(struct mlc_arena *a, const char *name)
{
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
	arena_path[0] = '\0';
}

/* The bytes of every stored value (their content does not matter). */
static char value_bytes[1 << 20];

struct mlc_run {
	uint64_t misses, failures, cache, arena;
	uint64_t moves, moves_steady;
	double secs;
};

static int
mlc_replay(const struct hr_trace *t, uint64_t cache, uint32_t min_obj,
	   struct mlc_run *r)
{
	char name[64];
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	uint64_t half_moves = 0;
	double t0;
	int rc;

	replay_name(name, sizeof(name));
	rc = arena_make(&a, name, cache, min_obj);
	if (rc < 0)
		return rc;
	co.flags = MLC_CACHE_NO_L1;
	co.ttl_ms = MLC_TTL_NEVER;
	rc = mlc_cache_open(&c, a, "hr", &co);
	if (rc < 0)
		goto out_arena;
	mlc_arena_info(a, &info);
	memset(r, 0, sizeof(*r));
	r->cache = info.pages * info.page_size;
	r->arena = info.bytes;
	t0 = now_s();
	for (uint64_t i = 0; i < t->n; i++) {
		struct mlc_value v;
		char key[HR_KEY];
		uint32_t id = t->req[i];

		if (i == t->n / 2) {
			mlc_arena_info(a, &info);
			half_moves = info.page_moves;
		}
		key_of(id, key);
		rc = mlc_peek(c, key, HR_KEY, 0, &v);
		if (rc == 0) {
			mlc_value_release(&v);
			continue;
		}
		r->misses++;
		if (mlc_set(c, key, HR_KEY, value_bytes, hr_vlen(t, id),
			    NULL) < 0)
			r->failures++;
	}
	r->secs = now_s() - t0;
	mlc_arena_info(a, &info);
	r->moves = info.page_moves;
	r->moves_steady = info.page_moves - half_moves;
	if (cfg.classes)
		classes_print(a);
	rc = 0;
	mlc_cache_close(c);
out_arena:
	replay_drop(a, name);
	return rc;
}

/* --l1: the request being replayed, for its loader. */
struct l1_req {
	const struct hr_trace *t;
	uint32_t id;
};

/* --l1: the loader of a missing key: a value of the trace's size. */
static int
l1_loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	const struct l1_req *q = arg;

	(void)key;
	(void)key_len;
	out->data = value_bytes;
	out->len = hr_vlen(q->t, q->id);
	return MLC_LOAD_VALUE;
}

/* --l1: replay through a handle whose L1 holds @p entries (lru_size), over
 * an arena that holds the whole trace; a miss is a get that L1 did not
 * answer. */
static int
l1_replay(const struct hr_trace *t, uint32_t entries, struct mlc_run *r)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c;
	char name[64];
	double t0;
	int rc;

	replay_name(name, sizeof(name));
	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = t->footprint * 3 / 2 + 64 * MIB;
	o.max_items = (uint32_t)(t->distinct * 2 + 1024);
	if ((rc = mlc_arena_open(&a, name, &o)) < 0)
		return rc;
	co.ttl_ms = MLC_TTL_NEVER;
	co.lru_size = entries;
	if ((rc = mlc_cache_open(&c, a, "hr", &co)) < 0)
		goto out_arena;
	mlc_arena_info(a, &info);
	memset(r, 0, sizeof(*r));
	r->cache = entries;
	r->arena = info.bytes;
	t0 = now_s();
	for (uint64_t i = 0; i < t->n; i++) {
		struct l1_req q = { t, t->req[i] };
		struct mlc_value v;
		char key[HR_KEY];

		key_of(q.id, key);
		rc = mlc_get(c, key, HR_KEY, l1_loader, &q, &v);
		if (rc < 0) {
			r->failures++;
			r->misses++;
			continue;
		}
		r->misses += v.level != MLC_L1;
		mlc_value_release(&v);
	}
	r->secs = now_s() - t0;
	rc = 0;
	mlc_cache_close(c);
out_arena:
	replay_drop(a, name);
	return rc;
}

/* ---- runs ------------------------------------------------------------ */

static void
row_add(const struct hr_trace *t, double frac, uint64_t cache, uint64_t arena,
	const char *policy, uint64_t misses, double moves_k, double steady_k,
	uint64_t failures)
{
	struct row *w;

	if (nrows == MAX_ROWS)
		return;
	w = &rows[nrows++];
	snprintf(w->trace, sizeof(w->trace), "%s", t->name);
	w->frac = frac;
	w->footprint = t->footprint;
	w->requests = t->n;
	w->cache = cache;
	w->arena = arena;
	snprintf(w->policy, sizeof(w->policy), "%s", policy);
	w->misses = misses;
	w->moves_k = moves_k;
	w->moves_steady_k = steady_k;
	w->failures = failures;
	fprintf(stderr, "  %-10s %5.1f%%  %-10s miss %.4f", t->name,
		frac * 100, policy, (double)misses / t->n);
	if (strcmp(policy, "mlc") == 0)
		fprintf(stderr, "  moves/1k %.3f (steady %.3f)  failures %"
			PRIu64, moves_k, steady_k, failures);
	fputc('\n', stderr);
}

static uint64_t
sim_run(enum hr_policy p, const struct hr_trace *t, uint64_t cap)
{
	struct hr_sim *s = hr_sim_new(p, cap, t->nkeys);
	uint64_t misses = 0;

	if (s == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (uint64_t i = 0; i < t->n; i++) {
		uint32_t id = t->req[i];

		misses += !hr_sim_access(s, id, cfg.l1 ? 1 : t->bytes[id]);
	}
	hr_sim_free(s);
	return misses;
}

static void
run_spec(const struct hr_spec *sp)
{
	struct hr_trace t;
	uint32_t keys = (uint32_t)(cfg.footprint / hr_mean_obj(sp));
	uint32_t min_obj = (HR_ITEM_HDR + HR_KEY + sp->vmin + 7) & ~7u;
	double t0 = now_s();

	if (hr_trace_make(&t, sp, keys, (uint64_t)(keys * cfg.req_per_key),
			  cfg.seed) < 0) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	fprintf(stderr, "%s: %" PRIu64 " requests, %" PRIu64
		" distinct keys, footprint %.1f MiB (%.1f s)\n", sp->name, t.n,
		t.distinct, (double)t.footprint / MIB, now_s() - t0);
	for (int f = 0; f < cfg.nfrac; f++) {
		uint64_t want = (uint64_t)(t.footprint * cfg.frac[f]);
		struct mlc_run r = { .cache = want };
		int rc;

		if (cfg.l1) {
			/* Entries, not bytes: L1 is bounded by lru_size. */
			want = (uint64_t)(t.distinct * cfg.frac[f]);
			r.cache = want = want < 16 ? 16 : want;
		}
		if (!cfg.no_mlc) {
			rc = cfg.l1 ? l1_replay(&t, (uint32_t)want, &r) :
				      mlc_replay(&t, want, min_obj, &r);
			if (rc < 0) {
				fprintf(stderr, "mlc: %s\n", mlc_strerror(rc));
				exit(1);
			}
		}
		for (int p = 0; p < HR_NPOLICIES; p++)
			row_add(&t, cfg.frac[f], r.cache, r.arena,
				hr_policy_name(p), sim_run(p, &t, r.cache),
				0, 0, 0);
		if (!cfg.no_mlc)
			row_add(&t, cfg.frac[f], r.cache, r.arena, "mlc",
				r.misses, r.moves * 1000.0 / t.n,
				r.moves_steady * 1000.0 / (t.n - t.n / 2),
				r.failures);
	}
	hr_trace_free(&t);
}

/* ---- class waste ------------------------------------------------------ */

#define WASTE_CLASSES 128	/* the arena's most */

/* Chunks in use per class of @p a into @p used, and each class's page
 * share of a chunk into @p share. */

static void
class_usage(struct mlc_arena *a, uint32_t page, uint64_t *used,
	    double *share)
{
	struct mlc_class_info ci = MLC_CLASS_INFO_INIT;

	for (uint32_t i = 0; i < WASTE_CLASSES &&
	     mlc_arena_class(a, i, &ci) == 0; i++) {
		used[i] = ci.chunks_used;
		share[i] = (double)page / ci.chunks_per_page;
		ci = (struct mlc_class_info)MLC_CLASS_INFO_INIT;
	}
}

/* Worst and mean waste of values from @p lo to @p hi bytes (16-byte key),
 * relative to the page bytes they occupy, as stored: each value is set
 * into the empty arena @p a (through @p c) and deleted again, and what it
 * occupied is the chunks it took, each with its share of its page (a
 * chunk of a class of k chunks a page occupies page / k bytes, tail
 * included).  So a chained item (docs/internals.md, "Chained items")
 * counts as its head and pieces. */
static void
waste_range(FILE *f, struct mlc_arena *a, struct mlc_cache *c, uint32_t page,
	    uint64_t lo, uint64_t hi)
{
	static uint64_t before[WASTE_CLASSES], after[WASTE_CLASSES];
	static double share[WASTE_CLASSES];
	static unsigned char val[16 << 20];
	double worst = 0, sum = 0;
	uint64_t n = 0, worst_at = lo;
	char key[HR_KEY];

	key_of(1, key);
	for (uint64_t v = lo; v <= hi && v <= sizeof(val);
	     v += (v < 4096 ? 1 : v / 4096)) {
		uint64_t item = HR_ITEM_HDR + HR_KEY + v;
		double occupied = 0, w;

		memset(before, 0, sizeof(before));
		memset(after, 0, sizeof(after));
		class_usage(a, page, before, share);
		if (mlc_set(c, key, HR_KEY, val, v, NULL) != 0)
			break;
		class_usage(a, page, after, share);
		mlc_delete(c, key, HR_KEY);
		for (int i = 0; i < WASTE_CLASSES; i++)
			if (after[i] > before[i])
				occupied += (double)(after[i] - before[i]) *
					    share[i];
		if (occupied <= 0)
			break;
		w = 1 - (double)item / occupied;
		if (w > worst) {
			worst = w;
			worst_at = v;
		}
		sum += w;
		n++;
	}
	fprintf(f, "| %" PRIu64 " B – %" PRIu64 " B | %.1f%% (at %" PRIu64
		" B) | %.1f%% |\n", lo, hi, worst * 100, worst_at,
		n ? sum / n * 100 : 0);
}

static void
report_waste(FILE *f)
{
	static const uint32_t pages[] = { 1 << 20, 512 << 10, 256 << 10,
					  128 << 10, 64 << 10 };
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;

	fprintf(f, "\n## Size-class waste\n\nShare of the page bytes that "
		"items of a value size cannot use (class rounding plus the "
		"page's tail), for a 16-byte key and mlc's %d-byte item header; "
		"worst and mean over every value size in the range (every "
		"byte up to 4 KiB, then 4096 steps per doubling).  Measured by "
		"storing each size in an empty arena: an item that would "
		"waste more than an eighth of one chunk is chained into "
		"chunks of a smaller class (docs/internals.md), and counts "
		"as all of them.\n", HR_ITEM_HDR);
	co.flags = MLC_CACHE_NO_L1;
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		struct mlc_arena *a;
		struct mlc_cache *c;
		uint32_t pg = pages[i];

		o.flags = MLC_ARENA_CREATE | MLC_ARENA_ANON;
		o.page_size = pg;
		o.bytes = (uint64_t)pg * 64 > 8 * MIB ? (uint64_t)pg * 64 : 8 * MIB;
		if (mlc_arena_open(&a, NULL, &o) < 0)
			continue;
		if (mlc_cache_open(&c, a, "waste", &co) < 0) {
			mlc_arena_close(a);
			continue;
		}
		fprintf(f, "\n%u KiB pages:\n\n| values | worst | mean |\n"
			"|---|---:|---:|\n", pg >> 10);
		waste_range(f, a, c, pg, 16, 1024);
		waste_range(f, a, c, pg, 1024, 16384);
		waste_range(f, a, c, pg, 16384, 16384);
		waste_range(f, a, c, pg, 16384, pg - HR_ITEM_HDR - HR_KEY);
		mlc_cache_close(c);
		mlc_arena_close(a);
	}
}

/* ---- output ----------------------------------------------------------- */

static int
rows_load(const char *path, struct row *set, int *n)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) && *n < MAX_ROWS) {
		struct row *w = &set[*n];

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%23s %lf %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %15s %" SCNu64 " %lf %lf %" SCNu64,
			   w->trace, &w->frac, &w->footprint, &w->requests,
			   &w->cache, &w->arena, w->policy, &w->misses,
			   &w->moves_k, &w->moves_steady_k,
			   &w->failures) == 11)
			(*n)++;
	}
	fclose(f);
	return 0;
}

static const struct row *
find(const struct row *set, int n, const char *trace, double frac,
     const char *policy)
{
	for (int i = 0; i < n; i++)
		if (strcmp(set[i].trace, trace) == 0 &&
		    set[i].frac > frac - 1e-9 && set[i].frac < frac + 1e-9 &&
		    strcmp(set[i].policy, policy) == 0)
			return &set[i];
	return NULL;
}

static double
ratio(const struct row *w)
{
	return w ? (double)w->misses / w->requests : -1;
}

static FILE *
out_open(const char *file)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cfg.out, file);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	return f;
}

static void
write_tsv(void)
{
	FILE *f = out_open("results.tsv");

	fprintf(f, "# trace frac footprint requests cache_bytes arena_bytes "
		"policy misses moves_per_1k moves_per_1k_steady failures\n");
	for (int i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];

		fprintf(f, "%s %.4f %" PRIu64 " %" PRIu64 " %" PRIu64 " %"
			PRIu64 " %s %" PRIu64 " %.4f %.4f %" PRIu64 "\n",
			w->trace, w->frac, w->footprint, w->requests, w->cache,
			w->arena, w->policy, w->misses, w->moves_k,
			w->moves_steady_k, w->failures);
	}
	fclose(f);
}

static void
write_report(int argc, char **argv)
{
	FILE *f = out_open("report.md"), *d = out_open("chart.dat");
	FILE *g = out_open("chart.gp");
	const char *pol[] = { "LRU", "CLOCK", "S3-FIFO", "W-TinyLFU" };

	fprintf(f, "# mlc hit ratio: %s eviction against reference policies\n"
		"\n%s `bench/hitratio/mlc-hitratio`:", cfg.l1 ? "L1" : "L2",
		cfg.from ?
		"Rows of an earlier run (see bench/README.md), reported by" :
		"Generated by");
	for (int i = 1; i < argc; i++)
		fprintf(f, " %s", argv[i]);
	if (cfg.l1)
		fprintf(f, "\n\nMiss ratios of L1 (gets that L1 did not "
			"answer / requests, cold misses included; lower is "
			"better) of a handle with `lru_size` = the cache's "
			"entries, over an arena that holds the whole trace; "
			"every reference holds as many entries, whatever their "
			"size.  `Δ best` is mlc's miss ratio minus the best "
			"reference's, in percentage points.  (Moves: always "
			"0 here.)");
	else
		fprintf(f, "\n\nMiss ratios (misses / requests, cold misses "
		"included; lower is better).  Cache = the arena's page bytes, "
		"given to every reference as its byte capacity; an object "
		"counts as mlc's item bytes (%d-byte header + %d-byte key + "
		"value) for all of them.  `Δ best` is mlc's miss ratio minus "
		"the best reference's, in percentage points.  Moves: page "
		"moves between size classes per 1000 gets (whole run / second "
		"half).", HR_ITEM_HDR, HR_KEY);
	fprintf(f, "\n\n| trace | cache | arena MiB |");
	for (int p = 0; p < 4; p++)
		fprintf(f, " %s |", pol[p]);
	if (nbase)
		fprintf(f, " mlc before | Δ best before | moves before |");
	fprintf(f, " mlc | Δ best | moves /1k (steady) |\n|---|---:|---:|");
	for (int p = 0; p < 4 + (nbase ? 3 : 0) + 3; p++)
		fprintf(f, "---:|");
	fputc('\n', f);
	fprintf(d, "case LRU CLOCK S3-FIFO W-TinyLFU mlc-before mlc\n");
	for (int i = 0; i < nrows; i++) {
		const struct row *w = &rows[i], *m, *b;
		double best = 2;

		if (strcmp(w->policy, "LRU") != 0)
			continue;
		if (cfg.l1)
			fprintf(f, "| %s | %.0f%% (%" PRIu64 " entries) | "
				"%.1f |", w->trace, w->frac * 100, w->cache,
				(double)w->arena / MIB);
		else
			fprintf(f, "| %s | %.0f%% (%.1f MiB) | %.1f |",
				w->trace, w->frac * 100,
				(double)w->cache / MIB,
				(double)w->arena / MIB);
		fprintf(d, "%s@%.0f%%", w->trace, w->frac * 100);
		for (int p = 0; p < 4; p++) {
			double r = ratio(find(rows, nrows, w->trace, w->frac,
					      pol[p]));

			if (r >= 0 && r < best)
				best = r;
			fprintf(f, " %.4f |", r);
			fprintf(d, " %.4f", r);
		}
		b = find(base_rows, nbase, w->trace, w->frac, "mlc");
		if (nbase && b)
			fprintf(f, " %.4f | %+.2f | %.2f (%.2f) |", ratio(b),
				(ratio(b) - best) * 100, b->moves_k,
				b->moves_steady_k);
		else if (nbase)
			fprintf(f, " – | – | – |");
		fprintf(d, " %.4f", b ? ratio(b) : -1.0);
		m = find(rows, nrows, w->trace, w->frac, "mlc");
		if (m)
			fprintf(f, " %.4f | %+.2f | %.2f (%.2f) |\n", ratio(m),
				(ratio(m) - best) * 100, m->moves_k,
				m->moves_steady_k);
		else
			fprintf(f, " – | – | – |\n");
		fprintf(d, " %.4f\n", m ? ratio(m) : -1.0);
	}
	/* The classes of the library this binary runs with. */
	if (!cfg.l1)
		report_waste(f);
	fprintf(f, "\n![miss ratios](chart.svg)\n");
	fprintf(g, "set terminal svg size 1400,650 dynamic noenhanced "
		"font \"sans,11\"\nset output \"chart.svg\"\n"
		"set title \"miss ratio per trace and cache size (lower is "
		"better)\"\nset ylabel \"miss ratio\"\nset grid ytics\n"
		"set style data histograms\n"
		"set style histogram clustered gap 1\n"
		"set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
		"set xtics scale 0 font \",9\"\n"
		"set key outside right top\n"
		"set yrange [0:*]\n"
		"set datafile missing \"-1.0000\"\n"
		"plot for [i=2:7] \"chart.dat\" using i:xtic(1) "
		"title columnheader(i)\n");
	fclose(f);
	fclose(d);
	fclose(g);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: mlc-hitratio [--quick|--full] [--footprint MiB] "
		"[--fracs 1,10,50]\n"
		"  [--trace NAME[,NAME]] [--page KiB] [--requests-per-key R] "
		"[--seed S]\n"
		"  [--out DIR] [--baseline results.tsv] [--from results.tsv]\n"
		"  [--no-mlc] [--classes] [--l1]"
		" [--list] [--waste]\n");
	exit(2);
}

static void
fracs_parse(const char *s)
{
	cfg.nfrac = 0;
	while (*s && cfg.nfrac < MAX_FRACS) {
		cfg.frac[cfg.nfrac++] = strtod(s, (char **)&s) / 100;
		if (*s == ',')
			s++;
	}
}

int
main(int argc, char **argv)
{
	/* SIGPIPE too: `mlc-hitratio ... | head` ends the run that way, and
	 * left its arena in /dev/shm. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quick") == 0) {
			cfg.footprint = 160 * MIB;
			fracs_parse("10,50");
		} else if (strcmp(a, "--full") == 0) {
			cfg.footprint = 1600 * MIB;
			fracs_parse("1,10,50");
		} else if (strcmp(a, "--list") == 0) {
			for (size_t s = 0; s < NSPECS; s++)
				printf("%s\n", specs[s].name);
			return 0;
		} else if (strcmp(a, "--waste") == 0) {
			report_waste(stdout);	/* the table alone */
			return 0;
		} else if (strcmp(a, "--classes") == 0) {
			cfg.classes = true;
		} else if (strcmp(a, "--l1") == 0) {
			cfg.l1 = true;
		} else if (strcmp(a, "--no-mlc") == 0) {
			cfg.no_mlc = true;
		} else if (v == NULL) {
			usage();
		} else if (strcmp(a, "--footprint") == 0) {
			cfg.footprint = strtoull(v, NULL, 0) * MIB, i++;
		} else if (strcmp(a, "--fracs") == 0) {
			fracs_parse(v), i++;
		} else if (strcmp(a, "--trace") == 0) {
			cfg.traces = v, i++;
		} else if (strcmp(a, "--page") == 0) {
			cfg.page_size = (uint32_t)strtoul(v, NULL, 0) << 10, i++;
		} else if (strcmp(a, "--requests-per-key") == 0) {
			cfg.req_per_key = strtod(v, NULL), i++;
		} else if (strcmp(a, "--seed") == 0) {
			cfg.seed = strtoull(v, NULL, 0), i++;
		} else if (strcmp(a, "--out") == 0) {
			cfg.out = v, i++;
		} else if (strcmp(a, "--baseline") == 0) {
			cfg.baseline = v, i++;
		} else if (strcmp(a, "--from") == 0) {
			cfg.from = v, i++;
		} else {
			usage();
		}
	}
	if (cfg.baseline && rows_load(cfg.baseline, base_rows, &nbase) < 0) {
		perror(cfg.baseline);
		return 1;
	}
	if (cfg.from) {
		/* Rewrite the report of an earlier run (with a baseline). */
		if (rows_load(cfg.from, rows, &nrows) < 0) {
			perror(cfg.from);
			return 1;
		}
	} else {
		for (size_t s = 0; s < NSPECS; s++)
			if (wanted(specs[s].name))
				run_spec(&specs[s]);
	}
	if (cfg.out) {
		if (!cfg.from)
			write_tsv();
		write_report(argc, argv);
	}
	return 0;
}
