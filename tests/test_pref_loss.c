/* Preference losses (src/train/pref_loss.c): every loss against a golden value computed
 * here by hand (naive textbook math, the formula beside it), every gradient against
 * central finite differences (including margins of +-50), and the special properties:
 * DPO at policy == reference, IPO's minimum, hinge's flat region, RPO's NLL term,
 * reference-free SimPO/CPO/ORPO, KTO, soft labels, weighted combinations, metrics. */
#include "align/train.h"
#include "test.h"

/* naive, independent of the library */
static double sg(double x) { return 1.0 / (1.0 + exp(-x)); }
static double lsg(double x) { return log(sg(x)); }

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol) * fmax(1.0, fabs(b)))

static const al_pref_pair BASE = {.pc = -5, .pr = -7, .rc = -5.5, .rr = -6.5, .nc = 4, .nr = 5, .label = 1};

static al_pref_opts opts(double beta)
{
    al_pref_opts o;
    al_pref_defaults(&o);
    o.beta = beta;
    return o;
}

static al_pref_out run(al_pref_loss_kind k, const al_pref_opts *o, al_pref_pair p)
{
    al_pref_out out = {0};
    CHECK_OK(al_pref_loss(k, o, &p, &out));
    return out;
}

/* golden loss (and optionally gradient) at BASE */
static void golden(al_pref_loss_kind k, const al_pref_opts *o, double want, double want_dpc, double want_dpr)
{
    al_pref_out r = run(k, o, BASE);
    CHECKF(NEAR(r.loss, want, 1e-12), "%s: loss %.17g, want %.17g", al_pref_loss_name(k), r.loss, want);
    if (!isnan(want_dpc))
        CHECKF(NEAR(r.d_pc, want_dpc, 1e-12) && NEAR(r.d_pr, want_dpr, 1e-12), "%s: grad (%.17g, %.17g), want (%.17g, %.17g)",
               al_pref_loss_name(k), r.d_pc, r.d_pr, want_dpc, want_dpr);
}

static void test_golden(void)
{
    al_pref_opts o = opts(0.1);
    /* BASE: chosen log-ratio a = -5 - -5.5 = 0.5, rejected r = -7 - -6.5 = -0.5, logits h = a - r = 1 */

    /* sigmoid: L = -logsigmoid(beta h);  dL/dpc = -beta sigmoid(-beta h) = -dL/dpr */
    golden(AL_PREF_SIGMOID, &o, -lsg(0.1), -0.1 * sg(-0.1), 0.1 * sg(-0.1));
    /* sigmoid, label_smoothing ls = 0.2: L = -(1-ls) logsig(z) - ls logsig(-z), z = 0.1
     * dL/dz = -(1-ls) sig(-z) + ls sig(z) */
    al_pref_opts ls = o;
    ls.label_smoothing = 0.2;
    golden(AL_PREF_SIGMOID, &ls, -0.8 * lsg(0.1) - 0.2 * lsg(-0.1), 0.1 * (-0.8 * sg(-0.1) + 0.2 * sg(0.1)),
           -0.1 * (-0.8 * sg(-0.1) + 0.2 * sg(0.1)));
    /* robust: L = (-(1-ls) logsig(z) + ls logsig(-z)) / (1 - 2 ls) */
    golden(AL_PREF_ROBUST, &ls, (-0.8 * lsg(0.1) + 0.2 * lsg(-0.1)) / 0.6,
           0.1 * (-0.8 * sg(-0.1) - 0.2 * sg(0.1)) / 0.6, -0.1 * (-0.8 * sg(-0.1) - 0.2 * sg(0.1)) / 0.6);
    /* hinge: L = relu(1 - beta h) = 0.9;  dL/dpc = -beta */
    golden(AL_PREF_HINGE, &o, 0.9, -0.1, 0.1);
    /* ipo (TRL averages log-probs over tokens for ipo): xc = -5/4, xr = -7/5, yc = -5.5/4, yr = -6.5/5
     * h = (xc - xr) - (yc - yr) = 0.15 + 0.075 = 0.225;  L = (h - 1/(2 beta))^2 = (0.225 - 5)^2
     * dL/dpc = 2 (h - 5) / 4,  dL/dpr = -2 (h - 5) / 5 */
    golden(AL_PREF_IPO, &o, (0.225 - 5) * (0.225 - 5), 2 * (0.225 - 5) / 4, -2 * (0.225 - 5) / 5);
    /* bco_pair, delta = 0.02: L = -logsig(beta a - delta) - logsig(-(beta r - delta))
     *   = -logsig(0.03) - logsig(0.07);  dL/dpc = -beta sig(-0.03), dL/dpr = beta sig(-0.07) */
    al_pref_opts bo = o;
    bo.bco_delta = 0.02;
    golden(AL_PREF_BCO_PAIR, &bo, -lsg(0.03) - lsg(0.07), -0.1 * sg(-0.03), 0.1 * sg(-0.07));
    /* sppo_hard: L = (a - 0.5/beta)^2 + (r + 0.5/beta)^2 = (0.5-5)^2 + (-0.5+5)^2 = 40.5 */
    golden(AL_PREF_SPPO_HARD, &o, 40.5, 2 * (0.5 - 5), 2 * (-0.5 + 5));
    /* nca_pair: cw = beta a = 0.05, cl = beta r = -0.05
     * L = -logsig(cw) - 0.5 logsig(-cw) - 0.5 logsig(-cl) */
    golden(AL_PREF_NCA_PAIR, &o, -lsg(0.05) - 0.5 * lsg(-0.05) - 0.5 * lsg(0.05),
           0.1 * (-sg(-0.05) + 0.5 * sg(0.05)), 0.1 * 0.5 * sg(-0.05));
    /* apo_zero: L = 1 - sig(beta a) + sig(beta r);  sig' = sig (1 - sig) */
    golden(AL_PREF_APO_ZERO, &o, 1 - sg(0.05) + sg(-0.05), -0.1 * sg(0.05) * (1 - sg(0.05)),
           0.1 * sg(-0.05) * (1 - sg(-0.05)));
    /* apo_down: L = sig(beta a) + 1 - sig(beta h) */
    golden(AL_PREF_APO_DOWN, &o, sg(0.05) + 1 - sg(0.1),
           0.1 * sg(0.05) * (1 - sg(0.05)) - 0.1 * sg(0.1) * (1 - sg(0.1)), 0.1 * sg(0.1) * (1 - sg(0.1)));
    /* simpo (TRL CPOTrainer, averaged log-probs, no reference), gamma = 0.5:
     * logits = (xc - xr) - gamma/beta = (-1.25 + 1.4) - 5 = -4.85;  L = -logsig(beta logits) = -logsig(-0.485)
     * dL/dpc = -beta sig(0.485) / 4,  dL/dpr = +beta sig(0.485) / 5 */
    golden(AL_PREF_SIMPO, &o, -lsg(-0.485), -0.1 * sg(0.485) / 4, 0.1 * sg(0.485) / 5);
    /* cpo (TRL CPOTrainer "sigmoid", summed log-probs, no reference): L = -logsig(beta (pc - pr)) = -logsig(0.2) */
    golden(AL_PREF_CPO, &o, -lsg(0.2), -0.1 * sg(-0.2), 0.1 * sg(-0.2));
    /* orpo: c = -5/4, r = -7/5 (averaged); odds(x) = e^x / (1 - e^x); lor = log(odds(c) / odds(r))
     * L = -c (the chosen NLL per token) - beta logsig(lor) */
    double c = -1.25, r = -1.4;
    double odds_c = exp(c) / (1 - exp(c)), odds_r = exp(r) / (1 - exp(r)), lor = log(odds_c / odds_r);
    /* d lor / dc = 1 / (1 - e^c), d lor / dr = -1 / (1 - e^r) */
    golden(AL_PREF_ORPO, &o, 1.25 - 0.1 * lsg(lor), (-1 - 0.1 * sg(-lor) / (1 - exp(c))) / 4,
           (0.1 * sg(-lor) / (1 - exp(r))) / 5);
    /* the odds-ratio term alone, and the same computation through the library's log1p form */
    al_pref_out orr = run(AL_PREF_ORPO, &o, BASE);
    CHECK(NEAR((orr.loss - orr.nll) / 0.1, -lsg(lor), 1e-12) && NEAR(orr.nll, 1.25, 1e-15));
    CHECK(NEAR(orr.reward_chosen, 0.1 * c, 1e-15) && NEAR(orr.reward_rejected, 0.1 * r, 1e-15));

    /* rewards: beta (pc - rc) for the reference losses, beta * logp for the reference-free ones */
    al_pref_out s = run(AL_PREF_SIGMOID, &o, BASE);
    CHECK(NEAR(s.reward_chosen, 0.05, 1e-15) && NEAR(s.reward_rejected, -0.05, 1e-15));
    CHECK(s.logp_chosen == -5 && s.logp_rejected == -7);
    al_pref_out cp = run(AL_PREF_CPO, &o, BASE);
    CHECK(NEAR(cp.reward_chosen, -0.5, 1e-15) && NEAR(cp.reward_rejected, -0.7, 1e-15));
}

/* central differences of loss in pc and pr, h = 1e-5, relative tolerance 1e-6 */
static void fd_check(al_pref_loss_kind k, const al_pref_opts *o, al_pref_pair p, const char *what)
{
    al_pref_out r;
    if (al_pref_loss(k, o, &p, &r) != 0) {
        CHECKF(0, "%s %s: %s", al_pref_loss_name(k), what, al_errmsg());
        return;
    }
    CHECKF(isfinite(r.loss) && isfinite(r.d_pc) && isfinite(r.d_pr), "%s %s: not finite", al_pref_loss_name(k), what);
    const double h = 1e-5;
    for (int which = 0; which < 2; which++) {
        al_pref_pair a = p, b = p;
        double *va = which ? &a.pr : &a.pc, *vb = which ? &b.pr : &b.pc;
        *va += h, *vb -= h;
        al_pref_out ra, rb;
        CHECK_OK(al_pref_loss(k, o, &a, &ra));
        CHECK_OK(al_pref_loss(k, o, &b, &rb));
        double fd = (ra.loss - rb.loss) / (2 * h), g = which ? r.d_pr : r.d_pc;
        CHECKF(fabs(fd - g) <= 1e-6 * fabs(g) + 1e-9, "%s %s d_%s: analytic %.12g, finite difference %.12g",
               al_pref_loss_name(k), what, which ? "pr" : "pc", g, fd);
    }
}

static void test_gradients(void)
{
    /* points: BASE; margin +50 and -50 (logits h); lengths differ so normalization matters */
    const al_pref_pair pts[] = {
        BASE,
        {.pc = -10, .pr = -60, .rc = -30, .rr = -30, .nc = 3, .nr = 7, .label = 1},  /* h = +50 */
        {.pc = -60, .pr = -10, .rc = -30, .rr = -30, .nc = 7, .nr = 3, .label = 1},  /* h = -50 */
        {.pc = -3.3, .pr = -2.1, .rc = -4.0, .rr = -1.7, .nc = 2, .nr = 9, .label = 1},
    };
    const double betas[] = {0.1, 1.0};
    for (int k = 0; k < AL_PREF_N_KINDS; k++)
        for (size_t ip = 0; ip < sizeof pts / sizeof *pts; ip++)
            for (int ib = 0; ib < 2; ib++)
                for (int variant = 0; variant < 5; variant++) {
                    al_pref_opts o = opts(betas[ib]);
                    al_pref_pair p = pts[ip];
                    o.bco_delta = 0.03;
                    char what[64];
                    snprintf(what, sizeof what, "point %zu beta %g variant %d", ip, betas[ib], variant);
                    if (variant == 1)
                        o.label_smoothing = 0.1;
                    if (variant == 2)
                        o.rpo_alpha = 0.5;
                    if (variant == 3)
                        p.label = 0.7;
                    if (variant == 4)
                        o.length_normalize = true;
                    /* hinge has a kink at beta h = 1; keep off it (BASE at beta 1 sits exactly there) */
                    if (k == AL_PREF_HINGE && ip == 0 && ib == 1)
                        p.pc += 0.25;
                    fd_check((al_pref_loss_kind)k, &o, p, what);
                }
    /* stability: extreme margins stay finite */
    for (int k = 0; k < AL_PREF_N_KINDS; k++)
        for (double m = -500; m <= 500; m += 250) {
            al_pref_opts o = opts(1.0);
            al_pref_pair p = {.pc = -1 - (m < 0 ? -m : 0), .pr = -1 - (m > 0 ? m : 0), .rc = -1, .rr = -1,
                              .nc = 1, .nr = 1, .label = 0.9};
            al_pref_out r;
            CHECK_OK(al_pref_loss((al_pref_loss_kind)k, &o, &p, &r));
            CHECKF(isfinite(r.loss) && isfinite(r.d_pc) && isfinite(r.d_pr), "%s at margin %g",
                   al_pref_loss_name((al_pref_loss_kind)k), m);
        }
}

static void test_properties(void)
{
    al_pref_opts o = opts(0.1);
    /* sigmoid with policy == reference: ln 2, d_pc = -beta/2, d_pr = +beta/2 (the stories260K pair property) */
    al_pref_out r = run(AL_PREF_SIGMOID, &o, (al_pref_pair){-12.3, -45.6, -12.3, -45.6, 7, 19, 1});
    CHECK(NEAR(r.loss, log(2.0), 1e-15) && NEAR(r.d_pc, -0.05, 1e-15) && NEAR(r.d_pr, 0.05, 1e-15));
    CHECK(r.reward_chosen == 0 && r.reward_rejected == 0);

    /* ipo: minimum 0 at logits = 1/(2 beta) = 5 (one token each, so no normalization effect) */
    al_pref_pair at = {.pc = -2, .pr = -7, .rc = -1, .rr = -1, .nc = 1, .nr = 1, .label = 1};
    r = run(AL_PREF_IPO, &o, at);
    CHECK(fabs(r.loss) < 1e-24 && fabs(r.d_pc) < 1e-12 && fabs(r.d_pr) < 1e-12);
    for (double d = -0.5; d <= 0.5; d += 0.25)
        if (d != 0) {
            al_pref_pair q = at;
            q.pc += d;
            al_pref_out rq = run(AL_PREF_IPO, &o, q);
            CHECK(rq.loss > r.loss && NEAR(rq.loss, d * d, 1e-12)); /* (h - 5)^2 */
        }

    /* hinge: past the margin (beta h = 2 > 1) the loss and gradient are zero */
    r = run(AL_PREF_HINGE, &o, (al_pref_pair){-1, -21, -1, -1, 3, 3, 1});
    CHECK(r.loss == 0 && r.d_pc == 0 && r.d_pr == 0);

    /* RPO adds alpha * NLL = alpha * (-pc / nc) = 0.5 * 5/4, and -alpha/nc to d_pc */
    al_pref_opts ra = o;
    ra.rpo_alpha = 0.5;
    for (int k = 0; k < AL_PREF_N_KINDS; k++) {
        al_pref_out a = run((al_pref_loss_kind)k, &o, BASE), b = run((al_pref_loss_kind)k, &ra, BASE);
        CHECKF(NEAR(b.loss - a.loss, 0.5 * 1.25, 1e-12) && NEAR(b.d_pc - a.d_pc, -0.5 / 4, 1e-12) &&
                   b.d_pr == a.d_pr,
               "rpo on %s", al_pref_loss_name((al_pref_loss_kind)k));
    }

    /* SimPO / CPO / ORPO ignore the reference entirely */
    al_pref_pair other = BASE;
    other.rc = 123, other.rr = -1e300;
    for (int k = AL_PREF_SIMPO; k <= AL_PREF_ORPO; k++) {
        al_pref_out a = run((al_pref_loss_kind)k, &o, BASE), b = run((al_pref_loss_kind)k, &o, other);
        CHECK(a.loss == b.loss && a.d_pc == b.d_pc && a.d_pr == b.d_pr);
        CHECK(al_pref_loss_reference_free((al_pref_loss_kind)k));
    }
    CHECK(!al_pref_loss_reference_free(AL_PREF_SIGMOID));
    /* SimPO and ORPO average over tokens (doubling logp and length changes nothing but halves the
     * gradient); CPO sums unless length_normalize is set */
    al_pref_pair dbl = BASE;
    dbl.pc *= 2, dbl.pr *= 2, dbl.nc *= 2, dbl.nr *= 2;
    for (int k = AL_PREF_SIMPO; k <= AL_PREF_ORPO; k += 2) {
        al_pref_out a = run((al_pref_loss_kind)k, &o, BASE), b = run((al_pref_loss_kind)k, &o, dbl);
        CHECK(NEAR(a.loss, b.loss, 1e-14) && NEAR(b.d_pc, a.d_pc / 2, 1e-14) && NEAR(b.d_pr, a.d_pr / 2, 1e-14));
    }
    CHECK(!NEAR(run(AL_PREF_CPO, &o, BASE).loss, run(AL_PREF_CPO, &o, dbl).loss, 1e-6));
    al_pref_opts ln = o;
    ln.length_normalize = true;
    /* cpo normalized: L = -logsig(beta (-5/4 + 7/5)) */
    CHECK(NEAR(run(AL_PREF_CPO, &ln, BASE).loss, -lsg(0.1 * 0.15), 1e-12));
    /* sigmoid normalized: h = 0.225 (see ipo above) */
    CHECK(NEAR(run(AL_PREF_SIGMOID, &ln, BASE).loss, -lsg(0.1 * 0.225), 1e-12));
}

static void test_kto(void)
{
    al_pref_opts o = opts(0.1);
    double loss, g;
    /* desirable: L = lambda_d (1 - sig(beta (logr - z0))), logr = -5 + 5.5 = 0.5, z0 = 0.2 -> sig(0.03) */
    CHECK_OK(al_kto_loss(&o, -5, -5.5, true, 0.2, 1.0, 1.33, &loss, &g));
    CHECK(NEAR(loss, 1 - sg(0.03), 1e-15) && NEAR(g, -0.1 * sg(0.03) * (1 - sg(0.03)), 1e-15));
    /* undesirable: L = lambda_u (1 - sig(beta (z0 - logr))) = 1.33 (1 - sig(-0.03)) */
    CHECK_OK(al_kto_loss(&o, -5, -5.5, false, 0.2, 1.0, 1.33, &loss, &g));
    CHECK(NEAR(loss, 1.33 * (1 - sg(-0.03)), 1e-15) && NEAR(g, 1.33 * 0.1 * sg(-0.03) * (1 - sg(-0.03)), 1e-15));
    /* finite differences, both branches, including large log-ratios */
    const double lps[] = {-5, -60, 40};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 3; i++) {
            double l0, gg, lp, lm, h = 1e-5;
            CHECK_OK(al_kto_loss(&o, lps[i], -5.5, d, 0.2, 1.0, 1.33, &l0, &gg));
            CHECK_OK(al_kto_loss(&o, lps[i] + h, -5.5, d, 0.2, 1.0, 1.33, &lp, &gg));
            CHECK_OK(al_kto_loss(&o, lps[i] - h, -5.5, d, 0.2, 1.0, 1.33, &lm, &gg));
            CHECK_OK(al_kto_loss(&o, lps[i], -5.5, d, 0.2, 1.0, 1.33, &l0, &gg));
            double fd = (lp - lm) / (2 * h);
            CHECKF(fabs(fd - gg) <= 1e-6 * fabs(gg) + 1e-9 && isfinite(l0), "kto d=%d logp=%g: %g vs %g", d, lps[i],
                   gg, fd);
        }
    /* z0 = max(0, mean(policy - ref)) */
    const double pk[] = {-3, -4}, rk[] = {-4, -4.5}, rk2[] = {-1, -1};
    CHECK(NEAR(al_kto_z0(pk, rk, 2), 0.75, 1e-15));
    CHECK(al_kto_z0(pk, rk2, 2) == 0);
}

static void test_soft_labels(void)
{
    al_pref_opts o = opts(0.1);
    al_pref_pair swapped = {.pc = BASE.pr, .pr = BASE.pc, .rc = BASE.rr, .rr = BASE.rc, .nc = BASE.nr, .nr = BASE.nc,
                            .label = 1};
    for (int k = 0; k < AL_PREF_N_KINDS; k++) {
        al_pref_loss_kind kk = (al_pref_loss_kind)k;
        /* p = 0: the pair swapped (the NLL term, ORPO's, stays on the given chosen) */
        al_pref_pair p0 = BASE;
        p0.label = 0;
        al_pref_out a = run(kk, &o, p0), b = run(kk, &o, swapped);
        double nll_a = kk == AL_PREF_ORPO ? a.nll : 0, nll_b = kk == AL_PREF_ORPO ? b.nll : 0;
        CHECKF(NEAR(a.loss - nll_a, b.loss - nll_b, 1e-12), "%s p=0", al_pref_loss_name(kk));
        /* p = 0.5 symmetric in the two answers */
        al_pref_pair h1 = BASE, h2 = swapped;
        h1.label = h2.label = 0.5;
        a = run(kk, &o, h1), b = run(kk, &o, h2);
        nll_a = kk == AL_PREF_ORPO ? a.nll : 0, nll_b = kk == AL_PREF_ORPO ? b.nll : 0;
        CHECKF(NEAR(a.loss - nll_a, b.loss - nll_b, 1e-12), "%s p=0.5 symmetric", al_pref_loss_name(kk));
    }
    /* sigmoid, p = 1 equals the hard formula; p = 0.7: 0.7 (-logsig(z)) + 0.3 (-logsig(-z)), z = 0.1 */
    al_pref_pair p = BASE;
    CHECK(NEAR(run(AL_PREF_SIGMOID, &o, p).loss, -lsg(0.1), 1e-15));
    p.label = 0.7;
    al_pref_out r = run(AL_PREF_SIGMOID, &o, p);
    CHECK(NEAR(r.loss, -0.7 * lsg(0.1) - 0.3 * lsg(-0.1), 1e-14));
    /* dL/dz = -0.7 sig(-z) + 0.3 sig(z) */
    CHECK(NEAR(r.d_pc, 0.1 * (-0.7 * sg(-0.1) + 0.3 * sg(0.1)), 1e-14) && NEAR(r.d_pr, -r.d_pc, 1e-15));
    /* p = 0.5 at the reference point: loss ln 2 and zero gradient */
    r = run(AL_PREF_SIGMOID, &o, (al_pref_pair){-3, -4, -3, -4, 2, 2, 0.5});
    CHECK(NEAR(r.loss, log(2.0), 1e-15) && fabs(r.d_pc) < 1e-16 && fabs(r.d_pr) < 1e-16);
}

static void test_mix_and_metrics(void)
{
    al_pref_opts o = opts(0.1);
    o.rpo_alpha = 0.25;
    al_pref_opts o0 = o;
    o0.rpo_alpha = 0;
    al_pref_loss_kind ks[2] = {AL_PREF_SIGMOID, AL_PREF_IPO};
    double w[2] = {0.7, 0.3};
    al_pref_out m, s = run(AL_PREF_SIGMOID, &o0, BASE), i = run(AL_PREF_IPO, &o0, BASE);
    CHECK_OK(al_pref_loss_mix(2, ks, w, &o, &BASE, &m));
    /* L = 0.7 L_sigmoid + 0.3 L_ipo + rpo_alpha * 5/4 (once) */
    CHECK(NEAR(m.loss, 0.7 * s.loss + 0.3 * i.loss + 0.25 * 1.25, 1e-12));
    CHECK(NEAR(m.d_pc, 0.7 * s.d_pc + 0.3 * i.d_pc - 0.25 / 4, 1e-12) && NEAR(m.d_pr, 0.7 * s.d_pr + 0.3 * i.d_pr, 1e-12));
    CHECK(m.reward_chosen == s.reward_chosen);
    /* no weights: all 1 */
    CHECK_OK(al_pref_loss_mix(2, ks, NULL, &o0, &BASE, &m));
    CHECK(NEAR(m.loss, s.loss + i.loss, 1e-12));

    /* metrics: means; accuracy = share with reward_chosen > reward_rejected */
    al_pref_out outs[3] = {
        {.loss = 1, .reward_chosen = 0.5, .reward_rejected = 0.1, .logp_chosen = -1, .logp_rejected = -4},
        {.loss = 2, .reward_chosen = -0.2, .reward_rejected = 0.3, .logp_chosen = -2, .logp_rejected = -5},
        {.loss = 3, .reward_chosen = 0.3, .reward_rejected = 0.3, .logp_chosen = -3, .logp_rejected = -6},
    };
    al_pref_metrics mt;
    al_pref_metrics_compute(outs, 3, &mt);
    CHECK(NEAR(mt.rewards_chosen, 0.6 / 3, 1e-15) && NEAR(mt.rewards_rejected, 0.7 / 3, 1e-15));
    CHECK(NEAR(mt.rewards_accuracies, 1.0 / 3, 1e-15) && NEAR(mt.rewards_margins, -0.1 / 3, 1e-15));
    CHECK(mt.logps_chosen == -2 && mt.logps_rejected == -5 && mt.loss == 2);

    al_bco_running br = {0};
    al_bco_running_update(&br, 0.1);
    al_bco_running_update(&br, 0.3);
    CHECK(NEAR(br.mean, 0.2, 1e-15) && br.count == 2);
}

static void test_parse_and_errors(void)
{
    const char *names[] = {"sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair",
                           "apo_zero", "apo_down", "simpo", "cpo", "orpo"};
    for (int i = 0; i < 12; i++) {
        al_pref_loss_kind k;
        CHECK_OK(al_pref_loss_parse(names[i], &k));
        CHECK((int)k == i && strcmp(al_pref_loss_name(k), names[i]) == 0);
    }
    al_pref_loss_kind k;
    CHECK(al_pref_loss_parse("dpo", &k) != 0 && strstr(al_errmsg(), "dpo"));
    al_pref_opts o = opts(0.1);
    al_pref_out out;
    al_pref_pair p = BASE;
    p.nc = 0;
    CHECK(al_pref_loss(AL_PREF_SIGMOID, &o, &p, &out) != 0);
    p = BASE, p.label = 1.5;
    CHECK(al_pref_loss(AL_PREF_SIGMOID, &o, &p, &out) != 0);
    p = BASE, p.pc = 0;
    CHECK(al_pref_loss(AL_PREF_ORPO, &o, &p, &out) != 0 && strstr(al_errmsg(), "orpo"));
    o.label_smoothing = 0.5;
    CHECK(al_pref_loss(AL_PREF_ROBUST, &o, &BASE, &out) != 0);
    o = opts(0);
    CHECK(al_pref_loss(AL_PREF_SIGMOID, &o, &BASE, &out) != 0);
}

/* Reward model pairs: hand-computed values and finite differences. */
static void test_rm_loss(void)
{
    double l, dc, dr;
    /* d = 2 - 0.5 - 0.5 = 1: loss = -log sigmoid(1) = 0.31326168751822286, dloss/dd = sigmoid(1) - 1 */
    CHECK_OK(al_rm_loss(2.0, 0.5, 0.5, 1.0, 0.0, &l, &dc, &dr));
    CHECK(NEAR(l, 0.31326168751822286, 1e-15) && NEAR(dc, sg(1.0) - 1.0, 1e-15) && NEAR(dr, 1.0 - sg(1.0), 1e-15));
    /* soft label p = 0.25 at d = 0: loss = ln 2 whatever p, dloss/dd = 0.5 - 0.25 */
    CHECK_OK(al_rm_loss(0.3, 0.3, 0.0, 0.25, 0.0, &l, &dc, &dr));
    CHECK(NEAR(l, log(2.0), 1e-15) && NEAR(dc, 0.25, 1e-15) && NEAR(dr, -0.25, 1e-15));
    /* centering c = 0.01: + c (r_c + r_r)^2 = 0.01 * 0.36 at r_c = 0.3, r_r = 0.3 */
    double l2;
    CHECK_OK(al_rm_loss(0.3, 0.3, 0.0, 0.25, 0.01, &l2, &dc, &dr));
    CHECK(NEAR(l2 - l, 0.0036, 1e-15) && NEAR(dc, 0.25 + 0.012, 1e-15));
    CHECK(al_rm_loss(0, 0, 0, 1.5, 0, &l, &dc, &dr) != 0);
    const double pts[][5] = {{1.2, -0.7, 0.0, 1.0, 0.0}, {-3.0, 4.0, 1.0, 0.7, 0.05}, {40, -40, 0, 0.9, 0.001}};
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        const double *p = pts[k], h = 1e-6;
        CHECK_OK(al_rm_loss(p[0], p[1], p[2], p[3], p[4], &l, &dc, &dr));
        double a, b, x, y;
        al_rm_loss(p[0] + h, p[1], p[2], p[3], p[4], &a, &x, &y);
        al_rm_loss(p[0] - h, p[1], p[2], p[3], p[4], &b, &x, &y);
        CHECKF(fabs((a - b) / (2 * h) - dc) < 1e-6 * (1 + fabs(dc)), "rm d_chosen at point %zu", k);
        al_rm_loss(p[0], p[1] + h, p[2], p[3], p[4], &a, &x, &y);
        al_rm_loss(p[0], p[1] - h, p[2], p[3], p[4], &b, &x, &y);
        CHECKF(fabs((a - b) / (2 * h) - dr) < 1e-6 * (1 + fabs(dr)), "rm d_rejected at point %zu", k);
    }
}

int main(void)
{
    test_rm_loss();
    test_golden();
    test_gradients();
    test_properties();
    test_kto();
    test_soft_labels();
    test_mix_and_metrics();
    test_parse_and_errors();
    return test_report();
}
