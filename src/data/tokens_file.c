/* The token cache file (docs/training.md, "Data: token streams"), little-endian:
 *
 *   offset 0   8 bytes  magic "ALTOKENS"
 *   offset 8   u32      version (1)
 *   offset 12  u32      bytes per id (2 when vocab_size <= 65536, else 4)
 *   offset 16  u64      count
 *   offset 24  count ids of that width
 *
 * The file size must be exactly 24 + count * width. */
#include "align/data.h"

#include <stdlib.h>
#include <string.h>

#define TOKENS_MAGIC "ALTOKENS"
#define TOKENS_VERSION 1u
#define TOKENS_HEADER 24u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

void al_token_stream_free(al_token_stream *s)
{
    if (!s)
        return;
    free(s->ids);
    free(s->cache_path);
    memset(s, 0, sizeof *s);
}

int al_token_stream_read(al_token_stream *s, const char *path)
{
    memset(s, 0, sizeof *s);
    al_mapped m;
    if (al_map_file(path, &m))
        return -1;
    int rc = 0;
    const uint8_t *p = m.data;
    if (m.size < TOKENS_HEADER) {
        rc = al_fail("%s: not a token file: %zu bytes, shorter than the %u-byte header", path, m.size,
                     TOKENS_HEADER);
        goto done;
    }
    if (memcmp(p, TOKENS_MAGIC, 8) != 0) {
        rc = al_fail("%s: not a token file: bad magic (expected \"ALTOKENS\")", path);
        goto done;
    }
    uint32_t version = rd32(p + 8), width = rd32(p + 12);
    uint64_t count = rd64(p + 16);
    if (version != TOKENS_VERSION) {
        rc = al_fail("%s: token file version %u, expected %u", path, version, TOKENS_VERSION);
        goto done;
    }
    if (width != 2 && width != 4) {
        rc = al_fail("%s: token file has %u bytes per id, expected 2 or 4", path, width);
        goto done;
    }
    uint64_t avail = (uint64_t)(m.size - TOKENS_HEADER);
    if (count > avail / width || count * width != avail) {
        rc = al_fail("%s: token file is %s: header says %llu ids of %u bytes (%llu bytes), the file holds %llu",
                     path, count > avail / width ? "truncated" : "longer than its header says",
                     (unsigned long long)count, width, (unsigned long long)count * width,
                     (unsigned long long)avail);
        goto done;
    }
    s->ids = malloc(count ? (size_t)count * sizeof *s->ids : 1);
    s->cache_path = strdup(path);
    if (!s->ids || !s->cache_path) {
        rc = al_fail("%s: out of memory reading %llu ids", path, (unsigned long long)count);
        goto done;
    }
    const uint8_t *q = p + TOKENS_HEADER;
    if (width == 2)
        for (size_t i = 0; i < count; i++)
            s->ids[i] = (uint32_t)q[2 * i] | (uint32_t)q[2 * i + 1] << 8;
    else
        for (size_t i = 0; i < count; i++)
            s->ids[i] = rd32(q + 4 * i);
    s->n = (size_t)count;
    s->bytes_per_id = (int)width;
done:
    al_unmap_file(&m);
    if (rc)
        al_token_stream_free(s);
    return rc;
}

int al_token_stream_write(const al_token_stream *s, const char *path, int vocab_size)
{
    if (vocab_size <= 0)
        return al_fail("%s: cannot write tokens: vocabulary size %d", path, vocab_size);
    uint32_t width = vocab_size <= 65536 ? 2 : 4;
    for (size_t i = 0; i < s->n; i++)
        if (s->ids[i] >= (uint32_t)vocab_size)
            return al_fail("%s: cannot write tokens: id %u at %zu is outside the vocabulary (%d)", path,
                           s->ids[i], i, vocab_size);
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    uint8_t head[TOKENS_HEADER];
    memcpy(head, TOKENS_MAGIC, 8);
    wr32(head + 8, TOKENS_VERSION);
    wr32(head + 12, width);
    wr64(head + 16, (uint64_t)s->n);
    bool ok = fwrite(head, 1, sizeof head, f.fp) == sizeof head;
    uint8_t chunk[1 << 16];
    size_t per = sizeof chunk / width;
    for (size_t i = 0; ok && i < s->n; i += per) {
        size_t k = s->n - i < per ? s->n - i : per;
        for (size_t j = 0; j < k; j++) {
            uint32_t v = s->ids[i + j];
            if (width == 2) {
                chunk[2 * j] = (uint8_t)v;
                chunk[2 * j + 1] = (uint8_t)(v >> 8);
            } else {
                wr32(chunk + 4 * j, v);
            }
        }
        ok = fwrite(chunk, width, k, f.fp) == k;
    }
    if (!ok) {
        al_atomic_abort(&f);
        return al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}
