/*
 * L1: a chained hash table over an intrusive LRU list, in private memory.
 */
#include <stdlib.h>

#include "l1.h"

int
mlc__l1_init(struct mlc__l1 *l1, uint32_t max, uint64_t max_bytes)
{
	uint32_t n = 16;

	while (n < max + max / 2 && n < (UINT32_C(1) << 30))
		n <<= 1;
	memset(l1, 0, sizeof(*l1));
	l1->slots = calloc(n, sizeof(*l1->slots));
	if (l1->slots == NULL)
		return -ENOMEM;
	l1->mask = n - 1;
	l1->max = max;
	l1->max_bytes = max_bytes;
	l1->head.prev = l1->head.next = &l1->head;
	return 0;
}

void
mlc__l1_fini(struct mlc__l1 *l1)
{
	mlc__l1_clear(l1);
	free(l1->slots);
	l1->slots = NULL;
}

struct mlc__ent *
mlc__ent_new(uint64_t hash, const void *key, uint32_t klen, uint32_t vlen)
{
	struct mlc__ent *e = malloc(sizeof(*e) + (size_t)klen + vlen);

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->klen = klen;
	e->vlen = vlen;
	e->refs = 1;
	if (klen)
		memcpy(e->data, key, klen);
	return e;
}

void
mlc__ent_free(struct mlc__ent *e)
{
	if (e->obj != NULL && e->free_fn != NULL)
		e->free_fn(e->free_arg, e->obj);
	free(e);
}

/* Equal keys, without a libc call for the short keys most caches use. */
static inline bool
key_eq(const char *a, const char *b, uint32_t len)
{
	uint64_t x, y;

	if (len > 16 || len < 8)
		return memcmp(a, b, len) == 0;
	/* Two overlapping 8-byte words cover 8..16 bytes. */
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	if (x != y)
		return false;
	memcpy(&x, a + len - 8, 8);
	memcpy(&y, b + len - 8, 8);
	return x == y;
}

struct mlc__ent *
mlc__l1_find(struct mlc__l1 *l1, uint64_t hash, const void *key,
	     uint32_t klen)
{
	struct mlc__ent *e = l1->slots[hash & l1->mask];

	for (; e != NULL; e = e->chain)
		if (e->hash == hash && e->klen == klen &&
		    key_eq(e->data, key, klen))
			return e;
	return NULL;
}

static void
lru_remove(struct mlc__ent *e)
{
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
}

static void
lru_front(struct mlc__l1 *l1, struct mlc__ent *e)
{
	e->lru.next = l1->head.next;
	e->lru.prev = &l1->head;
	l1->head.next->prev = &e->lru;
	l1->head.next = &e->lru;
}

static struct mlc__ent *
lru_ent(struct mlc__lru *l)
{
	return container_of(l, struct mlc__ent, lru);
}

/* Make the moves to the front that mlc__l1_touch() put off, in the order
 * of the reads that asked for them. */
static void
pend_flush(struct mlc__l1 *l1)
{
	for (uint32_t i = 0; i < l1->npend; i++) {
		struct mlc__ent *e = l1->pend[i];

		e->pending = 0;
		lru_remove(e);
		lru_front(l1, e);
	}
	l1->npend = 0;
}

/* Move a hit to the front, but only if it has drifted back a quarter of
 * the list since it was last moved (CacheLib's idea): a hot set smaller
 * than the LRU then costs no pointer writes at all.
 *
 * The move itself waits until MLC__L1_PEND of them are due, or until the
 * list is next looked at or changed: unlinking an entry from a long list
 * writes into its two neighbours, two cache misses on a large L1, which
 * the prefetches here overlap with the reads in between instead of
 * stalling this one. */
void
mlc__l1_touch(struct mlc__l1 *l1, struct mlc__ent *e)
{
	if (l1->tick - e->tick <= l1->max / 4)
		return;
	e->tick = ++l1->tick;
	if (e->pending)
		return;
	__builtin_prefetch(e->lru.prev, 1);
	__builtin_prefetch(e->lru.next, 1);
	e->pending = 1;
	l1->pend[l1->npend++] = e;
	if (l1->npend == MLC__L1_PEND)
		pend_flush(l1);
}

void
mlc__l1_unlink(struct mlc__l1 *l1, struct mlc__ent *e)
{
	struct mlc__ent **pp = &l1->slots[e->hash & l1->mask];

	if (!e->linked)
		return;
	if (l1->npend)
		pend_flush(l1);		/* pend[] holds no entry it frees */
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	lru_remove(e);
	e->linked = 0;
	l1->count--;
	l1->bytes -= e->vlen;
	mlc__ent_put(e);
}

uint32_t
mlc__l1_insert(struct mlc__l1 *l1, struct mlc__ent *e)
{
	struct mlc__ent *old = mlc__l1_find(l1, e->hash, e->data, e->klen);
	uint32_t evicted = 0;

	if (l1->npend)
		pend_flush(l1);		/* the tail is the true tail */
	if (old != NULL)
		mlc__l1_unlink(l1, old);
	if (l1->max_bytes && e->vlen > l1->max_bytes) {
		mlc__ent_put(e);	/* never fits: not cached in L1 */
		return 0;
	}
	while (l1->count > 0 && (l1->count >= l1->max ||
	       (l1->max_bytes && l1->bytes + e->vlen > l1->max_bytes))) {
		mlc__l1_unlink(l1, lru_ent(l1->head.prev));
		evicted++;
	}
	e->chain = l1->slots[e->hash & l1->mask];
	l1->slots[e->hash & l1->mask] = e;
	e->tick = ++l1->tick;
	lru_front(l1, e);
	e->linked = 1;
	l1->count++;
	l1->bytes += e->vlen;
	return evicted;
}

uint32_t
mlc__l1_drop_older(struct mlc__l1 *l1, uint64_t hash, uint64_t version)
{
	struct mlc__ent *e = l1->slots[hash & l1->mask], *next;
	uint32_t n = 0;

	for (; e != NULL; e = next) {
		next = e->chain;
		if (e->hash == hash && e->version < version) {
			mlc__l1_unlink(l1, e);
			n++;
		}
	}
	return n;
}

uint32_t
mlc__l1_clear(struct mlc__l1 *l1)
{
	uint32_t n = 0;

	while (l1->head.next != &l1->head) {
		mlc__l1_unlink(l1, lru_ent(l1->head.next));
		n++;
	}
	return n;
}
