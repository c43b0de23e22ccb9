/* The exact decoder: logits of every decoding step equal the training forward's logits for
 * the same tokens bit for bit (memcmp), whatever the batch composition, the training row
 * length, the head size, with sequences forked from a shared prompt (al_decoder_copy_seq)
 * and with LoRA adapters, and with a step split over two threads (al_decoder_step_rows).
 * And sampling-time scoring: al_logprob at a temperature equals
 * the tempered training forward's log-probability, whose gradient matches finite
 * differences.  Online RL relies on both: the probability ratio of the first minibatch is
 * exactly 1. */
#include "align/model.h"
#include "test.h"
#include "model_util.h"

static uint64_t rng_state = 0xde0de11ull;

static float frand(void) { return al_xorshift_f32(&rng_state) * 2.0f - 1.0f; }

static void random_model(al_model *m, const al_config *c) { test_random_model(m, c, &rng_state, 0.3f); }

#define NSEQ 5
#define MAXLEN 40

/* Decodes NSEQ sequences of different lengths together (sequences 3 and 4 fork from 0
 * after its first `fork` tokens), then compares every step's logits with al_forward's on
 * rows of length T (>= MAXLEN) in batches of B rows.  Returns the mismatching positions. */
static int compare(const al_model *m, int T, int B, int fork)
{
    const al_config *c = &m->cfg;
    const int V = c->vocab_size;
    static int tok[NSEQ][MAXLEN];
    const int len[NSEQ] = {MAXLEN, 17, 33, MAXLEN - 3, 25};
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < MAXLEN; t++)
            tok[s][t] = (int)(al_xorshift_f32(&rng_state) * (float)V) % V;
    for (int s = 3; s < NSEQ; s++)
        for (int t = 0; t < fork; t++)
            tok[s][t] = tok[0][t];
    float *dec = calloc((size_t)NSEQ * MAXLEN * V, sizeof(float));
    al_decoder *d = al_decoder_new(m, NSEQ, MAXLEN);
    CHECK(d != NULL);
    CHECK_OK(al_decoder_set_exact(d, true));
    /* sequence 0 alone for the shared prefix, then forks, then everyone together */
    for (int t = 0; t < fork; t++) {
        int seq = 0;
        float *lg = al_decoder_step(d, &seq, &tok[0][t], 1);
        memcpy(dec + ((size_t)0 * MAXLEN + t) * V, lg, (size_t)V * sizeof(float));
    }
    for (int s = 3; s < NSEQ; s++) {
        CHECK_OK(al_decoder_copy_seq(d, s, 0));
        memcpy(dec + (size_t)s * MAXLEN * V, dec, (size_t)fork * V * sizeof(float));
    }
    for (int t = 0; t < MAXLEN; t++) {
        int seqs[NSEQ], toks[NSEQ], n = 0;
        for (int s = 0; s < NSEQ; s++) {
            int start = (s == 0 || s >= 3) ? fork : 0;
            if (t >= start && t < len[s])
                seqs[n] = s, toks[n] = tok[s][t], n++;
        }
        if (n == 0)
            continue;
        float *lg;
        if (t % 2 && n >= 2) { /* every other step in two halves, one per thread, as rollouts do */
            const int h = n / 2;
            float *part[2];
#pragma omp parallel for num_threads(2)
            for (int p = 0; p < 2; p++)
                part[p] = al_decoder_step_rows(d, seqs + p * h, toks + p * h, p ? n - h : h, p * h);
            CHECK(part[0] != NULL && part[1] == part[0] + (size_t)h * V);
            lg = part[0];
        } else {
            lg = al_decoder_step(d, seqs, toks, n);
        }
        CHECK(lg != NULL);
        for (int i = 0; lg && i < n; i++)
            memcpy(dec + ((size_t)seqs[i] * MAXLEN + t) * V, lg + (size_t)i * V, (size_t)V * sizeof(float));
    }
    int seq0 = 0, tok0 = 0;
    CHECK(al_decoder_step_rows(d, &seq0, &tok0, 1, NSEQ) == NULL); /* rows past the decoder's */
    CHECK(strstr(al_errmsg(), "rows") != NULL);
    al_decoder_free(d);

    int bad = 0;
    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    CHECK_OK(al_train_ctx_set_exact(ctx, true));
    int *tokens = calloc((size_t)B * T, sizeof(int));
    for (int s0 = 0; s0 < NSEQ; s0 += B) {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int s = s0 + b;
                tokens[(size_t)b * T + t] = s < NSEQ && t < len[s] ? tok[s][t] : (b + t) % V;
            }
        CHECK_OK(al_forward(ctx, tokens, NULL, NULL, NULL));
        const float *lg = al_ctx_logits(ctx);
        for (int b = 0; b < B && s0 + b < NSEQ; b++)
            for (int t = 0; t < len[s0 + b]; t++) {
                if (getenv("DEBUG_EXACT")) {
                    double mx = 0;
                    for (int v = 0; v < V; v++) {
                        double df = fabs(lg[((size_t)b * T + t) * V + v] - dec[((size_t)(s0 + b) * MAXLEN + t) * V + v]);
                        mx = df > mx ? df : mx;
                    }
                    fprintf(stderr, "seq %d pos %d maxdiff %g\n", s0 + b, t, mx);
                }
                bad += memcmp(lg + ((size_t)b * T + t) * V, dec + ((size_t)(s0 + b) * MAXLEN + t) * V,
                              (size_t)V * sizeof(float)) != 0;
            }
    }
    free(tokens);
    al_train_ctx_free(ctx);
    free(dec);
    return bad;
}

static void check_config(const char *name, al_config c)
{
    al_model m = {0};
    random_model(&m, &c);
    int shapes[][3] = {{MAXLEN, NSEQ, 7}, {MAXLEN + 9, 2, 12}, {64, 1, 1}, {MAXLEN, 3, 30}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int bad = compare(&m, shapes[i][0], shapes[i][1], shapes[i][2]);
        CHECKF(bad == 0, "%s: T %d, B %d, fork %d: %d positions differ", name, shapes[i][0], shapes[i][1],
               shapes[i][2], bad);
    }
    al_lora_config lc = {.rank = 4, .alpha = 8, .targets = AL_LORA_ALL, .seed = 3};
    CHECK_OK(al_lora_attach(&m, &lc));
    for (size_t i = 0; i < m.lora->n_params; i++)
        m.lora->params[i] = frand() * 0.3f;
    int bad = compare(&m, MAXLEN, 2, 5);
    CHECKF(bad == 0, "%s with LoRA: %d positions differ", name, bad);
    al_lora_set_enabled(&m, false);
    bad = compare(&m, MAXLEN, 3, 9);
    CHECKF(bad == 0, "%s with LoRA disabled: %d positions differ", name, bad);
    al_lora_detach(&m);
    al_model_free(&m);
}

/* The temperature-scaled log-probabilities of the training forward, their gradient against
 * central differences, and al_logprob (sampling's scoring) equal to the forward's. */
static void check_temperature(void)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .head_dim = 8,
                   .vocab_size = 23, .seq_len = 8, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = AL_ROPE_HALF,
                   .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
    al_model m = {0};
    random_model(&m, &c);
    CHECK_OK(al_model_alloc_grads(&m));
    const int T = 6;
    int tokens[6] = {1, 5, 7, 3, 9, 11}, targets[6] = {5, 7, 3, 9, 11, 4};
    float w[6] = {0.3f, -1.2f, 0.7f, 0.0f, 1.1f, -0.4f};
    al_train_ctx *ctx = al_train_ctx_new(&m, 1, T);
    CHECK(al_train_ctx_set_temperature(ctx, 0.0f) != 0);
    CHECK_OK(al_train_ctx_set_temperature(ctx, 0.7f));
    CHECK_OK(al_train_ctx_set_exact(ctx, true));
    /* loss = sum_t w_t logp_t; compare the gradient of one weight of each kind */
    CHECK_OK(al_forward(ctx, tokens, targets, NULL, NULL));
    float scratch[23];
    al_train_ctx *plain = al_train_ctx_new(&m, 1, T);
    CHECK_OK(al_train_ctx_set_exact(plain, true));
    CHECK_OK(al_forward(plain, tokens, targets, NULL, NULL));
    for (int t = 0; t < T; t++) {
        float a = al_logprob(al_ctx_logits(plain) + (size_t)t * c.vocab_size, c.vocab_size, 0.7f, targets[t], scratch);
        CHECKF(memcmp(&a, &al_ctx_logp(ctx)[t], sizeof a) == 0, "al_logprob at %d: %.9g vs the forward's %.9g", t,
               (double)a, (double)al_ctx_logp(ctx)[t]);
    }
    al_train_ctx_free(plain);
    al_model_zero_grads(&m);
    al_backward(ctx, &m, w);
    const size_t probes[] = {3, m.w.wq - m.params + 5, m.w.w2 - m.params + 17, m.w.rms_final - m.params + 2};
    for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
        size_t i = probes[k];
        float keep = m.params[i];
        double f[2];
        for (int s = 0; s < 2; s++) {
            m.params[i] = keep + (s ? -1e-3f : 1e-3f);
            al_forward(ctx, tokens, targets, NULL, NULL);
            f[s] = 0;
            for (int t = 0; t < T; t++)
                f[s] += w[t] * al_ctx_logp(ctx)[t];
        }
        m.params[i] = keep;
        double fd = (f[0] - f[1]) / 2e-3, g = m.grads[i];
        CHECKF(fabs(fd - g) <= 2e-3 + 2e-2 * fabs(fd), "parameter %zu: gradient %.6g, finite difference %.6g", i, g,
               fd);
    }
    al_train_ctx_free(ctx);
    al_model_free(&m);
}

/* A context reshaped (larger, then smaller: memory reused) computes what a new context of
 * that shape computes, bit for bit: logits, log-probs and gradients, with LoRA in exact mode. */
static void check_reshape(void)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .head_dim = 8,
                   .vocab_size = 23, .seq_len = 12, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = AL_ROPE_HALF,
                   .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
    al_model m = {0};
    random_model(&m, &c);
    al_lora_config lc = {.rank = 2, .alpha = 4, .targets = AL_LORA_ALL, .seed = 5};
    CHECK_OK(al_lora_attach(&m, &lc));
    for (size_t i = 0; i < m.lora->n_params; i++)
        m.lora->params[i] = frand() * 0.3f;
    al_train_ctx *reused = al_train_ctx_new(&m, 1, 4);
    CHECK_OK(al_train_ctx_set_exact(reused, true));
    CHECK_OK(al_train_ctx_set_temperature(reused, 0.8f));
    CHECK(al_train_ctx_reshape(reused, 1, c.seq_len + 1) != 0); /* longer than the model's positions */
    const int shapes[][2] = {{3, 11}, {2, 5}, {4, 12}, {1, 3}};
    int tokens[48], targets[48];
    float w[48];
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int B = shapes[k][0], T = shapes[k][1], N = B * T;
        for (int i = 0; i < N; i++)
            tokens[i] = (int)(al_xorshift_f32(&rng_state) * 23) % 23, targets[i] = (i * 7 + 3) % 23,
            w[i] = frand();
        CHECK_OK(al_train_ctx_reshape(reused, B, T));
        al_train_ctx *fresh = al_train_ctx_new(&m, B, T);
        CHECK_OK(al_train_ctx_set_exact(fresh, true));
        CHECK_OK(al_train_ctx_set_temperature(fresh, 0.8f));
        float *grads[2];
        al_train_ctx *ctx[2] = {reused, fresh};
        for (int j = 0; j < 2; j++) {
            CHECK_OK(al_forward(ctx[j], tokens, targets, NULL, NULL));
            al_lora_zero_grads(&m);
            al_backward(ctx[j], &m, w);
            grads[j] = malloc(m.lora->n_params * sizeof(float));
            memcpy(grads[j], m.lora->grads, m.lora->n_params * sizeof(float));
        }
        CHECKF(memcmp(al_ctx_logits(reused), al_ctx_logits(fresh), (size_t)N * c.vocab_size * sizeof(float)) == 0 &&
                   memcmp(al_ctx_logp(reused), al_ctx_logp(fresh), (size_t)N * sizeof(float)) == 0,
               "reshaped to %d x %d: the forward differs from a new context's", B, T);
        CHECKF(memcmp(grads[0], grads[1], m.lora->n_params * sizeof(float)) == 0,
               "reshaped to %d x %d: the gradients differ from a new context's", B, T);
        free(grads[0]), free(grads[1]);
        al_train_ctx_free(fresh);
    }
    al_train_ctx_free(reused);
    al_lora_detach(&m);
    al_model_free(&m);
}

int main(void)
{
    check_temperature();
    check_reshape();
    al_config base = {.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 8, .n_kv_heads = 4, .head_dim = 8,
                      .vocab_size = 97, .seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                      .rope = AL_ROPE_HALF, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
    check_config("head_dim 8 (loop attention)", base);
    al_config c = base;
    c.dim = 128, c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 32, c.hidden_dim = 176, c.vocab_size = 300;
    check_config("head_dim 32 (sgemm attention)", c);
    c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 64, c.qkv_bias = true, c.tied_embeddings = false,
    c.rope = AL_ROPE_INTERLEAVED;
    check_config("head_dim 64, GQA, biases, untied", c);
    return test_report();
}
