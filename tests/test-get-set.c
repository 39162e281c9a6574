/*
 * The basic L2 contract through the public API: set, get without a loader,
 * peek, delete, purge, and bad input.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_namespace_stats_sum_processes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
