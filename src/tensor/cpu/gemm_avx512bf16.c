/* tensor/cpu: AVX-512-BF16 kernels - the GEMM micro-kernel on bf16 activations x bf16 weights with vdpbf16ps (Intel
 * SDM, "VDPBF16PS": each f32 lane adds the products of one pair of bf16 values), its B panels, and its roofline loop.
 *
 *   | operand | type                          | note                                                         |
 *   |---------|-------------------------------|--------------------------------------------------------------|
 *   | a       | bf16 rows of k pairs, packed  | the activations, rounded to bf16 by the packing (numerics!)  |
 *   | b       | bf16 panels [k/2][32][2]      | the weight's columns, pairs of k side by side                |
 *   | c       | f32 [8][ldc]                  | f32 sums; the instruction treats bf16 denormals as zero      |
 */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "tensor/cpu/cpu_int.h"
#include "tensor/quant.h"

double mt_avx512_bf16_loop(int64_t iters, float *out);

/* ---- GEMM: the bf16 micro-kernel and its B panels (cpu_int.h: ukr_bf16, pack_b_bf16) ---- */

enum { MR = 8, NR = 32 };

#define ROW(i)                                                                  \
    t = (__m512bh)_mm512_set1_epi32(*(const int32_t *)(a##i + 2 * p));          \
    c##i##0 = _mm512_dpbf16_ps(c##i##0, t, b0);                                 \
    c##i##1 = _mm512_dpbf16_ps(c##i##1, t, b1)

#define STORE(i)                                                                \
    if (load_c) {                                                               \
        c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(c + (i)*ldc));         \
        c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(c + (i)*ldc + 16));    \
    }                                                                           \
    _mm512_storeu_ps(c + (i)*ldc, c##i##0);                                     \
    _mm512_storeu_ps(c + (i)*ldc + 16, c##i##1)

void mt_avx512bf16_ukr(int64_t kp, const uint16_t *a, int64_t rsa, const uint16_t *b, float *c, int64_t ldc,
                       bool load_c);
void mt_avx512bf16_pack_b(int64_t kc, int64_t nc, const uint16_t *src, int64_t ld, uint16_t *dst);
void mt_avx512bf16_pack_b_r8(int64_t kc, int64_t nc, const void *w, size_t wrow, mt_dtype wt, uint16_t *dst);
void mt_avx512bf16_round(int64_t n, const float *x, uint16_t *y);

/* C[8][32] (+)= A[8][2 kp] . B: per pair p of k, row i's two bf16 at a_i + 2p are broadcast as one 32-bit lane
 * and multiplied into the panel's [p][32 columns][2] pairs, 16 accumulators as the f32 kernel. */
void mt_avx512bf16_ukr(int64_t kp, const uint16_t *a, int64_t rsa, const uint16_t *b, float *c, int64_t ldc,
                       bool load_c) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const uint16_t *a0 = a, *a1 = a + rsa, *a2 = a + 2 * rsa, *a3 = a + 3 * rsa;
    const uint16_t *a4 = a + 4 * rsa, *a5 = a + 5 * rsa, *a6 = a + 6 * rsa, *a7 = a + 7 * rsa;
    for (int64_t p = 0; p < kp; p++, b += 2 * NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + NR), t;
        ROW(0);
        ROW(1);
        ROW(2);
        ROW(3);
        ROW(4);
        ROW(5);
        ROW(6);
        ROW(7);
    }
    STORE(0);
    STORE(1);
    STORE(2);
    STORE(3);
    STORE(4);
    STORE(5);
    STORE(6);
    STORE(7);
}

/* r[i] = row i of a 16x16 matrix of 32-bit words becomes column i: unpacks within 128-bit lanes (words, then pairs
 * of words) give each lane 4 rows x 4 columns, and two rounds of 128-bit lane shuffles gather a column's 4 lanes. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* u[i + k], lane L: rows i..i+3, word 4L + k */
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88), v1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xdd);
        __m512i w0 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xdd);
        r[k] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[4 + k] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[8 + k] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[12 + k] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

/* Pairs [p0, kp) of column j (NULL: a zero column past nc) into panel rows d. */
static void pack_column_tail(const uint16_t *col, int64_t j, int64_t p0, int64_t kc, uint32_t *d) {
    int64_t kp = (kc + 1) / 2, p = p0;
    for (; col && 2 * p + 1 < kc; p++) {
        uint32_t v;
        memcpy(&v, col + 2 * p, sizeof v);
        d[p * NR + j] = v;
    }
    if (col && p < kp) d[p * NR + j] = col[2 * p], p++; /* odd kc: the pair's upper half is zero */
    for (; p < kp; p++) d[p * NR + j] = 0;
}

/* Panels of NR columns of a bf16 weight (column n, element k at src[n*ld + k]; the k pairs of a column are
 * adjacent 32-bit words there) as [ceil(kc/2)][NR][2]: each panel row is one 32x32-bit transpose step, done as
 * 16x16 blocks of words (16 pairs of 16 columns, one 64-byte load per column), and word by word at the edges. An
 * odd kc's last pair and the columns past nc are zero. The scalar loop took 43% of the micro-kernel's time in a
 * prefill on Zen 5 (PERFORMANCE.md, session 11). A block's 16 loads are 16 streams ld apart, which the hardware
 * prefetcher follows poorly: the next 16 columns' lines at the same pairs are asked into L2 meanwhile. At 32 rows of
 * A, where packing was half of the GEMM's time, that made it 10-30% faster (session 15). */
void mt_avx512bf16_pack_b(int64_t kc, int64_t nc, const uint16_t *src, int64_t ld, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2, full = kc / 2 / 16 * 16; /* pairs done in 16x16 blocks */
    for (int64_t n0 = 0; n0 < nc; n0 += NR, dst += kp * 2 * NR) {
        int64_t w = MT_MIN((int64_t)NR, nc - n0);
        uint32_t *d = (uint32_t *)dst;
        for (int64_t j0 = 0; j0 < NR; j0 += 16) {
            int64_t blocked = j0 + 16 <= w ? full : 0;
            const uint16_t *next = src + (n0 + j0 + 16) * ld;
            for (int64_t p0 = 0; p0 < blocked; p0 += 16) {
                __m512i r[16];
                if (n0 + j0 + 32 <= nc)
                    for (int i = 0; i < 16; i++) _mm_prefetch((const char *)(next + i * ld + 2 * p0), _MM_HINT_T1);
                for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(src + (n0 + j0 + i) * ld + 2 * p0);
                transpose16(r);
                for (int i = 0; i < 16; i++) _mm512_storeu_si512(d + (p0 + i) * NR + j0, r[i]);
            }
            for (int64_t j = j0; j < j0 + 16; j++)
                pack_column_tail(j < w ? src + (n0 + j) * ld : NULL, j, blocked, kc, d);
        }
    }
}

/* Panels of NR columns of a B whose rows are k (element (k, n) at src[k*rs + n], f32 or bf16: attention's V tile)
 * as [ceil(kc/2)][NR][2]: rows 2p and 2p+1 widen to 32-bit words, the odd row shifted into the upper halves, so a
 * pair of rows is 16 columns' pairs per 64-byte store. An odd kc's last pair and the columns past nc are zero. */
void mt_avx512bf16_pack_rows(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t n0 = 0; n0 < nc; n0 += NR, dst += kp * 2 * NR)
        for (int64_t j = 0; j < NR; j += 16) {
            __mmask16 m = mt_lanes16(nc - n0 - j);
            for (int64_t p = 0; p < kp; p++) {
                __m512i w = _mm512_setzero_si512();
                for (int h = 0; h < 2 && 2 * p + h < kc; h++) {
                    int64_t at = (2 * p + h) * rs + n0 + j;
                    __m256i v = dt == MT_BF16
                                    ? _mm256_maskz_loadu_epi16(m, (const uint16_t *)src + at)
                                    : (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, (const float *)src + at));
                    w = _mm512_or_si512(w, _mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16 * h));
                }
                _mm512_store_si512(dst + (p * NR + j) * 2, w);
            }
        }
}

/* ---- B panels straight from the interleaved types (cpu_int.h: pack_b_r8_bf16) ---- */

/* 8 rows x 4 weights as f32 (f0: rows 0-3, f1: rows 4-7, row r's 4 in lanes 4r..4r+3 of its vector), rounded as
 * round_bf16 rounds, as two panel rows: the pair (k, k + 1) of the 8 rows at lo, (k + 2, k + 3) at hi. */
static inline void r8_pairs(__m512 f0, __m512 f1, uint32_t *lo, uint32_t *hi) {
    const __m512i split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    /* 32-bit word 2r: row r's (k, k + 1); word 2r + 1: its (k + 2, k + 3) */
    __m512i w = _mm512_permutexvar_epi32(split, (__m512i)_mm512_cvtne2ps_pbh(f1, f0));
    _mm256_storeu_si256((__m256i *)lo, _mm512_castsi512_si256(w));
    _mm256_storeu_si256((__m256i *)hi, _mm512_extracti64x4_epi64(w, 1));
}

/* Row r's value of v (8 floats) in lanes 4r..4r+3 of two vectors: rows 0-3, rows 4-7. */
static inline void r8_quads(__m256 v, __m512 out[2]) {
    const __m512i quad = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    out[0] = _mm512_permutexvar_ps(quad, _mm512_castps256_ps512(v));
    out[1] = _mm512_permutexvar_ps(_mm512_add_epi32(quad, _mm512_set1_epi32(4)), _mm512_castps256_ps512(v));
}

/* Q4_K_R8: 32 bytes of 4-bit codes (row r's 4 in bytes 4r..4r+3) times their row's d1 minus m1 (mul, then sub:
 * mt_dequantize_row_q4_K's rounding, no fused multiply-add). */
#if defined(__clang__)
static void q4_K_r8_pairs(__m256i codes, const __m512 dv[2], const __m512 mv[2], uint32_t *lo, uint32_t *hi) {
#pragma clang fp contract(off)
#else
__attribute__((optimize("fp-contract=off"))) static void q4_K_r8_pairs(__m256i codes, const __m512 dv[2],
                                                                      const __m512 mv[2], uint32_t *lo, uint32_t *hi) {
#endif
    __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(codes)));
    __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(codes, 1)));
    r8_pairs(_mm512_sub_ps(_mm512_mul_ps(f0, dv[0]), mv[0]), _mm512_sub_ps(_mm512_mul_ps(f1, dv[1]), mv[1]), lo, hi);
}

/* One Q4_K_R8 block of a group (256 k of 8 rows) into the panel rows from d on (the block's first pair). */
static void q4_K_r8_block(const mt_block_q4_K_r8 *blk, uint32_t *d) {
    const __m256i low4 = _mm256_set1_epi8(0xF);
    float d1[8][8], m1[8][8]; /* [sub-block][row] */
    mt_q4_K_r8_factors(blk, d1, m1);
    for (int j = 0; j < 8; j++) { /* sub-block j: codes 8 (j / 2) .. + 7, low nibbles for even j */
        __m512 dv[2], mv[2];
        r8_quads(_mm256_loadu_ps(d1[j]), dv);
        r8_quads(_mm256_loadu_ps(m1[j]), mv);
        for (int c = 0; c < 8; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)blk->qs[8 * (j / 2) + c]);
            q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, low4);
            int64_t pair = 16 * j + 2 * c;
            q4_K_r8_pairs(q, dv, mv, d + pair * NR, d + (pair + 1) * NR);
        }
    }
}

/* One Q8_0_R8 block of a group (32 k of 8 rows; codes stored with their sign bit flipped): code times its row's d. */
static void q8_0_r8_block(const mt_block_q8_0_r8 *blk, uint32_t *d) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m512 dv[2];
    r8_quads(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->d)), dv);
    for (int c = 0; c < 8; c++) {
        __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)blk->qs[c]), flip);
        __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
        __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
        r8_pairs(_mm512_mul_ps(f0, dv[0]), _mm512_mul_ps(f1, dv[1]), d + 2 * c * NR, d + (2 * c + 1) * NR);
    }
}

/* Panels of NR columns (4 groups of 8 rows) from the Q4_K_R8 or Q8_0_R8 groups at w (group g at w + 8 g wrow bytes,
 * starting at the block of the first k), kc values each (a multiple of the block): what dequantizing
 * (qk_dequant), rounding (round_bf16) and packing (pack_b_bf16) give, in one pass. In a group's block, 32 bytes of
 * codes hold 4 k of each of its 8 rows, which become 2 pairs of 8 adjacent panel words: no transposition is left.
 * A prefill of 17-64 rows of a Q4_K file spent half of its time in those three steps (docs/PERFORMANCE.md, session
 * 16). */
void mt_avx512bf16_pack_b_r8(int64_t kc, int64_t nc, const void *w, size_t wrow, mt_dtype wt, uint16_t *dst) {
    bool q4 = wt == MT_Q4_K_R8;
    int64_t kp = kc / 2, groups = nc / 8, blk = q4 ? MT_QK_K : MT_QK8_0;
    size_t bb = q4 ? sizeof(mt_block_q4_K_r8) : sizeof(mt_block_q8_0_r8);
    for (int64_t g = 0; g < groups; g++) {
        uint32_t *d = (uint32_t *)dst + (g / 4) * kp * NR + (g % 4) * 8;
        const char *x = (const char *)w + (size_t)g * 8 * wrow;
        for (int64_t b = 0; b < kc / blk; b++, x += bb, d += blk / 2 * NR) {
            if (q4) q4_K_r8_block((const mt_block_q4_K_r8 *)x, d);
            else q8_0_r8_block((const mt_block_q8_0_r8 *)x, d);
        }
    }
    /* columns past nc in the last panel */
    for (int64_t j = nc; j % NR; j++)
        for (int64_t p = 0; p < kp; p++) ((uint32_t *)dst)[(nc / NR) * kp * NR + p * NR + j % NR] = 0;
}

/* ---- rows: a few rows of A against W rows read in place (cpu_int.h: rows_bf16) ---- */

enum { RM = MT_ROWS_BF16_M, RW = 6, RK = MT_ROWS_BF16_K };

/* RM rows of A (zero past m) against NW rows of W: RM x NW sums of k pairs in f32 lanes, added across lanes at the
 * end. Each step loads NW W vectors and RM A vectors for RM x NW vdpbf16ps; W past k is masked off, and A's padding
 * is zero, so the last step's extra lanes add nothing. */
static inline __attribute__((always_inline)) void rows_tile(int NW, int64_t m, int64_t k, const uint16_t *a,
                                                            int64_t lda, const uint16_t *w, int64_t ldw,
                                                            const float *bias, float *c, int64_t ldc, bool acc) {
    __m512 s[RM][RW];
    #pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
        #pragma GCC unroll 6
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_setzero_ps();
    for (int64_t x = 0; x < k; x += RK) {
        __mmask32 lanes = k - x >= RK ? ~(__mmask32)0 : (__mmask32)((1u << (k - x)) - 1u);
        __m512i wv[RW];
        #pragma GCC unroll 6
        for (int r = 0; r < NW; r++) wv[r] = _mm512_maskz_loadu_epi16(lanes, w + r * ldw + x);
        #pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            __m512bh av = (__m512bh)_mm512_loadu_si512(a + i * lda + x);
            #pragma GCC unroll 6
            for (int r = 0; r < NW; r++) s[i][r] = _mm512_dpbf16_ps(s[i][r], av, (__m512bh)wv[r]);
        }
    }
    #pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
        #pragma GCC unroll 6
        for (int r = 0; r < NW; r++)
            if (i < m) {
                float t = _mm512_reduce_add_ps(s[i][r]) + (bias ? bias[r] : 0.0f);
                c[i * ldc + r] = acc ? c[i * ldc + r] + t : t;
            }
}

/* Row groups of A outside, tiles of W inside: the caller hands an L2-sized slice of W, read from memory by the
 * first group and from L2 by the rest. */
void mt_avx512bf16_rows(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w,
                        int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t i0 = 0; i0 < m; i0 += RM) {
        const uint16_t *ai = a + i0 * lda;
        float *ci = c + i0 * ldc;
        int64_t mm = MT_MIN((int64_t)RM, m - i0), j = 0;
        for (; j + RW <= n; j += RW)
            rows_tile(RW, mm, k, ai, lda, w + j * ldw, ldw, bias ? bias + j : NULL, ci + j, ldc, acc);
        const uint16_t *wj = w + j * ldw;
        const float *bj = bias ? bias + j : NULL;
        switch (n - j) {
        case 5: rows_tile(5, mm, k, ai, lda, wj, ldw, bj, ci + j, ldc, acc); break;
        case 4: rows_tile(4, mm, k, ai, lda, wj, ldw, bj, ci + j, ldc, acc); break;
        case 3: rows_tile(3, mm, k, ai, lda, wj, ldw, bj, ci + j, ldc, acc); break;
        case 2: rows_tile(2, mm, k, ai, lda, wj, ldw, bj, ci + j, ldc, acc); break;
        case 1: rows_tile(1, mm, k, ai, lda, wj, ldw, bj, ci + j, ldc, acc); break;
        default: break;
        }
    }
}

/* vcvtne2ps2bf16, 32 floats an instruction: the rounding in software (mt_avx2_from_f32) took 10% of a bf16 GEMM's
 * time at M = 4096, K = 3420 on Zen 5 (PERFORMANCE.md, session 12). */
void mt_avx512bf16_round(int64_t n, const float *x, uint16_t *y) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512(y + i, (__m512i)v);
    }
    for (; i < n; i += 16) {
        __mmask16 m = mt_lanes16(n - i);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(y + i, m, (__m256i)v);
    }
}

/* 24 independent vdpbf16ps chains; each instruction is 32 multiply-adds per 512 bits. */
double mt_avx512_bf16_loop(int64_t iters, float *out) {
    __m512 v[24];
    #pragma GCC unroll 24
    for (int j = 0; j < 24; j++) v[j] = _mm512_set1_ps((float)j);
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int64_t it = 0; it < iters; it++)
        #pragma GCC unroll 24
        for (int j = 0; j < 24; j++) v[j] = _mm512_dpbf16_ps(v[j], x, y);
    __m512 s = v[0];
    #pragma GCC unroll 24
    for (int j = 1; j < 24; j++) s = _mm512_add_ps(s, v[j]);
    *out = _mm512_reduce_add_ps(s);
    return 24.0 * 32 * 2 * (double)iters;
}
#endif
