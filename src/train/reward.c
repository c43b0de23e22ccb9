/* Reward models: the transformer's final hidden state at a sequence's last token, times a
 * score vector, is its reward r.  Pairs train with the Bradley-Terry loss (TRL's
 * RewardTrainer; al_rm_loss in pref_loss.c), the batch loss the mean over pairs. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "align/dist_extra.h"
#include "pref_internal.h"

int al_reward_model_from_lm(al_model *dst, const al_model *lm, uint64_t seed)
{
    if (lm->cfg.n_labels > 0)
        return al_fail("the model already has a score head (%d labels)", lm->cfg.n_labels);
    al_config c = lm->cfg;
    c.n_labels = 1;
    if (al_model_init(dst, &c))
        return -1;
    /* the score head comes last in the layout: everything before it is the LM's */
    memcpy(dst->params, lm->params, lm->n_params * sizeof(float));
    uint64_t rng = seed ? seed : 1;
    for (int i = 0; i < c.dim; i += 2) { /* Box-Muller pairs */
        float u1 = al_xorshift_f32(&rng), u2 = al_xorshift_f32(&rng);
        float rad = sqrtf(-2.0f * logf(u1 > 1e-12f ? u1 : 1e-12f)), th = 6.2831853f * u2;
        dst->w.score[i] = 0.02f * rad * cosf(th);
        if (i + 1 < c.dim)
            dst->w.score[i + 1] = 0.02f * rad * sinf(th);
    }
    return 0;
}

/* Rewards of the batch's rows (0 for empty rows), from the context's hidden states. */
static void row_rewards(const al_model *m, const al_train_ctx *tc, const int *last, int rows, int T, double *out)
{
    const int D = m->cfg.dim;
    const float *h = al_ctx_hidden(tc);
    for (int r = 0; r < rows; r++)
        out[r] = last[r] >= 0 ? cblas_sdot(D, h + ((size_t)r * T + last[r]) * D, 1, m->w.score, 1) : 0.0;
}

typedef struct rm_stats {
    double loss, margin, sum_reward, min_reward, max_reward;
    int correct, pairs;
} rm_stats;

/* Losses of a micro-batch's pairs (items[i], -1 for none); d_reward[row] gets d loss / d r
 * (unscaled). */
static int pair_losses(const pref_run *r, const pref_items *it, const int *items, int B, const double *rw,
                       double *d_reward, rm_stats *st)
{
    for (int i = 0; i < 2 * B; i++)
        d_reward[i] = 0;
    for (int i = 0; i < B; i++) {
        int item = items[i];
        if (item < 0)
            continue;
        double rc = rw[i], rr = rw[B + i], loss;
        if (al_rm_loss(rc, rr, it->margin[item], it->label[item], r->o->center_rewards, &loss, &d_reward[i],
                       &d_reward[B + i]))
            return -1;
        st->loss += loss;
        st->correct += rc > rr;
        st->margin += rc - rr;
        st->sum_reward += rc + rr;
        double lo = rc < rr ? rc : rr, hi = rc < rr ? rr : rc;
        if (st->pairs == 0 || lo < st->min_reward)
            st->min_reward = lo;
        if (st->pairs == 0 || hi > st->max_reward)
            st->max_reward = hi;
        st->pairs++;
    }
    return 0;
}

static void put_metrics(json_t *j, const char *prefix, const rm_stats *s)
{
    const int n = s->pairs ? s->pairs : 1;
    static const char *const names[] = {"accuracy", "margin", "mean_reward", "min_reward", "max_reward"};
    const double v[] = {(double)s->correct / n, s->margin / n, s->sum_reward / (2 * n), s->min_reward, s->max_reward};
    pref_put_metrics(j, prefix, names, v, 5);
}

static int rm_forward(pref_run *r, const pref_items *it, al_train_ctx *tc, const al_model *m, const int *items, int B,
                      int T, double *rw)
{
    pref_batch_fill(&r->batch, it, items, B, T, false);
    if (al_forward_hidden(tc, r->batch.tokens, NULL, NULL))
        return -1;
    row_rewards(m, tc, r->batch.last, 2 * B, T, rw);
    return 0;
}

/* Under mpirun each rank computes the micro-batches k with k % ranks == rank; the rewards
 * (each in its slot, zero elsewhere) are then gathered by one sum, and every rank takes the
 * step's statistics over all pairs in the order one rank would. */
static int rm_step(void *ctx, al_train_loop *L, al_train_ctx *tc, double *loss, double *items, json_t *metrics)
{
    pref_run *r = ctx;
    al_model *m = L->m;
    const int B = L->batch_size, T = L->seq_len, K = L->grad_accum, D = m->cfg.dim;
    double drw[2 * B];
    rm_stats st = {0}, scratch = {0};
    int *picks = malloc((size_t)K * B * sizeof *picks);
    double *rw = calloc(2 * (size_t)K * B + 1, sizeof *rw), *tokens = rw ? rw + 2 * (size_t)K * B : NULL;
    int rc = picks && rw ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < K * B; i++)
        picks[i] = pref_items_next(&r->train, &L->st->cursor);
    for (int k = 0; rc == 0 && k < K; k++) {
        if (!al_dist_owns(k))
            continue;
        const int *mine = picks + (size_t)k * B;
        double *rk = rw + 2 * (size_t)k * B;
        if ((rc = rm_forward(r, &r->train, tc, m, mine, B, T, rk)) ||
            (rc = pair_losses(r, &r->train, mine, B, rk, drw, &scratch)))
            break;
        /* only the last token's hidden state feeds the head */
        memset(r->d_hidden, 0, (size_t)2 * B * T * D * sizeof(float));
        const float *h = al_ctx_hidden(tc);
        for (int row = 0; row < 2 * B; row++) {
            int last = r->batch.last[row];
            if (last < 0)
                continue;
            float g = (float)(drw[row] / (K * B));
            cblas_saxpy(D, g, m->w.score, 1, r->d_hidden + ((size_t)row * T + last) * D, 1);
            cblas_saxpy(D, g, h + ((size_t)row * T + last) * D, 1, m->g.score, 1);
            *tokens += last + 1;
        }
        al_backward_hidden(tc, m, r->d_hidden);
    }
    if (rc == 0)
        rc = al_dist_sum_doubles(rw, 2 * (size_t)K * B + 1);
    for (int k = 0; rc == 0 && k < K; k++)
        rc = pair_losses(r, &r->train, picks + (size_t)k * B, B, rw + 2 * (size_t)k * B, drw, &st);
    if (rc == 0) {
        *loss = st.loss / (K * B);
        *items = *tokens;
        put_metrics(metrics, "", &st);
    }
    free(picks);
    free(rw);
    return rc;
}

static int rm_evaluate(void *ctx, al_train_loop *L, al_train_ctx *tc, json_t *metrics)
{
    pref_run *r = ctx;
    const int B = L->batch_size, T = L->seq_len;
    int n_items = pref_eval_count(&r->eval, L->eval_batches, B);
    double rw[2 * B], drw[2 * B];
    int items[B];
    rm_stats st = {0};
    for (int i0 = 0; i0 < n_items; i0 += B) {
        pref_eval_items(items, i0, n_items, B);
        if (rm_forward(r, &r->eval, tc, L->m, items, B, T, rw))
            return -1;
        if (pair_losses(r, &r->eval, items, B, rw, drw, &st))
            return -1;
    }
    json_object_set_new(metrics, "eval_loss", json_real(st.pairs ? st.loss / st.pairs : NAN));
    put_metrics(metrics, "eval_", &st);
    return 0;
}

al_objective reward_objective(pref_run *r)
{
    return (al_objective){.ctx = r, .rows = 2 * r->o->batch_size, .step = rm_step, .evaluate = rm_evaluate};
}

int al_reward_score(const al_model *m, const al_ints *seqs, int n, int B, int T, float *rewards)
{
    if (m->cfg.n_labels < 1)
        return al_fail("not a reward model: the model has no score head (train one with align rm train)");
    if (T > m->cfg.seq_len)
        T = m->cfg.seq_len;
    al_train_ctx *tc = al_train_ctx_new(m, B, T);
    int *tokens = malloc((size_t)B * T * sizeof *tokens), *last = calloc((size_t)B, sizeof *last);
    double *rw = malloc((size_t)B * sizeof *rw);
    int rc = !tc ? -1 : tokens && last && rw ? 0 : al_fail("out of memory");
    for (int i0 = 0; rc == 0 && i0 < n; i0 += B) {
        for (int r = 0; r < B; r++) {
            int *row = tokens + (size_t)r * T;
            const al_ints *s = i0 + r < n ? &seqs[i0 + r] : NULL;
            int len = s ? (s->n < T ? s->n : T) : 0, skip = s ? s->n - len : 0;
            for (int j = 0; j < T; j++)
                row[j] = j < len ? s->v[skip + j] : 0; /* too long: keep the end */
            last[r] = len - 1;
        }
        if ((rc = al_forward_hidden(tc, tokens, NULL, NULL)))
            break;
        row_rewards(m, tc, last, B, T, rw);
        for (int r = 0; r < B && i0 + r < n; r++)
            rewards[i0 + r] = (float)rw[r];
    }
    al_train_ctx_free(tc);
    free(tokens);
    free(last);
    free(rw);
    return rc;
}
