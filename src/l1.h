/*
 * L1: a private LRU of one cache handle.  One thread at a time (the
 * handle's), so nothing here is atomic.  Entries are reference-counted: the
 * table holds one reference while an entry is linked, each value handed to
 * the caller holds one more, so eviction never frees bytes a caller holds.
 */
#ifndef MLC_L1_H
#define MLC_L1_H

#include "mlc-int.h"

struct mlc__lru {
	struct mlc__lru *prev, *next;	/* most recent first */
};

struct mlc__ent {
	struct mlc__lru lru;		/* first: the list links entries */
	struct mlc__ent *chain;		/* hash chain */
	uint64_t hash;
	uint64_t expire;		/* ms; 0: never */
	uint64_t version;		/* L2 version it was read at */
	void *obj;			/* the codec's object */
	mlc_free_fn *free_fn;		/* and how to free it */
	void *free_arg;
	uint64_t tick;			/* l1->tick when last moved */
	uint32_t refs;
	uint32_t klen;
	uint32_t vlen;
	uint16_t flags;			/* enum mlc_value_flags */
	uint8_t linked;
	uint8_t pending;		/* in l1->pend: a move to the front */
	char data[];			/* key, then value */
};

#define MLC__L1_PEND 8

struct mlc__l1 {
	struct mlc__ent **slots;
	uint32_t mask;
	uint32_t count, max;
	uint64_t bytes, max_bytes;
	uint64_t tick;			/* counts moves to the front */
	struct mlc__lru head;		/* LRU sentinel */
	/* Moves to the front not made yet (mlc__l1_touch): made before the
	 * list is next looked at or changed, so its order is what it would
	 * have been. */
	uint32_t npend;
	struct mlc__ent *pend[MLC__L1_PEND];
};

int mlc__l1_init(struct mlc__l1 *l1, uint32_t max, uint64_t max_bytes);
void mlc__l1_fini(struct mlc__l1 *l1);
struct mlc__ent *mlc__l1_find(struct mlc__l1 *l1, uint64_t hash,
			      const void *key, uint32_t klen);
/* Link @p e, replacing any entry of its key, with the caller's reference
 * (which it takes either way: an entry larger than the byte bound is put,
 * not linked); returns the number of entries evicted for room. */
uint32_t mlc__l1_insert(struct mlc__l1 *l1, struct mlc__ent *e);
void mlc__l1_unlink(struct mlc__l1 *l1, struct mlc__ent *e);
/* Drop entries with this hash read before L2 version @p version. */
uint32_t mlc__l1_drop_older(struct mlc__l1 *l1, uint64_t hash,
			    uint64_t version);
uint32_t mlc__l1_clear(struct mlc__l1 *l1);
void mlc__l1_touch(struct mlc__l1 *l1, struct mlc__ent *e);

struct mlc__ent *mlc__ent_new(uint64_t hash, const void *key, uint32_t klen,
			      uint32_t vlen);
void mlc__ent_free(struct mlc__ent *e);

/* Drop one reference; the last one frees the entry. */
static inline void
mlc__ent_put(struct mlc__ent *e)
{
	if (--e->refs == 0)
		mlc__ent_free(e);
}

static inline const char *
mlc__ent_value(const struct mlc__ent *e)
{
	return e->data + e->klen;
}

#endif /* MLC_L1_H */
