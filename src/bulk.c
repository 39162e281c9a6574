/*
 * Many keys at once (mlc_get_bulk), read-modify-write (mlc_modify) and
 * reloading a key now (mlc_refresh).
 */
#include <sched.h>

#include "cache.h"

/* ---- many keys, read-modify-write, refresh ------------------------------ */

#define BULK_BATCH 32		/* keys hashed and looked up in L1 together */
#define AHEAD_BUCKETS 8		/* L2: buckets asked for this many keys ahead */
#define AHEAD_ITEMS 4		/* and items this many */

/* One batch: hash all, L1 all (its slot heads fetched ahead), then the L2
 * lookups of the misses, with their buckets and items fetched ahead. */
static void
bulk_batch(struct mlc_cache *c, struct mlc_bulk_item *it, size_t n,
	   const struct call *cf, mlc_loader_fn *loader, void *arg)
{
	struct mlc__key k[BULK_BATCH];
	bool todo[BULK_BATCH];
	uint8_t miss[BULK_BATCH];	/* the keys L1 did not answer */
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		memset(&it[i].value, 0, sizeof(it[i].value));
		todo[i] = false;
		/* A bad key fails as mlc_get() would: its status, and
		 * mlc_last_error(). */
		if (it[i].key == NULL || it[i].key_len == 0) {
			it[i].status = mlc__set_err(c, -EINVAL);
			continue;
		}
		if (it[i].key_len > MLC_KEY_MAX) {
			it[i].status = mlc__set_err(c, -E2BIG);
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
			continue;
		}
		miss[m++] = (uint8_t)i;
	}
	/* A software pipeline over the L1 misses: buckets asked for
	 * AHEAD_BUCKETS keys ahead, items (once their bucket is in)
	 * AHEAD_ITEMS ahead, the lookup itself last.  Asking for every
	 * key's lines at once would want more misses in flight than a core
	 * has buffers for, and drop most of them. */
	for (size_t j = 0; j < MLC_MIN(m, (size_t)AHEAD_BUCKETS); j++)
		mlc__table_prefetch(c->a, k[miss[j]].hash);
	for (size_t j = 0; j < MLC_MIN(m, (size_t)AHEAD_ITEMS); j++)
		mlc__table_prefetch_items(c->a, k[miss[j]].hash);
	for (size_t j = 0; j < m; j++) {
		size_t i = miss[j];

		if (j + AHEAD_BUCKETS < m)
			mlc__table_prefetch(c->a, k[miss[j + AHEAD_BUCKETS]].hash);
		if (j + AHEAD_ITEMS < m)
			mlc__table_prefetch_items(c->a,
						  k[miss[j + AHEAD_ITEMS]].hash);
		it[i].status = mlc__get_slow(c, &k[i], cf, loader, arg,
					     &it[i].value);
	}
}

MLC_EXPORT int
mlc_get_bulk(struct mlc_cache *c, struct mlc_bulk_item *items, size_t n,
	     const struct mlc_call_options *opts, mlc_loader_fn *loader,
	     void *arg)
{
	struct call cf;
	int rc;

	if (mlc__handle_check(c) < 0 || (items == NULL && n > 0))
		return mlc__refuse(c);
	if ((rc = mlc__call_resolve(c, opts, &cf)) < 0)
		return mlc__set_err(c, rc);
	/* Each batch looks at the log first, as a get does: the loads of
	 * the batches before it may have taken long. */
	for (size_t i = 0; i < n; i += BULK_BATCH) {
		log_check(c);
		bulk_batch(c, items + i, MLC_MIN(n - i, BULK_BATCH), &cf,
			   loader, arg);
	}
	return 0;
}

#define MODIFY_TRIES 1000

/* One round of mlc_modify: read, let fn decide, compare-and-set.
 * MLC_ESTALE asks for another round, unless *@p fn_said is set: then it is
 * fn's own answer, which ends the modify as any code of fn's does. */
static int
modify_once(struct mlc_cache *c, struct mlc__key *k, mlc_modify_fn *fn,
	    void *arg, struct mlc_value *value, bool *fn_said)
{
	uint64_t now = mlc__now_ms(), version = 0, expire, seq;
	struct l1_mark mark;
	struct mlc_value cur = { 0 };
	struct mlc__ent *e = NULL;
	struct mlc__put put;
	struct mlc_load ld;
	bool present, live;
	int r, rc;

	/* Before the read: fn or the event hook may call the cache on this
	 * handle, apply a purge's record (then the store below goes in
	 * under the purged generation) or write the key, and L1 must not
	 * keep the value then (l1_mark()). */
	mark = l1_mark(c);
	key_l2(c, k);
	rc = mlc__l2_read(c, k, &e);
	if (rc == -ETIMEDOUT) {
		/* A bucket inside a writer's window: wait for it as a
		 * write does, on the stripe locks (a dead writer's window
		 * is closed by taking them), then read again.  Reading
		 * again without them spun until -EBUSY while a writer that
		 * died there left it open. */
		rc = mlc__table_settle(c->a, k);
		return rc < 0 ? rc : MLC_ESTALE;
	}
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
		mlc__load_release(&ld);
		*fn_said = true;
		return r < 0 ? r : r == MLC_MODIFY_KEEP ? 0 : -EINVAL;
	}
	if (r == MLC_MODIFY_DELETE) {
		mlc__load_release(&ld);
		/* Claimed before the change, published after (write.c).
		 * Absent from L2, the key is deleted as mlc_delete does
		 * (other L1s may still hold it, this one too), if it is
		 * still absent: version 0 asks for that. */
		seq = mlc__log_claim(c->a);
		rc = mlc__table_del_if(c->a, k, present ? version : 0, &seq,
				       &version);
		if (rc == -ENOENT && !present)
			rc = 0;
		mlc__log_fill(c->a, seq, k->ns, k->hash,
			      rc == 0 ? MLC__LOG_DEL : MLC__LOG_NOP, version);
		if (rc == 0) {
			c->st.log_published++;
			mlc__event_emit(c, MLC_EVENT_DELETE, k, version);
			c->st.deletes++;
			mlc__l1_drop(c, k);
		}
		return rc;
	}
	/* -EINVAL for what fn filled wrong, -E2BIG for over 4 GiB. */
	rc = mlc__load_check(r == MLC_MODIFY_NEGATIVE ? MLC_LOAD_NOTFOUND
						  : MLC_LOAD_VALUE, &ld);
	if (rc < 0) {
		mlc__load_release(&ld);
		return rc;
	}
	/* The TTL counts from fn's answer, as a loader's does: fn may have
	 * taken a while (until 2026-12-07 it counted from the read before
	 * fn). */
	now = mlc__now_ms();
	expire = expire_at(ld.ttl_ms ? ld.ttl_ms :
			   r == MLC_MODIFY_NEGATIVE ? c->o.neg_ttl_ms
						    : c->o.ttl_ms, now);
	e = mlc__ent_from(k, ld.data, ld.len, r == MLC_MODIFY_NEGATIVE, expire,
			  0);
	mlc__load_release(&ld);
	if (e == NULL)
		return -ENOMEM;
	rc = mlc__l2_store_cas(c, k, r == MLC_MODIFY_NEGATIVE ? NULL :
			       mlc__ent_value(e), e->vlen,
			       r == MLC_MODIFY_NEGATIVE ? MLC__IT_NEG : 0,
			       expire, 0,
			       present ? MLC__CAS_VERSION : MLC__CAS_ABSENT,
			       version, &put);
	if (rc < 0) {
		mlc__ent_put(e);
		return rc;
	}
	e->version = put.version;
	c->st.sets++;
	mlc__event_emit(c, MLC_EVENT_SET, k, put.version);
	/* Stored: the caller's L1 gets it too, unless fn or the event hook
	 * called the cache and applied records (above).  A codec that
	 * cannot decode it is reported by the next get, not here.  Either
	 * way the key's older value leaves L1 (mlc__ent_deliver()): a handle
	 * with MLC_CACHE_MANUAL_UPDATE, which applies its own record only at
	 * its next mlc_update(), served it after the modify returned until
	 * review U. */
	rc = mlc__ent_deliver(c, e, !l1_moved(c, mark), MLC_L2, now, value);
	return rc == MLC_ECODEC ? 0 : rc;
}

MLC_EXPORT int
mlc_modify(struct mlc_cache *c, const void *key, size_t key_len,
	   mlc_modify_fn *fn, void *arg, struct mlc_value *value)
{
	struct mlc_value out = { 0 };
	struct mlc__key k;
	bool fn_said = false;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if (fn == NULL)
		return mlc__set_err(c, -EINVAL);
	c->writes++;
	/* A handle that only modifies keeps up with the log as one that
	 * only sets does (cache.h), before its first read of L2. */
	log_keep_up(c);
	key_make(c, key, key_len, &k);
	for (int t = 0, purged = 0; t < MODIFY_TRIES; t++) {
		rc = modify_once(c, &k, fn, arg, &out, &fn_said);
		if (rc != MLC_ESTALE || fn_said)
			break;
		/* Refused for a purge since its read (fn's own, maybe):
		 * as mlc_set, a few more tries, then it came before the
		 * last purge. */
		if (ck_pr_load_32(&c->ns->ns_gen) != k.nsgen &&
		    ++purged == PURGE_TRIES) {
			rc = 0;
			break;
		}
		if (t >= 8)
			sched_yield();	/* let the winner finish */
		rc = -EBUSY;
	}
	/* The value is the caller's only on success (zeroed after a
	 * DELETE or KEEP): an error leaves *value as it was. */
	if (rc < 0) {
		mlc_value_release(&out);
		return mlc__set_err(c, rc);
	}
	if (value != NULL)
		*value = out;
	else
		mlc_value_release(&out);
	return rc;
}

MLC_EXPORT int
mlc_refresh(struct mlc_cache *c, const void *key, size_t key_len,
	    mlc_loader_fn *loader, void *arg, struct mlc_value *value)
{
	struct mlc_value tmp = { 0 };
	struct mlc__ent *e;
	struct mlc__key k;
	struct mlc__fl f;
	struct call cf;
	uint64_t until, before = 0, outer;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if (loader == NULL)
		return mlc__set_err(c, -EINVAL);
	/* Its store publishes a record as a set does: a handle that only
	 * refreshes keeps up with the log as one that only sets, before
	 * its first read of L2 (cache.h). */
	log_keep_up(c);
	mlc__call_resolve(c, NULL, &cf);
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if (mlc__loading_self(c, &k))
		return mlc__set_err(c, -EDEADLK);
	/* What L2 holds now is what the refresh replaces: a load it waits
	 * for answers it only with something newer (or its error). */
	if (mlc__l2_read(c, &k, &e) == 0) {
		before = e->version;
		mlc__ent_put(e);
	}
	until = mlc__now_ms() + cf.lock_timeout;	/* for every round */
	/* A refresh is no lookup: its loader run is not one of a get under
	 * way on the handle (one whose codec's decode refreshes another
	 * key), which would count as a miss for it (mlc__get_slow()). */
	outer = c->call_loads;
	rc = -EAGAIN;
	for (int round = 0; round < ACQUIRE_ROUNDS && rc == -EAGAIN; round++) {
		if (round > 0)		/* purged since: mlc__get_load() */
			mlc__key_l2_again(c, &k, NULL);
		if (mlc__flight_acquire(c->a, k.hash, c->o.lock_lease_ms,
					&f) == -EBUSY)
			c->st.duplicate_loads++;
		if (f.role == MLC_FLIGHT_WAITER) {
			/* Someone loads it already: that load is the
			 * refresh. */
			uint64_t t0 = mlc__now_ms();

			c->st.lock_waits++;
			rc = mlc__flight_wait(c->a, &f, until,
					      c->o.lock_lease_ms,
					      &c->st.lock_steals);
			c->st.lock_wait_ms += mlc__now_ms() - t0;
			if (rc == -EAGAIN) {
				mlc__flight_leave(c->a, &f);
				c->st.lock_timeouts++;
				c->call_loads = outer;
				return mlc__set_err(c, -ETIMEDOUT);
			}
			if (rc == 0) {
				rc = mlc__flight_result(c, &k, &cf, &f, true,
							before, NULL,
							value ? value : &tmp);
				if (rc == MLC__UNSHARED)
					break;	/* load it ourselves */
				continue;
			}
		}
		/* The old value stays in L2 for everyone until this
		 * load's value replaces it. */
		rc = mlc__load_and_publish(c, &k, &cf, loader, arg, NULL, &f,
					   value ? value : &tmp);
	}
	if (rc == -EAGAIN || rc == MLC__UNSHARED) {
		/* No result in any round, or one too large to share: as in
		 * mlc_get(). */
		mlc__key_l2_again(c, &k, NULL);
		rc = mlc__load_alone(c, &k, &cf, loader, arg, NULL,
				     value ? value : &tmp);
	}
	c->call_loads = outer;
	/* Every result went through mlc__ent_deliver(): into L1 in place of
	 * the key's older entry, or kept out of L1 (not decoded, not stored,
	 * a callback moved L1) with the older entry taken out, so that a
	 * handle with MLC_CACHE_MANUAL_UPDATE does not serve the value the
	 * refresh replaced (review U). */
	if (rc == 0 && value == NULL)
		mlc_value_release(&tmp);
	return rc;
}
