/* media/rgb_avx512: splitting interleaved RGB into channels with AVX-512, for the _avx512.c files of media (included
 * only where the AVX-512 flags are on). */
#ifndef MT_MEDIA_RGB_AVX512_H
#define MT_MEDIA_RGB_AVX512_H

#include <immintrin.h>

/* Lane k: 32-bit element 3k + ch of the 48 in a:b:c (sixteen RGB pixels), which lies in a:b up to k = 10 (9 for
 * blue) and in c past that. */
static inline __m512i mt_rgb_channel_avx512(__m512i a, __m512i b, __m512i c, int ch) {
    const __m512i at = _mm512_add_epi32(_mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45),
                                        _mm512_set1_epi32(ch));
    __m512i r = _mm512_permutex2var_epi32(a, at, b);
    return _mm512_mask_permutexvar_epi32(r, ch == 2 ? 0xfc00 : 0xf800, _mm512_sub_epi32(at, _mm512_set1_epi32(32)), c);
}

#endif
