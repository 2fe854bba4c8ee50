/* tensor/dtype: element types and scalar conversions. bf16 and f16 are stored as uint16_t bit patterns.
 * Conversion to bf16 rounds to nearest even (as torch does); NaN stays NaN.
 *
 * The block-quantized types (Q8_0, Q4_0, Q4_K, Q6_K: ggml's, as GGUF stores them, layouts in tensor/quant.h) hold
 * weights only: a row of n elements is n / block_elems blocks of block_bytes, so they have no per-element size
 * (mt_dtype_size is 0); use mt_dtype_row_bytes.
 *
 * Q4_K_R8 is Q4_K with 8 rows interleaved (tensor/quant.h draws it): made from Q4_K at load for linear weights, never
 * read from or written to a file. Its rows are not apart: a matrix of it has a multiple of 8 rows, and a view of it
 * starts on a multiple of 8; row_bytes is still bytes per row (8 rows take 8 * row_bytes). Q8_0_R8 is Q8_0 so
 * interleaved, likewise made at load, with any number of rows: the last rows % 8 stay plain Q8_0 in their places. */
#ifndef MT_DTYPE_H
#define MT_DTYPE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef enum mt_dtype {
    MT_F32 = 0,
    MT_BF16,
    MT_F16,
    MT_I32,
    MT_I64,
    MT_U8,
    MT_Q8_0,
    MT_Q4_0,
    MT_Q4_K,
    MT_Q6_K,
    MT_Q4_K_R8,
    MT_Q8_0_R8,
    MT_DTYPE_COUNT
} mt_dtype;

/* Bytes of one element; 0 for the block-quantized types. */
static inline size_t mt_dtype_size(mt_dtype t) {
    static const size_t sizes[] = {4, 2, 2, 4, 8, 1, 0, 0, 0, 0, 0, 0};
    return sizes[t];
}

static inline bool mt_dtype_is_quant(mt_dtype t) { return t >= MT_Q8_0 && t < MT_DTYPE_COUNT; }

/* Elements per block (1 for the plain types) and bytes per block. */
static inline int64_t mt_dtype_block_elems(mt_dtype t) {
    static const int64_t elems[] = {1, 1, 1, 1, 1, 1, 32, 32, 256, 256, 256, 32};
    return elems[t];
}
static inline size_t mt_dtype_block_bytes(mt_dtype t) {
    static const size_t bytes[] = {4, 2, 2, 4, 8, 1, 34, 18, 144, 210, 144, 34};
    return bytes[t];
}
/* Bytes of a row of n elements; n must be a multiple of mt_dtype_block_elems(t). */
static inline size_t mt_dtype_row_bytes(mt_dtype t, int64_t n) {
    return (size_t)(n / mt_dtype_block_elems(t)) * mt_dtype_block_bytes(t);
}

const char *mt_dtype_name(mt_dtype t);

static inline float mt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t mt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float mt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t mt_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf */
    if (absu < 0x38800000u) {                                   /* subnormal or zero in f16 */
        if (absu < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absu >> 23;
        uint32_t man = (absu & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = man & ((1u << shift) - 1);
        uint32_t r = man >> shift;
        if (rest > half || (rest == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u) - 0x38000000u;
    return (uint16_t)(sign | (r >> 13));
}

#endif
