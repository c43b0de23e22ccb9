/* Training throughput: tokens/s of full optimizer steps (forward, backward with
 * dloss/dlogp = -1/(B*T), global-norm clipping at 1.0, AdamW) on a random-init Llama of
 * the given shape and random tokens, timed after warm-up steps.  In the same process it
 * times OpenBLAS sgemm (2048^3, same threads) as the machine's peak and reports MFU:
 *
 *   flops/token = 6 * N_matmul + 12 * L * T * dim
 *   N_matmul    = L * (dim*q_dim + 2*dim*kv_dim + q_dim*dim + 3*dim*hidden) + vocab*dim   (Llama)
 *   N_matmul    = L * (dim*q_dim + 2*dim*kv_dim + q_dim*dim + 2*dim*hidden) + vocab*dim   (GPT-2:
 *                 no gate matrix; the learned position table is a lookup, not a matmul)
 *
 * (PaLM's estimate: 6 flops per matmul weight per token for forward + backward, plus the
 * attention scores and values over the full T x T square; the embedding lookup is not a
 * matmul, the classifier is, tied or not.)  Peak RSS (getrusage) is printed beside the
 * plan: parameters + gradients + AdamW moments (4 * n_params floats) + the activation block
 * (al_train_ctx_bytes).  bench/throughput.sh runs it beside bench/torch_train.py.
 *
 * Options (before the shape):
 *   --gpt2        the GPT-2 layout (AL_ARCH_GPT2: learned positions, LayerNorm, GELU MLP, biases,
 *                 n_kv_heads = heads, q/k/v biases); KV_HEADS / HIDDEN 0 mean heads / 4*dim
 *   --no-clip     no global-norm clipping (llm.c's CPU trainer has none); default: clip at 1.0
 *   --max-pos N   maximum positions (the config's seq_len, GPT-2's position table); default SEQ
 *   --beta2 X, --wd X   AdamW's beta2 and weight decay (default al_adamw_defaults: 0.95, 0.1;
 *                 beta1 0.9, eps 1e-8, lr 3e-4 always)
 * bench/gpt2_train.sh runs the GPT-2 mode beside llm.c and PyTorch.
 *
 * usage: bench_train [OPTIONS] DIM LAYERS HEADS KV_HEADS HIDDEN VOCAB BATCH SEQ [STEPS [WARMUP [tied]]] */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "align/train.h"

static double sgemm_gflops(int n, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
          *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) {
        fprintf(stderr, "bench_train: out of memory\n");
        exit(1);
    }
    uint64_t rng = 42;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = al_xorshift_f32(&rng) - 0.5f;
        b[i] = al_xorshift_f32(&rng) - 0.5f;
    }
    double best = 0;
    for (int r = 0; r <= reps; r++) { /* r == 0 warms up */
        double t0 = al_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double gf = 2.0 * n * n * (double)n / (al_now() - t0) / 1e9;
        if (r > 0 && gf > best)
            best = gf;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static double matmul_params(const al_config *c)
{
    double D = c->dim, H = c->hidden_dim, qd = (double)c->n_heads * c->head_dim,
           kvd = (double)c->n_kv_heads * c->head_dim;
    const double mlp = c->arch == AL_ARCH_GPT2 ? 2 * D * H : 3 * D * H;
    return c->n_layers * (D * qd + 2 * D * kvd + qd * D + mlp) + (double)c->vocab_size * D;
}

int main(int argc, char **argv)
{
    bool gpt2 = false, clip = true;
    int max_pos = 0;
    al_adamw_opts ao = al_adamw_defaults();
    while (argc > 1 && !strncmp(argv[1], "--", 2)) {
        const char *o = argv[1];
        const bool val = !strcmp(o, "--max-pos") || !strcmp(o, "--beta2") || !strcmp(o, "--wd");
        if (val && argc < 3)
            break;
        if (!strcmp(o, "--gpt2"))
            gpt2 = true;
        else if (!strcmp(o, "--no-clip"))
            clip = false;
        else if (!strcmp(o, "--max-pos"))
            max_pos = atoi(argv[2]);
        else if (!strcmp(o, "--beta2"))
            ao.beta2 = (float)atof(argv[2]);
        else if (!strcmp(o, "--wd"))
            ao.weight_decay = (float)atof(argv[2]);
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", o);
            return 2;
        }
        argc -= val ? 2 : 1;
        argv += val ? 2 : 1;
    }
    if (argc < 9) {
        fprintf(stderr, "usage: bench_train [--gpt2] [--no-clip] [--max-pos N] [--beta2 X] [--wd X] DIM LAYERS HEADS "
                        "KV_HEADS HIDDEN VOCAB BATCH SEQ [STEPS [WARMUP [tied]]]\n");
        return 2;
    }
    al_config c = {0};
    c.dim = atoi(argv[1]);
    c.n_layers = atoi(argv[2]);
    c.n_heads = atoi(argv[3]);
    c.n_kv_heads = atoi(argv[4]);
    c.hidden_dim = atoi(argv[5]);
    c.vocab_size = atoi(argv[6]);
    const int B = atoi(argv[7]), T = atoi(argv[8]);
    const int steps = argc > 9 ? atoi(argv[9]) : 5, warmup = argc > 10 ? atoi(argv[10]) : 2;
    c.tied_embeddings = argc > 11 && !strcmp(argv[11], "tied");
    c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
    c.seq_len = max_pos > 0 ? max_pos : T;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope = AL_ROPE_HALF;
    c.bos_id = c.eos_id = -1;
    if (gpt2) {
        c.arch = AL_ARCH_GPT2;
        c.qkv_bias = true;
        if (c.n_kv_heads == 0)
            c.n_kv_heads = c.n_heads;
        if (c.hidden_dim == 0)
            c.hidden_dim = 4 * c.dim;
    }

    al_model m;
    al_adamw opt;
    al_train_ctx *ctx = NULL;
    if (al_model_init(&m, &c) || al_model_alloc_grads(&m) || al_adamw_init(&opt, &m, &ao) ||
        !(ctx = al_train_ctx_new(&m, B, T))) {
        fprintf(stderr, "bench_train: %s\n", al_errmsg());
        return 1;
    }
    al_model_init_weights(&m, 1337);
    const int N = B * T;
    int *tok = malloc(sizeof(int) * (size_t)N), *tgt = malloc(sizeof(int) * (size_t)N);
    float *dlogp = malloc(sizeof(float) * (size_t)N);
    uint64_t rng = 7;
    for (int i = 0; i < N; i++) {
        tok[i] = (int)(al_xorshift_u32(&rng) % (uint32_t)c.vocab_size);
        tgt[i] = (int)(al_xorshift_u32(&rng) % (uint32_t)c.vocab_size);
        dlogp[i] = -1.0f / (float)N;
    }

    double timed = 0, best = 0, loss = 0, loss_first = 0, phase[3] = {0};
    double *step_tps = malloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1));
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = al_now();
        al_model_zero_grads(&m);
        if (al_forward(ctx, tok, tgt, NULL, NULL)) {
            fprintf(stderr, "bench_train: %s\n", al_errmsg());
            return 1;
        }
        const float *lp = al_ctx_logp(ctx);
        double sum = 0;
        for (int i = 0; i < N; i++)
            sum -= lp[i];
        double t1 = al_now();
        al_backward(ctx, &m, dlogp);
        double t2 = al_now();
        if (clip)
            al_grad_clip(m.grads, m.n_params, 1.0);
        al_adamw_step(&opt, m.params, m.grads, 3e-4f);
        double t3 = al_now(), dt = t3 - t0;
        loss = sum / N;
        if (s == 0)
            loss_first = loss;
        if (s >= warmup) {
            timed += dt;
            best = N / dt > best ? N / dt : best;
            step_tps[s - warmup] = N / dt;
            phase[0] += t1 - t0;
            phase[1] += t2 - t1;
            phase[2] += t3 - t2;
        }
    }
    /* median step: robust against a neighbour stealing the CPU for a moment */
    for (int i = 1; i < steps; i++)
        for (int j = i; j > 0 && step_tps[j - 1] > step_tps[j]; j--) {
            double x = step_tps[j];
            step_tps[j] = step_tps[j - 1];
            step_tps[j - 1] = x;
        }
    const double median = steps > 0 ? 0.5 * (step_tps[(steps - 1) / 2] + step_tps[steps / 2]) : 0;
    free(step_tps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* before the sgemm probe allocates its matrices */
    const double rss_mb = ru.ru_maxrss / 1024.0;
    const double plan_mb = (4.0 * (double)m.n_params * sizeof(float) + (double)al_train_ctx_bytes(&c, B, T)) / 1048576.0;
    const double tps = (double)N * steps / timed;
    const double fpt = 6.0 * matmul_params(&c) + 12.0 * c.n_layers * (double)T * c.dim;
    const double peak = sgemm_gflops(2048, 5);
    const double mfu = tps * fpt / (peak * 1e9);

    printf("align train step (fwd + bwd + %sAdamW), %s, dim %d, %d layers, %d/%d heads, hidden %d, vocab %d, "
           "max positions %d, %s, batch %d x %d, %d threads\n",
           clip ? "clip + " : "", gpt2 ? "GPT-2" : "Llama", c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim,
           c.vocab_size, c.seq_len, c.tied_embeddings ? "tied" : "untied", B, T, omp_get_max_threads());
    printf("  AdamW lr 3e-4, betas %g/%g, eps %g, weight decay %g; %s\n", ao.beta1, ao.beta2, ao.eps,
           ao.weight_decay, clip ? "global-norm clipping at 1.0" : "no gradient clipping");
    printf("  params %zu (%.2f M), loss %.4f at step 1, %.4f at step %d (ln V = %.4f)\n", m.n_params,
           m.n_params / 1e6, loss_first, loss, warmup + steps, log((double)c.vocab_size));
    printf("  %.0f tok/s over %d steps after %d warm-up (median step %.0f, best %.0f tok/s); "
           "time: forward %.0f%%, backward %.0f%%, %sAdamW %.0f%%\n",
           tps, steps, warmup, median, best, 100 * phase[0] / timed, 100 * phase[1] / timed, clip ? "clip + " : "",
           100 * phase[2] / timed);
    printf("  sgemm 2048^3 (OpenBLAS core %s): %.1f GFLOP/s; flops/token %.4g; MFU %.1f%%\n", openblas_get_corename(), peak, fpt, 100 * mfu);
    printf("  peak RSS %.1f MiB; plan %.1f MiB (params+grads+AdamW %.1f MiB + activations %.1f MiB)\n", rss_mb,
           plan_mb, 4.0 * (double)m.n_params * sizeof(float) / 1048576.0,
           (double)al_train_ctx_bytes(&c, B, T) / 1048576.0);
    printf("RESULT tps=%.1f median=%.1f best=%.1f flops_per_token=%.0f sgemm_gflops=%.2f mfu=%.5f rss_mb=%.1f plan_mb=%.1f "
           "n_params=%zu loss_first=%.5f loss_last=%.5f\n",
           tps, median, best, fpt, peak, mfu, rss_mb, plan_mb, m.n_params, loss_first, loss);

    free(tok);
    free(tgt);
    free(dlogp);
    al_train_ctx_free(ctx);
    al_adamw_free(&opt);
    al_model_free(&m);
    return 0;
}
