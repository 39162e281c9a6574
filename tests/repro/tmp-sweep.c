/*
 * mlc_arena_unlink("base") removes the temporary file of a *live* creator
 * of another arena whose name starts with "base." followed by digits:
 * tmp_sweep() matches the prefix ".mlc-tmp.base." and reads the creator's
 * pid from what follows, which for the arena "base.4000001" is 4000001
 * (not a process), not the real creator's pid.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "mlc.h"

int
main(void)
{
	char tmp[128];
	int fd;

	/* What a creator (this very process, alive) of the arena
	 * "base.4000001" has on disk while it builds it. */
	snprintf(tmp, sizeof(tmp), "/dev/shm/.mlc-tmp.base.4000001.%ld.0",
		 (long)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return 2;
	close(fd);
	printf("mlc_arena_unlink(\"base\"): %s\n",
	       mlc_strerror(mlc_arena_unlink("base", 0)));
	if (access(tmp, F_OK) != 0) {
		printf("the live creator's temporary file %s is gone\n", tmp);
		return 1;
	}
	unlink(tmp);
	printf("kept\n");
	return 0;
}
