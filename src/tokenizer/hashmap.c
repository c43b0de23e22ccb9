/* Open-addressing hash maps for the tokenizers: piece -> id and merge pair -> rank.
 * Linear probing at load factor <= 1/2 keeps a lookup at one or two cache lines, which
 * is what makes merging cheap compared with a sorted-array binary search per pair. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ mix(w)) * 0x100000001b3ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix(h ^ w);
}

static size_t capacity_for(size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 2)
        cap *= 2;
    return cap;
}

/* ---- strings ---- */

int al_strmap_init(al_strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = capacity_for(expected);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->lens = calloc(m->cap, sizeof *m->lens);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->lens || !m->vals) {
        al_strmap_free(m);
        return al_fail("out of memory for a hash map of %zu entries", expected);
    }
    return 0;
}

void al_strmap_free(al_strmap *m)
{
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int strmap_grow(al_strmap *m)
{
    al_strmap bigger;
    if (al_strmap_init(&bigger, m->cap))
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            al_strmap_put(&bigger, m->keys[i], m->lens[i], m->vals[i], NULL);
    al_strmap_free(m);
    *m = bigger;
    return 0;
}

int al_strmap_put(al_strmap *m, const char *key, size_t len, int val, bool *inserted)
{
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m))
        return -1;
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i]) {
        if (m->lens[i] == len && memcmp(m->keys[i], key, len) == 0) {
            if (inserted)
                *inserted = false;
            return 0;
        }
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->lens[i] = (uint32_t)len;
    m->vals[i] = val;
    m->n++;
    if (inserted)
        *inserted = true;
    return 0;
}

int al_strmap_get(const al_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return -1;
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i]) {
        if (m->lens[i] == len && memcmp(m->keys[i], key, len) == 0)
            return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

/* ---- pairs ---- */

int al_pairmap_init(al_pairmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = capacity_for(expected);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->a = malloc(m->cap * sizeof *m->a);
    m->b = malloc(m->cap * sizeof *m->b);
    if (!m->keys || !m->a || !m->b) {
        al_pairmap_free(m);
        return al_fail("out of memory for a hash map of %zu pairs", expected);
    }
    memset(m->keys, 0xFF, m->cap * sizeof *m->keys);
    return 0;
}

void al_pairmap_free(al_pairmap *m)
{
    free(m->keys);
    free(m->a);
    free(m->b);
    memset(m, 0, sizeof *m);
}

static int pairmap_grow(al_pairmap *m)
{
    al_pairmap bigger;
    if (al_pairmap_init(&bigger, m->cap))
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != UINT64_MAX)
            al_pairmap_put(&bigger, m->keys[i], m->a[i], m->b[i]);
    al_pairmap_free(m);
    *m = bigger;
    return 0;
}

int al_pairmap_put(al_pairmap *m, uint64_t key, int a, int b)
{
    if ((m->n + 1) * 2 > m->cap && pairmap_grow(m))
        return -1;
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key)
            return 0;
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->a[i] = a;
    m->b[i] = b;
    m->n++;
    return 0;
}

bool al_pairmap_get(const al_pairmap *m, uint64_t key, int *a, int *b)
{
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) {
            *a = m->a[i];
            *b = m->b[i];
            return true;
        }
        i = (i + 1) & mask;
    }
    return false;
}
