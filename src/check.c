/*
 * Read-only inspection for operators: list namespaces, and check an
 * arena's structures without changing a byte (mlcctl check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <ck_pr.h>

#include "hash.h"
#include "mlc-int.h"
#include "pause.h"

MLC_EXPORT int
mlc_arena_namespace(struct mlc_arena *a, uint32_t i, char *name, size_t cap)
{
	uint32_t seen = 0;

	if (a == NULL || name == NULL || cap == 0)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	for (uint32_t idx = 1; idx < a->max_ns; idx++) {
		const struct mlc__ns *ns = &a->ns[idx];
		size_t len;

		if (!ck_pr_load_32((uint32_t *)&ns->ns_used))
			continue;
		if (seen++ != i)
			continue;
		ck_pr_fence_load();	/* the name was written before */
		len = MLC_MIN(ns->ns_name_len, MLC_NAME_MAX);
		if (len + 1 > cap)
			return -ENOBUFS;
		memcpy(name, ns->ns_name, len);
		name[len] = '\0';
		return 0;
	}
	return -ENOENT;
}

/* A linked offset, and the bucket version it was read under. */
struct linked {
	uint64_t off;
	uint32_t b, v;
};

struct checker {
	struct mlc_arena *a;
	struct mlc_check_report r;
	struct linked *offs;	/* every linked offset (NULL: no memory) */
	size_t noffs;
	uint64_t max_version;	/* highest version of a linked item */
	uint64_t max_version_at; /* its bucket */
	uint64_t sound, misplaced; /* sound linked items; of them, those
				 * whose key hashes to other buckets */
	uint64_t misplaced_at;	/* the first one's bucket */
};

/* What one bucket showed, kept until its version proves the read whole. */
struct bucket_view {
	uint32_t used, bad_slots, sound, misplaced, noffs;
	const char *what;	/* the bucket's first problem */
	uint64_t offs[MLC__SLOTS];
	uint64_t max_version;
};

/* Reads of a bucket, or of the pool list, before taking what is seen on
 * an arena in use as it is (a writer stopped mid-way: no lock can wait
 * for it). */
#define CHECK_TRIES 64

MLC_COLD static void
problem(struct checker *ck, const char *what, uint64_t where)
{
	if (ck->r.problems++ == 0)
		snprintf(ck->r.first_problem, sizeof(ck->r.first_problem),
			 "%s (at %llu)", what, (unsigned long long)where);
}

/* Is the linked item at @p off a whole chunk of its page's class, with a
 * generation its page handed out?  (A slot left on a chunk that was freed
 * and carved again fails this, or the state check.) */
static bool
chunk_sound(const struct mlc_arena *a, uint64_t off,
	    const struct mlc__item *it)
{
	uint32_t p = mlc__off_page(a, off);
	uint32_t ci = ck_pr_load_32(&a->pages[p].pg_class);
	uint32_t in_page = mlc__off_in_page(a, off);
	uint64_t gen = mlc__item_gen(it);

	/* pg_gen counts every allocation; a generation is its low 40 bits
	 * (arena.h), so past 2^40 only "not 0" can be checked. */
	return ci != 0 && ci <= a->nclasses &&
	       in_page % a->class_size[ci - 1] == 0 && gen != 0 &&
	       (gen <= ck_pr_load_64(&a->pages[p].pg_gen) ||
		ck_pr_load_64(&a->pages[p].pg_gen) > MLC__GEN_MASK);
}

/* Does the linked item at @p off fit its chunk (a writer takes one its
 * key and value fit: a reader, which bounds its copy by the page alone,
 * @p room bytes, would serve the next chunks' bytes), and if it is
 * chained (arena.h), does its table name as many pieces as its lengths
 * need, each a PIECE of its class that names this head? */
static bool
item_whole(const struct mlc_arena *a, uint64_t off, const struct mlc__item *it,
	   uint32_t room)
{
	uint32_t w = ck_pr_load_32((uint32_t *)&it->it_state);
	uint32_t klen = it->it_klen, vlen = mlc__item_vlen(it), ci, c, n;

	if (!(w & MLC__ST_CHAIN))
		return (uint64_t)MLC__ITEM_HDR + klen + vlen <=
		       MLC_MIN(room, mlc__page_chunk(a, off));
	/* Read without the class lock: the caller judges the item only if
	 * its identity held from before these reads to after them. */
	ci = ck_pr_load_32(&a->pages[mlc__off_page(a, off)].pg_class);
	if (ci == 0 || ci > a->nclasses)
		return false;
	ci--;			/* 0-based, as mlc__chunk_start() takes it */
	c = a->class_size[ci];
	n = mlc__chain_pieces(c, klen, vlen);
	if (n == 0 || c > room || ck_pr_load_64(mlc__chain_count(it, c)) != n)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t po = ck_pr_load_64(mlc__chain_piece(it, c, i));
		const struct mlc__item *pc;

		if (!mlc__chunk_start(a, po, ci, c))
			return false;
		pc = (const struct mlc__item *)(const void *)(a->base + po);
		if (MLC__ST_STATE(ck_pr_load_32((uint32_t *)&pc->it_state)) !=
			    MLC__PIECE ||
		    ck_pr_load_64((uint64_t *)&pc->it_head) != off ||
		    ck_pr_load_64((uint64_t *)&pc->it_hgen) !=
			    mlc__item_gen(it))
			return false;
	}
	return true;
}

static int
off_cmp(const void *x, const void *y)
{
	const struct linked *a = x, *b = y;

	if (a->off != b->off)
		return a->off < b->off ? -1 : 1;
	return a->b < b->b ? -1 : a->b > b->b;
}

/* Two slots on one chunk: the mark of a chunk given to a second key while
 * the first still had it.  On an arena in use, a chunk freed after its
 * slot was read and reused by a key in a later bucket is seen twice too:
 * it counts only if neither bucket changed since.  Re-read in the order
 * walked, unchanged versions mean both slots held the chunk at once (the
 * first from its read until its re-read, the second from its read, which
 * came between, until its own). */
static void
check_shared_chunks(struct checker *ck)
{
	const struct mlc_arena *a = ck->a;

	if (ck->offs == NULL)
		return;
	qsort(ck->offs, ck->noffs, sizeof(*ck->offs), off_cmp);
	for (size_t i = 1; i < ck->noffs; i++) {
		const struct linked *x = &ck->offs[i - 1], *y = &ck->offs[i];

		if (x->off != y->off)
			continue;
		if (ck_pr_load_32((uint32_t *)&a->table[x->b].bk_version) !=
			    x->v ||
		    ck_pr_load_32((uint32_t *)&a->table[y->b].bk_version) !=
			    y->v)
			continue;
		ck->r.bad_slots++;
		problem(ck, "two slots point at one chunk", y->off);
	}
}

/* What a sound linked item says about the header's live fields: its
 * version was taken from ah_version. */
static void
item_fields(struct bucket_view *bv, const struct mlc__item *it)
{
	uint64_t ver = mlc__item_version(it);

	if (ver > bv->max_version)
		bv->max_version = ver;
}

/* Is the linked item @p it of namespace @p ns of a generation its
 * namespace has reached?  Purges only raise ns_gen, and a writer takes an
 * item's from it (ns_gen read after the item, so a purge meanwhile only
 * raises it further; compared modulo 2^32).  A namespace generation set
 * back makes purged items answer again. */
static bool
nsgen_sound(const struct mlc_arena *a, uint16_t ns, const struct mlc__item *it)
{
	uint32_t gen = mlc__item_nsgen(it);

	ck_pr_fence_load();
	return (int32_t)(gen - ck_pr_load_32(&a->ns[ns].ns_gen)) <= 0;
}

/* Read bucket @p b's slots and the items they point at into @p bv.  A
 * slot is judged only if it proves it held the same chunk, of the same
 * generation, from before the item's first byte was read to after its
 * last (mlc__identity_take/_held(), as a reader): on a bucket that changes
 * through every read of check_index(), a chunk freed and given to another
 * key meanwhile is not taken for damage.  Damage stays put, so it proves
 * that too. */
static void
bucket_read(const struct mlc_arena *a, uint32_t b, struct bucket_view *bv)
{
	const struct mlc__bucket *bk = &a->table[b];

	memset(bv, 0, sizeof(*bv));
	for (int s = 0; s < MLC__SLOTS; s++) {
		uint64_t w = ck_pr_load_64((uint64_t *)&bk->bk_slot[s]);
		uint64_t gl, hash = 0;
		struct mlc__item *it;
		const char *bad = NULL;
		uint32_t room;
		uint16_t ns;

		if (w == 0)
			continue;
		MLC_PAUSE(CHECK_SLOT_READ);
		bv->used++;
		it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
		if (it == NULL) {	/* no writer stores such a word */
			if (bv->bad_slots++ == 0)
				bv->what = "slot points outside the pages";
			continue;
		}
		if (!mlc__identity_take(bk, s, w, it, &gl))
			continue;	/* changed meanwhile: not judged */
		ns = ck_pr_load_16((uint16_t *)&it->it_ns);
		if (MLC__ST_STATE(ck_pr_load_32((uint32_t *)&it->it_state)) !=
			    MLC__LIVE ||
		    !chunk_sound(a, MLC__SLOT_OFF(w), it) ||
		    it->it_klen == 0 || !item_whole(a, MLC__SLOT_OFF(w), it,
						    room) ||
		    ns >= a->max_ns || !ck_pr_load_32(&a->ns[ns].ns_used))
			bad = "slot points at an item that does not belong "
			      "there";
		else if (!nsgen_sound(a, ns, it))
			bad = "an item's namespace generation is newer than "
			      "its namespace's (a purge undone?)";
		else
			hash = mlc__item_hash(a, MLC__SLOT_OFF(w));
		ck_pr_fence_load();
		if (!mlc__identity_held(bk, s, w, it, gl))
			continue;	/* freed and reused meanwhile */
		bv->offs[bv->noffs++] = MLC__SLOT_OFF(w);
		if (bad != NULL) {
			if (bv->bad_slots++ == 0)
				bv->what = bad;
			continue;
		}
		bv->sound++;
		/* Its key, under the arena's seed, belongs in this bucket
		 * under this tag?  (Items keep no hash: arena.h.) */
		if (!mlc__table_slot_fits(a, hash, b, MLC__SLOT_TAG(w)))
			bv->misplaced++;	/* judged after the walk */
		else
			item_fields(bv, it);
	}
}

/* Each bucket as readers see it: read between two equal, even versions
 * (a writer changes a slot, or frees what one points at, only inside an
 * odd one), so what a concurrent write does is not taken for damage. */
static void
check_index(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	struct bucket_view bv;

	for (uint32_t b = 0; b <= a->bucket_mask; b++) {
		const struct mlc__bucket *bk = &a->table[b];
		uint32_t v0 = 0;

		ck->r.buckets++;
		for (int t = 0; t < CHECK_TRIES; t++) {
			v0 = ck_pr_load_32((uint32_t *)&bk->bk_version);
			ck_pr_fence_load();
			bucket_read(a, b, &bv);
			ck_pr_fence_load();
			if (!(v0 & 1) &&
			    ck_pr_load_32((uint32_t *)&bk->bk_version) == v0)
				break;
		}
		if (v0 & 1)
			ck->r.odd_versions++;	/* a write in progress */
		ck->r.slots_used += bv.used;
		if (bv.bad_slots) {
			ck->r.bad_slots += bv.bad_slots;
			for (uint32_t i = 0; i < bv.bad_slots; i++)
				problem(ck, bv.what, b);
		}
		if (bv.misplaced && ck->misplaced == 0)
			ck->misplaced_at = b;
		ck->sound += bv.sound;
		ck->misplaced += bv.misplaced;
		if (bv.max_version > ck->max_version) {
			ck->max_version = bv.max_version;
			ck->max_version_at = b;
		}
		for (uint32_t i = 0; ck->offs != NULL && i < bv.noffs; i++)
			ck->offs[ck->noffs++] = (struct linked){
				bv.offs[i], b, v0 };
	}
	/* Items whose keys hash to other buckets: most of them, and the
	 * seed is what changed (every lookup then misses); a few, and
	 * those slots are wrong. */
	if (ck->misplaced >= 2 && ck->misplaced * 2 > ck->sound) {
		ck->r.bad_header++;
		problem(ck, "the items' keys do not hash to their slots under "
			    "the arena's seed (seed changed?)",
			ck->misplaced_at);
	} else {
		ck->r.bad_slots += ck->misplaced;
		for (uint64_t i = 0; i < ck->misplaced; i++)
			problem(ck, "slot points at an item that does not "
				    "belong there", ck->misplaced_at);
	}
}

/* One tally of the page descriptors, the classes' and the pool's counts,
 * and the pool list. */
struct tally {
	uint64_t pages, pages_free;
	uint64_t chunks_live, chunks_alloc, chunks_free;
	uint32_t unknown, unknown_at;	/* pages of an unknown class */
	uint32_t class_off, class_off_at; /* classes whose count differs */
	uint32_t pool_free;		/* ah_pool_free */
	uint32_t pool_listed;	/* pages on the pool list; UINT32_MAX: a
				 * page of a class on it, or a cycle */
	uint32_t pool_head;
};

static void
pages_tally(const struct mlc_arena *a, struct tally *t)
{
	const struct mlc__hdr *h = a->hdr;
	uint32_t per_class[MLC__NCLASSES_MAX] = { 0 };
	uint32_t n = 0;

	memset(t, 0, sizeof(*t));
	for (uint32_t p = 0; p < a->npages; p++) {
		uint32_t ci = ck_pr_load_32(&a->pages[p].pg_class);
		uint32_t size;

		t->pages++;
		if (ci == 0) {
			t->pages_free++;
			continue;
		}
		if (ci > a->nclasses) {
			if (t->unknown++ == 0)
				t->unknown_at = p;
			continue;
		}
		per_class[ci - 1]++;
		size = a->class_size[ci - 1];
		for (uint32_t k = 0; k < a->page_size / size; k++) {
			const struct mlc__item *it =
				mlc__chunk_item(a, p, size, k);

			switch (MLC__ST_STATE(ck_pr_load_32(
					(uint32_t *)&it->it_state))) {
			case MLC__LIVE:
			case MLC__PIECE:	/* a chained item's */
				t->chunks_live++;
				break;
			case MLC__ALLOC:
				t->chunks_alloc++;
				break;
			default:
				t->chunks_free++;
			}
		}
	}
	for (uint32_t ci = 0; ci < a->nclasses; ci++)
		if (per_class[ci] != ck_pr_load_32(&a->classes[ci].cl_pages) &&
		    t->class_off++ == 0)
			t->class_off_at = ci;
	/* The pool list: pages of no class, and no cycle (at most npages
	 * steps). */
	t->pool_head = ck_pr_load_32((uint32_t *)&h->ah_pool_head);
	for (uint32_t p = t->pool_head; p != 0; n++) {
		if (n > a->npages || p > a->npages ||
		    ck_pr_load_32(&a->pages[p - 1].pg_class)) {
			n = UINT32_MAX;
			break;
		}
		p = ck_pr_load_32(&a->pages[p - 1].pg_next);
	}
	t->pool_listed = n;
	t->pool_free = ck_pr_load_32((uint32_t *)&h->ah_pool_free);
}

static bool
tally_agrees(const struct tally *t)
{
	return t->unknown == 0 && t->class_off == 0 &&
	       t->pages_free == t->pool_free && t->pool_listed == t->pool_free;
}

/* No page move or rebuild marked in progress (alloc.c: moving_begin()). */
static bool
pages_calm(const struct mlc_arena *a)
{
	if (ck_pr_load_32((uint32_t *)&a->hdr->ah_pool_moving))
		return false;
	for (uint32_t ci = 0; ci < a->nclasses; ci++)
		if (ck_pr_load_32(&a->classes[ci].cl_moving))
			return false;
	return true;
}

/* Pages move between classes and the pool under locks a read-only check
 * cannot take, so a tally can catch a move half-way.  A tally is whole
 * when it began with no move marked in progress and no move began during
 * it (the movers' side: alloc.c, moving_begin()): then counts that do not
 * add up are damage.  Tallied again until one is whole or adds up; when
 * none of CHECK_TRIES is whole (a mover stopped or dead before its lock's
 * next taker repairs its structures, or pages kept moving), counts that
 * do not add up are a move in progress (pages_moving), not a problem.  A
 * page of an unknown class is damage in any tally. */
static void
check_pages(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	uint64_t *begun = &a->hdr->ah_moves_begun;
	struct tally t;
	bool whole = false;

	for (int i = 0; i < CHECK_TRIES; i++) {
		uint64_t b0 = ck_pr_load_64(begun);
		bool calm;

		ck_pr_fence_load();
		calm = pages_calm(a);
		ck_pr_fence_load();
		pages_tally(a, &t);
		ck_pr_fence_load();
		whole = calm && ck_pr_load_64(begun) == b0;
		if (whole || tally_agrees(&t))
			break;
	}
	ck->r.pages = t.pages;
	ck->r.pages_free = t.pages_free;
	ck->r.chunks_live = t.chunks_live;
	ck->r.chunks_alloc = t.chunks_alloc;
	ck->r.chunks_free = t.chunks_free;
	if (t.unknown) {
		ck->r.bad_pages += t.unknown;
		problem(ck, "page of an unknown size class", t.unknown_at);
	}
	if (tally_agrees(&t))
		return;
	if (!whole) {
		ck->r.pages_moving = 1;
		return;
	}
	if (t.class_off) {
		ck->r.bad_pages += t.class_off;
		problem(ck, "class page count differs from its pages",
			t.class_off_at);
	}
	if (t.pages_free != t.pool_free)
		problem(ck, "pool count differs from its pages", t.pages_free);
	if (t.pool_listed != t.pool_free) {
		ck->r.bad_header++;
		problem(ck, "the page pool list does not hold the pool's "
			    "pages (at right: its head)", t.pool_head);
	}
}

/* Does @p lk look held (by a live writer, one stopped, or one dead until
 * the next taker repairs what it left)?  Only read: glibc keeps the
 * holder's thread id in the mutex (0: free).  Elsewhere: unknown, taken
 * as free. */
static bool
lock_held(const struct mlc__lock *lk)
{
#ifdef __GLIBC__
	return ck_pr_load_int((int *)(uintptr_t)&lk->lk_mutex.__data.__owner)
	       != 0;
#else
	(void)lk;
	return false;
#endif
}

/* A class's words the allocator follows without a bound (alloc.c): its
 * chunk size and count, which never change after creation, and the page
 * and chunk numbers it keeps, in range on a sound arena (a page index + 1
 * up to npages, each stored whole; a hand's chunk below the count, which
 * a sweep steps without a store fence under the class lock, so that one
 * is judged only while the lock is free).  Out of range, the next write
 * of the class writes outside its page. */
static void
check_classes(struct checker *ck)
{
	const struct mlc_arena *a = ck->a;

	for (uint32_t ci = 0; ci < a->nclasses; ci++) {
		struct mlc__class *c = &a->classes[ci];
		uint32_t per = a->page_size / a->class_size[ci];

		if (ck_pr_load_32(&c->cl_size) == a->class_size[ci] &&
		    ck_pr_load_32(&c->cl_per_page) == per &&
		    ck_pr_load_32(&c->cl_ring) <= a->npages &&
		    ck_pr_load_32(&c->cl_partial) <= a->npages &&
		    ck_pr_load_32(&c->cl_hand_page) <= a->npages &&
		    ck_pr_load_32(&c->cl_shand_page) <= a->npages &&
		    ((ck_pr_load_32(&c->cl_hand_chunk) < per &&
		      ck_pr_load_32(&c->cl_shand_chunk) < per) ||
		     lock_held(&c->cl_lock)))
			continue;
		ck->r.bad_pages++;
		problem(ck, "a size class's chunk size or count differs from "
			    "the header's, or it names a page or chunk that "
			    "does not exist (at right: the class)", ci);
	}
}

/* A page's descriptor as the allocator last left it: while none of these
 * moved, its free list did not either (a pop takes a generation from
 * pg_gen, which only grows; a push without a pop raises pg_nfree; a page
 * carved again is marked and counted in ah_moves_begun). */
struct page_view {
	uint64_t gen, moves;
	uint32_t cls, nfree, free, carving;
};

static void
page_view(const struct mlc_arena *a, uint32_t p, struct page_view *v)
{
	struct mlc__page *pg = &a->pages[p];

	v->moves = ck_pr_load_64(&a->hdr->ah_moves_begun);
	ck_pr_fence_load();
	v->cls = ck_pr_load_32(&pg->pg_class);
	v->gen = ck_pr_load_64(&pg->pg_gen);
	v->nfree = ck_pr_load_32(&pg->pg_nfree);
	v->free = ck_pr_load_32(&pg->pg_free);
	v->carving = ck_pr_load_32(&pg->pg_carving);
}

/* Does page @p p's free list, as @p v saw its head, hold exactly
 * v->nfree chunks of the page, each FREE, with no cycle?  The walk stops
 * after the count, so it is bounded whatever the links say. */
static bool
free_list_sound(const struct mlc_arena *a, uint32_t p,
		const struct page_view *v)
{
	uint32_t size = a->class_size[v->cls - 1];
	uint32_t per = a->page_size / size, n = 0;

	if (v->nfree > per)
		return false;
	for (uint32_t idx = v->free; idx != 0; n++) {
		const struct mlc__item *it;

		if (idx > per || n == v->nfree)
			return false;
		it = mlc__chunk_item(a, p, size, idx - 1);
		if (MLC__ST_STATE(ck_pr_load_32((uint32_t *)&it->it_state)) !=
		    MLC__FREE)
			return false;
		idx = ck_pr_load_32((uint32_t *)&it->it_next);
	}
	return n == v->nfree;
}

/* Each page's free list, which the allocator pops without looking (a
 * linked chunk on it is handed to another key; a count longer than the
 * list, or a number past the page, makes it write outside the page).
 * Lists change under class locks a check cannot take: a page's list is
 * judged only from a walk between two equal views of its descriptor,
 * taken again while they differ (left unjudged after CHECK_TRIES), and
 * one that does not add up is damage only if its class's lock was free
 * after the walk: a holder changes a list in a few plain stores, and one
 * stopped or killed among them leaves it half-changed until it goes on,
 * or the lock's next taker rebuilds the class (alloc.c). */
static void
check_free_lists(struct checker *ck)
{
	const struct mlc_arena *a = ck->a;

	for (uint32_t p = 0; p < a->npages; p++) {
		for (int t = 0; t < CHECK_TRIES; t++) {
			struct page_view v0, v1;
			bool sound;

			page_view(a, p, &v0);
			if (v0.cls == 0 || v0.cls > a->nclasses || v0.carving)
				break;	/* the pool's, or not carved yet */
			ck_pr_fence_load();
			sound = free_list_sound(a, p, &v0);
			ck_pr_fence_load();
			page_view(a, p, &v1);
			if (memcmp(&v0, &v1, sizeof(v0)) != 0)
				continue;
			if (!sound &&
			    lock_held(&a->classes[v0.cls - 1].cl_lock))
				break;	/* being changed: unjudged */
			if (!sound) {
				ck->r.bad_pages++;
				problem(ck, "a page's free list holds a chunk "
					    "that is not free, or not of the "
					    "page, or not its count (at "
					    "right: the page)", p);
			}
			break;
		}
	}
}

/* The header against the file and the data.  False when the rest must
 * not be walked: the mapping reaches past the end of the file, and a
 * read there would raise SIGBUS. */
static bool
check_header(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	const struct mlc__hdr *h = a->hdr;
	struct stat st;

	if (a->fd >= 0 && fstat(a->fd, &st) == 0 &&
	    (uint64_t)st.st_size != a->size) {
		ck->r.bad_header++;
		problem(ck, (uint64_t)st.st_size < a->size ?
			    "the arena file was truncated (its size, at right, "
			    "is less than the header's)" :
			    "the arena file grew (its size, at right, is not "
			    "the header's)", (uint64_t)st.st_size);
		if ((uint64_t)st.st_size < a->size)
			return false;
	}
	if (ck_pr_load_64((uint64_t *)&h->ah_check) != mlc__hdr_check(h)) {
		ck->r.bad_header++;
		problem(ck, "the header's fixed part fails its checksum", 0);
	}
	if (h->ah_seed != a->seed) {
		ck->r.bad_header++;
		problem(ck, "the header's seed changed since attach", 16);
	}
	return true;
}

/* The namespace table's used entries (*@p used) against ah_ns_count.  A
 * namespace is added under the namespace lock by marking the lock's aux
 * word, storing its entry's ns_used, counting it and clearing the mark,
 * each store behind a store fence (arena.c: mlc__ns_open()).  A walk is
 * judged only when whole: the mark clear before it and after it, and the
 * count the same (the mark read after the walk, the count after the mark).
 * An entry the walk saw used but the count left out then has its mark
 * seen after the walk, or its count (stored before the mark was cleared)
 * seen after the mark; a count that took in an entry the walk missed
 * cannot be, as ns_used is stored first.  So a whole walk that disagrees
 * is damage.  Until 0.3.0 a maker stopped between its two stores was
 * reported.  Returns NS_AGREE once a walk agrees; after CHECK_TRIES walks,
 * NS_DAMAGE if one of them was whole, else NS_MAKING (an addition in
 * progress through every walk: a maker stopped, or dead until the next
 * opener repairs the lock). */
enum ns_verdict { NS_AGREE, NS_DAMAGE, NS_MAKING };

static enum ns_verdict
ns_count_agrees(const struct mlc_arena *a, uint32_t *used)
{
	const uint32_t *count = (const uint32_t *)&a->hdr->ah_ns_count;
	const uint64_t *mark = (const uint64_t *)&a->hdr->ah_ns_lock.lk_aux;
	bool whole = false;

	for (int t = 0; t < CHECK_TRIES; t++) {
		uint64_t m0, m1;
		uint32_t c0, c1, n = 0;

		m0 = ck_pr_load_64(mark);
		ck_pr_fence_load();
		c0 = ck_pr_load_32(count);
		ck_pr_fence_load();
		for (uint32_t i = 1; i < a->max_ns; i++)
			n += ck_pr_load_32(&a->ns[i].ns_used) != 0;
		MLC_PAUSE(CHECK_NS_WALKED);
		ck_pr_fence_load();
		m1 = ck_pr_load_64(mark);
		ck_pr_fence_load();
		c1 = ck_pr_load_32(count);
		*used = n;
		if (c1 == c0 && n == c0)
			return NS_AGREE;
		if (m0 == 0 && m1 == 0 && c1 == c0)
			whole = true;
	}
	return whole ? NS_DAMAGE : NS_MAKING;
}

/* Live header words against what they count or bound. */
static void
check_live(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	const struct mlc__hdr *h = a->hdr;
	uint64_t version, fence = 0;
	uint32_t used = 0, fence_at = 0;

	for (uint32_t s = 0; s <= a->stripe_mask; s++) {
		uint64_t f = ck_pr_load_64(&a->stripes[s].lk_aux);

		if (f > fence) {
			fence = f;
			fence_at = s;
		}
	}
	/* The counter after every version and fence it bounds: it only
	 * grows, and each of them was taken from it before it was stored,
	 * so on a live arena a write between the reads cannot put one
	 * above it (read first, the counter lagged a concurrent delete's
	 * fence, and mlcctl check called a sound arena corrupt). */
	ck_pr_fence_load();
	version = ck_pr_load_64((uint64_t *)&h->ah_version);
	if (version == 0 || ck->max_version > version) {
		ck->r.bad_header++;
		problem(ck, "an item's version is above the arena's version "
			    "counter (at right: its bucket)",
			ck->max_version_at);
	}
	if (fence > version) {
		ck->r.bad_header++;
		problem(ck, "a stripe's fence is above the arena's version "
			    "counter", fence_at);
	}
	switch (ns_count_agrees(a, &used)) {
	case NS_AGREE:
		break;
	case NS_MAKING:
		ck->r.ns_making = 1;
		break;
	case NS_DAMAGE:
		ck->r.bad_header++;
		problem(ck, "the namespace count differs from the table", used);
	}
}

/* Is entry @p i of the attached processes whole: a free entry all zero, a
 * used one with a handle and no twin?  An entry changing meanwhile (its
 * sequence odd or moved) passes. */
static bool
proc_entry_ok(struct mlc__hdr *h, uint32_t i)
{
	struct mlc__proc *p = &h->ah_procs[i];
	uint32_t seq = ck_pr_load_32(&p->pr_seq);
	uint32_t pid;
	bool ok = true;

	if (seq & 1)
		return true;
	ck_pr_fence_load();
	pid = ck_pr_load_32(&p->pr_pid);
	if (pid == 0)
		ok = ck_pr_load_32(&p->pr_ns) == 0 &&
		     ck_pr_load_64(&p->pr_start) == 0 &&
		     ck_pr_load_32(&p->pr_arenas) == 0 &&
		     ck_pr_load_32(&p->pr_caches) == 0 &&
		     ck_pr_load_32(&p->pr_since) == 0;
	else if (ck_pr_load_32(&p->pr_arenas) == 0 &&
		 ck_pr_load_32(&p->pr_caches) == 0)
		ok = false;
	for (uint32_t j = i + 1; ok && pid != 0 && j < MLC__PROCS; j++)
		ok = !(ck_pr_load_32(&h->ah_procs[j].pr_pid) == pid &&
		       ck_pr_load_32(&h->ah_procs[j].pr_ns) ==
		       ck_pr_load_32(&p->pr_ns) &&
		       ck_pr_load_64(&h->ah_procs[j].pr_start) ==
		       ck_pr_load_64(&p->pr_start));
	ck_pr_fence_load();
	return ok || ck_pr_load_32(&p->pr_seq) != seq;
}

static void
check_procs(struct checker *ck)
{
	for (uint32_t i = 0; i < MLC__PROCS; i++) {
		if (proc_entry_ok(ck->a->hdr, i))
			continue;
		ck->r.bad_header++;
		problem(ck, "an entry of the attached processes is half free, "
			    "has no handle or has a twin (at right: its index)",
			i);
		break;
	}
}

MLC_EXPORT int
mlc_arena_check(struct mlc_arena *a, struct mlc_check_report *rep)
{
	struct checker ck;

	if (a == NULL || rep == NULL || rep->size < sizeof(size_t) + 8)
		return -EINVAL;
	memset(&ck, 0, sizeof(ck));
	ck.a = a;
	ck.r.size = sizeof(ck.r);
	if (!check_header(&ck))
		goto out;
	ck.offs = malloc(((size_t)a->bucket_mask + 1) * MLC__SLOTS *
			 sizeof(*ck.offs));
	check_index(&ck);
	check_shared_chunks(&ck);
	free(ck.offs);
	check_pages(&ck);
	check_classes(&ck);
	check_free_lists(&ck);
	check_live(&ck);
	check_procs(&ck);
out:
	mlc__out_copy(rep, &ck.r, sizeof(ck.r));
	return ck.r.problems ? MLC_ECORRUPT : 0;
}
