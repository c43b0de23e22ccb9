/* SFT datasets in TRL's formats (docs/datasets.md).
 *
 * Files.  A file whose first non-space byte (after an optional UTF-8 byte order mark) is
 * '[' is one JSON array of records; anything else is JSON lines: one record per line,
 * blank lines (spaces, tabs, '\r') skipped.  JSON lines are streamed from the mapped file
 * one line at a time; a JSON array is parsed whole and its records are located (line and
 * column of each element's first byte) by a scan over the already-valid text.
 *
 * Formats.  A record's format comes from its fields: "messages" -> conversational;
 * "prompt" and "completion" -> prompt-completion, conversational when either is an
 * array; "text" -> language modelling (in that order of preference, except that once
 * the file's format is known a record holding that format's fields is read as it).
 * Extra fields are ignored.  The first good record sets the file's format; a record in
 * another format is an error naming both.
 *
 * Locations.  Every message starts "PATH:LINE:COLUMN: ", columns counting bytes from 1.
 * NUL bytes and invalid UTF-8 point at the offending byte; JSON syntax errors at the
 * first byte of the token jansson complains about (one past the end when it reached the
 * end of the line); errors in a record's contents at the record's first byte, with the
 * field path in the message: "\"messages\"[2].role: ...", indices counting from 0. */
#include "align/data.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *al_sft_format_name(al_sft_format f)
{
    switch (f) {
    case AL_SFT_TEXT:
        return "language modelling (\"text\")";
    case AL_SFT_PROMPT_COMPLETION:
        return "prompt-completion (\"prompt\" and \"completion\" strings)";
    case AL_SFT_MESSAGES:
        return "conversational (\"messages\")";
    case AL_SFT_CONV_PROMPT_COMPLETION:
        return "conversational prompt-completion (\"prompt\" and \"completion\" message lists)";
    }
    return "?";
}

const char *al_sft_role_name(al_role r)
{
    switch (r) {
    case AL_ROLE_SYSTEM:
        return "system";
    case AL_ROLE_USER:
        return "user";
    case AL_ROLE_ASSISTANT:
        return "assistant";
    }
    return "?";
}

/* ---- examples ---- */

static void example_free(al_sft_example *e)
{
    free(e->text);
    free(e->prompt);
    free(e->completion);
    for (int i = 0; i < e->n_messages; i++)
        free(e->messages[i].content);
    free(e->messages);
    memset(e, 0, sizeof *e);
}

void al_sft_free(al_sft_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        example_free(&d->ex[i]);
    free(d->ex);
    free(d->skipped_lines);
    memset(d, 0, sizeof *d);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---- record errors ---- */

/* Where a record starts, for its messages. */
typedef struct rec_ctx {
    const char *path;
    long line, col;
} rec_ctx;

/* A bad record: -1 (skippable).  Running out of memory is -2 (never skipped). */
#define OOM (al_fail("out of memory"), -2)

static int rec_fail(const rec_ctx *r, const char *fmt, ...) AL_PRINTF(2, 3);
static int rec_fail(const rec_ctx *r, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    al_fail("%s:%ld:%ld: %s", r->path, r->line, r->col, msg);
    return -1;
}

static const char *json_kind(const json_t *j)
{
    if (!j)
        return "nothing";
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* s as a quoted JSON-ish string of at most about 40 bytes, for messages. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0, limit = 40;
    dst[o++] = '"';
    size_t i = 0;
    for (; i < n && i < limit && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    if (i < n) {
        while (o > 1 && i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) { /* not mid-character */
            o--;
            i--;
        }
        dst[o++] = '"';
        memcpy(dst + o, "...", 3);
        o += 3;
    } else {
        dst[o++] = '"';
    }
    dst[o] = 0;
}

/* ---- fields ---- */

static int take_string(const rec_ctx *r, const json_t *rec, const char *key, bool allow_empty, char **out)
{
    json_t *v = json_object_get(rec, key);
    if (!v)
        return rec_fail(r, "missing \"%s\"", key);
    if (!json_is_string(v))
        return rec_fail(r, "\"%s\": expected a string, got %s", key, json_kind(v));
    size_t n = json_string_length(v);
    if (n == 0 && !allow_empty)
        return rec_fail(r, "\"%s\": expected a non-empty string, got \"\"%s", key,
                        strcmp(key, "completion") == 0 ? " (only the prompt may be empty)" : "");
    *out = dup_n(json_string_value(v), n);
    return *out ? 0 : OOM;
}

/* Appends the messages of rec[key] to e->messages. */
static int take_messages(const rec_ctx *r, const json_t *rec, const char *key, al_sft_example *e)
{
    json_t *arr = json_object_get(rec, key);
    if (!arr)
        return rec_fail(r, "missing \"%s\"", key);
    if (!json_is_array(arr))
        return rec_fail(r, "\"%s\": expected an array of messages, got %s", key, json_kind(arr));
    size_t n = json_array_size(arr);
    if (n == 0)
        return rec_fail(r, "\"%s\": expected at least one message, got an empty array", key);
    if (n > (size_t)(INT_MAX - e->n_messages))
        return rec_fail(r, "\"%s\": too many messages (%zu)", key, n);
    al_message *m = realloc(e->messages, ((size_t)e->n_messages + n) * sizeof *m);
    if (!m)
        return OOM;
    e->messages = m;
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(arr, i);
        if (!json_is_object(msg))
            return rec_fail(r, "\"%s\"[%zu]: expected an object with \"role\" and \"content\", got %s", key, i,
                            json_kind(msg));
        json_t *role = json_object_get(msg, "role"), *content = json_object_get(msg, "content");
        if (!role)
            return rec_fail(r, "\"%s\"[%zu]: missing \"role\"", key, i);
        if (!json_is_string(role))
            return rec_fail(r, "\"%s\"[%zu].role: expected a string, got %s", key, i, json_kind(role));
        const char *rs = json_string_value(role);
        al_role ro;
        if (strcmp(rs, "system") == 0) {
            ro = AL_ROLE_SYSTEM;
        } else if (strcmp(rs, "user") == 0) {
            ro = AL_ROLE_USER;
        } else if (strcmp(rs, "assistant") == 0) {
            ro = AL_ROLE_ASSISTANT;
        } else {
            char q[128];
            quote(q, sizeof q, rs, json_string_length(role));
            return rec_fail(r, "\"%s\"[%zu].role: expected \"system\", \"user\" or \"assistant\", got %s", key, i,
                            q);
        }
        if (!content)
            return rec_fail(r, "\"%s\"[%zu]: missing \"content\"", key, i);
        if (!json_is_string(content))
            return rec_fail(r, "\"%s\"[%zu].content: expected a string, got %s", key, i, json_kind(content));
        char *c = dup_n(json_string_value(content), json_string_length(content));
        if (!c)
            return OOM;
        m[e->n_messages].role = ro;
        m[e->n_messages].content = c;
        e->n_messages++;
    }
    return 0;
}

/* The messages from index `from` on hold an assistant message and end with one. */
static int check_assistant(const rec_ctx *r, const char *key, const al_sft_example *e, int from)
{
    bool any = false;
    for (int i = from; i < e->n_messages; i++)
        any |= e->messages[i].role == AL_ROLE_ASSISTANT;
    if (!any)
        return rec_fail(r, "\"%s\": expected at least one \"assistant\" message, got none", key);
    al_role last = e->messages[e->n_messages - 1].role;
    if (last != AL_ROLE_ASSISTANT)
        return rec_fail(r, "\"%s\"[%d]: expected the conversation to end with an \"assistant\" message, got \"%s\"",
                        key, e->n_messages - 1 - from, al_sft_role_name(last));
    return 0;
}

/* A record's format from its fields (see the top of the file). */
static int detect(const rec_ctx *r, const json_t *rec, bool have, al_sft_format cur, al_sft_format *out)
{
    const json_t *text = json_object_get(rec, "text"), *msgs = json_object_get(rec, "messages");
    const json_t *p = json_object_get(rec, "prompt"), *c = json_object_get(rec, "completion");
    bool pc = (p && c);
    bool conv_pc = pc && (json_is_array(p) || json_is_array(c));
    if (have && ((cur == AL_SFT_TEXT && text) || (cur == AL_SFT_MESSAGES && msgs))) {
        *out = cur;
    } else if (have && pc && (cur == AL_SFT_PROMPT_COMPLETION || cur == AL_SFT_CONV_PROMPT_COMPLETION)) {
        *out = conv_pc ? AL_SFT_CONV_PROMPT_COMPLETION : AL_SFT_PROMPT_COMPLETION;
    } else if (msgs) {
        *out = AL_SFT_MESSAGES;
    } else if (pc) {
        *out = conv_pc ? AL_SFT_CONV_PROMPT_COMPLETION : AL_SFT_PROMPT_COMPLETION;
    } else if (p || c) {
        return rec_fail(r, "missing \"%s\" (a record with \"%s\" needs both \"prompt\" and \"completion\")",
                        p ? "completion" : "prompt", p ? "prompt" : "completion");
    } else if (text) {
        *out = AL_SFT_TEXT;
    } else {
        return rec_fail(r, "expected a \"text\", \"prompt\" and \"completion\", or \"messages\" field, got none of "
                           "them");
    }
    return 0;
}

static int parse_example(const rec_ctx *r, const json_t *rec, al_sft_format f, al_sft_example *e)
{
    e->format = f;
    e->line = r->line;
    switch (f) {
    case AL_SFT_TEXT:
        return take_string(r, rec, "text", false, &e->text);
    case AL_SFT_PROMPT_COMPLETION: {
        int rc = take_string(r, rec, "prompt", true, &e->prompt);
        return rc ? rc : take_string(r, rec, "completion", false, &e->completion);
    }
    case AL_SFT_MESSAGES: {
        int rc = take_messages(r, rec, "messages", e);
        return rc ? rc : check_assistant(r, "messages", e, 0);
    }
    case AL_SFT_CONV_PROMPT_COMPLETION: {
        int rc = take_messages(r, rec, "prompt", e);
        if (rc)
            return rc;
        e->n_prompt_messages = e->n_messages;
        rc = take_messages(r, rec, "completion", e);
        return rc ? rc : check_assistant(r, "completion", e, e->n_prompt_messages);
    }
    }
    return rec_fail(r, "unknown format %d", (int)f);
}

/* ---- the loader ---- */

typedef struct loader {
    const char *path;
    bool skip;
    int max;
    al_sft_dataset *d;
    int cap;
    long format_line; /* the record that set the file's format */
} loader;

/* Adds one parsed record: 0, -1 (a bad record, message recorded) or -2 (fatal). */
static int add_record(loader *L, const json_t *rec, long line, long col)
{
    rec_ctx r = {L->path, line, col};
    al_sft_dataset *d = L->d;
    if (!json_is_object(rec))
        return rec_fail(&r, "expected a JSON object (a record), got %s", json_kind(rec));
    al_sft_format f = AL_SFT_TEXT;
    if (detect(&r, rec, d->n > 0, d->format, &f))
        return -1;
    if (d->n > 0 && f != d->format)
        return rec_fail(&r, "this record is %s, but the file's format is %s (from the record on line %ld); all "
                            "records must have the same format",
                        al_sft_format_name(f), al_sft_format_name(d->format), L->format_line);
    if (d->n == L->cap) {
        if (L->cap > INT_MAX / 2)
            return al_fail("%s: too many records", L->path), -2;
        int cap = L->cap ? 2 * L->cap : 256;
        al_sft_example *ex = realloc(d->ex, (size_t)cap * sizeof *ex);
        if (!ex)
            return OOM;
        d->ex = ex;
        L->cap = cap;
    }
    al_sft_example *e = &d->ex[d->n];
    memset(e, 0, sizeof *e);
    int rc = parse_example(&r, rec, f, e);
    if (rc) {
        example_free(e);
        return rc;
    }
    if (d->n == 0) {
        d->format = f;
        L->format_line = line;
    }
    d->n++;
    return 0;
}

/* After a failed record (rc from add_record or -1): 0 to go on, -1 to stop. */
static int bad_record(loader *L, int rc, long line)
{
    if (rc == -2 || !L->skip)
        return -1;
    al_clear_error();
    al_sft_dataset *d = L->d;
    if (d->n_skipped < INT_MAX)
        d->n_skipped++;
    if (d->n_skipped_lines_stored < AL_SFT_MAX_SKIPPED_LINES) {
        if (!d->skipped_lines) {
            d->skipped_lines = malloc(AL_SFT_MAX_SKIPPED_LINES * sizeof *d->skipped_lines);
            if (!d->skipped_lines)
                return al_fail("out of memory");
        }
        d->skipped_lines[d->n_skipped_lines_stored++] = line;
    }
    return 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Checks buf[ls, le) (one line) for NUL bytes and invalid UTF-8: -1 with the message. */
static int check_bytes(const char *path, const char *buf, size_t ls, size_t le, long line)
{
    const char *z = memchr(buf + ls, 0, le - ls);
    size_t bad = al_utf8_invalid_at(buf + ls, le - ls);
    if (z && (bad == (size_t)-1 || (size_t)(z - (buf + ls)) < bad))
        return al_fail("%s:%ld:%zu: unexpected NUL byte (JSON text cannot hold one; write \\u0000 inside a string)",
                       path, line, (size_t)(z - (buf + ls)) + 1);
    if (bad != (size_t)-1)
        return al_fail("%s:%ld:%zu: invalid UTF-8", path, line, bad + 1);
    return 0;
}

/* A jansson syntax error in text parsed from buf + base.  Points at the first byte of the
 * token jansson names ("near '...'"), else at the byte it stopped at. */
static int json_syntax_error(const char *path, const char *buf, size_t base, const json_error_t *e, bool lines,
                             long line_no, size_t ls)
{
    size_t toklen = 0;
    const char *near = strstr(e->text, " near '");
    size_t tl = strlen(e->text);
    if (near && tl > 0 && e->text[tl - 1] == '\'')
        toklen = (size_t)(e->text + tl - 1 - (near + 7));
    size_t pos = e->position > 0 ? (size_t)e->position : 0;
    size_t off = base + (pos >= toklen ? pos - toklen : 0);
    /* line and byte column of off */
    long line = 1;
    size_t line_start = 0;
    if (lines) { /* JSON lines: buf + ls is the start of line line_no */
        line = line_no;
        line_start = ls;
    } else {
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + off - p))) != NULL; p++) {
            line++;
            line_start = (size_t)(p - buf) + 1;
        }
    }
    char text[JSON_ERROR_TEXT_LENGTH + 16];
    snprintf(text, sizeof text, "%s", e->text);
    char *eof = lines ? strstr(text, "end of file") : NULL;
    if (eof)
        memcpy(eof + 7, "line", 4); /* "end of file" -> "end of line": each line is one text */
    return al_fail("%s:%ld:%zu: invalid JSON: %s", path, line, off - line_start + 1, text);
}

static int load_lines(loader *L, const char *buf, size_t size, size_t bom)
{
    size_t ls = 0;
    long line = 0;
    while (ls < size) {
        line++;
        const char *nl = memchr(buf + ls, '\n', size - ls);
        size_t le = nl ? (size_t)(nl - buf) : size, next = nl ? le + 1 : size;
        size_t ps = ls == 0 ? bom : ls;
        if (check_bytes(L->path, buf, ls, le, line)) {
            if (bad_record(L, -1, line))
                return -1;
            ls = next;
            continue;
        }
        size_t s = ps;
        while (s < le && is_blank(buf[s]))
            s++;
        if (s == le) {
            ls = next;
            continue;
        }
        json_error_t err;
        json_t *j = json_loadb(buf + ps, le - ps, JSON_DECODE_ANY, &err);
        int rc = j ? add_record(L, j, line, (long)(s - ls + 1))
                   : json_syntax_error(L->path, buf, ps, &err, true, line, ls);
        json_decref(j);
        if (rc && bad_record(L, rc, line))
            return -1;
        if (L->max > 0 && L->d->n >= L->max)
            break;
        ls = next;
    }
    return 0;
}

/* Index just past the JSON value starting at b[i] (valid JSON): at the ',' or ']' that
 * follows it at depth 0. */
static size_t skip_value(const char *b, size_t i, size_t n)
{
    int depth = 0;
    for (; i < n; i++) {
        char c = b[i];
        if (c == '"') {
            for (i++; i < n && b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (depth == 0)
                return i;
            depth--;
        } else if (c == ',' && depth == 0) {
            return i;
        }
    }
    return i;
}

static bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int load_array(loader *L, const char *buf, size_t size, size_t bom, bool *empty)
{
    /* the bytes first, line by line, so that their errors are located */
    long line = 0;
    for (size_t ls = 0; ls < size;) {
        line++;
        const char *nl = memchr(buf + ls, '\n', size - ls);
        size_t le = nl ? (size_t)(nl - buf) : size;
        if (check_bytes(L->path, buf, ls, le, line))
            return -1;
        ls = nl ? le + 1 : size;
    }
    json_error_t err;
    json_t *root = json_loadb(buf + bom, size - bom, 0, &err);
    if (!root)
        return json_syntax_error(L->path, buf, bom, &err, false, 0, 0);
    int rc = 0;
    size_t n = json_array_size(root);
    *empty = n == 0;
    size_t i = bom, line_start = 0;
    line = 1;
    while (i < size && buf[i] != '[') { /* the opening bracket */
        if (buf[i] == '\n') {
            line++;
            line_start = i + 1;
        }
        i++;
    }
    i++;
    for (size_t k = 0; k < n && rc == 0; k++) {
        while (i < size && (is_json_space(buf[i]) || buf[i] == ',')) {
            if (buf[i] == '\n') {
                line++;
                line_start = i + 1;
            }
            i++;
        }
        long rec_line = line, rec_col = (long)(i - line_start + 1);
        size_t end = skip_value(buf, i, size);
        for (const char *p = buf + i; (p = memchr(p, '\n', (size_t)(buf + end - p))) != NULL; p++) {
            line++;
            line_start = (size_t)(p - buf) + 1;
        }
        i = end;
        int r = add_record(L, json_array_get(root, k), rec_line, rec_col);
        if (r && bad_record(L, r, rec_line))
            rc = -1;
        if (L->max > 0 && L->d->n >= L->max)
            break;
    }
    json_decref(root);
    return rc;
}

int al_sft_load(al_sft_dataset *d, const char *path, const al_sft_load_opts *o)
{
    memset(d, 0, sizeof *d);
    al_sft_load_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (o->max_examples < 0)
        return al_fail("%s: max_examples %d is negative", path, o->max_examples);
    al_mapped m;
    if (al_map_file(path, &m))
        return -1;
    const char *buf = (const char *)m.data;
    size_t size = m.size;
    size_t bom = size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    size_t first = bom;
    while (first < size && is_json_space(buf[first]))
        first++;
    loader L = {.path = path, .skip = o->skip_bad_lines, .max = o->max_examples, .d = d};
    bool empty_array = false;
    int rc;
    if (first == size)
        rc = al_fail("%s: no records (expected JSON lines or a JSON array)", path);
    else if (buf[first] == '[')
        rc = load_array(&L, buf, size, bom, &empty_array);
    else
        rc = load_lines(&L, buf, size, bom);
    if (rc == 0 && d->n == 0) {
        if (d->n_skipped)
            rc = al_fail("%s: no records left: all %d were bad and skipped", path, d->n_skipped);
        else if (empty_array)
            rc = al_fail("%s: no records (the JSON array is empty)", path);
        else
            rc = al_fail("%s: no records (expected JSON lines or a JSON array)", path);
    }
    al_unmap_file(&m);
    if (rc) {
        al_sft_free(d);
        return -1;
    }
    return 0;
}

/* ---- split ---- */

static int copy_example(al_sft_example *dst, const al_sft_example *src)
{
    memset(dst, 0, sizeof *dst);
    dst->format = src->format;
    dst->line = src->line;
    dst->n_prompt_messages = src->n_prompt_messages;
    if ((src->text && !(dst->text = strdup(src->text))) || (src->prompt && !(dst->prompt = strdup(src->prompt))) ||
        (src->completion && !(dst->completion = strdup(src->completion))))
        goto oom;
    if (src->n_messages) {
        dst->messages = calloc((size_t)src->n_messages, sizeof *dst->messages);
        if (!dst->messages)
            goto oom;
        for (int i = 0; i < src->n_messages; i++) {
            dst->messages[i].role = src->messages[i].role;
            if (!(dst->messages[i].content = strdup(src->messages[i].content))) {
                dst->n_messages = i;
                goto oom;
            }
        }
        dst->n_messages = src->n_messages;
    }
    return 0;
oom:
    example_free(dst);
    return al_fail("out of memory copying an SFT example");
}

int al_sft_split(const al_sft_dataset *d, double held_out_fraction, uint64_t seed, al_sft_dataset *train,
                 al_sft_dataset *held_out)
{
    memset(train, 0, sizeof *train);
    memset(held_out, 0, sizeof *held_out);
    if (!(held_out_fraction >= 0 && held_out_fraction < 1))
        return al_fail("held-out fraction %g is not in [0, 1)", held_out_fraction);
    int n = d->n;
    if (n < 1)
        return al_fail("cannot split an empty dataset");
    int k = (int)floor(held_out_fraction * n + 0.5);
    if (held_out_fraction > 0 && k < 1)
        k = 1;
    if (k > n - 1)
        k = n - 1;
    int *perm = malloc((size_t)n * sizeof *perm);
    bool *held = calloc((size_t)n, sizeof *held);
    train->ex = malloc((size_t)(n - k) * sizeof *train->ex);
    held_out->ex = k ? malloc((size_t)k * sizeof *held_out->ex) : NULL;
    if (!perm || !held || !train->ex || (k && !held_out->ex)) {
        free(perm);
        free(held);
        al_sft_free(train);
        al_sft_free(held_out);
        return al_fail("out of memory splitting %d SFT examples", n);
    }
    train->format = held_out->format = d->format;
    /* Fisher-Yates with llama2.c's xorshift*; the first k of the permutation are held out */
    uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(al_xorshift_u32(&state) % (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < k; i++)
        held[perm[i]] = true;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) { /* file order within each part */
        al_sft_dataset *to = held[i] ? held_out : train;
        rc = copy_example(&to->ex[to->n], &d->ex[i]);
        if (rc == 0)
            to->n++;
    }
    free(perm);
    free(held);
    if (rc) {
        al_sft_free(train);
        al_sft_free(held_out);
    }
    return rc;
}
