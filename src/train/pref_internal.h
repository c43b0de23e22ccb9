/* Preference trainers (reward model, DPO family, KTO): what their parts share.  Internal
 * to the train module. */
#ifndef ALIGN_TRAIN_PREF_INTERNAL_H
#define ALIGN_TRAIN_PREF_INTERNAL_H

#include <jansson.h>

#include "align/train.h"

/* Tokenized items: a pair (chosen, rejected) or, for KTO, an example and its mismatched
 * KL completion (the next example's completion after this example's prompt). */
typedef struct pref_items {
    al_ints *seq, *mask; /* [n][2] */
    double *label;       /* pairs: P(chosen better); KTO: 1 desirable, 0 undesirable */
    double *margin;      /* reward-model margin */
    double *ref;         /* [n][2] summed reference log-probs, or NULL until computed */
    int n;
    int truncated;       /* sequences cut to the maximum length */
    int *perm;           /* the current epoch's order */
    long perm_epoch;
    uint64_t seed;
} pref_items;

/* e.g. from an al_pref_dataset, the examples listed in idx (all when idx is NULL). */
int pref_items_build(pref_items *it, const al_pref_dataset *d, const al_ints *idx, const al_chat_template *t,
                     const al_tokenizer *tok, int max_len, bool kto, uint64_t seed);
void pref_items_free(pref_items *it);
/* The next item in training order (a new shuffle each epoch), advancing the cursor. */
int pref_items_next(pref_items *it, al_batch_cursor *c);

/* A micro-batch of B items laid out as 2B rows of T: row r holds item r's first
 * sequence, row B + r its second.  Rows of absent items (item < 0) are empty.
 * lm: inputs predict the next token (targets on the answer); otherwise (reward model) the
 * whole sequence is input and last[r] is the position read by the score head. */
typedef struct pref_batch {
    int *tokens, *targets; /* [2B*T] */
    int *last;             /* [2B] last input position, -1 for an empty row */
    int *item;             /* [B] item index or -1 */
} pref_batch;
int pref_batch_alloc(pref_batch *b, int B, int T);
void pref_batch_free(pref_batch *b);
void pref_batch_fill(pref_batch *b, const pref_items *it, const int *items, int B, int T, bool lm);

/* Evaluation batches: the items of batch i0 (file order, -1 past n); the number of
 * held-out items evaluated (all, or eval_batches * B). */
void pref_eval_items(int *items, int i0, int n, int B);
int pref_eval_count(const pref_items *it, int eval_batches, int B);
/* metrics[prefix + names[i]] = values[i] */
void pref_put_metrics(json_t *j, const char *prefix, const char *const *names, const double *values, int n);

/* Sums of log p over each row's targets, and the target counts. */
void pref_row_sums(const float *logp, const int *targets, int rows, int T, double *sum, int *count);

/* Reference log-probs of every item's two sequences: from the cache file
 * OUT/ref_logps.bin when it matches (same reference weights and sequences), else computed
 * with ref (batch rows 2B) and written there.  ref may be the policy with its LoRA
 * adapters disabled. */
int pref_reference_logps(pref_items *it, const char *cache_path, al_model *ref, int B, int T, bool quiet,
                         const char *label);

/* The objectives (dpo.c, reward.c); ctx points at a pref_run. */
typedef struct pref_run {
    const al_pref_train_opts *o;
    pref_items train, eval;
    al_model *ref;          /* reference model for on-the-fly log-probs, or NULL */
    al_train_ctx *ref_ctx;  /* its context (NULL when ref is the LoRA-disabled policy) */
    al_pref_loss_kind kinds[AL_PREF_N_KINDS];
    double weights[AL_PREF_N_KINDS];
    int n_kinds;
    bool reference_free;    /* every loss ignores the reference (simpo, cpo, orpo) */
    al_bco_running bco;
    pref_batch batch;
    const pref_items *batch_items; /* the items the batch was filled from */
    float *d_hidden;        /* reward model: [2B*T][dim] */
    float *dlogp;           /* [2B*T] */
    double *sums, *ref_sums;/* [2B] */
    int *counts;            /* [2B] */
} pref_run;

al_objective dpo_objective(pref_run *r);
al_objective kto_objective(pref_run *r);
al_objective reward_objective(pref_run *r);

#endif
