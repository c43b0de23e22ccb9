/* The encodings of the attack transforms.  The guard's codecs (base64, hex, ROT13,
 * leetspeak, pig Latin, confusables, zero-width) are reused through its public API, so an
 * attack and the guard's decode rail read the same forms; Atbash, Morse and the invented
 * cipher are here. */
#include <ctype.h>
#include <string.h>

#include "align/guard.h"
#include "redteam_internal.h"

/* ---- Atbash: a <-> z, case kept ---- */

static int atbash(const char *in, al_buf *out)
{
    int rc = 0;
    for (const char *p = in; rc == 0 && *p; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)('z' - (c - 'a'));
        else if (c >= 'A' && c <= 'Z')
            c = (char)('Z' - (c - 'A'));
        rc = al_buf_append(out, &c, 1);
    }
    return rc;
}

/* ---- Morse: letters apart by spaces, words by " / " ---- */

static const struct {
    char c;
    const char *code;
} morse[] = {
    {'a', ".-"},     {'b', "-..."},   {'c', "-.-."},   {'d', "-.."},    {'e', "."},      {'f', "..-."},
    {'g', "--."},    {'h', "...."},   {'i', ".."},     {'j', ".---"},   {'k', "-.-"},    {'l', ".-.."},
    {'m', "--"},     {'n', "-."},     {'o', "---"},    {'p', ".--."},   {'q', "--.-"},   {'r', ".-."},
    {'s', "..."},    {'t', "-"},      {'u', "..-"},    {'v', "...-"},   {'w', ".--"},    {'x', "-..-"},
    {'y', "-.--"},   {'z', "--.."},   {'0', "-----"},  {'1', ".----"},  {'2', "..---"},  {'3', "...--"},
    {'4', "....-"},  {'5', "....."},  {'6', "-...."},  {'7', "--..."},  {'8', "---.."},  {'9', "----."},
    {'.', ".-.-.-"}, {',', "--..--"}, {'?', "..--.."}, {'\'', ".----."}, {'!', "-.-.--"}, {'-', "-....-"},
    {'/', "-..-."},  {'(', "-.--."},  {')', "-.--.-"}, {':', "---..."}, {';', "-.-.-."}, {'"', ".-..-."},
};
#define N_MORSE ((int)(sizeof morse / sizeof *morse))

static int morse_encode(const char *in, al_buf *out)
{
    int rc = 0;
    bool first = true;
    for (const char *p = in; rc == 0 && *p; p++) {
        if (*p == ' ') {
            rc = al_buf_append(out, " /", 2);
            continue;
        }
        char c = (char)tolower((unsigned char)*p);
        int k = 0;
        while (k < N_MORSE && morse[k].c != c)
            k++;
        if (k == N_MORSE) /* no code: the character stands for itself */
            rc = al_buf_printf(out, "%s%c", first ? "" : " ", *p);
        else
            rc = al_buf_printf(out, "%s%s", first ? "" : " ", morse[k].code);
        first = false;
    }
    return rc;
}

static int morse_decode(const char *in, al_buf *out)
{
    int rc = 0;
    const char *p = in;
    while (rc == 0 && *p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " ");
        if (n == 1 && *p == '/') {
            rc = al_buf_append(out, " ", 1);
        } else {
            int k = 0;
            while (k < N_MORSE && (strlen(morse[k].code) != n || strncmp(morse[k].code, p, n)))
                k++;
            rc = k < N_MORSE ? al_buf_append(out, &morse[k].c, 1) : al_buf_append(out, p, n);
        }
        p += n;
    }
    return rc;
}

/* ---- the invented cipher: a permutation of the 26 letters from the seed ---- */

static void cipher_key(uint64_t seed, char key[26])
{
    uint64_t s = al_mix64(seed ^ 0xC1F3E5ull) | 1;
    for (int i = 0; i < 26; i++)
        key[i] = (char)('a' + i);
    for (int i = 25; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(al_xorshift_u32(&s) % (uint32_t)(i + 1));
        char t = key[i];
        key[i] = key[j], key[j] = t;
    }
}

int redteam_cipher_table(uint64_t seed, al_buf *out)
{
    char key[26];
    cipher_key(seed, key);
    int rc = 0;
    for (int i = 0; rc == 0 && i < 26; i++) /* plain letter, then its cipher letter */
        rc = al_buf_printf(out, "%s%c=%c", i ? " " : "", key[i], 'a' + i);
    return rc;
}

/* plain letter i -> key[i] when encoding; key[i] -> letter i when decoding; case kept */
static int cipher(const char *in, uint64_t seed, bool decode, al_buf *out)
{
    char key[26], map[26];
    cipher_key(seed, key);
    for (int i = 0; i < 26; i++) {
        if (decode)
            map[key[i] - 'a'] = (char)('a' + i);
        else
            map[i] = key[i];
    }
    int rc = 0;
    for (const char *p = in; rc == 0 && *p; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = map[c - 'a'];
        else if (c >= 'A' && c <= 'Z')
            c = (char)toupper((unsigned char)map[c - 'A']);
        rc = al_buf_append(out, &c, 1);
    }
    return rc;
}

/* the guard's codec for an attack, or -1 */
static int guard_codec(al_attack a)
{
    switch (a) {
    case AL_ATTACK_BASE64: return AL_CODEC_BASE64;
    case AL_ATTACK_HEX: return AL_CODEC_HEX;
    case AL_ATTACK_ROT13: return AL_CODEC_ROT13;
    case AL_ATTACK_LEETSPEAK: return AL_CODEC_LEETSPEAK;
    case AL_ATTACK_PIG_LATIN: return AL_CODEC_PIG_LATIN;
    case AL_ATTACK_HOMOGLYPH: return AL_CODEC_CONFUSABLES;
    case AL_ATTACK_ZERO_WIDTH: return AL_CODEC_ZERO_WIDTH;
    default: return -1;
    }
}

static int code(al_attack a, const char *text, uint64_t seed, bool decode, al_buf *out)
{
    if (!text)
        return al_fail("attack %s: no text", al_attack_name(a));
    int gc = guard_codec(a);
    if (gc >= 0)
        return decode ? al_decode((al_codec)gc, text, strlen(text), out) : al_encode((al_codec)gc, text, strlen(text), out);
    switch (a) {
    case AL_ATTACK_ATBASH: return atbash(text, out); /* its own inverse */
    case AL_ATTACK_MORSE: return decode ? morse_decode(text, out) : morse_encode(text, out);
    case AL_ATTACK_CIPHER: return cipher(text, seed, decode, out);
    default: return al_fail("attack %s is not an encoding", al_attack_name(a));
    }
}

int al_attack_encode(al_attack a, const char *text, uint64_t seed, al_buf *out)
{
    return code(a, text, seed, false, out);
}

int al_attack_decode(al_attack a, const char *text, uint64_t seed, al_buf *out)
{
    return code(a, text, seed, true, out);
}
