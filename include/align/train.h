/* align train: the optimizer, schedules, clipping, accumulation, outlier skipping,
 * checkpoints and the pretraining loop.  See docs/training.md. */
#ifndef ALIGN_TRAIN_H
#define ALIGN_TRAIN_H

#include "align/data.h"
#include "align/model.h"

/* ---- learning-rate schedules ---- */
typedef enum { AL_SCHED_CONSTANT, AL_SCHED_LINEAR, AL_SCHED_COSINE, AL_SCHED_WSD } al_schedule_kind;
typedef struct al_schedule {
    al_schedule_kind kind;
    float peak_lr, min_lr;
    long warmup, total;
    float wsd_decay; /* fraction of total steps spent decaying (wsd) */
} al_schedule;
float al_schedule_lr(const al_schedule *s, long step);
int al_schedule_parse(const char *name, al_schedule_kind *out);
const char *al_schedule_name(al_schedule_kind k);

/* ---- AdamW ---- */
typedef struct al_adamw_opts {
    float beta1, beta2, eps, weight_decay;
} al_adamw_opts;

typedef struct al_adamw {
    al_adamw_opts o;
    size_t n;
    float *m, *v;    /* one allocation of 2n floats */
    uint8_t *decay;  /* per parameter: 1 if weight decay applies */
    long t;          /* updates taken */
} al_adamw;
al_adamw_opts al_adamw_defaults(void);
/* decay mask from the model layout: matrices decay, norms and biases do not. */
int al_adamw_init(al_adamw *opt, const al_model *m, const al_adamw_opts *o);
/* An optimizer for any block of n parameters (LoRA adapters, ...); decay[i] != 0 marks
 * the parameters weight decay applies to, NULL = all of them. */
int al_adamw_init_block(al_adamw *opt, size_t n, const uint8_t *decay, const al_adamw_opts *o);
void al_adamw_step(al_adamw *opt, float *params, const float *grads, float lr);
void al_adamw_free(al_adamw *opt);

/* ---- gradients ---- */
/* L2 norm of the whole gradient (double accumulation, fixed order: deterministic). */
double al_grad_norm(const float *g, size_t n);
/* Scales g to max_norm when its norm exceeds it; returns the norm before clipping. */
double al_grad_clip(float *g, size_t n, double max_norm);

/* ---- outlier steps ---- */
#define AL_OUTLIER_WINDOW 100
typedef struct al_outlier {
    float z;       /* 0 = off */
    int min_count; /* accepted steps before the check starts (20) */
    int count, head;
    double loss[AL_OUTLIER_WINDOW], norm[AL_OUTLIER_WINDOW];
} al_outlier;
void al_outlier_init(al_outlier *o, float z);
/* True if the step should be skipped (why gets a short reason); accepted steps join the history. */
bool al_outlier_check(al_outlier *o, double loss, double grad_norm, char *why, size_t why_len);

/* ---- checkpoints ---- */
typedef struct al_train_state {
    long step;         /* optimizer steps completed */
    uint64_t lora_dropout_step; /* the adapters' dropout counter, when they train */
    al_batch_cursor cursor;
    uint64_t rng;
    double tokens;     /* tokens trained on */
    al_outlier outlier;
    double extra[4];   /* a trainer's own scalars (online RL: the KL controller's beta) */
} al_train_state;
/* Writes OUT/checkpoints/step_N atomically, points latest at it, keeps the newest keep. */
int al_checkpoint_save(const char *out_dir, const al_model *m, const al_adamw *opt, const al_train_state *st,
                       int keep);
/* The same, the checkpoint also carrying the run's tokenizer and chat template (each may be
 * NULL; see al_model_dir_save_tokenizer), so that a checkpoint is a usable model directory. */
int al_checkpoint_save_with(const char *out_dir, const al_model *m, const al_adamw *opt, const al_train_state *st,
                            int keep, const al_tokenizer *tok, const al_chat_template *tmpl);
/* path: a run directory (newest valid checkpoint, falling back past damaged ones with a
 * warning on stderr) or one checkpoint directory (exactly it).  Loads model, optimizer
 * and state; the model is (re)initialized from the checkpoint's config.  A checkpoint of a
 * LoRA run holds only the adapters: then m must already hold the base model, which it
 * keeps, and receives the adapters (opt is sized for them); otherwise m is overwritten
 * (it must not hold a model).
 * With LoRA attached, al_checkpoint_save writes the adapters instead of the model. */
int al_checkpoint_load(const char *path, al_model *m, al_adamw *opt, al_train_state *st, char *used,
                       size_t used_len);

/* ---- initialization ---- */
/* Normal(0, 0.02) matrices, residual projections (wo, w2) scaled by 1/sqrt(2L), norms 1,
 * biases 0; xorshift + Box-Muller from seed, so the same seed gives the same model. */
void al_model_init_weights(al_model *m, uint64_t seed);

/* ---- metrics ---- */
typedef struct al_metrics {
    FILE *fp;
} al_metrics;
int al_metrics_open(al_metrics *mt, const char *out_dir, bool append);
/* Appends one JSON object line (json_text without newline) and flushes. */
int al_metrics_write(al_metrics *mt, const char *json_text);
void al_metrics_close(al_metrics *mt);

/* ---- the training loop shared by every trainer ----
 * A batch source fills micro-batches of B rows of T tokens.  pos and seg_start are for
 * packed rows (several samples per row, positions restarting, attention blocked across
 * samples); a source that does not pack leaves them untouched and sets packed false. */
typedef struct al_batch {
    int *tokens, *targets, *pos, *seg_start; /* [B*T] each */
    bool packed;
} al_batch;

typedef struct al_batch_source {
    void *ctx;
    /* The next training micro-batch; advances the cursor (which checkpoints save). */
    int (*next)(void *ctx, al_batch_cursor *c, int B, int T, al_batch *b);
    /* Evaluation micro-batch e: returns the number of targets, 0 past the end, -1 on error. */
    int (*eval)(void *ctx, int e, int B, int T, al_batch *b);
} al_batch_source;

/* What a trainer minimizes, when it is not next-token cross-entropy over the batch sources
 * (al_train_loop.objective NULL).  Preference trainers (reward models, DPO, KTO) bring one. */
struct al_train_loop;
typedef struct al_objective {
    void *ctx;
    int rows; /* rows per micro-batch the training context is planned for (0: batch_size) */
    /* One optimizer step's gradient into the zeroed gradient block, from grad_accum
     * micro-batches at L->st->cursor: the step's loss, the items it counted (tokens,
     * pairs) and its metrics, added to `metrics` (a JSON object) under TRL's names.
     * Under mpirun (docs/distributed.md) it computes only the micro-batches k this rank
     * owns (al_dist_owns), yet returns the whole step's loss, items and metrics, the same
     * on every rank; the loop then sums the gradient over the ranks. */
    int (*step)(void *ctx, struct al_train_loop *L, al_train_ctx *tc, double *loss, double *items,
                struct json_t *metrics);
    /* Held-out evaluation: eval_loss and the eval_ metrics, added to `metrics`. */
    int (*evaluate)(void *ctx, struct al_train_loop *L, al_train_ctx *tc, struct json_t *metrics);
} al_objective;

typedef struct al_train_loop {
    const char *out_dir, *label; /* label: the progress bar's name */
    int batch_size, seq_len, grad_accum;
    long steps;
    al_schedule sched; /* total and min_lr set by the caller */
    float grad_clip;
    int eval_every, eval_batches, sample_every, save_every, keep;
    uint64_t seed;
    bool quiet;
    al_model *m;       /* trained in full (gradients allocated by the loop), or only its
                        * attached LoRA adapters, with opt sized for their block */
    const al_tokenizer *tok;
    const al_chat_template *tmpl; /* the run's chat template (NULL: none), saved with checkpoints */
    al_adamw *opt;
    al_train_state *st;
    al_batch_source train, eval;
    const al_objective *objective; /* NULL: next-token cross-entropy over train and eval */
} al_train_loop;

/* Runs steps st->step+1 .. steps: metrics, evaluation, samples and checkpoints as set. */
int al_train_loop_run(al_train_loop *L);
/* Drops metrics lines of steps after `step` (a resumed run rewrites them). */
int al_metrics_truncate_after(const char *out_dir, long step);

/* ---- pretraining ---- */
typedef struct al_pretrain_opts {
    const char *data, *val_data, *tokenizer, *out_dir, *init_model, *cache_dir, *doc_sep;
    al_config model;    /* used when init_model is NULL */
    double val_fraction;
    int batch_size, seq_len, grad_accum;
    long steps;         /* optimizer steps (0: from tokens) */
    double tokens;      /* token budget when steps is 0 */
    al_schedule sched;  /* total is set from steps */
    float min_lr_ratio;
    al_adamw_opts adamw;
    float grad_clip, skip_outliers;
    int eval_every, eval_batches, sample_every, save_every, keep;
    uint64_t seed;
    bool quiet;
} al_pretrain_opts;

void al_pretrain_defaults(al_pretrain_opts *o);
/* Trains from scratch (or from init_model) as the options say; with resume set, continues
 * the run in resume (its train_args.json supplies every setting but steps). */
int al_pretrain(const al_pretrain_opts *o, const char *resume);
/* Writes the settings of a run (OUT/train_args.json); al_pretrain reads them on resume. */
int al_pretrain_args_write(const al_pretrain_opts *o, const char *out_dir);

/* ---- supervised examples as batches ----
 * An example is a token sequence with a loss mask (1 = this token is a training target).
 * Row layout: inputs e[0..L-1) predict e[1..L); a target whose mask is 0 becomes -1.
 * Examples longer than T+1 tokens are cut to T+1.  Padded: one example per row.  Packed:
 * consecutive examples share a row while they fit, each with positions from 0 and
 * attention blocked at its boundaries, so packing never changes the loss.  The order is a
 * seeded shuffle, reshuffled each epoch. */
typedef struct al_example_set {
    al_ints *ids, *mask; /* n of each */
    int n;
    bool packed;
    uint64_t seed;
    int *order;    /* permutation of the current epoch */
    long order_epoch;
} al_example_set;

/* The training order of epoch `epoch` of n items: a permutation seeded by (seed, epoch). */
void al_epoch_order(int *perm, int n, uint64_t seed, long epoch);
int al_example_set_init(al_example_set *s, int n, bool packed, uint64_t seed);
void al_example_set_free(al_example_set *s);
/* The batch source over s (next: training order; eval: examples in file order). */
al_batch_source al_example_source(al_example_set *s);

/* ---- supervised fine-tuning ---- */
typedef struct al_sft_opts {
    const char *data, *val_data, *model, *tokenizer, *out_dir;
    /* Without model: train from scratch with this architecture.  The chat template's
     * markers are then added to the tokenizer as special tokens, the vocabulary sized to
     * match, and the tokenizer saved beside the model in DIR/final. */
    const char *model_config; /* an HF config.json */
    const char *chat_template; /* "chatml" (default), "llama2", or a template file */
    int mask;                  /* al_mask_mode, or -1: by format (assistant / completion / all) */
    bool packing, skip_bad_lines;
    double held_out;           /* share of examples held out when val_data is NULL (0.1) */
    int max_examples;
    int batch_size, seq_len, grad_accum;
    long steps;                /* 0: epochs */
    int epochs;
    al_schedule sched;
    float min_lr_ratio;
    al_adamw_opts adamw;
    float grad_clip, skip_outliers;
    int eval_every, eval_batches, save_every, keep;
    uint64_t seed;
    bool quiet;
    /* LoRA: only adapters train; DIR/final then holds them in PEFT's format */
    bool lora;
    al_lora_config lora_cfg;
} al_sft_opts;

void al_sft_defaults(al_sft_opts *o);
/* Trains as o says; with resume set, continues the run in resume instead (its
 * sft_args.json supplies every setting; o may then give only steps and quiet). */
int al_sft_train(const al_sft_opts *o);
int al_sft_resume(const char *dir, const al_sft_opts *o);

/* ---- preference losses (src/train/pref_loss.c) ---- */
/* The DPO family as pure math over per-example sequence log-probabilities, following
 * TRL's definitions and names (DPOTrainer.dpo_loss, CPOTrainer.cpo_loss,
 * ORPOTrainer.odds_ratio_loss, KTOTrainer.kto_loss).  Formulas: docs/preference_losses.md.
 * Everything is double precision; log-sigmoids use log1p/exp stable forms. */
typedef enum {
    AL_PREF_SIGMOID,   /* DPO */
    AL_PREF_IPO,
    AL_PREF_HINGE,     /* RSO */
    AL_PREF_ROBUST,    /* conservative DPO with label smoothing */
    AL_PREF_BCO_PAIR,
    AL_PREF_SPPO_HARD,
    AL_PREF_NCA_PAIR,
    AL_PREF_APO_ZERO,
    AL_PREF_APO_DOWN,
    AL_PREF_SIMPO,     /* reference-free, length-normalized, margin simpo_gamma (TRL CPOTrainer "simpo") */
    AL_PREF_CPO,       /* reference-free sigmoid on summed log-probs (TRL CPOTrainer "sigmoid") */
    AL_PREF_ORPO,      /* reference-free odds ratio + NLL, length-normalized (TRL ORPOTrainer) */
    AL_PREF_N_KINDS
} al_pref_loss_kind;

/* TRL's names: "sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair",
 * "apo_zero", "apo_down", "simpo", "cpo", "orpo".  Unknown names fail with the list. */
int al_pref_loss_parse(const char *name, al_pref_loss_kind *out);
const char *al_pref_loss_name(al_pref_loss_kind k);
/* True for the losses that ignore the reference log-probs (simpo, cpo, orpo). */
bool al_pref_loss_reference_free(al_pref_loss_kind k);

typedef struct al_pref_opts {
    double beta;            /* TRL beta (0.1); for orpo, the weight of the odds-ratio term (lambda) */
    double label_smoothing; /* TRL label_smoothing, sigmoid/robust/cpo/simpo; robust needs < 0.5 */
    double simpo_gamma;     /* TRL CPOConfig.simpo_gamma (0.5): logits = (pc - pr) - simpo_gamma / beta */
    double rpo_alpha;       /* 0 = off: adds rpo_alpha * (-pc / nc), the chosen NLL per token (TRL
                             * DPOConfig.rpo_alpha; CPOConfig.cpo_alpha for cpo/simpo) */
    double bco_delta;       /* bco_pair: the running mean of rewards (detached; see al_bco_running) */
    bool length_normalize;  /* divide every log-prob by its token count (ipo, simpo, orpo always do, as TRL) */
} al_pref_opts;
void al_pref_defaults(al_pref_opts *o); /* beta 0.1, simpo_gamma 0.5, everything else 0 */

/* One pair: summed log-probs of the response tokens under the policy (pc, pr) and the
 * reference (rc, rr; ignored by reference-free losses), the response token counts (> 0),
 * and label = probability that chosen is better (1 = hard; in [0, 1]).  A soft label
 * mixes the loss with the pair swapped: p L(c, r) + (1 - p) L(r, c) (for the sigmoid
 * family, p L(margin) + (1 - p) L(-margin)); the NLL terms stay on chosen. */
typedef struct al_pref_pair {
    double pc, pr, rc, rr;
    int nc, nr;
    double label;
} al_pref_pair;

typedef struct al_pref_out {
    double loss;
    double d_pc, d_pr;              /* d loss / d pc, d loss / d pr (summed log-probs) */
    double reward_chosen, reward_rejected; /* TRL rewards (detached): beta (pc - rc), or beta pc
                                     * for the reference-free losses (normalized log-probs
                                     * where the loss normalizes) */
    double logp_chosen, logp_rejected; /* the policy log-probs the loss saw (TRL logps/...) */
    double nll;                      /* -pc / nc (whether or not it is in the loss) */
} al_pref_out;

int al_pref_loss(al_pref_loss_kind k, const al_pref_opts *o, const al_pref_pair *p, al_pref_out *out);

/* TRL's loss_type list with loss_weights: loss = sum_i w_i L_i (gradients likewise), the
 * RPO term added once; rewards and logps from the first kind. */
int al_pref_loss_mix(int n, const al_pref_loss_kind *kinds, const double *weights, const al_pref_opts *o,
                     const al_pref_pair *p, al_pref_out *out);

/* bco_pair's reference point: TRL's RunningMoments fed one value per batch, the mean of
 * that batch's chosen and rejected rewards (update before computing the batch's losses). */
typedef struct al_bco_running {
    double mean, count;
} al_bco_running;
void al_bco_running_update(al_bco_running *r, double batch_mean_reward);

/* KTO (unpaired, TRL loss_type "kto"): one example, desirable or not, with logp / ref_logp
 * summed over its response, the batch reference point z0 (detached KL estimate, see
 * al_kto_z0) and the weights lambda_d (desirable_weight), lambda_u (undesirable_weight).
 *   desirable:   loss = lambda_d (1 - sigmoid(beta (logr - z0))),   logr = logp - ref_logp
 *   undesirable: loss = lambda_u (1 - sigmoid(beta (z0 - logr)))
 * TRL's batch loss is the mean of these (its rewards: beta logr).  dlogp = d loss / d logp.
 * Log-probs are used as given (TRL sums them; length_normalize does not apply). */
int al_kto_loss(const al_pref_opts *o, double logp, double ref_logp, bool desirable, double z0,
                double lambda_d, double lambda_u, double *loss, double *dlogp);
/* z0 = max(0, mean(policy_kl - ref_kl)) over the batch's mismatched (KL) completions. */
double al_kto_z0(const double *policy_kl_logps, const double *ref_kl_logps, int n);

/* A reward model's pair loss (TRL RewardTrainer, per pair; the batch loss is the mean):
 *   loss = -[p log sigmoid(d) + (1 - p) log sigmoid(-d)] + center (r_c + r_r)^2,
 *   d = r_c - r_r - margin, p = label (1 for a hard pair),
 * with its derivatives by r_c and r_r. */
int al_rm_loss(double r_chosen, double r_rejected, double margin, double label, double center, double *loss,
               double *d_chosen, double *d_rejected);

/* TRL's batch metrics from n outputs. */
typedef struct al_pref_metrics {
    double rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins; /* rewards/... */
    double logps_chosen, logps_rejected;                                          /* logps/... */
    double loss;                                                                  /* mean loss */
} al_pref_metrics;
void al_pref_metrics_compute(const al_pref_out *outs, int n, al_pref_metrics *m);

/* ---- preference trainers: reward models, the DPO family, KTO (src/train/pref_*.c) ---- */
typedef enum {
    AL_TRAINER_DPO, /* pairs, a loss of the DPO family (or a weighted mix) */
    AL_TRAINER_KTO, /* unpaired desirable / undesirable examples */
    AL_TRAINER_RM,  /* a reward model: scalar head at the last token, Bradley-Terry */
} al_trainer_kind;

typedef struct al_pref_train_opts {
    al_trainer_kind trainer;
    const char *data, *val_data, *model, *ref_model, *tokenizer, *out_dir;
    const char *chat_template;   /* conversational data: "chatml", "llama2" or a template file */
    const char *loss;            /* DPO: TRL loss_type, or a comma list ("sigmoid,bco_pair") */
    const char *loss_weights;    /* comma list of weights for a mix ("1,0.5"), NULL = all 1 */
    al_pref_opts pref;           /* beta, label_smoothing, simpo_gamma, rpo_alpha, length_normalize */
    double desirable_weight, undesirable_weight; /* KTO lambda_d, lambda_u */
    double center_rewards;       /* RM: TRL center_rewards_coefficient (0 = off) */
    bool precompute_ref;         /* reference log-probs computed once and cached */
    bool skip_bad_lines;
    double held_out;             /* share held out when val_data is NULL (0.1) */
    int max_examples;
    int batch_size, seq_len, grad_accum; /* batch_size counts pairs (examples for KTO) */
    long steps;                  /* 0: epochs */
    int epochs;
    al_schedule sched;
    float min_lr_ratio;
    al_adamw_opts adamw;
    float grad_clip, skip_outliers;
    int eval_every, eval_batches, save_every, keep;
    uint64_t seed;
    bool quiet;
    bool lora;                   /* DPO/KTO: adapters train; disabled, they give the reference */
    al_lora_config lora_cfg;
} al_pref_train_opts;

void al_pref_train_defaults(al_pref_train_opts *o, al_trainer_kind trainer);
/* Trains as o says (DIR/final: the model, or the adapters with lora); with resume, the
 * run in dir continues from its newest checkpoint (pref_args.json holds its settings). */
int al_pref_train(const al_pref_train_opts *o);
int al_pref_resume(const char *dir, const al_pref_train_opts *given);

/* A reward model from a causal LM: the same weights plus a score head [1][dim], drawn
 * from Normal(0, 0.02) with seed (HF's initializer_range).  dst must be empty. */
int al_reward_model_from_lm(al_model *dst, const al_model *lm, uint64_t seed);
/* Rewards of n token sequences (the score head read at each one's last token), in
 * batches of up to B sequences of at most T tokens (longer ones keep their end). */
int al_reward_score(const al_model *m, const al_ints *seqs, int n, int B, int T, float *rewards);

#endif
