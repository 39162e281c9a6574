/*
 * Values that check themselves, for tests that cannot know which of many
 * racing writes a reader will see (tests/test-faults.c, tests/stress.c).
 *
 *   kid:32 | ver:32 | body (derived from kid and ver) | hash:64
 *
 * A reader tells a torn, mixed-up or misdirected value from a good one by
 * itself: the hash covers everything before it, the key id says whose value
 * it is, and the body must be the one kid and ver generate.
 */
#ifndef MLC_TEST_CHECKVAL_H
#define MLC_TEST_CHECKVAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CV_MIN 16		/* smallest self-checking value */

enum cv_bad {
	CV_OK = 0,
	CV_BADLEN,		/* shorter than CV_MIN, or NULL */
	CV_BADHASH,		/* torn or overwritten bytes */
	CV_WRONGKEY,		/* intact, but another key's value */
	CV_BADBODY,		/* the hash matched a wrong body (!) */
};

static inline const char *
cv_what(int bad)
{
	static const char *const names[] = {
		"ok", "bad length", "bad hash (torn bytes)", "wrong key",
		"bad body",
	};

	return bad >= 0 && bad <= CV_BADBODY ? names[bad] : "?";
}

static inline uint64_t
cv_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static inline uint64_t
cv_hash(const unsigned char *p, size_t n)
{
	uint64_t h = cv_mix(n ^ UINT64_C(0x6a09e667f3bcc909));
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = cv_mix(h ^ w) + i;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return cv_mix(h);
}

/* The body, 8 bytes at a time: word i of the body is mix(x + i). */
static inline void
cv_body(unsigned char *p, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = cv_mix(x + i);

		memcpy(p + i, &w, n - i < 8 ? n - i : 8);
	}
}

/* Fill @p buf (@p len >= CV_MIN bytes) with the value of (kid, ver). */
static inline void
cv_make(void *buf, size_t len, uint32_t kid, uint32_t ver)
{
	unsigned char *p = buf;
	uint64_t h;

	memcpy(p, &kid, 4);
	memcpy(p + 4, &ver, 4);
	cv_body(p + 8, len - 16, (uint64_t)kid << 32 | ver);
	h = cv_hash(p, len - 8);
	memcpy(p + len - 8, &h, 8);
}

/* Check a value read for key @p kid; CV_OK and *@p verp, or what is wrong. */
static inline int
cv_check(const void *data, size_t len, uint32_t kid, uint32_t *verp)
{
	const unsigned char *p = data;
	unsigned char body[64];
	uint32_t k, ver;
	uint64_t h, x;

	if (data == NULL || len < CV_MIN)
		return CV_BADLEN;
	memcpy(&h, p + len - 8, 8);
	if (cv_hash(p, len - 8) != h)
		return CV_BADHASH;
	memcpy(&k, p, 4);
	memcpy(&ver, p + 4, 4);
	if (k != kid)
		return CV_WRONGKEY;
	x = (uint64_t)k << 32 | ver;
	for (size_t i = 8; i < len - 8; i += sizeof(body)) {
		size_t n = len - 8 - i < sizeof(body) ? len - 8 - i : sizeof(body);

		cv_body(body, n, x + (i - 8));
		if (memcmp(body, p + i, n) != 0)
			return CV_BADBODY;
	}
	if (verp != NULL)
		*verp = ver;
	return CV_OK;
}

#endif
