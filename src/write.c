/*
 * The writes: stores to L2 (published to every L1 through the log), sets,
 * deletes, purges, applying the log on demand, and the events that carry
 * changes to other hosts.
 */
#include "cache.h"
#include "pause.h"

/* ---- L2 ---------------------------------------------------------------- */

/* Store bytes (or a negative entry) in L2 and tell every other handle.
 * put->version gets the new version.  @p fence: a loader's watermark.
 *
 * The log cell is claimed before L2 changes and published after: a writer
 * that dies in between leaves a claimed cell, which every handle treats as
 * "drop the whole L1" once MLC__LOG_STUCK_MS have passed, instead of a
 * change that no L1 ever hears of. */
int
mlc__l2_store_cas(struct mlc_cache *c, const struct mlc__key *k,
		  const void *data, size_t len, uint32_t flags, uint64_t expire,
		  uint64_t fence, uint32_t cas, uint64_t cas_version,
		  struct mlc__put *put)
{
	return mlc__l2_store_owned(c, k, data, len, flags, expire, fence, cas,
				   cas_version, NULL, put);
}

/* The same, by the owner of flight @p f (NULL: by no flight): only while
 * its slot's word is still its own, asked under the stripe locks once the
 * store's version is taken (table.c, put_linked()).  A load outside the
 * table (slot 0) has no word to lose. */
int
mlc__l2_store_owned(struct mlc_cache *c, const struct mlc__key *k,
		    const void *data, size_t len, uint32_t flags,
		    uint64_t expire, uint64_t fence, uint32_t cas,
		    uint64_t cas_version, const struct mlc__fl *f,
		    struct mlc__put *put)
{
	uint64_t seq = 0;
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
	put->own_word = f != NULL ? mlc__flight_word_at(c->a, f) : NULL;
	put->own_expect = f != NULL ? mlc__flight_word(f) : 0;
	if (k->ns != MLC__NS_INTERNAL)	/* mlc's records are in no L1 */
		seq = mlc__log_claim(c->a);
	put->log_seq = seq;
	c->wrote = true;	/* a writer: its flush may heal (cache.c) */
	rc = mlc__table_put(c->a, k, put);
	MLC_PAUSE(LOG_STORED);
	mlc__log_fill(c->a, put->log_seq, k->ns, k->hash,
		      rc == 0 ? MLC__LOG_SET : MLC__LOG_NOP, put->version);
	/* Refused without a fence: a read-modify-write's lost race, or a
	 * set's under a purge; the caller tries again (mlc_modify, mlc_set).
	 * Only a loader's store has a fence (the version counter, which
	 * starts at 1: arena.c), plain or compare-and-set (a resurrect), and
	 * its refusal is a fenced write. */
	if (k->ns == MLC__NS_INTERNAL || (rc == MLC_ESTALE && fence == 0))
		return rc;		/* not the caller's to count */
	if (rc == MLC_ESTALE) {
		c->st.fenced_writes++;
		return rc;
	}
	if (rc < 0) {
		c->st.l2_write_failures++;
		return rc;
	}
	c->st.log_published++;
	return 0;
}

int
mlc__l2_store(struct mlc_cache *c, const struct mlc__key *k, const void *data,
	      size_t len, uint32_t flags, uint64_t expire, uint64_t fence,
	      struct mlc__put *put)
{
	return mlc__l2_store_cas(c, k, data, len, flags, expire, fence,
				 MLC__CAS_NONE, 0, put);
}

/* ---- events for other hosts --------------------------------------------- */

/* Tell this process's transport hook about a change made here (sets,
 * deletes and purges by the caller: a loader's fill is not a change, and
 * relaying it would make hosts invalidate each other's fills forever). */
void
mlc__event_emit(struct mlc_cache *c, uint32_t op, const struct mlc__key *k,
		uint64_t version)
{
	mlc_event_fn *fn = __atomic_load_n(&c->a->event_fn, __ATOMIC_ACQUIRE);
	struct mlc_event ev;

	if (fn == NULL)
		return;
	ev.op = op;
	ev.ns_len = c->ns_len;
	ev.ns = c->ns_name;
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
 * L2 had it (another L1 may still).  The cell is claimed first, as for a
 * store (mlc__l2_store_cas). */
static int
l2_delete(struct mlc_arena *a, const struct mlc__key *k, uint64_t *version)
{
	uint64_t seq = mlc__log_claim(a);
	int rc = mlc__table_del(a, k, &seq, version);

	MLC_PAUSE(LOG_STORED);
	if (rc < 0 && rc != -ENOENT) {
		mlc__log_fill(a, seq, k->ns, k->hash, MLC__LOG_NOP, 0);
		return rc;
	}
	mlc__log_fill(a, seq, k->ns, k->hash, MLC__LOG_DEL, *version);
	return 0;
}

/* Start namespace @p ns's next generation: the generation first, then
 * its live counts go to 0 at it (adding nothing for the generation moves a
 * word that is not at it yet, unless a later purge overtook this one:
 * table.c, mlc__ns_word_add()).  A purger that stops or dies between the
 * two leaves the words behind the generation, and the first link or
 * unlink of the new generation moves them on itself; a reader takes a
 * word behind for 0 (struct mlc__ns_stats).  Two purges at once: the
 * words only move forward. */
static void
ns_gen_next(struct mlc_arena *a, uint32_t ns)
{
	struct mlc__ns_stats *st = &a->nsstats[ns];
	uint32_t gen = ck_pr_faa_32(&a->ns[ns].ns_gen, 1) + 1;

	MLC_PAUSE(PURGE_PUBLISHED);
	mlc__ns_word_add(a, ns, &st->nt_items, 32, gen, 0, true);
	mlc__ns_word_add(a, ns, &st->nt_bytes, MLC__NS_BYTES_SHIFT, gen, 0,
			 true);
}

/* Purge namespace @p ns: one generation step makes every item of the old
 * generation a miss from now on, in every process, and the sweep reclaims
 * them first.  Claimed in the log before, published after. */
static void
ns_purge(struct mlc_arena *a, uint32_t ns)
{
	uint64_t seq = mlc__log_claim(a);

	mlc__log_changing(a, &seq);
	ns_gen_next(a, ns);
	MLC_PAUSE(LOG_STORED);
	mlc__log_fill(a, seq, ns, 0, MLC__LOG_PURGE, 0);
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
	/* A namespace this arena has not got holds nothing to drop, and is
	 * not made for it: events from elsewhere (a relay's: anyone who can
	 * write to its stream) would fill the namespace table for good.  A
	 * process that makes it after this look loads after the change. */
	rc = mlc__ns_find(a, name, &ns);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (ev->op == MLC_EVENT_PURGE) {
		ns_purge(a, ns);
		return 0;
	}
	/* A change elsewhere: our copy is old, whatever it holds. */
	k.data = ev->key;
	k.len = (uint32_t)ev->key_len;
	k.ns = ns;
	k.nsgen = ck_pr_load_32(&a->ns[ns].ns_gen);
	mlc__key_hash(a, &k);
	if (l2_delete(a, &k, &version) < 0)
		ns_purge(a, ns);	/* cannot drop the key: its namespace goes */
	return 0;
}

/* ---- writes ------------------------------------------------------------ */

/* Forget @p k in this handle's L1 (if there). */
void
mlc__l1_drop(struct mlc_cache *c, const struct mlc__key *k)
{
	struct mlc__ent *e = mlc__l1_find(&c->l1, k->hash, k->data, k->len);

	if (e != NULL)
		mlc__l1_unlink(&c->l1, e);
}

MLC_EXPORT int
mlc_set(struct mlc_cache *c, const void *key, size_t key_len,
	const void *data, size_t len, const struct mlc_call_options *opts)
{
	struct mlc__key k;
	struct mlc__put put;
	struct mlc__ent *e;
	struct call cf;
	struct l1_mark mark;
	uint64_t now;
	bool neg;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	if ((rc = mlc__call_resolve(c, opts, &cf)) < 0)
		return mlc__set_err(c, rc);
	neg = cf.flags & MLC_CALL_NEGATIVE;
	if (neg ? (data != NULL || len != 0) : (data == NULL && len != 0))
		return mlc__set_err(c, -EINVAL);
	c->writes++;
	log_keep_up(c);
	key_make(c, key, key_len, &k);
	mlc__table_prefetch_put(c->a, k.hash);	/* under the clock and log */
	now = mlc__now_ms();
	/* Refused only when the namespace was purged since its generation
	 * was read (table.c, put_linked()): the set then reads it again and
	 * lands after the purge.  Purges that keep coming through every try
	 * make it one that came before the last of them: 0, nothing kept. */
	for (int t = 0;; t++) {
		key_l2(c, &k);
		rc = mlc__l2_store(c, &k, data, len, neg ? MLC__IT_NEG : 0,
				   expire_at(neg ? cf.neg_ttl : cf.ttl, now), 0,
				   &put);
		if (rc != MLC_ESTALE || t == PURGE_TRIES - 1)
			break;
	}
	if (rc < 0 && rc != MLC_ESTALE)
		return mlc__set_err(c, rc);
	c->st.sets++;
	/* The caller's L1 holds the new value at once (decoded, with a
	 * codec; if decoding fails the next get reports it), unless the
	 * event hook or the decode called the cache on this handle (a newer
	 * write of the key may be among what they did: l1_mark()).  A set
	 * made before a purge (MLC_ESTALE, above) stored nothing to copy or
	 * announce. */
	mark = l1_mark(c);
	if (rc == 0)
		mlc__event_emit(c, MLC_EVENT_SET, &k, put.version);
	mlc__l1_drop(c, &k);
	if (rc == 0 && !(c->o.flags & MLC_CACHE_NO_L1)) {
		e = mlc__ent_from(&k, data, len, neg, put.expire, put.version);
		if (e != NULL && mlc__ent_decode(c, e) == 0 &&
		    !l1_moved(c, mark))
			c->st.l1_evictions += mlc__l1_insert(&c->l1, e);
		else if (e != NULL)
			mlc__ent_put(e);
	}
	stats_due(c, now);
	return 0;
}

MLC_EXPORT int
mlc_delete(struct mlc_cache *c, const void *key, size_t key_len)
{
	struct mlc__key k;
	uint64_t version;
	int rc;

	if ((rc = mlc__key_check(c, key, key_len)) < 0)
		return rc;
	c->writes++;
	log_keep_up(c);
	key_make(c, key, key_len, &k);
	key_l2(c, &k);
	if ((rc = l2_delete(c->a, &k, &version)) < 0)
		return mlc__set_err(c, rc);
	c->st.log_published++;
	mlc__event_emit(c, MLC_EVENT_DELETE, &k, version);
	mlc__l1_drop(c, &k);
	c->st.deletes++;
	return 0;
}

MLC_EXPORT int
mlc_purge(struct mlc_cache *c)
{
	if (mlc__handle_check(c) < 0)
		return -EINVAL;
	c->writes++;
	ns_purge(c->a, c->ns_idx);
	c->st.log_published++;
	mlc__event_emit(c, MLC_EVENT_PURGE, NULL, 0);
	mlc__l1_clear(&c->l1);
	c->st.purges++;
	return 0;
}

MLC_EXPORT int
mlc_update(struct mlc_cache *c)
{
	if (mlc__handle_check(c) < 0)
		return -EINVAL;
	mlc__log_apply(c->a, &c->log, c->o.update_budget);
	return 0;
}

MLC_EXPORT int
mlc_update_ex(struct mlc_cache *c, uint64_t *hashes, size_t cap, size_t *n,
	      uint32_t *flags)
{
	uint64_t forks, none;

	if (c == NULL || n == NULL || flags == NULL ||
	    (hashes == NULL && cap != 0))
		return mlc__refuse(c);
	forks = c->st.forks;
	mlc__handle_check(c);
	/* Cap 0: any change is ALL, with an array or without (NULL made
	 * every record go unreported, as on a handle that reports nothing). */
	c->log.out = hashes != NULL ? hashes : &none;
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
