/* Online RL's parts (src/rl/): prompts, rollouts and the trainer.  Internal to the module. */
#ifndef ALIGN_RL_INTERNAL_H
#define ALIGN_RL_INTERNAL_H

#include <jansson.h>

#include "align/data.h"
#include "align/rl.h"

/* Prompts, rendered and tokenized as the policy sees them. */
typedef struct rl_prompt {
    char *text;  /* the rendered prompt (template applied) */
    char *query; /* the last user message alone (the raw prompt for plain text) */
    char *record; /* the JSONL record as read: per-prompt reward terms read its fields */
    al_ints ids;
} rl_prompt;

typedef struct rl_prompts {
    rl_prompt *p;
    int n;
} rl_prompts;

/* JSONL records with "prompt" (a string, or a message list rendered with the template and
 * its generation prompt) or "messages" (everything up to the last user turn).  Prompts
 * longer than max_len tokens keep their end (TRL's max_prompt_length cuts from the left).
 * Errors name PATH:LINE. */
int rl_prompts_load(rl_prompts *ps, const char *path, const al_chat_template *t, const al_tokenizer *tok,
                    int max_len, int max_prompts);
void rl_prompts_free(rl_prompts *ps);

/* One batch of rollouts: n_prompts x G sequences, group-major. */
typedef struct rl_rollout {
    int n, max_new;
    int *prompt; /* [n] index into the prompt set */
    int *seq;    /* [n] the sequence's index in the step's global batch (data parallelism) */
    int *ids;    /* [n][max_new] sampled ids (the stop id included when it ended on one) */
    float *logp; /* [n][max_new] log-probability of each sampled id at sampling time */
    int *len;    /* [n] */
    bool *eos;   /* [n] ended on a stop id */
    long tokens; /* sampled tokens in all */
} rl_rollout;

/* A decoder kept from one rollout to the next: its cache is allocated (and its pages
 * touched) once per run, not once per step; each rollout resets it and refreshes its
 * copies of the weights.  Sized for the longest prompt of the set. */
typedef struct rl_decoder {
    al_decoder *d;
    int n, max_len;
} rl_decoder;

/* Samples G completions for each listed prompt with the exact decoder from m (its LoRA
 * adapters as they are, its matrices stored as wt), stopping at any of stop_ids or after
 * max_new tokens.  groups[p] (NULL: p) is prompt p's group in the step's global batch; its
 * sequence g is the batch's sequence i = groups[p] G + g and draws with its own sampler
 * seeded by (seed, i), so the batch is reproducible whichever rank samples which group.
 * keep (may be NULL) holds the decoder between calls with the same m, ps and wt. */
int rl_rollout_sample(rl_rollout *r, rl_decoder *keep, const al_model *m, const rl_prompts *ps, const int *prompts,
                      const int *groups, int n_prompts, int G, int max_new, const al_sampler_opts *sampling,
                      const int *stop_ids, int n_stop, uint64_t seed, al_weight_type wt);
void rl_rollout_free(rl_rollout *r);

/* ---- the trainer's state (src/rl/trainer.c sets it up) ---- */

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
    /* the training contexts of the policy, the reference and the critic: made at the first
     * step, reshaped to each batch after (al_train_ctx_reshape) */
    al_train_ctx *pc, *rc, *cc;
    rl_decoder dec; /* the rollouts' decoder */
    /* PPO's critic (src/rl/critic.c) */
    bool have_critic;
    al_model critic;
    al_adamw critic_opt;
} rl_run;

/* The rows of one batch: prompt + completion per sequence, targets on the completion.
 * Under MPI a rank holds the rows of its own groups (src/rl/rl_dist.c): n of the step's
 * n_all, row i being the batch's row global[i]; local[j] is global row j's index here or -1. */
typedef struct rl_rows {
    int n, T;
    int n_all, max_new;
    int *global, *local;
    int *tokens, *targets;  /* [n][T] */
    float *old_logp;        /* [n][T] at target positions (sampling's), 0 elsewhere */
    float *ref_logp;        /* [n][T] */
    float *adv;             /* [n][T] per-token advantages */
    float *value, *ret;     /* [n][T] PPO: the critic's values before the update, and returns */
    float *weight;          /* [n][T] the token's weight in the loss (0: not trained) */
    int *n_tok;             /* [n] completion tokens */
} rl_rows;


typedef struct pass_stats {
    double kl_est, kl_exact, entropy; /* sums over completion tokens */
    long tokens, mismatched;
} pass_stats;

/* The rows of epoch 0's first minibatch take their KL, entropy and exactness figures from
 * the update's own forward (nothing has moved before it), so the scoring pass runs the
 * policy only for the other rows and keeps the first rows' reference logits for the update. */
typedef struct first_rows {
    int *slot;       /* [n] the row's index in ref_keep; -1: scored in the scoring pass */
    float *ref_keep; /* [slots][T][V] reference logits (NULL without a reference) */
} first_rows;

/* Plans fr for batch b: epoch 0's first minibatch (al_epoch_order(step_seed, 0)), unless
 * keeping its reference logits would take more than RL_KEEP_MAX_BYTES (then every row is
 * scored in the scoring pass). */
#define RL_KEEP_MAX_BYTES ((size_t)512 << 20)
int rl_first_rows_plan(first_rows *fr, const rl_run *R, const rl_rows *b, uint64_t step_seed);
void rl_first_rows_free(first_rows *fr);

typedef struct update_stats {
    double loss, approxkl, clip_low, clip_high, clip_region, kl_in_loss, grad_norm;
    double value_loss, value_clipped, value_tokens; /* PPO */
    long tokens, first_tokens, first_unequal;
    int updates;
} update_stats;

/* rl_dist.c: the step's data parallelism.  Prompt p of a step goes to rank p % ranks. */
/* This rank's groups of the step's P: their count, and the prompts and group indices. */
int rl_dist_groups(const int *idx, int P, int *mine, int *groups);
/* x[0..n) holds this rank's entries and zeros elsewhere: after the call, every rank's
 * entries everywhere (exact: each entry is some rank's value plus zeros). */
int rl_dist_gather(double *x, size_t n);
/* Sums x[0..n) over the ranks (figures of the step's metrics). */
int rl_dist_sum(double *x, size_t n);
/* The values v[n][T] of b's trained tokens (weight > 0), every rank's, in the global
 * batch's order (row by row, position by position), as one rank would list them. */
typedef struct rl_tokens {
    double *v;
    long m;    /* values */
    long *off; /* [n_all + 1]: global row i's values are v[off[i] .. off[i + 1]) */
} rl_tokens;
int rl_dist_tokens(rl_tokens *tk, const rl_rows *b, const float *v);
/* v's trained tokens of this rank's rows from tk->v (after the caller changed it) */
void rl_dist_tokens_put(const rl_tokens *tk, const rl_rows *b, float *v);
void rl_tokens_free(rl_tokens *tk);

/* batch.c */
int rl_rows_build(rl_rows *b, const rl_run *R, const rl_rollout *ro, int seq_len);
void rl_rows_free(rl_rows *b);
/* Rows rows[r0 .. r0 + B) (of n_rows) into a micro-batch; missing rows are empty. */
void rl_fill_micro(const rl_rows *b, const int *rows, int r0, int n_rows, int B, int *tokens, int *targets);
/* scores[i] with the missing-EOS penalty; per_term[i][k] unweighted. */
int rl_score_rollouts(rl_run *R, const rl_rollout *ro, double *scores, double *per_term);
/* passes.c */
bool rl_uses_reference(const rl_run *R);
/* rc: the reference model's context (NULL: none, or LoRA); cc: the critic's (PPO) */
int rl_score_pass(rl_run *R, rl_rows *b, al_train_ctx *pc, al_train_ctx *rc, al_train_ctx *cc, int *tokens,
                  int *targets, const first_rows *fr, pass_stats *st);
/* scores[n_all]: the whole batch's (gathered); seq[n_all] receives sequence advantages */
int rl_advantages(rl_run *R, rl_rows *b, const rl_rollout *ro, const double *scores, double *seq);
/* st gains the first minibatch's KL, entropy and token counts (see first_rows). */
int rl_update(rl_run *R, const rl_rows *b, al_train_ctx *pc, al_train_ctx *cc, int *tokens, int *targets,
              float *dlogp, uint64_t step_seed, const first_rows *fr, pass_stats *st, update_stats *us);
/* critic.c (PPO) */
int rl_critic_open(rl_run *R, const al_train_state *resume);
int rl_critic_save(rl_run *R, const al_train_state *st);
/* values[j*T + t] for every target position of the micro-batch */
int rl_critic_values(rl_run *R, al_train_ctx *cc, const int *tokens, const int *targets, int B, int T, float *values);
/* Accumulates the clipped value loss's gradient of one micro-batch (rows[j] of b, -1 for
 * none), each token weighted by w; adds to us->value_loss and the clip count. */
int rl_critic_backward(rl_run *R, al_train_ctx *cc, const rl_rows *b, const int *rows_of_micro, const int *tokens,
                       const int *targets, int B, double w, update_stats *us);
int rl_critic_step(rl_run *R, float lr);
/* step.c: one step's metrics go into `metrics` */
int rl_step(rl_run *R, long step, json_t *metrics);

#endif
