/*
 * The invalidation log: a ring of fixed cells in the arena that every
 * set, delete and purge publishes to, and that every cache handle reads to
 * drop what it holds in L1 and was changed elsewhere.
 *
 * Publishing never waits: a writer claims a sequence number with one
 * fetch-and-add on lg_head and marks the cell as being written (WRITING: a
 * CAS that also refuses to go backwards if a writer a whole lap ahead got
 * there first), and says beside it who it is and when (claim_stamp()).
 * Right before it changes L2, under the stripe locks, it marks the cell
 * CHANGING (a CAS); afterwards it writes the payload and publishes the
 * cell with a CAS of its sequence.
 *
 * Reading is a per-cell seqlock: read the sequence, the payload, the
 * sequence again.  A handle that finds it was lapped, or a cell overwritten
 * under it, drops its whole L1: it may lose cached values, never serve a
 * changed one.  A cell left unpublished for MLC__LOG_STUCK_MS after its
 * claim is given up on:
 * - not CHANGING (its writer has not changed L2, and may be dead or only
 *   stopped): marked ABANDONED, and passed.  L1 stays: nothing changed.  A
 *   writer only stopped finds the mark when it would mark the cell
 *   CHANGING, and claims a fresh cell first, so its change is published
 *   after it (or, if it dies, handled as below).
 * - CHANGING: its writer may be changing L2 this very moment, or have
 *   changed it and died.  Only its proven death (pid, start time, pid
 *   namespace: proc.c) lets a handle pass it: marked ABANDONED (CHANGING
 *   kept), and every handle that reaches it drops its L1, after the
 *   change, which reloads the new value.  Until then each handle drops its
 *   L1 on every call: an L1 serves nothing while a writer is stopped inside
 *   its change.  (A writer no process can judge, or one that left no
 *   identity, is passed after a while instead: changing_stuck().)
 * Until 2026-12-06 a claimed cell was given up on whatever its writer was
 * doing, and dropping L1 then was the whole remedy: a writer stopped
 * before its change and killed right after it left the old value that a
 * handle had reloaded meanwhile in that L1 for its whole TTL (a review
 * found it: test-log test_abandoned_then_killed).
 */
#include <ck_pr.h>

#include "log.h"
#include "pause.h"

#define WRITING (UINT64_C(1) << 63)
#define ABANDONED (UINT64_C(1) << 62)	/* given up on by a reader */
#define CHANGING (UINT64_C(1) << 61)	/* its writer may change L2 now */
#define REPUBLISH (UINT64_C(1) << 60)	/* claimed CHANGING: the change is
					 * made (mlc__log_fill()) */
#define SEQ(v) ((v) & ~(WRITING | ABANDONED | CHANGING | REPUBLISH))
#define PROBE_MS 10		/* a handle reads /proc at most this often */
#define MLC__LOG_ORPHAN_MS 1000	/* changing_stuck(): no identity */
#define MLC__LOG_LEASE_MS 10000	/* changing_stuck(): one not judgeable */
#define MLC__LOG_AHEAD_MS 3600000	/* age_of(): a stamp ahead of the clock */
#define SPIN 64
#define CHECK_MASK ((UINT64_C(1) << 40) - 1)

/* The check of a record: a mix of its sequence and payload. */
static uint64_t
cell_check(uint64_t seq, uint64_t hash, uint64_t version, uint32_t ns,
	   uint16_t op)
{
	uint64_t x = seq * UINT64_C(0x9e3779b97f4a7c15) ^ hash;

	x ^= (version + ((uint64_t)ns << 8 | op)) * UINT64_C(0xc2b2ae3d27d4eb4f);
	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return x & CHECK_MASK;
}

static uint64_t
cell_meta(uint64_t seq, uint64_t hash, uint64_t version, uint32_t ns,
	  uint16_t op)
{
	return (uint64_t)(ns & 0xffff) << 48 | (uint64_t)(op & 0xff) << 40 |
	       cell_check(seq, hash, version, ns, op);
}
static struct mlc__log_cell *
cell_of(const struct mlc_arena *a, uint64_t seq)
{
	return &a->cells[(SEQ(seq) - 1) & (a->log_cells - 1)];
}

static struct mlc__log_claim *
claim_of(const struct mlc_arena *a, uint64_t seq)
{
	return &a->claims[(SEQ(seq) - 1) & (a->log_cells - 1)];
}

/* A cell's claim stamp: the claim time (ms, low 32 bits) and the record's
 * sequence (low 32 bits), in one word, so that it is never torn, and never
 * taken for the stamp of another lap.  Kept apart from the cell, so that it
 * outlives the publication: a later record's stamp bounds the age of an
 * earlier number whose writer has not claimed its cell yet. */
static uint64_t
stamp_make(uint64_t seq, uint64_t ms)
{
	return (uint64_t)(uint32_t)ms << 32 | (uint32_t)seq;
}

/* When record @p seq was claimed, if its stamp says (*@p at, low 32 bits
 * of the ms clock). */
static bool
stamp_of(const struct mlc_arena *a, uint64_t seq, uint32_t *at)
{
	uint64_t st = ck_pr_load_64(&claim_of(a, seq)->lk_stamp);

	if ((uint32_t)st != (uint32_t)SEQ(seq))
		return false;
	*at = (uint32_t)(st >> 32);
	return true;
}

/* Milliseconds since a stamp's claim time @p at (low 32 bits), from
 * @p now, modulo 2^32 ms (49.7 days): 0 for a stamp up to
 * MLC__LOG_AHEAD_MS ahead of it (stored after @p now was read, across a
 * millisecond, or while this process was descheduled; a test's clock
 * ahead), which wrapped to 49 days.  Any difference past that is an age:
 * until 2026-12-07 every one of 2^31 ms or more (24.9 days) was "ahead",
 * 0 ms old, and a reader idle that long while a writer died in its change
 * never judged that writer, and served the old value from L1 for up to 25
 * days more (test-killed-writer test_idle_reader_stamp_wraps).  Taking a
 * stamp ahead by more for an old one only judges a cell sooner: a writer
 * not inside its change claims again, one inside it is judged by who it
 * is (changing_stuck()). */
static uint32_t
age_of(uint64_t now, uint32_t at)
{
	uint32_t d = (uint32_t)now - at;

	return d > UINT32_MAX - MLC__LOG_AHEAD_MS ? 0 : d;
}

/* The claim record's identity words are xored with these masks of their
 * claim's sequence: words a claimer late by a lap or more stores over a
 * newer claim's (it is stalled between its claim and its stamp) read as
 * garbage for that claim, a pid namespace that is not ours, which no
 * handle ever takes for a dead writer (a review found the newer writer
 * passed as dead while it lived). */
static uint64_t
who_mask(uint64_t seq)
{
	uint64_t x = SEQ(seq) * UINT64_C(0x9e3779b97f4a7c15);

	return x ^ x >> 29;
}

static uint64_t
start_mask(uint64_t seq)
{
	uint64_t x = SEQ(seq) * UINT64_C(0xc2b2ae3d27d4eb4f);

	return x ^ x >> 31;
}

/* Say who claimed cell @p seq (ours, just claimed), then when: a handle
 * held back by the cell reads them to tell whether we died
 * (claimer()), and trusts the identity only under the stamp of this
 * very claim.  Apart from the cell, which cell_fill() overwrites: an
 * identity kept in the payload words was torn by a writer killed while it
 * filled them, and no handle could ever pass that cell (a review found
 * it). */
static void
claim_stamp(struct mlc_arena *a, uint64_t seq)
{
	struct mlc__log_claim *k = claim_of(a, seq);

	ck_pr_store_64(&k->lk_who, ((uint64_t)mlc__proc_ns() << 32 |
				    (uint32_t)mlc__pid()) ^ who_mask(seq));
	ck_pr_store_64(&k->lk_start, mlc__proc_start() ^ start_mask(seq));
	ck_pr_fence_store();	/* who before when: the stamp vouches */
	ck_pr_store_64(&k->lk_stamp, stamp_make(seq, mlc__now_ms()));
}

/* May a claimer of record @p s take cell word @p v?  Only one of an older
 * lap, and not one whose writer is inside its change (CHANGING, not given
 * up on): handles must judge that one as it is, and taking it erased it
 * (its writer, stopped a whole lap inside its change, then killed after
 * it, left no trace: a review found it).  The claimer takes the next
 * number instead, and handles see the older lap's cell at this one's
 * (live_changing()). */
static bool
claimable(uint64_t v, uint64_t s)
{
	return SEQ(v) < s + 1 &&
	       (v & (WRITING | CHANGING | ABANDONED)) != (WRITING | CHANGING);
}

/* Is word @p v garbage: numbered past the head, which no writer makes
 * (its number comes from the head)?  Taken as a dead writer's cell, or it
 * would stop the log for good (every handle lapped by it on every call,
 * no writer ever taking it: a review found it). */
static bool
future(const struct mlc_arena *a, uint64_t v)
{
	/* The head after the cell word @p v was read: read before it, a
	 * writer's fresh claim a lap ahead (its head taken after our head
	 * read) would look numbered past the head, and be passed as dead.
	 * x86 keeps loads in order (a compiler barrier); weaker memories
	 * need the fence (review N). */
	ck_pr_fence_load();
	return SEQ(v) > ck_pr_load_64(&a->log->lg_head);
}

/* Claim the next free cell: its sequence number, marked @p mark besides
 * WRITING (CHANGING for a record whose change is made: mlc__log_fill()).
 * A claimed cell holds readers back until it is published; how long, and
 * what they do after, says the comment at the top.  A cell that a writer a
 * whole lap ahead took first (its readers purge), that readers gave up on
 * while we were stopped before our CAS, or that an older lap's writer is
 * changing L2 under, is left, and the next one claimed. */
static uint64_t
log_claim(struct mlc_arena *a, uint64_t mark)
{
	uint64_t mask = a->log_cells - 1;

	for (;;) {
		uint64_t s = ck_pr_faa_64(&a->log->lg_head, 1);
		struct mlc__log_cell *c = &a->cells[s & mask];
		uint64_t v;

		MLC_PAUSE(LOG_NUMBERED);
		v = ck_pr_load_64(&c->lc_seq);
		while (claimable(v, s) || future(a, v)) {
			if (ck_pr_cas_64_value(&c->lc_seq, v,
					       (s + 1) | WRITING | mark, &v)) {
				MLC_PAUSE(LOG_UNSTAMPED);
				/* Readers time a stuck cell from its claim,
				 * not from their first look. */
				claim_stamp(a, s + 1);
				MLC_PAUSE(LOG_CLAIMED);
				return (s + 1) | mark;
			}
		}
	}
}

uint64_t
mlc__log_claim(struct mlc_arena *a)
{
	return log_claim(a, 0);
}

/* The writer of claim *@p seq (0: none) is about to change L2, under the
 * stripe locks that order it with the key's other writers: mark the cell
 * CHANGING, so that no handle passes it from now on while we live (our
 * identity is beside it since the claim).  If a handle gave up on it
 * before (we were stopped past MLC__LOG_STUCK_MS since the claim: it moved
 * on, and may have reloaded the old value since), or a writer a lap ahead
 * took it, claim a fresh cell and mark that one, before the change.
 * *@p seq then names the cell to publish, CHANGING included
 * (mlc__log_fill()). */
void
mlc__log_changing(struct mlc_arena *a, uint64_t *seq)
{
	if (*seq == 0)
		return;
	for (;;) {
		uint64_t s = SEQ(*seq);

		if (ck_pr_cas_64(&cell_of(a, s)->lc_seq, s | WRITING,
				 s | WRITING | CHANGING)) {
			*seq = s | CHANGING;
			MLC_PAUSE(LOG_CHANGING);
			return;
		}
		*seq = mlc__log_claim(a);
	}
}

/* Write the payload of claim @p seq (CHANGING in it if so marked) and
 * publish it: false if the cell was abandoned by a reader (we were too
 * slow, or it judged us dead) or taken by a writer a lap ahead meanwhile. */
static bool
cell_fill(struct mlc_arena *a, uint64_t seq, uint32_t ns, uint64_t hash,
	  uint16_t op, uint64_t version)
{
	struct mlc__log_cell *c = cell_of(a, seq);
	uint64_t s = SEQ(seq);

	/* Nobody reads the payload as valid while WRITING is set, nor ever
	 * without its check matching this sequence. */
	ck_pr_store_64(&c->lc_hash, hash);
	ck_pr_store_64(&c->lc_version, version);
	ck_pr_store_64(&c->lc_meta, cell_meta(s, hash, version, ns, op));
	/* Payload before the sequence that publishes it. */
	ck_pr_fence_store();
	MLC_PAUSE(LOG_FILLED);
	return ck_pr_cas_64(&c->lc_seq, seq | WRITING, s);
}

/* Publish the record of claim @p seq (from mlc__log_claim, made before the
 * change it describes; 0: nothing to publish).  MLC__LOG_NOP for a change
 * that did not happen after all.  If the claim was abandoned meanwhile
 * (its writer judged dead, wrongly, or a writer a lap ahead took it), the
 * readers that passed it may have reloaded L1 from L2 before our change:
 * the record goes out again in a fresh cell, claimed now, after the
 * change.  So it does if it was published more than a lap late: a handle
 * that started reading over meanwhile (mlc__log_start()) scanned only the
 * last lap, and may have started past it while a later writer that would
 * take the cell over had its number but had not claimed it yet.  That
 * handle read the head before we read it here, after our change, so it
 * looked at L2 after the change, or it starts at or below the new cell. */
void
mlc__log_fill(struct mlc_arena *a, uint64_t seq, uint32_t ns, uint64_t hash,
	      uint16_t op, uint64_t version)
{
	if (seq == 0)		/* nothing claimed: mlc's own records */
		return;
	if (cell_fill(a, seq, ns, hash, op, version)) {
		if (op == MLC__LOG_NOP)
			return;
		/* The head after the publish (an atomic before a load). */
		ck_pr_fence_atomic_load();
		if (ck_pr_load_64(&a->log->lg_head) - (SEQ(seq) - 1) <=
		    a->log_cells)
			return;
	} else if (op == MLC__LOG_NOP) {
		return;
	}
	/* The second cell is claimed CHANGING at once (its change is made),
	 * so that if we die before publishing it, handles pass it only on
	 * proof of our death, and drop their L1s then, which reload the new
	 * value (claimed plain and then marked, a death in between let
	 * handles pass it keeping their L1s: a review found it). */
	(void)cell_fill(a, log_claim(a, CHANGING | REPUBLISH), ns, hash, op,
			version);
}

uint64_t
mlc__log_head(const struct mlc_arena *a)
{
	return ck_pr_load_64(&a->log->lg_head);
}

/* Drop the whole L1 (and tell a layered cache to do the same). */
static void
clear_all(struct mlc__logr *lr)
{
	lr->dropped += mlc__l1_clear(lr->l1);
	lr->out_all = true;
	lr->moves++;
}

/* Drop what a record says is stale from the handle's L1 (@p count: in
 * the handle's count of records applied; not the second time, once the
 * cursor reaches a record look_ahead() applied). */
static void
apply_one(struct mlc__logr *lr, uint32_t ns, uint16_t op, uint64_t hash,
	  uint64_t version, bool count)
{
	if (ns != lr->ns || op == MLC__LOG_NOP)
		return;
	lr->applied += count;
	lr->moves++;
	if (op == MLC__LOG_PURGE) {
		clear_all(lr);
		return;
	}
	lr->dropped += mlc__l1_drop_older(lr->l1, hash, version);
	if (lr->out == NULL && lr->out_rec == NULL)
		return;
	if (lr->out_n == lr->out_cap) {
		lr->out_all = true;
		return;
	}
	if (lr->out != NULL) {
		lr->out[lr->out_n++] = hash;
		return;
	}
	lr->out_rec[lr->out_n].hash = hash;
	lr->out_rec[lr->out_n++].version = version;
}

/* Where a handle that starts over (opened, forked, lapped) must start
 * reading: not past a cell of the last lap that is claimed but not
 * published (or numbered and not yet claimed), whose writer may still be
 * about to change L2 and publish there.  Everything below it is either
 * published (covered by the fresh L1), overwritten (its writer's publish
 * fails and it publishes again, after its change), or published more than
 * a lap late, after this scan (then published again: mlc__log_fill()).
 * Reads log_cells words: the cost of opening a handle. */
uint64_t
mlc__log_start(const struct mlc_arena *a)
{
	uint64_t head = ck_pr_load_64(&a->log->lg_head), cells = a->log_cells;
	uint64_t s;

	for (s = head > cells ? head - cells : 0; s < head; s++) {
		uint64_t q = ck_pr_load_64(
			(uint64_t *)&a->cells[s & (cells - 1)].lc_seq);

		if (q != s + 1 && !(SEQ(q) == s + 1 && (q & ABANDONED)))
			break;
	}
	/* The head before whatever the handle reads from L2 next
	 * (mlc__log_fill()'s lap check). */
	ck_pr_fence_load();
	return s;
}

void
mlc__log_restart(const struct mlc_arena *a, struct mlc__logr *lr)
{
	lr->cursor = mlc__log_start(a);
	mlc__log_resume(lr);
}

void
mlc__log_resume(struct mlc__logr *lr)
{
	lr->ahead = 0;
	lr->nskip = 0;
	lr->stuck_since = 0;
}

static void
give_up(const struct mlc_arena *a, struct mlc__logr *lr)
{
	clear_all(lr);
	mlc__log_restart(a, lr);
}

/* Read published cell @p s (its sequence word @p q1 just loaded) into
 * *@p ns ...: false if it was overwritten as we read. */
static bool
cell_read(const struct mlc_arena *a, uint64_t s, uint64_t q1, uint32_t *ns,
	  uint16_t *op, uint64_t *hash, uint64_t *version)
{
	const struct mlc__log_cell *c = &a->cells[s & (a->log_cells - 1)];
	uint64_t meta;

	/* Payload after the sequence: pairs with the publisher's store
	 * fence. */
	ck_pr_fence_load();
	*hash = ck_pr_load_64((uint64_t *)&c->lc_hash);
	*version = ck_pr_load_64((uint64_t *)&c->lc_version);
	meta = ck_pr_load_64((uint64_t *)&c->lc_meta);
	ck_pr_fence_load();
	*ns = (uint32_t)(meta >> 48);
	*op = (uint16_t)((meta >> 40) & 0xff);
	return ck_pr_load_64((uint64_t *)&c->lc_seq) == q1 &&
	       (meta & CHECK_MASK) == cell_check(q1, *hash, *version, *ns,
						 *op);
}

#define AGE_SCAN 8		/* later stamps looked at (beyond its own)
				 * for an unstamped cell's age */

/* Has the handle waited long enough on unpublished cell @p s (true: give
 * up on it)?  The wait is timed from the claim: the cell's own stamp,
 * whenever it has one (a cell claimed moments ago is never taken for old
 * because an earlier one held the handle back: a review found a 0 ms old
 * cell given up on right after a dead one).  A cell its writer has not
 * stamped (stopped or dead between taking the number and stamping) is
 * timed from the earliest stamp of the next few records, which were all
 * numbered after it; without any, from when this handle was first held
 * back by a cell numbered before then (stuck_head), so that a cell reached
 * only after an earlier slow one does not restart the wait. */
static bool
held_back(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t s,
	  uint64_t head)
{
	uint64_t now = mlc__now_ms(), since;
	uint32_t at, oldest = 0;
	bool found = false;

	if (lr->stuck_since == 0 || s >= lr->stuck_head) {
		lr->stuck_since = now;
		lr->stuck_head = head;
	}
	/* Ages modulo 2^32 ms: right for anything under 49 days. */
	if (stamp_of(a, s + 1, &at))
		return age_of(now, at) >= MLC__LOG_STUCK_MS;
	for (uint64_t q = s + 2; q <= head && q <= s + 1 + AGE_SCAN; q++) {
		if (!stamp_of(a, q, &at))
			continue;
		if (!found || age_of(now, at) > age_of(now, oldest))
			oldest = at;
		found = true;
	}
	if (found) {
		since = now - age_of(now, oldest);
		if (since < lr->stuck_since)
			lr->stuck_since = since;
	}
	return now - lr->stuck_since >= MLC__LOG_STUCK_MS;
}

enum { WHO_ALIVE, WHO_DEAD, WHO_UNKNOWN, WHO_FOREIGN };

/* Is the claimer of record @p seq dead?  WHO_UNKNOWN: no identity under
 * this claim's stamp (its writer stopped or died between its claim and
 * its stamp, or the arena is garbled); WHO_FOREIGN: one this process
 * cannot judge (another pid namespace, no start time: one of ours without
 * it is WHO_DEAD once its pid is gone).  Never a wrong
 * "dead", which would let a live writer's change go unheard; a look before
 * PROBE_MS have passed since this handle's last one in /proc is
 * WHO_ALIVE. */
static int
claimer(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t seq)
{
	const struct mlc__log_claim *k = claim_of(a, seq);
	uint64_t now = mlc__now_ms(), st, who, start;
	bool foreign;

	st = ck_pr_load_64((uint64_t *)&k->lk_stamp);
	/* The identity after its stamp: pairs with claim_stamp()'s fence. */
	ck_pr_fence_load();
	who = ck_pr_load_64((uint64_t *)&k->lk_who) ^ who_mask(seq);
	start = ck_pr_load_64((uint64_t *)&k->lk_start) ^ start_mask(seq);
	ck_pr_fence_load();
	if ((uint32_t)st != (uint32_t)SEQ(seq) ||
	    ck_pr_load_64((uint64_t *)&k->lk_stamp) != st)
		return WHO_UNKNOWN;
	foreign = !mlc__proc_judgeable((uint32_t)who, start,
				       (uint32_t)(who >> 32));
	if (now < lr->probe_at)
		return foreign ? WHO_FOREIGN : WHO_ALIVE;
	lr->probe_at = now + PROBE_MS;
	/* One of our namespace without a start time is dead once its pid
	 * is gone (proc.c); until review AH it was passed only 10 s after
	 * its claim, every L1 dropped on every call meanwhile
	 * (test_emfile_writer_killed_in_change). */
	if (mlc__proc_dead((uint32_t)who, start, (uint32_t)(who >> 32)))
		return WHO_DEAD;
	return foreign ? WHO_FOREIGN : WHO_ALIVE;
}

/* The cell of record @p s (s + 1 its sequence) was given up on after a
 * writer that may have changed L2 was proven dead: L2 is final, and L1
 * goes.  Counted once per record: not again if the cursor counted it when
 * it was held (lr->held), and the cursor does not drop L1 again for a cell
 * the look-ahead passed (applied_ahead()). */
static void
given_up_changed(struct mlc__logr *lr, uint64_t s)
{
	if (lr->held != s + 1)
		lr->stuck++;
	clear_all(lr);
}

/* Is @p v the word of a cell whose writer marked it CHANGING and nobody
 * gave up on: of record @p s, or of an older lap's record at its place
 * (claimable())? */
static bool
live_changing(uint64_t v, uint64_t s)
{
	return SEQ(v) <= s + 1 &&
	       (v & (WRITING | CHANGING | ABANDONED)) == (WRITING | CHANGING);
}

/* Give up on the cell at record @p s's place, word @p v, as a dead
 * writer's that may have changed L2: marked ABANDONED for record @p s
 * with CHANGING, so that every handle that reaches it drops its L1 too,
 * and this L1 dropped.  False if the word changed meanwhile (a CAS from
 * @p v: published, or lapped, since it was read). */
static bool
pass_as_dead(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t s,
	     uint64_t v)
{
	if (!ck_pr_cas_64(&cell_of(a, s + 1)->lc_seq, v,
			  (s + 1) | WRITING | ABANDONED | CHANGING))
		return false;
	given_up_changed(lr, s);
	return true;
}

enum { CH_NO, CH_WAIT, CH_HELD, CH_PASSED };

/* The cell at record @p s's place, word @p v (live_changing()): its
 * writer's change may be under way, or made by a writer that died before
 * publishing.  For the cursor (@p cursor) or the look-ahead.
 * CH_NO: the word changed meanwhile; CH_WAIT: claimed under
 * MLC__LOG_STUCK_MS ago, wait for its record; CH_HELD: longer, and its
 * writer lives (or cannot be judged): this handle's L1 is dropped, on
 * every call while it lasts, since the change may come at any moment;
 * CH_PASSED: its writer is dead: the cell is given up on for record @p s
 * with CHANGING kept, so that every handle that reaches it drops its L1
 * too, and this L1 is dropped, after the change, which its reloads see.
 * A cell whose claimer left no identity (WHO_UNKNOWN) is passed too once
 * this handle's cursor has been held by it for MLC__LOG_ORPHAN_MS (timed
 * by the claim, which a lap does not restart; the look-ahead passes one
 * only once the cursor has timed it) if it was claimed CHANGING at once
 * (REPUBLISH: its writer's change is made, mlc__log_fill()), else for
 * MLC__LOG_LEASE_MS (its identity may have been overwritten by a claimer
 * a lap late, its writer alive).  One whose claimer this process cannot
 * judge (WHO_FOREIGN) is passed MLC__LOG_LEASE_MS after its claim.  Each
 * would otherwise hold every L1 empty for good, for no lap takes such a
 * cell (claimable(): reviews found them).  A writer only stopped that long
 * inside its change publishes its record again after it (its publish
 * fails on the mark): only if it is then killed before that is its change
 * unheard, a risk left to writers that no other process can judge. */
static int
changing_stuck(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t s,
	       uint64_t v, bool cursor)
{
	uint64_t now = mlc__now_ms();
	uint32_t at = 0;
	int who;

	/* Stamped at the claim; none: taken as old. */
	if (stamp_of(a, SEQ(v), &at) && age_of(now, at) < MLC__LOG_STUCK_MS)
		return CH_WAIT;
	who = claimer(a, lr, SEQ(v));
	if (who == WHO_UNKNOWN) {
		/* One timer, started by the cursor only: two such cells at
		 * once (the cursor's and one ahead) restarted each other's
		 * on every call, and neither was ever passed (L1 empty for
		 * good).  The one ahead waits its turn at the cursor. */
		if (cursor && lr->orphan != SEQ(v)) {
			lr->orphan = SEQ(v);
			lr->orphan_since = now;
		}
		if (lr->orphan == SEQ(v) &&
		    now - lr->orphan_since >= ((v & REPUBLISH) ?
					       MLC__LOG_ORPHAN_MS :
					       MLC__LOG_LEASE_MS))
			who = WHO_DEAD;
	}
	if (who == WHO_FOREIGN && age_of(now, at) >= MLC__LOG_LEASE_MS)
		who = WHO_DEAD;
	if (who != WHO_DEAD) {
		if (cursor && lr->held != s + 1) {
			lr->held = s + 1;
			lr->stuck++;
		}
		clear_all(lr);
		return CH_HELD;
	}
	return pass_as_dead(a, lr, s, v) ? CH_PASSED : CH_NO;
}

enum { AHEAD_LAPPED = -2, AHEAD_GIVEN_UP, AHEAD_UNPUBLISHED, AHEAD_APPLIED };

/* Apply cell @p q if it is published now.  AHEAD_UNPUBLISHED: claimed, or
 * not even that; AHEAD_GIVEN_UP: a handle gave up on it (its writer then
 * publishes again in a new cell, or was proven dead: nothing to wait for
 * here);
 * AHEAD_LAPPED: a writer a lap ahead took the cell, or overwrote it as we
 * read: its record is gone, unapplied. */
static int
ahead_one(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t q)
{
	/* The cell's seqlock, as the cursor reads it: its sequence, then
	 * the payload, then the sequence and the check again (cell_read()),
	 * against a writer a lap ahead filling the cell meanwhile. */
	uint64_t v = ck_pr_load_64(&cell_of(a, q + 1)->lc_seq);
	uint64_t hash, version;
	uint32_t ns;
	uint16_t op;

	if (SEQ(v) > q + 1 && future(a, v)) {
		(void)pass_as_dead(a, lr, q, v);	/* garbage */
		return AHEAD_GIVEN_UP;
	}
	if (SEQ(v) > q + 1)
		return AHEAD_LAPPED;
	if (SEQ(v) == q + 1 && (v & ABANDONED)) {
		if (v & CHANGING)
			given_up_changed(lr, q);
		return AHEAD_GIVEN_UP;
	}
	if (live_changing(v, q) &&
	    changing_stuck(a, lr, q, v, false) == CH_PASSED)
		return AHEAD_GIVEN_UP;	/* its writer died in its change */
	if (v != q + 1)
		return AHEAD_UNPUBLISHED;
	if (!cell_read(a, q, v, &ns, &op, &hash, &version))
		return AHEAD_LAPPED;
	apply_one(lr, ns, op, hash, version, true);
	return AHEAD_APPLIED;
}

/* Did look_ahead() apply cell @p s (then the cursor does not count it
 * again)?  It applied every cell it passed but the one the cursor waited
 * at and the ones it keeps to look at again. */
static bool
applied_ahead(const struct mlc__logr *lr, uint64_t s)
{
	if (s >= lr->ahead || s == lr->wait)
		return false;
	for (uint32_t i = 0; i < lr->nskip; i++)
		if (lr->skip[i] == s)
			return false;
	return true;
}

/* The cursor waits at unpublished cell @p s: apply the records published
 * after it, up to @p end, now.  A record only drops what is older than
 * its change, so records may be applied in any order, and more than once:
 * the cursor applies each again as it passes it (in order, waiting at
 * every cell still unpublished), and this only makes them count sooner.
 * Without it, a writer descheduled between its claim and its publish held
 * every other writer's record back from every handle (up to
 * MLC__LOG_STUCK_MS): with two processes writing, an L1 served values
 * that sets, deletes and purges made after that claim had replaced, and
 * that had returned, for tens of milliseconds.  Now only that writer's
 * own change waits for its publish (it has not returned), or, if it
 * died, for the handle to give up on it.
 *
 * Each cell is looked at once (lr->ahead), but the unpublished ones,
 * which are looked at again on each call until they are published
 * (lr->skip).  With MLC__LOG_SKIP of them, the look stops at the next:
 * it starts there on the next call.  At most @p left records are applied
 * (the rest of the call's budget: mlc_update_records() reports at most
 * its cap), and the cells not looked at for it wait for the next call.
 * @return true if a record was lapped before it was applied: the caller
 * gives up, as the cursor does (the handle may have been stopped inside
 * this call, between its look at the head and this, for a whole lap;
 * the record of a change that returned meanwhile is gone). */
static bool
look_ahead(const struct mlc_arena *a, struct mlc__logr *lr, uint64_t s,
	   uint64_t head, uint64_t left)
{
	uint64_t q = lr->ahead > s + 1 ? lr->ahead : s + 1;
	uint32_t i, n = 0;
	int r;

	lr->wait = s;
	for (i = 0; i < lr->nskip; i++) {
		uint64_t k = lr->skip[i];

		if (k <= s)
			continue;	/* the cursor's now */
		if (left == 0) {
			lr->skip[n++] = k;	/* past this call's budget */
			continue;
		}
		if ((r = ahead_one(a, lr, k)) == AHEAD_LAPPED)
			return true;
		if (r == AHEAD_APPLIED)
			left--;
		if (r == AHEAD_UNPUBLISHED)
			lr->skip[n++] = k;
	}
	lr->nskip = n;
	for (; q < head && left > 0; q++) {
		if ((r = ahead_one(a, lr, q)) == AHEAD_LAPPED)
			return true;
		if (r == AHEAD_APPLIED)
			left--;
		if (r != AHEAD_UNPUBLISHED)
			continue;
		if (lr->nskip == MLC__LOG_SKIP)
			break;
		lr->skip[lr->nskip++] = q;
	}
	if (q > lr->ahead)
		lr->ahead = q;
	return false;
}

/* Apply up to @p budget records (0: all) published since the last call. */
void
mlc__log_apply(struct mlc_arena *a, struct mlc__logr *lr, uint32_t budget)
{
	uint64_t cells = a->log_cells, mask = cells - 1;
	uint64_t head = ck_pr_load_64(&a->log->lg_head);
	uint64_t end;

	if (head == lr->cursor)
		return;
	if (head - lr->cursor > cells) {
		lr->overruns++;			/* lapped while idle */
		give_up(a, lr);
		return;
	}
	end = budget && head - lr->cursor > budget ? lr->cursor + budget : head;
	while (lr->cursor < end) {
		uint64_t s = lr->cursor;
		const struct mlc__log_cell *c = &a->cells[s & mask];
		uint64_t q1 = 0, hash, version;
		uint32_t ns;
		uint16_t op;
		int spins;

		for (spins = 0; spins < SPIN; spins++) {
			q1 = ck_pr_load_64((uint64_t *)&c->lc_seq);
			/* Wait briefly only for a claim of this record
			 * still being written (or not claimed yet). */
			if (SEQ(q1) > s + 1 ||
			    (SEQ(q1) == s + 1 &&
			     (q1 & (WRITING | ABANDONED)) != WRITING))
				break;	/* lapped, published, given up on */
			ck_pr_stall();
		}
		if (SEQ(q1) > s + 1 && future(a, q1)) {
			/* Garbage: passed as a dead writer's cell. */
			if (pass_as_dead(a, lr, s, q1))
				lr->cursor = s + 1;
			continue;
		}
		if (SEQ(q1) > s + 1) {
			lr->overruns++;		/* a writer a lap ahead */
			give_up(a, lr);
			return;
		}
		if (q1 != s + 1) {
			/* Not published: claimed, or not even claimed yet
			 * (its writer is between its fetch-and-add and its
			 * CAS), or given up on. */
			bool ours = SEQ(q1) == s + 1;

			if (ours && (q1 & ABANDONED)) {
				/* Given up on by a handle: after its writer's
				 * proven death if it was changing L2, and
				 * then this L1 goes too. */
				if (!(q1 & CHANGING))
					lr->stuck++;	/* L1 stays */
				else if (!applied_ahead(lr, s))
					given_up_changed(lr, s);
				lr->cursor = s + 1;
				continue;
			}
			if (ours && !(q1 & WRITING)) {
				/* No writer makes this word: a garbled
				 * arena.  Passed as a cell whose writer died
				 * in its change (looking at it again would
				 * spin for ever: a review found it). */
				if (pass_as_dead(a, lr, s, q1))
					lr->cursor = s + 1;
				continue;
			}
			if (live_changing(q1, s)) {
				/* Its writer (of this lap, or one stopped
				 * inside its change for a lap or more) may be
				 * changing L2. */
				int r = changing_stuck(a, lr, s, q1, true);

				if (r == CH_PASSED)
					lr->cursor = s + 1;
				if (r == CH_PASSED || r == CH_NO)
					continue;	/* look again */
				goto wait;
			}
			if (!held_back(a, lr, s, head))
				goto wait;
			/* Its writer has not changed L2: if alive, it finds
			 * the mark before it would, and claims a fresh cell
			 * first (mlc__log_changing()).  Nothing to drop.  If
			 * the cell changed meanwhile, look at it again. */
			if (!ck_pr_cas_64((uint64_t *)&c->lc_seq, q1,
					  ours ? q1 | ABANDONED
					       : (s + 1) | ABANDONED))
				continue;
			lr->stuck++;
			lr->cursor = s + 1;
			continue;
wait:
			MLC_PAUSE(LOG_WAITING);
			if (look_ahead(a, lr, s, head,
				       budget ? end - s : UINT64_MAX)) {
				lr->overruns++;
				give_up(a, lr);
			}
			return;			/* wait: on a later call */
		}
		if (!cell_read(a, s, q1, &ns, &op, &hash, &version)) {
			lr->overruns++;		/* overwritten as we read */
			give_up(a, lr);
			return;
		}
		if (s + 1 >= lr->stuck_head)
			lr->stuck_since = 0;	/* caught up past them */
		/* Applied again if look_ahead() did: it may have dropped
		 * nothing then that is in L1 now, but whatever came in
		 * since was read after the record was published. */
		apply_one(lr, ns, op, hash, version, !applied_ahead(lr, s));
		lr->cursor = s + 1;
	}
}
