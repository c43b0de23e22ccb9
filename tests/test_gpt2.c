/* The GPT-2 layout through the engine: the KV-cache decoder computes what the training
 * forward computes (learned positions, LayerNorm, GELU, biases), step by step, by prefill,
 * with an f16 cache and with bf16 weights; generation runs on it; what is not supported
 * yet (exact mode, LoRA) is refused with a message instead of computing something else.
 * The gradients are checked against finite differences in test_ops and against PyTorch
 * in test_gpt2_reference. */
#include <math.h>

#include "align/model.h"
#include "align/train.h"
#include "model_util.h"
#include "test.h"

static uint64_t rng_state = 0x6b7a2ull;

enum { V = 37, MAXLEN = 24, NSEQ = 3 };

static al_config gpt2_config(int dim, int layers, int heads)
{
    return (al_config){.arch = AL_ARCH_GPT2, .dim = dim, .hidden_dim = 4 * dim, .n_layers = layers,
                       .n_heads = heads, .n_kv_heads = heads, .head_dim = dim / heads, .vocab_size = V,
                       .seq_len = MAXLEN, .norm_eps = 1e-5f, .tied_embeddings = true, .qkv_bias = true,
                       .bos_id = 1, .eos_id = 2};
}

/* Random weights with LayerNorm weights around 1 (test_random_model does the norms). */
static void random_gpt2(al_model *m, const al_config *c) { test_random_model(m, c, &rng_state, 0.3f); }

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* Every step of NSEQ sequences decoded together against al_forward on the whole rows. */
static void check_decoder_matches_forward(const al_model *m, al_kv_type kv, al_weight_type wt, double tol)
{
    int tok[NSEQ][MAXLEN];
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < MAXLEN; t++)
            tok[s][t] = (int)(al_xorshift_u32(&rng_state) % V);
    al_train_ctx *ctx = al_train_ctx_new(m, NSEQ, MAXLEN);
    CHECK(ctx != NULL);
    CHECK_OK(al_forward(ctx, &tok[0][0], NULL, NULL, NULL));
    const float *want = al_ctx_logits(ctx);
    al_decoder *d = al_decoder_new_kv(m, NSEQ, MAXLEN, kv);
    CHECK(d != NULL);
    CHECK_OK(al_decoder_set_weights(d, wt));
    double worst = 0;
    for (int t = 0; t < MAXLEN; t++) {
        int step[NSEQ];
        for (int s = 0; s < NSEQ; s++)
            step[s] = tok[s][t];
        const float *got = al_decoder_step(d, NULL, step, NSEQ);
        CHECK(got != NULL);
        for (int s = 0; s < NSEQ && got; s++)
            worst = fmax(worst, max_abs_diff(got + (size_t)s * V, want + ((size_t)s * MAXLEN + t) * V, V));
    }
    CHECKF(worst < tol, "decoder (kv %d, weights %s) vs training forward: max |dlogit| %.3g", (int)kv,
           al_weight_type_name(wt), worst);
    /* a prompt read by prefill continues with the same logits as one read step by step */
    al_decoder_reset(d, -1);
    CHECK_OK(al_decoder_prefill(d, 1, tok[1], MAXLEN - 1));
    const float *last = al_decoder_step(d, (const int[]){1}, &tok[1][MAXLEN - 1], 1);
    CHECK(last && max_abs_diff(last, want + ((size_t)1 * MAXLEN + MAXLEN - 1) * V, V) < tol);
    al_decoder_free(d);
    al_train_ctx_free(ctx);
}

static void check_generate(const al_model *m)
{
    al_ints prompts[2] = {0};
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < 3 + i; t++)
            al_ints_push(&prompts[i], (int)(al_xorshift_u32(&rng_state) % V));
    al_gen_opts o = {.max_new_tokens = 8, .sampling = al_sampler_defaults()};
    o.sampling.temperature = 0; /* greedy: the result is the argmax chain, checked below */
    al_gen_result r[2];
    CHECK_OK(al_generate(m, NULL, prompts, 2, &o, r, NULL, NULL));
    for (int i = 0; i < 2; i++) {
        CHECK(r[i].ids.n == 8);
        /* the greedy chain: each new token is the argmax of the forward over what precedes it */
        al_ints all = {0};
        for (int t = 0; t < prompts[i].n; t++)
            al_ints_push(&all, prompts[i].v[t]);
        for (int t = 0; t < r[i].ids.n; t++)
            al_ints_push(&all, r[i].ids.v[t]);
        const int T = (int)all.n - 1;
        al_train_ctx *ctx = al_train_ctx_new(m, 1, T);
        CHECK_OK(al_forward(ctx, all.v, NULL, NULL, NULL));
        int agree = 0;
        for (int t = (int)prompts[i].n - 1; t < T; t++) {
            const float *row = al_ctx_logits(ctx) + (size_t)t * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[best])
                    best = v;
            agree += best == all.v[t + 1];
        }
        CHECKF(agree == 8, "prompt %d: %d of 8 greedy tokens are the forward's argmax", i, agree);
        al_train_ctx_free(ctx);
        al_ints_free(&all);
    }
    al_gen_results_free(r, 2);
    al_ints_free(&prompts[0]);
    al_ints_free(&prompts[1]);
}

static void check_refusals(al_model *m)
{
    al_decoder *d = al_decoder_new(m, 1, 8);
    CHECK(d && al_decoder_set_exact(d, true) != 0);
    CHECK(strstr(al_errmsg(), "GPT-2") != NULL);
    al_decoder_free(d);
    al_train_ctx *ctx = al_train_ctx_new(m, 1, 8);
    CHECK(ctx && al_train_ctx_set_exact(ctx, true) != 0);
    al_train_ctx_free(ctx);
    al_config bad = m->cfg;
    bad.n_kv_heads = 1;
    al_model tmp;
    CHECK(al_model_init(&tmp, &bad) != 0); /* GPT-2 has no grouped-query attention */
    bad = m->cfg;
    bad.qkv_bias = false;
    CHECK(al_model_init(&tmp, &bad) != 0);
}

static void check_layout(void)
{
    al_config c = gpt2_config(32, 2, 4);
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    /* GPT-2 small's count for this shape: wte + wpe + per layer (2 LN + qkv + proj + fc + fc_proj) + ln_f */
    const size_t D = 32, H = 128, L = 2;
    const size_t want = V * D + MAXLEN * D + L * (4 * D + 3 * D * D + 3 * D + D * D + D + D * H + H + H * D + D) + 2 * D;
    CHECKF(m.n_params == want, "GPT-2 parameter count %zu, expected %zu", m.n_params, want);
    CHECK(m.w.w3 == NULL && m.w.wcls == m.w.tok_emb);
    CHECK(m.w.pos_emb == m.params + V * D);
    CHECK(m.w.bln_final + D == m.params + m.n_params);
    al_model_init_weights(&m, 5);
    /* LayerNorm weights start at 1, their biases and every projection bias at 0 */
    double ones = 0, zeros = 0;
    for (size_t i = 0; i < D; i++)
        ones += m.w.rms_final[i], zeros += fabs(m.w.bln_final[i]) + fabs(m.w.bo[i]) + fabs(m.w.b2[i]);
    CHECK(ones == (double)D && zeros == 0);
    al_model_free(&m);
}

int main(void)
{
    check_layout();
    al_config c = gpt2_config(32, 2, 4);
    al_model m;
    random_gpt2(&m, &c);
    check_decoder_matches_forward(&m, AL_KV_F32, AL_W_F32, 1e-4);
    check_decoder_matches_forward(&m, AL_KV_F16, AL_W_F32, 5e-2);
    check_decoder_matches_forward(&m, AL_KV_F32, AL_W_BF16, 0.5);
    check_generate(&m);
    check_refusals(&m);
    al_model_free(&m);
    /* head size 64 takes the decoder's other attention paths */
    al_config wide = gpt2_config(128, 1, 2);
    random_gpt2(&m, &wide);
    check_decoder_matches_forward(&m, AL_KV_F32, AL_W_F32, 1e-4);
    al_model_free(&m);
    return test_report();
}
