/* Shared inside the cai module. */
#ifndef ALIGN_CAI_INTERNAL_H
#define ALIGN_CAI_INTERNAL_H

#include <jansson.h>

#include "align/cai.h"

/* The next-token logits after each of n prompts ([n][vocab] into out), one decoder. */
int cai_prompt_logits(const al_model *m, const al_ints *ids, int n, float *out);
/* The single token that text adds when it follows prefix ("(" + "A"), or -1. */
int cai_next_token(const al_tokenizer *tok, const char *prefix, const char *text);

/* Generates for each of n id sequences (in batches; sequence i seeded so.seed + i) and
 * writes each answer's text (cut at the template's markers, made valid UTF-8) to texts[i].  A sequence
 * that reaches the context ends there: callers that want room check first. */
int cai_generate_texts(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, al_ints *ids, int n,
                       int max_new, al_sampler_opts so, int batch, char **texts);

/* An error when a sequence plus max_new tokens does not fit the model's context. */
int cai_check_context(const al_model *m, const al_ints *ids, int n, int max_new);
/* n messages rendered with the generation prompt, reply_start (may be NULL) appended as
 * the beginning of the model's reply, and encoded (BOS when the template wants it). */
int cai_encode(const al_tokenizer *tok, const al_chat_template *t, const al_message *m, int n,
               const char *reply_start, al_ints *ids);
/* the same for one user turn */
int cai_encode_user_turn(const al_tokenizer *tok, const al_chat_template *t, const char *user,
                         const char *reply_start, al_ints *ids);
/* TRL's conversational form of one turn: [{"role": role, "content": text}].  The pairs and
 * revisions the module writes are conversational: they were generated through a chat
 * template, and a trainer reads a plain string as raw text, without one. */
json_t *cai_turn(const char *role, const char *text);
/* n JSON lines, row(ctx, i) giving a new reference for line i, written atomically. */
int cai_write_jsonl(const char *path, int n, json_t *(*row)(void *ctx, int i), void *ctx);

#endif
