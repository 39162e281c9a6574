/*
 * The UTF-8 check that mlcctl and mlc-server share when they print names
 * and keys (any bytes) as text or JSON.  Internal: not installed, not part
 * of the API.  The nginx module keeps its own copy (examples/nginx/README.md
 * says why).
 */
#ifndef MLC_TOOLS_UTF8_H
#define MLC_TOOLS_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the well-formed UTF-8 sequence at @p p (@p left bytes, at
 * least 1), or 0 if there is none: a stray byte, an overlong form, a
 * surrogate, past U+10FFFF or cut short.  The second byte's range carries
 * the overlong, surrogate and U+10FFFF limits (RFC 3629's table), so no
 * code point is assembled.  static inline: each program uses it, and a
 * program that did not would get no unused-function warning. */
static inline size_t
utf8_len(const unsigned char *p, size_t left)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Whether the @p n bytes at @p p, a sequence utf8_len() accepted, are a C1
 * control (U+0080 to U+009F): well-formed, but no more printable than the
 * C0 controls, and a terminal may act on one (U+009B is CSI, as ESC [ is).
 * Text for humans escapes them with the C0 controls. */
static inline bool
utf8_is_c1(const unsigned char *p, size_t n)
{
	return n == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
}

#endif /* MLC_TOOLS_UTF8_H */
