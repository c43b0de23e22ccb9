/* The tokenizer object: loading by kind, the shared piece tables, special-token
 * splitting, and the encode/decode entry points that dispatch to the algorithms. */
#include "internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- construction ---- */

al_tokenizer *tok_new(tok_algo algo, const char *kind)
{
    al_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        al_fail("out of memory for a tokenizer");
        return NULL;
    }
    t->algo = algo;
    snprintf(t->kind, sizeof t->kind, "%s", kind);
    t->bos = t->eos = t->unk = -1;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    return t;
}

int tok_alloc(al_tokenizer *t, int n, size_t arena_bytes)
{
    t->n_vocab = n;
    t->arena = malloc(arena_bytes + (size_t)n + 1);
    t->off = calloc((size_t)n + 1, sizeof *t->off);
    t->len = calloc((size_t)n + 1, sizeof *t->len);
    t->type = calloc((size_t)n + 1, 1);
    t->byte_of = malloc(((size_t)n + 1) * sizeof *t->byte_of);
    if (!t->arena || !t->off || !t->len || !t->type || !t->byte_of)
        return al_fail("out of memory for a vocabulary of %d pieces", n);
    for (int i = 0; i < n; i++) {
        t->type[i] = TT_NORMAL;
        t->byte_of[i] = -1;
    }
    return 0;
}

void tok_set_piece(al_tokenizer *t, int id, const char *s, size_t len, size_t *arena_used)
{
    t->off[id] = *arena_used;
    t->len[id] = (uint32_t)len;
    if (len)
        memcpy(t->arena + *arena_used, s, len);
    t->arena[*arena_used + len] = 0;
    *arena_used += len + 1;
}

int tok_index_pieces(al_tokenizer *t, const char *origin)
{
    if (al_strmap_init(&t->pieces, (size_t)t->n_vocab))
        return -1;
    t->max_len = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (al_strmap_put(&t->pieces, t->arena + t->off[i], t->len[i], i, NULL))
            return al_fail_prefix("%s", origin);
        if (t->len[i] > t->max_len)
            t->max_len = t->len[i];
    }
    return 0;
}

static int cmp_special_len_desc(const void *a, const void *b, void *ctx)
{
    const al_tokenizer *t = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (t->len[x] != t->len[y])
        return t->len[x] > t->len[y] ? -1 : 1;
    return x - y;
}

int tok_set_specials(al_tokenizer *t, const int *ids, int n)
{
    free(t->specials);
    t->specials = malloc(((size_t)n + 1) * sizeof *t->specials);
    if (!t->specials)
        return al_fail("out of memory for %d special tokens", n);
    t->n_specials = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_vocab && t->len[ids[i]] > 0)
            t->specials[t->n_specials++] = ids[i];
    /* Longest first, so "<|endoftext|>" wins over a shorter special that prefixes it. */
    qsort_r(t->specials, (size_t)t->n_specials, sizeof *t->specials, cmp_special_len_desc, t);
    memset(t->special_first, 0, sizeof t->special_first);
    for (int i = 0; i < t->n_specials; i++)
        t->special_first[(unsigned char)t->arena[t->off[t->specials[i]]]] = true;
    return 0;
}

void tok_destroy(al_tokenizer *t)
{
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->type);
    free(t->byte_of);
    al_strmap_free(&t->pieces);
    al_pairmap_free(&t->merges);
    free(t->merge_left);
    free(t->merge_right);
    if (t->re)
        pcre2_code_free(t->re);
    free(t->re_pattern);
    free(t->specials);
    free(t);
}

void al_tokenizer_free(al_tokenizer *t)
{
    if (t)
        tok_destroy(t);
}

/* ---- detection ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool has_magic(const char *path, const char *magic, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char buf[8] = {0};
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n && memcmp(buf, magic, n) == 0;
}

/* "dir/encoder.json" -> "dir/<sibling>" */
static char *sibling(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(name);
    size_t d = (size_t)(slash - path);
    char *p = malloc(d + 2 + strlen(name));
    if (p) {
        memcpy(p, path, d + 1);
        strcpy(p + d + 1, name);
    }
    return p;
}

/* A JSON object of token -> id with no "model" key is a GPT-2 encoder.json/vocab.json. */
static int load_json_kind(al_tokenizer *t, const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    bool plain_vocab = !strcmp(base, "encoder.json") || !strcmp(base, "vocab.json");
    if (!plain_vocab) {
        json_error_t err;
        json_t *root = json_load_file(path, 0, &err);
        if (!root)
            return al_fail("%s:%d: invalid JSON: %s", path, err.line, err.text);
        plain_vocab = json_is_object(root) && !json_object_get(root, "model");
        json_decref(root);
    }
    if (!plain_vocab) {
        snprintf(t->kind, sizeof t->kind, "hf-bpe");
        return bbpe_load_hf_json(t, path);
    }
    const char *names[] = {"vocab.bpe", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char *merges = sibling(path, names[i]);
        if (!merges)
            return al_fail("out of memory");
        if (al_file_exists(merges)) {
            snprintf(t->kind, sizeof t->kind, "gpt2");
            int rc = bbpe_load_gpt2(t, path, merges);
            free(merges);
            return rc;
        }
        free(merges);
    }
    return al_fail("%s: a GPT-2 vocabulary needs vocab.bpe (or merges.txt) beside it", path);
}

static int load_file(al_tokenizer **out, const char *path)
{
    if (has_magic(path, "GGUF", 4)) {
        al_gguf g;
        if (al_gguf_open(&g, path))
            return -1;
        int rc = al_tokenizer_load_gguf(out, &g);
        al_gguf_close(&g);
        return rc;
    }
    bool json = ends_with(path, ".json");
    al_tokenizer *t = tok_new(json ? TOK_BYTE_BPE : TOK_SPM, json ? "hf-bpe" : "llama2c");
    if (!t)
        return -1;
    if (json ? load_json_kind(t, path) : al_spm_load_llama2c(t, path)) {
        tok_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

int al_tokenizer_load(al_tokenizer **out, const char *path)
{
    *out = NULL;
    if (!al_is_dir(path)) {
        if (!al_file_exists(path))
            return al_fail("%s: no such tokenizer file or directory", path);
        return load_file(out, path);
    }
    static const char *candidates[] = {"tokenizer.json", "encoder.json", "vocab.json", "tokenizer.bin",
                                       "tokenizer.gguf"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char *p = al_path_join(path, candidates[i]);
        if (!p)
            return al_fail("out of memory");
        if (al_file_exists(p)) {
            int rc = load_file(out, p);
            free(p);
            return rc;
        }
        free(p);
    }
    return al_fail("%s: no tokenizer found (looked for tokenizer.json, encoder.json + vocab.bpe, "
                   "vocab.json + merges.txt, tokenizer.bin, tokenizer.gguf)",
                   path);
}

/* ---- inspection ---- */

int al_tokenizer_vocab_size(const al_tokenizer *t) { return t->n_vocab; }
int al_tokenizer_bos(const al_tokenizer *t) { return t->bos; }
int al_tokenizer_eos(const al_tokenizer *t) { return t->eos; }
const char *al_tokenizer_kind(const al_tokenizer *t) { return t->kind; }
int al_tokenizer_n_specials(const al_tokenizer *t) { return t->n_specials; }
int al_tokenizer_special(const al_tokenizer *t, int i)
{
    return i >= 0 && i < t->n_specials ? t->specials[i] : -1;
}
int al_tokenizer_n_merges(const al_tokenizer *t) { return t->n_merges; }

int al_tokenizer_merge(const al_tokenizer *t, int rank, int *left, int *right)
{
    if (rank < 0 || rank >= t->n_merges)
        return al_fail("merge rank %d out of range [0, %d)", rank, t->n_merges);
    *left = t->merge_left[rank];
    *right = t->merge_right[rank];
    return 0;
}

int al_tokenizer_piece(const al_tokenizer *t, int id, const char **s, size_t *len)
{
    if (id < 0 || id >= t->n_vocab)
        return al_fail("token id %d out of range [0, %d)", id, t->n_vocab);
    *s = t->arena + t->off[id];
    *len = t->len[id];
    return 0;
}

int al_tokenizer_find(const al_tokenizer *t, const char *piece, size_t len)
{
    return al_strmap_get(&t->pieces, piece, len);
}

bool al_tokenizer_is_special(const al_tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab)
        return false;
    return t->type[id] == TT_CONTROL || t->type[id] == TT_USER || id == t->bos || id == t->eos;
}

int al_tokenizer_set_sentencepiece(al_tokenizer *t, bool on)
{
    if (t->algo != TOK_SPM)
        return al_fail("%s tokenizer: the SentencePiece option applies to SentencePiece kinds only", t->kind);
    t->sp_semantics = on;
    bool prefix = t->dummy_prefix;
    spm_finish_load(t); /* which pieces merge, and so where text may be cut, depends on the mode */
    t->dummy_prefix = prefix;
    return 0;
}

/* ---- encoding ---- */

/* The special whose text starts at s, longest first; -1 if none. */
static int special_at(const al_tokenizer *t, const char *s, size_t n)
{
    if (!t->special_first[(unsigned char)s[0]])
        return -1;
    for (int i = 0; i < t->n_specials; i++) {
        int id = t->specials[i];
        size_t k = t->len[id];
        if (k <= n && memcmp(s, t->arena + t->off[id], k) == 0)
            return id;
    }
    return -1;
}

static int encode_plain(const al_tokenizer *t, const char *text, size_t len, bool first, al_ints *out)
{
    if (t->algo == TOK_SPM)
        return spm_encode(t, text, len, first && t->dummy_prefix, out);
    return bbpe_encode(t, text, len, out);
}

/* Splits out special tokens, encoding the text between them.  Only a plain segment at
 * the very start of a SentencePiece text gets the dummy-prefix space, as in llama.cpp,
 * and only when the text is `first` (not a continuation of earlier text). */
int tok_encode_text(const al_tokenizer *t, const char *text, size_t len, bool first, al_ints *out)
{
    if (!t->n_specials)
        return encode_plain(t, text, len, first, out);
    size_t start = 0, i = 0;
    while (i < len) {
        int id = special_at(t, text + i, len - i);
        if (id < 0) {
            i++;
            continue;
        }
        if (i > start && encode_plain(t, text + start, i - start, first && start == 0, out))
            return -1;
        if (al_ints_push(out, id))
            return -1;
        i += t->len[id];
        start = i;
    }
    if (start < len)
        return encode_plain(t, text + start, len - start, first && start == 0, out);
    return 0;
}

int al_tokenizer_encode(const al_tokenizer *t, const char *text, size_t len, bool bos, bool eos,
                        al_ints *out)
{
    if (bos && t->bos >= 0 && al_ints_push(out, t->bos))
        return -1;
    if (tok_encode_text(t, text, len, true, out))
        return -1;
    if (eos && t->eos >= 0 && al_ints_push(out, t->eos))
        return -1;
    return 0;
}

/* ---- decoding ---- */

static int append_piece(const al_tokenizer *t, int id, bool strip_space, al_buf *out)
{
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    if (t->algo == TOK_SPM) {
        if (strip_space && n > 0 && s[0] == ' ') {
            s++;
            n--;
        }
        if (t->byte_of[id] >= 0) {
            char b = (char)t->byte_of[id];
            return al_buf_append(out, &b, 1);
        }
    }
    return al_buf_append(out, s, n);
}

int al_tokenizer_decode_token(const al_tokenizer *t, int prev, int id, al_buf *out)
{
    if (id < 0 || id >= t->n_vocab)
        return al_fail("token id %d out of range [0, %d)", id, t->n_vocab);
    return append_piece(t, id, t->bos >= 0 && prev == t->bos, out);
}

/* SentencePiece drops control tokens and the dummy-prefix space at the start of the text
 * and after BOS; byte-level BPE decodes every id to its bytes, specials to their text. */
int al_tokenizer_decode(const al_tokenizer *t, const int *ids, int n, al_buf *out)
{
    if (al_buf_append(out, "", 0))
        return -1;
    bool at_start = true;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            return al_fail("token id %d (at %d) out of range [0, %d)", id, i, t->n_vocab);
        if (t->algo == TOK_SPM) {
            if (t->type[id] == TT_CONTROL || id == t->bos || id == t->eos) {
                at_start = id == t->bos;
                continue;
            }
        }
        if (append_piece(t, id, at_start && t->dummy_prefix, out))
            return -1;
        at_start = false;
    }
    return 0;
}
