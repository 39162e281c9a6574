/*
 * bench-sizes: the sizes and offsets of the arena's shared structures (as
 * libuv's benchmark-sizes.c), and what one L2 entry costs before size-class
 * rounding.  The layout is an ABI: a change here is a format change.
 */
#include <stddef.h>
#include <stdio.h>

#include "arena.h"

#define SZ(t) printf("%-26s %6zu  (align %zu)\n", #t, sizeof(t), \
		     _Alignof(t))
#define OFF(t, m) printf("  %-24s %6zu  +%zu\n", #m, offsetof(t, m), \
			 sizeof(((t *)0)->m))

int
main(void)
{
	SZ(struct mlc__hdr);
	OFF(struct mlc__hdr, ah_magic);
	OFF(struct mlc__hdr, ah_seed);
	OFF(struct mlc__hdr, ah_state);
	OFF(struct mlc__hdr, ah_page_size);
	OFF(struct mlc__hdr, ah_stripes_off);
	OFF(struct mlc__hdr, ah_class_size);
	OFF(struct mlc__hdr, ah_check);
	OFF(struct mlc__hdr, ah_version);
	OFF(struct mlc__hdr, ah_pool_lock);
	OFF(struct mlc__hdr, ah_pool_head);
	OFF(struct mlc__hdr, ah_ns_lock);
	OFF(struct mlc__hdr, ah_ns_count);
	OFF(struct mlc__hdr, ah_items);
	OFF(struct mlc__hdr, ah_write_failures);
	SZ(struct mlc__lock);
	OFF(struct mlc__lock, lk_mutex);
	OFF(struct mlc__lock, lk_aux);
	SZ(pthread_mutex_t);
	SZ(struct mlc__bucket);
	OFF(struct mlc__bucket, bk_version);
	OFF(struct mlc__bucket, bk_slot);
	SZ(struct mlc__item);
	OFF(struct mlc__item, it_state);
	OFF(struct mlc__item, it_klen);
	OFF(struct mlc__item, it_ns);
	OFF(struct mlc__item, it_genlen);
	OFF(struct mlc__item, it_nsgen);
	OFF(struct mlc__item, it_exp_lo);
	OFF(struct mlc__item, it_verexp);
	OFF(struct mlc__item, it_pid);
	OFF(struct mlc__item, it_start);
	OFF(struct mlc__item, it_next);
	SZ(struct mlc__class);
	OFF(struct mlc__class, cl_lock);
	OFF(struct mlc__class, cl_size);
	OFF(struct mlc__class, cl_demand);
	SZ(struct mlc__page);
	OFF(struct mlc__page, pg_gen);
	SZ(struct mlc__ns);
	OFF(struct mlc__ns, ns_used);
	OFF(struct mlc__ns, ns_gen);
	OFF(struct mlc__ns, ns_name);
	SZ(struct mlc__log_cell);
	OFF(struct mlc__log_cell, lc_seq);
	OFF(struct mlc__log_cell, lc_hash);
	OFF(struct mlc__log_cell, lc_version);
	SZ(struct mlc__log);
	SZ(struct mlc__flight_slot);
	OFF(struct mlc__flight_slot, fs_ec);
	OFF(struct mlc__flight_slot, fs_word);
	OFF(struct mlc__flight_slot, fs_pub);
	OFF(struct mlc__flight_slot, fs_owner);
	OFF(struct mlc__flight_slot, fs_deadline);
	printf("\none L2 entry: item header %d B + slot word 8 B = %d B "
	       "+ key + value (target: 32 B + key + value)\n",
	       MLC__ITEM_HDR, MLC__ITEM_HDR + 8);
	printf("index: %zu B per bucket of %d slots = %.1f B per slot\n",
	       sizeof(struct mlc__bucket), MLC__SLOTS,
	       (double)sizeof(struct mlc__bucket) / MLC__SLOTS);
	return 0;
}
