/*
 * The get path: L1, then L2, then the loader under single flight (load.c).
 *
 * mlc_get() checks the log head (one load), then L1 (l1_fast(), inline in
 * cache.h), then L2, then runs the loader.
 */
#include <stdio.h>

#include "cache.h"

/* ---- values ----------------------------------------------------------- */

MLC_EXPORT void
mlc_value_release(struct mlc_value *v)
{
	if (v == NULL || v->ref == NULL)
		return;
	mlc__ent_put(v->ref);
	memset(v, 0, sizeof(*v));
}

/* Run the codec on a fresh entry; the bytes stay in L2 if it fails, and
 * the next lookup tries again.  1 if the decode called the cache on this
 * handle and moved its L1 (l1_mark()): the entry must not go there. */
int
mlc__ent_decode(struct mlc_cache *c, struct mlc__ent *e)
{
	struct l1_mark mark;
	int rc;

	if (!c->has_codec || (e->flags & MLC_NEGATIVE) || e->obj != NULL)
		return 0;
	mark = l1_mark(c);
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
	return l1_moved(c, mark);
}

/* Hand @p e to the caller, linking it into L1 if it may live there (not
 * after a decode that applied log records: mlc__ent_decode()).  Consumes
 * the caller's reference on @p e.
 * An entry kept out of L1 (not to be cached there, not decoded, or after
 * such a decode) takes the key's L1 entry out when @p drop_older, as
 * mlc_set() does: that one may be older than what this call stored or
 * answers (the flight steps: a publish's value stored, a waiter's read,
 * while other requests on the handle had read the key's older value into
 * L1), and a handle with MLC_CACHE_MANUAL_UPDATE, which applies the
 * records that would drop it only at its next mlc_update(), served it
 * after the call returned (review W).  Dropping a newer one costs a miss,
 * never a value. */
static int
hand_out(struct mlc_cache *c, struct mlc__ent *e, bool cache_l1,
	 bool drop_older, uint32_t level, uint64_t now,
	 struct mlc_value *value)
{
	struct mlc__ent *old;
	int rc = mlc__ent_decode(c, e);

	if (rc >= 0)
		value_fill(value, e, level, now);
	if (!(c->o.flags & MLC_CACHE_NO_L1)) {	/* else its L1 stays empty */
		if (cache_l1 && rc == 0) {
			/* takes ours, and replaces the key's older entry */
			c->st.l1_evictions += mlc__l1_insert(&c->l1, e);
			return 0;
		}
		if (drop_older &&
		    (old = mlc__l1_find(&c->l1, e->hash, e->data,
					e->klen)) != NULL)
			mlc__l1_unlink(&c->l1, old);
	}
	mlc__ent_put(e);
	return rc < 0 ? rc : 0;
}

int
mlc__ent_deliver(struct mlc_cache *c, struct mlc__ent *e, bool cache_l1,
		 uint32_t level, uint64_t now, struct mlc_value *value)
{
	return hand_out(c, e, cache_l1, true, level, now, value);
}

/* An L2 entry answers the call, and goes into L1.  The lookup is counted
 * by its caller (mlc__count_lookup), once, whatever path led here. */
int
mlc__l2_hit(struct mlc_cache *c, struct mlc__ent *e, uint64_t now,
	    struct mlc_value *value)
{
	return mlc__ent_deliver(c, e, true, MLC_L2, now, value);
}

/* A new entry holding @p data. */
struct mlc__ent *
mlc__ent_from(const struct mlc__key *k, const void *data, size_t len, bool neg,
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
int
mlc__l2_read(struct mlc_cache *c, const struct mlc__key *k,
	     struct mlc__ent **ep)
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
	return mlc__l2_read(c, k, ep);
}

/* Count one lookup the conventional way: a value this call did not load,
 * from L1 or L2 (fresh or stale, positive or negative), is a hit of that
 * level; every other lookup (it ran the loader, found nothing, or failed)
 * is a miss.  So hits_l1 + hits_l2 + misses is the number of lookups, and
 * the loader runs at most once per miss.  L1 hits are counted by l1_fast
 * itself, so that the hit path stays a few plain operations. */
void
mlc__count_lookup(struct mlc_cache *c, int rc, const struct mlc_value *v,
		  bool loaded)
{
	if (rc == 0 && !loaded) {
		if (v->level == MLC_L1)
			c->st.hits_l1++;
		else
			c->st.hits_l2++;
		if (v->flags & MLC_NEGATIVE)
			c->st.negative_hits++;
		return;
	}
	c->st.misses++;
	if (rc == 0 && v->level == MLC_L3)
		c->st.hits_l3++;	/* answered by its own load */
}

/* Everything after the L1 fast path missed: L2, then the loader. */
static int
get_slow(struct mlc_cache *c, struct mlc__key *k, const struct call *cf,
	 mlc_loader_fn *loader, void *arg, uint64_t now,
	 struct mlc_value *value)
{
	struct mlc__ent *e = NULL;
	int rc;

	key_l2(c, k);
	/* A get that may load may store: the ghost line its allocation
	 * reads comes in beside the lookup's own misses, not after. */
	if (loader != NULL)
		mlc__table_prefetch_ghost(c->a, k->hash);
	rc = mlc__l2_read(c, k, &e);
	if (rc == 0 && !ent_expired(e, now))
		return mlc__l2_hit(c, e, now, value);
	if (rc < 0 && rc != -ENOENT && rc != -ETIMEDOUT)
		return mlc__set_err(c, rc);
	if (rc != 0)
		e = NULL;		/* else an expired entry: stale */
	if (loader == NULL) {
		if (e != NULL && (cf->flags & MLC_CALL_STALE_OK))
			return mlc__serve_stale_or(c, e, 0, now, value);
		if (e != NULL)
			mlc__ent_put(e);
		return -ENOENT;
	}
	if (mlc__loading_self(c, k)) {
		if (e != NULL)
			mlc__ent_put(e);
		return mlc__set_err(c, -EDEADLK);
	}
	return mlc__get_load(c, k, cf, loader, arg, e, value);
}

int
mlc__get_slow(struct mlc_cache *c, struct mlc__key *k, const struct call *cf,
	      mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	/* This call loaded if its own loader ran: the loads of the gets a
	 * loader or a codec's decode makes on this handle are theirs, each
	 * counted by its own call (review R: a decode's get that loaded
	 * made the L2 hit it decoded for a miss, when the count looked at
	 * the handle's loads). */
	uint64_t outer = c->call_loads, now = mlc__now_ms();
	bool loaded;
	int rc;

	c->call_loads = 0;
	rc = get_slow(c, k, cf, loader, arg, now, value);
	loaded = c->call_loads != 0;
	c->call_loads = outer;
	mlc__count_lookup(c, rc, value, loaded);
	stats_due(c, now);	/* the clock was read anyway */
	return rc;
}

MLC_EXPORT int
mlc_get_ex(struct mlc_cache *c, const void *key, size_t key_len,
	   const struct mlc_call_options *opts, mlc_loader_fn *loader,
	   void *arg, struct mlc_value *value)
{
	struct mlc__key k;
	struct call cf;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if (value == NULL)
		return mlc__set_err(c, -EINVAL);
	/* Options are checked on every path, an L1 hit too; the handle's
	 * defaults are resolved only past L1, where they are used. */
	if (opts != NULL && (rc = mlc__call_resolve(c, opts, &cf)) < 0)
		return mlc__set_err(c, rc);
	log_check(c);
	key_make(c, key, key_len, &k);
	if (l1_fast(c, &k, value))
		return 0;
	if (opts == NULL)
		mlc__call_resolve(c, NULL, &cf);
	return mlc__get_slow(c, &k, &cf, loader, arg, value);
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

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if (value == NULL || (flags & ~(uint32_t)MLC_CALL_STALE_OK))
		return mlc__set_err(c, -EINVAL);
	log_check(c);
	now = mlc__now_ms();
	key_make(c, key, key_len, &k);
	rc = lookup(c, &k, now, &e, &level);
	if (rc == -ETIMEDOUT)
		rc = -ENOENT;
	if (rc < 0)
		return rc == -ENOENT ? rc : mlc__set_err(c, rc);
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
	/* No promotion: the entry goes to the caller only.  lookup() left
	 * no entry of the key in L1 (it looks there first, and unlinks an
	 * expired one): nothing older to take out, and no L1 lookup again on
	 * the L2 path (the Lua binding's gets go through it). */
	return hand_out(c, e, false, false, MLC_L2, now, value);
}
