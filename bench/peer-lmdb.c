/*
 * LMDB, configured the way its documentation describes for speed: an
 * environment on tmpfs (/dev/shm) opened with MDB_NOSYNC | MDB_NOMETASYNC |
 * MDB_WRITEMAP; reads in one read-only transaction that is reset after each
 * get and renewed before the next (no malloc per read, the value read in
 * place from the map); each set, delete or store in its own write
 * transaction, committed at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench.h"

struct st {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rd;		/* reset between gets */
	char dir[320];
	size_t mapsize;
	int last_err;
	uint64_t errors;
};

static unsigned env_seq;

static int
env_open(struct st *s)
{
	MDB_txn *t;
	int rc;

	if ((rc = mdb_env_create(&s->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_mapsize(s->env, s->mapsize)) != 0 ||
	    (rc = mdb_env_open(s->env, s->dir, MDB_NOSYNC | MDB_NOMETASYNC |
			       MDB_WRITEMAP, 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(t, NULL, 0, &s->dbi)) != 0) {
		mdb_txn_abort(t);
		goto fail;
	}
	if ((rc = mdb_txn_commit(t)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rd)) != 0)
		goto fail;
	mdb_txn_reset(s->rd);
	return 0;
fail:
	mdb_env_close(s->env);
	s->env = NULL;
	return rc;
}

static int
l_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	struct st *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	/* tmpfs, as mlc's arenas: the comparison is memory against memory. */
	snprintf(s->dir, sizeof(s->dir), "/dev/shm/mlc-bench-lmdb-%ld-%u",
		 (long)getpid(), env_seq++);
	if (mkdir(s->dir, 0700) < 0) {
		snprintf(why, whylen, "mkdir %s: %s", s->dir, strerror(errno));
		free(s);
		return -errno;
	}
	/* Pages of 4 KiB: keys and small values share leaf pages, big ones
	 * take overflow pages.  Three times the data is plenty of room for
	 * the copy-on-write of the B+tree. */
	s->mapsize = (64ull << 20) +
		     (size_t)p->nkeys * ((size_t)p->vlen + 64) * 3;
	rc = env_open(s);
	if (rc != 0) {
		snprintf(why, whylen, "lmdb: %s", mdb_strerror(rc));
		rmdir(s->dir);
		free(s);
		return -ENOTSUP;
	}
	*stp = s;
	return 0;
}

static void
rm_env(struct st *s)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", s->dir);
	unlink(path);
	rmdir(s->dir);
}

static void
l_close(void *st)
{
	struct st *s = st;

	mdb_txn_abort(s->rd);
	mdb_env_close(s->env);
	rm_env(s);
	free(s);
}

static int
fail(struct st *s, int rc)
{
	s->errors++;
	s->last_err = rc;
	return -EIO;
}

static int
l_get(void *st, const char *key, uint64_t *chk)
{
	struct st *s = st;
	MDB_val k = { BENCH_KEY, (void *)key }, v;
	int rc;

	if ((rc = mdb_txn_renew(s->rd)) != 0)
		return fail(s, rc);
	rc = mdb_get(s->rd, s->dbi, &k, &v);
	if (rc == 0)
		*chk += chk_bytes(v.mv_data, v.mv_size);
	mdb_txn_reset(s->rd);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc == 0 ? (int)v.mv_size : fail(s, rc);
}

static int
l_put(struct st *s, const char *key, const void *val, size_t len)
{
	MDB_val k = { BENCH_KEY, (void *)key }, v = { len, (void *)val };
	MDB_txn *t;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)) != 0)
		return fail(s, rc);
	if ((rc = mdb_put(t, s->dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(t);
		return fail(s, rc);
	}
	if ((rc = mdb_txn_commit(t)) != 0)
		return fail(s, rc);
	return 0;
}

static int
l_set(void *st, const char *key, const void *val, size_t len)
{
	return l_put(st, key, val, len);
}

static int
l_del(void *st, const char *key)
{
	struct st *s = st;
	MDB_val k = { BENCH_KEY, (void *)key };
	MDB_txn *t;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)) != 0)
		return fail(s, rc);
	rc = mdb_del(t, s->dbi, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(t);
		return fail(s, rc);
	}
	if ((rc = mdb_txn_commit(t)) != 0)
		return fail(s, rc);
	return 0;
}

static int
l_load(void *st, const char *key, const void *val, size_t len)
{
	uint64_t chk = 0;

	if (l_get(st, key, &chk) >= 0)
		return 0;
	return l_put(st, key, val, len);
}

/* Outside the timing: one write transaction per 10,000 keys. */
static int
l_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	struct st *s = st;
	MDB_val v = { len, (void *)val };
	MDB_txn *t = NULL;
	int rc;

	for (size_t i = 0; i < n; i++) {
		MDB_val k = { BENCH_KEY, (void *)(keys + i * BENCH_KEY) };

		if (t == NULL && (rc = mdb_txn_begin(s->env, NULL, 0, &t)))
			return fail(s, rc);
		if ((rc = mdb_put(t, s->dbi, &k, &v, 0)) != 0) {
			mdb_txn_abort(t);
			return fail(s, rc);
		}
		if (i % 10000 == 9999 || i + 1 == n) {
			if ((rc = mdb_txn_commit(t)) != 0)
				return fail(s, rc);
			t = NULL;
		}
	}
	return 0;
}

static int
l_reset(void *st)
{
	struct st *s = st;
	MDB_txn *t;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)) != 0)
		return fail(s, rc);
	if ((rc = mdb_drop(t, s->dbi, 0)) != 0) {
		mdb_txn_abort(t);
		return fail(s, rc);
	}
	return mdb_txn_commit(t) == 0 ? 0 : -EIO;
}

/* An MDB_env must not be used across fork(): the child opens its own
 * (the parent's stays untouched in the child's memory). */
static int
l_fork_child(void *st)
{
	struct st *s = st;

	return env_open(s) == 0 ? 0 : -EIO;
}

static int
l_mem(void *st, uint64_t items, double *per_item, char *note, size_t len)
{
	struct st *s = st;
	MDB_stat ms;
	MDB_txn *t;
	uint64_t pages;

	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) != 0)
		return -EIO;
	mdb_stat(t, s->dbi, &ms);
	mdb_txn_abort(t);
	if (ms.ms_entries == 0)
		return -ENOENT;
	pages = ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	*per_item = (double)(pages * ms.ms_psize) / (double)ms.ms_entries;
	snprintf(note, len, "B+tree pages %llu x %u B, entries %llu",
		 (unsigned long long)pages, ms.ms_psize,
		 (unsigned long long)ms.ms_entries);
	return 0;
}

static void
l_check(void *st, char *msg, size_t len)
{
	struct st *s = st;

	msg[0] = '\0';
	if (s->errors)
		snprintf(msg, len, "%llu errors (last %s)",
			 (unsigned long long)s->errors,
			 mdb_strerror(s->last_err));
	s->errors = 0;
}

const struct impl impl_lmdb = {
	.name = "lmdb",
	.role = "peer",
	.open = l_open,
	.close = l_close,
	.reset = l_reset,
	.get = l_get,
	.set = l_set,
	.del = l_del,
	.load = l_load,
	.fill = l_fill,
	.fork_child = l_fork_child,
	.mem = l_mem,
	.check = l_check,
};
