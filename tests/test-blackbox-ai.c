/*
 * Black-box tests of include/mlc.h's promises, written from the header
 * and docs/api.md alone (review AI): each case is a promise the header
 * makes, checked against what the library does.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

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
	struct t_fx *fx = *state;
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

/* ---- freshness across processes ------------------------------------------
 *
 * Writers and readers in forked children, each attaching the arena by name,
 * with random naps of 0-2 ms.  Each key has one writer, which numbers its
 * changes: the "database" (db) gets the new number first (negative for a
 * delete), then the cache call, then "done" records that it returned.  A
 * reader reads done (and what completed purges left) before each lookup,
 * and checks what it gets against it: a value of its own key, whole (its
 * bytes derive from key, kind, number and stamp), never older than the last
 * change that had returned (mlc.h, mlc_set() and mlc_delete(): "tell every
 * other handle (other processes too) to drop the old value"; mlc_purge():
 * "purged data is never visible again"; mlc_arena_apply_event(): "every
 * local L1 learns it"), and a loaded value never from a load that began
 * before a purge that had returned.
 */
#define FR_KEYS 32
#define FR_NS 2
#define FR_SECONDS 3

struct fr_shared {
	_Atomic long stamp;			/* orders loads and purges */
	_Atomic long db[FR_NS][FR_KEYS];
	_Atomic long done[FR_NS][FR_KEYS];
	_Atomic long purged[FR_NS][FR_KEYS];	/* sets done before a purge */
	_Atomic long purge_stamp[FR_NS];	/* last purge's start */
	_Atomic long reads;
	char arena[64];
};

static struct fr_shared *fr;
static const char *fr_ns[FR_NS] = { "fa", "fb" };
static __thread unsigned fr_seed;

static void
fr_nap(void)
{
	if (rand_r(&fr_seed) % 3 == 0)
		usleep(rand_r(&fr_seed) % 2000);
}

/* The value of change @p n of key @p k of namespace @p ns: "S" for a set,
 * "L" for a load, made at @p stamp. */
static size_t
fr_value(char *b, int ns, int k, char kind, long n, long stamp)
{
	int h = sprintf(b, "%d:%d:%c:%ld:%ld:", ns, k, kind, n, stamp);
	size_t len = (size_t)h + (size_t)(n * 7 + k + stamp) % 200;

	for (size_t i = (size_t)h; i < len; i++)
		b[i] = (char)(k * 31 + n + stamp + (long)i);
	return len;
}

/* 0 and the kind, number and stamp of value @p d of key @p k, or -1. */
static int
fr_parse(int ns, int k, const void *d, size_t len, char *kind, long *n,
	 long *stamp)
{
	char head[80], want[512];
	int ns2, k2;
	size_t m = len < sizeof(head) - 1 ? len : sizeof(head) - 1;

	memcpy(head, d, m);
	head[m] = '\0';
	if (sscanf(head, "%d:%d:%c:%ld:%ld:", &ns2, &k2, kind, n, stamp) != 5 ||
	    ns2 != ns || k2 != k) {
		printf("ns %d key %d: another key's bytes \"%.30s\"\n", ns, k,
		       head);
		return -1;
	}
	if (fr_value(want, ns, k, *kind, *n, *stamp) != len ||
	    memcmp(want, d, len) != 0) {
		printf("ns %d key %d: torn value\n", ns, k);
		return -1;
	}
	return 0;
}

static int
fr_loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	static __thread char b[512];
	int ns = *(const int *)arg, k;
	char kb[16];
	long stamp = ++fr->stamp, n;

	memcpy(kb, key, key_len);
	kb[key_len] = '\0';
	k = atoi(kb + 1);
	n = fr->db[ns][k];
	fr_nap();
	if (n <= 0)
		return MLC_LOAD_NOTFOUND;
	out->data = b;
	out->len = fr_value(b, ns, k, 'L', n, stamp);
	return MLC_LOAD_VALUE;
}

static struct mlc_arena *
fr_attach(struct mlc_cache **c, uint32_t flags)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena *a;

	if (mlc_arena_open(&a, fr->arena, &ao) != 0)
		_exit(3);
	co.flags = flags;
	co.lru_size = 16;
	co.update_budget = 5;
	for (int i = 0; i < FR_NS; i++)
		if (mlc_cache_open(&c[i], a, fr_ns[i], &co) != 0)
			_exit(3);
	return a;
}

static void
fr_detach(struct mlc_arena *a, struct mlc_cache **c)
{
	for (int i = 0; i < FR_NS; i++)
		mlc_cache_close(c[i]);
	mlc_arena_close(a);
}

static void
fr_purge(struct mlc_arena *a, struct mlc_cache *c, int ns, bool by_event)
{
	long before[FR_KEYS], stamp;

	for (int k = 0; k < FR_KEYS; k++)
		before[k] = labs(fr->done[ns][k]);
	stamp = ++fr->stamp;
	fr_nap();
	if (by_event) {
		struct mlc_event ev = { .op = MLC_EVENT_PURGE, .ns = fr_ns[ns],
					.ns_len = 2 };

		if (mlc_arena_apply_event(a, &ev) != 0)
			_exit(4);
	} else if (mlc_purge(c) != 0) {
		_exit(4);
	}
	for (int k = 0; k < FR_KEYS; k++)
		if (fr->purged[ns][k] < before[k])
			fr->purged[ns][k] = before[k];
	if (fr->purge_stamp[ns] < stamp)
		fr->purge_stamp[ns] = stamp;
}

/* Writer @p arg (0 or 1) owns the keys k with k % 2 == arg. */
static int
fr_writer(void *arg)
{
	int w = (int)(intptr_t)arg;
	struct mlc_cache *c[FR_NS];
	struct mlc_arena *a = fr_attach(c, 0);
	long n[FR_NS][FR_KEYS] = { { 0 } };
	time_t end = time(NULL) + FR_SECONDS;

	fr_seed = (unsigned)getpid();
	while (time(NULL) < end) {
		int ns = rand_r(&fr_seed) % FR_NS, r = rand_r(&fr_seed) % 20;
		int k = (rand_r(&fr_seed) % (FR_KEYS / 2)) * 2 + w, kl;
		long v = ++n[ns][k];
		char key[16], b[512];
		struct mlc_event ev = { .ns = fr_ns[ns], .ns_len = 2,
					.key = key };

		kl = sprintf(key, "k%d", k);
		ev.key_len = (size_t)kl;
		if (r < 11) {
			fr->db[ns][k] = v;
			fr_nap();
			if (mlc_set(c[ns], key, (size_t)kl, b,
				    fr_value(b, ns, k, 'S', v, ++fr->stamp),
				    NULL) != 0)
				return 5;
			fr->done[ns][k] = v;
		} else if (r < 18) {
			fr->db[ns][k] = r < 15 ? -v : v;
			fr_nap();
			ev.op = r < 15 ? MLC_EVENT_DELETE : MLC_EVENT_SET;
			if (r < 13 ? mlc_delete(c[ns], key, (size_t)kl) != 0 :
			    mlc_arena_apply_event(a, &ev) != 0)
				return 6;
			fr->done[ns][k] = r < 15 ? -v : v;
		} else if (w == 0) {
			fr_purge(a, c[ns], ns, r == 19);
		}
		fr_nap();
	}
	fr_detach(a, c);
	return 0;
}

/* Check an answer for key @p k of @p ns against what had completed before
 * the lookup: @p done, @p purged, @p pstamp. */
static int
fr_check(int ns, int k, const struct mlc_value *v, long done, long purged,
	 long pstamp, const char *how)
{
	long n, stamp;
	char kind;

	if (v->flags & MLC_NEGATIVE) {
		/* A negative entry after a set that returned: only if a
		 * delete began since (the db says so). */
		if (done > 0 && fr->db[ns][k] == done) {
			printf("%s ns %d key %d: negative after set %ld "
			       "returned (level %u)\n", how, ns, k, done,
			       v->level);
			return -1;
		}
		return 0;
	}
	if (fr_parse(ns, k, v->data, v->len, &kind, &n, &stamp) < 0)
		return -1;
	if (n < labs(done) || (kind == 'S' && n <= purged) ||
	    (kind == 'L' && stamp < pstamp)) {
		printf("%s ns %d key %d: %c %ld (stamp %ld), after change %ld, "
		       "purge of %ld (stamp %ld) returned (level %u flags %x)\n",
		       how, ns, k, kind, n, stamp, done, purged, pstamp,
		       v->level, v->flags);
		return -1;
	}
	return 0;
}

static int
fr_reader(void *arg)
{
	int r = (int)(intptr_t)arg, bad = 0;
	struct mlc_cache *c[FR_NS];
	struct mlc_arena *a = fr_attach(c, r == 0 ? MLC_CACHE_NO_L1 : 0);
	time_t end = time(NULL) + FR_SECONDS;

	fr_seed = (unsigned)getpid() * 7u;
	while (time(NULL) < end && bad == 0) {
		int ns = rand_r(&fr_seed) % FR_NS, k = rand_r(&fr_seed) % FR_KEYS;
		int how = rand_r(&fr_seed) % 4, rc, kl;
		long done = fr->done[ns][k], purged = fr->purged[ns][k];
		long pstamp = fr->purge_stamp[ns];
		struct mlc_bulk_item it = { 0 };
		struct mlc_value v;
		char key[16];
		static const char *hows[] = { "get", "peek", "bulk", "load" };

		kl = sprintf(key, "k%d", k);
		if (how == 0) {
			rc = mlc_get(c[ns], key, (size_t)kl, NULL, NULL, &v);
		} else if (how == 1) {
			rc = mlc_peek(c[ns], key, (size_t)kl, 0, &v);
		} else if (how == 2) {
			it.key = key;
			it.key_len = (size_t)kl;
			mlc_get_bulk(c[ns], &it, 1, NULL, fr_loader, &ns);
			rc = it.status;
			v = it.value;
		} else {
			rc = mlc_get(c[ns], key, (size_t)kl, fr_loader, &ns,
				     &v);
		}
		if (rc == -ENOENT)
			continue;
		if (rc != 0) {
			printf("%s: %s\n", hows[how], mlc_strerror(rc));
			bad = 1;
			break;
		}
		fr->reads++;
		if (fr_check(ns, k, &v, done, purged, pstamp, hows[how]) < 0)
			bad = 1;
		mlc_value_release(&v);
		fr_nap();
	}
	fr_detach(a, c);
	return bad;
}

static struct fr_shared *
fr_setup(struct t_fx *fx)
{
	struct fr_shared *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(s != MAP_FAILED);
	memset(s, 0, sizeof(*s));
	snprintf(s->arena, sizeof(s->arena), "%s", fx->name);
	return s;
}

/* Readers through L1, L2 (a MLC_CACHE_NO_L1 handle), bulk gets and gets
 * with a loader, against sets, deletes, purges and applied events made in
 * other processes: nothing older than a change that had returned. */
static void
test_fresh_after_completed_changes(void **state)
{
	struct t_fx *fx = *state;
	int pid[5];

	fr = fr_setup(fx);
	for (int i = 0; i < 2; i++)
		pid[i] = t_spawn(fr_writer, (void *)(intptr_t)i);
	for (int i = 0; i < 3; i++)
		pid[2 + i] = t_spawn(fr_reader, (void *)(intptr_t)i);
	for (int i = 0; i < 5; i++)
		assert_int_equal(t_wait(pid[i]), 0);
	assert_true(fr->reads > 0);
	munmap(fr, sizeof(*fr));
}

/* A cache layered over a MLC_CACHE_MANUAL_UPDATE handle, as mlc.h's
 * mlc_update_watch() and mlc_update_records() describe it: it serves its
 * own copy while the log head and the handle's cursor are equal, and
 * drops what the records (or MLC_UPDATE_ALL) say is older.  Nothing it
 * serves may be older than a change another process had completed. */
static int
layered_reader(void *arg)
{
	struct {
		bool have;
		long n;
		uint64_t version;
	} copy[FR_NS][FR_KEYS];
	uint64_t hash[FR_NS][FR_KEYS];
	struct mlc_cache *c[FR_NS];
	struct mlc_arena *a = fr_attach(c, MLC_CACHE_MANUAL_UPDATE);
	const volatile uint64_t *head[FR_NS];
	const uint64_t *cursor[FR_NS];
	time_t end = time(NULL) + FR_SECONDS;
	int bad = 0;

	(void)arg;
	fr_seed = (unsigned)getpid() * 13u;
	memset(copy, 0, sizeof(copy));
	for (int ns = 0; ns < FR_NS; ns++) {
		char key[16];

		if (mlc_update_watch(c[ns], &head[ns], &cursor[ns]) != 0)
			return 2;
		for (int k = 0; k < FR_KEYS; k++)
			hash[ns][k] = mlc_key_hash(c[ns], key,
				(size_t)sprintf(key, "k%d", k));
	}
	while (time(NULL) < end && bad == 0) {
		int ns = rand_r(&fr_seed) % FR_NS, k = rand_r(&fr_seed) % FR_KEYS;
		long done = fr->done[ns][k], purged = fr->purged[ns][k];
		long pstamp = fr->purge_stamp[ns];
		struct mlc_update_record rec[8];
		struct mlc_value v;
		uint32_t flags;
		char key[16];
		size_t n;
		int kl = sprintf(key, "k%d", k);

		for (int tries = 0; *head[ns] != *cursor[ns] && tries < 100;
		     tries++) {
			if (mlc_update_records(c[ns], rec, 8, &n, &flags) != 0)
				return 2;
			if (flags & MLC_UPDATE_ALL)
				memset(copy[ns], 0, sizeof(copy[ns]));
			for (size_t i = 0; i < n; i++)
				for (int j = 0; j < FR_KEYS; j++)
					if (hash[ns][j] == rec[i].hash &&
					    copy[ns][j].version <
					    rec[i].version)
						copy[ns][j].have = false;
		}
		if (*head[ns] == *cursor[ns] && copy[ns][k].have) {
			long lag = copy[ns][k].n;

			if (lag < labs(done) || lag <= purged) {
				printf("layered copy of ns %d key %d: %ld, "
				       "after change %ld, purge of %ld\n", ns,
				       k, lag, done, purged);
				bad = 1;
			}
			continue;
		}
		if (mlc_get(c[ns], key, (size_t)kl, NULL, NULL, &v) != 0) {
			copy[ns][k].have = false;
			continue;
		}
		if (fr_check(ns, k, &v, done, purged, pstamp, "manual") < 0) {
			bad = 1;
		} else if (!(v.flags & MLC_NEGATIVE)) {
			char kind;
			long stamp;

			fr_parse(ns, k, v.data, v.len, &kind, &copy[ns][k].n,
				 &stamp);
			copy[ns][k].version = v.version;
			copy[ns][k].have = true;
			fr->reads++;
		}
		mlc_value_release(&v);
		fr_nap();
	}
	fr_detach(a, c);
	return bad;
}

static void
test_layered_cache_across_processes(void **state)
{
	struct t_fx *fx = *state;
	int pid[4];

	fr = fr_setup(fx);
	for (int i = 0; i < 2; i++)
		pid[i] = t_spawn(fr_writer, (void *)(intptr_t)i);
	for (int i = 0; i < 2; i++)
		pid[2 + i] = t_spawn(layered_reader, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(t_wait(pid[i]), 0);
	assert_true(fr->reads > 0);
	munmap(fr, sizeof(*fr));
}

/* ---- out-structs of an older build ----------------------------------------
 *
 * mlc.h, Conventions: the size field is what the caller set to sizeof in
 * its own build; a program built against an older header has shorter
 * structs (mlc_arena_info before 0.2 ends at stale_frees' neighbours, and
 * so on).  A call fills what fits, and a program that keeps its struct and
 * calls again (a monitor on a timer) must not be written past its end the
 * second time.
 */
#define OLD_TAIL 512

/* @p buf holds a struct of @p size bytes and a poisoned tail: call @p fn
 * twice, then check the size field and the tail. */
static void
check_old_caller(const char *what, unsigned char *buf, size_t size,
		 int (*fn)(struct t_fx *, void *), struct t_fx *fx)
{
	memset(buf, 0xee, size + OLD_TAIL);
	memcpy(buf, &size, sizeof(size));
	for (int call = 1; call <= 2; call++) {
		size_t now;

		assert_int_equal(fn(fx, buf), 0);
		memcpy(&now, buf, sizeof(now));
		if (now > size)
			fail_msg("%s: call %d set size to %zu, the caller's "
				 "struct has %zu", what, call, now, size);
		for (size_t i = size; i < size + OLD_TAIL; i++)
			if (buf[i] != 0xee)
				fail_msg("%s: call %d wrote byte %zu of a "
					 "%zu-byte struct", what, call, i,
					 size);
	}
}

static int
old_info(struct t_fx *fx, void *buf)
{
	return mlc_arena_info(fx->a, buf);
}

static int
old_class(struct t_fx *fx, void *buf)
{
	return mlc_arena_class(fx->a, 0, buf);
}

static int
old_ns_info(struct t_fx *fx, void *buf)
{
	return mlc_namespace_info(fx->a, "ns", buf);
}

static int
old_check(struct t_fx *fx, void *buf)
{
	return mlc_arena_check(fx->a, buf);
}

static int
old_stats(struct t_fx *fx, void *buf)
{
	return mlc_namespace_stats(fx->a, "ns", buf);
}

static void
test_older_out_structs_reused(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "ns", NULL);
	static unsigned char buf[4096];

	assert_int_equal(mlc_set(c, "k", 1, "v", 1, NULL), 0);
	check_old_caller("mlc_arena_info (0.1)", buf,
			 offsetof(struct mlc_arena_info, created_ms),
			 old_info, fx);
	check_old_caller("mlc_arena_info (0.3.0)", buf,
			 offsetof(struct mlc_arena_info, huge_bytes),
			 old_info, fx);
	check_old_caller("mlc_arena_class", buf,
			 offsetof(struct mlc_class_info, pages_in),
			 old_class, fx);
	check_old_caller("mlc_namespace_info", buf,
			 offsetof(struct mlc_namespace_info, purges),
			 old_ns_info, fx);
	check_old_caller("mlc_arena_check", buf,
			 offsetof(struct mlc_check_report, pages_moving),
			 old_check, fx);
	check_old_caller("mlc_namespace_stats", buf,
			 offsetof(struct mlc_stats, forks), old_stats, fx);
	mlc_cache_close(c);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, t_fx_arena, t_fx_close)
	const struct CMUnitTest tests[] = {
		T(test_last_error_after_refused_arguments),
		T(test_fresh_after_completed_changes),
		T(test_layered_cache_across_processes),
		T(test_older_out_structs_reused),
	};
#undef T

	t_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
