/*
 * L1: a private cache of one cache handle, evicting as S3-FIFO does
 * (below).  One thread at a time (the
 * handle's), so nothing here is atomic.  Entries are reference-counted: the
 * table holds one reference while an entry is linked, each value handed to
 * the caller holds one more, so eviction never frees bytes a caller holds.
 */
#ifndef MLC_L1_H
#define MLC_L1_H

#include "mlc-int.h"

struct mlc__lru {
	struct mlc__lru *prev, *next;	/* newest first */
};

struct mlc__ent {
	struct mlc__lru lru;		/* first: the queues link entries */
	struct mlc__ent *chain;		/* hash chain */
	uint64_t hash;
	uint64_t expire;		/* ms; 0: never */
	uint64_t version;		/* L2 version it was read at */
	void *obj;			/* the codec's object */
	mlc_free_fn *free_fn;		/* and how to free it */
	void *free_arg;
	uint32_t refs;
	uint32_t klen;
	uint32_t vlen;
	uint16_t flags;			/* enum mlc_value_flags */
	uint8_t linked;
	uint8_t freq;			/* hits since it was last passed, 0 to
					 * MLC__L1_FREQ_MAX */
	uint8_t main;			/* in the main queue, not the small one */
	char data[];			/* key, then value */
};

/*
 * The eviction is S3-FIFO's (Yang et al., SOSP 2023), as the L2's is per
 * size class: a small FIFO queue (a tenth of the entries at first) that
 * new keys enter, a main FIFO queue, and a ghost of the keys that left
 * lately.  A hit only counts (freq, at most 3): it moves nothing.  The
 * small queue's oldest entry goes to main if it was hit twice or more,
 * else out; main's oldest goes round again with one count less while it
 * has any, else out.  A key the ghost remembers enters main, and one back
 * very soon moves the small queue's share towards the queue that should
 * have kept it (l1.c: ghost_take()).  So one-time keys (a scan, a long
 * tail) leave through the small queue without pushing out what is read
 * again and again.
 */
struct mlc__l1 {
	struct mlc__ent **slots;
	uint32_t mask;
	uint32_t count, max;
	uint64_t bytes, max_bytes;
	struct mlc__lru small, main;	/* queue sentinels */
	uint32_t nsmall, small_max;	/* entries in small, its share */
	uint64_t small_bytes;
	/* The ghost: direct-mapped, one word per key: the high half of its
	 * hash with bit 1 set (no word is 0) and bit 0 the queue it left
	 * (1: main), << 32 | that queue's gone[] when it left (l1.c:
	 * ghost_take()). */
	uint64_t *ghost;
	uint32_t gmask;
	uint32_t gone[2];		/* evictions from small, main; wrapping */
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
/* Empty, in a child after fork(): through the hash chains alone, which a
 * parent thread inside an insert or unlink left whole. */
void mlc__l1_forget(struct mlc__l1 *l1);

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

#define MLC__L1_FREQ_MAX 3

/* A hit: count it (S3-FIFO moves nothing on a hit). */
static inline void
mlc__l1_touch(struct mlc__ent *e)
{
	if (e->freq < MLC__L1_FREQ_MAX)
		e->freq++;
}

static inline const char *
mlc__ent_value(const struct mlc__ent *e)
{
	return e->data + e->klen;
}

#endif /* MLC_L1_H */
