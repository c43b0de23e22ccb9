/* The operations GPT-2's layout adds to a Llama block: LayerNorm with a bias, the tanh
 * approximation of GELU, learned position embeddings, and biases on every projection.
 * Shapes as in ops.h: N rows, row-major.  Forward functions save what their backward
 * needs; backward functions accumulate (+=) into every gradient.  Each is checked against
 * finite differences in tests/test_ops.c. */
#ifndef ALIGN_MODEL_OPS_GPT2_H
#define ALIGN_MODEL_OPS_GPT2_H

#include <stddef.h>

/* out = (x - mean) rstd w + b per row; mean[N] and rstd[N] saved (may be NULL when no
 * backward follows).  The variance is the biased one over D, as torch.nn.LayerNorm. */
void op_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                          int D, float eps);
void op_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *mean,
                           const float *rstd, const float *w, int N, int D);
/* GELU, tanh form (GPT-2's "gelu_new", torch's approximate="tanh"); out may be x */
void op_gelu_forward(float *out, const float *x, size_t n);
void op_gelu_backward(float *dx, const float *dout, const float *x, size_t n);
/* x[i] += wpe[pos[i]] (pos NULL: i mod T, with T the row length) */
void op_position_forward(float *x, const float *wpe, const int *pos, int N, int T, int D);
void op_position_backward(float *dwpe, const float *dx, const int *pos, int N, int T, int D);
/* db[o] += sum over rows of dout[n][o] */
void op_bias_backward(float *db, const float *dout, int N, int n_out);

#endif
