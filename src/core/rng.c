/* Random numbers. */
#include <string.h>

#include "align/core.h"

/* The xorshift* generator of llama2.c's run.c, kept bit-exact so that
 * `align generate --compat llama2c` samples the same tokens for the same seed. */
uint32_t al_xorshift_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

float al_xorshift_f32(uint64_t *state)
{
    return (float)(al_xorshift_u32(state) >> 8) / 16777216.0f;
}

uint64_t al_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Eight bytes at a time through a multiply-xorshift mix, then a final avalanche
 * (the finalizer of SplitMix64).  About 4 GB/s; detects torn or corrupted files. */
uint64_t al_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(n + 1));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    if (n > i)
        memcpy(&tail, p + i, n - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}
