/*
 * Time and fork detection.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "mlc-int.h"

/* Tests move time by hand instead of sleeping.  The offset is per process
 * (a forked child inherits it), and it only ever grows, so the clock stays
 * monotonic. */
static int64_t clock_offset;

uint64_t mlc__fork_generation;	/* mlc-int.h: mlc__fork_gen() */
static pid_t cached_pid;
static __thread pid_t cached_tid;
static __thread uint64_t cached_tid_gen = UINT64_MAX;

uint64_t
mlc__now_ms(void)
{
	struct timespec ts;

	/* COARSE: one tick (1-4 ms) of resolution for a vDSO read without
	 * a TSC read; TTLs are documented in whole milliseconds anyway. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
	       (uint64_t)ck_pr_load_64((uint64_t *)&clock_offset);
}

void
mlc__clock_advance(int64_t ms)
{
	if (ms > 0)
		ck_pr_add_64((uint64_t *)&clock_offset, (uint64_t)ms);
}

static void
on_fork_child(void)
{
	mlc__fork_generation++;
	cached_pid = getpid();
}

/* getpid() and gettid() are system calls in current glibc; the allocator
 * and single flight stamp them on every allocation and load. */
pid_t
mlc__pid(void)
{
	pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

	if (unlikely(p == 0)) {
		p = getpid();
		__atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

pid_t
mlc__tid(void)
{
	uint64_t gen = ck_pr_load_64(&mlc__fork_generation);

	if (unlikely(cached_tid_gen != gen)) {
		cached_tid = (pid_t)syscall(SYS_gettid);
		cached_tid_gen = gen;
	}
	return cached_tid;
}

/* Registered when the library is loaded, so that the check below is one
 * plain load on every call. */
__attribute__((constructor)) static void
fork_hook(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

