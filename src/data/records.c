/* JSON records from a file (gzip-compressed or not): JSON lines or one JSON array, every problem located as
 * "PATH:LINE:COLUMN: ...".  The dataset loaders (SFT, preferences) share this; see the
 * top of sft_dataset.c for the rules. */
#include "records.h"

#include <errno.h>
#include <limits.h>
#include <zlib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

char *rec_dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

int rec_fail(const rec_ctx *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    al_vfail_at(r->path, r->line, r->col, fmt, ap);
    va_end(ap);
    return -1;
}

const char *rec_json_kind(const json_t *j)
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

void rec_quote(char *dst, size_t cap, const char *s, size_t n)
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

int rec_take_string(const rec_ctx *r, const json_t *rec, const char *key, bool allow_empty, char **out)
{
    json_t *v = json_object_get(rec, key);
    if (!v)
        return rec_fail(r, "missing \"%s\"", key);
    if (!json_is_string(v))
        return rec_fail(r, "\"%s\": expected a string, got %s", key, rec_json_kind(v));
    size_t n = json_string_length(v);
    if (n == 0 && !allow_empty)
        return rec_fail(r, "\"%s\": expected a non-empty string, got \"\"%s", key,
                        strcmp(key, "completion") == 0 ? " (only the prompt may be empty)" : "");
    *out = rec_dup(json_string_value(v), n);
    return *out ? 0 : REC_OOM;
}

int rec_take_messages(const rec_ctx *r, const json_t *rec, const char *key, al_message **msgs, int *count)
{
    json_t *arr = json_object_get(rec, key);
    if (!arr)
        return rec_fail(r, "missing \"%s\"", key);
    if (!json_is_array(arr))
        return rec_fail(r, "\"%s\": expected an array of messages, got %s", key, rec_json_kind(arr));
    size_t n = json_array_size(arr);
    if (n == 0)
        return rec_fail(r, "\"%s\": expected at least one message, got an empty array", key);
    if (n > (size_t)(INT_MAX - *count))
        return rec_fail(r, "\"%s\": too many messages (%zu)", key, n);
    al_message *m = realloc(*msgs, ((size_t)*count + n) * sizeof *m);
    if (!m)
        return REC_OOM;
    *msgs = m;
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(arr, i);
        if (!json_is_object(msg))
            return rec_fail(r, "\"%s\"[%zu]: expected an object with \"role\" and \"content\", got %s", key, i,
                            rec_json_kind(msg));
        json_t *role = json_object_get(msg, "role"), *content = json_object_get(msg, "content");
        if (!role)
            return rec_fail(r, "\"%s\"[%zu]: missing \"role\"", key, i);
        if (!json_is_string(role))
            return rec_fail(r, "\"%s\"[%zu].role: expected a string, got %s", key, i, rec_json_kind(role));
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
            rec_quote(q, sizeof q, rs, json_string_length(role));
            return rec_fail(r, "\"%s\"[%zu].role: expected \"system\", \"user\" or \"assistant\", got %s", key, i,
                            q);
        }
        if (!content)
            return rec_fail(r, "\"%s\"[%zu]: missing \"content\"", key, i);
        if (!json_is_string(content))
            return rec_fail(r, "\"%s\"[%zu].content: expected a string, got %s", key, i, rec_json_kind(content));
        /* OpenAI's fine-tuning format: "weight": 0 shows a turn without training on it (OpenAI
         * allows it on assistant turns; here any turn, for --mask all, which trains on all) */
        json_t *weight = json_object_get(msg, "weight");
        if (weight &&
            !(json_is_integer(weight) && (json_integer_value(weight) == 0 || json_integer_value(weight) == 1)))
            return rec_fail(r, "\"%s\"[%zu].weight: expected 0 or 1, got %s", key, i,
                            json_is_integer(weight) ? "another number" : rec_json_kind(weight));
        char *c = rec_dup(json_string_value(content), json_string_length(content));
        if (!c)
            return REC_OOM;
        m[*count].role = ro;
        m[*count].content = c;
        m[*count].no_loss = weight && json_integer_value(weight) == 0;
        (*count)++;
    }
    return 0;
}

int rec_reserve(void **arr, int *cap, int n, size_t elem, const char *path)
{
    if (n < *cap)
        return 0;
    if (*cap > INT_MAX / 2)
        return al_fail("%s: too many records", path), -2;
    int c = *cap ? 2 * *cap : 256;
    void *p = realloc(*arr, (size_t)c * elem);
    if (!p)
        return REC_OOM;
    *arr = p;
    *cap = c;
    return 0;
}

/* Adds one record through the reader's callback, which receives its location. */
static int add_record(rec_reader *L, const json_t *rec, long line, long col)
{
    rec_ctx r = {L->path, line, col};
    if (!json_is_object(rec))
        return rec_fail(&r, "expected a JSON object (a record), got %s", rec_json_kind(rec));
    int rc = L->add(L->user, rec, &r);
    if (rc == 0)
        L->n++;
    return rc;
}

/* After a failed record (rc from add_record or -1): 0 to go on, -1 to stop. */
static int bad_record(rec_reader *L, int rc, long line)
{
    if (rc == -2 || !L->skip)
        return -1;
    al_clear_error();
    if (L->n_skipped < INT_MAX)
        L->n_skipped++;
    if (L->n_skipped_lines_stored < REC_MAX_SKIPPED_LINES) {
        if (!L->skipped_lines) {
            L->skipped_lines = malloc(REC_MAX_SKIPPED_LINES * sizeof *L->skipped_lines);
            if (!L->skipped_lines)
                return al_fail("out of memory");
        }
        L->skipped_lines[L->n_skipped_lines_stored++] = line;
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

static int load_lines(rec_reader *L, const char *buf, size_t size, size_t bom)
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
        if (L->max > 0 && L->n >= L->max)
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

static int load_array(rec_reader *L, const char *buf, size_t size, size_t bom, bool *empty)
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
        if (L->max > 0 && L->n >= L->max)
            break;
    }
    json_decref(root);
    return rc;
}

/* A gzip file (by its magic bytes, whatever its name) inflated into out. */
static int read_gzip(const char *path, al_buf *out)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return al_fail("%s: cannot open: %s", path, strerror(errno));
    char chunk[1 << 16];
    int n, rc = 0;
    while (rc == 0 && (n = gzread(gz, chunk, sizeof chunk)) > 0)
        rc = al_buf_append(out, chunk, (size_t)n);
    if (rc == 0 && n < 0) {
        int err;
        const char *msg = gzerror(gz, &err);
        rc = al_fail("%s: damaged gzip data: %s", path, msg);
    }
    gzclose(gz);
    return rc;
}

int rec_read_file(rec_reader *L)
{
    if (L->max < 0)
        return al_fail("%s: max_examples %d is negative", L->path, L->max);
    al_mapped m = {0};
    al_buf inflated = {0};
    if (al_map_file(L->path, &m))
        return -1;
    const bool gz = m.size >= 2 && m.data[0] == 0x1f && m.data[1] == 0x8b;
    if (gz) {
        al_unmap_file(&m);
        if (read_gzip(L->path, &inflated)) {
            al_buf_free(&inflated);
            return -1;
        }
        m.data = (const uint8_t *)(inflated.data ? inflated.data : "");
        m.size = inflated.len;
    }
    const char *buf = (const char *)m.data;
    size_t size = m.size;
    size_t bom = size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    size_t first = bom;
    while (first < size && is_json_space(buf[first]))
        first++;
    bool empty_array = false;
    int rc;
    if (first == size)
        rc = al_fail("%s: no records (expected JSON lines or a JSON array)", L->path);
    else if (buf[first] == '[')
        rc = load_array(L, buf, size, bom, &empty_array);
    else
        rc = load_lines(L, buf, size, bom);
    if (rc == 0 && L->n == 0) {
        if (L->n_skipped)
            rc = al_fail("%s: no records left: all %d were bad and skipped", L->path, L->n_skipped);
        else if (empty_array)
            rc = al_fail("%s: no records (the JSON array is empty)", L->path);
        else
            rc = al_fail("%s: no records (expected JSON lines or a JSON array)", L->path);
    }
    if (gz)
        al_buf_free(&inflated);
    else
        al_unmap_file(&m);
    return rc;
}

int rec_load(const char *path, const al_sft_load_opts *o, int (*add)(void *, const json_t *, const rec_ctx *),
             void *user, int *n_skipped, long **skipped_lines, int *n_skipped_lines_stored)
{
    rec_reader R = {.path = path, .skip = o && o->skip_bad_lines, .max = o ? o->max_examples : 0, .add = add,
                    .user = user};
    int rc = rec_read_file(&R);
    *n_skipped = R.n_skipped;
    *skipped_lines = R.skipped_lines;
    *n_skipped_lines_stored = R.n_skipped_lines_stored;
    return rc;
}
