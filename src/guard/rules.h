/* Internals of the guard's rule rails (part A): UTF-8 steps, the Unicode fold, word
 * hashing, and the hits the rails report to the decision engine. */
#ifndef ALIGN_GUARD_RULES_H
#define ALIGN_GUARD_RULES_H

#include <string.h>

#include "align/guard.h"

/* ---- UTF-8 ---- */
/* Decodes the code point at s[0..n); returns its byte length (>= 1).  Invalid bytes
 * come back one at a time as U+FFFD, so any input can be walked. */
static inline int guard_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || (size_t)len > n || c > 0xF4) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

int guard_utf8_put(al_buf *b, uint32_t cp);

/* ---- Unicode fold (src/guard/unicode.c) ---- */
/* What the fold met, for the obfuscation signals. */
typedef struct guard_fold_stats {
    int zero_width_in_words; /* invisible characters between two letters */
    int homoglyph_words;     /* words mixing ASCII letters and look-alikes */
    int tags;                /* Unicode tag characters */
    int fullwidth;
} guard_fold_stats;
/* Zero-width stripped, tags/fullwidth/confusables to ASCII, everything else copied.
 * map[i] is the offset in the source of the character out->data[i] came from;
 * map has out->len + 1 entries (the last is n). */
int guard_fold(const char *s, size_t n, al_buf *out, uint32_t **map, guard_fold_stats *st);
/* Whether the fold would change anything: most non-ASCII text (curly quotes, accented
 * letters) has nothing to fold, and then the copy and its map are skipped. */
bool guard_needs_fold(const char *s, size_t n);
/* Single-codec folds used by al_decode. */
uint32_t guard_confusable_ascii(uint32_t cp); /* 0 if none */
bool guard_is_zero_width(uint32_t cp);

/* ---- hits ---- */
/* What a rail found; the engine turns hits into scores, spans and an action. */
typedef struct guard_hit {
    int category;
    size_t start, end;
    float score;
    const char *label;   /* static or owned by the guard */
    const char *via;
    const char *reason;  /* reason code */
} guard_hit;
typedef struct guard_hits {
    guard_hit *v;
    int n, cap;
} guard_hits;
int guard_hits_add(guard_hits *h, int category, size_t start, size_t end, float score,
                   const char *label, const char *via, const char *reason);

/* ---- word hashing ---- */
/* Words are runs of ASCII letters, digits, '@' and '$' (the last two for leetspeak),
 * hashed eight bytes at a time (the last eight zero-padded) and then the length: a word
 * costs one multiply per eight bytes instead of one per byte.  Every byte is hashed with
 * bit 5 set, which lower-cases the letters and leaves digits and '$' as they are ('@'
 * reads as '`', which no word contains). */
#define GUARD_HASH_INIT 0xCBF29CE484222325ull
static inline uint64_t guard_hash_chunk(uint64_t h, uint64_t chunk)
{
    h = (h ^ chunk) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}
static inline uint64_t guard_hash_finish(uint64_t h, size_t len)
{
    h = (h ^ len) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}
static inline uint64_t guard_hash_pair(uint64_t a, uint64_t b)
{
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

/* SWAR: eight bytes in a uint64_t (little-endian).  0x80 in each byte of x that is
 * strictly between m and n (m <= 127, n <= 128); bytes >= 0x80 never are. */
#define GUARD_ONES 0x0101010101010101ull
static inline uint64_t guard_swar_between(uint64_t x, unsigned m, unsigned n)
{
    uint64_t lo7 = x & (GUARD_ONES * 127);
    return ((GUARD_ONES * (127 + n) - lo7) & ~x & (lo7 + GUARD_ONES * (127 - m))) & (GUARD_ONES * 128);
}
/* The k <= 8 bytes at s, zero-padded; avail (>= k) bytes may be read from s.  (Little-
 * endian, like the rest of align: the first byte is the lowest.) */
static inline uint64_t guard_load_chunk(const unsigned char *s, size_t k, size_t avail)
{
    uint64_t c = 0;
    if (avail >= 8) {
        memcpy(&c, s, 8);
        return k == 8 ? c : c & ((1ull << (8 * k)) - 1);
    }
    memcpy(&c, s, k);
    return c;
}
uint64_t guard_hash_word(const char *s, size_t n); /* case-insensitive */
/* A hash set of words (or word sequences, by guard_hash_pair) with a small payload.  Its
 * filter has 16384 bits: the sets hold a few hundred keys, so a word not in them passes
 * about one time in fifty (common words that passed a 4096-bit filter cost 5%). */
#define GUARD_FILTER_WORDS 256
typedef struct guard_wordset {
    uint64_t *keys;
    uint64_t *vals;
    uint32_t mask;
    int n;
    uint64_t filter[GUARD_FILTER_WORDS]; /* one bit per key: most words miss here, before any probe */
} guard_wordset;
int guard_wordset_add(guard_wordset *s, uint64_t key, uint64_t val); /* ORs into an existing val */
/* False when key is surely not in the set (one bit test; most words stop here).  A set's
 * filter has one bit per key; several sets' filters OR-ed together make one for all. */
static inline bool guard_filter_maybe(const uint64_t filter[GUARD_FILTER_WORDS], uint64_t key)
{
    key += key == 0;
    return filter[(key >> 40) % GUARD_FILTER_WORDS] >> ((key >> 34) & 63) & 1;
}
static inline void guard_filter_add(uint64_t filter[GUARD_FILTER_WORDS], uint64_t key)
{
    key += key == 0;
    filter[(key >> 40) % GUARD_FILTER_WORDS] |= 1ull << ((key >> 34) & 63);
}
static inline bool guard_wordset_maybe(const guard_wordset *s, uint64_t key)
{
    return guard_filter_maybe(s->filter, key);
}
static inline bool guard_wordset_get(const guard_wordset *s, uint64_t key, uint64_t *val)
{
    if (!guard_wordset_maybe(s, key))
        return false;
    key += key == 0; /* 0 marks an empty slot */
    for (uint32_t i = (uint32_t)(key ^ (key >> 32)) & s->mask;; i = (i + 1) & s->mask) {
        if (s->keys[i] == key) {
            *val = s->vals[i];
            return true;
        }
        if (s->keys[i] == 0)
            return false;
    }
}
void guard_wordset_free(guard_wordset *s);

/* A text's words: start offset, length, the hash of the lower-cased bytes, and flags for
 * the other readings the rails try.  (The ROT13 reading needs no hash of its own: the
 * pattern triggers are also stored ROT13-encoded.) */
enum { GUARD_WORD_LEET = 1, GUARD_WORD_AY = 2 };
typedef struct guard_word {
    uint32_t start, len;
    uint64_t hash;
    uint32_t flags;
} guard_word;

/* The words, and the few the rails need to look at: most words of prose start no
 * trigger, lexicon term or deny term, and one bit test against the union of the sets'
 * filters says so.  The rails walk the picked words only (and their neighbours). */
typedef struct guard_words {
    guard_word *v;
    int n;
    int *pick; /* indices into v, ascending: words whose hash passes the filter, or that
                  have a leetspeak or pig Latin reading */
    int n_pick;
} guard_words;
/* filter may be NULL: no picking. */
int guard_split_words(const char *s, size_t n, const uint64_t *filter, guard_words *out);
void guard_words_free(guard_words *w);

/* Word sequences ("kill yourself", "jira.corp.example") with a score and a label, found
 * by their first word's hash and checked word by word. */
typedef struct guard_phrase {
    uint64_t *hashes;
    int n_words;
    float score;
    char *label;
} guard_phrase;
typedef struct guard_phrases {
    guard_phrase *v;
    int n, cap;
    guard_wordset first; /* first-word hash -> index of its first phrase (sorted by it) */
} guard_phrases;
int guard_phrases_add(guard_phrases *p, const char *text, float score);
int guard_phrases_build(guard_phrases *p); /* after the last add */
void guard_phrases_free(guard_phrases *p);
/* Adds a hit for every phrase found in the words (a leetspeak reading of a word counts
 * for single-word phrases when leet is set). */
int guard_phrases_scan(const guard_phrases *p, const char *text, const guard_words *w,
                       bool leet, float min_score, int category, const char *reason,
                       guard_hits *hits);

/* ---- lexicon (src/guard/lexicon.c) ---- */
const guard_phrases *guard_lexicon_phrases(const al_lexicon *lx);
/* Leetspeak reading of one word, for a second lookup; false if the word has no leet. */
bool guard_leet_hash(const char *s, size_t n, uint64_t *hash);

/* ---- patterns (src/guard/patterns.c) ---- */
typedef struct guard_patterns guard_patterns;
guard_patterns *guard_patterns_new(const al_guard_policy *p);
void guard_patterns_free(guard_patterns *gp);
/* Injection, role-play and deny patterns over a (folded) text; offsets are into text.
 * codecs (may be NULL) turns on the ROT13, leetspeak and pig Latin readings; via names
 * the decoder the text itself came through (NULL at the top). */
int guard_patterns_scan(const guard_patterns *gp, const bool rails[AL_RAIL_COUNT], const bool *codecs,
                        const char *text, size_t n, const guard_words *w, const char *via, guard_hits *hits);
/* The filter of the pattern triggers' word set, for guard_pick_words. */
const guard_wordset *guard_patterns_words(const guard_patterns *gp);

/* ---- decode-and-rescan helpers (src/guard/decode.c) ---- */
/* Base64 and hex runs of at least min_len bytes in text that decode to readable UTF-8. */
typedef struct guard_encoded {
    size_t start, end;
    al_codec codec;
} guard_encoded;
int guard_find_encoded(const char *s, size_t n, size_t min_len, const bool codecs[AL_CODEC_COUNT],
                       guard_encoded **out, int *n_out);
bool guard_readable(const char *s, size_t n);

/* The scanners without their prefilters: every run start, every word start tried.  Slow;
 * tests/test_guard_scan.c checks the fast ones find exactly what these find. */
int guard_find_encoded_reference(const char *s, size_t n, size_t min_len, const bool codecs[AL_CODEC_COUNT],
                                 guard_encoded **out, int *n_out);
int guard_pii_scan_reference(const char *text, size_t n, const bool enabled[AL_PII_COUNT], al_pii_match **out,
                             int *n_out);

#endif
