/* Generation throughput on stories260K: single-stream greedy decoding (run.c's
 * `-t 0 -n STEPS` workload) and batched decoding of many sequences at once.
 * Each figure is the median of REPS timed runs, the statistic bench/generate.sh also
 * takes of run.c, so the printed ratios set like against like.
 *
 * usage: bench_generate [MODEL] [BATCH] [STEPS] [REPS] [--exact] [--kv-f16] [--generate]
 *          --generate: also al_generate with the CLI's top-p sampling, in this process
 *        bench_generate [MODEL] [BATCH] [STEPS] --first-step   a fresh process's first step
 *        bench_generate [MODEL] --prefill     a prompt read by one prefill vs single steps */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "bench_util.h"

typedef struct greedy {
    int *tok;
    int vocab;
} greedy;

/* runs on the thread that computed the row, inside the step */
static void pick(void *user, int row, float *logits)
{
    greedy *g = user;
    g->tok[row] = bench_argmax(logits, g->vocab);
}

/* Greedy decoding of `steps` positions from BOS for n sequences, reps times; returns the
 * median tokens/s and leaves every run's figure in tps[0..reps), sorted. */
static double run(const al_model *m, int n, int steps, int reps, int exact, al_kv_type kv, double *tps)
{
    int *tok = malloc(sizeof(int) * (size_t)n);
    al_decoder *d = al_decoder_new_kv(m, n, steps, kv);
    if (!d || !tok || (exact && al_decoder_set_exact(d, true))) {
        fprintf(stderr, "bench: %s\n", al_errmsg());
        exit(1);
    }
    for (int r = 0; r < reps; r++) {
        al_decoder_reset(d, -1);
        for (int i = 0; i < n; i++)
            tok[i] = m->cfg.bos_id;
        double t0 = al_now();
        greedy g = {tok, m->cfg.vocab_size};
        for (int s = 0; s < steps; s++)
            al_decoder_step_each(d, NULL, tok, n, pick, &g);
        tps[r] = (double)n * steps / (al_now() - t0);
    }
    qsort(tps, (size_t)reps, sizeof *tps, bench_cmp_double);
    double median = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    al_decoder_free(d);
    free(tok);
    return median;
}

/* What `align generate --num-samples n -t 0.8 -p 0.9` runs, in this process: al_generate
 * from BOS with top-p sampling, continuous batching and the EOS stop, steps - 1 new tokens,
 * reps times; tokens/s of its steps (al_gen_stats), as the CLI reports them.  Returns the
 * median and leaves every run's figure in tps[0..reps), sorted. */
static double run_generate(const al_model *m, int n, int steps, int reps, al_kv_type kv, double *tps)
{
    al_ints *prompts = calloc((size_t)n, sizeof *prompts);
    al_gen_result *res = calloc((size_t)n, sizeof *res);
    if (!prompts || !res)
        exit(1);
    for (int i = 0; i < n; i++)
        if (al_ints_push(&prompts[i], m->cfg.bos_id))
            exit(1);
    const int eos = m->cfg.eos_id;
    for (int r = 0; r < reps; r++) {
        al_gen_stats st = {0};
        al_gen_opts o = {.max_new_tokens = steps - 1,
                         .sampling = {.temperature = 0.8f, .top_p = 0.9f, .repeat_penalty = 1, .seed = (uint64_t)r + 1},
                         .stop_ids = &eos, .n_stop_ids = eos >= 0, .kv = kv, .stats = &st};
        if (al_generate(m, NULL, prompts, n, &o, res, NULL, NULL)) {
            fprintf(stderr, "bench: %s\n", al_errmsg());
            exit(1);
        }
        long tokens = 0;
        for (int i = 0; i < n; i++)
            tokens += res[i].ids.n;
        tps[r] = (double)tokens / st.step_seconds;
        al_gen_results_free(res, n);
    }
    for (int i = 0; i < n; i++)
        al_ints_free(&prompts[i]);
    free(prompts), free(res);
    qsort(tps, (size_t)reps, sizeof *tps, bench_cmp_double);
    return reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
}

/* The first decode step of n streams in a fresh process against the median of the next
 * steps - 1 (greedy from BOS), in milliseconds: run first thing, before any warm-up, it
 * shows what a process starting on idle cores pays once. */
static void first_step(const al_model *m, int n, int steps, al_kv_type kv)
{
    int *tok = malloc(sizeof(int) * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)steps);
    al_decoder *d = al_decoder_new_kv(m, n, steps, kv);
    if (!d || !tok || !t) {
        fprintf(stderr, "bench: %s\n", al_errmsg());
        exit(1);
    }
    for (int i = 0; i < n; i++)
        tok[i] = m->cfg.bos_id;
    greedy g = {tok, m->cfg.vocab_size};
    for (int s = 0; s < steps; s++) {
        double t0 = al_now();
        al_decoder_step_each(d, NULL, tok, n, pick, &g);
        t[s] = al_now() - t0;
    }
    qsort(t + 1, (size_t)steps - 1, sizeof *t, bench_cmp_double);
    printf("FIRST_STEP first_ms=%.3f later_median_ms=%.3f\n", 1e3 * t[0], 1e3 * t[1 + (steps - 1) / 2]);
    al_decoder_free(d);
    free(tok), free(t);
}

/* A prompt of n tokens read by one prefill against n single steps (one sequence), median
 * tokens/s of each; on a model above 8M parameters the prefill's products are sgemm. */
static void prefill_vs_steps(const al_model *m, int n, int reps, double *pre, double *step)
{
    int *ids = malloc(sizeof(int) * (size_t)n);
    double *tp = malloc(sizeof(double) * (size_t)reps), *ts = malloc(sizeof(double) * (size_t)reps);
    al_decoder *d = al_decoder_new(m, 1, n + 1);
    if (!ids || !tp || !ts || !d) {
        fprintf(stderr, "bench: %s\n", al_errmsg());
        exit(1);
    }
    for (int i = 0; i < n; i++)
        ids[i] = (int)((i * 7919u + 3) % (unsigned)m->cfg.vocab_size);
    for (int r = 0; r < reps; r++) {
        al_decoder_reset(d, -1);
        double t0 = al_now();
        if (al_decoder_prefill(d, 0, ids, n)) {
            fprintf(stderr, "bench: %s\n", al_errmsg());
            exit(1);
        }
        tp[r] = n / (al_now() - t0);
        al_decoder_reset(d, -1);
        t0 = al_now();
        for (int i = 0; i < n; i++)
            al_decoder_step(d, NULL, &ids[i], 1);
        ts[r] = n / (al_now() - t0);
    }
    qsort(tp, (size_t)reps, sizeof *tp, bench_cmp_double);
    qsort(ts, (size_t)reps, sizeof *ts, bench_cmp_double);
    *pre = tp[reps / 2], *step = ts[reps / 2];
    al_decoder_free(d);
    free(ids), free(tp), free(ts);
}

int main(int argc, char **argv)
{
    const char *path = ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin";
    int batch = 32, steps = 512, reps = 25, exact = 0, npos = 0, generate = 0, first = 0;
    al_kv_type kv = AL_KV_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prefill")) {
            /* prompt prefill on stories260K and on a 58M-parameter model */
            al_model small, large;
            double pre, step;
            if (al_model_load(&small, path)) {
                fprintf(stderr, "bench_generate: %s\n", al_errmsg());
                return 1;
            }
            prefill_vs_steps(&small, 255, 11, &pre, &step);
            printf("prefill of 255 tokens, stories260K: %.0f tok/s; the same as single steps: %.0f tok/s (%.1fx)\n",
                   pre, step, pre / step);
            bench_large_model(&large, 1024);
            prefill_vs_steps(&large, 512, 3, &pre, &step);
            printf("prefill of 512 tokens, random 58M model (sgemm): %.0f tok/s; as single steps: %.0f tok/s (%.1fx)\n",
                   pre, step, pre / step);
            al_model_free(&small), al_model_free(&large);
            return 0;
        }
        if (!strcmp(argv[i], "--exact"))
            exact = 1;
        else if (!strcmp(argv[i], "--generate"))
            generate = 1;
        else if (!strcmp(argv[i], "--first-step"))
            first = 1;
        else if (!strcmp(argv[i], "--kv-f16"))
            kv = AL_KV_F16;
        else if (npos == 0 && ++npos)
            path = argv[i];
        else if (npos == 1 && ++npos)
            batch = atoi(argv[i]);
        else if (npos == 2 && ++npos)
            steps = atoi(argv[i]);
        else if (npos == 3 && ++npos)
            reps = atoi(argv[i]);
    }
    if (batch < 1 || steps < 2 || reps < 1) {
        fprintf(stderr, "usage: bench_generate [MODEL] [BATCH] [STEPS >= 2] [REPS] [--exact] [--kv-f16] [--generate]\n"
                        "       bench_generate [MODEL] [BATCH] [STEPS] --first-step [--kv-f16]\n");
        return 2;
    }
    al_model m;
    if (al_model_load(&m, path)) {
        fprintf(stderr, "bench_generate: %s\n", al_errmsg());
        return 1;
    }
    if (steps > m.cfg.seq_len)
        steps = m.cfg.seq_len;
    if (first) {
        first_step(&m, batch, steps, kv);
        al_model_free(&m);
        return 0;
    }
    double *ts = malloc(sizeof(double) * (size_t)(reps > 3 ? reps : 3)), *tb = malloc(sizeof(double) * (size_t)reps);
    double *tg = malloc(sizeof(double) * (size_t)reps);
    if (!ts || !tb || !tg)
        return 1;
    run(&m, 1, steps, 3, exact, kv, ts); /* warm-up */
    double single = run(&m, 1, steps, reps, exact, kv, ts);
    double batched = run(&m, batch, steps, reps, exact, kv, tb);
    const char *mode = exact ? ", exact" : kv == AL_KV_F16 ? ", f16 cache" : "";
    printf("align single-stream greedy, %d tokens%s: %.0f tok/s (median of %d)\n", steps, mode, single, reps);
    printf("align batched %d sequences x %d tokens%s: %.0f tok/s aggregate (median of %d)\n", batch, steps, mode,
           batched, reps);
    printf("RESULT single=%.1f batched=%.1f\n", single, batched);
    /* every run, for a script that pools several invocations before taking the median */
    printf("SAMPLES single");
    for (int r = 0; r < reps; r++)
        printf(" %.1f", ts[r]);
    printf("\nSAMPLES batched");
    for (int r = 0; r < reps; r++)
        printf(" %.1f", tb[r]);
    printf("\n");
    if (generate) {
        double gen = run_generate(&m, batch, steps, reps, kv, tg);
        printf("align al_generate top-p 0.9, %d sequences x %d tokens%s, in this process: %.0f tok/s (median of "
               "%d) = %.0f%% of the batched loop\n",
               batch, steps - 1, mode, gen, reps, 100 * gen / batched);
        printf("SAMPLES generate");
        for (int r = 0; r < reps; r++)
            printf(" %.1f", tg[r]);
        printf("\n");
    }
    free(ts), free(tb), free(tg);
    al_model_free(&m);
    return 0;
}
