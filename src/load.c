/*
 * The loader (L3) and single flight: one process runs the loader while the
 * others wait, then find its result in L2 or in an outcome record; and the
 * single-flight steps, exported for callers that run their loader
 * themselves (the Lua binding).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cache.h"
#include "pause.h"

#define MAX_NESTED_LOADS 8
#define OUTCOME_TTL 5000	/* how long waiters can find an outcome */

/* The keys this thread is loading inside mlc_get(): a loader asking for
 * its own key would wait for itself.  The arena is named by its seed (64
 * random bits drawn at its creation), not by the handle: a second handle
 * on the same arena maps it again (a loader asking through it waited out
 * lock_timeout, then failed with -ETIMEDOUT). */
static __thread struct {
	uint64_t seed;
	uint64_t hash;
	uint32_t ns;
} loading[MAX_NESTED_LOADS];
static __thread int nloading;

/* Serve @p stale, flagged so, or fail with @p rc (its message set). */
int
mlc__serve_stale_or(struct mlc_cache *c, struct mlc__ent *stale, int rc,
		    uint64_t now, struct mlc_value *value)
{
	if (stale == NULL)
		return rc;
	stale->flags |= MLC_STALE;
	c->st.stale_served++;
	return mlc__ent_deliver(c, stale, false, MLC_L2, now, value);
}

/* ---- outcome records: what waiters read when L2 holds no result -------- */

/* OUT_UNSHARED: the load's value was too large for a record (over
 * value_max, so L2 could not hold it either).  Its waiters load it
 * themselves at once (mlc__flight_result() says MLC__UNSHARED), and until
 * the record expires a caller that finds a load of the key under way
 * loads too instead of waiting for a value it could not be given
 * (unshared_lately()).  Before, each waiter took the flight in turn and
 * loaded, and after ACQUIRE_ROUNDS the rest loaded at once: 8 processes
 * waited up to 6 loader run times. */
enum outcome_kind { OUT_ERROR = 1, OUT_VALUE = 2, OUT_UNSHARED = 3 };

struct outcome {
	uint32_t kind;
	int32_t err;
	uint32_t nsgen;		/* the key's namespace generation */
	uint32_t flags;		/* enum mlc_value_flags of a value */
	uint64_t flight;	/* the flight it came from (mlc__flight_id());
				 * 0: a load outside the table */
	uint64_t fence;		/* the index version when the load began */
	uint64_t until;		/* OUT_ERROR: the err_ttl back-off ends (0:
				 * none); OUT_VALUE: the value expires (0:
				 * never) */
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

/* Leave outcome @p o of flight @p f for its waiters, if the caller still
 * owns the flight (a load outside the table always does): a late owner,
 * its lease taken over, would replace the taker's record, whose waiters
 * would then load again. */
static void
outcome_write(struct mlc_cache *c, const struct mlc__key *k,
	      const struct mlc__fl *f, const struct outcome *o,
	      const void *bytes, size_t len, uint64_t now)
{
	struct mlc__key ok;
	struct mlc__put put;
	size_t fixed = sizeof(*o) + k->len + 3 + MLC__ITEM_HDR;
	struct outcome un;
	char *kb, *buf;
	uint64_t ttl = OUTCOME_TTL;

	if (o->kind == OUT_ERROR && o->until > now && o->until - now > ttl)
		ttl = o->until - now;
	if (fixed > c->a->page_size)
		return;			/* no record fits: they line up again */
	if (len > c->a->page_size - fixed) {
		if (o->kind == OUT_ERROR) {
			len = c->a->page_size - fixed;	/* message cut */
		} else {
			/* A value no record holds: the waiters learn to
			 * load it. */
			un = *o;
			un.kind = OUT_UNSHARED;
			un.until = now + OUTCOME_TTL;
			o = &un;
			len = 0;
		}
	}
	if (!mlc__flight_mine(c->a, f))
		return;
	if (!outcome_key(c, k, &kb, &ok))
		return;
	buf = malloc(sizeof(*o) + len);
	if (buf != NULL) {
		memcpy(buf, o, sizeof(*o));
		if (len)
			memcpy(buf + sizeof(*o), bytes, len);
		mlc__l2_store_owned(c, &ok, buf, sizeof(*o) + len, 0,
				    now + ttl, 0, MLC__CAS_NONE, 0, f, &put);
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
	rc = mlc__l2_read(c, &ok, &e);
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

/* May outcome @p o answer a get of @p k now?  Not after a purge of the
 * namespace since the load began, and a value not after a set, delete or
 * eviction of the key since either: it would reach a get that began after
 * the change returned (a waiter that joined the flight then) as a value
 * older than the change.  The table is asked under the stripe locks, as
 * for a loader's failed store (store_checked()); a lock that fails proves
 * nothing, and the value is not served (the waiter lines up again).  The
 * locks are waited for, not only tried: the waiters of one flight check
 * at once, and a try lost to another waiter refused the value to them (a
 * stopped writer holding a stripe delays this as it delays a store).
 * An error is not data a change makes old: it stands
 * (for the flight's waiters, and as the err_ttl_ms back-off) until a
 * purge, for the table's answer is conservative (a stripe remembers the
 * newest version that left it, whichever key), and in an arena that
 * evicts all the time it would end the back-off at almost every get. */
static bool
outcome_current(struct mlc_cache *c, const struct mlc__key *k,
		const struct outcome *o, uint64_t now)
{
	if (o->nsgen != ck_pr_load_32(&c->ns->ns_gen))
		return false;
	return o->kind != OUT_VALUE ||
	       mlc__table_changed_since(c->a, k, o->fence, now) == 0;
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
		return mlc__serve_stale_or(c, stale, 0, now, value);
	if (stale != NULL)
		mlc__ent_put(stale);
	return MLC_ELOADER;
}

/* If a load of @p k failed within err_ttl_ms (and the namespace was not
 * purged since, nor the back-off ended by a stored load), the shared
 * error's entry (*@p ep, the caller consumes it with outcome_error()),
 * counted as an err_ttl hit: the call answers as that load did instead of
 * loading, so as not to hammer the backend.  Else false.  Only handles
 * with err_ttl_ms look. */
static bool
backoff_live(struct mlc_cache *c, const struct mlc__key *k,
	     struct mlc__ent **ep)
{
	struct outcome o;
	uint64_t now;

	if (c->o.err_ttl_ms <= 0 || outcome_read(c, k, &o, ep) < 0)
		return false;
	now = mlc__now_ms();
	if (o.kind == OUT_ERROR && o.until > now &&
	    outcome_current(c, k, &o, now)) {
		c->st.err_ttl_hits++;
		return true;
	}
	mlc__ent_put(*ep);
	return false;
}

/* ---- loads ------------------------------------------------------------ */

bool
mlc__loading_self(const struct mlc_cache *c, const struct mlc__key *k)
{
	for (int i = 0; i < nloading; i++)
		if (loading[i].seed == c->a->seed && loading[i].ns == k->ns &&
		    loading[i].hash == k->hash)
			return true;
	return false;
}

/* Check what a loader returned; a malformed result becomes an error. */
int
mlc__load_check(int r, struct mlc_load *ld)
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
	loading[nloading].seed = c->a->seed;
	loading[nloading].ns = k->ns;
	loading[nloading].hash = k->hash;
	nloading++;
	r = loader(arg, k->data, k->len, ld);
	nloading--;
	c->st.loads++;
	c->call_loads++;
	return mlc__load_check(r, ld);
}

void
mlc__load_release(struct mlc_load *ld)
{
	if (ld->release != NULL && ld->data != NULL)
		ld->release((void *)ld->data);
	ld->release = NULL;
	ld->data = NULL;
}

/* What a loader's store of @p e answered (@p rc; a failure flags @p e
 * MLC_L2_WRITE_FAILED), made to say MLC_ESTALE where the key changed after
 * @p fence in a way the store could not see:
 * - a purge since the key's namespace generation was read: a stored item
 *   is one no reader sees, and neither may L1 keep the value;
 * - it failed (no room, a value over a page) before comparing versions,
 *   and the value would otherwise stay in this handle's L1 ("L1 only")
 *   and go to the waiters: the table is asked what the store would have
 *   answered, and whether it holds a fresh value the copy would hide
 *   (one set between this call's look at L2 and its fence).
 * Without them a value older than a set, delete or purge could outlive
 * the record that announced the change: this handle may have applied
 * that record already, during the load (a loader's own calls on the
 * handle, or, with the flight steps, other requests between acquire and
 * publish), so no later record would drop the value. */
static int
store_checked(struct mlc_cache *c, const struct mlc__key *k,
	      struct mlc__ent *e, int rc, uint64_t fence, uint64_t now)
{
	int changed = 0;

	c->writes++;		/* a store was tried: l1_mark() */
	if (rc == MLC_ESTALE)
		return rc;		/* counted by the store */
	if (rc < 0)
		e->flags |= MLC_L2_WRITE_FAILED;
	if (ck_pr_load_32(&c->ns->ns_gen) != k->nsgen)
		changed = 1;
	else if (rc < 0)
		changed = mlc__table_changed_since(c->a, k, fence, now);
	if (changed == 0)
		return rc;
	/* A stripe lock that failed (changed < 0) proves nothing either
	 * way: the value stays out of L1, but nothing was fenced (the
	 * store's failure is counted already). */
	if (changed > 0)
		c->st.fenced_writes++;
	return MLC_ESTALE;
}

/* The loader failed with @p r: leave the outcome for waiters, then serve
 * the stale value re-stored for resurrect_ttl when allowed, else fail.
 * The re-store is fenced like a loader's store (@p fence): a set or
 * delete made while the loader was failing wins over the stale value. */
static int
load_failed(struct mlc_cache *c, const struct mlc__key *k,
	    const struct call *cf, struct mlc_load *ld, int r, uint64_t fence,
	    struct mlc__ent *stale, const struct mlc__fl *f, uint64_t now,
	    struct mlc_value *value)
{
	struct outcome o = { .kind = OUT_ERROR, .err = r,
			     .flight = mlc__flight_id(f), .nsgen = k->nsgen,
			     .fence = fence };
	struct mlc__put put;
	bool record;
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
	record = f->slot != 0 || o.until;	/* waiters, or the back-off */
	if (stale != NULL && cf->resurrect_ttl > 0) {
		/* Resurrect: the stale value goes back to L2, flagged stale,
		 * so every process serves it while the backend is down. */
		struct mlc__ent *fresh;
		int rc;

		stale->expire = expire_at(cf->resurrect_ttl, now);
		stale->flags = (stale->flags & MLC_NEGATIVE) | MLC_STALE;
		if (!mlc__flight_mine(c->a, f)) {
			/* Our lease was taken over: the taker's load decides
			 * what L2 holds.  A re-store would be a version above
			 * its fence, refusing its value, and would put the
			 * stale one back for every process while the backend
			 * answers (a review found it).  This caller's only. */
			c->st.fenced_writes++;
			stale->flags |= MLC_NOT_CACHED;
			c->st.stale_served++;
			return mlc__ent_deliver(c, stale, false, MLC_L2, now,
						value);
		}
		/* Over the very item it was read from (a compare-and-set on
		 * its version), not only after the fence: a set or delete
		 * between this call's L2 read and its fence (a wait for
		 * another's flight, a takeover) is below the fence, and the
		 * stale value would replace the set's or bring back what the
		 * delete removed. */
		MLC_PAUSE(LOAD_OWNED);
		rc = mlc__l2_store_owned(c, k, mlc__ent_value(stale),
					 stale->vlen, MLC__IT_STALE |
					 (stale->flags & MLC_NEGATIVE ?
					  MLC__IT_NEG : 0),
					 stale->expire, fence,
					 MLC__CAS_VERSION, stale->version,
					 f, &put);
		rc = store_checked(c, k, stale, rc, fence, now);
		if (record)
			outcome_write(c, k, f, &o, c->err, mlen, now);
		if (rc == MLC_ESTALE) {
			/* Set, deleted or purged while we loaded (or our
			 * flight taken over since our look): a newer
			 * value, if L2 has one, answers; else the stale one,
			 * to this caller only (its get began before the
			 * change).  Read under the namespace's generation
			 * now, never the purged one the load began in. */
			struct mlc__key now_k = *k;

			key_l2(c, &now_k);
			rc = mlc__l2_read(c, &now_k, &fresh);
			if (rc == 0 && !ent_expired(fresh, now)) {
				mlc__ent_put(stale);
				return mlc__l2_hit(c, fresh, now, value);
			}
			if (rc == 0)
				mlc__ent_put(fresh);
			stale->flags |= MLC_NOT_CACHED;
			c->st.stale_served++;
			return mlc__ent_deliver(c, stale, false, MLC_L2, now,
						value);
		}
		if (rc == 0)
			stale->version = put.version;	/* else L1 only */
		c->st.stale_served++;
		return mlc__ent_deliver(c, stale, true, MLC_L2, now, value);
	}
	if (record)
		outcome_write(c, k, f, &o, c->err, mlen, now);
	if (stale != NULL)
		mlc__ent_put(stale);
	return MLC_ELOADER;
}

/* A load of @p k, the owner of flight @p f, stored its value: an error
 * record's back-off (err_ttl_ms) ends, for that error is no longer what
 * the key's last load answered.  Before (review S), a refresh or a
 * flight-steps publish that stored a value after a failure left the
 * record standing, and once the value expired a get long after the
 * success got the old error without calling the loader, until err_ttl_ms
 * ran out.  The record is replaced by one of no flight (no waiter takes
 * it) with no back-off, only while @p f is still ours (outcome_write()):
 * an owner stopped here past its lease and taken over wrote over the
 * taker's error record, its waiters' answer and its back-off, and the
 * next get called the failing backend again (test-flight
 * test_late_owner_keeps_backoff, review AJ). */
static void
backoff_end(struct mlc_cache *c, const struct mlc__key *k,
	    const struct mlc__fl *f, uint64_t now)
{
	struct mlc__ent *e;
	struct outcome o;

	/* Only a handle that uses the back-off pays the read, as only such
	 * a handle looks for it before a load (mlc__get_load()): a load
	 * that stores is the miss path, and the read one more L2 lookup. */
	if (c->o.err_ttl_ms <= 0 || outcome_read(c, k, &o, &e) < 0)
		return;
	mlc__ent_put(e);
	if (o.kind != OUT_ERROR || o.until <= now)
		return;
	o.flight = 0;
	o.until = 0;
	outcome_write(c, k, f, &o, "", 0, now);
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
	bool cache = !(ld->flags & MLC_LOAD_NO_CACHE), fenced = false;
	struct mlc__ent *e;
	struct mlc__put put;
	int rc = 0;

	e = mlc__ent_from(k, ld->data, ld->len, neg, expire, 0);
	mlc__load_release(ld);
	if (e == NULL)
		return mlc__set_err(c, -ENOMEM);
	if (cache && !mlc__flight_mine(c->a, f)) {
		c->st.fenced_writes++;		/* our lease was taken over */
		cache = false;
		fenced = true;
	}
	if (cache) {
		MLC_PAUSE(LOAD_OWNED);
		rc = mlc__l2_store_owned(c, k, neg ? NULL : mlc__ent_value(e),
					 e->vlen, neg ? MLC__IT_NEG : 0,
					 expire, fence, MLC__CAS_NONE, 0,
					 f, &put);
		rc = store_checked(c, k, e, rc, fence, now);
		if (rc == MLC_ESTALE) {
			/* Set, deleted or purged meanwhile, or our flight
			 * taken over (table.c, put_linked()). */
			cache = false;
			fenced = true;
		} else if (rc == 0) {
			e->version = put.version;
			MLC_PAUSE(LOAD_KEPT);
			backoff_end(c, k, f, now);
		}			/* else L1 only */
	}
	if (!cache || rc < 0) {
		struct outcome o = { .kind = OUT_VALUE,
				     .flight = mlc__flight_id(f),
				     .flags = e->flags & MLC_NEGATIVE,
				     .nsgen = k->nsgen, .fence = fence,
				     .until = e->expire };

		if (!cache)
			e->flags |= MLC_NOT_CACHED;
		/* A fenced load is older than some set or delete of the key:
		 * it is this caller's answer (its get began before that
		 * change), never the flight's, for a waiter may have begun
		 * after the change returned.  Waiters re-read L2, or load. */
		if (f->slot != 0 && !fenced)
			outcome_write(c, k, f, &o, mlc__ent_value(e), e->vlen,
				      now);
	}
	return mlc__ent_deliver(c, e, cache, MLC_L3, now, value);
}

/* Run the loader as the flight's owner (or without a flight) and end the
 * flight.  Consumes @p stale. */
int
mlc__load_and_publish(struct mlc_cache *c, const struct mlc__key *k,
		      const struct call *cf, mlc_loader_fn *loader, void *arg,
		      struct mlc__ent *stale, struct mlc__fl *f,
		      struct mlc_value *value)
{
	uint64_t fence = ck_pr_load_64(&c->a->hdr->ah_version);
	struct mlc_load ld;
	uint64_t now;
	int r, rc;

	/* The store's lines come in while the loader runs. */
	mlc__table_prefetch_put(c->a, k->hash);
	r = run_loader(c, k, loader, arg, &ld);
	MLC_PAUSE(LOAD_RETURNED);
	now = mlc__now_ms();
	if (r >= 0) {
		if (stale != NULL)
			mlc__ent_put(stale);
		rc = load_done(c, k, cf, &ld, r, fence, f, now, value);
	} else {
		mlc__load_release(&ld);	/* the error wins over any value */
		rc = load_failed(c, k, cf, &ld, r, fence, stale, f, now,
				 value);
	}
	MLC_PAUSE(LOAD_STORED);
	mlc__flight_release(c->a, f);
	return rc;
}

/* Did a load of @p k lately find its value too large to share (an
 * OUT_UNSHARED record, unexpired, of the namespace's generation now)?
 * Then a caller about to wait for a load of it loads instead. */
static bool
unshared_lately(struct mlc_cache *c, const struct mlc__key *k)
{
	struct mlc__ent *e;
	struct outcome o;

	if (outcome_read(c, k, &o, &e) < 0)
		return false;
	mlc__ent_put(e);
	return o.kind == OUT_UNSHARED && o.until > mlc__now_ms() &&
	       o.nsgen == ck_pr_load_32(&c->ns->ns_gen);
}

/* The time a waiter judges a result expiring at @p expire by, and ages
 * it from: now, or if it expired since its flight ended (@p ended, 0 if
 * unknown), that end.  Its get began before then: the result answers it,
 * with the TTL it had left then.  Before, the waiter lined up again, and
 * with TTLs of about a tick of the coarse clock round after round ended
 * so, until it loaded beside the next flight's owner. */
static uint64_t
judged_at(uint64_t expire, uint64_t ended, uint64_t now)
{
	return expire != 0 && expire <= now && ended != 0 ? ended : now;
}

/* A waiter's flight @p f ended: the result is in L2, or in the outcome
 * record.  A refresh (@p refresh) takes from L2 only a load's value: newer
 * than version @p before, the one it replaces, and not a stale value put
 * back by a failed load (resurrect_ttl_ms): then the load's error is the
 * answer.  0 with *value, MLC_ELOADER, or -EAGAIN (no result: try
 * again). */
int
mlc__flight_result(struct mlc_cache *c, const struct mlc__key *k,
		   const struct call *cf, const struct mlc__fl *f,
		   bool refresh, uint64_t before, struct mlc__ent *stale,
		   struct mlc_value *value)
{
	uint64_t now = mlc__now_ms(), at;
	struct mlc__ent *e;
	struct outcome o;

	if (mlc__l2_read(c, k, &e) == 0) {
		at = judged_at(e->expire, f->ended, now);
		if (!ent_expired(e, at) &&
		    (!refresh || (e->version > before &&
				  !(e->flags & MLC_STALE)))) {
			if (stale != NULL)
				mlc__ent_put(stale);
			/* L1 takes it only while it lives. */
			return mlc__ent_deliver(c, e, at == now, MLC_L2, at,
						value);
		}
		mlc__ent_put(e);
	}
	if (outcome_read(c, k, &o, &e) < 0)
		return -EAGAIN;
	if (o.flight != mlc__flight_id(f)) {
		mlc__ent_put(e);
		return -EAGAIN;
	}
	if (o.kind == OUT_UNSHARED) {
		mlc__ent_put(e);	/* a load of its own: nothing goes old */
		return MLC__UNSHARED;
	}
	if (!outcome_current(c, k, &o, now)) {
		mlc__ent_put(e);
		return -EAGAIN;
	}
	if (o.kind == OUT_VALUE) {
		struct mlc__ent *v;

		at = judged_at(o.until, f->ended, now);
		if (o.until != 0 && o.until <= at) {
			/* Expired before its flight ended: no result, as
			 * for an expired item (a waiter got it with ttl_ms
			 * 0 and no MLC_STALE: a review found it). */
			mlc__ent_put(e);
			return -EAGAIN;
		}

		v = mlc__ent_from(k, mlc__ent_value(e) + sizeof(o),
				  e->vlen - sizeof(o), o.flags & MLC_NEGATIVE,
				  o.until, 0);
		mlc__ent_put(e);
		if (stale != NULL)
			mlc__ent_put(stale);
		if (v == NULL)
			return mlc__set_err(c, -ENOMEM);
		/* The loader's expiry, as its own caller got it (before,
		 * none: ttl_ms "never" without MLC_NO_EXPIRY). */
		v->flags = (uint16_t)(o.flags | MLC_NOT_CACHED |
				      (o.until == 0 ? MLC_NO_EXPIRY : 0));
		return mlc__ent_deliver(c, v, false, MLC_L2, at, value);
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
		return mlc__load_and_publish(c, k, cf, loader, arg, stale,
					     &none, value);
	case MLC_LOCK_STALE:
		if (stale != NULL)
			return mlc__serve_stale_or(c, stale, 0, mlc__now_ms(),
						   value);
		/* fall through */
	default:
		if (stale != NULL)
			mlc__ent_put(stale);
		return mlc__set_err(c, -ETIMEDOUT);
	}
}

/* The flight of @p k is ours (claimed, or taken over from an owner that
 * died or overran its lease): load, unless L2 has the value now.  Another
 * process may have stored it just before we claimed, or the owner we took
 * over from may have died after its store, in its release (pause point
 * FLIGHT_RELEASING): a load then would be one more for nothing. */
static int
load_claimed(struct mlc_cache *c, const struct mlc__key *k,
	     const struct call *cf, mlc_loader_fn *loader, void *arg,
	     struct mlc__ent *stale, struct mlc__fl *f, struct mlc_value *value)
{
	struct mlc__ent *e;

	if (mlc__l2_read(c, k, &e) == 0) {
		uint64_t now = mlc__now_ms();

		if (!ent_expired(e, now)) {
			mlc__flight_release(c->a, f);
			if (stale != NULL)
				mlc__ent_put(stale);
			return mlc__l2_hit(c, e, now, value);
		}
		mlc__ent_put(e);
	}
	return mlc__load_and_publish(c, k, cf, loader, arg, stale, f, value);
}

/* Miss in L1 and L2 (or only a stale value): load under single flight. */
int
mlc__get_load(struct mlc_cache *c, const struct mlc__key *key,
	      const struct call *cf, mlc_loader_fn *loader, void *arg,
	      struct mlc__ent *stale, struct mlc_value *value)
{
	uint64_t until = mlc__now_ms() + cf->lock_timeout;
	uint32_t lease = c->o.lock_lease_ms;
	struct mlc__key kr = *key, *k = &kr;
	struct mlc__ent *e;
	struct mlc__fl f;

	if (backoff_live(c, k, &e))
		return outcome_error(c, e, cf, stale, mlc__now_ms(), value);
	for (int round = 0; round < ACQUIRE_ROUNDS; round++) {
		uint64_t t0;
		int rc;

		if (round > 0)
			stale = mlc__key_l2_again(c, k, stale);
		if (mlc__flight_acquire(c->a, k->hash, lease, &f) == -EBUSY) {
			c->st.duplicate_loads++;
			return mlc__load_and_publish(c, k, cf, loader, arg,
						     stale, &f, value);
		}
		if (f.role == MLC_FLIGHT_LOADER)
			return load_claimed(c, k, cf, loader, arg, stale, &f,
					    value);
		if (stale != NULL && (cf->flags & MLC_CALL_SWR)) {
			/* Another process refreshes it: serve stale now. */
			mlc__flight_leave(c->a, &f);
			return mlc__serve_stale_or(c, stale, 0, mlc__now_ms(),
						   value);
		}
		if (unshared_lately(c, k)) {
			/* Its value would not reach us: load it now. */
			mlc__flight_leave(c->a, &f);
			stale = mlc__key_l2_again(c, k, stale);
			return mlc__load_alone(c, k, cf, loader, arg, stale,
					       value);
		}
		c->st.lock_waits++;
		t0 = mlc__now_ms();
		rc = mlc__flight_wait(c->a, &f, until, lease,
				      &c->st.lock_steals);
		c->st.lock_wait_ms += mlc__now_ms() - t0;
		if (rc == 1)
			return load_claimed(c, k, cf, loader, arg, stale, &f,
					    value);
		if (rc == -EAGAIN) {
			mlc__flight_leave(c->a, &f);
			return lock_timed_out(c, k, cf, loader, arg, stale,
					      value);
		}
		rc = mlc__flight_result(c, k, cf, &f, false, 0, stale, value);
		if (rc == MLC__UNSHARED)
			break;		/* load it ourselves, now */
		if (rc != -EAGAIN)
			return rc;
	}
	/* The key kept changing hands without a result, or its value could
	 * not be shared: load ourselves. */
	stale = mlc__key_l2_again(c, k, stale);
	return mlc__load_alone(c, k, cf, loader, arg, stale, value);
}

/* A new round of a load's flight after a round without a result: if the
 * namespace was purged since @p k's generation was read, read it again.
 * The round ended without a result because the owner's store was refused,
 * its load having begun before the purge, and every store under the old
 * generation will be, so each waiter would load in turn, and then all at
 * once (mlc__load_alone()): a purge of a hot key made a herd.  What the
 * call has read from the old generation goes: a stale value to fall back
 * on is one the purge removed, and must not come back under the new one.
 * @return @p stale, or NULL if dropped. */
struct mlc__ent *
mlc__key_l2_again(struct mlc_cache *c, struct mlc__key *k,
		  struct mlc__ent *stale)
{
	uint32_t g = ck_pr_load_32(&c->ns->ns_gen);

	if (g == k->nsgen)
		return stale;
	k->nsgen = g;
	if (stale != NULL)
		mlc__ent_put(stale);
	return NULL;
}

/* Load @p k outside single flight (counted as a duplicate load): after
 * rounds in which the key kept changing hands without a result. */
int
mlc__load_alone(struct mlc_cache *c, const struct mlc__key *k,
		const struct call *cf, mlc_loader_fn *loader, void *arg,
		struct mlc__ent *stale, struct mlc_value *value)
{
	struct mlc__fl f = { .role = MLC_FLIGHT_LOADER };

	c->st.duplicate_loads++;
	return mlc__load_and_publish(c, k, cf, loader, arg, stale, &f, value);
}

/* ---- the single-flight steps, exported --------------------------------- */

/* struct mlc_flight's private words. */
enum { FP_HASH, FP_TOKEN, FP_JOINED, FP_FENCE, FP_KEY, FP_KLEN, FP_GEN };
#define FP_GEN_MASK ((UINT64_C(1) << 40) - 1)
#define FP_CHECKED_MAX ((UINT64_C(1) << 24) - 1)

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
	/* The generation (40 bits) and when the owner was last probed, as
	 * milliseconds after joining (24 bits, saturated), share one word. */
	out->fl_private[FP_GEN] = f->gen |
		MLC_MIN(f->checked - f->joined, FP_CHECKED_MAX) << 40;
}

/* Take ticket @p in on handle @p c: false unless it is in a flight (role
 * LOADER or WAITER, a key) of this handle's arena and namespace, which its
 * key hashed here tells: the hash it was acquired with (a ticket acquired
 * on a handle of another namespace or arena would publish its key's value
 * under this one's, and end the other flight).  Else *@p f and *@p k. */
static bool
flight_take(struct mlc_cache *c, const struct mlc_flight *in,
	    struct mlc__fl *f, struct mlc__key *k)
{
	if (mlc__handle_check(c) < 0 || in == NULL ||
	    (in->role != MLC_FLIGHT_LOADER && in->role != MLC_FLIGHT_WAITER) ||
	    in->fl_private[FP_KEY] == 0 ||
	    (uint32_t)in->fl_private[FP_KLEN] == 0 ||
	    (uint32_t)in->fl_private[FP_KLEN] > MLC_KEY_MAX)
		return false;
	f->role = in->role;
	f->slot = in->fl_private0;
	f->hash = in->fl_private[FP_HASH];
	f->token = in->fl_private[FP_TOKEN];
	f->joined = in->fl_private[FP_JOINED];
	f->gen = in->fl_private[FP_GEN] & FP_GEN_MASK;
	f->checked = f->joined + (in->fl_private[FP_GEN] >> 40);
	f->ended = 0;
	k->data = (const void *)(uintptr_t)in->fl_private[FP_KEY];
	k->len = (uint32_t)in->fl_private[FP_KLEN];
	k->nsgen = (uint32_t)(in->fl_private[FP_KLEN] >> 32);
	k->ns = c->ns_idx;
	mlc__key_hash(c->a, k);
	return k->hash == f->hash;
}

MLC_EXPORT int
mlc_flight_acquire(struct mlc_cache *c, const void *key, size_t key_len,
		   const struct mlc_call_options *opts,
		   struct mlc_flight *flight)
{
	struct mlc__key k;
	struct mlc__ent *e;
	struct mlc__fl f;
	struct call cf;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if (flight == NULL)
		return mlc__set_err(c, -EINVAL);
	if ((rc = mlc__call_resolve(c, opts, &cf)) < 0)
		return mlc__set_err(c, rc);
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if (mlc__loading_self(c, &k))
		return mlc__set_err(c, -EDEADLK);
	memset(flight, 0, sizeof(*flight));	/* role NONE */
	/* As mlc_get() does: within an error's err_ttl_ms, no flight */
	if (backoff_live(c, &k, &e))
		return outcome_error(c, e, &cf, NULL, 0, NULL);
	if (mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms, &f) == -EBUSY)
		c->st.duplicate_loads++;
	flight_save(flight, &f, &k, ck_pr_load_64(&c->a->hdr->ah_version));
	return 0;
}

/* The ticket's waiter loads outside the flight: its value, too large to
 * share, would not reach it (OUT_UNSHARED).  @p f is no longer in the
 * flight; the ticket becomes a loader's outside the table, whose publish
 * stores (or tries to) and releases nothing. */
static int
flight_alone(struct mlc_cache *c, struct mlc_flight *flight,
	     struct mlc__fl *f, const struct mlc__key *k)
{
	c->st.duplicate_loads++;
	f->role = MLC_FLIGHT_LOADER;
	f->slot = 0;
	flight_save(flight, f, k, ck_pr_load_64(&c->a->hdr->ah_version));
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

	if (!flight_take(c, flight, &f, &k) || value == NULL)
		return mlc__refuse(c);
	if (f.role == MLC_FLIGHT_LOADER)
		return 0;		/* nothing to wait for: load */
	mlc__call_resolve(c, NULL, &cf);
	if (unshared_lately(c, &k)) {
		/* Its value would not reach us: load it now. */
		mlc__flight_leave(c->a, &f);
		key_l2(c, &k);
		return flight_alone(c, flight, &f, &k);
	}
	c->st.lock_waits++;
	t0 = mlc__now_ms();
	rc = mlc__flight_wait(c->a, &f, t0 + timeout_ms, c->o.lock_lease_ms,
			      &c->st.lock_steals);
	c->st.lock_wait_ms += mlc__now_ms() - t0;
	if (rc == -EAGAIN) {
		/* Still waiting: the ticket keeps when the owner was last
		 * probed, or each poll probed it (review S). */
		flight_save(flight, &f, &k, flight->fl_private[FP_FENCE]);
		return -EAGAIN;
	}
	/* The namespace's generation now, not at acquire: this handle may
	 * have applied a purge since (another request's call).  A result of
	 * the purged generation read now would outlive it in L1; a takeover
	 * loading under it would fence its own load out for nothing. */
	key_l2(c, &k);
	if (rc == 1) {
		flight_save(flight, &f, &k,
			    ck_pr_load_64(&c->a->hdr->ah_version));
		return 0;		/* took it over: now the loader */
	}
	rc = mlc__flight_result(c, &k, &cf, &f, false, 0, NULL, value);
	if (rc == MLC__UNSHARED)
		return flight_alone(c, flight, &f, &k);
	if (rc != -EAGAIN) {
		/* The lookup ends here: another's outcome answered it. */
		mlc__count_lookup(c, rc, value, false);
		flight->role = MLC_FLIGHT_NONE;
		return rc;
	}
	/* Ended without a result (abandoned): line up again. */
	if (mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms, &f) == -EBUSY)
		c->st.duplicate_loads++;	/* loads outside the table */
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

	if (load == NULL)
		return mlc__refuse(c);
	if (!flight_take(c, flight, &f, &k) || f.role != MLC_FLIGHT_LOADER) {
		/* A load with a release is taken whatever the answer, as a
		 * loader's is: a refused ticket's caller handed its buffer
		 * over too, and it leaked (review W).  One without is left
		 * as it was, for a publish of it on the right handle. */
		if (load->release != NULL)
			mlc__load_release(load);
		return mlc__refuse(c);
	}
	mlc__call_resolve(c, NULL, &cf);
	result = mlc__load_check(result, load);
	now = mlc__now_ms();
	c->st.loads++;
	if (result >= 0) {
		rc = load_done(c, &k, &cf, load, result,
			       flight->fl_private[FP_FENCE], &f, now,
			       value ? value : &tmp);
	} else {
		mlc__load_release(load);
		rc = load_failed(c, &k, &cf, load, result,
				 flight->fl_private[FP_FENCE], NULL, &f, now,
				 value ? value : &tmp);
	}
	mlc__count_lookup(c, rc, value ? value : &tmp, true);	/* a miss */
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

	if (!flight_take(c, flight, &f, &k))
		return mlc__refuse(c);
	if (f.role == MLC_FLIGHT_LOADER)
		mlc__flight_release(c->a, &f);
	else
		mlc__flight_leave(c->a, &f);
	flight->role = MLC_FLIGHT_NONE;
	return 0;
}
