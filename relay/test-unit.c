/*
 * relay-test-unit: the relay's arithmetic, without Redis.  It includes
 * relay.c to reach its static functions.
 */
#include "relay.c"

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "FAIL %s:%d: ", __func__,        \
				__LINE__);                               \
			fprintf(stderr, __VA_ARGS__);                    \
			fputc('\n', stderr);                             \
			return 1;                                        \
		}                                                        \
	} while (0)

/*
 * review AF: backoff_next() computed the delay, 7/8 to 9/8 of the current
 * back-off, in 32 bits: with a back-off near 2^32 - 1 ms (backoff_max_ms
 * and --backoff-max-ms take it) 9/8 of it wrapped, to a delay of 0 to
 * 2^29 ms, as likely as not.
 */
static int
test_backoff_near_2_32(void)
{
	struct mlc_relay r = { .bo_min = UINT32_MAX - 1000,
			       .bo_max = UINT32_MAX };
	uint64_t lo = (uint64_t)UINT32_MAX - UINT32_MAX / 8;

	for (int i = 0; i < 1000; i++) {
		uint32_t cur = i & 1 ? UINT32_MAX : 0;
		uint64_t d = backoff_next(&r, &cur);

		CHECK(d >= lo - 1000 && d <= (uint64_t)UINT32_MAX * 9 / 8 + 1,
		      "delay %llu ms for a back-off of about 2^32 ms",
		      (unsigned long long)d);
		CHECK(cur == UINT32_MAX, "next back-off %u", cur);
	}
	return 0;
}

/* The jitter takes no number out of the application's rand() sequence,
 * which srand() makes repeatable (it called rand() until 2026-12-07). */
static int
test_jitter_leaves_rand(void)
{
	struct mlc_relay r = { .bo_min = 100, .bo_max = 5000 };
	uint32_t cur = 0;
	int first, again;

	srand(7);
	first = rand();
	srand(7);
	(void)backoff_next(&r, &cur);
	again = rand();
	CHECK(first == again, "rand() gave %d after a back-off, %d without",
	      again, first);
	return 0;
}

/* The doubling up to the max, from a small min. */
static int
test_backoff_doubles(void)
{
	struct mlc_relay r = { .bo_min = 100, .bo_max = 5000 };
	uint32_t cur = 0, want[] = { 200, 400, 800, 1600, 3200, 5000, 5000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t base = cur ? cur : r.bo_min;
		uint64_t d = backoff_next(&r, &cur);

		/* 7/8 of it, plus a jitter of up to a quarter, each
		 * rounded down: 88 to 113 ms for 100 */
		CHECK(d >= base - base / 8 && d <= base - base / 8 + base / 4,
		      "delay %llu for %llu", (unsigned long long)d,
		      (unsigned long long)base);
		CHECK(cur == want[i], "back-off %u, wanted %u", cur, want[i]);
	}
	return 0;
}

static struct sid
id(uint64_t ms)
{
	return (struct sid){ ms, 0 };
}

/* A stream of Redis 7 whose first entry is @p first (0: empty). */
static struct stream_look
look(uint64_t first, uint64_t last_gen, uint64_t added, uint64_t length)
{
	struct stream_look sl = { .has_first = first != 0,
				  .last_gen = id(last_gen),
				  .first = id(first), .counted = true,
				  .added = added, .length = length };

	sl.removed = added > length;
	return sl;
}

/*
 * review AF: the check behind each XREAD took a first entry above the
 * entry read before the XREAD for a gap.  The XINFO STREAM behind it runs
 * once the XREAD is served, and other clients' commands may run in
 * between: a trim there of entries just read (an XADD with MAXLEN 1 right
 * after the one the XREAD got) lost nothing, and purged everything.  With
 * Redis 7's counts the removed entries (entries-added - length) tell.
 */
static int
test_trim_after_read_counted(void)
{
	struct mlc_relay r = { .arena = NULL };
	struct sid before = id(1), last = id(2);
	struct stream_look sl;
	uint64_t gone;

	sync_init(&r);
	/* Entries 1 (read before), 2 (read now), 3 (MAXLEN 1): entries
	 * 1 and 2 removed, both read. */
	sl = look(3, 3, 3, 1);
	gone = 1 + 1 - 0;
	CHECK(!stream_gap(&r, &sl, &before, &last, &gone), "spurious gap");
	/* Unknown counts (older Redis): a gap, as before. */
	CHECK(stream_gap(&r, &sl, &before, &last, NULL), "no gap uncounted");
	/* Entries 2 to 7 added with MAXLEN 3 before the XREAD was served:
	 * it read 5, 6, 7; 2, 3, 4 lost. */
	last = id(7);
	sl = look(5, 7, 7, 3);
	gone = 1 + 3 - 3;
	CHECK(stream_gap(&r, &sl, &before, &last, &gone), "loss unseen");
	/* Read 2 and 3; then 4 added and 2 to 4 trimmed (MAXLEN 1 with 5):
	 * 4 lost. */
	last = id(3);
	sl = look(5, 5, 5, 1);
	gone = 1 + 2 - 0;
	CHECK(stream_gap(&r, &sl, &before, &last, &gone), "loss unseen");
	/* The stream made anew with IDs above ours, on reconnecting: its
	 * counts are its own. */
	before = last = id(5);
	sl = look(7, 16, 10, 10);
	gone = 5;
	CHECK(stream_gap(&r, &sl, &before, &last, &gone), "new stream");
	/* Nothing past the position removed. */
	sl = look(4, 9, 9, 6);
	gone = 5;
	CHECK(!stream_gap(&r, &sl, &before, &last, &gone), "spurious gap");
	/* At 0-0 (the stream was missing): entries 1 to 3 read, then all
	 * trimmed, nothing lost; or 1 to 6 added with MAXLEN 3 first. */
	before = id(0);
	last = id(3);
	sl = look(0, 3, 3, 0);
	gone = 0 + 3 - 0;
	CHECK(!stream_gap(&r, &sl, &before, &last, &gone), "spurious gap");
	last = id(6);
	sl = look(4, 6, 6, 3);
	gone = 0 + 3 - 3;
	CHECK(stream_gap(&r, &sl, &before, &last, &gone), "loss unseen");
	return 0;
}

/*
 * review AI: mlc_relay_stats() copied its struct over the caller's, size
 * field first, then took the smaller of that field (its own size by then)
 * and its own: a program built against an older mlc-relay.h (a shorter
 * struct mlc_relay_stats: "append below") got the library's size in its
 * size field, and its next call with the same struct was written past the
 * struct's end.
 */
static int
test_stats_older_struct(void)
{
	struct mlc_relay r;
	unsigned char buf[sizeof(struct mlc_relay_stats) + 64];
	size_t old = offsetof(struct mlc_relay_stats, last_read_ms), now;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.mu, NULL);
	r.last_read_at = -1;
	memset(buf, 0xee, sizeof(buf));
	memcpy(buf, &old, sizeof(old));
	for (int call = 1; call <= 2; call++) {
		CHECK(mlc_relay_stats(&r, (struct mlc_relay_stats *)buf) == 0,
		      "call %d failed", call);
		memcpy(&now, buf, sizeof(now));
		CHECK(now <= old, "call %d set size to %zu, the struct has %zu",
		      call, now, old);
		for (size_t i = old; i < sizeof(buf); i++)
			CHECK(buf[i] == 0xee, "call %d wrote byte %zu of a "
			      "%zu-byte struct", call, i, old);
	}
	pthread_mutex_destroy(&r.mu);
	return 0;
}

/* mlc_relay_stats_format() of a stats struct of an older mlc-relay.h:
 * it reads the fields the struct's size holds, and no byte past them
 * (it printed every field of this build's struct, last_read_ms from the
 * bytes after the caller's struct: review AL). */
static int
test_format_older_struct(void)
{
	unsigned char buf[sizeof(struct mlc_relay_stats) + 64];
	size_t old = offsetof(struct mlc_relay_stats, last_read_ms);
	struct mlc_relay_stats *st = (struct mlc_relay_stats *)(void *)buf;
	char line[512];

	memset(buf, 0xee, sizeof(buf));
	memset(buf, 0, old);
	memcpy(buf, &old, sizeof(old));
	st->published = 7;
	mlc_relay_stats_format(st, line, sizeof(line));
	CHECK(strstr(line, "published=7 ") != NULL, "formatted: %s", line);
	CHECK(strstr(line, "last_read_ms") == NULL,
	      "a %zu-byte struct formatted with a field past its end: %s",
	      old, line);
	return 0;
}

#define TEST(fn) { #fn, fn }

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	TEST(test_backoff_near_2_32),
	TEST(test_backoff_doubles),
	TEST(test_jitter_leaves_rand),
	TEST(test_trim_after_read_counted),
	TEST(test_stats_older_struct),
	TEST(test_format_older_struct),
};

int
main(void)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int failed = tests[i].fn();

		printf("%s %s\n", failed ? "FAIL" : "ok", tests[i].name);
		rc |= failed;
	}
	return rc;
}
