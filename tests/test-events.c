/*
 * The transport hook: every set, delete and purge made through this arena
 * handle is reported once, loader fills are not, and an applied event
 * drops the key from L2 and from every L1 without being reported again.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
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

	/* Events of a namespace the arena has not got change nothing and
	 * make nothing: 0.3.0 made one for each, and entries anyone
	 * could XADD to a relay's stream filled the table for good. */
	{
		struct mlc_event unknown = { MLC_EVENT_DELETE, 4, "nope", "k",
					     1, 7 };
		char nsname[MLC_NAME_MAX + 1];
		uint32_t n = 0;

		for (; mlc_arena_namespace(a, n, nsname, sizeof(nsname)) == 0;
		     n++)
			;
		assert_int_equal(mlc_arena_apply_event(a, &unknown), 0);
		unknown.op = MLC_EVENT_PURGE;
		assert_int_equal(mlc_arena_apply_event(a, &unknown), 0);
		assert_int_equal(mlc_arena_namespace(a, n, nsname, sizeof(nsname)),
				 -ENOENT);
	}

	mlc_cache_close(c1);
	mlc_cache_close(c2);
	mlc_cache_close(other);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* A hook that calls the cache, once: another handle sets the key, then a
 * get of another key on the writing handle applies that set's record. */
struct meddle {
	struct mlc_cache *self, *writer;
	bool armed;
	int rc;
};

static void
meddle(void *arg, const struct mlc_event *ev)
{
	struct meddle *m = arg;
	struct mlc_value v = { 0 };

	if (!m->armed || ev->op != MLC_EVENT_SET)
		return;
	m->armed = false;
	m->rc = mlc_set(m->writer, ev->key, ev->key_len, "77", 2, NULL);
	if (m->rc == 0)
		m->rc = mlc_get(m->self, "other", 5, NULL, NULL, &v);
}

static int
modify_to_5(void *arg, const struct mlc_value *cur, struct mlc_load *out)
{
	(void)arg;
	(void)cur;
	out->data = "5";
	out->len = 1;
	return MLC_MODIFY_SET;
}

/* The writer's own L1 copy of what it wrote does not outlive a newer set
 * whose record the hook's call applied (mlc_set, mlc_modify). */
static void
test_hook_calling_the_cache(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache *c = t_cache(a, "users", NULL);
	struct mlc_cache *w = t_cache(a, "users", NULL);
	struct meddle m = { c, w, false, 1 };
	struct mlc_value v = { 0 };

	(void)state;
	assert_int_equal(mlc_arena_set_event_hook(a, meddle, &m), 0);
	for (int round = 0; round < 2; round++) {
		m.armed = true;
		m.rc = 1;
		if (round == 0)
			assert_int_equal(mlc_set(c, "k", 1, "5", 1, NULL), 0);
		else
			assert_int_equal(mlc_modify(c, "k", 1, modify_to_5,
						    NULL, NULL), 0);
		assert_int_equal(m.rc, -ENOENT);
		assert_int_equal(mlc_get(c, "k", 1, NULL, NULL, &v), 0);
		assert_int_equal(v.level, MLC_L2);
		assert_int_equal(v.len, 2);
		assert_memory_equal(v.data, "77", 2);
		mlc_value_release(&v);
	}
	assert_int_equal(mlc_arena_set_event_hook(a, NULL, NULL), 0);
	mlc_cache_close(c);
	mlc_cache_close(w);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* The same, with the hook writing the key on the writer's own handle, a
 * MLC_CACHE_MANUAL_UPDATE one (which applies no record of it until its
 * next mlc_update()): the outer write's older value must not replace the
 * hook's newer one in that handle's L1 (found by a review: "5" was served
 * from L1 while L2 held "77"). */
static bool rewrite_by_load;

static int
load_77(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	(void)arg;
	(void)key;
	(void)len;
	out->data = "77";
	out->len = 2;
	return MLC_LOAD_VALUE;
}

static void
rewrite_own(void *arg, const struct mlc_event *ev)
{
	struct meddle *m = arg;

	if (!m->armed || ev->op != MLC_EVENT_SET)
		return;
	m->armed = false;
	if (rewrite_by_load)		/* a loader's store is a write too */
		m->rc = mlc_refresh(m->self, ev->key, ev->key_len, load_77,
				    NULL, NULL);
	else
		m->rc = mlc_set(m->self, ev->key, ev->key_len, "77", 2, NULL);
}

static void
test_hook_writing_own_handle(void **state)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache *c;
	struct meddle m = { NULL, NULL, false, 1 };
	struct mlc_value v = { 0 };

	(void)state;
	co.flags = MLC_CACHE_MANUAL_UPDATE;
	c = t_cache(a, "users", &co);
	m.self = c;
	assert_int_equal(mlc_arena_set_event_hook(a, rewrite_own, &m), 0);
	for (int round = 0; round < 4; round++) {
		m.armed = true;
		m.rc = 1;
		rewrite_by_load = round >= 2;
		if (round % 2 == 0)
			assert_int_equal(mlc_set(c, "k", 1, "5", 1, NULL), 0);
		else
			assert_int_equal(mlc_modify(c, "k", 1, modify_to_5,
						    NULL, NULL), 0);
		assert_int_equal(m.rc, 0);
		assert_int_equal(mlc_get(c, "k", 1, NULL, NULL, &v), 0);
		assert_int_equal(v.len, 2);
		assert_memory_equal(v.data, "77", 2);
		mlc_value_release(&v);
	}
	assert_int_equal(mlc_arena_set_event_hook(a, NULL, NULL), 0);
	mlc_cache_close(c);
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


/* Records carry the version each change made, and the watch words tell
 * without a call whether any record is pending. */
static void
test_update_records_report_versions(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w = t_cache(a, "ns", NULL), *r;
	struct mlc_update_record rec[4];
	struct mlc_value v = { 0 };
	const volatile uint64_t *head;
	const uint64_t *cursor;
	size_t n = 99;
	uint32_t flags = 99;
	uint64_t va;

	o.flags = MLC_CACHE_MANUAL_UPDATE | MLC_CACHE_NO_L1;
	r = t_cache(a, "ns", &o);
	assert_int_equal(mlc_update_watch(r, &head, &cursor), 0);
	assert_int_equal(mlc_update_records(r, rec, 4, &n, &flags), 0);
	assert_int_equal(n, 0);
	assert_int_equal(flags, 0);
	assert_true(*head == *cursor);
	assert_int_equal(mlc_set(w, "a", 1, "1", 1, NULL), 0);
	assert_true(*head != *cursor);		/* pending, seen without a call */
	assert_int_equal(mlc_peek(r, "a", 1, 0, &v), 0);	/* moves nothing */
	va = v.version;
	mlc_value_release(&v);
	assert_true(*head != *cursor);
	assert_int_equal(mlc_delete(w, "b", 1), 0);
	assert_int_equal(mlc_update_records(r, rec, 4, &n, &flags), 0);
	assert_true(*head == *cursor);
	assert_int_equal(n, 2);
	assert_int_equal(flags, 0);
	assert_true(rec[0].hash == mlc_key_hash(r, "a", 1));
	assert_true(rec[0].version == va && va != 0);
	assert_true(rec[1].hash == mlc_key_hash(r, "b", 1));
	assert_true(rec[1].version > va);	/* versions only grow */
	/* More changes than room: cap at a time, the rest on the next call. */
	for (int i = 0; i < 6; i++)
		assert_int_equal(mlc_set(w, "c", 1, "1", 1, NULL), 0);
	assert_int_equal(mlc_update_records(r, rec, 4, &n, &flags), 0);
	assert_int_equal(n, 4);
	assert_int_equal(flags, 0);
	assert_true(*head != *cursor);
	assert_true(rec[3].version > rec[0].version);
	assert_int_equal(mlc_update_records(r, rec, 4, &n, &flags), 0);
	assert_int_equal(n, 2);
	assert_int_equal(flags, 0);
	assert_true(*head == *cursor);
	assert_int_equal(mlc_set(w, "c", 1, "1", 1, NULL), 0);
	assert_int_equal(mlc_update_records(r, NULL, 0, &n, &flags), 0);
	assert_int_equal(flags, MLC_UPDATE_ALL);	/* no room at all */
	assert_int_equal(mlc_purge(w), 0);
	assert_int_equal(mlc_update_records(r, rec, 4, &n, &flags), 0);
	assert_int_equal(flags, MLC_UPDATE_ALL);
	assert_int_equal(mlc_update_records(r, NULL, 0, &n, &flags), 0);
	assert_int_equal(n, 0);
	assert_int_equal(flags, 0);
	assert_int_equal(mlc_update_records(NULL, rec, 4, &n, &flags), -EINVAL);
	assert_int_equal(mlc_update_records(r, NULL, 4, &n, &flags), -EINVAL);
	assert_int_equal(mlc_update_watch(NULL, &head, &cursor), -EINVAL);
	assert_int_equal(mlc_update_watch(r, NULL, &cursor), -EINVAL);
	mlc_cache_close(w);
	mlc_cache_close(r);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}
/* A layered cache learns which keys changed elsewhere, by hash. */
static void
test_update_ex_reports_hashes(void **state)
{
	char name[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w = t_cache(a, "ns", NULL), *r;
	uint64_t h[4];
	size_t n = 99;
	uint32_t flags = 99;

	o.flags = MLC_CACHE_MANUAL_UPDATE;
	r = t_cache(a, "ns", &o);
	assert_int_equal(mlc_update_ex(r, h, 4, &n, &flags), 0);
	assert_int_equal(n, 0);
	assert_int_equal(flags, 0);
	assert_int_equal(mlc_set(w, "a", 1, "1", 1, NULL), 0);
	assert_int_equal(mlc_delete(w, "b", 1), 0);
	assert_int_equal(mlc_update_ex(r, h, 4, &n, &flags), 0);
	assert_int_equal(n, 2);
	assert_int_equal(flags, 0);
	assert_true(h[0] == mlc_key_hash(r, "a", 1) && h[0] != 0);
	assert_true(h[1] == mlc_key_hash(r, "b", 1));
	assert_true(mlc_key_hash(w, "a", 1) == h[0]);	/* per namespace */
	/* More changes than room: everything must go. */
	for (int i = 0; i < 6; i++)
		assert_int_equal(mlc_set(w, "c", 1, "1", 1, NULL), 0);
	assert_int_equal(mlc_update_ex(r, h, 4, &n, &flags), 0);
	assert_int_equal(flags, MLC_UPDATE_ALL);
	assert_int_equal(mlc_purge(w), 0);
	assert_int_equal(mlc_update_ex(r, h, 4, &n, &flags), 0);
	assert_int_equal(flags, MLC_UPDATE_ALL);
	assert_int_equal(mlc_update_ex(r, h, 4, &n, &flags), 0);
	assert_int_equal(flags, 0);
	assert_int_equal(n, 0);
	/* No room at all (no array): any change is everything (until
	 * review N, it was applied and reported as nothing). */
	assert_int_equal(mlc_set(w, "a", 1, "2", 1, NULL), 0);
	assert_int_equal(mlc_update_ex(r, NULL, 0, &n, &flags), 0);
	assert_int_equal(n, 0);
	assert_int_equal(flags, MLC_UPDATE_ALL);
	assert_int_equal(mlc_update_ex(NULL, h, 4, &n, &flags), -EINVAL);
	assert_int_equal(mlc_update_ex(r, NULL, 4, &n, &flags), -EINVAL);
	assert_true(mlc_key_hash(r, "", 0) == 0);
	mlc_cache_close(w);
	mlc_cache_close(r);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

static void
test_namespaces_and_check(void **state)
{
	char name[64], ns[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0);
	struct mlc_cache *x = t_cache(a, "x", NULL), *y = t_cache(a, "yy", NULL);
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	char key[32];

	assert_int_equal(mlc_arena_namespace(a, 0, ns, sizeof(ns)), 0);
	assert_string_equal(ns, "x");
	assert_int_equal(mlc_arena_namespace(a, 1, ns, sizeof(ns)), 0);
	assert_string_equal(ns, "yy");
	assert_int_equal(mlc_arena_namespace(a, 2, ns, sizeof(ns)), -ENOENT);
	assert_int_equal(mlc_arena_namespace(a, 1, ns, 2), -ENOBUFS);
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(mlc_set(i & 1 ? x : y, key, strlen(key), key,
					 strlen(key), NULL), 0);
	}
	assert_int_equal(mlc_arena_check(a, &rep), 0);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.slots_used, 500);
	assert_true(rep.chunks_live >= 500);
	assert_true(rep.pages > rep.pages_free);
	assert_int_equal(mlc_arena_check(NULL, &rep), -EINVAL);
	mlc_cache_close(x);
	mlc_cache_close(y);
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* A read-only handle inspects without being able to write. */
static void
test_rdonly_attach(void **state)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_event ev = { MLC_EVENT_DELETE, 1, "n", "k", 1, 0 };
	char name[64], ns[64];
	struct mlc_arena *a = t_arena(name, sizeof(name), 0, 0), *ro = NULL;
	struct mlc_cache *c = t_cache(a, "n", NULL), *rc = NULL;

	assert_int_equal(mlc_set(c, "k", 1, "v", 1, NULL), 0);
	assert_int_equal(mlc_stats(c, &st), 0);
	o.flags = MLC_ARENA_RDONLY;
	assert_int_equal(mlc_arena_open(&ro, name, &o), 0);
	assert_int_equal(mlc_arena_info(ro, &info), 0);
	assert_int_equal(info.items, 1);
	assert_int_equal(mlc_arena_namespace(ro, 0, ns, sizeof(ns)), 0);
	assert_string_equal(ns, "n");
	assert_int_equal(mlc_namespace_stats(ro, "n", &st), 0);
	assert_int_equal(st.sets, 1);
	assert_int_equal(mlc_arena_check(ro, &rep), 0);
	assert_int_equal(mlc_cache_open(&rc, ro, "n", NULL), -EPERM);
	assert_int_equal(mlc_arena_apply_event(ro, &ev), -EPERM);
	assert_int_equal(mlc_arena_close(ro), 0);
	o.flags = MLC_ARENA_RDONLY | MLC_ARENA_CREATE;
	assert_int_equal(mlc_arena_open(&ro, name, &o), -EINVAL);
	o.flags = MLC_ARENA_RDONLY | MLC_ARENA_ANON;
	assert_int_equal(mlc_arena_open(&ro, NULL, &o), -EINVAL);
	mlc_cache_close(c);
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
		cmocka_unit_test(test_hook_calling_the_cache),
		cmocka_unit_test(test_hook_writing_own_handle),
		cmocka_unit_test(test_update_ex_reports_hashes),
		cmocka_unit_test(test_update_records_report_versions),
		cmocka_unit_test(test_namespaces_and_check),
		cmocka_unit_test(test_rdonly_attach),
	};

	t_require_shm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
