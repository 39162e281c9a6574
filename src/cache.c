/*
 * Cache handles and the L1 -> L2 -> L3 path.
 *
 * A handle is one namespace seen by one thread: its L1, its cursor in the
 * invalidation log, its counters.  mlc_get() checks the log head (one
 * load), then L1, then L2, then runs the loader under single flight.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include <ck_pr.h>

#include "flight.h"
#include "l1.h"
#include "log.h"
#include "mlc-int.h"

#define DEFAULT_LRU 1024
#define DEFAULT_TTL 30000
#define DEFAULT_LOCK_TIMEOUT 5000
#define DEFAULT_LEASE 30000
#define MAX_NESTED_LOADS 8
#define OUTCOME_TTL 5000	/* how long waiters can find an outcome */
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
	struct mlc_stats st;
	struct mlc_stats flushed;	/* what the namespace has of st */
	uint32_t flush_in;		/* calls until the next flush */
	char err[200];
};

#define FLUSH_EVERY 4096
#define NCOUNTERS ((sizeof(struct mlc_stats) - sizeof(size_t)) / 8)
_Static_assert(NCOUNTERS <= MLC__NS_COUNTERS, "namespace counters");

/* What one call works with: the handle's options overlaid with the call's. */
struct call {
	uint32_t flags;
	uint32_t lock_policy;
	int64_t ttl, neg_ttl, resurrect_ttl;
	uint32_t lock_timeout;
};

/* The keys this thread is loading inside mlc_get(): a loader asking for
 * its own key would wait for itself. */
static __thread struct {
	const struct mlc_arena *a;
	uint64_t hash;
	uint32_t ns;
} loading[MAX_NESTED_LOADS];
static __thread int nloading;

/* ---- options -------------------------------------------------------- */

static bool
ttl_ok(int64_t ttl)
{
	return ttl >= MLC_TTL_NEVER;
}

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
static int
call_resolve(const struct mlc_cache *c, const struct mlc_call_options *co,
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

static uint64_t
expire_at(int64_t ttl, uint64_t now)
{
	return ttl == MLC_TTL_NEVER ? 0 : now + (uint64_t)ttl;
}

/* ---- counters --------------------------------------------------------- */

static uint64_t *
counters(struct mlc_stats *st)
{
	return (uint64_t *)(void *)((char *)st + sizeof(size_t));
}

/* Add what the handle counted since the last flush to its namespace's
 * shared counters: atomic adds, a few dozen every FLUSH_EVERY calls. */
static void
stats_flush(struct mlc_cache *c)
{
	uint64_t *now, *then, *shared;

	c->st.log_applied = c->log.applied;
	c->st.log_dropped = c->log.dropped;
	c->st.log_overruns = c->log.overruns;
	c->st.log_stuck = c->log.stuck;
	now = counters(&c->st);
	then = counters(&c->flushed);
	shared = c->a->nsstats[c->ns_idx].nt_count;
	for (size_t i = 0; i < NCOUNTERS; i++) {
		if (now[i] != then[i])
			ck_pr_add_64(&shared[i], now[i] - then[i]);
		then[i] = now[i];
	}
	c->flush_in = FLUSH_EVERY;
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
	c->fork_gen = mlc__fork_gen();
	c->st.size = sizeof(c->st);
	c->flushed.size = sizeof(c->flushed);
	c->flush_in = FLUSH_EVERY;
	/* A new handle has seen nothing, so it owes nothing to the log. */
	c->log.l1 = &c->l1;
	c->log.ns = c->ns_idx;
	c->log.cursor = mlc__log_head(arena);
	mlc__arena_ref(arena);
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
	stats_flush(c);
	mlc__l1_fini(&c->l1);
	mlc__arena_unref(c->a);
	free(c);
	return 0;
}

static int
set_err(struct mlc_cache *c, int rc)
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
 * and the parent's cursor means nothing here: start over at the head. */
MLC_COLD static void
handle_forked(struct mlc_cache *c)
{
	mlc__l1_clear(&c->l1);
	c->log.cursor = mlc__log_head(c->a);
	c->log.stuck_since = 0;
	c->fork_gen = mlc__fork_gen();
	c->st.forks++;
}

/* Common checks of every call on a handle. */
static int
handle_check(struct mlc_cache *c)
{
	if (c == NULL)
		return -EINVAL;
	if (unlikely(c->fork_gen != mlc__fork_gen()))
		handle_forked(c);
	return 0;
}

static int
key_check(struct mlc_cache *c, const void *key, size_t key_len)
{
	if (handle_check(c) < 0)
		return -EINVAL;
	if (key == NULL || key_len == 0)
		return set_err(c, -EINVAL);
	if (key_len > MLC_KEY_MAX)
		return set_err(c, -E2BIG);
	return 0;
}

/* The key as L1 and L2 see it.  Its namespace generation is read just
 * before L2 is (key_l2): an L1 hit touches no shared line but the log's. */
static void
key_make(struct mlc_cache *c, const void *key, size_t key_len,
	 struct mlc__key *k)
{
	k->data = key;
	k->len = (uint32_t)key_len;
	k->ns = c->ns_idx;
	k->nsgen = 0;
	mlc__key_hash(c->a, k);
}

/* Read the generation once per call, before L2: a purge after this read
 * makes whatever the call stores invisible, as it must. */
static void
key_l2(struct mlc_cache *c, struct mlc__key *k)
{
	k->nsgen = ck_pr_load_32(&c->ns->ns_gen);
}

/* The log check every lookup makes: one load when nothing is pending. */
static inline void
log_check(struct mlc_cache *c)
{
	if ((c->o.flags & MLC_CACHE_MANUAL_UPDATE) ||
	    likely(ck_pr_load_64(&c->a->log->lg_head) == c->log.cursor))
		return;
	mlc__log_apply(c->a, &c->log, 0);
}

/* ---- values ----------------------------------------------------------- */

static void
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

MLC_EXPORT void
mlc_value_release(struct mlc_value *v)
{
	if (v == NULL || v->ref == NULL)
		return;
	mlc__ent_put(v->ref);
	memset(v, 0, sizeof(*v));
}

static bool
ent_expired(const struct mlc__ent *e, uint64_t now)
{
	return e->expire != 0 && e->expire <= now;
}

/* Run the codec on a fresh entry; the bytes stay in L2 if it fails, and
 * the next lookup tries again. */
static int
ent_decode(struct mlc_cache *c, struct mlc__ent *e)
{
	int rc;

	if (!c->has_codec || (e->flags & MLC_NEGATIVE) || e->obj != NULL)
		return 0;
	rc = c->codec.decode(c->codec.arg, mlc__ent_value(e), e->vlen, &e->obj);
	if (rc < 0 || e->obj == NULL) {
		e->obj = NULL;
		c->st.codec_errors++;
		snprintf(c->err, sizeof(c->err), "codec: decode failed (%s)",
			 mlc_strerror(rc < 0 ? rc : -EINVAL));
		return MLC_ECODEC;
	}
	e->free_fn = c->codec.free_fn;
	e->free_arg = c->codec.arg;
	return 0;
}

/* Hand @p e to the caller, linking it into L1 if it may live there.
 * Consumes the caller's reference on @p e. */
static int
ent_deliver(struct mlc_cache *c, struct mlc__ent *e, bool cache_l1,
	    uint32_t level, uint64_t now, struct mlc_value *value)
{
	int rc = ent_decode(c, e);

	if (rc < 0) {
		mlc__ent_put(e);
		return rc;
	}
	value_fill(value, e, level, now);
	if (cache_l1 && !(c->o.flags & MLC_CACHE_NO_L1))
		c->st.l1_evictions += mlc__l1_insert(&c->l1, e); /* takes ours */
	else
		mlc__ent_put(e);
	return 0;
}

/* An L2 entry answers the call, and goes into L1. */
static int
l2_hit(struct mlc_cache *c, struct mlc__ent *e, uint64_t now,
       struct mlc_value *value)
{
	if (e->flags & MLC_NEGATIVE)
		c->st.negative_hits++;
	c->st.hits_l2++;
	return ent_deliver(c, e, true, MLC_L2, now, value);
}

/* Forget @p k in this handle's L1 (if there). */
static void
l1_drop(struct mlc_cache *c, const struct mlc__key *k)
{
	struct mlc__ent *e = mlc__l1_find(&c->l1, k->hash, k->data, k->len);

	if (e != NULL)
		mlc__l1_unlink(&c->l1, e);
}

/* A new entry holding @p data. */
static struct mlc__ent *
ent_from(const struct mlc__key *k, const void *data, size_t len, bool neg,
	 uint64_t expire, uint64_t version)
{
	struct mlc__ent *e = mlc__ent_new(k->hash, k->data, k->len,
					  neg ? 0 : (uint32_t)len);

	if (e == NULL)
		return NULL;
	if (!neg && len)
		memcpy((char *)mlc__ent_value(e), data, len);
	e->expire = expire;
	e->version = version;
	e->flags = (neg ? MLC_NEGATIVE : 0) | (expire == 0 ? MLC_NO_EXPIRY : 0);
	return e;
}

/* ---- L2 ---------------------------------------------------------------- */

struct sink_ctx {
	const struct mlc__key *k;
	struct mlc__ent *e;
};

static void *
ent_sink(void *ctx, size_t len)
{
	struct sink_ctx *s = ctx;

	if (s->e != NULL && s->e->vlen >= len) {
		s->e->vlen = (uint32_t)len;
		return (char *)mlc__ent_value(s->e);
	}
	if (s->e != NULL)
		mlc__ent_put(s->e);
	s->e = mlc__ent_new(s->k->hash, s->k->data, s->k->len, (uint32_t)len);
	return s->e ? (char *)mlc__ent_value(s->e) : NULL;
}

/* Read @p k from L2 into a new entry (one reference, unlinked). */
static int
l2_read(struct mlc_cache *c, const struct mlc__key *k, struct mlc__ent **ep)
{
	struct sink_ctx s = { k, NULL };
	struct mlc__hit hit;
	int rc;

	rc = mlc__table_get(c->a, k, ent_sink, &s, &hit);
	if (rc < 0) {
		if (s.e != NULL)
			mlc__ent_put(s.e);
		return rc;
	}
	s.e->vlen = hit.len;
	s.e->expire = hit.expire;
	s.e->version = hit.version;
	s.e->flags = (hit.flags & MLC__IT_NEG ? MLC_NEGATIVE : 0) |
		     (hit.flags & MLC__IT_STALE ? MLC_STALE : 0) |
		     (hit.expire == 0 ? MLC_NO_EXPIRY : 0);
	*ep = s.e;
	return 0;
}

/* Store bytes (or a negative entry) in L2 and tell every other handle.
 * put->version gets the new version.  @p fence: a loader's watermark. */
static int
l2_store_cas(struct mlc_cache *c, const struct mlc__key *k, const void *data,
	     size_t len, uint32_t flags, uint64_t expire, uint64_t fence,
	     uint32_t cas, uint64_t cas_version, struct mlc__put *put)
{
	int rc;

	if (len > UINT32_MAX)
		return -E2BIG;
	put->data = data;
	put->len = (uint32_t)len;
	put->flags = flags;
	put->expire = expire;
	put->version = 0;
	put->if_before = fence;
	put->cas = cas;
	put->cas_version = cas_version;
	rc = mlc__table_put(c->a, k, put);
	if (k->ns == MLC__NS_INTERNAL || (rc == MLC_ESTALE && cas))
		return rc;		/* not the caller's to count */
	if (rc == MLC_ESTALE) {
		c->st.fenced_writes++;
		return rc;
	}
	if (rc < 0) {
		c->st.l2_write_failures++;
		return rc;
	}
	mlc__log_publish(c->a, k->ns, k->hash, MLC__LOG_SET, put->version);
	c->st.log_published++;
	return 0;
}

static int
l2_store(struct mlc_cache *c, const struct mlc__key *k, const void *data,
	 size_t len, uint32_t flags, uint64_t expire, uint64_t fence,
	 struct mlc__put *put)
{
	return l2_store_cas(c, k, data, len, flags, expire, fence,
			    MLC__CAS_NONE, 0, put);
}

/* Serve @p stale, flagged so, or fail with @p rc (its message set). */
static int
serve_stale_or(struct mlc_cache *c, struct mlc__ent *stale, int rc,
	       uint64_t now, struct mlc_value *value)
{
	if (stale == NULL)
		return rc;
	stale->flags |= MLC_STALE;
	c->st.stale_served++;
	return ent_deliver(c, stale, false, MLC_L2, now, value);
}

/* ---- outcome records: what waiters read when L2 holds no result -------- */

enum outcome_kind { OUT_ERROR = 1, OUT_VALUE = 2 };

struct outcome {
	uint32_t kind;
	int32_t err;
	uint32_t gen;		/* the flight it came from; 0: any */
	uint32_t flags;		/* enum mlc_value_flags of a value */
	uint64_t until;		/* err_ttl back-off ends; 0: none */
	/* then the error message, or the value's bytes */
};

/* The outcome record's key: mlc's namespace, a tag, the namespace index
 * and the key.  Keys too long for that get no record (waiters retry). */
static bool
outcome_key(struct mlc_cache *c, const struct mlc__key *k, char **buf,
	    struct mlc__key *ok)
{
	if ((size_t)k->len + 3 > MLC_KEY_MAX)
		return false;
	*buf = malloc((size_t)k->len + 3);
	if (*buf == NULL)
		return false;
	(*buf)[0] = 'O';
	(*buf)[1] = (char)(k->ns & 0xff);
	(*buf)[2] = (char)(k->ns >> 8);
	memcpy(*buf + 3, k->data, k->len);
	ok->data = *buf;
	ok->len = k->len + 3;
	ok->ns = MLC__NS_INTERNAL;
	ok->nsgen = ck_pr_load_32(&c->a->ns[MLC__NS_INTERNAL].ns_gen);
	mlc__key_hash(c->a, ok);
	return true;
}

static void
outcome_write(struct mlc_cache *c, const struct mlc__key *k,
	      const struct outcome *o, const void *bytes, size_t len,
	      uint64_t now)
{
	struct mlc__key ok;
	struct mlc__put put;
	char *kb, *buf;
	uint64_t ttl = OUTCOME_TTL;

	if (o->until > now && o->until - now > ttl)
		ttl = o->until - now;
	if (sizeof(*o) + len + k->len + 3 + MLC__ITEM_HDR > c->a->page_size)
		return;			/* could never fit: waiters will retry */
	if (!outcome_key(c, k, &kb, &ok))
		return;
	buf = malloc(sizeof(*o) + len);
	if (buf != NULL) {
		memcpy(buf, o, sizeof(*o));
		if (len)
			memcpy(buf + sizeof(*o), bytes, len);
		l2_store(c, &ok, buf, sizeof(*o) + len, 0, now + ttl, 0, &put);
		free(buf);
	}
	free(kb);
}

/* Read the outcome record of @p k into *@p o and an entry holding the
 * bytes after it (the caller puts it).  -ENOENT if none. */
static int
outcome_read(struct mlc_cache *c, const struct mlc__key *k,
	     struct outcome *o, struct mlc__ent **ep)
{
	struct mlc__key ok;
	struct mlc__ent *e;
	char *kb;
	int rc;

	if (!outcome_key(c, k, &kb, &ok))
		return -ENOENT;
	rc = l2_read(c, &ok, &e);
	free(kb);
	if (rc < 0)
		return rc;
	if (e->vlen < sizeof(*o) || ent_expired(e, mlc__now_ms())) {
		mlc__ent_put(e);
		return -ENOENT;
	}
	memcpy(o, mlc__ent_value(e), sizeof(*o));
	*ep = e;
	return 0;
}

/* A shared error outcome (entry @p e, consumed) answers the call: its
 * message becomes this handle's, and @p stale (consumed) is served if
 * resurrect_ttl allows it, else MLC_ELOADER. */
static int
outcome_error(struct mlc_cache *c, struct mlc__ent *e,
	      const struct call *cf, struct mlc__ent *stale, uint64_t now,
	      struct mlc_value *value)
{
	snprintf(c->err, sizeof(c->err), "%.*s",
		 (int)MLC_MIN(e->vlen - sizeof(struct outcome),
			      sizeof(c->err) - 1),
		 mlc__ent_value(e) + sizeof(struct outcome));
	mlc__ent_put(e);
	if (stale != NULL && cf->resurrect_ttl > 0)
		return serve_stale_or(c, stale, 0, now, value);
	if (stale != NULL)
		mlc__ent_put(stale);
	return MLC_ELOADER;
}

/* ---- events for other hosts --------------------------------------------- */

/* Tell this process's transport hook about a change made here (sets,
 * deletes and purges by the caller: a loader's fill is not a change, and
 * relaying it would make hosts invalidate each other's fills forever). */
static void
event_emit(struct mlc_cache *c, uint32_t op, const struct mlc__key *k,
	   uint64_t version)
{
	mlc_event_fn *fn = __atomic_load_n(&c->a->event_fn, __ATOMIC_ACQUIRE);
	struct mlc_event ev;

	if (fn == NULL)
		return;
	ev.op = op;
	ev.ns_len = c->ns->ns_name_len;
	ev.ns = c->ns->ns_name;
	ev.key = k ? k->data : NULL;
	ev.key_len = k ? k->len : 0;
	ev.version = version;
	fn(c->a->event_arg, &ev);
}

MLC_EXPORT int
mlc_arena_set_event_hook(struct mlc_arena *a, mlc_event_fn *fn, void *arg)
{
	if (a == NULL)
		return -EINVAL;
	/* Process-local, not shared: a function pointer needs no ck_pr. */
	a->event_arg = arg;
	__atomic_store_n(&a->event_fn, fn, __ATOMIC_RELEASE);
	return 0;
}

/* Delete @p k from L2 and tell every L1 through the log, whether or not
 * L2 had it (another L1 may still). */
static int
l2_delete(struct mlc_arena *a, const struct mlc__key *k, uint64_t *version)
{
	int rc = mlc__table_del(a, k, version);

	if (rc < 0 && rc != -ENOENT)
		return rc;
	mlc__log_publish(a, k->ns, k->hash, MLC__LOG_DEL, *version);
	return 0;
}

MLC_EXPORT int
mlc_arena_apply_event(struct mlc_arena *a, const struct mlc_event *ev)
{
	char name[MLC_NAME_MAX + 1];
	struct mlc__key k;
	uint64_t version;
	uint32_t ns;
	int rc;

	if (a == NULL || ev == NULL || ev->ns == NULL || ev->ns_len == 0 ||
	    ev->ns_len > MLC_NAME_MAX || memchr(ev->ns, 0, ev->ns_len))
		return -EINVAL;
	if (ev->op != MLC_EVENT_PURGE &&
	    ((ev->op != MLC_EVENT_SET && ev->op != MLC_EVENT_DELETE) ||
	     ev->key == NULL || ev->key_len == 0))
		return -EINVAL;
	if (ev->op != MLC_EVENT_PURGE && ev->key_len > MLC_KEY_MAX)
		return -E2BIG;
	if (a->flags & MLC_ARENA_RDONLY)
		return -EPERM;
	memcpy(name, ev->ns, ev->ns_len);
	name[ev->ns_len] = '\0';
	if ((rc = mlc__ns_open(a, name, &ns)) < 0)
		return rc;
	if (ev->op == MLC_EVENT_PURGE) {
		ck_pr_inc_32(&a->ns[ns].ns_gen);
		mlc__log_publish(a, ns, 0, MLC__LOG_PURGE, 0);
		return 0;
	}
	/* A change elsewhere: our copy is old, whatever it holds. */
	k.data = ev->key;
	k.len = (uint32_t)ev->key_len;
	k.ns = ns;
	k.nsgen = ck_pr_load_32(&a->ns[ns].ns_gen);
	mlc__key_hash(a, &k);
	return l2_delete(a, &k, &version);
}

/* ---- writes ------------------------------------------------------------ */

MLC_EXPORT int
mlc_set(struct mlc_cache *c, const void *key, size_t key_len,
	const void *data, size_t len, const struct mlc_call_options *opts)
{
	struct mlc__key k;
	struct mlc__put put;
	struct mlc__ent *e;
	struct call cf;
	uint64_t now;
	bool neg;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if ((rc = call_resolve(c, opts, &cf)) < 0)
		return set_err(c, rc);
	neg = cf.flags & MLC_CALL_NEGATIVE;
	if (neg ? (data != NULL || len != 0) : (data == NULL && len != 0))
		return set_err(c, -EINVAL);
	now = mlc__now_ms();
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	rc = l2_store(c, &k, data, len, neg ? MLC__IT_NEG : 0,
		      expire_at(neg ? cf.neg_ttl : cf.ttl, now), 0, &put);
	if (rc < 0)
		return set_err(c, rc);
	c->st.sets++;
	event_emit(c, MLC_EVENT_SET, &k, put.version);
	/* The caller's L1 holds the new value at once (decoded, with a
	 * codec; if decoding fails the next get reports it). */
	l1_drop(c, &k);
	if (!(c->o.flags & MLC_CACHE_NO_L1)) {
		e = ent_from(&k, data, len, neg, put.expire, put.version);
		if (e != NULL && ent_decode(c, e) == 0)
			c->st.l1_evictions += mlc__l1_insert(&c->l1, e);
		else if (e != NULL)
			mlc__ent_put(e);
	}
	return 0;
}

MLC_EXPORT int
mlc_delete(struct mlc_cache *c, const void *key, size_t key_len)
{
	struct mlc__key k;
	uint64_t version;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if ((rc = l2_delete(c->a, &k, &version)) < 0)
		return set_err(c, rc);
	c->st.log_published++;
	event_emit(c, MLC_EVENT_DELETE, &k, version);
	l1_drop(c, &k);
	c->st.deletes++;
	return 0;
}

MLC_EXPORT int
mlc_purge(struct mlc_cache *c)
{
	if (handle_check(c) < 0)
		return -EINVAL;
	/* One increment: every item of the old generation is a miss from
	 * now on, in every process, and the sweep reclaims them first. */
	ck_pr_inc_32(&c->ns->ns_gen);
	mlc__log_publish(c->a, c->ns_idx, 0, MLC__LOG_PURGE, 0);
	c->st.log_published++;
	event_emit(c, MLC_EVENT_PURGE, NULL, 0);
	mlc__l1_clear(&c->l1);
	c->st.purges++;
	return 0;
}

MLC_EXPORT int
mlc_update(struct mlc_cache *c)
{
	if (handle_check(c) < 0)
		return -EINVAL;
	mlc__log_apply(c->a, &c->log, c->o.update_budget);
	return 0;
}

MLC_EXPORT int
mlc_update_ex(struct mlc_cache *c, uint64_t *hashes, size_t cap, size_t *n,
	      uint32_t *flags)
{
	uint64_t forks;

	if (c == NULL || n == NULL || flags == NULL ||
	    (hashes == NULL && cap != 0))
		return -EINVAL;
	forks = c->st.forks;
	handle_check(c);
	c->log.out = hashes;
	c->log.out_cap = cap;
	c->log.out_n = 0;
	c->log.out_all = c->st.forks != forks;	/* a new child: start over */
	mlc__log_apply(c->a, &c->log, c->o.update_budget);
	*n = c->log.out_n;
	*flags = c->log.out_all ? MLC_UPDATE_ALL : 0;
	c->log.out = NULL;
	c->log.out_all = false;
	return 0;
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

/* ---- lookups ------------------------------------------------------------ */

/* mlc_peek's lookup: L1 (without moving the entry), then L2.  On 0 *ep
 * is an entry the caller holds a reference to and *levelp where it came
 * from; an expired entry comes back too (the caller decides about
 * staleness). */
static int
lookup(struct mlc_cache *c, struct mlc__key *k, uint64_t now,
       struct mlc__ent **ep, uint32_t *levelp)
{
	struct mlc__ent *e = mlc__l1_find(&c->l1, k->hash, k->data, k->len);

	if (e != NULL) {
		if (!ent_expired(e, now)) {
			e->refs++;
			*ep = e;
			*levelp = MLC_L1;
			return 0;
		}
		mlc__l1_unlink(&c->l1, e);	/* L2 has the same, or newer */
	}
	*levelp = MLC_L2;
	key_l2(c, k);
	return l2_read(c, k, ep);
}

static bool
loading_self(const struct mlc_cache *c, const struct mlc__key *k)
{
	for (int i = 0; i < nloading; i++)
		if (loading[i].a == c->a && loading[i].ns == k->ns &&
		    loading[i].hash == k->hash)
			return true;
	return false;
}

/* Check what a loader returned; a malformed result becomes an error. */
static int
load_check(int r, struct mlc_load *ld)
{
	if (r == MLC_LOAD_VALUE && ld->data == NULL && ld->len != 0) {
		snprintf(ld->errmsg, sizeof(ld->errmsg),
			 "loader returned NULL data with a length");
		return -EINVAL;
	}
	if ((r == MLC_LOAD_VALUE || r == MLC_LOAD_NOTFOUND) &&
	    !ttl_ok(ld->ttl_ms)) {
		snprintf(ld->errmsg, sizeof(ld->errmsg),
			 "loader returned an invalid ttl_ms");
		return -EINVAL;
	}
	if (r == MLC_LOAD_VALUE && ld->len > UINT32_MAX) {
		snprintf(ld->errmsg, sizeof(ld->errmsg),
			 "loader returned a value over 4 GiB");
		return -E2BIG;
	}
	if (r > MLC_LOAD_NOTFOUND) {
		snprintf(ld->errmsg, sizeof(ld->errmsg),
			 "loader returned %d, not a result", r);
		return -EINVAL;
	}
	return r;
}

/* Run the loader for @p k with this thread marked as its loader. */
static int
run_loader(struct mlc_cache *c, const struct mlc__key *k,
	   mlc_loader_fn *loader, void *arg, struct mlc_load *ld)
{
	int r;

	memset(ld, 0, sizeof(*ld));
	if (nloading >= MAX_NESTED_LOADS) {
		snprintf(ld->errmsg, sizeof(ld->errmsg),
			 "loaders nested too deeply");
		return -ELOOP;
	}
	loading[nloading].a = c->a;
	loading[nloading].ns = k->ns;
	loading[nloading].hash = k->hash;
	nloading++;
	r = loader(arg, k->data, k->len, ld);
	nloading--;
	c->st.loads++;
	return load_check(r, ld);
}

static void
load_release(struct mlc_load *ld)
{
	if (ld->release != NULL && ld->data != NULL)
		ld->release((void *)ld->data);
	ld->release = NULL;
	ld->data = NULL;
}

/* The loader failed with @p r: leave the outcome for waiters, then serve
 * the stale value re-stored for resurrect_ttl when allowed, else fail. */
static int
load_failed(struct mlc_cache *c, const struct mlc__key *k,
	    const struct call *cf, struct mlc_load *ld, int r,
	    struct mlc__ent *stale, const struct mlc__fl *f, uint64_t now,
	    struct mlc_value *value)
{
	struct outcome o = { OUT_ERROR, r, f->gen, 0, 0 };
	struct mlc__put put;
	size_t mlen;

	c->st.loader_errors++;
	ld->errmsg[sizeof(ld->errmsg) - 1] = '\0';
	if (ld->errmsg[0])
		snprintf(c->err, sizeof(c->err), "%s", ld->errmsg);
	else
		snprintf(c->err, sizeof(c->err), "loader failed: %s",
			 mlc_strerror(r));
	mlen = strlen(c->err);
	if (c->o.err_ttl_ms > 0)
		o.until = now + (uint64_t)c->o.err_ttl_ms;
	if (stale != NULL && cf->resurrect_ttl > 0) {
		/* Resurrect: the stale value goes back to L2, flagged stale,
		 * so every process serves it while the backend is down. */
		stale->expire = now + (uint64_t)cf->resurrect_ttl;
		stale->flags = (stale->flags & MLC_NEGATIVE) | MLC_STALE;
		if (l2_store(c, k,
			     mlc__ent_value(stale), stale->vlen,
			     MLC__IT_STALE | (stale->flags & MLC_NEGATIVE ?
					      MLC__IT_NEG : 0),
			     stale->expire, 0, &put) < 0)
			stale->flags |= MLC_L2_WRITE_FAILED; /* served anyway */
		else
			stale->version = put.version;
		if (f->slot != 0 || o.until)
			outcome_write(c, k, &o, c->err, mlen, now);
		c->st.stale_served++;
		return ent_deliver(c, stale, true, MLC_L2, now, value);
	}
	if (f->slot != 0 || o.until)
		outcome_write(c, k, &o, c->err, mlen, now);
	if (stale != NULL)
		mlc__ent_put(stale);
	return MLC_ELOADER;
}

/* The loader answered: store what it says (unless fenced out) and hand it
 * out; waiters find it in L2, or in the outcome record if not stored. */
static int
load_done(struct mlc_cache *c, const struct mlc__key *k,
	  const struct call *cf, struct mlc_load *ld, int r, uint64_t fence,
	  const struct mlc__fl *f, uint64_t now, struct mlc_value *value)
{
	bool neg = r == MLC_LOAD_NOTFOUND;
	int64_t ttl = ld->ttl_ms ? ld->ttl_ms : neg ? cf->neg_ttl : cf->ttl;
	uint64_t expire = expire_at(ttl, now);
	bool cache = !(ld->flags & MLC_LOAD_NO_CACHE);
	struct mlc__ent *e;
	struct mlc__put put;
	int rc = 0;

	e = ent_from(k, ld->data, ld->len, neg, expire, 0);
	load_release(ld);
	if (e == NULL)
		return set_err(c, -ENOMEM);
	if (cache && !mlc__flight_mine(c->a, f)) {
		c->st.fenced_writes++;		/* our lease was taken over */
		cache = false;
	}
	if (cache) {
		rc = l2_store(c, k, neg ? NULL : mlc__ent_value(e), e->vlen,
			      neg ? MLC__IT_NEG : 0, expire, fence, &put);
		if (rc == MLC_ESTALE)
			cache = false;		/* set or deleted meanwhile */
		else if (rc < 0)
			e->flags |= MLC_L2_WRITE_FAILED; /* L1 only */
		else
			e->version = put.version;
	}
	if (!cache || rc < 0) {
		struct outcome o = { OUT_VALUE, 0, f->gen,
				     e->flags & MLC_NEGATIVE, 0 };

		if (!cache)
			e->flags |= MLC_NOT_CACHED;
		if (f->slot != 0)
			outcome_write(c, k, &o, mlc__ent_value(e), e->vlen, now);
	}
	if (neg)
		c->st.negative_hits++;
	c->st.hits_l3++;
	return ent_deliver(c, e, cache, MLC_L3, now, value);
}

/* Run the loader as the flight's owner (or without a flight) and end the
 * flight.  Consumes @p stale. */
static int
load_and_publish(struct mlc_cache *c, const struct mlc__key *k,
		 const struct call *cf, mlc_loader_fn *loader, void *arg,
		 struct mlc__ent *stale, struct mlc__fl *f,
		 struct mlc_value *value)
{
	uint64_t fence = ck_pr_load_64(&c->a->hdr->ah_version);
	struct mlc_load ld;
	uint64_t now;
	int r, rc;

	r = run_loader(c, k, loader, arg, &ld);
	now = mlc__now_ms();
	if (r >= 0) {
		if (stale != NULL)
			mlc__ent_put(stale);
		rc = load_done(c, k, cf, &ld, r, fence, f, now, value);
	} else {
		load_release(&ld);	/* the error wins over any value */
		rc = load_failed(c, k, cf, &ld, r, stale, f, now, value);
	}
	mlc__flight_release(c->a, f);
	return rc;
}

/* A waiter's flight ended: the result is in L2, or in the outcome record.
 * 0 with *value, MLC_ELOADER, or -EAGAIN (no result: try again). */
static int
flight_result(struct mlc_cache *c, const struct mlc__key *k,
	      const struct call *cf, uint32_t gen, struct mlc__ent *stale,
	      struct mlc_value *value)
{
	uint64_t now = mlc__now_ms();
	struct mlc__ent *e;
	struct outcome o;

	if (l2_read(c, k, &e) == 0) {
		if (!ent_expired(e, now)) {
			if (stale != NULL)
				mlc__ent_put(stale);
			return l2_hit(c, e, now, value);
		}
		mlc__ent_put(e);
	}
	if (outcome_read(c, k, &o, &e) < 0 || (o.gen != gen && gen != 0))
		return -EAGAIN;
	if (o.kind == OUT_VALUE) {
		struct mlc__ent *v = ent_from(k, mlc__ent_value(e) + sizeof(o),
					      e->vlen - sizeof(o),
					      o.flags & MLC_NEGATIVE, 0, 0);

		mlc__ent_put(e);
		if (stale != NULL)
			mlc__ent_put(stale);
		if (v == NULL)
			return set_err(c, -ENOMEM);
		v->flags = (uint16_t)(o.flags | MLC_NOT_CACHED);
		c->st.hits_l2++;
		return ent_deliver(c, v, false, MLC_L2, now, value);
	}
	return outcome_error(c, e, cf, stale, now, value);
}

/* The lock timed out: apply the policy. */
static int
lock_timed_out(struct mlc_cache *c, const struct mlc__key *k,
	       const struct call *cf, mlc_loader_fn *loader, void *arg,
	       struct mlc__ent *stale, struct mlc_value *value)
{
	struct mlc__fl none = { .role = MLC_FLIGHT_LOADER };

	c->st.lock_timeouts++;
	switch (cf->lock_policy) {
	case MLC_LOCK_LOAD:
		c->st.duplicate_loads++;
		return load_and_publish(c, k, cf, loader, arg, stale, &none,
					value);
	case MLC_LOCK_STALE:
		if (stale != NULL)
			return serve_stale_or(c, stale, 0, mlc__now_ms(), value);
		/* fall through */
	default:
		if (stale != NULL)
			mlc__ent_put(stale);
		return set_err(c, -ETIMEDOUT);
	}
}

/* Miss in L1 and L2 (or only a stale value): load under single flight. */
static int
get_load(struct mlc_cache *c, const struct mlc__key *k, const struct call *cf,
	 mlc_loader_fn *loader, void *arg, struct mlc__ent *stale,
	 struct mlc_value *value)
{
	uint64_t until = mlc__now_ms() + cf->lock_timeout;
	uint32_t lease = c->o.lock_lease_ms;
	struct outcome o;
	struct mlc__ent *e;
	struct mlc__fl f;

	if (c->o.err_ttl_ms > 0 && outcome_read(c, k, &o, &e) == 0) {
		uint64_t now = mlc__now_ms();

		if (o.kind == OUT_ERROR && o.until > now) {
			/* A load of this key failed moments ago: do not
			 * hammer the backend, answer as it did. */
			c->st.err_ttl_hits++;
			return outcome_error(c, e, cf, stale, now, value);
		}
		mlc__ent_put(e);
	}
	for (int round = 0; round < ACQUIRE_ROUNDS; round++) {
		uint64_t t0;
		int rc;

		if (mlc__flight_acquire(c->a, k->hash, lease, &f) == -EBUSY) {
			c->st.duplicate_loads++;
			return load_and_publish(c, k, cf, loader, arg, stale,
						&f, value);
		}
		if (f.role == MLC_FLIGHT_LOADER) {
			/* Another process may have stored it just before
			 * we claimed the flight. */
			if (l2_read(c, k, &e) == 0) {
				uint64_t now = mlc__now_ms();

				if (!ent_expired(e, now)) {
					mlc__flight_release(c->a, &f);
					if (stale != NULL)
						mlc__ent_put(stale);
					return l2_hit(c, e, now, value);
				}
				mlc__ent_put(e);
			}
			return load_and_publish(c, k, cf, loader, arg, stale,
						&f, value);
		}
		if (stale != NULL && (cf->flags & MLC_CALL_SWR)) {
			/* Another process refreshes it: serve stale now. */
			mlc__flight_leave(c->a, &f);
			return serve_stale_or(c, stale, 0, mlc__now_ms(),
					      value);
		}
		c->st.lock_waits++;
		t0 = mlc__now_ms();
		rc = mlc__flight_wait(c->a, &f, until, lease,
				      &c->st.lock_steals);
		c->st.lock_wait_ms += mlc__now_ms() - t0;
		if (rc == 1)
			return load_and_publish(c, k, cf, loader, arg, stale,
						&f, value);
		if (rc == -EAGAIN) {
			mlc__flight_leave(c->a, &f);
			return lock_timed_out(c, k, cf, loader, arg, stale,
					      value);
		}
		rc = flight_result(c, k, cf, f.gen, stale, value);
		if (rc != -EAGAIN)
			return rc;
	}
	/* The key kept changing hands without a result: load ourselves. */
	c->st.duplicate_loads++;
	f = (struct mlc__fl){ .role = MLC_FLIGHT_LOADER };
	return load_and_publish(c, k, cf, loader, arg, stale, &f, value);
}

/* Everything after the L1 fast path missed: L2, then the loader. */
static int
get_slow(struct mlc_cache *c, struct mlc__key *k, const struct call *cf,
	 mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	uint64_t now = mlc__now_ms();
	struct mlc__ent *e = NULL;
	int rc;

	key_l2(c, k);
	rc = l2_read(c, k, &e);
	if (rc == 0 && !ent_expired(e, now))
		return l2_hit(c, e, now, value);
	if (rc < 0 && rc != -ENOENT && rc != -ETIMEDOUT)
		return set_err(c, rc);
	if (rc != 0)
		e = NULL;		/* else an expired entry: stale */
	if (loader == NULL) {
		if (e != NULL && (cf->flags & MLC_CALL_STALE_OK))
			return serve_stale_or(c, e, 0, now, value);
		if (e != NULL)
			mlc__ent_put(e);
		c->st.misses++;
		return -ENOENT;
	}
	if (loading_self(c, k)) {
		if (e != NULL)
			mlc__ent_put(e);
		return set_err(c, -EDEADLK);
	}
	return get_load(c, k, cf, loader, arg, e, value);
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
	mlc__l1_touch(&c->l1, e);
	if (e->flags & MLC_NEGATIVE)
		c->st.negative_hits++;
	c->st.hits_l1++;
	value_fill(value, e, MLC_L1, now);
	return true;
}

MLC_EXPORT int
mlc_get_ex(struct mlc_cache *c, const void *key, size_t key_len,
	   const struct mlc_call_options *opts, mlc_loader_fn *loader,
	   void *arg, struct mlc_value *value)
{
	struct mlc__key k;
	struct call cf;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (value == NULL)
		return set_err(c, -EINVAL);
	if ((rc = call_resolve(c, opts, &cf)) < 0)
		return set_err(c, rc);
	if (unlikely(--c->flush_in == 0))
		stats_flush(c);
	log_check(c);
	key_make(c, key, key_len, &k);
	if (l1_fast(c, &k, value))
		return 0;
	return get_slow(c, &k, &cf, loader, arg, value);
}

MLC_EXPORT int
mlc_get(struct mlc_cache *c, const void *key, size_t key_len,
	mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	return mlc_get_ex(c, key, key_len, NULL, loader, arg, value);
}

/* ---- many keys, read-modify-write, refresh ------------------------------ */

#define BULK_BATCH 32		/* keys whose loads are in flight together */

/* One batch: hash all, L1 all (its slot heads fetched ahead), then fetch
 * the L2 buckets of the misses, then their items, then look them up. */
static void
bulk_batch(struct mlc_cache *c, struct mlc_bulk_item *it, size_t n,
	   const struct call *cf, mlc_loader_fn *loader, void *arg)
{
	struct mlc__key k[BULK_BATCH];
	bool todo[BULK_BATCH];

	for (size_t i = 0; i < n; i++) {
		memset(&it[i].value, 0, sizeof(it[i].value));
		todo[i] = false;
		if (it[i].key == NULL || it[i].key_len == 0) {
			it[i].status = -EINVAL;
			continue;
		}
		if (it[i].key_len > MLC_KEY_MAX) {
			it[i].status = -E2BIG;
			continue;
		}
		key_make(c, it[i].key, it[i].key_len, &k[i]);
		__builtin_prefetch(&c->l1.slots[k[i].hash & c->l1.mask]);
		todo[i] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		if (l1_fast(c, &k[i], &it[i].value)) {
			it[i].status = 0;
			todo[i] = false;
			continue;
		}
		mlc__table_prefetch(c->a, k[i].hash);
	}
	for (size_t i = 0; i < n; i++)
		if (todo[i])
			mlc__table_prefetch_items(c->a, k[i].hash);
	for (size_t i = 0; i < n; i++)
		if (todo[i])
			it[i].status = get_slow(c, &k[i], cf, loader, arg,
						&it[i].value);
}

MLC_EXPORT int
mlc_get_bulk(struct mlc_cache *c, struct mlc_bulk_item *items, size_t n,
	     const struct mlc_call_options *opts, mlc_loader_fn *loader,
	     void *arg)
{
	struct call cf;
	int rc;

	if (handle_check(c) < 0 || (items == NULL && n > 0))
		return -EINVAL;
	if ((rc = call_resolve(c, opts, &cf)) < 0)
		return set_err(c, rc);
	log_check(c);
	for (size_t i = 0; i < n; i += BULK_BATCH)
		bulk_batch(c, items + i, MLC_MIN(n - i, BULK_BATCH), &cf,
			   loader, arg);
	return 0;
}

#define MODIFY_TRIES 1000

/* One round of mlc_modify: read, let fn decide, compare-and-set. */
static int
modify_once(struct mlc_cache *c, struct mlc__key *k, mlc_modify_fn *fn,
	    void *arg, struct mlc_value *value)
{
	uint64_t now = mlc__now_ms(), version = 0, expire;
	struct mlc_value cur = { 0 };
	struct mlc__ent *e = NULL;
	struct mlc__put put;
	struct mlc_load ld;
	bool present, live;
	int r, rc;

	key_l2(c, k);
	rc = l2_read(c, k, &e);
	if (rc == -ETIMEDOUT)
		return MLC_ESTALE;	/* busy bucket: read again */
	if (rc < 0 && rc != -ENOENT)
		return rc;
	present = rc == 0;
	live = present && !ent_expired(e, now);
	if (present)
		version = e->version;
	if (live)
		value_fill(&cur, e, MLC_L2, now);
	memset(&ld, 0, sizeof(ld));
	r = fn(arg, live ? &cur : NULL, &ld);
	mlc_value_release(&cur);
	if (e != NULL)
		mlc__ent_put(e);
	if (r < 0 || r == MLC_MODIFY_KEEP || r > MLC_MODIFY_NEGATIVE) {
		load_release(&ld);
		return r < 0 ? r : r == MLC_MODIFY_KEEP ? 0 : -EINVAL;
	}
	if (r == MLC_MODIFY_DELETE) {
		load_release(&ld);
		if (!present)
			return 0;
		rc = mlc__table_del_if(c->a, k, version, &version);
		if (rc == 0) {
			mlc__log_publish(c->a, k->ns, k->hash, MLC__LOG_DEL,
					 version);
			c->st.log_published++;
			event_emit(c, MLC_EVENT_DELETE, k, version);
			c->st.deletes++;
			l1_drop(c, k);
		}
		return rc;
	}
	if (load_check(r == MLC_MODIFY_NEGATIVE ? MLC_LOAD_NOTFOUND
						: MLC_LOAD_VALUE, &ld) < 0) {
		load_release(&ld);
		return -EINVAL;
	}
	expire = expire_at(ld.ttl_ms ? ld.ttl_ms :
			   r == MLC_MODIFY_NEGATIVE ? c->o.neg_ttl_ms
						    : c->o.ttl_ms, now);
	e = ent_from(k, ld.data, ld.len, r == MLC_MODIFY_NEGATIVE, expire, 0);
	load_release(&ld);
	if (e == NULL)
		return -ENOMEM;
	rc = l2_store_cas(c, k, r == MLC_MODIFY_NEGATIVE ? NULL :
			  mlc__ent_value(e), e->vlen,
			  r == MLC_MODIFY_NEGATIVE ? MLC__IT_NEG : 0, expire, 0,
			  present ? MLC__CAS_VERSION : MLC__CAS_ABSENT, version,
			  &put);
	if (rc < 0) {
		mlc__ent_put(e);
		return rc;
	}
	e->version = put.version;
	c->st.sets++;
	event_emit(c, MLC_EVENT_SET, k, put.version);
	/* Stored: the caller's L1 gets it too.  A codec that cannot decode
	 * it is reported by the next get, not here. */
	rc = ent_deliver(c, e, true, MLC_L2, now, value ? value : &cur);
	mlc_value_release(&cur);
	return rc == MLC_ECODEC ? 0 : rc;
}

MLC_EXPORT int
mlc_modify(struct mlc_cache *c, const void *key, size_t key_len,
	   mlc_modify_fn *fn, void *arg, struct mlc_value *value)
{
	struct mlc__key k;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (fn == NULL)
		return set_err(c, -EINVAL);
	if (value != NULL)
		memset(value, 0, sizeof(*value));
	key_make(c, key, key_len, &k);
	for (int t = 0; t < MODIFY_TRIES; t++) {
		rc = modify_once(c, &k, fn, arg, value);
		if (rc != MLC_ESTALE)
			return rc < 0 ? set_err(c, rc) : rc;
		if (t >= 8)
			sched_yield();	/* let the winner finish */
	}
	return set_err(c, -EBUSY);
}

MLC_EXPORT int
mlc_refresh(struct mlc_cache *c, const void *key, size_t key_len,
	    mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	struct mlc_value tmp = { 0 };
	struct mlc__key k;
	struct mlc__fl f;
	struct call cf;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (loader == NULL)
		return set_err(c, -EINVAL);
	call_resolve(c, NULL, &cf);
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if (loading_self(c, &k))
		return set_err(c, -EDEADLK);
	rc = -EAGAIN;
	for (int round = 0; round < ACQUIRE_ROUNDS && rc == -EAGAIN; round++) {
		if (mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms,
					&f) == -EBUSY)
			c->st.duplicate_loads++;
		if (f.role == MLC_FLIGHT_WAITER) {
			/* Someone loads it already: that load is the
			 * refresh. */
			c->st.lock_waits++;
			rc = mlc__flight_wait(c->a, &f, mlc__now_ms() +
					      cf.lock_timeout,
					      c->o.lock_lease_ms,
					      &c->st.lock_steals);
			if (rc == -EAGAIN) {
				mlc__flight_leave(c->a, &f);
				c->st.lock_timeouts++;
				return set_err(c, -ETIMEDOUT);
			}
			if (rc == 0) {
				rc = flight_result(c, &k, &cf, f.gen, NULL,
						   value ? value : &tmp);
				continue;
			}
		}
		/* The old value stays in L2 for everyone until this
		 * load's value replaces it. */
		rc = load_and_publish(c, &k, &cf, loader, arg, NULL, &f,
				      value ? value : &tmp);
	}
	if (rc == 0 && value == NULL)
		mlc_value_release(&tmp);
	return rc;
}

MLC_EXPORT int
mlc_peek(struct mlc_cache *c, const void *key, size_t key_len,
	 uint32_t flags, struct mlc_value *value)
{
	struct mlc__ent *e;
	struct mlc__key k;
	uint32_t level;
	uint64_t now;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (value == NULL || (flags & ~(uint32_t)MLC_CALL_STALE_OK))
		return set_err(c, -EINVAL);
	log_check(c);
	now = mlc__now_ms();
	key_make(c, key, key_len, &k);
	rc = lookup(c, &k, now, &e, &level);
	if (rc == -ETIMEDOUT)
		rc = -ENOENT;
	if (rc < 0)
		return rc == -ENOENT ? rc : set_err(c, rc);
	if (ent_expired(e, now)) {
		if (!(flags & MLC_CALL_STALE_OK)) {
			mlc__ent_put(e);
			return -ENOENT;
		}
		e->flags |= MLC_STALE;
	}
	if (level == MLC_L1) {
		value_fill(value, e, MLC_L1, now);
		mlc__ent_put(e);
		return 0;
	}
	/* No promotion: the entry goes to the caller only. */
	return ent_deliver(c, e, false, MLC_L2, now, value);
}

MLC_EXPORT int
mlc_stats(struct mlc_cache *c, struct mlc_stats *stats)
{
	size_t n;

	if (c == NULL || stats == NULL || stats->size < sizeof(size_t) + 8)
		return -EINVAL;
	stats_flush(c);
	n = MLC_MIN(stats->size, sizeof(c->st));
	memcpy(stats, &c->st, n);
	stats->size = n;
	return 0;
}

MLC_EXPORT int
mlc_namespace_stats(struct mlc_arena *a, const char *ns,
		    struct mlc_stats *stats)
{
	struct mlc_stats sum;
	uint32_t idx;
	size_t n;
	int rc;

	if (a == NULL || ns == NULL || stats == NULL ||
	    stats->size < sizeof(size_t) + 8)
		return -EINVAL;
	if ((rc = mlc__ns_find(a, ns, &idx)) < 0)
		return rc;
	memset(&sum, 0, sizeof(sum));
	sum.size = sizeof(sum);
	for (size_t i = 0; i < NCOUNTERS; i++)
		counters(&sum)[i] = ck_pr_load_64(&a->nsstats[idx].nt_count[i]);
	n = MLC_MIN(stats->size, sizeof(sum));
	memcpy(stats, &sum, n);
	stats->size = n;
	return 0;
}

/* ---- the single-flight steps, exported --------------------------------- */

/* struct mlc_flight's private words. */
enum { FP_HASH, FP_TOKEN, FP_JOINED, FP_FENCE, FP_KEY, FP_KLEN, FP_GEN };

static void
flight_save(struct mlc_flight *out, const struct mlc__fl *f,
	    const struct mlc__key *k, uint64_t fence)
{
	out->role = f->role;
	out->fl_private0 = f->slot;
	out->fl_private[FP_HASH] = f->hash;
	out->fl_private[FP_TOKEN] = f->token;
	out->fl_private[FP_JOINED] = f->joined;
	out->fl_private[FP_FENCE] = fence;
	out->fl_private[FP_KEY] = (uint64_t)(uintptr_t)k->data;
	out->fl_private[FP_KLEN] = (uint64_t)k->len | (uint64_t)k->nsgen << 32;
	/* The generation and when the owner was last probed, as an offset
	 * from joining, share one word. */
	out->fl_private[FP_GEN] = f->gen |
		(uint64_t)(uint32_t)(f->checked - f->joined) << 32;
}

static void
flight_load(struct mlc_cache *c, const struct mlc_flight *in,
	    struct mlc__fl *f, struct mlc__key *k)
{
	f->role = in->role;
	f->slot = in->fl_private0;
	f->hash = in->fl_private[FP_HASH];
	f->token = in->fl_private[FP_TOKEN];
	f->joined = in->fl_private[FP_JOINED];
	f->gen = (uint32_t)in->fl_private[FP_GEN];
	f->checked = f->joined + (in->fl_private[FP_GEN] >> 32);
	k->data = (const void *)(uintptr_t)in->fl_private[FP_KEY];
	k->len = (uint32_t)in->fl_private[FP_KLEN];
	k->nsgen = (uint32_t)(in->fl_private[FP_KLEN] >> 32);
	k->ns = c->ns_idx;
	mlc__key_hash(c->a, k);
}

static bool
flight_valid(struct mlc_cache *c, const struct mlc_flight *fl)
{
	return handle_check(c) == 0 && fl != NULL &&
	       (fl->role == MLC_FLIGHT_LOADER || fl->role == MLC_FLIGHT_WAITER) &&
	       fl->fl_private[FP_KEY] != 0;
}

MLC_EXPORT int
mlc_flight_acquire(struct mlc_cache *c, const void *key, size_t key_len,
		   const struct mlc_call_options *opts,
		   struct mlc_flight *flight)
{
	struct mlc__key k;
	struct mlc__fl f;
	struct call cf;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (flight == NULL)
		return set_err(c, -EINVAL);
	if ((rc = call_resolve(c, opts, &cf)) < 0)
		return set_err(c, rc);
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if (loading_self(c, &k))
		return set_err(c, -EDEADLK);
	if (mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms, &f) == -EBUSY)
		c->st.duplicate_loads++;
	memset(flight, 0, sizeof(*flight));
	flight_save(flight, &f, &k, ck_pr_load_64(&c->a->hdr->ah_version));
	return 0;
}

MLC_EXPORT int
mlc_flight_wait(struct mlc_cache *c, struct mlc_flight *flight,
		uint32_t timeout_ms, struct mlc_value *value)
{
	struct mlc__key k;
	struct mlc__fl f;
	struct call cf;
	uint64_t t0;
	int rc;

	if (!flight_valid(c, flight) || value == NULL)
		return -EINVAL;
	if (flight->role == MLC_FLIGHT_LOADER)
		return 0;		/* nothing to wait for: load */
	flight_load(c, flight, &f, &k);
	call_resolve(c, NULL, &cf);
	c->st.lock_waits++;
	t0 = mlc__now_ms();
	rc = mlc__flight_wait(c->a, &f, t0 + timeout_ms, c->o.lock_lease_ms,
			      &c->st.lock_steals);
	c->st.lock_wait_ms += mlc__now_ms() - t0;
	if (rc == -EAGAIN)
		return -EAGAIN;
	if (rc == 1) {
		flight_save(flight, &f, &k,
			    ck_pr_load_64(&c->a->hdr->ah_version));
		return 0;		/* took it over: now the loader */
	}
	rc = flight_result(c, &k, &cf, f.gen, NULL, value);
	if (rc != -EAGAIN) {
		flight->role = MLC_FLIGHT_NONE;
		return rc;
	}
	/* Ended without a result (abandoned): line up again. */
	mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms, &f);
	flight_save(flight, &f, &k, ck_pr_load_64(&c->a->hdr->ah_version));
	return f.role == MLC_FLIGHT_LOADER ? 0 : -EAGAIN;
}

MLC_EXPORT int
mlc_flight_publish(struct mlc_cache *c, struct mlc_flight *flight, int result,
		   struct mlc_load *load, struct mlc_value *value)
{
	struct mlc_value tmp;
	struct mlc__key k;
	struct mlc__fl f;
	struct call cf;
	uint64_t now;
	int rc;

	if (!flight_valid(c, flight) || flight->role != MLC_FLIGHT_LOADER ||
	    load == NULL)
		return -EINVAL;
	flight_load(c, flight, &f, &k);
	call_resolve(c, NULL, &cf);
	result = load_check(result, load);
	now = mlc__now_ms();
	c->st.loads++;
	if (result >= 0) {
		rc = load_done(c, &k, &cf, load, result,
			       flight->fl_private[FP_FENCE], &f, now,
			       value ? value : &tmp);
	} else {
		load_release(load);
		rc = load_failed(c, &k, &cf, load, result, NULL, &f, now,
				 value ? value : &tmp);
	}
	if (rc == 0 && value == NULL)
		mlc_value_release(&tmp);
	mlc__flight_release(c->a, &f);
	flight->role = MLC_FLIGHT_NONE;
	return rc;
}

MLC_EXPORT int
mlc_flight_abandon(struct mlc_cache *c, struct mlc_flight *flight)
{
	struct mlc__key k;
	struct mlc__fl f;

	if (!flight_valid(c, flight))
		return -EINVAL;
	flight_load(c, flight, &f, &k);
	if (f.role == MLC_FLIGHT_LOADER)
		mlc__flight_release(c->a, &f);
	else
		mlc__flight_leave(c->a, &f);
	flight->role = MLC_FLIGHT_NONE;
	return 0;
}
