/*
 * The only includer of xxhash.h.  XXH_INLINE_ALL makes every xxHash function
 * static, so libmlc exports no xxHash symbol and needs no libxxhash at run
 * time.
 */
#ifndef MLC_HASH_H
#define MLC_HASH_H

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdint.h>

/* The namespace index is mixed into the seed, so equal bytes in two
 * namespaces hash apart as well as comparing unequal. */
static inline uint64_t
mlc__hash(uint64_t seed, uint32_t ns, const void *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len,
				    seed ^ ((uint64_t)ns * UINT64_C(0x9e3779b97f4a7c15)));
}

#endif /* MLC_HASH_H */
