/*
 * mlc through its public API only, as an application would call it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlc.h"
#include "bench.h"

struct st {
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct bench_params p;
	char name[64];
	const void *val;	/* what the loader returns */
	size_t vlen;
	uint32_t expect;	/* level a get should answer from, 0: any */
	uint64_t wrong_level, errors, misses, load_not_l3;
	int last_err;
	const char *huge_dir;	/* mlc-huge: the arena is a file there */
	char path[512];
};

static unsigned arena_seq;

static uint64_t
arena_bytes(const struct bench_params *p)
{
	/* Chunk = 48 B header + key + value, rounded up by a size class
	 * (growth 1.25), plus the index (about 12 B per max_items) and
	 * slack so that no case ever evicts.  (The header is 32 B since
	 * format 7; the estimate stays, so that arenas, and runs of older
	 * commits beside newer ones, keep their sizes.) */
	uint64_t per = (uint64_t)(48 + BENCH_KEY + p->vlen) * 3 / 2 + 64;

	return (64ull << 20) + (uint64_t)p->nkeys * per;
}

static const char *
arena_name(const struct st *s)
{
	return s->huge_dir != NULL ? s->path : s->name;
}

static void
arena_unlink(const struct st *s)
{
	mlc_arena_unlink(arena_name(s), s->huge_dir != NULL ? MLC_ARENA_FILE
							     : 0);
}

static int
arena_make(struct st *s)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	uint64_t items = (uint64_t)s->p.nkeys * 2 + 1024;
	int rc;

	snprintf(s->name, sizeof(s->name), "mlc-bench-%ld-%u", (long)getpid(),
		 arena_seq++);
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	if (s->huge_dir != NULL) {
		snprintf(s->path, sizeof(s->path), "%s/%s", s->huge_dir,
			 s->name);
		ao.flags |= MLC_ARENA_FILE;
	}
	ao.bytes = arena_bytes(&s->p);
	ao.max_items = items > (1u << 30) ? (1u << 30) : (uint32_t)items;
	rc = mlc_arena_open(&s->a, arena_name(s), &ao);
	if (rc < 0)
		return rc;
	co.ttl_ms = MLC_TTL_NEVER;	/* nothing expires during a case */
	switch (s->p.mode) {
	case BM_L1:
		co.lru_size = s->p.nkeys + 1024;
		s->expect = MLC_L1;
		break;
	case BM_L2:
		co.flags = MLC_CACHE_NO_L1;
		s->expect = MLC_L2;
		break;
	case BM_SMALL_L1:
		co.lru_size = s->p.lru_size;
		s->expect = 0;
		break;
	}
	rc = mlc_cache_open(&s->c, s->a, "bench", &co);
	if (rc < 0) {
		mlc_arena_close(s->a);
		arena_unlink(s);
		return rc;
	}
	return 0;
}

static void
arena_drop(struct st *s)
{
	mlc_cache_close(s->c);
	mlc_arena_close(s->a);
	arena_unlink(s);
	s->c = NULL;
	s->a = NULL;
}

static int
open_in(const struct bench_params *p, void **stp, char *why, size_t whylen,
	const char *huge_dir)
{
	struct st *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->p = *p;
	s->huge_dir = huge_dir;
	rc = arena_make(s);
	if (rc < 0) {
		snprintf(why, whylen, "mlc_arena_open: %s", mlc_strerror(rc));
		free(s);
		return rc;
	}
	*stp = s;
	return 0;
}

static int
m_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	return open_in(p, stp, why, whylen, NULL);
}

static int
m_open_huge(const struct bench_params *p, void **stp, char *why,
	    size_t whylen)
{
	const char *dir = bench_huge_dir(why, whylen);

	if (dir == NULL)
		return -ENOTSUP;
	return open_in(p, stp, why, whylen, dir);
}

static void
m_close(void *st)
{
	struct st *s = st;

	arena_drop(s);
	free(s);
}

static int
m_reset(void *st)
{
	struct st *s = st;

	arena_drop(s);
	return arena_make(s);
}

static int
m_get(void *st, const char *key, uint64_t *chk)
{
	struct st *s = st;
	struct mlc_value v;
	int rc = mlc_get(s->c, key, BENCH_KEY, NULL, NULL, &v);

	if (rc < 0) {
		if (rc == -ENOENT) {
			s->misses++;
		} else {
			s->errors++;
			s->last_err = rc;
		}
		return rc;
	}
	if (s->expect && v.level != s->expect)
		s->wrong_level++;
	*chk += chk_bytes(v.data, v.len);
	rc = (int)v.len;
	mlc_value_release(&v);
	return rc;
}

static int
loader(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	struct st *s = arg;

	out->data = s->val;
	out->len = s->vlen;
	return MLC_LOAD_VALUE;
}

static int
m_load(void *st, const char *key, const void *val, size_t len)
{
	struct st *s = st;
	struct mlc_value v;
	int rc;

	s->val = val;
	s->vlen = len;
	rc = mlc_get(s->c, key, BENCH_KEY, loader, s, &v);
	if (rc < 0) {
		s->errors++;
		s->last_err = rc;
		return rc;
	}
	if (v.level != MLC_L3)
		s->load_not_l3++;
	mlc_value_release(&v);
	return 0;
}

static int
m_set(void *st, const char *key, const void *val, size_t len)
{
	struct st *s = st;
	int rc = mlc_set(s->c, key, BENCH_KEY, val, len, NULL);

	if (rc < 0) {
		s->errors++;
		s->last_err = rc;
	}
	return rc;
}

static int
m_del(void *st, const char *key)
{
	struct st *s = st;
	int rc = mlc_delete(s->c, key, BENCH_KEY);

	if (rc < 0) {
		s->errors++;
		s->last_err = rc;
	}
	return rc;
}

static int
m_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	return fill_by_set(&impl_mlc, st, keys, n, val, len);
}

/* The parent's cache handle answers -ECHILD here: open our own on the
 * inherited arena handle, as mlc.h says children must. */
static int
m_fork_child(void *st)
{
	struct st *s = st;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;

	co.ttl_ms = MLC_TTL_NEVER;
	if (s->p.mode == BM_L2)
		co.flags = MLC_CACHE_NO_L1;
	else if (s->p.mode == BM_L1)
		co.lru_size = s->p.nkeys + 1024;
	else
		co.lru_size = s->p.lru_size;
	return mlc_cache_open(&s->c, s->a, "bench", &co);
}

static int
m_mem(void *st, uint64_t items, double *per_item, char *note, size_t len)
{
	struct st *s = st;
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	uint64_t used, chunks = 0;
	int rc = mlc_arena_info(s->a, &in);

	if (rc < 0)
		return rc;
	if (in.items == 0)
		return -ENOENT;
	used = (in.pages - in.pages_free) * in.page_size;
	*per_item = (double)used / (double)in.items;
	/* Also the chunks in use alone: the last page a class took is
	 * mostly free at 100k small items (its free chunks hold the next
	 * ones), and whole pages count it all. */
	for (uint32_t i = 0;; i++) {
		struct mlc_class_info ci = MLC_CLASS_INFO_INIT;

		if (mlc_arena_class(s->a, i, &ci) != 0)
			break;
		chunks += ci.chunks_used * ci.chunk_size;
	}
	snprintf(note, len, "pages used %llu of %llu x %llu B, items %llu "
		 "(asked %llu), index %llu slots; in chunks %.1f B/item",
		 (unsigned long long)(in.pages - in.pages_free),
		 (unsigned long long)in.pages,
		 (unsigned long long)in.page_size,
		 (unsigned long long)in.items, (unsigned long long)items,
		 (unsigned long long)in.max_items,
		 (double)chunks / (double)in.items);
	return 0;
}

static void
m_check(void *st, char *msg, size_t len)
{
	struct st *s = st;
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	int n = 0;

	msg[0] = '\0';
	if (mlc_arena_info(s->a, &in) < 0)
		in = (struct mlc_arena_info)MLC_ARENA_INFO_INIT;
	else if (s->huge_dir != NULL && in.huge_bytes == 0)
		n += snprintf(msg, len, "no huge page maps the arena; ");
	if (in.evictions || in.index_evictions || in.write_failures)
		n += snprintf(msg + n, len - (size_t)n,
			      "L2 evictions %llu, index evictions %llu, write "
			      "failures %llu; ",
			      (unsigned long long)in.evictions,
			      (unsigned long long)in.index_evictions,
			      (unsigned long long)in.write_failures);
	if (s->wrong_level && n < (int)len)
		n += snprintf(msg + n, len - (size_t)n,
			      "%llu gets not answered from L%u; ",
			      (unsigned long long)s->wrong_level, s->expect);
	if (s->load_not_l3 && n < (int)len)
		n += snprintf(msg + n, len - (size_t)n,
			      "%llu loads not from L3; ",
			      (unsigned long long)s->load_not_l3);
	if (s->errors && n < (int)len)
		snprintf(msg + n, len - (size_t)n, "%llu errors (last %s)",
			 (unsigned long long)s->errors,
			 mlc_strerror(s->last_err));
	s->wrong_level = s->errors = s->misses = s->load_not_l3 = 0;
}

/* Everything but the name, the role and how the arena is opened. */
#define M_OPS								\
	.close = m_close, .reset = m_reset, .get = m_get, .set = m_set,	\
	.del = m_del, .load = m_load, .fill = m_fill,			\
	.fork_child = m_fork_child, .mem = m_mem, .check = m_check

const struct impl impl_mlc = {
	.name = "mlc", .role = "subject", .open = m_open, M_OPS
};

/* mlc with its arena on huge pages (bench.h). */
const struct impl impl_mlc_huge = {
	.name = "mlc-huge", .role = "variant", .open = m_open_huge, M_OPS
};
