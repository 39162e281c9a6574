/*
 * The invalidation log (src/log.c).
 */
#ifndef MLC_LOG_H
#define MLC_LOG_H

#include "l1.h"

/* How long a claimed but unpublished cell may hold readers back before
 * they assume its writer died and drop their L1 instead.  This bounds how
 * long an L1 can serve a value changed elsewhere. */
#define MLC__LOG_STUCK_MS 100

/* Unpublished cells a handle keeps track of beyond the one its cursor
 * waits at (log.c, look_ahead()). */
#define MLC__LOG_SKIP 8

enum mlc__log_op {
	MLC__LOG_SET = 1,
	MLC__LOG_DEL = 2,
	MLC__LOG_PURGE = 3,
	MLC__LOG_NOP = 4,	/* a claimed cell whose change failed */
};

/* One handle's reading position and counters. */
struct mlc__logr {
	struct mlc__l1 *l1;
	uint32_t ns;
	uint64_t cursor;	/* records below it are applied */
	uint64_t ahead;		/* the records from the cursor up to this
				 * one are applied too (look_ahead(): the
				 * cursor waits at an unpublished one) ... */
	uint64_t skip[MLC__LOG_SKIP];	/* ... but these, unpublished when
				 * looked at (nskip of them) */
	uint32_t nskip;
	uint64_t wait;		/* the cell the cursor waited at when it
				 * last looked ahead (not applied ahead) */
	uint64_t moves;		/* records applied and L1 clears: what a
				 * callback did to L1 (l1_mark()) */
	uint64_t stuck_since;	/* ms this handle was first held back by an
				 * unpublished cell (0: it is not) ... */
	uint64_t stuck_head;	/* ... and the head then: cells below it
				 * have been unpublished at least as long */
	uint64_t held;		/* the record (its sequence + 1) whose
				 * CHANGING cell last held the cursor and
				 * this handle's L1 empty, counted in stuck
				 * once */
	uint64_t orphan;	/* the claim (sequence + 1) of the last
				 * CHANGING cell seen without identity ... */
	uint64_t orphan_since;	/* ... and since when (ms) */
	uint64_t probe_at;	/* ms: the next look in /proc allowed */
	uint64_t applied, dropped, overruns, stuck;
	/* Optional report of what was dropped, for a cache layered over
	 * this handle (mlc_update_ex): hashes, and whether all must go. */
	uint64_t *out;
	struct mlc_update_record *out_rec;	/* or hash + version */
	size_t out_cap, out_n;
	bool out_all;
};

uint64_t mlc__log_claim(struct mlc_arena *a);
/* The writer of log claim *@p seq (0: none) changes L2 now, under the
 * stripe locks: its cell is marked CHANGING, or, if readers gave up on it,
 * a fresh one claimed and marked (*@p seq then names it). */
void mlc__log_changing(struct mlc_arena *a, uint64_t *seq);
void mlc__log_fill(struct mlc_arena *a, uint64_t seq, uint32_t ns,
		   uint64_t hash, uint16_t op, uint64_t version);
uint64_t mlc__log_head(const struct mlc_arena *a);
uint64_t mlc__log_start(const struct mlc_arena *a);
/* Start reading over (mlc__log_start()), after the caller emptied L1. */
void mlc__log_restart(const struct mlc_arena *a, struct mlc__logr *lr);
/* Go on from the cursor, looking at every cell after it again (a fork
 * child: the look-ahead's state may be a parent thread's half-made one;
 * records already applied are applied again, which changes nothing). */
void mlc__log_resume(struct mlc__logr *lr);
void mlc__log_apply(struct mlc_arena *a, struct mlc__logr *lr,
		    uint32_t budget);

#endif /* MLC_LOG_H */
