/*
 * Reference eviction policies for the hit-ratio bench, written for it from
 * their published descriptions (nothing here is used by the library):
 *
 *   LRU        exact least-recently-used
 *   CLOCK      FIFO with one reference bit (second chance)
 *   S3-FIFO    Yang et al., "FIFO queues are all you need for cache
 *              eviction", SOSP 2023: a small FIFO (10% of the bytes), a main
 *              FIFO (90%) with 2-bit frequencies, a ghost FIFO of keys
 *   W-TinyLFU  Einziger et al., "TinyLFU: a highly efficient cache admission
 *              policy", 2017: a window LRU (1%), a count-min sketch (4-bit
 *              counters, halved every 10 x capacity samples) deciding
 *              admission to a segmented LRU main (20% probation, 80%
 *              protected)
 *
 * All are byte-bounded: an object of b bytes takes b of the capacity, so
 * mixed value sizes are compared with mlc by bytes too.  Key ids are dense
 * (< nkeys): state lives in arrays indexed by id.
 */
#ifndef HR_SIM_H
#define HR_SIM_H

#include <stdbool.h>
#include <stdint.h>

enum hr_policy { HR_LRU, HR_CLOCK, HR_S3FIFO, HR_TINYLFU, HR_NPOLICIES };

struct hr_sim;

const char *hr_policy_name(enum hr_policy p);
struct hr_sim *hr_sim_new(enum hr_policy p, uint64_t capacity, uint32_t nkeys);
/* One request for key @p id of @p bytes: true on a hit; on a miss the
 * object is admitted (or not) as the policy decides. */
bool hr_sim_access(struct hr_sim *s, uint32_t id, uint32_t bytes);
void hr_sim_free(struct hr_sim *s);

#endif /* HR_SIM_H */
