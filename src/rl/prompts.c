/* The prompts online RL samples from: TRL's prompt-only formats, rendered as the policy
 * will see them. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

void rl_prompts_free(rl_prompts *ps)
{
    for (int i = 0; i < ps->n; i++) {
        free(ps->p[i].text);
        free(ps->p[i].query);
        free(ps->p[i].record);
        al_ints_free(&ps->p[i].ids);
    }
    free(ps->p);
    *ps = (rl_prompts){0};
}

static int parse_role(const char *s, al_role *r)
{
    static const char *const names[] = {"system", "user", "assistant"};
    for (int k = 0; k < 3; k++)
        if (s && !strcmp(s, names[k]))
            return *r = (al_role)k, 0;
    return -1;
}

/* A message list up to (and including) its last user turn, rendered with the generation
 * prompt; query gets that user turn's content. */
static int render_messages(const json_t *list, const al_chat_template *t, al_buf *text, char **query,
                           const char *where)
{
    size_t n = json_array_size(list);
    al_message *m = calloc(n ? n : 1, sizeof *m);
    if (!m)
        return al_fail("out of memory");
    int last_user = -1, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *e = json_array_get(list, i);
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *content = json_string_value(json_object_get(e, "content"));
        if (!content || parse_role(role, &m[i].role))
            rc = al_fail("%s: message %zu: expected {\"role\": \"system\"|\"user\"|\"assistant\", \"content\": "
                         "string}", where, i + 1);
        else if ((m[i].content = (char *)content), m[i].role == AL_ROLE_USER)
            last_user = (int)i;
    }
    if (rc == 0 && last_user < 0)
        rc = al_fail("%s: the prompt has no user message", where);
    if (rc == 0)
        rc = al_chat_render(t, m, last_user + 1, true, text, NULL, NULL);
    if (rc == 0 && !(*query = strdup(m[last_user].content)))
        rc = al_fail("out of memory");
    free(m);
    return rc;
}

static int add_prompt(rl_prompts *ps, const json_t *rec, const char *line, const al_chat_template *t,
                      const al_tokenizer *tok, int max_len, const char *where)
{
    const json_t *prompt = json_object_get(rec, "prompt");
    const json_t *messages = prompt ? NULL : json_object_get(rec, "messages");
    al_buf text = {0};
    char *query = NULL;
    int rc = 0;
    if (json_is_string(prompt)) {
        rc = al_buf_append(&text, json_string_value(prompt), json_string_length(prompt));
        query = strdup(json_string_value(prompt));
        rc = rc ? rc : query ? 0 : al_fail("out of memory");
    } else if (json_is_array(prompt) || json_is_array(messages)) {
        rc = render_messages(prompt ? prompt : messages, t, &text, &query, where);
    } else {
        rc = al_fail("%s: expected \"prompt\" (a string or a message list) or \"messages\"", where);
    }
    rl_prompt p = {0};
    if (rc == 0)
        rc = al_buf_append(&text, "", 0); /* NUL-terminate */
    if (rc == 0 && !(p.record = strdup(line)))
        rc = al_fail("out of memory");
    if (rc == 0)
        rc = al_tokenizer_encode(tok, text.data, text.len, al_tokenizer_bos(tok) >= 0, false,
                                 &p.ids);
    if (rc == 0 && p.ids.n == 0)
        rc = al_fail("%s: the prompt is empty", where);
    if (rc == 0 && p.ids.n > max_len) { /* keep the end: the question and the generation prompt */
        memmove(p.ids.v, p.ids.v + (p.ids.n - max_len), (size_t)max_len * sizeof(int));
        p.ids.n = max_len;
    }
    if (rc == 0) {
        rl_prompt *grown = realloc(ps->p, (size_t)(ps->n + 1) * sizeof *grown);
        if (!grown) {
            rc = al_fail("out of memory");
        } else {
            ps->p = grown;
            p.text = text.data, p.query = query;
            ps->p[ps->n++] = p;
            return 0;
        }
    }
    al_buf_free(&text);
    free(query);
    free(p.record);
    al_ints_free(&p.ids);
    return rc;
}

int rl_prompts_load(rl_prompts *ps, const char *path, const al_chat_template *t, const al_tokenizer *tok,
                    int max_len, int max_prompts)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        return -1;
    int rc = al_buf_append(&b, "", 0), line_no = 0;
    for (char *line = b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        if (max_prompts > 0 && ps->n >= max_prompts)
            break;
        char where[1100];
        snprintf(where, sizeof where, "%.1000s:%d", path, line_no);
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        rc = !rec                 ? al_fail("%s:%d: %s", where, err.column, err.text)
             : !json_is_object(rec) ? al_fail("%s: expected a JSON object", where)
                                    : add_prompt(ps, rec, line, t, tok, max_len, where);
        json_decref(rec);
    }
    al_buf_free(&b);
    if (rc == 0 && ps->n == 0)
        rc = al_fail("%s: no prompts", path);
    if (rc)
        rl_prompts_free(ps);
    return rc;
}
