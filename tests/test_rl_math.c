/* The arithmetic of online RL (src/rl/rl_math.c): GAE and discounted returns on sequences
 * worked by hand (the arithmetic written out beside each value) and the lambda = 1 / lambda
 * = 0 identities; whitening; every group-advantage kind on a hand-made score table; the
 * clipped surrogate in each of its regions (symmetric and asymmetric epsilons) and its
 * gradient against central finite differences; the clipped value loss likewise; the three
 * KL estimators on hand values, their gradients against finite differences, k3 >= 0 and the
 * exact expectations under small categorical distributions (k1 and k3 unbiased, k2 not);
 * the name parsers; loss-aggregation weights; the adaptive KL controller. */
#include "align/rl.h"
#include "test.h"

#define NEAR(a, b, tol) (fabs((a) - (double)(b)) <= (tol) * fmax(1.0, fabs((double)(b))))

/* splitmix64: the test's own random numbers, independent of the library */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) /* [0, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}
static double uniform(double lo, double hi) { return lo + (hi - lo) * urand(); }

static void check_vec(const char *what, const double *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        CHECKF(NEAR(got[i], want[i], tol), "%s[%d]: got %.17g, want %.17g", what, i, got[i], want[i]);
}

/* ---- GAE ---- */

static void gae_case(const char *what, const double *r, const double *v, int n, double gamma, double lambda,
                     const double *want_adv, const double *want_ret)
{
    double adv[8], ret[8];
    al_gae(r, v, n, gamma, lambda, adv, ret);
    char buf[96];
    snprintf(buf, sizeof buf, "gae %s gamma %g lambda %g adv", what, gamma, lambda);
    check_vec(buf, adv, want_adv, n, 1e-12);
    snprintf(buf, sizeof buf, "gae %s gamma %g lambda %g ret", what, gamma, lambda);
    check_vec(buf, ret, want_ret, n, 1e-12);
}

static void test_gae_hand(void)
{
    /* Sequence A, n = 3: r = (1, 0, 2), V = (0.5, 1.0, 1.5), V_3 = 0. */
    const double ra[] = {1, 0, 2}, va[] = {0.5, 1.0, 1.5};

    /* gamma 1, lambda 1:
     *   delta_2 = 2 + 1*0   - 1.5 = 0.5
     *   delta_1 = 0 + 1*1.5 - 1.0 = 0.5
     *   delta_0 = 1 + 1*1.0 - 0.5 = 1.5
     *   A_2 = 0.5,  A_1 = 0.5 + 1*0.5 = 1.0,  A_0 = 1.5 + 1*1.0 = 2.5
     *   returns = A + V = (3.0, 2.0, 2.0)  (= the undiscounted returns-to-go 3, 2, 2) */
    gae_case("A", ra, va, 3, 1, 1, (const double[]){2.5, 1.0, 0.5}, (const double[]){3.0, 2.0, 2.0});

    /* gamma 0.99, lambda 0.95 (gamma lambda = 0.9405):
     *   delta_2 = 2 + 0.99*0   - 1.5 = 0.5
     *   delta_1 = 0 + 0.99*1.5 - 1.0 = 1.485 - 1.0 = 0.485
     *   delta_0 = 1 + 0.99*1.0 - 0.5 = 1.49
     *   A_2 = 0.5
     *   A_1 = 0.485 + 0.9405*0.5 = 0.485 + 0.47025 = 0.95525
     *   A_0 = 1.49 + 0.9405*0.95525 = 1.49 + (0.859725 + 0.038687625) = 1.49 + 0.898412625 = 2.388412625
     *   returns = (2.388412625 + 0.5, 0.95525 + 1.0, 0.5 + 1.5) = (2.888412625, 1.95525, 2.0) */
    gae_case("A", ra, va, 3, 0.99, 0.95, (const double[]){2.388412625, 0.95525, 0.5},
             (const double[]){2.888412625, 1.95525, 2.0});

    /* gamma 0.5, lambda 0 (A_t = delta_t):
     *   delta_2 = 2 + 0.5*0   - 1.5 = 0.5
     *   delta_1 = 0 + 0.5*1.5 - 1.0 = 0.75 - 1.0 = -0.25
     *   delta_0 = 1 + 0.5*1.0 - 0.5 = 1.0
     *   returns = (1.0 + 0.5, -0.25 + 1.0, 0.5 + 1.5) = (1.5, 0.75, 2.0) */
    gae_case("A", ra, va, 3, 0.5, 0, (const double[]){1.0, -0.25, 0.5}, (const double[]){1.5, 0.75, 2.0});

    /* Sequence B, n = 4, a terminal reward: r = (0, 0, 0, 1), V = (0.1, 0.3, 0.5, 0.9). */
    const double rb[] = {0, 0, 0, 1}, vb[] = {0.1, 0.3, 0.5, 0.9};

    /* gamma 1, lambda 1:
     *   delta_3 = 1 + 0   - 0.9 = 0.1
     *   delta_2 = 0 + 0.9 - 0.5 = 0.4
     *   delta_1 = 0 + 0.5 - 0.3 = 0.2
     *   delta_0 = 0 + 0.3 - 0.1 = 0.2
     *   A_3 = 0.1, A_2 = 0.4 + 0.1 = 0.5, A_1 = 0.2 + 0.5 = 0.7, A_0 = 0.2 + 0.7 = 0.9
     *   returns = (1, 1, 1, 1) */
    gae_case("B", rb, vb, 4, 1, 1, (const double[]){0.9, 0.7, 0.5, 0.1}, (const double[]){1, 1, 1, 1});

    /* gamma 0.99, lambda 0.95 (gamma lambda = 0.9405):
     *   delta_3 = 1 + 0         - 0.9 = 0.1
     *   delta_2 = 0 + 0.99*0.9  - 0.5 = 0.891 - 0.5 = 0.391
     *   delta_1 = 0 + 0.99*0.5  - 0.3 = 0.495 - 0.3 = 0.195
     *   delta_0 = 0 + 0.99*0.3  - 0.1 = 0.297 - 0.1 = 0.197
     *   A_3 = 0.1
     *   A_2 = 0.391 + 0.9405*0.1 = 0.391 + 0.09405 = 0.48505
     *   A_1 = 0.195 + 0.9405*0.48505 = 0.195 + (0.436545 + 0.019644525) = 0.195 + 0.456189525 = 0.651189525
     *   A_0 = 0.197 + 0.9405*0.651189525 = 0.197 + (0.5860705725 + 0.0263731757625)
     *       = 0.197 + 0.6124437482625 = 0.8094437482625
     *   returns = (0.9094437482625, 0.951189525, 0.98505, 1.0) */
    gae_case("B", rb, vb, 4, 0.99, 0.95, (const double[]){0.8094437482625, 0.651189525, 0.48505, 0.1},
             (const double[]){0.9094437482625, 0.951189525, 0.98505, 1.0});

    /* gamma 0.5, lambda 0:
     *   delta_3 = 1 + 0.5*0   - 0.9 = 0.1
     *   delta_2 = 0 + 0.5*0.9 - 0.5 = 0.45 - 0.5 = -0.05
     *   delta_1 = 0 + 0.5*0.5 - 0.3 = 0.25 - 0.3 = -0.05
     *   delta_0 = 0 + 0.5*0.3 - 0.1 = 0.15 - 0.1 = 0.05
     *   returns = (0.15, 0.25, 0.45, 1.0) */
    gae_case("B", rb, vb, 4, 0.5, 0, (const double[]){0.05, -0.05, -0.05, 0.1},
             (const double[]){0.15, 0.25, 0.45, 1.0});

    /* n = 1: A_0 = r_0 - V_0 whatever gamma and lambda (the value after the last step is 0) */
    gae_case("n1", (const double[]){2.0}, (const double[]){0.75}, 1, 0.9, 0.8, (const double[]){1.25},
             (const double[]){2.0});

    /* n = 0 writes nothing */
    double adv = 42, ret = 43;
    al_gae(ra, va, 0, 0.9, 0.9, &adv, &ret);
    CHECK(adv == 42 && ret == 43);
}

static void test_gae_identities(void)
{
    for (int trial = 0; trial < 20; trial++) {
        enum { N = 9 };
        double r[N], v[N], adv[N], ret[N], g[N];
        const int n = 1 + trial % N;
        const double gamma = uniform(0.5, 1.0), lambda = uniform(0.1, 0.9);
        for (int t = 0; t < n; t++)
            r[t] = uniform(-2, 2), v[t] = uniform(-1, 1);

        /* lambda = 1: A_t = G_t - V_t with G the discounted returns, and returns_t = G_t
         * (naive O(n^2) discounted sum, independent of al_discounted_returns) */
        al_gae(r, v, n, gamma, 1.0, adv, ret);
        for (int t = 0; t < n; t++) {
            double G = 0, disc = 1;
            for (int u = t; u < n; u++, disc *= gamma)
                G += disc * r[u];
            CHECKF(NEAR(adv[t], G - v[t], 1e-12), "gae lambda 1 trial %d t %d: %.17g vs %.17g", trial, t, adv[t],
                   G - v[t]);
            CHECKF(NEAR(ret[t], G, 1e-12), "gae lambda 1 returns trial %d t %d", trial, t);
        }
        /* ... which also agrees with al_discounted_returns */
        al_discounted_returns(r, n, gamma, g);
        for (int t = 0; t < n; t++)
            CHECKF(NEAR(adv[t], g[t] - v[t], 1e-12), "gae lambda 1 vs al_discounted_returns trial %d t %d", trial, t);

        /* lambda = 0: A_t = r_t + gamma V_{t+1} - V_t (one-step TD errors, V_n = 0) */
        al_gae(r, v, n, gamma, 0.0, adv, ret);
        for (int t = 0; t < n; t++) {
            double td = r[t] + gamma * (t + 1 < n ? v[t + 1] : 0.0) - v[t];
            CHECKF(NEAR(adv[t], td, 1e-12), "gae lambda 0 trial %d t %d: %.17g vs %.17g", trial, t, adv[t], td);
            CHECKF(NEAR(ret[t], td + v[t], 1e-12), "gae lambda 0 returns trial %d t %d", trial, t);
        }

        /* general lambda: A_t = sum_l (gamma lambda)^l delta_{t+l}  (the closed form) */
        al_gae(r, v, n, gamma, lambda, adv, ret);
        for (int t = 0; t < n; t++) {
            double A = 0, w = 1;
            for (int u = t; u < n; u++, w *= gamma * lambda)
                A += w * (r[u] + gamma * (u + 1 < n ? v[u + 1] : 0.0) - v[u]);
            CHECKF(NEAR(adv[t], A, 1e-12), "gae closed form trial %d t %d: %.17g vs %.17g", trial, t, adv[t], A);
            CHECKF(NEAR(ret[t], A + v[t], 1e-12), "gae returns = A + V trial %d t %d", trial, t);
        }
    }
}

/* ---- discounted returns and whitening ---- */

static void test_discounted_returns(void)
{
    double g[4];
    /* r = (1, 2, 3), gamma 0.5:  G_2 = 3,  G_1 = 2 + 0.5*3 = 3.5,  G_0 = 1 + 0.5*3.5 = 2.75 */
    al_discounted_returns((const double[]){1, 2, 3}, 3, 0.5, g);
    check_vec("returns gamma 0.5", g, (const double[]){2.75, 3.5, 3}, 3, 1e-15);
    /* gamma 1: the returns-to-go 6, 5, 3 */
    al_discounted_returns((const double[]){1, 2, 3}, 3, 1.0, g);
    check_vec("returns gamma 1", g, (const double[]){6, 5, 3}, 3, 1e-15);
    /* gamma 0: the rewards themselves */
    al_discounted_returns((const double[]){1, -2, 3}, 3, 0.0, g);
    check_vec("returns gamma 0", g, (const double[]){1, -2, 3}, 3, 0);
    /* r = (0, 0, 0, 1), gamma 0.9:  G_3 = 1, G_2 = 0.9, G_1 = 0.81, G_0 = 0.729 */
    al_discounted_returns((const double[]){0, 0, 0, 1}, 4, 0.9, g);
    check_vec("returns terminal", g, (const double[]){0.729, 0.81, 0.9, 1}, 4, 1e-15);
}

static void naive_moments(const double *x, int n, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrt(ss / (n - 1));
}

static void test_whiten(void)
{
    /* x = (1, 2, 3, 4): mean 2.5, unbiased var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3,
     * x' = (x - 2.5) / sqrt(var + 1e-8), TRL's masked_whiten: sqrt(5/3 + 1e-8) */
    double x[4] = {1, 2, 3, 4};
    const double s = sqrt(5.0 / 3.0 + 1e-8);
    al_whiten(x, 4, true);
    check_vec("whiten", x, (const double[]){-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, 4, 1e-14);
    /* shift_mean false: the mean 2.5 is added back */
    double y[4] = {1, 2, 3, 4};
    al_whiten(y, 4, false);
    check_vec("whiten keep mean", y, (const double[]){2.5 - 1.5 / s, 2.5 - 0.5 / s, 2.5 + 0.5 / s, 2.5 + 1.5 / s}, 4,
              1e-14);

    /* random vectors: mean 0 and unbiased std 1 afterwards (up to the 1e-8 in the divisor);
     * shift_mean false keeps the mean, and the deviations are the same */
    for (int trial = 0; trial < 10; trial++) {
        enum { N = 17 };
        double a[N], b[N], mean0, std0, mean1, std1;
        const int n = 2 + trial;
        const double loc = uniform(-5, 5), scale = uniform(0.1, 10);
        for (int i = 0; i < n; i++)
            a[i] = b[i] = loc + scale * uniform(-1, 1);
        naive_moments(a, n, &mean0, &std0);
        al_whiten(a, n, true);
        naive_moments(a, n, &mean1, &std1);
        CHECKF(fabs(mean1) < 1e-12, "whiten trial %d: mean %.3g", trial, mean1);
        CHECKF(fabs(std1 - 1) < 1e-7, "whiten trial %d: std %.17g", trial, std1);
        al_whiten(b, n, false);
        naive_moments(b, n, &mean1, &std1);
        CHECKF(NEAR(mean1, mean0, 1e-12), "whiten keep mean trial %d: mean %.17g, was %.17g", trial, mean1, mean0);
        CHECKF(fabs(std1 - 1) < 1e-7, "whiten keep mean trial %d: std %.17g", trial, std1);
        for (int i = 0; i < n; i++)
            CHECKF(NEAR(b[i] - mean0, a[i], 1e-12), "whiten shift/no shift trial %d i %d", trial, i);
    }
    /* a constant vector: std 0, so every value goes to 0 (and stays finite) */
    double c[3] = {7, 7, 7};
    al_whiten(c, 3, true);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
}

/* ---- group advantages ---- */

static void test_group_advantages(void)
{
    /* 2 groups of G = 4:
     *   group 0: (1, 2, 3, 6): mean 12/4 = 3, deviations (-2, -1, 0, 3), SS = 4 + 1 + 0 + 9 = 14,
     *            unbiased var 14/3, std = sqrt(14/3) = 2.160246899469287
     *   group 1: (0, 0, 1, 1): mean 0.5, deviations (-0.5, -0.5, 0.5, 0.5), SS = 1,
     *            unbiased var 1/3, std = sqrt(1/3) = 0.5773502691896257
     *   batch:   sum 14, mean 1.75, deviations (-0.75, 0.25, 1.25, 4.25, -1.75, -1.75, -0.75, -0.75),
     *            SS = 0.5625 + 0.0625 + 1.5625 + 18.0625 + 3.0625 + 3.0625 + 0.5625 + 0.5625 = 27.5,
     *            unbiased var 27.5/7, std = sqrt(27.5/7) = 1.9820624179302297 */
    const double sc[8] = {1, 2, 3, 6, 0, 0, 1, 1};
    const double s0 = 2.160246899469287 + 1e-4, s1 = 0.5773502691896257 + 1e-4, sb = 1.9820624179302297 + 1e-4;
    double adv[8];

    CHECK_OK(al_group_advantages(AL_ADV_GRPO_GROUP, sc, 2, 4, adv));
    check_vec("grpo group", adv, (const double[]){-2 / s0, -1 / s0, 0, 3 / s0, -0.5 / s1, -0.5 / s1, 0.5 / s1, 0.5 / s1},
              8, 1e-14);

    CHECK_OK(al_group_advantages(AL_ADV_GRPO_BATCH, sc, 2, 4, adv));
    check_vec("grpo batch", adv, (const double[]){-2 / sb, -1 / sb, 0, 3 / sb, -0.5 / sb, -0.5 / sb, 0.5 / sb, 0.5 / sb},
              8, 1e-14);

    CHECK_OK(al_group_advantages(AL_ADV_GRPO_NONE, sc, 2, 4, adv));
    check_vec("grpo none", adv, (const double[]){-2, -1, 0, 3, -0.5, -0.5, 0.5, 0.5}, 8, 1e-15);

    /* RLOO: r_i - (group sum - r_i) / 3
     *   group 0 (sum 12): 1 - 11/3 = -8/3, 2 - 10/3 = -4/3, 3 - 9/3 = 0, 6 - 6/3 = 4
     *   group 1 (sum 2):  0 - 2/3 = -2/3 (twice), 1 - 1/3 = 2/3 (twice) */
    CHECK_OK(al_group_advantages(AL_ADV_RLOO, sc, 2, 4, adv));
    check_vec("rloo", adv, (const double[]){-8.0 / 3, -4.0 / 3, 0, 4, -2.0 / 3, -2.0 / 3, 2.0 / 3, 2.0 / 3}, 8, 1e-14);

    CHECK_OK(al_group_advantages(AL_ADV_MEAN_BASELINE, sc, 2, 4, adv));
    check_vec("mean baseline", adv, (const double[]){-2, -1, 0, 3, -0.5, -0.5, 0.5, 0.5}, 8, 1e-15);

    /* RLOO with G = 2: each minus the other */
    CHECK_OK(al_group_advantages(AL_ADV_RLOO, (const double[]){3, 1, -1, 4}, 2, 2, adv));
    check_vec("rloo G=2", adv, (const double[]){2, -2, -5, 5}, 4, 1e-15);

    /* RLOO needs G >= 2 */
    al_clear_error();
    CHECK(al_group_advantages(AL_ADV_RLOO, sc, 8, 1, adv) != 0);
    CHECKF(strstr(al_errmsg(), "RLOO") != NULL, "message: %s", al_errmsg());
    /* ... the others accept G = 1 (GRPO group: std 0, so 0 advantages) */
    adv[0] = 99;
    CHECK_OK(al_group_advantages(AL_ADV_GRPO_GROUP, sc, 8, 1, adv));
    CHECK(adv[0] == 0);

    /* zero-variance groups give 0 advantages under GRPO group (not +-inf or nan from 0/0):
     * group 0 all 0.5 (exact), group 1 varies */
    const double zv[8] = {0.5, 0.5, 0.5, 0.5, 0, 1, 0, 1};
    CHECK_OK(al_group_advantages(AL_ADV_GRPO_GROUP, zv, 2, 4, adv));
    CHECK(adv[0] == 0 && adv[1] == 0 && adv[2] == 0 && adv[3] == 0);
    CHECK(adv[4] < 0 && adv[5] > 0);
    /* a constant group whose mean is not exact in binary (0.1 * 3 / 3 != 0.1): still ~0 */
    CHECK_OK(al_group_advantages(AL_ADV_GRPO_GROUP, (const double[]){0.1, 0.1, 0.1}, 1, 3, adv));
    for (int i = 0; i < 3; i++)
        CHECKF(fabs(adv[i]) < 1e-9, "constant group 0.1: adv[%d] = %.17g", i, adv[i]);

    /* per-group invariants on random tables: GRPO-none and RLOO sum to 0 in each group,
     * RLOO = G / (G - 1) * (r - mean), GRPO group has unbiased std std/(std + 1e-4) */
    for (int trial = 0; trial < 10; trial++) {
        enum { NG = 3, G = 5 };
        double s[NG * G], none[NG * G], rl[NG * G], grp[NG * G];
        for (int i = 0; i < NG * G; i++)
            s[i] = uniform(-3, 3);
        CHECK_OK(al_group_advantages(AL_ADV_GRPO_NONE, s, NG, G, none));
        CHECK_OK(al_group_advantages(AL_ADV_RLOO, s, NG, G, rl));
        CHECK_OK(al_group_advantages(AL_ADV_GRPO_GROUP, s, NG, G, grp));
        for (int g = 0; g < NG; g++) {
            double sn = 0, sr = 0, m, sd, ma, sda;
            for (int i = 0; i < G; i++) {
                sn += none[g * G + i], sr += rl[g * G + i];
                CHECK(NEAR(rl[g * G + i], (double)G / (G - 1) * none[g * G + i], 1e-12));
            }
            CHECK(fabs(sn) < 1e-12 && fabs(sr) < 1e-12);
            naive_moments(s + g * G, G, &m, &sd);
            naive_moments(grp + g * G, G, &ma, &sda);
            CHECK(fabs(ma) < 1e-12 && NEAR(sda, sd / (sd + 1e-4), 1e-12));
        }
    }
}

/* ---- the clipped surrogate ---- */

static al_clip_out surr(double ratio, double A, double el, double eh)
{
    al_clip_out o;
    const double old = -1.3;
    al_clipped_surrogate(old + log(ratio), old, A, el, eh, &o);
    return o;
}

static void clip_case(const char *what, al_clip_out o, double loss, double dlogp, bool clipped, bool low, bool high)
{
    CHECKF(NEAR(o.loss, loss, 1e-12) && NEAR(o.dlogp, dlogp, 1e-12) && o.clipped == clipped && o.low == low &&
               o.high == high,
           "%s: loss %.17g dlogp %.17g clipped %d low %d high %d; want %.17g %.17g %d %d %d", what, o.loss, o.dlogp,
           o.clipped, o.low, o.high, loss, dlogp, clipped, low, high);
}

static void test_clipped_surrogate_hand(void)
{
    /* inside: ratio 1.1, A = 2, eps 0.2: clip(1.1) = 1.1, loss = -1.1*2 = -2.2, dloss/dlogp = -A ratio = -2.2 */
    al_clip_out o = surr(1.1, 2, 0.2, 0.2);
    CHECK(NEAR(o.ratio, 1.1, 1e-14));
    clip_case("inside", o, -2.2, -2.2, false, false, false);

    /* above 1 + eps_high with A > 0: ratio 1.5, A = 2: unclipped 3.0, clipped 1.2*2 = 2.4 -> min 2.4,
     * loss -2.4, no gradient, high */
    clip_case("high A>0", surr(1.5, 2, 0.2, 0.2), -2.4, 0, true, false, true);

    /* below 1 - eps_low with A < 0: ratio 0.5, A = -1: unclipped -0.5, clipped 0.8*-1 = -0.8 -> min -0.8,
     * loss 0.8, no gradient, low */
    clip_case("low A<0", surr(0.5, -1, 0.2, 0.2), 0.8, 0, true, true, false);

    /* above 1 + eps with A < 0 is NOT clipped: ratio 1.5, A = -1: unclipped -1.5, clipped -1.2 -> min -1.5,
     * loss 1.5, dloss/dlogp = -A ratio = 1.5 */
    clip_case("high A<0", surr(1.5, -1, 0.2, 0.2), 1.5, 1.5, false, false, false);

    /* below 1 - eps with A > 0 is NOT clipped: ratio 0.5, A = 2: unclipped 1.0, clipped 1.6 -> min 1.0,
     * loss -1.0, dloss/dlogp = -2*0.5 = -1.0 */
    clip_case("low A>0", surr(0.5, 2, 0.2, 0.2), -1.0, -1.0, false, false, false);

    /* A = 0: loss 0 and gradient 0 anywhere, never clipped */
    clip_case("A=0", surr(3.0, 0, 0.2, 0.2), 0, 0, false, false, false);

    /* asymmetric eps (DAPO clip-higher: eps_low 0.2, eps_high 0.28) */
    /* ratio 1.25, A = 1: inside 1.28 -> loss -1.25, gradient -1.25 ... */
    clip_case("asym inside high", surr(1.25, 1, 0.2, 0.28), -1.25, -1.25, false, false, false);
    /* ... while eps_high 0.2 clips it at 1.2 */
    clip_case("sym clipped high", surr(1.25, 1, 0.2, 0.2), -1.2, 0, true, false, true);
    /* ratio 1.3, A = 1: clipped at 1.28 */
    clip_case("asym clipped high", surr(1.3, 1, 0.2, 0.28), -1.28, 0, true, false, true);
    /* ratio 0.75, A = -1: below 1 - 0.2 = 0.8, clipped at 0.8, loss 0.8 ... */
    clip_case("asym clipped low", surr(0.75, -1, 0.2, 0.28), 0.8, 0, true, true, false);
    /* ... while eps_low 0.28 (floor 0.72) and eps_high 0.2 leave it inside: loss 0.75, gradient -A ratio = 0.75 */
    clip_case("asym swapped inside low", surr(0.75, -1, 0.28, 0.2), 0.75, 0.75, false, false, false);
    /* eps_high applies above, eps_low below: ratio 1.25 with (eps_low 0.28, eps_high 0.2) is clipped at 1.2 */
    clip_case("asym swapped clipped high", surr(1.25, 1, 0.28, 0.2), -1.2, 0, true, false, true);

    /* ratio exactly 1 when logp == old_logp: loss = -A, dlogp = -A, exactly */
    const double As[] = {1.7, -0.3, 0.0, 12.5};
    for (int i = 0; i < 4; i++) {
        al_clipped_surrogate(-2.75, -2.75, As[i], 0.2, 0.28, &o);
        CHECKF(o.ratio == 1.0 && o.loss == -As[i] && o.dlogp == -As[i] && !o.clipped && !o.low && !o.high,
               "ratio 1, A %g: ratio %.17g loss %.17g dlogp %.17g", As[i], o.ratio, o.loss, o.dlogp);
    }
}

static void test_clipped_surrogate_fd(void)
{
    const double h = 1e-6;
    int n_checked = 0, n_clipped = 0, n_free = 0;
    for (int trial = 0; trial < 2000; trial++) {
        const double old = uniform(-8, -0.01), logp = old + uniform(-0.7, 0.7), A = uniform(-3, 3);
        const double el = uniform(0.05, 0.3), eh = uniform(0.05, 0.4);
        const double ratio = exp(logp - old);
        /* away from the kinks at 1 - eps_low and 1 + eps_high (a step h moves the ratio by ~1e-6) */
        if (fabs(ratio - (1 - el)) < 1e-3 || fabs(ratio - (1 + eh)) < 1e-3 || fabs(A) < 1e-3)
            continue;
        al_clip_out o, p, m;
        al_clipped_surrogate(logp, old, A, el, eh, &o);
        al_clipped_surrogate(logp + h, old, A, el, eh, &p);
        al_clipped_surrogate(logp - h, old, A, el, eh, &m);
        const double fd = (p.loss - m.loss) / (2 * h);
        CHECKF(fabs(fd - o.dlogp) <= 1e-6 * fabs(o.dlogp) + 1e-9,
               "surrogate fd: logp %.17g old %.17g A %.17g eps (%g, %g): analytic %.12g, fd %.12g", logp, old, A, el,
               eh, o.dlogp, fd);
        /* the loss is -min(ratio A, clip(ratio) A), computed naively */
        const double cr = fmin(fmax(ratio, 1 - el), 1 + eh);
        CHECKF(NEAR(o.loss, -fmin(ratio * A, cr * A), 1e-12), "surrogate loss at trial %d", trial);
        CHECK(o.clipped == (o.dlogp == 0));
        n_checked++;
        n_clipped += o.clipped;
        n_free += !o.clipped;
    }
    /* both regions were exercised */
    CHECKF(n_checked > 1500 && n_clipped > 100 && n_free > 100, "surrogate fd coverage: %d checked, %d clipped, %d free",
           n_checked, n_clipped, n_free);
}

/* ---- the clipped value loss ---- */

static void value_case(const char *what, double v, double old, double ret, double eps, double loss, double dv,
                       bool clipped)
{
    double g;
    bool c;
    double l = al_clipped_value_loss(v, old, ret, eps, &g, &c);
    CHECKF(NEAR(l, loss, 1e-12) && NEAR(g, dv, 1e-12) && c == clipped, "%s: loss %.17g dv %.17g clipped %d; want %.17g %.17g %d",
           what, l, g, c, loss, dv, clipped);
}

static void test_clipped_value_loss(void)
{
    /* old_v = 1, eps = 0.2 (trust region [0.8, 1.2]), R = 2 */
    /* v = 1.1 inside: v_clip = 1.1, loss = 0.5 * 0.9^2 = 0.405, dv = v - R = -0.9 */
    value_case("inside", 1.1, 1, 2, 0.2, 0.405, -0.9, false);
    /* v = 1.5 outside, toward R: v_clip = 1.2, (1.5-2)^2 = 0.25 < (1.2-2)^2 = 0.64 -> max is the clipped
     * term, loss 0.32, no gradient */
    value_case("outside toward R", 1.5, 1, 2, 0.2, 0.32, 0, true);
    /* v = 2.5 past R: v_clip = 1.2, (0.5)^2 = 0.25 < 0.64 -> clipped, loss 0.32, dv 0 */
    value_case("past R", 2.5, 1, 2, 0.2, 0.32, 0, true);
    /* v = 0.5 outside, away from R: v_clip = 0.8, (0.5-2)^2 = 2.25 > (0.8-2)^2 = 1.44 -> unclipped,
     * loss 1.125, dv = -1.5 */
    value_case("outside away", 0.5, 1, 2, 0.2, 1.125, -1.5, false);
    /* v = 3.5: v_clip = 1.2, 2.25 > 0.64 -> unclipped, loss 1.125, dv = 1.5 */
    value_case("far past R", 3.5, 1, 2, 0.2, 1.125, 1.5, false);
    /* R = 0, v = 1.5: v_clip 1.2, 2.25 > 1.44 -> unclipped, loss 1.125, dv 1.5 */
    value_case("R=0 above", 1.5, 1, 0, 0.2, 1.125, 1.5, false);
    /* R = 0, v = 0.5: v_clip 0.8, 0.25 < 0.64 -> clipped, loss 0.32, dv 0 */
    value_case("R=0 below", 0.5, 1, 0, 0.2, 0.32, 0, true);

    /* finite differences in v, away from the kinks |v - old| = eps and |v - R| = |v_clip - R| */
    const double h = 1e-6;
    int n_checked = 0, n_clipped = 0;
    for (int trial = 0; trial < 2000; trial++) {
        const double old = uniform(-2, 2), ret = uniform(-3, 3), eps = uniform(0.05, 0.5);
        const double v = old + uniform(-1.5, 1.5);
        const double vc = fmin(fmax(v, old - eps), old + eps);
        if (fabs(fabs(v - old) - eps) < 1e-3 || fabs(fabs(v - ret) - fabs(vc - ret)) < 1e-3)
            continue;
        double g, gp, gm;
        bool c, cp, cm;
        double l = al_clipped_value_loss(v, old, ret, eps, &g, &c);
        double lp = al_clipped_value_loss(v + h, old, ret, eps, &gp, &cp);
        double lm = al_clipped_value_loss(v - h, old, ret, eps, &gm, &cm);
        const double fd = (lp - lm) / (2 * h);
        CHECKF(fabs(fd - g) <= 1e-6 * fabs(g) + 1e-9, "value fd: v %.17g old %.17g R %.17g eps %g: analytic %.12g, fd %.12g",
               v, old, ret, eps, g, fd);
        /* naive: 0.5 max((v - R)^2, (v_clip - R)^2) */
        CHECK(NEAR(l, 0.5 * fmax((v - ret) * (v - ret), (vc - ret) * (vc - ret)), 1e-12));
        n_checked++;
        n_clipped += c;
    }
    CHECKF(n_checked > 1500 && n_clipped > 100 && n_checked - n_clipped > 100, "value fd coverage: %d checked, %d clipped",
           n_checked, n_clipped);
}

/* ---- KL estimators ---- */

static void test_kl_hand(void)
{
    /* logp = -1, ref = -1.5: d = ref - logp = -0.5
     *   k1 = -d = 0.5;  k2 = d^2/2 = 0.125;  k3 = e^-0.5 - 1 + 0.5 = 0.60653065971263342 - 0.5 = 0.10653065971263342
     *   grads d/dlogp: k1 1;  k2 -d = 0.5;  k3 1 - e^d = 0.39346934028736658 */
    CHECK(NEAR(al_kl_estimate(AL_KL_K1, -1, -1.5), 0.5, 1e-15));
    CHECK(NEAR(al_kl_estimate(AL_KL_K2, -1, -1.5), 0.125, 1e-15));
    CHECK(NEAR(al_kl_estimate(AL_KL_K3, -1, -1.5), 0.10653065971263342, 1e-14));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K1, -1, -1.5), 1.0, 1e-15));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K2, -1, -1.5), 0.5, 1e-15));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K3, -1, -1.5), 0.39346934028736658, 1e-14));
    /* logp = -2, ref = -1: d = 1
     *   k1 = -1 (k1 can be negative);  k2 = 0.5;  k3 = e - 1 - 1 = 0.71828182845904524
     *   grads: k1 1;  k2 -1;  k3 1 - e = -1.7182818284590452 */
    CHECK(NEAR(al_kl_estimate(AL_KL_K1, -2, -1), -1.0, 1e-15));
    CHECK(NEAR(al_kl_estimate(AL_KL_K2, -2, -1), 0.5, 1e-15));
    CHECK(NEAR(al_kl_estimate(AL_KL_K3, -2, -1), 0.71828182845904524, 1e-14));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K1, -2, -1), 1.0, 1e-15));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K2, -2, -1), -1.0, 1e-15));
    CHECK(NEAR(al_kl_estimate_grad(AL_KL_K3, -2, -1), -1.7182818284590452, 1e-14));
    /* policy == reference: all three are 0 with 0 gradient */
    for (int k = 0; k < 3; k++) {
        CHECK(al_kl_estimate((al_kl_kind)k, -0.37, -0.37) == 0);
        CHECK(al_kl_estimate_grad((al_kl_kind)k, -0.37, -0.37) == (k == AL_KL_K1 ? 1.0 : 0.0));
    }
    /* k3 at a tiny d keeps its relative precision (no cancellation in e^d - 1 - d):
     * k3 = d^2/2 + d^3/6 + d^4/24 + ...  (d ~ 1e-6: about 5e-13) */
    for (int i = 0; i < 2; i++) {
        const double logp = -1.0, ref = i ? -1.0 - 1e-6 : -1.0 + 1e-6, d = ref - logp;
        const double want = d * d / 2 + d * d * d / 6 + d * d * d * d / 24, got = al_kl_estimate(AL_KL_K3, logp, ref);
        CHECKF(fabs(got - want) <= 1e-9 * want, "k3 at d = %.17g: %.17g, want %.17g", d, got, want);
    }

    /* k3 >= 0 everywhere, and k3 >= 0 is not trivially true of k1 */
    int k1_negative = 0;
    for (int i = 0; i < 5000; i++) {
        const double logp = uniform(-20, 0), ref = uniform(-20, 0);
        const double k3 = al_kl_estimate(AL_KL_K3, logp, ref);
        CHECKF(k3 >= 0 && isfinite(k3), "k3(%.17g, %.17g) = %.17g", logp, ref, k3);
        CHECK(al_kl_estimate(AL_KL_K2, logp, ref) >= 0);
        k1_negative += al_kl_estimate(AL_KL_K1, logp, ref) < 0;
    }
    CHECK(k1_negative > 1000);

    /* gradients against central differences */
    const double h = 1e-6;
    for (int i = 0; i < 600; i++) {
        const al_kl_kind k = (al_kl_kind)(i % 3);
        const double logp = uniform(-10, 0), ref = logp + uniform(-4, 4);
        const double g = al_kl_estimate_grad(k, logp, ref);
        const double fd = (al_kl_estimate(k, logp + h, ref) - al_kl_estimate(k, logp - h, ref)) / (2 * h);
        CHECKF(fabs(fd - g) <= 1e-6 * fabs(g) + 1e-9, "%s grad at (%.17g, %.17g): analytic %.12g, fd %.12g",
               al_kl_name(k), logp, ref, g, fd);
    }
}

/* softmax of random logits over n outcomes */
static void random_dist(double *p, int n, double spread)
{
    double z = 0;
    for (int i = 0; i < n; i++)
        z += p[i] = exp(uniform(-spread, spread));
    for (int i = 0; i < n; i++)
        p[i] /= z;
}

static void test_kl_unbiased(void)
{
    /* x ~ p (the policy); k1 and k3 are unbiased estimators of KL(p || q):
     *   E_p[k1] = sum p (log p - log q) = KL
     *   E_p[k3] = sum p (q/p - 1 - log(q/p)) = sum q - 1 + KL = KL
     * while E_p[k2] = sum p (log(q/p))^2 / 2 is only KL to second order. */
    for (int trial = 0; trial < 20; trial++) {
        enum { N = 6 };
        double p[N], q[N], kl = 0, e[3] = {0, 0, 0};
        random_dist(p, N, 1.5);
        random_dist(q, N, 1.5);
        for (int x = 0; x < N; x++)
            kl += p[x] * log(p[x] / q[x]);
        for (int x = 0; x < N; x++)
            for (int k = 0; k < 3; k++)
                e[k] += p[x] * al_kl_estimate((al_kl_kind)k, log(p[x]), log(q[x]));
        CHECKF(fabs(e[AL_KL_K1] - kl) < 1e-12, "E[k1] %.17g vs KL %.17g", e[AL_KL_K1], kl);
        CHECKF(fabs(e[AL_KL_K3] - kl) < 1e-12, "E[k3] %.17g vs KL %.17g", e[AL_KL_K3], kl);
        CHECKF(fabs(e[AL_KL_K2] - kl) > 1e-4, "E[k2] %.17g vs KL %.17g: expected a bias", e[AL_KL_K2], kl);
        CHECK(kl > 0);
    }
}

/* ---- names ---- */

static void test_parse(void)
{
    for (int k = 0; k < 3; k++) {
        al_kl_kind out = (al_kl_kind)-1;
        CHECK_OK(al_kl_parse(al_kl_name((al_kl_kind)k), &out));
        CHECK(out == (al_kl_kind)k);
    }
    CHECK(!strcmp(al_kl_name(AL_KL_K1), "k1") && !strcmp(al_kl_name(AL_KL_K2), "k2") && !strcmp(al_kl_name(AL_KL_K3), "k3"));
    CHECK(!strcmp(al_kl_name((al_kl_kind)7), "?"));
    al_kl_kind kk = AL_KL_K2;
    const char *bad_kl[] = {"k4", "K1", "", "k1 ", "kl"};
    for (size_t i = 0; i < sizeof bad_kl / sizeof *bad_kl; i++) {
        al_clear_error();
        CHECK(al_kl_parse(bad_kl[i], &kk) != 0);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad_kl[i]);
        CHECKF(strstr(al_errmsg(), quoted) && strstr(al_errmsg(), "k1") && strstr(al_errmsg(), "k2") &&
                   strstr(al_errmsg(), "k3"),
               "kl parse '%s': message: %s", bad_kl[i], al_errmsg());
    }
    CHECK(kk == AL_KL_K2); /* untouched on failure */

    const char *agg[] = {"grpo", "bnpo", "dr_grpo", "dapo"};
    const al_loss_agg aggv[] = {AL_AGG_GRPO, AL_AGG_BNPO, AL_AGG_DR_GRPO, AL_AGG_DAPO};
    for (int a = 0; a < 4; a++) {
        al_loss_agg out = (al_loss_agg)-1;
        CHECK_OK(al_loss_agg_parse(agg[a], &out));
        CHECK(out == aggv[a] && !strcmp(al_loss_agg_name(out), agg[a]));
    }
    CHECK(!strcmp(al_loss_agg_name((al_loss_agg)9), "?"));
    al_loss_agg ag = AL_AGG_DAPO;
    const char *bad_agg[] = {"sum", "GRPO", "dr-grpo", ""};
    for (size_t i = 0; i < sizeof bad_agg / sizeof *bad_agg; i++) {
        al_clear_error();
        CHECK(al_loss_agg_parse(bad_agg[i], &ag) != 0);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad_agg[i]);
        const char *m = al_errmsg();
        CHECKF(strstr(m, quoted) && strstr(m, "grpo") && strstr(m, "bnpo") && strstr(m, "dr_grpo") && strstr(m, "dapo"),
               "loss agg parse '%s': message: %s", bad_agg[i], m);
    }
    CHECK(ag == AL_AGG_DAPO);
}

/* ---- loss aggregation ---- */

static void test_loss_agg_weight(void)
{
    /* a batch of 3 sequences with 3, 5 and 1 completion tokens (9 in all), max_completion 8 */
    const int n_tok[] = {3, 5, 1}, n_seqs = 3, max_c = 8;
    const long batch = 9;
    double total[4] = {0, 0, 0, 0};
    for (int s = 0; s < n_seqs; s++) {
        /* grpo: the mean over the sequence's tokens, then over the sequences: each sequence sums to 1/3 */
        const double wg = al_loss_agg_weight(AL_AGG_GRPO, n_tok[s], n_seqs, batch, max_c);
        CHECKF(NEAR(n_tok[s] * wg, 1.0 / 3, 1e-15), "grpo seq %d: %.17g", s, n_tok[s] * wg);
        CHECK(NEAR(wg, 1.0 / (3.0 * n_tok[s]), 1e-15));
        /* bnpo, dapo: 1 / tokens in the batch, whatever the sequence */
        CHECK(NEAR(al_loss_agg_weight(AL_AGG_BNPO, n_tok[s], n_seqs, batch, max_c), 1.0 / 9, 1e-15));
        CHECK(NEAR(al_loss_agg_weight(AL_AGG_DAPO, n_tok[s], n_seqs, batch, max_c), 1.0 / 9, 1e-15));
        /* dr_grpo: 1 / (3 x 8) = 1/24 */
        CHECK(NEAR(al_loss_agg_weight(AL_AGG_DR_GRPO, n_tok[s], n_seqs, batch, max_c), 1.0 / 24, 1e-15));
        for (int a = 0; a < 4; a++)
            total[a] += n_tok[s] * al_loss_agg_weight((al_loss_agg)a, n_tok[s], n_seqs, batch, max_c);
    }
    /* a constant per-token loss of 1 aggregates to 1 except under dr_grpo (9 / 24) */
    CHECK(NEAR(total[AL_AGG_GRPO], 1, 1e-15) && NEAR(total[AL_AGG_BNPO], 1, 1e-15) && NEAR(total[AL_AGG_DAPO], 1, 1e-15));
    CHECK(NEAR(total[AL_AGG_DR_GRPO], 9.0 / 24, 1e-15));
    /* dapo normalizes over the accumulated batch the caller passes (e.g. 4 micro-batches of 9 tokens) */
    CHECK(NEAR(al_loss_agg_weight(AL_AGG_DAPO, 5, 3, 36, 8), 1.0 / 36, 1e-15));
    /* a sequence with no tokens (fully masked) contributes nothing, without a division by zero */
    CHECK(al_loss_agg_weight(AL_AGG_GRPO, 0, 3, 9, 8) == 0);
    CHECK(al_loss_agg_weight(AL_AGG_BNPO, 0, 3, 0, 8) == 0);
}

/* ---- adaptive KL controller ---- */

static void test_kl_ctl(void)
{
    /* fixed (target 0): beta never moves */
    al_kl_ctl c = {.beta = 0.04, .target = 0, .horizon = 10000};
    const double kls[] = {0, 1e-3, 6, 100, -5};
    for (int i = 0; i < 5; i++)
        al_kl_ctl_update(&c, kls[i], 512);
    CHECK(c.beta == 0.04);

    /* target 6, horizon 10000, n_steps 256: e = clip(kl/6 - 1, -0.2, 0.2), beta *= 1 + e 256/10000 */
    /* kl = 18 = 3 target: e = 2 -> clipped to 0.2: beta = 0.1 (1 + 0.2*256/10000) = 0.1 * 1.00512 = 0.100512 */
    c = (al_kl_ctl){.beta = 0.1, .target = 6, .horizon = 10000};
    al_kl_ctl_update(&c, 18, 256);
    CHECKF(NEAR(c.beta, 0.100512, 1e-14), "kl ctl clip high: %.17g", c.beta);
    /* kl = 0: e = -1 -> clipped to -0.2: beta = 0.1 (1 - 0.00512) = 0.099488 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 0, 256);
    CHECKF(NEAR(c.beta, 0.099488, 1e-14), "kl ctl clip low: %.17g", c.beta);
    /* kl = 6.6: e = 1.1 - 1 = 0.1 (inside): beta = 0.1 (1 + 0.1*256/10000) = 0.1 * 1.00256 = 0.100256 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 6.6, 256);
    CHECKF(NEAR(c.beta, 0.100256, 1e-14), "kl ctl inside high: %.17g", c.beta);
    /* kl = 5.4: e = 0.9 - 1 = -0.1: beta = 0.1 * 0.99744 = 0.099744 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 5.4, 256);
    CHECKF(NEAR(c.beta, 0.099744, 1e-14), "kl ctl inside low: %.17g", c.beta);
    /* kl = target: e = 0, beta unchanged */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 6, 256);
    CHECK(c.beta == 0.1);
    /* kl = 7.2 = 1.2 target, exactly at the clip: e = 0.2 either way: 0.100512 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 7.2, 256);
    CHECKF(NEAR(c.beta, 0.100512, 1e-14), "kl ctl at clip: %.17g", c.beta);
    /* updates compound: two steps of kl = 18 with n_steps 1000: 0.1 * 1.02 * 1.02 = 0.10404 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 18, 1000);
    al_kl_ctl_update(&c, 18, 1000);
    CHECKF(NEAR(c.beta, 0.10404, 1e-14), "kl ctl compound: %.17g", c.beta);
    /* n_steps scales the step: kl = 18, n_steps 5000: 0.1 (1 + 0.2 * 0.5) = 0.11 */
    c.beta = 0.1;
    al_kl_ctl_update(&c, 18, 5000);
    CHECKF(NEAR(c.beta, 0.11, 1e-14), "kl ctl n_steps: %.17g", c.beta);
}

int main(void)
{
    test_gae_hand();
    test_gae_identities();
    test_discounted_returns();
    test_whiten();
    test_group_advantages();
    test_clipped_surrogate_hand();
    test_clipped_surrogate_fd();
    test_clipped_value_loss();
    test_kl_hand();
    test_kl_unbiased();
    test_parse();
    test_loss_agg_weight();
    test_kl_ctl();
    return test_report();
}
