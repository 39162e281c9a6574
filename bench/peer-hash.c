/*
 * The L1 ceiling: a plain in-process hash table (open addressing, linear
 * probing, XXH3 like mlc, values malloc'd once and handed out by pointer,
 * no LRU, no TTL, no locking).  Nothing that does more can be faster.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bench.h"

enum { EMPTY = 0, LIVE = 1, GONE = 2 };

struct slot {
	char key[BENCH_KEY];
	uint32_t state;
	uint32_t len;
	char *val;
};

struct st {
	struct slot *t;
	size_t mask;
	uint64_t seed;
};

static int
h_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	struct st *s = calloc(1, sizeof(*s));
	size_t n = 1024;

	if (s == NULL)
		return -ENOMEM;
	while (n < (size_t)p->nkeys * 2)
		n <<= 1;
	s->t = calloc(n, sizeof(*s->t));
	if (s->t == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->mask = n - 1;
	s->seed = 0x9e3779b97f4a7c15ull;
	*stp = s;
	return 0;
}

static int
h_reset(void *st)
{
	struct st *s = st;

	for (size_t i = 0; i <= s->mask; i++)
		free(s->t[i].val);
	memset(s->t, 0, (s->mask + 1) * sizeof(*s->t));
	return 0;
}

static void
h_close(void *st)
{
	struct st *s = st;

	h_reset(s);
	free(s->t);
	free(s);
}

/* The key's slot, or the first reusable one (*found false). */
static struct slot *
probe(struct st *s, const char *key, bool *found)
{
	size_t i = XXH3_64bits_withSeed(key, BENCH_KEY, s->seed) & s->mask;
	struct slot *reuse = NULL;

	for (;; i = (i + 1) & s->mask) {
		struct slot *sl = &s->t[i];

		if (sl->state == EMPTY) {
			*found = false;
			return reuse ? reuse : sl;
		}
		if (sl->state == GONE) {
			if (reuse == NULL)
				reuse = sl;
		} else if (memcmp(sl->key, key, BENCH_KEY) == 0) {
			*found = true;
			return sl;
		}
	}
}

static int
h_get(void *st, const char *key, uint64_t *chk)
{
	bool found;
	struct slot *sl = probe(st, key, &found);

	if (!found)
		return -ENOENT;
	*chk += chk_bytes(sl->val, sl->len);
	return (int)sl->len;
}

static int
h_set(void *st, const char *key, const void *val, size_t len)
{
	bool found;
	struct slot *sl = probe(st, key, &found);

	if (!found || sl->len != len) {
		char *v = realloc(found ? sl->val : NULL, len ? len : 1);

		if (v == NULL)
			return -ENOMEM;
		sl->val = v;
	}
	memcpy(sl->key, key, BENCH_KEY);
	memcpy(sl->val, val, len);
	sl->len = (uint32_t)len;
	sl->state = LIVE;
	return 0;
}

static int
h_del(void *st, const char *key)
{
	bool found;
	struct slot *sl = probe(st, key, &found);

	if (found) {
		free(sl->val);
		sl->val = NULL;
		sl->state = GONE;
	}
	return 0;
}

static int
h_load(void *st, const char *key, const void *val, size_t len)
{
	uint64_t chk = 0;

	if (h_get(st, key, &chk) >= 0)
		return 0;
	return h_set(st, key, val, len);
}

static int
h_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	return fill_by_set(&impl_hash, st, keys, n, val, len);
}

static int
h_fork_child(void *st)
{
	return 0;	/* private memory: the child has its own copy */
}

const struct impl impl_hash = {
	.name = "hash",
	.role = "ceiling",
	.open = h_open,
	.close = h_close,
	.reset = h_reset,
	.get = h_get,
	.set = h_set,
	.del = h_del,
	.load = h_load,
	.fill = h_fill,
	.fork_child = h_fork_child,
};
