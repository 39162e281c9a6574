/*
 * L1: a chained hash table over S3-FIFO's two queues and ghost (l1.h), in
 * private memory.
 */
#include <stdlib.h>

#include "l1.h"
#include "pause.h"

#define ADAPT_SPAN 64	/* ghost_take() */

int
mlc__l1_init(struct mlc__l1 *l1, uint32_t max, uint64_t max_bytes)
{
	uint32_t n = 16, g = 16;

	while (n < max + max / 2 && n < (UINT32_C(1) << 30))
		n <<= 1;
	while (g < max && g < (UINT32_C(1) << 30))
		g <<= 1;
	memset(l1, 0, sizeof(*l1));
	l1->slots = calloc(n, sizeof(*l1->slots));
	l1->ghost = calloc(g, sizeof(*l1->ghost));
	if (l1->slots == NULL || l1->ghost == NULL) {
		free(l1->slots);
		free(l1->ghost);
		return -ENOMEM;
	}
	l1->mask = n - 1;
	l1->gmask = g - 1;
	l1->max = max;
	l1->max_bytes = max_bytes;
	l1->small_max = max / 10 > 0 ? max / 10 : 1;
	l1->small.prev = l1->small.next = &l1->small;
	l1->main.prev = l1->main.next = &l1->main;
	return 0;
}

void
mlc__l1_fini(struct mlc__l1 *l1)
{
	mlc__l1_clear(l1);
	free(l1->slots);
	free(l1->ghost);
	l1->slots = NULL;
	l1->ghost = NULL;
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
lru_push(struct mlc__lru *q, struct mlc__ent *e)
{
	e->lru.next = q->next;
	e->lru.prev = q;
	q->next->prev = &e->lru;
	q->next = &e->lru;
}

static struct mlc__ent *
lru_ent(struct mlc__lru *l)
{
	return container_of(l, struct mlc__ent, lru);
}

/* The ghost's word for a key of @p hash leaving queue @p main now. */
static uint64_t
ghost_word(const struct mlc__l1 *l1, uint64_t hash, bool main)
{
	return (((hash >> 32) & ~UINT64_C(3)) | 2 | main) << 32 |
	       l1->gone[main];
}

static void
ghost_add(struct mlc__l1 *l1, uint64_t hash, bool main)
{
	l1->ghost[hash & l1->gmask] = ghost_word(l1, hash, main);
	l1->gone[main]++;
}

/* Move the small queue's share by @p dir steps of 1/256 of the entries,
 * within 1% and 90% of them (as the L2's probation target moves). */
static void
small_adapt(struct mlc__l1 *l1, int dir)
{
	uint32_t step = l1->max / 256 > 0 ? l1->max / 256 : 1;
	uint32_t lo = l1->max / 100 > 0 ? l1->max / 100 : 1;
	uint32_t hi = l1->max - l1->max / 10;

	if (dir > 0)
		l1->small_max = l1->small_max + step < hi ?
				l1->small_max + step : hi;
	else
		l1->small_max = l1->small_max > lo + step ?
				l1->small_max - step : lo;
}

/* Did the key of @p hash leave L1 within the last max evictions from
 * the queue it left?  Then it enters main.  If it left very lately
 * (within a 64th of that), the queue should have kept it: the small
 * queue's share grows if it left small, shrinks if it left main, as ARC
 * adapts (a workload whose popular keys keep changing wants a long small
 * queue, nearly an LRU; a skewed one, a short one).  Both queues are
 * judged over as many of their own evictions.  (A 20th, the L2's span,
 * grew the small queue too far on Zipf traces here: 1.2 points behind
 * S3-FIFO's fixed tenth; spans of a 40th to an 80th keep every trace of
 * bench/hitratio --l1 within 0.6 of the best reference.)  It leaves the
 * ghost either way. */
static bool
ghost_take(struct mlc__l1 *l1, uint64_t hash)
{
	uint64_t *g = &l1->ghost[hash & l1->gmask];
	uint64_t w = *g;
	uint32_t age;

	if (w == 0 || (w >> 32 | 3) != ((hash >> 32) | 3))
		return false;
	*g = 0;
	age = l1->gone[(w >> 32) & 1] - (uint32_t)w;
	if (age > l1->max)
		return false;
	if (age <= l1->max / ADAPT_SPAN)
		small_adapt(l1, (w >> 32) & 1 ? -1 : 1);
	return true;
}

static bool
small_over(const struct mlc__l1 *l1)
{
	/* The same share of lru_bytes (in double: no overflow, and no share
	 * of 0 when lru_bytes is smaller than lru_size). */
	return l1->nsmall >= l1->small_max ||
	       (l1->max_bytes && (double)l1->small_bytes * l1->max >=
		(double)l1->max_bytes * l1->small_max);
}

static void
queue_remove(struct mlc__l1 *l1, struct mlc__ent *e)
{
	lru_remove(e);
	if (!e->main) {
		l1->nsmall--;
		l1->small_bytes -= e->vlen;
	}
}

void
mlc__l1_unlink(struct mlc__l1 *l1, struct mlc__ent *e)
{
	struct mlc__ent **pp = &l1->slots[e->hash & l1->mask];

	if (!e->linked)
		return;
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	MLC_PAUSE(L1_UNLINKING);
	queue_remove(l1, e);
	e->linked = 0;
	l1->count--;
	l1->bytes -= e->vlen;
	mlc__ent_put(e);
}

/* Evict one entry (l1.h): the small queue's oldest while small holds its
 * share or main is empty, else main's.  Entries passed over go to main's
 * head; every pass lowers a count, so this ends within
 * MLC__L1_FREQ_MAX + 1 laps of main, amortized O(1) per insertion. */
static void
evict_one(struct mlc__l1 *l1)
{
	for (;;) {
		struct mlc__ent *e;

		if (l1->nsmall > 0 &&
		    (small_over(l1) || l1->nsmall == l1->count)) {
			e = lru_ent(l1->small.prev);
			if (e->freq > 1) {
				queue_remove(l1, e);
				e->main = 1;
				e->freq = 0;
				lru_push(&l1->main, e);
				continue;
			}
			ghost_add(l1, e->hash, false);
		} else {
			e = lru_ent(l1->main.prev);
			if (e->freq > 0) {
				e->freq--;
				lru_remove(e);
				lru_push(&l1->main, e);
				continue;
			}
			ghost_add(l1, e->hash, true);
		}
		mlc__l1_unlink(l1, e);
		return;
	}
}

uint32_t
mlc__l1_insert(struct mlc__l1 *l1, struct mlc__ent *e)
{
	struct mlc__ent *old = mlc__l1_find(l1, e->hash, e->data, e->klen);
	uint32_t evicted = 0;

	/* A key written again keeps its place: main if it was there. */
	bool main = old != NULL && old->main;

	if (old != NULL)
		mlc__l1_unlink(l1, old);
	if (l1->max_bytes && e->vlen > l1->max_bytes) {
		mlc__ent_put(e);	/* never fits: not cached in L1 */
		return 0;
	}
	/* The ghost first: the evictions below write into it, and one of
	 * them could take this key's word (it is direct-mapped): two keys
	 * sharing a word would then push each other through the small queue
	 * for ever. */
	if (!main)
		main = ghost_take(l1, e->hash);
	while (l1->count > 0 && (l1->count >= l1->max ||
	       (l1->max_bytes && l1->bytes + e->vlen > l1->max_bytes))) {
		evict_one(l1);
		evicted++;
	}
	e->chain = l1->slots[e->hash & l1->mask];
	l1->slots[e->hash & l1->mask] = e;
	MLC_PAUSE(L1_LINKING);
	e->freq = 0;
	e->main = main;
	if (main) {
		lru_push(&l1->main, e);
	} else {
		lru_push(&l1->small, e);
		l1->nsmall++;
		l1->small_bytes += e->vlen;
	}
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

/* Empty L1 in a child after fork() through its hash chains alone, not
 * through its queues as mlc__l1_clear() does: another thread of the
 * parent may have been inside mlc__l1_insert() or mlc__l1_unlink() on this
 * L1 when the child was made, and the copy's chains and queues may
 * disagree, while each chain is whole at every step (one store links or
 * unlinks an entry).  Through the queues, an entry in its hash chain and
 * in no queue, never marked linked, stayed: every lookup found it and no
 * record could drop it, and the child served a value changed elsewhere
 * for its whole TTL (test-log test_fork_while_inserting); and one queued
 * and in no chain made the clear walk off the chain's end, in the first
 * call or in the close (test_fork_while_unlinking).  Such a one is
 * left as it is (its reference is lost: memory, once).  A value the caller
 * held across fork() keeps its own reference, and stays valid. */
void
mlc__l1_forget(struct mlc__l1 *l1)
{
	for (uint32_t i = 0; i <= l1->mask; i++) {
		struct mlc__ent *e = l1->slots[i], *next;

		for (; e != NULL; e = next) {
			next = e->chain;
			e->linked = 0;
			mlc__ent_put(e);
		}
		l1->slots[i] = NULL;
	}
	l1->small.prev = l1->small.next = &l1->small;
	l1->main.prev = l1->main.next = &l1->main;
	l1->count = 0;
	l1->nsmall = 0;
	l1->bytes = 0;
	l1->small_bytes = 0;
}

uint32_t
mlc__l1_clear(struct mlc__l1 *l1)
{
	struct mlc__lru *q[2] = { &l1->small, &l1->main };
	uint32_t n = 0;

	for (int i = 0; i < 2; i++)
		for (; q[i]->next != q[i]; n++)
			mlc__l1_unlink(l1, lru_ent(q[i]->next));
	return n;
}
