/*
 * A scripted workload whose hit and miss counts are known in advance, for
 * tests/test-mlcctl.sh: every kind of lookup once or twice (L1, L2, a load,
 * a negative load and hit, nothing found, a loader error, a stale value
 * with and without a load, a wait for another process's load), in three
 * handles of namespace "wl", one of them in a forked child.
 *
 *   stats-workload ARENA-FILE
 *
 * Creates the file arena, checks each handle's own mlc_stats() against the
 * script, closes every handle (which flushes), and prints the namespace
 * totals the script implies as one JSON object, named as the fields of
 * struct mlc_stats, for the caller to compare with what mlcctl reports.
 * Exit 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlc.h"

void mlc__clock_advance(int64_t ms);	/* the library's test clock */

#define NS "wl"

struct want {
	uint64_t hits_l1, hits_l2, hits_l3, misses, negative_hits;
	uint64_t stale_served, loads, loader_errors, lock_waits, sets;
};

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "stats-workload:%d: %s\n", __LINE__, #cond); \
	failures++; } } while (0)

static int
load_value(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	int fd = arg ? *(int *)arg : -1;

	if (fd >= 0) {
		/* Tell the parent the flight is ours, then keep it a while,
		 * so that its get of the key waits for this load. */
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		if (write(fd, "L", 1) != 1)
			return -EIO;
		nanosleep(&ts, NULL);
	}
	out->data = "value";
	out->len = 5;
	return MLC_LOAD_VALUE;
}

static int
load_none(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	return MLC_LOAD_NOTFOUND;
}

static int
load_fail(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	snprintf(out->errmsg, sizeof(out->errmsg), "backend down");
	return -EIO;
}

static int
load_never(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	fprintf(stderr, "stats-workload: the waiter ran its loader\n");
	failures++;
	return load_value(NULL, key, len, out);
}

static int
get(struct mlc_cache *c, const char *key, uint32_t flags, mlc_loader_fn *fn,
    void *arg)
{
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	struct mlc_value v;
	int rc;

	co.flags = flags;
	rc = mlc_get_ex(c, key, strlen(key), &co, fn, arg, &v);
	if (rc == 0)
		mlc_value_release(&v);
	return rc;
}

static void
check(struct mlc_cache *c, const struct want *w, const char *who)
{
	struct mlc_stats st = MLC_STATS_INIT;

	if (mlc_stats(c, &st) != 0) {
		fprintf(stderr, "stats-workload: mlc_stats failed\n");
		failures++;
		return;
	}
#define EQ(f) do { if (st.f != w->f) { \
	fprintf(stderr, "stats-workload: %s: %s is %" PRIu64 ", want %" \
		PRIu64 "\n", who, #f, st.f, w->f); failures++; } } while (0)
	EQ(hits_l1); EQ(hits_l2); EQ(hits_l3); EQ(misses); EQ(negative_hits);
	EQ(stale_served); EQ(loads); EQ(loader_errors); EQ(lock_waits);
	EQ(sets);
#undef EQ
	/* Every lookup is one hit or one miss. */
	CHECK(st.hits_l1 + st.hits_l2 + st.misses ==
	      w->hits_l1 + w->hits_l2 + w->misses);
}

/* The child: loads "w" while the parent waits for it. */
static int
child(struct mlc_arena *a, int fd)
{
	const struct want w = { .misses = 1, .hits_l3 = 1, .loads = 1 };
	struct mlc_cache *c;

	if (mlc_cache_open(&c, a, NS, NULL) != 0)
		return 1;
	CHECK(get(c, "w", 0, load_value, &fd) == 0);
	check(c, &w, "child");
	mlc_cache_close(c);		/* flushes */
	return failures ? 1 : 0;
}

int
main(int argc, char **argv)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_call_options neg = MLC_CALL_OPTIONS_INIT;
	struct mlc_call_options t10 = MLC_CALL_OPTIONS_INIT;
	struct want wc = { 0 }, ww = { 0 };
	struct mlc_cache *c, *w;
	struct mlc_arena *a;
	int fds[2], status, rc;
	pid_t pid;
	char b;

	if (argc != 2) {
		fprintf(stderr, "usage: stats-workload ARENA-FILE\n");
		return 2;
	}
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL | MLC_ARENA_FILE;
	ao.bytes = 8 << 20;
	ao.page_size = 64 << 10;
	if ((rc = mlc_arena_open(&a, argv[1], &ao)) != 0) {
		fprintf(stderr, "stats-workload: %s: %s\n", argv[1],
			mlc_strerror(rc));
		return 1;
	}
	co.resurrect_ttl_ms = 1000;
	if (mlc_cache_open(&c, a, NS, &co) != 0 ||
	    mlc_cache_open(&w, a, NS, NULL) != 0)
		return 1;

	CHECK(get(c, "a", 0, load_value, NULL) == 0);	/* load: miss */
	wc.misses++, wc.loads++, wc.hits_l3++;
	CHECK(get(c, "a", 0, load_value, NULL) == 0);	/* L1 hit */
	wc.hits_l1++;
	CHECK(mlc_set(w, "b", 1, "bee", 3, NULL) == 0);
	ww.sets++;
	CHECK(get(c, "b", 0, NULL, NULL) == 0);		/* L2 hit */
	wc.hits_l2++;
	CHECK(get(c, "n", 0, load_none, NULL) == 0);	/* negative load */
	wc.misses++, wc.loads++, wc.hits_l3++;
	CHECK(get(c, "n", 0, load_none, NULL) == 0);	/* L1 negative hit */
	wc.hits_l1++, wc.negative_hits++;
	neg.flags = MLC_CALL_NEGATIVE;
	CHECK(mlc_set(w, "m", 1, NULL, 0, &neg) == 0);
	ww.sets++;
	CHECK(get(c, "m", 0, NULL, NULL) == 0);		/* L2 negative hit */
	wc.hits_l2++, wc.negative_hits++;
	CHECK(get(c, "x", 0, NULL, NULL) == -ENOENT);	/* nothing found */
	wc.misses++;
	CHECK(get(c, "e", 0, load_fail, NULL) == MLC_ELOADER);
	wc.misses++, wc.loads++, wc.loader_errors++;
	/* Stale: served without a load (a hit), then after a failed load
	 * (resurrected: a miss). */
	t10.ttl_ms = 10;
	CHECK(mlc_set(w, "t", 1, "tee", 3, &t10) == 0);
	ww.sets++;
	mlc__clock_advance(11);
	CHECK(get(c, "t", MLC_CALL_STALE_OK, NULL, NULL) == 0);
	wc.hits_l2++, wc.stale_served++;
	CHECK(get(c, "t", 0, load_fail, NULL) == 0);
	wc.misses++, wc.loads++, wc.loader_errors++, wc.stale_served++;

	/* A wait for another process's load: an L2 hit and a lock wait. */
	if (pipe(fds) != 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(child(a, fds[1]));
	CHECK(read(fds[0], &b, 1) == 1);
	CHECK(get(c, "w", 0, load_never, NULL) == 0);
	wc.hits_l2++, wc.lock_waits++;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);

	check(c, &wc, "handle");
	check(w, &ww, "writer");
	mlc_cache_close(c);
	mlc_cache_close(w);
	mlc_arena_close(a);
	if (failures)
		return 1;
	/* The namespace's totals: the three handles (the child's load). */
	printf("{\"hits_l1\": %" PRIu64 ", \"hits_l2\": %" PRIu64
	       ", \"hits_l3\": %" PRIu64 ", \"misses\": %" PRIu64
	       ", \"negative_hits\": %" PRIu64 ", \"stale_served\": %" PRIu64
	       ", \"loads\": %" PRIu64 ", \"loader_errors\": %" PRIu64
	       ", \"lock_waits\": %" PRIu64 ", \"sets\": %" PRIu64 "}\n",
	       wc.hits_l1, wc.hits_l2, wc.hits_l3 + 1, wc.misses + 1,
	       wc.negative_hits, wc.stale_served, wc.loads + 1,
	       wc.loader_errors, wc.lock_waits, ww.sets);
	return 0;
}
