/* ggml tensor types <-> float32: half floats and the legacy 32-element block formats.
 *
 * Block layouts (little-endian, no padding):
 *   Q4_0  f16 d, 16 bytes: element j in the low nibble of byte j, j+16 in the high one; x = (q-8)*d
 *   Q4_1  f16 d, f16 m, nibbles as Q4_0;                                              x = q*d + m
 *   Q5_0  f16 d, u32 high bits (bit j for element j), nibbles as Q4_0;                x = (q-16)*d
 *   Q5_1  f16 d, f16 m, u32 high bits, nibbles;                                       x = q*d + m
 *   Q8_0  f16 d, 32 int8;                                                             x = q*d
 *   Q8_1  f16 d, f16 s (d * sum q, unused here), 32 int8;                             x = q*d
 * Quantizing (Q8_0, Q4_0) rounds each block's scale d to f16 away from zero and codes by
 * that stored d, so the error bound holds for the d in the file: |x - x'| <= d/2 (Q4_0:
 * except values clamped to the top code, <= |d|). */
#include "align/core.h"

#include <math.h>
#include <string.h>

#define QK AL_GGML_QK

float al_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        float x = (float)man * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -x : x;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | man << 13; /* inf, NaN (payload kept) */
    else
        bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t al_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* 65520 and up round to infinity (65504 is odd: ties go up) */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal: rebias the exponent, round the mantissa to 10 bits */
        uint32_t r = ax - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax < 0x33000000u) /* below 2^-25: zero (2^-25 itself ties to the even zero) */
        return sign;
    /* subnormal: the value in units of 2^-24, rounded to nearest even */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

float al_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t al_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* NaN stays NaN even if its payload is in the low half */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

bool al_ggml_can_dequantize(int t)
{
    switch (t) {
    case AL_GGML_F32: case AL_GGML_F16: case AL_GGML_BF16: case AL_GGML_Q4_0: case AL_GGML_Q4_1:
    case AL_GGML_Q5_0: case AL_GGML_Q5_1: case AL_GGML_Q8_0: case AL_GGML_Q8_1:
        return true;
    default:
        return false;
    }
}

bool al_ggml_can_quantize(int t)
{
    return t == AL_GGML_F32 || t == AL_GGML_F16 || t == AL_GGML_BF16 || t == AL_GGML_Q8_0 || t == AL_GGML_Q4_0;
}

/* One block of 32 values from 4- or 5-bit codes: x = (code - off) * d + m. */
static void nibbles_out(const uint8_t *qs, uint32_t qh, bool five, int off, float d, float m, float *y)
{
    for (int j = 0; j < QK / 2; j++) {
        int lo = qs[j] & 0x0f, hi = qs[j] >> 4;
        if (five) {
            lo |= (int)((qh >> j) & 1u) << 4;
            hi |= (int)((qh >> (j + 16)) & 1u) << 4;
        }
        y[j] = (float)(lo - off) * d + m;
        y[j + QK / 2] = (float)(hi - off) * d + m;
    }
}

int al_ggml_dequantize(int t, const void *src, size_t n, float *dst)
{
    const uint8_t *p = src;
    if (!al_ggml_can_dequantize(t))
        return al_fail("cannot convert ggml type %s to float32", al_ggml_type_name(t));
    if (al_ggml_row_bytes(t, n) == 0 && n > 0)
        return al_fail("%zu elements are not whole %s blocks", n, al_ggml_type_name(t));
    switch (t) {
    case AL_GGML_F32:
        memcpy(dst, p, n * 4);
        return 0;
    case AL_GGML_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = al_f16_to_f32(rd16(p + 2 * i));
        return 0;
    case AL_GGML_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = al_bf16_to_f32(rd16(p + 2 * i));
        return 0;
    default:
        break;
    }
    size_t bytes = al_ggml_row_bytes(t, QK);
    for (size_t b = 0; b < n / QK; b++, p += bytes, dst += QK) {
        float d = al_f16_to_f32(rd16(p));
        uint32_t qh;
        switch (t) {
        case AL_GGML_Q4_0:
            nibbles_out(p + 2, 0, false, 8, d, 0, dst);
            break;
        case AL_GGML_Q4_1:
            nibbles_out(p + 4, 0, false, 0, d, al_f16_to_f32(rd16(p + 2)), dst);
            break;
        case AL_GGML_Q5_0:
            memcpy(&qh, p + 2, 4);
            nibbles_out(p + 6, qh, true, 16, d, 0, dst);
            break;
        case AL_GGML_Q5_1:
            memcpy(&qh, p + 4, 4);
            nibbles_out(p + 8, qh, true, 0, d, al_f16_to_f32(rd16(p + 2)), dst);
            break;
        case AL_GGML_Q8_0:
        case AL_GGML_Q8_1: {
            const int8_t *q = (const int8_t *)(p + (t == AL_GGML_Q8_0 ? 2 : 4));
            for (int j = 0; j < QK; j++)
                dst[j] = (float)q[j] * d;
            break;
        }
        }
    }
    return 0;
}

static int check_finite(const float *x, size_t n, size_t base)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return al_fail("element %zu is %g; quantized types need finite values", base + i, (double)x[i]);
    return 0;
}

/* The f16 scale for a block whose extreme value gets code top, rounded away from zero: a
 * scale rounded down would put the extreme value past the top code, and in F16's
 * subnormal range (blocks below ~0.008) that costs far more than d/2.  Fails if the scale
 * does not fit in F16. */
static int block_scale(float extreme, float top, size_t base, uint16_t *dh, float *d)
{
    float s = extreme / top;
    *dh = al_f32_to_f16(s);
    if (fabsf(al_f16_to_f32(*dh)) < fabsf(s))
        (*dh)++; /* next magnitude up; the sign bit is untouched */
    *d = al_f16_to_f32(*dh);
    if (!isfinite(*d))
        return al_fail("block at element %zu: scale %g is beyond F16's range", base, (double)s);
    return 0;
}

int al_ggml_quantize(int t, const float *x, size_t n, void *dst)
{
    uint8_t *p = dst;
    if (!al_ggml_can_quantize(t))
        return al_fail("cannot convert float32 to ggml type %s", al_ggml_type_name(t));
    if (al_ggml_row_bytes(t, n) == 0 && n > 0)
        return al_fail("%zu elements are not whole %s blocks", n, al_ggml_type_name(t));
    switch (t) {
    case AL_GGML_F32:
        memcpy(p, x, n * 4);
        return 0;
    case AL_GGML_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = al_f32_to_f16(x[i]);
            if ((h & 0x7fffu) == 0x7c00u && isfinite(x[i]))
                return al_fail("element %zu (%g) is beyond F16's range (use BF16 or F32)", i, (double)x[i]);
            wr16(p + 2 * i, h);
        }
        return 0;
    case AL_GGML_BF16:
        for (size_t i = 0; i < n; i++)
            wr16(p + 2 * i, al_f32_to_bf16(x[i]));
        return 0;
    default:
        break;
    }
    size_t bytes = al_ggml_row_bytes(t, QK);
    for (size_t b = 0; b < n / QK; b++, p += bytes, x += QK) {
        if (check_finite(x, QK, b * QK))
            return -1;
        uint16_t dh;
        float d;
        if (t == AL_GGML_Q8_0) {
            float amax = 0;
            for (int j = 0; j < QK; j++)
                amax = fmaxf(amax, fabsf(x[j]));
            if (block_scale(amax, 127, b * QK, &dh, &d))
                return -1;
            float id = d > 0 ? 1 / d : 0;
            wr16(p, dh);
            for (int j = 0; j < QK; j++) {
                /* |x| <= 127 d; the clamp only catches x * (1/d) rounding past it */
                float q = fminf(127, fmaxf(-127, roundf(x[j] * id)));
                p[2 + j] = (uint8_t)(int8_t)q;
            }
        } else { /* Q4_0: the largest magnitude, sign kept, maps to code 0 (x = -8d) */
            float m = 0;
            for (int j = 0; j < QK; j++)
                if (fabsf(x[j]) > fabsf(m))
                    m = x[j];
            if (block_scale(m, -8, b * QK, &dh, &d))
                return -1;
            float id = d != 0 ? 1 / d : 0;
            wr16(p, dh);
            for (int j = 0; j < QK / 2; j++) {
                int lo = (int)fminf(15, fmaxf(0, floorf(x[j] * id + 8.5f)));
                int hi = (int)fminf(15, fmaxf(0, floorf(x[j + QK / 2] * id + 8.5f)));
                p[2 + j] = (uint8_t)(lo | hi << 4);
            }
        }
    }
    return 0;
}
