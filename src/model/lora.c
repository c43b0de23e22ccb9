/* LoRA adapters: attach, save and load in PEFT's layout, merge into the base.
 * The forward and backward passes live in train_ctx.c; see include/align/model.h. */
#include "align/model.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lora.c assumes a little-endian host"
#endif

/* By bit position: PEFT's module names and where they sit in a layer. */
static const char *const target_names[AL_LORA_N_TARGETS] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"};
static const char *const target_short[AL_LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const target_parent[AL_LORA_N_TARGETS] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                             "mlp",       "mlp",       "mlp"};

const char *al_lora_target_name(int t) { return t >= 0 && t < AL_LORA_N_TARGETS ? target_names[t] : "?"; }

int al_lora_parse_targets(const char *list, unsigned *out)
{
    unsigned mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool found = false;
        if (n == 3 && !strncmp(p, "all", 3)) {
            mask |= AL_LORA_ALL;
            found = true;
        }
        for (int t = 0; t < AL_LORA_N_TARGETS && !found; t++)
            if ((strlen(target_short[t]) == n && !strncmp(p, target_short[t], n)) ||
                (strlen(target_names[t]) == n && !strncmp(p, target_names[t], n))) {
                mask |= 1u << t;
                found = true;
            }
        if (!found)
            return al_fail("LoRA targets: unknown module '%.*s' (expected q, k, v, o, gate, up, down or all)", (int)n,
                           p);
        p = e ? e + 1 : NULL;
    }
    if (!mask)
        return al_fail("LoRA targets: empty list");
    *out = mask;
    return 0;
}

static void target_dims(const al_config *c, int t, int *in, int *out)
{
    const int D = c->dim, Hd = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int ins[AL_LORA_N_TARGETS] = {D, D, D, qd, D, D, Hd};
    const int outs[AL_LORA_N_TARGETS] = {qd, kvd, kvd, D, Hd, Hd, D};
    *in = ins[t];
    *out = outs[t];
}

/* The base weight [out][in] that target t of layer l adapts. */
static float *base_weight(al_model *m, int l, int t)
{
    int in, out;
    target_dims(&m->cfg, t, &in, &out);
    float *w[AL_LORA_N_TARGETS] = {m->w.wq, m->w.wk, m->w.wv, m->w.wo, m->w.w1, m->w.w3, m->w.w2};
    return w[t] + (size_t)l * out * in;
}

int al_lora_attach(al_model *m, const al_lora_config *c)
{
    if (!m->params)
        return al_fail("LoRA: the model is empty");
    if (m->lora)
        return al_fail("LoRA: the model already has adapters attached (detach or merge them first)");
    /* PEFT's GPT-2 adapters wrap the fused Conv1D c_attn (not q/k/v apart), and the MLP has
     * no up projection (w3): neither is supported yet. */
    if (m->cfg.arch != AL_ARCH_LLAMA)
        return al_fail("LoRA: GPT-2 models are not supported yet (adapters target the Llama layout's projections; "
                       "train GPT-2 models in full)");
    if (c->rank < 1 || c->rank > 65536)
        return al_fail("LoRA: rank %d must be in [1, 65536]", c->rank);
    if (!(c->alpha > 0) || !isfinite(c->alpha))
        return al_fail("LoRA: alpha %g must be a positive number", (double)c->alpha);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return al_fail("LoRA: dropout %g must be in [0, 1)", (double)c->dropout);
    if (!c->targets || (c->targets & ~(unsigned)AL_LORA_ALL))
        return al_fail("LoRA: targets 0x%x must be a non-empty set of AL_LORA_* bits", c->targets);
    const al_config *mc = &m->cfg;
    const int L = mc->n_layers;
    size_t n = 0;
    for (int t = 0; t < AL_LORA_N_TARGETS; t++)
        if (c->targets & (1u << t)) {
            int in, out;
            target_dims(mc, t, &in, &out);
            n += (size_t)c->rank * ((size_t)in + (size_t)out);
        }
    n *= (size_t)L;
    al_lora *lo = calloc(1, sizeof *lo);
    if (!lo)
        return al_fail("out of memory");
    lo->ad = calloc((size_t)L * AL_LORA_N_TARGETS, sizeof *lo->ad);
    lo->params = lo->ad ? al_alloc(n * sizeof(float)) : NULL;
    lo->grads = lo->params ? al_alloc(n * sizeof(float)) : NULL;
    if (!lo->grads) {
        al_free(lo->params);
        free(lo->ad);
        free(lo);
        return al_fail("LoRA: out of memory for %zu adapter parameters", n);
    }
    lo->c = *c;
    lo->scale = c->alpha / (float)c->rank;
    lo->n_layers = L;
    lo->n_params = n;
    lo->enabled = true;
    lo->train = true;
    uint64_t rng = c->seed ? c->seed : 0x5eedf00dull;
    size_t off = 0;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            if (!(c->targets & (1u << t)))
                continue;
            al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
            target_dims(mc, t, &ad->in, &ad->out);
            size_t na = (size_t)c->rank * ad->in, nb = (size_t)ad->out * c->rank;
            ad->A = lo->params + off;
            ad->gA = lo->grads + off;
            ad->B = ad->A + na;
            ad->gB = ad->gA + na;
            off += na + nb;
            /* kaiming_uniform(a = sqrt(5)): bound = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in) */
            const float bound = 1.0f / sqrtf((float)ad->in);
            for (size_t i = 0; i < na; i++)
                ad->A[i] = (2.0f * al_xorshift_f32(&rng) - 1.0f) * bound;
        }
    m->lora = lo;
    return 0;
}

void al_lora_set_enabled(al_model *m, bool on)
{
    if (m->lora)
        m->lora->enabled = on;
}

void al_lora_detach(al_model *m)
{
    al_lora *lo = m->lora;
    if (!lo)
        return;
    al_free(lo->params);
    al_free(lo->grads);
    free(lo->ad);
    free(lo);
    m->lora = NULL;
}

void al_lora_zero_grads(al_model *m)
{
    if (m->lora)
        memset(m->lora->grads, 0, m->lora->n_params * sizeof(float));
}

int al_lora_merge(al_model *m)
{
    al_lora *lo = m->lora;
    if (!lo)
        return al_fail("LoRA merge: the model has no adapters attached");
    for (int l = 0; l < lo->n_layers; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
            if (!ad->A)
                continue;
            /* W[out][in] += scale B[out][r] A[r][in] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ad->out, ad->in, lo->c.rank, lo->scale, ad->B,
                        lo->c.rank, ad->A, ad->in, 1.0f, base_weight(m, l, t), ad->in);
        }
    al_lora_detach(m);
    return 0;
}

/* ---- files ---- */

/* q/k lora_B rows of an interleaved-rope model in HF's half-split order: per head, HF
 * row j < hd/2 is ours 2j, HF row hd/2 + j is ours 2j + 1 (as for wq/wk themselves). */
static bool permuted(const al_config *c, int t) { return c->rope == AL_ROPE_INTERLEAVED && (t == 0 || t == 1); }

static int hf_row_to_ours(const al_config *c, int row)
{
    const int hd = c->head_dim, half = hd / 2, h = row / hd, j = row % hd;
    return h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
}

static void tensor_name(char *buf, size_t n, int l, int t, bool is_b)
{
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l, target_parent[t], target_names[t],
             is_b ? 'B' : 'A');
}

/* The shortest decimal that reads back as the float f (0.05f -> 0.05, not 0.0500000007). */
static double short_decimal(float f)
{
    char buf[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    return strtod(buf, NULL);
}

static int write_config(const al_lora *lo, const char *path)
{
    json_t *root = json_object(), *tm = json_array();
    if (!root || !tm) {
        json_decref(root);
        json_decref(tm);
        return al_fail("out of memory");
    }
    for (int t = 0; t < AL_LORA_N_TARGETS; t++)
        if (lo->c.targets & (1u << t))
            json_array_append_new(tm, json_string(target_names[t]));
    json_object_set_new(root, "peft_type", json_string("LORA"));
    json_object_set_new(root, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(root, "r", json_integer(lo->c.rank));
    json_object_set_new(root, "lora_alpha", json_real(short_decimal(lo->c.alpha)));
    json_object_set_new(root, "lora_dropout", json_real(short_decimal(lo->c.dropout)));
    json_object_set_new(root, "target_modules", tm);
    json_object_set_new(root, "bias", json_string("none"));
    json_object_set_new(root, "fan_in_fan_out", json_false());
    json_object_set_new(root, "use_rslora", json_false());
    json_object_set_new(root, "init_lora_weights", json_true());
    json_object_set_new(root, "inference_mode", json_true());
    json_object_set_new(root, "modules_to_save", json_null());
    json_object_set_new(root, "base_model_name_or_path", json_null());
    int rc = al_write_json_atomic(path, root);
    json_decref(root);
    return rc;
}

int al_lora_save(const al_model *m, const char *dir)
{
    const al_lora *lo = m->lora;
    if (!lo)
        return al_fail("%s: the model has no LoRA adapters to save", dir);
    const al_config *c = &m->cfg;
    const int r = lo->c.rank;
    al_buf hdr = {0};
    al_atomic_file af = {0};
    char *st_path = al_path_join(dir, "adapter_model.safetensors"), *cfg_path = al_path_join(dir, "adapter_config.json");
    int rc = -1;
    if (!st_path || !cfg_path) {
        al_fail("out of memory");
        goto done;
    }
    if (al_buf_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}"))
        goto done;
    uint64_t off = 0;
    for (int l = 0; l < lo->n_layers; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
            if (!ad->A)
                continue;
            for (int b = 0; b < 2; b++) {
                char name[160];
                tensor_name(name, sizeof name, l, t, b);
                int rows = b ? ad->out : r, cols = b ? r : ad->in;
                uint64_t bytes = (uint64_t)rows * (uint64_t)cols * 4;
                if (al_buf_printf(&hdr, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}",
                                  name, rows, cols, (unsigned long long)off, (unsigned long long)(off + bytes)))
                    goto done;
                off += bytes;
            }
        }
    if (al_buf_append(&hdr, "}", 1))
        goto done;
    while ((8 + hdr.len) % 8)
        if (al_buf_append(&hdr, " ", 1))
            goto done;
    if (al_mkdir_p(dir) || al_atomic_open(&af, st_path))
        goto done;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    fwrite(len8, 1, 8, af.fp);
    fwrite(hdr.data, 1, hdr.len, af.fp);
    for (int l = 0; l < lo->n_layers; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
            const al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
            if (!ad->A)
                continue;
            fwrite(ad->A, sizeof(float), (size_t)r * ad->in, af.fp);
            if (!permuted(c, t)) {
                fwrite(ad->B, sizeof(float), (size_t)ad->out * r, af.fp);
            } else {
                for (int row = 0; row < ad->out; row++)
                    fwrite(ad->B + (size_t)hf_row_to_ours(c, row) * r, sizeof(float), (size_t)r, af.fp);
            }
        }
    if (ferror(af.fp)) {
        al_atomic_abort(&af);
        al_fail("%s: write failed", st_path);
        goto done;
    }
    if (al_atomic_commit(&af) || write_config(lo, cfg_path))
        goto done;
    rc = 0;
done:
    al_buf_free(&hdr);
    free(st_path);
    free(cfg_path);
    return rc;
}

/* Reads adapter_config.json into c (seed 0). */
static int read_config(const char *path, al_lora_config *c)
{
    al_buf text = {0};
    if (al_read_file(path, &text))
        return -1;
    json_error_t err;
    json_t *root = json_loadb(text.data, text.len, 0, &err);
    al_buf_free(&text);
    if (!root)
        return al_fail("%s: not valid JSON (line %d): %s", path, err.line, err.text);
    int rc = -1;
    memset(c, 0, sizeof *c);
    json_t *v;
    if (!json_is_object(root)) {
        al_fail("%s: expected a JSON object", path);
        goto done;
    }
    v = json_object_get(root, "peft_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "LORA"))) {
        al_fail("%s: peft_type must be \"LORA\"", path);
        goto done;
    }
    v = json_object_get(root, "r");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65536) {
        al_fail("%s: r: expected an integer in [1, 65536]", path);
        goto done;
    }
    c->rank = (int)json_integer_value(v);
    v = json_object_get(root, "lora_alpha");
    if (!json_is_number(v) || !(json_number_value(v) > 0)) {
        al_fail("%s: lora_alpha: expected a positive number", path);
        goto done;
    }
    c->alpha = (float)json_number_value(v);
    v = json_object_get(root, "lora_dropout");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) < 1)) {
            al_fail("%s: lora_dropout: expected a number in [0, 1)", path);
            goto done;
        }
        c->dropout = (float)json_number_value(v);
    }
    v = json_object_get(root, "bias");
    if (v && !json_is_null(v) && (!json_is_string(v) || strcmp(json_string_value(v), "none"))) {
        al_fail("%s: bias: only \"none\" is supported", path);
        goto done;
    }
    v = json_object_get(root, "use_rslora");
    if (json_is_true(v)) {
        al_fail("%s: use_rslora is not supported", path);
        goto done;
    }
    v = json_object_get(root, "fan_in_fan_out");
    if (json_is_true(v)) {
        al_fail("%s: fan_in_fan_out is not supported (Llama uses nn.Linear)", path);
        goto done;
    }
    const char *pattern_keys[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(root, pattern_keys[i]);
        if (v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0)) {
            al_fail("%s: %s is not supported", path, pattern_keys[i]);
            goto done;
        }
    }
    v = json_object_get(root, "target_modules");
    if (!json_is_array(v) || json_array_size(v) == 0) {
        al_fail("%s: target_modules: expected a non-empty list of module names", path);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        unsigned bit = 0;
        if (!json_is_string(e) || al_lora_parse_targets(json_string_value(e), &bit)) {
            al_fail("%s: target_modules[%zu]: expected one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
                    "down_proj",
                    path, i);
            goto done;
        }
        c->targets |= bit;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* Element i of a tensor stored as dtype dt (0 F32, 1 F16, 2 BF16). */
static float elem(const uint8_t *p, int dt, size_t i)
{
    if (dt == 0) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    if (dt == 1)
        return al_f16_to_f32(h);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* "base_model.model.model.layers.L.PARENT.MODULE.lora_X.weight" -> layer, target, is_b. */
static int parse_name(const char *name, int *layer, int *target, int *is_b)
{
    static const char prefix[] = "base_model.model.model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1))
        return -1;
    const char *p = name + sizeof prefix - 1, *q = p;
    long v = 0;
    while (*q >= '0' && *q <= '9' && q - p < 7)
        v = v * 10 + (*q++ - '0');
    if (q == p || *q != '.' || (q - p > 1 && *p == '0'))
        return -1;
    q++;
    for (int t = 0; t < AL_LORA_N_TARGETS; t++) {
        char rest[96];
        for (int b = 0; b < 2; b++) {
            snprintf(rest, sizeof rest, "%s.%s.lora_%c.weight", target_parent[t], target_names[t], b ? 'B' : 'A');
            if (!strcmp(q, rest)) {
                *layer = (int)v;
                *target = t;
                *is_b = b;
                return 0;
            }
        }
    }
    return -1;
}

static int load_tensors(al_model *m, const char *path)
{
    al_lora *lo = m->lora;
    const al_config *c = &m->cfg;
    const int r = lo->c.rank;
    al_mapped f = {0};
    json_t *root = NULL;
    char *seen = calloc((size_t)lo->n_layers * AL_LORA_N_TARGETS * 2, 1);
    int rc = -1;
    if (!seen) {
        al_fail("out of memory");
        goto done;
    }
    if (al_map_file(path, &f))
        goto done;
    if (f.size < 8) {
        al_fail("%s: file is shorter than the 8-byte header length", path);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f.data[i];
    if (hlen > f.size - 8) {
        al_fail("%s: header length %llu is larger than the rest of the file", path, (unsigned long long)hlen);
        goto done;
    }
    const uint64_t data_size = f.size - 8 - hlen;
    const uint8_t *data = f.data + 8 + hlen;
    json_error_t err;
    root = json_loadb((const char *)f.data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!root || !json_is_object(root)) {
        al_fail("%s: header is not a JSON object%s%s", path, root ? "" : ": ", root ? "" : err.text);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__"))
            continue;
        int l, t, b;
        if (parse_name(key, &l, &t, &b)) {
            al_fail("%s: tensor '%s': not a LoRA weight align knows (expected "
                    "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight and the like)",
                    path, key);
            goto done;
        }
        if (l >= lo->n_layers || !(lo->c.targets & (1u << t))) {
            al_fail("%s: tensor '%s': %s", path, key,
                    l >= lo->n_layers ? "layer out of range for this model" : "module not in target_modules");
            goto done;
        }
        al_lora_adapter *ad = &lo->ad[(size_t)l * AL_LORA_N_TARGETS + t];
        const int rows = b ? ad->out : r, cols = b ? r : ad->in;
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
               *off = json_object_get(v, "data_offsets");
        int dtype = -1;
        if (json_is_string(dt))
            dtype = !strcmp(json_string_value(dt), "F32")    ? 0
                    : !strcmp(json_string_value(dt), "F16")  ? 1
                    : !strcmp(json_string_value(dt), "BF16") ? 2
                                                              : -1;
        if (dtype < 0) {
            al_fail("%s: tensor '%s': dtype must be F32, F16 or BF16", path, key);
            goto done;
        }
        if (!json_is_array(sh) || json_array_size(sh) != 2 || !json_is_integer(json_array_get(sh, 0)) ||
            !json_is_integer(json_array_get(sh, 1)) || json_integer_value(json_array_get(sh, 0)) != rows ||
            json_integer_value(json_array_get(sh, 1)) != cols) {
            al_fail("%s: tensor '%s': shape must be [%d, %d] (r = %d in adapter_config.json)", path, key, rows, cols,
                    r);
            goto done;
        }
        json_t *o0 = json_array_get(off, 0), *o1 = json_array_get(off, 1);
        size_t esz = dtype ? 2 : 4, numel = (size_t)rows * (size_t)cols;
        if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(o0) || !json_is_integer(o1) ||
            json_integer_value(o0) < 0 || json_integer_value(o1) < json_integer_value(o0) ||
            (uint64_t)json_integer_value(o1) > data_size ||
            (uint64_t)(json_integer_value(o1) - json_integer_value(o0)) != numel * esz) {
            al_fail("%s: tensor '%s': data_offsets out of range or of the wrong size", path, key);
            goto done;
        }
        char *s = &seen[((size_t)l * AL_LORA_N_TARGETS + t) * 2 + b];
        if (*s) {
            al_fail("%s: tensor '%s': stored twice", path, key);
            goto done;
        }
        *s = 1;
        const uint8_t *src = data + json_integer_value(o0);
        float *dst = b ? ad->B : ad->A;
        for (int row = 0; row < rows; row++) {
            int ours = b && permuted(c, t) ? hf_row_to_ours(c, row) : row;
            for (int col = 0; col < cols; col++)
                dst[(size_t)ours * cols + col] = elem(src, dtype, (size_t)row * cols + col);
        }
    }
    for (int l = 0; l < lo->n_layers; l++)
        for (int t = 0; t < AL_LORA_N_TARGETS; t++)
            for (int b = 0; b < 2 && (lo->c.targets & (1u << t)); b++)
                if (!seen[((size_t)l * AL_LORA_N_TARGETS + t) * 2 + b]) {
                    char name[160];
                    tensor_name(name, sizeof name, l, t, b);
                    al_fail("%s: missing tensor '%s'", path, name);
                    goto done;
                }
    rc = 0;
done:
    json_decref(root);
    al_unmap_file(&f);
    free(seen);
    return rc;
}

int al_lora_load(al_model *m, const char *dir)
{
    if (m->lora)
        return al_fail("%s: the model already has LoRA adapters attached", dir);
    char *st_path = al_path_join(dir, "adapter_model.safetensors"), *cfg_path = al_path_join(dir, "adapter_config.json");
    int rc = -1;
    al_lora_config c;
    if (!st_path || !cfg_path) {
        al_fail("out of memory");
        goto done;
    }
    if (!al_file_exists(cfg_path) || !al_file_exists(st_path)) {
        al_fail("%s: expected adapter_config.json and adapter_model.safetensors (a PEFT LoRA adapter)", dir);
        goto done;
    }
    if (read_config(cfg_path, &c) || al_lora_attach(m, &c))
        goto done;
    if (load_tensors(m, st_path)) {
        al_lora_detach(m);
        goto done;
    }
    rc = 0;
done:
    free(st_path);
    free(cfg_path);
    return rc;
}
