/*
 * Process identity and proof of death.
 *
 * A process that stamps something shared (a flight it loads, a chunk it
 * fills) stamps who it is: pid, the process's start time (which tells a
 * reused pid apart) and its pid namespace (a pid means nothing in another
 * one).  Another process may take the thing over only on proof that the
 * stamper is dead, never because it is slow: a process can be stopped for
 * seconds (SIGSTOP, swap, a paused VM) and then go on as if nothing
 * happened.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlc-int.h"

/* Per thread, and refreshed after fork: no thread ever reads another's
 * half-written cache, and a child never stamps its parent's identity. */
static __thread uint64_t my_start_v;
static __thread uint32_t my_ns_v;
static __thread uint64_t my_gen = UINT64_MAX;
/* Our start time for chunk stamps when my_start_v is 0 because
 * /proc/self/stat could not be read (my_unread), not because it names
 * another pid: read again at each stamp until it is known
 * (mlc__proc_stamp_start()). */
static __thread uint64_t my_stamp_v;
static __thread bool my_unread;

/* Field 22 of /proc/<pid>/stat (@p pid 0: /proc/self/stat): the start
 * time in clock ticks.  0 if it cannot be read; *state gets the state
 * letter, 'X' if there is no such process, '?' if that cannot be told;
 * *@p first (if not NULL) the pid the file names (field 1), *@p threads
 * (if not NULL) its threads (field 20; 0 if unread). */
static uint64_t
start_time_of(long pid, char *state, long *first, long *threads)
{
	char path[64], buf[1024], *p;
	uint64_t start = 0;
	ssize_t n;
	int fd;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/stat");
	else
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	*state = '?';
	if (fd < 0) {
		if (errno == ENOENT)
			*state = 'X';	/* gone */
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (first != NULL)
		*first = strtol(buf, NULL, 10);
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	if (p == NULL || p[1] != ' ')
		return 0;
	*state = p[2];
	/* After ") ": field 3 is the state; the start time is field 22. */
	p += 2;
	for (int field = 3; field < 22 && p != NULL; field++) {
		if (field == 20 && threads != NULL)
			*threads = strtol(p, NULL, 10);
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p != NULL)
		start = strtoull(p, NULL, 10);
	return start;
}

/* How many pids the NSpid line of /proc/self/status gives: one for each
 * pid namespace from the procfs's down to ours, so 1 when /proc is of our
 * own namespace; 0 if it has no such line (kernels before 4.1), -1 if the
 * file cannot be read (no descriptor to spare, say). */
static int
nspid_levels(void)
{
	char buf[4096], *p;
	int n = 0;
	ssize_t len;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	p = strstr(buf, "\nNSpid:");
	if (p == NULL)
		return 0;
	p += strlen("\nNSpid:");
	while (*p != '\n' && *p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		n++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return n;
}

/* Our start time through /proc/self, or 0 if it is not ours to take;
 * *@p unread says whether a later read may give it (the files could not
 * be read, no descriptor to spare, say) or not (another pid namespace's
 * procfs, or none).  A procfs of another pid namespace (a container
 * sharing the host's /proc) names us by another pid, and what it says of
 * our pid is some other process's.  The pid it gives can also be our own
 * by chance (pids are allocated per namespace): then it still describes
 * the parent namespace's processes, and judged ours by theirs (a live
 * process dead, test-procs test_foreign_procfs_same_pid).  NSpid lists
 * our pid in each namespace from the procfs's down. */
static uint64_t
self_start(bool *unread)
{
	long self = 0;
	char state;
	uint64_t start = start_time_of(0, &state, &self, NULL);
	int levels;

	*unread = self == 0 && state == '?';
	if (self != (long)mlc__pid())
		return 0;
	levels = nspid_levels();
	if (levels < 0)
		*unread = true;		/* NSpid not read: no verdict yet */
	return levels == 0 || levels == 1 ? start : 0;
}

static void
me_refresh(void)
{
	uint64_t gen = mlc__fork_gen();
	struct stat st;

	if (my_gen == gen)
		return;
	my_start_v = self_start(&my_unread);
	/* The pid namespace's inode; 0 (unknown) makes us unable to judge
	 * anyone, and everyone unable to judge us: never a wrong verdict.
	 * Without a start time the same (mlc__proc_dead()); the namespace
	 * is kept, so that two such processes of two namespaces, each pid
	 * 1 in its own, are not taken for one (procs.c). */
	my_ns_v = stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
	my_stamp_v = 0;
	my_gen = gen;
}

uint64_t
mlc__proc_start(void)
{
	me_refresh();
	return my_start_v;
}

/* Our start time for the stamp of a chunk we allocate: mlc__proc_start(),
 * or, if that could not be read when this thread first asked (EMFILE at a
 * server's descriptor limit), a new read each time until one succeeds.
 * A stamp without a start time proves death only once its pid is gone
 * (mlc__proc_dead()), which a reused pid may put off for ever, and a
 * chunk its dead writer left ALLOC is reclaimed only on proof (alloc.c):
 * kept for the thread's life, one moment without a descriptor made every
 * chunk it later allocated and died holding a leak (test-evict
 * test_orphan_stamped_without_fds).  Judging others uses it too
 * (can_judge()).  Identity elsewhere (the attached processes' table,
 * which finds our entry by it, flights, log claims) keeps the first
 * answer; a stamp is judged only against /proc and never compared with
 * ours unless we can judge (mlc__proc_judgeable()).  A read again makes
 * the same checks as the first (self_start()). */
uint64_t
mlc__proc_stamp_start(void)
{
	me_refresh();
	if (my_start_v != 0)
		return my_start_v;
	/* my_unread is false once a read again succeeded: its answer is
	 * kept (until review AH it was dropped for my_start_v, 0, at the
	 * next call: test-procs test_emfile_stamp_kept). */
	if (my_stamp_v == 0 && my_unread)
		my_stamp_v = self_start(&my_unread);
	return my_stamp_v;
}

uint32_t
mlc__proc_ns(void)
{
	me_refresh();
	return my_ns_v;
}

/* Can this process judge a stamp of pid @p pid in pid namespace @p ns?
 * Only one of our own namespace, whose /proc we see, and only with our
 * own start time, which proves that /proc is our namespace's: read again
 * while it could not be read (mlc__proc_stamp_start()).  Until review AH
 * a thread that met EMFILE at its first use judged nobody for its life,
 * so no dead process was proven by it, no flight of a dead owner taken
 * over before its lease, no orphan reclaimed (test-procs
 * test_emfile_then_judges). */
static bool
can_judge(uint32_t pid, uint32_t ns)
{
	me_refresh();
	return pid != 0 && ns != 0 && ns == my_ns_v &&
	       mlc__proc_stamp_start() != 0;
}

bool
mlc__proc_judgeable(uint32_t pid, uint64_t start, uint32_t ns)
{
	return start != 0 && can_judge(pid, ns);
}

/* Has no process @p pid, which /proc showed as gone?  A /proc mounted
 * with hidepid=2 ("invisible") hides other users' processes as if they
 * were gone, so its word alone judged a live process of another user
 * dead: its entry pruned, its flight taken over while it loaded, the
 * chunk it was filling reclaimed (test-procs test_hidepid_lives, review
 * AH).  kill() with no signal tells: ESRCH only when no process of our
 * pid namespace has the pid (EPERM: one has, not ours to signal). */
static bool
pid_gone(uint32_t pid)
{
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Is the stamper of a stamp of our pid namespace without a start time
 * (its process could not read /proc/self/stat: EMFILE, say) dead?  Only
 * when its pid has no process at all, or a zombie of one thread: whoever
 * has the pid now, the stamper's is gone.  A pid reused since (ours
 * included) only keeps it "alive". */
static bool
startless_dead(uint32_t pid)
{
	long threads = 0;
	char state;

	if (pid == (uint32_t)mlc__pid())
		return false;
	(void)start_time_of((long)pid, &state, NULL, &threads);
	return (state == 'X' && pid_gone(pid)) ||
	       (state == 'Z' && threads == 1);
}

/* Is the process (@p pid, @p start, @p ns) certainly dead?  "Cannot
 * tell" is never "dead": another pid namespace or an unreadable procfs
 * answer false.  A stamp without a start time is dead only when its pid
 * has no process at all, or a zombie (whoever has the pid now, the
 * stamper's is gone): until review AH it was never judged, so the entry
 * in the attached processes of a process that met EMFILE at its first
 * use stayed for ever, and so did its claiming counter's weight
 * (test-procs test_emfile_entry_pruned). */
bool
mlc__proc_dead(uint32_t pid, uint64_t start, uint32_t ns)
{
	uint64_t now_start;
	long threads = 0;
	char state;

	if (!can_judge(pid, ns))
		return false;
	if (start == 0)
		return startless_dead(pid);
	if (pid == (uint32_t)mlc__pid())	/* a pid our process reused? */
		return start != mlc__proc_stamp_start();
	now_start = start_time_of((long)pid, &state, NULL, &threads);
	if (state == 'X')
		return pid_gone(pid);
	if (now_start != 0 && now_start != start)
		return true;		/* the pid was reused */
	/* A zombie is dead, but a process whose first thread called
	 * pthread_exit() shows as one too while its other threads run:
	 * only a zombie of one thread is dead. */
	return state == 'Z' && now_start == start && threads == 1;
}
