/*
 * SIGKILL fault injection with real processes.  Each scenario kills a
 * process at a random moment of one kind of work, many times, while other
 * processes (the survivors) keep using the arena:
 *
 *   writer     children doing mlc_set/mlc_delete in a tight loop, killed
 *              0-5 ms after they start: inside index updates, the
 *              allocator, the log
 *   flight     a loader holding a flight slot (sleeping in its loader, or
 *              anywhere in its mlc_get): a waiter must take the load over
 *              long before the 30 s lease, in well under 10 s
 *   log        a publisher between claiming a log cell and publishing it
 *              (simulated exactly: fetch-and-add on the head, cell marked
 *              WRITING, then death), and real publishers killed at random:
 *              readers must drop their L1 after MLC__LOG_STUCK_MS
 *   create     creators racing mlc_arena_open(CREATE) on a fresh name,
 *              killed at random: an open with CREATE then succeeds, the
 *              arena works, and no temporary file of a live process is left
 *   alloc      sets of varying sizes on a nearly full small arena, killed
 *              at random inside the allocator (page moves, CLOCK sweeps)
 *   index      writers on an index smaller than their keys, killed at
 *              random: inside cuckoo moves (an entry copied to its other
 *              bucket, then unlinked from the first) and index evictions;
 *              500 of its 4000 keys checked in turn after each kill, all
 *              of them at the end
 *   chained    writers of chained values (7-56 KiB, above a ninth of the
 *              64 KiB pages: a head and pieces of a smaller class) and
 *              some small ones, sets and deletes, on a small arena kept
 *              full, killed at random: while they take pieces, free or
 *              evict chains, or move pages; every key checked after each
 *              kill, 16 of them written again; at the end, with nobody
 *              running, the arena must check clean (mlc_arena_check())
 *              and every chunk still ALLOC be a dead writer's
 *
 * What is checked after every kill: no survivor hangs (every child and
 * every post-kill check runs under alarm()), no value read is wrong (values
 * check themselves: key id, version, body, checksum), and memory comes back
 * (after the trials the arena is filled again and every set must succeed:
 * chunks that killed writers left allocated come back only by proof of
 * their death, since age proves nothing).  Whether a kill landed
 * inside a locked section is up to chance, so the repair and orphan
 * counters are printed, not asserted.
 *
 * MLC_FAULT_TRIALS=N runs N trials per scenario (default: 100 to 1200
 * each, about 35 s in all in the debug build; a third of that under
 * ThreadSanitizer, which sees nothing across processes, so what these
 * kills test is the plain and ASan+UBSan stages' to count);
 * MLC_FAULT_SEED=S replays a run.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "checkval.h"
#include "log.h"		/* MLC__LOG_STUCK_MS; the log, to simulate */

#define NSLOTS 8		/* survivors and victims per scenario */
#define CHILD_ALARM 20		/* a child stuck this long dies (refreshed) */
#define CHECK_ALARM 60		/* one post-kill check of the parent */
#define KILL_MAX_US 5000	/* kills land 0-5 ms after the start */

/* ---- shared state: children report here, never through cmocka -------- */

struct shared {
	volatile int stop;		/* survivors: finish and exit */
	volatile int vstop;		/* victims (MLC_FAULT_NOKILL only) */
	volatile int ready;		/* a victim reached its point */
	volatile int ready_pid;
	uint64_t ops[NSLOTS];
	uint64_t bad[NSLOTS];		/* wrong values or wrong codes */
	uint64_t nospace[NSLOTS];	/* -ENOSPC (allowed where noted) */
	uint64_t elapsed_ms[NSLOTS];
	char msg[NSLOTS][192];		/* the first failure of each slot */
};

static struct shared *sh;
static uint64_t seed;
static const char *where = "";	/* what the parent is doing (for alarms) */

static char cur_name[96];	/* the arena a scenario uses, for cleanup */
static bool keep_arena;		/* MLC_FAULT_KEEP */

static void
on_alarm(int sig)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "\nfaults: HANG: %s did not finish in time\n", where);

	(void)sig;
	if (n > 0 && write(2, buf, (size_t)n) < 0)
		_exit(98);
	if (!keep_arena && cur_name[0])	/* _exit() skips cleanup_name() */
		t_shm_unlink_signal(cur_name);
	_exit(99);
}

static void
guard(const char *what, unsigned secs)
{
	where = what;
	alarm(secs);
}

static void
unguard(void)
{
	alarm(0);
	where = "";
}

static void
note_bad(int slot, const char *fmt, ...)
{
	va_list ap;

	if (slot < 0 || slot >= NSLOTS)	/* a victim's (-1): the checks' */
		slot = NSLOTS - 1;
	if (__atomic_fetch_add(&sh->bad[slot], 1, __ATOMIC_RELAXED) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(sh->msg[slot], sizeof(sh->msg[slot]), fmt, ap);
	va_end(ap);
}

static void
shared_reset(void)
{
	memset(sh, 0, sizeof(*sh));
}

/* The first failure any child reported, or NULL. */
static const char *
shared_failure(uint64_t *total)
{
	const char *first = NULL;

	*total = 0;
	for (int i = 0; i < NSLOTS; i++) {
		*total += sh->bad[i];
		if (sh->bad[i] && first == NULL)
			first = sh->msg[i];
	}
	return first;
}

static unsigned
trials(unsigned def)
{
	const char *e = getenv("MLC_FAULT_TRIALS");
	const char *san = getenv("MLC_SANITIZED");
	long n = e ? strtol(e, NULL, 10) : 0;

	if (n > 0)
		return (unsigned)n;
	if (san != NULL && strstr(san, "thread") != NULL)
		return def / 3 > 0 ? def / 3 : 1;
	return def;
}

/* ---- randomness: xorshift per process, seeded from the run's seed ----- */

static __thread uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = cv_mix(s) | 1;
}

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t
rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* A size between lo and hi, about log-uniform: a random power of two
 * (between lo's and hi's), then uniform below the next one. */
static size_t
rnd_size(size_t lo, size_t hi)
{
	int b0 = 63 - __builtin_clzll(lo), b1 = 63 - __builtin_clzll(hi);
	int b = b0 + (int)rnd_below((uint32_t)(b1 - b0 + 1));
	size_t n = ((size_t)1 << b) + (size_t)(rnd() % ((size_t)1 << b));

	return n < lo ? lo : n > hi ? hi : n;
}

/* ---- processes ---------------------------------------------------------- */

struct child {
	int (*fn)(void *);
	void *arg;
};

/* Fork a child that dies with the parent and cannot hang for ever. */
static pid_t
spawn(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(97);
		signal(SIGALRM, SIG_DFL);
		alarm(CHILD_ALARM);
		rng_seed(seed ^ (uint64_t)getpid() << 20 ^ rnd());
		_exit(fn(arg));
	}
	rnd();			/* the next child gets another stream */
	return pid;
}

/* Reap @p pid: its exit status, or 128 + the signal that killed it. */
static int
reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 255;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void
sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000),
			       (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Kill @p pid after 0..max_us µs; true if SIGKILL is what ended it. */
static bool
kill_after(pid_t pid, uint32_t max_us)
{
	if (getenv("MLC_FAULT_NOKILL") != NULL) {	/* diagnosis: no kill */
		sleep_us(rnd_below(max_us + 1));
		sh->vstop = 1;
		reap(pid);
		sh->vstop = 0;
		return false;
	}
	sleep_us(rnd_below(max_us + 1));
	kill(pid, SIGKILL);
	return reap(pid) == 128 + SIGKILL;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- arenas -------------------------------------------------------------- */


static void
cleanup_name(void)
{
	if (cur_name[0] && getenv("MLC_FAULT_KEEP") != NULL) {
		fprintf(stderr, "faults: kept the arena %s\n", cur_name);
		return;
	}
	if (cur_name[0])
		mlc_arena_unlink(cur_name, 0);
}

static const char *
fresh_name(void)
{
	static unsigned n;
	uint32_t r = (uint32_t)rnd();

	snprintf(cur_name, sizeof(cur_name), "mlc-f-%ld-%u-%08x",
		 (long)getpid(), n++, r);
	return cur_name;
}

static uint32_t arena_max_items;	/* for the next arena_new() only */

static struct mlc_arena *
arena_new(uint64_t bytes, uint32_t log_cells)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	int rc;

	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = bytes;
	o.page_size = 64 << 10;
	o.log_cells = log_cells ? log_cells : 4096;
	o.flight_slots = 256;
	o.max_items = arena_max_items;
	arena_max_items = 0;
	rc = mlc_arena_open(&a, fresh_name(), &o);
	if (rc != 0)
		fail_msg("mlc_arena_open(%s): %s", cur_name, mlc_strerror(rc));
	return a;
}

static void
arena_done(struct mlc_arena *a)
{
	mlc_arena_close(a);
	mlc_arena_unlink(cur_name, 0);
	cur_name[0] = '\0';
}

static struct mlc_cache *
cache_new(struct mlc_arena *a, uint32_t flags)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;

	o.flags = flags;
	o.ttl_ms = MLC_TTL_NEVER;
	if (mlc_cache_open(&c, a, "faults", &o) != 0)
		return NULL;
	return c;
}

static void
info_print(const char *scenario, struct mlc_arena *a,
	   const struct mlc_arena_info *before)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;

	mlc_arena_info(a, &in);
	printf("faults %s: arena: repairs %" PRIu64 ", orphans_reclaimed %"
	       PRIu64 ", evictions %" PRIu64 ", page_moves %" PRIu64
	       ", write_failures %" PRIu64 ", items %" PRIu64 ", pages_free %"
	       PRIu64 "/%" PRIu64 "\n", scenario,
	       in.repairs - before->repairs,
	       in.orphans_reclaimed - before->orphans_reclaimed,
	       in.evictions - before->evictions,
	       in.page_moves - before->page_moves,
	       in.write_failures - before->write_failures, in.items,
	       in.pages_free, in.pages);
}

static size_t
key_of(char *buf, size_t cap, const char *pfx, uint32_t kid)
{
	return (size_t)snprintf(buf, cap, "%s-%" PRIu32, pfx, kid);
}

/* Check one read of key @p kid; 0 if good. */
static int
check_read(int slot, const char *what, int rc, const struct mlc_value *v,
	   uint32_t kid, bool absent_ok)
{
	int bad;

	if (rc == -ENOENT && absent_ok)
		return 0;
	if (rc != 0) {
		note_bad(slot, "%s key %u: %s", what, kid, mlc_strerror(rc));
		return -1;
	}
	if (v->flags & MLC_NEGATIVE) {
		note_bad(slot, "%s key %u: a negative entry nobody stored",
			 what, kid);
		return -1;
	}
	bad = cv_check(v->data, v->len, kid, NULL);
	if (bad != CV_OK) {
		note_bad(slot, "%s key %u: %s (len %zu, level %u)", what, kid,
			 cv_what(bad), v->len, v->level);
		return -1;
	}
	return 0;
}

/* ---- a generic workload, for victims and survivors --------------------- */

struct work {
	struct mlc_arena *a;
	const char *pfx;	/* key prefix */
	uint32_t nkeys;
	size_t vmin, vmax;
	int slot;		/* shared counters; -1: a victim, no checks */
	bool check_reads;	/* survivors read and verify as well */
	bool nospace_ok;	/* -ENOSPC is a legal answer (small arenas) */
	uint32_t del_pct;	/* deletes, % of writes */
};

/* Large sets for the work of the children forked next (the chained
 * scenario only): pct % of them take min..max bytes instead. */
static struct {
	uint32_t pct;
	size_t min, max;
} large;

/* The length of the next set of work @p w. */
static size_t
work_len(const struct work *w)
{
	if (large.pct && rnd_below(100) < large.pct)
		return rnd_size(large.min, large.max);
	return rnd_size(w->vmin, w->vmax);
}

static int
loader_cv(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	uint32_t kid = (uint32_t)(uintptr_t)arg;
	static unsigned char buf[256];

	(void)key;
	(void)key_len;
	cv_make(buf, 64, kid, 0);
	out->data = buf;
	out->len = 64;
	return MLC_LOAD_VALUE;
}

static int
work_loop(void *arg)
{
	const struct work *w = arg;
	struct mlc_cache *c = cache_new(w->a, 0);
	unsigned char *buf = malloc(MLC_MAX(w->vmax, large.max));
	char key[64];

	if (c == NULL || buf == NULL)
		return 2;
	for (uint32_t seq = 1; w->slot < 0 ? !sh->vstop : !sh->stop; seq++) {
		uint32_t kid = rnd_below(w->nkeys), op = rnd_below(100);
		size_t klen = key_of(key, sizeof(key), w->pfx, kid);
		struct mlc_value v = { 0 };
		int rc;

		if (w->slot >= 0 && (seq & 255) == 0) {
			alarm(CHILD_ALARM);
			sh->ops[w->slot] += 256;
		}
		if (w->check_reads && op < 40) {
			if (op < 15) {
				rc = mlc_get(c, key, klen, loader_cv,
					     (void *)(uintptr_t)kid, &v);
				check_read(w->slot, "get+loader", rc, &v, kid,
					   false);
			} else if (op < 30) {
				rc = mlc_get(c, key, klen, NULL, NULL, &v);
				check_read(w->slot, "get", rc, &v, kid, true);
			} else {
				rc = mlc_peek(c, key, klen, MLC_CALL_STALE_OK,
					      &v);
				check_read(w->slot, "peek", rc, &v, kid, true);
			}
			mlc_value_release(&v);
			continue;
		}
		if (rnd_below(100) < w->del_pct) {
			rc = mlc_delete(c, key, klen);
		} else {
			size_t len = work_len(w);

			cv_make(buf, len, kid, seq);
			rc = mlc_set(c, key, klen, buf, len, NULL);
			if (rc == -ENOSPC && w->nospace_ok) {
				if (w->slot >= 0)
					sh->nospace[w->slot]++;
				rc = 0;
			}
		}
		if (rc != 0 && w->slot >= 0)
			note_bad(w->slot, "write key %u: %s", kid,
				 mlc_strerror(rc));
	}
	mlc_cache_close(c);
	free(buf);
	return 0;
}

static pid_t
survivor_start(struct work *w)
{
	return spawn(work_loop, w);
}

/* Stop the survivors and assert they were fine. */
static void
survivors_stop(const pid_t *pids, int n, const char *scenario)
{
	uint64_t total, ops = 0;
	const char *first;

	sh->stop = 1;
	guard("waiting for the survivors", CHECK_ALARM);
	for (int i = 0; i < n; i++) {
		int st = reap(pids[i]);

		if (st != 0)
			fail_msg("%s: survivor %d ended with status %d%s",
				 scenario, i, st,
				 st == 128 + SIGALRM ? " (hung: alarm)" : "");
	}
	unguard();
	for (int i = 0; i < NSLOTS; i++)
		ops += sh->ops[i];
	first = shared_failure(&total);
	printf("faults %s: survivors: %" PRIu64 " ops, %" PRIu64
	       " failures\n", scenario, ops, total);
	if (total != 0)
		fail_msg("%s: %" PRIu64 " failures; first: %s", scenario, total,
			 first);
}

/* ---- after the trials: is the memory back? ------------------------------ */

struct fill {
	struct mlc_arena *a;
	const char *pfx;
	uint64_t bytes;		/* write this much in all */
	size_t vmin, vmax;
	uint32_t nkeys;
};

/* In a child: write @p bytes of values (more than the arena holds, so
 * eviction must work) and fail on any refused set. */
static int
fill_child(void *arg)
{
	const struct fill *f = arg;
	struct mlc_cache *c = cache_new(f->a, MLC_CACHE_NO_L1);
	unsigned char *buf = malloc(f->vmax);
	uint64_t written = 0;
	uint32_t kid = 0;
	char key[64];

	if (c == NULL || buf == NULL)
		return 2;
	alarm(120);
	while (written < f->bytes) {
		size_t len = rnd_size(f->vmin, f->vmax);
		uint32_t id = kid++ % f->nkeys;
		size_t klen = key_of(key, sizeof(key), f->pfx, id);
		int rc;

		cv_make(buf, len, id, 1);
		rc = mlc_set(c, key, klen, buf, len, NULL);
		if (rc != 0) {
			note_bad(0, "fill: set of %zu bytes after %" PRIu64
				 " bytes: %s", len, written, mlc_strerror(rc));
			return 1;
		}
		written += len;
	}
	mlc_cache_close(c);
	free(buf);
	return 0;
}

/* Call @p fn on every chunk of every page a class owns (page @p p, class
 * index @p ci, chunk @p k of @p size bytes).  Reads the arena only. */
static void
each_chunk(struct mlc_arena *a,
	   void (*fn)(const struct mlc__item *it, uint32_t p, uint32_t ci,
		      uint32_t k, uint32_t size, void *ctx), void *ctx)
{
	for (uint32_t p = 0; p < a->npages; p++) {
		uint32_t ci = __atomic_load_n(&a->pages[p].pg_class,
					      __ATOMIC_RELAXED);
		uint32_t size, per;

		if (ci == 0 || ci > a->nclasses)
			continue;
		size = a->class_size[ci - 1];
		per = a->page_size / size;
		for (uint32_t k = 0; k < per; k++)
			fn((const void *)(a->base + a->pages_off +
					  ((uint64_t)p << a->page_shift) +
					  (uint64_t)k * size),
			   p, ci - 1, k, size, ctx);
	}
}

struct audit {
	uint64_t now, odd;
};

static void
audit_chunk(const struct mlc__item *it, uint32_t p, uint32_t ci, uint32_t k,
	    uint32_t size, void *ctx)
{
	struct audit *au = ctx;
	uint32_t w = it->it_state, st = w & 0xff;
	bool bad = st != MLC__FREE && st != MLC__ALLOC && st != MLC__LIVE &&
		   st != MLC__PIECE;

	/* An ALLOC word carries no item flags or CLOCK bits: only the
	 * probation and chain marks its allocator may add. */
	if (st == MLC__ALLOC &&
	    ((w & 0xffff00 & ~(MLC__ST_SMALL | MLC__ST_CHAIN)) != 0 ||
	     it->it_start > au->now + 1000))
		bad = true;
	if (bad && au->odd++ < 8)
		printf("faults audit: page %u (class %u, %u-byte chunks) chunk "
		       "%u: state word %08x, stamp %" PRIu64 " (now %" PRIu64
		       ")\n", p, ci, size, k, w, it->it_start, au->now);
}

/* After a fill failed: chunks in states no writer can leave (a state
 * byte that is none of FREE/ALLOC/LIVE/PIECE, an ALLOC word with item
 * flags or CLOCK bits, or an allocation stamp in the future). */
static void
alloc_audit(struct mlc_arena *a)
{
	struct audit au = { mlc__now_ms(), 0 };

	each_chunk(a, audit_chunk, &au);
	printf("faults audit: %" PRIu64 " chunks in states no writer leaves"
	       "\n", au.odd);
}

struct left {
	uint64_t n, undead;
};

static void
left_chunk(const struct mlc__item *it, uint32_t p, uint32_t ci, uint32_t k,
	   uint32_t size, void *ctx)
{
	struct left *l = ctx;

	if ((it->it_state & 0xff) != MLC__ALLOC)
		return;
	l->n++;
	if (mlc__proc_dead(it->it_pid, it->it_start, it->it_pidns))
		return;
	if (l->undead++ < 8)
		printf("faults: page %u (class %u, %u-byte chunks) chunk %u: "
		       "ALLOC, state word %08x, writer %u not proven dead\n",
		       p, ci, size, k, it->it_state, it->it_pid);
}

/* With nobody running: the ALLOC chunks left (a dead writer's, each the
 * sweep's once its hand passes), and in *@p undead how many of them have
 * a writer that is not proven dead: chunks that never come back. */
static uint64_t
alloc_left(struct mlc_arena *a, uint64_t *undead)
{
	struct left l = { 0, 0 };

	each_chunk(a, left_chunk, &l);
	*undead = l.undead;
	return l.n;
}

static void
fill_again(struct fill *f, const char *scenario)
{
	uint64_t total;
	int st;

	shared_reset();
	guard("the fill after the trials", 150);
	st = reap(spawn(fill_child, f));
	unguard();
	if (st != 0)
		alloc_audit(f->a);
	if (st != 0)
		fail_msg("%s: fill after the trials: status %d: %s", scenario,
			 st, shared_failure(&total) ? sh->msg[0] : "");
	printf("faults %s: fill after the trials: %" PRIu64
	       " bytes set, all succeeded\n", scenario, f->bytes);
}

/* ==== (a) writers killed inside index updates ============================ */

#define A_KEYS 512
#define A_VMAX 600

/* After a kill: key (@p pfx, @p kid) reads as absent or as a good value. */
static void
check_peek(struct mlc_cache *c, const char *pfx, uint32_t kid)
{
	char key[64];
	size_t klen = key_of(key, sizeof(key), pfx, kid);
	struct mlc_value v = { 0 };
	int rc = mlc_peek(c, key, klen, MLC_CALL_STALE_OK, &v);

	if (check_read(NSLOTS - 1, "check peek", rc, &v, kid, true))
		fail_msg("after a kill: %s", sh->msg[NSLOTS - 1]);
	mlc_value_release(&v);
}

/* After a kill: key (@p pfx, @p kid) can be written (@p len bytes, in
 * @p buf): any lock the victim held gets repaired.  -ENOSPC is counted
 * in *@p nospace if @p nospace_ok. */
static void
check_set(struct mlc_cache *c, const char *pfx, uint32_t kid,
	  unsigned char *buf, size_t len, bool nospace_ok, uint64_t *nospace)
{
	char key[64];
	size_t klen = key_of(key, sizeof(key), pfx, kid);
	int rc;

	cv_make(buf, len, kid, 0x7fffffff);
	rc = mlc_set(c, key, klen, buf, len, NULL);
	if (rc == -ENOSPC && nospace_ok)
		(*nospace)++;
	else if (rc != 0)
		fail_msg("after a kill: set key %u (%zu bytes): %s", kid, len,
			 mlc_strerror(rc));
}

/* After a kill: keys @p from .. @p to - 1 read as absent or as a good
 * value, and can be written (any lock the victim held gets repaired). */
static void
check_key_range(struct mlc_cache *c, const char *pfx, uint32_t from,
		uint32_t to, size_t vmax, bool nospace_ok, uint64_t *nospace)
{
	unsigned char buf[1024];

	for (uint32_t kid = from; kid < to; kid++) {
		check_peek(c, pfx, kid);
		check_set(c, pfx, kid, buf, rnd_size(CV_MIN, vmax < sizeof(buf) ?
						     vmax : sizeof(buf)),
			  nospace_ok, nospace);
	}
}

/* After a kill: every key (check_key_range()). */
static void
check_all_keys(struct mlc_cache *c, const char *pfx, uint32_t nkeys,
	       size_t vmax, bool nospace_ok, uint64_t *nospace)
{
	check_key_range(c, pfx, 0, nkeys, vmax, nospace_ok, nospace);
}

static void
test_writer_kills(void **state)
{
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct work surv[2], victim;
	pid_t pids[2];
	unsigned n = trials(800), killed = 0;
	uint64_t nospace = 0;

	(void)state;
	shared_reset();
	a = arena_new(8 << 20, 0);
	c = cache_new(a, MLC_CACHE_NO_L1);
	assert_non_null(c);
	mlc_arena_info(a, &before);
	for (int i = 0; i < 2; i++) {
		surv[i] = (struct work){ a, "w", A_KEYS, CV_MIN, A_VMAX, i,
					 true, false, 25 };
		pids[i] = survivor_start(&surv[i]);
	}
	victim = (struct work){ a, "w", A_KEYS, CV_MIN, A_VMAX, -1, false,
				false, 30 };
	for (unsigned t = 0; t < n; t++) {
		pid_t v = spawn(work_loop, &victim);

		killed += kill_after(v, KILL_MAX_US);
		guard("the check after a writer's death", CHECK_ALARM);
		check_all_keys(c, "w", A_KEYS, A_VMAX, false, &nospace);
		unguard();
	}
	survivors_stop(pids, 2, "writer");
	printf("faults writer: %u trials, %u killed by SIGKILL\n", n, killed);
	info_print("writer", a, &before);
	fill_again(&(struct fill){ a, "wfill", (uint64_t)16 << 20, 1024,
				   8192, 1u << 20 }, "writer");
	guard("the last check", CHECK_ALARM);
	check_all_keys(c, "w", A_KEYS, A_VMAX, false, &nospace);
	unguard();
	info_print("writer (after the fill)", a, &before);
	mlc_cache_close(c);
	arena_done(a);
}

/* ==== (a2) writers killed inside index moves ============================ */

#define I_KEYS 4000		/* for 1792 index slots */
#define I_VMAX 200
#define I_CHECK 500		/* keys checked after each kill, in turn */

static void
test_index_kills(void **state)
{
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	struct mlc_arena_info after = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct work surv[2], victim;
	pid_t pids[2];
	unsigned n = trials(400), killed = 0;
	uint64_t nospace = 0;

	(void)state;
	shared_reset();
	arena_max_items = 1024;
	a = arena_new(8 << 20, 0);
	c = cache_new(a, MLC_CACHE_NO_L1);
	assert_non_null(c);
	mlc_arena_info(a, &before);
	for (int i = 0; i < 2; i++) {
		surv[i] = (struct work){ a, "x", I_KEYS, CV_MIN, I_VMAX, i,
					 true, false, 25 };
		pids[i] = survivor_start(&surv[i]);
	}
	victim = (struct work){ a, "x", I_KEYS, CV_MIN, I_VMAX, -1, false,
				false, 30 };
	for (unsigned t = 0; t < n; t++) {
		pid_t v = spawn(work_loop, &victim);
		uint32_t from = t * I_CHECK % I_KEYS;

		killed += kill_after(v, KILL_MAX_US);
		guard("the check after an index writer's death", CHECK_ALARM);
		/* A slice of the keys in turn, all of them at the end: a
		 * check of 4000 keys after every kill made this scenario
		 * 3 minutes long under random delays. */
		check_key_range(c, "x", from, MLC_MIN(from + I_CHECK, I_KEYS),
				I_VMAX, false, &nospace);
		unguard();
	}
	survivors_stop(pids, 2, "index");
	printf("faults index: %u trials, %u killed by SIGKILL\n", n, killed);
	info_print("index", a, &before);
	mlc_arena_info(a, &after);
	assert_true(after.index_moves > before.index_moves);
	assert_true(after.index_evictions > before.index_evictions);
	guard("the last check", CHECK_ALARM);
	check_all_keys(c, "x", I_KEYS, I_VMAX, false, &nospace);
	unguard();
	mlc_cache_close(c);
	arena_done(a);
}

/* ==== (b) a loader killed while it holds a flight slot ================== */

#define LEASE_MS 30000
#define TAKEOVER_MAX_MS 10000

struct flight_ctx {
	struct mlc_arena *a;
	char key[64];
	uint32_t kid;
	int slot;
};

static struct mlc_cache *
flight_cache(struct mlc_arena *a)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;

	o.ttl_ms = MLC_TTL_NEVER;
	o.lock_lease_ms = LEASE_MS;
	o.lock_timeout_ms = 25000;	/* wait: never give up before 10 s */
	o.lock_policy = MLC_LOCK_ERROR;
	if (mlc_cache_open(&c, a, "faults", &o) != 0)
		return NULL;
	return c;
}

static int
loader_sleepy(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	(void)arg;
	(void)key;
	(void)key_len;
	(void)out;
	sh->ready_pid = getpid();
	__atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!sh->stop)
		pause();		/* until SIGKILL */
	return -EINTR;
}

static int
loader_good(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	const struct flight_ctx *x = arg;
	static unsigned char buf[128];

	(void)key;
	(void)key_len;
	cv_make(buf, sizeof(buf), x->kid, 2);
	out->data = buf;
	out->len = sizeof(buf);
	return MLC_LOAD_VALUE;
}

static int
flight_victim(void *arg)
{
	struct flight_ctx *x = arg;
	struct mlc_cache *c = flight_cache(x->a);
	struct mlc_value v = { 0 };

	if (c == NULL)
		return 2;
	mlc_get(c, x->key, strlen(x->key), loader_sleepy, x, &v);
	return 3;			/* never: the loader does not return */
}

static int
flight_waiter(void *arg)
{
	struct flight_ctx *x = arg;
	struct mlc_cache *c = flight_cache(x->a);
	struct mlc_value v = { 0 };
	uint64_t t0 = now_ms();
	int rc;

	if (c == NULL)
		return 2;
	rc = mlc_get(c, x->key, strlen(x->key), loader_good, x, &v);
	sh->elapsed_ms[x->slot] = now_ms() - t0;
	if (check_read(x->slot, "waiter get", rc, &v, x->kid, false))
		return 1;
	if (sh->elapsed_ms[x->slot] >= TAKEOVER_MAX_MS) {
		note_bad(x->slot, "waiter took %" PRIu64 " ms (lease %u ms)",
			 sh->elapsed_ms[x->slot], LEASE_MS);
		return 1;
	}
	mlc_value_release(&v);
	mlc_cache_close(c);
	return 0;
}

static void
test_flight_kills(void **state)
{
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a = arena_new(8 << 20, 0);
	struct mlc_cache *c = flight_cache(a);
	unsigned n = trials(100), in_loader = 0, waits = 0;
	uint64_t worst = 0, sum = 0;

	(void)state;
	assert_non_null(c);
	mlc_arena_info(a, &before);
	for (unsigned t = 0; t < n; t++) {
		struct flight_ctx x[3];
		int mode = (int)(t % 3), nw = mode == 2 ? 2 : 1;
		struct mlc_value v = { 0 };
		pid_t victim, w[2];
		uint64_t total;

		shared_reset();
		for (int i = 0; i < 3; i++) {
			x[i] = (struct flight_ctx){ a, "", t, i };
			snprintf(x[i].key, sizeof(x[i].key), "fl-%u", t);
		}
		victim = spawn(flight_victim, &x[0]);
		if (mode != 1) {
			/* Kill it in its loader, waiters lined up or not. */
			guard("a victim reaching its loader", CHECK_ALARM);
			while (!__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST))
				sleep_us(200);
			unguard();
			in_loader++;
		}
		for (int i = 0; i < nw; i++)
			w[i] = spawn(flight_waiter, &x[1 + i]);
		/* mode 1: anywhere in its mlc_get, even before the claim */
		kill_after(victim, KILL_MAX_US);
		guard("the waiters of a dead loader", CHECK_ALARM);
		for (int i = 0; i < nw; i++) {
			int st = reap(w[i]);

			if (st != 0)
				fail_msg("trial %u (mode %d): waiter status "
					 "%d: %s", t, mode, st,
					 shared_failure(&total) ?
					 shared_failure(&total) : "");
			worst = MLC_MAX(worst, sh->elapsed_ms[1 + i]);
			sum += sh->elapsed_ms[1 + i];
			waits++;
		}
		/* The new loader's value is in L2 for everyone. */
		assert_int_equal(mlc_peek(c, x[0].key, strlen(x[0].key), 0,
					  &v), 0);
		assert_int_equal(cv_check(v.data, v.len, t, NULL), CV_OK);
		mlc_value_release(&v);
		unguard();
	}
	printf("faults flight: %u trials (%u killed inside the loader), "
	       "takeover: worst %" PRIu64 " ms, mean %" PRIu64
	       " ms (lease %u ms)\n", n, in_loader, worst,
	       waits ? sum / waits : 0, LEASE_MS);
	info_print("flight", a, &before);
	mlc_cache_close(c);
	arena_done(a);
}

/* ==== (c) a log publisher killed between claim and publish ============== */

#define WRITING_BIT (UINT64_C(1) << 63)

/* What mlc__log_claim() does, then death: a claimed
 * cell that will never be published. */
static int
claim_and_die(void *arg)
{
	struct mlc_arena *a = arg;
	uint64_t mask = a->hdr->ah_log_cells - 1;
	uint64_t s = __atomic_fetch_add(&a->log->lg_head, 1, __ATOMIC_SEQ_CST);
	struct mlc__log_cell *cell = &a->cells[s & mask];
	uint64_t v = __atomic_load_n(&cell->lc_seq, __ATOMIC_SEQ_CST);

	while (v >> 63 == 0 && (v & ~WRITING_BIT) < s + 1 &&
	       !__atomic_compare_exchange_n(&cell->lc_seq, &v,
					    (s + 1) | WRITING_BIT, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	if (rnd_below(2))
		_exit(0);		/* dies at once */
	__atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();		/* or waits for SIGKILL */
}

static void
set_kid(struct mlc_cache *c, const char *key, uint32_t kid, uint32_t ver)
{
	unsigned char buf[96];
	int rc;

	cv_make(buf, sizeof(buf), kid, ver);
	rc = mlc_set(c, key, strlen(key), buf, sizeof(buf), NULL);
	if (rc != 0)
		fail_msg("set %s: %s", key, mlc_strerror(rc));
}

static uint32_t
get_ver(struct mlc_cache *c, const char *key, uint32_t kid, uint32_t *level)
{
	struct mlc_value v = { 0 };
	uint32_t ver = 0;
	int rc = mlc_get(c, key, strlen(key), NULL, NULL, &v);

	if (rc != 0)
		fail_msg("get %s: %s", key, mlc_strerror(rc));
	if (cv_check(v.data, v.len, kid, &ver) != CV_OK)
		fail_msg("get %s: %s", key,
			 cv_what(cv_check(v.data, v.len, kid, NULL)));
	*level = v.level;
	mlc_value_release(&v);
	return ver;
}

static void
test_log_kills(void **state)
{
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	/* A log long enough that the reader is not lapped between its
	 * reads: stuck cells, not overruns, are under test. */
	struct mlc_arena *a = arena_new(8 << 20, 65536);
	struct mlc_cache *r = cache_new(a, 0);	/* the reader, with L1 */
	struct mlc_cache *w = cache_new(a, 0);	/* another handle writes */
	struct mlc_stats st = MLC_STATS_INIT;
	struct work surv = { a, "w", 64, CV_MIN, 256, 0, true, false, 20 };
	struct work pub = { a, "w", 64, CV_MIN, 256, -1, false, false, 20 };
	unsigned n = trials(400), stuck_seen = 0, early_stale = 0;
	uint64_t stuck0, overruns0;
	pid_t spid;

	(void)state;
	assert_non_null(r);
	assert_non_null(w);
	shared_reset();
	mlc_arena_info(a, &before);
	spid = survivor_start(&surv);
	mlc_stats(r, &st);
	stuck0 = st.log_stuck;
	overruns0 = st.log_overruns;
	for (unsigned t = 0; t < n; t++) {
		bool simulated = t % 2 == 0;
		uint32_t kid = 1000 + t, ver, level;
		uint64_t t0, stuck_before, overruns_before;
		char key[32];
		pid_t v;

		snprintf(key, sizeof(key), "log-%u", t);
		guard("a log trial", CHECK_ALARM);
		/* The reader holds version 1 in its L1, log applied.  Its
		 * L1 is held empty while the survivor is inside a change
		 * whose claim looks 100 ms old to it (this process's test
		 * clock runs ahead of the survivor's by then): retried for
		 * up to 5 s of real time. */
		set_kid(w, key, kid, 1);
		level = 0;
		t0 = now_ms();
		for (int i = 0; level != MLC_L1 &&
				(i < 10 || now_ms() - t0 < 5000); i++) {
			ver = get_ver(r, key, kid, &level);
			assert_int_equal(ver, 1);
			if (i >= 10)
				sleep_us(1000);
		}
		assert_int_equal(level, MLC_L1);
		mlc_stats(r, &st);
		stuck_before = st.log_stuck;
		overruns_before = st.log_overruns;
		if (simulated) {
			bool gone = false;

			sh->ready = 0;
			v = spawn(claim_and_die, a);
			while (!sh->ready && !gone) {
				gone = waitpid(v, NULL, WNOHANG) == v;
				sleep_us(100);
			}
			if (!gone) {
				kill(v, SIGKILL);
				reap(v);
			}
		} else {
			/* A real publisher killed anywhere in its sets. */
			v = spawn(work_loop, &pub);
			kill_after(v, KILL_MAX_US);
		}
		/* A change after the (maybe) stuck cell. */
		set_kid(w, key, kid, 2);
		/* Readers do not wait for a dead publisher... */
		t0 = now_ms();
		ver = get_ver(r, key, kid, &level);
		if (now_ms() - t0 > 1000)
			fail_msg("a reader waited %" PRIu64 " ms for a dead "
				 "publisher", now_ms() - t0);
		if (ver == 1)
			early_stale++;	/* allowed, for LOG_STUCK_MS */
		/* ...and serve no old value once LOG_STUCK_MS has passed. */
		mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
		ver = get_ver(r, key, kid, &level);
		if (ver != 2)
			fail_msg("trial %u (%s): L1 still served version %u "
				 "after LOG_STUCK_MS", t,
				 simulated ? "simulated" : "real", ver);
		mlc_stats(r, &st);
		if (st.log_stuck > stuck_before)
			stuck_seen++;
		else if (simulated && st.log_overruns == overruns_before)
			fail_msg("trial %u: a stuck cell was not counted", t);
		unguard();
	}
	{
		pid_t p[1] = { spid };

		survivors_stop(p, 1, "log");
	}
	mlc_stats(r, &st);
	printf("faults log: %u trials (%u simulated), stuck cells seen %u "
	       "(log_stuck %" PRIu64 ", log_overruns %" PRIu64 "), old value "
	       "served inside the window %u times, never after\n", n,
	       (n + 1) / 2, stuck_seen, st.log_stuck - stuck0,
	       st.log_overruns - overruns0, early_stale);
	info_print("log", a, &before);
	mlc_cache_close(r);
	mlc_cache_close(w);
	arena_done(a);
}

/* ==== (d) creators killed while creating ================================= */

struct creator {
	const char *name;
	uint64_t bytes;
	int slot;
};

static int
creator(void *arg)
{
	const struct creator *x = arg;
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *c;
	char key[32];
	int rc;

	o.flags = MLC_ARENA_CREATE;
	o.bytes = x->bytes;
	o.page_size = 64 << 10;
	o.log_cells = 1024;
	o.flight_slots = 64;
	rc = mlc_arena_open(&a, x->name, &o);
	if (rc != 0) {
		note_bad(x->slot, "creator: mlc_arena_open: %s",
			 mlc_strerror(rc));
		return 1;
	}
	c = cache_new(a, 0);
	if (c == NULL)
		return 2;
	snprintf(key, sizeof(key), "creator-%d", x->slot);
	set_kid(c, key, (uint32_t)x->slot, (uint32_t)getpid());
	mlc_cache_close(c);
	mlc_arena_close(a);
	return 0;
}

/* Temporary files of @p name: fail on one of a live process, count and
 * return the others. */
static unsigned
tmp_files(const char *name, bool remove)
{
	char prefix[160], path[512];
	size_t plen;
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir("/dev/shm");

	assert_non_null(d);
	plen = (size_t)snprintf(prefix, sizeof(prefix), ".mlc-tmp.%s.", name);
	while ((de = readdir(d)) != NULL) {
		long pid;

		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		pid = strtol(de->d_name + plen, NULL, 10);
		if (pid == getpid() || (pid > 0 && kill((pid_t)pid, 0) == 0))
			fail_msg("%s: the temporary file of live process %ld",
				 de->d_name, pid);
		n++;
		if (remove) {
			snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
			unlink(path);
		}
	}
	closedir(d);
	return n;
}

static void
test_create_kills(void **state)
{
	unsigned n = trials(300), killed = 0, survivors = 0, leftovers = 0;
	unsigned attached = 0;

	(void)state;
	for (unsigned t = 0; t < n; t++) {
		struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
		struct creator x[3];
		int nc = 1 + (int)rnd_below(3);
		uint64_t bytes = (uint64_t)(2 + rnd_below(15)) << 20;
		bool kill_it[3];
		pid_t p[3];
		struct mlc_arena *a = NULL;
		struct mlc_cache *c;
		char name[96];
		uint32_t ver, level;
		int rc;

		shared_reset();
		snprintf(name, sizeof(name), "%s", fresh_name());
		for (int i = 0; i < nc; i++) {
			x[i] = (struct creator){ name, bytes, i };
			/* The first one always dies; the others may live. */
			kill_it[i] = i == 0 || rnd_below(2);
			p[i] = spawn(creator, &x[i]);
		}
		sleep_us(rnd_below(KILL_MAX_US + 1));
		for (int i = 0; i < nc; i++)
			if (kill_it[i])
				kill(p[i], SIGKILL);
		guard("creators", CHECK_ALARM);
		for (int i = 0; i < nc; i++) {
			int st = reap(p[i]);

			if (st == 128 + SIGKILL) {
				killed++;
			} else if (st != 0) {
				uint64_t total;

				fail_msg("trial %u: creator %d: status %d: %s",
					 t, i, st, shared_failure(&total) ?
					 shared_failure(&total) : "");
			} else {
				kill_it[i] = false;
				survivors++;
			}
		}
		/* Whatever was left: an open with CREATE succeeds... */
		o.flags = MLC_ARENA_CREATE;
		o.bytes = 2 << 20;
		o.page_size = 64 << 10;
		o.log_cells = 1024;
		o.flight_slots = 64;
		rc = mlc_arena_open(&a, name, &o);
		unguard();
		if (rc != 0)
			fail_msg("trial %u: open after killed creators: %s", t,
				 mlc_strerror(rc));
		{
			struct mlc_arena_info in = MLC_ARENA_INFO_INIT;

			mlc_arena_info(a, &in);
			attached += in.bytes == bytes;
		}
		/* ...the arena works, and it is the one the creators that
		 * finished agreed on. */
		c = cache_new(a, 0);
		assert_non_null(c);
		set_kid(c, "parent", 77, 1);
		assert_int_equal(get_ver(c, "parent", 77, &level), 1);
		for (int i = 0; i < nc; i++) {
			char key[32];

			if (kill_it[i])
				continue;
			snprintf(key, sizeof(key), "creator-%d", i);
			ver = get_ver(c, key, (uint32_t)i, &level);
			assert_int_equal(ver, (uint32_t)p[i]);
		}
		mlc_cache_close(c);
		mlc_arena_close(a);
		/* No temporary file of a live process (ours above all); the
		 * dead creators' ones go with the name. */
		leftovers += tmp_files(name, false);
		assert_int_equal(mlc_arena_unlink(name, 0), 0);
		if (tmp_files(name, true) != 0)
			fail_msg("trial %u: mlc_arena_unlink left the temporary "
				 "files of dead creators", t);
		cur_name[0] = '\0';
	}
	printf("faults create: %u trials, %u creators killed, %u finished, "
	       "%u dead creators' temporary files (removed by "
	       "mlc_arena_unlink), %u times a creator's arena was attached\n",
	       n, killed, survivors, leftovers, attached);
}

/* ==== (e) processes killed inside the allocator ========================== */

#define E_KEYS 2048
#define E_VMAX (20 << 10)

static void
test_alloc_kills(void **state)
{
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a = arena_new(2 << 20, 0);
	struct mlc_cache *c = cache_new(a, MLC_CACHE_NO_L1);
	struct work surv, victim;
	unsigned n = trials(1200), killed = 0;
	uint64_t nospace = 0;
	pid_t spid;

	(void)state;
	assert_non_null(c);
	shared_reset();
	mlc_arena_info(a, &before);
	/* Nearly full before the first kill. */
	fill_again(&(struct fill){ a, "e", (uint64_t)3 << 20, CV_MIN, E_VMAX,
				   E_KEYS }, "alloc (prefill)");
	shared_reset();
	surv = (struct work){ a, "e", E_KEYS, CV_MIN, E_VMAX, 0, true, true,
			      10 };
	victim = (struct work){ a, "e", E_KEYS, CV_MIN, E_VMAX, -1, false,
				true, 5 };
	spid = survivor_start(&surv);
	for (unsigned t = 0; t < n; t++) {
		pid_t v = spawn(work_loop, &victim);

		killed += kill_after(v, KILL_MAX_US);
		guard("the check after an allocator death", CHECK_ALARM);
		check_all_keys(c, "e", 64, 4096, true, &nospace);
		unguard();
	}
	{
		pid_t p[1] = { spid };

		survivors_stop(p, 1, "alloc");
	}
	printf("faults alloc: %u trials, %u killed by SIGKILL, -ENOSPC "
	       "while racing: survivor %" PRIu64 ", checks %" PRIu64 "\n",
	       n, killed, sh->nospace[0], nospace);
	info_print("alloc", a, &before);
	/* Every size class must work again: twice the arena, every size. */
	fill_again(&(struct fill){ a, "efill", (uint64_t)4 << 20, CV_MIN,
				   E_VMAX, E_KEYS }, "alloc");
	guard("the last check", CHECK_ALARM);
	nospace = 0;
	check_all_keys(c, "e", 64, 4096, false, &nospace);
	unguard();
	info_print("alloc (after the fill)", a, &before);
	mlc_cache_close(c);
	arena_done(a);
}

/* ==== (f) writers killed inside chained items ============================ */

#define C_BYTES (2 << 20)
#define C_KEYS 256
#define C_SMAX 2048		/* the small values beside the chained ones */
#define C_LMIN 7300		/* chained: above a ninth of a 64 KiB page */
#define C_LMAX (56 << 10)
#define C_WRITE 16		/* keys written after each kill, in turn */

/* After a kill: every key reads as absent or as a good value, and
 * @p count keys from @p from on are written again (three in four of them
 * chained); -ENOSPC counted if @p nospace_ok. */
static void
check_chained(struct mlc_cache *c, unsigned char *buf, uint32_t from,
	      uint32_t count, bool nospace_ok, uint64_t *nospace)
{
	for (uint32_t kid = 0; kid < C_KEYS; kid++)
		check_peek(c, "c", kid);
	for (uint32_t i = 0; i < count; i++)
		check_set(c, "c", (from + i) % C_KEYS, buf,
			  i % 4 == 3 ? rnd_size(CV_MIN, C_SMAX) :
				       rnd_size(C_LMIN, C_LMAX),
			  nospace_ok, nospace);
}

static void
test_chained_kills(void **state)
{
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	struct mlc_arena_info before = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a = arena_new(C_BYTES, 0);
	struct mlc_cache *c = cache_new(a, MLC_CACHE_NO_L1);
	unsigned char *buf = malloc(C_LMAX);
	struct work surv[2], victim;
	unsigned n = trials(300), killed = 0;
	uint64_t nospace = 0, left, undead;
	pid_t pids[2];
	int rc;

	(void)state;
	assert_non_null(c);
	assert_non_null(buf);
	shared_reset();
	mlc_arena_info(a, &before);
	/* Full of chained values before the first kill. */
	fill_again(&(struct fill){ a, "c", (uint64_t)2 * C_BYTES, C_LMIN,
				   C_LMAX, C_KEYS }, "chained (prefill)");
	shared_reset();
	large.pct = 75;		/* three sets in four chained */
	large.min = C_LMIN;
	large.max = C_LMAX;
	for (int i = 0; i < 2; i++) {
		surv[i] = (struct work){ a, "c", C_KEYS, CV_MIN, C_SMAX, i,
					 true, true, 15 };
		pids[i] = survivor_start(&surv[i]);
	}
	victim = (struct work){ a, "c", C_KEYS, CV_MIN, C_SMAX, -1, false,
				true, 15 };
	for (unsigned t = 0; t < n; t++) {
		pid_t v = spawn(work_loop, &victim);

		killed += kill_after(v, KILL_MAX_US);
		guard("the check after a chained writer's death", CHECK_ALARM);
		check_chained(c, buf, t * C_WRITE % C_KEYS, C_WRITE, true,
			      &nospace);
		unguard();
	}
	survivors_stop(pids, 2, "chained");
	large.pct = 0;
	printf("faults chained: %u trials, %u killed by SIGKILL, -ENOSPC "
	       "while racing: survivors %" PRIu64 ", checks %" PRIu64 "\n",
	       n, killed, sh->nospace[0] + sh->nospace[1], nospace);
	info_print("chained", a, &before);
	/* Memory back: twice the arena in chained values, then twice in
	 * every size; then every key takes a value again. */
	fill_again(&(struct fill){ a, "cfill", (uint64_t)2 * C_BYTES, C_LMIN,
				   C_LMAX, C_KEYS }, "chained");
	fill_again(&(struct fill){ a, "cmix", (uint64_t)2 * C_BYTES, CV_MIN,
				   C_LMAX, C_KEYS }, "chained (all sizes)");
	guard("the last check", CHECK_ALARM);
	nospace = 0;
	check_chained(c, buf, 0, C_KEYS, false, &nospace);
	unguard();
	info_print("chained (after the fill)", a, &before);
	/* Nobody is left running: the arena must check clean, and every
	 * chunk still ALLOC must be a dead writer's. */
	left = alloc_left(a, &undead);
	printf("faults chained: %" PRIu64 " chunks ALLOC (dead writers'), %"
	       PRIu64 " of writers not proven dead\n", left - undead, undead);
	assert_int_equal(undead, 0);
	rc = mlc_arena_check(a, &rep);
	printf("faults chained: check: %u problems%s%s%s; chunks live %" PRIu64
	       ", alloc %" PRIu64 ", free %" PRIu64 "\n", rep.problems,
	       rep.problems ? " (first: " : "",
	       rep.problems ? rep.first_problem : "",
	       rep.problems ? ")" : "", rep.chunks_live,
	       rep.chunks_alloc, rep.chunks_free);
	assert_int_equal(rc, 0);
	free(buf);
	mlc_cache_close(c);
	arena_done(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_kills),
		cmocka_unit_test(test_index_kills),
		cmocka_unit_test(test_flight_kills),
		cmocka_unit_test(test_log_kills),
		cmocka_unit_test(test_create_kills),
		cmocka_unit_test(test_alloc_kills),
		cmocka_unit_test(test_chained_kills),
	};
	const char *s = getenv("MLC_FAULT_SEED");

	t_require_shm();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (s != NULL)
		seed = strtoull(s, NULL, 0);
	else if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	printf("faults: MLC_FAULT_SEED=%#" PRIx64 " MLC_FAULT_TRIALS=%s\n",
	       seed, getenv("MLC_FAULT_TRIALS") ? getenv("MLC_FAULT_TRIALS") :
	       "(defaults)");
	rng_seed(seed);
	if (getenv("MLC_FAULT_ONLY") != NULL)	/* e.g. "*alloc*" */
		cmocka_set_test_filter(getenv("MLC_FAULT_ONLY"));
	keep_arena = getenv("MLC_FAULT_KEEP") != NULL;
	signal(SIGALRM, on_alarm);
	atexit(cleanup_name);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
