/* GGUF weights: llama.cpp's tiny random Llama loads with its stated config and values
 * checked by hand against the raw bytes; stories260K round-trips through every write type
 * (F32 bit-identical; F16, BF16, Q8_0, Q4_0 within the tolerances docs/formats.md states),
 * from both rotary layouts and as Qwen2 with biases; the conversion kernels against scalar
 * references with their error bounds; the generic writer's and the loader's refusals
 * (corrupt, short and mis-shaped files, run under ASan); and `align convert` to GGUF
 * followed by `align generate` on the result. */
#include <float.h>

#include "align/model.h"
#include "align/tokenizer.h"
#include "test.h"
#include "cli_util.h"

static char tmp[1024];

static const char *tmpf(const char *name)
{
    static char buf[4][1200];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 1200, "%s/%s", tmp, name);
    return p;
}

/* ---- independent scalar references ---- */

static float ref_f16(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float ref_bf16(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Element j of a block of a legacy quantized type, straight from the format's definition. */
static float ref_block_elem(int type, const uint8_t *b, int j)
{
    float d = ref_f16(rd16(b));
    if (type == AL_GGML_Q8_0)
        return (float)(int8_t)b[2 + j] * d;
    if (type == AL_GGML_Q8_1)
        return (float)(int8_t)b[4 + j] * d;
    const uint8_t *qs = b + (type == AL_GGML_Q4_0 ? 2 : type == AL_GGML_Q4_1 ? 4 : type == AL_GGML_Q5_0 ? 6 : 8);
    int nib = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    if (type == AL_GGML_Q5_0 || type == AL_GGML_Q5_1) {
        const uint8_t *qh = b + (type == AL_GGML_Q5_0 ? 2 : 4);
        nib |= ((qh[j / 8] >> (j % 8)) & 1) << 4;
    }
    switch (type) {
    case AL_GGML_Q4_0: return (float)(nib - 8) * d;
    case AL_GGML_Q5_0: return (float)(nib - 16) * d;
    default: return (float)((double)nib * d + ref_f16(rd16(b + 2))); /* Q4_1, Q5_1: q*d + m, exact in double */
    }
}

/* A block scale as the format's writer must store it: s rounded to f16 away from zero. */
static uint16_t ref_scale(float s)
{
    uint16_t h = al_f32_to_f16(s);
    if (fabsf(ref_f16(h)) < fabsf(s))
        h++;
    return h;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) { return al_xorshift_f32(&rng); }
static float nrand(void) { return (urand() + urand() + urand() + urand() - 2.0f) * 1.7f; }

/* ---- models ---- */

static const char *stories(void) { return shared_path("models/stories260K/stories260K.bin"); }

static float *logits_of(const al_model *m, const int *tokens, int T)
{
    al_train_ctx *ctx = al_train_ctx_new(m, 1, T);
    float *out = malloc((size_t)T * (size_t)m->cfg.vocab_size * sizeof *out);
    int *targets = malloc((size_t)T * sizeof *targets);
    for (int t = 0; t < T; t++)
        targets[t] = t + 1 < T ? tokens[t + 1] : -1;
    if (!ctx || al_forward(ctx, tokens, targets, NULL, NULL)) {
        fprintf(stderr, "forward failed: %s\n", al_errmsg());
        exit(1);
    }
    memcpy(out, al_ctx_logits(ctx), (size_t)T * (size_t)m->cfg.vocab_size * sizeof *out);
    al_train_ctx_free(ctx);
    free(targets);
    return out;
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b])
            b = i;
    return b;
}

/* Greedy continuation of prompt by the KV-cache decoder: n new ids into out. */
static void greedy(const al_model *m, const int *prompt, int np, int n, int *out)
{
    al_decoder *d = al_decoder_new(m, 1, np + n);
    float *lg = NULL;
    for (int i = 0; i < np; i++)
        lg = al_decoder_step(d, NULL, &prompt[i], 1);
    for (int i = 0; i < n; i++) {
        out[i] = argmax(lg, m->cfg.vocab_size);
        lg = al_decoder_step(d, NULL, &out[i], 1);
    }
    al_decoder_free(d);
}

static bool same_config(const al_config *a, const al_config *b)
{
    return a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->seq_len == b->seq_len && a->norm_eps == b->norm_eps &&
           a->rope_theta == b->rope_theta && a->rope == b->rope && a->tied_embeddings == b->tied_embeddings &&
           a->qkv_bias == b->qkv_bias && a->bos_id == b->bos_id && a->eos_id == b->eos_id;
}

/* ---- llama.cpp's tiny random Llama (F16 matrices, F32 norms) ---- */

static void test_tiny_random(void)
{
    const char *path = shared_path("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
    al_model m;
    CHECK_OK(al_model_load(&m, path));
    const al_config *c = &m.cfg;
    CHECKF(c->dim == 8 && c->hidden_dim == 32 && c->n_layers == 1 && c->n_heads == 2 && c->n_kv_heads == 2 &&
               c->head_dim == 4 && c->vocab_size == 32000 && c->seq_len == 4096,
           "config: dim %d hidden %d layers %d heads %d/%d hd %d vocab %d seq %d", c->dim, c->hidden_dim,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len);
    CHECK(c->norm_eps == 1e-5f && c->rope_theta == 10000.0f && c->rope == AL_ROPE_INTERLEAVED);
    CHECK(!c->tied_embeddings && !c->qkv_bias && c->bos_id == 1 && c->eos_id == 2);

    /* values by hand from the raw bytes: GGUF's dims are {cols, rows} */
    al_gguf g;
    CHECK_OK(al_gguf_open(&g, path));
    struct {
        const char *name;
        const float *dst;
    } ts[] = {{"token_embd.weight", m.w.tok_emb}, {"output.weight", m.w.wcls},
              {"blk.0.attn_q.weight", m.w.wq},    {"blk.0.attn_k.weight", m.w.wk},
              {"blk.0.ffn_down.weight", m.w.w2},  {"blk.0.ffn_gate.weight", m.w.w1},
              {"blk.0.attn_norm.weight", m.w.rms_att}, {"output_norm.weight", m.w.rms_final}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        const al_gguf_tensor *t = al_gguf_tensor_find(&g, ts[i].name);
        CHECKF(t && (t->type == AL_GGML_F16 || t->type == AL_GGML_F32), "%s", ts[i].name);
        if (!t)
            continue;
        uint64_t cols = t->dims[0], rows = t->n_dims > 1 ? t->dims[1] : 1;
        const uint8_t *raw = t->data;
        int bad = 0;
        for (int k = 0; k < 12; k++) {
            uint64_t r = (uint64_t)k * 7919 % rows, col = (uint64_t)k * 31 % cols, e = r * cols + col;
            float want;
            if (t->type == AL_GGML_F16)
                want = ref_f16(rd16(raw + 2 * e));
            else
                memcpy(&want, raw + 4 * e, 4);
            bad += ts[i].dst[e] != want;
        }
        CHECKF(bad == 0, "%s: %d of 12 values differ from the raw bytes", ts[i].name, bad);
    }
    /* one value spelled out: token 1 (<s>), column 0 */
    {
        const al_gguf_tensor *t = al_gguf_tensor_find(&g, "token_embd.weight");
        uint16_t h = rd16((const uint8_t *)t->data + 2 * 8);
        CHECKF(m.w.tok_emb[8] == ref_f16(h), "tok_emb[1][0] = %g, raw f16 0x%04x = %g", (double)m.w.tok_emb[8], h,
               (double)ref_f16(h));
    }
    al_gguf_close(&g);

    int tokens[8] = {1, 15043, 29892, 3186, 29991, 306, 626, 263};
    float *lg = logits_of(&m, tokens, 8);
    int nonfinite = 0;
    for (int i = 0; i < 8 * 32000; i++)
        nonfinite += !isfinite(lg[i]);
    CHECKF(nonfinite == 0, "%d non-finite logits", nonfinite);
    free(lg);

    /* Untied and F16 at the source: F16 and F32 copies load back bit for bit. */
    const al_ggml_type types[] = {AL_GGML_F32, AL_GGML_F16};
    for (int k = 0; k < 2; k++) {
        al_tokenizer *tok = NULL;
        CHECK_OK(al_tokenizer_load(&tok, path));
        CHECK_OK(al_model_save_gguf(&m, tok, tmpf("tiny.gguf"), types[k]));
        al_model r;
        CHECK_OK(al_model_load(&r, tmpf("tiny.gguf")));
        CHECK(same_config(&r.cfg, &m.cfg) && r.n_params == m.n_params &&
              !memcmp(r.params, m.params, m.n_params * sizeof(float)));
        al_tokenizer *t2 = NULL;
        CHECK_OK(al_tokenizer_load(&t2, tmpf("tiny.gguf")));
        al_ints a = {0}, b = {0};
        const char *text = "Hello world! The quick brown fox, naïve café \xe2\x9c\x93 <s> 12345";
        CHECK_OK(al_tokenizer_encode(tok, text, strlen(text), true, false, &a));
        CHECK_OK(al_tokenizer_encode(t2, text, strlen(text), true, false, &b));
        CHECK(a.n == b.n && a.n > 5 && !memcmp(a.v, b.v, (size_t)a.n * sizeof(int)));
        al_ints_free(&a);
        al_ints_free(&b);
        al_tokenizer_free(t2);
        al_tokenizer_free(tok);
        al_model_free(&r);
    }
    al_model_free(&m);
}

/* ---- kernels ---- */

static void test_half_conversions(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = al_f16_to_f32((uint16_t)h), r = ref_f16((uint16_t)h);
        if (isnan(r)) {
            bad += !isnan(f) || !isnan(al_f16_to_f32(al_f32_to_f16(f)));
            continue;
        }
        bad += memcmp(&f, &r, 4) != 0 && !(f == 0 && r == 0 && signbit(f) == signbit(r));
        bad += al_f32_to_f16(f) != h; /* every half round-trips */
    }
    CHECKF(bad == 0, "%d f16 patterns wrong", bad);

    /* f32 -> f16 and -> bf16 give the nearest value, ties to even, on random floats of every scale */
    int bad16 = 0, bad_bf = 0;
    for (int i = 0; i < 200000; i++) {
        float x = ldexpf(urand() * 2 - 1, (int)(urand() * 50) - 30);
        if (i % 1000 == 0) /* exact midpoints */
            x = (ref_f16(0x3c00) + ref_f16(0x3c01)) / 2 * (i % 2000 ? 1 : -1);
        uint16_t h = al_f32_to_f16(x);
        if ((h & 0x7fff) == 0x7c00 || fabsf(x) >= 65520) { /* overflow, exactly from 65520 on */
            bad16 += (h & 0x7fff) != 0x7c00 || fabsf(x) < 65520;
            continue;
        }
        double e = fabs((double)x - ref_f16(h));
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            uint16_t n = (uint16_t)(h + dlt);
            if ((n & 0x7c00) == 0x7c00 || ((h ^ n) & 0x8000))
                continue;
            double en = fabs((double)x - ref_f16(n));
            bad16 += en < e || (en == e && (h & 1));
        }
        uint16_t b = al_f32_to_bf16(x);
        e = fabs((double)x - ref_bf16(b));
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            uint16_t n = (uint16_t)(b + dlt);
            if ((n & 0x7f80) == 0x7f80 || ((b ^ n) & 0x8000))
                continue;
            double en = fabs((double)x - ref_bf16(n));
            bad_bf += en < e || (en == e && (b & 1));
        }
    }
    CHECKF(bad16 == 0, "%d f16 roundings not nearest-even", bad16);
    CHECKF(bad_bf == 0, "%d bf16 roundings not nearest-even", bad_bf);
    CHECK(al_f32_to_f16(65504.0f) == 0x7bff && al_f32_to_f16(65519.0f) == 0x7bff && al_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(al_f32_to_f16(-0.0f) == 0x8000 && al_f32_to_f16(0x1p-25f) == 0 && al_f32_to_f16(0x1p-24f) == 1);
    CHECK(isnan(al_bf16_to_f32(al_f32_to_bf16(NAN))) && isinf(al_bf16_to_f32(al_f32_to_bf16(INFINITY))));
    uint8_t out[8];
    float big[2] = {1.0f, 70000.0f};
    CHECK(al_ggml_quantize(AL_GGML_F16, big, 2, out) == -1 && strstr(al_errmsg(), "element 1") &&
          strstr(al_errmsg(), "beyond F16's range"));
}

/* Random blocks of several kinds: plain gaussian, a zero block, one outlier, all negative,
 * tiny values, a constant block. */
static void fill_blocks(float *x, int nb)
{
    for (int b = 0; b < nb; b++) {
        float scale = ldexpf(1.0f, (int)(urand() * 12) - 8);
        for (int j = 0; j < 32; j++) {
            float v = nrand() * scale;
            switch (b % 6) {
            case 1: v = 0; break;
            case 2: v = j == 7 ? 40 * scale : v; break;
            case 3: v = -fabsf(v); break;
            case 4: v *= 1e-3f; break;
            case 5: v = scale; break;
            }
            x[b * 32 + j] = v;
        }
    }
}

static void test_quant_kernels(void)
{
    enum { NB = 600, N = NB * 32 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    fill_blocks(x, NB);

    /* Q8_0: codes against a scalar quantizer (d = amax / 127 rounded to f16 away from zero,
     * q = round(x / d)) and the bound |x - x'| <= d/2 */
    CHECK_OK(al_ggml_quantize(AL_GGML_Q8_0, x, N, q));
    CHECK_OK(al_ggml_dequantize(AL_GGML_Q8_0, q, N, y));
    int code_diff = 0, bound = 0, deq = 0, scale_bad = 0;
    double worst = 0;
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = q + b * 34;
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        scale_bad += rd16(blk) != ref_scale(amax / 127);
        float d = ref_f16(rd16(blk));
        for (int j = 0; j < 32; j++) {
            float xi = x[b * 32 + j], yi = y[b * 32 + j];
            double r = d > 0 ? fmin(127, fmax(-127, round((double)xi / d))) : 0;
            code_diff += (int8_t)blk[2 + j] != (int)r;
            deq += yi != ref_block_elem(AL_GGML_Q8_0, blk, j);
            double err = fabs((double)xi - yi);
            bound += err > d / 2 * (1 + 1e-6) + 1e-30;
            if (d > 0 && err / d > worst)
                worst = err / d;
        }
    }
    CHECKF(scale_bad == 0 && deq == 0, "Q8_0: %d scales, %d dequantized values wrong", scale_bad, deq);
    CHECKF(code_diff <= N / 1000, "Q8_0: %d codes differ from round(x/d) (ties and x*(1/d) rounding only)", code_diff);
    CHECKF(bound == 0, "Q8_0: %d elements beyond d/2 (worst %.4f d)", bound, worst);
    printf("Q8_0 kernel: worst |x - x'| = %.4f d over %d values\n", worst, N);

    /* Q4_0: d = m / -8 (to f16, away from zero) for the value m of largest magnitude;
     * |x - x'| <= |d|/2 except where x/d > 7.5 (clamped to code 15): <= |d| there */
    CHECK_OK(al_ggml_quantize(AL_GGML_Q4_0, x, N, q));
    CHECK_OK(al_ggml_dequantize(AL_GGML_Q4_0, q, N, y));
    code_diff = bound = deq = scale_bad = 0;
    int clamped = 0;
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = q + b * 18;
        float m = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[b * 32 + j]) > fabsf(m))
                m = x[b * 32 + j];
        scale_bad += rd16(blk) != ref_scale(m / -8);
        float d = ref_f16(rd16(blk));
        for (int j = 0; j < 32; j++) {
            float xi = x[b * 32 + j], yi = y[b * 32 + j];
            int code = j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
            double s = d != 0 ? (double)xi / d : 0;
            int r = d != 0 ? (int)fmin(15, fmax(0, floor(s + 8.5))) : 8;
            code_diff += code != r;
            deq += yi != ref_block_elem(AL_GGML_Q4_0, blk, j);
            double err = fabs((double)xi - yi), ad = fabs((double)d);
            if (s > 7.5) {
                clamped++;
                bound += err > ad * 1.01;
            } else {
                bound += err > ad / 2 * (1 + 1e-6) + 1e-30;
            }
        }
    }
    CHECKF(scale_bad == 0 && deq == 0, "Q4_0: %d scales, %d dequantized values wrong", scale_bad, deq);
    CHECKF(code_diff <= N / 1000, "Q4_0: %d codes differ from the scalar quantizer", code_diff);
    CHECKF(bound == 0, "Q4_0: %d elements beyond the bound", bound);
    printf("Q4_0 kernel: %d of %d values clamped to the top code\n", clamped, N);

    /* F16 / BF16 / F32 as "quantization": exact conversions element by element */
    CHECK_OK(al_ggml_quantize(AL_GGML_F16, x, N, q));
    CHECK_OK(al_ggml_dequantize(AL_GGML_F16, q, N, y));
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += rd16(q + 2 * i) != al_f32_to_f16(x[i]) || y[i] != ref_f16(rd16(q + 2 * i));
    CHECK_OK(al_ggml_quantize(AL_GGML_BF16, x, N, q));
    CHECK_OK(al_ggml_dequantize(AL_GGML_BF16, q, N, y));
    for (int i = 0; i < N; i++)
        bad += rd16(q + 2 * i) != al_f32_to_bf16(x[i]) || y[i] != ref_bf16(rd16(q + 2 * i));
    CHECK_OK(al_ggml_quantize(AL_GGML_F32, x, N, q));
    CHECK_OK(al_ggml_dequantize(AL_GGML_F32, q, N, y));
    bad += memcmp(x, y, N * sizeof *x) != 0;
    CHECKF(bad == 0, "%d F16/BF16/F32 conversions wrong", bad);

    /* read-only types on random blocks (scales random normal halves) */
    const int ro[] = {AL_GGML_Q4_1, AL_GGML_Q5_0, AL_GGML_Q5_1, AL_GGML_Q8_1, AL_GGML_Q8_0, AL_GGML_Q4_0};
    for (size_t k = 0; k < sizeof ro / sizeof ro[0]; k++) {
        size_t bytes = al_ggml_row_bytes(ro[k], N);
        for (size_t i = 0; i < bytes; i++)
            q[i] = (uint8_t)(al_xorshift_u32(&rng) >> 24);
        size_t bb = bytes / NB;
        for (int b = 0; b < NB; b++) {
            uint16_t d = (uint16_t)((al_xorshift_u32(&rng) & 0x83ff) | (uint16_t)((5 + b % 20) << 10));
            q[b * bb] = (uint8_t)d;
            q[b * bb + 1] = (uint8_t)(d >> 8);
            if (ro[k] == AL_GGML_Q4_1 || ro[k] == AL_GGML_Q5_1 || ro[k] == AL_GGML_Q8_1) {
                uint16_t mm = (uint16_t)((al_xorshift_u32(&rng) & 0x83ff) | (uint16_t)((5 + b % 20) << 10));
                q[b * bb + 2] = (uint8_t)mm;
                q[b * bb + 3] = (uint8_t)(mm >> 8);
            }
        }
        CHECK_OK(al_ggml_dequantize(ro[k], q, N, y));
        bad = 0;
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < 32; j++)
                bad += y[b * 32 + j] != ref_block_elem(ro[k], q + b * bb, j);
        CHECKF(bad == 0, "%s: %d of %d values differ from the reference", al_ggml_type_name(ro[k]), bad, N);
    }

    /* refusals */
    x[40] = NAN;
    CHECK(al_ggml_quantize(AL_GGML_Q8_0, x, N, q) == -1 && strstr(al_errmsg(), "element 40"));
    x[40] = INFINITY;
    CHECK(al_ggml_quantize(AL_GGML_Q4_0, x, N, q) == -1 && strstr(al_errmsg(), "element 40"));
    x[40] = 1e9f; /* amax / 127 beyond F16 */
    CHECK(al_ggml_quantize(AL_GGML_Q8_0, x, N, q) == -1 && strstr(al_errmsg(), "beyond F16's range"));
    CHECK(al_ggml_quantize(AL_GGML_Q8_0, x, 33, q) == -1 && strstr(al_errmsg(), "not whole"));
    CHECK(al_ggml_quantize(AL_GGML_Q4_1, x, 32, q) == -1 && !al_ggml_can_quantize(AL_GGML_Q4_1));
    CHECK(al_ggml_dequantize(12, q, 256, y) == -1 && strstr(al_errmsg(), "Q4_K"));
    free(x);
    free(y);
    free(q);
}

/* ---- stories260K round trips ---- */

typedef struct tolerance {
    al_ggml_type type;
    double max_abs;   /* max |logit difference| over every position and vocabulary entry */
    double min_agree; /* teacher-forced argmax agreement */
    double min_greedy; /* greedy tokens equal to the original's before the first difference,
                          as a fraction of N_PROMPTS x N_GREEDY */
} tolerance;

/* Stated in docs/formats.md ("GGUF", accuracy); measured values are printed. */
static const tolerance tolerances[] = {
    {AL_GGML_F32, 0, 1.0, 1.0},      /* bit-identical (checked with memcmp below) */
    {AL_GGML_F16, 0.02, 0.995, 0.95}, /* measured 0.0142, 400/400, 512/512 */
    {AL_GGML_BF16, 0.35, 0.98, 0.75}, /* measured 0.244, 398/400, 454/512 */
    {AL_GGML_Q8_0, 0.6, 0.975, 0.6},  /* measured 0.454, 395/400, 364/512 */
    {AL_GGML_Q4_0, 12, 0.75, 0.03},   /* measured 8.58, 331/400, 33/512: 4 bits are coarse for 260K weights */
};
enum { N_PROMPTS = 8, N_GREEDY = 64, PROMPT_LEN = 5 };

/* Greedy continuations of N_PROMPTS windows of ids. */
static void greedy_all(const al_model *m, const int *ids, int *out)
{
    for (int p = 0; p < N_PROMPTS; p++)
        greedy(m, ids + p * 41, PROMPT_LEN, N_GREEDY, out + p * N_GREEDY);
}

static void test_round_trips(void)
{
    al_model orig;
    al_tokenizer *tok = NULL;
    if (al_model_load(&orig, stories()) ||
        al_tokenizer_load(&tok, shared_path("models/stories260K/tok512.bin"))) {
        CHECKF(0, "load: %s", al_errmsg());
        return;
    }
    al_buf text = {0};
    CHECK_OK(al_read_file(shared_path("corpora/tinystories/TinyStories-validation-head.txt"), &text));
    al_ints ids = {0};
    CHECK_OK(al_tokenizer_encode(tok, text.data, text.len < 4000 ? text.len : 4000, true, false, &ids));
    const int T = ids.n < 400 ? ids.n : 400, V = orig.cfg.vocab_size;
    float *ref = logits_of(&orig, ids.v, T);
    int gref[N_PROMPTS * N_GREEDY], g[N_PROMPTS * N_GREEDY];
    greedy_all(&orig, ids.v, gref);

    for (size_t k = 0; k < sizeof tolerances / sizeof tolerances[0]; k++) {
        const tolerance *tl = &tolerances[k];
        const char *path = tmpf("rt.gguf");
        CHECK_OK(al_model_save_gguf(&orig, tok, path, tl->type));
        al_model m;
        if (al_model_load(&m, path)) {
            CHECKF(0, "%s: load: %s", al_ggml_type_name(tl->type), al_errmsg());
            continue;
        }
        CHECKF(same_config(&m.cfg, &orig.cfg), "%s: config differs", al_ggml_type_name(tl->type));
        float *lg = logits_of(&m, ids.v, T);
        double max_abs = 0;
        int agree = 0;
        for (int t = 0; t < T; t++) {
            for (int v = 0; v < V; v++)
                max_abs = fmax(max_abs, fabs((double)lg[t * V + v] - ref[t * V + v]));
            agree += argmax(lg + t * V, V) == argmax(ref + t * V, V);
        }
        int same = 0;
        greedy_all(&m, ids.v, g);
        for (int p = 0; p < N_PROMPTS; p++)
            for (int i = 0; i < N_GREEDY && g[p * N_GREEDY + i] == gref[p * N_GREEDY + i]; i++)
                same++;
        printf("%-5s max |dlogit| %.5f, argmax agreement %d/%d, greedy equal before the first difference %d/%d\n",
               al_ggml_type_name(tl->type), max_abs, agree, T, same, N_PROMPTS * N_GREEDY);
        if (tl->type == AL_GGML_F32)
            CHECKF(!memcmp(lg, ref, (size_t)T * V * sizeof *lg) && !memcmp(m.params, orig.params, orig.n_params * 4),
                   "F32 round trip not bit-identical");
        CHECKF(max_abs <= tl->max_abs && agree >= tl->min_agree * T && same >= tl->min_greedy * N_PROMPTS * N_GREEDY,
               "%s: max |dlogit| %.5f (<= %g), agreement %d/%d (>= %.3f), greedy %d (>= %.2f)",
               al_ggml_type_name(tl->type), max_abs, tl->max_abs, agree, T, tl->min_agree, same, tl->min_greedy);

        /* the vocabulary written beside the weights reads back as the same tokenizer */
        if (tl->type == AL_GGML_Q8_0) {
            al_tokenizer *t2 = NULL;
            CHECK_OK(al_tokenizer_load(&t2, path));
            CHECK(t2 && al_tokenizer_vocab_size(t2) == 512 && al_tokenizer_bos(t2) == 1 && al_tokenizer_eos(t2) == 2);
            int piece_bad = 0;
            for (int i = 0; t2 && i < 512; i++) {
                const char *a, *b;
                size_t la, lb;
                al_tokenizer_piece(tok, i, &a, &la);
                al_tokenizer_piece(t2, i, &b, &lb);
                piece_bad += la != lb || memcmp(a, b, la);
            }
            CHECKF(piece_bad == 0, "%d pieces differ after the round trip", piece_bad);
            al_ints re = {0};
            CHECK_OK(al_tokenizer_encode(t2, text.data, text.len < 4000 ? text.len : 4000, true, false, &re));
            CHECK(re.n == ids.n && !memcmp(re.v, ids.v, (size_t)ids.n * sizeof(int)));
            al_ints_free(&re);
            al_tokenizer_free(t2);
            /* Q8_0 blocks by hand: wq of layer 0, rows of 64 = 2 blocks */
            al_gguf g;
            CHECK_OK(al_gguf_open(&g, path));
            const al_gguf_tensor *t = al_gguf_tensor_find(&g, "blk.0.attn_q.weight");
            const al_gguf_tensor *down = al_gguf_tensor_find(&g, "blk.0.ffn_down.weight");
            const al_gguf_tensor *norm = al_gguf_tensor_find(&g, "blk.0.attn_norm.weight");
            CHECK(t && t->type == AL_GGML_Q8_0 && t->dims[0] == 64 && t->dims[1] == 64);
            CHECK(down && down->type == AL_GGML_F16 && down->dims[0] == 172); /* 172 is not whole blocks */
            CHECK(norm && norm->type == AL_GGML_F32);
            int bad = 0;
            for (int b = 0; t && b < 128; b++)
                for (int j = 0; j < 32; j++)
                    bad += m.w.wq[b * 32 + j] != ref_block_elem(AL_GGML_Q8_0, (const uint8_t *)t->data + b * 34, j);
            CHECKF(bad == 0, "%d Q8_0 values differ from d * q", bad);
            CHECK(g.alignment == 32 && g.data_offset % 32 == 0 && g.version == 3);
            for (size_t i = 0; i < g.n_tensors; i++)
                bad += g.tensors[i].offset % 32 != 0;
            CHECK(bad == 0);
            al_gguf_close(&g);
        }
        if (tl->type == AL_GGML_Q4_0) {
            al_gguf g;
            CHECK_OK(al_gguf_open(&g, path));
            const al_gguf_tensor *t = al_gguf_tensor_find(&g, "token_embd.weight");
            CHECK(t && t->type == AL_GGML_Q4_0);
            int bad = 0;
            for (int b = 0; t && b < 512 * 2; b++)
                for (int j = 0; j < 32; j++)
                    bad += m.w.tok_emb[b * 32 + j] !=
                           ref_block_elem(AL_GGML_Q4_0, (const uint8_t *)t->data + b * 18, j);
            CHECKF(bad == 0, "%d Q4_0 values differ from (q - 8) * d", bad);
            al_gguf_close(&g);
        }
        free(lg);
        al_model_free(&m);
    }

    /* An HF-layout (half-split) model goes out interleaved: the same rows as the original. */
    {
        al_model h;
        CHECK_OK(al_model_load(&h, stories()));
        CHECK_OK(al_model_to_half_rope(&h));
        CHECK(memcmp(h.w.wq, orig.w.wq, 64 * 64 * 4) != 0);
        CHECK_OK(al_model_save_gguf(&h, NULL, tmpf("half.gguf"), AL_GGML_F32));
        al_model r;
        CHECK_OK(al_model_load(&r, tmpf("half.gguf")));
        CHECK(r.cfg.rope == AL_ROPE_INTERLEAVED && same_config(&r.cfg, &orig.cfg) &&
              !memcmp(r.params, orig.params, orig.n_params * 4));
        float *lg = logits_of(&r, ids.v, T);
        CHECK(!memcmp(lg, ref, (size_t)T * V * sizeof *lg));
        free(lg);
        al_model_free(&r);
        /* and through F16: within F16's tolerance of the original, as from the interleaved model */
        CHECK_OK(al_model_save_gguf(&h, NULL, tmpf("half.gguf"), AL_GGML_F16));
        CHECK_OK(al_model_load(&r, tmpf("half.gguf")));
        lg = logits_of(&r, ids.v, T);
        double max_abs = 0;
        for (size_t i = 0; i < (size_t)T * V; i++)
            max_abs = fmax(max_abs, fabs((double)lg[i] - ref[i]));
        CHECKF(max_abs <= tolerances[1].max_abs, "half-split model through F16: max |dlogit| %g", max_abs);
        free(lg);
        al_model_free(&r);
        al_model_free(&h);
    }

    /* With q/k/v biases the file is Qwen2, rows in half-split order. */
    {
        al_config c = orig.cfg;
        c.qkv_bias = true;
        al_model b;
        CHECK_OK(al_model_init(&b, &c));
        memcpy(b.params, orig.params, orig.n_params * 4); /* biases come last in the layout */
        size_t nb = (size_t)c.n_layers * (size_t)(c.n_heads + 2 * c.n_kv_heads) * (size_t)c.head_dim;
        for (size_t i = 0; i < nb; i++)
            b.w.bq[i] = nrand() * 0.1f;
        float *want = logits_of(&b, ids.v, T);
        CHECK_OK(al_model_save_gguf(&b, tok, tmpf("qwen.gguf"), AL_GGML_F32));
        al_gguf g;
        al_gguf_str arch = {0};
        CHECK(al_gguf_open(&g, tmpf("qwen.gguf")) == 0 && al_gguf_get_str(&g, "general.architecture", &arch) == 0 &&
              al_gguf_str_eq(arch, "qwen2") && al_gguf_tensor_find(&g, "blk.4.attn_k.bias"));
        al_gguf_close(&g);
        al_model r;
        CHECK_OK(al_model_load(&r, tmpf("qwen.gguf")));
        CHECK(r.cfg.rope == AL_ROPE_HALF && r.cfg.qkv_bias);
        CHECK_OK(al_model_to_half_rope(&b));
        CHECK(!memcmp(r.params, b.params, b.n_params * 4));
        float *lg = logits_of(&r, ids.v, T);
        double max_abs = 0;
        for (size_t i = 0; i < (size_t)T * V; i++)
            max_abs = fmax(max_abs, fabs((double)lg[i] - want[i]));
        CHECKF(max_abs <= 1e-4, "qwen2 round trip: max |dlogit| %g (the rotary order changes summation order only)",
               max_abs);
        free(lg);
        free(want);
        al_model_free(&r);
        al_model_free(&b);
    }

    free(ref);
    al_ints_free(&ids);
    al_buf_free(&text);
    al_tokenizer_free(tok);
    al_model_free(&orig);
}

/* ---- refusals ---- */

/* A tiny Llama written with the generic writer, with one thing wrong (variant != 0). */
enum {
    V_OK, V_SHAPE, V_MISSING, V_UNKNOWN, V_LAYER, V_TYPE, V_ARCH, V_NO_KEY, V_ROPE_DIM, V_BIAS_LATE, V_BOS,
    V_HEADS, V_SCALING, V_KEY_TYPE
};

static void write_variant(const char *path, int variant)
{
    const int D = 32, H = 64, L = 2, NH = 4, V = 40;
    al_gguf_writer w;
    CHECK_OK(al_gguf_writer_init(&w, 32));
    const char *arch = variant == V_ARCH ? "gpt2" : "llama";
    al_gguf_add_str(&w, "general.architecture", arch, strlen(arch));
    if (variant != V_NO_KEY)
        al_gguf_add_u32(&w, "llama.block_count", L);
    al_gguf_add_u32(&w, "llama.context_length", 64);
    al_gguf_add_u32(&w, "llama.embedding_length", D);
    al_gguf_add_u32(&w, "llama.feed_forward_length", H);
    if (variant == V_KEY_TYPE)
        al_gguf_add_str(&w, "llama.attention.head_count", "4", 1);
    else
        al_gguf_add_u32(&w, "llama.attention.head_count", variant == V_HEADS ? 5 : NH);
    al_gguf_add_u32(&w, "llama.attention.head_count_kv", 2);
    al_gguf_add_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    al_gguf_add_u32(&w, "llama.rope.dimension_count", variant == V_ROPE_DIM ? 4 : 8);
    if (variant == V_SCALING)
        al_gguf_add_str(&w, "llama.rope.scaling.type", "yarn", 4);
    if (variant == V_BOS)
        al_gguf_add_u32(&w, "tokenizer.ggml.bos_token_id", 40);
    typedef struct spec {
        const char *name;
        uint64_t d0, d1; /* d1 == 0: a vector */
    } spec;
    spec ts[64];
    int n = 0;
#define T2(NAME, C, R) ts[n++] = (spec){NAME, C, R}
    static char names[32][48];
    int k = 0;
    T2("token_embd.weight", D, V);
    T2("output_norm.weight", D, 0);
    for (int l = 0; l < L; l++) {
        const char *parts[] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                               "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                               "ffn_down.weight"};
        const uint64_t dims[][2] = {{D, 0}, {D, 32}, {D, 16}, {D, 16}, {32, D}, {D, 0}, {D, H}, {D, H}, {H, D}};
        for (int p = 0; p < 9; p++) {
            if (variant == V_MISSING && l == 1 && p == 7)
                continue;
            snprintf(names[k], sizeof names[k], "blk.%d.%s", l, parts[p]);
            uint64_t d0 = dims[p][0], d1 = dims[p][1];
            if (variant == V_SHAPE && l == 0 && p == 1)
                d1 = 48;
            T2(names[k], d0, d1);
            k++;
        }
    }
    if (variant == V_UNKNOWN)
        T2("blk.0.attn_rot_embd", 8, 0);
    if (variant == V_LAYER)
        T2("blk.2.attn_norm.weight", D, 0);
    if (variant == V_BIAS_LATE)
        T2("blk.1.attn_q.bias", 32, 0);
#undef T2
    size_t max_bytes = 0;
    for (int i = 0; i < n; i++) {
        uint64_t dims[2] = {ts[i].d0, ts[i].d1};
        /* IQ4_NL: a 32-element block type the reader knows and the loader does not convert */
        int type = variant == V_TYPE && !strcmp(ts[i].name, "blk.1.ffn_gate.weight") ? 20 : 0;
        CHECK_OK(al_gguf_add_tensor(&w, ts[i].name, ts[i].d1 ? 2 : 1, dims, type));
        size_t b = al_ggml_row_bytes(type, dims[0]) * (ts[i].d1 ? ts[i].d1 : 1);
        if (b > max_bytes)
            max_bytes = b;
    }
    float *data = calloc(max_bytes / 4 + 1, 4);
    for (size_t i = 0; i < max_bytes / 4; i++)
        data[i] = 0.01f * (float)(i % 17) - 0.05f;
    FILE *fp = fopen(path, "wb");
    CHECK_OK(al_gguf_write_header(&w, fp));
    for (int i = 0; i < n; i++) {
        int type = variant == V_TYPE && !strcmp(ts[i].name, "blk.1.ffn_gate.weight") ? 20 : 0;
        CHECK_OK(al_gguf_write_tensor(&w, fp, data, al_ggml_row_bytes(type, ts[i].d0) * (ts[i].d1 ? ts[i].d1 : 1)));
    }
    CHECK_OK(al_gguf_write_end(&w));
    fclose(fp);
    free(data);
    al_gguf_writer_free(&w);
}

static void expect_load_fail(const char *path, const char *what, const char *needle)
{
    al_model m;
    int rc = al_model_load(&m, path);
    CHECKF(rc == -1 && strstr(al_errmsg(), needle) && strstr(al_errmsg(), path), "%s: rc %d, message '%s'", what,
           rc, rc ? al_errmsg() : "(loaded)");
    if (rc == 0)
        al_model_free(&m);
}

static void test_refusals(void)
{
    const char *p = tmpf("variant.gguf");
    write_variant(p, V_OK);
    al_model m;
    CHECK_OK(al_model_load(&m, p));
    CHECK(m.cfg.dim == 32 && m.cfg.n_heads == 4 && m.cfg.n_kv_heads == 2 && m.cfg.head_dim == 8 &&
          m.cfg.vocab_size == 40 && m.cfg.norm_eps == 1e-6f && m.cfg.tied_embeddings &&
          m.cfg.bos_id == -1 && m.cfg.rope == AL_ROPE_INTERLEAVED);
    al_model_free(&m);
    struct {
        int v;
        const char *needle;
    } cases[] = {
        {V_SHAPE, "tensor 'blk.0.attn_q.weight': shape [32, 48], but the header implies [32, 32]"},
        {V_MISSING, "missing tensor 'blk.1.ffn_up.weight'"},
        {V_UNKNOWN, "tensor 'blk.0.attn_rot_embd': unexpected tensor name"},
        {V_LAYER, "tensor 'blk.2.attn_norm.weight': layer 2 is out of range"},
        {V_TYPE, "tensor 'blk.1.ffn_gate.weight': type IQ4_NL is not supported"},
        {V_ARCH, "general.architecture 'gpt2' is not supported"},
        {V_NO_KEY, "missing key 'llama.block_count'"},
        {V_ROPE_DIM, "partial rotary embeddings are not supported"},
        {V_BIAS_LATE, "tensor 'blk.1.attn_q.bias': a q/k/v bias, but blk.0 has none"},
        {V_BOS, "tokenizer.ggml.bos_token_id = 40 is outside the vocabulary of 40"},
        {V_HEADS, "embedding_length 32 is not a multiple of head_count 5"},
        {V_SCALING, "rotary scaling is not supported"},
        {V_KEY_TYPE, "llama.attention.head_count' has type string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "variant %d", cases[i].v);
        write_variant(p, cases[i].v);
        expect_load_fail(p, what, cases[i].needle);
    }

    /* truncated and corrupted copies of a real file (stories260K as Q8_0) */
    al_model s;
    CHECK_OK(al_model_load(&s, stories()));
    const char *good = tmpf("good.gguf");
    CHECK_OK(al_model_save_gguf(&s, NULL, good, AL_GGML_Q8_0));
    al_buf bytes = {0};
    CHECK_OK(al_read_file(good, &bytes));
    const char *cut = tmpf("cut.gguf");
    int opened = 0;
    for (size_t len = 0; len < bytes.len; len += len < 4096 ? 97 : bytes.len / 23) {
        FILE *f = fopen(cut, "wb");
        fwrite(bytes.data, 1, len, f);
        fclose(f);
        if (al_model_load(&m, cut) == 0) {
            opened++;
            al_model_free(&m);
        } else if (!strstr(al_errmsg(), cut)) {
            CHECKF(0, "truncated at %zu: message without the file name: %s", len, al_errmsg());
        }
    }
    CHECKF(opened == 0, "%d truncated copies loaded", opened);
    /* a tensor offset pointing past the end: flip bits in the last tensor info's offset */
    {
        al_gguf g;
        CHECK_OK(al_gguf_open(&g, good));
        size_t info_end = g.data_offset; /* the last info's offset field ends before the padding */
        const al_gguf_tensor *last = &g.tensors[g.n_tensors - 1];
        size_t at = (size_t)((const uint8_t *)last->name.s - g.map.data) + last->name.len + 4 +
                    8 * (size_t)last->n_dims + 4;
        CHECK(at + 8 <= info_end);
        al_gguf_close(&g);
        char *copy = malloc(bytes.len);
        memcpy(copy, bytes.data, bytes.len);
        uint64_t off = (uint64_t)bytes.len;
        off = (off + 31) / 32 * 32;
        memcpy(copy + at, &off, 8);
        FILE *f = fopen(cut, "wb");
        fwrite(copy, 1, bytes.len, f);
        fclose(f);
        expect_load_fail(cut, "offset past the end", "run past the end of the file");
        free(copy);
    }
    al_buf_free(&bytes);

    /* saving: refusals leave no file behind */
    const char *bad = tmpf("bad.gguf");
    CHECK(al_model_save_gguf(&s, NULL, bad, AL_GGML_Q4_1) == -1 && strstr(al_errmsg(), "not supported for writing") &&
          !al_file_exists(bad));
    float keep = s.w.w1[5];
    s.w.w1[5] = NAN;
    CHECK(al_model_save_gguf(&s, NULL, bad, AL_GGML_Q8_0) == -1 &&
          strstr(al_errmsg(), "tensor 'blk.0.ffn_gate.weight' as Q8_0") && strstr(al_errmsg(), "element 5") &&
          !al_file_exists(bad));
    s.w.w1[5] = 1e6f;
    CHECK(al_model_save_gguf(&s, NULL, bad, AL_GGML_F16) == -1 && strstr(al_errmsg(), "beyond F16's range") &&
          !al_file_exists(bad));
    s.w.w1[5] = keep;
    al_tokenizer *tiny_tok = NULL;
    CHECK_OK(al_tokenizer_load(&tiny_tok, shared_path("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf")));
    CHECK(al_model_save_gguf(&s, tiny_tok, bad, AL_GGML_F32) == -1 &&
          strstr(al_errmsg(), "the tokenizer has 32000 tokens, the model 512") && !al_file_exists(bad));
    al_tokenizer_free(tiny_tok);
    CHECK(al_model_save_gguf(&s, NULL, "/nonexistent-dir/x.gguf", AL_GGML_F32) == -1 &&
          strstr(al_errmsg(), "/nonexistent-dir/x.gguf"));
    al_model_free(&s);

    /* the generic writer's own checks */
    al_gguf_writer w;
    CHECK(al_gguf_writer_init(&w, 24) == -1 && strstr(al_errmsg(), "power of two"));
    CHECK_OK(al_gguf_writer_init(&w, 64));
    CHECK_OK(al_gguf_add_u32(&w, "a.b", 1));
    CHECK(al_gguf_add_f32(&w, "a.b", 1) == -1 && strstr(al_errmsg(), "'a.b' added twice"));
    CHECK(al_gguf_add_u32(&w, "general.alignment", 64) == -1);
    CHECK(al_gguf_add_array(&w, "s", AL_GGUF_STRING, NULL, 0) == -1);
    uint64_t dims[2] = {33, 2};
    CHECK(al_gguf_add_tensor(&w, "t", 2, dims, AL_GGML_Q8_0) == -1 && strstr(al_errmsg(), "not whole"));
    dims[0] = 64;
    CHECK_OK(al_gguf_add_tensor(&w, "t", 2, dims, AL_GGML_Q8_0));
    CHECK(al_gguf_add_tensor(&w, "t", 2, dims, AL_GGML_F32) == -1 && strstr(al_errmsg(), "'t' added twice"));
    int16_t arr[3] = {-1, 2, -3};
    al_gguf_str strs[2] = {{"x", 1}, {"yz", 2}};
    CHECK_OK(al_gguf_add_array(&w, "arr", AL_GGUF_I16, arr, 3));
    CHECK_OK(al_gguf_add_strs(&w, "strs", strs, 2));
    CHECK_OK(al_gguf_add_bool(&w, "flag", true));
    CHECK_OK(al_gguf_add_u64(&w, "big", 1ull << 40));
    CHECK_OK(al_gguf_add_i32(&w, "neg", -7));
    FILE *fp = fopen(tmpf("w.gguf"), "wb");
    CHECK_OK(al_gguf_write_header(&w, fp));
    uint8_t blk[136] = {0};
    CHECK(al_gguf_write_tensor(&w, fp, blk, 135) == -1 && strstr(al_errmsg(), "136 expected"));
    CHECK(al_gguf_write_end(&w) == -1);
    CHECK_OK(al_gguf_write_tensor(&w, fp, blk, 136));
    CHECK(al_gguf_write_tensor(&w, fp, blk, 136) == -1);
    CHECK_OK(al_gguf_write_end(&w));
    fclose(fp);
    al_gguf_writer_free(&w);
    /* ... and what it wrote reads back */
    al_gguf g;
    CHECK_OK(al_gguf_open(&g, tmpf("w.gguf")));
    uint32_t u;
    uint64_t u64;
    int32_t i32;
    bool flag;
    al_gguf_str *sv;
    size_t ns;
    CHECK(g.alignment == 64 && g.data_offset % 64 == 0 && g.n_tensors == 1 && g.n_kv == 7);
    CHECK(al_gguf_get_u32(&g, "a.b", &u) == 0 && u == 1 && al_gguf_get_u64(&g, "big", &u64) == 0 &&
          u64 == 1ull << 40 && al_gguf_get_i32(&g, "neg", &i32) == 0 && i32 == -7 &&
          al_gguf_get_bool(&g, "flag", &flag) == 0 && flag);
    CHECK(al_gguf_get_strs(&g, "strs", &sv, &ns) == 0 && ns == 2 && al_gguf_str_eq(sv[1], "yz"));
    free(sv);
    const al_gguf_kv *kv = al_gguf_find(&g, "arr");
    CHECK(kv && kv->type == AL_GGUF_ARRAY && kv->elem_type == AL_GGUF_I16 && kv->n == 3);
    const al_gguf_tensor *t = al_gguf_tensor_find(&g, "t");
    CHECK(t && t->type == AL_GGML_Q8_0 && t->dims[0] == 64 && t->dims[1] == 2 && t->bytes == 136);
    al_gguf_close(&g);
}

/* A byte-level BPE vocabulary (GPT-2) written as tokenizer.ggml.* reads back as the same
 * tokenizer: pieces, merges, special ids, and the same ids for text. */
static void test_gpt2_vocab(void)
{
    al_tokenizer *t = NULL, *r = NULL;
    CHECK_OK(al_tokenizer_load(&t, shared_path("models/gpt2-tokenizer/encoder.json")));
    if (!t)
        return;
    al_gguf_writer w;
    CHECK_OK(al_gguf_writer_init(&w, 32));
    CHECK_OK(al_gguf_add_str(&w, "general.architecture", "llama", 5));
    CHECK_OK(al_tokenizer_write_gguf_keys(t, &w));
    FILE *fp = fopen(tmpf("gpt2.gguf"), "wb");
    CHECK_OK(al_gguf_write_header(&w, fp));
    CHECK_OK(al_gguf_write_end(&w));
    fclose(fp);
    al_gguf_writer_free(&w);
    CHECK_OK(al_tokenizer_load(&r, tmpf("gpt2.gguf")));
    if (!r) {
        al_tokenizer_free(t);
        return;
    }
    CHECK(!strcmp(al_tokenizer_kind(r), "gguf-gpt2") && al_tokenizer_vocab_size(r) == al_tokenizer_vocab_size(t) &&
          al_tokenizer_n_merges(r) == al_tokenizer_n_merges(t) && al_tokenizer_eos(r) == al_tokenizer_eos(t));
    int bad = 0;
    for (int i = 0; i < al_tokenizer_vocab_size(t); i++) {
        const char *a, *b;
        size_t la, lb;
        al_tokenizer_piece(t, i, &a, &la);
        al_tokenizer_piece(r, i, &b, &lb);
        bad += la != lb || memcmp(a, b, la) || al_tokenizer_is_special(t, i) != al_tokenizer_is_special(r, i);
    }
    for (int k = 0; k < al_tokenizer_n_merges(t); k++) {
        int l1, r1, l2, r2;
        al_tokenizer_merge(t, k, &l1, &r1);
        al_tokenizer_merge(r, k, &l2, &r2);
        bad += l1 != l2 || r1 != r2;
    }
    CHECKF(bad == 0, "%d pieces or merges differ", bad);
    /* no "<|endoftext|>" in the text: GGUF vocabularies split control tokens out of text, as
     * llama.cpp does, where GPT-2's own files do not */
    const char *text = "Hello world!  It's 2024\n\tcaf\xc3\xa9 done, \xe4\xbd\xa0\xe5\xa5\xbd  \n\n x";
    al_ints a = {0}, b = {0};
    CHECK_OK(al_tokenizer_encode(t, text, strlen(text), false, false, &a));
    CHECK_OK(al_tokenizer_encode(r, text, strlen(text), false, false, &b));
    CHECK(a.n == b.n && a.n > 8 && !memcmp(a.v, b.v, (size_t)a.n * sizeof(int)));
    al_ints_free(&a);
    al_ints_free(&b);
    al_tokenizer_free(r);
    al_tokenizer_free(t);
}

/* Random byte changes in a small model file's header: each load succeeds or fails with a
 * message naming the file, and never reads outside the file (ASan). */
static void test_mutations(void)
{
    const char *p = tmpf("mut-src.gguf"), *q = tmpf("mut.gguf");
    write_variant(p, V_OK);
    al_buf good = {0};
    CHECK_OK(al_read_file(p, &good));
    al_gguf g;
    CHECK_OK(al_gguf_open(&g, p));
    size_t header = g.data_offset;
    al_gguf_close(&g);
    char *copy = malloc(good.len);
    int loaded = 0, unnamed = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(copy, good.data, good.len);
        int flips = 1 + (int)(urand() * 3);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(urand() * (float)header) % header;
            copy[at] = (char)(urand() < 0.5f ? copy[at] ^ (1 << (int)(urand() * 8)) : (int)(urand() * 256));
        }
        FILE *f = fopen(q, "wb");
        fwrite(copy, 1, good.len, f);
        fclose(f);
        al_model m;
        if (al_model_load(&m, q) == 0) {
            loaded++;
            al_model_free(&m);
        } else if (!strstr(al_errmsg(), q)) {
            if (unnamed++ < 3)
                fprintf(stderr, "mutation %d: message without the file name: %s\n", it, al_errmsg());
        }
    }
    CHECKF(unnamed == 0, "%d messages without the file name", unnamed);
    printf("header mutations: %d of 1500 still loaded (changed values in range)\n", loaded);
    free(copy);
    al_buf_free(&good);
}

/* ---- the CLI ---- */


static const char *out_of(const run_result *r) { return r->out.data ? r->out.data : ""; }
static const char *err_of(const run_result *r) { return r->err.data ? r->err.data : ""; }

static void test_cli(void)
{
    char args[4096], q8[1200], f32[1200];
    snprintf(q8, sizeof q8, "%s", tmpf("cli-q8_0.gguf"));
    snprintf(f32, sizeof f32, "%s", tmpf("cli-f32.gguf"));
    snprintf(args, sizeof args, "convert -m %s -o %s --type q8_0", stories(), q8);
    run_result r = run_align(args);
    CHECKF(r.code == 0 && strstr(out_of(&r), "Q8_0 matrices") && strstr(out_of(&r), "with the tokenizer"),
           "%s: exit %d\n%s%s", args, r.code, out_of(&r), err_of(&r));
    free_result(&r);
    snprintf(args, sizeof args, "generate -m %s -t 0 -n 48 -i 'Once upon a time'", q8);
    r = run_align(args);
    CHECKF(r.code == 0 && !strncmp(out_of(&r), "Once upon a time", 16) && r.out.len > 60, "%s: exit %d\n%s%s", args,
           r.code, out_of(&r), err_of(&r));
    free_result(&r);

    /* F32: the same text as the original model with its tokenizer, the vocabulary from the file */
    snprintf(args, sizeof args, "convert -m %s -o %s --format gguf --type f32", stories(), f32);
    r = run_align(args);
    CHECK(r.code == 0);
    free_result(&r);
    snprintf(args, sizeof args, "generate -m %s -t 0 -n 100 -i 'Lily and Tom'", f32);
    run_result a = run_align(args);
    snprintf(args, sizeof args, "generate -m %s -z %s -t 0 -n 100 -i 'Lily and Tom'", stories(),
             shared_path("models/stories260K/tok512.bin"));
    run_result b = run_align(args);
    CHECKF(a.code == 0 && b.code == 0 && a.out.len > 50 && a.out.len == b.out.len &&
               !memcmp(a.out.data, b.out.data, a.out.len),
           "gguf f32 vs original:\n%s\n---\n%s\n%s", out_of(&a), out_of(&b), err_of(&a));
    free_result(&a);
    free_result(&b);

    snprintf(args, sizeof args, "info -m %s", q8);
    r = run_align(args);
    CHECKF(r.code == 0 && strstr(out_of(&r), "rope interleaved") && strstr(out_of(&r), "parameters 260032"),
           "info: %s%s", out_of(&r), err_of(&r));
    free_result(&r);

    /* GGUF -> safetensors carries the file's vocabulary */
    snprintf(args, sizeof args, "convert -m %s -o %s", q8, tmpf("hf"));
    r = run_align(args);
    CHECKF(r.code == 0 && al_file_exists(tmpf("hf/model.safetensors")) && al_file_exists(tmpf("hf/tokenizer.bin")),
           "gguf -> hf: %s%s", out_of(&r), err_of(&r));
    free_result(&r);

    /* the default type for .gguf is F16 */
    snprintf(args, sizeof args, "convert -m %s -o %s", stories(), tmpf("default.gguf"));
    r = run_align(args);
    CHECK(r.code == 0 && strstr(out_of(&r), "F16 matrices"));
    free_result(&r);

    snprintf(args, sizeof args, "convert -m %s -o %s --type q3_k", stories(), tmpf("x.gguf"));
    r = run_align(args);
    CHECK(r.code == 2 && strstr(err_of(&r), "--type must be"));
    free_result(&r);
    snprintf(args, sizeof args, "convert -m %s -o %s --type q8_0", stories(), tmpf("dir"));
    r = run_align(args);
    CHECK(r.code == 2 && strstr(err_of(&r), "float32 only"));
    free_result(&r);
    r = run_align("convert --help");
    CHECK(r.code == 0 && strstr(out_of(&r), "--type") && strstr(out_of(&r), ".gguf"));
    free_result(&r);

    /* a damaged file: a clear message, exit 1, no sanitizer report */
    al_buf bytes = {0};
    CHECK_OK(al_read_file(q8, &bytes));
    FILE *f = fopen(tmpf("cut.gguf"), "wb");
    fwrite(bytes.data, 1, bytes.len / 2, f);
    fclose(f);
    al_buf_free(&bytes);
    snprintf(args, sizeof args, "generate -m %s -z %s -n 4", tmpf("cut.gguf"), shared_path("models/stories260K/tok512.bin"));
    r = run_align(args);
    CHECKF(r.code == 1 && strstr(err_of(&r), "cut.gguf") && strstr(err_of(&r), "past the end") &&
               !strstr(err_of(&r), "Sanitizer") && !strstr(err_of(&r), "runtime error"),
           "damaged: exit %d: %s", r.code, err_of(&r));
    free_result(&r);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("gguf-model"));
    test_half_conversions();
    test_quant_kernels();
    test_tiny_random();
    test_round_trips();
    test_refusals();
    test_gpt2_vocab();
    test_mutations();
    test_cli();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (test_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return test_report();
}
