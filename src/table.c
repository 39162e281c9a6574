/*
 * The index: a fixed array of one-line buckets, each a version word and
 * seven slot words (tag:16 | item offset:48).  A key lives in one of two
 * candidate buckets; a writer that finds both of a new key's full moves an
 * entry to its other bucket first (index_move, docs/internals.md).
 *
 * Readers are optimistic and write nothing into items: read the bucket
 * version, scan, compare the whole key, copy the value out, and re-read the
 * version; a change means a writer raced and the read is retried, a
 * bounded number of times; then the read gives up and the caller treats it
 * as a miss.  A read that began inside a writer's window (an odd version)
 * is validated by its chunk's identity instead (mlc__identity_take() and
 * _held(), arena.h), so only answers of absence wait for a writer.  Their
 * one shared store, the item's CLOCK bit, goes to the bucket's bk_refs
 * (never anything but bits), and only when it is clear.
 * Writers hold the robust mutexes of both candidate buckets' stripes, make
 * the version odd, store one slot word, make it even.
 *
 * Reclamation: a chunk is freed only after the slot store that unlinked it,
 * inside a version window, so a reader that copied from a chunk being
 * reused always fails validation; and it is freed by proof of identity
 * (its generation, read while it was still linked: alloc.c), so a late
 * freer can never free the chunk's next owner.
 */
#include <pthread.h>
#include <stdlib.h>

#include <ck_pr.h>

#include "hash.h"
#include "log.h"
#include "mlc-int.h"
#include "pause.h"

#define SPIN_MAX 256		/* spins on an odd version per attempt */
#define ROUNDS 64		/* optimistic attempts before giving up */

/* READ_PURGED: the key's entry, validated, of a purged generation: the
 * key is absent from both buckets (a key has one entry; a move's copy is
 * as purged). */
enum { READ_ABSENT, READ_FOUND, READ_RETRY, READ_PURGED };

/* Under ThreadSanitizer the racy reads below are not recorded at all.  A
 * suppression by the reader's name needs the reader's stack, which TSan
 * cannot always restore when the writer comes second (history_size): the
 * report then names only the writer, and suppressing the writer's frames
 * would hide real races between writers too. */
#if defined(__SANITIZE_THREAD__)
#define MLC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MLC_TSAN 1
#endif
#endif
#ifdef MLC_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define RACY_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define RACY_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define RACY_BEGIN() ((void)0)
#define RACY_END() ((void)0)
#endif

/* The seqlock reader's copy: a writer may be changing @p src meanwhile.
 * The caller's load fence and version re-check decide whether the bytes
 * are used, so the torn copy is harmless; the race is confined to these two
 * functions (and TSan ignores their accesses: RACY_BEGIN()). */
void
mlc__copy_racy(void *dst, const void *src, size_t len)
{
	RACY_BEGIN();
	memcpy(dst, src, len);
	RACY_END();
}

int
mlc__compare_racy(const void *shm, const void *key, size_t len)
{
	int d;

	RACY_BEGIN();
	d = memcmp(shm, key, len);
	RACY_END();
	return d;
}

void
mlc__key_hash(const struct mlc_arena *a, struct mlc__key *k)
{
	k->hash = mlc__hash(a->seed, k->ns, k->data, k->len);
}

static uint16_t
key_tag(uint64_t hash)
{
	return (uint16_t)((hash >> 48) | 1);	/* never 0: 0 is empty */
}

static void
key_buckets(const struct mlc_arena *a, uint64_t hash, uint32_t b[2])
{
	uint32_t tag = key_tag(hash);

	b[0] = (uint32_t)hash & a->bucket_mask;
	/* The second bucket from the tag alone (MemC3's alternate index),
	 * so eviction can find it from a slot word too. */
	b[1] = (b[0] ^ (tag * 0x5bd1e995u)) & a->bucket_mask;
	if (b[1] == b[0])
		b[1] = b[0] ^ 1;
}

/* The two buckets of a key of hash @p hash, and its slots' tag (tests). */
void
mlc__table_key_buckets(const struct mlc_arena *a, uint64_t hash,
		       uint32_t b[2], uint16_t *tag)
{
	key_buckets(a, hash, b);
	*tag = key_tag(hash);
}

/* The stripes that guard the buckets of a key of hash @p hash (tests). */
void
mlc__table_key_stripes(const struct mlc_arena *a, uint64_t hash,
		       uint32_t s[2])
{
	uint32_t b[2];

	key_buckets(a, hash, b);
	s[0] = b[0] & a->stripe_mask;
	s[1] = b[1] & a->stripe_mask;
}

/* Does a slot of tag @p tag in bucket @p b hold its entry where a key of
 * hash @p hash belongs?  (An index move, and mlc_arena_check, which hash
 * the item's key again: items keep no hash.) */
bool
mlc__table_slot_fits(const struct mlc_arena *a, uint64_t hash, uint32_t b,
		     uint16_t tag)
{
	uint32_t x[2];

	if (key_tag(hash) != tag)
		return false;
	key_buckets(a, hash, x);
	return b == x[0] || b == x[1];
}

/* The other candidate bucket of an entry of tag @p tag in bucket @p b:
 * key_buckets() pairs them by an XOR, so either finds the other. */
static uint32_t
alt_bucket(const struct mlc_arena *a, uint32_t b, uint16_t tag)
{
	uint32_t d = (tag * 0x5bd1e995u) & a->bucket_mask;

	return d == 0 ? b ^ 1 : b ^ d;
}

/* Turn an offset read from shared memory into an item, or NULL: inside the
 * page area, 8-aligned, with room for a header before the page ends.
 * *room is the bytes from the item to the end of its page: no length read
 * from the item may take a read past it.  Every offset a reader follows
 * goes through here.  (It does not look up the page's class: a stale
 * offset into a page carved anew reads bytes inside that page, which the
 * bucket version then rejects, and skipping the descriptor saves a cache
 * miss on every cold lookup.) */
struct mlc__item *
mlc__item_at(const struct mlc_arena *a, uint64_t off, uint32_t *room)
{
	uint32_t in_page;

	if (off < a->pages_off || off >= a->pages_end || (off & 7) != 0)
		return NULL;
	in_page = mlc__off_in_page(a, off);
	if (a->page_size - in_page < MLC__ITEM_HDR)
		return NULL;
	*room = a->page_size - in_page;
	return (struct mlc__item *)(void *)(a->base + off);
}

/* Does an item (state word @p w) of key @p klen and value @p vlen fit
 * the @p room left in its page?  A chained head holds its key whole and
 * the value's first bytes; the rest is in its pieces (arena.h). */
static inline bool
item_fits(uint32_t w, uint32_t klen, uint32_t vlen, uint32_t room)
{
	if (w & MLC__ST_CHAIN)
		return (uint64_t)MLC__ITEM_HDR + 8 + klen <= room;
	return (uint64_t)MLC__ITEM_HDR + klen + vlen <= room;
}

/* Does the item hold @p k?  Every field is bounds-checked before use: the
 * bytes may be anything if a writer is reusing the chunk.  A purged item
 * (older namespace generation) still matches: readers answer it as
 * absent, writers replace it. */
static bool
item_matches_racy(const struct mlc__item *it, uint32_t room,
		  const struct mlc__key *k)
{
	uint32_t w = ck_pr_load_32((uint32_t *)&it->it_state);

	if (MLC__ST_STATE(w) != MLC__LIVE || it->it_klen != k->len ||
	    it->it_ns != k->ns)
		return false;
	if (!item_fits(w, k->len, mlc__item_vlen(it), room))
		return false;
	return mlc__compare_racy((const char *)(it + 1), k->data, k->len) == 0;
}

static bool
item_matches(const struct mlc__item *it, uint32_t room,
	     const struct mlc__key *k)
{
	bool m;

	RACY_BEGIN();
	m = item_matches_racy(it, room, k);
	RACY_END();
	return m;
}

/* The piece count of the chained head @p it (@p room bytes to its page's
 * end), its chunk size in *@p cp: 0 if the chunk size and the two
 * lengths, read racily, do not add up to a chain of at most
 * MLC__CHAIN_MAX pieces.  Checked before the sink is asked for the bytes:
 * a length read from a chunk being reused could be anything up to 16 MiB,
 * and a malloc of that for a read that then retries is waste, or a false
 * -ENOMEM. */
static uint32_t
chain_geometry(const struct mlc_arena *a, const struct mlc__item *it,
	       uint32_t room, uint32_t klen, uint32_t vlen, uint32_t *cp)
{
	uint32_t c = mlc__page_chunk(a, (uint64_t)((const char *)it - a->base));

	if (c == 0 || c > room)
		return 0;
	*cp = c;
	return mlc__chain_pieces(c, klen, vlen);
}

/* Copy a chained item's value (arena.h) into @p dst: the head's part, then
 * each piece's.  Everything is read racily and bounded: the chunk size
 * @p c and piece count @p n come from chain_geometry(), the count stored
 * must be @p n, and every offset must lead to a whole chunk of that size
 * inside the pages.  False if they do not add up: the head is being
 * reused, and the caller reads again. */
static bool
chain_copy(const struct mlc_arena *a, const struct mlc__item *it,
	   uint32_t c, uint32_t n, uint32_t klen, uint32_t vlen, char *dst)
{
	uint32_t head, done;

	if (ck_pr_load_64(mlc__chain_count(it, c)) != n)
		return false;
	head = mlc__chain_head_bytes(c, klen, n);
	mlc__copy_racy(dst, (const char *)(it + 1) + klen, head);
	done = head;
	for (uint32_t i = 0; i < n && done < vlen; i++) {
		uint64_t off = ck_pr_load_64(mlc__chain_piece(it, c, i));
		uint32_t proom, part = MLC_MIN(vlen - done, c - MLC__ITEM_HDR);
		const struct mlc__item *pc = mlc__item_at(a, off, &proom);

		if (pc == NULL || proom < c)
			return false;
		MLC_PAUSE(READ_PIECE);
		mlc__copy_racy(dst + done, pc + 1, part);
		done += part;
	}
	return done == vlen;
}

/* Copy a matched item's value out through the sink.  The length is read
 * once and checked again: a writer reusing the chunk may have changed it
 * since item_matches() looked, and the copy must stay inside the page.
 * The racy reads are between RACY_BEGIN() and RACY_END(), the sink's
 * allocation and chain_copy()'s pause point outside.
 * -ENOMEM when the sink refuses the length, which the caller answers only
 * once its validation says the length was the item's. */
static int
item_copy(const struct mlc_arena *a, const struct mlc__item *it,
	  uint32_t room, const struct mlc__key *k, mlc__sink_fn *sink,
	  void *ctx, struct mlc__hit *hit)
{
	uint32_t vlen, w, c = 0, n = 0;
	uint64_t version, expire;
	bool whole;
	void *dst;

	RACY_BEGIN();
	vlen = mlc__item_vlen(it);
	w = ck_pr_load_32((uint32_t *)&it->it_state);
	whole = item_fits(w, k->len, vlen, room) &&
		(!(w & MLC__ST_CHAIN) ||
		 (n = chain_geometry(a, it, room, k->len, vlen, &c)) != 0);
	RACY_END();
	if (!whole)
		return READ_RETRY;
	dst = sink(ctx, vlen);	/* allocates: not inside RACY_BEGIN() */
	if (dst == NULL && vlen != 0)
		return -ENOMEM;
	if (!(w & MLC__ST_CHAIN))
		mlc__copy_racy(dst, (const char *)(it + 1) + k->len, vlen);
	else if (!chain_copy(a, it, c, n, k->len, vlen, dst))
		return READ_RETRY;
	RACY_BEGIN();
	mlc__item_ver_exp(it, &version, &expire);
	w = ck_pr_load_32((uint32_t *)&it->it_state);
	RACY_END();
	hit->len = vlen;
	hit->data = dst;
	hit->version = version;
	hit->expire = expire;
	hit->flags = MLC__ST_FLAGS(w);
	return 0;
}

/* A reader's CLOCK mark: the slot's bit in its bucket, set only when clear,
 * so a hot item costs no shared write.  Never a store into the item: it may
 * be reused the moment after the reader validated it (arena.h). */
static inline void
ref_touch(struct mlc__bucket *bk, int s)
{
	uint32_t bit = UINT32_C(1) << s;

	if (!(ck_pr_load_32(&bk->bk_refs) & bit))
		ck_pr_or_32(&bk->bk_refs, bit);
}

/* Ask for the lines of the chunk at @p it (offset @p off, @p room bytes to
 * its page's end) beyond the first, up to PREFETCH_BYTES: a value's lines
 * then load beside the header, not after it (the copy's first touch).
 * Only for chunks over two lines: for smaller ones it saved nothing, and
 * some side-by-side runs measured cold 16 B hits 1.26 times slower with
 * it (bench/results/compare-c3f0933.md).  The page's class is read
 * racily: it only sizes a hint. */
#define PREFETCH_BYTES 2048

static inline void
item_prefetch(const struct mlc_arena *a, const struct mlc__item *it,
	      uint64_t off, uint32_t room)
{
	uint32_t size = mlc__page_chunk(a, off);
	uintptr_t q, stop;

	if (size <= 2 * MLC_CACHELINE)
		return;
	stop = (uintptr_t)it + MLC_MIN(MLC_MIN(size, room), PREFETCH_BYTES);
	for (q = ((uintptr_t)it | (MLC_CACHELINE - 1)) + 1; q < stop;
	     q += MLC_CACHELINE)
		__builtin_prefetch((const void *)q);
}

/* Did the bucket hold still through a read that found slot @p s (word
 * @p w, item @p it) at version @p v1?  The even version unchanged, or,
 * under an odd one (a writer stopped or killed inside its window), the
 * entry's identity (mlc__identity_take(), generation @p gl).  Everything
 * the read copied is before the check. */
static inline bool
read_held(struct mlc__bucket *bk, int s, uint64_t w,
	  const struct mlc__item *it, uint64_t gl, uint32_t v1)
{
	ck_pr_fence_load();
	return (v1 & 1) ? mlc__identity_held(bk, s, w, it, gl) :
			  ck_pr_load_32(&bk->bk_version) == v1;
}

static int
bucket_read(const struct mlc_arena *a, struct mlc__bucket *bk,
	    const struct mlc__key *k, mlc__sink_fn *sink, void *ctx,
	    struct mlc__hit *hit, uint32_t *version)
{
	uint16_t tag = key_tag(k->hash);
	uint32_t v1, spins = 0;

	/* A writer's window is a few stores: wait that long for it.  One
	 * that stays odd was stopped or killed inside it; the scan goes on,
	 * and only an item whose identity held is answered. */
	while ((v1 = ck_pr_load_32(&bk->bk_version)) & 1) {
		if (++spins > SPIN_MAX)
			break;
		ck_pr_stall();
	}
	*version = v1;
	/* Slots after the version: pairs with the writer's store fence
	 * between its slot store and the even version. */
	ck_pr_fence_load();
	for (int s = 0; s < MLC__SLOTS; s++) {
		uint64_t w = ck_pr_load_64(&bk->bk_slot[s]), gl = 0;
		struct mlc__item *it;
		uint32_t room;
		int rc;

		if (w == 0 || MLC__SLOT_TAG(w) != tag)
			continue;
		it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
		if (it == NULL)
			continue;
		item_prefetch(a, it, MLC__SLOT_OFF(w), room);
		if ((v1 & 1) && !mlc__identity_take(bk, s, w, it, &gl))
			return READ_RETRY;
		if (!item_matches(it, room, k))
			continue;
		/* Purged: absent, validated as a found one is.  A writer
		 * stopped inside its window in either bucket then does not
		 * make the read give up (until review AH it did after every
		 * round: test-evict test_purged_in_odd_bucket). */
		if (mlc__item_nsgen(it) != k->nsgen)
			return read_held(bk, s, w, it, gl, v1) ? READ_PURGED :
								 READ_RETRY;
		MLC_PAUSE(READ_MATCHED);
		rc = item_copy(a, it, room, k, sink, ctx, hit);
		if (rc == READ_RETRY)
			return rc;
		/* A writer that changed the bucket meanwhile moved the
		 * version. */
		if (!read_held(bk, s, w, it, gl, v1))
			return READ_RETRY;
		/* The sink's refusal (-ENOMEM) counts only now: the length
		 * it refused may have been read from a chunk being
		 * reused. */
		if (rc < 0)
			return rc;
		/* Validated: from here on the chunk may be reused at any
		 * moment, so nothing is stored into it. */
		MLC_PAUSE(READ_VALIDATED);
		ref_touch(bk, s);
		return READ_FOUND;
	}
	ck_pr_fence_load();
	return (v1 & 1) == 0 && ck_pr_load_32(&bk->bk_version) == v1 ?
	       READ_ABSENT : READ_RETRY;
}

/* ---- walking a namespace's keys (mlc_namespace_keys) ----------------- */

/* What one bucket holds for the walk: copies, taken while its version
 * stayed the same. */
struct walk_ent {
	uint32_t klen, vlen, flags;
	uint64_t expire, version;
	const struct mlc__item *it;	/* its identity (mlc__identity_take()): */
	uint64_t w, gl;			/* slot word and generation */
	int s;				/* in slot s */
};

/* Copy bucket @p bk's entries of namespace @p ns, generation @p gen, into
 * @p ents (keys in @p keys, MLC_KEY_MAX bytes each).  The number found, or
 * -1 if a writer changed the bucket meanwhile; on the @p last try, the
 * entries that proved they stayed put instead (mlc__identity_held(): what a
 * writer changed, or one stopped inside its window is changing, may be
 * seen or not, and the rest are seen). */
static int
walk_bucket(const struct mlc_arena *a, struct mlc__bucket *bk, uint32_t ns,
	    uint32_t gen, struct walk_ent *ents, char *keys, bool last)
{
	uint32_t v1, spins = 0;
	int n = 0, kept = 0;

	while ((v1 = ck_pr_load_32(&bk->bk_version)) & 1) {
		if (++spins > SPIN_MAX) {
			if (!last)
				return -1;
			break;
		}
		ck_pr_stall();
	}
	ck_pr_fence_load();	/* slots after the version (bucket_read) */
	for (int s = 0; s < MLC__SLOTS; s++) {
		uint64_t w = ck_pr_load_64(&bk->bk_slot[s]), gl;
		struct mlc__item *it;
		uint32_t room, st, klen, vlen;

		if (w == 0 || (it = mlc__item_at(a, MLC__SLOT_OFF(w),
						 &room)) == NULL)
			continue;
		/* Taken on every try: the last may need it, whatever the
		 * version was.  A slot that changed is changing: skipped
		 * (the version says so too). */
		if (!mlc__identity_take(bk, s, w, it, &gl))
			continue;
		st = ck_pr_load_32(&it->it_state);
		klen = ck_pr_load_16(&it->it_klen);
		vlen = mlc__item_vlen(it);
		/* Any field may be garbage while a writer reuses the chunk:
		 * bounds first, and the version check below decides. */
		if (MLC__ST_STATE(st) != MLC__LIVE ||
		    ck_pr_load_16(&it->it_ns) != ns ||
		    mlc__item_nsgen(it) != gen || klen == 0 ||
		    !item_fits(st, klen, vlen, room))
			continue;
		mlc__copy_racy(keys + (size_t)n * MLC_KEY_MAX, it + 1, klen);
		ents[n].klen = klen;
		ents[n].vlen = vlen;
		ents[n].flags = MLC__ST_FLAGS(st);
		mlc__item_ver_exp(it, &ents[n].version, &ents[n].expire);
		ents[n].it = it;
		ents[n].w = w;
		ents[n].gl = gl;
		ents[n].s = s;
		n++;
	}
	ck_pr_fence_load();	/* every copy before the re-check */
	if ((v1 & 1) == 0 && ck_pr_load_32(&bk->bk_version) == v1)
		return n;
	if (!last)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!mlc__identity_held(bk, ents[i].s, ents[i].w, ents[i].it,
				   ents[i].gl))
			continue;
		if (kept != i) {
			ents[kept] = ents[i];
			memcpy(keys + (size_t)kept * MLC_KEY_MAX,
			       keys + (size_t)i * MLC_KEY_MAX, ents[i].klen);
		}
		kept++;
	}
	return kept;
}

static int
walk_report(struct walk_ent *e, const char *key, uint64_t now,
	    mlc_key_fn *fn, void *arg)
{
	struct mlc_key_info k = { .size = sizeof(k) };

	k.key = key;
	k.key_len = e->klen;
	k.value_len = e->flags & MLC__IT_NEG ? 0 : e->vlen;
	k.version = e->version;
	k.flags = (e->flags & MLC__IT_NEG ? MLC_NEGATIVE : 0) |
		  (e->expire == 0 ? MLC_NO_EXPIRY : 0);
	if (e->expire == 0)
		k.ttl_ms = MLC_TTL_NEVER;
	else if (e->expire > now)
		k.ttl_ms = (int64_t)(e->expire - now);
	else
		k.flags |= MLC_STALE;
	return fn(arg, &k);
}

MLC_EXPORT int
mlc_namespace_keys(struct mlc_arena *a, const char *ns, uint64_t *cursor,
		   uint32_t max_buckets, mlc_key_fn *fn, void *arg)
{
	struct walk_ent ents[MLC__SLOTS];
	uint64_t b, end, nb;
	uint32_t idx, gen;
	char *keys;
	int rc = 0;

	if (a == NULL || ns == NULL || cursor == NULL || fn == NULL)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	if ((rc = mlc__ns_find(a, ns, &idx)) < 0)
		return rc;
	nb = (uint64_t)a->bucket_mask + 1;
	if (*cursor >= nb)
		return -EINVAL;
	keys = malloc((size_t)MLC__SLOTS * MLC_KEY_MAX);
	if (keys == NULL)
		return -ENOMEM;
	end = max_buckets == 0 ? nb : MLC_MIN(nb, *cursor + max_buckets);
	for (b = *cursor; b < end && rc == 0; b++) {
		int n = -1;

		/* The generation of each bucket's read, and asked again
		 * before each entry is reported: a purge made meanwhile (fn
		 * may make one) leaves only purged entries in the copies. */
		gen = ck_pr_load_32(&a->ns[idx].ns_gen);
		for (int round = 0; round < ROUNDS && n < 0; round++)
			n = walk_bucket(a, &a->table[b], idx, gen, ents, keys,
					round == ROUNDS - 1);
		for (int i = 0; i < n && rc == 0; i++) {
			if (ck_pr_load_32(&a->ns[idx].ns_gen) != gen)
				break;
			/* Staleness and TTL as of the report: fn may take
			 * its time. */
			rc = walk_report(&ents[i], keys + (size_t)i *
					 MLC_KEY_MAX, mlc__now_ms(), fn, arg);
		}
	}
	*cursor = b >= nb ? 0 : b;
	free(keys);
	return rc;
}

/* ---- stripes ------------------------------------------------------- */

/* The last owner of a stripe died inside a write: its one slot store is
 * either done or not (both leave a valid item linked), so only the odd
 * versions need closing.  A chunk it allocated or unlinked without freeing
 * is reclaimed by the allocator's sweep as an orphan.  Whether it noted
 * what it unlinked (stripes_note_gone()) is not known: every version made
 * so far counts as gone from the stripe, so no load that began before the
 * death stores over what the dead owner took out. */
void
mlc__stripe_repair(struct mlc_arena *a, void *ctx)
{
	uint32_t s = (uint32_t)(uintptr_t)ctx;
	uint64_t made = ck_pr_load_64(&a->hdr->ah_version);

	if (a->stripes[s].lk_aux < made)
		a->stripes[s].lk_aux = made;

	for (uint32_t b = s; b <= a->bucket_mask; b += a->stripe_mask + 1) {
		uint32_t v = ck_pr_load_32(&a->table[b].bk_version);

		if (v & 1)
			ck_pr_store_32(&a->table[b].bk_version, v + 1);
	}
}

static int
stripe_lock(struct mlc_arena *a, uint32_t s, bool try)
{
	return try ? mlc__lock_try(a, &a->stripes[s], mlc__stripe_repair,
				   (void *)(uintptr_t)s)
		   : mlc__lock_take(a, &a->stripes[s], mlc__stripe_repair,
				    (void *)(uintptr_t)s);
}

/* Lock both candidate buckets' stripes, in index order (no deadlock
 * between two writers), or with @p try give up if either is busy. */
static int
stripes_lock(struct mlc_arena *a, const uint32_t b[2], bool try)
{
	uint32_t s0 = b[0] & a->stripe_mask, s1 = b[1] & a->stripe_mask;
	uint32_t lo = MLC_MIN(s0, s1), hi = MLC_MAX(s0, s1);
	int rc;

	rc = stripe_lock(a, lo, try);
	if (rc < 0 || lo == hi)
		return rc;
	rc = stripe_lock(a, hi, try);
	if (rc < 0)
		mlc__lock_give(&a->stripes[lo]);
	return rc;
}

/* Remember, in both stripes, that an entry written at @p version left the
 * index (a delete, or an eviction): a load that began before that version
 * must not store its older result now that the newer one is gone.
 * Stripe locks held. */
static void
stripes_note_gone(struct mlc_arena *a, const uint32_t b[2], uint64_t version)
{
	for (int i = 0; i < 2; i++) {
		struct mlc__lock *st = &a->stripes[b[i] & a->stripe_mask];

		if (st->lk_aux < version)
			st->lk_aux = version;
	}
}

static void
stripes_unlock(struct mlc_arena *a, const uint32_t b[2])
{
	uint32_t s0 = b[0] & a->stripe_mask, s1 = b[1] & a->stripe_mask;

	mlc__lock_give(&a->stripes[s0]);
	if (s1 != s0)
		mlc__lock_give(&a->stripes[s1]);
}

/* Store one slot word inside a version window (stripe lock held).  The
 * item it brings (or none) has not been read yet: its CLOCK bit starts
 * clear. */
static void
slot_store(struct mlc__bucket *bk, int s, uint64_t w)
{
	uint32_t v = ck_pr_load_32(&bk->bk_version);

	ck_pr_store_32(&bk->bk_version, v + 1);
	/* Odd version before the slot: a reader that sees the new slot
	 * also sees that its window was disturbed. */
	ck_pr_fence_store();
	ck_pr_store_64(&bk->bk_slot[s], w);
	MLC_PAUSE(SLOT_STORED);
	/* Only when set: a locked instruction is a tenth of a store.  A
	 * reader may set it again after this either way (a hint). */
	if (ck_pr_load_32(&bk->bk_refs) & UINT32_C(1) << s)
		ck_pr_and_32(&bk->bk_refs, ~(UINT32_C(1) << s));
	/* Item and slot before the even version: a reader that validates
	 * against the even version copied a whole item. */
	ck_pr_fence_store();
	ck_pr_store_32(&bk->bk_version, v + 2);
}

/* ---- reads --------------------------------------------------------- */

/* Look @p k up; on 0 the value went through @p sink and *@p hit says
 * what it was.  -ENOENT when absent (or purged).  -ENOMEM when the sink
 * gave no room for the value's length (one validated as the item's: a
 * length read from a chunk being reused is a retry).  -ETIMEDOUT when the
 * bucket kept changing (or stayed odd: a writer stopped or killed inside
 * its update) for every optimistic round: callers take it as a miss.
 *
 * Readers never take a lock, not even as a last resort: a mutex in shared
 * memory is bytes another process wrote, and glibc aborts on some garbage
 * mutex states (fuzz/crashes/fuzz-arena/).  A dead writer's odd version is
 * repaired by the next writer of that stripe, which a miss with a loader
 * brings about by itself. */
int
mlc__table_get(struct mlc_arena *a, const struct mlc__key *k,
	       mlc__sink_fn *sink, void *ctx, struct mlc__hit *hit)
{
	uint32_t b[2], odd[2] = { 0, 0 };

	key_buckets(a, k->hash, b);
	/* The second bucket's miss overlaps the first's. */
	__builtin_prefetch(&a->table[b[1]]);
	for (int round = 0; round < ROUNDS; round++) {
		uint32_t v0, v = 0;
		int r0 = bucket_read(a, &a->table[b[0]], k, sink, ctx, hit,
				     &v0);
		int r1;

		if (r0 < 0)
			return r0;
		if (r0 == READ_FOUND)
			return 0;
		if (r0 == READ_PURGED)
			return -ENOENT;
		r1 = bucket_read(a, &a->table[b[1]], k, sink, ctx, hit, &v);
		if (r1 < 0)
			return r1;
		if (r1 == READ_FOUND)
			return 0;
		if (r1 == READ_PURGED)
			return -ENOENT;
		/* Absent from both, unless the first bucket changed while
		 * the second was read: an entry moving from the second to
		 * the first (index_move) was then in neither when looked
		 * at. */
		ck_pr_fence_load();
		if (r0 == READ_ABSENT && r1 == READ_ABSENT &&
		    ck_pr_load_32(&a->table[b[0]].bk_version) == v0)
			return -ENOENT;
		/* Odd at the same version as a round ago, after SPIN_MAX
		 * spins each time: its writer is stopped or dead inside its
		 * window, and more rounds cannot outlast it.  (A key that
		 * is there was found above, by its chunk's identity; only
		 * an answer of absence waits for the version.) */
		if (((v0 & 1) && v0 == odd[0]) || ((v & 1) && v == odd[1]))
			break;
		odd[0] = v0;
		odd[1] = v;
		ck_pr_stall();
	}
	ck_pr_inc_64(&a->hdr->ah_read_giveups);
	return -ETIMEDOUT;
}

/* ---- writes -------------------------------------------------------- */

struct slot_ref {
	struct mlc__bucket *bk;
	int s;
	uint64_t w;		/* the slot word */
	struct mlc__item *it;	/* what it points to */
	uint64_t gen;		/* its generation, read while linked */
};

/* Was the key whose buckets are @p b, linked as @p it (NULL: absent),
 * set, deleted or evicted after version @p fence?  A newer item, or a
 * newer version noted as gone in either stripe (stripe locks held). */
static bool
changed_locked(const struct mlc_arena *a, const uint32_t b[2],
	       const struct mlc__item *it, uint64_t fence)
{
	return (it != NULL && mlc__item_version(it) > fence) ||
	       a->stripes[b[0] & a->stripe_mask].lk_aux > fence ||
	       a->stripes[b[1] & a->stripe_mask].lk_aux > fence;
}

/* Find @p k's slot (stripe locks held). */
static bool
find_locked(struct mlc_arena *a, const uint32_t b[2],
	    const struct mlc__key *k, struct slot_ref *ref)
{
	uint16_t tag = key_tag(k->hash);

	for (int i = 0; i < 2; i++) {
		struct mlc__bucket *bk = &a->table[b[i]];

		for (int s = 0; s < MLC__SLOTS; s++) {
			uint64_t w = ck_pr_load_64(&bk->bk_slot[s]);
			struct mlc__item *it;
			uint32_t room;

			if (w == 0 || MLC__SLOT_TAG(w) != tag)
				continue;
			it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
			if (it == NULL || !item_matches(it, room, k))
				continue;
			*ref = (struct slot_ref){ bk, s, w, it,
						  mlc__item_gen(it) };
			return true;
		}
	}
	return false;
}

/* Rank a linked item as an index-pressure victim: lower goes first.  A
 * negative entry goes first only over its quota (reclaimable, as the
 * sweep takes it); under it, it ranks as a positive one.  Until review AL
 * every negative entry ranked before every positive one, and a new key's
 * buckets lost their negative entries however few there were (mlc.h:
 * negative entries may use neg_quota_pct "before they are evicted first";
 * test-evict test_negative_quota_index). */
static uint64_t
victim_rank(const struct mlc_arena *a, const struct mlc__item *it,
	    bool referenced, uint64_t now)
{
	uint32_t w = ck_pr_load_32((uint32_t *)&it->it_state);

	if (mlc__item_reclaimable(a, it, w, now))
		return 0;
	if (!referenced)
		return 2 + (mlc__item_version(it) >> 2);	/* not read lately */
	return (UINT64_C(1) << 62) + (mlc__item_version(it) >> 2);
}

/* Pick the slot for a new key: an empty one in the emptier bucket, else
 * the best victim among both buckets' fourteen (a slot word that points
 * nowhere valid ranks first: ref->it is NULL and nothing is freed). */
static void
pick_slot(struct mlc_arena *a, const uint32_t b[2], uint64_t now,
	  struct slot_ref *ref, bool *victim)
{
	uint64_t best = UINT64_MAX;
	int empty[2] = { -1, -1 }, nempty[2] = { 0, 0 };

	for (int i = 0; i < 2; i++) {
		for (int s = MLC__SLOTS; s-- > 0;) {
			if (ck_pr_load_64(&a->table[b[i]].bk_slot[s]) == 0) {
				empty[i] = s;
				nempty[i]++;
			}
		}
	}
	if (nempty[0] + nempty[1] > 0) {
		int i = nempty[1] > nempty[0] ? 1 : 0;

		*ref = (struct slot_ref){ &a->table[b[i]], empty[i], 0, NULL,
					  0 };
		*victim = false;
		return;
	}
	for (int i = 0; i < 2; i++) {
		for (int s = 0; s < MLC__SLOTS; s++) {
			struct mlc__bucket *bk = &a->table[b[i]];
			uint64_t w = ck_pr_load_64(&bk->bk_slot[s]);
			struct mlc__item *it;
			uint32_t room;
			uint64_t rank;

			it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
			rank = it ? victim_rank(a, it,
					ck_pr_load_32(&bk->bk_refs) & 1u << s,
					now) : 0;
			if (rank < best || best == UINT64_MAX) {
				best = rank;
				*ref = (struct slot_ref){ bk, s, w, it,
					it ? mlc__item_gen(it) : 0 };
			}
		}
	}
	*victim = true;
}

/* Add @p n (or take it away) to namespace @p ns's live word @p w (its
 * count below bit @p shift, a generation above: struct mlc__ns_stats) for
 * an entry of generation @p gen, if the word is at @p gen.  A word at
 * another generation is moved to @p gen at 0 first only if @p gen is the
 * namespace's generation now, read after the word: the word is then one a
 * purge left behind, its purger stopped or dead after publishing the
 * generation (write.c, ns_gen_next(), which moves it with @p n 0).  Else
 * the entry is a purged one and counts nowhere.  Generations are compared
 * for equality only, so no number of purges can move a word backwards. */
void
mlc__ns_word_add(struct mlc_arena *a, uint32_t ns, uint64_t *w,
		 unsigned shift, uint32_t gen, uint64_t n, bool add)
{
	uint64_t mask = (UINT64_C(1) << shift) - 1, old, new, c;
	uint64_t g = mlc__ns_word_gen(gen, shift);

	old = ck_pr_load_64(w);
	do {
		if (old >> shift == g) {
			c = old & mask;
		} else {
			ck_pr_fence_load();
			if (ck_pr_load_32(&a->ns[ns].ns_gen) != gen)
				return;
			c = 0;
		}
		c = add ? c + n : c >= n ? c - n : 0;
		new = g << shift | (c & mask);
		if (new == old)
			return;		/* nothing to add, already at gen */
	} while (!ck_pr_cas_64_value(w, old, new, &old));
}

/* Count @p it in (or out of) its namespace's live entries and bytes.
 * Called under the item's stripe locks, so its fields are stable. */
static void
ns_count(struct mlc_arena *a, const struct mlc__item *it, bool add)
{
	struct mlc__ns_stats *st;
	uint32_t gen = mlc__item_nsgen(it);

	if (it->it_ns >= a->max_ns)
		return;		/* a corrupt item: never write outside */
	st = &a->nsstats[it->it_ns];
	mlc__ns_word_add(a, it->it_ns, &st->nt_items, 32, gen, 1, add);
	mlc__ns_word_add(a, it->it_ns, &st->nt_bytes, MLC__NS_BYTES_SHIFT, gen,
			 (uint64_t)it->it_klen + mlc__item_vlen(it), add);
}

static void
count_unlinked(struct mlc_arena *a, const struct mlc__item *it, uint32_t w)
{
	ck_pr_dec_64(&a->hdr->ah_items);
	if (MLC__ST_FLAGS(w) & MLC__IT_NEG)
		ck_pr_dec_64(&a->hdr->ah_neg_items);
	ns_count(a, it, false);
}

/* Take the entry in slot @p s of bucket @p bk (item @p it; the stripes
 * of its buckets @p b held) out of the index, as an eviction does: noted
 * as gone first (a load begun before its version must not store over
 * what replaces it), then the slot, then the counts.  Its chunk is the
 * caller's to free, after the stripes, by its generation. */
static void
slot_evict(struct mlc_arena *a, const uint32_t b[2], struct mlc__bucket *bk,
	   int s, const struct mlc__item *it)
{
	stripes_note_gone(a, b, mlc__item_version(it));
	slot_store(bk, s, 0);
	count_unlinked(a, it, ck_pr_load_32((uint32_t *)&it->it_state));
}

/* Count @p it in, and @p old (state word @p oldw, or NULL) out, with as
 * few locked instructions as the difference needs: a key's new value
 * over its old one in the same namespace generation changes no item
 * count, only the bytes by the difference.  Stripe locks held. */
static void
count_replaced(struct mlc_arena *a, const struct mlc__item *it,
	       const struct mlc__item *old, uint32_t oldw)
{
	uint64_t nb, ob;
	bool neg = MLC__ST_FLAGS(ck_pr_load_32((uint32_t *)&it->it_state)) &
		   MLC__IT_NEG;

	if (old == NULL || old->it_ns != it->it_ns ||
	    mlc__item_nsgen(old) != mlc__item_nsgen(it) ||
	    it->it_ns >= a->max_ns) {
		ck_pr_inc_64(&a->hdr->ah_items);
		if (neg)
			ck_pr_inc_64(&a->hdr->ah_neg_items);
		ns_count(a, it, true);
		if (old != NULL)
			count_unlinked(a, old, oldw);
		return;
	}
	if (neg != !!(MLC__ST_FLAGS(oldw) & MLC__IT_NEG)) {
		if (neg)
			ck_pr_inc_64(&a->hdr->ah_neg_items);
		else
			ck_pr_dec_64(&a->hdr->ah_neg_items);
	}
	nb = (uint64_t)it->it_klen + mlc__item_vlen(it);
	ob = (uint64_t)old->it_klen + mlc__item_vlen(old);
	if (nb != ob)
		mlc__ns_word_add(a, it->it_ns, &a->nsstats[it->it_ns].nt_bytes,
				 MLC__NS_BYTES_SHIFT, mlc__item_nsgen(it),
				 nb > ob ? nb - ob : ob - nb, nb > ob);
}

/* A key written again drops the second entry a writer that died inside
 * index_move() can leave: the key in both its buckets, each entry with its
 * own chunk, the same version and bytes (so a reader of either was
 * right).  Stripe locks held; @p ref is the entry the write keeps. */
static void
drop_copies(struct mlc_arena *a, const uint32_t b[2],
	    const struct mlc__key *k, const struct slot_ref *ref)
{
	uint16_t tag = key_tag(k->hash);

	for (int i = 0; i < 2; i++) {
		struct mlc__bucket *bk = &a->table[b[i]];

		for (int s = 0; s < MLC__SLOTS; s++) {
			uint64_t w = ck_pr_load_64(&bk->bk_slot[s]), gen;
			struct mlc__item *it;
			uint32_t room, st;

			if (w == 0 || MLC__SLOT_TAG(w) != tag ||
			    (bk == ref->bk && s == ref->s))
				continue;
			it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
			if (it == NULL || !item_matches(it, room, k))
				continue;
			st = ck_pr_load_32(&it->it_state);
			gen = mlc__item_gen(it);
			slot_store(bk, s, 0);
			count_unlinked(a, it, st);
			/* Under the stripe locks: a class lock is taken
			 * after them, never before (alloc.c only tries
			 * stripes). */
			mlc__free(a, MLC__SLOT_OFF(w), MLC__LIVE, gen);
		}
	}
}

static int
empty_slot(const struct mlc__bucket *bk)
{
	for (int s = 0; s < MLC__SLOTS; s++)
		if (ck_pr_load_64((uint64_t *)&bk->bk_slot[s]) == 0)
			return s;
	return -1;
}

#define MOVE_DEPTH 2		/* entries moved in a row for one new key */

/* What a chain of moves holds: the stripes locked (the new key's two,
 * then one per step tried), the buckets the chain must not move into
 * (full ones on its path), and the chunks to free once every lock is
 * dropped.  A chain that succeeds moves MOVE_DEPTH entries at most, and
 * index_move() stops at the first allocation that fails (the one that
 * may follow an inner move that succeeded), so free_off cannot fill up;
 * if it ever did, the chunk is freed at once (a class lock may be taken
 * under stripe locks, as drop_copies() does). */
struct move_ctx {
	uint32_t held[2 + MOVE_DEPTH];
	uint32_t avoid[2 + MOVE_DEPTH];
	int nheld, navoid, nfree;
	uint64_t free_off[MOVE_DEPTH], free_gen[MOVE_DEPTH];
};

static bool
in_list(const uint32_t *l, int n, uint32_t x)
{
	for (int i = 0; i < n; i++)
		if (l[i] == x)
			return true;
	return false;
}

/* The chunk @p off (allocation @p gen) of an entry moved away, to free
 * after the stripes are dropped. */
static void
move_defer_free(struct mlc_arena *a, struct move_ctx *mc, uint64_t off,
		uint64_t gen)
{
	if (mc->nfree == MOVE_DEPTH) {
		mlc__free(a, off, MLC__LIVE, gen);
		return;
	}
	mc->free_off[mc->nfree] = off;
	mc->free_gen[mc->nfree++] = gen;
}

/* Take the entry in slot @p s of bucket @p bk (word @p w, item @p it, its
 * other bucket @p alt; both stripes held) out of the index: expired,
 * purged, or a negative one over the quota.  Evicted (slot_evict()),
 * counted as reclaimed, its chunk freed after the stripes by its
 * generation. */
static void
drop_reclaimable(struct mlc_arena *a, struct move_ctx *mc,
		 struct mlc__bucket *bk, int s, uint64_t w,
		 const struct mlc__item *it, uint32_t alt)
{
	uint32_t kb[2] = { (uint32_t)(bk - a->table), alt };
	uint64_t gen = mlc__item_gen(it);

	slot_evict(a, kb, bk, s, it);
	ck_pr_inc_64(&a->hdr->ah_expired);
	move_defer_free(a, mc, MLC__SLOT_OFF(w), gen);
}

#ifdef MLC_PAUSE_POINTS
/* Test switch (pause.c): every Nth allocation for a move fails, as when
 * the arena has no chunk to give and nothing to evict. */
static bool
move_alloc_fails(void)
{
	static unsigned long n;

	return mlc__test_move_alloc_fail_every != 0 &&
	       ++n % mlc__test_move_alloc_fail_every == 0;
}
#else
#define move_alloc_fails() false
#endif

/* Move the entry in slot @p s of bucket @p from to an empty slot of its
 * other bucket; if that is full too, first make room there by moving one
 * of its entries on (up to @p depth more steps: cuckoo hashing's moves).
 * Stripes not held yet are tried, never waited for, so no lock order is
 * broken.  The entry is copied into a new chunk with the same version,
 * linked there, and only then unlinked here: a reader of the key finds one
 * or the other (one that found neither sees its first bucket's version
 * moved: mlc__table_get), and a writer dying between the two steps leaves
 * two equal entries with a chunk each, which the key's next write drops
 * (drop_copies).  1 when moved: the slot is empty and the old chunk is in
 * @p mc, to be freed by its generation; 0 when this entry cannot move;
 * -1 when an allocation failed, and no other move should be tried. */
static int
move_entry(struct mlc_arena *a, struct move_ctx *mc, uint32_t from, int s,
	   int depth)
{
	struct mlc__bucket *bk = &a->table[from], *to;
	uint64_t w = ck_pr_load_64(&bk->bk_slot[s]), noff, ngen, gen, hash;
	struct mlc__item *it, *nit;
	uint32_t room, st, alt, ls, bytes, vlen;
	bool locked = false;
	int t = -1, ci, ok = 0;

	if (w == 0)
		return 0;
	/* The other bucket from the slot's tag alone (key_buckets()), so
	 * that an entry with nowhere to go costs no read of its item. */
	alt = alt_bucket(a, from, MLC__SLOT_TAG(w));
	to = &a->table[alt];
	if (in_list(mc->avoid, mc->navoid, alt) ||
	    (depth == 0 && empty_slot(to) < 0))
		return 0;
	it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
	if (it == NULL)
		return 0;
	/* Linked in a bucket whose stripe we hold: stable, and LIVE. */
	st = ck_pr_load_32(&it->it_state);
	vlen = mlc__item_vlen(it);
	bytes = MLC__ITEM_HDR + (uint32_t)it->it_klen + vlen;
	if (MLC__ST_STATE(st) != MLC__LIVE || bytes > room ||
	    it->it_klen == 0 || (st & MLC__ST_CHAIN))
		return 0;	/* a chained item stays where it is */
	/* Its buckets are from and alt (alt_bucket() pairs them as
	 * key_buckets() does) if its key belongs in from under this tag. */
	hash = mlc__item_hash(a, MLC__SLOT_OFF(w));
	if (!mlc__table_slot_fits(a, hash, from, MLC__SLOT_TAG(w)))
		return 0;
	ls = alt & a->stripe_mask;
	if (!in_list(mc->held, mc->nheld, ls)) {
		if (stripe_lock(a, ls, true) < 0)
			return 0;
		mc->held[mc->nheld++] = ls;
		locked = true;
	}
	/* Both its stripes held: an entry the sweep would take first is
	 * not worth a chunk and a copy (until review AH an inner move
	 * copied expired entries on). */
	if (mlc__item_reclaimable(a, it, st, mlc__now_ms())) {
		drop_reclaimable(a, mc, bk, s, w, it, alt);
		ok = 1;
		goto out;
	}
	t = empty_slot(to);
	if (t < 0 && depth > 0) {
		mc->avoid[mc->navoid++] = alt;
		for (int u = 0; u < MLC__SLOTS && t < 0 && ok == 0; u++) {
			ok = move_entry(a, mc, alt, u, depth - 1);
			if (ok > 0)
				t = u;
		}
		mc->navoid--;
		if (ok < 0)
			goto out;
		ok = 0;
	}
	if (t < 0 || (ci = mlc__class_for(a, bytes)) < 0)
		goto out;
	if (move_alloc_fails() ||
	    mlc__alloc_move(a, (uint32_t)ci, hash, !(st & MLC__ST_SMALL),
			    &noff, &ngen) < 0) {
		ok = -1;
		goto out;
	}
	nit = (struct mlc__item *)(void *)(a->base + noff);
	if (MLC__ST_STATE(ck_pr_load_32(&nit->it_state)) != MLC__ALLOC ||
	    mlc__item_gen(nit) != ngen) {
		ok = -1;	/* not ours after all (alloc.c): leave it */
		goto out;
	}
	/* The entry is ours to read whole: its stripes are held. */
	gen = mlc__item_gen(it);
	nit->it_klen = it->it_klen;
	nit->it_ns = it->it_ns;
	mlc__item_set_genlen(nit, ngen, vlen);
	memcpy(nit + 1, it + 1, (size_t)it->it_klen + vlen);
	/* The key before LIVE: a sweep that sees LIVE hashes the key to
	 * find the entry's buckets (alloc.c). */
	ck_pr_fence_store();
	/* LIVE before the stamp is overwritten (see put_linked()), with
	 * its probation bit as alloc.c set it (the class's count of them
	 * includes this chunk). */
	ck_pr_store_32(&nit->it_state, MLC__ST_MAKE(MLC__LIVE,
						     MLC__ST_FLAGS(st)) |
		       (ck_pr_load_32(&nit->it_state) & MLC__ST_SMALL));
	ck_pr_fence_store();
	mlc__item_set_live(nit, mlc__item_nsgen(it), mlc__item_expire(it),
			   mlc__item_version(it));
	slot_store(to, t, (uint64_t)MLC__SLOT_TAG(w) << 48 | noff);
	if (ck_pr_load_32(&bk->bk_refs) & UINT32_C(1) << s)
		ck_pr_or_32(&to->bk_refs, UINT32_C(1) << t);
	count_replaced(a, nit, NULL, 0);
	MLC_PAUSE(MOVE_LINKED);
	slot_store(bk, s, 0);
	count_unlinked(a, it, st);
	ck_pr_inc_64(&a->hdr->ah_index_moves);
	move_defer_free(a, mc, MLC__SLOT_OFF(w), gen);
	ok = 1;
out:
	if (locked) {
		/* An entry moved into the bucket stays: its stripe is
		 * needed no longer (a writer of that key takes it). */
		mlc__lock_give(&a->stripes[ls]);
		mc->nheld--;
	}
	return ok;
}

/* Both of a new key's buckets (@p b, their stripes held) are full: make
 * room without evicting by moving entries on (above).  On success *@p ref
 * is the slot made empty. */
static bool
index_move(struct mlc_arena *a, const uint32_t b[2], struct move_ctx *mc,
	   struct slot_ref *ref)
{
	mc->held[0] = b[0] & a->stripe_mask;
	mc->held[1] = b[1] & a->stripe_mask;
	mc->avoid[0] = b[0];
	mc->avoid[1] = b[1];
	mc->nheld = mc->navoid = 2;
	mc->nfree = 0;
	for (int depth = 0; depth <= MOVE_DEPTH - 1; depth++) {
		for (int i = 0; i < 2; i++) {
			for (int s = 0; s < MLC__SLOTS; s++) {
				int ok = move_entry(a, mc, b[i], s, depth);

				if (ok < 0)
					return false;	/* no room to move */
				if (ok == 0)
					continue;
				*ref = (struct slot_ref){ &a->table[b[i]], s,
							  0, NULL, 0 };
				return true;
			}
		}
	}
	return false;
}

/* Is an entry of hash @p hash in the index now?  Only a hint, read
 * without a lock (an overwrite's new item skips probation, alloc.c): a
 * racing writer makes it wrong at worst.  By the slots' 16-bit tags
 * alone: reading the items too put two dependent cache misses before
 * every allocation (set 1.2x, miss -> store 1.3x slower, bench/compare.sh),
 * for a hint that another key's tag makes wrong once in ~4700 lookups of
 * a full pair of buckets. */
static bool
table_has_hint(const struct mlc_arena *a, uint64_t hash)
{
	uint16_t tag = key_tag(hash);
	uint32_t b[2];

	key_buckets(a, hash, b);
	for (int i = 0; i < 2; i++) {
		for (int s = 0; s < MLC__SLOTS; s++) {
			uint64_t w = ck_pr_load_64(
				(uint64_t *)&a->table[b[i]].bk_slot[s]);

			if (w != 0 && MLC__SLOT_TAG(w) == tag)
				return true;
		}
	}
	return false;
}

/* Link the chunk at @p off (allocation @p gen, ALLOC, filled) under @p k,
 * replacing the key's entry or a victim, and free what it replaced. */
static int
put_linked(struct mlc_arena *a, const struct mlc__key *k,
	   struct mlc__put *put, uint64_t off, struct mlc__item *it,
	   uint64_t gen)
{
	struct slot_ref ref;
	uint32_t b[2], oldw = 0;
	bool replace, purged, victim = false;
	uint64_t now = mlc__now_ms();
	struct move_ctx mc = { .nfree = 0 };
	int rc;

	key_buckets(a, k->hash, b);
	rc = stripes_lock(a, b, false);
	if (rc < 0)
		return rc;
	/* A store whose key carries a purged generation would link an item
	 * no reader sees in place of what the key holds now, which may be a
	 * value set after the purge: a lost write.  It is refused, and the
	 * caller reads the generation again (mlc_set, mlc_modify) or keeps
	 * its value out of L1 (a loader: load.c, store_checked()).  A purge
	 * after this read is one the store comes before. */
	if (ck_pr_load_32(&a->ns[k->ns].ns_gen) != k->nsgen) {
		stripes_unlock(a, b);
		return MLC_ESTALE;
	}
	replace = find_locked(a, b, k, &ref);
	if (replace)
		drop_copies(a, b, k, &ref);
	else
		pick_slot(a, b, now, &ref, &victim);
	if (ref.it != NULL)
		oldw = ck_pr_load_32(&ref.it->it_state);
	/* An item of an older namespace generation is a purged one: absent
	 * to a read-modify-write, as it is to every reader. */
	purged = replace && mlc__item_nsgen(ref.it) != k->nsgen;
	/* A read-modify-write stores only over what it read. */
	if ((put->cas == MLC__CAS_ABSENT && replace && !purged) ||
	    (put->cas == MLC__CAS_VERSION &&
	     (!replace || purged ||
	      mlc__item_version(ref.it) != put->cas_version))) {
		rc = MLC_ESTALE;
		goto out;
	}
	/* A loader's store loses to any set, delete or eviction of the key
	 * since the load began: it must not bring back what they
	 * replaced. */
	if (put->if_before != 0 &&
	    changed_locked(a, b, replace ? ref.it : NULL, put->if_before)) {
		rc = MLC_ESTALE;
		goto out;
	}
	/* Our chunk is ours until we are proven dead, so this holds; it is
	 * checked anyway, and a chunk that is not ours is never touched. */
	if (MLC__ST_STATE(ck_pr_load_32(&it->it_state)) != MLC__ALLOC ||
	    mlc__item_gen(it) != gen) {
		rc = -EOWNERDEAD;
		goto out;
	}
	/* Both buckets full: an entry that would be evicted for room and
	 * is worth keeping (not expired, purged, or over the negative
	 * quota) stays if one of the fourteen can move instead. */
	if (victim && ref.it != NULL && victim_rank(a, ref.it, true, now) != 0 &&
	    index_move(a, b, &mc, &ref)) {
		victim = false;
		oldw = 0;
	}
	/* The change begins: no reader passes our log cell from here on
	 * while we live (log.c). */
	mlc__log_changing(a, &put->log_seq);
	put->version = ck_pr_faa_64(&a->hdr->ah_version, 1) + 1;
	if (put->version > MLC__VERSION_MAX) {
		rc = -EOVERFLOW;	/* 2^56 writes: arena.h */
		goto out;
	}
	/* A flight's owner stores only while it owns the flight, asked
	 * after its version is taken: one that takes the flight over after
	 * this look reads its fence after our version, so its store is not
	 * refused by ours.  Asked before (load.c), a late owner stopped
	 * between its look and its store stored over a taker's fence: its
	 * stale value, put back, refused the taker's fresh one. */
	if (put->own_word != NULL) {
		ck_pr_fence_atomic_load();	/* the version taken, then */
		if (ck_pr_load_64(put->own_word) != put->own_expect) {
			rc = MLC_ESTALE;
			goto out;
		}
	}
	/* LIVE before the stamp (bytes 16..31: who allocated the chunk) is
	 * overwritten, never after: a sweep judges an ALLOC chunk
	 * by its stamp, and a stamp half overwritten by a writer stopped
	 * here would prove a live writer dead (alloc.c: orphaned()).  A
	 * LIVE chunk is left alone while its stripes are held (ours).  The
	 * key (copied by mlc__table_put()) before LIVE, as move_entry()
	 * orders it: a sweep that sees LIVE hashes the key to find its
	 * stripes (a compiler barrier on x86, a real one where stores may
	 * pass each other). */
	ck_pr_fence_store();
	ck_pr_store_32(&it->it_state, MLC__ST_MAKE(MLC__LIVE, put->flags) |
		       (ck_pr_load_32(&it->it_state) &
			(MLC__ST_SMALL | MLC__ST_CHAIN)));
	ck_pr_fence_store();
	MLC_PAUSE(PUT_LIVE);
	mlc__item_set_live(it, k->nsgen, put->expire, put->version);
	MLC_PAUSE(PUT_CLAIMED);
	/* A victim is noted as gone before it goes, as a delete is. */
	if (ref.it != NULL && victim)
		stripes_note_gone(a, b, mlc__item_version(ref.it));
	slot_store(ref.bk, ref.s, (uint64_t)key_tag(k->hash) << 48 | off);
	MLC_PAUSE(PUT_LINKED);
	count_replaced(a, it, ref.it, oldw);
	if (ref.it != NULL && victim)
		ck_pr_inc_64(&a->hdr->ah_index_evictions);
	ck_pr_inc_64(&a->hdr->ah_sets);
out:
	stripes_unlock(a, b);
	for (int i = 0; i < mc.nfree; i++)	/* moved entries' old chunks */
		mlc__free(a, mc.free_off[i], MLC__LIVE, mc.free_gen[i]);
	if (rc == 0 && ref.it != NULL) {
		/* Unlinked under the stripe locks, freed after them: by its
		 * generation, so a page move meanwhile makes this a no-op. */
		MLC_PAUSE(PUT_UNLOCKED);
		mlc__free(a, MLC__SLOT_OFF(ref.w), MLC__LIVE, ref.gen);
	}
	return rc;
}

/* The class to chain an item of key @p klen and value @p vlen into
 * (arena.h), or -1 to store it in one chunk of class @p ci: chained only
 * when that chunk would waste more than an eighth of it and a chain takes
 * fewer bytes, in the class whose chunks add up to the fewest, except
 * that a smaller chunk must save more than 1/64 of the bytes to win
 * (without that, a 300,000-byte value took 17 chunks of 17,768 B, 0.8%
 * fewer bytes than 9 of 33,824: twice the pieces to take, read and
 * sweep past), and no class that needs more than CHAIN_PIECES_MOST
 * pieces is chosen (a 550,000-byte value took 40 chunks of 13,792 B,
 * 3% fewer bytes than 13 of 43,688).  Classes of fewer than nine chunks a
 * page are never chained into: they are what wastes. */
#define CHAIN_PIECES_MOST 16
static int
chain_class(const struct mlc_arena *a, int ci, uint32_t klen, uint32_t vlen)
{
	uint64_t bytes = (uint64_t)MLC__ITEM_HDR + klen + vlen;
	uint64_t best = a->class_size[ci];
	int pick = -1;

	if ((uint64_t)a->class_size[ci] * 8 <= bytes * 9)
		return -1;
	for (int j = ci - 1; j >= 0; j--) {
		uint32_t c = a->class_size[j], n;

		if (c < MLC__CHAIN_MIN_CHUNK)
			break;
		if (a->classes[j].cl_per_page < 9)
			continue;
		n = mlc__chain_pieces(c, klen, vlen);
		if (n != 0 && n <= CHAIN_PIECES_MOST &&
		    (uint64_t)(n + 1) * c + best / 64 < best) {
			best = (uint64_t)(n + 1) * c;
			pick = j;
		}
	}
	return pick;
}

/* Copy @p k and @p put's value into the chained head @p it (ours, ALLOC,
 * its pieces recorded by mlc__alloc_chain()) and its pieces. */
static int
chain_fill(struct mlc_arena *a, struct mlc__item *it, uint64_t off,
	   const struct mlc__key *k, const struct mlc__put *put)
{
	uint32_t c = mlc__page_chunk(a, off);
	uint32_t n = mlc__chain_pieces(c, k->len, put->len), head, done;

	if (n == 0 || ck_pr_load_64(mlc__chain_count(it, c)) != n)
		return -EIO;	/* never: the head and its table are ours */
	head = mlc__chain_head_bytes(c, k->len, n);
	memcpy((char *)(it + 1) + k->len, put->data, head);
	done = head;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t po = ck_pr_load_64(mlc__chain_piece(it, c, i));
		uint32_t part = MLC_MIN(put->len - done, c - MLC__ITEM_HDR);

		memcpy((char *)(void *)(a->base + po) + MLC__ITEM_HDR,
		       (const char *)put->data + done, part);
		done += part;
	}
	return 0;
}

/* Store @p put under @p k, replacing any entry; put->version gets the new
 * L2 version.  -E2BIG if it can never fit, -ENOSPC if no room now.
 *
 * Its cache misses overlap instead of following each other: the two
 * buckets are asked for before the allocation (whose own miss is the new
 * chunk), the items their slots of this key's tag point to once the
 * buckets are in (find_locked() reads them).  Only hints (see
 * mlc__table_prefetch_items()); mlc_set() asks for the buckets even
 * earlier. */
int
mlc__table_put(struct mlc_arena *a, const struct mlc__key *k,
	       struct mlc__put *put)
{
	uint64_t bytes = (uint64_t)MLC__ITEM_HDR + k->len + put->len;
	struct mlc__item *it;
	uint64_t off, gen;
	int ci, rc, chain;
	bool known, keep;

	ci = mlc__class_for(a, bytes);
	if (ci < 0)
		return ci;
	if (put->expire > MLC__EXPIRE_MAX)
		put->expire = MLC__EXPIRE_MAX;	/* ~34.8 years: arena.h */
	mlc__table_prefetch_put(a, k->hash);
	known = table_has_hint(a, k->hash);
	/* A compare-and-set replacing the key's item must not evict it for
	 * its own chunk: it would then find the key gone, and mlc_modify
	 * would run fn again on nothing (a growing list appended to by
	 * mlc_modify lost everything at each eviction of its own making). */
	keep = put->cas == MLC__CAS_VERSION;
	/* The buckets are in: their items' lines load beside the
	 * allocation's misses, not after them. */
	mlc__table_prefetch_items(a, k->hash);
	chain = chain_class(a, ci, (uint32_t)k->len, (uint32_t)put->len);
	if (chain >= 0)
		rc = mlc__alloc_chain(a, (uint32_t)chain, (uint32_t)k->len,
				      (uint32_t)put->len, k->hash, known, keep,
				      &off, &gen);
	else
		rc = mlc__alloc(a, (uint32_t)ci, k->hash, known, keep, &off,
				&gen);
	/* A store refused for lack of room; an index move's allocation
	 * that finds none (move_entry()) is not one: the store goes on. */
	if (rc == -ENOSPC)
		ck_pr_inc_64(&a->hdr->ah_write_failures);
	if (rc < 0)
		return rc;
	it = (struct mlc__item *)(void *)(a->base + off);
	MLC_PAUSE(PUT_ALLOCATED);
	/* Ownership before the copy, never after: a writer copies only into
	 * the allocation it was given (which nobody reclaims before it is
	 * proven dead). */
	if (MLC__ST_STATE(ck_pr_load_32(&it->it_state)) != MLC__ALLOC ||
	    mlc__item_gen(it) != gen)
		return -EOWNERDEAD;
	/* Bytes 16..31 hold our stamp until put_linked() makes the chunk
	 * LIVE: the namespace generation is stored there, not here. */
	it->it_klen = (uint16_t)k->len;
	it->it_ns = (uint16_t)k->ns;
	mlc__item_set_genlen(it, gen, put->len);
	memcpy(it + 1, k->data, k->len);
	if (ck_pr_load_32(&it->it_state) & MLC__ST_CHAIN) {
		if ((rc = chain_fill(a, it, off, k, put)) < 0) {
			mlc__free(a, off, MLC__ALLOC, gen);
			return rc;
		}
	} else if (put->len) {
		memcpy((char *)(it + 1) + k->len, put->data, put->len);
	}
	MLC_PAUSE(PUT_COPIED);
	rc = put_linked(a, k, put, off, it, gen);
	if (rc < 0 && rc != -EOWNERDEAD)
		mlc__free(a, off, MLC__ALLOC, gen);
	return rc;
}

/* Remove @p k.  0 if it was there, -ENOENT if not; *version is the
 * delete's version either way.  With @p cas MLC__CAS_VERSION only if its
 * item has version @p expect, with MLC__CAS_ABSENT only if it is absent
 * (a purged item is) and the namespace was not purged since @p k's
 * generation was read: MLC_ESTALE otherwise (mlc_modify). */
static int
table_del(struct mlc_arena *a, const struct mlc__key *k, uint32_t cas,
	  uint64_t expect, uint64_t *seq, uint64_t *version)
{
	struct slot_ref ref;
	uint32_t b[2], w = 0;
	uint64_t ver;
	bool found, stale;
	int rc;

	key_buckets(a, k->hash, b);
	rc = stripes_lock(a, b, false);
	if (rc < 0)
		return rc;
	found = find_locked(a, b, k, &ref);
	if (found)
		drop_copies(a, b, k, &ref);
	if (cas == MLC__CAS_VERSION)
		stale = !found || mlc__item_version(ref.it) != expect;
	else if (cas == MLC__CAS_ABSENT)
		stale = ck_pr_load_32(&a->ns[k->ns].ns_gen) != k->nsgen ||
			(found && mlc__item_nsgen(ref.it) == k->nsgen);
	else
		stale = false;
	if (stale) {
		stripes_unlock(a, b);
		return MLC_ESTALE;
	}
	mlc__log_changing(a, seq);	/* as in put_linked() */
	ver = ck_pr_faa_64(&a->hdr->ah_version, 1) + 1;
	/* Record the delete on both stripes: a load that started before it
	 * must not store its older result afterwards (fencing). */
	stripes_note_gone(a, b, ver);
	if (found) {
		w = ck_pr_load_32(&ref.it->it_state);
		slot_store(ref.bk, ref.s, 0);
		MLC_PAUSE(DEL_UNLINKED);
		count_unlinked(a, ref.it, w);
	}
	stripes_unlock(a, b);
	*version = ver;
	if (!found)
		return -ENOENT;
	MLC_PAUSE(DEL_UNLOCKED);
	mlc__free(a, MLC__SLOT_OFF(ref.w), MLC__LIVE, ref.gen);
	return 0;
}

int
mlc__table_del(struct mlc_arena *a, const struct mlc__key *k,
	       uint64_t *seq, uint64_t *version)
{
	return table_del(a, k, MLC__CAS_NONE, 0, seq, version);
}

/* May a loader whose store of @p k failed keep its value in L1 only
 * (load.c)?  1 (no) if the key was set, deleted or evicted after version
 * @p fence (what its store would have said), or if L2 holds a value of
 * the key's generation that is fresh at @p now, which an L1-only copy
 * would hide: one set after the caller's look at L2 but before its fence
 * was taken.  0 if it may, or what taking the stripe locks failed with. */
int
mlc__table_changed_since(struct mlc_arena *a, const struct mlc__key *k,
			 uint64_t fence, uint64_t now)
{
	struct slot_ref ref;
	uint32_t b[2];
	bool changed, found;
	uint64_t exp;
	int rc;

	key_buckets(a, k->hash, b);
	rc = stripes_lock(a, b, false);
	if (rc < 0)
		return rc;
	found = find_locked(a, b, k, &ref);
	changed = changed_locked(a, b, found ? ref.it : NULL, fence);
	if (!changed && found && mlc__item_nsgen(ref.it) == k->nsgen) {
		exp = mlc__item_expire(ref.it);
		changed = exp == 0 || exp > now;
	}
	stripes_unlock(a, b);
	return changed;
}

/* Delete @p k only if its item still has version @p expect, or with
 * @p expect 0 only if it is still absent (mlc_modify); MLC_ESTALE
 * otherwise.  Absent, the delete only fences loads and is published, for
 * the L1s that may still hold the key. */
int
mlc__table_del_if(struct mlc_arena *a, const struct mlc__key *k,
		  uint64_t expect, uint64_t *seq, uint64_t *version)
{
	return table_del(a, k, expect ? MLC__CAS_VERSION : MLC__CAS_ABSENT,
			 expect, seq, version);
}

/* Wait until no writer is inside @p k's buckets: take and drop its stripe
 * locks, which closes the window of an owner that died in it (a reader
 * never takes them, so it waits for a writer of the stripe to do that). */
int
mlc__table_settle(struct mlc_arena *a, const struct mlc__key *k)
{
	uint32_t b[2];
	int rc;

	key_buckets(a, k->hash, b);
	rc = stripes_lock(a, b, false);
	if (rc == 0)
		stripes_unlock(a, b);
	return rc;
}

/* Batched lookups (mlc_get_bulk) and stores: start the memory loads of a
 * key's two buckets now, and once they are in, the loads of the items their
 * matching slots point to, so that many misses overlap. */
void
mlc__table_prefetch(const struct mlc_arena *a, uint64_t hash)
{
	uint32_t b[2];

	key_buckets(a, hash, b);
	__builtin_prefetch(&a->table[b[0]]);
	__builtin_prefetch(&a->table[b[1]]);
}

/* The ghost line the allocation for a new key of hash @p hash looks at
 * (alloc.c). */
void
mlc__table_prefetch_ghost(const struct mlc_arena *a, uint64_t hash)
{
	__builtin_prefetch(&a->ghost[hash & a->ghost_mask]);
}

/* A store's loads, started early: the two buckets and the ghost line. */
void
mlc__table_prefetch_put(const struct mlc_arena *a, uint64_t hash)
{
	mlc__table_prefetch(a, hash);
	mlc__table_prefetch_ghost(a, hash);
}

void
mlc__table_prefetch_items(const struct mlc_arena *a, uint64_t hash)
{
	uint16_t tag = key_tag(hash);
	uint32_t b[2];

	key_buckets(a, hash, b);
	for (int i = 0; i < 2; i++) {
		for (int s = 0; s < MLC__SLOTS; s++) {
			uint64_t w = ck_pr_load_64(
				(uint64_t *)&a->table[b[i]].bk_slot[s]);
			uint64_t off = MLC__SLOT_OFF(w);

			/* Only a hint: an offset gone stale meanwhile
			 * prefetches a harmless line of the arena. */
			if (w != 0 && MLC__SLOT_TAG(w) == tag &&
			    off >= a->pages_off && off < a->pages_end)
				__builtin_prefetch(a->base + off);
		}
	}
}

/* The hash of the key of the LIVE item at @p off, which keeps none
 * (arena.h): its class lock or stripes are held, so the key is stable.  A
 * length that leaves the page (a corrupt item) hashes as 0, whose buckets
 * hold no slot of it. */
uint64_t
mlc__item_hash(const struct mlc_arena *a, uint64_t off)
{
	const struct mlc__item *it;
	uint32_t room, klen;

	uint64_t h = 0;

	if ((it = mlc__item_at(a, off, &room)) == NULL)
		return 0;
	/* The key after the state the caller read: a writer stores it
	 * before it makes the chunk LIVE.  TSan models neither ck_pr's
	 * plain stores nor its fences, and would take the key's bytes for a
	 * race with their writer: not recorded (RACY_BEGIN()). */
	ck_pr_fence_load();
	RACY_BEGIN();
	klen = ck_pr_load_16((uint16_t *)&it->it_klen);
	if (klen != 0 && (uint64_t)MLC__ITEM_HDR + klen <= room)
		h = mlc__hash(a->seed, ck_pr_load_16((uint16_t *)&it->it_ns),
			      it + 1, klen);
	RACY_END();
	return h;
}

/* The allocator's CLOCK hand at the LIVE chunk at @p off, its key's hash
 * @p hash (mlc__item_hash()): was it read since the hand last passed?
 * Test and clear its slot's bit (class lock held; no stripe lock: a bit is
 * only a hint, and a slot that changes meanwhile at worst costs or grants
 * one second chance).  A chunk no slot points to has no bit: false. */
bool
mlc__table_ref_take(struct mlc_arena *a, uint64_t off, uint64_t hash)
{
	uint32_t b[2];

	key_buckets(a, hash, b);
	for (int i = 0; i < 2; i++) {
		struct mlc__bucket *bk = &a->table[b[i]];

		for (int s = 0; s < MLC__SLOTS; s++) {
			uint32_t bit = UINT32_C(1) << s;

			if (MLC__SLOT_OFF(ck_pr_load_64(&bk->bk_slot[s])) != off)
				continue;
			if (!(ck_pr_load_32(&bk->bk_refs) & bit))
				return false;
			ck_pr_and_32(&bk->bk_refs, ~bit);
			return true;
		}
	}
	return false;
}

/* Is the LIVE chunk at @p off, its key's hash @p hash, linked by no slot
 * (an orphan: alloc.c, class_left_free())?  1 if so, 0 if linked, -EBUSY
 * if its stripes are held (tried, never waited for).  Judged under them:
 * a writer makes its chunk LIVE and links it under them, so no chunk is
 * seen between the two. */
int
mlc__table_chunk_orphan(struct mlc_arena *a, uint64_t off, uint64_t hash)
{
	int orphan = 1;
	uint32_t b[2];

	key_buckets(a, hash, b);
	if (stripes_lock(a, b, true) < 0)
		return -EBUSY;
	for (int i = 0; i < 2 && orphan; i++)
		for (int s = 0; s < MLC__SLOTS; s++)
			if (MLC__SLOT_OFF(ck_pr_load_64(
				    &a->table[b[i]].bk_slot[s])) == off)
				orphan = 0;
	stripes_unlock(a, b);
	return orphan;
}

/* The allocator's eviction: take the LIVE chunk at @p off, its key's hash
 * @p hash (mlc__item_hash()), out of the index if its stripes are free
 * right now.  *orphan says it was not linked at all (left by a dead writer,
 * or unlinked by one about to free it). */
bool
mlc__table_unlink_chunk(struct mlc_arena *a, uint64_t off, uint64_t hash,
			bool *orphan)
{
	struct mlc__item *it = (struct mlc__item *)(void *)(a->base + off);
	uint32_t b[2];

	key_buckets(a, hash, b);
	if (stripes_lock(a, b, true) < 0)
		return false;
	*orphan = true;
	for (int i = 0; i < 2 && *orphan; i++) {
		struct mlc__bucket *bk = &a->table[b[i]];

		for (int s = 0; s < MLC__SLOTS; s++) {
			if (MLC__SLOT_OFF(ck_pr_load_64(&bk->bk_slot[s])) != off)
				continue;
			slot_evict(a, b, bk, s, it);
			*orphan = false;
			break;
		}
	}
	stripes_unlock(a, b);
	return true;
}
