/* tensor/quant: ggml's block-quantized weight formats, byte for byte as GGUF files store them (the GGUF spec and
 * ggml-common.h give the layouts; these declarations are ours). A row of a quantized tensor is a run of blocks;
 * every scale is an f16 bit pattern (dtype.h converts).
 *
 *   | type | elems | bytes | value of element i of a block                                           |
 *   |------|-------|-------|--------------------------------------------------------------------------|
 *   | Q8_0 | 32    | 34    | d * qs[i]                                                                |
 *   | Q4_0 | 32    | 18    | d * (q - 8), q = low nibble of qs[i] for i < 16, high of qs[i-16] else   |
 *   | Q4_K | 256   | 144   | 8 sub-blocks of 32: d * sc * q - dmin * m, 6-bit sc/m packed in scales    |
 *   | Q6_K | 256   | 210   | 16 sub-blocks of 16: d * scales[j] * (q - 32), q 4 low bits ql + 2 in qh  |
 *   | Q8_K | 256   | 292   | d * qs[i]; activations only (the partner of Q4_K/Q6_K in dot products)   |
 *
 * Q4_K_R8 (ours, never in a file) is Q4_K with 8 rows interleaved, for the GEMV that keeps one row in each 32-bit
 * lane (gemv_quant_simd.h): no shuffles for the scales, no horizontal sums. Block b of a group of 8 rows (rows 8g..8g+7,
 * 8 * row_bytes from the matrix start per group) holds block b of each of the 8 rows, every byte kept, moved:
 *
 *   | offset | bytes | holds (r: the row in the group, 0..7)                                             |
 *   |--------|-------|-----------------------------------------------------------------------------------|
 *   | 0      | 16    | d[r] (f16)                                                                        |
 *   | 16     | 16    | dmin[r]                                                                           |
 *   | 32     | 96    | scales[w][r]: bytes 4w..4w+3 of row r's 12 scale bytes, w = 0..2                  |
 *   | 128    | 1024  | qs[v][r]: bytes 4v..4v+3 of row r's qs, v = 0..31                                 |
 *
 * The 32 bytes of qs[v] (v = 8p + c) hold in lane r row r's weights 64p + 4c + 0..3 in the low nibbles (sub-block
 * 2p) and 64p + 32 + 4c + 0..3 in the high nibbles (sub-block 2p + 1).
 *
 * Q8_0_R8 (ours, never in a file) is Q8_0 with 8 rows interleaved the same way: block b of a group holds block b of
 * each of its 8 rows (8 * 34 bytes), the codes offset to unsigned (q + 128, the same as q ^ 0x80), so that they are
 * the u8 operand of vpdpbusd against 4 activations broadcast to every lane:
 *
 *   | offset | bytes | holds (r: the row in the group, 0..7)                                             |
 *   |--------|-------|-----------------------------------------------------------------------------------|
 *   | 0      | 16    | d[r] (f16)                                                                        |
 *   | 16     | 256   | qs[c][r][0..3]: row r's codes 4c..4c+3 plus 128, c = 0..7                          |
 *
 * A matrix of N rows holds N / 8 such groups, then its last N % 8 rows as plain Q8_0 rows in their places (the groups
 * take 8 * row_bytes each, so row j of the tail starts at j * row_bytes as in Q8_0).
 */
#ifndef MT_QUANT_H
#define MT_QUANT_H

#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "tensor/dtype.h"

enum { MT_QK8_0 = 32, MT_QK4_0 = 32, MT_QK_K = 256, MT_K_SCALE_SIZE = 12 };

typedef struct mt_block_q8_0 {
    uint16_t d;
    int8_t qs[MT_QK8_0];
} mt_block_q8_0;

typedef struct mt_block_q4_0 {
    uint16_t d;
    uint8_t qs[MT_QK4_0 / 2];
} mt_block_q4_0;

typedef struct mt_block_q4_K {
    uint16_t d;    /* super-block scale of the quantized scales */
    uint16_t dmin; /* super-block scale of the quantized mins */
    uint8_t scales[MT_K_SCALE_SIZE];
    uint8_t qs[MT_QK_K / 2];
} mt_block_q4_K;

typedef struct mt_block_q6_K {
    uint8_t ql[MT_QK_K / 2];
    uint8_t qh[MT_QK_K / 4];
    int8_t scales[MT_QK_K / 16];
    uint16_t d;
} mt_block_q6_K;

typedef struct mt_block_q8_K {
    float d;
    int8_t qs[MT_QK_K];
    int16_t bsums[MT_QK_K / 16]; /* sums of each 16 qs, for the Q4_K min term */
} mt_block_q8_K;

typedef struct mt_block_q4_K_r8 {
    uint16_t d[8];
    uint16_t dmin[8];
    uint32_t scales[3][8];
    uint32_t qs[32][8];
} mt_block_q4_K_r8;

typedef struct mt_block_q8_0_r8 {
    uint16_t d[8];
    uint8_t qs[8][8][4];
} mt_block_q8_0_r8;

_Static_assert(sizeof(mt_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(mt_block_q8_0_r8) == 8 * 34, "Q8_0_R8 block");
_Static_assert(sizeof(mt_block_q4_K_r8) == 8 * 144, "Q4_K_R8 block");
_Static_assert(sizeof(mt_block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(mt_block_q4_K) == 144, "Q4_K block");
_Static_assert(sizeof(mt_block_q6_K) == 210, "Q6_K block");
_Static_assert(sizeof(mt_block_q8_K) == 292, "Q8_K block");

/* Checked entry points (Q4_K_R8: rows a multiple of 8, quantized as Q4_K then interleaved; Q8_0_R8: any rows, as
 * Q8_0 then interleaved). rows x n floats (row-major, n per row) to rows x mt_dtype_row_bytes(t, n) bytes, and back.
 * MT_ERR_INVALID_ARG when t is not a quantized type, n is not a positive multiple of the block or the sizes
 * overflow; quantizing a NaN or an infinity is MT_ERR_INVALID_ARG naming the row and the index in the row. The output
 * is written block by block: on error it may hold the rows before the bad one. */
mt_status mt_quantize(mt_dtype t, const float *x, int64_t rows, int64_t n, void *dst, mt_err *err);
mt_status mt_dequantize(mt_dtype t, const void *src, int64_t rows, int64_t n, float *y, mt_err *err);

/* The unchecked row functions: n a multiple of the block (32 for Q8_0/Q4_0, MT_QK_K for the rest), x finite.
 * They give ggml's bytes (quantize_row_*_ref, which ggml_quantize_chunk runs without an importance matrix). */
void mt_quantize_row_q8_0(const float *x, mt_block_q8_0 *y, int64_t n);
void mt_quantize_row_q4_0(const float *x, mt_block_q4_0 *y, int64_t n);
void mt_quantize_row_q4_K(const float *x, mt_block_q4_K *y, int64_t n);
void mt_quantize_row_q6_K(const float *x, mt_block_q6_K *y, int64_t n);
/* Activations for the K-quant dot products: d = max / -127 of the block (f32), bsums over each 16. */
void mt_quantize_row_q8_K(const float *x, mt_block_q8_K *y, int64_t n);
void mt_dequantize_row_q8_0(const mt_block_q8_0 *x, float *y, int64_t n);
void mt_dequantize_row_q4_0(const mt_block_q4_0 *x, float *y, int64_t n);
void mt_dequantize_row_q4_K(const mt_block_q4_K *x, float *y, int64_t n);
void mt_dequantize_row_q6_K(const mt_block_q6_K *x, float *y, int64_t n);
void mt_dequantize_row_q8_K(const mt_block_q8_K *x, float *y, int64_t n);
/* Either of the above by dtype (a quantized one; not Q4_K_R8 or Q8_0_R8, whose rows are not apart: nothing is
 * written). */
void mt_quantize_row(mt_dtype t, const float *x, void *y, int64_t n);
void mt_dequantize_row(mt_dtype t, const void *x, float *y, int64_t n);

/* Q4_K_R8: block b of row `row` of the matrix at w (rows of row_bytes, row 0 at w) as the Q4_K block it came from. */
static inline void mt_q4_K_r8_get(const void *w, size_t row_bytes, int64_t row, int64_t b, mt_block_q4_K *out) {
    const mt_block_q4_K_r8 *x = (const mt_block_q4_K_r8 *)((const char *)w + (size_t)(row / 8) * 8 * row_bytes) + b;
    int r = (int)(row % 8);
    out->d = x->d[r];
    out->dmin = x->dmin[r];
    for (int k = 0; k < 3; k++) memcpy(out->scales + 4 * k, &x->scales[k][r], 4);
    for (int v = 0; v < 32; v++) memcpy(out->qs + 4 * v, &x->qs[v][r], 4);
}
/* rows x n of Q4_K (rows of mt_dtype_row_bytes(MT_Q4_K, n)) to Q4_K_R8 at dst, which must not overlap src.
 * MT_ERR_INVALID_ARG, naming the value, when rows is not a positive multiple of 8 or n not one of MT_QK_K. */
mt_status mt_repack_q4_K_r8(const void *src, int64_t rows, int64_t n, void *dst, mt_err *err);

/* Q8_0_R8: block b of row `row` of the matrix at w (rows rows of row_bytes, row 0 at w) as the Q8_0 block it came
 * from; rows past the last group of 8 are plain Q8_0. */
static inline void mt_q8_0_r8_get(const void *w, size_t row_bytes, int64_t rows, int64_t row, int64_t b,
                                  mt_block_q8_0 *out) {
    if (row >= rows / 8 * 8) {
        *out = ((const mt_block_q8_0 *)((const char *)w + (size_t)row * row_bytes))[b];
        return;
    }
    const mt_block_q8_0_r8 *x = (const mt_block_q8_0_r8 *)((const char *)w + (size_t)(row / 8) * 8 * row_bytes) + b;
    int r = (int)(row % 8);
    out->d = x->d[r];
    for (int c = 0; c < 8; c++)
        for (int j = 0; j < 4; j++) out->qs[4 * c + j] = (int8_t)(x->qs[c][r][j] ^ 0x80);
}
/* rows x n of Q8_0 (rows of mt_dtype_row_bytes(MT_Q8_0, n)) to Q8_0_R8 at dst, which must not overlap src; any
 * rows > 0 (a last rows % 8 stay Q8_0). MT_ERR_INVALID_ARG, naming the value, when rows is not positive or n not a
 * positive multiple of MT_QK8_0. */
mt_status mt_repack_q8_0_r8(const void *src, int64_t rows, int64_t n, void *dst, mt_err *err);

/* The interleaved type a linear weight of type t, rows x n, runs as (Q4_K_R8 for Q4_K rows in groups of 8, Q8_0_R8
 * for Q8_0 of 8 rows or more), or t itself: the one rule the loader and the bench follow. */
mt_dtype mt_repack_type(mt_dtype t, int64_t rows, int64_t n);
/* src (rows x n of type t) to mt_repack_type's layout at dst (the same bytes, not overlapping src): the repack above
 * for that type. MT_ERR_INVALID_ARG when t has no interleaved form for this shape. */
mt_status mt_repack(mt_dtype t, const void *src, int64_t rows, int64_t n, void *dst, mt_err *err);

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K block, unpacked from its 12 scale bytes. */
static inline void mt_q4_K_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* A Q4_K_R8 block's factors per sub-block j and row r, the floats mt_dequantize_row_q4_K applies: a code times
 * d1[j][r] minus m1[j][r]. */
static inline void mt_q4_K_r8_factors(const mt_block_q4_K_r8 *g, float d1[8][8], float m1[8][8]) {
    for (int r = 0; r < 8; r++) {
        uint8_t s12[12], sc, m;
        for (int w = 0; w < 3; w++) memcpy(s12 + 4 * w, &g->scales[w][r], 4);
        float d = mt_f16_to_f32(g->d[r]), dmin = mt_f16_to_f32(g->dmin[r]);
        for (int j = 0; j < 8; j++) {
            mt_q4_K_scale_min(j, s12, &sc, &m);
            d1[j][r] = d * sc;
            m1[j][r] = dmin * m;
        }
    }
}

#endif
