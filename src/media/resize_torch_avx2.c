/* media/resize_torch_avx2: the row kernels of the torchvision-exact resize with AVX2 and FMA (resize_torch_int.h):
 * the width pass computes the three channels of a pixel in one 4-float vector, the height pass eight floats of a
 * row at once, each lane with the scalar kernel's operations and order. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <immintrin.h>

#include "media/resize_torch_int.h"

void mt_resize_torch_row_h_avx2(const uint8_t *src, int64_t in_w, const float *k, int64_t ksize,
                                const int64_t *bounds, int64_t out_w, float *scratch, float *dst) {
    const size_t n3 = (size_t)in_w * 3;
    size_t i = 0;
    for (; i + 8 <= n3; i += 8)
        _mm256_storeu_ps(scratch + i,
                         _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + i)))));
    for (; i < n3; i++) scratch[i] = (float)src[i];
    scratch[n3] = 0.0f; /* read by the last pixel's fourth lane, which is never kept */
    for (int64_t x = 0; x < out_w;) {
        const float *p = scratch + bounds[2 * x] * 3;
        int64_t n = bounds[2 * x + 1], unfused = unfused_end(n), j = 1;
        if (x + 1 < out_w && bounds[2 * x + 3] == n) {
            /* two pixels with as many taps side by side: pixel x in the low half, x + 1 in the high half */
            const float *q = scratch + bounds[2 * x + 2] * 3, *kq = k + ksize;
            __m256 acc = _mm256_mul_ps(_mm256_set_m128(_mm_loadu_ps(q), _mm_loadu_ps(p)),
                                       _mm256_set_m128(_mm_set1_ps(kq[0]), _mm_set1_ps(k[0])));
            for (; j < unfused; j++)
                acc = _mm256_add_ps(acc,
                                    _mm256_mul_ps(_mm256_set_m128(_mm_loadu_ps(q + 3 * j), _mm_loadu_ps(p + 3 * j)),
                                                  _mm256_set_m128(_mm_set1_ps(kq[j]), _mm_set1_ps(k[j]))));
            for (; j < n; j++)
                acc = _mm256_fmadd_ps(_mm256_set_m128(_mm_loadu_ps(q + 3 * j), _mm_loadu_ps(p + 3 * j)),
                                      _mm256_set_m128(_mm_set1_ps(kq[j]), _mm_set1_ps(k[j])), acc);
            _mm_storeu_ps(dst + 3 * x, _mm256_castps256_ps128(acc));
            _mm_storeu_ps(dst + 3 * x + 3, _mm256_extractf128_ps(acc, 1)); /* over the low half's spare lane */
            x += 2;
            k += 2 * ksize;
            continue;
        }
        __m128 acc = _mm_mul_ps(_mm_loadu_ps(p), _mm_set1_ps(k[0]));
        for (; j < unfused; j++) acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(p + 3 * j), _mm_set1_ps(k[j])));
        for (; j < n; j++) acc = _mm_fmadd_ps(_mm_loadu_ps(p + 3 * j), _mm_set1_ps(k[j]), acc);
        _mm_storeu_ps(dst + 3 * x, acc);
        x++;
        k += ksize;
    }
}

void mt_resize_torch_row_v_avx2(const float *const *rows, const float *k, int64_t n, size_t len, float *dst) {
    const int64_t unfused = unfused_end(n);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(rows[0] + i), _mm256_set1_ps(k[0]));
        int64_t t = 1;
        for (; t < unfused; t++)
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(rows[t] + i), _mm256_set1_ps(k[t])));
        for (; t < n; t++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(rows[t] + i), _mm256_set1_ps(k[t]), acc);
        _mm256_storeu_ps(dst + i, acc);
    }
    for (; i < len; i++) {
        float acc = rows[0][i] * k[0];
        int64_t t = 1;
        for (; t < unfused; t++) acc += rows[t][i] * k[t];
        for (; t < n; t++) acc = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(rows[t][i]), _mm_set_ss(k[t]), _mm_set_ss(acc)));
        dst[i] = acc;
    }
}

void mt_resize_torch_row_round_avx2(const float *src, size_t len, uint8_t *dst) {
    const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        /* the conversion rounds as MXCSR says: to nearest, ties to even, as nearbyintf */
        __m256i q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(src + i), lo), hi));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(dst + i), _mm_packus_epi16(w, w));
    }
    for (; i < len; i++) {
        float v = src[i] < 0.0f ? 0.0f : src[i] > 255.0f ? 255.0f : src[i];
        dst[i] = (uint8_t)_mm_cvtss_si32(_mm_set_ss(v));
    }
}
