/*
 * fuzz-ops: the input is a sequence of API calls on a fresh arena, checked
 * step by step against a tiny reference model.
 *
 * Three handles: two on namespace "a" (so every change made through one
 * must reach the other's L1 through the log) and one on "b" (same keys,
 * never the same entries).  Keys come from a small table (binary bytes, a
 * NUL inside, lengths 1..5).  The arena is large and the input short, so
 * nothing is ever evicted: the model is exact.
 *
 * Time: the ADVANCE op moves the library's clock by multiples of 500 ms and
 * TTLs are multiples of 1000 ms, so the real time an input takes (well under
 * 500 ms) can never decide whether an entry expired.
 *
 * Checked after every call: the return code, the bytes, the flags
 * (NEGATIVE, STALE, NO_EXPIRY, NOT_CACHED), the TTL left, the level of a
 * hit (a loader is never called for a fresh entry), the version (new for
 * every write, stable between them, equal across handles), and that an
 * out-parameter is untouched on error.
 *
 * Input: 4 bytes per op: op/handle, key, two argument bytes; some ops take
 * a fifth byte.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc.h"

void mlc__clock_advance(int64_t ms);

#define NH 3			/* handles */
#define NKEYS 32
#define STEP_MS 500		/* clock advances are multiples of this */
#define TTL_UNIT 1000		/* and TTLs multiples of this */
#define PAGE (64u << 10)

static const struct {
	const char *bytes;
	size_t len;
} keys[NKEYS] = {
	{ "a", 1 }, { "b", 1 }, { "c", 1 }, { "\0", 1 }, { "ab", 2 },
	{ "ba", 2 }, { "a\0", 2 }, { "\0a", 2 }, { "aa", 2 }, { "bb", 2 },
	{ "abc", 3 }, { "a\0c", 3 }, { "cba", 3 }, { "\0\0\0", 3 },
	{ "aaaa", 4 }, { "abab", 4 }, { "\xff\xfe", 2 }, { "\x80", 1 },
	{ "k1", 2 }, { "k2", 2 }, { "k3", 2 }, { "k4", 2 }, { "k10", 3 },
	{ "k11", 3 }, { "key", 3 }, { "keys", 4 }, { "kez", 3 },
	{ "zzzzz", 5 }, { "a b", 3 }, { "A", 1 }, { "B", 1 }, { "\n", 1 },
};

enum { ABSENT, VALUE, NEGATIVE };

struct entry {
	int state;
	unsigned char *data;
	size_t len;
	uint64_t expire;	/* model ms; 0: never */
	uint64_t version;	/* 0: not seen since the last write */
	uint64_t min_version;	/* a new version is above every one seen */
};

static struct {
	struct entry e[2][NKEYS];	/* namespace a, b */
	uint64_t now;			/* model clock, ms */
	uint64_t max_version;		/* highest version seen */
	unsigned loader_calls;
} m;

static const int ns_of[NH] = { 0, 0, 1 };

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz-ops: step %u: ", step);	\
			fprintf(stderr, __VA_ARGS__);			\
			fprintf(stderr, "\n");				\
			abort();					\
		}							\
	} while (0)

static unsigned step;
static bool trace;		/* MLC_FUZZ_TRACE=1: print every step */

static void
entry_set(struct entry *e, int state, const void *data, size_t len,
	  int64_t ttl)
{
	free(e->data);
	e->data = NULL;
	e->state = state;
	e->len = state == VALUE ? len : 0;
	if (state == VALUE && len) {
		e->data = malloc(len);
		memcpy(e->data, data, len);
	}
	e->expire = ttl == MLC_TTL_NEVER ? 0 : m.now + (uint64_t)ttl;
	e->version = 0;
	e->min_version = m.max_version + 1;
}

static bool
expired(const struct entry *e)
{
	return e->expire != 0 && m.now >= e->expire;
}

static void
model_reset(void)
{
	for (int n = 0; n < 2; n++)
		for (int k = 0; k < NKEYS; k++)
			free(m.e[n][k].data);
	memset(&m, 0, sizeof(m));
}

/* The bytes of a value: a function of (seed, i) so equality means "the
 * same write". */
static void
fill(unsigned char *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((seed * 2654435761u + i * 40503u) >> 7);
}

static unsigned char valbuf[PAGE + 64];

/* A successful read: compare with the model entry @p e.  @p stale_ok:
 * the call allowed an expired entry. */
static void
check_value(const struct mlc_value *v, struct entry *e, bool stale)
{
	CHECK(e->state != ABSENT, "a value for an absent key");
	if (e->state == NEGATIVE) {
		CHECK(v->flags & MLC_NEGATIVE, "negative entry without "
		      "MLC_NEGATIVE (flags %#x)", v->flags);
		CHECK(v->len == 0, "negative entry with %zu bytes", v->len);
	} else {
		CHECK(!(v->flags & MLC_NEGATIVE), "value flagged negative");
		CHECK(v->len == e->len, "length %zu, model %zu", v->len,
		      e->len);
		CHECK(e->len == 0 || memcmp(v->data, e->data, e->len) == 0,
		      "bytes differ from the last write");
	}
	if (stale) {
		CHECK(v->flags & MLC_STALE, "expired entry served without "
		      "MLC_STALE");
		CHECK(v->ttl_ms == 0, "stale value with ttl_ms %lld",
		      (long long)v->ttl_ms);
	} else {
		CHECK(!(v->flags & MLC_STALE), "fresh entry flagged stale");
	}
	if (e->expire == 0) {
		CHECK(v->ttl_ms == MLC_TTL_NEVER && (v->flags & MLC_NO_EXPIRY),
		      "never-expiring entry: ttl_ms %lld flags %#x",
		      (long long)v->ttl_ms, v->flags);
	} else if (!stale) {
		int64_t left = (int64_t)(e->expire - m.now);

		CHECK(v->ttl_ms <= left && v->ttl_ms > left - STEP_MS &&
		      v->ttl_ms >= 1, "ttl_ms %lld, model %lld",
		      (long long)v->ttl_ms, (long long)left);
		CHECK(!(v->flags & MLC_NO_EXPIRY), "MLC_NO_EXPIRY on an "
		      "expiring entry");
	}
	CHECK(v->version != 0, "version 0 on a stored entry");
	if (e->version == 0) {
		CHECK(v->version >= e->min_version, "version %llu not above "
		      "%llu seen before the write",
		      (unsigned long long)v->version,
		      (unsigned long long)e->min_version - 1);
		e->version = v->version;
	} else {
		CHECK(v->version == e->version, "version %llu, was %llu with "
		      "no write between", (unsigned long long)v->version,
		      (unsigned long long)e->version);
	}
	if (v->version > m.max_version)
		m.max_version = v->version;
}

static const struct mlc_value poison = {
	(const void *)0x1, 0x5a5a, (void *)0x2, 0xa5a5a5a5u, 0x5a5a5a5au,
	0x5a5a5a5a5a5aLL, 0x5a5a5a5a5a5aULL, (void *)0x3,
};

static void
check_untouched(const struct mlc_value *v)
{
	CHECK(memcmp(v, &poison, sizeof(*v)) == 0,
	      "value written by a failing call");
}

/* ---- the loader -------------------------------------------------------- */

static struct {
	int mode;		/* 0 value, 1 notfound, 2 error, 3 no-cache */
	size_t len;
	int64_t ttl;
	uint32_t seed;
} ld;

static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	(void)arg;
	(void)key;
	(void)key_len;
	m.loader_calls++;
	switch (ld.mode) {
	case 1:
		out->ttl_ms = ld.ttl;
		return MLC_LOAD_NOTFOUND;
	case 2:
		snprintf(out->errmsg, sizeof(out->errmsg), "backend down");
		return -EIO;
	default:
		fill(valbuf, ld.len, ld.seed);
		out->data = valbuf;
		out->len = ld.len;
		out->ttl_ms = ld.ttl;
		if (ld.mode == 3)
			out->flags = MLC_LOAD_NO_CACHE;
		return MLC_LOAD_VALUE;
	}
}

/* ---- decoding ---------------------------------------------------------- */

static int64_t
ttl_of(uint8_t b)
{
	return b % 4 == 0 ? MLC_TTL_NEVER : (int64_t)(b % 4) * TTL_UNIT;
}

static size_t
len_of(uint8_t sel, uint8_t x, uint8_t y)
{
	switch (sel % 4) {
	case 0:
		return x % 64;
	case 1:
		return (size_t)x * 16 + y % 16;
	case 2:
		return (size_t)x * 256 + y;		/* up to 64 KiB */
	default:			/* around the page limit */
		return PAGE - 56 + (size_t)(x % 24);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *h[NH] = { NULL };
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	size_t i = 0, value_max;
	int rc;

	if (size > 2048)
		return 0;		/* the arena is sized for 512 ops */
	trace = getenv("MLC_FUZZ_TRACE") != NULL;
	ao.flags = MLC_ARENA_ANON;
	ao.bytes = 48u << 20;
	ao.page_size = PAGE;
	ao.max_items = 4096;
	ao.log_cells = 1024;
	ao.flight_slots = 64;
	ao.max_namespaces = 4;
	rc = mlc_arena_open(&a, NULL, &ao);
	if (rc != 0) {
		fprintf(stderr, "fuzz-ops: arena: %s\n", mlc_strerror(rc));
		abort();
	}
	/* What fits: the arena says (a page less the item header). */
	mlc_arena_info(a, &info);
	value_max = info.value_max;
	co.ttl_ms = MLC_TTL_NEVER;
	for (int j = 0; j < NH; j++)
		if (mlc_cache_open(&h[j], a, j < 2 ? "a" : "b", &co) != 0)
			abort();
	model_reset();
	for (step = 0; i + 4 <= size; step++) {
		uint8_t b0 = data[i], b1 = data[i + 1], b2 = data[i + 2];
		uint8_t b3 = data[i + 3], b4 = i + 4 < size ? data[i + 4] : 0;
		int hi = (b0 >> 4) % NH, op = b0 % 16;
		struct mlc_cache *c = h[hi];
		int kidx = b1 % NKEYS;
		const void *key = keys[kidx].bytes;
		size_t klen = keys[kidx].len;
		struct entry *e = &m.e[ns_of[hi]][kidx];
		struct mlc_call_options opt = MLC_CALL_OPTIONS_INIT;
		struct mlc_value v = poison;

		i += 4;
		if (trace)
			fprintf(stderr, "step %u: handle %d op %d key %d "
				"args %u %u %u (model: state %d, expired %d, "
				"t %llu)\n", step, hi, op, kidx, b2, b3, b4,
				e->state, (int)expired(e),
				(unsigned long long)m.now);
		switch (op) {
		case 0: case 1: case 2: {	/* set */
			size_t len = len_of(b2, b3, b4);
			int64_t ttl = ttl_of(b2 >> 2);

			i++;
			fill(valbuf, len, (uint32_t)(step * 7919u + 1));
			opt.ttl_ms = ttl;
			rc = mlc_set(c, key, klen, len ? valbuf : NULL, len,
				     &opt);
			if (klen + len > value_max) {
				CHECK(rc == -E2BIG, "set of %zu bytes: %d, "
				      "want -E2BIG", len, rc);
				break;
			}
			CHECK(rc == 0, "set: %s", mlc_strerror(rc));
			entry_set(e, VALUE, valbuf, len, ttl);
			break;
		}
		case 3: {			/* set a negative entry */
			int64_t ttl = ttl_of(b2);

			opt.flags = MLC_CALL_NEGATIVE;
			opt.neg_ttl_ms = ttl;
			rc = mlc_set(c, key, klen, NULL, 0, &opt);
			CHECK(rc == 0, "negative set: %s", mlc_strerror(rc));
			entry_set(e, NEGATIVE, NULL, 0, ttl);
			break;
		}
		case 4: case 5: {		/* get, no loader */
			bool stale_ok = b2 & 1;

			opt.flags = stale_ok ? MLC_CALL_STALE_OK : 0;
			rc = mlc_get_ex(c, key, klen, &opt, NULL, NULL, &v);
			if (e->state == ABSENT ||
			    (expired(e) && !stale_ok)) {
				CHECK(rc == -ENOENT, "get of an absent or "
				      "expired key: %d", rc);
				check_untouched(&v);
				break;
			}
			CHECK(rc == 0, "get: %s", mlc_strerror(rc));
			check_value(&v, e, expired(e));
			mlc_value_release(&v);
			break;
		}
		case 6: case 7: {		/* get with a loader */
			unsigned calls = m.loader_calls;
			bool fresh = e->state != ABSENT && !expired(e);

			ld.mode = b2 % 8 < 4 ? 0 : b2 % 8 - 4;
			ld.len = len_of(b3 & 1, b3 >> 1, b2);
			ld.ttl = b2 & 0x80 ? TTL_UNIT * (1 + b3 % 3) : 0;
			ld.seed = (uint32_t)(step * 104729u + 3);
			rc = mlc_get(c, key, klen, loader, NULL, &v);
			if (fresh) {
				CHECK(m.loader_calls == calls, "loader called "
				      "for a fresh entry");
				CHECK(rc == 0, "get of a fresh key: %s",
				      mlc_strerror(rc));
				CHECK(v.level != MLC_L3, "fresh entry from L3");
				check_value(&v, e, false);
				mlc_value_release(&v);
				break;
			}
			CHECK(m.loader_calls == calls + 1, "loader not called "
			      "once for a missing key (%u)",
			      m.loader_calls - calls);
			if (ld.mode == 2) {
				CHECK(rc == MLC_ELOADER, "failed load: %d", rc);
				check_untouched(&v);
				break;
			}
			CHECK(rc == 0, "load: %s", mlc_strerror(rc));
			CHECK(v.level == MLC_L3, "loaded value at level %u",
			      v.level);
			if (ld.mode == 3) {
				CHECK(v.flags & MLC_NOT_CACHED, "no-cache load "
				      "without MLC_NOT_CACHED");
				CHECK(v.len == ld.len, "no-cache length");
				mlc_value_release(&v);
				break;
			}
			CHECK(!(v.flags & MLC_NOT_CACHED), "load not cached");
			{
				int64_t ttl = ld.ttl ? ld.ttl : MLC_TTL_NEVER;

				if (ld.mode == 1)
					entry_set(e, NEGATIVE, NULL, 0, ttl);
				else
					entry_set(e, VALUE, valbuf, ld.len,
						  ttl);
			}
			check_value(&v, e, false);
			mlc_value_release(&v);
			break;
		}
		case 8: case 9: {		/* peek */
			bool stale_ok = b2 & 1;

			rc = mlc_peek(c, key, klen,
				      stale_ok ? MLC_CALL_STALE_OK : 0, &v);
			if (e->state == ABSENT ||
			    (expired(e) && !stale_ok)) {
				CHECK(rc == -ENOENT, "peek of an absent or "
				      "expired key: %d", rc);
				check_untouched(&v);
				break;
			}
			CHECK(rc == 0, "peek: %s", mlc_strerror(rc));
			check_value(&v, e, expired(e));
			mlc_value_release(&v);
			break;
		}
		case 10: case 11:		/* delete */
			rc = mlc_delete(c, key, klen);
			CHECK(rc == 0, "delete: %s", mlc_strerror(rc));
			entry_set(e, ABSENT, NULL, 0, MLC_TTL_NEVER);
			break;
		case 12:			/* purge, now and then */
			if (b2 % 4 != 0) {
				CHECK(mlc_update(c) == 0, "update");
				break;
			}
			CHECK(mlc_purge(c) == 0, "purge");
			for (int k = 0; k < NKEYS; k++)
				entry_set(&m.e[ns_of[hi]][k], ABSENT, NULL, 0,
					  MLC_TTL_NEVER);
			break;
		case 13:			/* time passes */
			mlc__clock_advance((int64_t)STEP_MS * (1 + b2 % 6));
			m.now += (uint64_t)STEP_MS * (1 + b2 % 6);
			break;
		case 14:			/* update */
			CHECK(mlc_update(c) == 0, "update");
			break;
		default:			/* bad arguments: nothing changes */
			switch (b2 % 8) {
			case 0:
				rc = mlc_get(c, key, 0, NULL, NULL, &v);
				CHECK(rc == -EINVAL, "empty key: %d", rc);
				break;
			case 1:
				rc = mlc_get(c, NULL, klen, NULL, NULL, &v);
				CHECK(rc == -EINVAL, "NULL key: %d", rc);
				break;
			case 2:
				rc = mlc_peek(c, valbuf, (size_t)MLC_KEY_MAX + 1,
					      0, &v);
				CHECK(rc == -E2BIG, "long key: %d", rc);
				break;
			case 3:
				rc = mlc_set(c, key, klen, NULL, 5, NULL);
				CHECK(rc == -EINVAL, "NULL data: %d", rc);
				break;
			case 4:
				opt.flags = MLC_CALL_NEGATIVE;
				rc = mlc_set(c, key, klen, "x", 1, &opt);
				CHECK(rc == -EINVAL, "negative with data: %d",
				      rc);
				break;
			case 5:
				rc = mlc_peek(c, key, klen, 0x80, &v);
				CHECK(rc == -EINVAL, "peek flags: %d", rc);
				break;
			case 6:
				opt.size = 3;
				rc = mlc_get_ex(c, key, klen, &opt, NULL, NULL,
						&v);
				CHECK(rc == -EINVAL, "options size 3: %d", rc);
				break;
			default:
				opt.flags = 1u << 20;
				rc = mlc_set(c, key, klen, "x", 1, &opt);
				CHECK(rc == -EINVAL, "unknown call flag: %d",
				      rc);
				break;
			}
			check_untouched(&v);
			break;
		}
	}
	for (int j = 0; j < NH; j++)
		mlc_cache_close(h[j]);
	mlc_arena_close(a);
	model_reset();
	return 0;
}
