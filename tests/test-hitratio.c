/*
 * The hit-ratio bench's reference policies (bench/hitratio/sim.c) on cases
 * whose answer is known, so the references the bench compares mlc with are
 * right: an LRU one object too small for a loop misses every request; a
 * CLOCK does too; every policy that holds the whole loop misses only the
 * first pass; S3-FIFO and W-TinyLFU beat LRU on a Zipf trace with scans.
 * Counts only: nothing is timed.
 */
#include "common.h"

#include "../bench/hitratio/sim.h"
#include "../bench/hitratio/trace.h"

static uint64_t
misses(enum hr_policy p, const struct hr_trace *t, uint64_t cap)
{
	struct hr_sim *s = hr_sim_new(p, cap, t->nkeys);
	uint64_t m = 0;

	assert_non_null(s);
	for (uint64_t i = 0; i < t->n; i++)
		m += !hr_sim_access(s, t->req[i], t->bytes[t->req[i]]);
	hr_sim_free(s);
	return m;
}

static void
test_loop_one_too_big(void **state)
{
	const struct hr_spec loop = { "loop", HR_LOOP, 0, 64, 64 };
	struct hr_trace t;
	uint64_t obj;

	(void)state;
	assert_int_equal(hr_trace_make(&t, &loop, 1000, 20000, 1), 0);
	obj = t.bytes[0];
	/* Room for 999 objects: LRU and CLOCK evict each key just before
	 * it comes back. */
	assert_int_equal(misses(HR_LRU, &t, 999 * obj), t.n);
	assert_int_equal(misses(HR_CLOCK, &t, 999 * obj), t.n);
	/* Room for all: only the first pass misses, whatever the policy. */
	for (int p = 0; p < HR_NPOLICIES; p++)
		assert_int_equal(misses(p, &t, 1000 * obj), 1000);
	hr_trace_free(&t);
}

static void
test_scan_resistance(void **state)
{
	const struct hr_spec scan = { "scan", HR_SCAN, 0.9, 64, 64 };
	struct hr_trace t;
	uint64_t lru, s3, tl, cap;

	(void)state;
	assert_int_equal(hr_trace_make(&t, &scan, 100000, 300000, 42), 0);
	cap = t.footprint / 10;
	lru = misses(HR_LRU, &t, cap);
	s3 = misses(HR_S3FIFO, &t, cap);
	tl = misses(HR_TINYLFU, &t, cap);
	print_message("scan, 10%%: LRU %.4f S3-FIFO %.4f W-TinyLFU %.4f\n",
		      (double)lru / t.n, (double)s3 / t.n, (double)tl / t.n);
	assert_true(s3 < lru);
	assert_true(tl < lru);
	hr_trace_free(&t);
}

static void
test_zipf_deterministic(void **state)
{
	const struct hr_spec z = { "zipf", HR_ZIPF, 1.0, 16, 1024 };
	struct hr_trace a, b;

	(void)state;
	assert_int_equal(hr_trace_make(&a, &z, 10000, 50000, 7), 0);
	assert_int_equal(hr_trace_make(&b, &z, 10000, 50000, 7), 0);
	assert_memory_equal(a.req, b.req, a.n * sizeof(*a.req));
	assert_int_equal(a.footprint, b.footprint);
	/* Rank 1 is the most requested key. */
	{
		uint64_t c0 = 0, c1 = 0;

		for (uint64_t i = 0; i < a.n; i++) {
			c0 += a.req[i] == 0;
			c1 += a.req[i] == 1;
		}
		assert_true(c0 > c1);
	}
	hr_trace_free(&a);
	hr_trace_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_one_too_big),
		cmocka_unit_test(test_scan_resistance),
		cmocka_unit_test(test_zipf_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
