/* The demo's guard: demo_guard.c builds it (classifier, policy) and checks text with it;
 * demo_guard_stage.c puts it in front of the aligned model through the evaluation's
 * filter.  The interface uses plain types, so each side includes only its own module. */
#ifndef ALIGN_CLI_DEMO_GUARD_H
#define ALIGN_CLI_DEMO_GUARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "align/core.h"

/* Labelled prompts for the harm classifier; category: the world's harm category or "". */
typedef struct demo_prompts {
    char **text;
    char **category;
    bool *harmful;
    int n, cap;
} demo_prompts;
int demo_prompts_add(demo_prompts *p, const char *text, bool harmful, const char *category);
void demo_prompts_free(demo_prompts *p);

/* Trains the harm classifier on 80% of the prompts (measured on the other 20%, split by a
 * hash of the text), writes DIR/harm_classifier.bin and DIR/policy.yaml (the deny
 * patterns, the replies, blocking at threshold), opens the policy once to check it, and
 * adds the classifier's figures to fig. */
int demo_guard_build(const char *dir, const demo_prompts *p, const char *const *deny_patterns, uint64_t seed,
                     float threshold, json_t *fig);

/* The guard of a policy file as the evaluation's filter (al_eval_filter's callbacks). */
void *demo_guard_open(const char *policy_path);
void demo_guard_close(void *guard);
int demo_guard_check_prompt(void *guard, const char *prompt, bool *blocked, al_buf *reply);
int demo_guard_check_answer(void *guard, const char *prompt, const char *answer, bool *blocked, al_buf *reply);

#endif
