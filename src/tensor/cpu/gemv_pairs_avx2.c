/* tensor/cpu: batched decode on AVX2 - bf16 weights against 2-4 rows of f32 activations (cpu_int.h: gemv_pairs),
 * the weights widened two for one as gemv_pairs_avx512.c does, with 256-bit vectors: a load of W holds 16 bf16,
 * the even ones are each 32-bit lane shifted left by 16, the odd ones the lane with its low half masked off; A is
 * packed per block of 16 k as 8 even then 8 odd values.
 *
 *   | piece      | registers (16 ymm)                         | per 16 k                                   |
 *   |------------|--------------------------------------------|--------------------------------------------|
 *   | tile       | MM x NW accumulators (<= 9), NW widened W  | 2 NW W loads (L1), 2 NW widen, 2 MM NW FMA |
 *   | pack_pairs | 2 shuffles + 2 permutes per 16 floats      | -                                          |
 *
 * The odd half loads W again from L1 rather than holding the raw vectors: 16 registers do not hold both. More rows
 * than 4 run in passes over L2-sized slices of W (the driver's).
 */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "tensor/cpu/cpu_int.h"

#define MT_INLINE static inline __attribute__((always_inline))

void mt_avx2_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
void mt_avx2_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w,
                        int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);

enum { L = 8, BK = 2 * L };

void mt_avx2_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap) {
    int64_t nb = (k + BK - 1) / BK, full = k / BK;
    for (int64_t i = 0; i < m; i++) {
        const float *r = a + i * lda;
        for (int64_t b = 0; b < full; b++) {
            __m256 lo = _mm256_loadu_ps(r + b * BK), hi = _mm256_loadu_ps(r + b * BK + L);
            /* per 128-bit lane [lo0 lo2 hi0 hi2], then the 64-bit quarters reordered: lo0 lo2 lo4 lo6 hi0 ... */
            __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
            float *d = ap + (b * m + i) * BK;
            _mm256_storeu_ps(d, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
            _mm256_storeu_ps(d + L, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
        }
        for (int64_t b = full; b < nb; b++) {
            float *d = ap + (b * m + i) * BK;
            for (int64_t j = 0; j < L; j++) {
                int64_t x = b * BK + 2 * j;
                d[j] = x < k ? r[x] : 0.0f;
                d[L + j] = x + 1 < k ? r[x + 1] : 0.0f;
            }
        }
    }
}

/* The four sums of a, b, c and d. */
MT_INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
    __m256 s = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

enum { PF_TILE_BYTES = 16 << 10, PF_ROW_BYTES = 2048, A_L1_BYTES = 16 << 10, KBLK = 1024 / BK,
       SLICE_BYTES = 256 << 10 };

/* The last block of a row whose k is off the block: the elements past k are read as zero, never from memory. */
MT_INLINE __m256i load_tail(const uint16_t *p, int64_t left) {
    uint16_t t[BK] = {0};
    memcpy(t, p, sizeof *p * (size_t)left);
    return _mm256_loadu_si256((const __m256i *)t);
}

/* One block of 16 k into the MM x NW sums; tail: the row's last block, k - x < 16 elements long. */
MT_INLINE void step(int MM, int NW, bool tail, __m256 s[4][4], int64_t x, int64_t k, const uint16_t *pf,
                    const float *a, const uint16_t *w, int64_t ldw) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 wv[4];
    #pragma GCC unroll 4
    for (int r = 0; r < NW; r++) {
        if (!tail && x % 32 == 0) _mm_prefetch((const char *)(pf + r * ldw + x), _MM_HINT_T0);
        __m256i raw = tail ? load_tail(w + r * ldw + x, k - x) : _mm256_loadu_si256((const __m256i *)(w + r * ldw + x));
        wv[r] = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
    }
    #pragma GCC unroll 4
    for (int i = 0; i < MM; i++) {
        __m256 av = _mm256_loadu_ps(a + i * BK);
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm256_fmadd_ps(av, wv[r], s[i][r]);
    }
    #pragma GCC unroll 4
    for (int r = 0; r < NW; r++) {
        __m256i raw = tail ? load_tail(w + r * ldw + x, k - x) : _mm256_loadu_si256((const __m256i *)(w + r * ldw + x));
        wv[r] = _mm256_castsi256_ps(_mm256_and_si256(raw, hi));
    }
    #pragma GCC unroll 4
    for (int i = 0; i < MM; i++) {
        __m256 av = _mm256_loadu_ps(a + i * BK + L);
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm256_fmadd_ps(av, wv[r], s[i][r]);
    }
}

/* As gemv_pairs_avx512.c's tile: C[i, r] (+)= A_i . W_r over blocks [b0, b1) of 16 k. */
MT_INLINE void tile(int MM, int NW, int64_t b0, int64_t b1, int64_t k, bool pf_next, const float *ap, int64_t mp,
                    const uint16_t *w, int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    __m256 s[4][4];
    #pragma GCC unroll 4
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) s[i][r] = _mm256_setzero_ps();
    const uint16_t *pf = pf_next ? w + NW * ldw : w + PF_ROW_BYTES / 2;
    const float *a = ap + b0 * mp * BK;
    int64_t bf = MT_MIN(b1, k / BK), b = b0; /* blocks before bf are whole */
    for (; b < bf; b++, a += mp * BK) step(MM, NW, false, s, b * BK, k, pf, a, w, ldw);
    if (b < b1) step(MM, NW, true, s, b * BK, k, pf, a, w, ldw);
    float t[16];
    const __m256 z = _mm256_setzero_ps();
    #pragma GCC unroll 4
    for (int q = 0; q < MM * NW; q += 4) {
        __m256 v[4];
        #pragma GCC unroll 4
        for (int e = 0; e < 4; e++) v[e] = q + e < MM * NW ? s[(q + e) / NW][(q + e) % NW] : z;
        _mm_storeu_ps(t + q, hsum4(v[0], v[1], v[2], v[3]));
    }
    #pragma GCC unroll 4
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 4
        for (int r = 0; r < NW; r++) {
            float y = t[i * NW + r] + (bias ? bias[r] : 0.0f);
            c[i * ldc + r] = acc ? c[i * ldc + r] + y : y;
        }
}

MT_INLINE void span(int MM, int NW, int64_t n, int64_t b0, int64_t b1, int64_t k, bool pf_next, const float *ap,
                    int64_t mp, const uint16_t *w, int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    int64_t j = 0;
    for (; j + NW <= n; j += NW)
        tile(MM, NW, b0, b1, k, pf_next, ap, mp, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
    for (; j < n; j++)
        tile(MM, 1, b0, b1, k, pf_next, ap, mp, w + j * ldw, ldw, bias ? bias + j : NULL, c + j, ldc, acc);
}

MT_INLINE void rows(int MM, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w, int64_t ldw,
                    const float *bias, float *c, int64_t ldc, bool acc) {
    const int NW = MM <= 2 ? 4 : MM == 3 ? 3 : 2;
    int64_t nb = (k + BK - 1) / BK;
    /* two rows measured faster unblocked even at K = 11008 (88 KB of A from L2, each load feeding 4 FMAs) */
    if (MM <= 2 || (size_t)(MM * nb * BK) * sizeof(float) <= A_L1_BYTES) {
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

void mt_avx2_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w,
                        int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        int64_t mm = MT_MIN((int64_t)4, m - i0);
        const float *a = ap + i0 * BK;
        float *ci = c + i0 * ldc;
        switch (mm) {
        case 1: rows(1, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 2: rows(2, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        case 3: rows(3, n, k, a, mp, w, ldw, bias, ci, ldc, acc); break;
        default: rows(4, n, k, a, mp, w, ldw, bias, ci, ldc, acc);
        }
    }
}
#endif
