/* Run under `mpirun -np 3`: the rank-ordered sums of align/dist.h.  Float addition is not
 * associative, so the contributions are chosen to give a different float in every other
 * order: ((1 + 1e8) + -1e8) = 0 in rank order, (1 + (1e8 + -1e8)) = 1 otherwise.  Every
 * rank must get the rank-order result, for floats and doubles, past the 2^24-element
 * chunk boundary too; a broadcast and a barrier must work.  Prints "ok" on rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/dist.h"

int main(int argc, char **argv)
{
    if (al_dist_init(&argc, &argv)) {
        fprintf(stderr, "%s\n", al_errmsg());
        return 1;
    }
    const int r = al_dist_rank(), n = al_dist_size();
    if (n != 3) {
        fprintf(stderr, "run with mpirun -np 3 (got %d ranks)\n", n);
        al_dist_finalize();
        return 2;
    }
    const float fv[3] = {1.0f, 1e8f, -1e8f};
    const double dv[3] = {1.0, 1e17, -1e17};
    const size_t N = ((size_t)1 << 24) + 5;
    float *f = malloc(N * sizeof *f);
    double d[7];
    int bad = 0;
    for (size_t i = 0; i < N; i++)
        f[i] = fv[r];
    for (int i = 0; i < 7; i++)
        d[i] = dv[r];
    if (al_dist_sum_floats(f, N) || al_dist_sum_doubles(d, 7)) {
        fprintf(stderr, "rank %d: %s\n", r, al_errmsg());
        return 1;
    }
    for (size_t i = 0; i < N; i++)
        bad += f[i] != 0.0f;
    for (int i = 0; i < 7; i++)
        bad += d[i] != 0.0;
    char word[16] = "";
    if (r == 1)
        snprintf(word, sizeof word, "from rank 1");
    bad += al_dist_bcast(word, sizeof word, 1) != 0;
    bad += strcmp(word, "from rank 1") != 0;
    bad += al_dist_barrier() != 0;
    bad += al_dist_bytes_reduced() != N * sizeof(float) + 7 * sizeof(double);
    if (bad)
        fprintf(stderr, "rank %d: %d values differ from the rank-order sum\n", r, bad);
    free(f);
    al_dist_finalize();
    if (r == 0 && !bad)
        printf("ok\n");
    return bad ? 1 : 0;
}
