/* One RL step: the next prompts, rollouts, rewards, the passes, metrics under TRL's names
 * and the optional dump. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "rl_internal.h"


/* The next prompts_per_step prompts of the shuffled order (reshuffled each pass). */
static void next_prompts(rl_run *R, int *idx)
{
    const int n = R->ps.n;
    for (int p = 0; p < R->o->prompts_per_step; p++, R->cursor++) {
        long epoch = R->cursor / n;
        if (epoch != R->order_epoch) {
            al_epoch_order(R->order, n, R->o->seed, epoch);
            R->order_epoch = epoch;
        }
        idx[p] = R->order[R->cursor % n];
    }
}

static void put(json_t *j, const char *key, double v) { json_object_set_new(j, key, json_real(isfinite(v) ? v : 0)); }

/* mean and (unbiased) std of n values */
static void mean_std(const double *x, int n, int stride, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += x[(size_t)i * stride];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        ss += (x[(size_t)i * stride] - *mean) * (x[(size_t)i * stride] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* DIR/dumps/step_K.jsonl: every sequence of the batch, gathered from the ranks (rank 0
 * writes it; the others take part in the gathering only). */
static int write_dump(const rl_run *R, long step, const rl_rows *b, const double *scores)
{
    const int N = b->n_all, M = b->max_new, W = 1 + 5 * M, T = b->T;
    double *g = calloc((size_t)N * W, sizeof *g); /* per row: count, then tokens, logps, ref, adv, mask */
    if (!g)
        return al_fail("out of memory");
    for (int i = 0; i < b->n; i++) {
        double *row = g + (size_t)b->global[i] * W;
        int c = 0;
        for (int t = 0; t < T && c < M; t++) {
            size_t k = (size_t)i * T + t;
            if (b->targets[k] < 0)
                continue;
            row[1 + c] = b->targets[k], row[1 + M + c] = b->old_logp[k], row[1 + 2 * M + c] = b->ref_logp[k];
            row[1 + 3 * M + c] = b->adv[k], row[1 + 4 * M + c] = b->weight[k] > 0;
            c++;
        }
        row[0] = c;
    }
    int rc = rl_dist_gather(g, (size_t)N * W);
    if (rc || !al_dist_is_root()) {
        free(g);
        return rc;
    }
    char name[64];
    snprintf(name, sizeof name, "dumps/step_%ld.jsonl", step);
    char *dir = al_path_join(R->o->out_dir, "dumps"), *path = al_path_join(R->o->out_dir, name);
    al_buf out = {0};
    rc = dir && path ? al_mkdir_p(dir) : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < N; i++) {
        const double *row = g + (size_t)i * W;
        json_t *j = json_object(), *tok = json_array(), *lp = json_array(), *rl = json_array(), *adv = json_array(),
               *mask = json_array();
        for (int c = 0; c < (int)row[0]; c++) {
            /* the floats as they were: json_real of the float, as one process writes them */
            json_array_append_new(tok, json_integer((json_int_t)row[1 + c]));
            json_array_append_new(lp, json_real((float)row[1 + M + c]));
            json_array_append_new(rl, json_real((float)row[1 + 2 * M + c]));
            json_array_append_new(adv, json_real((float)row[1 + 3 * M + c]));
            json_array_append_new(mask, json_integer((json_int_t)row[1 + 4 * M + c]));
        }
        json_object_set_new(j, "sequence", json_integer(i));
        json_object_set_new(j, "score", json_real(scores[i]));
        json_object_set_new(j, "tokens", tok);
        json_object_set_new(j, "logps", lp);
        json_object_set_new(j, "ref_logps", rl);
        json_object_set_new(j, "advantages", adv);
        json_object_set_new(j, "mask", mask);
        char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(j);
        rc = !text ? al_fail("out of memory") : al_buf_append(&out, text, strlen(text)) || al_buf_append(&out, "\n", 1);
        free(text);
    }
    al_atomic_file f;
    if (rc == 0 && (rc = al_atomic_open(&f, path)) == 0) {
        if (fwrite(out.data, 1, out.len, f.fp) != out.len) {
            al_atomic_abort(&f);
            rc = al_fail("%s: write failed", path);
        } else {
            rc = al_atomic_commit(&f);
        }
    }
    al_buf_free(&out);
    free(dir), free(path), free(g);
    return rc;
}

/* The run's context in *slot for model m, B rows of T: made at the first call (exact
 * mode at the sampling temperature on the rollouts' weight type, for the policy and the
 * reference), reshaped after. */
static al_train_ctx *step_ctx(al_train_ctx **slot, const al_model *m, int B, int T, bool exact, float temperature,
                              al_weight_type wt)
{
    if (*slot)
        return al_train_ctx_reshape(*slot, B, T) ? NULL : *slot;
    al_train_ctx *c = al_train_ctx_new(m, B, T);
    if (c && exact &&
        (al_train_ctx_set_exact(c, true) || al_train_ctx_set_temperature(c, temperature) ||
         al_train_ctx_set_weights(c, wt))) {
        al_train_ctx_free(c);
        c = NULL;
    }
    return *slot = c;
}

/* Every rank's per-sequence figures in global order (exact: see rl_dist.c): per row the
 * score, the K terms, the completion's length and whether it ended on a stop id. */
static int gather_rollouts(const rl_rollout *ro, const double *scores, const double *per_term, int K, int n_all,
                           double *all)
{
    const int W = K + 3;
    memset(all, 0, (size_t)n_all * W * sizeof *all);
    for (int i = 0; i < ro->n; i++) {
        double *row = all + (size_t)ro->seq[i] * W;
        row[0] = scores[i];
        for (int k = 0; k < K; k++)
            row[1 + k] = per_term[(size_t)i * K + k];
        row[K + 1] = ro->len[i], row[K + 2] = ro->eos[i];
    }
    return rl_dist_gather(all, (size_t)n_all * W);
}

int rl_step(rl_run *R, long step, json_t *metrics)
{
    const al_rl_opts *o = R->o;
    const int P = o->prompts_per_step, G = o->num_generations, n = P * G, K = al_rewards_n_terms(R->rewards);
    const uint64_t step_seed = al_mix64(o->seed ^ al_mix64((uint64_t)step));
    const size_t bytes0 = al_dist_bytes_reduced();
    /* the step's P prompts are the same on every rank; this rank samples its groups' (n_loc rows) */
    int *idx = malloc((size_t)P * sizeof *idx), *mine = malloc((size_t)P * sizeof *mine),
        *groups = malloc((size_t)P * sizeof *groups), P_loc = 0;
    double *scores = malloc((size_t)n * sizeof *scores), *per_term = malloc((size_t)n * (K + 1) * sizeof *per_term);
    double *seq_adv = calloc((size_t)n, sizeof *seq_adv), *all = malloc((size_t)n * (K + 3) * sizeof *all);
    /* the whole batch's figures, gathered */
    double *scores_all = malloc((size_t)n * sizeof *scores_all),
           *terms_all = malloc((size_t)n * (K + 1) * sizeof *terms_all);
    rl_rollout ro = {0};
    rl_rows b = {0};
    al_train_ctx *pc = NULL, *rc_ctx = NULL, *cc = NULL;
    int *tokens = NULL, *targets = NULL;
    float *dlogp = NULL;
    first_rows fr = {0};
    int rc = idx && mine && groups && scores && per_term && seq_adv && all && scores_all && terms_all
                 ? 0
                 : al_fail("out of memory");
    double t0 = al_now(), t1 = t0, t2 = t0, t3 = t0, t4 = t0;
    if (rc == 0) {
        next_prompts(R, idx);
        P_loc = rl_dist_groups(idx, P, mine, groups);
        al_sampler_opts so = o->sampling;
        rc = rl_rollout_sample(&ro, &R->dec, &R->m, &R->ps, mine, groups, P_loc, G, o->max_completion_length, &so,
                               R->stop_ids, R->n_stop, step_seed, o->rollout_weights);
    }
    t1 = al_now();
    if (rc == 0)
        rc = rl_score_rollouts(R, &ro, scores, per_term);
    if (rc == 0)
        rc = gather_rollouts(&ro, scores, per_term, K, n, all);
    for (int i = 0; rc == 0 && i < n; i++) {
        scores_all[i] = all[(size_t)i * (K + 3)];
        for (int k = 0; k < K; k++)
            terms_all[(size_t)i * K + k] = all[(size_t)i * (K + 3) + 1 + k];
    }
    t2 = al_now();
    pass_stats ps = {0};
    if (rc == 0)
        rc = rl_rows_build(&b, R, &ro, R->seq_len);
    if (rc == 0) {
        const size_t BT = (size_t)R->micro * b.T;
        tokens = malloc(BT * sizeof *tokens), targets = malloc(BT * sizeof *targets);
        dlogp = malloc(BT * sizeof *dlogp);
        rc = !tokens || !targets || !dlogp ? al_fail("out of memory") : 0;
        const float temp = o->sampling.temperature;
        if (rc == 0 && !(pc = step_ctx(&R->pc, &R->m, R->micro, b.T, true, temp, o->rollout_weights)))
            rc = -1;
        if (rc == 0 && R->have_ref && rl_uses_reference(R) &&
            !(rc_ctx = step_ctx(&R->rc, &R->ref, R->micro, b.T, true, temp, o->rollout_weights)))
            rc = -1;
    }
    if (rc == 0 && R->have_critic && !(cc = step_ctx(&R->cc, &R->critic, R->micro, b.T, false, 1.0f, AL_W_F32)))
        rc = -1;
    if (rc == 0)
        rc = rl_first_rows_plan(&fr, R, &b, step_seed);
    if (rc == 0)
        rc = rl_score_pass(R, &b, pc, rc_ctx, cc, tokens, targets, &fr, &ps);
    if (rc == 0 && ps.mismatched) /* each rank checks its own rows */
        rc = al_fail("step %ld: %ld of %ld sampled log-probabilities differ from the training forward's: sampling "
                     "and training disagree", step, ps.mismatched, ps.tokens);
    t3 = al_now();
    update_stats us = {0};
    if (rc == 0)
        rc = rl_advantages(R, &b, &ro, scores_all, seq_adv);
    if (rc == 0 && step <= o->dump_steps)
        rc = write_dump(R, step, &b, scores_all);
    const double beta_used = R->kl.beta;
    if (rc == 0)
        rc = rl_update(R, &b, pc, cc, tokens, targets, dlogp, step_seed, &fr, &ps, &us);
    t4 = al_now();
    /* the step's sums over every rank's tokens (the value mean's for PPO) */
    double f[] = {ps.kl_est, ps.kl_exact, ps.entropy, (double)ps.tokens, 0, 0, (double)ro.tokens};
    for (size_t k = 0; rc == 0 && R->have_critic && k < (size_t)b.n * b.T; k++)
        if (b.weight[k] > 0)
            f[4] += b.value[k], f[5]++;
    if (rc == 0)
        rc = rl_dist_sum(f, sizeof f / sizeof f[0]);
    ps.kl_est = f[0], ps.kl_exact = f[1], ps.entropy = f[2], ps.tokens = (long)f[3];
    if (rc == 0) {
        /* metrics under TRL's names (GRPOTrainer, PPOTrainer) */
        double mean, std;
        mean_std(scores_all, n, 1, &mean, &std);
        json_object_set_new(metrics, "step", json_integer(step));
        put(metrics, "reward", mean);
        put(metrics, "reward_std", std);
        for (int k = 0; k < K; k++) {
            char key[96];
            double m, s;
            mean_std(terms_all + k, n, K, &m, &s);
            snprintf(key, sizeof key, "rewards/%s/mean", al_rewards_term_name(R->rewards, k));
            put(metrics, key, m);
            snprintf(key, sizeof key, "rewards/%s/std", al_rewards_term_name(R->rewards, k));
            put(metrics, key, s);
        }
        int zero_std = 0, min_len = ro.max_new, max_len = 0, truncated = 0;
        long len_sum = 0;
        for (int p = 0; p < P; p++) {
            double m, s;
            mean_std(scores_all + (size_t)p * G, G, 1, &m, &s);
            zero_std += s < 1e-12;
        }
        for (int i = 0; i < n; i++) {
            const int len = (int)all[(size_t)i * (K + 3) + K + 1];
            len_sum += len;
            min_len = len < min_len ? len : min_len;
            max_len = len > max_len ? len : max_len;
            truncated += all[(size_t)i * (K + 3) + K + 2] == 0;
        }
        put(metrics, "frac_reward_zero_std", (double)zero_std / P);
        put(metrics, "completions/mean_length", (double)len_sum / n);
        json_object_set_new(metrics, "completions/min_length", json_integer(min_len));
        json_object_set_new(metrics, "completions/max_length", json_integer(max_len));
        put(metrics, "completions/clipped_ratio", (double)truncated / n);
        double tok = ps.tokens ? (double)ps.tokens : 1;
        if (rl_uses_reference(R)) {
            put(metrics, "kl", ps.kl_est / tok);
            put(metrics, "kl_exact", ps.kl_exact / tok);
            put(metrics, "objective/kl", ps.kl_est / n);
            put(metrics, "objective/kl_exact", ps.kl_exact / n);
            put(metrics, "objective/rlhf_reward", mean - beta_used * ps.kl_est / n);
        }
        put(metrics, "entropy", ps.entropy / tok);
        put(metrics, "objective/entropy", ps.entropy / n);
        put(metrics, "objective/scores", mean);
        double ut = us.tokens ? (double)us.tokens : 1;
        put(metrics, "loss", us.loss);
        put(metrics, "loss/policy_avg", us.loss);
        if (R->have_critic) {
            double vt = us.value_tokens ? us.value_tokens : 1;
            put(metrics, "loss/value_avg", us.value_loss / (us.updates ? us.updates : 1) / o->vf_coef);
            put(metrics, "val/clipfrac_avg", us.value_clipped / vt);
            put(metrics, "val/mean", f[5] > 0 ? f[4] / f[5] : 0);
        }
        put(metrics, "policy/approxkl_avg", us.approxkl / ut);
        put(metrics, "clip_ratio/low_mean", us.clip_low / ut);
        put(metrics, "clip_ratio/high_mean", us.clip_high / ut);
        put(metrics, "clip_ratio/region_mean", us.clip_region / ut);
        put(metrics, "policy/clipfrac_avg", us.clip_region / ut);
        put(metrics, "grad_norm", us.grad_norm);
        put(metrics, "learning_rate", al_schedule_lr(&R->sched, R->updates - 1));
        put(metrics, "beta", beta_used);
        json_object_set_new(metrics, "ratio_exact_tokens", json_integer(us.first_tokens));
        put(metrics, "time/generation", t1 - t0);
        put(metrics, "time/scoring", t2 - t1);
        put(metrics, "time/reference", t3 - t2);
        put(metrics, "time/training", t4 - t3);
        /* every rank's tokens over this rank's time: the ranks sample at once */
        put(metrics, "rollout_tokens_per_s", f[6] / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
        if (al_dist_size() > 1) /* what this rank sent to the step's collectives */
            json_object_set_new(metrics, "dist/bytes_reduced",
                                json_integer((json_int_t)(al_dist_bytes_reduced() - bytes0)));
        if (rl_uses_reference(R))
            al_kl_ctl_update(&R->kl, ps.kl_est / n, n);
    }
    rl_rows_free(&b);
    rl_first_rows_free(&fr);
    rl_rollout_free(&ro);
    free(idx), free(mine), free(groups), free(scores), free(per_term), free(seq_adv), free(all), free(scores_all);
    free(terms_all), free(tokens), free(targets), free(dlogp);
    return rc;
}
