/* GPT-2's operations (see ops_gpt2.h).  Sums over a row accumulate in double: LayerNorm's
 * statistics of a 768-wide row in float would cost digits the references keep. */
#include "ops_gpt2.h"
#include "ops.h"

#include <math.h>
#include <string.h>

void op_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                          int D, float eps)
{
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        double s = 0, ss = 0;
        for (int i = 0; i < D; i++)
            s += xr[i];
        const double mu = s / D;
        for (int i = 0; i < D; i++)
            ss += (xr[i] - mu) * (xr[i] - mu);
        const float m = (float)mu, r = (float)(1.0 / sqrt(ss / D + eps));
        float *o = out + (size_t)n * D;
        for (int i = 0; i < D; i++)
            o[i] = (xr[i] - m) * r * w[i] + b[i];
        if (mean)
            mean[n] = m;
        if (rstd)
            rstd[n] = r;
    }
}

/* With xhat = (x - mean) rstd and g = dout w:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)),  dw += dout xhat,  db += dout.
 * Rows run in parallel for dx; the weight and bias sums over rows run after, row by row
 * and vectorized over columns, so they come out the same for any thread count. */
void op_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *mean,
                           const float *rstd, const float *w, int N, int D)
{
#pragma omp parallel for schedule(static) if ((long)N * D >= 65536)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dr = dout + (size_t)n * D;
        const float m = mean[n], r = rstd[n];
        double sg = 0, sgx = 0;
        for (int i = 0; i < D; i++) {
            const float xhat = (xr[i] - m) * r, g = dr[i] * w[i];
            sg += g;
            sgx += (double)g * xhat;
        }
        const float mg = (float)(sg / D), mgx = (float)(sgx / D);
        float *dxr = dx + (size_t)n * D;
#pragma omp simd
        for (int i = 0; i < D; i++) {
            const float xhat = (xr[i] - m) * r;
            dxr[i] += r * (dr[i] * w[i] - mg - xhat * mgx);
        }
    }
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dr = dout + (size_t)n * D;
        const float m = mean[n], r = rstd[n];
#pragma omp simd
        for (int i = 0; i < D; i++) {
            dw[i] += dr[i] * ((xr[i] - m) * r);
            db[i] += dr[i];
        }
    }
}

#define GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f

/* tanh through one exponential of a non-positive argument, so the loops vectorize:
 * tanh|u| = (1 - e) / (1 + e) with e = exp(-2|u|); absolute error about 1e-7. */
static inline float tanh_vec(float u)
{
    const float e = op_exp_nonpositive(-2.0f * fabsf(u));
    const float t = (1.0f - e) / (1.0f + e);
    return copysignf(t, u);
}

void op_gelu_forward(float *out, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= (1u << 16))
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanh_vec(GELU_C * (v + GELU_A * v * v * v)));
    }
}

void op_gelu_backward(float *dx, const float *dout, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= (1u << 16))
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], t = tanh_vec(GELU_C * (v + GELU_A * v * v * v));
        const float du = GELU_C * (1.0f + 3.0f * GELU_A * v * v);
        dx[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

void op_position_forward(float *x, const float *wpe, const int *pos, int N, int T, int D)
{
    for (int n = 0; n < N; n++) {
        const float *p = wpe + (size_t)(pos ? pos[n] : n % T) * D;
        float *xr = x + (size_t)n * D;
        for (int i = 0; i < D; i++)
            xr[i] += p[i];
    }
}

void op_position_backward(float *dwpe, const float *dx, const int *pos, int N, int T, int D)
{
    for (int n = 0; n < N; n++) {
        float *g = dwpe + (size_t)(pos ? pos[n] : n % T) * D;
        const float *dr = dx + (size_t)n * D;
        for (int i = 0; i < D; i++)
            g[i] += dr[i];
    }
}

void op_bias_backward(float *db, const float *dout, int N, int n_out)
{
    for (int n = 0; n < N; n++) {
        const float *dr = dout + (size_t)n * n_out;
        for (int o = 0; o < n_out; o++)
            db[o] += dr[o];
    }
}
