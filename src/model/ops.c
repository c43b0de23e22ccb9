/* Forward and backward of each Llama operation.  Large matrix products go through
 * OpenBLAS sgemm; everything else is written as plain loops the compiler vectorizes
 * (omp simd) and OpenMP splits across cores when the work is large enough to pay for it. */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PAR_MIN_WORK 32768

static inline float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* ---- RMSNorm ---- */

static inline void rmsnorm_row(float *o, float *rstd, const float *xr, const float *w, int D, float eps)
{
    float ss = dot(xr, xr, D) / (float)D + eps;
    float r = 1.0f / sqrtf(ss);
    if (rstd)
        *rstd = r;
#pragma omp simd
    for (int i = 0; i < D; i++)
        o[i] = w[i] * (r * xr[i]);
}

void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D, float eps)
{
    if ((long)N * D > PAR_MIN_WORK) {
#pragma omp parallel for
        for (int n = 0; n < N; n++)
            rmsnorm_row(out + (size_t)n * D, rstd ? rstd + n : NULL, x + (size_t)n * D, w, D, eps);
    } else {
        for (int n = 0; n < N; n++)
            rmsnorm_row(out + (size_t)n * D, rstd ? rstd + n : NULL, x + (size_t)n * D, w, D, eps);
    }
}

/* y_i = w_i r x_i with r = (mean x^2 + eps)^-1/2:
 * dx_j = r (w_j g_j - x_j r^2 / D * sum_i w_i g_i x_i),  dw_i = sum_n g_i r x_i. */
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int D)
{
#pragma omp parallel for if ((long)N * D > PAR_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *g = dout + (size_t)n * D;
        float *d = dx + (size_t)n * D;
        float r = rstd[n];
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < D; i++)
            s += w[i] * g[i] * xr[i];
        float c = s * r * r * r / (float)D;
#pragma omp simd
        for (int i = 0; i < D; i++)
            d[i] += r * w[i] * g[i] - c * xr[i];
    }
    /* The weight gradient sums over rows; a column split keeps it race-free. */
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *g = dout + (size_t)n * D;
        float r = rstd[n];
#pragma omp simd
        for (int i = 0; i < D; i++)
            dw[i] += g[i] * r * xr[i];
    }
}

/* ---- matrix products ---- */

/* For a handful of rows (decoding) sgemm's packing overhead dominates.  Four weight rows
 * at a time share each load of x and give four independent accumulators. */
static inline void matmul_block4(float *out, const float *x, const float *W, const float *bias, int N, int n_in,
                                 int n_out, int o)
{
    const float *w0 = W + (size_t)o * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * n_in;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int i = 0; i < n_in; i++) {
            float xi = xr[i];
            s0 += w0[i] * xi;
            s1 += w1[i] * xi;
            s2 += w2[i] * xi;
            s3 += w3[i] * xi;
        }
        float *y = out + (size_t)n * n_out + o;
        y[0] = s0 + (bias ? bias[o] : 0.0f);
        y[1] = s1 + (bias ? bias[o + 1] : 0.0f);
        y[2] = s2 + (bias ? bias[o + 2] : 0.0f);
        y[3] = s3 + (bias ? bias[o + 3] : 0.0f);
    }
}

static void matmul_small(float *out, const float *x, const float *W, const float *bias, int N, int n_in, int n_out)
{
    const int blocks = n_out / 4;
    if ((long)N * n_in * n_out > 4 * PAR_MIN_WORK) {
#pragma omp parallel for
        for (int ob = 0; ob < blocks; ob++)
            matmul_block4(out, x, W, bias, N, n_in, n_out, ob * 4);
    } else {
        for (int ob = 0; ob < blocks; ob++)
            matmul_block4(out, x, W, bias, N, n_in, n_out, ob * 4);
    }
    for (int o = blocks * 4; o < n_out; o++)
        for (int n = 0; n < N; n++)
            out[(size_t)n * n_out + o] = dot(x + (size_t)n * n_in, W + (size_t)o * n_in, n_in) + (bias ? bias[o] : 0.0f);
}

void op_matmul_forward(float *out, const float *x, const float *W, const float *bias, int N, int n_in, int n_out)
{
    if (N <= 4) {
        matmul_small(out, x, W, bias, N, n_in, n_out);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, n_out, n_in, 1.0f, x, n_in, W, n_in, 0.0f, out, n_out);
    if (bias) {
        for (int n = 0; n < N; n++)
            axpy(out + (size_t)n * n_out, 1.0f, bias, n_out);
    }
}

void op_matmul_backward(float *dx, float *dW, float *dbias, const float *dout, const float *x, const float *W,
                        int N, int n_in, int n_out, int accumulate_dx)
{
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, n_in, n_out, 1.0f, dout, n_out, W, n_in,
                    accumulate_dx ? 1.0f : 0.0f, dx, n_in);
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, N, 1.0f, dout, n_out, x, n_in, 1.0f, dW, n_in);
    if (dbias) {
        for (int n = 0; n < N; n++)
            axpy(dbias, 1.0f, dout + (size_t)n * n_out, n_out);
    }
}

/* ---- rotary embeddings ---- */

void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int head_dim, float theta)
{
    int half = head_dim / 2;
    for (int p = 0; p < max_pos; p++) {
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float val = (float)p * freq;
            cos_t[(size_t)p * half + i] = cosf(val);
            sin_t[(size_t)p * half + i] = sinf(val);
        }
    }
}

/* sign = +1 rotates by the angle, -1 by its negative (the transpose). */
static inline void rope_row(float *xr, int p, int n_heads, int hd, const float *cos_t, const float *sin_t,
                            al_rope_layout layout, float sign)
{
    int half = hd / 2;
    const float *c = cos_t + (size_t)p * half, *s = sin_t + (size_t)p * half;
    int stride = layout == AL_ROPE_INTERLEAVED ? 2 : 1;
    int partner = layout == AL_ROPE_INTERLEAVED ? 1 : half;
    for (int h = 0; h < n_heads; h++) {
        float *v = xr + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float *a = v + i * stride, *b = a + partner;
            float v0 = *a, v1 = *b, sn = sign * s[i];
            *a = v0 * c[i] - v1 * sn;
            *b = v0 * sn + v1 * c[i];
        }
    }
}

static void rope_apply(float *x, const int *pos, int N, int n_heads, int hd, const float *cos_t,
                       const float *sin_t, al_rope_layout layout, float sign)
{
    const size_t row = (size_t)n_heads * hd;
    if ((long)N * n_heads * hd > PAR_MIN_WORK) {
#pragma omp parallel for
        for (int n = 0; n < N; n++)
            rope_row(x + n * row, pos ? pos[n] : n, n_heads, hd, cos_t, sin_t, layout, sign);
    } else {
        for (int n = 0; n < N; n++)
            rope_row(x + n * row, pos ? pos[n] : n, n_heads, hd, cos_t, sin_t, layout, sign);
    }
}

void op_rope_forward(float *x, const int *pos, int N, int n_heads, int head_dim, const float *cos_t,
                     const float *sin_t, al_rope_layout layout)
{
    rope_apply(x, pos, N, n_heads, head_dim, cos_t, sin_t, layout, 1.0f);
}

void op_rope_backward(float *dx, const int *pos, int N, int n_heads, int head_dim, const float *cos_t,
                      const float *sin_t, al_rope_layout layout)
{
    rope_apply(dx, pos, N, n_heads, head_dim, cos_t, sin_t, layout, -1.0f);
}

/* ---- attention ----
 * Work is split by (batch row, kv head).  Each task copies its keys and values transposed
 * to [head_dim][T] (positions contiguous), so every inner loop runs along positions and
 * vectorizes whatever the head size, and the query heads of a GQA group share the copy.
 * The backward pass accumulates key and value gradients in the same transposed form. */

#define ATT_PAD 32 /* slack after each transposed row: vector loops may overrun by < 32 */

typedef struct att_scratch {
    float *kt, *vt, *dkt, *dvt; /* [hd][Tp] */
    float *sc;                  /* [Tp] */
} att_scratch;

/* Heads this large go through sgemm; smaller ones through the transposed loops. */
#define ATT_GEMM_MIN_HD 32
#define ATT_BLOCK 64 /* query rows per causal block on the sgemm path */

static size_t per_thread_floats(int T, int hd)
{
    size_t Tp = (size_t)T + ATT_PAD;
    size_t loops = 4 * (size_t)hd * Tp + Tp, gemm = (size_t)T * T;
    /* the exact forward takes the loop form at any head size */
    return ((gemm > loops ? gemm : loops) + 15) & ~(size_t)15;
}

static float *thread_gemm_scratch(float *scratch, int T, int hd)
{
    return scratch + per_thread_floats(T, hd) * (size_t)omp_get_thread_num();
}

/* Row t of P (length T): softmax over [s0, t] of the raw scores in place, zeros elsewhere. */
static void softmax_causal_row(float *a, int s0, int t, int T)
{
    float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
    for (int s = s0; s <= t; s++)
        maxv = a[s] > maxv ? a[s] : maxv;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int s = s0; s <= t; s++) {
        a[s] = op_exp_nonpositive(a[s] - maxv);
        sum += a[s];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int s = s0; s <= t; s++)
        a[s] *= inv;
    memset(a, 0, (size_t)s0 * sizeof *a);
    memset(a + t + 1, 0, (size_t)(T - t - 1) * sizeof *a);
}

/* One (row b, head h) of the forward pass with sgemm: S = scale Q K^T, P = softmax(S),
 * O = P V, by blocks of query rows so only columns up to each block's last row are formed. */
static void attention_forward_gemm(float *out, float *P, const float *Q, const float *K, const float *V,
                                   const int *seg, int T, int hd, int qd, int kvd, float scale)
{
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hd, scale, Q + (size_t)r0 * qd, qd, K,
                    kvd, 0.0f, P + (size_t)r0 * T, T);
        for (int t = r0; t < r1; t++)
            softmax_causal_row(P + (size_t)t * T, seg ? seg[t] : 0, t, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hd, r1, 1.0f, P + (size_t)r0 * T, T, V, kvd,
                    0.0f, out + (size_t)r0 * qd, qd);
    }
}

/* The backward of one (row b, head h), accumulating into dK and dV of its kv head:
 * dP = dO V^T,  dS = P * (dP - rowsum(P * dP)) * scale,
 * dQ = dS K,  dK += dS^T Q,  dV += P^T dO.  dS lives in the per-thread scratch. */
static void attention_backward_gemm(float *dQ, float *dK, float *dV, float *dS, const float *dO, const float *P,
                                    const float *Q, const float *K, const float *V, int T, int hd, int qd, int kvd,
                                    float scale)
{
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hd, 1.0f, dO + (size_t)r0 * qd, qd, V,
                    kvd, 0.0f, dS + (size_t)r0 * T, T);
        for (int t = r0; t < r1; t++) {
            float *d = dS + (size_t)t * T;
            const float *p = P + (size_t)t * T;
            float pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
            for (int s = 0; s < r1; s++)
                pdp += p[s] * d[s];
#pragma omp simd
            for (int s = 0; s < r1; s++)
                d[s] = p[s] * (d[s] - pdp) * scale;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hd, r1, 1.0f, dS + (size_t)r0 * T, T, K, kvd,
                    0.0f, dQ + (size_t)r0 * qd, qd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, r1 - r0, 1.0f, dS + (size_t)r0 * T, T,
                    Q + (size_t)r0 * qd, qd, 1.0f, dK, kvd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, r1 - r0, 1.0f, P + (size_t)r0 * T, T,
                    dO + (size_t)r0 * qd, qd, 1.0f, dV, kvd);
    }
}

size_t op_attention_scratch_floats(int T, int hd, int threads)
{
    return per_thread_floats(T, hd) * (size_t)(threads > 0 ? threads : 1);
}

static att_scratch thread_scratch(float *scratch, int T, int hd)
{
    size_t Tp = (size_t)T + ATT_PAD, row = (size_t)hd * Tp;
    float *base = scratch + per_thread_floats(T, hd) * (size_t)omp_get_thread_num();
    return (att_scratch){base, base + row, base + 2 * row, base + 3 * row, base + 4 * row};
}

static int team_size(long work, int threads)
{
    return work > 2 * PAR_MIN_WORK && threads > 1 ? threads : 1;
}

/* Rows [0, T) of head kh of x (row stride `stride`) into xt[hd][Tp]. */
static void transpose_head(float *xt, const float *x, int T, int hd, int stride, int Tp)
{
    for (int t = 0; t < T; t++)
        for (int i = 0; i < hd; i++)
            xt[(size_t)i * Tp + t] = x[(size_t)t * stride + i];
}

/* sc[0..n) = scale * sum_i q[i] * kt[i][0..n) */
static inline void scores_row(float *sc, const float *q, const float *kt, int n, int hd, int Tp, float scale)
{
    memset(sc, 0, (size_t)n * sizeof *sc);
    for (int i = 0; i < hd; i++) {
        const float *kr = kt + (size_t)i * Tp;
        float qi = q[i] * scale;
#pragma omp simd
        for (int s = 0; s < n; s++)
            sc[s] += qi * kr[s];
    }
}

/* ---- the exact attention kernel: one query row, the G query heads of one kv head ----
 *
 * Shared by the exact decoder and the exact training forward, so a position's attention
 * rounds alike in both.  Its arithmetic, whatever the caller: a score is one multiply-add
 * chain over the head's dimensions; the softmax sum and each output dimension accumulate
 * per lane over chunks of QL positions counted from s0, then add up in a fixed tree over
 * the lanes.  The result depends on (q, keys, values, s0, t) alone, not on T, the stride or
 * where the row sits in memory.  A chunk past t loads nothing beyond t. */
#define QL 16
_Static_assert(OP_ATT_TILE == QL, "a cache tile is one chunk of positions");

/* (x[l] + x[l + 8]), then + the lane 4 on, then (b0 + b2) + (b1 + b3): the usual halving
 * reduction, by shuffles, so the accumulators never go through memory */
static inline float lane_sum(op_vf16 x)
{
    typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
    typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
    const vf8 a = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
    const vf4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* lane_sum of 16 vectors at once: lane k of the result is lane_sum(x[k]), the same
 * additions of the same pairs, done by shuffling pairs of vectors together at each level
 * of the tree (15 vector additions instead of 16 reductions). */
static inline op_vf16 lane_sums16(const op_vf16 x[16])
{
    op_vf16 u[8], w[4], y[2];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) /* lanes 0-7: x[2p]'s halves added, 8-15: x[2p + 1]'s */
        u[p] = __builtin_shufflevector(x[2 * p], x[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(x[2 * p], x[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) /* four lanes per vector: b of x[4q + g] at 4g */
        w[q] = __builtin_shufflevector(u[2 * q], u[2 * q + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
               __builtin_shufflevector(u[2 * q], u[2 * q + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++) /* (b0 + b2, b1 + b3) of x[8r + g] at 2g */
        y[r] = __builtin_shufflevector(w[2 * r], w[2 * r + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
               __builtin_shufflevector(w[2 * r], w[2 * r + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    return __builtin_shufflevector(y[0], y[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
           __builtin_shufflevector(y[0], y[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/* Where position s of dimension 0 lies: keys and values are either rows of Tp positions
 * (cs = QL, s anywhere) or tiles of QL positions x hd dimensions (cs = QL hd, s a multiple
 * of QL); either way dimension i is rs floats further on. */
static inline size_t at_position(int s, int cs)
{
    return (size_t)s + (size_t)(s / QL) * (size_t)(cs - QL);
}

/* m <= QL keys or values from element idx of a cache of floats or (HALF) of halves */
static inline __attribute__((always_inline)) op_vf16 load_cached(const void *x, size_t idx, int m, const int HALF)
{
    if (HALF)
        return op_load_half_first((const uint16_t *)x + idx, m);
    const float *p = (const float *)x + idx;
    return m == QL ? op_load16(p) : op_load_first(p, m);
}

/* max over lanes by halving; NaNs are never chosen */
static inline float lane_max(op_vf16 x)
{
    typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
    typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
    typedef int32_t vi8 __attribute__((vector_size(8 * sizeof(int32_t))));
    typedef int32_t vi4 __attribute__((vector_size(4 * sizeof(int32_t))));
    const vf8 lo8 = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7);
    const vf8 hi8 = __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
    const vi8 g8 = hi8 > lo8;
    const vf8 a = (vf8)(((vi8)hi8 & g8) | ((vi8)lo8 & ~g8));
    const vf4 lo4 = __builtin_shufflevector(a, a, 0, 1, 2, 3), hi4 = __builtin_shufflevector(a, a, 4, 5, 6, 7);
    const vi4 g4 = hi4 > lo4;
    const vf4 b = (vf4)(((vi4)hi4 & g4) | ((vi4)lo4 & ~g4));
    const float c0 = b[2] > b[0] ? b[2] : b[0], c1 = b[3] > b[1] ? b[3] : b[1];
    return c1 > c0 ? c1 : c0;
}

typedef int32_t op_vi16 __attribute__((vector_size(16 * sizeof(int32_t))));

/* lane by lane, the larger of x and y (y where they are unordered) */
static inline op_vf16 max16(op_vf16 x, op_vf16 y)
{
    const op_vi16 gt = x > y;
    return (op_vf16)(((op_vi16)x & gt) | ((op_vi16)y & ~gt));
}

/* x in the first m lanes, fill in the others */
static inline op_vf16 first_lanes_or(op_vf16 x, int m, float fill)
{
    const op_vi16 lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, in = lanes < m;
    return (op_vf16)(((op_vi16)x & in) | ((op_vi16)op_splat16(fill) & ~in));
}

/* The scores of CH chunks of positions from s (the last one m lanes wide) for every head,
 * into their rows of a.  CH x G independent chains, so the multiply-adds overlap.  With
 * mx (the fast kernel), each head's lane-wise maximum is kept up to date as well. */
static inline __attribute__((always_inline)) void scores_chunks(float *a, size_t a_stride, const float *qs,
                                                                const void *kt, int hd, int rs, int cs, int s,
                                                                int m, op_vf16 last[4], op_vf16 *mx, const int G,
                                                                const int CH, const int HALF)
{
    const size_t kc = at_position(s, cs);
    op_vf16 acc[4][4]; /* fixed sizes (CH, G <= 4), so the compiler keeps them in registers */
#pragma GCC unroll 4
    for (int c = 0; c < CH; c++)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++)
            acc[c][j] = (op_vf16){0};
    for (int i = 0; i < hd; i++) {
        const size_t kr = kc + (size_t)i * rs;
        op_vf16 kv[4];
#pragma GCC unroll 4
        for (int c = 0; c < CH; c++)
        {
            kv[c] = load_cached(kt, kr + (size_t)c * cs, c < CH - 1 ? QL : m, HALF);
            OP_IN_REGISTER(kv[c]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            const float qi = qs[j * hd + i];
#pragma GCC unroll 4
            for (int c = 0; c < CH; c++)
                acc[c][j] += qi * kv[c];
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < CH; c++)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++)
            op_store_first(a + j * a_stride + s + c * QL, acc[c][j], c < CH - 1 ? QL : m);
#pragma GCC unroll 4
    for (int j = 0; j < G; j++) /* the softmax takes a short last chunk from here: a masked */
        last[j] = acc[CH - 1][j]; /* store is not forwarded to the loads that follow it */
    if (mx)
#pragma GCC unroll 4
        for (int c = 0; c < CH; c++)
#pragma GCC unroll 4
            for (int j = 0; j < G; j++)
                mx[j] = max16(c < CH - 1 || m == QL ? acc[c][j] : first_lanes_or(acc[c][j], m, -INFINITY), mx[j]);
}

/* The outputs' dimensions i0 .. i0 + IB of every head, from positions s0 .. s0 + n.  One
 * loop over chunks, the last one loading only its m positions: an accumulator array passed
 * to a helper, even an inlined one, ends up in memory. */
static inline __attribute__((always_inline)) void outputs_block(float *o, const float *a, size_t a_stride,
                                                                const void *vt, int s0, int n, int hd, int rs,
                                                                int cs, int i0, const op_vf16 tail[4], const int G,
                                                                const int IB, const int HALF)
{
    op_vf16 acc[16]; /* G x IB <= 16, a fixed size so the accumulators stay in registers */
#pragma GCC unroll 16
    for (int k = 0; k < G * IB; k++)
        acc[k] = (op_vf16){0};
    for (int c0 = 0; c0 < n; c0 += QL) {
        const int m = n - c0 < QL ? n - c0 : QL, s = s0 + c0;
        op_vf16 p[4];
#pragma GCC unroll 4
        for (int j = 0; j < G; j++)
        {
            p[j] = m == QL ? op_load16(a + j * a_stride + s) : tail[j]; /* tail: a short chunk's weights */
            OP_IN_REGISTER(p[j]);
        }
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++) {
            op_vf16 v = load_cached(vt, at_position(s, cs) + (size_t)(i0 + ii) * rs, m, HALF);
            OP_IN_REGISTER(v);
#pragma GCC unroll 4
            for (int j = 0; j < G; j++)
                acc[j * IB + ii] += p[j] * v;
        }
    }
    if (G * IB == 16) {
        const op_vf16 r = lane_sums16(acc);
        if (IB == hd) {
            memcpy(o, &r, sizeof r);
        } else {
#pragma GCC unroll 4
            for (int j = 0; j < G; j++)
#pragma GCC unroll 16
                for (int ii = 0; ii < IB; ii++)
                    o[j * hd + i0 + ii] = r[j * IB + ii];
        }
        return;
    }
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++)
            o[j * hd + i0 + ii] = lane_sum(acc[j * IB + ii]);
}

/* op_exp_nonpositive on 16 lanes, the same operations in the same order, so each lane
 * equals the scalar function's result bit for bit. */
static inline op_vf16 exp_nonpositive16(op_vf16 x)
{
    typedef int32_t vi16 __attribute__((vector_size(16 * sizeof(int32_t))));
    const op_vf16 lo = op_splat16(-87.0f), magic = op_splat16(12582912.0f);
    const vi16 below = x < lo;
    x = (op_vf16)(((vi16)lo & below) | ((vi16)x & ~below));
    op_vf16 t = x * 1.44269504088896341f + magic;
    op_vf16 n = t - magic;
    op_vf16 r = x - n * 0.693359375f + n * 2.12194440e-4f;
    op_vf16 p = op_splat16(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const vi16 si = ((vi16)t - 0x4B400000 + 127) << 23;
    return p * (op_vf16)si;
}

/* Rows a + j a_stride, j < G: softmax over the scores at [s0, t], zeros elsewhere, the G
 * rows interleaved so their dependency chains overlap.  Each sum adds per lane over
 * chunks of QL from s0, then lane_sum; every exponential and product is the scalar one,
 * lane by lane. */
static inline __attribute__((always_inline)) void softmax_rows(float *a, size_t a_stride, int s0, int t, int T,
                                                               op_vf16 tail[4], const int G)
{
    typedef int32_t vi16 __attribute__((vector_size(16 * sizeof(int32_t))));
    const int n = t + 1 - s0, full = n / QL * QL, m = n - full;
    op_vf16 mxv[4], sum[4], mxs[4], inv[4];
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        mxv[j] = op_splat16(-INFINITY), sum[j] = (op_vf16){0};
    /* a short last chunk (m lanes) comes in tail[j] (its scores, then its weights) */
    const vi16 lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, in_tail = lanes < m;
    for (int c0 = 0; c0 < full; c0 += QL)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            const op_vf16 x = op_load16(a + j * a_stride + s0 + c0);
            const vi16 gt = x > mxv[j];
            mxv[j] = (op_vf16)(((vi16)x & gt) | ((vi16)mxv[j] & ~gt));
        }
    if (m)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            const op_vf16 x = (op_vf16)(((vi16)tail[j] & in_tail) | ((vi16)op_splat16(-INFINITY) & ~in_tail));
            const vi16 gt = x > mxv[j];
            mxv[j] = (op_vf16)(((vi16)x & gt) | ((vi16)mxv[j] & ~gt));
        }
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        mxs[j] = op_splat16(lane_max(mxv[j]));
    for (int c0 = 0; c0 < full; c0 += QL)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            float *as = a + j * a_stride + s0;
            const op_vf16 e = exp_nonpositive16(op_load16(as + c0) - mxs[j]);
            memcpy(as + c0, &e, sizeof e);
            sum[j] += e;
        }
#pragma GCC unroll 4
    for (int j = 0; j < G; j++) {
        if (m) {
            tail[j] = (op_vf16)((vi16)exp_nonpositive16(tail[j] - mxs[j]) & in_tail);
            sum[j] += tail[j];
        }
        inv[j] = op_splat16(1.0f / lane_sum(sum[j]));
    }
    for (int c0 = 0; c0 < full; c0 += QL)
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            float *as = a + j * a_stride + s0;
            const op_vf16 e = op_load16(as + c0) * inv[j];
            memcpy(as + c0, &e, sizeof e);
        }
#pragma GCC unroll 4
    for (int j = 0; j < G; j++) {
        float *aj = a + j * a_stride;
        if (m) {
            tail[j] *= inv[j];
            op_store_first(aj + s0 + full, tail[j], m);
        }
        if (s0 > 0)
            memset(aj, 0, (size_t)s0 * sizeof *aj);
        if (t + 1 < T)
            memset(aj + t + 1, 0, (size_t)(T - t - 1) * sizeof *aj);
    }
}

/* The scores of positions [s0, s0 + n) for the G heads, into a; the last chunk also in tail.
 * q is scaled first, as training does. */
static inline __attribute__((always_inline)) void scores_all(float *a, size_t a_stride, const float *q,
                                                             const void *kt, int s0, int n, int hd, int rs, int cs,
                                                             op_vf16 tail[4], op_vf16 *mx, const int G,
                                                             const int HALF)
{
    const float scale = 1.0f / sqrtf((float)hd);
    float qs[G * hd];
    for (int i = 0; i < G * hd; i++)
        qs[i] = q[i] * scale;
    int c0 = 0;
    for (; c0 + 4 * QL < n; c0 += 4 * QL) /* while more than four chunks remain */
        scores_chunks(a, a_stride, qs, kt, hd, rs, cs, s0 + c0, QL, tail, mx, G, 4, HALF);
    const int rest = n - c0, m = rest - (rest - 1) / QL * QL; /* 1 to 4 chunks, the last m wide */
    switch ((rest + QL - 1) / QL) {
    case 1:
        scores_chunks(a, a_stride, qs, kt, hd, rs, cs, s0 + c0, m, tail, mx, G, 1, HALF);
        break;
    case 2:
        scores_chunks(a, a_stride, qs, kt, hd, rs, cs, s0 + c0, m, tail, mx, G, 2, HALF);
        break;
    case 3:
        scores_chunks(a, a_stride, qs, kt, hd, rs, cs, s0 + c0, m, tail, mx, G, 3, HALF);
        break;
    default:
        scores_chunks(a, a_stride, qs, kt, hd, rs, cs, s0 + c0, m, tail, mx, G, 4, HALF);
    }
}

static inline __attribute__((always_inline)) void query_group(float *o, float *a, size_t a_stride, const float *q,
                                                              const void *kt, const void *vt, int s0, int t, int T,
                                                              int hd, int rs, int cs, const int G, const int IB,
                                                              const int HALF)
{
    const int n = t + 1 - s0;
    op_vf16 tail[4]; /* the last chunk of each head, kept out of memory */
    scores_all(a, a_stride, q, kt, s0, n, hd, rs, cs, tail, NULL, G, HALF);
    softmax_rows(a, a_stride, s0, t, T, tail, G); /* in place; zeros outside [s0, t] */
    for (int i0 = 0; i0 < hd; i0 += IB)
        outputs_block(o, a, a_stride, vt, s0, n, hd, rs, cs, i0, tail, G, IB, HALF);
}

/* ---- the fast decoding kernel: the same function, rounded its own way ----
 * For decoding that need not match training to the bit.  The maximum is kept while the
 * scores are made, and the exponentials are taken as the outputs need them and never
 * normalized in memory: out = (sum_s e_s v_s) / (sum_s e_s).  Two passes over the scores
 * instead of four.  Keys [0, t] in tiles, as op_attention_query_tiled. */
static inline __attribute__((always_inline)) void fast_outputs(float *o, const float *a, size_t a_stride,
                                                               const void *vt, int n, int hd, int i0,
                                                               const op_vf16 tail[4], const op_vf16 mxs[4],
                                                               const int G, const int IB, const int HALF)
{
    op_vf16 acc[16], sum[4];
#pragma GCC unroll 16
    for (int k = 0; k < G * IB; k++)
        acc[k] = (op_vf16){0};
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        sum[j] = (op_vf16){0};
    for (int c0 = 0; c0 < n; c0 += QL) {
        const int m = n - c0 < QL ? n - c0 : QL;
        op_vf16 p[4];
#pragma GCC unroll 4
        for (int j = 0; j < G; j++) {
            const op_vf16 x = m == QL ? op_load16(a + j * a_stride + c0) : tail[j];
            const op_vf16 e = exp_nonpositive16(x - mxs[j]);
            p[j] = m == QL ? e : first_lanes_or(e, m, 0.0f);
            sum[j] += p[j];
        }
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++) {
            op_vf16 v = load_cached(vt, at_position(c0, QL * hd) + (size_t)(i0 + ii) * QL, m, HALF);
            OP_IN_REGISTER(v);
#pragma GCC unroll 4
            for (int j = 0; j < G; j++)
                acc[j * IB + ii] += p[j] * v;
        }
    }
    float inv[4];
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        inv[j] = 1.0f / lane_sum(sum[j]);
    if (G * IB == 16) {
        const op_vf16 r = lane_sums16(acc);
#pragma GCC unroll 4
        for (int j = 0; j < G; j++)
#pragma GCC unroll 16
            for (int ii = 0; ii < IB; ii++)
                o[j * hd + i0 + ii] = r[j * IB + ii] * inv[j];
        return;
    }
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++)
            o[j * hd + i0 + ii] = lane_sum(acc[j * IB + ii]) * inv[j];
}

static inline __attribute__((always_inline)) void fast_group(float *o, float *a, size_t a_stride, const float *q,
                                                             const void *kt, const void *vt, int t, int hd,
                                                             const int G, const int IB, const int HALF)
{
    const int n = t + 1;
    op_vf16 tail[4], mx[4], mxs[4];
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        mx[j] = op_splat16(-INFINITY);
    scores_all(a, a_stride, q, kt, 0, n, hd, QL, QL * hd, tail, mx, G, HALF);
#pragma GCC unroll 4
    for (int j = 0; j < G; j++)
        mxs[j] = op_splat16(lane_max(mx[j]));
    for (int i0 = 0; i0 < hd; i0 += IB)
        fast_outputs(o, a, a_stride, vt, n, hd, i0, tail, mxs, G, IB, HALF);
}

static inline __attribute__((always_inline)) void fast_groups(float *o, float *a, size_t a_stride, const float *q,
                                                              const void *kt, const void *vt, int t, int hd, int G,
                                                              const int HALF)
{
#define FG(g, ib) fast_group(o, a, a_stride, q, kt, vt, t, hd, g, ib, HALF)
    switch (G) {
    case 1:
        hd % 16 == 0 ? FG(1, 16) : hd % 8 == 0 ? FG(1, 8) : FG(1, 1);
        break;
    case 2:
        hd % 8 == 0 ? FG(2, 8) : FG(2, 1);
        break;
    case 4:
        hd % 4 == 0 ? FG(4, 4) : FG(4, 1);
        break;
    default:
        for (int j = 0; j < G; j++) {
            float *oj = o + (size_t)j * hd, *aj = a + j * a_stride;
            const float *qj = q + (size_t)j * hd;
            if (hd % 8 == 0)
                fast_group(oj, aj, a_stride, qj, kt, vt, t, hd, 1, 8, HALF);
            else
                fast_group(oj, aj, a_stride, qj, kt, vt, t, hd, 1, 1, HALF);
        }
    }
#undef FG
}

void op_attention_query_fast(float *o, float *a, size_t a_stride, const float *q, const float *kt, const float *vt,
                             int t, int hd, int G)
{
    fast_groups(o, a, a_stride, q, kt, vt, t, hd, G, 0);
}

void op_attention_query_fast_half(float *o, float *a, size_t a_stride, const float *q, const uint16_t *kt,
                                  const uint16_t *vt, int t, int hd, int G)
{
    fast_groups(o, a, a_stride, q, kt, vt, t, hd, G, 1);
}

static inline __attribute__((always_inline)) void query_groups(float *o, float *a, size_t a_stride, const float *q,
                                                               const void *kt, const void *vt, int s0, int t, int T,
                                                               int hd, int rs, int cs, int G, const int HALF)
{
    /* G x IB accumulators of QL lanes fill 16 vector registers when IB divides hd */
#define QG(g, ib) query_group(o, a, a_stride, q, kt, vt, s0, t, T, hd, rs, cs, g, ib, HALF)
    switch (G) {
    case 1:
        hd % 16 == 0 ? QG(1, 16) : hd % 8 == 0 ? QG(1, 8) : QG(1, 1);
        break;
    case 2:
        hd % 8 == 0 ? QG(2, 8) : QG(2, 1);
        break;
    case 4:
        hd % 4 == 0 ? QG(4, 4) : QG(4, 1);
        break;
    default: /* one head at a time: the same arithmetic per head */
        for (int j = 0; j < G; j++) {
            float *oj = o + (size_t)j * hd, *aj = a + j * a_stride;
            const float *qj = q + (size_t)j * hd;
            if (hd % 8 == 0)
                query_group(oj, aj, a_stride, qj, kt, vt, s0, t, T, hd, rs, cs, 1, 8, HALF);
            else
                query_group(oj, aj, a_stride, qj, kt, vt, s0, t, T, hd, rs, cs, 1, 1, HALF);
        }
    }
#undef QG
}

void op_attention_query_group(float *o, float *a, size_t a_stride, const float *q, const float *kt, const float *vt,
                              int s0, int t, int T, int hd, int Tp, int G)
{
    query_groups(o, a, a_stride, q, kt, vt, s0, t, T, hd, Tp, QL, G, 0);
}

void op_attention_query_tiled(float *o, float *a, size_t a_stride, const float *q, const float *kt,
                              const float *vt, int t, int hd, int G)
{
    query_groups(o, a, a_stride, q, kt, vt, 0, t, t + 1, hd, QL, QL * hd, G, 0);
}

void op_attention_query_tiled_half(float *o, float *a, size_t a_stride, const float *q, const uint16_t *kt,
                                   const uint16_t *vt, int t, int hd, int G)
{
    query_groups(o, a, a_stride, q, kt, vt, 0, t, t + 1, hd, QL, QL * hd, G, 1);
}

static void attention_forward_loops(float *out, float *att, const float *q, const float *k, const float *v,
                                    const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch,
                                    int threads);

void op_attention_forward_exact(float *out, float *att, const float *q, const float *k, const float *v,
                                const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch, int threads)
{
    attention_forward_loops(out, att, q, k, v, seg_start, B, T, H, KVH, hd, scratch, threads);
}

void op_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch, int threads)
{
    const int qd = H * hd, kvd = KVH * hd, group = H / KVH;
    const float scale = 1.0f / sqrtf((float)hd);
    if (hd >= ATT_GEMM_MIN_HD) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(team_size((long)B * H * T * T * hd, threads))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                attention_forward_gemm(out + (size_t)b * T * qd + (size_t)h * hd, att + ((size_t)b * H + h) * T * T,
                                       q + (size_t)b * T * qd + (size_t)h * hd,
                                       k + (size_t)b * T * kvd + (size_t)(h / group) * hd,
                                       v + (size_t)b * T * kvd + (size_t)(h / group) * hd,
                                       seg_start ? seg_start + (size_t)b * T : NULL, T, hd, qd, kvd, scale);
        return;
    }
    attention_forward_loops(out, att, q, k, v, seg_start, B, T, H, KVH, hd, scratch, threads);
}

static void attention_forward_loops(float *out, float *att, const float *q, const float *k, const float *v,
                                    const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch,
                                    int threads)
{
    const int qd = H * hd, kvd = KVH * hd, group = H / KVH, Tp = T + ATT_PAD;
#pragma omp parallel num_threads(team_size((long)B * H * T * T * hd, threads))
    {
        att_scratch w = thread_scratch(scratch, T, hd);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int kh = 0; kh < KVH; kh++) {
                transpose_head(w.kt, k + (size_t)b * T * kvd + (size_t)kh * hd, T, hd, kvd, Tp);
                transpose_head(w.vt, v + (size_t)b * T * kvd + (size_t)kh * hd, T, hd, kvd, Tp);
                const int h = kh * group;
                for (int t = 0; t < T; t++) {
                    const size_t row = (size_t)b * T + t;
                    op_attention_query_group(out + row * qd + (size_t)h * hd, att + (((size_t)b * H + h) * T + t) * T,
                                             (size_t)T * T, q + row * qd + (size_t)h * hd, w.kt, w.vt,
                                             seg_start ? seg_start[row] : 0, t, T, hd, Tp, group);
                }
            }
        }
    }
}

/* With p = softmax(scale * q.k):  dv_s += p_s g,  dp_s = g.v_s,
 * dz_s = p_s (dp_s - sum_s' p_s' dp_s'),  dq += scale sum_s dz_s k_s,  dk_s += scale dz_s q. */
void op_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                           const float *k, const float *v, const int *seg_start, int B, int T, int H, int KVH,
                           int hd, float *scratch, int threads)
{
    const int qd = H * hd, kvd = KVH * hd, group = H / KVH, Tp = T + ATT_PAD;
    const float scale = 1.0f / sqrtf((float)hd);
    if (hd >= ATT_GEMM_MIN_HD) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(team_size((long)B * H * T * T * hd, threads))
        for (int b = 0; b < B; b++) {
            for (int kh = 0; kh < KVH; kh++) {
                float *dS = thread_gemm_scratch(scratch, T, hd);
                float *dK = dk + (size_t)b * T * kvd + (size_t)kh * hd, *dV = dv + (size_t)b * T * kvd + (size_t)kh * hd;
                for (int t = 0; t < T; t++) {
                    memset(dK + (size_t)t * kvd, 0, (size_t)hd * sizeof(float));
                    memset(dV + (size_t)t * kvd, 0, (size_t)hd * sizeof(float));
                }
                for (int h = kh * group; h < (kh + 1) * group; h++)
                    attention_backward_gemm(dq + (size_t)b * T * qd + (size_t)h * hd, dK, dV, dS,
                                            dout + (size_t)b * T * qd + (size_t)h * hd, att + ((size_t)b * H + h) * T * T,
                                            q + (size_t)b * T * qd + (size_t)h * hd, k + (size_t)b * T * kvd + (size_t)kh * hd,
                                            v + (size_t)b * T * kvd + (size_t)kh * hd, T, hd, qd, kvd, scale);
            }
        }
        return;
    }
#pragma omp parallel num_threads(team_size((long)B * H * T * T * hd, threads))
    {
        att_scratch w = thread_scratch(scratch, T, hd);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int kh = 0; kh < KVH; kh++) {
                transpose_head(w.kt, k + (size_t)b * T * kvd + (size_t)kh * hd, T, hd, kvd, Tp);
                transpose_head(w.vt, v + (size_t)b * T * kvd + (size_t)kh * hd, T, hd, kvd, Tp);
                memset(w.dkt, 0, (size_t)hd * Tp * sizeof(float));
                memset(w.dvt, 0, (size_t)hd * Tp * sizeof(float));
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    for (int t = 0; t < T; t++) {
                        const size_t row = (size_t)b * T + t;
                        const int s0 = seg_start ? seg_start[row] : 0, n = t + 1 - s0;
                        const float *g = dout + row * qd + (size_t)h * hd;
                        const float *qt = q + row * qd + (size_t)h * hd;
                        const float *p = att + (((size_t)b * H + h) * T + t) * T + s0;
                        float *dqt = dq + row * qd + (size_t)h * hd;
                        float *dz = w.sc;
                        scores_row(dz, g, w.vt + s0, n, hd, Tp, 1.0f); /* dp_s = g . v_s */
                        float pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
                        for (int s = 0; s < n; s++)
                            pdp += p[s] * dz[s];
#pragma omp simd
                        for (int s = 0; s < n; s++)
                            dz[s] = p[s] * (dz[s] - pdp) * scale;
                        for (int i = 0; i < hd; i++) {
                            const float *kr = w.kt + (size_t)i * Tp + s0;
                            float *dkr = w.dkt + (size_t)i * Tp + s0, *dvr = w.dvt + (size_t)i * Tp + s0;
                            float qi = qt[i], gi = g[i], acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                            for (int s = 0; s < n; s++) {
                                acc += dz[s] * kr[s];
                                dkr[s] += dz[s] * qi;
                                dvr[s] += p[s] * gi;
                            }
                            dqt[i] = acc;
                        }
                    }
                }
                for (int t = 0; t < T; t++) {
                    float *dkr = dk + ((size_t)b * T + t) * kvd + (size_t)kh * hd;
                    float *dvr = dv + ((size_t)b * T + t) * kvd + (size_t)kh * hd;
                    for (int i = 0; i < hd; i++) {
                        dkr[i] = w.dkt[(size_t)i * Tp + t];
                        dvr[i] = w.dvt[(size_t)i * Tp + t];
                    }
                }
            }
        }
    }
}

/* ---- SwiGLU ---- */

/* sigmoid through exp of a non-positive argument only, so it vectorizes and never overflows */
static inline float sigmoid_fast(float x)
{
    float e = op_exp_nonpositive(x < 0 ? x : -x);
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static void swiglu_range(float *out, const float *h1, const float *h3, size_t lo, size_t hi)
{
#pragma omp simd
    for (size_t i = lo; i < hi; i++)
        out[i] = h1[i] * sigmoid_fast(h1[i]) * h3[i];
}

void op_swiglu_forward(float *out, const float *h1, const float *h3, size_t n)
{
    if (n > PAR_MIN_WORK) {
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c += 4096)
            swiglu_range(out, h1, h3, c, c + 4096 < n ? c + 4096 : n);
    } else {
        swiglu_range(out, h1, h3, 0, n);
    }
}

static void swiglu_backward_range(float *dh1, float *dh3, const float *dout, const float *h1, const float *h3,
                                  size_t lo, size_t hi)
{
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
        float sg = sigmoid_fast(h1[i]);
        float silu = h1[i] * sg;
        dh3[i] = dout[i] * silu;
        dh1[i] = dout[i] * h3[i] * (sg * (1.0f + h1[i] * (1.0f - sg)));
    }
}

void op_swiglu_backward(float *dh1, float *dh3, const float *dout, const float *h1, const float *h3, size_t n)
{
    if (n > PAR_MIN_WORK) {
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c += 4096)
            swiglu_backward_range(dh1, dh3, dout, h1, h3, c, c + 4096 < n ? c + 4096 : n);
    } else {
        swiglu_backward_range(dh1, dh3, dout, h1, h3, 0, n);
    }
}

/* ---- log-probabilities of targets ---- */

/* Never inlined: al_logprob (sampling) runs this same code as the training forward. */
static __attribute__((noinline)) void logprob_row(float *logp, float *lse, const float *l, int target, int V)
{
    float maxv = l[0];
#pragma omp simd reduction(max : maxv)
    for (int i = 0; i < V; i++)
        maxv = l[i] > maxv ? l[i] : maxv;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < V; i++)
        s += op_exp_nonpositive(l[i] - maxv);
    *lse = maxv + logf(s);
    *logp = target >= 0 ? l[target] - *lse : 0.0f;
}

void op_logprob_forward(float *logp, float *lse, const float *logits, const int *targets, int N, int V)
{
    if ((long)N * V > PAR_MIN_WORK) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            logprob_row(logp + n, lse + n, logits + (size_t)n * V, targets[n], V);
    } else {
        for (int n = 0; n < N; n++)
            logprob_row(logp + n, lse + n, logits + (size_t)n * V, targets[n], V);
    }
}

static void logprob_backward_row(float *d, const float *l, float lse, int target, float dlogp, int V)
{
    float g = target >= 0 ? dlogp : 0.0f;
#pragma omp simd
    for (int i = 0; i < V; i++)
        d[i] = -g * op_exp_nonpositive(l[i] - lse);
    if (target >= 0)
        d[target] += g;
}

void op_logprob_backward(float *dlogits, const float *logits, const float *lse, const int *targets,
                         const float *dlogp, int N, int V)
{
    if ((long)N * V > PAR_MIN_WORK) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            logprob_backward_row(dlogits + (size_t)n * V, logits + (size_t)n * V, lse[n], targets[n], dlogp[n], V);
    } else {
        for (int n = 0; n < N; n++)
            logprob_backward_row(dlogits + (size_t)n * V, logits + (size_t)n * V, lse[n], targets[n], dlogp[n], V);
    }
}

/* ---- token embeddings ---- */

void op_embedding_forward(float *out, const int *tokens, const float *table, int N, int D)
{
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * D, table + (size_t)tokens[n] * D, (size_t)D * sizeof(float));
}

void op_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int D)
{
    for (int n = 0; n < N; n++)
        axpy(dtable + (size_t)tokens[n] * D, 1.0f, dout + (size_t)n * D, D);
}
