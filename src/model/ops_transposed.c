/* Matrix products on weights stored transposed, [in][pad16(out)].  Each output element is
 * one chain of fused multiply-adds over the inputs in order, whatever the number of rows
 * and wherever the row falls in a tile: the result of a row depends on that row alone.
 * sgemm gives no such promise (its kernels change with the matrix sizes), so the exact
 * decoder and the exact training forward (online RL) both compute through these, and a
 * token's logits agree between sampling and training bit for bit.  For small models
 * they are also the fastest decoding products: a run of vertical multiply-adds with no
 * horizontal sums. */
#include <omp.h>
#include <string.h>

#include "ops.h"

static int pad16(int n) { return (n + 15) & ~15; }

size_t op_transposed_floats(int rows, int cols) { return (size_t)cols * pad16(rows); }

void op_transpose_weights(float *T, const float *W, int rows, int cols)
{
    const int rp = pad16(rows);
    for (int c = 0; c < cols; c++) {
        float *t = T + (size_t)c * rp;
        for (int r = 0; r < rows; r++)
            t[r] = W[(size_t)r * cols + c];
        for (int r = rows; r < rp; r++)
            t[r] = 0.0f;
    }
}

/* The seven per-layer matrices in the order of al_params, with their shapes. */
static void layer_shapes(const al_config *c, int rows[7], int cols[7])
{
    const int D = c->dim, Hd = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int r[7] = {qd, kvd, kvd, D, Hd, D, Hd}, k[7] = {D, D, D, qd, D, Hd, D};
    memcpy(rows, r, sizeof r);
    memcpy(cols, k, sizeof k);
    if (c->arch == AL_ARCH_GPT2) /* no up projection (w3): its copy is empty */
        rows[6] = 0;
}

size_t op_transposed_model_floats(const al_model *m)
{
    const al_config *c = &m->cfg;
    int rows[7], cols[7];
    layer_shapes(c, rows, cols);
    size_t total = op_transposed_floats(c->vocab_size, c->dim);
    for (int k = 0; k < 7; k++)
        total += (size_t)c->n_layers * op_transposed_floats(rows[k], cols[k]);
    return total;
}

void op_transpose_model(al_params *wt, float *block, const al_model *m)
{
    op_transpose_model_as(wt, block, m, AL_W_F32);
}

void op_transpose_model_as(al_params *wt, float *block, const al_model *m, al_weight_type t)
{
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    int rows[7], cols[7];
    layer_shapes(c, rows, cols);
    float **dst[7] = {&wt->wq, &wt->wk, &wt->wv, &wt->wo, &wt->w1, &wt->w2, &wt->w3};
    const float *src[7] = {w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3};
    float *p = block;
    for (int k = 0; k < 7; k++) {
        *dst[k] = rows[k] ? p : NULL;
        if (!rows[k])
            continue;
        size_t each = op_transposed_floats(rows[k], cols[k]);
#pragma omp parallel for schedule(static) if (m->n_params > (1u << 20))
        for (int l = 0; l < c->n_layers; l++)
            op_transpose_weights_as(p + (size_t)l * each, src[k] + (size_t)l * rows[k] * cols[k], rows[k], cols[k],
                                    t);
        p += (size_t)c->n_layers * each;
    }
    wt->wcls = p;
    op_transpose_weights_as(p, w->wcls, c->vocab_size, c->dim, t);
}

/* ---- reduced-precision weights ---- */

const char *al_weight_type_name(al_weight_type t)
{
    return t == AL_W_BF16 ? "bf16" : t == AL_W_INT8 ? "int8" : t == AL_W_F32 ? "f32" : "?";
}

int al_weight_type_parse(const char *s, al_weight_type *t)
{
    for (int k = AL_W_F32; k <= AL_W_INT8; k++)
        if (s && !strcmp(s, al_weight_type_name((al_weight_type)k))) {
            *t = (al_weight_type)k;
            return 0;
        }
    return al_fail("weight type: expected f32, bf16 or int8, got '%s'", s ? s : "");
}

/* Row r of W as the type's values, through the same helpers the packing uses. */
static void round_row(float *dst, size_t dst_stride, const float *w, int cols, al_weight_type t)
{
    if (t == AL_W_BF16) {
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * dst_stride] = op_bf16_to_float(op_float_to_bf16(w[c]));
    } else if (t == AL_W_INT8) {
        const float s = op_int8_scale(w, cols);
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * dst_stride] = op_int8_value(op_int8_quantize(w[c], s), s);
    } else {
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * dst_stride] = w[c];
    }
}

void op_round_weights(float *W, int rows, int cols, al_weight_type t)
{
    for (int r = 0; r < rows; r++)
        round_row(W + (size_t)r * cols, 1, W + (size_t)r * cols, cols, t);
}

void op_transpose_weights_as(float *T, const float *W, int rows, int cols, al_weight_type t)
{
    if (t == AL_W_F32) {
        op_transpose_weights(T, W, rows, cols);
        return;
    }
    const int rp = pad16(rows);
    for (int r = 0; r < rows; r++)
        round_row(T + r, (size_t)rp, W + (size_t)r * cols, cols, t);
    for (int c = 0; c < cols; c++)
        for (int r = rows; r < rp; r++)
            T[(size_t)c * rp + r] = 0.0f;
}

static size_t line64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static size_t elem_bytes(al_weight_type t) { return t == AL_W_BF16 ? 2 : t == AL_W_INT8 ? 1 : 4; }

size_t op_packed_bytes(int rows, int cols, al_weight_type t)
{
    const size_t scales = t == AL_W_INT8 ? (size_t)pad16(rows) * sizeof(float) : 0;
    return line64(scales + (size_t)cols * pad16(rows) * elem_bytes(t));
}

void op_pack_weights(void *P, const float *W, int rows, int cols, al_weight_type t)
{
    const int rp = pad16(rows);
    if (t == AL_W_F32) {
        op_transpose_weights(P, W, rows, cols);
    } else if (t == AL_W_BF16) {
        uint16_t *h = P;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                h[(size_t)c * rp + r] = op_float_to_bf16(W[(size_t)r * cols + c]);
        for (int c = 0; c < cols; c++)
            memset(h + (size_t)c * rp + rows, 0, (size_t)(rp - rows) * sizeof *h);
    } else {
        float *scale = P;
        int8_t *q = (int8_t *)(scale + rp);
        for (int r = 0; r < rp; r++)
            scale[r] = r < rows ? op_int8_scale(W + (size_t)r * cols, cols) : 0.0f;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                q[(size_t)c * rp + r] = op_int8_quantize(W[(size_t)r * cols + c], scale[r]);
        for (int c = 0; c < cols; c++)
            memset(q + (size_t)c * rp + rows, 0, (size_t)(rp - rows));
    }
}

float op_packed_value(const void *P, int rows, int cols, int r, int c, al_weight_type t)
{
    const size_t at = (size_t)c * pad16(rows) + r;
    if (t == AL_W_BF16)
        return op_bf16_to_float(((const uint16_t *)P)[at]);
    if (t == AL_W_INT8) {
        const float *scale = P;
        return op_int8_value(((const int8_t *)(scale + pad16(rows)))[at], scale[r]);
    }
    return ((const float *)P)[at];
}

size_t op_packed_model_bytes(const al_model *m, al_weight_type t)
{
    const al_config *c = &m->cfg;
    int rows[7], cols[7];
    layer_shapes(c, rows, cols);
    size_t total = op_packed_bytes(c->vocab_size, c->dim, t);
    for (int k = 0; k < 7; k++)
        total += (size_t)c->n_layers * op_packed_bytes(rows[k], cols[k], t);
    return total;
}

void op_pack_model(op_wpack *pk, void *block, const al_model *m, al_weight_type t)
{
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    int rows[7], cols[7];
    layer_shapes(c, rows, cols);
    const float *src[7] = {w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3};
    char *p = block;
    pk->type = t;
    for (int k = 0; k < 7; k++) {
        const size_t each = op_packed_bytes(rows[k], cols[k], t);
        pk->m[k] = rows[k] ? p : NULL;
        pk->layer_bytes[k] = each;
        if (!rows[k])
            continue;
#pragma omp parallel for schedule(static) if (m->n_params > (1u << 20))
        for (int l = 0; l < c->n_layers; l++)
            op_pack_weights(p + (size_t)l * each, src[k] + (size_t)l * rows[k] * cols[k], rows[k], cols[k], t);
        p += (size_t)c->n_layers * each;
    }
    pk->m[OP_M_wcls] = p;
    pk->layer_bytes[OP_M_wcls] = 0;
    op_pack_weights(p, w->wcls, c->vocab_size, c->dim, t);
}

/* Storage of the weights a kernel reads (al_weight_type), a compile-time constant per call. */
enum { W_F32 = AL_W_F32, W_BF16 = AL_W_BF16, W_INT8 = AL_W_INT8 };

typedef uint16_t vu16x16 __attribute__((vector_size(16 * sizeof(uint16_t))));
typedef uint32_t vu32x16 __attribute__((vector_size(16 * sizeof(uint32_t))));
typedef int8_t vi8x16 __attribute__((vector_size(16)));
typedef int16_t vi16x16 __attribute__((vector_size(16 * sizeof(int16_t))));
typedef int32_t vi32x16 __attribute__((vector_size(16 * sizeof(int32_t))));

/* 16 consecutive weights of one input as floats: loaded, or widened (bf16: the 16 bits
 * become the high half; int8: converted exactly, then one multiply by the outputs' scales,
 * the same multiply op_int8_value does) */
static inline __attribute__((always_inline)) op_vf16 load_w16(const void *T, size_t at, op_vf16 scale, const int WT)
{
    if (WT == W_BF16) {
#if defined(__AVX512F__)
        const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)T + at));
        return (op_vf16)_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#else
        vu16x16 h;
        memcpy(&h, (const uint16_t *)T + at, sizeof h);
        const vu32x16 u = __builtin_convertvector(h, vu32x16) << 16;
        op_vf16 f;
        memcpy(&f, &u, sizeof f);
        return f;
#endif
    }
    if (WT == W_INT8) {
#if defined(__AVX512F__)
        const __m128i q = _mm_loadu_si128((const __m128i *)((const int8_t *)T + at));
        return (op_vf16)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)) * scale;
#else
        /* through int16: GCC widens int8 lanes straight to int32 or float one by one */
        vi8x16 q;
        memcpy(&q, (const int8_t *)T + at, sizeof q);
        const vi32x16 wide = __builtin_convertvector(__builtin_convertvector(q, vi16x16), vi32x16);
        return __builtin_convertvector(wide, op_vf16) * scale;
#endif
    }
    return op_load16((const float *)T + at);
}

/* out[N][n_out] = x[N][n_in] W^T (+ bias) with W given transposed as T[n_in][pad16(n_out)]
 * (of storage WT; scale: int8's per-output scales).
 * R rows by C outputs are accumulated in registers (R x C/16 vectors) per pass over n_in;
 * R <= 4 and C <= 64 are compile-time constants at each call. */
static inline __attribute__((always_inline)) void mm_tile(float *out, const float *x, const void *T,
                                                          const float *scale, const float *bias, int n_in,
                                                          int n_out, int op, int n0, int o0, const int R,
                                                          const int C, const int WT)
{
    const int NV = C / 16;
    op_vf16 acc[4][4], sc[4] = {{0}};
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = (op_vf16){0};
    if (WT == W_INT8)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            sc[v] = op_load16(scale + o0 + 16 * v);
    const float *xr = x + (size_t)n0 * n_in;
    for (int i = 0; i < n_in; i++) {
        const size_t t = (size_t)i * op + o0;
        op_vf16 w[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            w[v] = load_w16(T, t + 16 * v, sc[v], WT);
            OP_IN_REGISTER(w[v]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float xi = xr[(size_t)r * n_in + i];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[r][v] += xi * w[v];
        }
    }
    /* whole vectors out (the bias added per lane as the scalar loop did); the last
     * vector of a row that ends inside it is stored under a mask */
    const int m = n_out - o0 < C ? n_out - o0 : C;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float *y = out + (size_t)(n0 + r) * n_out + o0;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const int left = m - 16 * v;
            if (left <= 0)
                break;
            op_vf16 a = acc[r][v];
            if (bias)
                a += op_load_first(bias + o0 + 16 * v, left < 16 ? left : 16);
            op_store_first(y + 16 * v, a, left < 16 ? left : 16);
        }
    }
}

/* One row block over outputs [oa, ob) (multiples of 16): tiles of 64 outputs, then 32,
 * then 16; the same chains whatever the tile. */
static inline __attribute__((always_inline)) void matmul_block(float *out, const float *x, const void *T,
                                                               const float *scale, const float *bias, int n0,
                                                               int n_in, int n_out, int oa, int ob, const int R,
                                                               const int WT)
{
    const int op = pad16(n_out);
    int o0 = oa;
    for (; o0 + 64 <= ob; o0 += 64)
        mm_tile(out, x, T, scale, bias, n_in, n_out, op, n0, o0, R, 64, WT);
    for (; o0 + 32 <= ob; o0 += 32)
        mm_tile(out, x, T, scale, bias, n_in, n_out, op, n0, o0, R, 32, WT);
    for (; o0 < ob; o0 += 16)
        mm_tile(out, x, T, scale, bias, n_in, n_out, op, n0, o0, R, 16, WT);
}

/* Rows [n0, n1), outputs [oa, ob): blocks of 4 rows, then single rows. */
static inline __attribute__((always_inline)) void matmul_rows_as(float *out, const float *x, const void *T,
                                                                 const float *scale, const float *bias, int n0,
                                                                 int n1, int n_in, int n_out, int oa, int ob,
                                                                 const int WT)
{
    for (; n0 + 4 <= n1; n0 += 4)
        matmul_block(out, x, T, scale, bias, n0, n_in, n_out, oa, ob, 4, WT);
    for (; n0 < n1; n0++)
        matmul_block(out, x, T, scale, bias, n0, n_in, n_out, oa, ob, 1, WT);
}

static void matmul_rows(float *out, const float *x, const float *T, const float *bias, int n0, int n1, int n_in,
                        int n_out)
{
    matmul_rows_as(out, x, T, NULL, bias, n0, n1, n_in, n_out, 0, pad16(n_out), W_F32);
}

static void matmul_rows_bf16(float *out, const float *x, const uint16_t *T, const float *bias, int n0, int n1,
                             int n_in, int n_out, int oa, int ob)
{
    matmul_rows_as(out, x, T, NULL, bias, n0, n1, n_in, n_out, oa, ob, W_BF16);
}

static void matmul_rows_int8(float *out, const float *x, const int8_t *T, const float *scale, const float *bias,
                             int n0, int n1, int n_in, int n_out, int oa, int ob)
{
    matmul_rows_as(out, x, T, scale, bias, n0, n1, n_in, n_out, oa, ob, W_INT8);
}

void op_matmul_forward_t(float *out, const float *x, const float *T, const float *bias, int N, int n_in, int n_out)
{
    /* a training batch spreads its row blocks over the threads; decoding steps are
     * already split by sequence */
    if (N >= 64 && !omp_in_parallel()) {
        const int blocks = (N + 15) / 16;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < blocks; b++)
            matmul_rows(out, x, T, bias, b * 16, b * 16 + 16 < N ? b * 16 + 16 : N, n_in, n_out);
        return;
    }
    matmul_rows(out, x, T, bias, 0, N, n_in, n_out);
}

/* Rows [n0, n1) and outputs [oa, ob) of a product on packed weights. */
static void matmul_part_p(float *out, const float *x, const void *P, al_weight_type t, const float *bias, int n0,
                          int n1, int n_in, int n_out, int oa, int ob)
{
    if (t == AL_W_BF16) {
        matmul_rows_bf16(out, x, P, bias, n0, n1, n_in, n_out, oa, ob);
    } else if (t == AL_W_INT8) {
        const float *scale = P;
        matmul_rows_int8(out, x, (const int8_t *)(scale + pad16(n_out)), scale, bias, n0, n1, n_in, n_out, oa, ob);
    } else {
        matmul_rows_as(out, x, P, NULL, bias, n0, n1, n_in, n_out, oa, ob, W_F32);
    }
}

void op_matmul_forward_p(float *out, const float *x, const void *P, al_weight_type t, const float *bias, int N,
                         int n_in, int n_out)
{
    const int op = pad16(n_out);
    if (!omp_in_parallel() && omp_get_max_threads() > 1) {
        if (N >= 64) { /* a batch of rows: blocks of 16 rows, as op_matmul_forward_t */
            const int blocks = (N + 15) / 16;
#pragma omp parallel for schedule(static)
            for (int b = 0; b < blocks; b++)
                matmul_part_p(out, x, P, t, bias, b * 16, b * 16 + 16 < N ? b * 16 + 16 : N, n_in, n_out, 0, op);
            return;
        }
        /* few rows of a large matrix (a large model's decoding step, which runs alone):
         * the threads take runs of 64 outputs, so each streams its share of the weights */
        if ((size_t)N * n_in * op >= (1u << 20) && op >= 128) {
            const int chunks = (op + 63) / 64;
#pragma omp parallel for schedule(static)
            for (int k = 0; k < chunks; k++)
                matmul_part_p(out, x, P, t, bias, 0, N, n_in, n_out, k * 64, k * 64 + 64 < op ? k * 64 + 64 : op);
            return;
        }
    }
    matmul_part_p(out, x, P, t, bias, 0, N, n_in, n_out, 0, op);
}

/* ---- LoRA adapters, transposed ---- */

int op_lora_max_out(const al_lora *lo)
{
    int w = 0;
    for (int i = 0; i < lo->n_layers * AL_LORA_N_TARGETS; i++)
        if (lo->ad[i].A && lo->ad[i].out > w)
            w = lo->ad[i].out;
    return w;
}

size_t op_lora_transposed_floats(const al_lora *lo)
{
    size_t n = 0;
    for (int i = 0; i < lo->n_layers * AL_LORA_N_TARGETS; i++)
        if (lo->ad[i].A)
            n += op_transposed_floats(lo->c.rank, lo->ad[i].in) + op_transposed_floats(lo->ad[i].out, lo->c.rank);
    return n;
}

void op_lora_transpose(al_lora_adapter *t, float *block, const al_lora *lo)
{
    float *p = block;
    for (int i = 0; i < lo->n_layers * AL_LORA_N_TARGETS; i++) {
        const al_lora_adapter *ad = &lo->ad[i];
        t[i] = (al_lora_adapter){.in = ad->in, .out = ad->out};
        if (!ad->A)
            continue;
        t[i].A = p;
        op_transpose_weights(p, ad->A, lo->c.rank, ad->in);
        p += op_transposed_floats(lo->c.rank, ad->in);
        t[i].B = p;
        op_transpose_weights(p, ad->B, ad->out, lo->c.rank);
        p += op_transposed_floats(ad->out, lo->c.rank);
    }
}

void op_lora_forward_t(float *y, const float *x, const float *At, const float *Bt, float scale, float *u, float *z,
                       int N, int in, int out, int rank)
{
    op_matmul_forward_t(u, x, At, NULL, N, in, rank);
    op_matmul_forward_t(z, u, Bt, NULL, N, rank, out);
    for (size_t i = 0; i < (size_t)N * out; i++)
        y[i] += scale * z[i];
}
