/*
 * Reference-model test: long random sequences of get (with and without a
 * loader), set, negative set, delete, peek, purge and clock advances over
 * two handles on one namespace, each step checked against a small
 * in-memory model of the documented semantics (include/mlc.h,
 * docs/semantics.md).  One load in eight of a value or a "not found" has
 * the other handle set, delete or purge the key inside the loader, and the
 * loading handle then get another key, applying that change's record
 * before its own load ends: the load is fenced, and neither handle may
 * serve its value afterwards.
 *
 * The model holds, per key, the bytes or a negative entry, when it expires
 * (or never) and the L2 version once seen.  It knows nothing of L1: both
 * handles must always agree with it, so every L1 answer proves that the
 * invalidation log dropped what other handles changed, and that L1 expires
 * with L2.
 *
 * The library's clock is the real monotonic clock plus what the test adds
 * with mlc__clock_advance().  The real part can tick during a call, so the
 * model keeps each expiry as an interval [lo, hi] (the clock read before
 * and after the call that stored it, plus the TTL) and reads the clock
 * around every call: an entry is fresh if it expires after the call's
 * latest possible "now", expired if before its earliest, and either answer
 * is accepted only inside that window (ticks are rare: 1-4 ms against
 * microsecond calls).
 *
 * The arena is large enough that L2 never evicts, so the model is exact;
 * the test asserts that at the end.  On a mismatch it prints the seed and
 * every step; MLC_MODEL_SEED=<n> [MLC_MODEL_OPS=<n>] replays one seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define NSEEDS 20
#define NOPS 5000
#define NKEYS 50
#define LRU 8
#define VMAX 48
#define BURST 1100		/* sets in a row: more than the log's 1024 */
#define STEP_LEN 200

/* ---- random numbers: xorshift64*, one stream per seed ------------------- */

static uint64_t rng;

static uint64_t
rnd64(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static uint32_t
rnd(uint32_t n)
{
	return (uint32_t)(rnd64() >> 33) % n;
}

/* ---- the model -------------------------------------------------------------- */

struct ment {
	bool present;		/* L2 holds it, fresh or expired */
	bool neg;
	bool never;
	uint64_t lo, hi;	/* it expires at a time in [lo, hi] */
	uint64_t version;	/* 0: not seen since the last write */
	size_t len;
	char bytes[VMAX];
};

enum state { ABSENT, FRESH, EXPIRED, EITHER };

struct handle {
	struct mlc_cache *c;
	int64_t ttl, neg_ttl;	/* resolved defaults */
};

struct run {
	uint64_t seed;
	int nops;
	int cap;		/* room in steps */
	int step;
	char name[64];
	struct mlc_arena *a;
	struct handle h[2];
	struct ment m[NKEYS];
	uint64_t vfloor[NKEYS];	/* highest version seen per key */
	char (*steps)[STEP_LEN];
	int nsteps;
	int key;		/* the key of the current step, -1: none */
	uint64_t t0, t1;	/* the clock around the current call */
	/* counts */
	uint64_t loads, hits, misses, stale, negs, l1, meddled;
};

static struct run R;

static const char *
state_name(enum state s)
{
	static const char *const n[] = { "absent", "fresh", "expired",
					 "either" };

	return n[s];
}

static enum state
state_of(const struct ment *e, uint64_t t0, uint64_t t1)
{
	if (!e->present)
		return ABSENT;
	if (e->never || e->lo > t1)
		return FRESH;
	if (e->hi <= t0)
		return EXPIRED;
	return EITHER;
}

static void
key_name(char *buf, int k)
{
	snprintf(buf, 16, "key-%02d", k);
}

/* Append to the step list. */
static void step_log(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
step_log(const char *fmt, ...)
{
	va_list ap;

	if (R.nsteps >= R.cap)
		return;
	va_start(ap, fmt);
	vsnprintf(R.steps[R.nsteps++], STEP_LEN, fmt, ap);
	va_end(ap);
}

static void
dump_entry(FILE *f, int k)
{
	const struct ment *e = &R.m[k];

	if (!e->present) {
		fprintf(f, "  model key-%02d: absent\n", k);
		return;
	}
	fprintf(f, "  model key-%02d: %s len %zu \"%.*s\" expire %s [%" PRIu64
		", %" PRIu64 "] version %" PRIu64 " (clock %" PRIu64 "..%"
		PRIu64 ": %s)\n", k, e->neg ? "negative" : "value", e->len,
		(int)e->len, e->bytes, e->never ? "never" : "in", e->lo, e->hi,
		e->version, R.t0, R.t1, state_name(state_of(e, R.t0, R.t1)));
}

/* Report a mismatch with everything needed to replay it, and fail. */
static void mismatch(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
mismatch(const char *fmt, ...)
{
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nMODEL MISMATCH: seed %" PRIu64 ", step %d: %s\n",
		R.seed, R.step, msg);
	if (R.key >= 0)
		dump_entry(stderr, R.key);
	if (mlc_arena_info(R.a, &ai) == 0)
		fprintf(stderr, "  arena: items %" PRIu64 " evictions %" PRIu64
			" index_evictions %" PRIu64 " expired_reclaimed %"
			PRIu64 "\n", ai.items, ai.evictions,
			ai.index_evictions, ai.expired_reclaimed);
	fprintf(stderr, "steps (replay: MLC_MODEL_SEED=%" PRIu64
		" MLC_MODEL_OPS=%d):\n", R.seed, R.step + 1);
	for (int i = 0; i < R.nsteps; i++)
		fprintf(stderr, "  %s\n", R.steps[i]);
	fail_msg("model mismatch: seed %" PRIu64 " step %d: %s", R.seed,
		 R.step, msg);
}

#define EXPECT(cond, ...) do { if (!(cond)) mismatch(__VA_ARGS__); } while (0)

/* ---- checking an answer against the model ---------------------------------- */

/* A positive or negative answer for a key whose model entry is @p e;
 * @p loaded: this call ran the loader and stored what it returned. */
static void
check_answer(const struct mlc_value *v, struct ment *e, int k, bool stale_ok,
	     bool loaded)
{
	enum state st = state_of(e, R.t0, R.t1);
	bool stale = v->flags & MLC_STALE;

	EXPECT(st != ABSENT, "a hit for an absent key");
	EXPECT(!(v->flags & (MLC_NOT_CACHED | MLC_L2_WRITE_FAILED)),
	       "flags %#x on a cached answer", v->flags);
	if (loaded)
		EXPECT(v->level == MLC_L3, "level %u after a load", v->level);
	else
		EXPECT(v->level == MLC_L1 || v->level == MLC_L2, "level %u",
		       v->level);
	EXPECT(!!(v->flags & MLC_NEGATIVE) == e->neg,
	       "negative flag %d, model %d", !!(v->flags & MLC_NEGATIVE),
	       e->neg);
	if (e->neg) {
		EXPECT(v->data == NULL && v->len == 0,
		       "negative entry with data %p len %zu", v->data, v->len);
	} else {
		EXPECT(v->len == e->len && (e->len == 0 ||
		       memcmp(v->data, e->bytes, e->len) == 0),
		       "bytes \"%.*s\" (%zu), model \"%.*s\" (%zu)",
		       (int)v->len, v->data ? (const char *)v->data : "",
		       v->len, (int)e->len, e->bytes, e->len);
	}
	if (stale) {
		EXPECT(stale_ok, "MLC_STALE without MLC_CALL_STALE_OK");
		EXPECT(st == EXPIRED || st == EITHER, "stale, model %s",
		       state_name(st));
		EXPECT(v->ttl_ms == 0, "stale with ttl_ms %" PRId64, v->ttl_ms);
		EXPECT(!(v->flags & MLC_NO_EXPIRY), "stale and MLC_NO_EXPIRY");
	} else if (e->never) {
		EXPECT(v->ttl_ms == MLC_TTL_NEVER && (v->flags & MLC_NO_EXPIRY),
		       "never-expiring entry with ttl_ms %" PRId64 " flags %#x",
		       v->ttl_ms, v->flags);
	} else {
		EXPECT(st == FRESH || st == EITHER, "a fresh answer, model %s",
		       state_name(st));
		EXPECT(!(v->flags & MLC_NO_EXPIRY), "MLC_NO_EXPIRY on a TTL");
		/* Never more than the model has left, never less. */
		EXPECT(v->ttl_ms >= 1 &&
		       v->ttl_ms <= (int64_t)(e->hi - R.t0) &&
		       v->ttl_ms >= (int64_t)e->lo - (int64_t)R.t1,
		       "ttl_ms %" PRId64 ", model %" PRId64 "..%" PRId64,
		       v->ttl_ms, (int64_t)e->lo - (int64_t)R.t1,
		       (int64_t)(e->hi - R.t0));
	}
	/* One version per write, rising across writes. */
	EXPECT(v->version != 0, "version 0 on a cached answer");
	if (e->version != 0) {
		EXPECT(v->version == e->version, "version %" PRIu64
		       ", model %" PRIu64, v->version, e->version);
	} else {
		EXPECT(v->version > R.vfloor[k], "version %" PRIu64
		       " not above an older write's %" PRIu64, v->version,
		       R.vfloor[k]);
		e->version = v->version;
		R.vfloor[k] = v->version;
	}
	R.hits++;
	R.stale += stale;
	R.negs += e->neg;
	R.l1 += v->level == MLC_L1;
}

/* A lookup without a loader (get or peek): rc and value against the model. */
static void
check_lookup(int rc, struct mlc_value *v, int k, bool stale_ok)
{
	struct ment *e = &R.m[k];
	enum state st = state_of(e, R.t0, R.t1);

	if (rc == -ENOENT) {
		/* An expired entry may be gone from L2 (reclaimed), so a
		 * miss is right for it even with MLC_CALL_STALE_OK. */
		EXPECT(st != FRESH, "-ENOENT, model fresh");
		R.misses++;
		return;
	}
	EXPECT(rc == 0, "rc %d (%s)", rc, mlc_strerror(rc));
	EXPECT(stale_ok || st != EXPIRED, "a hit, model expired");
	check_answer(v, e, k, stale_ok, false);
	mlc_value_release(v);
}

/* ---- the loader ---------------------------------------------------------------- */

enum outcome { O_VALUE, O_NOTFOUND, O_ERROR, O_INVALID, O_NOCACHE,
	       O_NOCACHE_NEG };

static const char *const outcome_name[] = {
	"value", "notfound", "error", "invalid", "nocache", "nocache-neg",
};

enum meddle { M_NONE, M_SET, M_DELETE, M_PURGE };

static const char *const meddle_name[] = { "", "set", "delete", "purge" };

struct plan {
	enum outcome o;
	char bytes[VMAX];
	size_t len;
	int64_t ttl;
	bool with_data;		/* an error that also returns data (E28) */
	int calls;
	/* A change of the key made inside the loader by the other handle,
	 * whose record a get of another key on the loading handle then
	 * applies (the loader calling the cache): the load is fenced, and
	 * the loading handle must not keep its value. */
	enum meddle meddle;
	int hi, k, other;	/* the handles' and keys' indexes */
	char mbytes[VMAX];	/* what M_SET stores */
	size_t mlen;
	int64_t mttl;
	int mrc;		/* what the change returned */
};

static uint64_t allocs, releases;

static void
release_fn(void *p)
{
	releases++;
	free(p);
}

static void
give(struct mlc_load *out, const char *bytes, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, bytes, len);
	allocs++;
	out->data = p;
	out->len = len;
	out->release = release_fn;
}

static void
meddle(struct plan *p)
{
	struct mlc_cache *o = R.h[1 - p->hi].c;
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_value v = { 0 };
	char key[16];

	key_name(key, p->k);
	switch (p->meddle) {
	case M_SET:
		co.ttl_ms = p->mttl;
		p->mrc = mlc_set(o, key, strlen(key), p->mbytes, p->mlen, &co);
		break;
	case M_DELETE:
		p->mrc = mlc_delete(o, key, strlen(key));
		break;
	case M_PURGE:
		p->mrc = mlc_purge(o);
		break;
	case M_NONE:
		return;
	}
	key_name(key, p->other);
	if (mlc_get(R.h[p->hi].c, key, strlen(key), NULL, NULL, &v) == 0)
		mlc_value_release(&v);
}

static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	struct plan *p = arg;

	(void)key;
	(void)key_len;
	p->calls++;
	meddle(p);
	switch (p->o) {
	case O_VALUE:
		give(out, p->bytes, p->len);
		out->ttl_ms = p->ttl;
		return MLC_LOAD_VALUE;
	case O_NOTFOUND:
		out->ttl_ms = p->ttl;
		return MLC_LOAD_NOTFOUND;
	case O_ERROR:
		if (p->with_data)
			give(out, p->bytes, p->len);
		snprintf(out->errmsg, sizeof(out->errmsg), "model error %.*s",
			 (int)p->len, p->bytes);
		return -EIO;
	case O_INVALID:
		give(out, p->bytes, p->len);
		out->ttl_ms = -7;
		return MLC_LOAD_VALUE;
	case O_NOCACHE:
		give(out, p->bytes, p->len);
		out->flags = MLC_LOAD_NO_CACHE;
		out->ttl_ms = p->ttl;
		return MLC_LOAD_VALUE;
	case O_NOCACHE_NEG:
		out->flags = MLC_LOAD_NO_CACHE;
		return MLC_LOAD_NOTFOUND;
	}
	return -EINVAL;
}

/* ---- random inputs ---------------------------------------------------------------- */

static size_t
rnd_bytes(char *buf, int k)
{
	size_t len = rnd(8) == 0 ? 0 : 1 + rnd(VMAX - 1);
	int n = snprintf(buf, VMAX, "%02d.%d.", k, R.step);

	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + rnd(26));
	return len;
}

/* A TTL for a call: 0 (the handle's), never, 1 ms, or 1..3000 ms. */
static int64_t
rnd_ttl(void)
{
	uint32_t r = rnd(10);

	if (r < 4)
		return 0;
	if (r < 5)
		return MLC_TTL_NEVER;
	if (r < 6)
		return 1;
	return 1 + rnd(3000);
}

/* Make the model entry of a write. */
static void
model_store(int k, bool neg, const char *bytes, size_t len, int64_t ttl)
{
	struct ment *e = &R.m[k];

	e->present = true;
	e->neg = neg;
	e->len = neg ? 0 : len;
	if (!neg && len)
		memcpy(e->bytes, bytes, len);
	e->never = ttl == MLC_TTL_NEVER;
	e->lo = e->never ? 0 : R.t0 + (uint64_t)ttl;
	e->hi = e->never ? 0 : R.t1 + (uint64_t)ttl;
	e->version = 0;
}

#define CLOCK_AROUND(call) do {				\
		R.t0 = mlc__now_ms();			\
		call;					\
		R.t1 = mlc__now_ms();			\
	} while (0)

/* ---- the operations ------------------------------------------------------------------ */

/* A load whose key the other handle changed inside the loader: the
 * answer is the loader's, this caller's only, and the model takes the
 * change. */
static void
meddled(const struct plan *p, int rc, struct mlc_value *v)
{
	EXPECT(p->mrc == 0, "%s inside the loader: rc %d (%s)",
	       meddle_name[p->meddle], p->mrc, mlc_strerror(p->mrc));
	EXPECT(rc == 0, "rc %d (%s) after a %s", rc, mlc_strerror(rc),
	       outcome_name[p->o]);
	EXPECT(v->level == MLC_L3 && (v->flags & MLC_NOT_CACHED),
	       "a load fenced by a %s: level %u flags %#x",
	       meddle_name[p->meddle], v->level, v->flags);
	if (p->o == O_VALUE)
		EXPECT(!(v->flags & MLC_NEGATIVE) && v->len == p->len &&
		       (p->len == 0 || memcmp(v->data, p->bytes, p->len) == 0),
		       "fenced load's bytes differ");
	else
		EXPECT((v->flags & MLC_NEGATIVE) && v->data == NULL,
		       "fenced negative load: flags %#x", v->flags);
	mlc_value_release(v);
	switch (p->meddle) {
	case M_SET:
		model_store(p->k, false, p->mbytes, p->mlen, p->mttl);
		break;
	case M_DELETE:
		R.m[p->k].present = false;
		R.m[p->k].version = 0;
		break;
	case M_PURGE:
		for (int k = 0; k < NKEYS; k++) {
			R.m[k].present = false;
			R.m[k].version = 0;
		}
		break;
	case M_NONE:
		break;
	}
	R.meddled++;
	EXPECT(allocs == releases, "%" PRIu64 " loader buffers, %" PRIu64
	       " released", allocs, releases);
}

static void
op_get_loader(int hi, int k, const char *key)
{
	struct handle *h = &R.h[hi];
	struct ment *e = &R.m[k];
	struct plan p = { 0 };
	struct mlc_value v = { 0 };
	uint32_t r = rnd(100);
	enum state st;
	int rc;

	p.o = r < 45 ? O_VALUE : r < 65 ? O_NOTFOUND : r < 77 ? O_ERROR :
	      r < 82 ? O_INVALID : r < 95 ? O_NOCACHE : O_NOCACHE_NEG;
	p.len = rnd_bytes(p.bytes, k);
	p.ttl = rnd_ttl();
	p.with_data = rnd(2);
	p.hi = hi;
	p.k = k;
	if ((p.o == O_VALUE || p.o == O_NOTFOUND) && rnd(8) == 0) {
		p.meddle = (enum meddle)(1 + rnd(3));
		p.other = (k + 1 + (int)rnd(NKEYS - 1)) % NKEYS;
		p.mlen = rnd_bytes(p.mbytes, k);
		p.mttl = rnd(2) ? MLC_TTL_NEVER : 1000 + (int64_t)rnd(3000);
	}
	CLOCK_AROUND(rc = mlc_get(h->c, key, strlen(key), loader, &p, &v));
	step_log("%d: h%d get %s loader=%s len=%zu ttl=%" PRId64
		 "%s%s -> rc %d level %u flags %#x ttl %" PRId64 " calls %d "
		 "[clock %" PRIu64 "..%" PRIu64 "]", R.step, hi, key,
		 outcome_name[p.o], p.len, p.ttl,
		 p.meddle ? ", inside it the other handle's " : "", meddle_name[p.meddle], rc,
		 rc ? 0 : v.level, rc ? 0 : v.flags, rc ? 0 : v.ttl_ms,
		 p.calls, R.t0, R.t1);
	st = state_of(e, R.t0, R.t1);
	EXPECT(p.calls <= 1, "loader ran %d times", p.calls);
	if (p.calls == 0) {
		EXPECT(st == FRESH || st == EITHER, "no load, model %s",
		       state_name(st));
		EXPECT(rc == 0, "rc %d (%s) without a load", rc,
		       mlc_strerror(rc));
		check_answer(&v, e, k, false, false);
		mlc_value_release(&v);
		return;
	}
	EXPECT(st != FRESH, "loaded a fresh key");
	R.loads++;
	if (p.meddle != M_NONE) {
		meddled(&p, rc, &v);
		return;
	}
	switch (p.o) {
	case O_VALUE:
	case O_NOTFOUND: {
		bool neg = p.o == O_NOTFOUND;
		int64_t ttl = p.ttl ? p.ttl : neg ? h->neg_ttl : h->ttl;

		EXPECT(rc == 0, "rc %d (%s) after a %s", rc, mlc_strerror(rc),
		       outcome_name[p.o]);
		model_store(k, neg, p.bytes, p.len, ttl);
		check_answer(&v, e, k, false, true);
		mlc_value_release(&v);
		break;
	}
	case O_ERROR:
		EXPECT(rc == MLC_ELOADER, "rc %d (%s) after a loader error", rc,
		       mlc_strerror(rc));
		{
			char want[160];

			snprintf(want, sizeof(want), "model error %.*s",
				 (int)p.len, p.bytes);
			EXPECT(strcmp(mlc_last_error(h->c), want) == 0,
			       "last error \"%s\", want \"%s\"",
			       mlc_last_error(h->c), want);
		}
		break;
	case O_INVALID:
		EXPECT(rc == MLC_ELOADER, "rc %d (%s) after invalid output", rc,
		       mlc_strerror(rc));
		break;
	case O_NOCACHE:
	case O_NOCACHE_NEG:
		EXPECT(rc == 0, "rc %d (%s) after a no-cache load", rc,
		       mlc_strerror(rc));
		EXPECT(v.level == MLC_L3 && (v.flags & MLC_NOT_CACHED) &&
		       !(v.flags & MLC_STALE),
		       "no-cache answer level %u flags %#x", v.level, v.flags);
		if (p.o == O_NOCACHE)
			EXPECT(!(v.flags & MLC_NEGATIVE) && v.len == p.len &&
			       (p.len == 0 || memcmp(v.data, p.bytes, p.len) == 0),
			       "no-cache bytes differ");
		else
			EXPECT((v.flags & MLC_NEGATIVE) && v.data == NULL,
			       "no-cache negative flags %#x", v.flags);
		mlc_value_release(&v);
		break;
	}
	EXPECT(allocs == releases, "%" PRIu64 " loader buffers, %" PRIu64
	       " released", allocs, releases);
}

static void
op_lookup(int hi, int k, const char *key, bool is_peek, bool stale_ok)
{
	struct handle *h = &R.h[hi];
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;
	struct mlc_value v = { 0 };
	int rc;

	o.flags = stale_ok ? MLC_CALL_STALE_OK : 0;
	if (is_peek)
		CLOCK_AROUND(rc = mlc_peek(h->c, key, strlen(key), o.flags,
					   &v));
	else if (stale_ok || rnd(2))
		CLOCK_AROUND(rc = mlc_get_ex(h->c, key, strlen(key), &o, NULL,
					     NULL, &v));
	else
		CLOCK_AROUND(rc = mlc_get(h->c, key, strlen(key), NULL, NULL,
					  &v));
	step_log("%d: h%d %s%s %s -> rc %d level %u flags %#x ttl %" PRId64
		 " [clock %" PRIu64 "..%" PRIu64 "]", R.step, hi,
		 is_peek ? "peek" : "get", stale_ok ? " stale-ok" : "", key, rc,
		 rc ? 0 : v.level, rc ? 0 : v.flags, rc ? 0 : v.ttl_ms, R.t0,
		 R.t1);
	check_lookup(rc, &v, k, stale_ok);
}

static void
op_set(int hi, int k, const char *key, bool neg)
{
	struct handle *h = &R.h[hi];
	struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;
	char bytes[VMAX];
	size_t len = neg ? 0 : rnd_bytes(bytes, k);
	int64_t ttl;
	int rc;

	o.ttl_ms = rnd_ttl();
	o.neg_ttl_ms = rnd_ttl();
	o.flags = neg ? MLC_CALL_NEGATIVE : 0;
	CLOCK_AROUND(rc = mlc_set(h->c, key, strlen(key), neg ? NULL : bytes,
				  len, &o));
	step_log("%d: h%d set%s %s len=%zu ttl=%" PRId64 " neg_ttl=%" PRId64
		 " -> rc %d [clock %" PRIu64 "..%" PRIu64 "]", R.step, hi,
		 neg ? " negative" : "", key, len, o.ttl_ms, o.neg_ttl_ms, rc,
		 R.t0, R.t1);
	EXPECT(rc == 0, "set: rc %d (%s)", rc, mlc_strerror(rc));
	if (neg)
		ttl = o.neg_ttl_ms ? o.neg_ttl_ms : h->neg_ttl;
	else
		ttl = o.ttl_ms ? o.ttl_ms : h->ttl;
	model_store(k, neg, bytes, len, ttl);
}

static void
op_delete(int hi, int k, const char *key)
{
	int rc;

	CLOCK_AROUND(rc = mlc_delete(R.h[hi].c, key, strlen(key)));
	step_log("%d: h%d delete %s -> rc %d", R.step, hi, key, rc);
	EXPECT(rc == 0, "delete: rc %d (%s)", rc, mlc_strerror(rc));
	R.m[k].present = false;
	R.m[k].version = 0;
}

static void
op_purge(int hi)
{
	int rc;

	CLOCK_AROUND(rc = mlc_purge(R.h[hi].c));
	step_log("%d: h%d purge -> rc %d", R.step, hi, rc);
	EXPECT(rc == 0, "purge: rc %d (%s)", rc, mlc_strerror(rc));
	for (int k = 0; k < NKEYS; k++) {
		R.m[k].present = false;
		R.m[k].version = 0;
	}
}

/* More sets in a row than the log holds: the other handle is lapped and
 * must drop its whole L1, never serve what it held. */
static void
op_burst(int hi)
{
	step_log("%d: h%d burst of %d sets (steps %d.0..%d.%d follow)", R.step,
		 hi, BURST, R.step, R.step, BURST - 1);
	for (int i = 0; i < BURST; i++) {
		int k = (int)rnd(NKEYS);
		char key[16], bytes[VMAX];
		size_t len = rnd_bytes(bytes, k);
		int64_t ttl = rnd(2) ? MLC_TTL_NEVER : 1000 + (int64_t)rnd(3000);
		struct mlc_call_options o = MLC_CALL_OPTIONS_INIT;
		int rc;

		key_name(key, k);
		o.ttl_ms = ttl;
		CLOCK_AROUND(rc = mlc_set(R.h[hi].c, key, strlen(key), bytes,
					  len, &o));
		EXPECT(rc == 0, "burst set %d: rc %d", i, rc);
		model_store(k, false, bytes, len, ttl);
	}
}

static void
op_advance(void)
{
	uint32_t r = rnd(10);
	int64_t ms = r < 5 ? rnd(51) : r < 8 ? rnd(501) : rnd(2001);

	mlc__clock_advance(ms);
	step_log("%d: advance %" PRId64 " ms -> clock %" PRIu64, R.step, ms,
		 mlc__now_ms());
}

/* ---- one seed ---------------------------------------------------------------------- */

static void
open_handles(void)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;

	/* Different defaults per handle: each write uses its writer's. */
	o.lru_size = LRU;
	o.ttl_ms = 1500;
	o.neg_ttl_ms = 700;
	R.h[0].c = t_cache(R.a, "model", &o);
	R.h[0].ttl = 1500;
	R.h[0].neg_ttl = 700;
	o.ttl_ms = 2500;
	o.neg_ttl_ms = 0;	/* = ttl_ms */
	R.h[1].c = t_cache(R.a, "model", &o);
	R.h[1].ttl = 2500;
	R.h[1].neg_ttl = 2500;
}

/* Both handles must agree with the model on every key. */
static void
final_sweep(void)
{
	for (int hi = 0; hi < 2; hi++) {
		for (int k = 0; k < NKEYS; k++) {
			char key[16];

			key_name(key, k);
			R.key = k;
			op_lookup(hi, k, key, true, true);
			op_lookup(hi, k, key, true, false);
		}
	}
}

static void
run_seed(uint64_t seed, int nops)
{
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;
	struct mlc_stats st[2] = { MLC_STATS_INIT, MLC_STATS_INIT };

	memset(R.m, 0, sizeof(R.m));
	memset(R.vfloor, 0, sizeof(R.vfloor));
	R.seed = seed;
	R.nops = nops;
	R.nsteps = 0;
	R.key = -1;
	R.loads = R.hits = R.misses = R.stale = R.negs = R.l1 = 0;
	R.meddled = 0;
	rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	R.a = t_arena(R.name, sizeof(R.name), 16u << 20, 0);
	open_handles();

	for (R.step = 0; R.step < nops; R.step++) {
		int hi = (int)rnd(2), k = (int)rnd(NKEYS);
		uint32_t r = rnd(1000);
		char key[16];

		key_name(key, k);
		R.key = k;
		if (r < 250)
			op_get_loader(hi, k, key);
		else if (r < 380)
			op_lookup(hi, k, key, false, false);
		else if (r < 430)
			op_lookup(hi, k, key, false, true);
		else if (r < 530)
			op_lookup(hi, k, key, true, false);
		else if (r < 580)
			op_lookup(hi, k, key, true, true);
		else if (r < 720)
			op_set(hi, k, key, false);
		else if (r < 770)
			op_set(hi, k, key, true);
		else if (r < 830)
			op_delete(hi, k, key);
		else if (r < 835)
			op_purge(hi);
		else if (r < 837)
			op_burst(hi);
		else
			op_advance();
	}
	R.key = -1;
	final_sweep();

	assert_int_equal(mlc_arena_info(R.a, &ai), 0);
	if (ai.evictions != 0 || ai.index_evictions != 0)
		mismatch("L2 evicted (%" PRIu64 " evictions, %" PRIu64
			 " index evictions): the model is not exact",
			 ai.evictions, ai.index_evictions);
	assert_int_equal(ai.evictions, 0);
	assert_int_equal(allocs, releases);
	for (int hi = 0; hi < 2; hi++) {
		assert_int_equal(mlc_stats(R.h[hi].c, &st[hi]), 0);
		mlc_cache_close(R.h[hi].c);
	}
	mlc_arena_close(R.a);
	mlc_arena_unlink(R.name, 0);
	/* The sequence must have exercised what it claims to. */
	if (nops >= 1000) {
		assert_true(R.loads > 50 && R.hits > 200 && R.misses > 50);
		assert_true(R.l1 > 50 && R.negs > 20);
		assert_true(R.meddled > 5);
		assert_true(st[0].l1_evictions + st[1].l1_evictions > 10);
		assert_true(st[0].log_applied + st[1].log_applied > 100);
		assert_true(st[0].log_dropped + st[1].log_dropped > 10);
	}
	print_message("seed %2" PRIu64 ": %d ops, %" PRIu64 " loads (%" PRIu64
		      " with a change inside), %" PRIu64
		      " hits (%" PRIu64 " L1, %" PRIu64 " negative, %" PRIu64
		      " stale), %" PRIu64 " misses, L1 evictions %" PRIu64
		      ", log dropped %" PRIu64 ", overruns %" PRIu64 "\n",
		      seed, nops, R.loads, R.meddled, R.hits, R.l1, R.negs, R.stale,
		      R.misses, st[0].l1_evictions + st[1].l1_evictions,
		      st[0].log_dropped + st[1].log_dropped,
		      st[0].log_overruns + st[1].log_overruns);
}

static void
test_model(void **state)
{
	const char *env_seed = getenv("MLC_MODEL_SEED");
	const char *env_ops = getenv("MLC_MODEL_OPS");
	int nops = env_ops ? atoi(env_ops) : NOPS;

	(void)state;
	t_require_shm();
	if (nops <= 0 || nops > 1000000)
		nops = NOPS;
	R.cap = nops + 4 * NKEYS + 8;
	R.steps = calloc((size_t)R.cap, sizeof(*R.steps));
	assert_non_null(R.steps);
	if (env_seed != NULL) {
		run_seed(strtoull(env_seed, NULL, 0), nops);
	} else {
		for (uint64_t seed = 1; seed <= NSEEDS; seed++)
			run_seed(seed, nops);
	}
	free(R.steps);
	R.steps = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
