/* align guard eval: the guard's input side scored on the user's labelled prompts. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "align/guard.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align guard eval --data FILE.jsonl [options]\n"
            "\n"
            "Runs the input rails of a guard policy on every prompt of a labelled JSONL file and\n"
            "reports how well they separate the prompts to flag from the ones to let through:\n"
            "the confusion matrix, precision, recall, F1, the false-positive rate, a row per\n"
            "category, and the latency per prompt (p50, p99, max) and prompts/s on one thread.\n"
            "Each line: {\"prompt\": ..., \"label\": ..., \"category\": ...}; \"text\" may stand for\n"
            "\"prompt\"; label 1, true, \"unsafe\" or \"harmful\" means the guard should flag it,\n"
            "0, false, \"safe\", \"benign\" or \"unharmful\" that it should not; \"category\" is\n"
            "optional.  Flagged = blocked or escalated (a redaction alone is not a flag).\n"
            "\n"
            "options:\n"
            "  -d, --data FILE       the labelled prompts (required)\n"
            "  -p, --policy FILE     YAML policy, overlaid on the built-in one (default: built-in)\n"
            "      --errors FILE     write the misclassified prompts here, with their decisions\n"
            "      --json FILE       write the figures as JSON too\n"
            "  -h, --help            this text\n"
            "\n"
            "example:\n"
            "  align guard eval --data my_prompts.jsonl --policy examples/guard/support_policy.yaml \\\n"
            "      --errors /tmp/guard_errors.jsonl\n");
}

static json_t *figures_json(const al_guard_eval *e)
{
    json_t *rows = json_array();
    for (int i = 0; i < e->n_rows; i++) {
        const al_guard_eval_row *r = &e->rows[i];
        json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "category", r->category, "n",
                                              (json_int_t)r->n, "unsafe", (json_int_t)r->unsafe, "flagged",
                                              (json_int_t)r->flagged, "tp", (json_int_t)r->tp, "fp",
                                              (json_int_t)r->fp, "tn", (json_int_t)r->tn, "fn", (json_int_t)r->fn));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "n",
                     (json_int_t)e->n, "tp", (json_int_t)e->tp, "fp", (json_int_t)e->fp, "tn", (json_int_t)e->tn, "fn",
                     (json_int_t)e->fn, "precision", e->precision, "recall", e->recall, "f1", e->f1, "fpr", e->fpr,
                     "accuracy", e->accuracy, "latency_p50_us", e->latency_p50_us, "latency_p99_us",
                     e->latency_p99_us, "latency_max_us", e->latency_max_us, "prompts_per_s", e->prompts_per_s,
                     "categories", rows);
}

static void print_report(const char *path, const al_guard_eval *e)
{
    printf("guard eval: %ld prompts from %s (%ld to flag, %ld to let through)\n", e->n, path, e->tp + e->fn,
           e->fp + e->tn);
    printf("  precision %.3f  recall %.3f  F1 %.3f  false-positive rate %.1f%%  accuracy %.1f%%\n", e->precision,
           e->recall, e->f1, 100 * e->fpr, 100 * e->accuracy);
    printf("  confusion:          flagged   allowed\n");
    printf("    should flag      %8ld  %8ld\n", e->tp, e->fn);
    printf("    should allow     %8ld  %8ld\n", e->fp, e->tn);
    printf("  decisions: allow %ld, redact %ld, escalate %ld, block %ld\n", e->actions[AL_GUARD_ALLOW],
           e->actions[AL_GUARD_REDACT], e->actions[AL_GUARD_ESCALATE], e->actions[AL_GUARD_BLOCK]);
    printf("  latency per prompt: p50 %.0f us, p99 %.0f us, max %.0f us; %.0f prompts/s (one thread)\n",
           e->latency_p50_us, e->latency_p99_us, e->latency_max_us, e->prompts_per_s);
    if (e->n_rows > 1 || (e->n_rows == 1 && e->rows[0].category[0])) {
        printf("  %-24s %6s %6s %8s %8s %8s\n", "category", "n", "unsafe", "flagged", "recall", "FPR");
        for (int i = 0; i < e->n_rows; i++) {
            const al_guard_eval_row *r = &e->rows[i];
            char rec[16] = "-", fpr[16] = "-";
            if (r->tp + r->fn)
                snprintf(rec, sizeof rec, "%.1f%%", 100.0 * (double)r->tp / (double)(r->tp + r->fn));
            if (r->fp + r->tn)
                snprintf(fpr, sizeof fpr, "%.1f%%", 100.0 * (double)r->fp / (double)(r->fp + r->tn));
            printf("  %-24s %6ld %6ld %8ld %8s %8s\n", r->category[0] ? r->category : "(none)", r->n, r->unsafe,
                   r->flagged, rec, fpr);
        }
    }
}

int cmd_guard_eval(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align guard eval", argc, argv);
    const char *data = NULL, *policy_path = NULL, *errors = NULL, *json_path = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-d", "--data")) {
            data = a.value;
        } else if (cli_opt(&a, arg, "-p", "--policy")) {
            policy_path = a.value;
        } else if (cli_opt(&a, arg, NULL, "--errors")) {
            errors = a.value;
        } else if (cli_opt(&a, arg, NULL, "--json")) {
            json_path = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!data) {
        fprintf(stderr, "align guard eval: --data FILE.jsonl is required (see align guard eval --help)\n");
        return 2;
    }
    al_guard_policy pol;
    if (policy_path ? al_guard_policy_load(policy_path, &pol) : al_guard_policy_default(&pol)) {
        fprintf(stderr, "align guard eval: %s\n", al_errmsg());
        return 1;
    }
    al_guard *g = al_guard_open(&pol);
    al_guard_eval e;
    int rc = !g || al_guard_eval_file(g, data, errors, &e) ? 1 : 0;
    if (rc == 0) {
        print_report(data, &e);
        if (errors)
            printf("  misclassified prompts: %s (%ld)\n", errors, e.fp + e.fn);
        json_t *j = json_path ? figures_json(&e) : NULL;
        if (json_path && (!j || al_write_json_atomic(json_path, j)))
            rc = 1;
        json_decref(j);
        al_guard_eval_free(&e);
    }
    if (rc)
        fprintf(stderr, "align guard eval: %s\n", al_errmsg());
    al_guard_close(g);
    al_guard_policy_free(&pol);
    return rc;
}
