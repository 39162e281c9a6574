/*
 * mlc: a multi-level key/value cache for programs that run as several
 * processes on one host.
 *
 *   L1  a private cache in each handle: a hit touches no shared memory
 *       except one load of the invalidation log head, and moves nothing.
 *       Its eviction is S3-FIFO's: new keys enter a small FIFO queue (a
 *       tenth of lru_size at first, adapted to the workload); an entry hit
 *       twice there moves on to the main queue, the others leave and are
 *       remembered for a while (a key read again soon enters main); main
 *       evicts its oldest entry not hit since it was last passed.  So keys
 *       read once (a scan) leave without pushing out keys read again.
 *   L2  a shared-memory arena (POSIX shm by name, a file, or an anonymous
 *       mapping made before fork()), attached by unrelated processes at any
 *       address.  Readers never take a lock.
 *   L3  the caller's loader, run by one process at a time per key while the
 *       others wait for its outcome (single flight; a value larger than
 *       value_max, which L2 cannot hold, is not shared: its waiters load it
 *       themselves: docs/semantics.md, "Values").
 *
 * Conventions
 *   - Every function returns 0 on success or a negative code: -errno, or one
 *     of enum mlc_error.  mlc_strerror() describes every code mlc returns.
 *   - Options structs start with a size field that the CALLER sets to
 *     sizeof(struct ...) in its own build: use the *_INIT macros, which
 *     give the struct zeroed but for its size, in C and in C++.  Zero in
 *     any other field means "the default".  A struct from a newer mlc whose
 *     extra fields are all zero is accepted; non-zero extra fields give
 *     -E2BIG.
 *   - Out-parameters are written only on success.
 *   - Times are milliseconds on CLOCK_MONOTONIC, read through
 *     CLOCK_MONOTONIC_COARSE (one vDSO read): its tick (clock_getres(),
 *     1 to 4 ms on Linux) is their resolution, so a value may be served up
 *     to one tick past its TTL.  A non-zero TTL shorter than 1 ms is not
 *     representable; every non-zero TTL is at least 1 ms.
 *
 * Caveats
 *   - Arenas must live on a local filesystem (tmpfs, /dev/shm, a local
 *     disk).  Network filesystems do not give the memory ordering or the
 *     locking mlc relies on.
 *   - All processes sharing an arena must use the same mlc format, the same
 *     C library (the robust mutexes inside are glibc's) and the same
 *     architecture; attach refuses any other with MLC_EFORMAT.
 *   - The arena is trusted by every process that maps it.  Give it to one
 *     user (mode 0600, the default) or one group (0660).  A corrupt arena can
 *     make lookups miss or fail, never crash a reader or make it read
 *     outside the mapping.  The boundary is the user, not the mode: every
 *     process of the arena's user can open it, and processes of one user can
 *     usually read each other's memory (/proc/PID/mem, within the kernel's
 *     ptrace rules).  Run the processes that share an arena as a dedicated
 *     user.  With MLC_ARENA_FILE, a symlink at the path is refused but
 *     symlinks in its directories are followed: keep them writable only by
 *     that user.
 *   - Truncating the backing object from outside while it is mapped raises
 *     SIGBUS in the processes that touch the lost pages, as with any
 *     mapping.  Later attaches refuse the file (its size is not the
 *     header's) and mlc_arena_check() reports it without touching them.
 *   - Per-handle statistics (struct mlc_stats) reach the namespace's shared
 *     counters within the bound that mlc_namespace_stats() states (1 s
 *     while the handle is used), in mlc_stats() and in mlc_cache_close():
 *     a process killed by a signal loses what each of its handles counted
 *     since.  Arena-wide counters (mlc_arena_info) are never lost.
 *   - A cache handle is used by one thread at a time; open one per thread.
 *     An arena handle may be shared by every thread of a process.
 *   - fork(): arena and cache handles are inherited.  A cache handle first
 *     used in a child empties its L1 there (a thread of the parent may
 *     have been changing it) and goes on reading the invalidation log from
 *     where the parent had read it, whichever call comes first: a cache
 *     layered over the handle (mlc_update_records()) hears of every change
 *     its inherited copy has not seen.  mlc_update_records() and
 *     mlc_update_ex() report MLC_UPDATE_ALL when they are that first use.
 *     Values held across fork() stay valid in both processes.  An anonymous arena can only be shared
 *     this way.  Only fork(): a child made by _Fork(), vfork() or a raw
 *     clone() runs no fork handler and must exec or _exit without calling
 *     mlc (it would act under its parent's identity).
 *   - A process that dies while writing leaves the arena usable: the next
 *     process to take the lock it held repairs what it protected, memory it
 *     held is reclaimed by the allocator's sweep, and readers never wait for
 *     it.
 *   - A thread that another thread's exec() ends inside an mlc call dies
 *     in a process that lives on under the same pid and start time, which
 *     is what proves a writer dead: its locks are repaired (the kernel
 *     marks them), but until the process exits the chunk it was filling
 *     is not reclaimed, a load it ran is taken over only at the flight's
 *     lease (30 s), and its log claim counts as a stopped writer's.  A
 *     flight claim it was making counts as a live one's: while that
 *     process lives, a flight whose claimer dies before naming itself (in
 *     any process) is taken over at its waiters' lease, not after a second,
 *     and one of a key nobody asks for again keeps its slot.  Call exec()
 *     when no other thread is inside mlc, or fork() first.
 *   - The index has a fixed capacity (max_items, chosen at creation).  When
 *     a key's two candidate buckets are full, entries move to their other
 *     bucket to make room (index_moves); only when none can is a victim
 *     among them evicted (index_evictions), at about 97% of the slots.
 *   - An arena made before a reboot (a file arena) is reset when attached.
 */
#ifndef MLC_H
#define MLC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * MLC__SIZED(type): what each *_INIT macro gives, a @p type that is zero
 * but for its size, sizeof(type) in the caller's build.  In C a designated
 * initializer; C++ has those only from C++20 (g++ -pedantic refuses them
 * before), and g++ -Wextra warns of every field one leaves out, so there
 * it is a value-initialized object that a lambda returns (C++11).
 */
#ifdef __cplusplus
#define MLC__SIZED(type) \
	([]() { type mlc_o_ = {}; mlc_o_.size = sizeof(mlc_o_); return mlc_o_; }())
#else
#define MLC__SIZED(type) { .size = sizeof(type) }
#endif

/**
 * The version of this header, as macros that #if can test (0.1.0 made them
 * enum constants, which #if reads as 0).  MLC_VERSION_NUMBER is
 * MAJOR << 16 | MINOR << 8 | PATCH, the form mlc_version() returns for the
 * library actually loaded: `#if MLC_VERSION_NUMBER >= 0x000200`.
 */
#define MLC_VERSION_MAJOR 0
#define MLC_VERSION_MINOR 3
#define MLC_VERSION_PATCH 0
#define MLC_VERSION_NUMBER \
	((MLC_VERSION_MAJOR << 16) | (MLC_VERSION_MINOR << 8) | MLC_VERSION_PATCH)

/** Library-only error codes; every other failure is a negative errno. */
enum mlc_error {
	MLC_EFORMAT  = -4201,	/* arena made by an incompatible build */
	MLC_ECORRUPT = -4202,	/* arena failed validation */
	MLC_ELOADER  = -4203,	/* loader failed, no stale value to serve */
	MLC_ECODEC   = -4204,	/* the codec's decode failed */
	MLC_ESTALE   = -4205,	/* write fenced out: the key changed meanwhile */
	MLC_EMISMATCH = -4206,	/* MLC_ARENA_MATCH: the arena that exists has
				 * another size or layout (0.2) */
};

/** Limits that do not depend on an arena's configuration. */
enum mlc_limits {
	MLC_KEY_MAX      = 65535,	/* bytes in a key; keys are 1..MAX */
	MLC_NAME_MAX     = 47,		/* bytes in a namespace name */
	MLC_ARENA_NAME_MAX = 200,	/* bytes in an shm arena name */
};

/** A TTL that never expires (any *ttl_ms field, and value->ttl_ms). */
enum mlc_ttl { MLC_TTL_DEFAULT = 0, MLC_TTL_NEVER = -1 };

struct mlc_arena;	/* one per process per arena; thread-safe */
struct mlc_cache;	/* a namespace view with its own L1; one thread */

/* ------------------------------------------------------------------ */
/* Arenas                                                              */

enum mlc_arena_flags {
	MLC_ARENA_CREATE  = 1 << 0,	/* create if absent */
	MLC_ARENA_EXCL    = 1 << 1,	/* with CREATE: fail if it exists */
	MLC_ARENA_FILE    = 1 << 2,	/* name is a file path, not shm */
	MLC_ARENA_ANON    = 1 << 3,	/* anonymous; name must be NULL */
	MLC_ARENA_FOREIGN = 1 << 4,	/* allow an arena owned by another uid */
	MLC_ARENA_RDONLY  = 1 << 5,	/* map read-only, to inspect it: info,
					 * namespaces, counters and check work;
					 * mlc_cache_open() gives -EPERM.  An
					 * arena of an earlier boot is not reset.
					 * Not with CREATE or ANON. */
	MLC_ARENA_UNUSED  = 1 << 6,	/* mlc_arena_unlink() only: remove the
					 * name only if no process has the
					 * arena mapped */
	MLC_ARENA_MATCH   = 1 << 7,	/* an arena that exists is attached only
					 * if it is what these options make
					 * (bytes and every layout field, zeros
					 * meaning the defaults, max_items as
					 * rounded up), else MLC_EMISMATCH
					 * (0.2) */
};

struct mlc_arena_options {
	size_t   size;		/* sizeof(struct mlc_arena_options) */
	uint32_t flags;		/* enum mlc_arena_flags */
	uint32_t mode;		/* permission bits (at most 0777); 0: 0600 */
	uint64_t bytes;		/* arena size; 0: 64 MiB; at most 2^46
				 * (64 TiB); creation only */
	uint32_t max_items;	/* index capacity wanted, at most 2^30;
				 * 0: an index of
				 * at most 1/16 of bytes (6.25% at a power
				 * of two; 0.2.0: bytes / 512), which
				 * values of ~80 B and more (16 B keys)
				 * do not outgrow: smaller ones want more
				 * (docs/internals.md, "Sizing").
				 * Rounded up to whole buckets (a power of
				 * two of 7-slot buckets at 80% load):
				 * mlc_arena_info() reports the result.
				 * A bucket costs 64 bytes of index and
				 * 32 of the eviction's ghost */
	uint32_t page_size;	/* allocator page, power of 2 in
				 * [64 KiB, 16 MiB]; 0: 1 MiB, or in an
				 * arena under 32 MiB the largest at
				 * most 1/32 of its bytes (at least 64
				 * KiB; 512 KiB for 16 MiB).  The
				 * largest item is one page: value_max
				 * in mlc_arena_info(). */
	uint32_t log_cells;	/* invalidation log, power of 2 in
				 * [64, 2^24]; 0: 65536 */
	uint32_t flight_slots;	/* single-flight slots, power of 2 in
				 * [16, 2^20]; 0: 4096 */
	uint32_t max_namespaces; /* 0: 64, at most 4095 */
	uint32_t neg_quota_pct;	/* % of max_items (as asked for, not as
				 * rounded up) negative entries may use
				 * before they are evicted first, by the
				 * memory's sweep and a full index's
				 * eviction alike; 0: 25; at most 100 */
	/* end of v0.1: append below; never reorder, resize or remove */
};
#define MLC_ARENA_OPTIONS_INIT MLC__SIZED(struct mlc_arena_options)

/**
 * Create or attach the arena @p name and return a handle to it.
 *
 * @p name is an shm name ("mlc-demo" or "/mlc-demo": 1 to
 * MLC_ARENA_NAME_MAX bytes after the optional leading '/', no other '/',
 * no byte below 0x20 (DEL, 0x7f, is taken), not "." or ".."), a file
 * path with MLC_ARENA_FILE (shorter than PATH_MAX - 64 bytes), or NULL
 * with MLC_ARENA_ANON (an anonymous shared mapping, shared only with
 * children forked after this call).  Creation sizes the backing object with
 * posix_fallocate() (no SIGBUS on a full /dev/shm) and publishes the header
 * last; concurrent creators and attachers agree on one arena.  The arena is
 * built in an unnamed file (O_TMPFILE; elsewhere a file with an unguessable
 * name) and linked to the name when whole, so files others plant in the
 * directory cannot block creation.  Attaching opens the name without
 * blocking and without following a symlink, keeps only a regular file, and
 * validates the header (including a checksum of its fixed part) and the
 * file's size, refusing what it cannot prove sound and leaving it as it
 * was.  The layout fields of @p opts (bytes included) matter only on
 * creation: attaching an arena that exists keeps its own size and layout,
 * which mlc_arena_info() reports, unless MLC_ARENA_MATCH asks for exactly
 * these (then MLC_EMISMATCH; remove the name to make it anew).  Opening the
 * same arena twice in one process gives two handles, each with its own
 * mapping of the same memory.  A handle of a named arena keeps one
 * descriptor of its file open until mlc_arena_close(): close-on-exec, and
 * never 0, 1 or 2, so that a process started with stdin, stdout or
 * stderr closed does not write its output into the arena.
 *
 * Thread-safe.  The handle is inherited by fork(); children open their own
 * caches on it.
 *
 * @return 0 and *@p arenap, or:
 *   -EINVAL        bad argument, name or option (bad size field included),
 *                  @p bytes too small for the layout the other options
 *                  make (mlcctl reports the minimum), or something that
 *                  is not a regular file at the name: a symlink, FIFO,
 *                  directory, device or socket (refused at once: a FIFO
 *                  does not block the open)
 *   -E2BIG         @p opts sets fields this mlc does not know
 *   -ENOENT        no such arena and MLC_ARENA_CREATE not given
 *   -EEXIST        it exists and MLC_ARENA_EXCL was given
 *   -EACCES        mode bits deny us, or another uid owns it (no FOREIGN)
 *   -ENOSPC        the backing filesystem is too small for @p bytes
 *   -ETIMEDOUT     another process kept the arena locked (resetting an
 *                  arena of an earlier boot) too long, or kept an arena
 *                  of an earlier boot mapped (a read-only handle, which
 *                  does not reset it), so that it could not be reset
 *   -EBUSY         (only where the filesystem lacks O_TMPFILE) four fresh
 *                  random temporary names were all taken
 *   MLC_ECORRUPT   not an mlc arena, a file whose size is not the one in
 *                  its header (truncated or grown), a header that fails
 *                  its checksum, or an inconsistent header
 *   MLC_EFORMAT    made by an mlc with another format or layout
 *   MLC_EMISMATCH  (MLC_ARENA_MATCH) it exists, with another size or
 *                  layout than @p opts make
 *   -ENOMEM        out of memory (and any other failure of open(),
 *                  fstat(), fcntl() or mmap(): its -errno, as -EMFILE)
 * @since 0.1
 */
int mlc_arena_open(struct mlc_arena **arenap, const char *name,
		   const struct mlc_arena_options *opts);

/**
 * The smallest bytes (a multiple of 4096) with which mlc_arena_open() can
 * create an arena of @p opts' other fields (its bytes field is ignored;
 * max_items 0 follows the size, as it does on creation; NULL: all
 * defaults), or 0 if @p opts is invalid or no size up to 2^40 fits.  No
 * memory is mapped.  The answer is about creation, so the flags that
 * concern only attaching, MLC_ARENA_RDONLY and MLC_ARENA_MATCH, are
 * ignored: with them it is the size the same options make without them
 * (RDONLY with CREATE, which mlc_arena_open() refuses, included).  Other
 * flags are checked as mlc_arena_open() checks them: an unknown bit,
 * MLC_ARENA_UNUSED or ANON with FILE gives 0.
 * Thread-safe.
 * @since 0.2
 */
uint64_t mlc_arena_min_bytes(const struct mlc_arena_options *opts);

/**
 * Drop the handle.  The mapping goes when every cache opened on it is
 * closed too; the arena itself stays until mlc_arena_unlink().
 * @return 0, or -EINVAL for NULL.
 * @since 0.1
 */
int mlc_arena_close(struct mlc_arena *arena);

/**
 * Remove the name @p name (flags: MLC_ARENA_FILE for a path).  Processes
 * that have it mapped keep using it; the next open by name creates anew.
 * Also removes the temporary files of creators of this name that were
 * killed while creating it.
 *
 * With MLC_ARENA_UNUSED, the name is removed only if no process has the
 * arena mapped (every mapper holds a shared lock on it; the unlink happens
 * under the exclusive one): the last of several cooperating programs, or
 * of an old and a new nginx master during a binary upgrade, removes it,
 * the others leave it.  An attach racing with it either maps the arena
 * before (and the name stays) or finds the name gone.  Handles of this
 * process count as mappers too: close them first.
 * @return 0, -EINVAL, -ENOENT, -EBUSY (MLC_ARENA_UNUSED: it is mapped),
 *   -EACCES, or another -errno from unlink.
 * @since 0.1
 */
int mlc_arena_unlink(const char *name, uint32_t flags);

/** Arena-wide facts and counters (shared by every process).  items and
 * sets include mlc's own short-lived records of failed or uncached loads
 * (kept for the processes that waited on them). */
struct mlc_arena_info {
	size_t   size;		/* sizeof(struct mlc_arena_info) */
	uint64_t bytes;		/* mapped size */
	uint64_t max_items;	/* index slots (at least the max_items
				 * asked for) */
	uint64_t items;		/* entries linked in the index */
	uint64_t neg_items;	/* of which negative entries */
	uint64_t page_size, pages, pages_free;
	uint64_t value_max;	/* largest key + value that fits, in bytes */
	uint64_t sets;		/* successful L2 writes */
	uint64_t evictions;	/* live entries evicted for room */
	uint64_t expired_reclaimed; /* expired entries reclaimed */
	uint64_t index_evictions; /* evicted because both buckets were full */
	uint64_t page_moves;	/* pages moved between size classes */
	uint64_t orphans_reclaimed; /* chunks left by dead writers */
	uint64_t repairs;	/* locks recovered from a dead owner */
	uint64_t write_failures; /* stores refused for lack of room (not
				  * values too big to ever fit: -E2BIG) */
	uint64_t log_head;	/* invalidation records ever published */
	uint64_t read_giveups;	/* lookups that found their bucket changing
				 * (or stuck mid-write) every try without
				 * finding their key, and answered as a
				 * miss */
	uint32_t namespaces;	/* namespaces in use */
	uint32_t format;	/* MLC arena format number */
	uint64_t stale_frees;	/* frees (and reclaims) found the chunk
				 * already freed or reused by someone else,
				 * and did nothing: a late freer never
				 * frees another key's memory */
	uint64_t orphan_skips;	/* chunks being written by a process that
				 * could not be proven dead (alive, or in
				 * another pid namespace): left alone */
	uint64_t created_ms;	/* when the arena was created: CLOCK_REALTIME
				 * in ms since the epoch (0.2) */
	uint64_t index_moves;	/* entries moved to their other bucket to
				 * make room for a new key, instead of an
				 * index eviction (0.2) */
	uint32_t procs;		/* processes with it attached, as
				 * mlc_arena_procs() lists them (0.2) */
	uint32_t arena_handles;	/* their arena handles (0.2) */
	uint64_t cache_handles;	/* their cache handles (0.2) */
	uint64_t procs_unlisted; /* times a process found the table of
				  * attached processes full and went
				  * unlisted (0.2) */
	uint64_t procs_pruned;	/* entries of processes that died without
				 * closing, freed (0.2) */
	uint64_t huge_bytes;	/* bytes of the arena that 2 MiB pages map
				 * (/proc/self/smaps); 0 where tmpfs gives
				 * 4 KiB pages, as /dev/shm does unless
				 * mounted huge=: docs/internals.md, "Huge
				 * pages" (after 0.3.0) */
	/* append below; never reorder, resize or remove */
};
#define MLC_ARENA_INFO_INIT MLC__SIZED(struct mlc_arena_info)

/**
 * Fill *@p info.  Counters are read without locks; each is exact, the set is
 * not a snapshot.  procs, arena_handles and cache_handles are
 * mlc_arena_procs()'s listing summed: they cost a read of /proc/PID/stat
 * per attached process, and on a writable handle free the entries of
 * processes proven dead.  huge_bytes is measured at most once a second per
 * arena handle (the value may be that old): a read of /proc/self/smaps,
 * which the kernel makes by walking every page table entry this process
 * maps (milliseconds for a large arena), and a byte read from every 2 MiB
 * of the arena.  Thread-safe.
 * Before reading, it compares the arena file's size with the mapping (one
 * fstat()): a file truncated from outside while mapped would raise SIGBUS
 * at the first read past its new end, so it answers MLC_ECORRUPT instead
 * and reads nothing there.  mlc_arena_class(), mlc_arena_namespace(),
 * mlc_arena_procs(), mlc_namespace_info(), mlc_namespace_stats() and
 * mlc_namespace_keys() do the same, and mlc_cache_close() and
 * mlc_arena_close() then leave the counters and the table of attached
 * processes alone (after 0.3.0), so that a process can let go of such an
 * arena.  A truncation after that check still raises SIGBUS.
 * @return 0, -EINVAL (NULL, or a bad info->size), or MLC_ECORRUPT (the
 *   file is shorter than the mapping).
 * @since 0.1
 */
int mlc_arena_info(struct mlc_arena *arena, struct mlc_arena_info *info);

/** A process with the arena attached (mlc_arena_procs()). */
struct mlc_proc_info {
	size_t   size;		/* sizeof(struct mlc_proc_info) */
	uint32_t pid;		/* in its own pid namespace */
	uint32_t flags;		/* enum mlc_proc_flags */
	uint64_t start_ticks;	/* its start time in clock ticks after boot
				 * (field 22 of /proc/PID/stat), which tells
				 * a reused pid apart; 0: unknown */
	uint64_t attached_ms;	/* when it first attached: CLOCK_REALTIME
				 * ms since the epoch, to the second */
	uint32_t arena_handles;	/* arena handles open in it */
	uint32_t cache_handles;	/* cache handles open in it */
	uint32_t pid_ns;	/* its pid namespace: the low 32 bits of the
				 * inode of /proc/PID/ns/pid; 0: unknown */
	uint32_t pad0;
};

enum mlc_proc_flags {
	MLC_PROC_SELF      = 1 << 0,	/* the calling process */
	MLC_PROC_UNCHECKED = 1 << 1,	/* its death cannot be proven from
					 * here (another pid namespace, or
					 * a start time unknown on either
					 * side): listed until it closes,
					 * or, of this namespace with its
					 * start time unknown, until its
					 * pid is gone */
};

/** Called by mlc_arena_procs() for each process; non-zero stops. */
typedef int mlc_proc_fn(void *arg, const struct mlc_proc_info *proc);

/**
 * Call @p fn for each process that has the arena attached: every process
 * that opened it with mlc_arena_open() (not MLC_ARENA_RDONLY, which
 * writes nothing: mlcctl's inspecting commands are never listed), and every
 * child of one after fork() that opened or used a cache handle on an
 * inherited arena handle, with its open arena and cache handles (a
 * child's inherited arena handle counts once it is listed).  A process
 * leaves the list when it closes its last handle, and a process that
 * dies without closing (SIGKILL, a crash) as soon as its death is
 * proven: its entry records its pid, start time and pid namespace, and
 * each listing checks /proc/PID/stat.  Proof needs the pid namespace of
 * the caller: a process of another one is listed with
 * MLC_PROC_UNCHECKED.  On a writable handle, the entries of the dead are
 * freed too (and the freeing is counted in mlc_arena_info's
 * procs_pruned); a read-only handle only leaves them out.  A process
 * that exec()s without closing keeps the mapping's entry until it exits.
 *
 * The table holds 96 processes.  An attach that finds it full first
 * frees the entries of the dead; if none can be freed, the process still
 * attaches and works, unlisted (procs_unlisted counts it), and its
 * handles are counted when a later mlc_cache_open() finds room.  Opening
 * and closing a handle gives up on the table's lock after about 200 ms
 * (it is held for microseconds, unless its holder is stopped or the
 * arena corrupt): the handle then works uncounted.
 *
 * Lock-free and without writing when nobody died; @p fn is called after
 * the table was read, outside any lock, so it may call mlc functions.  An
 * entry read while its process opens or closes a handle is read again.
 * Thread-safe; works on an MLC_ARENA_RDONLY handle.
 * @return 0; what @p fn returned, if not 0; -EINVAL; MLC_ECORRUPT (the
 *   arena's file was truncated: see mlc_arena_info(); after 0.3.0).
 * @since 0.2
 */
int mlc_arena_procs(struct mlc_arena *arena, mlc_proc_fn *fn, void *arg);

/**
 * The name of the @p i-th namespace in use (0-based, in table order) into
 * @p name (@p cap bytes, NUL-terminated).  Thread-safe.
 * @return 0, -ENOENT past the last one, -ENOBUFS if @p cap is too small,
 *   -EINVAL, or MLC_ECORRUPT (the arena's file was truncated: see
 *   mlc_arena_info()).
 * @since 0.1
 */
int mlc_arena_namespace(struct mlc_arena *arena, uint32_t i, char *name,
			size_t cap);

/** What mlc_arena_check() found. */
struct mlc_check_report {
	size_t   size;		/* sizeof(struct mlc_check_report) */
	uint64_t buckets, slots_used, bad_slots;
	uint64_t odd_versions;	/* buckets with a write in progress */
	uint64_t pages, pages_free, bad_pages;
	uint64_t chunks_live;	/* holding an item, or a piece of a chained
				 * one */
	uint64_t chunks_alloc, chunks_free;
	uint32_t problems;
	char     first_problem[160];
	uint64_t bad_header;	/* the file's size is not the mapping's, the
				 * header fails its checksum, or a live
				 * header field contradicts the data */
	uint64_t pages_moving;	/* 1: the page and pool counts were left
				 * unjudged, as a page move was in progress
				 * through every tally: not a problem
				 * (after 0.3.0) */
	uint64_t ns_making;	/* 1: the namespace count was left unjudged,
				 * as a namespace was being added through
				 * every walk of the table: not a problem
				 * (after 0.3.0) */
};
#define MLC_CHECK_REPORT_INIT MLC__SIZED(struct mlc_check_report)

/**
 * Walk the arena's index and pages without changing anything and report
 * what does not add up (mlcctl check): a slot that points outside the
 * pages, at a chunk that is not LIVE, not a whole chunk of its page's size
 * class, holding an item longer than the chunk or of a namespace that is
 * not in use or has not reached the item's generation (after 0.3.0), of a
 * generation its page never handed out, of another key's buckets, or at
 * the same chunk as another slot; page and pool counts.
 * What the allocator follows without a bound (bad_pages, after 0.3.0):
 * each size class's chunk size and count, and the page and chunk numbers
 * it keeps (in range), and each page's free list (only free chunks of the
 * page, as many as its count says, no cycle).  The header (bad_header):
 * the file's size against the mapping (a file truncated while mapped is
 * reported, and nothing past its end is read),
 * the checksum of its fixed part, and its live fields against the data:
 * an item's version or a stripe's fence above the version counter, an
 * item's hash that is not its key's under the seed, the namespace count,
 * the page pool list against the pool count, and the table of attached
 * processes (a free entry is all zero; a used one has a handle and no
 * twin; whether its process lives is mlc_arena_procs()'s business, not a
 * fault).  Statistics counters (sets, evictions, ...) and the lock words
 * cannot be checked.
 * Takes no lock, and takes no write on an arena in use for damage: each
 * bucket is read between two equal bucket versions (as a reader reads
 * it), a chunk seen in two slots counts only if neither bucket changed
 * since, and the page and pool counts are judged only from a tally that
 * no page move overlapped (movers mark their moves; a tally is taken
 * again while one does); a page's free list only from a walk its
 * descriptor did not change through, and one that does not add up while
 * its class's lock is held (a writer at work, stopped, or dead until the
 * lock's next taker rebuilds the class) is left unjudged.  A write in
 * progress shows as an odd version, a page move in progress through every
 * tally (a mover stopped, or dead
 * until the next taker of its lock repairs what it left) as pages_moving,
 * and a namespace being added through every walk of the namespace table
 * (its adder stopped, or dead until the next opener) as ns_making: none
 * is a problem.  A bucket whose version moved
 * through all of its 64 reads is judged from the last one, each slot only
 * if it held the same chunk, of the same generation, across the reads it
 * is judged by (as a reader proves an item it answers), so a chunk freed
 * and reused meanwhile is not taken for damage.  A file truncated during
 * the walk still raises SIGBUS.
 * @return 0 (consistent), MLC_ECORRUPT (see the report), -EINVAL.
 * @since 0.1
 */
int mlc_arena_check(struct mlc_arena *arena, struct mlc_check_report *rep);

/* ------------------------------------------------------------------ */
/* Carrying invalidations to other hosts                               */

enum mlc_event_op {
	MLC_EVENT_SET    = 1,	/* key given a new value (or negative) */
	MLC_EVENT_DELETE = 2,	/* key deleted */
	MLC_EVENT_PURGE  = 3,	/* whole namespace purged; no key */
};

/** One invalidation, as a transport sees it. */
struct mlc_event {
	uint32_t    op;		/* enum mlc_event_op */
	uint32_t    ns_len;
	const char *ns;		/* namespace name (not NUL-terminated) */
	const void *key;	/* NULL for MLC_EVENT_PURGE */
	size_t      key_len;
	uint64_t    version;	/* this arena's L2 version of the change */
};

/**
 * Called after each set, delete and purge made through caches of this
 * arena handle in this process, on the calling thread, after the change is
 * in L2 and in the local log.  @p ev and what it points to are valid during
 * the call only.  It must not block for long (it runs inside mlc_set()
 * and friends).  It may call the cache, on the same cache handle too: such
 * a call applies the log like any other, and a value the outer call would
 * have kept in L1 is not kept there if the hook's calls changed that L1
 * (docs/semantics.md, "Calls made from callbacks").
 */
typedef void mlc_event_fn(void *arg, const struct mlc_event *ev);

/**
 * Install (or with NULL remove) the event hook of @p arena.  Set it before
 * caches are used from other threads.  Removing or replacing it does not
 * wait for calls already inside the old hook: free what it uses only once
 * no set, delete or purge can be running on this arena handle.
 * @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_arena_set_event_hook(struct mlc_arena *arena, mlc_event_fn *fn,
			     void *arg);

/**
 * Apply an invalidation received from elsewhere: a SET or DELETE drops the
 * key from this arena's L2 (the next get loads the new value), a PURGE
 * purges the namespace (its key and key_len are ignored); either way
 * every local L1 learns it through the log.  An event of a namespace
 * this arena has not got changes nothing and creates nothing: nothing of
 * it is cached here (0.3.0 and earlier created the namespace, and events
 * from elsewhere could fill the namespace table).  A key that
 * cannot be dropped (its stripe lock is damaged: MLC_ECORRUPT for a set)
 * takes its whole namespace with it, so that no process keeps the old
 * value.  The event hook is NOT called for it, so relays cannot loop.
 * Thread-safe.
 * @return 0, -EINVAL (bad event), -E2BIG (key too long), -EPERM (a
 *   read-only arena handle).
 * @since 0.1
 */
int mlc_arena_apply_event(struct mlc_arena *arena, const struct mlc_event *ev);

/* ------------------------------------------------------------------ */
/* Cache handles                                                       */

/**
 * A codec (lua-resty-mlcache's l1_serializer): L2 holds bytes, each L1
 * holds the object decode() made from them.  decode() returns 0 and sets
 * *obj, or a negative code; a failure is MLC_ECODEC for the caller, the
 * bytes stay in L2 and the next lookup decodes again.  free_fn() is called
 * once for each object, when no L1 entry and no value refers to it.
 */
typedef int mlc_decode_fn(void *arg, const void *data, size_t len,
			  void **obj);
typedef void mlc_free_fn(void *arg, void *obj);
struct mlc_codec {
	mlc_decode_fn *decode;
	mlc_free_fn   *free_fn;
	void          *arg;
};

enum mlc_lock_policy {
	MLC_LOCK_DEFAULT = 0,	/* = MLC_LOCK_STALE */
	MLC_LOCK_ERROR   = 1,	/* give up with -ETIMEDOUT */
	MLC_LOCK_LOAD    = 2,	/* run the loader without single flight */
	MLC_LOCK_STALE   = 3,	/* serve a stale value, else -ETIMEDOUT */
};

enum mlc_cache_flags {
	MLC_CACHE_MANUAL_UPDATE = 1 << 0, /* only mlc_update() applies the log */
	MLC_CACHE_NO_L1         = 1 << 1, /* every lookup reads L2 */
};

struct mlc_cache_options {
	size_t   size;		/* sizeof(struct mlc_cache_options) */
	uint32_t flags;		/* enum mlc_cache_flags */
	uint32_t lru_size;	/* L1 entries; 0: 1024; at most 2^28
				 * (eviction: see the top of this file) */
	uint64_t lru_bytes;	/* L1 value bytes; 0: no byte bound */
	int64_t  ttl_ms;	/* 0: 30 s; MLC_TTL_NEVER */
	int64_t  neg_ttl_ms;	/* negative entries; 0: ttl_ms */
	int64_t  resurrect_ttl_ms; /* serve and re-store stale values this
				    * long when the loader fails; 0: off */
	int64_t  err_ttl_ms;	/* share a loader error this long (a
				 * purge, or a later load whose value
				 * is stored through a handle with
				 * err_ttl_ms, ends it); 0: off */
	uint32_t lock_timeout_ms; /* wait for another's load; 0: 5 s */
	uint32_t lock_lease_ms;	/* a load's lease; 0: 30 s */
	uint32_t lock_policy;	/* enum mlc_lock_policy */
	uint32_t update_budget;	/* records per mlc_update(); 0: all */
	const struct mlc_codec *codec; /* NULL: values are bytes */
	/* end of v0.1: append below; never reorder, resize or remove */
};
#define MLC_CACHE_OPTIONS_INIT MLC__SIZED(struct mlc_cache_options)

/**
 * Open a handle on the namespace @p ns (1..MLC_NAME_MAX bytes, any bytes
 * but NUL) of @p arena, creating the namespace on first use.  Keys of
 * different namespaces never meet, whatever their bytes.  The handle keeps
 * a reference to the arena: closing the arena first is allowed.
 *
 * One thread at a time per handle.  Inherited by fork() (see Caveats).
 * Opening reads the invalidation log's last lap (log_cells words: 40 to
 * 300 us at the default 65536, about 1 ms per million cells), so that no
 * change in progress is missed: open handles once, not per request.
 *
 * @return 0 and *@p cachep, or -EINVAL, -E2BIG (opts from a newer mlc),
 *   -ENOMEM, -ENOSPC (the namespace table is full), -EPERM (the arena was
 *   opened with MLC_ARENA_RDONLY), MLC_ECORRUPT (the namespace table's
 *   lock, taken only to add a namespace, is damaged: a holder died and a
 *   later taker left it unrecoverable, or its bytes are not a lock of
 *   mlc's (after 0.3.0)).
 * @since 0.1
 */
int mlc_cache_open(struct mlc_cache **cachep, struct mlc_arena *arena,
		   const char *ns, const struct mlc_cache_options *opts);

/**
 * Close the handle and free its L1.  Values still held stay valid until
 * released.  @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_cache_close(struct mlc_cache *cache);

/* ------------------------------------------------------------------ */
/* Values                                                              */

enum mlc_value_flags {
	MLC_NEGATIVE  = 1 << 0,	/* a cached "not found" */
	MLC_STALE     = 1 << 1,	/* expired, served because allowed */
	MLC_NO_EXPIRY = 1 << 2,	/* never expires (ttl_ms = MLC_TTL_NEVER) */
	MLC_NOT_CACHED = 1 << 3, /* loader's value, deliberately not stored */
	MLC_L2_WRITE_FAILED = 1 << 4, /* the store to L2 failed (no room) */
};

enum mlc_level { MLC_L1 = 1, MLC_L2 = 2, MLC_L3 = 3 };

/**
 * A result.  data/len are the bytes (NULL/0 for a negative entry), obj the
 * codec's object (NULL without a codec).  Both stay valid until
 * mlc_value_release(), whatever the cache does meanwhile.
 */
struct mlc_value {
	const void *data;
	size_t      len;
	void       *obj;
	uint32_t    flags;	/* enum mlc_value_flags */
	uint32_t    level;	/* enum mlc_level */
	int64_t     ttl_ms;	/* ms left (>= 1), or MLC_TTL_NEVER; with
				 * MLC_STALE: 0 if expired, else what is
				 * left of its resurrect_ttl_ms */
	uint64_t    version;	/* the L2 version of this value */
	void       *ref;	/* private */
};

/**
 * Release what *@p value refers to and zero it.  Call it once per value
 * that a successful call filled; releasing a zeroed value is a no-op.  Call
 * it from the thread that uses the handle (values share the handle's
 * one-thread rule); the handle may be closed already.
 * @since 0.1
 */
void mlc_value_release(struct mlc_value *value);

/* ------------------------------------------------------------------ */
/* Loaders                                                             */

enum mlc_load_result {
	MLC_LOAD_VALUE    = 0,	/* out->data/len hold the value */
	MLC_LOAD_NOTFOUND = 1,	/* cache a negative entry */
};

enum mlc_load_flags {
	MLC_LOAD_NO_CACHE = 1 << 0,	/* return the value, store nothing */
};

/** What a loader reports.  mlc zeroes it before calling the loader. */
struct mlc_load {
	const void *data;	/* the value's bytes; copied by mlc */
	size_t      len;
	void      (*release)(void *data); /* if set, called on data once
				 * mlc has copied it */
	int64_t     ttl_ms;	/* 0: the cache's ttl_ms / neg_ttl_ms */
	uint32_t    flags;	/* enum mlc_load_flags */
	char        errmsg[160]; /* on error, a message for the caller */
};

/**
 * The L3 loader.  Return MLC_LOAD_VALUE or MLC_LOAD_NOTFOUND, or a negative
 * code for a failure (the caller gets MLC_ELOADER, or a stale value when
 * resurrect_ttl_ms allows it, and mlc_last_error() gives out->errmsg).  It
 * runs on the calling thread, in one process at a time per key (but a
 * value over value_max reaches no waiter: they all load it then, at once,
 * and for 5 s callers that find a load of that key under way load too
 * instead of waiting).  It may call
 * mlc functions on other keys; mlc_get() on its own key gives -EDEADLK.
 */
typedef int mlc_loader_fn(void *arg, const void *key, size_t key_len,
			  struct mlc_load *out);

/* ------------------------------------------------------------------ */
/* Lookups and writes                                                  */

enum mlc_call_flags {
	MLC_CALL_STALE_OK = 1 << 0, /* peek/get: an expired value may be
				     * returned, flagged MLC_STALE (a get
				     * with a loader loads instead: the
				     * expired value answers only as
				     * resurrect_ttl_ms, the lock policy
				     * or MLC_CALL_SWR allow) */
	MLC_CALL_SWR      = 1 << 1, /* get: if another process is already
				     * refreshing an expired value, return
				     * the stale one at once instead of
				     * waiting (stale-while-revalidate); the
				     * caller that refreshes it waits for its
				     * own loader */
	MLC_CALL_NEGATIVE = 1 << 2, /* set: store a negative entry */
};

/** Per-call options; zero fields take the handle's. */
struct mlc_call_options {
	size_t   size;		/* sizeof(struct mlc_call_options) */
	uint32_t flags;		/* enum mlc_call_flags */
	uint32_t lock_policy;	/* enum mlc_lock_policy */
	int64_t  ttl_ms;
	int64_t  neg_ttl_ms;
	int64_t  resurrect_ttl_ms;
	uint32_t lock_timeout_ms;
	uint32_t pad0;
	/* end of v0.1: append below; never reorder, resize or remove */
};
#define MLC_CALL_OPTIONS_INIT MLC__SIZED(struct mlc_call_options)

/**
 * Look @p key up in L1, then L2; if both miss, run @p loader (L3) in one
 * process while the others wait, store the result in L2 and L1, and return
 * it.  An L2 hit is promoted to L1 with its remaining TTL.
 *
 * On success *@p value holds a reference (see struct mlc_value); a cached
 * miss is 0 with MLC_NEGATIVE in value->flags.  Without a loader mlc_get
 * never blocks.  One thread at a time per handle.
 *
 * @return 0, or a negative code; *@p value is untouched on error:
 *   -EINVAL       NULL cache/value/key, key_len 0, bad options
 *   -E2BIG        @p key_len > MLC_KEY_MAX
 *   -ENOENT       absent, and @p loader is NULL (a result, not a
 *                 failure: mlc_last_error() keeps its message)
 *   -ETIMEDOUT    another process's load outlived the lock timeout
 *   -EDEADLK      the loader of this key asked for it again
 *   -ENOMEM       out of private memory
 *   MLC_ELOADER   the loader failed and no stale value was available
 *   MLC_ECODEC    the codec could not decode the value
 * @since 0.1
 */
int mlc_get(struct mlc_cache *cache, const void *key, size_t key_len,
	    mlc_loader_fn *loader, void *arg, struct mlc_value *value);

/** mlc_get() with per-call options (@p opts may be NULL). @since 0.1 */
int mlc_get_ex(struct mlc_cache *cache, const void *key, size_t key_len,
	       const struct mlc_call_options *opts, mlc_loader_fn *loader,
	       void *arg, struct mlc_value *value);

/**
 * Look @p key up without promoting it or running a loader: L1 first, then
 * L2.  value->ttl_ms tells the time left (MLC_TTL_NEVER and MLC_NO_EXPIRY
 * for "never", which is distinct from 0 ms left); an expired entry is
 * returned only with MLC_CALL_STALE_OK in @p flags.
 * @return 0, -ENOENT (absent or expired: a result, which leaves
 *   mlc_last_error() as it was), MLC_ECODEC (a codec handle could not
 *   decode it), -ENOMEM (out of private memory), or the argument errors of mlc_get()
 *   (-EINVAL also for a flag other than MLC_CALL_STALE_OK).
 * @since 0.1
 */
int mlc_peek(struct mlc_cache *cache, const void *key, size_t key_len,
	     uint32_t flags, struct mlc_value *value);

/**
 * Store @p data (@p len bytes) under @p key in L2 and in this handle's L1,
 * and tell every other handle (other processes too) to drop the old value.
 * With MLC_CALL_NEGATIVE in opts->flags a negative entry is stored and
 * @p data must be NULL.  @p opts may be NULL.
 * @return 0, or:
 *   -EINVAL   bad argument or options
 *   -E2BIG    key over MLC_KEY_MAX, or key + value over value_max
 *             (mlc_arena_info(): one page less a 32-byte item header)
 *   -ENOSPC   no room, and nothing could be evicted
 *   -EOVERFLOW  the arena's version counter is spent: 2^56 writes (0.3)
 *   MLC_ECORRUPT  the key's stripe lock is damaged (a holder died and a
 *             later taker left it unrecoverable): nothing stored, the
 *             old value stays
 * @since 0.1
 */
int mlc_set(struct mlc_cache *cache, const void *key, size_t key_len,
	    const void *data, size_t len,
	    const struct mlc_call_options *opts);

/**
 * Remove @p key from L2 and every L1.  Deleting an absent key is 0.
 * @return 0, -EINVAL, -E2BIG, MLC_ECORRUPT (the key's stripe lock is
 *   damaged, as for mlc_set(): the key stays; mlc_purge() drops it).
 * @since 0.1
 */
int mlc_delete(struct mlc_cache *cache, const void *key, size_t key_len);

/**
 * Drop every entry of this handle's namespace, in L2 and every L1, in O(1):
 * purged data is never visible again, not even as stale.  Other namespaces
 * are untouched.  A set or mlc_modify() running meanwhile stores again
 * after the purge (after four purges during one call, it counts as made
 * before the last: 0, nothing stored).
 * @return 0, -EINVAL.
 * @since 0.1
 */
int mlc_purge(struct mlc_cache *cache);

/**
 * Apply the invalidations other handles published that this handle has not
 * seen, at most opts' update_budget records (0: all).  mlc_get() does this
 * by itself unless MLC_CACHE_MANUAL_UPDATE is set, and so do mlc_set(),
 * mlc_delete(), mlc_modify() and mlc_refresh() once the handle is half the
 * log behind (a handle that only writes would otherwise be lapped by its
 * own records and drop its L1).
 * @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_update(struct mlc_cache *cache);

/* ------------------------------------------------------------------ */
/* Many keys at once, read-modify-write, refresh                       */

/** One key of a mlc_get_bulk() call: key in, status and value out. */
struct mlc_bulk_item {
	const void      *key;		/* in */
	size_t           key_len;	/* in */
	int              status;	/* out: what mlc_get() would return */
	uint32_t         pad;
	struct mlc_value value;		/* out, when status is 0 */
};

/**
 * mlc_get_ex() for @p n keys at once.  Every item gets its own status (0,
 * -ENOENT without a loader, MLC_ELOADER, ...) and, on 0, its own value to
 * release; an item never looks like a negative hit by accident.  Faster
 * than @p n calls: all keys are hashed first and their L1 entries, L2
 * buckets and L2 items fetched ahead, so cold lookups overlap their memory
 * misses.  Misses then run @p loader one key at a time, each under single
 * flight.  Keys are taken 32 at a time, and each batch's L1 answers are
 * as of its start: a change a loader of the batch makes (or that reaches
 * the log meanwhile) to a later key of the same batch is seen by the next
 * batch or call, not by this one.  The same key twice gets two answers.
 * One thread per handle.
 * @return 0 (see each status), or -EINVAL (NULL cache, items NULL with
 *   n > 0, bad options).
 * @since 0.1
 */
int mlc_get_bulk(struct mlc_cache *cache, struct mlc_bulk_item *items,
		 size_t n, const struct mlc_call_options *opts,
		 mlc_loader_fn *loader, void *arg);

enum mlc_modify_result {
	MLC_MODIFY_SET    = 0,	/* store out->data/len (ttl: out->ttl_ms) */
	MLC_MODIFY_DELETE = 1,	/* delete the key */
	MLC_MODIFY_KEEP   = 2,	/* change nothing */
	MLC_MODIFY_NEGATIVE = 3, /* store a negative entry */
};

/**
 * The change of a mlc_modify(): @p cur is the current value (NULL when the
 * key is absent or expired; valid during the call only), its bytes as
 * stored: its obj is NULL on a handle with a codec too (no decode runs for
 * it); fill @p out as a loader does for MLC_MODIFY_SET.  A negative return aborts the modify with
 * that code.  It may run more than once (when another writer got there
 * first), so it must not have side effects beyond @p out.
 */
typedef int mlc_modify_fn(void *arg, const struct mlc_value *cur,
			  struct mlc_load *out);

/**
 * Atomic read-modify-write of @p key: @p fn sees the current value and
 * says what replaces it; the store happens only if nobody changed the key
 * in between (compare-and-set on its L2 version), else @p fn runs again
 * on the newer value.  Two processes modifying one key never lose an
 * update.  The key can still be evicted between the read and the store
 * by other writes (a cache's memory pressure): @p fn then runs again on
 * it as absent, as a get would see it; the modify's own store never
 * evicts the item it replaces.  Publishes an invalidation like mlc_set().  If @p value is not
 * NULL it receives the stored value (nothing on DELETE or KEEP: status 0
 * and a zeroed value).  DELETE of a key L2 does not hold (@p cur NULL) is
 * still a delete, as mlc_delete() is, for the L1s that may hold it (a
 * loader value kept in L1 only, a key evicted from L2), if the key is
 * still absent when it is made.  A stored value's TTL counts from when
 * @p fn returned, as a loader's does.
 * A purge of the namespace between the read and the store makes @p fn
 * run again on what the key holds after it; if that happens four times
 * during one modify (in a row or not: its other tries lost to writers),
 * the modify counts as made before the last purge: 0, nothing stored, and
 * a zeroed @p value.
 * @return 0, what @p fn returned if negative, -EBUSY (lost the race 1000
 *   times in a row), -ENOMEM, or the errors of mlc_set() (-EINVAL and
 *   -E2BIG also for what @p fn filled in wrong: not MLC_ELOADER, which a
 *   get returns for a loader's wrong fill).
 * @since 0.1
 */
int mlc_modify(struct mlc_cache *cache, const void *key, size_t key_len,
	       mlc_modify_fn *fn, void *arg, struct mlc_value *value);

/**
 * Reload @p key now through single flight and swap the result in, while
 * every other caller keeps being served the current value (it stays in L2
 * until the new one replaces it).  If another process is already loading
 * the key, waits for that load instead (its value if newer than what the
 * key held when the refresh began, its error if it failed, even if it put
 * a stale value back; lock_timeout_ms in all, then -ETIMEDOUT).  If the loader fails, the current value stays
 * and the error is returned (no resurrect: nothing is put back).  A value
 * the loader returns with MLC_LOAD_NO_CACHE is returned flagged
 * MLC_NOT_CACHED and the current value stays too.  A refresh is a load,
 * not a set: it calls no event hook (a relay does not carry it; other
 * hosts reload on their own TTL).  @p value may be NULL.
 * @return as mlc_get() with a loader, or -ETIMEDOUT.
 * @since 0.1
 */
int mlc_refresh(struct mlc_cache *cache, const void *key, size_t key_len,
		mlc_loader_fn *loader, void *arg, struct mlc_value *value);

/* ------------------------------------------------------------------ */
/* Single-flight steps, for callers that run the loader themselves     */
/* (event loops, the Lua binding).  mlc_get() is built on these.       */

enum mlc_flight_role {
	MLC_FLIGHT_NONE   = 0,
	MLC_FLIGHT_LOADER = 1,	/* run the load, then publish or abandon */
	MLC_FLIGHT_WAITER = 2,	/* another process loads: call wait */
};

/** A ticket, caller-allocated; only role is public. */
struct mlc_flight {
	uint32_t role;		/* enum mlc_flight_role */
	uint32_t fl_private0;
	uint64_t fl_private[7];
};

/**
 * Try to become the loader of @p key.  On 0, flight->role says what to do:
 * LOADER (this caller must mlc_flight_publish() or mlc_flight_abandon()),
 * or WAITER (call mlc_flight_wait()).  Check L2 (mlc_peek) before this.
 * A full flight table makes the caller a LOADER without single flight
 * (counted as duplicate_loads).
 * The key bytes must stay valid until the flight ends (publish, abandon,
 * or a wait that returns a value or an error).  Wait, publish and abandon
 * take the ticket on a handle of the same arena and namespace only
 * (another gives -EINVAL).  @p opts (may be NULL) is checked as a get's
 * would be, but the ticket keeps none of it: mlc_flight_publish() stores
 * with load->ttl_ms, else the handle's ttl_ms or neg_ttl_ms, so put a
 * per-call TTL in the struct mlc_load you publish.
 * On a handle with err_ttl_ms, a load of the key that failed within it
 * answers as it does for mlc_get(): MLC_ELOADER, with that load's message
 * in mlc_last_error(), and no flight (role NONE); serve a stale value
 * yourself if you want one (mlc_peek() with MLC_CALL_STALE_OK).
 * @return 0, -EINVAL, -E2BIG, -EDEADLK (this thread is inside mlc_get()'s
 *   loader for the key), MLC_ELOADER (err_ttl_ms back-off).
 * @since 0.1
 */
int mlc_flight_acquire(struct mlc_cache *cache, const void *key,
		       size_t key_len, const struct mlc_call_options *opts,
		       struct mlc_flight *flight);

/**
 * Wait up to @p timeout_ms (0: poll, never block) for the loader of
 * @p flight's key.  On 0 either *@p value holds the outcome (value or
 * negative entry; the flight ended for this caller, as it does with
 * MLC_ELOADER: flight->role is MLC_FLIGHT_NONE), or flight->role became
 * LOADER because the owner died or
 * its lease expired and this caller took over, or because the load's value
 * was over value_max and no waiter can be given it (value untouched;
 * duplicate_loads counts the second case).  A ticket
 * whose role is LOADER already returns 0 at once, value untouched: load.
 * @return 0, -EAGAIN (still loading after timeout_ms), MLC_ELOADER (the
 *   loader failed; mlc_last_error() has its message), MLC_ECODEC (the
 *   handle's codec could not decode the outcome), -ENOMEM, -EINVAL.  On
 *   MLC_ELOADER, MLC_ECODEC and -ENOMEM the flight ended for this caller
 *   (role NONE), as on a 0 with a value.
 * @since 0.1
 */
int mlc_flight_wait(struct mlc_cache *cache, struct mlc_flight *flight,
		    uint32_t timeout_ms, struct mlc_value *value);

/**
 * Publish the outcome of a load: @p result is what a loader returned
 * (MLC_LOAD_VALUE, MLC_LOAD_NOTFOUND or a negative code) and @p load what
 * it filled.  Stores it (unless fenced by a set, delete or purge since
 * mlc_flight_acquire(), or since the mlc_flight_wait() that made this
 * caller the loader: then the value is returned to this caller only,
 * flagged MLC_NOT_CACHED, in no L1, and the waiters, which may have begun
 * after that change, re-read L2 or load again), wakes every waiter, ends
 * the flight, and fills *@p value like mlc_get() (may be NULL).  A ticket
 * whose flight ended without it (taken over past its lease, or a copy of
 * a ticket published already) is fenced the same way: its value goes to
 * this caller only, and it ends no other flight.
 * @p load's release, if set, is called once whatever this returns, -EINVAL
 * for a ticket that is not a loader's of this handle's namespace too
 * (a load without one is then left untouched).
 * @return what mlc_get() would have returned for this outcome, or -EINVAL.
 * @since 0.1
 */
int mlc_flight_publish(struct mlc_cache *cache, struct mlc_flight *flight,
		       int result, struct mlc_load *load,
		       struct mlc_value *value);

/**
 * Give the flight up without an outcome; waiters take over the load.
 * @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_flight_abandon(struct mlc_cache *cache, struct mlc_flight *flight);

/* ------------------------------------------------------------------ */
/* For caches layered over a handle (a binding's own L1 of objects)    */

/**
 * The hash mlc gives @p key in this handle's namespace (it picks the key's
 * buckets and names it in the invalidation log).  Stable for the arena's
 * life, different in every arena.  0 for bad arguments.
 * @since 0.1
 */
uint64_t mlc_key_hash(struct mlc_cache *cache, const void *key,
		      size_t key_len);

enum mlc_update_flags {
	MLC_UPDATE_ALL = 1 << 0,	/* drop everything: a purge, a log
					 * overrun, or more keys than fit */
};

/**
 * mlc_update(), reporting what changed elsewhere so that a cache layered
 * over this handle can drop it too: the mlc_key_hash() of each changed key
 * in @p hashes (at most @p cap; *@p n how many), and MLC_UPDATE_ALL in
 * *@p flags when everything must go instead.  Open the handle with
 * MLC_CACHE_MANUAL_UPDATE, or lookups apply records without reporting
 * them.
 * @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_update_ex(struct mlc_cache *cache, uint64_t *hashes, size_t cap,
		  size_t *n, uint32_t *flags);

/** One change reported by mlc_update_records(). */
struct mlc_update_record {
	uint64_t hash;		/* mlc_key_hash() of the changed key */
	uint64_t version;	/* the L2 version the change made: the new
				 * value's, or the deletion's.  Versions of
				 * one arena only grow, so a layered entry
				 * made from version >= this one is already
				 * the change or newer, and can stay */
};

/**
 * mlc_update_ex() that also reports the version of each change, so that a
 * cache layered over this handle keeps what it already holds (its own
 * sets and loads, or another process's load of the version it read) and
 * drops only what is older.  Applies at most @p cap records (and at most
 * the handle's update_budget), all reported in @p recs (*@p n how many;
 * several may name one key; records of other namespaces count towards
 * @p cap without being reported): call again while mlc_update_watch()'s
 * words differ.  MLC_UPDATE_ALL in *@p flags when everything must go
 * instead (a purge, a log overrun, or this call being the handle's first
 * in a child after fork(); after any other first call the child's reports
 * go on from where its parent's stopped: Caveats); with @p cap 0, also
 * when any key changed.  Open the handle
 * with MLC_CACHE_MANUAL_UPDATE.  One thread at a time per handle.
 * @return 0, or -EINVAL.
 * @since 0.2
 */
int mlc_update_records(struct mlc_cache *cache,
		       struct mlc_update_record *recs, size_t cap, size_t *n,
		       uint32_t *flags);

/**
 * Point *@p head at the arena's log head (shared memory: the number of
 * records ever claimed, which only grows) and *@p cursor at this handle's
 * position in the log (private memory; on a MLC_CACHE_MANUAL_UPDATE handle
 * only mlc_update(), mlc_update_ex() and mlc_update_records() move it).
 * While the two words are equal, no record is pending for the handle: a
 * layered cache compares them before each lookup and calls
 * mlc_update_records() only when they differ, with no call at all on its
 * fast path.  A writer moves the head before it changes L2, so a lookup
 * that finds them equal comes before any change it has not applied.  Read
 * each word whole (or both halves, each compared); a record claimed but
 * not yet published keeps them apart until it is, or for 100 ms after
 * its claim (longer if its writer stopped inside its change: until it
 * publishes or is proven dead, while each mlc_update_records() reports
 * MLC_UPDATE_ALL); the records published after it are applied meanwhile,
 * by each mlc_update_records().
 * The pointers stay valid until mlc_cache_close(); read the cursor on the
 * handle's thread (it is the handle's), the head anywhere.
 * @return 0, or -EINVAL.
 * @since 0.2
 */
int mlc_update_watch(struct mlc_cache *cache, const volatile uint64_t **head,
		     const uint64_t **cursor);

/**
 * Per-handle counters (this process, this handle only).
 *
 * Hits and misses have their usual meaning.  Every lookup is counted once,
 * as a hit or as a miss: an mlc_get() or mlc_get_ex(), each item of an
 * mlc_get_bulk(), and a flight of the single-flight steps when it ends
 * (mlc_flight_publish() is a miss, an mlc_flight_wait() that returns the
 * other loader's outcome is counted as that outcome).  A lookup answered
 * with a value it did not load is a hit of the level that answered,
 * whether the value is fresh or stale, positive or negative (a wait for
 * another process's load that then reads its value is an L2 hit, and a
 * lock wait).  Every other lookup is a miss: it ran the loader, found
 * nothing, or failed.  So hits_l1 + hits_l2 + misses is the number of
 * lookups, and hits / (hits + misses) the hit ratio.  mlc_peek() and
 * mlc_refresh() are not lookups.  The other counters are their own
 * events and overlap the hits and misses.
 */
struct mlc_stats {
	size_t   size;		/* sizeof(struct mlc_stats) */
	uint64_t hits_l1, hits_l2; /* hits, by the level that answered */
	uint64_t hits_l3;	/* misses answered by the value of their own
				 * loader run: a subset of misses (its name
				 * is 0.1's, when loads counted as hits) */
	uint64_t misses;	/* lookups that loaded, found nothing or
				 * failed (0.1: only those with no loader) */
	uint64_t negative_hits;	/* hits on negative entries (a load that
				 * finds nothing is a miss) */
	uint64_t stale_served;	/* stale values returned */
	uint64_t loads, loader_errors; /* loader runs; of which failed */
	uint64_t codec_errors;
	uint64_t l1_evictions;
	uint64_t l2_write_failures;
	uint64_t sets, deletes, purges;
	uint64_t lock_waits;	/* calls that waited for another's load */
	uint64_t lock_wait_ms;	/* total time they waited */
	uint64_t lock_timeouts, lock_steals, duplicate_loads;
	uint64_t fenced_writes;	/* loads not stored: key changed meanwhile */
	uint64_t err_ttl_hits;	/* errors served from err_ttl_ms back-off */
	uint64_t log_published;	/* invalidation records this handle wrote */
	uint64_t log_applied;	/* records of this namespace applied */
	uint64_t log_dropped;	/* L1 entries they dropped */
	uint64_t log_overruns;	/* L1 purged: lapped or overwritten */
	uint64_t log_stuck;	/* log records given up on: a publisher
				 * never finished (L1 purged if it may
				 * have changed L2; counted once per
				 * record) */
	uint64_t forks;		/* L1 reset because used in a new child */
	/* end of v0.1: append below */
};
#define MLC_STATS_INIT MLC__SIZED(struct mlc_stats)

/**
 * Copy the handle's counters into *@p stats (set stats->size first).
 * Also flushes them to the namespace's counters.
 * @return 0, or -EINVAL.
 * @since 0.1
 */
int mlc_stats(struct mlc_cache *cache, struct mlc_stats *stats);

/**
 * The counters of namespace @p ns: the sum over every handle on it, in
 * every process, of what they have flushed.  A handle flushes what it
 * counted (no clock read, shared write or atomic on an L1 hit: it counts
 * in private memory) at the first of:
 *   - a call made 1 s or more after its last flush that looks at the
 *     clock: a get not answered from L1, a set, and every 64th call of
 *     any kind;
 *   - its 4096th call since its last flush;
 *   - mlc_stats() and mlc_cache_close().
 * So a handle in use shows its counts here within 1 s plus at most 64 of
 * its calls.  A handle that makes no call flushes nothing: a process whose
 * handles may sit idle calls mlc_stats() on each from a timer (the nginx
 * module does, every second).  Thread-safe.
 * @return 0, -EINVAL, -ENOENT (no such namespace), or MLC_ECORRUPT (the
 *   arena's file was truncated: see mlc_arena_info()).
 * @since 0.1
 */
int mlc_namespace_stats(struct mlc_arena *arena, const char *ns,
			struct mlc_stats *stats);

/** A size class of the allocator (mlc_arena_class()). */
struct mlc_class_info {
	size_t   size;		/* sizeof(struct mlc_class_info) */
	uint32_t chunk_size;	/* bytes per chunk (item header, key and
				 * value; an item takes the smallest class
				 * it fits, or, where that chunk would be
				 * over 9/8 of it, several chunks of a
				 * smaller class: docs/internals.md,
				 * "Chained items") */
	uint32_t chunks_per_page;
	uint64_t pages;		/* pages the class owns */
	uint64_t chunks_used;	/* chunks not free (live, or being written
				 * or freed) in those pages */
	uint64_t chunks_free;
	uint64_t evictions;	/* live entries evicted for room here */
	uint64_t pages_in;	/* pages moved here from another class */
	uint64_t pages_out;	/* pages moved away, to a class or the pool */
};
#define MLC_CLASS_INFO_INIT MLC__SIZED(struct mlc_class_info)

/**
 * Facts of the allocator's size class @p i (0-based, smallest first), as
 * memcached's "stats slabs" gives them: for sizing an arena and seeing
 * fragmentation.  Read without locks from every page descriptor of the
 * class (O(pages)); each figure is exact when read, the set is not a
 * snapshot.  Thread-safe; works on an MLC_ARENA_RDONLY handle.
 * @return 0, -ENOENT past the last class, -EINVAL, or MLC_ECORRUPT (the
 *   arena's file was truncated: see mlc_arena_info()).
 * @since 0.2
 */
int mlc_arena_class(struct mlc_arena *arena, uint32_t i,
		    struct mlc_class_info *info);

/** One entry seen by mlc_namespace_keys(). */
struct mlc_key_info {
	size_t      size;	/* sizeof(struct mlc_key_info) */
	const void *key;	/* valid during the callback only */
	size_t      key_len;
	size_t      value_len;	/* 0 for a negative entry */
	int64_t     ttl_ms;	/* time left, MLC_TTL_NEVER, or 0: expired */
	uint32_t    flags;	/* MLC_NEGATIVE, MLC_STALE (expired),
				 * MLC_NO_EXPIRY */
	uint32_t    pad0;
	uint64_t    version;	/* its L2 version */
};

/** Called by mlc_namespace_keys() for each entry; non-zero stops. */
typedef int mlc_key_fn(void *arg, const struct mlc_key_info *key);

/**
 * Walk the entries of namespace @p ns in bounded steps, without a lock and
 * without writing (an MLC_ARENA_RDONLY handle will do): look at up to
 * @p max_buckets index buckets (0: all) from *@p cursor (0: the first),
 * call @p fn for every entry of the namespace found there (expired ones
 * too, flagged MLC_STALE; purged ones never), and set *@p cursor to where
 * the next call goes on, or to 0 when the walk is over.  A bucket is read
 * again until no writer changed it meanwhile; one that keeps changing
 * through 64 reads (or whose writer is stopped inside its update) gives
 * the entries that stayed in their slots throughout the last read.  So on
 * a live arena an entry that stays in its bucket during the walk (nobody
 * sets, deletes or evicts it, and no set of another key moves it to its
 * other bucket for room) is seen exactly once, and one that changes may
 * be seen or not.  The order is the index's, not the keys'.  Thread-safe.
 * @return 0; what @p fn returned, if not 0 (*@p cursor then points at
 *   the next bucket); -EINVAL; -ENOENT (no such namespace); -ENOMEM;
 *   MLC_ECORRUPT (the arena's file was truncated: see mlc_arena_info()).
 *   (0.3.0 and before: -EAGAIN for a bucket that kept changing.)
 * @since 0.2
 */
int mlc_namespace_keys(struct mlc_arena *arena, const char *ns,
		       uint64_t *cursor, uint32_t max_buckets,
		       mlc_key_fn *fn, void *arg);

/** What a namespace holds now (mlc_namespace_info()). */
struct mlc_namespace_info {
	size_t   size;		/* sizeof(struct mlc_namespace_info) */
	uint64_t items;		/* entries linked in the index: expired ones
				 * until reclaimed, negative ones included,
				 * purged ones never */
	uint64_t bytes;		/* their keys and values, in bytes */
	uint32_t purges;	/* generation: purges since creation (mod
				 * 2^32) */
	uint32_t pad0;
};
#define MLC_NAMESPACE_INFO_INIT MLC__SIZED(struct mlc_namespace_info)

/**
 * The live contents of namespace @p ns, arena-wide: exact at the moment
 * each word is read (items and bytes are two reads, not a snapshot).  They
 * are kept by every link, unlink and purge in every process (an atomic
 * update per write; a lookup writes nothing), so they never lag.  A
 * writer killed between its change of the index and its count leaves
 * them one off, until the namespace's next purge starts them from 0.
 * Thread-safe; works on an MLC_ARENA_RDONLY handle.
 * @return 0, -EINVAL (NULL, or a bad info->size), -ENOENT (no such
 *   namespace), or MLC_ECORRUPT (the arena's file was truncated: see
 *   mlc_arena_info()).
 * @since 0.2
 */
int mlc_namespace_info(struct mlc_arena *arena, const char *ns,
		       struct mlc_namespace_info *info);

/* ------------------------------------------------------------------ */
/* Errors and versions                                                 */

/**
 * A static description of @p code (any code mlc returns, or any -errno).
 * Never NULL.  Thread-safe.
 * @since 0.1
 */
const char *mlc_strerror(int code);

/**
 * The message of the last failure on this handle: the loader's errmsg after
 * MLC_ELOADER, else a description.  A miss is a result, not a failure: a
 * get, peek or bulk item that answers -ENOENT leaves the message as it
 * was.  Valid until the next call on the handle.  Never NULL.
 * @since 0.1
 */
const char *mlc_last_error(struct mlc_cache *cache);

/** The loaded library's version, as MAJOR << 16 | MINOR << 8 | PATCH. */
uint32_t mlc_version(void);
/** The loaded library's version as "MAJOR.MINOR.PATCH". */
const char *mlc_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* MLC_H */
