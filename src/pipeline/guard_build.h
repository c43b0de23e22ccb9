/* The pipeline's guard: guard_build.c builds it (classifier, policy) and checks text with
 * it; stage_guard.c feeds it the world's prompts, and stage_eval.c puts it in front of the
 * aligned model through the evaluation's filter.  The interface uses plain types, so each
 * side includes only its own module's header. */
#ifndef ALIGN_PIPELINE_GUARD_BUILD_H
#define ALIGN_PIPELINE_GUARD_BUILD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "align/core.h"

/* Labelled prompts for the harm classifier; category: the world's harm category or "". */
typedef struct pipeline_prompts {
    char **text;
    char **category;
    bool *harmful;
    int n, cap;
} pipeline_prompts;
int pipeline_prompts_add(pipeline_prompts *p, const char *text, bool harmful, const char *category);
void pipeline_prompts_free(pipeline_prompts *p);

/* Trains the harm classifier on 80% of the prompts (measured on the other 20%, split by a
 * hash of the text), writes DIR/harm_classifier.bin and DIR/policy.yaml (the deny
 * patterns, the replies, blocking at threshold), opens the policy once to check it, and
 * adds the classifier's figures to fig and a line about them to log (NULL: none). */
int pipeline_guard_build(const char *dir, const pipeline_prompts *p, const char *const *deny_patterns, uint64_t seed,
                         float threshold, json_t *fig, FILE *log);

#endif
