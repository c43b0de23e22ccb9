/* Preference losses of the DPO family, as TRL defines them, over sequence log-probs.
 * Each loss is written as a function of the (possibly length-normalized) log-probs
 * xc, xr (policy) and yc, yr (reference) and returns its value and its two partials;
 * the chain rule back to the summed log-probs is applied once, in al_pref_loss. */
#include <math.h>
#include <string.h>

#include "align/train.h"

static const char *const kind_names[AL_PREF_N_KINDS] = {
    "sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair",
    "apo_zero", "apo_down", "simpo", "cpo", "orpo",
};

int al_pref_loss_parse(const char *name, al_pref_loss_kind *out)
{
    for (int k = 0; name && k < AL_PREF_N_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (al_pref_loss_kind)k;
            return 0;
        }
    return al_fail("unknown preference loss '%s' (sigmoid, ipo, hinge, robust, bco_pair, sppo_hard, nca_pair, "
                   "apo_zero, apo_down, simpo, cpo, orpo)", name ? name : "(null)");
}

const char *al_pref_loss_name(al_pref_loss_kind k)
{
    return (int)k >= 0 && k < AL_PREF_N_KINDS ? kind_names[k] : "?";
}

bool al_pref_loss_reference_free(al_pref_loss_kind k)
{
    return k == AL_PREF_SIMPO || k == AL_PREF_CPO || k == AL_PREF_ORPO;
}

void al_pref_defaults(al_pref_opts *o)
{
    memset(o, 0, sizeof *o);
    o->beta = 0.1;
    o->simpo_gamma = 0.5;
}

/* ---- stable scalar helpers ---- */
static double sigm(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double logsigm(double x) /* log(sigmoid(x)) */
{
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

static double dsigm(double x) /* sigmoid'(x) = sigmoid(x) sigmoid(-x) */
{
    return sigm(x) * sigm(-x);
}

static double log1mexp(double x) /* log(1 - exp(x)), x < 0 */
{
    return x > -M_LN2 ? log(-expm1(x)) : log1p(-exp(x));
}

/* The smoothed sigmoid loss of z = beta * logits and its derivative in z:
 *   L = -(1 - ls) logsigmoid(z) - ls logsigmoid(-z). */
static void sigmoid_ls(double z, double ls, double *L, double *dz)
{
    *L = -(1 - ls) * logsigm(z) - ls * logsigm(-z);
    *dz = -(1 - ls) * sigm(-z) + ls * sigm(z);
}

/* The preference term alone (no NLL): L and dL/dxc, dL/dxr. */
static void pref_term(al_pref_loss_kind k, const al_pref_opts *o, double xc, double xr, double yc, double yr,
                      double *L, double *gc, double *gr)
{
    const double b = o->beta, ls = o->label_smoothing;
    const double a = xc - yc, r = xr - yr; /* chosen / rejected log-ratios */
    const double h = a - r;                /* DPO logits */
    double dz = 0, dc = 0, dr = 0;
    switch (k) {
    case AL_PREF_SIGMOID:
        sigmoid_ls(b * h, ls, L, &dz);
        dc = b * dz, dr = -b * dz;
        break;
    case AL_PREF_CPO:
        sigmoid_ls(b * (xc - xr), ls, L, &dz);
        dc = b * dz, dr = -b * dz;
        break;
    case AL_PREF_SIMPO:
        sigmoid_ls(b * (xc - xr - o->simpo_gamma / b), ls, L, &dz);
        dc = b * dz, dr = -b * dz;
        break;
    case AL_PREF_ROBUST: {
        double z = b * h;
        *L = (-(1 - ls) * logsigm(z) + ls * logsigm(-z)) / (1 - 2 * ls);
        dz = (-(1 - ls) * sigm(-z) - ls * sigm(z)) / (1 - 2 * ls);
        dc = b * dz, dr = -b * dz;
        break;
    }
    case AL_PREF_HINGE: {
        double z = b * h;
        *L = z < 1 ? 1 - z : 0;
        dz = z < 1 ? -1 : 0;
        dc = b * dz, dr = -b * dz;
        break;
    }
    case AL_PREF_IPO: {
        double d = h - 1 / (2 * b);
        *L = d * d;
        dc = 2 * d, dr = -2 * d;
        break;
    }
    case AL_PREF_BCO_PAIR: {
        double uc = b * a - o->bco_delta, ur = b * r - o->bco_delta;
        *L = -logsigm(uc) - logsigm(-ur);
        dc = -b * sigm(-uc), dr = b * sigm(ur);
        break;
    }
    case AL_PREF_SPPO_HARD: {
        double dca = a - 0.5 / b, drb = r + 0.5 / b;
        *L = dca * dca + drb * drb;
        dc = 2 * dca, dr = 2 * drb;
        break;
    }
    case AL_PREF_NCA_PAIR: {
        double cr = b * a, rr = b * r;
        *L = -logsigm(cr) - 0.5 * logsigm(-cr) - 0.5 * logsigm(-rr);
        dc = b * (-sigm(-cr) + 0.5 * sigm(cr));
        dr = b * 0.5 * sigm(rr);
        break;
    }
    case AL_PREF_APO_ZERO:
        *L = (1 - sigm(b * a)) + sigm(b * r);
        dc = -b * dsigm(b * a), dr = b * dsigm(b * r);
        break;
    case AL_PREF_APO_DOWN:
        *L = sigm(b * a) + (1 - sigm(b * h));
        dc = b * dsigm(b * a) - b * dsigm(b * h);
        dr = b * dsigm(b * h);
        break;
    case AL_PREF_ORPO: {
        double lo = (xc - xr) - (log1mexp(xc) - log1mexp(xr));
        *L = -b * logsigm(lo);
        double dlo = -b * sigm(-lo);
        dc = dlo * (-1 / expm1(xc)); /* d lo / d xc = 1 / (1 - e^xc) */
        dr = dlo * (1 / expm1(xr));  /* d lo / d xr = -1 / (1 - e^xr) */
        break;
    }
    default:
        *L = NAN;
        break;
    }
    *gc = dc, *gr = dr;
}

static bool normalizes(al_pref_loss_kind k, const al_pref_opts *o)
{
    return o->length_normalize || k == AL_PREF_IPO || k == AL_PREF_SIMPO || k == AL_PREF_ORPO;
}

static int check_inputs(al_pref_loss_kind k, const al_pref_opts *o, const al_pref_pair *p, const al_pref_out *out)
{
    if (!o || !p || !out)
        return al_fail("preference loss: NULL argument");
    if ((int)k < 0 || k >= AL_PREF_N_KINDS)
        return al_fail("preference loss: unknown kind %d", (int)k);
    if (!(o->beta > 0) || !isfinite(o->beta))
        return al_fail("%s: beta must be > 0 (got %g)", kind_names[k], o->beta);
    if (!(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        return al_fail("%s: label_smoothing must be in [0, 1] (got %g)", kind_names[k], o->label_smoothing);
    if (k == AL_PREF_ROBUST && !(o->label_smoothing < 0.5))
        return al_fail("robust: label_smoothing must be < 0.5 (got %g)", o->label_smoothing);
    if (!(o->rpo_alpha >= 0) || !isfinite(o->rpo_alpha) || !isfinite(o->simpo_gamma) || !isfinite(o->bco_delta))
        return al_fail("%s: rpo_alpha, simpo_gamma and bco_delta must be finite (rpo_alpha >= 0)", kind_names[k]);
    if (p->nc <= 0 || p->nr <= 0)
        return al_fail("%s: response token counts must be > 0 (got %d, %d)", kind_names[k], p->nc, p->nr);
    if (!(p->label >= 0 && p->label <= 1))
        return al_fail("%s: label must be a probability in [0, 1] (got %g)", kind_names[k], p->label);
    if (!isfinite(p->pc) || !isfinite(p->pr) ||
        (!al_pref_loss_reference_free(k) && (!isfinite(p->rc) || !isfinite(p->rr))))
        return al_fail("%s: log-probs must be finite", kind_names[k]);
    if (k == AL_PREF_ORPO && !(p->pc < 0 && p->pr < 0))
        return al_fail("orpo: log-probs must be < 0 (got %g, %g)", p->pc, p->pr);
    return 0;
}

int al_pref_loss(al_pref_loss_kind k, const al_pref_opts *o, const al_pref_pair *p, al_pref_out *out)
{
    if (check_inputs(k, o, p, out))
        return -1;
    const bool ref_free = al_pref_loss_reference_free(k);
    const double sc = normalizes(k, o) ? 1.0 / p->nc : 1.0, sr = normalizes(k, o) ? 1.0 / p->nr : 1.0;
    const double xc = p->pc * sc, xr = p->pr * sr;
    const double yc = ref_free ? 0 : p->rc * sc, yr = ref_free ? 0 : p->rr * sr;

    double L, gc, gr;
    pref_term(k, o, xc, xr, yc, yr, &L, &gc, &gr);
    if (p->label < 1) { /* p L(c, r) + (1 - p) L(r, c) */
        double L2, gc2, gr2, w = p->label;
        pref_term(k, o, xr, xc, yr, yc, &L2, &gc2, &gr2);
        L = w * L + (1 - w) * L2;
        double nc_ = w * gc + (1 - w) * gr2, nr_ = w * gr + (1 - w) * gc2;
        gc = nc_, gr = nr_;
    }
    out->loss = L;
    out->d_pc = gc * sc;
    out->d_pr = gr * sr;

    /* NLL of chosen, per token: ORPO always (weight 1), any loss with rpo_alpha */
    out->nll = -p->pc / p->nc;
    double nll_w = (k == AL_PREF_ORPO ? 1.0 : 0.0) + o->rpo_alpha;
    if (nll_w != 0) {
        out->loss += nll_w * out->nll;
        out->d_pc += -nll_w / p->nc;
    }

    out->reward_chosen = o->beta * (xc - yc);
    out->reward_rejected = o->beta * (xr - yr);
    out->logp_chosen = xc;
    out->logp_rejected = xr;
    if (!isfinite(out->loss) || !isfinite(out->d_pc) || !isfinite(out->d_pr))
        return al_fail("%s: loss or gradient is not finite", kind_names[k]);
    return 0;
}

int al_pref_loss_mix(int n, const al_pref_loss_kind *kinds, const double *weights, const al_pref_opts *o,
                     const al_pref_pair *p, al_pref_out *out)
{
    if (n <= 0 || !kinds || !o || !out)
        return al_fail("preference loss mix: needs at least one loss");
    al_pref_opts oi = *o;
    oi.rpo_alpha = 0;
    al_pref_out acc = {0};
    for (int i = 0; i < n; i++) {
        al_pref_out one;
        if (al_pref_loss(kinds[i], &oi, p, &one))
            return -1;
        double w = weights ? weights[i] : 1.0;
        if (!isfinite(w))
            return al_fail("preference loss mix: weight %d is not finite", i);
        if (i == 0)
            acc = one, acc.loss = acc.d_pc = acc.d_pr = 0;
        acc.loss += w * one.loss;
        acc.d_pc += w * one.d_pc;
        acc.d_pr += w * one.d_pr;
    }
    if (o->rpo_alpha != 0) {
        acc.loss += o->rpo_alpha * acc.nll;
        acc.d_pc += -o->rpo_alpha / p->nc;
    }
    *out = acc;
    return 0;
}

void al_bco_running_update(al_bco_running *r, double x)
{
    r->count += 1;
    r->mean += (x - r->mean) / r->count;
}

int al_kto_loss(const al_pref_opts *o, double logp, double ref_logp, bool desirable, double z0, double lambda_d,
                double lambda_u, double *loss, double *dlogp)
{
    if (!o || !loss || !dlogp)
        return al_fail("kto: NULL argument");
    if (!(o->beta > 0) || !isfinite(o->beta))
        return al_fail("kto: beta must be > 0 (got %g)", o->beta);
    if (!isfinite(logp) || !isfinite(ref_logp) || !isfinite(z0) || !isfinite(lambda_d) || !isfinite(lambda_u))
        return al_fail("kto: inputs must be finite");
    const double b = o->beta, logr = logp - ref_logp;
    if (desirable) {
        double u = b * (logr - z0);
        *loss = lambda_d * (1 - sigm(u));
        *dlogp = -lambda_d * b * dsigm(u);
    } else {
        double u = b * (z0 - logr);
        *loss = lambda_u * (1 - sigm(u));
        *dlogp = lambda_u * b * dsigm(u);
    }
    return 0;
}

double al_kto_z0(const double *policy_kl_logps, const double *ref_kl_logps, int n)
{
    if (n <= 0)
        return 0;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += policy_kl_logps[i] - ref_kl_logps[i];
    double z = s / n;
    return z > 0 ? z : 0;
}

void al_pref_metrics_compute(const al_pref_out *outs, int n, al_pref_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (n <= 0)
        return;
    for (int i = 0; i < n; i++) {
        const al_pref_out *o = &outs[i];
        m->rewards_chosen += o->reward_chosen;
        m->rewards_rejected += o->reward_rejected;
        m->rewards_accuracies += o->reward_chosen > o->reward_rejected ? 1.0 : 0.0;
        m->rewards_margins += o->reward_chosen - o->reward_rejected;
        m->logps_chosen += o->logp_chosen;
        m->logps_rejected += o->logp_rejected;
        m->loss += o->loss;
    }
    m->rewards_chosen /= n, m->rewards_rejected /= n, m->rewards_accuracies /= n, m->rewards_margins /= n;
    m->logps_chosen /= n, m->logps_rejected /= n, m->loss /= n;
}

/* Reward models (TRL RewardTrainer): Bradley-Terry with a margin and a soft label, plus
 * the centering term.  d loss / d d = sigmoid(d) - p. */
int al_rm_loss(double r_chosen, double r_rejected, double margin, double label, double center, double *loss,
               double *d_chosen, double *d_rejected)
{
    if (!(label >= 0 && label <= 1))
        return al_fail("reward loss: label %g is not a probability", label);
    const double d = r_chosen - r_rejected - margin, s = r_chosen + r_rejected;
    *loss = -(label * logsigm(d) + (1 - label) * logsigm(-d)) + center * s * s;
    const double dd = sigm(d) - label;
    *d_chosen = dd + 2 * center * s;
    *d_rejected = -dd + 2 * center * s;
    return 0;
}
