/* Weight initialization for training from scratch (GPT-2 / nanoGPT style). */
#include <math.h>
#include <string.h>

#include "align/train.h"

static double uniform_open(uint64_t *rng)
{
    /* (0, 1): never 0, so log() below is finite */
    return ((double)(al_xorshift_u32(rng) >> 8) + 0.5) / 16777216.0;
}

static void fill_normal(float *w, size_t n, float std, uint64_t *rng)
{
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform_open(rng))), t = 2.0 * M_PI * uniform_open(rng);
        w[i] = (float)(r * cos(t)) * std;
        if (i + 1 < n)
            w[i + 1] = (float)(r * sin(t)) * std;
    }
}

void al_model_init_weights(al_model *m, uint64_t seed)
{
    uint64_t rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    const al_config *c = &m->cfg;
    int nt = al_tensor_layout(c, NULL, 0);
    al_tensor_desc d[nt > 0 ? nt : 1];
    al_tensor_layout(c, d, nt);
    const float std = 0.02f, resid_std = 0.02f / sqrtf(2.0f * (float)c->n_layers);
    for (int i = 0; i < nt; i++) {
        float *w = m->params + d[i].offset;
        size_t n = (size_t)d[i].rows * (size_t)(d[i].cols ? d[i].cols : 1);
        const char *k = d[i].kind;
        if (d[i].cols == 0) {
            bool bias = k[0] == 'b';
            for (size_t j = 0; j < n; j++)
                w[j] = bias ? 0.0f : 1.0f;
        } else {
            bool resid = !strcmp(k, "wo") || !strcmp(k, "w2");
            fill_normal(w, n, resid ? resid_std : std, &rng);
        }
    }
}
