/*
 * mlc-relay: carry mlc invalidations between hosts through a Redis Stream.
 *
 * Each host publishes the sets, deletes and purges made on its arena (seen
 * through mlc_arena_set_event_hook()) with XADD, and reads every host's
 * entries with XREAD BLOCK, applying the other hosts' ones with
 * mlc_arena_apply_event() (which never reports them again, so relays
 * cannot loop).  See relay/README.md for the guarantees.
 *
 * The event hook never does network I/O: it copies the event into a
 * bounded in-process queue and returns.  If the queue is full the event is
 * dropped, counted, and its namespace is remembered: the relay then
 * publishes a PURGE of that namespace, so other hosts never keep the old
 * value.  A publisher thread and a subscriber thread, each with its own
 * connection, do the network I/O, and reconnect with exponential back-off.
 *
 * Conventions are mlc's: 0 or a negative code, options structs begin with
 * their size, zero fields mean "the default".
 */
#ifndef MLC_RELAY_H
#define MLC_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "mlc.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mlc_relay;

enum mlc_relay_mode {
	MLC_RELAY_PUBLISH   = 1 << 0,	/* send this process's changes */
	MLC_RELAY_SUBSCRIBE = 1 << 1,	/* apply the other hosts' changes */
	/* 0: both */
};

enum mlc_relay_flags {
	/* Do not install the arena's event hook: the application calls
	 * mlc_relay_event() from its own hook. */
	MLC_RELAY_NO_HOOK          = 1 << 0,
	/* The subscriber does not purge every namespace when it first finds
	 * its place in the stream (only safe if the arena is new). */
	MLC_RELAY_NO_START_PURGE   = 1 << 1,
	/* While the subscriber cannot reach Redis, do not purge every
	 * max_offline_ms (values may then stay stale for the whole outage). */
	MLC_RELAY_NO_OFFLINE_PURGE = 1 << 2,
};

/* The longest strings of the options, in bytes: a longer one (or an empty
 * host_id or stream) makes mlc_relay_start() fail with -EINVAL. */
enum mlc_relay_limits {
	MLC_RELAY_HOST_ID_MAX  = 63,
	MLC_RELAY_HOST_MAX     = 255,
	MLC_RELAY_UNIX_MAX     = 107,
	MLC_RELAY_PASSWORD_MAX = 127,
	MLC_RELAY_STREAM_MAX   = 255,
};

struct mlc_relay_options {
	size_t      size;	/* sizeof(struct mlc_relay_options) */
	const char *host_id;	/* required: this host's name, unique among
				 * the hosts, 1..63 bytes.  Every process of
				 * one host (one arena) uses the same; two
				 * arenas of one host that share the stream
				 * need two (a subscriber skips its id's
				 * entries). */
	const char *redis_host;	/* NULL: "127.0.0.1" */
	uint32_t    redis_port;	/* 0: 6379; above 65535: -EINVAL */
	uint32_t    mode;	/* enum mlc_relay_mode; 0: both */
	const char *redis_unix;	/* unix socket path; overrides host/port */
	const char *redis_password; /* AUTH, if set */
	const char *stream;	/* NULL: "mlc:events" */
	uint32_t    flags;	/* enum mlc_relay_flags */
	uint32_t    queue_len;	/* events the queue holds; 0: 65536 */
	uint64_t    queue_bytes; /* bytes of keys it holds; 0: 16 MiB */
	uint64_t    maxlen;	/* XADD MAXLEN ~ this; 0: 100000; at most
				 * 2^63 - 1 (Redis refuses more), else
				 * -EINVAL */
	uint32_t    batch;	/* entries per round trip; 0: 256 */
	uint32_t    block_ms;	/* XREAD BLOCK; 0: 2000 */
	uint32_t    io_timeout_ms; /* connect (a host name's resolution,
				    * then each address), and a reply (a
				    * read's beyond the block time); 0: 2000 */
	uint32_t    backoff_min_ms; /* first reconnect delay; 0: 100 */
	uint32_t    backoff_max_ms; /* doubling up to this; 0: 5000 */
	uint32_t    max_offline_ms; /* a subscriber cut off longer than this
				     * purges everything (again every
				     * max_offline_ms while cut off, and
				     * once more on reconnecting); 0: 10000 */
	uint32_t    flush_ms;	/* mlc_relay_stop() keeps publishing what
				 * is queued this long; 0: 2000 */
	/* append below; never reorder */
};
#define MLC_RELAY_OPTIONS_INIT { .size = sizeof(struct mlc_relay_options) }

struct mlc_relay_stats {
	size_t   size;		/* sizeof(struct mlc_relay_stats) */
	uint64_t published;	/* entries XADDed (purges for drops too) */
	uint64_t received;	/* entries read from the stream (any host) */
	uint64_t applied;	/* other hosts' entries applied here */
	uint64_t own;		/* entries of this host, skipped */
	uint64_t gaps;		/* times entries may have been missed
				 * (trimmed, Redis restarted, cut off too
				 * long): every namespace purged */
	uint64_t reconnects;	/* connections made after the first (both
				 * threads) */
	uint64_t dropped;	/* events dropped by a full queue (or not
				 * published by the flush deadline at stop) */
	uint64_t drop_purges;	/* PURGE entries published for drops */
	uint64_t offline_purges; /* purges while cut off (max_offline_ms) */
	uint64_t ns_purged;	/* local namespace purges done (all reasons) */
	uint64_t errors;	/* Redis errors, bad entries, failed applies */
	uint64_t queued;	/* events in the queue now */
	uint64_t queue_max;	/* the most it ever held */
	uint32_t connected;	/* MLC_RELAY_PUBLISH / _SUBSCRIBE bits of
				 * the threads connected now */
	uint32_t pad0;
	int64_t  last_read_ms;	/* ms since the subscriber's last good
				 * read; -1 if never */
	/* append below */
};
#define MLC_RELAY_STATS_INIT { .size = sizeof(struct mlc_relay_stats) }

/**
 * Start relaying for @p arena: installs the arena's event hook (unless
 * MLC_RELAY_NO_HOOK) and starts the threads @p opts->mode asks for.  It
 * does not wait for Redis: the threads connect (and reconnect) by
 * themselves.  One relay per arena handle.  The threads block SIGPIPE: a
 * connection Redis closed is an error there, not a signal to the process
 * (the application need not ignore SIGPIPE); their sockets are
 * close-on-exec.
 *
 * fork(): a child inherits the hook but not the threads; the first change
 * made in the child, or its first mlc_relay_stats(), starts a publish-only
 * relay there, which connects at once (the parent keeps publishing what it
 * had queued and keeps subscribing).  If its thread cannot start, the next
 * change or mlc_relay_stats() tries again, at most once a second; the
 * changes wait in the queue meanwhile.
 *
 * @return 0 and *@p relayp, or -EINVAL (no host_id, bad options), -E2BIG
 *   (options from a newer mlc-relay), -ENOMEM, or a -errno from
 *   pthread_create().  Every option is checked before anything is made:
 *   a refused start leaves no relay, thread or hook behind.
 */
int mlc_relay_start(struct mlc_relay **relayp, struct mlc_arena *arena,
		    const struct mlc_relay_options *opts);

/**
 * Stop: remove the hook, publish what is queued (for at most flush_ms:
 * anything left is counted as dropped), stop the threads, free the relay.
 * Call it when no other thread is inside a mlc_set/delete/purge on the
 * arena (as with mlc_arena_set_event_hook()).  If @p stats is not NULL it
 * receives the final counters.  @return 0, or -EINVAL.
 */
int mlc_relay_stop(struct mlc_relay *relay, struct mlc_relay_stats *stats);

/** Copy the counters.  Thread-safe.  In a child forked after
 * mlc_relay_start(), the first call starts its publisher (fork(), above),
 * unless a change did.  @return 0, or -EINVAL. */
int mlc_relay_stats(struct mlc_relay *relay, struct mlc_relay_stats *stats);

/** Format @p st as one line of "name=value" pairs: the fields its size
 * holds (a struct of an older mlc-relay.h has fewer).  @return the
 * length. */
int mlc_relay_stats_format(const struct mlc_relay_stats *st, char *buf,
			   size_t cap);

/**
 * Queue one event for publication, as the installed hook does (for an
 * application that has its own event hook, with MLC_RELAY_NO_HOOK).
 * Never blocks on the network.  @return 0, -EINVAL, or -ENOBUFS (queue
 * full: dropped, and a PURGE of its namespace will be published).
 */
int mlc_relay_event(struct mlc_relay *relay, const struct mlc_event *ev);

/** The last connection or Redis error (a static-size copy into @p buf). */
void mlc_relay_last_error(struct mlc_relay *relay, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* MLC_RELAY_H */
