/* align guard train: fits the harm classifier on the request generator's training split and
 * the shared safety data, calibrates it on the validation split, and reports it on the
 * held-out templates (and on whole shared sources kept out, when asked). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/guard.h"
#include "args.h"
#include "commands.h"

#define DEFAULT_WORDNET "/usr/share/wordnet"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align guard train [--default | --out FILE] [options]\n"
            "\n"
            "Trains the guard's harm classifier: a logistic regression over hashed word 1-2-grams and\n"
            "character 3-5-grams with one head per hazard and one harmful/benign head.  It learns from\n"
            "the built-in request generator (align guard generate: the 14 hazards in many surface\n"
            "forms and jailbreak wrappers, and benign requests that borrow their words) and, when the\n"
            "shared data checkout is there, from its safety sets and instruction corpora\n"
            "(docs/guard_models.md maps every source onto the hazards).  It is evaluated on the\n"
            "generator's held-out templates, which share no item, frame or wrapper with training;\n"
            "--hold-out-source also keeps whole shared sources out to measure them as unseen data.\n"
            "The same seed gives the same model bit for bit.  `cmake --build` runs this with\n"
            "--default, so the built-in guard policy has its harm rail from the start.\n"
            "\n"
            "options:\n"
            "      --default           write the default model (beside the align binary, or\n"
            "                          $ALIGN_HARM_MODEL), which the built-in policy loads\n"
            "  -o, --out FILE          model file to write (default harm_classifier.bin)\n"
            "      --data-dir DIR      the shared data checkout (default ../shared; skipped with a\n"
            "                          note when the default is missing)\n"
            "      --no-shared         train on generated requests only\n"
            "      --wordnet DIR       WordNet's dict files for concept features (default\n"
            "                          /usr/share/wordnet, Debian's wordnet-base, when installed)\n"
            "      --no-wordnet        no concept features\n"
            "      --generated N       generated training requests (default 10000; 0 for none)\n"
            "      --harmful-percent P share of harmful generated requests (default 50)\n"
            "      --shared-weight W   loss weight of each shared example (default 1)\n"
            "      --valid N           generated validation requests the harmful score is calibrated\n"
            "                          on (Platt scaling; default 4000, 0 for none)\n"
            "      --heldout N         generated held-out requests to evaluate on (default 4000)\n"
            "      --hold-out-source S comma-separated shared sources to keep out of training and\n"
            "                          report on (advbench, do_not_answer, malicious_instruct,\n"
            "                          toxigen_hate, toxigen_neutral, self_instruct, alpaca, ...)\n"
            "      --test-percent P    also hold out P%% of the shared examples by a hash of their\n"
            "                          text (0..50, default 0; a split by sentence flatters the model)\n"
            "      --metrics FILE      JSON lines: settings, then held-out figures (default FILE.metrics.jsonl)\n"
            "      --epochs N          passes over the training data (default 8)\n"
            "      --seed S            example order and generated requests (default 1)\n"
            "      --buckets B         2^B hashed features, 10..24 (default 18: 16 MiB of weights)\n"
            "      --lr LR             AdamW learning rate, decayed linearly to 10%% (default 0.01)\n"
            "      --weight-decay WD   decoupled weight decay (default 1e-6)\n"
            "      --threshold T       P(harmful) at which the model says harmful (default 0.5)\n"
            "  -q, --quiet             no per-epoch lines\n"
            "  -h, --help              this text\n"
            "\n"
            "examples:\n"
            "  align guard train --default\n"
            "  align guard train --out runs/harm.bin --hold-out-source malicious_instruct,alpaca\n");
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

/* name in a comma-separated list */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

/* Generated held-out requests: the binary figures, and the false-positive rate of each
 * kind of benign request and the recall of each surface form and wrapper. */
typedef struct tally {
    const char *name;
    int n, flagged;
} tally;

static void tally_add(tally *t, int *nt, int cap, const char *name, bool flagged)
{
    int i = 0;
    while (i < *nt && strcmp(t[i].name, name))
        i++;
    if (i == *nt) {
        if (*nt == cap)
            return;
        t[(*nt)++] = (tally){name, 0, 0};
    }
    t[i].n++;
    t[i].flagged += flagged;
}

/* count names what a tally counted ("flagged", or "correct" for the wrappers) */
static json_t *tally_json(const tally *t, int n, const char *count, const char *rate)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, t[i].name, json_pack("{s:i, s:i, s:f}", "n", t[i].n, count, t[i].flagged, rate,
                                                     t[i].n ? (double)t[i].flagged / t[i].n : 0.0));
    return o;
}

static int eval_generated(const al_harm_model *m, const al_harm_gen_set *s, json_t *line)
{
    al_harm_prf p = {0};
    tally ben[16], form[16], wrap[16]; /* wrap counts correct decisions in its "flagged" */
    int nb = 0, nf = 0, nw = 0, bin_n[10] = {0}, bin_pos[10] = {0}, at_tp[9] = {0}, at_fp[9] = {0}, pos = 0;
    double bin_p[10] = {0};
    for (int i = 0; i < s->n; i++) {
        const al_harm_gen_example *x = &s->v[i];
        al_harm_scores sc;
        if (al_harm_score(m, x->prompt, strlen(x->prompt), &sc))
            return -1;
        int bin = sc.harmful >= 1.0f ? 9 : (int)(sc.harmful * 10);
        bin_n[bin]++, bin_pos[bin] += x->harmful, bin_p[bin] += sc.harmful;
        pos += x->harmful;
        for (int t = 0; t < 9; t++) /* thresholds 0.1 .. 0.9 */
            if (sc.harmful >= (t + 1) / 10.0f)
                *(x->harmful ? &at_tp[t] : &at_fp[t]) += 1;
        bool flag = sc.harmful >= al_harm_threshold(m);
        p.tp += x->harmful && flag, p.fn += x->harmful && !flag;
        p.fp += !x->harmful && flag, p.tn += !x->harmful && !flag;
        if (!x->harmful)
            tally_add(ben, &nb, 16, al_harm_gen_phenomenon_name(x->phenomenon), flag);
        else
            tally_add(form, &nf, 16, x->form, flag);
        tally_add(wrap, &nw, 16, x->wrapper ? x->wrapper : "none", flag == x->harmful);
    }
    al_harm_prf_finish(&p);
    double fpr = p.fp + p.tn ? (double)p.fp / (p.fp + p.tn) : 0;
    printf("held-out templates (%d generated requests): precision %.4f  recall %.4f  F1 %.4f  FPR %.4f\n", s->n,
           p.precision, p.recall, p.f1, fpr);
    printf("  benign, flagged by kind:");
    for (int i = 0; i < nb; i++)
        printf(" %s %d/%d", ben[i].name, ben[i].flagged, ben[i].n);
    printf("\n  harmful, flagged by form:");
    for (int i = 0; i < nf; i++)
        printf(" %s %d/%d", form[i].name, form[i].flagged, form[i].n);
    printf("\n  accuracy by wrapper:");
    for (int i = 0; i < nw; i++)
        printf(" %s %d/%d", wrap[i].name, wrap[i].flagged, wrap[i].n);
    printf("\n  reliability (P(harmful) bin: requests, mean P, share harmful):");
    json_t *rel = json_array();
    for (int b = 0; b < 10; b++) {
        if (!bin_n[b])
            continue;
        printf(" [%.1f,%.1f) %d %.2f %.2f", b / 10.0, (b + 1) / 10.0, bin_n[b], bin_p[b] / bin_n[b],
               (double)bin_pos[b] / bin_n[b]);
        json_array_append_new(rel, json_pack("{s:f, s:f, s:i, s:f, s:f}", "from", b / 10.0, "to", (b + 1) / 10.0,
                                             "n", bin_n[b], "mean_p", bin_p[b] / bin_n[b], "share_harmful",
                                             (double)bin_pos[b] / bin_n[b]));
    }
    printf("\n  by threshold (recall / false-positive rate):");
    json_t *thr = json_array();
    for (int t = 0; t < 9; t++) {
        double rec = pos ? (double)at_tp[t] / pos : 0, fpr_t = s->n > pos ? (double)at_fp[t] / (s->n - pos) : 0;
        printf(" %.1f: %.3f / %.3f", (t + 1) / 10.0, rec, fpr_t);
        json_array_append_new(thr,
                              json_pack("{s:f, s:f, s:f}", "threshold", (t + 1) / 10.0, "recall", rec, "fpr", fpr_t));
    }
    printf("\n");
    json_object_set_new(line, "reliability", rel);
    json_object_set_new(line, "by_threshold", thr);
    json_object_set_new(line, "split", json_string("heldout_templates"));
    json_object_set_new(line, "examples", json_integer(s->n));
    json_object_set_new(line, "harmful", prf_json(&p));
    json_object_set_new(line, "fpr", json_real(fpr));
    json_object_set_new(line, "benign_by_phenomenon", tally_json(ben, nb, "flagged", "flagged_rate"));
    json_object_set_new(line, "harmful_by_form", tally_json(form, nf, "flagged", "recall"));
    json_object_set_new(line, "by_wrapper", tally_json(wrap, nw, "correct", "accuracy"));
    return 0;
}

/* Whole shared sources kept out of training: the share of each flagged. */
static json_t *eval_sources(const al_harm_model *m, const al_harm_dataset *held)
{
    tally t[32];
    int nt = 0;
    json_t *o = json_object();
    for (int i = 0; i < held->n; i++) {
        al_harm_scores sc;
        if (al_harm_score(m, held->v[i].text, strlen(held->v[i].text), &sc)) {
            json_decref(o);
            return NULL;
        }
        tally_add(t, &nt, 32, held->v[i].source, sc.harmful >= al_harm_threshold(m));
    }
    for (int i = 0; i < nt; i++) {
        int harmful = 0;
        for (int k = 0; k < held->n; k++)
            harmful += !strcmp(held->v[k].source, t[i].name) && held->v[k].harmful;
        printf("held-out source %-20s %5d examples (%s): %.1f%% flagged\n", t[i].name, t[i].n,
               harmful ? "harmful" : "benign", 100.0 * t[i].flagged / t[i].n);
        json_object_set_new(o, t[i].name, json_pack("{s:i, s:b, s:i}", "n", t[i].n, "harmful", harmful > 0,
                                                    "flagged", t[i].flagged));
    }
    return o;
}

static int write_lines(const char *path, json_t **lines, int n)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char *s = json_dumps(lines[i], JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (!s || fputs(s, f.fp) < 0 || fputc('\n', f.fp) < 0)
            rc = al_fail("%s: write failed", path);
        free(s);
    }
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
    const char *data_dir = NULL, *out = NULL, *metrics = NULL, *hold_sources = NULL, *arg;
    al_harm_train_opts o = al_harm_train_defaults();
    o.verbose = true;
    int test_percent = 0, n_generated = 10000, n_heldout = 4000, n_valid = 4000, harmful_percent = 50;
    float shared_weight = 1.0f;
    bool use_default = false, no_shared = false, no_wordnet = false;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_flag(&a, arg, NULL, "--default")) {
            use_default = true;
        } else if (cli_opt(&a, arg, NULL, "--data-dir")) {
            data_dir = a.value;
        } else if (cli_opt(&a, arg, NULL, "--wordnet")) {
            o.wordnet_dir = a.value;
        } else if (cli_flag(&a, arg, NULL, "--no-wordnet")) {
            no_wordnet = true;
        } else if (cli_flag(&a, arg, NULL, "--no-shared")) {
            no_shared = true;
        } else if (cli_opt(&a, arg, NULL, "--generated")) {
            n_generated = cli_int(&a, 0, 10000000);
        } else if (cli_opt(&a, arg, NULL, "--shared-weight")) {
            shared_weight = cli_float(&a, 0.01, 100);
        } else if (cli_opt(&a, arg, NULL, "--harmful-percent")) {
            harmful_percent = cli_int(&a, 0, 100);
        } else if (cli_opt(&a, arg, NULL, "--valid")) {
            n_valid = cli_int(&a, 0, 10000000);
        } else if (cli_opt(&a, arg, NULL, "--heldout")) {
            n_heldout = cli_int(&a, 0, 10000000);
        } else if (cli_opt(&a, arg, NULL, "--hold-out-source")) {
            hold_sources = a.value;
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
    if (use_default && out) {
        fprintf(stderr, "align guard train: --default and --out name two different files; give one\n");
        return 2;
    }
    char *default_path = use_default ? al_harm_default_model_path() : NULL, *metrics_path = NULL;
    if (use_default && !default_path) {
        fprintf(stderr, "align guard train: %s\n", al_errmsg());
        return 1;
    }
    out = use_default ? default_path : out ? out : "harm_classifier.bin";
    if (!metrics) {
        size_t n = strlen(out) + sizeof ".metrics.jsonl";
        metrics_path = malloc(n);
        if (!metrics_path)
            return 1;
        snprintf(metrics_path, n, "%s.metrics.jsonl", out);
        metrics = metrics_path;
    }
    if (!data_dir && !no_shared) {
        data_dir = "../shared";
        if (!al_file_exists("../shared/data/safety")) {
            fprintf(stderr, "align guard train: no ../shared here; training on generated requests only "
                            "(--data-dir DIR adds the shared safety data)\n");
            no_shared = true;
        }
    }
    if (no_wordnet) {
        o.wordnet_dir = NULL;
    } else if (!o.wordnet_dir) {
        o.wordnet_dir = DEFAULT_WORDNET;
        if (!al_file_exists(DEFAULT_WORDNET "/index.noun")) {
            fprintf(stderr, "align guard train: WordNet is not installed (%s); training without concept features "
                            "(apt-get install wordnet-base, or --no-wordnet to silence this)\n", DEFAULT_WORDNET);
            o.wordnet_dir = NULL;
        }
    }
    al_harm_dataset shared = {0}, all = {0}, train = {0}, test = {0}, held_sources = {0};
    al_harm_gen_set gen = {0}, gen_held = {0};
    al_harm_model *m = NULL;
    json_t *lines[4] = {0};
    int n_lines = 0, rc = 1;
    double t0 = al_now();
    if (al_harm_gen_check())
        goto done;
    if (!no_shared && al_harm_dataset_load_shared(&shared, data_dir))
        goto done;
    for (int i = 0; i < shared.n; i++) {
        const al_harm_example *e = &shared.v[i];
        al_harm_dataset *to = hold_sources && listed(hold_sources, e->source) ? &held_sources : &all;
        if (al_harm_dataset_add(to, e->text, e->harmful, e->hazards, e->source))
            goto done;
        to->v[to->n - 1].weight = (e->weight > 0 ? e->weight : 1.0f) * shared_weight;
    }
    if (al_harm_dataset_split(&all, test_percent, &train, &test))
        goto done;
    al_harm_gen_opts go = al_harm_gen_defaults();
    go.seed = o.seed, go.n = n_generated, go.harmful_percent = harmful_percent;
    if (al_harm_generate(&go, &gen))
        goto done;
    for (int i = 0; i < gen.n; i++)
        if (al_harm_dataset_add(&train, gen.v[i].prompt, gen.v[i].harmful,
                                gen.v[i].hazard >= 0 ? 1u << gen.v[i].hazard : 0, "generated"))
            goto done;
    go.split = AL_HARM_GEN_HELDOUT, go.n = n_heldout, go.seed = o.seed + 1000;
    if (al_harm_generate(&go, &gen_held))
        goto done;
    int harmful = 0;
    for (int i = 0; i < train.n; i++)
        harmful += train.v[i].harmful;
    fprintf(stderr,
            "align guard train: %d training examples (%d harmful, %d benign: %d generated, %d shared); "
            "evaluating on %d held-out-template requests%s\n",
            train.n, harmful, train.n - harmful, gen.n, train.n - gen.n, gen_held.n,
            held_sources.n ? " and held-out sources" : "");
    if (!(m = al_harm_train(&train, &o)))
        goto done;
    double t_train = al_now() - t0;
    go.split = AL_HARM_GEN_VALID, go.n = n_valid, go.seed = o.seed + 2000;
    if (n_valid > 0) {
        al_harm_gen_set valid = {0};
        al_harm_dataset vd = {0};
        int bad = al_harm_generate(&go, &valid);
        for (int i = 0; !bad && i < valid.n; i++)
            bad = al_harm_dataset_add(&vd, valid.v[i].prompt, valid.v[i].harmful, 0, "generated_valid");
        bad = bad || al_harm_calibrate(m, &vd);
        al_harm_gen_free(&valid);
        al_harm_dataset_free(&vd);
        if (bad)
            goto done;
        float ca, cb;
        al_harm_calibration(m, &ca, &cb);
        fprintf(stderr, "align guard train: calibrated on %d validation-template requests: P = sigmoid(%.3f z %+.3f)\n",
                n_valid, (double)ca, (double)cb);
    }
    if (al_harm_save(m, out))
        goto done;
    float calib_a, calib_b;
    al_harm_calibration(m, &calib_a, &calib_b);
    json_t *st = json_pack("{s:s, s:s?, s:s?, s:i, s:i, s:i, s:f}", "split", "settings", "data_dir",
                           no_shared ? NULL : data_dir, "wordnet", o.wordnet_dir, "generated", n_generated,
                           "harmful_percent", harmful_percent, "valid_generated", n_valid, "shared_weight",
                           (double)shared_weight);
    json_object_set_new(st, "heldout_generated", json_integer(n_heldout));
    json_object_set_new(st, "epochs", json_integer(o.epochs));
    json_object_set_new(st, "seed", json_integer((json_int_t)o.seed));
    json_object_set_new(st, "log2_buckets", json_integer(o.log2_buckets));
    json_object_set_new(st, "lr", json_real(o.lr));
    json_object_set_new(st, "weight_decay", json_real(o.weight_decay));
    json_object_set_new(st, "threshold", json_real(o.threshold));
    json_object_set_new(st, "calibration_a", json_real(calib_a));
    json_object_set_new(st, "calibration_b", json_real(calib_b));
    json_object_set_new(st, "test_percent", json_integer(test_percent));
    json_object_set_new(st, "hold_out_sources", hold_sources ? json_string(hold_sources) : json_null());
    json_object_set_new(st, "train_examples", json_integer(train.n));
    json_object_set_new(st, "train_seconds", json_real(t_train));
    lines[n_lines++] = st;
    if (gen_held.n) {
        lines[n_lines] = json_object();
        if (eval_generated(m, &gen_held, lines[n_lines++]))
            goto done;
    }
    if (held_sources.n) {
        json_t *src = eval_sources(m, &held_sources);
        if (!src)
            goto done;
        lines[n_lines++] = json_pack("{s:s, s:o}", "split", "heldout_sources", "sources", src);
    }
    if (test.n > 0) {
        al_harm_eval ev = {0};
        if (al_harm_evaluate(m, &test, &ev))
            goto done;
        printf("held-out shared sentences (%d, same sources as training): precision %.4f  recall %.4f  F1 %.4f\n",
               test.n, ev.overall.precision, ev.overall.recall, ev.overall.f1);
        lines[n_lines++] = json_pack("{s:s, s:i, s:o}", "split", "heldout_sentences", "examples", test.n, "harmful",
                                     prf_json(&ev.overall));
    }
    if (write_lines(metrics, lines, n_lines))
        goto done;
    printf("wrote %s and %s\n", out, metrics);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "align guard train: %s\n", al_errmsg());
    for (int i = 0; i < n_lines; i++)
        json_decref(lines[i]);
    al_harm_free(m);
    al_harm_dataset_free(&shared);
    al_harm_dataset_free(&all);
    al_harm_dataset_free(&train);
    al_harm_dataset_free(&test);
    al_harm_dataset_free(&held_sources);
    al_harm_gen_free(&gen);
    al_harm_gen_free(&gen_held);
    free(metrics_path);
    free(default_path);
    return rc;
}
