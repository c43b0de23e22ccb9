/* What reduced precision costs in perplexity, and what it buys in speed: stories260K
 * teacher-forced over TinyStories validation text with the decoder's weights as f32, bf16
 * and int8 (al_decoder_set_weights) and its KV cache as f32 and f16 (al_decoder_new_kv).
 *
 * The text's stories (a story starts at a paragraph "Once upon a time"; the head before the
 * first is skipped) are encoded each as BOS + tokens, as llama2.c pretokenizes TinyStories,
 * joined into one stream and cut into windows of WINDOW tokens.  A window is fed one token
 * per step from its first and every next token is scored: WINDOW - 1 predictions per
 * window, BATCH windows decoded at once (al_decoder_step_each; the log-softmax of each row
 * runs inside the step).  Every configuration scores the same tokens.  tokens/s counts fed
 * tokens, the scoring included, median of REPS passes.
 *
 * Then the speed where the weights' bytes matter: a model of llama2.c's stories42M shape
 * (dim 512, 8 layers, hidden 1376, vocabulary 32000; 58M parameters, untied) with random
 * weights, above the decoder's 8M-parameter line, so f32 decodes through sgemm on the
 * model's floats and bf16 / int8 through their packed copies; greedy steps from BOS, 1
 * and 8 sequences (--no-large skips it).
 *
 * usage: bench_precision [TEXT] [--model M] [--tokenizer T] [--window N] [--batch B]
 *                        [--max-windows N] [--reps R] [--no-large] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "bench_util.h"
#include "align/tokenizer.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_precision: %s: %s\n", what, al_errmsg());
    exit(1);
}

/* BOS + tokens of each story, joined */
static void load_stream(const char *path, const al_tokenizer *tok, al_ints *out)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        die(path);
    const char *key = "\n\nOnce upon a time";
    const char *p = strncmp(b.data, key + 2, strlen(key + 2)) == 0 ? b.data : strstr(b.data, key);
    if (p && p != b.data)
        p += 2;
    while (p && *p) {
        const char *end = strstr(p, key);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == '\n' || p[len - 1] == ' ' || p[len - 1] == '\r'))
            len--;
        if (al_tokenizer_encode(tok, p, len, true, false, out))
            die(path);
        p = end ? end + 2 : NULL;
    }
    al_buf_free(&b);
}

typedef struct score_ctx {
    int *targets;       /* [rows] this step's next tokens (greedy: written by pick) */
    int vocab;
    double *nll;        /* [rows] summed per window */
} score_ctx;

/* -log softmax(logits)[target], on the thread that computed the row */
static void score_row(void *user, int row, float *logits)
{
    score_ctx *s = user;
    float mx = logits[0];
    for (int v = 1; v < s->vocab; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int v = 0; v < s->vocab; v++)
        sum += exp((double)logits[v] - mx);
    s->nll[row] += log(sum) - ((double)logits[s->targets[row]] - mx);
}

static void pick(void *user, int row, float *logits)
{
    score_ctx *s = user;
    s->targets[row] = bench_argmax(logits, s->vocab);
}

/* One pass over every window: returns the summed NLL, leaves the seconds in *secs. */
static double pass(al_decoder *d, const al_model *m, const int *stream, int n_windows, int window, int batch,
                   double *secs)
{
    int *in = malloc((size_t)batch * sizeof *in), *next = malloc((size_t)batch * sizeof *next);
    double *nll = calloc((size_t)batch, sizeof *nll), total = 0;
    if (!in || !next || !nll)
        die("out of memory");
    score_ctx sc = {.targets = next, .vocab = m->cfg.vocab_size, .nll = nll};
    const double t0 = al_now();
    for (int w0 = 0; w0 < n_windows; w0 += batch) {
        const int n = n_windows - w0 < batch ? n_windows - w0 : batch;
        al_decoder_reset(d, -1);
        memset(nll, 0, (size_t)n * sizeof *nll);
        for (int p = 0; p + 1 < window; p++) {
            for (int i = 0; i < n; i++) {
                const int *win = stream + (size_t)(w0 + i) * window;
                in[i] = win[p], next[i] = win[p + 1];
            }
            if (!al_decoder_step_each(d, NULL, in, n, score_row, &sc))
                die("step");
        }
        for (int i = 0; i < n; i++)
            total += nll[i];
    }
    *secs = al_now() - t0;
    free(in), free(next), free(nll);
    return total;
}

/* Greedy decoding speed of a random stories42M-shaped model per weight type. */
static void large_speed(int reps, double *tps)
{
    al_model m;
    bench_large_model(&m, 256);
    const al_config c = m.cfg;
    const size_t mats = m.n_params - (size_t)c.vocab_size * c.dim - (size_t)(2 * c.n_layers + 1) * c.dim;
    printf("\nrandom stories42M shape (%.1fM parameters, %.0f MB of matrices as floats), greedy decoding of 64 "
           "positions from BOS, median of %d\n\n| weights | matrix bytes | 1 sequence tok/s | 8 sequences tok/s |\n"
           "|---|---|---|---|\n",
           m.n_params / 1e6, mats * 4 / 1e6, reps);
    const al_weight_type wts[3] = {AL_W_F32, AL_W_BF16, AL_W_INT8};
    const int steps = 64, ns[2] = {1, 8};
    for (int w = 0; w < 3; w++) {
        double med[2];
        for (int k = 0; k < 2; k++) {
            const int n = ns[k];
            int tok[8];
            score_ctx sc = {.targets = tok, .vocab = c.vocab_size};
            al_decoder *d = al_decoder_new(&m, n, steps);
            if (!d || al_decoder_set_weights(d, wts[w]))
                die("decoder");
            for (int r = 0; r < reps; r++) {
                al_decoder_reset(d, -1);
                for (int i = 0; i < n; i++)
                    tok[i] = c.bos_id;
                const double t0 = al_now();
                for (int s = 0; s < steps; s++)
                    if (!al_decoder_step_each(d, NULL, tok, n, pick, &sc))
                        die("step");
                tps[r] = (double)n * steps / (al_now() - t0);
            }
            qsort(tps, (size_t)reps, sizeof *tps, bench_cmp_double);
            med[k] = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
            al_decoder_free(d);
        }
        const double bytes = wts[w] == AL_W_F32 ? 4.0 : wts[w] == AL_W_BF16 ? 2.0 : 1.0;
        printf("| %s | %.0f MB | %.1f | %.1f |\n", al_weight_type_name(wts[w]), mats * bytes / 1e6, med[0], med[1]);
        fflush(stdout);
    }
    al_model_free(&m);
}

int main(int argc, char **argv)
{
    const char *text = ALIGN_SHARED_DIR "/corpora/tinystories/TinyStories-validation-head.txt";
    const char *model = ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin";
    const char *tok_path = ALIGN_SHARED_DIR "/models/stories260K/tok512.bin";
    int window = 256, batch = 32, max_windows = 0, reps = 3, large = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v)
            model = v, i++;
        else if (!strcmp(a, "--tokenizer") && v)
            tok_path = v, i++;
        else if (!strcmp(a, "--window") && v)
            window = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v)
            batch = atoi(v), i++;
        else if (!strcmp(a, "--max-windows") && v)
            max_windows = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v)
            reps = atoi(v), i++;
        else if (!strcmp(a, "--no-large"))
            large = 0;
        else if (a[0] != '-')
            text = a;
        else {
            fprintf(stderr, "usage: bench_precision [TEXT] [--model M] [--tokenizer T] [--window N] [--batch B] "
                            "[--max-windows N] [--reps R] [--no-large]\n");
            return 2;
        }
    }
    al_model m;
    al_tokenizer *tok = NULL;
    if (al_model_load(&m, model))
        die(model);
    if (al_tokenizer_load(&tok, tok_path))
        die(tok_path);
    if (window < 2 || window > m.cfg.seq_len || batch < 1 || reps < 1) {
        fprintf(stderr, "bench_precision: window must be in [2, %d], batch and reps positive\n", m.cfg.seq_len);
        return 2;
    }
    al_ints stream = {0};
    load_stream(text, tok, &stream);
    int n_windows = stream.n / window;
    if (max_windows > 0 && n_windows > max_windows)
        n_windows = max_windows;
    if (n_windows < 1) {
        fprintf(stderr, "bench_precision: %s holds fewer than %d tokens\n", text, window);
        return 1;
    }
    const double scored = (double)n_windows * (window - 1);
    printf("%s, %d windows of %d tokens (%.0f predictions), %d windows at a time, median of %d passes\n\n", model,
           n_windows, window, scored, batch, reps);
    printf("| weights | KV cache | perplexity | vs f32/f32 | tokens/s |\n|---|---|---|---|---|\n");
    const al_weight_type wts[3] = {AL_W_F32, AL_W_BF16, AL_W_INT8};
    const al_kv_type kvs[2] = {AL_KV_F32, AL_KV_F16};
    double base = 0, *tps = malloc((size_t)reps * sizeof *tps);
    for (int w = 0; w < 3; w++)
        for (int k = 0; k < 2; k++) {
            al_decoder *d = al_decoder_new_kv(&m, batch, window, kvs[k]);
            if (!d || al_decoder_set_weights(d, wts[w]))
                die("decoder");
            double secs, nll = 0;
            for (int r = 0; r < reps; r++) {
                nll = pass(d, &m, stream.v, n_windows, window, batch, &secs);
                tps[r] = (double)n_windows * (window - 1) / secs;
            }
            qsort(tps, (size_t)reps, sizeof *tps, bench_cmp_double);
            const double ppl = exp(nll / scored);
            const double med = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
            if (w == 0 && k == 0)
                base = ppl;
            printf("| %s | %s | %.4f | %+.3f%% | %.0f |\n", al_weight_type_name(wts[w]), k ? "f16" : "f32", ppl,
                   100.0 * (ppl / base - 1), med);
            fflush(stdout);
            al_decoder_free(d);
        }
    al_ints_free(&stream);
    al_tokenizer_free(tok);
    al_model_free(&m);
    if (large)
        large_speed(reps, tps);
    free(tps);
    return 0;
}
