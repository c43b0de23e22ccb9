/* libFuzzer target: the PII scanner's matches are in order, inside the text and do not
 * overlap, and are exactly what the scanner finds without its prefilter (trying every
 * start); so are the base64/hex runs; every redaction mode accepts the matches; the
 * output rails decide any bytes. */
#include <stdlib.h>
#include <string.h>

#include "../src/guard/rules.h"
#include "align/guard.h"

static al_guard *guard(void)
{
    static al_guard *g;
    if (!g) {
        /* the rule rails only: the built-in harm rail's model is not built for the fuzzers */
        const char *yaml = "max_input_bytes: 4096\nrails: {input: [decode, injection, roleplay]}\n"
                           "constitution: {deny_terms: [secret project], escalation_phrases: [call us],"
                           " escalation_when: [refund]}\n";
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
    al_pii_match *m = NULL;
    int n = 0;
    if (al_pii_scan(s, size, NULL, &m, &n))
        abort();
    al_pii_match *ref = NULL;
    int n_ref = 0;
    if (guard_pii_scan_reference(s, size, NULL, &ref, &n_ref) || n_ref != n)
        abort();
    for (int i = 0; i < n; i++)
        if (ref[i].type != m[i].type || ref[i].start != m[i].start || ref[i].end != m[i].end)
            abort();
    free(ref);
    bool codecs[AL_CODEC_COUNT];
    for (int c = 0; c < AL_CODEC_COUNT; c++)
        codecs[c] = true;
    for (size_t min_len = 8; min_len <= 16; min_len += 8) {
        guard_encoded *a = NULL, *b = NULL;
        int na = 0, nb = 0;
        if (guard_find_encoded(s, size, min_len, codecs, &a, &na) ||
            guard_find_encoded_reference(s, size, min_len, codecs, &b, &nb) || na != nb)
            abort();
        for (int i = 0; i < na; i++)
            if (a[i].start != b[i].start || a[i].end != b[i].end || a[i].codec != b[i].codec)
                abort();
        free(a);
        free(b);
    }
    al_redact_span *sp = calloc((size_t)n + 1, sizeof *sp);
    for (int i = 0; i < n; i++) {
        if (m[i].start >= m[i].end || m[i].end > size || (i && m[i].start < m[i - 1].end))
            abort();
        sp[i] = (al_redact_span){m[i].start, m[i].end, al_pii_tag(m[i].type)};
    }
    for (int mode = 0; mode < 3; mode++) {
        al_buf out = {0};
        if (al_redact(s, size, sp, n, (al_redact_mode)mode, "salt", &out))
            abort();
        al_buf_free(&out);
    }
    free(sp);
    free(m);
    al_guard_decision d;
    if (al_guard_check_output(guard(), "refund", 6, s, size, &d) == 0) {
        al_buf j = {0};
        if (al_guard_decision_json(&d, &j))
            abort();
        al_buf_free(&j);
        al_guard_decision_free(&d);
    }
    return 0;
}
