/* The training core: AdamW against hand-computed values, schedules, clipping, outlier
 * skipping, gradient accumulation with uneven token counts, and checkpoints that refuse
 * damage. (Kill-and-resume runs through the CLI are in test_pretrain.c.) */
#include "align/train.h"
#include "test.h"

static uint64_t rng = 0xC0FFEEull;
static float frand(void) { return al_xorshift_f32(&rng) * 2.0f - 1.0f; }

static al_config tiny_config(void)
{
    return (al_config){.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                       .vocab_size = 23, .seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                       .rope = AL_ROPE_HALF, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
}

/* Two AdamW steps on a model, checked element by element against the formula:
 *   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
 *   p = p (1 - lr wd)  [matrices only],
 *   p = p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
static void test_adamw(void)
{
    al_config c = tiny_config();
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] = frand();
    al_adamw opt;
    al_adamw_opts o = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    CHECK_OK(al_adamw_init(&opt, &m, &o));
    size_t n = m.n_params;
    double *p = malloc(n * sizeof *p), *mm = calloc(n, sizeof *mm), *vv = calloc(n, sizeof *vv);
    for (size_t i = 0; i < n; i++)
        p[i] = m.params[i];
    const float lrs[2] = {1e-2f, 5e-3f};
    double worst = 0;
    for (int t = 1; t <= 2; t++) {
        for (size_t i = 0; i < n; i++)
            m.grads[i] = frand() * (i % 7 == 0 ? 3.0f : 0.1f);
        al_adamw_step(&opt, m.params, m.grads, lrs[t - 1]);
        double lr = lrs[t - 1], bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.95, t);
        for (size_t i = 0; i < n; i++) {
            double g = m.grads[i];
            mm[i] = 0.9 * mm[i] + 0.1 * g;
            vv[i] = 0.95 * vv[i] + 0.05 * g * g;
            if (opt.decay[i])
                p[i] *= 1 - lr * 0.1;
            p[i] -= lr / bc1 * mm[i] / (sqrt(vv[i]) / sqrt(bc2) + 1e-8);
            worst = fmax(worst, fabs(p[i] - m.params[i]));
        }
    }
    CHECKF(worst < 2e-6, "AdamW differs from the formula by %g", worst);
    /* decay mask: matrices yes, norms no */
    CHECK(opt.decay[m.w.wq - m.params] == 1 && opt.decay[m.w.tok_emb - m.params] == 1);
    CHECK(opt.decay[m.w.rms_att - m.params] == 0 && opt.decay[m.w.rms_final - m.params] == 0);
    CHECK(opt.t == 2);
    free(p), free(mm), free(vv);
    al_adamw_free(&opt);
    al_model_free(&m);
}

static void test_schedules(void)
{
    al_schedule s = {.kind = AL_SCHED_COSINE, .peak_lr = 1.0f, .min_lr = 0.1f, .warmup = 10, .total = 110};
    CHECK(fabsf(al_schedule_lr(&s, 0) - 0.1f) < 1e-7f);  /* (0+1)/10 */
    CHECK(fabsf(al_schedule_lr(&s, 9) - 1.0f) < 1e-7f);  /* end of warmup */
    CHECK(fabsf(al_schedule_lr(&s, 10) - 1.0f) < 1e-6f); /* cosine starts at the peak */
    CHECK(fabsf(al_schedule_lr(&s, 60) - 0.55f) < 1e-6f);  /* halfway: min + (peak-min)/2 */
    CHECK(fabsf(al_schedule_lr(&s, 110) - 0.1f) < 1e-6f);
    s.kind = AL_SCHED_LINEAR;
    CHECK(fabsf(al_schedule_lr(&s, 35) - (1.0f + (0.1f - 1.0f) * 0.25f)) < 1e-6f);
    s.kind = AL_SCHED_CONSTANT;
    CHECK(al_schedule_lr(&s, 100) == 1.0f);
    s.kind = AL_SCHED_WSD;
    s.wsd_decay = 0.2f; /* decay over the last 22 steps: from step 88 */
    CHECK(al_schedule_lr(&s, 87) == 1.0f);
    CHECK(fabsf(al_schedule_lr(&s, 99) - (1.0f + (0.1f - 1.0f) * 11.0f / 22.0f)) < 1e-6f);
    CHECK(fabsf(al_schedule_lr(&s, 110) - 0.1f) < 1e-6f);
    al_schedule_kind k;
    CHECK(al_schedule_parse("wsd", &k) == 0 && k == AL_SCHED_WSD);
    CHECK(al_schedule_parse("exponential", &k) != 0 && strstr(al_errmsg(), "exponential"));
}

static void test_clip(void)
{
    float g[4] = {3, 0, 4, 0}; /* norm 5 */
    CHECK(fabs(al_grad_norm(g, 4) - 5.0) < 1e-12);
    double before = al_grad_clip(g, 4, 1.0);
    CHECK(fabs(before - 5.0) < 1e-12);
    CHECK(fabs(al_grad_norm(g, 4) - 1.0) < 1e-6);
    float h[2] = {0.3f, 0.4f};
    al_grad_clip(h, 2, 1.0); /* under the limit: untouched */
    CHECK(h[0] == 0.3f && h[1] == 0.4f);
}

static void test_outliers(void)
{
    al_outlier o;
    al_outlier_init(&o, 4.0f);
    char why[96];
    for (int i = 0; i < 30; i++)
        CHECK(!al_outlier_check(&o, 2.0 + 0.01 * (i % 5), 1.0 + 0.02 * (i % 3), why, sizeof why));
    CHECK(al_outlier_check(&o, 9.0, 1.0, why, sizeof why) && strstr(why, "loss"));
    CHECK(al_outlier_check(&o, 2.0, 50.0, why, sizeof why) && strstr(why, "grad_norm"));
    CHECK(al_outlier_check(&o, NAN, 1.0, why, sizeof why));
    CHECK(!al_outlier_check(&o, 2.02, 1.01, why, sizeof why));
    al_outlier off;
    al_outlier_init(&off, 0);
    for (int i = 0; i < 30; i++)
        al_outlier_check(&off, 2.0, 1.0, why, sizeof why);
    CHECK(!al_outlier_check(&off, 1e6, 1e6, why, sizeof why));
}

/* K micro-batches with uneven target counts, each scaled by the step's total count, give
 * the gradient of one batch holding all of them. */
static void test_accumulation(void)
{
    al_config c = tiny_config();
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    CHECK_OK(al_model_alloc_grads(&m));
    al_model_init_weights(&m, 7);
    const int K = 4, T = 12;
    int tok[4 * 12], tgt[4 * 12], n = 0;
    for (int i = 0; i < K * T; i++) {
        tok[i] = (int)(al_xorshift_u32(&rng) % 23);
        /* row k keeps only its first 3 + 3k targets: 3, 6, 9, 12 tokens */
        tgt[i] = i % T < 3 + 3 * (i / T) ? (int)(al_xorshift_u32(&rng) % 23) : -1;
        n += tgt[i] >= 0;
    }
    float dl[4 * 12];
    for (int i = 0; i < K * T; i++)
        dl[i] = -1.0f / (float)n;
    al_train_ctx *big = al_train_ctx_new(&m, K, T), *one = al_train_ctx_new(&m, 1, T);
    al_model_zero_grads(&m);
    CHECK_OK(al_forward(big, tok, tgt, NULL, NULL));
    al_backward(big, &m, dl);
    float *g_big = malloc(m.n_params * sizeof(float));
    memcpy(g_big, m.grads, m.n_params * sizeof(float));
    al_model_zero_grads(&m);
    for (int k = 0; k < K; k++) {
        CHECK_OK(al_forward(one, tok + k * T, tgt + k * T, NULL, NULL));
        al_backward(one, &m, dl);
    }
    float worst = 0;
    for (size_t i = 0; i < m.n_params; i++)
        worst = fmaxf(worst, fabsf(g_big[i] - m.grads[i]));
    CHECKF(worst < 1e-6f, "accumulated gradient differs from the big batch by %g", (double)worst);
    /* and it is not the mean of per-micro-batch means, which would weight rows unevenly */
    CHECK(n == 30);
    free(g_big);
    al_train_ctx_free(big), al_train_ctx_free(one);
    al_model_free(&m);
}

static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    int ch = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(ch ^ 0x5A, f);
    fclose(f);
}

static void truncate_file(const char *path, long keep)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f && ftruncate(fileno(f), keep) == 0);
    fclose(f);
}

static void test_checkpoints(void)
{
    const char *dir = test_tmpdir("ckpt");
    al_config c = tiny_config();
    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    al_model_init_weights(&m, 3);
    al_adamw opt;
    al_adamw_opts o = al_adamw_defaults();
    CHECK_OK(al_adamw_init(&opt, &m, &o));
    for (size_t i = 0; i < m.n_params; i++)
        opt.m[i] = frand(), opt.v[i] = fabsf(frand());
    opt.t = 5;
    al_train_state st = {.step = 5, .cursor = {1234, 2}, .rng = 99, .tokens = 640};
    al_outlier_init(&st.outlier, 3.0f);
    char why[8];
    al_outlier_check(&st.outlier, 1.5, 0.5, why, sizeof why);
    CHECK_OK(al_checkpoint_save(dir, &m, &opt, &st, 2));
    /* a later checkpoint with different weights */
    float *p5 = malloc(m.n_params * sizeof(float));
    memcpy(p5, m.params, m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] += 0.5f;
    st.step = 10;
    CHECK_OK(al_checkpoint_save(dir, &m, &opt, &st, 2));

    al_model m2;
    al_adamw opt2;
    al_train_state st2;
    char used[1024];
    CHECK_OK(al_checkpoint_load(dir, &m2, &opt2, &st2, used, sizeof used));
    CHECK(strstr(used, "step_00000010") != NULL);
    CHECK(st2.step == 10 && st2.cursor.pos == 1234 && st2.cursor.epoch == 2 && st2.rng == 99 && st2.tokens == 640);
    CHECK(st2.outlier.count == 1 && st2.outlier.z == 3.0f && opt2.t == 5);
    CHECK(memcmp(m2.params, m.params, m.n_params * sizeof(float)) == 0);
    CHECK(memcmp(opt2.m, opt.m, 2 * m.n_params * sizeof(float)) == 0);
    al_adamw_free(&opt2);
    al_model_free(&m2);

    /* damage the newest: loading that one alone fails clearly, the run falls back */
    char path[1300], ck10[1200];
    snprintf(ck10, sizeof ck10, "%s/checkpoints/step_00000010", dir);
    snprintf(path, sizeof path, "%s/state.bin", ck10);
    flip_byte(path, 100);
    CHECK(al_checkpoint_load(ck10, &m2, &opt2, &st2, used, sizeof used) != 0);
    CHECKF(strstr(al_errmsg(), "checksum mismatch") != NULL, "%s", al_errmsg());
    CHECK_OK(al_checkpoint_load(dir, &m2, &opt2, &st2, used, sizeof used));
    CHECK(strstr(used, "step_00000005") != NULL && st2.step == 5);
    CHECK(memcmp(m2.params, p5, m.n_params * sizeof(float)) == 0);
    al_adamw_free(&opt2);
    al_model_free(&m2);

    /* a truncated model file is caught by the hash in state.bin */
    char ck5[1200];
    snprintf(ck5, sizeof ck5, "%s/checkpoints/step_00000005", dir);
    snprintf(path, sizeof path, "%s/model.safetensors", ck5);
    truncate_file(path, 4000);
    CHECK(al_checkpoint_load(ck5, &m2, &opt2, &st2, used, sizeof used) != 0);
    CHECKF(strstr(al_errmsg(), "does not match its state.bin") != NULL, "%s", al_errmsg());
    CHECK(al_checkpoint_load(dir, &m2, &opt2, &st2, used, sizeof used) != 0); /* nothing valid left */
    /* a truncated state file */
    snprintf(path, sizeof path, "%s/state.bin", ck10);
    truncate_file(path, 10);
    CHECK(al_checkpoint_load(ck10, &m2, &opt2, &st2, used, sizeof used) != 0);

    /* keep=2 pruned nothing yet; a third save drops the oldest */
    st.step = 15;
    CHECK_OK(al_checkpoint_save(dir, &m, &opt, &st, 2));
    CHECK(!al_is_dir(ck5) && al_is_dir(ck10));
    free(p5);
    al_adamw_free(&opt);
    al_model_free(&m);
}

int main(void)
{
    test_adamw();
    test_schedules();
    test_clip();
    test_outliers();
    test_accumulation();
    test_checkpoints();
    return test_report();
}
