/* LoRA adapters: finite-difference check of the adapter gradients (every target, with
 * and without dropout), a frozen base, bit-identical base model when disabled, merge
 * equal to base + adapters, PEFT-named save/load round trip, deterministic dropout,
 * AdamW on the adapter block, and the `align lora merge` CLI on stories260K. */
#include <jansson.h>
#include <sys/wait.h>

#include "align/model.h"
#include "align/train.h"
#include "test.h"

static uint64_t rng_state = 0x7e57107aull;

static float frand(void) { return al_xorshift_f32(&rng_state) * 2.0f - 1.0f; }

static al_config tiny_cfg(al_rope_layout rope, bool bias, bool tied)
{
    return (al_config){.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                       .vocab_size = 19, .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = rope,
                       .tied_embeddings = tied, .qkv_bias = bias, .bos_id = 1, .eos_id = 2};
}

static void random_model(al_model *m, const al_config *c)
{
    CHECK_OK(al_model_init(m, c));
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = frand() * 0.5f;
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < c->dim; i++)
            m->w.rms_att[l * c->dim + i] += 1.0f, m->w.rms_ffn[l * c->dim + i] += 1.0f;
}

/* Adapters with every parameter random (B non-zero, so A's gradient is not trivially 0). */
static void random_adapters(al_model *m, int rank, float alpha, float dropout, unsigned targets)
{
    al_lora_config lc = {.rank = rank, .alpha = alpha, .dropout = dropout, .targets = targets, .seed = 42};
    CHECK_OK(al_lora_attach(m, &lc));
    for (size_t i = 0; i < m->lora->n_params; i++)
        m->lora->params[i] = frand() * 0.5f;
}

#define B_ 2
#define T_ 6
#define N_ (B_ * T_)

typedef struct batch {
    int tok[N_], tgt[N_];
    float w[N_];
} batch;

static void random_batch(batch *b, int vocab)
{
    for (int i = 0; i < N_; i++) {
        b->tok[i] = (int)(al_xorshift_u32(&rng_state) % (unsigned)vocab);
        b->tgt[i] = i % 5 == 4 ? -1 : (int)(al_xorshift_u32(&rng_state) % (unsigned)vocab);
        b->w[i] = frand();
    }
}

typedef struct fd_state {
    al_model *m;
    al_train_ctx *ctx;
    batch *b;
} fd_state;

static double loss(fd_state *s)
{
    if (s->m->lora)
        s->m->lora->dropout_step = 0; /* the same dropout masks in every evaluation */
    if (al_forward(s->ctx, s->b->tok, s->b->tgt, NULL, NULL))
        return NAN;
    double l = 0;
    for (int i = 0; i < N_; i++)
        l += (double)s->b->w[i] * al_ctx_logp(s->ctx)[i];
    return l;
}

/* Central differences over every coordinate of x[n]; returns the worst relative error. */
static double fd_worst(fd_state *s, float *x, const float *grad, size_t n, float h)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = loss(s);
        x[i] = keep - h;
        double lm = loss(s);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double err = fabs(num - grad[i]) / fmax(1e-2, fabs(num) + fabs(grad[i]));
        worst = fmax(worst, err);
    }
    return worst;
}

static bool all_zero(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0.0f)
            return false;
    return true;
}

/* Gradients of A and B of every target against finite differences; the base stays frozen. */
static void test_gradients(al_rope_layout rope, bool bias, bool tied, float dropout, bool base_grads)
{
    al_config c = tiny_cfg(rope, bias, tied);
    al_model m;
    random_model(&m, &c);
    if (base_grads) {
        CHECK_OK(al_model_alloc_grads(&m));
        al_model_zero_grads(&m);
    }
    random_adapters(&m, 2, 4.0f, dropout, AL_LORA_ALL);
    batch b;
    random_batch(&b, c.vocab_size);
    fd_state s = {&m, al_train_ctx_new(&m, B_, T_), &b};
    CHECK(s.ctx != NULL);
    if (!s.ctx)
        return;
    loss(&s);
    al_lora_zero_grads(&m);
    al_backward(s.ctx, &m, b.w);
    CHECK(!all_zero(m.lora->grads, m.lora->n_params));
    if (base_grads)
        CHECKF(all_zero(m.grads, m.n_params), "base gradients must stay zero with LoRA attached");
    for (int l = 0; l < c.n_layers; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            al_lora_adapter *ad = &m.lora->ad[l * AL_LORA_N_TARGETS + t];
            double ea = fd_worst(&s, ad->A, ad->gA, (size_t)2 * ad->in, 5e-3f);
            double eb = fd_worst(&s, ad->B, ad->gB, (size_t)ad->out * 2, 5e-3f);
            if (getenv("FD_VERBOSE"))
                fprintf(stderr, "layer %d %s: A %.3g B %.3g\n", l, al_lora_target_name(t), ea, eb);
            CHECKF(ea < 3e-2 && eb < 3e-2,
                   "rope=%d bias=%d tied=%d dropout=%g layer %d %s: worst relative error A %.3g B %.3g", rope, bias,
                   tied, (double)dropout, l, al_lora_target_name(t), ea, eb);
        }
    al_train_ctx_free(s.ctx);
    al_lora_detach(&m);
    al_model_free(&m);
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static float *logits_of(al_model *m, const batch *b)
{
    al_train_ctx *ctx = al_train_ctx_new(m, B_, T_);
    size_t n = (size_t)N_ * m->cfg.vocab_size;
    float *out = malloc(n * sizeof *out);
    if (!ctx || al_forward(ctx, b->tok, b->tgt, NULL, NULL)) {
        fprintf(stderr, "forward failed: %s\n", al_errmsg());
        exit(1);
    }
    memcpy(out, al_ctx_logits(ctx), n * sizeof *out);
    al_train_ctx_free(ctx);
    return out;
}

/* Disabled adapters compute the base model bit for bit; base + adapters == merged (1e-5). */
static void test_disabled_and_merge(al_rope_layout rope)
{
    al_config c = tiny_cfg(rope, true, false);
    al_model m;
    random_model(&m, &c);
    batch b;
    random_batch(&b, c.vocab_size);
    size_t n = (size_t)N_ * c.vocab_size;
    float *base = logits_of(&m, &b);
    CHECK_OK(al_model_alloc_grads(&m));

    random_adapters(&m, 3, 6.0f, 0.2f, AL_LORA_Q | AL_LORA_V | AL_LORA_O | AL_LORA_UP | AL_LORA_DOWN);
    al_lora_set_enabled(&m, false);
    float *off = logits_of(&m, &b);
    CHECKF(memcmp(base, off, n * sizeof(float)) == 0, "disabled LoRA: logits differ from the base (max %g)",
           (double)max_diff(base, off, n));
    al_lora_set_enabled(&m, true);
    m.lora->train = false; /* no dropout: the deterministic function the merge computes */
    float *on = logits_of(&m, &b);
    CHECK(max_diff(base, on, n) > 1e-3f);

    /* the bytes the plan reports include the adapters' activations */
    CHECK(al_train_ctx_model_bytes(&m, B_, T_) > al_train_ctx_bytes(&c, B_, T_));

    /* a freshly attached adapter (B = 0) is the identity */
    al_model m0;
    random_model(&m0, &c);
    float *base0 = logits_of(&m0, &b);
    al_lora_config lc = {.rank = 4, .alpha = 8, .targets = AL_LORA_ALL, .seed = 7};
    CHECK_OK(al_lora_attach(&m0, &lc));
    float *id0 = logits_of(&m0, &b);
    CHECK(max_diff(base0, id0, n) == 0.0f);
    CHECK(!all_zero(m0.lora->ad[0].A, (size_t)4 * c.dim));
    float bound = 1.0f / sqrtf((float)c.dim), amax = 0;
    for (int i = 0; i < 4 * c.dim; i++)
        amax = fmaxf(amax, fabsf(m0.lora->ad[0].A[i]));
    CHECK(amax <= bound && amax > 0.5f * bound);
    al_lora_detach(&m0);
    al_model_free(&m0);
    free(base0), free(id0);

    CHECK_OK(al_lora_merge(&m));
    CHECK(m.lora == NULL);
    float *merged = logits_of(&m, &b);
    float d = max_diff(on, merged, n);
    CHECKF(d <= 1e-5f, "merged vs base + adapters: max logit difference %g", (double)d);
    free(base), free(off), free(on), free(merged);
    al_model_free(&m);
}

/* Same seed and step: the same masks; another step: other masks; train = false: none. */
static void test_dropout_determinism(void)
{
    al_config c = tiny_cfg(AL_ROPE_HALF, false, true);
    al_model m;
    random_model(&m, &c);
    random_adapters(&m, 2, 2.0f, 0.5f, AL_LORA_ALL);
    batch b;
    random_batch(&b, c.vocab_size);
    size_t n = (size_t)N_ * c.vocab_size;
    m.lora->dropout_step = 0;
    float *a = logits_of(&m, &b);
    CHECK(m.lora->dropout_step == 1);
    m.lora->dropout_step = 0;
    float *a2 = logits_of(&m, &b);
    CHECK(memcmp(a, a2, n * sizeof(float)) == 0);
    float *next = logits_of(&m, &b); /* step 1 */
    CHECK(max_diff(a, next, n) > 1e-4f);
    m.lora->train = false;
    float *eval = logits_of(&m, &b);
    CHECK(m.lora->dropout_step == 2);
    m.lora->c.dropout = 0;
    float *nodrop = logits_of(&m, &b);
    CHECK(memcmp(eval, nodrop, n * sizeof(float)) == 0);
    CHECK(max_diff(a, eval, n) > 1e-4f);
    free(a), free(a2), free(next), free(eval), free(nodrop);
    al_lora_detach(&m);
    al_model_free(&m);
}

/* A few AdamW steps on the adapter block lower the loss and leave the base untouched. */
static void test_adamw_block(void)
{
    al_config c = tiny_cfg(AL_ROPE_HALF, false, true);
    al_model m;
    random_model(&m, &c);
    float *base = malloc(m.n_params * sizeof(float));
    memcpy(base, m.params, m.n_params * sizeof(float));
    al_lora_config lc = {.rank = 4, .alpha = 8, .targets = AL_LORA_ALL, .seed = 3};
    CHECK_OK(al_lora_attach(&m, &lc));
    al_adamw opt;
    al_adamw_opts o = al_adamw_defaults();
    CHECK_OK(al_adamw_init_block(&opt, m.lora->n_params, NULL, &o));
    CHECK(opt.decay[0] == 1 && opt.decay[m.lora->n_params - 1] == 1);
    batch b;
    random_batch(&b, c.vocab_size);
    al_train_ctx *ctx = al_train_ctx_new(&m, B_, T_);
    float dl[N_], first = 0, last = 0;
    int cnt = 0;
    for (int i = 0; i < N_; i++)
        cnt += b.tgt[i] >= 0;
    for (int i = 0; i < N_; i++)
        dl[i] = b.tgt[i] >= 0 ? -1.0f / (float)cnt : 0.0f;
    for (int step = 0; step < 20; step++) {
        CHECK_OK(al_forward(ctx, b.tok, b.tgt, NULL, NULL));
        float nll = al_ctx_mean_nll(ctx, b.tgt);
        if (step == 0)
            first = nll;
        last = nll;
        al_lora_zero_grads(&m);
        al_backward(ctx, &m, dl);
        al_adamw_step(&opt, m.lora->params, m.lora->grads, 1e-2f);
    }
    CHECKF(last < first - 0.1f, "LoRA training: loss %g -> %g", (double)first, (double)last);
    CHECK(memcmp(base, m.params, m.n_params * sizeof(float)) == 0);
    al_train_ctx_free(ctx);
    al_adamw_free(&opt);
    al_lora_detach(&m);
    al_model_free(&m);
    free(base);
}

/* Reads the safetensors header of path as JSON. */
static json_t *st_header(const char *path, size_t *data_start)
{
    al_buf f = {0};
    if (al_read_file(path, &f) || f.len < 8)
        return NULL;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | (uint8_t)f.data[i];
    json_t *root = json_loadb(f.data + 8, (size_t)h, 0, NULL);
    *data_start = 8 + (size_t)h;
    al_buf_free(&f);
    return root;
}

static void test_save_load(void)
{
    al_config c = tiny_cfg(AL_ROPE_INTERLEAVED, false, true);
    al_model m, m2;
    random_model(&m, &c);
    CHECK_OK(al_model_init(&m2, &c));
    memcpy(m2.params, m.params, m.n_params * sizeof(float));
    random_adapters(&m, 2, 16.0f, 0.05f, AL_LORA_Q | AL_LORA_K | AL_LORA_GATE | AL_LORA_DOWN);
    const char *dir = test_tmpdir("lora-save");
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/adapter", dir);
    CHECK_OK(al_lora_save(&m, sub));
    CHECK_OK(al_lora_load(&m2, sub));
    CHECK(m2.lora && m2.lora->n_params == m.lora->n_params);
    if (!m2.lora)
        return;
    CHECK(memcmp(m.lora->params, m2.lora->params, m.lora->n_params * sizeof(float)) == 0);
    CHECK(m2.lora->c.rank == 2 && m2.lora->c.alpha == 16.0f && m2.lora->c.targets == m.lora->c.targets);
    CHECK(fabsf(m2.lora->c.dropout - 0.05f) < 1e-7f);
    CHECK(al_lora_load(&m2, sub) != 0); /* already attached */

    /* adapter_config.json */
    char path[1300];
    snprintf(path, sizeof path, "%s/adapter_config.json", sub);
    json_t *cfg = json_load_file(path, 0, NULL);
    CHECK(cfg != NULL);
    if (cfg) {
        CHECK(!strcmp(json_string_value(json_object_get(cfg, "peft_type")), "LORA"));
        CHECK(!strcmp(json_string_value(json_object_get(cfg, "task_type")), "CAUSAL_LM"));
        CHECK(!strcmp(json_string_value(json_object_get(cfg, "bias")), "none"));
        CHECK(json_integer_value(json_object_get(cfg, "r")) == 2);
        CHECK(json_number_value(json_object_get(cfg, "lora_alpha")) == 16.0);
        CHECK(json_number_value(json_object_get(cfg, "lora_dropout")) == 0.05);
        json_t *tm = json_object_get(cfg, "target_modules");
        CHECK(json_array_size(tm) == 4);
        CHECK(!strcmp(json_string_value(json_array_get(tm, 0)), "q_proj"));
        CHECK(!strcmp(json_string_value(json_array_get(tm, 3)), "down_proj"));
        json_decref(cfg);
    }

    /* PEFT names and shapes in the header; q's lora_B rows in HF's half-split order */
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", sub);
    size_t data_start = 0;
    json_t *h = st_header(path, &data_start);
    CHECK(h != NULL);
    if (h) {
        CHECK(json_object_size(h) == 1 + (size_t)c.n_layers * 4 * 2);
        struct {
            const char *name;
            int rows, cols;
        } want[] = {
            {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", 2, 16},
            {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", 16, 2},
            {"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight", 8, 2},
            {"base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight", 2, 16},
            {"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", 2, 24},
            {"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", 16, 2},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            json_t *e = json_object_get(h, want[i].name), *sh = json_object_get(e, "shape");
            CHECKF(e && !strcmp(json_string_value(json_object_get(e, "dtype")), "F32") &&
                       json_integer_value(json_array_get(sh, 0)) == want[i].rows &&
                       json_integer_value(json_array_get(sh, 1)) == want[i].cols,
                   "%s: missing or wrong shape", want[i].name);
        }
        CHECK(json_object_get(h, "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight") == NULL);
        json_t *qb = json_object_get(h, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
        size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(qb, "data_offsets"), 0));
        al_buf f = {0};
        CHECK_OK(al_read_file(path, &f));
        float row1[2];
        memcpy(row1, f.data + data_start + begin + 1 * 2 * sizeof(float), sizeof row1);
        /* head_dim 4: HF row 1 is interleaved row 2 */
        CHECK(memcmp(row1, m.lora->ad[0].B + 2 * 2, sizeof row1) == 0);
        al_buf_free(&f);
        json_decref(h);
    }
    al_lora_detach(&m2);

    /* a damaged adapter is refused with a message, leaving no adapters attached */
    snprintf(path, sizeof path, "%s/adapter_config.json", sub);
    FILE *fp = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": 3, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\", \"k_proj\", "
          "\"gate_proj\", \"down_proj\"]}",
          fp);
    fclose(fp);
    CHECK(al_lora_load(&m2, sub) != 0 && strstr(al_errmsg(), "shape") && m2.lora == NULL);

    al_lora_detach(&m);
    al_model_free(&m);
    al_model_free(&m2);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* stories260K (interleaved rope) + random adapters in memory, saved; the CLI merges them
 * into the HF conversion of the base; the merged model's logits equal base + adapters. */
static void test_cli_merge(void)
{
    al_model m, merged;
    CHECK_OK(al_model_load(&m, shared_path("models/stories260K/stories260K.bin")));
    const char *dir = test_tmpdir("lora-cli");
    char base_dir[1200], ad_dir[1200], out_dir[1200], cmd[4096];
    snprintf(base_dir, sizeof base_dir, "%s/base", dir);
    snprintf(ad_dir, sizeof ad_dir, "%s/adapter", dir);
    snprintf(out_dir, sizeof out_dir, "%s/merged", dir);
    CHECK_OK(al_model_save_safetensors(&m, base_dir));
    /* the interleaved original and its HF copy (half-split rope) differ by float rounding
     * in the kernels; the reference for the merge is the HF copy + adapters */
    al_model inter = m;
    CHECK_OK(al_model_load(&m, base_dir));
    al_lora_config lc = {.rank = 4, .alpha = 8, .dropout = 0.1f, .targets = AL_LORA_ALL, .seed = 11};
    CHECK_OK(al_lora_attach(&m, &lc));
    for (size_t i = 0; i < m.lora->n_params; i++)
        m.lora->params[i] = frand() * 0.05f;
    m.lora->train = false;
    CHECK_OK(al_lora_save(&m, ad_dir));

    snprintf(cmd, sizeof cmd, "%s lora merge -m %s -a %s -o %s >/dev/null", ALIGN_BINARY, base_dir, ad_dir, out_dir);
    int st = system(cmd);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: exit %d", cmd, st);
    snprintf(cmd, sizeof cmd, "%s lora --help >/dev/null", ALIGN_BINARY);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s lora merge -m %s -o %s 2>/dev/null", ALIGN_BINARY, base_dir, out_dir);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);

    CHECK_OK(al_model_load(&merged, out_dir));
    const int T = 32;
    int tok[32], tgt[32];
    for (int i = 0; i < T; i++)
        tok[i] = (int)(al_xorshift_u32(&rng_state) % 512), tgt[i] = (int)(al_xorshift_u32(&rng_state) % 512);
    al_train_ctx *a = al_train_ctx_new(&m, 1, T), *b = al_train_ctx_new(&merged, 1, T);
    CHECK_OK(al_forward(a, tok, tgt, NULL, NULL));
    CHECK_OK(al_forward(b, tok, tgt, NULL, NULL));
    size_t n = (size_t)T * m.cfg.vocab_size;
    float d = max_diff(al_ctx_logits(a), al_ctx_logits(b), n);
    float lmax = 0;
    for (size_t i = 0; i < n; i++)
        lmax = fmaxf(lmax, fabsf(al_ctx_logits(b)[i]));
    /* 1e-5 relative to the logits' scale (|logit| ~ 15 here, where a float ulp is ~1e-6):
     * merging rounds W + s B A to float, which the unmerged path never does */
    CHECKF(d <= 1e-5f * fmaxf(1.0f, lmax), "CLI merge: max logit difference %g (max |logit| %g)", (double)d,
           (double)lmax);
    al_lora_set_enabled(&m, false);
    CHECK_OK(al_forward(a, tok, tgt, NULL, NULL));
    CHECK(max_diff(al_ctx_logits(a), al_ctx_logits(b), n) > 1e-3f);

    /* the same adapters on the interleaved original (lora_B q/k rows permuted back on load) */
    CHECK_OK(al_lora_load(&inter, ad_dir));
    if (inter.lora) {
        inter.lora->train = false;
        al_train_ctx *c2 = al_train_ctx_new(&inter, 1, T);
        CHECK_OK(al_forward(c2, tok, tgt, NULL, NULL));
        float d2 = max_diff(al_ctx_logits(c2), al_ctx_logits(b), n);
        CHECKF(d2 <= 1e-5f * fmaxf(1.0f, lmax), "interleaved base + adapters vs merged HF: max logit difference %g", (double)d2);
        al_train_ctx_free(c2);
        al_lora_detach(&inter);
    }
    al_model_free(&inter);
    al_train_ctx_free(a);
    al_train_ctx_free(b);
    al_lora_detach(&m);
    al_model_free(&m);
    al_model_free(&merged);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_config_errors(void)
{
    al_config c = tiny_cfg(AL_ROPE_HALF, false, true);
    al_model m;
    random_model(&m, &c);
    al_lora_config bad[] = {
        {.rank = 0, .alpha = 1, .targets = AL_LORA_Q},
        {.rank = 2, .alpha = 0, .targets = AL_LORA_Q},
        {.rank = 2, .alpha = 1, .dropout = 1.0f, .targets = AL_LORA_Q},
        {.rank = 2, .alpha = 1, .targets = 0},
        {.rank = 2, .alpha = 1, .targets = 0x80},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(al_lora_attach(&m, &bad[i]) != 0 && m.lora == NULL);
    unsigned t = 0;
    CHECK_OK(al_lora_parse_targets("q,v,down_proj", &t));
    CHECK(t == (AL_LORA_Q | AL_LORA_V | AL_LORA_DOWN));
    CHECK_OK(al_lora_parse_targets("all", &t));
    CHECK(t == AL_LORA_ALL);
    CHECK(al_lora_parse_targets("q,x", &t) != 0);
    CHECK(al_lora_merge(&m) != 0);
    /* a context planned without adapters refuses a forward with them */
    al_train_ctx *ctx = al_train_ctx_new(&m, B_, T_);
    al_lora_config lc = {.rank = 2, .alpha = 2, .targets = AL_LORA_Q};
    CHECK_OK(al_lora_attach(&m, &lc));
    batch b;
    random_batch(&b, c.vocab_size);
    CHECK(al_forward(ctx, b.tok, b.tgt, NULL, NULL) != 0);
    al_train_ctx_free(ctx);
    al_lora_detach(&m);
    al_model_free(&m);
}

int main(void)
{
    test_gradients(AL_ROPE_INTERLEAVED, false, true, 0.0f, true);
    test_gradients(AL_ROPE_HALF, true, false, 0.0f, false);
    test_gradients(AL_ROPE_HALF, true, true, 0.3f, true);
    test_disabled_and_merge(AL_ROPE_INTERLEAVED);
    test_disabled_and_merge(AL_ROPE_HALF);
    test_dropout_determinism();
    test_adamw_block();
    test_save_load();
    test_config_errors();
    test_cli_merge();
    return test_report();
}
