/*
 * Redis over a unix socket, with hiredis: one GET or SET round trip per
 * operation.  The server is started for each case with persistence off
 * (--save '' --appendonly no) and no TCP listener (--port 0), and stopped
 * at the end of the case.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bench.h"

struct st {
	struct server srv;
	redisContext *c;
	uint64_t base_mem;	/* used_memory after the last reset */
	uint64_t errors;
	char last[128];
};

static const size_t klen[3] = { 3, BENCH_KEY, 0 };

static int
fail(struct st *s, redisReply *r)
{
	s->errors++;
	if (r != NULL && r->type == REDIS_REPLY_ERROR)
		snprintf(s->last, sizeof(s->last), "%s", r->str);
	else if (s->c->err)
		snprintf(s->last, sizeof(s->last), "%s", s->c->errstr);
	if (r != NULL)
		freeReplyObject(r);
	return -EIO;
}

static uint64_t
used_memory(struct st *s)
{
	redisReply *r = redisCommand(s->c, "INFO memory");
	uint64_t n = 0;
	char *p;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, "used_memory:")) != NULL)
		n = strtoull(p + strlen("used_memory:"), NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

static int
r_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	struct st *s;

	if (!have_program("redis-server")) {
		snprintf(why, whylen, "redis-server not installed");
		return -ENOTSUP;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->srv.name = "redis";
	snprintf(s->srv.sock, sizeof(s->srv.sock), "%s/redis.sock",
		 p->tmpdir);
	const char *argv[] = {
		"redis-server", "--port", "0", "--unixsocket", s->srv.sock,
		"--unixsocketperm", "700", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", p->tmpdir, NULL,
	};
	if (server_start(&s->srv, p->tmpdir, p->server_cpu, argv) < 0) {
		snprintf(why, whylen, "%s", s->srv.why);
		free(s);
		return -ENOTSUP;
	}
	s->c = redisConnectUnix(s->srv.sock);
	if (s->c == NULL || s->c->err) {
		snprintf(why, whylen, "connect: %s",
			 s->c ? s->c->errstr : "out of memory");
		if (s->c)
			redisFree(s->c);
		server_stop(&s->srv);
		free(s);
		return -ENOTSUP;
	}
	s->base_mem = used_memory(s);
	*stp = s;
	return 0;
}

static void
r_close(void *st)
{
	struct st *s = st;

	redisFree(s->c);
	server_stop(&s->srv);
	free(s);
}

static int
r_reset(void *st)
{
	struct st *s = st;
	redisReply *r = redisCommand(s->c, "FLUSHALL SYNC");

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		return fail(s, r);
	freeReplyObject(r);
	s->base_mem = used_memory(s);
	return 0;
}

static int
r_get(void *st, const char *key, uint64_t *chk)
{
	struct st *s = st;
	const char *argv[2] = { "GET", key };
	redisReply *r = redisCommandArgv(s->c, 2, argv, klen);
	int len;

	if (r == NULL || (r->type != REDIS_REPLY_STRING &&
			  r->type != REDIS_REPLY_NIL))
		return fail(s, r);
	if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		return -ENOENT;
	}
	*chk += chk_bytes(r->str, (size_t)r->len);
	len = (int)r->len;
	freeReplyObject(r);
	return len;
}

static int
r_set(void *st, const char *key, const void *val, size_t len)
{
	struct st *s = st;
	const char *argv[3] = { "SET", key, val };
	size_t lens[3] = { 3, BENCH_KEY, len };
	redisReply *r = redisCommandArgv(s->c, 3, argv, lens);

	if (r == NULL || r->type != REDIS_REPLY_STATUS)
		return fail(s, r);
	freeReplyObject(r);
	return 0;
}

static int
r_del(void *st, const char *key)
{
	struct st *s = st;
	const char *argv[2] = { "DEL", key };
	redisReply *r = redisCommandArgv(s->c, 2, argv, klen);

	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		return fail(s, r);
	freeReplyObject(r);
	return 0;
}

static int
r_load(void *st, const char *key, const void *val, size_t len)
{
	uint64_t chk = 0;

	if (r_get(st, key, &chk) >= 0)
		return 0;
	return r_set(st, key, val, len);
}

/* Outside the timing: pipelined, 1000 commands per batch. */
static int
r_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	struct st *s = st;
	size_t lens[3] = { 3, BENCH_KEY, len };

	for (size_t i = 0; i < n; i += 1000) {
		size_t m = n - i < 1000 ? n - i : 1000;

		for (size_t j = 0; j < m; j++) {
			const char *argv[3] = {
				"SET", keys + (i + j) * BENCH_KEY, val,
			};

			if (redisAppendCommandArgv(s->c, 3, argv, lens) != 0)
				return fail(s, NULL);
		}
		for (size_t j = 0; j < m; j++) {
			void *r;

			if (redisGetReply(s->c, &r) != 0)
				return fail(s, NULL);
			freeReplyObject(r);
		}
	}
	return 0;
}

static int
r_fork_child(void *st)
{
	struct st *s = st;

	/* The parent's context shares its socket: a connection of our own. */
	s->c = redisConnectUnix(s->srv.sock);
	return s->c != NULL && !s->c->err ? 0 : -EIO;
}

static int
r_mem(void *st, uint64_t items, double *per_item, char *note, size_t len)
{
	struct st *s = st;
	uint64_t now = used_memory(s);

	if (now <= s->base_mem)
		return -ENOENT;
	*per_item = (double)(now - s->base_mem) / (double)items;
	snprintf(note, len, "INFO used_memory grew %llu B (jemalloc sizes)",
		 (unsigned long long)(now - s->base_mem));
	return 0;
}

static void
r_check(void *st, char *msg, size_t len)
{
	struct st *s = st;

	msg[0] = '\0';
	if (s->errors)
		snprintf(msg, len, "%llu errors (last %s)",
			 (unsigned long long)s->errors, s->last);
	s->errors = 0;
}

const struct impl impl_redis = {
	.name = "redis",
	.role = "peer",
	.remote = true,
	.open = r_open,
	.close = r_close,
	.reset = r_reset,
	.get = r_get,
	.set = r_set,
	.del = r_del,
	.load = r_load,
	.fill = r_fill,
	.fork_child = r_fork_child,
	.mem = r_mem,
	.check = r_check,
};
