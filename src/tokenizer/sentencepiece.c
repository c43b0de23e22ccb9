/* SentencePiece-style BPE: the llama2.c tokenizer .bin and GGUF "llama" vocabularies.
 *
 * Encoding follows llama2.c run.c's encode(): a dummy-prefix space, one symbol per UTF-8
 * character (bytes of characters missing from the vocabulary fall back to <0xXX>
 * pieces), then repeatedly merge the adjacent pair whose concatenation is the piece
 * with the highest score, leftmost on ties.  run.c rescans the whole sequence per
 * merge (quadratic); merge.c's heap gives the same merges in O(n log n). */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

/* run.c starts its search at best_score = -1e10 and needs a strictly greater score. */
#define SPM_MIN_SCORE -1e10f

/* run.c decodes a piece with sscanf(piece, "<0x%02hhX>"): "<0x" then one or two hex
 * digits.  Returns the byte or -1. */
static int parse_byte_piece(const char *s, size_t n)
{
    if (n < 4 || memcmp(s, "<0x", 3) != 0)
        return -1;
    int v = 0, digits = 0;
    for (size_t i = 3; i < n && digits < 2; i++, digits++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            break;
        v = v * 16 + d;
    }
    return digits > 0 ? v : -1;
}

/* True if a space piece exists and no piece has a space after another byte (SentencePiece's
 * split_by_whitespace, the default): then no merge can join a non-space to a following
 * space, and the text can be cut before every space that follows a non-space. */
static bool spaces_only_lead(const al_tokenizer *t)
{
    int sp = al_strmap_get(&t->pieces, " ", 1);
    if (sp < 0 || (t->sp_semantics && t->type[sp] != TT_NORMAL && t->type[sp] != TT_USER))
        return false;
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s = t->arena + t->off[i];
        for (uint32_t k = 1; k < t->len[i]; k++)
            if (s[k] == ' ' && s[k - 1] != ' ')
                return false;
    }
    return true;
}

void spm_finish_load(al_tokenizer *t)
{
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s = t->arena + t->off[i];
        /* llama2.c's .bin carries no piece types, so every "<0x..>" piece decodes to its byte
         * there; GGUF marks byte pieces explicitly. */
        bool byte_piece = !t->sp_semantics || t->type[i] == TT_BYTE;
        t->byte_of[i] = (int16_t)(byte_piece ? parse_byte_piece(s, t->len[i]) : -1);
    }
    t->dummy_prefix = true;
    t->space_cuts = spaces_only_lead(t);
}

/* ---- llama2.c tokenizer.bin ---- */

static int read_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Counts the records so the vocabulary size needs no model header (run.c takes it from
 * the checkpoint; the file itself holds exactly that many records). */
static int count_records(const al_mapped *m, const char *path, int *n, size_t *bytes)
{
    size_t pos = 4;
    *n = 0;
    *bytes = 0;
    while (pos < m->size) {
        if (m->size - pos < 8)
            return al_fail("%s: truncated: piece %d needs a score and a length at offset %zu", path, *n, pos);
        int len = read_i32(m->data + pos + 4);
        if (len < 0 || (size_t)len > m->size - pos - 8)
            return al_fail("%s: piece %d at offset %zu: length %d runs past the end of the file (%zu bytes)",
                           path, *n, pos, len, m->size);
        pos += 8 + (size_t)len;
        *bytes += (size_t)len;
        if (++*n == INT32_MAX / 2)
            return al_fail("%s: too many pieces", path);
    }
    return 0;
}

static int fill_llama2c(al_tokenizer *t, const al_mapped *m, const char *path)
{
    size_t pos = 4, used = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        memcpy(&t->scores[i], m->data + pos, 4);
        int len = read_i32(m->data + pos + 4);
        tok_set_piece(t, i, (const char *)m->data + pos + 8, (size_t)len, &used);
        pos += 8 + (size_t)len;
    }
    /* Fixed by run.c: 0 <unk>, 1 BOS, 2 EOS, 3..258 the bytes. */
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->type[0] = TT_UNKNOWN;
    t->type[1] = t->type[2] = TT_CONTROL;
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = b + 3;
        t->type[b + 3] = TT_BYTE;
    }
    return tok_index_pieces(t, path);
}

int al_spm_load_llama2c(al_tokenizer *t, const char *path)
{
    al_mapped m;
    if (al_map_file(path, &m))
        return -1;
    int rc = -1, n;
    size_t bytes;
    if (m.size < 4)
        al_fail("%s: truncated: expected a 4-byte max_token_length header (file has %zu bytes)", path, m.size);
    else if (read_i32(m.data) <= 0)
        al_fail("%s: not a llama2.c tokenizer: max_token_length %d must be positive", path, read_i32(m.data));
    else if (count_records(&m, path, &n, &bytes) == 0) {
        if (n < 259)
            al_fail("%s: %d pieces; a llama2.c tokenizer needs at least 259 (<unk>, BOS, EOS, 256 bytes)", path, n);
        else if (tok_alloc(t, n, bytes) == 0 && (t->scores = malloc((size_t)n * sizeof *t->scores)) != NULL)
            rc = fill_llama2c(t, &m, path);
        else if (!t->scores)
            al_fail("%s: out of memory for %d scores", path, n);
    }
    al_unmap_file(&m);
    if (rc == 0)
        spm_finish_load(t);
    return rc;
}

/* ---- encoding ---- */

/* SentencePiece proper lets only normal and user pieces take part; run.c looks up all. */
static bool usable(const al_tokenizer *t, int id)
{
    return id >= 0 && (!t->sp_semantics || t->type[id] == TT_NORMAL || t->type[id] == TT_USER);
}

static bool spm_pair(const al_tokenizer *t, tok_work *w, int a, int b, double *prio, int *result)
{
    size_t la = t->len[a], lb = t->len[b];
    memcpy(w->scratch, t->arena + t->off[a], la);
    memcpy(w->scratch + la, t->arena + t->off[b], lb);
    int id = al_strmap_get(&t->pieces, w->scratch, la + lb);
    if (!usable(t, id) || !(t->scores[id] > SPM_MIN_SCORE))
        return false;
    *prio = t->scores[id];
    *result = id;
    return true;
}

static int add_bytes(tok_work *w, const al_tokenizer *t, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[s[i]] >= 0 ? t->byte_id[s[i]] : t->unk;
        if (id < 0)
            return al_fail("%s tokenizer: byte 0x%02X has no piece and there is no <unk>", t->kind, s[i]);
        tok_work_add(w, id);
    }
    return 0;
}

/* One symbol per UTF-8 character (at most 4 bytes, as run.c groups them). */
static int add_chars(tok_work *w, const al_tokenizer *t, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t k = 1;
        while (i + k < len && k < 4 && ((unsigned char)text[i + k] & 0xC0) == 0x80)
            k++;
        int id = al_strmap_get(&t->pieces, text + i, k);
        if (usable(t, id))
            tok_work_add(w, id);
        else if (add_bytes(w, t, (const unsigned char *)text + i, k))
            return -1;
        i += k;
    }
    return 0;
}

/* SentencePiece reads U+2581 in the input as a space (it is its whitespace marker);
 * pieces here store ' ', so the text is brought to the same form. */
static const char *normalize_marker(const char *text, size_t *len, char **copy)
{
    *copy = NULL;
    if (!memmem(text, *len, "\xE2\x96\x81", 3))
        return text;
    char *c = malloc(*len + 1);
    if (!c)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < *len;) {
        if (i + 3 <= *len && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
            c[o++] = ' ';
            i += 3;
        } else {
            c[o++] = text[i++];
        }
    }
    *copy = c;
    *len = o;
    return c;
}

/* Merges never cross a cut (see spm_finish_load), so each span between cuts is merged on
 * its own: small heaps that stay in cache, with the same result as one global pass. */
static int encode_span(const al_tokenizer *t, tok_work *w, const char *s, size_t n, bool prefix, al_ints *out)
{
    if (tok_work_begin(w, (int)n + 1))
        return -1;
    if (prefix) {
        int id = al_strmap_get(&t->pieces, " ", 1);
        if (usable(t, id))
            tok_work_add(w, id);
        else if (add_bytes(w, t, (const unsigned char *)" ", 1))
            return -1;
    }
    if (add_chars(w, t, s, n))
        return -1;
    return tok_merge(w, t, spm_pair, out);
}

static int encode_spans(const al_tokenizer *t, tok_work *w, const char *text, size_t len, bool prefix, al_ints *out)
{
    size_t start = 0;
    if (t->space_cuts)
        for (size_t i = 1; i < len; i++)
            if (text[i] == ' ' && text[i - 1] != ' ') {
                if (encode_span(t, w, text + start, i - start, prefix && start == 0, out))
                    return -1;
                start = i;
            }
    return encode_span(t, w, text + start, len - start, prefix && start == 0, out);
}

int spm_encode(const al_tokenizer *t, const char *text, size_t len, bool prefix, al_ints *out)
{
    if (len == 0)
        return 0; /* run.c adds the dummy prefix only to non-empty text */
    if (len > (size_t)INT32_MAX / 2 - 8)
        return al_fail("%s tokenizer: text of %zu bytes is too long", t->kind, len);
    char *copy = NULL;
    if (t->sp_semantics && !(text = normalize_marker(text, &len, &copy)))
        return al_fail("out of memory normalizing %zu bytes", len);
    tok_work w = {0};
    int rc = tok_work_scratch(&w, 2 * t->max_len + 1);
    if (rc == 0)
        rc = encode_spans(t, &w, text, len, prefix, out);
    tok_work_free(&w);
    free(copy);
    return rc;
}
