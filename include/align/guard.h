/* align guard: the runtime rails around a deployed model (docs/guard.md, docs/guard_models.md).
 * Rules: decoders, PII, injection and persona patterns, lexicon, constitution rules, the
 * YAML policy and the decisions.  Models and people: the harm classifier, the perplexity
 * heuristic and the SQLite review queue. */
#ifndef ALIGN_GUARD_H
#define ALIGN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The hazard taxonomy (our own names).  Shared by the classifier, the policy and the
 * decisions; the string names are what policy files, JSON output and metrics use. */
typedef enum al_hazard {
    AL_HAZ_VIOLENT_CRIME,     /* "violent_crime" */
    AL_HAZ_NONVIOLENT_CRIME,  /* "nonviolent_crime" */
    AL_HAZ_SEX_CRIME,         /* "sex_crime" */
    AL_HAZ_CHILD_EXPLOITATION,/* "child_exploitation" */
    AL_HAZ_DEFAMATION,        /* "defamation" */
    AL_HAZ_SPECIALIZED_ADVICE,/* "specialized_advice" */
    AL_HAZ_PRIVACY,           /* "privacy" */
    AL_HAZ_INTELLECTUAL_PROPERTY, /* "intellectual_property" */
    AL_HAZ_INDISCRIMINATE_WEAPONS,/* "indiscriminate_weapons" */
    AL_HAZ_HATE,              /* "hate" */
    AL_HAZ_SELF_HARM,         /* "self_harm" */
    AL_HAZ_SEXUAL_CONTENT,    /* "sexual_content" */
    AL_HAZ_ELECTIONS,         /* "elections" */
    AL_HAZ_CODE_ABUSE,        /* "code_interpreter_abuse" */
    AL_HAZ_COUNT
} al_hazard;

/* ==== rules, scanners, policy, decisions ==== */
/* docs/guard.md describes the policy file, the decision JSON and every reason code. */

#include "align/core.h"

const char *al_hazard_name(al_hazard h);                 /* "violent_crime", ...; "?" */
int al_hazard_parse(const char *name, al_hazard *out);   /* -1 for an unknown name */

/* ---- decoders (src/guard/decode.c) ----
 * Each codec has a decoder (what the guard applies before rescanning) and an encoder
 * (what an attacker would apply; used by tests to round-trip).  Both append to out.
 * Round trips are exact except where the codec loses information by design: leetspeak
 * decodes to lower case and reads every digit it knows as a letter, so it round-trips
 * lower-case text without digits; pig Latin round-trips its own hyphenated form
 * ("ello-hay"), and decodes unhyphenated words by a heuristic. */
typedef enum al_codec {
    AL_CODEC_BASE64,      /* standard or URL-safe alphabet, padding optional */
    AL_CODEC_HEX,         /* pairs of hex digits, optionally separated by spaces */
    AL_CODEC_ROT13,
    AL_CODEC_LEETSPEAK,   /* 4->a 3->e 1->i 0->o 5->s 7->t 8->b 9->g @->a $->s */
    AL_CODEC_PIG_LATIN,
    AL_CODEC_CONFUSABLES, /* Cyrillic/Greek homoglyphs, math alphanumerics, enclosed letters */
    AL_CODEC_FULLWIDTH,   /* U+FF01..U+FF5E and U+3000 */
    AL_CODEC_ZERO_WIDTH,  /* zero-width spaces/joiners, bidi controls, soft hyphen, BOM */
    AL_CODEC_TAGS,        /* Unicode tag characters U+E0020..U+E007E ("ASCII smuggling") */
    AL_CODEC_COUNT
} al_codec;
const char *al_codec_name(al_codec c); /* "base64", "hex", "rot13", "leetspeak", "pig_latin", ... */
int al_codec_parse(const char *name, al_codec *out);
/* Decode fails (-1) only for base64 and hex text that is not in that encoding. */
int al_decode(al_codec c, const char *in, size_t n, al_buf *out);
int al_encode(al_codec c, const char *in, size_t n, al_buf *out);

/* ---- PII (src/guard/pii.c) ---- */
typedef enum al_pii_type {
    AL_PII_EMAIL, AL_PII_PHONE, AL_PII_CARD, AL_PII_IBAN, AL_PII_SSN, AL_PII_IPV4,
    AL_PII_IPV6, AL_PII_URL_CREDENTIALS, AL_PII_SECRET, AL_PII_DATE_OF_BIRTH,
    AL_PII_COUNT
} al_pii_type;
const char *al_pii_name(al_pii_type t);                  /* "email", "phone", "card", ... */
const char *al_pii_tag(al_pii_type t);                   /* "EMAIL", "PHONE", ... */
int al_pii_parse(const char *name, al_pii_type *out);

typedef struct al_pii_match {
    al_pii_type type;
    size_t start, end;     /* byte offsets, end exclusive */
    const char *kind;      /* finer label: "visa", "aws_access_key", "private_key", ... */
} al_pii_match;

/* Finds every PII item of the enabled types (enabled == NULL: all) in text, in order,
 * without overlaps.  Candidates must pass their validator: Luhn and issuer prefix for
 * cards, mod-97 and country length for IBANs, SSA rules for SSNs, octet ranges, calendar
 * dates next to a birth context word, and so on.  *out is malloc'd (free() it). */
int al_pii_scan(const char *text, size_t n, const bool enabled[AL_PII_COUNT],
                al_pii_match **out, int *n_out);

/* Validators, exposed for tests and for callers with their own candidates. */
bool al_luhn_valid(const char *digits, size_t n);   /* digits only */
bool al_iban_valid(const char *s, size_t n);        /* spaces allowed */
bool al_ssn_valid(int area, int group, int serial);

/* ---- redaction (src/guard/redact.c) ---- */
typedef enum al_redact_mode {
    AL_REDACT_MASK,  /* letters and digits become '*', punctuation stays: "****@*****.***" */
    AL_REDACT_TAG,   /* "[EMAIL]" */
    AL_REDACT_HASH,  /* "[EMAIL:1f0c2ab39d7e5a44]": HMAC-SHA-256 keyed with the salt, 64 bits */
} al_redact_mode;
const char *al_redact_mode_name(al_redact_mode m);
int al_redact_mode_parse(const char *name, al_redact_mode *out);

/* One span to replace; tag is the upper-case type name used by TAG and HASH. */
typedef struct al_redact_span {
    size_t start, end;
    const char *tag;
} al_redact_span;
/* Appends text with the spans (sorted, non-overlapping) replaced. */
int al_redact(const char *text, size_t n, const al_redact_span *spans, int n_spans,
              al_redact_mode mode, const char *salt, al_buf *out);

/* SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104), for salted hashes. */
void al_sha256(const void *data, size_t n, uint8_t digest[32]);
void al_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                    uint8_t mac[32]);

/* ---- toxicity lexicon (src/guard/lexicon.c) ---- */
typedef struct al_lexicon al_lexicon;
/* The built-in English lexicon (ours; a few hundred terms with severities 1..3). */
al_lexicon *al_lexicon_builtin(void);
/* A CSV file: either the layout of ../shared/data/safety/toxicity_lexicons/profanity_en.csv
 * (header with "text" and "severity_rating") or two columns "term,severity". */
al_lexicon *al_lexicon_load(const char *path);
void al_lexicon_free(al_lexicon *lx);
int al_lexicon_size(const al_lexicon *lx);
/* The sum of the severities (0..3 each) of the distinct lexicon terms in text[0..n),
 * found as the toxicity rail finds them (Unicode fold, word sequences, case-insensitive,
 * leetspeak spellings of one-word terms); *n_terms (may be NULL) gets how many.  A term
 * found twice counts once.  The reward term lexicon:FILE is minus this sum. */
int al_lexicon_severity(const al_lexicon *lx, const char *text, size_t n, double *sum, int *n_terms);

/* ---- policy (src/guard/policy.c) ---- */
typedef enum al_guard_action {
    AL_GUARD_ALLOW, AL_GUARD_REDACT, AL_GUARD_ESCALATE, AL_GUARD_BLOCK,
} al_guard_action; /* in increasing severity; a decision takes the most severe */
const char *al_guard_action_name(al_guard_action a);

/* The rails, in the order they run. */
typedef enum al_guard_rail {
    AL_RAIL_DECODE,       /* decode-and-rescan and the obfuscation signals */
    AL_RAIL_INJECTION,    /* prompt-injection phrases */
    AL_RAIL_ROLEPLAY,     /* role-play and persona jailbreaks */
    AL_RAIL_PII,
    AL_RAIL_TOXICITY,
    AL_RAIL_CONSTITUTION, /* deny-listed terms; required escalation path (output only) */
    AL_RAIL_HARM,         /* harm classifier */
    AL_RAIL_PERPLEXITY,   /* perplexity heuristic */
    AL_RAIL_COUNT
} al_guard_rail;
const char *al_guard_rail_name(al_guard_rail r);

/* Decision categories: the rule categories, then one per hazard. */
typedef enum al_guard_category {
    AL_GCAT_INVALID_INPUT,      /* "invalid_input": too large, invalid UTF-8, NUL, bad JSON */
    AL_GCAT_INJECTION,          /* "injection" */
    AL_GCAT_ROLEPLAY,           /* "roleplay" */
    AL_GCAT_OBFUSCATION,        /* "obfuscation" */
    AL_GCAT_PII,                /* "pii" */
    AL_GCAT_TOXICITY,           /* "toxicity" */
    AL_GCAT_DENY_TERM,          /* "deny_term" */
    AL_GCAT_MISSING_ESCALATION, /* "missing_escalation" */
    AL_GCAT_PERPLEXITY,         /* "perplexity" */
    AL_GCAT_HAZARD,             /* AL_GCAT_HAZARD + h: the hazard's own name */
    AL_GCAT_COUNT = AL_GCAT_HAZARD + AL_HAZ_COUNT
} al_guard_category;
const char *al_guard_category_name(int cat);
int al_guard_category_parse(const char *name, int *out);

typedef struct al_guard_category_policy {
    al_guard_action action;
    float threshold;  /* the category triggers when its score >= threshold */
    char *reply;      /* canned reply for block and escalate (may be NULL) */
} al_guard_category_policy;

/* A PCRE2 pattern of the policy's own; triggers (optional, lower-case words) limit where
 * it runs, as they do for the built-in patterns. */
typedef struct al_guard_pattern {
    char *name, *regex;
    float weight;
    char **triggers;
    int n_triggers;
    int line, column; /* where the policy file defined it, for messages */
} al_guard_pattern;

typedef struct al_guard_policy {
    char *origin;                       /* file name, or "built-in" */
    size_t max_input_bytes;             /* default 65536 */
    bool input_rails[AL_RAIL_COUNT], output_rails[AL_RAIL_COUNT];
    /* decode */
    bool codecs[AL_CODEC_COUNT];
    int decode_max_depth;               /* nested encodings followed (default 2) */
    size_t min_encoded_len;             /* shortest base64/hex run decoded (default 16) */
    /* injection and role-play */
    bool builtin_patterns;              /* default true */
    al_guard_pattern *injection_patterns, *roleplay_patterns;
    int n_injection_patterns, n_roleplay_patterns;
    /* pii */
    bool pii_types[AL_PII_COUNT];
    al_redact_mode redact;
    char *salt;
    char **pii_allow;                   /* values that are not PII here (the company's own
                                           support address), compared case-insensitively */
    int n_pii_allow;
    /* toxicity */
    char *lexicon_path;                 /* NULL: the built-in lexicon */
    float min_severity;                 /* entries below are ignored (default 1) */
    /* constitution */
    char **deny_terms;
    int n_deny_terms;
    al_guard_pattern *deny_patterns;
    int n_deny_patterns;
    char **escalation_phrases;          /* an answer must contain one of them ... */
    int n_escalation_phrases;
    char **escalation_when;             /* ... when the prompt or answer holds one of these
                                           (none: always, if phrases are configured) */
    int n_escalation_when;
    /* hooks: harm classifier, perplexity heuristic, review queue */
    char *harm_model;                   /* thresholds: the hazard categories' own */
    char *perplexity_model, *perplexity_tokenizer;
    float perplexity_lp_threshold, perplexity_ps_threshold;
    char *review_queue;
    /* actions */
    al_guard_category_policy cats[AL_GCAT_COUNT];
} al_guard_policy;

/* The built-in policy (what `align guard check` uses without --policy). */
int al_guard_policy_default(al_guard_policy *p);
/* A YAML policy overlaid on the built-in one.  Errors are located:
 * "FILE:LINE:COLUMN: expected ...". */
int al_guard_policy_load(const char *path, al_guard_policy *p);
int al_guard_policy_parse(const char *yaml, size_t n, const char *origin, al_guard_policy *p);
void al_guard_policy_free(al_guard_policy *p);

/* ---- decisions (src/guard/check.c, decision.c) ---- */
typedef struct al_guard_span {
    size_t start, end;      /* byte offsets into the checked text, end exclusive */
    int category;           /* al_guard_category */
    char label[48];         /* "email", "ignore_instructions", a deny term, ... */
    const char *via;        /* NULL, or the decoder it was found through: "base64", ... */
    float score;
} al_guard_span;

typedef struct al_guard_decision {
    al_guard_action action;
    int category;                    /* the category that decided (-1 when allowed clean) */
    float scores[AL_GCAT_COUNT];     /* meaningful where ran[] is set */
    bool ran[AL_GCAT_COUNT];
    bool triggered[AL_GCAT_COUNT];
    al_guard_span *spans;
    int n_spans, cap_spans;
    const char *reasons[32];         /* reason codes (static strings), de-duplicated */
    int n_reasons;
    char *reply;                     /* canned reply for block and escalate, else NULL */
    char *redacted;                  /* the text with redact-action spans replaced */
    size_t redacted_len;
} al_guard_decision;
void al_guard_decision_free(al_guard_decision *d);
/* One line of JSON (no newline): docs/guard.md, "Decision JSON". */
int al_guard_decision_json(const al_guard_decision *d, al_buf *out);

/* A compiled policy: patterns compiled (PCRE2 JIT), lexicon and models loaded.
 * Read-only after al_guard_open, so one guard may serve many threads, except with the
 * perplexity rail on (its language model keeps state between calls). */
typedef struct al_guard al_guard;
al_guard *al_guard_open(const al_guard_policy *p); /* copies what it needs from p */
/* False when calls must take turns (the perplexity rail is on). */
bool al_guard_thread_safe(const al_guard *g);
void al_guard_close(al_guard *g);

/* Input rails on a prompt.  Never fails on the text itself: oversize input, invalid
 * UTF-8 and NUL bytes get a decision.  Returns -1 only when out of memory. */
int al_guard_check_input(const al_guard *g, const char *text, size_t n, al_guard_decision *out);
/* Output rails on an answer; prompt (may be NULL) is context for the escalation rule. */
int al_guard_check_output(const al_guard *g, const char *prompt, size_t prompt_len,
                          const char *answer, size_t n, al_guard_decision *out);
/* The decision for a message that could not even be read as one (e.g. a JSONL line that
 * is not JSON): category invalid_input with the given reason code (a static string). */
int al_guard_decide_invalid(const al_guard *g, const char *reason, al_guard_decision *out);


/* ==== harm classifier, perplexity heuristic, review queue ==== */

/* ---- harm classifier (src/guard/classifier*.c) ----
 * A multi-label logistic regression over hashed n-grams: word unigrams and bigrams plus
 * character 3- to 5-grams of the lower-cased text, each hashed into 2^log2_buckets
 * weights per head.  Fifteen heads share the features: one per hazard (one-vs-rest) and
 * an overall harmful/benign head.  Scoring one prompt costs one pass over its bytes. */
typedef struct al_harm_model al_harm_model;

typedef struct al_harm_scores {
    float harmful;               /* P(harmful), from the overall head */
    float hazard[AL_HAZ_COUNT];  /* P(hazard h | text), each head independent */
} al_harm_scores;

/* One labelled example.  hazards is a bitmask (1u << h); a harmful example may have no
 * hazard bit when its source names none; benign examples have hazards == 0. */
typedef struct al_harm_example {
    char *text;
    bool harmful;
    uint32_t hazards;
    const char *source; /* static string: "advbench", "own_contrast", ... */
    float weight;       /* of its loss in training; 0 means 1 */
} al_harm_example;

typedef struct al_harm_dataset {
    al_harm_example *v;
    int n, cap;
} al_harm_dataset;

int al_harm_dataset_add(al_harm_dataset *d, const char *text, bool harmful, uint32_t hazards,
                        const char *source);
void al_harm_dataset_free(al_harm_dataset *d);
/* Reads the training sources under shared_dir (the ../shared checkout): harmful requests
 * from data/safety/{advbench,do_not_answer,malicious_instruct}, toxigen's hateful
 * statements (hate) and neutral ones (benign), benign instructions from
 * corpora/self-instruct-human and corpora/llamafactory-demo, and our built-in list of
 * benign prompts that sound dangerous.  Every source's categories are mapped onto the
 * hazard taxonomy (docs/guard_models.md).  Fails naming the first missing file. */
int al_harm_dataset_load_shared(al_harm_dataset *d, const char *shared_dir);
/* Deterministic split by a hash of each text: about test_percent% of the examples go to
 * test, the rest to train.  Texts are copied. */
int al_harm_dataset_split(const al_harm_dataset *all, int test_percent, al_harm_dataset *train,
                          al_harm_dataset *test);
/* Benign prompts that merely sound dangerous ("how do I kill a Python process"): the
 * list the trainer learns from.  The benchmark holds out a differently worded list. */
extern const char *const al_harm_contrast_prompts[];
extern const int al_harm_n_contrast_prompts;

/* ---- the request generator (src/guard/harm_gen*.c) ----
 * Seeded harmful and benign requests across the 14 hazards: an item (what is asked) in a
 * frame (question, imperative, first person, past or future tense, polite, curt, long) and
 * sometimes a jailbreak wrapper (persona, hypothetical, fiction, demands to comply,
 * pretexts, payload splitting, and with encodings on Base64, ROT13, leetspeak, pig Latin).
 * Benign items borrow the words of harm: homonyms, figurative speech, safe targets, safe
 * contexts, definitions, history, public or fictional figures, nonsense groups.  Every
 * item, frame and wrapper belongs to one split (three in five train, one validation, one
 * held out) and a request takes all its parts from the split asked for, so the splits
 * share no template. */
enum { AL_HARM_GEN_TRAIN, AL_HARM_GEN_VALID, AL_HARM_GEN_HELDOUT };
typedef struct al_harm_gen_opts {
    uint64_t seed;        /* the same seed and options give the same requests */
    int n;                /* requests to generate */
    int split;            /* AL_HARM_GEN_TRAIN, _VALID or _HELDOUT */
    int harmful_percent;  /* default 50 */
    int wrap_percent;     /* share inside a jailbreak wrapper (default 25) */
    int preamble_percent; /* share made long by a sentence of context first (default 10) */
    bool encodings;       /* wrappers may encode the request (off for training data) */
} al_harm_gen_opts;
al_harm_gen_opts al_harm_gen_defaults(void);

typedef struct al_harm_gen_example {
    char *prompt;
    bool harmful;
    int hazard;          /* al_hazard, or -1 for benign */
    int phenomenon;      /* al_harm_gen_phenomenon_name(): harmful, plain, homonym, ... */
    int kind;            /* 0 action, 1 content, 2 question */
    const char *form;    /* question, imperative, first_person, past, future, polite, curt, long */
    const char *wrapper; /* persona, hypothetical, ...; NULL when unwrapped */
    const void *item;    /* template identity: the item, and frame and wrapper indices */
    int frame, wrapper_index;
} al_harm_gen_example;
typedef struct al_harm_gen_set {
    al_harm_gen_example *v;
    int n;
} al_harm_gen_set;

int al_harm_generate(const al_harm_gen_opts *o, al_harm_gen_set *out);
void al_harm_gen_free(al_harm_gen_set *s);
const char *al_harm_gen_phenomenon_name(int phenomenon);
/* the split of a template part (AL_HARM_GEN_*): an item pointer, or a frame or wrapper
 * index; -1 for no such part */
int al_harm_gen_item_split(const void *item);
int al_harm_gen_index_split(int index);
/* Checks the built-in item lists (verb phrases written "base|past rest", known slots). */
int al_harm_gen_check(void);

typedef struct al_harm_train_opts {
    int epochs;          /* passes over the data (default 8) */
    int log2_buckets;    /* 10..24 (default 18: a 16 MiB model) */
    float lr;            /* AdamW learning rate (default 0.01) */
    float weight_decay;  /* decoupled, on touched weights only (default 1e-6) */
    uint64_t seed;       /* example order; the same seed gives the same model bit for bit */
    float threshold;     /* decision threshold stored with the model (default 0.5) */
    const char *wordnet_dir; /* WordNet's dict files (Debian wordnet-base: /usr/share/wordnet):
                              * adds concept features, saved in the model; NULL for none */
    bool verbose;        /* one line per epoch on stderr */
} al_harm_train_opts;
al_harm_train_opts al_harm_train_defaults(void);

al_harm_model *al_harm_train(const al_harm_dataset *train, const al_harm_train_opts *o);
void al_harm_free(al_harm_model *m);
/* Scores text[0..len).  Thread-safe: the model is read-only while scoring. */
int al_harm_score(const al_harm_model *m, const char *text, size_t len, al_harm_scores *out);
float al_harm_threshold(const al_harm_model *m); /* harmful if scores.harmful >= this */
/* File: a 64-byte header (magic "ALHARM01", version, heads, log2 buckets, row stride,
 * hashing seed, n-gram ranges, threshold, a 64-bit checksum of the rest, calibration) then
 * [buckets][16] float32 weights, 16 float32 biases and the WordNet concept table,
 * little-endian; written atomically.  The loader checks every
 * field and the file size and fails with a message saying what is wrong. */
int al_harm_save(const al_harm_model *m, const char *path);
al_harm_model *al_harm_load(const char *path);
/* Platt scaling of the harmful head: fits P(harmful) = sigmoid(a z + b) on d (examples
 * the model was not trained on) and keeps (a, b) in the model and its file. */
int al_harm_calibrate(al_harm_model *m, const al_harm_dataset *d);
void al_harm_calibration(const al_harm_model *m, float *a, float *b);
/* The default model the built-in policy's harm rail loads: $ALIGN_HARM_MODEL, else
 * harm_default.bin beside the running executable (the build writes it there with
 * `align guard train --default`).  Caller frees. */
char *al_harm_default_model_path(void);

/* Held-out figures: binary harmful-vs-benign at the model's threshold and, per hazard,
 * one-vs-rest at 0.5 over the examples that carry category labels. */
typedef struct al_harm_prf {
    int tp, fp, fn, tn;
    double precision, recall, f1;
} al_harm_prf;
typedef struct al_harm_eval {
    al_harm_prf overall;
    al_harm_prf hazard[AL_HAZ_COUNT];
    int support[AL_HAZ_COUNT]; /* positives of each hazard in the evaluated set */
} al_harm_eval;
int al_harm_evaluate(const al_harm_model *m, const al_harm_dataset *d, al_harm_eval *out);
void al_harm_prf_finish(al_harm_prf *p); /* precision, recall, F1 from the counts */

/* ---- perplexity heuristic for adversarial prompts (src/guard/perplexity.c) ----
 * NeMo Guardrails' two jailbreak heuristics, computed with a language model of ours:
 *  - length per perplexity: characters / perplexity(prompt) >= lp_threshold flags long
 *    prompts that are unusually fluent for their length (pasted jailbreak templates);
 *  - prefix/suffix perplexity: for prompts of 20 or more whitespace-separated words, the
 *    perplexity of the first 19 words and of the 19 words before the last one (NeMo's
 *    windows, off-by-one included) >= ps_threshold flags optimized gibberish such as GCG
 *    suffixes.
 * NeMo's defaults (89.79, 1845.65) were fitted to gpt2-large; perplexity depends on the
 * model and tokenizer, so thresholds for another model must be measured
 * (docs/guard_models.md has the figures for stories260K). */
typedef struct al_ppl_guard al_ppl_guard;

typedef struct al_ppl_opts {
    float lp_threshold; /* default 89.79 */
    float ps_threshold; /* default 1845.65 */
    int min_words;      /* default 20: shorter prompts skip the prefix/suffix check */
    int window_words;   /* default 19 */
} al_ppl_opts;
al_ppl_opts al_ppl_defaults(void);

typedef struct al_ppl_result {
    int n_tokens;                 /* of the whole prompt, after truncation to the context */
    double perplexity;            /* exp(mean NLL) over the whole prompt */
    double length_per_perplexity; /* characters / perplexity */
    double prefix_perplexity;     /* 0 when the prompt is too short for the window check */
    double suffix_perplexity;
    bool lp_jailbreak, ps_jailbreak;
    bool jailbreak;               /* either heuristic */
} al_ppl_result;

/* Loads a model (any format al_model_load reads) and its tokenizer. */
al_ppl_guard *al_ppl_guard_open(const char *model_path, const char *tokenizer_path);
void al_ppl_guard_close(al_ppl_guard *g);
/* Perplexity of text under the model: BOS then the text's tokens, every token after BOS
 * predicted; texts longer than the context are scored in consecutive windows. */
int al_ppl_perplexity(al_ppl_guard *g, const char *text, double *ppl, int *n_tokens);
int al_ppl_check(al_ppl_guard *g, const char *text, const al_ppl_opts *o, al_ppl_result *out);

/* ---- human review queue (src/guard/review.c) ----
 * Escalated decisions wait in a SQLite database (WAL journal, synchronous=FULL: a
 * committed item survives a crash or power loss) until a person approves or rejects
 * them.  Every change writes an audit row in the same transaction (who, when, why), and
 * audit rows are never updated or deleted.  Enqueueing is idempotent by the caller's key:
 * a retried write after a crash returns the existing item instead of adding a second. */
typedef enum al_review_state {
    AL_REVIEW_PENDING = 0,
    AL_REVIEW_APPROVED = 1,
    AL_REVIEW_REJECTED = 2,
} al_review_state;
const char *al_review_state_name(al_review_state s); /* "pending", "approved", "rejected" */
int al_review_state_parse(const char *name, al_review_state *out);

typedef struct al_review al_review;
/* Where `align review` and the guard keep the queue unless told otherwise (--db, or the
 * ALIGN_REVIEW_DB environment variable). */
#define AL_REVIEW_DEFAULT_DB "align_review.db"

/* An item.  For al_review_enqueue the caller fills the inputs (any may be NULL except
 * input; categories, scores and reasons are free text, conventionally JSON); for
 * reads every string is malloc'd and released by al_review_item_free. */
typedef struct al_review_item {
    int64_t id;
    int64_t created_at; /* Unix seconds (UTC) */
    char *key;          /* idempotency key; NULL: none (every enqueue adds an item) */
    char *input;        /* the prompt */
    char *output;       /* the model's answer, if any */
    char *categories;   /* e.g. ["violent_crime"] */
    char *scores;       /* e.g. {"harmful": 0.93} */
    char *reasons;      /* the decision's reason codes */
    al_review_state state;
} al_review_item;
void al_review_item_free(al_review_item *it);

typedef struct al_review_audit {
    int64_t item_id;
    int64_t at;   /* Unix seconds (UTC) */
    char *action; /* "enqueue", "approve", "reject" */
    char *who, *why;
} al_review_audit;

/* Opens (creating if needed) the queue at path. */
al_review *al_review_open(const char *path);
void al_review_close(al_review *q);
/* Returns the item's id (> 0), the existing one's if item->key was enqueued before, or
 * -1.  *created (may be NULL) tells which. */
int64_t al_review_enqueue(al_review *q, const al_review_item *item, bool *created);
/* An escalated decision as an item, keyed by a hash of the prompt and answer (answer may
 * be NULL), so checking the same text again does not queue it twice. */
int al_review_enqueue_decision(al_review *q, const al_guard_decision *d, const char *prompt, size_t plen,
                               const char *answer, size_t alen);
/* Items in id order; state < 0 lists all.  *items is malloc'd: al_review_items_free. */
int al_review_list(al_review *q, int state, al_review_item **items, int *n);
void al_review_items_free(al_review_item *items, int n);
/* Fails "no review item N" if it does not exist. */
int al_review_get(al_review *q, int64_t id, al_review_item *out);
/* Moves a pending item to approved or rejected; who and why are required and audited.
 * A decided item cannot be decided again (the audit trail stays the single story). */
int al_review_approve(al_review *q, int64_t id, const char *who, const char *why);
int al_review_reject(al_review *q, int64_t id, const char *who, const char *why);
/* The item's audit rows, oldest first (id < 0: every row). */
int al_review_audit_list(al_review *q, int64_t id, al_review_audit **rows, int *n);
void al_review_audit_free(al_review_audit *rows, int n);


/* ==== evaluation on labelled prompts (src/guard/eval.c, align guard eval) ==== */

/* One category's counts (the record's "category", "" when absent). */
typedef struct al_guard_eval_row {
    char *category;
    long n, unsafe, flagged;
    long tp, fp, tn, fn; /* unsafe flagged, safe flagged, safe allowed, unsafe allowed */
} al_guard_eval_row;

typedef struct al_guard_eval {
    long n, tp, fp, tn, fn;
    double precision, recall, f1, fpr, accuracy; /* 0 where undefined (no positives, ...) */
    long actions[4];                             /* decisions by al_guard_action */
    double latency_p50_us, latency_p99_us, latency_max_us, prompts_per_s;
    al_guard_eval_row *rows; /* per category, in order of first appearance */
    int n_rows;
} al_guard_eval;

/* Runs the input rails on every record of a JSONL file with "prompt" (or "text") and
 * "label": 1, true, "unsafe" or "harmful" for a prompt the guard should flag; 0, false,
 * "safe", "benign" or "unharmful" for one it should let through.  Flagged = blocked or
 * escalated (redaction alone is not).  "category" is optional.  Misclassified records go
 * to errors_path (NULL: nowhere) as JSONL with the decision.  Errors name PATH:LINE. */
int al_guard_eval_file(const al_guard *g, const char *path, const char *errors_path, al_guard_eval *out);
void al_guard_eval_free(al_guard_eval *e);


#endif
