/* DPO step time with cached reference log-probs against a plain forward + backward over the
 * same chosen + rejected sequences.
 *
 * DPO: the real trainer (al_pref_train, loss sigmoid, --precompute-ref) runs STEPS steps on
 * the pairs of DATA; its metrics give each step's time (rows * T / tokens_per_second).  A DPO step is everything the
 * trainer does: batch layout, forward, per-row sums, the loss, backward, clipping, AdamW.
 * Plain: the same pairs laid out the same way (B chosen rows, then B rejected rows of T
 * tokens), al_forward + al_backward with d loss / d logp = -1/n, timed the same way, once
 * before and once after the trainer's run.  Each side reports its fastest step after two
 * warm-up steps: on a shared machine the minimum is what the code costs, the rest is
 * other processes' load.
 * The model is a random-init Llama of the given shape with the tokenizer's vocabulary.
 *
 * usage: bench_dpo DATA TOKENIZER DIM LAYERS HEADS HIDDEN PAIRS SEQ STEPS */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/train.h"

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

typedef struct plain_run {
    al_model *m;
    al_train_ctx *ctx;
    const al_pref_dataset *d;
    const al_tokenizer *tok;
    int B, T;
    int *tokens, *targets;
    float *dlogp;
} plain_run;

/* Step s of the plain run: the trainer's row layout, forward + backward; returns seconds. */
static double plain_step(plain_run *p, int s)
{
    const int B = p->B, T = p->T;
    int count = 0;
    for (int r = 0; r < B; r++) {
        al_pref_tokens t;
        if (al_pref_tokenize(&p->d->ex[(s * B + r) % p->d->n], NULL, p->tok, T + 1, &t)) {
            fprintf(stderr, "bench_dpo: %s\n", al_errmsg());
            exit(1);
        }
        const al_ints *seq[2] = {&t.chosen, &t.rejected}, *mask[2] = {&t.chosen_mask, &t.rejected_mask};
        for (int k = 0; k < 2; k++) {
            int *tk = p->tokens + (size_t)(k * B + r) * T, *tg = p->targets + (size_t)(k * B + r) * T;
            for (int j = 0; j < T; j++) {
                bool in = j < seq[k]->n - 1;
                tk[j] = in ? seq[k]->v[j] : 0;
                tg[j] = in && mask[k]->v[j + 1] ? seq[k]->v[j + 1] : -1;
                count += tg[j] >= 0;
            }
        }
        al_pref_tokens_free(&t);
    }
    for (int i = 0; i < 2 * B * T; i++)
        p->dlogp[i] = -1.0f / (float)(count ? count : 1);
    double t0 = al_now();
    al_model_zero_grads(p->m);
    if (al_forward(p->ctx, p->tokens, p->targets, NULL, NULL)) {
        fprintf(stderr, "bench_dpo: %s\n", al_errmsg());
        exit(1);
    }
    al_backward(p->ctx, p->m, p->dlogp);
    return al_now() - t0;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_dpo: %s: %s\n", what, al_errmsg());
    exit(1);
}

/* Step times of the trainer's run, from its metrics.jsonl. */
static int trainer_times(const char *run, int rows, int T, double *out, int max)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof line, f) && n < max) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *tps = json_object_get(j, "tokens_per_second");
        if (tps)
            out[n++] = (double)rows * T / json_number_value(tps);
        json_decref(j);
    }
    if (f)
        fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: bench_dpo DATA TOKENIZER DIM LAYERS HEADS HIDDEN PAIRS SEQ STEPS\n");
        return 2;
    }
    const char *data = argv[1], *tok_path = argv[2];
    const int dim = atoi(argv[3]), layers = atoi(argv[4]), heads = atoi(argv[5]), hidden = atoi(argv[6]);
    const int B = atoi(argv[7]), T = atoi(argv[8]), steps = atoi(argv[9]);
    al_tokenizer *tok;
    if (al_tokenizer_load(&tok, tok_path))
        die(tok_path);
    al_config c = {.dim = dim, .hidden_dim = hidden, .n_layers = layers, .n_heads = heads, .n_kv_heads = heads,
                   .head_dim = dim / heads, .vocab_size = al_tokenizer_vocab_size(tok), .seq_len = T + 1,
                   .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = AL_ROPE_HALF, .tied_embeddings = true,
                   .bos_id = al_tokenizer_bos(tok), .eos_id = al_tokenizer_eos(tok)};
    al_model m;
    if (al_model_init(&m, &c))
        die("model");
    al_model_init_weights(&m, 1);
    char dir[] = "/tmp/align-bench-dpo-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char model_dir[200], run_dir[200];
    snprintf(model_dir, sizeof model_dir, "%s/model", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    if (al_model_save_safetensors(&m, model_dir))
        die("save");

    al_pref_dataset d;
    al_sft_load_opts lo = {.max_examples = B * steps};
    if (al_pref_load(&d, data, &lo))
        die(data);
    al_train_ctx *ctx = al_train_ctx_new(&m, 2 * B, T);
    if (!ctx || al_model_alloc_grads(&m))
        die("context");
    plain_run p = {&m, ctx, &d, tok, B, T, malloc(sizeof(int) * 2 * B * T), malloc(sizeof(int) * 2 * B * T),
                   malloc(sizeof(float) * 2 * B * T)};
    double *dpo = calloc((size_t)steps, sizeof *dpo), *plain = malloc(2 * (size_t)steps * sizeof *plain);
    for (int s = 0; s < steps; s++)
        plain[s] = plain_step(&p, s);

    /* DPO through the trainer */
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.data = data;
    o.model = model_dir;
    o.tokenizer = tok_path;
    o.out_dir = run_dir;
    o.batch_size = B;
    o.seq_len = T;
    o.steps = steps;
    o.precompute_ref = true;
    o.eval_every = 0;
    o.save_every = 0;
    o.held_out = 0;
    o.max_examples = B * steps;
    o.quiet = true;
    if (al_pref_train(&o))
        die("dpo");
    int n_dpo = trainer_times(run_dir, 2 * B, T, dpo, steps);
    if (n_dpo < 3 || steps < 3) {
        fprintf(stderr, "bench_dpo: need at least 3 steps (the first two warm up)\n");
        return 1;
    }
    for (int s = 0; s < steps; s++)
        plain[steps + s] = plain_step(&p, s);

    /* the first two steps of each run warm up */
    double md = minimum(dpo + 2, n_dpo - 2);
    double mp = fmin(minimum(plain + 2, steps - 2), minimum(plain + steps + 2, steps - 2));
    printf("model: dim %d, %d layers, %d heads, hidden %d, vocab %d (%zu parameters)\n", dim, layers, heads, hidden,
           c.vocab_size, m.n_params);
    printf("batch: %d pairs = %d rows of %d tokens; fastest of %d steps after 2 warm-up steps\n", B, 2 * B, T,
           steps - 2);
    printf("plain forward + backward: %.2f ms\n", 1e3 * mp);
    printf("DPO step (cached reference log-probs, loss, clipping, AdamW): %.2f ms\n", 1e3 * md);
    printf("RESULT ratio=%.3f (target at most 1.10; PyTorch/TRL measured 1.2-1.5 here)\n", md / mp);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    al_train_ctx_free(ctx);
    al_pref_free(&d);
    al_model_free(&m);
    al_tokenizer_free(tok);
    free(dpo);
    free(plain);
    free(p.tokens);
    free(p.targets);
    free(p.dlogp);
    return 0;
}
