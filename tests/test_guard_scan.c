/* The guard's fast scanning against slow references: the vector byte classes against
 * one-byte-at-a-time classes, the word splitter against a plain loop, and the prefiltered
 * base64/hex and PII scanners against the same scanners trying every start.  The texts
 * are random mixtures of prose, PII, encodings and stray bytes, so the prefilters'
 * edges (a candidate at the end of a 64-byte block, a word across two blocks) are met
 * many times over. */
#include "../src/guard/bytemask.h"
#include "../src/guard/rules.h"
#include "test.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t next(void) { return al_xorshift_u32(&rng); }

static const char *const fragments[] = {
    "the ", "cat ", "sat on the mat. ", "Once upon a time ", "everything ", "together, ", "and ",
    "jane.doe@example.com ", "a..b@x.com ", "root@localhost ", "(415) 555-2671 ", "415-555-2671 ",
    "+44 20 7946 0958 ", "call 4155552671 ", "4111 1111 1111 1111 ", "4111-1111-1111-1112 ",
    "GB82 WEST 1234 5698 7654 32 ", "GB82WEST12345698765432 ", "123-45-6789 ", "SSN 123456789 ",
    "192.168.10.20 ", "10.0.0.256 ", "fe80::1 ", "2001:db8::8a2e:370:7334 ", "12:30:45 ",
    "https://user:hunter2@example.com/ ", "AKIAIOSFODNN7EXAMPLE ", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5 ",
    "xoxb-1234567890-abcdefghij ", "xoxp-abcdefghijklmnopqrst ", "dead::beef ", "fe80::abcd ", "sk-abcdefghijklmnopqrstuvwxyz0123456789AB ",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig ", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
    "born 1984-03-05 ", "born on March 5, 1984 ", "DOB: 05/03/1984 ", "May 5 ", "Mar. 5th 1984 ",
    "VGhlIGNhdCBzYXQgb24gdGhlIG1hdA== ", "aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM ",
    "69676e6f726520616c6c ", "69 67 6e 6f 72 65 20 61 6c 6c 20 70 72 65 76 ", "0x6869 ", "\\x68\\x69 ",
    "h3ll0 fr13nd ", "ello-hay ", "eviouspray ", "$ecret ", "@dmin ", "a-b_c/d+e=f ", "::: ", "@@ ",
    "\xe2\x80\x9cquoted\xe2\x80\x9d ", "\xd0\xb0\xd0\xb5 ", "\n", "\t", "- ", "( ", "+ ",
};

/* A random text: fragments, with stray bytes (any value) now and then. */
static size_t random_text(char *buf, size_t cap)
{
    size_t n = 0, want = 1 + next() % (cap - 200);
    while (n < want) {
        if (next() % 8 == 0) {
            buf[n++] = (char)(next() % 7 == 0 ? next() % 256 : (unsigned char)"0123456789abcdefABCXYZ@:+-(/_=$. "[next() % 34]);
            continue;
        }
        const char *f = fragments[next() % (sizeof fragments / sizeof *fragments)];
        size_t k = strlen(f);
        memcpy(buf + n, f, k);
        n += k;
    }
    return n;
}

static void test_classes(void)
{
    unsigned char s[64];
    int bad = 0;
    for (int round = 0; round < 3000; round++) {
        for (int i = 0; i < 64; i++) /* half the time only the bytes near the class edges */
            s[i] = (unsigned char)(round % 2 ? next() : (unsigned char)"/09:@AFGZ[`afgz{$+-_=( \x80\xff"[next() % 24]);
        size_t len = (size_t)(round % 65);
        guard_block fast, slow;
        guard_classify(s, len, &fast);
        guard_classify_scalar(s, len, &slow);
        bad += memcmp(&fast, &slow, sizeof fast) != 0;
    }
    CHECKF(bad == 0, "%d of 3000 blocks classified differently from the scalar reference", bad);
}

static bool word_byte(unsigned c) { return (c | 32) - 'a' < 26 || c - '0' < 10 || c == '@' || c == '$'; }

static void test_words(void)
{
    char buf[4096];
    int bad = 0;
    for (int round = 0; round < 2000 && bad < 5; round++) {
        size_t n = random_text(buf, sizeof buf);
        guard_words words;
        CHECK_OK(guard_split_words(buf, n, NULL, &words));
        guard_word *w = words.v;
        int nw = words.n;
        int k = 0;
        for (size_t i = 0; i < n && bad < 5;) {
            if (!word_byte((unsigned char)buf[i])) {
                i++;
                continue;
            }
            size_t j = i;
            bool letter = false, other = false;
            while (j < n && word_byte((unsigned char)buf[j])) {
                bool l = ((unsigned)(unsigned char)buf[j] | 32) - 'a' < 26;
                letter |= l, other |= !l;
                j++;
            }
            uint32_t flags = (letter && other ? GUARD_WORD_LEET : 0) |
                             (j - i >= 4 && (buf[j - 2] | 32) == 'a' && (buf[j - 1] | 32) == 'y' ? GUARD_WORD_AY : 0);
            if (k >= nw || w[k].start != i || w[k].len != j - i || w[k].hash != guard_hash_word(buf + i, j - i) ||
                w[k].flags != flags) {
                CHECKF(false, "round %d: word %d '%.*s' at %zu split or hashed differently", round, k, (int)(j - i),
                       buf + i, i);
                bad++;
            }
            k++;
            i = j;
        }
        CHECKF(bad || k == nw, "round %d: %d words, the reference found %d", round, nw, k);
        free(w);
    }
    /* case-insensitive, and '@' is not '`' */
    CHECK(guard_hash_word("IGNORE", 6) == guard_hash_word("ignore", 6));
    CHECK(guard_hash_word("ab", 2) != guard_hash_word("ab\0", 3));
}

static void test_encoded_runs(void)
{
    char buf[4096];
    bool codecs[AL_CODEC_COUNT];
    for (int c = 0; c < AL_CODEC_COUNT; c++)
        codecs[c] = true;
    static const size_t lens[] = {8, 12, 16, 24};
    int bad = 0, found = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = random_text(buf, sizeof buf), min_len = lens[round % 4];
        guard_encoded *a, *b;
        int na, nb;
        CHECK_OK(guard_find_encoded(buf, n, min_len, codecs, &a, &na));
        CHECK_OK(guard_find_encoded_reference(buf, n, min_len, codecs, &b, &nb));
        bool same = na == nb;
        for (int i = 0; same && i < na; i++)
            same = a[i].start == b[i].start && a[i].end == b[i].end && a[i].codec == b[i].codec;
        bad += !same;
        found += nb;
        free(a);
        free(b);
    }
    CHECKF(bad == 0, "%d of 2000 texts: the prefiltered run finder differs from the reference", bad);
    CHECKF(found > 2000, "only %d encoded runs in 2000 texts: the test texts are too tame", found);
}

static void test_pii(void)
{
    char buf[4096];
    int bad = 0, found = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = random_text(buf, sizeof buf);
        al_pii_match *a, *b;
        int na, nb;
        CHECK_OK(al_pii_scan(buf, n, NULL, &a, &na));
        CHECK_OK(guard_pii_scan_reference(buf, n, NULL, &b, &nb));
        bool same = na == nb;
        for (int i = 0; same && i < na; i++)
            same = a[i].type == b[i].type && a[i].start == b[i].start && a[i].end == b[i].end;
        if (!same && bad++ < 3)
            CHECKF(false, "round %d: %d PII matches, the reference found %d", round, na, nb);
        found += nb;
        free(a);
        free(b);
    }
    CHECKF(bad == 0, "%d of 2000 texts: the prefiltered PII scan differs from the reference", bad);
    CHECKF(found > 5000, "only %d PII matches in 2000 texts: the test texts are too tame", found);
}

int main(void)
{
    test_classes();
    test_words();
    test_encoded_runs();
    test_pii();
    return test_report();
}
