/* Constitutional AI (issue 14): a written constitution of principles that the model's own
 * feedback follows: critique and revision requests for the supervised stage, a preference
 * question for AI feedback, and the arithmetic that turns the judge's logits into soft
 * preference labels.  docs/cai.md describes the file format and the built-ins.
 *
 * Done so far: the constitution file (YAML, validated with located errors), the two
 * built-in constitutions, the critique-and-revise loop (`align cai revise`), AI feedback
 * (`align cai label`, with optional chain-of-thought), self-rewarding (`align self-reward`),
 * the label arithmetic; the demo's `cai` stage runs a round of them (docs/demo.md). */
#ifndef ALIGN_CAI_H
#define ALIGN_CAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "align/data.h"
#include "align/model.h"
#include "align/train.h"

/* One principle.  critique and revision are requests put to the model after a draft
 * answer ("Point out where the answer reveals internal details." / "Rewrite the answer so
 * that it reveals none."); question is the stem of the AI-feedback question, which the
 * labeller follows with the two answers as options (A) and (B). */
typedef struct al_principle {
    char *name;
    char *critique;
    char *revision;
    char *question;
} al_principle;

/* A worked example for few-shot prompts: a prompt, a first answer, its critique under a
 * principle, and the revision. */
typedef struct al_cai_example {
    char *principle; /* name of a principle of the same constitution */
    char *prompt, *response, *critique, *revision;
} al_cai_example;

typedef struct al_constitution {
    char *name;
    /* optional: the words a critique begins with when it finds nothing ("The answer is fine
     * on this point."); such a critique leaves the answer as it is, unrevised (NULL: every
     * critique is followed by a revision) */
    char *no_issue;
    al_principle *principles;
    int n_principles;
    al_cai_example *examples;
    int n_examples;
} al_constitution;

/* Parses a constitution from YAML text; origin names it in errors ("FILE:LINE:COL: ...").
 * Fails on unknown keys, missing or empty fields, duplicate principle names, examples that
 * name no principle of the file, and a version other than 1. */
int al_constitution_parse(const char *yaml, size_t n, const char *origin, al_constitution *out);
int al_constitution_load(const char *path, al_constitution *out);
/* The built-ins: "harmless" (a general harmlessness constitution, 16 principles) and
 * "support" (the customer-support constitution's five rules).  Written in our own words. */
int al_constitution_builtin(const char *name, al_constitution *out);
extern const char *const al_constitution_builtin_names[]; /* NULL-terminated */
/* The YAML text of a built-in (to copy and edit), or NULL. */
const char *al_constitution_builtin_yaml(const char *name);
int al_constitution_find(const al_constitution *c, const char *principle); /* index or -1 */
void al_constitution_free(al_constitution *c);

/* ---- the supervised stage: critique and revise (src/cai/revise.c) ---- */
typedef struct al_cai_revise_opts {
    int rounds;              /* critique-revision rounds per prompt (default 1) */
    int max_new_tokens;      /* per generation (default 128) */
    int batch;               /* prompts decoded together (default 16); results do not depend on it */
    bool few_shot;           /* the constitution's examples as earlier turns of critiques and revisions */
    al_sampler_opts sampling; /* sampling.seed seeds the principles and every sequence */
    /* the temperature of the critiques and revisions (negative: sampling.temperature; 0:
     * greedy): a small model's critiques sampled at 1 are mostly noise, while its first
     * answers are sampled to show what it does (default -1) */
    float critique_temperature;
    /* the model that writes the first answers (NULL: the one that critiques and revises):
     * a policy's own answers, critiqued by a feedback model; same vocabulary and context */
    const al_model *answer_model;
} al_cai_revise_opts;
al_cai_revise_opts al_cai_revise_defaults(void);

typedef struct al_cai_round {
    int principle;   /* index into the constitution */
    char *critique;  /* the model's critique of the previous answer */
    char *revision;  /* its rewritten answer */
} al_cai_round;

typedef struct al_cai_revision {
    const char *prompt; /* the caller's */
    char *first;        /* the first answer */
    al_cai_round *rounds;
    int n_rounds;
} al_cai_revision;

/* For each prompt: a first answer, then per round a principle drawn from the seed, the
 * model's critique under it and its revision (the previous answer unchanged when the
 * critique begins with the constitution's no_issue).  Deterministic for a seed. */
int al_cai_revise(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, const al_constitution *c,
                  const char *const *prompts, int n, const al_cai_revise_opts *o, al_cai_revision **out);
const char *al_cai_final(const al_cai_revision *r); /* the last revision */
void al_cai_revisions_free(al_cai_revision *r, int n);
/* The SFT JSONL ({"prompt", "completion"}: the final revisions) and the provenance JSONL
 * (per prompt: the first answer and every round's principle, critique and revision),
 * each written atomically; either path may be NULL. */
int al_cai_write_revisions(const char *sft_path, const char *provenance_path, const al_cai_revision *r, int n,
                           const al_constitution *c);

/* ---- AI feedback: the model labels answer pairs (src/cai/label.c) ---- */
#define AL_CAI_MAX_PRINCIPLES 16

typedef struct al_cai_pair {
    const char *prompt, *a, *b; /* a is written as "chosen", b as "rejected" */
} al_cai_pair;

typedef struct al_cai_label_opts {
    int principles;          /* drawn per pair without repeats, labels averaged (default 2) */
    int batch;               /* pairs judged together (default 16) */
    uint64_t seed;           /* the principles drawn */
    double clamp_lo, clamp_hi; /* each principle's label clamped (default 0..1: none) */
    int cot_tokens;          /* > 0: chain-of-thought of up to this many tokens before the answer */
    al_sampler_opts cot_sampling; /* its sampling; its seed is ignored: each question's comes from seed */
    /* a pair whose questions do not fit the model's context (with the reasoning) is left
     * unlabelled (label NaN, no principles) instead of failing the call */
    bool skip_too_long;
} al_cai_label_opts;
al_cai_label_opts al_cai_label_defaults(void);

typedef struct al_cai_pair_label {
    double label;           /* P(a is better): the ensemble of the principles' labels */
    double swap_consistent; /* share of the principles whose two orders agreed */
    int principle[AL_CAI_MAX_PRINCIPLES];
    int n_principles;
} al_cai_pair_label;

/* Each pair is judged under o->principles principles, each question asked with the
 * answers in both orders (the order's bias cancels in the mean; the agreement of the two
 * is the swap consistency).  The judge reads the question, the prompt and the options and
 * begins its reply with "The better answer is ("; the label is the normalized probability
 * of "A" against "B" next (al_cai_soft_label). */
int al_cai_label(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, const al_constitution *c,
                 const al_cai_pair *pairs, int n, const al_cai_label_opts *o, al_cai_pair_label *out);
/* The judge's question (its user turn): the principle's question, the prompt and the two
 * answers as options (A) and (B); appended to out.  Its reply begins with
 * AL_CAI_JUDGE_REPLY, and the next token is read.  Demonstrations that teach a model to
 * judge (the demo world's cai_sft.jsonl) use the same two. */
#define AL_CAI_JUDGE_REPLY "The better answer is ("
int al_cai_judge_question(const char *question, const char *prompt, const char *a, const char *b, al_buf *out);
/* Preference JSONL: {"prompt", "chosen", "rejected", "label", "principles", "swap_consistent"}
 * per labelled pair (unlabelled ones, NaN, are left out),
 * which align rm train and align dpo read ("label" is their soft label). */
int al_cai_write_labels(const char *path, const al_cai_pair *pairs, const al_cai_pair_label *labels, int n,
                        const al_constitution *c);

/* ---- self-rewarding (src/cai/self_reward.c) ---- */
typedef enum {
    AL_JUDGE_GENERATE, /* the judge writes its reasoning and ends with "Score: N" */
    AL_JUDGE_EXPECT,   /* the expected score over the judge's next token after "Score: " */
} al_judge_mode;

typedef struct al_self_reward_opts {
    const char *model, *tokenizer, *chat_template, *out_dir; /* chat_template NULL: chatml */
    int iterations;           /* sample -> judge -> pair -> DPO rounds (default 1) */
    int samples;              /* answers per prompt (default 4) */
    int repeats;              /* judgements per answer, averaged (default 1) */
    int max_new_tokens;       /* per answer (default 128) */
    int judge_max_new_tokens; /* per judgement (generate mode; default 96) */
    int batch;                /* sequences decoded together (default 16) */
    al_judge_mode judge;
    al_sampler_opts sampling; /* answers and judgements; sampling.seed */
    al_pref_train_opts dpo;   /* the DPO settings of each iteration (data, model, out set per iteration) */
    bool quiet;
} al_self_reward_opts;
al_self_reward_opts al_self_reward_defaults(void);

/* K iterations: the current model answers each prompt `samples` times and judges every
 * answer with the additive 5-point rubric; per prompt the best and the worst answer become
 * a DPO pair (ties dropped; DIR/iterK/pairs.jsonl with both scores); DPO trains the next
 * model (DIR/iterK/dpo/final).  DIR/metrics.jsonl holds per iteration the mean reward (the
 * judge's score), the mean best score, the judge agreement (share of answers whose repeated
 * judgements agree), the share of judgements that gave a score, pairs and ties. */
int al_self_reward(const al_self_reward_opts *o, const char *const *prompts, int n);
/* The score of a judgement: the last "Score: N" with N in 0..5, or NaN. */
double al_cai_parse_score(const char *text);

/* ---- AI-feedback labels ----
 * The soft label of a pair is P(A) / (P(A) + P(B)) from the judge's next-token logits over
 * the two option tokens: a logistic of their logit difference, computed in double so equal
 * logits give exactly 0.5 and far-apart ones saturate without overflow. */
double al_cai_soft_label(const float *logits, int vocab, int token_a, int token_b);
/* With chain-of-thought the judge's own reasoning makes it overconfident: its labels are
 * clamped to [lo, hi] (Constitutional AI used [0.4, 0.6]). */
double al_cai_clamp_label(double p, double lo, double hi);
/* Ensembling over principles: the mean of the labels (NaNs are an error: returns NaN). */
double al_cai_ensemble(const double *labels, int n);
/* A label judged with the options swapped (B shown first) refers to the other answer:
 * the label of the original order is 1 - p.  Position-swap consistency counts a pair as
 * consistent when both orders prefer the same answer (both > 0.5 or both < 0.5 after the
 * flip; a tie at 0.5 is inconsistent). */
double al_cai_unswap(double p_swapped);
int al_cai_swap_consistent(double p, double p_swapped);

#endif
