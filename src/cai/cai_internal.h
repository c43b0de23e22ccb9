/* Shared inside the cai module. */
#ifndef ALIGN_CAI_INTERNAL_H
#define ALIGN_CAI_INTERNAL_H

#include "align/cai.h"

/* The next-token logits after each of n prompts ([n][vocab] into out), one decoder. */
int cai_prompt_logits(const al_model *m, const al_ints *ids, int n, float *out);
/* The single token that text adds when it follows prefix ("(" + "A"), or -1. */
int cai_next_token(const al_tokenizer *tok, const char *prefix, const char *text);

#endif
