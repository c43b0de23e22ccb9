/* The arithmetic of online RL, free of models: KL estimators, GAE and returns, whitening,
 * group advantages, the clipped surrogate and value losses, loss aggregation and the
 * adaptive KL controller.  Each is checked on hand-computed values and against finite
 * differences in tests/test_rl_math.c. */
#include <math.h>
#include <string.h>

#include "align/rl.h"

static const char *const kl_names[] = {"k1", "k2", "k3"};

int al_kl_parse(const char *name, al_kl_kind *out)
{
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, kl_names[k]))
            return *out = (al_kl_kind)k, 0;
    return al_fail("unknown KL estimator '%s' (expected k1, k2 or k3)", name);
}

const char *al_kl_name(al_kl_kind k) { return (unsigned)k < 3 ? kl_names[k] : "?"; }

double al_kl_estimate(al_kl_kind k, double logp, double ref_logp)
{
    const double d = ref_logp - logp;
    switch (k) {
    case AL_KL_K1:
        return -d;
    case AL_KL_K2:
        return 0.5 * d * d;
    default:
        return expm1(d) - d;
    }
}

double al_kl_estimate_grad(al_kl_kind k, double logp, double ref_logp)
{
    const double d = ref_logp - logp; /* dd/dlogp = -1 */
    switch (k) {
    case AL_KL_K1:
        return 1.0;
    case AL_KL_K2:
        return -d;
    default:
        return 1.0 - exp(d);
    }
}

void al_gae(const double *rewards, const double *values, int n, double gamma, double lambda, double *advantages,
            double *returns)
{
    double next_value = 0, last = 0;
    for (int t = n - 1; t >= 0; t--) {
        double delta = rewards[t] + gamma * next_value - values[t];
        last = delta + gamma * lambda * last;
        advantages[t] = last;
        returns[t] = last + values[t];
        next_value = values[t];
    }
}

void al_discounted_returns(const double *rewards, int n, double gamma, double *returns)
{
    double g = 0;
    for (int t = n - 1; t >= 0; t--)
        returns[t] = g = rewards[t] + gamma * g;
}

/* mean and unbiased standard deviation */
static void moments(const double *x, int n, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

void al_whiten(double *x, int n, bool shift_mean)
{
    double mean, std;
    moments(x, n, &mean, &std);
    const double inv = 1.0 / sqrt(std * std + 1e-8);
    for (int i = 0; i < n; i++)
        x[i] = (x[i] - mean) * inv + (shift_mean ? 0 : mean);
}

int al_group_advantages(al_adv_kind k, const double *scores, int n_groups, int G, double *adv)
{
    if (k == AL_ADV_RLOO && G < 2)
        return al_fail("RLOO needs at least 2 generations per prompt (got %d)", G);
    double batch_mean, batch_std;
    moments(scores, n_groups * G, &batch_mean, &batch_std);
    for (int g = 0; g < n_groups; g++) {
        const double *r = scores + (size_t)g * G;
        double *a = adv + (size_t)g * G, mean, std;
        moments(r, G, &mean, &std);
        for (int i = 0; i < G; i++) {
            switch (k) {
            case AL_ADV_GRPO_GROUP:
                a[i] = (r[i] - mean) / (std + 1e-4);
                break;
            case AL_ADV_GRPO_BATCH:
                a[i] = (r[i] - mean) / (batch_std + 1e-4);
                break;
            case AL_ADV_RLOO:
                a[i] = r[i] - (mean * G - r[i]) / (G - 1);
                break;
            default: /* AL_ADV_GRPO_NONE, AL_ADV_MEAN_BASELINE */
                a[i] = r[i] - mean;
            }
        }
    }
    return 0;
}

void al_clipped_surrogate(double logp, double old_logp, double advantage, double eps_low, double eps_high,
                          al_clip_out *out)
{
    const double ratio = exp(logp - old_logp);
    const double clipped_ratio = ratio < 1 - eps_low ? 1 - eps_low : ratio > 1 + eps_high ? 1 + eps_high : ratio;
    const double unclipped = ratio * advantage, clipped = clipped_ratio * advantage;
    out->ratio = ratio;
    /* -min(unclipped, clipped): the clipped branch wins only where it is strictly smaller */
    out->clipped = clipped < unclipped;
    out->loss = -(out->clipped ? clipped : unclipped);
    out->dlogp = out->clipped ? 0.0 : -advantage * ratio;
    out->low = advantage < 0 && ratio < 1 - eps_low;
    out->high = advantage > 0 && ratio > 1 + eps_high;
}

double al_clipped_value_loss(double v, double old_v, double ret, double eps, double *dv, bool *clipped)
{
    double delta = v - old_v;
    bool inside = delta >= -eps && delta <= eps;
    double v_clip = fmin(fmax(v, old_v - eps), old_v + eps); /* exactly v inside the range */
    double a = (v - ret) * (v - ret), b = (v_clip - ret) * (v_clip - ret);
    *clipped = b > a;
    /* the clipped branch carries no gradient outside the trust region */
    *dv = *clipped ? (inside ? (v_clip - ret) : 0.0) : (v - ret);
    return 0.5 * (*clipped ? b : a);
}

static const char *const agg_names[] = {"grpo", "bnpo", "dr_grpo", "dapo"};

int al_loss_agg_parse(const char *name, al_loss_agg *out)
{
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, agg_names[k]))
            return *out = (al_loss_agg)k, 0;
    return al_fail("unknown loss type '%s' (expected grpo, bnpo, dr_grpo or dapo)", name);
}

const char *al_loss_agg_name(al_loss_agg a) { return (unsigned)a < 4 ? agg_names[a] : "?"; }

double al_loss_agg_weight(al_loss_agg a, int n_tokens, int n_seqs, long batch_tokens, int max_completion)
{
    if (n_seqs <= 0)
        return 0.0;
    switch (a) {
    case AL_AGG_GRPO:
        return n_tokens > 0 ? 1.0 / ((double)n_tokens * n_seqs) : 0.0;
    case AL_AGG_DR_GRPO:
        return max_completion > 0 ? 1.0 / ((double)n_seqs * max_completion) : 0.0;
    default: /* bnpo, dapo: per token of the batch they normalize over */
        return batch_tokens > 0 ? 1.0 / (double)batch_tokens : 0.0;
    }
}

void al_kl_ctl_update(al_kl_ctl *c, double kl, int n_steps)
{
    if (c->target <= 0 || c->horizon <= 0)
        return;
    double e = kl / c->target - 1;
    e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
    c->beta *= 1 + e * n_steps / c->horizon;
}
