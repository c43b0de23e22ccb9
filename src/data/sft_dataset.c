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
#include "records.h"

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

/* ---- fields ---- */

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
        return rec_take_string(r, rec, "text", false, &e->text);
    case AL_SFT_PROMPT_COMPLETION: {
        int rc = rec_take_string(r, rec, "prompt", true, &e->prompt);
        return rc ? rc : rec_take_string(r, rec, "completion", false, &e->completion);
    }
    case AL_SFT_MESSAGES: {
        int rc = rec_take_messages(r, rec, "messages", &e->messages, &e->n_messages);
        return rc ? rc : check_assistant(r, "messages", e, 0);
    }
    case AL_SFT_CONV_PROMPT_COMPLETION: {
        int rc = rec_take_messages(r, rec, "prompt", &e->messages, &e->n_messages);
        if (rc)
            return rc;
        e->n_prompt_messages = e->n_messages;
        rc = rec_take_messages(r, rec, "completion", &e->messages, &e->n_messages);
        return rc ? rc : check_assistant(r, "completion", e, e->n_prompt_messages);
    }
    }
    return rec_fail(r, "unknown format %d", (int)f);
}

/* ---- the loader ---- */

typedef struct loader {
    al_sft_dataset *d;
    int cap;
    long format_line; /* the record that set the file's format */
} loader;

/* Adds one parsed record: 0, -1 (a bad record, message recorded) or -2 (fatal). */
static int add_record(void *user, const json_t *rec, const rec_ctx *r)
{
    loader *L = user;
    al_sft_dataset *d = L->d;
    al_sft_format f = AL_SFT_TEXT;
    if (detect(r, rec, d->n > 0, d->format, &f))
        return -1;
    if (d->n > 0 && f != d->format)
        return rec_fail(r, "this record is %s, but the file's format is %s (from the record on line %ld); all "
                           "records must have the same format",
                        al_sft_format_name(f), al_sft_format_name(d->format), L->format_line);
    void *ex = d->ex;
    int grown = rec_reserve(&ex, &L->cap, d->n, sizeof *d->ex, r->path);
    d->ex = ex;
    if (grown)
        return grown;
    al_sft_example *e = &d->ex[d->n];
    memset(e, 0, sizeof *e);
    int rc = parse_example(r, rec, f, e);
    if (rc) {
        example_free(e);
        return rc;
    }
    if (d->n == 0) {
        d->format = f;
        L->format_line = r->line;
    }
    d->n++;
    return 0;
}

int al_sft_load(al_sft_dataset *d, const char *path, const al_sft_load_opts *o)
{
    memset(d, 0, sizeof *d);
    loader L = {.d = d};
    if (rec_load(path, o, add_record, &L, &d->n_skipped, &d->skipped_lines, &d->n_skipped_lines_stored)) {
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
            dst->messages[i].no_loss = src->messages[i].no_loss;
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
    al_ints idx[2] = {{0}, {0}};
    int rc = al_split_indices(d->n, held_out_fraction, seed, &idx[0], &idx[1]);
    al_sft_dataset *part[2] = {train, held_out};
    for (int p = 0; p < 2 && rc == 0; p++) {
        part[p]->format = d->format;
        part[p]->ex = idx[p].n ? malloc((size_t)idx[p].n * sizeof *part[p]->ex) : NULL;
        if (idx[p].n && !part[p]->ex)
            rc = al_fail("out of memory splitting %d SFT examples", d->n);
        for (int i = 0; i < idx[p].n && rc == 0; i++)
            if ((rc = copy_example(&part[p]->ex[i], &d->ex[idx[p].v[i]])) == 0)
                part[p]->n++;
    }
    al_ints_free(&idx[0]);
    al_ints_free(&idx[1]);
    if (rc) {
        al_sft_free(train);
        al_sft_free(held_out);
    }
    return rc;
}
