/* align guard train: fits the harm classifier on the shared safety data and reports its
 * held-out precision, recall and F1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/guard.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align guard train [--data-dir DIR] [--out FILE] [options]\n"
            "\n"
            "Trains the guard's harm classifier: a logistic regression over hashed word 1-2-grams and\n"
            "character 3-5-grams with one head per hazard and one harmful/benign head.  Harmful\n"
            "requests come from DIR/data/safety (advbench, do_not_answer, malicious_instruct, toxigen),\n"
            "benign ones from DIR/corpora (self-instruct-human, llamafactory-demo), toxigen's neutral\n"
            "statements and a built-in list of harmless prompts that sound dangerous; docs/guard_models.md\n"
            "maps every source onto the hazard taxonomy.  A fixed hash of each text holds out\n"
            "--test-percent of the examples; the model trains on the rest, and the held-out precision,\n"
            "recall and F1 are printed and written to the metrics file.  The same seed gives the same\n"
            "model bit for bit.\n"
            "\n"
            "options:\n"
            "      --data-dir DIR      the shared data checkout (default ../shared)\n"
            "  -o, --out FILE          model file to write (default harm_classifier.bin)\n"
            "      --metrics FILE      JSON lines: settings, then held-out figures (default FILE.metrics.jsonl)\n"
            "      --epochs N          passes over the training data (default 8)\n"
            "      --seed S            example order (default 1)\n"
            "      --buckets B         2^B hashed features, 10..24 (default 18: 16 MiB of weights)\n"
            "      --lr LR             AdamW learning rate, decayed linearly to 10%% (default 0.05)\n"
            "      --weight-decay WD   decoupled weight decay (default 1e-6)\n"
            "      --threshold T       P(harmful) at which the model says harmful (default 0.5)\n"
            "      --test-percent P    held out for evaluation, 0..50 (default 20; 0 trains on all)\n"
            "  -q, --quiet             no per-epoch lines\n"
            "  -h, --help              this text\n"
            "\n"
            "example:\n"
            "  align guard train --data-dir ../shared --out runs/harm.bin --epochs 8 --seed 1\n");
}

static json_t *prf_json(const al_harm_prf *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "precision", json_real(p->precision));
    json_object_set_new(o, "recall", json_real(p->recall));
    json_object_set_new(o, "f1", json_real(p->f1));
    json_object_set_new(o, "tp", json_integer(p->tp));
    json_object_set_new(o, "fp", json_integer(p->fp));
    json_object_set_new(o, "fn", json_integer(p->fn));
    json_object_set_new(o, "tn", json_integer(p->tn));
    return o;
}

static int write_metrics(const char *path, json_t *settings, const al_harm_eval *ev, int n_test)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    json_t *lines[2] = {settings, json_object()};
    json_object_set_new(lines[1], "split", json_string("heldout"));
    json_object_set_new(lines[1], "examples", json_integer(n_test));
    json_object_set_new(lines[1], "harmful", prf_json(&ev->overall));
    json_t *per = json_object();
    for (int h = 0; h < AL_HAZ_COUNT; h++) {
        json_t *o = prf_json(&ev->hazard[h]);
        json_object_set_new(o, "support", json_integer(ev->support[h]));
        json_object_set_new(per, al_hazard_name((al_hazard)h), o);
    }
    json_object_set_new(lines[1], "hazards", per);
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        char *s = json_dumps(lines[i], JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (!s || fputs(s, f.fp) < 0 || fputc('\n', f.fp) < 0)
            rc = al_fail("%s: write failed", path);
        free(s);
    }
    json_decref(lines[1]);
    if (rc) {
        al_atomic_abort(&f);
        return -1;
    }
    return al_atomic_commit(&f);
}

int cmd_guard_train(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align guard train", argc, argv);
    const char *data_dir = "../shared", *out = "harm_classifier.bin", *metrics = NULL, *arg;
    al_harm_train_opts o = al_harm_train_defaults();
    o.verbose = true;
    int test_percent = 20;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, NULL, "--data-dir")) {
            data_dir = a.value;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else if (cli_opt(&a, arg, NULL, "--metrics")) {
            metrics = a.value;
        } else if (cli_opt(&a, arg, NULL, "--epochs")) {
            o.epochs = cli_int(&a, 1, 1000);
        } else if (cli_opt(&a, arg, NULL, "--seed")) {
            o.seed = (uint64_t)cli_int(&a, 0, 2147483647);
        } else if (cli_opt(&a, arg, NULL, "--buckets")) {
            o.log2_buckets = cli_int(&a, 10, 24);
        } else if (cli_opt(&a, arg, NULL, "--lr")) {
            o.lr = cli_float(&a, 1e-6, 10);
        } else if (cli_opt(&a, arg, NULL, "--weight-decay")) {
            o.weight_decay = cli_float(&a, 0, 1);
        } else if (cli_opt(&a, arg, NULL, "--threshold")) {
            o.threshold = cli_float(&a, 0.001, 0.999);
        } else if (cli_opt(&a, arg, NULL, "--test-percent")) {
            test_percent = cli_int(&a, 0, 50);
        } else if (cli_flag(&a, arg, "-q", "--quiet")) {
            o.verbose = false;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    char *metrics_path = NULL;
    if (!metrics) {
        size_t n = strlen(out) + sizeof ".metrics.jsonl";
        metrics_path = malloc(n);
        if (!metrics_path)
            return 1;
        snprintf(metrics_path, n, "%s.metrics.jsonl", out);
        metrics = metrics_path;
    }
    al_harm_dataset all = {0}, train = {0}, test = {0};
    al_harm_model *m = NULL;
    json_t *settings = NULL;
    int rc = 1;
    double t0 = al_now();
    if (al_harm_dataset_load_shared(&all, data_dir) || al_harm_dataset_split(&all, test_percent, &train, &test))
        goto done;
    int harmful = 0;
    for (int i = 0; i < all.n; i++)
        harmful += all.v[i].harmful;
    fprintf(stderr, "align guard train: %d examples (%d harmful, %d benign); %d train, %d held out\n", all.n,
            harmful, all.n - harmful, train.n, test.n);
    if (!(m = al_harm_train(&train, &o)))
        goto done;
    double t_train = al_now() - t0;
    if (al_harm_save(m, out))
        goto done;
    al_harm_eval ev = {0};
    if (test.n > 0) {
        if (al_harm_evaluate(m, &test, &ev))
            goto done;
        printf("held-out harmful vs benign (%d examples, threshold %.2f): precision %.4f  recall %.4f  F1 %.4f\n",
               test.n, (double)o.threshold, ev.overall.precision, ev.overall.recall, ev.overall.f1);
        for (int h = 0; h < AL_HAZ_COUNT; h++)
            if (ev.support[h] > 0)
                printf("  %-24s support %4d  precision %.3f  recall %.3f  F1 %.3f\n", al_hazard_name((al_hazard)h),
                       ev.support[h], ev.hazard[h].precision, ev.hazard[h].recall, ev.hazard[h].f1);
    } else {
        printf("trained on all %d examples (no held-out split)\n", train.n);
    }
    settings = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:i, s:i, s:i, s:f}", "split", "settings",
                         "data_dir", data_dir, "epochs", o.epochs, "seed", (int)o.seed, "log2_buckets",
                         o.log2_buckets, "lr", (double)o.lr, "weight_decay", (double)o.weight_decay, "threshold",
                         (double)o.threshold, "test_percent", test_percent, "train_examples", train.n,
                         "test_examples", test.n, "train_seconds", t_train);
    if (!settings || write_metrics(metrics, settings, &ev, test.n))
        goto done;
    printf("wrote %s and %s\n", out, metrics);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "align guard train: %s\n", al_errmsg());
    json_decref(settings);
    al_harm_free(m);
    al_harm_dataset_free(&all);
    al_harm_dataset_free(&train);
    al_harm_dataset_free(&test);
    free(metrics_path);
    return rc;
}
