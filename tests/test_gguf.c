/* GGUF reader: a real file's metadata and tensor infos, a synthetic file with every value
 * type, and malformed inputs (truncations, huge counts and lengths, bad headers) that
 * must each fail with a message and never read outside the buffer (run under ASan). */
#include "test.h"

#include <stdint.h>

/* ---- a tiny GGUF writer for synthetic files ---- */

typedef struct gbuf {
    uint8_t *d;
    size_t n, cap;
} gbuf;

static void put(gbuf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(gbuf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_key(gbuf *b, const char *k, uint32_t type)
{
    put_str(b, k);
    put_u32(b, type);
}

/* Offsets of interesting fields, for the corruption tests. */
typedef struct layout {
    size_t n_tensors_at, n_kv_at, str_len_at, arr_len_at, n_dims_at, dim0_at, type_at, offset_at, align_at;
} layout;

static gbuf synthetic(layout *L)
{
    gbuf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    L->n_tensors_at = b.n;
    put_u64(&b, 2);
    L->n_kv_at = b.n;
    put_u64(&b, 9);
    put_key(&b, "general.architecture", AL_GGUF_STRING);
    L->str_len_at = b.n;
    put_str(&b, "llama");
    put_key(&b, "u8", AL_GGUF_U8);
    put(&b, "\x07", 1);
    put_key(&b, "i16", AL_GGUF_I16);
    int16_t i16 = -300;
    put(&b, &i16, 2);
    put_key(&b, "f32", AL_GGUF_F32);
    float f = 1e-5f;
    put(&b, &f, 4);
    put_key(&b, "flag", AL_GGUF_BOOL);
    put(&b, "\x01", 1);
    put_key(&b, "i64", AL_GGUF_I64);
    int64_t i64 = -5;
    put(&b, &i64, 8);
    put_key(&b, "names", AL_GGUF_ARRAY);
    put_u32(&b, AL_GGUF_STRING);
    L->arr_len_at = b.n;
    put_u64(&b, 3);
    put_str(&b, "a");
    put_str(&b, "");
    put_str(&b, "\xE2\x96\x81hi");
    put_key(&b, "nested", AL_GGUF_ARRAY);
    put_u32(&b, AL_GGUF_ARRAY);
    put_u64(&b, 2);
    for (int i = 0; i < 2; i++) {
        put_u32(&b, AL_GGUF_I32);
        put_u64(&b, 2);
        int32_t v[2] = {i, -i};
        put(&b, v, 8);
    }
    put_key(&b, "general.alignment", AL_GGUF_U32);
    L->align_at = b.n;
    put_u32(&b, 64);
    /* tensors: "w" F32 [4, 3] at 0, "e" Q8_0 [32, 2] at 64 */
    put_str(&b, "w");
    L->n_dims_at = b.n;
    put_u32(&b, 2);
    L->dim0_at = b.n;
    put_u64(&b, 4);
    put_u64(&b, 3);
    L->type_at = b.n;
    put_u32(&b, 0);
    L->offset_at = b.n;
    put_u64(&b, 0);
    put_str(&b, "e");
    put_u32(&b, 2);
    put_u64(&b, 32);
    put_u64(&b, 2);
    put_u32(&b, 8);
    put_u64(&b, 64);
    while (b.n % 64)
        put(&b, "", 1);
    for (int i = 0; i < 12; i++) {
        float v = (float)i;
        put(&b, &v, 4);
    }
    while (b.n % 64)
        put(&b, "\xAA", 1);
    for (int i = 0; i < 68; i++)
        put(&b, "\x11", 1);
    return b;
}

/* Parses an exact-size heap copy, so any overread is an ASan report. */
static int open_copy(const uint8_t *d, size_t n, al_gguf *g)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, d, n);
    int rc = al_gguf_open_memory(g, copy, n, "synthetic.gguf");
    if (rc == 0)
        al_gguf_close(g);
    free(copy);
    return rc;
}

static void test_synthetic(void)
{
    layout L;
    gbuf b = synthetic(&L);
    al_gguf g;
    CHECK_OK(al_gguf_open_memory(&g, b.d, b.n, "synthetic.gguf"));
    CHECK(g.version == 3 && g.n_kv == 9 && g.n_tensors == 2 && g.alignment == 64);
    al_gguf_str s;
    CHECK_OK(al_gguf_get_str(&g, "general.architecture", &s));
    CHECK(al_gguf_str_eq(s, "llama"));
    uint32_t u;
    int32_t i;
    float f;
    bool flag;
    CHECK(al_gguf_get_u32(&g, "u8", &u) == 0 && u == 7);
    CHECK(al_gguf_get_i32(&g, "i16", &i) == 0 && i == -300);
    CHECK(al_gguf_get_u32(&g, "i16", &u) != 0); /* negative into unsigned */
    CHECK(al_gguf_get_i32(&g, "i64", &i) == 0 && i == -5);
    CHECK(al_gguf_get_f32(&g, "f32", &f) == 0 && f == 1e-5f);
    CHECK(al_gguf_get_bool(&g, "flag", &flag) == 0 && flag);
    CHECK(al_gguf_get_u32(&g, "general.architecture", &u) != 0 && strstr(al_errmsg(), "general.architecture"));
    CHECK(al_gguf_get_u32(&g, "missing.key", &u) != 0 && strstr(al_errmsg(), "missing.key"));
    al_gguf_str *names;
    size_t n;
    CHECK_OK(al_gguf_get_strs(&g, "names", &names, &n));
    CHECK(n == 3 && al_gguf_str_eq(names[0], "a") && names[1].len == 0 && al_gguf_str_eq(names[2], "\xE2\x96\x81hi"));
    free(names);
    float *fs;
    CHECK(al_gguf_get_f32s(&g, "names", &fs, &n) != 0);
    const al_gguf_kv *nested = al_gguf_find(&g, "nested");
    CHECK(nested && nested->type == AL_GGUF_ARRAY && nested->elem_type == AL_GGUF_ARRAY && nested->n == 2);
    const al_gguf_tensor *w = al_gguf_tensor_find(&g, "w"), *e = al_gguf_tensor_find(&g, "e");
    CHECK(w && w->n_dims == 2 && w->dims[0] == 4 && w->dims[1] == 3 && w->type == 0 && w->bytes == 48);
    CHECK(w && ((const float *)w->data)[11] == 11.0f && (const uint8_t *)w->data == b.d + g.data_offset);
    CHECK(e && e->type == 8 && e->bytes == 68 && (const uint8_t *)e->data == b.d + g.data_offset + 64);
    CHECK(!al_gguf_tensor_find(&g, "nope"));
    al_gguf_close(&g);

    /* every truncation fails cleanly */
    int ok_truncations = 0;
    for (size_t k = 0; k < b.n; k++)
        if (open_copy(b.d, k, &g) == 0)
            ok_truncations++;
    CHECKF(ok_truncations == 0, "%d truncated copies opened", ok_truncations);

    /* corrupted fields */
    struct {
        size_t at;
        uint64_t v;
        int width;
        const char *expect;
    } cases[] = {
        {0, 0x47475546, 4, "magic"},           /* "FUGG" */
        {4, 1, 4, "version 1"},
        {4, 7, 4, "version"},
        {4, 0x03000000, 4, "big-endian"},
        {L.n_tensors_at, 1ULL << 60, 8, "tensor count"},
        {L.n_kv_at, 1ULL << 60, 8, "metadata count"},
        {L.n_kv_at, 10, 8, ""},               /* one more key than present */
        {L.str_len_at, 1ULL << 63, 8, "string length"},
        {L.str_len_at, (uint64_t)-1, 8, "string length"},
        {L.arr_len_at, 1ULL << 62, 8, "array"},
        {L.n_dims_at, 5, 4, "dimensions"},
        {L.n_dims_at, 0, 4, "dimensions"},
        {L.dim0_at, 1ULL << 62, 8, ""},        /* too big for the file, or overflowing */
        {L.dim0_at, 0, 8, "dimension 0"},
        {L.type_at, 99, 4, "unknown ggml type"},
        {L.type_at, 8, 4, "block size"},       /* Q8_0 with 4 columns */
        {L.offset_at, 32, 8, "alignment"},
        {L.offset_at, 1ULL << 62, 8, "past the end"},
        {L.align_at, 0, 4, "power of two"},
        {L.align_at, 48, 4, "power of two"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *copy = malloc(b.n);
        memcpy(copy, b.d, b.n);
        memcpy(copy + cases[c].at, &cases[c].v, (size_t)cases[c].width);
        int rc = al_gguf_open_memory(&g, copy, b.n, "corrupt.gguf");
        CHECKF(rc != 0 && strstr(al_errmsg(), cases[c].expect), "case %zu: rc %d, message '%s'", c, rc,
               al_errmsg());
        if (rc == 0)
            al_gguf_close(&g);
        free(copy);
    }
    free(b.d);
}

static void test_tiny_random(void)
{
    const char *path = shared_path("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
    al_gguf g;
    CHECK_OK(al_gguf_open(&g, path));
    CHECK(g.version == 3 && g.n_tensors == 12 && g.alignment == 32 && g.data_offset % 32 == 0);
    al_gguf_str s;
    CHECK(al_gguf_get_str(&g, "general.architecture", &s) == 0 && al_gguf_str_eq(s, "llama"));
    CHECK(al_gguf_get_str(&g, "tokenizer.ggml.model", &s) == 0 && al_gguf_str_eq(s, "llama"));
    struct {
        const char *key;
        uint32_t v;
    } ints[] = {{"llama.embedding_length", 8},      {"llama.block_count", 1},
                {"llama.feed_forward_length", 32},  {"llama.attention.head_count", 2},
                {"llama.attention.head_count_kv", 2}, {"llama.rope.dimension_count", 4},
                {"llama.context_length", 4096},      {"tokenizer.ggml.bos_token_id", 1},
                {"tokenizer.ggml.eos_token_id", 2}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        uint32_t v = 0;
        CHECKF(al_gguf_get_u32(&g, ints[i].key, &v) == 0 && v == ints[i].v, "%s = %u", ints[i].key, v);
    }
    float eps;
    CHECK(al_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &eps) == 0 && fabsf(eps - 1e-5f) < 1e-9f);
    al_gguf_str *tokens;
    size_t n;
    CHECK_OK(al_gguf_get_strs(&g, "tokenizer.ggml.tokens", &tokens, &n));
    CHECK(n == 32000 && al_gguf_str_eq(tokens[1], "<s>") && al_gguf_str_eq(tokens[2], "</s>") &&
          al_gguf_str_eq(tokens[13], "<0x0A>") && al_gguf_str_eq(tokens[29871], "\xE2\x96\x81"));
    free(tokens);
    float *scores;
    CHECK(al_gguf_get_f32s(&g, "tokenizer.ggml.scores", &scores, &n) == 0 && n == 32000);
    free(scores);
    int32_t *types;
    CHECK(al_gguf_get_i32s(&g, "tokenizer.ggml.token_type", &types, &n) == 0 && n == 32000 && types[1] == 3 &&
          types[13] == 6 && types[500] == 1);
    free(types);

    struct {
        const char *name;
        int n_dims;
        uint64_t d0, d1;
        int type;
    } want[] = {
        {"token_embd.weight", 2, 8, 32000, 1},  {"output.weight", 2, 8, 32000, 1},
        {"output_norm.weight", 1, 8, 1, 0},     {"blk.0.attn_q.weight", 2, 8, 8, 1},
        {"blk.0.attn_k.weight", 2, 8, 8, 1},    {"blk.0.attn_v.weight", 2, 8, 8, 1},
        {"blk.0.attn_output.weight", 2, 8, 8, 1}, {"blk.0.ffn_gate.weight", 2, 8, 32, 1},
        {"blk.0.ffn_up.weight", 2, 8, 32, 1},   {"blk.0.ffn_down.weight", 2, 32, 8, 1},
        {"blk.0.attn_norm.weight", 1, 8, 1, 0}, {"blk.0.ffn_norm.weight", 1, 8, 1, 0},
    };
    size_t total = 0;
    for (size_t i = 0; i < 12; i++) {
        const al_gguf_tensor *t = al_gguf_tensor_find(&g, want[i].name);
        CHECKF(t != NULL, "tensor %s", want[i].name);
        if (!t)
            continue;
        CHECKF(t->n_dims == want[i].n_dims && t->dims[0] == want[i].d0 && t->dims[1] == want[i].d1 &&
                   t->type == want[i].type,
               "%s: %d dims [%llu, %llu] type %d", want[i].name, t->n_dims, (unsigned long long)t->dims[0],
               (unsigned long long)t->dims[1], t->type);
        CHECK(t->bytes == t->n_elements * (t->type == 0 ? 4 : 2));
        CHECK((const uint8_t *)t->data >= g.map.data + g.data_offset &&
              (const uint8_t *)t->data + t->bytes <= g.map.data + g.map.size);
        total += t->bytes;
    }
    CHECK(total <= g.map.size - g.data_offset);
    CHECK(strcmp(al_ggml_type_name(1), "F16") == 0 && strcmp(al_ggml_type_name(12), "Q4_K") == 0);
    CHECK(al_ggml_row_bytes(0, 10) == 40 && al_ggml_row_bytes(8, 64) == 68 && al_ggml_row_bytes(12, 256) == 144);
    CHECK(al_ggml_row_bytes(8, 33) == 0 && al_ggml_row_bytes(4, 32) == 0);

    /* truncations of a real file: the whole header region, then spread over the data */
    const uint8_t *d = g.map.data;
    size_t size = g.map.size, bad = 0;
    for (size_t k = 0; k < 2048; k++)
        bad += open_copy(d, k, &(al_gguf){0}) == 0;
    for (size_t k = 2048; k < size; k += size / 97)
        bad += open_copy(d, k, &(al_gguf){0}) == 0;
    CHECKF(bad == 0, "%zu truncated copies of the real file opened", bad);
    al_gguf_close(&g);
}

/* The two ggml-vocab GGUF files in ../shared were damaged in transit: every byte that was
 * not valid UTF-8 became U+FFFD (EF BF BD), so the first float value already breaks the
 * layout.  The reader must say so rather than crash. */
static void test_damaged_files(void)
{
    const char *files[] = {"models/ggml-vocab/ggml-vocab-gpt-2.gguf", "models/ggml-vocab/ggml-vocab-llama-spm.gguf"};
    for (int i = 0; i < 2; i++) {
        al_gguf g;
        int rc = al_gguf_open(&g, shared_path(files[i]));
        CHECKF(rc != 0 && strstr(al_errmsg(), "past the end"), "%s: %s", files[i], al_errmsg());
        if (rc == 0)
            al_gguf_close(&g);
    }
    al_gguf g;
    CHECK(al_gguf_open(&g, "/nonexistent/x.gguf") != 0 && strstr(al_errmsg(), "cannot open"));
    CHECK(al_gguf_open_memory(&g, "GGU", 3, "short") != 0 && strstr(al_errmsg(), "truncated"));
}

int main(void)
{
    test_synthetic();
    test_tiny_random();
    test_damaged_files();
    return test_report();
}
