/* The refusal benchmarks as distributed, read into an evaluation prompt set: which column
 * holds the request, which the category, and which rows are harmful.  The evaluation
 * itself is al_eval_run's: the refusal judge reads the answers. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "align/eval.h"

typedef struct suite {
    const char *name;
    const char *text[4], *category[3]; /* column names, first present wins */
    const char *context;               /* HarmBench's contextual behaviours: the context goes first */
    const char *label;                 /* a column saying "safe" or "unsafe" (XSTest); NULL: all harmful */
} suite;

static const suite suites[] = {
    {"harmbench", {"Behavior", "behavior"}, {"SemanticCategory", "FunctionalCategory", "category"}, "ContextString", NULL},
    {"jailbreakbench", {"Goal", "goal"}, {"Category", "category"}, NULL, NULL},
    {"strongreject", {"forbidden_prompt"}, {"category"}, NULL, NULL},
    {"advbench", {"goal"}, {"category"}, NULL, NULL},
    {"xstest", {"prompt"}, {"type"}, NULL, "label"},
};
#define N_SUITES ((int)(sizeof suites / sizeof *suites))

bool al_eval_suite_known(const char *name)
{
    for (int s = 0; s < N_SUITES; s++)
        if (!strcmp(suites[s].name, name))
            return true;
    return false;
}

static int column(char **f, int n, const char *const *names, int k)
{
    for (int i = 0; i < k && names[i]; i++) {
        int c = al_csv_column(f, n, names[i]);
        if (c >= 0)
            return c;
    }
    return -1;
}

int al_eval_suite_prompts(const char *name, const char *data, const char *out, int max, int *n_harmful,
                          int *n_benign)
{
    const suite *s = NULL;
    for (int i = 0; i < N_SUITES; i++)
        if (!strcmp(suites[i].name, name))
            s = &suites[i];
    *n_harmful = *n_benign = 0;
    if (!s)
        return al_fail("unknown refusal suite '%s' (harmbench, jailbreakbench, strongreject, advbench, xstest)", name);
    al_buf in = {0};
    if (al_read_file(data, &in))
        return -1;
    char *p = in.data ? in.data : (char *)"", *f[64];
    int n = al_csv_record(&p, f, 64), record = 1, rc = 0;
    const int c_text = column(f, n, s->text, 4), c_cat = column(f, n, s->category, 3);
    const int c_ctx = s->context ? al_csv_column(f, n, s->context) : -1;
    const int c_label = s->label ? al_csv_column(f, n, s->label) : -1;
    if (c_text < 0)
        rc = al_fail("%s:1: no %s column (the %s file as distributed has one)", data, s->text[0], name);
    /* JailbreakBench ships its benign behaviours in a file of the same columns */
    const bool benign_file = !strcmp(name, "jailbreakbench") && strstr(data, "benign");
    al_atomic_file f_out = {0};
    rc = rc ? rc : al_atomic_open(&f_out, out);
    while (rc == 0 && (max <= 0 || *n_harmful + *n_benign < max) && (n = al_csv_record(&p, f, 64)) > 0) {
        record++;
        if (n == 1 && !*f[0])
            continue;
        if (n <= c_text || !*f[c_text]) {
            rc = al_fail("%s: record %d: no request in column %d", data, record, c_text + 1);
            break;
        }
        bool harmful = !benign_file;
        if (c_label >= 0) {
            const char *l = c_label < n ? f[c_label] : "";
            if (strcasecmp(l, "safe") && strcasecmp(l, "unsafe")) {
                rc = al_fail("%s: record %d: label \"%s\" (expected safe or unsafe)", data, record, l);
                break;
            }
            harmful = !strcasecmp(l, "unsafe");
        }
        al_buf text = {0};
        if (c_ctx >= 0 && c_ctx < n && *f[c_ctx])
            al_buf_printf(&text, "%s\n\n%s", f[c_ctx], f[c_text]);
        else
            al_buf_printf(&text, "%s", f[c_text]);
        json_t *rec = json_pack("{s:s, s:s, s:s}", "prompt", text.data ? text.data : "", "kind",
                                harmful ? "harmful" : "benign", "category",
                                c_cat >= 0 && c_cat < n ? f[c_cat] : "");
        char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (line) {
            fprintf(f_out.fp, "%s\n", line);
            *n_harmful += harmful, *n_benign += !harmful;
        } else {
            rc = al_fail("out of memory");
        }
        free(line);
        json_decref(rec);
        al_buf_free(&text);
    }
    if (rc == 0 && *n_harmful + *n_benign == 0)
        rc = al_fail("%s: no requests", data);
    if (f_out.fp) {
        if (rc == 0)
            rc = al_atomic_commit(&f_out);
        else
            al_atomic_abort(&f_out);
    }
    al_buf_free(&in);
    return rc;
}
