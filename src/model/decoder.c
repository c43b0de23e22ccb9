/* Incremental decoding with a KV cache for many independent sequences at once.
 * Each step advances every listed sequence by one token; the matrix products see all
 * of them as one batch, which is what makes sampling many rollouts cheap. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "ops.h"
#include "ops_gpt2.h"

struct al_decoder {
    const al_model *model;
    int n_seq, max_len;
    int n_rows; /* scratch rows: n_seq, or more so a prefill reads a prompt in large batches */
    int stride; /* max_len rounded up to whole attention chunks */
    float *block;
    /* [L][n_seq][kv_heads][stride / 16][head_dim][16]: tiles of 16 positions, each holding
     * every dimension, so the loops run along positions and vectorize even for tiny
     * head_dim while a head's cache is one contiguous run for the prefetcher. */
    float *k_cache, *v_cache; /* of floats, or of IEEE halves (kv == AL_KV_F16) */
    al_kv_type kv;
    int *pos;                 /* next position of each sequence */
    float *x, *xb, *q, *k, *v, *atty, *h1, *h3, *scores, *logits; /* per-step rows, n_rows of each */
    float *rope_cos, *rope_sin;
    int *step_pos, *step_seq;
    /* Small models only: every matrix transposed to [in][out] (rows padded to 16), so
     * a matrix-vector product is a run of vertical multiply-adds with no horizontal sums. */
    float *wt_block;
    al_params wt;
    /* Exact mode: every product through sgemm and attention through training's row
     * kernels, so a step's logits equal al_forward's for the same tokens bit for bit;
     * attached LoRA adapters are applied as training applies them. */
    bool exact;
    float *lora_block;          /* the adapters transposed (exact mode) */
    al_lora_adapter *lora_t;    /* their views, A [in][pad16(rank)], B [rank][pad16(out)] */
    float *lora_u, *lora_z;     /* [n_rows][rank], [n_rows][lora_zw] scratch */
    int lora_zw;
    /* al_decoder_set_weights: the matrices packed as bf16 or int8 instead of wt_block, for
     * any model size (a large model then streams a half or a quarter of the float bytes) */
    al_weight_type wtype;
    void *pk_block;
    op_wpack pk;
};

/* Decoding layouts worth a second copy of the weights: small models, where time goes to
 * instruction overhead rather than to streaming weights from memory. */
#define TRANSPOSED_MAX_PARAMS (8u << 20)

/* (Re)fills the transposed copies from the model's weights, allocating them once. */
static int build_transposed(al_decoder *d)
{
    if (d->wtype != AL_W_F32) {
        if (!d->pk_block)
            d->pk_block = al_alloc(op_packed_model_bytes(d->model, d->wtype));
        if (!d->pk_block)
            return -1;
        op_pack_model(&d->pk, d->pk_block, d->model, d->wtype);
        return 0;
    }
    if (!d->wt_block)
        d->wt_block = al_alloc(op_transposed_model_floats(d->model) * sizeof(float));
    if (!d->wt_block)
        return -1;
    op_transpose_model(&d->wt, d->wt_block, d->model);
    return 0;
}

/* The decoder's matrix product: packed or transposed weights when it has them, else the
 * shared op. */
static void dec_matmul(const al_decoder *d, float *out, const float *x, const float *W, const void *Wt,
                       const float *bias, int N, int n_in, int n_out)
{
    if (Wt && d->pk_block)
        op_matmul_forward_p(out, x, Wt, d->wtype, bias, N, n_in, n_out);
    else if (Wt)
        op_matmul_forward_t(out, x, Wt, bias, N, n_in, n_out);
    else
        op_matmul_forward(out, x, W, bias, N, n_in, n_out);
}

/* Rows a prefill takes at once when the decoder has fewer sequences: enough for sgemm to
 * run near its peak, few enough that the scratch stays small next to the cache. */
#define PREFILL_ROWS 64

static int scratch_rows(int n_seq, int max_len)
{
    const int want = max_len < PREFILL_ROWS ? max_len : PREFILL_ROWS;
    return n_seq > want ? n_seq : want;
}

/* S sequences in the cache, R scratch rows */
static size_t carve(struct al_decoder *d, const al_config *c, int S, int R, int Tm, al_kv_type kv, float *base)
{
    const size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t stride = ((size_t)Tm + 31) / 32 * 32;
    const size_t elems = (size_t)c->n_layers * S * kvd * stride;
    const size_t cache = kv == AL_KV_F16 ? (elems + 1) / 2 : elems; /* in floats */
    size_t off = 0;
    float *dummy;
#define TAKE(field, count)                                                                            \
    do {                                                                                              \
        *(base ? &d->field : &dummy) = base ? base + off : NULL;                                      \
        off += ((size_t)(count) + 15) & ~(size_t)15;                                                  \
    } while (0)
    TAKE(k_cache, cache);
    TAKE(v_cache, cache);
    TAKE(x, R * D);
    TAKE(xb, R * D);
    TAKE(q, R * qd);
    TAKE(k, R * kvd);
    TAKE(v, R * kvd);
    TAKE(atty, R * qd);
    TAKE(h1, R * Hd);
    TAKE(h3, R * Hd);
    TAKE(scores, (size_t)R * c->n_heads * stride);
    TAKE(logits, (size_t)R * c->vocab_size);
    TAKE(rope_cos, (size_t)Tm * hd / 2);
    TAKE(rope_sin, (size_t)Tm * hd / 2);
#undef TAKE
    (void)dummy;
    return off * sizeof(float);
}

size_t al_decoder_bytes(const al_config *c, int n_seq, int max_len, al_kv_type kv)
{
    if (max_len > c->seq_len)
        max_len = c->seq_len;
    const int R = scratch_rows(n_seq, max_len);
    return carve(NULL, c, n_seq, R, max_len, kv, NULL) + ((size_t)n_seq + 2 * (size_t)R) * sizeof(int);
}

al_decoder *al_decoder_new(const al_model *m, int n_seq, int max_len)
{
    return al_decoder_new_kv(m, n_seq, max_len, AL_KV_F32);
}

al_decoder *al_decoder_new_kv(const al_model *m, int n_seq, int max_len, al_kv_type kv)
{
    const al_config *c = &m->cfg;
    if (n_seq <= 0 || max_len <= 0) {
        al_fail("decoder: sequences (%d) and length (%d) must be positive", n_seq, max_len);
        return NULL;
    }
    if (max_len > c->seq_len)
        max_len = c->seq_len;
    al_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        al_fail("out of memory");
        return NULL;
    }
    if (kv != AL_KV_F32 && kv != AL_KV_F16) {
        al_fail("decoder: unknown KV cache type %d", (int)kv);
        return NULL;
    }
    const int R = scratch_rows(n_seq, max_len);
    size_t fbytes = carve(NULL, c, n_seq, R, max_len, kv, NULL);
    d->block = al_alloc(fbytes + ((size_t)n_seq + 2 * (size_t)R) * sizeof(int));
    if (!d->block) {
        free(d);
        return NULL;
    }
    carve(d, c, n_seq, R, max_len, kv, d->block);
    d->n_rows = R;
    d->kv = kv;
    d->pos = (int *)((char *)d->block + fbytes);
    d->step_pos = d->pos + n_seq;
    d->step_seq = d->step_pos + R;
    d->model = m;
    d->n_seq = n_seq;
    d->max_len = max_len;
    d->stride = (max_len + 31) / 32 * 32;
    if (c->arch == AL_ARCH_LLAMA)
        op_rope_tables(d->rope_cos, d->rope_sin, max_len, c->head_dim, c->rope_theta);
    if (m->n_params <= TRANSPOSED_MAX_PARAMS && build_transposed(d)) {
        al_decoder_free(d);
        return NULL;
    }
    return d;
}

void al_decoder_free(al_decoder *d)
{
    if (!d)
        return;
    al_free(d->block);
    al_free(d->wt_block);
    al_free(d->pk_block);
    al_free(d->lora_block);
    free(d->lora_t);
    free(d->lora_u);
    free(d->lora_z);
    free(d);
}

void al_decoder_reset(al_decoder *d, int seq)
{
    if (seq < 0)
        memset(d->pos, 0, (size_t)d->n_seq * sizeof(int));
    else if (seq < d->n_seq)
        d->pos[seq] = 0;
}

int al_decoder_pos(const al_decoder *d, int seq) { return d->pos[seq]; }

static void drop_exact(al_decoder *d)
{
    al_free(d->lora_block);
    free(d->lora_t);
    free(d->lora_u);
    free(d->lora_z);
    d->lora_block = NULL, d->lora_t = NULL, d->lora_u = d->lora_z = NULL;
    d->exact = false;
}

int al_decoder_set_exact(al_decoder *d, bool on)
{
    drop_exact(d);
    if (!on)
        return 0;
    if (d->kv != AL_KV_F32)
        return al_fail("decoder: exact mode needs a float KV cache (this one holds halves)");
    if (d->model->cfg.arch == AL_ARCH_GPT2)
        return al_fail("decoder: exact mode on the GPT-2 layout is not supported yet");
    /* the weights may have changed since the decoder was made (a policy between rollouts) */
    if (build_transposed(d))
        return -1;
    const al_lora *lo = d->model->lora;
    if (lo) {
        d->lora_zw = op_lora_max_out(lo);
        d->lora_block = al_alloc(op_lora_transposed_floats(lo) * sizeof(float));
        d->lora_t = calloc((size_t)lo->n_layers * AL_LORA_N_TARGETS, sizeof *d->lora_t);
        d->lora_u = malloc((size_t)d->n_rows * lo->c.rank * sizeof(float));
        d->lora_z = malloc((size_t)d->n_rows * d->lora_zw * sizeof(float));
        if (!d->lora_block || !d->lora_t || !d->lora_u || !d->lora_z) {
            drop_exact(d);
            return al_fail("out of memory");
        }
        op_lora_transpose(d->lora_t, d->lora_block, lo);
    }
    d->exact = true;
    return 0;
}

int al_decoder_set_weights(al_decoder *d, al_weight_type t)
{
    if (t != AL_W_F32 && t != AL_W_BF16 && t != AL_W_INT8)
        return al_fail("decoder: unknown weight type %d", (int)t);
    al_free(d->pk_block);
    d->pk_block = NULL;
    d->wtype = t;
    if (t != AL_W_F32) { /* one copy at a time: the packed one replaces the float one */
        al_free(d->wt_block);
        d->wt_block = NULL;
        d->wt = (al_params){0}; /* wt.wcls must read NULL (sgemm), not the freed copy */
        return build_transposed(d);
    }
    return d->exact || d->model->n_params <= TRANSPOSED_MAX_PARAMS ? build_transposed(d) : 0;
}

int al_decoder_copy_seq(al_decoder *d, int dst, int src)
{
    if (src < 0 || src >= d->n_seq)
        return al_fail("decoder: sequence %d out of range [0, %d)", src, d->n_seq);
    return al_decoder_copy_prefix(d, dst, src, d->pos[src]);
}

/* Attention of row i (of a range starting at r0) for the query heads of kv head kh, over
 * the tiles of its sequence's cache: in exact mode through training's row kernel, else
 * through the fast one.  Either kernel's arithmetic depends on the row's numbers alone, so
 * a sequence's attention is the same whatever batch it shares. */
static inline void attend_row_head(al_decoder *d, const void *kc_layer, const void *vc_layer, float *atty,
                                   const float *q, int i, int r0, int kh)
{
    const al_config *c = &d->model->cfg;
    const int H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, qd = H * hd, group = H / KVH;
    const int Tp = d->stride, t = d->step_pos[r0 + i], h = kh * group;
    const size_t base = ((size_t)d->step_seq[r0 + i] * KVH + (size_t)kh) * (size_t)hd * Tp;
    float *o = atty + (size_t)i * qd + (size_t)h * hd, *a = d->scores + ((size_t)(r0 + i) * H + h) * Tp;
    const float *qh = q + (size_t)i * qd + (size_t)h * hd;
    if (d->kv == AL_KV_F16)
        op_attention_query_fast_half(o, a, (size_t)Tp, qh, (const uint16_t *)kc_layer + base,
                                     (const uint16_t *)vc_layer + base, t, hd, group);
    else if (d->exact)
        op_attention_query_tiled(o, a, (size_t)Tp, qh, (const float *)kc_layer + base, (const float *)vc_layer + base,
                                 t, hd, group);
    else
        op_attention_query_fast(o, a, (size_t)Tp, qh, (const float *)kc_layer + base, (const float *)vc_layer + base,
                                t, hd, group);
}

/* Exact mode with enabled adapters: y[n][out] += scale (x A^T) B^T, as training adds them. */
static void lora_add(al_decoder *d, int l, int target, float *y, const float *x, int n, int r0)
{
    const al_lora *lo = d->model->lora;
    if (!d->exact || !lo || !lo->enabled)
        return;
    const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + target];
    if (!ad->A)
        return;
    const al_lora_adapter *at = &d->lora_t[(size_t)l * AL_LORA_N_TARGETS + target];
    op_lora_forward_t(y, x, at->A, at->B, lo->scale, d->lora_u + (size_t)r0 * lo->c.rank,
                      d->lora_z + (size_t)r0 * d->lora_zw, n, ad->in, ad->out, lo->c.rank);
}

/* Layer l: writes the rows' keys and values into their sequences' cache tiles, then
 * attends each row's queries over its sequence. */
static void cache_and_attend(al_decoder *d, int l, const float *q, const float *k, const float *v, float *atty, int n,
                             int r0)
{
    const al_config *c = &d->model->cfg;
    const int KVH = c->n_kv_heads, hd = c->head_dim, kvd = KVH * hd, S = d->n_seq;
    const int *spos = d->step_pos + r0, *sseq = d->step_seq + r0;
    const int Tp = d->stride;
    const size_t head_stride = (size_t)hd * Tp;
    const size_t layer = (size_t)l * S * KVH * head_stride;
    const bool half = d->kv == AL_KV_F16;
    void *kc_layer = half ? (void *)((uint16_t *)d->k_cache + layer) : (void *)(d->k_cache + layer);
    void *vc_layer = half ? (void *)((uint16_t *)d->v_cache + layer) : (void *)(d->v_cache + layer);
    for (int i = 0; i < n; i++) {
        /* dimension j of position p: tile p / 16, row j, lane p % 16 */
        const size_t tile = (size_t)(spos[i] / OP_ATT_TILE) * OP_ATT_TILE * hd + (size_t)(spos[i] % OP_ATT_TILE);
        for (int kh = 0; kh < KVH; kh++) {
            const size_t at = ((size_t)sseq[i] * KVH + (size_t)kh) * head_stride + tile;
            const float *ki = k + (size_t)i * kvd + (size_t)kh * hd, *vi = v + (size_t)i * kvd + (size_t)kh * hd;
            if (half) {
                uint16_t *kc = (uint16_t *)kc_layer + at, *vc = (uint16_t *)vc_layer + at;
                for (int j = 0; j < hd; j++) {
                    kc[(size_t)j * OP_ATT_TILE] = op_float_to_half(ki[j]);
                    vc[(size_t)j * OP_ATT_TILE] = op_float_to_half(vi[j]);
                }
            } else {
                float *kc = (float *)kc_layer + at, *vc = (float *)vc_layer + at;
                for (int j = 0; j < hd; j++) {
                    kc[(size_t)j * OP_ATT_TILE] = ki[j];
                    vc[(size_t)j * OP_ATT_TILE] = vi[j];
                }
            }
        }
    }
    /* Entering a parallel region costs more than one row's attention; only a range
     * that runs alone (the large-model path) spreads its rows over the threads. */
    if (n > 1 && !omp_in_parallel()) {
#pragma omp parallel for collapse(2)
        for (int i = 0; i < n; i++)
            for (int kh = 0; kh < KVH; kh++)
                attend_row_head(d, kc_layer, vc_layer, atty, q, i, r0, kh);
    } else {
        for (int i = 0; i < n; i++)
            for (int kh = 0; kh < KVH; kh++)
                attend_row_head(d, kc_layer, vc_layer, atty, q, i, r0, kh);
    }
}

/* The forward pass for rows [r0, r1) of this step, tokens[0 .. r1 - r0) their inputs.
 * Rows never share scratch, so disjoint ranges can run on different threads.  Without
 * logits the classifier is skipped (a prefill). */
static void step_rows(al_decoder *d, const int *tokens, int r0, int r1, bool logits)
{
    const al_model *m = d->model;
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    const int D = c->dim, Hd = c->hidden_dim, L = c->n_layers, H = c->n_heads, KVH = c->n_kv_heads;
    const int hd = c->head_dim, qd = H * hd, kvd = KVH * hd;
    const int n = r1 - r0;
    const bool gpt2 = c->arch == AL_ARCH_GPT2;
    float *x = d->x + (size_t)r0 * D, *xb = d->xb + (size_t)r0 * D;
    float *q = d->q + (size_t)r0 * qd, *k = d->k + (size_t)r0 * kvd, *v = d->v + (size_t)r0 * kvd;
    float *atty = d->atty + (size_t)r0 * qd, *h1 = d->h1 + (size_t)r0 * Hd, *h3 = d->h3 + (size_t)r0 * Hd;
    const int *spos = d->step_pos + r0;

/* Layer l's packed or transposed copy of matrix KIND (ROWS x COLS), or NULL without copies. */
#define WT(KIND, ROWS, COLS)                                                                           \
    (d->pk_block   ? op_wpack_layer(&d->pk, OP_M_##KIND, l)                                          \
     : d->wt_block ? (const void *)(d->wt.KIND + (size_t)l * op_transposed_floats(ROWS, COLS)) : NULL)
/* Layer l's norm of x into xb: GPT-2's LayerNorm or Llama's RMSNorm, with weights KIND. */
#define NORM(KIND, BIAS, off)                                                                                 \
    (gpt2 ? op_layernorm_forward(xb, NULL, NULL, x, w->KIND + (off), w->BIAS + (off), n, D, c->norm_eps)     \
          : op_rmsnorm_forward(xb, NULL, x, w->KIND + (off), n, D, c->norm_eps))
    op_embedding_forward(x, tokens, w->tok_emb, n, D);
    if (gpt2)
        op_position_forward(x, w->pos_emb, spos, n, 1, D);
    for (int l = 0; l < L; l++) {
        const size_t lD = (size_t)l * D;
        NORM(rms_att, bln_att, lD);
        dec_matmul(d, q, xb, w->wq + (size_t)l * qd * D, WT(wq, qd, D), w->bq ? w->bq + (size_t)l * qd : NULL, n, D, qd);
        dec_matmul(d, k, xb, w->wk + (size_t)l * kvd * D, WT(wk, kvd, D), w->bk ? w->bk + (size_t)l * kvd : NULL, n, D, kvd);
        dec_matmul(d, v, xb, w->wv + (size_t)l * kvd * D, WT(wv, kvd, D), w->bv ? w->bv + (size_t)l * kvd : NULL, n, D, kvd);
        lora_add(d, l, 0, q, xb, n, r0);
        lora_add(d, l, 1, k, xb, n, r0);
        lora_add(d, l, 2, v, xb, n, r0);
        if (!gpt2) {
            op_rope_forward(q, spos, n, H, hd, d->rope_cos, d->rope_sin, c->rope);
            op_rope_forward(k, spos, n, KVH, hd, d->rope_cos, d->rope_sin, c->rope);
        }
        cache_and_attend(d, l, q, k, v, atty, n, r0);
        dec_matmul(d, xb, atty, w->wo + (size_t)l * D * qd, WT(wo, D, qd), gpt2 ? w->bo + lD : NULL, n, qd, D);
        lora_add(d, l, 3, xb, atty, n, r0);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
        NORM(rms_ffn, bln_ffn, lD);
        if (gpt2) {
            dec_matmul(d, h1, xb, w->w1 + (size_t)l * Hd * D, WT(w1, Hd, D), w->b1 + (size_t)l * Hd, n, D, Hd);
            op_gelu_forward(h1, h1, (size_t)n * Hd);
            dec_matmul(d, xb, h1, w->w2 + (size_t)l * D * Hd, WT(w2, D, Hd), w->b2 + lD, n, Hd, D);
            for (size_t i = 0; i < (size_t)n * D; i++)
                x[i] += xb[i];
            continue;
        }
        dec_matmul(d, h1, xb, w->w1 + (size_t)l * Hd * D, WT(w1, Hd, D), NULL, n, D, Hd);
        dec_matmul(d, h3, xb, w->w3 + (size_t)l * Hd * D, WT(w3, Hd, D), NULL, n, D, Hd);
        lora_add(d, l, 4, h1, xb, n, r0);
        lora_add(d, l, 5, h3, xb, n, r0);
        op_swiglu_forward(h1, h1, h3, (size_t)n * Hd);
        dec_matmul(d, xb, h1, w->w2 + (size_t)l * D * Hd, WT(w2, D, Hd), NULL, n, Hd, D);
        lora_add(d, l, 6, xb, h1, n, r0);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
    }
#undef WT
    if (!logits)
        return;
    NORM(rms_final, bln_final, 0);
#undef NORM
    dec_matmul(d, d->logits + (size_t)r0 * c->vocab_size, xb, w->wcls,
               d->pk_block ? (const void *)d->pk.m[OP_M_wcls] : d->wt.wcls, NULL, n, D, c->vocab_size);
}

/* Small models are split by sequence: each thread runs whole steps for its rows, one
 * parallel region per step and no barriers inside.  Large models keep one range and let
 * each operation (sgemm, attention) use the threads instead, so weights are streamed once. */
#define SEQUENCE_SPLIT_MAX_PARAMS (8u << 20)

/* Checks a step's sequences and tokens and places them at scratch rows [row0, row0 + n). */
static int place_rows(al_decoder *d, const int *seqs, const int *tokens, int n, int row0)
{
    const al_config *c = &d->model->cfg;
    const int S = d->n_seq, Tm = d->max_len;
    if (n <= 0 || row0 < 0 || row0 + n > S)
        return al_fail("decoder step: rows [%d, %d) requested, the decoder holds %d", row0, row0 + n, S);
    for (int i = 0; i < n; i++) {
        int s = seqs ? seqs[i] : i;
        if (s < 0 || s >= S)
            return al_fail("decoder step: sequence %d out of range [0, %d)", s, S);
        if (d->pos[s] >= Tm)
            return al_fail("decoder step: sequence %d is full (%d positions)", s, Tm);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return al_fail("decoder step: token %d outside the vocabulary (%d)", tokens[i], c->vocab_size);
        for (int j = 0; j < i && seqs; j++)
            if (seqs[j] == s)
                return al_fail("decoder step: sequence %d listed twice", s);
        d->step_seq[row0 + i] = s;
        d->step_pos[row0 + i] = d->pos[s];
    }
    const al_lora *lo = d->model->lora;
    if (d->exact && lo && !d->lora_t)
        return al_fail("decoder step: LoRA adapters were attached after al_decoder_set_exact");
    return 0;
}

/* How many threads a step of n rows splits its rows over (1: the operations use them) */
static int row_parts(const al_decoder *d, int n)
{
    int threads = omp_get_max_threads();
    if (n < 2 || threads < 2 || d->model->n_params > SEQUENCE_SPLIT_MAX_PARAMS || omp_in_parallel())
        return 1;
    return threads < n ? threads : n;
}

static int row_block(int n, int threads)
{
    int block = (n + threads - 1) / threads;
    block = (block + 3) / 4 * 4;
    return block > 16 ? 16 : block;
}

/* Block p of a step (rows [p * block, p * block + block) of n) and its rows' callbacks */
static void step_block(al_decoder *d, const int *tokens, int p, int block, int n, al_decoder_row_fn fn, void *user)
{
    const int V = d->model->cfg.vocab_size;
    const int r0 = p * block, r1 = r0 + block < n ? r0 + block : n;
    step_rows(d, tokens + r0, r0, r1, true);
    for (int i = r0; fn && i < r1; i++)
        fn(user, i, d->logits + (size_t)i * V);
}

float *al_decoder_step_each(al_decoder *d, const int *seqs, const int *tokens, int n, al_decoder_row_fn fn,
                            void *user)
{
    if (place_rows(d, seqs, tokens, n, 0))
        return NULL;
    const int V = d->model->cfg.vocab_size, threads = row_parts(d, n);
    if (threads > 1) {
        /* Each block of rows streams every weight matrix through the cache once per layer,
         * so blocks are as tall as an even split allows (up to 16 rows: 32 streams on two
         * threads take one pass over the weights each, 1.2x the aggregate of 4-row blocks
         * on stories260K), in multiples of the products' tile height (4).  With more blocks
         * than threads they are taken in turn, so a thread that runs slow does fewer; each
         * thread steps its rows and hands their logits on while they are in its cache. */
        const int block = row_block(n, threads);
        const int parts = (n + block - 1) / block;
        if (parts <= threads) {
            /* One block per thread, the same each step while the rows stay: a block's
             * cache lines (its KV cache's newest tiles, its scratch rows) stay in that
             * core's L2 (+3-6% at 512 positions against blocks taken in turn). */
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int p = 0; p < parts; p++)
                step_block(d, tokens, p, block, n, fn, user);
        } else {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
            for (int p = 0; p < parts; p++)
                step_block(d, tokens, p, block, n, fn, user);
        }
    } else {
        step_rows(d, tokens, 0, n, true);
        if (fn) {
#pragma omp parallel for schedule(static) if (n > 1 && !omp_in_parallel())
            for (int i = 0; i < n; i++)
                fn(user, i, d->logits + (size_t)i * V);
        }
    }
    for (int i = 0; i < n; i++)
        d->pos[d->step_seq[i]]++;
    return d->logits;
}

int al_kv_type_parse(const char *s, al_kv_type *t)
{
    if (s && (!strcmp(s, "f32") || !strcmp(s, "f16"))) {
        *t = !strcmp(s, "f16") ? AL_KV_F16 : AL_KV_F32;
        return 0;
    }
    return al_fail("KV cache type: expected f32 or f16, got '%s'", s ? s : "");
}

float *al_decoder_step(al_decoder *d, const int *seqs, const int *tokens, int n)
{
    return al_decoder_step_each(d, seqs, tokens, n, NULL, NULL);
}

int al_decoder_prefill(al_decoder *d, int seq, const int *tokens, int n)
{
    const al_config *c = &d->model->cfg;
    if (seq < 0 || seq >= d->n_seq)
        return al_fail("decoder prefill: sequence %d out of range [0, %d)", seq, d->n_seq);
    if (n < 0 || d->pos[seq] + n > d->max_len)
        return al_fail("decoder prefill: %d tokens at position %d overflow sequence %d's %d positions", n,
                       d->pos[seq], seq, d->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return al_fail("decoder prefill: token %d outside the vocabulary (%d)", tokens[i], c->vocab_size);
    /* Positions of one sequence in one range: every row's keys and values reach the cache
     * before any row attends, so a row sees the rows before it; the products take the
     * rows as one batch (sgemm for large models).  Chunks fit the step's scratch rows. */
    for (int done = 0; done < n;) {
        const int k = n - done < d->n_rows ? n - done : d->n_rows;
        for (int i = 0; i < k; i++) {
            d->step_seq[i] = seq;
            d->step_pos[i] = d->pos[seq] + i;
        }
        step_rows(d, tokens + done, 0, k, false); /* a prompt's positions need no logits */
        d->pos[seq] += k;
        done += k;
    }
    return 0;
}

int al_decoder_copy_prefix(al_decoder *d, int dst, int src, int n)
{
    if (dst < 0 || dst >= d->n_seq || src < 0 || src >= d->n_seq)
        return al_fail("decoder: sequence %d or %d out of range [0, %d)", dst, src, d->n_seq);
    if (n < 0 || n > d->pos[src])
        return al_fail("decoder: copying %d positions of sequence %d, which holds %d", n, src, d->pos[src]);
    const al_config *c = &d->model->cfg;
    const size_t es = d->kv == AL_KV_F16 ? sizeof(uint16_t) : sizeof(float);
    const size_t head = (size_t)c->head_dim * d->stride * es; /* bytes per kv head */
    const size_t run = (size_t)(n + OP_ATT_TILE - 1) / OP_ATT_TILE * OP_ATT_TILE * c->head_dim * es; /* whole tiles */
    char *kc = (char *)d->k_cache, *vc = (char *)d->v_cache;
    if (dst != src)
        for (int l = 0; l < c->n_layers; l++)
            for (int h = 0; h < c->n_kv_heads; h++) {
                const size_t from = (((size_t)l * d->n_seq + src) * c->n_kv_heads + h) * head;
                const size_t to = (((size_t)l * d->n_seq + dst) * c->n_kv_heads + h) * head;
                memcpy(kc + to, kc + from, run);
                memcpy(vc + to, vc + from, run);
            }
    d->pos[dst] = n;
    return 0;
}

float *al_decoder_step_rows(al_decoder *d, const int *seqs, const int *tokens, int n, int row0)
{
    if (place_rows(d, seqs, tokens, n, row0))
        return NULL;
    step_rows(d, tokens, row0, row0 + n, true);
    for (int i = row0; i < row0 + n; i++)
        d->pos[d->step_seq[i]]++;
    return d->logits + (size_t)row0 * d->model->cfg.vocab_size;
}
