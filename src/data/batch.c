/* Batches from a token stream (docs/training.md, "Batch order"). */
#include "align/data.h"

#include <limits.h>

/* Sequential windows as llm.c: row b of the micro-batch at cursor pos reads
 * stream[pos + b*T .. pos + b*T + T] as inputs and the same range shifted by one as
 * targets; then pos += B*T.  Before reading, if pos + B*T + 1 > n the cursor returns to
 * 0 and the epoch count increases (so the last n - pos tokens of an epoch are skipped,
 * and a cursor past the end, e.g. from a different stream, simply restarts). */
int al_next_batch(const al_token_stream *s, al_batch_cursor *c, int B, int T, int *tokens, int *targets)
{
    if (B <= 0 || T <= 0 || (long long)B * T > INT_MAX)
        return al_fail("batch of %d x %d tokens is not valid", B, T);
    size_t bt = (size_t)B * (size_t)T;
    if (s->n < bt + 1)
        return al_fail("%s: the token stream has %zu tokens; a batch of %d x %d needs at least %zu "
                       "(B*T+1): use a smaller batch size or sequence length, or more data",
                       s->cache_path ? s->cache_path : "token stream", s->n, B, T, bt + 1);
    if (c->pos > s->n || c->pos + bt + 1 > s->n) {
        c->pos = 0;
        c->epoch++;
    }
    const uint32_t *src = s->ids + c->pos;
    for (size_t i = 0; i < bt; i++) {
        tokens[i] = (int)src[i];
        targets[i] = (int)src[i + 1];
    }
    c->pos += bt;
    return 0;
}

/* Eval batch e, row b starts at (e*B + b)*T; positions past the end get token 0 and
 * target -1 (ignored).  Returns the number of real targets, 0 when the batch starts past
 * the end, or -1 (with an error) for bad arguments. */
int al_eval_batch(const al_token_stream *s, int e, int B, int T, int *tokens, int *targets)
{
    if (e < 0 || B <= 0 || T <= 0 || (long long)B * T > INT_MAX)
        return al_fail("eval batch %d of %d x %d tokens is not valid", e, B, T);
    int filled = 0;
    for (int b = 0; b < B; b++) {
        size_t start = ((size_t)e * (size_t)B + (size_t)b) * (size_t)T;
        for (int t = 0; t < T; t++) {
            size_t i = start + (size_t)t, k = (size_t)b * (size_t)T + (size_t)t;
            tokens[k] = i < s->n ? (int)s->ids[i] : 0;
            if (i + 1 < s->n) {
                targets[k] = (int)s->ids[i + 1];
                filled++;
            } else {
                targets[k] = -1;
            }
        }
    }
    return filled;
}
