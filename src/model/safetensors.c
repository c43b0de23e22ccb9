/* Hugging Face safetensors (single file, F32/F16/BF16) with config.json beside it.
 *
 * File layout: u64 little-endian N, N bytes of JSON header, then the data area.  The
 * header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} with
 * offsets relative to the data area; an optional "__metadata__" maps strings to strings.
 * Loading validates the whole header (types, dtypes, sizes, ranges, overlaps, names and
 * shapes against config.json, completeness) before a single tensor byte is read.
 * Saving writes F32 in HF's names and half-split rotary layout; see docs/formats.md.
 * GPT-2 models use GPT2LMHeadModel's names and storage (fused c_attn, Conv1D weights stored
 * [in][out]): the tables and storage_of below. */
#include "align/model.h"
#include "tensor_names.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* the format's own limit */

typedef enum { DT_F32, DT_F16, DT_BF16, DT_OTHER } st_dtype; /* DT_OTHER: an ignored buffer's */
static const size_t dt_size[] = {4, 2, 2, 0};

/* align's tensor kinds and their HF names (per-layer ones under model.layers.N.). */
static const tn_entry hf_names[] = {
    {"tok_emb", "model.embed_tokens.weight", false},
    {"rms_att", "input_layernorm.weight", true},
    {"wq", "self_attn.q_proj.weight", true},
    {"wk", "self_attn.k_proj.weight", true},
    {"wv", "self_attn.v_proj.weight", true},
    {"wo", "self_attn.o_proj.weight", true},
    {"rms_ffn", "post_attention_layernorm.weight", true},
    {"w1", "mlp.gate_proj.weight", true},
    {"w2", "mlp.down_proj.weight", true},
    {"w3", "mlp.up_proj.weight", true},
    {"rms_final", "model.norm.weight", false},
    {"wcls", "lm_head.weight", false},
    {"bq", "self_attn.q_proj.bias", true},
    {"bk", "self_attn.k_proj.bias", true},
    {"bv", "self_attn.v_proj.bias", true},
    {"score", "score.weight", false},
};
#define N_KINDS ((int)(sizeof hf_names / sizeof hf_names[0]))
_Static_assert(N_KINDS <= TN_MAX_KINDS, "tn_layout holds every kind");
static const tn_table hf_table = {hf_names, N_KINDS, "model.layers.", "HF"};

/* GPT-2 (GPT2LMHeadModel): names under "transformer." (GPT2Model files have no prefix), the
 * heads outside it.  c_attn holds q, k and v in one tensor, named here for wq and bq (wk,
 * wv, bk, bv have no name of their own), and the Conv1D weights (c_attn, c_proj, c_fc) are
 * stored [in][out]: see storage_of. */
static const tn_entry gpt2_names[] = {
    {"tok_emb", "wte.weight", false},       {"pos_emb", "wpe.weight", false},
    {"rms_att", "ln_1.weight", true},       {"bln_att", "ln_1.bias", true},
    {"wq", "attn.c_attn.weight", true},     {"bq", "attn.c_attn.bias", true},
    {"wo", "attn.c_proj.weight", true},     {"bo", "attn.c_proj.bias", true},
    {"rms_ffn", "ln_2.weight", true},       {"bln_ffn", "ln_2.bias", true},
    {"w1", "mlp.c_fc.weight", true},        {"b1", "mlp.c_fc.bias", true},
    {"w2", "mlp.c_proj.weight", true},      {"b2", "mlp.c_proj.bias", true},
    {"rms_final", "ln_f.weight", false},    {"bln_final", "ln_f.bias", false},
    {"wcls", "lm_head.weight", false},      {"score", "score.weight", false},
};
#define N_GPT2_KINDS ((int)(sizeof gpt2_names / sizeof gpt2_names[0]))
_Static_assert(N_GPT2_KINDS <= TN_MAX_KINDS, "tn_layout holds every kind");
static const tn_table gpt2_table = {gpt2_names, N_GPT2_KINDS, "h.", "HF GPT-2"};

/* A family's names: its table, the prefix of every name but the heads' (wcls, score), and
 * what to call the family in messages. */
typedef struct hf_format {
    const tn_table *t;
    const char *prefix;
    const char *family;
} hf_format;
static const hf_format llama_format = {&hf_table, "", "Llama/Qwen2"};
static const hf_format gpt2_format = {&gpt2_table, "transformer.", "GPT-2"};

static const hf_format *format_of(const al_config *c) { return c->arch == AL_ARCH_GPT2 ? &gpt2_format : &llama_format; }

static bool is_head(const char *kind) { return !strcmp(kind, "wcls") || !strcmp(kind, "score"); }

/* The file's name of descriptor d. */
static void hf_name(char *buf, size_t n, const hf_format *f, const al_tensor_desc *d)
{
    char rest[96];
    tn_format(rest, sizeof rest, f->t, d);
    snprintf(buf, n, "%s%s", is_head(d->kind) ? "" : f->prefix, rest);
}

/* tn_parse after the optional prefix; the heads never carry it. */
static int hf_parse(const hf_format *f, const char *name, int *kind, long *layer)
{
    const size_t pl = strlen(f->prefix);
    const bool prefixed = pl && !strncmp(name, f->prefix, pl);
    if (tn_parse(f->t, name + (prefixed ? pl : 0), kind, layer))
        return -1;
    return prefixed && is_head(f->t->e[*kind].kind) ? -1 : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Buffers some checkpoints carry that are not parameters: Llama's rotary inverse
 * frequencies, GPT-2's causal mask (attn.bias) and its masked_bias constant. */
static bool ignored_name(const al_config *c, const char *name)
{
    if (c->arch == AL_ARCH_GPT2)
        return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
    return ends_with(name, "rotary_emb.inv_freq");
}

/* Index of the descriptor of kind in layer; -1 if the layout has none. */
static int desc_index(const tn_layout *lo, const char *kind, int layer)
{
    for (int i = 0; i < lo->n; i++)
        if (lo->d[i].layer == layer && !strcmp(lo->d[i].kind, kind))
            return i;
    return -1;
}

/* How one file tensor holds align's tensors: parts (descriptor indices) concatenated along
 * the output dimension, the whole stored [in][out] when transposed (a Conv1D weight), so
 * the file's shape is [cols][rows] (transposed), [rows][cols] or [rows] for vectors, with
 * rows summed over the parts. */
typedef struct st_storage {
    int n_parts, part[3];
    bool transposed;
    int rows, cols; /* align's orientation, rows over all parts; cols 0 for vectors */
} st_storage;

/* GPT-2: c_attn fuses q | k | v (weight and bias); c_attn, attn.c_proj, mlp.c_fc and
 * mlp.c_proj weights are Conv1D ([in][out], y = x W).  Everything else (and all of Llama)
 * is stored as align stores it. */
static void storage_of(const al_config *c, const tn_layout *lo, int d, st_storage *s)
{
    const al_tensor_desc *t = &lo->d[d];
    s->n_parts = 1;
    s->part[0] = d;
    s->transposed = false;
    if (c->arch == AL_ARCH_GPT2) {
        const bool q = !strcmp(t->kind, "wq"), bq = !strcmp(t->kind, "bq");
        if (q || bq) {
            s->part[1] = desc_index(lo, q ? "wk" : "bk", t->layer);
            s->part[2] = desc_index(lo, q ? "wv" : "bv", t->layer);
            s->n_parts = 3;
        }
        s->transposed = t->cols && (q || !strcmp(t->kind, "wo") || !strcmp(t->kind, "w1") || !strcmp(t->kind, "w2"));
    }
    s->rows = 0;
    s->cols = t->cols;
    for (int p = 0; p < s->n_parts; p++)
        s->rows += lo->d[s->part[p]].rows;
}

static size_t storage_numel(const st_storage *s) { return (size_t)s->rows * (size_t)(s->cols ? s->cols : 1); }

/* Where output row o (over all parts), input column i of a tensor sits in the file's order. */
static size_t file_index(const st_storage *s, size_t o, size_t i)
{
    return s->transposed ? i * (size_t)s->rows + o : o * (size_t)(s->cols ? s->cols : 1) + i;
}

/* The file's values (in its order) into the parameter block. */
static void storage_scatter(const st_storage *s, const tn_layout *lo, float *params, const float *file)
{
    const size_t cols = (size_t)(s->cols ? s->cols : 1);
    size_t o = 0; /* output row over all parts */
    for (int p = 0; p < s->n_parts; p++) {
        const al_tensor_desc *t = &lo->d[s->part[p]];
        for (int r = 0; r < t->rows; r++, o++)
            for (size_t i = 0; i < cols; i++)
                params[t->offset + (size_t)r * cols + i] = file[file_index(s, o, i)];
    }
}

/* The parameters into the file's order. */
static void storage_gather(const st_storage *s, const tn_layout *lo, const float *params, float *file)
{
    const size_t cols = (size_t)(s->cols ? s->cols : 1);
    size_t o = 0;
    for (int p = 0; p < s->n_parts; p++) {
        const al_tensor_desc *t = &lo->d[s->part[p]];
        for (int r = 0; r < t->rows; r++, o++)
            for (size_t i = 0; i < cols; i++)
                file[file_index(s, o, i)] = params[t->offset + (size_t)r * cols + i];
    }
}

/* Maps an HF tensor name to a descriptor index: >= 0, -1 for a buffer to ignore, or -2
 * (error recorded) for a name this config has no place for. */
static int map_name(const tn_layout *lo, const al_config *c, const char *name)
{
    if (ignored_name(c, name))
        return -1;
    const hf_format *f = format_of(c);
    int kind;
    long layer;
    if (hf_parse(f, name, &kind, &layer)) {
        al_fail("tensor '%s': unexpected tensor name (not part of a %s model align supports)", name, f->family);
        return -2;
    }
    if (layer >= c->n_layers) {
        al_fail("tensor '%s': layer %ld is out of range (config.json has %s %d)", name, layer,
                c->arch == AL_ARCH_GPT2 ? "n_layer" : "num_hidden_layers", c->n_layers);
        return -2;
    }
    const char *k = f->t->e[kind].kind;
    if (lo->kind_start[kind] < 0) {
        if (!strcmp(k, "wcls"))
            al_fail("tensor '%s': unexpected: config.json has tie_word_embeddings true", name);
        else if (!strcmp(k, "score"))
            al_fail("tensor '%s': unexpected: a classification head, but config.json's architecture is a causal LM",
                    name);
        else
            al_fail("tensor '%s': unexpected: a q/k/v bias, but the config has none (only Qwen2 has them)", name);
        return -2;
    }
    return lo->kind_start[kind] + (layer < 0 ? 0 : (int)layer);
}

typedef struct st_entry {
    const char *name;
    st_dtype dt;
    uint64_t begin, end;
    int desc; /* layout index, or -1 when ignored */
} st_entry;

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_dtype(const char *s, st_dtype *dt)
{
    if (!strcmp(s, "F32"))
        *dt = DT_F32;
    else if (!strcmp(s, "F16"))
        *dt = DT_F16;
    else if (!strcmp(s, "BF16"))
        *dt = DT_BF16;
    else
        return -1;
    return 0;
}

/* A JSON integer in [0, 2^63); -1 otherwise. */
static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Checks one header entry's structure and byte range (relative to a data area of
 * data_size bytes); fills e and the shape (rank up to 8).  An ignored buffer (any_dtype)
 * may have any dtype (GPT-2's causal mask is often BOOL or U8). */
static int check_entry(const char *name, json_t *v, uint64_t data_size, st_entry *e, uint64_t shape[8],
                       int *rank, bool any_dtype)
{
    if (!json_is_object(v))
        return al_fail("tensor '%s': expected an object with dtype, shape and data_offsets", name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!dt)
        return al_fail("tensor '%s': missing dtype", name);
    if (!json_is_string(dt))
        return al_fail("tensor '%s': dtype: expected a string", name);
    if (!sh)
        return al_fail("tensor '%s': missing shape", name);
    if (!json_is_array(sh))
        return al_fail("tensor '%s': shape: expected an array of non-negative integers", name);
    if (!off)
        return al_fail("tensor '%s': missing data_offsets", name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return al_fail("tensor '%s': data_offsets: expected an array of two non-negative integers", name);
    if (parse_dtype(json_string_value(dt), &e->dt)) {
        if (!any_dtype)
            return al_fail("tensor '%s': unsupported dtype '%s' (F32, F16 and BF16 are supported)", name,
                           json_string_value(dt));
        e->dt = DT_OTHER; /* its size is not checked: it is never read */
    }
    size_t r = json_array_size(sh);
    if (r > 8)
        return al_fail("tensor '%s': shape: rank %zu is too large", name, r);
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < r; i++) {
        if (get_u64(json_array_get(sh, i), &shape[i]))
            return al_fail("tensor '%s': shape: expected an array of non-negative integers", name);
        if (shape[i] && numel > UINT64_MAX / shape[i])
            overflow = true;
        else
            numel *= shape[i];
    }
    *rank = (int)r;
    if (get_u64(json_array_get(off, 0), &e->begin) || get_u64(json_array_get(off, 1), &e->end))
        return al_fail("tensor '%s': data_offsets: expected an array of two non-negative integers", name);
    if (e->end < e->begin)
        return al_fail("tensor '%s': data_offsets: end %llu is before begin %llu", name,
                       (unsigned long long)e->end, (unsigned long long)e->begin);
    if (e->end > data_size)
        return al_fail("tensor '%s': data_offsets: end %llu is beyond the data area (%llu bytes; file truncated?)",
                       name, (unsigned long long)e->end, (unsigned long long)data_size);
    if (e->dt != DT_OTHER &&
        (overflow || numel > UINT64_MAX / dt_size[e->dt] || numel * dt_size[e->dt] != e->end - e->begin))
        return al_fail("tensor '%s': data_offsets span %llu bytes, but the shape and dtype need %s", name,
                       (unsigned long long)(e->end - e->begin), overflow ? "more than 2^64" : "a different size");
    e->name = name;
    return 0;
}

static void format_shape(char *buf, size_t n, const uint64_t *shape, int rank)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

static uint64_t header_len(const al_mapped *f)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | f->data[i];
    return h;
}

/* Validates the header of a mapped file against c and fills entries (count *n).
 * Nothing beyond the header is read. */
static int validate(const al_mapped *f, const al_config *c, const tn_layout *lo, json_t **root_out,
                    st_entry **entries_out, int *n_out)
{
    *root_out = NULL;
    *entries_out = NULL;
    *n_out = 0;
    if (f->size < 8)
        return al_fail("file is %zu bytes, shorter than the 8-byte header length", f->size);
    const uint64_t hlen = header_len(f);
    if (hlen > f->size - 8)
        return al_fail("header length %llu is larger than the rest of the file (%zu bytes; truncated or not "
                       "safetensors?)",
                       (unsigned long long)hlen, f->size - 8);
    if (hlen > ST_MAX_HEADER)
        return al_fail("header length %llu exceeds the format's 100 MB limit", (unsigned long long)hlen);
    const uint64_t data_size = f->size - 8 - hlen;
    json_error_t err;
    json_t *root = json_loadb((const char *)f->data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return al_fail("header is not valid JSON (at byte %d): %s", err.position, err.text);
    *root_out = root;
    if (!json_is_object(root))
        return al_fail("header is not a JSON object");

    size_t n_keys = json_object_size(root);
    st_entry *e = calloc(n_keys ? n_keys : 1, sizeof *e);
    char *seen = calloc((size_t)lo->n, 1);
    if (!e || !seen) {
        free(e);
        free(seen);
        return al_fail("out of memory");
    }
    *entries_out = e;
    int n = 0, rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__")) {
            const char *k2;
            json_t *v2;
            if (!json_is_object(v)) {
                rc = al_fail("__metadata__: expected an object of strings");
                break;
            }
            json_object_foreach(v, k2, v2)
            {
                if (!json_is_string(v2)) {
                    rc = al_fail("__metadata__: '%s': expected a string", k2);
                    break;
                }
            }
            if (rc)
                break;
            continue;
        }
        uint64_t shape[8] = {0};
        int rank = 0;
        if ((rc = check_entry(key, v, data_size, &e[n], shape, &rank, ignored_name(c, key))))
            break;
        int d = map_name(lo, c, key);
        if (d == -2) {
            rc = -1;
            break;
        }
        e[n].desc = d;
        if (d >= 0) {
            st_storage st;
            storage_of(c, lo, d, &st);
            /* the file's shape: [out][in] as align, [in][out] for a Conv1D weight */
            const uint64_t want0 = (uint64_t)(st.transposed ? st.cols : st.rows), want1 = (uint64_t)(st.transposed ? st.rows : st.cols);
            bool ok = st.cols ? rank == 2 && shape[0] == want0 && shape[1] == want1 : rank == 1 && shape[0] == want0;
            if (!ok) {
                char got[128];
                format_shape(got, sizeof got, shape, rank);
                if (st.cols)
                    rc = al_fail("tensor '%s': shape %s, but config.json implies [%llu, %llu]", key, got,
                                 (unsigned long long)want0, (unsigned long long)want1);
                else
                    rc = al_fail("tensor '%s': shape %s, but config.json implies [%llu]", key, got,
                                 (unsigned long long)want0);
                break;
            }
            if (seen[d]) {
                rc = al_fail("tensor '%s': stored twice", key);
                break;
            }
            for (int p = 0; p < st.n_parts; p++)
                seen[st.part[p]] = 1;
        }
        n++;
    }
    if (rc == 0) {
        /* Byte ranges must not overlap (empty tensors occupy nothing). */
        qsort(e, (size_t)n, sizeof *e, cmp_entry);
        int prev = -1;
        for (int i = 0; i < n && rc == 0; i++) {
            if (e[i].end == e[i].begin)
                continue;
            if (prev >= 0 && e[i].begin < e[prev].end)
                rc = al_fail("tensors '%s' and '%s' overlap (bytes %llu..%llu and %llu..%llu)", e[prev].name,
                             e[i].name, (unsigned long long)e[prev].begin, (unsigned long long)e[prev].end,
                             (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
            if (prev < 0 || e[i].end > e[prev].end)
                prev = i;
        }
    }
    const hf_format *fmt = format_of(c);
    for (int d = 0; d < lo->n && rc == 0; d++)
        /* HF's ForSequenceClassification models have no lm_head (align's keep theirs).  Kinds
         * without a name of their own (GPT-2's wk, wv) come with the tensor named for wq. */
        if (!seen[d] && !(c->n_labels > 0 && !strcmp(lo->d[d].kind, "wcls")) && tn_kind_of(fmt->t, lo->d[d].kind) >= 0) {
            char name[128];
            hf_name(name, sizeof name, fmt, &lo->d[d]);
            rc = al_fail("missing tensor '%s'", name);
        }
    free(seen);
    *n_out = n;
    return rc;
}

static void convert(float *dst, const uint8_t *src, size_t n, st_dtype dt)
{
    if (dt == DT_F32) {
        memcpy(dst, src, n * 4);
    } else if (dt == DT_F16) {
        for (size_t i = 0; i < n; i++)
            dst[i] = al_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
    }
}

/* The largest file tensor of a layout, in floats. */
static size_t max_numel(const al_config *c, const tn_layout *lo)
{
    size_t m = 1;
    for (int d = 0; d < lo->n; d++)
        if (tn_kind_of(format_of(c)->t, lo->d[d].kind) >= 0) {
            st_storage st;
            storage_of(c, lo, d, &st);
            if (storage_numel(&st) > m)
                m = storage_numel(&st);
        }
    return m;
}

/* Resolves the .safetensors and config.json paths (malloc'd). */
static int resolve_paths(const char *path, char **st, char **cfg)
{
    *st = *cfg = NULL;
    if (al_is_dir(path)) {
        *st = al_path_join(path, "model.safetensors");
        *cfg = al_path_join(path, "config.json");
        if (!*st || !*cfg)
            return al_fail("out of memory");
        if (!al_file_exists(*st)) {
            char *idx = al_path_join(path, "model.safetensors.index.json");
            bool sharded = idx && al_file_exists(idx);
            free(idx);
            if (sharded)
                return al_fail("%s: sharded safetensors checkpoints (model.safetensors.index.json) are not "
                               "supported yet",
                               path);
            return al_fail("%s: directory has no model.safetensors", path);
        }
        return 0;
    }
    *st = strdup(path);
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t k = (size_t)(slash - path);
        char *dir = malloc(k + 2);
        if (dir) {
            memcpy(dir, path, k ? k : 1);
            dir[k ? k : 1] = 0;
            *cfg = al_path_join(dir, "config.json");
            free(dir);
        }
    } else {
        *cfg = strdup("config.json");
    }
    if (!*st || !*cfg)
        return al_fail("out of memory");
    return 0;
}

int al_model_load_safetensors(al_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    char *st_path, *cfg_path;
    if (resolve_paths(path, &st_path, &cfg_path)) {
        free(st_path);
        free(cfg_path);
        return -1;
    }
    int rc = -1;
    al_buf cfg_text = {0};
    al_mapped f = {0};
    json_t *root = NULL;
    st_entry *e = NULL;
    int n = 0;
    tn_layout lo = {0};
    al_config c;
    float *tmp = NULL; /* one tensor in the file's order, when it is not align's */

    if (!al_file_exists(cfg_path)) {
        al_fail("%s: config.json not found beside the safetensors file (expected %s)", st_path, cfg_path);
        goto done;
    }
    if (al_read_file(cfg_path, &cfg_text) || al_config_from_hf_json(&c, cfg_text.data, cfg_text.len, cfg_path))
        goto done;
    if (tn_layout_build(&lo, &c, format_of(&c)->t, false) || al_map_file(st_path, &f))
        goto done;
    if (validate(&f, &c, &lo, &root, &e, &n)) {
        al_fail_prefix("%s: safetensors header", st_path);
        goto done;
    }
    if (al_model_init(m, &c))
        goto done;
    const uint8_t *data = f.data + 8 + header_len(&f);
    for (int i = 0; i < n; i++)
        if (e[i].desc >= 0) {
            st_storage st;
            storage_of(&c, &lo, e[i].desc, &st);
            const size_t numel = storage_numel(&st);
            if (st.n_parts == 1 && !st.transposed) {
                convert(m->params + lo.d[e[i].desc].offset, data + e[i].begin, numel, e[i].dt);
                continue;
            }
            if (!tmp && !(tmp = malloc(max_numel(&c, &lo) * sizeof *tmp))) {
                al_fail("out of memory");
                goto done;
            }
            convert(tmp, data + e[i].begin, numel, e[i].dt);
            storage_scatter(&st, &lo, m->params, tmp);
        }
    rc = 0;
done:
    free(tmp);
    if (rc && m->params)
        al_model_free(m);
    json_decref(root);
    free(e);
    free(lo.d);
    al_unmap_file(&f);
    al_buf_free(&cfg_text);
    free(st_path);
    free(cfg_path);
    return rc;
}

/* ---- saving ---- */

typedef struct out_tensor {
    char name[96];
    int d;          /* descriptor index */
    st_storage st;  /* how the file holds it */
} out_tensor;

static int cmp_out(const void *a, const void *b)
{
    return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

static bool needs_permute(const al_config *c, const al_tensor_desc *d)
{
    return c->arch == AL_ARCH_LLAMA && c->rope == AL_ROPE_INTERLEAVED &&
           (!strcmp(d->kind, "wq") || !strcmp(d->kind, "wk") || !strcmp(d->kind, "bq") || !strcmp(d->kind, "bk"));
}

/* Writes one tensor; q/k rows of an interleaved model go out in half-split order:
 * per head, new row j < hd/2 is old row 2j, new row hd/2 + j is old row 2j + 1.  A GPT-2
 * tensor the file holds otherwise than align (fused, Conv1D) is gathered into tmp. */
static void write_tensor(FILE *fp, const al_model *m, const tn_layout *lo, const out_tensor *t, float *tmp)
{
    const al_tensor_desc *d = &lo->d[t->d];
    const float *src = m->params + d->offset;
    size_t cols = (size_t)(d->cols ? d->cols : 1);
    if (t->st.n_parts > 1 || t->st.transposed) {
        storage_gather(&t->st, lo, m->params, tmp);
        fwrite(tmp, sizeof(float), storage_numel(&t->st), fp);
        return;
    }
    if (!needs_permute(&m->cfg, d)) {
        fwrite(src, sizeof(float), (size_t)d->rows * cols, fp);
        return;
    }
    const int hd = m->cfg.head_dim, half = hd / 2;
    for (int r = 0; r < d->rows; r++) {
        int h = r / hd, j = r % hd;
        int old = h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
        fwrite(src + (size_t)old * cols, sizeof(float), cols, fp);
    }
}

int al_model_save_safetensors(const al_model *m, const char *dir)
{
    if (!m->params)
        return al_fail("%s: cannot save an empty model", dir);
    const al_config *c = &m->cfg;
    const hf_format *fmt = format_of(c);
    tn_layout lo = {0};
    out_tensor *t = NULL;
    float *tmp = NULL;
    al_buf hdr = {0}, cfg_json = {0};
    char *st_path = NULL, *cfg_path = NULL;
    al_atomic_file af = {0};
    int rc = -1;

    if (tn_layout_build(&lo, c, fmt->t, false))
        goto done;
    t = calloc((size_t)lo.n, sizeof *t);
    tmp = malloc(max_numel(c, &lo) * sizeof *tmp);
    st_path = al_path_join(dir, "model.safetensors");
    cfg_path = al_path_join(dir, "config.json");
    if (!t || !tmp || !st_path || !cfg_path) {
        al_fail("out of memory");
        goto done;
    }
    int nt = 0; /* file tensors: the named kinds' descriptors */
    for (int i = 0; i < lo.n; i++)
        if (tn_kind_of(fmt->t, lo.d[i].kind) >= 0) {
            hf_name(t[nt].name, sizeof t[nt].name, fmt, &lo.d[i]);
            t[nt].d = i;
            storage_of(c, &lo, i, &t[nt].st);
            nt++;
        }
    qsort(t, (size_t)nt, sizeof *t, cmp_out);

    /* Header: metadata first, tensors in name order, data in the same order. */
    if (al_buf_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}"))
        goto done;
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        const st_storage *st = &t[i].st;
        uint64_t bytes = (uint64_t)storage_numel(st) * 4;
        char shape[32];
        if (st->cols)
            snprintf(shape, sizeof shape, "%d,%d", st->transposed ? st->cols : st->rows,
                     st->transposed ? st->rows : st->cols);
        else
            snprintf(shape, sizeof shape, "%d", st->rows);
        int e = al_buf_printf(&hdr, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                              t[i].name, shape, (unsigned long long)off, (unsigned long long)(off + bytes));
        if (e)
            goto done;
        off += bytes;
    }
    if (al_buf_append(&hdr, "}", 1))
        goto done;
    while ((8 + hdr.len) % 8) /* the data area starts 8-byte aligned; spaces are valid JSON padding */
        if (al_buf_append(&hdr, " ", 1))
            goto done;

    al_config hc = *c;
    hc.rope = AL_ROPE_HALF;
    if (al_config_to_hf_json(&hc, &cfg_json))
        goto done;

    if (al_mkdir_p(dir) || al_atomic_open(&af, st_path))
        goto done;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    fwrite(len8, 1, 8, af.fp);
    fwrite(hdr.data, 1, hdr.len, af.fp);
    for (int i = 0; i < nt; i++)
        write_tensor(af.fp, m, &lo, &t[i], tmp);
    if (ferror(af.fp)) {
        al_atomic_abort(&af);
        al_fail("%s: write failed", st_path);
        goto done;
    }
    if (al_atomic_commit(&af))
        goto done;

    if (al_atomic_open(&af, cfg_path))
        goto done;
    fwrite(cfg_json.data, 1, cfg_json.len, af.fp);
    if (ferror(af.fp)) {
        al_atomic_abort(&af);
        al_fail("%s: write failed", cfg_path);
        goto done;
    }
    if (al_atomic_commit(&af))
        goto done;
    rc = 0;
done:
    free(lo.d);
    free(t);
    free(tmp);
    al_buf_free(&hdr);
    al_buf_free(&cfg_json);
    free(st_path);
    free(cfg_path);
    return rc;
}
