/* Helpers of the data-parallel trainers on top of align/dist.h (include/align/dist_extra.h). */
#include "align/dist_extra.h"

#include <stdint.h>
#include <stdio.h>

#include "align/core.h"
#include "align/dist.h"

bool al_dist_owns(int k) { return k % al_dist_size() == al_dist_rank(); }

int al_dist_stop_on_error(int rc, const char *what)
{
    if (rc == 0 || al_dist_size() == 1)
        return rc;
    char why[1200];
    snprintf(why, sizeof why, "%s: %s", what, al_errmsg());
    al_dist_abort(why); /* does not return */
    return rc;
}

int al_dist_check_same(const void *p, size_t n, const char *what)
{
    if (al_dist_size() == 1)
        return 0;
    const uint64_t mine = al_hash64(p, n, 0x0D15);
    uint64_t root = mine;
    if (al_dist_bcast(&root, sizeof root, 0))
        return -1;
    if (root != mine)
        return al_fail("rank %d's %s differ from rank 0's: every rank must read the same files (a shared "
                       "filesystem or identical copies at the same paths)",
                       al_dist_rank(), what);
    return 0;
}
