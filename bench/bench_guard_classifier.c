/* The harm classifier on the shared data: held-out precision, recall and F1 (harmful vs
 * benign and per hazard), the false-positive rate on held-out benign prompts that sound
 * dangerous, and scoring throughput on one thread; then the same figures for other
 * hash-table sizes, which is how the default was chosen.
 *
 * The held-out set includes some of our own benign questions (src/guard/harm_questions.c,
 * split by the same text hash as everything else); F1 without them is printed too, so
 * figures from before those questions existed can be compared.  Last, the threshold a
 * validation split would choose: train on 7/8 of the training split, take the threshold
 * with the best F1 on the other 1/8, and report the held-out figures at it (the model
 * keeps its default 0.5; see docs/guard_models.md).
 *
 * usage: bench_guard_classifier [CONTRAST_FILE] [--sizes]
 *   CONTRAST_FILE defaults to bench/data/guard_contrast_heldout.txt beside this source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/guard.h"

static int load_contrast(const char *path, al_harm_dataset *out)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        return -1;
    for (char *line = b.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (*line && *line != '#' && al_harm_dataset_add(out, line, false, 0, "heldout_contrast"))
            return -1;
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&b);
    return 0;
}

/* Scores every text of d repeatedly for at least a second. */
static void throughput(const al_harm_model *m, const al_harm_dataset *d, double *per_s, double *mb_s)
{
    size_t bytes = 0;
    for (int i = 0; i < d->n; i++)
        bytes += strlen(d->v[i].text);
    long rounds = 0;
    volatile float sink = 0;
    double t0 = al_now(), t;
    do {
        for (int i = 0; i < d->n; i++) {
            al_harm_scores s;
            al_harm_score(m, d->v[i].text, strlen(d->v[i].text), &s);
            sink += s.harmful;
        }
        rounds++;
    } while ((t = al_now() - t0) < 1.0);
    *per_s = (double)rounds * d->n / t;
    *mb_s = (double)rounds * (double)bytes / t / 1e6;
}

/* Held-out precision/recall/F1 at threshold t, leaving out examples from source skip. */
static al_harm_prf prf_at(const al_harm_model *m, const al_harm_dataset *d, float t, const char *skip)
{
    al_harm_prf p = {0};
    for (int i = 0; i < d->n; i++) {
        if (skip && strcmp(d->v[i].source, skip) == 0)
            continue;
        al_harm_scores s;
        al_harm_score(m, d->v[i].text, strlen(d->v[i].text), &s);
        bool flagged = s.harmful >= t;
        p.tp += d->v[i].harmful && flagged;
        p.fn += d->v[i].harmful && !flagged;
        p.fp += !d->v[i].harmful && flagged;
        p.tn += !d->v[i].harmful && !flagged;
    }
    al_harm_prf_finish(&p);
    return p;
}

/* The threshold with the best F1 on a validation split of train, and the held-out figures
 * of the full model at it. */
static int validation_threshold(const al_harm_model *full, const al_harm_dataset *train, const al_harm_dataset *test,
                                const al_harm_dataset *contrast, int test_percent)
{
    al_harm_dataset fit, val;
    /* train holds the texts whose hash mod 100 is >= test_percent: the next 10 are validation */
    if (al_harm_dataset_split(train, test_percent + 10, &fit, &val))
        return -1;
    al_harm_train_opts o = al_harm_train_defaults();
    al_harm_model *m = al_harm_train(&fit, &o);
    if (!m)
        return -1;
    float best_t = 0.5f;
    double best = -1;
    for (int k = 0; k <= 28; k++) {
        float t = 0.2f + 0.025f * (float)k;
        al_harm_prf p = prf_at(m, &val, t, NULL);
        if (p.f1 > best)
            best = p.f1, best_t = t;
    }
    al_harm_prf h = prf_at(full, test, best_t, NULL), c = prf_at(full, contrast, best_t, NULL);
    printf("threshold chosen on a validation split (%d fit / %d validation, best validation F1 %.4f): %.3f\n"
           "  held out at it: precision %.4f recall %.4f F1 %.4f; contrast FPR %.3f (%d/%d)\n\n",
           fit.n, val.n, best, (double)best_t, h.precision, h.recall, h.f1, (double)c.fp / contrast->n, c.fp,
           contrast->n);
    al_harm_free(m);
    al_harm_dataset_free(&fit);
    al_harm_dataset_free(&val);
    return 0;
}

static int run(const al_harm_dataset *train, const al_harm_dataset *test, const al_harm_dataset *contrast,
               int log2_buckets, bool detail)
{
    al_harm_train_opts o = al_harm_train_defaults();
    o.log2_buckets = log2_buckets;
    double t0 = al_now();
    al_harm_model *m = al_harm_train(train, &o);
    if (!m)
        return -1;
    double train_s = al_now() - t0;
    al_harm_eval ev, cv;
    if (al_harm_evaluate(m, test, &ev) || al_harm_evaluate(m, contrast, &cv))
        return -1;
    double per_s, mb_s;
    throughput(m, test, &per_s, &mb_s);
    double fpr = (double)cv.overall.fp / contrast->n;
    printf("| 2^%d | %.1f | %.4f | %.4f | %.4f | %.3f (%d/%d) | %.0f | %.1f |\n", log2_buckets, train_s,
           ev.overall.precision, ev.overall.recall, ev.overall.f1, fpr, cv.overall.fp, contrast->n, per_s, mb_s);
    if (detail) {
        al_harm_prf orig = prf_at(m, test, al_harm_threshold(m), "own_questions");
        printf("\nheld out without our benign questions (the sources of the first measurements): "
               "precision %.4f recall %.4f F1 %.4f\n", orig.precision, orig.recall, orig.f1);
        printf("\nper hazard (held out, one-vs-rest at 0.5, examples with a known category):\n\n");
        printf("| hazard | support | precision | recall | F1 |\n|---|---|---|---|---|\n");
        for (int h = 0; h < AL_HAZ_COUNT; h++)
            printf("| %s | %d | %.3f | %.3f | %.3f |\n", al_hazard_name((al_hazard)h), ev.support[h],
                   ev.hazard[h].precision, ev.hazard[h].recall, ev.hazard[h].f1);
        printf("\nheld-out contrast prompts flagged harmful:\n");
        for (int i = 0; i < contrast->n; i++) {
            al_harm_scores s;
            al_harm_score(m, contrast->v[i].text, strlen(contrast->v[i].text), &s);
            if (s.harmful >= al_harm_threshold(m))
                printf("  %.3f  %s\n", (double)s.harmful, contrast->v[i].text);
        }
        printf("\n");
        if (validation_threshold(m, train, test, contrast, 20)) {
            al_harm_free(m);
            return -1;
        }
    }
    al_harm_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    char default_contrast[1024];
    snprintf(default_contrast, sizeof default_contrast, "%s", __FILE__);
    char *slash = strrchr(default_contrast, '/');
    snprintf(slash ? slash + 1 : default_contrast,
             sizeof default_contrast - (size_t)(slash ? slash + 1 - default_contrast : 0),
             "data/guard_contrast_heldout.txt");
    const char *contrast_path = default_contrast;
    bool sizes = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0)
            sizes = true;
        else
            contrast_path = argv[i];
    }
    al_harm_dataset all = {0}, train, test, contrast = {0};
    if (al_harm_dataset_load_shared(&all, ALIGN_SHARED_DIR) || al_harm_dataset_split(&all, 20, &train, &test) ||
        load_contrast(contrast_path, &contrast)) {
        fprintf(stderr, "bench_guard_classifier: %s\n", al_errmsg());
        return 1;
    }
    int harmful = 0;
    for (int i = 0; i < test.n; i++)
        harmful += test.v[i].harmful;
    printf("harm classifier: %d train / %d held-out examples (%d harmful), %d held-out contrast prompts\n"
           "defaults: 8 epochs, AdamW lr %g, seed 1, threshold 0.5; throughput on one thread over the held-out texts\n\n",
           train.n, test.n, harmful, contrast.n, (double)al_harm_train_defaults().lr);
    printf("| buckets | train s | precision | recall | F1 | contrast FPR | prompts/s | MB/s |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    int rc = run(&train, &test, &contrast, 18, !sizes);
    if (sizes)
        for (int b = 14; b <= 22 && !rc; b += 2)
            if (b != 18)
                rc = run(&train, &test, &contrast, b, false);
    if (rc)
        fprintf(stderr, "bench_guard_classifier: %s\n", al_errmsg());
    al_harm_dataset_free(&all);
    al_harm_dataset_free(&train);
    al_harm_dataset_free(&test);
    al_harm_dataset_free(&contrast);
    return rc ? 1 : 0;
}
