/* media/resize_torch_int: the row kernels of resize_torch.c, in a portable build and an AVX2+FMA one
 * (resize_torch_avx2.c) that gives the same bytes: each output float goes through the same multiplies, adds and
 * fused multiply-adds in the same order, the vectors only compute several of them side by side. */
#ifndef MT_MEDIA_RESIZE_TORCH_INT_H
#define MT_MEDIA_RESIZE_TORCH_INT_H

#include "base/base.h"

/* The taps [1, unfused_end(n)) of an output value are a product then an add, the rest fused multiply-adds: torch's
 * AVX2 build vectorised the accumulation four taps at a time (resize_torch.c says more). */
static inline int64_t unfused_end(int64_t n) { return 1 + (n - 1) / 4 * 4; }

/* One source row of in_w RGB pixels through the width taps: dst[3 x + c] for x < out_w, and dst may be written up
 * to 3 * out_w + 1 floats (one past: a vector of 4 per pixel). k: out_w rows of ksize weights; bounds: start and
 * count per output pixel. scratch: at least 3 * in_w + 4 floats. */
void mt_resize_torch_row_h_avx2(const uint8_t *src, int64_t in_w, const float *k, int64_t ksize,
                                const int64_t *bounds, int64_t out_w, float *scratch, float *dst);

/* The width taps regrouped for the AVX-512 width pass, which computes output pixels 16g .. 16g + 15 of each channel in
 * one vector when taps[g] > 0, from the row split into one plane of floats per channel. That needs the sixteen
 * windows of every tap to lie in the 32 floats from the first pixel's window start (read by two loads, gathered by
 * one two-register permute), and the same unfused_end of their tap counts, so that every lane's tap j is a multiply
 * then an add or a fused multiply-add alike. A group runs the most taps of its sixteen; a pixel with fewer has weight
 * 0 in the extra ones, which are fused multiply-adds (tap j >= its count >= its unfused_end) of finite values, so
 * its lane is unchanged but for the sign of a zero, which no byte shows.
 * idx: 16 int32 per group, pixel 16g + i's window start less pixel 16g's. kt: the weights transposed, ksize x out_w
 * (tap j of pixel x at j * out_w + x, 0 past the pixel's count), so a tap's sixteen weights are one load. */
typedef struct mt_resize_h_groups {
    int64_t n;
    int32_t *taps, *idx;
    float *kt;
} mt_resize_h_groups;

/* mt_resize_torch_row_h_avx2 sixteen pixels at a time where groups allows. scratch: at least 6 * in_w + 192 floats. */
void mt_resize_torch_row_h_avx512(const uint8_t *src, int64_t in_w, const float *k, int64_t ksize,
                                  const int64_t *bounds, int64_t out_w, const mt_resize_h_groups *groups,
                                  float *scratch, float *dst);

/* dst[i] = rows[0][i] * k[0], then each tap t of n in order, for i < len. */
void mt_resize_torch_row_v_avx2(const float *const *rows, const float *k, int64_t n, size_t len, float *dst);

/* dst[i] = src[i] clamped to [0, 255] and rounded half to even, for i < len. */
void mt_resize_torch_row_round_avx2(const float *src, size_t len, uint8_t *dst);

void mt_resize_torch_row_v_avx512(const float *const *rows, const float *k, int64_t n, size_t len, float *dst);
void mt_resize_torch_row_round_avx512(const float *src, size_t len, uint8_t *dst);

#endif
