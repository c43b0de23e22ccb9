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

/* ---- inspection ---- */

/* "llama2c", "gguf-llama" (SentencePiece-style); "gpt2", "hf-bpe", "gguf-gpt2", "trained"
 * (byte-level BPE). */
const char *al_tokenizer_kind(const al_tokenizer *t);
/* The piece of id as stored, raw bytes: SentencePiece pieces keep their leading space
 * (U+2581 is stored as ' '), byte-fallback pieces read "<0xXX>", byte-level pieces are
 * the bytes they decode to, special tokens their text.  -1 if id is out of range. */
int al_tokenizer_piece(const al_tokenizer *t, int id, const char **s, size_t *len);
int al_tokenizer_find(const al_tokenizer *t, const char *piece, size_t len); /* id or -1 */
/* Control and added tokens (BOS, EOS, <|endoftext|>, ...). */
bool al_tokenizer_is_special(const al_tokenizer *t, int id);
int al_tokenizer_n_specials(const al_tokenizer *t);
int al_tokenizer_special(const al_tokenizer *t, int i); /* i-th split-out special id */
/* Byte-level BPE merges in rank order (0 merges for SentencePiece kinds). */
int al_tokenizer_n_merges(const al_tokenizer *t);
int al_tokenizer_merge(const al_tokenizer *t, int rank, int *left, int *right);

/* ---- other sources and options ---- */

/* The vocabulary stored in an open GGUF file (tokenizer.ggml.model "llama" or "gpt2"). */
int al_tokenizer_load_gguf(al_tokenizer **out, const al_gguf *g);
/* The inverse: t as tokenizer.ggml.* keys ("llama" for SentencePiece kinds: tokens,
 * scores, token types, special ids, add_space_prefix; "gpt2" for byte-level BPE: tokens,
 * merges, token types, the pre-tokenizer's name, special ids), so that
 * al_tokenizer_load_gguf reads back the same vocabulary.  Fails for what GGUF cannot say
 * (a byte-level pre-tokenizer regex without a llama.cpp name, add_prefix_space). */
int al_tokenizer_write_gguf_keys(const al_tokenizer *t, al_gguf_writer *w);
/* SentencePiece kinds only.  true (the default for "gguf-llama"): the sentencepiece
 * library's behaviour, where only normal and user pieces take part in merges; false
 * (the default for "llama2c"): llama2.c run.c's encode(), which looks every piece up. */
int al_tokenizer_set_sentencepiece(al_tokenizer *t, bool on);

/* ---- byte-level BPE training and saving ---- */

typedef struct al_bpe_train_opts {
    int vocab_size;              /* specials + 256 bytes + merges */
    const char *const *specials; /* split out before pre-tokenization, never merged */
    int n_specials;
    /* Optional progress callback: stage "count" (done/total bytes) then "merge"
     * (done/total merges). */
    void (*progress)(void *ctx, const char *stage, long done, long total);
    void *progress_ctx;
} al_bpe_train_opts;

/* Trains a GPT-2-style byte-level BPE on texts[i][0..lens[i]): GPT-2 pre-tokenizer regex,
 * no merges across pre-tokens, the most frequent pair first, ties broken by the
 * lexicographically greater (left bytes, right bytes).  Ids: specials, then the 256
 * bytes, then one per merge. */
int al_bpe_train(al_tokenizer **out, const char *const *texts, const size_t *lens, int n_texts,
                 const al_bpe_train_opts *opts);
/* Writes a Hugging Face tokenizer.json (ByteLevel pre-tokenizer and decoder, BPE model,
 * added_tokens for the specials) atomically.  Byte-level kinds only. */
int al_tokenizer_save_json(const al_tokenizer *t, const char *path);

/* ---- added special tokens and continuation encoding (src/tokenizer/special.c) ---- */

/* Adds piece as a special token with the next id (the vocabulary grows by one), split out
 * of text by encode() as a single id for every kind; never produced by merges.  An
 * existing piece keeps its id (returned) and becomes split out.  id_out may be NULL. */
int al_tokenizer_add_special(al_tokenizer *t, const char *piece, int *id_out);
/* al_tokenizer_encode without BOS/EOS, where first == false means the text continues
 * earlier text: SentencePiece kinds then add no dummy-prefix space. */
int al_tokenizer_encode_cont(const al_tokenizer *t, const char *text, size_t len, bool first, al_ints *out);

/* Writes a SentencePiece-kind tokenizer in llama2.c's .bin format (pieces, scores). */
int al_tokenizer_save_llama2c(const al_tokenizer *t, const char *path);
/* Writes t into dir as tokenizer.bin (SentencePiece kinds) or tokenizer.json (byte-level);
 * written (may be NULL) receives the path. */
int al_tokenizer_save(const al_tokenizer *t, const char *dir, char *written, size_t written_len);

#endif
