/*
 * The get/set/delete/peek/purge contract of include/mlc.h, one test per
 * behaviour: levels, TTLs in ms (remaining TTL on promotion, "never" apart
 * from "0 left"), loader outcomes, negative caching, stale values and
 * resurrect_ttl, the codec, value lifetime, L1 bounds, option checks,
 * namespaces, key and value limits, and the per-handle counters.
 *
 * docs/semantics.md names the test that proves each rule (and each edge
 * case E<n> of research/mlcache-behaviour.md §3).  Time moves only through
 * mlc__clock_advance(); the real clock still ticks underneath, so bounds
 * are one-sided where a tick could matter.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- helpers ------------------------------------------------------------ */

static struct mlc_cache *
cache_ttl(struct mlc_arena *a, const char *ns, int64_t ttl, int64_t neg_ttl)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;

	o.ttl_ms = ttl;
	o.neg_ttl_ms = neg_ttl;
	return t_cache(a, ns, &o);
}

static int
get(struct mlc_cache *c, const char *key, mlc_loader_fn *loader, void *arg,
    struct mlc_value *v)
{
	return mlc_get(c, key, strlen(key), loader, arg, v);
}

static int
get_flags(struct mlc_cache *c, const char *key, uint32_t flags,
	  struct mlc_value *v)
{
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;

	o.flags = flags;
	return mlc_get_ex(c, key, strlen(key), &o, NULL, NULL, v);
}

static int
peek(struct mlc_cache *c, const char *key, uint32_t flags,
     struct mlc_value *v)
{
	return mlc_peek(c, key, strlen(key), flags, v);
}

static int
set(struct mlc_cache *c, const char *key, const char *val, int64_t ttl)
{
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;

	o.ttl_ms = ttl;
	return mlc_set(c, key, strlen(key), val, strlen(val), &o);
}

static int
set_negative(struct mlc_cache *c, const char *key, int64_t neg_ttl)
{
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;

	o.flags = MLC_CALL_NEGATIVE;
	o.neg_ttl_ms = neg_ttl;
	return mlc_set(c, key, strlen(key), NULL, 0, &o);
}

/* The value holds exactly @p s, is positive, and fresh. */
static void
check_bytes(const struct mlc_value *v, const char *s)
{
	assert_int_equal(v->len, strlen(s));
	assert_non_null(v->data);
	assert_memory_equal(v->data, s, strlen(s));
	assert_false(v->flags & MLC_NEGATIVE);
}

static void
check_negative(const struct mlc_value *v)
{
	assert_true(v->flags & MLC_NEGATIVE);
	assert_null(v->data);
	assert_int_equal(v->len, 0);
}

static struct mlc_stats
stats(struct mlc_cache *c)
{
	struct mlc_stats st = MLC_STATS_INIT;

	assert_int_equal(mlc_stats(c, &st), 0);
	return st;
}

static struct mlc_arena_info
arena_info(struct mlc_arena *a)
{
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;

	assert_int_equal(mlc_arena_info(a, &ai), 0);
	return ai;
}

/* ---- a scripted loader --------------------------------------------------- */

static int releases;		/* load.release calls, every loader */

static void
count_release(void *data)
{
	releases++;
	free(data);
}

struct script {
	int result;		/* what the loader returns */
	const char *data;	/* copied to the heap when heap is set */
	size_t len;		/* (size_t)-1: strlen(data) */
	bool heap;		/* malloc a copy and set load.release */
	bool null_data;		/* data NULL, len as given */
	int64_t ttl;
	uint32_t flags;
	const char *errmsg;
	int calls;
};

static int
scripted(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	struct script *s = arg;
	size_t len = s->data && s->len == (size_t)-1 ? strlen(s->data) : s->len;

	(void)key;
	(void)key_len;
	s->calls++;
	if (s->null_data) {
		out->data = NULL;
		out->len = len;
	} else if (s->data != NULL && s->heap) {
		char *p = malloc(len ? len : 1);

		assert_non_null(p);
		memcpy(p, s->data, len);
		out->data = p;
		out->len = len;
		out->release = count_release;
	} else if (s->data != NULL) {
		out->data = s->data;
		out->len = len;
	}
	out->ttl_ms = s->ttl;
	out->flags = s->flags;
	if (s->errmsg != NULL)
		snprintf(out->errmsg, sizeof(out->errmsg), "%s", s->errmsg);
	return s->result;
}

#define VALUE(str) { .result = MLC_LOAD_VALUE, .data = (str), .len = (size_t)-1 }
#define NOTFOUND { .result = MLC_LOAD_NOTFOUND }
#define FAIL(msg) { .result = -EIO, .errmsg = (msg) }

/* ---- a codec: decimal text -> malloc'd int64 ------------------------------ */

struct codec_ctx {
	int decodes, frees, failures;
	int fail_next;		/* fail this many decodes */
	/* Once, inside a decode: @c writer sets @c key to "77", then a get
	 * of another key on @c self applies that set's record. */
	struct mlc_cache *self, *writer;
	const char *key;
	int nested_rc;
	/* Once, inside a decode: a get of "other" on @c self with this
	 * loader (review R). */
	mlc_loader_fn *loader;
	void *loader_arg;
};

static int
dec_decode(void *arg, const void *data, size_t len, void **obj)
{
	struct codec_ctx *cc = arg;
	const char *s = data;
	int64_t n = 0, *p;

	cc->decodes++;
	if (cc->loader != NULL) {
		mlc_loader_fn *loader = cc->loader;
		struct mlc_value v = { 0 };

		cc->loader = NULL;
		cc->nested_rc = mlc_get(cc->self, "other", 5, loader,
					cc->loader_arg, &v);
		mlc_value_release(&v);
	}
	if (cc->writer != NULL) {
		struct mlc_cache *w = cc->writer;
		struct mlc_value v = { 0 };

		cc->writer = NULL;
		cc->nested_rc = mlc_set(w, cc->key, strlen(cc->key), "77", 2,
					NULL);
		if (cc->nested_rc == 0)
			cc->nested_rc = mlc_get(cc->self, "other", 5, NULL,
						NULL, &v);
	}
	if (cc->fail_next > 0) {
		cc->fail_next--;
		cc->failures++;
		return -EBADMSG;
	}
	if (len == 0 || len > 18) {
		cc->failures++;
		return -EBADMSG;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			cc->failures++;
			return -EBADMSG;
		}
		n = n * 10 + (s[i] - '0');
	}
	p = malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	*p = n;
	*obj = p;
	return 0;
}

static void
dec_free(void *arg, void *obj)
{
	struct codec_ctx *cc = arg;

	cc->frees++;
	free(obj);
}

static struct mlc_cache *
cache_codec(struct mlc_arena *a, const char *ns, struct codec_ctx *cc,
	    struct mlc_codec *codec)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;

	codec->decode = dec_decode;
	codec->free_fn = dec_free;
	codec->arg = cc;
	o.codec = codec;
	return t_cache(a, ns, &o);
}

static int64_t
obj_int(const struct mlc_value *v)
{
	assert_non_null(v->obj);
	return *(const int64_t *)v->obj;
}

/* ---- levels and TTLs ------------------------------------------------------ */

/* First get runs the loader (L3), the second is L1; another handle on the
 * namespace finds it in L2, then in its own L1. */
static void
test_levels(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "lv", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "lv", NULL);
	struct script s = VALUE("hello");
	struct mlc_value v = { 0 };

	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_bytes(&v, "hello");
	assert_int_equal(s.calls, 1);
	mlc_value_release(&v);

	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_bytes(&v, "hello");
	mlc_value_release(&v);

	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_bytes(&v, "hello");
	mlc_value_release(&v);

	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_bytes(&v, "hello");
	assert_false(v.flags & (MLC_STALE | MLC_NOT_CACHED | MLC_NO_EXPIRY));
	mlc_value_release(&v);
	assert_int_equal(s.calls, 1);

	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* An L2 hit goes to L1 with the time it has left, so L1 and L2 expire
 * together: never an L1 hit after the L2 entry expired. */
static void
test_promotion_remaining_ttl(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = cache_ttl(fx->a, "pr", 30000, 0);
	struct mlc_cache *c2 = cache_ttl(fx->a, "pr", 30000, 0);
	struct mlc_value v = { 0 };

	assert_int_equal(set(c1, "k", "v", 1000), 0);
	mlc__clock_advance(600);

	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 400);
	mlc_value_release(&v);

	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 400);
	mlc_value_release(&v);

	mlc__clock_advance(401);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(peek(c2, "k", 0, &v), -ENOENT);
	assert_null(v.ref);

	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* MLC_TTL_NEVER: value.ttl_ms == MLC_TTL_NEVER with MLC_NO_EXPIRY, at every
 * level and however much time passes; never confused with "0 ms left". */
static void
test_ttl_never(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = cache_ttl(fx->a, "nv", MLC_TTL_NEVER, 0);
	struct mlc_cache *c2 = cache_ttl(fx->a, "nv", 1000, 0);
	struct script s = VALUE("forever");
	struct mlc_value v = { 0 };

	/* The handle's ttl_ms, through the loader. */
	assert_int_equal(get(c1, "a", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_int_equal(v.ttl_ms, MLC_TTL_NEVER);
	assert_true(v.flags & MLC_NO_EXPIRY);
	mlc_value_release(&v);
	/* A per-call TTL on another handle. */
	assert_int_equal(set(c2, "b", "forever", MLC_TTL_NEVER), 0);

	mlc__clock_advance(10 * 24 * 3600 * 1000LL);
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "b" : "a";

		assert_int_equal(get(c1, key, NULL, NULL, &v), 0);
		assert_int_equal(v.ttl_ms, MLC_TTL_NEVER);
		assert_true(v.flags & MLC_NO_EXPIRY);
		check_bytes(&v, "forever");
		mlc_value_release(&v);
		assert_int_equal(get(c2, key, NULL, NULL, &v), 0);
		assert_int_equal(v.ttl_ms, MLC_TTL_NEVER);
		assert_true(v.flags & MLC_NO_EXPIRY);
		mlc_value_release(&v);
		assert_int_equal(peek(c2, key, 0, &v), 0);
		assert_int_equal(v.ttl_ms, MLC_TTL_NEVER);
		assert_true(v.flags & MLC_NO_EXPIRY);
		assert_false(v.flags & MLC_STALE);
		mlc_value_release(&v);
	}
	/* A finite TTL never carries MLC_NO_EXPIRY.  (A minute: 5 ms ran
	 * out between the set and the peek under valgrind on a busy
	 * machine.) */
	assert_int_equal(set(c2, "c", "x", 60000), 0);
	assert_int_equal(peek(c2, "c", 0, &v), 0);
	assert_false(v.flags & MLC_NO_EXPIRY);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 60000);
	mlc_value_release(&v);

	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* E22: any non-zero TTL is at least 1 ms: a 1 ms entry is a hit until the
 * clock moves 1 ms, then a miss. */
static void
test_ttl_one_ms(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "one", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "one", NULL);
	struct script s = VALUE("brief");
	struct mlc_value v = { 0 };
	bool seen = false;

	s.ttl = 1;
	/* The real clock may tick between two calls: try until one set and
	 * its reads fall inside one tick. */
	for (int tries = 0; tries < 100 && !seen; tries++) {
		uint64_t t0 = mlc__now_ms();
		int r1, r2, r3;

		assert_int_equal(set(c1, "k", "brief", 1), 0);
		r1 = get(c1, "k", NULL, NULL, &v);	/* L1 */
		if (r1 == 0) {
			assert_true(v.ttl_ms == 1);
			mlc_value_release(&v);
		}
		r2 = peek(c2, "k", 0, &v);		/* L2 */
		if (r2 == 0) {
			assert_true(v.ttl_ms == 1);
			mlc_value_release(&v);
		}
		r3 = get(c2, "j", scripted, &s, &v);	/* loader's ttl */
		assert_int_equal(r3, 0);
		if (v.level == MLC_L3)
			assert_true(v.ttl_ms == 1);
		mlc_value_release(&v);
		if (mlc__now_ms() != t0) {
			mlc__clock_advance(1);
			continue;
		}
		assert_int_equal(r1, 0);
		assert_int_equal(r2, 0);
		seen = true;
	}
	assert_true(seen);
	mlc__clock_advance(1);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(peek(c2, "j", 0, &v), -ENOENT);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* ---- loader outcomes ------------------------------------------------------ */

/* load.ttl_ms overrides the handle's ttl_ms for a value (and neg_ttl_ms for
 * a negative entry); MLC_TTL_NEVER is allowed. */
static void
test_loader_ttl_override(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = cache_ttl(fx->a, "lt", 10000, 10000);
	struct script s = VALUE("short");
	struct script n = NOTFOUND;
	struct script f = VALUE("ever");
	struct mlc_value v = { 0 };

	s.ttl = 50;
	n.ttl = 300;
	f.ttl = MLC_TTL_NEVER;
	assert_int_equal(get(c, "s", scripted, &s, &v), 0);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 50);
	mlc_value_release(&v);
	assert_int_equal(get(c, "n", scripted, &n, &v), 0);
	check_negative(&v);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 300);
	mlc_value_release(&v);
	assert_int_equal(get(c, "f", scripted, &f, &v), 0);
	assert_int_equal(v.ttl_ms, MLC_TTL_NEVER);
	assert_true(v.flags & MLC_NO_EXPIRY);
	mlc_value_release(&v);

	/* A per-call ttl_ms applies to what the loader stores, and the
	 * loader's own ttl_ms wins over it. */
	{
		struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
		struct script d = VALUE("call");

		co.ttl_ms = 80;
		assert_int_equal(mlc_get_ex(c, "p", 1, &co, scripted, &d, &v),
				 0);
		assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 80);
		mlc_value_release(&v);
		d.ttl = 40;
		assert_int_equal(mlc_get_ex(c, "q", 1, &co, scripted, &d, &v),
				 0);
		assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 40);
		mlc_value_release(&v);
	}

	mlc__clock_advance(51);
	assert_int_equal(get(c, "s", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_int_equal(s.calls, 2);
	mlc_value_release(&v);
	assert_int_equal(get(c, "n", scripted, &n, &v), 0);
	assert_int_equal(v.level, MLC_L1);	/* 300 ms not over yet */
	mlc_value_release(&v);
	mlc__clock_advance(250);
	assert_int_equal(get(c, "n", scripted, &n, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_int_equal(n.calls, 2);
	mlc_value_release(&v);
	assert_int_equal(get(c, "f", scripted, &f, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_int_equal(f.calls, 1);
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* MLC_LOAD_NO_CACHE: the value is returned flagged MLC_NOT_CACHED, stored
 * nowhere, and the next get runs the loader again. */
static void
test_loader_no_cache(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "nc", NULL);
	struct script s = VALUE("once");
	struct mlc_value v = { 0 };

	s.flags = MLC_LOAD_NO_CACHE;
	s.heap = true;
	releases = 0;
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_true(v.flags & MLC_NOT_CACHED);
	check_bytes(&v, "once");
	mlc_value_release(&v);
	assert_int_equal(releases, 1);

	assert_int_equal(peek(c, "k", 0, &v), -ENOENT);
	assert_int_equal(peek(c, "k", MLC_CALL_STALE_OK, &v), -ENOENT);
	assert_int_equal(get(c, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_true(v.flags & MLC_NOT_CACHED);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 2);
	assert_int_equal(releases, 2);
	mlc_cache_close(c);
}

/* MLC_LOAD_NOTFOUND: a negative entry for neg_ttl_ms, answered from L1
 * without the loader, then loaded again. */
static void
test_loader_notfound_negative(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = cache_ttl(fx->a, "nf", 10000, 200);
	struct mlc_cache *c2 = cache_ttl(fx->a, "nf", 10000, 200);
	struct script s = NOTFOUND;
	struct mlc_value v = { 0 };

	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_negative(&v);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 200);
	assert_null(v.obj);
	mlc_value_release(&v);

	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_negative(&v);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 1);

	/* In L2 too, as a negative entry. */
	assert_int_equal(peek(c2, "k", 0, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_negative(&v);
	mlc_value_release(&v);

	mlc__clock_advance(201);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_negative(&v);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 2);
	mlc_cache_close(c);
	mlc_cache_close(c2);
}

/* A loader error: MLC_ELOADER, mlc_last_error() gives the loader's errmsg,
 * nothing is cached and the value is untouched. */
static void
test_loader_error(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "le", NULL);
	struct script s = FAIL("backend down: db01 refused");
	struct script ok = VALUE("fine");
	struct mlc_value v = { 0 };

	v.len = 12345;
	assert_int_equal(get(c, "k", scripted, &s, &v), MLC_ELOADER);
	assert_string_equal(mlc_last_error(c), "backend down: db01 refused");
	assert_int_equal(v.len, 12345);	/* untouched on error */
	assert_null(v.ref);
	v.len = 0;

	assert_int_equal(peek(c, "k", MLC_CALL_STALE_OK, &v), -ENOENT);
	assert_int_equal(get(c, "k", NULL, NULL, &v), -ENOENT);
	/* Errors are not cached: the next get runs the loader again. */
	assert_int_equal(get(c, "k", scripted, &s, &v), MLC_ELOADER);
	assert_int_equal(s.calls, 2);
	assert_int_equal(get(c, "k", scripted, &ok, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_bytes(&v, "fine");
	mlc_value_release(&v);

	/* Without a message the error still has a description. */
	s.errmsg = NULL;
	assert_int_equal(get(c, "k2", scripted, &s, &v), MLC_ELOADER);
	assert_non_null(mlc_last_error(c));
	assert_true(strlen(mlc_last_error(c)) > 0);
	mlc_cache_close(c);
}

/* E28: a loader that returns an error AND data: the error wins, nothing
 * is returned or cached, and the data is released once. */
static void
test_loader_error_with_data(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "e28", NULL);
	struct script s = { .result = -EIO, .data = "half-baked",
			    .len = (size_t)-1, .heap = true,
			    .errmsg = "partial read" };
	struct mlc_value v = { 0 };

	releases = 0;
	assert_int_equal(get(c, "k", scripted, &s, &v), MLC_ELOADER);
	assert_string_equal(mlc_last_error(c), "partial read");
	assert_null(v.ref);
	assert_null(v.data);
	assert_int_equal(releases, 1);
	assert_int_equal(peek(c, "k", MLC_CALL_STALE_OK, &v), -ENOENT);
	mlc_cache_close(c);
}

/* E3: invalid loader output is an error with a message, never a crash or
 * a stored value: NULL data with a length, ttl_ms < MLC_TTL_NEVER, a
 * result that is neither MLC_LOAD_VALUE nor MLC_LOAD_NOTFOUND. */
static void
test_loader_invalid_output(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "inv", NULL);
	struct script bad[] = {
		{ .result = MLC_LOAD_VALUE, .null_data = true, .len = 10 },
		{ .result = MLC_LOAD_VALUE, .data = "x", .len = 1, .ttl = -2,
		  .heap = true },
		{ .result = MLC_LOAD_NOTFOUND, .ttl = -5 },
		{ .result = 7, .data = "y", .len = 1, .heap = true },
	};
	struct mlc_value v = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char key[8];

		releases = 0;
		snprintf(key, sizeof(key), "k%zu", i);
		assert_int_equal(get(c, key, scripted, &bad[i], &v),
				 MLC_ELOADER);
		assert_null(v.ref);
		assert_true(strlen(mlc_last_error(c)) > 0);
		assert_string_not_equal(mlc_last_error(c), "no error");
		assert_int_equal(releases, bad[i].heap ? 1 : 0);
		assert_int_equal(peek(c, key, MLC_CALL_STALE_OK, &v), -ENOENT);
	}
	assert_int_equal(stats(c).loader_errors, 4);
	mlc_cache_close(c);
}

/* load.release is called exactly once on the loader's data, whatever
 * the outcome. */
static void
test_loader_release_once(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "rel", NULL);
	struct mlc_arena_info ai = arena_info(fx->a);
	size_t big = ai.value_max + 1;
	char *bigbuf = malloc(big);
	struct script outcomes[] = {
		{ .result = MLC_LOAD_VALUE, .data = "v", .len = 1 },
		{ .result = MLC_LOAD_VALUE, .data = "v", .len = 1,
		  .flags = MLC_LOAD_NO_CACHE },
		{ .result = MLC_LOAD_NOTFOUND, .data = "v", .len = 1 },
		{ .result = -EIO, .data = "v", .len = 1 },
		{ .result = MLC_LOAD_VALUE, .data = "v", .len = 1, .ttl = -9 },
		{ .result = 42, .data = "v", .len = 1 },
		{ .result = MLC_LOAD_VALUE, .data = bigbuf, .len = big },
		{ .result = MLC_LOAD_VALUE, .data = "", .len = 0 },
	};
	struct mlc_value v = { 0 };

	assert_non_null(bigbuf);
	memset(bigbuf, 'B', big);
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
		char key[8];
		int rc;

		releases = 0;
		outcomes[i].heap = true;
		snprintf(key, sizeof(key), "k%zu", i);
		rc = get(c, key, scripted, &outcomes[i], &v);
		if (rc == 0)
			mlc_value_release(&v);
		assert_int_equal(outcomes[i].calls, 1);
		if (releases != 1)
			fail_msg("outcome %zu: release called %d times", i,
				 releases);
	}
	free(bigbuf);
	mlc_cache_close(c);
}

/* A miss without a loader is -ENOENT; a cached negative is 0 with
 * MLC_NEGATIVE: the two never look alike. */
static void
test_miss_vs_negative(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "mn", NULL);
	struct mlc_value v = { 0 };

	assert_int_equal(get(c, "k", NULL, NULL, &v), -ENOENT);
	assert_null(v.ref);
	assert_int_equal(set_negative(c, "k", 0), 0);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	check_negative(&v);
	assert_non_null(v.ref);
	mlc_value_release(&v);
	assert_int_equal(peek(c, "k", 0, &v), 0);
	check_negative(&v);
	mlc_value_release(&v);
	assert_int_equal(stats(c).misses, 1);
	assert_int_equal(stats(c).negative_hits, 1);
	mlc_cache_close(c);
}

/* ---- stale values and resurrect_ttl ---------------------------------------- */

/* E11: resurrect_ttl_ms 0 means "off": a loader error with an expired
 * value present is MLC_ELOADER, and the expired value stays stale. */
static void
test_resurrect_disabled(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = cache_ttl(fx->a, "rd", 100, 0);
	struct script ok = VALUE("old");
	struct script bad = FAIL("down");
	struct mlc_value v = { 0 };

	assert_int_equal(get(c, "k", scripted, &ok, &v), 0);
	mlc_value_release(&v);
	mlc__clock_advance(150);
	assert_int_equal(get(c, "k", scripted, &bad, &v), MLC_ELOADER);
	assert_string_equal(mlc_last_error(c), "down");
	assert_null(v.ref);
	/* Still there as stale for those who ask, never re-stored. */
	assert_int_equal(peek(c, "k", 0, &v), -ENOENT);
	assert_int_equal(peek(c, "k", MLC_CALL_STALE_OK, &v), 0);
	assert_true(v.flags & MLC_STALE);
	assert_int_equal(v.ttl_ms, 0);
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* E11, E13, E26: with resurrect_ttl_ms > 0 a loader error serves the stale
 * value flagged MLC_STALE and re-stores it for resurrect_ttl_ms, so another
 * handle gets it flagged MLC_STALE too, and the flag stays in L1. */
static void
test_resurrect_stale(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c1, *c2;
	struct script ok = VALUE("old");
	struct script bad = FAIL("down");
	struct script fresh = VALUE("new");
	struct mlc_value v = { 0 };

	o.ttl_ms = 100;
	o.resurrect_ttl_ms = 500;
	c1 = t_cache(fx->a, "rs", &o);
	c2 = cache_ttl(fx->a, "rs", 100, 0);

	assert_int_equal(get(c1, "k", scripted, &ok, &v), 0);
	mlc_value_release(&v);
	mlc__clock_advance(150);

	bad.heap = true;
	bad.data = "ignored";
	bad.len = (size_t)-1;
	releases = 0;
	assert_int_equal(get(c1, "k", scripted, &bad, &v), 0);
	assert_int_equal(releases, 1);
	check_bytes(&v, "old");		/* E13: the stale value, not nothing */
	assert_true(v.flags & MLC_STALE);
	assert_false(v.flags & MLC_L2_WRITE_FAILED);
	assert_true(v.ttl_ms >= 0 && v.ttl_ms <= 500);
	assert_string_equal(mlc_last_error(c1), "down");
	mlc_value_release(&v);

	/* E26: the flag survives into L1. */
	assert_int_equal(get(c1, "k", scripted, &bad, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_bytes(&v, "old");
	assert_true(v.flags & MLC_STALE);
	mlc_value_release(&v);
	assert_int_equal(bad.calls, 1);

	/* Re-stored: another handle gets it from L2, stale, then from its
	 * own L1, still stale; no loader runs. */
	assert_int_equal(get(c2, "k", scripted, &bad, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_bytes(&v, "old");
	assert_true(v.flags & MLC_STALE);
	assert_true(v.ttl_ms <= 500);
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_true(v.flags & MLC_STALE);
	mlc_value_release(&v);
	assert_int_equal(bad.calls, 1);

	/* When the resurrect window ends the loader runs again. */
	mlc__clock_advance(501);
	assert_int_equal(get(c2, "k", scripted, &fresh, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_bytes(&v, "new");
	assert_false(v.flags & MLC_STALE);
	mlc_value_release(&v);
	assert_int_equal(get(c1, "k", scripted, &bad, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_bytes(&v, "new");
	assert_false(v.flags & MLC_STALE);
	mlc_value_release(&v);

	/* A per-call resurrect_ttl_ms turns it on for one call. */
	mlc__clock_advance(200);
	{
		struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;

		co.resurrect_ttl_ms = 300;
		assert_int_equal(mlc_get_ex(c2, "k", 1, &co, scripted, &bad,
					    &v), 0);
		check_bytes(&v, "new");
		assert_true(v.flags & MLC_STALE);
		assert_true(v.ttl_ms <= 300);
		mlc_value_release(&v);
	}
	assert_int_equal(stats(c1).stale_served, 1);
	assert_int_equal(stats(c2).stale_served, 1);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* A negative entry is resurrected as a negative entry. */
static void
test_resurrect_negative(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	struct script nf = NOTFOUND;
	struct script bad = FAIL("down");
	struct mlc_value v = { 0 };

	o.ttl_ms = 100;
	o.resurrect_ttl_ms = 500;
	c = t_cache(fx->a, "rn", &o);
	assert_int_equal(get(c, "k", scripted, &nf, &v), 0);
	mlc_value_release(&v);
	mlc__clock_advance(150);
	assert_int_equal(get(c, "k", scripted, &bad, &v), 0);
	check_negative(&v);
	assert_true(v.flags & MLC_STALE);
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* ---- the codec ----------------------------------------------------------------- */

/* E25: decode makes the object on L3, L2 and L1 answers alike, from the
 * stored bytes (the loader's buffer is gone by then). */
static void
test_codec_levels(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c1 = cache_codec(fx->a, "cd", &cc, &codec);
	struct mlc_cache *c2 = cache_codec(fx->a, "cd", &cc, &codec);
	struct script s = VALUE("1234");
	struct mlc_value v = { 0 };

	s.heap = true;
	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_int_equal(obj_int(&v), 1234);
	check_bytes(&v, "1234");
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 1);

	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_int_equal(obj_int(&v), 1234);
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 1);	/* not on L1 hits */

	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 1234);
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 2);
	assert_int_equal(s.calls, 1);

	/* mlc_set: the next get decodes the new bytes. */
	assert_int_equal(set(c1, "k", "99", 0), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	assert_int_equal(obj_int(&v), 99);
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(obj_int(&v), 99);
	mlc_value_release(&v);

	mlc_cache_close(c1);
	mlc_cache_close(c2);
	assert_int_equal(cc.frees, cc.decodes);
}

/* A decode that calls the cache: a set of the key being decoded, whose
 * record the decode's own get on the handle applies, is not outlived by
 * the older bytes in L1, after an L2 read or the handle's own set.  The
 * caller of the get gets them (its get began before the set); the next
 * get reads the new ones. */
static void
test_codec_nested_change(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c = cache_codec(fx->a, "cn", &cc, &codec);
	struct mlc_cache *w = t_cache(fx->a, "cn", NULL);
	struct mlc_value v = { 0 };

	assert_int_equal(set(w, "k", "1", 0), 0);
	cc.self = c;
	cc.writer = w;
	cc.key = "k";
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(cc.nested_rc, -ENOENT);	/* "other" */
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 1);
	mlc_value_release(&v);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 77);
	mlc_value_release(&v);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_int_equal(obj_int(&v), 77);
	mlc_value_release(&v);

	/* The same inside mlc_set's decode of its own value, which the
	 * other handle's set (made after this one's store) replaced. */
	cc.writer = w;
	cc.nested_rc = 1;
	assert_int_equal(set(c, "k", "5", 0), 0);
	assert_int_equal(cc.nested_rc, -ENOENT);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 77);
	mlc_value_release(&v);
	mlc_cache_close(c);
	mlc_cache_close(w);
	assert_int_equal(cc.frees, cc.decodes);
}

/* A decode that runs a load on its handle (a get of another key, with a
 * loader) does not make the get it decodes for a miss: that get read its
 * value from L2 and loaded nothing, a hit of L2, as the inner get is a
 * miss of its own.  The count looked at whether the handle's loads moved
 * during the call, the decode's included (review R). */
static void
test_codec_nested_load_counts(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c = cache_codec(fx->a, "cl", &cc, &codec);
	struct mlc_cache *w = t_cache(fx->a, "cl", NULL);
	struct script s = VALUE("5");
	struct mlc_value v = { 0 };
	struct mlc_stats st;

	assert_int_equal(set(w, "k", "1", 0), 0);
	cc.self = c;
	cc.loader = scripted;
	cc.loader_arg = &s;
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(cc.nested_rc, 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 1);
	mlc_value_release(&v);
	st = stats(c);
	assert_int_equal(st.loads, 1);
	assert_int_equal(st.hits_l2, 1);	/* "k" */
	assert_int_equal(st.misses, 1);		/* "other" */
	assert_int_equal(st.hits_l3, 1);
	mlc_cache_close(c);
	mlc_cache_close(w);
	assert_int_equal(cc.frees, cc.decodes);
}

/* free_fn runs once per object, when the last reference (an L1 entry or a
 * held value) goes, not before. */
static void
test_codec_free_once(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c, *w = t_cache(fx->a, "cf", NULL);
	struct mlc_value held = { 0 }, v = { 0 };

	codec = (struct mlc_codec){ dec_decode, dec_free, &cc };
	o.codec = &codec;
	o.lru_size = 2;
	c = t_cache(fx->a, "cf", &o);

	assert_int_equal(set(w, "a", "1", 0), 0);
	assert_int_equal(set(w, "b", "2", 0), 0);
	assert_int_equal(set(w, "c", "3", 0), 0);
	assert_int_equal(get(c, "a", NULL, NULL, &held), 0);
	assert_int_equal(obj_int(&held), 1);
	/* A second reference to the same object: one object, one decode. */
	assert_int_equal(get(c, "a", NULL, NULL, &v), 0);
	assert_ptr_equal(v.obj, held.obj);
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 1);

	/* Evict "a" from L1: the held value keeps the object alive. */
	assert_int_equal(get(c, "b", NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(get(c, "c", NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(stats(c).l1_evictions, 1);
	assert_int_equal(cc.frees, 0);
	assert_int_equal(obj_int(&held), 1);
	mlc_value_release(&held);
	assert_int_equal(cc.frees, 1);
	mlc_value_release(&held);		/* zeroed: no-op */
	assert_int_equal(cc.frees, 1);

	/* Invalidation drops the L1 entry: freed once nobody holds it. */
	assert_int_equal(get(c, "b", NULL, NULL, &held), 0);
	assert_int_equal(set(w, "b", "22", 0), 0);
	assert_int_equal(get(c, "b", NULL, NULL, &v), 0);
	assert_int_equal(obj_int(&v), 22);
	assert_int_equal(obj_int(&held), 2);
	mlc_value_release(&v);
	mlc_value_release(&held);

	/* Closing the handle frees what only its L1 held; a value held
	 * across the close stays valid until released. */
	assert_int_equal(get(c, "c", NULL, NULL, &held), 0);
	mlc_cache_close(c);
	assert_int_equal(obj_int(&held), 3);
	assert_int_equal(cc.frees, cc.decodes - 1);
	mlc_value_release(&held);
	assert_int_equal(cc.frees, cc.decodes);
	mlc_cache_close(w);
}

/* E18: a decode failure is MLC_ECODEC; the bytes stay in L2, nothing goes
 * to L1, and the next lookup decodes again. */
static void
test_codec_failure(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c = cache_codec(fx->a, "cx", &cc, &codec);
	struct mlc_cache *raw = t_cache(fx->a, "cx", NULL);
	struct script s = VALUE("77");
	struct mlc_value v = { 0 };

	cc.fail_next = 1;
	assert_int_equal(get(c, "k", scripted, &s, &v), MLC_ECODEC);
	assert_null(v.ref);
	assert_int_equal(cc.decodes, 1);
	assert_int_equal(stats(c).codec_errors, 1);
	assert_true(strlen(mlc_last_error(c)) > 0);

	/* The bytes are in L2. */
	assert_int_equal(peek(raw, "k", 0, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_bytes(&v, "77");
	assert_null(v.obj);
	mlc_value_release(&v);

	/* Not in L1: the next get reads L2 and decodes again, no load. */
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_int_equal(obj_int(&v), 77);
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 2);
	assert_int_equal(s.calls, 1);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	mlc_value_release(&v);

	/* Bytes that never decode: every lookup fails, none is cached. */
	assert_int_equal(set(raw, "bad", "x1", 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(get(c, "bad", NULL, NULL, &v), MLC_ECODEC);
	assert_int_equal(cc.decodes, 5);
	assert_int_equal(stats(c).codec_errors, 4);
	/* A peek through the codec handle decodes too, and fails alike
	 * (mlc_peek's doc does not list MLC_ECODEC; the codec's does). */
	assert_int_equal(peek(c, "bad", 0, &v), MLC_ECODEC);
	assert_null(v.ref);
	assert_int_equal(cc.decodes, 6);

	mlc_cache_close(c);
	mlc_cache_close(raw);
	assert_int_equal(cc.frees, cc.decodes - cc.failures);
}

/* mlc_set stores "in L2 and in this handle's L1" (mlc.h): on a handle with
 * a codec too, so the next get is an L1 hit with the decoded object
 * (mlcache runs its l1_serializer in set(), L1S-02). */
static void
test_set_codec_handle_own_l1(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c = cache_codec(fx->a, "sc", &cc, &codec);
	struct mlc_value v = { 0 };

	assert_int_equal(set(c, "k", "314", 0), 0);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	assert_int_equal(obj_int(&v), 314);
	check_bytes(&v, "314");
	assert_int_equal(v.level, MLC_L1);
	mlc_value_release(&v);
	mlc_cache_close(c);
	assert_int_equal(cc.frees, cc.decodes);
}

/* Negative entries are never decoded (NEG-04). */
static void
test_codec_negative_not_decoded(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *c = cache_codec(fx->a, "cn", &cc, &codec);
	struct mlc_cache *c2 = cache_codec(fx->a, "cn", &cc, &codec);
	struct script s = NOTFOUND;
	struct mlc_value v = { 0 };

	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	check_negative(&v);
	assert_null(v.obj);
	mlc_value_release(&v);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_null(v.obj);
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_negative(&v);
	assert_null(v.obj);
	mlc_value_release(&v);
	assert_int_equal(set_negative(c, "m", 0), 0);
	assert_int_equal(get(c2, "m", NULL, NULL, &v), 0);
	check_negative(&v);
	mlc_value_release(&v);
	assert_int_equal(cc.decodes, 0);
	assert_int_equal(stats(c).codec_errors, 0);
	mlc_cache_close(c);
	mlc_cache_close(c2);
}

/* ---- value lifetime ---------------------------------------------------------- */

/* E35: a held value's bytes stay intact after its key is overwritten and
 * its L1 entry evicted, until mlc_value_release(). */
static void
test_value_outlives_l1(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	struct mlc_value held = { 0 }, v = { 0 };
	char expect[200];

	o.lru_size = 2;
	c = t_cache(fx->a, "life", &o);
	memset(expect, 'h', sizeof(expect));
	assert_int_equal(mlc_set(c, "k", 1, expect, sizeof(expect), NULL), 0);
	assert_int_equal(mlc_get(c, "k", 1, NULL, NULL, &held), 0);
	assert_int_equal(held.level, MLC_L1);

	/* Overwrite it (own L1 replaced), then push everything out. */
	assert_int_equal(set(c, "k", "other", 0), 0);
	for (int i = 0; i < 10; i++) {
		char key[8], val[200];

		snprintf(key, sizeof(key), "f%d", i);
		memset(val, 'a' + i, sizeof(val));
		assert_int_equal(mlc_set(c, key, strlen(key), val, sizeof(val),
					 NULL), 0);
		assert_int_equal(get(c, key, NULL, NULL, &v), 0);
		mlc_value_release(&v);
	}
	assert_true(stats(c).l1_evictions >= 8);
	assert_int_equal(mlc_delete(c, "k", 1), 0);
	mlc_purge(c);
	assert_int_equal(held.len, sizeof(expect));
	assert_memory_equal(held.data, expect, sizeof(expect));
	mlc_cache_close(c);
	/* And after the handle is closed. */
	assert_memory_equal(held.data, expect, sizeof(expect));
	mlc_value_release(&held);
}

/* Releasing zeroes the value; releasing a zeroed value is a no-op. */
static void
test_value_release_twice(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "rt", NULL);
	struct mlc_value v = { 0 }, zero = { 0 };

	mlc_value_release(&v);
	mlc_value_release(NULL);
	assert_int_equal(set(c, "k", "v", 0), 0);
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_memory_equal(&v, &zero, sizeof(v));
	mlc_value_release(&v);
	assert_memory_equal(&v, &zero, sizeof(v));
	/* The entry is still fine for the next reader. */
	assert_int_equal(get(c, "k", NULL, NULL, &v), 0);
	check_bytes(&v, "v");
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* ---- L1 bounds --------------------------------------------------------------- */

static int
level_of(struct mlc_cache *c, const char *key)
{
	struct mlc_value v = { 0 };
	int level;

	assert_int_equal(get(c, key, NULL, NULL, &v), 0);
	level = (int)v.level;
	mlc_value_release(&v);
	return level;
}

/* How many of @p keys are in L1 right now (peek reads L1 first and does
 * not promote). */
static int
in_l1(struct mlc_cache *c, const char *const *keys, int n)
{
	struct mlc_value v = { 0 };
	int count = 0;

	for (int i = 0; i < n; i++) {
		assert_int_equal(peek(c, keys[i], 0, &v), 0);
		count += v.level == MLC_L1;
		mlc_value_release(&v);
	}
	return count;
}

/* lru_size bounds L1 by entries: with 3 entries and 4 keys read in a
 * cycle, L1 never holds more than 3, and every insertion past the third
 * (every read L2 answered) evicts one. */
static void
test_lru_size_bound(void **state)
{
	struct t_fx *fx = *state;
	static const char *const keys[] = { "k0", "k1", "k2", "k3" };
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w = t_cache(fx->a, "lru", NULL);
	struct mlc_cache *c;
	uint64_t ev, l2 = 0;

	o.lru_size = 3;
	c = t_cache(fx->a, "lru", &o);
	for (int i = 0; i < 4; i++)
		assert_int_equal(set(w, keys[i], keys[i], 0), 0);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 4; i++) {
			int level = level_of(c, keys[i]);

			assert_true(level == MLC_L1 || level == MLC_L2);
			l2 += level == MLC_L2;
			assert_true(in_l1(c, keys, 4) <= 3);
		}
	}
	ev = stats(c).l1_evictions;
	assert_true(l2 >= 5 * 4 / 2);	/* 4 keys do not fit in 3 */
	assert_int_equal(ev, l2 - 3);
	/* Three of them fit: read over and over, they hit L1 once the
	 * fourth has run out of the hits it counted in main (at most 3, one
	 * less per pass) and left: a few rounds. */
	for (int round = 0; round < 8; round++)
		for (int i = 1; i < 4; i++)
			level_of(c, keys[i]);
	for (int round = 0; round < 3; round++)
		for (int i = 1; i < 4; i++)
			assert_int_equal(level_of(c, keys[i]), MLC_L1);
	/* A random walk: L1 never holds more than three of the four. */
	srand(5);
	for (int i = 0; i < 200; i++) {
		level_of(c, keys[rand() % 4]);
		assert_true(in_l1(c, keys, 4) <= 3);
	}
	assert_true(stats(c).l1_evictions > ev);
	mlc_cache_close(c);
	mlc_cache_close(w);
}

/* L1's eviction, as documented for lru_size (S3-FIFO): keys read once
 * leave through the small queue, so a scan of one-time keys many times
 * lru_size long does not push out a hot set that was hit while in L1 (an
 * LRU keeps none of it); and a key read again soon after the small queue
 * evicted it (the ghost) enters main and outlives the scan too. */
static void
test_lru_order_rule(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w = t_cache(fx->a, "lruo", NULL);
	enum { HOT = 40, SCAN = 1000, LRU = 100 };
	static char hot[HOT][8], scan[SCAN][8];
	struct mlc_cache *c;
	int hits = 0;

	o.lru_size = LRU;
	c = t_cache(fx->a, "lruo", &o);
	for (int i = 0; i < HOT; i++) {
		snprintf(hot[i], sizeof(hot[i]), "h%d", i);
		assert_int_equal(set(w, hot[i], hot[i], 0), 0);
	}
	for (int i = 0; i < SCAN; i++) {
		snprintf(scan[i], sizeof(scan[i]), "s%d", i);
		assert_int_equal(set(w, scan[i], scan[i], 0), 0);
	}
	/* The hot set: read three times each (in, then two hits). */
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < HOT; i++)
			assert_int_equal(level_of(c, hot[i]),
					 r == 0 ? MLC_L2 : MLC_L1);
	/* A scan ten times L1's size, each key read once. */
	for (int i = 0; i < SCAN; i++)
		assert_int_equal(level_of(c, scan[i]), MLC_L2);
	assert_true(stats(c).l1_evictions >= HOT + SCAN - LRU);
	for (int i = 0; i < HOT; i++)
		hits += level_of(c, hot[i]) == MLC_L1;
	print_message("L1 after a scan of %d: %d of %d hot keys hit\n", SCAN,
		      hits, HOT);
	assert_int_equal(hits, HOT);

	/* The ghost: s0 was read once and evicted long ago (not in the
	 * ghost's span any more): back to small, and out again with the next
	 * scan.  s999 left the small queue lately: read again, it enters
	 * main, and the next scan passes it by. */
	for (int i = SCAN - 60; i < SCAN; i++)	/* push s999 out of small */
		assert_int_equal(level_of(c, scan[i - 500]), MLC_L2);
	assert_int_equal(in_l1(c, (const char *const[]){ scan[SCAN - 1] }, 1),
			 0);
	assert_int_equal(level_of(c, scan[SCAN - 1]), MLC_L2);
	assert_int_equal(level_of(c, scan[0]), MLC_L2);
	for (int i = 100; i < 400; i++)
		assert_int_equal(level_of(c, scan[i]), MLC_L2);
	assert_int_equal(in_l1(c, (const char *const[]){ scan[SCAN - 1] }, 1),
			 1);
	assert_int_equal(in_l1(c, (const char *const[]){ scan[0] }, 1), 0);
	mlc_cache_close(c);
	mlc_cache_close(w);
}

/* lru_bytes bounds L1 by value bytes. */
static void
test_lru_bytes_bound(void **state)
{
	struct t_fx *fx = *state;
	static const char *const keys[] = { "b0", "b1", "b2" };
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *w = t_cache(fx->a, "lrub", NULL);
	struct mlc_cache *c;
	char val[40];
	uint64_t l2 = 0;

	o.lru_bytes = 100;	/* two 40-byte values, not three */
	c = t_cache(fx->a, "lrub", &o);
	memset(val, 'x', sizeof(val));
	for (int i = 0; i < 3; i++)
		assert_int_equal(mlc_set(w, keys[i], 2, val, sizeof(val), NULL),
				 0);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++) {
			l2 += level_of(c, keys[i]) == MLC_L2;
			assert_true(in_l1(c, keys, 3) <= 2);
		}
	}
	assert_true(l2 >= 4 * 3 / 2);	/* 3 values do not fit in 100 B */
	assert_int_equal(stats(c).l1_evictions, l2 - 2);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 2; i++)
			level_of(c, keys[i]);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 2; i++)
			assert_int_equal(level_of(c, keys[i]), MLC_L1);
	mlc_cache_close(c);
	mlc_cache_close(w);
}

/* lru_bytes is a bound: a value larger than it is never kept in L1 (it
 * would make L1 hold more than lru_bytes). */
static void
test_lru_bytes_value_over_bound(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	struct script s = { .result = MLC_LOAD_VALUE, .len = 150 };
	struct mlc_value v = { 0 };
	char val[150];

	memset(val, 'y', sizeof(val));
	s.data = val;
	o.lru_bytes = 100;
	c = t_cache(fx->a, "lrux", &o);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	mlc_value_release(&v);
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_int_equal(v.len, sizeof(val));
	assert_int_equal(v.level, MLC_L2);	/* not from L1 */
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* ---- options ------------------------------------------------------------------- */

/* E27: call options are validated on every path, an L1 hit included. */
static void
test_options_checked_on_l1_hit(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "opt", NULL);
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;
	struct mlc_value v = { 0 };

	assert_int_equal(set(c, "k", "v", 0), 0);
	assert_int_equal(level_of(c, "k"), MLC_L1);

	o.ttl_ms = -5;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	assert_null(v.ref);
	o.ttl_ms = 0;
	o.neg_ttl_ms = -2;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	o.neg_ttl_ms = 0;
	o.resurrect_ttl_ms = -1;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	o.resurrect_ttl_ms = 0;
	o.flags = 1u << 20;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	o.flags = 0;
	o.lock_policy = 99;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	o.lock_policy = 0;
	o.size = 3;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), -EINVAL);
	assert_null(v.ref);
	/* And peek's flags. */
	assert_int_equal(peek(c, "k", MLC_CALL_NEGATIVE, &v), -EINVAL);
	/* Still an L1 hit with good options. */
	o = (struct mlc_call_options)MLC_CALL_OPTIONS_INIT;
	assert_int_equal(mlc_get_ex(c, "k", 1, &o, NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	mlc_value_release(&v);
	mlc_cache_close(c);
}

/* ---- peek -------------------------------------------------------------------- */

/* mlc_peek tells the time left and never promotes: an L2-only key peeked
 * twice is MLC_L2 both times (a get then promotes it). */
static void
test_peek_no_promotion(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "pk", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "pk", NULL);
	struct script s = VALUE("never called");
	struct mlc_value v = { 0 };

	assert_int_equal(set(c1, "k", "v", 1000), 0);
	mlc__clock_advance(300);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(peek(c2, "k", 0, &v), 0);
		assert_int_equal(v.level, MLC_L2);
		check_bytes(&v, "v");
		assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 700);
		assert_false(v.flags & (MLC_STALE | MLC_NO_EXPIRY));
		mlc_value_release(&v);
	}
	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	mlc_value_release(&v);
	assert_int_equal(peek(c2, "k", 0, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 700);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 0);
	/* Peek never loads and never counts as a hit or a miss. */
	assert_int_equal(peek(c2, "absent", 0, &v), -ENOENT);
	assert_int_equal(stats(c2).hits_l2, 1);
	assert_int_equal(stats(c2).misses, 0);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* An expired entry is returned only with MLC_CALL_STALE_OK: MLC_STALE,
 * ttl_ms 0 (not MLC_TTL_NEVER, not MLC_NO_EXPIRY).  get() does the same
 * without a loader. */
static void
test_peek_stale(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "ps", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "ps", NULL);
	struct mlc_value v = { 0 };

	assert_int_equal(set(c1, "k", "old", 100), 0);
	assert_int_equal(set_negative(c1, "n", 100), 0);
	mlc__clock_advance(101);
	for (int i = 0; i < 2; i++) {
		struct mlc_cache *c = i ? c2 : c1;

		assert_int_equal(peek(c, "k", 0, &v), -ENOENT);
		assert_int_equal(peek(c, "k", MLC_CALL_STALE_OK, &v), 0);
		check_bytes(&v, "old");
		assert_true(v.flags & MLC_STALE);
		assert_false(v.flags & MLC_NO_EXPIRY);
		assert_int_equal(v.ttl_ms, 0);
		mlc_value_release(&v);
		assert_int_equal(peek(c, "n", MLC_CALL_STALE_OK, &v), 0);
		check_negative(&v);
		assert_true(v.flags & MLC_STALE);
		assert_int_equal(v.ttl_ms, 0);
		mlc_value_release(&v);

		assert_int_equal(get(c, "k", NULL, NULL, &v), -ENOENT);
		assert_int_equal(get_flags(c, "k", MLC_CALL_STALE_OK, &v), 0);
		check_bytes(&v, "old");
		assert_true(v.flags & MLC_STALE);
		assert_int_equal(v.ttl_ms, 0);
		mlc_value_release(&v);
	}
	/* Serving stale does not make it fresh, nor put it in L1. */
	assert_int_equal(peek(c1, "k", 0, &v), -ENOENT);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), -ENOENT);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* ---- set, delete, purge ---------------------------------------------------------- */

/* mlc_set updates the caller's own L1 at once, and other handles drop
 * their copy before their next lookup. */
static void
test_set_updates_own_l1(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "su", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "su", NULL);
	struct mlc_value v = { 0 };
	uint64_t ver;

	assert_int_equal(set(c1, "k", "one", 0), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_bytes(&v, "one");
	ver = v.version;
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.version, ver);
	mlc_value_release(&v);

	assert_int_equal(set(c1, "k", "two!", 0), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_bytes(&v, "two!");
	assert_true(v.version > ver);
	ver = v.version;
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_bytes(&v, "two!");
	assert_int_equal(v.version, ver);
	mlc_value_release(&v);

	/* The other way round. */
	assert_int_equal(set(c2, "k", "three", 0), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	check_bytes(&v, "three");
	mlc_value_release(&v);
	/* An empty value is a value. */
	assert_int_equal(mlc_set(c1, "k", 1, "", 0, NULL), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.len, 0);
	assert_false(v.flags & MLC_NEGATIVE);
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	assert_int_equal(v.len, 0);
	assert_false(v.flags & MLC_NEGATIVE);
	mlc_value_release(&v);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* mlc_set with MLC_CALL_NEGATIVE stores a negative entry (data NULL). */
static void
test_set_negative(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "sn", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "sn", NULL);
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;
	struct script s = VALUE("loaded");
	struct mlc_value v = { 0 };

	assert_int_equal(set(c1, "k", "was here", 0), 0);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), 0);
	mlc_value_release(&v);
	assert_int_equal(set_negative(c1, "k", 500), 0);
	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	check_negative(&v);
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 500);
	mlc_value_release(&v);
	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	check_negative(&v);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 0);
	mlc__clock_advance(501);
	assert_int_equal(get(c2, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	check_bytes(&v, "loaded");
	mlc_value_release(&v);

	/* A negative set with data is refused and changes nothing. */
	o.flags = MLC_CALL_NEGATIVE;
	assert_int_equal(mlc_set(c1, "k", 1, "x", 1, &o), -EINVAL);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), 0);
	check_bytes(&v, "loaded");
	mlc_value_release(&v);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* mlc_delete removes the key from L2, the caller's L1 and other L1s. */
static void
test_delete(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "de", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "de", NULL);
	struct mlc_value v = { 0 };

	assert_int_equal(set(c1, "k", "v", 0), 0);
	assert_int_equal(level_of(c1, "k"), MLC_L1);
	assert_int_equal(level_of(c2, "k"), MLC_L2);
	assert_int_equal(level_of(c2, "k"), MLC_L1);
	assert_int_equal(mlc_delete(c1, "k", 1), 0);
	assert_int_equal(get(c1, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(get(c2, "k", NULL, NULL, &v), -ENOENT);
	assert_int_equal(peek(c2, "k", MLC_CALL_STALE_OK, &v), -ENOENT);
	assert_int_equal(get_flags(c2, "k", MLC_CALL_STALE_OK, &v), -ENOENT);
	/* Deleting an absent key is 0. */
	assert_int_equal(mlc_delete(c1, "k", 1), 0);
	assert_int_equal(mlc_delete(c2, "never", 5), 0);
	/* An expired key is deleted as well, stale copy included. */
	assert_int_equal(set(c1, "e", "v", 10), 0);
	mlc__clock_advance(11);
	assert_int_equal(mlc_delete(c2, "e", 1), 0);
	assert_int_equal(peek(c1, "e", MLC_CALL_STALE_OK, &v), -ENOENT);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* mlc_purge drops the namespace in L2 and every L1, stale copies too;
 * other namespaces keep theirs. */
static void
test_purge(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "pu", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "pu", NULL);
	struct mlc_cache *other = t_cache(fx->a, "pv", NULL);
	struct mlc_value v = { 0 };
	static const char *const keys[] = { "a", "b", "n", "old" };

	assert_int_equal(set(c1, "a", "1", 0), 0);
	assert_int_equal(set(c1, "b", "2", MLC_TTL_NEVER), 0);
	assert_int_equal(set_negative(c1, "n", 0), 0);
	assert_int_equal(set(c1, "old", "3", 10), 0);
	assert_int_equal(set(other, "a", "other", 0), 0);
	assert_int_equal(level_of(c2, "a"), MLC_L2);
	assert_int_equal(level_of(c2, "b"), MLC_L2);
	mlc__clock_advance(11);

	assert_int_equal(mlc_purge(c1), 0);
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < 2; j++) {
			struct mlc_cache *c = j ? c2 : c1;

			assert_int_equal(get(c, keys[i], NULL, NULL, &v),
					 -ENOENT);
			assert_int_equal(get_flags(c, keys[i],
						   MLC_CALL_STALE_OK, &v),
					 -ENOENT);
			assert_int_equal(peek(c, keys[i], MLC_CALL_STALE_OK,
					      &v), -ENOENT);
		}
	}
	assert_int_equal(get(other, "a", NULL, NULL, &v), 0);
	check_bytes(&v, "other");
	mlc_value_release(&v);
	/* The namespace works as before afterwards. */
	assert_int_equal(set(c2, "a", "new", 0), 0);
	assert_int_equal(get(c1, "a", NULL, NULL, &v), 0);
	check_bytes(&v, "new");
	mlc_value_release(&v);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
	mlc_cache_close(other);
}

/* ---- namespaces ------------------------------------------------------------------ */

/* E1: namespace "ab" with key "c" and namespace "a" with key "bc" are two
 * entries (and two loads). */
static void
test_namespaces_no_collision(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *ab = t_cache(fx->a, "ab", NULL);
	struct mlc_cache *a = t_cache(fx->a, "a", NULL);
	struct script s1 = VALUE("from ab");
	struct script s2 = VALUE("from a");
	struct mlc_value v = { 0 };

	assert_int_equal(set(ab, "c", "ab/c", 0), 0);
	assert_int_equal(get(a, "bc", NULL, NULL, &v), -ENOENT);
	assert_int_equal(peek(a, "bc", MLC_CALL_STALE_OK, &v), -ENOENT);
	assert_int_equal(set(a, "bc", "a/bc", 0), 0);
	assert_int_equal(get(ab, "c", NULL, NULL, &v), 0);
	check_bytes(&v, "ab/c");
	mlc_value_release(&v);
	assert_int_equal(get(a, "bc", NULL, NULL, &v), 0);
	check_bytes(&v, "a/bc");
	mlc_value_release(&v);
	assert_int_equal(mlc_delete(a, "bc", 2), 0);
	assert_int_equal(get(ab, "c", NULL, NULL, &v), 0);
	mlc_value_release(&v);

	assert_int_equal(get(ab, "x", scripted, &s1, &v), 0);
	check_bytes(&v, "from ab");
	mlc_value_release(&v);
	assert_int_equal(get(a, "bx", scripted, &s2, &v), 0);
	check_bytes(&v, "from a");
	mlc_value_release(&v);
	assert_int_equal(s1.calls + s2.calls, 2);

	/* Keys are bytes: "x\0y" and "x" are two keys. */
	assert_int_equal(mlc_set(a, "x\0y", 3, "3", 1, NULL), 0);
	assert_int_equal(mlc_get(a, "x", 1, NULL, NULL, &v), -ENOENT);
	assert_int_equal(mlc_set(a, "x", 1, "1", 1, NULL), 0);
	assert_int_equal(mlc_get(a, "x\0y", 3, NULL, NULL, &v), 0);
	check_bytes(&v, "3");
	mlc_value_release(&v);
	mlc_cache_close(ab);
	mlc_cache_close(a);
}

/* E2: two handles on one namespace may use different TTLs and codecs; each
 * L1 is private, so each gets its own representation of the same bytes. */
static void
test_shared_namespace_own_representation(void **state)
{
	struct t_fx *fx = *state;
	struct codec_ctx cc = { 0 };
	struct mlc_codec codec;
	struct mlc_cache *hc = cache_codec(fx->a, "e2", &cc, &codec);
	struct mlc_cache *hb = cache_ttl(fx->a, "e2", 100000, 0);
	struct script s = VALUE("42");
	struct mlc_value v = { 0 };

	assert_int_equal(set(hb, "k", "42", 0), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(get(hc, "k", NULL, NULL, &v), 0);
		assert_int_equal(v.level, i ? MLC_L1 : MLC_L2);
		assert_int_equal(obj_int(&v), 42);
		check_bytes(&v, "42");
		mlc_value_release(&v);
		assert_int_equal(get(hb, "k", NULL, NULL, &v), 0);
		assert_int_equal(v.level, MLC_L1);
		assert_null(v.obj);
		check_bytes(&v, "42");
		mlc_value_release(&v);
	}
	/* The other direction: loaded by the codec handle. */
	s.ttl = 0;
	assert_int_equal(get(hc, "j", scripted, &s, &v), 0);
	assert_int_equal(obj_int(&v), 42);
	assert_true(v.ttl_ms <= 30000);	/* hc's default ttl */
	mlc_value_release(&v);
	assert_int_equal(get(hb, "j", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L2);
	assert_null(v.obj);
	/* The writer's TTL, not this handle's. */
	assert_true(v.ttl_ms >= 1 && v.ttl_ms <= 30000);
	mlc_value_release(&v);
	mlc_cache_close(hc);
	mlc_cache_close(hb);
	assert_int_equal(cc.frees, cc.decodes);
}

/* ---- limits -------------------------------------------------------------------- */

/* E31: a key is 1..MLC_KEY_MAX bytes: 0 is -EINVAL and MLC_KEY_MAX + 1 is
 * -E2BIG, on every call that takes a key. */
static void
test_key_limits(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache *c = t_cache(fx->a, "kl", NULL);
	struct mlc_cache *big;
	struct mlc_arena *a1m = NULL;
	struct script s = VALUE("v");
	struct mlc_value v = { 0 };
	char *key = malloc(MLC_KEY_MAX + 1);
	char name[64];

	assert_non_null(key);
	memset(key, 'K', MLC_KEY_MAX + 1);
	assert_int_equal(mlc_get(c, key, 0, NULL, NULL, &v), -EINVAL);
	assert_int_equal(mlc_get(c, key, 0, scripted, &s, &v), -EINVAL);
	assert_int_equal(mlc_peek(c, key, 0, 0, &v), -EINVAL);
	assert_int_equal(mlc_set(c, key, 0, "v", 1, NULL), -EINVAL);
	assert_int_equal(mlc_delete(c, key, 0), -EINVAL);
	assert_int_equal(mlc_get(c, NULL, 3, NULL, NULL, &v), -EINVAL);
	assert_int_equal(mlc_get(c, key, MLC_KEY_MAX + 1, NULL, NULL, &v),
			 -E2BIG);
	assert_int_equal(mlc_get(c, key, MLC_KEY_MAX + 1, scripted, &s, &v),
			 -E2BIG);
	assert_int_equal(mlc_peek(c, key, MLC_KEY_MAX + 1, 0, &v), -E2BIG);
	assert_int_equal(mlc_set(c, key, MLC_KEY_MAX + 1, "v", 1, NULL),
			 -E2BIG);
	assert_int_equal(mlc_delete(c, key, MLC_KEY_MAX + 1), -E2BIG);
	assert_int_equal(s.calls, 0);
	assert_null(v.ref);

	/* MLC_KEY_MAX itself is a key; with 1 MiB pages it fits in L2. */
	assert_int_equal(mlc_get(c, key, MLC_KEY_MAX, NULL, NULL, &v), -ENOENT);
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	ao.bytes = 8u << 20;
	ao.page_size = 1u << 20;
	ao.log_cells = 1024;
	assert_int_equal(mlc_arena_open(&a1m, t_name(name, sizeof(name)), &ao),
			 0);
	big = t_cache(a1m, "kl", NULL);
	assert_int_equal(mlc_set(big, key, MLC_KEY_MAX, "v", 1, NULL), 0);
	assert_int_equal(mlc_get(big, key, MLC_KEY_MAX, NULL, NULL, &v), 0);
	check_bytes(&v, "v");
	mlc_value_release(&v);
	key[0] = 'L';
	assert_int_equal(mlc_get(big, key, MLC_KEY_MAX, scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_false(v.flags & MLC_L2_WRITE_FAILED);
	mlc_value_release(&v);
	assert_int_equal(mlc_peek(big, key, MLC_KEY_MAX, 0, &v), 0);
	mlc_value_release(&v);
	mlc_cache_close(big);
	mlc_arena_close(a1m);
	mlc_arena_unlink(name, 0);
	free(key);
	mlc_cache_close(c);
}

/* E32: a loader value larger than one page is returned flagged
 * MLC_L2_WRITE_FAILED and kept in L1 only; mlc_set of it is -E2BIG. */
static void
test_oversize_value_l1_only(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c1 = t_cache(fx->a, "big", NULL);
	struct mlc_cache *c2 = t_cache(fx->a, "big", NULL);
	struct mlc_arena_info ai = arena_info(fx->a);
	size_t len = ai.value_max + 1;
	char *buf = malloc(len);
	struct script s = { .result = MLC_LOAD_VALUE, .len = len, .heap = true };
	struct mlc_value v = { 0 };

	assert_non_null(buf);
	memset(buf, 'Z', len);
	s.data = buf;
	releases = 0;
	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L3);
	assert_true(v.flags & MLC_L2_WRITE_FAILED);
	assert_false(v.flags & MLC_NOT_CACHED);
	assert_int_equal(v.len, len);
	assert_memory_equal(v.data, buf, len);
	mlc_value_release(&v);
	assert_int_equal(releases, 1);

	assert_int_equal(get(c1, "k", scripted, &s, &v), 0);
	assert_int_equal(v.level, MLC_L1);
	assert_int_equal(v.len, len);
	mlc_value_release(&v);
	assert_int_equal(s.calls, 1);
	assert_int_equal(peek(c2, "k", MLC_CALL_STALE_OK, &v), -ENOENT);

	assert_int_equal(mlc_set(c2, "k2", 2, buf, len, NULL), -E2BIG);
	assert_int_equal(get(c2, "k2", NULL, NULL, &v), -ENOENT);
	/* One page less the header fits. */
	assert_true(ai.value_max > 2);
	assert_int_equal(mlc_set(c2, "k2", 2, buf, ai.value_max - 2, NULL), 0);
	free(buf);
	/* One failed store, one count (the arena's write_failures counts
	 * only stores refused for lack of room, not values over a page). */
	assert_int_equal(stats(c1).l2_write_failures, 1);
	mlc_cache_close(c1);
	mlc_cache_close(c2);
}

/* MLC_LOAD_NO_CACHE stores nothing, so even a value over one page fails
 * no write: no MLC_L2_WRITE_FAILED, no l2_write_failures. */
static void
test_no_cache_oversize_writes_nothing(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache *c = t_cache(fx->a, "ncb", NULL);
	struct mlc_arena_info ai = arena_info(fx->a);
	size_t len = ai.value_max + 1;
	char *buf = calloc(1, len);
	struct script s = { .result = MLC_LOAD_VALUE, .len = len,
			    .flags = MLC_LOAD_NO_CACHE };
	struct mlc_value v = { 0 };

	assert_non_null(buf);
	s.data = buf;
	assert_int_equal(get(c, "k", scripted, &s, &v), 0);
	assert_true(v.flags & MLC_NOT_CACHED);
	assert_false(v.flags & MLC_L2_WRITE_FAILED);
	assert_int_equal(v.len, len);
	mlc_value_release(&v);
	free(buf);
	assert_int_equal(stats(c).l2_write_failures, 0);
	mlc_cache_close(c);
}

/* ---- counters ------------------------------------------------------------------- */

struct counts {
	uint64_t l1, l2, l3, miss, neg, stale, loads, lerr, cerr, ev, wf, sets,
		 dels, purges;
};

static void
check_counts(struct mlc_cache *c, const struct counts *x, int step)
{
	struct mlc_stats st = stats(c);
	struct counts got = {
		st.hits_l1, st.hits_l2, st.hits_l3, st.misses,
		st.negative_hits, st.stale_served, st.loads, st.loader_errors,
		st.codec_errors, st.l1_evictions, st.l2_write_failures, st.sets,
		st.deletes, st.purges,
	};

	if (memcmp(&got, x, sizeof(got)) != 0)
		fail_msg("step %d: got l1 %lu l2 %lu l3 %lu miss %lu neg %lu "
			 "stale %lu loads %lu lerr %lu cerr %lu ev %lu wf %lu "
			 "sets %lu dels %lu purges %lu; want %lu %lu %lu %lu "
			 "%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", step,
			 got.l1, got.l2, got.l3, got.miss, got.neg, got.stale,
			 got.loads, got.lerr, got.cerr, got.ev, got.wf,
			 got.sets, got.dels, got.purges, x->l1, x->l2, x->l3,
			 x->miss, x->neg, x->stale, x->loads, x->lerr, x->cerr,
			 x->ev, x->wf, x->sets, x->dels, x->purges);
}

/* Every counter after a known sequence, step by step. */
static void
test_stats_counters(void **state)
{
	struct t_fx *fx = *state;
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct codec_ctx cc = { .fail_next = 1 };
	struct mlc_codec codec = { dec_decode, dec_free, &cc };
	struct mlc_cache *c, *w = t_cache(fx->a, "st", NULL);
	struct mlc_arena_info ai = arena_info(fx->a);
	struct script val = VALUE("12"), nf = NOTFOUND, bad = FAIL("no");
	struct script big = { .result = MLC_LOAD_VALUE, .len = ai.value_max + 1 };
	struct counts x = { 0 };
	struct mlc_value v = { 0 };
	char *buf = calloc(1, ai.value_max + 1);
	int step = 0;

	assert_non_null(buf);
	big.data = buf;
	o.lru_size = 2;
	o.ttl_ms = 1000;
	o.resurrect_ttl_ms = 100;
	o.codec = &codec;
	c = t_cache(fx->a, "st", &o);
	check_counts(c, &x, step++);

	/* A load (a miss) whose value fails to decode; then L2 (decodes
	 * again), L1: hits. */
	assert_int_equal(get(c, "a", scripted, &val, &v), MLC_ECODEC);
	x.miss++, x.loads++, x.cerr++;
	check_counts(c, &x, step++);
	assert_int_equal(get(c, "a", scripted, &val, &v), 0);
	mlc_value_release(&v);
	x.l2++;
	check_counts(c, &x, step++);
	assert_int_equal(get(c, "a", scripted, &val, &v), 0);
	mlc_value_release(&v);
	x.l1++;
	check_counts(c, &x, step++);

	/* A load that finds nothing (a miss, answered by its own load),
	 * then an L1 negative hit. */
	assert_int_equal(get(c, "n", scripted, &nf, &v), 0);
	mlc_value_release(&v);
	x.miss++, x.l3++, x.loads++;
	check_counts(c, &x, step++);
	assert_int_equal(get(c, "n", scripted, &nf, &v), 0);
	mlc_value_release(&v);
	x.l1++, x.neg++;
	check_counts(c, &x, step++);

	/* A miss without a loader; a loader error. */
	assert_int_equal(get(c, "x", NULL, NULL, &v), -ENOENT);
	x.miss++;
	check_counts(c, &x, step++);
	assert_int_equal(get(c, "e", scripted, &bad, &v), MLC_ELOADER);
	x.miss++, x.loads++, x.lerr++;
	check_counts(c, &x, step++);

	/* Another handle's set, read from L2: evicts "a" (lru_size 2). */
	assert_int_equal(set(w, "b", "34", 0), 0);
	assert_int_equal(get(c, "b", NULL, NULL, &v), 0);
	mlc_value_release(&v);
	x.l2++, x.ev++;
	check_counts(c, &x, step++);

	/* Own set (decoded into the full L1: one eviction), delete, purge. */
	assert_int_equal(set(c, "s", "56", 0), 0);
	x.sets++;
	x.ev++;
	check_counts(c, &x, step++);
	assert_int_equal(mlc_delete(c, "s", 1), 0);
	x.dels++;
	check_counts(c, &x, step++);
	assert_int_equal(mlc_purge(c), 0);
	x.purges++;
	check_counts(c, &x, step++);

	/* A stale value served by get(MLC_CALL_STALE_OK): not loaded, so an
	 * L2 hit. */
	assert_int_equal(set(c, "t", "78", 10), 0);
	x.sets++;
	mlc__clock_advance(11);
	assert_int_equal(get_flags(c, "t", MLC_CALL_STALE_OK, &v), 0);
	mlc_value_release(&v);
	x.l2++, x.stale++;
	check_counts(c, &x, step++);

	/* Resurrected: a loader error, a stale answer; it loaded: a miss. */
	assert_int_equal(get(c, "t", scripted, &bad, &v), 0);
	assert_true(v.flags & MLC_STALE);
	mlc_value_release(&v);
	x.miss++, x.loads++, x.lerr++, x.stale++;
	check_counts(c, &x, step++);

	/* Peeks count nothing. */
	assert_int_equal(peek(c, "b", 0, &v), -ENOENT);
	assert_int_equal(peek(c, "t", 0, &v), 0);
	mlc_value_release(&v);
	check_counts(c, &x, step++);
	/* A value over one page: L1 only, one write failure. */
	assert_int_equal(get(w, "big", scripted, &big, &v), 0);
	assert_true(v.flags & MLC_L2_WRITE_FAILED);
	mlc_value_release(&v);
	{
		struct mlc_stats st = stats(w);

		assert_int_equal(st.hits_l3, 1);
		assert_int_equal(st.misses, 1);
		assert_int_equal(st.loads, 1);
		assert_int_equal(st.sets, 1);
		assert_int_equal(st.l2_write_failures, 1);
	}
	free(buf);
	mlc_cache_close(c);
	mlc_cache_close(w);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, t_fx_arena, t_fx_close)
	const struct CMUnitTest tests[] = {
		T(test_levels),
		T(test_promotion_remaining_ttl),
		T(test_ttl_never),
		T(test_ttl_one_ms),
		T(test_loader_ttl_override),
		T(test_loader_no_cache),
		T(test_loader_notfound_negative),
		T(test_loader_error),
		T(test_loader_error_with_data),
		T(test_loader_invalid_output),
		T(test_loader_release_once),
		T(test_miss_vs_negative),
		T(test_resurrect_disabled),
		T(test_resurrect_stale),
		T(test_resurrect_negative),
		T(test_codec_levels),
		T(test_codec_free_once),
		T(test_codec_nested_change),
		T(test_codec_nested_load_counts),
		T(test_codec_failure),
		T(test_codec_negative_not_decoded),
		T(test_set_codec_handle_own_l1),
		T(test_value_outlives_l1),
		T(test_value_release_twice),
		T(test_lru_size_bound),
		T(test_lru_order_rule),
		T(test_lru_bytes_bound),
		T(test_lru_bytes_value_over_bound),
		T(test_options_checked_on_l1_hit),
		T(test_peek_no_promotion),
		T(test_peek_stale),
		T(test_set_updates_own_l1),
		T(test_set_negative),
		T(test_delete),
		T(test_purge),
		T(test_namespaces_no_collision),
		T(test_shared_namespace_own_representation),
		T(test_key_limits),
		T(test_oversize_value_l1_only),
		T(test_no_cache_oversize_writes_nothing),
		T(test_stats_counters),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
