/* Byte-level BPE training (GPT-2 style, as in Stanford CS336's assignment 1).
 *
 * The corpus is pre-tokenized once into distinct words with their frequencies; merges
 * never cross words.  Pair counts are then kept up to date incrementally: each pair
 * remembers which words contain it, so a merge only revisits those words, and a lazy
 * max-heap (stale entries dropped on pop) yields the next best pair.  Ties on count go
 * to the lexicographically greater (left bytes, right bytes). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct word {
    int start, len; /* symbols[start .. start+len) */
    long long freq;
} word;

typedef struct pair {
    int a, b;
    long long count;
    int *where, n_where, cap_where; /* words that contained the pair when last counted */
    bool dirty;
} pair;

typedef struct heap_entry {
    long long count;
    int pair;
} heap_entry;

typedef struct trainer {
    /* vocabulary being built: token i's bytes */
    char **tok;
    int *tok_len, n_tok, cap_tok;
    al_strmap tok_index;
    /* words */
    al_strmap word_index;
    word *words;
    int n_words, cap_words;
    int *symbols;
    size_t n_symbols, cap_symbols;
    /* pairs */
    al_pairmap pair_index; /* key -> (pair index, unused) */
    pair *pairs;
    int n_pairs, cap_pairs;
    int *dirty;
    int n_dirty, cap_dirty;
    heap_entry *heap;
    int n_heap, cap_heap;
    /* result */
    int *merge_a, *merge_b, n_merges;
} trainer;

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return al_fail("bpe train: out of memory growing a table to %d entries", c);
    *p = q;
    *cap = c;
    return 0;
}

/* ---- vocabulary ---- */

/* Adds a token with the given bytes, or returns the existing one: two different merges
 * can spell the same bytes, and a vocabulary maps each spelling to one id. */
static int add_token(trainer *tr, const char *s, size_t n, int *id)
{
    int old = al_strmap_get(&tr->tok_index, s, n);
    if (old >= 0) {
        *id = old;
        return 0;
    }
    if (tr->n_tok == tr->cap_tok) {
        int cap = tr->cap_tok ? tr->cap_tok * 2 : 512;
        char **tok = realloc(tr->tok, (size_t)cap * sizeof *tok);
        if (tok)
            tr->tok = tok;
        int *len = realloc(tr->tok_len, (size_t)cap * sizeof *len);
        if (len)
            tr->tok_len = len;
        if (!tok || !len)
            return al_fail("bpe train: out of memory for %d tokens", cap);
        tr->cap_tok = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return al_fail("bpe train: out of memory");
    memcpy(copy, s, n);
    copy[n] = 0;
    *id = tr->n_tok;
    tr->tok[tr->n_tok] = copy;
    tr->tok_len[tr->n_tok++] = (int)n;
    return al_strmap_put(&tr->tok_index, copy, n, *id, NULL);
}

/* Python's comparison of (bytes(a), bytes(b)) tuples. */
static int cmp_bytes(const trainer *tr, int x, int y)
{
    int lx = tr->tok_len[x], ly = tr->tok_len[y];
    int c = memcmp(tr->tok[x], tr->tok[y], (size_t)(lx < ly ? lx : ly));
    return c ? c : (lx > ly) - (lx < ly);
}

static bool heap_better(const trainer *tr, const heap_entry *x, const heap_entry *y)
{
    if (x->count != y->count)
        return x->count > y->count;
    const pair *p = &tr->pairs[x->pair], *q = &tr->pairs[y->pair];
    int c = cmp_bytes(tr, p->a, q->a);
    if (c == 0)
        c = cmp_bytes(tr, p->b, q->b);
    return c > 0;
}

static int heap_push(trainer *tr, int pair_index)
{
    if (grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap))
        return -1;
    heap_entry e = {tr->pairs[pair_index].count, pair_index};
    int i = tr->n_heap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_better(tr, &e, &tr->heap[p]))
            break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = e;
    return 0;
}

static heap_entry heap_pop(trainer *tr)
{
    heap_entry top = tr->heap[0], x = tr->heap[--tr->n_heap];
    int n = tr->n_heap, i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_better(tr, &tr->heap[c + 1], &tr->heap[c]))
            c++;
        if (!heap_better(tr, &tr->heap[c], &x))
            break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n > 0)
        tr->heap[i] = x;
    return top;
}

/* ---- pre-tokenized words ---- */

static int add_word(trainer *tr, const char *s, size_t n, int byte_base)
{
    int w = al_strmap_get(&tr->word_index, s, n);
    if (w >= 0) {
        tr->words[w].freq++;
        return 0;
    }
    if (grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words))
        return -1;
    if (tr->n_symbols + n > (size_t)INT32_MAX)
        return al_fail("bpe train: too many distinct pre-tokens");
    int cap = (int)tr->cap_symbols;
    if (grow((void **)&tr->symbols, &cap, (int)(tr->n_symbols + n), sizeof *tr->symbols))
        return -1;
    tr->cap_symbols = (size_t)cap;
    w = tr->n_words++;
    tr->words[w] = (word){(int)tr->n_symbols, (int)n, 1};
    for (size_t i = 0; i < n; i++)
        tr->symbols[tr->n_symbols++] = byte_base + (unsigned char)s[i];
    /* keys borrow the caller's text, which outlives training */
    return al_strmap_put(&tr->word_index, s, n, w, NULL);
}

/* Earliest special token in s[0..n) (longest at that position); false if none.  hit[i]
 * caches where special i next occurs (NULL: nowhere further), so each special's
 * occurrences are searched for once in total rather than once per chunk. */
static bool next_special(const char *const *specials, int n_specials, const char **hit, const char *s, size_t n,
                         size_t *at, size_t *len)
{
    bool found = false;
    for (int i = 0; i < n_specials; i++) {
        size_t k = strlen(specials[i]);
        if (hit[i] && hit[i] < s)
            hit[i] = memmem(s, n, specials[i], k);
        const char *p = hit[i];
        if (p && (!found || (size_t)(p - s) < *at || ((size_t)(p - s) == *at && k > *len))) {
            *at = (size_t)(p - s);
            *len = k;
            found = true;
        }
    }
    return found;
}

typedef struct count_ctx {
    trainer *tr;
    pcre2_code *re;
    pcre2_match_data *md;
    int byte_base;
    const al_bpe_train_opts *o;
    long done, total; /* bytes, for the progress callback */
} count_ctx;

static void report(count_ctx *c, long done)
{
    if (c->o->progress)
        c->o->progress(c->o->progress_ctx, "count", done, c->total);
}

/* Pre-tokens of one span between special tokens; bytes no rule matches (invalid UTF-8)
 * form pre-tokens of their own so nothing is dropped. */
static int count_chunk(count_ctx *c, const char *s, size_t n)
{
    size_t gap = 0, from = 0;
    long matches = 0;
    while (from < n) {
        int m = pcre2_match(c->re, (PCRE2_SPTR)s, n, from, 0, c->md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0)
            return al_fail("bpe train: pre-tokenizer regex failed (error %d)", m);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        if (ov[1] == ov[0]) {
            from = ov[0] + 1;
            continue;
        }
        if (ov[0] > gap && add_word(c->tr, s + gap, ov[0] - gap, c->byte_base))
            return -1;
        if (add_word(c->tr, s + ov[0], ov[1] - ov[0], c->byte_base))
            return -1;
        gap = from = ov[1];
        if (++matches % 65536 == 0)
            report(c, c->done + (long)from);
    }
    if (gap < n && add_word(c->tr, s + gap, n - gap, c->byte_base))
        return -1;
    c->done += (long)n;
    return 0;
}

static int count_words(trainer *tr, const char *const *texts, const size_t *lens, int n_texts,
                       const al_bpe_train_opts *o, int byte_base, pcre2_code *re)
{
    count_ctx c = {tr, re, pcre2_match_data_create_from_pattern(re, NULL), byte_base, o, 0, 0};
    if (!c.md)
        return al_fail("bpe train: out of memory");
    for (int i = 0; i < n_texts; i++)
        c.total += (long)lens[i];
    const char **hit = calloc((size_t)o->n_specials + 1, sizeof *hit);
    int rc = hit ? 0 : al_fail("bpe train: out of memory");
    for (int i = 0; i < n_texts && rc == 0; i++) {
        const char *s = texts[i];
        size_t n = lens[i], at = 0, len = 0;
        for (int k = 0; k < o->n_specials; k++)
            hit[k] = memmem(s, n, o->specials[k], strlen(o->specials[k]));
        while (rc == 0 && n > 0) {
            bool special = next_special(o->specials, o->n_specials, hit, s, n, &at, &len);
            size_t chunk = special ? at : n, skip = chunk + (special ? len : 0);
            rc = count_chunk(&c, s, chunk);
            c.done += (long)(skip - chunk);
            report(&c, c.done);
            s += skip;
            n -= skip;
        }
    }
    free(hit);
    pcre2_match_data_free(c.md);
    return rc;
}

/* ---- pair statistics ---- */

static int pair_of(trainer *tr, int a, int b)
{
    int idx, unused;
    uint64_t key = al_pair_key(a, b);
    if (al_pairmap_get(&tr->pair_index, key, &idx, &unused))
        return idx;
    if (grow((void **)&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs))
        return -1;
    idx = tr->n_pairs++;
    tr->pairs[idx] = (pair){.a = a, .b = b};
    if (al_pairmap_put(&tr->pair_index, key, idx, 0))
        return -1;
    return idx;
}

static int touch(trainer *tr, int idx)
{
    if (tr->pairs[idx].dirty)
        return 0;
    if (grow((void **)&tr->dirty, &tr->cap_dirty, tr->n_dirty + 1, sizeof *tr->dirty))
        return -1;
    tr->pairs[idx].dirty = true;
    tr->dirty[tr->n_dirty++] = idx;
    return 0;
}

/* Adds (sign +1) or removes (-1) every adjacent pair of word w. */
static int count_word_pairs(trainer *tr, int w, int sign)
{
    const word *wd = &tr->words[w];
    const int *s = tr->symbols + wd->start;
    for (int i = 0; i + 1 < wd->len; i++) {
        int idx = pair_of(tr, s[i], s[i + 1]);
        if (idx < 0 || touch(tr, idx))
            return -1;
        pair *p = &tr->pairs[idx];
        p->count += sign * wd->freq;
        if (sign > 0 && (p->n_where == 0 || p->where[p->n_where - 1] != w)) {
            if (grow((void **)&p->where, &p->cap_where, p->n_where + 1, sizeof *p->where))
                return -1;
            p->where[p->n_where++] = w;
        }
    }
    return 0;
}

static int flush_dirty(trainer *tr)
{
    for (int i = 0; i < tr->n_dirty; i++) {
        int idx = tr->dirty[i];
        tr->pairs[idx].dirty = false;
        if (tr->pairs[idx].count > 0 && heap_push(tr, idx))
            return -1;
    }
    tr->n_dirty = 0;
    return 0;
}

static bool word_has(const trainer *tr, int w, int a, int b)
{
    const word *wd = &tr->words[w];
    const int *s = tr->symbols + wd->start;
    for (int i = 0; i + 1 < wd->len; i++)
        if (s[i] == a && s[i + 1] == b)
            return true;
    return false;
}

/* Replaces each (a, b), left to right, by c inside word w. */
static void merge_in_word(trainer *tr, int w, int a, int b, int c)
{
    word *wd = &tr->words[w];
    int *s = tr->symbols + wd->start, o = 0;
    for (int i = 0; i < wd->len; i++) {
        if (i + 1 < wd->len && s[i] == a && s[i + 1] == b) {
            s[o++] = c;
            i++;
        } else {
            s[o++] = s[i];
        }
    }
    wd->len = o;
}

static int apply_merge(trainer *tr, int idx, int c)
{
    int a = tr->pairs[idx].a, b = tr->pairs[idx].b;
    /* count_word_pairs may append to other pairs' lists and grow tr->pairs; this pair's own
     * list is never appended to (c differs from a and b), so a copy of its pointer is safe */
    int *where = tr->pairs[idx].where, n = tr->pairs[idx].n_where;
    for (int i = 0; i < n; i++) {
        int w = where[i];
        if (!word_has(tr, w, a, b))
            continue;
        if (count_word_pairs(tr, w, -1))
            return -1;
        merge_in_word(tr, w, a, b, c);
        if (count_word_pairs(tr, w, +1))
            return -1;
    }
    tr->pairs[idx].n_where = 0;
    return flush_dirty(tr);
}

static int run_merges(trainer *tr, int n_merges, const al_bpe_train_opts *o)
{
    for (int w = 0; w < tr->n_words; w++)
        if (count_word_pairs(tr, w, +1))
            return -1;
    if (flush_dirty(tr))
        return -1;
    tr->merge_a = malloc(((size_t)n_merges + 1) * sizeof *tr->merge_a);
    tr->merge_b = malloc(((size_t)n_merges + 1) * sizeof *tr->merge_b);
    if (!tr->merge_a || !tr->merge_b)
        return al_fail("bpe train: out of memory for %d merges", n_merges);
    while (tr->n_merges < n_merges && tr->n_heap > 0) {
        heap_entry e = heap_pop(tr);
        pair *p = &tr->pairs[e.pair];
        if (e.count != p->count || p->count <= 0)
            continue; /* stale: the pair's count changed after this entry was pushed */
        int a = p->a, b = p->b, c;
        size_t la = (size_t)tr->tok_len[a], lb = (size_t)tr->tok_len[b];
        char *joined = malloc(la + lb + 1);
        if (!joined)
            return al_fail("bpe train: out of memory");
        memcpy(joined, tr->tok[a], la);
        memcpy(joined + la, tr->tok[b], lb);
        int rc = add_token(tr, joined, la + lb, &c);
        free(joined);
        if (rc)
            return -1;
        tr->merge_a[tr->n_merges] = a;
        tr->merge_b[tr->n_merges++] = b;
        if (apply_merge(tr, e.pair, c))
            return -1;
        if (o->progress)
            o->progress(o->progress_ctx, "merge", tr->n_merges, n_merges);
    }
    return 0;
}

/* ---- result ---- */

static int build_tokenizer(trainer *tr, const al_bpe_train_opts *o, al_tokenizer **out)
{
    al_tokenizer *t = tok_new(TOK_BYTE_BPE, "trained");
    if (!t)
        return -1;
    size_t bytes = 0, used = 0;
    for (int i = 0; i < tr->n_tok; i++)
        bytes += (size_t)tr->tok_len[i];
    int rc = tok_alloc(t, tr->n_tok, bytes);
    for (int i = 0; rc == 0 && i < tr->n_tok; i++)
        tok_set_piece(t, i, tr->tok[i], (size_t)tr->tok_len[i], &used);
    int *ids = malloc(((size_t)o->n_specials + 1) * sizeof *ids);
    if (rc == 0 && !ids)
        rc = al_fail("out of memory");
    for (int i = 0; rc == 0 && i < o->n_specials; i++) {
        ids[i] = i;
        t->type[i] = TT_CONTROL;
    }
    if (rc == 0)
        rc = tok_index_pieces(t, "bpe train");
    if (rc == 0)
        rc = tok_set_specials(t, ids, o->n_specials);
    free(ids);
    for (int m = 0; rc == 0 && m < tr->n_merges; m++)
        rc = bbpe_add_merge(t, tr->merge_a[m], tr->merge_b[m], "bpe train");
    if (rc == 0)
        rc = bbpe_compile_regex(t, al_gpt2_pattern, "bpe train");
    if (rc == 0)
        rc = bbpe_finish_load(t, "bpe train");
    if (rc) {
        tok_destroy(t);
        return -1;
    }
    if (o->n_specials > 0) {
        int eot = al_strmap_get(&t->pieces, "<|endoftext|>", 13);
        t->eos = t->bos = eot >= 0 && eot < o->n_specials ? eot : 0;
    }
    *out = t;
    return 0;
}

static void trainer_free(trainer *tr)
{
    for (int i = 0; i < tr->n_tok; i++)
        free(tr->tok[i]);
    free(tr->tok);
    free(tr->tok_len);
    al_strmap_free(&tr->tok_index);
    al_strmap_free(&tr->word_index);
    free(tr->words);
    free(tr->symbols);
    al_pairmap_free(&tr->pair_index);
    for (int i = 0; i < tr->n_pairs; i++)
        free(tr->pairs[i].where);
    free(tr->pairs);
    free(tr->dirty);
    free(tr->heap);
    free(tr->merge_a);
    free(tr->merge_b);
}

static int check_opts(const al_bpe_train_opts *o)
{
    if (o->n_specials < 0 || (o->n_specials > 0 && !o->specials))
        return al_fail("bpe train: bad special-token list");
    for (int i = 0; i < o->n_specials; i++) {
        if (!o->specials[i] || !*o->specials[i])
            return al_fail("bpe train: special token %d is empty", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(o->specials[i], o->specials[j]))
                return al_fail("bpe train: special token '%s' is given twice", o->specials[i]);
    }
    if (o->vocab_size < o->n_specials + 256)
        return al_fail("bpe train: vocab size %d is below %d (the specials plus the 256 bytes)", o->vocab_size,
                       o->n_specials + 256);
    return 0;
}

int al_bpe_train(al_tokenizer **out, const char *const *texts, const size_t *lens, int n_texts,
                 const al_bpe_train_opts *o)
{
    *out = NULL;
    if (check_opts(o))
        return -1;
    trainer tr = {0};
    al_tokenizer *re_holder = tok_new(TOK_BYTE_BPE, "trained"); /* owns the compiled regex */
    int rc = re_holder ? 0 : -1;
    if (rc == 0)
        rc = bbpe_compile_regex(re_holder, al_gpt2_pattern, "bpe train");
    if (rc == 0)
        rc = al_strmap_init(&tr.tok_index, (size_t)o->vocab_size) || al_strmap_init(&tr.word_index, 1 << 14) ||
             al_pairmap_init(&tr.pair_index, 1 << 14);
    for (int i = 0; rc == 0 && i < o->n_specials; i++) {
        int id;
        rc = add_token(&tr, o->specials[i], strlen(o->specials[i]), &id);
    }
    for (int b = 0; rc == 0 && b < 256; b++) {
        char c = (char)b;
        int id;
        rc = add_token(&tr, &c, 1, &id);
        if (rc == 0 && id != o->n_specials + b)
            rc = al_fail("bpe train: special token '%s' is a single byte; specials must not be one byte",
                         tr.tok[id]);
    }
    if (rc == 0)
        rc = count_words(&tr, texts, lens, n_texts, o, o->n_specials, re_holder->re);
    if (rc == 0)
        rc = run_merges(&tr, o->vocab_size - o->n_specials - 256, o);
    if (rc == 0)
        rc = build_tokenizer(&tr, o, out);
    trainer_free(&tr);
    if (re_holder)
        tok_destroy(re_holder);
    return rc ? -1 : 0;
}
