/* One RL step: the next prompts, rollouts, rewards, the passes, metrics under TRL's names
 * and the optional dump. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static int write_dump(const rl_run *R, long step, const rl_rows *b, const double *scores)
{
    char name[64];
    snprintf(name, sizeof name, "dumps/step_%ld.jsonl", step);
    char *dir = al_path_join(R->o->out_dir, "dumps"), *path = al_path_join(R->o->out_dir, name);
    al_buf out = {0};
    int rc = dir && path ? al_mkdir_p(dir) : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < b->n; i++) {
        json_t *j = json_object(), *tok = json_array(), *lp = json_array(), *rl = json_array(), *adv = json_array(),
               *mask = json_array();
        for (int t = 0; t < b->T; t++) {
            size_t k = (size_t)i * b->T + t;
            if (b->targets[k] < 0)
                continue;
            json_array_append_new(tok, json_integer(b->targets[k]));
            json_array_append_new(lp, json_real(b->old_logp[k]));
            json_array_append_new(rl, json_real(b->ref_logp[k]));
            json_array_append_new(adv, json_real(b->adv[k]));
            json_array_append_new(mask, json_integer(b->weight[k] > 0));
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
    free(dir), free(path);
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

int rl_step(rl_run *R, long step, json_t *metrics)
{
    const al_rl_opts *o = R->o;
    const int P = o->prompts_per_step, G = o->num_generations, n = P * G, K = al_rewards_n_terms(R->rewards);
    const uint64_t step_seed = al_mix64(o->seed ^ al_mix64((uint64_t)step));
    int *idx = malloc((size_t)P * sizeof *idx);
    double *scores = malloc((size_t)n * sizeof *scores), *per_term = malloc((size_t)n * K * sizeof *per_term);
    double *seq_adv = calloc((size_t)n, sizeof *seq_adv);
    rl_rollout ro = {0};
    rl_rows b = {0};
    al_train_ctx *pc = NULL, *rc_ctx = NULL, *cc = NULL;
    int *tokens = NULL, *targets = NULL;
    float *dlogp = NULL;
    first_rows fr = {0};
    int rc = idx && scores && per_term && seq_adv ? 0 : al_fail("out of memory");
    double t0 = al_now(), t1 = t0, t2 = t0, t3 = t0, t4 = t0;
    if (rc == 0) {
        next_prompts(R, idx);
        al_sampler_opts so = o->sampling;
        rc = rl_rollout_sample(&ro, &R->dec, &R->m, &R->ps, idx, P, G, o->max_completion_length, &so, R->stop_ids, R->n_stop,
                               step_seed, o->rollout_weights);
    }
    t1 = al_now();
    if (rc == 0)
        rc = rl_score_rollouts(R, &ro, scores, per_term);
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
    if (rc == 0 && ps.mismatched)
        rc = al_fail("step %ld: %ld of %ld sampled log-probabilities differ from the training forward's: sampling "
                     "and training disagree", step, ps.mismatched, ps.tokens);
    t3 = al_now();
    update_stats us = {0};
    if (rc == 0)
        rc = rl_advantages(R, &b, &ro, scores, seq_adv);
    if (rc == 0 && step <= o->dump_steps)
        rc = write_dump(R, step, &b, scores);
    const double beta_used = R->kl.beta;
    if (rc == 0)
        rc = rl_update(R, &b, pc, cc, tokens, targets, dlogp, step_seed, &fr, &ps, &us);
    t4 = al_now();
    if (rc == 0) {
        /* metrics under TRL's names (GRPOTrainer, PPOTrainer) */
        double mean, std;
        mean_std(scores, n, 1, &mean, &std);
        json_object_set_new(metrics, "step", json_integer(step));
        put(metrics, "reward", mean);
        put(metrics, "reward_std", std);
        for (int k = 0; k < K; k++) {
            char key[96];
            double m, s;
            mean_std(per_term + k, n, K, &m, &s);
            snprintf(key, sizeof key, "rewards/%s/mean", al_rewards_term_name(R->rewards, k));
            put(metrics, key, m);
            snprintf(key, sizeof key, "rewards/%s/std", al_rewards_term_name(R->rewards, k));
            put(metrics, key, s);
        }
        int zero_std = 0, min_len = ro.max_new, max_len = 0, truncated = 0;
        long len_sum = 0;
        for (int p = 0; p < P; p++) {
            double m, s;
            mean_std(scores + (size_t)p * G, G, 1, &m, &s);
            zero_std += s < 1e-12;
        }
        for (int i = 0; i < n; i++) {
            len_sum += ro.len[i];
            min_len = ro.len[i] < min_len ? ro.len[i] : min_len;
            max_len = ro.len[i] > max_len ? ro.len[i] : max_len;
            truncated += !ro.eos[i];
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
            double vt = us.value_tokens ? us.value_tokens : 1, vm = 0;
            long nv = 0;
            for (size_t k = 0; k < (size_t)b.n * b.T; k++)
                if (b.weight[k] > 0)
                    vm += b.value[k], nv++;
            put(metrics, "loss/value_avg", us.value_loss / (us.updates ? us.updates : 1) / o->vf_coef);
            put(metrics, "val/clipfrac_avg", us.value_clipped / vt);
            put(metrics, "val/mean", nv ? vm / nv : 0);
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
        put(metrics, "rollout_tokens_per_s", (double)ro.tokens / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
        if (rl_uses_reference(R))
            al_kl_ctl_update(&R->kl, ps.kl_est / n, n);
    }
    rl_rows_free(&b);
    rl_first_rows_free(&fr);
    rl_rollout_free(&ro);
    free(idx), free(scores), free(per_term), free(seq_adv), free(tokens), free(targets), free(dlogp);
    return rc;
}

