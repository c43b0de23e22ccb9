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

/* ---- random numbers ---- */
/* llama2.c's xorshift* generator, bit for bit (state must not be 0). */
uint32_t al_xorshift_u32(uint64_t *state);
float al_xorshift_f32(uint64_t *state); /* [0, 1) */

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

/* ---- GGUF (read-only) ---- (src/core/gguf.c) */

#endif
