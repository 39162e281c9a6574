/*
 * bench-lock-pair: what one uncontended lock and unlock costs, for the
 * locks a set could take in the arena.  A set takes four pairs (two index
 * stripes, the class lock for the new chunk and again for the old one's
 * free), so this is the whole of what replacing the lock could save.
 *
 *   bench-lock-pair [PAIRS [ROUNDS]]   (20000000 3)
 *
 * Each way, in ns per pair, every round:
 *   pshared     a process-shared pthread mutex
 *   robust      the same, robust: the arena's lock (src/arena.c), which
 *               the kernel releases with EOWNERDEAD when its holder dies
 *   own futex   the fast path of a lock of our own: CAS of a shared word
 *               from 0 to the thread's id, exchange back to 0 (a waiter
 *               bit would make the unlock wake); its death detection
 *               would be ours to build, which the robust mutex has from
 *               the kernel
 *   two RMWs    two atomic read-modify-writes on one word: the floor of
 *               any lock that is taken and given back
 * bench/results/latest/profile.md, "set", reads the numbers.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <ck_pr.h>

#include "bench.h"	/* bench_now_ns() */

enum way { PSHARED, ROBUST, OWN, RMW, WAYS };

static const char *const names[WAYS] = {
	"pshared", "robust", "own futex", "two RMWs",
};

static pthread_mutex_t plain_lock, robust_lock;
static uint32_t word;
static uint32_t me;

static int
init_lock(pthread_mutex_t *m, int robust)
{
	pthread_mutexattr_t at;
	int rc;

	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	if (robust)
		pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(m, &at);
	pthread_mutexattr_destroy(&at);
	return rc;
}

static void
run(enum way w, long pairs)
{
	for (long i = 0; i < pairs; i++) {
		switch (w) {
		case PSHARED:
			pthread_mutex_lock(&plain_lock);
			pthread_mutex_unlock(&plain_lock);
			break;
		case ROBUST:
			pthread_mutex_lock(&robust_lock);
			pthread_mutex_unlock(&robust_lock);
			break;
		case OWN:
			while (!ck_pr_cas_32(&word, 0, me))
				ck_pr_stall();
			ck_pr_fence_lock();
			ck_pr_fence_unlock();
			if (ck_pr_fas_32(&word, 0) != me)
				abort();
			break;
		case RMW:
			ck_pr_inc_32(&word);
			ck_pr_dec_32(&word);
			break;
		case WAYS:
			break;
		}
	}
}

int
main(int argc, char **argv)
{
	long pairs = argc > 1 ? strtol(argv[1], NULL, 0) : 20000000;
	long rounds = argc > 2 ? strtol(argv[2], NULL, 0) : 3;

	if (pairs <= 0 || rounds <= 0) {
		fprintf(stderr, "usage: bench-lock-pair [PAIRS [ROUNDS]]\n");
		return 2;
	}
	if (init_lock(&plain_lock, 0) != 0 || init_lock(&robust_lock, 1) != 0) {
		fprintf(stderr, "bench-lock-pair: pthread_mutex_init failed\n");
		return 1;
	}
	me = (uint32_t)gettid();
	printf("%ld pairs a round, ns per lock and unlock\n", pairs);
	for (long r = 0; r < rounds; r++) {
		for (int w = 0; w < WAYS; w++) {
			uint64_t t0 = bench_now_ns();

			run((enum way)w, pairs);
			printf("%s%s %.1f", w ? "  " : "", names[w],
			       (double)(bench_now_ns() - t0) / (double)pairs);
		}
		printf("\n");
	}
	return 0;
}
