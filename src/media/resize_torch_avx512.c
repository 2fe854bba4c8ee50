/* media/resize_torch_avx512: the row kernels of the torchvision-exact resize with AVX-512 (resize_torch_int.h).
 * The width pass splits the row into a plane of floats per channel and computes sixteen output pixels of a channel
 * in one vector: their windows come from two loads per group and one two-register permute per tap, and the weights
 * of a tap from one load of the transposed table (mt_resize_h_groups). AVX2's version builds each pixel's vector from
 * its own loads and broadcasts, and is bound by that. Each lane keeps the scalar kernel's operations and order, so
 * the bytes are the same. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <immintrin.h>

#include "media/resize_torch_int.h"
#include "media/rgb_avx512.h"

static inline __m128 pixel_taps(const float *p, const float *k, int64_t n) {
    int64_t unfused = unfused_end(n), j = 1;
    __m128 acc = _mm_mul_ps(_mm_loadu_ps(p), _mm_set1_ps(k[0]));
    for (; j < unfused; j++) acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(p + 3 * j), _mm_set1_ps(k[j])));
    for (; j < n; j++) acc = _mm_fmadd_ps(_mm_loadu_ps(p + 3 * j), _mm_set1_ps(k[j]), acc);
    return acc;
}

/* The floats of channel ch of sixteen RGB pixels a:b:c (the permutes move bits, so the integer form serves). */
static inline __m512 channel(__m512 a, __m512 b, __m512 c, int ch) {
    return _mm512_castsi512_ps(
        mt_rgb_channel_avx512(_mm512_castps_si512(a), _mm512_castps_si512(b), _mm512_castps_si512(c), ch));
}

void mt_resize_torch_row_h_avx512(const uint8_t *src, int64_t in_w, const float *k, int64_t ksize,
                                  const int64_t *bounds, int64_t out_w, const mt_resize_h_groups *groups,
                                  float *scratch, float *dst) {
    const size_t n3 = (size_t)in_w * 3, stride = (size_t)in_w + 48;
    float *planes = scratch + n3 + 48;
    size_t i = 0;
    for (; i + 16 <= n3; i += 16)
        _mm512_storeu_ps(scratch + i, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(src + i)))));
    for (; i < n3; i++) scratch[i] = (float)src[i];
    for (int z = 0; z < 3; z++) _mm512_storeu_ps(scratch + n3 + 16 * z, _mm512_setzero_ps());
    for (int64_t x = 0; x < in_w; x += 16) {
        const float *f = scratch + 3 * x;
        __m512 a = _mm512_loadu_ps(f), b = _mm512_loadu_ps(f + 16), c = _mm512_loadu_ps(f + 32);
        _mm512_storeu_ps(planes + x, channel(a, b, c, 0));
        _mm512_storeu_ps(planes + stride + x, channel(a, b, c, 1));
        _mm512_storeu_ps(planes + 2 * stride + x, channel(a, b, c, 2));
    }
    /* read by windows near the end, in lanes whose weight is 0: they must hold finite values */
    for (int ch = 0; ch < 3; ch++) {
        _mm512_storeu_ps(planes + ch * stride + in_w, _mm512_setzero_ps());
        _mm512_storeu_ps(planes + ch * stride + in_w + 16, _mm512_setzero_ps());
    }
    /* output floats 16 o + m of sixteen pixels: pixel (16 o + m) / 3, channel (16 o + m) % 3 */
    const __m512i rg[3] = {
        _mm512_setr_epi32(0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5),
        _mm512_setr_epi32(21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26),
        _mm512_setr_epi32(0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0)};
    const __m512i bl[3] = {_mm512_setr_epi32(0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0),
                           _mm512_setr_epi32(0, 5, 0, 0, 6, 0, 0, 7, 0, 0, 8, 0, 0, 9, 0, 0),
                           _mm512_setr_epi32(10, 0, 0, 11, 0, 0, 12, 0, 0, 13, 0, 0, 14, 0, 0, 15)};
    const __mmask16 bm[3] = {0x4924, 0x2492, 0x9249};
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t x = 0; x < out_w;) {
        int64_t g = x / 16;
        if (x % 16 == 0 && g < groups->n && groups->taps[g]) {
            int64_t n = groups->taps[g], unfused = unfused_end(bounds[2 * x + 1]), j = 1;
            const float *kt = groups->kt + x;
            __m512i idx = _mm512_loadu_si512(groups->idx + 16 * g);
            const float *p = planes + bounds[2 * x];
            const __m512 r0 = _mm512_loadu_ps(p), r1 = _mm512_loadu_ps(p + 16);
            const __m512 g0 = _mm512_loadu_ps(p + stride), g1 = _mm512_loadu_ps(p + stride + 16);
            const __m512 b0 = _mm512_loadu_ps(p + 2 * stride), b1 = _mm512_loadu_ps(p + 2 * stride + 16);
            __m512 w = _mm512_loadu_ps(kt);
            __m512 ar = _mm512_mul_ps(_mm512_permutex2var_ps(r0, idx, r1), w);
            __m512 ag = _mm512_mul_ps(_mm512_permutex2var_ps(g0, idx, g1), w);
            __m512 ab = _mm512_mul_ps(_mm512_permutex2var_ps(b0, idx, b1), w);
            for (; j < unfused; j++) {
                idx = _mm512_add_epi32(idx, one);
                w = _mm512_loadu_ps(kt + j * out_w);
                ar = _mm512_add_ps(ar, _mm512_mul_ps(_mm512_permutex2var_ps(r0, idx, r1), w));
                ag = _mm512_add_ps(ag, _mm512_mul_ps(_mm512_permutex2var_ps(g0, idx, g1), w));
                ab = _mm512_add_ps(ab, _mm512_mul_ps(_mm512_permutex2var_ps(b0, idx, b1), w));
            }
            for (; j < n; j++) {
                idx = _mm512_add_epi32(idx, one);
                w = _mm512_loadu_ps(kt + j * out_w);
                ar = _mm512_fmadd_ps(_mm512_permutex2var_ps(r0, idx, r1), w, ar);
                ag = _mm512_fmadd_ps(_mm512_permutex2var_ps(g0, idx, g1), w, ag);
                ab = _mm512_fmadd_ps(_mm512_permutex2var_ps(b0, idx, b1), w, ab);
            }
            for (int o = 0; o < 3; o++)
                _mm512_storeu_ps(dst + 3 * x + 16 * o,
                                 _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(ar, rg[o], ag), bm[o], bl[o], ab));
            x += 16;
            continue;
        }
        __m128 acc = pixel_taps(scratch + bounds[2 * x] * 3, k + x * ksize, bounds[2 * x + 1]);
        /* three lanes only: a group may already have written the pixel after this one */
        _mm_mask_storeu_ps(dst + 3 * x, 0x7, acc);
        x++;
    }
}

void mt_resize_torch_row_v_avx512(const float *const *rows, const float *k, int64_t n, size_t len, float *dst) {
    const int64_t unfused = unfused_end(n);
    for (size_t i = 0; i < len; i += 16) {
        __mmask16 m = len - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - i)) - 1);
        __m512 acc = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, rows[0] + i), _mm512_set1_ps(k[0]));
        int64_t t = 1;
        for (; t < unfused; t++)
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, rows[t] + i), _mm512_set1_ps(k[t])));
        for (; t < n; t++) acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, rows[t] + i), _mm512_set1_ps(k[t]), acc);
        _mm512_mask_storeu_ps(dst + i, m, acc);
    }
}

void mt_resize_torch_row_round_avx512(const float *src, size_t len, uint8_t *dst) {
    const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
    for (size_t i = 0; i < len; i += 16) {
        __mmask16 m = len - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - i)) - 1);
        /* the conversion rounds as MXCSR says: to nearest, ties to even, as nearbyintf */
        __m512i q = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_maskz_loadu_ps(m, src + i), lo), hi));
        _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(q));
    }
}
