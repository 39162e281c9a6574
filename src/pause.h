/*
 * Pause points: named places on the shared-memory paths where another
 * process may stop for seconds, or die.  A test build (MLC_PAUSE_POINTS
 * defined, as the library the tests link is built) calls mlc__pause() at
 * each, which lets a test stop this process there for real, kill it there,
 * or sleep there at random (MLC_TEST_DELAYS); every other build compiles
 * them to nothing.
 *
 * Each name says where the process stands: after the step before it, and
 * before the step after it.
 */
#ifndef MLC_PAUSE_H
#define MLC_PAUSE_H

#define MLC__PAUSE_POINTS(X) \
	/* a write (table.c) */ \
	X(PUT_ALLOCATED)	/* chunk ALLOC, nothing copied into it */ \
	X(PUT_COPIED)		/* key and value copied, stripes not held */ \
	X(PUT_LIVE)		/* stripes held, chunk LIVE, its stamp (who
				 * allocated it) not yet overwritten */ \
	X(PUT_CLAIMED)		/* stripes held, chunk LIVE, not linked */ \
	X(PUT_LINKED)		/* slot stored, stripes held */ \
	X(PUT_UNLOCKED)		/* stripes dropped, old chunk not freed */ \
	X(MOVE_LINKED)		/* an entry moved for room is in both its
				 * buckets, stripes held */ \
	X(DEL_UNLINKED)		/* slot cleared, stripes held */ \
	X(DEL_UNLOCKED)		/* stripes dropped, chunk not freed */ \
	X(SLOT_STORED)		/* a slot word stored (set, delete, move),
				 * its bucket's version still odd */ \
	/* a lock-free read (table.c) */ \
	X(READ_MATCHED)		/* key compared, value not copied */ \
	X(READ_PIECE)		/* a chained item's piece about to be
				 * copied */ \
	X(READ_VALIDATED)	/* version re-checked, CLOCK bit not set */ \
	/* the allocator (alloc.c) */ \
	X(FREE_LOCKED)		/* class lock held, chunk not checked */ \
	X(ALLOC_POPPED)		/* chunk ALLOC and stamped, lock held */ \
	X(ALLOC_SMALL)		/* chunk marked for probation, not yet
				 * counted, lock held */ \
	X(SWEEP_PROMOTED)	/* item moved to main, not yet uncounted,
				 * lock held */ \
	X(CHAIN_MARKED)		/* a piece marked PIECE, its head not yet
				 * named in it, class lock held */ \
	X(CHAIN_PIECE)		/* a piece marked PIECE and naming its
				 * head, not yet in the head's table, class
				 * lock held */ \
	X(CHAIN_DROPPED)	/* a head's pieces freed, the head not yet,
				 * class lock held */ \
	X(CARVE_MARKED)		/* page marked carving, chunks not made */ \
	X(EVICT_UNLINKED)	/* a victim unlinked, not freed */ \
	X(PAGE_DRAINED)		/* a page emptied, not yet moved */ \
	X(PAGE_UNLINKED)	/* an emptied page out of its class, in no
				 * other class nor the pool yet */ \
	X(EMPTY_COUNTED)	/* a class's count of empty pages moved,
				 * the header's sum not yet */ \
	X(ORPHAN_SUSPECT)	/* another process's chunk seen ALLOC, its
				 * writer not yet judged */ \
	X(ORPHAN_PROVEN)	/* an ALLOC chunk's writer judged dead */ \
	/* attach (arena.c) */ \
	X(ATTACH_VALIDATED)	/* an arena's header validated, its
				 * geometry not yet taken into the
				 * process's struct mlc_arena */ \
	X(RESET_LOCKED)		/* an arena of an earlier boot validated
				 * and locked alone, its size not yet
				 * taken again */ \
	X(RESET_MAPPED)		/* an arena of an earlier boot validated,
				 * locked alone and mapped again, nothing
				 * rebuilt yet */ \
	/* a namespace added (arena.c) */ \
	X(NS_MARKED)		/* entry marked used, not yet counted, lock
				 * held */ \
	/* mlc_arena_check() (check.c), which writes nothing */ \
	X(CHECK_SLOT_READ)	/* a slot word read, its item not yet */ \
	X(CHECK_NS_WALKED)	/* namespace table walked, count not read */ \
	/* single flight (flight.c) */ \
	X(FLIGHT_SCANNED)	/* the key's two slots looked at, neither
				 * joined nor claimed yet */ \
	X(FLIGHT_CLAIMED)	/* slot won, owner not published */ \
	X(FLIGHT_STOLEN)	/* slot taken over, owner not published */ \
	X(FLIGHT_PUBLISHING)	/* slot still ours, fields being written */ \
	X(FLIGHT_RELEASING)	/* result stored, slot still owned */ \
	X(FLIGHT_RELEASED)	/* slot released, its end not stamped,
				 * waiters not woken */ \
	/* the invalidation log (log.c, write.c) */ \
	X(LOG_NUMBERED)		/* sequence taken, its cell not claimed */ \
	X(LOG_UNSTAMPED)	/* cell claimed, its claim record (who,
				 * when) not written yet */ \
	X(LOG_CLAIMED)		/* cell claimed, L2 not written yet */ \
	X(LOG_CHANGING)		/* cell marked CHANGING, stripes held, L2
				 * not written yet */ \
	X(LOG_STORED)		/* L2 written, cell not published */ \
	X(LOG_FILLED)		/* a cell's record written over its
				 * payload words, not published yet */ \
	X(LOG_WAITING)		/* a reader's cursor waits at an unpublished
				 * cell, the records after it not yet looked
				 * at (log.c) */ \
	X(PURGE_PUBLISHED)	/* a purge's generation published, its
				 * namespace's live counts not yet moved
				 * on (write.c) */ \
	/* the loader (load.c) */ \
	X(LOAD_RETURNED)	/* loader returned, nothing stored */ \
	X(LOAD_OWNED)		/* the flight still the loader's when it
				 * looked, its result not stored */ \
	X(LOAD_KEPT)		/* the loader's value stored, the key's
				 * error record (its back-off) not yet
				 * looked at */ \
	X(LOAD_STORED)		/* result stored, flight not released */ \
	/* a handle's L1 (l1.c): private memory, but a fork() by another \
	 * thread copies it as it stands */ \
	X(L1_LINKING)		/* an entry in its hash chain, not yet in \
				 * its queue nor marked linked */ \
	X(L1_UNLINKING)		/* an entry out of its hash chain, still \
				 * in its queue and marked linked */

enum mlc__pause_point {
#define MLC__PAUSE_ENUM(name) MLC__P_##name,
	MLC__PAUSE_POINTS(MLC__PAUSE_ENUM)
#undef MLC__PAUSE_ENUM
	MLC__P_COUNT
};

#ifdef MLC_PAUSE_POINTS
/* Called at every pause point this process passes.  NULL: only the
 * random delays of MLC_TEST_DELAYS apply. */
extern void (*mlc__pause_hook)(enum mlc__pause_point p, void *arg);
extern void *mlc__pause_arg;
void mlc__pause(enum mlc__pause_point p);
const char *mlc__pause_name(enum mlc__pause_point p);
/* From now on this process sleeps at random once in @p n passes (0: never),
 * whatever MLC_TEST_DELAYS said. */
void mlc__pause_delays(int n);
/* Times each point was passed in this process (tests read it). */
extern unsigned long mlc__pause_hits[MLC__P_COUNT];
#define MLC_PAUSE(name) mlc__pause(MLC__P_##name)
/* Switches for paths a test cannot otherwise reach (arena.c): creation
 * as on a filesystem without O_TMPFILE, and the random part of the names
 * it then tries (NULL: getrandom()). */
extern int mlc__test_no_tmpfile;
/* Every Nth allocation for an index move fails (table.c), as in an arena
 * with no chunk to give and nothing to evict; 0: never. */
extern unsigned long mlc__test_move_alloc_fail_every;
extern uint64_t (*mlc__test_tmp_bits)(void);
#else
#define MLC_PAUSE(name) ((void)0)
#endif

#endif /* MLC_PAUSE_H */
