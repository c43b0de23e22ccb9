/* Soft preference labels from the judge's logits, and what is done with them. */
#include <math.h>

#include "align/cai.h"
#include "align/core.h"

double al_cai_soft_label(const float *logits, int vocab, int token_a, int token_b)
{
    if (!logits || token_a < 0 || token_b < 0 || token_a >= vocab || token_b >= vocab || token_a == token_b) {
        al_fail("soft label: option tokens %d and %d must be two different tokens of a %d-token vocabulary", token_a,
                token_b, vocab);
        return NAN;
    }
    /* P(A) / (P(A) + P(B)) = 1 / (1 + e^(b - a)): the softmax's other terms cancel */
    double d = (double)logits[token_b] - (double)logits[token_a];
    if (isnan(d)) {
        al_fail("soft label: the option logits are not numbers");
        return NAN;
    }
    return d >= 0 ? exp(-d) / (1 + exp(-d)) : 1 / (1 + exp(d));
}

double al_cai_clamp_label(double p, double lo, double hi)
{
    if (isnan(p) || !(lo <= hi))
        return NAN;
    return p < lo ? lo : p > hi ? hi : p;
}

double al_cai_ensemble(const double *labels, int n)
{
    if (!labels || n <= 0)
        return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(labels[i]))
            return NAN;
        s += labels[i];
    }
    return s / n;
}

double al_cai_unswap(double p_swapped) { return 1 - p_swapped; }

int al_cai_swap_consistent(double p, double p_swapped)
{
    double q = al_cai_unswap(p_swapped);
    return (p > 0.5 && q > 0.5) || (p < 0.5 && q < 0.5);
}
