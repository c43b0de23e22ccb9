/* The passes over one batch: scoring (reference log-probs, the exactness check, exact KL
 * and entropy), advantages for each algorithm, and the clipped policy update. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "rl_internal.h"

/* ---- scoring: reference, the exactness check, KL and entropy ---- */

/* Rows [r0, r0 + B) of b into the micro-batch buffers (missing rows empty). */
void rl_fill_micro(const rl_rows *b, const int *rows, int r0, int n_rows, int B, int *tokens, int *targets)
{
    const int T = b->T;
    for (int j = 0; j < B; j++) {
        int r = r0 + j < n_rows ? rows[r0 + j] : -1;
        for (int t = 0; t < T; t++) {
            tokens[(size_t)j * T + t] = r >= 0 ? b->tokens[(size_t)r * T + t] : 0;
            targets[(size_t)j * T + t] = r >= 0 ? b->targets[(size_t)r * T + t] : -1;
        }
    }
}

bool rl_uses_reference(const rl_run *R) { return R->o->beta > 0 || R->kl.target > 0; }

int rl_first_rows_plan(first_rows *fr, const rl_run *R, const rl_rows *b, uint64_t step_seed)
{
    /* the first minibatch is drawn from the global batch, as rl_update draws it */
    const int n = b->n, N = b->n_all, per_mb = (N + R->o->minibatches - 1) / R->o->minibatches;
    const size_t row_bytes = (size_t)b->T * R->m.cfg.vocab_size * sizeof(float);
    *fr = (first_rows){0};
    fr->slot = malloc((size_t)n * sizeof *fr->slot);
    int *perm = malloc((size_t)N * sizeof *perm);
    if (!fr->slot || !perm) {
        free(perm);
        return al_fail("out of memory");
    }
    for (int i = 0; i < n; i++)
        fr->slot[i] = -1;
    al_epoch_order(perm, N, step_seed, 0); /* rl_update's first minibatch */
    int mine = 0; /* its rows on this rank */
    for (int j = 0; j < per_mb && j < N; j++)
        mine += b->local[perm[j]] >= 0;
    bool keep = !rl_uses_reference(R) || (size_t)mine * row_bytes <= RL_KEEP_MAX_BYTES;
    if (keep && rl_uses_reference(R) && mine > 0 && !(fr->ref_keep = malloc((size_t)mine * row_bytes)))
        keep = false; /* the scoring pass does it all, as it would for a larger batch */
    for (int j = 0, k = 0; keep && j < per_mb && j < N; j++)
        if (b->local[perm[j]] >= 0)
            fr->slot[b->local[perm[j]]] = k++;
    free(perm);
    return 0;
}

void rl_first_rows_free(first_rows *fr)
{
    free(fr->slot);
    free(fr->ref_keep);
    *fr = (first_rows){0};
}

/* Adds one completion token's figures: the policy's entropy and, with a reference (rl, its
 * logits), the exact KL and the estimator's. */
static void add_token_stats(const rl_run *R, pass_stats *st, const float *pl, const float *rl, float lp, float ref_lp)
{
    double h, kl;
    al_softmax_entropy_kl(pl, rl ? rl : pl, R->m.cfg.vocab_size, &h, &kl);
    st->tokens++;
    st->entropy += h;
    if (rl) {
        st->kl_exact += kl;
        st->kl_est += al_kl_estimate(R->o->kl_estimator, lp, ref_lp);
    }
}

/* Reference log-probs into b->ref_logp (and the first rows' reference logits into
 * fr->ref_keep); for every completion token of the other rows, the check that the training
 * forward reproduces the sampled log-probability bit for bit, the exact KL and entropy. */
int rl_score_pass(rl_run *R, rl_rows *b, al_train_ctx *pc, al_train_ctx *rc, al_train_ctx *cc, int *tokens,
                  int *targets, const first_rows *fr, pass_stats *st)
{
    const int B = R->micro, T = b->T, V = R->m.cfg.vocab_size, n = b->n;
    *st = (pass_stats){0};
    int *order = malloc((size_t)n * sizeof *order), n_other = 0;
    if (!order)
        return al_fail("out of memory");
    /* the rows the policy must score come first, so they share as few micro-batches as
     * possible with the rows that need only the reference */
    for (int i = 0; i < n; i++)
        if (fr->slot[i] < 0)
            order[n_other++] = i;
    for (int i = 0, k = n_other; i < n; i++)
        if (fr->slot[i] >= 0)
            order[k++] = i;
    float *values = cc ? malloc((size_t)B * T * sizeof *values) : NULL;
    /* a LoRA reference runs through pc, whose logits the policy forward then overwrites:
     * they are kept here, when some rows need that forward */
    const bool lora_ref = rl_uses_reference(R) && !R->have_ref && n_other > 0;
    float *ref_logits = lora_ref ? malloc((size_t)B * T * V * sizeof *ref_logits) : NULL;
    if ((cc && !values) || (lora_ref && !ref_logits)) {
        free(values), free(order), free(ref_logits);
        return al_fail("out of memory");
    }
    int failed = 0;
    for (int r0 = 0; !failed && r0 < n; r0 += B) {
        rl_fill_micro(b, order, r0, n, B, tokens, targets);
        const int rows = n - r0 < B ? n - r0 : B;
        if (cc) { /* the critic's values before any update */
            if ((failed = rl_critic_values(R, cc, tokens, targets, B, T, values)))
                break;
            for (int j = 0; j < rows; j++)
                memcpy(b->value + (size_t)order[r0 + j] * T, values + (size_t)j * T, (size_t)T * sizeof(float));
        }
        const float *rl = NULL; /* the reference's logits, when there is a reference */
        if (rl_uses_reference(R)) {
            const float *ref_lp;
            if (R->have_ref) {
                if ((failed = al_forward(rc, tokens, targets, NULL, NULL)))
                    break;
                rl = al_ctx_logits(rc), ref_lp = al_ctx_logp(rc);
            } else { /* LoRA: the reference is the policy with its adapters off */
                al_lora_set_enabled(&R->m, false);
                failed = al_forward(pc, tokens, targets, NULL, NULL);
                al_lora_set_enabled(&R->m, true);
                if (failed)
                    break;
                rl = al_ctx_logits(pc), ref_lp = al_ctx_logp(pc);
            }
            for (int j = 0; j < rows; j++) {
                const int r = order[r0 + j];
                for (int t = 0; t < T; t++)
                    if (targets[(size_t)j * T + t] >= 0)
                        b->ref_logp[(size_t)r * T + t] = ref_lp[(size_t)j * T + t];
                if (fr->slot[r] >= 0)
                    memcpy(fr->ref_keep + (size_t)fr->slot[r] * T * V, rl + (size_t)j * T * V,
                           (size_t)T * V * sizeof(float));
            }
            if (!R->have_ref && r0 < n_other) { /* pc's logits are about to be overwritten */
                memcpy(ref_logits, rl, (size_t)B * T * V * sizeof(float));
                rl = ref_logits;
            }
        }
        if (r0 >= n_other)
            continue; /* first-minibatch rows only: the update scores them */
        if ((failed = al_forward(pc, tokens, targets, NULL, NULL)))
            break;
        const float *lp = al_ctx_logp(pc), *pl = al_ctx_logits(pc);
        for (int j = 0; j < rows && r0 + j < n_other; j++) {
            const int r = order[r0 + j];
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)j * T + t, g = (size_t)r * T + t;
                if (targets[k] < 0)
                    continue;
                st->mismatched += memcmp(&lp[k], &b->old_logp[g], sizeof(float)) != 0;
                add_token_stats(R, st, pl + k * V, rl ? rl + k * V : NULL, lp[k], b->ref_logp[g]);
            }
        }
    }
    free(values), free(order), free(ref_logits);
    return failed;
}

/* ---- advantages ---- */

/* Per-token advantages into b->adv and the loss weights' mask (weight 1 = trained).
 * scores[n_all] are the whole batch's (every rank's); seq[n_all] receives the sequence
 * advantages.  Whatever spans the batch is computed from gathered figures, in the global
 * order, so each rank's advantages are the ones a single process computes. */
int rl_advantages(rl_run *R, rl_rows *b, const rl_rollout *ro, const double *scores, double *seq)
{
    const al_rl_opts *o = R->o;
    const int n = b->n, T = b->T, G = o->num_generations, N = b->n_all, P = N / G;
    const double beta = R->kl.beta;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            b->weight[k] = b->targets[k] >= 0 && (ro->eos[i] || !o->mask_truncated) ? 1.0f : 0.0f;
        }
    switch (o->algo) {
    case AL_RL_GRPO:
        if (al_group_advantages(o->scale_rewards, scores, P, G, seq))
            return -1;
        break;
    case AL_RL_RLOO: { /* the KL penalty joins the sequence's reward, then leave-one-out */
        double *r = calloc((size_t)N, sizeof *r);
        if (!r)
            return al_fail("out of memory");
        for (int i = 0; i < n; i++) {
            double kl = 0;
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)i * T + t;
                if (b->targets[k] >= 0 && rl_uses_reference(R))
                    kl += al_kl_estimate(o->kl_estimator, b->old_logp[k], b->ref_logp[k]);
            }
            r[b->global[i]] = scores[b->global[i]] - beta * kl;
        }
        int rc = rl_dist_gather(r, (size_t)N) || al_group_advantages(AL_ADV_RLOO, r, P, G, seq) ? -1 : 0;
        free(r);
        if (rc)
            return -1;
        break;
    }
    default: { /* REINFORCE++ and PPO: per-token KL rewards and the score at the last token; returns
                * (REINFORCE++) or GAE on the critic's values (PPO), whitened over the batch */
        double *base = malloc((size_t)N * sizeof *base), *rw = malloc((size_t)T * sizeof *rw),
               *ret = malloc((size_t)T * sizeof *ret), *val = malloc((size_t)T * sizeof *val),
               *gae = malloc((size_t)T * sizeof *gae);
        int rc = base && rw && ret && val && gae ? 0 : al_fail("out of memory");
        if (rc == 0 && o->algo == AL_RL_REINFORCE_PP_BASELINE)
            rc = al_group_advantages(AL_ADV_MEAN_BASELINE, scores, P, G, base);
        else if (rc == 0)
            memcpy(base, scores, (size_t)N * sizeof *base);
        for (int i = 0; rc == 0 && i < n; i++) {
            int first = -1, c = 0;
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)i * T + t;
                if (b->targets[k] < 0)
                    continue;
                first = first < 0 ? t : first;
                val[c] = b->value[k];
                rw[c++] = rl_uses_reference(R) ? -beta * al_kl_estimate(o->kl_estimator, b->old_logp[k], b->ref_logp[k]) : 0;
            }
            if (c == 0)
                continue;
            rw[c - 1] += base[b->global[i]];
            if (o->algo == AL_RL_PPO) {
                al_gae(rw, val, c, o->gamma, o->gae_lambda, gae, ret);
                for (int j = 0; j < c; j++)
                    b->adv[(size_t)i * T + first + j] = (float)gae[j], b->ret[(size_t)i * T + first + j] = (float)ret[j];
            } else {
                al_discounted_returns(rw, c, o->gamma, ret);
                for (int j = 0; j < c; j++)
                    b->adv[(size_t)i * T + first + j] = (float)ret[j];
            }
        }
        /* whiten over every trained token of the batch, all ranks' in one list */
        rl_tokens tk = {0};
        if (rc == 0 && (rc = rl_dist_tokens(&tk, b, b->adv)) == 0) {
            al_whiten(tk.v, (int)tk.m, true);
            rl_dist_tokens_put(&tk, b, b->adv);
        }
        rl_tokens_free(&tk);
        free(base), free(rw), free(ret), free(val), free(gae);
        return rc;
    }
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++)
            b->adv[(size_t)i * T + t] = b->targets[(size_t)i * T + t] >= 0 ? (float)seq[b->global[i]] : 0.0f;
    return 0;
}

/* ---- the policy update ---- */

/* ppo_epochs x minibatches clipped updates over the batch (and the critic's, for PPO); the
 * first minibatch must reproduce the sampled log-probabilities bit for bit.  Minibatches
 * are drawn from the global batch; each rank backpropagates its rows of one, the ranks'
 * gradients are summed, and every rank takes the same optimizer step.  The loss weights
 * use the global counts (rows and tokens of the minibatch, tokens of the batch). */
int rl_update(rl_run *R, const rl_rows *b, al_train_ctx *pc, al_train_ctx *cc, int *tokens, int *targets,
              float *dlogp, uint64_t step_seed, const first_rows *fr, pass_stats *st, update_stats *us)
{
    const al_rl_opts *o = R->o;
    const int N = b->n_all, T = b->T, B = R->micro, E = o->ppo_epochs, MB = o->minibatches;
    al_lora *lo = R->m.lora;
    float *params = lo ? lo->params : R->m.params, *grads = lo ? lo->grads : R->m.grads;
    const size_t n_params = lo ? lo->n_params : R->m.n_params;
    const int per_mb = (N + MB - 1) / MB;
    int *perm = malloc((size_t)E * N * sizeof *perm), *rows = malloc((size_t)per_mb * sizeof *rows);
    double *count = calloc((size_t)E * MB + 1, sizeof *count); /* trained tokens per minibatch, then the batch's */
    if (!perm || !rows || !count) {
        free(perm), free(rows), free(count);
        return al_fail("out of memory");
    }
    for (int e = 0; e < E; e++) {
        al_epoch_order(perm + (size_t)e * N, N, step_seed, e);
        for (int j = 0; j < N; j++) {
            const int r = b->local[perm[(size_t)e * N + j]];
            for (int t = 0; r >= 0 && t < T; t++)
                count[(size_t)e * MB + j / per_mb] += b->weight[(size_t)r * T + t] > 0;
        }
    }
    for (int i = 0; i < b->n; i++)
        for (int t = 0; t < T; t++)
            count[(size_t)E * MB] += b->weight[(size_t)i * T + t] > 0;
    int rc = rl_dist_sum(count, (size_t)E * MB + 1);
    const double batch_tokens = count[(size_t)E * MB];
    *us = (update_stats){0};
    for (int e = 0; rc == 0 && e < E; e++) {
        for (int mb = 0; rc == 0 && mb < MB; mb++) {
            const int *chunk = perm + (size_t)e * N + (size_t)mb * per_mb;
            int n_rows = N - mb * per_mb < per_mb ? N - mb * per_mb : per_mb, n_loc = 0;
            if (n_rows <= 0)
                break;
            for (int j = 0; j < n_rows; j++) /* this rank's rows of the minibatch */
                if (b->local[chunk[j]] >= 0)
                    rows[n_loc++] = b->local[chunk[j]];
            const double mb_tokens = count[(size_t)e * MB + mb];
            lo ? al_lora_zero_grads(&R->m) : al_model_zero_grads(&R->m);
            if (cc)
                al_model_zero_grads(&R->critic);
            for (int r0 = 0; rc == 0 && r0 < n_loc; r0 += B) {
                rl_fill_micro(b, rows, r0, n_loc, B, tokens, targets);
                if (al_forward(pc, tokens, targets, NULL, NULL)) {
                    rc = -1;
                    break;
                }
                const float *lp = al_ctx_logp(pc), *pl = al_ctx_logits(pc);
                const int V = R->m.cfg.vocab_size;
                for (int j = 0; j < B; j++) {
                    int r = r0 + j < n_loc ? rows[r0 + j] : -1;
                    for (int t = 0; t < T; t++) {
                        size_t k = (size_t)j * T + t, g = (size_t)r * T + t;
                        dlogp[k] = 0;
                        if (r < 0 || targets[k] < 0)
                            continue;
                        if (e == 0 && mb == 0) { /* nothing has moved yet: the ratio must be exactly 1 */
                            us->first_tokens++;
                            us->first_unequal += memcmp(&lp[k], &b->old_logp[g], sizeof(float)) != 0;
                            if (fr->slot[r] >= 0)
                                add_token_stats(R, st, pl + k * V,
                                                fr->ref_keep ? fr->ref_keep + ((size_t)fr->slot[r] * T + t) * V : NULL,
                                                lp[k], b->ref_logp[g]);
                        }
                        if (b->weight[g] <= 0)
                            continue;
                        double w = o->algo == AL_RL_PPO || o->loss_type == AL_AGG_BNPO ? 1.0 / mb_tokens
                                   : o->loss_type == AL_AGG_DAPO ? (double)MB / batch_tokens
                                                                 : al_loss_agg_weight(o->loss_type, b->n_tok[r], n_rows,
                                                                                      (long)mb_tokens,
                                                                                      o->max_completion_length);
                        al_clip_out c;
                        al_clipped_surrogate(lp[k], b->old_logp[g], b->adv[g], o->epsilon_low, o->epsilon_high, &c);
                        double loss = c.loss, d = c.dlogp;
                        if (o->algo == AL_RL_GRPO && rl_uses_reference(R)) {
                            double kl = al_kl_estimate(o->kl_estimator, lp[k], b->ref_logp[g]);
                            loss += R->kl.beta * kl;
                            d += R->kl.beta * al_kl_estimate_grad(o->kl_estimator, lp[k], b->ref_logp[g]);
                            us->kl_in_loss += kl;
                        }
                        dlogp[k] = (float)(w * d);
                        us->loss += w * loss; /* the minibatch's loss; averaged over updates below */
                        double dl = lp[k] - b->old_logp[g];
                        us->approxkl += 0.5 * dl * dl;
                        us->clip_low += c.low, us->clip_high += c.high, us->clip_region += c.low || c.high;
                        us->tokens++;
                    }
                }
                al_backward(pc, &R->m, dlogp);
                if (cc) { /* the critic on the same rows: vf_coef x the masked mean of the value loss */
                    int micro_rows[B];
                    for (int j = 0; j < B; j++)
                        micro_rows[j] = r0 + j < n_loc ? rows[r0 + j] : -1;
                    if (rl_critic_backward(R, cc, b, micro_rows, tokens, targets, B, o->vf_coef / mb_tokens, us)) {
                        rc = -1;
                        break;
                    }
                }
            }
            if (rc)
                break;
            if (us->first_unequal) {
                rc = al_fail("step %ld: %ld of %ld log-probabilities of the first minibatch differ from the ones "
                             "recorded while sampling: sampling and training disagree (the ratio must be exactly 1)",
                             R->updates, us->first_unequal, us->first_tokens);
                break;
            }
            /* the minibatch's gradient: every rank's rows (a no-op on one rank) */
            if (al_dist_sum_floats(grads, n_params) ||
                (cc && al_dist_sum_floats(R->critic.grads, R->critic.n_params))) {
                rc = -1;
                break;
            }
            double norm = al_grad_clip(grads, n_params, o->grad_clip > 0 ? o->grad_clip : INFINITY);
            us->grad_norm += norm;
            float lr = al_schedule_lr(&R->sched, R->updates);
            al_adamw_step(&R->opt, params, grads, lr);
            if (cc)
                rl_critic_step(R, lr);
            R->updates++;
            us->updates++;
        }
    }
    free(perm), free(rows), free(count);
    if (rc == 0) { /* the figures of the metrics, over every rank's tokens */
        double f[] = {us->loss,         us->approxkl,      us->clip_low,           us->clip_high,
                      us->clip_region,  us->kl_in_loss,    us->value_loss,         us->value_clipped,
                      us->value_tokens, (double)us->tokens, (double)us->first_tokens};
        rc = rl_dist_sum(f, sizeof f / sizeof f[0]);
        us->loss = f[0], us->approxkl = f[1], us->clip_low = f[2], us->clip_high = f[3], us->clip_region = f[4];
        us->kl_in_loss = f[5], us->value_loss = f[6], us->value_clipped = f[7], us->value_tokens = f[8];
        us->tokens = (long)f[9], us->first_tokens = (long)f[10];
    }
    if (us->updates)
        us->loss /= us->updates, us->grad_norm /= us->updates;
    return rc;
}
