/*
 * Paths only mlc has, measured on their own: single-flight wake-up, the
 * invalidation check, a change reaching another process's L1, and bulk
 * lookups against a loop of single gets.  Each fills per-round (or
 * per-trial) nanoseconds and, where it makes sense, per-event samples.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlc.h"
#include "bench.h"
#include "mlc-paths.h"

static int
arena_new(struct mlc_arena **a, char *name, size_t cap, uint64_t bytes,
	  uint32_t max_items)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	static unsigned seq;

	snprintf(name, cap, "mlc-bench-%ld-p%u", (long)getpid(), seq++);
	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = bytes;
	o.max_items = max_items;
	return mlc_arena_open(a, name, &o);
}

static void
arena_gone(struct mlc_arena *a, const char *name)
{
	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
}

/* ---- single flight: publish to the last of 64 waiters woken ------------- */

/* The processes and threads live for the whole case, as a server's do
 * (fresh ones would mostly measure their first page faults): each trial
 * the loader process misses a new key and holds its flight until all 64
 * waiters are asleep on it, then returns. */

#define FW_PROCS 4
#define FW_THREADS 16
#define FW_WAITERS (FW_PROCS * FW_THREADS)

struct fw_shared {
	uint32_t go;			/* trial number + 1 released */
	uint32_t quit;
	uint32_t loader_in;		/* trial + 1 whose loader is running */
	uint32_t ready;			/* waiters about to call mlc_get */
	uint32_t done;			/* waiters back with the value */
	uint32_t loader_done;		/* trial + 1 the loader finished */
	uint32_t failed;
	uint64_t t_publish;		/* the loader returned */
	uint64_t t_woken[FW_WAITERS];
	uint32_t fword;			/* the floor's futex word */
};

static struct fw_shared *fw;
static struct mlc_arena *fw_arena;

/* Odd trials are the floor: the same processes and threads asleep on a
 * bare shared futex, woken by one FUTEX_WAKE, no mlc at all.  What the
 * kernel and the machine cost to wake 64 threads of 4 processes. */
static bool
fw_floor_trial(uint32_t t)
{
	return t & 1;
}

static void
fw_floor_wait(uint32_t t)
{
	uint32_t w;

	__atomic_fetch_add(&fw->ready, 1, __ATOMIC_ACQ_REL);
	while ((w = __atomic_load_n(&fw->fword, __ATOMIC_ACQUIRE)) != t + 1)
		syscall(SYS_futex, &fw->fword, FUTEX_WAIT, w, NULL, NULL, 0);
}

static void
fw_floor_wake(uint32_t t)
{
	while (__atomic_load_n(&fw->ready, __ATOMIC_ACQUIRE) < FW_WAITERS)
		usleep(100);
	usleep(20000);		/* as fw_loader: let the last fall asleep */
	__atomic_store_n(&fw->t_publish, bench_now_ns(), __ATOMIC_RELEASE);
	__atomic_store_n(&fw->fword, t + 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &fw->fword, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

static void
fw_key(char *key, size_t cap, uint32_t trial)
{
	snprintf(key, cap, "cold-%u", trial);
}

static int
fw_loader(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	uint32_t trial = *(uint32_t *)arg;

	__atomic_store_n(&fw->loader_in, trial + 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&fw->ready, __ATOMIC_ACQUIRE) < FW_WAITERS)
		usleep(100);
	usleep(20000);		/* let the last ones fall asleep */
	out->data = "value";
	out->len = 5;
	__atomic_store_n(&fw->t_publish, bench_now_ns(), __ATOMIC_RELEASE);
	return MLC_LOAD_VALUE;
}

/* Wait for trial @p t to be released (or the end): false to stop. */
static bool
fw_wait_go(uint32_t t)
{
	while (__atomic_load_n(&fw->go, __ATOMIC_ACQUIRE) < t + 1)
		if (__atomic_load_n(&fw->quit, __ATOMIC_ACQUIRE))
			return false;
		else
			usleep(100);
	return true;
}

static void *
fw_waiter(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct mlc_cache *c;
	char key[32];

	if (mlc_cache_open(&c, fw_arena, "flight", NULL) != 0) {
		__atomic_store_n(&fw->failed, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	for (uint32_t t = 0; fw_wait_go(t); t++) {
		struct mlc_value v;

		if (fw_floor_trial(t)) {
			fw_floor_wait(t);
			fw->t_woken[id] = bench_now_ns();
			__atomic_fetch_add(&fw->done, 1, __ATOMIC_ACQ_REL);
			continue;
		}
		while (__atomic_load_n(&fw->loader_in, __ATOMIC_ACQUIRE) != t + 1)
			usleep(100);
		fw_key(key, sizeof(key), t);
		__atomic_fetch_add(&fw->ready, 1, __ATOMIC_ACQ_REL);
		if (mlc_get(c, key, strlen(key), NULL, NULL, &v) == -ENOENT &&
		    mlc_get(c, key, strlen(key), fw_loader, &t, &v) != 0)
			__atomic_store_n(&fw->failed, 1, __ATOMIC_RELEASE);
		else
			mlc_value_release(&v);
		fw->t_woken[id] = bench_now_ns();
		__atomic_fetch_add(&fw->done, 1, __ATOMIC_ACQ_REL);
	}
	mlc_cache_close(c);
	return NULL;
}

static int
fw_proc(int p)
{
	pthread_t th[FW_THREADS];

	for (int i = 0; i < FW_THREADS; i++)
		pthread_create(&th[i], NULL, fw_waiter,
			       (void *)(intptr_t)(p * FW_THREADS + i));
	for (int i = 0; i < FW_THREADS; i++)
		pthread_join(th[i], NULL);
	return 0;
}

static int
fw_loader_proc(void)
{
	struct mlc_cache *c;
	char key[32];

	if (mlc_cache_open(&c, fw_arena, "flight", NULL) != 0)
		return 1;
	for (uint32_t t = 0; fw_wait_go(t); t++) {
		struct mlc_value v;

		if (fw_floor_trial(t)) {
			fw_floor_wake(t);
			__atomic_store_n(&fw->loader_done, t + 1,
					 __ATOMIC_RELEASE);
			continue;
		}
		fw_key(key, sizeof(key), t);
		if (mlc_get(c, key, strlen(key), fw_loader, &t, &v) == 0)
			mlc_value_release(&v);
		else
			__atomic_store_n(&fw->failed, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&fw->loader_done, t + 1, __ATOMIC_RELEASE);
	}
	mlc_cache_close(c);
	return 0;
}

int
mlcp_flight_wake(int trials, double *last_ns, double *floor_ns,
		 double *all_ns, size_t *nall, char *note, size_t cap)
{
	pid_t pids[FW_PROCS + 1];
	char name[64];
	int rc;

	*nall = 0;
	rc = arena_new(&fw_arena, name, sizeof(name), 16u << 20, 0);
	if (rc < 0)
		return rc;
	fw = mmap(NULL, sizeof(*fw), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fw == MAP_FAILED) {
		arena_gone(fw_arena, name);
		return -errno;
	}
	memset(fw, 0, sizeof(*fw));
	fflush(NULL);
	if ((pids[FW_PROCS] = fork()) == 0)
		_exit(fw_loader_proc());
	for (int p = 0; p < FW_PROCS; p++)
		if ((pids[p] = fork()) == 0)
			_exit(fw_proc(p));
	/* Trials alternate mlc and the floor (fw_floor_trial), one
	 * warm-up of each first, not counted. */
	for (int t = 0; t < 2 * (trials + 1) && rc == 0; t++) {
		uint64_t last = 0;

		__atomic_store_n(&fw->ready, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&fw->done, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&fw->go, (uint32_t)t + 1, __ATOMIC_RELEASE);
		while ((__atomic_load_n(&fw->done, __ATOMIC_ACQUIRE) < FW_WAITERS ||
			__atomic_load_n(&fw->loader_done, __ATOMIC_ACQUIRE) <
				(uint32_t)t + 1) &&
		       !__atomic_load_n(&fw->failed, __ATOMIC_ACQUIRE))
			usleep(500);
		if (fw->failed) {
			snprintf(note, cap, "trial %d: a waiter failed", t);
			rc = -EIO;
			break;
		}
		if (t < 2)
			continue;
		for (int i = 0; i < FW_WAITERS; i++) {
			uint64_t w = fw->t_woken[i];

			if (w > last)
				last = w;
			if (!fw_floor_trial((uint32_t)t))
				all_ns[(*nall)++] = w > fw->t_publish ?
					(double)(w - fw->t_publish) : 0;
		}
		if (fw_floor_trial((uint32_t)t))
			floor_ns[t / 2 - 1] = (double)(last - fw->t_publish);
		else
			last_ns[t / 2 - 1] = (double)(last - fw->t_publish);
	}
	__atomic_store_n(&fw->quit, 1, __ATOMIC_RELEASE);
	for (int p = 0; p <= FW_PROCS; p++)
		waitpid(pids[p], NULL, 0);
	if (rc == 0)
		snprintf(note, cap, "%d waiters (%d processes x %d threads, "
			 "long-lived) asleep on the flight; ns from the "
			 "loader's return to the last waiter's mlc_get "
			 "returning with the value; futex: the same threads "
			 "on a bare shared futex, alternate trials",
			 FW_WAITERS, FW_PROCS,
			 FW_THREADS);
	munmap(fw, sizeof(*fw));
	arena_gone(fw_arena, name);
	return rc;
}

/* ---- the invalidation check ---------------------------------------------- */

/* The check is one load of the log head per mlc_get; measure it as the
 * difference between L1 hits with the check and with it off
 * (MLC_CACHE_MANUAL_UPDATE), interleaved round by round. */
int
mlcp_inval_check(int rounds, uint64_t ops, double *with_ns,
		 double *without_ns, char *note, size_t cap)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *on, *off;
	struct mlc_arena *a;
	char name[64], keys[64][17];
	int rc;

	rc = arena_new(&a, name, sizeof(name), 16u << 20, 0);
	if (rc < 0)
		return rc;
	o.ttl_ms = MLC_TTL_NEVER;
	mlc_cache_open(&on, a, "check", &o);
	o.flags = MLC_CACHE_MANUAL_UPDATE;
	mlc_cache_open(&off, a, "check", &o);
	for (int i = 0; i < 64; i++) {
		struct mlc_value v;

		snprintf(keys[i], sizeof(keys[i]), "key-%011d", i);
		mlc_set(on, keys[i], 16, "0123456789abcdef", 16, NULL);
		mlc_get(off, keys[i], 16, NULL, NULL, &v);
		mlc_value_release(&v);
	}
	for (int r = 0; r < rounds; r++) {
		for (int pass = 0; pass < 2; pass++) {
			struct mlc_cache *c = (pass ^ (r & 1)) ? off : on;
			uint64_t t0 = bench_now_ns();

			for (uint64_t i = 0; i < ops; i++) {
				struct mlc_value v;

				mlc_get(c, keys[i & 63], 16, NULL, NULL, &v);
				mlc_value_release(&v);
			}
			(c == on ? with_ns : without_ns)[r] =
				(double)(bench_now_ns() - t0) / (double)ops;
		}
	}
	snprintf(note, cap, "mlc_get L1 hit with the automatic check minus "
		 "without it (MLC_CACHE_MANUAL_UPDATE), rounds interleaved");
	mlc_cache_close(on);
	mlc_cache_close(off);
	arena_gone(a, name);
	return 0;
}

/* ---- a change reaching another process's L1 ------------------------------ */

struct prop_shared {
	uint32_t want;		/* the version the writer just set */
	uint32_t seen;		/* the version the reader saw */
	uint32_t stop;
	uint64_t t_set;		/* before mlc_set */
	uint64_t t_seen;
};

int
mlcp_propagate(int trials, double *lat_ns, char *note, size_t cap)
{
	struct prop_shared *ps;
	struct mlc_arena *a;
	struct mlc_cache *w;
	char name[64], buf[16];
	pid_t pid;
	int rc, st;

	rc = arena_new(&a, name, sizeof(name), 16u << 20, 0);
	if (rc < 0)
		return rc;
	ps = mmap(NULL, sizeof(*ps), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ps == MAP_FAILED) {
		arena_gone(a, name);
		return -errno;
	}
	memset(ps, 0, sizeof(*ps));
	mlc_cache_open(&w, a, "prop", NULL);
	mlc_set(w, "k", 1, "0", 1, NULL);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		/* The reader: L1 hits in a loop until the value changes. */
		struct mlc_cache *r;
		struct mlc_value v;

		mlc_cache_open(&r, a, "prop", NULL);
		while (!__atomic_load_n(&ps->stop, __ATOMIC_ACQUIRE)) {
			uint32_t want = __atomic_load_n(&ps->want,
							__ATOMIC_ACQUIRE);

			if (mlc_get(r, "k", 1, NULL, NULL, &v) != 0)
				continue;
			if ((uint32_t)strtoul(v.data ? (const char *)v.data :
					      "0", NULL, 10) == want &&
			    want != __atomic_load_n(&ps->seen,
						    __ATOMIC_RELAXED)) {
				ps->t_seen = bench_now_ns();
				__atomic_store_n(&ps->seen, want,
						 __ATOMIC_RELEASE);
			}
			mlc_value_release(&v);
		}
		mlc_cache_close(r);
		_exit(0);
	}
	for (int t = 0; t < trials; t++) {
		uint32_t ver = (uint32_t)t + 1;
		int len = snprintf(buf, sizeof(buf), "%u", ver % 10);
		uint64_t spin = 0;

		usleep(1000);		/* the reader is in its L1 loop */
		/* Values cycle 1..9,0: the reader compares ver % 10. */
		__atomic_store_n(&ps->want, ver % 10, __ATOMIC_RELEASE);
		__atomic_store_n(&ps->seen, UINT32_MAX, __ATOMIC_RELEASE);
		ps->t_set = bench_now_ns();
		mlc_set(w, "k", 1, buf, (size_t)len, NULL);
		while (__atomic_load_n(&ps->seen, __ATOMIC_ACQUIRE) !=
		       ver % 10 && ++spin < 2000000000u)
			sched_yield();
		lat_ns[t] = (double)(ps->t_seen - ps->t_set);
	}
	__atomic_store_n(&ps->stop, 1, __ATOMIC_RELEASE);
	waitpid(pid, &st, 0);
	snprintf(note, cap, "ns from just before mlc_set in one process to "
		 "another process's next mlc_get returning the new value "
		 "(it spins on L1 hits)");
	munmap(ps, sizeof(*ps));
	mlc_cache_close(w);
	arena_gone(a, name);
	return 0;
}

/* ---- bulk against single gets -------------------------------------------- */

int
mlcp_bulk(uint32_t nkeys, int batch, int rounds, uint64_t ops,
	  double *single_ns, double *bulk_ns, char *note, size_t cap)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_bulk_item *it;
	struct mlc_arena *a;
	struct mlc_cache *c;
	char name[64], *keys;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int rc;

	rc = arena_new(&a, name, sizeof(name),
		       (64u << 20) + (uint64_t)nkeys * 160, nkeys * 2 + 1024);
	if (rc < 0)
		return rc;
	o.flags = MLC_CACHE_NO_L1;	/* every lookup is a cold L2 read */
	o.ttl_ms = MLC_TTL_NEVER;
	mlc_cache_open(&c, a, "bulk", &o);
	keys = malloc((size_t)nkeys * 17);
	it = calloc((size_t)batch, sizeof(*it));
	for (uint32_t i = 0; i < nkeys; i++) {
		snprintf(keys + (size_t)i * 17, 17, "key-%011u", i);
		mlc_set(c, keys + (size_t)i * 17, 16, "0123456789abcdef", 16,
			NULL);
	}
	for (int r = 0; r < rounds; r++) {
		for (int pass = 0; pass < 2; pass++) {
			bool bulk = pass ^ (r & 1);
			uint64_t t0 = bench_now_ns();

			for (uint64_t i = 0; i < ops; i += (uint64_t)batch) {
				for (int j = 0; j < batch; j++) {
					x = x * 6364136223846793005ull + 1;
					it[j].key = keys +
						(size_t)((x >> 33) % nkeys) * 17;
					it[j].key_len = 16;
				}
				if (bulk) {
					mlc_get_bulk(c, it, (size_t)batch, NULL,
						     NULL, NULL);
					for (int j = 0; j < batch; j++)
						mlc_value_release(&it[j].value);
					continue;
				}
				for (int j = 0; j < batch; j++) {
					struct mlc_value v;

					if (mlc_get(c, it[j].key, 16, NULL,
						    NULL, &v) == 0)
						mlc_value_release(&v);
				}
			}
			(bulk ? bulk_ns : single_ns)[r] =
				(double)(bench_now_ns() - t0) / (double)ops;
		}
	}
	snprintf(note, cap, "ns per key, %u keys cold in L2 (L1 off), %d keys "
		 "per mlc_get_bulk vs the same keys by mlc_get one by one",
		 nkeys, batch);
	free(it);
	free(keys);
	mlc_cache_close(c);
	arena_gone(a, name);
	return 0;
}
