/*
 * mlcctl: look into and operate an mlc arena from the command line.
 *
 * Uses only the public API of <mlc.h>.  Every command attaches an existing
 * arena (never creating one, except `set --create`), and the read-only
 * commands (stats, ls, keys, slabs, procs, check) attach read-only and
 * never open a cache handle, so they create no namespace, count nothing
 * and are never listed among the attached processes.
 *
 * Exit status: 0 success, 1 not found (key or namespace) or `check` found
 * problems, 2 usage error or failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <wchar.h>

#include <mlc.h>

#include "utf8.h"

/* (X_SUCCESS, not X_OK: that is access()'s, in <unistd.h>) */
enum { X_SUCCESS = 0, X_NOTFOUND = 1, X_ERR = 2 };

static const char *prog = "mlcctl";

/* ---- options and commands ------------------------------------------- */

enum opt_bit {
	O_FILE = 1 << 0, O_FOREIGN = 1 << 1, O_VERBOSE = 1 << 2,
	O_HELP = 1 << 3, O_NS = 1 << 4, O_FORMAT = 1 << 5, O_HEX = 1 << 6,
	O_STALE = 1 << 7, O_TTL = 1 << 8, O_NEGATIVE = 1 << 9,
	O_CREATE = 1 << 10, O_BYTES = 1 << 11, O_WATCH = 1 << 12,
	O_PREFIX = 1 << 13, O_LIMIT = 1 << 14, O_JSON = 1 << 15,
};
#define O_GLOBAL (O_FILE | O_FOREIGN | O_VERBOSE | O_HELP)

enum format { F_TABLE, F_JSON, F_PROM };

#define MAXPOS 8

struct opts {
	uint32_t given;		/* enum opt_bit */
	const char *ns;
	enum format format;
	int64_t ttl_ms;
	uint64_t bytes;
	unsigned watch;		/* stats --watch: seconds between reports */
	const char *prefix;	/* keys --prefix */
	uint64_t limit;		/* keys --limit (0: all) */
	const char *pos[MAXPOS];
	int npos;
	const char *arena;	/* pos[0] */
	const struct command *cmd;
};

struct command {
	const char *name;
	int min_args, max_args;	/* after NS etc., not counting ARENA */
	uint32_t allowed;	/* enum opt_bit, beyond O_GLOBAL */
	int (*run)(struct opts *o);
	const char *synopsis;
	const char *summary;
	const char *help;
};

static int cmd_stats(struct opts *o);
static int cmd_ls(struct opts *o);
static int cmd_get(struct opts *o);
static int cmd_set(struct opts *o);
static int cmd_delete(struct opts *o);
static int cmd_purge(struct opts *o);
static int cmd_keys(struct opts *o);
static int cmd_slabs(struct opts *o);
static int cmd_procs(struct opts *o);
static int cmd_check(struct opts *o);

static const struct command commands[] = {
	{ "stats", 0, 0, O_NS | O_FORMAT | O_JSON | O_WATCH, cmd_stats,
	  "stats [--ns NS] [--format table|json|prometheus] [--json] "
	  "[--watch S]",
	  "arena facts, arena and namespace counters",
	  "Print the arena's facts and counters (mlc_arena_info: created_ms\n"
	  "is when it was made, with the uptime in the table; procs,\n"
	  "arena_handles and cache_handles are the processes that have it\n"
	  "attached and their handles, as `procs` lists them; huge_bytes\n"
	  "is how much of it 2 MiB pages map), each\n"
	  "namespace's live items and bytes (mlc_namespace_info: exact, never\n"
	  "lagging) and its counters (mlc_namespace_stats: the sum of what\n"
	  "every handle in every process has flushed; a handle in use\n"
	  "flushes within 1 s plus at most 64 of its calls, and when it is\n"
	  "closed).\n"
	  "\n"
	  "  --ns NS        only this namespace (exit 1 if it does not exist)\n"
	  "  --format F     table (default), json, or prometheus (the text\n"
	  "                 exposition format: mlc_arena_* and\n"
	  "                 mlc_namespace_*{namespace=\"...\"} with an\n"
	  "                 arena=\"ARENA\" label on every sample, and\n"
	  "                 mlc_build_info{version=\"...\"} 1)\n"
	  "  --json         the same as --format json\n"
	  "  --watch S      print a whole report every S seconds until\n"
	  "                 killed, each of the arena at the name then (one\n"
	  "                 made again is followed; none ends the watch,\n"
	  "                 exit 2)\n"
	  "\n"
	  "Namespace names are any bytes but NUL.  In json (the keys of\n"
	  "\"namespaces\") and prometheus (the namespace label, and the\n"
	  "arena label) a name is the text ls shows: valid UTF-8 as is, a\n"
	  "backslash as \\\\, other bytes and controls as \\xHH, so distinct\n"
	  "names stay distinct and the label is valid UTF-8.  When that\n"
	  "text is not the name, json adds \"name_hex\", the name's exact\n"
	  "bytes in hex.\n" },
	{ "ls", 0, 0, 0, cmd_ls,
	  "ls",
	  "namespaces, arena size, pages and items",
	  "List the namespaces in use with their live items and bytes, their\n"
	  "flushed counters (sets, deletes, purges, hits (L1 + L2), misses\n"
	  "(loaded, not found or failed) and the hit ratio), the arena's\n"
	  "size, pages and items, and how many processes have it attached\n"
	  "with how many cache handles.\n" },
	{ "get", 2, 2, O_HEX | O_STALE, cmd_get,
	  "get NS KEY [--hex] [--stale] [--verbose]",
	  "a value (to stdout)",
	  "Look KEY up in namespace NS (mlc_get without a loader: L2, as\n"
	  "mlcctl has no L1 of its own) and write the value to stdout, raw.\n"
	  "A cached miss (negative entry) writes nothing and says so on\n"
	  "stderr.  Exit 1 if the key or the namespace does not exist.\n"
	  "\n"
	  "  --hex          write the value as hex digits and a newline\n"
	  "  --stale        an expired value may be returned (flagged stale)\n"
	  "  -v, --verbose  level, length, TTL left, flags and version to\n"
	  "                 stderr\n" },
	{ "peek", 2, 2, O_HEX | O_STALE, cmd_get,
	  "peek NS KEY [--hex] [--stale] [--verbose]",
	  "a value, without promoting it",
	  "Like get, with mlc_peek: no promotion, never runs a loader.\n"
	  "\n"
	  "  --hex          write the value as hex digits and a newline\n"
	  "  --stale        an expired value may be returned (flagged stale)\n"
	  "  -v, --verbose  level, length, TTL left, flags and version to\n"
	  "                 stderr\n" },
	{ "set", 2, 3, O_TTL | O_NEGATIVE | O_CREATE | O_BYTES, cmd_set,
	  "set NS KEY VALUE|- [--ttl T] [--negative] [--create [--bytes N]]",
	  "store a value",
	  "Store VALUE (the argument's bytes, or stdin for -) under KEY in\n"
	  "namespace NS (created on first use) and invalidate it in every\n"
	  "process's L1.  stdin is read up to the arena's value_max (key\n"
	  "+ value): one with more is refused (exit 2) without being read\n"
	  "to its end.\n"
	  "\n"
	  "  --ttl T        time to live: milliseconds, or with a unit (ms, s,\n"
	  "                 m, h), or \"never\".  Default: the library's\n"
	  "                 default TTL (30 s)\n"
	  "  --negative     store a cached miss instead (no VALUE)\n"
	  "  --create       create the arena if it does not exist (the only\n"
	  "                 way mlcctl creates an arena; mode 0600)\n"
	  "  --bytes N      with --create: the arena's size (K, M, G suffixes\n"
	  "                 in either case are binary); default 64M; a size\n"
	  "                 too small for the layout is refused with the\n"
	  "                 smallest that works.  An arena that exists keeps\n"
	  "                 its size: --bytes other than that size is an\n"
	  "                 error (exit 2, nothing stored)\n" },
	{ "delete", 2, 2, 0, cmd_delete,
	  "delete NS KEY",
	  "remove a key everywhere",
	  "Remove KEY from L2 and from every process's L1.  Deleting an\n"
	  "absent key succeeds (-v says whether L2 had it); exit 1 if the\n"
	  "namespace does not exist (nothing is created).\n" },
	{ "purge", 1, 1, 0, cmd_purge,
	  "purge NS",
	  "drop a whole namespace",
	  "Drop every entry of namespace NS, in L2 and every L1, in O(1).\n"
	  "Exit 1 if the namespace does not exist.\n" },
	{ "keys", 1, 1, O_PREFIX | O_LIMIT | O_FORMAT | O_JSON, cmd_keys,
	  "keys NS [--prefix P] [--limit N] [--json]",
	  "the keys of a namespace",
	  "List the entries of namespace NS (mlc_namespace_keys), one line\n"
	  "each, tab-separated: the key (bytes that are not printable UTF-8\n"
	  "as \\xHH, a backslash as \\\\), the value's size in bytes, the\n"
	  "TTL left (NNNms, never, or expired: not yet reclaimed) and\n"
	  "negative or -.  Read-only, without a lock: safe on a live arena,\n"
	  "where an entry that changes meanwhile may be listed or not.  In\n"
	  "index order, in steps of 4096 buckets.\n"
	  "\n"
	  "  --prefix P     only keys that start with P\n"
	  "  --limit N      list at most N keys (default 1000; 0: all); -v\n"
	  "                 says when keys were left out\n"
	  "  --json         one JSON document (also --format json):\n"
	  "                 {\"arena\", \"namespace\", \"keys\": [{\"key\",\n"
	  "                 \"value_bytes\", \"ttl_ms\" (null: never expires),\n"
	  "                 \"expired\", \"negative\", \"version\"}, ...],\n"
	  "                 \"limited\" (true: keys were left out)}.  Keys are\n"
	  "                 bytes: \"key\" holds valid UTF-8 as characters and\n"
	  "                 each byte that is not part of a valid UTF-8\n"
	  "                 sequence as \\u00XX (U+0000 to U+00FF), so such a\n"
	  "                 key also has \"key_hex\", its exact bytes in hex;\n"
	  "                 without \"key_hex\", the key is \"key\" in UTF-8.\n"
	  "                 \"namespace\" is the name as stats --json shows\n"
	  "                 it (with \"namespace_hex\" when that is not the\n"
	  "                 name)\n"
	  "\n"
	  "Exit 1 if the namespace does not exist.\n" },
	{ "slabs", 0, 0, O_FORMAT | O_JSON, cmd_slabs,
	  "slabs [--json]",
	  "the allocator's size classes",
	  "For each size class that owns pages or moved any\n"
	  "(mlc_arena_class): its chunk size, chunks per page, pages,\n"
	  "chunks used and free, live entries evicted for room, and pages\n"
	  "moved in from and out to other classes or the pool; then the\n"
	  "totals and the pool's free pages.  Read-only.\n"
	  "\n"
	  "  --json         one JSON document (also --format json), with\n"
	  "                 every class, idle ones too: {\"arena\",\n"
	  "                 \"classes\": [{\"class\", \"chunk_size\", ...}],\n"
	  "                 \"total\": {...}, \"pages\", \"pages_free\"}\n" },
	{ "procs", 0, 0, O_FORMAT | O_JSON, cmd_procs,
	  "procs [--json]",
	  "the processes that have the arena attached",
	  "List the processes that have the arena attached\n"
	  "(mlc_arena_procs): pid, when it attached, its arena and cache\n"
	  "handles and its command name (from /proc/PID/comm).  A process\n"
	  "that died without closing (SIGKILL, a crash) is left out as soon\n"
	  "as /proc proves it dead; one of another pid namespace cannot be\n"
	  "judged from here and is marked unchecked.  Processes that attach\n"
	  "read-only (mlcctl's inspecting commands) are never listed.  The\n"
	  "table holds 96 processes: unlisted counts attaches that found it\n"
	  "full.  Read-only.\n"
	  "\n"
	  "  --json         one JSON document (also --format json):\n"
	  "                 {\"arena\", \"processes\": [{\"pid\", \"pid_ns\",\n"
	  "                 \"start_ticks\", \"attached_ms\", \"arena_handles\",\n"
	  "                 \"cache_handles\", \"unchecked\", \"command\"}],\n"
	  "                 \"procs_unlisted\", \"procs_pruned\"}\n" },
	{ "check", 0, 0, O_FORMAT | O_JSON, cmd_check,
	  "check [--format table|json] [--json]",
	  "consistency check (read-only)",
	  "Walk the arena's index and pages (mlc_arena_check) and print the\n"
	  "report; bad_header counts a file truncated or grown while mapped,\n"
	  "a header that fails its checksum, and live header fields that\n"
	  "contradict the data.  An arena that cannot be attached (truncated\n"
	  "before, damaged header, not a regular file) is explained and\n"
	  "exits 2.  Attaches read-only (MLC_ARENA_RDONLY): it writes nothing\n"
	  "to the arena, not even the reset of a file arena made before a\n"
	  "reboot.  Exit 0 when consistent, 1 when problems were\n"
	  "found, 2 when the arena cannot be attached.  On an arena in use,\n"
	  "a write in progress shows as an odd bucket version and a page\n"
	  "move in progress through every tally as pages_moving (page\n"
	  "counts not judged), a namespace being added through every walk\n"
	  "as ns_making (namespace count not judged); none is a problem,\n"
	  "and concurrent writes are not reported.\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct {
	const char *name;
	uint32_t bit;
	bool arg;
} long_opts[] = {
	{ "file", O_FILE, false },	{ "foreign", O_FOREIGN, false },
	{ "verbose", O_VERBOSE, false }, { "help", O_HELP, false },
	{ "ns", O_NS, true },		{ "format", O_FORMAT, true },
	{ "hex", O_HEX, false },	{ "stale", O_STALE, false },
	{ "ttl", O_TTL, true },		{ "negative", O_NEGATIVE, false },
	{ "create", O_CREATE, false },	{ "bytes", O_BYTES, true },
	{ "watch", O_WATCH, true },	{ "prefix", O_PREFIX, true },
	{ "limit", O_LIMIT, true },	{ "json", O_JSON, false },
};

/* ---- messages ---------------------------------------------------------- */

static const char *shown(const char *s);

__attribute__((format(printf, 1, 2))) static void
err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A library failure: the code, its text, and the exit status it maps to. */
static int
fail(int rc, const char *what)
{
	err("%s: %s (%d)", what, mlc_strerror(rc), rc);
	return X_ERR;
}

static void
usage_line(FILE *f)
{
	fprintf(f,
		"usage: %s [--file] [--foreign] ARENA COMMAND [ARGS] [OPTIONS]\n"
		"       %s help [COMMAND] | --help | --version\n",
		prog, prog);
}

static void
help_tool(FILE *f)
{
	usage_line(f);
	fprintf(f,
		"\n"
		"Look into and operate an mlc arena.  ARENA is a POSIX shm name\n"
		"(/dev/shm/NAME), or a file path with --file.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n      %s\n", commands[i].synopsis,
			commands[i].summary);
	fprintf(f,
		"\n"
		"Options (anywhere; `--` ends them, for keys or values that\n"
		"start with '-'):\n"
		"  --file         ARENA is a file path (MLC_ARENA_FILE)\n"
		"  --foreign      allow an arena owned by another uid\n"
		"  -v, --verbose  say more, on stderr\n"
		"  -h, --help     this help; `%s COMMAND --help` for a command\n"
		"  --version      the library's version\n"
		"\n"
		"Only `set --create` creates an arena; every other command needs\n"
		"an existing one.  stats, ls, keys, slabs, procs and check\n"
		"attach read-only and open no cache handle, so they create no\n"
		"namespace, change no counter and are not listed by procs.\n"
		"\n"
		"Exit status:\n"
		"  0  success (check: the arena is consistent)\n"
		"  1  not found: no such key (get, peek) or namespace; check:\n"
		"     problems found\n"
		"  2  usage error, or a failure (arena cannot be attached, bad\n"
		"     argument, library error: the message gives mlc_strerror()\n"
		"     and the code)\n",
		prog);
}

static void
help_command(FILE *f, const struct command *c)
{
	fprintf(f, "usage: %s [--file] [--foreign] ARENA %s\n\n%s", prog,
		c->synopsis, c->help);
}

__attribute__((format(printf, 2, 3))) static int
usage_error(const struct command *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c != NULL)
		fprintf(stderr, "usage: %s [--file] [--foreign] ARENA %s\n",
			prog, c->synopsis);
	else
		usage_line(stderr);
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return X_ERR;
}

/* ---- parsing values ---------------------------------------------------- */

static bool
parse_u64(const char *s, uint64_t *out, const char **end)
{
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &e, 10);
	if (errno != 0)
		return false;
	*end = e;
	return true;
}

/* Milliseconds, with an optional unit, or "never". */
static bool
parse_ttl(const char *s, int64_t *ms)
{
	uint64_t v, mul;
	const char *u;

	if (strcmp(s, "never") == 0 || strcmp(s, "-1") == 0) {
		*ms = MLC_TTL_NEVER;
		return true;
	}
	if (!parse_u64(s, &v, &u))
		return false;
	if (*u == '\0' || strcmp(u, "ms") == 0)
		mul = 1;
	else if (strcmp(u, "s") == 0)
		mul = 1000;
	else if (strcmp(u, "m") == 0)
		mul = 60000;
	else if (strcmp(u, "h") == 0)
		mul = 3600000;
	else
		return false;
	if (v == 0 || v > (uint64_t)INT64_MAX / mul)
		return false;
	*ms = (int64_t)(v * mul);
	return true;
}

static bool
parse_bytes(const char *s, uint64_t *out)
{
	uint64_t v, mul;
	const char *u;

	if (!parse_u64(s, &v, &u))
		return false;
	/* K, M, G in either case, as nginx and mlc-server take them, or
	 * KiB, MiB, GiB: binary units all. */
	if (*u == '\0')
		mul = 1;
	else if (strcasecmp(u, "K") == 0 || strcasecmp(u, "KiB") == 0)
		mul = UINT64_C(1) << 10;
	else if (strcasecmp(u, "M") == 0 || strcasecmp(u, "MiB") == 0)
		mul = UINT64_C(1) << 20;
	else if (strcasecmp(u, "G") == 0 || strcasecmp(u, "GiB") == 0)
		mul = UINT64_C(1) << 30;
	else
		return false;
	if (v == 0 || v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int
set_option(struct opts *o, uint32_t bit, const char *val)
{
	o->given |= bit;
	switch (bit) {
	case O_NS:
		o->ns = val;
		break;
	case O_FORMAT:
		if (strcmp(val, "table") == 0)
			o->format = F_TABLE;
		else if (strcmp(val, "json") == 0)
			o->format = F_JSON;
		else if (strcmp(val, "prometheus") == 0 ||
			 strcmp(val, "prom") == 0)
			o->format = F_PROM;
		else
			return usage_error(NULL, "unknown format '%s' (table, "
					   "json or prometheus)", shown(val));
		break;
	case O_TTL:
		if (!parse_ttl(val, &o->ttl_ms))
			return usage_error(NULL, "bad TTL '%s' (milliseconds "
					   ">= 1, a unit ms/s/m/h, or never)",
					   shown(val));
		break;
	case O_WATCH: {
		char *end;
		unsigned long v = strtoul(val, &end, 10);

		if (*val < '0' || *val > '9' || *end != '\0' || v == 0 ||
		    v > 86400)
			return usage_error(NULL, "bad --watch '%s' (seconds, "
					   "1 to 86400)", shown(val));
		o->watch = (unsigned)v;
		break;
	}
	case O_PREFIX:
		o->prefix = val;
		break;
	case O_LIMIT: {
		char *end;

		errno = 0;
		o->limit = strtoull(val, &end, 10);
		if (*val < '0' || *val > '9' || *end != '\0' || errno != 0)
			return usage_error(NULL, "bad --limit '%s' (a count; 0: "
					   "all)", shown(val));
		break;
	}
	case O_BYTES:
		if (!parse_bytes(val, &o->bytes))
			return usage_error(NULL, "bad size '%s' (bytes, or "
					   "with K, M or G)", shown(val));
		break;
	default:
		break;
	}
	return 0;
}

/* -1: go on; otherwise the exit status. */
static int
parse_args(struct opts *o, int argc, char **argv)
{
	bool only_pos = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (o->npos == MAXPOS)
				return usage_error(NULL, "too many arguments "
						   "(at '%s')", shown(a));
			o->pos[o->npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(a, "-h") == 0) {
			o->given |= O_HELP;
			continue;
		}
		if (strcmp(a, "-v") == 0) {
			o->given |= O_VERBOSE;
			continue;
		}
		if (strcmp(a, "--version") == 0) {
			printf("mlcctl (mlc %s)\n", mlc_version_string());
			return X_SUCCESS;
		}
		if (a[1] != '-')
			return usage_error(NULL, "unknown option '%s'",
					   shown(a));
		{
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			size_t k;
			int rc;

			for (k = 0; k < sizeof(long_opts) / sizeof(long_opts[0]);
			     k++)
				if (strlen(long_opts[k].name) == n &&
				    memcmp(long_opts[k].name, name, n) == 0)
					break;
			if (k == sizeof(long_opts) / sizeof(long_opts[0]))
				return usage_error(NULL, "unknown option '%s'",
						   shown(a));
			if (!long_opts[k].arg) {
				if (eq != NULL)
					return usage_error(NULL, "option '%s' "
							   "takes no value",
							   shown(a));
				o->given |= long_opts[k].bit;
				continue;
			}
			if (eq == NULL && i + 1 >= argc)
				return usage_error(NULL, "option '%s' needs a "
						   "value", shown(a));
			rc = set_option(o, long_opts[k].bit,
					eq ? eq + 1 : argv[++i]);
			if (rc != 0)
				return rc;
		}
	}
	return -1;
}

/* ---- output helpers ---------------------------------------------------- */

/* @p n bytes (keys are any bytes, NUL too) for humans: valid UTF-8 as is,
 * a backslash as \\, other bytes and the controls (C0, DEL, C1) as \xHH,
 * so that nothing written acts on a terminal or starts a line. */
static void
put_key(FILE *f, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = s[i] ? utf8_len(s + i, n - i) : 0;

		if (l == 0 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' ||
		    utf8_is_c1(s + i, l)) {
			if (s[i] == '\\')
				fputs("\\\\", f);
			else
				fprintf(f, "\\x%02x", s[i]);
			i++;
			continue;
		}
		fwrite(s + i, 1, l, f);
		i += l;
	}
}

/* A namespace name (or a key from the command line) for humans, as
 * put_key() shows bytes. */
static void
put_name(FILE *f, const char *name)
{
	put_key(f, (const unsigned char *)name, strlen(name));
}

/* @p s as put_name() shows it, for a printf: an arena's name or path (any
 * bytes, with --file) in a message or a table.  In a static buffer, so
 * one per call; cut at 16 KiB. */
static const char *
shown(const char *s)
{
	static char buf[16384];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	if (f == NULL)
		return "?";
	put_name(f, s);
	fclose(f);
	buf[sizeof(buf) - 1] = '\0';
	return buf;
}

/* The columns a terminal gives the well-formed UTF-8 character at @p s
 * (@p l bytes): 2 for a wide one (CJK, most emoji), 0 for a combining
 * mark, as wcwidth() says under the UTF-8 locale main() chose; 1 where it
 * knows none. */
static size_t
char_width(const unsigned char *s, size_t l)
{
	static const unsigned char lead_bits[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = s[0] & lead_bits[l];
	int w;

	for (size_t i = 1; i < l; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	w = wcwidth((wchar_t)cp);
	return w < 0 ? 1 : (size_t)w;
}

/* Display width of put_name()'s output, for the columns of stats and ls
 * (one column per code point put a wide character's row out of line). */
static size_t
name_width(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strlen(name), w = 0;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(s + i, n - i);

		if (l == 0 || s[i] < 0x20 || s[i] == 0x7f ||
		    utf8_is_c1(s + i, l)) {
			w += 4;
			i++;
		} else {
			w += s[i] == '\\' ? 2 : char_width(s + i, l);
			i += l;
		}
	}
	return w;
}

/* A JSON string: invalid UTF-8 bytes become U+FFFD, controls \u00XX. */
static void
put_quoted(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(s + i, n - i);

		if (l == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\')
			fprintf(f, "\\%c", s[i]);
		else if (s[i] == '\n')
			fputs("\\n", f);
		else if (s[i] < 0x20)
			fprintf(f, "\\u%04x", s[i]);
		else if (utf8_is_c1(s + i, l))
			fprintf(f, "\\u%04x", s[i + 1]);
		else
			fwrite(s + i, 1, l, f);
		i += l;
	}
	fputc('"', f);
}

/* A namespace name as a JSON string or a Prometheus label value: the
 * text put_name() shows, quoted (its backslashes and quotes escaped once
 * more).  Names are any bytes but NUL; this text is valid UTF-8 and
 * distinct for distinct names, which U+FFFD for each invalid byte was
 * not (two names became one JSON key and one Prometheus series).  False
 * if the text is not the name itself (JSON then adds "name_hex"). */
static bool
put_name_quoted(FILE *f, const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strlen(name);
	bool exact = true;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(s + i, n - i);

		if (l == 0 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' ||
		    utf8_is_c1(s + i, l)) {
			if (s[i] == '\\')
				fputs("\\\\\\\\", f);
			else
				fprintf(f, "\\\\x%02x", s[i]);
			exact = false;
			i++;
			continue;
		}
		if (s[i] == '"')
			fputs("\\\"", f);
		else
			fwrite(s + i, 1, l, f);
		i += l;
	}
	fputc('"', f);
	return exact;
}

/* @p n bytes as a JSON string: valid UTF-8 as characters (", \ and the
 * controls escaped), and every byte that is not part of a valid UTF-8
 * sequence as \u00XX.  Such a byte reads back as U+00XX, which valid
 * UTF-8 can also hold: false tells the caller the string alone does not
 * give the bytes back (keys then add "key_hex"). */
static bool
put_json_bytes(FILE *f, const unsigned char *s, size_t n)
{
	bool exact = true;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t l = s[i] ? utf8_len(s + i, n - i) : 1;

		if (l == 0) {
			exact = false;
			fprintf(f, "\\u%04x", s[i]);
			i++;
		} else if (s[i] == '"' || s[i] == '\\') {
			fprintf(f, "\\%c", s[i]);
			i++;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			fprintf(f, "\\u%04x", s[i]);
			i++;
		} else if (utf8_is_c1(s + i, l)) {	/* U+0080..U+009F */
			fprintf(f, "\\u%04x", s[i + 1]);
			i += l;
		} else {
			fwrite(s + i, 1, l, f);
			i += l;
		}
	}
	fputc('"', f);
	return exact;
}

static void
put_size(FILE *f, uint64_t b)
{
	static const char *unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		fprintf(f, "%" PRIu64 " bytes", b);
	else
		fprintf(f, "%.1f %s", v, unit[u]);
}

/* ---- arena and namespaces ---------------------------------------------- */

/* Why an attach failed, from what is at the name (stat only): a FIFO, a
 * directory, a device, another owner, a size that cannot be an arena. */
static void
explain_attach(const struct opts *o, int rc)
{
	char path[4096];
	struct stat st;

	if (o->given & O_FILE)
		snprintf(path, sizeof(path), "%s", o->arena);
	else
		snprintf(path, sizeof(path), "/dev/shm/%s",
			 o->arena + (o->arena[0] == '/'));
	if (lstat(path, &st) != 0)
		return;
	if (S_ISLNK(st.st_mode))
		err("%s is a symbolic link: arenas are never opened through "
		    "one", shown(path));
	else if (S_ISFIFO(st.st_mode))
		err("%s is a FIFO, not an arena (someone made it; remove it "
		    "if nothing uses it)", shown(path));
	else if (S_ISDIR(st.st_mode))
		err("%s is a directory, not an arena", shown(path));
	else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		err("%s is a device, not an arena", shown(path));
	else if (S_ISSOCK(st.st_mode))
		err("%s is a socket, not an arena", shown(path));
	else if (rc == -EACCES)
		err("%s is owned by uid %u, mode %04o", shown(path),
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	else if (rc == MLC_ECORRUPT)
		err("%s is %llu bytes; an arena whose file was truncated or "
		    "grown since creation, or whose header was changed, is "
		    "refused", shown(path), (unsigned long long)st.st_size);
}

/* The size of the arena @p o names if it exists (attached read-only, to
 * look), else 0. */
static uint64_t
existing_bytes(const struct opts *o)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	struct mlc_arena *a;

	ao.flags = ((o->given & O_FILE) ? MLC_ARENA_FILE : 0u) |
		   ((o->given & O_FOREIGN) ? MLC_ARENA_FOREIGN : 0u) |
		   MLC_ARENA_RDONLY;
	if (mlc_arena_open(&a, o->arena, &ao) < 0)
		return 0;
	if (mlc_arena_info(a, &info) < 0)
		info.bytes = 0;
	mlc_arena_close(a);
	return info.bytes;
}

/* An arena that exists keeps its size (bytes matter only on creation):
 * an explicit --bytes it does not have is an error, not an arena of a
 * size nobody asked for.  The size alone is compared, not the layout, so
 * an arena made elsewhere with other options but this size is used. */
static int
check_bytes(const struct opts *o, struct mlc_arena **ap)
{
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;
	int rc;

	if ((rc = mlc_arena_info(*ap, &info)) < 0) {
		mlc_arena_close(*ap);
		return fail(rc, "arena info");
	}
	if (info.bytes == o->bytes)
		return 0;
	mlc_arena_close(*ap);
	err("arena '%s' exists with %" PRIu64 " bytes, not the --bytes %"
	    PRIu64 " asked for: an arena keeps the size it was made with "
	    "(leave --bytes out, or remove the arena to make it anew)",
	    shown(o->arena), info.bytes, o->bytes);
	return X_ERR;
}

/* Inspecting commands (stats, ls, check) attach read-only: they work for a
 * user with read access only, and never touch the arena. */
static int
open_arena_mode(struct opts *o, bool create, bool rdonly,
		struct mlc_arena **ap)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	int rc;

	ao.flags = ((o->given & O_FILE) ? MLC_ARENA_FILE : 0u) |
		   ((o->given & O_FOREIGN) ? MLC_ARENA_FOREIGN : 0u) |
		   (create ? MLC_ARENA_CREATE : 0u) |
		   (rdonly ? MLC_ARENA_RDONLY : 0u);
	ao.bytes = o->bytes;
	rc = mlc_arena_open(ap, o->arena, &ao);
	if (rc == 0)
		return create && (o->given & O_BYTES) ? check_bytes(o, ap) : 0;
	err("cannot %s arena '%s': %s (%d)", create ? "open or create" :
	    "attach", shown(o->arena), mlc_strerror(rc), rc);
	explain_attach(o, rc);
	/* -EINVAL: a bad name, or (with --bytes) a size too small; the
	 * name's hint whatever --bytes says. */
	if (rc == -EINVAL && !(o->given & O_FILE) &&
	    strchr(o->arena + 1, '/') != NULL) {
		err("hint: an shm name has no '/' after the first; use --file "
		    "for a path");
	} else if (rc == -EINVAL && create && (o->given & O_BYTES)) {
		uint64_t min = mlc_arena_min_bytes(&ao);
		uint64_t have = existing_bytes(o);

		if (min > o->bytes)
			err("--bytes %" PRIu64 " is too small: the smallest "
			    "arena with the default layout is %" PRIu64
			    " bytes (%" PRIu64 "K)", o->bytes, min,
			    (min + 1023) / 1024);
		if (have != 0)
			err("arena '%s' exists with %" PRIu64 " bytes, and "
			    "keeps them", shown(o->arena), have);
	} else if (rc == -ENOENT && !create) {
		err("hint: mlcctl does not create arenas (except set "
		    "--create)%s", (o->given & O_FILE) ? "" :
		    "; a file path needs --file");
	} else if (rc == -EACCES && !(o->given & O_FOREIGN)) {
		err("hint: --foreign attaches an arena of another uid");
	}
	return X_ERR;
}

static int
check_ns_name(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > MLC_NAME_MAX) {
		fprintf(stderr, "%s: namespace name must be 1 to %d bytes, '",
			prog, MLC_NAME_MAX);
		put_name(stderr, ns);
		fprintf(stderr, "' has %zu\n", n);
		return X_ERR;
	}
	return 0;
}

/* 0 if @p ns exists (its counters in *st), X_NOTFOUND or X_ERR. */
static int
ns_lookup(struct mlc_arena *a, const char *ns, struct mlc_stats *st)
{
	int rc;

	st->size = sizeof(*st);
	rc = mlc_namespace_stats(a, ns, st);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT) {
		fprintf(stderr, "%s: no namespace '", prog);
		put_name(stderr, ns);
		fputs("' in this arena\n", stderr);
		return X_NOTFOUND;
	}
	return fail(rc, "namespace counters");
}

struct ns_list {
	char (*name)[MLC_NAME_MAX + 1];
	struct mlc_stats *st;
	struct mlc_namespace_info *in;	/* live contents, by ns_list_info */
	size_t n;
};

static void
ns_list_free(struct ns_list *l)
{
	free(l->name);
	free(l->st);
	free(l->in);
}

/* The live contents of every namespace of @p l; one that went away
 * meanwhile reads as empty. */
static int
ns_list_info(struct mlc_arena *a, struct ns_list *l)
{
	l->in = calloc(l->n ? l->n : 1, sizeof(*l->in));
	if (l->in == NULL)
		return fail(-ENOMEM, "namespaces");
	for (size_t j = 0; j < l->n; j++) {
		int rc;

		l->in[j].size = sizeof(l->in[j]);
		rc = mlc_namespace_info(a, l->name[j], &l->in[j]);
		if (rc < 0 && rc != -ENOENT)
			return fail(rc, "namespace info");
	}
	return 0;
}

/* Every namespace in use (or just @p only) with its counters. */
static int
ns_list_get(struct mlc_arena *a, const char *only, struct ns_list *l)
{
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	if (only != NULL) {
		int rc = check_ns_name(only);

		if (rc != 0)
			return rc;
		l->name = calloc(1, sizeof(*l->name));
		l->st = calloc(1, sizeof(*l->st));
		if (l->name == NULL || l->st == NULL)
			return fail(-ENOMEM, "namespaces");
		if ((rc = ns_lookup(a, only, &l->st[0])) != 0)
			return rc;
		snprintf(l->name[0], sizeof(l->name[0]), "%s", only);
		l->n = 1;
		return 0;
	}
	for (uint32_t i = 0;; i++) {
		char buf[MLC_NAME_MAX + 1];
		int rc = mlc_arena_namespace(a, i, buf, sizeof(buf));

		if (rc == -ENOENT)
			break;
		if (rc < 0)
			return fail(rc, "listing namespaces");
		if (l->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(l->name, ncap * sizeof(*l->name));

			if (p == NULL)
				return fail(-ENOMEM, "namespaces");
			l->name = p;
			p = realloc(l->st, ncap * sizeof(*l->st));
			if (p == NULL)
				return fail(-ENOMEM, "namespaces");
			l->st = p;
			cap = ncap;
		}
		memcpy(l->name[l->n], buf, sizeof(buf));
		memset(&l->st[l->n], 0, sizeof(l->st[l->n]));
		l->st[l->n].size = sizeof(l->st[l->n]);
		rc = mlc_namespace_stats(a, buf, &l->st[l->n]);
		if (rc == -ENOENT)
			continue;	/* gone meanwhile */
		if (rc < 0)
			return fail(rc, "namespace counters");
		l->n++;
	}
	return 0;
}

/* ---- counter descriptions ---------------------------------------------- */

enum kind { K_GAUGE, K_COUNTER };

struct field {
	const char *name;	/* the struct field: table and JSON */
	size_t off;
	bool u32;
	enum kind kind;
	const char *metric;	/* Prometheus name */
	const char *label;	/* extra label, "level=\"l1\"" */
	int scale_ms;		/* Prometheus value in seconds */
	const char *help;
};

#define AF(f, k, m, h) { #f, offsetof(struct mlc_arena_info, f), false, k, \
			 "mlc_arena_" m, NULL, 0, h }
#define AF32(f, k, m, h) { #f, offsetof(struct mlc_arena_info, f), true, k, \
			   "mlc_arena_" m, NULL, 0, h }
static const struct field arena_fields[] = {
	AF(bytes, K_GAUGE, "bytes", "Mapped size of the arena in bytes."),
	AF(max_items, K_GAUGE, "max_items", "Index slots of the arena."),
	AF(items, K_GAUGE, "items", "Entries linked in the index (mlc's "
	   "short-lived load records included)."),
	AF(neg_items, K_GAUGE, "negative_items", "Negative entries (cached "
	   "misses) in the index."),
	AF(page_size, K_GAUGE, "page_size_bytes", "Allocator page size in "
	   "bytes."),
	AF(pages, K_GAUGE, "pages", "Allocator pages."),
	AF(pages_free, K_GAUGE, "pages_free", "Allocator pages in the free "
	   "pool."),
	AF(value_max, K_GAUGE, "value_max_bytes", "Largest key plus value "
	   "that fits, in bytes."),
	AF(sets, K_COUNTER, "sets_total", "Successful L2 writes."),
	AF(evictions, K_COUNTER, "evictions_total", "Live entries evicted "
	   "for room."),
	AF(expired_reclaimed, K_COUNTER, "expired_reclaimed_total",
	   "Expired entries reclaimed."),
	AF(index_evictions, K_COUNTER, "index_evictions_total", "Entries "
	   "evicted because both candidate buckets were full."),
	AF(index_moves, K_COUNTER, "index_moves_total", "Entries moved to "
	   "their other bucket to make room for a new key."),
	AF(page_moves, K_COUNTER, "page_moves_total", "Pages moved between "
	   "size classes."),
	AF(orphans_reclaimed, K_COUNTER, "orphans_reclaimed_total", "Chunks "
	   "left by dead writers, reclaimed."),
	AF(repairs, K_COUNTER, "repairs_total", "Locks recovered from a dead "
	   "owner."),
	AF(write_failures, K_COUNTER, "write_failures_total", "Stores "
	   "refused for lack of room."),
	AF(log_head, K_COUNTER, "log_records_total", "Invalidation records "
	   "ever published."),
	AF32(namespaces, K_GAUGE, "namespaces", "Namespaces in use."),
	AF32(format, K_GAUGE, "format", "Arena format number."),
	{ "created_ms", offsetof(struct mlc_arena_info, created_ms), false,
	  K_GAUGE, "mlc_arena_start_time_seconds", NULL, 1, "When the arena "
	  "was created, in seconds since the epoch." },
	AF32(procs, K_GAUGE, "processes", "Processes with the arena "
	     "attached (read-only attaches not included; the dead left out "
	     "on proof)."),
	{ "arena_handles", offsetof(struct mlc_arena_info, arena_handles),
	  true, K_GAUGE, "mlc_arena_handles", "kind=\"arena\"", 0,
	  "Handles open in those processes, by kind." },
	{ "cache_handles", offsetof(struct mlc_arena_info, cache_handles),
	  false, K_GAUGE, "mlc_arena_handles", "kind=\"cache\"", 0, NULL },
	AF(procs_unlisted, K_COUNTER, "processes_unlisted_total", "Attaches "
	   "that found the table of attached processes full."),
	AF(procs_pruned, K_COUNTER, "processes_pruned_total", "Entries of "
	   "processes that died without closing, freed."),
	AF(huge_bytes, K_GAUGE, "huge_bytes", "Bytes of the arena that 2 MiB "
	   "pages map (0: 4 KiB pages)."),
};

#define NF(f, m, h) { #f, offsetof(struct mlc_stats, f), false, K_COUNTER, \
		      "mlc_namespace_" m, NULL, 0, h }
#define NFL(f, m, l, h) { #f, offsetof(struct mlc_stats, f), false, \
			  K_COUNTER, "mlc_namespace_" m, l, 0, h }
static const struct field ns_fields[] = {
	NFL(hits_l1, "hits_total", "level=\"l1\"", "Lookups answered with a "
	    "value they did not load, by the level that answered."),
	NFL(hits_l2, "hits_total", "level=\"l2\"", NULL),
	NF(hits_l3, "load_answers_total", "Misses answered by the value of "
	   "their own loader run."),
	NF(misses, "misses_total", "Lookups that ran the loader, found "
	   "nothing or failed."),
	NF(negative_hits, "negative_hits_total", "Hits on negative entries "
	   "(cached misses)."),
	NF(stale_served, "stale_served_total", "Stale values returned."),
	NF(loads, "loads_total", "Loader runs."),
	NF(loader_errors, "load_errors_total", "Loader runs that failed."),
	NF(codec_errors, "codec_errors_total", "Codec decode failures."),
	NF(l1_evictions, "l1_evictions_total", "L1 entries evicted."),
	NF(l2_write_failures, "l2_write_failures_total", "Stores to L2 that "
	   "failed for lack of room."),
	NF(sets, "sets_total", "mlc_set calls that succeeded."),
	NF(deletes, "deletes_total", "mlc_delete calls."),
	NF(purges, "purges_total", "mlc_purge calls."),
	NF(lock_waits, "lock_waits_total", "Calls that waited for another "
	   "process's load."),
	{ "lock_wait_ms", offsetof(struct mlc_stats, lock_wait_ms), false,
	  K_COUNTER, "mlc_namespace_lock_wait_seconds_total", NULL, 1,
	  "Time spent waiting for another process's load, in seconds." },
	NF(lock_timeouts, "lock_timeouts_total", "Waits that timed out."),
	NF(lock_steals, "lock_steals_total", "Loads taken over from a dead "
	   "or late loader."),
	NF(duplicate_loads, "duplicate_loads_total", "Loads run without "
	   "single flight."),
	NF(fenced_writes, "fenced_writes_total", "Loads not stored because "
	   "the key changed meanwhile."),
	NF(err_ttl_hits, "err_ttl_hits_total", "Errors served from the "
	   "err_ttl_ms back-off."),
	NF(log_published, "log_published_total", "Invalidation records "
	   "published."),
	NF(log_applied, "log_applied_total", "Invalidation records of this "
	   "namespace applied."),
	NF(log_dropped, "log_dropped_total", "L1 entries dropped by "
	   "invalidation records."),
	NF(log_overruns, "log_overruns_total", "L1 purges because the log "
	   "was lapped or overwritten."),
	NF(log_stuck, "log_stuck_total", "L1 purges because a publisher "
	   "never finished."),
	NF(forks, "forks_total", "L1 resets in a new child process."),
};
/* The live contents of a namespace (struct mlc_namespace_info). */
#define IF(f, m, h) { #f, offsetof(struct mlc_namespace_info, f), false, \
		      K_GAUGE, "mlc_namespace_" m, NULL, 0, h }
static const struct field info_fields[] = {
	IF(items, "items", "Entries of the namespace in the index (expired "
	   "ones until reclaimed, purged ones never)."),
	IF(bytes, "bytes", "Key and value bytes of those entries."),
};
#define NARENA (sizeof(arena_fields) / sizeof(arena_fields[0]))
#define NINFO (sizeof(info_fields) / sizeof(info_fields[0]))
#define NNS (sizeof(ns_fields) / sizeof(ns_fields[0]))

/* The field's value, false if the library's struct is too short for it. */
static bool
field_get(const struct field *fd, const void *s, size_t ssize, uint64_t *v)
{
	if (fd->off + (fd->u32 ? 4 : 8) > ssize)
		return false;
	if (fd->u32) {
		uint32_t x;

		memcpy(&x, (const char *)s + fd->off, sizeof(x));
		*v = x;
	} else {
		memcpy(v, (const char *)s + fd->off, sizeof(*v));
	}
	return true;
}

static int
arena_info(struct mlc_arena *a, struct mlc_arena_info *info)
{
	int rc;

	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	rc = mlc_arena_info(a, info);
	return rc < 0 ? fail(rc, "arena info") : 0;
}

static const char *
arena_kind(const struct opts *o)
{
	return (o->given & O_FILE) ? "file" : "shm";
}

/* ---- stats ------------------------------------------------------------- */

static void
stats_table(const struct opts *o, const struct mlc_arena_info *info,
	    const struct ns_list *l)
{
	enum { PER_BLOCK = 5 };

	printf("%-18s %s (%s)\n", "arena", shown(o->arena), arena_kind(o));
	for (size_t i = 0; i < NARENA; i++) {
		uint64_t v;

		if (!field_get(&arena_fields[i], info, info->size, &v))
			continue;
		printf("%-18s %" PRIu64, arena_fields[i].name, v);
		if (strcmp(arena_fields[i].name, "created_ms") == 0 && v) {
			time_t t = (time_t)(v / 1000);
			struct timespec now;
			struct tm tm;
			char when[32];

			clock_gettime(CLOCK_REALTIME, &now);
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
				 &tm);
			printf(" (%s, up %" PRId64 " s)", when,
			       ((int64_t)now.tv_sec * 1000 +
				now.tv_nsec / 1000000 - (int64_t)v) / 1000);
		}
		if (strcmp(arena_fields[i].name, "bytes") == 0 ||
		    strcmp(arena_fields[i].name, "page_size") == 0) {
			fputs(" (", stdout);
			put_size(stdout, v);
			fputc(')', stdout);
		}
		fputc('\n', stdout);
	}
	if (l->n == 0) {
		printf("\n%s\n", o->ns ? "" : "no namespaces");
		return;
	}
	/* Counters as rows, namespaces as columns, a few per block. */
	for (size_t b = 0; b < l->n; b += PER_BLOCK) {
		size_t e = b + PER_BLOCK < l->n ? b + PER_BLOCK : l->n;
		size_t w[PER_BLOCK];

		printf("\n%-18s", "namespace");
		for (size_t j = b; j < e; j++) {
			size_t nw = name_width(l->name[j]);

			w[j - b] = nw > 12 ? nw : 12;
			printf(" %*s", (int)(w[j - b] - nw), "");
			put_name(stdout, l->name[j]);
		}
		fputc('\n', stdout);
		for (size_t i = 0; i < NINFO + NNS; i++) {
			const struct field *f = i < NINFO ? &info_fields[i] :
						&ns_fields[i - NINFO];

			printf("%-18s", f->name);
			for (size_t j = b; j < e; j++) {
				const void *src = i < NINFO ?
					(const void *)&l->in[j] : &l->st[j];
				size_t sz = i < NINFO ? l->in[j].size :
							l->st[j].size;
				uint64_t v;

				if (field_get(f, src, sz, &v))
					printf(" %*" PRIu64, (int)w[j - b], v);
				else
					printf(" %*s", (int)w[j - b], "-");
			}
			fputc('\n', stdout);
		}
	}
}

static void
json_fields(const struct field *f, size_t n, const void *s, size_t ssize,
	    const char *indent, bool first)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		if (!field_get(&f[i], s, ssize, &v))
			continue;
		printf("%s\n%s\"%s\": %" PRIu64, first ? "" : ",", indent,
		       f[i].name, v);
		first = false;
	}
}

/* A name's exact bytes as hex digits, quoted. */
static void
put_name_hex(FILE *f, const char *name)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		fprintf(f, "%02x", *p);
	fputc('"', f);
}

static void
stats_json(const struct opts *o, const struct mlc_arena_info *info,
	   const struct ns_list *l)
{
	bool exact;

	printf("{\n  \"arena\": {\n    \"name\": ");
	put_quoted(stdout, o->arena);
	printf(",\n    \"kind\": \"%s\",", arena_kind(o));
	json_fields(arena_fields, NARENA, info, info->size, "    ", true);
	printf("\n  },\n  \"namespaces\": {");
	for (size_t j = 0; j < l->n; j++) {
		printf("%s\n    ", j ? "," : "");
		exact = put_name_quoted(stdout, l->name[j]);
		printf(": {");
		if (!exact) {
			printf("\n      \"name_hex\": ");
			put_name_hex(stdout, l->name[j]);
		}
		json_fields(info_fields, NINFO, &l->in[j], l->in[j].size,
			    "      ", exact);
		json_fields(ns_fields, NNS, &l->st[j], l->st[j].size,
			    "      ", false);
		printf("\n    }");
	}
	printf("%s}\n}\n", l->n ? "\n  " : "");
}

static void
prom_value(uint64_t v, bool ms)
{
	if (ms)
		printf("%" PRIu64 ".%03u\n", v / 1000, (unsigned)(v % 1000));
	else
		printf("%" PRIu64 "\n", v);
}

static void
prom_head(const struct field *f)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", f->metric, f->help, f->metric,
	       f->kind == K_COUNTER ? "counter" : "gauge");
}

static void
stats_prom(const struct opts *o, const struct mlc_arena_info *info,
	   const struct ns_list *l)
{
	printf("# HELP mlc_build_info The mlc library mlcctl runs with.\n"
	       "# TYPE mlc_build_info gauge\n"
	       "mlc_build_info{version=\"%s\"} 1\n", mlc_version_string());
	for (size_t i = 0; i < NARENA; i++) {
		const struct field *f = &arena_fields[i];
		uint64_t v;

		if (!field_get(f, info, info->size, &v))
			continue;
		if (f->help != NULL)	/* first of its family */
			prom_head(f);
		printf("%s{arena=", f->metric);
		put_name_quoted(stdout, o->arena);
		if (f->label != NULL)
			printf(",%s", f->label);
		printf("} ");
		prom_value(v, f->scale_ms);
	}
	for (size_t i = 0; i < NINFO + NNS; i++) {
		const struct field *f = i < NINFO ? &info_fields[i] :
					&ns_fields[i - NINFO];

		if (f->help != NULL)	/* first of its family */
			prom_head(f);
		for (size_t j = 0; j < l->n; j++) {
			uint64_t v;

			if (!(i < NINFO ? field_get(f, &l->in[j],
						    l->in[j].size, &v) :
			      field_get(f, &l->st[j], l->st[j].size, &v)))
				continue;
			printf("%s{arena=", f->metric);
			put_name_quoted(stdout, o->arena);
			printf(",namespace=");
			put_name_quoted(stdout, l->name[j]);
			if (f->label != NULL)
				printf(",%s", f->label);
			printf("} ");
			prom_value(v, f->scale_ms);
		}
	}
}

/* One report of the arena at the name now. */
static int
stats_once(struct opts *o)
{
	struct mlc_arena_info info;
	struct mlc_arena *a;
	struct ns_list l;
	int rc;

	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	rc = arena_info(a, &info);
	if (rc == 0)
		rc = ns_list_get(a, o->ns, &l);
	if (rc == 0)
		rc = ns_list_info(a, &l);
	if (rc == 0) {
		if (o->format == F_JSON)
			stats_json(o, &info, &l);
		else if (o->format == F_PROM)
			stats_prom(o, &info, &l);
		else
			stats_table(o, &info, &l);
	}
	ns_list_free(&l);
	mlc_arena_close(a);
	return rc;
}

static int
cmd_stats(struct opts *o)
{
	int rc;

	/* --watch: a whole report every N seconds, until killed.  Each
	 * attaches anew: a handle kept would go on showing an arena removed
	 * meanwhile (and made again under the name), frozen, as if alive. */
	while ((rc = stats_once(o)) == 0 && o->watch != 0 &&
	       fflush(stdout) == 0) {
		nanosleep(&(struct timespec){ .tv_sec = o->watch }, NULL);
		if (o->format == F_TABLE)
			fputc('\n', stdout);
	}
	return rc;
}

/* ---- ls ---------------------------------------------------------------- */

static int
cmd_ls(struct opts *o)
{
	struct mlc_arena_info info;
	struct mlc_arena *a;
	struct ns_list l;
	int rc;

	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	if ((rc = arena_info(a, &info)) != 0 ||
	    (rc = ns_list_get(a, NULL, &l)) != 0 ||
	    (rc = ns_list_info(a, &l)) != 0) {
		ns_list_free(&l);
		mlc_arena_close(a);
		return rc;
	}
	printf("arena %s (%s): ", shown(o->arena), arena_kind(o));
	put_size(stdout, info.bytes);
	printf(", %" PRIu64 " pages of ", info.pages);
	put_size(stdout, info.page_size);
	printf(" (%" PRIu64 " free), %" PRIu64 " items (%" PRIu64
	       " negative) in %" PRIu64 " slots\n", info.pages_free,
	       info.items, info.neg_items, info.max_items);
	printf("%" PRIu32 " process%s attached, with %" PRIu64 " cache "
	       "handle%s\n", info.procs, info.procs == 1 ? "" : "es",
	       info.cache_handles, info.cache_handles == 1 ? "" : "s");
	printf("%" PRIu32 " namespace%s", info.namespaces,
	       info.namespaces == 1 ? "" : "s");
	if (l.n == 0) {
		printf("\n");
	} else {
		size_t w = 9;

		printf("; per namespace, its live items and bytes and what "
		       "its handles have flushed:\n");
		for (size_t j = 0; j < l.n; j++)
			if (name_width(l.name[j]) > w)
				w = name_width(l.name[j]);
		printf("%-*s %10s %12s %10s %10s %8s %12s %10s %6s\n", (int)w,
		       "NAMESPACE", "ITEMS", "BYTES", "SETS", "DELETES",
		       "PURGES", "HITS", "MISSES", "HIT%");
		for (size_t j = 0; j < l.n; j++) {
			const struct mlc_stats *s = &l.st[j];
			uint64_t hits = s->hits_l1 + s->hits_l2;

			put_name(stdout, l.name[j]);
			printf("%*s %10" PRIu64 " %12" PRIu64 " %10" PRIu64
			       " %10" PRIu64 " %8" PRIu64 " %12" PRIu64
			       " %10" PRIu64 " ",
			       (int)(w - name_width(l.name[j])), "",
			       l.in[j].items, l.in[j].bytes, s->sets,
			       s->deletes, s->purges, hits, s->misses);
			if (hits + s->misses == 0)
				printf("%6s\n", "-");
			else
				printf("%6.1f\n", 100.0 * (double)hits /
				       (double)(hits + s->misses));
		}
	}
	ns_list_free(&l);
	mlc_arena_close(a);
	return 0;
}

/* ---- get, peek, set, delete, purge ------------------------------------- */

/* Attach, check NS exists unless @p create_ns, open a handle without L1. */
static int
open_cache(struct opts *o, bool create_arena, bool create_ns,
	   struct mlc_arena **ap, struct mlc_cache **cp)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	const char *ns = o->pos[2];
	struct mlc_stats st;
	int rc;

	if ((rc = check_ns_name(ns)) != 0)
		return rc;
	if ((rc = open_arena_mode(o, create_arena, false, ap)) != 0)
		return rc;
	if (!create_ns && (rc = ns_lookup(*ap, ns, &st)) != 0) {
		mlc_arena_close(*ap);
		return rc;
	}
	co.flags = MLC_CACHE_NO_L1;
	rc = mlc_cache_open(cp, *ap, ns, &co);
	if (rc < 0) {
		mlc_arena_close(*ap);
		return fail(rc, "cannot open namespace");
	}
	return 0;
}

static void
close_cache(struct mlc_arena *a, struct mlc_cache *c)
{
	mlc_cache_close(c);
	mlc_arena_close(a);
}

static int
check_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > MLC_KEY_MAX) {
		err("a key is 1 to %d bytes, this one has %zu", MLC_KEY_MAX,
		    n);
		return X_ERR;
	}
	return 0;
}

static void
print_meta(FILE *f, const struct mlc_value *v)
{
	static const char *level[] = { "?", "L1", "L2", "L3" };
	static const struct { uint32_t bit; const char *name; } fl[] = {
		{ MLC_NEGATIVE, "negative" }, { MLC_STALE, "stale" },
		{ MLC_NO_EXPIRY, "no_expiry" },
		{ MLC_NOT_CACHED, "not_cached" },
		{ MLC_L2_WRITE_FAILED, "l2_write_failed" },
	};
	bool any = false;

	fprintf(f, "level=%s len=%zu ttl_ms=", v->level <= 3 ?
		level[v->level] : "?", v->len);
	if (v->ttl_ms == MLC_TTL_NEVER)
		fputs("never", f);
	else
		fprintf(f, "%" PRId64, v->ttl_ms);
	fputs(" flags=", f);
	for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
		if (v->flags & fl[i].bit) {
			fprintf(f, "%s%s", any ? "," : "", fl[i].name);
			any = true;
		}
	}
	fprintf(f, "%s version=%" PRIu64 "\n", any ? "" : "-", v->version);
}

static int
cmd_get(struct opts *o)
{
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	bool peek = strcmp(o->cmd->name, "peek") == 0;
	const char *key = o->pos[3];
	struct mlc_value v;
	struct mlc_arena *a;
	struct mlc_cache *c;
	int rc, ret = X_SUCCESS;

	if ((rc = check_key(key)) != 0)
		return rc;
	if ((rc = open_cache(o, false, false, &a, &c)) != 0)
		return rc;
	memset(&v, 0, sizeof(v));
	if (o->given & O_STALE)
		co.flags |= MLC_CALL_STALE_OK;
	if (peek)
		rc = mlc_peek(c, key, strlen(key), co.flags, &v);
	else
		rc = mlc_get_ex(c, key, strlen(key), &co, NULL, NULL, &v);
	if (rc == -ENOENT) {
		fprintf(stderr, "%s: no key '", prog);
		put_name(stderr, key);
		fputs("' in namespace '", stderr);
		put_name(stderr, o->pos[2]);
		fputs("'\n", stderr);
		close_cache(a, c);
		return X_NOTFOUND;
	}
	if (rc < 0) {
		ret = fail(rc, peek ? "peek" : "get");
		close_cache(a, c);
		return ret;
	}
	if (o->given & O_VERBOSE)
		print_meta(stderr, &v);
	if (v.flags & MLC_NEGATIVE) {
		fprintf(stderr, "%s: '", prog);
		put_name(stderr, key);
		fputs("' is a cached miss (negative entry)\n", stderr);
	} else if (o->given & O_HEX) {
		const unsigned char *p = v.data;

		for (size_t i = 0; i < v.len; i++)
			printf("%02x", p[i]);
		putchar('\n');
	} else if (v.len > 0 && fwrite(v.data, 1, v.len, stdout) != v.len) {
		err("writing the value: %s", strerror(errno));
		ret = X_ERR;
	}
	mlc_value_release(&v);
	close_cache(a, c);
	return ret;
}

/* Reads stdin into *@p buf, but no more than @p max + 1 bytes: *@p len
 * over @p max says it has more than the arena can hold, which reading
 * the rest would only have buffered (all of stdin, before the refusal). */
static int
read_stdin(char **buf, size_t *len, size_t max)
{
	size_t cap = 65536, n = 0;
	char *p = malloc(cap);

	if (p == NULL)
		return fail(-ENOMEM, "reading stdin");
	while (n <= max) {
		size_t r, want;

		if (n == cap) {
			char *q = cap >= (SIZE_MAX >> 2) ? NULL :
				  realloc(p, cap * 2);

			if (q == NULL) {
				free(p);
				return fail(-ENOMEM, "reading stdin");
			}
			p = q;
			cap *= 2;
		}
		want = cap - n < max + 1 - n ? cap - n : max + 1 - n;
		r = fread(p + n, 1, want, stdin);
		n += r;
		if (r == 0) {
			if (ferror(stdin)) {
				err("reading stdin: %s", strerror(errno));
				free(p);
				return X_ERR;
			}
			break;
		}
	}
	*buf = p;
	*len = n;
	return 0;
}

/* The most value bytes the arena takes with @p key (mlc_set()'s -E2BIG:
 * key + value over value_max). */
static size_t
value_room(struct mlc_arena *a, const char *key)
{
	struct mlc_arena_info info = MLC_ARENA_INFO_INIT;

	if (mlc_arena_info(a, &info) != 0)
		return SIZE_MAX - 1;	/* mlc_set() will say */
	return info.value_max > strlen(key) ?
	       (size_t)(info.value_max - strlen(key)) : 0;
}

static int
cmd_set(struct opts *o)
{
	struct mlc_call_options co = MLC_CALL_OPTIONS_INIT;
	bool neg = (o->given & O_NEGATIVE) != 0;
	const char *key = o->pos[3];
	char *buf = NULL;
	const char *data = NULL;
	size_t len = 0, room;
	bool cut = false;	/* stdin had more than the arena takes */
	struct mlc_arena *a;
	struct mlc_cache *c;
	int rc;

	if (neg && o->npos == 5)
		return usage_error(o->cmd, "%s: --negative takes no VALUE",
				   "set");
	if (!neg && o->npos != 5)
		return usage_error(o->cmd, "%s: VALUE (or - for stdin) "
				   "missing", "set");
	if ((o->given & O_BYTES) && !(o->given & O_CREATE))
		return usage_error(o->cmd, "%s: --bytes needs --create",
				   "set");
	if ((rc = check_key(key)) != 0)
		return rc;
	if ((rc = open_cache(o, (o->given & O_CREATE) != 0, true, &a,
			     &c)) != 0)
		return rc;
	if (!neg && strcmp(o->pos[4], "-") == 0) {
		/* after the attach: the arena's value_max bounds the read */
		room = value_room(a, key);
		if ((rc = read_stdin(&buf, &len, room)) != 0) {
			close_cache(a, c);
			return rc;
		}
		data = buf;
		cut = len > room;
	} else if (!neg) {
		data = o->pos[4];
		len = strlen(data);
	}
	if (neg)
		co.flags |= MLC_CALL_NEGATIVE;
	if (o->given & O_TTL) {
		co.ttl_ms = o->ttl_ms;
		co.neg_ttl_ms = o->ttl_ms;
	}
	rc = cut ? -E2BIG : mlc_set(c, key, strlen(key), data, len, &co);
	free(buf);
	if (rc == -E2BIG) {
		struct mlc_arena_info info = MLC_ARENA_INFO_INIT;

		if (mlc_arena_info(a, &info) == 0)
			err("set: key + value (%zu bytes%s) over this arena's "
			    "value_max (%" PRIu64 ")", strlen(key) + len,
			    cut ? " or more" : "",
			    info.value_max);
	}
	if (rc < 0) {
		rc = fail(rc, "set");
	} else if (o->given & O_VERBOSE) {
		fprintf(stderr, "stored %zu bytes%s under '", len,
			neg ? " (negative entry)" : "");
		put_name(stderr, key);
		fputs("'\n", stderr);
	}
	close_cache(a, c);
	return rc;
}

static int
cmd_delete(struct opts *o)
{
	const char *key = o->pos[3];
	struct mlc_value v;
	struct mlc_arena *a;
	struct mlc_cache *c;
	bool had;
	int rc;

	if ((rc = check_key(key)) != 0)
		return rc;
	if ((rc = open_cache(o, false, false, &a, &c)) != 0)
		return rc;
	memset(&v, 0, sizeof(v));
	had = mlc_peek(c, key, strlen(key), MLC_CALL_STALE_OK, &v) == 0;
	mlc_value_release(&v);
	rc = mlc_delete(c, key, strlen(key));
	if (rc < 0) {
		rc = fail(rc, "delete");
	} else if (o->given & O_VERBOSE) {
		fprintf(stderr, "%s '", had ? "deleted" : "invalidated");
		put_name(stderr, key);
		fprintf(stderr, "'%s\n", had ? "" : " (L2 did not have it)");
	}
	close_cache(a, c);
	return rc;
}

static int
cmd_purge(struct opts *o)
{
	struct mlc_arena *a;
	struct mlc_cache *c;
	int rc;

	if ((rc = open_cache(o, false, false, &a, &c)) != 0)
		return rc;
	rc = mlc_purge(c);
	if (rc < 0) {
		rc = fail(rc, "purge");
	} else if (o->given & O_VERBOSE) {
		fputs("purged namespace '", stderr);
		put_name(stderr, o->pos[2]);
		fputs("'\n", stderr);
	}
	close_cache(a, c);
	return rc;
}

/* ---- keys -------------------------------------------------------------- */

struct keys_ctx {
	const char *prefix;
	size_t plen;
	uint64_t limit, n;
	bool json;
};

/* One entry of `keys --json`. */
static void
key_json(const struct mlc_key_info *k, bool first)
{
	const unsigned char *b = k->key;

	printf("%s\n    {\"key\": ", first ? "" : ",");
	if (!put_json_bytes(stdout, b, k->key_len)) {
		printf(", \"key_hex\": \"");
		for (size_t i = 0; i < k->key_len; i++)
			printf("%02x", b[i]);
		putchar('"');
	}
	printf(", \"value_bytes\": %zu, \"ttl_ms\": ", k->value_len);
	if (k->ttl_ms == MLC_TTL_NEVER)
		printf("null");
	else
		printf("%" PRId64, k->ttl_ms);
	printf(", \"expired\": %s, \"negative\": %s, \"version\": %" PRIu64
	       "}", k->flags & MLC_STALE ? "true" : "false",
	       k->flags & MLC_NEGATIVE ? "true" : "false", k->version);
}

static int
key_print(void *arg, const struct mlc_key_info *k)
{
	struct keys_ctx *x = arg;

	if (k->key_len < x->plen || memcmp(k->key, x->prefix, x->plen) != 0)
		return 0;
	/* Stop at the first key past --limit, not at the last one listed:
	 * the list is cut ("limited") only if a key was left out. */
	if (x->limit != 0 && x->n == x->limit)
		return 1;
	x->n++;
	if (x->json) {
		key_json(k, x->n == 1);
		return 0;
	}
	put_key(stdout, k->key, k->key_len);
	printf("\t%zu\t", k->value_len);
	if (k->flags & MLC_STALE)
		fputs("expired", stdout);
	else if (k->ttl_ms == MLC_TTL_NEVER)
		fputs("never", stdout);
	else
		printf("%" PRId64 "ms", k->ttl_ms);
	printf("\t%s\n", k->flags & MLC_NEGATIVE ? "negative" : "-");
	return 0;
}

static int
cmd_keys(struct opts *o)
{
	struct keys_ctx x = { o->prefix ? o->prefix : "", 0,
			      (o->given & O_LIMIT) ? o->limit : 1000, 0, false };
	const char *ns = o->pos[2];
	struct mlc_arena *a;
	struct mlc_stats st;
	uint64_t cursor = 0;
	int rc;

	x.plen = strlen(x.prefix);
	x.json = o->format == F_JSON;
	if ((rc = check_ns_name(ns)) != 0)
		return rc;
	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	if ((rc = ns_lookup(a, ns, &st)) != 0) {
		mlc_arena_close(a);
		return rc;
	}
	if (x.json) {
		printf("{\n  \"arena\": ");
		put_quoted(stdout, o->arena);
		printf(",\n  \"namespace\": ");
		if (!put_name_quoted(stdout, ns)) {
			printf(",\n  \"namespace_hex\": ");
			put_name_hex(stdout, ns);
		}
		printf(",\n  \"keys\": [");
	}
	do
		rc = mlc_namespace_keys(a, ns, &cursor, 4096, key_print, &x);
	while (rc == 0 && cursor != 0);
	mlc_arena_close(a);
	/* Whole even after a failure (the exit status tells). */
	if (x.json)
		printf("%s],\n  \"limited\": %s\n}\n", x.n ? "\n  " : "",
		       rc == 1 ? "true" : "false");
	if (rc == 1) {			/* keys left out past --limit */
		if (o->given & O_VERBOSE)
			fprintf(stderr, "%s: stopped at --limit %" PRIu64 "\n",
				prog, x.limit);
		return 0;
	}
	return rc < 0 ? fail(rc, "listing keys") : 0;
}

/* ---- slabs ------------------------------------------------------------- */

/* A size class (or the totals) as a JSON object. */
static void
class_json(const struct mlc_class_info *c, int64_t idx)
{
	if (idx >= 0)
		printf("{\"class\": %" PRId64 ", \"chunk_size\": %" PRIu32
		       ", \"chunks_per_page\": %" PRIu32 ", ", idx,
		       c->chunk_size, c->chunks_per_page);
	else
		putchar('{');
	printf("\"pages\": %" PRIu64 ", \"chunks_used\": %" PRIu64
	       ", \"chunks_free\": %" PRIu64 ", \"evictions\": %" PRIu64
	       ", \"pages_in\": %" PRIu64 ", \"pages_out\": %" PRIu64 "}",
	       c->pages, c->chunks_used, c->chunks_free, c->evictions,
	       c->pages_in, c->pages_out);
}

static int
cmd_slabs(struct opts *o)
{
	struct mlc_class_info t = MLC_CLASS_INFO_INIT;
	struct mlc_arena_info info;
	struct mlc_arena *a;
	bool json = o->format == F_JSON;
	int rc;

	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	if ((rc = arena_info(a, &info)) != 0) {
		mlc_arena_close(a);
		return rc;
	}
	if (json) {
		printf("{\n  \"arena\": ");
		put_quoted(stdout, o->arena);
		printf(",\n  \"classes\": [");
	} else {
		printf("%5s %9s %8s %7s %10s %10s %10s %8s %8s\n", "CLASS",
		       "CHUNK", "PERPAGE", "PAGES", "USED", "FREE",
		       "EVICTIONS", "MOVEDIN", "MOVEDOUT");
	}
	for (uint32_t i = 0;; i++) {
		struct mlc_class_info c = MLC_CLASS_INFO_INIT;

		rc = mlc_arena_class(a, i, &c);
		if (rc == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc < 0) {
			rc = fail(rc, "size classes");
			break;
		}
		t.pages += c.pages;
		t.chunks_used += c.chunks_used;
		t.chunks_free += c.chunks_free;
		t.evictions += c.evictions;
		t.pages_in += c.pages_in;
		t.pages_out += c.pages_out;
		if (json) {
			printf("%s\n    ", i ? "," : "");
			class_json(&c, i);
			continue;
		}
		if (c.pages == 0 && c.pages_in == 0 && c.pages_out == 0 &&
		    c.evictions == 0)
			continue;
		printf("%5" PRIu32 " %9" PRIu32 " %8" PRIu32 " %7" PRIu64
		       " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64
		       " %8" PRIu64 "\n", i, c.chunk_size, c.chunks_per_page,
		       c.pages, c.chunks_used, c.chunks_free, c.evictions,
		       c.pages_in, c.pages_out);
	}
	if (json) {
		/* Whole even after a failure (the exit status tells). */
		printf("\n  ],\n  \"total\": ");
		class_json(&t, -1);
		printf(",\n  \"pages\": %" PRIu64 ",\n  \"pages_free\": %"
		       PRIu64 "\n}\n", info.pages, info.pages_free);
	} else if (rc == 0)
		printf("%5s %9s %8s %7" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %10" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n"
		       "pool: %" PRIu64 " free pages of %" PRIu64 "\n", "all",
		       "", "", t.pages, t.chunks_used, t.chunks_free,
		       t.evictions, t.pages_in, t.pages_out, info.pages_free,
		       info.pages);
	mlc_arena_close(a);
	return rc;
}

/* ---- procs ------------------------------------------------------------- */

struct procs_ctx {
	struct mlc_proc_info *p;
	size_t n, cap;
};

static int
proc_collect(void *arg, const struct mlc_proc_info *p)
{
	struct procs_ctx *x = arg;

	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 32;
		void *q = realloc(x->p, ncap * sizeof(*x->p));

		if (q == NULL)
			return -ENOMEM;
		x->p = q;
		x->cap = ncap;
	}
	x->p[x->n++] = *p;
	return 0;
}

/* The command name of @p p from /proc/PID/comm ("" if it cannot be
 * read, or the pid is not in our pid namespace). */
static void
proc_comm(const struct mlc_proc_info *p, char *buf, size_t cap)
{
	char path[64];
	FILE *f;

	buf[0] = '\0';
	if (p->flags & MLC_PROC_UNCHECKED)
		return;
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/comm", p->pid);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(buf, (int)cap, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void
procs_table(const struct procs_ctx *x, const struct mlc_arena_info *info)
{
	printf("%8s %10s %-23s %6s %6s  %s\n", "PID", "PIDNS",
	       "ATTACHED", "ARENAS", "CACHES", "COMMAND");
	for (size_t i = 0; i < x->n; i++) {
		const struct mlc_proc_info *p = &x->p[i];
		time_t t = (time_t)(p->attached_ms / 1000);
		char when[32], comm[64];
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		proc_comm(p, comm, sizeof(comm));
		printf("%8" PRIu32 " %10" PRIu32 " %-23s %6" PRIu32 " %6" PRIu32
		       "  ", p->pid, p->pid_ns, when, p->arena_handles,
		       p->cache_handles);
		put_name(stdout, comm[0] ? comm : "-");
		if (p->flags & MLC_PROC_UNCHECKED)
			fputs(" (unchecked: another pid namespace)", stdout);
		fputc('\n', stdout);
	}
	printf("%zu process%s; unlisted %" PRIu64 " (table full), pruned %"
	       PRIu64 " (died without closing)\n", x->n,
	       x->n == 1 ? "" : "es", info->procs_unlisted,
	       info->procs_pruned);
}

static void
procs_json(const struct opts *o, const struct procs_ctx *x,
	   const struct mlc_arena_info *info)
{
	printf("{\n  \"arena\": ");
	put_quoted(stdout, o->arena);
	printf(",\n  \"processes\": [");
	for (size_t i = 0; i < x->n; i++) {
		const struct mlc_proc_info *p = &x->p[i];
		char comm[64];

		proc_comm(p, comm, sizeof(comm));
		printf("%s\n    {\"pid\": %" PRIu32 ", \"pid_ns\": %" PRIu32
		       ", \"start_ticks\": %" PRIu64 ", \"attached_ms\": %"
		       PRIu64 ", \"arena_handles\": %" PRIu32
		       ", \"cache_handles\": %" PRIu32 ", \"unchecked\": %s"
		       ", \"command\": ", i ? "," : "", p->pid, p->pid_ns,
		       p->start_ticks, p->attached_ms, p->arena_handles,
		       p->cache_handles,
		       p->flags & MLC_PROC_UNCHECKED ? "true" : "false");
		if (comm[0])
			put_json_bytes(stdout, (const unsigned char *)comm,
				       strlen(comm));
		else
			fputs("null", stdout);
		putchar('}');
	}
	printf("%s],\n  \"procs_unlisted\": %" PRIu64 ",\n  \"procs_pruned\": %"
	       PRIu64 "\n}\n", x->n ? "\n  " : "", info->procs_unlisted,
	       info->procs_pruned);
}

static int
cmd_procs(struct opts *o)
{
	struct procs_ctx x = { NULL, 0, 0 };
	struct mlc_arena_info info;
	struct mlc_arena *a;
	int rc;

	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	rc = mlc_arena_procs(a, proc_collect, &x);
	if (rc < 0) {
		rc = fail(rc, "listing processes");
	} else if ((rc = arena_info(a, &info)) == 0) {
		if (o->format == F_JSON)
			procs_json(o, &x, &info);
		else
			procs_table(&x, &info);
	}
	free(x.p);
	mlc_arena_close(a);
	return rc;
}

/* ---- check ------------------------------------------------------------- */

static int
cmd_check(struct opts *o)
{
	struct mlc_check_report r;
	struct mlc_arena *a;
	int rc;

	if ((rc = open_arena_mode(o, false, true, &a)) != 0)
		return rc;
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	rc = mlc_arena_check(a, &r);
	mlc_arena_close(a);
	if (rc < 0 && rc != MLC_ECORRUPT)
		return fail(rc, "check");
#define R(f) { #f, r.f }
	{
		const struct { const char *name; uint64_t v; } row[] = {
			R(buckets), R(slots_used), R(bad_slots),
			R(odd_versions), R(pages), R(pages_free),
			R(bad_pages), R(chunks_live), R(chunks_alloc),
			R(chunks_free), R(bad_header), R(pages_moving),
			R(ns_making), R(problems),
		};
#undef R
		size_t n = sizeof(row) / sizeof(row[0]);

		if (o->format == F_JSON) {
			printf("{\n  \"arena\": ");
			put_quoted(stdout, o->arena);
			printf(",\n  \"consistent\": %s",
			       r.problems ? "false" : "true");
			for (size_t i = 0; i < n; i++)
				printf(",\n  \"%s\": %" PRIu64, row[i].name,
				       row[i].v);
			printf(",\n  \"first_problem\": ");
			put_quoted(stdout, r.first_problem);
			printf("\n}\n");
		} else {
			printf("arena %s (%s): %s\n", shown(o->arena),
			       arena_kind(o),
			       r.problems ? "PROBLEMS FOUND" : "consistent");
			for (size_t i = 0; i < n; i++)
				printf("  %-14s %" PRIu64 "\n", row[i].name,
				       row[i].v);
			if (r.problems)
				printf("  first problem: %s\n",
				       r.first_problem);
			if (r.odd_versions)
				printf("  (odd versions: writes in progress "
				       "while checking, not a problem)\n");
			if (r.pages_moving)
				printf("  (pages moving: a page move was in "
				       "progress through every tally; page "
				       "counts not judged, not a problem)\n");
			if (r.ns_making)
				printf("  (namespace being added through "
				       "every walk; namespace count not "
				       "judged, not a problem)\n");
		}
	}
	return r.problems ? X_NOTFOUND : X_SUCCESS;
}

/* ---- main -------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct opts o;
	uint32_t extra;
	int rc;

	/* Names are written as UTF-8 whatever the locale: their widths
	 * (wcwidth()) are UTF-8's, from the user's locale if it is UTF-8,
	 * else C.UTF-8 (one column per character if neither exists). */
	if (setlocale(LC_CTYPE, "") == NULL ||
	    strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
		setlocale(LC_CTYPE, "C.UTF-8");
	memset(&o, 0, sizeof(o));
	rc = parse_args(&o, argc, argv);
	if (rc >= 0)
		return rc;
	/* `mlcctl help [CMD]`, `mlcctl --help`, `mlcctl CMD --help` */
	if (o.npos >= 1 && strcmp(o.pos[0], "help") == 0) {
		const struct command *c = o.npos >= 2 ?
			find_command(o.pos[1]) : NULL;

		if (o.npos >= 2 && c == NULL)
			return usage_error(NULL, "no command '%s'",
				   shown(o.pos[1]));
		if (c != NULL)
			help_command(stdout, c);
		else
			help_tool(stdout);
		return X_SUCCESS;
	}
	if (o.given & O_HELP) {
		const struct command *c = NULL;

		if (o.npos >= 2)
			c = find_command(o.pos[1]);
		if (c == NULL && o.npos >= 1)
			c = find_command(o.pos[0]);
		/* `ARENA nosuchcmd --help` is a usage error, as without
		 * --help: the tool's help and exit 0 said nothing of it */
		if (c == NULL && o.npos >= 2)
			return usage_error(NULL, "no command '%s'",
					   shown(o.pos[1]));
		if (c != NULL)
			help_command(stdout, c);
		else
			help_tool(stdout);
		return X_SUCCESS;
	}
	if (o.npos == 0) {
		usage_line(stderr);
		fprintf(stderr, "Try '%s --help'.\n", prog);
		return X_ERR;
	}
	if (o.npos == 1) {
		if (find_command(o.pos[0]) != NULL)
			return usage_error(find_command(o.pos[0]),
					   "ARENA missing before '%s'",
					   shown(o.pos[0]));
		return usage_error(NULL, "no command after '%s'",
				   shown(o.pos[0]));
	}
	o.arena = o.pos[0];
	o.cmd = find_command(o.pos[1]);
	if (o.cmd == NULL)
		return usage_error(NULL, "no command '%s'",
				   shown(o.pos[1]));
	if (o.npos - 2 < o.cmd->min_args || o.npos - 2 > o.cmd->max_args)
		return usage_error(o.cmd, "%s: wrong number of arguments",
				   o.cmd->name);
	extra = o.given & ~(uint32_t)O_GLOBAL & ~o.cmd->allowed;
	if (extra != 0) {
		for (size_t k = 0; k < sizeof(long_opts) / sizeof(long_opts[0]);
		     k++)
			if (extra & long_opts[k].bit)
				return usage_error(o.cmd, "--%s does not apply "
						   "to this command",
						   long_opts[k].name);
	}
	/* --json is --format json; prometheus is for stats only. */
	if (o.given & O_JSON) {
		if ((o.given & O_FORMAT) && o.format != F_JSON)
			return usage_error(o.cmd, "--json and another --format");
		o.format = F_JSON;
	}
	if (o.format == F_PROM && o.cmd->run != cmd_stats)
		return usage_error(o.cmd, "%s: formats are table and json",
				   o.cmd->name);
	rc = o.cmd->run(&o);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		err("writing to stdout: %s", strerror(errno));
		return X_ERR;
	}
	return rc;
}
