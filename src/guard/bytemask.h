/* Byte classes as bitmaps, 64 bytes at a time: bit i of a block's mask says whether byte
 * i is in the class.  The rule rails walk words, base64 runs and PII candidates; finding
 * where those start and end a bit at a time (count trailing zeros) instead of a byte at a
 * time is most of what makes the scan fast, because ordinary prose has long stretches
 * where nothing can start.
 *
 * AVX-512BW or AVX2 when the compiler targets them, a table otherwise; the results are the
 * same (tests/test_guard_scan.c compares them with guard_classify_scalar). */
#ifndef ALIGN_GUARD_BYTEMASK_H
#define ALIGN_GUARD_BYTEMASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512BW__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* The classes of one block; each a bitmap of its (up to) 64 bytes. */
typedef struct guard_block {
    uint64_t alpha; /* A-Z a-z */
    uint64_t upper; /* A-Z */
    uint64_t digit; /* 0-9 */
    uint64_t hexa;  /* A-F a-f */
    uint64_t space; /* ' ' */
    uint64_t at, colon, dollar, plus, minus, slash, under, equals, lparen; /* @ : $ + - / _ = ( */
} guard_block;

/* The reference: one byte at a time. */
void guard_classify_scalar(const unsigned char *s, size_t len, guard_block *b);

#if defined(__AVX2__) && !defined(__AVX512BW__)
/* unsigned lo <= v <= hi, as min(v - lo, hi - lo) == v - lo */
static inline __m256i guard_range256(__m256i v, unsigned char lo, unsigned char hi)
{
    __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8((char)lo));
    return _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8((char)(hi - lo))), d);
}
static inline __m256i guard_eq256(__m256i v, char c) { return _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)); }
static inline uint64_t guard_bits256(__m256i v) { return (uint32_t)_mm256_movemask_epi8(v); }
#endif

/* Classes of s[0..len), len <= 64; bytes past len are in no class. */
static inline void guard_classify(const unsigned char *s, size_t len, guard_block *b)
{
#if defined(__AVX512BW__)
    __mmask64 valid = len >= 64 ? ~0ull : (1ull << len) - 1;
    __m512i x = _mm512_maskz_loadu_epi8(valid, s);
    __m512i low = _mm512_or_si512(x, _mm512_set1_epi8(0x20)); /* letters to lower case */
#define GB_RANGE(v, lo, hi) \
    _mm512_cmple_epu8_mask(_mm512_sub_epi8((v), _mm512_set1_epi8((char)(lo))), _mm512_set1_epi8((char)((hi) - (lo))))
#define GB_EQ(c) (_mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8(c)) & valid)
    b->alpha = GB_RANGE(low, 'a', 'z') & valid;
    b->upper = GB_RANGE(x, 'A', 'Z') & valid;
    b->digit = GB_RANGE(x, '0', '9') & valid;
    b->hexa = GB_RANGE(low, 'a', 'f') & valid;
    b->space = GB_EQ(' ');
    b->at = GB_EQ('@'), b->colon = GB_EQ(':'), b->dollar = GB_EQ('$'), b->plus = GB_EQ('+');
    b->minus = GB_EQ('-'), b->slash = GB_EQ('/'), b->under = GB_EQ('_'), b->equals = GB_EQ('=');
    b->lparen = GB_EQ('(');
#undef GB_RANGE
#undef GB_EQ
#elif defined(__AVX2__)
    unsigned char pad[64];
    if (len < 64) { /* bytes past len are zero, in no class */
        memset(pad, 0, sizeof pad);
        memcpy(pad, s, len);
        s = pad;
    }
    memset(b, 0, sizeof *b);
    for (int half = 0; half < 2; half++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(s + 32 * half));
        __m256i low = _mm256_or_si256(x, _mm256_set1_epi8(0x20));
        int sh = 32 * half;
        b->alpha |= guard_bits256(guard_range256(low, 'a', 'z')) << sh;
        b->upper |= guard_bits256(guard_range256(x, 'A', 'Z')) << sh;
        b->digit |= guard_bits256(guard_range256(x, '0', '9')) << sh;
        b->hexa |= guard_bits256(guard_range256(low, 'a', 'f')) << sh;
        b->space |= guard_bits256(guard_eq256(x, ' ')) << sh;
        b->at |= guard_bits256(guard_eq256(x, '@')) << sh;
        b->colon |= guard_bits256(guard_eq256(x, ':')) << sh;
        b->dollar |= guard_bits256(guard_eq256(x, '$')) << sh;
        b->plus |= guard_bits256(guard_eq256(x, '+')) << sh;
        b->minus |= guard_bits256(guard_eq256(x, '-')) << sh;
        b->slash |= guard_bits256(guard_eq256(x, '/')) << sh;
        b->under |= guard_bits256(guard_eq256(x, '_')) << sh;
        b->equals |= guard_bits256(guard_eq256(x, '=')) << sh;
        b->lparen |= guard_bits256(guard_eq256(x, '(')) << sh;
    }
#else
    guard_classify_scalar(s, len, b);
#endif
}

/* Bit i of the result is bit i + k of the 128 bits (cur, next): "k bytes ahead",
 * for 0 < k < 64. */
static inline uint64_t guard_ahead(uint64_t cur, uint64_t next, int k)
{
    return cur >> k | next << (64 - k);
}

/* Bit i set where the bytes i .. i + 2^steps - 1 of (cur, next) are all set: runs at
 * least that long (steps <= 6).  Doubling: each step ANDs in the bits 2^k ahead.  The
 * next block's bits are needed only near its start, so they need no block after it. */
static inline uint64_t guard_run_at_least(uint64_t cur, uint64_t next, int steps)
{
    for (int k = 0; k < steps; k++) {
        int d = 1 << k;
        cur &= guard_ahead(cur, next, d);
        next &= next >> d;
    }
    return cur;
}

/* A walk over a text a block at a time, with the next block's classes at hand for the
 * masks that look ahead:
 *     guard_blocks it;
 *     for (guard_blocks_start(&it, s, n); guard_blocks_next(&it);)
 *         ... it.base, it.cur, it.next ... */
typedef struct guard_blocks {
    const unsigned char *s;
    size_t n, base;        /* base: the offset of cur */
    guard_block cur, next; /* next is all clear past the end */
} guard_blocks;

static inline void guard_blocks_start(guard_blocks *it, const unsigned char *s, size_t n)
{
    it->s = s;
    it->n = n;
    it->base = (size_t)0 - 64; /* the first guard_blocks_next moves it to 0 */
    guard_classify(s, n < 64 ? n : 64, &it->next);
}

static inline bool guard_blocks_next(guard_blocks *it)
{
    it->base += 64;
    if (it->base >= it->n)
        return false;
    it->cur = it->next;
    size_t at = it->base + 64;
    if (at < it->n)
        guard_classify(it->s + at, it->n - at < 64 ? it->n - at : 64, &it->next);
    else
        memset(&it->next, 0, sizeof it->next);
    return true;
}

/* ---- bitmaps over a whole text ---- */

/* One bit per byte of a text; bits past the text are clear. */
typedef struct guard_bits {
    uint64_t *v;
    size_t n; /* bits */
} guard_bits;

static inline size_t guard_bits_words(size_t n) { return (n + 63) / 64 + 1; }

/* The first position >= i whose bit is set (want = true) or clear (want = false);
 * n when there is none. */
static inline size_t guard_bits_next(const guard_bits *b, size_t i, bool want)
{
    if (i >= b->n)
        return b->n;
    size_t w = i / 64, last = (b->n - 1) / 64;
    uint64_t flip = want ? 0 : ~0ull;
    uint64_t x = (b->v[w] ^ flip) & (~0ull << (i % 64));
    while (!x) {
        if (++w > last)
            return b->n;
        x = b->v[w] ^ flip;
    }
    size_t r = w * 64 + (size_t)__builtin_ctzll(x);
    return r < b->n ? r : b->n;
}

#endif
