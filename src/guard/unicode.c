/* Unicode disguises: homoglyphs, fullwidth forms, invisible characters and tag characters.
 *
 * The confusables table is ours and small: the Cyrillic, Greek, Armenian and Latin
 * letters that render like ASCII letters in common fonts, small capitals, and the
 * letterlike symbols; whole blocks (mathematical alphanumerics, enclosed and squared
 * letters, regional indicators) are folded by arithmetic.  It is not Unicode's full
 * confusables.txt, which maps thousands of pairs most attackers never use. */
#include <stdlib.h>
#include <string.h>

#include "rules.h"

typedef struct confusable {
    uint32_t cp;
    char ascii;
} confusable;

/* Sorted by code point (binary search). */
static const confusable table[] = {
    {0x0131, 'i'}, {0x0237, 'j'}, {0x0251, 'a'}, {0x0261, 'g'}, {0x0262, 'g'}, {0x0269, 'i'},
    {0x026A, 'i'}, {0x0274, 'n'}, {0x0280, 'r'}, {0x028F, 'y'}, {0x0299, 'b'}, {0x029C, 'h'},
    {0x029F, 'l'}, {0x0391, 'A'}, {0x0392, 'B'}, {0x0395, 'E'}, {0x0396, 'Z'}, {0x0397, 'H'},
    {0x0399, 'I'}, {0x039A, 'K'}, {0x039C, 'M'}, {0x039D, 'N'}, {0x039F, 'O'}, {0x03A1, 'P'},
    {0x03A4, 'T'}, {0x03A5, 'Y'}, {0x03A7, 'X'}, {0x03B1, 'a'}, {0x03B9, 'i'}, {0x03BA, 'k'},
    {0x03BD, 'v'}, {0x03BF, 'o'}, {0x03C1, 'p'}, {0x03C5, 'u'}, {0x03C7, 'x'}, {0x0405, 'S'},
    {0x0406, 'I'}, {0x0408, 'J'}, {0x0410, 'A'}, {0x0412, 'B'}, {0x0415, 'E'}, {0x041A, 'K'},
    {0x041C, 'M'}, {0x041D, 'H'}, {0x041E, 'O'}, {0x0420, 'P'}, {0x0421, 'C'}, {0x0422, 'T'},
    {0x0423, 'Y'}, {0x0425, 'X'}, {0x0430, 'a'}, {0x0435, 'e'}, {0x043E, 'o'}, {0x0440, 'p'},
    {0x0441, 'c'}, {0x0443, 'y'}, {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'},
    {0x04AE, 'Y'}, {0x04BB, 'h'}, {0x04CF, 'l'}, {0x0501, 'd'}, {0x051B, 'q'}, {0x051D, 'w'},
    {0x057D, 'u'}, {0x0585, 'o'}, {0x1D00, 'a'}, {0x1D04, 'c'}, {0x1D05, 'd'}, {0x1D07, 'e'},
    {0x1D0A, 'j'}, {0x1D0B, 'k'}, {0x1D0D, 'm'}, {0x1D0F, 'o'}, {0x1D18, 'p'}, {0x1D1B, 't'},
    {0x1D1C, 'u'}, {0x1D20, 'v'}, {0x1D21, 'w'}, {0x1D22, 'z'}, {0x210A, 'g'}, {0x210E, 'h'},
    {0x2113, 'l'}, {0x212A, 'K'}, {0x212F, 'e'}, {0x2134, 'o'}, {0x2170, 'i'}, {0xA731, 's'},
};

/* The encoder's choice per ASCII letter; letters without one use mathematical bold. */
static const char enc_from[] = "acdeghijklopqsuvwxyABCEHIJKMNOPSTXYZ";
static const uint32_t enc_to[] = {
    0x0430, 0x0441, 0x0501, 0x0435, 0x0261, 0x04BB, 0x0456, 0x0458, 0x03BA, 0x04CF, 0x043E,
    0x0440, 0x051B, 0x0455, 0x03C5, 0x03BD, 0x051D, 0x0445, 0x0443, 0x0410, 0x0412, 0x0421,
    0x0415, 0x041D, 0x0406, 0x0408, 0x041A, 0x041C, 0x039D, 0x041E, 0x0420, 0x0405, 0x0422,
    0x0425, 0x04AE, 0x0396,
};

static char letter_at(uint32_t idx) /* 0..51 -> A..Z a..z */
{
    return (char)(idx < 26 ? 'A' + idx : 'a' + idx - 26);
}

uint32_t guard_confusable_ascii(uint32_t cp)
{
    if (cp < 0x0131)
        return 0;
    if (cp >= 0x1D400 && cp <= 0x1D6A3) /* mathematical alphanumerics: 13 alphabets of 52 */
        return (uint32_t)letter_at((cp - 0x1D400) % 52);
    if (cp == 0x1D6A4 || cp == 0x1D6A5)
        return cp == 0x1D6A4 ? 'i' : 'j';
    if (cp >= 0x1D7CE && cp <= 0x1D7FF)
        return '0' + (cp - 0x1D7CE) % 10;
    if (cp >= 0x24B6 && cp <= 0x24E9) /* circled letters */
        return (uint32_t)letter_at(cp - 0x24B6);
    if (cp >= 0x249C && cp <= 0x24B5) /* parenthesized small letters */
        return 'a' + (cp - 0x249C);
    if (cp >= 0x2460 && cp <= 0x2468)
        return '1' + (cp - 0x2460);
    if (cp == 0x24EA)
        return '0';
    if ((cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
        (cp >= 0x1F170 && cp <= 0x1F189))
        return 'A' + ((cp - 0x1F130) & 0x1F); /* squared, negative circled, negative squared */
    if (cp >= 0x1F1E6 && cp <= 0x1F1FF) /* regional indicators */
        return 'A' + (cp - 0x1F1E6);
    size_t lo = 0, hi = sizeof table / sizeof *table;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (table[mid].cp == cp)
            return (uint32_t)(unsigned char)table[mid].ascii;
        if (table[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

bool guard_is_zero_width(uint32_t cp)
{
    return cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x180E || cp == 0xFEFF ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0100 && cp <= 0xE01EF);
}

static bool is_tag(uint32_t cp) { return cp >= 0xE0000 && cp <= 0xE007F; }
static uint32_t tag_ascii(uint32_t cp) { return cp >= 0xE0020 && cp <= 0xE007E ? cp - 0xE0000 : 0; }

static uint32_t fullwidth_ascii(uint32_t cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return cp - 0xFF01 + 0x21;
    return cp == 0x3000 ? ' ' : 0;
}

int guard_utf8_put(al_buf *b, uint32_t cp)
{
    char u[4];
    int n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return al_buf_append(b, u, (size_t)n);
}

/* One codec over the text: the characters it knows become ASCII (or vanish), the rest
 * is copied byte for byte, invalid UTF-8 included. */
int guard_unicode_decode(al_codec c, const char *in, size_t n, al_buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = guard_utf8_next(s + i, n - i, &cp);
        uint32_t a = 0;
        bool drop = false;
        if (c == AL_CODEC_CONFUSABLES)
            a = guard_confusable_ascii(cp);
        else if (c == AL_CODEC_FULLWIDTH)
            a = fullwidth_ascii(cp);
        else if (c == AL_CODEC_ZERO_WIDTH)
            drop = guard_is_zero_width(cp);
        else if (c == AL_CODEC_TAGS)
            drop = is_tag(cp), a = tag_ascii(cp);
        else
            return al_fail("codec %d is not a Unicode codec", (int)c);
        if (a) {
            char ch = (char)a;
            if (al_buf_append(out, &ch, 1))
                return -1;
        } else if (!drop && al_buf_append(out, in + i, (size_t)len)) {
            return -1;
        }
        i += (size_t)len;
    }
    return 0;
}

static uint32_t confusable_for(unsigned c)
{
    const char *p = strchr(enc_from, (int)c);
    if (p && c)
        return enc_to[p - enc_from];
    if ((c | 32) - 'a' < 26) /* mathematical bold */
        return 0x1D400 + (c >= 'a' ? 26 + c - 'a' : c - 'A');
    if (c - '0' < 10)
        return 0x1D7CE + (c - '0');
    return 0;
}

int guard_unicode_encode(al_codec c, const char *in, size_t n, al_buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = guard_utf8_next(s + i, n - i, &cp);
        uint32_t to = 0;
        if (c == AL_CODEC_CONFUSABLES && cp < 0x80)
            to = confusable_for(cp);
        else if (c == AL_CODEC_FULLWIDTH && cp > 0x20 && cp < 0x7F)
            to = 0xFF01 + cp - 0x21;
        else if (c == AL_CODEC_FULLWIDTH && cp == ' ')
            to = 0x3000;
        else if (c == AL_CODEC_TAGS && cp >= 0x20 && cp < 0x7F)
            to = 0xE0000 + cp;
        int rc = to ? guard_utf8_put(out, to) : al_buf_append(out, in + i, (size_t)len);
        if (rc)
            return -1;
        i += (size_t)len;
        /* an invisible separator after every character but the last */
        if (c == AL_CODEC_ZERO_WIDTH && i < n && guard_utf8_put(out, 0x200B))
            return -1;
    }
    return 0;
}

/* ---- the fold the rails scan ---- */

/* The characters guard_fold changes: the obfuscation signals count only these. */
static bool folds(uint32_t cp)
{
    return guard_is_zero_width(cp) || is_tag(cp) || fullwidth_ascii(cp) || guard_confusable_ascii(cp);
}

bool guard_needs_fold(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, s + i, 8), (w & GUARD_ONES * 0x80) == 0)) {
            i += 8; /* eight ASCII bytes: nothing to fold */
            continue;
        }
        uint32_t cp;
        int len = guard_utf8_next(s + i, n - i, &cp);
        if (cp >= 0x80 && folds(cp))
            return true;
        i += (size_t)len;
    }
    return false;
}

static bool ascii_letter(unsigned c) { return (c | 32) - 'a' < 26; }

int guard_fold(const char *in, size_t n, al_buf *out, uint32_t **map_out, guard_fold_stats *st)
{
    memset(st, 0, sizeof *st);
    /* the fold never lengthens: every character becomes at most its own bytes */
    out->len = 0;
    if (al_buf_append(out, in, n))
        return -1;
    uint32_t *map = malloc((n + 1) * sizeof *map);
    if (!map)
        return al_fail("out of memory");
    const unsigned char *s = (const unsigned char *)in;
    char *o = out->data;
    size_t len = 0;
    /* per word: did it have plain ASCII letters, look-alikes, an invisible inside? */
    bool word_ascii = false, word_glyph = false, pending_zw = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int cl = s[i] < 0x80 ? (cp = s[i], 1) : guard_utf8_next(s + i, n - i, &cp);
        uint32_t a = 0;
        bool glyph = false;
        if (cp < 0x80) {
            a = cp;
        } else if (guard_is_zero_width(cp) || (is_tag(cp) && !tag_ascii(cp))) {
            pending_zw = true;
            i += (size_t)cl;
            continue;
        } else if ((a = tag_ascii(cp)) != 0) {
            st->tags++;
        } else if ((a = fullwidth_ascii(cp)) != 0) {
            st->fullwidth++;
        } else if ((a = guard_confusable_ascii(cp)) != 0) {
            glyph = true;
        }
        bool letter = a && ascii_letter(a);
        if (letter) {
            if (pending_zw && len > 0 && ascii_letter((unsigned char)o[len - 1]))
                st->zero_width_in_words++;
            word_ascii |= !glyph && cp < 0x80;
            word_glyph |= glyph;
        } else {
            st->homoglyph_words += word_ascii && word_glyph;
            word_ascii = word_glyph = false;
        }
        pending_zw = false;
        if (a) {
            map[len] = (uint32_t)i;
            o[len++] = (char)a;
        } else {
            for (int k = 0; k < cl; k++) {
                map[len] = (uint32_t)i;
                o[len++] = (char)s[i + k];
            }
        }
        i += (size_t)cl;
    }
    st->homoglyph_words += word_ascii && word_glyph;
    o[len] = 0;
    out->len = len;
    map[len] = (uint32_t)n;
    *map_out = map;
    return 0;
}
