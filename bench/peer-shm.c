/*
 * The L2 floor: a plain shared-memory table.  Fixed-size open addressing
 * (linear probing, XXH3 like mlc) in one MAP_SHARED mapping, the key and
 * the value inline in a slot sized for the case's largest value, and a
 * per-slot sequence word so that a reader in another process copies a
 * value out consistently (read seq, copy, re-read seq).  One writer, no
 * allocator, no eviction, no TTL, no namespaces: what mlc's L2 does, minus
 * everything that makes it a cache.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bench.h"

struct slot {
	_Atomic uint32_t seq;	/* odd while written; 0: never used */
	uint32_t len;		/* UINT32_MAX: deleted */
	char key[BENCH_KEY];
	char val[];		/* vcap bytes */
};

#define GONE UINT32_MAX

struct st {
	char *base;
	size_t bytes, stride, mask;
	uint32_t vcap;
	uint64_t seed;
	char *buf;		/* the reader's private copy */
	uint64_t retries;
};

static struct slot *
slot_at(struct st *s, size_t i)
{
	return (struct slot *)(void *)(s->base + i * s->stride);
}

/* A file on the huge-page tmpfs in @p dir, unnamed once open. */
static void *
map_in(const char *dir, size_t bytes)
{
	char path[512];
	void *base;
	int fd;

	snprintf(path, sizeof(path), "%s/shm-bench-%ld", dir, (long)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return MAP_FAILED;
	unlink(path);
	if (ftruncate(fd, (off_t)bytes) < 0 ||
	    posix_fallocate(fd, 0, (off_t)bytes) != 0) {
		close(fd);
		return MAP_FAILED;
	}
	base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return base;
}

static int
open_in(const struct bench_params *p, void **stp, const char *huge_dir)
{
	struct st *s = calloc(1, sizeof(*s));
	size_t n = 1024;

	if (s == NULL)
		return -ENOMEM;
	while (n < (size_t)p->nkeys * 2)
		n <<= 1;
	s->vcap = p->vlen;
	/* Whole cache lines per slot, like mlc's buckets. */
	s->stride = (sizeof(struct slot) + p->vlen + 63) & ~(size_t)63;
	s->mask = n - 1;
	s->bytes = n * s->stride;
	s->seed = 0x9e3779b97f4a7c15ull;
	s->buf = malloc(p->vlen ? p->vlen : 1);
	if (huge_dir != NULL)
		s->base = map_in(huge_dir, s->bytes);
	else
		s->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->base == MAP_FAILED || s->buf == NULL) {
		if (s->base != MAP_FAILED)
			munmap(s->base, s->bytes);
		free(s->buf);
		free(s);
		return -ENOMEM;
	}
	*stp = s;
	return 0;
}

static int
s_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return open_in(p, stp, NULL);
}

static int
s_open_huge(const struct bench_params *p, void **stp, char *why,
	    size_t whylen)
{
	const char *dir = bench_huge_dir(why, whylen);

	if (dir == NULL)
		return -ENOTSUP;
	return open_in(p, stp, dir);
}

static int
s_reset(void *st)
{
	struct st *s = st;

	/* Zero in place: the pages stay mapped, so the next pass pays no
	 * page faults (mlc's arena is fully allocated at creation too). */
	memset(s->base, 0, s->bytes);
	return 0;
}

static void
s_close(void *st)
{
	struct st *s = st;

	munmap(s->base, s->bytes);
	free(s->buf);
	free(s);
}

static size_t
home(struct st *s, const char *key)
{
	return XXH3_64bits_withSeed(key, BENCH_KEY, s->seed) & s->mask;
}

static int
s_get(void *st, const char *key, uint64_t *chk)
{
	struct st *s = st;

	for (size_t i = home(s, key);; i = (i + 1) & s->mask) {
		struct slot *sl = slot_at(s, i);
		uint32_t q, len;

		q = atomic_load_explicit(&sl->seq, memory_order_acquire);
		if (q == 0)
			return -ENOENT;
		if (q & 1) {			/* being written */
			s->retries++;
			i = (i - 1) & s->mask;
			continue;
		}
		if (memcmp(sl->key, key, BENCH_KEY) != 0)
			continue;
		len = sl->len;
		if (len != GONE && len <= s->vcap)
			memcpy(s->buf, sl->val, len);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != q) {
			s->retries++;
			i = (i - 1) & s->mask;	/* read it again */
			continue;
		}
		if (len == GONE)
			continue;		/* a tombstone: go on probing */
		*chk += chk_bytes(s->buf, len);
		return (int)len;
	}
}

static int
s_set(void *st, const char *key, const void *val, size_t len)
{
	struct st *s = st;
	struct slot *reuse = NULL, *sl;
	uint32_t q;

	if (len > s->vcap)
		return -E2BIG;
	for (size_t i = home(s, key);; i = (i + 1) & s->mask) {
		sl = slot_at(s, i);
		q = atomic_load_explicit(&sl->seq, memory_order_relaxed);
		if (q == 0) {
			if (reuse != NULL)
				sl = reuse;
			break;
		}
		if (memcmp(sl->key, key, BENCH_KEY) == 0)
			break;
		if (sl->len == GONE && reuse == NULL)
			reuse = sl;
	}
	/* The one writer: odd, write, even. */
	q = atomic_load_explicit(&sl->seq, memory_order_relaxed);
	atomic_store_explicit(&sl->seq, q | 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(sl->key, key, BENCH_KEY);
	memcpy(sl->val, val, len);
	sl->len = (uint32_t)len;
	atomic_store_explicit(&sl->seq, (q | 1) + 1, memory_order_release);
	return 0;
}

static int
s_del(void *st, const char *key)
{
	struct st *s = st;

	for (size_t i = home(s, key);; i = (i + 1) & s->mask) {
		struct slot *sl = slot_at(s, i);
		uint32_t q = atomic_load_explicit(&sl->seq,
						  memory_order_relaxed);

		if (q == 0)
			return 0;
		if (sl->len != GONE && memcmp(sl->key, key, BENCH_KEY) == 0) {
			atomic_store_explicit(&sl->seq, q | 1,
					      memory_order_relaxed);
			atomic_thread_fence(memory_order_release);
			sl->len = GONE;
			atomic_store_explicit(&sl->seq, (q | 1) + 1,
					      memory_order_release);
			return 0;
		}
	}
}

static int
s_load(void *st, const char *key, const void *val, size_t len)
{
	uint64_t chk = 0;

	if (s_get(st, key, &chk) >= 0)
		return 0;
	return s_set(st, key, val, len);
}

static int
s_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	return fill_by_set(&impl_shm, st, keys, n, val, len);
}

static int
s_fork_child(void *st)
{
	return 0;	/* the mapping is inherited */
}

static int
s_mem(void *st, uint64_t items, double *per_item, char *note, size_t len)
{
	struct st *s = st;

	/* Sized at 2 slots per key, like a table at load factor 0.5. */
	*per_item = (double)s->bytes / (double)items;
	snprintf(note, len, "%zu slots x %zu B", s->mask + 1, s->stride);
	return 0;
}

/* Everything but the name, the role and where the table is mapped. */
#define S_OPS								\
	.close = s_close, .reset = s_reset, .get = s_get, .set = s_set,	\
	.del = s_del, .load = s_load, .fill = s_fill,			\
	.fork_child = s_fork_child, .mem = s_mem

const struct impl impl_shm = {
	.name = "shm", .role = "floor", .open = s_open, S_OPS
};

/* The same table on huge pages (bench.h). */
const struct impl impl_shm_huge = {
	.name = "shm-huge", .role = "variant", .open = s_open_huge, S_OPS
};
