/* Feature hashing for the harm classifier.
 *
 * The text is folded to lower case and every run of characters that are neither letters
 * nor digits (ASCII punctuation, spaces, controls) becomes one space, with a space added
 * at both ends: "How do I KILL a process?" -> " how do i kill a process ".  Non-ASCII
 * bytes count as letters, so other scripts still produce features.  From that string:
 *   - word unigrams and bigrams (what the request is about: "kill a", "a process");
 *   - character 3-, 4- and 5-grams, spaces included (spelling variants, inflections,
 *     word boundaries: " kil", "ill ").
 * Each feature is hashed with FNV-1a (64-bit), salted per kind so a word and a character
 * n-gram with the same bytes land in different buckets, and the hash's top bits pick
 * the bucket (a multiplicative finish spreads FNV's weak high bits). */
#include "harm_features.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

enum { KIND_WORD = 1, KIND_BIGRAM = 2, KIND_CHAR = 3 };

static inline uint64_t salt(uint64_t seed, int kind)
{
    return (FNV_OFFSET ^ seed) + (uint64_t)kind * 0x9e3779b97f4a7c15ull;
}

size_t harm_max_features(size_t n)
{
    /* At most (n + 2) / 2 words; (n + 2) padded bytes with three n-grams each. */
    return 3 * (n + 2) + (n + 2) + 2;
}

static size_t normalize(const char *text, size_t n, char *norm)
{
    size_t k = 0;
    norm[k++] = ' ';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
        if (keep)
            norm[k++] = (char)c;
        else if (norm[k - 1] != ' ')
            norm[k++] = ' ';
    }
    if (norm[k - 1] != ' ')
        norm[k++] = ' ';
    return k;
}

size_t harm_features(const char *text, size_t n, int log2_buckets, uint64_t seed, char *norm, uint32_t *idx,
                     size_t *norm_len)
{
    size_t len = normalize(text, n, norm), out = 0;
    *norm_len = len;
    const uint64_t word_salt = salt(seed, KIND_WORD), char_salt = salt(seed, KIND_CHAR);
    const uint64_t bigram_salt = salt(seed, KIND_BIGRAM);

    /* Words: the bytes between spaces (norm starts and ends with one). */
    uint64_t prev = 0;
    bool have_prev = false;
    for (size_t i = 1; i < len;) {
        uint64_t h = word_salt;
        size_t j = i;
        for (; norm[j] != ' '; j++)
            h = (h ^ (unsigned char)norm[j]) * FNV_PRIME;
        if (j > i) {
            idx[out++] = harm_bucket(h, log2_buckets);
            if (have_prev)
                idx[out++] = harm_bucket((bigram_salt ^ prev) * FNV_PRIME + h, log2_buckets);
            prev = h;
            have_prev = true;
        }
        i = j + 1;
    }

    /* Character n-grams: every start position, extended byte by byte. */
    for (size_t i = 0; i + HARM_CHAR_NGRAM_MIN <= len; i++) {
        uint64_t h = char_salt;
        size_t end = i + HARM_CHAR_NGRAM_MAX <= len ? i + HARM_CHAR_NGRAM_MAX : len;
        for (size_t j = i; j < end; j++) {
            h = (h ^ (unsigned char)norm[j]) * FNV_PRIME;
            if (j + 1 - i >= HARM_CHAR_NGRAM_MIN)
                idx[out++] = harm_bucket(h, log2_buckets);
        }
    }
    return out;
}
