/* Redaction of found spans: a mask that keeps the shape, a type tag, or a salted hash
 * that lets the same value be recognised again without being readable. */
#include <string.h>

#include "align/guard.h"

static const char *const mode_names[] = {"mask", "tag", "hash"};

const char *al_redact_mode_name(al_redact_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "?";
}

int al_redact_mode_parse(const char *name, al_redact_mode *out)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, mode_names[i]) == 0) {
            *out = (al_redact_mode)i;
            return 0;
        }
    return al_fail("unknown redaction mode '%s' (mask, tag, hash)", name ? name : "(null)");
}

static int mask(const char *s, size_t n, al_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        bool alnum = (c | 32) - 'a' < 26 || c - '0' < 10;
        if ((c & 0xC0) == 0x80) /* a multi-byte character masks to one '*' */
            continue;
        char m = alnum || c >= 0x80 ? '*' : (char)c;
        if (al_buf_append(out, &m, 1))
            return -1;
    }
    return 0;
}

int al_redact(const char *text, size_t n, const al_redact_span *spans, int n_spans,
              al_redact_mode mode, const char *salt, al_buf *out)
{
    size_t at = 0;
    for (int i = 0; i < n_spans; i++) {
        const al_redact_span *sp = &spans[i];
        if (sp->start < at || sp->end > n || sp->end < sp->start)
            return al_fail("redaction span %d [%zu, %zu) is out of order or outside the text", i,
                           sp->start, sp->end);
        if (al_buf_append(out, text + at, sp->start - at))
            return -1;
        const char *tag = sp->tag ? sp->tag : "REDACTED";
        int rc;
        if (mode == AL_REDACT_MASK) {
            rc = mask(text + sp->start, sp->end - sp->start, out);
        } else if (mode == AL_REDACT_TAG) {
            rc = al_buf_printf(out, "[%s]", tag);
        } else {
            uint8_t mac[32];
            const char *key = salt ? salt : "";
            al_hmac_sha256(key, strlen(key), text + sp->start, sp->end - sp->start, mac);
            rc = al_buf_printf(out, "[%s:", tag);
            for (int b = 0; b < 8 && rc == 0; b++)
                rc = al_buf_printf(out, "%02x", mac[b]);
            if (rc == 0)
                rc = al_buf_append(out, "]", 1);
        }
        if (rc)
            return -1;
        at = sp->end;
    }
    return al_buf_append(out, text + at, n - at);
}
