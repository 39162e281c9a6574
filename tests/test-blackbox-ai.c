/*
 * Black-box tests of include/mlc.h's promises, written from the header
 * and docs/api.md alone (review AI): each case is a promise the header
 * makes, checked against what the library does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

struct fx {
	char name[64];
	struct mlc_arena *a;
};

static int
setup(void **state)
{
	static struct fx fx;

	t_require_shm();
	fx.a = t_arena(fx.name, sizeof(fx.name), 0, 0);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	mlc_arena_close(fx->a);
	mlc_arena_unlink(fx->name, 0);
	return 0;
}

static int
fail_boom(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	(void)arg, (void)key, (void)key_len;
	snprintf(out->errmsg, sizeof(out->errmsg), "boom");
	return -EIO;
}

/* Leave "boom", a loader's message, as the handle's last error. */
static void
boom(struct mlc_cache *c)
{
	struct mlc_value v;

	assert_int_equal(mlc_get(c, "b", 1, fail_boom, NULL, &v),
			 MLC_ELOADER);
	assert_string_equal(mlc_last_error(c), "boom");
}

/* Each call that refuses its arguments on a valid handle is the handle's
 * last failure: mlc_last_error() describes it (mlc.h: "the loader's
 * errmsg after MLC_ELOADER, else a description"), as mlc_set() and
 * mlc_get() do, not the message of an earlier loader failure. */
static void
test_last_error_after_refused_arguments(void **state)
{
	struct fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "ns", NULL);
	struct mlc_stats bad_stats = { .size = 1 };
	struct mlc_flight none;
	struct mlc_load load = { 0 };
	const volatile uint64_t *head;
	struct mlc_value v;
	size_t n;
	uint32_t flags;
	int rc;

	memset(&none, 0, sizeof(none));
#define REFUSED(call)							\
	do {								\
		boom(c);						\
		rc = (call);						\
		assert_int_equal(rc, -EINVAL);				\
		if (strcmp(mlc_last_error(c), mlc_strerror(rc)) != 0)	\
			fail_msg("%s: last error \"%s\", want \"%s\"",	\
				 #call, mlc_last_error(c),		\
				 mlc_strerror(rc));			\
	} while (0)
	/* These did: the reference. */
	REFUSED(mlc_set(c, "k", 0, "v", 1, NULL));
	REFUSED(mlc_peek(c, "k", 1, 1u << 7, &v));
	/* These did not. */
	REFUSED(mlc_stats(c, &bad_stats));
	REFUSED(mlc_stats(c, NULL));
	REFUSED(mlc_update_ex(c, NULL, 0, NULL, &flags));
	REFUSED(mlc_update_records(c, NULL, 4, &n, &flags));
	REFUSED(mlc_update_watch(c, &head, NULL));
	REFUSED(mlc_get_bulk(c, NULL, 1, NULL, NULL, NULL));
	REFUSED(mlc_flight_wait(c, &none, 0, &v));
	REFUSED(mlc_flight_publish(c, &none, MLC_LOAD_VALUE, &load, NULL));
	REFUSED(mlc_flight_publish(c, &none, MLC_LOAD_VALUE, NULL, NULL));
	REFUSED(mlc_flight_abandon(c, &none));
#undef REFUSED
	mlc_cache_close(c);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_last_error_after_refused_arguments),
	};
#undef T

	t_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
