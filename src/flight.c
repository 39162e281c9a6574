/*
 * Single flight: one loader per key across every process, the others
 * blocked on a shared futex until it is done.
 *
 * A slot is claimed by a CAS of its fs_hash from 0 to the key's hash (never
 * 0), so "who loads this key" is decided by one word.  The owner then
 * records its token (pid, tid, process start time), its lease deadline and
 * a new generation.  Waiters remember the generation, count themselves in
 * fs_waiters and sleep on the slot's ck_ec32 event word with a *shared*
 * futex (private futexes do not wake other processes).  The owner writes
 * L2 first, then frees the slot (generation + 1, fs_hash = 0) and bumps the
 * event count, which wakes every waiter at once; they read the result from
 * L2, or from the outcome record the owner left when there was nothing to
 * store (an error, or a value it was told not to cache).
 *
 * Waiters wake every SLICE_MS to check the owner: past its lease, or dead
 * (its pid gone, or reused: the start time differs), the slot is stolen by
 * a CAS on fs_owner and its generation bumped, which fences the old owner
 * out: it may not release the slot, nor store what it loaded.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_ec.h>
#include <ck_pr.h>

#include "flight.h"

#define SLICE_MS 20		/* how often a waiter checks the owner */
#define CLAIM_GRACE_MS 1000	/* a claim without an owner token this long
				 * was abandoned by a dying claimer */
#define OWNER_RELEASING UINT64_MAX	/* fs_owner while being released */

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

/* ---- owner tokens ------------------------------------------------------ */

/* This process's start time (clock ticks), read once per thread and per
 * fork: per thread, so that no thread ever reads another's half-written
 * cache, and a child never publishes its parent's. */
static __thread uint64_t proc_start;
static __thread uint64_t proc_start_gen = UINT64_MAX;

/* Field 22 of /proc/<pid>/stat: the start time, which tells a reused pid
 * apart.  0 if it cannot be read; *state gets the process state letter. */
static uint64_t
start_time_of(long pid, char *state)
{
	char path[64], buf[1024], *p;
	uint64_t start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	*state = '?';
	if (fd < 0) {
		if (errno == ENOENT)
			*state = 'X';	/* gone */
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	if (p == NULL || p[1] != ' ')
		return 0;
	*state = p[2];
	/* After ") ": field 3 is the state; the start time is field 22. */
	p += 2;
	for (int field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p != NULL)
		start = strtoull(p, NULL, 10);
	return start;
}

static uint64_t
my_start(void)
{
	uint64_t gen = mlc__fork_gen();
	char st;

	if (proc_start_gen != gen) {
		proc_start = start_time_of((long)mlc__pid(), &st);
		proc_start_gen = gen;
	}
	return proc_start;
}

static uint64_t
my_token(void)
{
	return (uint64_t)(uint32_t)mlc__pid() << 32 | (uint32_t)mlc__tid();
}

/* Is the owner certainly dead?  "Cannot tell" (no procfs, another pid
 * namespace) never counts: then only the lease frees the slot. */
static bool
owner_dead(uint64_t token, uint64_t start)
{
	char state;
	uint64_t now_start;

	if (token == 0)
		return false;
	now_start = start_time_of((long)(token >> 32), &state);
	if (state == 'X' || state == 'Z')
		return true;
	return now_start != 0 && start != 0 && now_start != start;
}

/* ---- slots ------------------------------------------------------------- */

static struct mlc__flight_slot *
slot_of(struct mlc_arena *a, uint32_t i)
{
	return &a->flights[i & (a->flight_slots - 1)];
}

static uint64_t
hash_word(uint64_t hash)
{
	return hash | 1;	/* 0 means a free slot */
}

/* Two candidate slots per key, as in the index. */
static void
slot_candidates(const struct mlc_arena *a, uint64_t hash, uint32_t c[2])
{
	uint32_t mask = a->flight_slots - 1;

	c[0] = (uint32_t)hash & mask;
	c[1] = (uint32_t)(hash >> 32) & mask;
}

static void
become_owner(struct mlc_arena *a, struct mlc__fl *f, uint32_t idx,
	     uint32_t lease_ms)
{
	struct mlc__flight_slot *sl = slot_of(a, idx);

	f->slot = idx + 1;
	f->token = my_token();
	ck_pr_store_64(&sl->fs_owner_start, my_start());
	ck_pr_store_64(&sl->fs_deadline, mlc__now_ms() + lease_ms);
	/* The generation last: it is what fences a previous owner out, and
	 * what waiters compare to learn that a flight ended. */
	ck_pr_fence_store();
	f->gen = ck_pr_faa_32(&sl->fs_gen, 1) + 1;
	ck_pr_store_64(&sl->fs_owner, f->token);
	f->role = MLC_FLIGHT_LOADER;
}

static void
join(struct mlc_arena *a, struct mlc__fl *f, uint32_t idx)
{
	struct mlc__flight_slot *sl = slot_of(a, idx);

	f->slot = idx + 1;
	f->gen = ck_pr_load_32(&sl->fs_gen);
	f->role = MLC_FLIGHT_WAITER;
	f->joined = f->checked = mlc__now_ms();
	ck_pr_inc_32(&sl->fs_waiters);
}

/* Join the key's flight if one of its two slots has it, else claim a free
 * one.  The first slot wins ties: a caller that claimed the second gives
 * way if the first turns out to hold the key too. */
int
mlc__flight_acquire(struct mlc_arena *a, uint64_t hash, uint32_t lease_ms,
		    struct mlc__fl *f)
{
	uint64_t hw = hash_word(hash);
	uint32_t c[2];

	memset(f, 0, sizeof(*f));
	f->hash = hw;
	slot_candidates(a, hash, c);
	for (int i = 0; i < 2; i++) {
		if (ck_pr_load_64(&slot_of(a, c[i])->fs_hash) == hw) {
			join(a, f, c[i]);
			return 0;
		}
	}
	for (int i = 0; i < 2; i++) {
		struct mlc__flight_slot *sl = slot_of(a, c[i]);
		uint64_t cur = 0;

		if (!ck_pr_cas_64_value(&sl->fs_hash, 0, hw, &cur)) {
			if (cur == hw) {	/* lost the race to a twin */
				join(a, f, c[i]);
				return 0;
			}
			continue;
		}
		if (i == 1 && c[0] != c[1] &&
		    ck_pr_load_64(&slot_of(a, c[0])->fs_hash) == hw) {
			ck_pr_store_64(&sl->fs_hash, 0);
			join(a, f, c[0]);
			return 0;
		}
		become_owner(a, f, c[i], lease_ms);
		return 0;
	}
	/* Both slots busy with other keys: load without single flight. */
	f->role = MLC_FLIGHT_LOADER;
	f->slot = 0;
	return -EBUSY;
}

bool
mlc__flight_mine(struct mlc_arena *a, const struct mlc__fl *f)
{
	struct mlc__flight_slot *sl;

	if (f->slot == 0)
		return true;		/* not in the table: nothing to fence */
	sl = slot_of(a, f->slot - 1);
	return ck_pr_load_64(&sl->fs_owner) == f->token &&
	       ck_pr_load_32(&sl->fs_gen) == f->gen &&
	       ck_pr_load_64(&sl->fs_hash) == f->hash;
}

/* End the flight: every waiter wakes and finds the result in L2 or in the
 * outcome record.  A fenced-out owner leaves the slot to its thief. */
void
mlc__flight_release(struct mlc_arena *a, struct mlc__fl *f)
{
	struct mlc__flight_slot *sl;

	if (f->slot == 0 || f->role != MLC_FLIGHT_LOADER)
		goto out;
	sl = slot_of(a, f->slot - 1);
	/* RELEASING, not 0: a waiter must not mistake the slot for one
	 * claimed and not yet owned, and a thief's CAS must fail. */
	if (!ck_pr_cas_64(&sl->fs_owner, f->token, OWNER_RELEASING))
		goto out;		/* stolen: not ours to release */
	/* The generation first: every waiter that sees anything below
	 * knows its flight ended. */
	ck_pr_inc_32(&sl->fs_gen);
	ck_pr_fence_store();
	ck_pr_store_64(&sl->fs_owner, 0);
	/* Result (L2 or outcome record), generation and owner before the
	 * slot is free: the next claimer writes its own owner after this. */
	ck_pr_fence_store();
	ck_pr_store_64(&sl->fs_hash, 0);
	ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec, &ec_mode);
out:
	f->role = MLC_FLIGHT_NONE;
	f->slot = 0;
}

/* Take a flight over from an owner that died or overran its lease. */
static bool
steal(struct mlc_arena *a, struct mlc__fl *f, uint32_t lease_ms,
      uint64_t *steals)
{
	struct mlc__flight_slot *sl = slot_of(a, f->slot - 1);
	uint64_t owner = ck_pr_load_64(&sl->fs_owner);
	uint64_t start = ck_pr_load_64(&sl->fs_owner_start);
	uint64_t now = mlc__now_ms();
	bool expired = now > ck_pr_load_64(&sl->fs_deadline);

	if (ck_pr_load_64(&sl->fs_hash) != f->hash ||
	    ck_pr_load_32(&sl->fs_gen) != f->gen)
		return false;
	if (owner == OWNER_RELEASING)
		return false;
	if (owner == 0) {
		/* Claimed, token not written yet: a claimer that died
		 * between the two stores leaves this forever. */
		if (now - f->joined < CLAIM_GRACE_MS)
			return false;
	} else if (!expired) {
		/* Probing the owner reads /proc: at most once a slice, not
		 * on every wake-up or poll. */
		if (now - f->checked < SLICE_MS)
			return false;
		f->checked = now;
		if (!owner_dead(owner, start))
			return false;
	}
	if (!ck_pr_cas_64(&sl->fs_owner, owner, my_token()))
		return false;
	ck_pr_dec_32(&sl->fs_waiters);
	become_owner(a, f, f->slot - 1, lease_ms);
	(*steals)++;
	/* Wake the others: they must follow the new generation. */
	ck_ec32_inc((struct ck_ec32 *)&sl->fs_ec, &ec_mode);
	return true;
}

int
mlc__flight_wait(struct mlc_arena *a, struct mlc__fl *f, uint64_t until_ms,
		 uint32_t lease_ms, uint64_t *steals)
{
	struct mlc__flight_slot *sl = slot_of(a, f->slot - 1);

	for (;;) {
		uint32_t ev = ck_ec32_value((struct ck_ec32 *)&sl->fs_ec);
		uint64_t now = mlc__now_ms();
		struct timespec dl;
		uint64_t slice;

		if (ck_pr_load_64(&sl->fs_hash) != f->hash ||
		    ck_pr_load_32(&sl->fs_gen) != f->gen) {
			ck_pr_dec_32(&sl->fs_waiters);
			f->role = MLC_FLIGHT_NONE;
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
		ck_pr_dec_32(&slot_of(a, f->slot - 1)->fs_waiters);
	f->role = MLC_FLIGHT_NONE;
	f->slot = 0;
}
