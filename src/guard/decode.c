/* The decoders an attacker's encodings are undone with, and their encoders (for tests).
 *
 * The byte-level codecs live here (base64, hex, ROT13, leetspeak, pig Latin); the
 * Unicode ones (confusables, fullwidth, zero-width, tags) in unicode.c.  The guard does
 * not decode whole messages with base64 or hex: guard_find_encoded picks out the runs
 * that decode to readable text, and the engine rescans those. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bytemask.h"
#include "rules.h"

static const char *const codec_names[AL_CODEC_COUNT] = {
    "base64", "hex", "rot13", "leetspeak", "pig_latin", "confusables", "fullwidth",
    "zero_width", "tags",
};

const char *al_codec_name(al_codec c)
{
    return (unsigned)c < AL_CODEC_COUNT ? codec_names[c] : "?";
}

int al_codec_parse(const char *name, al_codec *out)
{
    for (int i = 0; name && i < AL_CODEC_COUNT; i++)
        if (strcmp(name, codec_names[i]) == 0) {
            *out = (al_codec)i;
            return 0;
        }
    return al_fail("unknown codec '%s' (base64, hex, rot13, leetspeak, pig_latin, confusables, "
                   "fullwidth, zero_width, tags)", name ? name : "(null)");
}

static bool is_alpha(unsigned c) { return (c | 32) - 'a' < 26; }
static bool is_vowel(unsigned c) { return strchr("aeiouAEIOU", (int)c) && c; }

/* ---- base64 ---- */

static int b64_value(unsigned c)
{
    if (c - 'A' < 26)
        return (int)(c - 'A');
    if (c - 'a' < 26)
        return (int)(c - 'a') + 26;
    if (c - '0' < 10)
        return (int)(c - '0') + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static int base64_decode(const char *in, size_t n, al_buf *out)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return al_fail("base64: %zu characters cannot end a quantum", n);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return al_fail("base64: byte %zu is not in the alphabet", i);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)(acc >> bits);
            if (al_buf_append(out, &c, 1))
                return -1;
        }
    }
    return 0;
}

static int base64_encode(const char *in, size_t n, al_buf *out)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {alpha[v >> 18], alpha[(v >> 12) & 63], i + 1 < n ? alpha[(v >> 6) & 63] : '=',
                     i + 2 < n ? alpha[v & 63] : '='};
        if (al_buf_append(out, q, 4))
            return -1;
    }
    return 0;
}

/* ---- hex ---- */

static int hex_value(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    if ((c | 32) - 'a' < 6)
        return (int)((c | 32) - 'a') + 10;
    return -1;
}

/* "68656c6c6f", "68 65 6c", "0x68656c", "\x68\x65" */
static int hex_decode(const char *in, size_t n, al_buf *out)
{
    size_t i = 0;
    if (n >= 2 && in[0] == '0' && (in[1] | 32) == 'x')
        i = 2;
    while (i < n) {
        if (in[i] == ' ' || in[i] == ':') {
            i++;
            continue;
        }
        if (in[i] == '\\' && i + 1 < n && in[i + 1] == 'x')
            i += 2;
        int hi = i < n ? hex_value((unsigned char)in[i]) : -1;
        int lo = i + 1 < n ? hex_value((unsigned char)in[i + 1]) : -1;
        if (hi < 0 || lo < 0)
            return al_fail("hex: byte %zu does not start a pair of hex digits", i);
        char c = (char)(hi << 4 | lo);
        if (al_buf_append(out, &c, 1))
            return -1;
        i += 2;
    }
    return 0;
}

static int hex_encode(const char *in, size_t n, al_buf *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        char pair[2] = {digits[c >> 4], digits[c & 15]};
        if (al_buf_append(out, pair, 2))
            return -1;
    }
    return 0;
}

/* ---- ROT13 and leetspeak: one byte for one byte ---- */

static int rot13(const char *in, size_t n, al_buf *out)
{
    size_t at = out->len;
    if (al_buf_append(out, in, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)out->data[at + i];
        if (is_alpha(c)) {
            unsigned base = c & 32 ? 'a' : 'A';
            out->data[at + i] = (char)(base + (c - base + 13) % 26);
        }
    }
    return 0;
}

static char leet_letter(unsigned c)
{
    switch (c) {
    case '4': case '@': return 'a';
    case '8': return 'b';
    case '3': return 'e';
    case '9': return 'g';
    case '1': case '!': case '|': return 'i';
    case '0': return 'o';
    case '5': case '$': return 's';
    case '7': case '+': return 't';
    }
    return 0;
}

static int leet_decode(const char *in, size_t n, al_buf *out)
{
    size_t at = out->len;
    if (al_buf_append(out, in, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)out->data[at + i];
        char l = leet_letter(c);
        if (l)
            out->data[at + i] = l;
        else if (c - 'A' < 26)
            out->data[at + i] = (char)(c | 32);
    }
    return 0;
}

static int leet_encode(const char *in, size_t n, al_buf *out)
{
    static const char from[] = "abegiost", to[] = "48391057";
    size_t at = out->len;
    if (al_buf_append(out, in, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)out->data[at + i];
        const char *p = is_alpha(c) ? strchr(from, (int)(c | 32)) : NULL;
        if (p)
            out->data[at + i] = to[p - from];
    }
    return 0;
}

bool guard_leet_hash(const char *s, size_t n, uint64_t *hash)
{
    bool leet = false, letter = false;
    uint64_t h = GUARD_HASH_INIT;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t chunk = 0;
        for (size_t k = 0; k < 8 && i + k < n; k++) {
            unsigned c = (unsigned char)s[i + k];
            char l = leet_letter(c);
            leet |= l != 0;
            letter |= is_alpha(c);
            chunk |= (uint64_t)(l ? (unsigned)(unsigned char)l : c | 32) << (8 * k);
        }
        h = guard_hash_chunk(h, chunk);
    }
    *hash = guard_hash_finish(h, n);
    return leet && letter;
}

/* ---- pig Latin ----
 * Our encoder writes the hyphenated form, which says where the moved consonants start:
 * "hello" -> "ello-hay", "apple" -> "apple-ay", "string" -> "ing-stray"; words without
 * a vowel stay as they are.  The decoder reverses that exactly, and reads the usual
 * unhyphenated forms by a guess: "appleway"/"appleyay" (vowel first) -> "apple", else the
 * trailing consonants before "ay" are the onset, at most two of them unless they are one
 * of the common three-letter onsets ("ingstray" -> "string", "eviouspray" -> "previous"). */

static size_t onset_len(const char *w, size_t n)
{
    size_t k = 0;
    while (k < n && !is_vowel((unsigned char)w[k]) && !(k > 0 && (w[k] | 32) == 'y'))
        k++;
    if (k > 0 && k < n && (w[k - 1] | 32) == 'q' && (w[k] | 32) == 'u')
        k++;
    return k;
}

/* The end of the run of letters at in[i]; i itself when in[i] is not a letter. */
static size_t letters_end(const char *in, size_t n, size_t i)
{
    while (i < n && is_alpha((unsigned char)in[i]))
        i++;
    return i;
}

static int piglatin_encode(const char *in, size_t n, al_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = letters_end(in, n, i);
        if (j == i) { /* not a letter: as it is */
            if (al_buf_append(out, in + i++, 1))
                return -1;
            continue;
        }
        size_t k = onset_len(in + i, j - i);
        if (k == j - i) {
            if (al_buf_append(out, in + i, j - i))
                return -1;
        } else if (al_buf_append(out, in + i + k, j - i - k) || al_buf_append(out, "-", 1) ||
                   al_buf_append(out, in + i, k) || al_buf_append(out, "ay", 2)) {
            return -1;
        }
        i = j;
    }
    return 0;
}

static bool ends_ay(const char *w, size_t n)
{
    return n >= 2 && (w[n - 2] | 32) == 'a' && (w[n - 1] | 32) == 'y';
}

static bool all_consonants(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_vowel((unsigned char)w[i]) && !(i > 0 && (w[i] | 32) == 'u' && (w[i - 1] | 32) == 'q'))
            return false;
    return true;
}

/* How many trailing letters of stem (an unhyphenated word without its "ay") are the onset. */
static size_t guess_onset(const char *stem, size_t n)
{
    static const char *const three[] = {"str", "thr", "shr", "chr", "sch", "scr", "squ"};
    size_t k = 0;
    while (k < n && !is_vowel((unsigned char)stem[n - 1 - k]))
        k++;
    if (k == 0 && n >= 2 && (stem[n - 2] | 32) == 'q' && (stem[n - 1] | 32) == 'u')
        return 2;
    if (k >= 3) {
        for (size_t t = 0; t < sizeof three / sizeof *three; t++)
            if (strncasecmp(stem + n - 3, three[t], 3) == 0)
                return 3;
        return 2;
    }
    return k;
}

static int piglatin_decode(const char *in, size_t n, al_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = letters_end(in, n, i);
        if (j == i) {
            if (al_buf_append(out, in + i++, 1))
                return -1;
            continue;
        }
        /* hyphenated: STEM-ONSETay */
        if (j < n && in[j] == '-') {
            size_t k = letters_end(in, n, j + 1);
            const char *tail = in + j + 1;
            size_t tl = k - j - 1;
            if (tl >= 2 && ends_ay(tail, tl) && all_consonants(tail, tl - 2)) {
                if (al_buf_append(out, tail, tl - 2) || al_buf_append(out, in + i, j - i))
                    return -1;
                i = k;
                continue;
            }
        }
        const char *w = in + i;
        size_t wl = j - i;
        if (wl >= 4 && ends_ay(w, wl) && (is_vowel((unsigned char)w[0]) || (w[0] | 32) == 'y')) {
            size_t stem = wl - 2;
            /* "-way" is the usual ending of vowel-first words, so a 'w' before "ay" goes */
            size_t k = (w[stem - 1] | 32) == 'w' && stem >= 3 ? 0 : guess_onset(w, stem);
            if (k == 0 && (w[stem - 1] | 32) == 'w')
                stem--;
            if (al_buf_append(out, w + stem - k, k) || al_buf_append(out, w, stem - k))
                return -1;
        } else if (al_buf_append(out, w, wl)) {
            return -1;
        }
        i = j;
    }
    return 0;
}

/* ---- dispatch ---- */

int guard_unicode_decode(al_codec c, const char *in, size_t n, al_buf *out);
int guard_unicode_encode(al_codec c, const char *in, size_t n, al_buf *out);

int al_decode(al_codec c, const char *in, size_t n, al_buf *out)
{
    switch (c) {
    case AL_CODEC_BASE64: return base64_decode(in, n, out);
    case AL_CODEC_HEX: return hex_decode(in, n, out);
    case AL_CODEC_ROT13: return rot13(in, n, out);
    case AL_CODEC_LEETSPEAK: return leet_decode(in, n, out);
    case AL_CODEC_PIG_LATIN: return piglatin_decode(in, n, out);
    default: return guard_unicode_decode(c, in, n, out);
    }
}

int al_encode(al_codec c, const char *in, size_t n, al_buf *out)
{
    switch (c) {
    case AL_CODEC_BASE64: return base64_encode(in, n, out);
    case AL_CODEC_HEX: return hex_encode(in, n, out);
    case AL_CODEC_ROT13: return rot13(in, n, out);
    case AL_CODEC_LEETSPEAK: return leet_encode(in, n, out);
    case AL_CODEC_PIG_LATIN: return piglatin_encode(in, n, out);
    default: return guard_unicode_encode(c, in, n, out);
    }
}

/* ---- finding encoded runs ---- */

/* Decoded bytes that read as text: valid UTF-8, and at least 85% of the bytes
 * printable ASCII, whitespace or part of a multi-byte character. */
bool guard_readable(const char *s, size_t n)
{
    if (n == 0 || al_utf8_invalid_at(s, n) != (size_t)-1)
        return false;
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        good += (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t' || c == '\r' || c >= 0x80;
    }
    return good * 100 >= n * 85;
}

static unsigned char b64_class[256]; /* 1: base64 alphabet or '=', 2: also a hex digit */
__attribute__((constructor)) static void init_b64_class(void)
{
    for (int c = 0; c < 256; c++)
        b64_class[c] = (b64_value((unsigned)c) >= 0 || c == '=') ? 1 + (hex_value((unsigned)c) >= 0) : 0;
}
static bool is_b64_char(unsigned c) { return b64_class[c] != 0; }

/* Where a run worth decoding may start: the first byte of a run of base64 bytes at least
 * 16 long (8 if min_len is less; every byte if it is under 8), or of a two-digit hex pair
 * followed by a space ("69 67 6e ...").  Words of prose are shorter, so most never start
 * one. */
static uint64_t run_starts(const guard_block *k, const guard_block *next, uint64_t *carry, size_t min_len)
{
    uint64_t b64 = k->alpha | k->digit | k->plus | k->minus | k->slash | k->under | k->equals;
    uint64_t b64_next = next->alpha | next->digit | next->plus | next->minus | next->slash | next->under | next->equals;
    uint64_t starts = b64 & ~(b64 << 1 | *carry);
    *carry = b64 >> 63;
    if (min_len < 8)
        return starts;
    uint64_t hex = k->digit | k->hexa, hex_next = next->digit | next->hexa;
    uint64_t pair = hex & guard_ahead(hex, hex_next, 1) & guard_ahead(k->space, next->space, 2);
    uint64_t long_run = guard_run_at_least(b64, b64_next, min_len >= 16 ? 4 : 3);
    return starts & (long_run | pair);
}

/* A run of base64 (or hex) characters long enough to hide a phrase.  Hex wins when the
 * whole run is hex digits; space-separated hex pairs ("69 67 6e") are one run. */
static int find_encoded(const char *s, size_t n, size_t min_len, const bool codecs[AL_CODEC_COUNT],
                        bool every_start, guard_encoded **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    const unsigned char *u = (const unsigned char *)s;
    guard_bits cand = {malloc(guard_bits_words(n) * sizeof(uint64_t)), n};
    if (!cand.v)
        return al_fail("out of memory");
    guard_blocks it;
    uint64_t carry = 0;
    size_t w = 0;
    for (guard_blocks_start(&it, u, n); guard_blocks_next(&it); w++)
        cand.v[w] = run_starts(&it.cur, &it.next, &carry, every_start ? 0 : min_len);
    cand.v[w] = 0;
    int cap = 0;
    for (size_t i = 0; (i = guard_bits_next(&cand, i, true)) < n;) {
        size_t j = i;
        bool all_hex = true;
        while (j < n && is_b64_char((unsigned char)s[j])) {
            all_hex &= b64_class[(unsigned char)s[j]] == 2;
            j++;
        }
        /* spaced hex pairs: "68 65 6c 6c 6f" (only tried where a pair is followed by a space) */
        size_t k = i;
        if (j - i == 2 && all_hex && j < n && s[j] == ' ')
            while (k + 1 < n && hex_value((unsigned char)s[k]) >= 0 && hex_value((unsigned char)s[k + 1]) >= 0 &&
                   (k + 2 == n || s[k + 2] == ' ')) {
                k += 3;
                if (k > n)
                    k = n;
            }
        al_codec codec = AL_CODEC_COUNT;
        size_t end = j;
        if (k > j && k - i >= min_len + min_len / 2 && codecs[AL_CODEC_HEX]) {
            codec = AL_CODEC_HEX;
            end = k;
            while (end > i && s[end - 1] == ' ')
                end--;
        } else if (j - i >= min_len) {
            if (all_hex && (j - i) % 2 == 0 && codecs[AL_CODEC_HEX])
                codec = AL_CODEC_HEX;
            else if (codecs[AL_CODEC_BASE64])
                codec = AL_CODEC_BASE64;
        }
        if (codec != AL_CODEC_COUNT) {
            if (*n_out == cap) {
                cap = cap ? cap * 2 : 8;
                guard_encoded *v = realloc(*out, (size_t)cap * sizeof *v);
                if (!v) {
                    free(cand.v);
                    return al_fail("out of memory");
                }
                *out = v;
            }
            (*out)[(*n_out)++] = (guard_encoded){i, end, codec};
        }
        i = end > j ? end : j;
    }
    free(cand.v);
    return 0;
}

int guard_find_encoded(const char *s, size_t n, size_t min_len, const bool codecs[AL_CODEC_COUNT],
                       guard_encoded **out, int *n_out)
{
    return find_encoded(s, n, min_len, codecs, false, out, n_out);
}

int guard_find_encoded_reference(const char *s, size_t n, size_t min_len, const bool codecs[AL_CODEC_COUNT],
                                 guard_encoded **out, int *n_out)
{
    return find_encoded(s, n, min_len, codecs, true, out, n_out);
}
