/*
 * Time and fork detection.
 */
#include <pthread.h>
#include <time.h>

#include <ck_pr.h>

#include "mlc-int.h"

/* Tests move time by hand instead of sleeping.  The offset is per process
 * (a forked child inherits it), and it only ever grows, so the clock stays
 * monotonic. */
static int64_t clock_offset;

static uint64_t fork_generation;

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
	fork_generation++;
}

/* Registered when the library is loaded, so that the check below is one
 * plain load on every call. */
__attribute__((constructor)) static void
fork_hook(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* A number that changes in a child after fork(): handles remember the one
 * they were opened under, so use in a child is one load to detect (getpid()
 * is a system call in current glibc). */
uint64_t
mlc__fork_gen(void)
{
	return ck_pr_load_64(&fork_generation);
}
