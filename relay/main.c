/*
 * mlc-relay: the daemon form.  Attaches an arena by name and applies the
 * other hosts' invalidations to it (subscribe).  Its own arena handle has
 * no caches, so it never sees this host's changes: the processes that
 * change the arena publish them themselves, each with an in-process relay
 * in publish mode (mlc_relay_start() with MLC_RELAY_PUBLISH), or run
 * everything in-process and do without the daemon.  It follows the
 * arena's name: an arena made anew there is attached too (follow_name()).
 * See relay/README.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlc-relay.h"

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: mlc-relay --arena NAME --host-id ID [options]\n"
"  --arena NAME         arena (shm name; a path with --file)\n"
"  --file               NAME is a file path\n"
"  --create             create the arena if absent (else wait for it)\n"
"  --bytes N            size when creating (default 64M; K, M, G\n"
"                       suffixes are binary)\n"
"  --host-id ID         this host's name, unique among the hosts\n"
"  --host HOST          Redis host (default 127.0.0.1)\n"
"  --port PORT          Redis port (default 6379)\n"
"  --unix PATH          Redis unix socket (instead of host/port)\n"
"  --password PASS      Redis AUTH (or MLC_RELAY_PASSWORD in the env)\n"
"  --stream NAME        stream key (default mlc:events)\n"
"  --maxlen N           XADD MAXLEN ~ N (default 100000)\n"
"  --block-ms MS        XREAD BLOCK (default 2000)\n"
"  --io-timeout-ms MS   connect and reply timeout (default 2000)\n"
"  --backoff-max-ms MS  reconnect back-off cap (default 5000)\n"
"  --max-offline-ms MS  purge all when cut off longer (default 10000)\n"
"  --no-start-purge     do not purge everything on the first connection\n"
"  --no-offline-purge   do not purge while cut off\n"
"  --stats-ms MS        print the counters every MS (default 0: at exit)\n"
"  --stats-file PATH    also write them (one line) to PATH\n"
"  --publish            also publish (only useful with an application\n"
"                       calling mlc_relay_event(); see README)\n");
}

/* A decimal number from @p min to @p max into *@p out; with @p size, a K,
 * M or G suffix (KiB, MiB, GiB; either case; binary) as mlcctl, nginx and
 * mlc-server take sizes.  Else says what @p opt wants, on stderr. */
static bool
number(const char *opt, const char *s, bool size, uint64_t min,
       uint64_t max, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	char *end = NULL;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0)
			end = NULL;
	}
	if (end != NULL && size && *end != '\0') {
		if (strcasecmp(end, "K") == 0 || strcasecmp(end, "KiB") == 0)
			mul = UINT64_C(1) << 10;
		else if (strcasecmp(end, "M") == 0 ||
			 strcasecmp(end, "MiB") == 0)
			mul = UINT64_C(1) << 20;
		else if (strcasecmp(end, "G") == 0 ||
			 strcasecmp(end, "GiB") == 0)
			mul = UINT64_C(1) << 30;
		else
			end = NULL;
		if (end != NULL)
			end += strlen(end);
	}
	if (end != NULL && *end == '\0' && v <= max / mul &&
	    v * mul >= min) {
		*out = v * mul;
		return true;
	}
	if (size)
		fprintf(stderr, "mlc-relay: %s '%s': a size in bytes wanted, "
			"at least %" PRIu64 ", a K, M or G suffix for KiB, "
			"MiB, GiB\n", opt, s, min);
	else if (max == UINT64_MAX)
		fprintf(stderr, "mlc-relay: %s '%s': a whole number wanted, "
			"at least %" PRIu64 "\n", opt, s, min);
	else
		fprintf(stderr, "mlc-relay: %s '%s': a whole number from %"
			PRIu64 " to %" PRIu64 " wanted\n", opt, s, min, max);
	return false;
}

/* Milliseconds, 0 to 2^32 - 1, into *@p out. */
static bool
ms_option(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v;

	if (!number(opt, s, false, 0, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A string option's length, checked before anything is made (the arena
 * with --create): mlc_relay_start() would refuse it only afterwards. */
static bool
length_ok(const char *opt, const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)		/* not given: the default */
		return true;
	n = strlen(s);
	if (n >= min && n <= max)
		return true;
	fprintf(stderr, "mlc-relay: %s must be %zu to %zu bytes, it has %zu\n",
		opt, min, max, n);
	return false;
}

static void
write_stats(struct mlc_relay *r, const char *path, int print)
{
	struct mlc_relay_stats st = MLC_RELAY_STATS_INIT;
	char line[512], tmp[4096];
	FILE *f;

	mlc_relay_stats(r, &st);
	mlc_relay_stats_format(&st, line, sizeof(line));
	if (print) {
		printf("mlc-relay: %s\n", line);
		fflush(stdout);
	}
	if (path == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "%s\n", line);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/* An arena the daemon has attached, with its relay, and the file that was
 * at the arena's name when it did. */
struct att {
	struct mlc_arena *arena;
	struct mlc_relay *relay;
	dev_t dev;
	ino_t ino;
};

/* Attachments: the newest is the arena at the name now; older ones are
 * arenas whose name was given to a new arena (removed and made anew, as
 * after MLC_EMISMATCH or MLC_EFORMAT), kept while other processes still
 * use them. */
#define ATT_MAX 4

/* The file behind an arena's name: /dev/shm/NAME, or the path. */
static void
arena_file(char *dst, size_t cap, const char *name, bool file)
{
	if (file)
		snprintf(dst, cap, "%s", name);
	else
		snprintf(dst, cap, "/dev/shm/%s", name[0] == '/' ? name + 1 :
			 name);
}

/* Attach the arena at @p name and start its relay.  @return 0, or a
 * negative code (-ENOENT: not there). */
static int
attach(const char *name, const char *path,
       const struct mlc_arena_options *ao,
       const struct mlc_relay_options *ro, struct att *at)
{
	struct stat before, after;
	int rc;

	for (;;) {
		bool had = stat(path, &before) == 0;

		if ((rc = mlc_arena_open(&at->arena, name, ao)) < 0)
			return rc;
		/* The file we mapped is the one at the name, unless it was
		 * replaced meanwhile: then again. */
		if (stat(path, &after) == 0 &&
		    (!had || (before.st_dev == after.st_dev &&
			      before.st_ino == after.st_ino)))
			break;
		mlc_arena_close(at->arena);
	}
	at->dev = after.st_dev;
	at->ino = after.st_ino;
	if ((rc = mlc_relay_start(&at->relay, at->arena, ro)) < 0) {
		mlc_arena_close(at->arena);
		return rc;
	}
	return 0;
}

/* Stop the relay of @p at and close its arena, printing its counters:
 * "final" ones (@p name NULL), or those of a replaced arena of @p name. */
static void
detach(struct att *at, const char *name)
{
	struct mlc_relay_stats st = MLC_RELAY_STATS_INIT;
	char line[512];

	mlc_relay_stop(at->relay, &st);
	mlc_relay_stats_format(&st, line, sizeof(line));
	if (name != NULL)
		printf("mlc-relay: replaced arena %s detached: %s\n", name,
		       line);
	else
		printf("mlc-relay: final %s\n", line);
	fflush(stdout);
	mlc_arena_close(at->arena);
}

/* Whether a process other than this one may still use @p arena.  One that
 * attached while the table of attached processes was full works unlisted
 * (procs_unlisted counts it, for good: which ones left cannot be told),
 * and this daemon may be unlisted itself: then the arena is kept (until
 * ATT_MAX newer ones push it out, or the daemon exits).  An arena that
 * cannot be looked at is kept too. */
static bool
others_use(struct mlc_arena *arena)
{
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;

	return mlc_arena_info(arena, &info) != 0 || info.procs > 1 ||
	       info.procs_unlisted > 0;
}

/* Once a second: if the arena's name is now another arena's, attach that
 * one too (its relay purges it first: its past is unknown); detach the
 * older ones that no other process uses any more.  A replaced arena that
 * the daemon kept applying to, alone, left the new one without the other
 * hosts' changes, for good (review Z). */
static void
follow_name(const char *name, const char *path,
	    const struct mlc_arena_options *ao,
	    const struct mlc_relay_options *ro, struct att *atts, int *n,
	    int *last_rc)
{
	struct mlc_arena_options o = *ao;
	struct stat st;
	struct att na;
	int rc;

	o.flags &= ~(uint32_t)(MLC_ARENA_CREATE | MLC_ARENA_EXCL);
	if (stat(path, &st) == 0 && (st.st_dev != atts[*n - 1].dev ||
				     st.st_ino != atts[*n - 1].ino)) {
		rc = attach(name, path, &o, ro, &na);
		if (rc == 0) {
			if (*n == ATT_MAX) {	/* the oldest goes */
				detach(&atts[0], name);
				memmove(&atts[0], &atts[1],
					sizeof(atts[0]) * --*n);
			}
			atts[(*n)++] = na;
			fprintf(stderr, "mlc-relay: arena %s was made anew: "
				"attached to the new one (the old one stays "
				"while other processes use it)\n", name);
		} else if (rc != -ENOENT && rc != *last_rc) {
			fprintf(stderr, "mlc-relay: arena %s was made anew: "
				"%s\n", name, mlc_strerror(rc));
		}
		*last_rc = rc;
	}
	for (int i = 0; i < *n - 1; i++) {
		if (!others_use(atts[i].arena)) {
			detach(&atts[i], name);
			memmove(&atts[i], &atts[i + 1],
				sizeof(atts[0]) * (size_t)(*n - i - 1));
			(*n)--;
			i--;
		}
	}
}

int
main(int argc, char **argv)
{
	enum { O_FILE = 256, O_CREATE, O_BYTES, O_MAXLEN, O_BLOCK, O_IO,
	       O_BOMAX, O_OFFLINE, O_NOSTART, O_NOOFF, O_STATS, O_STATSF,
	       O_PUB, O_PASS };
	static const struct option lo[] = {
		{ "arena", 1, 0, 'a' }, { "host-id", 1, 0, 'i' },
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' },
		{ "unix", 1, 0, 'u' }, { "stream", 1, 0, 's' },
		{ "password", 1, 0, O_PASS },
		{ "file", 0, 0, O_FILE }, { "create", 0, 0, O_CREATE },
		{ "bytes", 1, 0, O_BYTES }, { "maxlen", 1, 0, O_MAXLEN },
		{ "block-ms", 1, 0, O_BLOCK }, { "io-timeout-ms", 1, 0, O_IO },
		{ "backoff-max-ms", 1, 0, O_BOMAX },
		{ "max-offline-ms", 1, 0, O_OFFLINE },
		{ "no-start-purge", 0, 0, O_NOSTART },
		{ "no-offline-purge", 0, 0, O_NOOFF },
		{ "stats-ms", 1, 0, O_STATS }, { "stats-file", 1, 0, O_STATSF },
		{ "publish", 0, 0, O_PUB }, { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	struct mlc_relay_options ro = MLC_RELAY_OPTIONS_INIT;
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct att atts[ATT_MAX];
	const char *name = NULL, *stats_file = NULL;
	uint32_t stats_ms = 0;
	uint64_t v;
	int opt, rc, waited = 0, n = 0, last_rc = 0;
	char err[160], line[512], path[4200];
	struct sigaction sa;

	ro.mode = MLC_RELAY_SUBSCRIBE;
	ro.redis_password = getenv("MLC_RELAY_PASSWORD");
	while ((opt = getopt_long(argc, argv, "a:i:H:p:u:s:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'a': name = optarg; break;
		case 'i': ro.host_id = optarg; break;
		case 'H': ro.redis_host = optarg; break;
		case 'p':
			if (!number("--port", optarg, false, 1, 65535, &v))
				return 2;
			ro.redis_port = (uint32_t)v;
			break;
		case 'u': ro.redis_unix = optarg; break;
		case 's': ro.stream = optarg; break;
		case O_PASS: ro.redis_password = optarg; break;
		case O_FILE: ao.flags |= MLC_ARENA_FILE; break;
		case O_CREATE: ao.flags |= MLC_ARENA_CREATE; break;
		case O_BYTES:
			if (!number("--bytes", optarg, true, 1, UINT64_MAX,
				    &v))
				return 2;
			ao.bytes = v;
			break;
		case O_MAXLEN:
			/* Redis refuses a MAXLEN above 2^63 - 1. */
			if (!number("--maxlen", optarg, false, 0, INT64_MAX,
				    &v))
				return 2;
			ro.maxlen = v;
			break;
		case O_BLOCK:
			if (!ms_option("--block-ms", optarg, &ro.block_ms))
				return 2;
			break;
		case O_IO:
			if (!ms_option("--io-timeout-ms", optarg,
				       &ro.io_timeout_ms))
				return 2;
			break;
		case O_BOMAX:
			if (!ms_option("--backoff-max-ms", optarg,
				       &ro.backoff_max_ms))
				return 2;
			break;
		case O_OFFLINE:
			if (!ms_option("--max-offline-ms", optarg,
				       &ro.max_offline_ms))
				return 2;
			break;
		case O_STATS:
			if (!ms_option("--stats-ms", optarg, &stats_ms))
				return 2;
			break;
		case O_NOSTART: ro.flags |= MLC_RELAY_NO_START_PURGE; break;
		case O_NOOFF: ro.flags |= MLC_RELAY_NO_OFFLINE_PURGE; break;
		case O_STATSF: stats_file = optarg; break;
		case O_PUB: ro.mode |= MLC_RELAY_PUBLISH;
			    ro.flags |= MLC_RELAY_NO_HOOK; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (name == NULL || ro.host_id == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!length_ok("--host-id", ro.host_id, 1, MLC_RELAY_HOST_ID_MAX) ||
	    !length_ok("--host", ro.redis_host, 0, MLC_RELAY_HOST_MAX) ||
	    !length_ok("--unix", ro.redis_unix, 0, MLC_RELAY_UNIX_MAX) ||
	    !length_ok("--password (or MLC_RELAY_PASSWORD)",
		       ro.redis_password, 0, MLC_RELAY_PASSWORD_MAX) ||
	    !length_ok("--stream", ro.stream, 1, MLC_RELAY_STREAM_MAX))
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Without --create, wait for the application to make the arena. */
	arena_file(path, sizeof(path), name, ao.flags & MLC_ARENA_FILE);
	while ((rc = attach(name, path, &ao, &ro, &atts[0])) == -ENOENT &&
	       !quit) {
		if (!waited++)
			fprintf(stderr, "mlc-relay: waiting for arena %s\n",
				name);
		usleep(200 * 1000);
	}
	if (quit) {
		if (rc == 0)
			detach(&atts[0], NULL);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "mlc-relay: arena %s: %s\n", name,
			mlc_strerror(rc));
		return 1;
	}
	n = 1;
	fprintf(stderr, "mlc-relay: host %s, arena %s, %s%s%s, stream %s\n",
		ro.host_id, name,
		ro.redis_unix ? ro.redis_unix : ro.redis_host ? ro.redis_host :
		"127.0.0.1", ro.redis_unix ? "" : ":",
		ro.redis_unix ? "" : (snprintf(line, sizeof(line), "%u",
			ro.redis_port ? ro.redis_port : 6379), line),
		ro.stream ? ro.stream : "mlc:events");

	err[0] = '\0';
	/* 64 bits: a 32-bit count wrapped after 49.7 days, and was then never
	 * a multiple of 200 again for 24 wraps (review Q). */
	for (uint64_t t = 0; !quit; t += 50) {
		struct mlc_relay *relay = atts[n - 1].relay;
		char e[160];

		usleep(50 * 1000);
		mlc_relay_last_error(relay, e, sizeof(e));
		if (strcmp(e, err) != 0) {
			fprintf(stderr, "mlc-relay: %s\n", e);
			snprintf(err, sizeof(err), "%s", e);
		}
		if (stats_ms && t % stats_ms < 50)
			write_stats(relay, stats_file, 1);
		else if (stats_file && t % 200 == 0)
			write_stats(relay, stats_file, 0);
		if (t % 1000 == 0)
			follow_name(name, path, &ao, &ro, atts, &n, &last_rc);
	}
	write_stats(atts[n - 1].relay, stats_file, 0);
	for (int i = 0; i < n - 1; i++)
		detach(&atts[i], name);
	detach(&atts[n - 1], NULL);
	return 0;
}
