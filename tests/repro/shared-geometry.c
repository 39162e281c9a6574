/*
 * A corrupt arena makes a *lookup with a loader* (and any write) access
 * memory outside the mapping: log.c and flight.c take the number of log
 * cells and flight slots from the shared header (a->hdr->ah_log_cells,
 * a->hdr->ah_flight_slots) on every call, not from the copy validated at
 * attach.
 *
 *   ./shared-geometry flight   mlc_get with a loader after ah_flight_slots
 *                              was rewritten -> SIGSEGV (flight.c slot_of)
 *   ./shared-geometry log      mlc_set after ah_log_cells and lg_head were
 *                              rewritten -> SIGSEGV (log.c mlc__log_publish)
 */
#include <stdio.h>
#include <string.h>

#include "mlc-int.h"

static int
loader(void *arg, const void *key, size_t len, struct mlc_load *out)
{
	(void)arg; (void)key; (void)len;
	out->data = "v";
	out->len = 1;
	return MLC_LOAD_VALUE;
}

int
main(int argc, char **argv)
{
	struct mlc_arena_options o = MLC_ARENA_OPTIONS_INIT;
	struct mlc_arena *a;
	struct mlc_cache *c;
	struct mlc_value v = { 0 };
	int rc;

	o.flags = MLC_ARENA_ANON;
	o.bytes = 4 << 20;
	o.page_size = 64 << 10;
	if (argc < 2 || mlc_arena_open(&a, NULL, &o) != 0 ||
	    mlc_cache_open(&c, a, "ns", NULL) != 0)
		return 2;
	/* What another process with the arena mapped can write. */
	if (strcmp(argv[1], "flight") == 0) {
		a->hdr->ah_flight_slots = 1u << 31;
		printf("ah_flight_slots = 2^31; mlc_get with a loader...\n");
		fflush(stdout);
		rc = mlc_get(c, "some key", 8, loader, NULL, &v);
	} else {
		a->hdr->ah_log_cells = 1u << 31;
		a->log->lg_head = (uint64_t)1 << 30;
		printf("ah_log_cells = 2^31, lg_head = 2^30; mlc_set...\n");
		fflush(stdout);
		rc = mlc_set(c, "some key", 8, "v", 1, NULL);
	}
	printf("returned %d (not reached when the bug is there)\n", rc);
	return 0;
}
