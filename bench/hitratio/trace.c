/*
 * Trace generation.  Zipf ranks come from rejection-inversion sampling
 * (W. Hörmann, G. Derflinger, "Rejection-inversion to generate variates
 * from monotone discrete distributions", 1996): O(1) per sample and no
 * table, so key spaces of tens of millions cost nothing to set up.  Rank r
 * (1 = most popular) is key id r - 1 within its key range.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

uint64_t
hr_mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

uint64_t
hr_rand(uint64_t *state)
{
	*state += UINT64_C(0x9e3779b97f4a7c15);
	return hr_mix(*state - UINT64_C(0x9e3779b97f4a7c15));
}

static double
unit(uint64_t *state)
{
	return (double)(hr_rand(state) >> 11) * 0x1.0p-53;
}

/* ---- Zipf by rejection-inversion ----------------------------------- */

struct zipf {
	double a;		/* exponent */
	uint32_t n;
	double h_x1, h_n, s;
};

/* (e^x - 1) / x and log(1 + x) / x, both tending to 1 at 0. */
static double
expm1_over(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x / 2 + x * x / 6;
}

static double
log1p_over(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x / 2 + x * x / 3;
}

/* H(x): an integral of x^-a (shifted so that it is smooth at a = 1). */
static double
zipf_hint(const struct zipf *z, double x)
{
	double lx = log(x);

	return expm1_over((1 - z->a) * lx) * lx;
}

static double
zipf_h(const struct zipf *z, double x)
{
	return exp(-z->a * log(x));
}

static double
zipf_hinv(const struct zipf *z, double x)
{
	double t = x * (1 - z->a);

	if (t < -1)
		t = -1;		/* rounding at the edge of the domain */
	return exp(log1p_over(t) * x);
}

static void
zipf_init(struct zipf *z, double a, uint32_t n)
{
	z->a = a;
	z->n = n;
	z->h_x1 = zipf_hint(z, 1.5) - 1;
	z->h_n = zipf_hint(z, n + 0.5);
	z->s = 2 - zipf_hinv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
}

/* A rank in [1, n]. */
static uint32_t
zipf_next(const struct zipf *z, uint64_t *rng)
{
	for (;;) {
		double u = z->h_n + unit(rng) * (z->h_x1 - z->h_n);
		double x = zipf_hinv(z, u);
		double k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		if (k - x <= z->s || u >= zipf_hint(z, k + 0.5) - zipf_h(z, k))
			return (uint32_t)k;
	}
}

/* ---- traces --------------------------------------------------------- */

uint32_t
hr_vlen(const struct hr_trace *t, uint32_t id)
{
	double u;

	if (t->split)
		return id < t->split ? t->vmax : t->vmin;
	if (t->vmin == t->vmax)
		return t->vmin;
	u = (double)(hr_mix(id ^ UINT64_C(0x5a17e5)) >> 11) * 0x1.0p-53;
	return (uint32_t)exp(log(t->vmin) +
			     u * (log(t->vmax + 1.0) - log(t->vmin)));
}

/* A permutation of [0, w) that spreads ranks over a window (w > 0):
 * multiplication by an odd constant modulo a power of two, skipping what
 * falls outside. */
static uint32_t
spread(uint32_t r, uint32_t w)
{
	uint64_t m = 1;

	while (m < w)
		m <<= 1;
	do
		r = (uint32_t)(((uint64_t)r * 0x9e3779b1u + 0x7f4a7c15u) &
			       (m - 1));
	while (r >= w);
	return r;
}

static uint32_t
obj_bytes(uint32_t vlen)
{
	return (HR_ITEM_HDR + HR_KEY + vlen + 7) & ~7u;
}

double
hr_mean_obj(const struct hr_spec *s)
{
	struct hr_trace t = { .vmin = s->vmin, .vmax = s->vmax };
	double sum = 0;

	if (s->kind == HR_SIZESHIFT) {
		/* Half the bytes in each size: keys in inverse proportion. */
		double b = obj_bytes(s->vmax), m = obj_bytes(s->vmin);

		return 2 * b * m / (b + m);
	}
	for (uint32_t id = 0; id < 100000; id++)
		sum += obj_bytes(hr_vlen(&t, id));
	return sum / 100000;
}

int
hr_trace_make(struct hr_trace *t, const struct hr_spec *s, uint32_t keys,
	      uint64_t n, uint64_t seed)
{
	uint64_t rng = seed ^ hr_mix((uint64_t)s->kind << 32 |
				     (uint64_t)(s->alpha * 1000));
	struct zipf z, z2;
	uint8_t *seen;
	uint32_t span = keys, scan_next = keys, win = keys, base = 0;
	uint64_t period = 0, scan_len = 0, phase_len = 0;

	memset(t, 0, sizeof(*t));
	t->name = s->name;
	t->vmin = s->vmin;
	t->vmax = s->vmax;
	t->n = n;
	switch (s->kind) {
	case HR_SCAN:
		/* A scan of keys/10 fresh keys after every keys/2 requests. */
		period = keys / 2;
		scan_len = keys / 10;
		span = keys + (uint32_t)((n / (period + scan_len) + 1) *
					 scan_len);
		break;
	case HR_SHIFT:
		/* 16 phases; the window moves by half its width each. */
		win = (uint32_t)(2 * (uint64_t)keys / 17);
		phase_len = n / 16 + 1;
		break;
	case HR_SIZESHIFT:
		/* As many bytes of large values as of small ones. */
		t->split = (uint32_t)((double)keys * obj_bytes(s->vmin) /
				      (obj_bytes(s->vmin) + obj_bytes(s->vmax)));
		if (t->split == 0)
			t->split = 1;
		win = t->split;
		zipf_init(&z2, s->alpha, keys > t->split + 1 ?
					 keys - t->split : 1);
		break;
	default:
		break;
	}
	zipf_init(&z, s->alpha, win);
	t->req = malloc(n * sizeof(*t->req));
	if (t->req == NULL)
		return -ENOMEM;
	for (uint64_t i = 0, in_period = 0; i < n; i++) {
		switch (s->kind) {
		case HR_LOOP:
			t->req[i] = (uint32_t)(i % keys);
			continue;
		case HR_SCAN:
			if (in_period >= period) {
				t->req[i] = scan_next++;
				if (++in_period >= period + scan_len)
					in_period = 0;
				continue;
			}
			in_period++;
			break;
		case HR_SHIFT:
			base = (uint32_t)(i / phase_len) * (win / 2);
			t->req[i] = base + spread(zipf_next(&z, &rng) - 1, win);
			continue;
		case HR_SIZESHIFT:
			if (i >= n / 2) {
				t->req[i] = t->split + zipf_next(&z2, &rng) - 1;
				continue;
			}
			break;
		default:
			break;
		}
		t->req[i] = zipf_next(&z, &rng) - 1;
	}
	if (s->kind == HR_SCAN)
		span = scan_next;
	else if (s->kind == HR_SHIFT)
		span = base + win;
	else if (s->kind == HR_SIZESHIFT)
		span = t->split + z2.n;
	t->nkeys = span;
	t->bytes = malloc((size_t)span * sizeof(*t->bytes));
	seen = calloc(span, 1);
	if (t->bytes == NULL || seen == NULL) {
		free(seen);
		hr_trace_free(t);
		return -ENOMEM;
	}
	for (uint32_t id = 0; id < span; id++)
		t->bytes[id] = obj_bytes(hr_vlen(t, id));
	for (uint64_t i = 0; i < n; i++) {
		uint32_t id = t->req[i];

		if (!seen[id]) {
			seen[id] = 1;
			t->distinct++;
			t->footprint += t->bytes[id];
		}
	}
	free(seen);
	return 0;
}

void
hr_trace_free(struct hr_trace *t)
{
	free(t->req);
	free(t->bytes);
	t->req = NULL;
	t->bytes = NULL;
}
