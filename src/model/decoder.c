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

struct al_decoder {
    const al_model *model;
    int n_seq, max_len;
    int stride; /* max_len rounded up to whole attention chunks */
    float *block;
    /* [L][n_seq][kv_heads][head_dim][max_len]: positions contiguous, so the score and
     * weighted-sum loops run along positions and vectorize even for tiny head_dim. */
    float *k_cache, *v_cache;
    int *pos;                 /* next position of each sequence */
    float *x, *xb, *q, *k, *v, *atty, *h1, *h3, *scores, *logits; /* per-step rows, n_seq of each */
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
    float *lora_u, *lora_z;     /* [n_seq][rank], [n_seq][lora_zw] scratch */
    int lora_zw;
};

/* Decoding layouts worth a second copy of the weights: small models, where time goes to
 * instruction overhead rather than to streaming weights from memory. */
#define TRANSPOSED_MAX_PARAMS (8u << 20)

/* (Re)fills the transposed copies from the model's weights, allocating them once. */
static int build_transposed(al_decoder *d)
{
    if (!d->wt_block)
        d->wt_block = al_alloc(op_transposed_model_floats(d->model) * sizeof(float));
    if (!d->wt_block)
        return -1;
    op_transpose_model(&d->wt, d->wt_block, d->model);
    return 0;
}

/* The decoder's matrix product: transposed weights when it has them, else the shared op. */
static void dec_matmul(const al_decoder *d, float *out, const float *x, const float *W, const float *Wt,
                       const float *bias, int N, int n_in, int n_out)
{
    if (Wt)
        op_matmul_forward_t(out, x, Wt, bias, N, n_in, n_out);
    else
        op_matmul_forward(out, x, W, bias, N, n_in, n_out);
}

static size_t carve(struct al_decoder *d, const al_config *c, int S, int Tm, float *base)
{
    const size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t stride = ((size_t)Tm + 31) / 32 * 32;
    const size_t cache = (size_t)c->n_layers * S * kvd * stride;
    size_t off = 0;
    float *dummy;
#define TAKE(field, count)                                                                            \
    do {                                                                                              \
        *(base ? &d->field : &dummy) = base ? base + off : NULL;                                      \
        off += ((size_t)(count) + 15) & ~(size_t)15;                                                  \
    } while (0)
    TAKE(k_cache, cache);
    TAKE(v_cache, cache);
    TAKE(x, S * D);
    TAKE(xb, S * D);
    TAKE(q, S * qd);
    TAKE(k, S * kvd);
    TAKE(v, S * kvd);
    TAKE(atty, S * qd);
    TAKE(h1, S * Hd);
    TAKE(h3, S * Hd);
    TAKE(scores, (size_t)S * c->n_heads * stride);
    TAKE(logits, (size_t)S * c->vocab_size);
    TAKE(rope_cos, (size_t)Tm * hd / 2);
    TAKE(rope_sin, (size_t)Tm * hd / 2);
#undef TAKE
    (void)dummy;
    return off * sizeof(float);
}

size_t al_decoder_bytes(const al_config *c, int n_seq, int max_len)
{
    return carve(NULL, c, n_seq, max_len, NULL) + 3 * (size_t)n_seq * sizeof(int);
}

al_decoder *al_decoder_new(const al_model *m, int n_seq, int max_len)
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
    size_t fbytes = carve(NULL, c, n_seq, max_len, NULL);
    d->block = al_alloc(fbytes + 3 * (size_t)n_seq * sizeof(int));
    if (!d->block) {
        free(d);
        return NULL;
    }
    carve(d, c, n_seq, max_len, d->block);
    d->pos = (int *)((char *)d->block + fbytes);
    d->step_pos = d->pos + n_seq;
    d->step_seq = d->step_pos + n_seq;
    d->model = m;
    d->n_seq = n_seq;
    d->max_len = max_len;
    d->stride = (max_len + 31) / 32 * 32;
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
    /* the weights may have changed since the decoder was made (a policy between rollouts) */
    if (build_transposed(d))
        return -1;
    const al_lora *lo = d->model->lora;
    if (lo) {
        d->lora_zw = op_lora_max_out(lo);
        d->lora_block = al_alloc(op_lora_transposed_floats(lo) * sizeof(float));
        d->lora_t = calloc((size_t)lo->n_layers * AL_LORA_N_TARGETS, sizeof *d->lora_t);
        d->lora_u = malloc((size_t)d->n_seq * lo->c.rank * sizeof(float));
        d->lora_z = malloc((size_t)d->n_seq * d->lora_zw * sizeof(float));
        if (!d->lora_block || !d->lora_t || !d->lora_u || !d->lora_z) {
            drop_exact(d);
            return al_fail("out of memory");
        }
        op_lora_transpose(d->lora_t, d->lora_block, lo);
    }
    d->exact = true;
    return 0;
}

int al_decoder_copy_seq(al_decoder *d, int dst, int src)
{
    if (dst < 0 || dst >= d->n_seq || src < 0 || src >= d->n_seq)
        return al_fail("decoder: sequence %d or %d out of range [0, %d)", dst, src, d->n_seq);
    if (dst == src)
        return 0;
    const al_config *c = &d->model->cfg;
    const size_t per_seq = (size_t)c->n_kv_heads * c->head_dim * d->stride;
    for (int l = 0; l < c->n_layers; l++) {
        size_t layer = (size_t)l * d->n_seq * per_seq;
        memcpy(d->k_cache + layer + dst * per_seq, d->k_cache + layer + src * per_seq, per_seq * sizeof(float));
        memcpy(d->v_cache + layer + dst * per_seq, d->v_cache + layer + src * per_seq, per_seq * sizeof(float));
    }
    d->pos[dst] = d->pos[src];
    return 0;
}

/* Attention of one new query row for G query heads that share one cached key/value
 * head (grouped-query attention), so the cache is read once per group, not per head.
 * Positions are processed in chunks of ATT_CHUNK whose partial scores stay in
 * registers; the cache stride is padded to whole chunks, so there is no tail loop.
 * G is a compile-time constant at each call, which lets the compiler unroll over heads. */
#define ATT_CHUNK 32

static inline __attribute__((always_inline)) void attend_group(float *out, float *scores, const float *q,
                                                               const float *kt, const float *vt, int len, int hd,
                                                               int stride, const int G)
{
    const float scale = 1.0f / sqrtf((float)hd);
    const int padded = (len + ATT_CHUNK - 1) / ATT_CHUNK * ATT_CHUNK;
    for (int s0 = 0; s0 < padded; s0 += ATT_CHUNK) {
        float acc[G][ATT_CHUNK];
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < hd; i++) {
            const float *kr = kt + (size_t)i * stride + s0;
            for (int j = 0; j < G; j++) {
                float qi = q[j * hd + i] * scale;
#pragma omp simd
                for (int s = 0; s < ATT_CHUNK; s++)
                    acc[j][s] += qi * kr[s];
            }
        }
        for (int j = 0; j < G; j++)
            memcpy(scores + (size_t)j * stride + s0, acc[j], sizeof acc[j]);
    }
    float inv[G];
    for (int j = 0; j < G; j++) {
        float *sc = scores + (size_t)j * stride;
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int s = 0; s < len; s++)
            maxv = sc[s] > maxv ? sc[s] : maxv;
#pragma omp simd
        for (int s = 0; s < len; s++)
            sc[s] = op_exp_nonpositive(sc[s] - maxv);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int s = 0; s < len; s++)
            sum += sc[s];
        for (int s = len; s < padded; s++)
            sc[s] = 0.0f;
        inv[j] = 1.0f / sum;
    }
    for (int i = 0; i < hd; i++) {
        const float *vr = vt + (size_t)i * stride;
        float acc[G][ATT_CHUNK];
        memset(acc, 0, sizeof acc);
        for (int s0 = 0; s0 < padded; s0 += ATT_CHUNK) {
            for (int j = 0; j < G; j++) {
                const float *sc = scores + (size_t)j * stride + s0;
#pragma omp simd
                for (int s = 0; s < ATT_CHUNK; s++)
                    acc[j][s] += sc[s] * vr[s0 + s];
            }
        }
        for (int j = 0; j < G; j++) {
            float a = 0.0f;
#pragma omp simd reduction(+ : a)
            for (int s = 0; s < ATT_CHUNK; s++)
                a += acc[j][s];
            out[j * hd + i] = a * inv[j];
        }
    }
}

static void attend(float *out, float *scores, const float *q, const float *kt, const float *vt, int len, int hd,
                   int stride, int group)
{
    switch (group) {
    case 1:
        attend_group(out, scores, q, kt, vt, len, hd, stride, 1);
        break;
    case 2:
        attend_group(out, scores, q, kt, vt, len, hd, stride, 2);
        break;
    case 4:
        attend_group(out, scores, q, kt, vt, len, hd, stride, 4);
        break;
    case 8:
        attend_group(out, scores, q, kt, vt, len, hd, stride, 8);
        break;
    default:
        for (int j = 0; j < group; j++)
            attend_group(out + (size_t)j * hd, scores + (size_t)j * stride, q + (size_t)j * hd, kt, vt, len, hd,
                         stride, 1);
    }
}

/* Attention for row i (of a range starting at r0) and the query heads of kv head kh. */
static inline void attend_row_head(al_decoder *d, const float *kc_layer, const float *vc_layer, float *atty,
                                   const float *q, int i, int r0, int kh)
{
    const al_config *c = &d->model->cfg;
    const int H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, qd = H * hd, group = H / KVH;
    const int Tp = d->stride;
    const size_t head_stride = (size_t)hd * Tp;
    size_t base = ((size_t)d->step_seq[r0 + i] * KVH + (size_t)kh) * head_stride;
    int h = kh * group;
    attend(atty + (size_t)i * qd + (size_t)h * hd, d->scores + ((size_t)(r0 + i) * H + h) * Tp,
           q + (size_t)i * qd + (size_t)h * hd, kc_layer + base, vc_layer + base, d->step_pos[r0 + i] + 1, hd, Tp,
           group);
}

/* Exact mode: the query heads of kv head kh for row i through training's row kernel. */
static void attend_row_head_exact(al_decoder *d, const float *kc_layer, const float *vc_layer, float *atty,
                                  const float *q, int i, int r0, int kh)
{
    const al_config *c = &d->model->cfg;
    const int H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, qd = H * hd, group = H / KVH;
    const int Tp = d->stride, t = d->step_pos[r0 + i], h = kh * group;
    const size_t base = ((size_t)d->step_seq[r0 + i] * KVH + (size_t)kh) * (size_t)hd * Tp;
    op_attention_query_group(atty + (size_t)i * qd + (size_t)h * hd, d->scores + ((size_t)(r0 + i) * H + h) * Tp,
                             (size_t)Tp, q + (size_t)i * qd + (size_t)h * hd, kc_layer + base, vc_layer + base, 0, t,
                             t + 1, hd, Tp, group);
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

/* The forward pass for rows [r0, r1) of this step, tokens[0 .. r1 - r0) their inputs.
 * Rows never share scratch, so disjoint ranges can run on different threads. */
static void step_rows(al_decoder *d, const int *tokens, int r0, int r1)
{
    const al_model *m = d->model;
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    const int D = c->dim, Hd = c->hidden_dim, L = c->n_layers, H = c->n_heads, KVH = c->n_kv_heads;
    const int hd = c->head_dim, qd = H * hd, kvd = KVH * hd;
    const int S = d->n_seq, n = r1 - r0;
    float *x = d->x + (size_t)r0 * D, *xb = d->xb + (size_t)r0 * D;
    float *q = d->q + (size_t)r0 * qd, *k = d->k + (size_t)r0 * kvd, *v = d->v + (size_t)r0 * kvd;
    float *atty = d->atty + (size_t)r0 * qd, *h1 = d->h1 + (size_t)r0 * Hd, *h3 = d->h3 + (size_t)r0 * Hd;
    const int *spos = d->step_pos + r0, *sseq = d->step_seq + r0;

/* Layer l's transposed copy of matrix KIND (ROWS x COLS), or NULL without the copies. */
#define WT(KIND, ROWS, COLS) (d->wt_block ? d->wt.KIND + (size_t)l * op_transposed_floats(ROWS, COLS) : NULL)
    op_embedding_forward(x, tokens, w->tok_emb, n, D);
    for (int l = 0; l < L; l++) {
        op_rmsnorm_forward(xb, NULL, x, w->rms_att + (size_t)l * D, n, D, c->norm_eps);
        dec_matmul(d, q, xb, w->wq + (size_t)l * qd * D, WT(wq, qd, D), w->bq ? w->bq + (size_t)l * qd : NULL, n, D, qd);
        dec_matmul(d, k, xb, w->wk + (size_t)l * kvd * D, WT(wk, kvd, D), w->bk ? w->bk + (size_t)l * kvd : NULL, n, D, kvd);
        dec_matmul(d, v, xb, w->wv + (size_t)l * kvd * D, WT(wv, kvd, D), w->bv ? w->bv + (size_t)l * kvd : NULL, n, D, kvd);
        lora_add(d, l, 0, q, xb, n, r0);
        lora_add(d, l, 1, k, xb, n, r0);
        lora_add(d, l, 2, v, xb, n, r0);
        op_rope_forward(q, spos, n, H, hd, d->rope_cos, d->rope_sin, c->rope);
        op_rope_forward(k, spos, n, KVH, hd, d->rope_cos, d->rope_sin, c->rope);
        const int Tp = d->stride;
        const size_t head_stride = (size_t)hd * Tp;
        float *kc_layer = d->k_cache + (size_t)l * S * KVH * head_stride;
        float *vc_layer = d->v_cache + (size_t)l * S * KVH * head_stride;
        for (int i = 0; i < n; i++) {
            float *kc = kc_layer + (size_t)sseq[i] * KVH * head_stride + spos[i];
            float *vc = vc_layer + (size_t)sseq[i] * KVH * head_stride + spos[i];
            for (int j = 0; j < kvd; j++) {
                kc[(size_t)j * Tp] = k[(size_t)i * kvd + j];
                vc[(size_t)j * Tp] = v[(size_t)i * kvd + j];
            }
        }
        /* Entering a parallel region costs more than one row's attention; only a range
         * that runs alone (the large-model path) spreads its rows over the threads. */
        if (d->exact) {
            for (int i = 0; i < n; i++)
                for (int kh = 0; kh < KVH; kh++)
                    attend_row_head_exact(d, kc_layer, vc_layer, atty, q, i, r0, kh);
        } else if (n > 1 && !omp_in_parallel()) {
#pragma omp parallel for collapse(2)
            for (int i = 0; i < n; i++)
                for (int kh = 0; kh < KVH; kh++)
                    attend_row_head(d, kc_layer, vc_layer, atty, q, i, r0, kh);
        } else {
            for (int i = 0; i < n; i++)
                for (int kh = 0; kh < KVH; kh++)
                    attend_row_head(d, kc_layer, vc_layer, atty, q, i, r0, kh);
        }
        dec_matmul(d, xb, atty, w->wo + (size_t)l * D * qd, WT(wo, D, qd), NULL, n, qd, D);
        lora_add(d, l, 3, xb, atty, n, r0);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
        op_rmsnorm_forward(xb, NULL, x, w->rms_ffn + (size_t)l * D, n, D, c->norm_eps);
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
    op_rmsnorm_forward(xb, NULL, x, w->rms_final, n, D, c->norm_eps);
    dec_matmul(d, d->logits + (size_t)r0 * c->vocab_size, xb, w->wcls, d->wt.wcls, NULL, n, D, c->vocab_size);
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

float *al_decoder_step(al_decoder *d, const int *seqs, const int *tokens, int n)
{
    if (place_rows(d, seqs, tokens, n, 0))
        return NULL;
    int threads = omp_get_max_threads();
    if (n >= 2 && threads > 1 && d->model->n_params <= SEQUENCE_SPLIT_MAX_PARAMS && !omp_in_parallel()) {
        int parts = threads < n ? threads : n;
#pragma omp parallel for num_threads(parts) schedule(static, 1)
        for (int p = 0; p < parts; p++) {
            const int r0 = (int)((long)n * p / parts), r1 = (int)((long)n * (p + 1) / parts);
            step_rows(d, tokens + r0, r0, r1);
        }
    } else {
        step_rows(d, tokens, 0, n);
    }
    for (int i = 0; i < n; i++)
        d->pos[d->step_seq[i]]++;
    return d->logits;
}

float *al_decoder_step_rows(al_decoder *d, const int *seqs, const int *tokens, int n, int row0)
{
    if (place_rows(d, seqs, tokens, n, row0))
        return NULL;
    step_rows(d, tokens, row0, row0 + n);
    for (int i = row0; i < row0 + n; i++)
        d->pos[d->step_seq[i]]++;
    return d->logits + (size_t)row0 * d->model->cfg.vocab_size;
}
