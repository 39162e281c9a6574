/*
 * What the files of a cache handle share: cache.c (the handle), get.c (the
 * get path), write.c (the writes), load.c (the loader and single flight)
 * and bulk.c (many keys, read-modify-write, refresh).  The helpers of the
 * L1 hit path are inline here, so that an L1 hit makes no call from one
 * file into another.
 */
#ifndef MLC_CACHE_H
#define MLC_CACHE_H

#include <ck_pr.h>

#include "flight.h"
#include "hash.h"
#include "l1.h"
#include "log.h"
#include "mlc-int.h"

#define ACQUIRE_ROUNDS 4

struct mlc_cache {
	struct mlc_arena *a;
	struct mlc__ns *ns;
	uint32_t ns_idx;
	uint64_t fork_gen;
	struct mlc_cache_options o;
	struct mlc_codec codec;
	bool has_codec;
	struct mlc__l1 l1;
	struct mlc__logr log;
	const uint64_t *log_head;	/* &a->log->lg_head: one load per check */
	bool auto_update;		/* !(o.flags & MLC_CACHE_MANUAL_UPDATE) */
	uint64_t writes;		/* set, delete, purge and modify calls
					 * and loaders' stores made on the
					 * handle (l1_mark()) */
	struct mlc_stats st;
	uint64_t call_loads;		/* loader runs of the innermost get
					 * under way (mlc__get_slow()) */
	struct mlc_stats flushed;	/* what the namespace has of st */
	uint32_t flush_in;		/* calls until the clock is read */
	uint32_t unflushed;		/* calls counted down since the flush */
	uint64_t flush_at;		/* ms: a flush is due from then on */
	uint64_t heal_at;		/* ms: mlc__alloc_heal() due then */
	bool wrote;			/* stored into L2 since the last heal:
					 * only a writer heals (cache.c) */
	char err[200];
	uint64_t procs_gen;		/* fork generation it is counted in
					 * among the attached processes'
					 * handles (procs.c); UINT64_MAX: not */
	uint8_t ns_len;			/* the namespace's name, as opened: */
	char ns_name[MLC_NAME_MAX];	/* events carry it (write.c), not the
					 * arena's copy, which another process
					 * may rewrite */
};

/* How many times a write (mlc_set, mlc_modify) whose store a purge of its
 * namespace refused (table.c, put_linked()) tries again before it counts
 * as made before the last of those purges: 0, nothing stored. */
#define PURGE_TRIES 4

/* What one call works with: the handle's options overlaid with the call's. */
struct call {
	uint32_t flags;
	uint32_t lock_policy;
	int64_t ttl, neg_ttl, resurrect_ttl;
	uint32_t lock_timeout;
};

/* ---- inline: ttls, keys, the log check, values, the L1 hit ------------ */

/* Where a handle's L1 stands.  A call that lets a callback (a codec's
 * decode, the event hook, mlc_modify's function) call the cache on the
 * same handle marks it before and keeps what it read or wrote out of L1
 * if it moved: the callback applied log records (one of a newer change of
 * the key may be among them, and l1_moved() sees that) or wrote
 * on the handle (its own newer value of the key would be replaced, and a
 * handle with MLC_CACHE_MANUAL_UPDATE applies no record of it until its
 * next mlc_update()).  Each write call counts itself before its mark. */
struct l1_mark {
	uint64_t moves, writes;
};

static inline struct l1_mark
l1_mark(const struct mlc_cache *c)
{
	return (struct l1_mark){ c->log.moves, c->writes };
}

/* Records applied or L1 cleared (the cursor may wait while records after
 * it are applied: log.c, look_ahead()), or a write on the handle. */
static inline bool
l1_moved(const struct mlc_cache *c, struct l1_mark m)
{
	return c->log.moves != m.moves || c->writes != m.writes;
}

/* When a handle's counts reach its namespace's shared counters, without
 * a clock read or a shared write on an L1 hit: every call counts down
 * flush_in (a decrement and a branch not taken), and every FLUSH_CHECK-th
 * call reads the clock (mlc__stats_tick); calls that read it anyway (gets
 * past L1, sets) look at it each time.  A flush is due once FLUSH_MS have
 * passed since the last one, or after FLUSH_EVERY calls. */
#define FLUSH_MS 1000
#define FLUSH_CHECK 64
#define FLUSH_EVERY 4096

void mlc__stats_flush(struct mlc_cache *c, uint64_t now);

static inline void
stats_due(struct mlc_cache *c, uint64_t now)
{
	if (unlikely(now >= c->flush_at))
		mlc__stats_flush(c, now);
}

static inline bool
ttl_ok(int64_t ttl)
{
	return ttl >= MLC_TTL_NEVER;
}

/* When a value of @p ttl written @p now expires: 0 never, and at most
 * what L2 can hold (MLC__EXPIRE_MAX, ~34.8 years), as the store clamps
 * it, so the writer's answer and L1 copy say what L2 says. */
static inline uint64_t
expire_at(int64_t ttl, uint64_t now)
{
	uint64_t e = now + (uint64_t)ttl;

	if (ttl == MLC_TTL_NEVER)
		return 0;
	return e > MLC__EXPIRE_MAX || e < now ? MLC__EXPIRE_MAX : e;
}

/* The key as L1 and L2 see it.  Its namespace generation is read just
 * before L2 is (key_l2): an L1 hit touches no shared line but the log's. */
static inline void
key_make(struct mlc_cache *c, const void *key, size_t key_len,
	 struct mlc__key *k)
{
	k->data = key;
	k->len = (uint32_t)key_len;
	k->ns = c->ns_idx;
	k->nsgen = 0;
	/* Inline (not mlc__key_hash()): the hash is a third of an L1 hit. */
	k->hash = mlc__hash(c->a->seed, k->ns, key, key_len);
}

/* Read the generation once per call, before L2: a purge after this read
 * makes whatever the call stores invisible, as it must. */
static inline void
key_l2(struct mlc_cache *c, struct mlc__key *k)
{
	k->nsgen = ck_pr_load_32(&c->ns->ns_gen);
}

/* Apply the log's records this handle has not seen if there are more than
 * @p slack of them.  The head is read racily: one that moves just after
 * only waits for the next call's look. */
static inline void
log_catch_up(struct mlc_cache *c, uint64_t slack)
{
	if (c->auto_update &&
	    unlikely(ck_pr_load_64(c->log_head) - c->log.cursor > slack))
		mlc__log_apply(c->a, &c->log, 0);
}

/* The log check every lookup makes: one load when nothing is pending. */
static inline void
log_check(struct mlc_cache *c)
{
	log_catch_up(c, 0);
}

/* A write's look at the log: a handle that only writes never makes the
 * check above, and once a whole lap behind (its own records count) it
 * would drop its whole L1 at its next get.  Half a lap behind, a write
 * applies what the handle has not seen.  Only at the start of a call,
 * before it reads or writes L2, as a get's check: a record applied after
 * an L2 read and before the L1 insert of what it read would be lost for
 * that entry (internals.md, "the L1 fill race"). */
static inline void
log_keep_up(struct mlc_cache *c)
{
	log_catch_up(c, c->a->log_cells / 2);
}

static inline void
value_fill(struct mlc_value *v, struct mlc__ent *e, uint32_t level,
	   uint64_t now)
{
	bool neg = e->flags & MLC_NEGATIVE;

	e->refs++;
	v->data = neg ? NULL : mlc__ent_value(e);
	v->len = neg ? 0 : e->vlen;
	v->obj = e->obj;
	v->flags = e->flags;
	v->level = level;
	v->version = e->version;
	if (e->expire == 0)
		v->ttl_ms = MLC_TTL_NEVER;
	else if (e->expire > now)
		v->ttl_ms = (int64_t)(e->expire - now);
	else
		v->ttl_ms = 0;
	v->ref = e;
}

static inline bool
ent_expired(const struct mlc__ent *e, uint64_t now)
{
	return e->expire != 0 && e->expire <= now;
}

/* The L1 hit, kept short: no clock read for entries that never expire,
 * no shared memory touched (the log head was checked by the caller).  An
 * expired entry is dropped here, so the slow path starts at L2. */
static inline bool
l1_fast(struct mlc_cache *c, const struct mlc__key *k, struct mlc_value *value)
{
	struct mlc__ent *e = mlc__l1_find(&c->l1, k->hash, k->data, k->len);
	uint64_t now = 0;

	if (e == NULL)
		return false;
	if (e->expire != 0 && e->expire <= (now = mlc__now_ms())) {
		mlc__l1_unlink(&c->l1, e);	/* L2 has the same, or newer */
		return false;
	}
	mlc__l1_touch(e);
	if (e->flags & MLC_NEGATIVE)
		c->st.negative_hits++;
	c->st.hits_l1++;
	value_fill(value, e, MLC_L1, now);
	return true;
}

/* cache.c */
int mlc__call_resolve(const struct mlc_cache *c,
		      const struct mlc_call_options *co, struct call *cf);
void mlc__stats_tick(struct mlc_cache *c);
int mlc__set_err(struct mlc_cache *c, int rc);
void mlc__handle_forked(struct mlc_cache *c);

/* -EINVAL for a call that refuses its arguments, which is the handle's
 * last failure too (mlc_last_error()) when there is a handle. */
static inline int
mlc__refuse(struct mlc_cache *c)
{
	return c != NULL ? mlc__set_err(c, -EINVAL) : -EINVAL;
}

/* Common checks of every call on a handle, and its count towards the next
 * look at the clock for a flush (above).  Inline: they are on the L1 hit
 * path, whose every call counts. */
static inline int
mlc__handle_check(struct mlc_cache *c)
{
	if (c == NULL)
		return -EINVAL;
	if (unlikely(c->fork_gen != mlc__fork_gen()))
		mlc__handle_forked(c);
	if (unlikely(--c->flush_in == 0))
		mlc__stats_tick(c);
	return 0;
}

static inline int
mlc__key_check(struct mlc_cache *c, const void *key, size_t key_len)
{
	if (mlc__handle_check(c) < 0)
		return -EINVAL;
	if (key == NULL || key_len == 0)
		return mlc__set_err(c, -EINVAL);
	if (key_len > MLC_KEY_MAX)
		return mlc__set_err(c, -E2BIG);
	return 0;
}

/* get.c */
int mlc__ent_decode(struct mlc_cache *c, struct mlc__ent *e);
int mlc__ent_deliver(struct mlc_cache *c, struct mlc__ent *e, bool cache_l1,
		     uint32_t level, uint64_t now, struct mlc_value *value);
int mlc__l2_hit(struct mlc_cache *c, struct mlc__ent *e, uint64_t now,
		struct mlc_value *value);
struct mlc__ent *mlc__ent_from(const struct mlc__key *k, const void *data,
			       size_t len, bool neg, uint64_t expire,
			       uint64_t version);
int mlc__l2_read(struct mlc_cache *c, const struct mlc__key *k,
		 struct mlc__ent **ep);
void mlc__count_lookup(struct mlc_cache *c, int rc, const struct mlc_value *v,
		       bool loaded);
int mlc__get_slow(struct mlc_cache *c, struct mlc__key *k,
		  const struct call *cf, mlc_loader_fn *loader, void *arg,
		  struct mlc_value *value);

/* write.c */
int mlc__l2_store_cas(struct mlc_cache *c, const struct mlc__key *k,
		      const void *data, size_t len, uint32_t flags,
		      uint64_t expire, uint64_t fence, uint32_t cas,
		      uint64_t cas_version, struct mlc__put *put);
int mlc__l2_store_owned(struct mlc_cache *c, const struct mlc__key *k,
			const void *data, size_t len, uint32_t flags,
			uint64_t expire, uint64_t fence, uint32_t cas,
			uint64_t cas_version, const struct mlc__fl *f,
			struct mlc__put *put);
int mlc__l2_store(struct mlc_cache *c, const struct mlc__key *k,
		  const void *data, size_t len, uint32_t flags, uint64_t expire,
		  uint64_t fence, struct mlc__put *put);
void mlc__event_emit(struct mlc_cache *c, uint32_t op,
		     const struct mlc__key *k, uint64_t version);
void mlc__l1_drop(struct mlc_cache *c, const struct mlc__key *k);

/* load.c */
int mlc__serve_stale_or(struct mlc_cache *c, struct mlc__ent *stale, int rc,
			uint64_t now, struct mlc_value *value);
bool mlc__loading_self(const struct mlc_cache *c, const struct mlc__key *k);
int mlc__load_check(int r, struct mlc_load *ld);
void mlc__load_release(struct mlc_load *ld);
int mlc__load_and_publish(struct mlc_cache *c, const struct mlc__key *k,
			  const struct call *cf, mlc_loader_fn *loader,
			  void *arg, struct mlc__ent *stale, struct mlc__fl *f,
			  struct mlc_value *value);
/* mlc__flight_result(): the load's value was too large to share, the
 * waiter loads it itself (stale not consumed, as for -EAGAIN). */
#define MLC__UNSHARED 1
int mlc__flight_result(struct mlc_cache *c, const struct mlc__key *k,
		       const struct call *cf, const struct mlc__fl *f,
		       bool refresh, uint64_t before,
		       struct mlc__ent *stale, struct mlc_value *value);
struct mlc__ent *mlc__key_l2_again(struct mlc_cache *c, struct mlc__key *k,
				   struct mlc__ent *stale);
int mlc__load_alone(struct mlc_cache *c, const struct mlc__key *k,
		    const struct call *cf, mlc_loader_fn *loader, void *arg,
		    struct mlc__ent *stale, struct mlc_value *value);
int mlc__get_load(struct mlc_cache *c, const struct mlc__key *k,
		  const struct call *cf, mlc_loader_fn *loader, void *arg,
		  struct mlc__ent *stale, struct mlc_value *value);

#endif /* MLC_CACHE_H */
