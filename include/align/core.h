/* align core: errors, memory, files, atomic writes, random numbers, time, progress.
 *
 * Error convention (as in SQLite's errmsg): a function that can fail returns 0 on
 * success and -1 on failure, after recording a message that al_errmsg() returns.
 * The message is per thread and says where and what: "model.bin: header: ...". */
#ifndef ALIGN_CORE_H
#define ALIGN_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AL_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- errors ---- */
int al_fail(const char *fmt, ...) AL_PRINTF(1, 2);      /* records, returns -1 */
int al_vfail(const char *fmt, va_list ap);
int al_fail_prefix(const char *fmt, ...) AL_PRINTF(1, 2); /* prepends context to the current message */
/* "ORIGIN:LINE:COL: message", for errors located in a file the user wrote */
int al_fail_at(const char *origin, long line, long col, const char *fmt, ...) AL_PRINTF(4, 5);
int al_vfail_at(const char *origin, long line, long col, const char *fmt, va_list ap);
const char *al_errmsg(void);
void al_clear_error(void);

/* ---- memory ---- */
/* 64-byte aligned, zero-filled; NULL (with an error recorded) when out of memory. */
void *al_alloc(size_t bytes);
void al_free(void *p);
/* Growable byte buffer, always NUL-terminated. */
typedef struct al_buf {
    char *data;
    size_t len, cap;
} al_buf;
int al_buf_append(al_buf *b, const void *src, size_t n);
int al_buf_printf(al_buf *b, const char *fmt, ...) AL_PRINTF(2, 3);
void al_buf_free(al_buf *b);
/* Growable int array. */
typedef struct al_ints {
    int *v;
    int n, cap;
} al_ints;
int al_ints_push(al_ints *a, int x);
void al_ints_free(al_ints *a);

/* ---- files ---- */
typedef struct al_mapped {
    const uint8_t *data;
    size_t size;
} al_mapped;
int al_map_file(const char *path, al_mapped *out); /* read-only mmap; empty files allowed */
void al_unmap_file(al_mapped *m);
int al_read_file(const char *path, al_buf *out);   /* whole file, NUL-terminated */
bool al_file_exists(const char *path);
bool al_is_dir(const char *path);
int al_mkdir_p(const char *path);
/* "dir/name" into a fresh malloc'd string. */
char *al_path_join(const char *dir, const char *name);

/* Atomic replacement: write to PATH.tmp.PID, fflush + fsync, rename over PATH,
 * fsync the directory. A reader sees the old file or the new one, never a mix. */
typedef struct al_atomic_file {
    FILE *fp;
    char *path, *tmp;
} al_atomic_file;
int al_atomic_open(al_atomic_file *f, const char *path);
int al_atomic_commit(al_atomic_file *f);
void al_atomic_abort(al_atomic_file *f);

/* Wilson score interval for successes out of n at normal quantile z (1.96 for 95%);
 * n = 0 gives [0, 1] (src/core/stats.c). */
void al_wilson(int successes, int n, double z, double *lo, double *hi);

/* CSV (RFC 4180): parses the record at *p into fields, pointers into the buffer, which is
 * modified in place (quotes removed, fields NUL-terminated, a CR before the newline
 * dropped); advances *p.  Returns the field count (at most max are kept), 0 at the end. */
int al_csv_record(char **p, char **fields, int max);
/* The index of column name in a header record, or -1. */
int al_csv_column(char **fields, int n, const char *name);

/* Writes a jansson value (indented, keys in insertion order) to path atomically. */
struct json_t;
int al_write_json_atomic(const char *path, const struct json_t *root);

/* ---- random numbers ---- */
/* llama2.c's xorshift* generator, bit for bit (state must not be 0). */
uint32_t al_xorshift_u32(uint64_t *state);
float al_xorshift_f32(uint64_t *state); /* [0, 1) */
/* SplitMix64's finalizer: a well-mixed 64-bit value from any seed (derived seeds). */
uint64_t al_mix64(uint64_t x);

/* ---- hashing ---- */
/* A fast non-cryptographic 64-bit hash, for checksums and cache keys (not for security). */
uint64_t al_hash64(const void *data, size_t n, uint64_t seed);

/* ---- time and progress ---- */
double al_now(void); /* monotonic seconds */
typedef struct al_progress {
    const char *label;
    long total, done;
    double start, last_draw;
    bool tty, enabled;
} al_progress;
void al_progress_begin(al_progress *p, const char *label, long total);
/* Redraws at most 10 times a second; extra is printed after the bar (may be NULL). */
void al_progress_update(al_progress *p, long done, const char *extra);
void al_progress_end(al_progress *p);

/* ---- text ---- */
/* Offset of the first invalid byte, or (size_t)-1 if the whole string is valid UTF-8. */
size_t al_utf8_invalid_at(const char *s, size_t n);
/* Replaces every byte of an invalid UTF-8 sequence in s[0..n) by '?', in place: a model's
 * output need not be valid UTF-8, and JSON strings must be. */
void al_utf8_scrub(char *s, size_t n);

/* ---- GGUF (read-only) ---- (src/core/gguf.c) */
/* A GGUF file (v2 or v3, little-endian) mapped read-only.  al_gguf_open validates every
 * count, length and offset against the file size before anything is used, so the
 * pointers below always lie inside the mapping.  Strings point into the file and are
 * NOT NUL-terminated: use the (s, len) pairs. */
typedef enum al_gguf_type {
    AL_GGUF_U8 = 0, AL_GGUF_I8 = 1, AL_GGUF_U16 = 2, AL_GGUF_I16 = 3,
    AL_GGUF_U32 = 4, AL_GGUF_I32 = 5, AL_GGUF_F32 = 6, AL_GGUF_BOOL = 7,
    AL_GGUF_STRING = 8, AL_GGUF_ARRAY = 9, AL_GGUF_U64 = 10, AL_GGUF_I64 = 11,
    AL_GGUF_F64 = 12,
} al_gguf_type;

typedef struct al_gguf_str {
    const char *s;
    size_t len;
} al_gguf_str;

typedef struct al_gguf_kv {
    al_gguf_str key;
    al_gguf_type type;
    al_gguf_type elem_type; /* arrays: element type; otherwise == type */
    uint64_t n;             /* arrays: element count; otherwise 1 */
    const uint8_t *data;    /* scalar value, string length prefix, or first array element */
    size_t bytes;           /* encoded size of the value (array header excluded) */
} al_gguf_kv;

#define AL_GGUF_MAX_DIMS 4
typedef struct al_gguf_tensor {
    al_gguf_str name;
    int n_dims;
    uint64_t dims[AL_GGUF_MAX_DIMS]; /* dims[0] is the contiguous (fastest) one; unused = 1 */
    uint64_t n_elements;
    int type;                        /* ggml type: 0 F32, 1 F16, 8 Q8_0, 30 BF16, ... */
    uint64_t offset;                 /* from the start of the data section */
    const void *data;
    size_t bytes;
} al_gguf_tensor;

typedef struct al_gguf {
    al_mapped map;
    bool owns_map;
    uint32_t version;
    size_t n_kv, n_tensors;
    al_gguf_kv *kv;
    al_gguf_tensor *tensors;
    size_t alignment;   /* general.alignment, default 32 */
    size_t data_offset; /* start of the tensor data section */
    char origin[256];   /* file name for messages */
} al_gguf;

int al_gguf_open(al_gguf *g, const char *path);
/* Parses a GGUF image already in memory (not copied; must outlive g). */
int al_gguf_open_memory(al_gguf *g, const void *data, size_t size, const char *origin);
void al_gguf_close(al_gguf *g);

const al_gguf_kv *al_gguf_find(const al_gguf *g, const char *key); /* NULL if absent */
/* Typed getters fail (with a message naming the key) when the key is missing or its
 * type does not fit; integer getters accept any integer type whose value fits. */
int al_gguf_get_u32(const al_gguf *g, const char *key, uint32_t *out);
int al_gguf_get_i32(const al_gguf *g, const char *key, int32_t *out);
int al_gguf_get_u64(const al_gguf *g, const char *key, uint64_t *out);
int al_gguf_get_f32(const al_gguf *g, const char *key, float *out); /* F32, F64 or integer */
int al_gguf_get_bool(const al_gguf *g, const char *key, bool *out);
int al_gguf_get_str(const al_gguf *g, const char *key, al_gguf_str *out);
/* Arrays: *out is malloc'd (free() it); element counts come back in *n. */
int al_gguf_get_strs(const al_gguf *g, const char *key, al_gguf_str **out, size_t *n);
int al_gguf_get_f32s(const al_gguf *g, const char *key, float **out, size_t *n);
int al_gguf_get_i32s(const al_gguf *g, const char *key, int32_t **out, size_t *n);
/* True if s equals the NUL-terminated c. */
bool al_gguf_str_eq(al_gguf_str s, const char *c);

const al_gguf_tensor *al_gguf_tensor_find(const al_gguf *g, const char *name);
const char *al_gguf_type_name(al_gguf_type t);
const char *al_ggml_type_name(int ggml_type); /* "F32", "Q4_K", ...; "?" if unknown */
/* Bytes of n elements of a ggml type (n must be a multiple of the block size);
 * 0 for unknown types or a partial block. */
size_t al_ggml_row_bytes(int ggml_type, uint64_t n);

/* ---- ggml tensor types <-> float32 ---- (src/core/ggml_quant.c) */
typedef enum al_ggml_type {
    AL_GGML_F32 = 0, AL_GGML_F16 = 1, AL_GGML_Q4_0 = 2, AL_GGML_Q4_1 = 3, AL_GGML_Q5_0 = 6,
    AL_GGML_Q5_1 = 7, AL_GGML_Q8_0 = 8, AL_GGML_Q8_1 = 9, AL_GGML_BF16 = 30,
} al_ggml_type;
#define AL_GGML_QK 32 /* elements per block of the Q4/Q5/Q8 types */
float al_f16_to_f32(uint16_t h);  /* exact: subnormals, +-0, +-inf, NaN payload */
uint16_t al_f32_to_f16(float f);  /* nearest even; 65520 and beyond become inf; NaN stays NaN */
float al_bf16_to_f32(uint16_t h); /* exact */
uint16_t al_f32_to_bf16(float f); /* nearest even; NaN stays NaN */
/* F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1. */
bool al_ggml_can_dequantize(int ggml_type);
/* n elements stored as ggml_type at src (al_ggml_row_bytes(type, n) bytes, any alignment)
 * into dst[0..n).  n must be whole blocks. */
int al_ggml_dequantize(int ggml_type, const void *src, size_t n, float *dst);
/* F32, F16, BF16, Q8_0, Q4_0. */
bool al_ggml_can_quantize(int ggml_type);
/* src[0..n) into al_ggml_row_bytes(type, n) bytes at dst.  Q8_0 (d = amax/127) and Q4_0
 * (d = -m/8, m the value of largest magnitude) round each block's scale to f16 away from
 * zero and code by that stored d: Q8_0 keeps |x - x'| <= d/2, Q4_0 the same except values
 * clamped to its top code (x/d > 7.5: <= |d|).  Fails (the message names the element) on
 * a non-finite value for the block types and on a finite value beyond F16's range. */
int al_ggml_quantize(int ggml_type, const float *src, size_t n, void *dst);

/* ---- GGUF writing ---- (src/core/gguf_write.c) */
/* Key/values and tensor infos are collected in memory; al_gguf_write_header writes the
 * header (GGUF v3, little-endian) with general.alignment appended, then every tensor's
 * data follows through al_gguf_write_tensor in the order the tensors were added, each
 * at an offset that is a multiple of the alignment.  Duplicate keys or tensor names, a
 * dimension that is not whole blocks and data of the wrong size are refused. */
typedef struct al_gguf_writer {
    al_buf kv, info;        /* encoded key/values and tensor infos */
    uint64_t n_kv, n_tensors;
    size_t alignment;
    char **keys, **names;   /* for duplicate checks */
    uint64_t *bytes;        /* per tensor */
    size_t cap_keys, cap_tensors;
    uint64_t data_size;     /* the data section, padded */
    size_t next;            /* tensors written so far */
} al_gguf_writer;

int al_gguf_writer_init(al_gguf_writer *w, size_t alignment); /* a power of two */
void al_gguf_writer_free(al_gguf_writer *w);
int al_gguf_add_u32(al_gguf_writer *w, const char *key, uint32_t v);
int al_gguf_add_i32(al_gguf_writer *w, const char *key, int32_t v);
int al_gguf_add_u64(al_gguf_writer *w, const char *key, uint64_t v);
int al_gguf_add_f32(al_gguf_writer *w, const char *key, float v);
int al_gguf_add_bool(al_gguf_writer *w, const char *key, bool v);
int al_gguf_add_str(al_gguf_writer *w, const char *key, const char *s, size_t len);
/* An array of fixed-size scalars (elem: any type but string and array). */
int al_gguf_add_array(al_gguf_writer *w, const char *key, al_gguf_type elem, const void *v, size_t n);
int al_gguf_add_strs(al_gguf_writer *w, const char *key, const al_gguf_str *v, size_t n);
/* dims[0] is the contiguous dimension (a matrix's columns), as the reader's. */
int al_gguf_add_tensor(al_gguf_writer *w, const char *name, int n_dims, const uint64_t *dims, int ggml_type);
int al_gguf_write_header(al_gguf_writer *w, FILE *fp);
/* The next tensor's data: exactly al_ggml_row_bytes(type, elements) bytes. */
int al_gguf_write_tensor(al_gguf_writer *w, FILE *fp, const void *data, size_t bytes);
/* Fails unless every tensor added has been written. */
int al_gguf_write_end(const al_gguf_writer *w);


#endif
