/*
 * Servers the benchmark starts itself (redis-server, memcached): children
 * of this process, listening on unix sockets in its private directory,
 * pinned to a CPU only if asked (--server-cpu), killed with this process
 * (PR_SET_PDEATHSIG) and stopped at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_SERVERS 4

static struct server *running[MAX_SERVERS];

bool
have_program(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

int
wait_for_socket(const char *path, int ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int waited = 0; waited <= ms; waited += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return 0;
		}
		close(fd);
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int
server_start(struct server *s, const char *tmpdir, int cpu,
	     const char *const argv[])
{
	char log[320];
	pid_t pid;
	int status, rc;

	snprintf(log, sizeof(log), "%s/%s.log", tmpdir, s->name);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);

		/* Goes when we go, whatever way we go. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		if (nul >= 0)
			dup2(nul, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	for (int i = 0; i < MAX_SERVERS; i++)
		if (running[i] == NULL) {
			running[i] = s;
			break;
		}
	rc = wait_for_socket(s->sock, 10000);
	if (rc == 0)
		return 0;
	if (waitpid(pid, &status, WNOHANG) == pid)
		s->pid = 0;
	snprintf(s->why, sizeof(s->why), "%s did not come up (see %.100s)",
		 argv[0], log);
	server_stop(s);
	return rc;
}

void
server_stop(struct server *s)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status;

	for (int i = 0; i < MAX_SERVERS; i++)
		if (running[i] == s)
			running[i] = NULL;
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 300; i++) {		/* 3 s, then for sure */
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		nanosleep(&ts, NULL);
	}
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
	}
	unlink(s->sock);
}

void
servers_stop_all(void)
{
	for (int i = 0; i < MAX_SERVERS; i++)
		if (running[i] != NULL)
			server_stop(running[i]);
}

int
fill_by_set(const struct impl *im, void *st, const char *keys, size_t n,
	    const void *val, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		int rc = im->set(st, keys + i * BENCH_KEY, val, len);

		if (rc < 0)
			return rc;
	}
	return 0;
}
