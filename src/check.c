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

MLC_EXPORT int
mlc_arena_namespace(struct mlc_arena *a, uint32_t i, char *name, size_t cap)
{
	uint32_t seen = 0;

	if (a == NULL || name == NULL || cap == 0)
		return -EINVAL;
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

struct checker {
	struct mlc_arena *a;
	struct mlc_check_report r;
	uint64_t *offs;		/* every linked offset (NULL: no memory) */
	size_t noffs;
	uint64_t max_version;	/* highest version of a linked item */
	uint64_t max_version_at; /* its bucket */
};

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
	uint32_t p = (uint32_t)((off - a->pages_off) >> a->page_shift);
	uint32_t ci = ck_pr_load_32(&a->pages[p].pg_class);
	uint64_t in_page = (off - a->pages_off) & (a->page_size - 1);
	uint64_t gen = ck_pr_load_64((uint64_t *)&it->it_gen);

	return ci != 0 && ci <= a->nclasses &&
	       in_page % a->class_size[ci - 1] == 0 && gen != 0 &&
	       gen <= ck_pr_load_64(&a->pages[p].pg_gen);
}

static int
off_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Two slots on one chunk: the mark of a chunk given to a second key while
 * the first still had it. */
static void
check_shared_chunks(struct checker *ck)
{
	if (ck->offs == NULL)
		return;
	qsort(ck->offs, ck->noffs, sizeof(*ck->offs), off_cmp);
	for (size_t i = 1; i < ck->noffs; i++) {
		if (ck->offs[i] == ck->offs[i - 1]) {
			ck->r.bad_slots++;
			problem(ck, "two slots point at one chunk",
				ck->offs[i]);
		}
	}
}

/* Is bucket @p b one of the two that the item's hash picks? */
static bool
bucket_of(const struct mlc_arena *a, const struct mlc__item *it, uint32_t b,
	  uint16_t tag)
{
	uint32_t b0 = (uint32_t)it->it_hash & a->bucket_mask;
	uint32_t b1 = (b0 ^ ((uint32_t)tag * 0x5bd1e995u)) & a->bucket_mask;

	if (b1 == b0)
		b1 = b0 ^ 1;
	return b == b0 || b == b1;
}

/* What a sound linked item says about the header's live fields: its
 * version was taken from ah_version, and its hash was made with the seed
 * (a mismatch means the seed changed: every lookup then misses). */
static void
item_fields(struct checker *ck, const struct mlc__item *it, uint32_t room,
	    uint32_t b)
{
	const struct mlc_arena *a = ck->a;
	uint64_t ver = ck_pr_load_64((uint64_t *)&it->it_version);

	if (ver > ck->max_version) {
		ck->max_version = ver;
		ck->max_version_at = b;
	}
	if (it->it_klen == 0 || (uint64_t)MLC__ITEM_HDR + it->it_klen > room)
		return;
	if (mlc__hash(a->seed, it->it_ns, (const char *)it + MLC__ITEM_HDR,
		      it->it_klen) != it->it_hash) {
		ck->r.bad_header++;
		problem(ck, "an item's hash is not its key's under the "
			    "arena's seed (seed changed?)", b);
	}
}

static void
check_index(struct checker *ck)
{
	struct mlc_arena *a = ck->a;

	for (uint32_t b = 0; b <= a->bucket_mask; b++) {
		const struct mlc__bucket *bk = &a->table[b];

		ck->r.buckets++;
		if (ck_pr_load_32((uint32_t *)&bk->bk_version) & 1)
			ck->r.odd_versions++;	/* a write in progress */
		for (int s = 0; s < MLC__SLOTS; s++) {
			uint64_t w = ck_pr_load_64((uint64_t *)&bk->bk_slot[s]);
			struct mlc__item *it;
			uint32_t room;

			if (w == 0)
				continue;
			ck->r.slots_used++;
			it = mlc__item_at(a, MLC__SLOT_OFF(w), &room);
			if (it == NULL) {
				ck->r.bad_slots++;
				problem(ck, "slot points outside the pages", b);
				continue;
			}
			if (ck->offs != NULL)
				ck->offs[ck->noffs++] = MLC__SLOT_OFF(w);
			if (MLC__ST_STATE(it->it_state) != MLC__LIVE ||
			    !chunk_sound(a, MLC__SLOT_OFF(w), it) ||
			    (uint64_t)MLC__ITEM_HDR + it->it_klen + it->it_vlen >
				    room ||
			    it->it_ns >= a->max_ns ||
			    (uint16_t)((it->it_hash >> 48) | 1) !=
				    MLC__SLOT_TAG(w) ||
			    !bucket_of(a, it, b, MLC__SLOT_TAG(w))) {
				ck->r.bad_slots++;
				problem(ck, "slot points at an item that does "
					    "not belong there", b);
				continue;
			}
			item_fields(ck, it, room, b);
		}
	}
}

static void
check_pages(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	uint64_t per_class[MLC__NCLASSES_MAX] = { 0 };

	for (uint32_t p = 0; p < a->npages; p++) {
		uint32_t ci = a->pages[p].pg_class;
		uint32_t size;

		ck->r.pages++;
		if (ci == 0) {
			ck->r.pages_free++;
			continue;
		}
		if (ci > a->nclasses) {
			ck->r.bad_pages++;
			problem(ck, "page of an unknown size class", p);
			continue;
		}
		per_class[ci - 1]++;
		size = a->class_size[ci - 1];
		for (uint32_t k = 0; k < a->page_size / size; k++) {
			const struct mlc__item *it = (const void *)(a->base +
				a->pages_off + ((uint64_t)p << a->page_shift) +
				(uint64_t)k * size);

			switch (MLC__ST_STATE(ck_pr_load_32(
					(uint32_t *)&it->it_state))) {
			case MLC__LIVE:
				ck->r.chunks_live++;
				break;
			case MLC__ALLOC:
				ck->r.chunks_alloc++;
				break;
			default:
				ck->r.chunks_free++;
			}
		}
	}
	for (uint32_t ci = 0; ci < a->nclasses; ci++) {
		if (per_class[ci] != ck_pr_load_32(&a->classes[ci].cl_pages)) {
			ck->r.bad_pages++;
			problem(ck, "class page count differs from its pages",
				ci);
		}
	}
	if (ck->r.pages_free != ck_pr_load_32(&a->hdr->ah_pool_free))
		problem(ck, "pool count differs from its pages",
			ck->r.pages_free);
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

/* Live header words against what they count or bound. */
static void
check_live(struct checker *ck)
{
	struct mlc_arena *a = ck->a;
	const struct mlc__hdr *h = a->hdr;
	uint64_t version = ck_pr_load_64((uint64_t *)&h->ah_version);
	uint32_t used = 0, p, n = 0;

	if (version == 0 || ck->max_version > version) {
		ck->r.bad_header++;
		problem(ck, "an item's version is above the arena's version "
			    "counter (at right: its bucket)",
			ck->max_version_at);
	}
	for (uint32_t s = 0; s <= a->stripe_mask; s++) {
		if (ck_pr_load_64(&a->stripes[s].lk_aux) > version) {
			ck->r.bad_header++;
			problem(ck, "a stripe's fence is above the arena's "
				    "version counter", s);
			break;
		}
	}
	for (uint32_t i = 1; i < a->max_ns; i++)
		used += ck_pr_load_32(&a->ns[i].ns_used) != 0;
	if (used != ck_pr_load_32((uint32_t *)&h->ah_ns_count)) {
		ck->r.bad_header++;
		problem(ck, "the namespace count differs from the table", used);
	}
	/* The pool list: pages of no class, as many as ah_pool_free, and
	 * no cycle (at most npages steps). */
	for (p = ck_pr_load_32((uint32_t *)&h->ah_pool_head);
	     p != 0 && n <= a->npages; n++) {
		if (p > a->npages || ck_pr_load_32(&a->pages[p - 1].pg_class)) {
			n = UINT32_MAX;
			break;
		}
		p = ck_pr_load_32(&a->pages[p - 1].pg_next);
	}
	if (n != ck_pr_load_32((uint32_t *)&h->ah_pool_free)) {
		ck->r.bad_header++;
		problem(ck, "the page pool list does not hold the pool's "
			    "pages (at right: its head)",
			ck_pr_load_32((uint32_t *)&h->ah_pool_head));
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
	check_live(&ck);
out:
	memcpy(rep, &ck.r, MLC_MIN(rep->size, sizeof(ck.r)));
	rep->size = MLC_MIN(rep->size, sizeof(ck.r));
	return ck.r.problems ? MLC_ECORRUPT : 0;
}
