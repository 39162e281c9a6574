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
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
};

/* A child: installs the hook and sets key = val (or dies on the way). */
static int
writer(void *arg)
{
	const struct wr *w = arg;
	struct mlc_cache *c = open_ns("log", MLC_CACHE_NO_L1);

	alarm(60);
	my_ctl = w->ctl;
	mlc__pause_hook = hook;
	if (mlc_set(c, w->key, strlen(w->key), w->val, strlen(w->val),
		    NULL) != 0)
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
	struct wr wa = { "a", "a-new", NULL }, wb = { "b", "b-new", NULL };
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
	struct wr wk = { "k", "new", NULL };
	struct ctl *ck;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	int pk;

	(void)state;
	setup();
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(r, "k", NULL), "old");

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
	struct wr wd = { "d", "d-new", NULL }, wk = { "k", "new", NULL };
	struct ctl *cd, *ck;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	const char *got;
	int pk;

	(void)state;
	setup();
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(r, "k", NULL), "old");
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
	struct wr wk = { "k", "new", NULL };
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	struct ctl *ck;
	int pk;

	(void)state;
	setup();
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(r, "k", NULL), "old");
	assert_string_equal(get(r, "k", &lvl), "old");
	assert_int_equal(lvl, MLC_L1);

	ck = ctl_new();
	ctl_add(ck, MLC__P_LOG_CHANGING, ACT_STOP, 0);
	wk.ctl = ck;
	pk = t_spawn(writer, &wk);
	wait_at(ck, 0);
	/* Within the bound: L1 may serve the old value. */
	assert_string_equal(get(r, "k", &lvl), "old");
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
	struct wr wk = { "k", "new", NULL };
	struct mlc_cache *w, *r;
	uint32_t lvl = 0;
	struct ctl *ck;

	(void)state;
	setup();
	w = open_ns("log", MLC_CACHE_NO_L1);
	r = open_ns("log", 0);
	assert_int_equal(mlc_set(w, "k", 1, "old", 3, NULL), 0);
	assert_string_equal(get(r, "k", NULL), "old");
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
	};
	int rc;

	t_require_shm();
	t_filter();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	t_cleanup();
	return rc;
}
