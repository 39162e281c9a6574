/*
 * Paths only mlc has (bench/mlc-paths.c).  Each returns 0 or -errno.
 */
#ifndef MLC_BENCH_PATHS_H
#define MLC_BENCH_PATHS_H

#include <stddef.h>
#include <stdint.h>

/* last_ns[trials]: publish to the last waiter woken; floor_ns[trials]:
 * the same for a bare shared futex (alternate trials); all_ns gets every
 * mlc waiter's latency (64 per trial). */
int mlcp_flight_wake(int trials, double *last_ns, double *floor_ns,
		     double *all_ns, size_t *nall, char *note, size_t cap);
int mlcp_inval_check(int rounds, uint64_t ops, double *with_ns,
		     double *without_ns, char *note, size_t cap);
int mlcp_propagate(int trials, double *lat_ns, char *note, size_t cap);
int mlcp_bulk(uint32_t nkeys, int batch, int rounds, uint64_t ops,
	      double *single_ns, double *bulk_ns, char *note, size_t cap);

#endif
