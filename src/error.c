/*
 * Error codes and their texts, from one list so that they cannot drift.
 */
#include <string.h>

#include "mlc-int.h"

#define MLC_ERRNO_MAP(X)						\
	X(MLC_EFORMAT, "arena made by an incompatible mlc build")	\
	X(MLC_ECORRUPT, "arena failed validation")			\
	X(MLC_ELOADER, "loader failed and no stale value was available") \
	X(MLC_ECODEC, "codec could not decode the value")		\
	X(MLC_ESTALE, "write fenced out: the key changed meanwhile")	\
	X(MLC_EMISMATCH, "the arena exists with another size or layout") \
	X(-EINVAL, "invalid argument")					\
	X(-ENOENT, "not found")						\
	X(-ENOBUFS, "buffer too small")					\
	X(-E2BIG, "key or value over the limit, or options from a newer mlc") \
	X(-ENOSPC, "no room: the arena is full and nothing could be "	\
		   "evicted, its namespace table is full, or the file "	\
		   "system cannot hold the arena")				\
	X(-ETIMEDOUT, "gave up waiting for another process")		\
	X(-EDEADLK, "a loader asked for its own key")			\
	X(-EEXIST, "arena exists")					\
	X(-EACCES, "permission denied, or arena owned by another user") \
	X(-ENOMEM, "out of memory")					\
	X(-EAGAIN, "not ready yet, try again")				\
	X(-ENOSYS, "not implemented")					\
	X(-EPERM, "not permitted: a write on a read-only arena handle, " \
		  "or the system refused")					\
	X(-EBUSY, "busy: lost the race too many times (try again), or "	\
		  "the arena is still mapped (unlink of an unused one)") \
	X(-EOVERFLOW, "the arena's version counter is spent")		\
	X(-ELOOP, "loaders nested too deeply")

MLC_EXPORT const char *
mlc_strerror(int code)
{
#define X(c, text)	\
	case c:		\
		return text;
	switch (code) {
	case 0:
		return "success";
	MLC_ERRNO_MAP(X)
	}
#undef X
	if (code < 0 && code > -4096)
		return strerror(-code);	/* glibc: a static string */
	return "unknown error";
}
