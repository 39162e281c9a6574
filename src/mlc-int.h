/*
 * Private declarations shared by the library's source files.
 */
#ifndef MLC_INT_H
#define MLC_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "mlc.h"
#include "arena.h"

#define MLC_EXPORT __attribute__((visibility("default")))
#define MLC_COLD __attribute__((cold))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define container_of(p, type, m) \
	((type *)(void *)((char *)(p) - offsetof(type, m)))
#define MLC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MLC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* An attached arena, as this process sees it.  Everything here is derived
 * from the validated header at attach and never changes afterwards, so any
 * thread may read it without locks. */
struct mlc_arena {
	char *base;
	size_t size;
	int fd;			/* -1 for an anonymous arena */
	uint32_t flags;		/* enum mlc_arena_flags used to open */
	uint32_t refs;		/* the handle + one per open cache */
	struct mlc__hdr *hdr;
	struct mlc__lock *stripes;
	struct mlc__bucket *table;
	struct mlc__class *classes;
	struct mlc__ghost *ghost;
	struct mlc__page *pages;
	struct mlc__ns *ns;
	struct mlc__ns_stats *nsstats;
	struct mlc__log *log;
	struct mlc__log_cell *cells;
	struct mlc__log_claim *claims;	/* per cell: who claimed it, when */
	struct mlc__flight_slot *flights;
	uint64_t pages_off;	/* offset of page 0 */
	uint64_t pages_end;	/* offset just past the last page */
	uint64_t seed;
	uint32_t bucket_mask;
	uint32_t ghost_mask;	/* ghost lines - 1 */
	uint32_t stripe_mask;
	uint32_t log_cells;	/* sizes of the shared tables, as validated */
	uint32_t flight_slots;	/* at attach: never re-read from the arena */
	uint32_t page_size;
	uint32_t page_shift;
	uint32_t npages;
	uint32_t nclasses;
	uint32_t max_ns;
	uint32_t neg_quota;
	uint32_t class_size[MLC__NCLASSES_MAX];
	mlc_event_fn *event_fn;	/* this process's transport hook */
	void *event_arg;
	uint64_t procs_gen;	/* the fork generation in which this handle
				 * is counted in its process's entry of the
				 * attached processes; UINT64_MAX: none.
				 * Changed under ah_procs_lock (procs.c) */
	uint64_t procs_slot;	/* procs_gen << 8 | that entry's index + 1,
				 * 0: none; stored atomically under the lock,
				 * read lock-free by flight claims */
	uint64_t uncounted_gen;	/* 1 + the fork generation in which a cache
				 * handle of this arena could not be counted
				 * (0: none); read lock-free by flight
				 * claims, which then use the unlisted
				 * counter (procs.c) */
	bool closed;		/* mlc_arena_close() called: only cache
				 * handles keep it (counted as such in a
				 * fork child, not as an arena handle) */
	uint64_t huge_bytes;	/* mlc_arena_info()'s huge_bytes ... */
	uint64_t huge_at;	/* ... measured then (ms; 0: never) */
};

/* The page of an offset inside the pages, and the offset's place in it. */
static inline uint32_t
mlc__off_page(const struct mlc_arena *a, uint64_t off)
{
	return (uint32_t)((off - a->pages_off) >> a->page_shift);
}

static inline uint32_t
mlc__off_in_page(const struct mlc_arena *a, uint64_t off)
{
	return (uint32_t)((off - a->pages_off) & (a->page_size - 1));
}

/* A shared count (items, negative items) as a number of entries: a
 * writer killed between its slot change and its count leaves it one off
 * for good, and one below 0 is 0, not 2^64 - 1. */
static inline uint64_t
mlc__live_count(uint64_t n)
{
	return (int64_t)n < 0 ? 0 : n;
}

/* Chunk @p idx (from 0) of the @p size-byte chunks of page @p page. */
static inline struct mlc__item *
mlc__chunk_item(const struct mlc_arena *a, uint32_t page, uint32_t size,
		uint32_t idx)
{
	return (struct mlc__item *)(void *)(a->base + a->pages_off +
		((uint64_t)page << a->page_shift) + (uint64_t)idx * size);
}

/* The chunk size of the class that owns the page of offset @p off (inside
 * the pages), 0 if none.  pg_class is read racily: without the class lock
 * the answer only sizes what the caller validates afterwards (a prefetch,
 * a reader's copy checked by its bucket version or identity). */
static inline uint32_t
mlc__page_chunk(const struct mlc_arena *a, uint64_t off)
{
	uint32_t cls = ck_pr_load_32(
		(uint32_t *)&a->pages[mlc__off_page(a, off)].pg_class);

	return cls == 0 || cls > a->nclasses ? 0 : a->class_size[cls - 1];
}

/* Is @p off the start of a whole chunk of class @p ci (0-based, chunks of
 * @p size bytes) on a page that class owns?  An offset read from shared
 * memory (a chained head's table, a piece's back reference) goes through
 * here before it is followed.  Stable under that class's lock; without
 * it, only as good as the validation that follows. */
static inline bool
mlc__chunk_start(const struct mlc_arena *a, uint64_t off, uint32_t ci,
		 uint32_t size)
{
	uint32_t in_page;

	if (off < a->pages_off || off >= a->pages_end)
		return false;
	in_page = mlc__off_in_page(a, off);
	return ck_pr_load_32(
		       (uint32_t *)&a->pages[mlc__off_page(a, off)].pg_class) ==
		       ci + 1 &&
	       in_page % size == 0 && in_page + size <= a->page_size;
}

/* A key as the index sees it: namespace, bytes, and their hash. */
struct mlc__key {
	const void *data;
	uint32_t len;
	uint32_t ns;
	uint32_t nsgen;		/* the namespace's generation, read once */
	uint64_t hash;
};

/* Where a read lands: the sink returns memory for len value bytes (called
 * inside the read window, maybe more than once if the read retries). */
typedef void *mlc__sink_fn(void *ctx, size_t len);

/* What an L2 read found besides the bytes. */
struct mlc__hit {
	uint64_t version;
	uint64_t expire;	/* ms; 0: never */
	uint32_t flags;		/* enum mlc__item_flags */
	uint32_t len;
	void *data;		/* what the sink returned */
};

/* What a write stores. */
struct mlc__put {
	const void *data;
	uint32_t len;
	uint32_t flags;		/* enum mlc__item_flags */
	uint64_t expire;	/* ms; 0: never */
	uint64_t version;	/* set by mlc__table_put */
	uint64_t if_before;	/* if non-zero: store only if the key was
				 * not set or deleted at a version above
				 * this (a loader's fence); MLC_ESTALE */
	uint32_t cas;		/* enum mlc__cas: store only if the key is
				 * still as read (mlc_modify); MLC_ESTALE */
	uint64_t cas_version;	/* with MLC__CAS_VERSION */
	const uint64_t *own_word; /* if not NULL: store only if this word
				 * (a flight's, in the arena) is still
				 * own_expect once the version is taken;
				 * MLC_ESTALE */
	uint64_t own_expect;
	uint64_t log_seq;	/* the log cell claimed for this change (0:
				 * none): marked CHANGING right before it,
				 * and perhaps replaced (mlc__log_changing()) */
};

enum mlc__cas {
	MLC__CAS_NONE = 0,
	MLC__CAS_ABSENT = 1,	/* the key must not be in the index */
	MLC__CAS_VERSION = 2,	/* its item must have cas_version */
};

/* clock.c */
uint64_t mlc__now_ms(void);
void mlc__clock_advance(int64_t ms);	/* tests: shift this process's clock */
/* A number that changes in a child after fork(): handles remember the one
 * they were opened under, so use in a child is one load to detect (getpid()
 * is a system call in current glibc).  Inline: every call checks it. */
extern uint64_t mlc__fork_generation;
static inline uint64_t
mlc__fork_gen(void)
{
	return __atomic_load_n(&mlc__fork_generation, __ATOMIC_RELAXED);
}
pid_t mlc__pid(void);		/* getpid() without a system call */
pid_t mlc__tid(void);		/* gettid() once per thread (and fork) */

/* proc.c */
uint64_t mlc__proc_start(void);	/* this process's start time (ticks) */
uint64_t mlc__proc_stamp_start(void);	/* the same, for chunk stamps */
uint32_t mlc__proc_ns(void);	/* its pid namespace; 0: unknown */
bool mlc__proc_dead(uint32_t pid, uint64_t start, uint32_t ns);
/* May mlc__proc_dead() ever answer true for this stamp (this process can
 * judge it: same pid namespace, start times known)? */
bool mlc__proc_judgeable(uint32_t pid, uint64_t start, uint32_t ns);

/* arena.c */
int mlc__lock_take(struct mlc_arena *a, struct mlc__lock *lk,
		   void (*repair)(struct mlc_arena *, void *), void *ctx);
int mlc__lock_try(struct mlc_arena *a, struct mlc__lock *lk,
		  void (*repair)(struct mlc_arena *, void *), void *ctx);
int mlc__lock_take_for(struct mlc_arena *a, struct mlc__lock *lk,
		       uint32_t ms,
		       void (*repair)(struct mlc_arena *, void *), void *ctx);
int mlc__lock_take_bounded(struct mlc_arena *a, struct mlc__lock *lk,
			   uint32_t ms,
			   void (*repair)(struct mlc_arena *, void *),
			   void *ctx);
void mlc__lock_give(struct mlc__lock *lk);
int mlc__lock_init(struct mlc__lock *lk);
void mlc__arena_ref(struct mlc_arena *a);
void mlc__arena_unref(struct mlc_arena *a);
int mlc__ns_open(struct mlc_arena *a, const char *name, uint32_t *idx);
int mlc__ns_find(struct mlc_arena *a, const char *name, uint32_t *idx);
/* Namespace 0 is mlc's own (single-flight outcome records). */
#define MLC__NS_INTERNAL 0

/* procs.c: the attached processes.  Counting a cache handle counts its
 * arena handle first, in a child after fork() too; *cache_gen records
 * the fork generation a cache handle is counted in (UINT64_MAX: not
 * counted: read-only, or the table was full). */
void mlc__procs_open(struct mlc_arena *a, uint64_t *cache_gen);
void mlc__procs_close(struct mlc_arena *a, uint64_t *cache_gen);
void mlc__procs_count(struct mlc_arena *a, struct mlc_arena_info *in);
/* The counter of flight claims in their window that this process keeps:
 * its entry's, or the shared one of processes without an entry. */
uint32_t *mlc__procs_claiming_word(struct mlc_arena *a);
/* May a live process be between a flight claim's CAS and its publication?
 * True unless every counter that is not 0 belongs to a process proven
 * dead (procs.c). */
bool mlc__procs_claiming(struct mlc_arena *a);
bool mlc__arena_whole(const struct mlc_arena *a);

/* vm.c: hints to the kernel about an arena mapping. */
void mlc__vm_advise(void *base, size_t len);
void mlc__arena_populate(struct mlc_arena *a, uint64_t off, size_t len);
uint64_t mlc__vm_huge_bytes(const void *base, size_t len);

/* table.c */
void mlc__key_hash(const struct mlc_arena *a, struct mlc__key *k);
int mlc__table_get(struct mlc_arena *a, const struct mlc__key *k,
		   mlc__sink_fn *sink, void *ctx, struct mlc__hit *hit);
int mlc__table_put(struct mlc_arena *a, const struct mlc__key *k,
		   struct mlc__put *put);
int mlc__table_del(struct mlc_arena *a, const struct mlc__key *k,
		   uint64_t *seq, uint64_t *version);
int mlc__table_del_if(struct mlc_arena *a, const struct mlc__key *k,
		      uint64_t expect, uint64_t *seq, uint64_t *version);
int mlc__table_settle(struct mlc_arena *a, const struct mlc__key *k);
int mlc__table_changed_since(struct mlc_arena *a, const struct mlc__key *k,
			     uint64_t fence, uint64_t now);
void mlc__ns_word_add(struct mlc_arena *a, uint32_t ns, uint64_t *w,
		      unsigned shift, uint32_t gen, uint64_t n, bool add);
void mlc__table_prefetch(const struct mlc_arena *a, uint64_t hash);
void mlc__table_prefetch_put(const struct mlc_arena *a, uint64_t hash);
void mlc__table_prefetch_ghost(const struct mlc_arena *a, uint64_t hash);
void mlc__table_prefetch_items(const struct mlc_arena *a, uint64_t hash);
void mlc__table_key_buckets(const struct mlc_arena *a, uint64_t hash,
			    uint32_t b[2], uint16_t *tag);
void mlc__table_key_stripes(const struct mlc_arena *a, uint64_t hash,
			    uint32_t s[2]);
int mlc__table_chunk_orphan(struct mlc_arena *a, uint64_t off,
			    uint64_t hash);
bool mlc__table_unlink_chunk(struct mlc_arena *a, uint64_t off,
			     uint64_t hash, bool *orphan);
bool mlc__table_ref_take(struct mlc_arena *a, uint64_t off, uint64_t hash);
bool mlc__table_slot_fits(const struct mlc_arena *a, uint64_t hash,
			  uint32_t b, uint16_t tag);
uint64_t mlc__item_hash(const struct mlc_arena *a, uint64_t off);
int mlc__options_copy(void *dst, size_t dst_size, size_t v0, const void *src);
void mlc__out_copy(void *dst, const void *src, size_t src_size);
/* The sizes of the options structs in mlc 0.1, their first release: the
 * smallest a caller may pass.  Never change these. */
#define MLC__ARENA_OPTIONS_V0 \
	(offsetof(struct mlc_arena_options, neg_quota_pct) + sizeof(uint32_t))
#define MLC__CACHE_OPTIONS_V0 \
	(offsetof(struct mlc_cache_options, codec) + sizeof(void *))
#define MLC__CALL_OPTIONS_V0 \
	(offsetof(struct mlc_call_options, pad0) + sizeof(uint32_t))
void mlc__stripe_repair(struct mlc_arena *a, void *ctx);
struct mlc__item *mlc__item_at(const struct mlc_arena *a, uint64_t off,
			       uint32_t *room);

/* alloc.c */
int mlc__class_for(const struct mlc_arena *a, size_t bytes);
int mlc__alloc(struct mlc_arena *a, uint32_t cls, uint64_t hash, bool known,
	       bool keep, uint64_t *off, uint64_t *gen);
int mlc__alloc_move(struct mlc_arena *a, uint32_t cls, uint64_t hash,
		    bool known, uint64_t *off, uint64_t *gen);
int mlc__alloc_chain(struct mlc_arena *a, uint32_t cls, uint32_t klen,
		     uint32_t vlen, uint64_t hash, bool known, bool keep,
		     uint64_t *off, uint64_t *gen);
void mlc__free(struct mlc_arena *a, uint64_t off, uint32_t state,
	       uint64_t gen);
void mlc__alloc_heal(struct mlc_arena *a, bool locks);
bool mlc__item_reclaimable(const struct mlc_arena *a,
			   const struct mlc__item *it, uint32_t state,
			   uint64_t now);
/* Relaxed byte copy out of (or into) memory another process may be
 * rewriting.  Validation by the bucket version decides whether the bytes
 * are used, so the race is benign; this is the one place it happens. */
void mlc__copy_racy(void *dst, const void *src, size_t len);
int mlc__compare_racy(const void *shm, const void *key, size_t len);

#endif /* MLC_INT_H */
