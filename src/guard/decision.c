/* Decisions as one line of JSON (docs/guard.md, "Decision JSON"). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* A JSON string of s[0..n); bytes that are not UTF-8 become U+FFFD rather than failing. */
static json_t *text_json(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    al_buf clean = {0};
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = guard_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (cp == 0 ? al_buf_append(&clean, "\xef\xbf\xbd", 3)
                    : cp == 0xFFFD && len == 1 ? guard_utf8_put(&clean, 0xFFFD)
                                               : al_buf_append(&clean, s + i, (size_t)len)) {
            al_buf_free(&clean);
            return NULL;
        }
        i += (size_t)len;
    }
    j = json_stringn(clean.data ? clean.data : "", clean.len);
    al_buf_free(&clean);
    return j;
}

static json_t *score_json(float x) { return json_real(round((double)x * 1e4) / 1e4); }

int al_guard_decision_json(const al_guard_decision *d, al_buf *out)
{
    json_t *o = json_object(), *cats = json_array(), *scores = json_object(), *spans = json_array(),
           *reasons = json_array();
    int rc = !o || !cats || !scores || !spans || !reasons;
    rc |= json_object_set_new(o, "action", json_string(al_guard_action_name(d->action)));
    rc |= json_object_set_new(o, "category", d->category >= 0 ? json_string(al_guard_category_name(d->category))
                                                              : json_null());
    for (int c = 0; c < AL_GCAT_COUNT; c++) {
        if (d->triggered[c])
            rc |= json_array_append_new(cats, json_string(al_guard_category_name(c)));
        if (d->ran[c])
            rc |= json_object_set_new(scores, al_guard_category_name(c), score_json(d->scores[c]));
    }
    for (int i = 0; i < d->n_spans; i++) {
        const al_guard_span *s = &d->spans[i];
        json_t *js = json_object();
        rc |= !js;
        rc |= json_object_set_new(js, "start", json_integer((json_int_t)s->start));
        rc |= json_object_set_new(js, "end", json_integer((json_int_t)s->end));
        rc |= json_object_set_new(js, "category", json_string(al_guard_category_name(s->category)));
        rc |= json_object_set_new(js, "label", text_json(s->label, strlen(s->label)));
        if (s->via)
            rc |= json_object_set_new(js, "via", json_string(s->via));
        rc |= json_object_set_new(js, "score", score_json(s->score));
        rc |= json_array_append_new(spans, js);
    }
    for (int i = 0; i < d->n_reasons; i++)
        rc |= json_array_append_new(reasons, json_string(d->reasons[i]));
    rc |= json_object_set_new(o, "categories", cats);
    rc |= json_object_set_new(o, "scores", scores);
    rc |= json_object_set_new(o, "spans", spans);
    rc |= json_object_set_new(o, "reasons", reasons);
    if (d->reply)
        rc |= json_object_set_new(o, "reply", text_json(d->reply, strlen(d->reply)));
    if (d->redacted)
        rc |= json_object_set_new(o, "redacted", text_json(d->redacted, d->redacted_len));
    char *s = rc ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s)
        return al_fail("out of memory writing a decision");
    rc = al_buf_append(out, s, strlen(s));
    free(s);
    return rc;
}
