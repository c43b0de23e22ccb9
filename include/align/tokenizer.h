/* align tokenizer: text <-> token ids.
 *
 * Kinds: llama2.c tokenizer .bin (SentencePiece-style BPE over scores, byte fallback),
 * GPT-2 byte-level BPE (encoder.json + vocab.bpe, or HF tokenizer.json), and the
 * vocabularies stored in GGUF files.  Depends on core only. */
#ifndef ALIGN_TOKENIZER_H
#define ALIGN_TOKENIZER_H

#include "align/core.h"

typedef struct al_tokenizer al_tokenizer;

/* Detects the kind from the path: a llama2.c .bin, a tokenizer.json, a .gguf, an
 * encoder.json (vocab.bpe beside it), or a directory holding one of those. */
int al_tokenizer_load(al_tokenizer **out, const char *path);
void al_tokenizer_free(al_tokenizer *t);

int al_tokenizer_vocab_size(const al_tokenizer *t);
int al_tokenizer_bos(const al_tokenizer *t); /* -1 if none */
int al_tokenizer_eos(const al_tokenizer *t); /* -1 if none */

/* Appends the ids of text[0..len) to out, with BOS first / EOS last when asked and the
 * tokenizer has them.  For the llama2.c kind this equals run.c's encode(). */
int al_tokenizer_encode(const al_tokenizer *t, const char *text, size_t len, bool bos, bool eos,
                        al_ints *out);

/* Appends the bytes that token id stands for, given the previous token (SentencePiece
 * drops the leading space of the first piece after BOS, as run.c's decode() does). */
int al_tokenizer_decode_token(const al_tokenizer *t, int prev, int id, al_buf *out);

/* Appends the text of a whole id sequence. */
int al_tokenizer_decode(const al_tokenizer *t, const int *ids, int n, al_buf *out);

#endif
