/* Aligned allocation and the two growable buffers every module uses. */
#include "align/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Blocks this large go on 2 MiB boundaries and ask for transparent huge pages: a
   decoder's KV cache or a trainer's activations are touched once in full by the
   memset below, and on a VM each 4 KiB page fault costs microseconds (20 ms for a
   32-stream decoder's 10 MB); huge pages make that a handful of faults. */
#define HUGE_BLOCK ((size_t)2 << 20)

void *al_alloc(size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) {
        al_fail("allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    void *p = NULL;
    if (rounded >= HUGE_BLOCK / 4) {
        size_t whole = (rounded + HUGE_BLOCK - 1) & ~(HUGE_BLOCK - 1);
        if (whole < rounded || posix_memalign(&p, HUGE_BLOCK, whole))
            p = NULL;
#ifdef MADV_HUGEPAGE
        if (p)
            madvise(p, whole, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    } else
        p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        al_fail("out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

void al_free(void *p) { free(p); }

static int buf_reserve(al_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return al_fail("out of memory growing a buffer to %zu bytes", cap);
    b->data = d;
    b->cap = cap;
    return 0;
}

int al_buf_append(al_buf *b, const void *src, size_t n)
{
    if (buf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int al_buf_printf(al_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void al_buf_free(al_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int al_ints_push(al_ints *a, int x)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        int *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("out of memory growing an id list to %d", cap);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

void al_ints_free(al_ints *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}
