/*
 * Real processes on one arena:
 *   - writers and readers racing on the same keys, with room to spare and
 *     with the arena so small that writes evict and move pages all along;
 *   - creators racing on one fresh name;
 *   - writers killed with SIGKILL in the middle of whatever they were
 *     doing, then other processes using every key (and every size class:
 *     one victim writes bytes that look like chunk headers, to catch pages
 *     a dead writer left half-carved).
 *
 * Every value checks itself: an 8-byte header (key id, writer sequence), a
 * body derived from both, and a trailing 64-bit hash of everything before
 * it.  A reader can therefore tell a torn, mixed-up or misdirected value
 * from a good one without knowing what was written.  Each key has one
 * owning writer, whose sequence only grows, so a reader also checks that a
 * key never goes back in time.
 *
 * Children never call cmocka: they count, exit with a status, and leave
 * their counters in a shared anonymous mapping for the parent to assert on.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define VAL_MIN 16
#define VAL_MAX 2048
#define MAXP 16			/* processes per run */
#define CHILD_ALARM 30		/* a child that hangs this long dies */

/* ---- values that check themselves ----------------------------------- */

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static uint64_t
val_hash(const unsigned char *p, size_t n)
{
	uint64_t h = mix64(n ^ UINT64_C(0x6a09e667f3bcc909));
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = mix64(h ^ w) + i;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return mix64(h);
}

static unsigned char
body_byte(uint64_t x, size_t i)
{
	return (unsigned char)((x >> ((i & 7) * 8)) ^ (i * 131));
}

/* len in [VAL_MIN, VAL_MAX]: kid:32 | seq:32 | body | hash:64 */
static void
val_make(unsigned char *buf, size_t len, uint32_t kid, uint32_t seq)
{
	uint64_t x = mix64((uint64_t)kid << 32 | seq), h;

	memcpy(buf, &kid, 4);
	memcpy(buf + 4, &seq, 4);
	for (size_t i = 8; i < len - 8; i++)
		buf[i] = body_byte(x, i);
	h = val_hash(buf, len - 8);
	memcpy(buf + len - 8, &h, 8);
}

enum val_bad {
	VAL_OK = 0,
	VAL_BADLEN,		/* length outside what writers write */
	VAL_BADHASH,		/* torn or overwritten bytes */
	VAL_WRONGKEY,		/* intact, but another key's value */
	VAL_BADBODY,		/* hash matched a wrong body (!) */
	VAL_BACKWARDS,		/* older than a version already seen */
	VAL_NEGATIVE,		/* a negative entry nobody stored */
};

static const char *const val_bad_name[] = {
	"ok", "bad length", "bad hash (torn)", "wrong key", "bad body",
	"went backwards", "negative entry",
};

/* Check a value read for key @p kid; *seqp gets its sequence. */
static int
val_check(const void *data, size_t len, uint32_t kid, uint32_t *seqp)
{
	const unsigned char *p = data;
	uint32_t k, seq;
	uint64_t h, x;

	if (data == NULL || len < VAL_MIN || len > VAL_MAX)
		return VAL_BADLEN;
	memcpy(&h, p + len - 8, 8);
	if (val_hash(p, len - 8) != h)
		return VAL_BADHASH;
	memcpy(&k, p, 4);
	memcpy(&seq, p + 4, 4);
	if (k != kid)
		return VAL_WRONGKEY;
	x = mix64((uint64_t)k << 32 | seq);
	for (size_t i = 8; i < len - 8; i++)
		if (p[i] != body_byte(x, i))
			return VAL_BADBODY;
	*seqp = seq;
	return VAL_OK;
}

/* Sizes spread over every class from VAL_MIN to @p max, log-uniformly. */
static size_t
val_size(uint64_t r, size_t max)
{
	int shift = (int)(r % 8);
	size_t lo = (size_t)VAL_MIN << shift, sz;

	sz = lo + (size_t)((r >> 8) % lo);
	if (sz > max)
		sz = max;
	return sz < VAL_MIN ? VAL_MIN : sz;
}

static int
key_fmt(char *buf, size_t cap, uint32_t kid)
{
	return snprintf(buf, cap, "key:%u", kid);
}

static uint64_t
rng_next(uint64_t *s)
{
	*s += UINT64_C(0x9e3779b97f4a7c15);
	return mix64(*s);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- children ---------------------------------------------------------- */

/* cmocka catches SIGSEGV and friends and longjmps back into its runner: a
 * child that crashed would go on running the rest of the suite.  Children
 * die of their signals instead, which the parent sees as 128 + signal. */
static void
child_init(unsigned alarm_s)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	alarm(alarm_s);
}

/* ---- what children report -------------------------------------------- */

struct pstat {
	uint64_t reads, validated, misses, wrong, errors;
	uint64_t sets, set_nospc, set_errors, deletes, del_errors;
	uint64_t hits_l1, hits_l2;
	int32_t first_rc;		/* first unexpected return code */
	int32_t done;
	char msg[200];			/* the first error, in words */
	char wmsg[200];			/* the first wrong value */
};

struct shared {
	uint64_t stop;			/* writers stop when set */
	uint64_t validated_total;	/* readers stop at the target */
	struct pstat p[MAXP];
};

static struct shared *
shared_new(void)
{
	void *m = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	memset(m, 0, sizeof(struct shared));
	return m;
}

static void
shared_free(struct shared *sh)
{
	munmap(sh, sizeof(*sh));
}

/* What the parent holds during a test; the teardown releases it, so that a
 * failed assertion leaks nothing and leaves no arena behind. */
static struct {
	char name[64];		/* unlinked if set */
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct shared *sh;
} held;

static int
release(void **state)
{
	(void)state;
	if (held.c != NULL)
		mlc_cache_close(held.c);
	if (held.a != NULL)
		mlc_arena_close(held.a);
	if (held.sh != NULL)
		shared_free(held.sh);
	if (held.name[0] != '\0')
		mlc_arena_unlink(held.name, 0);
	memset(&held, 0, sizeof(held));
	return 0;
}

static void
note(struct pstat *ps, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
note(struct pstat *ps, int rc, const char *fmt, ...)
{
	va_list ap;

	if (ps->msg[0] != '\0')
		return;
	ps->first_rc = rc;
	va_start(ap, fmt);
	vsnprintf(ps->msg, sizeof(ps->msg), fmt, ap);
	va_end(ap);
}

static void
note_wrong(struct pstat *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
note_wrong(struct pstat *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->wmsg[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(ps->wmsg, sizeof(ps->wmsg), fmt, ap);
	va_end(ap);
}

/* ---- readers and writers on one arena --------------------------------- */

struct mix_cfg {
	const char *title;
	uint64_t arena_bytes;
	uint32_t max_items;
	uint32_t nkeys;
	int writers, readers;
	size_t val_max;
	int del_per_256;	/* deletes per 256 writer operations */
	uint64_t target;	/* validated reads, all readers together */
	uint64_t min_writer_ops;	/* and each writer's sets + deletes */
	uint64_t cap_ms;	/* and the time cap */
};

struct role {
	const struct mix_cfg *cfg;
	const char *name;	/* the arena's */
	struct shared *sh;
	int idx;		/* in sh->p */
	int id;			/* writer id, or reader id */
	uint32_t cache_flags;
	uint64_t deadline;	/* CLOCK_MONOTONIC ms: stop if need is met */
	uint64_t need;		/* validated reads the test requires */
};

/* How much longer than cap_ms a run that has not met its needs goes on
 * (a loaded machine, a sanitizer) before it stops and fails. */
#define CAP_MORE 2

static struct mlc_arena *
attach(const char *name, struct pstat *ps)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	int rc = mlc_arena_open(&a, name, &o);

	if (rc != 0) {
		note(ps, rc, "attach %s: %s", name, mlc_strerror(rc));
		return NULL;
	}
	return a;
}

static struct mlc_cache *
cache_on(struct mlc_arena *a, uint32_t flags, struct pstat *ps)
{
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;
	int rc;

	co.flags = flags;
	co.ttl_ms = MLC_TTL_NEVER;
	co.lru_size = 128;	/* smaller than the key set: L1 and L2 hits */
	rc = mlc_cache_open(&c, a, "mp", &co);
	if (rc != 0) {
		note(ps, rc, "cache_open: %s", mlc_strerror(rc));
		return NULL;
	}
	return c;
}

static int
writer_main(void *arg)
{
	const struct role *r = arg;
	const struct mix_cfg *cfg = r->cfg;
	struct pstat *ps = &r->sh->p[r->idx];
	unsigned char buf[VAL_MAX];
	uint64_t rng = (uint64_t)getpid() << 20 ^ (uint64_t)r->id;
	uint32_t seq = 0, owned = 0;
	struct mlc_arena *a;
	struct mlc_cache *c;
	char key[32];

	child_init((unsigned)((CAP_MORE + 1) * cfg->cap_ms / 1000) +
		   CHILD_ALARM);
	if ((a = attach(r->name, ps)) == NULL ||
	    (c = cache_on(a, 0, ps)) == NULL)
		return 2;
	for (uint32_t kid = (uint32_t)r->id; kid < cfg->nkeys;
	     kid += (uint32_t)cfg->writers)
		owned++;
	while (!__atomic_load_n(&r->sh->stop, __ATOMIC_RELAXED)) {
		uint64_t x = rng_next(&rng);
		uint32_t kid = (uint32_t)(x % owned) * (uint32_t)cfg->writers +
			       (uint32_t)r->id;
		int klen = key_fmt(key, sizeof(key), kid), rc;

		if ((seq & 1023) == 0 &&
		    now_ms() > r->deadline + CAP_MORE * cfg->cap_ms + 10000)
			break;		/* the parent is gone or stuck */
		seq++;
		if ((int)((x >> 40) & 255) < cfg->del_per_256) {
			rc = mlc_delete(c, key, (size_t)klen);
			ps->deletes++;
			if (rc != 0) {
				ps->del_errors++;
				note(ps, rc, "delete %s: %s", key,
				     mlc_strerror(rc));
			}
			continue;
		}
		/* The size mix shifts every 16k sets (values up to a 16th
		 * of the largest, then all sizes again), so that a full
		 * arena must move pages between size classes. */
		size_t len = val_size(x >> 12, (seq >> 14) & 1 ?
					       cfg->val_max / 16 :
					       cfg->val_max);

		val_make(buf, len, kid, seq);
		rc = mlc_set(c, key, (size_t)klen, buf, len, NULL);
		ps->sets++;
		if (rc == -ENOSPC) {
			ps->set_nospc++;
		} else if (rc != 0) {
			ps->set_errors++;
			note(ps, rc, "set %s (%zu B): %s", key, len,
			     mlc_strerror(rc));
		}
	}
	mlc_cache_close(c);
	mlc_arena_close(a);
	ps->done = 1;
	return 0;
}

/* Every writer has made the run's minimum of operations (a reader on a
 * loaded machine may reach its target before the writers got far). */
static bool
writers_did(const struct role *r)
{
	for (int i = 0; i < r->cfg->writers; i++) {
		const struct pstat *ps = &r->sh->p[i];

		if (__atomic_load_n(&ps->sets, __ATOMIC_RELAXED) +
		    __atomic_load_n(&ps->deletes, __ATOMIC_RELAXED) <
		    r->cfg->min_writer_ops)
			return false;
	}
	return true;
}

static int
reader_main(void *arg)
{
	const struct role *r = arg;
	const struct mix_cfg *cfg = r->cfg;
	struct pstat *ps = &r->sh->p[r->idx];
	struct mlc_stats st = MLC_STATS_INIT;
	uint64_t rng = (uint64_t)getpid() << 24 ^ (uint64_t)r->id * 77;
	uint32_t *last;
	uint64_t pending = 0;
	struct mlc_arena *a;
	struct mlc_cache *c;
	char key[32];

	child_init((unsigned)((CAP_MORE + 1) * cfg->cap_ms / 1000) +
		   CHILD_ALARM);
	last = calloc(cfg->nkeys, sizeof(*last));	/* seq + 1; 0: unseen */
	if (last == NULL)
		return 2;
	if ((a = attach(r->name, ps)) == NULL ||
	    (c = cache_on(a, r->cache_flags, ps)) == NULL)
		return 2;
	for (;;) {
		struct mlc_value v = { 0 };
		uint64_t x = rng_next(&rng);
		uint32_t kid = (uint32_t)(x % cfg->nkeys), seq = 0;
		int klen = key_fmt(key, sizeof(key), kid), rc, bad;

		if ((ps->reads & 1023) == 0) {
			if (r->cache_flags & MLC_CACHE_NO_L1)
				__atomic_add_fetch(&r->sh->validated_total,
						   pending, __ATOMIC_RELAXED);
			pending = 0;
			uint64_t done = __atomic_load_n(
				&r->sh->validated_total, __ATOMIC_RELAXED);
			uint64_t now = now_ms();

			if ((done >= (now < r->deadline ? cfg->target :
				      r->need) && writers_did(r)) ||
			    now >= r->deadline + CAP_MORE * cfg->cap_ms)
				break;
		}
		ps->reads++;
		if (((x >> 50) & 3) == 3)
			rc = mlc_peek(c, key, (size_t)klen, 0, &v);
		else
			rc = mlc_get(c, key, (size_t)klen, NULL, NULL, &v);
		if (rc == -ENOENT) {
			ps->misses++;
			continue;
		}
		if (rc != 0) {
			ps->errors++;
			note(ps, rc, "read %s: %s", key, mlc_strerror(rc));
			continue;
		}
		if (v.flags & MLC_NEGATIVE)
			bad = VAL_NEGATIVE;
		else
			bad = val_check(v.data, v.len, kid, &seq);
		if (bad == VAL_OK && last[kid] != 0 && seq + 1 < last[kid])
			bad = VAL_BACKWARDS;
		if (bad != VAL_OK) {
			uint32_t got_kid = 0, got_seq = 0;

			if (v.data != NULL && v.len >= 8) {
				memcpy(&got_kid, v.data, 4);
				memcpy(&got_seq, (const char *)v.data + 4, 4);
			}
			ps->wrong++;
			note_wrong(ps, "%s: %s, len %zu, level %u, holds "
			     "kid %u seq %u, last seen seq %u",
			     key, val_bad_name[bad], v.len, v.level,
			     got_kid, got_seq, last[kid] ? last[kid] - 1 : 0);
		} else {
			ps->validated++;
			pending++;
			last[kid] = seq + 1;
		}
		mlc_value_release(&v);
	}
	if (r->cache_flags & MLC_CACHE_NO_L1)
		__atomic_add_fetch(&r->sh->validated_total, pending,
				   __ATOMIC_RELAXED);
	if (mlc_stats(c, &st) == 0) {
		ps->hits_l1 = st.hits_l1;
		ps->hits_l2 = st.hits_l2;
	}
	mlc_cache_close(c);
	mlc_arena_close(a);
	free(last);
	ps->done = 1;
	return 0;
}

static void
print_info(const char *title, const struct mlc_arena_info *in)
{
	printf("[%s] items %" PRIu64 " neg %" PRIu64 " pages %" PRIu64
	       " free %" PRIu64 " sets %" PRIu64 " evictions %" PRIu64
	       " expired %" PRIu64 " index_evictions %" PRIu64
	       " page_moves %" PRIu64 " orphans %" PRIu64 " repairs %" PRIu64
	       " write_failures %" PRIu64 "\n", title, in->items,
	       in->neg_items, in->pages, in->pages_free, in->sets,
	       in->evictions, in->expired_reclaimed, in->index_evictions,
	       in->page_moves, in->orphans_reclaimed, in->repairs,
	       in->write_failures);
}

/* Run writers and readers on a fresh arena; returns its final info. */
static void
run_mix(const struct mix_cfg *cfg, struct mlc_arena_info *out)
{
	struct role roles[MAXP];
	int pids[MAXP], status[MAXP];
	int n = cfg->writers + cfg->readers;
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	uint64_t wrong = 0, errors = 0, validated = 0, reads = 0, l2val = 0;
	uint64_t sets = 0, nospc = 0, set_errors = 0, deletes = 0, misses = 0;
	uint64_t ops[MAXP] = { 0 };
	/* Under a sanitizer (MLC_SANITIZED, set by the build) reads are
	 * 5-20x slower: a tenth of the target is required there. */
	uint64_t need = getenv("MLC_SANITIZED") ? cfg->target / 10 :
			cfg->target;
	struct shared *sh = shared_new();
	struct mlc_arena *a;
	char name[64];
	uint64_t t0 = now_ms();

	assert_true(n <= MAXP);
	a = t_arena(name, sizeof(name), cfg->arena_bytes, cfg->max_items);
	for (int i = 0; i < n; i++) {
		bool writer = i < cfg->writers;

		roles[i] = (struct role){
			.cfg = cfg, .name = name, .sh = sh, .idx = i,
			.id = writer ? i : i - cfg->writers,
			/* The last reader keeps its L1, the others read L2. */
			.cache_flags = (!writer && i == n - 1) ? 0 :
				       MLC_CACHE_NO_L1,
			.deadline = t0 + cfg->cap_ms,
			.need = need,
		};
		pids[i] = t_spawn(writer ? writer_main : reader_main,
				  &roles[i]);
	}
	for (int i = cfg->writers; i < n; i++)
		status[i] = t_wait(pids[i]);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < cfg->writers; i++)
		status[i] = t_wait(pids[i]);

	for (int i = 0; i < n; i++) {
		const struct pstat *ps = &sh->p[i];
		bool writer = i < cfg->writers;

		printf("[%s] %s %d: exit %d", cfg->title,
		       writer ? "writer" : "reader", roles[i].id, status[i]);
		if (writer)
			printf(" sets %" PRIu64 " (nospc %" PRIu64 ", errors %"
			       PRIu64 ") deletes %" PRIu64 "\n", ps->sets,
			       ps->set_nospc, ps->set_errors, ps->deletes);
		else
			printf(" %s reads %" PRIu64 " validated %" PRIu64
			       " misses %" PRIu64 " wrong %" PRIu64
			       " errors %" PRIu64 " (L1 hits %" PRIu64
			       ", L2 hits %" PRIu64 ")\n",
			       roles[i].cache_flags ? "NO_L1" : "L1",
			       ps->reads, ps->validated, ps->misses,
			       ps->wrong, ps->errors, ps->hits_l1,
			       ps->hits_l2);
		if (ps->msg[0])
			printf("[%s]   first error (rc %d): %s\n",
			       cfg->title, ps->first_rc, ps->msg);
		if (ps->wmsg[0])
			printf("[%s]   first wrong value: %s\n", cfg->title,
			       ps->wmsg);
		reads += ps->reads;
		validated += ps->validated;
		if (!writer && roles[i].cache_flags)
			l2val += ps->validated;
		misses += ps->misses;
		wrong += ps->wrong;
		errors += ps->errors + ps->del_errors;
		if (writer)
			ops[i] = ps->sets + ps->deletes;
		sets += ps->sets;
		nospc += ps->set_nospc;
		set_errors += ps->set_errors;
		deletes += ps->deletes;
	}
	assert_int_equal(mlc_arena_info(a, &in), 0);
	print_info(cfg->title, &in);
	printf("[%s] total: reads %" PRIu64 " validated %" PRIu64
	       " (NO_L1 readers %" PRIu64 ") misses %" PRIu64 " wrong %" PRIu64 " errors %" PRIu64
	       " sets %" PRIu64 " (nospc %" PRIu64 ") deletes %" PRIu64
	       " in %" PRIu64 " ms\n", cfg->title, reads, validated, l2val, misses,
	       wrong, errors, sets, nospc, deletes, now_ms() - t0);
	*out = in;

	mlc_arena_close(a);
	mlc_arena_unlink(name, 0);
	shared_free(sh);

	for (int i = 0; i < n; i++)
		assert_int_equal(status[i], 0);
	assert_int_equal(wrong, 0);
	assert_int_equal(errors, 0);
	assert_int_equal(set_errors, 0);
	assert_true(sets > 0 && deletes > 0);
	/* The target counts reads that went to L2 every time.  The readers
	 * stop at the target (and the writers' minimum), or at cap_ms once
	 * what is needed is met, or else at CAP_MORE times cap_ms more (twice):
	 * only a machine slower than that fails here. */
	assert_true(l2val >= need);
	for (int i = 0; i < cfg->writers; i++)
		assert_true(ops[i] >= cfg->min_writer_ops);
}

static void
test_readers_writers(void **state)
{
	static const struct mix_cfg cfg = {
		.title = "mix", .arena_bytes = 32u << 20, .max_items = 0,
		.nkeys = 500, .writers = 2, .readers = 3, .val_max = VAL_MAX,
		.del_per_256 = 8, .target = 1000000, .cap_ms = 60000,
	};
	struct mlc_arena_info in;

	(void)state;
	run_mix(&cfg, &in);
	/* Room for everything: nothing had to go. */
	assert_int_equal(in.evictions, 0);
	assert_int_equal(in.write_failures, 0);
}

static void
test_readers_writers_evicting(void **state)
{
	/* About 40 pages of 64 KiB for 4000 keys of 16 B .. 2 KiB, in a mix
	 * that shifts (writer_main()): the writers keep the arena full,
	 * evicting and moving pages between size classes while the readers
	 * read. */
	static const struct mix_cfg cfg = {
		.title = "evicting", .arena_bytes = 3u << 20,
		.max_items = 8192, .nkeys = 4000, .writers = 2, .readers = 3,
		.val_max = VAL_MAX, .del_per_256 = 4, .target = 1000000,
		/* past two shifts of the size mix (every 16k operations,
		 * writer_main()): the page moves asserted below */
		.min_writer_ops = 2 << 14, .cap_ms = 60000,
	};
	struct mlc_arena_info in;

	(void)state;
	run_mix(&cfg, &in);
	printf("[evicting] evictions %" PRIu64 " page_moves %" PRIu64
	       " write_failures %" PRIu64 "\n", in.evictions, in.page_moves,
	       in.write_failures);
	assert_true(in.evictions > 0);
	assert_true(in.page_moves > 0);
}

/* ---- creators racing on one name --------------------------------------- */

#define NATTACH 8

struct attach_arg {
	const char *name;
	int gate;		/* read end: EOF is the starting shot */
	int gate_w;		/* the write end, closed in the child */
	int id;
	int32_t *rcs;		/* shared: each child's open result */
};

static int
attach_main(void *arg)
{
	const struct attach_arg *aa = arg;
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	struct mlc_cache *c = NULL;
	char key[32], val[32], b;
	int rc;

	child_init(CHILD_ALARM);
	close(aa->gate_w);
	while (read(aa->gate, &b, 1) < 0 && errno == EINTR)
		;
	o.flags = MLC_ARENA_CREATE;
	o.bytes = 2u << 20;
	o.page_size = 64 << 10;
	o.log_cells = 1024;
	o.flight_slots = 64;
	rc = mlc_arena_open(&a, aa->name, &o);
	aa->rcs[aa->id] = rc;
	if (rc != 0)
		return 3;
	rc = mlc_cache_open(&c, a, "attach", NULL);
	if (rc != 0) {
		aa->rcs[aa->id] = rc;
		return 4;
	}
	snprintf(key, sizeof(key), "child-%d", aa->id);
	snprintf(val, sizeof(val), "value-%d", aa->id);
	rc = mlc_set(c, key, strlen(key), val, strlen(val), NULL);
	if (rc != 0) {
		aa->rcs[aa->id] = rc;
		return 5;
	}
	mlc_cache_close(c);
	mlc_arena_close(a);
	return 0;
}

/* Count /dev/shm entries whose name contains @p name. */
static int
shm_entries(const char *name)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, name) != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_concurrent_create(void **state)
{
	int32_t *rcs = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(rcs != MAP_FAILED);
	for (int round = 0; round < 10; round++) {
		struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
		struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
		struct attach_arg args[NATTACH];
		int pids[NATTACH], gate[2];
		struct mlc_arena *a = NULL;
		struct mlc_cache *c;
		char name[64];

		t_name(name, sizeof(name));
		assert_int_equal(pipe(gate), 0);
		for (int i = 0; i < NATTACH; i++) {
			rcs[i] = 1;
			args[i] = (struct attach_arg){ name, gate[0], gate[1],
							i, rcs };
			pids[i] = t_spawn(attach_main, &args[i]);
		}
		close(gate[0]);
		close(gate[1]);		/* all of them go at once */
		for (int i = 0; i < NATTACH; i++) {
			int st = t_wait(pids[i]);

			if (st != 0)
				printf("[attach] round %d child %d: exit %d, "
				       "rc %d (%s)\n", round, i, st, rcs[i],
				       mlc_strerror(rcs[i]));
			assert_int_equal(st, 0);
			assert_int_equal(rcs[i], 0);
		}
		/* Exactly one arena: it holds every child's key. */
		snprintf(held.name, sizeof(held.name), "%s", name);
		assert_int_equal(mlc_arena_open(&a, name, &o), 0);
		held.a = a;
		c = held.c = t_cache(a, "attach", NULL);
		for (int i = 0; i < NATTACH; i++) {
			struct mlc_value v = { 0 };
			char key[32], val[32];

			snprintf(key, sizeof(key), "child-%d", i);
			snprintf(val, sizeof(val), "value-%d", i);
			assert_int_equal(mlc_get(c, key, strlen(key), NULL,
						 NULL, &v), 0);
			assert_int_equal(v.len, strlen(val));
			assert_memory_equal(v.data, val, v.len);
			mlc_value_release(&v);
		}
		assert_int_equal(mlc_arena_info(a, &in), 0);
		assert_int_equal(in.items, NATTACH);
		assert_int_equal(in.namespaces, 1);
		mlc_cache_close(c);
		mlc_arena_close(a);
		held.c = NULL;
		held.a = NULL;
		/* No creator left a temporary file behind. */
		assert_int_equal(shm_entries(name), 1);
		assert_int_equal(mlc_arena_unlink(name, 0), 0);
		held.name[0] = '\0';
		assert_int_equal(shm_entries(name), 0);
	}
	munmap(rcs, 4096);
}

/* ---- writers killed with SIGKILL -------------------------------------- */

#define KILL_KEYS 1000
#define KILL_ROUNDS 50
/* A byte that, read as a chunk's state word, says "ALLOC" (state 2) with
 * an allocation time far in the future. */
#define MLC_POISON 0x02

struct kill_arg {
	struct mlc_arena *a;	/* inherited */
	struct shared *sh;
	int idx;
	uint32_t round;
	bool poison;		/* victims write bytes that look like ALLOC */
};

/* Set and delete in a loop until killed. */
static int
victim_main(void *arg)
{
	const struct kill_arg *ka = arg;
	struct pstat *ps = &ka->sh->p[ka->idx];
	unsigned char buf[VAL_MAX];
	uint64_t rng = (uint64_t)getpid() * 31 + ka->round;
	uint32_t seq = ka->round << 20;
	struct mlc_cache *c = NULL;
	char key[32];
	int rc;

	child_init(CHILD_ALARM);
	rc = mlc_cache_open(&c, ka->a, "kill", NULL);
	if (rc != 0)
		return 2;
	for (;;) {
		uint64_t x = rng_next(&rng);
		uint32_t kid = (uint32_t)(x % KILL_KEYS);
		int klen = key_fmt(key, sizeof(key), kid);

		seq++;
		if (((x >> 40) & 7) == 0) {
			rc = mlc_delete(c, key, (size_t)klen);
		} else {
			size_t len = val_size(x >> 12, VAL_MAX);

			if (ka->poison)
				memset(buf, MLC_POISON, len);
			else
				val_make(buf, len, kid, seq);
			rc = mlc_set(c, key, (size_t)klen, buf, len, NULL);
			__atomic_add_fetch(&ps->sets, 1, __ATOMIC_RELAXED);
		}
		if (rc == -ENOSPC) {
			__atomic_add_fetch(&ps->set_nospc, 1, __ATOMIC_RELAXED);
		} else if (rc != 0) {
			note(ps, rc, "victim %s: %s", key, mlc_strerror(rc));
			ps->set_errors++;
		}
	}
	return 0;
}

/* Read every key over and over while the victims die, validating. */
static int
watcher_main(void *arg)
{
	const struct kill_arg *ka = arg;
	struct pstat *ps = &ka->sh->p[ka->idx];
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	struct mlc_cache *c = NULL;
	char key[32];
	int rc;

	child_init(120);
	co.flags = MLC_CACHE_NO_L1;
	if (mlc_cache_open(&c, ka->a, "kill", &co) != 0)
		return 2;
	while (!__atomic_load_n(&ka->sh->stop, __ATOMIC_RELAXED)) {
		for (uint32_t kid = 0; kid < KILL_KEYS; kid++) {
			struct mlc_value v = { 0 };
			int klen = key_fmt(key, sizeof(key), kid), bad;
			uint32_t seq;

			ps->reads++;
			rc = mlc_get(c, key, (size_t)klen, NULL, NULL, &v);
			if (rc == -ENOENT) {
				ps->misses++;
				continue;
			}
			if (rc != 0) {
				ps->errors++;
				note(ps, rc, "watcher read %s: %s", key,
				     mlc_strerror(rc));
				continue;
			}
			bad = (v.flags & MLC_NEGATIVE) ? VAL_NEGATIVE :
			      val_check(v.data, v.len, kid, &seq);
			if (bad != VAL_OK) {
				ps->wrong++;
				note_wrong(ps, "watcher %s: %s (len %zu)", key,
				     val_bad_name[bad], v.len);
			} else {
				ps->validated++;
			}
			mlc_value_release(&v);
		}
	}
	mlc_cache_close(c);
	return 0;
}

/* After the massacre: every key can be read, set, read back, deleted and
 * set again.  Checkers run one at a time, so nothing can evict a value
 * between its set and the get that reads it back.  The clock moves past
 * the orphan timeout, so that chunks the victims held when they died can be
 * taken back. */
static int
checker_main(void *arg)
{
	const struct kill_arg *ka = arg;
	struct pstat *ps = &ka->sh->p[ka->idx];
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	unsigned char buf[VAL_MAX];
	struct mlc_cache *c = NULL;
	char key[32];
	int rc;

	child_init(CHILD_ALARM);
	mlc__clock_advance(60000);
	co.flags = MLC_CACHE_NO_L1;
	if (mlc_cache_open(&c, ka->a, "kill", &co) != 0)
		return 2;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t kid = 0; kid < KILL_KEYS; kid++) {
			struct mlc_value v = { 0 };
			int klen = key_fmt(key, sizeof(key), kid), bad;
			uint32_t seq = 0xfff00000u + (uint32_t)ka->idx * 4096 +
				       (uint32_t)pass * 1024 + kid % 1024;
			uint32_t got;
			size_t len = VAL_MIN + (kid * 37 + (uint32_t)pass * 911) %
						(VAL_MAX - VAL_MIN);

			ps->reads++;
			rc = mlc_get(c, key, (size_t)klen, NULL, NULL, &v);
			if (rc == 0) {
				bad = (v.flags & MLC_NEGATIVE) ? VAL_NEGATIVE :
				      val_check(v.data, v.len, kid, &got);
				if (bad != VAL_OK) {
					ps->wrong++;
					note_wrong(ps, "checker %s: %s", key,
						   val_bad_name[bad]);
				}
				mlc_value_release(&v);
			} else if (rc != -ENOENT) {
				ps->errors++;
				note(ps, rc, "checker get %s: %s", key,
				     mlc_strerror(rc));
			}
			val_make(buf, len, kid, seq);
			rc = mlc_set(c, key, (size_t)klen, buf, len, NULL);
			ps->sets++;
			if (rc != 0) {
				ps->set_errors++;
				note(ps, rc, "checker set %s: %s", key,
				     mlc_strerror(rc));
				continue;
			}
			rc = mlc_get(c, key, (size_t)klen, NULL, NULL, &v);
			if (rc != 0 || val_check(v.data, v.len, kid, &got) ||
			    got != seq) {
				ps->wrong++;
				note_wrong(ps, "checker %s: own write not read "
					   "back (rc %d)", key, rc);
			} else {
				ps->validated++;
			}
			mlc_value_release(&v);
			if (pass == 1)
				continue;	/* leave the second pass's */
			rc = mlc_delete(c, key, (size_t)klen);
			ps->deletes++;
			if (rc != 0) {
				ps->del_errors++;
				note(ps, rc, "checker delete %s: %s", key,
				     mlc_strerror(rc));
			}
			rc = mlc_get(c, key, (size_t)klen, NULL, NULL, &v);
			if (rc != -ENOENT) {
				ps->wrong++;
				note_wrong(ps, "checker %s: deleted, get %d",
					   key, rc);
				mlc_value_release(&v);
			}
		}
	}
	mlc_cache_close(c);
	ps->done = 1;
	return 0;
}

static void
test_sigkill_writers(void **state)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	struct shared *sh = shared_new();
	struct kill_arg wa, va, ca[2];
	uint64_t rng = (uint64_t)getpid();
	struct mlc_arena *a;
	struct mlc_cache *c;
	int watcher;
	char name[64];

	(void)state;
	held.sh = sh;
	/* Small enough (13 pages) that the victims evict and move pages
	 * too, so they die inside those paths as well. */
	a = held.a = t_arena(name, sizeof(name), 1u << 20, 0);
	snprintf(held.name, sizeof(held.name), "%s", name);
	wa = (struct kill_arg){ a, sh, 0, 0, false };
	watcher = t_spawn(watcher_main, &wa);
	for (uint32_t round = 0; round < KILL_ROUNDS; round++) {
		uint64_t sets = __atomic_load_n(&sh->p[1].sets,
						__ATOMIC_RELAXED);
		struct timespec ts;
		int pid, st;

		va = (struct kill_arg){ a, sh, 1, round, false };
		pid = t_spawn(victim_main, &va);
		/* The random delay counts from the victim's first set, so
		 * that it dies inside its writes, not while it starts: under
		 * ThreadSanitizer on a busy machine a victim could take
		 * longer than the whole delay to make its first set, and then
		 * no victim in 50 wrote anything (CI of bc25503 and
		 * a4918ef). */
		for (int w = 0; w < 300000 &&
		     __atomic_load_n(&sh->p[1].sets, __ATOMIC_RELAXED) == sets;
		     w++) {
			ts.tv_sec = 0;
			ts.tv_nsec = 100000;
			nanosleep(&ts, NULL);
		}
		assert_true(__atomic_load_n(&sh->p[1].sets,
					    __ATOMIC_RELAXED) > sets);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(1 + rng_next(&rng) % 20) * 1000000L +
			     (long)(rng_next(&rng) % 1000000);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		st = t_wait(pid);
		assert_true(st == 128 + SIGKILL || st == 0);
		if (st != 128 + SIGKILL)
			printf("[kill] round %u: victim exited %d before the "
			       "kill\n", round, st);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(t_wait(watcher), 0);

	/* Two checkers, one after the other, on the keys the victims left. */
	for (int i = 0; i < 2; i++) {
		int st;

		ca[i] = (struct kill_arg){ a, sh, 2 + i, (uint32_t)i,
					   false };
		st = t_fork(checker_main, &ca[i]);
		if (st != 0)
			printf("[kill] checker %d: exit %d\n", i, st);
		assert_int_equal(st, 0);
	}

	assert_int_equal(mlc_arena_info(a, &in), 0);
	print_info("kill", &in);
	for (int i = 0; i < 4; i++) {
		const struct pstat *ps = &sh->p[i];

		printf("[kill] %s: reads %" PRIu64 " validated %" PRIu64
		       " misses %" PRIu64 " wrong %" PRIu64 " errors %" PRIu64
		       " sets %" PRIu64 " (nospc %" PRIu64 ") set_errors %"
		       PRIu64 "\n",
		       i == 0 ? "watcher" : i == 1 ? "victims" : "checker",
		       ps->reads, ps->validated, ps->misses, ps->wrong,
		       ps->errors + ps->del_errors, ps->sets, ps->set_nospc,
		       ps->set_errors);
		if (ps->msg[0])
			printf("[kill]   first error (rc %d): %s\n",
			       ps->first_rc, ps->msg);
		if (ps->wmsg[0])
			printf("[kill]   first wrong value: %s\n", ps->wmsg);
	}
	printf("[kill] repairs %" PRIu64 " orphans_reclaimed %" PRIu64 "\n",
	       in.repairs, in.orphans_reclaimed);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sh->p[i].wrong, 0);
		assert_int_equal(sh->p[i].errors, 0);
		assert_int_equal(sh->p[i].del_errors, 0);
		assert_int_equal(sh->p[i].set_errors, 0);
	}
	assert_true(sh->p[0].validated > 0);
	assert_int_equal(sh->p[2].done, 1);
	assert_int_equal(sh->p[3].done, 1);

	/* And this process too, on every key. */
	c = held.c = t_cache(a, "kill", NULL);
	for (uint32_t kid = 0; kid < KILL_KEYS; kid++) {
		unsigned char buf[64];
		struct mlc_value v = { 0 };
		char key[32];
		int klen = key_fmt(key, sizeof(key), kid);
		uint32_t seq;

		val_make(buf, sizeof(buf), kid, 7);
		assert_int_equal(mlc_set(c, key, (size_t)klen, buf,
					 sizeof(buf), NULL), 0);
		assert_int_equal(mlc_peek(c, key, (size_t)klen, 0, &v), 0);
		assert_int_equal(val_check(v.data, v.len, kid, &seq), VAL_OK);
		mlc_value_release(&v);
		assert_int_equal(mlc_delete(c, key, (size_t)klen), 0);
	}
	assert_int_equal(mlc_arena_info(a, &in), 0);
	printf("[kill] after deleting every key: items %" PRIu64
	       " neg_items %" PRIu64 "\n", in.items, in.neg_items);
}

/* Victims whose values are all 0x02 bytes: if one dies while a page is
 * being carved for a new size class, the chunks not yet carved hold those
 * bytes, which read as an ALLOC chunk stamped in the far future.  Then a
 * single process must still be able to store values of every size: the
 * arena is full of entries it may evict. */
static int
sizes_main(void *arg)
{
	const struct kill_arg *ka = arg;
	struct pstat *ps = &ka->sh->p[ka->idx];
	static const size_t sizes[] = { 16, 24, 40, 64, 100, 160, 250, 400,
					640, 1000, 1600, 2048 };
	struct mlc_cache_options co = MLC_CACHE_OPTIONS_INIT;
	unsigned char buf[VAL_MAX];
	struct mlc_cache *c = NULL;
	char key[32];

	child_init(CHILD_ALARM);
	mlc__clock_advance(60000);	/* every orphan is old now */
	co.flags = MLC_CACHE_NO_L1;
	if (mlc_cache_open(&c, ka->a, "kill", &co) != 0)
		return 2;
	for (int round = 0; round < 3; round++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			for (uint32_t j = 0; j < 20; j++) {
				struct mlc_value v = { 0 };
				uint32_t kid = (uint32_t)s * 20 + j, got;
				int klen = key_fmt(key, sizeof(key), kid), rc;

				val_make(buf, sizes[s], kid, (uint32_t)round);
				rc = mlc_set(c, key, (size_t)klen, buf,
					     sizes[s], NULL);
				ps->sets++;
				if (rc == -ENOSPC)
					ps->set_nospc++;
				if (rc != 0) {
					ps->set_errors++;
					note(ps, rc, "set %s (%zu B): %s", key,
					     sizes[s], mlc_strerror(rc));
					continue;
				}
				rc = mlc_get(c, key, (size_t)klen, NULL, NULL,
					     &v);
				if (rc != 0 ||
				    val_check(v.data, v.len, kid, &got) ||
				    got != (uint32_t)round) {
					ps->wrong++;
					note_wrong(ps, "%s: own write not read "
						   "back (rc %d)", key, rc);
				} else {
					ps->validated++;
				}
				mlc_value_release(&v);
			}
		}
	}
	mlc_cache_close(c);
	ps->done = 1;
	return 0;
}

static void
test_sigkill_page_moves(void **state)
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	struct shared *sh = shared_new();
	uint64_t rng = (uint64_t)getpid() * 7;
	struct kill_arg va, ca;
	struct mlc_arena *a;
	const struct pstat *ps = &sh->p[2];
	char name[64];
	int st;

	(void)state;
	held.sh = sh;
	a = held.a = t_arena(name, sizeof(name), 1u << 20, 0);
	snprintf(held.name, sizeof(held.name), "%s", name);
	for (uint32_t round = 0; round < KILL_ROUNDS; round++) {
		struct timespec ts;
		int pid;

		va = (struct kill_arg){ a, sh, 1, round, true };
		pid = t_spawn(victim_main, &va);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(1 + rng_next(&rng) % 20) * 1000000L +
			     (long)(rng_next(&rng) % 1000000);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		st = t_wait(pid);
		assert_true(st == 128 + SIGKILL || st == 0);
	}
	ca = (struct kill_arg){ a, sh, 2, 0, false };
	st = t_fork(sizes_main, &ca);
	assert_int_equal(mlc_arena_info(a, &in), 0);
	print_info("kill-moves", &in);
	printf("[kill-moves] victims: sets %" PRIu64 " (nospc %" PRIu64 ")\n",
	       sh->p[1].sets, sh->p[1].set_nospc);
	printf("[kill-moves] checker: exit %d sets %" PRIu64 " (nospc %"
	       PRIu64 ", errors %" PRIu64 ") validated %" PRIu64
	       " wrong %" PRIu64 "\n", st, ps->sets, ps->set_nospc,
	       ps->set_errors, ps->validated, ps->wrong);
	if (ps->msg[0])
		printf("[kill-moves]   first error (rc %d): %s\n",
		       ps->first_rc, ps->msg);
	if (ps->wmsg[0])
		printf("[kill-moves]   first wrong value: %s\n", ps->wmsg);
	assert_int_equal(st, 0);
	assert_int_equal(ps->done, 1);
	assert_int_equal(ps->wrong, 0);
	assert_int_equal(ps->set_errors, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_concurrent_create, release),
		cmocka_unit_test_teardown(test_readers_writers, release),
		cmocka_unit_test_teardown(test_readers_writers_evicting,
					  release),
		cmocka_unit_test_teardown(test_sigkill_writers, release),
		cmocka_unit_test_teardown(test_sigkill_page_moves, release),
	};

	t_require_shm();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("MLC_TEST_FILTER") != NULL)	/* e.g. "*sigkill*" */
		cmocka_set_test_filter(getenv("MLC_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
