/* Token sampling.  Two paths: llama2.c's run.c sampler reproduced bit for bit (so a seed
 * there gives the same story here), and the general chain
 *   repetition penalty -> temperature -> top-k -> softmax -> min-p -> top-p -> draw,
 * the order Hugging Face's generate() applies (temperature before the truncations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "align/model.h"
#include "ops.h"

typedef struct prob_index {
    float prob;
    int index;
} prob_index;

al_sampler_opts al_sampler_defaults(void)
{
    return (al_sampler_opts){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                             .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42, .llama2c = false};
}

int al_sampler_init(al_sampler *s, int vocab, const al_sampler_opts *o)
{
    memset(s, 0, sizeof *s);
    if (o->temperature < 0 || !isfinite(o->temperature))
        return al_fail("sampler: temperature must be >= 0, got %g", (double)o->temperature);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return al_fail("sampler: top_p must be in (0, 1], got %g", (double)o->top_p);
    if (!(o->min_p >= 0 && o->min_p < 1))
        return al_fail("sampler: min_p must be in [0, 1), got %g", (double)o->min_p);
    if (o->top_k < 0)
        return al_fail("sampler: top_k must be >= 0, got %d", o->top_k);
    if (!(o->repeat_penalty > 0))
        return al_fail("sampler: repeat_penalty must be > 0, got %g", (double)o->repeat_penalty);
    s->o = *o;
    s->vocab = vocab;
    /* xorshift must not start at 0; a zero seed is mapped to a fixed non-zero one. */
    s->rng = o->seed ? o->seed : 0x9E3779B97F4A7C15ull;
    /* (prob, index) pairs, then the gather's probabilities and indices apart (with a
     * vector's slack: the gather stores whole vectors) */
    s->scratch = malloc((size_t)vocab * sizeof(prob_index) + 2 * ((size_t)vocab + 16) * sizeof(float));
    s->seen = calloc((size_t)vocab, 1);
    if (!s->scratch || !s->seen) {
        al_sampler_free(s);
        return al_fail("out of memory");
    }
    return 0;
}

void al_sampler_free(al_sampler *s)
{
    free(s->scratch);
    free(s->seen);
    s->scratch = NULL;
    s->seen = NULL;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void softmax_inplace(float *x, int n)
{
    float maxv = x[0];
    for (int i = 1; i < n; i++)
        maxv = x[i] > maxv ? x[i] : maxv;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - maxv);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

/* A draw from softmax(x) without normalizing: vectorized exponentials (0 for -inf), then
 * the walk over their running sum to coin x total.  Rewrites x. */
static int draw_unnormalized(float *x, int n, float coin)
{
    float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
    for (int i = 0; i < n; i++)
        maxv = x[i] > maxv ? x[i] : maxv;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) {
        x[i] = x[i] == -INFINITY ? 0.0f : op_exp_nonpositive(x[i] - maxv);
        sum += x[i];
    }
    const float r = coin * sum;
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += x[i];
        if (r < cdf)
            return i;
    }
    return n - 1;
}

static int compare_desc(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    if (x->prob > y->prob)
        return -1;
    if (x->prob < y->prob)
        return 1;
    return 0;
}

/* Ties in index order, so the order never depends on the sorting algorithm. */
static int compare_desc_then_index(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* The same order; the nucleus usually leaves a few dozen tokens, which insertion sorts
 * faster than qsort's calls through a comparator. */
static void sort_desc_then_index(prob_index *pi, int m)
{
    if (m > 64) {
        qsort(pi, (size_t)m, sizeof *pi, compare_desc_then_index);
        return;
    }
    for (int i = 1; i < m; i++) {
        const prob_index x = pi[i];
        int j = i;
        for (; j > 0 && (pi[j - 1].prob < x.prob || (pi[j - 1].prob == x.prob && pi[j - 1].index > x.index)); j--)
            pi[j] = pi[j - 1];
        pi[j] = x;
    }
}

/* ---- llama2.c run.c ---- */

static int llama2c_mult(const float *p, int n, float coin)
{
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf)
            return i;
    }
    return n - 1;
}

/* run.c's nucleus sampling, including its pre-filter of tokens below (1-p)/(n-1) that
 * cannot be in the nucleus; qsort and the comparator match so ties order the same. */
static int llama2c_topp(const float *p, int n, float topp, prob_index *pi, float coin)
{
    int n0 = 0;
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    for (int i = 0; i < n; i++) {
        if (p[i] >= cutoff) {
            pi[n0].index = i;
            pi[n0].prob = p[i];
            n0++;
        }
    }
    qsort(pi, (size_t)n0, sizeof *pi, compare_desc);
    float cum = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cum += pi[i].prob;
        if (cum > topp) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += pi[i].prob;
        if (r < cdf)
            return pi[i].index;
    }
    return pi[last].index;
}

static int sample_llama2c(al_sampler *s, float *logits)
{
    int n = s->vocab;
    if (s->o.temperature == 0.0f)
        return argmax(logits, n);
    for (int i = 0; i < n; i++)
        logits[i] /= s->o.temperature;
    softmax_inplace(logits, n);
    float coin = al_xorshift_f32(&s->rng);
    if (s->o.top_p <= 0 || s->o.top_p >= 1)
        return llama2c_mult(logits, n, coin);
    return llama2c_topp(logits, n, s->o.top_p, s->scratch, coin);
}

/* ---- the general chain ---- */

/* A token that occurs several times in the window is penalized once; seen[] (all zero on
 * entry and on return) marks the ones already done. */
static void apply_repeat_penalty(float *logits, uint8_t *seen, const int *hist, int n_hist, int last_n,
                                 float penalty, int vocab)
{
    if (penalty == 1.0f || !hist || n_hist <= 0)
        return;
    int start = last_n > 0 && n_hist > last_n ? n_hist - last_n : 0;
    for (int i = start; i < n_hist; i++) {
        int t = hist[i];
        if (t < 0 || t >= vocab || seen[t])
            continue;
        seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
    }
    for (int i = start; i < n_hist; i++)
        if (hist[i] >= 0 && hist[i] < vocab)
            seen[hist[i]] = 0;
}

/* Puts the (e, i) with e >= cut and e > 0 into pi, in index order; returns how many.  The
 * gather scanned the whole vocabulary entry by entry and was most of the sampler's time;
 * with AVX-512 a vector's survivors are compressed in a register and stored whole into
 * the prob and idx arrays (a masked compress straight to memory is slow on some cores). */
static int gather_at_least(const float *e, int n, float cut, prob_index *pi, float *prob, int *idx)
{
    int m = 0, i = 0;
#ifdef __AVX512F__
    const __m512 vcut = _mm512_set1_ps(cut), zero = _mm512_setzero_ps();
    const __m512i step = _mm512_set1_epi32(16);
    __m512i vi = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= n; i += 16, vi = _mm512_add_epi32(vi, step)) {
        const __m512 v = _mm512_loadu_ps(e + i);
        const __mmask16 k = _mm512_cmp_ps_mask(v, vcut, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        if (!k)
            continue;
        _mm512_storeu_ps(prob + m, _mm512_maskz_compress_ps(k, v));
        _mm512_storeu_si512((void *)(idx + m), _mm512_maskz_compress_epi32(k, vi));
        m += __builtin_popcount((unsigned)k);
    }
#endif
    for (; i < n; i++) { /* without a branch: each entry written, kept or not */
        prob[m] = e[i];
        idx[m] = i;
        m += (e[i] >= cut) & (e[i] > 0.0f);
    }
    for (int j = 0; j < m; j++)
        pi[j] = (prob_index){prob[j], idx[j]};
    return m;
}

static int sample_chain(al_sampler *s, float *logits, const int *hist, int n_hist)
{
    const al_sampler_opts *o = &s->o;
    int n = s->vocab;
    apply_repeat_penalty(logits, s->seen, hist, n_hist, o->repeat_last_n, o->repeat_penalty, n);
    if (o->temperature == 0.0f)
        return argmax(logits, n);
    bool truncate = o->top_k > 0 || o->top_p < 1.0f || o->min_p > 0.0f;
    float coin = al_xorshift_f32(&s->rng);
    if (!truncate) {
        if (o->temperature != 1.0f)
            for (int i = 0; i < n; i++)
                logits[i] /= o->temperature;
        return draw_unnormalized(logits, n, coin);
    }
    /* Unnormalized probabilities e = exp(logit - max), vectorized; the largest is 1, so
     * min-p's floor is min_p itself.  Every cut below is a ratio, as with normalized ones.
     * The temperature's division shares the maximum's pass. */
    float maxv = -INFINITY;
    const float temp = o->temperature;
#pragma omp simd reduction(max : maxv)
    for (int i = 0; i < n; i++) {
        const float l = temp != 1.0f ? logits[i] / temp : logits[i];
        logits[i] = l;
        maxv = l > maxv ? l : maxv;
    }
    const float floor_e = o->min_p;
    float kept = 0.0f;
    int m = 0;
#pragma omp simd reduction(+ : kept, m)
    for (int i = 0; i < n; i++) {
        const float e = logits[i] == -INFINITY ? 0.0f : op_exp_nonpositive(logits[i] - maxv);
        logits[i] = e;
        const bool in = e >= floor_e && e > 0.0f;
        kept += in ? e : 0.0f;
        m += in;
    }
    float cut = floor_e;
    if (o->top_k == 0 && o->top_p < 1.0f && m > 1) {
        /* A token under (1 - top_p) kept / (m - 1) cannot be in the nucleus: all such
         * tokens together hold less than 1 - top_p of the mass, so the nucleus closes
         * before reaching them.  Sorting the few left instead of the whole vocabulary was
         * most of sampling's cost. */
        const float c = (1.0f - o->top_p) * kept / (float)(m - 1);
        cut = c > cut ? c : cut;
    }
    prob_index *pi = s->scratch;
    m = gather_at_least(logits, n, cut, pi, (float *)(pi + n), (int *)(pi + n) + n + 16);
    if (m == 0) /* every logit -inf */
        return argmax(logits, n);
    if (o->top_k == 0 && o->top_p < 1.0f && m > 8) {
        /* The same bound again over what is left: the tokens now cut hold low = kept - (the
         * survivors' mass), so a survivor under ((1 - top_p) kept - low) / (m - 1) cannot be
         * in the nucleus either.  A margin of 1e-4 of the mass covers the float sums' rounding
         * (the bound only has to be no higher than the exact one).  Usually it leaves a
         * handful to sort instead of a few dozen. */
        float above = 0.0f;
        for (int i = 0; i < m; i++)
            above += pi[i].prob;
        const float low = kept - above;
        float c2 = ((1.0f - o->top_p) * kept - low - 1e-4f * kept) / (float)(m - 1);
        c2 = c2 < 0.5f ? c2 : 0.5f; /* never past the best token (1), whatever the rounding */
        if (c2 > cut) {
            int k = 0;
            for (int i = 0; i < m; i++) {
                pi[k] = pi[i];
                k += pi[i].prob >= c2;
            }
            m = k;
        }
    }
    sort_desc_then_index(pi, m);
    if (o->top_k > 0 && m > o->top_k)
        m = o->top_k;
    /* Renormalize over the top-k survivors before the nucleus cut, as HF does. */
    if (o->top_k > 0) {
        kept = 0.0f;
        for (int i = 0; i < m; i++)
            kept += pi[i].prob;
    }
    if (o->top_p < 1.0f) {
        float cum = 0.0f;
        for (int i = 0; i < m; i++) {
            cum += pi[i].prob / kept;
            if (cum >= o->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    float mass = 0.0f;
    for (int i = 0; i < m; i++)
        mass += pi[i].prob;
    float r = coin * mass, cdf = 0.0f;
    for (int i = 0; i < m; i++) {
        cdf += pi[i].prob;
        if (r < cdf)
            return pi[i].index;
    }
    return pi[m - 1].index;
}

int al_sample(al_sampler *s, float *logits, const int *history, int n_history)
{
    if (s->o.llama2c)
        return sample_llama2c(s, logits);
    return sample_chain(s, logits, history, n_history);
}
