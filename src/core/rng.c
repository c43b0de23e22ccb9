/* Random numbers. */
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
