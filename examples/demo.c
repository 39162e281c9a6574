/*
 * mlc demo: a few forked worker processes share one arena and ask for the
 * same keys.  It shows, step by step, which level answered each request:
 * the loader running once for everyone (L3 + single flight), the others
 * served from shared memory (L2), repeated reads from each process's own
 * memory (L1), a cached miss (negative entry), and a change made by one
 * process reaching the others' L1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlc.h"

#define WORKERS 4

static const char *level_name[] = { "?", "L1 (own memory)",
				    "L2 (shared memory)", "L3 (loader)" };

static int to_worker[WORKERS][2], to_parent[2];

/* A loader standing in for a slow database: 200 ms per query. */
static int
slow_db(void *arg, const void *key, size_t key_len, struct mlc_load *out)
{
	static char buf[64];
	struct timespec d = { 0, 200 * 1000000 };
	int id = *(int *)arg;

	printf("  worker %d: loader runs for \"%.*s\" (200 ms database "
	       "query)\n", id, (int)key_len, (const char *)key);
	fflush(stdout);
	nanosleep(&d, NULL);
	if (key_len >= 7 && memcmp(key, "user:99", 7) == 0)
		return MLC_LOAD_NOTFOUND;	/* no such user */
	snprintf(buf, sizeof(buf), "{\"name\":\"Ada\",\"v\":1}");
	out->data = buf;
	out->len = strlen(buf);
	return MLC_LOAD_VALUE;
}

static void
show(int id, const char *key, int rc, const struct mlc_value *v,
     double ms)
{
	if (rc != 0)
		printf("  worker %d: get %-8s -> error: %s\n", id, key,
		       mlc_strerror(rc));
	else if (v->flags & MLC_NEGATIVE)
		printf("  worker %d: get %-8s -> not found (cached miss) from "
		       "%s, %.3f ms\n", id, key, level_name[v->level], ms);
	else
		printf("  worker %d: get %-8s -> %.*s from %s, %.3f ms\n", id,
		       key, (int)v->len, (const char *)v->data,
		       level_name[v->level], ms);
	fflush(stdout);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
get_and_show(struct mlc_cache *c, int id, const char *key)
{
	struct mlc_value v = { 0 };
	double t0 = now_ms();
	int rc = mlc_get(c, key, strlen(key), slow_db, &id, &v);

	show(id, key, rc, &v, now_ms() - t0);
	mlc_value_release(&v);
}

/* Each worker waits for the parent's go for each step, does it, reports. */
static int
worker(int id, struct mlc_arena *arena)
{
	struct mlc_cache_options o = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	struct mlc_stats st = MLC_STATS_INIT;
	char step;

	o.ttl_ms = 60000;
	if (mlc_cache_open(&c, arena, "users", &o) != 0)
		return 1;
	while (read(to_worker[id][0], &step, 1) == 1 && step != 'q') {
		switch (step) {
		case 'a':	/* everyone at once, cold */
		case 'b':	/* again: each from its own L1 */
		case 'd':	/* after the change */
			get_and_show(c, id, "user:42");
			break;
		case 'c':	/* a user that does not exist */
			if (id < 2)
				get_and_show(c, id, "user:99");
			break;
		case 's':
			mlc_stats(c, &st);
			printf("  worker %d: L1 hits %llu, L2 hits %llu, "
			       "loads %llu, waited for another's load %llu, "
			       "invalidations applied %llu\n", id,
			       (unsigned long long)st.hits_l1,
			       (unsigned long long)st.hits_l2,
			       (unsigned long long)st.loads,
			       (unsigned long long)st.lock_waits,
			       (unsigned long long)st.log_applied);
			break;
		}
		fflush(stdout);
		if (write(to_parent[1], "k", 1) != 1)
			return 1;
	}
	mlc_cache_close(c);
	return 0;
}

static void
step(const char *title, char s, int sequential)
{
	char ack;

	printf("\n%s\n", title);
	fflush(stdout);
	for (int i = 0; i < WORKERS; i++) {
		if (write(to_worker[i][1], &s, 1) != 1)
			exit(1);
		if (sequential && read(to_parent[0], &ack, 1) != 1)
			exit(1);
	}
	if (!sequential)
		for (int i = 0; i < WORKERS; i++)
			if (read(to_parent[0], &ack, 1) != 1)
				exit(1);
}

int
main(void)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_arena *arena;
	struct mlc_cache *admin;
	char name[64];
	pid_t pids[WORKERS];
	const char *v2 = "{\"name\":\"Ada Lovelace\",\"v\":2}";
	int rc, status = 0;

	snprintf(name, sizeof(name), "mlc-demo-%ld", (long)getpid());
	ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	ao.bytes = 16 << 20;
	rc = mlc_arena_open(&arena, name, &ao);
	if (rc != 0) {
		fprintf(stderr, "mlc_arena_open: %s\n", mlc_strerror(rc));
		return 1;
	}
	printf("mlc %s demo: %d worker processes share the arena /dev/shm/%s\n",
	       mlc_version_string(), WORKERS, name);
	if (pipe(to_parent) != 0)
		return 1;
	for (int i = 0; i < WORKERS; i++) {
		if (pipe(to_worker[i]) != 0)
			return 1;
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(worker(i, arena));
	}
	step("1. All workers miss \"user:42\" at the same moment: the loader "
	     "runs once,\n   the others wait for it and read its result from "
	     "shared memory.", 'a', 0);
	step("2. The same request again: each worker answers from its own L1.",
	     'b', 1);
	step("3. \"user:99\" does not exist: the miss is cached too (negative "
	     "entry).", 'c', 1);
	printf("\n4. The parent process changes \"user:42\"; every worker's L1 "
	       "drops its copy\n   through the invalidation log, with no call "
	       "to do it.\n");
	mlc_cache_open(&admin, arena, "users", NULL);
	mlc_set(admin, "user:42", 7, v2, strlen(v2), NULL);
	mlc_cache_close(admin);
	step("   Workers ask again:", 'd', 1);
	step("5. Counters of each worker:", 's', 1);
	for (int i = 0; i < WORKERS; i++)
		if (write(to_worker[i][1], "q", 1) != 1)
			return 1;
	for (int i = 0; i < WORKERS; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		status |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	mlc_arena_info(arena, &info);
	printf("\nArena: %llu items, %llu of %llu pages in use, %llu "
	       "invalidation records published.\n",
	       (unsigned long long)info.items,
	       (unsigned long long)(info.pages - info.pages_free),
	       (unsigned long long)info.pages,
	       (unsigned long long)info.log_head);
	mlc_arena_close(arena);
	mlc_arena_unlink(name, 0);
	return status;
}
