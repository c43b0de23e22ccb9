/* The engine against real references: llama2.c run.c logits and greedy ids, and
 * PyTorch's SFT loss, DPO log-probs and full gradients for stories260K. */
#include <jansson.h>

#include "align/model.h"
#include "align/train.h"
#include "test.h"

static json_t *load_json(const char *rel)
{
    json_error_t err;
    json_t *j = json_load_file(shared_path(rel), 0, &err);
    if (!j) {
        fprintf(stderr, "%s:%d: %s\n", rel, err.line, err.text);
        exit(2);
    }
    return j;
}

static int *json_ints(json_t *arr, int *n)
{
    *n = (int)json_array_size(arr);
    int *v = malloc(sizeof(int) * (size_t)(*n > 0 ? *n : 1));
    for (int i = 0; i < *n; i++)
        v[i] = (int)json_integer_value(json_array_get(arr, (size_t)i));
    return v;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m))
            m = d; /* also catches NaN */
    }
    return m;
}

/* Teacher-forced logits through the training forward and through the KV-cache decoder. */
static void check_logits(const al_model *m, const int *ids, int n, const char *logits_rel, const char *what)
{
    size_t count;
    float *ref = read_floats(shared_path(logits_rel), &count);
    int V = m->cfg.vocab_size;
    CHECKF(count == (size_t)n * V, "%s: %zu floats, expected %d", what, count, n * V);

    al_train_ctx *ctx = al_train_ctx_new(m, 1, n);
    CHECK(ctx != NULL);
    CHECK_OK(al_forward(ctx, ids, NULL, NULL, NULL));
    float d = max_abs_diff(al_ctx_logits(ctx), ref, count);
    CHECKF(d < 1e-4f, "%s: training forward logits max abs diff %g", what, (double)d);
    al_train_ctx_free(ctx);

    al_decoder *dec = al_decoder_new(m, 1, m->cfg.seq_len);
    CHECK(dec != NULL);
    float worst = 0;
    for (int t = 0; t < n; t++) {
        float *lg = al_decoder_step(dec, NULL, &ids[t], 1);
        float e = max_abs_diff(lg, ref + (size_t)t * V, (size_t)V);
        worst = e > worst ? e : worst;
    }
    CHECKF(worst < 1e-4f, "%s: decoder logits max abs diff %g", what, (double)worst);
    al_decoder_free(dec);
    free(ref);
}

/* 64 greedy steps from BOS, run.c semantics: the sequence after BOS. */
static void check_greedy(const al_model *m, json_t *ref)
{
    json_t *g = json_array_get(json_object_get(ref, "greedy"), 0);
    int n;
    int *want = json_ints(json_object_get(g, "ids"), &n);
    al_decoder *dec = al_decoder_new(m, 1, m->cfg.seq_len);
    int tok = m->cfg.bos_id, ok = 1;
    for (int i = 0; i < n; i++) {
        float *lg = al_decoder_step(dec, NULL, &tok, 1);
        int best = 0;
        for (int v = 1; v < m->cfg.vocab_size; v++)
            if (lg[v] > lg[best])
                best = v;
        if (best != want[i]) {
            fprintf(stderr, "greedy step %d: got %d want %d\n", i, best, want[i]);
            ok = 0;
            break;
        }
        tok = best;
    }
    CHECK(ok);
    al_decoder_free(dec);
    free(want);
}

/* Both teacher-forced prompts of a reference directory (ids from its reference.json,
 * logits from the named files) and its 64 greedy steps. */
static void check_reference(const al_model *m, const char *ref_dir, const char *logits0, const char *logits1,
                            const char *label)
{
    char path[512], what[128];
    snprintf(path, sizeof path, "%s/reference.json", ref_dir);
    json_t *ref = load_json(path);
    json_t *enc = json_object_get(ref, "encodings");
    const char *files[2] = {logits0, logits1};
    for (int k = 0; k < 2; k++) {
        int n;
        int *ids = json_ints(json_object_get(json_array_get(enc, (size_t)k), "ids"), &n);
        snprintf(path, sizeof path, "%s/%s", ref_dir, files[k]);
        snprintf(what, sizeof what, "%s prompt%d", label, k);
        check_logits(m, ids, n, path, what);
        free(ids);
    }
    check_greedy(m, ref);
    json_decref(ref);
}

static void test_stories_logits(void)
{
    al_model m;
    CHECK_OK(al_model_load_llama2c(&m, shared_path("models/stories260K/stories260K.bin")));
    CHECK(m.n_params == 260032);
    check_reference(&m, "models/stories260K/reference", "logits_prompt0_f32le_5x512.bin",
                    "logits_prompt1_f32le_20x512.bin", "stories");
    al_model_free(&m);
}

static void test_aidreams_logits(void)
{
    al_model m;
    CHECK_OK(al_model_load_llama2c(&m, shared_path("models/aidreams260K/aidreams260K.bin")));
    check_reference(&m, "models/aidreams260K/reference", "logits_prompt0_f32le_13x512.bin",
                    "logits_prompt1_f32le_30x512.bin", "aidreams");
    al_model_free(&m);
}

/* The HF copy (half-split rotary layout, safetensors) gives the same logits. */
static void test_stories_hf_logits(void)
{
    al_model m;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", shared_path("models/stories260K-hf/config.json"));
    *strrchr(dir, '/') = 0;
    CHECK_OK(al_model_load(&m, dir));
    CHECK(m.cfg.rope == AL_ROPE_HALF);
    check_reference(&m, "models/stories260K/reference", "logits_prompt0_f32le_5x512.bin",
                    "logits_prompt1_f32le_20x512.bin", "stories-hf");
    al_model_free(&m);
}

static float *logits_of(const al_model *m, const int *ids, int n)
{
    al_train_ctx *ctx = al_train_ctx_new(m, 1, n);
    if (!ctx || al_forward(ctx, ids, NULL, NULL, NULL)) {
        fprintf(stderr, "forward: %s\n", al_errmsg());
        exit(1);
    }
    size_t bytes = (size_t)n * m->cfg.vocab_size * sizeof(float);
    float *out = malloc(bytes);
    memcpy(out, al_ctx_logits(ctx), bytes);
    al_train_ctx_free(ctx);
    return out;
}

/* Save to safetensors and load again: bit-identical logits when the model already uses
 * HF's layout; from llama2.c the q/k rows are permuted on the way out, which reorders the
 * attention dot products, so there the logits agree to float rounding. */
static void test_save_load_logits(void)
{
    int ids[12] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    const char *dir = test_tmpdir("roundtrip");
    char hf_dir[1024], a[1100], b[1100];
    snprintf(hf_dir, sizeof hf_dir, "%s", shared_path("models/stories260K-hf/config.json"));
    *strrchr(hf_dir, '/') = 0;
    snprintf(a, sizeof a, "%s/from-hf", dir);
    snprintf(b, sizeof b, "%s/from-bin", dir);

    al_model hf, hf2, bin, bin2;
    CHECK_OK(al_model_load(&hf, hf_dir));
    CHECK_OK(al_model_save_safetensors(&hf, a));
    CHECK_OK(al_model_load(&hf2, a));
    float *la = logits_of(&hf, ids, 12), *lb = logits_of(&hf2, ids, 12);
    CHECK(memcmp(la, lb, sizeof(float) * 12 * 512) == 0);
    free(la), free(lb);

    CHECK_OK(al_model_load(&bin, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_model_save_safetensors(&bin, b));
    CHECK_OK(al_model_load(&bin2, b));
    la = logits_of(&bin, ids, 12), lb = logits_of(&bin2, ids, 12);
    /* logits reach ~20, where one float ulp is 1.9e-6: allow a few ulp of reordering */
    float d = max_abs_diff(la, lb, 12 * 512);
    CHECKF(d < 2e-5f, "llama2.c -> safetensors -> load: logits differ by %g", (double)d);
    free(la), free(lb);
    al_model_free(&hf), al_model_free(&hf2), al_model_free(&bin), al_model_free(&bin2);
}

/* Mean next-token cross-entropy of the reference text, and its full gradient. */
static void test_sft_gradient(void)
{
    al_model m;
    CHECK_OK(al_model_load_llama2c(&m, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_model_alloc_grads(&m));
    json_t *ref = load_json("models/stories260K/reference/torch_reference.json");
    int n;
    int *ids = json_ints(json_object_get(json_object_get(ref, "inputs"), "sft_ids"), &n);
    int T = n - 1;
    al_train_ctx *ctx = al_train_ctx_new(&m, 1, T);
    CHECK_OK(al_forward(ctx, ids, ids + 1, NULL, NULL));
    float loss = al_ctx_mean_nll(ctx, ids + 1);
    CHECKF(fabsf(loss - 1.2977454f) < 1e-5f, "SFT loss %.7f, expected 1.2977454", (double)loss);
    float *dlogp = malloc(sizeof(float) * (size_t)T);
    for (int t = 0; t < T; t++)
        dlogp[t] = -1.0f / (float)T;
    al_model_zero_grads(&m);
    al_backward(ctx, &m, dlogp);
    size_t count;
    float *want = read_floats(shared_path("models/stories260K/reference/grad_sft_f32le_260032.bin"), &count);
    CHECK(count == m.n_params);
    float d = max_abs_diff(m.grads, want, count);
    CHECKF(d < 1e-5f, "SFT gradient max abs diff %g", (double)d);
    free(want);
    free(dlogp);
    free(ids);
    al_train_ctx_free(ctx);
    json_decref(ref);
    al_model_free(&m);
}

/* DPO with the policy as its own reference: loss ln 2; the gradient is
 * -beta/2 (d logp_chosen - d logp_rejected).  Both sequences go in one batch of 2,
 * the shorter padded with ignored targets. */
static void test_dpo_gradient(void)
{
    al_model m;
    CHECK_OK(al_model_load_llama2c(&m, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_model_alloc_grads(&m));
    json_t *ref = load_json("models/stories260K/reference/torch_reference.json");
    json_t *in = json_object_get(ref, "inputs");
    int np, nc, nr;
    int *p = json_ints(json_object_get(in, "dpo_prompt_ids"), &np);
    int *c = json_ints(json_object_get(in, "dpo_chosen_ids"), &nc);
    int *r = json_ints(json_object_get(in, "dpo_rejected_ids"), &nr);
    int T = np + (nc > nr ? nc : nr) - 1;
    int *tok = calloc((size_t)2 * T, sizeof(int)), *tgt = malloc(sizeof(int) * 2 * (size_t)T);
    float *dlogp = calloc((size_t)2 * T, sizeof(float));
    const float beta = 0.1f;
    for (int row = 0; row < 2; row++) {
        const int *resp = row ? r : c;
        int nresp = row ? nr : nc, len = np + nresp;
        for (int t = 0; t < T; t++) {
            int cur = t < np ? p[t] : (t - np < nresp ? resp[t - np] : 0);
            int next = t + 1 < len ? (t + 1 < np ? p[t + 1] : resp[t + 1 - np]) : -1;
            tok[row * T + t] = t < len ? cur : 0;
            tgt[row * T + t] = (t + 1 >= np && t + 1 < len) ? next : -1;
        }
    }
    al_train_ctx *ctx = al_train_ctx_new(&m, 2, T);
    CHECK_OK(al_forward(ctx, tok, tgt, NULL, NULL));
    double lc = 0, lr = 0;
    for (int t = 0; t < T; t++) {
        lc += al_ctx_logp(ctx)[t];
        lr += al_ctx_logp(ctx)[T + t];
    }
    json_t *dpo = json_object_get(json_object_get(json_object_get(ref, "results"), "float64"), "dpo");
    double want_c = json_real_value(json_object_get(dpo, "policy_logp_chosen"));
    double want_r = json_real_value(json_object_get(dpo, "policy_logp_rejected"));
    CHECKF(fabs(lc - want_c) < 1e-4, "logp chosen %.6f want %.6f", lc, want_c);
    CHECKF(fabs(lr - want_r) < 1e-4, "logp rejected %.6f want %.6f", lr, want_r);
    /* The loss module: sigmoid DPO with the policy as its own (frozen) reference. */
    al_pref_opts po;
    al_pref_defaults(&po);
    po.beta = beta;
    al_pref_pair pair = {.pc = lc, .pr = lr, .rc = lc, .rr = lr, .nc = nc, .nr = nr, .label = 1.0};
    al_pref_out out;
    CHECK_OK(al_pref_loss(AL_PREF_SIGMOID, &po, &pair, &out));
    CHECKF(fabs(out.loss - log(2.0)) < 1e-12, "DPO loss %.9f", out.loss);
    /* each response token's log-prob carries its sequence's gradient */
    for (int i = 0; i < 2 * T; i++)
        if (tgt[i] >= 0)
            dlogp[i] = (float)(i < T ? out.d_pc : out.d_pr);
    al_model_zero_grads(&m);
    al_backward(ctx, &m, dlogp);
    size_t count;
    float *want = read_floats(shared_path("models/stories260K/reference/grad_dpo_beta0.1_f32le_260032.bin"), &count);
    float d = max_abs_diff(m.grads, want, count);
    CHECKF(d < 1e-5f, "DPO gradient max abs diff %g", (double)d);
    free(want);
    free(tok);
    free(tgt);
    free(dlogp);
    free(p);
    free(c);
    free(r);
    al_train_ctx_free(ctx);
    json_decref(ref);
    al_model_free(&m);
}

int main(void)
{
    test_stories_logits();
    test_aidreams_logits();
    test_stories_hf_logits();
    test_save_load_logits();
    test_sft_gradient();
    test_dpo_gradient();
    return test_report();
}
