/*
 * Single flight: one loader per key across every process, the others
 * blocked on a shared futex until it is done.
 *
 * A slot's ownership is one word, fs_word = gen:40 | tag:24, where the tag
 * is 24 bits of the key's hash (0: free) and the generation grows on every
 * change.  Claim, steal and release are each one CAS of that word, so who
 * owns the flight of which key, and since which change, is decided by one
 * atomic step, and "I still own it" is "the word is still the one I
 * installed": a late owner, or an owner that took another key's flight in
 * the same slot since, can never release or store for the wrong flight.
 *
 * The winner then publishes who it is (pid and tid, process start time,
 * pid namespace, lease deadline) and stores fs_pub = its generation last.
 * A waiter judges an owner only on fields whose fs_pub is the word's
 * generation, read between two loads of an unchanged word; so it never
 * mixes a new owner's token with an old owner's start time.  Between its
 * CAS and its publication a winner is counted in its process's claiming
 * counter (procs.c); an owner not published CLAIM_GRACE_MS after the waiter
 * joined is taken over only if no live process is counted (it died between
 * the two steps), or once the waiter's lease has passed (it is stopped
 * there).  The generation bump fences a late owner out, so the worst a
 * stopped owner causes is a second load, never a stale store.
 *
 * Waiters count themselves in fs_waiters and sleep on the slot's ck_ec32
 * event word with a *shared* futex (private futexes do not wake other
 * processes).  The owner writes L2 first, then releases the slot
 * (generation + 1, tag 0) and bumps the event count, which wakes every
 * waiter at once; they read the result from L2, or from the outcome record
 * the owner left when there was nothing to store.  Waiters wake every
 * SLICE_MS to check the owner: past its lease, or proven dead (proc.c), it
 * is taken over by a CAS of the word to the next generation.
 *
 * Dying anywhere leaves a recoverable slot: before the claim CAS, a dead
 * process's claiming counter (ignored); between it and the publication,
 * an unpublished owner of a dead process (grace); after,
 * a published owner whose death is proven; after the release CAS, a free
 * slot.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_ec.h>
#include <ck_pr.h>

#include "flight.h"
#include "pause.h"

#define SLICE_MS 20		/* how often a waiter checks the owner */
#define ENDED_MASK ((UINT64_C(1) << MLC__FW_TAG_BITS) - 1) /* fs_ended */
#define CLAIM_GRACE_MS 1000	/* an owner unpublished this long after a
				 * waiter joined is taken over if no live
				 * process has a claim in progress */

/* ---- the shared futex operations for ck_ec ---------------------------- */

static int
ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

static void
ec_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr,
	  uint32_t expected, const struct timespec *deadline)
{
	(void)st;
	/* FUTEX_WAIT_BITSET without FUTEX_PRIVATE_FLAG: keyed by the page,
	 * so it works across processes mapping the arena anywhere.  The
	 * deadline is absolute on CLOCK_MONOTONIC. */
	syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, deadline, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

static void
ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static const struct ck_ec_ops ec_ops = {
	.gettime = ec_gettime,
	.wait32 = ec_wait32,
	.wake32 = ec_wake32,
	.busy_loop_iter = 64,
	.initial_wait_ns = 1000000,
};

static const struct ck_ec_mode ec_mode = {
	.ops = &ec_ops,
	.single_producer = false,
};

/* ---- slots ------------------------------------------------------------- */

static uint64_t
my_token(void)
{
	return (uint64_t)(uint32_t)mlc__pid() << 32 | (uint32_t)mlc__tid();
}

static struct mlc__flight_slot *
slot_of(struct mlc_arena *a, uint32_t i)
{
	return &a->flights[i & (a->flight_slots - 1)];
}

/* The key's tag in fs_word: never 0, which means a free slot.  Remixed,
 * so that it does not repeat the bits that chose the slots. */
static uint64_t
key_tag(uint64_t hash)
{
	uint64_t t = (hash * UINT64_C(0x9e3779b97f4a7c15)) >> 40;

	return t != 0 ? t : 1;
}

uint64_t
mlc__flight_word(const struct mlc__fl *f)
{
	return MLC__FW_MAKE(f->gen, key_tag(f->hash));
}

/* Two candidate slots per key, as in the index. */
static void
slot_candidates(const struct mlc_arena *a, uint64_t hash, uint32_t c[2])
{
	uint32_t mask = a->flight_slots - 1;

	c[0] = (uint32_t)hash & mask;
	c[1] = (uint32_t)(hash >> 32) & mask;
}

/* We won slot @p idx with @p word: say who we are, then that it is said. */
static void
publish_owner(struct mlc_arena *a, struct mlc__fl *f, uint32_t idx,
	      uint64_t word, uint32_t lease_ms)
{
	struct mlc__flight_slot *sl = slot_of(a, idx);

	f->slot = idx + 1;
	f->gen = MLC__FW_GEN(word);
	f->token = my_token();
	f->role = MLC_FLIGHT_LOADER;
	/* Stopped past the lease since our CAS and taken over: the fields
	 * are the thief's.  Leave them; our store will be fenced out. */
	if (ck_pr_load_64(&sl->fs_word) != word)
		return;
	/* Stopped here past the lease instead, we write over a thief's
	 * fields (docs/internals.md: a third load at worst). */
	MLC_PAUSE(FLIGHT_PUBLISHING);
	ck_pr_store_64(&sl->fs_owner, f->token);
	ck_pr_store_64(&sl->fs_owner_start, mlc__proc_start());
	ck_pr_store_32(&sl->fs_owner_ns, mlc__proc_ns());
	ck_pr_store_64(&sl->fs_deadline, mlc__now_ms() + lease_ms);
	/* The fields before the generation that vouches for them: a waiter
	 * that reads fs_pub == gen reads this owner's fields. */
	ck_pr_fence_store();
	ck_pr_store_64(&sl->fs_pub, f->gen);
}

static void
join(struct mlc_arena *a, struct mlc__fl *f, uint32_t idx, uint64_t word)
{
	struct mlc__flight_slot *sl = slot_of(a, idx);

	f->slot = idx + 1;
	f->gen = MLC__FW_GEN(word);
	f->role = MLC_FLIGHT_WAITER;
	f->joined = f->checked = mlc__now_ms();
	ck_pr_inc_32(&sl->fs_waiters);
}

/* Count a waiter of slot @p sl out of fs_waiters, never below 0.  The
 * count is for inspection only (nothing decides by it), but a caller may
 * copy a waiter's ticket and end both copies: each counted itself out,
 * and the count wrapped to 2^32 - 1 (test-flight
 * test_copied_waiter_ticket, review AH).  Off the read path: a waiter
 * leaving. */
static void
waiter_out(struct mlc__flight_slot *sl)
{
	uint32_t n = ck_pr_load_32(&sl->fs_waiters);

	while (n != 0 && !ck_pr_cas_32_value(&sl->fs_waiters, n, n - 1, &n))
		;
}

/* A flight's owner fields, as publish_owner() stored them. */
struct owner_snap {
	uint64_t pub, owner, start, deadline;
	uint32_t ns;
};

/* Take a snapshot of slot @p sl's owner fields between two loads of an
 * unchanged word @p w (pairs with publish_owner's store fence): false if
 * the word moved, and the fields may be another flight's. */
static bool
owner_snapshot(const struct mlc__flight_slot *sl, uint64_t w,
	       struct owner_snap *o)
{
	ck_pr_fence_load();
	o->pub = ck_pr_load_64(&sl->fs_pub);
	ck_pr_fence_load();
	o->owner = ck_pr_load_64(&sl->fs_owner);
	o->start = ck_pr_load_64(&sl->fs_owner_start);
	o->ns = ck_pr_load_32(&sl->fs_owner_ns);
	o->deadline = ck_pr_load_64(&sl->fs_deadline);
	ck_pr_fence_load();
	return ck_pr_load_64(&sl->fs_word) == w;
}

/* Is flight @p gen of slot @p sl, seen unpublished, still unpublished
 * with no live process counted as claiming?  The word (read by the
 * caller) before the counters, the counters before fs_pub: a claimer
 * counted out has published (it stores fs_pub, then decrements). */
static bool
unpublished_unclaimed(struct mlc_arena *a, const struct mlc__flight_slot *sl,
		      uint64_t gen)
{
	ck_pr_fence_load();
	if (mlc__procs_claiming(a))
		return false;
	ck_pr_fence_load();
	return ck_pr_load_64(&sl->fs_pub) != gen;
}

/* Is the flight of another key in slot @p sl, word @p w, abandoned: its
 * owner proven dead or past its lease, or never published and no live
 * process counted as claiming?  Judged as a waiter judges its own flight's
 * owner (steal()), on fields read between two loads of an unchanged word,
 * but without the grace: the caller is counted out (the counters would
 * count it), and it takes the slot by a CAS from @p w, so a flight that
 * changed hands since is left alone. */
static bool
abandoned(struct mlc_arena *a, const struct mlc__flight_slot *sl, uint64_t w)
{
	struct owner_snap o;

	if (MLC__FW_TAG(w) == 0 || !owner_snapshot(sl, w, &o))
		return false;
	if (o.pub == MLC__FW_GEN(w))
		return mlc__now_ms() > o.deadline ||
		       mlc__proc_dead((uint32_t)(o.owner >> 32), o.start, o.ns);
	/* As unpublished_gone(), without its grace: we are counted out. */
	return unpublished_unclaimed(a, sl, MLC__FW_GEN(w));
}

/* Claim a free slot of the two, or one whose word is @p gone[i] (another
 * key's abandoned flight), or join a slot that holds the key by now.
 * -EBUSY if none.  Counted as claiming throughout. */
static int
claim(struct mlc_arena *a, struct mlc__fl *f, const uint32_t c[2],
      uint64_t tag, uint32_t lease_ms, const uint64_t gone[2])
{
	for (int i = 0; i < 2; i++) {
		struct mlc__flight_slot *sl = slot_of(a, c[i]);
		uint64_t w = ck_pr_load_64(&sl->fs_word), mine;

		if (MLC__FW_TAG(w) == tag) {	/* claimed since our look */
			join(a, f, c[i], w);
			return 0;
		}
		if (MLC__FW_TAG(w) != 0 && w != gone[i])
			continue;
		mine = MLC__FW_MAKE(MLC__FW_GEN(w) + 1, tag);
		if (!ck_pr_cas_64_value(&sl->fs_word, w, mine, &w)) {
			if (MLC__FW_TAG(w) == tag) {	/* a twin won */
				join(a, f, c[i], w);
				return 0;
			}
			continue;
		}
		MLC_PAUSE(FLIGHT_CLAIMED);
		if (c[0] != c[1]) {
			uint32_t other = c[1 - i];
			uint64_t wo;

			ck_pr_fence_atomic_load();	/* our CAS, then look */
			wo = ck_pr_load_64(&slot_of(a, other)->fs_word);
			if (MLC__FW_TAG(wo) == tag &&
			    ck_pr_cas_64(&sl->fs_word, mine,
					 MLC__FW_MAKE(MLC__FW_GEN(mine) + 1,
						      0))) {
				/* Anyone who joined us meanwhile lines up
				 * again now, not at its next slice. */
				ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec,
					    &ec_mode);
				join(a, f, other, wo);
				return 0;
			}
		}
		publish_owner(a, f, c[i], mine, lease_ms);
		/* The abandoned flight's waiters line up again now. */
		if (MLC__FW_TAG(w) != 0)
			ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec, &ec_mode);
		return 0;
	}
	return -EBUSY;
}

/* Join the key's flight if one of its two slots has it, else claim a free
 * one.  Another caller of the key may claim a slot between our look and
 * our claim (we may stop there for seconds): the claim loop joins a slot
 * that holds the key by then, and a caller that claimed a slot gives way
 * if the other one turns out to hold the key too (after its CAS, so that
 * of two such callers at least one sees the other: both may give way,
 * and line up again; never both keep).  Both slots busy with other keys:
 * one whose owner died or overran its lease is taken over (only a caller
 * of its own key would, else: a key never asked again kept its slot for
 * good, and the keys of those slots lost single flight). */
int
mlc__flight_acquire(struct mlc_arena *a, uint64_t hash, uint32_t lease_ms,
		    struct mlc__fl *f)
{
	uint64_t tag = key_tag(hash), gone[2] = { 0, 0 };
	uint32_t c[2], *claiming;
	bool any = false;
	int rc;

	memset(f, 0, sizeof(*f));
	f->hash = hash;
	slot_candidates(a, hash, c);
	for (int i = 0; i < 2; i++) {
		uint64_t w = ck_pr_load_64(&slot_of(a, c[i])->fs_word);

		if (MLC__FW_TAG(w) == tag) {
			join(a, f, c[i], w);
			return 0;
		}
	}
	MLC_PAUSE(FLIGHT_SCANNED);
	claiming = mlc__procs_claiming_word(a);
	for (int round = 0; round < 2; round++) {
		ck_pr_inc_32(claiming);
		ck_pr_fence_atomic();		/* counted in, then the CAS */
		rc = claim(a, f, c, tag, lease_ms, gone);
		/* After the publication: a waiter that reads this counter
		 * without us reads our fs_pub. */
		ck_pr_fence_store_atomic();
		ck_pr_dec_32(claiming);
		if (rc == 0 || round > 0)
			break;
		/* Both busy: judged with this caller counted out. */
		for (int i = 0; i < 2; i++) {
			struct mlc__flight_slot *sl = slot_of(a, c[i]);
			uint64_t w = ck_pr_load_64(&sl->fs_word);

			if (abandoned(a, sl, w)) {
				gone[i] = w;
				any = true;
			}
		}
		if (!any)
			break;
	}
	if (rc == -EBUSY) {
		/* Both slots busy with other keys: load without single
		 * flight. */
		f->role = MLC_FLIGHT_LOADER;
		f->slot = 0;
	}
	return rc;
}

const uint64_t *
mlc__flight_word_at(struct mlc_arena *a, const struct mlc__fl *f)
{
	return f->slot == 0 ? NULL : &slot_of(a, f->slot - 1)->fs_word;
}

bool
mlc__flight_mine(struct mlc_arena *a, const struct mlc__fl *f)
{
	if (f->slot == 0)
		return true;		/* not in the table: nothing to fence */
	return ck_pr_load_64(&slot_of(a, f->slot - 1)->fs_word) ==
	       mlc__flight_word(f);
}

/* Stamp the end of flight @p gen, unless a later flight of the slot
 * stamped its own: a release stopped between its CAS and its stamp
 * (FLIGHT_RELEASED) while the next flight ran and ended put its end over
 * that one's, whose waiters, woken late, then judged their result by no
 * end at all (test-flight test_late_end_stamp).  Generations are 40 bits
 * and wrap: "later" is within half their range. */
static void
stamp_end(struct mlc__flight_slot *sl, uint64_t gen)
{
	uint64_t s = MLC__FW_MAKE(gen, mlc__now_ms() & ENDED_MASK);
	uint64_t old = ck_pr_load_64(&sl->fs_ended), d;

	do {
		d = (MLC__FW_GEN(old) - gen) & MLC__FW_GEN_MASK;
		if (d != 0 && d < MLC__FW_GEN_MASK / 2)
			return;		/* a later flight's end */
	} while (!ck_pr_cas_64_value(&sl->fs_ended, old, s, &old));
}

/* End the flight: every waiter wakes and finds the result in L2 or in the
 * outcome record.  One CAS from the exact word we installed (generation,
 * and so owner, and key): a flight taken over since, or another flight we
 * hold in this slot now, is left alone. */
void
mlc__flight_release(struct mlc_arena *a, struct mlc__fl *f)
{
	struct mlc__flight_slot *sl;
	uint64_t w;

	if (f->slot == 0 || f->role != MLC_FLIGHT_LOADER)
		goto out;
	sl = slot_of(a, f->slot - 1);
	w = mlc__flight_word(f);
	MLC_PAUSE(FLIGHT_RELEASING);
	/* The result (L2 or the outcome record) is stored before this CAS,
	 * which is a full barrier: a waiter that sees the slot change reads
	 * the result. */
	if (!ck_pr_cas_64(&sl->fs_word, w, MLC__FW_MAKE(f->gen + 1, 0)))
		goto out;		/* taken over: not ours to release */
	MLC_PAUSE(FLIGHT_RELEASED);
	/* When it ended, for its waiters to judge the result by: one woken
	 * late must not find it expired and load beside the next flight
	 * (ended_at()).  Only a release stamps, after its CAS: a flight
	 * taken over gave its waiters no result.  Stored before the wake-up,
	 * so that a woken waiter reads it. */
	stamp_end(sl, f->gen);
	ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec, &ec_mode);
out:
	f->role = MLC_FLIGHT_NONE;
	f->slot = 0;
}

/* Probing an owner reads /proc: at most once a slice, not on every
 * wake-up or poll. */
static bool
probe_due(struct mlc__fl *f, uint64_t now)
{
	if (now - f->checked < SLICE_MS)
		return false;
	f->checked = now;
	return true;
}

/* The owner won the slot but has not published (its fields are someone
 * else's): it stopped or died between the two steps.  Stopped, it counts
 * in a live process's claiming counter, and only the lease (from when we
 * joined) ends it; dead, it counts nowhere, and the grace does. */
static bool
unpublished_gone(struct mlc_arena *a, const struct mlc__flight_slot *sl,
		 struct mlc__fl *f, uint64_t now, uint32_t lease_ms)
{
	if (now - f->joined < CLAIM_GRACE_MS)
		return false;
	if (now - f->joined >= lease_ms)
		return true;
	if (!probe_due(f, now))
		return false;
	return unpublished_unclaimed(a, sl, f->gen);	/* else judge it next */
}

/* Take a flight over from an owner proven dead, past its lease, or never
 * published. */
static bool
steal(struct mlc_arena *a, struct mlc__fl *f, uint32_t lease_ms,
      uint64_t *steals)
{
	struct mlc__flight_slot *sl = slot_of(a, f->slot - 1);
	uint64_t w = mlc__flight_word(f), next;
	uint64_t now = mlc__now_ms();
	struct owner_snap o;
	uint32_t *claiming;

	if (ck_pr_load_64(&sl->fs_word) != w || !owner_snapshot(sl, w, &o))
		return false;
	if (o.pub != f->gen) {
		if (!unpublished_gone(a, sl, f, now, lease_ms))
			return false;
	} else if (now <= o.deadline) {
		if (!probe_due(f, now) ||
		    !mlc__proc_dead((uint32_t)(o.owner >> 32), o.start, o.ns))
			return false;
	}
	next = MLC__FW_MAKE(f->gen + 1, MLC__FW_TAG(w));
	/* A thief is a claimer: counted in while unpublished. */
	claiming = mlc__procs_claiming_word(a);
	ck_pr_inc_32(claiming);
	ck_pr_fence_atomic();
	if (!ck_pr_cas_64(&sl->fs_word, w, next)) {
		ck_pr_dec_32(claiming);
		return false;
	}
	MLC_PAUSE(FLIGHT_STOLEN);
	waiter_out(sl);
	publish_owner(a, f, f->slot - 1, next, lease_ms);
	ck_pr_fence_store_atomic();
	ck_pr_dec_32(claiming);
	(*steals)++;
	/* Wake the others: they must follow the new generation. */
	ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec, &ec_mode);
	return true;
}

/* When the flight @p f waited for was released, by its owner's stamp; 0
 * if unknown (taken over, not stamped yet, or a later release stamped
 * over it).  Its word may have moved on since, to the key's next flight:
 * a waiter woken late finds it so.  The stamp keeps 24 bits of the ms
 * (4.6 hours): the end is the last such time up to now, and not before
 * the waiter joined (test clocks differ per process). */
static uint64_t
ended_at(const struct mlc__flight_slot *sl, const struct mlc__fl *f)
{
	uint64_t s, now;

	ck_pr_fence_load();	/* the word moved, then its stamp */
	s = ck_pr_load_64(&sl->fs_ended);
	if (MLC__FW_GEN(s) != f->gen)
		return 0;
	now = mlc__now_ms();
	return MLC_MAX(now - ((now - MLC__FW_TAG(s)) & ENDED_MASK),
		       f->joined);
}

int
mlc__flight_wait(struct mlc_arena *a, struct mlc__fl *f, uint64_t until_ms,
		 uint32_t lease_ms, uint64_t *steals)
{
	struct mlc__flight_slot *sl = slot_of(a, f->slot - 1);
	uint64_t w = mlc__flight_word(f);

	for (;;) {
		uint32_t ev = ck_ec32_value((struct ck_ec32 *)&sl->fs_ec);
		uint64_t now = mlc__now_ms();
		struct timespec dl;
		uint64_t slice;

		if (ck_pr_load_64(&sl->fs_word) != w) {
			waiter_out(sl);
			f->role = MLC_FLIGHT_NONE;
			f->ended = ended_at(sl, f);
			return 0;	/* ended: look for the result */
		}
		if (steal(a, f, lease_ms, steals))
			return 1;	/* the caller loads now */
		if (now >= until_ms)
			return -EAGAIN;
		slice = MLC_MIN(until_ms - now, SLICE_MS);
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_nsec += (long)(slice * 1000000);
		while (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		ck_ec32_wait((struct ck_ec32 *)&sl->fs_ec, &ec_mode, ev, &dl);
	}
}

void
mlc__flight_leave(struct mlc_arena *a, struct mlc__fl *f)
{
	if (f->role == MLC_FLIGHT_WAITER && f->slot != 0)
		waiter_out(slot_of(a, f->slot - 1));
	f->role = MLC_FLIGHT_NONE;
	f->slot = 0;
}
