/*
 * The arena: create, attach, validate, detach; the robust locks; the
 * namespace table.
 *
 * Creation is atomic by name.  The creator builds the whole arena in an
 * unnamed file (O_TMPFILE) in the final name's directory, publishes READY
 * in its header, and then links it to the name.  The link fails with
 * EEXIST if another creator won, so no process can ever open a half-built
 * arena by name, and a creator killed half-way leaves nothing.  Where the
 * filesystem has no O_TMPFILE, the file has a name no other user can
 * guess (".mlc-tmp.<name>.<pid>.<64 random bits>", so nobody can block
 * creation by planting files there); a creator killed half-way leaves it,
 * and mlc_arena_unlink() removes it.
 *
 * Every process that has the arena mapped holds a shared OFD lock on its
 * first byte.  The exclusive lock is taken only to reset an arena left from
 * an earlier boot, which is safe only when nobody else has it mapped.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "hash.h"
#include "mlc-int.h"
#include "pause.h"

#define SHM_DIR "/dev/shm/"
#define DEFAULT_BYTES (UINT64_C(64) << 20)
#define DEFAULT_PAGE (UINT32_C(1) << 20)
#define MIN_PAGE (UINT32_C(64) << 10)
#define MAX_PAGE (UINT32_C(16) << 20)
_Static_assert(MAX_PAGE - 1 <= MLC__VLEN_MAX, "a value length fits its 24 bits");
#define MIN_PAGES 4
#define DEFAULT_PAGES 32
#define MIN_CHUNK 48
#define LOCK_WAIT_MS 5000
#define BOUNDED_YIELDS 64	/* mlc__lock_take_bounded()'s first waits */

/* ---- options ------------------------------------------------------ */

static bool
bytes_are_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* ck's default-then-copy: zero (= defaults), then the caller's bytes.  A
 * struct smaller than its first release (@p v0) is a bad size; a larger
 * one is from a newer mlc and fine if what we do not know is zero. */
int
mlc__options_copy(void *dst, size_t dst_size, size_t v0, const void *src)
{
	size_t sz;

	memset(dst, 0, dst_size);
	*(size_t *)dst = dst_size;
	if (src == NULL)
		return 0;
	memcpy(&sz, src, sizeof(sz));
	if (sz < v0 || sz > (1u << 16))
		return -EINVAL;
	if (sz > dst_size &&
	    !bytes_are_zero((const char *)src + dst_size, sz - dst_size))
		return -E2BIG;		/* a feature this mlc lacks */
	memcpy(dst, src, MLC_MIN(sz, dst_size));
	*(size_t *)dst = dst_size;
	return 0;
}

/* Hand an out-struct over: as many of @p src's @p src_size bytes as the
 * caller's struct holds (its size field, which the caller set), and that
 * size in its size field.  The size is read before the copy, which brings
 * src's own: kept, a caller built against an older header that calls again
 * with the same struct was written past its end. */
void
mlc__out_copy(void *dst, const void *src, size_t src_size)
{
	size_t n;

	memcpy(&n, dst, sizeof(n));
	n = MLC_MIN(n, src_size);
	memcpy(dst, src, n);
	memcpy(dst, &n, sizeof(n));
}

static bool
is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static uint64_t
pow2_at_least(uint64_t x)
{
	uint64_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

static uint64_t
align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* 1 MiB, or for an arena under 32 MiB the largest power of two at most
 * 1/32 of its bytes (at least 64 KiB).  A mix of value sizes uses some 25
 * size classes; with fewer pages than that, most classes own none and
 * borrow chunks up to twice their size, and a 16 MiB arena of 1 MiB pages
 * lost 1.2 points of hit ratio to that rounding (docs/internals.md, "Items
 * and the allocator"). */
static uint32_t
default_page(uint64_t bytes)
{
	uint32_t page = DEFAULT_PAGE;

	while (page > MIN_PAGE && (uint64_t)page * DEFAULT_PAGES > bytes)
		page /= 2;
	return page;
}

/* The index capacity when none is asked for: the most buckets (a power of
 * two) whose table takes at most 1/16 of the arena, as max_items that
 * layout_compute() turns back into exactly that many.  So the index costs
 * 3.1-6.25% of the arena (6.25% at a power-of-two size) and holds
 * 1.1-1.4 entries per KiB of arena: values of about 80 B or more (16 B
 * keys) fill the pages before the index, smaller ones the index first.
 * (0.2.0 took bytes / 512, 1.6-3.1% of the arena: every entry under
 * ~200 B met the index first, and a 256 MiB arena held 894k entries of
 * 16 B where 2.9M fit.) */
static uint32_t
default_max_items(uint64_t bytes)
{
	uint64_t b = 1;

	while (b * 2 * sizeof(struct mlc__bucket) <= bytes / 16)
		b *= 2;
	return (uint32_t)MLC_MIN(MLC_MAX(b * 56 / 10, 64), UINT32_C(1) << 30);
}

/* Fill in defaults and refuse what cannot work. */
static int
arena_options_check(struct mlc_arena_options *o)
{
	if (o->flags & ~(uint32_t)(MLC_ARENA_CREATE | MLC_ARENA_EXCL |
				   MLC_ARENA_FILE | MLC_ARENA_ANON |
				   MLC_ARENA_FOREIGN | MLC_ARENA_RDONLY |
				   MLC_ARENA_MATCH))
		return -EINVAL;		/* MLC_ARENA_UNUSED: unlink only */
	if ((o->flags & MLC_ARENA_RDONLY) &&
	    (o->flags & (MLC_ARENA_CREATE | MLC_ARENA_ANON)))
		return -EINVAL;
	if ((o->flags & MLC_ARENA_ANON) && (o->flags & MLC_ARENA_FILE))
		return -EINVAL;
	if (o->mode & ~0777u)		/* permission bits only */
		return -EINVAL;
	if (o->mode == 0)
		o->mode = 0600;
	if (o->bytes == 0)
		o->bytes = DEFAULT_BYTES;
	if (o->page_size == 0)
		o->page_size = default_page(o->bytes);
	if (!is_pow2(o->page_size) || o->page_size < MIN_PAGE ||
	    o->page_size > MAX_PAGE)
		return -EINVAL;
	if (o->bytes > (UINT64_C(1) << 46))
		return -EINVAL;		/* offsets are 48 bits */
	if (o->max_items == 0)
		o->max_items = default_max_items(o->bytes);
	if (o->max_items > (UINT32_C(1) << 30))
		return -EINVAL;
	if (o->log_cells == 0)
		o->log_cells = 65536;
	if (!is_pow2(o->log_cells) || o->log_cells < 64 ||
	    o->log_cells > (UINT32_C(1) << 24))
		return -EINVAL;
	if (o->flight_slots == 0)
		o->flight_slots = 4096;
	if (!is_pow2(o->flight_slots) || o->flight_slots < 16 ||
	    o->flight_slots > (UINT32_C(1) << 20))
		return -EINVAL;
	if (o->max_namespaces == 0)
		o->max_namespaces = 64;
	/* Checked before mlc's own is counted: UINT32_MAX would wrap. */
	if (o->max_namespaces > 4095)
		return -EINVAL;
	o->max_namespaces++;		/* plus mlc's own, index 0 */
	if (o->neg_quota_pct == 0)
		o->neg_quota_pct = 25;
	if (o->neg_quota_pct > 100)
		return -EINVAL;
	return 0;
}

/* ---- layout ------------------------------------------------------- */

/* A signature of this build's view of the shared structs: a process built
 * with another libc mutex size, cache line or struct layout must refuse the
 * arena rather than misread it (LMDB's lock-format idea). */
static uint32_t
layout_sig(void)
{
	const uint64_t parts[] = {
		sizeof(struct mlc__hdr), sizeof(struct mlc__lock),
		sizeof(pthread_mutex_t), alignof(pthread_mutex_t),
		sizeof(struct mlc__bucket), sizeof(struct mlc__item),
		sizeof(struct mlc__class), sizeof(struct mlc__page),
		sizeof(struct mlc__ns), sizeof(struct mlc__log),
		sizeof(struct mlc__log_cell), sizeof(struct mlc__flight_slot),
		sizeof(struct mlc__ns_stats),
		offsetof(struct mlc__ns_stats, nt_items),
		offsetof(struct mlc__hdr, ah_check),
		offsetof(struct mlc__hdr, ah_version),
		offsetof(struct mlc__hdr, ah_items),
		offsetof(struct mlc__class, cl_size),
		offsetof(struct mlc__class, cl_moves_out), sizeof(void *),
		sizeof(struct mlc__ghost),
		MLC_CACHELINE, MLC__SLOTS,
		sizeof(struct mlc__proc), offsetof(struct mlc__hdr, ah_procs),
		MLC__PROCS,
	};
	uint32_t h = 2166136261u;	/* FNV-1a over the parts */

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (int b = 0; b < 8; b++) {
			h ^= (uint8_t)(parts[i] >> (8 * b));
			h *= 16777619u;
		}
	}
	return h;
}

/* Compute the configuration block of a header from its inputs.  The same
 * function validates an attached arena: its header must equal what this
 * build computes from the header's own inputs. */
static int
layout_compute(struct mlc__hdr *h, uint64_t bytes, uint32_t max_items,
	       uint32_t page_size, uint32_t log_cells, uint32_t flight_slots,
	       uint32_t max_ns, uint32_t neg_quota)
{
	uint64_t off, nbuckets, npages_max, npages;
	uint32_t n = 0;

	nbuckets = pow2_at_least(MLC_MAX((uint64_t)max_items * 10 / 56, 2));
	h->ah_size = bytes;
	h->ah_max_items = max_items;
	h->ah_page_size = page_size;
	h->ah_log_cells = log_cells;
	h->ah_flight_slots = flight_slots;
	h->ah_max_ns = max_ns;
	h->ah_neg_quota = neg_quota;
	h->ah_nbuckets = (uint32_t)nbuckets;
	h->ah_nstripes = (uint32_t)MLC_MIN(nbuckets, 1024);

	/* Size classes: from MIN_CHUNK growing by 1/8 (8-byte steps up to
	 * 128), so rounding wastes about 11% of a chunk at most; each stretched to
	 * the largest 8-byte multiple that still fits as many chunks in a
	 * page, so the page's tail wastes less than 8 bytes a chunk.  Where
	 * the stretch would make the step from the class before more than
	 * 25/22 (an item just over that class would waste over 12% of its
	 * chunk: in 64 KiB pages the step from 19 chunks a page, 3,448 B, to
	 * 16, 4,096 B, skipped 17 and 18), the class is instead the size that
	 * fits one chunk more a page than the 1/8 step's.  Up to page/9 an
	 * item thus loses at most 12% of the page bytes it takes, at every
	 * page size (the bench's class-waste table); above that, whole chunks
	 * per page decide, and items that would waste more are chained.  The
	 * last class is exactly a page.  Format 10 added the second rule. */
	for (uint64_t sz = MIN_CHUNK; sz < page_size && n < MLC__NCLASSES_MAX - 1;
	     sz = MLC_MAX(sz + 8, (sz + sz / 8) & ~(uint64_t)7)) {
		uint64_t fit = (page_size / (page_size / sz)) & ~(uint64_t)7;

		if (n > 0 && fit * 22 > (uint64_t)h->ah_class_size[n - 1] * 25) {
			uint64_t less = (page_size /
					 ((page_size + sz - 1) / sz)) & ~(uint64_t)7;

			if (less > h->ah_class_size[n - 1])
				fit = less;
		}
		if (n > 0 && fit <= h->ah_class_size[n - 1])
			continue;
		if (fit >= page_size)
			break;
		h->ah_class_size[n++] = (uint32_t)fit;
		sz = fit;
	}
	h->ah_class_size[n++] = page_size;
	h->ah_nclasses = n;

	off = MLC__HDR_BYTES;
	h->ah_stripes_off = off;
	off += (uint64_t)h->ah_nstripes * sizeof(struct mlc__lock);
	h->ah_table_off = off;
	off += nbuckets * sizeof(struct mlc__bucket);
	h->ah_ghost_off = off;
	off += MLC__GHOST_LINES(nbuckets) * sizeof(struct mlc__ghost);
	h->ah_classes_off = off;
	off += (uint64_t)n * sizeof(struct mlc__class);
	npages_max = bytes / page_size;
	h->ah_pagedesc_off = off;
	off += npages_max * sizeof(struct mlc__page);
	off = align_up(off, MLC_CACHELINE);
	h->ah_ns_off = off;
	off += (uint64_t)max_ns * sizeof(struct mlc__ns);
	h->ah_nsstats_off = off;
	off += (uint64_t)max_ns * sizeof(struct mlc__ns_stats);
	h->ah_log_off = off;
	off += sizeof(struct mlc__log) +
	       (uint64_t)log_cells * (sizeof(struct mlc__log_cell) +
				      sizeof(struct mlc__log_claim));
	h->ah_flight_off = off;
	off += (uint64_t)flight_slots * sizeof(struct mlc__flight_slot);
	off = align_up(off, 4096);
	h->ah_pages_off = off;
	if (off >= bytes)
		return -EINVAL;
	npages = (bytes - off) / page_size;
	if (npages < MIN_PAGES)
		return -EINVAL;		/* too small for this page size */
	h->ah_npages = (uint32_t)npages;
	return 0;
}

/* The part of the header that layout_compute() fills. */
#define CONFIG_BEGIN offsetof(struct mlc__hdr, ah_page_size)
#define CONFIG_END offsetof(struct mlc__hdr, ah_check)

/* The checksum of the fixed part: every byte before ah_check, except
 * ah_state, which goes from CREATING to READY after the sum is written
 * (and back during a reset).  Without it, a flipped seed, creator or
 * boot id would pass attach: the seed makes every stored hash wrong, so
 * keys read back as missing. */
uint64_t
mlc__hdr_check(const struct mlc__hdr *h)
{
	char fixed[offsetof(struct mlc__hdr, ah_check)];

	memcpy(fixed, h, sizeof(fixed));
	memset(fixed + offsetof(struct mlc__hdr, ah_state), 0,
	       sizeof(h->ah_state));
	return XXH3_64bits(fixed, sizeof(fixed));
}

/* ---- locks -------------------------------------------------------- */

int
mlc__lock_init(struct mlc__lock *lk)
{
	pthread_mutexattr_t at;
	int rc;

	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(&lk->lk_mutex, &at);
	pthread_mutexattr_destroy(&at);
	return -rc;
}

/* After a locker's death: repair what the lock protects, then mark it
 * consistent.  The repair runs with the lock held, so it is alone. */
static int
lock_won(struct mlc_arena *a, struct mlc__lock *lk, int rc,
	 void (*repair)(struct mlc_arena *, void *), void *ctx)
{
	if (rc == 0)
		return 0;
	if (rc == EOWNERDEAD) {
		if (repair != NULL)
			repair(a, ctx);
		ck_pr_inc_64(&a->hdr->ah_repairs);
		pthread_mutex_consistent(&lk->lk_mutex);
		return 0;
	}
	if (rc == ENOTRECOVERABLE)
		return MLC_ECORRUPT;
	return -rc;
}

int
mlc__lock_take(struct mlc_arena *a, struct mlc__lock *lk,
	       void (*repair)(struct mlc_arena *, void *), void *ctx)
{
	return lock_won(a, lk, pthread_mutex_lock(&lk->lk_mutex), repair, ctx);
}

/* -EBUSY when another holds it. */
int
mlc__lock_try(struct mlc_arena *a, struct mlc__lock *lk,
	      void (*repair)(struct mlc_arena *, void *), void *ctx)
{
	return lock_won(a, lk, pthread_mutex_trylock(&lk->lk_mutex), repair,
			ctx);
}

/* Is @p lk's kind word the one mlc__lock_init() gives?  glibc trusts a
 * mutex's bytes: a garbage kind (priority protection, say) makes a lock
 * call abort the process (docs/reliability.md, bug 3).  The kind is the
 * only such word: a garbage owner or lock word only makes the lock wait,
 * fail, or report a dead owner. */
static bool
lock_kind_ok(struct mlc__lock *lk)
{
#ifdef __GLIBC__
	static int want = -1;
	int w = ck_pr_load_int(&want);

	if (w < 0) {
		struct mlc__lock ref;

		if (mlc__lock_init(&ref) < 0)
			return false;
		w = ref.lk_mutex.__data.__kind;
		pthread_mutex_destroy(&ref.lk_mutex);
		ck_pr_store_int(&want, w);
	}
	return ck_pr_load_int(&lk->lk_mutex.__data.__kind) == w;
#else
	(void)lk;
	return true;
#endif
}

/* -ETIMEDOUT after about @p ms, MLC_ECORRUPT if the lock word is not a
 * lock of ours: for locks whose holders never wait on anything (the
 * attached-process table), which mlc_arena_open() and mlc_arena_info()
 * take, so that a corrupt lock word or a stopped holder delays them, and
 * never blocks them for ever or crashes them; and, past its first
 * yields, mlc__lock_take_bounded()'s.  Polled with trylock, 1 ms
 * apart, rather than pthread_mutex_timedlock(): holders keep it for
 * microseconds, and ThreadSanitizer takes a timedlock's EOWNERDEAD for a
 * failure (then reports the unlock), a trylock's for the lock it is. */
int
mlc__lock_take_for(struct mlc_arena *a, struct mlc__lock *lk, uint32_t ms,
		   void (*repair)(struct mlc_arena *, void *), void *ctx)
{
	struct timespec pause = { 0, 1000000 };
	int rc;

	if (!lock_kind_ok(lk))
		return MLC_ECORRUPT;
	for (uint32_t waited = 0;; waited++) {
		rc = pthread_mutex_trylock(&lk->lk_mutex);
		if (rc != EBUSY || waited >= ms)
			break;
		nanosleep(&pause, NULL);
	}
	return lock_won(a, lk, rc == EBUSY ? ETIMEDOUT : rc, repair, ctx);
}

/* Take @p lk, waiting at most about @p ms: -ETIMEDOUT after that.  For
 * a writer's lock it could do without (a class other than its own:
 * alloc.c), so that a holder stopped there blocks it for a bounded time
 * only.  Holders keep such locks for microseconds, so the first waits are
 * yields, as cheap as a futex's sleep for them; only then
 * mlc__lock_take_for()'s polling, which sleeps 1 ms at a time. */
int
mlc__lock_take_bounded(struct mlc_arena *a, struct mlc__lock *lk,
		       uint32_t ms,
		       void (*repair)(struct mlc_arena *, void *), void *ctx)
{
	for (int i = 0; i < BOUNDED_YIELDS; i++) {
		int rc = pthread_mutex_trylock(&lk->lk_mutex);

		if (rc != EBUSY)
			return lock_won(a, lk, rc, repair, ctx);
		sched_yield();
	}
	return mlc__lock_take_for(a, lk, ms, repair, ctx);
}

void
mlc__lock_give(struct mlc__lock *lk)
{
	pthread_mutex_unlock(&lk->lk_mutex);
}

/* ---- names -------------------------------------------------------- */

/* Build the path of an arena.  shm names live in /dev/shm, where glibc's
 * shm_open() puts them too; mlc opens them as files to get O_NOFOLLOW and
 * link()-based atomic creation. */
static int
arena_path(char *dst, size_t cap, const char *name, uint32_t flags)
{
	size_t len;

	if (flags & MLC_ARENA_FILE) {
		len = strlen(name);
		if (len == 0 || len >= cap - 64)
			return -EINVAL;
		memcpy(dst, name, len + 1);
		return 0;
	}
	if (name[0] == '/')
		name++;
	len = strlen(name);
	if (len == 0 || len > MLC_ARENA_NAME_MAX || strchr(name, '/') ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20)
			return -EINVAL;
	snprintf(dst, cap, SHM_DIR "%s", name);
	return 0;
}

/* The directory of @p path ("./" for a bare name), for O_TMPFILE. */
static void
dir_path(char *dst, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dst, cap, ".");
	else
		snprintf(dst, cap, "%.*s", (int)(slash - path) + 1, path);
}

/* 64 bits no other user can predict, for a temporary file's name (the
 * test build can script them: pause.h). */
static uint64_t
tmp_bits(void)
{
	static uint64_t counter;
	uint64_t r;

#ifdef MLC_PAUSE_POINTS
	if (mlc__test_tmp_bits != NULL)
		return mlc__test_tmp_bits();
#endif
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = XXH3_64bits_withSeed(&ts, sizeof(ts),
					 ck_pr_faa_64(&counter, 1));
	}
	return r;
}

/* A named temporary file beside @p path (same directory, so link()
 * works), for filesystems without O_TMPFILE.  The random part keeps
 * another user from planting files at the names we would try. */
static void
tmp_path(char *dst, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;

	snprintf(dst, cap, "%.*s.mlc-tmp.%s.%ld.%llu", (int)dirlen, path,
		 path + dirlen, (long)getpid(), (unsigned long long)tmp_bits());
}

/* @p fd (or -1, passed on), moved to 3 or above.  An arena's descriptor
 * stays open as long as the arena does, so it must not be 0, 1 or 2: in
 * a process started with one of those closed (`prog >&-`), open() gives
 * it the lowest free number, and the process's next write to stdout went
 * into the arena's header, which no process could attach after (review
 * AG saw it with mlcctl; test-arena test_stdout_closed).  -1 with errno
 * if it cannot be moved (EMFILE); @p fd is closed then. */
static int
fd_past_stdio(int fd)
{
	int nfd, e;

	if (fd < 0 || fd > STDERR_FILENO)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	e = errno;
	close(fd);
	errno = e;
	return nfd;
}

/* An unnamed file in directory @p dir (the test build can act as a
 * filesystem without O_TMPFILE: pause.h). */
static int
tmpfile_open(const char *dir, mode_t mode)
{
#ifdef MLC_PAUSE_POINTS
	if (mlc__test_no_tmpfile) {
		errno = EOPNOTSUPP;
		return -1;
	}
#endif
	return fd_past_stdio(open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode));
}

/* ---- creation ----------------------------------------------------- */

static void
read_boot_id(uint8_t out[16])
{
	char buf[64];
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	unsigned n = 0;

	memset(out, 0, 16);
	if (f == NULL)
		return;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		for (char *p = buf; *p && n < 32; p++) {
			int v;

			if (*p >= '0' && *p <= '9')
				v = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				v = *p - 'a' + 10;
			else
				continue;
			out[n / 2] |= (uint8_t)(v << ((n & 1) ? 0 : 4));
			n++;
		}
	}
	fclose(f);
}

/* Build a whole arena in @p base (zeroed memory of h->ah_size bytes) from
 * the configuration already in the local header @p cfg. */
static int
arena_build(char *base, const struct mlc__hdr *cfg)
{
	struct mlc__hdr *h = (struct mlc__hdr *)(void *)base;
	struct mlc__lock *stripes;
	struct mlc__class *cl;
	struct mlc__page *pg;
	int rc;

	memset(base, 0, cfg->ah_pages_off);
	memcpy((char *)h + CONFIG_BEGIN, (const char *)cfg + CONFIG_BEGIN,
	       CONFIG_END - CONFIG_BEGIN);
	h->ah_size = cfg->ah_size;
	h->ah_magic = MLC_ARENA_MAGIC;
	h->ah_format = MLC_ARENA_FORMAT;
	h->ah_layout = layout_sig();
	h->ah_hash = MLC_HASH_XXH3;
	if (getrandom(&h->ah_seed, sizeof(h->ah_seed), 0) != sizeof(h->ah_seed))
		h->ah_seed = (uint64_t)time(NULL) * UINT64_C(0x9e3779b97f4a7c15) ^
			     (uint64_t)getpid();
	h->ah_creator = (uint32_t)getpid();
	read_boot_id(h->ah_boot_id);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		h->ah_created = (uint64_t)ts.tv_sec * 1000 +
				(uint64_t)ts.tv_nsec / 1000000;
	}
	stripes = (struct mlc__lock *)(void *)(base + h->ah_stripes_off);
	for (uint32_t i = 0; i < h->ah_nstripes; i++)
		if ((rc = mlc__lock_init(&stripes[i])) < 0)
			return rc;
	if ((rc = mlc__lock_init(&h->ah_pool_lock)) < 0 ||
	    (rc = mlc__lock_init(&h->ah_ns_lock)) < 0 ||
	    (rc = mlc__lock_init(&h->ah_procs_lock)) < 0)
		return rc;
	cl = (struct mlc__class *)(void *)(base + h->ah_classes_off);
	for (uint32_t i = 0; i < h->ah_nclasses; i++) {
		if ((rc = mlc__lock_init(&cl[i].cl_lock)) < 0)
			return rc;
		cl[i].cl_size = h->ah_class_size[i];
		cl[i].cl_per_page = h->ah_page_size / h->ah_class_size[i];
		cl[i].cl_small_share = MLC__SMALL_SHARE_INIT;
	}
	/* Every page starts in the pool, as a singly linked list. */
	pg = (struct mlc__page *)(void *)(base + h->ah_pagedesc_off);
	for (uint32_t i = 0; i < h->ah_npages; i++)
		pg[i].pg_next = i + 2 <= h->ah_npages ? i + 2 : 0;
	h->ah_pool_head = 1;
	h->ah_pool_free = h->ah_npages;
	/* Versions start at 1: a loader's fence is the version it started
	 * under, and 0 means "no fence". */
	h->ah_version = 1;
	/* Namespace 0 is mlc's own; user namespaces never match its empty
	 * name. */
	{
		struct mlc__ns *ns0 = (struct mlc__ns *)(void *)(base +
								 h->ah_ns_off);

		struct mlc__ns_stats *st0 = (struct mlc__ns_stats *)(void *)
			(base + h->ah_nsstats_off);

		ns0->ns_gen = 1;
		ns0->ns_used = 1;
		/* Live counts wait at generation 1 (struct mlc__ns_stats). */
		st0->nt_items = UINT64_C(1) << 32;
		st0->nt_bytes = UINT64_C(1) << MLC__NS_BYTES_SHIFT;
	}
	h->ah_check = mlc__hdr_check(h);
	/* Everything above before READY: an attacher that sees READY sees a
	 * whole arena (link() publishes it, but a reset reuses the name). */
	ck_pr_fence_store();
	ck_pr_store_32(&h->ah_state, MLC__READY);
	return 0;
}

static int
ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EAGAIN : -errno;
}

static int
size_backing(int fd, uint64_t bytes)
{
	int rc;

	if (ftruncate(fd, (off_t)bytes) < 0)
		return -errno;
	/* Allocate every page now: a sparse tmpfs object would SIGBUS on
	 * first touch when /dev/shm fills up. */
	rc = posix_fallocate(fd, 0, (off_t)bytes);
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = 0;		/* filesystems without fallocate */
	return -rc;
}

/* Open the file a new arena is built in: unnamed if the filesystem can
 * (*tmp set to ""), else under a fresh unguessable name in *tmp. */
static int
tmp_open(const char *path, mode_t mode, char *tmp, size_t cap)
{
	int fd;

	dir_path(tmp, cap, path);
	fd = tmpfile_open(tmp, mode);
	if (fd >= 0) {
		tmp[0] = '\0';
		return fd;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* A clash with 64 random bits is someone else's doing: a few
	 * fresh names, then give up with what is in the way. */
	for (int i = 0; i < 4; i++) {
		tmp_path(tmp, cap, path);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			  O_CLOEXEC, mode);
		if (fd >= 0 && (fd = fd_past_stdio(fd)) < 0) {
			int e = errno;

			unlink(tmp);	/* ours: made just now */
			return -e;
		}
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EBUSY;
}

/* Give the built file @p fd its name @p path: -EEXIST if the name is
 * taken (another creator won). */
static int
tmp_link(int fd, const char *tmp, const char *path)
{
	char self[64];

	if (tmp[0] != '\0')
		return link(tmp, path) < 0 ? -errno : 0;
	/* An unnamed file is linked through /proc (AT_EMPTY_PATH, the other
	 * way, needs CAP_DAC_READ_SEARCH). */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	return linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

/* Create the arena in a temporary file and link it to @p path.  0 on
 * success with *fdp open and read-locked, -EEXIST if another won. */
static int
arena_create_file(const char *path, const struct mlc_arena_options *o,
		  const struct mlc__hdr *cfg, int *fdp)
{
	char tmp[PATH_MAX + 128];
	void *base;
	int fd, rc;

	fd = tmp_open(path, o->mode, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	/* Locked from the start, until the arena is closed: a named file
	 * is removed by tmp_sweep() only once it can lock it (its pid can
	 * be anyone's in another pid namespace). */
	if ((rc = ofd_lock(fd, F_RDLCK)) < 0)
		goto fail;
	/* open() applies the umask; the mode asked for is the mode meant. */
	if (fchmod(fd, o->mode) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = size_backing(fd, cfg->ah_size)) < 0)
		goto fail;
	base = mmap(NULL, cfg->ah_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	rc = arena_build(base, cfg);
	munmap(base, cfg->ah_size);
	if (rc < 0)
		goto fail;
	if ((rc = tmp_link(fd, tmp, path)) < 0) {
		/* Removed between its creation and its lock: again. */
		if (rc == -ENOENT && tmp[0] != '\0')
			rc = -EAGAIN;
		goto fail;
	}
	if (tmp[0] != '\0')
		unlink(tmp);
	*fdp = fd;
	return 0;
fail:
	if (tmp[0] != '\0')
		unlink(tmp);
	close(fd);
	return rc;
}

/* ---- attach ------------------------------------------------------- */

/* Check everything a reader will rely on.  Never writes. */
static int
arena_validate(const char *base, uint64_t size)
{
	const struct mlc__hdr *h = (const struct mlc__hdr *)(const void *)base;
	struct mlc__hdr want;

	if (size < MLC__HDR_BYTES)
		return MLC_ECORRUPT;
	if (ck_pr_load_32((uint32_t *)&h->ah_magic) != MLC_ARENA_MAGIC)
		return MLC_ECORRUPT;
	if (h->ah_format != MLC_ARENA_FORMAT || h->ah_hash != MLC_HASH_XXH3 ||
	    h->ah_layout != layout_sig())
		return MLC_EFORMAT;
	if (ck_pr_load_32((uint32_t *)&h->ah_state) != MLC__READY)
		return MLC_ECORRUPT;
	ck_pr_fence_load();
	if (h->ah_size != size)
		return MLC_ECORRUPT;	/* truncated or grown behind us */
	if (h->ah_check != mlc__hdr_check(h))
		return MLC_ECORRUPT;	/* a fixed field was changed */
	memset(&want, 0, sizeof(want));
	if (h->ah_page_size < MIN_PAGE || h->ah_page_size > MAX_PAGE ||
	    !is_pow2(h->ah_page_size) || !is_pow2(h->ah_log_cells) ||
	    !is_pow2(h->ah_flight_slots) || h->ah_max_ns > 4096 ||
	    h->ah_max_items > (UINT32_C(1) << 30) ||
	    h->ah_log_cells > (UINT32_C(1) << 24) ||
	    h->ah_flight_slots > (UINT32_C(1) << 20))
		return MLC_ECORRUPT;
	if (layout_compute(&want, h->ah_size, h->ah_max_items, h->ah_page_size,
			   h->ah_log_cells, h->ah_flight_slots, h->ah_max_ns,
			   h->ah_neg_quota) < 0)
		return MLC_ECORRUPT;
	if (memcmp((const char *)h + CONFIG_BEGIN, (char *)&want + CONFIG_BEGIN,
		   CONFIG_END - CONFIG_BEGIN) != 0)
		return MLC_ECORRUPT;
	return 0;
}

/* Take the geometry of the arena mapped at @p base from @p h: a private
 * copy of its header that was validated, never the shared one, which any
 * process that can write the file may change after the validation. */
static void
arena_setup(struct mlc_arena *a, char *base, size_t size,
	    const struct mlc__hdr *h)
{
	a->base = base;
	a->size = size;
	a->hdr = (struct mlc__hdr *)(void *)base;
	a->stripes = (struct mlc__lock *)(void *)(base + h->ah_stripes_off);
	a->table = (struct mlc__bucket *)(void *)(base + h->ah_table_off);
	a->classes = (struct mlc__class *)(void *)(base + h->ah_classes_off);
	a->ghost = (struct mlc__ghost *)(void *)(base + h->ah_ghost_off);
	a->ghost_mask = (uint32_t)MLC__GHOST_LINES(h->ah_nbuckets) - 1;
	a->pages = (struct mlc__page *)(void *)(base + h->ah_pagedesc_off);
	a->ns = (struct mlc__ns *)(void *)(base + h->ah_ns_off);
	a->nsstats = (struct mlc__ns_stats *)(void *)(base + h->ah_nsstats_off);
	a->log = (struct mlc__log *)(void *)(base + h->ah_log_off);
	a->cells = (struct mlc__log_cell *)(void *)(base + h->ah_log_off +
						    sizeof(struct mlc__log));
	a->claims = (struct mlc__log_claim *)(void *)(a->cells +
							  h->ah_log_cells);
	a->flights = (struct mlc__flight_slot *)(void *)(base +
							 h->ah_flight_off);
	a->pages_off = h->ah_pages_off;
	a->page_size = h->ah_page_size;
	a->page_shift = (uint32_t)__builtin_ctz(h->ah_page_size);
	a->npages = h->ah_npages;
	a->pages_end = a->pages_off + (uint64_t)a->npages * a->page_size;
	a->seed = h->ah_seed;
	a->bucket_mask = h->ah_nbuckets - 1;
	a->stripe_mask = h->ah_nstripes - 1;
	a->log_cells = h->ah_log_cells;
	a->flight_slots = h->ah_flight_slots;
	a->nclasses = h->ah_nclasses;
	a->max_ns = h->ah_max_ns;
	a->neg_quota = h->ah_neg_quota;
	memcpy(a->class_size, h->ah_class_size, sizeof(a->class_size));
	a->refs = 1;
}

/* An arena made before this boot: rebuild it in place, which is only safe
 * while no other process has it mapped (we hold the exclusive lock).  The
 * rebuild writes as far as the header's sizes say, and arena_map()
 * validated them before the lock was ours: a process that writes the file
 * without mlc (it needs no lock to) could have changed them since, or the
 * file could have shrunk.  So the header is copied once and validated
 * again against the size mapped now, and only the copy is used; a file
 * now shorter than a header is refused before the copy. */
static int
arena_reset(int fd, uint64_t size)
{
	struct mlc__hdr cfg, seen;
	struct mlc__hdr *h;
	void *base;
	int rc;

	/* Before the copy: one out of a mapping shorter than a header reads
	 * past it (arena_map() checks the same before its own). */
	if (size < MLC__HDR_BYTES)
		return MLC_ECORRUPT;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	MLC_PAUSE(RESET_MAPPED);
	h = base;
	memcpy(&seen, h, sizeof(seen));
	rc = arena_validate((const char *)&seen, size);
	memset(&cfg, 0, sizeof(cfg));
	if (rc == 0)
		rc = layout_compute(&cfg, seen.ah_size, seen.ah_max_items,
				    seen.ah_page_size, seen.ah_log_cells,
				    seen.ah_flight_slots, seen.ah_max_ns,
				    seen.ah_neg_quota);
	if (rc == 0) {
		ck_pr_store_32(&h->ah_state, MLC__CREATING);
		rc = arena_build(base, &cfg);
	}
	munmap(base, size);
	return rc;
}

static bool
boot_matches(const struct mlc__hdr *h)
{
	uint8_t now[16], zero[16] = { 0 };

	read_boot_id(now);
	/* Unknown on either side (no procfs): trust the arena. */
	return memcmp(now, zero, 16) == 0 ||
	       memcmp(h->ah_boot_id, zero, 16) == 0 ||
	       memcmp(now, h->ah_boot_id, 16) == 0;
}

/* Map and validate an open, read-locked arena file. */
static int
arena_map(struct mlc_arena *a, int fd, uint32_t flags)
{
	struct mlc__hdr seen;
	struct stat st;
	void *base;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_uid != geteuid() && !(flags & MLC_ARENA_FOREIGN))
		return -EACCES;
	if ((uint64_t)st.st_size < MLC__HDR_BYTES)
		return MLC_ECORRUPT;
	base = mmap(NULL, (size_t)st.st_size, (flags & MLC_ARENA_RDONLY) ?
		    PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	/* Validated and used as one copy: see arena_setup(). */
	memcpy(&seen, base, sizeof(seen));
	rc = arena_validate((const char *)&seen, (uint64_t)st.st_size);
	if (rc == 0 && !(flags & MLC_ARENA_RDONLY) && !boot_matches(&seen))
		rc = -ESTALE;
	if (rc < 0) {
		munmap(base, (size_t)st.st_size);
		return rc;
	}
	MLC_PAUSE(ATTACH_VALIDATED);
	mlc__vm_advise(base, (size_t)st.st_size);
	arena_setup(a, base, (size_t)st.st_size, &seen);
	return 0;
}

/* Open what is at @p path without trusting it: anyone who can write the
 * directory (/dev/shm is world-writable) may have put a FIFO there, whose
 * open would block until a writer comes, a device, whose open may act, a
 * directory or a symlink.  O_NONBLOCK and O_NOCTTY make the open itself
 * harmless; only a regular file of ours (or any uid's, with FOREIGN) is
 * kept.  -EINVAL for any other kind of file, -EACCES for another owner. */
static int
arena_open_fd(const char *path, uint32_t flags)
{
	struct stat st;
	int fd, rc;

	fd = open(path, ((flags & MLC_ARENA_RDONLY) ? O_RDONLY : O_RDWR) |
		  O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0 && (fd = fd_past_stdio(fd)) < 0)
		return -errno;
	if (fd < 0) {
		/* ELOOP: a symlink; EISDIR: a directory opened for writing;
		 * ENXIO: a socket, or a device without its driver. */
		if (errno == ELOOP || errno == EISDIR || errno == ENXIO ||
		    errno == ENODEV)
			return -EINVAL;
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail;
	}
	if (st.st_uid != geteuid() && !(flags & MLC_ARENA_FOREIGN)) {
		rc = -EACCES;
		goto fail;
	}
	/* A regular file: reads and faults behave the same either way, but
	 * nothing below should see a flag it did not ask for. */
	if (fcntl(fd, F_SETFL, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

/* Does @p path still name the file open as @p fd?  An unlink of an idle
 * arena (MLC_ARENA_UNUSED) runs under the exclusive lock, so an attacher
 * that opened the name just before gets its shared lock only after the
 * name is gone: it must not keep an arena nobody can find by name. */
static int
name_still(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return -errno;
	if (stat(path, &b) < 0)
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -EAGAIN;
}

static int arena_attach_once(struct mlc_arena *a, const char *path,
			     uint32_t flags);

/* Attach an existing arena file: take the shared lock, map, validate;
 * again if the name was unlinked or replaced meanwhile. */
static int
arena_attach(struct mlc_arena *a, const char *path, uint32_t flags)
{
	int rc = -ETIMEDOUT;

	for (int round = 0; round < 8; round++) {
		rc = arena_attach_once(a, path, flags);
		if (rc < 0)
			return rc;
		rc = name_still(a->fd, path);
		if (rc == 0)
			return 0;
		munmap(a->base, a->size);
		close(a->fd);
		if (rc != -EAGAIN)
			return rc;	/* -ENOENT: gone */
	}
	return -ETIMEDOUT;
}

static int
arena_attach_once(struct mlc_arena *a, const char *path, uint32_t flags)
{
	struct timespec pause = { 0, 1000000 };
	int fd, rc;

	fd = arena_open_fd(path, flags);
	if (fd < 0)
		return fd;
	for (int tries = 0; tries < LOCK_WAIT_MS; tries++) {
		rc = ofd_lock(fd, F_RDLCK);
		if (rc == -EAGAIN) {	/* a reset is in progress */
			nanosleep(&pause, NULL);
			continue;
		}
		if (rc < 0)
			break;
		rc = arena_map(a, fd, flags);
		if (rc != -ESTALE)
			break;
		/* From an earlier boot: reset it if nobody has it mapped. */
		if (ofd_lock(fd, F_WRLCK) == 0) {
			struct stat st;

			MLC_PAUSE(RESET_LOCKED);
			rc = fstat(fd, &st) < 0 ? -errno :
			     arena_reset(fd, (uint64_t)st.st_size);
			if (rc < 0)
				break;
		} else {
			ofd_lock(fd, F_UNLCK);
			nanosleep(&pause, NULL);
		}
	}
	/* Still locked by a reset, or still of an earlier boot because
	 * another process kept it mapped (a read-only handle does not reset
	 * it) through every try: -ESTALE is no code of mlc_arena_open(). */
	if (rc == -EAGAIN || rc == -ESTALE)
		rc = -ETIMEDOUT;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	a->fd = fd;
	return 0;
}

static int
arena_open_named(struct mlc_arena *a, const char *name,
		 const struct mlc_arena_options *o, const struct mlc__hdr *cfg)
{
	char path[PATH_MAX];
	int fd = -1, rc;

	rc = arena_path(path, sizeof(path), name, o->flags);
	if (rc < 0)
		return rc;
	for (int round = 0; round < 8; round++) {
		rc = arena_attach(a, path, o->flags);
		if (rc == 0 && (o->flags & MLC_ARENA_EXCL) &&
		    (o->flags & MLC_ARENA_CREATE)) {
			munmap(a->base, a->size);
			close(a->fd);
			return -EEXIST;
		}
		if (rc != -ENOENT || !(o->flags & MLC_ARENA_CREATE))
			return rc;
		rc = arena_create_file(path, o, cfg, &fd);
		if (rc == -EEXIST || rc == -EAGAIN)
			continue;	/* another creator won: attach to it */
		if (rc < 0)
			return rc;
		rc = arena_map(a, fd, o->flags | MLC_ARENA_FOREIGN);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		a->fd = fd;
		return 0;
	}
	return -ETIMEDOUT;
}

static int
arena_open_anon(struct mlc_arena *a, const struct mlc__hdr *cfg)
{
	void *base;
	int rc;

	base = mmap(NULL, cfg->ah_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	/* Before the first touch: the faults allocate the pages. */
	mlc__vm_advise(base, cfg->ah_size);
	rc = arena_build(base, cfg);
	if (rc < 0) {
		munmap(base, cfg->ah_size);
		return rc;
	}
	arena_setup(a, base, cfg->ah_size, (const struct mlc__hdr *)base);
	a->fd = -1;
	return 0;
}

/* Is the attached arena @p h what @p cfg (computed from the options)
 * describes?  The index by its buckets, which max_items is rounded up
 * to, not by the max_items asked for: asked 1001, an arena made with
 * 1000 (256 buckets both) is what the options make, and was refused
 * (test-arena test_match_rounded_max_items, review AL).  The negative
 * quota, which the asked number sets, is compared on its own. */
static bool
layout_same(const struct mlc__hdr *h, const struct mlc__hdr *cfg)
{
	return h->ah_size == cfg->ah_size &&
	       h->ah_nbuckets == cfg->ah_nbuckets &&
	       h->ah_page_size == cfg->ah_page_size &&
	       h->ah_log_cells == cfg->ah_log_cells &&
	       h->ah_flight_slots == cfg->ah_flight_slots &&
	       h->ah_max_ns == cfg->ah_max_ns &&
	       h->ah_neg_quota == cfg->ah_neg_quota;
}

MLC_EXPORT int
mlc_arena_open(struct mlc_arena **arenap, const char *name,
	       const struct mlc_arena_options *opts)
{
	struct mlc_arena_options o;
	struct mlc__hdr cfg;
	struct mlc_arena *a;
	int rc;

	if (arenap == NULL)
		return -EINVAL;
	rc = mlc__options_copy(&o, sizeof(o), MLC__ARENA_OPTIONS_V0, opts);
	if (rc < 0)
		return rc;
	if ((rc = arena_options_check(&o)) < 0)
		return rc;
	if ((o.flags & MLC_ARENA_ANON) ? name != NULL : name == NULL)
		return -EINVAL;
	memset(&cfg, 0, sizeof(cfg));
	rc = layout_compute(&cfg, o.bytes, o.max_items, o.page_size,
			    o.log_cells, o.flight_slots, o.max_namespaces,
			    (uint32_t)((uint64_t)o.max_items * o.neg_quota_pct /
				       100));
	if (rc < 0)
		return rc;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	if (o.flags & MLC_ARENA_ANON)
		rc = arena_open_anon(a, &cfg);
	else
		rc = arena_open_named(a, name, &o, &cfg);
	if (rc < 0) {
		free(a);
		return rc;
	}
	a->flags = o.flags;
	a->procs_gen = UINT64_MAX;
	if ((o.flags & MLC_ARENA_MATCH) && !layout_same(a->hdr, &cfg)) {
		mlc_arena_close(a);
		return MLC_EMISMATCH;
	}
	mlc__procs_open(a, NULL);	/* list this process (if writable) */
	*arenap = a;
	return 0;
}

/* Layout inputs of the arena and of one these options would create. */
static int
layout_of(struct mlc_arena_options *o, struct mlc__hdr *cfg)
{
	int rc = arena_options_check(o);

	if (rc < 0)
		return rc;
	memset(cfg, 0, sizeof(*cfg));
	return layout_compute(cfg, o->bytes, o->max_items, o->page_size,
			      o->log_cells, o->flight_slots, o->max_namespaces,
			      (uint32_t)((uint64_t)o->max_items *
					 o->neg_quota_pct / 100));
}

MLC_EXPORT uint64_t
mlc_arena_min_bytes(const struct mlc_arena_options *opts)
{
	struct mlc_arena_options o, t;
	uint64_t lo = 0, hi = UINT64_C(1) << 40;	/* lo fails, hi fits */
	struct mlc__hdr cfg;

	if (mlc__options_copy(&o, sizeof(o), MLC__ARENA_OPTIONS_V0, opts) < 0)
		return 0;
	o.flags &= ~(uint32_t)(MLC_ARENA_RDONLY | MLC_ARENA_MATCH);
	t = o;
	t.bytes = hi;
	if (layout_of(&t, &cfg) < 0)
		return 0;
	while (hi - lo > 4096) {
		t = o;
		t.bytes = lo + ((hi - lo) / 2 & ~UINT64_C(4095));
		if (layout_of(&t, &cfg) == 0)
			hi = t.bytes;
		else
			lo = t.bytes;
	}
	return hi;
}

void
mlc__arena_ref(struct mlc_arena *a)
{
	ck_pr_inc_32(&a->refs);
}

void
mlc__arena_unref(struct mlc_arena *a)
{
	bool zero;

	ck_pr_dec_32_zero(&a->refs, &zero);
	if (!zero)
		return;
	munmap(a->base, a->size);
	if (a->fd >= 0)
		close(a->fd);	/* drops our OFD lock */
	free(a);
}

MLC_EXPORT int
mlc_arena_close(struct mlc_arena *arena)
{
	if (arena == NULL)
		return -EINVAL;
	if (mlc__arena_whole(arena))	/* truncated: see mlc_cache_close() */
		mlc__procs_close(arena, NULL);
	arena->closed = true;
	mlc__arena_unref(arena);
	return 0;
}

/* Remove the temporary files that creators of @p path left when they
 * were killed half-way (their pid is gone). */
static void
tmp_sweep(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], prefix[PATH_MAX], victim[PATH_MAX * 2];
	size_t plen;
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 2,
		 slash ? path : "./");
	plen = (size_t)snprintf(prefix, sizeof(prefix), ".mlc-tmp.%s.",
				slash ? slash + 1 : path);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		/* Exactly "PID.N" after the prefix: the arena "NAME.7"
		 * has temporary files of its own, not ours. */
		pid = strtol(de->d_name + plen, &end, 10);
		if (end == de->d_name + plen || *end != '.' ||
		    strspn(end + 1, "0123456789") != strlen(end + 1) ||
		    end[1] == '\0')
			continue;
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;	/* its creator may still be at work */
		/* No such pid here, but the creator may be of another pid
		 * namespace: it holds a lock on its file while it lives. */
		snprintf(victim, sizeof(victim), "%s%s", dir, de->d_name);
		fd = arena_open_fd(victim, MLC_ARENA_FOREIGN);
		if (fd < 0)
			continue;
		if (ofd_lock(fd, F_WRLCK) == 0)
			unlink(victim);
		close(fd);
	}
	closedir(d);
}

/* Unlink @p path only if no process has it mapped: every mapper holds a
 * shared lock, so the exclusive one is ours only when nobody maps it, and
 * we unlink while holding it (attachers re-check the name, see
 * name_still()). */
static int
unlink_unused(const char *path)
{
	int fd, rc;

	fd = arena_open_fd(path, MLC_ARENA_FOREIGN);
	if (fd < 0)
		return fd;
	rc = ofd_lock(fd, F_WRLCK);
	if (rc == -EAGAIN)
		rc = -EBUSY;
	if (rc == 0 && unlink(path) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

MLC_EXPORT int
mlc_arena_unlink(const char *name, uint32_t flags)
{
	char path[PATH_MAX];
	int rc;

	if (name == NULL ||
	    (flags & ~(uint32_t)(MLC_ARENA_FILE | MLC_ARENA_UNUSED)))
		return -EINVAL;
	rc = arena_path(path, sizeof(path), name, flags);
	if (rc < 0)
		return rc;
	if (flags & MLC_ARENA_UNUSED)
		rc = unlink_unused(path);
	else
		rc = unlink(path) < 0 ? -errno : 0;
	tmp_sweep(path);
	return rc;
}

/* Is the arena's file still as long as the mapping?  The introspection
 * calls ask before reading: a file truncated from outside raises SIGBUS
 * at the first read past its new end (docs/reliability.md), and these
 * are what a long-lived process (an nginx worker's metrics, mlcctl
 * --watch) calls on a timer.  One fstat(); false only on proof (an
 * anonymous arena has no file).  A truncation after this check still
 * raises SIGBUS: nothing can close that window. */
bool
mlc__arena_whole(const struct mlc_arena *a)
{
	struct stat st;

	return a->fd < 0 || fstat(a->fd, &st) != 0 ||
	       (uint64_t)st.st_size >= a->size;
}

/* The arena's bytes that huge pages map, measured at most once a
 * second per handle: the kernel makes /proc/self/smaps by walking every
 * page table entry of the process, so its cost grows with what the
 * process maps (milliseconds for a large arena), and a caller that reads
 * the info after every set (bench-scale-mem did) spent its time there.
 * Two words a racing thread may pair wrongly: a value at most a second
 * old either way. */
#define HUGE_EVERY_MS 1000

static uint64_t
arena_huge_bytes(struct mlc_arena *a)
{
	uint64_t now = mlc__now_ms(), at = ck_pr_load_64(&a->huge_at), b;

	if (at != 0 && now - at < HUGE_EVERY_MS)
		return ck_pr_load_64(&a->huge_bytes);
	b = mlc__vm_huge_bytes(a->base, a->size);
	ck_pr_store_64(&a->huge_bytes, b);
	ck_pr_store_64(&a->huge_at, now != 0 ? now : 1);
	return b;
}

MLC_EXPORT int
mlc_arena_info(struct mlc_arena *a, struct mlc_arena_info *info)
{
	struct mlc_arena_info in;
	struct mlc__hdr *h;

	if (a == NULL || info == NULL || info->size < sizeof(size_t) * 2)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	h = a->hdr;
	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	in.bytes = a->size;
	in.max_items = ((uint64_t)a->bucket_mask + 1) * MLC__SLOTS;
	in.items = mlc__live_count(ck_pr_load_64(&h->ah_items));
	in.neg_items = mlc__live_count(ck_pr_load_64(&h->ah_neg_items));
	in.page_size = a->page_size;
	in.pages = a->npages;
	in.pages_free = ck_pr_load_32(&h->ah_pool_free);
	in.value_max = a->page_size - MLC__ITEM_HDR;
	in.sets = ck_pr_load_64(&h->ah_sets);
	in.evictions = ck_pr_load_64(&h->ah_evictions);
	in.expired_reclaimed = ck_pr_load_64(&h->ah_expired);
	in.index_evictions = ck_pr_load_64(&h->ah_index_evictions);
	in.page_moves = ck_pr_load_64(&h->ah_page_moves);
	in.orphans_reclaimed = ck_pr_load_64(&h->ah_orphans);
	in.repairs = ck_pr_load_64(&h->ah_repairs);
	in.write_failures = ck_pr_load_64(&h->ah_write_failures);
	in.read_giveups = ck_pr_load_64(&h->ah_read_giveups);
	in.stale_frees = ck_pr_load_64(&h->ah_stale_frees);
	in.orphan_skips = ck_pr_load_64(&h->ah_orphan_skips);
	in.log_head = ck_pr_load_64(&a->log->lg_head);
	in.namespaces = ck_pr_load_32(&h->ah_ns_count);
	in.format = MLC_ARENA_FORMAT;
	in.created_ms = h->ah_created;
	in.index_moves = ck_pr_load_64(&h->ah_index_moves);
	in.huge_bytes = arena_huge_bytes(a);
	mlc__procs_count(a, &in);
	mlc__out_copy(info, &in, sizeof(in));
	return 0;
}

/* ---- size classes -------------------------------------------------- */

MLC_EXPORT int
mlc_arena_class(struct mlc_arena *a, uint32_t i, struct mlc_class_info *info)
{
	struct mlc_class_info in;
	struct mlc__class *cl;

	if (a == NULL || info == NULL || info->size < sizeof(size_t) + 8)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	if (i >= a->nclasses)
		return -ENOENT;
	cl = &a->classes[i];
	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	in.chunk_size = ck_pr_load_32(&cl->cl_size);
	in.chunks_per_page = ck_pr_load_32(&cl->cl_per_page);
	in.evictions = ck_pr_load_64(&cl->cl_evictions);
	in.pages_in = ck_pr_load_64(&cl->cl_moves_in);
	in.pages_out = ck_pr_load_64(&cl->cl_moves_out);
	/* Count from the descriptors, not cl_pages: a page is the class's
	 * when its descriptor says so. */
	for (uint32_t p = 0; p < a->npages; p++) {
		uint32_t nfree;

		if (ck_pr_load_32(&a->pages[p].pg_class) != i + 1)
			continue;
		nfree = ck_pr_load_32(&a->pages[p].pg_nfree);
		in.pages++;
		in.chunks_free += MLC_MIN(nfree, in.chunks_per_page);
		in.chunks_used += in.chunks_per_page -
				  MLC_MIN(nfree, in.chunks_per_page);
	}
	mlc__out_copy(info, &in, sizeof(in));
	return 0;
}

/* ---- namespaces ---------------------------------------------------- */

MLC_EXPORT int
mlc_namespace_info(struct mlc_arena *a, const char *ns,
		   struct mlc_namespace_info *info)
{
	struct mlc_namespace_info in;
	struct mlc__ns_stats *st;
	uint32_t idx, gen;
	int rc;

	if (a == NULL || ns == NULL || info == NULL ||
	    info->size < sizeof(size_t) + 8)
		return -EINVAL;
	if (!mlc__arena_whole(a))
		return MLC_ECORRUPT;
	if ((rc = mlc__ns_find(a, ns, &idx)) < 0)
		return rc;
	st = &a->nsstats[idx];
	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	/* Each word's count if it is at the namespace's generation; one
	 * behind it is a word a purge has not moved on yet (write.c,
	 * ns_gen_next()). */
	gen = ck_pr_load_32(&a->ns[idx].ns_gen);
	in.items = mlc__ns_word_count(ck_pr_load_64(&st->nt_items), gen, 32);
	in.bytes = mlc__ns_word_count(ck_pr_load_64(&st->nt_bytes), gen,
				      MLC__NS_BYTES_SHIFT);
	in.purges = gen - 1;	/* starts at 1 */
	mlc__out_copy(info, &in, sizeof(in));
	return 0;
}

/* Find the namespace @p name without the lock: a used entry's name never
 * changes.  -ENOENT if it does not exist. */
int
mlc__ns_find(struct mlc_arena *a, const char *name, uint32_t *idx)
{
	size_t len = strlen(name);

	if (len == 0 || len > MLC_NAME_MAX)
		return -EINVAL;
	for (uint32_t i = 1; i < a->max_ns; i++) {
		struct mlc__ns *ns = &a->ns[i];

		/* Acquire, paired with the adder's release of ns_used: the
		 * name was written before it (an explicit pair, which
		 * ThreadSanitizer follows, where a fence it ignores made
		 * the name's bytes look racy once mlc__ns_open() came here
		 * without the lock). */
		if (!__atomic_load_n(&ns->ns_used, __ATOMIC_ACQUIRE))
			continue;
		if (ns->ns_name_len == len && memcmp(ns->ns_name, name, len) == 0) {
			*idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* The namespace lock's repair: an opener that died holding it may have
 * marked its entry used (the entry is whole by then) and not counted it
 * yet, which left ah_ns_count one short (check reported it).  Count the
 * table again, and clear the dead opener's mark (mlc__ns_open()). */
static void
ns_recount(struct mlc_arena *a, void *ctx)
{
	uint32_t used = 0;

	(void)ctx;
	for (uint32_t i = 1; i < a->max_ns; i++)
		used += ck_pr_load_32(&a->ns[i].ns_used) != 0;
	ck_pr_store_32(&a->hdr->ah_ns_count, used);
	ck_pr_fence_store();
	ck_pr_store_64(&a->hdr->ah_ns_lock.lk_aux, 0);
}

/* How long an opener of an existing namespace waits for the namespace
 * lock to repair what a dead adder left (below). */
#define NS_REPAIR_MS 200

/* Find or add the namespace @p name.  Entries are never removed, so an
 * index stays valid for the arena's life.  One that exists is found
 * without the lock (as mlc__ns_find() does), so a process that opens
 * caches on existing namespaces takes no lock that lives in the arena
 * (a garbage kind word makes glibc abort: docs/reliability.md, bug 3),
 * but while an adder's mark is set (one at work, or one that died, whose
 * count the lock's next taker repairs: ns_recount()): then it takes the
 * lock as the attached-process table's is taken, only if its kind is
 * ours and for at most NS_REPAIR_MS, and opens the namespace anyway.
 * Adding one takes the lock, if its kind is ours, else MLC_ECORRUPT. */
int
mlc__ns_open(struct mlc_arena *a, const char *name, uint32_t *idx)
{
	size_t len = strlen(name);
	uint32_t free_idx = UINT32_MAX;
	int rc;

	if (len == 0 || len > MLC_NAME_MAX)
		return -EINVAL;
	rc = mlc__ns_find(a, name, idx);
	if (rc == 0 && ck_pr_load_64(&a->hdr->ah_ns_lock.lk_aux) != 0 &&
	    mlc__lock_take_for(a, &a->hdr->ah_ns_lock, NS_REPAIR_MS,
			       ns_recount, NULL) == 0)
		mlc__lock_give(&a->hdr->ah_ns_lock);
	if (rc != -ENOENT)
		return rc;
	if (!lock_kind_ok(&a->hdr->ah_ns_lock))
		return MLC_ECORRUPT;
	rc = mlc__lock_take(a, &a->hdr->ah_ns_lock, ns_recount, NULL);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < a->max_ns; i++) {
		struct mlc__ns *ns = &a->ns[i];

		if (!ck_pr_load_32(&ns->ns_used)) {
			if (free_idx == UINT32_MAX)
				free_idx = i;
			continue;
		}
		if (ns->ns_name_len == len && memcmp(ns->ns_name, name, len) == 0) {
			*idx = i;
			goto out;
		}
	}
	if (free_idx == UINT32_MAX) {
		rc = -ENOSPC;
		goto out;
	}
	a->ns[free_idx].ns_name_len = (uint8_t)len;
	memcpy(a->ns[free_idx].ns_name, name, len);
	ck_pr_store_32(&a->ns[free_idx].ns_gen, 1);
	/* Live counts at generation 1, at 0 (struct mlc__ns_stats): an
	 * entry is linked only once the namespace is in use. */
	ck_pr_store_64(&a->nsstats[free_idx].nt_items, UINT64_C(1) << 32);
	ck_pr_store_64(&a->nsstats[free_idx].nt_bytes,
		       UINT64_C(1) << MLC__NS_BYTES_SHIFT);
	/* Name, generation and counts before ns_used: a half-made entry left
	 * by a dead opener is unused, and the next opener overwrites it.
	 * ns_used and the count are two stores: the lock's aux word marks
	 * them in progress for mlc_arena_check() (check.c: ns_count_agrees),
	 * set before the first and cleared after the second. */
	ck_pr_store_64(&a->hdr->ah_ns_lock.lk_aux, 1);
	ck_pr_fence_store();
	/* Release: mlc__ns_find() reads the name after an acquire of it. */
	__atomic_store_n(&a->ns[free_idx].ns_used, 1, __ATOMIC_RELEASE);
	MLC_PAUSE(NS_MARKED);
	ck_pr_fence_store();
	ck_pr_inc_32(&a->hdr->ah_ns_count);
	ck_pr_fence_store();
	ck_pr_store_64(&a->hdr->ah_ns_lock.lk_aux, 0);
	*idx = free_idx;
out:
	mlc__lock_give(&a->hdr->ah_ns_lock);
	return rc;
}
