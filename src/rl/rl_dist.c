/* Data parallelism of the online RL trainers (mpirun -np N align grpo ...).  A step's
 * prompts are dealt to the ranks by whole groups (prompt p to rank p % N), so the group
 * statistics GRPO and RLOO need stay on one rank; each rank samples, scores and trains its
 * own rows.  What spans the batch is made global by collectives of align/dist.h: per-
 * sequence figures are gathered exactly (each rank writes its entries into a zeroed array
 * and the arrays are summed: x + 0 == x), so every rank computes advantages, whitening and
 * reported figures from the very numbers one rank would have; gradients and token counts
 * are summed.  docs/distributed.md, "Online RL". */
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "rl_internal.h"

int rl_dist_groups(const int *idx, int P, int *mine, int *groups)
{
    const int rank = al_dist_rank(), ranks = al_dist_size();
    int k = 0;
    for (int p = rank; p < P; p += ranks)
        mine[k] = idx[p], groups[k++] = p;
    return k;
}

int rl_dist_gather(double *x, size_t n) { return al_dist_sum_doubles(x, n); }
int rl_dist_sum(double *x, size_t n) { return al_dist_sum_doubles(x, n); }

void rl_tokens_free(rl_tokens *tk)
{
    free(tk->v), free(tk->off);
    *tk = (rl_tokens){0};
}

int rl_dist_tokens(rl_tokens *tk, const rl_rows *b, const float *v)
{
    const int N = b->n_all, W = b->max_new + 1, T = b->T; /* per row: its count, then its values */
    *tk = (rl_tokens){0};
    double *g = calloc((size_t)N * W, sizeof *g);
    tk->off = malloc(((size_t)N + 1) * sizeof *tk->off);
    if (!g || !tk->off) {
        free(g);
        return al_fail("out of memory");
    }
    for (int i = 0; i < b->n; i++) {
        double *row = g + (size_t)b->global[i] * W;
        int c = 0;
        for (int t = 0; t < T; t++)
            if (b->weight[(size_t)i * T + t] > 0 && c < b->max_new)
                row[1 + c++] = v[(size_t)i * T + t];
        row[0] = c;
    }
    int rc = rl_dist_gather(g, (size_t)N * W);
    tk->off[0] = 0;
    for (int i = 0; i < N; i++)
        tk->off[i + 1] = tk->off[i] + (long)g[(size_t)i * W];
    tk->m = tk->off[N];
    if (rc == 0 && !(tk->v = malloc(((size_t)tk->m + 1) * sizeof *tk->v)))
        rc = al_fail("out of memory");
    for (int i = 0; rc == 0 && i < N; i++)
        memcpy(tk->v + tk->off[i], g + (size_t)i * W + 1, (size_t)(tk->off[i + 1] - tk->off[i]) * sizeof *tk->v);
    free(g);
    if (rc)
        rl_tokens_free(tk);
    return rc;
}

void rl_dist_tokens_put(const rl_tokens *tk, const rl_rows *b, float *v)
{
    const int T = b->T;
    for (int i = 0; i < b->n; i++) {
        long k = tk->off[b->global[i]];
        for (int t = 0; t < T; t++)
            if (b->weight[(size_t)i * T + t] > 0 && k < tk->off[b->global[i] + 1])
                v[(size_t)i * T + t] = (float)tk->v[k++];
    }
}
