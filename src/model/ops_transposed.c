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
    const al_config *c = &m->cfg;
    const al_params *w = &m->w;
    int rows[7], cols[7];
    layer_shapes(c, rows, cols);
    float **dst[7] = {&wt->wq, &wt->wk, &wt->wv, &wt->wo, &wt->w1, &wt->w2, &wt->w3};
    const float *src[7] = {w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3};
    float *p = block;
    for (int k = 0; k < 7; k++) {
        *dst[k] = p;
        size_t each = op_transposed_floats(rows[k], cols[k]);
#pragma omp parallel for schedule(static) if (m->n_params > (1u << 20))
        for (int l = 0; l < c->n_layers; l++)
            op_transpose_weights(p + (size_t)l * each, src[k] + (size_t)l * rows[k] * cols[k], rows[k], cols[k]);
        p += (size_t)c->n_layers * each;
    }
    wt->wcls = p;
    op_transpose_weights(p, w->wcls, c->vocab_size, c->dim);
}

/* out[N][n_out] = x[N][n_in] W^T (+ bias) with W given transposed as T[n_in][pad16(n_out)].
 * R rows by C outputs are accumulated in registers (R x C/16 vectors) per pass over n_in;
 * R <= 4 and C <= 64 are compile-time constants at each call. */
static inline __attribute__((always_inline)) void mm_tile(float *out, const float *x, const float *T,
                                                          const float *bias, int n_in, int n_out, int op, int n0,
                                                          int o0, const int R, const int C)
{
    const int NV = C / 16;
    op_vf16 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = (op_vf16){0};
    const float *xr = x + (size_t)n0 * n_in;
    for (int i = 0; i < n_in; i++) {
        const float *t = T + (size_t)i * op + o0;
        op_vf16 w[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            w[v] = op_load16(t + 16 * v);
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

/* One row block: tiles of 64 outputs, then 32, then 16; the same chains whatever the tile. */
static inline __attribute__((always_inline)) void matmul_block(float *out, const float *x, const float *T,
                                                               const float *bias, int n0, int n_in, int n_out,
                                                               const int R)
{
    const int op = pad16(n_out);
    int o0 = 0;
    for (; o0 + 64 <= op; o0 += 64)
        mm_tile(out, x, T, bias, n_in, n_out, op, n0, o0, R, 64);
    for (; o0 + 32 <= op; o0 += 32)
        mm_tile(out, x, T, bias, n_in, n_out, op, n0, o0, R, 32);
    for (; o0 < op; o0 += 16)
        mm_tile(out, x, T, bias, n_in, n_out, op, n0, o0, R, 16);
}

/* Rows [n0, n1): blocks of 4 rows, then single rows. */
static void matmul_rows(float *out, const float *x, const float *T, const float *bias, int n0, int n1, int n_in,
                        int n_out)
{
    for (; n0 + 4 <= n1; n0 += 4)
        matmul_block(out, x, T, bias, n0, n_in, n_out, 4);
    for (; n0 < n1; n0++)
        matmul_block(out, x, T, bias, n0, n_in, n_out, 1);
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
