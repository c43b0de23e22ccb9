/* Generation throughput on stories260K: single-stream greedy decoding (run.c's
 * `-t 0 -n STEPS` workload) and batched decoding of many sequences at once.
 * Each figure is the median of REPS timed runs, the statistic bench/generate.sh also
 * takes of run.c, so the printed ratios set like against like.
 *
 * usage: bench_generate [MODEL] [BATCH] [STEPS] [REPS] [--exact] [--kv-f16] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/model.h"

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct greedy {
    int *tok;
    int vocab;
} greedy;

/* runs on the thread that computed the row, inside the step */
static void pick(void *user, int row, float *logits)
{
    greedy *g = user;
    g->tok[row] = argmax(logits, g->vocab);
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
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    double median = reps % 2 ? tps[reps / 2] : 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]);
    al_decoder_free(d);
    free(tok);
    return median;
}

int main(int argc, char **argv)
{
    const char *path = ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin";
    int batch = 32, steps = 512, reps = 25, exact = 0, npos = 0;
    al_kv_type kv = AL_KV_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--exact"))
            exact = 1;
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
        fprintf(stderr, "usage: bench_generate [MODEL] [BATCH] [STEPS >= 2] [REPS] [--exact] [--kv-f16]\n");
        return 2;
    }
    al_model m;
    if (al_model_load(&m, path)) {
        fprintf(stderr, "bench_generate: %s\n", al_errmsg());
        return 1;
    }
    if (steps > m.cfg.seq_len)
        steps = m.cfg.seq_len;
    double *ts = malloc(sizeof(double) * (size_t)(reps > 3 ? reps : 3)), *tb = malloc(sizeof(double) * (size_t)reps);
    if (!ts || !tb)
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
    free(ts), free(tb);
    al_model_free(&m);
    return 0;
}
