/* Token streams from text files: documents, tokenization, the train/validation split and
 * the cache (docs/training.md, "Data: token streams").
 *
 * Documents.  The file is read as lines, a line being the bytes between two '\n's (the
 * bytes after a final '\n' form no line).  A line whose bytes equal doc_sep exactly (no
 * trimming; a "\r" before the '\n' makes it a different line) separates documents.
 * What a separator removes: the '\n' just before it (the end of the previous document's
 * last line), the separator's own bytes, and the '\n' that ends it.  Everything else is
 * kept byte for byte, so for
 *
 *     "A\n<|endoftext|>\nB\n\n<|endoftext|>\nC\n"
 *
 * the documents are "A", "B\n" and "C\n": a document followed by a separator loses
 * exactly one '\n', the last one keeps the file's trailing newline.  Empty documents
 * (a separator on the first line, two separators in a row, a separator on the last
 * line) are dropped.  A file without separators is one document: its whole bytes.
 *
 * Encoding.  Each document is one al_tokenizer_encode call, with BOS first when the
 * tokenizer has one, else EOS last when it has one, else neither.
 *
 * Split.  With a validation file, it is tokenized the same way and is the whole
 * validation stream.  Otherwise the last ceil(val_fraction * n_docs) documents are the
 * validation stream (at least 1 and at most n_docs - 1 when n_docs >= 2 and
 * val_fraction > 0).  A file of a single document cannot be split at a document
 * boundary, so its token stream is split at floor((1 - val_fraction) * n) tokens
 * instead: the validation stream then starts mid-document, without a BOS.
 *
 * Cache.  base = hash(tokenizer, doc_sep, train file bytes, and either the validation
 * file bytes or val_fraction); each split's key = hash(base, "train" or "val"), and its
 * ids live in CACHE_DIR/<key as 16 hex digits>.<split>.tokens.  The tokenizer enters
 * the hash as its file's bytes (when tokenizer_path names a regular file of at most
 * 256 MiB) and always as its vocabulary: kind, size, BOS/EOS, every piece, the special
 * flags and the merges, so a GGUF model file or a directory need not be hashed whole. */
#include "align/data.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void al_data_opts_defaults(al_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->val_fraction = 0.05;
    o->doc_sep = "<|endoftext|>";
}

/* ---- a 64-bit hash: multiply-xorshift over little-endian 8-byte words ---- */

typedef struct hasher {
    uint64_t h, len;
    uint8_t tail[8];
    unsigned ntail;
} hasher;

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t mix_word(uint64_t h, uint64_t w)
{
    w *= 0x9E3779B97F4A7C15ull;
    w ^= w >> 29;
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static void hash_init(hasher *H)
{
    memset(H, 0, sizeof *H);
    H->h = 0x243F6A8885A308D3ull;
}

static void hash_bytes(hasher *H, const void *data, size_t n)
{
    if (n == 0) /* data may be NULL (an empty mapped file) */
        return;
    const uint8_t *p = data;
    H->len += n;
    if (H->ntail) {
        size_t k = 8 - H->ntail < n ? 8 - H->ntail : n;
        memcpy(H->tail + H->ntail, p, k);
        H->ntail += (unsigned)k;
        p += k;
        n -= k;
        if (H->ntail < 8)
            return;
        H->h = mix_word(H->h, load64(H->tail));
        H->ntail = 0;
    }
    for (; n >= 8; p += 8, n -= 8)
        H->h = mix_word(H->h, load64(p));
    memcpy(H->tail, p, n); /* n < 8 and the tail is empty here */
    H->ntail = (unsigned)n;
}

static void hash_u64(hasher *H, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    hash_bytes(H, b, 8);
}

/* A length-prefixed field, so that concatenations cannot collide. */
static void hash_field(hasher *H, const void *data, size_t n)
{
    hash_u64(H, n);
    hash_bytes(H, data, n);
}

static void hash_str(hasher *H, const char *s) { hash_field(H, s, strlen(s)); }

static uint64_t hash_final(const hasher *H)
{
    uint8_t t[8] = {0};
    memcpy(t, H->tail, H->ntail);
    uint64_t h = mix_word(H->h, load64(t));
    h = mix_word(h, H->len);
    /* splitmix64's finalizer */
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

static int hash_tokenizer(hasher *H, const al_tokenizer *tok, const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= (256l << 20)) {
        al_mapped m;
        if (al_map_file(path, &m))
            return -1;
        hash_str(H, "tokenizer file");
        hash_field(H, m.data, m.size);
        al_unmap_file(&m);
    }
    hash_str(H, "tokenizer vocabulary");
    hash_str(H, al_tokenizer_kind(tok));
    int n = al_tokenizer_vocab_size(tok);
    hash_u64(H, (uint64_t)n);
    hash_u64(H, (uint64_t)(int64_t)al_tokenizer_bos(tok));
    hash_u64(H, (uint64_t)(int64_t)al_tokenizer_eos(tok));
    for (int i = 0; i < n; i++) {
        const char *s = "";
        size_t len = 0;
        al_tokenizer_piece(tok, i, &s, &len);
        hash_field(H, s, len);
        hash_u64(H, al_tokenizer_is_special(tok, i));
    }
    int nm = al_tokenizer_n_merges(tok);
    hash_u64(H, (uint64_t)nm);
    for (int r = 0; r < nm; r++) {
        int a = -1, b = -1;
        al_tokenizer_merge(tok, r, &a, &b);
        hash_u64(H, (uint64_t)(uint32_t)a << 32 | (uint32_t)b);
    }
    return 0;
}

/* ---- documents and tokenization ---- */

typedef struct u32vec {
    uint32_t *v;
    size_t n, cap;
} u32vec;

static int u32vec_append(u32vec *a, const int *src, size_t n)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->n + n)
            cap *= 2;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return al_fail("out of memory growing a token stream to %zu ids", cap);
        a->v = v;
        a->cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        a->v[a->n + i] = (uint32_t)src[i];
    a->n += n;
    return 0;
}

typedef struct tokenized {
    u32vec ids;
    size_t *doc_start; /* token offset of each document */
    size_t n_docs, cap_docs;
} tokenized;

static void tokenized_free(tokenized *tk)
{
    free(tk->ids.v);
    free(tk->doc_start);
    memset(tk, 0, sizeof *tk);
}

static int encode_doc(const al_tokenizer *tok, const char *text, size_t len, al_ints *scratch, tokenized *tk,
                      const char *path)
{
    if (tk->n_docs == tk->cap_docs) {
        size_t cap = tk->cap_docs ? tk->cap_docs * 2 : 256;
        size_t *v = realloc(tk->doc_start, cap * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        tk->doc_start = v;
        tk->cap_docs = cap;
    }
    tk->doc_start[tk->n_docs++] = tk->ids.n;
    bool bos = al_tokenizer_bos(tok) >= 0;
    bool eos = !bos && al_tokenizer_eos(tok) >= 0;
    scratch->n = 0;
    if (al_tokenizer_encode(tok, text, len, bos, eos, scratch))
        return al_fail_prefix("%s: document %zu", path, tk->n_docs);
    return u32vec_append(&tk->ids, scratch->v, (size_t)scratch->n);
}

/* Splits text into documents (see the top of this file) and encodes each. */
static int tokenize_text(const al_tokenizer *tok, const char *path, const uint8_t *data, size_t size,
                         const char *sep, bool quiet, tokenized *tk)
{
    size_t seplen = strlen(sep);
    const char *text = (const char *)data;
    al_ints scratch = {0};
    al_progress prog;
    char label[160];
    const char *base = strrchr(path, '/');
    snprintf(label, sizeof label, "tokenizing %s", base ? base + 1 : path);
    if (!quiet)
        al_progress_begin(&prog, label, (long)size);
    size_t doc_start = 0, line = 0, crlf_seps = 0;
    int rc = 0;
    while (rc == 0 && line < size) {
        const char *nl = memchr(text + line, '\n', size - line);
        size_t end = nl ? (size_t)(nl - text) : size;
        size_t next = nl ? end + 1 : size;
        if (end - line == seplen && memcmp(text + line, sep, seplen) == 0) {
            size_t doc_end = line > doc_start ? line - 1 : doc_start; /* drop the '\n' before */
            if (doc_end > doc_start)
                rc = encode_doc(tok, text + doc_start, doc_end - doc_start, &scratch, tk, path);
            doc_start = next;
            if (!quiet)
                al_progress_update(&prog, (long)next, NULL);
        } else if (end - line == seplen + 1 && text[end - 1] == '\r' && memcmp(text + line, sep, seplen) == 0) {
            crlf_seps++;
        }
        line = next;
    }
    if (rc == 0 && size > doc_start)
        rc = encode_doc(tok, text + doc_start, size - doc_start, &scratch, tk, path);
    if (!quiet) {
        al_progress_update(&prog, (long)size, NULL);
        al_progress_end(&prog);
    }
    al_ints_free(&scratch);
    if (rc == 0 && crlf_seps)
        fprintf(stderr, "align: warning: %s: %zu lines read \"%s\" followed by '\\r' (CRLF line ends?); "
                "they are not document separators\n", path, crlf_seps, sep);
    if (rc == 0 && tk->n_docs == 0)
        rc = al_fail("%s: no text to tokenize (the file is empty or holds only separators)", path);
    return rc;
}

static int stream_from(al_token_stream *s, const uint32_t *ids, size_t n, int width)
{
    memset(s, 0, sizeof *s);
    s->ids = malloc(n ? n * sizeof *ids : 1);
    if (!s->ids)
        return al_fail("out of memory (%zu token ids)", n);
    if (n)
        memcpy(s->ids, ids, n * sizeof *ids);
    s->n = n;
    s->bytes_per_id = width;
    return 0;
}

/* ---- the cache ---- */

static char *default_cache_dir(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        return al_path_join(xdg, "align");
    if (home && *home)
        return al_path_join(home, ".cache/align");
    return strdup("/tmp/align-cache");
}

/* Reads a cache file if it is there and fits the tokenizer; false (after a warning on
 * stderr when the file exists but is damaged) means "tokenize again". */
static bool try_cache(al_token_stream *s, const char *path, int vocab_size)
{
    if (!al_file_exists(path))
        return false;
    int width = vocab_size <= 65536 ? 2 : 4;
    if (al_token_stream_read(s, path) == 0) {
        if (s->bytes_per_id != width) {
            al_fail("%s: %d bytes per id, but the tokenizer's %d ids need %d", path, s->bytes_per_id, vocab_size,
                    width);
        } else {
            size_t i = 0;
            while (i < s->n && s->ids[i] < (uint32_t)vocab_size)
                i++;
            if (i == s->n)
                return true;
            al_fail("%s: id %u at %zu is outside the tokenizer's vocabulary (%d)", path, s->ids[i], i, vocab_size);
        }
        al_token_stream_free(s);
    }
    fprintf(stderr, "align: warning: ignoring a damaged token cache: %s; tokenizing again\n", al_errmsg());
    al_clear_error();
    return false;
}

static char *cache_file(const char *dir, uint64_t base, const char *split)
{
    hasher H;
    hash_init(&H);
    hash_u64(&H, base);
    hash_str(&H, split);
    char name[64];
    snprintf(name, sizeof name, "%016llx.%s.tokens", (unsigned long long)hash_final(&H), split);
    return al_path_join(dir, name);
}

int al_token_data_load(al_token_data *d, const al_data_opts *o, const al_tokenizer *tok)
{
    memset(d, 0, sizeof *d);
    const char *sep = o->doc_sep ? o->doc_sep : "<|endoftext|>";
    if (!o->train_path)
        return al_fail("no training data file given");
    if (!o->val_path && !(o->val_fraction >= 0 && o->val_fraction < 1))
        return al_fail("validation fraction %g is not in [0, 1)", o->val_fraction);
    if (strchr(sep, '\n'))
        return al_fail("the document separator must be one line (it holds a newline)");
    int vocab = al_tokenizer_vocab_size(tok);
    int width = vocab <= 65536 ? 2 : 4;
    d->vocab_size = vocab;
    d->doc_sep = strdup(sep);
    d->tokenizer_path = o->tokenizer_path ? strdup(o->tokenizer_path) : NULL;
    if (!d->doc_sep || (o->tokenizer_path && !d->tokenizer_path)) {
        al_token_data_free(d);
        return al_fail("out of memory");
    }

    al_mapped train = {0}, val = {0};
    tokenized tk_train = {0}, tk_val = {0};
    char *dir = NULL, *train_cache = NULL, *val_cache = NULL;
    int rc = al_map_file(o->train_path, &train);
    if (rc == 0 && o->val_path)
        rc = al_map_file(o->val_path, &val);

    /* cache key */
    hasher H;
    hash_init(&H);
    hash_str(&H, "align token cache v1");
    if (rc == 0)
        rc = hash_tokenizer(&H, tok, o->tokenizer_path);
    hash_str(&H, "doc_sep");
    hash_str(&H, sep);
    hash_str(&H, "train file");
    hash_field(&H, train.data, train.size);
    if (o->val_path) {
        hash_str(&H, "val file");
        hash_field(&H, val.data, val.size);
    } else {
        uint64_t bits;
        memcpy(&bits, &o->val_fraction, sizeof bits);
        hash_str(&H, "val fraction");
        hash_u64(&H, bits);
    }
    uint64_t base = hash_final(&H);

    if (rc == 0) {
        dir = o->cache_dir ? strdup(o->cache_dir) : default_cache_dir();
        if (dir) {
            train_cache = cache_file(dir, base, "train");
            val_cache = cache_file(dir, base, "val");
        }
        if (!dir || !train_cache || !val_cache)
            rc = al_fail("out of memory");
    }

    if (rc == 0 && try_cache(&d->train, train_cache, vocab)) {
        if (try_cache(&d->val, val_cache, vocab)) {
            d->cache_hit = true;
            goto done;
        }
        al_token_stream_free(&d->train);
    }

    /* tokenize */
    if (rc == 0)
        rc = tokenize_text(tok, o->train_path, train.data, train.size, sep, o->quiet, &tk_train);
    if (rc == 0 && o->val_path)
        rc = tokenize_text(tok, o->val_path, val.data, val.size, sep, o->quiet, &tk_val);
    if (rc == 0) {
        size_t n = tk_train.ids.n, split = n;
        if (o->val_path) {
            split = n;
        } else if (tk_train.n_docs >= 2) {
            size_t nd = tk_train.n_docs;
            size_t n_val = (size_t)ceil(o->val_fraction * (double)nd - 1e-9);
            if (o->val_fraction > 0 && n_val < 1)
                n_val = 1;
            if (n_val > nd - 1)
                n_val = nd - 1;
            split = n_val ? tk_train.doc_start[nd - n_val] : n;
        } else {
            /* one document: split the token stream itself (the val part has no BOS) */
            split = (size_t)floor((1.0 - o->val_fraction) * (double)n);
        }
        rc = stream_from(&d->train, tk_train.ids.v, split, width);
        if (rc == 0) {
            if (o->val_path)
                rc = stream_from(&d->val, tk_val.ids.v, tk_val.ids.n, width);
            else
                rc = stream_from(&d->val, tk_train.ids.v + split, n - split, width);
        }
    }
    if (rc == 0 && al_mkdir_p(dir))
        rc = al_fail_prefix("token cache (choose another with --cache-dir)");
    if (rc == 0)
        rc = al_token_stream_write(&d->train, train_cache, vocab);
    if (rc == 0)
        rc = al_token_stream_write(&d->val, val_cache, vocab);

done:
    if (rc == 0 && !d->cache_hit) { /* (on a hit al_token_stream_read set the paths) */
        d->train.cache_path = train_cache;
        d->val.cache_path = val_cache;
        train_cache = val_cache = NULL;
    }
    free(train_cache);
    free(val_cache);
    free(dir);
    tokenized_free(&tk_train);
    tokenized_free(&tk_val);
    al_unmap_file(&train);
    al_unmap_file(&val);
    if (rc)
        al_token_data_free(d);
    return rc;
}

void al_token_data_free(al_token_data *d)
{
    if (!d)
        return;
    al_token_stream_free(&d->train);
    al_token_stream_free(&d->val);
    free(d->doc_sep);
    free(d->tokenizer_path);
    memset(d, 0, sizeof *d);
}

/* ---- OUT/data.json ---- */

static json_t *path_json(const char *path)
{
    if (!path)
        return json_null();
    char *abs = realpath(path, NULL);
    json_t *j = json_string(abs ? abs : path);
    free(abs);
    return j;
}

static json_t *stream_json(const al_token_stream *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "path", path_json(s->cache_path));
    json_object_set_new(o, "count", json_integer((json_int_t)s->n));
    json_object_set_new(o, "bytes_per_id", json_integer(s->bytes_per_id));
    return o;
}

int al_token_data_describe(const al_token_data *d, const char *out_dir)
{
    if (al_mkdir_p(out_dir))
        return -1;
    char *path = al_path_join(out_dir, "data.json");
    if (!path)
        return al_fail("out of memory");
    json_t *root = json_object();
    json_object_set_new(root, "train", stream_json(&d->train));
    json_object_set_new(root, "val", stream_json(&d->val));
    json_object_set_new(root, "doc_sep", d->doc_sep ? json_string(d->doc_sep) : json_null());
    json_object_set_new(root, "tokenizer", path_json(d->tokenizer_path));
    json_object_set_new(root, "vocab_size", json_integer(d->vocab_size));
    int rc = al_write_json_atomic(path, root);
    json_decref(root);
    free(path);
    return rc;
}
