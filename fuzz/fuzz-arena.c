/*
 * fuzz-arena: a corrupt or malicious arena against a reader.
 *
 * A valid small arena (a file under /dev/shm) is made once, with items in
 * two namespaces (values, one of them chained: a head and pieces,
 * negative entries, expiring ones, deletes, a
 * purge, so the log has records).  For each input the file is restored
 * from that image, and the input is applied as patches anywhere in it,
 * header included:
 *
 *   byte 0          mode: bit 0 set = patch while attached (the caches are
 *                   open, as a process that rewrites a live arena would
 *                   find them), clear = patch before attaching
 *   then, repeated  region (1 byte: the whole file, the header, stripes,
 *                   index, classes, page descriptors, namespaces, log,
 *                   flight slots, pages), offset in the region (3 bytes,
 *                   little-endian, modulo its size), length (1 byte,
 *                   1..32), that many bytes
 *
 * Then every read operation runs over a fixed key set: mlc_get without a
 * loader, mlc_get_ex with MLC_CALL_STALE_OK, mlc_peek with and without
 * MLC_CALL_STALE_OK, mlc_update, mlc_arena_info, and a fresh attach; and
 * what an operator runs on a suspect arena (mlcctl): mlc_arena_check, the
 * class, namespace and process listings, and a walk of each namespace's
 * keys.  The
 * only allowed outcomes are an error code or a value (whose bytes are all
 * read, so ASan sees where they live); never a crash, a hang (libFuzzer's
 * -timeout), or a read outside the mapping.
 *
 * One exception, documented in docs/reliability.md: mlc_cache_open of a
 * namespace that does not exist takes the namespace table's mutex with no
 * timeout, as writers do (a patch can mark the harness's namespaces
 * unused), so before an attach-then-open the harness restores that mutex's
 * bytes.  A corrupt arena can stall a writer; this harness is about
 * readers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlc-int.h"

#define ARENA_BYTES (512u << 10)
#define NREAD 7			/* keys read per namespace */
#define CHAINED_LEN 23000	/* one 64 KiB / 2 chunk would waste 30%:
				 * stored chained (docs/internals.md) */

static char dir[64], path[128];
static unsigned char *image;	/* the pristine arena */
static unsigned char *map;	/* our own view of the file */
static size_t size;

static const char *const key_names[NREAD] = {
	"alpha", "beta", "neg", "short-ttl", "gone", "absent", "chained",
};

static void regions(void);
static void patch_raw(const uint8_t *data, size_t len);
static void codes_print(void);

static void
cleanup(void)
{
	if (path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
}

static void
die(const char *what, int rc)
{
	fprintf(stderr, "fuzz-arena: %s: %s\n", what, mlc_strerror(rc));
	abort();
}

static struct mlc_arena *
attach(int *rcp)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;

	o.flags = MLC_ARENA_FILE;
	*rcp = mlc_arena_open(&a, path, &o);
	return *rcp == 0 ? a : NULL;
}

/* A run that crashed (or was killed) skipped atexit(): remove what runs
 * whose process is gone left in /dev/shm. */
static void
sweep_dead(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[512];
		long pid;

		if (strncmp(de->d_name, "mlc-fuzz-", 9) != 0)
			continue;
		pid = strtol(de->d_name + 9, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "/dev/shm/%s/arena", de->d_name);
		unlink(p);
		snprintf(p, sizeof(p), "/dev/shm/%s", de->d_name);
		rmdir(p);
	}
	closedir(d);
}

/* The arena every input starts from. */
static void
make_image(void)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_call_options neg = MLC_CALL_OPTIONS_INIT;
	struct mlc_call_options ttl = MLC_CALL_OPTIONS_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c[2];
	static char big[CHAINED_LEN];
	int fd, rc;

	sweep_dead();
	snprintf(dir, sizeof(dir), "/dev/shm/mlc-fuzz-%ld", (long)getpid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die("mkdir", -errno);
	snprintf(path, sizeof(path), "%s/arena", dir);
	atexit(cleanup);
	atexit(codes_print);
	o.flags = MLC_ARENA_FILE | MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = ARENA_BYTES;
	o.page_size = 64 << 10;
	o.max_items = 256;
	o.log_cells = 64;
	o.flight_slots = 16;
	o.max_namespaces = 4;
	if ((rc = mlc_arena_open(&a, path, &o)) != 0)
		die("create", rc);
	/* A fixed hash seed, so that an input hits the same buckets in
	 * every run: crashes reproduce. */
	((struct mlc__hdr *)(void *)a->base)->ah_seed = 0x6d6c632d66757a7a;
	((struct mlc__hdr *)(void *)a->base)->ah_check =
		mlc__hdr_check((struct mlc__hdr *)(void *)a->base);
	mlc_arena_close(a);
	o.flags = MLC_ARENA_FILE;
	if ((rc = mlc_arena_open(&a, path, &o)) != 0)
		die("reattach", rc);
	for (int n = 0; n < 2; n++)
		if ((rc = mlc_cache_open(&c[n], a, n ? "two" : "one", NULL)))
			die("cache", rc);
	memset(big, 'x', sizeof(big));
	neg.flags = MLC_CALL_NEGATIVE;
	ttl.ttl_ms = 1;
	for (int n = 0; n < 2; n++) {
		mlc_set(c[n], "alpha", 5, "first value", 11, NULL);
		mlc_set(c[n], "beta", 4, big, 3000, NULL);
		mlc_set(c[n], "neg", 3, NULL, 0, &neg);
		mlc_set(c[n], "short-ttl", 9, "soon gone", 9, &ttl);
		mlc_set(c[n], "gone", 4, "deleted", 7, NULL);
		mlc_delete(c[n], "gone", 4);
		for (int i = 0; i < 20; i++) {
			char k[16];

			snprintf(k, sizeof(k), "filler-%d", i);
			mlc_set(c[n], k, strlen(k), big, (size_t)i * 100, NULL);
		}
	}
	if ((rc = mlc_set(c[0], "chained", 7, big, CHAINED_LEN, NULL)) != 0)
		die("chained", rc);
	mlc_set(c[0], "alpha", 5, "second value", 12, NULL);
	mlc_purge(c[1]);
	mlc_set(c[1], "alpha", 5, "after the purge", 15, NULL);
	for (int n = 0; n < 2; n++)
		mlc_cache_close(c[n]);
	mlc_arena_close(a);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open", -errno);
	size = ARENA_BYTES;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		die("mmap", -errno);
	image = malloc(size);
	memcpy(image, map, size);
	regions();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_image();
	return 0;
}

/* Regions of the image, from its (pristine) header: patches aim at a
 * structure, so a few bytes of input reach any field of it. */
#define NREGIONS 10
static size_t region_off[NREGIONS], region_len[NREGIONS];

static void
regions(void)
{
	const struct mlc__hdr *h = (const void *)image;
	const uint64_t offs[NREGIONS + 1] = {
		0, 0, h->ah_stripes_off, h->ah_table_off, h->ah_classes_off,
		h->ah_pagedesc_off, h->ah_ns_off, h->ah_log_off,
		h->ah_flight_off, h->ah_pages_off, size,
	};

	region_off[0] = 0;
	region_len[0] = size;
	for (int r = 1; r < NREGIONS; r++) {
		region_off[r] = offs[r];
		region_len[r] = offs[r + 1] > offs[r] ? offs[r + 1] - offs[r] :
			       MLC__HDR_BYTES;
	}
	region_len[1] = sizeof(struct mlc__hdr);
}

/* MLC_FUZZ_KEEP_MUTEXES=1: put the stripe mutexes back after patching (to
 * fuzz past a bug in that area while it is open, as when readers still
 * locked them: fuzz/crashes/fuzz-arena/). */
static void
keep_mutexes(void)
{
	const struct mlc__hdr *h = (const void *)image;

	for (uint32_t i = 0; i < h->ah_nstripes; i++) {
		size_t off = h->ah_stripes_off + (size_t)i * sizeof(struct mlc__lock);

		memcpy(map + off, image + off, sizeof(pthread_mutex_t));
	}
}

static void
patch(const uint8_t *data, size_t len)
{
	static int keep = -1;

	if (keep < 0)
		keep = getenv("MLC_FUZZ_KEEP_MUTEXES") != NULL;
	patch_raw(data, len);
	if (keep)
		keep_mutexes();
}

static void
patch_raw(const uint8_t *data, size_t len)
{
	for (size_t i = 1; i + 5 <= len;) {
		int r = data[i] % NREGIONS;
		size_t off = region_off[r] +
			     (data[i + 1] | (size_t)data[i + 2] << 8 |
			      (size_t)data[i + 3] << 16) % region_len[r];
		size_t n = data[i + 4] % 32 + 1;

		i += 5;
		if (n > len - i)
			n = len - i;
		if (n > size - off)
			n = size - off;
		memcpy(map + off, data + i, n);
		i += n;
	}
}

static volatile unsigned char sink;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
touch(const struct mlc_value *v)
{
	const unsigned char *p = v->data;
	unsigned char x = 0;

	if (v->len > (64u << 10)) {
		fprintf(stderr, "fuzz-arena: a value of %zu bytes\n", v->len);
		abort();		/* longer than a page: impossible */
	}
	for (size_t i = 0; i < v->len; i++)
		x ^= p[i];
	sink = x;
}

/* Any error code is an allowed answer to a corrupt arena; the ones
 * besides "not found" are counted and listed at exit. */
static uint64_t codes_seen[5000];

static void
codes_print(void)
{
	fprintf(stderr, "fuzz-arena: error codes returned by reads:");
	for (int i = 1; i < 5000; i++)
		if (codes_seen[i] && i != ENOENT)
			fprintf(stderr, " %d (%s) x%llu,", -i,
				mlc_strerror(-i),
				(unsigned long long)codes_seen[i]);
	fprintf(stderr, "\n");
}

static void
expect(int rc, const char *call, const char *key)
{
	if (rc < 0 && rc > -5000) {
		codes_seen[-rc]++;
		return;
	}
	if (rc == 0)
		return;
	fprintf(stderr, "fuzz-arena: %s(%s) returned %d (%s)\n", call, key,
		rc, mlc_strerror(rc));
	abort();
}

static int
key_seen(void *arg, const struct mlc_key_info *k)
{
	struct mlc_value v = { .data = k->key, .len = k->key_len };

	(void)arg;
	touch(&v);
	return 0;
}

static int
proc_seen(void *arg, const struct mlc_proc_info *p)
{
	(void)arg;
	(void)p;
	return 0;
}

/* The operator's view (mlcctl): never writes, must survive any bytes. */
static void
inspect_all(struct mlc_arena *a)
{
	struct mlc_check_report rep = MLC_CHECK_REPORT_INIT;
	struct mlc_stats st = MLC_STATS_INIT;
	char name[MLC_NAME_MAX + 1];
	int rc;

	rc = mlc_arena_check(a, &rep);
	if (rc != 0 && rc != MLC_ECORRUPT)
		expect(rc, "mlc_arena_check", "");
	for (uint32_t i = 0; i <= a->nclasses; i++) {
		struct mlc_class_info ci = MLC_CLASS_INFO_INIT;

		expect(mlc_arena_class(a, i, &ci), "mlc_arena_class", "");
	}
	for (uint32_t i = 0; i < 6; i++)
		expect(mlc_arena_namespace(a, i, name, sizeof(name)),
		       "mlc_arena_namespace", "");
	expect(mlc_arena_procs(a, proc_seen, NULL), "mlc_arena_procs", "");
	for (int n = 0; n < 2; n++) {
		struct mlc_namespace_info ni = MLC_NAMESPACE_INFO_INIT;
		const char *ns = n ? "two" : "one";
		uint64_t cursor = 0;

		expect(mlc_namespace_info(a, ns, &ni), "mlc_namespace_info",
		       ns);
		expect(mlc_namespace_stats(a, ns, &st), "mlc_namespace_stats",
		       ns);
		expect(mlc_namespace_keys(a, ns, &cursor, 0, key_seen, NULL),
		       "mlc_namespace_keys", ns);
	}
}

static void
read_all(struct mlc_arena *a, struct mlc_cache *const c[2])
{
	struct mlc_arena_info in = MLC_ARENA_INFO_INIT;
	struct mlc_call_options stale = MLC_CALL_OPTIONS_INIT;

	stale.flags = MLC_CALL_STALE_OK;
	expect(mlc_arena_info(a, &in), "mlc_arena_info", "");
	inspect_all(a);
	for (int n = 0; n < 2; n++) {
		for (int k = 0; k < NREAD; k++) {
			const char *key = key_names[k];
			size_t klen = strlen(key);
			struct mlc_value v = { 0 };
			uint64_t t0 = now_ms();
			int rc;

			rc = mlc_get(c[n], key, klen, NULL, NULL, &v);
			expect(rc, "mlc_get", key);
			touch(&v);
			mlc_value_release(&v);
			/* A slow read met a stripe mutex that looks held (up
			 * to 200 ms by design): one per key is enough. */
			if (now_ms() - t0 > 50)
				continue;
			rc = mlc_get_ex(c[n], key, klen, &stale, NULL, NULL,
					&v);
			expect(rc, "mlc_get_ex(STALE_OK)", key);
			touch(&v);
			mlc_value_release(&v);
			rc = mlc_peek(c[n], key, klen, 0, &v);
			expect(rc, "mlc_peek", key);
			touch(&v);
			mlc_value_release(&v);
			rc = mlc_peek(c[n], key, klen, MLC_CALL_STALE_OK, &v);
			expect(rc, "mlc_peek(STALE_OK)", key);
			touch(&v);
			mlc_value_release(&v);
		}
		expect(mlc_update(c[n]), "mlc_update", "");
	}
}

static int
caches_open(struct mlc_arena *a, struct mlc_cache *c[2])
{
	int rc;

	if ((rc = mlc_cache_open(&c[0], a, "one", NULL)) != 0)
		return rc;
	if ((rc = mlc_cache_open(&c[1], a, "two", NULL)) != 0) {
		mlc_cache_close(c[0]);
		return rc;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const size_t lock_off = offsetof(struct mlc__hdr, ah_ns_lock);
	const size_t boot_off = offsetof(struct mlc__hdr, ah_boot_id);
	struct mlc_cache *c[2];
	struct mlc_arena *a, *b;
	bool live = len > 0 && (data[0] & 1);
	int rc;

	memcpy(map, image, size);
	if (live) {
		/* Attached and reading when the bytes change under us. */
		a = attach(&rc);
		if (a == NULL)
			die("attach the pristine image", rc);
		if ((rc = caches_open(a, c)) != 0)
			die("caches on the pristine image", rc);
		read_all(a, c);
		patch(data, len);
		read_all(a, c);
		/* Another process attaching the corrupt arena now.  (With
		 * the boot id changed it would wait 5 s for us to detach
		 * before resetting it: correct, but it starves the fuzzer;
		 * the other mode covers that path.) */
		memcpy(map + boot_off, image + boot_off, 16);
		b = attach(&rc);
		if (b == NULL && rc >= 0)
			abort();
		if (b != NULL) {
			inspect_all(b);
			mlc_arena_close(b);
		}
	} else {
		patch(data, len);
		a = attach(&rc);
		if (a == NULL) {
			if (rc >= 0)
				abort();
			return 0;	/* refused: fine */
		}
		inspect_all(a);
		memcpy(map + lock_off, image + lock_off,
		       sizeof(struct mlc__lock));
		if ((rc = caches_open(a, c)) != 0) {
			if (rc >= 0)
				abort();
			mlc_arena_close(a);
			return 0;
		}
		read_all(a, c);
	}
	mlc_cache_close(c[0]);
	mlc_cache_close(c[1]);
	mlc_arena_close(a);
	return 0;
}
