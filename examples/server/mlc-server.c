/*
 * mlc-server: a small pre-forked HTTP/1.1 server with mlc in front of a
 * SQLite database, the shape of many C servers (one master, N workers that
 * share a listening socket, an event loop per worker).
 *
 *   mlc-server --db items.db [--port 8080] [--workers 4] [--arena NAME]
 *
 * The master creates the arena (or attaches it, if it exists: a start that
 * fails then leaves it as it was), opens the namespace once (a full table
 * of them is one error, exit 1), binds 127.0.0.1:PORT, forks the workers
 * (respawning one that dies, after a back-off if it died soon after its
 * start: struct slot) and, on SIGTERM, SIGINT or SIGHUP, stops them, then
 * unlinks the arena unless another process still maps it (another server
 * on the same arena: the last one to stop removes it).  Each worker opens
 * its own cache handle, accepts on the shared socket and serves, with
 * keep-alive and pipelining:
 *
 *   GET    /item?key=K          the value (200) or 404, from mlc; the loader
 *                               runs the SQL on the worker's own SQLite
 *                               connection (no row: a negative entry; a
 *                               SQLite error: 502)
 *   POST   /admin/set?key=K     body = value: mlc_set
 *   DELETE /admin/item?key=K    mlc_delete
 *   POST   /admin/purge         mlc_purge
 *   GET    /admin/stats         JSON: this worker's handle, the namespace
 *                               (all processes), the arena
 *
 * Requests are read as RFC 9112 says a server may: CR LF line ends only,
 * no whitespace before a header's colon, no folded lines, one
 * Content-Length (digits), no chunked bodies; else a 400 (501 for
 * chunked), the connection closed.  Expect: 100-continue gets its 100.
 * A header section is at most 16 KiB (431), a body 8 MiB (413), refused
 * before more is read.
 *
 * A connection that reads or writes nothing for --idle-timeout seconds
 * (60) is closed.  A worker out of descriptors stops accepting until one
 * of its connections closes, or for a second.
 *
 * Responses carry X-Cache-Level (1, 2, 3) and X-Worker (pid).  The loader
 * blocks the worker's event loop while SQLite reads (a local file), and a
 * worker waiting for another's load of the same key sleeps in mlc_get();
 * the other workers go on serving.
 *
 * The SQL gets the key as parameter 1 and returns the value in column 0.
 * The master opens the database and compiles the SQL once before it makes
 * anything: one that fails is an error (exit 2), not a 502 on every GET.
 * A SQL function sleep_ms(N) is registered on the connection so that tests
 * can make the backend slow for a chosen row.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mlc.h"
#include "utf8.h"

#define MAX_WORKERS 64
#define MAX_HEADER  (16 << 10)
#define MAX_BODY    (8 << 20)

struct config {
	const char *listen_addr;
	int         port;
	int         workers;
	const char *arena;
	uint64_t    arena_bytes;
	const char *ns;
	const char *db;
	const char *sql;
	int64_t     ttl_ms, neg_ttl_ms;
	uint32_t    lru_size;
	const char *port_file;
	int         idle_s;	/* close a connection idle this long (s);
				 * 0: never */
};

static struct config cfg = {
	.listen_addr = "127.0.0.1",
	.port = 8080,
	.workers = 4,
	.arena_bytes = 64 << 20,
	.ns = "items",
	.sql = "SELECT value FROM items WHERE key = ?",
	.idle_s = 60,
};

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "mlc-server: %s: %s\n", what,
		err < 0 ? mlc_strerror(err) : strerror(err));
	exit(1);
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Buffers                                                             */

struct buf {
	char  *p;
	size_t len, cap;
};

static int
buf_reserve(struct buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char  *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* An empty buffer grown past this is given back: a connection kept open
 * would otherwise hold what its largest request or answer took (8 MiB
 * bodies: 16 MiB each, idle). */
#define BUF_KEEP (64 << 10)

static void
buf_trim(struct buf *b)
{
	if (b->len == 0 && b->cap > BUF_KEEP) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static int
buf_add(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) != 0)
		return -ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static int __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int     n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return 0;
		}
		if (buf_reserve(b, (size_t)n + 1) != 0)
			return -ENOMEM;
	}
}

/* ------------------------------------------------------------------ */
/* The loader: SQLite, one connection per worker, opened on first use  */

struct backend {
	sqlite3      *db;
	sqlite3_stmt *stmt;
};

static void
sql_sleep_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	int ms = sqlite3_value_int(argv[0]);
	struct timespec d;

	(void)argc;
	if (ms > 60000)
		ms = 60000;
	if (ms > 0) {
		d.tv_sec = ms / 1000;
		d.tv_nsec = (long)(ms % 1000) * 1000000;
		while (nanosleep(&d, &d) != 0 && errno == EINTR)
			;
	}
	sqlite3_result_int(ctx, 0);
}

static void
backend_close(struct backend *be)
{
	sqlite3_finalize(be->stmt);
	sqlite3_close(be->db);
	be->stmt = NULL;
	be->db = NULL;
}

static int
backend_open(struct backend *be, struct mlc_load *out)
{
	int rc = sqlite3_open_v2(cfg.db, &be->db, SQLITE_OPEN_READONLY, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(be->db, 2000);
		rc = sqlite3_create_function(be->db, "sleep_ms", 1,
					     SQLITE_UTF8, NULL, sql_sleep_ms,
					     NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(be->db, cfg.sql, -1,
					SQLITE_PREPARE_PERSISTENT, &be->stmt,
					NULL);
	if (rc != SQLITE_OK) {
		snprintf(out->errmsg, sizeof(out->errmsg), "sqlite %s: %s",
			 cfg.db, be->db ? sqlite3_errmsg(be->db)
					: sqlite3_errstr(rc));
		backend_close(be);
		return -EIO;
	}
	return 0;
}

/* Whether --db opens and --sql compiles with a parameter for the key, as
 * each worker will open them: said once, exit 2, before anything is made
 * (every GET answered 502 before). */
static void
backend_check(void)
{
	struct mlc_load out = { 0 };
	struct backend be = { 0 };

	if (backend_open(&be, &out) != 0) {
		fprintf(stderr, "mlc-server: --db or --sql: %s\n", out.errmsg);
		exit(2);
	}
	if (sqlite3_bind_parameter_count(be.stmt) < 1 ||
	    sqlite3_column_count(be.stmt) < 1) {
		fprintf(stderr, "mlc-server: --sql \"%s\" takes no key (?1) or "
			"returns no column\n", cfg.sql);
		backend_close(&be);
		exit(2);
	}
	backend_close(&be);
}

/* A row is the value, no row is "not found" (cached as a negative entry),
 * an error is a loader error. */
static int
sqlite_loader(void *arg, const void *key, size_t key_len,
	      struct mlc_load *out)
{
	struct backend *be = arg;
	void *copy;
	int rc, n;

	if (be->stmt == NULL && (rc = backend_open(be, out)) != 0)
		return rc;
	rc = sqlite3_bind_text(be->stmt, 1, key, (int)key_len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(be->stmt);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_bytes(be->stmt, 0);
		copy = malloc(n > 0 ? (size_t)n : 1);
		if (copy == NULL) {
			sqlite3_reset(be->stmt);
			snprintf(out->errmsg, sizeof(out->errmsg),
				 "out of memory");
			return -ENOMEM;
		}
		if (n > 0)
			memcpy(copy, sqlite3_column_blob(be->stmt, 0),
			       (size_t)n);
		sqlite3_reset(be->stmt);
		out->data = copy;
		out->len = (size_t)n;
		out->release = free;
		return MLC_LOAD_VALUE;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_reset(be->stmt);
		return MLC_LOAD_NOTFOUND;
	}
	snprintf(out->errmsg, sizeof(out->errmsg), "sqlite %s: %s", cfg.db,
		 sqlite3_errmsg(be->db));
	backend_close(be);	/* start over next time */
	return -EIO;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */

struct conn {
	struct conn *prev, *next;	/* the worker's connections */
	double     active;	/* mono_s() of the last byte read or
				 * written */
	int        fd;
	struct buf in, out;
	size_t     out_off;
	int        closing;	/* close once out is written */
	int        eof;		/* the client shut its side: serve what came,
				 * write, close */
	int        want_out;	/* registered for EPOLLOUT */
	bool       continued;	/* "100 Continue" queued for the request at
				 * the head of in */
};

struct request {
	const char *method;
	size_t      method_len;
	const char *path, *query;
	size_t      path_len, query_len;
	const char *body;
	size_t      body_len;
	int         keep_alive;
	int         http10;	/* keep_alive then is "Connection: keep-alive" */
	int         head;
	int         expect_100;	/* Expect: 100-continue, in HTTP/1.1 */
};

struct worker {
	struct mlc_arena *arena;
	struct mlc_cache *cache;
	struct backend    be;
	int               epfd, lfd;
	long              pid;
	struct conn      *conns;	/* open connections, for idle_sweep() */
	bool              accept_off;	/* lfd out of epoll: out of fds */
	double            accept_at;	/* when to try accepting again */
	double            swept;	/* mono_s() of the last idle_sweep() */
};

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Unknown";
	}
}

/* The methods a path takes, for the Allow header a 405 must carry (RFC
 * 9110, 15.5.6); NULL for a path there is none. */
static const char *
allowed(const struct request *rq);

static int
respond(struct worker *w, struct conn *c, const struct request *rq,
	int status, int level, const char *ctype, const void *body,
	size_t len)
{
	int rc = buf_printf(&c->out, "HTTP/1.1 %d %s\r\n"
			    "Content-Type: %s\r\nContent-Length: %zu\r\n"
			    "X-Worker: %ld\r\n", status, reason(status),
			    ctype, len, w->pid);

	if (rc == 0 && status == 405 && allowed(rq) != NULL)
		rc = buf_printf(&c->out, "Allow: %s\r\n", allowed(rq));
	if (rc == 0 && level)
		rc = buf_printf(&c->out, "X-Cache-Level: %d\r\n", level);
	if (rc == 0 && !rq->keep_alive)
		rc = buf_printf(&c->out, "Connection: close\r\n");
	else if (rc == 0 && rq->http10)	/* else 1.0 closes */
		rc = buf_printf(&c->out, "Connection: keep-alive\r\n");
	if (rc == 0)
		rc = buf_add(&c->out, "\r\n", 2);
	if (rc == 0 && !rq->head && len)
		rc = buf_add(&c->out, body, len);
	if (!rq->keep_alive)
		c->closing = 1;
	return rc;
}

static int
respond_text(struct worker *w, struct conn *c, const struct request *rq,
	     int status, const char *text)
{
	return respond(w, c, rq, status, 0, "text/plain", text, strlen(text));
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The decoded value of query argument @name into @out (cap bytes). */
static int
query_arg(const struct request *rq, const char *name, char *out, size_t cap,
	  size_t *lenp)
{
	const char *q = rq->query, *end = rq->query + rq->query_len;
	size_t nlen = strlen(name);

	while (q && q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - q) > nlen && memcmp(q, name, nlen) == 0 &&
		    q[nlen] == '=') {
			size_t n = 0;

			for (q += nlen + 1; q < stop; q++) {
				int ch = (unsigned char)*q;

				if (ch == '%' && stop - q >= 3 &&
				    hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
					ch = hexval(q[1]) * 16 + hexval(q[2]);
					q += 2;
				} else if (ch == '+') {
					ch = ' ';
				}
				if (n == cap)
					return -E2BIG;
				out[n++] = (char)ch;
			}
			*lenp = n;
			return n ? 0 : -ENOENT;
		}
		q = amp ? amp + 1 : NULL;
	}
	return -ENOENT;
}

static int
is(const struct request *rq, const char *method, const char *path)
{
	return rq->method_len == strlen(method) &&
	       memcmp(rq->method, method, rq->method_len) == 0 &&
	       rq->path_len == strlen(path) &&
	       memcmp(rq->path, path, rq->path_len) == 0;
}

static int
path_is(const struct request *rq, const char *path)
{
	return rq->path_len == strlen(path) &&
	       memcmp(rq->path, path, rq->path_len) == 0;
}

#define STATS_FIELDS(X)                                                    \
	X(hits_l1) X(hits_l2) X(hits_l3) X(misses) X(negative_hits)        \
	X(stale_served) X(loads) X(loader_errors) X(codec_errors)          \
	X(l1_evictions) X(l2_write_failures) X(sets) X(deletes) X(purges)  \
	X(lock_waits) X(lock_wait_ms) X(lock_timeouts) X(lock_steals)      \
	X(duplicate_loads) X(fenced_writes) X(err_ttl_hits)                \
	X(log_published) X(log_applied) X(log_dropped) X(log_overruns)     \
	X(log_stuck) X(forks)

#define ARENA_FIELDS(X)                                                    \
	X(bytes) X(max_items) X(items) X(neg_items) X(page_size) X(pages)  \
	X(pages_free) X(value_max) X(sets) X(evictions)                    \
	X(expired_reclaimed) X(index_evictions) X(page_moves)              \
	X(orphans_reclaimed) X(repairs) X(write_failures) X(log_head)      \
	X(namespaces) X(format)

/* @p str as a JSON string, quotes included: '"', '\\' and control bytes
 * escaped, a byte that is not UTF-8 as U+FFFD (JSON text is UTF-8; names
 * are any bytes). */
static void
json_str(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t left = strlen(str), n;

	buf_printf(b, "\"");
	while (left > 0) {
		if (*s == '"' || *s == '\\') {
			buf_printf(b, "\\%c", *s);
			n = 1;
		} else if (*s < 0x20 || *s == 0x7f) {
			buf_printf(b, "\\u%04x", *s);
			n = 1;
		} else if ((n = utf8_len(s, left)) == 0) {
			buf_printf(b, "\\ufffd");
			n = 1;
		} else {
			buf_printf(b, "%.*s", (int)n, (const char *)s);
		}
		s += n;
		left -= n;
	}
	buf_printf(b, "\"");
}

static void
json_stats(struct buf *b, const struct mlc_stats *s)
{
	const char *sep = "";

	buf_printf(b, "{");
#define X(f) buf_printf(b, "%s\"" #f "\":%llu", sep,                      \
			(unsigned long long)s->f), sep = ",";
	STATS_FIELDS(X)
#undef X
	buf_printf(b, "}");
}

static int
admin_stats(struct worker *w, struct conn *c, const struct request *rq)
{
	struct mlc_stats own = MLC_STATS_INIT, all = MLC_STATS_INIT;
	struct mlc_arena_info ai = MLC_ARENA_INFO_INIT;
	struct buf b = { 0 };
	const char *sep = "";
	int rc;

	/* mlc_stats() first: it flushes this handle's counts into the sum */
	if (mlc_stats(w->cache, &own) != 0 ||
	    mlc_namespace_stats(w->arena, cfg.ns, &all) != 0 ||
	    mlc_arena_info(w->arena, &ai) != 0)
		return respond_text(w, c, rq, 500, "mlc stats failed\n");
	buf_printf(&b, "{\"server\":\"mlc-server\",\"pid\":%ld,\"mlc\":\"%s\","
		   "\"arena\":", w->pid, mlc_version_string());
	json_str(&b, cfg.arena);
	buf_printf(&b, ",\"namespace\":");
	json_str(&b, cfg.ns);
	buf_printf(&b, ",\"worker\":");
	json_stats(&b, &own);
	buf_printf(&b, ",\"namespace_total\":");
	json_stats(&b, &all);
	buf_printf(&b, ",\"arena_info\":{");
#define X(f) buf_printf(&b, "%s\"" #f "\":%llu", sep,                     \
			(unsigned long long)ai.f), sep = ",";
	ARENA_FIELDS(X)
#undef X
	buf_printf(&b, "}}\n");
	rc = respond(w, c, rq, 200, 0, "application/json", b.p, b.len);
	free(b.p);
	return rc;
}

static const char *
allowed(const struct request *rq)
{
	static const struct { const char *path, *methods; } paths[] = {
		{ "/item", "GET, HEAD" }, { "/admin/set", "POST, PUT" },
		{ "/admin/item", "DELETE" }, { "/admin/purge", "POST" },
		{ "/admin/stats", "GET, HEAD" },
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (path_is(rq, paths[i].path))
			return paths[i].methods;
	return NULL;
}

static int
handle(struct worker *w, struct conn *c, const struct request *rq)
{
	static char key[MLC_KEY_MAX];
	struct mlc_value v = { 0 };
	size_t klen = 0;
	int rc, has_key;

	has_key = query_arg(rq, "key", key, sizeof(key), &klen) == 0;

	if (path_is(rq, "/item")) {
		if (!is(rq, "GET", "/item") && !is(rq, "HEAD", "/item"))
			return respond_text(w, c, rq, 405,
					    "GET or HEAD only\n");
		if (!has_key)
			return respond_text(w, c, rq, 400, "need ?key=K\n");
		rc = mlc_get(w->cache, key, klen, sqlite_loader, &w->be, &v);
		if (rc == 0) {
			if (v.flags & MLC_NEGATIVE)
				rc = respond(w, c, rq, 404, (int)v.level,
					     "text/plain", "not found\n", 10);
			else
				rc = respond(w, c, rq, 200, (int)v.level,
					     "text/plain", v.data, v.len);
			mlc_value_release(&v);
			return rc;
		}
		if (rc == MLC_ELOADER) {
			char msg[256];

			snprintf(msg, sizeof(msg), "loader: %s\n",
				 mlc_last_error(w->cache));
			return respond(w, c, rq, 502, 3, "text/plain", msg,
				       strlen(msg));
		}
		if (rc == -ETIMEDOUT)
			return respond_text(w, c, rq, 504, "timed out waiting "
					    "for another load\n");
		return respond_text(w, c, rq, 500, mlc_strerror(rc));
	}

	if (path_is(rq, "/admin/set")) {
		if (!is(rq, "POST", "/admin/set") && !is(rq, "PUT", "/admin/set"))
			return respond_text(w, c, rq, 405,
					    "POST or PUT only\n");
		if (!has_key)
			return respond_text(w, c, rq, 400, "need ?key=K\n");
		rc = mlc_set(w->cache, key, klen, rq->body, rq->body_len, NULL);
		return rc ? respond_text(w, c, rq, rc == -E2BIG ? 413 : 500,
					 mlc_strerror(rc))
			  : respond_text(w, c, rq, 200, "set\n");
	}
	if (path_is(rq, "/admin/item")) {
		if (!is(rq, "DELETE", "/admin/item"))
			return respond_text(w, c, rq, 405, "DELETE only\n");
		if (!has_key)
			return respond_text(w, c, rq, 400, "need ?key=K\n");
		rc = mlc_delete(w->cache, key, klen);
		return rc ? respond_text(w, c, rq, 500, mlc_strerror(rc))
			  : respond_text(w, c, rq, 200, "deleted\n");
	}
	if (path_is(rq, "/admin/purge")) {
		if (!is(rq, "POST", "/admin/purge"))
			return respond_text(w, c, rq, 405, "POST only\n");
		rc = mlc_purge(w->cache);
		return rc ? respond_text(w, c, rq, 500, mlc_strerror(rc))
			  : respond_text(w, c, rq, 200, "purged\n");
	}
	if (path_is(rq, "/admin/stats")) {
		if (!is(rq, "GET", "/admin/stats") &&
		    !is(rq, "HEAD", "/admin/stats"))
			return respond_text(w, c, rq, 405,
					    "GET or HEAD only\n");
		return admin_stats(w, c, rq);
	}
	return respond_text(w, c, rq, 404, "no such path\n");
}

static int
header_is(const char *line, size_t len, const char *name, const char **val,
	  size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return 0;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*val = line;
	*vlen = len;
	return 1;
}

/*
 * The length of the header section at @p p (@p len bytes: through its
 * empty line), 0 if it has not all come, -431 if it passes MAX_HEADER, or
 * -400 at a line that ends in a bare LF or holds a bare CR.  Such lines
 * are refused as soon as they come (RFC 9112, 2.2 allows it): a proxy in
 * front may split them otherwise, and a request in bare LFs waited,
 * unanswered, until it passed MAX_HEADER.
 */
static long
head_len(const char *p, size_t len)
{
	size_t n = len < MAX_HEADER ? len : MAX_HEADER;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] != '\n')
			return -400;
		if (p[i] != '\n')
			continue;
		if (i == 0 || p[i - 1] != '\r')
			return -400;
		if (i >= 3 && p[i - 2] == '\n')	/* CR LF CR LF */
			return (long)i + 1;
	}
	return len >= MAX_HEADER ? -431 : 0;
}

/* The characters of a token (RFC 9110, 5.6.2), which a field name is. */
#define TCHARS "!#$%&'*+-.^_`|~0123456789" \
	       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* Whether the field line @p line (@p len bytes, without its CRLF) is a
 * token, a colon and a value.  Whitespace before the colon must be
 * refused (RFC 9112, 5.1), as must a line folded onto the one before
 * (5.2) and a line without a colon: header_is() does not see
 * "Content-Length : 5", which a proxy in front may take for the body's
 * length, and the rest of the body was served as a request of its own. */
static bool
field_line_ok(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t n = colon != NULL ? (size_t)(colon - line) : 0;

	/* strspn() stops at the colon at the latest: it is no tchar */
	return n > 0 && strspn(line, TCHARS) == n;
}

/* A client that asked "Expect: 100-continue" sends its body only after a
 * 100 (or a second or so later: curl waits 1 s), and RFC 9110 (10.1.1)
 * wants it sent at once: a final status, or else the 100.  It was never
 * sent, and curl's POSTs over 1 MiB waited 1 s each.  Queued once per
 * request; the next write sends it. */
static void
continue_body(struct conn *c, const struct request *rq)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (rq->expect_100 && !c->continued &&
	    buf_add(&c->out, msg, sizeof(msg) - 1) == 0)
		c->continued = true;
}

/*
 * Parse one request at @p off in c->in.  Returns the bytes it used (and
 * fills *rq), 0 if it is incomplete, or -status for a request that gets
 * an error and closes the connection.
 */
static long
parse(struct conn *c, size_t off, struct request *rq)
{
	char *p = c->in.p != NULL ? c->in.p + off : NULL;
	char *end, *line, *eol, *sp1, *sp2, *q;
	size_t len = c->in.len - off, hlen, clen = 0;
	int http10, has_clen = 0;
	long head = p != NULL ? head_len(p, len) : 0;

	if (head <= 0)
		return head;
	hlen = (size_t)head;
	end = p + hlen - 4;

	memset(rq, 0, sizeof(*rq));
	eol = memmem(p, hlen, "\r\n", 2);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || eol - sp2 < 9 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -400;
	http10 = sp2[8] == '0';
	rq->method = p;
	rq->method_len = (size_t)(sp1 - p);
	rq->path = sp1 + 1;
	q = memchr(rq->path, '?', (size_t)(sp2 - rq->path));
	rq->path_len = (size_t)((q ? q : sp2) - rq->path);
	if (q) {
		rq->query = q + 1;
		rq->query_len = (size_t)(sp2 - q - 1);
	}
	rq->keep_alive = !http10;
	rq->http10 = http10;
	rq->head = rq->method_len == 4 && memcmp(p, "HEAD", 4) == 0;

	for (line = eol + 2; line < end; line = eol + 2) {
		const char *val;
		size_t vlen, llen;

		eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		llen = (size_t)(eol - line);
		if (!field_line_ok(line, llen))
			return -400;
		if (header_is(line, llen, "Content-Length", &val, &vlen)) {
			char num[24];
			size_t n;
			char *e;

			/* Digits only, and one value: two that differ
			 * leave the body's end unknown (RFC 9112, 6.3),
			 * and a proxy in front may take the other one. */
			if (vlen == 0 || vlen >= sizeof(num) ||
			    strspn(val, "0123456789") < vlen)
				return -400;
			memcpy(num, val, vlen);
			num[vlen] = '\0';
			errno = 0;
			n = strtoull(num, &e, 10);
			if (*e || errno || (has_clen && n != clen))
				return -400;
			clen = n;
			has_clen = 1;
		} else if (header_is(line, llen, "Transfer-Encoding", &val,
				     &vlen)) {
			return -501;	/* no chunked request bodies */
		} else if (header_is(line, llen, "Expect", &val, &vlen)) {
			rq->expect_100 = !http10 && vlen == 12 &&
				strncasecmp(val, "100-continue", 12) == 0;
		} else if (header_is(line, llen, "Connection", &val, &vlen)) {
			if (vlen == 5 && strncasecmp(val, "close", 5) == 0)
				rq->keep_alive = 0;
			else if (vlen == 10 &&
				 strncasecmp(val, "keep-alive", 10) == 0)
				rq->keep_alive = 1;
		}
	}
	if (clen > MAX_BODY)
		return -413;
	if (len < hlen + clen) {
		continue_body(c, rq);
		return 0;
	}
	rq->body = p + hlen;
	rq->body_len = clen;
	return (long)(hlen + clen);
}

static void accept_on(struct worker *w);

static void
conn_close(struct worker *w, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (w->accept_off)	/* a descriptor is free again */
		accept_on(w);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in.p);
	free(c->out.p);
	free(c);
}

/* Write what is pending; 0 done, 1 would block, -1 dead. */
static int
conn_flush(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->out_off,
				 c->out.len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->active = mono_s();
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return 1;
		} else {
			return -1;
		}
	}
	c->out.len = 0;
	c->out_off = 0;
	buf_trim(&c->out);
	return 0;
}

static void
conn_want_out(struct worker *w, struct conn *c, int on)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->want_out == on && !c->eof)
		return;
	/* after the end, EPOLLIN would be ready, in a loop, until closed */
	ev.events = (c->eof ? 0 : EPOLLIN) | (on ? EPOLLOUT : 0);
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = on;
}

/* The text of parse()'s refusal @p status: every one said "bad request",
 * the 413 of a body over the limit and the 431 of a header too long too,
 * which left the client to guess what to change. */
static const char *
refusal(int status)
{
	switch (status) {
	case 413: return "request body over 8 MiB\n";
	case 431: return "request header section over 16 KiB\n";
	case 501: return "no Transfer-Encoding (chunked) request bodies\n";
	default:  return "bad request\n";
	}
}

/* Answers queued before a write: past them, the requests left in c->in
 * wait until the answers are out. */
#define OUT_HIGH (256 << 10)

/* Serve every complete request in c->in, then write.  The requests
 * served are dropped from c->in once per round, not one by one: a
 * memmove() of what followed each took time in the square of the input
 * (8 MiB of small pipelined requests: minutes of CPU). */
static void
conn_serve(struct worker *w, struct conn *c)
{
	struct request rq;
	size_t off;
	bool held;
	long used;
	int rc;

	do {
		off = 0;
		while (!(held = c->out.len >= OUT_HIGH) && !c->closing &&
		       (used = parse(c, off, &rq)) != 0) {
			if (used < 0) {
				/* parse() may have stopped before it
				 * filled rq: none of it is kept */
				memset(&rq, 0, sizeof(rq));
				respond_text(w, c, &rq, (int)-used,
					     refusal((int)-used));
				break;
			}
			if (handle(w, c, &rq) != 0) {
				conn_close(w, c);
				return;
			}
			off += (size_t)used;
			c->continued = false;
		}
		if (off > 0) {
			memmove(c->in.p, c->in.p + off, c->in.len - off);
			c->in.len -= off;
		}
		if (c->eof && !held)	/* all that came is answered */
			c->closing = 1;
		buf_trim(&c->in);
		rc = conn_flush(c);
		if (rc < 0 || (rc == 0 && c->closing)) {
			conn_close(w, c);
			return;
		}
		/* All written at once: the requests held back by OUT_HIGH
		 * are served now, as no event will come for them (the
		 * client sent them all and waits). */
	} while (rc == 0 && held);
	conn_want_out(w, c, rc == 1);
}

/* Whether the first request in c->in can be served or refused with what
 * has come: reading on would only buffer more before it is checked (a
 * header section that never ends was read up to 8 MiB before its 431,
 * a body over MAX_BODY until the connection was dropped without its 413).
 * While answers are held back (OUT_HIGH) nothing is parsed, and reading
 * goes on as before, up to conn_read()'s bound: stopping would leave
 * EPOLLIN ready, in a loop.  The bytes left unread wake the (level
 * triggered) loop again once these are served. */
static bool
first_request_decided(struct conn *c)
{
	struct request rq;

	return c->out.len < OUT_HIGH && parse(c, 0, &rq) != 0;
}

static void
conn_read(struct worker *w, struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (first_request_decided(c))
			break;
		if (c->in.len > MAX_HEADER + MAX_BODY + 4096 ||
		    buf_reserve(&c->in, 16384) != 0) {
			conn_close(w, c);
			return;
		}
		n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->active = mono_s();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0 && (c->in.len > 0 || c->out_off < c->out.len)) {
			/* a half-close after its requests: they are
			 * answered (they were dropped), and an answer still
			 * being written is finished (it was cut short) */
			c->eof = 1;
			break;
		}
		conn_close(w, c);	/* EOF or error */
		return;
	}
	conn_serve(w, c);
}

/* Out of descriptors (EMFILE and the like), accept4() fails and leaves
 * the connection queued: the listening socket stays ready and a
 * level-triggered loop spun on it, at full CPU, until one was freed.  It
 * leaves the epoll set until a connection closes or a second has passed. */
static void
accept_off(struct worker *w)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->lfd, NULL);
	w->accept_off = true;
	w->accept_at = mono_s() + 1.0;
}

static void
accept_on(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &ev) == 0)
		w->accept_off = false;
	else
		w->accept_at = mono_s() + 1.0;
}

static void
do_accept(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c;
	int fd, one = 1;

	/* one per wake-up: the workers that woke too share the rest */
	fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			accept_off(w);
		return;		/* else another worker took it */
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->active = mono_s();
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
}

/* Whether @p c can go on now: input has come, or its pending output can
 * be written.  A worker that was busy (a slow loader) for cfg.idle_s
 * left such a connection looking idle. */
static bool
conn_ready(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (c->out_off < c->out.len)
		p.events |= POLLOUT;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLOUT));
}

/* Closes the connections that read or wrote nothing for cfg.idle_s: one
 * left open by a client that went away (or never sent a request) held its
 * descriptor for good, and enough of them kept every new client out. */
static void
idle_sweep(struct worker *w)
{
	double now = mono_s();
	struct conn *c, *next;

	if (cfg.idle_s == 0 || now - w->swept < 1.0)
		return;
	w->swept = now;
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (now - c->active >= cfg.idle_s && !conn_ready(c))
			conn_close(w, c);
	}
}

/* The epoll_pwait() timeout: a second while idle_sweep() or accept_on()
 * has work to come, else none. */
static int
wait_ms(const struct worker *w)
{
	return w->accept_off || (cfg.idle_s && w->conns != NULL) ? 1000 : -1;
}

static int
worker_main(struct mlc_arena *arena, int lfd)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct epoll_event evs[64];
	struct sigaction sa = { .sa_handler = on_stop };
	struct worker w = { .arena = arena, .lfd = lfd, .pid = (long)getpid() };
	sigset_t waitmask;
	int rc;

	/* SIGTERM stays blocked except inside epoll_pwait: no lost wake-up */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigprocmask(SIG_SETMASK, NULL, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	co.ttl_ms = cfg.ttl_ms;
	co.neg_ttl_ms = cfg.neg_ttl_ms;
	co.lru_size = cfg.lru_size;
	rc = mlc_cache_open(&w.cache, arena, cfg.ns, &co);
	if (rc != 0)
		die("mlc_cache_open", rc);
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.epfd < 0 || epoll_ctl(w.epfd, EPOLL_CTL_ADD, lfd, &ev) != 0)
		die("epoll", errno);

	while (!stopping) {
		int n = epoll_pwait(w.epfd, evs, 64, wait_ms(&w), &waitmask);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_pwait", errno);
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL) {
				do_accept(&w);
			} else if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
				   !(evs[i].events & EPOLLIN)) {
				conn_close(&w, c);
			} else if (evs[i].events & EPOLLOUT) {
				rc = conn_flush(c);
				if (rc < 0 || (rc == 0 && c->closing))
					conn_close(&w, c);
				else if (rc == 0)
					conn_serve(&w, c);	/* more queued */
			} else {
				conn_read(&w, c);
			}
		}
		if (w.accept_off && mono_s() >= w.accept_at)
			accept_on(&w);
		idle_sweep(&w);
	}
	/* open connections die with the process; counters go to the arena */
	mlc_cache_close(w.cache);
	backend_close(&w.be);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Master                                                              */

static pid_t
spawn(struct mlc_arena *arena, int lfd)
{
	pid_t pid;

	pid_t master = getpid();

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* a worker outlives no master (SIGKILLed, say) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != master)
			_exit(0);
		_exit(worker_main(arena, lfd));
	}
	return pid;
}

/* A worker slot of the master.  A worker that dies within QUICK_DEATH_S
 * of its start (a bad configuration, a resource it cannot get, a crash on
 * its first request) is started again after a back-off that doubles with
 * each such death in a row, from BACKOFF_MIN_MS up to BACKOFF_MAX_MS: a
 * respawn at once would fork as fast as the machine can (review T saw
 * 1,181 respawns in 3 s).  A worker that lived longer starts again at
 * once.  A fork that fails is a quick death too. */
#define QUICK_DEATH_S   1.0
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  10000

struct slot {
	pid_t    pid;		/* 0: none running (starts at @due) */
	double   started;	/* CLOCK_MONOTONIC s */
	double   due;		/* when a backed-off start is due */
	unsigned quick;		/* quick deaths in a row */
};

/* Starts slot @p s's worker now, or (fork failed) schedules a retry. */
static void
slot_start(struct slot *s, struct mlc_arena *arena, int lfd)
{
	pid_t pid = spawn(arena, lfd);

	s->started = mono_s();
	if (pid > 0) {
		s->pid = pid;
		return;
	}
	fprintf(stderr, "mlc-server: fork: %s\n", strerror(errno));
	s->pid = 0;
	s->quick++;
	s->due = s->started + BACKOFF_MIN_MS / 1e3;
}

/* Slot @p s's worker exited with wait status @p st: start another now, or
 * later if it died soon after its start. */
static void
slot_died(struct slot *s, int st, struct mlc_arena *arena, int lfd)
{
	double now = mono_s(), lived = now - s->started;
	unsigned ms;

	s->quick = lived < QUICK_DEATH_S ? s->quick + 1 : 0;
	if (s->quick == 0) {
		fprintf(stderr, "mlc-server: worker %ld exited (status %d) "
			"after %.1f s, respawning\n", (long)s->pid, st, lived);
		slot_start(s, arena, lfd);
		return;
	}
	ms = s->quick > 7 ? BACKOFF_MAX_MS
			  : BACKOFF_MIN_MS << (s->quick - 1);
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	fprintf(stderr, "mlc-server: worker %ld exited (status %d) %.2f s "
		"after its start (%u such in a row), respawning in %u ms\n",
		(long)s->pid, st, lived, s->quick, ms);
	s->pid = 0;
	s->due = now + ms / 1e3;
}

/* Respawns workers that die, until SIGTERM, SIGINT or SIGHUP (@p mask
 * holds them and SIGCHLD, blocked). */
static void
supervise(struct slot *slots, int n, const sigset_t *mask,
	  struct mlc_arena *arena, int lfd)
{
	for (;;) {
		double now = mono_s(), next = 0;
		struct timespec wait = { 1, 0 };
		pid_t pid;
		int sig, st;

		for (int i = 0; i < n; i++) {
			if (slots[i].pid != 0)
				continue;
			if (slots[i].due <= now)
				slot_start(&slots[i], arena, lfd);
			if (slots[i].pid == 0 &&
			    (next == 0 || slots[i].due < next))
				next = slots[i].due;
		}
		if (next > 0) {
			double d = next > now ? next - now : 0;

			wait.tv_sec = (time_t)d;
			wait.tv_nsec = (long)((d - (double)wait.tv_sec) * 1e9);
		}
		sig = next > 0 ? sigtimedwait(mask, NULL, &wait)
			       : sigwaitinfo(mask, NULL);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			return;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (int i = 0; i < n; i++)
				if (slots[i].pid == pid)
					slot_died(&slots[i], st, arena, lfd);
	}
}

/* --arena-bytes: a whole number of bytes, or of K, M or G (binary), or
 * exit 2.  Digits only (strtoull took "-1" for 2^64 - 1), and a size
 * past 2^64 is refused, not wrapped by its suffix's shift (17179869185g
 * was 1 GiB). */
static uint64_t
parse_bytes(const char *s)
{
	unsigned shift = 0;
	char *e = (char *)s;
	uint64_t n;

	errno = 0;
	n = *s >= '0' && *s <= '9' ? strtoull(s, &e, 10) : 0;
	if (n != 0 && errno == 0) {
		switch (*e) {
		case 'k': case 'K': shift = 10; e++; break;
		case 'm': case 'M': shift = 20; e++; break;
		case 'g': case 'G': shift = 30; e++; break;
		default: break;
		}
	}
	if (n == 0 || errno != 0 || *e != '\0' || n > UINT64_MAX >> shift) {
		fprintf(stderr, "mlc-server: --arena-bytes wants a whole number "
			"of bytes, or of K, M or G, not \"%s\"\n", s);
		exit(2);
	}
	return n << shift;
}

/* Option @p opt's whole decimal number from @p lo to @p hi, or exit 2
 * saying which option was wrong (atoi took "notaport" for 0: the
 * default port, or a port the kernel picks). */
static long long
parse_num(const char *opt, const char *s, long long lo, long long hi)
{
	char *e;
	long long n;

	errno = 0;
	n = strtoll(s, &e, 10);
	if (e == s || *e || errno || n < lo || n > hi) {
		fprintf(stderr, "mlc-server: --%s wants a whole number from %lld "
			"to %lld, not \"%s\"\n", opt, lo, hi, s);
		exit(2);
	}
	return n;
}

/* --port-file while this start has made it and not yet written it: a
 * start that fails removes it (at exit), as it removes an arena it made;
 * one that existed is left as it was. */
static const char *port_file_made;

static void
port_file_unmade(void)
{
	if (port_file_made != NULL)
		unlink(port_file_made);
}

/* Open --port-file at the start, to refuse one that cannot be (exit 2),
 * without emptying one that exists: it is written once listening. */
static FILE *
port_file_open(const char *path)
{
	FILE *f = NULL;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd >= 0) {
		port_file_made = path;
		atexit(port_file_unmade);
	} else if (errno == EEXIST) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd >= 0 && (f = fdopen(fd, "w")) == NULL)
		close(fd);
	if (f == NULL) {
		fprintf(stderr, "mlc-server: --port-file %s: %s\n", path,
			strerror(errno));
		exit(2);
	}
	return f;
}

/* Attach cfg.arena, or create it (*@p made: true) if it does not exist. */
static int
arena_open(struct mlc_arena **ap, bool *made)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	int rc;

	for (;;) {
		ao.flags = 0;
		rc = mlc_arena_open(ap, cfg.arena, &ao);
		*made = false;
		if (rc != -ENOENT)
			return rc;
		ao.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
		ao.bytes = cfg.arena_bytes;
		rc = mlc_arena_open(ap, cfg.arena, &ao);
		*made = true;
		if (rc != -EEXIST)	/* else made meanwhile: attach it */
			return rc;
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: mlc-server --db FILE [options]\n"
"  --db FILE          SQLite database (opened read-only by each worker;\n"
"                     one that cannot be opened is refused at the start)\n"
"  --sql SQL          key is ?1, value is column 0 (compiled at the start)\n"
"                     (default: SELECT value FROM items WHERE key = ?)\n"
"  --listen ADDR      default 127.0.0.1\n"
"  --port N           default 8080; 0 picks a free one\n"
"  --port-file FILE   write the port there once listening (one that\n"
"                     cannot be opened is refused at the start; one\n"
"                     made by a start that fails is removed)\n"
"  --workers N        default 4\n"
"  --arena NAME       shm arena, default mlc-server-PID; unlinked at exit\n"
"                     unless another process maps it\n"
"  --arena-bytes N    default 64m\n"
"  --namespace NS     default items\n"
"  --ttl MS, --neg-ttl MS, --lru N   cache options (0: mlc's defaults)\n"
"  --idle-timeout S   close a connection that reads or writes nothing\n"
"                     for S seconds (default 60; 0: never)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "sql", required_argument, NULL, 'q' },
		{ "listen", required_argument, NULL, 'L' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "workers", required_argument, NULL, 'w' },
		{ "arena", required_argument, NULL, 'a' },
		{ "arena-bytes", required_argument, NULL, 'b' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ "neg-ttl", required_argument, NULL, 'T' },
		{ "lru", required_argument, NULL, 'l' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mlc_cache_options co_probe = MLC_CACHE_OPTIONS_INIT;
	struct mlc_arena *arena;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct slot slots[MAX_WORKERS] = { { 0 } };
	struct mlc_cache *probe;
	char arena_name[64];
	FILE *port_file = NULL;
	sigset_t mask;
	int opt, lfd, one = 1, rc, alive;
	bool made;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': cfg.db = optarg; break;
		case 'q': cfg.sql = optarg; break;
		case 'L': cfg.listen_addr = optarg; break;
		case 'p':
			cfg.port = (int)parse_num("port", optarg, 0, 65535);
			break;
		case 'P': cfg.port_file = optarg; break;
		case 'w':
			cfg.workers = (int)parse_num("workers", optarg, 1,
						       MAX_WORKERS);
			break;
		case 'a': cfg.arena = optarg; break;
		case 'b': cfg.arena_bytes = parse_bytes(optarg); break;
		case 'n':	/* as mlc_cache_open() takes it */
			cfg.ns = optarg;
			if (strlen(optarg) == 0 ||
			    strlen(optarg) > MLC_NAME_MAX) {
				fprintf(stderr, "mlc-server: --namespace wants "
					"1 to %d bytes, not %zu\n",
					MLC_NAME_MAX, strlen(optarg));
				return 2;
			}
			break;
		case 't':
			cfg.ttl_ms = parse_num("ttl", optarg, MLC_TTL_NEVER,
					       INT64_MAX);
			break;
		case 'T':
			cfg.neg_ttl_ms = parse_num("neg-ttl", optarg,
						   MLC_TTL_NEVER, INT64_MAX);
			break;
		case 'l':	/* mlc_cache_open() refuses more than 2^28 */
			cfg.lru_size = (uint32_t)parse_num("lru", optarg, 0,
							   1 << 28);
			break;
		case 'i':
			cfg.idle_s = (int)parse_num("idle-timeout", optarg, 0,
						    86400);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (cfg.db == NULL || optind != argc || cfg.workers < 1 ||
	    cfg.workers > MAX_WORKERS || cfg.port < 0 || cfg.port > 65535) {
		usage(stderr);
		return 2;
	}
	backend_check();
	/* said before anything is made: it was left unwritten, unsaid */
	if (cfg.port_file != NULL)
		port_file = port_file_open(cfg.port_file);
	if (cfg.arena == NULL) {
		snprintf(arena_name, sizeof(arena_name), "mlc-server-%ld",
			 (long)getpid());
		cfg.arena = arena_name;
	}

	/* everything the workers share, made before they exist */
	rc = arena_open(&arena, &made);
	if (rc != 0)
		die("mlc_arena_open", rc);
	/* what would make every worker die at its start, said once: the
	 * namespace (a full table of them) and the handle's options */
	co_probe.ttl_ms = cfg.ttl_ms;
	co_probe.neg_ttl_ms = cfg.neg_ttl_ms;
	co_probe.lru_size = cfg.lru_size;
	rc = mlc_cache_open(&probe, arena, cfg.ns, &co_probe);
	if (rc != 0) {
		fprintf(stderr, "mlc-server: mlc_cache_open(\"%s\"): %s\n",
			cfg.ns, mlc_strerror(rc));
		goto fail;
	}
	mlc_cache_close(probe);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0) {		/* die() left the arena it made behind */
		fprintf(stderr, "mlc-server: socket: %s\n", strerror(errno));
		goto fail;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_port = htons((uint16_t)cfg.port);
	if (inet_pton(AF_INET, cfg.listen_addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "mlc-server: bad address %s\n",
			cfg.listen_addr);
		goto fail;
	}
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 1024) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) != 0) {
		fprintf(stderr, "mlc-server: listen on %s:%d: %s\n",
			cfg.listen_addr, cfg.port, strerror(errno));
		goto fail;
	}

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	/* the end of its terminal's session: it killed the master and left
	 * the arena in /dev/shm (review AG); now a stop as SIGTERM's */
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);	/* workers inherit it */

	/* the port, once listening; before the workers, which would
	 * inherit the file */
	if (port_file != NULL) {
		int wrc = ftruncate(fileno(port_file), 0);

		fprintf(port_file, "%d\n", ntohs(sin.sin_port));
		if (fclose(port_file) != 0 || wrc != 0) {
			fprintf(stderr, "mlc-server: --port-file %s: %s\n",
				cfg.port_file, strerror(errno));
			goto fail;
		}
		port_file_made = NULL;	/* written: it stays */
	}
	for (int i = 0; i < cfg.workers; i++)
		slot_start(&slots[i], arena, lfd);

	printf("mlc-server %s: %d workers on %s:%d, arena /dev/shm/%s, "
	       "db %s\n", mlc_version_string(), cfg.workers, cfg.listen_addr,
	       ntohs(sin.sin_port), cfg.arena, cfg.db);
	fflush(stdout);

	supervise(slots, cfg.workers, &mask, arena, lfd);

	/* stop: TERM every worker, wait up to 5 s, then KILL */
	alive = 0;
	for (int i = 0; i < cfg.workers; i++)
		if (slots[i].pid > 0) {
			kill(slots[i].pid, SIGTERM);
			alive++;
		}
	for (int tries = 0; alive > 0 && tries < 500; tries++) {
		struct timespec d = { 0, 10 * 1000000 };

		while (alive > 0 && waitpid(-1, NULL, WNOHANG) > 0)
			alive--;
		if (alive > 0)
			nanosleep(&d, NULL);
	}
	if (alive > 0) {
		for (int i = 0; i < cfg.workers; i++)
			if (slots[i].pid > 0)
				kill(slots[i].pid, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
	close(lfd);
	mlc_arena_close(arena);
	/* The last process that maps the arena removes its name: a second
	 * server on the same arena (another port) that stops first leaves
	 * it to the one still serving, whose cache the next server to start
	 * must share, not make anew beside it (review AD's note). */
	rc = mlc_arena_unlink(cfg.arena, MLC_ARENA_UNUSED);
	if (rc == 0)
		printf("mlc-server: stopped, arena unlinked\n");
	else if (rc == -EBUSY)
		printf("mlc-server: stopped, arena left to the other processes "
		       "that map it\n");
	else
		printf("mlc-server: stopped, arena not unlinked: %s\n",
		       mlc_strerror(rc));
	return 0;

fail:
	/* A start that fails removes only an arena it made: one that
	 * existed may be another server's, in use (a second server on its
	 * arena and port). */
	mlc_arena_close(arena);
	if (made)
		mlc_arena_unlink(cfg.arena, 0);
	return 1;
}
