/*
 * The attached processes: who has the arena open, and how many handles.
 *
 * A counter of attaches would be wrong for ever after the first SIGKILL.
 * Instead each process owns an entry (struct mlc__proc) naming it the way
 * src/proc.c proves death: pid, start time, pid namespace.  Opening and
 * closing handles change the counts of the caller's own entry under
 * ah_procs_lock; the entry is freed with its last handle.  A process that
 * dies without closing leaves its entry, which every listing checks
 * against /proc: proven dead, it is left out, and a writable lister frees
 * it.  Nothing here is on a get or set path: entries change at open and
 * close (and a cache handle's first use in a child after fork()).
 */
#include <time.h>

#include <ck_pr.h>

#include "mlc-int.h"

/* Reads of an entry that keep finding it changing before the reader
 * leaves it out of this listing. */
#define READ_TRIES 64
/* How long an open, close or prune waits for ah_procs_lock before it gives
 * up (the process then goes unlisted, or its count stays as it was).  A
 * holder keeps it for microseconds (a prune: a /proc read per entry), so
 * only a corrupt lock word or a stopped holder makes anyone wait this
 * long, and neither can hang mlc_arena_open(). */
#define LOCK_MS 200

static void procs_repair(struct mlc_arena *a, void *ctx);

static int
procs_lock(struct mlc_arena *a)
{
	return mlc__lock_take_for(a, &a->hdr->ah_procs_lock, LOCK_MS,
				  procs_repair, NULL);
}

/* ---- writers: under ah_procs_lock ---------------------------------------- */

/* pr_seq is odd while an entry changes: a lock-free reader that sees it
 * odd, or changed after its copy, reads again. */
static void
entry_begin(struct mlc__proc *p)
{
	ck_pr_store_32(&p->pr_seq, p->pr_seq + 1);
	/* The odd sequence before any field: a reader that copied a changed
	 * field then sees the sequence moved. */
	ck_pr_fence_store();
}

static void
entry_end(struct mlc__proc *p)
{
	/* Every field before the even sequence that vouches for them. */
	ck_pr_fence_store();
	ck_pr_store_32(&p->pr_seq, p->pr_seq + 1);
}

static void
entry_clear(struct mlc__proc *p)
{
	ck_pr_store_32(&p->pr_pid, 0);
	ck_pr_store_32(&p->pr_ns, 0);
	ck_pr_store_64(&p->pr_start, 0);
	ck_pr_store_32(&p->pr_arenas, 0);
	ck_pr_store_32(&p->pr_caches, 0);
	ck_pr_store_32(&p->pr_since, 0);
}

/* A locker died holding the lock: the entry it was changing (odd) is
 * half-written.  It was its own (an open or a close), or a dead process's
 * it was freeing: free it.  (Only a thread that exits holding the lock
 * in a live process would lose that process's entry here.) */
MLC_COLD static void
procs_repair(struct mlc_arena *a, void *ctx)
{
	(void)ctx;
	for (uint32_t i = 0; i < MLC__PROCS; i++) {
		struct mlc__proc *p = &a->hdr->ah_procs[i];

		if (!(p->pr_seq & 1))
			continue;
		entry_clear(p);
		entry_end(p);
	}
}

static bool
is_me(const struct mlc__proc *p, uint32_t pid, uint64_t start, uint32_t ns)
{
	return p->pr_pid == pid && p->pr_start == start && p->pr_ns == ns;
}

/* This process's entry, or NULL. */
static struct mlc__proc *
mine(struct mlc_arena *a)
{
	uint32_t pid = (uint32_t)mlc__pid(), ns = mlc__proc_ns();
	uint64_t start = mlc__proc_start();

	for (uint32_t i = 0; i < MLC__PROCS; i++)
		if (is_me(&a->hdr->ah_procs[i], pid, start, ns))
			return &a->hdr->ah_procs[i];
	return NULL;
}

/* Free every entry of a process proven dead; how many were freed. */
static uint32_t
prune_dead(struct mlc_arena *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < MLC__PROCS; i++) {
		struct mlc__proc *p = &a->hdr->ah_procs[i];

		if (p->pr_pid == 0 ||
		    !mlc__proc_dead(p->pr_pid, p->pr_start, p->pr_ns))
			continue;
		entry_begin(p);
		entry_clear(p);
		entry_end(p);
		n++;
	}
	if (n)
		ck_pr_add_64(&a->hdr->ah_procs_pruned, n);
	return n;
}

/* Count @p arenas and @p caches more handles in this process's entry @p p
 * (under the lock), in one change. */
static void
entry_count(struct mlc__proc *p, uint32_t arenas, uint32_t caches)
{
	if (arenas + caches == 0)
		return;
	entry_begin(p);
	ck_pr_store_32(&p->pr_arenas, p->pr_arenas + arenas);
	ck_pr_store_32(&p->pr_caches, p->pr_caches + caches);
	entry_end(p);
}

/* This process's entry, made if need be, with @p arenas and @p caches
 * more handles counted in it, in the same change: an entry is never seen
 * with a process and no handle (until 2026-12-06 the first count was a
 * second change, and a process stopped or killed between the two left an
 * entry that mlc_arena_check() reported as damage, for as long as nobody
 * pruned it: a review found it).  NULL when the table is full of processes
 * not proven dead. */
static struct mlc__proc *
claim(struct mlc_arena *a, uint32_t arenas, uint32_t caches)
{
	struct mlc__proc *p = mine(a);
	struct timespec now;

	if (p != NULL) {
		entry_count(p, arenas, caches);
		return p;
	}
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < MLC__PROCS && p == NULL; i++)
			if (a->hdr->ah_procs[i].pr_pid == 0)
				p = &a->hdr->ah_procs[i];
		if (p != NULL || prune_dead(a) == 0)
			break;
	}
	if (p == NULL) {
		ck_pr_inc_64(&a->hdr->ah_procs_full);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	/* The counter of the entry's last process (proven dead, or freed
	 * in a repair; readers skip free entries) starts again. */
	ck_pr_store_32(&a->hdr->ah_claiming[p - a->hdr->ah_procs], 0);
	entry_begin(p);
	ck_pr_store_32(&p->pr_ns, mlc__proc_ns());
	ck_pr_store_64(&p->pr_start, mlc__proc_start());
	ck_pr_store_32(&p->pr_since, (uint32_t)now.tv_sec);
	ck_pr_store_32(&p->pr_arenas, arenas);
	ck_pr_store_32(&p->pr_caches, caches);
	ck_pr_store_32(&p->pr_pid, (uint32_t)mlc__pid());
	entry_end(p);
	return p;
}

/* Count the arena handle @p a in this process if it is not yet (under the
 * lock), and @p caches cache handles, claiming the process's entry.  False
 * if it cannot be (the table is full).  A handle its user closed (a fork
 * child's cache handles keep it) is not counted: nobody will close it
 * again. */
static bool
count_arena(struct mlc_arena *a, uint64_t gen, uint32_t caches)
{
	struct mlc__proc *p;

	if (a->procs_gen == gen) {
		if (caches == 0)
			return true;
		if ((p = mine(a)) == NULL)
			return false;	/* not counted, as before the entry */
		entry_count(p, 0, caches);
		return true;
	}
	if ((p = claim(a, !a->closed, caches)) == NULL)
		return false;
	/* Private memory, shared by this process's threads: written under
	 * the lock, and read under it too (below and in close); procs_slot
	 * is also read lock-free by flight claims. */
	a->procs_gen = gen;
	__atomic_store_n(&a->procs_slot,
			 gen << 8 | (uint64_t)(p - a->hdr->ah_procs + 1),
			 __ATOMIC_RELEASE);
	return true;
}

void
mlc__procs_open(struct mlc_arena *a, uint64_t *cache_gen)
{
	uint64_t gen = mlc__fork_gen();

	if (cache_gen != NULL)
		*cache_gen = UINT64_MAX;
	if (a->flags & MLC_ARENA_RDONLY)
		return;		/* the mapping cannot be written */
	if (procs_lock(a) == 0) {
		if (count_arena(a, gen, cache_gen != NULL) &&
		    cache_gen != NULL)
			*cache_gen = gen;
		mlc__lock_give(&a->hdr->ah_procs_lock);
	}
	/* A cache handle counted nowhere does not keep this process's
	 * entry: one made later for another handle is freed when that
	 * handle closes, while this one goes on.  A claim it had in progress
	 * then would count in a free entry's counter, which waiters ignore
	 * (and a new owner of the entry resets): a stopped claimer would be
	 * taken for a dead one (test_uncounted_handle_claims).  From now on
	 * this process claims through the unlisted counter. */
	if (cache_gen != NULL && *cache_gen != gen)
		__atomic_store_n(&a->uncounted_gen, gen + 1, __ATOMIC_RELEASE);
}

void
mlc__procs_close(struct mlc_arena *a, uint64_t *cache_gen)
{
	uint64_t gen = mlc__fork_gen();
	struct mlc__proc *p;
	bool cleared = false;

	if (a->flags & MLC_ARENA_RDONLY)
		return;
	/* A handle counted in another process (before fork()) or never: */
	if (cache_gen != NULL && *cache_gen != gen)
		return;
	if (procs_lock(a) < 0)
		return;
	if (cache_gen == NULL && a->procs_gen != gen)
		goto out;
	p = mine(a);
	if (p != NULL) {
		entry_begin(p);
		if (cache_gen != NULL && p->pr_caches > 0)
			ck_pr_store_32(&p->pr_caches, p->pr_caches - 1);
		else if (cache_gen == NULL && p->pr_arenas > 0)
			ck_pr_store_32(&p->pr_arenas, p->pr_arenas - 1);
		if (p->pr_arenas == 0 && p->pr_caches == 0) {
			entry_clear(p);		/* its last handle */
			cleared = true;
		}
		entry_end(p);
	}
	if (cache_gen != NULL)
		*cache_gen = UINT64_MAX;
	else
		a->procs_gen = UINT64_MAX;
	/* Flight claims count in the entry as long as it lives: a cache
	 * handle may outlive its arena handle. */
	if (p == NULL || cleared)
		__atomic_store_n(&a->procs_slot, 0, __ATOMIC_RELEASE);
out:
	mlc__lock_give(&a->hdr->ah_procs_lock);
}

/* ---- readers: lock-free ---------------------------------------------- */

/* A consistent copy of entry @p p, false if it kept changing. */
static bool
entry_read(struct mlc__proc *p, struct mlc__proc *out)
{
	for (int tries = 0; tries < READ_TRIES; tries++) {
		uint32_t seq = ck_pr_load_32(&p->pr_seq);

		if (seq & 1) {
			ck_pr_stall();
			continue;
		}
		ck_pr_fence_load();	/* fields after the sequence */
		out->pr_pid = ck_pr_load_32(&p->pr_pid);
		out->pr_ns = ck_pr_load_32(&p->pr_ns);
		out->pr_start = ck_pr_load_64(&p->pr_start);
		out->pr_arenas = ck_pr_load_32(&p->pr_arenas);
		out->pr_caches = ck_pr_load_32(&p->pr_caches);
		out->pr_since = ck_pr_load_32(&p->pr_since);
		ck_pr_fence_load();	/* ... and before its re-read */
		if (ck_pr_load_32(&p->pr_seq) == seq) {
			out->pr_seq = seq;
			return true;
		}
	}
	return false;
}

/* ---- flight claims in their window --------------------------------------- */

/*
 * A flight's claimer (or thief) wins the slot with one CAS, then publishes
 * who it is.  A waiter that finds the slot won but not published cannot
 * tell a claimer stopped between the two steps from one that died there.
 * So the claimer counts itself in this process's counter before its CAS
 * and out after its publication: a waiter takes an unpublished flight over
 * only if no counter that is not 0 belongs to a process that may be alive
 * (flight.c: steal()).  Dead processes' counters are ignored, and reset
 * when their entries are taken again (claim()).
 */
uint32_t *
mlc__procs_claiming_word(struct mlc_arena *a)
{
	uint64_t s = __atomic_load_n(&a->procs_slot, __ATOMIC_ACQUIRE);
	uint64_t idx = s & 0xff, gen = mlc__fork_gen();

	if (__atomic_load_n(&a->uncounted_gen, __ATOMIC_ACQUIRE) == gen + 1)
		return &a->hdr->ah_claiming_unlisted;
	if (idx != 0 && idx <= MLC__PROCS &&
	    s >> 8 == (gen & (UINT64_MAX >> 8)))
		return &a->hdr->ah_claiming[idx - 1];
	return &a->hdr->ah_claiming_unlisted;
}

bool
mlc__procs_claiming(struct mlc_arena *a)
{
	/* A process without an entry cannot be judged: a claim it has in
	 * progress may be alive. */
	if (ck_pr_load_32(&a->hdr->ah_claiming_unlisted) != 0)
		return true;
	for (uint32_t i = 0; i < MLC__PROCS; i++) {
		struct mlc__proc e;

		if (ck_pr_load_32(&a->hdr->ah_claiming[i]) == 0)
			continue;
		if (!entry_read(&a->hdr->ah_procs[i], &e))
			return true;	/* changing: cannot tell */
		/* A free entry: its process closed its last handle (then it
		 * claims nothing) or was proven dead and pruned. */
		if (e.pr_pid == 0)
			continue;
		if (!mlc__proc_dead(e.pr_pid, e.pr_start, e.pr_ns))
			return true;
	}
	return false;
}

/* The processes listed now, into @p out (MLC__PROCS of them); the count.
 * Proven dead ones are left out, and freed if the handle is writable. */
static uint32_t
procs_list(struct mlc_arena *a, struct mlc_proc_info *out)
{
	uint32_t pid = (uint32_t)mlc__pid(), ns = mlc__proc_ns(), n = 0;
	uint64_t start = mlc__proc_start();
	bool stale = false;

	for (uint32_t i = 0; i < MLC__PROCS; i++) {
		struct mlc__proc e;

		if (!entry_read(&a->hdr->ah_procs[i], &e)) {
			stale = true;	/* maybe a dead locker's: repair */
			continue;
		}
		if (e.pr_pid == 0)
			continue;
		if (mlc__proc_dead(e.pr_pid, e.pr_start, e.pr_ns)) {
			stale = true;
			continue;
		}
		memset(&out[n], 0, sizeof(out[n]));
		out[n].size = sizeof(out[n]);
		out[n].pid = e.pr_pid;
		out[n].pid_ns = e.pr_ns;
		out[n].start_ticks = e.pr_start;
		out[n].attached_ms = (uint64_t)e.pr_since * 1000;
		out[n].arena_handles = e.pr_arenas;
		out[n].cache_handles = e.pr_caches;
		if (is_me(&e, pid, start, ns))
			out[n].flags |= MLC_PROC_SELF;
		if (e.pr_ns == 0 || ns == 0 || e.pr_ns != ns ||
		    e.pr_start == 0 || start == 0)
			out[n].flags |= MLC_PROC_UNCHECKED;
		n++;
	}
	/* Rare (a process died without closing): free what is proven. */
	if (stale && !(a->flags & MLC_ARENA_RDONLY) &&
	    procs_lock(a) == 0) {
		prune_dead(a);
		mlc__lock_give(&a->hdr->ah_procs_lock);
	}
	return n;
}

void
mlc__procs_count(struct mlc_arena *a, struct mlc_arena_info *in)
{
	struct mlc_proc_info list[MLC__PROCS];
	uint32_t n = procs_list(a, list);

	in->procs = n;
	for (uint32_t i = 0; i < n; i++) {
		in->arena_handles += list[i].arena_handles;
		in->cache_handles += list[i].cache_handles;
	}
	in->procs_unlisted = ck_pr_load_64(&a->hdr->ah_procs_full);
	in->procs_pruned = ck_pr_load_64(&a->hdr->ah_procs_pruned);
}

MLC_EXPORT int
mlc_arena_procs(struct mlc_arena *a, mlc_proc_fn *fn, void *arg)
{
	struct mlc_proc_info list[MLC__PROCS];
	uint32_t n;

	if (a == NULL || fn == NULL)
		return -EINVAL;
	if (!mlc__arena_whole(a))	/* the table may be past its end */
		return MLC_ECORRUPT;
	n = procs_list(a, list);
	for (uint32_t i = 0; i < n; i++) {
		int rc = fn(arg, &list[i]);

		if (rc != 0)
			return rc;
	}
	return 0;
}
