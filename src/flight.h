/*
 * Single flight (src/flight.c).
 */
#ifndef MLC_FLIGHT_H
#define MLC_FLIGHT_H

#include "mlc-int.h"

/* One caller's part in a flight. */
struct mlc__fl {
	uint32_t role;		/* enum mlc_flight_role */
	uint32_t slot;		/* slot index + 1; 0: not in the table */
	uint64_t gen;		/* the generation of the slot's word we
				 * joined or installed (40 bits) */
	uint64_t hash;		/* the key's hash (its tag is in the word) */
	uint64_t token;		/* ours, when we own it */
	uint64_t joined;	/* ms a waiter joined */
	uint64_t checked;	/* ms it last probed the owner's liveness */
	uint64_t ended;		/* ms the flight waited for was released
				 * by its owner (0: unknown) */
};

/* 0: f->role says LOADER (owns a slot) or WAITER.  -EBUSY: both slots of
 * the key are taken by other keys; the caller loads without single flight
 * (f->role LOADER, f->slot 0). */
int mlc__flight_acquire(struct mlc_arena *a, uint64_t hash, uint32_t lease_ms,
			struct mlc__fl *f);
/* Wait until the flight ends (0; f->ended says when its owner released
 * it, if known), the caller took it over (1: now LOADER), or @p until_ms
 * passed (-EAGAIN; still a waiter). */
int mlc__flight_wait(struct mlc_arena *a, struct mlc__fl *f, uint64_t until_ms,
		     uint32_t lease_ms, uint64_t *steals);
/* The slot word of the flight @p f joined or owns. */
uint64_t mlc__flight_word(const struct mlc__fl *f);

/* Which flight @p f is, arena-wide: its slot and that slot's generation
 * (every slot counts its own generations from 0, so a generation alone
 * names a flight of each slot).  0 for a load outside the table. */
static inline uint64_t
mlc__flight_id(const struct mlc__fl *f)
{
	return f->slot == 0 ? 0 :
	       (uint64_t)f->slot << 40 | (f->gen & ((UINT64_C(1) << 40) - 1));
}
/* The word of the slot @p f owns (NULL for a load outside the table): a
 * store by its owner is made only while it is mlc__flight_word(f). */
const uint64_t *mlc__flight_word_at(struct mlc_arena *a,
				    const struct mlc__fl *f);
/* Does the caller still own the flight (not fenced out)? */
bool mlc__flight_mine(struct mlc_arena *a, const struct mlc__fl *f);
/* End an owned flight and wake every waiter. */
void mlc__flight_release(struct mlc_arena *a, struct mlc__fl *f);
/* Stop waiting (give up after a timeout). */
void mlc__flight_leave(struct mlc_arena *a, struct mlc__fl *f);

#endif /* MLC_FLIGHT_H */
