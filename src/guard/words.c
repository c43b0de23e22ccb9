/* Words, word sets and phrases: the one tokenization the lexicon, the deny list and the
 * pattern triggers share, so the text is split once per check. */
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* 1: letter, 2: digit, 4: leet symbol ('@', '$'); the lower-case and ROT13 readings */
static unsigned char word_class[256], lower[256], rot13[256];
__attribute__((constructor)) static void init_classes(void)
{
    for (int c = 0; c < 256; c++)
        lower[c] = rot13[c] = (unsigned char)c;
    for (int c = 'a'; c <= 'z'; c++) {
        word_class[c] = word_class[c - 32] = 1;
        lower[c - 32] = (unsigned char)c;
        rot13[c] = rot13[c - 32] = (unsigned char)('a' + (c - 'a' + 13) % 26);
    }
    for (int c = '0'; c <= '9'; c++)
        word_class[c] = 2;
    word_class['@'] = word_class['$'] = 4;
}

uint64_t guard_hash_word(const char *s, size_t n)
{
    uint64_t h = GUARD_HASH_INIT;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        h = guard_hash_step(h, c - 'A' < 26 ? c | 32 : c);
    }
    return h;
}

int guard_split_words(const char *str, size_t n, bool with_rot13, guard_word **words, int *n_words)
{
    const unsigned char *s = (const unsigned char *)str;
    int cap = (int)(n / 6) + 16, count = 0;
    guard_word *w = malloc((size_t)cap * sizeof *w);
    if (!w)
        return al_fail("out of memory");
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_class[s[i]])
            i++;
        if (i == n)
            break;
        size_t start = i;
        uint64_t h = GUARD_HASH_INIT, r = GUARD_HASH_INIT;
        unsigned seen = 0;
        if (with_rot13) {
            for (unsigned k; i < n && (k = word_class[s[i]]); i++) {
                seen |= k;
                h = guard_hash_step(h, lower[s[i]]);
                r = guard_hash_step(r, rot13[s[i]]);
            }
        } else {
            for (unsigned k; i < n && (k = word_class[s[i]]); i++) {
                seen |= k;
                h = guard_hash_step(h, lower[s[i]]);
            }
        }
        if (count == cap) {
            cap *= 2;
            guard_word *v = realloc(w, (size_t)cap * sizeof *v);
            if (!v) {
                free(w);
                return al_fail("out of memory");
            }
            w = v;
        }
        size_t len = i - start;
        uint32_t flags = 0;
        if ((seen & 1) && (seen & 6))
            flags |= GUARD_WORD_LEET;
        if (len >= 4 && (s[i - 2] | 32) == 'a' && (s[i - 1] | 32) == 'y')
            flags |= GUARD_WORD_AY;
        w[count++] = (guard_word){(uint32_t)start, (uint32_t)len, h, r, flags};
    }
    *words = w;
    *n_words = count;
    return 0;
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
    s->filter[(key >> 40) & 63] |= 1ull << ((key >> 34) & 63);
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
    guard_word *w;
    int nw;
    if (guard_split_words(text, strlen(text), false, &w, &nw))
        return -1;
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

int guard_phrases_scan(const guard_phrases *p, const char *text, const guard_word *w, int n_words,
                       bool leet, float min_score, int category, const char *reason, guard_hits *hits)
{
    if (p->n == 0)
        return 0;
    for (int i = 0; i < n_words;) {
        const guard_phrase *ph = NULL;
        int used = match_at(p, w[i].hash, w, i, n_words, &ph);
        uint64_t lh;
        if (!used && leet && (w[i].flags & GUARD_WORD_LEET) &&
            guard_leet_hash(text + w[i].start, w[i].len, &lh)) {
            used = match_at(p, lh, w, i, n_words, &ph);
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
        i += used ? used : 1;
    }
    return 0;
}
