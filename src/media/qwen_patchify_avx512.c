/* media/qwen_patchify_avx512: mt_qwen_patchify_frame with AVX-512 for patches up to 16 pixels wide (Qwen2-VL's 14,
 * Qwen3-VL's 16). Each row of a patch is one masked load of its RGB bytes, split into channels by permutes, and one
 * gather per channel from the same normalisation table the scalar loop reads, so the floats are the same. */
#include <immintrin.h>

#include "media/media_int.h"
#include "media/rgb_avx512.h"

static inline __mmask16 first(int64_t n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

void mt_qwen_patchify_frame_avx512(const uint8_t *rgb, int64_t width, int64_t gh, int64_t gw, int64_t P, int64_t T,
                                   int64_t M, int64_t t, const float lut[3][256], float *rows) {
    const int64_t cols = 3 * T * P * P;
    const __mmask16 lanes = first(P), m0 = first(3 * P), m1 = first(3 * P - 16), m2 = first(3 * P - 32);
    for (int64_t bh = 0; bh < gh / M; bh++)
        for (int64_t bw = 0; bw < gw / M; bw++)
            for (int64_t mh = 0; mh < M; mh++)
                for (int64_t mw = 0; mw < M; mw++, rows += cols) {
                    int64_t y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                    for (int64_t ph = 0; ph < P; ph++) {
                        const uint8_t *s = rgb + ((size_t)(y0 + ph) * (size_t)width + (size_t)x0) * 3;
                        __m512i a = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m0, s));
                        __m512i b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m1, s + 16));
                        __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m2, s + 32));
                        for (int ch = 0; ch < 3; ch++) {
                            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, mt_rgb_channel_avx512(a, b, c, ch),
                                                                lut[ch], 4);
                            _mm512_mask_storeu_ps(rows + ((ch * T + t) * P + ph) * P, lanes, v);
                        }
                    }
                }
}
