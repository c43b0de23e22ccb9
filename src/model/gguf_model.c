/* GGUF model weights (llama.cpp's format): Llama and Qwen2, read and written.
 *
 * Hyperparameters come from "{arch}.*" keys, the vocabulary size from token_embd's shape.
 * GGUF lists dimensions innermost first, so a [rows][cols] matrix is stored with
 * dims = {cols, rows}.  Rotary order: llama.cpp's converter permutes Llama's q/k rows
 * into interleaved pairs (ggml's "normal" rope) while Qwen2 keeps Hugging Face's
 * half-split order ("neox" rope); the rows are taken as stored and cfg.rope says which.
 * Loading validates every name, shape, type and size before converting a single tensor.
 * See docs/formats.md. */
#include "align/model.h"
#include "tensor_names.h"

#include <stdlib.h>
#include <string.h>

/* align's tensor kinds and their GGUF names (per-layer ones under blk.N.). */
static const tn_entry gguf_names[] = {
    {"tok_emb", "token_embd.weight", false},  {"rms_att", "attn_norm.weight", true},
    {"wq", "attn_q.weight", true},            {"wk", "attn_k.weight", true},
    {"wv", "attn_v.weight", true},            {"wo", "attn_output.weight", true},
    {"rms_ffn", "ffn_norm.weight", true},     {"w1", "ffn_gate.weight", true},
    {"w2", "ffn_down.weight", true},          {"w3", "ffn_up.weight", true},
    {"rms_final", "output_norm.weight", false}, {"wcls", "output.weight", false},
    {"bq", "attn_q.bias", true},              {"bk", "attn_k.bias", true},
    {"bv", "attn_v.bias", true},
};
#define N_KINDS ((int)(sizeof gguf_names / sizeof gguf_names[0]))
_Static_assert(N_KINDS <= TN_MAX_KINDS, "tn_layout holds every kind");
static const tn_table gguf_table = {gguf_names, N_KINDS, "blk.", "GGUF"};

static void name_copy(char *buf, size_t n, al_gguf_str s)
{
    size_t k = s.len < n - 1 ? s.len : n - 1;
    memcpy(buf, s.s, k);
    buf[k] = 0;
}

/* ---- configuration ---- */

/* "{arch}.{suffix}" as a positive int; *out is left alone when the key is absent and
 * not required. */
static int get_dim(const al_gguf *g, const char *arch, const char *suffix, bool required, int *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!required && !al_gguf_find(g, key))
        return 0;
    uint32_t v;
    if (al_gguf_get_u32(g, key, &v))
        return -1;
    if (v == 0 || v > INT32_MAX)
        return al_fail("%s: %s = %u is out of range", g->origin, key, v);
    *out = (int)v;
    return 0;
}

static int get_float(const al_gguf *g, const char *arch, const char *suffix, bool required, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!required && !al_gguf_find(g, key))
        return 0;
    return al_gguf_get_f32(g, key, out);
}

/* bos/eos: the vocabulary's ids, as the tokenizer reader takes them. */
static int special_id(const al_gguf *g, const char *key, int vocab, int *out)
{
    if (!al_gguf_find(g, key))
        return 0;
    uint32_t v;
    if (al_gguf_get_u32(g, key, &v))
        return -1;
    if (v >= (uint32_t)vocab)
        return al_fail("%s: %s = %u is outside the vocabulary of %d", g->origin, key, v, vocab);
    *out = (int)v;
    return 0;
}

/* Features align's engine lacks must not load as a silently different model. */
static int check_unsupported(const al_gguf *g, const char *arch, int head_dim)
{
    char key[128];
    snprintf(key, sizeof key, "%s.expert_count", arch);
    uint32_t experts = 0;
    if (al_gguf_find(g, key) && al_gguf_get_u32(g, key, &experts))
        return -1;
    if (experts > 0)
        return al_fail("%s: %s = %u: mixture-of-experts models are not supported", g->origin, key, experts);
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    al_gguf_str s;
    if (al_gguf_find(g, key)) {
        if (al_gguf_get_str(g, key, &s))
            return -1;
        if (!al_gguf_str_eq(s, "none"))
            return al_fail("%s: %s = '%.*s': rotary scaling is not supported", g->origin, key, (int)s.len, s.s);
    }
    int rope_dim = head_dim, value_len = head_dim;
    if (get_dim(g, arch, "rope.dimension_count", false, &rope_dim) ||
        get_dim(g, arch, "attention.value_length", false, &value_len))
        return -1;
    if (rope_dim != head_dim)
        return al_fail("%s: %s.rope.dimension_count = %d, but the head size is %d: partial rotary embeddings are "
                       "not supported",
                       g->origin, arch, rope_dim, head_dim);
    if (value_len != head_dim)
        return al_fail("%s: %s.attention.value_length = %d differs from key_length %d (not supported)", g->origin,
                       arch, value_len, head_dim);
    if (al_gguf_tensor_find(g, "rope_freqs.weight"))
        return al_fail("%s: tensor 'rope_freqs.weight': rotary frequency factors (Llama 3.1 scaling) are not "
                       "supported",
                       g->origin);
    return 0;
}

static int read_config(const al_gguf *g, al_config *c)
{
    al_gguf_str a;
    if (al_gguf_get_str(g, "general.architecture", &a))
        return -1;
    bool llama = al_gguf_str_eq(a, "llama"), qwen2 = al_gguf_str_eq(a, "qwen2");
    if (!llama && !qwen2)
        return al_fail("%s: general.architecture '%.*s' is not supported (expected \"llama\" or \"qwen2\")",
                       g->origin, (int)(a.len > 64 ? 64 : a.len), a.s);
    const char *arch = llama ? "llama" : "qwen2";
    memset(c, 0, sizeof *c);
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->bos_id = c->eos_id = -1;
    if (get_dim(g, arch, "embedding_length", true, &c->dim) || get_dim(g, arch, "block_count", true, &c->n_layers) ||
        get_dim(g, arch, "feed_forward_length", true, &c->hidden_dim) ||
        get_dim(g, arch, "attention.head_count", true, &c->n_heads) ||
        get_dim(g, arch, "context_length", true, &c->seq_len) ||
        get_float(g, arch, "attention.layer_norm_rms_epsilon", true, &c->norm_eps) ||
        get_float(g, arch, "rope.freq_base", false, &c->rope_theta))
        return -1;
    c->n_kv_heads = c->n_heads;
    if (get_dim(g, arch, "attention.head_count_kv", false, &c->n_kv_heads))
        return -1;
    c->head_dim = c->dim % c->n_heads ? 0 : c->dim / c->n_heads;
    if (get_dim(g, arch, "attention.key_length", false, &c->head_dim))
        return -1;
    if (c->head_dim == 0)
        return al_fail("%s: %s.embedding_length %d is not a multiple of head_count %d and no "
                       "attention.key_length is given",
                       g->origin, arch, c->dim, c->n_heads);
    if (check_unsupported(g, arch, c->head_dim))
        return -1;
    const al_gguf_tensor *emb = al_gguf_tensor_find(g, "token_embd.weight");
    if (!emb)
        return al_fail("%s: missing tensor 'token_embd.weight'", g->origin);
    if (emb->n_dims != 2 || emb->dims[1] > INT32_MAX)
        return al_fail("%s: tensor 'token_embd.weight': expected 2 dimensions [%d, vocab], got %d", g->origin,
                       c->dim, emb->n_dims);
    c->vocab_size = (int)emb->dims[1];
    c->rope = llama ? AL_ROPE_INTERLEAVED : AL_ROPE_HALF;
    c->tied_embeddings = al_gguf_tensor_find(g, "output.weight") == NULL;
    c->qkv_bias = al_gguf_tensor_find(g, "blk.0.attn_q.bias") || al_gguf_tensor_find(g, "blk.0.attn_k.bias") ||
                  al_gguf_tensor_find(g, "blk.0.attn_v.bias");
    /* SentencePiece vocabularies default to 1 and 2, as the tokenizer reader does */
    al_gguf_str tm;
    if (al_gguf_find(g, "tokenizer.ggml.model") && al_gguf_get_str(g, "tokenizer.ggml.model", &tm) == 0 &&
        al_gguf_str_eq(tm, "llama") && c->vocab_size > 2) {
        c->bos_id = 1;
        c->eos_id = 2;
    }
    if (special_id(g, "tokenizer.ggml.bos_token_id", c->vocab_size, &c->bos_id) ||
        special_id(g, "tokenizer.ggml.eos_token_id", c->vocab_size, &c->eos_id))
        return -1;
    if (al_config_validate(c))
        return al_fail_prefix("%s: GGUF header", g->origin);
    return 0;
}

/* ---- tensors ---- */

/* Maps a GGUF tensor name to a layout index, or -1 with an error recorded. */
static int map_name(const tn_layout *lo, const al_config *c, const char *origin, const char *name)
{
    int kind;
    long layer;
    if (tn_parse(&gguf_table, name, &kind, &layer))
        return al_fail("%s: tensor '%s': unexpected tensor name (not part of a Llama/Qwen2 model align supports)",
                       origin, name);
    if (layer >= c->n_layers)
        return al_fail("%s: tensor '%s': layer %ld is out of range (block_count %d)", origin, name, layer,
                       c->n_layers);
    if (lo->kind_start[kind] < 0) /* only biases can get here: wcls exists whenever output.weight does */
        return al_fail("%s: tensor '%s': a q/k/v bias, but blk.0 has none", origin, name);
    return lo->kind_start[kind] + (layer < 0 ? 0 : (int)layer);
}

static int check_tensor(const al_gguf *g, const al_gguf_tensor *t, const al_tensor_desc *d, const char *name)
{
    bool ok = d->cols ? t->n_dims == 2 && t->dims[0] == (uint64_t)d->cols && t->dims[1] == (uint64_t)d->rows
                      : t->n_dims == 1 && t->dims[0] == (uint64_t)d->rows;
    if (!ok) {
        char got[96];
        int k = snprintf(got, sizeof got, "[");
        for (int i = 0; i < t->n_dims && k < (int)sizeof got; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%llu", i ? ", " : "", (unsigned long long)t->dims[i]);
        if (k < (int)sizeof got)
            snprintf(got + k, sizeof got - (size_t)k, "]");
        if (d->cols)
            return al_fail("%s: tensor '%s': shape %s, but the header implies [%d, %d] (GGUF order: columns first)",
                           g->origin, name, got, d->cols, d->rows);
        return al_fail("%s: tensor '%s': shape %s, but the header implies [%d]", g->origin, name, got, d->rows);
    }
    if (!al_ggml_can_dequantize(t->type))
        return al_fail("%s: tensor '%s': type %s is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 "
                       "and Q8_1 are)",
                       g->origin, name, al_ggml_type_name(t->type));
    size_t want = al_ggml_row_bytes(t->type, t->n_elements);
    if (!want || t->bytes != want || (const uint8_t *)t->data < g->map.data ||
        t->bytes > g->map.size - (size_t)((const uint8_t *)t->data - g->map.data))
        return al_fail("%s: tensor '%s': %zu bytes of %s do not match its %llu elements or lie outside the file",
                       g->origin, name, t->bytes, al_ggml_type_name(t->type), (unsigned long long)t->n_elements);
    return 0;
}

int al_model_load_gguf(al_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    al_gguf g;
    if (al_gguf_open(&g, path))
        return -1;
    al_config c;
    tn_layout lo = {0};
    int *src = NULL; /* per layout index: the GGUF tensor, or -1 */
    int rc = -1;
    if (read_config(&g, &c) || tn_layout_build(&lo, &c, &gguf_table, true))
        goto done;
    if (!(src = malloc((size_t)lo.n * sizeof *src))) {
        al_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < lo.n; i++)
        src[i] = -1;
    for (size_t i = 0; i < g.n_tensors; i++) {
        char name[160];
        name_copy(name, sizeof name, g.tensors[i].name);
        int d = map_name(&lo, &c, path, name);
        if (d < 0 || check_tensor(&g, &g.tensors[i], &lo.d[d], name))
            goto done;
        if (src[d] >= 0) {
            al_fail("%s: tensor '%s' is stored twice", path, name);
            goto done;
        }
        src[d] = (int)i;
    }
    for (int d = 0; d < lo.n; d++)
        if (src[d] < 0) {
            char name[160];
            tn_format(name, sizeof name, &gguf_table, &lo.d[d]);
            al_fail("%s: missing tensor '%s'", path, name);
            goto done;
        }
    if (al_model_init(m, &c))
        goto done;
    for (int d = 0; d < lo.n; d++) {
        const al_gguf_tensor *t = &g.tensors[src[d]];
        if (al_ggml_dequantize(t->type, t->data, (size_t)t->n_elements, m->params + lo.d[d].offset)) {
            char name[160];
            name_copy(name, sizeof name, t->name);
            al_fail_prefix("%s: tensor '%s'", path, name);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc && m->params)
        al_model_free(m);
    free(src);
    free(lo.d);
    al_gguf_close(&g);
    return rc;
}

/* ---- saving ---- */

/* Which rows of q/k (weights and biases) move, and which way: Llama files want
 * interleaved pairs, Qwen2 files half-split heads. */
typedef enum { PERM_NONE, PERM_TO_INTERLEAVED, PERM_TO_HALF } perm_dir;

static bool is_qk(const al_tensor_desc *d)
{
    return !strcmp(d->kind, "wq") || !strcmp(d->kind, "wk") || !strcmp(d->kind, "bq") || !strcmp(d->kind, "bk");
}

/* Source row of output row r. */
static int source_row(int r, int hd, perm_dir p)
{
    int h = r / hd, j = r % hd, half = hd / 2;
    if (p == PERM_TO_HALF) /* output j < hd/2 is interleaved row 2j, hd/2 + j is 2j + 1 */
        return h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
    /* output 2i is half-split row i, 2i + 1 is row hd/2 + i */
    return h * hd + (j % 2 ? half + j / 2 : j / 2);
}

/* The type a tensor is stored as: block types for matrices whose rows are whole blocks,
 * F16 for the other matrices (as llama.cpp's converter falls back), F32 for vectors. */
static int stored_type(const al_tensor_desc *d, int type)
{
    if (!d->cols)
        return AL_GGML_F32;
    if ((type == AL_GGML_Q8_0 || type == AL_GGML_Q4_0) && d->cols % AL_GGML_QK)
        return AL_GGML_F16;
    return type;
}

int al_model_gguf_fallback_count(const al_config *c, al_ggml_type type)
{
    int n = al_tensor_layout(c, NULL, 0), k = 0;
    al_tensor_desc *d = malloc((size_t)n * sizeof *d);
    if (!d)
        return 0;
    al_tensor_layout(c, d, n);
    for (int i = 0; i < n; i++)
        k += d[i].cols && stored_type(&d[i], (int)type) != (int)type;
    free(d);
    return k;
}

static int add_config_keys(al_gguf_writer *w, const al_config *c, const char *arch, int type)
{
    char key[128];
#define KEY(SUFFIX) (snprintf(key, sizeof key, "%s.%s", arch, SUFFIX), key)
    /* llama.cpp's general.file_type (its LLAMA_FTYPE_* numbers), informational */
    uint32_t ftype = type == AL_GGML_F32 ? 0 : type == AL_GGML_F16 ? 1 : type == AL_GGML_Q4_0 ? 2
                   : type == AL_GGML_Q8_0 ? 7 : 32;
    int rc = al_gguf_add_str(w, "general.architecture", arch, strlen(arch)) ||
             al_gguf_add_str(w, "general.name", "align", 5) || al_gguf_add_u32(w, "general.file_type", ftype) ||
             al_gguf_add_u32(w, "general.quantization_version", 2) ||
             al_gguf_add_u32(w, KEY("context_length"), (uint32_t)c->seq_len) ||
             al_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->dim) ||
             al_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layers) ||
             al_gguf_add_u32(w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim) ||
             al_gguf_add_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads) ||
             al_gguf_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads) ||
             al_gguf_add_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim) ||
             al_gguf_add_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim) ||
             al_gguf_add_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim) ||
             al_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps) ||
             al_gguf_add_f32(w, KEY("rope.freq_base"), c->rope_theta) ||
             al_gguf_add_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
#undef KEY
    return rc ? -1 : 0;
}

/* The tokenizer's vocabulary and ids (the file's vocabulary must agree with itself, and
 * llama.cpp takes the ids from there); the model's bos/eos fill in where it has none. */
static int add_tokenizer_keys(al_gguf_writer *w, const al_config *c, const al_tokenizer *tok, const char *path)
{
    int bos = c->bos_id, eos = c->eos_id;
    if (tok) {
        if (al_tokenizer_vocab_size(tok) != c->vocab_size)
            return al_fail("%s: the tokenizer has %d tokens, the model %d", path, al_tokenizer_vocab_size(tok),
                           c->vocab_size);
        if (al_tokenizer_write_gguf_keys(tok, w))
            return al_fail_prefix("%s", path);
        if (al_tokenizer_bos(tok) >= 0)
            bos = -1;
        if (al_tokenizer_eos(tok) >= 0)
            eos = -1;
    }
    if (bos >= 0 && bos < c->vocab_size && al_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos))
        return -1;
    if (eos >= 0 && eos < c->vocab_size && al_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos))
        return -1;
    return 0;
}

/* Rows of one tensor in the file's order, as floats (scratch holds rows * cols). */
static const float *gather(const al_model *m, const al_tensor_desc *d, perm_dir p, float *scratch)
{
    const float *src = m->params + d->offset;
    size_t cols = (size_t)(d->cols ? d->cols : 1);
    if (p == PERM_NONE || !is_qk(d))
        return src;
    for (int r = 0; r < d->rows; r++)
        memcpy(scratch + (size_t)r * cols, src + (size_t)source_row(r, m->cfg.head_dim, p) * cols,
               cols * sizeof *scratch);
    return scratch;
}

int al_model_save_gguf(const al_model *m, const al_tokenizer *tok, const char *path, al_ggml_type type)
{
    if (!m->params)
        return al_fail("%s: cannot save an empty model", path);
    const al_config *c = &m->cfg;
    if (c->arch != AL_ARCH_LLAMA)
        return al_fail("%s: GGUF: GPT-2 layout not supported yet (convert it to safetensors instead)", path);
    if (c->n_labels > 0)
        return al_fail("%s: a model with a score head (reward model) cannot be written as GGUF", path);
    if (!al_ggml_can_quantize(type))
        return al_fail("%s: GGUF weight type %s is not supported for writing (F32, F16, BF16, Q8_0, Q4_0)", path,
                       al_ggml_type_name(type));
    /* Llama files hold interleaved q/k rows (llama.cpp's "normal" rope); models with q/k/v
     * biases go out as Qwen2, whose files keep the half-split order ("neox" rope). */
    const char *arch = c->qkv_bias ? "qwen2" : "llama";
    perm_dir perm = c->qkv_bias ? (c->rope == AL_ROPE_INTERLEAVED ? PERM_TO_HALF : PERM_NONE)
                                : (c->rope == AL_ROPE_HALF ? PERM_TO_INTERLEAVED : PERM_NONE);
    tn_layout lo = {0};
    al_gguf_writer w;
    al_atomic_file af = {0};
    float *scratch = NULL;
    uint8_t *bytes = NULL;
    int rc = -1;
    if (al_gguf_writer_init(&w, 32) || tn_layout_build(&lo, c, &gguf_table, true))
        goto done;
    size_t max_elems = 0;
    for (int i = 0; i < lo.n; i++) {
        size_t e = (size_t)lo.d[i].rows * (size_t)(lo.d[i].cols ? lo.d[i].cols : 1);
        if (e > max_elems)
            max_elems = e;
    }
    scratch = malloc(max_elems * sizeof *scratch);
    bytes = malloc(max_elems * sizeof(float));
    if (!scratch || !bytes) {
        al_fail("out of memory");
        goto done;
    }
    if (add_config_keys(&w, c, arch, type) || add_tokenizer_keys(&w, c, tok, path))
        goto done;
    for (int i = 0; i < lo.n; i++) {
        const al_tensor_desc *d = &lo.d[i];
        char name[64];
        tn_format(name, sizeof name, &gguf_table, d);
        uint64_t dims[2] = {(uint64_t)(d->cols ? d->cols : d->rows), (uint64_t)d->rows};
        if (al_gguf_add_tensor(&w, name, d->cols ? 2 : 1, dims, stored_type(d, type)))
            goto done;
    }
    if (al_atomic_open(&af, path))
        goto done;
    if (al_gguf_write_header(&w, af.fp)) {
        al_fail_prefix("%s", path);
        goto abort;
    }
    for (int i = 0; i < lo.n; i++) {
        const al_tensor_desc *d = &lo.d[i];
        size_t n = (size_t)d->rows * (size_t)(d->cols ? d->cols : 1);
        int st = stored_type(d, type);
        if (al_ggml_quantize(st, gather(m, d, perm, scratch), n, bytes)) {
            char name[64];
            tn_format(name, sizeof name, &gguf_table, d);
            al_fail_prefix("%s: tensor '%s' as %s", path, name, al_ggml_type_name(st));
            goto abort;
        }
        if (al_gguf_write_tensor(&w, af.fp, bytes, al_ggml_row_bytes(st, n))) {
            al_fail_prefix("%s", path);
            goto abort;
        }
    }
    if (al_gguf_write_end(&w)) {
        al_fail_prefix("%s", path);
        goto abort;
    }
    if (ferror(af.fp)) {
        al_fail("%s: write failed", path);
        goto abort;
    }
    rc = al_atomic_commit(&af);
    goto done;
abort:
    al_atomic_abort(&af);
done:
    al_gguf_writer_free(&w);
    free(lo.d);
    free(scratch);
    free(bytes);
    return rc;
}
