/* The harm classifier's two candidates on the same split (issue 6: "a tiny transformer on
 * the engine or a hashed n-gram linear model: choose by the bench").
 *
 *   n-gram:      al_harm_train with its defaults (the shipped classifier).
 *   transformer: stories260K (5 layers, width 64, pretrained on English stories) with a
 *                score head read at the last token, fine-tuned on harmful (1) vs benign
 *                (0) with binary cross-entropy through the engine's trunk-only forward and
 *                backward (al_forward_hidden / al_backward_hidden), AdamW, weighted like
 *                the n-gram model's examples.
 *
 * Both are scored on the overall harmful/benign decision at 0.5: precision, recall and F1
 * on the held-out 20% (al_harm_dataset_split), the false-positive rate on the held-out
 * "sounds dangerous" list, and prompts/s on one thread.
 *
 * usage: bench_guard_transformer SHARED_DIR CONTRAST_FILE [EPOCHS] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/guard.h"
#include "align/train.h"

#define T 64
#define B 32

typedef struct scores {
    int tp, fp, fn, tn;
} scores;

static void count(scores *s, bool truth, bool said)
{
    s->tp += truth && said;
    s->fp += !truth && said;
    s->fn += truth && !said;
    s->tn += !truth && !said;
}

static void report(const char *name, const scores *h, const scores *c, double per_s, double train_s)
{
    double p = h->tp ? (double)h->tp / (h->tp + h->fp) : 0, r = h->tp ? (double)h->tp / (h->tp + h->fn) : 0;
    printf("%-12s precision %.4f  recall %.4f  F1 %.4f  contrast FPR %.3f (%d/%d)  %9.0f prompts/s  train %.1f s\n",
           name, p, r, p + r > 0 ? 2 * p * r / (p + r) : 0, (double)c->fp / (c->fp + c->tn), c->fp, c->fp + c->tn,
           per_s, train_s);
}

static int load_contrast(const char *path, al_harm_dataset *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return al_fail("%s: cannot open", path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line && *line != '#' && al_harm_dataset_add(out, line, false, 0, "heldout_contrast"))
            return -1;
    }
    fclose(f);
    return 0;
}

/* ---- the transformer ---- */

typedef struct tclf {
    al_model m;
    al_tokenizer *tok;
    al_train_ctx *ctx;
    int tokens[B * T], last[B];
} tclf;

/* Row r: BOS + the text's tokens, keeping the end when too long. */
static void fill(tclf *c, const al_harm_dataset *d, const int *idx, int n)
{
    for (int r = 0; r < B; r++) {
        int *row = c->tokens + r * T;
        memset(row, 0, sizeof(int) * T);
        c->last[r] = -1;
        if (r >= n)
            continue;
        al_ints ids = {0};
        const char *s = d->v[idx[r]].text;
        al_tokenizer_encode(c->tok, s, strlen(s), true, false, &ids);
        int len = ids.n < T ? ids.n : T, skip = ids.n - len;
        memcpy(row, ids.v + skip, sizeof(int) * (size_t)len);
        c->last[r] = len - 1;
        al_ints_free(&ids);
    }
}

static void logits(tclf *c, float *out)
{
    al_forward_hidden(c->ctx, c->tokens, NULL, NULL);
    const float *h = al_ctx_hidden(c->ctx);
    for (int r = 0; r < B; r++) {
        double z = 0;
        for (int i = 0; r < B && c->last[r] >= 0 && i < c->m.cfg.dim; i++)
            z += (double)h[((size_t)r * T + c->last[r]) * c->m.cfg.dim + i] * c->m.w.score[i];
        out[r] = (float)z;
    }
}

static void train_transformer(tclf *c, const al_harm_dataset *train, int epochs)
{
    const int D = c->m.cfg.dim;
    al_adamw opt;
    al_adamw_opts ao = al_adamw_defaults();
    ao.weight_decay = 0;
    al_adamw_init(&opt, &c->m, &ao);
    al_model_alloc_grads(&c->m);
    float *dh = calloc((size_t)B * T * D, sizeof *dh), z[B];
    int *perm = malloc(sizeof(int) * (size_t)train->n);
    long steps = (long)epochs * ((train->n + B - 1) / B), step = 0;
    al_schedule sched = {.kind = AL_SCHED_COSINE, .peak_lr = 1e-3f, .min_lr = 1e-4f, .warmup = 20, .total = steps};
    for (int e = 0; e < epochs; e++) {
        al_epoch_order(perm, train->n, 7, e);
        for (int i0 = 0; i0 < train->n; i0 += B, step++) {
            int n = train->n - i0 < B ? train->n - i0 : B;
            fill(c, train, perm + i0, n);
            logits(c, z);
            al_model_zero_grads(&c->m);
            memset(dh, 0, sizeof(float) * (size_t)B * T * D);
            const float *h = al_ctx_hidden(c->ctx);
            double wsum = 0;
            for (int r = 0; r < n; r++)
                wsum += train->v[perm[i0 + r]].weight > 0 ? train->v[perm[i0 + r]].weight : 1;
            for (int r = 0; r < n; r++) {
                const al_harm_example *ex = &train->v[perm[i0 + r]];
                double w = (ex->weight > 0 ? ex->weight : 1) / wsum, p = 1 / (1 + exp(-(double)z[r]));
                float g = (float)(w * (p - (ex->harmful ? 1 : 0))); /* d BCE / d logit */
                size_t at = ((size_t)r * T + c->last[r]) * D;
                for (int i = 0; i < D; i++) {
                    dh[at + i] = g * c->m.w.score[i];
                    c->m.g.score[i] += g * h[at + i];
                }
            }
            al_backward_hidden(c->ctx, &c->m, dh);
            al_grad_clip(c->m.grads, c->m.n_params, 1.0);
            al_adamw_step(&opt, c->m.params, c->m.grads, al_schedule_lr(&sched, step));
        }
    }
    al_adamw_free(&opt);
    free(dh);
    free(perm);
}

static void eval_transformer(tclf *c, const al_harm_dataset *d, scores *s, double *per_s)
{
    int idx[B];
    float z[B];
    double t0 = al_now();
    for (int i0 = 0; i0 < d->n; i0 += B) {
        int n = d->n - i0 < B ? d->n - i0 : B;
        for (int r = 0; r < n; r++)
            idx[r] = i0 + r;
        fill(c, d, idx, n);
        logits(c, z);
        for (int r = 0; r < n; r++)
            count(s, d->v[i0 + r].harmful, z[r] >= 0);
    }
    if (per_s)
        *per_s = d->n / (al_now() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_guard_transformer SHARED_DIR CONTRAST_FILE [EPOCHS]\n");
        return 2;
    }
    const int epochs = argc > 3 ? atoi(argv[3]) : 3;
    al_harm_dataset all = {0}, train = {0}, test = {0}, contrast = {0};
    char path[1024];
    if (al_harm_dataset_load_shared(&all, argv[1]) || al_harm_dataset_split(&all, 20, &train, &test) ||
        load_contrast(argv[2], &contrast)) {
        fprintf(stderr, "bench_guard_transformer: %s\n", al_errmsg());
        return 1;
    }
    printf("train %d, held out %d, contrast %d; overall harmful/benign decision at 0.5, one thread\n\n", train.n,
           test.n, contrast.n);

    /* n-gram */
    double t0 = al_now();
    al_harm_train_opts o = al_harm_train_defaults();
    al_harm_model *hm = al_harm_train(&train, &o);
    double ng_train = al_now() - t0;
    scores nh = {0}, nc = {0};
    t0 = al_now();
    for (int i = 0; i < test.n; i++) {
        al_harm_scores s;
        al_harm_score(hm, test.v[i].text, strlen(test.v[i].text), &s);
        count(&nh, test.v[i].harmful, s.harmful >= 0.5f);
    }
    double ng_per_s = test.n / (al_now() - t0);
    for (int i = 0; i < contrast.n; i++) {
        al_harm_scores s;
        al_harm_score(hm, contrast.v[i].text, strlen(contrast.v[i].text), &s);
        count(&nc, false, s.harmful >= 0.5f);
    }
    report("n-gram", &nh, &nc, ng_per_s, ng_train);

    /* transformer: training may use the threads; scoring is timed on one */
    tclf c = {0};
    al_model lm;
    snprintf(path, sizeof path, "%s/models/stories260K/stories260K.bin", argv[1]);
    if (al_model_load(&lm, path) || al_model_to_half_rope(&lm) || al_reward_model_from_lm(&c.m, &lm, 3)) {
        fprintf(stderr, "bench_guard_transformer: %s\n", al_errmsg());
        return 1;
    }
    al_model_free(&lm);
    snprintf(path, sizeof path, "%s/models/stories260K/tok512.bin", argv[1]);
    if (al_tokenizer_load(&c.tok, path) || !(c.ctx = al_train_ctx_new(&c.m, B, T))) {
        fprintf(stderr, "bench_guard_transformer: %s\n", al_errmsg());
        return 1;
    }
    t0 = al_now();
    train_transformer(&c, &train, epochs);
    double tf_train = al_now() - t0;
    omp_set_num_threads(1);
    scores th = {0}, tc = {0};
    double tf_per_s;
    eval_transformer(&c, &test, &th, &tf_per_s);
    eval_transformer(&c, &contrast, &tc, NULL);
    char name[32];
    snprintf(name, sizeof name, "transformer");
    report(name, &th, &tc, tf_per_s, tf_train);
    printf("\n(transformer: stories260K + score head, %d epochs of batch %d x %d tokens, lr 1e-3 cosine)\n", epochs,
           B, T);
    al_train_ctx_free(c.ctx);
    al_tokenizer_free(c.tok);
    al_model_free(&c.m);
    al_harm_free(hm);
    al_harm_dataset_free(&all);
    al_harm_dataset_free(&train);
    al_harm_dataset_free(&test);
    al_harm_dataset_free(&contrast);
    return 0;
}
