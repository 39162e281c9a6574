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

	srand(1);
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

/* The doubling up to the max, from a small min. */
static int
test_backoff_doubles(void)
{
	struct mlc_relay r = { .bo_min = 100, .bo_max = 5000 };
	uint32_t cur = 0, want[] = { 200, 400, 800, 1600, 3200, 5000, 5000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t base = cur ? cur : r.bo_min;
		uint64_t d = backoff_next(&r, &cur);

		CHECK(d >= base - base / 8 && d <= base + base / 8,
		      "delay %llu for %llu", (unsigned long long)d,
		      (unsigned long long)base);
		CHECK(cur == want[i], "back-off %u, wanted %u", cur, want[i]);
	}
	return 0;
}

#define TEST(fn) { #fn, fn }

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	TEST(test_backoff_near_2_32),
	TEST(test_backoff_doubles),
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
