/* Prompt sets: JSONL of {"prompt", "kind", "category"}, one record per line. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"

static const char *const kind_names[AL_KIND_COUNT] = {"harmful", "benign", "contrast", "other"};

const char *al_prompt_kind_name(al_prompt_kind k)
{
    return (int)k >= 0 && k < AL_KIND_COUNT ? kind_names[k] : "?";
}

void al_prompt_set_free(al_prompt_set *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->p[i].prompt);
        free(s->p[i].category);
    }
    free(s->p);
    memset(s, 0, sizeof *s);
}

static int parse_record(const char *line, size_t len, al_prompt *p)
{
    json_error_t e;
    json_t *o = json_loadb(line, len, 0, &e);
    if (!o)
        return al_fail("invalid JSON at column %d: %s", e.column, e.text);
    int rc = 0;
    json_t *prompt = json_object_get(o, "prompt"), *kind = json_object_get(o, "kind"),
           *cat = json_object_get(o, "category");
    p->kind = AL_KIND_OTHER;
    if (!json_is_object(o))
        rc = al_fail("expected a JSON object");
    else if (!json_is_string(prompt))
        rc = al_fail("\"prompt\": expected a string");
    else if (kind && !json_is_string(kind))
        rc = al_fail("\"kind\": expected a string");
    else if (cat && !json_is_string(cat))
        rc = al_fail("\"category\": expected a string");
    if (rc == 0 && kind) {
        const char *k = json_string_value(kind);
        int found = -1;
        for (int i = 0; i < AL_KIND_COUNT; i++)
            if (!strcmp(k, kind_names[i]))
                found = i;
        if (found < 0)
            rc = al_fail("\"kind\": expected \"harmful\", \"benign\", \"contrast\" or \"other\", got \"%s\"", k);
        else
            p->kind = (al_prompt_kind)found;
    }
    if (rc == 0) {
        p->prompt = strdup(json_string_value(prompt));
        p->category = strdup(cat ? json_string_value(cat) : "");
        if (!p->prompt || !p->category)
            rc = al_fail("out of memory");
    }
    json_decref(o);
    return rc;
}

int al_prompt_set_load(al_prompt_set *s, const char *path)
{
    memset(s, 0, sizeof *s);
    al_buf text = {0};
    if (al_read_file(path, &text))
        return -1;
    int cap = 0, rc = 0;
    long lineno = 0;
    for (char *line = text.data; rc == 0 && line && *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        lineno++;
        if (strspn(line, " \t\r") < len) {
            if (s->n == cap) {
                cap = cap ? 2 * cap : 64;
                al_prompt *grown = realloc(s->p, (size_t)cap * sizeof *grown);
                if (!grown) {
                    rc = al_fail("out of memory");
                    break;
                }
                s->p = grown;
            }
            memset(&s->p[s->n], 0, sizeof s->p[s->n]);
            if (parse_record(line, len, &s->p[s->n])) {
                free(s->p[s->n].prompt);
                free(s->p[s->n].category);
                rc = al_fail_prefix("%s:%ld", path, lineno);
            } else {
                s->n++;
            }
        }
        line = end ? end + 1 : NULL;
    }
    al_buf_free(&text);
    if (rc == 0 && s->n == 0)
        rc = al_fail("%s: no prompts (expected JSON lines with a \"prompt\" string)", path);
    if (rc)
        al_prompt_set_free(s);
    return rc;
}
