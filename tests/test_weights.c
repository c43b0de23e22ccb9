/* Weight-only reduced precision (al_weight_type): the rounding helpers on chosen values;
 * packed storage widened equal to the rounded floats (memcmp), and the packed kernels equal
 * to the float kernel on the rounded floats (memcmp) over shapes, row counts and thread
 * splits; the exact decoder with bf16 / int8 weights equal to the exact training forward
 * with the same type (memcmp), with forks, split steps, LoRA on and off, and after the
 * weights moved; non-exact decoding with bf16 / int8 storage equal to float decoding of
 * pre-rounded weights (memcmp; small and large models, float and half caches) and to
 * al_generate on them; on stories260K, log-probabilities within a stated distance of the
 * float weights'. */
#include <omp.h>

#include "../src/model/ops.h"
#include "align/model.h"
#include "align/tokenizer.h"
#include "test.h"
#include "model_util.h"

static uint64_t rng_state = 0x5eed1234ull;

static float frand(void) { return al_xorshift_f32(&rng_state) * 2.0f - 1.0f; }

static const al_weight_type reduced[2] = {AL_W_BF16, AL_W_INT8};

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void check_rounding(void)
{
    /* bf16: ties to even, carries into the exponent, overflow to inf, NaN kept */
    CHECK(op_float_to_bf16(1.0f) == 0x3f80);
    CHECK(op_float_to_bf16(bits_float(0x3f808000u)) == 0x3f80); /* halfway, even below */
    CHECK(op_float_to_bf16(bits_float(0x3f818000u)) == 0x3f82); /* halfway, even above */
    CHECK(op_float_to_bf16(bits_float(0x3f808001u)) == 0x3f81);
    CHECK(op_float_to_bf16(bits_float(0x3fffffffu)) == 0x4000);
    CHECK(op_float_to_bf16(-2.5f) == 0xc020);
    CHECK(op_float_to_bf16(bits_float(0x7f7fffffu)) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(op_float_to_bf16(INFINITY) == 0x7f80 && op_float_to_bf16(-INFINITY) == 0xff80);
    CHECK(isnan(op_bf16_to_float(op_float_to_bf16(NAN))));
    CHECK(isnan(op_bf16_to_float(op_float_to_bf16(bits_float(0x7f800001u))))); /* payload in the low bits */
    CHECK(float_bits(op_bf16_to_float(0x3f81)) == 0x3f810000u);
    /* int8: s = max / 127; ties to even; a zero row */
    const float row[8] = {127.0f, -63.5f, 0.5f, 1.5f, -2.5f, 3.49f, -127.0f, 0.0f};
    const int8_t want[8] = {127, -64, 0, 2, -2, 3, -127, 0};
    const float s = op_int8_scale(row, 8);
    CHECK(s == 1.0f);
    for (int i = 0; i < 8; i++)
        CHECKF(op_int8_quantize(row[i], s) == want[i], "int8 of %g: %d, want %d", (double)row[i],
               op_int8_quantize(row[i], s), want[i]);
    const float zeros[3] = {0};
    CHECK(op_int8_scale(zeros, 3) == 0.0f && op_int8_quantize(0.0f, 0.0f) == 0);
    const float small[2] = {0.3f, -0.1f};
    const float s2 = op_int8_scale(small, 2);
    CHECK(s2 == 0.3f / 127.0f && op_int8_value(op_int8_quantize(0.3f, s2), s2) == 127 * s2);
    CHECK(op_int8_quantize(NAN, 1.0f) == 0);
    al_weight_type t;
    CHECK(al_weight_type_parse("bf16", &t) == 0 && t == AL_W_BF16);
    CHECK(al_weight_type_parse("int8", &t) == 0 && t == AL_W_INT8);
    CHECK(al_weight_type_parse("f32", &t) == 0 && t == AL_W_F32);
    CHECK(al_weight_type_parse("fp8", &t) != 0 && strstr(al_errmsg(), "fp8"));
}

/* Storage widened = rounded floats, and the exact forward's rounded transposition = the
 * plain transposition of rounded floats, both by memcmp (padding included). */
static void check_packing(void)
{
    const int shapes[][2] = {{37, 23}, {16, 5}, {97, 64}, {1, 9}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int rows = shapes[k][0], cols = shapes[k][1];
        float *W = malloc((size_t)rows * cols * sizeof(float)), *R = malloc((size_t)rows * cols * sizeof(float));
        float *U = malloc((size_t)rows * cols * sizeof(float));
        for (int i = 0; i < rows * cols; i++)
            W[i] = frand() * (i % 7 == 0 ? 3.0f : 0.2f);
        for (int c = 0; c < cols; c++)
            W[c] = 0.0f; /* a row of zeros: scale 0 */
        const size_t tf = op_transposed_floats(rows, cols);
        float *T1 = malloc(tf * sizeof(float)), *T2 = malloc(tf * sizeof(float));
        for (int j = 0; j < 2; j++) {
            const al_weight_type t = reduced[j];
            memcpy(R, W, (size_t)rows * cols * sizeof(float));
            op_round_weights(R, rows, cols, t);
            const size_t bytes = op_packed_bytes(rows, cols, t);
            CHECK(bytes % 64 == 0);
            void *P = al_alloc(bytes);
            op_pack_weights(P, W, rows, cols, t);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    U[(size_t)r * cols + c] = op_packed_value(P, rows, cols, r, c, t);
            CHECKF(memcmp(U, R, (size_t)rows * cols * sizeof(float)) == 0, "%s %dx%d: stored values differ",
                   al_weight_type_name(t), rows, cols);
            op_transpose_weights_as(T1, W, rows, cols, t);
            op_transpose_weights(T2, R, rows, cols);
            CHECKF(memcmp(T1, T2, tf * sizeof(float)) == 0, "%s %dx%d: rounded transposition differs",
                   al_weight_type_name(t), rows, cols);
            al_free(P);
        }
        free(W), free(R), free(U), free(T1), free(T2);
    }
}

/* op_matmul_forward_p on packed weights = op_matmul_forward_t on the rounded floats, over
 * row counts (blocks of 4, single rows, the row split at 64), output tiles (64/32/16 and a
 * ragged end), biases, and the split over output runs (few rows of a large matrix). */
static void check_kernels(void)
{
    const int cases[][3] = {{1, 64, 97}, {3, 48, 37}, {5, 30, 200}, {70, 24, 130}, {2, 1024, 1100}, {9, 512, 300}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int N = cases[k][0], n_in = cases[k][1], n_out = cases[k][2];
        float *W = malloc((size_t)n_out * n_in * sizeof(float)), *x = malloc((size_t)N * n_in * sizeof(float));
        float *bias = malloc((size_t)n_out * sizeof(float));
        float *a = malloc((size_t)N * n_out * sizeof(float)), *b = malloc((size_t)N * n_out * sizeof(float));
        float *T = malloc(op_transposed_floats(n_out, n_in) * sizeof(float));
        for (int i = 0; i < n_out * n_in; i++)
            W[i] = frand() * 0.5f;
        for (int i = 0; i < N * n_in; i++)
            x[i] = frand();
        for (int i = 0; i < n_out; i++)
            bias[i] = frand();
        for (int j = 0; j < 2; j++) {
            const al_weight_type t = reduced[j];
            void *P = al_alloc(op_packed_bytes(n_out, n_in, t));
            op_pack_weights(P, W, n_out, n_in, t);
            op_transpose_weights_as(T, W, n_out, n_in, t);
            for (int withb = 0; withb < 2; withb++) {
                const float *bb = withb ? bias : NULL;
                op_matmul_forward_t(a, x, T, bb, N, n_in, n_out);
                op_matmul_forward_p(b, x, P, t, bb, N, n_in, n_out);
                CHECKF(memcmp(a, b, (size_t)N * n_out * sizeof(float)) == 0, "%s N %d in %d out %d bias %d differs",
                       al_weight_type_name(t), N, n_in, n_out, withb);
                /* the same inside a parallel region (no split) */
                memset(b, 0, (size_t)N * n_out * sizeof(float));
#pragma omp parallel num_threads(2)
#pragma omp single
                op_matmul_forward_p(b, x, P, t, bb, N, n_in, n_out);
                CHECK(memcmp(a, b, (size_t)N * n_out * sizeof(float)) == 0);
            }
            al_free(P);
        }
        /* f32 packing is the transposition itself */
        void *P = al_alloc(op_packed_bytes(n_out, n_in, AL_W_F32));
        op_pack_weights(P, W, n_out, n_in, AL_W_F32);
        op_matmul_forward_t(a, x, (const float *)P, bias, N, n_in, n_out);
        op_matmul_forward_p(b, x, P, AL_W_F32, bias, N, n_in, n_out);
        CHECK(memcmp(a, b, (size_t)N * n_out * sizeof(float)) == 0);
        al_free(P);
        free(W), free(x), free(bias), free(a), free(b), free(T);
    }
}

static void random_model(al_model *m, const al_config *c) { test_random_model(m, c, &rng_state, 0.3f); }

/* A copy of m (untied) whose matrices hold their values in type t. */
static void rounded_copy(al_model *r, const al_model *m, al_weight_type t)
{
    const al_config *c = &m->cfg;
    CHECK(!c->tied_embeddings); /* rounding wcls would round the embeddings too */
    CHECK_OK(al_model_init(r, c));
    memcpy(r->params, m->params, m->n_params * sizeof(float));
    const int L = c->n_layers, D = c->dim, Hd = c->hidden_dim, qd = c->n_heads * c->head_dim;
    const int kvd = c->n_kv_heads * c->head_dim;
    /* rows are independent, so each kind rounds as one matrix of L x rows */
    op_round_weights(r->w.wq, L * qd, D, t);
    op_round_weights(r->w.wk, L * kvd, D, t);
    op_round_weights(r->w.wv, L * kvd, D, t);
    op_round_weights(r->w.wo, L * D, qd, t);
    op_round_weights(r->w.w1, L * Hd, D, t);
    op_round_weights(r->w.w2, L * D, Hd, t);
    op_round_weights(r->w.w3, L * Hd, D, t);
    op_round_weights(r->w.wcls, c->vocab_size, D, t);
}

#define NSEQ 5
#define MAXLEN 24

/* Decodes NSEQ sequences (3 and 4 forked from 0 after `fork` tokens; every other step split
 * over two threads) and stores every step's logits in out [NSEQ][MAXLEN][V]. */
static void decode_all(al_decoder *d, const al_model *m, int tok[NSEQ][MAXLEN], const int *len, int fork, float *out)
{
    const int V = m->cfg.vocab_size;
    for (int t = 0; t < fork; t++) {
        int seq = 0;
        float *lg = al_decoder_step(d, &seq, &tok[0][t], 1);
        CHECK(lg != NULL);
        if (lg)
            memcpy(out + (size_t)t * V, lg, (size_t)V * sizeof(float));
    }
    for (int s = 3; s < NSEQ; s++) {
        CHECK_OK(al_decoder_copy_seq(d, s, 0));
        memcpy(out + (size_t)s * MAXLEN * V, out, (size_t)fork * V * sizeof(float));
    }
    for (int t = 0; t < MAXLEN; t++) {
        int seqs[NSEQ], toks[NSEQ], n = 0;
        for (int s = 0; s < NSEQ; s++) {
            const int start = (s == 0 || s >= 3) ? fork : 0;
            if (t >= start && t < len[s])
                seqs[n] = s, toks[n] = tok[s][t], n++;
        }
        if (n == 0)
            continue;
        float *lg;
        if (t % 2 && n >= 2) {
            const int h = n / 2;
            float *part[2];
#pragma omp parallel for num_threads(2)
            for (int p = 0; p < 2; p++)
                part[p] = al_decoder_step_rows(d, seqs + p * h, toks + p * h, p ? n - h : h, p * h);
            lg = part[0] && part[1] ? part[0] : NULL;
        } else {
            lg = al_decoder_step(d, seqs, toks, n);
        }
        CHECK(lg != NULL);
        for (int i = 0; lg && i < n; i++)
            memcpy(out + ((size_t)seqs[i] * MAXLEN + t) * V, lg + (size_t)i * V, (size_t)V * sizeof(float));
    }
}

static void random_tokens(int tok[NSEQ][MAXLEN], int V, int fork)
{
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < MAXLEN; t++)
            tok[s][t] = (int)(al_xorshift_f32(&rng_state) * (float)V) % V;
    for (int s = 3; s < NSEQ; s++)
        for (int t = 0; t < fork; t++)
            tok[s][t] = tok[0][t];
}

static const int lens[NSEQ] = {MAXLEN, 11, 19, MAXLEN - 3, 15};

/* The exact decoder with weights t against the exact training forward with t: the count of
 * positions whose logits differ.  order: set the weight type before (0) or after (1)
 * exact mode. */
static int exact_mismatches(const al_model *m, al_weight_type t, int order, int fork)
{
    const int V = m->cfg.vocab_size, T = MAXLEN, B = 2;
    static int tok[NSEQ][MAXLEN];
    random_tokens(tok, V, fork);
    float *dec = calloc((size_t)NSEQ * MAXLEN * V, sizeof(float));
    al_decoder *d = al_decoder_new(m, NSEQ, MAXLEN);
    CHECK(d != NULL);
    if (order == 0)
        CHECK_OK(al_decoder_set_weights(d, t));
    CHECK_OK(al_decoder_set_exact(d, true));
    if (order == 1)
        CHECK_OK(al_decoder_set_weights(d, t));
    decode_all(d, m, tok, lens, fork, dec);
    al_decoder_free(d);

    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    CHECK_OK(al_train_ctx_set_exact(ctx, true));
    CHECK_OK(al_train_ctx_set_weights(ctx, t));
    int *tokens = calloc((size_t)B * T, sizeof(int)), bad = 0;
    for (int s0 = 0; s0 < NSEQ; s0 += B) {
        for (int b = 0; b < B; b++)
            for (int p = 0; p < T; p++) {
                const int s = s0 + b;
                tokens[(size_t)b * T + p] = s < NSEQ && p < lens[s] ? tok[s][p] : (b + p) % V;
            }
        CHECK_OK(al_forward(ctx, tokens, NULL, NULL, NULL));
        const float *lg = al_ctx_logits(ctx);
        for (int b = 0; b < B && s0 + b < NSEQ; b++)
            for (int p = 0; p < lens[s0 + b]; p++)
                bad += memcmp(lg + ((size_t)b * T + p) * V, dec + ((size_t)(s0 + b) * MAXLEN + p) * V,
                              (size_t)V * sizeof(float)) != 0;
    }
    free(tokens);
    al_train_ctx_free(ctx);
    free(dec);
    return bad;
}

/* The exact training forward with t differs from the float one (the type is applied),
 * and rounded weights need exact mode. */
static void check_train_ctx_api(const al_model *m)
{
    const int T = 8, V = m->cfg.vocab_size;
    int tokens[8] = {1, 5, 7, 3, 9, 11, 4, 2};
    al_train_ctx *ctx = al_train_ctx_new(m, 1, T);
    CHECK(al_train_ctx_set_weights(ctx, AL_W_BF16) != 0 && strstr(al_errmsg(), "exact"));
    CHECK(al_train_ctx_set_weights(ctx, (al_weight_type)7) != 0);
    CHECK_OK(al_train_ctx_set_exact(ctx, true));
    CHECK_OK(al_forward(ctx, tokens, NULL, NULL, NULL));
    float *f32 = malloc((size_t)T * V * sizeof(float));
    memcpy(f32, al_ctx_logits(ctx), (size_t)T * V * sizeof(float));
    CHECK_OK(al_train_ctx_set_weights(ctx, AL_W_INT8));
    CHECK_OK(al_forward(ctx, tokens, NULL, NULL, NULL));
    CHECK(memcmp(f32, al_ctx_logits(ctx), (size_t)T * V * sizeof(float)) != 0);
    CHECK_OK(al_train_ctx_set_exact(ctx, false)); /* back to floats */
    CHECK_OK(al_train_ctx_set_exact(ctx, true));
    CHECK_OK(al_forward(ctx, tokens, NULL, NULL, NULL));
    CHECK(memcmp(f32, al_ctx_logits(ctx), (size_t)T * V * sizeof(float)) == 0);
    free(f32);
    al_train_ctx_free(ctx);
    al_decoder *d = al_decoder_new(m, 1, 8);
    CHECK(al_decoder_set_weights(d, (al_weight_type)3) != 0 && strstr(al_errmsg(), "weight type"));
    al_decoder_free(d);
}

/* After the weights move, al_decoder_set_exact refreshes the packed copy (as rollouts do). */
static void check_refresh(al_model *m, al_weight_type t)
{
    const int V = m->cfg.vocab_size;
    int toks[3] = {3, 1, 4};
    al_decoder *d = al_decoder_new(m, 3, 8);
    CHECK_OK(al_decoder_set_weights(d, t));
    CHECK_OK(al_decoder_set_exact(d, true));
    CHECK(al_decoder_step(d, NULL, toks, 3) != NULL);
    for (size_t i = 0; i < m->n_params; i += 3)
        m->params[i] += 0.01f;
    al_decoder_reset(d, -1);
    CHECK_OK(al_decoder_set_exact(d, true));
    const float *a = al_decoder_step(d, NULL, toks, 3);
    al_decoder *fresh = al_decoder_new(m, 3, 8);
    CHECK_OK(al_decoder_set_weights(fresh, t));
    CHECK_OK(al_decoder_set_exact(fresh, true));
    const float *b = al_decoder_step(fresh, NULL, toks, 3);
    CHECK(a && b && memcmp(a, b, (size_t)3 * V * sizeof(float)) == 0);
    al_decoder_free(d), al_decoder_free(fresh);
}

static void check_exact(const char *name, al_config c)
{
    al_model m = {0};
    random_model(&m, &c);
    for (int j = 0; j < 2; j++) {
        const al_weight_type t = reduced[j];
        for (int order = 0; order < 2; order++) {
            const int bad = exact_mismatches(&m, t, order, 5 + 3 * order);
            CHECKF(bad == 0, "%s, %s (set %s exact mode): %d positions differ from training", name,
                   al_weight_type_name(t), order ? "after" : "before", bad);
        }
    }
    check_train_ctx_api(&m);
    al_lora_config lc = {.rank = 4, .alpha = 8, .targets = AL_LORA_ALL, .seed = 3};
    CHECK_OK(al_lora_attach(&m, &lc));
    for (size_t i = 0; i < m.lora->n_params; i++)
        m.lora->params[i] = frand() * 0.3f;
    for (int j = 0; j < 2; j++) {
        int bad = exact_mismatches(&m, reduced[j], 0, 4);
        CHECKF(bad == 0, "%s with LoRA, %s: %d positions differ", name, al_weight_type_name(reduced[j]), bad);
        al_lora_set_enabled(&m, false);
        bad = exact_mismatches(&m, reduced[j], 1, 6);
        CHECKF(bad == 0, "%s with LoRA off, %s: %d positions differ", name, al_weight_type_name(reduced[j]), bad);
        al_lora_set_enabled(&m, true);
    }
    al_lora_detach(&m);
    check_refresh(&m, AL_W_INT8);
    al_model_free(&m);
}

/* Decoding m with weights t (exact mode or not, cache kv) = decoding the rounded copy with
 * float weights, memcmp (unless same is false: a large model's float weights go through
 * sgemm outside exact mode); returns the largest |logit difference| between m's t-decoding
 * and m's float decoding. */
static double check_prerounded(const char *name, const al_model *m, al_weight_type t, bool exact, al_kv_type kv,
                               bool same, double *largest)
{
    const int V = m->cfg.vocab_size, fork = 4;
    static int tok[NSEQ][MAXLEN];
    random_tokens(tok, V, fork);
    al_model r = {0};
    rounded_copy(&r, m, t);
    float *out[3];
    const al_model *models[3] = {m, &r, m};
    const al_weight_type types[3] = {t, AL_W_F32, AL_W_F32};
    for (int k = 0; k < 3; k++) {
        out[k] = calloc((size_t)NSEQ * MAXLEN * V, sizeof(float));
        al_decoder *d = al_decoder_new_kv(models[k], NSEQ, MAXLEN, kv);
        CHECK(d != NULL);
        CHECK_OK(al_decoder_set_weights(d, types[k]));
        if (exact)
            CHECK_OK(al_decoder_set_exact(d, true));
        decode_all(d, models[k], tok, lens, fork, out[k]);
        al_decoder_free(d);
    }
    int bad = 0;
    double worst = 0, big = 0;
    for (int s = 0; s < NSEQ; s++)
        for (int p = 0; p < lens[s]; p++) {
            const size_t at = ((size_t)s * MAXLEN + p) * V;
            bad += memcmp(out[0] + at, out[1] + at, (size_t)V * sizeof(float)) != 0;
            for (int v = 0; v < V; v++) {
                worst = fmax(worst, fabs((double)out[0][at + v] - out[2][at + v]));
                big = fmax(big, fabs(out[2][at + v]));
            }
        }
    CHECKF(!same || bad == 0, "%s, %s weights%s, %s cache: %d positions differ from floats rounded alike", name,
           al_weight_type_name(t), exact ? " (exact)" : "", kv == AL_KV_F16 ? "f16" : "f32", bad);
    for (int k = 0; k < 3; k++)
        free(out[k]);
    al_model_free(&r);
    if (largest)
        *largest = big;
    return worst;
}

/* al_generate with opts.weights = generating from the rounded copy with float weights. */
static void check_generate(const al_model *m, al_weight_type t)
{
    al_model r = {0};
    rounded_copy(&r, m, t);
    al_ints prompts[3] = {0};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k <= i; k++)
            al_ints_push(&prompts[i], 1 + 7 * k + i);
    al_gen_opts o = {.max_new_tokens = 12, .sampling = al_sampler_defaults(), .weights = t};
    o.sampling.seed = 11;
    al_gen_result a[3], b[3];
    CHECK_OK(al_generate(m, NULL, prompts, 3, &o, a, NULL, NULL));
    o.weights = AL_W_F32;
    CHECK_OK(al_generate(&r, NULL, prompts, 3, &o, b, NULL, NULL));
    for (int i = 0; i < 3; i++)
        CHECKF(a[i].ids.n == b[i].ids.n && !memcmp(a[i].ids.v, b[i].ids.v, (size_t)a[i].ids.n * sizeof(int)),
               "al_generate with %s weights, sequence %d differs", al_weight_type_name(t), i);
    al_gen_results_free(a, 3), al_gen_results_free(b, 3);
    for (int i = 0; i < 3; i++)
        al_ints_free(&prompts[i]);
    al_model_free(&r);
}

static void check_decoding(void)
{
    al_config c = {.dim = 64, .hidden_dim = 90, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
                   .vocab_size = 97, .seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                   .rope = AL_ROPE_HALF, .tied_embeddings = false, .qkv_bias = true, .bos_id = 1, .eos_id = 2};
    al_model m = {0};
    random_model(&m, &c);
    for (int j = 0; j < 2; j++) {
        check_prerounded("small", &m, reduced[j], false, AL_KV_F32, true, NULL);
        check_prerounded("small", &m, reduced[j], false, AL_KV_F16, true, NULL);
        check_prerounded("small", &m, reduced[j], true, AL_KV_F32, true, NULL);
        check_generate(&m, reduced[j]);
    }
    al_model_free(&m);
    /* above the decoder's 8M-parameter line: floats go through sgemm, packed weights through
     * the packed kernels split over output runs */
    al_config big = {.dim = 512, .hidden_dim = 1376, .n_layers = 4, .n_heads = 8, .n_kv_heads = 4, .head_dim = 64,
                     .vocab_size = 4096, .seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                     .rope = AL_ROPE_HALF, .tied_embeddings = false, .bos_id = 1, .eos_id = 2};
    random_model(&m, &big);
    CHECK(m.n_params > (8u << 20));
    for (size_t i = 0; i < m.n_params; i++) /* smaller weights: a wide random model's logits stay O(1) */
        m.params[i] *= 0.2f;
    for (int l = 0; l < big.n_layers; l++)
        for (int i = 0; i < big.dim; i++)
            m.w.rms_att[l * big.dim + i] = m.w.rms_ffn[l * big.dim + i] = 1.0f;
    for (int i = 0; i < big.dim; i++)
        m.w.rms_final[i] = 1.0f;
    /* back to f32 after int8: the sgemm path again, as a new decoder's */
    int toks[2] = {5, 9};
    al_decoder *d = al_decoder_new(&m, 2, 4), *fresh = al_decoder_new(&m, 2, 4);
    CHECK_OK(al_decoder_set_weights(d, AL_W_INT8));
    CHECK_OK(al_decoder_set_weights(d, AL_W_F32));
    const float *a = al_decoder_step(d, NULL, toks, 2), *b = al_decoder_step(fresh, NULL, toks, 2);
    CHECK(a && b && memcmp(a, b, 2 * (size_t)big.vocab_size * sizeof(float)) == 0);
    al_decoder_free(d), al_decoder_free(fresh);
    for (int j = 0; j < 2; j++) {
        check_prerounded("large", &m, reduced[j], true, AL_KV_F32, true, NULL);
        /* non-exact: packed kernels against sgemm on the float weights, so a tolerance
         * (measured 0.023 for bf16 and 0.060 for int8, on logits up to about 4 in size) */
        double largest = 0;
        const double worst = check_prerounded("large", &m, reduced[j], false, AL_KV_F32, false, &largest);
        fprintf(stderr, "large model, %s weights: logits within %.4f of the float weights' (largest |logit| %.2f)\n",
                al_weight_type_name(reduced[j]), worst, largest);
        CHECKF(worst < (j ? 0.12 : 0.05), "large model, %s: logits %.4f from the float weights'",
               al_weight_type_name(reduced[j]), worst);
    }
    al_model_free(&m);
}

/* stories260K, teacher-forced over a TinyStories passage (135 tokens): the log-probability
 * of every next token with bf16 / int8 weights, against float weights.  Measured: bf16 moves
 * them by at most 0.035 nats and int8 by at most 0.18, the mean by +0.0004 and +0.0006; the
 * bounds leave about 2x room: 0.06 and 0.4 per token, 0.005 and 0.02 on the mean. */
static void check_tolerance(void)
{
    al_model m = {0};
    al_tokenizer *tok = NULL;
    CHECK_OK(al_model_load(&m, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_tokenizer_load(&tok, shared_path("models/stories260K/tok512.bin")));
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                       "park with her dog, Max. One day, Lily saw a big red ball under a tree. She ran to get "
                       "it, but the ball rolled away. Max barked and ran after it. Lily laughed and said, "
                       "\"Good boy, Max!\" They played with the ball until the sun went down.";
    al_ints ids = {0};
    CHECK_OK(al_tokenizer_encode(tok, text, strlen(text), true, false, &ids));
    const int n = ids.n - 1, V = m.cfg.vocab_size;
    double *lp[3];
    const al_weight_type types[3] = {AL_W_F32, AL_W_BF16, AL_W_INT8};
    for (int k = 0; k < 3; k++) {
        lp[k] = calloc((size_t)n, sizeof(double));
        al_decoder *d = al_decoder_new(&m, 1, n);
        CHECK_OK(al_decoder_set_weights(d, types[k]));
        for (int p = 0; p < n; p++) {
            const float *lg = al_decoder_step(d, NULL, &ids.v[p], 1);
            double mx = -INFINITY, sum = 0;
            for (int v = 0; v < V; v++)
                mx = fmax(mx, lg[v]);
            for (int v = 0; v < V; v++)
                sum += exp(lg[v] - mx);
            lp[k][p] = lg[ids.v[p + 1]] - mx - log(sum);
        }
        al_decoder_free(d);
    }
    for (int k = 1; k < 3; k++) {
        double worst = 0, mean = 0;
        for (int p = 0; p < n; p++) {
            worst = fmax(worst, fabs(lp[k][p] - lp[0][p]));
            mean += (lp[k][p] - lp[0][p]) / n;
        }
        fprintf(stderr, "stories260K, %s weights over %d tokens: log-probs within %.4f, mean moved by %+.5f\n",
                al_weight_type_name(types[k]), n, worst, mean);
        CHECKF(worst < (k == 1 ? 0.06 : 0.4) && fabs(mean) < (k == 1 ? 0.005 : 0.02),
               "%s: log-probs within %.4f, mean moved %.5f", al_weight_type_name(types[k]), worst, mean);
    }
    for (int k = 0; k < 3; k++)
        free(lp[k]);
    al_ints_free(&ids);
    al_tokenizer_free(tok);
    al_model_free(&m);
}

int main(void)
{
    check_rounding();
    check_packing();
    check_kernels();
    al_config base = {.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 8, .n_kv_heads = 4, .head_dim = 8,
                      .vocab_size = 97, .seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                      .rope = AL_ROPE_HALF, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
    check_exact("head_dim 8, tied", base);
    al_config c = base;
    c.dim = 128, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 64, c.hidden_dim = 170, c.vocab_size = 300;
    c.qkv_bias = true, c.tied_embeddings = false, c.rope = AL_ROPE_INTERLEAVED;
    check_exact("head_dim 64, GQA, biases, untied", c);
    check_decoding();
    check_tolerance();
    return test_report();
}
