#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 256

static char names[MAX_NAMES][64];
static int nnames;
static pid_t owner;

void
t_cleanup(void)
{
	if (getpid() != owner)
		return;		/* children leave the names to the parent */
	for (int i = 0; i < nnames; i++)
		mlc_arena_unlink(names[i], 0);
	nnames = 0;
}

/* Unlink /dev/shm/@p name with async-signal-safe calls only. */
void
t_shm_unlink_signal(const char *name)
{
	static const char dir[] = "/dev/shm/";
	char path[sizeof(dir) + 64];
	size_t n = strnlen(name, 64);

	if (n == 0 || n >= 64)
		return;
	memcpy(path, dir, sizeof(dir) - 1);
	memcpy(path + sizeof(dir) - 1, name, n);
	path[sizeof(dir) - 1 + n] = '\0';
	(void)unlink(path);
}

void
t_cleanup_signal(void)
{
	if (getpid() != owner)
		return;
	for (int i = 0; i < nnames; i++)
		t_shm_unlink_signal(names[i]);
}

const char *
t_name(char *buf, size_t cap)
{
	static unsigned counter;
	uint32_t r = 0;

	if (owner == 0) {
		owner = getpid();
		atexit(t_cleanup);
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	snprintf(buf, cap, "mlc-t-%ld-%u-%08x", (long)getpid(), counter++, r);
	if (nnames < MAX_NAMES)
		snprintf(names[nnames++], sizeof(names[0]), "%s", buf);
	return buf;
}

struct mlc_arena *
t_arena(char *name, size_t cap, uint64_t bytes, uint32_t max_items)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a = NULL;
	int rc;

	t_name(name, cap);
	o.flags = MLC_ARENA_CREATE | MLC_ARENA_EXCL;
	o.bytes = bytes ? bytes : (8u << 20);
	o.page_size = 64 << 10;
	o.max_items = max_items;
	o.log_cells = 1024;
	o.flight_slots = 64;
	rc = mlc_arena_open(&a, name, &o);
	if (rc != 0)
		fail_msg("mlc_arena_open(%s): %s", name, mlc_strerror(rc));
	return a;
}

int
t_decode_no_bad(void *arg, const void *data, size_t len, void **obj)
{
	char *o;

	(void)arg;
	if (len == 3 && memcmp(data, "bad", 3) == 0)
		return -EINVAL;
	o = malloc(len + 1);
	if (o == NULL)
		return -ENOMEM;
	memcpy(o, data, len);
	o[len] = '\0';
	*obj = o;
	return 0;
}

void
t_free_obj(void *arg, void *obj)
{
	(void)arg;
	free(obj);
}

const struct mlc_codec t_codec_no_bad = { t_decode_no_bad, t_free_obj, NULL };

struct mlc_cache *
t_cache(struct mlc_arena *a, const char *ns, const struct mlc_cache_options *o)
{
	struct mlc_cache *c = NULL;
	int rc = mlc_cache_open(&c, a, ns, o);

	if (rc != 0)
		fail_msg("mlc_cache_open(%s): %s", ns, mlc_strerror(rc));
	return c;
}

/* The child dies with the test: a failed assertion in the parent leaves
 * the test (cmocka goes on to the next one, then exits) without letting
 * go a child stopped at a pause point, which would then wait for ever,
 * holding the test runner's output pipe open until its timeout. */
int
t_spawn(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		pid_t pp;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* It died before the prctl: reparented.  (0: the parent is
		 * outside this child's pid namespace, as after unshare.) */
		pp = getppid();
		if (pp != parent && pp != 0)
			_exit(127);
		_exit(fn(arg));
	}
	return pid;
}

/* A child's wait status as t_wait() gives it: 128 + the signal that
 * killed it, or its exit code. */
static int
exit_code(int st)
{
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

int
t_wait(int pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 255;
	return exit_code(st);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A 1 ms nap that took this long: the machine stopped as a whole. */
#define STALL_NS 1000000000u

int
t_wait_ms(int pid, long ms)
{
	uint64_t last = mono_ns(), end = last + (uint64_t)ms * 1000000u;
	struct timespec nap = { 0, 1000000 };

	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		uint64_t now;

		if (r == pid)
			return exit_code(st);
		if (r < 0 && errno != EINTR)
			return 255;
		now = mono_ns();
		if (now - last > STALL_NS)
			end += now - last;
		last = now;
		if (now >= end)
			return -1;
		nanosleep(&nap, NULL);
	}
}

int
t_fork(int (*fn)(void *), void *arg)
{
	return t_wait(t_spawn(fn, arg));
}

void
t_filter(void)
{
	const char *f = getenv("MLC_TEST_FILTER");

	if (f != NULL && *f)
		cmocka_set_test_filter(f);
}

void
t_require_shm(void)
{
	struct stat st;

	if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access("/dev/shm", W_OK) != 0) {
		fprintf(stderr, "no writable /dev/shm: skipping\n");
		exit(T_SKIP);
	}
}

int
t_fds_none(void)
{
	struct rlimit rl;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || close(fd) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	rl.rlim_cur = (rlim_t)fd;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int
t_fds_back(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

int
t_fx_open(void **state, const char *ns)
{
	static struct t_fx fx;

	t_require_shm();
	fx.a = t_arena(fx.name, sizeof(fx.name), 0, 0);
	fx.c = ns != NULL ? t_cache(fx.a, ns, NULL) : NULL;
	*state = &fx;
	return 0;
}

int
t_fx_arena(void **state)
{
	return t_fx_open(state, NULL);
}

int
t_fx_close(void **state)
{
	struct t_fx *fx = *state;

	if (fx->c != NULL)
		mlc_cache_close(fx->c);
	mlc_arena_close(fx->a);
	mlc_arena_unlink(fx->name, 0);
	return 0;
}
