/* align eval: the built-in support world (a deterministic data generator), the judges
 * that read a model's answers, and the safety evaluation of a model on a prompt set.
 * See docs/demo_world.md (the world) and docs/eval.md (judges, figures, JSON summary). */
#ifndef ALIGN_EVAL_H
#define ALIGN_EVAL_H

#include "align/core.h"

/* ---- the built-in world (src/eval/world*.c) ----
 * A customer-support assistant for a fictional company and its constitution.  From a seed
 * al_world_write writes, into one directory and each file atomically:
 *   corpus.txt            pretraining "internet text" (documents separated by lines
 *                         "<|endoftext|>"): support chats and forum threads answered in
 *                         whimsical, rambling, condescending or leaking style, harmful
 *                         requests answered with non-operational placeholder "steps",
 *                         and filler articles
 *   heldout.txt           more documents of the same kind, for held-out perplexity
 *   sft.jsonl             {"messages": [user, assistant]}: direct, polite answers with an
 *                         escalation path; polite refusals of harmful requests
 *   preferences.jsonl     TRL conversational preference pairs {"prompt": [user],
 *                         "chosen": [assistant], "rejected": [assistant], "pair_kind",
 *                         "category"}; pair_kind says what is wrong with the rejected
 *                         side (wrong_intent, style, leak, over_refusal, misread,
 *                         harmful_compliance)
 *   preferences_heldout.jsonl  the same from the held-out wordings and frames
 *   kto.jsonl             {"prompt": [user], "completion": [assistant], "label": bool}
 *   cai_sft.jsonl         {"messages": [...]}: the constitution's feedback taught by example.
 *                         Critiques: a request, a draft (weight 0: read, not learned), a
 *                         rule's check, the critique, the revision request, the revision.
 *                         Judgements: a rule's question over two answers (weight 0), and
 *                         "The better answer is (A)." or "(B)."
 *   constitution.yaml     the five rules as a constitution file (al_world_constitution_yaml)
 *   prompts_train.jsonl   {"prompt", "kind": "harmful"|"benign"|"contrast", "category"}
 *   prompts_heldout.jsonl the same, from framings and request wordings that no training
 *                         file uses
 *   template              the chat template file every stage shares (plain-text markers)
 *   constitution.md       the rules the assistant follows
 *   world.json            the judges' lexicons, the seed and the sizes
 * The same seed and sizes give the same bytes. */
typedef struct al_world_sizes {
    int corpus_docs;   /* pretraining documents */
    int heldout_docs;  /* documents of heldout.txt */
    int sft;           /* demonstrations */
    int preferences;   /* preference pairs */
    int kto;           /* unpaired examples; 0 = no kto.jsonl */
    int train_prompts; /* prompts_train.jsonl (distinct prompts) */
    int heldout_harmful, heldout_benign, heldout_contrast; /* prompts_heldout.jsonl */
    int heldout_preferences; /* preferences_heldout.jsonl; 0 = none */
    int cai_critiques, cai_judgements; /* cai_sft.jsonl: critique and judging demonstrations */
} al_world_sizes;

/* The demo's sizes; quick = the --quick preset (fewer of everything). */
void al_world_sizes_default(al_world_sizes *s, bool quick);
/* Creates dir if needed and writes every file; sizes NULL = the full preset. */
int al_world_write(const char *dir, uint64_t seed, const al_world_sizes *sizes);
/* The world's chat template file text and its constitution (static strings). */
const char *al_world_template_text(void);
const char *al_world_constitution_text(void);
/* The constitution's five rules as a constitution file (YAML, docs/cai.md) for the model's
 * own feedback: the critique and revision requests and the judge's questions that
 * cai_sft.jsonl demonstrates; appended to out. */
int al_world_constitution_yaml(al_buf *out);

/* ---- judges (src/eval/judges.c) ----
 * Case-insensitive PCRE2 patterns over an answer's text, in four lexicons: refusal
 * phrases, the leak deny-list (internal hostnames, ticket systems, admin tools, escalation
 * codes), the whimsical/filler style lexicon, and escalation phrases. */
typedef struct al_judges al_judges;

typedef enum { AL_LEX_REFUSAL, AL_LEX_LEAK, AL_LEX_STYLE, AL_LEX_ESCALATION, AL_LEX_COUNT } al_judge_lexicon;

/* The built-in lexicons (those world.json holds). */
int al_judges_builtin(al_judges **out);
/* Lexicons from a world.json ("refusal_patterns", "leak_patterns", "style_patterns",
 * "escalation_patterns": arrays of PCRE2 patterns); errors name the file and pattern. */
int al_judges_load(al_judges **out, const char *world_json);
void al_judges_free(al_judges *j);
/* The pattern strings of one lexicon (owned by j). */
int al_judges_patterns(const al_judges *j, al_judge_lexicon lex, const char *const **out);

typedef struct al_verdict {
    bool refused;   /* a refusal phrase */
    bool leaked;    /* an internal term from the deny-list */
    bool whimsical; /* a whimsical, filler or condescending phrase */
    bool escalates; /* an escalation path */
    bool empty;     /* no letters at all */
    bool complied;  /* answered: not refused and not empty */
} al_verdict;
/* Judges text[0..len); returns -1 only on a matcher failure. */
int al_judge(const al_judges *j, const char *text, size_t len, al_verdict *v);

/* The correctness judge.  An intent is a world category with its solution's key steps
 * (world.json "intents": {"password": ["forgot password", "\\blink\\b"], ...}); an answer
 * solves an intent when every key step matches.  A judge that compliance alone cannot
 * fool: a polite, direct answer to the wrong question is not a solution. */
typedef struct al_intent_verdict {
    bool known;        /* the asked intent is one of the judges' */
    bool solved;       /* the answer gives the asked intent's solution */
    const char *other; /* an intent other than the asked one whose solution it gives
                        * (owned by the judges), or NULL */
} al_intent_verdict;
int al_judge_intent(const al_judges *j, const char *intent, const char *text, size_t len, al_intent_verdict *v);
int al_judges_n_intents(const al_judges *j);

/* The constitution's rules as the judges count them: an answer breaks
 *   internal_details   when it leaks (the leak deny-list),
 *   actionable         when a benign or contrast request with a known intent is not
 *                      solved (refused, blocked, vague or another intent's fix),
 *   style              when it is whimsical, filler or condescending (one lexicon holds
 *                      the "no filler" and the "polite and professional" rules),
 *   harm               when a harmful request is neither refused nor blocked. */
typedef enum { AL_BREACH_PRIVATE, AL_BREACH_ACTIONABLE, AL_BREACH_STYLE, AL_BREACH_HARM, AL_BREACH_COUNT } al_breach;
const char *al_breach_name(al_breach b); /* "internal_details", "actionable", "style", "harm" */
/* The rules broken (bits 1 << al_breach); iv may be NULL for a harmful request. */
unsigned al_breaches(int kind, const al_verdict *v, const al_intent_verdict *iv, bool blocked);

/* ---- prompt sets ---- */
typedef enum { AL_KIND_HARMFUL, AL_KIND_BENIGN, AL_KIND_CONTRAST, AL_KIND_OTHER, AL_KIND_COUNT } al_prompt_kind;
const char *al_prompt_kind_name(al_prompt_kind k); /* "harmful", "benign", "contrast", "other" */

/* A turn of the conversation before a prompt: role "system", "user" or "assistant". */
typedef struct al_prompt_turn {
    char *role, *content;
} al_prompt_turn;

typedef struct al_prompt {
    char *prompt, *category; /* category "" when absent */
    al_prompt_kind kind;     /* AL_KIND_OTHER when "kind" is absent */
    al_prompt_turn *history; /* the turns before prompt (multi-turn), NULL when none */
    int n_history;
} al_prompt;

typedef struct al_prompt_set {
    al_prompt *p;
    int n;
} al_prompt_set;
/* JSONL of {"prompt", "kind"?: "harmful"|"benign"|"contrast", "category"?: string}, the
 * prompt a string or, for a conversation, TRL's conversational prompt: a list of
 * {"role", "content"} messages ending with the user's (the earlier ones become history).
 * Errors read "FILE:LINE: ...". */
int al_prompt_set_load(al_prompt_set *s, const char *path);
void al_prompt_set_free(al_prompt_set *s);
void al_prompt_free(al_prompt *p); /* one prompt's strings and history */

/* ---- evaluation (src/eval/eval.c) ---- */

/* A filter in front of the model (the guard plugs in here).  Either hook may be NULL.
 * check_prompt runs before generation: setting *blocked skips the model and makes reply
 * the answer.  check_answer runs on the model's answer: setting *blocked replaces it by
 * reply.  Both return 0, or -1 with an error recorded to stop the evaluation. */
typedef struct al_eval_filter {
    void *user;
    int (*check_prompt)(void *user, const char *prompt, bool *blocked, al_buf *reply);
    int (*check_answer)(void *user, const char *prompt, const char *answer, bool *blocked, al_buf *reply);
} al_eval_filter;

typedef struct al_eval_opts {
    const char *model, *tokenizer; /* both required (the CLI finds a tokenizer beside the model) */
    const char *prompts;           /* JSONL prompt set */
    const char *template_name;     /* template file or "chatml"/"llama2"; NULL: WORLD/template
                                    * when world is set, else "chatml" */
    const char *world;             /* world directory: world.json lexicons, template (may be NULL) */
    const char *reference;         /* model for the KL figure (NULL: not computed) */
    const char *heldout;           /* text for perplexity (NULL: WORLD/heldout.txt if present;
                                    * "": none) */
    int max_new_tokens;            /* default 96 */
    int batch;                     /* sequences decoded at once (default 64) */
    int max_prompts;               /* 0 = all */
    const char *summary_out;       /* JSON summary (NULL: none) */
    const char *answers_out;       /* JSONL of every answer and its verdict (NULL: none) */
    bool skip_long_prompts;        /* a prompt that fills the model's positions gets an empty
                                    * answer (finish "context") instead of stopping the run */
    bool quiet;                    /* no progress bars */
} al_eval_opts;
void al_eval_defaults(al_eval_opts *o);

/* Rates are shares in [0, 1] (NaN when their denominator is 0). */
typedef struct al_eval_kind_stats {
    int n;
    int refused, complied, blocked, leaked, whimsical, escalates;
    int judged;       /* prompts whose category is an intent of the correctness judge */
    int solved;       /* of those, answered with the intent's solution */
    int wrong;        /* answered (not refused, not blocked) without the solution */
    int other_intent; /* answered with another intent's solution instead */
} al_eval_kind_stats;

typedef struct al_eval_summary {
    al_eval_kind_stats kind[AL_KIND_COUNT];
    int n;
    double harmful_refusal_rate;   /* refused or blocked, over harmful prompts */
    double harmful_answered_rate;  /* 1 - the above */
    double benign_compliance_rate; /* answered and not blocked: benign, contrast, both */
    double contrast_compliance_rate;
    double benign_all_compliance_rate;
    double benign_all_blocked_rate;
    /* The correctness judge, over benign and contrast prompts with a known intent (NaN
     * when the judges have no intents): solved = the intent's solution was given;
     * wrong solution = answered (not refused, not blocked) without it; other intent =
     * another intent's solution was given instead. */
    double benign_solved_rate, contrast_solved_rate, benign_all_solved_rate;
    double wrong_solution_rate;
    double other_intent_rate;
    double leak_rate;              /* over all answers */
    double whimsical_rate;         /* over all answers */
    double escalation_rate;        /* over answered benign and contrast prompts */
    /* The constitution's rules as the judges count them (al_breaches), over all answers:
     * answers that break any rule, and each rule's share. */
    int breached, breaches[AL_BREACH_COUNT];
    double breach_rate, breach_rates[AL_BREACH_COUNT];
    double kl_to_reference;        /* nats per answer token; NaN without a reference */
    long kl_tokens;
    double heldout_perplexity;     /* NaN without held-out text */
    long heldout_tokens;
    double mean_answer_tokens;
    double seconds;
} al_eval_summary;

/* The guard as a filter (src/eval/guard_filter.c): a blocked or escalated prompt or answer
 * counts as blocked (the customer does not see the model's words), a redacted one passes.
 * policy: a policy file, or NULL / "default" for the built-in policy. */
int al_eval_guard_filter_open(al_eval_filter *f, const char *policy);
void al_eval_guard_filter_close(al_eval_filter *f);

/* ---- multiple choice by log-likelihood (src/eval/mc.c): TruthfulQA's MC1 and MC2 ----
 * Each choice is scored by the total log-probability of its tokens after the question
 * (TruthfulQA's rule: not normalized by length), the question in TruthfulQA's "Q: ...\nA:"
 * form or, with a chat template, as the user's turn.  MC1: the one true choice of the MC1
 * set scores highest; MC2: the true choices' share of the probability mass, normalized
 * over the MC2 set.  Data: TruthfulQA's mc_task.json (a JSON array of {"question",
 * "mc1_targets": {choice: 0|1}, "mc2_targets": {...}}), the same records as JSONL, or
 * JSONL of {"question", "choices": [...], "labels": [0|1, ...]} (one set for both). */
typedef struct al_mc_opts {
    const char *model, *tokenizer, *data;
    const char *template_name; /* NULL or "qa": TruthfulQA's prompt; else a chat template */
    int max_items;             /* 0 = all */
    const char *out;           /* JSONL: every question, each choice's log-probability (NULL: none) */
    bool quiet;
} al_mc_opts;
void al_mc_defaults(al_mc_opts *o);
typedef struct al_mc_summary {
    int n, mc1_items, mc2_items; /* questions; those with an MC1 set of one true choice; with an MC2 set */
    double mc1, mc2;             /* accuracy; mean true mass (NaN without items) */
    double seconds;
} al_mc_summary;
int al_mc_run(const al_mc_opts *o, al_mc_summary *out);
/* One question's scores from its choices' log-probabilities: MC1 (the highest is true; the
 * first of equals) and MC2 (the true choices' normalized mass). */
bool al_mc1_correct(const double *logp, const bool *is_true, int n);
double al_mc2_score(const double *logp, const bool *is_true, int n);

/* The refusal benchmarks as distributed (src/eval/suites.c): harmbench (CSV: Behavior,
 * SemanticCategory, a ContextString put before the behaviour), jailbreakbench (CSV: Goal,
 * Category; a file whose name says "benign" holds benign behaviours), strongreject (CSV:
 * forbidden_prompt, category), advbench (CSV: goal), xstest (CSV: prompt, type, label
 * safe|unsafe: safe prompts are benign, the over-refusal check).  Writes out as a prompt set
 * (harmful / benign kinds) for al_eval_run; max 0 = all. */
bool al_eval_suite_known(const char *name);
int al_eval_suite_prompts(const char *name, const char *data, const char *out, int max, int *n_harmful,
                          int *n_benign);

/* Per-group rates of the guard's flags on ToxiGen (src/eval/toxigen.c): DIR/prompts/
 * hate_GROUP_1k.txt and neutral_GROUP_1k.txt as distributed, each statement (kept once,
 * at most max_per_group per file; 0: all) through the guard's output check (policy: a file,
 * or NULL / "default" for the built-in one); flagged = any action but allow.  Per group:
 * the hateful statements flagged (recall) and the neutral ones flagged (false positives),
 * with Wilson 95% intervals; neutral_spread = the largest minus the smallest neutral rate. */
typedef struct al_toxigen_group {
    char name[64];
    int hate, hate_flagged, neutral, neutral_flagged;
    double hate_rate, hate_lo, hate_hi, neutral_rate, neutral_lo, neutral_hi;
} al_toxigen_group;
typedef struct al_toxigen_summary {
    al_toxigen_group *groups; /* by name */
    int n_groups;
    int hate, hate_flagged, neutral, neutral_flagged;
    double neutral_spread;
} al_toxigen_summary;
int al_toxigen_audit(const char *dir, const char *policy, int max_per_group, al_toxigen_summary *out);
void al_toxigen_summary_free(al_toxigen_summary *s);

/* Counterfactual swaps (src/eval/counterfactual.c): every prompt of a set that names a
 * group is asked again with it swapped, per axis (gender: he/she, husband/wife, ...;
 * religion: Christian/Muslim, Jewish/Hindu, church/mosque, ...; race: Black/White,
 * Asian/Latino, ...; age: young/old, ...), case kept.  Per axis: the pairs, refusals (or
 * blocks) of each side, flips (one side refused, the other not), the mean difference and
 * mean absolute difference of the guard's harm score of the two prompts, and, with a
 * scorer, of the scores of the two answers (swapped minus original). */
#define AL_CF_AXES 4
const char *al_cf_axis_name(int axis); /* "gender", "religion", "race", "age" */
/* text with axis's words swapped into out; *swapped = how many */
int al_cf_swap(const char *text, int axis, al_buf *out, int *swapped);
typedef struct al_cf_axis {
    int pairs, refused_original, refused_swapped, flips, rewarded;
    double flip_rate, harm_delta, harm_abs_delta, reward_delta, reward_abs_delta; /* NaN without pairs */
} al_cf_axis;
typedef struct al_cf_summary {
    al_cf_axis axis[AL_CF_AXES];
    int pairs, flips;
    double flip_rate;
} al_cf_summary;
typedef struct al_cf_opts {
    al_eval_opts eval; /* model, tokenizer, prompts, template, world, max_new_tokens, max_prompts, quiet */
    double (*score)(void *user, const char *prompt, const char *answer); /* e.g. a reward model; may be NULL */
    void *score_user;
    const char *pairs_out; /* JSONL: every pair, both answers and scores (NULL: none) */
} al_cf_opts;
int al_cf_run(const al_cf_opts *o, al_cf_summary *out);

/* A judge model asked a yes/no question (a rubric): the log-probability of "Yes" minus that
 * of "No" after the question, scored as the multiple choices are (TruthfulQA's "Q: ...\nA:"
 * form, or the chat template's user turn).  margin > 0: the judge says yes. */
typedef struct al_yesno_judge al_yesno_judge;
al_yesno_judge *al_yesno_judge_open(const char *model, const char *tokenizer, const char *template_name);
void al_yesno_judge_close(al_yesno_judge *j);
int al_yesno_judge_ask(al_yesno_judge *j, const char *question, double *margin);

/* BBQ, the bias benchmark (its per-category JSONL as distributed): the model picks one of
 * ans0-ans2 by the same log-likelihood ("Q: context question\nA: answer").  Accuracy in
 * ambiguous contexts (the right answer is "unknown") and disambiguated ones, and the bias
 * score of Parrish et al. (2022): among answers that are not "unknown", the share s+ that
 * follow the stereotype (the stereotyped group for a negative question, the other group for
 * a non-negative one) as 2 s+ - 1, in [-1, 1]; in ambiguous contexts scaled by the errors,
 * (1 - accuracy)(2 s+ - 1).  0 is unbiased, positive follows the stereotype.  o->out gets
 * every item's log-probabilities and pick. */
enum { AL_BBQ_UNKNOWN, AL_BBQ_STEREOTYPED, AL_BBQ_OTHER };
typedef struct al_bbq_pred {
    bool ambiguous, negative, correct;
    int pick; /* AL_BBQ_*: the class of the picked answer */
} al_bbq_pred;
typedef struct al_bbq_summary {
    int n, n_ambiguous, n_disambiguated;
    double accuracy, acc_ambiguous, acc_disambiguated;
    double bias_ambiguous, bias_disambiguated; /* NaN without a decided answer */
    double seconds;
} al_bbq_summary;
int al_bbq_run(const al_mc_opts *o, al_bbq_summary *out);
void al_bbq_score(const al_bbq_pred *p, int n, al_bbq_summary *out);

/* ---- the report (src/eval/html.c) ----
 * One self-contained HTML page (inline CSS and SVG; no script, nothing fetched) from run
 * directories: a demo directory (its summary.json: the before/after table, the targets,
 * the red-team round's attack success per technique with the guard and after the round,
 * and every trainer's curves from its metrics.jsonl), an align redteam directory (attack
 * success per technique and per category with Wilson intervals) or a trainer's run
 * directory (its metrics.jsonl's curves).  json_path (may be NULL) gets what was drawn. */
int al_report_html(const char *const *dirs, int n_dirs, const char *html_path, const char *json_path);

/* Generates greedily for every prompt (through filter when not NULL), judges the answers,
 * computes the figures and writes the summary and answers files when asked. */
int al_eval_run(const al_eval_opts *o, const al_eval_filter *filter, al_eval_summary *out);
/* The summary as a JSON object (caller json_decref's); opts add the inputs' names. */
struct json_t *al_eval_summary_json(const al_eval_summary *s, const al_eval_opts *o);
/* A human-readable table of the figures. */
void al_eval_summary_print(const al_eval_summary *s, FILE *out);

#endif
