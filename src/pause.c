/*
 * Pause points for tests (see pause.h).  Compiled only into the library
 * the tests link (MLC_PAUSE_POINTS); release builds have none of this.
 *
 * MLC_TEST_DELAYS=N makes each pause point sleep, with probability 1/N, for
 * a random time up to MLC_TEST_DELAY_US (default 2000 µs): the windows a
 * plain stress run crosses in nanoseconds become milliseconds wide.
 */
#include <stdlib.h>
#include <time.h>

#include <ck_pr.h>

#include "mlc-int.h"
#include "pause.h"

#ifdef MLC_PAUSE_POINTS

void (*mlc__pause_hook)(enum mlc__pause_point p, void *arg);
void *mlc__pause_arg;
unsigned long mlc__pause_hits[MLC__P_COUNT];
int mlc__test_no_tmpfile;
unsigned long mlc__test_move_alloc_fail_every;
uint64_t (*mlc__test_tmp_bits)(void);

static const char *const names[] = {
#define MLC__PAUSE_NAME(name) #name,
	MLC__PAUSE_POINTS(MLC__PAUSE_NAME)
#undef MLC__PAUSE_NAME
};

const char *
mlc__pause_name(enum mlc__pause_point p)
{
	return (unsigned)p < MLC__P_COUNT ? names[p] : "?";
}

/* 0: not read yet; then 1 + the 1/N odds, or 1 for none. */
static int delay_odds;
static unsigned delay_max_us = 2000;
static __thread uint64_t rnd;

static void
delays_init(void)
{
	const char *e = getenv("MLC_TEST_DELAYS");
	const char *m = getenv("MLC_TEST_DELAY_US");
	int n = e ? atoi(e) : 0;

	if (m != NULL && atoi(m) > 0)
		delay_max_us = (unsigned)atoi(m);
	ck_pr_store_int(&delay_odds, n > 0 ? n + 1 : 1);
}

static uint64_t
next_rand(void)
{
	if (rnd == 0)
		rnd = ((uint64_t)mlc__tid() << 32 | (uint32_t)mlc__pid()) *
		      UINT64_C(0x9e3779b97f4a7c15) | 1;
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	return rnd;
}

void
mlc__pause(enum mlc__pause_point p)
{
	void (*hook)(enum mlc__pause_point, void *);
	int odds = ck_pr_load_int(&delay_odds);

	if ((unsigned)p < MLC__P_COUNT)
		__atomic_fetch_add(&mlc__pause_hits[p], 1, __ATOMIC_RELAXED);
	hook = __atomic_load_n(&mlc__pause_hook, __ATOMIC_ACQUIRE);
	if (hook != NULL)
		hook(p, mlc__pause_arg);
	if (odds == 0) {
		delays_init();
		odds = ck_pr_load_int(&delay_odds);
	}
	if (odds > 1 && next_rand() % (uint64_t)(odds - 1) == 0) {
		uint64_t us = next_rand() % delay_max_us + 1;
		struct timespec ts = { (time_t)(us / 1000000),
				       (long)(us % 1000000) * 1000 };

		nanosleep(&ts, NULL);
	}
}

void
mlc__pause_delays(int n)
{
	ck_pr_store_int(&delay_odds, n > 0 ? n + 1 : 1);
}
#endif /* MLC_PAUSE_POINTS */
