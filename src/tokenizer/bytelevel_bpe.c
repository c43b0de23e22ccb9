/* GPT-2 byte-level BPE: the pre-tokenizer regex, the byte <-> code point mapping, the
 * merge table, and encoding.
 *
 * Pieces are stored as the raw bytes they stand for (not GPT-2's printable mapping), so
 * decoding is a copy and merge lookups compare bytes.  A pre-token starts as one
 * symbol per byte and merges the lowest-ranked adjacent pair first; merge.c's heap does
 * this without rescans, and nothing is cached between pre-tokens. */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

const char *const al_gpt2_pattern =
    "'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- GPT-2's bytes_to_unicode ---- */

static bool printable_byte(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

int bbpe_byte_to_cp(int byte)
{
    if (printable_byte(byte))
        return byte;
    int n = 0; /* the others take 256, 257, ... in byte order */
    for (int b = 0; b < byte; b++)
        n += !printable_byte(b);
    return 256 + n;
}

static int cp_to_byte(uint32_t cp)
{
    /* Filled on first use; per thread, so no synchronisation is needed. */
    static _Thread_local bool ready;
    static _Thread_local int16_t table[512];
    if (!ready) {
        for (int i = 0; i < 512; i++)
            table[i] = -1;
        for (int b = 0; b < 256; b++)
            table[bbpe_byte_to_cp(b)] = (int16_t)b;
        ready = true;
    }
    return cp < 512 ? table[cp] : -1;
}

/* Next code point of UTF-8 s[0..n); 0 bytes consumed on malformed input. */
static size_t utf8_next(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t k = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    uint32_t c = s[0] & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return k;
}

int bbpe_unmap(const char *s, size_t n, al_buf *out)
{
    out->len = 0;
    if (al_buf_append(out, "", 0))
        return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next(s + i, n - i, &cp);
        int b = k ? cp_to_byte(cp) : -1;
        if (b < 0)
            return -1;
        char c = (char)b;
        if (al_buf_append(out, &c, 1))
            return -1;
        i += k;
    }
    return 0;
}

int bbpe_map(const char *s, size_t n, al_buf *out)
{
    out->len = 0;
    if (al_buf_append(out, "", 0))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int cp = bbpe_byte_to_cp((unsigned char)s[i]);
        char u[2];
        if (cp < 0x80) {
            u[0] = (char)cp;
            if (al_buf_append(out, u, 1))
                return -1;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            if (al_buf_append(out, u, 2))
                return -1;
        }
    }
    return 0;
}

/* ---- the merge table ---- */

int bbpe_add_merge(al_tokenizer *t, int left, int right, const char *origin)
{
    size_t la = t->len[left], lb = t->len[right];
    char stack[256], *joined = la + lb <= sizeof stack ? stack : malloc(la + lb);
    if (!joined)
        return al_fail("out of memory");
    memcpy(joined, t->arena + t->off[left], la);
    memcpy(joined + la, t->arena + t->off[right], lb);
    int merged = al_strmap_get(&t->pieces, joined, la + lb);
    if (joined != stack)
        free(joined);
    if (merged < 0)
        return al_fail("%s: merge %d: the concatenation of tokens %d and %d is not in the vocabulary", origin,
                       t->n_merges + 1, left, right);
    if (t->n_merges % 1024 == 0) {
        size_t cap = (size_t)t->n_merges + 1024;
        int *l = realloc(t->merge_left, cap * sizeof *l);
        if (l)
            t->merge_left = l;
        int *r = realloc(t->merge_right, cap * sizeof *r);
        if (r)
            t->merge_right = r;
        if (!l || !r)
            return al_fail("out of memory for %zu merges", cap);
    }
    if (!t->merges.cap && al_pairmap_init(&t->merges, 1024))
        return -1;
    int rank = t->n_merges++;
    t->merge_left[rank] = left;
    t->merge_right[rank] = right;
    return al_pairmap_put(&t->merges, al_pair_key(left, right), rank, merged);
}

int bbpe_compile_regex(al_tokenizer *t, const char *pattern, const char *origin)
{
    int err;
    PCRE2_SIZE at;
    /* MATCH_INVALID_UTF: text may hold any bytes; invalid sequences simply never match
     * and become their own pre-tokens (see for_each_pretoken). */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return al_fail("%s: pre-tokenizer regex: %s at offset %zu", origin, (const char *)msg, (size_t)at);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
    if (t->re)
        pcre2_code_free(t->re);
    free(t->re_pattern);
    t->re = re;
    t->re_pattern = strdup(pattern);
    if (!t->re_pattern)
        return al_fail("out of memory");
    return 0;
}

int bbpe_finish_load(al_tokenizer *t, const char *origin)
{
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = al_strmap_get(&t->pieces, &c, 1);
    }
    if (!t->merges.cap && al_pairmap_init(&t->merges, 16))
        return -1;
    return 0;
}

/* ---- encoding ---- */

static bool bpe_pair(const al_tokenizer *t, tok_work *w, int a, int b, double *prio, int *result)
{
    int rank;
    if (!al_pairmap_get(&t->merges, al_pair_key(a, b), &rank, result))
        return false;
    *prio = -(double)rank;
    return true;
}

static int encode_pretoken(const al_tokenizer *t, tok_work *w, const char *s, size_t n, al_ints *out)
{
    if (t->ignore_merges || n == 1) {
        int id = al_strmap_get(&t->pieces, s, n);
        if (id >= 0 && t->type[id] == TT_NORMAL)
            return al_ints_push(out, id);
    }
    if (tok_work_begin(w, (int)n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[(unsigned char)s[i]];
        if (id < 0)
            return al_fail("%s tokenizer: the vocabulary has no token for byte 0x%02X", t->kind,
                           (unsigned char)s[i]);
        tok_work_add(w, id);
    }
    return tok_merge(w, t, bpe_pair, out);
}

/* Length of the UTF-8 character at s (1 for a stray byte), to step past empty matches. */
static size_t char_len(const char *s, size_t n)
{
    uint32_t cp;
    size_t k = utf8_next(s, n, &cp);
    return k ? k : 1;
}

static int split_and_encode(const al_tokenizer *t, tok_work *w, const char *text, size_t len, al_ints *out)
{
    if (!t->re)
        return encode_pretoken(t, w, text, len, out);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md)
        return al_fail("out of memory for regex match data");
    size_t gap = 0, from = 0; /* bytes in [gap, match start) matched nothing: a pre-token of their own */
    int rc = 0;
    while (from < len && rc == 0) {
        int m = pcre2_match(t->re, (PCRE2_SPTR)text, len, from, 0, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = al_fail("%s tokenizer: pre-tokenizer regex failed at byte %zu: %s", t->kind, from,
                         (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) { /* an empty match carries no text; look again one character on */
            from = s + char_len(text + s, len - s);
            continue;
        }
        if (s > gap)
            rc = encode_pretoken(t, w, text + gap, s - gap, out);
        if (rc == 0)
            rc = encode_pretoken(t, w, text + s, e - s, out);
        gap = from = e;
    }
    if (rc == 0 && gap < len)
        rc = encode_pretoken(t, w, text + gap, len - gap, out);
    pcre2_match_data_free(md);
    return rc;
}

int bbpe_encode(const al_tokenizer *t, const char *text, size_t len, al_ints *out)
{
    if (len == 0)
        return 0;
    if (len > (size_t)INT32_MAX / 2)
        return al_fail("%s tokenizer: text of %zu bytes is too long", t->kind, len);
    char *copy = NULL;
    if (t->add_prefix_space && text[0] != ' ') {
        copy = malloc(len + 1);
        if (!copy)
            return al_fail("out of memory");
        copy[0] = ' ';
        memcpy(copy + 1, text, len);
        text = copy;
        len++;
    }
    tok_work w = {0};
    int rc = split_and_encode(t, &w, text, len, out);
    tok_work_free(&w);
    free(copy);
    return rc;
}
