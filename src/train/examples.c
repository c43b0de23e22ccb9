/* Supervised examples (ids + loss mask) laid out as padded or packed micro-batches. */
#include <stdlib.h>
#include <string.h>

#include "align/train.h"

int al_example_set_init(al_example_set *s, int n, bool packed, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->ids = calloc((size_t)(n > 0 ? n : 1), sizeof *s->ids);
    s->mask = calloc((size_t)(n > 0 ? n : 1), sizeof *s->mask);
    s->order = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->order);
    if (!s->ids || !s->mask || !s->order) {
        al_example_set_free(s);
        return al_fail("out of memory");
    }
    s->n = n;
    s->packed = packed;
    s->seed = seed;
    s->order_epoch = -1;
    return 0;
}

void al_example_set_free(al_example_set *s)
{
    for (int i = 0; s->ids && i < s->n; i++) {
        al_ints_free(&s->ids[i]);
        al_ints_free(&s->mask[i]);
    }
    free(s->ids);
    free(s->mask);
    free(s->order);
    memset(s, 0, sizeof *s);
}

/* Fisher-Yates with xorshift seeded by (seed, epoch): every epoch its own order, and the
 * same order again after a resume. */
void al_epoch_order(int *perm, int n, uint64_t seed, long epoch)
{
    uint64_t rng = (seed ^ 0x9E3779B97F4A7C15ull) + 0x632BE59BD9B4E019ull * (uint64_t)(epoch + 1);
    if (!rng)
        rng = 1;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(al_xorshift_u32(&rng) % (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void shuffle_for_epoch(al_example_set *s, long epoch)
{
    if (s->order_epoch == epoch)
        return;
    al_epoch_order(s->order, s->n, s->seed, epoch);
    s->order_epoch = epoch;
}

/* Positions an example occupies in a row: its inputs, at most T. */
static int example_span(const al_example_set *s, int e, int T)
{
    int L = s->ids[e].n - 1;
    return L < 0 ? 0 : L > T ? T : L;
}

/* Writes example e at row offset `at` (span positions) with restarting positions. */
static void place(const al_example_set *s, int e, int at, int span, int *tok, int *tgt, int *pos, int *seg)
{
    const int *ids = s->ids[e].v, *mask = s->mask[e].v;
    for (int j = 0; j < span; j++) {
        tok[at + j] = ids[j];
        tgt[at + j] = mask[j + 1] ? ids[j + 1] : -1;
        pos[at + j] = j;
        seg[at + j] = at;
    }
}

static void clear_row(int *tok, int *tgt, int *pos, int *seg, int from, int T)
{
    for (int j = from; j < T; j++) {
        tok[j] = 0;
        tgt[j] = -1;
        pos[j] = j - from;
        seg[j] = from;
    }
}

/* Fills rows from examples picked by `pick` (an example index, advancing its state, or -1
 * when there are no more); an example picked but not placed is handed back with `unpick`. */
typedef int (*pick_fn)(al_example_set *s, void *state);
typedef void (*unpick_fn)(void *state);

static void fill_rows(al_example_set *s, int B, int T, al_batch *b, pick_fn pick, unpick_fn unpick, void *state)
{
    int pending = -1; /* an example that did not fit the previous row starts the next */
    for (int r = 0; r < B; r++) {
        int *tok = b->tokens + (size_t)r * T, *tgt = b->targets + (size_t)r * T;
        int *pos = b->pos + (size_t)r * T, *seg = b->seg_start + (size_t)r * T;
        int at = 0;
        for (;;) {
            int e = pending >= 0 ? pending : pick(s, state);
            pending = -1;
            if (e < 0)
                break;
            int span = example_span(s, e, T);
            if (at > 0 && at + span > T) {
                pending = e;
                break;
            }
            place(s, e, at, span, tok, tgt, pos, seg);
            at += span;
            if (!s->packed || at >= T)
                break;
        }
        clear_row(tok, tgt, pos, seg, at, T);
    }
    if (pending >= 0)
        unpick(state);
    b->packed = true; /* positions and segments are always filled; harmless when unpacked */
}

typedef struct train_pick {
    al_batch_cursor *c;
} train_pick;

static int pick_train(al_example_set *s, void *state)
{
    al_batch_cursor *c = ((train_pick *)state)->c;
    if (c->pos >= (size_t)s->n) {
        c->pos = 0;
        c->epoch++;
    }
    shuffle_for_epoch(s, c->epoch);
    return s->order[c->pos++];
}

/* The last pick was not placed: step back (a wrap stays done: the example is order[0] of
 * the new epoch, which the next pick returns again). */
static void unpick_train(void *state) { ((train_pick *)state)->c->pos--; }

static int example_next(void *ctx, al_batch_cursor *c, int B, int T, al_batch *b)
{
    al_example_set *s = ctx;
    if (s->n <= 0)
        return al_fail("no training examples");
    train_pick st = {c};
    fill_rows(s, B, T, b, pick_train, unpick_train, &st);
    return 0;
}

typedef struct eval_pick {
    int next, end;
} eval_pick;

static int pick_eval(al_example_set *s, void *state)
{
    eval_pick *p = state;
    (void)s;
    return p->next < p->end ? p->next++ : -1;
}

static void unpick_eval(void *state) { ((eval_pick *)state)->next--; }

/* Evaluation batch e holds examples [e*B*k, ...) in file order: with packing several per
 * row, so batches are formed by walking from the start each time (eval sets are small). */
static int example_eval(void *ctx, int e, int B, int T, al_batch *b)
{
    al_example_set *s = ctx;
    eval_pick p = {0, s->n};
    al_batch scratch = *b;
    for (int k = 0; k < e; k++)
        fill_rows(s, B, T, &scratch, pick_eval, unpick_eval, &p);
    if (p.next >= s->n)
        return 0;
    fill_rows(s, B, T, b, pick_eval, unpick_eval, &p);
    int count = 0;
    for (int i = 0; i < B * T; i++)
        count += b->targets[i] >= 0;
    return count;
}

al_batch_source al_example_source(al_example_set *s) { return (al_batch_source){s, example_next, example_eval}; }
