/* media/resize_torch_int: the row kernels of resize_torch.c, in a portable build and an AVX2+FMA one
 * (resize_torch_avx2.c) that gives the same bytes: each output float goes through the same multiplies, adds and
 * fused multiply-adds in the same order, the vectors only compute several of them side by side. */
#ifndef MT_MEDIA_RESIZE_TORCH_INT_H
#define MT_MEDIA_RESIZE_TORCH_INT_H

#include "base/base.h"

/* The taps [1, unfused) of an output value are a product then an add, the rest [unfused, n) fused multiply-adds
 * (see unfused_end in resize_torch.c). */

/* One source row of in_w RGB pixels through the width taps: dst[3 x + c] for x < out_w, and dst may be written up
 * to 3 * out_w + 1 floats (one past: a vector of 4 per pixel). k: out_w rows of ksize weights; bounds: start and
 * count per output pixel. scratch: at least 3 * in_w + 4 floats. */
void mt_resize_torch_row_h_avx2(const uint8_t *src, int64_t in_w, const float *k, int64_t ksize,
                                const int64_t *bounds, int64_t out_w, float *scratch, float *dst);

/* dst[i] = rows[0][i] * k[0], then each tap t of n in order, for i < len. */
void mt_resize_torch_row_v_avx2(const float *const *rows, const float *k, int64_t n, size_t len, float *dst);

/* dst[i] = src[i] clamped to [0, 255] and rounded half to even, for i < len. */
void mt_resize_torch_row_round_avx2(const float *src, size_t len, uint8_t *dst);

#endif
