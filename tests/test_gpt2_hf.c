/* Hugging Face GPT-2 checkpoints (GPT2LMHeadModel / GPT2Model): config.json fields and
 * errors, save -> file layout (names, Conv1D shapes, fused c_attn) -> load round trips, a
 * hand-written checkpoint whose values land where GPT-2's Conv1D and q|k|v split put
 * them, malformed files, identical logits after a round trip, the refusals (GGUF, LoRA),
 * and `align pretrain --arch gpt2` end to end. */
#include <jansson.h>
#include <sys/wait.h>

#include "align/model.h"
#include "align/train.h"
#include "model_util.h"
#include "test.h"

static char tmp[512];

static char *pathf(const char *fmt, const char *a)
{
    static char buf[4][1200];
    static int k;
    char *p = buf[k++ % 4];
    char rel[600];
    snprintf(rel, sizeof rel, fmt, a ? a : "");
    snprintf(p, sizeof buf[0], "%s/%s", tmp, rel);
    return p;
}

/* s with the first occurrence of from (which must exist) replaced by to; malloc'd. */
static char *replace1(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    if (!p) {
        fprintf(stderr, "test bug: '%s' not found\n", from);
        exit(2);
    }
    size_t a = (size_t)(p - s), f = strlen(from), t = strlen(to), n = strlen(s);
    char *r = malloc(n - f + t + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, t);
    memcpy(r + a + t, p + f, n - a - f + 1);
    return r;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* ---- config.json ---- */

/* openai-community/gpt2's config.json */
static const char *gpt2_small_cfg =
    "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], \"attn_pdrop\": 0.1,"
    " \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256, \"initializer_range\": 0.02,"
    " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12,"
    " \"n_layer\": 12, \"n_positions\": 1024, \"resid_pdrop\": 0.1, \"summary_activation\": null,"
    " \"summary_first_dropout\": 0.1, \"summary_proj_to_labels\": true, \"summary_type\": \"cls_index\","
    " \"summary_use_proj\": true, \"task_specific_params\": {\"text-generation\": {\"do_sample\": true,"
    " \"max_length\": 50}}, \"vocab_size\": 50257}";

static int parse(al_config *c, const char *json) { return al_config_from_hf_json(c, json, strlen(json), "config.json"); }

static void expect_cfg_error(const char *json, const char *want)
{
    al_config c;
    int rc = parse(&c, json);
    CHECKF(rc == -1, "accepted: %s", json);
    CHECKF(rc == -1 && strstr(al_errmsg(), want), "message '%s' lacks '%s'", al_errmsg(), want);
}

#define TINY "\"model_type\":\"gpt2\",\"n_embd\":16,\"n_layer\":2,\"n_head\":4,\"n_positions\":32,\"vocab_size\":50"

static void test_config(void)
{
    al_config c;
    CHECK_OK(parse(&c, gpt2_small_cfg));
    CHECK(c.arch == AL_ARCH_GPT2 && c.dim == 768 && c.hidden_dim == 3072 && c.n_layers == 12 && c.n_heads == 12);
    CHECK(c.n_kv_heads == 12 && c.head_dim == 64 && c.vocab_size == 50257 && c.seq_len == 1024);
    CHECK(c.norm_eps == 1e-5f && c.tied_embeddings && c.qkv_bias && c.bos_id == 50256 && c.eos_id == 50256);
    CHECK(c.n_labels == 0);

    /* defaults: n_inner null -> 4 n_embd, eps 1e-5, tied, no token ids; GPT2Config's aliases */
    CHECK_OK(parse(&c, "{" TINY ",\"n_inner\":null}"));
    CHECK(c.hidden_dim == 64 && c.norm_eps == 1e-5f && c.tied_embeddings && c.bos_id == -1 && c.eos_id == -1);
    CHECK_OK(parse(&c, "{\"architectures\":[\"GPT2Model\"],\"hidden_size\":16,\"num_hidden_layers\":2,"
                       "\"num_attention_heads\":4,\"max_position_embeddings\":32,\"vocab_size\":50,\"n_inner\":40,"
                       "\"layer_norm_epsilon\":1e-6,\"tie_word_embeddings\":false,"
                       "\"activation_function\":\"gelu_pytorch_tanh\"}"));
    CHECK(c.arch == AL_ARCH_GPT2 && c.dim == 16 && c.n_layers == 2 && c.n_heads == 4 && c.head_dim == 4);
    CHECK(c.seq_len == 32 && c.hidden_dim == 40 && c.norm_eps == 1e-6f && !c.tied_embeddings);
    CHECK_OK(parse(&c, "{\"architectures\":[\"GPT2ForSequenceClassification\"]," TINY
                       ",\"id2label\":{\"0\":\"LABEL_0\"}}"));
    CHECK(c.arch == AL_ARCH_GPT2 && c.n_labels == 1);

    /* errors name the field */
    expect_cfg_error("{" TINY ",\"activation_function\":\"relu\"}", "activation_function: 'relu' is not supported");
    expect_cfg_error("{" TINY ",\"activation_function\":\"gelu\"}", "gelu_new or gelu_pytorch_tanh");
    expect_cfg_error("{" TINY ",\"intermediate_size\":64}", "intermediate_size: not a GPT-2 field");
    expect_cfg_error("{" TINY ",\"num_key_value_heads\":2}", "num_key_value_heads");
    expect_cfg_error("{" TINY ",\"hidden_size\":32}", "n_embd (16) and its alias hidden_size (32) disagree");
    expect_cfg_error("{\"model_type\":\"gpt2\",\"n_embd\":18,\"n_layer\":2,\"n_head\":4,\"n_positions\":32,"
                     "\"vocab_size\":50}",
                     "n_embd 18 is not a multiple of n_head 4");
    expect_cfg_error("{\"model_type\":\"gpt2\",\"n_embd\":16,\"n_layer\":2,\"n_head\":4,\"vocab_size\":50}",
                     "n_positions: missing");
    expect_cfg_error("{" TINY ",\"scale_attn_weights\":false}", "scale_attn_weights");
    expect_cfg_error("{" TINY ",\"scale_attn_by_inverse_layer_idx\":true}", "scale_attn_by_inverse_layer_idx");
    expect_cfg_error("{" TINY ",\"add_cross_attention\":true}", "add_cross_attention");
    expect_cfg_error("{" TINY ",\"layer_norm_epsilon\":0}", "layer_norm_epsilon");
    expect_cfg_error("{\"architectures\":[\"LlamaForCausalLM\"]," TINY "}", "disagrees with architectures");
    expect_cfg_error("{\"architectures\":[\"GPT2DoubleHeadsModel\"]," TINY "}", "GPT2LMHeadModel");

    /* the writer round trips, token ids unknown to align written as null (not GPT-2's 50256) */
    al_config w = {.arch = AL_ARCH_GPT2, .dim = 16, .hidden_dim = 40, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                   .head_dim = 4, .vocab_size = 50, .seq_len = 32, .norm_eps = 1e-5f, .qkv_bias = true,
                   .tied_embeddings = false, .bos_id = 7, .eos_id = -1};
    al_buf j = {0};
    CHECK_OK(al_config_to_hf_json(&w, &j));
    CHECK(j.data && strstr(j.data, "\"eos_token_id\": null") && strstr(j.data, "\"bos_token_id\": 7"));
    CHECK(j.data && !strstr(j.data, "rope") && !strstr(j.data, "hidden_size"));
    CHECK_OK(al_config_from_hf_json(&c, j.data, j.len, "written"));
    CHECK(c.arch == AL_ARCH_GPT2 && c.dim == 16 && c.hidden_dim == 40 && c.n_layers == 2 && c.n_heads == 4 &&
          c.head_dim == 4 && c.vocab_size == 50 && c.seq_len == 32 && c.norm_eps == 1e-5f && !c.tied_embeddings &&
          c.bos_id == 7 && c.eos_id == -1);
    al_buf_free(&j);
    /* HF's GPT-2 has no head_dim of its own */
    w.head_dim = 8;
    j = (al_buf){0};
    CHECK(al_config_to_hf_json(&w, &j) == -1 && strstr(al_errmsg(), "head_dim"));
    al_buf_free(&j);
}

/* ---- safetensors files written by hand ---- */

typedef struct st_tensor {
    char name[96];
    const char *dtype; /* "F32", or another for buffers (no data checks) */
    int rank;
    int shape[4];
    float *data; /* F32: numel floats; other dtypes: NULL, nbytes zero bytes */
    size_t nbytes;
} st_tensor;

static size_t numel_of(const st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= (size_t)t->shape[i];
    return n;
}

static void write_st(const char *path, const st_tensor *t, int n)
{
    al_buf h = {0};
    al_buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = t[i].data ? numel_of(&t[i]) * 4 : t[i].nbytes;
        al_buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
        for (int r = 0; r < t[i].rank; r++)
            al_buf_printf(&h, "%s%d", r ? "," : "", t[i].shape[r]);
        al_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    al_buf_printf(&h, "}");
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h.data, 1, h.len, f);
    for (int i = 0; i < n; i++) {
        if (t[i].data) {
            fwrite(t[i].data, 4, numel_of(&t[i]), f);
        } else {
            for (size_t b = 0; b < t[i].nbytes; b++)
                fputc(1, f);
        }
    }
    fclose(f);
    al_buf_free(&h);
}

/* The tiny hand-written model: n_embd 4, 2 heads, 1 layer, n_inner 8 (not 4 n_embd),
 * vocab 6, 5 positions; GPT2Model names (no "transformer." prefix), untied (lm_head). */
enum { HD = 4, HH = 8, HV = 6, HP = 5 };
static const char *hand_cfg =
    "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"n_embd\":4,\"n_layer\":1,\"n_head\":2,"
    "\"n_inner\":8,\"n_positions\":5,\"vocab_size\":6,\"layer_norm_epsilon\":1e-05,"
    "\"activation_function\":\"gelu_new\",\"tie_word_embeddings\":false}";

enum { T_WTE, T_WPE, T_LN1W, T_LN1B, T_ATTNW, T_ATTNB, T_APROJW, T_APROJB, T_LN2W, T_LN2B, T_FCW, T_FCB, T_MPROJW,
       T_MPROJB, T_LNFW, T_LNFB, T_LMHEAD, T_MASK, T_MASKED_BIAS, T_N };

static int hand_tensors(st_tensor *t, const char *prefix)
{
    static const struct {
        const char *name;
        int rank, s0, s1;
    } spec[T_N] = {
        {"wte.weight", 2, HV, HD},          {"wpe.weight", 2, HP, HD},
        {"h.0.ln_1.weight", 1, HD, 0},      {"h.0.ln_1.bias", 1, HD, 0},
        {"h.0.attn.c_attn.weight", 2, HD, 3 * HD}, {"h.0.attn.c_attn.bias", 1, 3 * HD, 0},
        {"h.0.attn.c_proj.weight", 2, HD, HD},     {"h.0.attn.c_proj.bias", 1, HD, 0},
        {"h.0.ln_2.weight", 1, HD, 0},      {"h.0.ln_2.bias", 1, HD, 0},
        {"h.0.mlp.c_fc.weight", 2, HD, HH}, {"h.0.mlp.c_fc.bias", 1, HH, 0},
        {"h.0.mlp.c_proj.weight", 2, HH, HD}, {"h.0.mlp.c_proj.bias", 1, HD, 0},
        {"ln_f.weight", 1, HD, 0},          {"ln_f.bias", 1, HD, 0},
        {"lm_head.weight", 2, HV, HD},      {"h.0.attn.bias", 4, 1, 1},
        {"h.0.attn.masked_bias", 0, 0, 0},
    };
    for (int k = 0; k < T_N; k++) {
        memset(&t[k], 0, sizeof t[k]);
        snprintf(t[k].name, sizeof t[k].name, "%s%s", k == T_LMHEAD ? "" : prefix, spec[k].name);
        t[k].rank = spec[k].rank;
        t[k].shape[0] = spec[k].s0;
        t[k].shape[1] = spec[k].s1;
        t[k].dtype = "F32";
        if (k == T_MASK) { /* the causal mask buffer, as a bool tensor [1, 1, P, P] */
            t[k].dtype = "BOOL";
            t[k].shape[2] = t[k].shape[3] = HP;
            t[k].nbytes = HP * HP;
            continue;
        }
        size_t n = numel_of(&t[k]);
        t[k].data = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            t[k].data[i] = (float)(1000 * (k + 1) + (int)i); /* exact, and each value is unique */
    }
    return T_N;
}

static void free_tensors(st_tensor *t, int n)
{
    for (int k = 0; k < n; k++)
        free(t[k].data);
}

/* Every align parameter of the hand-written model against the file's value where GPT-2's
 * modules put it: Conv1D weights [in][out] (y = x W), c_attn's output columns q | k | v. */
static int check_hand_values(const al_model *m, st_tensor *t)
{
    int bad = 0;
    const al_params *w = &m->w;
#define EQ(got, want) (bad += (got) != (want))
    for (int i = 0; i < HV * HD; i++)
        EQ(w->tok_emb[i], t[T_WTE].data[i]), EQ(w->wcls[i], t[T_LMHEAD].data[i]);
    for (int i = 0; i < HP * HD; i++)
        EQ(w->pos_emb[i], t[T_WPE].data[i]);
    for (int i = 0; i < HD; i++) {
        EQ(w->rms_att[i], t[T_LN1W].data[i]), EQ(w->bln_att[i], t[T_LN1B].data[i]);
        EQ(w->rms_ffn[i], t[T_LN2W].data[i]), EQ(w->bln_ffn[i], t[T_LN2B].data[i]);
        EQ(w->rms_final[i], t[T_LNFW].data[i]), EQ(w->bln_final[i], t[T_LNFB].data[i]);
        EQ(w->bo[i], t[T_APROJB].data[i]), EQ(w->b2[i], t[T_MPROJB].data[i]);
        EQ(w->bq[i], t[T_ATTNB].data[i]), EQ(w->bk[i], t[T_ATTNB].data[HD + i]);
        EQ(w->bv[i], t[T_ATTNB].data[2 * HD + i]);
    }
    for (int o = 0; o < HD; o++)
        for (int i = 0; i < HD; i++) {
            const float *qkv = t[T_ATTNW].data; /* [in = HD][out = 3 HD] */
            EQ(w->wq[o * HD + i], qkv[i * 3 * HD + o]);
            EQ(w->wk[o * HD + i], qkv[i * 3 * HD + HD + o]);
            EQ(w->wv[o * HD + i], qkv[i * 3 * HD + 2 * HD + o]);
            EQ(w->wo[o * HD + i], t[T_APROJW].data[i * HD + o]);
        }
    for (int h = 0; h < HH; h++) {
        EQ(w->b1[h], t[T_FCB].data[h]);
        for (int i = 0; i < HD; i++) {
            EQ(w->w1[h * HD + i], t[T_FCW].data[i * HH + h]);   /* c_fc [HD][HH] */
            EQ(w->w2[i * HH + h], t[T_MPROJW].data[h * HD + i]); /* c_proj [HH][HD] */
        }
    }
#undef EQ
    return bad;
}

static void write_hand_dir(const char *dir, st_tensor *t, int n, const char *cfg)
{
    al_mkdir_p(dir);
    char p[1300];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, t, n);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, cfg);
}

static void test_handwritten(void)
{
    st_tensor t[T_N];
    for (int pass = 0; pass < 2; pass++) {
        const char *prefix = pass ? "transformer." : ""; /* GPT2LMHeadModel's names, then GPT2Model's */
        int n = hand_tensors(t, prefix);
        const char *dir = pathf("hand%s", pass ? "1" : "0");
        write_hand_dir(dir, t, n, hand_cfg);
        al_model m;
        CHECK_OK(al_model_load(&m, dir));
        if (m.params) {
            CHECK(m.cfg.arch == AL_ARCH_GPT2 && m.cfg.dim == HD && m.cfg.hidden_dim == HH && m.cfg.n_heads == 2);
            CHECK(m.cfg.head_dim == 2 && m.cfg.seq_len == HP && m.cfg.vocab_size == HV && !m.cfg.tied_embeddings);
            CHECK(m.w.w3 == NULL && m.w.pos_emb && m.w.bln_final);
            int bad = check_hand_values(&m, t);
            CHECKF(bad == 0, "%s: %d values misplaced", prefix, bad);

            /* saved again: GPT2LMHeadModel's names, the same values in the same places */
            CHECK_OK(al_model_save_safetensors(&m, pathf("hand-resaved", NULL)));
            al_model r;
            CHECK_OK(al_model_load(&r, pathf("hand-resaved", NULL)));
            CHECK(r.params && r.n_params == m.n_params && !memcmp(r.params, m.params, m.n_params * sizeof(float)));
            if (r.params)
                al_model_free(&r);
            al_model_free(&m);
        }
        free_tensors(t, n);
    }
}

/* ---- malformed files: each a clear message, nothing allocated ---- */

static void expect_load_error(const char *label, st_tensor *t, int n, const char *cfg, const char *want)
{
    const char *dir = pathf("bad", NULL);
    write_hand_dir(dir, t, n, cfg);
    al_model m;
    memset(&m, 0x5a, sizeof m);
    int rc = al_model_load(&m, dir);
    CHECKF(rc == -1, "%s: accepted", label);
    CHECKF(rc == -1 && strstr(al_errmsg(), want), "%s: message '%s' lacks '%s'", label, al_errmsg(), want);
    CHECKF(rc == -1 && m.params == NULL, "%s: params left allocated", label);
    if (rc == 0)
        al_model_free(&m);
}

static void test_malformed(void)
{
    st_tensor t[T_N];
    int n = hand_tensors(t, "transformer.");

    /* a missing tensor: named as the file would name it */
    st_tensor saved = t[T_LNFB];
    t[T_LNFB] = t[n - 1];
    expect_load_error("missing ln_f.bias", t, n - 1, hand_cfg, "missing tensor 'transformer.ln_f.bias'");
    t[T_LNFB] = saved;

    /* c_attn stored as a Linear ([out][in]) instead of a Conv1D */
    t[T_ATTNW].shape[0] = 3 * HD, t[T_ATTNW].shape[1] = HD;
    expect_load_error("c_attn as Linear", t, n, hand_cfg,
                      "tensor 'transformer.h.0.attn.c_attn.weight': shape [12, 4], but config.json implies [4, 12]");
    t[T_ATTNW].shape[0] = HD, t[T_ATTNW].shape[1] = 3 * HD;

    /* c_fc's width disagrees with n_inner */
    char *cfg = replace1(hand_cfg, "\"n_inner\":8", "\"n_inner\":9");
    expect_load_error("n_inner mismatch", t, n, cfg, "mlp.c_fc.weight': shape [4, 8], but config.json implies [4, 9]");
    free(cfg);

    /* unknown activation */
    cfg = replace1(hand_cfg, "gelu_new", "relu");
    expect_load_error("relu", t, n, cfg, "activation_function: 'relu' is not supported");
    free(cfg);

    /* a Llama name in a GPT-2 file */
    snprintf(t[T_LN1W].name, sizeof t[T_LN1W].name, "model.layers.0.input_layernorm.weight");
    expect_load_error("llama name", t, n, hand_cfg, "unexpected tensor name (not part of a GPT-2 model");
    snprintf(t[T_LN1W].name, sizeof t[T_LN1W].name, "transformer.h.0.ln_1.weight");

    /* a layer beyond n_layer */
    snprintf(t[T_LN1W].name, sizeof t[T_LN1W].name, "transformer.h.1.ln_1.weight");
    expect_load_error("layer 1", t, n, hand_cfg, "layer 1 is out of range (config.json has n_layer 1)");
    snprintf(t[T_LN1W].name, sizeof t[T_LN1W].name, "transformer.h.0.ln_1.weight");

    /* lm_head under the transformer prefix is not a name GPT-2 uses */
    snprintf(t[T_LMHEAD].name, sizeof t[T_LMHEAD].name, "transformer.lm_head.weight");
    expect_load_error("prefixed lm_head", t, n, hand_cfg, "unexpected tensor name");
    snprintf(t[T_LMHEAD].name, sizeof t[T_LMHEAD].name, "lm_head.weight");

    /* lm_head in a tied model */
    cfg = replace1(hand_cfg, "false}", "true}");
    expect_load_error("lm_head tied", t, n, cfg, "tie_word_embeddings true");
    free(cfg);

    /* the same tensor with and without the prefix */
    st_tensor dup[T_N + 1];
    memcpy(dup, t, sizeof t);
    dup[n] = t[T_LN2W];
    snprintf(dup[n].name, sizeof dup[n].name, "h.0.ln_2.weight");
    expect_load_error("stored twice", dup, n + 1, hand_cfg, "stored twice");

    /* an ignored buffer may have any dtype, a parameter may not */
    t[T_LNFW].dtype = "I64";
    expect_load_error("I64 parameter", t, n, hand_cfg, "unsupported dtype 'I64'");
    t[T_LNFW].dtype = "F32";
    free_tensors(t, n);
}

/* ---- save -> file -> load ---- */

static json_t *read_header(const char *path)
{
    al_buf f = {0};
    if (al_read_file(path, &f) || f.len < 8)
        return NULL;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | (uint8_t)f.data[i];
    json_t *j = h <= f.len - 8 ? json_loadb(f.data + 8, (size_t)h, 0, NULL) : NULL;
    al_buf_free(&f);
    return j;
}

static bool has_shape(json_t *hdr, const char *name, int s0, int s1)
{
    json_t *sh = json_object_get(json_object_get(hdr, name), "shape");
    if (!json_is_array(sh) || json_array_size(sh) != (s1 ? 2u : 1u))
        return false;
    return json_integer_value(json_array_get(sh, 0)) == s0 &&
           (!s1 || json_integer_value(json_array_get(sh, 1)) == s1);
}

static const float *tensor_data(const al_buf *f, json_t *hdr, const char *name)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | (uint8_t)f->data[i];
    json_t *off = json_object_get(json_object_get(hdr, name), "data_offsets");
    return (const float *)(f->data + 8 + h + json_integer_value(json_array_get(off, 0)));
}

static void check_saved_file(const al_model *m, const char *dir)
{
    const al_config *c = &m->cfg;
    const int D = c->dim, H = c->hidden_dim, L = c->n_layers;
    char p[1300];
    /* config.json */
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_t *cfg = json_load_file(p, 0, NULL);
    CHECK(cfg != NULL);
    json_t *arch = json_object_get(cfg, "architectures");
    CHECK(json_is_array(arch) && !strcmp(json_string_value(json_array_get(arch, 0)), "GPT2LMHeadModel"));
    CHECK(!strcmp(json_string_value(json_object_get(cfg, "model_type")), "gpt2"));
    CHECK(json_integer_value(json_object_get(cfg, "n_embd")) == D);
    CHECK(json_integer_value(json_object_get(cfg, "n_layer")) == L);
    CHECK(json_integer_value(json_object_get(cfg, "n_head")) == c->n_heads);
    CHECK(json_integer_value(json_object_get(cfg, "n_inner")) == H);
    CHECK(json_integer_value(json_object_get(cfg, "n_positions")) == c->seq_len);
    CHECK(json_integer_value(json_object_get(cfg, "vocab_size")) == c->vocab_size);
    CHECK((float)json_number_value(json_object_get(cfg, "layer_norm_epsilon")) == c->norm_eps);
    CHECK(!strcmp(json_string_value(json_object_get(cfg, "activation_function")), "gelu_new"));
    CHECK(json_is_boolean(json_object_get(cfg, "tie_word_embeddings")) &&
          json_is_true(json_object_get(cfg, "tie_word_embeddings")) == c->tied_embeddings);
    json_decref(cfg);

    /* model.safetensors: exactly GPT2LMHeadModel's parameter names and shapes */
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    json_t *hdr = read_header(p);
    CHECK(hdr != NULL);
    if (!hdr)
        return;
    const size_t want = 2 + 12 * (size_t)L + 2 + (c->tied_embeddings ? 0 : 1);
    CHECKF(json_object_size(hdr) == want + 1, "%zu entries, want %zu + __metadata__", json_object_size(hdr), want);
    CHECK(has_shape(hdr, "transformer.wte.weight", c->vocab_size, D));
    CHECK(has_shape(hdr, "transformer.wpe.weight", c->seq_len, D));
    CHECK(has_shape(hdr, "transformer.ln_f.weight", D, 0) && has_shape(hdr, "transformer.ln_f.bias", D, 0));
    CHECK(c->tied_embeddings ? !json_object_get(hdr, "lm_head.weight")
                             : has_shape(hdr, "lm_head.weight", c->vocab_size, D));
    for (int l = 0; l < L; l++) {
        char n[128];
#define SHAPE(SUFFIX, S0, S1) (snprintf(n, sizeof n, "transformer.h.%d.%s", l, SUFFIX), has_shape(hdr, n, S0, S1))
        CHECK(SHAPE("ln_1.weight", D, 0) && SHAPE("ln_1.bias", D, 0));
        CHECK(SHAPE("attn.c_attn.weight", D, 3 * D) && SHAPE("attn.c_attn.bias", 3 * D, 0));
        CHECK(SHAPE("attn.c_proj.weight", D, D) && SHAPE("attn.c_proj.bias", D, 0));
        CHECK(SHAPE("ln_2.weight", D, 0) && SHAPE("ln_2.bias", D, 0));
        CHECK(SHAPE("mlp.c_fc.weight", D, H) && SHAPE("mlp.c_fc.bias", H, 0));
        CHECK(SHAPE("mlp.c_proj.weight", H, D) && SHAPE("mlp.c_proj.bias", D, 0));
#undef SHAPE
    }
    /* The values of the last layer's Conv1D tensors, read straight from the file. */
    al_buf f = {0};
    CHECK_OK(al_read_file(p, &f));
    CHECK(f.len > 0 && (f.len - 8) % 4 == 0);
    const int l = L - 1;
    char n[128];
    int bad = 0;
    snprintf(n, sizeof n, "transformer.h.%d.attn.c_attn.weight", l);
    const float *qkv = tensor_data(&f, hdr, n);
    snprintf(n, sizeof n, "transformer.h.%d.attn.c_attn.bias", l);
    const float *qkv_b = tensor_data(&f, hdr, n);
    snprintf(n, sizeof n, "transformer.h.%d.mlp.c_fc.weight", l);
    const float *fc = tensor_data(&f, hdr, n);
    snprintf(n, sizeof n, "transformer.h.%d.mlp.c_proj.weight", l);
    const float *proj = tensor_data(&f, hdr, n);
    const size_t lDD = (size_t)l * D * D, lHD = (size_t)l * H * D;
    for (int o = 0; o < D; o++) {
        bad += qkv_b[o] != m->w.bq[l * D + o] || qkv_b[D + o] != m->w.bk[l * D + o] ||
               qkv_b[2 * D + o] != m->w.bv[l * D + o];
        for (int i = 0; i < D; i++)
            bad += qkv[i * 3 * D + o] != m->w.wq[lDD + o * D + i] || qkv[i * 3 * D + D + o] != m->w.wk[lDD + o * D + i] ||
                   qkv[i * 3 * D + 2 * D + o] != m->w.wv[lDD + o * D + i];
    }
    for (int h = 0; h < H; h++)
        for (int i = 0; i < D; i++)
            bad += fc[i * H + h] != m->w.w1[lHD + h * D + i] || proj[h * D + i] != m->w.w2[lHD + i * H + h];
    CHECKF(bad == 0, "%d Conv1D values misplaced in the file", bad);
    /* every parameter written once: 8 + header + n_params floats */
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | (uint8_t)f.data[i];
    CHECK(8 + h + m->n_params * 4 == f.len && (8 + h) % 8 == 0);
    al_buf_free(&f);
    json_decref(hdr);
}

static bool same_file(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool eq = !al_read_file(a, &x) && !al_read_file(b, &y) && x.len == y.len && !memcmp(x.data, y.data, x.len);
    al_buf_free(&x);
    al_buf_free(&y);
    return eq;
}

static al_config small_gpt2(bool tied)
{
    return (al_config){.arch = AL_ARCH_GPT2, .dim = 16, .hidden_dim = 40, .n_layers = 2, .n_heads = 4,
                       .n_kv_heads = 4, .head_dim = 4, .vocab_size = 50, .seq_len = 12, .norm_eps = 1e-5f,
                       .qkv_bias = true, .tied_embeddings = tied, .bos_id = 1, .eos_id = 2};
}

/* Logits of rows of tokens through the training forward (NULL when it fails). */
static float *forward_logits(const al_model *m, const int *tokens, int B, int T)
{
    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    if (!ctx)
        return NULL;
    int *targets = malloc((size_t)B * T * sizeof *targets);
    for (int i = 0; i < B * T; i++)
        targets[i] = tokens[(i + 1) % (B * T)];
    float *out = NULL;
    if (al_forward(ctx, tokens, targets, NULL, NULL) == 0) {
        size_t n = (size_t)B * T * m->cfg.vocab_size;
        out = malloc(n * sizeof *out);
        memcpy(out, al_ctx_logits(ctx), n * sizeof *out);
    }
    free(targets);
    al_train_ctx_free(ctx);
    return out;
}

static void test_roundtrip(void)
{
    for (int tied = 0; tied < 2; tied++) {
        al_config c = small_gpt2(tied);
        al_model a, b;
        uint64_t rng = 42 + (uint64_t)tied;
        test_random_model(&a, &c, &rng, 0.3f);
        if (!a.params)
            return;
        const char *dir = pathf("rt%s", tied ? "-tied" : "-untied");
        CHECK_OK(al_model_save_safetensors(&a, dir));
        check_saved_file(&a, dir);
        CHECK_OK(al_model_load(&b, dir));
        if (!b.params) {
            al_model_free(&a);
            continue;
        }
        CHECK(b.cfg.arch == AL_ARCH_GPT2 && b.cfg.dim == c.dim && b.cfg.hidden_dim == c.hidden_dim &&
              b.cfg.n_layers == c.n_layers && b.cfg.n_heads == c.n_heads && b.cfg.n_kv_heads == c.n_kv_heads &&
              b.cfg.head_dim == c.head_dim && b.cfg.vocab_size == c.vocab_size && b.cfg.seq_len == c.seq_len &&
              b.cfg.norm_eps == c.norm_eps && b.cfg.tied_embeddings == c.tied_embeddings && b.cfg.qkv_bias &&
              b.cfg.bos_id == 1 && b.cfg.eos_id == 2);
        CHECK(b.n_params == a.n_params && !memcmp(a.params, b.params, a.n_params * sizeof(float)));
        /* saving the loaded model gives the same bytes */
        char again[1300];
        snprintf(again, sizeof again, "%s-again", dir);
        CHECK_OK(al_model_save_safetensors(&b, again));
        char p1[1400], p2[1400];
        snprintf(p1, sizeof p1, "%s/model.safetensors", dir);
        snprintf(p2, sizeof p2, "%s/model.safetensors", again);
        CHECK(same_file(p1, p2));
        snprintf(p1, sizeof p1, "%s/config.json", dir);
        snprintf(p2, sizeof p2, "%s/config.json", again);
        CHECK(same_file(p1, p2));

        /* the same function: identical, finite logits before and after */
        enum { B = 2, T = 7 };
        int tokens[B * T];
        for (int i = 0; i < B * T; i++)
            tokens[i] = (i * 7 + 3) % c.vocab_size;
        float *la = forward_logits(&a, tokens, B, T), *lb = forward_logits(&b, tokens, B, T);
        CHECKF(la && lb, "forward failed: %s", al_errmsg());
        if (la && lb) {
            size_t n = (size_t)B * T * c.vocab_size, finite = 0;
            for (size_t i = 0; i < n; i++)
                finite += isfinite(la[i]) != 0;
            CHECK(finite == n);
            CHECK(!memcmp(la, lb, n * sizeof *la));
        }
        free(la);
        free(lb);

        /* `align info` names the architecture */
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "'%s' info -m '%s' > '%s/info.out' 2>&1", ALIGN_BINARY, dir, tmp);
        CHECK(system(cmd) == 0);
        al_buf out = {0};
        CHECK_OK(al_read_file(pathf("info.out", NULL), &out));
        CHECKF(out.data && strstr(out.data, "arch gpt2"), "align info: %s", out.data ? out.data : "");
        al_buf_free(&out);
        al_model_free(&a);
        al_model_free(&b);
    }
}

/* What does not support GPT-2 yet says so. */
static void test_refusals(void)
{
    al_config c = small_gpt2(true);
    al_model m;
    uint64_t rng = 5;
    test_random_model(&m, &c, &rng, 0.1f);
    if (!m.params)
        return;
    CHECK(al_model_save_gguf(&m, NULL, pathf("m.gguf", NULL), AL_GGML_F32) == -1 &&
          strstr(al_errmsg(), "GGUF: GPT-2 layout not supported yet"));
    CHECK(!al_file_exists(pathf("m.gguf", NULL)));
    al_lora_config lc = {.rank = 2, .alpha = 4, .targets = AL_LORA_Q, .seed = 1};
    CHECK(al_lora_attach(&m, &lc) == -1 && strstr(al_errmsg(), "GPT-2") && m.lora == NULL);
    /* head_dim other than dim / n_heads cannot be written as HF GPT-2 */
    al_config odd = small_gpt2(true);
    odd.head_dim = 8;
    al_model o;
    if (al_model_init(&o, &odd) == 0) {
        CHECK(al_model_save_safetensors(&o, pathf("odd", NULL)) == -1 && strstr(al_errmsg(), "head_dim"));
        CHECK(!al_file_exists(pathf("odd/model.safetensors", NULL)));
        al_model_free(&o);
    }
    al_model_free(&m);
}

/* ---- align pretrain --arch gpt2 ---- */

static int run_cli(const char *args, const char *log)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>&1", ALIGN_BINARY, args, log);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool log_has(const char *log, const char *s)
{
    al_buf b = {0};
    bool ok = !al_read_file(log, &b) && b.data && strstr(b.data, s);
    if (!ok)
        fprintf(stderr, "log %s lacks '%s':\n%s\n", log, s, b.data ? b.data : "");
    al_buf_free(&b);
    return ok;
}

static void test_pretrain_cli(void)
{
    const char *data = shared_path("corpora/tinystories/TinyStories-validation-head.txt");
    const char *tok = shared_path("models/stories260K/tok512.bin");
    /* Llama's names for the sizes, as the pipeline's configs give them */
    write_text(pathf("cfg.json", NULL),
               "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,\n"
               "  \"num_attention_heads\": 4, \"tie_word_embeddings\": true},\n"
               " \"batch_size\": 2, \"seq_len\": 32, \"lr\": 0.004, \"warmup\": 1}\n");
    char base[4096], args[6000];
    snprintf(base, sizeof base, "pretrain --data '%s' --tokenizer '%s' --config '%s' --cache-dir '%s/cache' --quiet "
             "--eval-every 2 --eval-batches 1 --save-every 2",
             data, tok, pathf("cfg.json", NULL), tmp);
    char log[1300], out[1300];
    snprintf(log, sizeof log, "%s", pathf("pretrain.log", NULL));
    snprintf(out, sizeof out, "%s", pathf("run", NULL));
    snprintf(args, sizeof args, "%s --arch gpt2 --steps 2 --out '%s'", base, out);
    int rc = run_cli(args, log);
    CHECKF(rc == 0, "align pretrain --arch gpt2 exited %d", rc);
    al_model m;
    CHECK_OK(al_model_load(&m, pathf("run/final", NULL)));
    if (m.params) {
        CHECK(m.cfg.arch == AL_ARCH_GPT2 && m.cfg.dim == 32 && m.cfg.hidden_dim == 64 && m.cfg.n_layers == 2 &&
              m.cfg.n_heads == 4 && m.cfg.vocab_size == 512 && m.cfg.tied_embeddings);
        bool finite = true;
        for (size_t i = 0; i < m.n_params; i++)
            finite = finite && isfinite(m.params[i]);
        CHECK(finite);
        al_model_free(&m);
    }
    al_buf cfg = {0};
    CHECK_OK(al_read_file(pathf("run/final/config.json", NULL), &cfg));
    CHECK(cfg.data && strstr(cfg.data, "\"GPT2LMHeadModel\"") && strstr(cfg.data, "\"n_inner\": 64"));
    al_buf_free(&cfg);
    CHECK(log_has(pathf("run/metrics.jsonl", NULL), "\"step\":2"));
    CHECK(log_has(pathf("run/train_args.json", NULL), "gpt2"));

    /* resumed from its checkpoint through the GPT-2 safetensors path */
    snprintf(args, sizeof args, "pretrain --resume '%s' --steps 4 --quiet", out);
    rc = run_cli(args, log);
    CHECKF(rc == 0, "align pretrain --resume exited %d", rc);
    CHECK(log_has(pathf("run/metrics.jsonl", NULL), "\"step\":4"));

    /* mistakes */
    snprintf(args, sizeof args, "%s --arch gpt3 --steps 1 --out '%s/x'", base, tmp);
    CHECK(run_cli(args, log) == 2 && log_has(log, "--arch must be llama or gpt2"));
    write_text(pathf("cfg-gqa.json", NULL),
               "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,\n"
               "  \"num_attention_heads\": 4, \"num_key_value_heads\": 2}}\n");
    snprintf(args, sizeof args, "pretrain --data '%s' --tokenizer '%s' --config '%s' --out '%s/x' --arch gpt2", data,
             tok, pathf("cfg-gqa.json", NULL), tmp);
    CHECK(run_cli(args, log) == 2 && log_has(log, "num_key_value_heads"));
    write_text(pathf("cfg-gpt2.json", NULL), "{\"model\": {\"model_type\": \"gpt2\", \"n_embd\": 32, \"n_layer\": 1,"
                                             " \"n_head\": 4}}\n");
    snprintf(args, sizeof args, "pretrain --data '%s' --tokenizer '%s' --config '%s' --out '%s/x' --arch llama", data,
             tok, pathf("cfg-gpt2.json", NULL), tmp);
    CHECK(run_cli(args, log) == 2 && log_has(log, "--arch llama, but"));
    snprintf(args, sizeof args, "pretrain --data '%s' --tokenizer '%s' --init '%s' --out '%s/x' --arch gpt2", data,
             tok, pathf("run/final", NULL), tmp);
    CHECK(run_cli(args, log) == 2 && log_has(log, "--init MODEL keeps its own"));
    CHECK(run_cli("pretrain --help", log) == 0 && log_has(log, "--arch llama|gpt2"));
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/align-test-gpt2-hf-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 2;
    }
    test_config();
    test_handwritten();
    test_malformed();
    test_roundtrip();
    test_refusals();
    test_pretrain_cli();
    int rc = test_report();
    if (rc == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    return rc;
}
