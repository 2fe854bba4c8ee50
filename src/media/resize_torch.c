/* media/resize_torch: torchvision's bicubic antialiased resize of an RGB8 image, as torch computes it on the CPU.
 *
 * Reference: what `torchvision.transforms.functional.resize(t, [h, w], InterpolationMode.BICUBIC, antialias=True)`
 * gives for a uint8 (3, H, W) tensor with torchvision 0.14 and torch 1.13 (Debian 12): the tensor converted to
 * float32, torch's `_upsample_bicubic2d_aa` (aten/src/ATen/native/cpu/UpSampleKernel.cpp:
 * separable_upsample_generic_Nd_kernel_impl, HelperInterpBase::_compute_weights_aa, HelperInterpCubic::aa_filter,
 * interpolate_aa_single_dim; area_pixel_compute_scale in UpSample.h), then clamp to [0, 255], torch.round (half to
 * even) and the cast back (torchvision/transforms/functional_tensor.py resize, _cast_squeeze_out).
 *
 * Every step is float32, as scalar_t is for a float32 tensor; the double subexpressions are C++'s promotions of
 * the float values by the double literals beside them. For each axis (in -> out samples), output sample i:
 *
 *     scale   = float(in) / float(out)
 *     support = scale >= 1 ? 2 * scale : 2          (shrinking widens the kernel: the antialiasing)
 *     center  = float(scale * (i + 0.5))
 *     invs    = scale >= 1 ? float(1.0 / scale) : 1
 *     start   = max(0, trunc(double(center - support) + 0.5)),  end = min(in, trunc(double(center + support) + 0.5))
 *     w[j]    = cubic(float((double(float(start + j) - center) + 0.5) * invs)),  j < end - start,
 *               summed in order into total; w[j] /= total when total != 0
 *     cubic   = Keys' kernel with a = -0.5 as in PIL (torch's non-antialiased bicubic uses -0.75), written as
 *               PIL writes it with a double `a`: ((a + 2) x - (a + 3)) x^2 + 1 in double below 1,
 *               (((x - 5) x + 8) x - 4) in float times a below 2
 *     out     = in[start] * w[0] + in[start + 1] * w[1] + ... added left to right in float
 *
 * The width pass runs first and its float32 result feeds the height pass unrounded; an axis whose size does not
 * change gives weights (0, 1, 0, 0), which copy exactly, so it is skipped. The final float is clamped to
 * [0, 255] and rounded half to even.
 *
 * Speed (issue 13: 120 video frames per clip): output rows are made keeping only the few width-pass rows their
 * height taps read, so no float planes are allocated per image (video frames run on several threads at once, one
 * frame each: media/video_sample.h); on AVX2 and AVX-512 CPUs the row kernels are resize_torch_avx2.c's and
 * resize_torch_avx512.c's, the same operations per output value in vectors.
 *
 * Roundings that follow the compiled kernel, not its source: Debian's torch (like the x86-64 wheels) runs the
 * copy of this kernel built for AVX2 (-mavx2 -mfma), where GCC fused multiply-adds in the cubic and vectorised
 * the accumulation four taps at a time (see unfused_end). Those places use fma / fmaf here, and contraction is
 * off everywhere else. torch's DEFAULT build (ATEN_CPU_CAPABILITY=default, or a CPU without AVX2) rounds
 * differently, and so may another compiler's build: docs/VALIDATION.md.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <string.h>

#include "media/image.h"
#include "media/resize_torch_int.h"
#include "tensor/cpu/cpu.h"

#define MAX_SIDE ((int64_t)1 << 30)

typedef struct taps {
    int64_t ksize;   /* weights per output sample */
    int64_t *bounds; /* (out, 2): start, count */
    float *k;        /* (out, ksize) */
} taps;

/* HelperInterpCubic::aa_filter of torch 1.13 with the fusions of its AVX2 build. */
static float cubic(float x) {
    const double a = -0.5;
    x = fabsf(x);
    if (x < 1.0f) return (float)fma(fma(a + 2.0, x, -(a + 3.0)) * x, x, 1.0);
    if (x < 2.0f) return (float)((double)fmaf(fmaf(x - 5.0f, x, 8.0f), x, -4.0f) * a);
    return 0.0f;
}

static void taps_free(taps *t) {
    mt_free(t->bounds);
    mt_free(t->k);
    *t = (taps){0};
}

static mt_status taps_make(int64_t in, int64_t out, taps *t, mt_err *err) {
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? (float)(2.0 * (double)scale) : 2.0f;
    float invs = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
    int64_t ksize = (int64_t)ceilf(support) * 2 + 1;
    size_t nk;
    *t = (taps){ksize, NULL, NULL};
    if (!mt_mul_ok((size_t)out, (size_t)ksize, &nk) || !(t->k = mt_calloc(nk, sizeof *t->k)) ||
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
        float *k = t->k + i * ksize, total = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            k[j] = cubic((float)(((double)((float)(lo + j) - center) + 0.5) * (double)invs));
            total += k[j];
        }
        if (total != 0.0f)
            for (int64_t j = 0; j < n; j++) k[j] /= total;
        t->bounds[2 * i] = lo;
        t->bounds[2 * i + 1] = n;
    }
    return MT_OK;
}

/* The accumulation out = in[0] * w[0], then + in[j] * w[j] for j = 1 .. n - 1, in that order, as torch's AVX2 build
 * compiles it: GCC vectorised the loop four taps at a time (products rounded in a vector multiply, then added in
 * order) and left the last (n - 1) % 4 taps, or all of them when n <= 4, to a scalar loop of fused multiply-adds.
 * Taps [1, unfused_end(n)) (resize_torch_int.h) are the vector ones. */

/* Source row r of src (in_w x 3 bytes, exact as floats) through the width taps into dst (out_w x 3). */
static void row_horizontal(const uint8_t *src, int64_t in_w, int64_t r, const taps *t, int64_t out_w, float *dst) {
    const uint8_t *s = src + (size_t)r * (size_t)in_w * 3;
    for (int64_t x = 0; x < out_w; x++) {
        const float *k = t->k + x * t->ksize;
        const uint8_t *p = s + t->bounds[2 * x] * 3;
        int64_t n = t->bounds[2 * x + 1];
        int64_t unfused = unfused_end(n);
        for (int c = 0; c < 3; c++) {
            float acc = (float)p[c] * k[0];
            int64_t j = 1;
            for (; j < unfused; j++) acc += (float)p[3 * j + c] * k[j];
            for (; j < n; j++) acc = fmaf((float)p[3 * j + c], k[j], acc);
            dst[3 * x + c] = acc;
        }
    }
}

static void groups_free(mt_resize_h_groups *g) {
    mt_free(g->taps);
    mt_free(g->idx);
    mt_free(g->kt);
    *g = (mt_resize_h_groups){0};
}

/* The width taps t of out_w pixels regrouped sixteen by sixteen (resize_torch_int.h). False when out of memory. */
static bool groups_make(const taps *t, int64_t out_w, mt_resize_h_groups *g) {
    *g = (mt_resize_h_groups){.n = out_w / 16};
    size_t nk;
    if (!mt_mul_ok((size_t)out_w, (size_t)t->ksize, &nk) ||
        !(g->taps = mt_calloc((size_t)g->n + 1, sizeof *g->taps)) ||
        !(g->idx = mt_malloc_array((size_t)g->n * 16 + 1, sizeof *g->idx)) || !(g->kt = mt_calloc(nk, sizeof *g->kt))) {
        groups_free(g);
        return false;
    }
    for (int64_t x = 0; x < out_w; x++)
        for (int64_t j = 0; j < t->ksize; j++) g->kt[j * out_w + x] = t->k[x * t->ksize + j];
    for (int64_t q = 0; q < g->n; q++) {
        const int64_t *b = t->bounds + 32 * q;
        int64_t most = 0, u = unfused_end(b[1]);
        bool alike = true;
        for (int i = 0; i < 16; i++) {
            most = MT_MAX(most, b[2 * i + 1]);
            alike = alike && unfused_end(b[2 * i + 1]) == u;
            g->idx[16 * q + i] = (int32_t)(b[2 * i] - b[0]);
        }
        g->taps[q] = alike && b[30] - b[0] + most <= 32 ? (int32_t)most : 0;
    }
    return true;
}

/* Clamped to [0, 255] and rounded half to even: adding 2^23 leaves no fraction bits, so the float addition rounds
 * to an integer as nearbyintf does (ties to even), and vectorises where nearbyintf is a call. */
static void row_round(const float *src, size_t n, uint8_t *dst) {
    for (size_t i = 0; i < n; i++) {
        float v = src[i] < 0.0f ? 0.0f : src[i] > 255.0f ? 255.0f : src[i];
        dst[i] = (uint8_t)(int)((v + 0x1p23f) - 0x1p23f);
    }
}

/* One resize. */
typedef struct resize_job {
    const mt_image *src;
    int64_t w, h;
    const taps *th, *tv; /* NULL: that axis keeps its size */
    const mt_resize_h_groups *groups; /* th for the AVX-512 width pass */
    uint8_t *dst;
    int64_t ring_rows;   /* width-pass rows kept: the most any output row's height taps read */
    mt_cpu_level level;  /* which row kernels: resize_torch_avx2.c's and _avx512.c's give the same bytes */
} resize_job;

/* The floats of a resize: the ring of width-pass rows (each row_stride floats: 3 w and the one float past the end that
 * the AVX2 width pass writes), the output row, the source row as floats for the SIMD width passes (with room for
 * the AVX-512 one's planes), and the ring rows an output row reads. */
typedef struct row_scratch {
    float *ring, *acc, *conv;
    const float **rows;
    size_t row_stride;
} row_scratch;

/* Source row r as floats after the width pass (or as they are, when the width stays). */
static void source_row(const resize_job *j, row_scratch *b, int64_t r, float *dst) {
    const mt_image *src = j->src;
    if (!j->th) {
        const uint8_t *s = src->rgb + (size_t)r * (size_t)j->w * 3;
        for (size_t i = 0; i < (size_t)j->w * 3; i++) dst[i] = (float)s[i];
    } else if (j->level >= MT_CPU_AVX512) {
        mt_resize_torch_row_h_avx512(src->rgb + (size_t)r * (size_t)src->width * 3, src->width, j->th->k,
                                     j->th->ksize, j->th->bounds, j->w, j->groups, b->conv, dst);
    } else if (j->level >= MT_CPU_AVX2) {
        mt_resize_torch_row_h_avx2(src->rgb + (size_t)r * (size_t)src->width * 3, src->width, j->th->k,
                                   j->th->ksize, j->th->bounds, j->w, b->conv, dst);
    } else {
        row_horizontal(src->rgb, src->width, r, j->th, j->w, dst);
    }
}

/* The height taps k of one output row over the ring rows b->rows into b->acc. */
static void row_vertical(const resize_job *j, row_scratch *b, const float *k, int64_t n) {
    const size_t n3 = (size_t)j->w * 3;
    if (j->level >= MT_CPU_AVX512) {
        mt_resize_torch_row_v_avx512(b->rows, k, n, n3, b->acc);
        return;
    }
    if (j->level >= MT_CPU_AVX2) {
        mt_resize_torch_row_v_avx2(b->rows, k, n, n3, b->acc);
        return;
    }
    int64_t unfused = unfused_end(n);
    float *acc = b->acc;
    for (size_t i = 0; i < n3; i++) acc[i] = b->rows[0][i] * k[0];
    for (int64_t t = 1; t < n; t++) {
        const float *st = b->rows[t];
        if (t < unfused)
            for (size_t i = 0; i < n3; i++) acc[i] += st[i] * k[t];
        else
            for (size_t i = 0; i < n3; i++) acc[i] = fmaf(st[i], k[t], acc[i]);
    }
}

static void row_round_best(const resize_job *j, const float *src, size_t n, uint8_t *dst) {
    if (j->level >= MT_CPU_AVX512) mt_resize_torch_row_round_avx512(src, n, dst);
    else if (j->level >= MT_CPU_AVX2) mt_resize_torch_row_round_avx2(src, n, dst);
    else row_round(src, n, dst);
}

/* Every output row. The width pass of each source row is kept in a ring of ring_rows rows (the rows an output row
 * reads only move forward), so each is computed once and only a few rows of floats are held rather than planes.
 * The float operations of each output value are those of the whole-image passes, in the same order. False when
 * the scratch cannot be allocated. */
static bool resize_rows(const resize_job *j) {
    const size_t n3 = (size_t)j->w * 3;
    row_scratch b = {.row_stride = n3 + 4};
    size_t floats = (size_t)j->ring_rows * b.row_stride + b.row_stride + (size_t)j->src->width * 6 + 192;
    b.ring = mt_malloc_array(floats, sizeof *b.ring);
    b.rows = mt_malloc_array((size_t)j->ring_rows, sizeof *b.rows);
    if (!b.ring || !b.rows) {
        mt_free(b.ring);
        mt_free(b.rows);
        return false;
    }
    b.acc = b.ring + (size_t)j->ring_rows * b.row_stride;
    b.conv = b.acc + b.row_stride;
    int64_t next = 0; /* the first source row not in the ring yet */
    for (int64_t y = 0; y < j->h; y++) {
        uint8_t *d = j->dst + (size_t)y * n3;
        if (!j->tv) {
            source_row(j, &b, y, b.acc);
            row_round_best(j, b.acc, n3, d);
            continue;
        }
        int64_t lo = j->tv->bounds[2 * y], n = j->tv->bounds[2 * y + 1];
        if (next < lo) next = lo;
        for (; next < lo + n; next++) source_row(j, &b, next, b.ring + (size_t)(next % j->ring_rows) * b.row_stride);
        for (int64_t t = 0; t < n; t++) b.rows[t] = b.ring + (size_t)((lo + t) % j->ring_rows) * b.row_stride;
        row_vertical(j, &b, j->tv->k + y * j->tv->ksize, n);
        row_round_best(j, b.acc, n3, d);
    }
    mt_free(b.ring);
    mt_free(b.rows);
    return true;
}

mt_status mt_image_resize_bicubic_torch(const mt_image *src, int64_t w, int64_t h, mt_image *out, mt_err *err) {
    if (!src || !out || !src->rgb || src->width < 1 || src->height < 1 || src->width > MAX_SIDE ||
        src->height > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: needs a source image with sides in [1, 2^30]");
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "resize: target %lldx%lld is outside [1, 2^30] per side",
                          (long long)w, (long long)h);
    int64_t in_w = src->width, in_h = src->height;
    size_t out_bytes;
    if (!mt_mul_ok((size_t)w, (size_t)h, &out_bytes) || !mt_mul_ok(out_bytes, 3, &out_bytes))
        return mt_err_set(err, MT_ERR_LIMIT, "resize: target %lldx%lld is too large", (long long)w, (long long)h);
    uint8_t *dst = mt_malloc(out_bytes);
    if (!dst) return mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for a %lldx%lld image", (long long)w,
                                (long long)h);
    bool need_h = w != in_w, need_v = h != in_h;
    if (!need_h && !need_v) {
        memcpy(dst, src->rgb, out_bytes);
        *out = (mt_image){.width = w, .height = h, .rgb = dst};
        return MT_OK;
    }

    taps th = {0}, tv = {0};
    mt_resize_h_groups groups = {0};
    const mt_cpu_level level = mt_cpu_level_get();
    mt_status st = need_h ? taps_make(in_w, w, &th, err) : MT_OK;
    if (!st && need_v) st = taps_make(in_h, h, &tv, err);
    if (!st && need_h && level >= MT_CPU_AVX512 && !groups_make(&th, w, &groups))
        st = mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for %lld x %lld filter taps", (long long)w,
                        (long long)th.ksize);
    if (!st) {
        resize_job job = {.src = src, .w = w, .h = h, .th = need_h ? &th : NULL, .tv = need_v ? &tv : NULL,
                          .groups = &groups, .dst = dst, .ring_rows = 1, .level = level};
        for (int64_t y = 0; need_v && y < h; y++) job.ring_rows = MT_MAX(job.ring_rows, tv.bounds[2 * y + 1]);
        if (!resize_rows(&job))
            st = mt_err_set(err, MT_ERR_NOMEM, "resize: out of memory for the float rows of %lldx%lld -> %lldx%lld",
                            (long long)in_w, (long long)in_h, (long long)w, (long long)h);
    }
    taps_free(&th);
    taps_free(&tv);
    groups_free(&groups);
    if (st) {
        mt_free(dst);
        return st;
    }
    *out = (mt_image){.width = w, .height = h, .rgb = dst};
    return MT_OK;
}
