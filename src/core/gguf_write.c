/* GGUF writer (v3, little-endian): the inverse of gguf.c.
 *
 * The header is built in memory so its size, and with it every tensor's offset, is known
 * before the first byte goes out; tensor data is then streamed one tensor at a time, so
 * a caller converting a large model needs one tensor's worth of memory, not the file's. */
#include "align/core.h"

#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_write.c assumes a little-endian host"
#endif

#define GGUF_VERSION 3

int al_gguf_writer_init(al_gguf_writer *w, size_t alignment)
{
    memset(w, 0, sizeof *w);
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > UINT32_MAX)
        return al_fail("GGUF writer: alignment %zu is not a power of two", alignment);
    w->alignment = alignment;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void al_gguf_writer_free(al_gguf_writer *w)
{
    al_buf_free(&w->kv);
    al_buf_free(&w->info);
    free_strings(w->keys, (size_t)w->n_kv);
    free_strings(w->names, (size_t)w->n_tensors);
    free(w->bytes);
    memset(w, 0, sizeof *w);
}

static int put(al_buf *b, const void *p, size_t n) { return al_buf_append(b, p, n); }
static int put_u32(al_buf *b, uint32_t v) { return put(b, &v, 4); }
static int put_u64(al_buf *b, uint64_t v) { return put(b, &v, 8); }
static int put_str(al_buf *b, const char *s, size_t n) { return put_u64(b, n) || put(b, s, n); }

/* Appends s to a list of names unless it is already there (linear: GGUF files hold
 * hundreds of keys and a few thousand tensors at most). */
static int remember(char ***list, size_t *cap, uint64_t n, const char *s, const char *what)
{
    for (uint64_t i = 0; i < n; i++)
        if (!strcmp((*list)[i], s))
            return al_fail("GGUF writer: %s '%s' added twice", what, s);
    if (n == *cap) {
        size_t c = *cap ? *cap * 2 : 32;
        char **v = realloc(*list, c * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        *list = v;
        *cap = c;
    }
    if (!((*list)[n] = strdup(s)))
        return al_fail("out of memory");
    return 0;
}

static int begin_kv(al_gguf_writer *w, const char *key, al_gguf_type type)
{
    if (!key || !*key)
        return al_fail("GGUF writer: empty key");
    if (!strcmp(key, "general.alignment"))
        return al_fail("GGUF writer: general.alignment is written by the writer itself");
    if (remember(&w->keys, &w->cap_keys, w->n_kv, key, "key"))
        return -1;
    w->n_kv++;
    return put_str(&w->kv, key, strlen(key)) || put_u32(&w->kv, (uint32_t)type) ? -1 : 0;
}

static int add_scalar(al_gguf_writer *w, const char *key, al_gguf_type t, const void *v, size_t n)
{
    return begin_kv(w, key, t) || put(&w->kv, v, n) ? -1 : 0;
}

int al_gguf_add_u32(al_gguf_writer *w, const char *key, uint32_t v) { return add_scalar(w, key, AL_GGUF_U32, &v, 4); }
int al_gguf_add_i32(al_gguf_writer *w, const char *key, int32_t v) { return add_scalar(w, key, AL_GGUF_I32, &v, 4); }
int al_gguf_add_u64(al_gguf_writer *w, const char *key, uint64_t v) { return add_scalar(w, key, AL_GGUF_U64, &v, 8); }
int al_gguf_add_f32(al_gguf_writer *w, const char *key, float v) { return add_scalar(w, key, AL_GGUF_F32, &v, 4); }

int al_gguf_add_bool(al_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, AL_GGUF_BOOL, &b, 1);
}

int al_gguf_add_str(al_gguf_writer *w, const char *key, const char *s, size_t len)
{
    return begin_kv(w, key, AL_GGUF_STRING) || put_str(&w->kv, s, len) ? -1 : 0;
}

static size_t scalar_bytes(al_gguf_type t)
{
    switch (t) {
    case AL_GGUF_U8: case AL_GGUF_I8: case AL_GGUF_BOOL: return 1;
    case AL_GGUF_U16: case AL_GGUF_I16: return 2;
    case AL_GGUF_U32: case AL_GGUF_I32: case AL_GGUF_F32: return 4;
    case AL_GGUF_U64: case AL_GGUF_I64: case AL_GGUF_F64: return 8;
    default: return 0;
    }
}

int al_gguf_add_array(al_gguf_writer *w, const char *key, al_gguf_type elem, const void *v, size_t n)
{
    size_t sz = scalar_bytes(elem);
    if (!sz)
        return al_fail("GGUF writer: key '%s': arrays of %s need al_gguf_add_strs or are not supported", key,
                       al_gguf_type_name(elem));
    if (n > SIZE_MAX / sz)
        return al_fail("GGUF writer: key '%s': array too large", key);
    return begin_kv(w, key, AL_GGUF_ARRAY) || put_u32(&w->kv, (uint32_t)elem) || put_u64(&w->kv, n) ||
                   put(&w->kv, v, n * sz)
               ? -1
               : 0;
}

int al_gguf_add_strs(al_gguf_writer *w, const char *key, const al_gguf_str *v, size_t n)
{
    if (begin_kv(w, key, AL_GGUF_ARRAY) || put_u32(&w->kv, AL_GGUF_STRING) || put_u64(&w->kv, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_str(&w->kv, v[i].s, v[i].len))
            return -1;
    return 0;
}

static uint64_t pad_to(uint64_t x, size_t a) { return (x + a - 1) / a * a; }

int al_gguf_add_tensor(al_gguf_writer *w, const char *name, int n_dims, const uint64_t *dims, int type)
{
    if (!name || !*name)
        return al_fail("GGUF writer: empty tensor name");
    if (n_dims < 1 || n_dims > AL_GGUF_MAX_DIMS)
        return al_fail("GGUF writer: tensor '%s': %d dimensions (expected 1..%d)", name, n_dims, AL_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (dims[d] == 0 || dims[d] > INT64_MAX / n)
            return al_fail("GGUF writer: tensor '%s': dimension %d is %llu", name, d, (unsigned long long)dims[d]);
        n *= dims[d];
    }
    /* Blocks never straddle rows: the contiguous dimension holds whole blocks. */
    size_t row = al_ggml_row_bytes(type, dims[0]);
    if (!row)
        return al_fail("GGUF writer: tensor '%s': %llu columns are not whole %s blocks (or the type is unknown)", name,
                       (unsigned long long)dims[0], al_ggml_type_name(type));
    if (n / dims[0] > SIZE_MAX / row)
        return al_fail("GGUF writer: tensor '%s': too large", name);
    if (remember(&w->names, &w->cap_tensors, w->n_tensors, name, "tensor"))
        return -1;
    /* bytes grows alongside names (same capacity) */
    uint64_t *b = realloc(w->bytes, w->cap_tensors * sizeof *b);
    if (!b) {
        free(w->names[w->n_tensors]);
        return al_fail("out of memory");
    }
    w->bytes = b;
    uint64_t bytes = (uint64_t)row * (n / dims[0]);
    uint64_t offset = w->data_size;
    int rc = put_str(&w->info, name, strlen(name)) || put_u32(&w->info, (uint32_t)n_dims);
    for (int d = 0; d < n_dims && !rc; d++)
        rc = put_u64(&w->info, dims[d]);
    if (rc || put_u32(&w->info, (uint32_t)type) || put_u64(&w->info, offset)) {
        free(w->names[w->n_tensors]); /* out of memory: the writer is unusable, but frees cleanly */
        return -1;
    }
    w->bytes[w->n_tensors++] = bytes;
    w->data_size = pad_to(offset + bytes, w->alignment);
    return 0;
}

static int write_all(FILE *fp, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, fp) != n)
        return al_fail("GGUF writer: write failed");
    return 0;
}

static int write_zeros(FILE *fp, uint64_t n)
{
    static const uint8_t zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (write_all(fp, zeros, k))
            return -1;
        n -= k;
    }
    return 0;
}

int al_gguf_write_header(al_gguf_writer *w, FILE *fp)
{
    al_buf head = {0};
    /* general.alignment is always stated, so readers never depend on the default */
    int rc = put(&head, "GGUF", 4) || put_u32(&head, GGUF_VERSION) || put_u64(&head, w->n_tensors) ||
             put_u64(&head, w->n_kv + 1);
    rc = rc || put(&head, w->kv.data, w->kv.len) || put_str(&head, "general.alignment", 17) ||
         put_u32(&head, AL_GGUF_U32) || put_u32(&head, (uint32_t)w->alignment) ||
         put(&head, w->info.data, w->info.len);
    if (rc == 0)
        rc = write_all(fp, head.data, head.len) || write_zeros(fp, pad_to(head.len, w->alignment) - head.len);
    al_buf_free(&head);
    w->next = 0;
    return rc ? -1 : 0;
}

int al_gguf_write_tensor(al_gguf_writer *w, FILE *fp, const void *data, size_t bytes)
{
    if (w->next >= w->n_tensors)
        return al_fail("GGUF writer: more tensors written than added (%llu)", (unsigned long long)w->n_tensors);
    if (bytes != w->bytes[w->next])
        return al_fail("GGUF writer: tensor '%s': %zu bytes given, %llu expected", w->names[w->next], bytes,
                       (unsigned long long)w->bytes[w->next]);
    if (write_all(fp, data, bytes) || write_zeros(fp, pad_to(bytes, w->alignment) - bytes))
        return -1;
    w->next++;
    return 0;
}

int al_gguf_write_end(const al_gguf_writer *w)
{
    if (w->next != w->n_tensors)
        return al_fail("GGUF writer: %zu of %llu tensors written", w->next, (unsigned long long)w->n_tensors);
    return 0;
}
