/*
 * The basic L2 contract through the public API: set, get without a loader,
 * peek, delete, purge, and bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

struct fx {
	char name[64];
	struct mlc_arena *a;
	struct mlc_cache *c;
};

static int
setup(void **state)
{
	static struct fx fx;

	t_require_shm();
	fx.a = t_arena(fx.name, sizeof(fx.name), 0, 0);
	fx.c = t_cache(fx.a, "test", NULL);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	mlc_cache_close(fx->c);
	mlc_arena_close(fx->a);
	mlc_arena_unlink(fx->name, 0);
	return 0;
}

static void
test_set_get(void **state)
{
	struct fx *fx = *state;
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
	struct fx *fx = *state;
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
 * stays open: only the time bound can make the burst visible. */
#define BURST 3000
#define TRICKLE_MS 5
#define BOUND_MS (1000 + 64 * TRICKLE_MS)

struct quiet {
	int done[2];		/* child -> parent: the burst is over */
	int stop[2];		/* parent -> child: close now */
	bool misses;		/* the calls miss L1 (and L2) */
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
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
	if (write(q->done[1], "d", 1) != 1)
		return 4;
	/* Quiet: a call now and then, until the parent has seen it all. */
	fcntl(q->stop[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 10000 / TRICKLE_MS; i++) {
		if (read(q->stop[0], &b, 1) == 1)
			break;
		sleep_ms(TRICKLE_MS);
		if (mlc_get(c, key, strlen(key), NULL, NULL, &v) != want)
			return 5;
		mlc_value_release(&v);
	}
	return mlc_cache_close(c) == 0 ? 0 : 6;
}

/* How long after the burst the namespace showed it, in ms (-1: never). */
static long
quiet_visible(struct mlc_arena *a, bool misses)
{
	struct quiet q = { .misses = misses };
	struct timespec t0, t1;
	long ms = -1;
	int pid;
	char b;

	assert_int_equal(pipe(q.done), 0);
	assert_int_equal(pipe(q.stop), 0);
	g_arena = a;
	pid = t_spawn(quiet_worker, &q);
	assert_int_equal(read(q.done[0], &b, 1), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 300; i++) {
		struct mlc_stats st = MLC_STATS_INIT;

		assert_int_equal(mlc_namespace_stats(a, "quiet", &st), 0);
		if ((misses ? st.misses : st.hits_l1) >= BURST) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ms = (t1.tv_sec - t0.tv_sec) * 1000 +
			     (t1.tv_nsec - t0.tv_nsec) / 1000000;
			break;
		}
		sleep_ms(10);
	}
	assert_int_equal(write(q.stop[1], "s", 1), 1);
	assert_int_equal(t_wait(pid), 0);
	close(q.done[0]), close(q.done[1]), close(q.stop[0]), close(q.stop[1]);
	return ms;
}

/* Another process sees a quiet handle's counts within the bound, without
 * the handle calling mlc_stats() or closing: L1 hits of an entry that
 * never expires (no clock read on the hit), then misses. */
static void
test_counts_visible_within_bound(void **state)
{
	struct fx *fx = *state;
	long hits_ms = quiet_visible(fx->a, false);
	long miss_ms = quiet_visible(fx->a, true);

	print_message("3000 L1 hits visible after %ld ms, 3000 misses after "
		      "%ld ms (bound %d ms after the first count)\n", hits_ms,
		      miss_ms, BOUND_MS);
	assert_true(hits_ms >= 0 && hits_ms <= BOUND_MS + 250);
	assert_true(miss_ms >= 0 && miss_ms <= 1000 + TRICKLE_MS + 250);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_stats_sum_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_counts_visible_within_bound, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
