/*
 * Synthetic request traces for the hit-ratio bench: deterministic from a
 * seed, generated in memory (only the generator is committed).  A trace is
 * a sequence of key ids; every key has one fixed value length, so the
 * bytes an object takes are a function of its id.
 */
#ifndef HR_TRACE_H
#define HR_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HR_KEY 16		/* key bytes, for mlc and for the object size */
#define HR_ITEM_HDR 32		/* mlc's item header: an object's bytes are
				 * header + key + value, 8-aligned, for the
				 * references as for mlc (before mlc's own
				 * size-class rounding) */

enum hr_kind {
	HR_ZIPF,		/* Zipf(alpha) over nkeys */
	HR_SCAN,		/* Zipf(alpha), and a one-time scan of fresh
				 * keys every period requests */
	HR_SHIFT,		/* Zipf(alpha) over a window of keys that moves
				 * by half its width every phase */
	HR_LOOP,		/* keys 0..nkeys-1 in a loop (tests) */
	HR_SIZESHIFT,		/* Zipf(alpha) over keys of vmax-byte values,
				 * then, for the second half of the requests,
				 * over other keys of vmin-byte values: each
				 * half the footprint's bytes */
};

struct hr_spec {
	const char *name;
	enum hr_kind kind;
	double alpha;
	uint32_t vmin, vmax;	/* value bytes: log-uniform per key */
};

struct hr_trace {
	const char *name;
	uint32_t *req;		/* key ids, n of them */
	uint64_t n;
	uint32_t nkeys;		/* ids are < nkeys */
	uint32_t vmin, vmax;
	uint32_t split;		/* HR_SIZESHIFT: ids below hold vmax bytes,
				 * the others vmin; 0 otherwise */
	uint32_t *bytes;	/* object bytes per id (header+key+value) */
	uint64_t footprint;	/* bytes of the distinct objects requested */
	uint64_t distinct;
};

/* The value length of key @p id (log-uniform in [vmin, vmax], from the
 * id alone; HR_SIZESHIFT: by which side of split it is). */
uint32_t hr_vlen(const struct hr_trace *t, uint32_t id);

/* A trace of about @p keys distinct keys (the key space; scans and shifts
 * add theirs) and @p n requests. */
int hr_trace_make(struct hr_trace *t, const struct hr_spec *s, uint32_t keys,
		  uint64_t n, uint64_t seed);

/* The mean object bytes of @p s's keys (header + key + value, 8-aligned):
 * the key space for a footprint is the footprint over this. */
double hr_mean_obj(const struct hr_spec *s);
void hr_trace_free(struct hr_trace *t);

/* splitmix64: the bench's one generator of pseudo-random numbers. */
uint64_t hr_rand(uint64_t *state);
uint64_t hr_mix(uint64_t x);

#endif /* HR_TRACE_H */
