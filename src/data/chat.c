/* Chat templates (ChatML, Llama-2, template files), rendering with per-message spans,
 * and tokenization with loss masks.  Format and rules: docs/chat_templates.md.
 *
 * Tokenization renders the whole conversation, cuts the text at the template's marker
 * strings that the tokenizer has as single ids, encodes the text between them (as a
 * continuation: no dummy-prefix space except at the very start), then walks the tokens'
 * bytes along the text to give every token its [start, end) byte range.  A token counts
 * in the loss when its range overlaps a selected span (as Hugging Face's
 * return_assistant_tokens_mask does with character offsets). */
#include "align/data.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum { TPL_GENERIC, TPL_LLAMA2 };
enum { N_ROLES = 3 };

struct al_chat_template {
    char name[64];
    const char *builtin; /* "chatml" or "llama2" when made by al_chat_template_builtin */
    int kind;
    char *prefix[N_ROLES], *suffix[N_ROLES], *trailer[N_ROLES];
    char *gen_prompt;
    char **specials;
    int n_specials;
    bool bos;          /* prepend the tokenizer's BOS */
    bool eos;          /* the tokenizer's EOS after the last assistant turn */
    char *bos_marker;  /* marker text that stands for the tokenizer's BOS (NULL: none) */
    char *eos_marker;
};

static const char *role_name[N_ROLES] = {"system", "user", "assistant"};

/* ---- construction ---- */

static char *dup_str(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        al_fail("out of memory");
    return d;
}

void al_chat_template_free(al_chat_template *t)
{
    if (!t)
        return;
    for (int r = 0; r < N_ROLES; r++) {
        free(t->prefix[r]);
        free(t->suffix[r]);
        free(t->trailer[r]);
    }
    free(t->gen_prompt);
    for (int i = 0; i < t->n_specials; i++)
        free(t->specials[i]);
    free(t->specials);
    free(t->bos_marker);
    free(t->eos_marker);
    free(t);
}

static int add_special(al_chat_template *t, const char *s)
{
    for (int i = 0; i < t->n_specials; i++)
        if (!strcmp(t->specials[i], s))
            return 0;
    char **v = realloc(t->specials, ((size_t)t->n_specials + 1) * sizeof *v);
    if (!v)
        return al_fail("out of memory");
    t->specials = v;
    if (!(t->specials[t->n_specials] = dup_str(s)))
        return -1;
    t->n_specials++;
    return 0;
}

/* Fills every string that is still NULL with "". */
static int fill_defaults(al_chat_template *t)
{
    for (int r = 0; r < N_ROLES; r++) {
        if ((!t->prefix[r] && !(t->prefix[r] = dup_str(""))) || (!t->suffix[r] && !(t->suffix[r] = dup_str(""))) ||
            (!t->trailer[r] && !(t->trailer[r] = dup_str(""))))
            return -1;
    }
    if (!t->gen_prompt && !(t->gen_prompt = dup_str("")))
        return -1;
    return 0;
}

static al_chat_template *new_template(const char *name)
{
    al_chat_template *t = calloc(1, sizeof *t);
    if (!t) {
        al_fail("out of memory for a chat template");
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->bos = true;
    return t;
}

int al_chat_template_builtin(al_chat_template **out, const char *name)
{
    *out = NULL;
    if (!name || !*name)
        name = "chatml";
    al_chat_template *t;
    if (!strcmp(name, "chatml")) {
        if (!(t = new_template("chatml")))
            return -1;
        static const char *pre[N_ROLES] = {"<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n"};
        int rc = 0;
        for (int r = 0; r < N_ROLES && rc == 0; r++)
            if (!(t->prefix[r] = dup_str(pre[r])) || !(t->suffix[r] = dup_str("<|im_end|>")) ||
                !(t->trailer[r] = dup_str("\n")))
                rc = -1;
        if (rc == 0 && !(t->gen_prompt = dup_str("<|im_start|>assistant\n")))
            rc = -1;
        if (rc == 0)
            rc = add_special(t, "<|im_start|>") || add_special(t, "<|im_end|>") ? -1 : 0;
        if (rc) {
            al_chat_template_free(t);
            return -1;
        }
    } else if (!strcmp(name, "llama2")) {
        if (!(t = new_template("llama2")))
            return -1;
        t->kind = TPL_LLAMA2;
        t->bos = false; /* the template writes "<s>" before every [INST] itself */
        if (fill_defaults(t) || !(t->bos_marker = dup_str("<s>")) || !(t->eos_marker = dup_str("</s>")) ||
            add_special(t, "<s>") || add_special(t, "</s>")) {
            al_chat_template_free(t);
            return -1;
        }
    } else {
        return al_fail("unknown chat template '%s' (expected chatml or llama2, or a template file)", name);
    }
    t->builtin = t->kind == TPL_LLAMA2 ? "llama2" : "chatml";
    *out = t;
    return 0;
}

int al_chat_template_open(al_chat_template **out, const char *spec)
{
    if (!spec || !*spec || !strcmp(spec, "chatml") || !strcmp(spec, "llama2"))
        return al_chat_template_builtin(out, spec);
    return al_chat_template_load(out, spec);
}

const char *al_chat_template_builtin_name(const al_chat_template *t) { return t->builtin; }

bool al_chat_template_adds_bos(const al_chat_template *t) { return t->bos; }

const char *al_chat_template_name(const al_chat_template *t) { return t->name; }

int al_chat_template_specials(const al_chat_template *t, const char ***out, int *n)
{
    *out = (const char **)t->specials;
    *n = t->n_specials;
    return 0;
}

/* ---- template files ---- */

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Parses a double-quoted string with C escapes at s (which starts at the quote). */
static int parse_quoted(const char *s, const char *end, const char *path, int line, char **out)
{
    al_buf b = {0};
    const char *p = s + 1;
    int rc = 0;
    while (rc == 0) {
        if (p >= end) {
            rc = al_fail("%s:%d: unterminated string (expected a closing '\"')", path, line);
            break;
        }
        char c = *p++;
        if (c == '"')
            break;
        if (c != '\\') {
            rc = al_buf_append(&b, &c, 1);
            continue;
        }
        if (p >= end) {
            rc = al_fail("%s:%d: unterminated string (expected a closing '\"')", path, line);
            break;
        }
        char e = *p++, v;
        switch (e) {
        case 'n': v = '\n'; break;
        case 't': v = '\t'; break;
        case 'r': v = '\r'; break;
        case '\\': v = '\\'; break;
        case '"': v = '"'; break;
        case 'x': {
            int x = 0, k = 0;
            while (k < 2 && p < end && isxdigit((unsigned char)*p)) {
                x = x * 16 + (isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10));
                p++;
                k++;
            }
            if (k != 2 || x == 0) {
                rc = al_fail("%s:%d: expected two hex digits (not 00) after '\\x'", path, line);
                continue;
            }
            v = (char)x;
            break;
        }
        default:
            rc = al_fail("%s:%d: unknown escape '\\%c' (expected \\n, \\t, \\r, \\\\, \\\" or \\xHH)", path,
                         line, e);
            continue;
        }
        rc = al_buf_append(&b, &v, 1);
    }
    if (rc == 0) {
        while (p < end && is_blank(*p))
            p++;
        if (p < end && *p != '#')
            rc = al_fail("%s:%d: unexpected text after the closing quote (expected the end of the line)", path,
                         line);
    }
    if (rc == 0 && !b.data && al_buf_append(&b, "", 0))
        rc = -1;
    if (rc) {
        al_buf_free(&b);
        return -1;
    }
    *out = b.data;
    return 0;
}

static int parse_bool(const char *s, const char *end, const char *path, int line, bool *out)
{
    const char *hash = memchr(s, '#', (size_t)(end - s));
    if (hash)
        end = hash;
    while (end > s && is_blank(end[-1]))
        end--;
    size_t n = (size_t)(end - s);
    if (n == 4 && !memcmp(s, "true", 4))
        *out = true;
    else if (n == 5 && !memcmp(s, "false", 5))
        *out = false;
    else
        return al_fail("%s:%d: expected true or false", path, line);
    return 0;
}

static char **string_slot(al_chat_template *t, const char *key, size_t n)
{
    static const char *kinds[] = {"prefix", "suffix", "trailer"};
    for (int r = 0; r < N_ROLES; r++)
        for (int k = 0; k < 3; k++) {
            char name[40];
            snprintf(name, sizeof name, "%s_%s", role_name[r], kinds[k]);
            if (strlen(name) == n && !memcmp(name, key, n))
                return k == 0 ? &t->prefix[r] : k == 1 ? &t->suffix[r] : &t->trailer[r];
        }
    if (n == 17 && !memcmp(key, "generation_prompt", n))
        return &t->gen_prompt;
    if (n == 10 && !memcmp(key, "bos_marker", n))
        return &t->bos_marker;
    if (n == 10 && !memcmp(key, "eos_marker", n))
        return &t->eos_marker;
    return NULL;
}

static int parse_line(al_chat_template *t, const char *s, const char *end, const char *path, int line,
                      bool *seen_bos, bool *seen_eos)
{
    const char *k = s;
    while (s < end && (isalnum((unsigned char)*s) || *s == '_'))
        s++;
    size_t kn = (size_t)(s - k);
    while (s < end && is_blank(*s))
        s++;
    if (kn == 0 || s >= end || *s != '=')
        return al_fail("%s:%d: expected 'key = value'", path, line);
    s++;
    while (s < end && is_blank(*s))
        s++;
    if ((kn == 3 && !memcmp(k, "bos", 3)) || (kn == 3 && !memcmp(k, "eos", 3))) {
        bool *seen = k[0] == 'b' ? seen_bos : seen_eos;
        if (*seen)
            return al_fail("%s:%d: key '%.*s' given twice", path, line, (int)kn, k);
        *seen = true;
        return parse_bool(s, end, path, line, k[0] == 'b' ? &t->bos : &t->eos);
    }
    bool is_special = kn == 7 && !memcmp(k, "special", 7), is_name = kn == 4 && !memcmp(k, "name", 4);
    char **slot = is_special || is_name ? NULL : string_slot(t, k, kn);
    if (!slot && !is_special && !is_name)
        return al_fail("%s:%d: unknown key '%.*s' (expected name, {system,user,assistant}_{prefix,suffix,"
                       "trailer}, generation_prompt, special, bos, eos, bos_marker or eos_marker)",
                       path, line, (int)kn, k);
    if (slot && *slot)
        return al_fail("%s:%d: key '%.*s' given twice", path, line, (int)kn, k);
    if (s >= end || *s != '"')
        return al_fail("%s:%d: expected a double-quoted string after '='", path, line);
    char *v;
    if (parse_quoted(s, end, path, line, &v))
        return -1;
    int rc = 0;
    if (is_special) {
        rc = *v ? add_special(t, v) : al_fail("%s:%d: a special marker must not be empty", path, line);
        free(v);
    } else if (is_name) {
        snprintf(t->name, sizeof t->name, "%s", v);
        free(v);
    } else if (!*v && slot == &t->bos_marker) {
        free(v); /* empty: none */
    } else if (!*v && slot == &t->eos_marker) {
        free(v);
    } else {
        *slot = v;
    }
    return rc;
}

int al_chat_template_parse(al_chat_template **out, const char *text, size_t len, const char *path)
{
    *out = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    al_chat_template *t = new_template(base);
    int rc = t ? 0 : -1;
    bool seen_bos = false, seen_eos = false;
    size_t pos = 0;
    for (int line = 1; rc == 0 && pos < len; line++) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        const char *end = s + n;
        if (memchr(s, 0, n)) {
            rc = al_fail("%s:%d: NUL byte in a template file", path, line);
            break;
        }
        while (s < end && is_blank(*s))
            s++;
        if (s == end || *s == '#')
            continue;
        rc = parse_line(t, s, end, path, line, &seen_bos, &seen_eos);
    }
    if (rc == 0)
        rc = fill_defaults(t);
    if (rc) {
        al_chat_template_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int al_chat_template_load(al_chat_template **out, const char *path)
{
    *out = NULL;
    al_buf text = {0};
    if (al_read_file(path, &text))
        return -1;
    int rc = al_chat_template_parse(out, text.data ? text.data : "", text.len, path);
    al_buf_free(&text);
    return rc;
}

/* ---- writing a template back (template-file text and Hugging Face Jinja) ---- */

/* A template-file string literal: parse_quoted reads it back to the same bytes. */
static int put_quoted(al_buf *b, const char *s)
{
    int rc = al_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        unsigned char c = *p;
        if (c == '\n')
            rc = al_buf_append(b, "\\n", 2);
        else if (c == '\t')
            rc = al_buf_append(b, "\\t", 2);
        else if (c == '\r')
            rc = al_buf_append(b, "\\r", 2);
        else if (c == '\\' || c == '"')
            rc = al_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            rc = al_buf_printf(b, "\\x%02x", c);
        else
            rc = al_buf_append(b, p, 1);
    }
    return rc || al_buf_append(b, "\"\n", 2);
}

int al_chat_template_write(const al_chat_template *t, al_buf *out)
{
    if (t->kind == TPL_LLAMA2)
        return al_fail("chat template %s: the built-in llama2 template has no template-file form", t->name);
    static const char *kinds[] = {"prefix", "suffix", "trailer"};
    int rc = al_buf_printf(out, "name = ") || put_quoted(out, t->name);
    for (int r = 0; r < N_ROLES; r++)
        for (int k = 0; k < 3 && rc == 0; k++) {
            const char *v = k == 0 ? t->prefix[r] : k == 1 ? t->suffix[r] : t->trailer[r];
            if (*v)
                rc = al_buf_printf(out, "%s_%s = ", role_name[r], kinds[k]) || put_quoted(out, v);
        }
    if (rc == 0 && *t->gen_prompt)
        rc = al_buf_printf(out, "generation_prompt = ") || put_quoted(out, t->gen_prompt);
    for (int i = 0; i < t->n_specials && rc == 0; i++)
        rc = al_buf_printf(out, "special = ") || put_quoted(out, t->specials[i]);
    if (rc == 0)
        rc = al_buf_printf(out, "bos = %s\neos = %s\n", t->bos ? "true" : "false", t->eos ? "true" : "false");
    if (rc == 0 && t->bos_marker)
        rc = al_buf_printf(out, "bos_marker = ") || put_quoted(out, t->bos_marker);
    if (rc == 0 && t->eos_marker)
        rc = al_buf_printf(out, "eos_marker = ") || put_quoted(out, t->eos_marker);
    return rc ? -1 : 0;
}

/* A single-quoted Jinja string literal.  Braces are escaped too, so that a marker such as
 * "}}" can never end the surrounding {{ ... }} early. */
static int put_jinja_str(al_buf *b, const char *s)
{
    int rc = al_buf_append(b, "'", 1);
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        unsigned char c = *p;
        if (c == '\n')
            rc = al_buf_append(b, "\\n", 2);
        else if (c == '\\' || c == '\'')
            rc = al_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f || c == '{' || c == '}')
            rc = al_buf_printf(b, "\\x%02x", c);
        else
            rc = al_buf_append(b, p, 1);
    }
    return rc || al_buf_append(b, "'", 1);
}

/* meta-llama/Llama-2-7b-chat-hf's chat_template, verbatim. */
static const char llama2_jinja[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
    "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/* One role's branch: {{ prefix + content + suffix }}[EOS if the last assistant turn]{{ trailer }}. */
static int jinja_role(const al_chat_template *t, int r, al_buf *b)
{
    int rc = al_buf_printf(b, "{%% %sif message['role'] == '%s' %%}{{ ", r ? "el" : "", role_name[r]) ||
             put_jinja_str(b, t->prefix[r]) || al_buf_printf(b, " + message['content'] + ") ||
             put_jinja_str(b, t->suffix[r]) || al_buf_printf(b, " }}");
    if (rc == 0 && t->eos && r == 2)
        rc = al_buf_printf(b, "{%% if loop.index0 == ns.last %%}{{ eos_token }}{%% endif %%}");
    if (rc == 0 && *t->trailer[r])
        rc = al_buf_printf(b, "{{ ") || put_jinja_str(b, t->trailer[r]) || al_buf_printf(b, " }}");
    return rc ? -1 : 0;
}

int al_chat_template_jinja(const al_chat_template *t, const al_tokenizer *tok, al_buf *out)
{
    if (t->kind == TPL_LLAMA2)
        return al_buf_append(out, llama2_jinja, sizeof llama2_jinja - 1);
    int rc = 0;
    /* the EOS goes after the last assistant turn: find it first */
    if (t->eos)
        rc = al_buf_printf(out, "{%% set ns = namespace(last=-1) %%}{%% for message in messages %%}{%% if "
                                "message['role'] == 'assistant' %%}{%% set ns.last = loop.index0 %%}{%% endif "
                                "%%}{%% endfor %%}");
    if (rc == 0 && t->bos && tok && al_tokenizer_bos(tok) >= 0)
        rc = al_buf_printf(out, "{{ bos_token }}");
    if (rc == 0)
        rc = al_buf_printf(out, "{%% for message in messages %%}");
    for (int r = 0; r < N_ROLES && rc == 0; r++)
        rc = jinja_role(t, r, out);
    if (rc == 0)
        rc = al_buf_printf(out, "{%% endif %%}{%% endfor %%}");
    if (rc == 0 && *t->gen_prompt)
        rc = al_buf_printf(out, "{%% if add_generation_prompt %%}{{ ") || put_jinja_str(out, t->gen_prompt) ||
             al_buf_printf(out, " }}{%% endif %%}");
    return rc ? -1 : 0;
}

/* ---- rendering ---- */

static int append(al_buf *b, const char *s) { return al_buf_append(b, s, strlen(s)); }

static int check_messages(const al_message *m, int n)
{
    if (n < 0 || (n > 0 && !m))
        return al_fail("chat: bad message count %d", n);
    for (int i = 0; i < n; i++) {
        if ((int)m[i].role < 0 || (int)m[i].role >= N_ROLES)
            return al_fail("chat: message %d: unknown role %d", i, (int)m[i].role);
        if (!m[i].content)
            return al_fail("chat: message %d (%s) has no content", i, role_name[m[i].role]);
    }
    return 0;
}

static int render_generic(const al_chat_template *t, const al_message *m, int n, bool gen, al_buf *b,
                          size_t *ss, size_t *se)
{
    for (int i = 0; i < n; i++) {
        int r = (int)m[i].role;
        if (append(b, t->prefix[r]))
            return -1;
        ss[i] = b->len;
        if (append(b, m[i].content) || append(b, t->suffix[r]))
            return -1;
        se[i] = b->len;
        if (append(b, t->trailer[r]))
            return -1;
    }
    return gen ? append(b, t->gen_prompt) : 0;
}

/* Python's str.strip() for ASCII whitespace (\t \n \v \f \r, \x1c-\x1f, space). */
static bool py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static void strip(const char *s, size_t n, size_t *a, size_t *b)
{
    size_t i = 0, j = n;
    while (i < j && py_space((unsigned char)s[i]))
        i++;
    while (j > i && py_space((unsigned char)s[j - 1]))
        j--;
    *a = i;
    *b = j;
}

static size_t clamp(size_t x, size_t lo, size_t hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Meta's / Hugging Face's Llama-2 chat template (meta-llama/Llama-2-7b-chat-hf):
 *   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
 * with strip() applied to each turn's content (the first user turn's content includes the
 * system block).  There is no separate generation prompt: the text already ends in [/INST]. */
static int render_llama2(const al_message *m, int n, al_buf *b, size_t *ss, size_t *se)
{
    int first = 0;
    const char *sys = NULL;
    if (n > 0 && m[0].role == AL_ROLE_SYSTEM) {
        sys = m[0].content;
        first = 1;
        ss[0] = se[0] = b->len; /* set with the first user turn, if there is one */
    }
    al_buf tmp = {0};
    int rc = 0;
    for (int i = first; i < n && rc == 0; i++) {
        int k = i - first;
        if (m[i].role == AL_ROLE_SYSTEM) {
            rc = al_fail("llama2 template: message %d: a system message may only come first", i);
            break;
        }
        if ((m[i].role == AL_ROLE_USER) != (k % 2 == 0)) {
            rc = al_fail("llama2 template: message %d (%s): roles must alternate user/assistant/user/...", i,
                         role_name[m[i].role]);
            break;
        }
        tmp.len = 0;
        size_t sys_a = 0, sys_b = 0, user_at = 0;
        if (k == 0 && sys) {
            rc = append(&tmp, "<<SYS>>\n");
            sys_a = tmp.len;
            rc = rc || append(&tmp, sys) || append(&tmp, "\n<</SYS>>");
            sys_b = tmp.len;
            rc = rc || append(&tmp, "\n\n");
            user_at = tmp.len;
        }
        if (rc || append(&tmp, m[i].content)) {
            rc = -1;
            break;
        }
        size_t a, z;
        strip(tmp.data, tmp.len, &a, &z);
        if (m[i].role == AL_ROLE_USER) {
            if (append(b, "<s>[INST] ")) {
                rc = -1;
                break;
            }
            size_t base = b->len - a; /* text offset of tmp[0] */
            if (al_buf_append(b, tmp.data + a, z - a) || append(b, " [/INST]")) {
                rc = -1;
                break;
            }
            if (k == 0 && sys) {
                ss[0] = base + clamp(sys_a, a, z);
                se[0] = base + clamp(sys_b, a, z);
            }
            ss[i] = base + clamp(user_at, a, z);
            se[i] = b->len;
        } else {
            if (append(b, " ")) {
                rc = -1;
                break;
            }
            ss[i] = b->len;
            if (al_buf_append(b, tmp.data + a, z - a) || append(b, " </s>")) {
                rc = -1;
                break;
            }
            se[i] = b->len;
        }
    }
    al_buf_free(&tmp);
    return rc;
}

static int render_spans(const al_chat_template *t, const al_message *m, int n, bool gen, al_buf *text,
                        size_t *ss, size_t *se)
{
    if (check_messages(m, n) || al_buf_append(text, "", 0))
        return -1;
    if (t->kind == TPL_LLAMA2)
        return render_llama2(m, n, text, ss, se);
    return render_generic(t, m, n, gen, text, ss, se);
}

int al_chat_render(const al_chat_template *t, const al_message *m, int n, bool add_generation_prompt,
                   al_buf *text, int *span_start, int *span_end)
{
    size_t *ss = calloc((size_t)(n > 0 ? n : 1) * 2, sizeof *ss);
    if (!ss)
        return al_fail("out of memory");
    size_t *se = ss + (n > 0 ? n : 1);
    int rc = render_spans(t, m, n, add_generation_prompt, text, ss, se);
    if (rc == 0 && text->len > (size_t)INT32_MAX)
        rc = al_fail("chat: rendered text of %zu bytes is too long", text->len);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (span_start)
            span_start[i] = (int)ss[i];
        if (span_end)
            span_end[i] = (int)se[i];
    }
    free(ss);
    return rc;
}

/* ---- tokenization ---- */

typedef struct marker {
    const char *s;
    size_t len;
    int id;
} marker;

static int cmp_marker_len(const void *a, const void *b)
{
    const marker *x = a, *y = b;
    return x->len != y->len ? (x->len > y->len ? -1 : 1) : strcmp(x->s, y->s);
}

/* The template's markers that the tokenizer has as single ids, longest first. */
static int find_markers(const al_chat_template *t, const al_tokenizer *tok, marker **out, int *n_out)
{
    marker *mk = calloc((size_t)t->n_specials + 2, sizeof *mk);
    if (!mk)
        return al_fail("out of memory");
    int n = 0;
    const char *cand[2] = {t->bos_marker, t->eos_marker};
    int cand_id[2] = {al_tokenizer_bos(tok), al_tokenizer_eos(tok)};
    for (int i = 0; i < 2; i++)
        if (cand[i] && *cand[i] && cand_id[i] >= 0)
            mk[n++] = (marker){cand[i], strlen(cand[i]), cand_id[i]};
    for (int i = 0; i < t->n_specials; i++) {
        const char *s = t->specials[i];
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= !strcmp(mk[j].s, s);
        int id = dup ? -1 : al_tokenizer_find(tok, s, strlen(s));
        if (id >= 0)
            mk[n++] = (marker){s, strlen(s), id};
    }
    qsort(mk, (size_t)n, sizeof *mk, cmp_marker_len);
    *out = mk;
    *n_out = n;
    return 0;
}

/* Gives tokens ids[from..) (the encoding of text[a..z)) their byte ranges.  dummy: the
 * tokens start with a SentencePiece dummy-prefix space that is not in the text.  A token
 * space may stand for U+2581 in the text (SentencePiece reads it as a space). */
static bool align_chunk(const al_tokenizer *tok, const char *text, size_t a, size_t z, const al_ints *ids,
                        int from, bool dummy, size_t *ts, size_t *te, al_buf *tmp)
{
    size_t q = a;
    for (int i = from; i < ids->n; i++) {
        tmp->len = 0;
        if (al_tokenizer_decode_token(tok, -1, ids->v[i], tmp))
            return false;
        ts[i] = q;
        for (size_t j = 0; j < tmp->len; j++) {
            char c = tmp->data[j];
            if (dummy) {
                if (c != ' ')
                    return false;
                dummy = false;
                ts[i] = q;
            } else if (q < z && text[q] == c) {
                q++;
            } else if (c == ' ' && z - q >= 3 && !memcmp(text + q, "\xE2\x96\x81", 3)) {
                q += 3;
            } else {
                return false;
            }
        }
        te[i] = q;
    }
    return q == z && !dummy;
}

static int grow_ranges(size_t **ts, size_t **te, int *cap, int need)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    size_t *a = realloc(*ts, (size_t)c * sizeof *a);
    if (!a)
        return al_fail("out of memory");
    *ts = a;
    size_t *b = realloc(*te, (size_t)c * sizeof *b);
    if (!b)
        return al_fail("out of memory");
    *te = b;
    *cap = c;
    return 0;
}

/* Encodes text[a..z) and records the byte range of every new token.  first: the text
 * starts a sequence (SentencePiece adds its dummy-prefix space). */
static int encode_chunk(const al_tokenizer *tok, const char *text, size_t a, size_t z, bool first, al_ints *ids,
                        size_t **ts, size_t **te, int *cap, al_buf *tmp)
{
    int from = ids->n;
    if (al_tokenizer_encode_cont(tok, text + a, z - a, first, ids) || grow_ranges(ts, te, cap, ids->n))
        return -1;
    if (align_chunk(tok, text, a, z, ids, from, false, *ts, *te, tmp) ||
        (first && align_chunk(tok, text, a, z, ids, from, true, *ts, *te, tmp)))
        return 0;
    return al_fail("chat: cannot match the tokens of bytes %zu..%zu of the rendered text with the text "
                   "(an <unk> token?)",
                   a, z);
}

static bool overlaps(size_t s, size_t e, size_t a, size_t z)
{
    return e > s ? s < z && e > a : a <= s && s < z;
}

int al_chat_tokenize(const al_chat_template *t, const al_tokenizer *tok, const al_message *m, int n,
                     al_mask_mode mode, al_ints *ids_out, al_ints *mask_out)
{
    if (mode != AL_MASK_ALL && mode != AL_MASK_ASSISTANT && mode != AL_MASK_COMPLETION)
        return al_fail("chat: unknown mask mode %d", (int)mode);
    al_buf text = {0}, tmp = {0};
    al_ints ids = {0};
    marker *mk = NULL;
    int n_mk = 0, cap = 0, rc = 0;
    size_t *ts = NULL, *te = NULL;
    size_t *ss = calloc((size_t)(n > 0 ? n : 1) * 2, sizeof *ss);
    if (!ss)
        return al_fail("out of memory");
    size_t *se = ss + (n > 0 ? n : 1);
    rc = render_spans(t, m, n, false, &text, ss, se);
    if (rc == 0)
        rc = find_markers(t, tok, &mk, &n_mk);

    /* BOS (an empty range at 0), then markers and the text between them. */
    int bos = al_tokenizer_bos(tok);
    if (rc == 0 && t->bos && bos >= 0) {
        rc = al_ints_push(&ids, bos) || grow_ranges(&ts, &te, &cap, 1) ? -1 : 0;
        if (rc == 0)
            ts[0] = te[0] = 0;
    }
    /* Text at the start or right after a BOS marker starts a sequence: SentencePiece gives
     * it the dummy-prefix space, as Meta's Llama-2 code encodes each "<s>[INST] ..." turn. */
    size_t start = 0, i = 0;
    bool after_bos = false;
    while (rc == 0 && i <= text.len) {
        int hit = -1;
        for (int k = 0; i < text.len && k < n_mk && hit < 0; k++)
            if (mk[k].len <= text.len - i && !memcmp(text.data + i, mk[k].s, mk[k].len))
                hit = k;
        if (hit < 0 && i < text.len) {
            i++;
            continue;
        }
        if (i > start)
            rc = encode_chunk(tok, text.data, start, i, start == 0 || after_bos, &ids, &ts, &te, &cap, &tmp);
        if (hit < 0)
            break;
        if (rc == 0)
            rc = al_ints_push(&ids, mk[hit].id) || grow_ranges(&ts, &te, &cap, ids.n) ? -1 : 0;
        if (rc == 0) {
            ts[ids.n - 1] = i;
            te[ids.n - 1] = i + mk[hit].len;
        }
        after_bos = t->bos_marker && !strcmp(mk[hit].s, t->bos_marker);
        i += mk[hit].len;
        start = i;
    }

    /* Which messages count. */
    int first_sel = n;
    if (mode == AL_MASK_ASSISTANT)
        first_sel = 0;
    else if (mode == AL_MASK_COMPLETION)
        while (first_sel > 0 && m[first_sel - 1].role == AL_ROLE_ASSISTANT)
            first_sel--;
    int last_asst = -1;
    for (int k = 0; k < n; k++)
        if (m[k].role == AL_ROLE_ASSISTANT)
            last_asst = k;
    /* EOS after the last token of the last assistant turn. */
    int eos = al_tokenizer_eos(tok), eos_at = -1;
    if (rc == 0 && t->eos && eos >= 0 && last_asst >= 0) {
        eos_at = 0;
        for (int k = 0; k < ids.n; k++)
            if (overlaps(ts[k], te[k], ss[last_asst], se[last_asst]))
                eos_at = k + 1;
    }
    bool eos_counts = last_asst >= 0 && (mode == AL_MASK_ALL || last_asst >= first_sel) && !m[last_asst].no_loss;
    for (int k = 0; rc == 0 && k <= ids.n; k++) {
        if (k == eos_at)
            rc = al_ints_push(ids_out, eos) || al_ints_push(mask_out, eos_counts) ? -1 : 0;
        if (k == ids.n || rc)
            break;
        bool in = mode == AL_MASK_ALL;
        for (int j = first_sel; j < n && !in; j++)
            in = m[j].role == AL_ROLE_ASSISTANT && !m[j].no_loss && overlaps(ts[k], te[k], ss[j], se[j]);
        for (int j = 0; j < n && in; j++) /* a turn shown, not taught (a draft to critique) */
            in = !(m[j].no_loss && overlaps(ts[k], te[k], ss[j], se[j]));
        rc = al_ints_push(ids_out, ids.v[k]) || al_ints_push(mask_out, in) ? -1 : 0;
    }
    free(ss);
    free(ts);
    free(te);
    free(mk);
    al_ints_free(&ids);
    al_buf_free(&text);
    al_buf_free(&tmp);
    return rc;
}

int al_chat_tokenize_pc(const al_tokenizer *tok, const char *prompt, const char *completion, bool add_eos,
                        al_ints *ids, al_ints *mask)
{
    if (!prompt || !completion)
        return al_fail("chat: prompt-completion pair with a missing %s", prompt ? "completion" : "prompt");
    int from = ids->n;
    int bos = al_tokenizer_bos(tok);
    if (bos >= 0 && al_ints_push(ids, bos))
        return -1;
    if (al_tokenizer_encode_cont(tok, prompt, strlen(prompt), true, ids))
        return -1;
    int n_prompt = ids->n;
    if (al_tokenizer_encode_cont(tok, completion, strlen(completion), *prompt == 0, ids))
        return -1;
    if (add_eos && al_tokenizer_eos(tok) >= 0 && al_ints_push(ids, al_tokenizer_eos(tok)))
        return -1;
    for (int k = from; k < ids->n; k++)
        if (al_ints_push(mask, k >= n_prompt))
            return -1;
    return 0;
}

int al_chat_answer_text(const al_tokenizer *tok, int prev, const int *ids, int n, const char *const *stops,
                        int n_stops, char **out)
{
    al_buf t = {0};
    for (int k = 0; k < n; k++) {
        if (al_tokenizer_decode_token(tok, prev, ids[k], &t)) {
            al_buf_free(&t);
            return -1;
        }
        prev = ids[k];
    }
    if (al_buf_append(&t, "", 0))
        return -1;
    size_t end = t.len;
    for (int k = 0; k < n_stops; k++) {
        char *at = strstr(t.data, stops[k]);
        if (at && (size_t)(at - t.data) < end)
            end = (size_t)(at - t.data);
    }
    while (end > 0 && strchr(" \t\r\n", t.data[end - 1]))
        end--;
    size_t start = strspn(t.data, " \t\r\n");
    start = start < end ? start : end;
    memmove(t.data, t.data + start, end - start);
    t.data[end - start] = 0;
    *out = t.data;
    return 0;
}
