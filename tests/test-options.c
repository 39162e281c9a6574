/*
 * Argument and option checks of the foundation API: size fields of options
 * structs (older, newer), defaults, bad values, NULL pointers, key, value
 * and namespace limits, error strings, versions, and handles used in a
 * child after fork().
 *
 * Children never use cmocka's asserts (they would jump into the parent's
 * copy of the runner): they return a non-zero status naming what failed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <linux/magic.h>

#include "common.h"

#define SHM_DIR "/dev/shm/"

/* Out-parameters are written only on success: failures must leave these. */
static char sentinel_obj;
#define ARENA_SENTINEL ((struct mlc_arena *)(void *)&sentinel_obj)
#define CACHE_SENTINEL ((struct mlc_cache *)(void *)&sentinel_obj)

/* Room for an options struct from a "newer mlc": ours plus 16 bytes. */
#define EXTRA 16

static int
setup(void **state)
{
	return t_fx_open(state, "opt");
}

static int
teardown(void **state)
{
	return t_fx_close(state);
}

static bool
shm_exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), SHM_DIR "%s", name);
	return lstat(path, &st) == 0;
}

/* True when creating @p bytes in /dev/shm fails at once with ENOSPC:
 * tmpfs refuses a fallocate() larger than the whole filesystem before
 * allocating anything.  Elsewhere trying could fill a disk: skip. */
static bool
shm_refuses(uint64_t bytes)
{
	struct statfs sf;

	if (statfs("/dev/shm", &sf) != 0 || sf.f_type != TMPFS_MAGIC)
		return false;
	return sf.f_blocks != 0 &&
	       (uint64_t)sf.f_blocks * (uint64_t)sf.f_bsize < bytes;
}

/* Small arena options, as t_arena() uses. */
static void
small_opts(struct mlc_arena_options *o, uint32_t flags)
{
	*o = (struct mlc_arena_options)MLC_ARENA_OPTIONS_INIT;
	o->flags = flags;
	o->bytes = 8u << 20;
	o->page_size = 64u << 10;
	o->log_cells = 1024;
	o->flight_slots = 64;
}

/* Create a fresh arena with @p o: the result must be @p want, and a
 * refused creation leaves neither a handle nor a name behind. */
static void
arena_expect(const char *label, const struct mlc_arena_options *o, int want)
{
	struct mlc_arena *a = ARENA_SENTINEL;
	char name[64];
	int rc;

	t_name(name, sizeof(name));
	rc = mlc_arena_open(&a, name, o);
	if (rc == 0) {
		mlc_arena_close(a);
		mlc_arena_unlink(name, 0);
	}
	if (rc != want)
		fail_msg("arena %s: got %d (%s), want %d (%s)", label, rc,
			 mlc_strerror(rc), want, mlc_strerror(want));
	if (want < 0) {
		assert_ptr_equal(a, ARENA_SENTINEL);
		assert_false(shm_exists(name));
	}
}

static void
cache_expect(const char *label, struct mlc_arena *a,
	     const struct mlc_cache_options *o, int want)
{
	struct mlc_cache *c = CACHE_SENTINEL;
	int rc;

	rc = mlc_cache_open(&c, a, "opt", o);
	if (rc == 0)
		mlc_cache_close(c);
	if (rc != want)
		fail_msg("cache %s: got %d (%s), want %d (%s)", label, rc,
			 mlc_strerror(rc), want, mlc_strerror(want));
	if (want < 0)
		assert_ptr_equal(c, CACHE_SENTINEL);
}

/* mlc_set() and mlc_get_ex() with @p o must both answer @p want.  The key
 * is set first with no options, so that a get that is accepted finds it. */
static void
call_expect(const char *label, struct mlc_cache *c,
	    const struct mlc_call_options *o, int want)
{
	struct mlc_value v = { 0 };
	int rs, rg;

	assert_int_equal(mlc_set(c, "call", 4, "v", 1, NULL), 0);
	rs = mlc_set(c, "call", 4, "v", 1, o);
	rg = mlc_get_ex(c, "call", 4, o, NULL, NULL, &v);
	if (rg == 0)
		mlc_value_release(&v);
	if (rs != want || rg != want)
		fail_msg("call %s: set %d (%s), get_ex %d (%s), want %d (%s)",
			 label, rs, mlc_strerror(rs), rg, mlc_strerror(rg),
			 want, mlc_strerror(want));
}

/* ---- size fields ---------------------------------------------------- */

static const size_t small_sizes[] = { 0, 4, sizeof(size_t) };

static void
test_size_too_small(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options ao;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_call_options ko = MLC_CALL_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	char label[32];

	for (size_t i = 0; i < sizeof(small_sizes) / sizeof(small_sizes[0]);
	     i++) {
		snprintf(label, sizeof(label), "size %zu", small_sizes[i]);
		small_opts(&ao, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
		ao.size = small_sizes[i];
		arena_expect(label, &ao, -EINVAL);
		co.size = small_sizes[i];
		cache_expect(label, fx->a, &co, -EINVAL);
		ko.size = small_sizes[i];
		call_expect(label, fx->c, &ko, -EINVAL);
		info.size = small_sizes[i];
		assert_int_equal(mlc_arena_info(fx->a, &info), -EINVAL);
		assert_int_equal(info.size, small_sizes[i]);
		st.size = small_sizes[i];
		assert_int_equal(mlc_stats(fx->c, &st), -EINVAL);
	}
}

/*
 * No mlc ever had structs smaller than v0.1's, so any size between the
 * first fields and sizeof(v0.1) is a bad size field, not an old caller.
 * Such a size can even end inside a field (here: one byte short).
 */
static void
test_size_below_v0(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options ao;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_call_options ko = MLC_CALL_OPTIONS_INIT;
	struct mlc_arena *a = ARENA_SENTINEL;
	struct mlc_cache *c = CACHE_SENTINEL;
	struct mlc_value v = { 0 };
	char name[64];
	int ra, rc, rs, rg;

	t_name(name, sizeof(name));
	small_opts(&ao, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	ao.size = sizeof(ao) - 1;
	ra = mlc_arena_open(&a, name, &ao);
	if (ra == 0) {
		mlc_arena_close(a);
		mlc_arena_unlink(name, 0);
	}
	co.size = sizeof(co) - 1;
	rc = mlc_cache_open(&c, fx->a, "opt", &co);
	if (rc == 0)
		mlc_cache_close(c);
	ko.size = sizeof(ko) - 1;
	rs = mlc_set(fx->c, "k", 1, "v", 1, &ko);
	rg = mlc_get_ex(fx->c, "k", 1, &ko, NULL, NULL, &v);
	if (rg == 0)
		mlc_value_release(&v);
	if (ra != -EINVAL || rc != -EINVAL || rs != -EINVAL || rg != -EINVAL)
		fail_msg("size = sizeof - 1: mlc_arena_open %d, mlc_cache_open "
			 "%d, mlc_set %d, mlc_get_ex %d; want %d for each",
			 ra, rc, rs, rg, -EINVAL);
}

static void
test_size_newer(void **state)
{
	struct t_fx *fx = *state;
	union {
		struct mlc_arena_options o;
		char b[sizeof(struct mlc_arena_options) + EXTRA];
	} ab;
	union {
		struct mlc_cache_options o;
		char b[sizeof(struct mlc_cache_options) + EXTRA];
	} cb;
	union {
		struct mlc_call_options o;
		char b[sizeof(struct mlc_call_options) + EXTRA];
	} kb;
	union {
		struct mlc_arena_info i;
		char b[sizeof(struct mlc_arena_info) + EXTRA];
	} ib;
	union {
		struct mlc_stats s;
		char b[sizeof(struct mlc_stats) + EXTRA];
	} sb;
	struct mlc_arena_options ao;
	struct mlc_arena *a = ARENA_SENTINEL;

	/* Arena: creation, and attaching to the fixture's arena. */
	memset(&ab, 0, sizeof(ab));
	small_opts(&ao, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	memcpy(ab.b, &ao, sizeof(ao));
	ab.o.size = sizeof(ab.b);
	arena_expect("newer, zero", &ab.o, 0);
	ab.b[sizeof(ao) + EXTRA - 1] = 1;
	arena_expect("newer, non-zero", &ab.o, -E2BIG);
	ab.o.flags = 0;
	assert_int_equal(mlc_arena_open(&a, fx->name, &ab.o), -E2BIG);
	assert_ptr_equal(a, ARENA_SENTINEL);
	ab.b[sizeof(ao) + EXTRA - 1] = 0;
	ab.b[sizeof(ao)] = 1;
	assert_int_equal(mlc_arena_open(&a, fx->name, &ab.o), -E2BIG);
	ab.b[sizeof(ao)] = 0;
	assert_int_equal(mlc_arena_open(&a, fx->name, &ab.o), 0);
	assert_int_equal(mlc_arena_close(a), 0);

	/* Cache. */
	memset(&cb, 0, sizeof(cb));
	cb.o.size = sizeof(cb.b);
	cb.o.lru_size = 16;
	cache_expect("newer, zero", fx->a, &cb.o, 0);
	cb.b[sizeof(cb.o)] = 1;
	cache_expect("newer, non-zero", fx->a, &cb.o, -E2BIG);

	/* Per call. */
	memset(&kb, 0, sizeof(kb));
	kb.o.size = sizeof(kb.b);
	kb.o.ttl_ms = 1000;
	call_expect("newer, zero", fx->c, &kb.o, 0);
	kb.b[sizeof(kb.o) + EXTRA - 1] = 1;
	call_expect("newer, non-zero", fx->c, &kb.o, -E2BIG);

	/* Results into a newer caller's struct: ours is filled, the size
	 * says how much, the rest is left alone. */
	memset(&ib, 0xa5, sizeof(ib));
	ib.i.size = sizeof(ib.b);
	assert_int_equal(mlc_arena_info(fx->a, &ib.i), 0);
	assert_int_equal(ib.i.size, sizeof(ib.i));
	assert_int_equal(ib.i.page_size, 64u << 10);
	assert_int_equal((unsigned char)ib.b[sizeof(ib.i)], 0xa5);
	memset(&sb, 0xa5, sizeof(sb));
	sb.s.size = sizeof(sb.b);
	assert_int_equal(mlc_stats(fx->c, &sb.s), 0);
	assert_int_equal(sb.s.size, sizeof(sb.s));
	assert_int_equal((unsigned char)sb.b[sizeof(sb.s)], 0xa5);
}

/* ---- defaults -------------------------------------------------------- */

static void
test_zero_means_default(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a = NULL, *b = NULL;
	struct mlc_cache *c = NULL;
	struct mlc_value v = { 0 };
	char name[64];

	/* Only size and flags: 64 MiB, 1 MiB pages, bytes / 512 items. */
	t_name(name, sizeof(name));
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	assert_int_equal(mlc_arena_open(&a, name, &ao), 0);
	assert_int_equal(mlc_arena_info(a, &info), 0);
	assert_int_equal(info.bytes, 64u << 20);
	assert_int_equal(info.page_size, 1u << 20);
	assert_true(info.max_items >= (64u << 20) / 512 &&
		    info.max_items < 4 * ((64u << 20) / 512));

	/* A cache with every field zero, and one with no options. */
	memset(&co, 0, sizeof(co));
	co.size = sizeof(co);
	assert_int_equal(mlc_cache_open(&c, a, "zero", &co), 0);
	assert_int_equal(mlc_set(c, "k", 1, "v", 1, NULL), 0);
	assert_int_equal(mlc_get(c, "k", 1, NULL, NULL, &v), 0);
	assert_int_equal(v.len, 1);
	/* The default TTL is 30 s. */
	assert_true(v.ttl_ms > 29000 && v.ttl_ms <= 30000);
	mlc_value_release(&v);
	assert_int_equal(mlc_cache_close(c), 0);
	assert_int_equal(mlc_cache_open(&c, a, "zero", NULL), 0);
	assert_int_equal(mlc_get(c, "k", 1, NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(mlc_cache_close(c), 0);
	assert_int_equal(mlc_arena_close(a), 0);
	assert_int_equal(mlc_arena_unlink(name, 0), 0);

	/* NULL options attach to an existing arena; per-call options may be
	 * all zero. */
	assert_int_equal(mlc_arena_open(&b, fx->name, NULL), 0);
	assert_int_equal(mlc_arena_close(b), 0);
	{
		struct mlc_call_options ko = MLC_CALL_OPTIONS_INIT;

		call_expect("all zero", fx->c, &ko, 0);
		call_expect("NULL", fx->c, NULL, 0);
	}
}

/* Only bytes given: max_items defaults to bytes / 512, which for a large
 * arena is over the field's own limit (2^30).  A default must not make
 * the options invalid: the creation should go on and fail for lack of
 * room (1 TiB does not fit in this /dev/shm). */
static void
test_default_max_items_large(void **state)
{
	struct mlc_arena_options o;
	const uint64_t bytes = UINT64_C(1) << 40;

	(void)state;
	if (!shm_refuses(bytes)) {
		print_message("/dev/shm is not a bounded tmpfs: skipping\n");
		skip();
	}
	small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	o.bytes = bytes;
	o.max_items = 1u << 20;
	arena_expect("1 TiB, max_items 2^20", &o, -ENOSPC);
	o.max_items = 0;
	arena_expect("1 TiB, default max_items", &o, -ENOSPC);
}

/* ---- bad values -------------------------------------------------------- */

static void
test_bad_arena_values(void **state)
{
	struct mlc_arena_options o;

	(void)state;
#define BAD(label, stmt)						\
	do {								\
		small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);	\
		stmt;							\
		arena_expect(label, &o, -EINVAL);			\
	} while (0)
	BAD("page_size 3 * 64 KiB", o.page_size = 3u << 16);
	BAD("page_size 32 KiB", o.page_size = 32u << 10);
	BAD("page_size 32 MiB", o.page_size = 32u << 20);
	BAD("log_cells 1000", o.log_cells = 1000);
	BAD("flight_slots 100", o.flight_slots = 100);
	BAD("bytes = 4 pages", o.bytes = 4u * (64u << 10));
	BAD("bytes 1", o.bytes = 1);
	BAD("unknown flag 1 << 5", o.flags |= 1u << 5);
	BAD("unknown flag 1 << 31", o.flags |= 1u << 31);
	BAD("mode 010000", o.mode = 010000);
	/* Permission bits only: setuid, setgid or sticky on a shared-memory
	 * object means nothing but a mistake. */
	BAD("mode 04600", o.mode = 04600);
	BAD("mode 01666", o.mode = 01666);
	BAD("mode 07777", o.mode = 07777);
	BAD("max_namespaces 4096", o.max_namespaces = 4096);
	/* Counted with mlc's own namespace after the check, until
	 * 2026-12-07: UINT32_MAX wrapped to an arena of no namespace, in
	 * which every mlc_cache_open() failed (review P). */
	BAD("max_namespaces UINT32_MAX", o.max_namespaces = UINT32_MAX);
	BAD("neg_quota_pct 101", o.neg_quota_pct = 101);
#undef BAD
	/* The edges that are allowed. */
	small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	o.mode = 0777;
	arena_expect("mode 0777", &o, 0);
	small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	o.page_size = 64u << 10;
	o.log_cells = 64;
	arena_expect("64 KiB pages, 64 log cells", &o, 0);
	small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	o.max_namespaces = 4095;
	arena_expect("max_namespaces 4095", &o, 0);
}

static int
decode_one(void *arg, const void *data, size_t len, void **obj)
{
	(void)arg;
	(void)data;
	(void)len;
	*obj = NULL;
	return 0;
}

static void
test_bad_cache_values(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o;
	struct mlc_codec nodecode = { NULL, NULL, NULL };
	struct mlc_codec codec = { decode_one, NULL, NULL };

#define CASE(label, stmt, want)						\
	do {								\
		o = (struct mlc_cache_options)MLC_CACHE_OPTIONS_INIT;	\
		stmt;							\
		cache_expect(label, fx->a, &o, want);			\
	} while (0)
	CASE("ttl_ms -2", o.ttl_ms = -2, -EINVAL);
	CASE("neg_ttl_ms -2", o.neg_ttl_ms = -2, -EINVAL);
	CASE("resurrect_ttl_ms -1", o.resurrect_ttl_ms = -1, -EINVAL);
	CASE("err_ttl_ms -1", o.err_ttl_ms = -1, -EINVAL);
	CASE("lock_policy 4", o.lock_policy = 4, -EINVAL);
	CASE("codec without decode", o.codec = &nodecode, -EINVAL);
	CASE("unknown flag 1 << 2", o.flags = 1u << 2, -EINVAL);
	CASE("unknown flag 1 << 31", o.flags = 1u << 31, -EINVAL);
	/* The edges that are allowed. */
	CASE("ttl_ms -1", o.ttl_ms = MLC_TTL_NEVER, 0);
	CASE("neg_ttl_ms -1", o.neg_ttl_ms = MLC_TTL_NEVER, 0);
	CASE("lock_policy 3", o.lock_policy = MLC_LOCK_STALE, 0);
	CASE("codec", o.codec = &codec, 0);
	CASE("known flags", o.flags = MLC_CACHE_MANUAL_UPDATE |
				      MLC_CACHE_NO_L1, 0);
#undef CASE
}

static void
test_bad_call_values(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_call_options o;
	struct mlc_value v = { 0 };

#define CASE(label, stmt, want)						\
	do {								\
		o = (struct mlc_call_options)MLC_CALL_OPTIONS_INIT;	\
		stmt;							\
		call_expect(label, fx->c, &o, want);			\
	} while (0)
	CASE("unknown flag 1 << 3", o.flags = 1u << 3, -EINVAL);
	CASE("unknown flag 1 << 31", o.flags = 1u << 31, -EINVAL);
	CASE("ttl_ms -2", o.ttl_ms = -2, -EINVAL);
	CASE("neg_ttl_ms -2", o.neg_ttl_ms = -2, -EINVAL);
	CASE("resurrect_ttl_ms -1", o.resurrect_ttl_ms = -1, -EINVAL);
	CASE("lock_policy 4", o.lock_policy = 4, -EINVAL);
	CASE("ttl_ms -1", o.ttl_ms = MLC_TTL_NEVER, 0);
	CASE("lock_policy 3", o.lock_policy = MLC_LOCK_STALE, 0);
#undef CASE

	/* peek takes call flags directly: only STALE_OK. */
	assert_int_equal(mlc_peek(fx->c, "call", 4, MLC_CALL_SWR, &v),
			 -EINVAL);
	assert_int_equal(mlc_peek(fx->c, "call", 4, 1u << 31, &v), -EINVAL);
	assert_null(v.ref);
	assert_int_equal(mlc_peek(fx->c, "call", 4, MLC_CALL_STALE_OK, &v), 0);
	mlc_value_release(&v);

	/* A negative entry has no bytes. */
	o = (struct mlc_call_options)MLC_CALL_OPTIONS_INIT;
	o.flags = MLC_CALL_NEGATIVE;
	assert_int_equal(mlc_set(fx->c, "neg", 3, "x", 1, &o), -EINVAL);
	assert_int_equal(mlc_set(fx->c, "neg", 3, "x", 0, &o), -EINVAL);
	assert_int_equal(mlc_set(fx->c, "neg", 3, NULL, 1, &o), -EINVAL);
	assert_int_equal(mlc_get(fx->c, "neg", 3, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_set(fx->c, "neg", 3, NULL, 0, &o), 0);
	assert_int_equal(mlc_get(fx->c, "neg", 3, NULL, NULL, &v), 0);
	assert_true(v.flags & MLC_NEGATIVE);
	assert_null(v.data);
	assert_int_equal(v.len, 0);
	mlc_value_release(&v);
}

/* ---- NULL pointers --------------------------------------------------- */

static void
test_null_args(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options ao;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_cache *c = CACHE_SENTINEL;
	struct mlc_value v, pattern;
	char name[64];

	t_name(name, sizeof(name));
	small_opts(&ao, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	assert_int_equal(mlc_arena_open(NULL, name, &ao), -EINVAL);
	assert_false(shm_exists(name));
	assert_int_equal(mlc_arena_open(NULL, fx->name, NULL), -EINVAL);
	assert_int_equal(mlc_arena_close(NULL), -EINVAL);
	assert_int_equal(mlc_arena_info(NULL, &info), -EINVAL);
	assert_int_equal(mlc_arena_info(fx->a, NULL), -EINVAL);
	assert_int_equal(mlc_arena_unlink(NULL, 0), -EINVAL);

	assert_int_equal(mlc_cache_open(NULL, fx->a, "ns", NULL), -EINVAL);
	assert_int_equal(mlc_cache_open(&c, NULL, "ns", NULL), -EINVAL);
	assert_int_equal(mlc_cache_open(&c, fx->a, NULL, NULL), -EINVAL);
	assert_ptr_equal(c, CACHE_SENTINEL);
	assert_int_equal(mlc_cache_close(NULL), -EINVAL);

	/* The value is untouched on error. */
	memset(&pattern, 0x5a, sizeof(pattern));
	v = pattern;
	assert_int_equal(mlc_get(NULL, "k", 1, NULL, NULL, &v), -EINVAL);
	assert_int_equal(mlc_get(fx->c, "k", 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(mlc_get(fx->c, NULL, 1, NULL, NULL, &v), -EINVAL);
	assert_int_equal(mlc_get_ex(NULL, "k", 1, NULL, NULL, NULL, &v),
			 -EINVAL);
	assert_int_equal(mlc_get_ex(fx->c, "k", 1, NULL, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(mlc_peek(NULL, "k", 1, 0, &v), -EINVAL);
	assert_int_equal(mlc_peek(fx->c, "k", 1, 0, NULL), -EINVAL);
	assert_int_equal(mlc_peek(fx->c, NULL, 1, 0, &v), -EINVAL);
	assert_int_equal(mlc_get(fx->c, "absent", 6, NULL, NULL, &v), -ENOENT);
	assert_memory_equal(&v, &pattern, sizeof(v));

	assert_int_equal(mlc_set(NULL, "k", 1, "v", 1, NULL), -EINVAL);
	assert_int_equal(mlc_set(fx->c, NULL, 1, "v", 1, NULL), -EINVAL);
	assert_int_equal(mlc_set(fx->c, "k", 1, NULL, 1, NULL), -EINVAL);
	/* No bytes at all is an empty value, not an error. */
	assert_int_equal(mlc_set(fx->c, "k", 1, NULL, 0, NULL), 0);
	memset(&v, 0, sizeof(v));
	assert_int_equal(mlc_get(fx->c, "k", 1, NULL, NULL, &v), 0);
	assert_int_equal(v.len, 0);
	assert_false(v.flags & MLC_NEGATIVE);
	mlc_value_release(&v);

	assert_int_equal(mlc_delete(NULL, "k", 1), -EINVAL);
	assert_int_equal(mlc_delete(fx->c, NULL, 1), -EINVAL);
	assert_int_equal(mlc_purge(NULL), -EINVAL);
	assert_int_equal(mlc_update(NULL), -EINVAL);
	assert_int_equal(mlc_stats(NULL, &st), -EINVAL);
	assert_int_equal(mlc_stats(fx->c, NULL), -EINVAL);
	assert_non_null(mlc_last_error(NULL));

	/* Releasing NULL or a zeroed value does nothing. */
	mlc_value_release(NULL);
	memset(&v, 0, sizeof(v));
	mlc_value_release(&v);
	mlc_value_release(&v);
	memset(&pattern, 0, sizeof(pattern));
	assert_memory_equal(&v, &pattern, sizeof(v));
}

/* ---- keys, values, namespaces ---------------------------------------- */

/* get, set, peek and delete with a key of @p len bytes: each must return
 * @p want (when @p want is 0: get and peek find the key, delete works). */
static void
key_expect(struct mlc_cache *c, const char *key, size_t len, int want)
{
	struct mlc_value v = { 0 };
	int rs, rg, rp, rd, rg2;

	rs = mlc_set(c, key, len, "val", 3, NULL);
	rg = mlc_get(c, key, len, NULL, NULL, &v);
	if (rg == 0) {
		if (v.len != 3 || memcmp(v.data, "val", 3) != 0)
			rg = 1;
		mlc_value_release(&v);
	}
	rp = mlc_peek(c, key, len, 0, &v);
	if (rp == 0)
		mlc_value_release(&v);
	rd = mlc_delete(c, key, len);
	rg2 = mlc_get(c, key, len, NULL, NULL, &v);
	if (rg2 == 0)
		mlc_value_release(&v);
	if (rs != want || rg != want || rp != want || rd != want ||
	    rg2 != (want == 0 ? -ENOENT : want))
		fail_msg("key of %zu bytes: set %d, get %d, peek %d, "
			 "delete %d, get after delete %d; want %d", len, rs,
			 rg, rp, rd, rg2, want);
}

static void
test_key_limits(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *c;
	struct mlc_value v = { 0 };
	char name[64], *key;

	key = malloc(MLC_KEY_MAX + 2);
	assert_non_null(key);
	for (size_t i = 0; i < MLC_KEY_MAX + 2; i++)
		key[i] = (char)('a' + i % 26);

	/* Empty keys, with or without a pointer. */
	key_expect(fx->c, "k", 0, -EINVAL);
	key_expect(fx->c, NULL, 0, -EINVAL);
	assert_int_equal(mlc_get(fx->c, "", 0, NULL, NULL, &v), -EINVAL);

	/* The longest key needs pages over 64 KiB to be stored: use the
	 * default 1 MiB pages. */
	t_name(name, sizeof(name));
	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = 16u << 20;
	o.log_cells = 1024;
	o.flight_slots = 64;
	assert_int_equal(mlc_arena_open(&a, name, &o), 0);
	c = t_cache(a, "keys", NULL);
	key_expect(c, key, 1, 0);
	key_expect(c, key, MLC_KEY_MAX, 0);
	key_expect(c, key, MLC_KEY_MAX + 1, -E2BIG);
	key_expect(c, key, (size_t)UINT32_MAX + 2, -E2BIG);
	/* MLC_KEY_MAX + 1 bytes is not a prefix of a stored key. */
	assert_int_equal(mlc_set(c, key, MLC_KEY_MAX, "v", 1, NULL), 0);
	assert_int_equal(mlc_get(c, key, MLC_KEY_MAX + 1, NULL, NULL, &v),
			 -E2BIG);
	assert_int_equal(mlc_get(c, key, MLC_KEY_MAX - 1, NULL, NULL, &v),
			 -ENOENT);
	assert_int_equal(mlc_cache_close(c), 0);
	assert_int_equal(mlc_arena_close(a), 0);
	assert_int_equal(mlc_arena_unlink(name, 0), 0);

	/* In 64 KiB pages the longest key is a valid argument everywhere,
	 * but key + value is more than a page: set says -E2BIG. */
	assert_int_equal(mlc_set(fx->c, key, MLC_KEY_MAX, "v", 1, NULL),
			 -E2BIG);
	assert_int_equal(mlc_get(fx->c, key, MLC_KEY_MAX, NULL, NULL, &v),
			 -ENOENT);
	assert_int_equal(mlc_peek(fx->c, key, MLC_KEY_MAX, 0, &v), -ENOENT);
	assert_int_equal(mlc_delete(fx->c, key, MLC_KEY_MAX), 0);
	free(key);
}

static void
test_value_limits(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_value v = { 0 };
	const char key[] = "value-limit-key";
	size_t klen = sizeof(key) - 1, max;
	char *buf;

	assert_int_equal(mlc_arena_info(fx->a, &info), 0);
	assert_true(info.value_max > klen && info.value_max < info.page_size);
	max = (size_t)info.value_max - klen;
	buf = malloc((size_t)info.page_size + 2);
	assert_non_null(buf);
	for (size_t i = 0; i < info.page_size + 2; i++)
		buf[i] = (char)(i * 7);

	assert_int_equal(mlc_set(fx->c, key, klen, buf, info.page_size + 1,
				 NULL), -E2BIG);
	assert_int_equal(mlc_set(fx->c, key, klen, buf, info.page_size, NULL),
			 -E2BIG);
	assert_int_equal(mlc_set(fx->c, key, klen, buf, max + 1, NULL),
			 -E2BIG);
	assert_int_equal(mlc_get(fx->c, key, klen, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_set(fx->c, key, klen, buf, max, NULL), 0);
	/* From L2, through a handle of its own. */
	{
		struct mlc_cache *c2 = t_cache(fx->a, "opt", NULL);

		assert_int_equal(mlc_get(c2, key, klen, NULL, NULL, &v), 0);
		assert_int_equal(v.level, MLC_L2);
		assert_int_equal(v.len, max);
		assert_memory_equal(v.data, buf, max);
		mlc_value_release(&v);
		assert_int_equal(mlc_cache_close(c2), 0);
	}
	free(buf);
}

static void
test_namespaces(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options o;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *ab, *a1, *c[5], *again;
	struct mlc_value v = { 0 };
	char nsname[64], name[64];

	/* Names: 1..MLC_NAME_MAX bytes. */
	c[0] = CACHE_SENTINEL;
	assert_int_equal(mlc_cache_open(&c[0], fx->a, "", NULL), -EINVAL);
	memset(nsname, 'n', sizeof(nsname));
	nsname[MLC_NAME_MAX + 1] = '\0';
	assert_int_equal(mlc_cache_open(&c[0], fx->a, nsname, NULL), -EINVAL);
	nsname[sizeof(nsname) - 1] = '\0';
	assert_int_equal(mlc_cache_open(&c[0], fx->a, nsname, NULL), -EINVAL);
	assert_ptr_equal(c[0], CACHE_SENTINEL);
	nsname[MLC_NAME_MAX] = '\0';
	assert_int_equal(mlc_cache_open(&c[0], fx->a, nsname, NULL), 0);
	assert_int_equal(mlc_cache_close(c[0]), 0);

	/* "ab" + "c" and "a" + "bc": the same bytes, two keys. */
	ab = t_cache(fx->a, "ab", NULL);
	a1 = t_cache(fx->a, "a", NULL);
	assert_int_equal(mlc_set(ab, "c", 1, "one", 3, NULL), 0);
	assert_int_equal(mlc_get(a1, "bc", 2, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_set(a1, "bc", 2, "two", 3, NULL), 0);
	assert_int_equal(mlc_get(ab, "c", 1, NULL, NULL, &v), 0);
	assert_memory_equal(v.data, "one", 3);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(a1, "bc", 2, NULL, NULL, &v), 0);
	assert_memory_equal(v.data, "two", 3);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(ab, "bc", 2, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_get(a1, "c", 1, NULL, NULL, &v), -ENOENT);
	/* Same key in two namespaces; a purge touches one. */
	assert_int_equal(mlc_set(ab, "k", 1, "in ab", 5, NULL), 0);
	assert_int_equal(mlc_set(a1, "k", 1, "in a", 4, NULL), 0);
	assert_int_equal(mlc_purge(a1), 0);
	assert_int_equal(mlc_get(ab, "k", 1, NULL, NULL, &v), 0);
	assert_memory_equal(v.data, "in ab", 5);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(a1, "k", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_cache_close(ab), 0);
	assert_int_equal(mlc_cache_close(a1), 0);

	/* A full namespace table. */
	t_name(name, sizeof(name));
	small_opts(&o, MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	o.max_namespaces = 4;
	assert_int_equal(mlc_arena_open(&a, name, &o), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(nsname, sizeof(nsname), "ns-%d", i);
		c[i] = t_cache(a, nsname, NULL);
	}
	c[4] = CACHE_SENTINEL;
	assert_int_equal(mlc_cache_open(&c[4], a, "ns-4", NULL), -ENOSPC);
	assert_ptr_equal(c[4], CACHE_SENTINEL);
	/* An existing namespace still opens. */
	again = t_cache(a, "ns-2", NULL);
	assert_int_equal(mlc_arena_info(a, &info), 0);
	assert_int_equal(info.namespaces, 4);
	assert_int_equal(mlc_cache_close(again), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mlc_cache_close(c[i]), 0);
	assert_int_equal(mlc_arena_close(a), 0);
	assert_int_equal(mlc_arena_unlink(name, 0), 0);
}

/* ---- errors and versions --------------------------------------------- */

static void
test_strerror(void **state)
{
	static const int codes[] = {
		MLC_EFORMAT, MLC_ECORRUPT, MLC_ELOADER, MLC_ECODEC,
		MLC_ESTALE, -EINVAL, -E2BIG, -ENOENT, -EEXIST, -EACCES,
		-ENOSPC, -ETIMEDOUT, -EDEADLK, -ENOMEM, -EAGAIN,
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const char *s = mlc_strerror(codes[i]);

		if (s == NULL || s[0] == '\0' ||
		    strcmp(s, "unknown error") == 0)
			fail_msg("mlc_strerror(%d): %s", codes[i],
				 s ? s : "NULL");
		/* Every code has its own text. */
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, mlc_strerror(codes[j]));
	}
	/* Anything else: still a string. */
	assert_non_null(mlc_strerror(0));
	assert_non_null(mlc_strerror(12345));
	assert_non_null(mlc_strerror(-4200));
	assert_non_null(mlc_strerror(-4206));
	assert_non_null(mlc_strerror(INT32_MIN));
	assert_non_null(mlc_strerror(-ENOTDIR));
}

/* mlc_strerror() describes every code mlc returns, as each call means it
 * (mlc.h, Conventions).  -EBUSY from mlc_arena_unlink(MLC_ARENA_UNUSED)
 * means the arena is mapped, and said "lost the race too many times"
 * (mlc_modify's meaning) until review X; -EOVERFLOW, a spent version
 * counter, had only glibc's "Value too large for defined data type". */
static void
test_strerror_says_each_use(void **state)
{
	struct t_fx *fx = *state;
	int rc = mlc_arena_unlink(fx->name, MLC_ARENA_UNUSED);

	assert_int_equal(rc, -EBUSY);	/* the fixture has it mapped */
	if (strstr(mlc_strerror(rc), "mapped") == NULL)
		fail_msg("mlc_strerror(-EBUSY) from an unlink of a mapped "
			 "arena: \"%s\"", mlc_strerror(rc));
	if (strstr(mlc_strerror(-EBUSY), "race") == NULL)
		fail_msg("mlc_strerror(-EBUSY) lost mlc_modify()'s meaning");
	if (strstr(mlc_strerror(-EOVERFLOW), "version") == NULL)
		fail_msg("mlc_strerror(-EOVERFLOW): \"%s\"",
			 mlc_strerror(-EOVERFLOW));
}

/* The version macros work in #if (an enum constant would read as 0). */
#if !defined(MLC_VERSION_NUMBER) || MLC_VERSION_NUMBER != \
	(MLC_VERSION_MAJOR << 16 | MLC_VERSION_MINOR << 8 | MLC_VERSION_PATCH)
#error "MLC_VERSION_NUMBER is not usable in #if"
#endif
#if MLC_VERSION_MAJOR == 0 && MLC_VERSION_MINOR < 1
#error "MLC_VERSION_MINOR reads as 0 in #if"
#endif

static void
test_version(void **state)
{
	char want[32];

	(void)state;
	assert_int_equal(mlc_version(), MLC_VERSION_NUMBER);
	assert_int_equal(mlc_version(),
			 (uint32_t)MLC_VERSION_MAJOR << 16 |
			 (uint32_t)MLC_VERSION_MINOR << 8 |
			 (uint32_t)MLC_VERSION_PATCH);
	snprintf(want, sizeof(want), "%d.%d.%d", MLC_VERSION_MAJOR,
		 MLC_VERSION_MINOR, MLC_VERSION_PATCH);
	assert_non_null(mlc_version_string());
	assert_string_equal(mlc_version_string(), want);
}

/* ---- fork ---------------------------------------------------------------- */

struct fork_arg {
	struct t_fx *fx;
	struct mlc_cache *pc;		/* the parent's, MANUAL_UPDATE */
	struct mlc_value held;		/* a value held across fork() */
};

/* mlc.h: "A cache handle first used in a child starts over there: its L1
 * is emptied ... Values held across fork() stay valid in both processes." */
static int
child_uses_parent_handle(void *p)
{
	struct fork_arg *fa = p;
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_value v = { 0 };

	/* The held value is readable and can be released here. */
	if (fa->held.len != 4 || memcmp(fa->held.data, "held", 4) != 0)
		return 1;
	mlc_value_release(&fa->held);
	/* Nothing is inherited from the parent's L1: "x" comes from L2. */
	if (mlc_get(fa->pc, "x", 1, NULL, NULL, &v) != 0)
		return 2;
	if (v.level != MLC_L2 || v.len != 3 || memcmp(v.data, "new", 3) != 0)
		return 3;
	mlc_value_release(&v);
	if (mlc_stats(fa->pc, &st) != 0 || st.forks != 1)
		return 4;
	/* Every call works on the inherited handles. */
	if (mlc_set(fa->pc, "from-child", 10, "c", 1, NULL) != 0)
		return 5;
	if (mlc_peek(fa->fx->c, "k", 1, 0, &v) != 0)
		return 6;
	mlc_value_release(&v);
	if (mlc_delete(fa->fx->c, "gone", 4) != 0)
		return 7;
	if (mlc_update(fa->fx->c) != 0)
		return 8;
	return 0;
}

static void
test_fork_resets_handle(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	struct mlc_value v = { 0 };
	struct fork_arg fa;
	int rc;

	fa.fx = fx;
	o.flags = MLC_CACHE_MANUAL_UPDATE;
	fa.pc = t_cache(fx->a, "opt", &o);
	assert_int_equal(mlc_set(fx->c, "k", 1, "parent", 6, NULL), 0);
	assert_int_equal(mlc_set(fx->c, "gone", 4, "g", 1, NULL), 0);
	assert_int_equal(mlc_set(fx->c, "held", 4, "held", 4, NULL), 0);
	assert_int_equal(mlc_get(fx->c, "held", 4, NULL, NULL, &fa.held), 0);
	/* "x" is "old" in pc's L1 and "new" in L2: a manual-update handle
	 * keeps serving its L1 copy. */
	assert_int_equal(mlc_set(fa.pc, "x", 1, "old", 3, NULL), 0);
	assert_int_equal(mlc_set(fx->c, "x", 1, "new", 3, NULL), 0);
	assert_int_equal(mlc_get(fa.pc, "x", 1, NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_memory_equal(v.data, "old", 3);
	mlc_value_release(&v);

	rc = t_fork(child_uses_parent_handle, &fa);
	if (rc != 0)
		fail_msg("child failed at step %d", rc);

	/* The parent's handles are not reset, and its held value is its
	 * own to release. */
	assert_int_equal(mlc_stats(fa.pc, &st), 0);
	assert_int_equal(st.forks, 0);
	assert_memory_equal(fa.held.data, "held", 4);
	mlc_value_release(&fa.held);
	assert_int_equal(mlc_get(fx->c, "k", 1, NULL, NULL, &v), 0);
	assert_memory_equal(v.data, "parent", 6);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(fx->c, "from-child", 10, NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(mlc_get(fx->c, "gone", 4, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_cache_close(fa.pc), 0);
}

static int
group_setup(void **state)
{
	(void)state;
	t_require_shm();
	return 0;
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_size_too_small),
		T(test_size_below_v0),
		T(test_size_newer),
		T(test_zero_means_default),
		T(test_default_max_items_large),
		T(test_bad_arena_values),
		T(test_bad_cache_values),
		T(test_bad_call_values),
		T(test_null_args),
		T(test_key_limits),
		T(test_value_limits),
		T(test_namespaces),
		T(test_strerror),
		T(test_strerror_says_each_use),
		T(test_version),
		T(test_fork_resets_handle),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
