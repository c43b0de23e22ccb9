/* Hashed n-gram features of the harm classifier, shared by training, scoring and the
 * model file (whose header records the parameters below). */
#ifndef ALIGN_GUARD_HARM_FEATURES_H
#define ALIGN_GUARD_HARM_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
 * harm_max_features(n)); norm is scratch of n + 2 bytes and holds the normalized text
 * after the call, *norm_len its length.  Returns the count. */
size_t harm_features(const char *text, size_t n, int log2_buckets, uint64_t seed, char *norm, uint32_t *idx,
                     size_t *norm_len);

/* The bucket of a feature's 64-bit hash: the top bits after a multiplicative finish
 * (FNV's high bits are weak). */
static inline uint32_t harm_bucket(uint64_t h, int log2_buckets)
{
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)(h >> (64 - log2_buckets));
}

/* Concept features (harm_lexicon.c): WordNet lemmas -> their senses and hypernyms, as a
 * table sorted by the lemma's FNV-1a hash; a word's concept ids are ids[start[i] ..
 * start[i + 1]).  Saved in the model file (version 2). */
typedef struct harm_lexicon {
    uint32_t n_words, n_ids;
    uint64_t *hash;
    uint32_t *start;
    uint32_t *ids;
} harm_lexicon;

int harm_lexicon_build_wordnet(harm_lexicon *lx, const char *wordnet_dir);
void harm_lexicon_free(harm_lexicon *lx);
/* Appends the bucket of every concept of the words of norm[0..len) (the normalized text
 * of harm_features) to idx (room for harm_concept_max(n) more); returns the count. */
size_t harm_concept_features(const harm_lexicon *lx, const char *norm, size_t len, int log2_buckets, uint64_t seed,
                             uint32_t *idx);
size_t harm_concept_max(size_t n);
uint64_t harm_lexicon_hash(const harm_lexicon *lx, uint64_t h);
int harm_lexicon_write(const harm_lexicon *lx, FILE *fp);
int harm_lexicon_read(harm_lexicon *lx, FILE *fp, size_t avail, const char *path);

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
