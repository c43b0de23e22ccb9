/* align rl: online reinforcement learning from a reward (align grpo / rloo / ppo).
 * The policy samples G completions per prompt, a reward (include/align/reward.h) scores
 * them, and the policy moves toward higher reward while a KL penalty holds it near the
 * frozen reference.  Sampling and training run the same exact kernels
 * (al_decoder_set_exact, al_train_ctx_set_exact), so the log-probabilities recorded while
 * sampling are the training forward's to the last bit: the first minibatch of every batch
 * checks that the probability ratio is exactly 1.  Formulas: docs/online_rl.md. */
#ifndef ALIGN_RL_H
#define ALIGN_RL_H

#include <stdbool.h>

#include "align/reward.h"
#include "align/train.h"

/* ---- the math, per token and per sequence (src/rl/rl_math.c) ---- */

/* KL estimators of KL(policy || reference) from one sampled token's log-probs
 * (Schulman, "Approximating KL divergence"): with d = ref_logp - logp,
 *   k1 = -d,   k2 = d^2 / 2,   k3 = exp(d) - 1 - d   (unbiased, always >= 0). */
typedef enum { AL_KL_K1, AL_KL_K2, AL_KL_K3 } al_kl_kind;
int al_kl_parse(const char *name, al_kl_kind *out); /* "k1", "k2", "k3" */
const char *al_kl_name(al_kl_kind k);
double al_kl_estimate(al_kl_kind k, double logp, double ref_logp);
/* d estimate / d logp */
double al_kl_estimate_grad(al_kl_kind k, double logp, double ref_logp);

/* Generalized advantage estimation over one sequence of n steps (values[n], rewards[n];
 * the value after the last step is 0):  delta_t = r_t + gamma V_{t+1} - V_t,
 * A_t = delta_t + gamma lambda A_{t+1},  returns_t = A_t + V_t. */
void al_gae(const double *rewards, const double *values, int n, double gamma, double lambda, double *advantages,
            double *returns);
/* Discounted returns G_t = r_t + gamma G_{t+1} (REINFORCE). */
void al_discounted_returns(const double *rewards, int n, double gamma, double *returns);
/* x <- (x - mean) / sqrt(var + 1e-8) over n values, var the unbiased sample variance
 * (TRL's masked_whiten; shift_mean false adds the mean back, as its shift_mean=False). */
void al_whiten(double *x, int n, bool shift_mean);

/* Group advantages of n_groups groups of G scores each (group-major). */
typedef enum {
    AL_ADV_GRPO_GROUP,   /* (r - group mean) / (group std + 1e-4)          (TRL scale_rewards "group") */
    AL_ADV_GRPO_BATCH,   /* (r - group mean) / (batch std + 1e-4)          ("batch") */
    AL_ADV_GRPO_NONE,    /* r - group mean                                  ("none", Dr. GRPO) */
    AL_ADV_RLOO,         /* r - mean of the other G - 1 of its group (leave-one-out) */
    AL_ADV_MEAN_BASELINE /* r - group mean (REINFORCE++ baseline), whitened later */
} al_adv_kind;
/* The std is the unbiased sample deviation (torch.std).  Fails when G < 2 for RLOO. */
int al_group_advantages(al_adv_kind k, const double *scores, int n_groups, int G, double *adv);

/* The clipped surrogate of one token (PPO, GRPO with epsilon_low / epsilon_high):
 *   ratio = exp(logp - old_logp),
 *   loss = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A),
 * d loss / d logp, and whether the clipped branch was taken (its gradient is 0). */
typedef struct al_clip_out {
    double loss, dlogp, ratio;
    bool clipped;     /* the clipped term was the minimum (and differed) */
    bool low, high;   /* clipped at 1 - eps_low (A < 0) or at 1 + eps_high (A > 0) */
} al_clip_out;
void al_clipped_surrogate(double logp, double old_logp, double advantage, double eps_low, double eps_high,
                          al_clip_out *out);

/* PPO's clipped value loss of one token: v_clip = old_v + clamp(v - old_v, -eps, eps),
 * loss = 0.5 max((v - R)^2, (v_clip - R)^2); d loss / d v; whether the clip won. */
double al_clipped_value_loss(double v, double old_v, double ret, double eps, double *dv, bool *clipped);

/* How per-token losses become the batch loss (TRL GRPOConfig.loss_type):
 *   grpo:    mean over each sequence's tokens, then mean over sequences
 *   bnpo:    sum over all tokens / number of tokens in the batch
 *   dr_grpo: sum over all tokens / (sequences x max_completion_length)
 *   dapo:    sum over all tokens / tokens of the whole accumulated batch */
typedef enum { AL_AGG_GRPO, AL_AGG_BNPO, AL_AGG_DR_GRPO, AL_AGG_DAPO } al_loss_agg;
int al_loss_agg_parse(const char *name, al_loss_agg *out);
const char *al_loss_agg_name(al_loss_agg a);
/* The weight of each token of a sequence with n_tokens tokens in the batch loss. */
double al_loss_agg_weight(al_loss_agg a, int n_tokens, int n_seqs, long batch_tokens, int max_completion);

/* Adaptive KL controller (Ziegler et al. 2019, TRL AdaptiveKLController):
 *   e = clip(kl / target - 1, -0.2, 0.2),  beta <- beta (1 + e n_steps / horizon). */
typedef struct al_kl_ctl {
    double beta, target, horizon; /* target 0: fixed beta */
} al_kl_ctl;
void al_kl_ctl_update(al_kl_ctl *c, double kl, int n_steps);

/* ---- online RL trainer (src/rl/trainer.c) ---- */
typedef enum { AL_RL_GRPO, AL_RL_RLOO, AL_RL_REINFORCE_PP, AL_RL_REINFORCE_PP_BASELINE, AL_RL_PPO } al_rl_algo;
/* "grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "ppo" */
int al_rl_algo_parse(const char *name, al_rl_algo *out);
const char *al_rl_algo_name(al_rl_algo a);

typedef struct al_rl_opts {
    al_rl_algo algo;
    const char *data, *model, *ref_model, *tokenizer, *out_dir;
    const char *chat_template;      /* conversational prompts: "chatml", "llama2" or a file */
    const char *const *rewards;     /* reward specs (al_rewards_add) */
    const double *reward_weights;   /* NULL: all 1 */
    int n_rewards;
    int max_prompts;                /* 0: all */
    int prompts_per_step;           /* prompts per RL step (each sampled num_generations times) */
    int num_generations;            /* G */
    int max_completion_length;
    int max_prompt_length;
    al_sampler_opts sampling;       /* temperature, top_k, top_p, min_p, seed */
    double missing_eos_penalty;     /* subtracted from the score of a completion without EOS (TRL) */
    bool mask_truncated;            /* TRL mask_truncated_completions: no loss on them */
    double beta;                    /* KL coefficient (0: no reference is loaded) */
    al_kl_kind kl_estimator;        /* in the loss (GRPO) or the reward (RLOO, REINFORCE++) */
    double kl_target, kl_horizon;   /* adaptive KL controller (target 0: fixed beta) */
    al_adv_kind scale_rewards;      /* GRPO: group, batch or none */
    al_loss_agg loss_type;
    double epsilon_low, epsilon_high;
    int ppo_epochs, minibatches;    /* updates per batch: epochs x minibatches */
    double gamma;                   /* REINFORCE++ and PPO discount (1) */
    /* PPO: the critic is value_model (a reward model, as TRL initializes it, or an LM that
     * gets a fresh score head; NULL: the policy's weights with a fresh head), read at every
     * completion position and trained on the clipped value loss with its own AdamW */
    const char *value_model;
    double gae_lambda;              /* 0.95 */
    double vf_coef;                 /* value loss weight (0.1) */
    double cliprange_value;         /* 0.2 */
    long steps;
    int seq_len;                    /* training rows (prompt + completion), <= the model's */
    al_schedule sched;
    float min_lr_ratio;
    al_adamw_opts adamw;
    float grad_clip;
    int save_every, keep, log_every;
    int dump_steps;                 /* write DIR/dumps/step_N.jsonl for the first N steps (0: none) */
    uint64_t seed;
    bool quiet;
    bool lora;
    al_lora_config lora_cfg;
    bool resume;                    /* continue the run in out_dir from its newest checkpoint */
    /* the policy's (and the reference's) weights in sampling and in the exact training
     * forward, rounded alike (al_decoder_set_weights, al_train_ctx_set_weights), so the
     * ratio stays exactly 1; the update goes to the float weights (straight-through) */
    al_weight_type rollout_weights;
} al_rl_opts;

void al_rl_defaults(al_rl_opts *o, al_rl_algo algo);
/* Trains as o says; DIR/final is the model (or the adapters with lora); DIR/metrics.jsonl
 * one line per step under TRL's names; DIR/checkpoints every save_every steps.  With
 * resume, the run continues from its newest checkpoint and ends bit-identical to a run
 * never stopped; its settings (DIR/rl_args.json) must be the same but for steps. */
int al_rl_train(const al_rl_opts *o);

#endif
