/*
 * memcached over a unix socket, with libmemcached: the binary protocol,
 * MEMCACHED_BEHAVIOR_NO_BLOCK and TCP_NODELAY as libmemcached's docs
 * recommend for speed (a set still waits for the server's reply: only
 * BUFFER_REQUESTS or NOREPLY would not, and neither is used).  The server
 * is started for each case with -s (no network), 1 GiB of item memory,
 * two worker threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "bench.h"

struct st {
	struct server srv;
	memcached_st *m;
	uint64_t errors;
	char last[128];
};

static int
fail(struct st *s, memcached_return_t rc)
{
	s->errors++;
	snprintf(s->last, sizeof(s->last), "%s", memcached_strerror(s->m, rc));
	return -EIO;
}

static memcached_st *
client(const char *sock)
{
	memcached_st *m = memcached_create(NULL);

	if (m == NULL)
		return NULL;
	if (memcached_server_add_unix_socket(m, sock) != MEMCACHED_SUCCESS) {
		memcached_free(m);
		return NULL;
	}
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	return m;
}

static int
c_open(const struct bench_params *p, void **stp, char *why, size_t whylen)
{
	struct st *s;
	memcached_return_t rc = MEMCACHED_FAILURE;

	if (!have_program("memcached")) {
		snprintf(why, whylen, "memcached not installed");
		return -ENOTSUP;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->srv.name = "memcached";
	snprintf(s->srv.sock, sizeof(s->srv.sock), "%s/memcached.sock",
		 p->tmpdir);
	const char *argv[] = {
		"memcached", "-s", s->srv.sock, "-a", "0700", "-m", "1024",
		"-t", "2", "-c", "64",
		geteuid() == 0 ? "-u" : NULL, "root", NULL,
	};
	if (server_start(&s->srv, p->tmpdir, p->server_cpu, argv) < 0) {
		snprintf(why, whylen, "%s", s->srv.why);
		free(s);
		return -ENOTSUP;
	}
	s->m = client(s->srv.sock);
	/* A first round trip, so that a broken setup is a skip, not noise. */
	if (s->m == NULL ||
	    (rc = memcached_set(s->m, "ping", 4, "x", 1, 0, 0)) !=
	    MEMCACHED_SUCCESS) {
		snprintf(why, whylen, "libmemcached: %s",
			 s->m ? memcached_strerror(s->m, rc) : "no client");
		if (s->m)
			memcached_free(s->m);
		server_stop(&s->srv);
		free(s);
		return -ENOTSUP;
	}
	memcached_delete(s->m, "ping", 4, 0);
	*stp = s;
	return 0;
}

static void
c_close(void *st)
{
	struct st *s = st;

	memcached_free(s->m);
	server_stop(&s->srv);
	free(s);
}

static int
c_reset(void *st)
{
	struct st *s = st;
	memcached_return_t rc = memcached_flush(s->m, 0);

	return rc == MEMCACHED_SUCCESS ? 0 : fail(s, rc);
}

static int
c_get(void *st, const char *key, uint64_t *chk)
{
	struct st *s = st;
	memcached_return_t rc;
	uint32_t flags;
	size_t len;
	char *v = memcached_get(s->m, key, BENCH_KEY, &len, &flags, &rc);

	if (v == NULL) {
		if (rc == MEMCACHED_NOTFOUND)
			return -ENOENT;
		if (rc == MEMCACHED_SUCCESS)	/* an empty value */
			return 0;
		return fail(s, rc);
	}
	*chk += chk_bytes(v, len);
	free(v);
	return (int)len;
}

static int
c_set(void *st, const char *key, const void *val, size_t len)
{
	struct st *s = st;
	memcached_return_t rc = memcached_set(s->m, key, BENCH_KEY, val, len,
					      0, 0);

	return rc == MEMCACHED_SUCCESS ? 0 : fail(s, rc);
}

static int
c_del(void *st, const char *key)
{
	struct st *s = st;
	memcached_return_t rc = memcached_delete(s->m, key, BENCH_KEY, 0);

	return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ?
	       0 : fail(s, rc);
}

static int
c_load(void *st, const char *key, const void *val, size_t len)
{
	uint64_t chk = 0;

	if (c_get(st, key, &chk) >= 0)
		return 0;
	return c_set(st, key, val, len);
}

/* Outside the timing: quiet sets (SETQ, no reply on success), then one
 * get to make sure the server has read them all. */
static int
c_fill(void *st, const char *keys, size_t n, const void *val, size_t len)
{
	struct st *s = st;
	uint64_t chk = 0;
	int rc;

	memcached_behavior_set(s->m, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	rc = fill_by_set(&impl_memcached, st, keys, n, val, len);
	memcached_behavior_set(s->m, MEMCACHED_BEHAVIOR_NOREPLY, 0);
	if (rc < 0 || n == 0)
		return rc;
	rc = c_get(st, keys + (n - 1) * BENCH_KEY, &chk);
	return rc < 0 ? rc : 0;
}

static int
c_fork_child(void *st)
{
	struct st *s = st;

	s->m = client(s->srv.sock);
	return s->m != NULL ? 0 : -EIO;
}

struct slabs {
	uint64_t malloced, items;
};

static memcached_return_t
stat_cb(const memcached_instance_st *server, const char *key, size_t klen,
	const char *value, size_t vlen, void *ctx)
{
	struct slabs *sl = ctx;

	if (klen == strlen("total_malloced") &&
	    memcmp(key, "total_malloced", klen) == 0)
		sl->malloced = strtoull(value, NULL, 10);
	return MEMCACHED_SUCCESS;
}

static int
c_mem(void *st, uint64_t items, double *per_item, char *note, size_t len)
{
	struct st *s = st;
	struct slabs sl = { 0, 0 };

	/* Slab pages taken (1 MiB each, carved into the class's chunks):
	 * like mlc's pages used. */
	if (memcached_stat_execute(s->m, "slabs", stat_cb, &sl) !=
	    MEMCACHED_SUCCESS || sl.malloced == 0)
		return -ENOENT;
	*per_item = (double)sl.malloced / (double)items;
	snprintf(note, len, "stats slabs total_malloced %llu B",
		 (unsigned long long)sl.malloced);
	return 0;
}

static void
c_check(void *st, char *msg, size_t len)
{
	struct st *s = st;

	msg[0] = '\0';
	if (s->errors)
		snprintf(msg, len, "%llu errors (last %s)",
			 (unsigned long long)s->errors, s->last);
	s->errors = 0;
}

const struct impl impl_memcached = {
	.name = "memcached",
	.role = "peer",
	.remote = true,
	.open = c_open,
	.close = c_close,
	.reset = c_reset,
	.get = c_get,
	.set = c_set,
	.del = c_del,
	.load = c_load,
	.fill = c_fill,
	.fork_child = c_fork_child,
	.mem = c_mem,
	.check = c_check,
};
