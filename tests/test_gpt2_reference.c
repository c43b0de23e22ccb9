/* The GPT-2 layout's training forward and backward against a PyTorch float64 reference:
 * logits, per-position log-probabilities, the mean cross-entropy and the gradient of every
 * parameter, for a tied and an untied random model (tests/data/gpt2_reference.safetensors,
 * written by tests/gen_gpt2_reference.py; see its docstring for the definitions).
 *
 *   test_gpt2_reference [PATH]   (default: the committed file under tests/data)
 *
 * Tolerances.  The reference is float64 on the same float32 parameters, so it is exact to
 * ~1e-15 and every difference is align's float32 rounding.  A float32 product of length K
 * carries ~sqrt(K) u relative error (u = 6e-8; K <= 192 here), and the forward chains about
 * a dozen of them through 3 layers: about 1e-6 of a tensor's scale.  Each tensor's error is
 * measured as max|align - ref| / scale, scale = max|ref| of that tensor (for gradients at
 * least 1e-2 of the largest gradient entry of the model: grad.bk is exactly 0, a key bias
 * shifting each query's scores by a constant, so its reference is rounding noise and
 * align's float32 cancellation noise, ~1e-8, is measured against the gradients' scale).
 * Measured (2 threads): at most 4.4e-7 for logits, logp and the loss, 1.3e-6 for the
 * gradients, 3.6e-6 for grad.bk.  Tolerances: 1e-5 for the forward values, 5e-5 for the
 * gradients (the backward chains twice as many products and sums over B*T positions):
 * 10x or more above what align measures, and far below what a wrong definition gives
 * (GELU's erf form instead of tanh moves the logits by ~1e-3, a missing bias or a
 * transposed matrix by O(1)). */
#include <jansson.h>
#include <stdint.h>

#include "align/model.h"
#include "test.h"

#define TOL_FWD 1e-5
#define TOL_GRAD 5e-5

typedef struct {
    al_buf raw;
    json_t *hdr;
    const uint8_t *data;
    size_t data_len;
    const char *path;
} st_file;

static void st_open(st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    if (!al_file_exists(path)) {
        fprintf(stderr,
                "missing GPT-2 reference %s: generate it with\n"
                "  /usr/bin/python3 tests/gen_gpt2_reference.py [--out PATH]\n"
                "(needs python3-torch and python3-numpy)\n",
                path);
        exit(2);
    }
    if (al_read_file(path, &f->raw) || f->raw.len < 8) {
        fprintf(stderr, "%s: cannot read (%s)\n", path, al_errmsg());
        exit(2);
    }
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)(uint8_t)f->raw.data[i] << (8 * i);
    if (n > f->raw.len - 8) {
        fprintf(stderr, "%s: header length %llu beyond the file\n", path, (unsigned long long)n);
        exit(2);
    }
    json_error_t err;
    f->hdr = json_loadb(f->raw.data + 8, (size_t)n, 0, &err);
    if (!json_is_object(f->hdr)) {
        fprintf(stderr, "%s: bad header: %s\n", path, err.text);
        exit(2);
    }
    f->data = (const uint8_t *)f->raw.data + 8 + n;
    f->data_len = f->raw.len - 8 - (size_t)n;
}

static void st_close(st_file *f)
{
    json_decref(f->hdr);
    al_buf_free(&f->raw);
}

static const char *st_meta(const st_file *f, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(f->hdr, "__metadata__"), key));
    if (!s) {
        fprintf(stderr, "%s: __metadata__ has no \"%s\"\n", f->path, key);
        exit(2);
    }
    return s;
}

static int meta_int(const st_file *f, const char *cs, const char *field)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", cs, field);
    return atoi(st_meta(f, key));
}

/* A copy of tensor NAME (dtype F32 or I32, 4 bytes each) of exactly count elements; NULL
 * (with a failed check) when it is absent or malformed. */
static void *st_tensor(const st_file *f, const char *name, const char *dtype, size_t count)
{
    json_t *t = json_object_get(f->hdr, name);
    const char *dt = json_string_value(json_object_get(t, "dtype"));
    json_t *shape = json_object_get(t, "shape"), *offs = json_object_get(t, "data_offsets");
    if (!t || !dt || !json_is_array(shape) || json_array_size(offs) != 2) {
        CHECKF(0, "%s: no tensor %s", f->path, name);
        return NULL;
    }
    size_t n = 1;
    for (size_t i = 0; i < json_array_size(shape); i++)
        n *= (size_t)json_integer_value(json_array_get(shape, i));
    size_t b = (size_t)json_integer_value(json_array_get(offs, 0)), e = (size_t)json_integer_value(json_array_get(offs, 1));
    if (strcmp(dt, dtype) || n != count || e < b || e - b != 4 * n || e > f->data_len) {
        CHECKF(0, "%s: tensor %s is %s with %zu elements in [%zu, %zu), expected %s with %zu", f->path, name, dt, n,
               b, e, dtype, count);
        return NULL;
    }
    void *v = malloc(4 * (n ? n : 1));
    memcpy(v, f->data + b, 4 * n);
    return v;
}

typedef struct {
    double max_abs, scale, max_rel;
} err_stat;

/* max|a - r|, the scale it is measured against (max|r|, at least floor) and the largest
 * elementwise relative error over entries with |r| >= 1e-3 max|r| (for the report). */
static err_stat compare(const float *a, const float *r, size_t n, double floor)
{
    err_stat s = {0, 0, 0};
    for (size_t i = 0; i < n; i++)
        s.scale = fmax(s.scale, fabs((double)r[i]));
    double big = 1e-3 * s.scale;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)r[i]);
        if (!(d <= s.max_abs))
            s.max_abs = d; /* NaN sticks */
        if (fabs((double)r[i]) >= big && fabs((double)r[i]) > 0)
            s.max_rel = fmax(s.max_rel, d / fabs((double)r[i]));
    }
    s.scale = fmax(s.scale, floor);
    return s;
}

static void report(const char *cs, const char *what, err_stat s, double tol)
{
    double e = s.scale > 0 ? s.max_abs / s.scale : s.max_abs;
    printf("  %-7s %-16s max abs %.3e  scale %.3e  abs/scale %.3e  max rel %.3e  %s\n", cs, what, s.max_abs, s.scale,
           e, s.max_rel, e <= tol ? "ok" : "FAIL");
    CHECKF(e <= tol, "%s %s: max abs error %.3e is %.3e of its scale %.3e (tolerance %.0e)", cs, what, s.max_abs, e,
           s.scale, tol);
}

static void check_case(const st_file *f, const char *cs)
{
    al_config c = {0};
    c.arch = AL_ARCH_GPT2;
    c.dim = meta_int(f, cs, "dim");
    c.hidden_dim = meta_int(f, cs, "hidden_dim");
    c.n_layers = meta_int(f, cs, "n_layers");
    c.n_heads = c.n_kv_heads = meta_int(f, cs, "n_heads");
    c.head_dim = meta_int(f, cs, "head_dim");
    c.vocab_size = meta_int(f, cs, "vocab_size");
    c.seq_len = meta_int(f, cs, "seq_len");
    char key[128];
    snprintf(key, sizeof key, "%s.norm_eps", cs);
    c.norm_eps = strtof(st_meta(f, key), NULL);
    c.rope_theta = 10000.0f; /* unused by GPT-2 */
    c.tied_embeddings = meta_int(f, cs, "tied_embeddings") != 0;
    c.qkv_bias = true;
    const int B = meta_int(f, cs, "B"), T = meta_int(f, cs, "T"), N = B * T, V = c.vocab_size;
    printf("%s: dim %d, %d layers, %d heads, hidden %d, vocab %d, seq_len %d, %s embeddings, B %d x T %d\n", cs, c.dim,
           c.n_layers, c.n_heads, c.hidden_dim, V, c.seq_len, c.tied_embeddings ? "tied" : "untied", B, T);

    al_model m;
    CHECK_OK(al_model_init(&m, &c));
    if (!m.params)
        return;
    CHECK_OK(al_model_alloc_grads(&m));

    /* The layout's kinds, each contiguous across its layers (layer l at offset0 + l * size). */
    int nd = al_tensor_layout(&c, NULL, 0);
    al_tensor_desc *d = malloc(sizeof *d * (size_t)nd);
    al_tensor_layout(&c, d, nd);
    struct {
        const char *kind;
        size_t offset, count;
    } kinds[32];
    int nk = 0;
    for (int i = 0; i < nd; i++) {
        size_t sz = (size_t)d[i].rows * (size_t)(d[i].cols ? d[i].cols : 1);
        if (d[i].layer <= 0) {
            CHECK(nk < 32);
            if (nk >= 32)
                break;
            kinds[nk].kind = d[i].kind, kinds[nk].offset = d[i].offset, kinds[nk].count = 0;
            nk++;
        }
        CHECKF(nk > 0 && !strcmp(kinds[nk - 1].kind, d[i].kind) &&
                   d[i].offset == kinds[nk - 1].offset + (size_t)(d[i].layer > 0 ? d[i].layer : 0) * sz,
               "layout: %s layer %d is not contiguous with its kind", d[i].kind, d[i].layer);
        kinds[nk - 1].count += sz;
    }
    size_t covered = 0;
    for (int k = 0; k < nk; k++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%s", cs, kinds[k].kind);
        float *v = st_tensor(f, name, "F32", kinds[k].count);
        if (v)
            memcpy(m.params + kinds[k].offset, v, kinds[k].count * sizeof(float));
        free(v);
        covered += kinds[k].count;
    }
    CHECKF(covered == m.n_params, "layout kinds cover %zu of %zu parameters", covered, m.n_params);
    /* every parameter of the reference is one of the layout's kinds */
    const char *name;
    json_t *val;
    size_t plen = strlen(cs);
    json_object_foreach(f->hdr, name, val)
    {
        if (strncmp(name, cs, plen) || name[plen] != '.')
            continue;
        const char *k = name + plen + 1;
        if (!strncmp(k, "grad.", 5))
            k += 5;
        bool known = !strcmp(k, "tokens") || !strcmp(k, "targets") || !strcmp(k, "logits") || !strcmp(k, "logp") ||
                     !strcmp(k, "loss");
        for (int i = 0; i < nk && !known; i++)
            known = !strcmp(kinds[i].kind, k);
        CHECKF(known, "%s: tensor %s is not in align's layout", f->path, name);
    }

    int *tokens = st_tensor(f, (snprintf(key, sizeof key, "%s.tokens", cs), key), "I32", (size_t)N);
    int *targets = st_tensor(f, (snprintf(key, sizeof key, "%s.targets", cs), key), "I32", (size_t)N);
    float *ref_logits = st_tensor(f, (snprintf(key, sizeof key, "%s.logits", cs), key), "F32", (size_t)N * V);
    float *ref_logp = st_tensor(f, (snprintf(key, sizeof key, "%s.logp", cs), key), "F32", (size_t)N);
    float *ref_loss = st_tensor(f, (snprintf(key, sizeof key, "%s.loss", cs), key), "F32", 1);
    snprintf(key, sizeof key, "%s.loss_f64", cs);
    const double loss64 = strtod(st_meta(f, key), NULL);
    if (!tokens || !targets || !ref_logits || !ref_logp || !ref_loss)
        goto done;
    int n_valid = 0;
    for (int i = 0; i < N; i++)
        n_valid += targets[i] >= 0;
    CHECK(n_valid == meta_int(f, cs, "n_valid") && n_valid > 0 && n_valid < N);

    al_train_ctx *ctx = al_train_ctx_new(&m, B, T);
    CHECK(ctx != NULL);
    if (!ctx)
        goto done;
    int rc = al_forward(ctx, tokens, targets, NULL, NULL);
    CHECK_OK(rc);
    if (rc) {
        al_train_ctx_free(ctx);
        goto done;
    }
    report(cs, "logits", compare(al_ctx_logits(ctx), ref_logits, (size_t)N * V, 0), TOL_FWD);
    report(cs, "logp", compare(al_ctx_logp(ctx), ref_logp, (size_t)N, 0), TOL_FWD);
    bool ignored_zero = true;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        if (targets[i] < 0)
            ignored_zero &= al_ctx_logp(ctx)[i] == 0.0f;
        else
            sum += al_ctx_logp(ctx)[i];
    }
    CHECKF(ignored_zero, "%s: logp at ignored targets is not 0", cs);
    const float loss = (float)(-sum / n_valid), nll = al_ctx_mean_nll(ctx, targets);
    err_stat ls = {fabs(loss - loss64), fabs(loss64), fabs(loss - loss64) / fabs(loss64)};
    report(cs, "loss", ls, TOL_FWD);
    CHECKF(fabs((double)nll - loss64) <= TOL_FWD * fabs(loss64), "%s: al_ctx_mean_nll %.8f, reference %.8f", cs,
           (double)nll, loss64);
    CHECKF(fabs((double)*ref_loss - loss64) <= 1e-7 * fabs(loss64), "%s: stored loss %.8f vs loss_f64 %.8f", cs,
           (double)*ref_loss, loss64);
    printf("  %-7s loss align %.8f (al_ctx_mean_nll %.8f), reference %.10f\n", cs, (double)loss, (double)nll, loss64);

    float *dlogp = calloc((size_t)N, sizeof(float));
    for (int i = 0; i < N; i++)
        dlogp[i] = targets[i] >= 0 ? -1.0f / (float)n_valid : 0.0f;
    al_model_zero_grads(&m);
    al_backward(ctx, &m, dlogp);
    free(dlogp);
    al_train_ctx_free(ctx);

    float *ref_grads[32] = {0};
    double gmax = 0;
    for (int k = 0; k < nk; k++) {
        snprintf(key, sizeof key, "%s.grad.%s", cs, kinds[k].kind);
        ref_grads[k] = st_tensor(f, key, "F32", kinds[k].count);
        for (size_t i = 0; ref_grads[k] && i < kinds[k].count; i++)
            gmax = fmax(gmax, fabs((double)ref_grads[k][i]));
    }
    for (int k = 0; k < nk; k++) {
        if (!ref_grads[k])
            continue;
        char what[64];
        snprintf(what, sizeof what, "grad.%s", kinds[k].kind);
        report(cs, what, compare(m.grads + kinds[k].offset, ref_grads[k], kinds[k].count, 1e-2 * gmax), TOL_GRAD);
        free(ref_grads[k]);
    }
done:
    free(tokens), free(targets), free(ref_logits), free(ref_logp), free(ref_loss);
    free(d);
    al_model_free(&m);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : ALIGN_SOURCE_DIR "/tests/data/gpt2_reference.safetensors";
    st_file f;
    st_open(&f, path);
    printf("reference: %s\n", path);
    char *cases = strdup(st_meta(&f, "cases"));
    int n = 0;
    for (char *save = NULL, *cs = strtok_r(cases, ",", &save); cs; cs = strtok_r(NULL, ",", &save), n++)
        check_case(&f, cs);
    CHECKF(n > 0, "%s: no cases", path);
    free(cases);
    st_close(&f);
    return test_report();
}
