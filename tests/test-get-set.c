/*
 * The basic L2 contract through the public API: set, get without a loader,
 * peek, delete, purge, and bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int
setup(void **state)
{
	return t_fx_open(state, "test");
}

static int
teardown(void **state)
{
	return t_fx_close(state);
}

/* A miss (-ENOENT: mlc_get() without a loader, mlc_peek(), an item of
 * mlc_get_bulk()) is a result, not a failure: mlc_last_error() keeps the
 * message of the last failure, as mlc.h says (review AL). */
static void
test_miss_keeps_last_error(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_bulk_item it = { .key = "absent", .key_len = 6 };
	struct mlc_value v = { 0 };
	char before[256];

	assert_int_equal(mlc_get(fx->c, "k", MLC_KEY_MAX + 1, NULL, NULL,
				 &v), -E2BIG);
	snprintf(before, sizeof(before), "%s", mlc_last_error(fx->c));
	assert_string_equal(before, mlc_strerror(-E2BIG));
	assert_int_equal(mlc_get(fx->c, "absent", 6, NULL, NULL, &v),
			 -ENOENT);
	assert_string_equal(mlc_last_error(fx->c), before);
	assert_int_equal(mlc_peek(fx->c, "absent", 6, 0, &v), -ENOENT);
	assert_string_equal(mlc_last_error(fx->c), before);
	assert_int_equal(mlc_get_bulk(fx->c, &it, 1, NULL, NULL, NULL), 0);
	assert_int_equal(it.status, -ENOENT);
	assert_string_equal(mlc_last_error(fx->c), before);
}

static void
test_set_get(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_value v = { 0 };

	assert_int_equal(mlc_get(fx->c, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_set(fx->c, "k", 1, "hello", 5, NULL), 0);
	assert_int_equal(mlc_get(fx->c, "k", 1, NULL, NULL, &v), 0);
	assert_int_equal(v.len, 5);
	assert_memory_equal(v.data, "hello", 5);
	mlc_value_release(&v);
}

static struct mlc_arena *g_arena;

/* A child: 10 sets, 10 L1 hits, 5 misses, then close (which flushes). */
static int
ns_worker(void *arg)
{
	struct mlc_cache *c = NULL;
	struct mlc_value v = { 0 };
	char key[16];

	(void)arg;
	if (mlc_cache_open(&c, g_arena, "counted", NULL) != 0)
		return 1;
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d-%d", (int)getpid(), i);
		if (mlc_set(c, key, strlen(key), "v", 1, NULL) != 0 ||
		    mlc_get(c, key, strlen(key), NULL, NULL, &v) != 0)
			return 2;
		mlc_value_release(&v);
	}
	for (int i = 0; i < 5; i++)
		if (mlc_get(c, "absent", 6, NULL, NULL, &v) != -ENOENT)
			return 3;
	return mlc_cache_close(c) == 0 ? 0 : 4;
}

static void
test_namespace_stats_sum_processes(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_stats st = MLC_STATS_INIT, mine = MLC_STATS_INIT;
	struct mlc_cache *c = t_cache(fx->a, "counted", NULL);
	struct mlc_value v = { 0 };

	g_arena = fx->a;
	assert_int_equal(t_fork(ns_worker, NULL), 0);
	assert_int_equal(t_fork(ns_worker, NULL), 0);
	/* This handle's own counts reach the namespace at mlc_stats(). */
	assert_int_equal(mlc_get(c, "absent", 6, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_stats(c, &mine), 0);
	assert_int_equal(mlc_namespace_stats(fx->a, "counted", &st), 0);
	assert_int_equal(st.sets, 20);
	assert_int_equal(st.hits_l1, 20);
	assert_int_equal(st.misses, 11);
	assert_int_equal(st.log_published, 20);
	/* Calling mlc_stats() again adds nothing twice. */
	assert_int_equal(mlc_stats(c, &mine), 0);
	assert_int_equal(mlc_namespace_stats(fx->a, "counted", &st), 0);
	assert_int_equal(st.misses, 11);
	assert_int_equal(mlc_namespace_stats(fx->a, "nope", &st), -ENOENT);
	assert_int_equal(mlc_namespace_stats(fx->a, "", &st), -EINVAL);
	assert_int_equal(mlc_namespace_stats(NULL, "counted", &st), -EINVAL);
	mlc_cache_close(c);
}

/* ---- counters reach the namespace within a stated bound ---------------- */

/* The bound (include/mlc.h, mlc_namespace_stats): a flush is due 1 s after
 * the last; an L1 hit looks at the clock every 64th call, a call past L1
 * at every call.  The child below makes a burst of 3000 calls (fewer than
 * the 4096 that flushed in 0.1) and then one call every TRICKLE_MS, and
 * stays open: only the time bound can make the burst visible.
 *
 * The bound is judged by the child's calls, not by the parent's clock (a
 * loaded machine, or valgrind, may run the child's trickle at any pace):
 * the child counts the calls it began at least FLUSH_MS + SLACK_MS after
 * its burst ended (every flush before then was at or before that end, so
 * one is due by then); once DUE_CALLS of them have returned (64 L1 hits
 * hold one clock read; a miss reads it each time), the burst must be
 * visible.  The parent fails only then, or at a cap of CAP_MS. */
#define BURST 3000
#define TRICKLE_MS 5
#define FLUSH_MS 1000
#define SLACK_MS 20		/* the library's coarse clock lags */
#define CAP_MS 60000

struct quiet_sh {
	uint64_t done_ns;	/* the child's clock when the burst ended */
	uint32_t late;		/* calls begun past the bound, returned */
	uint32_t calls;		/* trickle calls returned */
};

struct quiet {
	int done[2];		/* child -> parent: the burst is over */
	int stop[2];		/* parent -> child: close now */
	bool misses;		/* the calls miss L1 (and L2) */
	struct quiet_sh *sh;	/* shared with the parent */
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
quiet_worker(void *arg)
{
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct quiet *q = arg;
	struct mlc_cache *c = NULL;
	struct mlc_value v = { 0 };
	const char *key = q->misses ? "absent" : "k";
	int want = q->misses ? -ENOENT : 0;
	uint64_t due;
	char b;

	if (mlc_cache_open(&c, g_arena, "quiet", NULL) != 0)
		return 1;
	co.ttl_ms = MLC_TTL_NEVER;	/* an L1 hit then reads no clock */
	if (mlc_set(c, "k", 1, "v", 1, &co) != 0)
		return 2;
	for (int i = 0; i < BURST; i++) {
		if (mlc_get(c, key, strlen(key), NULL, NULL, &v) != want)
			return 3;
		mlc_value_release(&v);
	}
	q->sh->done_ns = mono_ns();
	due = q->sh->done_ns + (uint64_t)(FLUSH_MS + SLACK_MS) * 1000000u;
	if (write(q->done[1], "d", 1) != 1)
		return 4;
	/* Quiet: a call now and then, until the parent has seen it all. */
	fcntl(q->stop[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < CAP_MS / TRICKLE_MS; i++) {
		bool late;

		if (read(q->stop[0], &b, 1) == 1)
			break;
		sleep_ms(TRICKLE_MS);
		late = mono_ns() >= due;
		if (mlc_get(c, key, strlen(key), NULL, NULL, &v) != want)
			return 5;
		mlc_value_release(&v);
		__atomic_add_fetch(&q->sh->calls, 1, __ATOMIC_RELEASE);
		if (late)
			__atomic_add_fetch(&q->sh->late, 1, __ATOMIC_RELEASE);
	}
	return mlc_cache_close(c) == 0 ? 0 : 6;
}

/* How long after the burst the namespace showed it, in ms; -1 if it had
 * not when the child had made @p due_calls calls past the bound (or at
 * the cap). */
static long
quiet_visible(struct mlc_arena *a, bool misses, uint32_t due_calls)
{
	struct quiet q = { .misses = misses };
	uint64_t t0, now;
	uint32_t late = 0;
	long ms = -1;
	int pid;
	char b;

	q.sh = mmap(NULL, sizeof(*q.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(q.sh != MAP_FAILED);
	assert_int_equal(pipe(q.done), 0);
	assert_int_equal(pipe(q.stop), 0);
	g_arena = a;
	pid = t_spawn(quiet_worker, &q);
	assert_int_equal(read(q.done[0], &b, 1), 1);
	t0 = mono_ns();
	do {
		struct mlc_stats st = MLC_STATS_INIT;

		/* The child's count first: what it counted had returned
		 * before the counters are read. */
		late = __atomic_load_n(&q.sh->late, __ATOMIC_ACQUIRE);
		assert_int_equal(mlc_namespace_stats(a, "quiet", &st), 0);
		now = mono_ns();
		if ((misses ? st.misses : st.hits_l1) >= BURST) {
			ms = (long)((now - q.sh->done_ns) / 1000000u);
			break;
		}
		sleep_ms(2);
	} while (late < due_calls && now - t0 < (uint64_t)CAP_MS * 1000000u);
	assert_int_equal(write(q.stop[1], "s", 1), 1);
	assert_int_equal(t_wait(pid), 0);
	print_message("%d %s: %s %ld ms after the burst, %u calls past the "
		      "bound (of %u)\n", BURST, misses ? "misses" : "L1 hits",
		      ms >= 0 ? "visible" : "NOT visible (-1: never)", ms,
		      late, q.sh->calls);
	close(q.done[0]), close(q.done[1]), close(q.stop[0]), close(q.stop[1]);
	munmap(q.sh, sizeof(*q.sh));
	return ms;
}

/* Another process sees a quiet handle's counts within the bound, without
 * the handle calling mlc_stats() or closing: L1 hits of an entry that
 * never expires (no clock read on the hit), then misses. */
static void
test_counts_visible_within_bound(void **state)
{
	struct t_fx *fx = *state;

	assert_true(quiet_visible(fx->a, false, 64) >= 0);
	assert_true(quiet_visible(fx->a, true, 1) >= 0);
}

/* ---- live contents per namespace ---------------------------------------- */

static struct mlc_namespace_info
ninfo(struct mlc_arena *a, const char *ns)
{
	struct mlc_namespace_info in = MLC_NAMESPACE_INFO_INIT;

	assert_int_equal(mlc_namespace_info(a, ns, &in), 0);
	return in;
}

#define NKEYS 100
#define VLEN 10

/* A child: NKEYS keys of 4 bytes with VLEN-byte values in "live". */
static int
live_writer(void *arg)
{
	struct mlc_cache *c = NULL;
	char key[8];

	(void)arg;
	if (mlc_cache_open(&c, g_arena, "live", NULL) != 0)
		return 1;
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		if (mlc_set(c, key, 4, "0123456789", VLEN, NULL) != 0)
			return 2;
	}
	return mlc_cache_close(c) == 0 ? 0 : 3;
}

/* Items and bytes of a namespace are exact after sets (from another
 * process), replacements, deletes, negative entries and a purge, and
 * other namespaces are untouched. */
static void
test_namespace_live_counts(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_call_options neg = MLC_CALL_OPTIONS_INIT;
	struct mlc_cache *c = t_cache(fx->a, "live", NULL);
	struct mlc_cache *o = t_cache(fx->a, "other", NULL);
	struct mlc_namespace_info in;
	char key[8];

	in = ninfo(fx->a, "live");
	assert_int_equal(in.items, 0);
	assert_int_equal(in.bytes, 0);
	g_arena = fx->a;
	assert_int_equal(t_fork(live_writer, NULL), 0);
	in = ninfo(fx->a, "live");
	assert_int_equal(in.items, NKEYS);
	assert_int_equal(in.bytes, NKEYS * (4 + VLEN));
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "o%d", i);
		assert_int_equal(mlc_set(o, key, 2, "v", 1, NULL), 0);
	}
	/* Deletes (one of an absent key), replacements, a negative entry. */
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		assert_int_equal(mlc_delete(c, key, 4), 0);
	}
	assert_int_equal(mlc_delete(c, "k000", 4), 0);
	for (int i = 10; i < 15; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		assert_int_equal(mlc_set(c, key, 4, "01234567890123456789", 20,
					 NULL), 0);
	}
	neg.flags = MLC_CALL_NEGATIVE;
	assert_int_equal(mlc_set(c, "neg", 3, NULL, 0, &neg), 0);
	in = ninfo(fx->a, "live");
	assert_int_equal(in.items, NKEYS - 10 + 1);
	assert_int_equal(in.bytes, (NKEYS - 15) * (4 + VLEN) + 5 * (4 + 20) + 3);
	assert_int_equal(in.purges, 0);
	/* A purge empties it at once, though the entries stay linked until
	 * they are reclaimed; new ones count from zero. */
	assert_int_equal(mlc_purge(c), 0);
	in = ninfo(fx->a, "live");
	assert_int_equal(in.items, 0);
	assert_int_equal(in.bytes, 0);
	assert_int_equal(in.purges, 1);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		assert_int_equal(mlc_set(c, key, 4, "0123456789", VLEN, NULL), 0);
	}
	/* Replacing a purged entry's slot: the new one counts, the old not. */
	assert_int_equal(mlc_set(c, "k050", 4, "0123456789", VLEN, NULL), 0);
	in = ninfo(fx->a, "live");
	assert_int_equal(in.items, 4);
	assert_int_equal(in.bytes, 4 * (4 + VLEN));
	in = ninfo(fx->a, "other");
	assert_int_equal(in.items, 5);
	assert_int_equal(in.bytes, 5 * 3);
	assert_int_equal(mlc_namespace_info(fx->a, "nope", &in), -ENOENT);
	assert_int_equal(mlc_namespace_info(NULL, "live", &in), -EINVAL);
	mlc_cache_close(c);
	mlc_cache_close(o);
}

/* Under eviction, the counts equal the keys that are still there. */
static void
test_namespace_live_counts_evicted(void **state)
{
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_namespace_info in;
	struct mlc_value v = { 0 };
	struct mlc_arena *a;
	struct mlc_cache *c;
	char name[64], key[16], val[1000];
	uint64_t present = 0;
	int n = 0;

	(void)state;
	a = t_arena(name, sizeof(name), 0, 0);
	c = t_cache(a, "ev", NULL);
	co.ttl_ms = MLC_TTL_NEVER;
	memset(val, 'x', sizeof(val));
	while (n < 100000) {
		snprintf(key, sizeof(key), "e%06d", n++);
		assert_int_equal(mlc_set(c, key, 7, val, sizeof(val), &co), 0);
		assert_int_equal(mlc_arena_info(a, &ai), 0);
		if (ai.evictions > 100)
			break;
	}
	assert_true(ai.evictions > 100);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "e%06d", i);
		if (mlc_peek(c, key, 7, 0, &v) == 0) {
			present++;
			mlc_value_release(&v);
		}
	}
	in = ninfo(a, "ev");
	print_message("%d sets, %" PRIu64 " evictions: %" PRIu64
		      " keys present, items %" PRIu64 "\n", n, ai.evictions,
		      present, in.items);
	assert_int_equal(in.items, present);
	assert_int_equal(in.bytes, present * (7 + sizeof(val)));
	mlc_cache_close(c);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* ---- walking a namespace's keys ----------------------------------------- */

#define STABLE 500

struct walk_seen {
	unsigned char seen[STABLE];
	uint64_t others, dup, bad;
};

static int
walk_cb(void *arg, const struct mlc_key_info *k)
{
	struct walk_seen *w = arg;
	char buf[32];
	int i;

	if (k->key_len > 7 && memcmp(k->key, "stable-", 7) == 0) {
		snprintf(buf, sizeof(buf), "%.*s", (int)k->key_len,
			 (const char *)k->key);
		i = atoi(buf + 7);
		if (i < 0 || i >= STABLE || k->value_len != 6 ||
		    k->ttl_ms != MLC_TTL_NEVER)
			w->bad++;
		else if (w->seen[i]++)
			w->dup++;
	} else {
		w->others++;
	}
	return 0;
}

/* A child: sets and deletes 100 keys of "walk" and "other" until told. */
static int
churn_worker(void *arg)
{
	int *stop = arg;
	struct mlc_cache *c = NULL, *o = NULL;
	char key[16], b;

	if (mlc_cache_open(&c, g_arena, "walk", NULL) != 0 ||
	    mlc_cache_open(&o, g_arena, "other", NULL) != 0)
		return 1;
	fcntl(stop[0], F_SETFL, O_NONBLOCK);
	for (unsigned i = 0; read(stop[0], &b, 1) != 1; i++) {
		snprintf(key, sizeof(key), "churn-%u", i % 100);
		if ((i & 1 ? mlc_delete(c, key, strlen(key)) :
			     mlc_set(c, key, strlen(key), "churned", 7, NULL)) != 0 ||
		    mlc_set(o, key, strlen(key), "x", 1, NULL) != 0)
			return 2;
	}
	mlc_cache_close(o);
	return mlc_cache_close(c) == 0 ? 0 : 3;
}

/* mlc_namespace_keys lists exactly the stable keys of a namespace, in
 * small steps, while another process writes keys of it and of another
 * namespace; after a purge it lists nothing. */
static void
test_namespace_keys_live(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_cache *c = t_cache(fx->a, "walk", NULL);
	struct walk_seen *w = calloc(1, sizeof(*w));
	uint64_t cursor = 0;
	int stop[2], pid, rc, steps = 0;
	char key[16];

	assert_non_null(w);
	co.ttl_ms = MLC_TTL_NEVER;
	for (int i = 0; i < STABLE; i++) {
		snprintf(key, sizeof(key), "stable-%d", i);
		assert_int_equal(mlc_set(c, key, strlen(key), "stable", 6, &co),
				 0);
	}
	assert_int_equal(pipe(stop), 0);
	g_arena = fx->a;
	pid = t_spawn(churn_worker, stop);
	sleep_ms(20);
	do {
		rc = mlc_namespace_keys(fx->a, "walk", &cursor, 64, walk_cb, w);
		assert_int_equal(rc, 0);	/* a busy bucket too */
		steps++;
		if (steps % 8 == 0)
			sleep_ms(1);	/* let the writer in between steps */
	} while (cursor != 0);
	assert_int_equal(write(stop[1], "s", 1), 1);
	assert_int_equal(t_wait(pid), 0);
	close(stop[0]), close(stop[1]);
	for (int i = 0; i < STABLE; i++)
		if (!w->seen[i])
			fail_msg("stable-%d not listed", i);
	assert_int_equal(w->dup, 0);
	assert_int_equal(w->bad, 0);
	print_message("%d steps of 64 buckets: %d stable keys once each, %"
		      PRIu64 " churned keys seen\n", steps, STABLE, w->others);
	/* Purged: nothing of the old generation is listed. */
	assert_int_equal(mlc_purge(c), 0);
	memset(w, 0, sizeof(*w));
	cursor = 0;
	assert_int_equal(mlc_namespace_keys(fx->a, "walk", &cursor, 0, walk_cb,
					    w), 0);
	assert_int_equal(cursor, 0);
	assert_int_equal(w->others + w->bad + w->dup, 0);
	for (int i = 0; i < STABLE; i++)
		assert_int_equal(w->seen[i], 0);
	assert_int_equal(mlc_namespace_keys(fx->a, "nope", &cursor, 0, walk_cb,
					    w), -ENOENT);
	free(w);
	mlc_cache_close(c);
}

/* A walk whose callback purges the namespace lists nothing more: every
 * entry after the purge is a purged one (the walk read the generation
 * once, at its start, and went on listing the old generation's entries
 * after mlc_purge() had returned). */
static struct mlc_cache *pw_c;
static int pw_calls;

static int
purge_cb(void *arg, const struct mlc_key_info *k)
{
	(void)arg;
	(void)k;
	if (pw_calls++ == 0)
		assert_int_equal(mlc_purge(pw_c), 0);
	return 0;
}

static void
test_namespace_keys_purged_by_callback(void **state)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	uint64_t cursor = 0;
	char key[16];

	(void)state;
	ao.flags = MLC_ARENA_ANON;
	ao.bytes = 4 << 20;
	ao.page_size = 64 << 10;
	ao.log_cells = 1024;
	ao.flight_slots = 64;
	assert_int_equal(mlc_arena_open(&a, NULL, &ao), 0);
	pw_c = t_cache(a, "walk", NULL);
	pw_calls = 0;
	co.ttl_ms = MLC_TTL_NEVER;
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k-%d", i);
		assert_int_equal(mlc_set(pw_c, key, strlen(key), "v", 1, &co),
				 0);
	}
	assert_int_equal(mlc_namespace_keys(a, "walk", &cursor, 0, purge_cb,
					    NULL), 0);
	assert_int_equal(cursor, 0);
	assert_int_equal(pw_calls, 1);
	mlc_cache_close(pw_c);
	mlc_arena_close(a);
}

/* A walk whose callback takes long (here: moves the clock 10 s on at its
 * first call) flags what expired meanwhile: each entry's staleness and
 * TTL are as of its report, not of the walk's start (before, every key of
 * a 5 s TTL was listed fresh, with up to 5 s left, 10 s later). */
static int tw_calls, tw_fresh;

static int
slow_cb(void *arg, const struct mlc_key_info *k)
{
	(void)arg;
	if (tw_calls++ == 0) {
		mlc__clock_advance(10000);
		return 0;
	}
	if (!(k->flags & MLC_STALE))
		tw_fresh++;
	return 0;
}

static void
test_namespace_keys_slow_callback(void **state)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *c;
	uint64_t cursor = 0;
	char key[16];

	(void)state;
	ao.flags = MLC_ARENA_ANON;
	ao.bytes = 4 << 20;
	ao.page_size = 64 << 10;
	ao.log_cells = 1024;
	ao.flight_slots = 64;
	assert_int_equal(mlc_arena_open(&a, NULL, &ao), 0);
	c = t_cache(a, "walk", NULL);
	tw_calls = tw_fresh = 0;
	co.ttl_ms = 5000;
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k-%d", i);
		assert_int_equal(mlc_set(c, key, strlen(key), "v", 1, &co), 0);
	}
	assert_int_equal(mlc_namespace_keys(a, "walk", &cursor, 0, slow_cb,
					    NULL), 0);
	mlc__clock_advance(-10000);
	assert_int_equal(tw_calls, 200);
	assert_int_equal(tw_fresh, 0);
	mlc_cache_close(c);
	mlc_arena_close(a);
}

/* ---- size classes ------------------------------------------------------- */

/* mlc_arena_class adds up to the arena: its pages are the pages not in the
 * pool, its used chunks the entries linked, its moved-out pages the
 * arena's page moves; after a fill of big values and then of small ones,
 * which moves pages between classes. */
static void
test_arena_classes(void **state)
{
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;
	struct mlc_class_info c = MLC_CLASS_INFO_INIT;
	uint64_t pages = 0, used = 0, out = 0, in = 0, ev = 0;
	struct mlc_arena *a;
	struct mlc_cache *k;
	char name[64], key[16], val[1000];
	uint32_t last = 0, i;

	(void)state;
	a = t_arena(name, sizeof(name), 0, 0);
	k = t_cache(a, "slabs", NULL);
	memset(val, 'v', sizeof(val));
	for (int n = 0; n < 30000; n++) {
		snprintf(key, sizeof(key), "b%06d", n);
		assert_int_equal(mlc_set(k, key, 7, val, sizeof(val), NULL), 0);
	}
	for (int n = 0; n < 60000; n++) {
		snprintf(key, sizeof(key), "s%06d", n);
		assert_int_equal(mlc_set(k, key, 7, val, 40, NULL), 0);
	}
	assert_int_equal(mlc_arena_info(a, &ai), 0);
	for (i = 0; mlc_arena_class(a, i, &c) == 0; i++) {
		assert_true(c.chunk_size > last);	/* smallest first */
		last = c.chunk_size;
		assert_int_equal(c.chunks_used + c.chunks_free,
				 c.pages * c.chunks_per_page);
		pages += c.pages;
		used += c.chunks_used;
		out += c.pages_out;
		in += c.pages_in;
		ev += c.evictions;
	}
	assert_true(i > 1);
	assert_int_equal(mlc_arena_class(a, i, &c), -ENOENT);
	print_message("%u classes: %" PRIu64 " pages, %" PRIu64 " chunks used "
		      "for %" PRIu64 " items, %" PRIu64 " pages moved out, %"
		      PRIu64 " in, %" PRIu64 " evictions\n", i, pages, used,
		      ai.items, out, in, ev);
	assert_int_equal(pages, ai.pages - ai.pages_free);
	assert_int_equal(used, ai.items);
	assert_int_equal(out, ai.page_moves);
	assert_true(in <= out && ai.page_moves > 0);
	mlc_cache_close(k);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* A large L1 (tables of 8 and 4 MiB): hits from it, in this process and
 * in a forked child, and a close that gives its memory back. */
#define NBIG 500	/* fewer than the log's cells: no overrun */
static struct mlc_cache *big_c;

static int
big_child(void *arg)
{
	struct mlc_value v;
	char k[16];

	(void)arg;
	for (int i = 0; i < NBIG; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		if (mlc_get(big_c, k, strlen(k), NULL, NULL, &v) != 0 ||
		    v.len != strlen(k) || memcmp(v.data, k, v.len) != 0)
			return 1;
		mlc_value_release(&v);
	}
	return 0;
}

static void
test_l1_large(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_value v;
	char k[16];

	o.lru_size = 400000;	/* 1 Mi slots of 8 B, 512 Ki ghost words */
	big_c = t_cache(fx->a, "big", &o);
	for (int i = 0; i < NBIG; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		assert_int_equal(mlc_set(big_c, k, strlen(k), k, strlen(k),
					 NULL), 0);
	}
	for (int i = 0; i < NBIG; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		assert_int_equal(mlc_get(big_c, k, strlen(k), NULL, NULL, &v),
				 0);
		assert_int_equal(v.level, MLC_L1);
		assert_memory_equal(v.data, k, v.len);
		mlc_value_release(&v);
	}
	assert_int_equal(mlc_stats(big_c, &st), 0);
	assert_int_equal(st.hits_l1, NBIG);
	assert_int_equal(t_fork(big_child, NULL), 0);
	assert_int_equal(mlc_cache_close(big_c), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_miss_keeps_last_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_stats_sum_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_counts_visible_within_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_live_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_live_counts_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_keys_live, setup, teardown),
		cmocka_unit_test(test_namespace_keys_purged_by_callback),
		cmocka_unit_test(test_namespace_keys_slow_callback),
		cmocka_unit_test_setup_teardown(
			test_arena_classes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_l1_large, setup, teardown),
	};

	t_filter();	/* MLC_TEST_FILTER */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
