/* tensor/cpu: 256-bit building blocks shared by the AVX2 and AVX-512 kernel files. Include only from files compiled
 * with -mavx2 -mfma -mf16c (names ending in _avx2.c / _avx512*.c).
 *
 *   | helper     | does                                                                 |
 *   |------------|----------------------------------------------------------------------|
 *   | load8      | 8 elements of f32 / bf16 / f16 at p[i] as 8 f32 (bf16: shift left 16) |
 *   | transpose8 | an 8x8 f32 block held in 8 registers, transposed in place             |
 *   | hsum8      | sum of the 8 lanes                                                   |
 *   | tail_mask  | lanes [0, r) set, for maskload/maskstore of a row's tail             |
 */
#ifndef MT_SIMD_AVX2_H
#define MT_SIMD_AVX2_H

#include <immintrin.h>

#include "tensor/cpu/cpu_int.h"

#define MT_INLINE static inline __attribute__((always_inline))

MT_INLINE __m256 load8(const void *p, mt_dtype dt, int64_t i) {
    if (dt == MT_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == MT_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

MT_INLINE void transpose8(__m256 v[8]) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

MT_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

MT_INLINE __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)MT_MIN(r, 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Packs columns [0, 8*groups) of a panel whose k runs are contiguous (W rows of a linear layer): element (k, j) at
 * src[j*cs + k] goes to d[k*nr + j]. */
MT_INLINE void pack_panel_t8(int groups, int nr, int64_t kc, const void *src, mt_dtype dt, int64_t cs, float *d) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int g = 0; g < groups; g++) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = load8(src, dt, (g * 8 + i) * cs + k);
            transpose8(v);
            for (int t = 0; t < 8; t++) _mm256_store_ps(d + (k + t) * nr + g * 8, v[t]);
        }
    for (; k < kc; k++)
        for (int j = 0; j < 8 * groups; j++) d[k * nr + j] = mt_cpu_load(src, dt, j * cs + k);
}

#endif
