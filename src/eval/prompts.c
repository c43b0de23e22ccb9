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

void al_prompt_free(al_prompt *p)
{
    for (int t = 0; t < p->n_history; t++)
        free(p->history[t].role), free(p->history[t].content);
    free(p->history), free(p->prompt), free(p->category);
    memset(p, 0, sizeof *p);
}

void al_prompt_set_free(al_prompt_set *s)
{
    for (int i = 0; i < s->n; i++)
        al_prompt_free(&s->p[i]);
    free(s->p);
    memset(s, 0, sizeof *s);
}

/* A conversational prompt: messages ending with the user's; the others become history. */
static int parse_conversation(json_t *msgs, al_prompt *p)
{
    const size_t n = json_array_size(msgs);
    if (n == 0)
        return al_fail("\"prompt\": an empty message list");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content)
            return al_fail("\"prompt\"[%zu]: expected {\"role\", \"content\"} strings", i);
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return al_fail("\"prompt\"[%zu]: role \"%s\" (expected system, user or assistant)", i, role);
        if (i == n - 1 && strcmp(role, "user"))
            return al_fail("\"prompt\": the last message is the %s's; expected the user's", role);
    }
    p->history = n > 1 ? calloc(n - 1, sizeof *p->history) : NULL;
    if (n > 1 && !p->history)
        return al_fail("out of memory");
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *m = json_array_get(msgs, i);
        al_prompt_turn *t = &p->history[p->n_history++];
        t->role = strdup(json_string_value(json_object_get(m, "role")));
        t->content = strdup(json_string_value(json_object_get(m, "content")));
        if (!t->role || !t->content)
            return al_fail("out of memory");
    }
    p->prompt = strdup(json_string_value(json_object_get(json_array_get(msgs, n - 1), "content")));
    return p->prompt ? 0 : al_fail("out of memory");
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
    else if (!json_is_string(prompt) && !json_is_array(prompt))
        rc = al_fail("\"prompt\": expected a string or a list of messages");
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
    if (rc == 0 && json_is_array(prompt))
        rc = parse_conversation(prompt, p);
    else if (rc == 0 && !(p->prompt = strdup(json_string_value(prompt))))
        rc = al_fail("out of memory");
    if (rc == 0 && !(p->category = strdup(cat ? json_string_value(cat) : "")))
        rc = al_fail("out of memory");
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
                al_prompt_free(&s->p[s->n]);
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
