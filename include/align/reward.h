/* align rewards: what online RL (align ppo / grpo / rloo) maximizes.  A reward is a
 * weighted sum of terms (TRL's reward_funcs with reward_weights); each term scores a batch
 * of (prompt, completion) samples.  Terms: a reward-model checkpoint, regular expressions
 * that must or must not match, a lexicon penalty with severities, a length penalty, a
 * refusal detector, a format check, the guard's decision, and C plugins (shared objects,
 * include/align/reward_plugin.h).  See docs/rewards.md. */
#ifndef ALIGN_REWARD_H
#define ALIGN_REWARD_H

#include <stdbool.h>

#include "align/model.h"
#include "align/tokenizer.h"

/* One sample to score.  Texts are NUL-terminated (a NULL prompt or completion reads as
 * ""); ids are the policy's tokens. */
typedef struct al_reward_sample {
    const char *prompt;     /* the prompt as the policy saw it (chat template applied) */
    const char *query;      /* the user's message alone (no template); == prompt for raw text
                             * (NULL: the prompt) */
    const char *completion; /* the decoded completion, without the EOS marker */
    const int *prompt_ids, *completion_ids;
    int n_prompt, n_completion;
    bool eos; /* the completion ended with EOS (false: cut at the length limit) */
    const char *record; /* the prompt's dataset record as read (one JSON object, TRL's extra
                         * columns included), or NULL: what per-prompt terms (intent) read */
} al_reward_sample;

/* What terms may need from the run. */
typedef struct al_reward_env {
    const al_tokenizer *tok; /* the policy's tokenizer */
    int seq_len;             /* the longest prompt + completion the reward model sees
                              * (0 or more than the model's context: the model's context) */
    int batch;               /* reward-model scoring batch (0: 16) */
    const char *base_dir;    /* relative paths in specs resolve against it (NULL: cwd) */
} al_reward_env;

typedef struct al_rewards al_rewards;

al_rewards *al_rewards_new(const al_reward_env *env); /* env copied; NULL: all defaults */
void al_rewards_free(al_rewards *r);
/* Adds one term from a spec "KIND[:ARG]" with its weight.  Kinds (docs/rewards.md):
 *   model:DIR           a reward model (align rm train output); the raw score
 *   regex:PATTERN       1 when the completion matches (PCRE2, case-sensitive as Python's
 *                       re, UTF-8; (?i) for caseless), else 0
 *   regex_not:PATTERN   -1 when the completion matches, else 0
 *   lexicon:FILE        -(sum of the severities of the distinct lexicon terms it
 *                       contains, al_lexicon_severity); FILE as al_lexicon_load reads,
 *                       or "builtin"
 *   length:N            -max(0, n_completion - N) / N: a penalty past N tokens
 *   refusal[:WORLD]     1 when the answer refuses (the eval judges' refusal patterns,
 *                       built in, or a world directory or its world.json), else 0
 *   format:PATTERN      1 when the whole completion matches PATTERN (anchored at both
 *                       ends, '.' matches newlines too), else 0
 *   guard[:POLICY]      the guard's output check: 0 allowed, -0.5 escalated or redacted,
 *                       -1 blocked (built-in policy, or a policy YAML)
 *   intent:WORLD        1 when the completion gives the solution of the intent the prompt's
 *                       record names in "category" (the eval's intent judge: every key
 *                       step of that intent in world.json), else 0; 0 for records
 *                       without a category the world knows (harmful requests)
 *   plugin:PATH.so[:ARG] a C plugin's score (include/align/reward_plugin.h)
 * Everything a term needs (model, patterns, lexicon, plugin) is loaded here, once.
 * Relative paths resolve against env->base_dir.  Errors name the spec and what was
 * expected: reward "regex:a(b": bad pattern "a(b": at offset 3: missing closing ... */
int al_rewards_add(al_rewards *r, const char *spec, double weight);
int al_rewards_n_terms(const al_rewards *r);
const char *al_rewards_term_name(const al_rewards *r, int i); /* "model", "lexicon", ... (unique: "regex_2") */
double al_rewards_term_weight(const al_rewards *r, int i);
/* Scores n samples: total[i] = sum_k weight_k term_k(i); per_term (may be NULL) gets the
 * unweighted term scores [n][n_terms].  Deterministic for the same samples.  Fails (naming
 * the term) when a term fails or gives a score that is not finite.  One al_rewards must not
 * score from two threads at once (terms keep scratch buffers). */
int al_rewards_score(al_rewards *r, const al_reward_sample *s, int n, double *total, double *per_term);

#endif
