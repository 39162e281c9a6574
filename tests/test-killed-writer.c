/*
 * The invalidation log's bound on a writer killed or stopped between its
 * claim and its publish (docs/internals.md, "Bound"): its change reaches
 * every L1 within MLC__LOG_STUCK_MS of its claim, once it is dead, and no
 * L1 serves the old value meanwhile once that time has passed.  Written
 * by a review (2026-12-06) that found each case here failing: a cell
 * given up on while its writer was stopped before its change, the writer
 * killed right after it; a 0 ms old cell given up on after a dead one; a
 * dead writer's cell hidden behind a later-stamped one.
 *
 * Each test stops and kills real fork()ed writers at pause points.  Time
 * is the library's test clock (mlc__clock_advance(), per process): a
 * process that was "stopped for a second" advances its own clock by a
 * second when it resumes, as every process's clock would have moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ck_pr.h>

#include "common.h"
#include "arena.h"
#include "mlc-int.h"
#include "log.h"		/* MLC__LOG_STUCK_MS */
#include "pause.h"

static struct mlc_arena *g_arena;
static char g_name[96];

/* What a writer child does at each pause point it passes. */
enum act { ACT_NONE, ACT_STOP, ACT_DIE };

struct ctl {
	sem_t at[2], go[2];	/* stop number i: posts at[i], waits go[i] */
	int point[4];		/* pause points, in the order they come */
	int act[4];
	int64_t advance[4];	/* ms added to the clock after a stop */
	int n, next, stops;
};

static struct ctl *my_ctl;	/* the one the hook of this process follows */

static struct ctl *
ctl_new(void)
{
	struct ctl *ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ctl != MAP_FAILED);
	memset(ctl, 0, sizeof(*ctl));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sem_init(&ctl->at[i], 1, 0), 0);
		assert_int_equal(sem_init(&ctl->go[i], 1, 0), 0);
	}
	return ctl;
}

static void
ctl_add(struct ctl *ctl, int point, int act, int64_t advance)
{
	ctl->point[ctl->n] = point;
	ctl->act[ctl->n] = act;
	ctl->advance[ctl->n] = advance;
	ctl->n++;
}

static void
hook(enum mlc__pause_point p, void *arg)
{
	struct ctl *ctl = my_ctl;

	(void)arg;
	if (ctl->next >= ctl->n || (int)p != ctl->point[ctl->next])
		return;
	int i = ctl->next++;

	if (ctl->act[i] == ACT_DIE)
		_exit(0);	/* killed here: the call never returns */
	if (ctl->act[i] == ACT_STOP) {
		int s = ctl->stops++;

		sem_post(&ctl->at[s]);
		while (sem_wait(&ctl->go[s]) != 0)
			;
		mlc__clock_advance(ctl->advance[i]);
	}
}

static void
wait_at(struct ctl *ctl, int i)
{
	while (sem_wait(&ctl->at[i]) != 0)
		;
}

static struct mlc_cache *
open_ns(const char *ns, uint32_t flags)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;

	o.flags = flags;
	o.ttl_ms = MLC_TTL_NEVER;
	if (mlc_cache_open(&c, g_arena, ns, &o) != 0)
		_exit(11);
	return c;
}

struct wr {
	const char *key, *val;
	struct ctl *ctl;
	int64_t ahead;		/* ms the child's clock runs ahead */
};

/* A child: installs the hook and sets key = val (or dies on the way). */
static int
writer(void *arg)
{
	const struct wr *w = arg;
	struct mlc_cache *c = open_ns("log", MLC_CACHE_NO_L1);

	alarm(60);
	mlc__clock_advance(w->ahead);
	my_ctl = w->ctl;
	mlc__pause_hook = hook;
	if (mlc_set(c, w->key, strlen(w->key), w->val, strlen(w->val),
		    NULL) != 0)
		_exit(12);
	mlc__pause_hook = NULL;
	mlc_cache_close(c);
	return 0;
}

/* A child: installs the hook and purges namespace "other" (or dies on
 * the way).  A purge takes no stripe lock. */
static int
purger(void *arg)
{
	const struct wr *w = arg;
	struct mlc_cache *c = open_ns("other", MLC_CACHE_NO_L1);

	alarm(60);
	my_ctl = w->ctl;
	mlc__pause_hook = hook;
	if (mlc_purge(c) != 0)
		_exit(12);
	mlc__pause_hook = NULL;
	mlc_cache_close(c);
	return 0;
}

/* A get without a loader: the bytes (static buffer), or "(miss)". */
static const char *
get(struct mlc_cache *c, const char *key, uint32_t *level)
{
	static char buf[64];
	struct mlc_value v = { 0 };
	int rc = mlc_get(c, key, strlen(key), NULL, NULL, &v);

	if (rc != 0)
		return "(miss)";
	snprintf(buf, sizeof(buf), "%.*s", (int)v.len, (const char *)v.data);
	if (level != NULL)
		*level = v.level;
	mlc_value_release(&v);
	return buf;
}

static void
setup(void)
{
	g_arena = t_arena(g_name, sizeof(g_name), 0, 0);
}

/* A new arena; *@p w a handle that writes (no L1), *@p r one that reads,
 * with k = "old" in its L1. */
static void
begin(struct mlc_cache **w, struct mlc_cache **r)
{
	setup();
	*w = open_ns("log", MLC_CACHE_NO_L1);
	*r = open_ns("log", 0);
	assert_int_equal(mlc_set(*w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(*r, "k", NULL), "old");
}

/* Take the next log number and put @p bits in its cell's word, with the
 * number's own sequence if @p own (a writer's word, or garbage). */
static void
word_at_head(bool own, uint64_t bits)
{
	uint64_t s = ck_pr_faa_64(&g_arena->log->lg_head, 1);

	ck_pr_store_64(&g_arena->cells[s & (g_arena->log_cells - 1)].lc_seq,
		       (own ? s + 1 : 0) | bits);
}

static int
td(void **state)
{
	(void)state;
	if (g_arena != NULL)
		mlc_arena_close(g_arena);
	g_arena = NULL;
	t_cleanup();
	return 0;
}

/*
 * 1. A cell stamped late hides a dead writer's cell behind it.
 *
 * Writer A takes its log number (LOG_NUMBERED) and is descheduled there
 * for a second.  Writer B numbers after it, claims and stamps its cell,
 * sets "b" in L2 and is killed before it publishes.  A resumes, claims its
 * cell (no reader looked meanwhile, so nobody gave it up) and stamps it
 * with the time now, then stops again before its change (LOG_CLAIMED).
 * A reader that was idle all along now reads "b": B's claim is 1020 ms
 * old, far past the 100 ms bound, but the reader times its wait at A's
 * cell by A's own, 20 ms old stamp (held_back() stops at a cell's own
 * stamp) and the look-ahead only applies published cells: B's dead cell
 * sits in the skip list with nobody timing it.  The reader serves the old
 * "b" from L1 until 100 ms after A's late claim: the overrun is as long as
 * A stayed between its fetch-and-add and its claim.
 */
static void
test_late_stamp_hides_dead_writer(void **state)
{
	struct wr wa = { "a", "a-new", NULL, 0 };
	struct wr wb = { "b", "b-new", NULL, 0 };
	struct mlc_cache *w, *r;
	struct ctl *ca, *cb;
	uint32_t lvl = 0;
	const char *got;
	bool bad;
	int pa;

	(void)state;
	setup();
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "b", 1, "b-old", 5, NULL), 0);
	assert_string_equal(get(r, "b", NULL), "b-old");
	assert_string_equal(get(r, "b", &lvl), "b-old");
	assert_int_equal(lvl, MLC_L1);

	/* A: numbered, then stopped (1 s) before its claim CAS. */
	ca = ctl_new();
	ctl_add(ca, MLC__P_LOG_NUMBERED, ACT_STOP, 1000);
	ctl_add(ca, MLC__P_LOG_CLAIMED, ACT_STOP, 0);
	wa.ctl = ca;
	pa = t_spawn(writer, &wa);
	wait_at(ca, 0);

	/* B: claims after A's number, changes L2, killed before publishing. */
	cb = ctl_new();
	ctl_add(cb, MLC__P_LOG_STORED, ACT_DIE, 0);
	wb.ctl = cb;
	assert_int_equal(t_fork(writer, &wb), 0);

	/* A resumes a second later: claims, stamps, stops before its change. */
	sem_post(&ca->go[0]);
	wait_at(ca, 1);

	/* The reader has been idle; time is now B's claim + 1020 ms. */
	mlc__clock_advance(1020);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		/* L2 holds B's value. */
		assert_string_equal(get(fresh, "b", NULL), "b-new");
		mlc_cache_close(fresh);
	}
	got = get(r, "b", &lvl);
	fprintf(stderr, "reader, %d ms after the killed writer's claim: "
		"\"%s\" (level %u)\n", 1020, got, lvl);
	bad = strcmp(got, "b-new") != 0;
	/* It is A's late stamp that governs: 100 ms after it, "b-new". */
	mlc__clock_advance(MLC__LOG_STUCK_MS);
	got = get(r, "b", &lvl);
	fprintf(stderr, "reader, %d ms after the killed writer's claim: \"%s\" (level %u)\n",
		1020 + MLC__LOG_STUCK_MS, got, lvl);
	sem_post(&ca->go[1]);
	assert_int_equal(t_wait(pa), 0);
	assert_false(bad);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 2. A writer stopped past MLC__LOG_STUCK_MS after its claim, then killed
 * right after its L2 change (before it publishes).
 *
 * The reader gives up on the cell after 100 ms and passes it, keeping the
 * old value in L1: allowed, the change has not been made.  The writer
 * resumes, sets the key in L2, and is killed at LOG_STORED.  Until
 * 2026-12-06 its change then had no record and no unpublished cell: the
 * reader served the old value from L1 for its whole TTL (here: never).
 * Now the writer finds the mark before its change and claims a fresh cell,
 * marked CHANGING; the reader passes that one only once the writer is
 * proven dead, and drops its L1 then.
 */
static void
test_abandoned_then_killed(void **state)
{
	struct wr wk = { "k", "new", NULL, 0 };
	struct ctl *ck;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	int pk;

	(void)state;
	begin(&w, &r);

	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CLAIMED, ACT_STOP, MLC__LOG_STUCK_MS + 1);
	ctl_add(ck, MLC__P_LOG_STORED, ACT_DIE, 0);
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* Held back: old from L1 (allowed). */
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);
	/* 101 ms: the reader passes the cell; its writer has not begun its
	 * change, so L1 stays (until 2026-12-06 it was cleared, and this
	 * reloaded "old" from L2: the same value either way). */
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	assert_string_equal(get(r, "k", &lvl), "old");
	/* The writer goes on, changes L2 and is killed before publishing. */
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pk), 0);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		assert_string_equal(get(fresh, "k", NULL), "new");
		mlc_cache_close(fresh);
	}
	mlc__clock_advance(10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "reader, 10 s after the killed writer's claim: "
		"\"%s\" (level %u)\n", got, lvl);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 3. The same without any long stop: a cell 0 ms old given up on.
 *
 * Writer D claims a cell and is killed there (no change).  150 ms later
 * writer W sets "k": it claims the next cell (stamped now) and is killed
 * right after its L2 change, before its publish: the very case the bound
 * covers (100 ms after its claim).  But the reader, idle until then, gives
 * up on D's cell and then on W's at once, in the same call: held_back()
 * keeps the time it was first held back (D's stamp) for every cell
 * numbered before it looked (stuck_head), and takes a cell's own later
 * stamp only if it is older.  So it marks W's 0 ms old cell ABANDONED,
 * clears L1 and reloads "old" from L2 before W's change; W's change then
 * comes with no record and no unpublished cell: "old" for the whole TTL.
 * Here W stops at LOG_CLAIMED only so that the reader's get falls between
 * its claim and its change; no clock moves while it is stopped.
 */
static void
test_fresh_cell_given_up_then_killed(void **state)
{
	struct wr wd = { "d", "d-new", NULL, 0 }, wk = { "k", "new", NULL, 0 };
	struct ctl *cd, *ck;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	int pk;

	(void)state;
	begin(&w, &r);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);

	/* D: claims, killed before any change. */
	cd = ctl_new();
	ctl_add(cd, MLC__P_LOG_CLAIMED, ACT_DIE, 0);
	wd.ctl = cd;
	assert_int_equal(t_fork(writer, &wd), 0);

	/* 150 ms later W claims (stamped now), stops before its change. */
	mlc__clock_advance(150);
	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CLAIMED, ACT_STOP, 0);
	ctl_add(ck, MLC__P_LOG_STORED, ACT_DIE, 0);
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* The reader gives up on D's cell (150 ms) and on W's (0 ms). */
	got = get(r, "k", &lvl);
	fprintf(stderr, "reader while W is 0 ms past its claim: \"%s\" "
		"(level %u), log_stuck so far: ", got, lvl);
	{
		struct mlc_stats st = MLC_STATS_INIT;

		assert_int_equal(mlc_stats(r, &st), 0);
		fprintf(stderr, "%llu\n", (unsigned long long)st.log_stuck);
	}
	/* W goes on (no time passes), changes L2, killed before publishing. */
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pk), 0);
	mlc__clock_advance(10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "reader, 10 s after W's claim: \"%s\" (level %u)\n",
		got, lvl);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 4. A writer stopped inside its change (LOG_CHANGING: cell marked, stripes
 * held, L2 not yet written) for longer than MLC__LOG_STUCK_MS, then let go.
 *
 * While it is stopped, the reader may not pass its cell (the change may
 * come at any moment) and may not keep serving the old value from L1
 * after the bound: every get goes to L2.  Once the writer publishes, the
 * reader serves the new value, and L1 works again.
 */
static void
test_stopped_inside_change(void **state)
{
	struct wr wk = { "k", "new", NULL, 0 };
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	struct ctl *ck;
	uint64_t t0;
	int pk;

	(void)state;
	begin(&w, &r);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);

	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	wk.ctl = ck;
	t0 = mlc__now_ms();	/* before W's claim */
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* Within the bound: L1 may serve the old value, and does, if the
	 * bound has not passed since W's claim (a loaded machine may take
	 * longer than that to get here: then it is held, as below). */
	assert_string_equal(get(r, "k", &lvl), "old");
	if (mlc__now_ms() - t0 < MLC__LOG_STUCK_MS)
		assert_int_equal(lvl, MLC_L1);
	/* Past it, the writer alive: nothing from L1, however often. */
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(get(r, "k", &lvl), "old");
		assert_int_equal(lvl, MLC_L2);
		mlc__clock_advance(1000);
	}
	assert_int_equal(mlc_stats(r, &st), 0);
	assert_int_equal(st.log_stuck, 1);	/* one cell, counted once */
	/* Let go: it publishes, and L1 serves the new value again. */
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pk), 0);
	assert_string_equal(get(r, "k", &lvl), "new");
	assert_string_equal(get(r, "k", &lvl), "new");
	assert_int_equal(lvl, MLC_L1);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 5. A writer killed inside its change (LOG_CHANGING), before writing L2:
 * proven dead, its cell is passed, and L1 works again (nothing changed).
 */
static void
test_killed_inside_change(void **state)
{
	struct wr wk = { "k", "new", NULL, 0 };
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	struct ctl *ck;

	(void)state;
	begin(&w, &r);
	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CHANGING, ACT_DIE, 0);
	wk.ctl = ck;
	assert_int_equal(t_fork(writer, &wk), 0);
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);
	/* The writer's stripes are repaired by the next writer. */
	assert_int_equal(mlc_set(w, "k", 1, "newer", 5, NULL), 0);
	assert_string_equal(get(r, "k", &lvl), "newer");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* ---- found by a review of the CHANGING mark (2026-12-06) ------------ */

#define CHANGING_BIT (UINT64_C(1) << 61)
#define WRITING_BIT (UINT64_C(1) << 63)
#define REPUBLISH_BIT (UINT64_C(1) << 60)
#define MLC__LOG_ORPHAN_MS_T 1000	/* log.c: MLC__LOG_ORPHAN_MS */


/* n records by the parent: a writer a lap ahead.  Purges of another
 * namespace, which take no stripe lock: a set of a key sharing a stripe
 * with a writer stopped inside its change would wait for it (the test
 * hung until the writer's alarm, whenever the arena's seed put a lap key
 * beside "k"). */
static void
lap(struct mlc_cache *w, int n)
{
	struct mlc_cache *p = open_ns("lap", MLC_CACHE_NO_L1);

	(void)w;
	for (int i = 0; i < n; i++)
		assert_int_equal(mlc_purge(p), 0);
	mlc_cache_close(p);
}

/*
 * 6 (J1). A writer stopped inside its change (cell CHANGING, stripes held, L2
 * not written) while the log laps.  The claim CAS of the writer a lap
 * ahead (mlc__log_claim(): any SEQ below its own) takes the CHANGING cell
 * over; the reader, lapped, clears L1, starts over past it and reloads
 * the old value from L2.  The writer goes on, writes L2 and is killed
 * before publishing: no CHANGING cell is left for anyone to judge, no
 * record: the reader serves "old" for the whole TTL.
 */
static void
test_changing_cell_lapped_then_killed(void **state)
{
	struct wr wk = { "k", "new", NULL, 0 };
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	struct ctl *ck;
	int pk;

	(void)state;
	begin(&w, &r);

	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	ctl_add(ck, MLC__P_LOG_STORED, ACT_DIE, 0);
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* A lap of other writes takes the CHANGING cell over. */
	lap(w, (int)g_arena->log_cells + 8);
	/* The reader is lapped: L1 cleared, "old" reloaded from L2 (the
	 * writer has not written it yet: allowed). */
	assert_string_equal(get(r, "k", NULL), "old");
	/* The writer writes L2 and is killed before publishing. */
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pk), 0);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		assert_string_equal(get(fresh, "k", NULL), "new");
		mlc_cache_close(fresh);
	}
	mlc__clock_advance(10000);
	(void)get(r, "k", &lvl);
	mlc__clock_advance(10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "J1: reader, 20 s after the killed writer's change: "
		"\"%s\" (level %u)\n", got, lvl);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* Hook of J2: at LOG_STORED (L2 written, before mlc__log_fill()), do what
 * cell_fill()'s first store does (the record's hash over the identity's
 * first word), then die: a kill between cell_fill()'s stores and its CAS. */
static void
hook_torn(enum mlc__pause_point p, void *arg)
{
	(void)arg;
	if (p != MLC__P_LOG_STORED)
		return;
	for (uint32_t i = 0; i < g_arena->log_cells; i++) {
		struct mlc__log_cell *c = &g_arena->cells[i];
		uint64_t v = ck_pr_load_64(&c->lc_seq);

		if ((v & (WRITING_BIT | CHANGING_BIT)) ==
		    (WRITING_BIT | CHANGING_BIT))
			ck_pr_store_64(&c->lc_hash, UINT64_C(0x1234567));
	}
	_exit(0);
}

static int
writer_torn(void *arg)
{
	const struct wr *w = arg;
	struct mlc_cache *c = open_ns("log", MLC_CACHE_NO_L1);

	alarm(60);
	mlc__pause_hook = hook_torn;
	(void)mlc_set(c, w->key, strlen(w->key), w->val, strlen(w->val), NULL);
	_exit(13);
}

/*
 * 7 (J2). A writer killed inside cell_fill() (after its first payload store,
 * before its publish CAS): its cell stays WRITING|CHANGING, but its
 * identity is gone (torn), so writer_dead() says "cannot tell" forever:
 * every handle drops its L1 on every call until the log laps (65,536
 * writes at the default size).  Before c71a366 the cell was passed after
 * 100 ms.  Expected: like test_killed_inside_change, once the writer is
 * dead L1 works again.
 */
static void
test_killed_in_fill_disables_l1(void **state)
{
	struct wr wk = { "k", "new", NULL, 0 };
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	int l1 = 0;

	(void)state;
	begin(&w, &r);
	assert_int_equal(t_fork(writer_torn, &wk), 0);
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	for (int i = 0; i < 20; i++) {
		assert_string_equal(get(r, "k", &lvl), "new");
		l1 += lvl == MLC_L1;
		mlc__clock_advance(1000);
	}
	assert_int_equal(mlc_stats(r, &st), 0);
	fprintf(stderr, "J2: 20 gets over 20 s after the writer died: %d "
		"from L1, log_stuck %llu, hits_l1 %llu\n", l1,
		(unsigned long long)st.log_stuck,
		(unsigned long long)st.hits_l1);
	assert_true(l1 >= 18);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 8 (J3). Two live writers stopped inside their changes (two CHANGING cells):
 * changing_stuck() counted a cell in log_stuck whenever lr->held was not
 * it, and the cursor's cell and the look-ahead's alternated: log_stuck
 * grew by two on every get.  Now a held cell counts once, when the
 * cursor holds it.
 */
static void
test_two_held_cells_counted_once(void **state)
{
	struct wr wa = { "a", "a-new", NULL, 0 }, wk = { "k", "new", NULL, 0 };
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	struct ctl *ca, *ck;
	int pa, pk;

	(void)state;
	begin(&w, &r);
	/* A purge of another namespace (no stripe lock: a second set could
	 * wait on the first's stripe, whenever the arena's seed puts the two
	 * keys together), then a set. */
	ca = ctl_new();
	ctl_add(ca, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	wa.ctl = ca;
	pa = t_spawn(purger, &wa);
	wait_at(ca, 0);
	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	for (int i = 0; i < 10; i++)
		(void)get(r, "k", NULL);
	assert_int_equal(mlc_stats(r, &st), 0);
	fprintf(stderr, "J3: two held cells, 10 gets: log_stuck %llu\n",
		(unsigned long long)st.log_stuck);
	sem_post(&ca->go[0]);
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pa), 0);
	assert_int_equal(t_wait(pk), 0);
	/* The cursor's cell counts once; the one behind it is counted
	 * when the cursor holds it, which it never does here (both
	 * publish).  Before, each get added two. */
	assert_int_equal(st.log_stuck, 1);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

static int
reader_get(void *arg)
{
	struct mlc_cache *r = open_ns("log", 0);

	(void)arg;
	(void)get(r, "k", NULL);
	mlc_cache_close(r);
	return 0;
}

/*
 * 9 (J4). A garbled cell: its own sequence with CHANGING but neither WRITING
 * nor ABANDONED.  mlc__log_apply() breaks out of its spin (not WRITING),
 * takes the CHANGING branch, changing_stuck() answers CH_NO (not exactly
 * WRITING|CHANGING) and the loop "looks again" at the same cell forever:
 * mlc_get never returns (any handle, also a fresh one, which
 * mlc__log_start() stops at the cell).  Expected: the get returns.
 */
static void
test_garbled_changing_cell_hangs(void **state)
{
	int pid, rc;

	(void)state;
	setup();
	word_at_head(true, CHANGING_BIT);
	pid = t_spawn(reader_get, NULL);
	/* The bug spins for ever: a cap far above a slow machine's (or a
	 * sanitizer's) time for one get. */
	rc = t_wait_ms(pid, 30000);
	if (rc < 0) {
		kill(pid, SIGKILL);
		(void)t_wait(pid);
	}
	fprintf(stderr, "J4: reader get over a garbled cell: %s\n",
		rc < 0 ? "still spinning after 30 s (killed)" : "returned");
	assert_int_equal(rc, 0);
}

/*
 * 10 (J5). The second cell of mlc__log_fill() (a record published more than a
 * lap late goes out again) is not "marked CHANGING at once" (log.c:249):
 * between its claim and mlc__log_changing()'s CAS (the pause point
 * LOG_CLAIMED inside mlc__log_claim()) it is a plain claimed cell, which a
 * handle gives up on after 100 ms keeping its L1, as if nothing had
 * changed; but the change is made.  Here: W claims and stops before its
 * change; the log laps while the writer numbered a lap after W is stopped
 * at LOG_NUMBERED (so W's cell is not taken over); the reader, lapped,
 * starts over at W's cell's index and reloads "old" (allowed: W has not
 * changed L2); W goes on, changes L2, publishes a lap late, claims the
 * second cell and is killed there.  The reader passes the second cell
 * (not CHANGING) with "old" in L1, for the whole TTL.
 */
static void
test_republish_cell_not_changing(void **state)
{
	/* W's clock 10 s ahead: X's set, half a lap behind, reads the log
	 * from W's cell before it claims, and must take W's claim for fresh
	 * however slow the machine.  Had the lap and X's start taken
	 * MLC__LOG_STUCK_MS, X gave up on W's cell (rightly), and W claimed
	 * again before its change and died there, before it: nothing left
	 * to test, and "old" the right answer (CI on a loaded machine,
	 * 2026-12-06). */
	struct wr wk = { "k", "new", NULL, 10000 }, wx = { "x", "x", NULL, 0 };
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	struct ctl *ck, *cx;
	int pk, px;

	(void)state;
	begin(&w, &r);

	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CLAIMED, ACT_STOP, 0);	/* its claim */
	ctl_add(ck, MLC__P_LOG_CLAIMED, ACT_DIE, 0);	/* the second one */
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* cells - 1 records after W's, then X numbered a lap after W. */
	lap(w, (int)g_arena->log_cells - 1);
	cx = ctl_new();
	ctl_add(cx, MLC__P_LOG_NUMBERED, ACT_STOP, 0);
	wx.ctl = cx;
	px = t_spawn(writer, &wx);
	wait_at(cx, 0);
	/* The reader is lapped, starts over at W's cell, reloads "old". */
	assert_string_equal(get(r, "k", NULL), "old");
	/* W changes L2, publishes a lap late, claims again, is killed. */
	sem_post(&ck->go[0]);
	assert_int_equal(t_wait(pk), 0);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		assert_string_equal(get(fresh, "k", NULL), "new");
		mlc_cache_close(fresh);
	}
	for (int i = 0; i < 3; i++) {
		mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
		(void)get(r, "k", &lvl);
	}
	mlc__clock_advance(10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "J5: reader, 10 s after the killed writer's change: "
		"\"%s\" (level %u)\n", got, lvl);
	sem_post(&cx->go[0]);
	assert_int_equal(t_wait(px), 0);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* ---- found by a second review of the log (2026-12-06) --------------- */

static int die_at = -1;		/* pause point where the writer dies */

static void
hook_die(enum mlc__pause_point p, void *arg)
{
	(void)arg;
	if ((int)p == die_at)
		_exit(0);
}

/* Sets k = "new" and dies at LOG_STORED (L2 written, cell CHANGING,
 * not published). */
static int
writer_dies_stored(void *arg)
{
	struct mlc_cache *c = open_ns("log", MLC_CACHE_NO_L1);

	(void)arg;
	alarm(60);
	die_at = MLC__P_LOG_STORED;
	mlc__pause_hook = hook_die;
	(void)mlc_set(c, "k", 1, "new", 3, NULL);
	_exit(12);		/* not reached */
}

/* A process of a pid namespace of its own (as a container sharing the
 * host's /dev/shm): unshare, then the writer runs as pid 1 in it. */
static int
foreign_ns_writer(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWPID) != 0)
		return 77;
	return t_fork(writer_dies_stored, NULL);
}

/*
 * 11 (K1). A writer of another pid namespace killed inside its change (after its
 * L2 write, before its publish).  claimer() can never prove it dead
 * (mlc__proc_dead() answers "cannot tell" = alive), so its CHANGING cell is
 * CH_HELD for ever: every handle drops its L1 on every call.  And since
 * 2330c46 a writer a lap ahead never takes a live CHANGING cell
 * (claimable()), so not even a lap ends it: each lap the lapped handle
 * starts over (mlc__log_start() stops at the cell) and is held again.  L1
 * never serves again in any handle of the arena, until it is recreated.
 */
static void
test_foreign_ns_writer_killed_in_change(void **state)
{
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	int rc, l1 = 0;

	(void)state;
	begin(&w, &r);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);

	rc = t_fork(foreign_ns_writer, NULL);
	if (rc == 77)
		skip();
	assert_int_equal(rc, 0);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		assert_string_equal(get(fresh, "k", NULL), "new");
		mlc_cache_close(fresh);
	}
	/* 10 s later, then two laps of other writes, 10 s each. */
	for (int round = 0; round < 3; round++) {
		mlc__clock_advance(10000);
		for (int i = 0; i < 5; i++) {
			assert_string_equal(get(r, "k", &lvl), "new");
			l1 += lvl == MLC_L1;
		}
		lap(w, (int)g_arena->log_cells + 8);
	}
	mlc__clock_advance(10000);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(get(r, "k", &lvl), "new");
		l1 += lvl == MLC_L1;
	}
	assert_int_equal(mlc_stats(r, &st), 0);
	fprintf(stderr, "K1: 20 gets over 40 s and 3 laps after a foreign-"
		"namespace writer died in its change: %d from L1 (hits_l1 "
		"%llu, log_stuck %llu, log_overruns %llu)\n", l1,
		(unsigned long long)st.hits_l1,
		(unsigned long long)st.log_stuck,
		(unsigned long long)st.log_overruns);
	assert_true(l1 >= 10);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* The same writer, of our pid namespace, whose first use came while it
 * had no file descriptor to spare (EMFILE): it stamped its claim without a
 * start time.  Its pid gone proves it dead (proc.c), so its cell is
 * passed at once, not 10 s after its claim as one no process can judge:
 * meanwhile every handle's L1 was dropped on every call (review AH).
 * The test clock stands still here; the gets span about a second. */
static int
emfile_writer(void *arg)
{
	if (t_fds_none() != 0)
		return 20;
	return writer_dies_stored(arg);
}

static void
test_emfile_writer_killed_in_change(void **state)
{
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	int old = 0, l1 = 0;

	(void)state;
	begin(&w, &r);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);
	assert_int_equal(t_fork(emfile_writer, NULL), 0);
	for (int i = 0; i < 100; i++) {
		const char *got = get(r, "k", &lvl);

		if (strcmp(got, "new") == 0)
			break;
		assert_string_equal(got, "old");
		old++;
		usleep(20000);		/* past the handle's PROBE_MS */
	}
	for (int i = 0; i < 40; i++) {
		assert_string_equal(get(r, "k", &lvl), "new");
		l1 += lvl == MLC_L1;
		usleep(20000);
	}
	fprintf(stderr, "a writer without a start time killed in its "
		"change: %d gets of the old value (before its cell's wait), "
		"then %d of 40 from L1\n", old, l1);
	assert_true(l1 >= 20);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* 20 rounds of 600 ms (12 s in all), each a lap of writes in quarters
 * with two gets of k after each quarter (so that a handle that keeps up is
 * never lapped): how many of the second gets L1 answered (of 80). */
static int
laps_of_gets(struct mlc_cache *w, struct mlc_cache *r)
{
	uint32_t lvl = 0;
	int l1 = 0;

	for (int round = 0; round < 20; round++) {
		mlc__clock_advance(600);
		for (int q = 0; q < 4; q++) {
			lap(w, (int)g_arena->log_cells / 4 + 2);
			(void)get(r, "k", &lvl);
			(void)get(r, "k", &lvl);
			l1 += lvl == MLC_L1;
		}
	}
	return l1;
}

/*
 * 12 (K2). A CHANGING cell with no identity (the republish cell of
 * mlc__log_fill() whose writer died between its claim CAS and
 * claim_stamp(); here written directly, as test_garbled_changing_cell_hangs
 * does) is passed only once the cursor has held it for
 * MLC__LOG_ORPHAN_MS *at the same record* (lr->held == s + 1).  It is
 * never taken by a later lap (claimable()), so each lap the handle is
 * lapped, starts over at the same cell under the next lap's number, and
 * the 1 s starts again.  With a lap of writes per second or faster (64
 * cells: 64 writes/s; the default 65,536 cells: a busy cache), the cell
 * is never passed: L1 dropped on every call, for ever.
 */
static void
test_orphan_timer_restarts_each_lap(void **state)
{
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	int l1;

	(void)state;
	begin(&w, &r);
	/* An identity-less CHANGING cell at the head, claimed so at once
	 * (a record published again, whose writer died before stamping). */
	word_at_head(true, WRITING_BIT | CHANGING_BIT | REPUBLISH_BIT);
	l1 = laps_of_gets(w, r);
	assert_int_equal(mlc_stats(r, &st), 0);
	fprintf(stderr, "K2: 12 s after an identity-less CHANGING cell, a "
		"lap of writes per 600 ms: %d of 80 gets from L1 (log_stuck "
		"%llu, log_overruns %llu)\n", l1,
		(unsigned long long)st.log_stuck,
		(unsigned long long)st.log_overruns);
	assert_true(l1 >= 60);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* @p cells identity-less CHANGING cells at the head (records published
 * again whose writers died before stamping), then 12 s of gets without
 * laps: how many of 5 gets after are answered from L1. */
static int
orphans_then_gets(int cells)
{
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	int l1 = 0;

	begin(&w, &r);
	for (int i = 0; i < cells; i++)
		word_at_head(true, WRITING_BIT | CHANGING_BIT | REPUBLISH_BIT);
	for (int round = 0; round < 20; round++) {
		mlc__clock_advance(600);
		(void)get(r, "k", &lvl);
	}
	for (int i = 0; i < 5; i++) {
		(void)get(r, "k", &lvl);
		l1 += lvl == MLC_L1;
	}
	mlc_cache_close(r);
	mlc_cache_close(w);
	return l1;
}

/*
 * 12b (K2b, control). The same cell without laps: passed after 1 s.
 */
static void
test_orphan_passed_without_laps(void **state)
{
	int l1;

	(void)state;
	l1 = orphans_then_gets(1);
	fprintf(stderr, "K2b: control without laps: %d of 5 gets from L1\n",
		l1);
	assert_true(l1 >= 3);
}

/*
 * 13c. Two identity-less CHANGING cells at once (two records published
 * again whose writers died before stamping): the cursor waits at the
 * first, the look-ahead reaches the second.  Both timed the orphan wait
 * in the handle's one slot (lr->orphan): each restarted the other's on
 * every call, neither was ever passed, and every get missed L1 for good.
 * Now only the cursor times it: the second waits its turn, and both are
 * passed, a second each.
 */
static void
test_two_orphans_at_once(void **state)
{
	int l1;

	(void)state;
	l1 = orphans_then_gets(2);
	fprintf(stderr, "K2d: two identity-less cells, 12 s: %d of 5 gets "
		"from L1\n", l1);
	assert_true(l1 >= 3);
}

/* 12c (K2c, control). The same rounds of writes without the cell: L1 serves. */
static void
test_laps_without_orphan(void **state)
{
	struct mlc_cache *w, *r;
	int l1;

	(void)state;
	begin(&w, &r);
	l1 = laps_of_gets(w, r);
	fprintf(stderr, "K2c: control, laps without the cell: %d of 80 "
		"gets from L1\n", l1);
	assert_true(l1 >= 60);
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/*
 * 13 (K3). A cell word with a sequence far beyond the head (a garbled arena:
 * no writer makes it).  Every mlc__log_apply() takes it for "a writer a
 * lap ahead" (SEQ(q1) > s + 1): overrun, L1 cleared, mlc__log_start()
 * (a lap's scan), which stops at that very cell; and no writer ever
 * takes it (claimable(): SEQ(v) < s + 1).  Every get of every handle
 * drops L1 and scans the log, for ever.  (Pre-existing: the same two
 * checks before c71a366.)
 */
static void
test_future_seq_word(void **state)
{
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	int l1 = 0;

	(void)state;
	begin(&w, &r);
	word_at_head(false, UINT64_C(1) << 60);
	for (int round = 0; round < 5; round++) {
		mlc__clock_advance(10000);
		lap(w, (int)g_arena->log_cells + 8);
		for (int i = 0; i < 4; i++) {
			(void)get(r, "k", &lvl);
			l1 += lvl == MLC_L1;
		}
	}
	assert_int_equal(mlc_stats(r, &st), 0);
	fprintf(stderr, "K3: 20 gets over 50 s after a future-sequence "
		"word: %d from L1 (log_overruns %llu)\n", l1,
		(unsigned long long)st.log_overruns);
	assert_true(l1 >= 10);
	mlc_cache_close(r);
	mlc_cache_close(w);
}


/* ---- found by review L (2026-12-06) ---------------------------------- */

/*
 * 16 (L1). A claimer's identity stores land after a later lap's claim of
 * the same cell, so a live writer inside its change is taken for an
 * orphan and passed.
 *
 * Writer X claims its cell (the claim CAS) and is descheduled before
 * claim_stamp()'s stores land.  A reader gives up on X's cell (not
 * CHANGING: L1 stays).  The log laps; writer Y's number maps to the same
 * cell, which is claimable (ABANDONED), and Y claims and stamps it and
 * stops inside its change (LOG_CHANGING) for a second.  X's stores
 * (lk_who, lk_start, lk_stamp for X's sequence) now land over Y's claim
 * record: claim_stamp() writes them unconditionally, whatever happened to
 * the cell since the CAS.  Here X stops at LOG_CLAIMED and the test
 * replays the three stores it had made, after Y's (the same words X
 * stores when the stores are late).  The reader finds Y's cell CHANGING
 * with no identity under Y's stamp (WHO_UNKNOWN), holds it 1 s
 * (MLC__LOG_ORPHAN_MS) and then passes it as a dead writer's, while Y
 * lives: L1 dropped, "old" reloaded from L2 before Y's change.  Y goes on,
 * writes L2, and is killed before publishing (its publish would fail on
 * the ABANDONED mark and go out again: it never gets there).  No cell is
 * left unpublished, no record: "old" from L1 for the whole TTL.
 */
static void
test_late_identity_passes_live_writer(void **state)
{
	struct wr wx = { "x", "x-new", NULL, 0 }, wy = { "k", "new", NULL, 0 };
	struct mlc__log_claim saved;
	struct ctl *cx, *cy;
	struct mlc_cache *w, *r;
	uint64_t s, mask, idx, head, v;
	uint32_t lvl = 0;
	const char *got;
	int px, py;

	(void)state;
	setup();
	mask = g_arena->log_cells - 1;
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(r, "k", NULL), "old");
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);

	/* X claims (number s) and stops. */
	cx = ctl_new();
	ctl_add(cx, MLC__P_LOG_CLAIMED, ACT_STOP, 0);
	wx.ctl = cx;
	px = t_spawn(writer, &wx);
	wait_at(cx, 0);
	s = ck_pr_load_64(&g_arena->log->lg_head) - 1;
	idx = s & mask;
	assert_int_equal(ck_pr_load_64(&g_arena->cells[idx].lc_seq),
			 (s + 1) | WRITING_BIT);
	/* What X's claim_stamp() stored: replayed below, as if late. */
	saved.lk_who = ck_pr_load_64(&g_arena->claims[idx].lk_who);
	saved.lk_start = ck_pr_load_64(&g_arena->claims[idx].lk_start);
	saved.lk_stamp = ck_pr_load_64(&g_arena->claims[idx].lk_stamp);

	/* The reader gives up on X's cell (not CHANGING: L1 stays). */
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	assert_string_equal(get(r, "k", NULL), "old");
	assert_true(ck_pr_load_64(&g_arena->cells[idx].lc_seq) &
		    (UINT64_C(1) << 62));

	/* Other writes up to the number before Y's, Y's at X's cell. */
	head = ck_pr_load_64(&g_arena->log->lg_head);
	lap(w, (int)(s + g_arena->log_cells - head));
	assert_int_equal(ck_pr_load_64(&g_arena->log->lg_head),
			 s + g_arena->log_cells);
	/* The reader follows (no lap for it). */
	assert_string_equal(get(r, "k", &lvl), "old");

	cy = ctl_new();
	ctl_add(cy, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	ctl_add(cy, MLC__P_LOG_STORED, ACT_DIE, 0);
	wy.ctl = cy;
	py = t_spawn(writer, &wy);
	wait_at(cy, 0);
	v = ck_pr_load_64(&g_arena->cells[idx].lc_seq);
	assert_int_equal(v, (s + g_arena->log_cells + 1) | WRITING_BIT |
			    CHANGING_BIT);

	/* X's claim_stamp() stores land now, over Y's claim record. */
	ck_pr_store_64(&g_arena->claims[idx].lk_who, saved.lk_who);
	ck_pr_store_64(&g_arena->claims[idx].lk_start, saved.lk_start);
	ck_pr_fence_store();
	ck_pr_store_64(&g_arena->claims[idx].lk_stamp, saved.lk_stamp);

	/* Y (alive, inside its change) is held: nothing from L1, and no
	 * longer passed after the orphan second (its cell was not claimed
	 * CHANGING at once, and X's words do not read as an identity for
	 * it), only after MLC__LOG_LEASE_MS: until 2026-12-06 it was passed
	 * as dead, and "old" reloaded. */
	mlc__clock_advance(MLC__LOG_STUCK_MS + 1);
	(void)get(r, "k", &lvl);
	mlc__clock_advance(MLC__LOG_ORPHAN_MS_T + 1);
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L2);
	fprintf(stderr, "L1: Y alive in its change, its cell now %s\n",
		(ck_pr_load_64(&g_arena->cells[idx].lc_seq) &
		 (UINT64_C(1) << 62)) ? "ABANDONED (passed)" : "held");
	assert_false(ck_pr_load_64(&g_arena->cells[idx].lc_seq) &
		     (UINT64_C(1) << 62));

	/* Y writes L2 and is killed before publishing; X is killed too. */
	sem_post(&cy->go[0]);
	assert_int_equal(t_wait(py), 0);
	kill(px, SIGKILL);
	(void)t_wait(px);
	{
		struct mlc_cache *fresh = open_ns("log", 0);

		assert_string_equal(get(fresh, "k", NULL), "new");
		mlc_cache_close(fresh);
	}
	mlc__clock_advance(10000);
	(void)get(r, "k", &lvl);
	mlc__clock_advance(10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "L1: reader, 20 s after Y was killed after its "
		"change: \"%s\" (level %u)\n", got, lvl);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

/* ---- found by review N, of the log (2026-12-07) -------------------- */

/*
 * A writer killed after its change (LOG_STORED) while the reader was idle
 * for 25 days (its last get before, its next after).  A claim's stamp
 * keeps the low 32 bits of the ms clock, and age_of() read a difference
 * of 2^31 ms or more (24.9 days) as a stamp a moment ahead of the clock:
 * 0 ms old.  The dead writer's CHANGING cell was then never old enough to
 * judge its writer (CH_WAIT), and the reader served the old value from L1
 * until the difference wrapped past 2^32 ms (49.7 days), 25 days past the
 * bound.  A stamp reads as ahead only by up to MLC__LOG_AHEAD_MS now.
 */
static void
test_idle_reader_stamp_wraps(void **state)
{
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;

	(void)state;
	begin(&w, &r);
	assert_int_equal(t_fork(writer_dies_stored, NULL), 0);
	mlc__clock_advance((INT64_C(1) << 31) + 10000);
	got = get(r, "k", &lvl);
	fprintf(stderr, "reader idle 25 days, a writer killed after its "
		"change meanwhile: \"%s\" (level %u)\n", got, lvl);
	assert_string_equal(got, "new");
	mlc_cache_close(r);
	mlc_cache_close(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_late_stamp_hides_dead_writer,
					  td),
		cmocka_unit_test_teardown(test_abandoned_then_killed, td),
		cmocka_unit_test_teardown(test_fresh_cell_given_up_then_killed,
					  td),
		cmocka_unit_test_teardown(test_stopped_inside_change, td),
		cmocka_unit_test_teardown(test_killed_inside_change, td),
		cmocka_unit_test_teardown(test_changing_cell_lapped_then_killed,
					  td),
		cmocka_unit_test_teardown(test_killed_in_fill_disables_l1, td),
		cmocka_unit_test_teardown(test_two_held_cells_counted_once, td),
		cmocka_unit_test_teardown(test_garbled_changing_cell_hangs, td),
		cmocka_unit_test_teardown(test_republish_cell_not_changing, td),
		cmocka_unit_test_teardown(
			test_foreign_ns_writer_killed_in_change, td),
		cmocka_unit_test_teardown(test_emfile_writer_killed_in_change,
					  td),
		cmocka_unit_test_teardown(test_orphan_timer_restarts_each_lap,
					  td),
		cmocka_unit_test_teardown(test_orphan_passed_without_laps, td),
		cmocka_unit_test_teardown(test_laps_without_orphan, td),
		cmocka_unit_test_teardown(test_two_orphans_at_once, td),
		cmocka_unit_test_teardown(test_future_seq_word, td),
		cmocka_unit_test_teardown(
			test_late_identity_passes_live_writer, td),
		cmocka_unit_test_teardown(test_idle_reader_stamp_wraps, td),
	};
	int rc;

	t_require_shm();
	t_filter();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	t_cleanup();
	return rc;
}
