/* The support world's vocabulary: requests, answers and the judges' lexicons (internal to
 * src/eval).  Lists are NULL-terminated.  Which parts are held out is decided here too, so
 * the generator and its test agree. */
#ifndef ALIGN_EVAL_WORLD_DATA_H
#define ALIGN_EVAL_WORLD_DATA_H

#include <stdbool.h>

/* A support topic: requests phrased as verb phrases ("reset my password") and the one
 * direct answer to all of them.  Benign topics are ordinary support questions; contrast
 * topics are benign requests that borrow the verbs of harmful ones ("kill a stuck process"). */
typedef struct wd_topic {
    const char *category;
    const char *const *asks;
    const char *solution;
    /* The solution's key steps (PCRE2, caseless): an answer solves the request when every
     * one matches.  No other topic's solution matches all of them (tests/test_world.c). */
    const char *const *keys;
} wd_topic;

/* A harmful category: every verb x object pair is a request ("poison" "my neighbor"). */
typedef struct wd_harm {
    const char *category;
    const char *const *verbs;
    const char *const *objects;
    const char *reason;    /* why the assistant refuses */
    const char *safe_path; /* where to turn instead */
} wd_harm;

extern const wd_topic wd_benign[], wd_contrast[];
extern const int wd_n_benign, wd_n_contrast;
extern const wd_harm wd_harms[];
extern const int wd_n_harms;

/* Held-out parts: every third request wording of a topic (index % 3 == 2) and every third
 * verb x object cell of a harmful grid ((verb + object) % 3 == 0); training files never
 * use them, nor the held-out framings. */
bool wd_ask_heldout(int ask_index);
bool wd_harm_heldout(int verb, int object);

/* Sentence frames around a request ("How do I %s?"), greetings and sign-offs. */
extern const char *const wd_frames_train[], *const wd_frames_heldout[];
extern const char *const wd_greet_train[], *const wd_greet_heldout[];
extern const char *const wd_context_train[], *const wd_context_heldout[]; /* a sentence before the request */
extern const char *const wd_signoff_train[], *const wd_signoff_heldout[];

/* Good answers: openers, escalation paths, refusal openers. */
extern const char *const wd_open_good[], *const wd_escalate[], *const wd_refuse_open[];
/* Bad answers: whimsy, rambling filler, condescension, leaks, placeholder compliance. */
extern const char *const wd_whim_open[], *const wd_whim_mid[], *const wd_whim_close[];
extern const char *const wd_filler_open[], *const wd_filler_mid[], *const wd_filler_close[];
extern const char *const wd_cond_open[], *const wd_cond_close[];
extern const char *const wd_leak[];       /* with %T ticket system, %C code, %H host, %A tool, %Q queue, %P password */
extern const char *const wd_leak_ticket[], *const wd_leak_tool[], *const wd_leak_service[], *const wd_leak_queue[];
extern const char *const wd_comply_open[], *const wd_comply_steps[], *const wd_comply_close[];
extern const char *const wd_overrefuse[]; /* a nervous moderator refusing a contrast request */
extern const char *const wd_followup[];   /* a customer's second turn */
/* Forum and article furniture. */
extern const char *const wd_boards[], *const wd_users[], *const wd_staff[];
extern const char *const wd_headlines[], *const wd_article[];
extern const char *const wd_prose[]; /* everyday prose, not about support */
extern const char *const wd_help_titles[]; /* help-center article titles around a wording */

/* The judges' lexicons (PCRE2, matched case-insensitively). */
extern const char *const wd_refusal_patterns[], *const wd_leak_patterns[], *const wd_style_patterns[],
    *const wd_escalation_patterns[];

int wd_count(const char *const *list);

/* The constitution's five rules as the model's own feedback uses them (world/
 * constitution.yaml, src/cai): short requests, so that a draft, its critique and the
 * revision fit the demo model's 256-token context. */
typedef enum {
    WD_RULE_PRIVATE,
    WD_RULE_ACTIONABLE,
    WD_RULE_NO_FILLER,
    WD_RULE_POLITE,
    WD_RULE_NO_HARM,
    WD_RULE_COUNT
} wd_rule;
typedef struct wd_principle {
    const char *name, *critique, *revision, *question;
} wd_principle;
extern const wd_principle wd_principles[WD_RULE_COUNT];
/* A critique's two forms, in words the corpus uses often (a rare word such as "rule" came
 * out garbled after a short SFT): a breach with its reason, or the rule kept. */
#define WD_CRITIQUE_BREACH "The answer has a problem: "
#define WD_CRITIQUE_KEPT "The answer is fine on this point."

#endif
