/*
 * What mlc asks of the kernel's memory manager for an arena mapping:
 * huge pages where the system allows them, pages mapped in before they are
 * carved, and how much of a mapping huge pages back.
 *
 * An arena is read at random: a cold L2 hit touches a bucket, an item and
 * maybe a page descriptor, each on its own 4 KiB page, so beyond the TLB's
 * reach (a few MiB) each costs a page walk besides its cache miss.  Backed
 * by 2 MiB pages instead, a 1 GiB arena needs 512 TLB entries, not 262144.
 * Whether tmpfs hands out huge pages is the administrator's choice: the
 * mount's huge= option (/dev/shm: never by default), and for anonymous
 * shared memory /sys/kernel/mm/transparent_hugepage/shmem_enabled.  mlc
 * only makes "advise" mean something: it marks every mapping
 * MADV_HUGEPAGE.  docs/internals.md, "Huge pages", has the measurements.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mlc-int.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

/* How far apart mlc__vm_huge_bytes() touches the arena: no more than a
 * huge page (2 MiB on x86-64, and on arm64 with 4 KiB pages). */
#define HUGE_STRIDE ((size_t)2 << 20)

/* The system's page size: madvise() ranges and mappings start and end on
 * it. */
static uintptr_t
sys_page(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (uintptr_t)p : 4096;
}

/* Ask for huge pages on the mapping @p base, @p len.  Every process does
 * it for its own mapping: under huge=advise a huge page is mapped as one
 * only into mappings that asked, and khugepaged turns into huge pages only
 * what such mappings cover (the 4 KiB pages posix_fallocate() allocated:
 * in the background, at its own pace).  Asking it to happen now
 * (MADV_COLLAPSE) took 8 s for a 2 GiB arena here, against 30 ms for a
 * huge=within_size mount, whose posix_fallocate() allocates huge pages
 * at once: the way docs/internals.md recommends.  Only a hint: a kernel
 * without transparent huge pages says EINVAL, and 4 KiB pages work the
 * same. */
void
mlc__vm_advise(void *base, size_t len)
{
	(void)madvise(base, len, MADV_HUGEPAGE);
}

/* Map in, writable, the bytes at @p off of the arena that are about to be
 * written all over (a page being carved): one system call instead of a
 * page fault for every 4 KiB, which in a virtual machine costs more than
 * the carving.  Only a hint: an older kernel says EINVAL, and the faults
 * happen as before. */
void
mlc__arena_populate(struct mlc_arena *a, uint64_t off, size_t len)
{
	uintptr_t p = (uintptr_t)(a->base + off);
	uintptr_t lo = p & ~(sys_page() - 1);

	(void)madvise((void *)lo, len + (p - lo), MADV_POPULATE_WRITE);
}

/* Bytes of the mapping [@p base, @p base + @p len) that huge pages map,
 * from /proc/self/smaps: 0 if none, or if it cannot be read.  A page is
 * mapped at its first touch, so one byte of every HUGE_STRIDE is read
 * first: then a part that a huge page backs is counted whether or not
 * this process has used it yet.  Those reads are of bytes the caller has
 * just seen the arena file cover (mlc__arena_whole()), so they cannot
 * SIGBUS short of a truncation from outside in between, and their values
 * are thrown away: another process writing there races with nothing. */
uint64_t
mlc__vm_huge_bytes(const void *base, size_t len)
{
	const volatile char *p = base;
	uintptr_t page = sys_page(), lo = (uintptr_t)base;
	uintptr_t hi = (lo + len + page - 1) & ~(page - 1); /* the VMA's end */
	uint64_t huge = 0;
	bool in = false;
	char line[512];
	FILE *f;

	for (size_t off = 0; off < len; off += HUGE_STRIDE)
		(void)p[off];
	f = fopen("/proc/self/smaps", "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long start, end, kb;
		char name[32];

		/* A mapping's first line: "start-end perms offset ...". */
		if (sscanf(line, "%llx-%llx ", &start, &end) == 2) {
			in = start >= lo && end <= hi;
			continue;
		}
		if (!in || sscanf(line, "%31[A-Za-z]: %llu kB", name, &kb) != 2)
			continue;
		if (strcmp(name, "ShmemPmdMapped") == 0 ||
		    strcmp(name, "FilePmdMapped") == 0)
			huge += (uint64_t)kb * 1024;
	}
	fclose(f);
	return huge;
}
