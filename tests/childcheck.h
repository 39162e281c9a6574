/*
 * Checks for code that runs in a forked child, where cmocka's asserts
 * cannot report (they longjmp into a parent's test runner the child does
 * not have): a failed check prints where and why, and exits the child
 * with status 10, which the parent's t_fork()/t_wait() sees.
 */
#ifndef MLC_TEST_CHILDCHECK_H
#define MLC_TEST_CHILDCHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CK_EXIT 10		/* a child's exit status for a failed check */

static void ck_fail_at(const char *file, int line, const char *what,
		       long long a, long long b) __attribute__((noreturn));

static inline void
ck_fail_at(const char *file, int line, const char *what, long long a,
	   long long b)
{
	fprintf(stderr, "%s:%d: check failed in pid %ld: %s (%lld vs %lld)\n",
		file, line, (long)getpid(), what, a, b);
	fflush(stderr);
	_exit(CK_EXIT);
}

#define ck_fail(line, what, a, b) ck_fail_at(__FILE__, (line), (what), (a), (b))

/* @p c holds. */
#define CK(c) do { if (!(c)) ck_fail(__LINE__, #c, 1, 0); } while (0)

/* @p a == @p b, as integers. */
#define CKI(a, b) do {							\
	long long a_ = (long long)(a), b_ = (long long)(b);		\
	if (a_ != b_)							\
		ck_fail(__LINE__, #a " == " #b, a_, b_);		\
} while (0)

/* struct mlc_value @p v holds exactly the bytes of the string @p s. */
#define CKV(v, s) do {							\
	const char *s_ = (s);						\
	if ((v).data == NULL || (v).len != strlen(s_) ||		\
	    memcmp((v).data, s_, (v).len) != 0) {			\
		fprintf(stderr, "%s:%d: value \"%.*s\", expected "	\
			"\"%s\"\n", __FILE__, __LINE__,			\
			(v).data ? (int)(v).len : 6,			\
			(v).data ? (const char *)(v).data : "(null)", s_); \
		ck_fail(__LINE__, "value bytes", (long long)(v).len,	\
			(long long)strlen(s_));				\
	}								\
} while (0)

#endif
