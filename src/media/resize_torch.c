/* media/resize_torch: torchvision's antialiased bicubic resize of uint8 images, as float32 arithmetic.
 *
 * Reference: torchvision 0.14 transforms/functional_tensor.py resize (uint8 -> float32, interpolate, clamp, round,
 * uint8) and torch 1.13 aten/src/ATen/native/cpu/UpSampleKernel.cpp (_compute_weights_aa, HelperInterpCubic::
 * aa_filter, interpolate_aa_single_dim, separable_upsample_generic_Nd_kernel_impl: width first, then height).
 *
 * For each axis (in -> out samples), in float32 unless marked double:
 *
 *     scale   = float(in) / float(out)
 *     support = scale >= 1 ? 2 * scale : 2,  invscale = scale >= 1 ? 1 / scale : 1
 *     center  = float(scale * (i + 0.5))                                  (product in double)
 *     xmin    = max(0, trunc(center - support + 0.5)),  xsize = min(in, trunc(center + support + 0.5)) - xmin
 *     w[j]    = cubic(float((j + xmin - center + 0.5) * invscale)),  cubic in double with a = -0.5
 *     w[j]   /= sum(w)
 *     out     = w[0] * in[xmin] + w[1] * in[xmin + 1] + ...               (left to right)
 *
 * The result of the second pass is clamped to [0, 255] and rounded half to even. Fused multiply-adds are off so
 * that every rounding is torch's.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <string.h>

#include "media/image.h"

#define MAX_SIDE ((int64_t)1 << 30)

typedef struct taps {
    int64_t ksize;   /* weights per output sample */
    int64_t *bounds; /* (out, 2): xmin, xsize */
    float *w;        /* (out, ksize) */
} taps;

static float cubic(float xf) {
    double x = xf < 0 ? -(double)xf : (double)xf, a = -0.5;
    if (x < 1.0) return (float)(((a + 2.0) * x - (a + 3.0)) * x * x + 1);
    if (x < 2.0) return (float)((((x - 5) * x + 8) * x - 4) * a);
    return 0.0f;
}

static void taps_free(taps *t) {
    mt_free(t->bounds);
    mt_free(t->w);
    *t = (taps){0};
}

static mt_status taps_make(int64_t in, int64_t out, taps *t, mt_err *err) {
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? 2.0f * scale : 2.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    int64_t ksize = (int64_t)ceilf(support) * 2 + 1;
    size_t nw;
    *t = (taps){ksize, NULL, NULL};
    if (!mt_mul_ok((size_t)out, (size_t)ksize, &nw) || !(t->w = mt_calloc(nw, sizeof *t->w)) ||
        !(t->bounds = mt_malloc_array((size_t)out, 2 * sizeof *t->bounds))) {
        taps_free(t);
        return mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for %lld x %lld filter taps", (long long)out,
                          (long long)ksize);
    }
    for (int64_t i = 0; i < out; i++) {
        float center = (float)((double)scale * ((double)i + 0.5));
        int64_t lo = (int64_t)((double)(center - support) + 0.5);
        int64_t hi = (int64_t)((double)(center + support) + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        float *w = t->w + i * ksize, total = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            w[j] = cubic((float)(((double)((float)(j + lo) - center) + 0.5) * (double)invscale));
            total += w[j];
        }
        if (total != 0.0f)
            for (int64_t j = 0; j < n; j++) w[j] /= total;
        t->bounds[2 * i] = lo;
        t->bounds[2 * i + 1] = n;
    }
    return MT_OK;
}

static inline float dot(const float *w, int64_t n, const float *src, size_t stride) {
    float acc = src[0] * w[0];
    for (int64_t j = 1; j < n; j++) acc += src[(size_t)j * stride] * w[j];
    return acc;
}

mt_status mt_image_resize_bicubic_torch(const mt_image *src, int64_t w, int64_t h, mt_image *out, mt_err *err) {
    if (!src || !out || !src->rgb || src->width < 1 || src->height < 1 || src->width > MAX_SIDE ||
        src->height > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: needs a source image with sides in [1, 2^30]");
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: target %lldx%lld is outside [1, 2^30] per side",
                          (long long)w, (long long)h);
    int64_t in_w = src->width, in_h = src->height;
    size_t out_bytes, mid_n, in_n;
    if (!mt_mul_ok((size_t)w, (size_t)h, &out_bytes) || !mt_mul_ok(out_bytes, 3, &out_bytes) ||
        !mt_mul_ok((size_t)w * 3, (size_t)in_h, &mid_n) || !mt_mul_ok((size_t)in_w * 3, (size_t)in_h, &in_n))
        return mt_err_set(err, MT_ERR_LIMIT, "resize: target %lldx%lld is too large", (long long)w, (long long)h);
    taps th = {0}, tv = {0};
    float *fin = NULL, *mid = NULL;
    uint8_t *dst = NULL;
    mt_status st = taps_make(in_w, w, &th, err);
    if (!st) st = taps_make(in_h, h, &tv, err);
    if (st) goto done;
    if (!(dst = mt_malloc(out_bytes)) || !(fin = mt_malloc_array(in_n, sizeof *fin)) ||
        !(mid = mt_malloc_array(mid_n, sizeof *mid))) {
        st = mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for a %lldx%lld image", (long long)w, (long long)h);
        goto done;
    }
    for (size_t i = 0; i < in_n; i++) fin[i] = (float)src->rgb[i];
    for (int64_t y = 0; y < in_h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                mid[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] =
                    dot(th.w + x * th.ksize, th.bounds[2 * x + 1],
                        fin + ((size_t)y * (size_t)in_w + (size_t)th.bounds[2 * x]) * 3 + (size_t)c, 3);
    for (int64_t y = 0; y < h; y++)
        for (size_t i = 0; i < (size_t)w * 3; i++) {
            float v = dot(tv.w + y * tv.ksize, tv.bounds[2 * y + 1], mid + (size_t)tv.bounds[2 * y] * (size_t)w * 3 + i,
                          (size_t)w * 3);
            v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
            dst[(size_t)y * (size_t)w * 3 + i] = (uint8_t)rintf(v);
        }
done:
    taps_free(&th);
    taps_free(&tv);
    mt_free(fin);
    mt_free(mid);
    if (st) {
        mt_free(dst);
        return st;
    }
    *out = (mt_image){.width = w, .height = h, .rgb = dst};
    return MT_OK;
}
