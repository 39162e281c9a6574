/*
 * mlc-relay: invalidations between hosts through a Redis Stream.
 *
 *   hook (any thread, inside mlc_set & co.)  -> bounded queue
 *   publisher thread: queue -> XADD stream MAXLEN ~ N * h HOST o OP n NS k KEY
 *   subscriber thread: XREAD BLOCK from the last ID -> mlc_arena_apply_event
 *
 * Each thread has its own connection (a connection blocked in XREAD cannot
 * send XADDs) and reconnects with exponential back-off.  The subscriber
 * purges every local namespace whenever entries may have been missed: on
 * its first connection (the arena's past is unknown), when Redis restarted
 * (run_id changed), when the stream was trimmed past its last ID,
 * deleted or recreated (XINFO STREAM, on reconnecting and after each
 * XREAD), and when it was cut off longer than max_offline_ms.
 */
#include "mlc-relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define DROP_NS_MAX 16

enum { OP_SET = 'S', OP_DEL = 'D', OP_PURGE = 'P', OP_PURGE_ALL = 'A' };

struct qev {
	struct qev *next;
	uint32_t key_len;
	uint8_t  op;
	uint8_t  ns_len;
	char     data[];	/* ns, then key */
};

struct sid {			/* a stream entry ID */
	uint64_t ms, seq;
};

struct mlc_relay {
	struct mlc_arena *arena;
	char host_id[MLC_RELAY_HOST_ID_MAX + 1];
	char host[MLC_RELAY_HOST_MAX + 1];
	char unix_path[MLC_RELAY_UNIX_MAX + 1];
	char password[MLC_RELAY_PASSWORD_MAX + 1];
	char stream[MLC_RELAY_STREAM_MAX + 1];
	char maxlen[24];
	uint32_t port, mode, flags, queue_len, batch, block_ms, io_ms;
	uint32_t bo_min, bo_max, max_offline_ms, flush_ms;
	uint64_t queue_bytes;

	pthread_mutex_t mu;	/* everything below */
	pthread_cond_t  pub_cv;	/* queue not empty, or stop */
	pthread_cond_t  stop_cv; /* stop (for back-off sleeps) */
	struct qev *qhead, *qtail;
	uint64_t qn, qbytes;
	char drop_ns[DROP_NS_MAX][MLC_NAME_MAX + 1];
	unsigned ndrop;
	bool drop_all;
	bool stop;
	uint64_t stop_at;
	bool pub_running, sub_running, child_start, hooked;
	uint64_t child_tried_at;	/* ms: start_child_publisher() */
	pthread_t pub_th, sub_th;
	int sub_fd;
	char last_error[160];

	struct mlc_relay_stats st;	/* updated with atomics */
	int64_t last_read_at;		/* ms, atomics; -1: never */
	struct mlc_relay *reg_next;
};

#define ST_ADD(r, f, n) __atomic_fetch_add(&(r)->st.f, (n), __ATOMIC_RELAXED)
#define ST_GET(r, f)    __atomic_load_n(&(r)->st.f, __ATOMIC_RELAXED)

/* ---- small helpers ----------------------------------------------------- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval
ms_tv(uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000 };

	return tv;
}

static void
set_error(struct mlc_relay *r, const char *what, const char *detail)
{
	pthread_mutex_lock(&r->mu);
	snprintf(r->last_error, sizeof(r->last_error), "%s: %s", what,
		 detail ? detail : "?");
	pthread_mutex_unlock(&r->mu);
}

static int
sid_parse(const char *s, struct sid *id)
{
	char *end;

	if (s == NULL)
		return -1;
	id->ms = strtoull(s, &end, 10);
	id->seq = 0;
	if (*end == '-')
		id->seq = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static int
sid_cmp(const struct sid *a, const struct sid *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

static bool
sid_zero(const struct sid *a)
{
	return a->ms == 0 && a->seq == 0;
}

/* The deadline @p ms of now_ms()'s clock (CLOCK_MONOTONIC, stop_cv's),
 * for pthread_cond_timedwait(). */
static struct timespec
mono_ts(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000 };

	return ts;
}

/* Sleep @p ms unless stop is asked for.  @return true if stopping. */
static bool
relay_sleep(struct mlc_relay *r, uint64_t ms)
{
	struct timespec ts = mono_ts(now_ms() + ms);
	bool stop;

	pthread_mutex_lock(&r->mu);
	while (!r->stop &&
	       pthread_cond_timedwait(&r->stop_cv, &r->mu, &ts) != ETIMEDOUT)
		;
	stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

static void
nap_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A random number for the back-off's jitter, from a generator of the
 * thread's own (xorshift64, seeded by the clock, the pid and its own
 * address): rand() would take numbers out of the application's sequence,
 * which srand() makes repeatable (relay-unit test_jitter_leaves_rand). */
static uint64_t
jitter_rand(void)
{
	static __thread uint64_t s;

	if (s == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&s;
		s |= 1;
	}
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

/* Exponential back-off with jitter: the next delay, from 7/8 to 9/8 of
 * the current one.  64 bits: the current one may be up to 2^32 - 1
 * (backoff_max_ms), and 9/8 of it wrapped in 32 (to a delay of 0 to
 * 2^29 ms, as likely as not). */
static uint64_t
backoff_next(struct mlc_relay *r, uint32_t *cur)
{
	uint64_t d = *cur ? *cur : r->bo_min;
	uint64_t jitter = d / 4 ? jitter_rand() % (d / 4 + 1) : 0;

	*cur = d >= r->bo_max / 2 ? r->bo_max : (uint32_t)(d * 2);
	return d - d / 8 + jitter;
}

/* Start a relay thread with SIGPIPE blocked in it.  hiredis writes with
 * write(2): on a connection Redis has closed (a restart, CLIENT KILL, its
 * idle timeout) the next write raised SIGPIPE, which kills a process that
 * has not ignored it.  Blocked, the write fails with EPIPE, a connection
 * error like any other (the signal stays pending on the thread, and goes
 * with it).  The application's own threads keep their mask. */
static int
thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t pipe, old;
	int rc;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	rc = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* The subscriber's socket, for mlc_relay_stop() to shut down (-1: none).
 * Set while stopping already, it is shut down at once. */
static void
sub_fd_set(struct mlc_relay *r, int fd)
{
	pthread_mutex_lock(&r->mu);
	r->sub_fd = fd;
	if (r->stop && fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&r->mu);
}

/* ---- resolving ----------------------------------------------------------
 *
 * getaddrinfo() has no timeout and cannot be interrupted: a resolver that
 * hangs (an NSS module, a DNS server that never answers, retried per
 * resolv.conf) held the relay's thread, and mlc_relay_stop() joining it,
 * for as long, and the subscriber made no offline purge meanwhile.  A
 * host name is resolved by a detached thread of its own, which the relay
 * thread waits for at most io_timeout_ms, and stop not at all; a
 * resolution still running is waited for again by the next attempt (one
 * per relay thread at most), and left to finish alone at stop.  Numeric
 * addresses (the default) need none. */

#define RESOLVE_MAX 8		/* addresses tried, in the resolver's order */

struct resolve {
	pthread_mutex_t mu;	/* refs, waiter */
	int refs;		/* the resolving thread's, and the asker's */
	struct mlc_relay *waiter; /* woken through its stop_cv when done */
	bool done;		/* atomics: set once, after rc and addr */
	int rc;			/* getaddrinfo()'s */
	int naddr;
	char host[MLC_RELAY_HOST_MAX + 1];
	char port[8];
	char addr[RESOLVE_MAX][INET6_ADDRSTRLEN];
};

static void
resolve_put(struct resolve *rs)
{
	bool last;

	pthread_mutex_lock(&rs->mu);
	last = --rs->refs == 0;
	pthread_mutex_unlock(&rs->mu);
	if (last) {
		pthread_mutex_destroy(&rs->mu);
		free(rs);
	}
}

/* As hiredis does: IPv4 addresses, or IPv6 ones if there are none. */
static int
resolve_lookup(struct resolve *rs)
{
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM }, *ai, *p;
	int rc = getaddrinfo(rs->host, rs->port, &hints, &ai);

	if (rc != 0) {
		hints.ai_family = AF_INET6;
		rc = getaddrinfo(rs->host, rs->port, &hints, &ai);
	}
	if (rc != 0)
		return rc;
	for (p = ai; p != NULL && rs->naddr < RESOLVE_MAX; p = p->ai_next)
		if (getnameinfo(p->ai_addr, p->ai_addrlen,
				rs->addr[rs->naddr], sizeof(rs->addr[0]), NULL,
				0, NI_NUMERICHOST) == 0)
			rs->naddr++;
	freeaddrinfo(ai);
	return rs->naddr > 0 ? 0 : EAI_NONAME;
}

static void *
resolve_main(void *arg)
{
	struct resolve *rs = arg;

	rs->rc = resolve_lookup(rs);
	pthread_mutex_lock(&rs->mu);
	__atomic_store_n(&rs->done, true, __ATOMIC_RELEASE);
	/* Under rs->mu: the waiter clears itself there before it leaves,
	 * and its relay lives while it waits. */
	if (rs->waiter != NULL) {
		pthread_mutex_lock(&rs->waiter->mu);
		pthread_cond_broadcast(&rs->waiter->stop_cv);
		pthread_mutex_unlock(&rs->waiter->mu);
	}
	pthread_mutex_unlock(&rs->mu);
	resolve_put(rs);
	return NULL;
}

/* A resolution of r->host started.  NULL: no memory or no thread. */
static struct resolve *
resolve_start(struct mlc_relay *r)
{
	struct resolve *rs = calloc(1, sizeof(*rs));
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (rs == NULL)
		return NULL;
	pthread_mutex_init(&rs->mu, NULL);
	rs->refs = 2;
	memcpy(rs->host, r->host, sizeof(rs->host));
	snprintf(rs->port, sizeof(rs->port), "%u", r->port);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, resolve_main, rs);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_destroy(&rs->mu);
		free(rs);
		return NULL;
	}
	return rs;
}

/* Wait for *@p pending (started if NULL) for at most io_timeout_ms, or
 * until stop; the publisher, once stopping, until its flush deadline
 * (@p flush).  @return true when it is done (it is then still the
 * caller's, to read and put); false with *@p pending kept for the next
 * attempt, or NULL (none could start). */
static bool
resolve_wait(struct mlc_relay *r, struct resolve **pending, bool flush)
{
	struct resolve *rs = *pending;
	struct timespec ts;
	uint64_t end;
	bool done, stop;

	if (rs == NULL && (rs = *pending = resolve_start(r)) == NULL) {
		set_error(r, "resolve", "cannot start its thread");
		return false;
	}
	pthread_mutex_lock(&rs->mu);
	rs->waiter = r;
	pthread_mutex_unlock(&rs->mu);
	end = now_ms() + r->io_ms;
	pthread_mutex_lock(&r->mu);
	/* The stop that began the flush does not end its wait. */
	flush = flush && r->stop;
	if (flush && r->stop_at + r->flush_ms < end)
		end = r->stop_at + r->flush_ms;
	ts = mono_ts(end);
	while ((flush || !r->stop) &&
	       !__atomic_load_n(&rs->done, __ATOMIC_ACQUIRE) &&
	       pthread_cond_timedwait(&r->stop_cv, &r->mu, &ts) != ETIMEDOUT)
		;
	stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_lock(&rs->mu);
	rs->waiter = NULL;
	pthread_mutex_unlock(&rs->mu);
	done = __atomic_load_n(&rs->done, __ATOMIC_ACQUIRE);
	if (!done)
		set_error(r, "resolve", stop && !flush ? "stopped" :
			  "no answer in time");
	return done;
}

/* The one relay thread's resolution left running (at its exit). */
static void
resolve_drop(struct resolve **pending)
{
	if (*pending != NULL)
		resolve_put(*pending);
	*pending = NULL;
}

static bool
numeric_host(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

/* A connection to each address of the resolved host in turn, until one
 * is made, or NULL with the error set. */
static redisContext *
connect_resolved(struct mlc_relay *r, struct resolve **pending, bool flush)
{
	struct resolve *rs;
	redisContext *c = NULL;
	uint64_t t0;

	if (!resolve_wait(r, pending, flush))
		return NULL;
	rs = *pending;
	*pending = NULL;
	t0 = now_ms();
	if (rs->rc != 0)
		set_error(r, "resolve", gai_strerror(rs->rc));
	/* The next address after a failure, while io_timeout_ms has not
	 * passed since the first was tried (hiredis tries the next one only
	 * after an unreachable host, an immediate failure). */
	for (int i = 0; rs->rc == 0 && i < rs->naddr; i++) {
		if (c != NULL)
			redisFree(c);
		c = redisConnectWithTimeout(rs->addr[i], (int)r->port,
					    ms_tv(r->io_ms));
		if (c == NULL || c->err == 0 || now_ms() - t0 >= r->io_ms)
			break;
	}
	if (rs->rc == 0 && c == NULL)
		set_error(r, "connect", "out of memory");
	resolve_put(rs);
	return c;
}

/* A connection to Redis (it may carry an error: c->err), or NULL with the
 * error set.  A host name is resolved first, by resolve_wait() (@p flush:
 * for the publisher). */
static redisContext *
connect_any(struct mlc_relay *r, struct resolve **pending, bool flush)
{
	redisContext *c;

	if (r->unix_path[0])
		c = redisConnectUnixWithTimeout(r->unix_path, ms_tv(r->io_ms));
	else if (numeric_host(r->host))
		c = redisConnectWithTimeout(r->host, (int)r->port,
					    ms_tv(r->io_ms));
	else
		return connect_resolved(r, pending, flush);
	if (c == NULL)
		set_error(r, "connect", "out of memory");
	return c;
}

/* Connect, and AUTH.  @p sub: the subscriber's connection, whose socket
 * mlc_relay_stop() shuts down from before AUTH on (a Redis that takes
 * connections and does not answer would hold AUTH for @p read_ms).
 * @p pending: the thread's resolution of the host, if one is running. */
static redisContext *
rconnect(struct mlc_relay *r, uint64_t read_ms, bool sub,
	 struct resolve **pending)
{
	redisContext *c;
	redisReply *rep;
	int fl;

	if ((c = connect_any(r, pending, !sub)) == NULL)
		return NULL;
	if (c->err) {
		set_error(r, "connect", c->errstr);
		redisFree(c);
		return NULL;
	}
	/* Not as stdin, stdout or stderr: in a process started with one of
	 * them closed (`prog >&-`) the socket took its number, and what the
	 * application printed went to Redis as commands (test-redis
	 * test_stdout_closed).  hiredis reads, writes and closes c->fd. */
	if (c->fd >= 0 && c->fd <= STDERR_FILENO) {
		int nfd = fcntl(c->fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);

		if (nfd < 0) {
			set_error(r, "connect", strerror(errno));
			redisFree(c);
			return NULL;
		}
		close(c->fd);
		c->fd = nfd;
	}
	/* hiredis makes its sockets without close-on-exec: a program the
	 * application starts would keep this connection, authenticated,
	 * for its lifetime (an exec in the moment between hiredis's
	 * socket() and this still can). */
	fl = fcntl(c->fd, F_GETFD);
	if (fl >= 0)
		fcntl(c->fd, F_SETFD, fl | FD_CLOEXEC);
	redisSetTimeout(c, ms_tv(read_ms));
	if (sub)
		sub_fd_set(r, c->fd);
	if (r->password[0]) {
		rep = redisCommand(c, "AUTH %s", r->password);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			set_error(r, "AUTH", rep ? rep->str : c->errstr);
			if (rep)
				freeReplyObject(rep);
			if (sub)
				sub_fd_set(r, -1);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(rep);
	}
	return c;
}

static void
connected_bit(struct mlc_relay *r, uint32_t bit, bool on)
{
	if (on)
		__atomic_fetch_or(&r->st.connected, bit, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&r->st.connected, ~bit, __ATOMIC_RELAXED);
}

/* ---- applying ------------------------------------------------------------ */

static int
apply_purge(struct mlc_relay *r, const char *ns, size_t ns_len)
{
	struct mlc_event ev = { MLC_EVENT_PURGE, (uint32_t)ns_len, ns, NULL,
				0, 0 };
	int rc = mlc_arena_apply_event(r->arena, &ev);

	if (rc == 0)
		ST_ADD(r, ns_purged, 1);
	return rc;
}

/* Purge every namespace in use here: what we may have missed is unknown. */
static void
purge_all(struct mlc_relay *r)
{
	char name[MLC_NAME_MAX + 1];

	for (uint32_t i = 0;
	     mlc_arena_namespace(r->arena, i, name, sizeof(name)) == 0; i++)
		if (apply_purge(r, name, strlen(name)) < 0)
			ST_ADD(r, errors, 1);
}

/* ---- the queue (filled by the hook) ---------------------------------- */

/* Remember that a change of namespace @p ns was lost (under r->mu): a
 * PURGE of it will be published instead. */
static void
drop_note(struct mlc_relay *r, const char *ns, size_t ns_len)
{
	if (r->drop_all)
		return;
	for (unsigned i = 0; i < r->ndrop; i++)
		if (strlen(r->drop_ns[i]) == ns_len &&
		    memcmp(r->drop_ns[i], ns, ns_len) == 0)
			return;
	if (r->ndrop == DROP_NS_MAX) {
		r->drop_all = true;	/* too many: purge them all */
		return;
	}
	memcpy(r->drop_ns[r->ndrop], ns, ns_len);
	r->drop_ns[r->ndrop][ns_len] = '\0';
	r->ndrop++;
}

static void start_child_publisher(struct mlc_relay *r);

int
mlc_relay_event(struct mlc_relay *r, const struct mlc_event *ev)
{
	struct qev *q;
	size_t klen;
	int rc = 0;

	if (r == NULL || ev == NULL || ev->ns == NULL || ev->ns_len == 0 ||
	    ev->ns_len > MLC_NAME_MAX)
		return -EINVAL;
	if (ev->op != MLC_EVENT_SET && ev->op != MLC_EVENT_DELETE &&
	    ev->op != MLC_EVENT_PURGE)
		return -EINVAL;
	klen = ev->op == MLC_EVENT_PURGE ? 0 : ev->key_len;
	if (klen > MLC_KEY_MAX || (klen && ev->key == NULL))
		return -EINVAL;
	q = malloc(sizeof(*q) + ev->ns_len + klen);
	if (q != NULL) {
		q->next = NULL;
		q->key_len = (uint32_t)klen;
		q->op = ev->op == MLC_EVENT_SET ? OP_SET :
			ev->op == MLC_EVENT_DELETE ? OP_DEL : OP_PURGE;
		q->ns_len = (uint8_t)ev->ns_len;
		memcpy(q->data, ev->ns, ev->ns_len);
		if (klen)
			memcpy(q->data + ev->ns_len, ev->key, klen);
	}
	pthread_mutex_lock(&r->mu);
	if (r->child_start)
		start_child_publisher(r);
	if (q == NULL || r->stop || !(r->mode & MLC_RELAY_PUBLISH) ||
	    r->qn >= r->queue_len || r->qbytes + klen > r->queue_bytes) {
		if (!r->stop && (r->mode & MLC_RELAY_PUBLISH)) {
			drop_note(r, ev->ns, ev->ns_len);
			/* The purge is to go now, even with nothing queued
			 * (a key over queue_bytes, no memory for the copy):
			 * an idle publisher waits for this. */
			pthread_cond_signal(&r->pub_cv);
		}
		ST_ADD(r, dropped, 1);
		free(q);
		rc = -ENOBUFS;
	} else {
		if (r->qtail)
			r->qtail->next = q;
		else
			r->qhead = q;
		r->qtail = q;
		r->qn++;
		r->qbytes += klen;
		if (r->qn > ST_GET(r, queue_max))
			__atomic_store_n(&r->st.queue_max, r->qn,
					 __ATOMIC_RELAXED);
		pthread_cond_signal(&r->pub_cv);
	}
	__atomic_store_n(&r->st.queued, r->qn, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static void
relay_hook(void *arg, const struct mlc_event *ev)
{
	(void)mlc_relay_event(arg, ev);
}

static struct qev *
qev_make(uint8_t op, const char *ns, size_t ns_len)
{
	struct qev *q = malloc(sizeof(*q) + ns_len);

	if (q != NULL) {
		q->next = NULL;
		q->key_len = 0;
		q->op = op;
		q->ns_len = (uint8_t)ns_len;
		memcpy(q->data, ns, ns_len);
	}
	return q;
}

static void
qev_free_list(struct qev *q)
{
	while (q != NULL) {
		struct qev *n = q->next;

		free(q);
		q = n;
	}
}

/* ---- publisher --------------------------------------------------------- */

struct pending {
	struct qev *head, *tail;
	uint64_t n;
};

static void
pend_add(struct pending *p, struct qev *q)
{
	if (q == NULL)
		return;
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	while (q->next)
		q = q->next;
	p->tail = q;
}

/* Take the queue and the drop notes (under r->mu). */
static void
take_queue(struct mlc_relay *r, struct pending *p)
{
	struct qev *q;

	if (r->qhead) {
		pend_add(p, r->qhead);
		p->n += r->qn;
		r->qhead = r->qtail = NULL;
		r->qn = r->qbytes = 0;
		__atomic_store_n(&r->st.queued, 0, __ATOMIC_RELAXED);
	}
	/* After what was queued: each purge is later than the change it
	 * stands for, so a host that applies it cannot keep the old value. */
	if (r->drop_all) {
		if ((q = qev_make(OP_PURGE_ALL, "", 0)) != NULL) {
			pend_add(p, q);
			p->n++;
			r->drop_all = false;
			r->ndrop = 0;
		}
	}
	while (r->ndrop > 0) {
		const char *ns = r->drop_ns[r->ndrop - 1];

		if ((q = qev_make(OP_PURGE, ns, strlen(ns))) == NULL) {
			r->drop_all = true;	/* retried next time */
			break;
		}
		q->key_len = UINT32_MAX;	/* marks "for a drop" */
		pend_add(p, q);
		p->n++;
		r->ndrop--;
	}
}

/* Send up to r->batch pending entries in one pipeline.  @p refused is
 * set if Redis refused any of them (an error reply).
 * @return entries acknowledged, or -1 if the connection failed. */
static int
publish_batch(struct mlc_relay *r, redisContext *c, struct pending *p,
	      bool *refused)
{
	const char *argv[14];
	size_t lens[14];
	char opc[2] = { 0, 0 };
	struct qev *q = p->head;
	unsigned n = 0, ok = 0;

	for (; q != NULL && n < r->batch; q = q->next, n++) {
		int argc = 0;

#define ARG(s, l) (argv[argc] = (s), lens[argc] = (l), argc++)
		ARG("XADD", 4);
		ARG(r->stream, strlen(r->stream));
		ARG("MAXLEN", 6);
		ARG("~", 1);
		ARG(r->maxlen, strlen(r->maxlen));
		ARG("*", 1);
		ARG("h", 1);
		ARG(r->host_id, strlen(r->host_id));
		opc[0] = (char)q->op;
		ARG("o", 1);
		ARG(opc, 1);
		if (q->op != OP_PURGE_ALL) {
			ARG("n", 1);
			ARG(q->data, q->ns_len);
		}
		if (q->op == OP_SET || q->op == OP_DEL) {
			ARG("k", 1);
			ARG(q->data + q->ns_len, q->key_len);
		}
#undef ARG
		if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK)
			return -1;
	}
	/* Acknowledge them in order.  A Redis error (not a connection
	 * failure: out of memory, a stream key of another type) loses that
	 * entry: count it and publish a purge of its namespace instead, as
	 * for a drop, and a refused purge again (a refused "all namespaces"
	 * as such), after a back-off (pub_main()).  A purge that is only
	 * counted would leave the other hosts' old values in place. */
	for (unsigned i = 0; i < n; i++) {
		redisReply *rep = NULL;
		bool err;

		if (redisGetReply(c, (void **)&rep) != REDIS_OK ||
		    rep == NULL) {
			set_error(r, "XADD", c->errstr);
			/* Those acknowledged are not sent again. */
			ST_ADD(r, published, ok);
			return -1;
		}
		err = rep->type == REDIS_REPLY_ERROR;
		if (err)
			set_error(r, "XADD", rep->str);
		freeReplyObject(rep);
		q = p->head;
		p->head = q->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->n--;
		if (err) {
			ST_ADD(r, errors, 1);
			*refused = true;
			pthread_mutex_lock(&r->mu);
			if (q->op == OP_PURGE_ALL)
				r->drop_all = true;
			else
				drop_note(r, q->data, q->ns_len);
			pthread_mutex_unlock(&r->mu);
		} else {
			if (q->op == OP_PURGE_ALL || q->key_len == UINT32_MAX)
				ST_ADD(r, drop_purges, 1);
			ok++;
		}
		free(q);
	}
	ST_ADD(r, published, ok);
	return (int)ok;
}

/* The publisher's wait after a failure: the next back-off, cut short by
 * stop, or by the flush deadline once stopping.  @return true if that
 * deadline has passed (give up). */
static bool
pub_backoff(struct mlc_relay *r, uint32_t *backoff, bool stopping)
{
	uint64_t d = backoff_next(r, backoff);

	if (stopping) {
		uint64_t end = r->stop_at + r->flush_ms;
		uint64_t t = now_ms();

		if (t >= end)
			return true;
		nap_ms(d < end - t ? d : end - t);
	} else {
		relay_sleep(r, d);
	}
	return false;
}

static void *
pub_main(void *arg)
{
	struct mlc_relay *r = arg;
	struct pending p = { NULL, NULL, 0 };
	struct resolve *res = NULL;
	redisContext *c = NULL;
	uint32_t backoff = 0;
	bool ever = false, stopping, proven = false;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		/* Idle only when connected: the connection is made from the
		 * start, not at the first change, so that connected tells
		 * whether a change would reach Redis (README).  A connection
		 * that went idle counts as good: the first failure after it
		 * reconnects at once, with the back-off started over (an
		 * idle connection, made while nothing was published, left it
		 * at its max: review AD). */
		while (!r->stop && r->qhead == NULL && p.head == NULL &&
		       r->ndrop == 0 && !r->drop_all && c != NULL) {
			backoff = 0;
			proven = true;
			pthread_cond_wait(&r->pub_cv, &r->mu);
		}
		/* Only when what we hold is out: while Redis is away the
		 * queue fills up to its bound, then drops (and purges). */
		if (p.head == NULL)
			take_queue(r, &p);
		stopping = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (p.head == NULL && stopping)
			break;
		if (p.head == NULL && c != NULL)
			continue;
		if (stopping && now_ms() >= r->stop_at + r->flush_ms)
			break;
		if (c == NULL) {
			c = rconnect(r, r->io_ms, false, &res);
			if (c == NULL) {
				if (pub_backoff(r, &backoff, stopping))
					break;
				continue;
			}
			if (ever)
				ST_ADD(r, reconnects, 1);
			ever = true;
			/* The back-off starts over only once the connection
			 * proves good (a reply, or idle): a Redis that
			 * takes connections and closes them at once made
			 * this loop reconnect with no delay. */
			proven = false;
			connected_bit(r, MLC_RELAY_PUBLISH, true);
		}
		while (p.head != NULL) {
			bool refused = false;
			uint64_t left = p.n;

			if (publish_batch(r, c, &p, &refused) < 0) {
				redisFree(c);
				c = NULL;
				connected_bit(r, MLC_RELAY_PUBLISH, false);
				/* Died before any reply: wait as after a
				 * failed connect. */
				if (!proven && p.n == left &&
				    pub_backoff(r, &backoff, stopping))
					goto out;
				break;
			}
			proven = true;
			if (refused) {	/* its purges wait for a new round */
				if (pub_backoff(r, &backoff, stopping))
					goto out;
				continue;
			}
			backoff = 0;
		}
	}
out:
	/* Whatever could not be published by the flush deadline. */
	ST_ADD(r, dropped, p.n);
	qev_free_list(p.head);
	if (c)
		redisFree(c);
	resolve_drop(&res);
	connected_bit(r, MLC_RELAY_PUBLISH, false);
	return NULL;
}

/* ---- subscriber ------------------------------------------------------ */

struct sub {
	struct sid last;	/* last entry seen (or the sync point) */
	uint64_t ord;		/* entries ever added up to last (Redis 7:
				 * entries-added); valid if ord_ok */
	bool ord_ok;
	bool have_pos;
	char run_id[48];
	uint64_t ok_at;		/* last good read (or a resync's purge) */
	uint64_t offline_purge_at;
};

/* The value of the field @p name of a field/value array (an entry's, or
 * XINFO's reply), or NULL: absent, or given twice (which one was meant
 * cannot be told).  Names are compared whole: a name is binary, and one
 * with a NUL is not a shorter one. */
static const redisReply *
field(const redisReply *kv, const char *name)
{
	const redisReply *v = NULL;
	size_t len = strlen(name);

	if (kv == NULL || kv->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < kv->elements; i += 2)
		if (kv->element[i]->type == REDIS_REPLY_STRING &&
		    kv->element[i]->len == len &&
		    memcmp(kv->element[i]->str, name, len) == 0) {
			if (v != NULL)
				return NULL;
			v = kv->element[i + 1];
		}
	return v;
}

static void
gap(struct mlc_relay *r, const char *why)
{
	set_error(r, "gap", why);
	purge_all(r);
	ST_ADD(r, gaps, 1);
}

/* What XINFO STREAM told of the stream. */
struct stream_look {
	bool missing;		/* no such key */
	bool has_first;		/* first: its first entry's ID */
	bool removed;		/* entries were trimmed or deleted from it
				 * (Redis 7.0 and later; older: false) */
	struct sid last_gen, first;
	struct sid max_deleted;	/* the highest ID ever XDELed (Redis 7.0
				 * and later; older: 0-0) */
	bool counted;		/* added and length known (Redis 7.0+) */
	uint64_t added, length;	/* entries-added, length */
};

/* Read XINFO STREAM's reply @p xi into @p sl.  @return 0, or -1 (an
 * error reply other than "no such key", or no last-generated-id). */
static int
stream_look(struct mlc_relay *r, const redisReply *xi, struct stream_look *sl)
{
	const redisReply *f, *lf;

	memset(sl, 0, sizeof(*sl));
	sl->missing = xi->type == REDIS_REPLY_ERROR;
	if (sl->missing) {
		if (strstr(xi->str, "no such key") != NULL)
			return 0;
		set_error(r, "XINFO", xi->str);
		return -1;
	}
	f = field(xi, "last-generated-id");
	if (f == NULL || f->type != REDIS_REPLY_STRING ||
	    sid_parse(f->str, &sl->last_gen) < 0) {
		set_error(r, "XINFO", "no last-generated-id");
		return -1;
	}
	f = field(xi, "first-entry");
	if (f != NULL && f->type == REDIS_REPLY_ARRAY && f->elements >= 1 &&
	    f->element[0]->type == REDIS_REPLY_STRING &&
	    sid_parse(f->element[0]->str, &sl->first) == 0)
		sl->has_first = true;
	f = field(xi, "max-deleted-entry-id");
	if (f != NULL && f->type == REDIS_REPLY_STRING &&
	    sid_parse(f->str, &sl->max_deleted) < 0)
		sl->max_deleted = (struct sid){ 0, 0 };
	/* A position of 0-0 (the stream was missing) cannot be told from a
	 * trim by the first entry: any ID is above it.  Redis 7.0 and later
	 * count the entries ever added to the stream (since it was made):
	 * more than it holds, and some were trimmed or deleted. */
	f = field(xi, "entries-added");
	lf = field(xi, "length");
	sl->counted = f != NULL && lf != NULL &&
		      f->type == REDIS_REPLY_INTEGER &&
		      lf->type == REDIS_REPLY_INTEGER &&
		      lf->integer >= 0 && f->integer >= lf->integer;
	if (sl->counted) {
		sl->added = (uint64_t)f->integer;
		sl->length = (uint64_t)lf->integer;
	}
	sl->removed = sl->counted && sl->added > sl->length;
	return 0;
}

/* Whether the stream as @p sl tells may have lost entries we did not
 * read: if so a gap is counted (everything purged).  @p last is the last
 * entry read, @p before the one read before the reads that @p sl follows
 * (an XREAD; on reconnecting, the same as @p last).  @p gone (NULL:
 * unknown) is how many entries the stream may have lost without a loss
 * once none up to @p before is left: the entries ever added up to
 * @p before, and those read since that are gone.
 *
 * With it and Redis 7's counts the trim check is exact: the entries
 * removed (entries-added - length) are then those, unless some that were
 * not read went too (or the stream is another one, made anew, which
 * removed another count: a gap too).  Without them, a first entry above
 * @p before is a gap, although a trim right after a complete read (the
 * XINFO runs once the XREAD is served, and other clients' commands may
 * run in between) loses nothing. */
static bool
stream_gap(struct mlc_relay *r, const struct stream_look *sl,
	   const struct sid *before, const struct sid *last,
	   const uint64_t *gone)
{
	/* Nothing up to before is left: trimmed (or emptied) past it. */
	bool past = !sl->has_first || sid_cmp(&sl->first, before) > 0;

	if (sl->missing) {
		if (sid_zero(last))
			return false;
		gap(r, "stream deleted");
	} else if (sid_cmp(&sl->last_gen, last) < 0) {
		gap(r, "stream recreated");	/* its IDs went back */
	} else if (sid_cmp(&sl->max_deleted, before) > 0) {
		/* XDEL (trimming does not count here) of an entry after the
		 * last one read: perhaps before we read it. */
		gap(r, "entries deleted past the last entry read");
	} else if (gone != NULL && sl->counted) {
		if (!past || sl->added - sl->length == *gone)
			return false;
		gap(r, "entries removed past the last entry read");
	} else if (sl->has_first && !sid_zero(before) && past) {
		/* Trimming removes the oldest entries first. */
		gap(r, "stream trimmed past the last entry read");
	} else if (!sl->has_first && sid_cmp(&sl->last_gen, last) > 0) {
		/* Empty, and entries were added after the last one read
		 * (XTRIM MAXLEN 0, XDEL): no first entry to compare. */
		gap(r, "stream emptied past the last entry read");
	} else if (sid_zero(before) && sl->removed) {
		gap(r, "stream trimmed before its first entry was read");
	} else {
		return false;
	}
	return true;
}

/* After a gap (or the first sync): our place is the stream's last ID,
 * every entry up to there covered by the purge. */
static void
sub_reposition(struct sub *s, const struct stream_look *sl)
{
	s->last = sl->last_gen;		/* 0-0 if missing */
	/* A stream made later counts its entries from 0. */
	s->ord = sl->missing ? 0 : sl->added;
	s->ord_ok = sl->missing || sl->counted;
}

/* Find our place after (re)connecting.  @return 0, or -1 (drop it). */
static int
sub_sync(struct mlc_relay *r, redisContext *c, struct sub *s)
{
	redisReply *info = NULL, *xi = NULL;
	const char *p, *e;
	char run_id[48] = "";
	struct stream_look sl;
	int rc = -1;

	redisAppendCommand(c, "INFO server");
	redisAppendCommand(c, "XINFO STREAM %s", r->stream);
	if (redisGetReply(c, (void **)&info) != REDIS_OK ||
	    redisGetReply(c, (void **)&xi) != REDIS_OK) {
		set_error(r, "sync", c->errstr);
		goto out;
	}
	if (info->type != REDIS_REPLY_STRING) {
		set_error(r, "INFO", info->type == REDIS_REPLY_ERROR ?
			  info->str : "unexpected reply");
		goto out;
	}
	if ((p = strstr(info->str, "run_id:")) != NULL) {
		p += 7;
		e = p + strcspn(p, "\r\n");
		snprintf(run_id, sizeof(run_id), "%.*s", (int)(e - p), p);
	}
	if (stream_look(r, xi, &sl) < 0)
		goto out;
	if (!s->have_pos) {
		/* The arena's past is unknown: whatever it holds may have
		 * changed elsewhere before we were listening. */
		if (!(r->flags & MLC_RELAY_NO_START_PURGE))
			purge_all(r);
		s->have_pos = true;
	} else if (strcmp(run_id, s->run_id) != 0) {
		gap(r, "Redis restarted (run_id changed)");
	} else if (stream_gap(r, &sl, &s->last, &s->last,
			      s->ord_ok ? &s->ord : NULL)) {
		/* counted and purged there */
	} else if (r->max_offline_ms &&
		   now_ms() - s->ok_at > r->max_offline_ms) {
		gap(r, "cut off longer than max_offline_ms");
	} else {
		/* Continuous: read on from s->last.  Not a read: ok_at
		 * stays, or a Redis that answers the sync and never serves
		 * an XREAD (refused, or never answered) would hold off the
		 * offline purge for good. */
		rc = 0;
		goto done;
	}
	/* Entries up to last_gen are covered by the purge just done. */
	sub_reposition(s, &sl);
	s->ok_at = now_ms();
	__atomic_store_n(&r->last_read_at, (int64_t)s->ok_at,
			 __ATOMIC_RELAXED);
	rc = 0;
done:
	snprintf(s->run_id, sizeof(s->run_id), "%s", run_id);
out:
	if (info)
		freeReplyObject(info);
	if (xi)
		freeReplyObject(xi);
	return rc;
}

/* Another host's entry that cannot be applied as it stands (an unknown
 * op, a field missing, given twice or of the wrong type) still says that
 * something changed there: what, this host cannot tell, so it drops what
 * the entry could have named, its namespace if that much is readable,
 * else every namespace.  Until 2026-12-07 such an entry was counted and
 * ignored: a publisher of a newer version with an op this one does not
 * know, or a broken one, left values here that had changed (relay
 * test_unreadable_entry_purges). */
static void
refuse_entry(struct mlc_relay *r, const redisReply *n)
{
	uint64_t errors = 1;

	if (n != NULL && n->type == REDIS_REPLY_STRING && n->len > 0 &&
	    n->len <= MLC_NAME_MAX) {
		if (apply_purge(r, n->str, n->len) < 0)
			errors++;
	} else {
		purge_all(r);
	}
	/* Counted once its purge is made: whoever sees the refusal in the
	 * stats finds what it dropped gone.  (Counted first, a reader could
	 * still get the value: test_field_names_exact, about every run
	 * under ThreadSanitizer on a loaded machine.) */
	ST_ADD(r, errors, errors);
}

static void
apply_entry(struct mlc_relay *r, const redisReply *fields)
{
	const redisReply *h = field(fields, "h"), *o = field(fields, "o");
	const redisReply *n = field(fields, "n"), *k = field(fields, "k");
	struct mlc_event ev = { 0 };
	int rc;

	if (h != NULL && h->type == REDIS_REPLY_STRING &&
	    h->len == strlen(r->host_id) &&
	    memcmp(h->str, r->host_id, h->len) == 0) {
		ST_ADD(r, own, 1);	/* local already: the log did it */
		return;
	}
	if (h == NULL || o == NULL || h->type != REDIS_REPLY_STRING ||
	    o->type != REDIS_REPLY_STRING || o->len != 1) {
		refuse_entry(r, n);
		return;
	}
	if (o->str[0] == OP_PURGE_ALL) {
		purge_all(r);
		ST_ADD(r, applied, 1);
		return;
	}
	if (n == NULL || n->type != REDIS_REPLY_STRING) {
		refuse_entry(r, NULL);
		return;
	}
	ev.ns = n->str;
	ev.ns_len = (uint32_t)n->len;
	switch (o->str[0]) {
	case OP_PURGE:
		rc = apply_purge(r, n->str, n->len);
		break;
	case OP_SET:
	case OP_DEL:
		if (k == NULL || k->type != REDIS_REPLY_STRING) {
			refuse_entry(r, n);
			return;
		}
		ev.op = o->str[0] == OP_SET ? MLC_EVENT_SET : MLC_EVENT_DELETE;
		ev.key = k->str;
		ev.key_len = k->len;
		rc = mlc_arena_apply_event(r->arena, &ev);
		break;
	default:
		refuse_entry(r, n);
		return;
	}
	if (rc < 0)
		ST_ADD(r, errors, 1);
	else
		ST_ADD(r, applied, 1);
}

/* One XREAD BLOCK, with XINFO STREAM right after it (it waits in the
 * pipeline until the XREAD is served), which tells whether entries may
 * have been lost since the last one read before.
 * @return 0, or -1 (connection failed). */
static int
sub_read(struct mlc_relay *r, redisContext *c, struct sub *s)
{
	redisReply *xr = NULL, *fr = NULL;
	struct sid before = s->last;
	struct stream_look sl;
	uint64_t n = 0, left = 0, gone;
	char last[48];
	int rc = -1;

	snprintf(last, sizeof(last), "%llu-%llu",
		 (unsigned long long)s->last.ms,
		 (unsigned long long)s->last.seq);
	redisAppendCommand(c, "XREAD COUNT %u BLOCK %u STREAMS %s %s",
			   r->batch, r->block_ms, r->stream, last);
	redisAppendCommand(c, "XINFO STREAM %s", r->stream);
	if (redisGetReply(c, (void **)&xr) != REDIS_OK ||
	    redisGetReply(c, (void **)&fr) != REDIS_OK) {
		set_error(r, "XREAD", c->errstr);
		goto out;
	}
	if (xr->type == REDIS_REPLY_ERROR) {
		set_error(r, "XREAD", xr->str);
		ST_ADD(r, errors, 1);
		goto out;
	}
	if (stream_look(r, fr, &sl) < 0) {
		ST_ADD(r, errors, 1);
		goto out;
	}
	if (xr->type == REDIS_REPLY_ARRAY && xr->elements == 1 &&
	    xr->element[0]->type == REDIS_REPLY_ARRAY &&
	    xr->element[0]->elements == 2) {
		const redisReply *ents = xr->element[0]->element[1];

		for (size_t i = 0; i < ents->elements; i++) {
			const redisReply *e = ents->element[i];
			struct sid id;

			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING ||
			    sid_parse(e->element[0]->str, &id) < 0) {
				ST_ADD(r, errors, 1);
				s->ord_ok = false;	/* uncounted */
				continue;
			}
			ST_ADD(r, received, 1);
			apply_entry(r, e->element[1]);
			s->last = id;
			n++;
			/* Read, and still in the stream. */
			if (sl.has_first && sid_cmp(&id, &sl.first) >= 0)
				left++;
		}
	}
	/* Deleted, made again with IDs below ours (which XREAD would wait
	 * for in vain), or trimmed past the last entry read before it (or
	 * before its first entry was read, from 0-0): the same checks as on
	 * reconnecting, and then entries up to last_gen are covered by the
	 * purge. */
	gone = s->ord + n - left;
	if (stream_gap(r, &sl, &before, &s->last, s->ord_ok ? &gone : NULL))
		sub_reposition(s, &sl);
	else
		s->ord += n;
	s->ok_at = now_ms();
	__atomic_store_n(&r->last_read_at, (int64_t)s->ok_at,
			 __ATOMIC_RELAXED);
	rc = 0;
out:
	if (xr)
		freeReplyObject(xr);
	if (fr)
		freeReplyObject(fr);
	return rc;
}

static void *
sub_main(void *arg)
{
	struct mlc_relay *r = arg;
	struct sub s = { .ok_at = now_ms() };
	struct resolve *res = NULL;
	redisContext *c = NULL;
	uint32_t backoff = 0;
	bool ever = false, proven = false;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (c == NULL) {
			/* AUTH and the sync wait io_timeout_ms for their
			 * replies, as the README's bound on a cut-off
			 * subscriber's staleness counts them; the XREAD's
			 * block time comes on top only for the reads. */
			c = rconnect(r, r->io_ms, true, &res);
			if (c != NULL) {
				if (ever)
					ST_ADD(r, reconnects, 1);
				ever = true;
				if (sub_sync(r, c, &s) < 0) {
					sub_fd_set(r, -1);
					redisFree(c);
					c = NULL;
				} else {
					/* 64 bits: both may be up to
					 * 2^32 - 1. */
					redisSetTimeout(c, ms_tv(
						(uint64_t)r->block_ms +
						r->io_ms));
				}
			}
			if (c == NULL) {
				uint64_t t = now_ms();
				uint64_t since = s.ok_at > s.offline_purge_at ?
					s.ok_at : s.offline_purge_at;

				/* Cut off: values here may be going stale
				 * and nobody can tell us.  Bound it. */
				if (r->max_offline_ms &&
				    !(r->flags & MLC_RELAY_NO_OFFLINE_PURGE) &&
				    t - since >= r->max_offline_ms) {
					purge_all(r);
					ST_ADD(r, offline_purges, 1);
					s.offline_purge_at = t;
				}
				relay_sleep(r, backoff_next(r, &backoff));
				continue;
			}
			connected_bit(r, MLC_RELAY_SUBSCRIBE, true);
			proven = false;
		}
		if (sub_read(r, c, &s) == 0) {
			/* A good read: the next failure's back-off starts
			 * over (not at the sync: a Redis that answers it
			 * and then refuses or drops every XREAD made this
			 * loop reconnect with no delay). */
			backoff = 0;
			proven = true;
			continue;
		}
		sub_fd_set(r, -1);
		redisFree(c);
		c = NULL;
		connected_bit(r, MLC_RELAY_SUBSCRIBE, false);
		if (!proven)
			relay_sleep(r, backoff_next(r, &backoff));
	}
	if (c) {
		sub_fd_set(r, -1);
		redisFree(c);
	}
	resolve_drop(&res);
	connected_bit(r, MLC_RELAY_SUBSCRIBE, false);
	return NULL;
}

/* ---- lifetime ---------------------------------------------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mlc_relay *reg_head;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
sync_init(struct mlc_relay *r)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->pub_cv, &ca);
	pthread_cond_init(&r->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&reg_mu);
}

/* The child has the hook but none of the threads.  Its queue copy belongs
 * to the parent (which publishes it); the child starts afresh, publishing
 * only, from its first change or mlc_relay_stats() call. */
static void
atfork_child(void)
{
	pthread_mutex_init(&reg_mu, NULL);
	for (struct mlc_relay *r = reg_head; r != NULL; r = r->reg_next) {
		sync_init(r);
		r->qhead = r->qtail = NULL;	/* the parent's: not freed */
		r->qn = r->qbytes = 0;
		r->ndrop = 0;
		r->drop_all = false;
		r->stop = false;
		r->pub_running = r->sub_running = false;
		r->sub_fd = -1;
		r->mode &= MLC_RELAY_PUBLISH;
		r->child_start = r->mode != 0;
		r->child_tried_at = 0;
		memset((char *)&r->st + sizeof(r->st.size), 0,
		       sizeof(r->st) - sizeof(r->st.size));
		r->last_read_at = -1;
	}
}

static void
atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* In a forked child, under r->mu.  A thread that cannot start (a limit
 * on threads or memory) is tried again at the next change or
 * mlc_relay_stats(), at most once a second: what is queued meanwhile
 * waits, as while Redis is away (until then the child never published,
 * and its queue filled and dropped, for good). */
static void
start_child_publisher(struct mlc_relay *r)
{
	uint64_t t = now_ms();

	if (r->child_tried_at != 0 && t - r->child_tried_at < 1000)
		return;
	r->child_tried_at = t;
	if (thread_start(&r->pub_th, pub_main, r) == 0) {
		r->child_start = false;
		r->pub_running = true;
	} else {
		snprintf(r->last_error, sizeof(r->last_error),
			 "fork: cannot start the publisher thread (tried "
			 "again at the next change, once a second)");
	}
}

/* NULL stands for the option's default, which always fits. */
static bool
length_ok(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return true;
	n = strlen(s);
	return n >= min && n <= max;
}

/* Everything mlc_relay_start() refuses, checked before it makes anything
 * (the relay, its threads, the hook), so a refused start has nothing to
 * undo and no half-made relay is ever visible to atfork or the hook. */
static bool
options_ok(const struct mlc_relay_options *o)
{
	return o->host_id != NULL &&
	       length_ok(o->host_id, 1, MLC_RELAY_HOST_ID_MAX) &&
	       length_ok(o->redis_host, 0, MLC_RELAY_HOST_MAX) &&
	       length_ok(o->redis_unix, 0, MLC_RELAY_UNIX_MAX) &&
	       length_ok(o->redis_password, 0, MLC_RELAY_PASSWORD_MAX) &&
	       length_ok(o->stream, 1, MLC_RELAY_STREAM_MAX) &&
	       o->maxlen <= INT64_MAX &&	/* Redis refuses XADDs above */
	       o->redis_port <= 65535 &&
	       !(o->mode & ~(uint32_t)(MLC_RELAY_PUBLISH |
				       MLC_RELAY_SUBSCRIBE));
}

/* @p src (or @p dflt) into @p dst: options_ok() has checked the length. */
static void
copy_str(char *dst, const char *src, const char *dflt)
{
	if (src == NULL)
		src = dflt;
	memcpy(dst, src, strlen(src) + 1);
}

int
mlc_relay_start(struct mlc_relay **relayp, struct mlc_arena *arena,
		const struct mlc_relay_options *opts)
{
	struct mlc_relay_options o = MLC_RELAY_OPTIONS_INIT;
	struct mlc_relay *r;
	int rc;

	if (relayp == NULL || arena == NULL || opts == NULL ||
	    opts->size < sizeof(size_t))
		return -EINVAL;
	if (opts->size > sizeof(o)) {
		for (size_t i = sizeof(o); i < opts->size; i++)
			if (((const char *)opts)[i] != 0)
				return -E2BIG;
		memcpy(&o, opts, sizeof(o));
	} else {
		memcpy(&o, opts, opts->size);
	}
	if (!options_ok(&o))
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->arena = arena;
	copy_str(r->host_id, o.host_id, NULL);
	copy_str(r->host, o.redis_host, "127.0.0.1");
	copy_str(r->unix_path, o.redis_unix, "");
	copy_str(r->password, o.redis_password, "");
	copy_str(r->stream, o.stream, "mlc:events");
	r->port = o.redis_port ? o.redis_port : 6379;
	r->mode = o.mode ? o.mode : MLC_RELAY_PUBLISH | MLC_RELAY_SUBSCRIBE;
	r->flags = o.flags;
	r->queue_len = o.queue_len ? o.queue_len : 65536;
	r->queue_bytes = o.queue_bytes ? o.queue_bytes : 16u << 20;
	snprintf(r->maxlen, sizeof(r->maxlen), "%llu",
		 (unsigned long long)(o.maxlen ? o.maxlen : 100000));
	r->batch = o.batch ? o.batch : 256;
	r->block_ms = o.block_ms ? o.block_ms : 2000;
	r->io_ms = o.io_timeout_ms ? o.io_timeout_ms : 2000;
	r->bo_min = o.backoff_min_ms ? o.backoff_min_ms : 100;
	r->bo_max = o.backoff_max_ms ? o.backoff_max_ms : 5000;
	if (r->bo_max < r->bo_min)
		r->bo_max = r->bo_min;
	r->max_offline_ms = o.max_offline_ms ? o.max_offline_ms : 10000;
	r->flush_ms = o.flush_ms ? o.flush_ms : 2000;
	r->sub_fd = -1;
	r->last_read_at = -1;
	r->st.size = sizeof(r->st);
	sync_init(r);

	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&reg_mu);
	r->reg_next = reg_head;
	reg_head = r;
	pthread_mutex_unlock(&reg_mu);

	if (r->mode & MLC_RELAY_PUBLISH) {
		if ((rc = thread_start(&r->pub_th, pub_main, r)) != 0)
			goto fail;
		r->pub_running = true;
		if (!(r->flags & MLC_RELAY_NO_HOOK)) {
			mlc_arena_set_event_hook(arena, relay_hook, r);
			r->hooked = true;
		}
	}
	if (r->mode & MLC_RELAY_SUBSCRIBE) {
		if ((rc = thread_start(&r->sub_th, sub_main, r)) != 0)
			goto fail;
		r->sub_running = true;
	}
	*relayp = r;
	return 0;
fail:
	mlc_relay_stop(r, NULL);
	return -rc;
}

int
mlc_relay_stats(struct mlc_relay *r, struct mlc_relay_stats *out)
{
	struct mlc_relay_stats s;
	int64_t at;
	size_t n;

	if (r == NULL || out == NULL || out->size < sizeof(size_t))
		return -EINVAL;
	/* In a forked child, its publisher starts now if no change has
	 * started it: it connects from the start, as the parent's does, so
	 * that connected tells whether a change would reach Redis. */
	pthread_mutex_lock(&r->mu);
	if (r->child_start)
		start_child_publisher(r);
	pthread_mutex_unlock(&r->mu);
	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	s.published = ST_GET(r, published);
	s.received = ST_GET(r, received);
	s.applied = ST_GET(r, applied);
	s.own = ST_GET(r, own);
	s.gaps = ST_GET(r, gaps);
	s.reconnects = ST_GET(r, reconnects);
	s.dropped = ST_GET(r, dropped);
	s.drop_purges = ST_GET(r, drop_purges);
	s.offline_purges = ST_GET(r, offline_purges);
	s.ns_purged = ST_GET(r, ns_purged);
	s.errors = ST_GET(r, errors);
	s.queued = ST_GET(r, queued);
	s.queue_max = ST_GET(r, queue_max);
	s.connected = ST_GET(r, connected);
	at = __atomic_load_n(&r->last_read_at, __ATOMIC_RELAXED);
	s.last_read_ms = at < 0 ? -1 : (int64_t)now_ms() - at;
	/* The caller's size before the copy, which brings ours: kept, a
	 * caller of an older mlc-relay.h that calls again with the same
	 * struct was written past its end. */
	n = out->size < sizeof(s) ? out->size : sizeof(s);
	memcpy(out, &s, n);
	out->size = n;
	return 0;
}

/* The fields @p s's size holds, only: a caller of an older mlc-relay.h
 * has a shorter struct, whose newer fields this printed from the bytes
 * past its end (relay-test-unit test_format_older_struct, review AL).  A
 * copy, zeroed past the caller's size, and the line up to its last field
 * it holds. */
int
mlc_relay_stats_format(const struct mlc_relay_stats *s, char *buf, size_t cap)
{
	struct mlc_relay_stats st;
	size_t n = s->size < sizeof(st) ? s->size : sizeof(st);
	int len;

	memset(&st, 0, sizeof(st));
	memcpy(&st, s, n);
	len = snprintf(buf, cap,
		"published=%llu received=%llu applied=%llu own=%llu gaps=%llu "
		"reconnects=%llu dropped=%llu drop_purges=%llu "
		"offline_purges=%llu ns_purged=%llu errors=%llu queued=%llu "
		"queue_max=%llu connected=%u",
		(unsigned long long)st.published,
		(unsigned long long)st.received,
		(unsigned long long)st.applied, (unsigned long long)st.own,
		(unsigned long long)st.gaps,
		(unsigned long long)st.reconnects,
		(unsigned long long)st.dropped,
		(unsigned long long)st.drop_purges,
		(unsigned long long)st.offline_purges,
		(unsigned long long)st.ns_purged,
		(unsigned long long)st.errors,
		(unsigned long long)st.queued,
		(unsigned long long)st.queue_max, st.connected);
	if (len < 0 || n < offsetof(struct mlc_relay_stats, last_read_ms) +
			   sizeof(st.last_read_ms))
		return len;
	return len + snprintf((size_t)len < cap ? buf + len : NULL,
			      (size_t)len < cap ? cap - (size_t)len : 0,
			      " last_read_ms=%lld", (long long)st.last_read_ms);
}

void
mlc_relay_last_error(struct mlc_relay *r, char *buf, size_t cap)
{
	if (r == NULL || buf == NULL || cap == 0)
		return;
	pthread_mutex_lock(&r->mu);
	snprintf(buf, cap, "%s", r->last_error);
	pthread_mutex_unlock(&r->mu);
}

int
mlc_relay_stop(struct mlc_relay *r, struct mlc_relay_stats *stats)
{
	struct mlc_relay **pp;

	if (r == NULL)
		return -EINVAL;
	if (r->hooked)
		mlc_arena_set_event_hook(r->arena, NULL, NULL);
	pthread_mutex_lock(&r->mu);
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	r->stop_at = now_ms();
	pthread_cond_broadcast(&r->pub_cv);
	pthread_cond_broadcast(&r->stop_cv);
	if (r->sub_fd >= 0)
		shutdown(r->sub_fd, SHUT_RDWR);
	pthread_mutex_unlock(&r->mu);
	if (r->pub_running)
		pthread_join(r->pub_th, NULL);
	if (r->sub_running)
		pthread_join(r->sub_th, NULL);
	/* Anything queued after the publisher left. */
	ST_ADD(r, dropped, r->qn);
	qev_free_list(r->qhead);
	r->qhead = r->qtail = NULL;
	r->qn = 0;
	if (stats != NULL)
		mlc_relay_stats(r, stats);
	pthread_mutex_lock(&reg_mu);
	for (pp = &reg_head; *pp != NULL; pp = &(*pp)->reg_next)
		if (*pp == r) {
			*pp = r->reg_next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	pthread_cond_destroy(&r->pub_cv);
	pthread_cond_destroy(&r->stop_cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return 0;
}
