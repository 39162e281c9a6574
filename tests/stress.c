/*
 * mlc-stress: processes x threads on one arena, every value checked.
 *
 *   mlc-stress [--seconds N] [--procs P] [--threads T] [--keys K]
 *              [--bytes B] [--seed S] [--slow-loads PERMILLE]
 *              [--delays N] [--max-items N] [--large 1]
 *              [--one-mapping 1] [--kills MS]
 *
 * The parent creates a named arena smaller than the key set (by default
 * 2 MiB for 5000 keys of 16..2047 bytes, their size mix shifting every
 * second: the CLOCK sweep and page moves run all the time, and a key is
 * set, read, evicted and loaded again within the 1 ms that 30% of loads
 * take), forks P
 * processes, and each attaches it by name (its own mapping) and runs T
 * threads with one cache handle each.  Thread 0 of every child uses instead
 * a handle the parent opened before fork(), which must start over in the
 * child.  Every thread does, at random: mlc_get with a loader (most),
 * mlc_get without one, mlc_peek (with and without MLC_CALL_STALE_OK),
 * mlc_set and mlc_delete of the keys it owns, and, rarely, mlc_purge.
 *
 * Values check themselves (tests/checkval.h): key id, version, body,
 * checksum.  Each key has one owning thread, which bumps the key's version
 * in a shared counter array (an anonymous mapping) before each set; the
 * loader returns the key at its current version (a negative entry while it
 * was never set).  So every value a reader sees must be intact, of its key,
 * not from the future (version <= the counter), and, as seen by any one
 * reader, versions of a key never go backwards.  A purge may legitimately
 * make a reader's view start over, so "backwards" is only checked between
 * purges (the reader keeps the purge epoch it last saw).
 *
 * --delays N sets MLC_TEST_DELAYS=N for every process: each pause point of
 * the library (src/pause.h; the tests' build has them) sleeps, once in N
 * passes, up to 2 ms.  Windows of a few instructions (a freer between its
 * unlock and its free, a reader between validation and use, a writer
 * between allocation and link) become milliseconds wide, so races that
 * plain stress crosses too fast to see are taken for real.  The run then
 * also fails if it never reached the paths that prove identity: a late
 * free that found its chunk already reclaimed (stale_frees) and, with
 * more than one process, a chunk of a live writer left alone by a sweep
 * (orphan_skips).
 *
 * Those paths (and the ones --max-items and --large must reach, below)
 * are reached by chance, and a slow machine or a sanitizer does fewer
 * operations in the same seconds: a run that has not reached them by
 * --seconds goes on until it has, for at most more_s() longer (twice
 * --seconds, and 2 minutes at least), says so, and fails only then.  (A
 * stale free comes with memory sweeps, about one in a thousand
 * evictions; with --max-items the index, not memory, is full most of the
 * time and evictions are few: under ThreadSanitizer in one process, CI's
 * stress-index of 15 s saw none, and a run here its first 21 s past its
 * --seconds, near the end of twice --seconds more.  So a --max-items run
 * with --delays makes one stale free for certain before its workers
 * start: probe_stale_free(), below.)
 *
 * Without --kills no process of a run dies, so such a run fails if the
 * arena reclaimed anything as an orphan: that was a live writer's chunk or
 * a live chained value's piece.
 *
 * --kills MS: every 0..2 x MS ms the parent SIGKILLs a child at random,
 * wherever it is (holding a lock, a fresh allocation, a log cell, a
 * flight, halfway through a page move), and starts another in its place
 * with the same workers and keys.  The survivors go on checking every
 * value they read; locks are repaired, chunks reclaimed by proof of their
 * writer's death, flights taken over, stuck log cells passed.
 *
 * After every run, once all processes are gone, the arena must check clean
 * (mlc_arena_check()) and take a fill of 1.5 times its bytes in each size
 * phase with every set succeeding: memory left allocated for good, or a
 * page stuck in a move, fails the run.
 *
 * --max-items N sizes the index below the key set (the default sizes it
 * from the bytes, and 5000 keys then never fill it): both buckets of a
 * new key are full all the time, so entries move between their buckets
 * (cuckoo moves, table.c: index_move) and index evictions run beside the
 * CLOCK's, under the same checks.  The run then also fails if no entry
 * ever moved.
 *
 * --large 1 adds a fourth phase to the size mix: 7..56 KiB, values above a
 * ninth of the arena's 64 KiB pages, which are stored as chained items (a
 * head and pieces of a smaller class, src/arena.h) beside the small ones,
 * so chains are taken, read, evicted, drained off moved pages and freed
 * under the same checks.  The run then also fails if no page moved.
 *
 * --one-mapping 1: thread 0 opens a handle on its process's own mapping
 * like the others, instead of using the one inherited across fork(), so
 * no process maps the arena twice.  For ThreadSanitizer, which knows
 * nothing of other processes and takes two mappings of one memory for two
 * memories: a lock taken through one mapping orders nothing done through
 * the other in its eyes, so it reports the accesses that lock orders as
 * races (tests/meson.build runs the stress that way under TSan, in one
 * process: what orders a chunk's reuse may be any thread's lock).
 *
 * Prints "stress: N ops, N checks, N failures, N evictions, S seconds" and
 * exits 1 on any failure (and on a hang: every child runs under alarm()).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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

#include "mlc.h"
#include "checkval.h"
#include "pause.h"

#define MAXW 256		/* worker threads in all */
#define VMIN CV_MIN
#define VMAX (56 << 10)
#define PURGE_EVERY 200000	/* ops per thread between purges, about */

struct counters {
	uint64_t ops, checks, failures;
	uint64_t gets, loads, sets, deletes, peeks, purges;
	uint64_t nospace, timeouts, negatives, stale, backwards_purge;
	char first[240];	/* the first failure */
} __attribute__((aligned(64)));

struct shared {
	volatile int stop;
	uint64_t purge_epoch;
	struct counters w[MAXW];
	uint32_t ver[];		/* per key: the owner's last version */
};

static struct {
	double seconds;
	int procs, threads;
	uint32_t keys;
	uint64_t bytes;
	uint64_t seed;
	uint32_t slow_permille;	/* loads that take 1 ms */
	int delays;		/* MLC_TEST_DELAYS for every process */
	uint32_t max_items;	/* 0: the arena's default */
	int large;		/* 1: a phase of 7..56 KiB values */
	int one_mapping;	/* 1: no handle inherited across fork() */
	uint32_t kills;		/* ms between SIGKILLs, on average; 0: none */
} opt = { 10, 3, 2, 5000, 2u << 20, 0, 300, 0, 0, 0, 0, 0 };

static double deadline;		/* the run's planned end (CLOCK_MONOTONIC) */
static double hard_end;		/* its end at the latest: run_until_covered() */

static struct shared *sh;
static char name[64];
static struct mlc_cache *inherited;	/* opened before fork() */
static struct mlc_arena *parent_arena;

struct worker {
	int id;			/* global worker index */
	struct mlc_arena *a;
	struct mlc_cache *c;	/* set for the inherited handle */
	uint64_t rng;
	uint32_t *last;		/* per key: highest version seen */
	uint64_t epoch;		/* purge epoch last seen */
	struct counters *ct;
	unsigned char buf[VMAX];
};

static uint64_t
xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static uint64_t
rnd(struct worker *w)
{
	return xorshift(&w->rng);
}

/* A value length of size phase @p phase.  The size mix moves every
 * second: all sizes, then 16..127 only, then 1024..2047 only (then, with
 * --large, 7..56 KiB).  The allocator moves pages between classes when the
 * mix changes, not while it holds (a steady mix would leave the page-move
 * races almost untried), so the shifts keep pages moving all run long. */
static size_t
phase_len(uint64_t *rng, unsigned phase)
{
	int b;
	size_t n;

	if (phase == 3) {		/* chained: above 64 KiB / 9 */
		n = (7 << 10) + (size_t)(xorshift(rng) % (49 << 10));
		return n > VMAX ? VMAX : n;
	}
	if (phase == 0)
		b = 4 + (int)(xorshift(rng) % 7);	/* 16 .. 2047 */
	else if (phase == 1)
		b = 4 + (int)(xorshift(rng) % 3);	/* 16 .. 127 */
	else
		b = 10;					/* 1024 .. 2047 */
	n = ((size_t)1 << b) + (size_t)(xorshift(rng) % ((size_t)1 << b));

	return n < VMIN ? VMIN : n > VMAX ? VMAX : n;
}

/* The phases: 0, 1, 2 (and 3 with --large). */
static unsigned
phases(void)
{
	return opt.large ? 4 : 3;
}

static size_t
rnd_len(struct worker *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return phase_len(&w->rng, (unsigned)(ts.tv_sec % phases()));
}

static void
fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->ct->failures++ != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(w->ct->first, sizeof(w->ct->first), fmt, ap);
	va_end(ap);
}

static void
key_of(char *buf, uint32_t kid, size_t *len)
{
	*len = (size_t)snprintf(buf, 24, "s%" PRIu32, kid);
}

/* ---- the loader: the key at its current version --------------------- */

struct load_ctx {
	struct worker *w;
	uint32_t kid;
};

static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	struct load_ctx *x = arg;
	struct worker *w = x->w;
	uint32_t ver = __atomic_load_n(&sh->ver[x->kid], __ATOMIC_ACQUIRE);
	size_t len;

	(void)key;
	(void)key_len;
	w->ct->loads++;
	if (rnd(w) % 1000 < opt.slow_permille) {	/* a slow backend */
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	if (ver == 0)
		return MLC_LOAD_NOTFOUND;
	len = rnd_len(w);
	cv_make(w->buf, len, x->kid, ver);
	out->data = w->buf;
	out->len = len;
	return MLC_LOAD_VALUE;
}

/* ---- checks ------------------------------------------------------------- */

/* A value (or negative entry) read for @p kid, by @p what. */
static void
check(struct worker *w, const char *what, const struct mlc_value *v,
      uint32_t kid, uint64_t epoch)
{
	uint32_t ver = 0, now;
	int bad;

	w->ct->checks++;
	if (v->flags & MLC_NEGATIVE) {
		w->ct->negatives++;
		if (v->len != 0)
			fail(w, "%s key %u: negative entry with %zu bytes",
			     what, kid, v->len);
		ver = 0;	/* "never set": older than any version */
	} else {
		bad = cv_check(v->data, v->len, kid, &ver);
		if (bad != CV_OK) {
			fail(w, "%s key %u: %s (len %zu, level %u, flags %#x)",
			     what, kid, cv_what(bad), v->len, v->level,
			     v->flags);
			return;
		}
		if (v->len > VMAX)
			fail(w, "%s key %u: %zu bytes", what, kid, v->len);
	}
	if (v->flags & MLC_STALE)
		w->ct->stale++;
	now = __atomic_load_n(&sh->ver[kid], __ATOMIC_ACQUIRE);
	if (ver > now)
		fail(w, "%s key %u: version %u from the future (counter %u)",
		     what, kid, ver, now);
	/* Versions go backwards for no reader, between purges it saw. */
	if (epoch != w->epoch) {
		memset(w->last, 0, sizeof(*w->last) * opt.keys);
		w->epoch = epoch;
	}
	if (ver < w->last[kid]) {
		fail(w, "%s key %u: version %u after %u (level %u, flags "
		     "%#x, L2 version %" PRIu64 ")", what, kid, ver,
		     w->last[kid], v->level, v->flags, v->version);
		return;
	}
	w->last[kid] = ver;
}

/* ---- one worker thread ------------------------------------------------ */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct mlc_cache *c = w->c;
	uint32_t nw = (uint32_t)(opt.procs * opt.threads);
	double end = hard_end;
	struct counters *ct = w->ct;
	struct mlc_call_options short_ttl = MLC_CALL_OPTIONS_INIT;

	short_ttl.ttl_ms = 50;
	if (c == NULL) {
		struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
		int rc;

		co.ttl_ms = 60000;
		co.lru_size = 512;
		rc = mlc_cache_open(&c, w->a, "stress", &co);
		if (rc != 0) {
			fail(w, "mlc_cache_open: %s", mlc_strerror(rc));
			return NULL;
		}
	}
	for (;;) {
		uint32_t kid = (uint32_t)(rnd(w) % opt.keys);
		uint32_t r = (uint32_t)(rnd(w) % 1000);
		uint64_t epoch = __atomic_load_n(&sh->purge_epoch,
						 __ATOMIC_ACQUIRE);
		struct mlc_value v = { 0 };
		char key[24];
		size_t klen;
		int rc;

		if ((ct->ops & 255) == 0 && (sh->stop || now_s() >= end))
			break;
		ct->ops++;
		key_of(key, kid, &klen);
		if (r < 550) {				/* get + loader */
			struct load_ctx x = { w, kid };

			ct->gets++;
			rc = mlc_get(c, key, klen, loader, &x, &v);
			if (rc == 0)
				check(w, "get+loader", &v, kid, epoch);
			else if (rc == -ETIMEDOUT)
				ct->timeouts++;
			else
				fail(w, "get+loader key %u: %s", kid,
				     mlc_strerror(rc));
		} else if (r < 650) {			/* get */
			ct->gets++;
			rc = mlc_get(c, key, klen, NULL, NULL, &v);
			if (rc == 0)
				check(w, "get", &v, kid, epoch);
			else if (rc != -ENOENT)
				fail(w, "get key %u: %s", kid,
				     mlc_strerror(rc));
		} else if (r < 750) {			/* peek */
			ct->peeks++;
			rc = mlc_peek(c, key, klen,
				      r & 1 ? MLC_CALL_STALE_OK : 0, &v);
			if (rc == 0)
				check(w, "peek", &v, kid, epoch);
			else if (rc != -ENOENT)
				fail(w, "peek key %u: %s", kid,
				     mlc_strerror(rc));
		} else {				/* write a key we own */
			uint32_t ver;
			size_t len;

			kid -= kid % nw;
			kid += (uint32_t)w->id;
			if (kid >= opt.keys)
				kid = (uint32_t)w->id;
			key_of(key, kid, &klen);
			if (r < 920) {
				ver = __atomic_add_fetch(&sh->ver[kid], 1,
							 __ATOMIC_ACQ_REL);
				len = rnd_len(w);
				cv_make(w->buf, len, kid, ver);
				ct->sets++;
				/* Some expire soon: expiry, stale answers and
				 * reclaiming run too. */
				rc = mlc_set(c, key, klen, w->buf, len,
					     r % 8 == 0 ? &short_ttl : NULL);
				if (rc == -ENOSPC)
					ct->nospace++;
				else if (rc != 0)
					fail(w, "set key %u: %s", kid,
					     mlc_strerror(rc));
				/* Our own write: never older after it. */
				if (rc == 0 && epoch == w->epoch)
					w->last[kid] = ver;
			} else if (r < 999 ||
				   rnd(w) % (PURGE_EVERY / 1000) != 0) {
				ct->deletes++;
				rc = mlc_delete(c, key, klen);
				if (rc != 0)
					fail(w, "delete key %u: %s", kid,
					     mlc_strerror(rc));
			} else {
				/* The epoch first: a reader that sees the
				 * purge's effects sees the new epoch. */
				__atomic_add_fetch(&sh->purge_epoch, 1,
						   __ATOMIC_ACQ_REL);
				ct->purges++;
				rc = mlc_purge(c);
				if (rc != 0)
					fail(w, "purge: %s", mlc_strerror(rc));
			}
		}
		mlc_value_release(&v);
	}
	if (c != inherited)
		mlc_cache_close(c);
	return NULL;
}

/* ---- processes ----------------------------------------------------------- */

static int child_main(int p);

static pid_t
spawn_child(int p)
{
	pid_t pid = fork();

	if (pid < 0)
		perror("fork");
	if (pid == 0)
		_exit(child_main(p));
	return pid;
}

/* The status child @p pid ended with. */
static int
reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* 1 (and a line) if child @p p ended with status @p st, not by exit(0). */
static int
child_failed(int p, int st)
{
	if (!WIFSIGNALED(st) && WEXITSTATUS(st) == 0)
		return 0;
	fprintf(stderr, "stress: child %d ended with %s %d%s\n", p,
		WIFSIGNALED(st) ? "signal" : "status",
		WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung)" : "");
	return 1;
}

/* What a run with these options must reach and has not yet reached (as
 * its failure message), or NULL once it has reached all of it. */
static const char *
uncovered(const struct mlc_arena_info *in)
{
	/* A sweep counts a live writer's chunk left alone only when the
	 * writer is another process: one process never reaches it. */
	if (opt.delays > 0 && (in->stale_frees == 0 ||
			       (opt.procs > 1 && in->orphan_skips == 0)))
		return "the run never reached a stale free or a live writer's "
		       "chunk: the identity paths were not tested";
	if (opt.max_items > 0 && opt.max_items < opt.keys &&
	    in->index_moves == 0)
		return "no entry moved between its buckets: the index moves "
		       "were not tested";
	if (opt.large && in->page_moves == 0)
		return "no page moved: chained items were never drained off "
		       "a page";
	return NULL;
}

/* How long past --seconds a run that has not reached its paths goes on. */
#define MORE_MIN_S 120

static double
more_s(void)
{
	return 2 * opt.seconds > MORE_MIN_S ? 2 * opt.seconds : MORE_MIN_S;
}

/* Waits for the planned end, then goes on while the run has not reached
 * what it must (uncovered()), up to hard_end: those paths are reached by
 * chance, and a slow machine or a sanitizer (several times slower) does
 * fewer operations in the same seconds.  Then stops the workers.  Returns
 * the seconds added. */
static double
run_until_covered(struct mlc_arena *a)
{
	struct timespec tick = { 0, 100 * 1000000 };
	struct mlc_arena_info in;
	double added = 0;

	while (now_s() < deadline)
		nanosleep(&tick, NULL);
	while (now_s() < hard_end && mlc_arena_info(a, &in) == 0 &&
	       uncovered(&in) != NULL) {
		nanosleep(&tick, NULL);
		added = now_s() - deadline;
	}
	sh->stop = 1;
	return added;
}

/* --kills: until the deadline, every 0..2 x opt.kills ms, SIGKILL a child
 * at random, wherever it is (in a lock, an allocation, a log claim, a
 * flight, a page move), and start another in its place with the same
 * workers, keys and counters.  The survivors go on checking every value
 * they read.  Returns the number of kills, or -1. */
static int
kill_children(pid_t *pids, int *bad_exit)
{
	uint64_t x = opt.seed * 0x9e3779b97f4a7c15ull | 1;
	int kills = 0;

	for (;;) {
		struct timespec ts;
		uint64_t ms;
		int p, st;

		ms = xorshift(&x) % (2 * (uint64_t)opt.kills + 1);
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
		/* A child started less than a second before the deadline
		 * would barely attach: the last ones are left to finish. */
		if (now_s() + 1 >= deadline)
			return kills;
		p = (int)((x >> 32) % (uint64_t)opt.procs);
		kill(pids[p], SIGKILL);
		st = reap(pids[p]);
		/* It may have ended on its own first: a failure, or a hang
		 * caught by its alarm. */
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
			*bad_exit += child_failed(p, st);
		kills++;
		if ((pids[p] = spawn_child(p)) < 0)
			return -1;
	}
}

static int
child_main(int p)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	pthread_t th[MAXW];
	struct worker *ws;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm((unsigned)(hard_end - now_s()) + 120);	/* a hang kills us */
	rc = mlc_arena_open(&a, name, &ao);	/* attach: our own mapping */
	if (rc != 0) {
		fprintf(stderr, "stress: child %d: attach: %s\n", p,
			mlc_strerror(rc));
		return 2;
	}
	ws = calloc((size_t)opt.threads, sizeof(*ws));
	if (ws == NULL)
		return 2;
	for (int t = 0; t < opt.threads; t++) {
		struct worker *w = &ws[t];

		w->id = p * opt.threads + t;
		w->a = a;
		w->c = t == 0 && !opt.one_mapping ? inherited : NULL;
		w->rng = cv_mix(opt.seed ^ (uint64_t)(w->id + 1) << 32) | 1;
		w->last = calloc(opt.keys, sizeof(*w->last));
		w->ct = &sh->w[w->id];
		if (w->last == NULL)
			return 2;
		if (pthread_create(&th[t], NULL, worker_run, w) != 0)
			return 2;
	}
	for (int t = 0; t < opt.threads; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < opt.threads; t++)
		free(ws[t].last);
	free(ws);
	mlc_arena_close(a);
	return 0;
}

/* ---- --max-items: one stale free for certain ---------------------------
 *
 * A stale free comes with memory sweeps, and with --max-items the index,
 * not memory, is full: evictions are few, and a run reached its first
 * stale free only by chance (under ThreadSanitizer, at times past its
 * --seconds plus two minutes).  So such a run makes one before its
 * workers start, through the library's own paths and a real second
 * process: a child deletes a key and stops at DEL_UNLOCKED (its stripes
 * dropped, the unlinked chunk not yet freed), the parent fills memory
 * with values of the key's size until the sweep has lapped their class
 * (it reclaims the unlinked chunk: no slot points to it), and the child's
 * free then finds its chunk reused and does nothing.  The child checks
 * that its own free was the stale one.  The run's coverage check is as
 * before: the other identity paths still have to be reached by the
 * workload. */
#define PROBE_LEN 6000	/* 10 a page: memory fills before the index */
#define PROBE_MAX 20000		/* sets before the probe gives up */

static int probe_up[2], probe_down[2];
static uint64_t probe_stale_before;

static void
probe_key(char *key, size_t cap, uint32_t i, size_t *len)
{
	*len = (size_t)snprintf(key, cap, "stale-probe-%u", i);
}

/* Set probe key @p i to its self-checking value (of PROBE_LEN bytes). */
static int
probe_set(uint32_t i)
{
	static unsigned char buf[PROBE_LEN];
	char key[32];
	size_t klen;

	probe_key(key, sizeof(key), i, &klen);
	cv_make(buf, PROBE_LEN, i, 1);
	return mlc_set(inherited, key, klen, buf, PROBE_LEN, NULL);
}

/* In the child, once: at the deleter's DEL_UNLOCKED, say so and wait. */
static void
probe_hook(enum mlc__pause_point p, void *arg)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	char b = 'p';

	(void)arg;
	if (p != MLC__P_DEL_UNLOCKED)
		return;
	mlc__pause_hook = NULL;
	if (write(probe_up[1], &b, 1) != 1 || read(probe_down[0], &b, 1) != 1)
		_exit(3);
	/* The parent is idle now: what changes from here is our free. */
	mlc_arena_info(parent_arena, &in);
	probe_stale_before = in.stale_frees;
}

static int
probe_child(void)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	char key[32];
	size_t klen;

	probe_key(key, sizeof(key), 0, &klen);
	mlc__pause_hook = probe_hook;
	if (mlc_delete(inherited, key, klen) != 0 || mlc__pause_hook != NULL)
		return 4;
	mlc_arena_info(parent_arena, &in);
	return in.stale_frees == probe_stale_before + 1 ? 0 : 5;
}

/* Sets values of the probe's size until the sweep lapped their class
 * three times over (memory full: every chunk of the class met by a hand
 * more than once); the number of keys set, or 0. */
static uint32_t
probe_fill(uint32_t from)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	uint64_t chunks = opt.bytes / PROBE_LEN, ev0;
	uint32_t i;

	mlc_arena_info(parent_arena, &in);
	ev0 = in.evictions;
	for (i = from; i < PROBE_MAX; i++) {
		if (probe_set(i) != 0)
			return 0;
		mlc_arena_info(parent_arena, &in);
		if (in.evictions - ev0 >= 3 * chunks)
			return i + 1;
	}
	return 0;
}

/* Make the stale free; false (with a message) if it could not be made. */
static bool
probe_stale_free(void)
{
	uint32_t n = 0;
	char key[32], b;
	size_t klen;
	pid_t pid;
	int st;

	mlc__pause_delays(0);	/* the probe is timed by its steps */
	if (probe_set(0) != 0 || pipe(probe_up) != 0 || pipe(probe_down) != 0)
		return false;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(300);
		_exit(probe_child());
	}
	if (read(probe_up[0], &b, 1) == 1)
		n = probe_fill(1);
	b = 'g';
	if (write(probe_down[1], &b, 1) != 1 || waitpid(pid, &st, 0) != pid)
		st = -1;
	for (int i = 0; i < 2; i++) {
		close(probe_up[i]);
		close(probe_down[i]);
	}
	for (uint32_t i = 1; i < n; i++) {	/* out of the workers' way */
		probe_key(key, sizeof(key), i, &klen);
		(void)mlc_delete(inherited, key, klen);
	}
	mlc__pause_delays(opt.delays);
	printf("stress: stale-free probe: %u sets of %d B, its child ended "
	       "with status %d\n", n, PROBE_LEN,
	       st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 +
	       WTERMSIG(st));
	return n > 0 && st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* After the run, every process gone: the arena adds up
 * (mlc_arena_check()), and all of it can be written again.  Each size
 * phase of the run is set over one and a half times the arena's bytes
 * (counting each item's chunk as its value and 48 bytes), one value after
 * another, and every set must succeed: a chunk that a dead or confused
 * writer left allocated for good, or a page left stuck in a move, would
 * make a set run out of room.  Returns the number of failures. */
static int
after_run(void)
{
	static unsigned char buf[VMAX];
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	uint64_t x = opt.seed | 1, sets = 0;
	double t = now_s();
	int rc, bad = 0;

	/* One set after another: --delays' sleeps would only make it slow. */
	mlc__pause_delays(0);
	rc = mlc_arena_check(parent_arena, &rep);
	if (rc != 0) {
		printf("stress: after the run, mlc_arena_check: %s: %u "
		       "problems, the first: %s\n", mlc_strerror(rc),
		       rep.problems, rep.first_problem);
		bad++;
	}
	/* Phase 0 is all sizes: the others cover it. */
	for (unsigned ph = 1; ph < phases(); ph++) {
		uint64_t bytes = 0;

		for (uint32_t i = 0; bytes < opt.bytes + opt.bytes / 2; i++) {
			char key[32];
			size_t len, klen;

			len = phase_len(&x, ph);
			klen = (size_t)snprintf(key, sizeof(key), "fill%u-%u",
						ph, i);
			cv_make(buf, len, i, 1);
			rc = mlc_set(inherited, key, klen, buf, len, NULL);
			if (rc != 0) {
				printf("stress: after the run, set %u of %zu "
				       "bytes (phase %u): %s\n", i, len, ph,
				       mlc_strerror(rc));
				return bad + 1;
			}
			bytes += len + 48;
			sets++;
		}
	}
	printf("stress: after the run: the arena checks clean, and %" PRIu64
	       " sets over 1.5 times its bytes in each size phase all "
	       "succeeded (%.1f s)\n", sets, now_s() - t);
	return bad;
}

static void
cleanup(void)
{
	if (name[0])
		mlc_arena_unlink(name, 0);
}

static void
on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
usage(void)
{
	fprintf(stderr, "usage: mlc-stress [--seconds N] [--procs P] "
		"[--threads T] [--keys K] [--bytes B] [--seed S]\n"
		"                  [--slow-loads PERMILLE] [--delays N] "
		"[--max-items N] [--large 1]\n"
		"                  [--one-mapping 1] [--kills MS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	struct counters sum = { 0 };
	const char *first = NULL;
	pid_t pids[MAXW];
	int bad_exit = 0, kills = 0, rc;
	double t0, took, added;
	const char *why;
	size_t shsize;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(a, "--seconds") == 0)
			opt.seconds = strtod(v, NULL);
		else if (strcmp(a, "--procs") == 0)
			opt.procs = atoi(v);
		else if (strcmp(a, "--threads") == 0)
			opt.threads = atoi(v);
		else if (strcmp(a, "--keys") == 0)
			opt.keys = (uint32_t)strtoul(v, NULL, 0);
		else if (strcmp(a, "--bytes") == 0)
			opt.bytes = strtoull(v, NULL, 0);
		else if (strcmp(a, "--seed") == 0)
			opt.seed = strtoull(v, NULL, 0);
		else if (strcmp(a, "--slow-loads") == 0)
			opt.slow_permille = (uint32_t)strtoul(v, NULL, 0);
		else if (strcmp(a, "--delays") == 0)
			opt.delays = atoi(v);
		else if (strcmp(a, "--max-items") == 0)
			opt.max_items = (uint32_t)strtoul(v, NULL, 0);
		else if (strcmp(a, "--large") == 0)
			opt.large = atoi(v);
		else if (strcmp(a, "--one-mapping") == 0)
			opt.one_mapping = atoi(v);
		else if (strcmp(a, "--kills") == 0)
			opt.kills = (uint32_t)strtoul(v, NULL, 0);
		else
			usage();
		i++;
	}
	if (opt.seconds <= 0 || opt.procs < 1 || opt.threads < 1 ||
	    opt.procs * opt.threads > MAXW || opt.keys < (uint32_t)MAXW)
		usage();
	if (opt.seed == 0 &&
	    getrandom(&opt.seed, sizeof(opt.seed), 0) != sizeof(opt.seed))
		opt.seed = (uint64_t)time(NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (opt.delays > 0) {
		char d[16];

		snprintf(d, sizeof(d), "%d", opt.delays);
		setenv("MLC_TEST_DELAYS", d, 1);
	}
	printf("stress: %d processes x %d threads, %u keys, %" PRIu64
	       " MiB arena, %.0f s, --seed %#" PRIx64 "%s%s\n", opt.procs,
	       opt.threads, opt.keys, opt.bytes >> 20, opt.seconds, opt.seed,
	       opt.delays > 0 ? ", random delays 1 in " : "",
	       opt.delays > 0 ? getenv("MLC_TEST_DELAYS") : "");

	shsize = sizeof(*sh) + sizeof(uint32_t) * opt.keys;
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	snprintf(name, sizeof(name), "mlc-stress-%ld-%08" PRIx32,
		 (long)getpid(), (uint32_t)opt.seed);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	ao.bytes = opt.bytes;
	ao.page_size = 64 << 10;
	ao.log_cells = 16384;
	ao.flight_slots = 1024;
	ao.max_items = opt.max_items;
	rc = mlc_arena_open(&parent_arena, name, &ao);
	if (rc != 0) {
		fprintf(stderr, "stress: create %s: %s\n", name,
			mlc_strerror(rc));
		name[0] = '\0';
		return 2;
	}
	co.ttl_ms = 60000;
	co.lru_size = 512;
	rc = mlc_cache_open(&inherited, parent_arena, "stress", &co);
	if (rc != 0) {
		fprintf(stderr, "stress: cache: %s\n", mlc_strerror(rc));
		return 2;
	}
	if (opt.delays > 0 && opt.max_items > 0 &&
	    opt.max_items < opt.keys && !probe_stale_free()) {
		printf("stress: the stale-free probe failed\n");
		return 1;
	}
	t0 = now_s();
	deadline = t0 + opt.seconds;
	hard_end = deadline + more_s();
	fflush(NULL);
	for (int p = 0; p < opt.procs; p++)
		if ((pids[p] = spawn_child(p)) < 0)
			return 2;
	if (opt.kills > 0 && (kills = kill_children(pids, &bad_exit)) < 0)
		return 2;
	added = run_until_covered(parent_arena);
	for (int p = 0; p < opt.procs; p++)
		bad_exit += child_failed(p, reap(pids[p]));
	took = now_s() - t0;
	for (int i = 0; i < opt.procs * opt.threads; i++) {
		struct counters *c = &sh->w[i];

		sum.ops += c->ops;
		sum.checks += c->checks;
		sum.failures += c->failures;
		sum.gets += c->gets;
		sum.loads += c->loads;
		sum.sets += c->sets;
		sum.deletes += c->deletes;
		sum.peeks += c->peeks;
		sum.purges += c->purges;
		sum.nospace += c->nospace;
		sum.timeouts += c->timeouts;
		sum.negatives += c->negatives;
		sum.stale += c->stale;
		if (c->failures && first == NULL)
			first = c->first;
	}
	mlc_arena_info(parent_arena, &in);
	printf("stress: %" PRIu64 " gets, %" PRIu64 " loads, %" PRIu64
	       " sets, %" PRIu64 " deletes, %" PRIu64 " peeks, %" PRIu64
	       " purges; %" PRIu64 " negative and %" PRIu64 " stale answers; %"
	       PRIu64 " sets refused (-ENOSPC), %" PRIu64 " lock timeouts\n",
	       sum.gets, sum.loads, sum.sets, sum.deletes, sum.peeks,
	       sum.purges, sum.negatives, sum.stale, sum.nospace, sum.timeouts);
	printf("stress: arena: %" PRIu64 " evictions, %" PRIu64
	       " index evictions, %" PRIu64 " index moves, %" PRIu64
	       " expired, %" PRIu64
	       " page moves, %" PRIu64 " orphans, %" PRIu64 " repairs, %"
	       PRIu64 " write failures, %" PRIu64 "/%" PRIu64 " items\n",
	       in.evictions, in.index_evictions, in.index_moves,
	       in.expired_reclaimed,
	       in.page_moves, in.orphans_reclaimed, in.repairs,
	       in.write_failures, in.items, in.max_items);
	printf("stress: identity checks: %" PRIu64 " stale frees (no-ops), %"
	       PRIu64 " chunks of live writers left alone, %" PRIu64
	       " read give-ups\n", in.stale_frees, in.orphan_skips,
	       in.read_giveups);
	if (added > 0)
		printf("stress: ran %.1f s past --seconds to reach the paths it "
		       "must test (it may run up to %.0f s past)\n", added,
		       more_s());
	if ((why = uncovered(&in)) != NULL) {
		printf("stress: %s\n", why);
		bad_exit++;
	}
	/* Without --kills no process of the run dies (a hang is killed, and
	 * fails anyway): a chunk reclaimed as an orphan was a live writer's,
	 * or a live chained value's piece. */
	if (kills > 0)
		printf("stress: %d processes killed; %" PRIu64 " chunks "
		       "reclaimed as orphans, %" PRIu64 " lock repairs\n",
		       kills, in.orphans_reclaimed, in.repairs);
	else if (in.orphans_reclaimed > 0) {
		printf("stress: %" PRIu64 " chunks reclaimed as orphans, and "
		       "no process died\n", in.orphans_reclaimed);
		bad_exit++;
	}
	bad_exit += after_run();
	if (first != NULL)
		printf("stress: first failure: %s\n", first);
	printf("stress: %" PRIu64 " ops, %" PRIu64 " checks, %" PRIu64
	       " failures, %" PRIu64 " evictions, %.1f seconds\n", sum.ops,
	       sum.checks, sum.failures + (uint64_t)bad_exit,
	       in.evictions + in.index_evictions, took);
	mlc_cache_close(inherited);
	mlc_arena_close(parent_arena);
	munmap(sh, shsize);
	return sum.failures || bad_exit ? 1 : 0;
}
