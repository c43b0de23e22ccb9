/* Finite-difference checks of every operation's backward pass, and of the whole model
 * in the configurations the references do not cover (q/k/v biases, untied embeddings,
 * HF rotary layout, grouped-query attention, packed segments).
 *
 * Each check takes loss = sum(r * out) for a fixed random r, perturbs one input
 * coordinate by +-h and compares (L+ - L-)/2h with the analytic gradient. */
#include "../src/model/ops.h"
#include "../src/model/ops_gpt2.h"
#include "align/model.h"
#include "test.h"

static uint64_t rng_state = 0x1234567ull;

static float frand(void) { return al_xorshift_f32(&rng_state) * 2.0f - 1.0f; }

static float *rand_vec(size_t n, float scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

typedef double (*loss_fn)(void *state);

static double weighted_sum(const float *out, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)out[i] * r[i];
    return s;
}

/* Compares grad[i] with the central difference of fn at up to `samples` coordinates of x. */
static void fd_check(const char *what, loss_fn fn, void *state, float *x, const float *grad, size_t n,
                     int samples, float h, float tol)
{
    double worst = 0;
    size_t worst_i = 0;
    for (int k = 0; k < samples; k++) {
        size_t i = n <= (size_t)samples ? (size_t)k : (size_t)(al_xorshift_u32(&rng_state) % n);
        if (i >= n)
            break;
        float keep = x[i];
        x[i] = keep + h;
        double lp = fn(state);
        x[i] = keep - h;
        double lm = fn(state);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double err = fabs(num - grad[i]) / fmax(1e-2, fabs(num) + fabs(grad[i]));
        if (err > worst) {
            worst = err;
            worst_i = i;
        }
    }
    CHECKF(worst < tol, "%s: worst relative error %.3g at %zu (analytic %g)", what, worst, worst_i,
           (double)grad[worst_i]);
}

/* ---- rmsnorm ---- */
typedef struct {
    int N, D;
    float *x, *w, *r, *out, *rstd;
} rms_state;

static double rms_loss(void *p)
{
    rms_state *s = p;
    op_rmsnorm_forward(s->out, s->rstd, s->x, s->w, s->N, s->D, 1e-5f);
    return weighted_sum(s->out, s->r, (size_t)s->N * s->D);
}

static void test_rmsnorm(void)
{
    rms_state s = {.N = 5, .D = 24};
    size_t nd = (size_t)s.N * s.D;
    s.x = rand_vec(nd, 1), s.w = rand_vec((size_t)s.D, 1), s.r = rand_vec(nd, 1);
    s.out = zeros(nd), s.rstd = zeros((size_t)s.N);
    float *dx = zeros(nd), *dw = zeros((size_t)s.D);
    rms_loss(&s);
    op_rmsnorm_backward(dx, dw, s.r, s.x, s.w, s.rstd, s.N, s.D);
    fd_check("rmsnorm dx", rms_loss, &s, s.x, dx, nd, 60, 1e-2f, 2e-2f);
    fd_check("rmsnorm dw", rms_loss, &s, s.w, dw, (size_t)s.D, 24, 1e-2f, 2e-2f);
    free(s.x), free(s.w), free(s.r), free(s.out), free(s.rstd), free(dx), free(dw);
}

/* ---- GPT-2's operations ---- */
typedef struct {
    int N, D;
    float *x, *w, *b, *r, *out, *mean, *rstd;
} ln_state;

static double ln_loss(void *p)
{
    ln_state *s = p;
    op_layernorm_forward(s->out, s->mean, s->rstd, s->x, s->w, s->b, s->N, s->D, 1e-5f);
    return weighted_sum(s->out, s->r, (size_t)s->N * s->D);
}

static void test_layernorm(void)
{
    ln_state s = {.N = 5, .D = 24};
    size_t nd = (size_t)s.N * s.D;
    s.x = rand_vec(nd, 1), s.w = rand_vec((size_t)s.D, 1), s.b = rand_vec((size_t)s.D, 1), s.r = rand_vec(nd, 1);
    s.out = zeros(nd), s.mean = zeros((size_t)s.N), s.rstd = zeros((size_t)s.N);
    float *dx = zeros(nd), *dw = zeros((size_t)s.D), *db = zeros((size_t)s.D);
    ln_loss(&s);
    /* the normalized row, (out - b) / w, has mean 0 and variance 1 */
    double m0 = 0, v0 = 0;
    for (int i = 0; i < s.D; i++) {
        const double xh = (s.out[i] - s.b[i]) / s.w[i];
        m0 += xh / s.D, v0 += xh * xh / s.D;
    }
    CHECKF(fabs(m0) < 1e-4 && fabs(v0 - 1) < 1e-3, "layernorm: normalized row 0 has mean %g, variance %g", m0, v0);
    op_layernorm_backward(dx, dw, db, s.r, s.x, s.mean, s.rstd, s.w, s.N, s.D);
    fd_check("layernorm dx", ln_loss, &s, s.x, dx, nd, 60, 1e-2f, 2e-2f);
    fd_check("layernorm dw", ln_loss, &s, s.w, dw, (size_t)s.D, 24, 1e-2f, 2e-2f);
    fd_check("layernorm db", ln_loss, &s, s.b, db, (size_t)s.D, 24, 1e-2f, 2e-2f);
    free(s.x), free(s.w), free(s.b), free(s.r), free(s.out), free(s.mean), free(s.rstd), free(dx), free(dw), free(db);
}

typedef struct {
    size_t n;
    float *x, *r, *out;
} gelu_state;

static double gelu_loss(void *p)
{
    gelu_state *s = p;
    op_gelu_forward(s->out, s->x, s->n);
    return weighted_sum(s->out, s->r, s->n);
}

static void test_gelu(void)
{
    gelu_state s = {.n = 200};
    s.x = rand_vec(s.n, 4), s.r = rand_vec(s.n, 1), s.out = zeros(s.n);
    float *dx = zeros(s.n);
    gelu_loss(&s);
    /* torch.nn.functional.gelu(x, approximate="tanh") at a few points */
    const float xs[] = {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f};
    const float want[] = {-0.0036374331f, -0.15880799f, -0.15428600f, 0.0f, 0.34571400f, 0.84119201f, 2.9963627f};
    float got[7];
    op_gelu_forward(got, xs, 7);
    float worst = 0;
    for (int i = 0; i < 7; i++)
        worst = fmaxf(worst, fabsf(got[i] - want[i]));
    CHECKF(worst < 1e-6f, "gelu: %g from torch's values", (double)worst);
    op_gelu_backward(dx, s.r, s.x, s.n);
    fd_check("gelu dx", gelu_loss, &s, s.x, dx, s.n, 80, 1e-3f, 1e-2f);
    free(s.x), free(s.r), free(s.out), free(dx);
}

typedef struct {
    int N, T, D;
    const int *pos;
    float *x0, *x, *wpe, *r;
} pos_state;

static double pos_loss(void *p)
{
    pos_state *s = p;
    memcpy(s->x, s->x0, sizeof(float) * (size_t)s->N * s->D);
    op_position_forward(s->x, s->wpe, s->pos, s->N, s->T, s->D);
    return weighted_sum(s->x, s->r, (size_t)s->N * s->D);
}

static void test_position_and_bias(void)
{
    const int pos[6] = {0, 1, 2, 0, 1, 1}; /* two packed samples, one position twice */
    for (int k = 0; k < 2; k++) {
        pos_state s = {.N = 6, .T = 3, .D = 8, .pos = k ? pos : NULL};
        size_t nd = (size_t)s.N * s.D;
        s.x0 = rand_vec(nd, 1), s.x = zeros(nd), s.wpe = rand_vec((size_t)s.T * s.D, 1), s.r = rand_vec(nd, 1);
        float *g = zeros((size_t)s.T * s.D);
        op_position_backward(g, s.r, s.pos, s.N, s.T, s.D);
        fd_check(k ? "position dwpe (given positions)" : "position dwpe", pos_loss, &s, s.wpe, g,
                 (size_t)s.T * s.D, 24, 1e-2f, 1e-3f);
        free(s.x0), free(s.x), free(s.wpe), free(s.r), free(g);
    }
    /* a bias's gradient is the column sum of dout; the matmul test covers the forward */
    float dout[6] = {1, 2, 3, 4, 5, 6}, db[3] = {0.5f, 0, 0};
    op_bias_backward(db, dout, 2, 3);
    CHECK(db[0] == 5.5f && db[1] == 7 && db[2] == 9);
}

/* ---- matmul ---- */
typedef struct {
    int N, I, O;
    float *x, *W, *b, *r, *out;
} mm_state;

static double mm_loss(void *p)
{
    mm_state *s = p;
    op_matmul_forward(s->out, s->x, s->W, s->b, s->N, s->I, s->O);
    return weighted_sum(s->out, s->r, (size_t)s->N * s->O);
}

static void test_matmul(int N)
{
    mm_state s = {.N = N, .I = 20, .O = 12};
    s.x = rand_vec((size_t)N * s.I, 1), s.W = rand_vec((size_t)s.O * s.I, 1), s.b = rand_vec((size_t)s.O, 1);
    s.r = rand_vec((size_t)N * s.O, 1), s.out = zeros((size_t)N * s.O);
    float *dx = zeros((size_t)N * s.I), *dW = zeros((size_t)s.O * s.I), *db = zeros((size_t)s.O);
    op_matmul_backward(dx, dW, db, s.r, s.x, s.W, N, s.I, s.O, 0);
    fd_check("matmul dx", mm_loss, &s, s.x, dx, (size_t)N * s.I, 60, 1e-2f, 1e-2f);
    fd_check("matmul dW", mm_loss, &s, s.W, dW, (size_t)s.O * s.I, 60, 1e-2f, 1e-2f);
    fd_check("matmul dbias", mm_loss, &s, s.b, db, (size_t)s.O, 12, 1e-2f, 1e-2f);
    free(s.x), free(s.W), free(s.b), free(s.r), free(s.out), free(dx), free(dW), free(db);
}

/* ---- rope ---- */
typedef struct {
    int N, H, hd;
    al_rope_layout layout;
    float *x, *y, *r, *cs, *sn;
    int *pos;
} rope_state;

static double rope_loss(void *p)
{
    rope_state *s = p;
    size_t n = (size_t)s->N * s->H * s->hd;
    memcpy(s->y, s->x, n * sizeof(float));
    op_rope_forward(s->y, s->pos, s->N, s->H, s->hd, s->cs, s->sn, s->layout);
    return weighted_sum(s->y, s->r, n);
}

static void test_rope(al_rope_layout layout)
{
    rope_state s = {.N = 6, .H = 3, .hd = 8, .layout = layout};
    size_t n = (size_t)s.N * s.H * s.hd;
    s.x = rand_vec(n, 1), s.y = zeros(n), s.r = rand_vec(n, 1);
    s.cs = zeros(64 * 4), s.sn = zeros(64 * 4);
    op_rope_tables(s.cs, s.sn, 64, s.hd, 10000.0f);
    int pos[6] = {0, 3, 7, 1, 63, 20};
    s.pos = pos;
    float *dx = malloc(n * sizeof(float));
    memcpy(dx, s.r, n * sizeof(float));
    op_rope_backward(dx, s.pos, s.N, s.H, s.hd, s.cs, s.sn, layout);
    fd_check(layout == AL_ROPE_HALF ? "rope(half) dx" : "rope(interleaved) dx", rope_loss, &s, s.x, dx, n, 80,
             1e-2f, 1e-2f);
    free(s.x), free(s.y), free(s.r), free(s.cs), free(s.sn), free(dx);
}

/* ---- attention ---- */
typedef struct {
    int B, T, H, KVH, hd;
    float *q, *k, *v, *out, *att, *r, *scratch;
    const int *seg;
} att_state;

static double att_loss(void *p)
{
    att_state *s = p;
    op_attention_forward(s->out, s->att, s->q, s->k, s->v, s->seg, s->B, s->T, s->H, s->KVH, s->hd, s->scratch, 2);
    return weighted_sum(s->out, s->r, (size_t)s->B * s->T * s->H * s->hd);
}

static void test_attention(int H, int KVH, bool packed, int hd)
{
    att_state s = {.B = 2, .T = 7, .H = H, .KVH = KVH, .hd = hd};
    size_t nq = (size_t)s.B * s.T * H * s.hd, nkv = (size_t)s.B * s.T * KVH * s.hd;
    s.q = rand_vec(nq, 1), s.k = rand_vec(nkv, 1), s.v = rand_vec(nkv, 1), s.r = rand_vec(nq, 1);
    s.out = zeros(nq), s.att = zeros((size_t)s.B * H * s.T * s.T);
    s.scratch = zeros(op_attention_scratch_floats(s.T, s.hd, 2));
    int seg[14] = {0, 0, 0, 3, 3, 3, 3, 0, 0, 2, 2, 2, 5, 5};
    s.seg = packed ? seg : NULL;
    float *dq = zeros(nq), *dk = zeros(nkv), *dv = zeros(nkv);
    att_loss(&s);
    op_attention_backward(dq, dk, dv, s.r, s.att, s.q, s.k, s.v, s.seg, s.B, s.T, H, KVH, s.hd, s.scratch, 2);
    char name[64];
    snprintf(name, sizeof name, "attention H%d KV%d hd%d%s", H, KVH, hd, packed ? " packed" : "");
    fd_check(name, att_loss, &s, s.q, dq, nq, 80, 1e-2f, 2e-2f);
    fd_check(name, att_loss, &s, s.k, dk, nkv, 80, 1e-2f, 2e-2f);
    fd_check(name, att_loss, &s, s.v, dv, nkv, 80, 1e-2f, 2e-2f);
    if (packed) {
        /* a query must put zero weight outside its own segment */
        float leak = 0;
        for (int b = 0; b < s.B; b++)
            for (int h = 0; h < H; h++)
                for (int t = 0; t < s.T; t++)
                    for (int u = 0; u < seg[b * s.T + t]; u++)
                        leak += s.att[(((size_t)b * H + h) * s.T + t) * s.T + u];
        CHECK(leak == 0);
    }
    free(s.q), free(s.k), free(s.v), free(s.r), free(s.out), free(s.att), free(s.scratch), free(dq), free(dk), free(dv);
}

/* ---- swiglu ---- */
typedef struct {
    size_t n;
    float *h1, *h3, *out, *r;
} glu_state;

static double glu_loss(void *p)
{
    glu_state *s = p;
    op_swiglu_forward(s->out, s->h1, s->h3, s->n);
    return weighted_sum(s->out, s->r, s->n);
}

static void test_swiglu(void)
{
    glu_state s = {.n = 50};
    s.h1 = rand_vec(s.n, 3), s.h3 = rand_vec(s.n, 2), s.out = zeros(s.n), s.r = rand_vec(s.n, 1);
    float *d1 = zeros(s.n), *d3 = zeros(s.n);
    op_swiglu_backward(d1, d3, s.r, s.h1, s.h3, s.n);
    fd_check("swiglu dh1", glu_loss, &s, s.h1, d1, s.n, 50, 1e-3f, 1e-2f);
    fd_check("swiglu dh3", glu_loss, &s, s.h3, d3, s.n, 50, 1e-3f, 1e-2f);
    free(s.h1), free(s.h3), free(s.out), free(s.r), free(d1), free(d3);
}

/* ---- log-probabilities ---- */
typedef struct {
    int N, V;
    float *logits, *logp, *lse, *r;
    int *targets;
} lp_state;

static double lp_loss(void *p)
{
    lp_state *s = p;
    op_logprob_forward(s->logp, s->lse, s->logits, s->targets, s->N, s->V);
    return weighted_sum(s->logp, s->r, (size_t)s->N);
}

static void test_logprob(void)
{
    lp_state s = {.N = 4, .V = 11};
    int targets[4] = {3, -1, 10, 0};
    s.targets = targets;
    s.logits = rand_vec((size_t)s.N * s.V, 4), s.logp = zeros(4), s.lse = zeros(4), s.r = rand_vec(4, 1);
    lp_loss(&s);
    CHECK(s.logp[1] == 0.0f);
    float *d = zeros((size_t)s.N * s.V);
    op_logprob_backward(d, s.logits, s.lse, s.targets, s.r, s.N, s.V);
    fd_check("logprob dlogits", lp_loss, &s, s.logits, d, (size_t)s.N * s.V, 44, 1e-2f, 1e-2f);
    free(s.logits), free(s.logp), free(s.lse), free(s.r), free(d);
}

/* ---- embedding ---- */
static void test_embedding(void)
{
    int tokens[5] = {2, 0, 2, 4, 1};
    float *table = rand_vec(5 * 3, 1), *out = zeros(15), *g = rand_vec(15, 1), *dt = zeros(15);
    op_embedding_forward(out, tokens, table, 5, 3);
    CHECK(out[0] == table[6] && out[14] == table[5]);
    op_embedding_backward(dt, g, tokens, 5, 3);
    CHECK(fabsf(dt[6] - (g[0] + g[6])) < 1e-6f && dt[9] == 0.0f && fabsf(dt[12] - g[9]) < 1e-6f);
    free(table), free(out), free(g), free(dt);
}

/* ---- the whole model ---- */
typedef struct {
    al_model *m;
    al_train_ctx *ctx;
    int *tok, *tgt, *pos, *seg;
    float *w; /* per-position loss weights */
    int N;
} model_state;

static double model_loss(void *p)
{
    model_state *s = p;
    if (al_forward(s->ctx, s->tok, s->tgt, s->pos, s->seg))
        return NAN;
    double l = 0;
    for (int i = 0; i < s->N; i++)
        l += (double)s->w[i] * al_ctx_logp(s->ctx)[i];
    return l;
}

static void test_model(bool bias, bool tied, al_rope_layout rope, bool packed, int head_dim)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = head_dim,
                   .vocab_size = 19, .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = rope,
                   .tied_embeddings = tied, .qkv_bias = bias, .bos_id = 1, .eos_id = 2};
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] = frand() * 0.5f;
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.dim; i++)
            m.w.rms_att[l * c.dim + i] += 1.0f, m.w.rms_ffn[l * c.dim + i] += 1.0f;
    const int B = 2, T = 6, N = B * T;
    int tok[12], tgt[12], pos[12], seg[12];
    float w[12];
    for (int i = 0; i < N; i++) {
        tok[i] = (int)(al_xorshift_u32(&rng_state) % 19);
        tgt[i] = i % 5 == 4 ? -1 : (int)(al_xorshift_u32(&rng_state) % 19);
        int t = i % T, s0 = packed && t >= 3 ? 3 : 0;
        seg[i] = s0;
        pos[i] = t - s0;
        w[i] = frand();
    }
    model_state s = {&m, al_train_ctx_new(&m, B, T), tok, tgt, packed ? pos : NULL, packed ? seg : NULL, w, N};
    model_loss(&s);
    al_model_zero_grads(&m);
    al_backward(s.ctx, &m, w);
    char name[96];
    snprintf(name, sizeof name, "model bias=%d tied=%d rope=%s packed=%d hd=%d", bias, tied,
             rope == AL_ROPE_HALF ? "half" : "interleaved", packed, head_dim);
    fd_check(name, model_loss, &s, m.params, m.grads, m.n_params, 300, 5e-3f, 3e-2f);
    al_train_ctx_free(s.ctx);
    al_model_free(&m);
}

/* The GPT-2 layout: every tensor kind is sampled on its own (learned positions, LayerNorm
 * weights and biases, every projection's bias, the MLP), tied and untied, with packed
 * segments whose positions restart. */
static void test_model_gpt2(bool tied, bool packed)
{
    al_config c = {.arch = AL_ARCH_GPT2, .dim = 16, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                   .head_dim = 4, .vocab_size = 19, .seq_len = 8, .norm_eps = 1e-5f, .tied_embeddings = tied,
                   .qkv_bias = true, .bos_id = 1, .eos_id = 2};
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    CHECK(m.w.w3 == NULL && m.w.pos_emb && m.w.bln_final && m.w.b2);
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] = frand() * 0.5f;
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.dim; i++)
            m.w.rms_att[l * c.dim + i] += 1.0f, m.w.rms_ffn[l * c.dim + i] += 1.0f;
    for (int i = 0; i < c.dim; i++)
        m.w.rms_final[i] += 1.0f;
    const int B = 2, T = 6, N = B * T;
    int tok[12], tgt[12], pos[12], seg[12];
    float w[12];
    for (int i = 0; i < N; i++) {
        tok[i] = (int)(al_xorshift_u32(&rng_state) % 19);
        tgt[i] = i % 5 == 4 ? -1 : (int)(al_xorshift_u32(&rng_state) % 19);
        int t = i % T, s0 = packed && t >= 3 ? 3 : 0;
        seg[i] = s0;
        pos[i] = t - s0;
        w[i] = frand();
    }
    model_state s = {&m, al_train_ctx_new(&m, B, T), tok, tgt, packed ? pos : NULL, packed ? seg : NULL, w, N};
    model_loss(&s);
    al_model_zero_grads(&m);
    al_backward(s.ctx, &m, w);
    al_tensor_desc d[64];
    int nt = al_tensor_layout(&c, d, 64);
    CHECK(nt <= 64 && (size_t)d[nt - 1].offset + (size_t)d[nt - 1].rows * (d[nt - 1].cols ? d[nt - 1].cols : 1) ==
                          m.n_params);
    for (int i = 0; i < nt; i++) {
        char name[96];
        snprintf(name, sizeof name, "gpt2 tied=%d packed=%d: %s layer %d", tied, packed, d[i].kind, d[i].layer);
        size_t n = (size_t)d[i].rows * (d[i].cols ? d[i].cols : 1);
        fd_check(name, model_loss, &s, m.params + d[i].offset, m.grads + d[i].offset, n, 24, 5e-3f, 3e-2f);
    }
    al_train_ctx_free(s.ctx);
    al_model_free(&m);
}

/* The trunk alone (reward models): loss = sum of w * final hidden states, backward from w. */
static double hidden_loss(void *p)
{
    model_state *s = p;
    if (al_forward_hidden(s->ctx, s->tok, s->pos, s->seg))
        return NAN;
    return weighted_sum(al_ctx_hidden(s->ctx), s->w, (size_t)s->N * s->m->cfg.dim);
}

static void test_model_hidden(void)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                   .vocab_size = 19, .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = AL_ROPE_HALF,
                   .tied_embeddings = true, .bos_id = 1, .eos_id = 2, .n_labels = 1};
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    CHECK(m.w.score == m.params + m.n_params - c.dim); /* the head comes last */
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] = frand() * 0.5f;
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.dim; i++)
            m.w.rms_att[l * c.dim + i] += 1.0f, m.w.rms_ffn[l * c.dim + i] += 1.0f;
    const int B = 2, T = 6, N = B * T;
    int tok[12];
    for (int i = 0; i < N; i++)
        tok[i] = (int)(al_xorshift_u32(&rng_state) % 19);
    float *w = rand_vec((size_t)N * c.dim, 1.0f);
    model_state s = {&m, al_train_ctx_new(&m, B, T), tok, NULL, NULL, NULL, w, N};
    hidden_loss(&s);
    al_model_zero_grads(&m);
    al_backward_hidden(s.ctx, &m, w);
    /* the head's gradient is the caller's: the trunk leaves it untouched */
    double head = 0;
    for (int i = 0; i < c.dim; i++)
        head += fabs(m.g.score[i]);
    CHECK(head == 0);
    fd_check("model trunk (hidden states)", hidden_loss, &s, m.params, m.grads, m.n_params - c.dim, 300, 5e-3f,
             3e-2f);
    al_train_ctx_free(s.ctx);
    al_model_free(&m);
    free(w);
}

/* Packing must not change the loss: two samples side by side in one row with restarted
 * positions and a segment mask give the same log-probs as each sample in its own row. */
static void test_packing_equivalence(void)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                   .vocab_size = 19, .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                   .rope = AL_ROPE_INTERLEAVED, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] = frand() * 0.5f;
    int a[4] = {1, 5, 7, 9}, b[5] = {1, 3, 3, 8, 2};
    int ta[4] = {5, 7, 9, 11}, tb[5] = {3, 3, 8, 2, 4};
    int tok[9], tgt[9], pos[9], seg[9];
    for (int i = 0; i < 9; i++) {
        bool first = i < 4;
        tok[i] = first ? a[i] : b[i - 4];
        tgt[i] = first ? ta[i] : tb[i - 4];
        pos[i] = first ? i : i - 4;
        seg[i] = first ? 0 : 4;
    }
    al_train_ctx *packed = al_train_ctx_new(&m, 1, 9), *one = al_train_ctx_new(&m, 1, 4),
                 *two = al_train_ctx_new(&m, 1, 5);
    CHECK_OK(al_forward(packed, tok, tgt, pos, seg));
    CHECK_OK(al_forward(one, a, ta, NULL, NULL));
    CHECK_OK(al_forward(two, b, tb, NULL, NULL));
    float worst = 0;
    for (int i = 0; i < 9; i++) {
        float ref = i < 4 ? al_ctx_logp(one)[i] : al_ctx_logp(two)[i - 4];
        worst = fmaxf(worst, fabsf(ref - al_ctx_logp(packed)[i]));
    }
    CHECKF(worst < 1e-6f, "packed vs separate log-prob diff %g", (double)worst);
    al_train_ctx_free(packed), al_train_ctx_free(one), al_train_ctx_free(two);
    al_model_free(&m);
}

int main(void)
{
    test_rmsnorm();
    test_layernorm();
    test_gelu();
    test_position_and_bias();
    test_matmul(3);
    test_matmul(9);
    test_rope(AL_ROPE_INTERLEAVED);
    test_rope(AL_ROPE_HALF);
    test_attention(4, 4, false, 4);
    test_attention(4, 2, false, 4);
    test_attention(4, 1, true, 4);
    /* head_dim >= 32 takes the sgemm path */
    test_attention(4, 4, false, 32);
    test_attention(4, 2, false, 32);
    test_attention(4, 1, true, 32);
    test_swiglu();
    test_logprob();
    test_embedding();
    test_model(false, true, AL_ROPE_INTERLEAVED, false, 4);
    test_model(true, false, AL_ROPE_HALF, false, 4);
    test_model(true, true, AL_ROPE_HALF, true, 4);
    test_model(true, true, AL_ROPE_HALF, true, 32);
    test_model_gpt2(true, false);
    test_model_gpt2(false, true);
    test_model_hidden();
    test_packing_equivalence();
    return test_report();
}
