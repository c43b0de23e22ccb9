/* The guard scored on a user's labelled prompts (align guard eval): the confusion matrix,
 * precision, recall, F1 and false-positive rate, a row per category, and the input side's
 * latency per prompt. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/guard.h"

void al_guard_eval_free(al_guard_eval *e)
{
    for (int i = 0; i < e->n_rows; i++)
        free(e->rows[i].category);
    free(e->rows);
    *e = (al_guard_eval){0};
}

/* 1 unsafe, 0 safe, -1 not a label */
static int parse_label(const json_t *v)
{
    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        return (int)json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    const char *unsafe[] = {"unsafe", "harmful", "1", "true"}, *safe[] = {"safe", "benign", "unharmful", "0", "false"};
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++)
        if (!strcmp(s, unsafe[i]))
            return 1;
    for (size_t i = 0; i < sizeof safe / sizeof *safe; i++)
        if (!strcmp(s, safe[i]))
            return 0;
    return -1;
}

static al_guard_eval_row *row_for(al_guard_eval *e, const char *category)
{
    for (int i = 0; i < e->n_rows; i++)
        if (!strcmp(e->rows[i].category, category))
            return &e->rows[i];
    al_guard_eval_row *grown = realloc(e->rows, (size_t)(e->n_rows + 1) * sizeof *grown);
    char *name = strdup(category);
    if (!grown || !name) {
        free(name);
        if (grown)
            e->rows = grown;
        al_fail("out of memory");
        return NULL;
    }
    e->rows = grown;
    e->rows[e->n_rows] = (al_guard_eval_row){.category = name};
    return &e->rows[e->n_rows++];
}

static int write_error(FILE *f, int line_no, const char *prompt, int label, const char *category,
                       const al_guard_decision *d)
{
    json_t *j = json_pack("{s:i, s:s, s:i, s:s, s:s, s:s}", "line", line_no, "prompt", prompt, "label", label,
                          "category", category, "action", al_guard_action_name(d->action), "decided_by",
                          d->category >= 0 ? al_guard_category_name(d->category) : "");
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    int rc = text && fprintf(f, "%s\n", text) > 0 ? 0 : al_fail("writing the errors file failed");
    free(text);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of n sorted values */
static double percentile(const double *v, long n, double p)
{
    if (n == 0)
        return 0;
    long k = (long)(p / 100.0 * (double)n + 0.999999);
    k = k < 1 ? 1 : k > n ? n : k;
    return v[k - 1];
}

static double ratio(long a, long b) { return b ? (double)a / (double)b : 0.0; }

int al_guard_eval_file(const al_guard *g, const char *path, const char *errors_path, al_guard_eval *out)
{
    *out = (al_guard_eval){0};
    al_buf b = {0};
    if (al_read_file(path, &b))
        return -1;
    al_atomic_file ef = {0}; /* written whole or not at all */
    if (errors_path && al_atomic_open(&ef, errors_path)) {
        al_buf_free(&b);
        return -1;
    }
    FILE *errf = ef.fp;
    double *lat = NULL;
    long cap = 0;
    double wall = 0;
    int rc = 0, line_no = 0;
    for (char *line = b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        const json_t *pj = json_object_get(rec, "prompt") ? json_object_get(rec, "prompt") : json_object_get(rec, "text");
        const char *prompt = json_string_value(pj), *category = json_string_value(json_object_get(rec, "category"));
        int label = parse_label(json_object_get(rec, "label"));
        if (!rec)
            rc = al_fail("%s:%d:%d: %s", path, line_no, jerr.column, jerr.text);
        else if (!prompt)
            rc = al_fail("%s:%d: expected a \"prompt\" (or \"text\") string", path, line_no);
        else if (label < 0)
            rc = al_fail("%s:%d: expected \"label\": 1/0, true/false, \"unsafe\"/\"safe\" (or \"harmful\"/\"benign\")",
                         path, line_no);
        al_guard_decision d = {0};
        double t0 = al_now();
        if (rc == 0 && al_guard_check_input(g, prompt, json_string_length(pj), &d))
            rc = al_fail_prefix("%s:%d", path, line_no);
        double dt = al_now() - t0;
        if (rc == 0 && out->n == cap) {
            cap = cap ? 2 * cap : 1024;
            double *grown = realloc(lat, (size_t)cap * sizeof *grown);
            rc = grown ? 0 : al_fail("out of memory");
            lat = grown ? grown : lat;
        }
        al_guard_eval_row *row = rc == 0 ? row_for(out, category ? category : "") : NULL;
        if (rc == 0 && !row)
            rc = -1;
        if (rc == 0) {
            const bool flagged = d.action == AL_GUARD_BLOCK || d.action == AL_GUARD_ESCALATE;
            lat[out->n++] = dt;
            wall += dt;
            out->actions[d.action]++;
            row->n++, row->unsafe += label, row->flagged += flagged;
            long *cell = label ? (flagged ? &row->tp : &row->fn) : (flagged ? &row->fp : &row->tn);
            (*cell)++;
            if (errf && flagged != (label == 1))
                rc = write_error(errf, line_no, prompt, label, category ? category : "", &d);
        }
        al_guard_decision_free(&d);
        json_decref(rec);
    }
    al_buf_free(&b);
    if (errf && rc == 0)
        rc = al_atomic_commit(&ef);
    else if (errf)
        al_atomic_abort(&ef);
    if (rc == 0 && out->n == 0)
        rc = al_fail("%s: no records", path);
    if (rc == 0) {
        for (int i = 0; i < out->n_rows; i++) {
            const al_guard_eval_row *r = &out->rows[i];
            out->tp += r->tp, out->fp += r->fp, out->tn += r->tn, out->fn += r->fn;
        }
        out->precision = ratio(out->tp, out->tp + out->fp);
        out->recall = ratio(out->tp, out->tp + out->fn);
        out->f1 = out->precision + out->recall > 0 ? 2 * out->precision * out->recall / (out->precision + out->recall) : 0;
        out->fpr = ratio(out->fp, out->fp + out->tn);
        out->accuracy = ratio(out->tp + out->tn, out->n);
        qsort(lat, (size_t)out->n, sizeof *lat, cmp_double);
        out->latency_p50_us = 1e6 * percentile(lat, out->n, 50);
        out->latency_p99_us = 1e6 * percentile(lat, out->n, 99);
        out->latency_max_us = 1e6 * lat[out->n - 1];
        out->prompts_per_s = wall > 0 ? (double)out->n / wall : 0;
    }
    free(lat);
    if (rc)
        al_guard_eval_free(out);
    return rc;
}
