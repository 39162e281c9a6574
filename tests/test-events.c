/*
 * The transport hook: every set, delete and purge made through this arena
 * handle is reported once, loader fills are not, and an applied event
 * drops the key from L2 and from every L1 without being reported again.
 */
#include <errno.h>
#include <string.h>

#include "common.h"

#define MAX_EV 16

struct seen {
	int n;
	struct {
		uint32_t op;
		char ns[64];
		char key[64];
		size_t key_len;
		uint64_t version;
	} ev[MAX_EV];
};

static void
record(void *arg, const struct mlc_event *ev)
{
	struct seen *s = arg;

	if (s->n >= MAX_EV)
		return;
	s->ev[s->n].op = ev->op;
	memcpy(s->ev[s->n].ns, ev->ns, ev->ns_len);
	s->ev[s->n].ns[ev->ns_len] = '\0';
	s->ev[s->n].key_len = ev->key_len;
	if (ev->key)
		memcpy(s->ev[s->n].key, ev->key, ev->key_len);
	s->ev[s->n].version = ev->version;
	s->n++;
}

static int
loader(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	out->data = "loaded";
	out->len = 6;
	return MLC_LOAD_VALUE;
}

static void
test_hook_reports_changes_not_fills(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache *c = t_cache(a, "users", NULL);
	struct mlc_value v = { 0 };
	struct seen s = { 0 };

	assert_int_equal(mlc_arena_set_event_hook(a, record, &s), 0);
	assert_int_equal(mlc_get(c, "k1", 2, loader, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(s.n, 0);		/* a fill is not a change */
	assert_int_equal(mlc_set(c, "k1", 2, "x", 1, NULL), 0);
	assert_int_equal(mlc_delete(c, "k2", 2), 0);
	assert_int_equal(mlc_purge(c), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ev[0].op, MLC_EVENT_SET);
	assert_string_equal(s.ev[0].ns, "users");
	assert_int_equal(s.ev[0].key_len, 2);
	assert_memory_equal(s.ev[0].key, "k1", 2);
	assert_true(s.ev[0].version > 0);
	assert_int_equal(s.ev[1].op, MLC_EVENT_DELETE);
	assert_memory_equal(s.ev[1].key, "k2", 2);
	assert_int_equal(s.ev[2].op, MLC_EVENT_PURGE);
	assert_int_equal(s.ev[2].key_len, 0);
	assert_int_equal(mlc_arena_set_event_hook(a, NULL, NULL), 0);
	assert_int_equal(mlc_set(c, "k1", 2, "x", 1, NULL), 0);
	assert_int_equal(s.n, 3);
	mlc_cache_close(c);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

static void
test_apply_drops_l2_and_l1_without_echo(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache *c1 = t_cache(a, "users", NULL);
	struct mlc_cache *c2 = t_cache(a, "users", NULL);
	struct mlc_cache *other = t_cache(a, "other", NULL);
	struct mlc_value v = { 0 };
	struct seen s = { 0 };
	struct mlc_event ev = { MLC_EVENT_DELETE, 5, "users", "k", 1, 99 };

	assert_int_equal(mlc_set(c1, "k", 1, "old", 3, NULL), 0);
	assert_int_equal(mlc_set(other, "k", 1, "keep", 4, NULL), 0);
	assert_int_equal(mlc_get(c2, "k", 1, NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(c2, "k", 1, NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	mlc_value_release(&v);

	assert_int_equal(mlc_arena_set_event_hook(a, record, &s), 0);
	ev.op = MLC_EVENT_SET;		/* a set elsewhere: ours is old */
	assert_int_equal(mlc_arena_apply_event(a, &ev), 0);
	assert_int_equal(s.n, 0);		/* never echoed */
	assert_int_equal(mlc_get(c2, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_get(c1, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_get(other, "k", 1, NULL, NULL, &v), 0);
	assert_memory_equal(v.data, "keep", 4);
	mlc_value_release(&v);

	assert_int_equal(mlc_set(c1, "k", 1, "new", 3, NULL), 0);
	ev.op = MLC_EVENT_PURGE;
	ev.key = NULL;
	ev.key_len = 0;
	assert_int_equal(mlc_arena_apply_event(a, &ev), 0);
	assert_int_equal(mlc_get(c2, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_get(c1, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(s.n, 1);		/* only c1's own set */

	mlc_cache_close(c1);
	mlc_cache_close(c2);
	mlc_cache_close(other);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

static void
test_apply_rejects_bad_events(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_event ev = { MLC_EVENT_DELETE, 1, "n", "k", 1, 0 };

	assert_int_equal(mlc_arena_apply_event(NULL, &ev), -EINVAL);
	assert_int_equal(mlc_arena_apply_event(a, NULL), -EINVAL);
	ev.op = 42;
	assert_int_equal(mlc_arena_apply_event(a, &ev), -EINVAL);
	ev.op = MLC_EVENT_DELETE;
	ev.key = NULL;
	assert_int_equal(mlc_arena_apply_event(a, &ev), -EINVAL);
	ev.key = "k";
	ev.key_len = MLC_KEY_MAX + 1;
	assert_int_equal(mlc_arena_apply_event(a, &ev), -E2BIG);
	ev.key_len = 1;
	ev.ns_len = 0;
	assert_int_equal(mlc_arena_apply_event(a, &ev), -EINVAL);
	ev.ns_len = MLC_NAME_MAX + 1;
	assert_int_equal(mlc_arena_apply_event(a, &ev), -EINVAL);
	assert_int_equal(mlc_arena_set_event_hook(NULL, record, NULL), -EINVAL);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_reports_changes_not_fills),
		cmocka_unit_test(test_apply_drops_l2_and_l1_without_echo),
		cmocka_unit_test(test_apply_rejects_bad_events),
	};

	t_require_shm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
