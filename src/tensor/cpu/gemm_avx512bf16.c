/* tensor/cpu: AVX-512-BF16 kernels - a GEMV on bf16 activations x bf16 weights with vdpbf16ps (Intel SDM,
 * "VDPBF16PS": each f32 lane adds the products of one pair of bf16 values), and its roofline loop.
 *
 *   | operand | type                  | note                                                         |
 *   |---------|-----------------------|--------------------------------------------------------------|
 *   | a       | bf16 [m][lda], m <= 4 | the activations, rounded to bf16 by the caller (numerics!)   |
 *   | w       | bf16 [n][ldw]         | weights as stored, never converted                           |
 *   | c       | f32 [m][ldc]          | f32 sums; the instruction treats bf16 denormals as zero      |
 */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "tensor/cpu/cpu_int.h"

#define MT_INLINE static inline __attribute__((always_inline))

void mt_avx512_gemv_bf16(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
double mt_avx512_bf16_loop(int64_t iters, float *out);

MT_INLINE __m512bh load32(const uint16_t *p, int64_t left) {
    __mmask32 msk = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1u);
    return (__m512bh)_mm512_maskz_loadu_epi16(msk, p);
}

MT_INLINE void tile(int MM, int NW, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                    const float *bias, float *c, int64_t ldc, bool acc) {
    __m512 s[4][4];
    #pragma GCC unroll 24
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_setzero_ps();
    for (int64_t x = 0; x < k; x += 32) {
        __m512bh av[4];
        #pragma GCC unroll 24
        for (int i = 0; i < MM; i++) av[i] = load32(a + i * lda + x, k - x);
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) {
            __m512bh wv = load32(w + r * ldw + x, k - x);
            #pragma GCC unroll 24
            for (int i = 0; i < MM; i++) s[i][r] = _mm512_dpbf16_ps(s[i][r], av[i], wv);
        }
    }
    #pragma GCC unroll 24
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) {
            float t = _mm512_reduce_add_ps(s[i][r]);
            if (bias) t += bias[r];
            c[i * ldc + r] = acc ? c[i * ldc + r] + t : t;
        }
}

MT_INLINE void rows(int MM, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                    const float *bias, float *c, int64_t ldc, bool acc) {
    const int NW = MM <= 2 ? 4 : 2;
    int64_t j = 0;
    for (; j + NW <= n; j += NW) tile(MM, NW, k, a, lda, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
    for (; j < n; j++) tile(MM, 1, k, a, lda, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
}

void mt_avx512_gemv_bf16(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        int64_t mm = MT_MIN((int64_t)4, m - i0);
        const uint16_t *ai = a + i0 * lda;
        float *ci = c + i0 * ldc;
        if (mm == 1) rows(1, n, k, ai, lda, w, ldw, bias, ci, ldc, acc);
        else if (mm == 2) rows(2, n, k, ai, lda, w, ldw, bias, ci, ldc, acc);
        else if (mm == 3) rows(3, n, k, ai, lda, w, ldw, bias, ci, ldc, acc);
        else rows(4, n, k, ai, lda, w, ldw, bias, ci, ldc, acc);
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
