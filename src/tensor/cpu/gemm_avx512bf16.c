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

/* Panels of NR columns of a bf16 weight (column n, element k at src[n*ld + k]; the k pairs of a column are
 * adjacent 32-bit words there) as [ceil(kc/2)][NR][2]: each panel row is one 32x32-bit transpose step. An odd kc's
 * last pair and the columns past nc are zero. */
void mt_avx512bf16_pack_b(int64_t kc, int64_t nc, const uint16_t *src, int64_t ld, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t n0 = 0; n0 < nc; n0 += NR, dst += kp * 2 * NR) {
        int64_t w = MT_MIN((int64_t)NR, nc - n0);
        uint32_t *d = (uint32_t *)dst;
        for (int64_t j = 0; j < NR; j++) {
            const uint16_t *col = src + (n0 + j) * ld;
            if (j >= w) {
                for (int64_t p = 0; p < kp; p++) d[p * NR + j] = 0;
                continue;
            }
            int64_t p = 0;
            for (; 2 * p + 1 < kc; p++) {
                uint32_t v;
                memcpy(&v, col + 2 * p, sizeof v);
                d[p * NR + j] = v;
            }
            if (p < kp) d[p * NR + j] = col[2 * p]; /* odd kc: the pair's upper half is zero */
        }
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
