/* Generation throughput on stories260K: single-stream greedy decoding (run.c's
 * `-t 0 -n 256` workload) and batched decoding of many sequences at once.
 * Prints tokens/s; bench/generate.sh puts llama2.c run.c beside it and prints ratios. */
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

/* Greedy decoding of `steps` positions from BOS for n sequences; returns tokens/s. */
static double run(const al_model *m, int n, int steps, int reps)
{
    double best = 0;
    int *tok = malloc(sizeof(int) * (size_t)n);
    al_decoder *d = al_decoder_new(m, n, steps);
    if (!d) {
        fprintf(stderr, "bench: %s\n", al_errmsg());
        exit(1);
    }
    for (int r = 0; r < reps; r++) {
        al_decoder_reset(d, -1);
        for (int i = 0; i < n; i++)
            tok[i] = m->cfg.bos_id;
        double t0 = al_now();
        for (int s = 0; s < steps; s++) {
            float *lg = al_decoder_step(d, NULL, tok, n);
#pragma omp parallel for schedule(static) if (n > 1)
            for (int i = 0; i < n; i++)
                tok[i] = argmax(lg + (size_t)i * m->cfg.vocab_size, m->cfg.vocab_size);
        }
        double tps = (double)n * steps / (al_now() - t0);
        best = tps > best ? tps : best;
    }
    al_decoder_free(d);
    free(tok);
    return best;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin";
    int batch = argc > 2 ? atoi(argv[2]) : 32;
    al_model m;
    if (al_model_load(&m, path)) {
        fprintf(stderr, "bench_generate: %s\n", al_errmsg());
        return 1;
    }
    run(&m, 1, 256, 3); /* warm-up */
    double single = run(&m, 1, 256, 20);
    double batched = run(&m, batch, 256, 5);
    printf("align single-stream greedy, 256 tokens: %.0f tok/s\n", single);
    printf("align batched %d sequences x 256 tokens: %.0f tok/s aggregate\n", batch, batched);
    printf("RESULT single=%.1f batched=%.1f\n", single, batched);
    al_model_free(&m);
    return 0;
}
