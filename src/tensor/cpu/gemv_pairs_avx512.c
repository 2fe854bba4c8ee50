/* tensor/cpu: batched decode on AVX-512 - bf16 weights against 2-8 rows of f32 activations (cpu_int.h:
 * gemv_pairs), the weights widened two for one.
 *
 * A 512-bit load of W holds 32 bf16, the pair (2j, 2j+1) in 32-bit lane j. Shifting each lane left by 16 gives the
 * even elements as f32 and masking off its low half gives the odd ones: 2 ALU ops per 32 weights where widening
 * 16 at a time (vpmovzxwd, vpslld) takes 4. The activations are packed once per call to match (pack_pairs: per
 * block of 32 k, the 16 even then the 16 odd values of a row), so the products are the same f32 products as the
 * plain GEMV's, summed in another order. At 8 rows the FMAs are 8 of every 9 vector ops per weight: the kernel is
 * then bound by them, not by the widening or by memory.
 *
 *   | piece      | registers                                  | per 32 k                                   |
 *   |------------|--------------------------------------------|--------------------------------------------|
 *   | tile       | MM x NW accumulators, NW widened W rows    | NW W loads, 2 NW widen ops, 2 MM NW FMA   |
 *   | pack_pairs | 2 permutes per 32 floats of a row          | -                                          |
 *
 * Rows of packed A are one pointer apart by a constant (64 floats), so 8 rows cost one address register: the
 * plain GEMV's 8 row pointers spilled to the stack at 8 rows.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "tensor/cpu/cpu_int.h"

#define MT_INLINE static inline __attribute__((always_inline))

void mt_avx512_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
void mt_avx512_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w,
                          int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);

enum { L = 16, BK = 2 * L };

void mt_avx512_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    int64_t nb = (k + BK - 1) / BK;
    for (int64_t i = 0; i < m; i++) {
        const float *r = a + i * lda;
        for (int64_t b = 0; b < nb; b++) {
            int64_t x = b * BK, left = k - x;
            __mmask16 m0 = mt_lanes16(left), m1 = mt_lanes16(left - L);
            __m512 lo = _mm512_maskz_loadu_ps(m0, r + x), hi = _mm512_maskz_loadu_ps(m1, r + x + L);
            float *d = ap + (b * m + i) * BK;
            _mm512_storeu_ps(d, _mm512_permutex2var_ps(lo, even, hi));
            _mm512_storeu_ps(d + L, _mm512_permutex2var_ps(lo, odd, hi));
        }
    }
}

/* The four sums of a, b, c and d: pairs of lanes added within 128-bit lanes, then the four 128-bit lanes. */
MT_INLINE __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
    __m512 s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Prefetch as the plain GEMV (gemm_avx512.c): the next tile at the same offset when a tile's rows are short, else
 * PF_ROW_BYTES ahead in each row. */
enum { PF_TILE_BYTES = 16 << 10, PF_ROW_BYTES = 2048, A_L1_BYTES = 32 << 10, KBLK = 1024 / BK,
       SLICE_BYTES = 256 << 10 };

/* One block of 32 k into the MM x NW sums; tail: the row's last block, k - x < 32 elements long. */
MT_INLINE void step(int MM, int NW, bool tail, __m512 s[8][4], int64_t x, int64_t k, const uint16_t *pf,
                    const float *a, const uint16_t *w, int64_t ldw) {
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512i wr[4];
    #pragma GCC unroll 4
    for (int r = 0; r < NW; r++) {
        if (!tail) _mm_prefetch((const char *)(pf + r * ldw + x), _MM_HINT_T0);
        wr[r] = tail ? _mm512_maskz_loadu_epi16((__mmask32)((1u << (k - x)) - 1u), w + r * ldw + x)
                     : _mm512_loadu_si512(w + r * ldw + x);
    }
    __m512 wv[4];
    #pragma GCC unroll 4
    for (int r = 0; r < NW; r++) wv[r] = _mm512_castsi512_ps(_mm512_slli_epi32(wr[r], 16));
    #pragma GCC unroll 8
    for (int i = 0; i < MM; i++) {
        __m512 av = _mm512_loadu_ps(a + i * BK);
        __asm__("" : "+v"(av)); /* one load for NW FMAs: GCC would fold it into each */
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_fmadd_ps(av, wv[r], s[i][r]);
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NW; r++) wv[r] = _mm512_castsi512_ps(_mm512_and_si512(wr[r], hi));
    #pragma GCC unroll 8
    for (int i = 0; i < MM; i++) {
        __m512 av = _mm512_loadu_ps(a + i * BK + L);
        __asm__("" : "+v"(av));
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_fmadd_ps(av, wv[r], s[i][r]);
    }
}

/* C[i, r] (+)= A_i . W_r over blocks [b0, b1) of 32 k, for MM rows of packed A (ap: row 0, block 0; mp rows per
 * block) and NW rows of W (w: row 0, column 0). */
MT_INLINE void tile(int MM, int NW, int64_t b0, int64_t b1, int64_t k, bool pf_next, const float *ap, int64_t mp,
                    const uint16_t *w, int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    __m512 s[8][4];
    #pragma GCC unroll 8
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_setzero_ps();
    const uint16_t *pf = pf_next ? w + NW * ldw : w + PF_ROW_BYTES / 2;
    const float *a = ap + b0 * mp * BK;
    int64_t bf = MT_MIN(b1, k / BK), b = b0; /* blocks before bf are whole */
    for (; b < bf; b++, a += mp * BK) step(MM, NW, false, s, b * BK, k, pf, a, w, ldw);
    if (b < b1) step(MM, NW, true, s, b * BK, k, pf, a, w, ldw);
    float t[32];
    const __m512 z = _mm512_setzero_ps();
    #pragma GCC unroll 8
    for (int q = 0; q < MM * NW; q += 4) {
        __m512 v[4];
        #pragma GCC unroll 4
        for (int e = 0; e < 4; e++) v[e] = q + e < MM * NW ? s[(q + e) / NW][(q + e) % NW] : z;
        _mm_storeu_ps(t + q, hsum4(v[0], v[1], v[2], v[3]));
    }
    #pragma GCC unroll 32
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) {
            float y = t[i * NW + r] + (bias ? bias[r] : 0.0f);
            c[i * ldc + r] = acc ? c[i * ldc + r] + y : y;
        }
}

/* W rows [0, n) over blocks [b0, b1), NW at a time. */
MT_INLINE void span(int MM, int NW, int64_t n, int64_t b0, int64_t b1, int64_t k, bool pf_next, const float *ap,
                    int64_t mp, const uint16_t *w, int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    int64_t j = 0;
    for (; j + NW <= n; j += NW)
        tile(MM, NW, b0, b1, k, pf_next, ap, mp, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
    for (; j < n; j++)
        tile(MM, 1, b0, b1, k, pf_next, ap, mp, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
}

/* MM rows whose packed A outgrows L1 run in K blocks of KBLK x 32 over L2-sized slices of W, as the plain GEMV. */
MT_INLINE void rows(int MM, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w, int64_t ldw,
                    const float *bias, float *c, int64_t ldc, bool acc) {
    const int NW = MM <= 4 ? 4 : 3;
    int64_t nb = (k + BK - 1) / BK;
    if ((size_t)(MM * nb * BK) * sizeof(float) <= A_L1_BYTES) {
        span(MM, NW, n, 0, nb, k, (size_t)(NW * ldw) * 2 <= PF_TILE_BYTES, ap, mp, w, ldw, bias, c, ldc, acc);
        return;
    }
    int64_t slice = MT_MAX((int64_t)NW, (int64_t)(SLICE_BYTES / ((size_t)k * 2)) / NW * NW);
    for (int64_t s0 = 0; s0 < n; s0 += slice) {
        int64_t ns = MT_MIN(slice, n - s0);
        for (int64_t b0 = 0; b0 < nb; b0 += KBLK)
            span(MM, NW, ns, b0, MT_MIN(nb, b0 + KBLK), k, true, ap, mp, w + s0 * ldw, ldw,
                 bias && b0 == 0 ? bias + s0 : NULL, c + s0, ldc, acc || b0 > 0);
    }
}

void mt_avx512_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w,
                          int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t i0 = 0; i0 < m; i0 += 8) {
        int64_t mm = MT_MIN((int64_t)8, m - i0);
        const float *a = ap + i0 * BK;
        float *ci = c + i0 * ldc;
        switch (mm) {
        case 1: rows(1, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 2: rows(2, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 3: rows(3, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 4: rows(4, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 5: rows(5, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 6: rows(6, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 7: rows(7, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        default: rows(8, n, k, a, mp, w, ldw, bias, ci, ldc, acc);
        }
    }
}
#endif
