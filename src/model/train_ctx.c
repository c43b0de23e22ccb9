/* Training forward and backward over a batch of B rows of T tokens.
 * Every activation the backward pass needs is kept, per layer, in one block whose size
 * al_train_ctx_bytes() computes from the config before anything is allocated. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "ops.h"
#include "ops_gpt2.h"

typedef struct layer_acts {
    float *x_in;   /* [N][D] residual stream entering the layer */
    float *ln1;    /* [N][D] */
    float *rstd1;  /* [N] */
    float *mean1;  /* [N] GPT-2's LayerNorm only */
    float *q;      /* [N][qd], after rope */
    float *k;      /* [N][kvd], after rope */
    float *v;      /* [N][kvd] */
    float *att;    /* [B][H][T][T] */
    float *atty;   /* [N][qd] */
    float *x_mid;  /* [N][D] */
    float *ln2;    /* [N][D] */
    float *rstd2;  /* [N] */
    float *mean2;  /* [N] GPT-2 */
    float *h1;     /* [N][hidden] gate pre-activation (GPT-2: c_fc output, before GELU) */
    float *h3;     /* [N][hidden] up (Llama only) */
    float *hh;     /* [N][hidden] silu(h1) * h3 (GPT-2: gelu(h1)) */
    float *lora_u[AL_LORA_N_TARGETS]; /* [N][rank] A dropout(x) per adapted projection */
} layer_acts;

struct al_train_ctx {
    const al_model *model;
    int B, T, N;
    float *block; /* the single allocation */
    size_t capacity; /* its bytes (al_train_ctx_reshape reuses it when the new shape fits) */
    layer_acts *layers;
    float *x_final, *lnf, *rstdf, *meanf, *logits, *lse, *logp;
    float *rope_cos, *rope_sin;
    /* backward scratch */
    float *d_resid, *d_ln, *d_q, *d_k, *d_v, *d_atty, *d_h1, *d_h3, *d_hh;
    float *att_scratch; /* per-thread transposed keys/values for the attention kernels */
    int threads;
    /* inputs of the last forward, needed by backward */
    int *tokens, *targets, *pos, *seg_start;
    bool has_seg;
    /* LoRA: the adapters this context was planned for (has_plan), their scratch, and
     * the state of the last forward */
    bool has_plan;
    al_lora_config plan;
    float *lora_xd, *lora_du, *dw_junk; /* [N][max in] (dropout only), [N][rank], [max(D)] */
    bool lora_active;                   /* adapters applied in the last forward */
    bool frozen;                        /* adapters attached: no base gradients */
    float drop_p;                       /* dropout applied in the last forward (0: none) */
    uint64_t mask_seed;                 /* its masks' seed */
    float inv_temp; /* logits are scaled by it before the log-softmax (1: none) */
    /* exact mode (al_train_ctx_set_exact): the weights transposed at every forward */
    bool exact;
    float *wt_block, *lora_block, *lora_z;
    al_params wt;
    al_lora_adapter *lora_t;
    al_weight_type wtype; /* al_train_ctx_set_weights: the copy is rounded to this type */
};

/* The input and output widths of target t (AL_LORA_* bit position). */
static void lora_dims(const al_config *c, int t, int *in, int *out)
{
    const int D = c->dim, Hd = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    static const int ins[AL_LORA_N_TARGETS] = {0, 0, 0, 1, 0, 0, 2}; /* 0: D, 1: qd, 2: Hd */
    static const int outs[AL_LORA_N_TARGETS] = {1, 3, 3, 0, 2, 2, 0}; /* 3: kvd */
    const int w[4] = {D, qd, Hd, kvd};
    *in = w[ins[t]];
    *out = w[outs[t]];
}

/* One walker computes both the size and the pointers, so they cannot disagree. */
static size_t carve(struct al_train_ctx *ctx, const al_config *c, const al_lora_config *lc, int B, int T,
                    int threads, float *base)
{
    const size_t N = (size_t)B * T, D = (size_t)c->dim, Hd = (size_t)c->hidden_dim;
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t V = (size_t)c->vocab_size, half = (size_t)c->head_dim / 2;
    const size_t att = (size_t)B * c->n_heads * T * T;
    const bool gpt2 = c->arch == AL_ARCH_GPT2;
    const size_t gN = gpt2 ? N : 0, lN = gpt2 ? 0 : N; /* rows of GPT-2-only and Llama-only arrays */
    size_t off = 0;
#define TAKE(ptr, count)                                                                               \
    do {                                                                                               \
        if (base)                                                                                      \
            (ptr) = base + off;                                                                        \
        off += ((size_t)(count) + 15) & ~(size_t)15; /* keep every array 64-byte aligned */           \
    } while (0)
    float *dummy;
    for (int l = 0; l < c->n_layers; l++) {
        layer_acts *a = base ? &ctx->layers[l] : NULL;
#define LT(field, count) TAKE(*(a ? &a->field : &dummy), count)
        LT(x_in, N * D);
        LT(ln1, N * D);
        LT(rstd1, N);
        LT(mean1, gN);
        LT(q, N * qd);
        LT(k, N * kvd);
        LT(v, N * kvd);
        LT(att, att);
        LT(atty, N * qd);
        LT(x_mid, N * D);
        LT(ln2, N * D);
        LT(rstd2, N);
        LT(mean2, gN);
        LT(h1, N * Hd);
        LT(h3, lN * Hd);
        LT(hh, N * Hd);
        for (int t = 0; lc && t < AL_LORA_N_TARGETS; t++)
            if (lc->targets & (1u << t))
                LT(lora_u[t], N * (size_t)lc->rank);
#undef LT
    }
#define CT(field, count) TAKE(*(base ? &ctx->field : &dummy), count)
    CT(x_final, N * D);
    CT(lnf, N * D);
    CT(rstdf, N);
    CT(meanf, gN);
    CT(logits, N * V);
    CT(lse, N);
    CT(logp, N);
    CT(rope_cos, (gpt2 ? 0 : (size_t)c->seq_len) * half);
    CT(rope_sin, (gpt2 ? 0 : (size_t)c->seq_len) * half);
    CT(d_resid, N * D);
    CT(d_ln, N * D);
    CT(d_q, N * qd);
    CT(d_k, N * kvd);
    CT(d_v, N * kvd);
    CT(d_atty, N * qd);
    CT(d_h1, N * Hd);
    CT(d_h3, lN * Hd);
    CT(d_hh, N * Hd);
    CT(att_scratch, op_attention_scratch_floats(T, c->head_dim, threads));
    if (lc) {
        size_t max_in = 0;
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            int in, out;
            lora_dims(c, t, &in, &out);
            if ((lc->targets & (1u << t)) && (size_t)in > max_in)
                max_in = (size_t)in;
        }
        if (lc->dropout > 0)
            CT(lora_xd, N * max_in);
        CT(lora_du, N * (size_t)lc->rank);
        CT(dw_junk, D);
    }
#undef CT
#undef TAKE
    (void)dummy;
    return off * sizeof(float) + 4 * N * sizeof(int);
}

size_t al_train_ctx_bytes(const al_config *c, int B, int T)
{
    return carve(NULL, c, NULL, B, T, omp_get_max_threads(), NULL);
}

size_t al_train_ctx_model_bytes(const al_model *m, int B, int T)
{
    return carve(NULL, &m->cfg, m->lora ? &m->lora->c : NULL, B, T, omp_get_max_threads(), NULL);
}

/* Carves the block for B x T (allocating a larger one when it does not fit) and resets
 * it to what a new context holds: zeros and the rotary tables. */
static int lay_out(al_train_ctx *ctx, int B, int T)
{
    const al_config *c = &ctx->model->cfg;
    const al_lora_config *lc = ctx->has_plan ? &ctx->plan : NULL;
    int threads = omp_get_max_threads();
    size_t bytes = carve(NULL, c, lc, B, T, threads, NULL);
    if (bytes > ctx->capacity) {
        float *block = al_alloc(bytes);
        if (!block)
            return -1;
        al_free(ctx->block);
        ctx->block = block, ctx->capacity = bytes;
    } else {
        memset(ctx->block, 0, bytes);
    }
    size_t float_bytes = carve(ctx, c, lc, B, T, threads, ctx->block);
    ctx->threads = threads;
    int *ints = (int *)((char *)ctx->block + float_bytes - 4 * (size_t)B * T * sizeof(int));
    ctx->tokens = ints;
    ctx->targets = ints + (size_t)B * T;
    ctx->pos = ints + 2 * (size_t)B * T;
    ctx->seg_start = ints + 3 * (size_t)B * T;
    ctx->B = B;
    ctx->T = T;
    ctx->N = B * T;
    if (c->arch == AL_ARCH_LLAMA)
        op_rope_tables(ctx->rope_cos, ctx->rope_sin, c->seq_len, c->head_dim, c->rope_theta);
    return 0;
}

static int check_shape(const al_model *m, int B, int T)
{
    if (B <= 0 || T <= 0)
        return al_fail("training context: batch (%d) and length (%d) must be positive", B, T);
    if (T > m->cfg.seq_len)
        return al_fail("training context: length %d exceeds the model's %d positions", T, m->cfg.seq_len);
    return 0;
}

al_train_ctx *al_train_ctx_new(const al_model *m, int B, int T)
{
    if (check_shape(m, B, T))
        return NULL;
    al_train_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        al_fail("out of memory");
        return NULL;
    }
    ctx->layers = calloc((size_t)m->cfg.n_layers, sizeof *ctx->layers);
    const al_lora_config *lc = m->lora ? &m->lora->c : NULL;
    if (lc) {
        ctx->has_plan = true;
        ctx->plan = *lc;
    }
    ctx->model = m;
    ctx->inv_temp = 1.0f;
    if (!ctx->layers || lay_out(ctx, B, T)) {
        if (ctx->layers)
            al_fail("out of memory");
        free(ctx->layers);
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void drop_exact(al_train_ctx *ctx)
{
    al_free(ctx->wt_block);
    al_free(ctx->lora_block);
    al_free(ctx->lora_z);
    free(ctx->lora_t);
    ctx->wt_block = ctx->lora_block = ctx->lora_z = NULL;
    ctx->lora_t = NULL;
    ctx->exact = false;
}

int al_train_ctx_set_exact(al_train_ctx *ctx, bool on)
{
    drop_exact(ctx);
    if (!on) {
        ctx->wtype = AL_W_F32;
        return 0;
    }
    const al_model *m = ctx->model;
    if (m->cfg.arch == AL_ARCH_GPT2)
        return al_fail("training context: exact mode on the GPT-2 layout is not supported yet");
    const al_lora *lo = m->lora;
    ctx->wt_block = al_alloc(op_transposed_model_floats(m) * sizeof(float));
    if (!ctx->wt_block)
        return -1;
    if (lo) {
        ctx->lora_block = al_alloc(op_lora_transposed_floats(lo) * sizeof(float));
        ctx->lora_z = al_alloc((size_t)ctx->N * op_lora_max_out(lo) * sizeof(float));
        ctx->lora_t = calloc((size_t)lo->n_layers * AL_LORA_N_TARGETS, sizeof *ctx->lora_t);
        if (!ctx->lora_block || !ctx->lora_z || !ctx->lora_t) {
            drop_exact(ctx);
            return al_fail("out of memory");
        }
    }
    ctx->exact = true;
    return 0;
}

int al_train_ctx_set_weights(al_train_ctx *ctx, al_weight_type t)
{
    if (t != AL_W_F32 && t != AL_W_BF16 && t != AL_W_INT8)
        return al_fail("training context: unknown weight type %d", (int)t);
    if (!ctx->exact && t != AL_W_F32)
        return al_fail("training context: rounded weights need exact mode (al_train_ctx_set_exact)");
    ctx->wtype = t;
    return 0;
}

int al_train_ctx_reshape(al_train_ctx *ctx, int B, int T)
{
    if (check_shape(ctx->model, B, T))
        return -1;
    const int old_n = ctx->N;
    if (lay_out(ctx, B, T))
        return -1;
    const al_lora *lo = ctx->model->lora;
    if (ctx->exact && lo && ctx->N > old_n) {
        al_free(ctx->lora_z);
        if (!(ctx->lora_z = al_alloc((size_t)ctx->N * op_lora_max_out(lo) * sizeof(float)))) {
            drop_exact(ctx);
            return -1;
        }
    }
    return 0;
}

void al_train_ctx_free(al_train_ctx *ctx)
{
    if (!ctx)
        return;
    drop_exact(ctx);
    al_free(ctx->block);
    free(ctx->layers);
    free(ctx);
}

const float *al_ctx_logp(const al_train_ctx *ctx) { return ctx->logp; }
const float *al_ctx_logits(const al_train_ctx *ctx) { return ctx->logits; }

/* ---- LoRA: y += scale B (A dropout(x)) and its backward ---- */

/* out (=, or += with acc) x * mask / (1 - p): inverted dropout.  The mask of row n
 * depends only on (seed, n), so it is the same for any thread count and can be
 * regenerated in the backward pass instead of stored. */
static void dropout_rows(float *out, const float *x, int N, int cols, float p, uint64_t seed, bool acc)
{
    const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((size_t)N * cols > 65536)
    for (int n = 0; n < N; n++) {
        uint64_t st = al_mix64(seed ^ al_mix64((uint64_t)n)) | 1;
        const float *xr = x + (size_t)n * cols;
        float *o = out + (size_t)n * cols;
        for (int i = 0; i < cols; i++) {
            float v = al_xorshift_f32(&st) < p ? 0.0f : xr[i] * keep_scale;
            o[i] = acc ? o[i] + v : v;
        }
    }
}

static uint64_t mask_seed(const struct al_train_ctx *ctx, int l, int t)
{
    return al_mix64(ctx->mask_seed ^ (uint64_t)(l * AL_LORA_N_TARGETS + t + 1) * 0xD1B54A32D192ED03ull);
}

/* y[N][out] += scale * (dropout(x) A^T) B^T; keeps u = dropout(x) A^T for backward. */
static void lora_forward(struct al_train_ctx *ctx, const al_lora *lo, int l, int t, float *y, const float *x)
{
    const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
    if (!ad->A)
        return;
    const int N = ctx->N, r = lo->c.rank;
    const float *xin = x;
    if (ctx->drop_p > 0) {
        dropout_rows(ctx->lora_xd, x, N, ad->in, ctx->drop_p, mask_seed(ctx, l, t), false);
        xin = ctx->lora_xd;
    }
    float *u = ctx->layers[l].lora_u[t];
    if (ctx->exact) {
        const al_lora_adapter *at = &ctx->lora_t[(size_t)l * AL_LORA_N_TARGETS + t];
        op_lora_forward_t(y, xin, at->A, at->B, lo->scale, u, ctx->lora_z, N, ad->in, ad->out, r);
        return;
    }
    op_matmul_forward(u, xin, ad->A, NULL, N, ad->in, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, ad->out, r, lo->scale, u, r, ad->B, r, 1.0f, y, ad->out);
}

/* dx += dropout'(scale dy B A); gB += scale dy^T u; gA += (scale dy B)^T dropout(x). */
static void lora_backward(struct al_train_ctx *ctx, al_lora *lo, int l, int t, float *dx, const float *dy,
                          const float *x)
{
    const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
    if (!ad->A)
        return;
    const int N = ctx->N, r = lo->c.rank, in = ad->in, out = ad->out;
    const float *u = ctx->layers[l].lora_u[t];
    float *du = ctx->lora_du;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, out, lo->scale, dy, out, ad->B, r, 0.0f, du, r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, r, N, lo->scale, dy, out, u, r, 1.0f, ad->gB, r);
    const float *xin = x;
    if (ctx->drop_p > 0) {
        dropout_rows(ctx->lora_xd, x, N, in, ctx->drop_p, mask_seed(ctx, l, t), false);
        xin = ctx->lora_xd;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, N, 1.0f, du, r, xin, in, 1.0f, ad->gA, in);
    if (ctx->drop_p > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, r, 1.0f, du, r, ad->A, in, 0.0f, ctx->lora_xd,
                    in);
        dropout_rows(dx, ctx->lora_xd, N, in, ctx->drop_p, mask_seed(ctx, l, t), true);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, r, 1.0f, du, r, ad->A, in, 1.0f, dx, in);
    }
}

/* GPT-2's layers and final LayerNorm, from the checked inputs in ctx. */
static void forward_gpt2(al_train_ctx *ctx)
{
    const al_config *c = &ctx->model->cfg;
    const al_params *w = &ctx->model->w;
    const int N = ctx->N, T = ctx->T, D = c->dim, Hd = c->hidden_dim, L = c->n_layers;
    const int hd = c->head_dim, qd = c->n_heads * hd;
    const float eps = c->norm_eps;
    const int *seg = ctx->has_seg ? ctx->seg_start : NULL;
    op_embedding_forward(ctx->layers[0].x_in, ctx->tokens, w->tok_emb, N, D);
    op_position_forward(ctx->layers[0].x_in, w->pos_emb, ctx->pos, N, T, D);
    for (int l = 0; l < L; l++) {
        layer_acts *a = &ctx->layers[l];
        float *x_out = l + 1 < L ? ctx->layers[l + 1].x_in : ctx->x_final;
        const size_t lD = (size_t)l * D;
        op_layernorm_forward(a->ln1, a->mean1, a->rstd1, a->x_in, w->rms_att + lD, w->bln_att + lD, N, D, eps);
        op_matmul_forward(a->q, a->ln1, w->wq + (size_t)l * qd * D, w->bq + (size_t)l * qd, N, D, qd);
        op_matmul_forward(a->k, a->ln1, w->wk + (size_t)l * qd * D, w->bk + (size_t)l * qd, N, D, qd);
        op_matmul_forward(a->v, a->ln1, w->wv + (size_t)l * qd * D, w->bv + (size_t)l * qd, N, D, qd);
        op_attention_forward(a->atty, a->att, a->q, a->k, a->v, seg, ctx->B, T, c->n_heads, c->n_kv_heads, hd,
                             ctx->att_scratch, ctx->threads);
        op_matmul_forward(a->x_mid, a->atty, w->wo + (size_t)l * D * qd, w->bo + lD, N, qd, D);
        for (size_t i = 0; i < (size_t)N * D; i++)
            a->x_mid[i] += a->x_in[i];
        op_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->x_mid, w->rms_ffn + lD, w->bln_ffn + lD, N, D, eps);
        op_matmul_forward(a->h1, a->ln2, w->w1 + (size_t)l * Hd * D, w->b1 + (size_t)l * Hd, N, D, Hd);
        op_gelu_forward(a->hh, a->h1, (size_t)N * Hd);
        op_matmul_forward(x_out, a->hh, w->w2 + (size_t)l * D * Hd, w->b2 + lD, N, Hd, D);
        for (size_t i = 0; i < (size_t)N * D; i++)
            x_out[i] += a->x_mid[i];
    }
    op_layernorm_forward(ctx->lnf, ctx->meanf, ctx->rstdf, ctx->x_final, w->rms_final, w->bln_final, N, D, eps);
}

/* Everything up to and including the final norm: ctx->lnf holds the hidden states. */
static int forward_trunk(al_train_ctx *ctx, const int *tokens, const int *targets, const int *pos,
                         const int *seg_start)
{
    const al_model *m = ctx->model;
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    const int N = ctx->N, T = ctx->T, D = c->dim, Hd = c->hidden_dim, L = c->n_layers;
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;

    for (int n = 0; n < N; n++) {
        int t = n % T;
        if (tokens[n] < 0 || tokens[n] >= c->vocab_size)
            return al_fail("forward: token %d at row %d position %d is outside the vocabulary (%d)", tokens[n],
                           n / T, t, c->vocab_size);
        if (targets && targets[n] >= c->vocab_size)
            return al_fail("forward: target %d at row %d position %d is outside the vocabulary", targets[n],
                           n / T, t);
        int p = pos ? pos[n] : t;
        if (p < 0 || p >= c->seq_len)
            return al_fail("forward: position %d at row %d is outside [0, %d)", p, n / T, c->seq_len);
        int s0 = seg_start ? seg_start[n] : 0;
        if (s0 < 0 || s0 > t)
            return al_fail("forward: segment start %d at row %d position %d must be in [0, %d]", s0, n / T, t, t);
        ctx->tokens[n] = tokens[n];
        ctx->targets[n] = targets ? targets[n] : -1;
        ctx->pos[n] = p;
        ctx->seg_start[n] = s0;
    }
    ctx->has_seg = seg_start != NULL;
    const int *seg = ctx->has_seg ? ctx->seg_start : NULL;

    /* LoRA: which adapters apply, with which dropout masks */
    al_lora *lo = m->lora;
    if (lo && !(ctx->has_plan && lo->n_layers == L && lo->c.rank == ctx->plan.rank &&
                (lo->c.targets & ~ctx->plan.targets) == 0 && (lo->c.dropout <= 0 || ctx->plan.dropout > 0)))
        return al_fail("forward: the model's LoRA adapters do not match the training context's plan (attach them "
                       "before al_train_ctx_new)");
    if (lo && c->arch == AL_ARCH_GPT2)
        return al_fail("forward: LoRA adapters on the GPT-2 layout are not supported yet");
    if (ctx->exact && c->arch == AL_ARCH_GPT2)
        return al_fail("forward: exact mode on the GPT-2 layout is not supported yet");
    ctx->frozen = lo != NULL;
    ctx->lora_active = lo && lo->enabled;
    ctx->drop_p = 0;
    if (ctx->lora_active && lo->train && lo->c.dropout > 0) {
        ctx->drop_p = lo->c.dropout;
        ctx->mask_seed = al_mix64(lo->c.seed ^ al_mix64(lo->dropout_step++));
    }
    if (!ctx->lora_active)
        lo = NULL;
    if (c->arch == AL_ARCH_GPT2) {
        forward_gpt2(ctx);
        return 0;
    }

    const al_params *wt = NULL;
    if (ctx->exact) {
        if (lo && !ctx->lora_t)
            return al_fail("forward: LoRA adapters were attached after al_train_ctx_set_exact");
        op_transpose_model_as(&ctx->wt, ctx->wt_block, m, ctx->wtype); /* rounded as the decoder stores them */
        if (lo)
            op_lora_transpose(ctx->lora_t, ctx->lora_block, lo);
        wt = &ctx->wt;
    }
/* The product with layer l's matrix KIND: transposed in exact mode, sgemm otherwise. */
#define MM(out, x, KIND, ROWS, COLS, bias)                                                                         \
    (wt ? op_matmul_forward_t(out, x, wt->KIND + (size_t)l * op_transposed_floats(ROWS, COLS), bias, N, COLS, ROWS) \
        : op_matmul_forward(out, x, w->KIND + (size_t)l * (ROWS) * (COLS), bias, N, COLS, ROWS))
    op_embedding_forward(ctx->layers[0].x_in, ctx->tokens, w->tok_emb, N, D);
    for (int l = 0; l < L; l++) {
        layer_acts *a = &ctx->layers[l];
        float *x_out = l + 1 < L ? ctx->layers[l + 1].x_in : ctx->x_final;
        op_rmsnorm_forward(a->ln1, a->rstd1, a->x_in, w->rms_att + (size_t)l * D, N, D, c->norm_eps);
        MM(a->q, a->ln1, wq, qd, D, w->bq ? w->bq + (size_t)l * qd : NULL);
        MM(a->k, a->ln1, wk, kvd, D, w->bk ? w->bk + (size_t)l * kvd : NULL);
        MM(a->v, a->ln1, wv, kvd, D, w->bv ? w->bv + (size_t)l * kvd : NULL);
        if (lo) {
            lora_forward(ctx, lo, l, 0, a->q, a->ln1);
            lora_forward(ctx, lo, l, 1, a->k, a->ln1);
            lora_forward(ctx, lo, l, 2, a->v, a->ln1);
        }
        op_rope_forward(a->q, ctx->pos, N, c->n_heads, hd, ctx->rope_cos, ctx->rope_sin, c->rope);
        op_rope_forward(a->k, ctx->pos, N, c->n_kv_heads, hd, ctx->rope_cos, ctx->rope_sin, c->rope);
        (wt ? op_attention_forward_exact : op_attention_forward)(a->atty, a->att, a->q, a->k, a->v, seg, ctx->B, T,
                                                                 c->n_heads, c->n_kv_heads, hd, ctx->att_scratch,
                                                                 ctx->threads);
        MM(a->x_mid, a->atty, wo, D, qd, NULL);
        if (lo)
            lora_forward(ctx, lo, l, 3, a->x_mid, a->atty);
        for (size_t i = 0; i < (size_t)N * D; i++)
            a->x_mid[i] += a->x_in[i];
        op_rmsnorm_forward(a->ln2, a->rstd2, a->x_mid, w->rms_ffn + (size_t)l * D, N, D, c->norm_eps);
        MM(a->h1, a->ln2, w1, Hd, D, NULL);
        MM(a->h3, a->ln2, w3, Hd, D, NULL);
        if (lo) {
            lora_forward(ctx, lo, l, 4, a->h1, a->ln2);
            lora_forward(ctx, lo, l, 5, a->h3, a->ln2);
        }
        op_swiglu_forward(a->hh, a->h1, a->h3, (size_t)N * Hd);
        MM(x_out, a->hh, w2, D, Hd, NULL);
        if (lo)
            lora_forward(ctx, lo, l, 6, x_out, a->hh);
        for (size_t i = 0; i < (size_t)N * D; i++)
            x_out[i] += a->x_mid[i];
    }
#undef MM
    op_rmsnorm_forward(ctx->lnf, ctx->rstdf, ctx->x_final, w->rms_final, N, D, c->norm_eps);
    return 0;
}

int al_forward(al_train_ctx *ctx, const int *tokens, const int *targets, const int *pos, const int *seg_start)
{
    if (forward_trunk(ctx, tokens, targets, pos, seg_start))
        return -1;
    const al_config *c = &ctx->model->cfg;
    if (ctx->exact)
        op_matmul_forward_t(ctx->logits, ctx->lnf, ctx->wt.wcls, NULL, ctx->N, c->dim, c->vocab_size);
    else
        op_matmul_forward(ctx->logits, ctx->lnf, ctx->model->w.wcls, NULL, ctx->N, c->dim, c->vocab_size);
    if (ctx->inv_temp != 1.0f)
        for (size_t i = 0; i < (size_t)ctx->N * c->vocab_size; i++)
            ctx->logits[i] *= ctx->inv_temp;
    op_logprob_forward(ctx->logp, ctx->lse, ctx->logits, ctx->targets, ctx->N, c->vocab_size);
    return 0;
}

int al_train_ctx_set_temperature(al_train_ctx *ctx, float temperature)
{
    if (!(temperature > 0) || !isfinite(temperature))
        return al_fail("training context: temperature must be positive, got %g", (double)temperature);
    ctx->inv_temp = 1.0f / temperature;
    return 0;
}

float al_logprob(const float *logits, int V, float temperature, int token, float *scratch)
{
    const float inv = 1.0f / temperature;
    const float *row = logits;
    if (inv != 1.0f) {
        for (int i = 0; i < V; i++)
            scratch[i] = logits[i] * inv;
        row = scratch;
    }
    float logp, lse;
    op_logprob_forward(&logp, &lse, row, &token, 1, V);
    return logp;
}

/* The log-partition of one row of logits, as the training forward computes it. */
static float row_log_partition(const float *x, int V)
{
    const int no_target = -1;
    float logp, lse;
    op_logprob_forward(&logp, &lse, x, &no_target, 1, V);
    return lse;
}

void al_softmax_entropy_kl(const float *p, const float *r, int V, double *entropy, double *kl)
{
    const float lzp = row_log_partition(p, V), lzr = r == p ? lzp : row_log_partition(r, V);
    float h = 0.0f, k = 0.0f;
#pragma omp simd reduction(+ : h, k)
    for (int v = 0; v < V; v++) {
        float lp = p[v] - lzp, q = op_exp_nonpositive(lp);
        h -= q * lp;
        k += q * (lp - (r[v] - lzr));
    }
    *entropy = h, *kl = k;
}

int al_forward_hidden(al_train_ctx *ctx, const int *tokens, const int *pos, const int *seg_start)
{
    return forward_trunk(ctx, tokens, NULL, pos, seg_start);
}

const float *al_ctx_hidden(const al_train_ctx *ctx) { return ctx->lnf; }

float al_ctx_mean_nll(const al_train_ctx *ctx, const int *targets)
{
    double s = 0;
    int n = 0;
    for (int i = 0; i < ctx->N; i++) {
        if (targets[i] >= 0) {
            s -= ctx->logp[i];
            n++;
        }
    }
    return n ? (float)(s / n) : 0.0f;
}

/* A cleared sink for the norm-weight gradients a frozen base does not keep
 * (op_rmsnorm_backward always writes one). */
static float *rms_junk(struct al_train_ctx *ctx, int D)
{
    memset(ctx->dw_junk, 0, (size_t)D * sizeof(float));
    return ctx->dw_junk;
}

/* Walks the layers in reverse; d_resid carries dloss/d(residual stream). The logits
 * buffer is reused for their gradient, so al_ctx_logits() is invalid afterwards.
 * With LoRA adapters attached (at the last forward) the base is frozen: only dx flows
 * through its weights, and only the adapters' gradients accumulate (into lora->grads). */
/* gradient destinations: NULL (not computed) for a frozen base */
#define GW(field, off) (frozen ? NULL : g->field + (off))
#define GB(field, off) (frozen || !g->field ? NULL : g->field + (off))
#define GN(field, off) (frozen ? rms_junk(ctx, D) : g->field + (off))

/* GPT-2: from dloss/d(final LayerNorm output) in ctx->d_ln back to the embeddings. */
static void backward_gpt2(al_train_ctx *ctx, al_model *m)
{
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    al_params *g = &m->g;
    const int N = ctx->N, T = ctx->T, D = c->dim, Hd = c->hidden_dim, L = c->n_layers;
    const int hd = c->head_dim, qd = c->n_heads * hd;
    const int *seg = ctx->has_seg ? ctx->seg_start : NULL;
    memset(ctx->d_resid, 0, (size_t)N * D * sizeof(float));
    op_layernorm_backward(ctx->d_resid, g->rms_final, g->bln_final, ctx->d_ln, ctx->x_final, ctx->meanf, ctx->rstdf,
                          w->rms_final, N, D);
    for (int l = L - 1; l >= 0; l--) {
        layer_acts *a = &ctx->layers[l];
        const size_t lD = (size_t)l * D;
        /* MLP: x_out = x_mid + W2 gelu(W1 ln2 + b1) + b2 */
        op_matmul_backward(ctx->d_hh, g->w2 + (size_t)l * D * Hd, g->b2 + lD, ctx->d_resid, a->hh,
                           w->w2 + (size_t)l * D * Hd, N, Hd, D, 0);
        memset(ctx->d_h1, 0, (size_t)N * Hd * sizeof(float));
        op_gelu_backward(ctx->d_h1, ctx->d_hh, a->h1, (size_t)N * Hd);
        op_matmul_backward(ctx->d_ln, g->w1 + (size_t)l * Hd * D, g->b1 + (size_t)l * Hd, ctx->d_h1, a->ln2,
                           w->w1 + (size_t)l * Hd * D, N, D, Hd, 0);
        op_layernorm_backward(ctx->d_resid, g->rms_ffn + lD, g->bln_ffn + lD, ctx->d_ln, a->x_mid, a->mean2, a->rstd2,
                              w->rms_ffn + lD, N, D);
        /* attention: x_mid = x_in + Wo attn(Wq ln1 + bq, Wk ln1 + bk, Wv ln1 + bv) + bo */
        op_matmul_backward(ctx->d_atty, g->wo + (size_t)l * D * qd, g->bo + lD, ctx->d_resid, a->atty,
                           w->wo + (size_t)l * D * qd, N, qd, D, 0);
        op_attention_backward(ctx->d_q, ctx->d_k, ctx->d_v, ctx->d_atty, a->att, a->q, a->k, a->v, seg, ctx->B, T,
                              c->n_heads, c->n_kv_heads, hd, ctx->att_scratch, ctx->threads);
        op_matmul_backward(ctx->d_ln, g->wq + (size_t)l * qd * D, g->bq + (size_t)l * qd, ctx->d_q, a->ln1,
                           w->wq + (size_t)l * qd * D, N, D, qd, 0);
        op_matmul_backward(ctx->d_ln, g->wk + (size_t)l * qd * D, g->bk + (size_t)l * qd, ctx->d_k, a->ln1,
                           w->wk + (size_t)l * qd * D, N, D, qd, 1);
        op_matmul_backward(ctx->d_ln, g->wv + (size_t)l * qd * D, g->bv + (size_t)l * qd, ctx->d_v, a->ln1,
                           w->wv + (size_t)l * qd * D, N, D, qd, 1);
        op_layernorm_backward(ctx->d_resid, g->rms_att + lD, g->bln_att + lD, ctx->d_ln, a->x_in, a->mean1, a->rstd1,
                              w->rms_att + lD, N, D);
    }
    op_embedding_backward(g->tok_emb, ctx->d_resid, ctx->tokens, N, D);
    op_position_backward(g->pos_emb, ctx->d_resid, ctx->pos, N, T, D);
}

/* From dloss/d(final hidden states) in ctx->d_ln back to the embeddings. */
static void backward_trunk(al_train_ctx *ctx, al_model *m)
{
    if (m->cfg.arch == AL_ARCH_GPT2) {
        backward_gpt2(ctx, m);
        return;
    }
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    al_params *g = &m->g;
    const int N = ctx->N, T = ctx->T, D = c->dim, Hd = c->hidden_dim, L = c->n_layers;
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int *seg = ctx->has_seg ? ctx->seg_start : NULL;
    const bool frozen = ctx->frozen;
    al_lora *lo = ctx->lora_active ? m->lora : NULL;
    memset(ctx->d_resid, 0, (size_t)N * D * sizeof(float));
    op_rmsnorm_backward(ctx->d_resid, GN(rms_final, 0), ctx->d_ln, ctx->x_final, w->rms_final, ctx->rstdf, N, D);

    for (int l = L - 1; l >= 0; l--) {
        layer_acts *a = &ctx->layers[l];
        /* MLP: x_out = x_mid + W2 (silu(W1 ln2) * W3 ln2) */
        op_matmul_backward(ctx->d_hh, GW(w2, (size_t)l * D * Hd), NULL, ctx->d_resid, a->hh,
                           w->w2 + (size_t)l * D * Hd, N, Hd, D, 0);
        if (lo)
            lora_backward(ctx, lo, l, 6, ctx->d_hh, ctx->d_resid, a->hh);
        op_swiglu_backward(ctx->d_h1, ctx->d_h3, ctx->d_hh, a->h1, a->h3, (size_t)N * Hd);
        op_matmul_backward(ctx->d_ln, GW(w1, (size_t)l * Hd * D), NULL, ctx->d_h1, a->ln2, w->w1 + (size_t)l * Hd * D,
                           N, D, Hd, 0);
        op_matmul_backward(ctx->d_ln, GW(w3, (size_t)l * Hd * D), NULL, ctx->d_h3, a->ln2, w->w3 + (size_t)l * Hd * D,
                           N, D, Hd, 1);
        if (lo) {
            lora_backward(ctx, lo, l, 4, ctx->d_ln, ctx->d_h1, a->ln2);
            lora_backward(ctx, lo, l, 5, ctx->d_ln, ctx->d_h3, a->ln2);
        }
        op_rmsnorm_backward(ctx->d_resid, GN(rms_ffn, (size_t)l * D), ctx->d_ln, a->x_mid, w->rms_ffn + (size_t)l * D,
                            a->rstd2, N, D);
        /* attention: x_mid = x_in + Wo attn(rope(Wq ln1), rope(Wk ln1), Wv ln1) */
        op_matmul_backward(ctx->d_atty, GW(wo, (size_t)l * D * qd), NULL, ctx->d_resid, a->atty,
                           w->wo + (size_t)l * D * qd, N, qd, D, 0);
        if (lo)
            lora_backward(ctx, lo, l, 3, ctx->d_atty, ctx->d_resid, a->atty);
        op_attention_backward(ctx->d_q, ctx->d_k, ctx->d_v, ctx->d_atty, a->att, a->q, a->k, a->v, seg, ctx->B, T,
                              c->n_heads, c->n_kv_heads, hd, ctx->att_scratch, ctx->threads);
        op_rope_backward(ctx->d_q, ctx->pos, N, c->n_heads, hd, ctx->rope_cos, ctx->rope_sin, c->rope);
        op_rope_backward(ctx->d_k, ctx->pos, N, c->n_kv_heads, hd, ctx->rope_cos, ctx->rope_sin, c->rope);
        op_matmul_backward(ctx->d_ln, GW(wq, (size_t)l * qd * D), GB(bq, (size_t)l * qd), ctx->d_q, a->ln1,
                           w->wq + (size_t)l * qd * D, N, D, qd, 0);
        op_matmul_backward(ctx->d_ln, GW(wk, (size_t)l * kvd * D), GB(bk, (size_t)l * kvd), ctx->d_k, a->ln1,
                           w->wk + (size_t)l * kvd * D, N, D, kvd, 1);
        op_matmul_backward(ctx->d_ln, GW(wv, (size_t)l * kvd * D), GB(bv, (size_t)l * kvd), ctx->d_v, a->ln1,
                           w->wv + (size_t)l * kvd * D, N, D, kvd, 1);
        if (lo) {
            lora_backward(ctx, lo, l, 0, ctx->d_ln, ctx->d_q, a->ln1);
            lora_backward(ctx, lo, l, 1, ctx->d_ln, ctx->d_k, a->ln1);
            lora_backward(ctx, lo, l, 2, ctx->d_ln, ctx->d_v, a->ln1);
        }
        op_rmsnorm_backward(ctx->d_resid, GN(rms_att, (size_t)l * D), ctx->d_ln, a->x_in, w->rms_att + (size_t)l * D,
                            a->rstd1, N, D);
    }
    if (!frozen)
        op_embedding_backward(g->tok_emb, ctx->d_resid, ctx->tokens, N, D);
}

void al_backward(al_train_ctx *ctx, al_model *m, const float *dlogp)
{
    const al_config *c = &m->cfg;
    al_params *g = &m->g;
    const int N = ctx->N, D = c->dim, V = c->vocab_size;
    const bool frozen = ctx->frozen;
    float *dlogits = ctx->logits;
    op_logprob_backward(dlogits, ctx->logits, ctx->lse, ctx->targets, dlogp, N, V);
    if (ctx->inv_temp != 1.0f)
        for (size_t i = 0; i < (size_t)N * V; i++)
            dlogits[i] *= ctx->inv_temp;
    op_matmul_backward(ctx->d_ln, GW(wcls, 0), NULL, dlogits, ctx->lnf, m->w.wcls, N, D, V, 0);
    backward_trunk(ctx, m);
}

void al_backward_hidden(al_train_ctx *ctx, al_model *m, const float *d_hidden)
{
    memcpy(ctx->d_ln, d_hidden, (size_t)ctx->N * m->cfg.dim * sizeof(float));
    backward_trunk(ctx, m);
}
#undef GW
#undef GB
#undef GN
