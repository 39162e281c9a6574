/*
 * Helpers shared by the tests: unique arena names that are removed at exit,
 * forked children, and the library's test clock.
 */
#ifndef MLC_TEST_COMMON_H
#define MLC_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mlc.h"

/* Exit status meaning "skipped" to meson. */
#define T_SKIP 77

/* A fresh arena name ("mlc-t-<pid>-<n>-<random>"), unlinked at exit and by
 * t_cleanup().  The returned string is static storage per call site use:
 * copy it if you need two at once. */
const char *t_name(char *buf, size_t cap);

/* Create an arena with @p bytes (0: 8 MiB) and 64 KiB pages under a fresh
 * name; fails the test on error. */
struct mlc_arena *t_arena(char *name, size_t cap, uint64_t bytes,
			  uint32_t max_items);

/* A codec whose objects are NUL-terminated copies of the bytes, and that
 * cannot decode the 3 bytes "bad" (-EINVAL): a value kept out of L1. */
extern const struct mlc_codec t_codec_no_bad;
int t_decode_no_bad(void *arg, const void *data, size_t len, void **obj);
void t_free_obj(void *arg, void *obj);

/* Open a cache on @p a with default options (or @p o). */
struct mlc_cache *t_cache(struct mlc_arena *a, const char *ns,
			  const struct mlc_cache_options *o);

/* The fixture most test files share: a fresh arena (t_arena()'s
 * defaults) and, with @p ns, a cache on it with default options (else
 * c is NULL).  t_fx_open() puts it in *state (static storage: one per
 * process at a time), t_fx_close() closes both and removes the arena. */
struct t_fx {
	char name[64];
	struct mlc_arena *a;
	struct mlc_cache *c;
};
int t_fx_open(void **state, const char *ns);
int t_fx_arena(void **state);	/* t_fx_open(state, NULL) */
int t_fx_close(void **state);

/* Run fn(arg) in a forked child; return its exit status (0 = pass), or
 * 128 + signal if it was killed. */
int t_fork(int (*fn)(void *), void *arg);
/* Start a child without waiting; t_wait() collects its status. */
int t_spawn(int (*fn)(void *), void *arg);
int t_wait(int pid);
/* t_wait() for at most @p ms: -1 if @p pid is still running then (it is
 * left so).  Time the machine stood still as a whole does not count: a VM
 * paused by its host (32 s seen on a 2-core CI machine, "workqueue
 * lockup" in dmesg) stops this poller too, which then sees one 1 ms nap
 * last seconds, and must not take every child it waits for as hung. */
int t_wait_ms(int pid, long ms);

/* Leave this process no free descriptor (RLIMIT_NOFILE lowered to the
 * lowest free one): every open() then fails with EMFILE, as at a server's
 * limit, until t_fds_back().  0, or -1 if that could not be set up. */
int t_fds_none(void);
/* The descriptors back (the hard limit): 0, or -1. */
int t_fds_back(void);

/* Remove every arena this process named. */
void t_cleanup(void);
/* The same from a signal handler about to _exit() (a hang's alarm):
 * unlink(2) of each /dev/shm name, nothing that is not async-signal-safe. */
void t_cleanup_signal(void);
void t_shm_unlink_signal(const char *name);

/* Exit 77 when /dev/shm is not usable. */
void t_require_shm(void);

/* Run only the tests whose names match $MLC_TEST_FILTER (a cmocka glob:
 * MLC_TEST_FILTER='*oversize*'), if set; call before the run. */
void t_filter(void);

/* The library's per-process test clock (src/clock.c). */
void mlc__clock_advance(int64_t ms);
uint64_t mlc__now_ms(void);

#endif
