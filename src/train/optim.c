/* AdamW, gradient norms and clipping, learning-rate schedules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/train.h"

/* ---- schedules ---- */

static const char *sched_names[] = {"constant", "linear", "cosine", "wsd"};

int al_schedule_parse(const char *name, al_schedule_kind *out)
{
    for (int k = 0; k < 4; k++) {
        if (!strcmp(name, sched_names[k])) {
            *out = (al_schedule_kind)k;
            return 0;
        }
    }
    return al_fail("unknown schedule '%s' (expected constant, linear, cosine or wsd)", name);
}

const char *al_schedule_name(al_schedule_kind k) { return sched_names[k]; }

float al_schedule_lr(const al_schedule *s, long step)
{
    if (s->warmup > 0 && step < s->warmup)
        return s->peak_lr * (float)(step + 1) / (float)s->warmup;
    double peak = s->peak_lr, min = s->min_lr;
    double span = (double)(s->total - s->warmup > 1 ? s->total - s->warmup : 1);
    double progress = (double)(step - s->warmup) / span;
    progress = progress < 0 ? 0 : progress > 1 ? 1 : progress;
    switch (s->kind) {
    case AL_SCHED_CONSTANT:
        return (float)peak;
    case AL_SCHED_LINEAR:
        return (float)(peak + (min - peak) * progress);
    case AL_SCHED_COSINE:
        return (float)(min + (peak - min) * 0.5 * (1.0 + cos(M_PI * progress)));
    case AL_SCHED_WSD: {
        long decay = (long)((double)s->wsd_decay * (double)s->total + 0.5);
        long start = s->total - decay;
        if (step < start || decay <= 0)
            return (float)peak;
        double p = (double)(step - start) / (double)decay;
        p = p > 1 ? 1 : p;
        return (float)(peak + (min - peak) * p);
    }
    }
    return (float)peak;
}

/* ---- AdamW ---- */

al_adamw_opts al_adamw_defaults(void)
{
    return (al_adamw_opts){.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
}

int al_adamw_init(al_adamw *opt, const al_model *m, const al_adamw_opts *o)
{
    memset(opt, 0, sizeof *opt);
    opt->o = *o;
    opt->n = m->n_params;
    opt->m = al_alloc(2 * opt->n * sizeof(float));
    opt->decay = al_alloc(opt->n);
    if (!opt->m || !opt->decay) {
        al_adamw_free(opt);
        return -1;
    }
    opt->v = opt->m + opt->n;
    int nt = al_tensor_layout(&m->cfg, NULL, 0);
    al_tensor_desc *d = malloc((size_t)nt * sizeof *d);
    if (!d) {
        al_adamw_free(opt);
        return al_fail("out of memory");
    }
    al_tensor_layout(&m->cfg, d, nt);
    for (int i = 0; i < nt; i++)
        if (d[i].cols > 0) /* matrices decay; norm weights and biases do not */
            memset(opt->decay + d[i].offset, 1, (size_t)d[i].rows * (size_t)d[i].cols);
    free(d);
    return 0;
}

int al_adamw_init_block(al_adamw *opt, size_t n, const uint8_t *decay, const al_adamw_opts *o)
{
    memset(opt, 0, sizeof *opt);
    opt->o = *o;
    opt->n = n;
    opt->m = al_alloc((n ? 2 * n : 1) * sizeof(float));
    opt->decay = al_alloc(n ? n : 1);
    if (!opt->m || !opt->decay) {
        al_adamw_free(opt);
        return -1;
    }
    opt->v = opt->m + n;
    if (decay)
        memcpy(opt->decay, decay, n);
    else
        memset(opt->decay, 1, n);
    return 0;
}

/* torch.optim.AdamW's arithmetic, step for step, so PyTorch runs are comparable. */
void al_adamw_step(al_adamw *opt, float *p, const float *g, float lr)
{
    opt->t++;
    const float b1 = opt->o.beta1, b2 = opt->o.beta2, eps = opt->o.eps;
    const double bc1 = 1.0 - pow((double)b1, (double)opt->t), bc2 = 1.0 - pow((double)b2, (double)opt->t);
    const float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float keep = (float)(1.0 - (double)lr * (double)opt->o.weight_decay);
    float *m = opt->m, *v = opt->v;
    const uint8_t *decay = opt->decay;
    const size_t n = opt->n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float pi = decay[i] ? p[i] * keep : p[i];
        m[i] = m[i] * b1 + (1.0f - b1) * g[i];
        v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * (m[i] / denom);
    }
}

void al_adamw_free(al_adamw *opt)
{
    al_free(opt->m);
    al_free(opt->decay);
    memset(opt, 0, sizeof *opt);
}

/* ---- gradient norm and clipping ---- */

/* Fixed chunks summed in order: the same result for any thread count. */
#define NORM_CHUNK 65536

double al_grad_norm(const float *g, size_t n)
{
    size_t chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double *part = malloc((chunks ? chunks : 1) * sizeof *part);
    if (!part) { /* fall back to one serial pass */
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += (double)g[i] * g[i];
        return sqrt(s);
    }
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++)
            s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < chunks; c++)
        s += part[c];
    free(part);
    return sqrt(s);
}

double al_grad_clip(float *g, size_t n, double max_norm)
{
    double norm = al_grad_norm(g, n);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
#pragma omp parallel for simd schedule(static) if (n > 65536)
            for (size_t i = 0; i < n; i++)
                g[i] *= c;
        }
    }
    return norm;
}
