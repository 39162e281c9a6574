/*
 * Every pause point x every concurrent operation, across real processes,
 * checked against a model; and a crash at every pause point.
 *
 * A case is a pause point P of the library (src/pause.h; the tests' build
 * has them) and an operation X.  It runs in a process of its own, on an
 * anonymous arena of its own (1 MiB of 64 KiB pages, 64 log cells, 16
 * flight slots: page moves and log laps come quickly), preloaded with keys
 * of several size classes whose values check themselves (checkval.h):
 *
 *   R  forked first: warms its L1 with every key, then reads them again
 *      through that L1 when told to (the L1 side of the log);
 *   A  runs a workload that passes P (sets for PUT_*, deletes for DEL_*,
 *      L2 reads for READ_*, a load for FLIGHT_* and LOAD_*, a full arena
 *      for EVICT/ORPHAN, a new size class for CARVE, sets and reads of k09,
 *      a chained item (src/arena.h), for CHAIN_* and READ_PIECE) with a
 *      pause hook
 *      that stops it there, waiting on a process-shared semaphore;
 *   B  runs X while A is stopped: get of the paused key or of the others
 *      (L2 reads: MLC_CACHE_NO_L1), set of the paused key or of others,
 *      delete, purge, an eviction burst of another size class (pages move),
 *      a flight steal (a get with a loader of a key whose loader process H
 *      is stopped with a 100 ms lease), a log lap (more records than the
 *      log has cells); then reads every key.
 *
 * Readers never block: a read that does not return within 2 s while A is
 * stopped is a hang.  Writers may block on a lock A holds, but only when P
 * is inside a lock (PUT_LIVE, PUT_CLAIMED, PUT_LINKED, MOVE_LINKED,
 * DEL_UNLINKED, SLOT_STORED, FREE_LOCKED, ALLOC_POPPED, ALLOC_SMALL,
 * SWEEP_PROMOTED, CARVE_MARKED, EVICT_UNLINKED, PAGE_DRAINED,
 * PAGE_UNLINKED, ORPHAN_SUSPECT, ORPHAN_PROVEN, CHAIN_MARKED, CHAIN_PIECE,
 * CHAIN_DROPPED):
 * then A is resumed after 1 s and X must finish; anywhere else an X that
 * does not finish is a hang.  R reads 200 ms after X returned and again
 * 130 ms later (A still stopped), and once more when everything is done.
 *
 * Every operation is logged with a global tick before and after it (one
 * counter in shared memory) and the monotonic time.  A value read for key
 * K must check itself (K's bytes, no tear), come from a set or load of K
 * that began before the read returned and did not fail, and not be older
 * than a set, stored load, delete or purge that began after it ended and
 * returned before the read began: by ticks for L2 reads and for L1 reads
 * once every writer is done, by time (MLC__LOG_STUCK_MS + 50 ms) for L1
 * reads while A is stopped.  A miss is always allowed: a cache may forget.
 * Afterwards mlc_arena_check() must find nothing wrong.  A pair whose
 * point A never reaches is listed, not failed (none, as of this writing:
 * PAGE_DRAINED and PAGE_UNLINKED have their own workload, a page move
 * into a new class).
 *
 * Crash mode: A _exit()s at P instead.  Then every key must read right
 * (or miss), R's L1 must not serve the paused key's old value 250 ms after
 * A died when L2 holds another, a get with a loader of the key A was
 * working on must finish within 3 s (flight takeover on proof of death or
 * after the claim grace), and after one lock of every stripe (and of each
 * class or pool lock A died holding) the arena must check clean.
 *
 * Environment: MLC_EXPLORE_FULL=1 also stops at the 2nd and 3rd passage of
 * each point for the workloads that repeat; MLC_EXPLORE_JOBS=N cases at a
 * time (default 4); MLC_EXPLORE_ONLY=NAME runs the cases of one pause
 * point, MLC_EXPLORE_X=NAME those of one operation (its name as the
 * cases list it: evict-burst, crash, ...).  MLC_SANITIZED
 * (tests/meson.build) stretches every time bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "common.h"
#include "checkval.h"
#include "mlc-int.h"
#include "log.h"		/* MLC__LOG_STUCK_MS */
#define MLC_PAUSE_POINTS 1	/* the hook's declarations */
#include "pause.h"

#define NS "explore"
#define NK 14			/* tracked keys are k01..k13 */
#define NPRE 9			/* k01..k09 preloaded */
#define K_LOAD 10		/* absent: A loads it */
#define K_STEAL 11		/* absent: H0 holds its flight, A steals it */
#define K_CARVE 12		/* absent: a size class with no page yet */
#define K_HELD 13		/* absent: H holds its flight, B steals it */
#define K_CHAINED 9		/* preloaded, chained (src/arena.h) */
#define CHAINED_LEN 23000	/* one chunk would be 32 KiB: chained */
#define MAX_OPS 4096
#define LOG_CELLS 64
#define LEASE_MS 100		/* every loader's lease */
#define LAG_MS (MLC__LOG_STUCK_MS + 50)	/* L1 lag allowed to stopped logs */
#define FILLER_LEN 3000		/* the class A's full-arena workloads use */
#define BURST_LEN 8000		/* X's eviction burst: another class */
#define BURST_N 120		/* more than the arena holds of it */

/* Time bounds, ms (times `slow` in sanitized builds). */
#define READ_MS 2000		/* any read while A is stopped */
#define WRITE_MS 3000		/* a write that needs no lock A holds */
#define BLOCK_MS 1000		/* a write that may wait for A's lock */
#define FLIGHT_MS 3000		/* a get with a loader, takeover included */
#define AFTER_MS 10000		/* anything, once A is resumed */
#define REACH_MS 15000		/* A reaching its point */
#define CASE_MS 90000		/* a whole case */

#define HOLD_H0 ((void *)1)	/* loader args: hold the flight */
#define HOLD_H ((void *)2)

enum { EXIT_NOT_REACHED = 3, EXIT_CRASHED = 42, EXIT_STUCK = 43 };

/* ---- cases ------------------------------------------------------------ */

enum work {
	W_SET, W_DEL, W_READ, W_LOAD, W_STEAL, W_CARVE, W_EVICT, W_ORPHAN,
	W_MOVE, W_INDEX, W_CHAIN, W_CHAIN_READ, W_PURGE,
};
static const char *const work_names[] = {
	"set", "delete", "L2 read", "load", "steal", "new class",
	"full arena", "orphan hunt", "page move", "full index",
	"chained set", "chained read", "purge",
};

/* What kind of wrong answer, for the summary. */
enum wrong_kind {
	WK_L2,			/* an L2 read (or an L1 miss that read L2) */
	WK_L1_DONE,		/* an L1 hit once every writer had returned */
	WK_L1_LAG,		/* an L1 hit while A was stopped */
	WK_L1_CRASH,		/* an L1 hit after A died */
	WK_OTHER,		/* errors, checks, processes */
	WK_COUNT,
};
static const char *const wk_names[] = {
	"L2 reads", "L1 hits after every writer returned",
	"L1 hits while a writer was stopped", "L1 hits after a writer died",
	"other",
};

enum xop {
	X_GET_PAUSED, X_GET_OTHER, X_SET_PAUSED, X_SET_OTHER, X_DELETE,
	X_PURGE, X_EVICT_BURST, X_FLIGHT_STEAL, X_LOG_LAP, X_COUNT,
	X_CRASH = -1,
};
static const char *const x_names[] = {
	"get-paused", "get-other", "set-paused", "set-other", "delete",
	"purge", "evict-burst", "flight-steal", "log-lap",
};

static const char *
xop_name(int x)
{
	return x == X_CRASH ? "crash" : x_names[x];
}

struct kase {
	int point;
	int xop;		/* X_CRASH: A dies at the point */
	int nth;		/* stop at this passage of the point */
	int work;
};

/* What a case found; in memory shared with the process that runs it. */
struct result {
	int done;
	int reached;
	uint32_t answers, wrong, hangs, blocked;
	uint32_t by_kind[5];	/* wrong answers: enum wrong_kind */
	int truncated;		/* log full */
	uint64_t page_moves, repairs, stale_frees, orphans, evictions;
	uint64_t steals, stuck, overruns;
	char log[2048];
};

static int
work_of(int p)
{
	switch (p) {
	case MLC__P_DEL_UNLINKED:
	case MLC__P_DEL_UNLOCKED:
		return W_DEL;
	case MLC__P_READ_MATCHED:
	case MLC__P_READ_VALIDATED:
		return W_READ;
	case MLC__P_CARVE_MARKED:
		return W_CARVE;
	case MLC__P_PAGE_DRAINED:
	case MLC__P_PAGE_UNLINKED:
		return W_MOVE;
	case MLC__P_EVICT_UNLINKED:
	case MLC__P_ALLOC_SMALL:
	case MLC__P_SWEEP_PROMOTED:
		return W_EVICT;
	case MLC__P_MOVE_LINKED:
		return W_INDEX;
	case MLC__P_CHAIN_MARKED:
	case MLC__P_CHAIN_PIECE:
	case MLC__P_CHAIN_DROPPED:
		return W_CHAIN;
	case MLC__P_READ_PIECE:
		return W_CHAIN_READ;
	case MLC__P_ORPHAN_SUSPECT:
	case MLC__P_ORPHAN_PROVEN:
		return W_ORPHAN;
	case MLC__P_FLIGHT_STOLEN:
		return W_STEAL;
	case MLC__P_PURGE_PUBLISHED:
		return W_PURGE;
	case MLC__P_FLIGHT_SCANNED:
	case MLC__P_FLIGHT_CLAIMED:
	case MLC__P_FLIGHT_PUBLISHING:
	case MLC__P_FLIGHT_RELEASING:
	case MLC__P_FLIGHT_RELEASED:
	case MLC__P_LOAD_RETURNED:
	case MLC__P_LOAD_OWNED:
	case MLC__P_LOAD_KEPT:
	case MLC__P_LOAD_STORED:
		return W_LOAD;
	default:		/* PUT_*, FREE_LOCKED, ALLOC_POPPED, LOG_* */
		return W_SET;
	}
}

/* Points passed with a stripe, class or pool lock held. */
static bool
in_lock(int p)
{
	switch (p) {
	case MLC__P_LOG_CHANGING:
	case MLC__P_PUT_LIVE:
	case MLC__P_PUT_CLAIMED:
	case MLC__P_PUT_LINKED:
	case MLC__P_MOVE_LINKED:
	case MLC__P_DEL_UNLINKED:
	case MLC__P_SLOT_STORED:
	case MLC__P_FREE_LOCKED:
	case MLC__P_ALLOC_POPPED:
	case MLC__P_CARVE_MARKED:
	case MLC__P_EVICT_UNLINKED:
	case MLC__P_ALLOC_SMALL:
	case MLC__P_SWEEP_PROMOTED:
	case MLC__P_PAGE_DRAINED:
	case MLC__P_PAGE_UNLINKED:
	case MLC__P_ORPHAN_SUSPECT:
	case MLC__P_ORPHAN_PROVEN:
	case MLC__P_CHAIN_MARKED:
	case MLC__P_CHAIN_PIECE:
	case MLC__P_CHAIN_DROPPED:
		return true;
	default:
		return false;
	}
}

/* The key A works on (the "paused key"). */
static uint32_t
ka_of(int work)
{
	switch (work) {
	case W_LOAD:
		return K_LOAD;
	case W_STEAL:
		return K_STEAL;
	case W_CARVE:
	case W_MOVE:
		return K_CARVE;
	case W_EVICT:
	case W_ORPHAN:
		return 3;
	case W_CHAIN:
	case W_CHAIN_READ:
		return K_CHAINED;
	default:
		return 1;
	}
}

static bool
work_repeats(int work)
{
	return work == W_SET || work == W_DEL || work == W_READ ||
	       work == W_CHAIN || work == W_CHAIN_READ || work == W_LOAD;
}

/* Three sizes among k01..k09 (three size classes), others apart. */
static size_t
vlen_of(uint32_t kid)
{
	switch (kid) {
	case K_LOAD:
	case K_STEAL:
		return 200;
	case K_CARVE:
		return 20000;
	case K_HELD:
		return 500;
	case K_CHAINED:
		return CHAINED_LEN;
	}
	return kid % 3 == 1 ? 40 : kid % 3 == 2 ? 500 : 3000;
}

/* ---- the shared record of one case ------------------------------------ */

enum op_kind { OP_SET = 1, OP_DEL, OP_PURGE, OP_FILL, OP_GET };
enum rule { R_STRICT, R_LAG };
enum got { GOT_MISS, GOT_VALUE, GOT_ERROR, GOT_NEG };

struct op {
	uint8_t kind;		/* enum op_kind */
	char who;		/* the process: P A B R H C D */
	uint8_t rule;		/* GET: enum rule */
	uint8_t got;		/* GET: enum got */
	int32_t rc;
	uint32_t kid;
	uint32_t ver;		/* SET/FILL: written; GET: read */
	uint32_t bad;		/* GET: enum cv_bad */
	uint32_t stored;	/* FILL: known to be in L2 */
	uint32_t round;		/* R's round */
	uint32_t level;		/* GET: enum mlc_level */
	uint64_t t0, t1;	/* ticks; t1 0: never finished */
	uint64_t ns0, ns1;	/* CLOCK_MONOTONIC */
};

struct run {
	sem_t at_point, go;	/* A stopped at P; A may go on */
	sem_t r_cmd, r_done;	/* R: read now; done */
	sem_t h0_at, h0_go;	/* H0 (steal workload) in its loader; go */
	sem_t h_at, h_go;	/* H (flight-steal op) in its loader; go */
	int r_quit, r_rule;
	uint32_t r_round;
	int c_stage;
	uint64_t tick;
	uint32_t nops, lost_ops;
	uint32_t next_ver[NK];
	/* crash mode: the paused key as L2 readers saw it */
	int ka_got[2];
	uint32_t ka_ver[2];
	/* the checker's findings */
	int check_rc;
	char check_msg[1024];
	uint32_t slow_loads;
	uint64_t slowest_load_ms;
	/* evidence that the paths were taken (handle counters) */
	uint64_t steals, stuck, overruns;
	struct op ops[MAX_OPS];
};

static struct run *rn;
static struct mlc_arena *arena;
static uint32_t ns_idx;
static const struct kase *kc;
static char who = 'P';
static int slow = 1;
static unsigned char vbuf[32768], ldbuf[32768];
static int fill_idx = -1;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A time bound in ns, stretched in sanitized builds. */
static uint64_t
ms_ns(long ms)
{
	return (uint64_t)ms * (uint64_t)slow * 1000000u;
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
nap_until(uint64_t ns)
{
	uint64_t now = now_ns();

	if (now < ns)
		nap_ms((long)((ns - now + 999999) / 1000000));
}

static int
sem_wait_ms(sem_t *s, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(s, &ts) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int
kname(uint32_t kid, char *buf)
{
	return snprintf(buf, 16, "k%02u", kid);
}

static int
op_begin(int kind, uint32_t kid, uint32_t ver, int rule)
{
	uint32_t i = ck_pr_faa_32(&rn->nops, 1);
	struct op *o;

	if (i >= MAX_OPS) {
		ck_pr_inc_32(&rn->lost_ops);
		return -1;
	}
	o = &rn->ops[i];
	o->kind = (uint8_t)kind;
	o->who = who;
	o->rule = (uint8_t)rule;
	o->kid = kid;
	o->ver = ver;
	o->round = ck_pr_load_32(&rn->r_round);
	o->ns0 = now_ns();
	o->t0 = ck_pr_faa_64(&rn->tick, 1) + 1;
	return (int)i;
}

static void
op_end(int i, int rc)
{
	struct op *o;

	if (i < 0)
		return;
	o = &rn->ops[i];
	o->rc = rc;
	o->t1 = ck_pr_faa_64(&rn->tick, 1) + 1;
	o->ns1 = now_ns();
}

static uint32_t
next_ver(uint32_t kid)
{
	return ck_pr_faa_32(&rn->next_ver[kid], 1) + 1;
}

/* ---- the operations, each logged -------------------------------------- */

/* The backend: a fresh version of the key, logged as a write. */
static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	const char *k = key;
	uint32_t kid = 0, ver;
	size_t len;

	for (size_t i = 1; i < key_len; i++)	/* "k%02u" */
		kid = kid * 10 + (uint32_t)(k[i] - '0');
	if (kid == 0 || kid >= NK)
		return -EINVAL;		/* not ours: the read reports it */
	len = vlen_of(kid);
	ver = next_ver(kid);
	fill_idx = op_begin(OP_FILL, kid, ver, 0);
	if (arg == HOLD_H0) {
		sem_post(&rn->h0_at);
		sem_wait_ms(&rn->h0_go, 120000);
	} else if (arg == HOLD_H) {
		sem_post(&rn->h_at);
		sem_wait_ms(&rn->h_go, 120000);
	}
	cv_make(ldbuf, len, kid, ver);
	out->data = ldbuf;
	out->len = len;
	return MLC_LOAD_VALUE;
}

enum { RD_GET, RD_PEEK, RD_LOAD };

/* Read @p kid and log the answer; the index of its record (or -1). */
static int
rd(struct mlc_cache *c, uint32_t kid, int rule, int mode, void *larg)
{
	struct mlc_value v = { 0 };
	char key[16];
	int n = kname(kid, key), i, rc;
	uint32_t ver = 0;
	struct op *o;

	fill_idx = -1;
	i = op_begin(OP_GET, kid, 0, rule);
	if (mode == RD_PEEK)
		rc = mlc_peek(c, key, (size_t)n, 0, &v);
	else if (mode == RD_LOAD)
		rc = mlc_get(c, key, (size_t)n, loader, larg, &v);
	else
		rc = mlc_get(c, key, (size_t)n, NULL, NULL, &v);
	op_end(i, rc);
	if (rc == 0 && !(v.flags & MLC_NEGATIVE) && v.len >= CV_MIN)
		memcpy(&ver, (const char *)v.data + 4, 4);
	if (fill_idx >= 0) {
		struct op *f = &rn->ops[fill_idx];

		/* Its own caller got it, stored: only then is it a write
		 * that older values must not outlive. */
		f->stored = rc == 0 && !(v.flags & (MLC_NOT_CACHED |
						   MLC_L2_WRITE_FAILED)) &&
			    v.level == MLC_L3 && ver == f->ver;
		op_end(fill_idx, rc);
		fill_idx = -1;
	}
	if (i >= 0) {
		o = &rn->ops[i];
		if (rc == -ENOENT) {
			o->got = GOT_MISS;
		} else if (rc != 0) {
			o->got = GOT_ERROR;
		} else if (v.flags & MLC_NEGATIVE) {
			o->got = GOT_NEG;
		} else {
			o->got = GOT_VALUE;
			o->level = v.level;
			o->bad = v.len != vlen_of(kid) ? (uint32_t)CV_BADLEN :
				 (uint32_t)cv_check(v.data, v.len, kid, &ver);
			o->ver = ver;
		}
	}
	mlc_value_release(&v);
	return i;
}

static void
rd_all(struct mlc_cache *c, int rule)
{
	for (uint32_t kid = 1; kid < NK; kid++)
		rd(c, kid, rule, RD_GET, NULL);
}

static int
wr_set(struct mlc_cache *c, uint32_t kid)
{
	uint32_t ver = next_ver(kid);
	size_t len = vlen_of(kid);
	char key[16];
	int n = kname(kid, key), i, rc;

	cv_make(vbuf, len, kid, ver);
	i = op_begin(OP_SET, kid, ver, 0);
	rc = mlc_set(c, key, (size_t)n, vbuf, len, NULL);
	op_end(i, rc);
	return rc;
}

static int
wr_del(struct mlc_cache *c, uint32_t kid)
{
	char key[16];
	int n = kname(kid, key), i, rc;

	i = op_begin(OP_DEL, kid, 0, 0);
	rc = mlc_delete(c, key, (size_t)n);
	op_end(i, rc);
	return rc;
}

static int
wr_purge(struct mlc_cache *c)
{
	int i = op_begin(OP_PURGE, 0, 0, 0), rc;

	rc = mlc_purge(c);
	op_end(i, rc);
	return rc;
}

/* Keys nobody reads (fillers); not logged. */
static int
set_filler(struct mlc_cache *c, char tag, uint32_t n, size_t len)
{
	char key[16];
	int kl = snprintf(key, sizeof(key), "%c%05u", tag, n);

	cv_make(vbuf, len, 100000 + n, 1);
	return mlc_set(c, key, (size_t)kl, vbuf, len, NULL);
}

/* The stripes of @p key's two buckets (table.c's key_buckets()). */
static void
stripes_of(const char *key, size_t len, uint32_t s[2])
{
	struct mlc__key k = { .data = key, .len = (uint32_t)len,
			      .ns = ns_idx };
	uint32_t b0, b1, tag;

	mlc__key_hash(arena, &k);
	tag = (uint16_t)((k.hash >> 48) | 1);
	b0 = (uint32_t)k.hash & arena->bucket_mask;
	b1 = (b0 ^ (tag * 0x5bd1e995u)) & arena->bucket_mask;
	if (b1 == b0)
		b1 = b0 ^ 1;
	s[0] = b0 & arena->stripe_mask;
	s[1] = b1 & arena->stripe_mask;
}

static struct mlc_cache *
open_cache(uint32_t flags)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;

	o.flags = flags;
	o.ttl_ms = MLC_TTL_NEVER;
	o.lock_lease_ms = LEASE_MS;
	if (mlc_cache_open(&c, arena, NS, &o) != 0) {
		fprintf(stderr, "explore: %c: mlc_cache_open failed\n", who);
		_exit(90);
	}
	return c;
}

/* Add a handle's steal and log counters to the case's evidence. */
static void
stats_add(struct mlc_cache *c)
{
	struct mlc_stats st = MLC_STATS_INIT;

	if (mlc_stats(c, &st) != 0)
		return;
	ck_pr_add_64(&rn->steals, st.lock_steals);
	ck_pr_add_64(&rn->stuck, st.log_stuck);
	ck_pr_add_64(&rn->overruns, st.log_overruns);
}

/* ---- the pause hook ---------------------------------------------------- */

static int hk_point = -1, hk_nth, hk_seen;
static bool hk_crash;

static void
hook(enum mlc__pause_point p, void *arg)
{
	(void)arg;
	if ((int)p != hk_point || ++hk_seen != hk_nth)
		return;
	if (hk_crash)
		_exit(EXIT_CRASHED);
	sem_post(&rn->at_point);
	if (sem_wait_ms(&rn->go, 120000) < 0)
		_exit(EXIT_STUCK);
}

static void
hook_install(int point, int nth, bool crash)
{
	hk_point = point;
	hk_nth = nth;
	hk_crash = crash;
	hk_seen = 0;
	mlc__pause_arg = NULL;
	__atomic_store_n(&mlc__pause_hook, hook, __ATOMIC_RELEASE);
}

/* ---- processes --------------------------------------------------------- */

static pid_t kids[16];
static int nkids;

static void
forget(pid_t pid)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] == pid)
			kids[i] = kids[--nkids];
}

static pid_t
spawn(char role, int (*fn)(void))
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		who = role;
		nkids = 0;
		/* A stopped child never outlives the case that stopped it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(97);
		alarm(120);
		_exit(fn());
	}
	kids[nkids++] = pid;
	return pid;
}

/* 1 if @p pid ended within @p ms (*status: exit code, 128 + signal; see
 * t_wait_ms() for time the machine stood still). */
static int
reap(pid_t pid, long ms, int *status)
{
	int st = t_wait_ms(pid, ms);

	if (st < 0)
		return 0;
	forget(pid);
	*status = st;
	return 1;
}

static void
kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	forget(pid);
}

/* ---- R: an L1 in another process --------------------------------------- */

static int
r_main(void)
{
	struct mlc_cache *c = open_cache(0);

	rd_all(c, R_STRICT);		/* warm: everything in L1 */
	sem_post(&rn->r_done);
	for (;;) {
		if (sem_wait_ms(&rn->r_cmd, 120000) < 0)
			return EXIT_STUCK;
		if (ck_pr_load_int(&rn->r_quit))
			break;
		rd_all(c, ck_pr_load_int(&rn->r_rule));
		sem_post(&rn->r_done);
	}
	stats_add(c);
	mlc_cache_close(c);
	return 0;
}

/* ---- A: the workload that passes the point ------------------------------ */

static int
a_main(void)
{
	struct mlc_cache *c = open_cache(0), *cn = open_cache(MLC_CACHE_NO_L1);
	uint32_t ka = ka_of(kc->work);

	hook_install(kc->point, kc->nth, kc->xop == X_CRASH);
	switch (kc->work) {
	case W_SET:
	case W_CHAIN:
		for (int r = 0; r < kc->nth; r++)
			wr_set(c, ka);
		break;
	case W_DEL:
		for (int r = 0; r < kc->nth; r++) {
			if (r > 0)
				wr_set(c, ka);
			wr_del(c, ka);
		}
		break;
	case W_READ:
	case W_CHAIN_READ:
		for (int r = 0; r < kc->nth; r++)
			rd(cn, ka, R_STRICT, RD_GET, NULL);
		break;
	case W_LOAD:
		for (int r = 0; r < kc->nth; r++) {
			if (r > 0)
				wr_del(c, ka);
			rd(c, ka, R_STRICT, RD_LOAD, NULL);
		}
		break;
	case W_STEAL:
		rd(c, ka, R_STRICT, RD_LOAD, NULL);
		break;
	case W_CARVE:
		wr_set(c, ka);
		break;
	case W_PURGE:
		wr_purge(c);
		break;
	case W_MOVE: {
		/* The pool emptied by fillers first: the new class's page
		 * must then be moved from another class, drained first. */
		struct mlc_arena_info in = MLC_ARENA_INFO_INIT;

		for (uint32_t n = 0; n < 400; n++) {
			mlc_arena_info(arena, &in);
			if (in.pages_free == 0)
				break;
			set_filler(c, 'm', n, FILLER_LEN);
		}
		wr_set(c, ka);
		break;
	}
	case W_EVICT:
	case W_ORPHAN:
		/* New keys in a full class: every one needs an eviction,
		 * and the CLOCK hand or a page drain reaches the orphan. */
		for (uint32_t n = 0; n < 400 && hk_seen < hk_nth; n++)
			set_filler(c, 'a', n, FILLER_LEN);
		break;
	case W_INDEX:
		/* Small new keys into an index of 112 slots (setup_arena):
		 * once both buckets of one are full, an entry moves to its
		 * other bucket to make room (table.c: index_move). */
		for (uint32_t n = 0; n < 400 && hk_seen < hk_nth; n++)
			set_filler(c, 'i', n, 16);	/* cv_make()'s least */
		break;
	}
	stats_add(c);
	return hk_seen >= hk_nth ? 0 : EXIT_NOT_REACHED;
}

/* ---- H0 and H: loaders that hold a flight ------------------------------ */

static int
h0_main(void)
{
	rd(open_cache(0), K_STEAL, R_STRICT, RD_LOAD, HOLD_H0);
	return 0;
}

static int
h_main(void)
{
	rd(open_cache(0), K_HELD, R_STRICT, RD_LOAD, HOLD_H);
	return 0;
}

/* D: a writer that dies holding an allocated chunk (an orphan). */
static int
d_main(void)
{
	struct mlc_cache *c = open_cache(0);

	hook_install(MLC__P_PUT_ALLOCATED, 1, true);
	set_filler(c, 'd', 0, FILLER_LEN);
	return EXIT_NOT_REACHED;
}

/* ---- B: the concurrent operation --------------------------------------- */

static uint32_t
other_key(uint32_t ka, bool same_class)
{
	for (uint32_t kid = 1; kid <= NPRE; kid++)
		if (kid != ka && (vlen_of(kid) == vlen_of(ka)) == same_class)
			return kid;
	return ka == 4 ? 7 : 4;
}

/* More records than the log has cells, none needing A's stripes. */
static void
log_lap(struct mlc_cache *c, uint32_t ka)
{
	uint32_t avoid[2], s[2];
	char key[16];
	int kl = kname(ka, key);
	int done = 0;

	stripes_of(key, (size_t)kl, avoid);
	for (uint32_t n = 0; done < LOG_CELLS + 16 && n < 100000; n++) {
		kl = snprintf(key, sizeof(key), "lap%05u", n);
		stripes_of(key, (size_t)kl, s);
		if (s[0] == avoid[0] || s[0] == avoid[1] ||
		    s[1] == avoid[0] || s[1] == avoid[1])
			continue;
		mlc_delete(c, key, (size_t)kl);
		done++;
	}
}

static int
b_main(void)
{
	struct mlc_cache *c = open_cache(0), *cn = open_cache(MLC_CACHE_NO_L1);
	uint32_t ka = ka_of(kc->work);

	switch (kc->xop) {
	case X_GET_PAUSED:
		rd(cn, ka, R_STRICT, RD_GET, NULL);
		rd(cn, ka, R_STRICT, RD_PEEK, NULL);
		rd(c, ka, R_STRICT, RD_GET, NULL);	/* an L1 miss */
		rd(cn, ka, R_STRICT, RD_GET, NULL);
		break;
	case X_GET_OTHER:
		for (uint32_t kid = 1; kid < NK; kid++)
			if (kid != ka)
				rd(cn, kid, R_STRICT, RD_GET, NULL);
		break;
	case X_SET_PAUSED:
		wr_set(c, ka);
		break;
	case X_SET_OTHER:
		wr_set(c, other_key(ka, true));
		wr_set(c, other_key(ka, false));
		break;
	case X_DELETE:
		wr_del(c, ka);
		break;
	case X_PURGE:
		wr_purge(c);
		break;
	case X_EVICT_BURST:
		for (uint32_t n = 0; n < BURST_N; n++)
			set_filler(c, 'x', n, BURST_LEN);
		break;
	case X_FLIGHT_STEAL:
		rd(c, K_HELD, R_STRICT, RD_LOAD, NULL);
		rd(c, ka, R_STRICT, RD_LOAD, NULL);
		break;
	case X_LOG_LAP:
		log_lap(c, ka);
		break;
	}
	rd_all(cn, R_STRICT);
	stats_add(c);
	return 0;
}

/* ---- C: checks after the fact ------------------------------------------ */

static bool
owner_died(struct mlc__lock *lk)
{
	return __atomic_load_n(&lk->lk_mutex.__data.__lock, __ATOMIC_ACQUIRE) &
	       FUTEX_OWNER_DIED;
}

/* Take every stripe lock once, and every class or pool lock a dead
 * process held, so that each robust mutex repairs what it guards. */
static void
repair_locks(void)
{
	struct mlc_arena *a = arena;
	uint64_t off, gen;

	for (uint32_t s = 0; s <= a->stripe_mask; s++) {
		if (mlc__lock_take(a, &a->stripes[s], mlc__stripe_repair,
				   (void *)(uintptr_t)s) == 0)
			mlc__lock_give(&a->stripes[s]);
	}
	for (uint32_t ci = 0; ci < a->nclasses; ci++) {
		uint32_t p;

		if (!owner_died(&a->classes[ci].cl_lock))
			continue;
		for (p = 0; p < a->npages; p++)
			if (ck_pr_load_32(&a->pages[p].pg_class) == ci + 1)
				break;
		if (p < a->npages) {
			/* A free that proves nothing: takes the lock (and
			 * rebuilds the class), then counts a stale free. */
			off = a->pages_off + ((uint64_t)p << a->page_shift);
			mlc__free(a, off, MLC__LIVE, UINT64_MAX);
		} else if (mlc__alloc(a, ci, 0, false, false, &off, &gen) == 0) {
			mlc__free(a, off, MLC__ALLOC, gen);
		}
	}
	if (owner_died(&a->hdr->ah_pool_lock) &&
	    mlc__alloc(a, a->nclasses - 1, 0, false, false, &off,
			       &gen) == 0)
		mlc__free(a, off, MLC__ALLOC, gen);
}

/* Each class's count of chunks on probation (alloc.c) against its
 * chunks, with nothing running: the first class that differs, or -1. */
static int
small_count_check(uint32_t *counted, uint32_t *said)
{
	struct mlc_arena *a = arena;

	for (uint32_t ci = 0; ci < a->nclasses; ci++) {
		uint32_t n = 0, size = a->class_size[ci];

		for (uint32_t p = 0; p < a->npages; p++) {
			if (ck_pr_load_32(&a->pages[p].pg_class) != ci + 1)
				continue;
			for (uint32_t k = 0; k < a->page_size / size; k++) {
				const struct mlc__item *it = (const void *)(
					a->base + a->pages_off +
					((uint64_t)p << a->page_shift) +
					(uint64_t)k * size);
				uint32_t w = ck_pr_load_32(
					(uint32_t *)&it->it_state);

				if ((MLC__ST_STATE(w) == MLC__ALLOC ||
				     MLC__ST_STATE(w) == MLC__LIVE) &&
				    (w & MLC__ST_SMALL))
					n++;
			}
		}
		if (n != ck_pr_load_32(&a->classes[ci].cl_nsmall)) {
			*counted = n;
			*said = ck_pr_load_32(&a->classes[ci].cl_nsmall);
			return (int)ci;
		}
	}
	return -1;
}

/* Append " key K" to @p out (@p cap bytes, *@p used of them taken) if
 * bucket @p b may hold K under @p tag, as mlc_arena_check() judges a
 * slot's place. */
static void
dump_key(struct mlc_cache *hc, uint32_t b, uint16_t tag, const char *key,
	 int kl, char *out, size_t cap, size_t *used)
{
	int n;

	if (*used >= cap ||
	    !mlc__table_slot_fits(arena, mlc_key_hash(hc, key, (size_t)kl),
				  b, tag))
		return;
	n = snprintf(out + *used, cap - *used, " key %s", key);
	if (n > 0)
		*used = MLC_MIN(cap, *used + (size_t)n);
}

/* The workloads' keys (the tracked k01.., and the fillers' "%c%05u") that
 * bucket @p b may hold under @p tag, appended as dump_key() does. */
static void
dump_keys(struct mlc_cache *hc, uint32_t b, uint16_t tag, char *out,
	  size_t cap, size_t *used)
{
	static const char fillers[] = "apdxmi";
	char key[16];

	for (uint32_t kid = 1; kid < NK; kid++)
		dump_key(hc, b, tag, key, kname(kid, key), out, cap, used);
	for (const char *f = fillers; *f != '\0'; f++)
		for (uint32_t n = 0; n < 4000; n++)
			dump_key(hc, b, tag, key,
				 snprintf(key, sizeof(key), "%c%05u", *f, n),
				 out, cap, used);
}

/* What a bucket the check named holds, for the failure message: each
 * slot's chunk as the checker judges it (state, generation against its
 * page's, offset in the page against its class's chunk size), and whose
 * key it may be.  Read once everything is done: nothing moves. */
static void
bucket_dump(const char *problem, char *out, size_t cap)
{
	const struct mlc_arena *a = arena;
	const char *at = strstr(problem, "(at ");
	struct mlc_cache *hc;
	size_t used = 0;
	unsigned b;

	if (at == NULL || sscanf(at, "(at %u)", &b) != 1 ||
	    b > a->bucket_mask)
		return;
	hc = open_cache(MLC_CACHE_NO_L1);
	for (int s = 0; s < MLC__SLOTS && used < cap; s++) {
		uint64_t w = ck_pr_load_64(&a->table[b].bk_slot[s]);
		uint64_t off = MLC__SLOT_OFF(w), in_page;
		const struct mlc__item *it;
		uint32_t p, ci;
		int n;

		if (w == 0 || off < a->pages_off || off >= a->pages_end)
			continue;
		it = (const struct mlc__item *)(const void *)(a->base + off);
		p = (uint32_t)((off - a->pages_off) >> a->page_shift);
		ci = a->pages[p].pg_class;
		in_page = (off - a->pages_off) & (a->page_size - 1);
		n = snprintf(out + used, cap - used,
			     "; slot %d: page %u class %u (size %u) +%" PRIu64
			     " state %u gen %" PRIu64 " page gen %" PRIu64
			     " klen %u ns %u", s, p, ci,
			     ci && ci <= a->nclasses ? a->class_size[ci - 1] : 0,
			     in_page, MLC__ST_STATE(it->it_state),
			     mlc__item_gen(it), a->pages[p].pg_gen,
			     it->it_klen, it->it_ns);
		if (n < 0)
			break;
		used = MLC_MIN(cap, used + (size_t)n);
		dump_keys(hc, b, MLC__SLOT_TAG(w), out, cap, &used);
	}
	mlc_cache_close(hc);
}

static void
arena_check(void)
{
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	int rc = mlc_arena_check(arena, &rep), ci;
	uint32_t counted = 0, said = 0;

	if (rc != 0 && rn->check_rc == 0) {
		int n;

		rn->check_rc = rc;
		n = snprintf(rn->check_msg, sizeof(rn->check_msg),
			     "mlc_arena_check: %s, %u problems, first: %s",
			     mlc_strerror(rc), rep.problems,
			     rep.first_problem);
		if (n > 0 && (size_t)n < sizeof(rn->check_msg))
			bucket_dump(rep.first_problem, rn->check_msg + n,
				    sizeof(rn->check_msg) - (size_t)n);
	}
	ci = small_count_check(&counted, &said);
	if (ci >= 0 && rn->check_rc == 0) {
		rn->check_rc = MLC_ECORRUPT;
		snprintf(rn->check_msg, sizeof(rn->check_msg),
			 "class %d counts %u chunks on probation, has %u", ci,
			 said, counted);
	}
}

/* After a stopped case: the arena, then every key, through L2 and
 * through a fresh L1. */
static int
c_main(void)
{
	struct mlc_cache *cn = open_cache(MLC_CACHE_NO_L1), *c = open_cache(0);

	arena_check();
	rd_all(cn, R_STRICT);
	rd_all(c, R_STRICT);
	rd_all(c, R_STRICT);
	return 0;
}

/* After a crash: every key through L2; the paused key noted. */
static int
c1_main(void)
{
	struct mlc_cache *cn = open_cache(MLC_CACHE_NO_L1);
	uint32_t ka = ka_of(kc->work);
	int st = rn->c_stage;

	for (uint32_t kid = 1; kid < NK; kid++) {
		int i = rd(cn, kid, R_STRICT, RD_GET, NULL);

		if (kid == ka && i >= 0) {
			rn->ka_got[st] = rn->ops[i].got;
			rn->ka_ver[st] = rn->ops[i].ver;
		}
	}
	return 0;
}

/* After a crash: repair, check, load what A was loading, read all. */
static int
c3_main(void)
{
	struct mlc_cache *c = open_cache(0), *cn = open_cache(MLC_CACHE_NO_L1);
	const uint32_t keys[] = { ka_of(kc->work), K_LOAD, K_STEAL };

	repair_locks();
	arena_check();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t t0 = now_ns(), ms;

		rd(c, keys[i], R_STRICT, RD_LOAD, NULL);
		ms = (now_ns() - t0) / 1000000u;
		if (ms > rn->slowest_load_ms)
			rn->slowest_load_ms = ms;
		if (ms > (uint64_t)FLIGHT_MS * (uint64_t)slow)
			rn->slow_loads++;
	}
	rd_all(cn, R_STRICT);
	arena_check();
	stats_add(c);
	return 0;
}

/* ---- the model --------------------------------------------------------- */

static void
note(struct result *r, const char *fmt, ...)
{
	size_t used = strlen(r->log);
	va_list ap;

	if (r->truncated)
		return;
	if (used + 200 >= sizeof(r->log)) {
		/* The counts stay exact; only the details stop. */
		snprintf(r->log + used, sizeof(r->log) - used,
			 "  (more not shown)\n");
		r->truncated = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(r->log + used, sizeof(r->log) - used, fmt, ap);
	va_end(ap);
	used = strlen(r->log);
	if (used + 1 < sizeof(r->log)) {
		r->log[used] = '\n';
		r->log[used + 1] = '\0';
	}
}

static const char *
op_name(int kind)
{
	switch (kind) {
	case OP_SET:
		return "set";
	case OP_DEL:
		return "delete";
	case OP_PURGE:
		return "purge";
	case OP_FILL:
		return "load";
	default:
		return "get";
	}
}

/* A write that, once returned, hides every value of @p kid before it. */
static bool
hides(const struct op *w, uint32_t kid)
{
	if (w->t1 == 0)
		return false;		/* never returned (its process died) */
	switch (w->kind) {
	case OP_SET:
	case OP_DEL:
		return w->kid == kid && w->rc == 0;
	case OP_FILL:
		return w->kid == kid && w->stored;
	case OP_PURGE:
		return w->rc == 0;
	default:
		return false;
	}
}

static const struct op *
writer_of(const struct op *ops, uint32_t n, uint32_t kid, uint32_t ver)
{
	for (uint32_t i = 0; i < n; i++)
		if ((ops[i].kind == OP_SET || ops[i].kind == OP_FILL) &&
		    ops[i].kid == kid && ops[i].ver == ver)
			return &ops[i];
	return NULL;
}

static void
wrong(struct result *r, const struct op *g, const char *fmt, ...)
{
	char what[320];
	va_list ap;

	r->wrong++;
	r->by_kind[g->got != GOT_VALUE || g->bad ? WK_OTHER :
		   g->level != MLC_L1 ? WK_L2 :
		   g->rule == R_LAG ? WK_L1_LAG : WK_L1_DONE]++;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	note(r, "  WRONG: %c read k%02u (%s, %s rule, ticks %" PRIu64 "-%"
	     PRIu64 "): %s", g->who, g->kid,
	     g->level == MLC_L1 ? "L1" : g->level == MLC_L3 ? "L3" : "L2",
	     g->rule == R_STRICT ? "strict" : "L1-lag", g->t0, g->t1, what);
}

/* Every answer against every write. */
static void
check_ops(struct result *r)
{
	uint32_t n = MLC_MIN(rn->nops, MAX_OPS);
	const struct op *ops = rn->ops;

	if (rn->lost_ops) {
		r->wrong++;
		note(r, "  op log full: %u operations not recorded",
		     rn->lost_ops);
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct op *g = &ops[i], *w;

		if (g->kind != OP_GET || g->t1 == 0)
			continue;	/* not a read, or killed reading */
		r->answers++;
		if (g->got == GOT_MISS)
			continue;	/* a cache may always forget */
		if (g->got == GOT_ERROR) {
			wrong(r, g, "error %s", mlc_strerror(g->rc));
			continue;
		}
		if (g->got == GOT_NEG) {
			wrong(r, g, "a negative entry nobody stored");
			continue;
		}
		if (g->bad) {
			wrong(r, g, "%s", cv_what((int)g->bad));
			continue;
		}
		w = writer_of(ops, n, g->kid, g->ver);
		if (w == NULL) {
			wrong(r, g, "v%u, a version nobody wrote", g->ver);
			continue;
		}
		if (w->t0 > g->t1) {
			wrong(r, g, "v%u, written by %c after the read "
			      "returned", g->ver, w->who);
			continue;
		}
		if (w->kind == OP_SET && w->t1 != 0 && w->rc != 0) {
			wrong(r, g, "v%u of %c's set, which failed (%s)",
			      g->ver, w->who, mlc_strerror(w->rc));
			continue;
		}
		if (w->t1 == 0)
			continue;	/* its writer died mid-write */
		for (uint32_t j = 0; j < n; j++) {
			const struct op *h = &ops[j];

			if (h == w || !hides(h, g->kid) || h->t0 < w->t1 ||
			    h->t1 > g->t0)
				continue;
			if (g->rule == R_LAG &&
			    h->ns1 + (uint64_t)LAG_MS * 1000000u > g->ns0)
				continue;
			wrong(r, g, "v%u (%c's %s, ticks %" PRIu64 "-%" PRIu64
			      "), but %c's %s%s (ticks %" PRIu64 "-%" PRIu64
			      ") had returned %.0f ms before the read began",
			      g->ver, w->who, op_name(w->kind), w->t0, w->t1,
			      h->who, op_name(h->kind),
			      h->kind == OP_PURGE ? "" : " of the key",
			      h->t0, h->t1, (double)(g->ns0 - h->ns1) / 1e6);
			break;
		}
	}
}

/* ---- one case ----------------------------------------------------------- */

static pid_t r_pid;
static bool r_alive;

static void
r_round(struct result *r, int rule)
{
	if (!r_alive)
		return;
	ck_pr_store_int(&rn->r_rule, rule);
	ck_pr_inc_32(&rn->r_round);
	sem_post(&rn->r_cmd);
	if (sem_wait_ms(&rn->r_done, (long)READ_MS * slow) < 0) {
		r->hangs++;
		note(r, "  HANG: R's L1 reads did not return within %d ms",
		     READ_MS * slow);
		kill_reap(r_pid);
		r_alive = false;
	}
}

/* Run @p fn in a child that must finish within @p ms; false on a hang. */
static bool
run_bounded(struct result *r, char role, int (*fn)(void), long ms,
	    const char *what)
{
	pid_t pid = spawn(role, fn);
	int st;

	if (pid < 0) {
		r->wrong++;
		note(r, "  fork failed for %s", what);
		return false;
	}
	if (!reap(pid, ms * slow, &st)) {
		r->hangs++;
		note(r, "  HANG: %s did not finish within %ld ms", what,
		     ms * slow);
		kill_reap(pid);
		return false;
	}
	if (st != 0) {
		r->wrong++;
		note(r, "  %s exited with status %d", what, st);
	}
	return st == 0;
}

/* Fill the arena with values of A's class until nothing is free and
 * evictions have begun. */
static int
fill_arena(struct mlc_cache *c)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;

	for (uint32_t n = 0; n < 4000; n++) {
		if (set_filler(c, 'p', n, FILLER_LEN) != 0)
			return -1;
		mlc_arena_info(arena, &in);
		if (in.pages_free == 0 && in.evictions + in.page_moves > 0)
			return 0;
	}
	return -1;
}

enum { A_REACHED, A_CRASHED, A_NOT_REACHED, A_FAILED };

/* Wait until A stops at its point, dies there, or ends without it. */
static int
wait_point(struct result *r, pid_t a_pid)
{
	uint64_t end = now_ns() + ms_ns(REACH_MS);
	int st;

	for (;;) {
		if (sem_trywait(&rn->at_point) == 0)
			return A_REACHED;
		if (reap(a_pid, 0, &st)) {
			if (st == EXIT_CRASHED)
				return A_CRASHED;
			if (st == EXIT_NOT_REACHED)
				return A_NOT_REACHED;
			r->wrong++;
			note(r, "  A exited with status %d before its point",
			     st);
			return A_FAILED;
		}
		if (now_ns() >= end) {
			r->hangs++;
			note(r, "  HANG: A neither reached %s nor finished in "
			     "%d ms", mlc__pause_name(kc->point),
			     REACH_MS * slow);
			kill_reap(a_pid);
			return A_FAILED;
		}
		nap_ms(1);
	}
}

static void
stop_phase(struct result *r, pid_t a_pid, pid_t h0_pid)
{
	bool reader = kc->xop == X_GET_PAUSED || kc->xop == X_GET_OTHER;
	/* A log lap avoids the paused key's stripes; in the full-index
	 * workload A holds a filler's and those of the bucket its moved
	 * entry goes to, which it cannot know. */
	bool noblock = reader || kc->xop == X_PURGE ||
		       (kc->xop == X_LOG_LAP && kc->work != W_INDEX);
	bool may_block = !noblock && in_lock(kc->point);
	long bound = reader ? READ_MS : kc->xop == X_FLIGHT_STEAL ? FLIGHT_MS :
		     WRITE_MS;
	bool a_resumed = false, b_done;
	pid_t h_pid = 0, b_pid;
	uint64_t b_end;
	int st;

	if (kc->xop == X_FLIGHT_STEAL) {
		h_pid = spawn('H', h_main);
		if (sem_wait_ms(&rn->h_at, (long)READ_MS * slow) < 0) {
			r->hangs++;
			note(r, "  HANG: H did not reach its loader while A "
			     "was stopped");
		}
	}
	b_pid = spawn('B', b_main);
	b_done = reap(b_pid, (may_block ? BLOCK_MS : bound) * slow, &st);
	if (!b_done && may_block) {
		/* Waiting for a lock A holds: let A go, then B must. */
		r->blocked++;
		sem_post(&rn->go);
		a_resumed = true;
		b_done = reap(b_pid, (long)AFTER_MS * slow, &st);
		if (!b_done) {
			r->hangs++;
			note(r, "  HANG: %s still blocked %d ms after A was "
			     "resumed", x_names[kc->xop], AFTER_MS * slow);
		}
	} else if (!b_done) {
		r->hangs++;
		note(r, "  HANG: %s did not finish within %ld ms while A was "
		     "stopped at %s", x_names[kc->xop], bound * slow,
		     mlc__pause_name(kc->point));
	}
	if (!b_done) {
		kill_reap(b_pid);
	} else if (st != 0) {
		r->wrong++;
		note(r, "  B exited with status %d", st);
	}
	b_end = now_ns();
	if (!a_resumed) {
		/* R's L1 while A is still stopped: past the log's stuck
		 * rule, and once more after R noticed. */
		nap_until(b_end + (uint64_t)(LAG_MS + 50) * 1000000u);
		r_round(r, R_LAG);
		nap_ms(MLC__LOG_STUCK_MS + 30);
		r_round(r, R_LAG);
		sem_post(&rn->go);
	}
	if (!reap(a_pid, (long)AFTER_MS * slow, &st)) {
		r->hangs++;
		note(r, "  HANG: A did not finish within %d ms of its resume",
		     AFTER_MS * slow);
		kill_reap(a_pid);
	} else if (st != 0) {
		r->wrong++;
		note(r, "  A exited with status %d after its resume", st);
	}
	if (h_pid > 0) {
		sem_post(&rn->h_go);
		if (!reap(h_pid, (long)AFTER_MS * slow, &st)) {
			r->hangs++;
			note(r, "  HANG: H did not finish after its resume");
			kill_reap(h_pid);
		}
	}
	if (h0_pid > 0) {
		sem_post(&rn->h0_go);
		if (!reap(h0_pid, (long)AFTER_MS * slow, &st)) {
			r->hangs++;
			note(r, "  HANG: H0 did not finish after its resume");
			kill_reap(h0_pid);
		}
	}
	/* Everything done: R's L1 must now be exact. */
	r_round(r, R_STRICT);
	run_bounded(r, 'C', c_main, AFTER_MS, "the checker");
}

/* The L1 answer R gave for @p kid in round @p round, or NULL. */
static const struct op *
r_answer(uint32_t rno, uint32_t kid)
{
	uint32_t n = MLC_MIN(rn->nops, MAX_OPS);

	for (uint32_t i = 0; i < n; i++)
		if (rn->ops[i].who == 'R' && rn->ops[i].round == rno &&
		    rn->ops[i].kid == kid && rn->ops[i].kind == OP_GET)
			return &rn->ops[i];
	return NULL;
}

static void
crash_phase(struct result *r, pid_t h0_pid)
{
	uint64_t t_crash = now_ns();
	uint32_t ka = ka_of(kc->work), rno;
	const struct op *g;
	int st;

	rn->c_stage = 0;
	run_bounded(r, 'C', c1_main, READ_MS, "the L2 reads after the crash");
	/* R's L1, well past the stuck rule: it must not serve what A's
	 * crashed write replaced in L2. */
	nap_until(t_crash + (uint64_t)(LAG_MS + 100) * 1000000u);
	r_round(r, R_LAG);
	rno = rn->r_round;
	rn->c_stage = 1;
	run_bounded(r, 'C', c1_main, READ_MS, "the L2 reads after R's");
	g = r_answer(rno, ka);
	if (g != NULL && g->got == GOT_VALUE &&
	    rn->ka_got[0] == rn->ka_got[1] && rn->ka_ver[0] == rn->ka_ver[1] &&
	    (rn->ka_got[0] != GOT_VALUE || rn->ka_ver[0] != g->ver)) {
		r->wrong++;
		r->by_kind[WK_L1_CRASH]++;
		note(r, "  WRONG: R's L1 served k%02u v%u %.0f ms after A died "
		     "at %s, while L2 held %s%u before and after",
		     ka, g->ver, (double)(g->ns0 - t_crash) / 1e6,
		     mlc__pause_name(kc->point),
		     rn->ka_got[0] == GOT_VALUE ? "v" : "nothing (miss) ",
		     rn->ka_got[0] == GOT_VALUE ? rn->ka_ver[0] : 0);
	}
	run_bounded(r, 'C', c3_main, AFTER_MS, "the repair, check and loads");
	if (rn->slow_loads) {
		r->hangs++;
		note(r, "  HANG: %u gets with a loader took over %d ms after "
		     "the crash (slowest %" PRIu64 " ms)", rn->slow_loads,
		     FLIGHT_MS * slow, rn->slowest_load_ms);
	}
	if (h0_pid > 0) {
		sem_post(&rn->h0_go);
		if (!reap(h0_pid, (long)AFTER_MS * slow, &st)) {
			r->hangs++;
			note(r, "  HANG: H0 did not finish after its resume");
			kill_reap(h0_pid);
		}
	}
	nap_ms(MLC__LOG_STUCK_MS + 30);
	r_round(r, R_LAG);		/* notices the dead writer's cell */
	nap_ms(MLC__LOG_STUCK_MS + 30);
	r_round(r, R_STRICT);		/* ... and has dropped its L1 */
}

static int
setup_arena(struct result *r)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	int rc;

	o.flags = MLC_ARENA_ANON | MLC_ARENA_CREATE;
	if (kc->work == W_INDEX)
		o.max_items = 64;	/* 16 buckets */
	o.bytes = 1 << 20;
	o.page_size = 64 << 10;
	o.log_cells = LOG_CELLS;
	o.flight_slots = 16;
	rc = mlc_arena_open(&arena, NULL, &o);
	if (rc != 0) {
		r->wrong++;
		note(r, "  mlc_arena_open: %s", mlc_strerror(rc));
		return -1;
	}
	return 0;
}

static void
run_case(const struct kase *k, struct result *r)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	struct mlc_cache *pc;
	pid_t a_pid, h0_pid = 0;
	int reached, st;

	kc = k;
	rn = mmap(NULL, sizeof(*rn), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rn == MAP_FAILED || setup_arena(r) < 0)
		return;
	sem_init(&rn->at_point, 1, 0);
	sem_init(&rn->go, 1, 0);
	sem_init(&rn->r_cmd, 1, 0);
	sem_init(&rn->r_done, 1, 0);
	sem_init(&rn->h0_at, 1, 0);
	sem_init(&rn->h0_go, 1, 0);
	sem_init(&rn->h_at, 1, 0);
	sem_init(&rn->h_go, 1, 0);
	pc = open_cache(0);
	mlc__ns_find(arena, NS, &ns_idx);
	for (uint32_t kid = 1; kid <= NPRE; kid++)
		wr_set(pc, kid);
	if ((k->work == W_EVICT || k->work == W_ORPHAN) &&
	    fill_arena(pc) < 0) {
		note(r, "  could not fill the arena");
		r->wrong++;
		goto out;
	}
	if (k->work == W_ORPHAN) {
		pid_t d = spawn('D', d_main);

		if (d < 0 || !reap(d, (long)AFTER_MS * slow, &st) ||
		    st != EXIT_CRASHED) {
			note(r, "  D did not die holding a chunk");
			r->wrong++;
			goto out;
		}
	}
	if (k->work == W_STEAL) {
		h0_pid = spawn('H', h0_main);
		if (sem_wait_ms(&rn->h0_at, (long)READ_MS * slow) < 0) {
			note(r, "  HANG: H0 did not reach its loader");
			r->hangs++;
			goto out;
		}
	}
	r_pid = spawn('R', r_main);
	r_alive = true;
	if (sem_wait_ms(&rn->r_done, (long)AFTER_MS * slow) < 0) {
		note(r, "  HANG: R did not warm its L1");
		r->hangs++;
		goto out;
	}
	a_pid = spawn('A', a_main);
	reached = wait_point(r, a_pid);
	if (reached == A_REACHED && k->xop != X_CRASH) {
		r->reached = 1;
		stop_phase(r, a_pid, h0_pid);
		h0_pid = 0;
	} else if (reached == A_CRASHED && k->xop == X_CRASH) {
		r->reached = 1;
		crash_phase(r, h0_pid);
		h0_pid = 0;
	} else if (reached == A_REACHED) {
		r->wrong++;
		note(r, "  A stopped in a crash run");
	}
	if (h0_pid > 0) {
		sem_post(&rn->h0_go);
		if (!reap(h0_pid, (long)AFTER_MS * slow, &st))
			kill_reap(h0_pid);
	}
	if (r_alive) {
		ck_pr_store_int(&rn->r_quit, 1);
		sem_post(&rn->r_cmd);
		if (!reap(r_pid, (long)AFTER_MS * slow, &st))
			kill_reap(r_pid);
		r_alive = false;
	}
	if (rn->check_rc != 0) {
		r->wrong++;
		note(r, "  %s", rn->check_msg);
	}
	check_ops(r);
out:
	while (nkids > 0)
		kill_reap(kids[0]);
	mlc_arena_info(arena, &in);
	r->page_moves = in.page_moves;
	r->repairs = in.repairs;
	r->stale_frees = in.stale_frees;
	r->orphans = in.orphans_reclaimed;
	r->evictions = in.evictions;
	r->steals = rn->steals;
	r->stuck = rn->stuck;
	r->overruns = rn->overruns;
}

/* ---- the cases, a few at a time ----------------------------------------- */

static struct kase *cases;
static struct result *results;
static int ncases;
static int nxops;		/* operations explored (crash runs apart) */

static int
env_int(const char *name, int def)
{
	const char *e = getenv(name);

	return e != NULL && *e ? atoi(e) : def;
}

/* Is operation @p x among those MLC_EXPLORE_X (@p xonly) asks for? */
static bool
x_wanted(const char *xonly, int x)
{
	return xonly == NULL || !*xonly || !strcmp(xonly, xop_name(x));
}

static void
build_cases(void)
{
	bool full = env_int("MLC_EXPLORE_FULL", 0) > 0;
	const char *only = getenv("MLC_EXPLORE_ONLY");
	const char *xonly = getenv("MLC_EXPLORE_X");
	int max = MLC__P_COUNT * (X_COUNT + 1) * 3;

	cases = calloc((size_t)max, sizeof(*cases));
	assert_non_null(cases);
	for (int p = 0; p < MLC__P_COUNT; p++) {
		int w = work_of(p), nmax = full && work_repeats(w) ? 3 : 1;

		if (only != NULL && *only && strcmp(only, mlc__pause_name(p)))
			continue;
		/* The checker's, and the namespace maker's (every process
		 * here opens namespaces made at setup), and a reader's wait
		 * at an unpublished cell (needs a writer stopped): no
		 * operation here passes them (test-repro
		 * test_check_reused_chunk, test_check_ns_made and
		 * test_ns_maker_stopped, test-log
		 * test_lapped_while_waiting drive them), the empty-page
		 * count's (a hint: test-evict test_empty_hint_recounted), and
		 * L1's, in private memory (test-log
		 * test_fork_while_inserting, test_fork_while_unlinking). */
		if (p == MLC__P_CHECK_SLOT_READ ||
		    p == MLC__P_CHECK_NS_WALKED || p == MLC__P_NS_MARKED ||
		    p == MLC__P_LOG_WAITING || p == MLC__P_EMPTY_COUNTED ||
		    p == MLC__P_L1_LINKING || p == MLC__P_L1_UNLINKING)
			continue;
		for (int nth = 1; nth <= nmax; nth++)
			for (int x = X_CRASH; x < X_COUNT; x++)
				if (x_wanted(xonly, x))
					cases[ncases++] =
						(struct kase){ p, x, nth, w };
	}
	for (int x = 0; x < X_COUNT; x++)
		nxops += x_wanted(xonly, x);
}

static void
case_name(const struct kase *k, char *buf, size_t cap)
{
	char nth[32] = "";

	if (k->nth > 1)
		snprintf(nth, sizeof(nth), " (passage %d)", k->nth);
	snprintf(buf, cap, "%s x %s%s", mlc__pause_name(k->point),
		 xop_name(k->xop), nth);
}

static void
run_all(void)
{
	int jobs = env_int("MLC_EXPLORE_JOBS", 4), next = 0, running = 0;
	pid_t *pids = calloc((size_t)ncases, sizeof(*pids));
	uint64_t *start = calloc((size_t)ncases, sizeof(*start));

	assert_non_null(pids);
	assert_non_null(start);
	if (jobs < 1)
		jobs = 1;
	while (next < ncases || running > 0) {
		pid_t pid;
		int st;

		while (running < jobs && next < ncases) {
			fflush(NULL);
			pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				run_case(&cases[next], &results[next]);
				results[next].done = 1;
				_exit(0);
			}
			pids[next] = pid;
			start[next] = now_ns();
			next++;
			running++;
		}
		pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			for (int i = 0; i < next; i++) {
				if (pids[i] != pid)
					continue;
				pids[i] = 0;
				if (results[i].done)
					continue;
				results[i].wrong++;
				note(&results[i], "  the case's process died "
				     "(status %d)", st);
			}
			running--;
			continue;
		}
		for (int i = 0; i < next; i++) {
			if (pids[i] <= 0 || results[i].done ||
			    now_ns() - start[i] < ms_ns(CASE_MS))
				continue;
			results[i].hangs++;
			note(&results[i], "  HANG: the whole case took over "
			     "%d ms", CASE_MS * slow);
			results[i].done = 1;
			kill(pids[i], SIGKILL);	/* reaped above */
		}
		nap_ms(2);
	}
	free(pids);
	free(start);
}

/* ---- the summary --------------------------------------------------------- */

static struct {
	int points, explored, crashes;
	uint64_t answers, wrong, hangs, blocked;
	uint64_t by_kind[WK_COUNT];
	uint64_t page_moves, repairs, stale_frees, orphans, evictions;
	uint64_t steals, stuck, overruns;
	bool ran;
} sum;

/* What was not reached, then the totals: the last lines printed. */
static void
summarize(void)
{
	for (int p = 0; p < MLC__P_COUNT; p++) {
		char missing[512] = "";
		int nx = 0, reached = 0, crash_reached = -1;

		for (int i = 0; i < ncases; i++) {
			const struct kase *k = &cases[i];
			size_t l = strlen(missing);

			if (k->point != p)
				continue;
			if (k->xop == X_CRASH) {
				crash_reached = MLC_MAX(crash_reached, 0) +
						results[i].reached;
				continue;
			}
			nx++;
			if (results[i].reached)
				reached++;
			else
				snprintf(missing + l, sizeof(missing) - l,
					 "%s%s%s", l ? ", " : "",
					 x_names[k->xop], k->nth > 1 ?
					 " (later passage)" : "");
		}
		if (nx == 0)
			continue;
		if (reached == 0 && crash_reached <= 0)
			printf("explore: not reached: %s (workload: %s), with "
			       "no operation and not in the crash run\n",
			       mlc__pause_name(p), work_names[work_of(p)]);
		else if (reached < nx)
			printf("explore: not reached: %s x {%s}\n",
			       mlc__pause_name(p), missing);
		if (crash_reached == 0 && reached > 0)
			printf("explore: not reached: %s x crash\n",
			       mlc__pause_name(p));
	}
	printf("explore: counters over all cases: %" PRIu64 " page moves, %"
	       PRIu64 " evictions, %" PRIu64 " lock repairs, %" PRIu64
	       " stale frees, %" PRIu64 " orphans reclaimed, %" PRIu64
	       " flight steals, %" PRIu64 " L1 drops for a stuck log, %"
	       PRIu64 " for a lapped one; %" PRIu64 " writes waited for a "
	       "lock A held\n", sum.page_moves, sum.evictions, sum.repairs,
	       sum.stale_frees, sum.orphans, sum.steals, sum.stuck,
	       sum.overruns, sum.blocked);
	if (sum.wrong > 0) {
		printf("explore: wrong answers by kind:");
		for (int k = 0; k < WK_COUNT; k++)
			printf("%s %" PRIu64 " %s", k ? "," : "",
			       sum.by_kind[k], wk_names[k]);
		printf("\n");
	}
	printf("explore: %d pause points x %d operations%s = %d interleavings "
	       "explored (plus %d crash runs), %" PRIu64 " answers checked, %"
	       PRIu64 " wrong answers, %" PRIu64 " hangs\n", sum.points,
	       nxops, env_int("MLC_EXPLORE_FULL", 0) > 0 ?
	       " (passages 1-3 where repeatable)" : "", sum.explored,
	       sum.crashes, sum.answers, sum.wrong, sum.hangs);
	fflush(stdout);
}

static void
test_explore(void **state)
{
	char name[96];
	uint64_t t0 = now_ns();
	bool seen[MLC__P_COUNT] = { false };
	uint32_t kinds = 0;

	(void)state;
	if (getenv("MLC_SANITIZED") != NULL)
		slow = 3;
	build_cases();
	results = mmap(NULL, (size_t)ncases * sizeof(*results),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);
	assert_true(results != MAP_FAILED);
	printf("explore: %d cases, %d at a time\n", ncases,
	       env_int("MLC_EXPLORE_JOBS", 4));
	fflush(stdout);
	run_all();
	for (int i = 0; i < ncases; i++) {
		const struct result *r = &results[i];

		if (!seen[cases[i].point]) {
			seen[cases[i].point] = true;
			sum.points++;
		}
		if (cases[i].xop == X_CRASH)
			sum.crashes += r->reached;
		else
			sum.explored += r->reached;
		sum.answers += r->answers;
		sum.wrong += r->wrong;
		sum.hangs += r->hangs;
		sum.blocked += r->blocked;
		sum.page_moves += r->page_moves;
		sum.repairs += r->repairs;
		sum.stale_frees += r->stale_frees;
		sum.orphans += r->orphans;
		sum.evictions += r->evictions;
		sum.steals += r->steals;
		sum.stuck += r->stuck;
		sum.overruns += r->overruns;
		for (int k = 0; k < WK_OTHER; k++) {
			sum.by_kind[k] += r->by_kind[k];
			kinds += r->by_kind[k];
		}
		sum.by_kind[WK_OTHER] += r->wrong - kinds;
		kinds = 0;
		if (r->log[0] == '\0')
			continue;
		case_name(&cases[i], name, sizeof(name));
		printf("explore: [%s] (A: %s)\n%s", name,
		       work_names[cases[i].work], r->log);
	}
	printf("explore: %.1f s\n", (double)(now_ns() - t0) / 1e9);
	fflush(stdout);
	sum.ran = true;
	assert_int_equal(sum.wrong, 0);
	assert_int_equal(sum.hangs, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_explore),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	/* The summary is the last thing printed, pass or fail. */
	if (sum.ran)
		summarize();
	return rc;
}
