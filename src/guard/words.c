/* Words, word sets and phrases: the one tokenization the lexicon, the deny list and the
 * pattern triggers share, so the text is split once per check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytemask.h"
#include "rules.h"

/* The bytes of a k-byte chunk: the low k bytes set. */
static inline uint64_t chunk_bytes(size_t k) { return k == 8 ? ~0ull : (1ull << (8 * k)) - 1; }

uint64_t guard_hash_word(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint64_t h = GUARD_HASH_INIT;
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        h = guard_hash_chunk(h, guard_load_chunk(s + i, k, n - i) | (GUARD_ONES * 0x20 & chunk_bytes(k)));
    }
    return guard_hash_finish(h, n);
}

/* One word's hash and flags, from the text's bytes [start, end). */
static guard_word make_word(const unsigned char *s, size_t n, size_t start, size_t end)
{
    size_t len = end - start;
    if (len <= 8 && n - start >= 8) {
        /* most words: one load, no loop and no branches */
        uint64_t c, keep = chunk_bytes(len);
        memcpy(&c, s + start, 8);
        c = (c | GUARD_ONES * 0x20) & keep;
        uint64_t other = guard_swar_between(c, 0, 'a'); /* digits, '$' and '@' (as '`') */
        uint64_t letters = GUARD_ONES * 0x80 & keep & ~other;
        uint64_t last2 = len >= 4 ? c >> (8 * len - 16) : 0; /* "ay", lower-cased */
        uint32_t flags = (letters != 0 && other != 0 ? GUARD_WORD_LEET : 0) | (last2 == 0x7961 ? GUARD_WORD_AY : 0);
        return (guard_word){(uint32_t)start, (uint32_t)len, guard_hash_finish(guard_hash_chunk(GUARD_HASH_INIT, c), len),
                            flags};
    }
    uint64_t h = GUARD_HASH_INIT, letters = 0, others = 0;
    for (size_t k = start; k < end; k += 8) {
        size_t m = end - k < 8 ? end - k : 8;
        uint64_t c = guard_load_chunk(s + k, m, n - k) | (GUARD_ONES * 0x20 & chunk_bytes(m));
        uint64_t other = guard_swar_between(c, 0, 'a'); /* digits, '$' and '@' (as '`') */
        others |= other;
        letters |= GUARD_ONES * 0x80 & chunk_bytes(m) & ~other;
        h = guard_hash_chunk(h, c);
    }
    uint32_t flags = (letters && others) ? GUARD_WORD_LEET : 0;
    if (len >= 4 && (s[end - 2] | 32) == 'a' && (s[end - 1] | 32) == 'y')
        flags |= GUARD_WORD_AY;
    return (guard_word){(uint32_t)start, (uint32_t)len, guard_hash_finish(h, len), flags};
}

/* Words are found 64 bytes at a time: a bitmap of the word bytes (letters, digits, '@',
 * '$') gives where words start and end, and the two are paired off lowest bit first.  A
 * word still open at the end of a block is finished in a later one. */
int guard_split_words(const char *str, size_t n, const uint64_t *filter, guard_words *out)
{
    const unsigned char *s = (const unsigned char *)str;
    memset(out, 0, sizeof *out);
    int cap = (int)(n / 4) + 64, count = 0, picked = 0; /* prose has a word every five or six bytes */
    guard_word *w = malloc((size_t)cap * sizeof *w);
    int *pick = filter ? malloc((size_t)cap * sizeof *pick) : NULL;
    if (!w || (filter && !pick))
        goto oom;
    guard_blocks it;
    uint64_t carry = 0;     /* the previous block ended inside a word */
    size_t open = SIZE_MAX; /* where that word started */
    for (guard_blocks_start(&it, s, n); guard_blocks_next(&it);) {
        size_t base = it.base;
        uint64_t in = it.cur.alpha | it.cur.digit | it.cur.at | it.cur.dollar;
        uint64_t in_next = it.next.alpha | it.next.digit | it.next.at | it.next.dollar;
        uint64_t starts = in & ~(in << 1 | carry);
        uint64_t ends = in & ~(in >> 1 | in_next << 63); /* the last byte of each word */
        carry = in >> 63;
        if (open != SIZE_MAX) {
            if (!ends)
                continue; /* the whole block is inside one word */
            starts |= 1; /* finish it as if it started here; its start is kept in open */
        }
        if (count + 64 > cap) {
            cap = cap * 2 + 64;
            guard_word *v = realloc(w, (size_t)cap * sizeof *v);
            if (v)
                w = v;
            int *p = filter && v ? realloc(pick, (size_t)cap * sizeof *p) : NULL;
            if (p)
                pick = p;
            if (!v || (filter && !p))
                goto oom;
        }
        while (starts) {
            size_t a = base + (size_t)__builtin_ctzll(starts);
            starts &= starts - 1;
            if (open != SIZE_MAX)
                a = open, open = SIZE_MAX;
            if (!ends) {
                open = a;
                break;
            }
            size_t e = base + (size_t)__builtin_ctzll(ends) + 1;
            ends &= ends - 1;
            guard_word x = make_word(s, n, a, e);
            if (pick) { /* branch-free: which words are picked is unpredictable */
                pick[picked] = count;
                picked += guard_filter_maybe(filter, x.hash) | (x.flags != 0);
            }
            w[count++] = x;
        }
    }
    *out = (guard_words){w, count, pick, picked};
    return 0;
oom:
    free(w);
    free(pick);
    return al_fail("out of memory");
}

/* ---- word sets ---- */

static int wordset_grow(guard_wordset *s)
{
    uint32_t cap = s->keys ? (s->mask + 1) * 2 : 64;
    guard_wordset t = {calloc(cap, sizeof *t.keys), calloc(cap, sizeof *t.vals), cap - 1, 0, {0}};
    if (!t.keys || !t.vals) {
        free(t.keys);
        free(t.vals);
        return al_fail("out of memory");
    }
    for (uint32_t i = 0; s->keys && i <= s->mask; i++)
        if (s->keys[i])
            guard_wordset_add(&t, s->keys[i], s->vals[i]);
    guard_wordset_free(s);
    *s = t;
    return 0;
}

int guard_wordset_add(guard_wordset *s, uint64_t key, uint64_t val)
{
    if (key == 0)
        key = 1; /* 0 marks an empty slot */
    if ((!s->keys || (uint32_t)(s->n + 1) * 2 > s->mask + 1) && wordset_grow(s))
        return -1;
    guard_filter_add(s->filter, key);
    for (uint32_t i = (uint32_t)(key ^ (key >> 32)) & s->mask;; i = (i + 1) & s->mask) {
        if (s->keys[i] == key) {
            s->vals[i] |= val;
            return 0;
        }
        if (s->keys[i] == 0) {
            s->keys[i] = key;
            s->vals[i] = val;
            s->n++;
            return 0;
        }
    }
}

void guard_wordset_free(guard_wordset *s)
{
    free(s->keys);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

/* ---- hits ---- */

int guard_hits_add(guard_hits *h, int category, size_t start, size_t end, float score,
                   const char *label, const char *via, const char *reason)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 16;
        guard_hit *v = realloc(h->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = (guard_hit){category, start, end, score, label, via, reason};
    return 0;
}

/* ---- phrases ---- */

int guard_phrases_add(guard_phrases *p, const char *text, float score)
{
    guard_words words;
    if (guard_split_words(text, strlen(text), NULL, &words))
        return -1;
    guard_word *w = words.v;
    int nw = words.n;
    if (nw == 0) {
        free(w);
        return 0; /* nothing a word match could find */
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        guard_phrase *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(w);
            return al_fail("out of memory");
        }
        p->v = v;
        p->cap = cap;
    }
    guard_phrase *ph = &p->v[p->n];
    ph->hashes = malloc((size_t)nw * sizeof *ph->hashes);
    ph->label = strdup(text);
    if (!ph->hashes || !ph->label) {
        free(ph->hashes);
        free(ph->label);
        free(w);
        return al_fail("out of memory");
    }
    for (int i = 0; i < nw; i++)
        ph->hashes[i] = w[i].hash;
    ph->n_words = nw;
    ph->score = score;
    p->n++;
    free(w);
    return 0;
}

static int by_first_hash(const void *a, const void *b)
{
    const guard_phrase *x = a, *y = b;
    if (x->hashes[0] != y->hashes[0])
        return x->hashes[0] < y->hashes[0] ? -1 : 1;
    return y->n_words - x->n_words; /* longest first: "piece of shit" before "piece" */
}

int guard_phrases_build(guard_phrases *p)
{
    if (p->n)
        qsort(p->v, (size_t)p->n, sizeof *p->v, by_first_hash);
    guard_wordset_free(&p->first);
    for (int i = 0; i < p->n; i++)
        if ((i == 0 || p->v[i].hashes[0] != p->v[i - 1].hashes[0]) &&
            guard_wordset_add(&p->first, p->v[i].hashes[0], (uint64_t)i))
            return -1;
    return 0;
}

void guard_phrases_free(guard_phrases *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->v[i].hashes);
        free(p->v[i].label);
    }
    free(p->v);
    guard_wordset_free(&p->first);
    memset(p, 0, sizeof *p);
}

/* The phrases whose first word hashes to h, tried at word i; returns the words consumed. */
static int match_at(const guard_phrases *p, uint64_t h, const guard_word *w, int i, int n_words,
                    const guard_phrase **found)
{
    uint64_t k;
    if (!guard_wordset_get(&p->first, h, &k))
        return 0;
    for (; k < (uint64_t)p->n && p->v[k].hashes[0] == h; k++) {
        const guard_phrase *ph = &p->v[k];
        if (i + ph->n_words > n_words)
            continue;
        int j = 1;
        while (j < ph->n_words && w[i + j].hash == ph->hashes[j])
            j++;
        if (j == ph->n_words) {
            *found = ph;
            return j;
        }
    }
    return 0;
}

int guard_phrases_scan(const guard_phrases *p, const char *text, const guard_words *words, bool leet,
                       float min_score, int category, const char *reason, guard_hits *hits)
{
    if (p->n == 0)
        return 0;
    const guard_word *w = words->v;
    int next = 0; /* words before it are inside a phrase already found */
    for (int k = 0; k < words->n_pick; k++) {
        int i = words->pick[k];
        if (i < next || (!guard_wordset_maybe(&p->first, w[i].hash) && !(leet && (w[i].flags & GUARD_WORD_LEET))))
            continue;
        const guard_phrase *ph = NULL;
        int used = match_at(p, w[i].hash, w, i, words->n, &ph);
        uint64_t lh;
        if (!used && leet && (w[i].flags & GUARD_WORD_LEET) &&
            guard_leet_hash(text + w[i].start, w[i].len, &lh)) {
            used = match_at(p, lh, w, i, words->n, &ph);
            if (used > 1 || (ph && ph->n_words > 1))
                used = 0, ph = NULL;
        }
        if (used && ph->score >= min_score) {
            const guard_word *last = &w[i + used - 1];
            if (guard_hits_add(hits, category, w[i].start, (size_t)last->start + last->len, ph->score,
                               ph->label, used == 1 && ph->hashes[0] != w[i].hash ? "leetspeak" : NULL,
                               reason))
                return -1;
        }
        next = i + (used ? used : 1);
    }
    return 0;
}

void guard_words_free(guard_words *w)
{
    free(w->v);
    free(w->pick);
    memset(w, 0, sizeof *w);
}
