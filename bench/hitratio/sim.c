/*
 * The reference policies (see sim.h).  Every queue is a doubly linked list
 * threaded through per-id arrays: a key is in at most one queue at a time
 * (S3-FIFO's ghost included), which where[] records.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "trace.h"

#define NIL UINT32_MAX

struct list {
	uint32_t head, tail;	/* head: oldest / least recent */
	uint64_t bytes;
};

struct hr_sim {
	enum hr_policy p;
	uint64_t cap;
	uint32_t *prev, *next, *size;
	uint8_t *where;		/* 0: absent, else the list index + 1 */
	uint8_t *freq;		/* CLOCK: ref bit; S3-FIFO: 0..3 */
	struct list l[3];
	uint64_t small_cap, win_cap, prot_cap;
	/* W-TinyLFU's count-min sketch: 4 rows of 8-bit counters (used up
	 * to 15, as 4-bit ones). */
	uint8_t *cm;
	uint32_t cm_mask;
	uint64_t samples, resident;
};

const char *
hr_policy_name(enum hr_policy p)
{
	static const char *const names[] = { "LRU", "CLOCK", "S3-FIFO",
					     "W-TinyLFU" };

	return p < HR_NPOLICIES ? names[p] : "?";
}

/* ---- lists ---------------------------------------------------------- */

static void
push_tail(struct hr_sim *s, int li, uint32_t id, uint32_t bytes)
{
	struct list *l = &s->l[li];

	s->prev[id] = l->tail;
	s->next[id] = NIL;
	if (l->tail != NIL)
		s->next[l->tail] = id;
	else
		l->head = id;
	l->tail = id;
	l->bytes += bytes;
	s->size[id] = bytes;
	s->where[id] = (uint8_t)(li + 1);
}

static void
unlink_id(struct hr_sim *s, uint32_t id)
{
	struct list *l = &s->l[s->where[id] - 1];

	if (s->prev[id] != NIL)
		s->next[s->prev[id]] = s->next[id];
	else
		l->head = s->next[id];
	if (s->next[id] != NIL)
		s->prev[s->next[id]] = s->prev[id];
	else
		l->tail = s->prev[id];
	l->bytes -= s->size[id];
	s->where[id] = 0;
}

static void
move_tail(struct hr_sim *s, int li, uint32_t id)
{
	uint32_t b = s->size[id];

	unlink_id(s, id);
	push_tail(s, li, id, b);
}

static uint64_t
used(const struct hr_sim *s, int nlists)
{
	uint64_t u = 0;

	for (int i = 0; i < nlists; i++)
		u += s->l[i].bytes;
	return u;
}

/* ---- LRU ------------------------------------------------------------ */

static bool
lru_access(struct hr_sim *s, uint32_t id, uint32_t bytes)
{
	if (s->where[id]) {
		move_tail(s, 0, id);
		return true;
	}
	if (bytes > s->cap)
		return false;
	while (s->l[0].bytes + bytes > s->cap)
		unlink_id(s, s->l[0].head);
	push_tail(s, 0, id, bytes);
	return false;
}

/* ---- CLOCK: a FIFO whose head gets a second chance if referenced ----- */

static bool
clock_access(struct hr_sim *s, uint32_t id, uint32_t bytes)
{
	if (s->where[id]) {
		s->freq[id] = 1;
		return true;
	}
	if (bytes > s->cap)
		return false;
	while (s->l[0].bytes + bytes > s->cap) {
		uint32_t h = s->l[0].head;

		if (s->freq[h]) {
			s->freq[h] = 0;
			move_tail(s, 0, h);
		} else {
			unlink_id(s, h);
		}
	}
	push_tail(s, 0, id, bytes);
	s->freq[id] = 0;
	return false;
}

/* ---- S3-FIFO: l[0] small, l[1] main, l[2] ghost (keys only) --------- */

enum { S3_S = 0, S3_M = 1, S3_G = 2 };

static void
s3_ghost_add(struct hr_sim *s, uint32_t id)
{
	uint64_t gcap = s->cap - s->small_cap;	/* as many as main holds */

	push_tail(s, S3_G, id, s->size[id]);
	while (s->l[S3_G].bytes > gcap)
		unlink_id(s, s->l[S3_G].head);
}

/* Evict one object from the small queue: to main if it was read more than
 * once while there (Algorithm 1: freq > 1), else to the ghost queue. */
static void
s3_evict_small(struct hr_sim *s)
{
	while (s->l[S3_S].head != NIL) {
		uint32_t t = s->l[S3_S].head;

		if (s->freq[t] > 1) {
			s->freq[t] = 0;
			move_tail(s, S3_M, t);
			continue;
		}
		unlink_id(s, t);
		s3_ghost_add(s, t);
		return;
	}
}

/* Evict one object from main: those read since they were last passed go
 * round again with their frequency lowered. */
static void
s3_evict_main(struct hr_sim *s)
{
	while (s->l[S3_M].head != NIL) {
		uint32_t t = s->l[S3_M].head;

		if (s->freq[t] > 0) {
			s->freq[t]--;
			move_tail(s, S3_M, t);
			continue;
		}
		unlink_id(s, t);
		return;
	}
}

static bool
s3_access(struct hr_sim *s, uint32_t id, uint32_t bytes)
{
	int w = s->where[id];

	if (w == S3_S + 1 || w == S3_M + 1) {
		if (s->freq[id] < 3)
			s->freq[id]++;
		return true;
	}
	if (bytes > s->cap)
		return false;
	while (used(s, 2) + bytes > s->cap) {
		if (s->l[S3_S].bytes >= s->small_cap || s->l[S3_M].head == NIL)
			s3_evict_small(s);
		else
			s3_evict_main(s);
	}
	s->freq[id] = 0;
	/* Still a ghost? The evictions above may have aged it out. */
	if (s->where[id] == S3_G + 1) {
		unlink_id(s, id);
		push_tail(s, S3_M, id, bytes);
	} else {
		push_tail(s, S3_S, id, bytes);
	}
	return false;
}

/* ---- W-TinyLFU: l[0] window LRU, l[1] probation, l[2] protected ------ */

enum { TL_W = 0, TL_PROB = 1, TL_PROT = 2 };

static uint32_t
cm_index(const struct hr_sim *s, uint32_t id, int row)
{
	return (row * (s->cm_mask + 1)) +
	       (uint32_t)(hr_mix((uint64_t)id << 2 | (uint64_t)row) &
			  s->cm_mask);
}

static unsigned
cm_freq(const struct hr_sim *s, uint32_t id)
{
	unsigned f = 15;

	for (int r = 0; r < 4; r++) {
		unsigned c = s->cm[cm_index(s, id, r)];

		if (c < f)
			f = c;
	}
	return f;
}

static void
cm_add(struct hr_sim *s, uint32_t id)
{
	for (int r = 0; r < 4; r++) {
		uint8_t *c = &s->cm[cm_index(s, id, r)];

		if (*c < 15)
			(*c)++;
	}
	/* Aging: halve every counter after 10 x the entries held. */
	if (++s->samples >= 10 * (s->resident > 64 ? s->resident : 64)) {
		for (uint64_t i = 0; i < 4 * ((uint64_t)s->cm_mask + 1); i++)
			s->cm[i] >>= 1;
		s->samples /= 2;
	}
}

static void
tl_drop(struct hr_sim *s, uint32_t id)
{
	unlink_id(s, id);
	s->resident--;
}

/* The window's oldest entry leaves it: into main if there is room, else
 * only if the sketch says it is more frequent than main's victim. */
static void
tl_window_evict(struct hr_sim *s)
{
	uint64_t main_cap = s->cap - s->win_cap;
	uint32_t c = s->l[TL_W].head, b = s->size[c];

	unlink_id(s, c);
	if (b > main_cap) {
		s->resident--;
		return;
	}
	while (s->l[TL_PROB].bytes + s->l[TL_PROT].bytes + b > main_cap) {
		uint32_t v = s->l[TL_PROB].head != NIL ? s->l[TL_PROB].head :
							  s->l[TL_PROT].head;

		if (cm_freq(s, c) <= cm_freq(s, v)) {
			s->resident--;	/* the candidate loses */
			return;
		}
		tl_drop(s, v);
	}
	push_tail(s, TL_PROB, c, b);
}

static bool
tl_access(struct hr_sim *s, uint32_t id, uint32_t bytes)
{
	int w = s->where[id];

	cm_add(s, id);
	switch (w) {
	case TL_W + 1:
		move_tail(s, TL_W, id);
		return true;
	case TL_PROT + 1:
		move_tail(s, TL_PROT, id);
		return true;
	case TL_PROB + 1:
		move_tail(s, TL_PROT, id);
		while (s->l[TL_PROT].bytes > s->prot_cap)
			move_tail(s, TL_PROB, s->l[TL_PROT].head);
		return true;
	}
	if (bytes > s->cap)
		return false;
	push_tail(s, TL_W, id, bytes);
	s->resident++;
	while (s->l[TL_W].bytes > s->win_cap)
		tl_window_evict(s);
	return false;
}

/* ---- the interface ---------------------------------------------------- */

struct hr_sim *
hr_sim_new(enum hr_policy p, uint64_t capacity, uint32_t nkeys)
{
	struct hr_sim *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->p = p;
	s->cap = capacity;
	s->prev = malloc((size_t)nkeys * sizeof(uint32_t));
	s->next = malloc((size_t)nkeys * sizeof(uint32_t));
	s->size = malloc((size_t)nkeys * sizeof(uint32_t));
	s->where = calloc(nkeys, 1);
	s->freq = calloc(nkeys, 1);
	for (int i = 0; i < 3; i++)
		s->l[i] = (struct list){ NIL, NIL, 0 };
	s->small_cap = capacity / 10;
	s->win_cap = capacity / 100;
	s->prot_cap = (capacity - s->win_cap) * 8 / 10;
	if (p == HR_TINYLFU) {
		/* A row per 128 bytes of capacity, at least 1024. */
		uint64_t w = 1024;

		while (w < capacity / 128)
			w <<= 1;
		s->cm_mask = (uint32_t)(w - 1);
		s->cm = calloc(4 * w, 1);
	}
	if (s->prev == NULL || s->next == NULL || s->size == NULL ||
	    s->where == NULL || s->freq == NULL ||
	    (p == HR_TINYLFU && s->cm == NULL)) {
		hr_sim_free(s);
		return NULL;
	}
	return s;
}

bool
hr_sim_access(struct hr_sim *s, uint32_t id, uint32_t bytes)
{
	switch (s->p) {
	case HR_LRU:
		return lru_access(s, id, bytes);
	case HR_CLOCK:
		return clock_access(s, id, bytes);
	case HR_S3FIFO:
		return s3_access(s, id, bytes);
	case HR_TINYLFU:
		return tl_access(s, id, bytes);
	default:
		return false;
	}
}

void
hr_sim_free(struct hr_sim *s)
{
	if (s == NULL)
		return;
	free(s->prev);
	free(s->next);
	free(s->size);
	free(s->where);
	free(s->freq);
	free(s->cm);
	free(s);
}
