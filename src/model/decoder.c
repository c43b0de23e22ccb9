/* Incremental decoding with a KV cache for many independent sequences at once.
 * Each step advances every listed sequence by one token; the matrix products see all
 * of them as one batch, which is what makes sampling many rollouts cheap. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "ops.h"

struct al_decoder {
    const al_model *model;
    int n_seq, max_len;
    float *block;
    float *k_cache, *v_cache; /* [L][n_seq][max_len][kvd] */
    int *pos;                 /* next position of each sequence */
    float *x, *xb, *q, *k, *v, *atty, *h1, *h3, *scores, *logits; /* per-step rows, n_seq of each */
    float *rope_cos, *rope_sin;
    int *step_pos, *step_seq;
};

static size_t carve(struct al_decoder *d, const al_config *c, int S, int Tm, float *base)
{
    const size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t cache = (size_t)c->n_layers * S * Tm * kvd;
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
    TAKE(scores, (size_t)S * c->n_heads * Tm);
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
    op_rope_tables(d->rope_cos, d->rope_sin, max_len, c->head_dim, c->rope_theta);
    return d;
}

void al_decoder_free(al_decoder *d)
{
    if (!d)
        return;
    al_free(d->block);
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

/* Attention of one new query row against the cached keys and values of its sequence. */
static void attend(float *out, float *scores, const float *q, const float *kc, const float *vc, int len,
                   int hd, int kvd)
{
    const float scale = 1.0f / sqrtf((float)hd);
    float maxv = -INFINITY;
    for (int s = 0; s < len; s++) {
        const float *kr = kc + (size_t)s * kvd;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int i = 0; i < hd; i++)
            acc += q[i] * kr[i];
        scores[s] = acc * scale;
        maxv = scores[s] > maxv ? scores[s] : maxv;
    }
    float sum = 0.0f;
    for (int s = 0; s < len; s++) {
        scores[s] = expf(scores[s] - maxv);
        sum += scores[s];
    }
    float inv = 1.0f / sum;
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int s = 0; s < len; s++) {
        const float *vr = vc + (size_t)s * kvd;
        float a = scores[s] * inv;
#pragma omp simd
        for (int i = 0; i < hd; i++)
            out[i] += a * vr[i];
    }
}

float *al_decoder_step(al_decoder *d, const int *seqs, const int *tokens, int n)
{
    const al_model *m = d->model;
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    const int D = c->dim, Hd = c->hidden_dim, L = c->n_layers, H = c->n_heads;
    const int hd = c->head_dim, qd = H * hd, kvd = c->n_kv_heads * hd, group = H / c->n_kv_heads;
    const int S = d->n_seq, Tm = d->max_len;

    if (n <= 0 || n > S) {
        al_fail("decoder step: %d sequences requested, the decoder holds %d", n, S);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int s = seqs ? seqs[i] : i;
        if (s < 0 || s >= S) {
            al_fail("decoder step: sequence %d out of range [0, %d)", s, S);
            return NULL;
        }
        if (d->pos[s] >= Tm) {
            al_fail("decoder step: sequence %d is full (%d positions)", s, Tm);
            return NULL;
        }
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
            al_fail("decoder step: token %d outside the vocabulary (%d)", tokens[i], c->vocab_size);
            return NULL;
        }
        d->step_seq[i] = s;
        d->step_pos[i] = d->pos[s];
    }

    op_embedding_forward(d->x, tokens, w->tok_emb, n, D);
    for (int l = 0; l < L; l++) {
        op_rmsnorm_forward(d->xb, NULL, d->x, w->rms_att + (size_t)l * D, n, D, c->norm_eps);
        op_matmul_forward(d->q, d->xb, w->wq + (size_t)l * qd * D, w->bq ? w->bq + (size_t)l * qd : NULL, n, D, qd);
        op_matmul_forward(d->k, d->xb, w->wk + (size_t)l * kvd * D, w->bk ? w->bk + (size_t)l * kvd : NULL, n, D,
                          kvd);
        op_matmul_forward(d->v, d->xb, w->wv + (size_t)l * kvd * D, w->bv ? w->bv + (size_t)l * kvd : NULL, n, D,
                          kvd);
        op_rope_forward(d->q, d->step_pos, n, H, hd, d->rope_cos, d->rope_sin, c->rope);
        op_rope_forward(d->k, d->step_pos, n, c->n_kv_heads, hd, d->rope_cos, d->rope_sin, c->rope);
        float *kc_layer = d->k_cache + (size_t)l * S * Tm * kvd;
        float *vc_layer = d->v_cache + (size_t)l * S * Tm * kvd;
        for (int i = 0; i < n; i++) {
            size_t at = ((size_t)d->step_seq[i] * Tm + d->step_pos[i]) * kvd;
            memcpy(kc_layer + at, d->k + (size_t)i * kvd, (size_t)kvd * sizeof(float));
            memcpy(vc_layer + at, d->v + (size_t)i * kvd, (size_t)kvd * sizeof(float));
        }
#pragma omp parallel for collapse(2) if (n > 1)
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < H; h++) {
                size_t base = (size_t)d->step_seq[i] * Tm * kvd + (size_t)(h / group) * hd;
                attend(d->atty + (size_t)i * qd + (size_t)h * hd, d->scores + ((size_t)i * H + h) * Tm,
                       d->q + (size_t)i * qd + (size_t)h * hd, kc_layer + base, vc_layer + base,
                       d->step_pos[i] + 1, hd, kvd);
            }
        }
        op_matmul_forward(d->xb, d->atty, w->wo + (size_t)l * D * qd, NULL, n, qd, D);
        for (size_t i = 0; i < (size_t)n * D; i++)
            d->x[i] += d->xb[i];
        op_rmsnorm_forward(d->xb, NULL, d->x, w->rms_ffn + (size_t)l * D, n, D, c->norm_eps);
        op_matmul_forward(d->h1, d->xb, w->w1 + (size_t)l * Hd * D, NULL, n, D, Hd);
        op_matmul_forward(d->h3, d->xb, w->w3 + (size_t)l * Hd * D, NULL, n, D, Hd);
        op_swiglu_forward(d->h1, d->h1, d->h3, (size_t)n * Hd);
        op_matmul_forward(d->xb, d->h1, w->w2 + (size_t)l * D * Hd, NULL, n, Hd, D);
        for (size_t i = 0; i < (size_t)n * D; i++)
            d->x[i] += d->xb[i];
    }
    op_rmsnorm_forward(d->xb, NULL, d->x, w->rms_final, n, D, c->norm_eps);
    op_matmul_forward(d->logits, d->xb, w->wcls, NULL, n, D, c->vocab_size);
    for (int i = 0; i < n; i++)
        d->pos[d->step_seq[i]]++;
    return d->logits;
}
