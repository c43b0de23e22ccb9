/* safetensors + config.json: the shared stories260K in both formats, save/reload round
 * trips, F16/BF16 conversion, `align convert`, and malformed files (each a clear error). */
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "align/model.h"
#include "test.h"

static char tmp[512];

/* ---- small helpers ---- */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static char *pathf(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 1024, "%s/%s", tmp, name);
    return p;
}

/* dir/model.safetensors from a header text and a data area. */
static void write_st(const char *dir, const char *hdr, size_t hlen, const void *data, size_t dlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    uint8_t *b = malloc(8 + hlen + dlen + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    if (dlen)
        memcpy(b + 8 + hlen, data, dlen);
    write_bytes(path, b, 8 + hlen + dlen);
    free(b);
}

static void write_cfg(const char *dir, const char *json)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, json, strlen(json));
}

static bool files_equal(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool eq = !al_read_file(a, &x) && !al_read_file(b, &y) && x.len == y.len && !memcmp(x.data, y.data, x.len);
    al_buf_free(&x);
    al_buf_free(&y);
    return eq;
}

/* Replaces the first occurrence of from (which must exist) with to; malloc'd result. */
static char *replace1(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    if (!p) {
        fprintf(stderr, "test bug: '%s' not in header\n", from);
        exit(2);
    }
    size_t a = (size_t)(p - s), f = strlen(from), t = strlen(to), n = strlen(s);
    char *r = malloc(n - f + t + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, t);
    memcpy(r + a + t, p + f, n - a - f + 1);
    return r;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- the tiny model: dim 8, hidden 16, 1 layer, 2 heads (head_dim 4), 1 kv head, vocab 16 ---- */

static const char *tiny_cfg =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":8,"
    "\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"vocab_size\":16,\"max_position_embeddings\":32,\"rms_norm_eps\":1e-05,\"tie_word_embeddings\":true}";

typedef struct tt {
    const char *name;
    int rows, cols;
    size_t field; /* offsetof(al_params, ...) */
} tt;

#define F(x) offsetof(al_params, x)
static const tt tiny[] = {
    {"model.embed_tokens.weight", 16, 8, F(tok_emb)},
    {"model.layers.0.input_layernorm.weight", 8, 0, F(rms_att)},
    {"model.layers.0.self_attn.q_proj.weight", 8, 8, F(wq)},
    {"model.layers.0.self_attn.k_proj.weight", 4, 8, F(wk)},
    {"model.layers.0.self_attn.v_proj.weight", 4, 8, F(wv)},
    {"model.layers.0.self_attn.o_proj.weight", 8, 8, F(wo)},
    {"model.layers.0.post_attention_layernorm.weight", 8, 0, F(rms_ffn)},
    {"model.layers.0.mlp.gate_proj.weight", 16, 8, F(w1)},
    {"model.layers.0.mlp.up_proj.weight", 16, 8, F(w3)},
    {"model.layers.0.mlp.down_proj.weight", 8, 16, F(w2)},
    {"model.norm.weight", 8, 0, F(rms_final)},
    {"lm_head.weight", 16, 8, F(wcls)}, /* only with n_tiny = 12 */
};
#undef F
#define N_TINY_TIED 11

static float *param_of(al_model *m, const tt *t) { return *(float **)((char *)&m->w + t->field); }

/* f16 bits of a float that f16 represents exactly as a normal number or zero. */
static uint16_t to_f16_exact(float v)
{
    uint32_t b = fbits(v);
    uint16_t s = (uint16_t)(b >> 16 & 0x8000u);
    if ((b & 0x7fffffffu) == 0)
        return s;
    int e = (int)(b >> 23 & 0xff) - 127 + 15;
    return (uint16_t)(s | (uint16_t)(e << 10) | (uint16_t)(b >> 13 & 0x3ffu));
}

/* Special values: f16 bits -> expected f32 bits. */
static const uint16_t f16_special[][2] = {
    {0x0000, 0}, {0x8000, 0}, {0x0001, 0}, {0x8001, 0}, {0x0200, 0}, {0x03ff, 0}, {0x0400, 0},
    {0x3c00, 0}, {0xc000, 0}, {0x7bff, 0}, {0x7c00, 0}, {0xfc00, 0}, {0x7e00, 0}, {0x3555, 0},
};
static float f16_special_value(int i)
{
    switch (i) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return 0x1p-24f;        /* smallest subnormal */
    case 3: return -0x1p-24f;
    case 4: return 0x1p-15f;        /* subnormal */
    case 5: return 1023 * 0x1p-24f; /* largest subnormal */
    case 6: return 0x1p-14f;        /* smallest normal */
    case 7: return 1.0f;
    case 8: return -2.0f;
    case 9: return 65504.0f;
    case 10: return INFINITY;
    case 11: return -INFINITY;
    case 12: return NAN;
    default: return 0.333251953125f;
    }
}
#define N_F16_SPECIAL 14
/* bf16 bits (the expected f32 is bits << 16, exactly). */
static const uint16_t bf16_special[] = {0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x3f80, 0xc049,
                                        0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0xffc1};
#define N_BF16_SPECIAL 12

/* Builds the tiny model's header and data; dtype per tensor from dts ('f' F32, 'h' F16,
 * 'b' BF16; cycled), specials at the start of the embedding when it is F16/BF16.
 * expect[i] receives the floats tensor i must load as. */
static void build_tiny(const char *dts, int n_tensors, al_buf *hdr, al_buf *data, float **expect)
{
    size_t ndt = strlen(dts);
    int k = 0;
    al_buf_printf(hdr, "{");
    for (int i = 0; i < n_tensors; i++) {
        const tt *t = &tiny[i];
        char dt = dts[(size_t)i % ndt];
        size_t numel = (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
        size_t esz = dt == 'f' ? 4 : 2;
        size_t begin = data->len;
        expect[i] = malloc(numel * sizeof(float));
        for (size_t j = 0; j < numel; j++, k++) {
            float v = (float)((k * 7) % 17 - 8) * 0.25f;
            if (dt == 'f') {
                al_buf_append(data, &v, 4);
            } else if (dt == 'h') {
                uint16_t h = to_f16_exact(v);
                if (i == 0 && j < N_F16_SPECIAL) {
                    h = f16_special[j][0];
                    v = f16_special_value((int)j);
                }
                al_buf_append(data, &h, 2);
            } else {
                uint16_t h = (uint16_t)(fbits(v) >> 16);
                if (i == 0 && j < N_BF16_SPECIAL) {
                    h = bf16_special[j];
                    v = bitsf((uint32_t)h << 16);
                }
                al_buf_append(data, &h, 2);
            }
            expect[i][j] = v;
        }
        if (t->cols)
            al_buf_printf(hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                          i ? "," : "", t->name, dt == 'f' ? "F32" : dt == 'h' ? "F16" : "BF16", t->rows, t->cols,
                          begin, begin + numel * esz);
        else
            al_buf_printf(hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                          i ? "," : "", t->name, dt == 'f' ? "F32" : dt == 'h' ? "F16" : "BF16", t->rows,
                          begin, begin + numel * esz);
    }
    al_buf_printf(hdr, "}");
}

static bool same_float(float got, float want)
{
    if (isnan(want))
        return isnan(got);
    return fbits(got) == fbits(want);
}

static void check_tiny_load(const char *label, const char *dts, int n_tensors, const char *cfg)
{
    al_buf hdr = {0}, data = {0};
    float *expect[12];
    build_tiny(dts, n_tensors, &hdr, &data, expect);
    const char *dir = pathf(label);
    al_mkdir_p(dir);
    write_st(dir, hdr.data, hdr.len, data.data, data.len);
    write_cfg(dir, cfg);
    al_model m;
    CHECK_OK(al_model_load(&m, dir));
    if (m.params) {
        int bad = 0;
        for (int i = 0; i < n_tensors; i++) {
            const float *p = param_of(&m, &tiny[i]);
            size_t numel = (size_t)tiny[i].rows * (size_t)(tiny[i].cols ? tiny[i].cols : 1);
            for (size_t j = 0; j < numel; j++)
                if (!same_float(p[j], expect[i][j])) {
                    if (bad++ < 5)
                        fprintf(stderr, "%s: %s[%zu] = %a (bits %08x), want %a (bits %08x)\n", label,
                                tiny[i].name, j, (double)p[j], fbits(p[j]), (double)expect[i][j],
                                fbits(expect[i][j]));
                }
        }
        CHECKF(bad == 0, "%s: %d values differ", label, bad);
        CHECK(m.cfg.rope == AL_ROPE_HALF && m.cfg.dim == 8 && m.cfg.head_dim == 4);
    }
    al_model_free(&m);
    for (int i = 0; i < n_tensors; i++)
        free(expect[i]);
    al_buf_free(&hdr);
    al_buf_free(&data);
}

static void test_dtypes(void)
{
    check_tiny_load("f32", "f", N_TINY_TIED, tiny_cfg);
    check_tiny_load("f16", "h", N_TINY_TIED, tiny_cfg);
    check_tiny_load("bf16", "b", N_TINY_TIED, tiny_cfg);
    check_tiny_load("mixed", "hbf", N_TINY_TIED, tiny_cfg);
    char *untied = replace1(tiny_cfg, "\"tie_word_embeddings\":true", "\"tie_word_embeddings\":false");
    check_tiny_load("untied", "fhb", 12, untied);
    free(untied);
    /* Also the F16 specials in a .safetensors path (config.json beside it). */
    al_model m;
    CHECK_OK(al_model_load_safetensors(&m, pathf("f16/model.safetensors")));
    CHECK(m.params && signbit(m.w.tok_emb[1]) && m.w.tok_emb[1] == 0.0f && isinf(m.w.tok_emb[10]));
    al_model_free(&m);
}

/* ---- malformed files ---- */

static al_buf good_hdr, good_data;

/* Loading dir/ must fail with a message containing want (and the file's name). */
static void expect_fail_files(const char *label, const char *want)
{
    const char *dir = pathf("bad");
    al_model m;
    memset(&m, 0x5a, sizeof m);
    int rc = al_model_load(&m, dir);
    CHECKF(rc == -1, "%s: accepted", label);
    CHECKF(rc == -1 && strstr(al_errmsg(), want), "%s: message '%s' lacks '%s'", label, al_errmsg(), want);
    CHECKF(rc == -1 && m.params == NULL, "%s: params left allocated", label);
    if (rc == 0)
        al_model_free(&m);
}

static void expect_fail(const char *label, const char *hdr, const void *data, size_t dlen, const char *want)
{
    const char *dir = pathf("bad");
    al_mkdir_p(dir);
    write_st(dir, hdr, strlen(hdr), data, dlen);
    write_cfg(dir, tiny_cfg);
    expect_fail_files(label, want);
}

/* The good header with from -> to. */
static void expect_fail_sub(const char *label, const char *from, const char *to, const char *want)
{
    char *h = replace1(good_hdr.data, from, to);
    expect_fail(label, h, good_data.data, good_data.len, want);
    free(h);
}

static void test_malformed(void)
{
    float *expect[12];
    build_tiny("f", N_TINY_TIED, &good_hdr, &good_data, expect);
    for (int i = 0; i < N_TINY_TIED; i++)
        free(expect[i]);
    const char *D = good_data.data;
    const size_t DL = good_data.len;
    const char *emb = "\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[16,8],\"data_offsets\":[0,512]}";
    CHECK(strstr(good_hdr.data, emb) != NULL);

    /* The baseline loads. */
    {
        const char *dir = pathf("bad");
        al_mkdir_p(dir);
        write_st(dir, good_hdr.data, good_hdr.len, D, DL);
        write_cfg(dir, tiny_cfg);
        al_model m;
        CHECK_OK(al_model_load(&m, dir));
        al_model_free(&m);
    }

    /* Truncated at every byte. */
    {
        size_t total = 8 + good_hdr.len + DL;
        uint8_t *full = malloc(total);
        for (int i = 0; i < 8; i++)
            full[i] = (uint8_t)((uint64_t)good_hdr.len >> (8 * i));
        memcpy(full + 8, good_hdr.data, good_hdr.len);
        memcpy(full + 8 + good_hdr.len, D, DL);
        int accepted = 0, bad_msg = 0;
        for (size_t cut = 0; cut < total; cut++) {
            write_bytes(pathf("bad/model.safetensors"), full, cut);
            al_model m;
            if (al_model_load(&m, pathf("bad")) == 0) {
                accepted++;
                al_model_free(&m);
            } else if (!strstr(al_errmsg(), "model.safetensors") ||
                       !(strstr(al_errmsg(), "shorter") || strstr(al_errmsg(), "header length") ||
                         strstr(al_errmsg(), "JSON") || strstr(al_errmsg(), "beyond the data area"))) {
                if (bad_msg++ < 3)
                    fprintf(stderr, "cut %zu: unclear message: %s\n", cut, al_errmsg());
            }
        }
        CHECKF(accepted == 0, "%d truncated files accepted", accepted);
        CHECK(bad_msg == 0);
        free(full);
    }

    /* Header length. */
    {
        uint8_t b[16] = {0};
        b[0] = 100;
        memcpy(b + 8, "{}      ", 8);
        write_bytes(pathf("bad/model.safetensors"), b, 16);
        expect_fail_files("header length > file", "header length 100 is larger than the rest of the file");
        memset(b, 0xff, 8);
        write_bytes(pathf("bad/model.safetensors"), b, 16);
        expect_fail_files("header length 2^64-1", "header length");
        write_bytes(pathf("bad/model.safetensors"), b, 0);
        expect_fail_files("empty file", "shorter than the 8-byte header length");
    }
    expect_fail("empty header", "", NULL, 0, "not valid JSON");
    expect_fail("non-JSON header", "{\"a\": nope}", NULL, 0, "header is not valid JSON");
    expect_fail("binary header", "\x01\x02\xff", NULL, 0, "not valid JSON");
    expect_fail("header array", "[1,2,3]", NULL, 0, "header is not a JSON object");
    expect_fail("header string", "\"x\"", NULL, 0, "not");
    expect_fail_sub("missing dtype", "\"dtype\":\"F32\",\"shape\":[16,8]", "\"shape\":[16,8]",
                    "'model.embed_tokens.weight': missing dtype");
    expect_fail_sub("missing shape", "\"shape\":[16,8],", "", "'model.embed_tokens.weight': missing shape");
    expect_fail_sub("missing data_offsets", ",\"data_offsets\":[0,512]", "",
                    "'model.embed_tokens.weight': missing data_offsets");
    expect_fail_sub("entry not object", emb, "\"model.embed_tokens.weight\":[1]", "expected an object");
    expect_fail_sub("dtype not string", "\"dtype\":\"F32\"", "\"dtype\":32", "dtype: expected a string");
    expect_fail_sub("shape not array", "\"shape\":[16,8]", "\"shape\":\"16x8\"", "shape: expected an array");
    expect_fail_sub("shape negative", "\"shape\":[16,8]", "\"shape\":[-16,8]", "shape: expected an array");
    expect_fail_sub("shape real", "\"shape\":[16,8]", "\"shape\":[16.0,8]", "shape: expected an array");
    expect_fail_sub("offsets one", "[0,512]", "[512]", "data_offsets: expected an array of two");
    expect_fail_sub("offsets strings", "[0,512]", "[\"0\",\"512\"]", "data_offsets: expected");
    expect_fail_sub("offsets negative", "[0,512]", "[-4,508]", "data_offsets: expected");
    expect_fail_sub("dtype I64", "\"dtype\":\"F32\"", "\"dtype\":\"I64\"",
                    "tensor 'model.embed_tokens.weight': unsupported dtype 'I64'");
    expect_fail_sub("dtype F64", "\"dtype\":\"F32\"", "\"dtype\":\"F64\"", "unsupported dtype 'F64'");
    expect_fail_sub("dtype junk", "\"dtype\":\"F32\"", "\"dtype\":\"Q4_K\"", "unsupported dtype 'Q4_K'");
    expect_fail_sub("wrong shape", "[16,8]", "[8,16]",
                    "tensor 'model.embed_tokens.weight': shape [8, 16], but config.json implies [16, 8]");
    expect_fail_sub("wrong rank", "[16,8]", "[128]", "shape [128], but config.json implies [16, 8]");
    expect_fail_sub("rank 3", "[16,8]", "[2,8,8]", "shape [2, 8, 8]");
    expect_fail_sub("vector as matrix", "\"shape\":[8],\"data_offsets\":[512,544]",
                    "\"shape\":[8,1],\"data_offsets\":[512,544]", "config.json implies [8]");
    expect_fail_sub("size mismatch", "[0,512]", "[0,508]", "data_offsets span 508 bytes");
    expect_fail_sub("shape overflow", "[16,8]", "[4294967296,4294967296,4294967296]", "more than 2^64");
    expect_fail_sub("end before begin", "[0,512]", "[512,0]", "end 0 is before begin 512");
    expect_fail_sub("out of range", "[0,512]", "[100000,100512]", "beyond the data area");
    expect_fail_sub("huge offset", "[0,512]", "[9223372036854775296,9223372036854775807]",
                    "beyond the data area");
    expect_fail("truncated data", good_hdr.data, D, DL - 4, "beyond the data area");
    expect_fail_sub("overlap", "\"data_offsets\":[512,544]", "\"data_offsets\":[480,512]", "overlap");
    expect_fail_sub("overlap same", "\"data_offsets\":[512,544]", "\"data_offsets\":[0,32]",
                    "tensors 'model.layers.0.input_layernorm.weight' and 'model.embed_tokens.weight' "
                    "overlap (bytes 0..32 and 0..512)");
    {
        /* Missing tensor: drop model.norm.weight (the last entry). */
        char *h = strdup(good_hdr.data);
        char *p = strstr(h, ",\"model.norm.weight\"");
        strcpy(p, "}");
        expect_fail("missing tensor", h, D, DL, "missing tensor 'model.norm.weight'");
        free(h);
    }
    /* Extra tensors after the last entry: the data area gets 4 more bytes. */
    {
        char *d2 = malloc(DL + 64);
        memcpy(d2, D, DL);
        memset(d2 + DL, 0, 64);
        char extra[512], *h;
        const char *names[] = {
            "model.layers.0.mlp.foo.weight",     "unexpected tensor name",
            "model.layers.1.input_layernorm.weight", "layer 1 is out of range",
            "model.layers.00.input_layernorm.weight", "unexpected tensor name",
            "model.layers.0x.input_layernorm.weight", "unexpected tensor name",
            "model.layers..input_layernorm.weight",   "unexpected tensor name",
            "lm_head.weight",                        "tie_word_embeddings",
            "model.layers.0.self_attn.q_proj.bias",  "bias",
            "model.layers.0.self_attn.o_proj.bias",  "unexpected tensor name",
            "transformer.wte.weight",                "unexpected tensor name",
            "model.layers.0.input_layernorm.weight", "not valid JSON", /* a duplicate key */
        };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i += 2) {
            if (!strcmp(names[i], "lm_head.weight")) /* right shape, so the tie is what fails */
                snprintf(extra, sizeof extra,
                         ",\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[16,8],\"data_offsets\":[0,512]}}");
            else
                snprintf(extra, sizeof extra,
                         ",\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}}", names[i], DL,
                         DL + 4);
            h = strdup(good_hdr.data);
            h[strlen(h) - 1] = 0; /* drop the closing brace */
            char *h2 = malloc(strlen(h) + strlen(extra) + 1);
            strcpy(h2, h);
            strcat(h2, extra);
            expect_fail(names[i], h2, d2, DL + 4, names[i + 1]);
            CHECKF(strstr(al_errmsg(), names[i]) || strstr(al_errmsg(), "JSON"),
                   "%s: message does not name the tensor: %s", names[i], al_errmsg());
            free(h);
            free(h2);
        }
        /* Rotary inv_freq buffers and empty metadata are ignored. */
        snprintf(extra, sizeof extra,
                 ",\"model.layers.0.self_attn.rotary_emb.inv_freq\":{\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[%zu,%zu]},\"__metadata__\":{}}",
                 DL, DL + 8);
        h = strdup(good_hdr.data);
        h[strlen(h) - 1] = 0;
        char *h2 = malloc(strlen(h) + strlen(extra) + 1);
        strcpy(h2, h);
        strcat(h2, extra);
        write_st(pathf("bad"), h2, strlen(h2), d2, DL + 8);
        al_model m;
        CHECK_OK(al_model_load(&m, pathf("bad")));
        al_model_free(&m);
        free(h);
        free(h2);
        free(d2);
    }
    expect_fail_sub("metadata not object", "{", "{\"__metadata__\":[1],", "__metadata__: expected an object");
    expect_fail_sub("metadata value", "{", "{\"__metadata__\":{\"format\":1},", "__metadata__: 'format'");

    /* config.json problems. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", pathf("bad"));
    write_st(dir, good_hdr.data, good_hdr.len, D, DL);
    unlink(pathf("bad/config.json"));
    expect_fail_files("config missing", "config.json not found");
    write_cfg(dir, "{\"hidden_size\": 8,");
    expect_fail_files("config malformed", "bad/config.json: not valid JSON");
    char *c1 = replace1(tiny_cfg, "\"rms_norm_eps\"",
                        "\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2},\"rms_norm_eps\"");
    write_cfg(dir, c1);
    expect_fail_files("config rope_scaling", "config.json: rope_scaling: not supported");
    free(c1);
    c1 = replace1(tiny_cfg, "\"num_attention_heads\":2", "\"num_attention_heads\":\"2\"");
    write_cfg(dir, c1);
    expect_fail_files("config wrong type", "config.json: num_attention_heads: expected a positive integer");
    free(c1);
    c1 = replace1(tiny_cfg, "\"vocab_size\":16", "\"vocab_size\":17");
    write_cfg(dir, c1);
    expect_fail_files("config disagrees with tensors", "config.json implies [17, 8]");
    free(c1);

    /* Paths. */
    al_model m;
    CHECK(al_model_load(&m, pathf("nope")) == -1 && strstr(al_errmsg(), "no such model file"));
    al_mkdir_p(pathf("emptydir"));
    CHECK(al_model_load(&m, pathf("emptydir")) == -1 && strstr(al_errmsg(), "no model.safetensors"));
    write_bytes(pathf("emptydir/model.safetensors.index.json"), "{}", 2);
    CHECK(al_model_load(&m, pathf("emptydir")) == -1 && strstr(al_errmsg(), "sharded"));
    /* a .gguf goes to the GGUF loader (tests/test_gguf_model.c) */
    CHECK_OK(al_model_load(&m, shared_path("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf")));
    al_model_free(&m);
    /* A safetensors file without the extension is recognised by its header. */
    {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", pathf("bad/model.safetensors"), pathf("bad/weights"));
        CHECK(system(cmd) == 0);
        write_cfg(dir, tiny_cfg);
        CHECK_OK(al_model_load(&m, pathf("bad/weights")));
        al_model_free(&m);
    }
    al_buf_free(&good_hdr);
    al_buf_free(&good_data);
}

/* ---- the shared stories260K in both formats ---- */

/* HF half-split row j of a head comes from interleaved row 2j (j < hd/2) or 2(j-hd/2)+1. */
static int perm_src(int r, int hd)
{
    int h = r / hd, j = r % hd;
    return h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
}

/* Compares an interleaved model a with a half-split model b tensor by tensor; returns
 * the number of differing rows (-1 for different sizes). */
static int diff_rows(const al_model *a, const al_model *b, const char *label, bool verbose)
{
    if (a->n_params != b->n_params)
        return -1;
    al_tensor_desc d[128];
    int n = al_tensor_layout(&a->cfg, d, 128);
    if (n > 128)
        return -1;
    int bad = 0;
    for (int i = 0; i < n && i < 128; i++) {
        const float *x = a->params + d[i].offset, *y = b->params + d[i].offset;
        size_t cols = (size_t)(d[i].cols ? d[i].cols : 1);
        bool perm = !strcmp(d[i].kind, "wq") || !strcmp(d[i].kind, "wk") || !strcmp(d[i].kind, "bq") ||
                    !strcmp(d[i].kind, "bk");
        for (int r = 0; r < d[i].rows; r++) {
            int src = perm ? perm_src(r, a->cfg.head_dim) : r;
            if (memcmp(y + (size_t)r * cols, x + (size_t)src * cols, cols * sizeof(float))) {
                if (bad++ < 5 && verbose)
                    fprintf(stderr, "%s: %s layer %d row %d differs\n", label, d[i].kind, d[i].layer, r);
            }
        }
    }
    return bad;
}

static void compare_models(const al_model *a, const al_model *b, const char *label)
{
    int bad = diff_rows(a, b, label, true);
    CHECKF(bad == 0, "%s: %d rows differ", label, bad);
}

static bool configs_agree_except_rope(const al_config *a, const al_config *b)
{
    return a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->seq_len == b->seq_len && a->norm_eps == b->norm_eps &&
           a->rope_theta == b->rope_theta && a->tied_embeddings == b->tied_embeddings &&
           a->qkv_bias == b->qkv_bias && a->bos_id == b->bos_id && a->eos_id == b->eos_id;
}

static int run_align(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/cli.out' 2>&1", ALIGN_BINARY, args, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool cli_output_has(const char *s)
{
    al_buf b = {0};
    bool ok = !al_read_file(pathf("cli.out"), &b) && strstr(b.data, s);
    al_buf_free(&b);
    return ok;
}

static void test_stories(void)
{
    const char *bin = shared_path("models/stories260K/stories260K.bin");
    const char *hf = shared_path("models/stories260K-hf/model.safetensors");
    const char *hfdir = shared_path("models/stories260K-hf");
    al_model a, b, c;
    CHECK_OK(al_model_load(&a, bin));
    CHECK_OK(al_model_load(&b, hfdir));
    if (!a.params || !b.params)
        return;
    CHECK(a.cfg.rope == AL_ROPE_INTERLEAVED && b.cfg.rope == AL_ROPE_HALF);
    CHECK(configs_agree_except_rope(&a.cfg, &b.cfg));
    compare_models(&a, &b, "bin vs shared hf");
    /* The .safetensors path itself. */
    CHECK_OK(al_model_load(&c, hf));
    CHECK(c.params && !memcmp(c.params, b.params, b.n_params * sizeof(float)));
    al_model_free(&c);

    /* A sanity check that the comparison can fail: one q element changed. */
    const float saved = b.w.wq[3];
    b.w.wq[3] += 1.0f;
    CHECK(diff_rows(&a, &b, "deliberate mismatch", false) == 1);
    b.w.wq[3] = saved;

    /* Save the llama2.c model, reload: the permuted originals, i.e. the shared HF tensors. */
    char out1[1024], out2[1024];
    snprintf(out1, sizeof out1, "%s", pathf("out1"));
    snprintf(out2, sizeof out2, "%s", pathf("out2"));
    CHECK_OK(al_model_save_safetensors(&a, out1));
    CHECK_OK(al_model_load(&c, out1));
    if (c.params) {
        CHECK(c.cfg.rope == AL_ROPE_HALF && configs_agree_except_rope(&a.cfg, &c.cfg));
        compare_models(&a, &c, "bin vs saved");
        CHECK(!memcmp(c.params, b.params, b.n_params * sizeof(float)));
        /* Saving the loaded model again: the same bytes. */
        CHECK_OK(al_model_save_safetensors(&c, out2));
        CHECK(files_equal(pathf("out1/model.safetensors"), pathf("out2/model.safetensors")));
        CHECK(files_equal(pathf("out1/config.json"), pathf("out2/config.json")));
        al_model_free(&c);
    }
    /* Saving the shared HF model gives the same bytes too. */
    CHECK_OK(al_model_save_safetensors(&b, pathf("out3")));
    CHECK(files_equal(pathf("out1/model.safetensors"), pathf("out3/model.safetensors")));

    /* The written config.json round trips. */
    al_buf j = {0};
    CHECK_OK(al_read_file(pathf("out1/config.json"), &j));
    al_config cfg;
    CHECK_OK(al_config_from_hf_json(&cfg, j.data, j.len, "out1/config.json"));
    CHECK(configs_agree_except_rope(&cfg, &a.cfg) && cfg.rope == AL_ROPE_HALF);
    CHECK(strstr(j.data, "\"LlamaForCausalLM\"") != NULL);
    al_buf_free(&j);

    /* The file layout: 8-byte aligned data start, __metadata__, no lm_head when tied, F32. */
    al_buf f = {0};
    CHECK_OK(al_read_file(pathf("out1/model.safetensors"), &f));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (uint8_t)f.data[i];
    CHECK((8 + hlen) % 8 == 0);
    CHECK(8 + hlen + a.n_params * 4 == f.len);
    CHECK(strstr(f.data + 8, "{\"__metadata__\":{\"format\":\"pt\"}") == f.data + 8);
    CHECK(!strstr(f.data + 8, "lm_head"));
    CHECK(!strstr(f.data + 8, "F16"));
    /* No temporaries left behind. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", out1);
    CHECK(system(cmd) != 0);
    al_buf_free(&f);

    /* align convert. */
    char args[2048];
    snprintf(args, sizeof args, "convert -m '%s' -o '%s'", bin, pathf("cli/nested"));
    CHECK(run_align(args) == 0);
    CHECK(files_equal(pathf("out1/model.safetensors"), pathf("cli/nested/model.safetensors")));
    CHECK(files_equal(pathf("out1/config.json"), pathf("cli/nested/config.json")));
    snprintf(args, sizeof args, "convert --model='%s' --output '%s'", hfdir, pathf("cli2"));
    CHECK(run_align(args) == 0 && cli_output_has("wrote"));
    CHECK(files_equal(pathf("out1/model.safetensors"), pathf("cli2/model.safetensors")));
    CHECK(run_align("convert --help") == 0 && cli_output_has("example") && cli_output_has("-o"));
    snprintf(args, sizeof args, "convert -m '%s'", bin);
    CHECK(run_align(args) == 2 && cli_output_has("-o OUTDIR"));
    CHECK(run_align("convert --bogus") == 2 && cli_output_has("unknown option"));
    snprintf(args, sizeof args, "convert -m '%s' -o '%s'", pathf("missing.bin"), pathf("cli3"));
    CHECK(run_align(args) == 1 && cli_output_has("missing.bin"));

    al_model_free(&a);
    al_model_free(&b);
}

/* Truncating the real file at many points: always an error, never a crash. */
static void test_stories_truncated(void)
{
    al_buf f = {0}, cfg = {0};
    CHECK_OK(al_read_file(shared_path("models/stories260K-hf/model.safetensors"), &f));
    CHECK_OK(al_read_file(shared_path("models/stories260K-hf/config.json"), &cfg));
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", pathf("trunc"));
    al_mkdir_p(dir);
    write_cfg(dir, cfg.data);
    int accepted = 0, tried = 0;
    for (size_t cut = 0; cut < f.len; cut += cut < 5100 ? 7 : f.len / 40) {
        write_bytes(pathf("trunc/model.safetensors"), f.data, cut);
        al_model m;
        tried++;
        if (al_model_load(&m, dir) == 0) {
            accepted++;
            al_model_free(&m);
        }
    }
    write_bytes(pathf("trunc/model.safetensors"), f.data, f.len - 1);
    al_model m;
    CHECK(al_model_load(&m, dir) == -1 && strstr(al_errmsg(), "beyond the data area"));
    CHECKF(accepted == 0, "%d of %d truncations accepted", accepted, tried);
    CHECK(tried > 700);
    al_buf_free(&f);
    al_buf_free(&cfg);
}

/* A biased, interleaved model: q/k rows and q/k biases are permuted on save, v is not,
 * and config.json says Qwen2. */
static void test_bias_permutation(void)
{
    al_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                   .vocab_size = 10, .seq_len = 8, .norm_eps = 1e-6f, .rope_theta = 1e6f,
                   .rope = AL_ROPE_INTERLEAVED, .tied_embeddings = false, .qkv_bias = true,
                   .bos_id = 3, .eos_id = 4};
    al_model a, b;
    CHECK_OK(al_model_init(&a, &c));
    if (!a.params)
        return;
    for (size_t i = 0; i < a.n_params; i++)
        a.params[i] = (float)i * 0.5f - 7.0f;
    CHECK_OK(al_model_save_safetensors(&a, pathf("qwen")));
    CHECK_OK(al_model_load(&b, pathf("qwen")));
    if (b.params) {
        CHECK(b.cfg.qkv_bias && !b.cfg.tied_embeddings && b.cfg.rope == AL_ROPE_HALF && b.cfg.bos_id == 3);
        compare_models(&a, &b, "qwen bias");
        /* Spot-check one explicitly: bq layer 1, head 2, half-split row 1 is interleaved row 2. */
        const int qd = c.n_heads * c.head_dim;
        CHECK(b.w.bq[qd + 2 * 4 + 1] == a.w.bq[qd + 2 * 4 + 2]);
        CHECK(b.w.bq[qd + 2 * 4 + 2] == a.w.bq[qd + 2 * 4 + 1]);
        CHECK(!memcmp(b.w.bv, a.w.bv, (size_t)(2 * c.n_kv_heads * c.head_dim) * sizeof(float)));
        CHECK(!memcmp(b.w.wcls, a.w.wcls, (size_t)(c.vocab_size * c.dim) * sizeof(float)));
        al_model_free(&b);
    }
    al_buf j = {0};
    CHECK_OK(al_read_file(pathf("qwen/config.json"), &j));
    CHECK(j.data && strstr(j.data, "\"Qwen2ForCausalLM\"") && strstr(j.data, "\"qwen2\""));
    al_buf_free(&j);
    al_model_free(&a);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/align-test-safetensors-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 2;
    }
    test_dtypes();
    test_malformed();
    test_stories();
    test_stories_truncated();
    test_bias_permutation();
    int rc = test_report();
    if (rc == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    return rc;
}
