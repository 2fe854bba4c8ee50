/* media/resize: PIL's bicubic resize of RGB8, bit for bit.
 *
 * Reference: Pillow 9.4 src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
 * ImagingResampleHorizontal_8bpc / Vertical_8bpc, ImagingResampleInner) and Image.resize in src/PIL/Image.py.
 *
 * For each axis (in -> out samples), output sample i reads input samples [start, start + count):
 *
 *     scale   = in / out                 (in converted to float first, as PIL's box is float)
 *     fscale  = max(scale, 1)            (shrinking widens the kernel: an antialiasing filter)
 *     support = 2 * fscale,  taps = 2 * ceil(support) + 1
 *     center  = (i + 0.5) * scale
 *     start   = max(0, trunc(center - support + 0.5)),  end = min(in, trunc(center + support + 0.5))
 *     w[j]    = cubic((start + j - center + 0.5) / fscale),  cubic with a = -0.5, support 2
 *     w[j]   /= sum(w);  k[j] = w[j] * 2^22 rounded half away from zero to int32
 *     out     = clamp((2^21 + sum(k[j] * in[start + j])) >> 22, 0, 255)
 *
 * The horizontal pass runs first, over only the input rows the vertical pass will read; an axis whose size does
 * not change is skipped. Every double expression keeps PIL's order of operations, and contraction into fused
 * multiply-adds is switched off, because one flipped rounding in a coefficient changes output bytes.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <string.h>

#include "media/image.h"

enum { PRECISION_BITS = 32 - 8 - 2 };

#define MAX_SIDE ((int64_t)1 << 30)

typedef struct taps {
    int64_t ksize;   /* coefficients per output sample */
    int64_t *bounds; /* (out, 2): start, count */
    int32_t *k;      /* (out, ksize) fixed-point weights */
} taps;

static double cubic(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return (1.5 * x - 2.5) * x * x + 1; /* ((a + 2) x - (a + 3)) x^2 + 1 */
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0.0;
}

static void taps_free(taps *t) {
    mt_free(t->bounds);
    mt_free(t->k);
    *t = (taps){0};
}

static mt_status taps_make(int64_t in, int64_t out, taps *t, mt_err *err) {
    double scale = (double)(float)in / (double)out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    int64_t ksize = (int64_t)ceil(support) * 2 + 1;
    size_t nk;
    double *w = NULL;
    *t = (taps){ksize, NULL, NULL};
    if (!mt_mul_ok((size_t)out, (size_t)ksize, &nk) || !(t->k = mt_malloc_array(nk, sizeof *t->k)) ||
        !(t->bounds = mt_malloc_array((size_t)out, 2 * sizeof *t->bounds)) ||
        !(w = mt_malloc_array((size_t)ksize, sizeof *w))) {
        taps_free(t);
        return mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for %lld x %lld filter taps", (long long)out,
                          (long long)ksize);
    }
    double ss = 1.0 / fscale;
    for (int64_t i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int64_t lo = (int64_t)(center - support + 0.5);
        int64_t hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        double ww = 0.0;
        for (int64_t j = 0; j < n; j++) {
            w[j] = cubic(((double)(j + lo) - center + 0.5) * ss);
            ww += w[j];
        }
        int32_t *k = t->k + i * ksize;
        for (int64_t j = 0; j < ksize; j++) {
            double v = j < n ? (ww != 0.0 ? w[j] / ww : w[j]) : 0.0;
            k[j] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        t->bounds[2 * i] = lo;
        t->bounds[2 * i + 1] = n;
    }
    mt_free(w);
    return MT_OK;
}

static inline uint8_t clip8(int32_t acc) {
    int32_t v = acc >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [row0, row0 + rows) of src (width in_w) to dst (rows x out_w). */
static void pass_horizontal(const uint8_t *src, int64_t in_w, int64_t row0, int64_t rows, const taps *t,
                            int64_t out_w, uint8_t *dst) {
    for (int64_t y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)(row0 + y) * (size_t)in_w * 3;
        uint8_t *d = dst + (size_t)y * (size_t)out_w * 3;
        for (int64_t x = 0; x < out_w; x++) {
            const int32_t *k = t->k + x * t->ksize;
            const uint8_t *p = s + t->bounds[2 * x] * 3;
            int64_t n = t->bounds[2 * x + 1];
            int32_t r = 1 << (PRECISION_BITS - 1), g = r, b = r;
            for (int64_t j = 0; j < n; j++) {
                r += p[3 * j] * k[j];
                g += p[3 * j + 1] * k[j];
                b += p[3 * j + 2] * k[j];
            }
            d[3 * x] = clip8(r);
            d[3 * x + 1] = clip8(g);
            d[3 * x + 2] = clip8(b);
        }
    }
}

/* src rows shifted by row0 (the first row the taps name is src's row 0) to dst (out_h x w). Sums are formed a
 * whole row at a time; integer addition is exact, so the order differs from PIL's without changing a bit. */
static void pass_vertical(const uint8_t *src, int64_t w, int64_t row0, const taps *t, int64_t out_h, uint8_t *dst,
                          int32_t *acc) {
    size_t n3 = (size_t)w * 3;
    for (int64_t y = 0; y < out_h; y++) {
        const int32_t *k = t->k + y * t->ksize;
        int64_t lo = t->bounds[2 * y] - row0, n = t->bounds[2 * y + 1];
        for (size_t i = 0; i < n3; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int64_t j = 0; j < n; j++) {
            const uint8_t *s = src + (size_t)(lo + j) * n3;
            int32_t kj = k[j];
            for (size_t i = 0; i < n3; i++) acc[i] += s[i] * kj;
        }
        uint8_t *d = dst + (size_t)y * n3;
        for (size_t i = 0; i < n3; i++) d[i] = clip8(acc[i]);
    }
}

mt_status mt_image_resize_bicubic(const mt_image *src, int64_t w, int64_t h, mt_image *out, mt_err *err) {
    if (!src || !out || !src->rgb || src->width < 1 || src->height < 1 || src->width > MAX_SIDE ||
        src->height > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: needs a source image with sides in [1, 2^30]");
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: target %lldx%lld is outside [1, 2^30] per side",
                          (long long)w, (long long)h);
    size_t out_bytes;
    if (!mt_mul_ok((size_t)w, (size_t)h, &out_bytes) || !mt_mul_ok(out_bytes, 3, &out_bytes))
        return mt_err_set(err, MT_ERR_LIMIT, "resize: target %lldx%lld is too large", (long long)w, (long long)h);
    uint8_t *dst = mt_malloc(out_bytes);
    if (!dst) return mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for a %lldx%lld image", (long long)w,
                                (long long)h);
    int64_t in_w = src->width, in_h = src->height;
    bool need_h = w != in_w, need_v = h != in_h;
    if (!need_h && !need_v) {
        memcpy(dst, src->rgb, out_bytes);
        *out = (mt_image){.width = w, .height = h, .rgb = dst};
        return MT_OK;
    }

    taps th = {0}, tv = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    mt_status st = taps_make(in_w, w, &th, err);
    if (!st) st = taps_make(in_h, h, &tv, err);
    if (st) goto done;
    int64_t row0 = tv.bounds[0], row1 = tv.bounds[2 * (h - 1)] + tv.bounds[2 * (h - 1) + 1];
    const uint8_t *vsrc = src->rgb;
    if (need_h) {
        uint8_t *hdst = dst;
        if (need_v) {
            size_t tmp_bytes;
            if (!mt_mul_ok((size_t)w * 3, (size_t)(row1 - row0), &tmp_bytes) || !(tmp = mt_malloc(tmp_bytes))) {
                st = mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for the horizontal pass");
                goto done;
            }
            hdst = tmp;
        } else {
            row0 = 0;
            row1 = in_h;
        }
        pass_horizontal(src->rgb, in_w, row0, row1 - row0, &th, w, hdst);
        vsrc = tmp;
    } else {
        row0 = 0;
    }
    if (need_v) {
        if (!(acc = mt_malloc_array((size_t)w * 3, sizeof *acc))) {
            st = mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for the vertical pass");
            goto done;
        }
        pass_vertical(vsrc, w, row0, &tv, h, dst, acc);
    }
done:
    taps_free(&th);
    taps_free(&tv);
    mt_free(tmp);
    mt_free(acc);
    if (st) {
        mt_free(dst);
        return st;
    }
    *out = (mt_image){.width = w, .height = h, .rgb = dst};
    return MT_OK;
}
