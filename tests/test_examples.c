/* Supervised examples as batches: packing never changes the loss or the gradient, every
 * example is seen once per epoch whatever the layout, and masks become ignored targets. */
#include "align/train.h"
#include "test.h"

static uint64_t rng = 0xBADC0DEull;

static al_config tiny(void)
{
    return (al_config){.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                       .vocab_size = 50, .seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                       .rope = AL_ROPE_HALF, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
}

/* Example i: token 3+i first (so it can be recognized), a masked "prompt" of i%3 tokens,
 * then trained tokens; lengths 4..11. */
static void make_examples(al_example_set *s, int n, bool packed)
{
    CHECK_OK(al_example_set_init(s, n, packed, 99));
    for (int i = 0; i < n; i++) {
        int len = 4 + (i * 5) % 8;
        for (int j = 0; j < len; j++) {
            al_ints_push(&s->ids[i], j == 0 ? 3 + i : 10 + (int)(al_xorshift_u32(&rng) % 40));
            al_ints_push(&s->mask[i], j > i % 3 ? 1 : 0);
        }
    }
}

/* loss = -sum(logp)/N over all targets of one micro-batch, and the gradient. */
static double loss_and_grad(al_model *m, int B, int T, al_batch *b, float *grad_out)
{
    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    CHECK_OK(al_forward(ctx, b->tokens, b->targets, b->pos, b->seg_start));
    int n = 0;
    double loss = 0;
    for (int i = 0; i < B * T; i++)
        if (b->targets[i] >= 0)
            n++, loss -= al_ctx_logp(ctx)[i];
    float *dl = malloc(sizeof(float) * (size_t)B * T);
    for (int i = 0; i < B * T; i++)
        dl[i] = -1.0f / (float)n;
    al_model_zero_grads(m);
    al_backward(ctx, m, dl);
    memcpy(grad_out, m->grads, m->n_params * sizeof(float));
    free(dl);
    al_train_ctx_free(ctx);
    return loss / n;
}

static al_batch alloc_batch(int B, int T)
{
    size_t n = (size_t)B * T;
    return (al_batch){calloc(n, sizeof(int)), calloc(n, sizeof(int)), calloc(n, sizeof(int)), calloc(n, sizeof(int)),
                      false};
}

static void free_batch(al_batch *b) { free(b->tokens), free(b->targets), free(b->pos), free(b->seg_start); }

static void test_packing_equivalence(void)
{
    al_config c = tiny();
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    al_model_init_weights(&m, 5);
    const int n = 6, T = 16;
    al_example_set padded, packed;
    make_examples(&padded, n, false);
    uint64_t keep = rng;
    rng = 0xBADC0DEull;
    make_examples(&packed, n, true);
    rng = keep;
    al_batch_source ps = al_example_source(&padded), qs = al_example_source(&packed);
    /* padded: one row per example; packed: the same six (file order, the evaluation path)
     * in as few rows as fit, the rest padding */
    al_batch pb = alloc_batch(n, T), qb = alloc_batch(n, T);
    int t1 = ps.eval(ps.ctx, 0, n, T, &pb), t2 = qs.eval(qs.ctx, 0, n, T, &qb);
    CHECK(t1 > 0 && t1 == t2);
    CHECK(ps.eval(ps.ctx, 1, n, T, &pb) == 0 && qs.eval(qs.ctx, 1, n, T, &qb) == 0);
    qs.eval(qs.ctx, 0, n, T, &qb);
    ps.eval(ps.ctx, 0, n, T, &pb);
    int rows_used = 0;
    for (int r = 0; r < n; r++)
        rows_used += qb.tokens[r * T] != 0;
    CHECKF(rows_used < n, "packing used %d rows for %d examples", rows_used, n);
    float *g1 = malloc(m.n_params * sizeof(float)), *g2 = malloc(m.n_params * sizeof(float));
    double l1 = loss_and_grad(&m, n, T, &pb, g1), l2 = loss_and_grad(&m, n, T, &qb, g2);
    CHECKF(fabs(l1 - l2) < 1e-6, "packed loss %.9f vs padded %.9f", l2, l1);
    float worst = 0;
    for (size_t i = 0; i < m.n_params; i++)
        worst = fmaxf(worst, fabsf(g1[i] - g2[i]));
    CHECKF(worst < 1e-5f, "packed gradient differs by %g", (double)worst);
    free(g1), free(g2);
    free_batch(&pb), free_batch(&qb);
    al_example_set_free(&padded), al_example_set_free(&packed);
    al_model_free(&m);
}

/* Over many micro-batches, each epoch shows every example exactly once, in both layouts:
 * the examples handed out, read in row order, form consecutive permutations of all n. */
static void test_epochs(bool packed)
{
    const int n = 13, B = 2, T = 12;
    al_example_set s;
    make_examples(&s, n, packed);
    al_batch_source src = al_example_source(&s);
    al_batch b = alloc_batch(B, T);
    al_batch_cursor c = {0, 0};
    al_ints seq = {0};
    for (int step = 0; step < 60; step++) {
        CHECK_OK(src.next(src.ctx, &c, B, T, &b));
        for (int i = 0; i < B * T; i++)
            if (b.pos[i] == 0 && b.tokens[i] >= 3 && b.tokens[i] < 3 + n)
                al_ints_push(&seq, b.tokens[i] - 3);
    }
    int bad = 0, full = seq.n / n;
    for (int e = 0; e < full; e++) {
        int count[13] = {0};
        for (int i = 0; i < n; i++)
            count[seq.v[e * n + i]]++;
        for (int i = 0; i < n; i++)
            bad += count[i] != 1;
    }
    CHECKF(full >= 3 && bad == 0, "%s: %d epochs seen, %d examples missing or repeated", packed ? "packed" : "padded",
           full, bad);
    /* and consecutive epochs are shuffled differently */
    CHECK(full < 2 || memcmp(seq.v, seq.v + n, (size_t)n * sizeof(int)) != 0);
    al_ints_free(&seq);
    free_batch(&b);
    al_example_set_free(&s);
}

static void test_masks_and_eval(void)
{
    al_example_set s;
    CHECK_OK(al_example_set_init(&s, 2, true, 1));
    int ids0[] = {1, 7, 8, 9, 2}, mask0[] = {0, 0, 1, 1, 1};
    int ids1[] = {1, 5, 6}, mask1[] = {0, 1, 0};
    for (int j = 0; j < 5; j++)
        al_ints_push(&s.ids[0], ids0[j]), al_ints_push(&s.mask[0], mask0[j]);
    for (int j = 0; j < 3; j++)
        al_ints_push(&s.ids[1], ids1[j]), al_ints_push(&s.mask[1], mask1[j]);
    al_batch_source src = al_example_source(&s);
    al_batch b = alloc_batch(1, 8);
    CHECK(src.eval(src.ctx, 0, 1, 8, &b) == 4); /* 8, 9, 2 from the first; 5 from the second */
    int want_tok[8] = {1, 7, 8, 9, 1, 5, 0, 0}, want_tgt[8] = {-1, 8, 9, 2, 5, -1, -1, -1};
    int want_pos[8] = {0, 1, 2, 3, 0, 1, 0, 1}, want_seg[8] = {0, 0, 0, 0, 4, 4, 6, 6};
    CHECK(memcmp(b.tokens, want_tok, sizeof want_tok) == 0);
    CHECK(memcmp(b.targets, want_tgt, sizeof want_tgt) == 0);
    CHECK(memcmp(b.pos, want_pos, sizeof want_pos) == 0);
    CHECK(memcmp(b.seg_start, want_seg, sizeof want_seg) == 0);
    CHECK(src.eval(src.ctx, 1, 1, 8, &b) == 0); /* nothing left */
    free_batch(&b);
    al_example_set_free(&s);
}

int main(void)
{
    test_packing_equivalence();
    test_epochs(false);
    test_epochs(true);
    test_masks_and_eval();
    return test_report();
}
