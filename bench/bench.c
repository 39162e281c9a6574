/*
 * mlc-bench: mlc and its peers, side by side, on the same operations in the
 * same run.  Every number is meant to be read as a ratio to the peers
 * measured in the same session (the machine is shared and noisy).
 *
 *   mlc-bench --list
 *   mlc-bench [--case PATTERN[,PATTERN...]] [--impl NAME[,...]]
 *             [--rounds N] [--ops N] [--round-ms MS] [--warm-ms MS]
 *             [--quick] [--seed S] [--cpu N] [--keys N] [--quiet-ms MS]
 *             [--json FILE]
 *
 * Method (see bench/README.md): the process is pinned to one CPU (servers
 * to the other); per case every implementation is opened and filled, warmed
 * up, then the rounds are interleaved (round r runs every implementation
 * once, in an order rotated by r) so that a noisy moment hurts all of them
 * alike.  A round's ns/op is its wall time over its operations; the row
 * reports the median over rounds, the min and max, and per-operation p50
 * and p99 from every Nth operation timed with rdtscp.
 */
#include <errno.h>
#include <fnmatch.h>
#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "mlc.h"
#include "bench.h"
#include "mlc-paths.h"

#define HOT_KEYS 64
#define COLD_KEYS 100000
#define BIG_COLD_KEYS 10000	/* 16 KiB values: 160 MiB, 5x the L3 */
#define LARGE_COLD_KEYS 1000	/* 300 KB values: 300 MB; mlc chains them
				 * (docs/internals.md, "Chained items") */
#define MAX_ROUNDS 64
#define MAX_IMPLS 8
#define SAMPLE_CAP (256 * 1024)	/* latency samples per row */
#define CHURN_MAX 300000	/* fresh keys per round: delete, miss */
#define MIX_SEQ (1u << 19)	/* the Zipf sequence, walked in a ring */
#define MIX_LRU 1000
#define MEM_ITEMS 100000

/* ---- options ---------------------------------------------------------- */

static struct {
	const char *cases;
	const char *impls;
	int rounds;
	uint64_t ops;		/* 0: from the warm-up estimate */
	double round_ms, warm_ms;
	uint64_t min_ops, max_ops;
	uint64_t seed;
	uint32_t keys;		/* --keys: cold cases' key count; 0: theirs */
	int cpu, server_cpu, ncpu;
	bool quick;
	FILE *json;
} opt = {
	.rounds = 7, .round_ms = 250, .warm_ms = 100,
	.min_ops = 2000, .max_ops = 20000000, .seed = 42, .cpu = -1,
};

static char tmpdir[256];

/* ---- time --------------------------------------------------------------- */

static inline uint64_t
ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned aux;

	return __rdtscp(&aux);
#else
	return bench_now_ns();
#endif
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static double ticks_per_ns = 1.0;
static double tick_overhead;	/* ticks of an empty timed region */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
calibrate(void)
{
	uint64_t t0 = bench_now_ns(), c0 = ticks(), t1, c1;
	static uint64_t s[2001];

	while ((t1 = bench_now_ns()) - t0 < 50 * 1000 * 1000)
		;
	c1 = ticks();
	ticks_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
	if (ticks_per_ns <= 0)
		ticks_per_ns = 1.0;
	for (int i = 0; i < 2001; i++) {
		uint64_t a = ticks();

		s[i] = ticks() - a;
	}
	qsort(s, 2001, sizeof(s[0]), cmp_u64);
	tick_overhead = (double)s[1000];
}

static void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "warning: cannot pin to CPU %d: %s\n", cpu,
			strerror(errno));
}

/* ---- keys ---------------------------------------------------------------- */

static const char alnum[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

/* Key i of set @p salt: 10 random printable bytes, then i and the salt in
 * 6 more, so keys of one set never collide.  Printable, so memcached's
 * key rules hold too. */
static void
key_make(char *k, uint64_t salt, uint64_t i)
{
	uint64_t x = opt.seed ^ (salt * 0x2545f4914f6cdd1dull) ^ (i << 20);
	uint64_t r = splitmix(&x), tail = (i & 0xffffff) | (salt << 24);

	for (int j = 0; j < 10; j++, r >>= 6)
		k[j] = alnum[r & 63];
	for (int j = 10; j < 16; j++, tail >>= 6)
		k[j] = alnum[tail & 63];
}

static char *
keys_make(uint64_t salt, size_t n)
{
	char *k = malloc(n * BENCH_KEY);

	if (k == NULL) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		key_make(k + i * BENCH_KEY, salt, i);
	return k;
}

static uint64_t
name_salt(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h & 0xfff;
}

/* ---- cases ------------------------------------------------------------- */

enum op {
	OP_GET, OP_SET, OP_DEL, OP_LOAD, OP_MIX, OP_2PROC, OP_MEM, OP_NA,
	/* mlc only (bench/mlc-paths.c) */
	OP_FLIGHT, OP_INVCHK, OP_PROP, OP_BULK,
};

enum {
	I_MLC = 1 << 0, I_HASH = 1 << 1, I_SHM = 1 << 2, I_LMDB = 1 << 3,
	I_REDIS = 1 << 4, I_MC = 1 << 5,
	I_ALL = 0x3f,
	I_L2 = I_MLC | I_SHM | I_LMDB | I_REDIS | I_MC,
};

struct case_def {
	const char *name;
	enum op op;
	enum bench_mode mode;
	uint32_t nkeys, vlen;
	unsigned impls;
	const char *what;
};

#define L2CASE(sz, szname, n, nname, temp) \
	{ "l2_hit_" szname "_" temp, OP_GET, BM_L2, n, sz, I_L2, \
	  "L2 hit: mlc_get with L1 off (MLC_CACHE_NO_L1), " szname " B " \
	  "values, " nname " keys (" temp ")" }

static const struct case_def cases[] = {
	{ "l1_hit_hot", OP_GET, BM_L1, HOT_KEYS, 16, I_MLC | I_HASH | I_SHM,
	  "L1 hit: mlc_get of 64 keys kept in L1, 16 B values" },
	{ "l1_hit_cold", OP_GET, BM_L1, COLD_KEYS, 16, I_MLC | I_HASH | I_SHM,
	  "L1 hit: mlc_get of 100000 keys in L1 (lru_size 101024), shuffled" },
	L2CASE(16, "16", HOT_KEYS, "64", "hot"),
	L2CASE(16, "16", COLD_KEYS, "100000", "cold"),
	L2CASE(100, "100", HOT_KEYS, "64", "hot"),
	L2CASE(100, "100", COLD_KEYS, "100000", "cold"),
	L2CASE(1024, "1k", HOT_KEYS, "64", "hot"),
	L2CASE(1024, "1k", COLD_KEYS, "100000", "cold"),
	L2CASE(16384, "16k", HOT_KEYS, "64", "hot"),
	L2CASE(16384, "16k", BIG_COLD_KEYS, "10000", "cold"),
	L2CASE(300000, "300k", LARGE_COLD_KEYS, "1000", "cold"),
	{ "miss_load", OP_LOAD, BM_SMALL_L1, CHURN_MAX, 16, I_ALL,
	  "miss -> loader -> store: mlc_get of fresh keys with a loader "
	  "returning a fixed 16 B value; peers: get (miss) + set" },
	{ "set", OP_SET, BM_SMALL_L1, COLD_KEYS, 16, I_ALL,
	  "set: overwrite 16 B values of 100000 keys, shuffled "
	  "(mlc: lru_size 1000)" },
	{ "delete", OP_DEL, BM_SMALL_L1, CHURN_MAX, 16, I_ALL,
	  "delete: remove keys that exist (filled before each round)" },
	{ "mix_zipf", OP_MIX, BM_SMALL_L1, COLD_KEYS, 16, I_ALL,
	  "95% get / 5% set, Zipf(0.99) over 100000 keys, mlc lru_size "
	  "1000 (L1 smaller than the key set)" },
	{ "l2_2proc", OP_2PROC, BM_L2, COLD_KEYS, 16,
	  I_MLC | I_SHM | I_LMDB | I_HASH,
	  "L2 hit 16 B cold: 1 process vs 2 forked processes at once on 2 "
	  "CPUs" },
	{ "mem_per_item", OP_MEM, BM_L2, MEM_ITEMS, 16, I_L2,
	  "memory per item: 100000 items of 16 B key + 16 B value" },
	{ "flight_wake", OP_FLIGHT, 0, 0, 0, I_MLC,
	  "single flight: 64 waiters over 4 processes woken after publish" },
	{ "inval_check", OP_INVCHK, 0, 0, 0, I_MLC,
	  "invalidation check with nothing pending (log head load)" },
	{ "inval_propagate", OP_PROP, 0, 0, 0, I_MLC,
	  "a set reaching another process's L1" },
	{ "bulk_cold_32", OP_BULK, BM_L2, COLD_KEYS, 16, I_MLC,
	  "mlc_get_bulk of 32 keys vs 32 mlc_get calls, 100000 keys cold in "
	  "L2, 16 B values (ns per key)" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ---- implementations ------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned bit;
	const struct impl *im;	/* NULL: not built */
	bool huge;		/* a huge-page twin: run where its 4 KiB twin
				 * runs, if a huge tmpfs is set up or --impl
				 * names it */
} impls[] = {
	{ "mlc", I_MLC, &impl_mlc, false },
	{ "hash", I_HASH, &impl_hash, false },
	{ "shm", I_SHM, &impl_shm, false },
	{ "mlc-huge", I_MLC, &impl_mlc_huge, true },
	{ "shm-huge", I_SHM, &impl_shm_huge, true },
#ifdef HAVE_LMDB
	{ "lmdb", I_LMDB, &impl_lmdb, false },
#else
	{ "lmdb", I_LMDB, NULL, false },
#endif
#ifdef HAVE_HIREDIS
	{ "redis", I_REDIS, &impl_redis, false },
#else
	{ "redis", I_REDIS, NULL, false },
#endif
#ifdef HAVE_MEMCACHED
	{ "memcached", I_MC, &impl_memcached, false },
#else
	{ "memcached", I_MC, NULL, false },
#endif
};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))
_Static_assert(NIMPLS <= MAX_IMPLS, "a row for every implementation");

/* bench.h: where the -huge implementations put their memory. */
const char *
bench_huge_dir(char *why, size_t whylen)
{
	const char *dir = getenv("MLC_BENCH_HUGE_DIR");

	if (dir == NULL || dir[0] == '\0') {
		snprintf(why, whylen, "MLC_BENCH_HUGE_DIR is not set "
			 "(bench/run.sh --huge mounts a huge-page tmpfs)");
		return NULL;
	}
	return dir;
}

static bool
listed(const char *list, const char *name)
{
	char buf[512], *save = NULL, *tok;

	if (list == NULL)
		return true;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save))
		if (fnmatch(tok, name, 0) == 0)
			return true;
	return false;
}

/* One row of a case: an implementation and what it measured. */
struct row {
	const char *name;
	const struct impl *im;
	void *st;
	char status[16];	/* "ok", "skipped", "error", "n/a" */
	char note[256];
	uint64_t ops;		/* per round */
	int every;		/* sample every Nth op (a power of 2) */
	int nr;
	double ns[MAX_ROUNDS];	/* ns/op per round */
	uint64_t *samp;
	size_t nsamp;
	uint64_t misses, badlen, errors, chk;
	size_t pos;		/* where in the key sequence */
	/* results */
	double med, min, max, p50, p99;
	/* l2_2proc */
	double tput[2][MAX_ROUNDS], pns[2][2][MAX_ROUNDS];
	double scale, pmed[2][2];
	/* mem_per_item */
	double per_item;
	int noisy;		/* l2_2proc rounds run on a busy machine */
};

/* What a case's loop walks. */
struct work {
	enum op op;
	const char *seq;	/* keys in access order */
	size_t nseq;
	const uint8_t *isw;	/* OP_MIX: 1 where the op is a set */
	const char *val;
	uint32_t vlen;
};

static void
note_add(struct row *r, const char *fmt, ...)
{
	size_t n = strlen(r->note);
	va_list ap;

	if (n + 3 >= sizeof(r->note))
		return;
	if (n)
		n += (size_t)snprintf(r->note + n, sizeof(r->note) - n, "; ");
	va_start(ap, fmt);
	vsnprintf(r->note + n, sizeof(r->note) - n, fmt, ap);
	va_end(ap);
}

/* ---- the loop ------------------------------------------------------------- */

static inline void
one_op(const struct impl *im, void *st, const struct work *w,
       const char *key, size_t i, struct row *r)
{
	int rc;

	switch (w->op) {
	case OP_GET:
		rc = im->get(st, key, &r->chk);
		if (rc < 0)
			r->misses++;
		else if ((uint32_t)rc != w->vlen)
			r->badlen++;
		break;
	case OP_SET:
		if (im->set(st, key, w->val, w->vlen) < 0)
			r->errors++;
		break;
	case OP_DEL:
		if (im->del(st, key) < 0)
			r->errors++;
		break;
	case OP_LOAD:
		if (im->load(st, key, w->val, w->vlen) < 0)
			r->errors++;
		break;
	case OP_MIX:
		if (w->isw[i]) {
			if (im->set(st, key, w->val, w->vlen) < 0)
				r->errors++;
		} else if (im->get(st, key, &r->chk) < 0) {
			r->misses++;
			if (im->load(st, key, w->val, w->vlen) < 0)
				r->errors++;
		}
		break;
	default:
		break;
	}
}

/* Run @p ops operations from r->pos on; returns the wall time in ns.  When
 * @p sample, every r->every-th operation is also timed on its own. */
static uint64_t
run_ops(struct row *r, const struct work *w, uint64_t ops, bool sample)
{
	const struct impl *im = r->im;
	void *st = r->st;
	uint64_t mask = (uint64_t)r->every - 1, t0, t1;
	size_t pos = r->pos;

	t0 = bench_now_ns();
	for (uint64_t n = 0; n < ops; n++) {
		const char *key = w->seq + pos * BENCH_KEY;

		if (sample && (n & mask) == 0 && r->nsamp < SAMPLE_CAP) {
			uint64_t c0 = ticks();

			one_op(im, st, w, key, pos, r);
			r->samp[r->nsamp++] = ticks() - c0;
		} else {
			one_op(im, st, w, key, pos, r);
		}
		if (++pos == w->nseq)
			pos = 0;
	}
	t1 = bench_now_ns();
	r->pos = pos;
	return t1 - t0;
}

static double
median(double *v, int n)
{
	double tmp[MAX_ROUNDS];

	if (n == 0)
		return NAN;
	memcpy(tmp, v, (size_t)n * sizeof(*v));
	qsort(tmp, (size_t)n, sizeof(*tmp), cmp_dbl);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double
pct(uint64_t *s, size_t n, double p)
{
	double t;

	if (n == 0)
		return NAN;
	t = (double)s[(size_t)(p * (double)(n - 1))] - tick_overhead;
	return (t < 0 ? 0 : t) / ticks_per_ns;
}

static void
row_finish(struct row *r)
{
	r->med = median(r->ns, r->nr);
	r->min = r->max = r->nr ? r->ns[0] : NAN;
	for (int i = 1; i < r->nr; i++) {
		if (r->ns[i] < r->min)
			r->min = r->ns[i];
		if (r->ns[i] > r->max)
			r->max = r->ns[i];
	}
	qsort(r->samp, r->nsamp, sizeof(r->samp[0]), cmp_u64);
	r->p50 = pct(r->samp, r->nsamp, 0.50);
	r->p99 = pct(r->samp, r->nsamp, 0.99);
}

/* Operations per round from the warm-up's estimate of ns/op. */
static uint64_t
ops_for(double est_ns, uint64_t cap)
{
	uint64_t n;

	if (opt.ops)
		n = opt.ops;
	else {
		n = (uint64_t)(opt.round_ms * 1e6 / (est_ns > 1 ? est_ns : 1));
		if (n < opt.min_ops)
			n = opt.min_ops;
		if (n > opt.max_ops)
			n = opt.max_ops;
	}
	return cap && n > cap ? cap : n;
}

static int
every_for(double est_ns, uint64_t ops)
{
	uint64_t want = (uint64_t)opt.rounds * ops / (SAMPLE_CAP / 2) + 1;
	int e = est_ns >= 2000 ? 1 : est_ns >= 200 ? 4 : 64;

	while ((uint64_t)e < want)
		e <<= 1;
	return e;
}

/* ---- how busy the machine was ------------------------------------------ */

/* CPU time the whole machine spent busy, and this process with its reaped
 * children (forked workers, servers) spent, in seconds. */
struct cpu_snap {
	double t, busy, steal, own;
};

static void
cpu_snap(struct cpu_snap *c)
{
	unsigned long long v[8] = { 0 };
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rusage ru;
	FILE *f = fopen("/proc/stat", "r");

	c->t = (double)bench_now_ns() / 1e9;
	c->busy = c->steal = c->own = 0;
	if (f != NULL) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7]) == 8) {
			c->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) /
				  hz;
			c->steal = (double)v[7] / hz;
		}
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &ru);
	c->own += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		  (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	getrusage(RUSAGE_CHILDREN, &ru);
	c->own += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		  (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Of all the CPUs' time during the case: what others used (other
 * processes on the machine), and what the hypervisor stole. */
static double case_others = NAN, case_steal = NAN;

static void
cpu_diff(const struct cpu_snap *a, const struct cpu_snap *b)
{
	double cap = (b->t - a->t) * opt.ncpu;
	double others = (b->busy - a->busy) - (b->own - a->own);

	if (cap <= 0)
		return;
	case_others = others < 0 ? 0 : others / cap;
	case_steal = (b->steal - a->steal) / cap;
}

/* Wait (up to @p max_ms) until other processes leave the CPUs alone: the
 * 2-process case means nothing when someone else holds one of the two
 * CPUs.  Returns the share of the machine others used in the last window. */
static double
wait_quiet(int max_ms)
{
	struct cpu_snap a, b;
	double others = 1;

	for (int waited = 0; waited <= max_ms; waited += 200) {
		cpu_snap(&a);
		sleep_ms(200);
		cpu_snap(&b);
		others = ((b.busy - a.busy) - (b.own - a.own)) /
			 ((b.t - a.t) * opt.ncpu);
		if (others < 0.10)
			break;
	}
	return others < 0 ? 0 : others;
}

/* Before a round: give other processes' bursts up to 3 s to pass,
 * within a budget for the whole run.  Returns true if the round starts on
 * a busy machine. */
static int quiet_total_ms = 200000;
static int noisy_rounds;	/* in the current case */

static bool
round_gate(void)
{
	uint64_t t0;
	double others;

	if (quiet_total_ms <= 0)
		return true;
	t0 = bench_now_ns();
	others = wait_quiet(quiet_total_ms < 3000 ? quiet_total_ms : 3000);
	quiet_total_ms -= (int)((bench_now_ns() - t0) / 1000000);
	return others >= 0.10;
}

/* ---- output ----------------------------------------------------------- */

static void
json_str(FILE *f, const char *k, const char *v)
{
	fprintf(f, "\"%s\":\"", k);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		if ((unsigned char)*v >= 0x20)
			fputc(*v, f);
	}
	fputs("\",", f);
}

static void
json_num(FILE *f, const char *k, double v)
{
	if (isnan(v))
		fprintf(f, "\"%s\":null,", k);
	else
		fprintf(f, "\"%s\":%.3f,", k, v);
}

static void
json_row(const struct case_def *c, const struct row *r, int procs)
{
	FILE *f = opt.json;

	if (f == NULL)
		return;
	fputc('{', f);
	json_str(f, "case", c->name);
	json_str(f, "what", c->what);
	json_str(f, "impl", r->name);
	json_str(f, "role", r->im ? r->im->role : "peer");
	json_str(f, "status", r->status);
	json_num(f, "keys", c->nkeys);
	if (strcmp(r->status, "ok") == 0) {
		if (c->op == OP_MEM) {
			json_num(f, "bytes_per_item", r->per_item);
		} else {
			int p = procs > 0 ? procs - 1 : 0;

			json_num(f, "ops", (double)r->ops);
			json_num(f, "rounds", r->nr);
			json_num(f, "ns_op", procs == 1 ? r->pmed[0][0] :
				 procs == 2 ? r->med : r->med);
			json_num(f, "ns_min", procs == 1 ? NAN : r->min);
			json_num(f, "ns_max", procs == 1 ? NAN : r->max);
			json_num(f, "p50", procs == 1 ? NAN : r->p50);
			json_num(f, "p99", procs == 1 ? NAN : r->p99);
			json_num(f, "ops_s", procs ? 1e9 * median(
				(double *)r->tput[p], r->nr) : 1e9 / r->med);
			json_num(f, "sample_every", r->every);
			if (!procs) {
				fputs("\"ns_rounds\":[", f);
				for (int i = 0; i < r->nr; i++)
					fprintf(f, "%s%.3f", i ? "," : "",
						r->ns[i]);
				fputs("],", f);
			}
			if (procs) {
				json_num(f, "procs", procs);
				json_num(f, "ns_op_p0", r->pmed[p][0]);
				json_num(f, "ns_op_p1",
					 procs == 2 ? r->pmed[p][1] : NAN);
				json_num(f, "scale_2p_1p", r->scale);
			}
		}
	}
	json_str(f, "note", r->note);
	json_num(f, "others_busy", case_others);
	json_num(f, "noisy_rounds", c->op == OP_2PROC ? r->noisy :
		 noisy_rounds);
	json_num(f, "steal", case_steal);
	fprintf(f, "\"seed\":%llu}\n", (unsigned long long)opt.seed);
	fflush(f);
}

static struct row *
mlc_row(struct row *rows, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].name, "mlc") == 0 &&
		    strcmp(rows[i].status, "ok") == 0)
			return &rows[i];
	return NULL;
}

/* mlc's ns/op over @p r's, paired round by round (the two ran within a
 * second of each other), median over rounds: steadier than the ratio of
 * the medians when the machine's load drifts. */
static double
paired_ratio(const struct row *m, const struct row *r)
{
	double q[MAX_ROUNDS];
	int n = m->nr < r->nr ? m->nr : r->nr;

	for (int i = 0; i < n; i++)
		q[i] = m->ns[i] / r->ns[i];
	return median(q, n);
}

static void
print_busy(void)
{
	if (!isnan(case_others))
		printf("   (others used %.0f%% of the machine's CPU time during "
		       "this case, steal %.0f%%; %d rounds/passes started "
		       "busy)\n",
		       100 * case_others, 100 * case_steal, noisy_rounds);
}

static void
print_header(const struct case_def *c)
{
	printf("\n== %s: %s\n", c->name, c->what);
	print_busy();
	printf("%-10s %9s %9s %9s %9s %9s %9s %7s %12s %9s\n", "impl",
	       "ops/rnd", "ns/op", "p50", "p99", "min", "max", "spread",
	       "ops/s", "mlc/impl");
}

static void
print_rows(const struct case_def *c, struct row *rows, int n)
{
	struct row *m = mlc_row(rows, n);

	print_header(c);
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];

		if (strcmp(r->status, "ok") != 0) {
			printf("%-10s %s: %s\n", r->name, r->status, r->note);
		} else {
			printf("%-10s %9llu %9.1f %9.1f %9.1f %9.1f %9.1f "
			       "%6.1f%% %12.0f ", r->name,
			       (unsigned long long)r->ops, r->med, r->p50,
			       r->p99, r->min, r->max,
			       100 * (r->max - r->min) / r->med, 1e9 / r->med);
			if (m != NULL && r != m)
				printf("%9.3g", paired_ratio(m, r));
			else
				printf("%9s", "-");
			if (r->note[0])
				printf("  [%s]", r->note);
			putchar('\n');
		}
		json_row(c, r, 0);
	}
	fflush(stdout);
}

/* ---- rows: open, warm, close -------------------------------------------- */

static int
rows_open(const struct case_def *c, struct row *rows,
	  const struct bench_params *p)
{
	int n = 0;

	for (size_t i = 0; i < NIMPLS; i++) {
		struct row *r;
		int rc;

		if (!(c->impls & impls[i].bit) ||
		    !listed(opt.impls, impls[i].name))
			continue;
		if (impls[i].huge && opt.impls == NULL &&
		    getenv("MLC_BENCH_HUGE_DIR") == NULL)
			continue;
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		r->name = impls[i].name;
		r->im = impls[i].im;
		if (r->im == NULL) {
			strcpy(r->status, "skipped");
			note_add(r, "not built: its library was not found "
				 "when meson configured bench/");
			continue;
		}
		rc = r->im->open(p, &r->st, r->note, sizeof(r->note));
		if (rc < 0) {
			strcpy(r->status, rc == -ENOTSUP ? "skipped" : "error");
			if (r->note[0] == '\0')
				note_add(r, "open: %s", strerror(-rc));
			r->st = NULL;
			continue;
		}
		strcpy(r->status, "ok");
		r->samp = malloc(SAMPLE_CAP * sizeof(*r->samp));
		if (r->samp == NULL) {
			perror("malloc");
			exit(1);
		}
	}
	return n;
}

static bool
row_ok(const struct row *r)
{
	return strcmp(r->status, "ok") == 0;
}

static void
row_fail(struct row *r, const char *what, int rc)
{
	strcpy(r->status, "error");
	note_add(r, "%s: %s", what, rc < 0 ? strerror(-rc) : "failed");
}

static void
rows_close(struct row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];

		if (r->st != NULL) {
			char msg[200] = "";

			if (r->im->check)
				r->im->check(r->st, msg, sizeof(msg));
			if (msg[0])
				note_add(r, "%s", msg);
			r->im->close(r->st);
			r->st = NULL;
		}
		if (r->misses && row_ok(r))
			note_add(r, "%llu misses",
				 (unsigned long long)r->misses);
		if (r->badlen && row_ok(r))
			note_add(r, "%llu wrong lengths",
				 (unsigned long long)r->badlen);
		if (r->errors && row_ok(r))
			note_add(r, "%llu failed ops",
				 (unsigned long long)r->errors);
	}
}

static void
rows_free(struct row *rows, int n)
{
	for (int i = 0; i < n; i++)
		free(rows[i].samp);
}

/* Warm up: @p least operations first (at most @p cap), then opt.warm_ms
 * more (within @p cap) that give the estimate of ns/op. */
static double
warm(struct row *r, const struct work *w, uint64_t cap, uint64_t least)
{
	uint64_t done = 0, t = 0, chunk = 256, timed = 0;

	if (least)
		run_ops(r, w, cap && least > cap ? cap : least, false);
	done = least;
	while (t < opt.warm_ms * 1e6 && (!cap || done < cap)) {
		uint64_t n = cap && cap - done < chunk ? cap - done : chunk;

		t += run_ops(r, w, n, false);
		done += n;
		timed += n;
		if (chunk < 65536)
			chunk *= 2;
	}
	return timed ? (double)t / (double)timed : 1;
}

/* Forget what the warm-up counted (wrong levels, misses): only the timed
 * rounds are reported. */
static void
row_recheck(struct row *r)
{
	char msg[200];

	if (r->im->check)
		r->im->check(r->st, msg, sizeof(msg));
}

/* ---- steady cases: get, set, mix ------------------------------------------ */

static char *
zipf_seq(size_t nkeys, const char *keys, size_t len, uint8_t **isw)
{
	double *cdf = malloc(nkeys * sizeof(*cdf)), sum = 0;
	uint32_t *perm = malloc(nkeys * sizeof(*perm));
	char *seq = malloc(len * BENCH_KEY);
	uint64_t x = opt.seed ^ 0x5a5a;

	*isw = malloc(len);
	if (!cdf || !perm || !seq || !*isw) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < nkeys; i++) {
		sum += 1.0 / pow((double)(i + 1), 0.99);
		cdf[i] = sum;
		perm[i] = (uint32_t)i;
	}
	/* Rank -> key at random, so the hot keys are spread out. */
	for (size_t i = nkeys - 1; i > 0; i--) {
		size_t j = splitmix(&x) % (i + 1);
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < len; i++) {
		double u = (double)(splitmix(&x) >> 11) / 9007199254740992.0 *
			   sum;
		size_t lo = 0, hi = nkeys - 1;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		memcpy(seq + i * BENCH_KEY, keys + perm[lo] * BENCH_KEY,
		       BENCH_KEY);
		(*isw)[i] = (splitmix(&x) % 100) < 5;
	}
	free(cdf);
	free(perm);
	return seq;
}

static void
run_steady(const struct case_def *c, struct row *rows, int n,
	   const struct bench_params *p, char *val)
{
	uint64_t salt = name_salt(c->name);
	char *keys = keys_make(salt, c->nkeys), *seq;
	uint8_t *isw = NULL;
	struct work w = { c->op, NULL, 0, NULL, val, c->vlen };

	if (c->op == OP_MIX) {
		seq = zipf_seq(c->nkeys, keys, MIX_SEQ, &isw);
		w.nseq = MIX_SEQ;
		w.isw = isw;
	} else {
		seq = malloc((size_t)c->nkeys * BENCH_KEY);
		memcpy(seq, keys, (size_t)c->nkeys * BENCH_KEY);
		shuffle_keys(seq, c->nkeys, opt.seed ^ salt);
		w.nseq = c->nkeys;
	}
	w.seq = seq;
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		int rc;

		if (!row_ok(r))
			continue;
		rc = r->im->fill(r->st, keys, c->nkeys, val, c->vlen);
		if (rc < 0) {
			row_fail(r, "fill", rc);
			continue;
		}
		/* Each implementation starts its walk at the same place. */
		/* A get case walks every key once first, so that L1 cases
		 * start with every key in L1 whatever the fill did.  Since
		 * d3958ef a fill by sets keeps mlc's handle up with the log,
		 * its L1 keeps the fill's entries, and the walk refills
		 * nothing.  Before, the fill lapped the log, the walk's
		 * first get emptied the L1, and the walk laid the entries
		 * out in the timed walk's own order, which flattered L1 hits
		 * at 1e5 keys and up (bench-l1-order).  Servers skip it:
		 * at tens of microseconds a round trip it would take longer
		 * than the case, and they have no L1 to fill.  With --keys,
		 * only L1 cases walk: at 1e7 keys a walk takes minutes, and
		 * an L2 case has no L1 to fill either. */
		r->pos = 0;
		bool walk = c->op == OP_GET && !r->im->remote &&
			    (opt.keys == 0 || c->mode == BM_L1);
		double est = warm(r, &w, 0, walk ? w.nseq : 0);
		r->ops = ops_for(est, 0);
		r->every = every_for(est, r->ops);
		r->misses = r->badlen = r->errors = 0;
		r->pos = 0;
		row_recheck(r);
	}
	for (int round = 0; round < opt.rounds; round++) {
		if (round_gate())
			noisy_rounds++;
		for (int j = 0; j < n; j++) {
			struct row *r = &rows[(j + round) % n];

			if (!row_ok(r))
				continue;
			r->ns[r->nr++] = (double)run_ops(r, &w, r->ops, true) /
					 (double)r->ops;
		}
	}
	free(keys);
	free(seq);
	free(isw);
}

/* ---- churn cases: delete, miss -> load ------------------------------------ */

/* Before a timed pass: empty the implementation, and for a delete, store
 * the keys it will remove. */
static int
churn_prep(struct row *r, const struct case_def *c, const char *keys,
	   size_t n, const char *val)
{
	int rc = r->im->reset(r->st);

	if (rc < 0)
		return rc;
	if (c->op == OP_DEL)
		rc = r->im->fill(r->st, keys, n, val, c->vlen);
	return rc;
}

static void
run_churn(const struct case_def *c, struct row *rows, int n,
	  const struct bench_params *p, char *val)
{
	uint64_t salt = name_salt(c->name);
	struct work w = { c->op, NULL, 0, NULL, val, c->vlen };
	uint64_t most = 0;
	char *keys;

	/* Warm-up on a key set of its own (salt + 1), at most 20000 ops. */
	keys = keys_make(salt + 1, 20000);
	w.seq = keys;
	w.nseq = 20000;
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		int rc;

		if (!row_ok(r))
			continue;
		if ((rc = churn_prep(r, c, keys, 20000, val)) < 0) {
			row_fail(r, "reset/fill", rc);
			continue;
		}
		r->pos = 0;
		double est = warm(r, &w, 20000, 0);
		r->ops = ops_for(est, CHURN_MAX);
		r->every = every_for(est, r->ops);
		r->misses = r->badlen = r->errors = 0;
		row_recheck(r);
		if (r->ops > most)
			most = r->ops;
	}
	free(keys);
	for (int round = 0; round < opt.rounds; round++) {
		if (round_gate())
			noisy_rounds++;
		/* Fresh keys for every round: a miss is a miss, a delete
		 * removes something. */
		keys = keys_make(salt + 2 + (uint64_t)round, most);
		w.seq = keys;
		w.nseq = most;
		for (int j = 0; j < n; j++) {
			struct row *r = &rows[(j + round) % n];
			int rc;

			if (!row_ok(r))
				continue;
			if ((rc = churn_prep(r, c, keys, r->ops, val)) < 0) {
				row_fail(r, "reset/fill", rc);
				continue;
			}
			r->pos = 0;
			r->ns[r->nr++] = (double)run_ops(r, &w, r->ops, true) /
					 (double)r->ops;
		}
		free(keys);
	}
}

/* ---- miss -> load into a store of --keys keys ------------------------- */

/* Fresh keys per batch: the store holds the case's N keys plus at most
 * this many loaded ones while a batch is timed. */
static uint32_t
load_batch(uint32_t nkeys)
{
	uint32_t b = nkeys / 10;

	return b < 256 ? 256 : b > 20000 ? 20000 : b;
}

/* The fresh keys the batches walk in turn: as many as the store's keys, at
 * most CHURN_MAX, so that at large N a batch's keys (their buckets, their
 * slots) are as cold as any other key's, not the last batch's again. */
static uint32_t
load_pool(uint32_t nkeys)
{
	uint32_t p = nkeys < CHURN_MAX ? nkeys : CHURN_MAX;

	return p < load_batch(nkeys) ? load_batch(nkeys) : p;
}

/* @p ops loads of fresh keys from the pool (w->seq, w->nseq of them, from
 * r->pos on), timed @p batch at a time; after each batch its keys are
 * deleted again, outside the timing, so that when the pool comes round
 * again they miss again.  Returns the timed ns. */
static uint64_t
load_passes(struct row *r, const struct work *w, uint64_t ops,
	    uint32_t batch, bool sample)
{
	uint64_t t = 0;

	while (ops > 0) {
		size_t start = r->pos, b = batch;

		if (b > ops)
			b = (size_t)ops;
		if (b > w->nseq - start)	/* no wrap inside a batch */
			b = w->nseq - start;
		t += run_ops(r, w, b, sample);
		for (size_t i = start; i < start + b; i++)
			if (r->im->del(r->st, w->seq + i * BENCH_KEY) < 0)
				r->errors++;
		ops -= b;
	}
	return t;
}

/*
 * miss_load with --keys N: the implementation holds N keys (filled once,
 * outside the timing), and each round loads fresh keys into it from a pool
 * (load_pool), in batches that are deleted again after they are timed, so
 * the store stays at N to N + batch keys whatever the round's length.
 * Without --keys, miss_load loads into an empty store (run_churn).
 */
static void
run_load_into(const struct case_def *c, struct row *rows, int n, char *val)
{
	uint64_t salt = name_salt(c->name);
	uint32_t batch = load_batch(c->nkeys), pool = load_pool(c->nkeys);
	struct work w = { c->op, NULL, pool, NULL, val, c->vlen };
	char *base = keys_make(salt, c->nkeys);

	w.seq = keys_make(salt + 1, pool);
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		uint64_t t0, t, done;
		double est;
		int rc;

		if (!row_ok(r))
			continue;
		if ((rc = r->im->fill(r->st, base, c->nkeys, val,
				      c->vlen)) < 0) {
			row_fail(r, "fill", rc);
			continue;
		}
		/* Warm-up and estimate: batches for about --warm-ms. */
		r->every = 64;
		r->pos = 0;
		t = 0;
		done = 0;
		t0 = bench_now_ns();
		do {
			t += load_passes(r, &w, batch, batch, false);
			done += batch;
		} while (bench_now_ns() - t0 < opt.warm_ms * 1e6);
		est = (double)t / (double)done;
		r->ops = ops_for(est, CHURN_MAX);
		r->every = every_for(est, r->ops);
		r->misses = r->badlen = r->errors = 0;
		row_recheck(r);
	}
	for (int round = 0; round < opt.rounds; round++) {
		if (round_gate())
			noisy_rounds++;
		for (int j = 0; j < n; j++) {
			struct row *r = &rows[(j + round) % n];

			if (!row_ok(r))
				continue;
			/* Each goes on through the pool from where it was. */
			r->ns[r->nr++] = (double)load_passes(r, &w, r->ops,
							     batch, true) /
					 (double)r->ops;
		}
	}
	free((char *)w.seq);
	free(base);
}

/* ---- 1 process vs 2 processes --------------------------------------------- */

#define CHILD_SAMPLES 65536

struct shared {
	_Atomic int ready, go;
	struct {
		uint64_t ns, ops, misses;
		int rc;
		uint32_t nsamp;
		uint64_t samp[CHILD_SAMPLES];
	} res[2];
};

static void
child_run(struct row *r, const struct work *w, struct shared *sh, int id,
	  int cpu)
{
	int rc;

	pin(cpu);
	rc = r->im->fork_child ? r->im->fork_child(r->st) : -ENOTSUP;
	sh->res[id].rc = rc;
	if (rc == 0) {
		/* Each process walks the keys from its own place. */
		r->pos = (size_t)id * (w->nseq / 2);
		r->nsamp = 0;
		r->misses = 0;
		run_ops(r, w, r->ops / 10 + 1, false);	/* warm this process */
	}
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		;
	if (rc == 0) {
		sh->res[id].ns = run_ops(r, w, r->ops, true);
		sh->res[id].ops = r->ops;
		sh->res[id].misses = r->misses;
		sh->res[id].nsamp = (uint32_t)(r->nsamp < CHILD_SAMPLES ?
					       r->nsamp : CHILD_SAMPLES);
		memcpy(sh->res[id].samp, r->samp,
		       sh->res[id].nsamp * sizeof(uint64_t));
	}
	_exit(0);
}

/* One pass with @p np processes; 0 and the results in sh, or -errno. */
static int
fork_pass(struct row *r, const struct work *w, struct shared *sh, int np)
{
	pid_t pid[2];
	int status, rc = 0;

	memset(sh, 0, sizeof(*sh));
	fflush(NULL);
	for (int i = 0; i < np; i++) {
		/* One process: on the benchmark's CPU.  Two: one on each. */
		int cpu = np == 1 ? opt.cpu : (opt.cpu + i) % opt.ncpu;

		pid[i] = fork();
		if (pid[i] < 0)
			return -errno;
		if (pid[i] == 0)
			child_run(r, w, sh, i, cpu);
	}
	while (atomic_load(&sh->ready) < np)
		sleep_ms(1);
	atomic_store(&sh->go, 1);
	for (int i = 0; i < np; i++) {
		if (waitpid(pid[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			rc = -ECHILD;
		if (sh->res[i].rc < 0)
			rc = sh->res[i].rc;
	}
	return rc;
}

static void
run_2proc(const struct case_def *c, struct row *rows, int n,
	  const struct bench_params *p, char *val)
{
	uint64_t salt = name_salt(c->name);
	char *keys = keys_make(salt, c->nkeys), *seq;
	struct work w = { OP_GET, NULL, c->nkeys, NULL, val, c->vlen };
	int quiet_budget = opt.quick ? 3000 : 60000;	/* ms */
	struct shared *sh;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	seq = malloc((size_t)c->nkeys * BENCH_KEY);
	memcpy(seq, keys, (size_t)c->nkeys * BENCH_KEY);
	shuffle_keys(seq, c->nkeys, opt.seed ^ salt);
	w.seq = seq;
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		int rc;

		if (!row_ok(r))
			continue;
		if (opt.ncpu < 2) {
			strcpy(r->status, "skipped");
			note_add(r, "needs 2 CPUs");
			continue;
		}
		if (r->im->fork_child == NULL) {
			strcpy(r->status, "skipped");
			note_add(r, "cannot run in forked processes");
			continue;
		}
		if ((rc = r->im->fill(r->st, keys, c->nkeys, val,
				      c->vlen)) < 0) {
			row_fail(r, "fill", rc);
			continue;
		}
		r->pos = 0;
		double est = warm(r, &w, 0, w.nseq);
		r->ops = ops_for(est, 0);
		r->every = every_for(est, r->ops);
	}
	for (int round = 0; round < opt.rounds; round++)
		for (int j = 0; j < n; j++) {
			struct row *r = &rows[(j + round) % n];

			if (!row_ok(r))
				continue;
			for (int k = 0; k < 2; k++) {
				/* Alternate which goes first. */
				int np = ((k + round) & 1) + 1, rc;
				double t = 0;

				/* Both CPUs are needed: wait a while for a
				 * quiet machine (within a budget for the
				 * case), and say when there was none. */
				if (quiet_budget > 0) {
					uint64_t t0 = bench_now_ns();

					if (wait_quiet(quiet_budget < 5000 ?
						       quiet_budget : 5000) >= 0.10) {
						r->noisy++;
						noisy_rounds++;
					}
					quiet_budget -= (int)((bench_now_ns() - t0) /
							      1000000);
				} else {
					r->noisy++;
					noisy_rounds++;
				}

				if ((rc = fork_pass(r, &w, sh, np)) < 0) {
					row_fail(r, "fork pass", rc);
					break;
				}
				for (int i = 0; i < np; i++) {
					double ns = (double)sh->res[i].ns /
						    (double)sh->res[i].ops;

					r->pns[np - 1][i][r->nr] = ns;
					t += 1 / ns;
					r->misses += sh->res[i].misses;
					if (np == 2) {
						uint32_t m = sh->res[i].nsamp;

						if (r->nsamp + m > SAMPLE_CAP)
							m = (uint32_t)(SAMPLE_CAP - r->nsamp);
						memcpy(r->samp + r->nsamp,
						       sh->res[i].samp,
						       m * sizeof(uint64_t));
						r->nsamp += m;
					}
				}
				r->tput[np - 1][r->nr] = t;	/* ops per ns */
			}
			if (row_ok(r))
				r->nr++;
		}
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];

		if (!row_ok(r) || r->nr == 0)
			continue;
		for (int np = 0; np < 2; np++)
			for (int k = 0; k <= np; k++)
				r->pmed[np][k] = median(r->pns[np][k], r->nr);
		r->scale = median(r->tput[1], r->nr) /
			   median(r->tput[0], r->nr);
		if (r->noisy)
			note_add(r, "%d of %d passes started while other "
				 "processes used >10%% of the CPUs", r->noisy,
				 2 * r->nr);
		/* min/max and p50/p99 of the 2-process runs. */
		memcpy(r->ns, r->pns[1][0], (size_t)r->nr * sizeof(double));
		row_finish(r);
		r->med = (r->pmed[1][0] + r->pmed[1][1]) / 2;
	}
	munmap(sh, sizeof(*sh));
	free(keys);
	free(seq);
}

static void
print_2proc(const struct case_def *c, struct row *rows, int n)
{
	double m1 = NAN, m2 = NAN;

	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].name, "mlc") == 0 && row_ok(&rows[i])) {
			m1 = rows[i].pmed[0][0];
			m2 = rows[i].med;
		}
	printf("\n== %s: %s\n", c->name, c->what);
	print_busy();
	printf("%-10s %9s %10s %10s %10s %9s %9s %13s %11s\n", "impl",
	       "ops/rnd", "1p ns/op", "2p ns/op#0", "2p ns/op#1", "2p p50",
	       "2p p99", "scale 2p/1p", "mlc/impl 2p");
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];

		if (!row_ok(r)) {
			printf("%-10s %s: %s\n", r->name, r->status, r->note);
			json_row(c, r, 0);
			continue;
		}
		printf("%-10s %9llu %10.1f %10.1f %10.1f %9.1f %9.1f %12.2fx ",
		       r->name, (unsigned long long)r->ops, r->pmed[0][0],
		       r->pmed[1][0], r->pmed[1][1], r->p50, r->p99,
		       r->scale);
		if (!isnan(m2) && strcmp(r->name, "mlc") != 0)
			printf("%11.2f", m2 / r->med);
		else
			printf("%11s", "-");
		if (r->note[0])
			printf("  [%s]", r->note);
		putchar('\n');
		(void)m1;
		json_row(c, r, 1);
		json_row(c, r, 2);
	}
	fflush(stdout);
}

/* ---- memory per item ------------------------------------------------------ */

static void
run_mem(const struct case_def *c, struct row *rows, int n, char *val)
{
	char *keys = keys_make(name_salt(c->name), c->nkeys);

	printf("\n== %s: %s\n", c->name, c->what);
	printf("%-10s %12s %8s  %s\n", "impl", "bytes/item", "vs 80 B",
	       "how counted");
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		int rc;

		if (row_ok(r) && r->im->mem == NULL) {
			strcpy(r->status, "skipped");
			note_add(r, "no memory accounting");
		}
		if (row_ok(r) && ((rc = r->im->reset(r->st)) < 0 ||
				  (rc = r->im->fill(r->st, keys, c->nkeys,
						    val, c->vlen)) < 0))
			row_fail(r, "fill", rc);
		if (row_ok(r) &&
		    (rc = r->im->mem(r->st, c->nkeys, &r->per_item, r->note,
				     sizeof(r->note))) < 0)
			row_fail(r, "measure", rc);
		if (row_ok(r))
			printf("%-10s %12.1f %7.2fx  %s\n", r->name,
			       r->per_item, r->per_item / 80.0, r->note);
		else
			printf("%-10s %s: %s\n", r->name, r->status, r->note);
		json_row(c, r, 0);
	}
	fflush(stdout);
	free(keys);
}

/* ---- paths only mlc has ---------------------------------------------------- */

static void
samples_from(struct row *r, const double *ns, size_t n)
{
	r->samp = malloc((n ? n : 1) * sizeof(*r->samp));
	for (size_t i = 0; i < n; i++)
		r->samp[i] = (uint64_t)((ns[i] < 0 ? 0 : ns[i]) * ticks_per_ns +
					tick_overhead);
	r->nsamp = n;
}

static void
run_paths(const struct case_def *c)
{
	static struct row rows[2];
	double a[MAX_ROUNDS], b[MAX_ROUNDS], *all = NULL;
	int n = 1, rounds = opt.quick ? 3 : opt.rounds, rc = 0;
	size_t nall = 0;

	memset(rows, 0, sizeof(rows));
	rows[0].name = "mlc";
	rows[1].name = "mlc_get";
	rows[0].im = rows[1].im = &impl_mlc;
	strcpy(rows[0].status, "ok");
	strcpy(rows[1].status, "ok");
	rows[0].every = rows[1].every = 1;
	case_others = case_steal = NAN;
	noisy_rounds = 0;
	switch (c->op) {
	case OP_FLIGHT:
		all = malloc(sizeof(*all) * 64 * (size_t)rounds);
		rows[1].name = "futex";
		rows[1].im = NULL;
		rc = mlcp_flight_wake(rounds, rows[0].ns, rows[1].ns, all,
				      &nall, rows[0].note, sizeof(rows[0].note));
		rows[0].nr = rows[1].nr = rounds;
		rows[0].ops = rows[1].ops = 64;
		samples_from(&rows[0], all, nall);
		samples_from(&rows[1], rows[1].ns, (size_t)rounds);
		n = 2;
		break;
	case OP_INVCHK:
		rc = mlcp_inval_check(rounds, opt.quick ? 200000 : 2000000, a,
				      b, rows[0].note, sizeof(rows[0].note));
		for (int i = 0; i < rounds; i++)
			rows[0].ns[i] = a[i] - b[i];
		rows[0].nr = rounds;
		rows[0].ops = opt.quick ? 200000 : 2000000;
		samples_from(&rows[0], rows[0].ns, (size_t)rounds);
		break;
	case OP_PROP:
		rounds = MAX_ROUNDS;
		rc = mlcp_propagate(rounds, rows[0].ns, rows[0].note,
				    sizeof(rows[0].note));
		rows[0].nr = rounds;
		rows[0].ops = 1;
		samples_from(&rows[0], rows[0].ns, (size_t)rounds);
		break;
	case OP_BULK:
		rc = mlcp_bulk(c->nkeys, 32, rounds, opt.quick ? 100000 : 400000,
			       rows[1].ns, rows[0].ns, rows[0].note,
			       sizeof(rows[0].note));
		rows[0].nr = rows[1].nr = rounds;
		rows[0].ops = rows[1].ops = opt.quick ? 100000 : 400000;
		samples_from(&rows[0], rows[0].ns, (size_t)rounds);
		samples_from(&rows[1], rows[1].ns, (size_t)rounds);
		n = 2;
		break;
	default:
		break;
	}
	if (rc < 0) {
		strcpy(rows[0].status, "error");
		n = 1;
	}
	for (int i = 0; i < n; i++)
		if (row_ok(&rows[i]))
			row_finish(&rows[i]);
	print_rows(c, rows, n);
	for (int i = 0; i < 2; i++)
		free(rows[i].samp);
	free(all);
}

/* ---- driver ----------------------------------------------------------------- */

/*
 * --keys N: the cases that walk COLD_KEYS keys (l1_hit_cold, the cold L2
 * hits but 16 KiB, set, mix_zipf, l2_2proc, mem_per_item, bulk_cold_32)
 * walk N instead, and miss_load loads fresh keys into a store that already
 * holds N (run_load_into).  bench/scale.sh runs them from 1e3 to 1e7.
 */
static const struct case_def *
case_scaled(const struct case_def *c, struct case_def *tmp, char *what,
	    size_t len)
{
	if (opt.keys == 0 || (c->nkeys != COLD_KEYS && c->op != OP_LOAD))
		return c;
	*tmp = *c;
	tmp->nkeys = opt.keys;
	snprintf(what, len, "%s [--keys %u: %s%u keys]", c->what, opt.keys,
		 c->op == OP_LOAD ? "loads into a store of " : "",
		 opt.keys);
	tmp->what = what;
	return tmp;
}

static void
run_case(const struct case_def *c)
{
	static char what[400];
	struct case_def scaled;
	struct bench_params p = {
		.mode = c->mode, .nkeys = c->nkeys, .vlen = c->vlen,
		.lru_size = MIX_LRU, .tmpdir = tmpdir,
		.server_cpu = opt.server_cpu,
	};
	static struct row rows[MAX_IMPLS];
	struct cpu_snap s0, s1;
	char *val;
	int n;

	c = case_scaled(c, &scaled, what, sizeof(what));
	p.nkeys = c->nkeys;
	if (opt.keys && c->op == OP_LOAD)	/* sized for the pool too */
		p.nkeys += load_pool(c->nkeys);
	if (c->op >= OP_FLIGHT) {
		run_paths(c);
		return;
	}
	if (c->op == OP_NA) {
		struct row r = { .name = "mlc", .im = &impl_mlc };

		printf("\n== %s: %s\nmlc        not yet available\n", c->name,
		       c->what);
		strcpy(r.status, "n/a");
		strcpy(r.note, "not yet available");
		json_row(c, &r, 0);
		return;
	}
	val = malloc(c->vlen ? c->vlen : 1);
	memset(val, 'v', c->vlen ? c->vlen : 1);
	case_others = case_steal = NAN;
	noisy_rounds = 0;
	cpu_snap(&s0);
	n = rows_open(c, rows, &p);
	switch (c->op) {
	case OP_GET:
	case OP_SET:
	case OP_MIX:
		run_steady(c, rows, n, &p, val);
		break;
	case OP_LOAD:
		if (opt.keys) {
			run_load_into(c, rows, n, val);
			break;
		}
		/* fall through */
	case OP_DEL:
		run_churn(c, rows, n, &p, val);
		break;
	case OP_2PROC:
		run_2proc(c, rows, n, &p, val);
		break;
	case OP_MEM:
		run_mem(c, rows, n, val);
		break;
	default:
		break;
	}
	rows_close(rows, n);
	cpu_snap(&s1);
	cpu_diff(&s0, &s1);
	if (c->op != OP_2PROC && c->op != OP_MEM) {
		for (int i = 0; i < n; i++)
			if (row_ok(&rows[i]))
				row_finish(&rows[i]);
		print_rows(c, rows, n);
	} else if (c->op == OP_2PROC) {
		print_2proc(c, rows, n);
	}
	rows_free(rows, n);
	free(val);
}

/* Remove what this process made in /dev/shm and its temporary directory. */
static pid_t owner;

static void
cleanup(void)
{
	char pre[64], path[512];
	struct dirent *d;
	DIR *dir;

	if (getpid() != owner)
		return;		/* forked children leave it to us */
	servers_stop_all();
	if (tmpdir[0] && (dir = opendir(tmpdir)) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			if (d->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir, d->d_name);
			unlink(path);
		}
		closedir(dir);
		rmdir(tmpdir);
	}
	/* Arenas and LMDB environments a crash may have left. */
	snprintf(pre, sizeof(pre), "mlc-bench-%ld-", (long)owner);
	if ((dir = opendir("/dev/shm")) != NULL) {
		while ((d = readdir(dir)) != NULL)
			if (strncmp(d->d_name, pre, strlen(pre)) == 0) {
				snprintf(path, sizeof(path), "/dev/shm/%s",
					 d->d_name);
				unlink(path);
			}
		closedir(dir);
	}
}

static void
on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: mlc-bench [--list] [--case PAT[,PAT]] [--impl NAME[,NAME]]\n"
"                 [--rounds N] [--ops N] [--round-ms MS] [--warm-ms MS]\n"
"                 [--quick] [--seed S] [--cpu N] [--server-cpu N|-1]\n"
"                 [--keys N] [--quiet-ms MS] [--json FILE]\n"
"PAT is a shell pattern (l2_hit_*); --ops fixes the operations per round\n"
"(default: about --round-ms of work, estimated during the warm-up).\n"
"--keys N (1e3..2e8): the 100000-key cases walk N keys, and miss_load\n"
"loads into a store that already holds N keys.  --quiet-ms: how long the\n"
"whole run may wait for a quiet machine before rounds (200000; --quick\n"
"5000; 0: never wait).\n");
}

static void
list_cases(void)
{
	for (size_t i = 0; i < NCASES; i++)
		printf("%-16s %s\n", cases[i].name, cases[i].what);
	printf("\nimplementations:");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %s%s", impls[i].name, impls[i].im ? "" : "(not built)");
	putchar('\n');
}

static const char *
need_arg(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		usage(stderr);
		exit(2);
	}
	return argv[++*i];
}

int
main(int argc, char **argv)
{
	size_t ran = 0;
	bool server_cpu_set = false;
	int quiet_ms = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--list") == 0) {
			list_cases();
			return 0;
		} else if (strcmp(a, "--case") == 0) {
			opt.cases = need_arg(argc, argv, &i);
		} else if (strcmp(a, "--impl") == 0) {
			opt.impls = need_arg(argc, argv, &i);
		} else if (strcmp(a, "--rounds") == 0) {
			opt.rounds = atoi(need_arg(argc, argv, &i));
		} else if (strcmp(a, "--ops") == 0) {
			opt.ops = strtoull(need_arg(argc, argv, &i), NULL, 10);
		} else if (strcmp(a, "--round-ms") == 0) {
			opt.round_ms = atof(need_arg(argc, argv, &i));
		} else if (strcmp(a, "--warm-ms") == 0) {
			opt.warm_ms = atof(need_arg(argc, argv, &i));
		} else if (strcmp(a, "--keys") == 0) {
			/* 1e6 or 1000000 */
			double k = atof(need_arg(argc, argv, &i));

			if (k < 1000 || k > 2e8) {
				fprintf(stderr, "--keys must be 1000..2e8\n");
				return 2;
			}
			opt.keys = (uint32_t)k;
		} else if (strcmp(a, "--quiet-ms") == 0) {
			quiet_ms = atoi(need_arg(argc, argv, &i));
		} else if (strcmp(a, "--seed") == 0) {
			opt.seed = strtoull(need_arg(argc, argv, &i), NULL, 0);
		} else if (strcmp(a, "--cpu") == 0) {
			opt.cpu = atoi(need_arg(argc, argv, &i));
		} else if (strcmp(a, "--server-cpu") == 0) {
			opt.server_cpu = atoi(need_arg(argc, argv, &i));
			server_cpu_set = true;
		} else if (strcmp(a, "--quick") == 0) {
			opt.quick = true;
			opt.rounds = 3;
			opt.round_ms = 40;
			opt.warm_ms = 20;
			quiet_total_ms = 5000;
		} else if (strcmp(a, "--json") == 0) {
			const char *f = need_arg(argc, argv, &i);

			opt.json = fopen(f, "a");
			if (opt.json == NULL) {
				perror(f);
				return 1;
			}
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (quiet_ms >= 0)	/* after --quick, whatever the order */
		quiet_total_ms = quiet_ms;
	if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS) {
		fprintf(stderr, "--rounds must be 1..%d\n", MAX_ROUNDS);
		return 2;
	}
	opt.ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (opt.cpu < 0)
		opt.cpu = opt.ncpu - 1;
	/* Servers are not pinned by default: on a 2-vCPU VM a round trip to
	 * a server pinned to the other CPU costs about 4x one the scheduler
	 * places itself (cross-CPU wake-ups), and the peers get their better
	 * case.  --server-cpu N pins them. */
	if (!server_cpu_set)
		opt.server_cpu = -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mlc-bench-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	owner = getpid();
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	pin(opt.cpu);
	calibrate();
	printf("mlc-bench: mlc %s, CPU %d (servers on CPU %d, -1: any), "
	       "%d rounds, "
	       "%s, seed %llu, tsc %.3f GHz, timer overhead %.0f ticks\n",
	       mlc_version_string(), opt.cpu, opt.server_cpu, opt.rounds,
	       opt.ops ? "fixed ops" : "ops from warm-up", 
	       (unsigned long long)opt.seed, ticks_per_ns, tick_overhead);
	for (size_t i = 0; i < NCASES; i++) {
		if (opt.cases != NULL && !listed(opt.cases, cases[i].name))
			continue;
		run_case(&cases[i]);
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "no case matches '%s' (see --list)\n",
			opt.cases);
		return 2;
	}
	if (opt.json)
		fclose(opt.json);
	return 0;
}
