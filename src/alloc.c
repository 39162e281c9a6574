/*
 * The allocator: a pool of pages, each carved into the chunks of one size
 * class; a CLOCK hand per class; pages moved between classes as demand
 * shifts.
 *
 * Locks, in the only order they are taken: a class lock, then the pool lock
 * or (try-lock only) index stripe locks.  Writers take stripe locks without
 * holding a class lock, and free chunks after dropping them.
 *
 * Chunk states (it_state):  FREE -> ALLOC   class lock, on allocation
 *                           ALLOC -> LIVE   its writer, under a stripe lock
 *                           LIVE/ALLOC -> FREE or ALLOC   class lock
 *                           ALLOC -> PIECE -> FREE or ALLOC   class lock
 *
 * Chained items (arena.h): a head and its pieces are chunks of the class
 * that owns the head's page.  mlc__alloc_chain() takes the pieces under
 * that lock, and whoever frees or reclaims the head frees the pieces with
 * it, under the same lock (chain_drop()).  A piece is in use while the
 * head it names is still that allocation (piece_owned()); one left behind
 * by an allocator that died half-way is reclaimed by the sweep.  A piece
 * is freed only after its head left LIVE, which a linked head does only
 * once unlinked: so a reader that validated the head (its bucket's
 * version, or its identity) read pieces that were its own.
 *
 * Identity: every allocation gives the chunk a new generation (the low 40
 * bits of it_genlen, from its page's pg_gen, which only grows, whoever
 * owns the page).  Every transition out of ALLOC or LIVE is made under the
 * class lock that owns the page, and only by a party that proves, under
 * that lock, that the chunk at that offset is still the allocation it
 * knows: the page still in that class, the offset still a chunk boundary,
 * the generation still the same.  A late freer whose chunk was freed,
 * moved to another class or reused does nothing (counted as stale_frees).
 * Chunks are never unmapped, so a reader holding an old offset reads
 * harmless bytes inside the arena, and its bucket version check rejects
 * them; readers never write into chunks (their CLOCK bits are in the
 * buckets).
 *
 * An ALLOC chunk belongs to its writer until the writer is proven dead
 * (pid, start time and pid namespace: proc.c), never because it is old:
 * a writer stopped for an hour still owns what it allocated, so it can
 * copy into it without checking.
 */
#include <sched.h>
#include <unistd.h>

#include <ck_pr.h>

#include "mlc-int.h"
#include "pause.h"

#define SWEEP_MAX 65536		/* chunks the hand may visit per allocation */
#define STEAL_TRIES 8		/* pages tried per victim class */
#define STEAL_CLASSES 3		/* victim classes tried per page move */
#define STEAL_WAIT_MS 100	/* a lock a writer could do without
				 * waited for (mlc__lock_take_bounded()):
				 * another class's (page_steal(),
				 * alloc_borrow()), an index move's, a
				 * free's */
#define LOOKAHEAD 64		/* chunks scanned for an expired entry
				 * before an unread live one is evicted */
#define ALLOC_ATTEMPTS 6	/* rounds of free list, pool, sweep, move */
#define FORCE_AFTER 3		/* rounds after which CLOCK bits are ignored */

#define PAGE_RETRIES 3		/* waits for writers to link a page's chunks */
#define STEAL_BACKOFF 64	/* allocations without a page move after a
				 * class that wants one found no victim */
#define WANT_FRAC 8		/* a class wants another page once its
				 * demand is worth 1/8 page more than it
				 * owns (class_wants_page()) */
#define DEMAND_SPAN 1		/* all demand halves each time the chunk
				 * bytes allocated since reach the pages'
				 * bytes this many times (demand_add()) */
#define STEAL_GAP 3		/* pages: a wanted move needs the thief's
				 * shortfall and the victim's surplus to add
				 * up to this (steal_victims()) */
#define CL_BACKOFF_ONE 0x100u	/* cl_flags bits 8-15: that countdown */
#define CL_BACKOFF(f)	(((f) >> 8) & 0xffu)

/* ---- chunk and page addressing ------------------------------------ */

static uint64_t
chunk_off(const struct mlc_arena *a, uint32_t page, uint32_t size,
	  uint32_t idx)
{
	return a->pages_off + ((uint64_t)page << a->page_shift) +
	       (uint64_t)idx * size;
}

/* The inverse: which chunk of @p size bytes in its page @p off falls in. */
static uint32_t
chunk_idx(const struct mlc_arena *a, uint64_t off, uint32_t size)
{
	return mlc__off_in_page(a, off) / size;
}

/* A set of states for chunk_owned(). */
#define ST_BIT(state)	(UINT32_C(1) << (state))

/* Is the chunk at @p off of page @p p (class @p c, its lock held) still
 * the allocation @p gen, in one of the states @p states (ST_BIT()s)?  The
 * proof every freer and reclaimer gives before it touches a chunk.  The
 * state word is read once, and *@p wp (if not NULL) is that word: a
 * writer makes its chunk LIVE without this lock, and one look for LIVE
 * and then another for ALLOC could both miss a chunk that went from one
 * to the other in between (a sweep took a live chained value's piece for
 * an orphan's that way: internals.md, "Chained items").  The generation
 * cannot move under the lock: only an allocation changes it (the writer
 * stores the same one again with its length). */
static struct mlc__item *
chunk_owned(const struct mlc_arena *a, const struct mlc__class *c,
	    uint32_t p, uint64_t off, uint32_t states, uint64_t gen,
	    uint32_t *wp)
{
	uint32_t in_page = mlc__off_in_page(a, off);
	uint32_t k = in_page / c->cl_size;
	struct mlc__item *it;
	uint32_t w;

	if (k >= c->cl_per_page || k * c->cl_size != in_page)
		return NULL;		/* not a chunk of this carving */
	it = mlc__chunk_item(a, p, c->cl_size, k);
	w = ck_pr_load_32(&it->it_state);
	if (!(states & ST_BIT(MLC__ST_STATE(w))) || mlc__item_gen(it) != gen)
		return NULL;
	if (wp != NULL)
		*wp = w;
	return it;
}

/* Make chunk @p idx of page @p p (class lock held) a new allocation for
 * this process: a new generation and the writer's stamp.  The generation
 * is stored before the state: a freer that sees ALLOC under the lock sees
 * its generation too (both stores are under the lock). */
/* A chunk of class @p c (lock held) leaves ALLOC or LIVE (@p w: its state
 * word): if it was on probation, the class counts one fewer. */
static void
small_drop(struct mlc__class *c, uint32_t w)
{
	if ((w & MLC__ST_SMALL) && (MLC__ST_STATE(w) == MLC__ALLOC ||
				    MLC__ST_STATE(w) == MLC__LIVE) &&
	    c->cl_nsmall > 0)
		c->cl_nsmall--;
}

/* Put an ALLOC or LIVE chunk of class @p c (lock held, ownership proven)
 * back to FREE. */
static void
chunk_release(struct mlc__class *c, struct mlc__item *it)
{
	small_drop(c, ck_pr_load_32(&it->it_state));
	ck_pr_store_32(&it->it_state, MLC__ST_MAKE(MLC__FREE, 0));
}

static uint64_t
chunk_take(struct mlc_arena *a, struct mlc__class *c, uint32_t p,
	   struct mlc__item *it)
{
	struct mlc__page *pg = &a->pages[p];
	uint64_t gen = ++pg->pg_gen & MLC__GEN_MASK;	/* first: it only grows */

	if (gen == 0)		/* 0 is a carved chunk's: never handed out */
		gen = ++pg->pg_gen & MLC__GEN_MASK;
	small_drop(c, ck_pr_load_32(&it->it_state));
	mlc__item_set_genlen(it, gen, 0);
	/* Who allocated it, for a proof of death if it never links it. */
	ck_pr_store_32(&it->it_pid, (uint32_t)mlc__pid());
	ck_pr_store_32(&it->it_pidns, mlc__proc_ns());
	ck_pr_store_64(&it->it_start, mlc__proc_stamp_start());
	ck_pr_fence_store();
	ck_pr_store_32(&it->it_state, MLC__ST_MAKE(MLC__ALLOC, 0));
	return gen;
}

/* ---- page lists (class lock held) ---------------------------------- */

static void
partial_link(struct mlc_arena *a, struct mlc__class *c, uint32_t p)
{
	struct mlc__page *pg = &a->pages[p];

	pg->pg_pprev = 0;
	pg->pg_pnext = c->cl_partial;
	if (c->cl_partial)
		a->pages[c->cl_partial - 1].pg_pprev = p + 1;
	c->cl_partial = p + 1;
}

static void
partial_unlink(struct mlc_arena *a, struct mlc__class *c, uint32_t p)
{
	struct mlc__page *pg = &a->pages[p];

	if (pg->pg_pprev)
		a->pages[pg->pg_pprev - 1].pg_pnext = pg->pg_pnext;
	else if (c->cl_partial == p + 1)
		c->cl_partial = pg->pg_pnext;
	if (pg->pg_pnext)
		a->pages[pg->pg_pnext - 1].pg_pprev = pg->pg_pprev;
	pg->pg_pnext = pg->pg_pprev = 0;
}

static void
ring_link(struct mlc_arena *a, struct mlc__class *c, uint32_t p)
{
	struct mlc__page *pg = &a->pages[p];

	if (c->cl_ring == 0) {
		pg->pg_next = pg->pg_prev = p + 1;
		c->cl_ring = p + 1;
		return;
	}
	pg->pg_next = c->cl_ring;
	pg->pg_prev = a->pages[c->cl_ring - 1].pg_prev;
	a->pages[pg->pg_prev - 1].pg_next = p + 1;
	a->pages[c->cl_ring - 1].pg_prev = p + 1;
}

static void
ring_unlink(struct mlc_arena *a, struct mlc__class *c, uint32_t p)
{
	struct mlc__page *pg = &a->pages[p];

	if (pg->pg_next == p + 1) {
		c->cl_ring = 0;
	} else {
		a->pages[pg->pg_prev - 1].pg_next = pg->pg_next;
		a->pages[pg->pg_next - 1].pg_prev = pg->pg_prev;
		if (c->cl_ring == p + 1)
			c->cl_ring = pg->pg_next;
	}
	if (c->cl_hand_page == p + 1) {
		c->cl_hand_page = c->cl_ring;
		c->cl_hand_chunk = 0;
	}
	if (c->cl_shand_page == p + 1) {
		c->cl_shand_page = c->cl_ring;
		c->cl_shand_chunk = 0;
	}
	pg->pg_next = pg->pg_prev = 0;
}

/* A page of class @p c (lock held) became empty (@p d 1: every chunk
 * free) or stopped being so (-1).  The class's count is exact under its
 * lock; the header's sum is a hint, moved after it, that tells an
 * allocation about to evict whether some class has a page it could take
 * for nothing (empty_steal()).  A holder killed between the two, or one
 * preempted there while another recounts, leaves the sum off by one:
 * mlc__alloc_heal() sets it to the counts again, once a second. */
static void
empty_add(struct mlc_arena *a, struct mlc__class *c, int32_t d)
{
	c->cl_empty += (uint32_t)d;
	MLC_PAUSE(EMPTY_COUNTED);
	ck_pr_add_32((uint32_t *)&a->hdr->ah_empty_pages, (uint32_t)d);
}

/* Set the header's sum of empty pages to the classes' counts, unless it
 * moved meanwhile (above).  The counts are read without their locks: a
 * count read just before its holder moves it and the sum is fixed by the
 * next recount. */
static void
empty_recount(struct mlc_arena *a, uint32_t seen)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < a->nclasses; i++)
		sum += ck_pr_load_32(&a->classes[i].cl_empty);
	ck_pr_cas_32((uint32_t *)&a->hdr->ah_empty_pages, seen, sum);
}

/* Put a chunk that is now FREE on its page's list. */
static void
chunk_push(struct mlc_arena *a, struct mlc__class *c, uint32_t p,
	   uint32_t idx)
{
	struct mlc__page *pg = &a->pages[p];
	struct mlc__item *it = mlc__chunk_item(a, p, c->cl_size, idx);

	/* A stale reader may still be validating this chunk: a ck store,
	 * as every shared word that a reader can race with. */
	ck_pr_store_32(&it->it_next, pg->pg_free);
	pg->pg_free = idx + 1;
	if (pg->pg_nfree++ == 0)
		partial_link(a, c, p);
	if (pg->pg_nfree == c->cl_per_page)
		empty_add(a, c, 1);
}

/* Take a free chunk of class @p c, marked ALLOC. */
static bool
chunk_pop(struct mlc_arena *a, struct mlc__class *c, uint64_t *off,
	  uint64_t *gen)
{
	uint32_t p, idx;
	struct mlc__page *pg;
	struct mlc__item *it;

	if (c->cl_partial == 0)
		return false;
	p = c->cl_partial - 1;
	pg = &a->pages[p];
	idx = pg->pg_free - 1;
	it = mlc__chunk_item(a, p, c->cl_size, idx);
	pg->pg_free = ck_pr_load_32(&it->it_next);
	if (pg->pg_nfree == c->cl_per_page)
		empty_add(a, c, -1);
	if (--pg->pg_nfree == 0)
		partial_unlink(a, c, p);
	*off = chunk_off(a, p, c->cl_size, idx);
	*gen = chunk_take(a, c, p, it);
	MLC_PAUSE(ALLOC_POPPED);
	return true;
}

static void
carve_chunks(struct mlc_arena *a, struct mlc__class *c, uint32_t p)
{
	for (uint32_t k = c->cl_per_page; k-- > 0;) {
		struct mlc__item *it = mlc__chunk_item(a, p, c->cl_size, k);

		ck_pr_store_32(&it->it_state, MLC__ST_MAKE(MLC__FREE, 0));
		mlc__item_set_genlen(it, 0, 0);
		chunk_push(a, c, p, k);
	}
}

/* ---- chained items (class lock held) -------------------------------- */

/* Is the piece @p pc of class @p c still its head's: the head it names
 * is still that allocation, in this class, ALLOC or LIVE and chained?
 * Then *@p hp, *@p hk: the head's page and chunk. */
static bool
piece_owned(const struct mlc_arena *a, const struct mlc__class *c,
	    const struct mlc__item *pc, uint32_t *hp, uint32_t *hk)
{
	/* A PIECE's back reference is written right after it becomes PIECE,
	 * both only under this lock (mlc__alloc_chain(), chain_drop()):
	 * stable here.  A writer that died between the two left its stamp
	 * in those bytes, which names no chunk of this class (a pid
	 * namespace's inode in the offset's high half; at worst, with an
	 * unknown namespace, some chunk that is no head of that generation,
	 * and a head never lists the piece, so it is reclaimed once that
	 * chunk changes).  The head it names may have been freed, moved
	 * with its page or reused since: checked below, under the same
	 * lock. */
	uint64_t hoff = ck_pr_load_64((uint64_t *)&pc->it_head);
	uint64_t hgen = ck_pr_load_64((uint64_t *)&pc->it_hgen);
	uint32_t p, w;

	if (!mlc__chunk_start(a, hoff, (uint32_t)(c - a->classes), c->cl_size))
		return false;
	p = mlc__off_page(a, hoff);
	/* ALLOC or LIVE in one look (chunk_owned()): a head going live
	 * beside this sweep keeps its pieces. */
	if (chunk_owned(a, c, p, hoff, ST_BIT(MLC__ALLOC) | ST_BIT(MLC__LIVE),
			hgen, &w) == NULL || !(w & MLC__ST_CHAIN))
		return false;
	*hp = p;
	*hk = chunk_idx(a, hoff, c->cl_size);
	return true;
}

/* Free the pieces of the chained head @p h (offset @p hoff, generation
 * @p hgen, ownership proven by the caller), before the head itself
 * leaves ALLOC or LIVE.  Only pieces that name this head are touched: a
 * table entry is the head's own record, a piece's back reference the
 * proof. */
static void
chain_drop(struct mlc_arena *a, struct mlc__class *c, struct mlc__item *h,
	   uint64_t hoff, uint64_t hgen)
{
	uint32_t ci = (uint32_t)(c - a->classes);
	/* The head's table is written only by its allocator, under this
	 * lock (mlc__alloc_chain()); the count last, so what it counts is
	 * recorded.  A count never stored (the head's old bytes) is past
	 * MLC__CHAIN_MAX or names chunks that do not name this head. */
	uint64_t n = ck_pr_load_64(mlc__chain_count(h, c->cl_size));

	if (n > MLC__CHAIN_MAX)
		n = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = ck_pr_load_64(mlc__chain_piece(h, c->cl_size,
							       i));
		struct mlc__item *it;
		uint32_t p, k;

		if (!mlc__chunk_start(a, off, ci, c->cl_size))
			continue;
		p = mlc__off_page(a, off);
		k = chunk_idx(a, off, c->cl_size);
		it = mlc__chunk_item(a, p, c->cl_size, k);
		if (MLC__ST_STATE(ck_pr_load_32(&it->it_state)) !=
			    MLC__PIECE ||
		    ck_pr_load_64(&it->it_head) != hoff ||
		    ck_pr_load_64(&it->it_hgen) != hgen)
			continue;
		chunk_release(c, it);
		chunk_push(a, c, p, k);
	}
	ck_pr_store_64(mlc__chain_count(h, c->cl_size), 0);
	MLC_PAUSE(CHAIN_DROPPED);
}

/* The chunk @p k of page @p p (class @p c, lock held, ownership proven)
 * is about to leave ALLOC or LIVE: if it is a chained head, its pieces
 * go first. */
static void
chain_leave(struct mlc_arena *a, struct mlc__class *c, uint32_t p,
	    uint32_t k, struct mlc__item *it)
{
	if (ck_pr_load_32(&it->it_state) & MLC__ST_CHAIN)
		chain_drop(a, c, it, chunk_off(a, p, c->cl_size, k),
			   mlc__item_gen(it));
}

/* ---- page moves in progress ---------------------------------------- */

/* Which pages a class owns (pg_class, cl_pages) and which the pool holds
 * (its list and ah_pool_free) change under class and pool locks that
 * mlc_arena_check() cannot take.  So before changing any of it, a lock
 * holder marks the structure its lock guards and counts a move begun; it
 * clears the mark once that structure adds up again.  A rebuild after a
 * dead holder does the same, and its end clears the dead one's mark.  A
 * tally that began with no mark set and ended with the count unchanged
 * saw no change at all (check.c: check_pages()); a mark left set by a
 * stopped or dead holder shows as a move in progress, not as damage. */
static void
moving_begin(struct mlc_arena *a, uint32_t *mark)
{
	ck_pr_store_32(mark, 1);
	ck_pr_fence_store();		/* marked before counted ... */
	ck_pr_inc_64(&a->hdr->ah_moves_begun);
	ck_pr_fence_store();		/* ... counted before any change */
}

static void
moving_end(uint32_t *mark)
{
	ck_pr_fence_store();		/* every change, then the mark */
	ck_pr_store_32(mark, 0);
}

/* ---- repair -------------------------------------------------------- */

/* The owner of a class lock died: rebuild the class's lists from the
 * page descriptors and the chunk states, which are each one store. */
static void
class_rebuild(struct mlc_arena *a, void *ctx)
{
	uint32_t ci = (uint32_t)(uintptr_t)ctx;
	struct mlc__class *c = &a->classes[ci];

	moving_begin(a, &c->cl_moving);
	empty_add(a, c, -(int32_t)c->cl_empty);	/* recounted below */
	c->cl_ring = c->cl_partial = 0;
	c->cl_hand_page = c->cl_hand_chunk = 0;
	c->cl_shand_page = c->cl_shand_chunk = 0;
	c->cl_pages = 0;
	c->cl_nsmall = 0;
	for (uint32_t p = 0; p < a->npages; p++) {
		struct mlc__page *pg = &a->pages[p];

		if (pg->pg_class != ci + 1)
			continue;
		pg->pg_free = pg->pg_nfree = 0;
		pg->pg_pnext = pg->pg_pprev = 0;
		ring_link(a, c, p);
		c->cl_pages++;
		if (pg->pg_carving) {
			/* Drained before its carving began: all free. */
			carve_chunks(a, c, p);
			pg->pg_carving = 0;
			continue;
		}
		for (uint32_t k = c->cl_per_page; k-- > 0;) {
			struct mlc__item *it = mlc__chunk_item(a, p, c->cl_size, k);

			uint32_t st = MLC__ST_STATE(ck_pr_load_32(&it->it_state));

			/* Anything but ALLOC, LIVE or PIECE is free: a page
			 * carved half-way holds bytes of its previous class.
			 * A PIECE stays: the sweep frees it if its head is
			 * gone. */
			if ((st == MLC__ALLOC || st == MLC__LIVE) &&
			    (ck_pr_load_32(&it->it_state) & MLC__ST_SMALL))
				c->cl_nsmall++;
			if (st != MLC__ALLOC && st != MLC__LIVE &&
			    st != MLC__PIECE) {
				ck_pr_store_32(&it->it_state,
					       MLC__ST_MAKE(MLC__FREE, 0));
				chunk_push(a, c, p, k);
			}
		}
	}
	/* The dead holder may have been freeing a chunk it had unlinked
	 * (FREE_LOCKED): LIVE, and linked nowhere.  Only the class's sweep
	 * would free it, and a class that never allocates again kept it for
	 * good; the next heal walks the class for it (class_left_free(),
	 * test-evict test_bounded_take_repairs, review AL). */
	ck_pr_store_32(&c->cl_left, 1);
	moving_end(&c->cl_moving);
}

static void
pool_rebuild(struct mlc_arena *a, void *ctx)
{
	struct mlc__hdr *h = a->hdr;

	(void)ctx;
	moving_begin(a, &h->ah_pool_moving);
	h->ah_pool_head = 0;
	h->ah_pool_free = 0;
	for (uint32_t p = a->npages; p-- > 0;) {
		if (a->pages[p].pg_class != 0)
			continue;
		a->pages[p].pg_next = h->ah_pool_head;
		h->ah_pool_head = p + 1;
		h->ah_pool_free++;
	}
	moving_end(&h->ah_pool_moving);
}

static int
class_lock(struct mlc_arena *a, uint32_t ci)
{
	return mlc__lock_take(a, &a->classes[ci].cl_lock, class_rebuild,
			      (void *)(uintptr_t)ci);
}

/* class_lock(), waiting at most STEAL_WAIT_MS when @p bounded
 * (-ETIMEDOUT then): for a class the caller could do without. */
static int
class_lock_for(struct mlc_arena *a, uint32_t ci, bool bounded)
{
	if (!bounded)
		return class_lock(a, ci);
	return mlc__lock_take_bounded(a, &a->classes[ci].cl_lock,
				      STEAL_WAIT_MS, class_rebuild,
				      (void *)(uintptr_t)ci);
}

/* ---- pages --------------------------------------------------------- */

/* Give page @p p to class @p ci (its lock held) and carve it into free
 * chunks.  pg_class is one store: a crash before or after it leaves the
 * page where a rebuild of either owner finds it. */
static void
page_carve(struct mlc_arena *a, uint32_t ci, uint32_t p)
{
	struct mlc__class *c = &a->classes[ci];
	struct mlc__page *pg = &a->pages[p];

	/* Marked first: a carver killed half-way leaves chunks holding
	 * bytes of the page's previous class, which a rebuild must not
	 * read as states; it carves a marked page again instead. */
	moving_begin(a, &c->cl_moving);
	pg->pg_carving = 1;
	ck_pr_fence_store();
	MLC_PAUSE(CARVE_MARKED);
	pg->pg_class = ci + 1;
	pg->pg_free = pg->pg_nfree = 0;
	ring_link(a, c, p);
	c->cl_pages++;
	mlc__arena_populate(a, a->pages_off + (uint64_t)p * a->page_size,
			    a->page_size);
	carve_chunks(a, c, p);
	ck_pr_fence_store();
	pg->pg_carving = 0;
	moving_end(&c->cl_moving);
}

/* Take a page from the pool for class @p ci (its lock held). */
static bool
page_from_pool(struct mlc_arena *a, uint32_t ci)
{
	struct mlc__hdr *h = a->hdr;
	uint32_t p;

	/* An empty pool is not waited for.  Its lock is tried if a move of
	 * its pages is marked: a mover killed there (carving the last page,
	 * say) left the count at 0 and the page on no list, and only the
	 * next taker of the pool lock repairs that (until 2026-12-06 nobody
	 * came while the count said 0, and the page was lost for good); a
	 * live mover, maybe stopped, keeps it busy, and the caller goes on
	 * without a page as before (waiting there blocked every class's
	 * writers behind one stopped carver: a review). */
	if (ck_pr_load_32(&h->ah_pool_free) == 0) {
		if (ck_pr_load_32(&h->ah_pool_moving) == 0 ||
		    mlc__lock_try(a, &h->ah_pool_lock, pool_rebuild, NULL) < 0)
			return false;
	} else if (mlc__lock_take(a, &h->ah_pool_lock, pool_rebuild,
				  NULL) < 0) {
		return false;
	}
	if (h->ah_pool_head == 0 || h->ah_pool_head > a->npages) {
		mlc__lock_give(&h->ah_pool_lock);
		return false;
	}
	moving_begin(a, &h->ah_pool_moving);
	p = h->ah_pool_head - 1;
	h->ah_pool_head = a->pages[p].pg_next;
	ck_pr_dec_32(&h->ah_pool_free);
	/* Carved with the pool lock held: a crash leaves the page either in
	 * the pool or in the class. */
	page_carve(a, ci, p);
	moving_end(&h->ah_pool_moving);
	mlc__lock_give(&h->ah_pool_lock);
	return true;
}

/* Repair the class and pool locks whose holder left a move of pages
 * marked (cl_moving, ah_pool_moving): a lock is repaired by its next
 * taker, and a class that nobody allocates from (one that borrows, one
 * whose only page a killed mover had unlinked) may have none for a long
 * time, its page out of use meanwhile.  Try-locks: a live mover's lock is
 * busy and left alone.  Only with @p locks (a writer's call): readers take
 * no lock that lives in the arena (docs/reliability.md).  Then, with or
 * without, the empty pages' sum (lock-free: a CAS of a hint).  Called now
 * and then (mlc__stats_flush()) and before an allocation gives up; reads
 * one line per class. */
static void class_left_free(struct mlc_arena *a, uint32_t ci);

void
mlc__alloc_heal(struct mlc_arena *a, bool locks)
{
	struct mlc__hdr *h = a->hdr;

	for (uint32_t i = 0; locks && i < a->nclasses; i++) {
		struct mlc__class *c = &a->classes[i];

		if (!ck_pr_load_32(&c->cl_moving) &&
		    !ck_pr_load_32(&c->cl_left))
			continue;
		if (mlc__lock_try(a, &c->cl_lock, class_rebuild,
				  (void *)(uintptr_t)i) < 0)
			continue;
		if (ck_pr_load_32(&c->cl_left))
			class_left_free(a, i);
		mlc__lock_give(&c->cl_lock);
	}
	if (locks && ck_pr_load_32(&h->ah_pool_moving) &&
	    mlc__lock_try(a, &h->ah_pool_lock, pool_rebuild, NULL) == 0)
		mlc__lock_give(&h->ah_pool_lock);
	/* The empty pages' sum, which a kill or a race with a recount can
	 * leave one off (empty_add()): too low, an empty page would stay
	 * unused while classes evict. */
	empty_recount(a, ck_pr_load_32((uint32_t *)&h->ah_empty_pages));
}

bool
mlc__item_reclaimable(const struct mlc_arena *a, const struct mlc__item *it,
		      uint32_t w, uint64_t now)
{
	uint64_t exp = mlc__item_expire(it);
	uint32_t ns = ck_pr_load_16((uint16_t *)&it->it_ns);

	if (exp != 0 && exp <= now)
		return true;
	if (ns >= a->max_ns ||
	    mlc__item_nsgen(it) != ck_pr_load_32(&a->ns[ns].ns_gen))
		return true;		/* purged */
	/* The count drifts when a writer dies between a store and its count
	 * (PUT_LINKED, DEL_UNLINKED), below 0 once such an entry goes: read
	 * raw, -1 was over any quota, and every negative entry went as if
	 * expired (test_negative_count_drift, review AH). */
	return (MLC__ST_FLAGS(w) & MLC__IT_NEG) &&
	       mlc__live_count(ck_pr_load_64(&a->hdr->ah_neg_items)) >
	       a->neg_quota;
}

/* Take a LIVE chunk (class lock held) out of the index; on success it is
 * ALLOC for the caller (@p keep: *@p gen its generation) or back on its
 * free list.  @p hash: its key's (mlc__item_hash()).  Its generation, read
 * under the class lock, cannot change while we hold it: only an
 * allocation changes it. */
static bool
evict_live(struct mlc_arena *a, struct mlc__class *c, uint32_t p,
	   uint32_t k, uint32_t w, bool keep, uint64_t now, uint64_t *gen,
	   uint64_t hash)
{
	struct mlc__item *it = mlc__chunk_item(a, p, c->cl_size, k);
	uint64_t off = chunk_off(a, p, c->cl_size, k);
	bool orphan = false, expired;

	expired = mlc__item_reclaimable(a, it, w, now);
	if (!mlc__table_unlink_chunk(a, off, hash, &orphan))
		return false;		/* its stripe is busy: skip it */
	MLC_PAUSE(EVICT_UNLINKED);
	/* A LIVE chunk no slot points to was unlinked by a writer that is
	 * about to free it (or died first): its late free finds the chunk
	 * reused or free, and does nothing.  No eviction to count. */
	if (orphan)
		;
	else if (expired)
		ck_pr_inc_64(&a->hdr->ah_expired);
	else
		ck_pr_inc_64(&a->hdr->ah_evictions);
	chain_leave(a, c, p, k, it);
	if (keep) {
		*gen = chunk_take(a, c, p, it);
	} else {
		chunk_release(c, it);
		chunk_push(a, c, p, k);
	}
	return true;
}

/* Is the writer of an ALLOC chunk proven dead?  Its stamp: it_pid,
 * it_pidns and it_start (process start time).  The stamp
 * is the writer's only while the chunk is ALLOC: a writer makes it LIVE
 * (holding the stripes that keep sweeps off a LIVE chunk) before it
 * overwrites the stamp with the item's expiry and version (table.c:
 * put_linked(), move_entry()).  So the state is read again after the
 * stamp: still ALLOC, the stamp was whole.  (0.2.0 read it without this,
 * and its writers overwrote the stamp first: a writer stopped between its
 * two stores had its chunk reclaimed as an orphan while alive,
 * test-evict test_stamp_overwritten.)
 *
 * And once more after the verdict, which reads /proc: microseconds, or
 * seconds for a sweeper stopped there.  Meanwhile the writer may have made
 * the chunk LIVE, linked it, returned and exited, and a verdict of "dead"
 * is then true of a writer whose chunk is no orphan: released, it would
 * leave its slot pointing at a free chunk, soon another key's (without
 * this second look, test-explore's ORPHAN_PROVEN x evict-burst failed
 * about 1 run in 100 under ThreadSanitizer; test-evict
 * test_orphan_judged_late stops a sweeper there).  Still ALLOC
 * after the writer's death, it stays ALLOC: only its writer, or a holder
 * of the class lock we hold, changes its state.  The writer's stores
 * happened before its exit, which the kernel ordered before /proc said it
 * was gone; the fence orders our load after that read. */
static bool
orphaned(struct mlc_arena *a, const struct mlc__item *it)
{
	uint32_t *state = (uint32_t *)&it->it_state;
	uint32_t pid = ck_pr_load_32((uint32_t *)&it->it_pid);
	uint32_t pidns = ck_pr_load_32((uint32_t *)&it->it_pidns);
	uint64_t start = ck_pr_load_64((uint64_t *)&it->it_start);
	bool mine = pid == (uint32_t)mlc__pid();

	ck_pr_fence_load();
	if (MLC__ST_STATE(ck_pr_load_32(state)) != MLC__ALLOC)
		return false;
	if (!mine)
		MLC_PAUSE(ORPHAN_SUSPECT);
	if (!mlc__proc_dead(pid, start, pidns)) {
		if (!mine)
			ck_pr_inc_64(&a->hdr->ah_orphan_skips);
		return false;
	}
	ck_pr_fence_memory();
	return MLC__ST_STATE(ck_pr_load_32(state)) == MLC__ALLOC;
}

/* Reclaim an ALLOC chunk whose writer is proven dead. */
static bool
evict_orphan(struct mlc_arena *a, struct mlc__class *c, uint32_t p,
	     uint32_t k, bool keep, uint64_t *gen)
{
	struct mlc__item *it = mlc__chunk_item(a, p, c->cl_size, k);

	if (!orphaned(a, it))
		return false;
	MLC_PAUSE(ORPHAN_PROVEN);
	ck_pr_inc_64(&a->hdr->ah_orphans);
	chain_leave(a, c, p, k, it);
	if (keep) {
		*gen = chunk_take(a, c, p, it);
	} else {
		chunk_release(c, it);
		chunk_push(a, c, p, k);
	}
	return true;
}

/* The sweep's own count of an item's reads, in the spare bits of its
 * it_state (see struct mlc__item): 0 when its writer links it, changed
 * only here, under the class lock, and only while the item is LIVE (no one
 * else stores it_state then).  Readers never write it. */
#define FREQ_MAX 3
#define ST_FREQ(w)	(((w) >> 16) & FREQ_MAX)

static void
freq_store(struct mlc__item *it, uint32_t w, uint32_t f)
{
	ck_pr_store_32(&it->it_state, (w & ~((uint32_t)FREQ_MAX << 16)) |
				      f << 16);
}

/* ---- probation and the ghost ----------------------------------------
 *
 * A class's chunks are in one of two queues, told apart by the small bit
 * of it_state, not by where they are: probation (small) and main.  A new
 * key's item starts on probation; its own hand (the small hand) walks the
 * page ring looking at probation items only, so it meets each about one
 * lap of probation after it came (a new item takes a chunk just behind a
 * hand): nearly a FIFO, as S3-FIFO's small queue.  An item read while on
 * probation moves to main (the bit cleared); one not read is evicted, and
 * its key goes to the ghost.  Main is the CLOCK with 2-bit frequencies
 * that walks the same ring with the other hand, skipping probation items.
 * Which hand evicts is decided by probation's size against its target
 * share of the class (1% to 90%, 10% at first).
 *
 * The ghost remembers keys evicted lately from either queue, with the
 * class and the queue they left and when (that queue's count of
 * evictions).  A writer whose key left less than a class's worth of
 * evictions ago skips probation (the key came back: it deserves main).
 * If it left very lately (ADAPT_SPAN), it also moves the target of the
 * class it left, as ARC does: a key evicted from probation that came back
 * says probation is too short, one evicted from main that main is too
 * small, both judged over the same number of evictions.  So a workload of
 * one-time keys gets a short probation that protects main from them
 * (S3-FIFO), and one whose popular keys change, where main's history only
 * hurts, a long one, which is nearly a CLOCK again.
 *
 * Everything here but the ghost and the target is under the class lock;
 * those two are hints written without one (lost or stale values cost hit
 * ratio, never correctness).  Readers touch neither. */
#define SHARE_ONE 65536u
#define SHARE_MIN (SHARE_ONE / 100)		/* 1% */
#define SHARE_MAX (SHARE_ONE - SHARE_ONE / 10)	/* 90% */
#define GHOST_WAYS 8
#define ADAPT_SPAN 20		/* ghost hits that move the target: those
				 * back within 1/20 of the class's chunks'
				 * evictions from their queue */
#define ADAPT_STEP 64		/* chunks the target moves per such hit, */
#define ADAPT_STEP_MAX (SHARE_ONE / 256)	/* up to 0.4% of the class */
#define GH_MAIN 1u
#define GH_CLASS(e)	(((uint32_t)(e) >> 1) & 0x7fu)
#define GH_CHECK(e)	((uint32_t)(e) >> 8)

static uint32_t
ghost_check(uint64_t hash)
{
	return (uint32_t)(hash >> 40);
}

/* A ghost entry's age: evictions from its class's queue since. */
static uint32_t
ghost_age(const struct mlc_arena *a, uint64_t e)
{
	const struct mlc__class *c;

	if (GH_CLASS(e) >= a->nclasses)
		return UINT32_MAX;
	c = &a->classes[GH_CLASS(e)];
	return ck_pr_load_32((uint32_t *)((e & GH_MAIN) ? &c->cl_gone_main :
					  &c->cl_gone_small)) -
	       (uint32_t)(e >> 32);
}

/* Class @p c (lock held) evicted the key of hash @p hash from main if
 * @p main, else from probation: remember it, in place of its line's
 * oldest entry. */
static void
ghost_add(struct mlc_arena *a, struct mlc__class *c, uint64_t hash,
	  bool main)
{
	struct mlc__ghost *g = &a->ghost[hash & a->ghost_mask];
	uint32_t check = ghost_check(hash);
	uint32_t *gone = main ? &c->cl_gone_main : &c->cl_gone_small;
	uint32_t stamp = *gone + 1, oldest = 0, at = 0;

	ck_pr_store_32(gone, stamp);	/* writers read it without the lock */
	for (uint32_t i = 0; i < GHOST_WAYS; i++) {
		uint64_t e = ck_pr_load_64(&g->gh_entry[i]);
		uint32_t age;

		if (e == 0 || GH_CHECK(e) == check) {
			at = i;
			break;
		}
		if ((age = ghost_age(a, e)) >= oldest) {
			oldest = age;
			at = i;
		}
	}
	ck_pr_store_64(&g->gh_entry[at], (uint64_t)stamp << 32 | check << 8 |
			       (uint32_t)(c - a->classes) << 1 |
			       (main ? GH_MAIN : 0));
}

/* Take the key of hash @p hash out of the ghost: 0 if it was not there,
 * 1 if it left probation, 2 if it left main; *@p ci: the class that
 * evicted it (a lender's, for a borrowed chunk), *@p age: how many
 * evictions from that queue of that class since. */
static int
ghost_take(struct mlc_arena *a, uint64_t hash, uint32_t *ci, uint32_t *age)
{
	struct mlc__ghost *g = &a->ghost[hash & a->ghost_mask];
	uint32_t check = ghost_check(hash);

	for (uint32_t i = 0; i < GHOST_WAYS; i++) {
		uint64_t e = ck_pr_load_64(&g->gh_entry[i]);

		if (e == 0 || GH_CHECK(e) != check ||
		    GH_CLASS(e) >= a->nclasses)
			continue;
		*ci = GH_CLASS(e);
		*age = ghost_age(a, e);
		ck_pr_cas_64(&g->gh_entry[i], e, 0);
		return (e & GH_MAIN) ? 2 : 1;
	}
	return 0;
}

/* Chunks of class @p c (lock held) that probation should hold now. */
static uint64_t
small_target(const struct mlc__class *c)
{
	uint32_t share = MLC_MIN(MLC_MAX(ck_pr_load_32(
		(uint32_t *)&c->cl_small_share), SHARE_MIN), SHARE_MAX);

	return (uint64_t)c->cl_pages * c->cl_per_page * share / SHARE_ONE;
}

/* A ghost hit of a key that left class @p c lately: move probation's
 * target by ADAPT_STEP chunks of the class (at most ADAPT_STEP_MAX), up if
 * the key left probation, down if it left main.  Without a lock (a lost
 * update is a lost hint). */
static void
small_adapt(struct mlc__class *c, int hit)
{
	uint64_t chunks = (uint64_t)ck_pr_load_32(&c->cl_pages) *
			  ck_pr_load_32(&c->cl_per_page);
	uint32_t step = (uint32_t)MLC_MIN((uint64_t)ADAPT_STEP * SHARE_ONE /
					  MLC_MAX(chunks, 1), ADAPT_STEP_MAX) + 1;
	uint32_t s = ck_pr_load_32(&c->cl_small_share);

	if (hit == 1)
		s = MLC_MIN(s + step, SHARE_MAX);
	else
		s = s > SHARE_MIN + step ? s - step : SHARE_MIN;
	ck_pr_store_32(&c->cl_small_share, s);
}

/* The chunk at @p off, just allocated from class @p c (lock held, ALLOC,
 * not yet handed to its writer): on probation if @p small. */
static void
admit(struct mlc_arena *a, struct mlc__class *c, uint64_t off, bool small)
{
	struct mlc__item *it = (struct mlc__item *)(void *)(a->base + off);

	if (!small)
		return;
	ck_pr_store_32(&it->it_state, MLC__ST_MAKE(MLC__ALLOC, 0) |
				      MLC__ST_SMALL);
	MLC_PAUSE(ALLOC_SMALL);
	c->cl_nsmall++;
}

/* Move a hand of class @p c (*@p hp, *@p hk: page index + 1, chunk) one
 * chunk; *p and *k: the chunk it was at. */
static void
hand_step(struct mlc_arena *a, struct mlc__class *c, uint32_t *hp,
	  uint32_t *hk, uint32_t *p, uint32_t *k)
{
	if (*hp == 0 || *hp > a->npages ||
	    a->pages[*hp - 1].pg_class != (uint32_t)(c - a->classes) + 1) {
		*hp = c->cl_ring;
		*hk = 0;
	}
	*p = *hp - 1;
	*k = *hk;
	if (++*hk >= c->cl_per_page) {
		*hk = 0;
		*hp = a->pages[*p].pg_next;
	}
}

/* Advance one hand of class @p c (lock held; @p small: the probation
 * hand, else main's) until it frees a chunk for the caller.  Expired,
 * purged and over-quota negative entries go at once, whichever queue
 * they are in.  Otherwise the hand looks at its own queue's items only.
 * Probation: an item read since it came (its bucket's reference bit)
 * moves to main; one not read is the victim.  Main keeps a 2-bit
 * frequency per item (S3-FIFO's main queue, on a CLOCK): an item read
 * since the last pass gains one and stays; one not read loses one and
 * stays; one at zero is the victim.  With @p force, the first live item
 * of the queue is.  Before evicting the victim the sweep looks LOOKAHEAD
 * chunks further for a reclaimable entry, without touching their bits,
 * so expired entries go first; the hand then stands just past the
 * victim, whose key goes to the ghost. */
static bool
queue_sweep(struct mlc_arena *a, struct mlc__class *c, uint64_t now,
	    bool force, bool small, const uint64_t *keep, uint64_t *off,
	    uint64_t *genp)
{
	uint64_t budget = MLC_MIN((uint64_t)c->cl_pages * c->cl_per_page *
				  (FREQ_MAX + 2) + 1, SWEEP_MAX);
	uint32_t *hpp = small ? &c->cl_shand_page : &c->cl_hand_page;
	uint32_t *hkp = small ? &c->cl_shand_chunk : &c->cl_hand_chunk;
	uint32_t cp = 0, ck = 0, cw = 0, hp = 0, hk = 0;
	uint64_t cand_at = UINT64_MAX, cand_hash = 0;
	uint64_t gen;

	for (uint64_t i = 0; i < budget && c->cl_ring != 0; i++) {
		uint32_t p, k, w, f;
		struct mlc__item *it;
		uint64_t co, hash;

		if (cand_at != UINT64_MAX && i - cand_at > LOOKAHEAD)
			break;
		hand_step(a, c, hpp, hkp, &p, &k);
		if (k >= c->cl_per_page)
			continue;
		it = mlc__chunk_item(a, p, c->cl_size, k);
		co = chunk_off(a, p, c->cl_size, k);
		w = ck_pr_load_32(&it->it_state);
		if (cand_at != UINT64_MAX) {
			/* Looking ahead: reclaimable entries only. */
			if (MLC__ST_STATE(w) == MLC__LIVE &&
			    mlc__item_reclaimable(a, it, w, now) &&
			    evict_live(a, c, p, k, w, true, now, &gen,
				       mlc__item_hash(a, co)))
				goto got;
			continue;
		}
		if (MLC__ST_STATE(w) == MLC__ALLOC) {
			if (evict_orphan(a, c, p, k, true, &gen))
				goto got;
			continue;
		}
		if (MLC__ST_STATE(w) == MLC__PIECE) {
			uint32_t php, phk;

			/* Its head's to keep or free; one whose head is
			 * gone was left by an allocator that died. */
			if (piece_owned(a, c, it, &php, &phk))
				continue;
			ck_pr_inc_64(&a->hdr->ah_orphans);
			gen = chunk_take(a, c, p, it);
			goto got;
		}
		if (MLC__ST_STATE(w) != MLC__LIVE)
			continue;
		if (mlc__item_reclaimable(a, it, w, now)) {
			if (evict_live(a, c, p, k, w, true, now, &gen,
				       mlc__item_hash(a, co)))
				goto got;
			continue;
		}
		if (!(w & MLC__ST_SMALL) != !small)
			continue;	/* the other hand's */
		f = ST_FREQ(w);
		/* Its buckets, for its CLOCK bit and, if it is the victim,
		 * its unlinking and the ghost: items keep no hash. */
		hash = mlc__item_hash(a, co);
		if (keep != NULL && hash == *keep)
			continue;	/* what a compare-and-set replaces */
		if (small) {
			if (!force && mlc__table_ref_take(a, co, hash)) {
				/* Read on probation: to main, from 0. */
				freq_store(it, w & ~MLC__ST_SMALL, 0);
				MLC_PAUSE(SWEEP_PROMOTED);
				if (c->cl_nsmall > 0)
					c->cl_nsmall--;
				continue;
			}
		} else if (mlc__table_ref_take(a, co, hash)) {
			if (f < FREQ_MAX)
				freq_store(it, w, f + 1);
			if (!force)
				continue;
		} else if (f > 0 && !force) {
			freq_store(it, w, f - 1);
			continue;
		}
		cp = p, ck = k, cw = ck_pr_load_32(&it->it_state);
		cand_hash = hash;
		hp = *hpp, hk = *hkp;
		cand_at = i;
		continue;
got:
		if (cand_at != UINT64_MAX) {
			*hpp = hp;
			*hkp = hk;
		}
		*off = chunk_off(a, p, c->cl_size, k);
		*genp = gen;
		c->cl_evictions++;
		return true;
	}
	if (cand_at == UINT64_MAX)
		return false;
	*hpp = hp;
	*hkp = hk;
	if (!evict_live(a, c, cp, ck, cw, true, now, &gen, cand_hash))
		return false;
	ghost_add(a, c, cand_hash, !small);
	*off = chunk_off(a, cp, c->cl_size, ck);
	*genp = gen;
	c->cl_evictions++;
	return true;
}

/* Free a chunk of class @p c (lock held) for the caller: from probation
 * if it holds more than its target, else from main; from the other if
 * that one has nothing to give. */
static bool
class_sweep(struct mlc_arena *a, struct mlc__class *c, uint64_t now,
	    bool force, const uint64_t *keep, uint64_t *off, uint64_t *genp)
{
	bool small = c->cl_nsmall > small_target(c);

	return queue_sweep(a, c, now, force, small, keep, off, genp) ||
	       queue_sweep(a, c, now, force, !small, keep, off, genp);
}

/* A page's worth of recent demand, @p total (ah_demand_total) being the
 * demand of all classes. */
static uint64_t
demand_per_page(const struct mlc_arena *a, uint64_t total)
{
	return total / a->npages + 1;
}

/* Recent demand of class @p c beyond what its @p pages are worth
 * (negative: a surplus), in bytes of demand.  Read without its lock:
 * demand and pages are hints that decide page moves, never a chunk's
 * owner. */
static int64_t
demand_short(const struct mlc__class *c, uint32_t pages, uint64_t per_page)
{
	return (int64_t)ck_pr_load_64((uint64_t *)&c->cl_demand) -
	       (int64_t)((uint64_t)pages * per_page);
}

/* Is class @p c short of its share of recent demand by 1/WANT_FRAC page
 * or more?  A class without pages that is not borrows chunks instead. */
static bool
class_wants_page(const struct mlc_arena *a, const struct mlc__class *c)
{
	uint64_t total = ck_pr_load_64(&a->hdr->ah_demand_total);
	uint64_t per_page = demand_per_page(a, total);

	return total != 0 &&
	       demand_short(c, ck_pr_load_32((uint32_t *)&c->cl_pages),
			    per_page) >= (int64_t)(per_page / WANT_FRAC);
}

/* Take piece @p k of page @p p of class @p v (locked) out of use: with
 * its head, which frees it, or alone if its head is gone. */
static bool
piece_drain(struct mlc_arena *a, struct mlc__class *v, uint32_t p, uint32_t k,
	    uint64_t now)
{
	struct mlc__item *it = mlc__chunk_item(a, p, v->cl_size, k), *h;
	uint32_t hp, hk, hw;

	if (!piece_owned(a, v, it, &hp, &hk)) {
		chunk_release(v, it);
		chunk_push(a, v, p, k);
		return true;
	}
	h = mlc__chunk_item(a, hp, v->cl_size, hk);
	hw = ck_pr_load_32(&h->it_state);
	if (MLC__ST_STATE(hw) == MLC__ALLOC)
		return evict_orphan(a, v, hp, hk, false, NULL);
	return evict_live(a, v, hp, hk, hw, false, now, NULL,
			  mlc__item_hash(a, chunk_off(a, hp, v->cl_size, hk)));
}

/* Take every chunk of page @p p of class @p v (locked) out of use;
 * false if some are still busy (a writer filling one, a stripe held). */
static bool
page_drain(struct mlc_arena *a, struct mlc__class *v, uint32_t p, uint64_t now)
{
	bool drained = true;

	for (uint32_t k = 0; k < v->cl_per_page; k++) {
		struct mlc__item *it = mlc__chunk_item(a, p, v->cl_size, k);
		uint32_t w = ck_pr_load_32(&it->it_state);

		switch (MLC__ST_STATE(w)) {
		case MLC__FREE:
			break;
		case MLC__ALLOC:
			if (!evict_orphan(a, v, p, k, false, NULL))
				drained = false;
			break;
		case MLC__PIECE:
			if (!piece_drain(a, v, p, k, now))
				drained = false;
			break;
		default:
			if (!evict_live(a, v, p, k, w, false, now, NULL,
					mlc__item_hash(a, chunk_off(a, p,
						v->cl_size, k))))
				drained = false;
		}
	}
	return drained;
}

/* Empty one page of class @p vi (locked) and hand it to class @p to (its
 * lock held by the caller), or to the pool when @p to is UINT32_MAX.  A
 * writer holding a chunk of the page links it within microseconds without
 * needing a class lock, so waiting a little for it is safe. */
static bool
page_move(struct mlc_arena *a, uint32_t vi, uint32_t p, uint32_t to,
	  uint64_t now)
{
	struct mlc__class *v = &a->classes[vi];
	struct mlc__hdr *h = a->hdr;
	bool drained = false;

	for (int r = 0; r < PAGE_RETRIES && !drained; r++) {
		if (r > 0)
			sched_yield();
		drained = page_drain(a, v, p, now);
	}
	if (!drained)
		return false;
	MLC_PAUSE(PAGE_DRAINED);
	/* To the pool: its lock first (class, then pool, as everywhere), so
	 * that a page never leaves the class for want of it. */
	if (to == UINT32_MAX &&
	    mlc__lock_take(a, &h->ah_pool_lock, pool_rebuild, NULL) < 0)
		return false;
	moving_begin(a, &v->cl_moving);
	if (a->pages[p].pg_nfree == v->cl_per_page)
		empty_add(a, v, -1);	/* drained: it was counted */
	partial_unlink(a, v, p);
	ring_unlink(a, v, p);
	if (--v->cl_pages == 0)
		v->cl_flags &= ~(uint32_t)MLC__CL_COURTESY;
	ck_pr_inc_64(&h->ah_page_moves);
	ck_pr_inc_64(&v->cl_moves_out);
	MLC_PAUSE(PAGE_UNLINKED);
	if (to != UINT32_MAX) {
		ck_pr_inc_64(&a->classes[to].cl_moves_in);
		page_carve(a, to, p);
	} else {
		moving_begin(a, &h->ah_pool_moving);
		a->pages[p].pg_class = 0;
		a->pages[p].pg_next = h->ah_pool_head;
		h->ah_pool_head = p + 1;
		ck_pr_inc_32(&h->ah_pool_free);
		moving_end(&h->ah_pool_moving);
		mlc__lock_give(&h->ah_pool_lock);
	}
	moving_end(&v->cl_moving);
	return true;
}

/* The classes other than @p ci with the most pages beyond their share
 * of recent demand (how far beyond: @p mode), best first, into @p out (at
 * most @p n); the count. */
enum steal_mode {
	STEAL_WANTED,		/* the thief is short of its share */
	STEAL_COURTESY,		/* it owns none and its demand is not worth
				 * one: not from another such class */
	STEAL_ANY,		/* last resort: from whoever has pages */
};

static uint32_t
steal_victims(const struct mlc_arena *a, uint32_t ci, uint32_t *out,
	      uint32_t n, enum steal_mode mode)
{
	const struct mlc__class *t = &a->classes[ci];
	uint64_t per_page = demand_per_page(a,
		ck_pr_load_64(&a->hdr->ah_demand_total));
	int64_t surplus[STEAL_CLASSES];
	int64_t short_ci = demand_short(t, ck_pr_load_32((uint32_t *)
						  &t->cl_pages), per_page);
	uint32_t got = 0;

	for (uint32_t i = 0; i < a->nclasses; i++) {
		const struct mlc__class *c = &a->classes[i];
		uint32_t pages = ck_pr_load_32((uint32_t *)&c->cl_pages);
		int64_t sp;
		uint32_t at;

		if (i == ci || pages == 0)
			continue;
		sp = -demand_short(c, pages, per_page);
		/* A wanted page: only from a class beyond its share, and
		 * only when the thief's shortfall and the victim's surplus
		 * add up to STEAL_GAP pages.  Then the move cannot be undone
		 * by the next one (for that, what each is left short or
		 * beyond by would have to add up to STEAL_GAP pages too,
		 * and they add up to at most 2 - STEAL_GAP), and a page,
		 * which evicts all its items when it moves, moves only for
		 * an imbalance worth it: moves for smaller gaps (1.5 pages,
		 * as the thief a whole page short and the victim half a
		 * page beyond, or less) thrashed on mixed value sizes up to
		 * 16 KiB (bench/hitratio, docs/internals.md).  A courtesy
		 * page: only from a class that keeps all but half a page of
		 * its share. */
		if (mode == STEAL_WANTED &&
		    (sp <= 0 ||
		     sp + short_ci < (int64_t)(per_page * STEAL_GAP)))
			continue;
		if (mode == STEAL_COURTESY && sp < (int64_t)(per_page / 2))
			continue;
		if (mode == STEAL_COURTESY &&
		    (ck_pr_load_32((uint32_t *)&c->cl_flags) &
		     MLC__CL_COURTESY) &&
		    ck_pr_load_64((uint64_t *)&c->cl_demand) < per_page)
			continue;
		for (at = got; at > 0 && surplus[at - 1] < sp; at--)
			;
		if (at >= n)
			continue;
		for (uint32_t j = MLC_MIN(got, n - 1); j > at; j--) {
			surplus[j] = surplus[j - 1];
			out[j] = out[j - 1];
		}
		surplus[at] = sp;
		out[at] = i;
		if (got < n)
			got++;
	}
	return got;
}

/* Move a page of the victim class (locked by the caller) to @p to. */
static bool
steal_from(struct mlc_arena *a, uint32_t vi, uint32_t to, uint64_t now)
{
	struct mlc__class *v = &a->classes[vi];

	for (int t = 0; t < STEAL_TRIES && v->cl_ring != 0; t++) {
		uint32_t p = (v->cl_hand_page ? v->cl_hand_page : v->cl_ring) - 1;

		/* Step the hand past this page first, so a failed attempt
		 * tries the next page next time. */
		v->cl_hand_page = a->pages[p].pg_next;
		v->cl_hand_chunk = 0;
		if (page_move(a, vi, p, to, now))
			return true;
	}
	return false;
}

/* A page of class @p vi (locked) with every chunk free, moved to class
 * @p to (locked by the caller): nothing is evicted. */
static bool
steal_empty_from(struct mlc_arena *a, uint32_t vi, uint32_t to, uint64_t now)
{
	struct mlc__class *v = &a->classes[vi];
	uint32_t q = v->cl_partial;

	for (uint32_t n = 0; q != 0 && q <= a->npages && n < a->npages; n++) {
		if (a->pages[q - 1].pg_nfree == v->cl_per_page)
			return page_move(a, vi, q - 1, to, now);
		q = a->pages[q - 1].pg_pnext;
	}
	return false;
}

/* With class @p ci locked and about to evict one of its items: take a
 * page of another class that holds nothing, if the header's sum says one
 * exists (one load, of a line the allocation wrote).  Moving it costs no
 * item; evicting costs one.  Until 2026-12-06 pages moved only for
 * demand: a class evicted its own live items while other classes' pages
 * stood empty (values of a new size, written after a deleted key's sizes
 * had spread the pages over many classes, kept one page in an empty
 * arena: a black-box review). */
static bool
empty_steal(struct mlc_arena *a, uint32_t ci, uint64_t now)
{
	uint32_t seen = ck_pr_load_32((uint32_t *)&a->hdr->ah_empty_pages);
	bool moved = false;

	if ((int32_t)seen <= 0)
		return false;
	for (uint32_t i = 0; i < a->nclasses && !moved; i++) {
		struct mlc__class *v = &a->classes[i];

		if (i == ci || ck_pr_load_32(&v->cl_empty) == 0)
			continue;
		if (mlc__lock_try(a, &v->cl_lock, class_rebuild,
				  (void *)(uintptr_t)i) < 0)
			continue;
		moved = v->cl_empty > 0 && steal_empty_from(a, i, ci, now);
		mlc__lock_give(&v->cl_lock);
	}
	if (!moved)
		empty_recount(a, seen);
	return moved;
}

/* With class @p ci locked: move a page straight into it from a victim
 * whose lock is free right now (try-locks: waiting while holding a class
 * lock could deadlock with a thief going the other way). */
static bool
page_steal_locked(struct mlc_arena *a, uint32_t ci, uint64_t now,
		  enum steal_mode mode)
{
	uint32_t v[STEAL_CLASSES], n = steal_victims(a, ci, v, STEAL_CLASSES,
						     mode);

	for (uint32_t i = 0; i < n; i++) {
		bool moved;

		if (mlc__lock_try(a, &a->classes[v[i]].cl_lock, class_rebuild,
				  (void *)(uintptr_t)v[i]) < 0)
			continue;
		moved = steal_from(a, v[i], ci, now);
		mlc__lock_give(&a->classes[v[i]].cl_lock);
		if (moved)
			return true;
	}
	return false;
}

/* Without any class lock: wait for each victim's lock in turn, at most
 * STEAL_WAIT_MS (mlc__lock_take_bounded()), and move a page to the
 * pool, where the caller's next round finds it.  A victim whose pages cannot be drained now, or whose
 * lock stays busy, does not stop the next one.  The wait is bounded: a
 * process stopped while it holds a class's lock blocks that class's
 * writers, and a writer of another size must not wait for it too (it
 * did, for as long as the holder stayed stopped, when the victim was the
 * only class with pages: test-evict test_other_class_stopped, review
 * AJ); busy victims leave it -ENOSPC, as any busy candidate does. */
static bool
page_steal(struct mlc_arena *a, uint32_t ci, uint64_t now,
	   enum steal_mode mode)
{
	uint32_t v[STEAL_CLASSES], n = steal_victims(a, ci, v, STEAL_CLASSES,
						     mode);

	for (uint32_t i = 0; i < n; i++) {
		bool moved;

		if (class_lock_for(a, v[i], true) < 0)
			continue;
		moved = steal_from(a, v[i], UINT32_MAX, now);
		mlc__lock_give(&a->classes[v[i]].cl_lock);
		if (moved)
			return true;
	}
	return false;
}

/* Account @p bytes of demand for class @p c; halve all demand now and
 * then, so the balance follows the recent workload.  "Recent" is counted
 * in bytes allocated: at 4 arenas' worth (until 2026-12-06), a class of
 * 16 B values that took over from one of 4 KiB values needed millions of
 * allocations to outweigh the other's past, and the pages stayed where
 * they were (bench/hitratio sizeshift at 50%: 0.2116 miss, 4.2 points
 * behind CLOCK; at one arena's worth 0.1697, level with it, and no other
 * trace moved by more than 0.0001). */
static void
demand_add(struct mlc_arena *a, struct mlc__class *c, uint64_t bytes)
{
	struct mlc__hdr *h = a->hdr;
	uint64_t total;

	ck_pr_add_64(&c->cl_demand, bytes);
	total = ck_pr_faa_64(&h->ah_demand_total, bytes) + bytes;
	if (total < (uint64_t)a->npages * a->page_size * DEMAND_SPAN)
		return;
	if (!ck_pr_cas_64(&h->ah_demand_total, total, total / 2))
		return;			/* another process is halving */
	for (uint32_t i = 0; i < a->nclasses; i++)
		ck_pr_store_64(&a->classes[i].cl_demand,
			       ck_pr_load_64(&a->classes[i].cl_demand) / 2);
}

/* One allocation's demand: a chunk of class @p c. */
static void
demand_note(struct mlc_arena *a, struct mlc__class *c)
{
	demand_add(a, c, c->cl_size);
}

/* ---- the interface -------------------------------------------------- */

/* The smallest class whose chunk holds @p bytes, or -E2BIG. */
int
mlc__class_for(const struct mlc_arena *a, size_t bytes)
{
	uint32_t lo = 0, hi = a->nclasses;

	if (bytes > a->class_size[a->nclasses - 1])
		return -E2BIG;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (a->class_size[mid] < bytes)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int)lo;
}

/* A class that owns no page and whose demand is not worth one (with more
 * classes in use than pages, handing pages round would evict whole pages
 * for a few items each): a chunk of the next larger class that owns
 * pages, up to @p ratio times the size, from its free list or its CLOCK
 * victim.  An item fits in any chunk at least its size, and frees go by
 * the page's class, so nothing else needs to know.  Its demand stays with
 * the class asked for, which takes a page of its own once that demand is
 * worth one. */
static bool
alloc_borrow(struct mlc_arena *a, uint32_t ci, uint32_t ratio, uint64_t now,
	     bool force, bool small, const uint64_t *keep, uint64_t *off,
	     uint64_t *gen)
{
	for (uint32_t j = ci + 1; j < a->nclasses &&
	     a->class_size[j] <= (uint64_t)ratio * a->class_size[ci]; j++) {
		struct mlc__class *c = &a->classes[j];
		bool ok;

		if (ck_pr_load_32(&c->cl_pages) == 0)
			continue;
		/* Bounded, as page_steal()'s wait: a lender's holder stopped
		 * must not hang a writer of another size. */
		if (class_lock_for(a, j, true) < 0)
			continue;
		ok = chunk_pop(a, c, off, gen) ||
		     (c->cl_pages > 0 &&
		      class_sweep(a, c, now, force, keep, off, gen));
		if (ok)
			admit(a, c, *off, small);
		mlc__lock_give(&c->cl_lock);
		/* The lender's pages hold the borrower's items: its demand
		 * counts them too, or it would be squeezed for lending, but
		 * at the borrower's size.  Counted at the lender's chunk
		 * size (up to any multiple of the item's, once a borrower
		 * takes any larger class), a borrower that wanted pages of
		 * its own could not get them: 100 B items written into an
		 * arena full of 3 KiB ones each took a 3,280 B chunk, the
		 * lender's demand grew 23 times as fast as the borrower's,
		 * the gap a move needs (STEAL_GAP) was never reached, and
		 * the arena held a 23rd of the items it could, for good. */
		if (ok)
			demand_add(a, c, a->classes[ci].cl_size);
		return ok;
	}
	return false;
}

/* Allocate a chunk of class @p ci for the key of hash @p hash (@p known:
 * an entry of it is in the index, or being moved there) and decide its
 * queue (probation and the ghost, above): main for a known key or one the
 * ghost remembers, probation for the rest.
 *
 * The chunk comes from its free list, the pool, a page moved
 * from a class with more than its share of recent demand (when its own
 * share is 1/8 page or more beyond what it owns, and the two add up to
 * STEAL_GAP pages), its own CLOCK victim.  A class without pages whose
 * demand is not worth 1/8 page borrows a chunk of a larger class (up to
 * twice its size, then any), and takes a page (a courtesy page) only
 * when no class that close owns one.  With @p keep no item of the key is
 * a CLOCK victim (a compare-and-set replacing it: table.c); a page move
 * or an expiry may still take it.  The chunk comes back ALLOC; its writer
 * links it or frees it.  -ENOSPC when nothing could be had; the caller
 * counts it as a failed store (write_failures) if it is one. */
static int
alloc_in(struct mlc_arena *a, uint32_t ci, uint64_t hash, bool known,
	 bool keep, bool bounded, uint64_t *off, uint64_t *gen)
{
	const uint64_t *kp = keep ? &hash : NULL;
	struct mlc__class *c = &a->classes[ci];
	uint64_t now = mlc__now_ms();
	bool small = true;
	uint32_t age, gi;
	int rc, hit;

	demand_note(a, c);
	/* A known key goes to main whatever the ghost says: no look. */
	if (!known && (hit = ghost_take(a, hash, &gi, &age)) != 0) {
		struct mlc__class *g = &a->classes[gi];
		uint64_t chunks = (uint64_t)ck_pr_load_32(&g->cl_pages) *
				  ck_pr_load_32(&g->cl_per_page);
		/* A key back within the ghost's span deserves main; one back
		 * soon says the queue it left should have kept it. */
		if (age <= MLC_MAX(chunks, 64))
			small = false;
		if (age <= chunks / ADAPT_SPAN)
			small_adapt(g, hit);
	}
	if (known)
		small = false;
	for (int attempt = 0; attempt < ALLOC_ATTEMPTS; attempt++) {
		bool force = attempt >= FORCE_AFTER, ok, zero, wants, steal;
		enum steal_mode mode;

		zero = ck_pr_load_32(&c->cl_pages) == 0;
		/* A class that wants a page and found no victim in two
		 * rounds goes on as one that does not (borrow, then any
		 * page): a surplus spread thin over many classes leaves no
		 * victim worth taking from, and that must not fail writes
		 * while the arena is full of evictable items. */
		wants = attempt < 2 && class_wants_page(a, c);
		if (zero && !wants &&
		    alloc_borrow(a, ci, attempt == 0 ? 2 : UINT32_MAX, now,
				 force, small, kp, off, gen))
			return 0;
		mode = wants ? STEAL_WANTED :
		       zero && attempt < 2 ? STEAL_COURTESY : STEAL_ANY;
		if ((rc = class_lock_for(a, ci, bounded)) < 0)
			return rc;
		/* A class with pages that wants one more, and found no
		 * victim, sweeps its own for the next STEAL_BACKOFF
		 * allocations instead of scanning every class again (a
		 * share can stay just out of reach for a long time). */
		steal = zero || (wants && CL_BACKOFF(c->cl_flags) == 0);
		if (attempt == 0 && CL_BACKOFF(c->cl_flags) != 0)
			c->cl_flags -= CL_BACKOFF_ONE;
		ok = chunk_pop(a, c, off, gen);
		if (!ok && page_from_pool(a, ci)) {
			ok = chunk_pop(a, c, off, gen);
			if (attempt > 0 && mode != STEAL_WANTED)
				c->cl_flags |= MLC__CL_COURTESY;
		}
		if (!ok && !zero && empty_steal(a, ci, now))
			ok = chunk_pop(a, c, off, gen);
		if (!ok && steal) {
			if (page_steal_locked(a, ci, now, mode)) {
				ok = chunk_pop(a, c, off, gen);
				if (mode != STEAL_WANTED)
					c->cl_flags |= MLC__CL_COURTESY;
			} else if (!zero) {
				c->cl_flags |= STEAL_BACKOFF * CL_BACKOFF_ONE;
			}
		}
		if (!ok && c->cl_pages > 0 && (attempt > 0 || !steal))
			ok = class_sweep(a, c, now, force, kp, off, gen);
		if (ok)
			admit(a, c, *off, small);
		mlc__lock_give(&c->cl_lock);
		if (ok)
			return 0;
		if (steal)
			page_steal(a, ci, now, mode);
	}
	mlc__alloc_heal(a, true); /* a page a dead mover left: the next one's */
	return -ENOSPC;		/* counted by the store it fails, if any */
}

int
mlc__alloc(struct mlc_arena *a, uint32_t ci, uint64_t hash, bool known,
	   bool keep, uint64_t *off, uint64_t *gen)
{
	return alloc_in(a, ci, hash, known, keep, false, off, gen);
}

/* The same for an index move (table.c, move_entry()), made while the
 * stripes of three buckets are held for a write of another key: the
 * moved entry's class lock is waited for at most STEAL_WAIT_MS
 * (-ETIMEDOUT), so that a process stopped while it holds that lock does
 * not block the write, and with it every writer of those stripes (it did,
 * for as long as the holder stayed stopped: test-evict
 * test_index_full_class_stopped, review AJ).  The write then evicts
 * instead of moving. */
int
mlc__alloc_move(struct mlc_arena *a, uint32_t ci, uint64_t hash, bool known,
		uint64_t *off, uint64_t *gen)
{
	return alloc_in(a, ci, hash, known, false, true, off, gen);
}

/* A chunk of class @p ci (locked) for a piece: its free list, the pool,
 * its own CLOCK victim (ignoring CLOCK bits after FORCE_AFTER rounds),
 * a page of another class.  Never a borrowed chunk: a piece is of its
 * head's class. */
static bool
piece_take(struct mlc_arena *a, uint32_t ci, uint64_t now,
	   const uint64_t *keep, uint64_t *off, uint64_t *gen)
{
	struct mlc__class *c = &a->classes[ci];

	for (int attempt = 0; attempt < ALLOC_ATTEMPTS; attempt++) {
		bool force = attempt >= FORCE_AFTER;

		if (chunk_pop(a, c, off, gen) ||
		    (page_from_pool(a, ci) && chunk_pop(a, c, off, gen)) ||
		    (empty_steal(a, ci, now) && chunk_pop(a, c, off, gen)) ||
		    class_sweep(a, c, now, force, keep, off, gen) ||
		    (attempt > 0 && page_steal_locked(a, ci, now, STEAL_ANY) &&
		     chunk_pop(a, c, off, gen)))
			return true;
	}
	return false;
}

/* Allocate a chained item (arena.h) of key @p klen and value @p vlen in
 * chunks of class @p ci: its head as mlc__alloc() does (from @p ci or a
 * class it borrows from), then, under the lock of the class that owns the
 * head's page, as many pieces of that class as its chunk size needs, each
 * marked PIECE with the head's offset and generation and recorded in the
 * head's table before the next is taken.  The head comes back ALLOC, with
 * MLC__ST_CHAIN if it needs pieces (a borrowed chunk may not).  A writer
 * that dies here leaves an ALLOC head, reclaimed with the pieces it
 * recorded, and perhaps one more piece, which names a head that is gone
 * by then and is reclaimed alone.  On failure nothing is left allocated. */
int
mlc__alloc_chain(struct mlc_arena *a, uint32_t ci, uint32_t klen,
		 uint32_t vlen, uint64_t hash, bool known, bool keep,
		 uint64_t *off, uint64_t *gen)
{
	struct mlc__class *c;
	struct mlc__item *h;
	uint32_t p, hi, n, i;
	uint64_t now;
	int rc;

	rc = mlc__alloc(a, ci, hash, known, keep, off, gen);
	if (rc < 0)
		return rc;
	/* Our ALLOC chunk keeps its page in its class: a page move waits
	 * for its writer (page_drain()). */
	p = mlc__off_page(a, *off);
	hi = ck_pr_load_32(&a->pages[p].pg_class);
	if (hi == 0 || hi > a->nclasses)
		return -EOWNERDEAD;
	hi--;
	c = &a->classes[hi];
	if ((rc = class_lock(a, hi)) < 0) {
		mlc__free(a, *off, MLC__ALLOC, *gen);
		return rc;
	}
	h = chunk_owned(a, c, p, *off, ST_BIT(MLC__ALLOC), *gen, NULL);
	if (h == NULL) {
		mlc__lock_give(&c->cl_lock);
		return -EOWNERDEAD;	/* not ours after all: leave it */
	}
	n = mlc__chain_pieces(c->cl_size, klen, vlen);
	if (n == 0) {			/* a borrowed chunk it fits whole */
		mlc__lock_give(&c->cl_lock);
		return 0;
	}
	/* An empty table, then the mark that makes freers read it. */
	ck_pr_store_64(mlc__chain_count(h, c->cl_size), 0);
	ck_pr_fence_store();
	ck_pr_store_32(&h->it_state, ck_pr_load_32(&h->it_state) |
				     MLC__ST_CHAIN);
	now = mlc__now_ms();
	for (i = 0; i < n; i++) {
		uint64_t po, pgen;
		struct mlc__item *pc;

		if (!piece_take(a, hi, now, keep ? &hash : NULL, &po, &pgen))
			break;
		pc = (struct mlc__item *)(void *)(a->base + po);
		/* PIECE, then whose.  Bytes 16..31 hold our stamp while
		 * the chunk is ALLOC, and a dead writer's ALLOC chunk is
		 * reclaimed only once its stamp proves it dead: the head's
		 * offset and generation written over it first made a stamp
		 * no process matches, so a writer that died before the
		 * PIECE store leaked the chunk for good.  A PIECE that
		 * names no head yet (its bytes a stamp, no chunk offset) is
		 * the sweep's once the lock is repaired; nobody else sees
		 * it while the class lock is held. */
		ck_pr_store_32(&pc->it_state, MLC__ST_MAKE(MLC__PIECE, 0));
		ck_pr_fence_store();
		MLC_PAUSE(CHAIN_MARKED);
		ck_pr_store_64(&pc->it_head, *off);
		ck_pr_store_64(&pc->it_hgen, *gen);
		MLC_PAUSE(CHAIN_PIECE);
		ck_pr_store_64(mlc__chain_piece(h, c->cl_size, i), po);
		ck_pr_fence_store();
		ck_pr_store_64(mlc__chain_count(h, c->cl_size), i + 1);
		demand_note(a, c);
	}
	if (i < n) {
		uint32_t k = chunk_idx(a, *off, c->cl_size);

		chain_drop(a, c, h, *off, *gen);
		chunk_release(c, h);
		chunk_push(a, c, p, k);
		mlc__lock_give(&c->cl_lock);
		return -ENOSPC;
	}
	mlc__lock_give(&c->cl_lock);
	return 0;
}

/* Free the unlinked LIVE chunks of class @p ci (locked) that frees which
 * gave up on its lock left behind (mlc__free()).  The class's sweep frees
 * them too, but only when the class allocates again: one that never does
 * kept them, and a page move of a class with a page or two never drains
 * them, so their pages were lost to every class (test-evict
 * test_free_given_up_reclaimed, review AL).  cl_left is where the walk
 * goes on (page index + 1; 0: nothing left).  At most SWEEP_MAX chunks a
 * call, as a sweep, for the lock is held meanwhile; the next heal goes on.
 * A chunk whose stripes are busy is walked again later.  A free that
 * gives up meanwhile stores 1 (the walk starts over): the CAS keeps it. */
static void
class_left_free(struct mlc_arena *a, uint32_t ci)
{
	struct mlc__class *c = &a->classes[ci];
	uint32_t start = ck_pr_load_32(&c->cl_left), busy = UINT32_MAX;
	uint32_t p = start - 1, next;
	uint64_t seen = 0;

	if (start == 0 || start > a->npages)
		p = 0;
	for (; p < a->npages && seen < SWEEP_MAX; p++) {
		/* A page joins or leaves class ci only under its lock,
		 * which we hold: the class read here holds still. */
		if (a->pages[p].pg_class != ci + 1)
			continue;
		seen += c->cl_per_page;
		for (uint32_t k = 0; k < c->cl_per_page; k++) {
			struct mlc__item *it = mlc__chunk_item(a, p,
							       c->cl_size, k);
			uint64_t off = chunk_off(a, p, c->cl_size, k);
			int rc;

			if (MLC__ST_STATE(ck_pr_load_32(&it->it_state)) !=
			    MLC__LIVE)
				continue;
			rc = mlc__table_chunk_orphan(a, off,
						     mlc__item_hash(a, off));
			if (rc < 0 && busy == UINT32_MAX)
				busy = p;	/* its stripes held */
			if (rc <= 0)
				continue;
			chain_leave(a, c, p, k, it);
			chunk_release(c, it);
			chunk_push(a, c, p, k);
		}
	}
	if (busy != UINT32_MAX)
		next = busy + 1;
	else
		next = p < a->npages ? p + 1 : 0;
	ck_pr_cas_32(&c->cl_left, start, next);
}

/* Free the chunk at @p off that its caller owned as allocation @p gen in
 * state @p state (LIVE: unlinked by the caller; ALLOC: never linked).  The
 * proof is made under the lock of the class that owns the page now: if a
 * sweep or a page move freed the chunk first, or it was reused since, this
 * is a counted no-op, never a free of another key's chunk.
 *
 * An unlinked LIVE chunk is the sweep's too (a dead writer's, found with
 * no slot: evict_live()), so its free waits for the class lock at most
 * STEAL_WAIT_MS and otherwise leaves it to the sweep: a process stopped
 * while it holds that class's lock blocked every write whose index
 * victim, or replaced value, was of that class, whatever its own size
 * (test-evict test_index_full_class_stopped, review AJ).  An ALLOC chunk
 * is only its writer's to free, and is waited for. */
void
mlc__free(struct mlc_arena *a, uint64_t off, uint32_t state, uint64_t gen)
{
	uint32_t p = mlc__off_page(a, off);
	struct mlc__class *c = NULL;
	struct mlc__item *it;
	uint32_t ci;

	for (int tries = 0; tries < 4; tries++) {
		ci = ck_pr_load_32(&a->pages[p].pg_class);
		if (ci == 0 || ci > a->nclasses)
			break;		/* page moved: the chunk was freed */
		ci--;
		if (class_lock_for(a, ci, state == MLC__LIVE) < 0) {
			/* Left for the sweep, and for the next heal
			 * (class_left_free()) if the class never sweeps. */
			if (state == MLC__LIVE)
				ck_pr_store_32(&a->classes[ci].cl_left, 1);
			return;
		}
		c = &a->classes[ci];
		if (a->pages[p].pg_class == ci + 1)
			break;
		mlc__lock_give(&c->cl_lock);
		c = NULL;
	}
	if (c == NULL) {
		ck_pr_inc_64(&a->hdr->ah_stale_frees);
		return;
	}
	MLC_PAUSE(FREE_LOCKED);
	it = chunk_owned(a, c, p, off, ST_BIT(state), gen, NULL);
	if (it != NULL) {
		uint32_t k = chunk_idx(a, off, c->cl_size);

		chain_leave(a, c, p, k, it);
		chunk_release(c, it);
		chunk_push(a, c, p, k);
	} else {
		ck_pr_inc_64(&a->hdr->ah_stale_frees);
	}
	mlc__lock_give(&c->cl_lock);
}
