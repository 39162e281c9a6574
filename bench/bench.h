/*
 * The benchmark driver's view of an implementation: mlc, or one of its
 * peers.  Every implementation answers the same calls, so that a case runs
 * the same loop over each of them in the same session and reports ratios.
 */
#ifndef MLC_BENCH_H
#define MLC_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BENCH_KEY 16		/* every key is 16 printable bytes */

/* What a case needs from an implementation.  mlc reads mode and lru_size;
 * the peers read the sizes only. */
enum bench_mode {
	BM_L1 = 1,		/* mlc: L1 big enough for every key */
	BM_L2,			/* mlc: MLC_CACHE_NO_L1, every get reads L2 */
	BM_SMALL_L1,		/* mlc: L1 of lru_size entries */
};

struct bench_params {
	enum bench_mode mode;
	uint32_t nkeys;		/* most keys alive at once (for sizing) */
	uint32_t vlen;		/* largest value */
	uint32_t lru_size;	/* BM_SMALL_L1 */
	const char *tmpdir;	/* private directory for sockets and files */
	int server_cpu;		/* CPU for servers, -1: anywhere */
};

/*
 * One implementation.  Calls return 0 or a negative errno; get returns the
 * value length, or -ENOENT on a miss.  A get "uses" the value the way a
 * caller would: it reads all of its bytes (chk_bytes) into *chk, and
 * releases whatever the implementation handed out, inside the timed call.
 */
struct impl {
	const char *name;
	const char *role;	/* "subject", "ceiling", "floor", "peer" */
	bool remote;		/* a server: each op is a round trip */
	/* 0, or -ENOTSUP with a reason for a "skipped" row. */
	int (*open)(const struct bench_params *p, void **st, char *why,
		    size_t whylen);
	void (*close)(void *st);
	int (*reset)(void *st);				/* drop every key */
	int (*get)(void *st, const char *key, uint64_t *chk);
	int (*set)(void *st, const char *key, const void *val, size_t len);
	int (*del)(void *st, const char *key);
	/* A miss that is then stored: mlc_get with a loader, else get + set. */
	int (*load)(void *st, const char *key, const void *val, size_t len);
	/* Store n keys (16 bytes each, contiguous), outside the timing. */
	int (*fill)(void *st, const char *keys, size_t n, const void *val,
		    size_t len);
	/* In a child after fork(): reopen what cannot cross fork.  NULL: the
	 * implementation cannot run in forked children. */
	int (*fork_child)(void *st);
	/* Memory per item for the stored keys; NULL if not measurable. */
	int (*mem)(void *st, uint64_t items, double *per_item, char *note,
		   size_t notelen);
	/* After a case: a warning (wrong level, evictions...) or "". */
	void (*check)(void *st, char *msg, size_t len);
};

/* The implementations (some are compiled only when their peer's library
 * was found; see meson.build). */
extern const struct impl impl_mlc;
extern const struct impl impl_hash;
extern const struct impl impl_shm;
/* The same two with their memory on huge pages: in files on the tmpfs that
 * $MLC_BENCH_HUGE_DIR names, mounted huge=within_size (bench/run.sh
 * --huge mounts one); skipped when it is not set. */
extern const struct impl impl_mlc_huge;
extern const struct impl impl_shm_huge;
const char *bench_huge_dir(char *why, size_t whylen);
#ifdef HAVE_LMDB
extern const struct impl impl_lmdb;
#endif
#ifdef HAVE_HIREDIS
extern const struct impl impl_redis;
#endif
#ifdef HAVE_MEMCACHED
extern const struct impl impl_memcached;
#endif

/* server.c: servers the benchmark starts and stops itself. */
struct server {
	const char *name;	/* "redis", "memcached" */
	int pid;		/* 0: not running */
	char sock[256];		/* its unix socket */
	char why[160];		/* why it could not start */
};
int server_start(struct server *s, const char *tmpdir, int cpu,
		 const char *const argv[]);
void server_stop(struct server *s);
void servers_stop_all(void);
int wait_for_socket(const char *path, int ms);
bool have_program(const char *prog);

/* Fill a generic "fill" with set() calls. */
int fill_by_set(const struct impl *im, void *st, const char *keys, size_t n,
		const void *val, size_t len);

/*
 * Use a value as a caller would: read every byte of it (a sum of 64-bit
 * words).  Whether an implementation copied the value out (mlc, the shm
 * floor, the servers' clients) or hands out a pointer into its own memory
 * (LMDB, the in-process table), the bytes are read once here, inside the
 * timed call.
 */
static inline uint64_t
chk_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t sum = 0, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		__builtin_memcpy(&w, p + i, 8);
		sum += w;
	}
	for (; i < len; i++)
		sum += p[i];
	return sum;
}

/* The bench programs' random numbers (splitmix64): one state word. */
static inline uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Shuffle @p n keys of BENCH_KEY bytes each in place (Fisher-Yates). */
static inline void
shuffle_keys(char *keys, size_t n, uint64_t seed)
{
	char tmp[BENCH_KEY];

	for (size_t i = n - 1; i > 0; i--) {
		size_t j = splitmix(&seed) % (i + 1);

		__builtin_memcpy(tmp, keys + i * BENCH_KEY, BENCH_KEY);
		__builtin_memcpy(keys + i * BENCH_KEY, keys + j * BENCH_KEY,
				 BENCH_KEY);
		__builtin_memcpy(keys + j * BENCH_KEY, tmp, BENCH_KEY);
	}
}

/* Monotonic nanoseconds, for every bench program's timing. */
static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* MLC_BENCH_H */
