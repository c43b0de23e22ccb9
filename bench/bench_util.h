/* Pieces the benchmark programs share. */
#ifndef ALIGN_BENCH_UTIL_H
#define ALIGN_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "align/model.h"

static inline int bench_argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* for qsort of doubles, ascending */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* llama2.c's stories42M shape with random weights (58.1M parameters, above the decoder's 8M
 * line, so decoding multiplies through sgemm or the packed copies); exits on failure. */
static inline void bench_large_model(al_model *m, int seq_len)
{
    const al_config c = {.dim = 512, .hidden_dim = 1376, .n_layers = 8, .n_heads = 8, .n_kv_heads = 8,
                         .head_dim = 64, .vocab_size = 32000, .seq_len = seq_len, .norm_eps = 1e-5f,
                         .rope_theta = 10000.0f, .rope = AL_ROPE_HALF, .tied_embeddings = false, .bos_id = 1,
                         .eos_id = 2};
    if (al_model_init(m, &c)) {
        fprintf(stderr, "bench: large model: %s\n", al_errmsg());
        exit(1);
    }
    uint64_t st = 42;
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (al_xorshift_f32(&st) * 2.0f - 1.0f) * 0.05f;
    for (size_t i = 0; i < (size_t)c.n_layers * c.dim; i++)
        m->w.rms_att[i] = m->w.rms_ffn[i] = 1.0f;
    for (int i = 0; i < c.dim; i++)
        m->w.rms_final[i] = 1.0f;
}

#endif
