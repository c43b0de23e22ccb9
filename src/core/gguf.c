/* GGUF reader (v2, v3; little-endian).
 *
 * Everything is validated once, in al_gguf_open, against the mapped size: a reader that
 * trusts a count or a length from the file can be made to read past the mapping or to
 * allocate without bound, so every field goes through the bounds-checked cursor below
 * and every allocation is capped by what the remaining bytes could possibly hold. */
#include "align/core.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING 4

typedef struct cursor {
    const uint8_t *base;
    size_t size, pos;
    const char *origin;
} cursor;

static int need(cursor *c, size_t n, const char *what)
{
    if (n > c->size - c->pos)
        return al_fail("%s: truncated: %s needs %zu bytes at offset %zu, file has %zu", c->origin,
                       what, n, c->pos, c->size);
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what))
        return -1;
    memcpy(v, c->base + c->pos, 4); /* GGUF is little-endian; so are the targets we build for */
    c->pos += 4;
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what))
        return -1;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int read_str(cursor *c, al_gguf_str *s, const char *what)
{
    uint64_t len;
    if (read_u64(c, &len, what))
        return -1;
    if (len > c->size - c->pos)
        return al_fail("%s: %s: string length %llu at offset %zu runs past the end of the file (%zu bytes)",
                       c->origin, what, (unsigned long long)len, c->pos - 8, c->size);
    s->s = (const char *)(c->base + c->pos);
    s->len = (size_t)len;
    c->pos += (size_t)len;
    return 0;
}

/* Encoded size of one scalar, 0 for strings/arrays (variable) and -1 for unknown types. */
static int scalar_size(uint32_t type)
{
    switch (type) {
    case AL_GGUF_U8: case AL_GGUF_I8: case AL_GGUF_BOOL: return 1;
    case AL_GGUF_U16: case AL_GGUF_I16: return 2;
    case AL_GGUF_U32: case AL_GGUF_I32: case AL_GGUF_F32: return 4;
    case AL_GGUF_U64: case AL_GGUF_I64: case AL_GGUF_F64: return 8;
    case AL_GGUF_STRING: case AL_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

const char *al_gguf_type_name(al_gguf_type t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* Skips one value of the given type, checking every length it contains. */
static int skip_value(cursor *c, uint32_t type, int depth, const char *key);

static int skip_array(cursor *c, int depth, const char *key, uint32_t *elem_type, uint64_t *n)
{
    if (depth > GGUF_MAX_NESTING)
        return al_fail("%s: key '%s': arrays nested deeper than %d", c->origin, key, GGUF_MAX_NESTING);
    if (read_u32(c, elem_type, "array element type") || read_u64(c, n, "array length"))
        return -1;
    int sz = scalar_size(*elem_type);
    if (sz < 0)
        return al_fail("%s: key '%s': unknown array element type %u", c->origin, key, *elem_type);
    if (sz > 0) {
        if (*n > (c->size - c->pos) / (size_t)sz)
            return al_fail("%s: key '%s': array of %llu %s elements runs past the end of the file",
                           c->origin, key, (unsigned long long)*n, al_gguf_type_name(*elem_type));
        c->pos += (size_t)*n * (size_t)sz;
        return 0;
    }
    /* Strings and nested arrays take at least 8 bytes each: reject absurd counts up front
     * so a hostile length cannot make the loop below spin for a long time. */
    if (*n > (c->size - c->pos) / 8)
        return al_fail("%s: key '%s': array of %llu %s elements cannot fit in the file", c->origin, key,
                       (unsigned long long)*n, al_gguf_type_name(*elem_type));
    for (uint64_t i = 0; i < *n; i++)
        if (skip_value(c, *elem_type, depth + 1, key))
            return -1;
    return 0;
}

static int skip_value(cursor *c, uint32_t type, int depth, const char *key)
{
    int sz = scalar_size(type);
    if (sz < 0)
        return al_fail("%s: key '%s': unknown value type %u", c->origin, key, type);
    if (sz > 0)
        return need(c, (size_t)sz, key) ? -1 : (c->pos += (size_t)sz, 0);
    if (type == AL_GGUF_STRING) {
        al_gguf_str s;
        return read_str(c, &s, key);
    }
    uint32_t et;
    uint64_t n;
    return skip_array(c, depth, key, &et, &n);
}

static void key_for_messages(al_gguf_str k, char *buf, size_t n)
{
    size_t m = k.len < n - 1 ? k.len : n - 1;
    memcpy(buf, k.s, m);
    buf[m] = 0;
}

static int parse_kv(cursor *c, al_gguf_kv *kv, uint64_t index)
{
    char what[64];
    snprintf(what, sizeof what, "key %llu", (unsigned long long)index);
    if (read_str(c, &kv->key, what))
        return -1;
    char key[128];
    key_for_messages(kv->key, key, sizeof key);
    uint32_t type;
    if (read_u32(c, &type, key))
        return -1;
    if (scalar_size(type) < 0)
        return al_fail("%s: key '%s': unknown value type %u", c->origin, key, type);
    kv->type = (al_gguf_type)type;
    kv->elem_type = kv->type;
    kv->n = 1;
    if (type == AL_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        size_t start = c->pos + 12;
        if (skip_array(c, 1, key, &et, &n))
            return -1;
        kv->elem_type = (al_gguf_type)et;
        kv->n = n;
        kv->data = c->base + start;
        kv->bytes = c->pos - start;
        return 0;
    }
    size_t start = c->pos;
    if (skip_value(c, type, 0, key))
        return -1;
    kv->data = c->base + start;
    kv->bytes = c->pos - start;
    return 0;
}

/* ---- ggml tensor types ---- */

typedef struct ggml_traits {
    const char *name;
    int block;  /* elements per block */
    int bytes;  /* bytes per block */
} ggml_traits;

static const ggml_traits ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
};

static const ggml_traits *ggml_type(int t)
{
    if (t < 0 || (size_t)t >= sizeof ggml_types / sizeof ggml_types[0] || !ggml_types[t].name)
        return NULL;
    return &ggml_types[t];
}

const char *al_ggml_type_name(int t)
{
    const ggml_traits *tr = ggml_type(t);
    return tr ? tr->name : "?";
}

size_t al_ggml_row_bytes(int t, uint64_t n)
{
    const ggml_traits *tr = ggml_type(t);
    if (!tr || n % (uint64_t)tr->block)
        return 0;
    uint64_t blocks = n / (uint64_t)tr->block;
    if (blocks > SIZE_MAX / (uint64_t)tr->bytes)
        return 0;
    return (size_t)(blocks * (uint64_t)tr->bytes);
}

static int parse_tensor_info(cursor *c, al_gguf_tensor *t, uint64_t index)
{
    char what[64];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    if (read_str(c, &t->name, what))
        return -1;
    char name[128];
    key_for_messages(t->name, name, sizeof name);
    uint32_t n_dims, type;
    if (read_u32(c, &n_dims, name))
        return -1;
    if (n_dims == 0 || n_dims > AL_GGUF_MAX_DIMS)
        return al_fail("%s: tensor '%s': %u dimensions (expected 1..%d)", c->origin, name, n_dims,
                       AL_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t elements = 1;
    for (int d = 0; d < AL_GGUF_MAX_DIMS; d++) {
        t->dims[d] = 1;
        if (d < (int)n_dims && read_u64(c, &t->dims[d], name))
            return -1;
        if (t->dims[d] == 0)
            return al_fail("%s: tensor '%s': dimension %d is 0", c->origin, name, d);
        if (t->dims[d] > INT64_MAX / elements)
            return al_fail("%s: tensor '%s': element count overflows", c->origin, name);
        elements *= t->dims[d];
    }
    t->n_elements = elements;
    if (read_u32(c, &type, name) || read_u64(c, &t->offset, name))
        return -1;
    t->type = (int)type;
    const ggml_traits *tr = ggml_type(t->type);
    if (!tr)
        return al_fail("%s: tensor '%s': unknown ggml type %u", c->origin, name, type);
    if (t->dims[0] % (uint64_t)tr->block)
        return al_fail("%s: tensor '%s': first dimension %llu is not a multiple of the %s block size %d",
                       c->origin, name, (unsigned long long)t->dims[0], tr->name, tr->block);
    uint64_t blocks = elements / (uint64_t)tr->block;
    if (blocks > SIZE_MAX / (uint64_t)tr->bytes)
        return al_fail("%s: tensor '%s': byte size overflows", c->origin, name);
    t->bytes = (size_t)(blocks * (uint64_t)tr->bytes);
    return 0;
}

/* ---- opening ---- */

static int parse_header(cursor *c, al_gguf *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    if (need(c, 4, "magic"))
        return -1;
    if (memcmp(c->base, GGUF_MAGIC, 4) != 0)
        return al_fail("%s: not a GGUF file (magic is not \"GGUF\")", c->origin);
    c->pos = 4;
    if (read_u32(c, &g->version, "version"))
        return -1;
    if (g->version == 1)
        return al_fail("%s: GGUF version 1 is not supported (expected 2 or 3)", c->origin);
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xFFFF) == 0 && g->version >> 16)
            return al_fail("%s: big-endian GGUF is not supported", c->origin);
        return al_fail("%s: unsupported GGUF version %u (expected 2 or 3)", c->origin, g->version);
    }
    if (read_u64(c, n_tensors, "tensor count") || read_u64(c, n_kv, "metadata count"))
        return -1;
    /* A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info
     * at least 8 + 4 + 8 + 4 + 8; larger counts cannot be genuine. */
    size_t rest = c->size - c->pos;
    if (*n_kv > rest / 13)
        return al_fail("%s: metadata count %llu cannot fit in %zu bytes", c->origin,
                       (unsigned long long)*n_kv, c->size);
    if (*n_tensors > rest / 32)
        return al_fail("%s: tensor count %llu cannot fit in %zu bytes", c->origin,
                       (unsigned long long)*n_tensors, c->size);
    return 0;
}

static int read_alignment(al_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const al_gguf_kv *kv = al_gguf_find(g, "general.alignment");
    if (!kv)
        return 0;
    uint32_t a;
    if (kv->type != AL_GGUF_U32)
        return al_fail("%s: general.alignment has type %s (expected u32)", g->origin,
                       al_gguf_type_name(kv->type));
    memcpy(&a, kv->data, 4);
    if (a == 0 || (a & (a - 1)))
        return al_fail("%s: general.alignment %u is not a power of two", g->origin, a);
    g->alignment = a;
    return 0;
}

static int place_tensors(al_gguf *g, size_t info_end)
{
    size_t a = g->alignment;
    size_t off = info_end + (a - info_end % a) % a;
    if (off < info_end)
        return al_fail("%s: data offset overflows", g->origin);
    g->data_offset = off;
    if (g->n_tensors > 0 && off > g->map.size)
        return al_fail("%s: data section starts at %zu, past the end of the file (%zu bytes)",
                       g->origin, off, g->map.size);
    size_t avail = g->n_tensors ? g->map.size - off : 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        al_gguf_tensor *t = &g->tensors[i];
        char name[128];
        key_for_messages(t->name, name, sizeof name);
        if (t->offset % a)
            return al_fail("%s: tensor '%s': offset %llu is not a multiple of the alignment %zu",
                           g->origin, name, (unsigned long long)t->offset, a);
        if (t->offset > avail || t->bytes > avail - t->offset)
            return al_fail("%s: tensor '%s': %zu bytes at data offset %llu run past the end of the file "
                           "(data section holds %zu bytes)",
                           g->origin, name, t->bytes, (unsigned long long)t->offset, avail);
        t->data = g->map.data + off + t->offset;
    }
    return 0;
}

static int parse(al_gguf *g)
{
    cursor c = {g->map.data, g->map.size, 0, g->origin};
    uint64_t n_tensors = 0, n_kv = 0;
    if (parse_header(&c, g, &n_tensors, &n_kv))
        return -1;
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return al_fail("%s: out of memory for %llu keys and %llu tensors", g->origin,
                       (unsigned long long)n_kv, (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_kv; i++, g->n_kv++)
        if (parse_kv(&c, &g->kv[i], i))
            return -1;
    for (uint64_t i = 0; i < n_tensors; i++, g->n_tensors++)
        if (parse_tensor_info(&c, &g->tensors[i], i))
            return -1;
    if (read_alignment(g))
        return -1;
    return place_tensors(g, c.pos);
}

static void set_origin(al_gguf *g, const char *origin)
{
    snprintf(g->origin, sizeof g->origin, "%s", origin ? origin : "gguf");
}

int al_gguf_open_memory(al_gguf *g, const void *data, size_t size, const char *origin)
{
    memset(g, 0, sizeof *g);
    set_origin(g, origin);
    g->map.data = data;
    g->map.size = size;
    if (parse(g)) {
        al_gguf_close(g);
        return -1;
    }
    return 0;
}

int al_gguf_open(al_gguf *g, const char *path)
{
    memset(g, 0, sizeof *g);
    set_origin(g, path);
    if (al_map_file(path, &g->map))
        return -1;
    g->owns_map = true;
    if (parse(g)) {
        al_gguf_close(g);
        return -1;
    }
    return 0;
}

void al_gguf_close(al_gguf *g)
{
    free(g->kv);
    free(g->tensors);
    if (g->owns_map)
        al_unmap_file(&g->map);
    memset(g, 0, sizeof *g);
}

/* ---- lookups ---- */

bool al_gguf_str_eq(al_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.s, c, n) == 0;
}

const al_gguf_kv *al_gguf_find(const al_gguf *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (al_gguf_str_eq(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const al_gguf_tensor *al_gguf_tensor_find(const al_gguf *g, const char *name)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (al_gguf_str_eq(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

static const al_gguf_kv *find_required(const al_gguf *g, const char *key)
{
    const al_gguf_kv *kv = al_gguf_find(g, key);
    if (!kv)
        al_fail("%s: missing key '%s'", g->origin, key);
    return kv;
}

static int wrong_type(const al_gguf *g, const al_gguf_kv *kv, const char *key, const char *expected)
{
    if (kv->type == AL_GGUF_ARRAY)
        return al_fail("%s: key '%s' is an array of %s (expected %s)", g->origin, key,
                       al_gguf_type_name(kv->elem_type), expected);
    return al_fail("%s: key '%s' has type %s (expected %s)", g->origin, key, al_gguf_type_name(kv->type),
                   expected);
}

/* Reads an integer scalar of any width as a signed 128-bit-safe pair (value, negative). */
static bool read_integer(const uint8_t *p, al_gguf_type t, int64_t *sv, uint64_t *uv, bool *neg)
{
    *neg = false;
    switch (t) {
    case AL_GGUF_U8: *uv = p[0]; break;
    case AL_GGUF_I8: { int8_t v; memcpy(&v, p, 1); *sv = v; *neg = v < 0; *uv = (uint64_t)v; break; }
    case AL_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *uv = v; break; }
    case AL_GGUF_I16: { int16_t v; memcpy(&v, p, 2); *sv = v; *neg = v < 0; *uv = (uint64_t)v; break; }
    case AL_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); *uv = v; break; }
    case AL_GGUF_I32: { int32_t v; memcpy(&v, p, 4); *sv = v; *neg = v < 0; *uv = (uint64_t)v; break; }
    case AL_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); *uv = v; break; }
    case AL_GGUF_I64: { int64_t v; memcpy(&v, p, 8); *sv = v; *neg = v < 0; *uv = (uint64_t)v; break; }
    default: return false;
    }
    if (!*neg)
        *sv = *uv > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)*uv;
    return true;
}

int al_gguf_get_u64(const al_gguf *g, const char *key, uint64_t *out)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (!kv)
        return -1;
    int64_t sv;
    uint64_t uv;
    bool neg;
    if (!read_integer(kv->data, kv->type, &sv, &uv, &neg))
        return wrong_type(g, kv, key, "an integer");
    if (neg)
        return al_fail("%s: key '%s' is negative (%lld)", g->origin, key, (long long)sv);
    *out = uv;
    return 0;
}

int al_gguf_get_u32(const al_gguf *g, const char *key, uint32_t *out)
{
    uint64_t v;
    if (al_gguf_get_u64(g, key, &v))
        return -1;
    if (v > UINT32_MAX)
        return al_fail("%s: key '%s' = %llu does not fit in 32 bits", g->origin, key, (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

int al_gguf_get_i32(const al_gguf *g, const char *key, int32_t *out)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (!kv)
        return -1;
    int64_t sv;
    uint64_t uv;
    bool neg;
    if (!read_integer(kv->data, kv->type, &sv, &uv, &neg))
        return wrong_type(g, kv, key, "an integer");
    if (sv < INT32_MIN || sv > INT32_MAX)
        return al_fail("%s: key '%s' = %lld does not fit in a 32-bit signed integer", g->origin, key,
                       (long long)sv);
    *out = (int32_t)sv;
    return 0;
}

int al_gguf_get_f32(const al_gguf *g, const char *key, float *out)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (!kv)
        return -1;
    if (kv->type == AL_GGUF_F32) {
        memcpy(out, kv->data, 4);
        return 0;
    }
    if (kv->type == AL_GGUF_F64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
        return 0;
    }
    int64_t sv;
    uint64_t uv;
    bool neg;
    if (!read_integer(kv->data, kv->type, &sv, &uv, &neg))
        return wrong_type(g, kv, key, "a number");
    *out = neg ? (float)sv : (float)uv;
    return 0;
}

int al_gguf_get_bool(const al_gguf *g, const char *key, bool *out)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (!kv)
        return -1;
    if (kv->type != AL_GGUF_BOOL)
        return wrong_type(g, kv, key, "bool");
    *out = kv->data[0] != 0;
    return 0;
}

int al_gguf_get_str(const al_gguf *g, const char *key, al_gguf_str *out)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (!kv)
        return -1;
    if (kv->type != AL_GGUF_STRING)
        return wrong_type(g, kv, key, "string");
    out->s = (const char *)kv->data + 8; /* validated at open: length prefix then bytes */
    out->len = kv->bytes - 8;
    return 0;
}

static const al_gguf_kv *find_array(const al_gguf *g, const char *key, al_gguf_type elem, const char *expected)
{
    const al_gguf_kv *kv = find_required(g, key);
    if (kv && (kv->type != AL_GGUF_ARRAY || kv->elem_type != elem)) {
        wrong_type(g, kv, key, expected);
        return NULL;
    }
    return kv;
}

static void *alloc_elements(const al_gguf *g, const char *key, uint64_t n, size_t size)
{
    void *p = malloc(n ? (size_t)n * size : 1); /* n was bounded by the file size at open */
    if (!p)
        al_fail("%s: key '%s': out of memory for %llu elements", g->origin, key, (unsigned long long)n);
    return p;
}

int al_gguf_get_strs(const al_gguf *g, const char *key, al_gguf_str **out, size_t *n)
{
    const al_gguf_kv *kv = find_array(g, key, AL_GGUF_STRING, "array of strings");
    if (!kv)
        return -1;
    al_gguf_str *v = alloc_elements(g, key, kv->n, sizeof *v);
    if (!v)
        return -1;
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t len;
        memcpy(&len, p, 8);
        v[i].s = (const char *)p + 8;
        v[i].len = (size_t)len;
        p += 8 + len;
    }
    *out = v;
    *n = (size_t)kv->n;
    return 0;
}

int al_gguf_get_f32s(const al_gguf *g, const char *key, float **out, size_t *n)
{
    const al_gguf_kv *kv = find_array(g, key, AL_GGUF_F32, "array of f32");
    if (!kv)
        return -1;
    float *v = alloc_elements(g, key, kv->n, sizeof *v);
    if (!v)
        return -1;
    if (kv->n)
        memcpy(v, kv->data, (size_t)kv->n * 4); /* the file gives no alignment guarantee */
    *out = v;
    *n = (size_t)kv->n;
    return 0;
}

int al_gguf_get_i32s(const al_gguf *g, const char *key, int32_t **out, size_t *n)
{
    const al_gguf_kv *kv = find_array(g, key, AL_GGUF_I32, "array of i32");
    if (!kv)
        return -1;
    int32_t *v = alloc_elements(g, key, kv->n, sizeof *v);
    if (!v)
        return -1;
    if (kv->n)
        memcpy(v, kv->data, (size_t)kv->n * 4);
    *out = v;
    *n = (size_t)kv->n;
    return 0;
}
