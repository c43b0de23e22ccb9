/* The requests a red-team run attacks with: JSONL, the benchmarks' CSV files as they are
 * distributed, or plain text. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redteam_internal.h"

void rt_requests_free(rt_requests *rs)
{
    for (int i = 0; i < rs->n; i++)
        free(rs->r[i].text), free(rs->r[i].category);
    free(rs->r);
    *rs = (rt_requests){0};
}

/* the names a benchmark may give its request and its category (HarmBench's Behavior and
 * SemanticCategory, JailbreakBench's Goal and Category, AdvBench's goal, StrongREJECT's
 * forbidden_prompt and category) */
static const char *const text_keys[] = {"prompt", "behavior", "Behavior", "goal", "Goal", "forbidden_prompt", "question"};
static const char *const category_keys[] = {"category", "Category", "SemanticCategory", "hazard"};
#define N_KEYS(v) ((int)(sizeof v / sizeof *v))

static int requests_add(rt_requests *rs, int *cap, const char *text, const char *category)
{
    if (rs->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        rt_request *grown = realloc(rs->r, (size_t)*cap * sizeof *grown);
        if (!grown)
            return al_fail("out of memory");
        rs->r = grown;
    }
    rt_request *q = &rs->r[rs->n++];
    q->text = strdup(text), q->category = strdup(category ? category : "");
    return q->text && q->category ? 0 : al_fail("out of memory");
}

/* JSONL: the request in the first of text_keys present */
static int load_jsonl(rt_requests *rs, char *data, const char *path, int max)
{
    int rc = 0, line_no = 0, cap = 0;
    for (char *line = data, *next; rc == 0 && line && *line && (max <= 0 || rs->n < max); line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        const char *text = NULL, *category = NULL;
        for (int k = 0; rec && !text && k < N_KEYS(text_keys); k++)
            text = json_string_value(json_object_get(rec, text_keys[k]));
        for (int k = 0; rec && !category && k < N_KEYS(category_keys); k++)
            category = json_string_value(json_object_get(rec, category_keys[k]));
        if (!rec)
            rc = al_fail("%s:%d: not JSON: %s", path, line_no, err.text);
        else if (!text || !*text)
            rc = al_fail("%s:%d: expected a request string in \"prompt\", \"behavior\" or \"goal\"", path, line_no);
        else
            rc = requests_add(rs, &cap, text, category);
        json_decref(rec);
    }
    return rc;
}

/* CSV with a header row naming the columns */
static int load_csv(rt_requests *rs, char *data, const char *path, int max)
{
    char *p = data, *f[64];
    int n = al_csv_record(&p, f, 64), c_text = -1, c_cat = -1, cap = 0, rc = 0, record = 1;
    for (int k = 0; c_text < 0 && k < N_KEYS(text_keys); k++)
        c_text = al_csv_column(f, n, text_keys[k]);
    for (int k = 0; c_cat < 0 && k < N_KEYS(category_keys); k++)
        c_cat = al_csv_column(f, n, category_keys[k]);
    if (c_text < 0)
        return al_fail("%s:1: no request column (prompt, behavior, Behavior, goal, Goal, forbidden_prompt or question)",
                       path);
    while (rc == 0 && (max <= 0 || rs->n < max) && (n = al_csv_record(&p, f, 64)) > 0) {
        record++;
        if (n == 1 && !*f[0])
            continue; /* a blank line */
        if (n <= c_text || !*f[c_text])
            rc = al_fail("%s: record %d: no request in column %d", path, record, c_text + 1);
        else
            rc = requests_add(rs, &cap, f[c_text], c_cat >= 0 && c_cat < n ? f[c_cat] : "");
    }
    return rc;
}

/* plain text: one request per line */
static int load_lines(rt_requests *rs, char *data, int max)
{
    int rc = 0, cap = 0;
    for (char *line = data, *next; rc == 0 && line && *line && (max <= 0 || rs->n < max); line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (strspn(line, " \t") < n)
            rc = requests_add(rs, &cap, line, "");
    }
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

int rt_requests_load(rt_requests *rs, const char *path, int max)
{
    al_buf in = {0};
    *rs = (rt_requests){0};
    if (al_read_file(path, &in))
        return -1;
    char *data = in.data ? in.data : (char *)"";
    int rc = ends_with(path, ".csv")                                      ? load_csv(rs, data, path, max)
             : ends_with(path, ".jsonl") || ends_with(path, ".json") ? load_jsonl(rs, data, path, max)
                                                                     : load_lines(rs, data, max);
    al_buf_free(&in);
    if (rc == 0 && rs->n == 0)
        rc = al_fail("%s: no requests", path);
    if (rc)
        rt_requests_free(rs);
    return rc;
}

