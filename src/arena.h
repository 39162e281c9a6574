/*
 * The arena's layout: everything another process can see.  The layout is an
 * ABI: fixed-width types only, offsets from the arena base instead of
 * pointers, and MLC_ARENA_FORMAT bumped on any change.  Members carry a
 * per-struct prefix so that `grep -n it_state` lists every place that
 * touches a shared field.
 *
 *   offset 0        struct mlc__hdr (header, counters, pool lock, and
 *                   the table of attached processes: up to 8192 bytes)
 *   stripes_off     nstripes x struct mlc__lock    (index writer locks)
 *   table_off       nbuckets x struct mlc__bucket  (the index)
 *   ghost_off       nbuckets / 2 x struct mlc__ghost (evicted keys)
 *   classes_off     nclasses x struct mlc__class   (size classes)
 *   pagedesc_off    npages   x struct mlc__page    (page descriptors)
 *   ns_off          max_ns   x struct mlc__ns      (namespaces)
 *   nsstats_off     max_ns   x struct mlc__ns_stats (their counters)
 *   log_off         struct mlc__log + cells + a stamp per cell (the log)
 *   flight_off      flight_slots x struct mlc__flight_slot
 *   pages_off       npages x page_size             (items)
 */
#ifndef MLC_ARENA_H
#define MLC_ARENA_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_pr.h>

#define MLC_CACHELINE 64
#define MLC_ARENA_MAGIC UINT32_C(0x31434c4d)	/* "MLC1" in memory (LE) */
#define MLC_ARENA_FORMAT 14			/* bump on any layout change
					 * (14: a log cell marked CHANGING
					 * names its writer; a flight's end
					 * stamped; outcome records of a value
					 * that cannot be shared) */
#define MLC_HASH_XXH3 1

#define MLC__NCLASSES_MAX 128
#define MLC__SLOTS 7			/* slot words per bucket */
#define MLC__HDR_BYTES 8192		/* the header region (format 4: its 128
					 * class sizes pushed the process table
					 * past 4 KiB) */
#define MLC__PROCS 96			/* attached-process entries */

enum mlc__arena_state {
	MLC__CREATING = 0x43524541,	/* "CREA": being initialised */
	MLC__READY    = 0x52454459,	/* "REDY": published */
};

/* A robust process-shared mutex on its own line: a writer that dies holding
 * it hands EOWNERDEAD to the next locker, who repairs what it protected. */
struct mlc__lock {
	alignas(MLC_CACHELINE) pthread_mutex_t lk_mutex;
	uint64_t lk_aux;	/* index stripes: highest version of an entry
				 * deleted or evicted (a loader's fence);
				 * the namespace lock: 1 while a namespace
				 * is being added (arena.c) */
};

/* One index bucket, one cache line.  bk_version is odd while a writer is
 * changing a slot.  A slot word is tag:16 | item offset:48, 0 when empty.
 * bk_refs holds the CLOCK reference bit of each slot's item: readers set
 * it after validating (only when clear), the sweep clears it, a writer
 * clears it when it puts a new item in the slot.  It is the one shared
 * word a reader writes, and it is never anything but bits: a reader that
 * sets the bit of a slot whose item changed meanwhile only gives the new
 * item an undeserved second chance.  (Bits in the item would land in
 * another key's value once its chunk is reused.) */
struct mlc__bucket {
	alignas(MLC_CACHELINE) uint32_t bk_version;
	uint32_t bk_refs;
	uint64_t bk_slot[MLC__SLOTS];
};

#define MLC__SLOT_OFF(w)	((w) & UINT64_C(0xffffffffffff))
#define MLC__SLOT_TAG(w)	((uint16_t)((w) >> 48))

/* An item: the header of an allocator chunk, followed by the key and the
 * value.  32 bytes; with its 8-byte slot word an entry costs 40 bytes plus
 * key and value (before size-class rounding).
 *
 * Identity: the generation (the low 40 bits of it_genlen) is the chunk's,
 * taken from its page's pg_gen (which only grows) each time the chunk is
 * allocated, and never reset, not even when the page is carved again for
 * another class.  The pair (offset, generation) names one allocation: whoever
 * frees, reclaims or links a chunk proves with it, under the class lock that
 * serializes reuse, that the chunk is still the one it owns.  (40 bits wrap
 * after 2^40 allocations in one page: a party stopped across exactly a
 * multiple of that many could be fooled, at ten million allocations a
 * second in that page a pause of 30 hours.)
 *
 * Readers never store into an item: its memory may be reused the moment
 * after they validated.  Their CLOCK reference bits live in the bucket
 * (bk_refs), which is never anything but bits.
 *
 * The key's hash is not kept: whoever needs an item's buckets (the
 * allocator's sweep and eviction, an index move, mlc_arena_check) hashes
 * its key again, which is stable while they hold the item's class lock or
 * stripes.  The slot's tag filters lookups.
 *
 * Bytes 16..31 mean what the state says: a LIVE item's namespace
 * generation, expiry and version; an ALLOC chunk's writer stamp (pid, pid
 * namespace, process start time), which the writer overwrites only after
 * making the chunk LIVE (table.c: put_linked()); a FREE chunk's next free
 * chunk in its page.  Read them through the accessors below. */
struct mlc__item {
	uint32_t it_state;	/* state:8 | flags:8 | freq:2 | small:1 |
				 * spare:13.  freq: the CLOCK sweep's count
				 * (alloc.c), written only by it, under the
				 * class lock, while LIVE; 0 when linked.
				 * small: on probation (alloc.c), set with
				 * ALLOC under the class lock, kept by the
				 * writer when it links, cleared by the
				 * sweep (class lock, LIVE) */
	uint16_t it_klen;
	uint16_t it_ns;		/* namespace index */
	uint64_t it_genlen;	/* generation:40 | value length:24.  The
				 * allocator stores it with length 0, the
				 * writer (the chunk's owner) with its
				 * length: compare generations masked */
	union {
		struct {			/* LIVE */
			uint32_t it_nsgen;	/* namespace generation */
			uint32_t it_exp_lo;	/* expiry, low 32 bits */
			uint64_t it_verexp;	/* version:56 | expiry
						 * high 8 bits */
		};
		struct {			/* ALLOC: who allocated it */
			uint32_t it_pid;
			uint32_t it_pidns;	/* pid namespace; 0: unknown */
			uint64_t it_start;	/* process start time */
		};
		uint32_t it_next;		/* FREE: next free chunk in
						 * the page, index + 1 */
		struct {			/* PIECE: whose */
			uint64_t it_head;	/* its head's offset */
			uint64_t it_hgen;	/* and generation */
		};
	};
	/* key bytes, then value bytes */
};
#define MLC__ITEM_HDR 32
#define MLC__GEN_BITS 40
#define MLC__GEN_MASK ((UINT64_C(1) << MLC__GEN_BITS) - 1)
#define MLC__VLEN_MAX ((UINT32_C(1) << (64 - MLC__GEN_BITS)) - 1)
#define MLC__VER_SHIFT 8		/* it_verexp: version << 8 | expiry >> 32 */
#define MLC__EXPIRE_MAX ((UINT64_C(1) << (32 + MLC__VER_SHIFT)) - 1)
					/* ms: ~34.8 years */
#define MLC__VERSION_MAX ((UINT64_C(1) << (64 - MLC__VER_SHIFT)) - 1)

/* The fields packed above.  Readers pass values loaded once; every value
 * a racing reader gets is bounded (a length of 24 bits, a version of 56)
 * and its bucket's version check decides whether it counts. */
static inline uint64_t
mlc__item_gen(const struct mlc__item *it)
{
	return ck_pr_load_64((uint64_t *)&it->it_genlen) &
	       MLC__GEN_MASK;
}

static inline uint32_t
mlc__item_vlen(const struct mlc__item *it)
{
	return (uint32_t)(ck_pr_load_64((uint64_t *)&it->it_genlen) >>
			  MLC__GEN_BITS);
}

/* Store generation @p gen with value length @p vlen. */
static inline void
mlc__item_set_genlen(struct mlc__item *it, uint64_t gen, uint32_t vlen)
{
	ck_pr_store_64(&it->it_genlen, (gen & MLC__GEN_MASK) |
		       (uint64_t)vlen << MLC__GEN_BITS);
}

static inline uint32_t
mlc__item_nsgen(const struct mlc__item *it)
{
	return ck_pr_load_32((uint32_t *)&it->it_nsgen);
}

static inline uint64_t
mlc__item_expire(const struct mlc__item *it)
{
	return (uint64_t)ck_pr_load_32((uint32_t *)&it->it_exp_lo) |
	       (ck_pr_load_64((uint64_t *)&it->it_verexp) &
		((1u << MLC__VER_SHIFT) - 1)) << 32;
}

static inline uint64_t
mlc__item_version(const struct mlc__item *it)
{
	return ck_pr_load_64((uint64_t *)&it->it_verexp) >> MLC__VER_SHIFT;
}

/* Both, each word loaded once (a hit reads both). */
static inline void
mlc__item_ver_exp(const struct mlc__item *it, uint64_t *version,
		  uint64_t *expire)
{
	uint64_t ve = ck_pr_load_64((uint64_t *)&it->it_verexp);

	*version = ve >> MLC__VER_SHIFT;
	*expire = (uint64_t)ck_pr_load_32((uint32_t *)&it->it_exp_lo) |
		  (ve & ((1u << MLC__VER_SHIFT) - 1)) << 32;
}

/* A LIVE item's bytes 16..31 (its writer, stripes held, after the LIVE
 * store): @p expire at most MLC__EXPIRE_MAX, @p version at most
 * MLC__VERSION_MAX. */
static inline void
mlc__item_set_live(struct mlc__item *it, uint32_t nsgen, uint64_t expire,
		   uint64_t version)
{
	ck_pr_store_32(&it->it_nsgen, nsgen);
	ck_pr_store_32(&it->it_exp_lo, (uint32_t)expire);
	ck_pr_store_64(&it->it_verexp, version << MLC__VER_SHIFT |
		       (expire >> 32 & ((1u << MLC__VER_SHIFT) - 1)));
}

enum mlc__item_state {
	MLC__FREE  = 1,		/* on a page's free list */
	MLC__ALLOC = 2,		/* owned by one writer, unreachable */
	MLC__LIVE  = 3,		/* linked, or being unlinked and freed */
	MLC__PIECE = 4,		/* part of a chained item's value: belongs
				 * to the head it names (it_head, it_hgen) */
};
enum mlc__item_flags {
	MLC__IT_NEG = 1,	/* a cached miss */
	MLC__IT_STALE = 2,	/* re-stored stale value (resurrected) */
};

#define MLC__ST_STATE(s)	((s) & 0xffu)
#define MLC__ST_FLAGS(s)	(((s) >> 8) & 0xffu)
#define MLC__ST_MAKE(st, fl)	((uint32_t)(st) | ((uint32_t)(fl) << 8))
#define MLC__ST_SMALL		(UINT32_C(1) << 18)	/* on probation */
#define MLC__ST_CHAIN		(UINT32_C(1) << 19)	/* a chained item's
							 * head */

/* Chained items (format 9).  A value whose one chunk would waste more
 * than an eighth of it (classes above a ninth of a page hold a whole
 * number of chunks per page: a value just over half a page would take a
 * whole one) is stored in n + 1 chunks of one smaller class instead: a
 * head, the item as readers find it, and n pieces.  All of them belong
 * to the class that owns the head's page, under whose lock they are
 * taken together and freed together (alloc.c).
 *
 * The head: header (MLC__ST_CHAIN in it_state), key, the value's first
 * bytes; its chunk's last word holds n and the words before it the
 * pieces' offsets, piece 0 last-but-one.  A piece: header (state PIECE,
 * its own generation, its head's offset and generation), then value
 * bytes.  The split follows from the chunk size c, key and value
 * lengths alone: */
#define MLC__CHAIN_MAX 64		/* pieces per item */
#define MLC__CHAIN_MIN_CHUNK 2048	/* the smallest class chained into */

/* The pieces an item of key @p klen and value @p vlen needs in chunks of
 * @p c bytes, or 0 if it cannot be chained there (it fits the head alone,
 * or needs more than MLC__CHAIN_MAX, or its key leaves no room). */
static inline uint32_t
mlc__chain_pieces(uint32_t c, uint32_t klen, uint32_t vlen)
{
	uint64_t head = MLC__ITEM_HDR + 8 + (uint64_t)klen, per, n;

	if (c < MLC__CHAIN_MIN_CHUNK || head >= c || vlen <= c - head)
		return 0;
	per = c - MLC__ITEM_HDR - 8;	/* a piece's bytes, less its entry */
	n = (vlen - (c - head) + per - 1) / per;
	if (n > MLC__CHAIN_MAX || head + 8 * n > c)
		return 0;
	return (uint32_t)n;
}

/* The value bytes a chained head of chunk size @p c holds itself. */
static inline uint32_t
mlc__chain_head_bytes(uint32_t c, uint32_t klen, uint32_t n)
{
	return c - MLC__ITEM_HDR - 8 - klen - 8 * n;
}

/* The word holding n, and the one holding piece @p i's offset. */
static inline uint64_t *
mlc__chain_count(const struct mlc__item *it, uint32_t c)
{
	return (uint64_t *)(void *)((char *)(uintptr_t)it + c) - 1;
}

static inline uint64_t *
mlc__chain_piece(const struct mlc__item *it, uint32_t c, uint32_t i)
{
	return mlc__chain_count(it, c) - 1 - i;
}


/* A size class: its lock guards its pages' free lists, its page ring,
 * its two CLOCK hands and its count of chunks on probation. */
struct mlc__class {
	struct mlc__lock cl_lock;
	alignas(MLC_CACHELINE) uint32_t cl_size;	/* chunk bytes */
	uint32_t cl_per_page;
	uint32_t cl_pages;	/* pages owned */
	uint32_t cl_ring;	/* a page of the class ring, index + 1 */
	uint32_t cl_partial;	/* first page with free chunks, index + 1 */
	uint32_t cl_hand_page;	/* CLOCK hand: page index + 1 ... */
	uint32_t cl_hand_chunk;	/* ... and chunk within it */
	uint32_t cl_flags;	/* enum mlc__class_flags; bits 8-15: alloc.c's
				 * page-steal backoff countdown */
	uint64_t cl_demand;	/* decayed bytes requested: page balance */
	uint64_t cl_evictions;
	uint64_t cl_moves_in;	/* pages moved here from another class */
	uint64_t cl_moves_out;	/* pages moved away (to a class or pool) */
	/* Probation (alloc.c): the small hand, the number of ALLOC or LIVE
	 * chunks whose it_state has the small bit (class lock; a rebuild
	 * recounts it), and probation's target share of the class's chunks
	 * in 1/65536 (a hint, moved by ghost hits without a lock). */
	alignas(MLC_CACHELINE) uint32_t cl_shand_page;
	uint32_t cl_shand_chunk;
	uint32_t cl_nsmall;
	uint32_t cl_small_share;
	uint32_t cl_gone_small;	/* evictions from probation (class lock): */
	uint32_t cl_gone_main;	/* ... and from main: ghost stamps */
	uint32_t cl_moving;	/* a page move or rebuild is changing the
				 * class's pages (class lock; alloc.c) */
	uint32_t cl_empty;	/* its pages with every chunk free (class
				 * lock; format 13) */
	uint32_t cl_left;	/* 1, stored without the lock: a free gave
				 * up on the lock and left an unlinked LIVE
				 * chunk (alloc.c, mlc__free()); then where
				 * the heal's walk for such chunks goes on
				 * (class_left_free(): page + 1, CAS under
				 * the lock); 0: none.  In the line's
				 * padding: earlier builds leave it 0 */
};

enum mlc__class_flags {
	/* Its pages came by a move while its demand was worth less than a
	 * page (it had none, and no class up to twice its chunk size to
	 * borrow from): only a class whose demand is worth a page more than
	 * it owns may take them, never another such class (no round robin of
	 * pages between small classes).  Cleared when it has no page. */
	MLC__CL_COURTESY = 1,
};

/* The ghost (alloc.c): keys the sweep evicted lately, so that a key
 * written again soon after goes past probation.  Lines of 8 entries,
 * a key's line picked by its hash; an entry is stamp:32 | check:24 |
 * class:7 | main:1 (0: empty): main set if it left the main CLOCK rather
 * than probation, stamp its class's cl_gone_main or cl_gone_small then.
 * Written by sweeps under their class locks and cleared by writers that
 * find their key, all without any other lock: every entry is one word,
 * stored whole, and only a hint (a lost or wrong entry costs at most one
 * misplaced item).  Readers never touch it. */
struct mlc__ghost {
	alignas(MLC_CACHELINE) uint64_t gh_entry[8];
};
#define MLC__GHOST_LINES(nbuckets)	((nbuckets) > 2 ? (nbuckets) / 2 : 1)
#define MLC__SMALL_SHARE_INIT	6554	/* 10% of 65536 */

/* A page descriptor.  pg_class and the lists change under the owning
 * class's lock (or the pool lock while the page is in the pool). */
struct mlc__page {
	uint32_t pg_class;	/* class index + 1; 0: in the pool */
	uint32_t pg_nfree;
	uint32_t pg_free;	/* first free chunk, index + 1 */
	uint32_t pg_next;	/* class ring, or pool list: index + 1 */
	uint32_t pg_prev;
	uint32_t pg_pnext;	/* partial list (pages with free chunks) */
	uint32_t pg_pprev;
	uint32_t pg_carving;	/* 1 while being carved: a rebuild redoes it */
	uint64_t pg_gen;	/* generations handed to its chunks: only
				 * grows, whatever class owns the page */
};

/* A namespace.  ns_gen is bumped by a purge: items written under an older
 * generation are misses from then on, and reclaimed first. */
struct mlc__ns {
	alignas(MLC_CACHELINE) uint32_t ns_used;	/* set last, under ah_ns_lock */
	uint32_t ns_gen;
	uint8_t  ns_name_len;
	char     ns_name[47];
	uint64_t ns_pad;
};

/* A namespace's counters: the sum of what its handles have flushed (the
 * fields of struct mlc_stats after its size, in order), and its live
 * contents.  Apart from the namespace entry, whose line readers load on
 * every L2 lookup: writers change these, readers never read them.
 *
 * The live words count the entries of one namespace generation only:
 * nt_items is generation << 32 | entries, nt_bytes is (generation &
 * 0xffffff) << 40 | their key + value bytes.  A link or unlink changes a
 * word (CAS) only if the word's generation is the item's, or, if the
 * item's is the namespace's current one, moves the word to it at 0 first; a
 * purge publishes the new generation, then moves both words to it at 0 (a
 * word left behind by a purger that stopped or died there is moved by the
 * next link or unlink, and read as 0 meanwhile).  Generations are compared
 * for equality only, so a word never moves backwards.  So purged entries,
 * which stay linked until reclaimed, are never counted, and the counts are
 * exact; bytes alone could miscount an entry unlinked a multiple of 2^24
 * purges of its namespace after it was linked. */
#define MLC__NS_COUNTERS 30
#define MLC__NS_BYTES_SHIFT 40

/* Namespace generation @p gen as a live word whose count is below bit
 * @p shift holds it (its low bits that fit above the count). */
static inline uint64_t
mlc__ns_word_gen(uint32_t gen, unsigned shift)
{
	return gen & (UINT64_MAX >> shift);
}

/* Live word @p w's count (below bit @p shift) if the word is at namespace
 * generation @p gen, else 0: a word a purge has not moved on yet counts no
 * entry of the generation (struct mlc__ns_stats below). */
static inline uint64_t
mlc__ns_word_count(uint64_t w, uint32_t gen, unsigned shift)
{
	return w >> shift == mlc__ns_word_gen(gen, shift) ?
	       w & ((UINT64_C(1) << shift) - 1) : 0;
}
struct mlc__ns_stats {
	alignas(MLC_CACHELINE) uint64_t nt_count[MLC__NS_COUNTERS];
	uint64_t nt_items;
	uint64_t nt_bytes;
};

/* The invalidation log: ring of cells, head on its own line.  lc_meta
 * holds ns:16 | op:8 | check:40, the check a hash of the record with its
 * sequence: a writer stalled for a whole lap that finally writes its old
 * payload over a newer record cannot make readers accept the mix. */
struct mlc__log_cell {
	uint64_t lc_seq;	/* 0: never; s + 1: record s, with bits
				 * 63 WRITING (claimed, not published), 62
				 * ABANDONED (given up on), 61 CHANGING (its
				 * writer may be changing L2: log.c) */
	uint64_t lc_hash;
	uint64_t lc_version;
	uint64_t lc_meta;
};
/* Beside each cell, apart from it so that it outlives the publication
 * (log.c): the claim's stamp, claim time (ms, low 32 bits) << 32 | its
 * sequence + 1 (low 32), stored after the claimer's identity, which a
 * handle held back by the cell reads to tell whether it died. */
struct mlc__log_claim {
	uint64_t lk_stamp;
	uint64_t lk_who;	/* pid namespace << 32 | pid */
	uint64_t lk_start;	/* the claimer's start time (proc.c) */
};
struct mlc__log {
	alignas(MLC_CACHELINE) uint64_t lg_head;	/* next sequence to claim */
	alignas(MLC_CACHELINE) uint64_t lg_pad;
};

/* A single-flight slot.  fs_word is the slot's whole ownership in one
 * word, gen:40 | tag:24 (tag 0: free), changed only by CAS, and every
 * change (claim, steal, release) bumps the generation: "I still own the
 * flight" is "fs_word is still the word I installed".  The owner's
 * identity is published after it won, and fs_pub = its generation last:
 * fields whose fs_pub is not the word's generation belong to nobody. */
struct mlc__flight_slot {
	alignas(MLC_CACHELINE) uint32_t fs_ec;	/* ck_ec32 event word */
	uint32_t fs_waiters;	/* waiters right now: for inspection
				 * only; never below 0 (flight.c) */
	uint64_t fs_word;	/* gen:40 | tag:24 */
	uint64_t fs_pub;	/* generation the fields below belong to */
	uint64_t fs_owner;	/* pid << 32 | tid */
	uint64_t fs_owner_start; /* the owner's process start time */
	uint64_t fs_deadline;	/* lease end, ms */
	uint32_t fs_owner_ns;	/* the owner's pid namespace */
	uint32_t fs_pad;
	/* gen:40 | ms:24, the low 24 bits of when the owner of flight gen
	 * released it: its waiters judge its result as at then (ended_at()
	 * in flight.c; format 14, padding before). */
	uint64_t fs_ended;
};
#define MLC__FW_TAG_BITS 24
#define MLC__FW_TAG(w)	((w) & ((UINT64_C(1) << MLC__FW_TAG_BITS) - 1))
#define MLC__FW_GEN(w)	((w) >> MLC__FW_TAG_BITS)
#define MLC__FW_GEN_MASK ((UINT64_C(1) << (64 - MLC__FW_TAG_BITS)) - 1)
#define MLC__FW_MAKE(gen, tag) \
	(((uint64_t)(gen) << MLC__FW_TAG_BITS) | (uint64_t)(tag))

/* A process with the arena attached (src/procs.c): one entry per process
 * that opened it writable, found by its identity (pid, start time, pid
 * namespace: what src/proc.c proves death by), with the handles it has
 * open.  Entries change only under ah_procs_lock, each change between two
 * increments of pr_seq (odd while it changes), so lock-free readers, and
 * read-only mappings, take a copy and check pr_seq did not move.  pr_pid
 * is 0 in a free entry, whose other fields are 0 too.  A process killed
 * without closing leaves its entry: nobody counts it once its death is
 * proven, and writable listers free it. */
struct mlc__proc {
	uint32_t pr_seq;	/* odd while the entry changes */
	uint32_t pr_pid;	/* 0: free */
	uint32_t pr_ns;		/* pid namespace: low 32 bits of its inode */
	uint32_t pr_arenas;	/* arena handles counted in it */
	uint64_t pr_start;	/* start time, clock ticks after boot */
	uint32_t pr_caches;	/* cache handles counted in it */
	uint32_t pr_since;	/* CLOCK_REALTIME seconds of its first attach */
};

/* The header.  The first block (the fixed part, up to ah_check) is written
 * once at creation and never changes after READY; ah_check is a checksum
 * of it, verified at every attach and by mlc_arena_check().  The blocks
 * below it are live, each on its own line so that counters written by
 * writers do not slow readers of the config. */
struct mlc__hdr {
	alignas(MLC_CACHELINE) uint32_t ah_magic;
	uint32_t ah_format;
	uint32_t ah_layout;	/* mlc__layout_sig() of the creator */
	uint32_t ah_hash;	/* MLC_HASH_XXH3 */
	uint64_t ah_seed;	/* hash seed, random per arena */
	uint64_t ah_size;	/* bytes, equal to the object's size */
	uint32_t ah_state;	/* enum mlc__arena_state, READY last */
	uint32_t ah_creator;	/* pid */
	uint8_t  ah_boot_id[16];
	uint64_t ah_created;	/* CLOCK_REALTIME ms */

	uint32_t ah_page_size;
	uint32_t ah_npages;
	uint32_t ah_nbuckets;
	uint32_t ah_nstripes;
	uint32_t ah_max_items;
	uint32_t ah_nclasses;
	uint32_t ah_log_cells;
	uint32_t ah_flight_slots;
	uint32_t ah_max_ns;
	uint32_t ah_neg_quota;	/* negative entries before they go first */

	uint64_t ah_stripes_off;
	uint64_t ah_table_off;
	uint64_t ah_classes_off;
	uint64_t ah_pagedesc_off;
	uint64_t ah_ghost_off;	/* nbuckets / 2 ghost lines (alloc.c) */
	uint64_t ah_ns_off;
	uint64_t ah_nsstats_off;
	uint64_t ah_log_off;
	uint64_t ah_flight_off;
	uint64_t ah_pages_off;
	uint32_t ah_class_size[MLC__NCLASSES_MAX];
	uint64_t ah_check;	/* XXH3-64 of the bytes before it, with
				 * ah_state taken as 0 (mlc__hdr_check()) */

	/* Live: the version counter every write takes a number from. */
	alignas(MLC_CACHELINE) uint64_t ah_version;

	/* Live: the page pool. */
	struct mlc__lock ah_pool_lock;
	alignas(MLC_CACHELINE) uint32_t ah_pool_head;	/* page index + 1 */
	uint32_t ah_pool_free;
	uint64_t ah_demand_total;
	uint32_t ah_pool_moving;	/* a page move or rebuild is changing
					 * the pool (pool lock; alloc.c) */
	int32_t ah_empty_pages;		/* the classes' cl_empty summed: a
					 * hint, moved after each (format 13) */
	uint64_t ah_moves_begun;	/* page moves and rebuilds begun, for
					 * mlc_arena_check() (alloc.c) */

	/* Live: the namespace table's lock. */
	struct mlc__lock ah_ns_lock;
	alignas(MLC_CACHELINE) uint32_t ah_ns_count;

	/* Live: counters (struct mlc_arena_info). */
	alignas(MLC_CACHELINE) uint64_t ah_items;
	uint64_t ah_neg_items;
	uint64_t ah_sets;
	uint64_t ah_evictions;
	uint64_t ah_expired;
	uint64_t ah_index_evictions;
	uint64_t ah_page_moves;
	uint64_t ah_orphans;
	uint64_t ah_repairs;
	uint64_t ah_write_failures;
	uint64_t ah_read_giveups;
	uint64_t ah_stale_frees;	/* frees of a chunk already reused */
	uint64_t ah_orphan_skips;	/* ALLOC chunks of writers not proven
					 * dead: left alone */
	uint64_t ah_index_moves;	/* entries moved to their other bucket
					 * (table.c: index_move) */

	/* Live: the attached processes (struct mlc__proc). */
	struct mlc__lock ah_procs_lock;
	alignas(MLC_CACHELINE) uint64_t ah_procs_full;	/* attaches that found
							 * no free entry */
	uint64_t ah_procs_pruned;	/* entries of dead processes freed */
	alignas(MLC_CACHELINE) struct mlc__proc ah_procs[MLC__PROCS];

	/* Live: flight claims in their window (flight.c), per process entry
	 * (same index as ah_procs), and of processes that have none. */
	alignas(MLC_CACHELINE) uint32_t ah_claiming[MLC__PROCS];
	uint32_t ah_claiming_unlisted;
};

_Static_assert(offsetof(struct mlc__hdr, ah_seed) == 16, "arena ABI moved");
_Static_assert(offsetof(struct mlc__hdr, ah_size) == 24, "arena ABI moved");
_Static_assert(offsetof(struct mlc__hdr, ah_check) == 696, "arena ABI moved");
_Static_assert(offsetof(struct mlc__hdr, ah_version) == 704, "arena ABI moved");
_Static_assert(sizeof(struct mlc__hdr) <= MLC__HDR_BYTES, "header too big");
_Static_assert(sizeof(struct mlc__bucket) == MLC_CACHELINE, "bucket = line");
_Static_assert(sizeof(struct mlc__item) == MLC__ITEM_HDR, "item header");
_Static_assert(sizeof(struct mlc__page) == 40, "page descriptor");
_Static_assert(sizeof(struct mlc__ghost) == MLC_CACHELINE, "ghost line");
_Static_assert(sizeof(struct mlc__class) == 3 * MLC_CACHELINE, "class");
_Static_assert(sizeof(struct mlc__ns) == 64, "namespace entry");
_Static_assert(sizeof(struct mlc__log_cell) == 32, "log cell");
_Static_assert(sizeof(struct mlc__ns_stats) == 256, "namespace counters");
_Static_assert(sizeof(struct mlc__flight_slot) == 64, "flight slot");
_Static_assert(sizeof(struct mlc__proc) == 32, "process entry");
_Static_assert(offsetof(struct mlc__hdr, ah_procs) == 1280, "arena ABI moved");

/* The second way a read is validated, for a read that began inside a
 * writer's window (table.c) (an odd version: the writer may be stopped there), where
 * the version proves nothing: the chunk's identity.  mlc__identity_take() before
 * the first byte of the item is read, mlc__identity_held() after the last.
 *
 * Take: the chunk's generation into *@p gl, then slot @p s again.  If it
 * still holds @p w, that generation was linked at that moment, so what is
 * read after this was written before the link (a writer links an item
 * only once it is whole).  False: the slot changed meanwhile. */
static inline bool
mlc__identity_take(const struct mlc__bucket *bk, int s, uint64_t w,
		   const struct mlc__item *it, uint64_t *gl)
{
	*gl = ck_pr_load_64((uint64_t *)&it->it_genlen);
	ck_pr_fence_load();
	if (ck_pr_load_64((uint64_t *)&bk->bk_slot[s]) != w)
		return false;
	ck_pr_fence_load();
	return true;
}

/* Held: the slot still holds @p w and the chunk generation @p gl.  A chunk
 * is freed only after its unlink, and its generation changes when it is
 * handed out again, so it stayed linked from the take until now, and a
 * linked item's bytes never change (its state word's CLOCK bits aside).
 * The new owner of a reused chunk stores its generation before anything
 * else (alloc.c: chunk_take), so a copy that saw its bytes sees its
 * generation here.  mlc_arena_check() judges a slot by the same proof
 * (check.c). */
static inline bool
mlc__identity_held(const struct mlc__bucket *bk, int s, uint64_t w,
		   const struct mlc__item *it, uint64_t gl)
{
	return ck_pr_load_64((uint64_t *)&bk->bk_slot[s]) == w &&
	       ck_pr_load_64((uint64_t *)&it->it_genlen) == gl;
}

/* The checksum of a header's fixed part (src/arena.c). */
uint64_t mlc__hdr_check(const struct mlc__hdr *h);

#endif /* MLC_ARENA_H */
