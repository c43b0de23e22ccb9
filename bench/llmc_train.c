/* llm.c's CPU trainer (karpathy/llm.c, train_gpt2.c) timed on a random-init GPT-2 and random
 * tokens, for bench/gpt2_train.sh.  No llm.c code lives in this repository: the script
 * compiles this driver together with $LLMC_DIR/train_gpt2.c, which is included below with
 * TESTING defined (as llm.c's own test_gpt2.c does, so its main() is left out), using the
 * flags of llm.c's Makefile:
 *
 *   cc -Ofast -Wno-unused-result -Wno-ignored-pragmas -Wno-unknown-attributes -march=native \
 *      -fopenmp -DOMP -I$LLMC_DIR -DLLMC_TRAIN_GPT2_C='"$LLMC_DIR/train_gpt2.c"' \
 *      bench/llmc_train.c -lm -lgomp -o llmc_train
 *
 * It is not named bench_*.c, so CMake's bench glob does not build it.
 *
 * The driver writes a checkpoint in llm.c's format (256 int32 header: magic 20240326,
 * version 3, maxT, V, L, NH, C, Vp; then the float32 parameters in llm.c's order wte, wpe,
 * ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw,
 * lnfb) with random weights: matrices and embeddings Normal(0, 0.02), the residual
 * projections (attprojw, fcprojw) Normal(0, 0.02/sqrt(2L)) as nanoGPT/llm.c's train_gpt2.py
 * initializes them, LayerNorm weights 1, biases 0, the padded vocabulary rows of wte
 * (V..Vp) 0 as llm.c's exporter writes them.  It loads the file with
 * gpt2_build_from_checkpoint and runs train_gpt2.c's step exactly as its main() does:
 *
 *   gpt2_forward(inputs, targets); gpt2_zero_grad; gpt2_backward; gpt2_update(lr, 0.9, 0.999, 1e-8, wd 0, t)
 *
 * (mean next-token cross-entropy over B*T positions; AdamW; no gradient clipping, which
 * llm.c's CPU trainer does not have) on fixed random tokens, timing every step after the
 * warm-up steps, and prints tokens/s in a RESULT line.
 *
 * usage: llmc_train LAYERS DIM HEADS VOCAB MAX_T BATCH SEQ [STEPS [WARMUP [LR]]] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef LLMC_TRAIN_GPT2_C
#error "compile with -DLLMC_TRAIN_GPT2_C='\"/path/to/llm.c/train_gpt2.c\"' (see bench/gpt2_train.sh)"
#endif
#define TESTING
#include LLMC_TRAIN_GPT2_C

static uint64_t bench_rng = 0x1234567ull;

static uint32_t bench_u32(void)
{
    bench_rng ^= bench_rng >> 12;
    bench_rng ^= bench_rng << 25;
    bench_rng ^= bench_rng >> 27;
    return (uint32_t)((bench_rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static double bench_uniform_open(void) { return ((double)(bench_u32() >> 8) + 0.5) / 16777216.0; }

/* Writes n floats of kind 0 (zeros), 1 (ones) or 2 (Normal(0, std)) to f, in chunks. */
static void write_tensor(FILE *f, size_t n, int kind, float std)
{
    enum { CHUNK = 1 << 16 };
    static float buf[CHUNK];
    while (n > 0) {
        size_t k = n < CHUNK ? n : CHUNK;
        for (size_t i = 0; i < k; i += 2) {
            float a = kind == 1 ? 1.0f : 0.0f, b = a;
            if (kind == 2) {
                double r = sqrt(-2.0 * log(bench_uniform_open())), t = 2.0 * M_PI * bench_uniform_open();
                a = (float)(r * cos(t)) * std;
                b = (float)(r * sin(t)) * std;
            }
            buf[i] = a;
            if (i + 1 < k)
                buf[i + 1] = b;
        }
        if (fwrite(buf, sizeof(float), k, f) != k) {
            fprintf(stderr, "llmc_train: write failed\n");
            exit(1);
        }
        n -= k;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: llmc_train LAYERS DIM HEADS VOCAB MAX_T BATCH SEQ [STEPS [WARMUP [LR]]]\n");
        return 2;
    }
    const int L = atoi(argv[1]), C = atoi(argv[2]), NH = atoi(argv[3]), V = atoi(argv[4]), maxT = atoi(argv[5]);
    const int B = atoi(argv[6]), T = atoi(argv[7]);
    const int steps = argc > 8 ? atoi(argv[8]) : 5, warmup = argc > 9 ? atoi(argv[9]) : 1;
    const float lr = argc > 10 ? (float)atof(argv[10]) : 3e-4f;
    const int Vp = (V + 127) / 128 * 128; /* llm.c pads the vocabulary to a multiple of 128 */
    if (L <= 0 || C <= 0 || NH <= 0 || C % NH || V <= 0 || T <= 0 || T > maxT || B <= 0 || steps <= 0 || warmup < 0) {
        fprintf(stderr, "llmc_train: bad shape\n");
        return 2;
    }

    /* the checkpoint, in a temporary file removed once loaded */
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/llmc_train_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        fprintf(stderr, "llmc_train: cannot create %s\n", path);
        return 1;
    }
    int header[256] = {0};
    header[0] = 20240326;
    header[1] = 3;
    header[2] = maxT;
    header[3] = V;
    header[4] = L;
    header[5] = NH;
    header[6] = C;
    header[7] = Vp;
    fwrite(header, sizeof(int), 256, f);
    const size_t sc = (size_t)C, sl = (size_t)L;
    const float std = 0.02f, resid = 0.02f / sqrtf(2.0f * (float)L);
    write_tensor(f, (size_t)V * sc, 2, std);         /* wte */
    write_tensor(f, (size_t)(Vp - V) * sc, 0, 0);    /* wte padding rows */
    write_tensor(f, (size_t)maxT * sc, 2, std);      /* wpe */
    write_tensor(f, sl * sc, 1, 0);                  /* ln1w */
    write_tensor(f, sl * sc, 0, 0);                  /* ln1b */
    write_tensor(f, sl * 3 * sc * sc, 2, std);       /* qkvw */
    write_tensor(f, sl * 3 * sc, 0, 0);              /* qkvb */
    write_tensor(f, sl * sc * sc, 2, resid);         /* attprojw */
    write_tensor(f, sl * sc, 0, 0);                  /* attprojb */
    write_tensor(f, sl * sc, 1, 0);                  /* ln2w */
    write_tensor(f, sl * sc, 0, 0);                  /* ln2b */
    write_tensor(f, sl * 4 * sc * sc, 2, std);       /* fcw */
    write_tensor(f, sl * 4 * sc, 0, 0);              /* fcb */
    write_tensor(f, sl * 4 * sc * sc, 2, resid);     /* fcprojw */
    write_tensor(f, sl * sc, 0, 0);                  /* fcprojb */
    write_tensor(f, sc, 1, 0);                       /* lnfw */
    write_tensor(f, sc, 0, 0);                       /* lnfb */
    if (fclose(f)) {
        fprintf(stderr, "llmc_train: write failed\n");
        return 1;
    }

    GPT2 model;
    gpt2_build_from_checkpoint(&model, path);
    unlink(path);

    const int N = B * T;
    int *tok = malloc(sizeof(int) * (size_t)N), *tgt = malloc(sizeof(int) * (size_t)N);
    double *tps = malloc(sizeof(double) * (size_t)steps);
    if (!tok || !tgt || !tps) {
        fprintf(stderr, "llmc_train: out of memory\n");
        return 1;
    }
    for (int i = 0; i < N; i++) {
        tok[i] = (int)(bench_u32() % (uint32_t)V);
        tgt[i] = (int)(bench_u32() % (uint32_t)V);
    }

    double timed = 0, first_loss = 0, last_loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_s();
        gpt2_forward(&model, tok, tgt, B, T);
        gpt2_zero_grad(&model);
        gpt2_backward(&model);
        gpt2_update(&model, lr, 0.9f, 0.999f, 1e-8f, 0.0f, s + 1);
        double dt = now_s() - t0;
        if (s == 0)
            first_loss = model.mean_loss;
        last_loss = model.mean_loss;
        if (s >= warmup) {
            timed += dt;
            tps[s - warmup] = N / dt;
        }
    }
    for (int i = 1; i < steps; i++) /* median step */
        for (int j = i; j > 0 && tps[j - 1] > tps[j]; j--) {
            double x = tps[j];
            tps[j] = tps[j - 1];
            tps[j - 1] = x;
        }
    const double median = 0.5 * (tps[(steps - 1) / 2] + tps[steps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int threads = 1;
#ifdef OMP
    threads = omp_get_max_threads();
#endif
    printf("llm.c train step (gpt2_forward + zero_grad + backward + update, AdamW, no clipping), %d layers, dim %d, "
           "%d heads, vocab %d (padded %d), max positions %d, batch %d x %d, %d threads\n",
           L, C, NH, V, Vp, maxT, B, T, threads);
    printf("  params %zu (%.2f M, with the padded vocabulary rows), loss %.4f at step 1, %.4f at step %d "
           "(ln V = %.4f)\n",
           model.num_parameters, model.num_parameters / 1e6, first_loss, last_loss, warmup + steps, log((double)V));
    printf("  %.0f tok/s over %d steps after %d warm-up (median step %.0f tok/s); peak RSS %.0f MiB\n",
           N * (double)steps / timed, steps, warmup, median, ru.ru_maxrss / 1024.0);
    printf("RESULT tps=%.1f median=%.1f loss_first=%.5f loss_last=%.5f n_params=%zu rss_mb=%.1f threads=%d\n",
           N * (double)steps / timed, median, first_loss, last_loss, model.num_parameters, ru.ru_maxrss / 1024.0,
           threads);
    free(tok);
    free(tgt);
    free(tps);
    gpt2_free(&model);
    return 0;
}
