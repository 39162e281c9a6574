/*
 * relay-test-host: one "host" of relay/test-relay.sh, plus the commands the
 * script uses to drive and check the hosts.  Hosts share nothing but a
 * control file in /dev/shm (the "database" every loader reads, and each
 * reader's observations), which stands for the system of record that all
 * hosts load from; each host has its own arena, and the only way a change
 * made on one host reaches another host's cache is the relay.
 *
 *   init   CTL NKEYS          make the control file
 *   serve  ...                W reader processes on this host's arena;
 *                             worker 0 runs the in-process relay (publish +
 *                             subscribe) when --relay is given
 *   write  ...                a writer process with a publish-only relay:
 *                             rounds of change-then-wait, or a bulk burst
 *                             (--fork: made by a child forked after the
 *                             relay started)
 *   check  ...                readers of the given hosts all hold what the
 *                             database holds, and never went backwards
 *   report ...                propagation latency percentiles
 *   wait-stat ...             wait for a relay counter (ctl or stats file)
 *   quit   --ctl CTL          tell the readers to exit
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlc-relay.h"

#define MAXKEYS   64
#define MAXHOSTS  3
#define MAXW      4
#define MAXR      (MAXHOSTS * MAXW)
#define MAXROUNDS 8192
#define MAGIC     0x6d6c6372656c6179ull	/* "mlcrelay" */

struct reader {
	uint32_t pid, alive;
	uint64_t sweeps, regressions, loads, errors;
	uint64_t seen[MAXKEYS];
	uint32_t lat_us[MAXROUNDS];	/* 0: not seen (yet) */
};

struct ctl {
	uint64_t magic;
	uint32_t nkeys, quit;
	uint64_t next_round;
	uint64_t db_ver[MAXKEYS];		/* the system of record */
	uint64_t t_set_us[MAXROUNDS];		/* when round r changed it */
	struct reader rd[MAXR];
	struct mlc_relay_stats hs[MAXHOSTS];	/* in-process relays */
};

static struct ctl *ctl;

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void die(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void
die(int rc, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relay-test-host: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", mlc_strerror(rc));
	exit(1);
}

static void
ctl_map(const char *path, bool create, uint32_t nkeys)
{
	int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);

	if (fd < 0 || (create && ftruncate(fd, sizeof(struct ctl)) < 0))
		die(-errno, "control file %s", path);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	close(fd);
	if (ctl == MAP_FAILED)
		die(-errno, "mmap %s", path);
	if (create) {
		ctl->nkeys = nkeys;
		__atomic_store_n(&ctl->magic, MAGIC, __ATOMIC_RELEASE);
	} else if (__atomic_load_n(&ctl->magic, __ATOMIC_ACQUIRE) != MAGIC) {
		die(-EINVAL, "control file %s", path);
	}
}

static void
key_name(char *buf, size_t cap, uint32_t k)
{
	snprintf(buf, cap, "user:%u", k);
}

/* The loader: read the system of record. */
static int
db_load(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	static __thread char buf[32];
	uint32_t k = *(uint32_t *)arg;

	snprintf(buf, sizeof(buf), "v%llu", (unsigned long long)
		 __atomic_load_n(&ctl->db_ver[k], __ATOMIC_ACQUIRE));
	out->data = buf;
	out->len = strlen(buf);
	return MLC_LOAD_VALUE;
}

struct opts {
	const char *ctl, *arena, *id, *relay, *stats_file, *stream;
	int host, workers, rounds, interval_ms, timeout_ms, hosts, bulk;
	int from, to, max_offline_ms, queue_len, ge, fork;
	const char *field, *file;
};

static void
relay_opts(const struct opts *o, struct mlc_relay_options *ro, char *host,
	   size_t cap)
{
	const char *colon = strrchr(o->relay, ':');

	snprintf(host, cap, "%.*s", colon ? (int)(colon - o->relay) :
		 (int)strlen(o->relay), o->relay);
	ro->host_id = o->id;
	ro->redis_host = host;
	ro->redis_port = colon ? (uint32_t)atoi(colon + 1) : 6379;
	ro->stream = o->stream;
	ro->block_ms = 1000;
	ro->io_timeout_ms = 500;
	ro->backoff_min_ms = 50;
	ro->backoff_max_ms = 400;
	ro->max_offline_ms = (uint32_t)o->max_offline_ms;
	ro->queue_len = (uint32_t)o->queue_len;
	ro->flush_ms = 5000;
}

static struct mlc_arena *
arena_open(const char *name)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a;
	int rc;

	ao.flags = MLC_ARENA_CREATE;
	ao.bytes = 16u << 20;
	ao.page_size = 64 << 10;
	if ((rc = mlc_arena_open(&a, name, &ao)) < 0)
		die(rc, "arena %s", name);
	return a;
}

static struct mlc_cache *
cache_open(struct mlc_arena *a, const char *ns)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c;
	int rc;

	co.ttl_ms = MLC_TTL_NEVER;	/* only invalidations refresh */
	if ((rc = mlc_cache_open(&c, a, ns, &co)) < 0)
		die(rc, "cache %s", ns);
	return c;
}

static int
reader_main(const struct opts *o, int w)
{
	struct reader *rd = &ctl->rd[o->host * MAXW + w];
	struct mlc_arena *a = arena_open(o->arena);
	struct mlc_cache *c = cache_open(a, "users");
	struct mlc_relay *relay = NULL;
	struct mlc_relay_options ro = MLC_RELAY_OPTIONS_INIT;
	struct timespec nap = { 0, 300 * 1000 };
	uint64_t last_stats = 0;
	char host[256], key[32], line[512], num[32], tmp[4096];
	int rc;

	memset(rd, 0, sizeof(*rd));
	rd->pid = (uint32_t)getpid();
	__atomic_store_n(&rd->alive, 1, __ATOMIC_RELEASE);
	if (w == 0 && o->relay) {
		relay_opts(o, &ro, host, sizeof(host));
		if ((rc = mlc_relay_start(&relay, a, &ro)) < 0)
			die(rc, "relay %s", o->relay);
	}
	while (!__atomic_load_n(&ctl->quit, __ATOMIC_ACQUIRE)) {
		for (uint32_t k = 0; k < ctl->nkeys; k++) {
			struct mlc_value v = { 0 };
			uint64_t ver, seen = rd->seen[k];

			key_name(key, sizeof(key), k);
			rc = mlc_get(c, key, strlen(key), db_load, &k, &v);
			if (rc < 0 || v.len < 2 || ((const char *)v.data)[0] != 'v') {
				rd->errors++;
				mlc_value_release(&v);
				continue;
			}
			/* Values are not NUL-terminated. */
			snprintf(num, sizeof(num), "%.*s", (int)v.len - 1,
				 (const char *)v.data + 1);
			ver = strtoull(num, NULL, 10);
			if (v.level == MLC_L3)
				rd->loads++;
			uint32_t lvl = v.level;
			mlc_value_release(&v);
			if (ver > seen) {
				uint64_t r = ver - 1, t;

				if (r < MAXROUNDS && (t = __atomic_load_n(
				    &ctl->t_set_us[r], __ATOMIC_ACQUIRE)) != 0 &&
				    rd->lat_us[r] == 0) {
					uint64_t d = now_us() - t;

					rd->lat_us[r] = d ? (uint32_t)d : 1;
				}
				__atomic_store_n(&rd->seen[k], ver,
						 __ATOMIC_RELEASE);

			} else if (ver < seen) {
				/* An older value after a newer one: stale. */
				if (__atomic_fetch_add(&rd->regressions, 1,
						       __ATOMIC_RELAXED) < 5)
				fprintf(stderr, "host %d worker %d: %s went "
					"back from v%llu to v%llu (L%u)\n", o->host,
					w, key, (unsigned long long)seen,
					(unsigned long long)ver, lvl);
				rd->seen[k] = ver;	/* report it once */

			}
		}
		rd->sweeps++;
		if (relay && now_us() - last_stats > 10000) {
			struct mlc_relay_stats st = MLC_RELAY_STATS_INIT;
			FILE *f;

			last_stats = now_us();
			mlc_relay_stats(relay, &st);
			memcpy(&ctl->hs[o->host], &st, sizeof(st));
			snprintf(tmp, sizeof(tmp), "%s.tmp", o->stats_file ?
				 o->stats_file : "");
			if (o->stats_file && (f = fopen(tmp, "w"))) {
				mlc_relay_stats_format(&st, line, sizeof(line));
				fprintf(f, "%s\n", line);
				if (fclose(f) == 0)
					rename(tmp, o->stats_file);
			}
		}
		nanosleep(&nap, NULL);
	}
	if (relay) {
		struct mlc_relay_stats st = MLC_RELAY_STATS_INIT;

		mlc_relay_stop(relay, &st);
		mlc_relay_stats_format(&st, line, sizeof(line));
		printf("host %d relay: %s\n", o->host, line);
	}
	printf("host %d worker %d: sweeps=%llu loads=%llu regressions=%llu "
	       "errors=%llu\n", o->host, w, (unsigned long long)rd->sweeps,
	       (unsigned long long)rd->loads,
	       (unsigned long long)rd->regressions,
	       (unsigned long long)rd->errors);
	fflush(stdout);
	__atomic_store_n(&rd->alive, 0, __ATOMIC_RELEASE);
	mlc_cache_close(c);
	mlc_arena_close(a);
	return rd->regressions || rd->errors ? 1 : 0;
}

static int
cmd_serve(const struct opts *o)
{
	int status, fail = 0;
	pid_t pids[MAXW];

	if (o->host < 0 || o->host >= MAXHOSTS || o->workers < 1 ||
	    o->workers > MAXW)
		die(-EINVAL, "bad %s", "--host/--workers");
	for (int w = 0; w < o->workers; w++) {
		if ((pids[w] = fork()) == 0)
			_exit(reader_main(o, w));
	}
	for (int w = 0; w < o->workers; w++) {
		if (waitpid(pids[w], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			fail = 1;
	}
	return fail;
}

/* Every live reader of the hosts in @p mask has seen @p ver of key k. */
static bool
all_seen(int mask, uint32_t k, uint64_t ver)
{
	for (int i = 0; i < MAXR; i++) {
		if (!(mask & (1 << (i / MAXW))) ||
		    !__atomic_load_n(&ctl->rd[i].alive, __ATOMIC_ACQUIRE))
			continue;
		if (__atomic_load_n(&ctl->rd[i].seen[k], __ATOMIC_ACQUIRE) <
		    ver)
			return false;
	}
	return true;
}

static int
cmd_write(const struct opts *o)
{
	struct mlc_arena *a = arena_open(o->arena);
	struct mlc_cache *c = cache_open(a, "users");
	struct mlc_relay_options ro = MLC_RELAY_OPTIONS_INIT;
	struct mlc_relay_stats st = MLC_RELAY_STATS_INIT;
	struct mlc_relay *relay;
	char host[256], key[32], val[32], line[512];
	unsigned timeouts = 0;
	int rc;

	relay_opts(o, &ro, host, sizeof(host));
	ro.mode = MLC_RELAY_PUBLISH;	/* the host's serve worker 0
					 * subscribes */
	if ((rc = mlc_relay_start(&relay, a, &ro)) < 0)
		die(rc, "relay %s", o->relay);
	if (o->fork) {
		/* The changes are made in a child: its inherited hook starts a
		 * publish-only relay there on the first change. */
		pid_t pid = fork();
		int status = 1;

		if (pid < 0)
			die(-errno, "%s", "fork");
		if (pid > 0) {
			waitpid(pid, &status, 0);
			mlc_relay_stop(relay, &st);
			mlc_relay_stats_format(&st, line, sizeof(line));
			printf("parent relay: %s\n", line);
			mlc_cache_close(c);
			mlc_arena_close(a);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		}
	}
	if (o->bulk > 0) {
		struct mlc_cache *b = cache_open(a, "bulk");
		uint64_t base = ctl->hs[1].received, t0, t1, t2 = 0, t3 = 0;

		t0 = now_us();
		for (int i = 0; i < o->bulk; i++) {
			snprintf(key, sizeof(key), "bulk:%d", i);
			mlc_set(b, key, strlen(key), "x", 1, NULL);
		}
		t1 = now_us();
		while (now_us() - t1 < (uint64_t)o->timeout_ms * 1000) {
			mlc_relay_stats(relay, &st);
			if (!t2 && st.published + st.dropped >= (uint64_t)o->bulk)
				t2 = now_us();
			if (__atomic_load_n(&ctl->hs[1].received,
					    __ATOMIC_RELAXED) >=
			    base + (uint64_t)o->bulk) {
				t3 = now_us();
				break;
			}
			usleep(1000);
		}
		printf("bulk: %d sets in %.1f ms (%.0f/s in the writer); "
		       "published by %.1f ms (%.0f/s); all received on host "
		       "1 by %.1f ms (%.0f/s end to end)\n", o->bulk,
		       (t1 - t0) / 1e3, o->bulk / ((t1 - t0) / 1e6),
		       t2 ? (t2 - t0) / 1e3 : -1.0,
		       t2 ? o->bulk / ((t2 - t0) / 1e6) : 0.0,
		       t3 ? (t3 - t0) / 1e3 : -1.0,
		       t3 ? o->bulk / ((t3 - t0) / 1e6) : 0.0);
		if (!t3)
			timeouts++;
		mlc_cache_close(b);
	}
	for (int i = 0; i < o->rounds; i++) {
		uint64_t r = __atomic_fetch_add(&ctl->next_round, 1,
						__ATOMIC_ACQ_REL);
		uint32_t k = (uint32_t)(r % ctl->nkeys);
		uint64_t ver = r + 1, t0;

		if (r < MAXROUNDS)
			__atomic_store_n(&ctl->t_set_us[r], now_us(),
					 __ATOMIC_RELEASE);
		/* The system of record first, then the cache. */
		__atomic_store_n(&ctl->db_ver[k], ver, __ATOMIC_RELEASE);
		key_name(key, sizeof(key), k);
		if (r % 2 == 0) {
			snprintf(val, sizeof(val), "v%llu",
				 (unsigned long long)ver);
			rc = mlc_set(c, key, strlen(key), val, strlen(val),
				     NULL);
		} else {
			rc = mlc_delete(c, key, strlen(key));
		}
		if (rc < 0)
			die(rc, "change %s", key);
		t0 = now_us();
		while (o->hosts && !all_seen(o->hosts, k, ver)) {
			if (now_us() - t0 > (uint64_t)o->timeout_ms * 1000) {
				timeouts++;
				break;
			}
			usleep(100);
		}
		if (o->interval_ms)
			usleep((useconds_t)o->interval_ms * 1000);
	}
	mlc_relay_stop(relay, &st);
	mlc_relay_stats_format(&st, line, sizeof(line));
	printf("writer relay: %s\n", line);
	printf("writer: %d rounds, %u not seen everywhere in %d ms\n",
	       o->rounds, timeouts, o->timeout_ms);
	mlc_cache_close(c);
	mlc_arena_close(a);
	return 0;
}

static int
cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static int
cmd_report(const struct opts *o)
{
	uint32_t *v = malloc(sizeof(uint32_t) * MAXR * MAXROUNDS);
	size_t n = 0, missing = 0;
	int to = o->to < MAXROUNDS ? o->to : MAXROUNDS;

	for (int i = 0; i < MAXR; i++) {
		if (!(o->hosts & (1 << (i / MAXW))) || ctl->rd[i].pid == 0)
			continue;
		for (int r = o->from; r < to; r++) {
			if (ctl->rd[i].lat_us[r])
				v[n++] = ctl->rd[i].lat_us[r];
			else
				missing++;
		}
	}
	if (n == 0) {
		printf("latency: no samples\n");
		free(v);
		return 1;
	}
	qsort(v, n, sizeof(*v), cmp_u32);
	printf("latency over rounds %d..%d, %zu samples (%zu missing): "
	       "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       o->from, to - 1, n, missing, v[n / 2] / 1e3,
	       v[n * 90 / 100] / 1e3, v[n * 99 / 100] / 1e3, v[n - 1] / 1e3);
	free(v);
	return missing ? 1 : 0;
}

static int
cmd_check(const struct opts *o)
{
	uint64_t t0 = now_us();
	bool ok = false;
	int stale = 0;
	uint64_t regressions = 0;

	while (!ok && now_us() - t0 < (uint64_t)o->timeout_ms * 1000) {
		ok = true;
		stale = 0;
		for (uint32_t k = 0; k < ctl->nkeys; k++)
			if (!all_seen(o->hosts, k, __atomic_load_n(
			    &ctl->db_ver[k], __ATOMIC_ACQUIRE))) {
				ok = false;
				stale++;
			}
		if (!ok)
			usleep(2000);
	}
	for (int i = 0; i < MAXR; i++)
		if (o->hosts & (1 << (i / MAXW)))
			regressions += ctl->rd[i].regressions;
	printf("check hosts 0x%x: %s after %.1f ms (%d keys stale), %llu "
	       "regressions\n", o->hosts, ok ? "fresh" : "STALE",
	       (now_us() - t0) / 1e3, stale,
	       (unsigned long long)regressions);
	return ok && regressions == 0 ? 0 : 1;
}

static uint64_t
stat_field(const char *line, const char *field)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "%s=", field);
	for (p = line; (p = strstr(p, pat)) != NULL; p++)
		if (p == line || p[-1] == ' ')
			return strtoull(p + strlen(pat), NULL, 10);
	return 0;
}

static int
cmd_wait_stat(const struct opts *o)
{
	uint64_t t0 = now_us(), v = 0;
	char line[512];

	do {
		if (o->file) {
			FILE *f = fopen(o->file, "r");

			line[0] = '\0';
			if (f) {
				if (!fgets(line, sizeof(line), f))
					line[0] = '\0';
				fclose(f);
			}
		} else {
			mlc_relay_stats_format(&ctl->hs[o->host], line,
					       sizeof(line));
		}
		v = stat_field(line, o->field);
		if (v >= (uint64_t)o->ge) {
			printf("%s=%llu (after %.1f ms)\n", o->field,
			       (unsigned long long)v, (now_us() - t0) / 1e3);
			return 0;
		}
		usleep(20000);
	} while (now_us() - t0 < (uint64_t)o->timeout_ms * 1000);
	printf("%s=%llu, wanted >= %d: timed out [%s]\n", o->field,
	       (unsigned long long)v, o->ge, line);
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ctl", 1, 0, 'c' }, { "arena", 1, 0, 'a' },
		{ "id", 1, 0, 'i' }, { "relay", 1, 0, 'r' },
		{ "stats-file", 1, 0, 'S' }, { "stream", 1, 0, 's' },
		{ "host", 1, 0, 'H' }, { "workers", 1, 0, 'w' },
		{ "rounds", 1, 0, 'n' }, { "interval-ms", 1, 0, 'I' },
		{ "timeout-ms", 1, 0, 't' }, { "hosts", 1, 0, 'm' },
		{ "bulk", 1, 0, 'b' }, { "from", 1, 0, 'f' },
		{ "to", 1, 0, 'T' }, { "max-offline-ms", 1, 0, 'o' },
		{ "queue-len", 1, 0, 'q' }, { "field", 1, 0, 'F' },
		{ "ge", 1, 0, 'g' }, { "file", 1, 0, 'Z' },
		{ "fork", 0, 0, 'k' }, { 0, 0, 0, 0 }
	};
	struct opts o = { .timeout_ms = 5000, .workers = 3, .to = MAXROUNDS,
			  .max_offline_ms = 1000, .ge = 1 };
	const char *cmd;
	int opt;

	if (argc < 2) {
		fprintf(stderr, "usage: relay-test-host init|serve|write|"
			"check|report|wait-stat|quit ...\n");
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "init") == 0) {
		if (argc != 4)
			return 2;
		ctl_map(argv[2], true, (uint32_t)atoi(argv[3]));
		return ctl->nkeys > 0 && ctl->nkeys <= MAXKEYS ? 0 : 2;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': o.ctl = optarg; break;
		case 'a': o.arena = optarg; break;
		case 'i': o.id = optarg; break;
		case 'r': o.relay = optarg; break;
		case 'S': o.stats_file = optarg; break;
		case 's': o.stream = optarg; break;
		case 'H': o.host = atoi(optarg); break;
		case 'w': o.workers = atoi(optarg); break;
		case 'n': o.rounds = atoi(optarg); break;
		case 'I': o.interval_ms = atoi(optarg); break;
		case 't': o.timeout_ms = atoi(optarg); break;
		case 'm': o.hosts = (int)strtol(optarg, NULL, 0); break;
		case 'b': o.bulk = atoi(optarg); break;
		case 'f': o.from = atoi(optarg); break;
		case 'T': o.to = atoi(optarg); break;
		case 'o': o.max_offline_ms = atoi(optarg); break;
		case 'q': o.queue_len = atoi(optarg); break;
		case 'F': o.field = optarg; break;
		case 'g': o.ge = atoi(optarg); break;
		case 'Z': o.file = optarg; break;
		case 'k': o.fork = 1; break;
		default: return 2;
		}
	}
	if (o.ctl == NULL)
		return 2;
	ctl_map(o.ctl, false, 0);
	if (strcmp(cmd, "serve") == 0 && o.arena && o.id)
		return cmd_serve(&o);
	if (strcmp(cmd, "write") == 0 && o.arena && o.id && o.relay)
		return cmd_write(&o);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(&o);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(&o);
	if (strcmp(cmd, "wait-stat") == 0 && o.field)
		return cmd_wait_stat(&o);
	if (strcmp(cmd, "quit") == 0) {
		__atomic_store_n(&ctl->quit, 1, __ATOMIC_RELEASE);
		return 0;
	}
	fprintf(stderr, "relay-test-host: bad command or missing options\n");
	return 2;
}
