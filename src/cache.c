/*
 * Cache handles: options, counters, open and close, errors.
 *
 * A handle is one namespace seen by one thread: its L1, its cursor in the
 * invalidation log, its counters.  mlc_get() checks the log head (one
 * load), then L1, then L2, then runs the loader under single flight: see
 * get.c, load.c, and cache.h for what the files of a handle share.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cache.h"

#define DEFAULT_LRU 1024
#define DEFAULT_TTL 30000
#define DEFAULT_LOCK_TIMEOUT 5000
#define DEFAULT_LEASE 30000

#define NCOUNTERS ((sizeof(struct mlc_stats) - sizeof(size_t)) / 8)
_Static_assert(NCOUNTERS <= MLC__NS_COUNTERS, "namespace counters");

/* ---- options -------------------------------------------------------- */

static int
cache_options_check(struct mlc_cache_options *o)
{
	if (o->flags & ~(uint32_t)(MLC_CACHE_MANUAL_UPDATE | MLC_CACHE_NO_L1))
		return -EINVAL;
	if (!ttl_ok(o->ttl_ms) || !ttl_ok(o->neg_ttl_ms) ||
	    o->resurrect_ttl_ms < 0 || o->err_ttl_ms < 0)
		return -EINVAL;
	if (o->lock_policy > MLC_LOCK_STALE)
		return -EINVAL;
	if (o->codec != NULL && o->codec->decode == NULL)
		return -EINVAL;
	if (o->lru_size == 0)
		o->lru_size = DEFAULT_LRU;
	if (o->lru_size > (UINT32_C(1) << 28))
		return -EINVAL;
	if (o->ttl_ms == 0)
		o->ttl_ms = DEFAULT_TTL;
	if (o->neg_ttl_ms == 0)
		o->neg_ttl_ms = o->ttl_ms;
	if (o->lock_timeout_ms == 0)
		o->lock_timeout_ms = DEFAULT_LOCK_TIMEOUT;
	if (o->lock_lease_ms == 0)
		o->lock_lease_ms = DEFAULT_LEASE;
	if (o->lock_policy == MLC_LOCK_DEFAULT)
		o->lock_policy = MLC_LOCK_STALE;
	return 0;
}

/* Resolve and validate the options of one call, on every path (an L1 hit
 * too): a bad option is an error whether or not it would have mattered. */
int
mlc__call_resolve(const struct mlc_cache *c, const struct mlc_call_options *co,
		  struct call *cf)
{
	struct mlc_call_options o;
	int rc;

	cf->flags = 0;
	cf->lock_policy = c->o.lock_policy;
	cf->ttl = c->o.ttl_ms;
	cf->neg_ttl = c->o.neg_ttl_ms;
	cf->resurrect_ttl = c->o.resurrect_ttl_ms;
	cf->lock_timeout = c->o.lock_timeout_ms;
	if (co == NULL)
		return 0;
	rc = mlc__options_copy(&o, sizeof(o), MLC__CALL_OPTIONS_V0, co);
	if (rc < 0)
		return rc;
	if (o.flags & ~(uint32_t)(MLC_CALL_STALE_OK | MLC_CALL_SWR |
				  MLC_CALL_NEGATIVE) ||
	    o.lock_policy > MLC_LOCK_STALE || !ttl_ok(o.ttl_ms) ||
	    !ttl_ok(o.neg_ttl_ms) || o.resurrect_ttl_ms < 0 || o.pad0 != 0)
		return -EINVAL;
	cf->flags = o.flags;
	if (o.lock_policy)
		cf->lock_policy = o.lock_policy;
	if (o.ttl_ms)
		cf->ttl = o.ttl_ms;
	if (o.neg_ttl_ms)
		cf->neg_ttl = o.neg_ttl_ms;
	if (o.resurrect_ttl_ms)
		cf->resurrect_ttl = o.resurrect_ttl_ms;
	if (o.lock_timeout_ms)
		cf->lock_timeout = o.lock_timeout_ms;
	return 0;
}

/* ---- counters --------------------------------------------------------- */

static uint64_t *
counters(struct mlc_stats *st)
{
	return (uint64_t *)(void *)((char *)st + sizeof(size_t));
}

static void
stats_sync(struct mlc_cache *c)
{
	c->st.log_applied = c->log.applied;
	c->st.log_dropped = c->log.dropped;
	c->st.log_overruns = c->log.overruns;
	c->st.log_stuck = c->log.stuck;
}

/* A handle inherited by fork(): what it counted before is the parent's
 * to flush (the parent flushes it too), not the child's. */
static void
stats_inherited(struct mlc_cache *c)
{
	stats_sync(c);
	memcpy(counters(&c->flushed), counters(&c->st),
	       NCOUNTERS * sizeof(uint64_t));
}

/* Add what the handle counted since the last flush to its namespace's
 * shared counters: an atomic add per counter that moved, at most once a
 * second or every FLUSH_EVERY calls (see cache.h). */
void
mlc__stats_flush(struct mlc_cache *c, uint64_t at)
{
	uint64_t *now, *then, *shared;

	stats_sync(c);
	now = counters(&c->st);
	then = counters(&c->flushed);
	shared = c->a->nsstats[c->ns_idx].nt_count;
	for (size_t i = 0; i < NCOUNTERS; i++) {
		if (now[i] != then[i])
			ck_pr_add_64(&shared[i], now[i] - then[i]);
		then[i] = now[i];
	}
	c->flush_in = FLUSH_CHECK;
	c->unflushed = 0;
	c->flush_at = at + FLUSH_MS;
	/* Once a second at most, the repair of what a killed page mover
	 * left where no allocation would come by (alloc.c).  Its locks,
	 * which live in the arena, only by a handle that stored something
	 * since: a reader takes none (a garbage lock word can make glibc
	 * abort: docs/reliability.md, bug 3; a reader's flush took them
	 * until review AA). */
	if (at >= c->heal_at) {
		c->heal_at = at + FLUSH_MS;
		mlc__alloc_heal(c->a, c->wrote);
		c->wrote = false;
	}
}

/* Every FLUSH_CHECK-th call: a clock read, and a flush if one is due.
 * Out of line, so that the calls in between pay a decrement only. */
__attribute__((noinline)) void
mlc__stats_tick(struct mlc_cache *c)
{
	c->unflushed += FLUSH_CHECK;
	if (c->unflushed >= FLUSH_EVERY)
		mlc__stats_flush(c, mlc__now_ms());
	else
		stats_due(c, mlc__now_ms());
	if (c->flush_in == 0)
		c->flush_in = FLUSH_CHECK;	/* not due: look again later */
}

MLC_EXPORT int
mlc_stats(struct mlc_cache *c, struct mlc_stats *stats)
{
	/* The handle check: a first use in a fork child starts from what
	 * the handle had counted (mlc__handle_forked()). */
	if (mlc__handle_check(c) < 0)
		return -EINVAL;
	if (stats == NULL || stats->size < sizeof(size_t) + 8)
		return mlc__set_err(c, -EINVAL);
	mlc__stats_flush(c, mlc__now_ms());
	mlc__out_copy(stats, &c->st, sizeof(c->st));
	return 0;
}

MLC_EXPORT int
mlc_namespace_stats(struct mlc_arena *a, const char *ns,
		    struct mlc_stats *stats)
{
	struct mlc_stats sum;
	uint32_t idx;
	int rc;

	if (a == NULL || ns == NULL || stats == NULL ||
	    stats->size < sizeof(size_t) + 8)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	if ((rc = mlc__ns_find(a, ns, &idx)) < 0)
		return rc;
	memset(&sum, 0, sizeof(sum));
	sum.size = sizeof(sum);
	for (size_t i = 0; i < NCOUNTERS; i++)
		counters(&sum)[i] = ck_pr_load_64(&a->nsstats[idx].nt_count[i]);
	mlc__out_copy(stats, &sum, sizeof(sum));
	return 0;
}

/* ---- handles --------------------------------------------------------- */

MLC_EXPORT int
mlc_cache_open(struct mlc_cache **cachep, struct mlc_arena *arena,
	       const char *ns, const struct mlc_cache_options *opts)
{
	struct mlc_cache *c;
	int rc;

	if (cachep == NULL || arena == NULL || ns == NULL)
		return -EINVAL;
	if (arena->flags & MLC_ARENA_RDONLY)
		return -EPERM;		/* every cache writes: CLOCK bits, log */
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = mlc__options_copy(&c->o, sizeof(c->o), MLC__CACHE_OPTIONS_V0,
			       opts);
	if (rc < 0 || (rc = cache_options_check(&c->o)) < 0)
		goto fail;
	if (c->o.codec != NULL) {
		c->codec = *c->o.codec;		/* the caller's may go */
		c->has_codec = true;
		c->o.codec = NULL;
	}
	rc = mlc__ns_open(arena, ns, &c->ns_idx);
	if (rc < 0)
		goto fail;
	rc = mlc__l1_init(&c->l1, c->o.lru_size, c->o.lru_bytes);
	if (rc < 0)
		goto fail;
	c->a = arena;
	c->ns = &arena->ns[c->ns_idx];
	c->ns_len = (uint8_t)strlen(ns);	/* checked by mlc__ns_open() */
	memcpy(c->ns_name, ns, c->ns_len);
	c->fork_gen = mlc__fork_gen();
	c->st.size = sizeof(c->st);
	c->flushed.size = sizeof(c->flushed);
	c->flush_in = FLUSH_CHECK;
	c->flush_at = mlc__now_ms() + FLUSH_MS;
	/* A new handle has seen nothing, so it owes nothing to the log. */
	c->log.l1 = &c->l1;
	c->log.ns = c->ns_idx;
	c->log.cursor = mlc__log_start(arena);
	c->log_head = &arena->log->lg_head;
	c->auto_update = !(c->o.flags & MLC_CACHE_MANUAL_UPDATE);
	mlc__arena_ref(arena);
	mlc__procs_open(arena, &c->procs_gen);
	*cachep = c;
	return 0;
fail:
	free(c);
	return rc;
}

MLC_EXPORT int
mlc_cache_close(struct mlc_cache *c)
{
	if (c == NULL)
		return -EINVAL;
	if (c->fork_gen != mlc__fork_gen()) {
		stats_inherited(c);	/* never used in this child */
		mlc__l1_forget(&c->l1);	/* as mlc__handle_forked() */
	}
	/* A file truncated under the mapping (docs/reliability.md): the
	 * counters and the process table may be past its end, and touching
	 * them raises SIGBUS.  A handle can still be let go of. */
	if (mlc__arena_whole(c->a)) {
		mlc__stats_flush(c, mlc__now_ms());
		mlc__procs_close(c->a, &c->procs_gen);
	}
	mlc__l1_fini(&c->l1);
	mlc__arena_unref(c->a);
	free(c);
	return 0;
}

int
mlc__set_err(struct mlc_cache *c, int rc)
{
	snprintf(c->err, sizeof(c->err), "%s", mlc_strerror(rc));
	return rc;
}

MLC_EXPORT const char *
mlc_last_error(struct mlc_cache *c)
{
	if (c == NULL)
		return "invalid argument";
	return c->err[0] ? c->err : "no error";
}

/* In a child after fork() the L1 is a copy of the parent's at fork time,
 * which a thread of the parent may have been changing: empty it, and go
 * on reading the log from the parent's cursor (below).
 * The handle is the child's now: it (and its arena handle) count among
 * the child's handles in the table of attached processes. */
MLC_COLD void
mlc__handle_forked(struct mlc_cache *c)
{
	stats_inherited(c);
	mlc__l1_forget(&c->l1);
	/* The child goes on reading from its parent's cursor, not from the
	 * log's last lap (mlc__log_start()): a cache layered over the handle
	 * holds what the parent had reported, and the records after it are
	 * what it must still hear of, whichever call comes first here (a
	 * lapped cursor is given up on by the next apply, which then says
	 * MLC_UPDATE_ALL).  Until 2026-12-06 a child started at the last
	 * lap, and one whose first call was not a report skipped the records
	 * between: a layered cache kept its copies of keys changed since. */
	mlc__log_resume(&c->log);
	/* A parent thread inside mlc_update_ex() or mlc_update_records() on
	 * this handle left its report array here: on a stack that is no
	 * thread's in the child (glibc gives it to the child's next thread),
	 * which the records applied next would fill instead of the caller's
	 * (test-log test_fork_while_reporting). */
	c->log.out = NULL;
	c->log.out_rec = NULL;
	c->log.out_cap = 0;
	c->log.out_n = 0;
	c->log.out_all = false;
	c->log.moves++;
	c->fork_gen = mlc__fork_gen();
	c->st.forks++;
	mlc__procs_open(c->a, &c->procs_gen);
}

MLC_EXPORT uint64_t
mlc_key_hash(struct mlc_cache *c, const void *key, size_t key_len)
{
	struct mlc__key k;

	if (c == NULL || key == NULL || key_len == 0 || key_len > MLC_KEY_MAX)
		return 0;
	key_make(c, key, key_len, &k);
	return k.hash;
}

MLC_EXPORT int
mlc_update_records(struct mlc_cache *c, struct mlc_update_record *recs,
		   size_t cap, size_t *n, uint32_t *flags)
{
	struct mlc_update_record none;
	uint64_t forks;
	uint32_t budget;

	if (c == NULL || n == NULL || flags == NULL ||
	    (recs == NULL && cap != 0))
		return mlc__refuse(c);
	forks = c->st.forks;
	mlc__handle_check(c);
	c->log.out_rec = recs != NULL ? recs : &none;	/* cap 0: any is ALL */
	c->log.out_cap = cap;
	c->log.out_n = 0;
	c->log.out_all = c->st.forks != forks;	/* a new child: start over */
	/* At most cap records, so that they all fit: the rest stay for the
	 * next call rather than costing the caller its whole cache. */
	budget = c->o.update_budget;
	if (cap != 0 && (budget == 0 || cap < budget))
		budget = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	mlc__log_apply(c->a, &c->log, budget);
	*n = c->log.out_n;
	*flags = c->log.out_all ? MLC_UPDATE_ALL : 0;
	c->log.out_rec = NULL;
	c->log.out_all = false;
	return 0;
}

/* The two words a layered cache compares before each lookup: while they
 * are equal, no record is pending for this handle.  The head is shared and
 * only grows; the cursor is private and only mlc_update*() moves it on a
 * MLC_CACHE_MANUAL_UPDATE handle. */
MLC_EXPORT int
mlc_update_watch(struct mlc_cache *c, const volatile uint64_t **head,
		 const uint64_t **cursor)
{
	if (c == NULL || head == NULL || cursor == NULL)
		return mlc__refuse(c);
	*head = &c->a->log->lg_head;
	*cursor = &c->log.cursor;
	return 0;
}
