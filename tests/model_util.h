/* Helpers for tests that build models in memory. */
#ifndef ALIGN_TESTS_MODEL_UTIL_H
#define ALIGN_TESTS_MODEL_UTIL_H

#include "align/model.h"
#include "test.h"

/* Parameters uniform in [-scale, scale) from *rng, norm weights around 1 so activations
 * keep their size through the layers. */
static inline void test_random_model(al_model *m, const al_config *c, uint64_t *rng, float scale)
{
    CHECK_OK(al_model_init(m, c));
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (al_xorshift_f32(rng) * 2.0f - 1.0f) * scale;
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < c->dim; i++)
            m->w.rms_att[l * c->dim + i] += 1.0f, m->w.rms_ffn[l * c->dim + i] += 1.0f;
    for (int i = 0; i < c->dim; i++)
        m->w.rms_final[i] += 1.0f;
}

#endif
