/* Private to src/tokenizer: the tokenizer object and the helpers its parts share. */
#ifndef ALIGN_TOKENIZER_INTERNAL_H
#define ALIGN_TOKENIZER_INTERNAL_H

#include "align/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- hash maps ---- */

/* Byte string -> int.  Keys are borrowed: they must outlive the map. */
typedef struct al_strmap {
    const char **keys;
    uint32_t *lens;
    int *vals;
    size_t cap, n; /* cap is a power of two, 0 when empty */
} al_strmap;
int al_strmap_init(al_strmap *m, size_t expected);
void al_strmap_free(al_strmap *m);
/* Inserts or, when the key exists, keeps the first value (*inserted says which). */
int al_strmap_put(al_strmap *m, const char *key, size_t len, int val, bool *inserted);
int al_strmap_get(const al_strmap *m, const char *key, size_t len); /* -1 if absent */

/* 64-bit key -> (int a, int b); used for merge pair -> (rank, result). */
typedef struct al_pairmap {
    uint64_t *keys; /* UINT64_MAX marks an empty slot */
    int *a, *b;
    size_t cap, n;
} al_pairmap;
int al_pairmap_init(al_pairmap *m, size_t expected);
void al_pairmap_free(al_pairmap *m);
int al_pairmap_put(al_pairmap *m, uint64_t key, int a, int b); /* keeps the first value */
bool al_pairmap_get(const al_pairmap *m, uint64_t key, int *a, int *b);
static inline uint64_t al_pair_key(int x, int y) { return ((uint64_t)(uint32_t)x << 32) | (uint32_t)y; }

/* ---- the tokenizer ---- */

typedef enum tok_algo {
    TOK_SPM,       /* score-driven BPE over characters with byte fallback (llama2.c, SentencePiece) */
    TOK_BYTE_BPE,  /* GPT-2 byte-level BPE over regex pre-tokens, merge ranks */
} tok_algo;

/* SentencePiece piece types, as stored in GGUF tokenizer.ggml.token_type. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct al_tokenizer {
    tok_algo algo;
    char kind[32]; /* "llama2c", "gpt2", "hf-bpe", "gguf-llama", "gguf-gpt2", "trained" */
    int n_vocab;
    char *arena;       /* every piece's raw bytes, NUL-separated */
    size_t *off;       /* piece i is arena + off[i], len[i] bytes */
    uint32_t *len;
    size_t max_len;    /* longest piece */
    float *scores;     /* SPM only */
    uint8_t *type;     /* TT_* per id */
    int16_t *byte_of;  /* SPM: raw byte a "<0xXX>" piece stands for, else -1 */
    al_strmap pieces;  /* piece bytes -> id (first id wins on duplicates, as a sorted search would) */
    int byte_id[256];  /* SPM: byte-fallback id; BYTE_BPE: id of the one-byte token */
    int bos, eos, unk;

    /* SPM */
    bool sp_semantics; /* SentencePiece proper: only normal/user pieces merge; else run.c exactly */
    bool dummy_prefix; /* prepend a space to non-empty text */
    bool space_cuts;   /* merges never cross the start of a run of spaces (spm_finish_load) */

    /* BYTE_BPE */
    al_pairmap merges;    /* (left, right) -> (rank, merged id) */
    int *merge_left, *merge_right, n_merges; /* in rank order */
    pcre2_code *re;       /* the pre-tokenizer */
    char *re_pattern;
    bool add_prefix_space;
    bool ignore_merges;   /* a pre-token that is itself in the vocabulary is emitted whole */

    /* special tokens split out of the text before anything else, longest first */
    int *specials, n_specials;
    bool special_first[256]; /* bytes some special starts with: a quick filter while scanning */
};

/* Allocation of the per-piece tables for n pieces; pieces are added with tok_set_piece. */
int tok_alloc(al_tokenizer *t, int n, size_t arena_bytes);
void tok_set_piece(al_tokenizer *t, int id, const char *s, size_t len, size_t *arena_used);
/* Builds the piece map; call after every piece is set. */
int tok_index_pieces(al_tokenizer *t, const char *origin);
void tok_destroy(al_tokenizer *t);
/* Registers the ids whose type is control/user (and any listed) as split-out specials. */
int tok_set_specials(al_tokenizer *t, const int *ids, int n);
/* A fresh zeroed tokenizer with no ids set. */
al_tokenizer *tok_new(tok_algo algo, const char *kind);

/* SentencePiece */
int al_spm_load_llama2c(al_tokenizer *t, const char *path);
/* prefix: prepend the dummy-prefix space (when the text is non-empty). */
int spm_encode(const al_tokenizer *t, const char *text, size_t len, bool prefix, al_ints *out);
void spm_finish_load(al_tokenizer *t); /* byte tables after pieces and types are known */

/* Byte-level BPE */
extern const char *const al_gpt2_pattern;
int bbpe_compile_regex(al_tokenizer *t, const char *pattern, const char *origin);
/* Pieces from GPT-2-mapped strings (s == NULL: a hole); raw[i] keeps token i's text as is. */
int bbpe_set_vocab(al_tokenizer *t, const al_gguf_str *tokens, const bool *raw, int n, const char *origin);
/* Merges given as mapped token strings: "left right", or the two parts. */
int bbpe_add_merge_line(al_tokenizer *t, const char *s, size_t n, const char *origin, al_buf *tmp);
int bbpe_add_merge_strs(al_tokenizer *t, al_gguf_str a, al_gguf_str b, const char *origin, al_buf *tmp);
int bbpe_load_gpt2(al_tokenizer *t, const char *encoder_json, const char *vocab_bpe);
int bbpe_load_hf_json(al_tokenizer *t, const char *path);
/* Adds merge (left, right) -> merged with the next rank; fails if merged is unknown. */
int bbpe_add_merge(al_tokenizer *t, int left, int right, const char *origin);
int bbpe_finish_load(al_tokenizer *t, const char *origin);
int bbpe_encode(const al_tokenizer *t, const char *text, size_t len, al_ints *out);
/* GPT-2's reversible byte <-> printable-code-point mapping. */
int bbpe_byte_to_cp(int byte);
/* Decodes a GPT-2-mapped UTF-8 string into raw bytes; -1 if it holds an unmapped code point. */
int bbpe_unmap(const char *s, size_t n, al_buf *out);
int bbpe_map(const char *s, size_t n, al_buf *out); /* raw bytes -> mapped UTF-8 */
/* The GPT-2-mapped text of piece id into out (replaced); control and user pieces, which
 * are text rather than bytes, as they are. */
int bbpe_mapped_piece(const al_tokenizer *t, int id, al_buf *out);

/* Encodes text with special tokens split out; `first`: the text starts a sequence (a
 * SentencePiece dummy-prefix space may be added), else it continues earlier text. */
int tok_encode_text(const al_tokenizer *t, const char *text, size_t len, bool first, al_ints *out);

#endif
