/* The online-RL loop (GRPO, RLOO, REINFORCE++): sample, score, compare with the reference,
 * compute advantages, then several clipped policy-gradient updates per batch.  Sampling
 * and training share the exact kernels, so the log-probabilities recorded while sampling
 * are the "old" log-probabilities, and the first minibatch of each batch checks that the
 * probability ratio is exactly 1.  docs/online_rl.md gives the formulas and metrics. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

static const char *const algo_names[] = {"grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"};

int al_rl_algo_parse(const char *name, al_rl_algo *out)
{
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, algo_names[k]))
            return *out = (al_rl_algo)k, 0;
    return al_fail("unknown algorithm '%s' (expected grpo, rloo, reinforce_pp or reinforce_pp_baseline)", name);
}

const char *al_rl_algo_name(al_rl_algo a) { return (unsigned)a < 4 ? algo_names[a] : "?"; }

void al_rl_defaults(al_rl_opts *o, al_rl_algo algo)
{
    *o = (al_rl_opts){0};
    o->algo = algo;
    o->chat_template = "chatml";
    o->prompts_per_step = 8;
    o->num_generations = 8;
    o->max_completion_length = 64;
    o->max_prompt_length = 128;
    o->sampling = al_sampler_defaults(); /* temperature 1, as TRL's GRPO */
    o->missing_eos_penalty = 0;
    o->beta = algo == AL_RL_GRPO ? 0.04 : 0.05;
    o->kl_estimator = algo == AL_RL_GRPO ? AL_KL_K3 : AL_KL_K1;
    o->scale_rewards = AL_ADV_GRPO_GROUP;
    o->loss_type = AL_AGG_GRPO;
    o->epsilon_low = o->epsilon_high = 0.2;
    o->ppo_epochs = 1;
    o->minibatches = 1;
    o->gamma = 1.0;
    o->steps = 100;
    o->seq_len = 0;
    o->sched = (al_schedule){.kind = AL_SCHED_CONSTANT, .peak_lr = 1e-5f};
    o->adamw = al_adamw_defaults();
    o->adamw.weight_decay = 0;
    o->grad_clip = 1.0f;
    o->keep = 2;
    o->log_every = 1;
    o->seed = 1;
    o->lora_cfg = (al_lora_config){.rank = 16, .alpha = 32, .targets = AL_LORA_ALL, .seed = 1};
}

/* ---- the run ---- */

typedef struct rl_run {
    const al_rl_opts *o;
    al_tokenizer *tok;
    al_chat_template *tmpl;
    al_model m, ref;        /* ref unused with LoRA (adapters off) or beta 0 */
    bool have_ref;
    rl_prompts ps;
    al_rewards *rewards;
    al_adamw opt;
    al_metrics mt;
    int *stop_ids, n_stop;
    int *order;             /* prompt order of the current epoch */
    long order_epoch, cursor; /* prompts consumed */
    long updates;           /* optimizer updates taken */
    al_kl_ctl kl;
    al_schedule sched;      /* over optimizer updates */
    int micro;              /* rows per forward */
    int seq_len;            /* training rows' limit: --seq-len or the model's positions */
} rl_run;

/* The rows of one batch: prompt + completion per sequence, targets on the completion. */
typedef struct rl_rows {
    int n, T;
    int *tokens, *targets;  /* [n][T] */
    float *old_logp;        /* [n][T] at target positions (sampling's), 0 elsewhere */
    float *ref_logp;        /* [n][T] */
    float *adv;             /* [n][T] per-token advantages */
    float *weight;          /* [n][T] the token's weight in the loss (0: not trained) */
    int *n_tok;             /* [n] completion tokens */
} rl_rows;

static void rows_free(rl_rows *b)
{
    free(b->tokens), free(b->targets), free(b->old_logp), free(b->ref_logp), free(b->adv), free(b->weight);
    free(b->n_tok);
    *b = (rl_rows){0};
}

static int rows_build(rl_rows *b, const rl_run *R, const rl_rollout *ro, int seq_len)
{
    int longest = 1;
    for (int i = 0; i < ro->n; i++) {
        int len = R->ps.p[ro->prompt[i]].ids.n + ro->len[i] - 1;
        longest = len > longest ? len : longest;
    }
    int T = (longest + 15) / 16 * 16;
    T = T < seq_len ? T : seq_len;
    const size_t NT = (size_t)ro->n * T;
    *b = (rl_rows){.n = ro->n, .T = T};
    b->tokens = malloc(NT * sizeof *b->tokens), b->targets = malloc(NT * sizeof *b->targets);
    b->old_logp = calloc(NT, sizeof *b->old_logp), b->ref_logp = calloc(NT, sizeof *b->ref_logp);
    b->adv = calloc(NT, sizeof *b->adv), b->weight = calloc(NT, sizeof *b->weight);
    b->n_tok = calloc((size_t)ro->n, sizeof *b->n_tok);
    if (!b->tokens || !b->targets || !b->old_logp || !b->ref_logp || !b->adv || !b->weight || !b->n_tok)
        return al_fail("out of memory");
    for (int i = 0; i < ro->n; i++) {
        const al_ints *p = &R->ps.p[ro->prompt[i]].ids;
        const int *c = ro->ids + (size_t)i * ro->max_new;
        int *tk = b->tokens + (size_t)i * T, *tg = b->targets + (size_t)i * T;
        for (int t = 0; t < T; t++) {
            int at = t, next = t + 1; /* position t reads token t and predicts token t + 1 */
            tk[t] = at < p->n ? p->v[at] : at - p->n < ro->len[i] ? c[at - p->n] : 0;
            tg[t] = next >= p->n && next - p->n < ro->len[i] ? c[next - p->n] : -1;
            if (tg[t] >= 0) {
                b->old_logp[(size_t)i * T + t] = ro->logp[(size_t)i * ro->max_new + next - p->n];
                b->n_tok[i]++;
            }
        }
    }
    return 0;
}

/* ---- rewards ---- */

/* The completion's text: decoded, cut at the first template marker, trimmed. */
static int completion_text(const rl_run *R, const al_ints *prompt, const int *ids, int n, char **out)
{
    al_buf t = {0};
    int prev = prompt->v[prompt->n - 1];
    for (int k = 0; k < n; k++) {
        if (al_tokenizer_decode_token(R->tok, prev, ids[k], &t)) {
            al_buf_free(&t);
            return -1;
        }
        prev = ids[k];
    }
    if (al_buf_append(&t, "", 0))
        return -1;
    const char **marks;
    int n_marks = 0;
    al_chat_template_specials(R->tmpl, &marks, &n_marks);
    size_t end = t.len;
    for (int k = 0; k < n_marks; k++) {
        char *at = strstr(t.data, marks[k]);
        if (at && (size_t)(at - t.data) < end)
            end = (size_t)(at - t.data);
    }
    while (end > 0 && strchr(" \t\r\n", t.data[end - 1]))
        end--;
    size_t start = strspn(t.data, " \t\r\n");
    start = start < end ? start : end;
    memmove(t.data, t.data + start, end - start);
    t.data[end - start] = 0;
    *out = t.data;
    return 0;
}

/* scores[i] (with the missing-EOS penalty), per_term[i][k] unweighted. */
static int score_rollouts(rl_run *R, const rl_rollout *ro, double *scores, double *per_term)
{
    al_reward_sample *s = calloc((size_t)ro->n, sizeof *s);
    char **texts = calloc((size_t)ro->n, sizeof *texts);
    int rc = s && texts ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < ro->n; i++) {
        const rl_prompt *p = &R->ps.p[ro->prompt[i]];
        const int *ids = ro->ids + (size_t)i * ro->max_new;
        int n = ro->len[i] - (ro->eos[i] ? 1 : 0); /* the reward sees no stop marker */
        rc = completion_text(R, &p->ids, ids, n, &texts[i]);
        s[i] = (al_reward_sample){.prompt = p->text, .query = p->query, .completion = texts[i],
                                  .prompt_ids = p->ids.v, .n_prompt = p->ids.n, .completion_ids = ids,
                                  .n_completion = ro->len[i], .eos = ro->eos[i]};
    }
    if (rc == 0)
        rc = al_rewards_score(R->rewards, s, ro->n, scores, per_term);
    for (int i = 0; rc == 0 && i < ro->n; i++)
        if (!ro->eos[i])
            scores[i] -= R->o->missing_eos_penalty;
    for (int i = 0; texts && i < ro->n; i++)
        free(texts[i]);
    free(texts), free(s);
    return rc;
}

/* ---- the scoring pass: reference, the exactness check, KL and entropy ---- */

typedef struct pass_stats {
    double kl_est, kl_exact, entropy; /* sums over completion tokens */
    long tokens, mismatched;
} pass_stats;

/* Entropy of the policy row and the exact KL(policy || reference) over the vocabulary. */
static void token_stats(const float *pl, const float *rl, int V, double *entropy, double *kl)
{
    double mp = pl[0], mr = rl[0], sp = 0, sr = 0;
    for (int v = 1; v < V; v++)
        mp = pl[v] > mp ? pl[v] : mp, mr = rl[v] > mr ? rl[v] : mr;
    for (int v = 0; v < V; v++)
        sp += exp(pl[v] - mp), sr += exp(rl[v] - mr);
    double lzp = mp + log(sp), lzr = mr + log(sr), h = 0, k = 0;
    for (int v = 0; v < V; v++) {
        double lp = pl[v] - lzp, p = exp(lp);
        h -= p * lp;
        k += p * (lp - (rl[v] - lzr));
    }
    *entropy = h, *kl = k;
}

/* Rows [r0, r0 + B) of b into the micro-batch buffers (missing rows empty). */
static void fill_micro(const rl_rows *b, const int *rows, int r0, int n_rows, int B, int *tokens, int *targets)
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

static bool use_reference(const rl_run *R) { return R->o->beta > 0 || R->kl.target > 0; }

/* Reference log-probs into b->ref_logp, and for every completion token the check that the
 * training forward reproduces the sampled log-probability bit for bit. */
static int score_pass(rl_run *R, rl_rows *b, al_train_ctx *pc, al_train_ctx *rc, float *ref_logits, int *tokens,
                      int *targets, const int *all_rows, pass_stats *st)
{
    const int B = R->micro, T = b->T, V = R->m.cfg.vocab_size;
    *st = (pass_stats){0};
    for (int r0 = 0; r0 < b->n; r0 += B) {
        fill_micro(b, all_rows, r0, b->n, B, tokens, targets);
        const float *rl = NULL; /* the reference's logits, when there is a reference */
        if (use_reference(R)) {
            const float *ref_lp;
            if (R->have_ref) {
                if (al_forward(rc, tokens, targets, NULL, NULL))
                    return -1;
                rl = al_ctx_logits(rc), ref_lp = al_ctx_logp(rc);
            } else { /* LoRA: the reference is the policy with its adapters off */
                al_lora_set_enabled(&R->m, false);
                int failed = al_forward(pc, tokens, targets, NULL, NULL);
                al_lora_set_enabled(&R->m, true);
                if (failed)
                    return -1;
                memcpy(ref_logits, al_ctx_logits(pc), (size_t)B * T * V * sizeof(float));
                memcpy(ref_logits + (size_t)B * T * V, al_ctx_logp(pc), (size_t)B * T * sizeof(float));
                rl = ref_logits, ref_lp = ref_logits + (size_t)B * T * V;
            }
            for (int j = 0; j < B && r0 + j < b->n; j++)
                for (int t = 0; t < T; t++)
                    if (targets[(size_t)j * T + t] >= 0)
                        b->ref_logp[(size_t)(r0 + j) * T + t] = ref_lp[(size_t)j * T + t];
        }
        if (al_forward(pc, tokens, targets, NULL, NULL))
            return -1;
        const float *lp = al_ctx_logp(pc), *pl = al_ctx_logits(pc);
        for (int j = 0; j < B && r0 + j < b->n; j++) {
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)j * T + t, g = (size_t)(r0 + j) * T + t;
                if (targets[k] < 0)
                    continue;
                st->tokens++;
                st->mismatched += memcmp(&lp[k], &b->old_logp[g], sizeof(float)) != 0;
                if (rl) {
                    double h, kl;
                    token_stats(pl + k * V, rl + k * V, V, &h, &kl);
                    st->entropy += h, st->kl_exact += kl;
                    st->kl_est += al_kl_estimate(R->o->kl_estimator, lp[k], b->ref_logp[g]);
                } else {
                    /* entropy alone: the policy against itself */
                    double h, kl;
                    token_stats(pl + k * V, pl + k * V, V, &h, &kl);
                    st->entropy += h;
                }
            }
        }
    }
    return 0;
}

/* ---- advantages ---- */

/* Per-token advantages into b->adv and the loss weights' mask (weight 1 = trained). */
static int advantages(rl_run *R, rl_rows *b, const rl_rollout *ro, const double *scores, double *seq)
{
    const al_rl_opts *o = R->o;
    const int n = b->n, T = b->T, G = o->num_generations, P = n / G;
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
        double *r = malloc((size_t)n * sizeof *r);
        if (!r)
            return al_fail("out of memory");
        for (int i = 0; i < n; i++) {
            double kl = 0;
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)i * T + t;
                if (b->targets[k] >= 0 && use_reference(R))
                    kl += al_kl_estimate(o->kl_estimator, b->old_logp[k], b->ref_logp[k]);
            }
            r[i] = scores[i] - beta * kl;
        }
        int rc = al_group_advantages(AL_ADV_RLOO, r, P, G, seq);
        free(r);
        if (rc)
            return -1;
        break;
    }
    default: { /* REINFORCE++: per-token KL rewards, the score at the last token, returns, whitened */
        double *base = malloc((size_t)n * sizeof *base), *rw = malloc((size_t)T * sizeof *rw),
               *ret = malloc((size_t)T * sizeof *ret), *all = malloc((size_t)n * T * sizeof *all);
        int rc = base && rw && ret && all ? 0 : al_fail("out of memory");
        if (rc == 0 && o->algo == AL_RL_REINFORCE_PP_BASELINE)
            rc = al_group_advantages(AL_ADV_MEAN_BASELINE, scores, P, G, base);
        else if (rc == 0)
            memcpy(base, scores, (size_t)n * sizeof *base);
        long m = 0;
        for (int i = 0; rc == 0 && i < n; i++) {
            int first = -1, c = 0;
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)i * T + t;
                if (b->targets[k] < 0)
                    continue;
                first = first < 0 ? t : first;
                rw[c++] = use_reference(R) ? -beta * al_kl_estimate(o->kl_estimator, b->old_logp[k], b->ref_logp[k]) : 0;
            }
            if (c == 0)
                continue;
            rw[c - 1] += base[i];
            al_discounted_returns(rw, c, o->gamma, ret);
            for (int j = 0; j < c; j++)
                b->adv[(size_t)i * T + first + j] = (float)ret[j];
            seq[i] = ret[0];
        }
        /* whiten over every trained token of the batch */
        for (int i = 0; rc == 0 && i < n; i++)
            for (int t = 0; t < T; t++)
                if (b->weight[(size_t)i * T + t] > 0)
                    all[m++] = b->adv[(size_t)i * T + t];
        if (rc == 0)
            al_whiten(all, (int)m, true);
        m = 0;
        for (int i = 0; rc == 0 && i < n; i++)
            for (int t = 0; t < T; t++)
                if (b->weight[(size_t)i * T + t] > 0)
                    b->adv[(size_t)i * T + t] = (float)all[m++];
        free(base), free(rw), free(ret), free(all);
        return rc;
    }
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++)
            b->adv[(size_t)i * T + t] = b->targets[(size_t)i * T + t] >= 0 ? (float)seq[i] : 0.0f;
    return 0;
}

/* ---- the policy update ---- */

typedef struct update_stats {
    double loss, approxkl, clip_low, clip_high, clip_region, kl_in_loss, grad_norm;
    long tokens, first_tokens, first_unequal;
    int updates;
} update_stats;

static int update(rl_run *R, const rl_rows *b, al_train_ctx *pc, int *tokens, int *targets, float *dlogp,
                  uint64_t step_seed, update_stats *us)
{
    const al_rl_opts *o = R->o;
    const int n = b->n, T = b->T, B = R->micro;
    al_lora *lo = R->m.lora;
    float *params = lo ? lo->params : R->m.params, *grads = lo ? lo->grads : R->m.grads;
    const size_t n_params = lo ? lo->n_params : R->m.n_params;
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        return al_fail("out of memory");
    long batch_tokens = 0;
    for (size_t k = 0; k < (size_t)n * T; k++)
        batch_tokens += b->weight[k] > 0;
    const int per_mb = (n + o->minibatches - 1) / o->minibatches;
    *us = (update_stats){0};
    int rc = 0;
    for (int e = 0; rc == 0 && e < o->ppo_epochs; e++) {
        al_epoch_order(perm, n, step_seed, e);
        for (int mb = 0; rc == 0 && mb < o->minibatches; mb++) {
            const int *rows = perm + (size_t)mb * per_mb;
            int n_rows = n - mb * per_mb < per_mb ? n - mb * per_mb : per_mb;
            if (n_rows <= 0)
                break;
            long mb_tokens = 0;
            for (int j = 0; j < n_rows; j++)
                for (int t = 0; t < T; t++)
                    mb_tokens += b->weight[(size_t)rows[j] * T + t] > 0;
            lo ? al_lora_zero_grads(&R->m) : al_model_zero_grads(&R->m);
            for (int r0 = 0; rc == 0 && r0 < n_rows; r0 += B) {
                fill_micro(b, rows, r0, n_rows, B, tokens, targets);
                if (al_forward(pc, tokens, targets, NULL, NULL)) {
                    rc = -1;
                    break;
                }
                const float *lp = al_ctx_logp(pc);
                for (int j = 0; j < B; j++) {
                    int r = r0 + j < n_rows ? rows[r0 + j] : -1;
                    for (int t = 0; t < T; t++) {
                        size_t k = (size_t)j * T + t, g = (size_t)r * T + t;
                        dlogp[k] = 0;
                        if (r < 0 || targets[k] < 0)
                            continue;
                        if (e == 0 && mb == 0) { /* nothing has moved yet: the ratio must be exactly 1 */
                            us->first_tokens++;
                            us->first_unequal += memcmp(&lp[k], &b->old_logp[g], sizeof(float)) != 0;
                        }
                        if (b->weight[g] <= 0)
                            continue;
                        double w = o->loss_type == AL_AGG_BNPO   ? 1.0 / (double)mb_tokens
                                   : o->loss_type == AL_AGG_DAPO ? (double)o->minibatches / (double)batch_tokens
                                                                 : al_loss_agg_weight(o->loss_type, b->n_tok[r], n_rows,
                                                                                      mb_tokens,
                                                                                      o->max_completion_length);
                        al_clip_out c;
                        al_clipped_surrogate(lp[k], b->old_logp[g], b->adv[g], o->epsilon_low, o->epsilon_high, &c);
                        double loss = c.loss, d = c.dlogp;
                        if (o->algo == AL_RL_GRPO && use_reference(R)) {
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
            }
            if (rc)
                break;
            if (us->first_unequal) {
                rc = al_fail("step %ld: %ld of %ld log-probabilities of the first minibatch differ from the ones "
                             "recorded while sampling: sampling and training disagree (the ratio must be exactly 1)",
                             R->updates, us->first_unequal, us->first_tokens);
                break;
            }
            double norm = al_grad_clip(grads, n_params, o->grad_clip > 0 ? o->grad_clip : INFINITY);
            us->grad_norm += norm;
            float lr = al_schedule_lr(&R->sched, R->updates);
            al_adamw_step(&R->opt, params, grads, lr);
            R->updates++;
            us->updates++;
        }
    }
    free(perm);
    if (us->updates)
        us->loss /= us->updates, us->grad_norm /= us->updates;
    return rc;
}

/* ---- one RL step ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

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

static int rl_step(rl_run *R, long step, json_t *metrics)
{
    const al_rl_opts *o = R->o;
    const int P = o->prompts_per_step, G = o->num_generations, n = P * G, K = al_rewards_n_terms(R->rewards);
    const int V = R->m.cfg.vocab_size;
    const uint64_t step_seed = mix64(o->seed ^ mix64((uint64_t)step));
    int *idx = malloc((size_t)P * sizeof *idx);
    double *scores = malloc((size_t)n * sizeof *scores), *per_term = malloc((size_t)n * K * sizeof *per_term);
    double *seq_adv = calloc((size_t)n, sizeof *seq_adv);
    int *all_rows = malloc((size_t)n * sizeof *all_rows);
    rl_rollout ro = {0};
    rl_rows b = {0};
    al_train_ctx *pc = NULL, *rc_ctx = NULL;
    int *tokens = NULL, *targets = NULL;
    float *dlogp = NULL, *ref_logits = NULL;
    int rc = idx && scores && per_term && seq_adv && all_rows ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < n; i++)
        all_rows[i] = i;
    double t0 = al_now(), t1 = t0, t2 = t0, t3 = t0, t4 = t0;
    if (rc == 0) {
        next_prompts(R, idx);
        al_sampler_opts so = o->sampling;
        rc = rl_rollout_sample(&ro, &R->m, &R->ps, idx, P, G, o->max_completion_length, &so, R->stop_ids, R->n_stop,
                               step_seed);
    }
    t1 = al_now();
    if (rc == 0)
        rc = score_rollouts(R, &ro, scores, per_term);
    t2 = al_now();
    pass_stats ps = {0};
    if (rc == 0)
        rc = rows_build(&b, R, &ro, R->seq_len);
    if (rc == 0) {
        const size_t BT = (size_t)R->micro * b.T;
        tokens = malloc(BT * sizeof *tokens), targets = malloc(BT * sizeof *targets);
        dlogp = malloc(BT * sizeof *dlogp);
        if (use_reference(R) && !R->have_ref)
            ref_logits = malloc((BT * V + BT) * sizeof *ref_logits);
        pc = al_train_ctx_new(&R->m, R->micro, b.T);
        rc = !tokens || !targets || !dlogp || (use_reference(R) && !R->have_ref && !ref_logits) ? al_fail("out of memory")
             : !pc                                                                             ? -1
             : al_train_ctx_set_exact(pc, true) || al_train_ctx_set_temperature(pc, o->sampling.temperature) ? -1
                                                                                                               : 0;
        if (rc == 0 && R->have_ref && use_reference(R)) {
            rc_ctx = al_train_ctx_new(&R->ref, R->micro, b.T);
            rc = !rc_ctx || al_train_ctx_set_exact(rc_ctx, true) ||
                         al_train_ctx_set_temperature(rc_ctx, o->sampling.temperature)
                     ? -1
                     : 0;
        }
    }
    if (rc == 0)
        rc = score_pass(R, &b, pc, rc_ctx, ref_logits, tokens, targets, all_rows, &ps);
    if (rc == 0 && ps.mismatched)
        rc = al_fail("step %ld: %ld of %ld sampled log-probabilities differ from the training forward's: sampling "
                     "and training disagree", step, ps.mismatched, ps.tokens);
    t3 = al_now();
    update_stats us = {0};
    if (rc == 0)
        rc = advantages(R, &b, &ro, scores, seq_adv);
    if (rc == 0 && step <= o->dump_steps)
        rc = write_dump(R, step, &b, scores);
    const double beta_used = R->kl.beta;
    if (rc == 0)
        rc = update(R, &b, pc, tokens, targets, dlogp, step_seed, &us);
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
        if (use_reference(R)) {
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
        if (use_reference(R))
            al_kl_ctl_update(&R->kl, ps.kl_est / n, n);
    }
    al_train_ctx_free(pc);
    al_train_ctx_free(rc_ctx);
    rows_free(&b);
    rl_rollout_free(&ro);
    free(idx), free(scores), free(per_term), free(seq_adv), free(all_rows), free(tokens), free(targets), free(dlogp);
    free(ref_logits);
    return rc;
}

/* ---- setup and the loop ---- */

static void run_free(rl_run *R)
{
    if (R->m.lora)
        al_lora_detach(&R->m);
    al_model_free(&R->m);
    if (R->have_ref)
        al_model_free(&R->ref);
    al_adamw_free(&R->opt);
    al_metrics_close(&R->mt);
    rl_prompts_free(&R->ps);
    al_rewards_free(R->rewards);
    al_chat_template_free(R->tmpl);
    al_tokenizer_free(R->tok);
    free(R->stop_ids);
    free(R->order);
}

/* The settings a resumed run must share with its start (everything but steps and logging). */
static json_t *settings_json(const al_rl_opts *o)
{
    json_t *rw = json_array();
    for (int k = 0; k < o->n_rewards; k++)
        json_array_append_new(rw, json_pack("{s:s, s:f}", "spec", o->rewards[k], "weight",
                                            o->reward_weights ? o->reward_weights[k] : 1.0));
    json_t *j = json_object();
#define S(key, v) json_object_set_new(j, key, (v) ? json_string(v) : json_null())
#define I(key, v) json_object_set_new(j, key, json_integer((json_int_t)(v)))
#define F(key, v) json_object_set_new(j, key, json_real((double)(v)))
    S("algo", al_rl_algo_name(o->algo));
    S("data", o->data), S("model", o->model), S("ref_model", o->ref_model), S("tokenizer", o->tokenizer);
    S("chat_template", o->chat_template);
    json_object_set_new(j, "rewards", rw);
    I("max_prompts", o->max_prompts), I("prompts_per_step", o->prompts_per_step);
    I("num_generations", o->num_generations), I("max_completion_length", o->max_completion_length);
    I("max_prompt_length", o->max_prompt_length);
    F("temperature", o->sampling.temperature), I("top_k", o->sampling.top_k), F("top_p", o->sampling.top_p);
    F("min_p", o->sampling.min_p), F("missing_eos_penalty", o->missing_eos_penalty);
    I("mask_truncated_completions", o->mask_truncated), F("beta", o->beta);
    S("kl_estimator", al_kl_name(o->kl_estimator)), F("kl_target", o->kl_target), F("kl_horizon", o->kl_horizon);
    I("scale_rewards", o->scale_rewards), S("loss_type", al_loss_agg_name(o->loss_type));
    F("epsilon_low", o->epsilon_low), F("epsilon_high", o->epsilon_high), I("epochs", o->ppo_epochs);
    I("minibatches", o->minibatches), F("gamma", o->gamma), I("seq_len", o->seq_len);
    S("schedule", al_schedule_name(o->sched.kind)), F("lr", o->sched.peak_lr), I("warmup", o->sched.warmup);
    F("min_lr_ratio", o->min_lr_ratio), F("adam_beta1", o->adamw.beta1), F("adam_beta2", o->adamw.beta2);
    F("adam_eps", o->adamw.eps), F("weight_decay", o->adamw.weight_decay), F("grad_clip", o->grad_clip);
    I("seed", o->seed), I("lora", o->lora);
    if (o->lora) {
        I("lora_r", o->lora_cfg.rank), F("lora_alpha", o->lora_cfg.alpha), I("lora_targets", o->lora_cfg.targets);
        I("lora_seed", o->lora_cfg.seed);
    }
#undef S
#undef I
#undef F
    return j;
}

/* Writes DIR/rl_args.json on a fresh start; on resume, requires the same settings. */
static int check_settings(const al_rl_opts *o, bool resuming)
{
    char *path = al_path_join(o->out_dir, "rl_args.json");
    json_t *now = settings_json(o);
    int rc = path ? 0 : al_fail("out of memory");
    if (rc == 0 && !resuming) {
        rc = al_write_json_atomic(path, now);
    } else if (rc == 0) {
        json_error_t err;
        json_t *was = json_load_file(path, 0, &err);
        const char *key;
        json_t *v;
        if (!was)
            rc = al_fail("%s: %s (cannot resume without the run's settings)", path, err.text);
        json_object_foreach(now, key, v)
        {
            /* compared as written: the file's reals carry fewer digits than a double */
            const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(7);
            char *a = json_dumps(v, flags), *b = json_dumps(json_object_get(was, key), flags);
            if (rc == 0 && (!a || !b || strcmp(a, b)))
                rc = al_fail("--resume: setting '%s' differs from the run's (%s); give the same settings", key, path);
            free(a), free(b);
        }
        json_decref(was);
    }
    json_decref(now);
    free(path);
    return rc;
}

static int check_opts(const al_rl_opts *o)
{
    if (!o->data || !o->model || !o->out_dir)
        return al_fail("%s: --data, --model and --out are required", al_rl_algo_name(o->algo));
    if (o->n_rewards <= 0)
        return al_fail("%s: at least one --reward is required (e.g. --reward model:runs/rm/final)",
                       al_rl_algo_name(o->algo));
    if (o->prompts_per_step < 1 || o->num_generations < 1 || o->max_completion_length < 1 || o->steps < 1)
        return al_fail("prompts per step, generations, completion length and steps must be positive");
    if ((o->algo == AL_RL_GRPO || o->algo == AL_RL_RLOO || o->algo == AL_RL_REINFORCE_PP_BASELINE) &&
        o->num_generations < 2)
        return al_fail("%s compares the completions of one prompt: --num-generations must be at least 2",
                       al_rl_algo_name(o->algo));
    if (o->ppo_epochs < 1 || o->minibatches < 1 || o->minibatches > o->prompts_per_step * o->num_generations)
        return al_fail("epochs must be >= 1 and minibatches in [1, sequences per step]");
    if (!(o->sampling.temperature > 0))
        return al_fail("the sampling temperature must be positive");
    if (o->epsilon_low < 0 || o->epsilon_high < 0 || o->beta < 0)
        return al_fail("epsilon and beta must be >= 0");
    return 0;
}

/* Tokenizer and template: given, else the ones saved beside the model. */
static int load_text(rl_run *R, const al_rl_opts *o)
{
    char *found = o->tokenizer ? NULL : al_model_dir_find_tokenizer(o->model);
    const char *path = o->tokenizer ? o->tokenizer : found;
    if (!path)
        return al_fail("%s: no tokenizer beside the model; give --tokenizer", o->model);
    int rc = al_tokenizer_load(&R->tok, path);
    free(found);
    if (rc)
        return -1;
    if (!o->tokenizer && al_model_dir_load_config(o->model, R->tok, &R->tmpl, NULL))
        return -1;
    if (!R->tmpl && al_chat_template_open(&R->tmpl, o->chat_template))
        return -1;
    /* stop at EOS and at the template's markers the tokenizer holds as single tokens */
    const char **marks;
    int n_marks = 0;
    al_chat_template_specials(R->tmpl, &marks, &n_marks);
    R->stop_ids = malloc((size_t)(n_marks + 1) * sizeof *R->stop_ids);
    if (!R->stop_ids)
        return al_fail("out of memory");
    if (al_tokenizer_eos(R->tok) >= 0)
        R->stop_ids[R->n_stop++] = al_tokenizer_eos(R->tok);
    for (int k = 0; k < n_marks; k++) {
        int id = al_tokenizer_find(R->tok, marks[k], strlen(marks[k]));
        if (id >= 0) {
            if (al_tokenizer_add_special(R->tok, marks[k], NULL))
                return -1;
            R->stop_ids[R->n_stop++] = id;
        }
    }
    return 0;
}

static int setup(rl_run *R, const al_rl_opts *o, al_train_state *resume_state)
{
    R->o = o;
    if (check_opts(o) || load_text(R, o) || al_model_load(&R->m, o->model) || al_model_to_half_rope(&R->m))
        return -1;
    if (R->m.cfg.vocab_size < al_tokenizer_vocab_size(R->tok))
        return al_fail("the model's vocabulary (%d) is smaller than the tokenizer's (%d)", R->m.cfg.vocab_size,
                       al_tokenizer_vocab_size(R->tok));
    R->kl = (al_kl_ctl){.beta = o->beta, .target = o->kl_target, .horizon = o->kl_horizon};
    if (use_reference(R) && !o->lora) {
        if (al_model_load(&R->ref, o->ref_model ? o->ref_model : o->model) || al_model_to_half_rope(&R->ref))
            return -1;
        R->have_ref = true;
    }
    const int seq_len = R->seq_len =
        o->seq_len > 0 && o->seq_len < R->m.cfg.seq_len ? o->seq_len : R->m.cfg.seq_len;
    int max_prompt = o->max_prompt_length < seq_len - 1 ? o->max_prompt_length : seq_len - 1;
    if (rl_prompts_load(&R->ps, o->data, R->tmpl, R->tok, max_prompt, o->max_prompts))
        return -1;
    al_reward_env env = {.tok = R->tok, .seq_len = seq_len, .batch = 16};
    if (!(R->rewards = al_rewards_new(&env)))
        return -1;
    for (int k = 0; k < o->n_rewards; k++)
        if (al_rewards_add(R->rewards, o->rewards[k], o->reward_weights ? o->reward_weights[k] : 1.0))
            return -1;
    if (resume_state) { /* the policy and optimizer from the newest checkpoint */
        char used[1024];
        if (!o->lora)
            al_model_free(&R->m), R->m = (al_model){0};
        if (al_checkpoint_load(o->out_dir, &R->m, &R->opt, resume_state, used, sizeof used))
            return -1;
        R->opt.o = o->adamw;
        if (!o->quiet)
            fprintf(stderr, "%s: resuming from %s (step %ld)\n", al_rl_algo_name(o->algo), used, resume_state->step);
        if (!o->lora && al_model_alloc_grads(&R->m))
            return -1;
    } else if (o->lora) {
        if (al_lora_attach(&R->m, &o->lora_cfg) ||
            al_adamw_init_block(&R->opt, R->m.lora->n_params, NULL, &o->adamw))
            return -1;
    } else if (al_model_alloc_grads(&R->m) || al_adamw_init(&R->opt, &R->m, &o->adamw)) {
        return -1;
    }
    if (o->lora)
        R->m.lora->train = false; /* no dropout: sampling and training must be one function */
    R->order = malloc((size_t)R->ps.n * sizeof *R->order);
    if (!R->order)
        return al_fail("out of memory");
    R->order_epoch = -1;
    R->micro = 8;
    R->sched = o->sched;
    R->sched.total = o->steps * o->ppo_epochs * o->minibatches;
    R->sched.min_lr = o->sched.peak_lr * o->min_lr_ratio;
    if (resume_state) {
        R->cursor = (long)resume_state->cursor.pos;
        R->updates = resume_state->step * o->ppo_epochs * o->minibatches;
        R->kl.beta = resume_state->extra[0];
        if (al_metrics_truncate_after(o->out_dir, resume_state->step))
            return -1;
    }
    return al_mkdir_p(o->out_dir) || check_settings(o, resume_state != NULL) ||
           al_metrics_open(&R->mt, o->out_dir, resume_state != NULL);
}

static int save_checkpoint(rl_run *R, long step)
{
    al_train_state st = {.step = step, .cursor = {.pos = (size_t)R->cursor}, .rng = R->o->seed};
    st.extra[0] = R->kl.beta;
    return al_checkpoint_save_with(R->o->out_dir, &R->m, &R->opt, &st, R->o->keep, R->tok, R->tmpl);
}

static int save_final(rl_run *R)
{
    char *final = al_path_join(R->o->out_dir, "final");
    int rc = !final                 ? al_fail("out of memory")
             : R->o->lora           ? al_lora_save(&R->m, final)
                                    : al_model_save_safetensors(&R->m, final);
    if (rc == 0)
        rc = al_model_dir_save_tokenizer(final, R->tok, R->tmpl);
    free(final);
    return rc;
}

int al_rl_train(const al_rl_opts *o)
{
    rl_run R = {0};
    al_train_state resumed = {0};
    char *ckpt = o->resume ? al_path_join(o->out_dir, "checkpoints") : NULL;
    bool resuming = ckpt && al_is_dir(ckpt);
    free(ckpt);
    int rc = setup(&R, o, resuming ? &resumed : NULL);
    const char *name = al_rl_algo_name(o->algo);
    if (rc == 0 && !o->quiet)
        fprintf(stderr, "%s: %d prompts, %d per step x %d generations, up to %d new tokens; %ld steps%s\n", name,
                R.ps.n, o->prompts_per_step, o->num_generations, o->max_completion_length, o->steps,
                o->lora ? " (LoRA)" : "");
    al_progress bar;
    if (rc == 0)
        al_progress_begin(&bar, name, o->steps);
    for (long step = resumed.step + 1; rc == 0 && step <= o->steps; step++) {
        json_t *metrics = json_object();
        rc = rl_step(&R, step, metrics);
        if (rc == 0) {
            char *text = json_dumps(metrics, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
            rc = text ? al_metrics_write(&R.mt, text) : al_fail("out of memory");
            free(text);
            char extra[96];
            snprintf(extra, sizeof extra, "reward %.3f kl %.4f", json_real_value(json_object_get(metrics, "reward")),
                     json_real_value(json_object_get(metrics, "kl")));
            if (!o->quiet)
                al_progress_update(&bar, step, extra);
            if (o->save_every > 0 && step % o->save_every == 0 && step < o->steps)
                rc = save_checkpoint(&R, step);
        }
        json_decref(metrics);
    }
    if (rc == 0 && !o->quiet)
        al_progress_end(&bar);
    if (rc == 0)
        rc = save_final(&R);
    run_free(&R);
    return rc ? al_fail_prefix("%s", name) : 0;
}
