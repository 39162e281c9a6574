/*
 * Cache handles and the L1 -> L2 -> L3 path.
 */
#include <stdio.h>
#include <stdlib.h>

#include <ck_pr.h>

#include "l1.h"
#include "mlc-int.h"

#define DEFAULT_LRU 1024
#define DEFAULT_TTL 30000
#define DEFAULT_LOCK_TIMEOUT 5000
#define DEFAULT_LEASE 30000
#define MAX_NESTED_LOADS 8

struct mlc_cache {
	struct mlc_arena *a;
	struct mlc__ns *ns;
	uint32_t ns_idx;
	uint64_t fork_gen;
	struct mlc_cache_options o;
	struct mlc_codec codec;
	bool has_codec;
	struct mlc__l1 l1;
	struct mlc_stats st;
	char err[200];
};

/* What one call works with: the handle's options overlaid with the call's. */
struct call {
	uint32_t flags;
	uint32_t lock_policy;
	int64_t ttl, neg_ttl, resurrect_ttl;
	uint32_t lock_timeout;
};

/* The keys this thread is loading right now: a loader asking for its own
 * key would wait for itself. */
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
	rc = mlc__options_copy(&o, sizeof(o), co);
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
	else if (o.ttl_ms && !c->o.neg_ttl_ms)
		cf->neg_ttl = o.ttl_ms;
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

/* ---- handles --------------------------------------------------------- */

MLC_EXPORT int
mlc_cache_open(struct mlc_cache **cachep, struct mlc_arena *arena,
	       const char *ns, const struct mlc_cache_options *opts)
{
	struct mlc_cache *c;
	int rc;

	if (cachep == NULL || arena == NULL || ns == NULL)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = mlc__options_copy(&c->o, sizeof(c->o), opts);
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
	/* In a child after fork() the L1 entries are the parent's copies,
	 * private to this process now: freeing them is still right. */
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

/* Common argument checks of every keyed call. */
static int
key_check(struct mlc_cache *c, const void *key, size_t key_len)
{
	if (c == NULL)
		return -EINVAL;
	if (unlikely(c->fork_gen != mlc__fork_gen()))
		return set_err(c, -ECHILD);
	if (key == NULL || key_len == 0)
		return set_err(c, -EINVAL);
	if (key_len > MLC_KEY_MAX)
		return set_err(c, -E2BIG);
	return 0;
}

static void
key_make(struct mlc_cache *c, const void *key, size_t key_len,
	 struct mlc__key *k)
{
	k->data = key;
	k->len = (uint32_t)key_len;
	k->ns = c->ns_idx;
	k->nsgen = ck_pr_load_32(&c->ns->ns_gen);
	mlc__key_hash(c->a, k);
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

/* Run the codec on a fresh entry; the bytes stay in L2 if it fails. */
static int
ent_decode(struct mlc_cache *c, struct mlc__ent *e)
{
	int rc;

	if (!c->has_codec || (e->flags & MLC_NEGATIVE))
		return 0;
	rc = c->codec.decode(c->codec.arg, mlc__ent_value(e), e->vlen, &e->obj);
	if (rc < 0) {
		e->obj = NULL;
		c->st.codec_errors++;
		snprintf(c->err, sizeof(c->err), "codec: decode failed (%s)",
			 mlc_strerror(rc));
		return MLC_ECODEC;
	}
	e->free_fn = c->codec.free_fn;
	e->free_arg = c->codec.arg;
	return 0;
}

/* Hand @p e to the caller, linking it into L1 first if it may live there.
 * Consumes the reference the caller had on @p e. */
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

/* ---- L2 reads ---------------------------------------------------------- */

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

/* Read @p k from L2 into a new entry (refs 1, unlinked), or NULL. */
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
		     (hit.expire == 0 ? MLC_NO_EXPIRY : 0);
	*ep = s.e;
	return 0;
}

/* ---- writes ------------------------------------------------------------ */

/* Store bytes (or a negative entry) in L2; put->version gets the version. */
static int
l2_store(struct mlc_cache *c, const struct mlc__key *k, const void *data,
	 size_t len, bool neg, uint64_t expire, struct mlc__put *put)
{
	int rc;

	if (len > UINT32_MAX)
		return -E2BIG;
	put->data = data;
	put->len = (uint32_t)len;
	put->flags = neg ? MLC__IT_NEG : 0;
	put->expire = expire;
	put->version = 0;
	rc = mlc__table_put(c->a, k, put);
	if (rc < 0)
		c->st.l2_write_failures++;
	return rc;
}

/* A new entry holding @p data, flagged as a value of @p put. */
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

MLC_EXPORT int
mlc_set(struct mlc_cache *c, const void *key, size_t key_len,
	const void *data, size_t len, const struct mlc_call_options *opts)
{
	struct mlc__key k;
	struct mlc__put put;
	struct mlc__ent *e, *old;
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
	rc = l2_store(c, &k, data, len, neg,
		      expire_at(neg ? cf.neg_ttl : cf.ttl, now), &put);
	if (rc < 0)
		return set_err(c, rc);
	c->st.sets++;
	/* This handle's L1 follows at once: the new bytes when they need no
	 * decoding, else nothing (the next get decodes from L2). */
	old = mlc__l1_find(&c->l1, k.hash, key, k.len);
	if (old != NULL)
		mlc__l1_unlink(&c->l1, old);
	if (!c->has_codec && !(c->o.flags & MLC_CACHE_NO_L1)) {
		e = ent_from(&k, data, len, neg, put.expire, put.version);
		if (e != NULL)
			c->st.l1_evictions += mlc__l1_insert(&c->l1, e);
	}
	return 0;
}

MLC_EXPORT int
mlc_delete(struct mlc_cache *c, const void *key, size_t key_len)
{
	struct mlc__ent *e;
	struct mlc__key k;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	key_make(c, key, key_len, &k);
	rc = mlc__table_del(c->a, &k);
	if (rc < 0 && rc != -ENOENT)
		return set_err(c, rc);
	e = mlc__l1_find(&c->l1, k.hash, key, k.len);
	if (e != NULL)
		mlc__l1_unlink(&c->l1, e);
	c->st.deletes++;
	return 0;
}

MLC_EXPORT int
mlc_purge(struct mlc_cache *c)
{
	if (c == NULL)
		return -EINVAL;
	if (c->fork_gen != mlc__fork_gen())
		return set_err(c, -ECHILD);
	/* One increment: every item of the old generation is a miss from
	 * now on, in every process, and the sweep reclaims them first. */
	ck_pr_inc_32(&c->ns->ns_gen);
	mlc__l1_clear(&c->l1);
	c->st.purges++;
	return 0;
}

MLC_EXPORT int
mlc_update(struct mlc_cache *c)
{
	if (c == NULL)
		return -EINVAL;
	if (c->fork_gen != mlc__fork_gen())
		return set_err(c, -ECHILD);
	return 0;
}

/* ---- lookups ------------------------------------------------------------ */

/* L1 then L2, without running a loader.  On 0 *ep is an entry the caller
 * owns a reference to, and *levelp where it came from; an expired entry is
 * returned too (the caller decides about staleness). */
static int
lookup(struct mlc_cache *c, const struct mlc__key *k, bool promote,
       uint64_t now, struct mlc__ent **ep, uint32_t *levelp)
{
	struct mlc__ent *e = mlc__l1_find(&c->l1, k->hash, k->data, k->len);
	int rc;

	if (e != NULL) {
		if (!ent_expired(e, now)) {
			if (promote)
				mlc__l1_touch(&c->l1, e);
			e->refs++;
			*ep = e;
			*levelp = MLC_L1;
			return 0;
		}
		mlc__l1_unlink(&c->l1, e);	/* L2 has the same, or newer */
	}
	rc = l2_read(c, k, ep);
	*levelp = MLC_L2;
	return rc;
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

/* Run the loader for @p k with this thread marked as its loader. */
static int
run_loader(struct mlc_cache *c, const struct mlc__key *k,
	   mlc_loader_fn *loader, void *arg, struct mlc_load *ld)
{
	int r;

	if (nloading >= MAX_NESTED_LOADS)
		return -ELOOP;
	loading[nloading].a = c->a;
	loading[nloading].ns = k->ns;
	loading[nloading].hash = k->hash;
	nloading++;
	memset(ld, 0, sizeof(*ld));
	r = loader(arg, k->data, k->len, ld);
	nloading--;
	c->st.loads++;
	return r;
}

static void
load_release(struct mlc_load *ld)
{
	if (ld->release != NULL && ld->data != NULL)
		ld->release((void *)ld->data);
	ld->release = NULL;
}

/* The loader failed: serve @p stale (re-stored for resurrect_ttl) when
 * allowed, else MLC_ELOADER with its message. */
static int
load_failed(struct mlc_cache *c, const struct mlc__key *k,
	    const struct call *cf, struct mlc_load *ld, int r,
	    struct mlc__ent *stale, uint64_t now, struct mlc_value *value)
{
	struct mlc__put put;
	bool neg;

	c->st.loader_errors++;
	ld->errmsg[sizeof(ld->errmsg) - 1] = '\0';
	if (ld->errmsg[0])
		snprintf(c->err, sizeof(c->err), "%s", ld->errmsg);
	else
		snprintf(c->err, sizeof(c->err), "loader failed: %s",
			 mlc_strerror(r < 0 ? r : -EINVAL));
	if (stale == NULL || cf->resurrect_ttl == 0)
		return MLC_ELOADER;
	neg = stale->flags & MLC_NEGATIVE;
	stale->expire = now + (uint64_t)cf->resurrect_ttl;
	stale->flags = (stale->flags & MLC_NEGATIVE) | MLC_STALE;
	if (l2_store(c, k, mlc__ent_value(stale), stale->vlen, neg,
		     stale->expire, &put) < 0)
		stale->flags |= MLC_L2_WRITE_FAILED;	/* served anyway */
	else
		stale->version = put.version;
	c->st.stale_served++;
	return ent_deliver(c, stale, true, MLC_L2, now, value);
}

/* The loader answered: store what it says and hand it out. */
static int
load_done(struct mlc_cache *c, const struct mlc__key *k,
	  const struct call *cf, struct mlc_load *ld, int r, uint64_t now,
	  struct mlc_value *value)
{
	bool neg = r == MLC_LOAD_NOTFOUND;
	int64_t ttl = ld->ttl_ms ? ld->ttl_ms : neg ? cf->neg_ttl : cf->ttl;
	uint64_t expire = expire_at(ttl, now);
	struct mlc__ent *e;
	struct mlc__put put;
	bool cache = !(ld->flags & MLC_LOAD_NO_CACHE);

	e = ent_from(k, ld->data, ld->len, neg, expire, 0);
	load_release(ld);
	if (e == NULL)
		return set_err(c, -ENOMEM);
	if (!cache) {
		e->flags |= MLC_NOT_CACHED;
	} else if (l2_store(c, k, neg ? NULL : mlc__ent_value(e), e->vlen, neg,
			    expire, &put) < 0) {
		e->flags |= MLC_L2_WRITE_FAILED;	/* L1 only */
	} else {
		e->version = put.version;
	}
	if (neg)
		c->st.negative_hits++;
	c->st.hits_l3++;
	return ent_deliver(c, e, cache, MLC_L3, now, value);
}

static int
get_miss(struct mlc_cache *c, const struct mlc__key *k, const struct call *cf,
	 mlc_loader_fn *loader, void *arg, struct mlc__ent *stale,
	 uint64_t now, struct mlc_value *value)
{
	struct mlc_load ld;
	int r, rc;

	if (loader == NULL) {
		if (stale != NULL && (cf->flags & MLC_CALL_STALE_OK)) {
			stale->flags |= MLC_STALE;
			c->st.stale_served++;
			return ent_deliver(c, stale, false, MLC_L2, now, value);
		}
		c->st.misses++;
		rc = -ENOENT;
		goto out;
	}
	if (loading_self(c, k)) {
		rc = -EDEADLK;
		goto out;
	}
	r = run_loader(c, k, loader, arg, &ld);
	if (r == MLC_LOAD_VALUE && ld.data == NULL && ld.len != 0) {
		snprintf(ld.errmsg, sizeof(ld.errmsg),
			 "loader returned NULL data with a length");
		r = -EINVAL;
	} else if ((r == MLC_LOAD_VALUE || r == MLC_LOAD_NOTFOUND) &&
		   !ttl_ok(ld.ttl_ms)) {
		snprintf(ld.errmsg, sizeof(ld.errmsg),
			 "loader returned an invalid ttl_ms");
		r = -EINVAL;
	} else if (r > MLC_LOAD_NOTFOUND) {
		snprintf(ld.errmsg, sizeof(ld.errmsg),
			 "loader returned %d, not a result", r);
		r = -EINVAL;
	}
	if (r == MLC_LOAD_VALUE || r == MLC_LOAD_NOTFOUND) {
		if (stale != NULL)
			mlc__ent_put(stale);
		return load_done(c, k, cf, &ld, r, now, value);
	}
	load_release(&ld);	/* the error wins over any value */
	rc = load_failed(c, k, cf, &ld, r, stale, now, value);
	return rc;
out:
	if (stale != NULL)
		mlc__ent_put(stale);
	if (rc < 0 && rc != -ENOENT)
		set_err(c, rc);
	return rc;
}

MLC_EXPORT int
mlc_get_ex(struct mlc_cache *c, const void *key, size_t key_len,
	   const struct mlc_call_options *opts, mlc_loader_fn *loader,
	   void *arg, struct mlc_value *value)
{
	struct mlc__ent *e;
	struct mlc__key k;
	struct call cf;
	uint32_t level;
	uint64_t now;
	int rc;

	if ((rc = key_check(c, key, key_len)) < 0)
		return rc;
	if (value == NULL)
		return set_err(c, -EINVAL);
	if ((rc = call_resolve(c, opts, &cf)) < 0)
		return set_err(c, rc);
	now = mlc__now_ms();
	key_make(c, key, key_len, &k);
	rc = lookup(c, &k, true, now, &e, &level);
	if (rc == 0 && !ent_expired(e, now)) {
		if (e->flags & MLC_NEGATIVE)
			c->st.negative_hits++;
		if (level == MLC_L1) {
			c->st.hits_l1++;
			value_fill(value, e, MLC_L1, now);
			mlc__ent_put(e);
			return 0;
		}
		c->st.hits_l2++;
		return ent_deliver(c, e, true, MLC_L2, now, value);
	}
	if (rc < 0 && rc != -ENOENT && rc != -ETIMEDOUT)
		return set_err(c, rc);
	return get_miss(c, &k, &cf, loader, arg, rc == 0 ? e : NULL, now,
			value);
}

MLC_EXPORT int
mlc_get(struct mlc_cache *c, const void *key, size_t key_len,
	mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	return mlc_get_ex(c, key, key_len, NULL, loader, arg, value);
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
	now = mlc__now_ms();
	key_make(c, key, key_len, &k);
	rc = lookup(c, &k, false, now, &e, &level);
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
	n = MLC_MIN(stats->size, sizeof(c->st));
	memcpy(stats, &c->st, n);
	stats->size = n;
	return 0;
}

/* ---- single flight (the cross-process table comes with its own issue) -- */

MLC_EXPORT int
mlc_flight_acquire(struct mlc_cache *c, const void *key, size_t key_len,
		   const struct mlc_call_options *opts,
		   struct mlc_flight *flight)
{
	(void)c; (void)key; (void)key_len; (void)opts; (void)flight;
	return -ENOSYS;
}

MLC_EXPORT int
mlc_flight_wait(struct mlc_cache *c, struct mlc_flight *flight,
		uint32_t timeout_ms, struct mlc_value *value)
{
	(void)c; (void)flight; (void)timeout_ms; (void)value;
	return -ENOSYS;
}

MLC_EXPORT int
mlc_flight_publish(struct mlc_cache *c, struct mlc_flight *flight, int result,
		   struct mlc_load *load, struct mlc_value *value)
{
	(void)c; (void)flight; (void)result; (void)load; (void)value;
	return -ENOSYS;
}

MLC_EXPORT int
mlc_flight_abandon(struct mlc_cache *c, struct mlc_flight *flight)
{
	(void)c; (void)flight;
	return -ENOSYS;
}
