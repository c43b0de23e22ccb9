/* The harm classifier: multi-label logistic regression over hashed n-grams.
 *
 * A text's feature vector counts its n-gram occurrences per bucket, scaled by
 * 1/sqrt(total occurrences) so long and short texts score on one scale.  Each head is
 * sigmoid(bias + w . x).  Training is per-example AdamW (batch of one) with lazy updates:
 * only the buckets a text touches, and only the heads it has labels for, move; the bias
 * correction uses the global step, as TensorFlow's LazyAdam does.  A harmful example
 * whose source names no hazard trains the harmful head only (its hazards are unknown,
 * not absent); a benign one is a negative for every head. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "harm_features.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the harm model file is little-endian; this loader reads it in host order"
#endif

struct al_harm_model {
    int log2_buckets;
    uint64_t seed;    /* feature hashing salt */
    float threshold;
    uint32_t version; /* of the file it came from (HARM_VERSION when trained here) */
    float calib_a, calib_b; /* P(harmful) = sigmoid(a z + b) on the head's logit z (Platt) */
    float *w;         /* [buckets][HARM_STRIDE] */
    float bias[HARM_STRIDE];
    harm_lexicon lex; /* concept features; empty in models trained without WordNet */
};

#define HARM_HASH_SEED 0x616c69676e686172ull /* "alignhar": fixed, recorded in the file */
#define HARM_MAGIC "ALHARM01"
#define HARM_VERSION 2 /* 1: no concept table */
#define HARM_HEADER_BYTES 64

al_harm_train_opts al_harm_train_defaults(void)
{
    return (al_harm_train_opts){
        .epochs = 8, .log2_buckets = 18, .lr = 0.01f, .weight_decay = 1e-6f, .seed = 1, .threshold = 0.5f,
    };
}

static al_harm_model *model_new(int log2_buckets, uint64_t seed, float threshold)
{
    al_harm_model *m = calloc(1, sizeof *m);
    if (!m) {
        al_fail("harm classifier: out of memory");
        return NULL;
    }
    m->log2_buckets = log2_buckets;
    m->version = HARM_VERSION;
    m->calib_a = 1.0f, m->calib_b = 0.0f;
    m->seed = seed;
    m->threshold = threshold;
    m->w = al_alloc(((size_t)1 << log2_buckets) * HARM_STRIDE * sizeof(float));
    if (!m->w) {
        free(m);
        return NULL;
    }
    return m;
}

void al_harm_free(al_harm_model *m)
{
    if (!m)
        return;
    al_free(m->w);
    harm_lexicon_free(&m->lex);
    free(m);
}

float al_harm_threshold(const al_harm_model *m) { return m->threshold; }

static inline float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Scratch for one text's features. */
typedef struct feat_buf {
    char *norm;
    uint32_t *idx;
    size_t cap_bytes;
} feat_buf;

static int feat_reserve(feat_buf *f, size_t n)
{
    if (n <= f->cap_bytes && f->norm)
        return 0;
    size_t cap = n < 256 ? 256 : n + n / 2;
    char *norm = malloc(cap + 2);
    uint32_t *idx = malloc((harm_max_features(cap) + harm_concept_max(cap)) * sizeof *idx);
    if (!norm || !idx) {
        free(norm);
        free(idx);
        return al_fail("harm classifier: out of memory for a %zu-byte text", n);
    }
    free(f->norm);
    free(f->idx);
    f->norm = norm;
    f->idx = idx;
    f->cap_bytes = cap;
    return 0;
}

static void feat_free(feat_buf *f)
{
    free(f->norm);
    free(f->idx);
}

/* Every feature of a text: its n-grams, then its words' concepts. */
static size_t text_features(const al_harm_model *m, const char *text, size_t len, feat_buf *f)
{
    size_t norm_len;
    size_t n = harm_features(text, len, m->log2_buckets, m->seed, f->norm, f->idx, &norm_len);
    return n + harm_concept_features(&m->lex, f->norm, norm_len, m->log2_buckets, m->seed, f->idx + n);
}

static void logits_of(const al_harm_model *m, const uint32_t *idx, size_t n, float out[HARM_STRIDE])
{
    float acc[HARM_STRIDE] = {0};
    for (size_t i = 0; i < n; i++) {
        const float *row = m->w + (size_t)idx[i] * HARM_STRIDE;
        for (int h = 0; h < HARM_STRIDE; h++)
            acc[h] += row[h];
    }
    float scale = n ? 1.0f / sqrtf((float)n) : 0.0f;
    for (int h = 0; h < HARM_STRIDE; h++)
        out[h] = m->bias[h] + scale * acc[h];
}

/* Every head's logit for a text, with f as scratch. */
static int text_logits(const al_harm_model *m, const char *text, size_t len, feat_buf *f, float z[HARM_STRIDE])
{
    if (feat_reserve(f, len))
        return -1;
    logits_of(m, f->idx, text_features(m, text, len, f), z);
    return 0;
}

int al_harm_score(const al_harm_model *m, const char *text, size_t len, al_harm_scores *out)
{
    feat_buf f = {0};
    float z[HARM_STRIDE];
    int rc = text_logits(m, text, len, &f, z);
    feat_free(&f);
    if (rc)
        return -1;
    for (int h = 0; h < AL_HAZ_COUNT; h++)
        out->hazard[h] = sigmoid(z[h]);
    out->harmful = sigmoid(m->calib_a * z[HARM_HEAD_HARMFUL] + m->calib_b);
    return 0;
}

static double platt_loss(const float *z, const al_harm_dataset *d, double a, double b)
{
    double loss = 0;
    for (int i = 0; i < d->n; i++) {
        double t = a * z[i] + b, y = d->v[i].harmful ? 1 : 0;
        loss += (t > 0 ? t + log1p(exp(-t)) : log1p(exp(t))) - y * t; /* log(1 + e^t) - y t */
    }
    return loss;
}

/* Platt scaling: the (a, b) of least log loss for sigmoid(a z + b) on d's labels, by
 * Newton's method on the two parameters (the loss is convex in them). */
int al_harm_calibrate(al_harm_model *m, const al_harm_dataset *d)
{
    if (d->n < 2)
        return al_fail("harm calibrate: %d examples; need both labels", d->n);
    float *z = malloc((size_t)d->n * sizeof *z);
    feat_buf f = {0};
    if (!z)
        return al_fail("out of memory");
    int pos = 0;
    for (int i = 0; i < d->n; i++) {
        float lz[HARM_STRIDE];
        if (text_logits(m, d->v[i].text, strlen(d->v[i].text), &f, lz)) {
            feat_free(&f);
            free(z);
            return -1;
        }
        z[i] = lz[HARM_HEAD_HARMFUL];
        pos += d->v[i].harmful;
    }
    feat_free(&f);
    if (pos == 0 || pos == d->n) {
        free(z);
        return al_fail("harm calibrate: the examples must hold both harmful and benign ones");
    }
    double a = 1, b = 0, loss = platt_loss(z, d, a, b);
    for (int it = 0; it < 100; it++) {
        double ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
        for (int i = 0; i < d->n; i++) {
            double p = 1 / (1 + exp(-(a * z[i] + b))), r = p - (d->v[i].harmful ? 1 : 0), w = p * (1 - p);
            ga += r * z[i], gb += r;
            haa += w * z[i] * z[i], hab += w * z[i], hbb += w;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det, step = 1;
        /* damped: halve the step until the loss goes down */
        double next = platt_loss(z, d, a - da, b - db);
        while (!(next < loss) && step > 1e-6) {
            step /= 2;
            next = platt_loss(z, d, a - step * da, b - step * db);
        }
        if (!(next < loss))
            break;
        a -= step * da, b -= step * db;
        bool done = loss - next < 1e-10 * d->n;
        loss = next;
        if (done)
            break;
    }
    free(z);
    if (!isfinite(a) || !isfinite(b) || a <= 0)
        return al_fail("harm calibrate: no usable fit (a = %g, b = %g): the head does not separate the examples", a,
                       b);
    m->calib_a = (float)a, m->calib_b = (float)b;
    return 0;
}

void al_harm_calibration(const al_harm_model *m, float *a, float *b)
{
    *a = m->calib_a;
    *b = m->calib_b;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts idx and merges repeats: idx[k] unique buckets, cnt[k] their occurrences. */
static size_t merge_repeats(uint32_t *idx, size_t n, float *cnt)
{
    qsort(idx, n, sizeof *idx, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && idx[k - 1] == idx[i]) {
            cnt[k - 1] += 1.0f;
        } else {
            idx[k] = idx[i];
            cnt[k++] = 1.0f;
        }
    }
    return k;
}

typedef struct adamw {
    float lr, wd, b1, b2, eps;
    float c1, c2; /* bias corrections 1 - b^t of the current step */
} adamw;

static inline void adamw_update(const adamw *o, float *w, float *m, float *v, float g)
{
    *m = o->b1 * *m + (1 - o->b1) * g;
    *v = o->b2 * *v + (1 - o->b2) * g * g;
    float mh = *m / o->c1, vh = *v / o->c2;
    *w -= o->lr * (mh / (sqrtf(vh) + o->eps) + o->wd * *w);
}

al_harm_model *al_harm_train(const al_harm_dataset *d, const al_harm_train_opts *o)
{
    if (o->log2_buckets < 10 || o->log2_buckets > 24 || o->epochs < 1 || !(o->lr > 0) ||
        !(o->threshold > 0 && o->threshold < 1)) {
        al_fail("harm train: options out of range (log2 buckets %d in 10..24, epochs %d >= 1, lr %g > 0, "
                "threshold %g in (0,1))", o->log2_buckets, o->epochs, (double)o->lr, (double)o->threshold);
        return NULL;
    }
    if (d->n == 0) {
        al_fail("harm train: no training examples");
        return NULL;
    }
    al_harm_model *m = model_new(o->log2_buckets, HARM_HASH_SEED, o->threshold);
    size_t nw = ((size_t)1 << o->log2_buckets) * HARM_STRIDE;
    float *mom = m ? al_alloc(nw * sizeof(float)) : NULL, *var = mom ? al_alloc(nw * sizeof(float)) : NULL;
    int *order = var ? malloc((size_t)d->n * sizeof *order) : NULL;
    float *cnt = NULL;
    feat_buf f = {0};
    float bm[HARM_STRIDE] = {0}, bv[HARM_STRIDE] = {0};
    if (!order) {
        al_fail("harm train: out of memory for %zu weights", nw);
        goto fail;
    }
    if (o->wordnet_dir && harm_lexicon_build_wordnet(&m->lex, o->wordnet_dir))
        goto fail;
    for (int i = 0; i < d->n; i++)
        order[i] = i;
    uint64_t rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ull;
    adamw opt = {.wd = o->weight_decay, .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f};
    long step = 0, total = (long)o->epochs * d->n;
    size_t cnt_cap = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        for (int i = d->n - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(al_xorshift_u32(&rng) % (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss = 0;
        for (int k = 0; k < d->n; k++) {
            const al_harm_example *ex = &d->v[order[k]];
            size_t len = strlen(ex->text);
            if (feat_reserve(&f, len))
                goto fail;
            size_t n = text_features(m, ex->text, len, &f);
            if (n > cnt_cap) {
                float *grown = realloc(cnt, n * sizeof *cnt);
                if (!grown) {
                    al_fail("harm train: out of memory");
                    goto fail;
                }
                cnt = grown;
                cnt_cap = n;
            }
            float scale = n ? 1.0f / sqrtf((float)n) : 0.0f;
            size_t u = merge_repeats(f.idx, n, cnt);
            float z[HARM_STRIDE];
            for (int h = 0; h < HARM_STRIDE; h++)
                z[h] = m->bias[h];
            for (size_t j = 0; j < u; j++) {
                const float *row = m->w + (size_t)f.idx[j] * HARM_STRIDE;
                for (int h = 0; h < HARM_STRIDE; h++)
                    z[h] += scale * cnt[j] * row[h];
            }
            /* Targets and which heads this example teaches. */
            float g[HARM_STRIDE] = {0};
            bool on[HARM_STRIDE] = {false};
            bool hazards_known = !ex->harmful || ex->hazards != 0;
            for (int h = 0; h < HARM_HEADS; h++) {
                float y = h == HARM_HEAD_HARMFUL ? (ex->harmful ? 1.0f : 0.0f)
                                                 : ((ex->hazards >> h) & 1u ? 1.0f : 0.0f);
                on[h] = h == HARM_HEAD_HARMFUL || hazards_known;
                if (!on[h])
                    continue;
                float p = sigmoid(z[h]);
                g[h] = (p - y) * (ex->weight > 0 ? ex->weight : 1.0f);
                loss -= y ? logf(p + 1e-7f) : logf(1 - p + 1e-7f);
            }
            step++;
            opt.lr = o->lr * (1.0f - 0.9f * (float)(step - 1) / (float)total); /* linear to 10% */
            opt.c1 = 1.0f - powf(opt.b1, (float)step);
            opt.c2 = 1.0f - powf(opt.b2, (float)step);
            for (size_t j = 0; j < u; j++) {
                size_t base = (size_t)f.idx[j] * HARM_STRIDE;
                float x = scale * cnt[j];
                for (int h = 0; h < HARM_HEADS; h++)
                    if (on[h])
                        adamw_update(&opt, &m->w[base + h], &mom[base + h], &var[base + h], g[h] * x);
            }
            adamw wd0 = opt; /* biases are not decayed */
            wd0.wd = 0;
            for (int h = 0; h < HARM_HEADS; h++)
                if (on[h])
                    adamw_update(&wd0, &m->bias[h], &bm[h], &bv[h], g[h]);
        }
        if (o->verbose)
            fprintf(stderr, "harm train: epoch %d/%d  mean loss per example %.4f\n", ep + 1, o->epochs,
                    loss / d->n);
    }
    feat_free(&f);
    free(cnt);
    free(order);
    al_free(mom);
    al_free(var);
    return m;
fail:
    feat_free(&f);
    free(cnt);
    free(order);
    al_free(mom);
    al_free(var);
    al_harm_free(m);
    return NULL;
}

/* ---- evaluation ---- */

void al_harm_prf_finish(al_harm_prf *p)
{
    p->precision = p->tp + p->fp ? (double)p->tp / (p->tp + p->fp) : 0;
    p->recall = p->tp + p->fn ? (double)p->tp / (p->tp + p->fn) : 0;
    p->f1 = p->precision + p->recall > 0 ? 2 * p->precision * p->recall / (p->precision + p->recall) : 0;
}

static void count(al_harm_prf *p, bool truth, bool predicted)
{
    if (truth && predicted)
        p->tp++;
    else if (predicted)
        p->fp++;
    else if (truth)
        p->fn++;
    else
        p->tn++;
}

int al_harm_evaluate(const al_harm_model *m, const al_harm_dataset *d, al_harm_eval *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < d->n; i++) {
        const al_harm_example *ex = &d->v[i];
        al_harm_scores s;
        if (al_harm_score(m, ex->text, strlen(ex->text), &s))
            return -1;
        count(&out->overall, ex->harmful, s.harmful >= m->threshold);
        if (ex->harmful && ex->hazards == 0)
            continue; /* category unknown: counts for the overall figure only */
        for (int h = 0; h < AL_HAZ_COUNT; h++) {
            bool truth = (ex->hazards >> h) & 1u;
            count(&out->hazard[h], truth, s.hazard[h] >= 0.5f);
            out->support[h] += truth;
        }
    }
    al_harm_prf_finish(&out->overall);
    for (int h = 0; h < AL_HAZ_COUNT; h++)
        al_harm_prf_finish(&out->hazard[h]);
    return 0;
}

/* ---- the model file ----
 * offset  field
 *   0     magic "ALHARM01"
 *   8     u32 version (2; 1 has no calibration and no concept table)
 *  12     u32 heads (15)         16  u32 log2 buckets      20  u32 row stride (16)
 *  24     u64 hashing seed
 *  32     u32 word n-gram max    36  u32 char n-gram min   40  u32 char n-gram max
 *  44     f32 decision threshold
 *  48     u64 al_hash64 of everything after the header
 *  56     f32 calibration a, f32 calibration b: P(harmful) = sigmoid(a z + b) (version 1: 0)
 *  64     f32 weights [buckets][stride], then f32 biases [stride]
 *         version 2: the concept table, u32 words, u32 ids, u64 lemma hashes [words] (sorted),
 *         u32 offsets [words + 1], u32 concept ids [ids] (harm_lexicon.c) */

typedef struct harm_header {
    char magic[8];
    uint32_t version, heads, log2_buckets, stride;
    uint64_t seed;
    uint32_t word_max, char_min, char_max;
    float threshold;
    uint64_t checksum;
    float calib_a, calib_b; /* version 2; zero in version 1 files, read as a = 1, b = 0 */
} harm_header;
_Static_assert(sizeof(harm_header) == HARM_HEADER_BYTES, "the header is 64 bytes");

static uint64_t payload_hash(const al_harm_model *m)
{
    size_t nw = ((size_t)1 << m->log2_buckets) * HARM_STRIDE;
    uint64_t h = al_hash64(m->w, nw * sizeof(float), 0x68726d);
    h = al_hash64(m->bias, sizeof m->bias, h);
    return m->version >= 2 ? harm_lexicon_hash(&m->lex, h) : h;
}

int al_harm_save(const al_harm_model *m, const char *path)
{
    harm_header hd = {
        .version = HARM_VERSION, .heads = HARM_HEADS, .log2_buckets = (uint32_t)m->log2_buckets,
        .stride = HARM_STRIDE, .seed = m->seed, .word_max = HARM_WORD_NGRAM_MAX,
        .char_min = HARM_CHAR_NGRAM_MIN, .char_max = HARM_CHAR_NGRAM_MAX, .threshold = m->threshold,
        .checksum = payload_hash(m), .calib_a = m->calib_a, .calib_b = m->calib_b,
    };
    memcpy(hd.magic, HARM_MAGIC, 8);
    size_t nw = ((size_t)1 << m->log2_buckets) * HARM_STRIDE;
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    if (fwrite(&hd, sizeof hd, 1, f.fp) != 1 || fwrite(m->w, sizeof(float), nw, f.fp) != nw ||
        fwrite(m->bias, sizeof m->bias, 1, f.fp) != 1 || harm_lexicon_write(&m->lex, f.fp)) {
        al_atomic_abort(&f);
        return al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}

static al_harm_model *load_fail(FILE *fp, al_harm_model *m)
{
    if (fp)
        fclose(fp);
    al_harm_free(m);
    return NULL;
}

al_harm_model *al_harm_load(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        al_fail("%s: cannot open the harm model (train one with `align guard train`)", path);
        return NULL;
    }
    harm_header hd;
    if (fread(&hd, sizeof hd, 1, fp) != 1) {
        al_fail("%s: not a harm model: shorter than its 64-byte header", path);
        return load_fail(fp, NULL);
    }
    if (memcmp(hd.magic, HARM_MAGIC, 8) != 0) {
        al_fail("%s: not a harm model (magic is not %s)", path, HARM_MAGIC);
        return load_fail(fp, NULL);
    }
    if (hd.version < 1 || hd.version > HARM_VERSION) {
        al_fail("%s: harm model version %u; this build reads versions 1 to %d", path, hd.version, HARM_VERSION);
        return load_fail(fp, NULL);
    }
    if (hd.heads != HARM_HEADS || hd.stride != HARM_STRIDE) {
        al_fail("%s: header: %u heads with stride %u; expected %d heads (14 hazards + harmful), stride %d",
                path, hd.heads, hd.stride, HARM_HEADS, HARM_STRIDE);
        return load_fail(fp, NULL);
    }
    if (hd.log2_buckets < 10 || hd.log2_buckets > 24) {
        al_fail("%s: header: log2 buckets %u outside 10..24", path, hd.log2_buckets);
        return load_fail(fp, NULL);
    }
    if (hd.word_max != HARM_WORD_NGRAM_MAX || hd.char_min != HARM_CHAR_NGRAM_MIN ||
        hd.char_max != HARM_CHAR_NGRAM_MAX) {
        al_fail("%s: header: features are word 1..%u-grams and char %u..%u-grams; this build computes "
                "word 1..%d and char %d..%d",
                path, hd.word_max, hd.char_min, hd.char_max, HARM_WORD_NGRAM_MAX, HARM_CHAR_NGRAM_MIN,
                HARM_CHAR_NGRAM_MAX);
        return load_fail(fp, NULL);
    }
    if (!(hd.threshold > 0 && hd.threshold < 1)) {
        al_fail("%s: header: decision threshold %g outside (0, 1)", path, (double)hd.threshold);
        return load_fail(fp, NULL);
    }
    size_t nw = ((size_t)1 << hd.log2_buckets) * HARM_STRIDE;
    size_t expect = sizeof hd + (nw + HARM_STRIDE) * sizeof(float);
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (hd.version >= 2 && size >= 0 && (size_t)size >= expect + 12)
        expect = (size_t)size; /* the concept table's own counts are checked when it is read */
    if (size < 0 || (size_t)size != expect) {
        al_fail("%s: size %ld bytes; a model with 2^%u buckets has %zu (truncated or padded file)", path,
                ftell(fp), hd.log2_buckets, expect);
        return load_fail(fp, NULL);
    }
    fseek(fp, sizeof hd, SEEK_SET);
    al_harm_model *m = model_new((int)hd.log2_buckets, hd.seed, hd.threshold);
    if (!m)
        return load_fail(fp, NULL);
    m->version = hd.version;
    if (hd.version >= 2) {
        if (!(isfinite(hd.calib_a) && hd.calib_a > 0 && isfinite(hd.calib_b))) {
            al_fail("%s: header: calibration a = %g, b = %g (a must be positive and both finite)", path,
                    (double)hd.calib_a, (double)hd.calib_b);
            return load_fail(fp, m);
        }
        m->calib_a = hd.calib_a, m->calib_b = hd.calib_b;
    }
    if (fread(m->w, sizeof(float), nw, fp) != nw || fread(m->bias, sizeof m->bias, 1, fp) != 1) {
        al_fail("%s: read failed", path);
        return load_fail(fp, m);
    }
    if (hd.version >= 2 &&
        harm_lexicon_read(&m->lex, fp, (size_t)size - sizeof hd - (nw + HARM_STRIDE) * sizeof(float), path))
        return load_fail(fp, m);
    fclose(fp);
    if (payload_hash(m) != hd.checksum) {
        al_fail("%s: checksum mismatch: the weights are corrupted", path);
        return load_fail(NULL, m);
    }
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(m->w[i])) {
            al_fail("%s: weight %zu is not finite", path, i);
            return load_fail(NULL, m);
        }
    return m;
}
