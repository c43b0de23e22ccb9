/* libFuzzer target: every decoder and encoder on arbitrary bytes, the exact round trips,
 * and the input rails end to end (fold, words, patterns, nested decoding). */
#include <stdlib.h>
#include <string.h>

#include "align/guard.h"

static al_guard *guard(void)
{
    static al_guard *g;
    if (!g) {
        /* a small size limit so the fuzzer reaches the oversize path too */
        const char *yaml = "max_input_bytes: 2048\nrails: {input: [decode, injection, roleplay, toxicity]}\n";
        al_guard_policy p;
        if (al_guard_policy_parse(yaml, strlen(yaml), "fuzz", &p) || !(g = al_guard_open(&p)))
            abort();
        al_guard_policy_free(&p);
    }
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    for (int c = 0; c < AL_CODEC_COUNT; c++) {
        al_buf d = {0}, e = {0}, back = {0};
        al_decode((al_codec)c, s, size, &d);
        if (al_encode((al_codec)c, s, size, &e) == 0 && al_decode((al_codec)c, e.data ? e.data : "", e.len, &back) == 0) {
            bool exact = c == AL_CODEC_BASE64 || c == AL_CODEC_HEX || c == AL_CODEC_ROT13;
            if (exact && (back.len != size || (size && memcmp(back.data, s, size) != 0)))
                abort(); /* a byte-exact codec lost something */
        }
        al_buf_free(&d);
        al_buf_free(&e);
        al_buf_free(&back);
    }
    al_guard_decision dec;
    if (al_guard_check_input(guard(), s, size, &dec) == 0) {
        for (int i = 0; i < dec.n_spans; i++)
            if (dec.spans[i].start > dec.spans[i].end || dec.spans[i].end > size)
                abort(); /* spans must lie inside the text */
        al_buf j = {0};
        if (al_guard_decision_json(&dec, &j))
            abort();
        al_buf_free(&j);
        al_guard_decision_free(&dec);
    }
    return 0;
}
