/* Hashed n-gram features of the harm classifier, shared by training, scoring and the
 * model file (whose header records the parameters below). */
#ifndef ALIGN_GUARD_HARM_FEATURES_H
#define ALIGN_GUARD_HARM_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "align/guard.h"

/* Heads: one per hazard, then the overall harmful head.  A bucket's weights for all heads
 * sit together, padded to 16 floats: one 64-byte cache line per feature. */
#define HARM_HEAD_HARMFUL AL_HAZ_COUNT
#define HARM_HEADS (AL_HAZ_COUNT + 1)
#define HARM_STRIDE 16

/* What the feature extractor implements; a model file asking for anything else is
 * refused rather than silently scored with different features. */
#define HARM_WORD_NGRAM_MAX 2
#define HARM_CHAR_NGRAM_MIN 3
#define HARM_CHAR_NGRAM_MAX 5

/* Upper bound on the features of a text of n bytes (one word unigram and bigram per
 * word, three character n-grams per byte of the padded text). */
size_t harm_max_features(size_t n);

/* Writes the bucket of every feature occurrence of text[0..n) to idx (room for
 * harm_max_features(n)); norm is scratch of n + 2 bytes.  Returns the count. */
size_t harm_features(const char *text, size_t n, int log2_buckets, uint64_t seed, char *norm, uint32_t *idx);

/* Our own harmful requests for hazards the shared data barely covers (harm_prompts.c). */
typedef struct harm_own_prompt {
    const char *text;
    al_hazard hazard;
} harm_own_prompt;
extern const harm_own_prompt harm_own_harmful[];
extern const int harm_n_own_harmful;

/* Everyday benign questions in the forms harmful requests take (harm_questions.c). */
extern const char *const harm_benign_questions[];
extern const int harm_n_benign_questions;

#endif
