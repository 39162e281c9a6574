/*
 * Attach an arena and hold handles on it until told to stop, for
 * tests/test-mlcctl.sh to list with `mlcctl procs`:
 *
 *   hold-arena ARENA-FILE NCACHES
 *
 * Attaches the file arena, opens NCACHES cache handles (namespace "hold"),
 * prints "ready" on stdout, and waits: SIGTERM closes every handle and
 * exits 0 (the process leaves the list by closing); SIGKILL leaves them
 * open (it leaves the list by proof of death).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlc.h"

int
main(int argc, char **argv)
{
	struct mlc_arena_options ao = MLC_ARENA_OPTIONS_INIT;
	struct mlc_cache *c[16];
	struct mlc_arena *a;
	sigset_t set;
	int n, rc, sig;

	if (argc != 3 || (n = atoi(argv[2])) < 0 || n > 16) {
		fprintf(stderr, "usage: hold-arena ARENA-FILE NCACHES (0-16)\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ao.flags = MLC_ARENA_FILE;
	if ((rc = mlc_arena_open(&a, argv[1], &ao)) != 0) {
		fprintf(stderr, "hold-arena: %s: %s\n", argv[1],
			mlc_strerror(rc));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if ((rc = mlc_cache_open(&c[i], a, "hold", NULL)) != 0) {
			fprintf(stderr, "hold-arena: cache: %s\n",
				mlc_strerror(rc));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	if (sigwait(&set, &sig) != 0)
		return 1;
	for (int i = 0; i < n; i++)
		mlc_cache_close(c[i]);
	mlc_arena_close(a);
	return 0;
}
