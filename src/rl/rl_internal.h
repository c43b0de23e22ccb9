/* Online RL's parts (src/rl/): prompts, rollouts and the trainer.  Internal to the module. */
#ifndef ALIGN_RL_INTERNAL_H
#define ALIGN_RL_INTERNAL_H

#include "align/data.h"
#include "align/rl.h"

/* Prompts, rendered and tokenized as the policy sees them. */
typedef struct rl_prompt {
    char *text;  /* the rendered prompt (template applied) */
    char *query; /* the last user message alone (the raw prompt for plain text) */
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
    int *ids;    /* [n][max_new] sampled ids (the stop id included when it ended on one) */
    float *logp; /* [n][max_new] log-probability of each sampled id at sampling time */
    int *len;    /* [n] */
    bool *eos;   /* [n] ended on a stop id */
    long tokens; /* sampled tokens in all */
} rl_rollout;

/* Samples G completions for each listed prompt with the exact decoder from m (its LoRA
 * adapters as they are), stopping at any of stop_ids or after max_new tokens.  Sequence i
 * draws with its own sampler seeded by (seed, i), so the batch is reproducible. */
int rl_rollout_sample(rl_rollout *r, const al_model *m, const rl_prompts *ps, const int *prompts, int n_prompts,
                      int G, int max_new, const al_sampler_opts *sampling, const int *stop_ids, int n_stop,
                      uint64_t seed);
void rl_rollout_free(rl_rollout *r);

#endif
