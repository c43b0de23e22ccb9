/* The operations of a Llama block, each as an explicit forward and backward function.
 * Internal to the model module; every backward is finite-difference checked in
 * tests/test_ops.c.  Shapes: N rows (batch x time), row-major. Backward functions
 * accumulate (+=) into parameter gradients and into input gradients unless noted. */
#ifndef ALIGN_MODEL_OPS_H
#define ALIGN_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "align/model.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* 16 floats as one vector (the GCC/Clang vector extension), for kernels whose accumulators
 * must stay in registers: the compiler spills arrays sized by a parameter, even a constant
 * one, but keeps fixed arrays of these in registers once their loops are unrolled. */
typedef float op_vf16 __attribute__((vector_size(16 * sizeof(float))));

static inline op_vf16 op_load16(const float *p)
{
    op_vf16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Keeps a loaded vector in a register: without it GCC folds the load into each multiply-add
 * that uses the vector, loading it again for every row of a tile. */
#if defined(__AVX512F__)
#define OP_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define OP_IN_REGISTER(v) ((void)0)
#endif

static inline op_vf16 op_splat16(float x) { return (op_vf16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/* p[0..m) for 1 <= m <= 16, zeros in the other lanes; reads nothing past p + m */
static inline op_vf16 op_load_first(const float *p, int m)
{
#if defined(__AVX512F__)
    if (m == 16) /* a plain load: a masked one is not forwarded from a plain store */
        return op_load16(p);
    return (op_vf16)_mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), p);
#else
    op_vf16 v = {0};
    memcpy(&v, p, (size_t)m * sizeof(float));
    return v;
#endif
}

/* p[0..m) for 1 <= m <= 16, fill in the other lanes; reads nothing past p + m */
static inline op_vf16 op_load_first_or(const float *p, int m, float fill)
{
#if defined(__AVX512F__)
    return (op_vf16)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << m) - 1), p);
#else
    op_vf16 v = op_splat16(fill);
    memcpy(&v, p, (size_t)m * sizeof(float));
    return v;
#endif
}

/* IEEE half precision <-> float, round to nearest even, in portable code (the F16C
 * instructions compute the same; tests/test_generate.c checks them against each other). */
static inline uint16_t op_float_to_half_soft(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((a & 0x7fffffu) >> 13));
    if (a >= 0x477ff000u) /* inf, or rounds past the largest half (65504) */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below the smallest normal half: units of 2^-24, exact in float */
        float f;
        memcpy(&f, &a, sizeof f);
        f *= 16777216.0f;
        uint32_t q = (uint32_t)f;
        const float rem = f - (float)q;
        if (rem > 0.5f || (rem == 0.5f && (q & 1u)))
            q++;
        return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal, as it should be */
    }
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u); /* round the 13 dropped bits to even */
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
}

static inline float op_half_to_float_soft(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t u;
    if (e == 0) { /* zero or subnormal: m 2^-24 */
        const float f = (float)m * (1.0f / 16777216.0f);
        memcpy(&u, &f, sizeof u);
        u |= sign;
    } else if (e == 31) { /* inf, or NaN made quiet as the instructions do */
        u = sign | 0x7f800000u | (m ? 0x400000u : 0) | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t op_float_to_half(float x)
{
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
#else
    return op_float_to_half_soft(x);
#endif
}

static inline float op_half_to_float(uint16_t h)
{
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return op_half_to_float_soft(h);
#endif
}

/* p[0..m) halves widened, 1 <= m <= 16, zeros in the other lanes; reads nothing past p + m */
static inline op_vf16 op_load_half_first(const uint16_t *p, int m)
{
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    const __m256i h = m == 16 ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16((__mmask16)((1u << m) - 1), p);
    return (op_vf16)_mm512_cvtph_ps(h);
#else
    op_vf16 v = {0};
    for (int i = 0; i < m; i++)
        v[i] = op_half_to_float(p[i]);
    return v;
#endif
}

/* v's first m lanes to p[0..m) for 1 <= m <= 16; writes nothing past p + m */
static inline void op_store_first(float *p, op_vf16 v, int m)
{
#if defined(__AVX512F__)
    if (m == 16) { /* a plain store: a masked one is not forwarded to the loads after it */
        memcpy(p, &v, sizeof v);
        return;
    }
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << m) - 1), (__m512)v);
#else
    memcpy(p, &v, (size_t)m * sizeof(float));
#endif
}

/* exp(x) for x <= 0 (softmax after subtracting the max), in a form loops over it
 * vectorize: round-to-nearest by the 1.5 * 2^23 trick, Cody-Waite reduction and Cephes'
 * degree-6 polynomial, within 2 ulp of expf; inputs below -87 give about 1e-38, not 0. */
static inline float op_exp_nonpositive(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t ti, si;
    memcpy(&ti, &t, sizeof ti);
    si = (ti - 0x4B400000 + 127) << 23; /* the integer n, moved into the exponent field */
    float scale;
    memcpy(&scale, &si, sizeof scale);
    return p * scale;
}

/* out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); rstd[N] is saved for backward. */
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D, float eps);
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int D);

/* out[N][O] = x[N][I] W[O][I]^T (+ bias[O]).  Overwrites out. */
void op_matmul_forward(float *out, const float *x, const float *W, const float *bias, int N, int n_in, int n_out);
/* Products on transposed weights T[in][pad16(out)] (src/model/ops_transposed.c): each
 * output element is one multiply-add chain over the inputs in order, so a row's result
 * does not depend on the other rows (sgemm's does).  The exact decoder and the exact
 * training forward compute through these. */
size_t op_transposed_floats(int rows, int cols);
void op_transpose_weights(float *T, const float *W, int rows, int cols);
void op_matmul_forward_t(float *out, const float *x, const float *T, const float *bias, int N, int n_in, int n_out);
/* All seven per-layer matrices and wcls of m, transposed into block (views in wt). */
size_t op_transposed_model_floats(const al_model *m);
void op_transpose_model(al_params *wt, float *block, const al_model *m);
/* LoRA: y += scale (x A^T) B^T on transposed adapters (t[i].A [in][pad16(rank)], t[i].B
 * [rank][pad16(out)]); u [N][rank] and z [N][out] are scratch. */
int op_lora_max_out(const al_lora *lo);
size_t op_lora_transposed_floats(const al_lora *lo);
void op_lora_transpose(al_lora_adapter *t, float *block, const al_lora *lo);
void op_lora_forward_t(float *y, const float *x, const float *At, const float *Bt, float scale, float *u, float *z,
                       int N, int in, int out, int rank);

/* Reduced-precision weights (al_weight_type).  The decoder's kernels widen the stored values
 * and the exact training forward transposes rounded floats; both go through these helpers,
 * so "rounded to the type, as floats" and "stored, then widened" are the same numbers. */
static inline uint16_t op_float_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the top payload bits, make it quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); /* round the low half to even */
}

static inline float op_bf16_to_float(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* int8 with one scale per output row: s = max|w| / 127 (0 for a row of zeros) */
static inline float op_int8_scale(const float *w, int n)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float a = w[i] < 0 ? -w[i] : w[i];
        amax = a > amax ? a : amax; /* NaN never wins */
    }
    return amax / 127.0f;
}

/* round-to-nearest-even(w / s) in [-127, 127]; 0 for a zero scale or a NaN quotient */
static inline int8_t op_int8_quantize(float w, float s)
{
    const float r = s > 0 ? w / s : 0.0f;
    if (!(r == r))
        return 0;
    if (r >= 127.0f || r <= -127.0f)
        return r > 0 ? 127 : -127;
    /* 1.5 * 2^23 pushes the fraction out of the mantissa: rounds to nearest, ties to even */
    const float m = 12582912.0f;
    return (int8_t)(int)((r + m) - m);
}

/* the stored value, as the kernels widen it: one float multiply */
static inline float op_int8_value(int8_t q, float s) { return (float)q * s; }

/* W [rows][cols] in place: each weight replaced by its value in type t (rows are outputs) */
void op_round_weights(float *W, int rows, int cols, al_weight_type t);
/* op_transpose_weights of W rounded to t (the exact training forward's copy) */
void op_transpose_weights_as(float *T, const float *W, int rows, int cols, al_weight_type t);
void op_transpose_model_as(al_params *wt, float *block, const al_model *m, al_weight_type t);
/* Packed storage of one matrix (rows outputs x cols inputs), transposed as T above:
 * f32: float [cols][pad16(rows)]; bf16: uint16 [cols][pad16(rows)]; int8: float scales
 * [pad16(rows)] (0 in the padding) then int8 [cols][pad16(rows)].  Sizes are whole 64-byte
 * lines, so packed matrices placed one after another stay aligned. */
size_t op_packed_bytes(int rows, int cols, al_weight_type t);
void op_pack_weights(void *P, const float *W, int rows, int cols, al_weight_type t);
/* The value the kernels use for weight (r, c) of a packed matrix (tests compare these with
 * op_round_weights' numbers). */
float op_packed_value(const void *P, int rows, int cols, int r, int c, al_weight_type t);
/* op_matmul_forward_t on a packed matrix: each weight widened to float (bf16: shifted into
 * the high half; int8: converted and multiplied by its output's scale) and then the float
 * kernel's multiply-add chain, so out equals op_matmul_forward_t on the values
 * op_round_weights gives, bit for bit.  Outside a parallel region the work is spread over
 * the threads, by row blocks or (few rows) by output tiles: the same chains either way. */
void op_matmul_forward_p(float *out, const float *x, const void *P, al_weight_type t, const float *bias, int N,
                         int n_in, int n_out);
/* A model's matrices packed in one block: layer 0's matrix of each kind (wq wk wv wo w1 w2
 * w3, as in al_params) and wcls, and the bytes from one layer's matrix to the next. */
enum { OP_M_wq, OP_M_wk, OP_M_wv, OP_M_wo, OP_M_w1, OP_M_w2, OP_M_w3, OP_M_wcls, OP_M_N };
typedef struct op_wpack {
    al_weight_type type;
    char *m[OP_M_N];
    size_t layer_bytes[OP_M_N];
} op_wpack;
size_t op_packed_model_bytes(const al_model *m, al_weight_type t);
void op_pack_model(op_wpack *pk, void *block, const al_model *m, al_weight_type t);
static inline const void *op_wpack_layer(const op_wpack *pk, int kind, int l)
{
    return pk->m[kind] + (size_t)l * pk->layer_bytes[kind];
}
/* dx (+)= dout W (accumulate_dx picks += or =); dW += dout^T x; dbias += colsum(dout).
 * dx, dW or dbias may be NULL when not wanted. */
void op_matmul_backward(float *dx, float *dW, float *dbias, const float *dout, const float *x, const float *W,
                        int N, int n_in, int n_out, int accumulate_dx);

/* Rotary tables: cos/sin[pos][head_dim/2], computed as run.c does (float powf, cosf, sinf). */
void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int head_dim, float theta);
/* Rotates n_heads vectors of head_dim per row in place; positions pos[N].  The backward
 * pass is the inverse rotation (transpose), applied in place to the gradient. */
void op_rope_forward(float *x, const int *pos, int N, int n_heads, int head_dim, const float *cos_t,
                     const float *sin_t, al_rope_layout layout);
void op_rope_backward(float *dx, const int *pos, int N, int n_heads, int head_dim, const float *cos_t,
                      const float *sin_t, al_rope_layout layout);

/* Causal grouped-query attention over B rows of T positions.
 * q[B*T][H*hd], k, v[B*T][KVH*hd]; out[B*T][H*hd]; att[B][H][T][T] saved probabilities.
 * seg_start[B*T] (or NULL): first position a query may attend to (packing). */
/* scratch: op_attention_scratch_floats(T, hd, threads) floats, for at most `threads`
 * threads (the caller's plan; the kernels use no more). */
size_t op_attention_scratch_floats(int T, int hd, int threads);
void op_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch, int threads);
/* The exact forward: the loop form at any head size, every query row through
 * op_attention_query_group, which the exact decoder calls too.  Saves att as the other does,
 * so op_attention_backward applies unchanged. */
void op_attention_forward_exact(float *out, float *att, const float *q, const float *k, const float *v,
                                const int *seg_start, int B, int T, int H, int KVH, int hd, float *scratch,
                                int threads);
/* One query row t over keys [s0, t] for the G query heads of one kv head, given the kv
 * head transposed (kt, vt: [hd][Tp], positions contiguous): head j's probabilities into
 * a + j * a_stride ([0, T): zeros outside [s0, t]), outputs into o[G][hd]; q is [G][hd].
 * Rounds the same for a row wherever it is computed (src/model/ops.c says how). */
void op_attention_query_group(float *o, float *a, size_t a_stride, const float *q, const float *kt, const float *vt,
                              int s0, int t, int T, int hd, int Tp, int G);
/* The same arithmetic on a decoding cache laid out in tiles: positions [16c, 16c + 16) of
 * dimension i at kt[c * 16 hd + i * 16 ..], keys [0, t] (so T = t + 1), the result equal to
 * op_attention_query_group's on the same numbers bit for bit.  A tile holds every dimension
 * of 16 positions, so a head's cache streams from memory as one run. */
#define OP_ATT_TILE 16
void op_attention_query_tiled(float *o, float *a, size_t a_stride, const float *q, const float *kt,
                              const float *vt, int t, int hd, int G);
/* The same on a cache of IEEE halves: equal to op_attention_query_tiled on the halves
 * widened to floats, bit for bit (only the loads differ). */
void op_attention_query_tiled_half(float *o, float *a, size_t a_stride, const float *q, const uint16_t *kt,
                                   const uint16_t *vt, int t, int hd, int G);
/* The same attention over the same tiles, rounded its own way and faster (exponentials
 * taken as the outputs need them, normalized once at the end): for decoding that need not
 * match training to the bit.  a receives the raw scores. */
void op_attention_query_fast(float *o, float *a, size_t a_stride, const float *q, const float *kt, const float *vt,
                             int t, int hd, int G);
void op_attention_query_fast_half(float *o, float *a, size_t a_stride, const float *q, const uint16_t *kt,
                                  const uint16_t *vt, int t, int hd, int G);
/* dq, dk and dv are overwritten. */
void op_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                           const float *k, const float *v, const int *seg_start, int B, int T, int H, int KVH,
                           int hd, float *scratch, int threads);

/* out = silu(h1) * h3 (gate, up). */
void op_swiglu_forward(float *out, const float *h1, const float *h3, size_t n);
/* dh1, dh3 overwritten. */
void op_swiglu_backward(float *dh1, float *dh3, const float *dout, const float *h1, const float *h3, size_t n);

/* logp[n] = logits[n][target] - logsumexp(logits[n]); 0 where target < 0. lse saved. */
void op_logprob_forward(float *logp, float *lse, const float *logits, const int *targets, int N, int V);
/* dlogits[n] = dlogp[n] * (onehot(target) - softmax(logits[n])); may alias logits. */
void op_logprob_backward(float *dlogits, const float *logits, const float *lse, const int *targets,
                         const float *dlogp, int N, int V);

void op_embedding_forward(float *out, const int *tokens, const float *table, int N, int D);
void op_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int D);

#endif
